//! The JSON messages of the push WebSocket protocol, both directions.

use base64::Engine as _;
use push_core::{Cursor, NewEvent, Outcome};
use serde::{Deserialize, Serialize};

/// The close code when the connection's credentials expire.
pub(crate) const EXPIRED: u16 = 4401;

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
        /// The idempotency key: a retry with the same key answers the first publish's cursor.
        key: Option<String>,
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
    key: Option<String>,
}

impl ClientOp {
    /// Reads one client message; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        // serde reads a struct from a JSON list too, field by field: only an object is a
        // message.
        if !text.trim_start().starts_with('{') {
            return Err("a message is a JSON object".to_owned());
        }
        let f: Fields = serde_json::from_str(text).map_err(|e| e.to_string())?;
        // Which fields each op takes besides `op`; any other present is an error.
        let allowed: &[&str] = match f.op.as_str() {
            "subscribe" => &["topic", "since"],
            "unsubscribe" => &["topic"],
            "publish" => &["topic", "data", "data_base64", "json", "type", "key"],
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
            ("key", f.key.is_some()),
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
                key: f.key,
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
    Unknown {
        outcome: &'static str,
        error: &'a str,
        topic: &'a str,
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

/// `{"outcome":"unknown","error":E,"topic":T}`: a publish the store may or may not have kept
/// (it did not answer); the client repeats it with the same `key` to learn which.
pub(crate) fn unknown_message(error: &str, topic: &str) -> String {
    encode(&ServerMessage::Unknown {
        outcome: "unknown",
        error,
        topic,
    })
}

/// The payload of a `publish` message: exactly one of `data` (text), `json` (a JSON value) and
/// `data_base64` (bytes).
pub(crate) struct Payload {
    pub(crate) data: Option<String>,
    pub(crate) data_base64: Option<String>,
    pub(crate) json: Option<Box<serde_json::value::RawValue>>,
}

impl Payload {
    pub(crate) fn into_event(self) -> Result<NewEvent, String> {
        match (self.data, self.json, self.data_base64) {
            (Some(text), None, None) => Ok(NewEvent::text(text)),
            // Parsed as part of the message: valid JSON, kept as its exact text.
            (None, Some(raw), None) => {
                NewEvent::json(String::from(Box::<str>::from(raw))).map_err(|e| e.to_string())
            }
            (None, None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(NewEvent::binary)
                .map_err(|e| format!("data_base64: {e}")),
            _ => Err("a publish carries exactly one of data, json and data_base64".into()),
        }
    }
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
        let v: serde_json::Value = serde_json::from_slice(&crate::frames::event(&e)[2..]).unwrap();
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

#[cfg(test)]
mod parse_props {
    //! Property tests of `ClientOp::parse`, the one parser of what a WebSocket client sends:
    //! arbitrary JSON values and arbitrary text never panic, and a message is accepted exactly
    //! when the protocol table (crate docs) allows it: a JSON object with a known `op`, the
    //! fields that op takes (each a string, `json` any value; `null` counts as absent), the
    //! ones it needs, and no other field. Anything else is an error with a reason.

    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::ClientOp;

    const CASES: u32 = 256;

    /// Every field of the protocol.
    const FIELDS: [&str; 9] = [
        "op",
        "topic",
        "since",
        "data",
        "data_base64",
        "json",
        "type",
        "token",
        "key",
    ];

    /// A parsed message in comparable form (`json` as its text).
    #[derive(Debug, PartialEq)]
    enum Want {
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
            json: Option<String>,
            event_type: Option<String>,
            key: Option<String>,
        },
        Message {
            data: String,
        },
        Auth {
            token: String,
        },
    }

    impl From<ClientOp> for Want {
        fn from(op: ClientOp) -> Self {
            match op {
                ClientOp::Subscribe { topic, since } => Want::Subscribe { topic, since },
                ClientOp::Unsubscribe { topic } => Want::Unsubscribe { topic },
                ClientOp::Publish {
                    topic,
                    data,
                    data_base64,
                    json,
                    event_type,
                    key,
                } => Want::Publish {
                    topic,
                    data,
                    data_base64,
                    json: json.map(|raw| raw.get().to_owned()),
                    event_type,
                    key,
                },
                ClientOp::Message { data } => Want::Message { data },
                ClientOp::Auth { token } => Want::Auth { token },
            }
        }
    }

    /// The protocol table as an oracle: the message `value` is, or `None` for an error.
    fn oracle(value: &Value) -> Option<Want> {
        let object = value.as_object()?;
        if object.keys().any(|k| !FIELDS.contains(&k.as_str())) {
            return None;
        }
        let present = |name: &str| object.get(name).filter(|v| !v.is_null());
        let op = object.get("op")?.as_str()?;
        let text_fields = [
            "topic",
            "since",
            "data",
            "data_base64",
            "type",
            "token",
            "key",
        ];
        if text_fields
            .iter()
            .any(|name| present(name).is_some_and(|v| !v.is_string()))
        {
            return None;
        }
        let takes: &[&str] = match op {
            "subscribe" => &["topic", "since"],
            "unsubscribe" => &["topic"],
            "publish" => &["topic", "data", "data_base64", "json", "type", "key"],
            "message" => &["data"],
            "auth" => &["token"],
            _ => return None,
        };
        if FIELDS[1..]
            .iter()
            .any(|name| present(name).is_some() && !takes.contains(name))
        {
            return None;
        }
        let text = |name: &str| present(name).and_then(Value::as_str).map(str::to_owned);
        Some(match op {
            "subscribe" => Want::Subscribe {
                topic: text("topic")?,
                since: text("since"),
            },
            "unsubscribe" => Want::Unsubscribe {
                topic: text("topic")?,
            },
            "publish" => Want::Publish {
                topic: text("topic")?,
                data: text("data"),
                data_base64: text("data_base64"),
                json: present("json").map(Value::to_string),
                event_type: text("type"),
                key: text("key"),
            },
            "message" => Want::Message {
                data: text("data")?,
            },
            _ => Want::Auth {
                token: text("token")?,
            },
        })
    }

    /// Arbitrary JSON values, nested a few levels.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Objects shaped like client messages: a known or unknown `op` (or none, or not a
    /// string), and each field absent, a string, null or of another type; now and then a
    /// field the protocol does not have.
    fn messages() -> impl Strategy<Value = Value> {
        let op = prop_oneof![
            6 => prop::sample::select(vec!["subscribe", "unsubscribe", "publish", "message", "auth"])
                .prop_map(Value::from),
            1 => prop::sample::select(vec!["Subscribe", "dance", "", " auth", "publish\0"])
                .prop_map(Value::from),
            1 => json_value(),
        ];
        let text = || {
            prop_oneof![
                6 => prop_oneof![
                    prop::sample::select(vec!["t", "chat:1", "3fa2c41b9e07-42", ""]).prop_map(str::to_owned),
                    any::<String>(),
                ]
                .prop_map(Value::from),
                1 => Just(Value::Null),
                1 => json_value(),
            ]
        };
        let field = |value: BoxedStrategy<Value>| prop::option::weighted(0.4, value);
        (
            prop::option::weighted(0.95, op),
            [
                field(text().boxed()),
                field(text().boxed()),
                field(text().boxed()),
                field(text().boxed()),
                field(json_value().boxed()),
                field(text().boxed()),
                field(text().boxed()),
            ],
            prop::option::weighted(
                0.1,
                (
                    prop_oneof![
                        prop::sample::select(vec!["extra", "Op", "topics", "id", "json "])
                            .prop_map(str::to_owned),
                        any::<String>(),
                    ],
                    json_value(),
                ),
            ),
        )
            .prop_map(|(op, fields, extra)| {
                let mut object = Map::new();
                if let Some(op) = op {
                    object.insert("op".to_owned(), op);
                }
                for (name, value) in FIELDS[1..].iter().zip(fields) {
                    if let Some(value) = value {
                        object.insert((*name).to_owned(), value);
                    }
                }
                if let Some((name, value)) = extra {
                    object.insert(name, value);
                }
                Value::Object(object)
            })
    }

    /// A change to a message's text that may or may not keep it valid.
    fn mutate(text: &str, at: prop::sample::Index, how: u8, byte: char) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        let i = at.index(chars.len() + 1);
        match how % 4 {
            0 => chars.truncate(i),
            1 if i < chars.len() => {
                chars.remove(i);
            }
            2 => chars.insert(i, byte),
            _ if i < chars.len() => chars[i] = byte,
            _ => {}
        }
        chars.into_iter().collect()
    }

    /// Checks `text` against the oracle, for text whose JSON value is `value`; a `json` field
    /// must keep its exact text when the text is `value`'s compact serialization.
    fn check(text: &str, value: &Value) -> Result<(), TestCaseError> {
        match (ClientOp::parse(text), oracle(value)) {
            (Ok(op), Some(mut want)) => {
                let mut got = Want::from(op);
                let compact = value.to_string();
                if text != compact {
                    // Other whitespace: the same value, read the same way on both sides.
                    for side in [&mut got, &mut want] {
                        if let Want::Publish {
                            json: Some(raw), ..
                        } = side
                        {
                            *raw = serde_json::from_str::<Value>(raw)
                                .map_or_else(|_| raw.clone(), |v| v.to_string());
                        }
                    }
                }
                prop_assert_eq!(got, want);
            }
            (Err(reason), None) => prop_assert!(!reason.is_empty()),
            (got, want) => prop_assert!(false, "{}: got {:?}, expected {:?}", text, got, want),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        /// Message-shaped objects are accepted exactly as the protocol table says, with their
        /// fields (a `json` value as its exact text).
        #[test]
        fn messages_are_accepted_exactly_as_the_protocol_says(value in messages()) {
            check(&value.to_string(), &value)?;
            // Whitespace between tokens changes nothing.
            let pretty = serde_json::to_string_pretty(&value).expect("a value serializes");
            check(&pretty, &value)?;
        }

        /// Arbitrary JSON values: only objects of the protocol are accepted.
        #[test]
        fn arbitrary_json_values_are_refused_unless_a_message(value in json_value()) {
            check(&value.to_string(), &value)?;
        }

        /// Arbitrary text and damaged messages never panic; text that is not JSON is refused
        /// with a reason, and text that is JSON is judged as its value.
        #[test]
        fn arbitrary_text_never_panics_and_non_json_is_refused(
            text in prop_oneof![
                any::<String>(),
                (messages(), any::<prop::sample::Index>(), any::<u8>(),
                    prop::sample::select(vec!['{', '}', '[', ']', '"', ':', ',', '\\', ' ', 'n', '0', '\0', 'é']))
                    .prop_map(|(v, at, how, byte)| mutate(&v.to_string(), at, how, byte)),
            ],
        ) {
            match serde_json::from_str::<Value>(&text) {
                Ok(value) => check(&text, &value)?,
                Err(_) => match ClientOp::parse(&text) {
                    Err(reason) => prop_assert!(!reason.is_empty()),
                    // `json` is kept as raw text, not decoded: an escape a string cannot hold
                    // (a lone surrogate, `\ud800`) is all that may pass there.
                    Ok(op) => prop_assert!(text.contains("\\u"), "{:?} accepted: {:?}", text, op),
                },
            }
        }
    }

    #[test]
    fn the_oracle_agrees_with_known_answers() {
        let ok = json!({"op": "publish", "topic": "t", "json": {"a": [1, 2]}, "type": null});
        assert_eq!(
            oracle(&ok),
            Some(Want::Publish {
                topic: "t".into(),
                data: None,
                data_base64: None,
                json: Some(r#"{"a":[1,2]}"#.into()),
                event_type: None,
                key: None,
            })
        );
        for bad in [
            json!({"op": "subscribe"}),
            json!({"op": "subscribe", "topic": 1}),
            json!({"op": "unsubscribe", "topic": "t", "since": "a-1"}),
            json!({"op": "dance", "topic": "t"}),
            json!({"op": "auth", "token": "x", "extra": 1}),
            json!({"op": null, "token": "x"}),
            json!(["auth", "x"]),
            json!("auth"),
        ] {
            assert_eq!(oracle(&bad), None, "{bad}");
            assert!(ClientOp::parse(&bad.to_string()).is_err(), "{bad}");
        }
    }

    /// A client message is "a text frame holding one JSON object"; `Fields` is a serde
    /// struct, and serde reads a struct from a JSON list too, field by field in declaration
    /// order, so a list of eight values must be refused before that.
    #[test]
    fn a_list_is_not_read_as_a_message() {
        let list = r#"["subscribe","t",null,null,null,null,null,null]"#;
        let got = ClientOp::parse(list);
        assert!(got.is_err(), "{got:?}");
    }
}
