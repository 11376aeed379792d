//! The short answers every technique gives the same way.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

/// A short `text/plain` answer.
#[must_use]
pub fn text<B: From<Bytes>>(status: StatusCode, text: &str) -> Response<B> {
    let mut res = Response::new(B::from(Bytes::copy_from_slice(text.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// `405 Method Not Allowed` with `Allow: allow` (e.g. `"GET, HEAD"`) and a one-line reason.
#[must_use]
pub fn method_not_allowed<B: From<Bytes>>(allow: &'static str, reason: &str) -> Response<B> {
    let mut res = text(StatusCode::METHOD_NOT_ALLOWED, reason);
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// `503 Service Unavailable` with `Retry-After` (whole seconds, at least 1) and a one-line
/// reason: at a limit, or while the hub is closed or unreachable.
#[must_use]
pub fn unavailable<B: From<Bytes>>(retry_after: Duration, reason: &str) -> Response<B> {
    let mut res = text(StatusCode::SERVICE_UNAVAILABLE, reason);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    res
}

/// `204 No Content` with `Allow: allow`: the answer to `OPTIONS` (CORS headers are added by
/// [`Cors::apply`](crate::Cors::apply) when configured).
#[must_use]
pub fn options<B: From<Bytes>>(allow: &'static str) -> Response<B> {
    let mut res = Response::new(B::from(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// The answer for a hub error: `503` with `Retry-After` when the hub is closed, at its topic
/// cap or its backend is unreachable (worth retrying later), `413` for an event over the size
/// limit, `409` for a publish to a complete topic, `400` for a payload that is not its kind,
/// `501` for what the backend does not support, each with the error's text.
#[must_use]
pub fn error_response<B: From<Bytes>>(
    error: &push_core::Error,
    retry_after: Duration,
) -> Response<B> {
    match error {
        push_core::Error::EventTooLarge { .. } => {
            text(StatusCode::PAYLOAD_TOO_LARGE, &format!("{error}\n"))
        }
        push_core::Error::Complete => text(StatusCode::CONFLICT, &format!("{error}\n")),
        push_core::Error::Payload { .. } => text(StatusCode::BAD_REQUEST, &format!("{error}\n")),
        push_core::Error::Unsupported(_) => {
            text(StatusCode::NOT_IMPLEMENTED, &format!("{error}\n"))
        }
        _ => unavailable(retry_after, &format!("{error}\n")),
    }
}
