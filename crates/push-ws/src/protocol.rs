//! The JSON messages of the push WebSocket protocol, both directions.

use bytes::Bytes;
use push_core::{Cursor, Event, Outcome};
use serde::{Deserialize, Serialize};

/// A message from the client (a text frame holding one JSON object), read by
/// [`ClientOp::parse`].
#[derive(Debug)]
pub(crate) enum ClientOp {
    Subscribe {
        topic: String,
        since: Option<String>,
    },
    Unsubscribe {
        topic: String,
    },
    Publish {
        topic: String,
        data: Option<String>,
        data_base64: Option<String>,
        json: Option<Box<serde_json::value::RawValue>>,
        event_type: Option<String>,
    },
    Message {
        data: String,
    },
    Auth {
        token: String,
    },
}

/// Every field a client message may have. Read flat, then checked per `op`: a tagged enum
/// would buffer the message and could not keep a JSON payload's exact text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    op: String,
    topic: Option<String>,
    since: Option<String>,
    data: Option<String>,
    data_base64: Option<String>,
    json: Option<Box<serde_json::value::RawValue>>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    token: Option<String>,
}

impl ClientOp {
    /// Reads one client message; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let f: Fields = serde_json::from_str(text).map_err(|e| e.to_string())?;
        // Which fields each op takes besides `op`; any other present is an error.
        let allowed: &[&str] = match f.op.as_str() {
            "subscribe" => &["topic", "since"],
            "unsubscribe" => &["topic"],
            "publish" => &["topic", "data", "data_base64", "json", "type"],
            "message" => &["data"],
            "auth" => &["token"],
            other => return Err(format!("unknown op {other:?}")),
        };
        let present = [
            ("topic", f.topic.is_some()),
            ("since", f.since.is_some()),
            ("data", f.data.is_some()),
            ("data_base64", f.data_base64.is_some()),
            ("json", f.json.is_some()),
            ("type", f.event_type.is_some()),
            ("token", f.token.is_some()),
        ];
        if let Some((name, _)) = present
            .iter()
            .find(|(name, set)| *set && !allowed.contains(name))
        {
            return Err(format!("{:?} takes no field {name:?}", f.op));
        }
        let need = |value: Option<String>, name: &str| {
            value.ok_or_else(|| format!("{:?} needs the field {name:?}", f.op))
        };
        Ok(match f.op.as_str() {
            "subscribe" => ClientOp::Subscribe {
                topic: need(f.topic, "topic")?,
                since: f.since,
            },
            "unsubscribe" => ClientOp::Unsubscribe {
                topic: need(f.topic, "topic")?,
            },
            "publish" => ClientOp::Publish {
                topic: need(f.topic, "topic")?,
                data: f.data,
                data_base64: f.data_base64,
                json: f.json,
                event_type: f.event_type,
            },
            "message" => ClientOp::Message {
                data: need(f.data, "data")?,
            },
            _ => ClientOp::Auth {
                token: need(f.token, "token")?,
            },
        })
    }
}

/// `{"topic":T,"id":C,"type":…,"time":MS,"data":…}`: push-http's event object with its topic
/// in front, encoded once per event and shared by every connection.
pub(crate) fn event_message(event: &Event) -> Bytes {
    push_http::json::topic_event(event)
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
    Complete {
        topic: &'a str,
        complete: bool,
        cursor: String,
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

/// `{"topic":T,"complete":true,"cursor":C}`: the topic is complete and every event was sent;
/// the subscription has ended.
pub(crate) fn complete_message(topic: &str, cursor: Cursor) -> String {
    encode(&ServerMessage::Complete {
        topic,
        complete: true,
        cursor: cursor.to_string(),
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
            ClientOp::parse(r#"{"op":"subscribe","topic":"t","since":"a-1"}"#),
            Ok(ClientOp::Subscribe { .. })
        ));
        let json =
            ClientOp::parse(r#"{"op":"publish","topic":"t","json":{"text":"hi","n":[1,2]}}"#);
        assert!(
            matches!(&json, Ok(ClientOp::Publish { json: Some(raw), .. }) if raw.get() == r#"{"text":"hi","n":[1,2]}"#),
            "{json:?}"
        );
        for bad in [
            r#"{"op":"subscribe"}"#,
            r#"{"op":"dance","topic":"t"}"#,
            r#"{"op":"subscribe","topic":"t","extra":1}"#,
            r#"[1]"#,
        ] {
            assert!(ClientOp::parse(bad).is_err(), "{bad}");
        }
    }
}
