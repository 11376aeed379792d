//! The JSON forms shared by the request/response techniques (poll, long-poll) and the JSON
//! envelopes of the others: one event as a JSON object, and a batch answer.
//!
//! # An event
//!
//! ```json
//! {"id":"CURSOR","type":"TYPE","time":1700000000000,"data":"TEXT"}
//! ```
//!
//! `type` is left out for untyped events. `time` is the publish time in milliseconds since the
//! Unix epoch. The payload's key says its [kind](push_core::PayloadKind), so a client never
//! guesses:
//!
//! | kind | carried as |
//! |---|---|
//! | text | `"data":"TEXT"`, a JSON string |
//! | JSON | `"json":VALUE`, the value itself (`{"json":{"text":"hello"}}`), decoded once |
//! | binary | `"data_base64":"…"`, standard base64 (RFC 4648, with padding) |
//!
//! # A batch answer
//!
//! ```json
//! {"outcome":"resumed","next":"CURSOR","more":false,"events":[EVENT, …]}
//! {"outcome":"gap","missed":3,"next":"CURSOR","more":false,"events":[…]}
//! {"outcome":"reset","next":"CURSOR","more":false,"events":[…]}
//! ```
//!
//! `outcome` says how the answer relates to the cursor asked for (see [`Outcome`]); `missed`
//! appears only with a gap. `"complete":true` appears when the topic is complete and the answer
//! reached its end: there is nothing more to ask for. `next` is the cursor to ask from next time: the last event's id, or
//! the cursor asked for when there were no events. `more` is `true` when the batch stopped at
//! its size limit and more events are already waiting (ask again at once).

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use push_core::{Batch, EncodingSlot, Event, Outcome, PayloadKind};

static EVENT_SLOT: EncodingSlot = EncodingSlot::new();

#[derive(Serialize)]
struct EventOut<'a> {
    id: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    event_type: Option<&'a str>,
    time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

/// The JSON object of `event` (no trailing newline), encoded once per event and shared by every
/// caller afterwards.
#[must_use]
pub fn event(event: &Event) -> Bytes {
    event.encoded(&EVENT_SLOT, |event| {
        let bytes = event.data();
        let base64 = || Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        // Text and JSON were checked when the event was made; a check failing here still
        // yields a well-formed object, with the payload as bytes.
        let (data, json, data_base64) = match event.kind() {
            PayloadKind::Json => match serde_json::from_slice(bytes) {
                Ok(raw) => (None, Some(raw), None),
                Err(_) => (None, None, base64()),
            },
            PayloadKind::Binary => (None, None, base64()),
            _ => match std::str::from_utf8(bytes) {
                Ok(text) => (Some(text), None, None),
                Err(_) => (None, None, base64()),
            },
        };
        let out = EventOut {
            id: event.id().to_string(),
            event_type: event.event_type().map(|t| t.as_str()),
            time: event.published_at_millis(),
            data,
            json,
            data_base64,
        };
        // Serializing this struct cannot fail: every field is a string or an integer.
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .unwrap_or_default()
    })
}

static TOPIC_EVENT_SLOT: EncodingSlot = EncodingSlot::new();

/// `{"topic":T,"id":C,…}`: [`event`]'s object with the event's topic in front, encoded once
/// per event: push-ws's envelope, and the events of a request that follows several topics.
#[must_use]
pub fn topic_event(ev: &Event) -> Bytes {
    ev.encoded(&TOPIC_EVENT_SLOT, |ev| {
        let object = event(ev);
        let topic = ev.topic().as_str();
        let mut out = BytesMut::with_capacity(object.len() + topic.len() + 12);
        // Topic names are `[A-Za-z0-9-_.~:]`: nothing to escape.
        out.put_slice(b"{\"topic\":\"");
        out.put_slice(topic.as_bytes());
        out.put_slice(b"\",");
        out.put_slice(object.get(1..).unwrap_or_default());
        out.freeze()
    })
}

/// The outcome's name in every JSON form: `resumed`, `gap` or `reset`.
#[must_use]
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Resumed => "resumed",
        Outcome::Gap { .. } => "gap",
        Outcome::Reset => "reset",
    }
}

/// `{"outcome":"resumed"|"gap"|"reset","missed":N,"cursor":C}` and a newline: the first line
/// of a line-delimited stream (push-stream, push-h2's subscription body), and a gap met
/// mid-stream. `missed` only for a gap; `cursor` is where the stream stands.
#[must_use]
pub(crate) fn outcome_line(outcome: Outcome, cursor: push_core::Cursor) -> Bytes {
    let missed = match outcome {
        Outcome::Gap { missed } => format!(",\"missed\":{missed}"),
        Outcome::Resumed | Outcome::Reset => String::new(),
    };
    // Cursors are `[0-9a-f]+-[0-9]+`: nothing to escape.
    Bytes::from(format!(
        "{{\"outcome\":\"{}\"{missed},\"cursor\":\"{cursor}\"}}\n",
        outcome_name(outcome)
    ))
}

/// `{"topic":T,"outcome":…,"missed":N,"cursor":C}` and a newline: one topic's outcome in a
/// stream of several.
#[must_use]
pub(crate) fn topic_outcome_line(
    topic: &push_core::Topic,
    outcome: Outcome,
    cursor: push_core::Cursor,
) -> Bytes {
    let line = outcome_line(outcome, cursor);
    // `{"outcome"…` with the topic spliced in front; names need no escaping.
    let mut out = BytesMut::with_capacity(line.len() + topic.as_str().len() + 12);
    out.put_slice(b"{\"topic\":\"");
    out.put_slice(topic.as_str().as_bytes());
    out.put_slice(b"\",");
    out.put_slice(line.get(1..).unwrap_or_default());
    out.freeze()
}

/// `{"end":"shutdown"|"expired","cursor":C}` and a newline: the last line of a stream when the
/// hub closes or the client's credentials expire.
#[must_use]
pub(crate) fn end_line(reason: crate::End, cursor: push_core::Cursor) -> Bytes {
    Bytes::from(format!(
        "{{\"end\":\"{}\",\"cursor\":\"{cursor}\"}}\n",
        reason.as_str()
    ))
}

/// The batch answer for `batch`; `more` says whether further events were left for the next
/// request. The events' objects are the shared encodings of [`event`], copied once into the
/// answer.
#[must_use]
pub(crate) fn batch(batch: &Batch, more: bool) -> Bytes {
    let objects: Vec<Bytes> = batch.events.iter().map(|e| event(e)).collect();
    let size = 96 + objects.iter().map(|o| o.len() + 1).sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_slice(b"{\"outcome\":\"");
    out.put_slice(outcome_name(batch.outcome).as_bytes());
    out.put_slice(b"\",");
    if let Outcome::Gap { missed } = batch.outcome {
        out.put_slice(format!("\"missed\":{missed},").as_bytes());
    }
    // Cursors are `[0-9a-f]+-[0-9]+`: nothing to escape.
    out.put_slice(format!("\"next\":\"{}\",\"more\":{more},", batch.next).as_bytes());
    if batch.complete {
        out.put_slice(b"\"complete\":true,");
    }
    out.put_slice(b"\"events\":[");
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(object);
    }
    out.put_slice(b"]}");
    out.freeze()
}

/// The answer carrying a batch: `200`, `application/json`, the batch answer as body.
#[must_use]
pub fn batch_response<B: From<Bytes>>(batch: &Batch, more: bool) -> http::Response<B> {
    let mut res = http::Response::new(B::from(self::batch(batch, more)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// A batch bound of `events` events and `bytes` bytes of event objects as [`event`] encodes
/// them (plus a separator each): what poll and long-poll answers are cut at.
#[must_use]
pub(crate) fn batch_limit(events: usize, bytes: usize) -> push_core::BatchLimit {
    push_core::BatchLimit::new(events, bytes, |e| event(e).len() + 1)
}

static NDJSON_SLOT: EncodingSlot = EncodingSlot::new();

/// The NDJSON line of an event, computed once per event and shared by every stream: the
/// event's JSON object ([`event`]) and a newline.
#[must_use]
pub(crate) fn event_line(event: &Event) -> Bytes {
    event.encoded(&NDJSON_SLOT, |event| {
        let object = self::event(event);
        let mut line = Vec::with_capacity(object.len() + 1);
        line.extend_from_slice(&object);
        line.push(b'\n');
        line.into()
    })
}

/// `{"heartbeat":MS}` and a newline: the server's clock, sent after a period of silence.
#[must_use]
pub(crate) fn heartbeat_line() -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Bytes::from(format!("{{\"heartbeat\":{now}}}\n"))
}

/// `{"heartbeat":MS,"away":"backend unavailable"}` and a newline: a heartbeat that also says
/// the hub's backend is not answering ([`Framing::away`](crate::Framing::away)), so nothing
/// comes until it is back; the stream then goes on from its position. A heartbeat with one
/// more member, so a client that skips heartbeats skips it too, and one that cares looks for
/// `away`.
#[must_use]
pub(crate) fn away_line() -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Bytes::from(format!(
        "{{\"heartbeat\":{now},\"away\":\"backend unavailable\"}}\n"
    ))
}

/// Newline-delimited JSON as a [`Framing`](crate::Framing): an outcome line
/// (`{"outcome":…,"cursor":…}`) first, one event object and a newline per event, outcome lines
/// for gaps, `{"heartbeat":MS}` when silent (with `"away":"backend unavailable"` while the
/// backend is away), and `{"end":REASON,"cursor":…}` at the end: push-stream's body, and
/// push-h2's event lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ndjson;

impl crate::Framing for Ndjson {
    const CONTENT_TYPE: &'static str = "application/x-ndjson";

    fn start(&self, outcome: Outcome, cursor: push_core::Cursor) -> Bytes {
        outcome_line(outcome, cursor)
    }

    fn event(&self, event: &Event) -> Bytes {
        event_line(event)
    }

    fn gap(&self, missed: u64, cursor: push_core::Cursor) -> Bytes {
        outcome_line(Outcome::Gap { missed }, cursor)
    }

    fn heartbeat(&self) -> Bytes {
        heartbeat_line()
    }

    fn away(&self) -> Bytes {
        away_line()
    }

    fn end(&self, reason: crate::End, cursor: push_core::Cursor) -> Bytes {
        end_line(reason, cursor)
    }

    fn multi_start(
        &self,
        topics: &[(push_core::Topic, Outcome, push_core::Cursor)],
        _position: &dyn std::fmt::Display,
    ) -> Bytes {
        let mut out = BytesMut::new();
        for (topic, outcome, cursor) in topics {
            out.put_slice(&topic_outcome_line(topic, *outcome, *cursor));
        }
        out.freeze()
    }

    fn multi_event(&self, event: &Event, _position: &dyn std::fmt::Display) -> Bytes {
        // The shared object plus a newline: one copy per event and stream (a request of one
        // topic shares its whole line instead).
        [&topic_event(event)[..], b"\n"].concat().into()
    }

    fn multi_topic(
        &self,
        topic: &push_core::Topic,
        missed: Option<u64>,
        cursor: push_core::Cursor,
        _position: &dyn std::fmt::Display,
    ) -> Bytes {
        match missed {
            Some(missed) => topic_outcome_line(topic, Outcome::Gap { missed }, cursor),
            None => format!(
                "{{\"topic\":\"{}\",\"complete\":true,\"cursor\":\"{cursor}\"}}\n",
                topic.as_str()
            )
            .into(),
        }
    }

    fn multi_end(&self, reason: crate::End, position: &dyn std::fmt::Display) -> Bytes {
        format!(
            "{{\"end\":\"{}\",\"cursor\":\"{position}\"}}\n",
            reason.as_str()
        )
        .into()
    }
}

/// An event as a client reads it back from JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// The event's cursor, as sent.
    pub id: String,
    /// The event type, if any.
    pub event_type: Option<String>,
    /// The publish time, in milliseconds since the Unix epoch.
    pub time: u64,
    /// The payload's kind: which key carried it.
    pub kind: PayloadKind,
    /// The payload: the text of `data`, the JSON text of `json` exactly as sent (decode it once
    /// with [`ReceivedEvent::json`]), or the bytes of `data_base64`.
    pub data: Bytes,
}

/// A batch answer as a client reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedBatch {
    /// How the answer relates to the cursor asked for.
    pub outcome: Outcome,
    /// The cursor to ask from next time.
    pub next: String,
    /// Whether more events are waiting.
    pub more: bool,
    /// Whether the topic is complete and this answer reached its end: stop asking.
    pub complete: bool,
    /// The events, in order.
    pub events: Vec<ReceivedEvent>,
}

#[derive(Deserialize)]
struct EventIn {
    id: String,
    #[serde(rename = "type")]
    event_type: Option<String>,
    time: u64,
    data: Option<String>,
    json: Option<Box<serde_json::value::RawValue>>,
    data_base64: Option<String>,
}

#[derive(Deserialize)]
struct BatchIn {
    outcome: String,
    missed: Option<u64>,
    next: String,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    complete: bool,
    events: Vec<EventIn>,
}

impl ReceivedEvent {
    /// Reads one event object.
    ///
    /// # Errors
    ///
    /// When `json` is not an event object, or its `data_base64` is not valid base64.
    pub fn parse(json: &[u8]) -> Result<Self, crate::Error> {
        let event: EventIn =
            serde_json::from_slice(json).map_err(|e| crate::Error::Json(e.to_string()))?;
        event.into_received()
    }

    /// A JSON payload decoded as `T`.
    ///
    /// # Errors
    ///
    /// When the payload is not JSON, or not a `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        if self.kind != PayloadKind::Json {
            return Err(crate::Error::Json(format!(
                "the payload is {}, not JSON",
                self.kind
            )));
        }
        serde_json::from_slice(&self.data).map_err(|e| crate::Error::Json(e.to_string()))
    }
}

impl EventIn {
    fn into_received(self) -> Result<ReceivedEvent, crate::Error> {
        let (kind, data) = match (self.data, self.json, self.data_base64) {
            (Some(text), None, None) => (PayloadKind::Text, Bytes::from(text)),
            (None, Some(raw), None) => (
                PayloadKind::Json,
                Bytes::from(String::from(Box::<str>::from(raw))),
            ),
            (None, None, Some(b64)) => (
                PayloadKind::Binary,
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(Bytes::from)
                    .map_err(|e| crate::Error::Json(format!("data_base64: {e}")))?,
            ),
            _ => {
                return Err(crate::Error::Json(
                    "an event carries exactly one of data, json and data_base64".into(),
                ))
            }
        };
        Ok(ReceivedEvent {
            id: self.id,
            event_type: self.event_type,
            time: self.time,
            kind,
            data,
        })
    }
}

impl ReceivedBatch {
    /// Reads a batch answer.
    ///
    /// # Errors
    ///
    /// When `json` is not a batch answer.
    pub fn parse(json: &[u8]) -> Result<Self, crate::Error> {
        let batch: BatchIn =
            serde_json::from_slice(json).map_err(|e| crate::Error::Json(e.to_string()))?;
        let outcome = match (batch.outcome.as_str(), batch.missed) {
            ("resumed", None) => Outcome::Resumed,
            ("gap", Some(missed)) => Outcome::Gap { missed },
            ("reset", None) => Outcome::Reset,
            (other, missed) => {
                return Err(crate::Error::Json(format!(
                    "outcome {other:?} with missed {missed:?}"
                )))
            }
        };
        Ok(ReceivedBatch {
            outcome,
            next: batch.next,
            more: batch.more,
            complete: batch.complete,
            events: batch
                .events
                .into_iter()
                .map(EventIn::into_received)
                .collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::{EventType, MemoryHub, NewEvent, StartFrom, Topic};

    #[test]
    fn batches_round_trip_text_and_binary() {
        let hub = MemoryHub::default();
        let t = Topic::new("t").unwrap();
        let mut sub = hub.subscribe_now(&t, StartFrom::Newest).unwrap();
        hub.publish_now(
            &t,
            NewEvent::new("line \"one\"\nline two").with_type(EventType::new("x").unwrap()),
        )
        .unwrap();
        hub.publish_now(&t, NewEvent::new(vec![0xff, 0, 0x80]))
            .unwrap();
        let b = sub.try_batch(10).unwrap();
        let json = batch(&b, false);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["outcome"], "resumed");
        assert!(v.get("missed").is_none());
        assert_eq!(v["events"][1]["data_base64"], "/wCA");
        let back = ReceivedBatch::parse(&json).unwrap();
        assert_eq!(back.outcome, Outcome::Resumed);
        assert_eq!(back.next, b.next.to_string());
        assert_eq!(back.events.len(), 2);
        assert_eq!(back.events[0].data, "line \"one\"\nline two");
        assert_eq!(back.events[0].event_type.as_deref(), Some("x"));
        assert_eq!(back.events[1].data, Bytes::from_static(&[0xff, 0, 0x80]));
        assert_eq!(back.events[1].id, b.events[1].id().to_string());

        let gap = Batch {
            outcome: Outcome::Gap { missed: 7 },
            events: Vec::new(),
            next: b.next,
            cut: false,
            complete: false,
        };
        let json = batch(&gap, true);
        assert_eq!(
            json,
            format!(
                "{{\"outcome\":\"gap\",\"missed\":7,\"next\":\"{}\",\"more\":true,\"events\":[]}}",
                b.next
            )
        );
        assert_eq!(
            ReceivedBatch::parse(&json).unwrap().outcome,
            Outcome::Gap { missed: 7 }
        );
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            &b"{}"[..],
            b"{\"outcome\":\"gap\",\"next\":\"a-1\",\"events\":[]}",
            b"{\"outcome\":\"resumed\",\"next\":\"a-1\",\"events\":[{\"id\":\"a-1\",\"time\":1}]}",
            b"{\"outcome\":\"resumed\",\"next\":\"a-1\",\"events\":[{\"id\":\"a-1\",\"time\":1,\"data_base64\":\"%%\"}]}",
            b"not json",
        ] {
            assert!(ReceivedBatch::parse(bad).is_err(), "{bad:?}");
        }
    }

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
        let away: serde_json::Value = serde_json::from_slice(&away_line()).unwrap();
        assert!(away["heartbeat"].is_u64(), "{away}");
        assert_eq!(away["away"], "backend unavailable");
        assert!(away_line().ends_with(b"}\n"));
    }
}
