//! The one error type of push-http: a client's request, reading push's JSON back, a JWT key.

use std::time::Duration;

use http::StatusCode;

/// What can go wrong in push-http outside an HTTP answer (those are responses, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not an `http://` URL with a host.
    #[error("invalid URL: {0}")]
    Url(String),
    /// The request failed on the network.
    #[error("request failed: {0}")]
    Http(String),
    /// The answer's body could not be read (or was over the client's bound).
    #[error("reading the answer failed: {0}")]
    Body(String),
    /// The server answered with a status the client does not take.
    #[error("server answered {status}: {reason}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The body's text.
        reason: String,
        /// The server's `Retry-After`, if any (`429`, `503`).
        retry_after: Option<Duration>,
    },
    /// What was read is not push's JSON (an event object, a batch answer, a line).
    #[error("invalid push JSON: {0}")]
    Json(String),
    /// The topic is complete and every event was received: nothing more will come, so a
    /// client stops asking.
    #[error("the topic is complete")]
    Complete,
    /// An HMAC secret shorter than RFC 7518 §3.2 allows (32 bytes for HS256): a short one can
    /// be guessed offline from any token signed with it.
    #[cfg(feature = "jwt-hs256")]
    #[error("the HS256 secret is {len} bytes; RFC 7518 asks for at least 32")]
    ShortSecret {
        /// The secret's length in bytes.
        len: usize,
    },
    /// A JWT key could not be read.
    #[cfg(feature = "jwt")]
    #[error("the JWT key could not be read: {0}")]
    Key(#[source] jsonwebtoken::errors::Error),
}
