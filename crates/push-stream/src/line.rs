//! The NDJSON lines of a stream.

use std::time::SystemTime;

use bytes::Bytes;
use push_core::{EncodingSlot, Event};

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

/// `{"heartbeat":MS}`: the server's clock, sent after a period of silence.
pub(crate) fn heartbeat_line() -> Bytes {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Bytes::from(format!("{{\"heartbeat\":{now}}}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::json::outcome_line;
    use push_core::{EventType, MemoryHub, NewEvent, Outcome, Topic};

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
