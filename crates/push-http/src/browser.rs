//! The browser client, `push-client.js`: a dependency-free ES module that follows topics with
//! any technique (WebSocket, SSE, HTTP streaming, long polling, polling), keeps each topic's
//! cursor (optionally in `sessionStorage`, so a reload resumes), reconnects with backoff and
//! jitter, reports outcomes and finished topics, decodes payload kinds, and falls back from a
//! technique that fails to the next with the same cursors.
//!
//! It speaks the several-topics routes (`GET /sse?topic=a&topic=b`, and `/stream`,
//! `/longpoll`, `/poll` alike: each technique crate's `respond_topics`) and push-ws's
//! `push.v1` on `/ws` (topics subscribed by message), each route configurable. Serve
//! [`CLIENT_JS`] at a path of your choice and import it from a page:
//!
//! ```js
//! import { follow } from "/client.js";
//! const sub = follow(["chat:1"], { storage: sessionStorage, onevent: (e) => show(e.data) });
//! ```
//!
//! The same file, with its types (`push-client.d.ts`) and a `package.json`, is in the crate's
//! `js/` directory for npm.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http_body_util::Full;

/// The client module's source.
pub const CLIENT_JS: &str = include_str!("../js/push-client.js");

/// Its TypeScript declarations.
pub const CLIENT_DTS: &str = include_str!("../js/push-client.d.ts");

/// `200` with [`CLIENT_JS`], `text/javascript`, cacheable for an hour; an axum handler
/// returns it as it is.
#[must_use]
pub fn client_js_response() -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(Bytes::from_static(CLIENT_JS.as_bytes())));
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}
