//! The `text/event-stream` format, as the WHATWG HTML standard defines it.
//! <https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use push_core::{Cursor, EncodingSlot, Event, Outcome};

/// The event type of the first event of a stream that resumed with a gap, and of a gap met
/// mid-stream. Its data is `{"missed":N}`.
pub const GAP_EVENT: &str = "push-gap";
/// The event type of the first event of a stream whose cursor was reset. Its data is `{}`.
pub const RESET_EVENT: &str = "push-reset";
/// The event type of the last event of a stream ended because the client's credentials
/// expired. Its data is `{"end":"expired"}`. A browser's `EventSource` then reconnects with
/// the same URL, is refused with `401` and stops (`readyState` `CLOSED`): open a new one with a
/// fresh token and `?lastEventId=` the last id seen.
pub const EXPIRED_EVENT: &str = "push-expired";
/// The event type of the last event of a complete topic ([`Hub::complete`](push_core::Hub::complete)).
/// Its data is `{}` and its `id:` the topic's end, so that the browser's reconnect gets
/// `204 No Content` and its `EventSource` stops (WHATWG HTML: a `204` fails the connection for
/// good). Close the `EventSource` on this event to skip that one reconnect.
pub const COMPLETE_EVENT: &str = "push-complete";

/// The comment written instead of a heartbeat while the hub's backend is away (a shared store
/// not answering): the stream stays open, and its events resume from its cursor when the store
/// is back.
///
/// A comment, not an event: it keeps the connection alive exactly as the heartbeat comment
/// does, changes nothing a page sees (an `EventSource` drops comments, so no page needs to
/// handle a new event type, and none would need a matching "back" event to clear a notice:
/// there is nothing to clear when events simply resume), and every SSE client that logs or
/// parses comments, curl included, shows why the stream is quiet.
pub(crate) const AWAY_COMMENT: &[u8] =
    b": backend unavailable; events resume from this stream's cursor when it is back\n\n";

/// A field value that would break the framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// An `id`, `event` or comment contained CR or LF (or an id contained NUL, which makes
    /// browsers ignore it).
    #[error("sse {field} must not contain {what}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What it contained.
        what: &'static str,
    },
}

/// One SSE message built by hand: for application messages that do not come from a hub.
///
/// ```
/// let bytes = push_sse::SseEvent::new()
///     .id("7").unwrap()
///     .event("note").unwrap()
///     .data("two\nlines")
///     .encode();
/// assert_eq!(bytes, "id: 7\nevent: note\ndata: two\ndata: lines\n\n");
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SseEvent {
    buf: String,
    data: Option<String>,
}

fn check(field: &'static str, value: &str, nul: bool) -> Result<(), FieldError> {
    let what = if value.contains('\n') {
        "LF"
    } else if value.contains('\r') {
        "CR"
    } else if nul && value.contains('\0') {
        "NUL"
    } else {
        return Ok(());
    };
    Err(FieldError::Invalid { field, what })
}

impl SseEvent {
    /// An empty message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `id:` field.
    ///
    /// # Errors
    ///
    /// When `id` contains CR, LF or NUL.
    pub fn id(mut self, id: &str) -> Result<Self, FieldError> {
        check("id", id, true)?;
        let _ = writeln!(self.buf, "id: {id}");
        Ok(self)
    }

    /// Sets the `event:` field (the type `addEventListener` listens for).
    ///
    /// # Errors
    ///
    /// When `event` contains CR or LF.
    pub fn event(mut self, event: &str) -> Result<Self, FieldError> {
        check("event", event, false)?;
        let _ = writeln!(self.buf, "event: {event}");
        Ok(self)
    }

    /// Sets the data; CR, LF and CRLF in it each start a new `data:` line, so the browser sees
    /// the text with every line break as LF.
    pub fn data(mut self, data: &str) -> Self {
        self.data = Some(data.to_owned());
        self
    }

    /// Adds a `retry:` hint, in milliseconds.
    pub fn retry(mut self, retry: Duration) -> Self {
        let _ = writeln!(self.buf, "retry: {}", retry.as_millis());
        self
    }

    /// Adds a comment line, which clients ignore.
    ///
    /// # Errors
    ///
    /// When `comment` contains CR or LF.
    pub fn comment(mut self, comment: &str) -> Result<Self, FieldError> {
        check("comment", comment, false)?;
        let _ = writeln!(self.buf, ": {comment}");
        Ok(self)
    }

    /// The encoded message, ending with the blank line that dispatches it.
    pub fn encode(self) -> Bytes {
        let mut out = BytesMut::with_capacity(
            self.buf.len() + self.data.as_ref().map_or(0, |d| d.len() + 8) + 1,
        );
        out.put_slice(self.buf.as_bytes());
        if let Some(data) = &self.data {
            put_data(&mut out, data);
        }
        out.put_u8(b'\n');
        out.freeze()
    }
}

/// Writes `data` as `data:` lines, one per line of the text, splitting at CRLF, CR and LF.
fn put_data(out: &mut BytesMut, data: &str) {
    let bytes = data.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' | b'\n' => {
                put_line(out, &bytes[start..i]);
                if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    put_line(out, &bytes[start..]);
}

fn put_line(out: &mut BytesMut, line: &[u8]) {
    out.put_slice(b"data: ");
    out.put_slice(line);
    out.put_u8(b'\n');
}

static SSE_SLOT: EncodingSlot = EncodingSlot::new();

/// The SSE encoding of a hub event, computed once per event and shared by every stream.
///
/// `id:` is the cursor, `event:` the event type when it has one, `data:` the payload. SSE is a
/// text protocol: a payload that is not UTF-8 is sent with each invalid sequence replaced by
/// U+FFFD; use push-stream or push-ws to carry binary payloads exactly.
#[must_use]
pub fn encode_event(event: &Event) -> Bytes {
    event.encoded(&SSE_SLOT, |event| {
        let data = String::from_utf8_lossy(event.data());
        let mut out = BytesMut::with_capacity(data.len() + 64);
        let _ = writeln!(Writer(&mut out), "id: {}", event.id());
        if let Some(t) = event.event_type() {
            let _ = writeln!(Writer(&mut out), "event: {t}");
        }
        put_data(&mut out, &data);
        out.put_u8(b'\n');
        out.freeze()
    })
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// The event reporting a start outcome or a mid-stream gap, or `None` for a plain resume.
pub(crate) fn outcome_event(outcome: Outcome, cursor: Cursor) -> Option<Bytes> {
    let (event, data) = match outcome {
        Outcome::Resumed => return None,
        Outcome::Gap { missed } => (GAP_EVENT, format!("{{\"missed\":{missed}}}")),
        Outcome::Reset => (RESET_EVENT, "{}".to_owned()),
    };
    // The id is the position after the outcome, so a reconnect before the next event resumes
    // from the right place instead of reporting the same outcome again.
    Some(format!("id: {cursor}\nevent: {event}\ndata: {data}\n\n").into())
}

/// The outcome event of one topic of several: its data names the topic, its `id:` is the
/// combined cursor.
pub(crate) fn topic_outcome_event(
    topic: &str,
    outcome: Outcome,
    position: &dyn std::fmt::Display,
) -> Option<Bytes> {
    let (event, data) = match outcome {
        Outcome::Resumed => return None,
        Outcome::Gap { missed } => (
            GAP_EVENT,
            format!("{{\"topic\":\"{topic}\",\"missed\":{missed}}}"),
        ),
        Outcome::Reset => (RESET_EVENT, format!("{{\"topic\":\"{topic}\"}}")),
    };
    // Topic names are `[A-Za-z0-9-_.~:]`: nothing to escape.
    Some(format!("id: {position}\nevent: {event}\ndata: {data}\n\n").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_line_breaks_of_every_kind_become_data_lines() {
        let e = SseEvent::new().data("a\r\nb\rc\nd").encode();
        assert_eq!(e, "data: a\ndata: b\ndata: c\ndata: d\n\n");
        assert_eq!(SseEvent::new().data("").encode(), "data: \n\n");
        assert_eq!(SseEvent::new().data("x\n").encode(), "data: x\ndata: \n\n");
        assert_eq!(SseEvent::new().data("\r\n").encode(), "data: \ndata: \n\n");
    }

    #[test]
    fn fields_that_break_framing_are_rejected() {
        assert!(SseEvent::new().id("a\nb").is_err());
        assert!(SseEvent::new().id("a\rb").is_err());
        assert!(SseEvent::new().id("a\0b").is_err());
        assert!(SseEvent::new().event("a\nb").is_err());
        assert!(SseEvent::new().comment("a\rb").is_err());
        let err = SseEvent::new().event("x\r").unwrap_err();
        assert_eq!(err.to_string(), "sse event must not contain CR");
    }

    #[test]
    fn retry_and_comment_are_encoded() {
        let e = SseEvent::new()
            .retry(Duration::from_secs(3))
            .comment("hi")
            .unwrap()
            .encode();
        assert_eq!(e, "retry: 3000\n: hi\n\n");
    }

    #[test]
    fn outcome_events_carry_the_position() {
        let c = Cursor::parse("ab-5").unwrap();
        assert_eq!(outcome_event(Outcome::Resumed, c), None);
        assert_eq!(
            outcome_event(Outcome::Gap { missed: 3 }, c).unwrap(),
            "id: ab-5\nevent: push-gap\ndata: {\"missed\":3}\n\n"
        );
        assert_eq!(
            outcome_event(Outcome::Reset, c).unwrap(),
            "id: ab-5\nevent: push-reset\ndata: {}\n\n"
        );
    }
}
