//! Short polling on [`push_core`], for hyper, axum or any tower stack: the client asks "what is
//! new after my cursor?" every few seconds, and each answer is one complete JSON response.
//!
//! What makes it cheap and lossless:
//!
//! - **Cursors, not timestamps.** `GET /poll/news?since=CURSOR` answers every retained event
//!   after `CURSOR` (up to [`PollConfig::max_batch`]) and the `next` cursor to ask from; an
//!   event published between two polls is in the next answer. The answer says how it relates to
//!   the cursor: `resumed`, `gap` with the count missed (the cursor fell out of retention), or
//!   `reset` (a cursor from another epoch: drop local state).
//! - **Empty polls cost a `304`.** Every answer carries `ETag: "HEAD"`, the topic's newest
//!   cursor. A client that has seen the head sends `If-None-Match` with it and gets
//!   `304 Not Modified` without a body while nothing is new; the server only reads the head to
//!   decide (no subscription, no JSON). `Cache-Control: no-cache` makes caches revalidate every
//!   time, so none serves stale news.
//! - **The server sets the pace.** [`POLL_INTERVAL`] (`X-Poll-Interval`, seconds) tells the
//!   client how often to poll; with [`PollConfig::min_interval`] and a client key
//!   ([`Poller::respond_keyed`]), a client that polls faster gets `429` with `Retry-After`.
//!
//! The JSON is the batch answer of [`push_http::json`]:
//!
//! ```json
//! {"outcome":"resumed","next":"5f3a9c1e2b4d-42","more":false,
//!  "events":[{"id":"5f3a9c1e2b4d-42","type":"price","time":1700000000000,"json":{"eur":3}}]}
//! ```
//!
//! Several topics in one request: [`Poller::respond_topics`] (`?topic=a&topic=b`, read with
//! [`query_topics`](push_http::topics::query_topics)), with one
//! [combined cursor](push_http::topics) for all of them and events that carry their topic.
//!
//! When the topic is complete ([`Hub::complete`](push_core::Hub::complete)), the answer that
//! reaches its end carries `"complete":true`, at once even on a held long-poll: stop asking.
//!
//! The payload's key says its kind: `data` for text, `json` for a JSON payload (the value
//! itself, decoded once), `data_base64` for binary (carried exactly).
//!
//! | status | when |
//! |---|---|
//! | `200` | the batch answer (`HEAD`: its headers) |
//! | `304` | `If-None-Match` names the head and the cursor is the head |
//! | `204` | `OPTIONS` (with the CORS preflight headers when [`PollConfig::cors`] is set) |
//! | `405` | another method |
//! | `429` | faster than [`PollConfig::min_interval`] (with `Retry-After`) |
//! | `503` | hub closed or unavailable (with `Retry-After`) |
//!
//! # Example
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, NewEvent, Topic};
//! use push_poll::Poller;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::memory();
//! let poller = Poller::new(hub.clone());
//! let news = Topic::new("news").unwrap();
//! let first = hub.publish(&news, NewEvent::new("one")).await.unwrap();
//! hub.publish(&news, NewEvent::new("two")).await.unwrap();
//!
//! let req = Request::get(format!("/poll/news?since={}", first.id())).body(()).unwrap();
//! let res = poller.respond(&news, req).await;
//! assert_eq!(res.status(), 200);
//! let etag = res.headers()["etag"].clone();
//!
//! // Caught up: the same head comes back as 304.
//! let head = etag.to_str().unwrap().trim_matches('"').to_owned();
//! let req = Request::get(format!("/poll/news?since={head}"))
//!     .header("if-none-match", etag)
//!     .body(())
//!     .unwrap();
//! assert_eq!(poller.respond(&news, req).await.status(), 304);
//! # }
//! ```
//!
//! A complete hyper server is in [`examples/poll-server`](https://github.com/push-rs/push/tree/main/examples/poll-server). With the `client` feature,
//! [`client::PollClient`] polls with the cursor and ETag handled.
//!
//! With the `tracing` feature, the endpoint logs its refusals (a rate limit, a method, the hub
//! unavailable, …) and the gaps and resets it tells, through the `tracing` facade with the
//! target `push_poll`: one event per decision, none per delivered event ([`push_http::logs`]
//! lists them).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod endpoint;
mod rate;

pub use crate::endpoint::{PollBody, PollConfig, Poller, POLL_INTERVAL};
