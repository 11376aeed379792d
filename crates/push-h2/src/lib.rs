//! HTTP/2 server push on [`push_core`], driving the [`h2`] crate's server directly (hyper 1
//! exposes no server push).
//!
//! - [`serve_connection`] serves any `http::Request -> http::Response<impl Body>` handler over
//!   one HTTP/2 connection (h2c with prior knowledge on TCP, or TLS after ALPN `h2`), with the
//!   settings a server needs ([`H2Config`]: concurrent streams, windows, header list size,
//!   keep-alive pings) and graceful shutdown with GOAWAY.
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
//! # Measured
//!
//! `cargo xtask bench`, a page with 8 linked 4 KiB assets through a 40 ms round-trip proxy,
//! the handler taking 30 ms: 75.5 ms with push, 87.2 ms with 103 Early Hints and fetches,
//! 118.6 ms with plain requests (one round trip saved either way). Events pushed as responses
//! to one client on loopback: 64 k/s, against 316 k/s for the same events as lines on the
//! subscription's body.
//!
//! A complete server is in `examples/h2-server` (h2c, or `--tls` with a certificate generated
//! at start and ALPN `h2`); with the `client` feature, [`client::Client`]
//! receives pushed resources and events.

mod body;
#[cfg(feature = "client")]
pub mod client;
mod events;
mod server;

pub use crate::body::H2Body;
pub use crate::events::{Events, EVENT_ID, EVENT_TIME, EVENT_TYPE};
pub use crate::server::{serve_connection, H2Config, H2Stats, Push, PushEvents, PushPolicy};
