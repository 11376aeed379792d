//! What every technique logs, through the [`tracing`](https://docs.rs/tracing) facade when the
//! `tracing` feature is on (without it, nothing of `tracing` is compiled): one event at each
//! decision a client or an operator asks about (a refusal, the end of a stream, a gap or a
//! reset told), never one per delivered event. A disabled event costs a few comparisons and
//! allocates nothing.
//!
//! | level | message | fields | when |
//! |---|---|---|---|
//! | `info`, `debug` for a request's own mistake | `refused` | `technique`, `topic`, `status`, `reason`, `error` (a hub error) | a request is answered with a refusal |
//! | `info`, `debug` for `gone` | `closed` | `technique`, `topic`, `reason`, `cursor` | a stream (SSE, NDJSON, HTTP/2 events) ends |
//! | `info` | `gap told` | `technique`, `topic`, `cursor`, `missed` | a client is told that `missed` events are gone: `cursor` is where it asked to start, or where it stood when it fell behind retention |
//! | `info` | `reset told` | `technique`, `topic`, `cursor` | a client's cursor is of another epoch (`cursor`) or does not parse (`invalid`) |
//!
//! `technique` is `sse`, `stream`, `poll`, `longpoll`, `ws`, `h2`, or `publish` (the
//! [`Publisher`](crate::Publisher)); `topic` is the request's topic, or its topics joined by `,`
//! (absent where a decision is about the client, not a topic: `stream_limit` and `quota`);
//! `status` is the HTTP status, as a number. `reason` is one stable word:
//!
//! | reason | event | status | level | what |
//! |---|---|---|---|---|
//! | `unauthorized` | `refused` | `401` | `info` | no or bad credentials (the authorizer refused) |
//! | `forbidden` | `refused` | `403` | `info` | the credentials do not cover the topic, or publishing to it |
//! | `origin` | `refused` | `403` | `info` | a browser page of another origin (WebSocket `Origin`, a cross-site publish) |
//! | `stream_limit` | `refused` | `503` | `info` | the endpoint holds its most streams, held requests or sockets |
//! | `quota` | `refused` | `429` | `info` | the client holds its [`Quota`](crate::Quota) |
//! | `rate_limited` | `refused` | `429` | `info` | a poll faster than the minimum interval |
//! | `unavailable` | `refused` | `503` | `info` | the hub refused (closed, at its topic cap, its backend unreachable), with `error` |
//! | `shutdown` | `refused`, `closed` | `503` | `info` | the server is shutting down |
//! | `too_large` | `refused` | `413` | `info` | a publish over the body limit |
//! | `timeout` | `refused` | `408` | `info` | a publish whose body did not arrive in time |
//! | `bad_request` | `refused` | `400`, `426` | `debug` | a request that cannot be read as asked |
//! | `method` | `refused` | `405` | `debug` | another method |
//! | `finished` | `refused`, `closed` | `204`, `409` | `debug` (refused), `info` (closed) | the topic is complete: a stream of it ends, a request on it has nothing left, a publish to it is refused |
//! | `expired` | `closed` | | `info` | the client's credentials expired |
//! | `restart` | `closed` | | `info` | the topic's log was replaced under the stream (a shared store lost it) or the topic was deleted: the client resumes from its cursor, and is told a reset |
//! | `gone` | `closed` | | `debug` | the client went away (the server dropped the body) |
//!
//! A publish whose outcome is unknown (`202`) is `refused` too, with `reason` `outcome_unknown`
//! and the `error`, at `info`: the client should repeat it with its idempotency key; one the
//! backend does not support (`501`) has `reason` `unsupported`.
//!
//! An event's target is its technique's crate (`push_sse`, `push_stream`, `push_poll`,
//! `push_longpoll`, `push_ws`, `push_h2`; `push_http` for publishing) wherever it is decided,
//! so `RUST_LOG=push_sse=debug` shows every SSE event. push-ws and push-h2 log their own
//! decisions beside these (close codes, connections), and push-redis the backend's outages.

#[cfg(feature = "tracing")]
use std::fmt::{self, Display};

use http::StatusCode;
use push_core::{Cursor, Outcome, StartFrom, Topic};

/// Emits one `tracing` event at `$level` (`INFO`, `DEBUG`; or `debug_if COND` for `DEBUG` when
/// `COND`, else `INFO`) with the target of the technique's crate and the `technique` field
/// first. The target of a callsite must be a constant, hence one callsite per technique.
#[cfg(feature = "tracing")]
macro_rules! emit {
    (debug_if $debug:expr, $technique:expr, $($rest:tt)+) => {
        if $debug {
            emit!(DEBUG, $technique, $($rest)+)
        } else {
            emit!(INFO, $technique, $($rest)+)
        }
    };
    (@at $target:literal, $level:ident, $technique:ident, $($rest:tt)+) => {
        tracing::event!(
            target: $target,
            tracing::Level::$level,
            technique = %$technique,
            $($rest)+
        )
    };
    ($level:ident, $technique:expr, $($rest:tt)+) => {{
        let technique: &'static str = $technique;
        match technique {
            "sse" => emit!(@at "push_sse", $level, technique, $($rest)+),
            "stream" => emit!(@at "push_stream", $level, technique, $($rest)+),
            "poll" => emit!(@at "push_poll", $level, technique, $($rest)+),
            "longpoll" => emit!(@at "push_longpoll", $level, technique, $($rest)+),
            "ws" => emit!(@at "push_ws", $level, technique, $($rest)+),
            "h2" => emit!(@at "push_h2", $level, technique, $($rest)+),
            _ => emit!(@at "push_http", $level, technique, $($rest)+),
        }
    }};
}

/// Whether a refusal for `reason` is the request's own mistake, logged at `debug`.
#[cfg(feature = "tracing")]
fn mistake(reason: &str) -> bool {
    matches!(reason, "bad_request" | "method" | "finished")
}

/// A request for `topics` of `technique` was answered `status`, a refusal for `reason` (a word
/// of the table above), with the hub's `error` when there is one.
pub(crate) fn refused(
    technique: &'static str,
    topics: &[Topic],
    reason: &'static str,
    status: StatusCode,
    error: Option<&dyn std::fmt::Display>,
) {
    #[cfg(feature = "tracing")]
    {
        let topics = (!topics.is_empty()).then_some(Topics(topics));
        emit!(
            debug_if mistake(reason),
            technique,
            topic = topics.map(tracing::field::display),
            status = status.as_u16(),
            reason = %reason,
            error = error.map(tracing::field::display),
            "refused"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (technique, topics, reason, status, error);
}

/// A stream of `topics` (a topic, or [`Subscribed`] topics) ended for `reason` at `cursor` (a
/// cursor, or a combined one).
pub(crate) fn closed(
    technique: &'static str,
    topics: &dyn std::fmt::Display,
    reason: &'static str,
    cursor: &dyn std::fmt::Display,
) {
    #[cfg(feature = "tracing")]
    emit!(
        debug_if reason == "gone",
        technique,
        topic = %topics,
        reason = %reason,
        cursor = %cursor,
        "closed"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (technique, topics, reason, cursor);
}

/// A client of `technique` that asked for `topic` from `from` was told `outcome`: an event for a
/// gap or a reset, nothing for a plain resume.
pub(crate) fn told(technique: &'static str, topic: &Topic, from: StartFrom, outcome: Outcome) {
    #[cfg(feature = "tracing")]
    match outcome {
        Outcome::Resumed => {}
        Outcome::Gap { missed } => emit!(
            INFO,
            technique,
            topic = %topic,
            cursor = %Asked(from),
            missed,
            "gap told"
        ),
        Outcome::Reset => emit!(
            INFO,
            technique,
            topic = %topic,
            cursor = %Asked(from),
            "reset told"
        ),
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (technique, topic, from, outcome);
}

/// Where a client stood before a gap of `missed` events met mid-stream, from the position after
/// it.
#[must_use]
pub(crate) fn before_gap(after: Cursor, missed: u64) -> StartFrom {
    StartFrom::After(Cursor::new(
        after.epoch(),
        after.seq().saturating_sub(missed),
    ))
}

/// Topics joined by `,`, written only when an event is recorded.
#[cfg(feature = "tracing")]
struct Topics<'a>(&'a [Topic]);

#[cfg(feature = "tracing")]
impl Display for Topics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, topic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(topic.as_str())?;
        }
        Ok(())
    }
}

/// The topics of subscriptions joined by `,`, written only when an event is recorded.
pub(crate) struct Subscribed<'a>(pub(crate) &'a [push_core::Subscription]);

impl std::fmt::Display for Subscribed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, sub) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(sub.topic().as_str())?;
        }
        Ok(())
    }
}

/// Where a client asked to start: its cursor, `invalid` (text that does not parse), `newest` or
/// `oldest` (no cursor).
#[cfg(feature = "tracing")]
struct Asked(StartFrom);

#[cfg(feature = "tracing")]
impl Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StartFrom::After(cursor) => cursor.fmt(f),
            StartFrom::Invalid => f.write_str("invalid"),
            StartFrom::Newest => f.write_str("newest"),
            StartFrom::Oldest => f.write_str("oldest"),
        }
    }
}

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use super::*;

    #[test]
    fn topics_and_cursors_are_written_plainly() {
        let topics = [Topic::new("a").unwrap(), Topic::new("b:1").unwrap()];
        assert_eq!(Topics(&topics).to_string(), "a,b:1");
        let cursor = Cursor::parse("ab-7").unwrap();
        assert_eq!(Asked(StartFrom::After(cursor)).to_string(), "ab-7");
        assert_eq!(Asked(StartFrom::Invalid).to_string(), "invalid");
        assert_eq!(
            before_gap(cursor, 3),
            StartFrom::After(Cursor::parse("ab-4").unwrap())
        );
    }
}
