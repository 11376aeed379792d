//! The NDJSON lines of a stream.

use std::time::SystemTime;

use bytes::Bytes;
use push_core::{Cursor, EncodingSlot, Event, Outcome};
use serde::Serialize;

/// One line of the stream other than an event, as JSON.
#[derive(Serialize)]
#[serde(untagged)]
enum Line {
    Outcome {
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        missed: Option<u64>,
        cursor: String,
    },
    Heartbeat {
        heartbeat: u64,
    },
    End {
        end: &'static str,
        cursor: String,
    },
}

fn to_line(line: &Line) -> Bytes {
    let mut out = serde_json::to_vec(line).unwrap_or_default();
    out.push(b'\n');
    out.into()
}

static NDJSON_SLOT: EncodingSlot = EncodingSlot::new();

/// The line of a hub event, computed once per event and shared by every stream: the event's
/// JSON object ([`push_core::json::event`]: `{"id":CURSOR,"type":TYPE,"time":MS,"data":TEXT}`,
/// or `data_base64` for a payload that is not UTF-8) and a newline.
#[must_use]
pub fn event_line(event: &Event) -> Bytes {
    event.encoded(&NDJSON_SLOT, |event| {
        let object = push_core::json::event(event);
        let mut line = Vec::with_capacity(object.len() + 1);
        line.extend_from_slice(&object);
        line.push(b'\n');
        line.into()
    })
}

/// `{"outcome":"resumed"|"gap"|"reset","missed":N,"cursor":CURSOR}`: the first line of every
/// stream, and a gap met mid-stream. `missed` only for a gap; `cursor` is where the stream
/// stands, the point to resume from if the connection breaks before the next event.
pub(crate) fn outcome_line(outcome: Outcome, cursor: Cursor) -> Bytes {
    let missed = match outcome {
        Outcome::Gap { missed } => Some(missed),
        Outcome::Resumed | Outcome::Reset => None,
    };
    to_line(&Line::Outcome {
        outcome: push_core::json::outcome_name(outcome),
        missed,
        cursor: cursor.to_string(),
    })
}

/// `{"heartbeat":MS}`: the server's clock, sent after a period of silence.
pub(crate) fn heartbeat_line() -> Bytes {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    to_line(&Line::Heartbeat { heartbeat: now })
}

/// `{"end":"shutdown","cursor":CURSOR}`: the last line when the server shuts down.
pub(crate) fn end_line(cursor: Cursor) -> Bytes {
    to_line(&Line::End {
        end: "shutdown",
        cursor: cursor.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::{EventType, MemoryHub, NewEvent, Topic};

    #[test]
    fn lines_are_single_line_json() {
        let hub = MemoryHub::default();
        let t = Topic::new("t").unwrap();
        let text = hub
            .publish_now(
                &t,
                NewEvent::new("a \"quoted\"\nline").with_type(EventType::new("x").unwrap()),
            )
            .unwrap();
        let line = event_line(&text);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["data"], "a \"quoted\"\nline");
        assert_eq!(v["type"], "x");
        assert_eq!(v["id"], text.id().to_string());

        let binary = hub
            .publish_now(&t, NewEvent::new(vec![0xff, 0x00, 0x80]))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&event_line(&binary)).unwrap();
        assert_eq!(v["data_base64"], "/wCA");
        assert!(v.get("data").is_none() && v.get("type").is_none());

        let c = text.id();
        assert_eq!(
            outcome_line(Outcome::Gap { missed: 2 }, c),
            format!("{{\"outcome\":\"gap\",\"missed\":2,\"cursor\":\"{c}\"}}\n")
        );
        assert_eq!(
            outcome_line(Outcome::Reset, c),
            format!("{{\"outcome\":\"reset\",\"cursor\":\"{c}\"}}\n")
        );
        assert!(heartbeat_line().starts_with(b"{\"heartbeat\":"));
    }
}
