//! The SSE endpoint: request in, `text/event-stream` response out.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use push_core::{Cursor, Event, Hub, Outcome, Topic};
use push_http::{End, Endpoint, Framing, Settings, StreamBody};

use crate::encode::{
    encode_event, outcome_event, topic_outcome_event, COMPLETE_EVENT, EXPIRED_EVENT,
};

/// The request header a reconnecting `EventSource` sends.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Settings of an [`Sse`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`keep_alive`](Self::keep_alive) | a comment after 15 s of silence |
/// | [`retry`](Self::retry) | `retry: 3000` at the start |
/// | [`accel_buffering_header`](Self::accel_buffering_header) | `X-Accel-Buffering: no` sent |
/// | [`max_streams`](Self::max_streams) | 10,000 open streams, then `503` |
/// | [`quota`](Self::quota) | 1,000 streams and 1,000 topics per client, then `429` ([`Quota`](push_http::Quota)) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
/// | [`resume_param`](Self::resume_param) | `lastEventId`: a browser's `EventSource` cannot set headers on its first connection, so a page passes a cursor it kept as `/sse/topic?lastEventId=…` (read when there is no `Last-Event-ID` header) |
#[derive(Debug, Clone)]
pub struct SseConfig {
    retry: Option<Duration>,
    shared: Settings,
}

impl Default for SseConfig {
    fn default() -> Self {
        let mut shared = Settings::default();
        shared.resume_param = "lastEventId";
        Self {
            retry: Some(Duration::from_secs(3)),
            shared,
        }
    }
}

push_http::shared_settings!(SseConfig {
    heartbeat as keep_alive,
    accel_buffering_header,
    max_streams,
    quota,
    retry_after,
    resume_param,
});

impl SseConfig {
    /// Sets the reconnection delay hinted to the browser with `retry:` at the start and in the
    /// goodbye on shutdown; `None` sends none (browsers then wait about 3 s) and ends a
    /// shutdown with no hint.
    #[must_use]
    pub fn retry(mut self, retry: Option<Duration>) -> Self {
        self.retry = retry;
        self
    }
}

/// An SSE endpoint over a [`Hub`]: cheap to clone, one per server (its stream limit is shared
/// by its clones).
#[derive(Debug, Clone)]
pub struct Sse {
    core: Endpoint,
    framing: SseFraming,
}

push_http::endpoint_methods!(Sse: SseConfig { new, authorize, open });

impl Sse {
    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: SseConfig) -> Self {
        Self {
            core: Endpoint::new(hub, "sse", config.shared),
            framing: SseFraming {
                retry: config.retry,
            },
        }
    }

    /// Answers `req` with the event stream of `topic`.
    ///
    /// `GET` and `HEAD` get `200` with `text/event-stream`; another method gets `405`. At the
    /// stream limit, or when the hub is closed or unavailable, the answer is `503` with
    /// `Retry-After` and a one-line reason; a client over its [`quota`](SseConfig::quota) gets `429`
    /// with `Retry-After`. The stream starts where the request asks: the `Last-Event-ID`
    /// header, else the [`resume_param`](SseConfig::resume_param) query parameter, else only
    /// new events (a cursor that does not parse is a reset, never an error). It opens with the
    /// `retry:` hint and the resume outcome ([`GAP_EVENT`](crate::GAP_EVENT) or
    /// [`RESET_EVENT`](crate::RESET_EVENT); a plain resume sends `id:` with the stream's cursor
    /// and a `:ok` comment, which sets the browser's `Last-Event-ID` without an event), then
    /// carries every event as it is published, and ends with a `retry:` hint when the hub is
    /// closed, with a [`COMPLETE_EVENT`](crate::COMPLETE_EVENT) when the topic is complete, or
    /// with an [`EXPIRED_EVENT`](crate::EXPIRED_EVENT) when the authorizer's grant expires. A
    /// request on a complete topic with nothing left to send gets `204 No Content`, which stops
    /// a browser's `EventSource` from reconnecting.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type (axum's, hyper's `Incoming`, …).
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<SseBody>> + Send + 'static {
        let framing = self.framing.clone();
        self.core.stream(topic, req, Some(LAST_EVENT_ID), framing)
    }

    /// Answers `req` with one event stream of several `topics` (at most
    /// [`MAX_TOPICS`](push_http::topics::MAX_TOPICS); the caller reads them from the query with
    /// [`query_topics`](push_http::topics::query_topics), say).
    ///
    /// Every event's `id:` is the [combined cursor](push_http::topics) of all the topics, so a
    /// browser's `Last-Event-ID` resumes each exactly. An event's data is its JSON object with
    /// its topic (`{"topic":T,"id":C,…,"data":…}`: push-http's `topic_event`), and its `event:`
    /// its type. Each topic's start outcome and mid-stream gaps are `push-gap`/`push-reset`
    /// events whose data names the topic; a topic that completes sends `push-complete` with
    /// `{"topic":T}`; when every topic is complete, the reconnect gets `204`. The grant must
    /// cover every topic.
    pub fn respond_topics<B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
    ) -> impl Future<Output = Response<SseBody>> + Send + 'static {
        let framing = self.framing.clone();
        self.core
            .stream_topics(topics, req, Some(LAST_EVENT_ID), framing)
    }
}

/// The SSE wire format as a [`Framing`]: the `retry:` hint and the resume outcome first, one
/// `id:`/`event:`/`data:` block per event (encoded once per event), a comment as heartbeat,
/// and a `retry:` hint as the goodbye.
#[derive(Debug, Clone)]
pub struct SseFraming {
    retry: Option<Duration>,
}

impl Framing for SseFraming {
    const CONTENT_TYPE: &'static str = "text/event-stream; charset=utf-8";
    const CACHE_CONTROL: &'static str = "no-cache";
    const NO_CONTENT_WHEN_FINISHED: bool = true;

    fn start(&self, outcome: Outcome, cursor: Cursor) -> Bytes {
        let retry = self
            .retry
            .map(|r| format!("retry: {}\n\n", r.as_millis()))
            .unwrap_or_default();
        // A plain resume still names where the stream stands: an `id:` without data sets the
        // browser's last event ID (WHATWG: it is taken before an empty event is dropped), so an
        // EventSource cut before its first event resumes from here instead of from the newest.
        let outcome = outcome_event(outcome, cursor)
            .unwrap_or_else(|| Bytes::from(format!("id: {cursor}\n:ok\n\n")));
        [retry.as_bytes(), &outcome].concat().into()
    }

    fn event(&self, event: &Event) -> Bytes {
        encode_event(event)
    }

    fn gap(&self, missed: u64, cursor: Cursor) -> Bytes {
        outcome_event(Outcome::Gap { missed }, cursor).unwrap_or_default()
    }

    fn heartbeat(&self) -> Bytes {
        Bytes::from_static(b":\n\n")
    }

    fn away(&self) -> Bytes {
        Bytes::from_static(crate::encode::AWAY_COMMENT)
    }

    fn multi_start(
        &self,
        topics: &[(Topic, Outcome, Cursor)],
        position: &dyn std::fmt::Display,
    ) -> Bytes {
        let mut out = self
            .retry
            .map(|r| format!("retry: {}\n\n", r.as_millis()))
            .unwrap_or_default()
            .into_bytes();
        let before = out.len();
        for (topic, outcome, _) in topics {
            if let Some(event) = topic_outcome_event(topic.as_str(), *outcome, position) {
                out.extend_from_slice(&event);
            }
        }
        if out.len() == before {
            out.extend_from_slice(format!("id: {position}\n:ok\n\n").as_bytes());
        }
        out.into()
    }

    fn multi_event(&self, event: &Event, position: &dyn std::fmt::Display) -> Bytes {
        // The event's JSON object with its topic (one line: JSON escapes line breaks), shared
        // by every stream; the `id:` is this stream's combined cursor.
        let object = push_http::json::topic_event(event);
        let kind = event
            .event_type()
            .map(|t| format!("event: {}\n", t.as_str()))
            .unwrap_or_default();
        let head = format!("id: {position}\n{kind}data: ");
        [head.as_bytes(), &object, b"\n\n"].concat().into()
    }

    fn multi_topic(
        &self,
        topic: &Topic,
        missed: Option<u64>,
        _: Cursor,
        position: &dyn std::fmt::Display,
    ) -> Bytes {
        match missed {
            Some(missed) => topic_outcome_event(topic.as_str(), Outcome::Gap { missed }, position)
                .unwrap_or_default(),
            None => format!(
                "id: {position}\nevent: {COMPLETE_EVENT}\ndata: {{\"topic\":\"{}\"}}\n\n",
                topic.as_str()
            )
            .into(),
        }
    }

    fn multi_end(&self, reason: End, _position: &dyn std::fmt::Display) -> Bytes {
        match reason {
            // Every topic said it completed; the reconnect gets 204.
            End::Complete => Bytes::new(),
            End::Expired => {
                format!("event: {EXPIRED_EVENT}\ndata: {{\"end\":\"expired\"}}\n\n").into()
            }
            _ => self
                .retry
                .map(|r| format!("retry: {}\n\n", r.as_millis()).into())
                .unwrap_or_default(),
        }
    }

    fn end(&self, reason: End, cursor: Cursor) -> Bytes {
        match reason {
            End::Expired => {
                format!("event: {EXPIRED_EVENT}\ndata: {{\"end\":\"expired\"}}\n\n").into()
            }
            End::Complete => {
                format!("id: {cursor}\nevent: {COMPLETE_EVENT}\ndata: {{}}\n\n").into()
            }
            _ => self
                .retry
                .map(|r| format!("retry: {}\n\n", r.as_millis()).into())
                .unwrap_or_default(),
        }
    }
}

/// The response body of [`Sse::respond`] and [`Sse::respond_topics`]: the event stream, or a
/// short text for an error (`SseBody::from(bytes)`, for a `404` from the same service, say).
pub type SseBody = StreamBody<SseFraming>;
