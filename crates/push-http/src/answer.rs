//! The short answers every technique gives the same way.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::Full;

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
pub(crate) fn unavailable<B: From<Bytes>>(retry_after: Duration, reason: &str) -> Response<B> {
    let mut res = text(StatusCode::SERVICE_UNAVAILABLE, reason);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    res
}

/// `204 No Content` with `Allow: allow`: the answer to `OPTIONS` (the endpoint adds the CORS
/// headers when [`Settings::cors`](crate::Settings::cors) is set).
#[must_use]
pub fn options<B: From<Bytes>>(allow: &'static str) -> Response<B> {
    let mut res = Response::new(B::from(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// The answer for a hub error, each with the error's text, in a body every server takes:
/// `Full<Bytes>` is an axum response as it is (`error_response(&e, d).into_response()`) and a
/// hyper one (`.map(BodyExt::boxed)` where the service answers a boxed body).
///
/// | error | answer |
/// |---|---|
/// | [`OutcomeUnknown`](push_core::Error::OutcomeUnknown) | `202 Accepted`, `application/json`: `{"outcome":"unknown","error":TEXT,"retry":"repeat the request with the same Idempotency-Key header"}` |
/// | [`EventTooLarge`](push_core::Error::EventTooLarge) | `413` |
/// | [`Complete`](push_core::Error::Complete) | `409` (a publish to a complete topic) |
/// | [`Payload`](push_core::Error::Payload) | `400` (a payload that is not its kind) |
/// | [`Unsupported`](push_core::Error::Unsupported) | `501` |
/// | any other: closed, at the topic cap, the backend unreachable ([`Backend`](push_core::Error::Backend)) | `503` + `Retry-After` (worth retrying later; nothing was stored) |
///
/// Why `202` for an unknown outcome: the backend was asked and did not answer, so the event
/// may be stored (or be stored later: a paused Redis runs what it received when it resumes).
/// A `5xx` would tell the client it failed, and a client that retries a failure without an
/// idempotency key would store it twice. RFC 9110 §15.3.3 defines `202` as "the request has
/// been accepted for processing, but the processing has not been completed. The request might
/// or might not eventually be acted upon": exactly this. It is not a failure, and it carries no
/// `id`, so a client that needs to know repeats the request with the same `Idempotency-Key`,
/// which answers `200` with the stored event's cursor if the first attempt was stored, and
/// stores it once if it was not.
///
/// In an axum handler, for a hub call of your own:
///
/// ```
/// use axum::response::{IntoResponse, Response};
/// use push_core::{Hub, Topic};
/// use std::time::Duration;
///
/// async fn finish(hub: Hub, topic: Topic) -> Response {
///     match hub.complete(&topic).await {
///         Ok(end) => format!("{{\"end\":\"{end}\"}}\n").into_response(),
///         Err(e) => push_http::error_response(&e, Duration::from_secs(5)).into_response(),
///     }
/// }
/// ```
#[must_use]
pub fn error_response(error: &push_core::Error, retry_after: Duration) -> Response<Full<Bytes>> {
    match error {
        push_core::Error::OutcomeUnknown(_) => outcome_unknown(error),
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

/// What the `retry` member of an unknown outcome's answer says.
const RETRY_ADVICE: &str = "repeat the request with the same Idempotency-Key header";

/// `202 Accepted` with `{"outcome":"unknown","error":…,"retry":…}`; see [`error_response`].
fn outcome_unknown<B: From<Bytes>>(error: &push_core::Error) -> Response<B> {
    let mut body = String::with_capacity(96 + RETRY_ADVICE.len());
    body.push_str("{\"outcome\":\"unknown\",\"error\":");
    json_string(&mut body, &error.to_string());
    body.push_str(",\"retry\":");
    json_string(&mut body, RETRY_ADVICE);
    body.push_str("}\n");
    let mut res = Response::new(B::from(Bytes::from(body)));
    *res.status_mut() = StatusCode::ACCEPTED;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Appends `text` as a JSON string (RFC 8259: quotes, backslashes and control characters
/// escaped).
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(res: Response<Full<Bytes>>) -> Bytes {
        use http_body_util::BodyExt as _;
        res.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_accepted_with_advice_and_no_id() {
        let error =
            push_core::Error::OutcomeUnknown("redis publish failed: \"timed\" out\n".into());
        let res = error_response(&error, Duration::from_secs(5));
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        assert!(res.headers().get(RETRY_AFTER).is_none());
        let body: serde_json::Value = serde_json::from_slice(&body(res).await).unwrap();
        assert_eq!(body["outcome"], "unknown");
        assert_eq!(body["retry"], RETRY_ADVICE);
        assert!(body.get("id").is_none());
        let text = body["error"].as_str().unwrap();
        assert!(
            text.contains("redis publish failed: \"timed\" out\n"),
            "{text}"
        );
        assert!(text.contains("same idempotency key"), "{text}");
    }

    #[test]
    fn a_backend_failure_is_unavailable() {
        let error = push_core::Error::Backend("redis publish failed: connection refused".into());
        let res = error_response(&error, Duration::from_secs(5));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[RETRY_AFTER], "5");
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\u{1}\u{7f}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\u0001\u{7f}é\"");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\u{1}\u{7f}é");
    }
}
