//! HTTP/2 server push on [`push_core`], driving the [`h2`] crate's server directly (hyper 1
//! exposes no server push).
//!
//! - [`Builder::serve_connection`] serves any `http::Request -> http::Response<impl Body>`
//!   handler over one HTTP/2 connection (h2c with prior knowledge on TCP, or TLS after ALPN
//!   `h2`), with the settings a server needs ([`H2Config`]: concurrent streams, windows, header
//!   list size, keep-alive pings, handshake and drain timeouts). Like hyper's connections, the
//!   returned [`Connection`] is a future with
//!   [`graceful_shutdown`](Connection::graceful_shutdown) (GOAWAY) and an opaque [`Error`].
//! - **Resource push.** A [`PushPolicy`] ("with `/index.html` push `/styles.css` and `/app.js`")
//!   or a handler's [`Push`] response extension becomes PUSH_PROMISE frames sent before the main
//!   response, the pushed responses served by the same handler.
//! - **103 Early Hints.** The policy also sends `103 Early Hints` with
//!   `Link: <…>; rel=preload` before the final response. **Browsers act on 103 and ignore
//!   server push**: Chrome removed push in version 106 and Firefox in 132, so for browsers the
//!   early hints are what helps; push reaches HTTP/2 client libraries, nghttp and curl.
//! - **Fallback.** When the client disabled push (`SETTINGS_ENABLE_PUSH = 0`) or the
//!   connection's push budget is spent, the main response still arrives, with `Link` preload
//!   headers for what was not pushed.
//! - **Event push.** [`Events::respond`] turns `GET /h2/{topic}?since=CURSOR` into a stream
//!   on which every event is pushed as its own response (see [`Events`]).
//! - **Limits.** [`H2Config::max_pushes_in_flight`] promised streams unfinished at once and
//!   [`H2Config::max_pushed_bytes`] per connection; a client that never reads is held back by
//!   HTTP/2 flow control (pushed data waits for its window), not by buffering without bound.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use push_core::{Hub, Topic};
//! use push_h2::{Builder, Events, H2Body, PushPolicy};
//!
//! # async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let hub = Hub::memory();
//! let events = Events::new(hub.clone());
//! let h2 = Builder::new().push_policy(PushPolicy::new().push("/", &["/app.js"]));
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     let events = events.clone();
//!     let service = move |req: Request<H2Body>| {
//!         let events = events.clone();
//!         async move {
//!             match req.uri().path().strip_prefix("/h2/").map(Topic::new) {
//!                 // Every event of the topic arrives as a pushed response.
//!                 Some(Ok(topic)) => events.respond(&topic, req).await,
//!                 // The page, with /app.js pushed before it.
//!                 _ => Response::new(Full::new(Bytes::from_static(b"<script src=/app.js>"))),
//!             }
//!         }
//!     };
//!     tokio::spawn(h2.serve_connection(stream, service));
//! }
//! # }
//! ```
//!
//! Measured figures (page loads with push, 103 and plain requests; events per second pushed)
//! are in the repository README's benchmark section (`cargo xtask bench --only h2`).
//!
//! A complete server is in [`examples/h2-server`](https://github.com/push-rs/push/tree/main/examples/h2-server) (h2c, or `--tls` with a certificate generated
//! at start and ALPN `h2`); with the `client` feature, [`client::Client`]
//! receives pushed resources and events.
//!
//! With the `tracing` feature, the endpoint logs its refusals, the end of each event stream,
//! the gaps and resets it tells and the HTTP/2 connections the driver ends for a protocol error
//! or a missed PING, through the `tracing` facade with the target `push_h2`: one event per
//! decision, none per delivered event ([`push_http::logs`] lists them).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod endpoint;
mod error;
mod server;

pub use crate::body::H2Body;
pub use crate::endpoint::{Events, EventsBody, EventsConfig, EVENT_ID, EVENT_TIME, EVENT_TYPE};
pub use crate::error::Error;
pub use crate::server::{Builder, Connection, H2Config, H2Stats, Push, PushPolicy};
