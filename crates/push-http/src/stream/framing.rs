//! What a technique writes at each point of a long-lived stream, and why a stream ends.

use std::fmt::Display;

use bytes::Bytes;
use push_core::{Cursor, Event, Outcome, Topic};

/// How a technique writes each part of a long-lived stream, and the stream's HTTP form.
/// Implementations are small and stateless; the engine decides when each part is written.
///
/// A stream of one topic uses [`start`](Self::start), [`event`](Self::event),
/// [`gap`](Self::gap), [`heartbeat`](Self::heartbeat), [`away`](Self::away) and
/// [`end`](Self::end). A stream of several topics
/// ([`Endpoint::stream_topics`](crate::Endpoint::stream_topics)) uses the four `multi_`
/// methods in their place, each given the combined cursor (see [`topics`](crate::topics));
/// their defaults serve a format that does not tell topics apart.
pub trait Framing: Send + Unpin + 'static {
    /// The stream's `Content-Type`.
    const CONTENT_TYPE: &'static str;
    /// The stream's `Cache-Control` (`no-transform` keeps proxies from recompressing or
    /// buffering it).
    const CACHE_CONTROL: &'static str = "no-cache, no-transform";
    /// Whether a request on complete topics with nothing left to send is answered
    /// `204 No Content` instead of a stream that only says so: what stops a browser's
    /// `EventSource` from reconnecting (WHATWG HTML, server-sent events).
    const NO_CONTENT_WHEN_FINISHED: bool = false;

    /// The first bytes of the stream: anything the format wants up front (an SSE `retry:`
    /// hint), and the start [`Outcome`] with the subscription's position.
    fn start(&self, outcome: Outcome, cursor: Cursor) -> Bytes;
    /// One event. Use [`Event::encoded`] so a fan-out encodes each event once.
    fn event(&self, event: &Event) -> Bytes;
    /// A gap met mid-stream: `missed` events left retention before they were read.
    fn gap(&self, missed: u64, cursor: Cursor) -> Bytes;
    /// A heartbeat, written when nothing else was written for the heartbeat period.
    fn heartbeat(&self) -> Bytes;
    /// Written instead of a [`heartbeat`](Self::heartbeat) while the hub's backend is not
    /// available ([`Hub::is_available`](push_core::Hub::is_available): a shared store not
    /// answering): it keeps the connection alive as a heartbeat does, and tells a client that
    /// reads it why nothing comes. The stream stays open and goes on from its position when
    /// the backend is back. The default is the heartbeat.
    fn away(&self) -> Bytes {
        self.heartbeat()
    }
    /// The goodbye written before the stream ends, for `reason`.
    fn end(&self, reason: End, cursor: Cursor) -> Bytes;

    /// The first bytes of a stream of several topics, with every topic's start outcome and
    /// cursor; `position` is the combined cursor. The default writes [`start`](Self::start)
    /// for the first topic only.
    fn multi_start(&self, topics: &[(Topic, Outcome, Cursor)], position: &dyn Display) -> Bytes {
        let _ = position;
        topics
            .first()
            .map(|(_, outcome, cursor)| self.start(*outcome, *cursor))
            .unwrap_or_default()
    }

    /// One event of one of several topics, with the combined cursor after it. The default is
    /// [`event`](Self::event).
    fn multi_event(&self, event: &Event, position: &dyn Display) -> Bytes {
        let _ = position;
        self.event(event)
    }

    /// A gap met mid-stream on one of several topics, or that topic completing (`missed`
    /// `None`). The default writes gaps with [`gap`](Self::gap) and nothing for a completion.
    fn multi_topic(
        &self,
        topic: &Topic,
        missed: Option<u64>,
        cursor: Cursor,
        position: &dyn Display,
    ) -> Bytes {
        let _ = (topic, position);
        missed
            .map(|missed| self.gap(missed, cursor))
            .unwrap_or_default()
    }

    /// The goodbye of a stream of several topics. The default writes nothing.
    fn multi_end(&self, reason: End, position: &dyn Display) -> Bytes {
        let _ = (reason, position);
        Bytes::new()
    }
}

/// Why the server ends a long-lived stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The hub closed (graceful shutdown): reconnect, to this server or another, and resume.
    Shutdown,
    /// The client's credentials expired ([`Grant::expires`](crate::Grant::expires)):
    /// reconnecting needs fresh ones.
    Expired,
    /// The topic is complete ([`Hub::complete`](push_core::Hub::complete)) and every event
    /// was sent: there is nothing more to reconnect for.
    Complete,
}

impl End {
    /// `"shutdown"`, `"expired"` or `"complete"`: the name JSON end lines carry.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            End::Shutdown => "shutdown",
            End::Expired => "expired",
            End::Complete => "complete",
        }
    }
}
