//! A complete hyper server with push-poll, to copy from.
//!
//! - `GET /poll/{topic}?since=CURSOR`: the events after the cursor as one JSON batch, with
//!   `ETag`; `If-None-Match` with the current head gets `304`;
//! - `POST /topics/{topic}`: publishes the body as one event, answers `{"id":"CURSOR"}`.
//!
//! HTTP/1.1 and HTTP/2 (prior knowledge) on one port; SIGTERM or Ctrl-C waits (at most 5 s) for requests in flight.
//! To rate-limit clients, set `PollConfig::min_interval` and answer with
//! `Poller::respond_keyed(&topic, req, client_key)`.
//!
//! ```sh
//! cargo run -p poll-server -- --addr 127.0.0.1:8080
//! curl -d 'hello' http://127.0.0.1:8080/topics/news
//! curl -i 'http://127.0.0.1:8080/poll/news?since=CURSOR'
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use push_core::{Hub, Topic};
use push_http::Publisher;
use push_poll::Poller;
use server_kit::ServerArgs;

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(text.into()).boxed_unsync());
    *res.status_mut() = status;
    res
}

async fn handle(publisher: Publisher, endpoint: Poller, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(name) = path.strip_prefix("/poll/") {
        return match Topic::new(name) {
            Ok(topic) => endpoint
                .respond(&topic, req)
                .await
                .map(BodyExt::boxed_unsync),
            Err(e) => reply(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
    }
    if let Some(name) = path.strip_prefix("/topics/") {
        // push-http's publish endpoint: POST only, a 64 KiB body limit, cross-site requests
        // refused, `{"id":"CURSOR"}`.
        return match Topic::new(name) {
            Ok(topic) => publisher
                .respond(&topic, req)
                .await
                .map(BodyExt::boxed_unsync),
            Err(e) => reply(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
    }
    reply(
        StatusCode::NOT_FOUND,
        "routes: GET /poll/{topic}, POST /topics/{topic}\n",
    )
}

/// The command line: the server's address and bounds (see `server_kit::ServerArgs`).
#[derive(Debug, clap::Parser)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let listener = args.server.bind().await?;
    println!("listening on http://{}/", listener.local_addr()?);
    let hub = Hub::memory();
    let endpoint = Poller::new(hub.clone());
    let publisher = Publisher::new(hub.clone());
    let on_stop = {
        let hub = hub.clone();
        async move { hub.close() }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        let (publisher, endpoint) = (publisher.clone(), endpoint.clone());
        let service = service_fn(move |req| {
            let (publisher, endpoint) = (publisher.clone(), endpoint.clone());
            async move { Ok::<_, Infallible>(handle(publisher, endpoint, req).await) }
        });
        conn.serve(None, service)
    })
    .await
}
