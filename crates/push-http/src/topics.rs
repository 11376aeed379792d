//! Several topics in one request (`?topic=a&topic=b`): the topics and their one combined
//! cursor.
//!
//! # The combined cursor
//!
//! A request that follows topics `t1 … tn` has one cursor for all of them: each topic's cursor
//! ([`Cursor`](push_core::Cursor)'s text), in the request's order, joined by `,`:
//!
//! ```text
//! 5f3a9c1e2b4d-42,5f3a9c1e2b50-7
//! ```
//!
//! It is what SSE sends as every event's `id:` (so a browser's `Last-Event-ID` resumes every
//! topic), and the `next` of a poll or long-poll answer. It is at most [`MAX_POSITION_LEN`]
//! bytes ([`MAX_TOPICS`] cursors of `MAX_CURSOR_LEN` and their commas), well under any
//! header limit. A combined cursor with another number of parts than the request has topics
//! (the client changed its topics) starts every topic over, as an invalid cursor does: a reset
//! for each, reported per topic.

use push_core::{StartFrom, Subscription, Topic, MAX_CURSOR_LEN};

/// The most topics one request may follow, by default.
pub const MAX_TOPICS: usize = 16;

/// The longest combined cursor of [`MAX_TOPICS`] topics, in bytes.
pub const MAX_POSITION_LEN: usize = MAX_TOPICS * (MAX_CURSOR_LEN + 1);

/// The topics of a request's query parameter `param` (`?topic=a&topic=b`), in order, without
/// repeats.
///
/// ```
/// let req = http::Request::get("/sse?topic=a&topic=b&topic=a").body(()).unwrap();
/// let topics = push_http::topics::query_topics(req.uri(), "topic", 16).unwrap();
/// assert_eq!(topics.len(), 2);
/// ```
///
/// # Errors
///
/// A readable reason (for a `400`): no topic, more than `max`, or a name that is not valid.
pub fn query_topics(uri: &http::Uri, param: &str, max: usize) -> Result<Vec<Topic>, String> {
    let query = uri.query().unwrap_or("");
    let mut topics: Vec<Topic> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != param {
            continue;
        }
        let topic = Topic::new(&value).map_err(|e| format!("{param}: {e}"))?;
        if !topics.contains(&topic) {
            if topics.len() == max {
                return Err(format!("at most {max} topics per request"));
            }
            topics.push(topic);
        }
    }
    if topics.is_empty() {
        return Err(format!("name at least one topic: ?{param}=NAME"));
    }
    Ok(topics)
}

/// Where each of `n` topics starts, from a combined cursor (`None`: `default` for each). A
/// cursor with another number of parts than `n` is invalid for every topic (a reset each); an
/// empty part (`,C2`) starts that topic at `default`, as a client that has no cursor for it yet
/// sends.
#[must_use]
pub(crate) fn start_points(position: Option<&str>, n: usize, default: StartFrom) -> Vec<StartFrom> {
    let Some(text) = position.filter(|t| !t.is_empty()) else {
        return vec![default; n];
    };
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() != n || text.len() > n * (MAX_CURSOR_LEN + 1) {
        return vec![StartFrom::Invalid; n];
    }
    parts
        .into_iter()
        // An empty part: a topic the client has no cursor for yet starts like a fresh request.
        .map(|part| StartFrom::from_client(Some(part).filter(|p| !p.is_empty()), default))
        .collect()
}

/// The combined cursor of a set of subscriptions, written when displayed: a framing that does
/// not put it on every event (NDJSON) costs nothing for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position<'a>(pub(crate) &'a [Subscription]);

impl std::fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, sub) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", sub.cursor())?;
        }
        Ok(())
    }
}
