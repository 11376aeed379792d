//! Reading a client's cursor from a URL query string.

use std::borrow::Cow;

/// The first value of `name` in a URL query string (without the `?`), percent-decoded, as
/// technique crates read `since` or `lastEventId`. `None` when absent.
///
/// ```
/// assert_eq!(push_core::query_value("a=1&since=ab-3", "since").as_deref(), Some("ab-3"));
/// assert_eq!(push_core::query_value("a=%20b", "a").as_deref(), Some(" b"));
/// assert_eq!(push_core::query_value("a=1", "since"), None);
/// ```
#[must_use]
pub fn query_value<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}
