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
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use push_core::{Hub, NewEvent, Topic};
use push_ws::Ws;
use server_kit::ServerArgs;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body accepted for a publish.
const MAX_PUBLISH: usize = 64 * 1024;

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(text.into()).boxed_unsync());
    *res.status_mut() = status;
    res
}

async fn handle(hub: Hub, ws: Ws, req: Request<Incoming>) -> Response<Body> {
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
    let on_stop = {
        let (hub, ws) = (hub.clone(), endpoint.clone());
        async move {
            ws.shutdown().await;
            hub.close();
        }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        let (hub, endpoint) = (hub.clone(), endpoint.clone());
        let service = service_fn(move |req| {
            let (hub, endpoint) = (hub.clone(), endpoint.clone());
            async move { Ok::<_, Infallible>(handle(hub, endpoint, req).await) }
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
