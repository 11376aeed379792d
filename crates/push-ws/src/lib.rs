//! WebSocket push on [`push_core`], for hyper, axum or any tower stack: one connection carries
//! events of several topics, each resumable from its cursor, and the client can subscribe,
//! unsubscribe, publish (when allowed) and send application messages.
//!
//! [`Ws::respond`] validates the handshake (RFC 6455 over HTTP/1.1, or RFC 8441 extended
//! CONNECT over HTTP/2), checks the `Origin` and the authorization hook, answers `101`/`200`,
//! and serves the upgraded connection on a task with
//! [tokio-tungstenite](https://docs.rs/tokio-tungstenite).
//!
//! # Protocol (subprotocol `push.v1`, JSON text frames)
//!
//! Client to server:
//!
//! | message | effect |
//! |---|---|
//! | `{"op":"subscribe","topic":T,"since":C}` | subscribe to `T` after cursor `C` (`since` optional: only new events) |
//! | `{"op":"unsubscribe","topic":T}` | stop receiving `T` |
//! | `{"op":"publish","topic":T,"data":TEXT,"type":TYPE,"key":KEY}` | publish (`json` with a JSON value, or `data_base64` with bytes, instead of `data`; `type` optional), if granted; with `key` (an idempotency key) a retry answers the first publish's cursor instead of storing it twice |
//! | `{"op":"message","data":TEXT}` | an application message for the [`Ws::on_message`] handler |
//! | `{"op":"auth","token":TOKEN}` | a fresh token before the current one expires (see below) |
//!
//! Server to client:
//!
//! | message | when |
//! |---|---|
//! | `{"topic":T,"outcome":"resumed"\|"gap"\|"reset","missed":N,"cursor":C}` | after each subscribe; `gap` also mid-stream when the client fell behind retention |
//! | `{"topic":T,"id":C,"type":TYPE,"time":MS,"data":TEXT}` | each event: `data` for text, `json` holding the value for JSON, `data_base64` for binary |
//! | `{"topic":T,"published":C}` | a publish was accepted, with its cursor |
//! | `{"outcome":"unknown","error":E,"topic":T}` | a publish the store did not answer: it may be stored; repeat it with the same `key` |
//! | `{"topic":T,"unsubscribed":true}` | after an unsubscribe |
//! | `{"topic":T,"complete":true,"cursor":C}` | the topic is complete and every event was sent; its subscription ended |
//! | `{"reply":TEXT}` | the application handler's answer |
//! | `{"auth":"ok","expires":S,"unsubscribed":[T…]}` | a fresh token was accepted: its end (Unix seconds, `null` for none), and the topics it no longer covers, now unsubscribed |
//! | `{"error":TEXT,"topic":T}` | a refused or malformed request; the connection stays open |
//!
//! With an [`Authorizer`](push_http::Authorizer) ([`Ws::authorize`]), the handshake's grant
//! decides what the connection may subscribe and publish to, and the connection closes with
//! code 4401 when the grant [expires](push_http::Grant::expires). To stay connected, the client
//! sends `{"op":"auth","token":…}` before then: the authorizer runs again on the handshake's
//! URI, `Host` and `Origin` with `Authorization: Bearer TOKEN`, and its grant replaces the old
//! one. A refused token gets an `error` message and changes nothing.
//!
//! To resume after a reconnect, the client subscribes to each topic again with the last `id`
//! (or outcome `cursor`) it saw for it and receives exactly the events it missed.
//!
//! # Close codes
//!
//! | code | when |
//! |---|---|
//! | 1001 | server shutting down ([`Ws::shutdown`] or the hub closed), or no frame after a ping within [`WsConfig::pong_timeout`] |
//! | 1002 | a WebSocket protocol error |
//! | 1003 | a binary message (the protocol is JSON text) |
//! | 1007 | a text message that is not valid UTF-8 |
//! | 1008 | a slow client under [`SlowClient::Close`] |
//! | 1009 | a message or frame over [`WsConfig::max_message`] / [`WsConfig::max_frame`] |
//! | 1012 | [`Ws::restart_all`]: reconnect (and resume) |
//! | 4401 | the credentials expired: reconnect with a fresh token (and resume) |
//!
//! # Conformance
//!
//! Autobahn|Testsuite's case files, run by kosoku 0.1.0 against [`Ws::echo`] with the default
//! configuration (`cargo xtask autobahn`, part of the workspace CI):
//!
//! | group | what | cases | result |
//! |---|---|---:|---|
//! | 1 | framing: text and binary payloads of every length class | 16 | 16 OK |
//! | 2 | pings and pongs | 11 | 11 OK |
//! | 3 | reserved bits | 7 | 7 OK |
//! | 4 | opcodes | 10 | 10 OK |
//! | 5 | fragmentation | 20 | 20 OK |
//! | 6 | UTF-8 handling | 145 | 143 OK, 2 NON-STRICT |
//! | 7 | the closing handshake and close codes | 37 | 34 OK, 3 INFORMATIONAL |
//! | 10 | limits (a 64 KiB message in 1300-byte fragments) | 1 | 1 OK |
//!
//! NON-STRICT (cases 6.4.3 and 6.4.4: invalid UTF-8 detected when the whole frame has arrived
//! rather than at the first invalid byte; Autobahn allows both) and INFORMATIONAL (7.1.6, 7.13.1,
//! 7.13.2) are Autobahn's passing verdicts.
//!
//! # Cost per idle connection
//!
//! The defaults are chosen for many mostly idle clients: a 1 KiB read buffer (tungstenite's
//! default, 128 KiB, stays allocated for the life of every connection; a client sends small
//! control messages, and the buffer grows for a larger one), no write buffering,
//! and a 256 KiB bound on what may queue for one client. What an idle connection costs with
//! these defaults, against Nchan and a default tokio-tungstenite server, is measured by
//! `cargo xtask bench --only idle` and kept current in the repository README's benchmark
//! section. A connection that receives events also holds, while a write is in flight, one batch
//! of event frames: at most 64, and no more once they reach [`WsConfig::max_write_buffer`]
//! bytes (so under twice that), shared with the topic's log while it retains them.
//!
//! # Slow clients
//!
//! Events are read from the topic's shared log only when the socket accepts more, so a slow
//! client costs no queue: under [`SlowClient::Gap`] (the default) its subscriptions fall behind
//! and, past retention, skip ahead with a `gap` message carrying the exact count missed; under
//! [`SlowClient::Close`] a write that waits longer than [`WsConfig::slow_timeout`] closes the
//! connection with 1008.
//!
//! # Example
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, Topic};
//! use push_ws::Ws;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let ws = Ws::new(Hub::memory());
//! let req = Request::get("/ws/news")
//!     .header("host", "localhost")
//!     .header("upgrade", "websocket")
//!     .header("connection", "upgrade")
//!     .header("sec-websocket-version", "13")
//!     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .body(())
//!     .unwrap();
//! let res = ws.respond(&Topic::new("news").unwrap(), req).await;
//! assert_eq!(res.status(), 101);
//! assert_eq!(res.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! # }
//! ```
//!
//! A complete hyper server is in [`examples/ws-server`](https://github.com/push-rs/push/tree/main/examples/ws-server); with the `client` feature,
//! [`client::Client`] resubscribes with its cursors after a reconnect.
//!
//! With the `tracing` feature, the endpoint logs its refusals (of handshakes and of subscribe
//! messages), the gaps and resets it tells and each connection's close with its reason and code
//! (a slow client, expired credentials, shutdown, a protocol error, the client gone), through
//! the `tracing` facade with the target `push_ws`: one event per decision, none per delivered
//! event ([`push_http::logs`] lists them).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod config;
mod connection;
mod endpoint;
mod frames;
mod handshake;
mod logs;
mod protocol;
mod rate;
mod subs;
mod wakes;

pub use crate::config::{OnMessage, SlowClient, WsConfig};
pub use crate::endpoint::{Ws, WsBody};
pub use crate::handshake::OriginPolicy;

/// The subprotocol name of the JSON protocol above.
pub const SUBPROTOCOL: &str = "push.v1";
