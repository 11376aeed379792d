//! What the **push** technique crates share on the HTTP side, written once.
//!
//! `push-core` holds the model (topics, cursors, subscriptions, retention) and nothing
//! HTTP-shaped; each technique crate (`push-sse`, `push-stream`, `push-poll`, `push-longpoll`,
//! `push-ws`, `push-h2`) turns it into one way the web delivers news. What they have in common
//! on the HTTP side lives here, the way `http-body-util` sits beside `http-body`: technique
//! crates depend on this crate and on `push-core`, never on each other.
//!
//! - [`Frames`] and [`FramedBody`]: a subscription as an [`http_body::Body`] of encoded
//!   frames, given a [`Framing`] (the wire format): the start outcome, events and gaps as they
//!   come, heartbeats when silent, and a goodbye when the hub closes.
//! - [`open_stream`]: the whole long-lived answer that SSE and NDJSON streaming share (method
//!   check, subscription, headers, holding the [`Limiter`]'s permit), configured by
//!   [`StreamSettings`].
//! - The common answers: [`text`], [`method_not_allowed`], [`options`], [`unavailable`], and
//!   [`error_response`] for a hub error.
//! - [`multi`]: several topics in one request (`?topic=a&topic=b`): the topics, one combined
//!   cursor, [`open_streams`] and [`MultiBody`] for streams, merged subscriptions for batches.
//! - [`start_from`]: a client's cursor from a header or a query parameter ([`query_value`]).
//! - [`Cors`] and [`Origins`]: CORS answers applied to an [`http::HeaderMap`], and the origin
//!   allow-list WebSocket handshakes check.
//! - [`Authorizer`]: the one access hook every technique takes (a [`Grant`] of topics to read
//!   and publish, or a [`Refusal`]: `401` or `403`), run before any subscription.
//! - [`jwt`] (feature `jwt`): JSON Web Tokens as an [`Authorizer`] (HS256, RS256, ES256; `exp`,
//!   `nbf`, `aud`; a `push` claim of topic patterns; from `Authorization`, a cookie or
//!   `?access_token=`).
//! - [`Publisher`]: the publish endpoint (`POST` body → event, body limit, event type, the
//!   access check, cross-site requests refused, `{"id":CURSOR}` answer).
//! - [`meters`]: what every technique counts (answers, refusals by reason, open streams,
//!   deliveries, bytes, gaps, resets), through the `metrics` facade with the `metrics` feature.
//! - [`browser`]: the browser client, `push-client.js` ([`browser::CLIENT_JS`]), to serve to
//!   pages.
//! - [`Limiter`]: a non-waiting cap on open streams or held requests (`503`), with a [`Quota`]
//!   per [`Client`] beside it (`429`: streams and subscribed topics per client, by address or
//!   by the subject an authorizer vouched for); its [`Permit`] lives in the body, so the
//!   count drops the moment the server drops the response.
//! - [`json`] (feature `json`): the JSON forms shared by poll, long-poll, streaming, WebSocket
//!   and HTTP/2 event lines.
//! - [`client`] (feature `client`): the HTTP side of the poll and long-poll clients.
//!
//! # Example
//!
//! A technique in a few lines: a stream of one line per event, with a heartbeat.
//!
//! ```
//! use bytes::Bytes;
//! use push_core::{Cursor, Event, Hub, Outcome, StartFrom, Topic};
//! use push_http::{open_stream, End, Framing, Limiter, StreamSettings};
//!
//! struct Lines;
//!
//! impl Framing for Lines {
//!     fn start(&self, _: Outcome, cursor: Cursor) -> Bytes {
//!         format!("start {cursor}\n").into()
//!     }
//!     fn event(&self, event: &Event) -> Bytes {
//!         [event.data().as_ref(), b"\n"].concat().into()
//!     }
//!     fn gap(&self, missed: u64, _: Cursor) -> Bytes {
//!         format!("missed {missed}\n").into()
//!     }
//!     fn heartbeat(&self) -> Bytes {
//!         Bytes::from_static(b"\n")
//!     }
//!     fn end(&self, _: End, _: Cursor) -> Bytes {
//!         Bytes::from_static(b"bye\n")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::memory();
//! let limiter = Limiter::new(100);
//! let settings = StreamSettings::new("text/plain; charset=utf-8");
//! let topic = Topic::new("news").unwrap();
//! let permit = limiter.try_acquire().expect("room for one");
//! let res = open_stream(
//!     &hub,
//!     permit,
//!     &http::Method::GET,
//!     &topic,
//!     StartFrom::Newest,
//!     Lines,
//!     &settings,
//! )
//! .await;
//! assert_eq!(res.status(), 200);
//! assert_eq!(limiter.open(), 1);
//! drop(res);
//! assert_eq!(limiter.open(), 0);
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod access;
mod answer;
mod body;
pub mod browser;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod cors;
mod frames;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub mod json;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwt;
mod limit;
pub mod meters;
pub mod multi;
mod publish;
mod query;

pub use crate::access::{check_read, check_read_all, Allow, Authorizer, Grant, Refusal};
pub use crate::answer::{error_response, method_not_allowed, options, text, unavailable};
pub use crate::body::{admit_stream, open_stream, FramedBody, StreamSettings};
pub use crate::cors::{Cors, CorsRules, Origins};
pub use crate::frames::{End, Frames, Framing};
pub use crate::limit::{Client, Limiter, Over, Permit, Quota};
pub use crate::meters::Meters;
pub use crate::multi::{open_streams, MultiBody, MultiFrames};
pub use crate::publish::{
    payload_kind, PublishBody, PublishConfig, PublishHead, Publisher, EVENT_TYPE_HEADER,
    IDEMPOTENCY_KEY_HEADER,
};
pub use crate::query::{cursor_text, query_value, start_from};
