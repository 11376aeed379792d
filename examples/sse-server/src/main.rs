//! A complete hyper server with push-sse, to copy from.
//!
//! - `GET /sse/{topic}`: the topic's event stream (resume with `Last-Event-ID` or
//!   `?lastEventId=`);
//! - `POST /topics/{topic}`: publishes the body as one event, answers `{"id":"CURSOR"}`.
//!
//! HTTP/1.1 and HTTP/2 (prior knowledge) on one port. SIGTERM or Ctrl-C closes the hub, so every stream
//! ends with a `retry:` hint, and waits (at most 5 s) for connections to finish. The server loop is `server-kit`'s: connection cap, timeouts, send buffer (`--help`).
//!
//! ```sh
//! cargo run -p sse-server -- --addr 127.0.0.1:8080
//! curl -N http://127.0.0.1:8080/sse/news &
//! curl -d 'hello' http://127.0.0.1:8080/topics/news
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use push_core::{Hub, Topic};
use push_http::Publisher;
use push_sse::Sse;
use server_kit::ServerArgs;

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(text.into()).boxed_unsync());
    *res.status_mut() = status;
    res
}

async fn handle(publisher: Publisher, sse: Sse, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(name) = path.strip_prefix("/sse/") {
        return match Topic::new(name) {
            Ok(topic) => sse.respond(&topic, req).await.map(BodyExt::boxed_unsync),
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
        "routes: GET /sse/{topic}, POST /topics/{topic}\n",
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
    let sse = Sse::new(hub.clone());
    let publisher = Publisher::new(hub.clone());
    let on_stop = {
        let hub = hub.clone();
        async move { hub.close() }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        let (publisher, sse) = (publisher.clone(), sse.clone());
        let service = service_fn(move |req| {
            let (publisher, sse) = (publisher.clone(), sse.clone());
            async move { Ok::<_, Infallible>(handle(publisher, sse, req).await) }
        });
        conn.serve(None, service)
    })
    .await
}
