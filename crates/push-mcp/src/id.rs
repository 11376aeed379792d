//! Event ids: the stream and the push cursor, so a resume finds its topic from the id alone.

use push_core::{Cursor, Topic};

use crate::Error;

/// The prefix of every topic this crate writes, so its topics never meet an application's.
const PREFIX: &str = "mcp:";

/// The topic of one MCP stream: `mcp:s:{stream}`. rmcp names a request's stream by a fresh
/// UUID and a session's standalone stream `{session}:common`.
pub(crate) fn stream_topic(stream: &str) -> Result<Topic, Error> {
    Topic::new(&format!("{PREFIX}s:{stream}")).map_err(Error::Name)
}

/// The topic listing the request streams a session opened: `mcp:i:{session}`.
pub(crate) fn index_topic(session: &str) -> Result<Topic, Error> {
    Topic::new(&format!("{PREFIX}i:{session}")).map_err(Error::Name)
}

/// The topic holding a session's state for a restore: `mcp:st:{session}`.
pub(crate) fn state_topic(session: &str) -> Result<Topic, Error> {
    Topic::new(&format!("{PREFIX}st:{session}")).map_err(Error::Name)
}

/// The standalone stream rmcp opens for a session (`GET` without `Last-Event-ID`).
pub(crate) fn common_stream(session: &str) -> String {
    format!("{session}:common")
}

/// An event id, `{stream}/{cursor}`: the stream id as rmcp named it and the push cursor of the
/// event in that stream's topic. Neither part may hold a `/`, so the split is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventId {
    pub(crate) stream: String,
    pub(crate) cursor: Cursor,
}

impl EventId {
    pub(crate) fn format(stream: &str, cursor: Cursor) -> String {
        format!("{stream}/{cursor}")
    }

    /// Parses an id strictly: exactly one `/`, a stream part that names a topic, a cursor in
    /// push-core's canonical form. Never panics.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let (stream, cursor) = text
            .split_once('/')
            .ok_or(Error::EventId("no `/` between stream and cursor"))?;
        if stream.is_empty() {
            return Err(Error::EventId("empty stream"));
        }
        stream_topic(stream).map_err(|_| Error::EventId("stream is not a topic name"))?;
        let cursor = Cursor::parse(cursor).map_err(|_| Error::EventId("cursor does not parse"))?;
        Ok(Self {
            stream: stream.to_owned(),
            cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_and_garbage_is_an_error() {
        let cursor = Cursor::parse("1a2b-7").expect("cursor");
        let text = EventId::format("0e5c-uuid", cursor);
        assert_eq!(
            EventId::parse(&text).expect("parses"),
            EventId {
                stream: "0e5c-uuid".to_owned(),
                cursor
            }
        );
        for garbage in [
            "",
            "/",
            "abc",
            "abc/",
            "/1a2b-7",
            "a b/1a2b-7",
            "abc/1a2b-7/x",
            "abc/01a2b-7",
            "abc/1a2b-07",
            "abc/zz-1",
            "0",
            "0/3",
            "\u{e9}/1-1",
        ] {
            assert!(EventId::parse(garbage).is_err(), "{garbage:?} parsed");
        }
        let long = format!("{}/1-1", "a".repeat(200));
        assert!(EventId::parse(&long).is_err());
    }
}
