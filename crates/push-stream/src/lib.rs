//! HTTP streaming of newline-delimited JSON on [`push_core`], for hyper, axum or any tower
//! stack.
//!
//! [`Streamer::respond`] answers a request with one response that stays open and carries one
//! JSON object per line (`application/x-ndjson`): chunked on HTTP/1.1, DATA frames on HTTP/2.
//! Each line is its own frame, handed to the connection as soon as the event is published. A
//! browser reads it with `fetch()` and a `ReadableStream`; any HTTP client can.
//!
//! # Lines
//!
//! | line | when |
//! |---|---|
//! | `{"outcome":"resumed","cursor":C}` | first, for a plain start or resume |
//! | `{"outcome":"gap","missed":N,"cursor":C}` | first, when events after `since` left retention; or mid-stream when the client fell behind |
//! | `{"outcome":"reset","cursor":C}` | first, when `since` belongs to another epoch or is garbage: drop local state |
//! | `{"id":C,"type":T,"time":MS,"data":TEXT}` | each event; `type` only when set; `time` is the publish time (ms since the Unix epoch) |
//! | `{"id":C,…,"json":VALUE}` | an event with a JSON payload, carried as the value itself |
//! | `{"id":C,…,"data_base64":B64}` | an event with a binary payload, carried exactly in standard base64 |
//! | `{"heartbeat":MS}` | after 15 s (configurable) of silence |
//! | `{"end":"shutdown","cursor":C}` | last, when the hub is closed (graceful shutdown) |
//! | `{"end":"expired","cursor":C}` | last, when the authorizer's grant expired |
//! | `{"end":"complete","cursor":C}` | last, when the topic is complete: do not reconnect |
//!
//! Several topics in one request: [`Streamer::respond_topics`] (`?topic=a&topic=b`, read with
//! [`query_topics`](push_http::topics::query_topics)), with one
//! [combined cursor](push_http::topics) for all of them and events that carry their topic.
//!
//! To resume, a client requests `?since=C` with the last `id` (or outcome `cursor`) it saw and
//! receives exactly the events after it.
//!
//! # Example
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, Topic};
//! use push_stream::Streamer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let streamer = Streamer::new(Hub::memory());
//! let req = Request::get("/stream/news?since=abc-3").body(()).unwrap();
//! let res = streamer.respond(&Topic::new("news").unwrap(), req).await;
//! assert_eq!(res.headers()["content-type"], "application/x-ndjson");
//! assert_eq!(res.headers()["cache-control"], "no-cache, no-transform");
//! # }
//! ```
//!
//! A complete hyper server is in [`examples/stream-server`](https://github.com/push-rs/push/tree/main/examples/stream-server); with the `client` feature,
//! [`client::StreamClient`] follows a stream and resumes it after a cut.
//!
//! With the `tracing` feature, the endpoint logs its refusals, the end of each stream
//! (credentials expired, shutdown, topic finished, the client gone) and the gaps and resets it
//! tells, through the `tracing` facade with the target `push_stream`: one event per decision,
//! none per delivered event ([`push_http::logs`] lists them).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod endpoint;

pub use crate::endpoint::{StreamBody, StreamConfig, Streamer};
pub use push_http::json::Ndjson;
