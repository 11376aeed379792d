//! The HTTP side of the **push** technique crates, written once: the endpoint core every
//! technique is built on, the streaming engine, access control, publishing, and the client
//! side.
//!
//! `push-core` holds the model (topics, cursors, subscriptions, retention) and nothing
//! HTTP-shaped; each technique crate (`push-sse`, `push-stream`, `push-poll`, `push-longpoll`,
//! `push-ws`, `push-h2`) turns it into one way the web delivers news. What they share on the
//! HTTP side lives here, the way `http-body-util` sits beside `http-body`: technique crates
//! depend on this crate and on `push-core`, never on each other.
//!
//! By concern:
//!
//! - **The endpoint core**: [`Endpoint`] holds what every technique endpoint holds (the hub,
//!   the limits, the access hook, the meters, the shared [`Settings`]) and answers in the two
//!   ways techniques answer: a long-lived stream ([`Endpoint::stream`],
//!   [`Endpoint::stream_topics`]) and a batch ([`Endpoint::batch_topics`]). A technique crate
//!   is its wire format, its own settings, and `respond`.
//! - **The streaming engine**: a [`Framing`] (what a technique writes for the start outcome,
//!   an event, a gap, a heartbeat, the goodbye) turned into a [`StreamBody`] by the engine
//!   (when each is written, the credentials' end, the backend away and back).
//! - **Several topics in one request**: [`topics`] (the combined cursor, [`topics::query_topics`]).
//! - **Access**: [`Authorizer`] (a [`Grant`] of topics to read and publish, or a [`Refusal`]),
//!   [`jwt`] (features `jwt-hs256`, `jwt`), [`Cors`] and [`Origins`], and the limits: a per-client
//!   [`Quota`] beside each endpoint's cap, held by a [`Permit`].
//! - **Answers**: [`error_response`] for a hub error, and the short [`text`],
//!   [`method_not_allowed`] and [`options`] answers.
//! - **Publishing**: [`Publisher`], the publish endpoint (`POST` body → event).
//! - **Wire forms**: [`json`] (feature `json`): the JSON forms of poll, long-poll, streaming,
//!   WebSocket and HTTP/2 event lines, and [`Ndjson`](json::Ndjson) as a [`Framing`].
//! - **Client side**: [`client`] (feature `client`): the HTTP side of the poll and long-poll
//!   clients, and reading the JSON forms back; [`browser`]: `push-client.js`, to serve to
//!   pages.
//! - **Telemetry**: [`meters`]: what every technique counts, through the `metrics` facade
//!   (feature `metrics`); [`logs`]: what every technique logs (a refusal, a stream's end, a
//!   gap or a reset told), through the `tracing` facade (feature `tracing`).
//!
//! # Example
//!
//! A technique in a few lines: see [`Endpoint`].

#![cfg_attr(docsrs, feature(doc_cfg))]

mod access;
mod answer;
#[cfg(feature = "json")]
mod batch;
pub mod browser;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod endpoint;
mod error;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub mod json;
pub mod logs;
pub mod meters;
#[cfg(test)]
mod props;
mod publish;
mod query;
mod stream;
pub mod topics;

#[cfg(feature = "jwt-hs256")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt-hs256")))]
pub use crate::access::jwt;
pub use crate::access::{Allow, Authorizer, Cors, Grant, Origins, Permit, Quota, Refusal};
pub use crate::answer::{error_response, method_not_allowed, options, text};
pub use crate::endpoint::{Endpoint, Settings};
pub use crate::error::Error;
pub use crate::publish::{PublishConfig, Publisher, EVENT_TYPE_HEADER, IDEMPOTENCY_KEY_HEADER};
pub use crate::query::{matches_tag, query_value};
pub use crate::stream::{End, Framing, StreamBody};
