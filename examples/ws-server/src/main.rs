//! A complete hyper server with push-ws, to copy from.
//!
//! - `GET /ws/{topic}`: a WebSocket subscribed to `topic` (resume with `?since=CURSOR`); more
//!   topics with `{"op":"subscribe",…}` messages. HTTP/1.1 upgrade or HTTP/2 extended CONNECT.
//! - `GET /echo`: an echo WebSocket with the same limits, for conformance suites.
//! - `POST /topics/{topic}`: publishes the body as one event, answers `{"id":"CURSOR"}`.
//!
//! SIGTERM or Ctrl-C closes every WebSocket with 1001 and waits (bounded) for them to go.
//!
//! ```sh
//! cargo run -p ws-server -- --addr 127.0.0.1:8080
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use push_core::{Hub, Topic};
use push_http::Publisher;
use push_ws::Ws;
use server_kit::ServerArgs;

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(text.into()).boxed_unsync());
    *res.status_mut() = status;
    res
}

async fn handle(publisher: Publisher, ws: Ws, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/echo" {
        return ws.echo(req).map(BodyExt::boxed_unsync);
    }
    if let Some(name) = path.strip_prefix("/ws/") {
        return match Topic::new(name) {
            Ok(topic) => ws.respond(&topic, req).await.map(BodyExt::boxed_unsync),
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
        "routes: GET /ws/{topic}, GET /echo, POST /topics/{topic}\n",
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
    let endpoint = Ws::new(hub.clone());
    let publisher = Publisher::new(hub.clone());
    let on_stop = {
        let (hub, ws) = (hub.clone(), endpoint.clone());
        async move {
            ws.shutdown().await;
            hub.close();
        }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        let (publisher, endpoint) = (publisher.clone(), endpoint.clone());
        let service = service_fn(move |req| {
            let (publisher, endpoint) = (publisher.clone(), endpoint.clone());
            async move { Ok::<_, Infallible>(handle(publisher, endpoint, req).await) }
        });
        async move {
            let mut builders = conn.ctx.builders();
            // RFC 8441: WebSocket over HTTP/2 by extended CONNECT.
            builders.http2.enable_connect_protocol();
            conn.serve(Some(&builders), service).await;
        }
    })
    .await
}
