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
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use push_core::{Hub, NewEvent, Topic};
use push_sse::Sse;
use server_kit::ServerArgs;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body accepted for a publish.
const MAX_PUBLISH: usize = 64 * 1024;

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(text.into()).boxed_unsync());
    *res.status_mut() = status;
    res
}

async fn handle(hub: Hub, sse: Sse, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(name) = path.strip_prefix("/sse/") {
        return match Topic::new(name) {
            Ok(topic) => sse.respond(&topic, req).await.map(BodyExt::boxed_unsync),
            Err(e) => reply(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
    }
    if let Some(name) = path.strip_prefix("/topics/") {
        if req.method() != Method::POST {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "publish with POST\n");
        }
        let topic = match Topic::new(name) {
            Ok(topic) => topic,
            Err(e) => return reply(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        let body = match Limited::new(req.into_body(), MAX_PUBLISH).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB\n"),
        };
        return match hub.publish(&topic, NewEvent::new(body)).await {
            Ok(event) => reply(StatusCode::OK, format!("{{\"id\":\"{}\"}}\n", event.id())),
            Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
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
    let on_stop = {
        let hub = hub.clone();
        async move { hub.close() }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        let (hub, sse) = (hub.clone(), sse.clone());
        let service = service_fn(move |req| {
            let (hub, sse) = (hub.clone(), sse.clone());
            async move { Ok::<_, Infallible>(handle(hub, sse, req).await) }
        });
        conn.serve(None, service)
    })
    .await
}
