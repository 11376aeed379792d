//! Server-Sent Events for hyper, axum or any tower stack, on [`push_core`].
//!
//! [`Sse::respond`] takes an `http::Request` and returns an `http::Response` whose body is the
//! `text/event-stream` of a topic, framed exactly as the
//! [WHATWG HTML standard](https://html.spec.whatwg.org/multipage/server-sent-events.html)
//! defines it:
//!
//! - every event carries its cursor as `id:`, so a browser's `EventSource` that loses its
//!   connection reconnects by itself with `Last-Event-ID` and gets exactly what it missed;
//! - the first connection can resume too, with `?lastEventId=CURSOR` (`EventSource` cannot set
//!   headers);
//! - the resume outcome is the stream's first event when it is not a plain resume: an event of
//!   type [`GAP_EVENT`] (`push-gap`, data `{"missed":N}`) or [`RESET_EVENT`] (`push-reset`,
//!   data `{}`), each with the `id:` to resume from, so a page can react:
//!   `source.addEventListener("push-reset", () => clearMyState())`;
//! - a complete topic ([`Hub::complete`](push_core::Hub::complete)) ends with a
//!   [`COMPLETE_EVENT`] (`push-complete`) whose `id:` is the topic's end; the browser's
//!   reconnect with it gets `204 No Content`, and the `EventSource` stops for good (WHATWG);
//! - multi-line data becomes several `data:` lines (CR, LF and CRLF alike); ids and event types
//!   cannot break the framing (push-core validates them, and [`SseEvent`] rejects CR/LF);
//! - a `:` comment keeps idle connections alive (every 15 s by default), `retry:` hints the
//!   reconnection delay, and `Cache-Control: no-cache` plus `X-Accel-Buffering: no` keep
//!   proxies from buffering;
//! - each event is encoded once and its bytes shared by every stream;
//! - when the hub is closed ([`Hub::close`](push_core::Hub::close)), every stream sends a final
//!   `retry:` hint and ends, so hyper's graceful shutdown completes with clients connected.
//!
//! SSE is a text protocol: payloads that are not UTF-8 are sent with U+FFFD in place of invalid
//! bytes; push-stream and push-ws carry binary payloads exactly. An event with an empty payload
//! is sent as `data: ` and fires a `message` with empty data.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response};
//! use push_core::{Hub, NewEvent, Topic};
//! use push_sse::{Sse, SseBody};
//!
//! async fn handle(sse: &Sse, req: Request<()>) -> Response<SseBody> {
//!     // Route /sse/{topic}; a bad name would be the caller's 400.
//!     let name = req.uri().path().trim_start_matches("/sse/");
//!     let topic = Topic::new(name).expect("valid topic");
//!     sse.respond(&topic, req).await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::memory();
//! let sse = Sse::new(hub.clone());
//! let res = handle(&sse, Request::get("/sse/news").body(()).unwrap()).await;
//! assert_eq!(res.headers()["content-type"], "text/event-stream; charset=utf-8");
//! hub.publish(&Topic::new("news").unwrap(), NewEvent::new("hello")).await.unwrap();
//! # }
//! ```
//!
//! A complete hyper server is in [`examples/sse-server`](https://github.com/push-rs/push/tree/main/examples/sse-server).
//!
//! Several topics in one request: [`Sse::respond_topics`] (`?topic=a&topic=b`, read with
//! [`query_topics`](push_http::topics::query_topics)), with one
//! [combined cursor](push_http::topics) for all of them and events that carry their topic.
//!
//! # Client
//!
//! With the `client` feature, [`client::Client`] reads a stream, reconnects with backoff and
//! `Last-Event-ID`, and honours `retry:`.
//!
//! With the `tracing` feature, the endpoint logs its refusals, the end of each stream
//! (credentials expired, shutdown, topic finished, the client gone) and the gaps and resets it
//! tells, through the `tracing` facade with the target `push_sse`: one event per decision, none
//! per delivered event ([`push_http::logs`] lists them).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod encode;
mod endpoint;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;

pub use crate::encode::{
    encode_event, FieldError, SseEvent, COMPLETE_EVENT, EXPIRED_EVENT, GAP_EVENT, RESET_EVENT,
};
pub use crate::endpoint::{Sse, SseBody, SseConfig, SseFraming, LAST_EVENT_ID};
