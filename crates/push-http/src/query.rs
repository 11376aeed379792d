//! Reading a client's cursor from a header or a URL query string.

use std::borrow::Cow;

use push_core::StartFrom;

/// The first value of `name` in a URL query string (without the `?`), percent-decoded, as
/// technique crates read `since` or `lastEventId`. `None` when absent.
///
/// ```
/// assert_eq!(push_http::query_value("a=1&since=ab-3", "since").as_deref(), Some("ab-3"));
/// assert_eq!(push_http::query_value("a=%20b", "a").as_deref(), Some(" b"));
/// assert_eq!(push_http::query_value("a=1", "since"), None);
/// ```
#[must_use]
pub fn query_value<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Where a client asks to start: the `header`'s value when present and not empty, else the
/// `param` query parameter when present and not empty, else `default`. A cursor that does not
/// parse gives [`StartFrom::Invalid`] (a reset), never an error.
///
/// ```
/// use push_core::StartFrom;
/// let req = http::Request::get("/sse/t?lastEventId=abc-3").body(()).unwrap();
/// let (parts, ()) = req.into_parts();
/// let from = push_http::start_from(&parts, Some("last-event-id"), "lastEventId", StartFrom::Newest);
/// assert_eq!(from, StartFrom::After("abc-3".parse().unwrap()));
/// ```
#[must_use]
pub fn start_from(
    parts: &http::request::Parts,
    header: Option<&str>,
    param: &str,
    default: StartFrom,
) -> StartFrom {
    StartFrom::from_client(cursor_text(parts, header, param).as_deref(), default)
}

/// The cursor text a request carries: the `header`'s value when present and not empty, else
/// the `param` query parameter when present and not empty. [`start_from`] reads it as one
/// cursor, [`multi::start_points`](crate::multi::start_points) as a combined one.
#[must_use]
pub fn cursor_text<'a>(
    parts: &'a http::request::Parts,
    header: Option<&str>,
    param: &str,
) -> Option<Cow<'a, str>> {
    let header = header
        .and_then(|name| parts.headers.get(name))
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .filter(|v| !v.is_empty());
    if let Some(cursor) = header {
        return Some(Cow::Borrowed(cursor));
    }
    query_value(parts.uri.query().unwrap_or(""), param).filter(|v| !v.is_empty())
}
