//! push in an axum 0.8 app: each technique is an ordinary axum handler that passes axum's
//! `Request` straight to the crate's `respond`.
//!
//! | route | technique |
//! |---|---|
//! | `GET /poll/{topic}?since=C` (and `OPTIONS`, for CORS preflights) | push-poll |
//! | `GET /longpoll/{topic}?since=C&timeout=S` (and `OPTIONS`) | push-longpoll |
//! | `GET /sse/{topic}` | push-sse |
//! | `GET /stream/{topic}?since=C` | push-stream |
//! | `GET /ws/{topic}?since=C` | push-ws (HTTP/1.1 upgrade) |
//! | `POST /topics/{topic}` | push-http's `Publisher`: publishes the body, answers `{"id":"CURSOR"}` |
//! | `POST /topics/{topic}/complete` | finishes the topic (`{"end":"CURSOR"}`); readers get the rest, then the end |
//! | `DELETE /topics/{topic}` | deletes the topic (`{"deleted":true}`); a cursor from before is a reset |
//! | `GET /sse?topic=a&topic=b`, `/stream`, `/poll`, `/longpoll` alike | several topics, one combined cursor (`respond_topics`) |
//! | `GET /ws` | push-ws with the topics subscribed by message |
//! | `GET /client.js` | push-http's browser client, which speaks the two rows above |
//! | `GET /?topic=T&transport=ws&since=C` | a page following `T` with the client (`ws`, `sse`, `stream`, `longpoll`, `poll`), from `C` when given |
//!
//! `{topic}` is a `push_core::Topic` extracted by axum's `Path` (push-core's `serde` feature):
//! an invalid name is answered `400` before any handler runs. SIGTERM or Ctrl-C closes the hub,
//! which is the one call a graceful stop needs: every SSE stream ends with a `retry:` hint,
//! every stream with its end line, every held long-poll is answered and every WebSocket is
//! closed with 1001, so `axum::serve(..).with_graceful_shutdown(..)` completes.
//!
//! HTTP/2 server push needs push-h2's own connection driver, which axum's server does not use;
//! see `examples/h2-server`.
//!
//! ```sh
//! cargo run -p axum-server -- --addr 127.0.0.1:3000
//! curl -N http://127.0.0.1:3000/sse/news &
//! curl -d 'hello' http://127.0.0.1:3000/topics/news
//! ```

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::Router;
use push_core::{Hub, Topic};
use push_http::{Cors, Origins, Publisher};
use push_longpoll::{LongPoll, LongPollConfig};
use push_poll::{PollConfig, Poller};
use push_sse::Sse;
use push_stream::Streamer;
use push_ws::Ws;

/// Every endpoint, cheap to clone (each is a few reference counts).
#[derive(Clone)]
struct App {
    publish: Publisher,
    poll: Poller,
    longpoll: LongPoll,
    sse: Sse,
    stream: Streamer,
    ws: Ws,
}

async fn poll(State(app): State<App>, Path(topic): Path<Topic>, req: Request) -> impl IntoResponse {
    app.poll.respond(&topic, req).await
}

async fn longpoll(
    State(app): State<App>,
    Path(topic): Path<Topic>,
    req: Request,
) -> impl IntoResponse {
    app.longpoll.respond(&topic, req).await
}

async fn sse(State(app): State<App>, Path(topic): Path<Topic>, req: Request) -> impl IntoResponse {
    app.sse.respond(&topic, req).await
}

async fn stream(
    State(app): State<App>,
    Path(topic): Path<Topic>,
    req: Request,
) -> impl IntoResponse {
    app.stream.respond(&topic, req).await
}

async fn ws(State(app): State<App>, Path(topic): Path<Topic>, req: Request) -> impl IntoResponse {
    app.ws.respond(&topic, req).await
}

/// `?topic=a&topic=b` (at most 16): the topics of a several-topics route.
fn topics(req: &Request) -> Result<Vec<Topic>, (StatusCode, String)> {
    push_http::topics::query_topics(req.uri(), "topic", push_http::topics::MAX_TOPICS)
        .map_err(|reason| (StatusCode::BAD_REQUEST, reason))
}

async fn sse_topics(State(app): State<App>, req: Request) -> axum::response::Response {
    match topics(&req) {
        Ok(topics) => app.sse.respond_topics(&topics, req).await.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn stream_topics(State(app): State<App>, req: Request) -> axum::response::Response {
    match topics(&req) {
        Ok(topics) => app
            .stream
            .respond_topics(&topics, req)
            .await
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn poll_topics(State(app): State<App>, req: Request) -> axum::response::Response {
    match topics(&req) {
        Ok(topics) => app.poll.respond_topics(&topics, req).await.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn longpoll_topics(State(app): State<App>, req: Request) -> axum::response::Response {
    match topics(&req) {
        Ok(topics) => app
            .longpoll
            .respond_topics(&topics, req)
            .await
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// A WebSocket whose client subscribes by message (the browser client does).
async fn ws_bare(State(app): State<App>, req: Request) -> impl IntoResponse {
    app.ws.respond_topics(&[], req).await
}

async fn client_js() -> impl IntoResponse {
    push_http::browser::client_js_response()
}

/// The page: follows `?topic=` (default `news`) with `?transport=` (default: WebSocket, then
/// SSE, then long polling), from `?since=` when given, and lists what arrives.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>push with axum</title>
<p id="status">connecting…</p>
<ol id="events"></ol>
<script type="module">
import { follow } from "/client.js";
const q = new URLSearchParams(location.search);
const transport = q.get("transport");
window.got = [];
const topic = q.get("topic") || "news";
window.sub = follow(topic, {
  transports: transport ? [transport] : ["ws", "sse", "longpoll"],
  cursors: q.get("since") ? { [topic]: q.get("since") } : {},
  storage: sessionStorage,
  onevent: (e) => {
    window.got.push(e.data);
    const li = document.createElement("li");
    li.textContent = typeof e.data === "string" ? e.data : JSON.stringify(e.data);
    document.getElementById("events").append(li);
  },
  onstatus: (s) => { document.getElementById("status").textContent = `${s.state} (${s.transport})`; },
});
</script>
"#;

async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(PAGE)
}

async fn publish(
    State(app): State<App>,
    Path(topic): Path<Topic>,
    req: Request,
) -> impl IntoResponse {
    app.publish.respond(&topic, req).await
}

/// Finishes the topic: readers get the rest, then the end.
async fn complete(
    State(app): State<App>,
    Path(topic): Path<Topic>,
    req: Request,
) -> impl IntoResponse {
    app.publish.complete(&topic, req).await
}

/// Deletes the topic: readers end, and the name starts a new history.
async fn delete(
    State(app): State<App>,
    Path(topic): Path<Topic>,
    req: Request,
) -> impl IntoResponse {
    app.publish.delete(&topic, req).await
}

fn router(hub: Hub) -> Router {
    // Pages on this origin may poll from a browser on another port (a dev server, say).
    let cors = Cors::new(Origins::list(["http://localhost:5173"]));
    let app = App {
        poll: Poller::with_config(hub.clone(), PollConfig::default().cors(Some(cors.clone()))),
        longpoll: LongPoll::with_config(hub.clone(), LongPollConfig::default().cors(Some(cors))),
        sse: Sse::new(hub.clone()),
        stream: Streamer::new(hub.clone()),
        ws: Ws::new(hub.clone()),
        publish: Publisher::new(hub),
    };
    Router::new()
        // `any`: OPTIONS reaches the crates, which answer preflights with their CORS headers.
        .route("/poll/{topic}", any(poll))
        .route("/longpoll/{topic}", any(longpoll))
        .route("/sse/{topic}", get(sse))
        .route("/stream/{topic}", get(stream))
        .route("/ws/{topic}", get(ws))
        .route("/topics/{topic}", post(publish).delete(delete))
        .route("/topics/{topic}/complete", post(complete))
        .route("/sse", get(sse_topics))
        .route("/stream", get(stream_topics))
        .route("/poll", any(poll_topics))
        .route("/longpoll", any(longpoll_topics))
        .route("/ws", get(ws_bare))
        .route("/client.js", get(client_js))
        .route("/", get(page))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route\n") })
        // push-http's per-client quotas count by the peer's address when a request carries
        // it as a `SocketAddr` extension: copied from axum's `ConnectInfo`.
        .layer(axum::middleware::map_request(peer_address))
        .with_state(app)
}

/// Gives the request its client's address, for the per-client quotas (`429` for one client
/// over its share while the others are served).
async fn peer_address(ConnectInfo(peer): ConnectInfo<SocketAddr>, mut req: Request) -> Request {
    req.extensions_mut().insert(peer);
    req
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The command line.
#[derive(Debug, clap::Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    let hub = Hub::memory();
    let app = router(hub.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        stop_signal().await;
        // The one call: every technique says goodbye, so every connection can finish.
        hub.close();
    })
    .await
}
