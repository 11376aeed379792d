//! Events: what a topic's log holds.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::{Cursor, Topic};

/// The longest accepted event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 64;

/// How many encodings an event caches (see [`EncodingSlot`]).
const SLOTS: usize = 5;

/// What an event's payload is, chosen at publish and validated once then: every JSON envelope
/// marks it, so a client never guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PayloadKind {
    /// UTF-8 text (carried as a JSON string).
    #[default]
    Text,
    /// One JSON value (carried as that value, not as a string holding it).
    Json,
    /// Bytes (carried as base64 where the format is text).
    Binary,
}

impl PayloadKind {
    /// `"text"`, `"json"` or `"binary"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Text => "text",
            PayloadKind::Json => "json",
            PayloadKind::Binary => "binary",
        }
    }

    /// The kind named `name` ([`as_str`](Self::as_str)'s names).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "text" => Some(PayloadKind::Text),
            "json" => Some(PayloadKind::Json),
            "binary" => Some(PayloadKind::Binary),
            _ => None,
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadKind::Text => "UTF-8 text",
            PayloadKind::Json => "JSON",
            PayloadKind::Binary => "binary",
        })
    }
}

/// One published event, shared by every subscriber through an `Arc`.
///
/// The payload is [`Bytes`] of a [`PayloadKind`]: text is valid UTF-8 and JSON one valid JSON
/// value (both checked when the [`NewEvent`] was made); each technique crate says how it
/// carries each kind.
pub struct Event {
    id: Cursor,
    topic: Topic,
    event_type: Option<EventType>,
    kind: PayloadKind,
    data: Bytes,
    published_at: SystemTime,
    pub(crate) published_instant: Instant,
    encoded: [OnceLock<Bytes>; SLOTS],
    /// Bytes of cached encodings, plus [`RETAINED`] while a log holds the event: one atomic, so
    /// that an encoding cached while the log drops the event is counted exactly once or not at
    /// all.
    charge: AtomicUsize,
    /// The meter of the log that holds (or held) the event.
    meter: OnceLock<Arc<Meter>>,
}

/// Set in [`Event::charge`] while a log holds the event.
const RETAINED: usize = 1 << (usize::BITS - 1);

/// Bytes held by one topic's log, and by every log of a hub.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    pub(crate) topic: AtomicUsize,
    pub(crate) hub: Arc<AtomicUsize>,
}

impl Meter {
    pub(crate) fn new(hub: Arc<AtomicUsize>) -> Self {
        Self {
            topic: AtomicUsize::new(0),
            hub,
        }
    }

    pub(crate) fn add(&self, n: usize) {
        self.topic.fetch_add(n, Ordering::Relaxed);
        self.hub.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: usize) {
        self.topic.fetch_sub(n, Ordering::Relaxed);
        self.hub.fetch_sub(n, Ordering::Relaxed);
    }

    pub(crate) fn topic_bytes(&self) -> usize {
        self.topic.load(Ordering::Relaxed)
    }
}

impl Event {
    pub(crate) fn new(id: Cursor, topic: Topic, new: NewEvent) -> Self {
        Self {
            id,
            topic,
            event_type: new.event_type,
            kind: new.kind,
            data: new.data,
            published_at: SystemTime::now(),
            published_instant: Instant::now(),
            encoded: Default::default(),
            charge: AtomicUsize::new(0),
            meter: OnceLock::new(),
        }
    }

    /// An event whose cursor and publish time were assigned elsewhere: what a backend over a
    /// shared store builds from what it reads back, to feed a [`ReplicaLog`](crate::ReplicaLog).
    /// A publish time in the future is taken as now.
    #[must_use]
    pub fn restored(id: Cursor, topic: Topic, new: NewEvent, published_at: SystemTime) -> Self {
        let now = SystemTime::now();
        let published_at = published_at.min(now);
        let age = now.duration_since(published_at).unwrap_or_default();
        let instant = Instant::now();
        Self {
            id,
            topic,
            event_type: new.event_type,
            kind: new.kind,
            data: new.data,
            published_at,
            published_instant: instant.checked_sub(age).unwrap_or(instant),
            encoded: Default::default(),
            charge: AtomicUsize::new(0),
            meter: OnceLock::new(),
        }
    }

    /// The event's cursor: resume after it to receive the events that follow.
    #[must_use]
    pub fn id(&self) -> Cursor {
        self.id
    }

    /// The topic it was published to.
    #[must_use]
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The optional event type.
    #[must_use]
    pub fn event_type(&self) -> Option<&EventType> {
        self.event_type.as_ref()
    }

    /// The payload.
    #[must_use]
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The payload's kind.
    #[must_use]
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// When it was published (wall clock), for latency measurements by clients.
    #[must_use]
    pub fn published_at(&self) -> SystemTime {
        self.published_at
    }

    /// The publish time in milliseconds since the Unix epoch, as the technique crates send it.
    #[must_use]
    pub fn published_at_millis(&self) -> u64 {
        self.published_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// The bytes this event accounts for in its topic's retention budget and the hub's: what it
    /// really holds — payload, type, every wire encoding cached so far (see
    /// [`encoded`](Self::encoded); a JSON encoding of control characters is six times the
    /// payload) — and a fixed overhead of [`EVENT_OVERHEAD`] bytes for the event itself.
    #[must_use]
    pub fn retained_size(&self) -> usize {
        self.base_size() + (self.charge.load(Ordering::Relaxed) & !RETAINED)
    }

    fn base_size(&self) -> usize {
        EVENT_OVERHEAD + self.data.len() + self.event_type.as_ref().map_or(0, |t| t.0.len())
    }

    /// Counts the event in `meter` from now on (its log took it).
    pub(crate) fn retain(&self, meter: &Arc<Meter>) {
        let meter = self.meter.get_or_init(|| meter.clone());
        let before = self.charge.fetch_or(RETAINED, Ordering::AcqRel);
        if before & RETAINED == 0 {
            meter.add(self.base_size() + before);
        }
    }

    /// Stops counting the event (its log dropped it); returns the bytes released.
    pub(crate) fn release(&self) -> usize {
        let before = self.charge.fetch_and(!RETAINED, Ordering::AcqRel);
        if before & RETAINED == 0 {
            return 0;
        }
        let size = self.base_size() + (before & !RETAINED);
        if let Some(meter) = self.meter.get() {
            meter.sub(size);
        }
        size
    }

    /// The event encoded in one wire format, computed at most once per event and slot.
    ///
    /// A technique crate declares one `static` [`EncodingSlot`] per format; the first subscriber
    /// that needs the encoding runs `encode`, every other subscriber gets the same shared
    /// [`Bytes`]. This is what lets a fan-out to thousands of connections encode each event once.
    /// A process that declares more than five slots still works: the extra formats are encoded
    /// on every call.
    pub fn encoded(
        &self,
        slot: &'static EncodingSlot,
        encode: impl FnOnce(&Event) -> Bytes,
    ) -> Bytes {
        let Some(cell) = self.encoded.get(slot.index()) else {
            return encode(self);
        };
        let mut cached = 0;
        let bytes = cell
            .get_or_init(|| {
                let bytes = encode(self);
                cached = bytes.len();
                bytes
            })
            .clone();
        if cached > 0 {
            // What the cache now holds counts against retention, if a log still holds the event.
            let before = self.charge.fetch_add(cached, Ordering::AcqRel);
            if before & RETAINED != 0 {
                if let Some(meter) = self.meter.get() {
                    meter.add(cached);
                }
            }
        }
        bytes
    }
}

/// The bookkeeping bytes counted per retained event on top of its payload.
pub const EVENT_OVERHEAD: usize = 256;

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("event_type", &self.event_type)
            .field("data_len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// A cache slot for one wire encoding of events; see [`Event::encoded`].
#[derive(Debug)]
pub struct EncodingSlot {
    index: OnceLock<usize>,
}

impl EncodingSlot {
    /// A new slot; declare it as a `static`.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        *self
            .index
            .get_or_init(|| NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for EncodingSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// A validated event type: 1 to [`MAX_EVENT_TYPE_LEN`] bytes of ASCII letters, digits and
/// `-`, `_`, `.`, `:`.
///
/// The charset is safe in every technique's framing (an SSE `event:` line, a JSON string, a URL
/// path segment) without escaping.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventType(Box<str>);

impl EventType {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`Error::EventTypeLength`](crate::Error::EventTypeLength) when it is empty or too long,
    /// [`Error::EventTypeChar`](crate::Error::EventTypeChar) when it has a character outside
    /// the set.
    pub fn new(name: &str) -> Result<Self, crate::Error> {
        if name.is_empty() || name.len() > MAX_EVENT_TYPE_LEN {
            return Err(crate::Error::EventTypeLength {
                len: name.len(),
                max: MAX_EVENT_TYPE_LEN,
            });
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(crate::Error::EventTypeChar(c));
        }
        Ok(Self(name.into()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a publisher hands to [`Hub::publish`](crate::Hub::publish): payload, its kind and an
/// optional type.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub(crate) event_type: Option<EventType>,
    pub(crate) kind: PayloadKind,
    pub(crate) data: Bytes,
    pub(crate) idempotency_key: Option<Box<str>>,
}

/// The longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

impl NewEvent {
    /// An untyped event carrying `data`: [`PayloadKind::Text`] when it is valid UTF-8, else
    /// [`PayloadKind::Binary`].
    #[must_use]
    pub fn new(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let kind = if std::str::from_utf8(&data).is_ok() {
            PayloadKind::Text
        } else {
            PayloadKind::Binary
        };
        Self {
            event_type: None,
            idempotency_key: None,
            kind,
            data,
        }
    }

    /// A text event.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            event_type: None,
            idempotency_key: None,
            kind: PayloadKind::Text,
            data: Bytes::from(text.into()),
        }
    }

    /// A binary event: carried as bytes (base64 in JSON envelopes) even when it happens to be
    /// valid UTF-8.
    #[must_use]
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self {
            event_type: None,
            idempotency_key: None,
            kind: PayloadKind::Binary,
            data: data.into(),
        }
    }

    /// A JSON event: `json` must hold exactly one JSON value (RFC 8259), checked now.
    ///
    /// ```
    /// use push_core::{NewEvent, PayloadKind};
    /// let e = NewEvent::json(r#"{"text":"hello"}"#).unwrap();
    /// assert_eq!(e.kind(), PayloadKind::Json);
    /// assert!(NewEvent::json("{oops").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Payload`](crate::Error::Payload) when it does not parse, or nests arrays and
    /// objects deeper than [`MAX_JSON_DEPTH`] (what `serde_json::Value` decodes).
    pub fn json(json: impl Into<Bytes>) -> Result<Self, crate::Error> {
        Self::of_kind(PayloadKind::Json, json)
    }

    /// An event of `kind`, checked: text must be UTF-8, JSON one JSON value.
    ///
    /// # Errors
    ///
    /// [`Error::Payload`](crate::Error::Payload) when `data` is not of `kind`.
    pub fn of_kind(kind: PayloadKind, data: impl Into<Bytes>) -> Result<Self, crate::Error> {
        let data = data.into();
        let invalid = |reason: String| crate::Error::Payload { kind, reason };
        match kind {
            PayloadKind::Text => {
                std::str::from_utf8(&data).map_err(|e| invalid(e.to_string()))?;
            }
            PayloadKind::Json => {
                // RFC 8259 §8.1: a JSON text is UTF-8. Parsing bytes skips the inside of
                // strings without checking it, so check the whole text first.
                let text = std::str::from_utf8(&data).map_err(|e| invalid(e.to_string()))?;
                serde_json::from_str::<&serde_json::value::RawValue>(text)
                    .map_err(|e| invalid(e.to_string()))?;
                // A value nested deeper than serde_json's own `Value` parser takes (127) would
                // be stored here and then fail every client that decodes it, on every resume.
                if nesting(text) > MAX_JSON_DEPTH {
                    return Err(invalid(format!(
                        "JSON nested deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            PayloadKind::Binary => {}
        }
        Ok(Self {
            event_type: None,
            idempotency_key: None,
            kind,
            data,
        })
    }

    /// The payload's kind.
    #[must_use]
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// Makes the publish idempotent: another publish of the same key to the same topic within
    /// [`HubConfig::idempotency_window`](crate::HubConfig::idempotency_window) stores nothing
    /// and returns the first one's cursor. For a client that retries a publish whose answer it
    /// lost (HTTP's `Idempotency-Key` header). Keys are 1 to [`MAX_IDEMPOTENCY_KEY_LEN`]
    /// visible ASCII characters.
    ///
    /// # Errors
    ///
    /// [`Error::IdempotencyKey`](crate::Error::IdempotencyKey) for a key out of those bounds.
    pub fn with_idempotency_key(mut self, key: &str) -> Result<Self, crate::Error> {
        let valid = !key.is_empty()
            && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(crate::Error::IdempotencyKey {
                max: MAX_IDEMPOTENCY_KEY_LEN,
            });
        }
        self.idempotency_key = Some(key.into());
        Ok(self)
    }

    /// The idempotency key, if set.
    #[must_use]
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// Sets the event type.
    #[must_use]
    pub fn with_type(mut self, event_type: EventType) -> Self {
        self.event_type = Some(event_type);
        self
    }

    /// The payload.
    #[must_use]
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The event type, if set.
    #[must_use]
    pub fn event_type(&self) -> Option<&EventType> {
        self.event_type.as_ref()
    }

    /// The payload size in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// How deep a JSON payload may nest arrays and objects: the deepest serde_json's `Value`
/// parser takes (its limit, 128, counts the value itself), so every
/// client that decodes an event into a `serde_json::Value` can.
pub const MAX_JSON_DEPTH: usize = 127;

/// The deepest nesting of arrays and objects in a JSON text already known to be valid (brackets
/// inside strings do not count).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Epoch;

    #[test]
    fn json_deeper_than_serde_json_decodes_is_refused() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(NewEvent::json(deep(MAX_JSON_DEPTH)).is_ok());
        let err = NewEvent::json(deep(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
        assert!(NewEvent::json(deep(100_000)).is_err());
        // Brackets inside strings, escaped quotes included, do not nest.
        let text = format!("{{\"a\":\"\\\"{}\",\"b\":[{{}}]}}", "[".repeat(500));
        assert!(NewEvent::json(text).is_ok());
        // What serde_json's Value takes, push takes, and the other way round.
        let ok = deep(MAX_JSON_DEPTH);
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
    }

    #[test]
    fn event_types_are_validated() {
        assert!(EventType::new("chat.message:v1").is_ok());
        assert!(EventType::new("").is_err());
        assert!(EventType::new("a\nb").is_err());
        assert!(EventType::new("a b").is_err());
        assert!(EventType::new(&"a".repeat(MAX_EVENT_TYPE_LEN + 1)).is_err());
    }

    #[test]
    fn encodings_are_cached_per_slot() {
        static A: EncodingSlot = EncodingSlot::new();
        static B: EncodingSlot = EncodingSlot::new();
        let event = Event::new(
            Cursor::new(Epoch::new(1).unwrap(), 1),
            Topic::new("t").unwrap(),
            NewEvent::new("x"),
        );
        let mut calls = 0;
        for _ in 0..3 {
            let a = event.encoded(&A, |_| {
                calls += 1;
                Bytes::from_static(b"a")
            });
            assert_eq!(a, "a");
        }
        assert_eq!(calls, 1);
        assert_eq!(event.encoded(&B, |_| Bytes::from_static(b"b")), "b");
        assert_eq!(event.encoded(&A, |_| unreachable!()), "a");
    }
}
