//! The JSON messages of the push WebSocket protocol, both directions.

use bytes::{BufMut, Bytes, BytesMut};
use push_core::{Cursor, EncodingSlot, Event, Outcome};
use serde::{Deserialize, Serialize};

/// A message from the client (a text frame holding one JSON object).
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum ClientOp {
    Subscribe {
        topic: String,
        #[serde(default)]
        since: Option<String>,
    },
    Unsubscribe {
        topic: String,
    },
    Publish {
        topic: String,
        #[serde(default)]
        data: Option<String>,
        #[serde(default)]
        data_base64: Option<String>,
        #[serde(rename = "type", default)]
        event_type: Option<String>,
    },
    Message {
        data: String,
    },
    Auth {
        token: String,
    },
}

static ENVELOPE_SLOT: EncodingSlot = EncodingSlot::new();

/// `{"topic":T,"id":C,"type":…,"time":MS,"data":…}`: the event's JSON object with its topic in
/// front, encoded once per event and shared by every connection.
pub(crate) fn event_message(event: &Event) -> Bytes {
    event.encoded(&ENVELOPE_SLOT, |event| {
        let object = push_http::json::event(event);
        let topic = event.topic().as_str();
        let mut out = BytesMut::with_capacity(object.len() + topic.len() + 12);
        // Topic names are `[A-Za-z0-9-_.~:]`: nothing to escape.
        out.put_slice(b"{\"topic\":\"");
        out.put_slice(topic.as_bytes());
        out.put_slice(b"\",");
        out.put_slice(object.get(1..).unwrap_or_default());
        out.freeze()
    })
}

#[derive(Serialize)]
#[serde(untagged)]
enum ServerMessage<'a> {
    Outcome {
        topic: &'a str,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        missed: Option<u64>,
        cursor: String,
    },
    Unsubscribed {
        topic: &'a str,
        unsubscribed: bool,
    },
    Published {
        topic: &'a str,
        published: String,
    },
    Reply {
        reply: &'a str,
    },
    Authorized {
        auth: &'static str,
        expires: Option<u64>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        unsubscribed: &'a [String],
    },
    Error {
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<&'a str>,
    },
}

fn encode(message: &ServerMessage<'_>) -> String {
    // Every field is a string, a bool or an integer: serializing cannot fail.
    serde_json::to_string(message).unwrap_or_default()
}

/// `{"topic":T,"outcome":"resumed"|"gap"|"reset","missed":N,"cursor":C}`.
pub(crate) fn outcome_message(topic: &str, outcome: Outcome, cursor: Cursor) -> String {
    let missed = match outcome {
        Outcome::Gap { missed } => Some(missed),
        Outcome::Resumed | Outcome::Reset => None,
    };
    encode(&ServerMessage::Outcome {
        topic,
        outcome: push_http::json::outcome_name(outcome),
        missed,
        cursor: cursor.to_string(),
    })
}

/// `{"topic":T,"unsubscribed":true}`.
pub(crate) fn unsubscribed_message(topic: &str) -> String {
    encode(&ServerMessage::Unsubscribed {
        topic,
        unsubscribed: true,
    })
}

/// `{"topic":T,"published":C}`: the acknowledgement of a publish.
pub(crate) fn published_message(topic: &str, id: Cursor) -> String {
    encode(&ServerMessage::Published {
        topic,
        published: id.to_string(),
    })
}

/// `{"reply":TEXT}`: the application handler's answer to a `message`.
pub(crate) fn reply_message(reply: &str) -> String {
    encode(&ServerMessage::Reply { reply })
}

/// `{"auth":"ok","expires":SECONDS,"unsubscribed":[T…]}`: a fresh token was accepted; its end
/// in seconds since the Unix epoch (`null`: none), and the topics it no longer covers, which
/// were unsubscribed.
pub(crate) fn authorized_message(
    expires: Option<std::time::SystemTime>,
    dropped: &[String],
) -> String {
    let expires = expires.map(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    encode(&ServerMessage::Authorized {
        auth: "ok",
        expires,
        unsubscribed: dropped,
    })
}

/// `{"error":TEXT,"topic":T}`: a request that was refused; the connection stays open.
pub(crate) fn error_message(error: &str, topic: Option<&str>) -> String {
    encode(&ServerMessage::Error { error, topic })
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::{MemoryHub, NewEvent, Topic};

    #[test]
    fn envelopes_carry_topic_and_cursor() {
        let hub = MemoryHub::default();
        let e = hub
            .publish_now(&Topic::new("a.b").unwrap(), NewEvent::new("x\"y"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&event_message(&e)).unwrap();
        assert_eq!(v["topic"], "a.b");
        assert_eq!(v["id"], e.id().to_string());
        assert_eq!(v["data"], "x\"y");
        let v: serde_json::Value =
            serde_json::from_str(&outcome_message("a.b", Outcome::Gap { missed: 3 }, e.id()))
                .unwrap();
        assert_eq!(v["outcome"], "gap");
        assert_eq!(v["missed"], 3);
    }

    #[test]
    fn client_ops_parse_strictly() {
        assert!(matches!(
            serde_json::from_str::<ClientOp>(r#"{"op":"subscribe","topic":"t","since":"a-1"}"#),
            Ok(ClientOp::Subscribe { .. })
        ));
        for bad in [
            r#"{"op":"subscribe"}"#,
            r#"{"op":"dance","topic":"t"}"#,
            r#"{"op":"subscribe","topic":"t","extra":1}"#,
            r#"[1]"#,
        ] {
            assert!(serde_json::from_str::<ClientOp>(bad).is_err(), "{bad}");
        }
    }
}
