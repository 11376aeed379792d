//! Stream ids and entries: a cursor is its entry's stream id, and an event is its entry's
//! fields (the Lua scripts that write them are in `scripts`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use push_core::{Bytes, Cursor, Epoch, Event, EventType, NewEvent, PayloadKind, Topic};
use redis::Value;

/// Entry field holding the payload.
pub(crate) const DATA: &str = "data";
/// Entry field holding the optional event type.
pub(crate) const TYPE: &str = "type";
/// Entry field holding the publish time, in milliseconds since the Unix epoch.
pub(crate) const TIME: &str = "time";
/// Entry field holding the payload kind when it is not text (`json`, `binary`).
pub(crate) const KIND: &str = "kind";
/// Entry field of an end entry, which holds no event: `complete` (the topic finished; it takes
/// the end's sequence number, as push-core's end does) or `deleted` (the topic was deleted; the
/// next publish starts a new stream).
pub(crate) const END: &str = "end";

/// Parses a stream id written by this crate into a cursor. Never panics; `None` for an id with
/// a zero epoch or that is not `MS-SEQ`.
pub(crate) fn parse_id(id: &[u8]) -> Option<Cursor> {
    let text = std::str::from_utf8(id).ok()?;
    let (ms, seq) = text.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(seq) {
        return None;
    }
    let epoch = Epoch::new(ms.parse().ok()?)?;
    Some(Cursor::new(epoch, seq.parse().ok()?))
}

/// The stream id of a cursor: the epoch in decimal, a dash, the sequence.
pub(crate) fn stream_id(cursor: Cursor) -> String {
    format!("{}-{}", cursor.epoch().get(), cursor.seq())
}
/// The field/value pairs of an entry for `event`.
pub(crate) fn fields(event: &NewEvent, published_at: SystemTime) -> Vec<Vec<u8>> {
    let millis = published_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut fields = vec![
        DATA.as_bytes().to_vec(),
        event.data().to_vec(),
        TIME.as_bytes().to_vec(),
        millis.to_string().into_bytes(),
    ];
    if let Some(t) = event.event_type() {
        fields.push(TYPE.as_bytes().to_vec());
        fields.push(t.as_str().as_bytes().to_vec());
    }
    if event.kind() != PayloadKind::Text {
        fields.push(KIND.as_bytes().to_vec());
        fields.push(event.kind().as_str().as_bytes().to_vec());
    }
    fields
}

/// One entry as read back.
pub(crate) struct Entry {
    pub(crate) cursor: Cursor,
    pub(crate) event: Option<Arc<Event>>,
    /// For an end entry: `complete` or `deleted`.
    pub(crate) end: Option<End>,
}

/// What an end entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Complete,
    Deleted,
}

/// The `end` field of an entry's field list, if any.
fn end_field(body: &Value) -> Option<End> {
    let pairs: Vec<&Value> = match body {
        Value::Array(flat) => flat.iter().collect(),
        Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return None,
    };
    pairs.chunks(2).find_map(|kv| match kv {
        [Value::BulkString(k), Value::BulkString(v)] if k.as_slice() == END.as_bytes() => {
            match v.as_slice() {
                b"complete" => Some(End::Complete),
                b"deleted" => Some(End::Deleted),
                _ => None,
            }
        }
        _ => None,
    })
}

/// Reads the entries of an `XRANGE`/`XREVRANGE` reply, or of one stream of an `XREAD` reply.
/// Entries that are not this crate's (an id of another shape) are skipped; missing or invalid
/// fields become an empty payload, no type, or the time of reading. An entry whose payload is
/// over `max_bytes` (written by something else than this crate) yields no event: readers count
/// it as missed.
pub(crate) fn entries(topic: &Topic, value: Value, max_bytes: usize) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut parts) = item else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let body = parts.pop();
        let Some(Value::BulkString(id)) = parts.pop() else {
            continue;
        };
        let Some(cursor) = parse_id(&id) else {
            continue;
        };
        let end = body.as_ref().and_then(end_field);
        let event = body
            .filter(|_| end.is_none())
            .and_then(|body| build(topic, cursor, body))
            .filter(|event| event.data().len() <= max_bytes);
        out.push(Entry { cursor, event, end });
    }
    out
}

fn build(topic: &Topic, cursor: Cursor, body: Value) -> Option<Arc<Event>> {
    let pairs: Vec<(Value, Value)> = match body {
        Value::Array(flat) => {
            let mut it = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        _ => return None,
    };
    // The placeholder entry that creates an empty stream has sequence 0 and is trimmed at once;
    // it never reaches a reader, but an id with sequence 0 is never an event.
    if cursor.seq() == 0 {
        return None;
    }
    let mut data = Bytes::new();
    let mut event_type = None;
    let mut time = None;
    let mut kind = None;
    for (key, value) in pairs {
        let (Value::BulkString(key), Value::BulkString(value)) = (key, value) else {
            continue;
        };
        match key.as_slice() {
            k if k == DATA.as_bytes() => data = Bytes::from(value),
            k if k == TYPE.as_bytes() => {
                event_type = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|t| EventType::new(t).ok());
            }
            k if k == TIME.as_bytes() => {
                time = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
            }
            k if k == KIND.as_bytes() => {
                kind = std::str::from_utf8(&value)
                    .ok()
                    .and_then(PayloadKind::from_name);
            }
            _ => {}
        }
    }
    // The kind is checked again: an entry written by something else than this crate must not
    // put invalid JSON into every client's envelope. What does not check out is carried as
    // bytes.
    let mut new = match kind {
        Some(kind) => NewEvent::of_kind(kind, data.clone()).unwrap_or_else(|_| NewEvent::new(data)),
        None => NewEvent::new(data),
    };
    if let Some(t) = event_type {
        new = new.with_type(t);
    }
    Some(Arc::new(Event::restored(
        cursor,
        topic.clone(),
        new,
        time.unwrap_or_else(SystemTime::now),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_cursors_and_back() {
        let c = parse_id(b"1763942400123-42").unwrap();
        assert_eq!(c.epoch().get(), 1_763_942_400_123);
        assert_eq!(c.seq(), 42);
        assert_eq!(stream_id(c), "1763942400123-42");
        for bad in [
            &b""[..],
            b"-",
            b"0-1",
            b"12",
            b"12-",
            b"-3",
            b"a-1",
            b"1-x",
            b"1-2-3",
            b"99999999999999999999-1",
        ] {
            assert!(parse_id(bad).is_none(), "{bad:?}");
        }
    }
}
