//! What a connection logs through `tracing` (feature `tracing`; nothing without it), beside
//! what push-http logs for every technique (see `push_http::logs`): the connection's close with
//! its code, and what a client asked by message and was refused.

use std::fmt;

use push_core::{Cursor, StartFrom, Topic};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::protocol::EXPIRED;

/// The connection closed: with `close` (its code and reason text) sent by the server, or
/// `None` when the client went away; `topics` are its subscriptions then.
///
/// | close | `reason` | level |
/// |---|---|---|
/// | `1008` too slow ([`SlowClient::Close`](crate::SlowClient::Close), or a write buffer full) | `slow_client` | `info` |
/// | `1008` too many messages | `rate_limited` | `info` |
/// | `4401` | `expired` | `info` |
/// | `1001` shutting down | `shutdown` | `info` |
/// | `1012` (a restart, or a subscription's log replaced) | `restart` | `info` |
/// | `1002`, `1003`, `1007`, `1009` | `protocol_error` | `info` |
/// | `1001` no pong | `no_pong` | `debug` |
/// | none: the client closed or the socket failed | `gone` | `debug` |
pub(crate) fn closed<'a>(
    topics: impl Iterator<Item = &'a Topic> + Clone,
    close: Option<(CloseCode, &str)>,
) {
    #[cfg(feature = "tracing")]
    {
        let topics = Keys(topics);
        let Some((code, text)) = close else {
            tracing::debug!(technique = %"ws", topic = %topics, reason = %"gone", "closed");
            return;
        };
        let reason = reason(code, text);
        let code = u16::from(code);
        if reason == "no_pong" {
            tracing::debug!(technique = %"ws", topic = %topics, reason = %reason, code, "closed");
        } else {
            tracing::info!(technique = %"ws", topic = %topics, reason = %reason, code, "closed");
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (topics, close);
}

/// A client's message about `topic` (a subscribe, a publish) was refused for `reason`
/// (`forbidden`, `topic_limit`, `quota`, `unavailable`, `shutdown`), with the hub's `error` when
/// there is one. The connection stays open.
pub(crate) fn refused(topic: &str, reason: &'static str, error: Option<&dyn fmt::Display>) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        technique = %"ws",
        topic = %topic,
        reason = %reason,
        error = error.map(tracing::field::display),
        "refused"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (topic, reason, error);
}

/// A subscribe or publish to `topic` refused by the hub (`error`): `shutdown` once it is
/// closed, `finished` for a publish to a complete topic, `too_large` and `bad_request` for an
/// event it would not take, `outcome_unknown` for a publish whose outcome never came, else
/// `unavailable`.
pub(crate) fn hub_refused(topic: &str, error: &push_core::Error) {
    let reason = match error {
        push_core::Error::Closed => "shutdown",
        push_core::Error::Complete => "finished",
        push_core::Error::EventTooLarge { .. } => "too_large",
        push_core::Error::Payload { .. } => "bad_request",
        push_core::Error::OutcomeUnknown(_) => "outcome_unknown",
        _ => "unavailable",
    };
    refused(topic, reason, Some(error));
}

/// Where a client stood before a gap of `missed` events met mid-stream, from the position after
/// it (what the logs call the cursor of a gap).
pub(crate) fn before_gap(after: Cursor, missed: u64) -> StartFrom {
    StartFrom::After(Cursor::new(
        after.epoch(),
        after.seq().saturating_sub(missed),
    ))
}

/// The reason word of a close the server sends.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
fn reason(code: CloseCode, text: &str) -> &'static str {
    match code {
        CloseCode::Library(EXPIRED) => "expired",
        CloseCode::Policy if text == "too many messages" => "rate_limited",
        CloseCode::Policy => "slow_client",
        CloseCode::Away if text == "no pong" => "no_pong",
        CloseCode::Away => "shutdown",
        CloseCode::Restart => "restart",
        _ => "protocol_error",
    }
}

/// A connection's topics joined by `,`, written only when an event is recorded.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
struct Keys<I>(I);

impl<'a, I: Iterator<Item = &'a Topic> + Clone> fmt::Display for Keys<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, topic) in self.0.clone().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(topic.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_has_its_reason() {
        let cases = [
            (CloseCode::Policy, "too slow", "slow_client"),
            (CloseCode::Policy, "too many messages", "rate_limited"),
            (
                CloseCode::Library(EXPIRED),
                "credentials expired",
                "expired",
            ),
            (CloseCode::Away, "server shutting down", "shutdown"),
            (CloseCode::Away, "no pong", "no_pong"),
            (CloseCode::Restart, "service restart: reconnect", "restart"),
            (CloseCode::Size, "message too big", "protocol_error"),
            (
                CloseCode::Invalid,
                "text is not valid UTF-8",
                "protocol_error",
            ),
        ];
        for (code, text, word) in cases {
            assert_eq!(reason(code, text), word, "{code:?} {text}");
        }
        let topics = [Topic::new("a").unwrap(), Topic::new("b").unwrap()];
        assert_eq!(Keys(topics.iter()).to_string(), "a,b");
    }
}
