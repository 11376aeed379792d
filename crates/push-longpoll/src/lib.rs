//! Long polling ("hanging GET") on [`push_core`], for hyper, axum or any tower stack: the client
//! asks for what is new after its cursor, and the server holds the request until there is
//! something, then answers with one complete JSON response.
//!
//! - `GET /longpoll/news?since=CURSOR`: events already retained after `CURSOR` are answered at
//!   once, all of them up to [`LongPollConfig::max_batch`]; otherwise the request is held until
//!   a publish, or for [`LongPollConfig::timeout`] (30 s; a client may ask `?timeout=SECONDS`,
//!   up to [`LongPollConfig::max_timeout`], 55 s: under the 60 s at which many proxies cut a
//!   silent request), then answered with no events and the same cursor.
//! - **Nothing is lost between two requests.** An event published after one answer left and
//!   before the next request arrived is retained in the topic's log; the next request resumes
//!   from the answer's `next` cursor and gets it at once. The answer says how it relates to the
//!   cursor: `resumed`, `gap` with the count missed, or `reset`.
//! - **A client that goes away costs nothing.** The held request is a future the server drops
//!   when the connection closes (HTTP/1.1) or the stream is reset (HTTP/2); that frees its
//!   subscription and its place at once. [`LongPoll::open`] is the gauge.
//! - **Bounded.** At [`LongPollConfig::max_held`] (10,000) held requests, new ones get `503`
//!   with `Retry-After`.
//! - **Graceful shutdown.** [`Hub::close`](push_core::Hub::close) answers every held request at
//!   once (with anything published before the close, and `Retry-After`), so hyper's graceful
//!   shutdown completes.
//!
//! The JSON is the batch answer of [`push_http::json`]:
//!
//! ```json
//! {"outcome":"resumed","next":"5f3a9c1e2b4d-42","more":false,
//!  "events":[{"id":"5f3a9c1e2b4d-42","time":1700000000000,"data":"hello"}]}
//! ```
//!
//! Several topics in one request: [`LongPoll::respond_topics`] (`?topic=a&topic=b`, read with
//! [`query_topics`](push_http::topics::query_topics)), with one
//! [combined cursor](push_http::topics) for all of them and events that carry their topic.
//!
//! When the topic is complete ([`Hub::complete`](push_core::Hub::complete)), the answer that
//! reaches its end carries `"complete":true`, at once even on a held long-poll: stop asking.
//!
//! The payload's key says its kind: `data` for text, `json` for a JSON payload (the value
//! itself, decoded once), `data_base64` for binary (carried exactly).
//! `Cache-Control: no-store`. `HEAD` answers at once (timeout 0); `OPTIONS` answers `204` with
//! `Allow` and, when [`LongPollConfig::cors`] is set, the CORS preflight headers.
//!
//! # Example
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, NewEvent, Topic};
//! use push_longpoll::LongPoll;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::memory();
//! let longpoll = LongPoll::new(hub.clone());
//! let news = Topic::new("news").unwrap();
//!
//! let publisher = hub.clone();
//! let topic = news.clone();
//! tokio::spawn(async move {
//!     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//!     publisher.publish(&topic, NewEvent::new("hello")).await.unwrap();
//! });
//! // Held until the publish above.
//! let req = Request::get("/longpoll/news").body(()).unwrap();
//! let res = longpoll.respond(&news, req).await;
//! assert_eq!(res.status(), 200);
//! # }
//! ```
//!
//! A complete hyper server is in [`examples/longpoll-server`](https://github.com/push-rs/push/tree/main/examples/longpoll-server). With the `client` feature,
//! [`client::LongPollClient`] follows one request with the next, cursor handled.
//!
//! With the `tracing` feature, the endpoint logs its refusals, the gaps and resets it tells and
//! the requests it held at shutdown, through the `tracing` facade with the target
//! `push_longpoll`: one event per decision, none per delivered event ([`push_http::logs`] lists
//! them).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod endpoint;
mod error;

pub use crate::endpoint::{LongPoll, LongPollBody, LongPollConfig};
pub use crate::error::Error;
