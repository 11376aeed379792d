//! What a request says: its cursor (from a header or a URL query string), a query value, the
//! entity tags of a conditional request.

use std::borrow::Cow;

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

/// The cursor text a request carries: the `header`'s value when present and not empty, else
/// the `param` query parameter when present and not empty.
pub(crate) fn cursor_text<'a>(
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

/// Whether an `If-None-Match` value names the entity tag `tag` (given without quotes; weak
/// comparison, as RFC 9110 §13.1.2 asks; `*` names any).
///
/// ```
/// let value = http::HeaderValue::from_static("W/\"a-1\", \"b-2\"");
/// assert!(push_http::matches_tag(&value, "b-2"));
/// assert!(!push_http::matches_tag(&value, "c-3"));
/// ```
#[must_use]
pub fn matches_tag(value: &http::HeaderValue, tag: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    value.split(',').map(str::trim).any(|t| {
        t == "*"
            || t.strip_prefix("W/")
                .unwrap_or(t)
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                == Some(tag)
    })
}
