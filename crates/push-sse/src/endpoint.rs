//! The SSE endpoint: request in, `text/event-stream` response out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use push_core::{Cursor, Event, Hub, Outcome, StartFrom, Topic};
use push_http::{
    Authorizer, End, FramedBody, Framing, Limiter, Meters, MultiBody, Quota, StreamSettings,
};

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
/// | [`quota`](Self::quota) | 1,000 streams and 1,000 topics per client, then `429` ([`Quota`]) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
/// | [`resume_param`](Self::resume_param) | `lastEventId` |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SseConfig {
    /// The silence after which a `:` comment line is sent, so proxies and clients see the
    /// connection alive; `None` turns it off.
    pub keep_alive: Option<Duration>,
    /// The reconnection delay hinted to the browser with `retry:` at the start and in the
    /// goodbye on shutdown; `None` sends none (browsers then wait about 3 s) and ends a
    /// shutdown with no hint.
    pub retry: Option<Duration>,
    /// Whether to send `X-Accel-Buffering: no`, which stops nginx from buffering the stream.
    pub accel_buffering_header: bool,
    /// The most streams open at once on this endpoint.
    pub max_streams: usize,
    /// What one client may hold of it: over its quota a client gets `429` with `Retry-After`
    /// while the others are served. Clients are told apart by [`Client::of`](push_http::Client::of).
    pub quota: Quota,
    /// The `Retry-After` sent with `503`.
    pub retry_after: Duration,
    /// The query parameter read for the cursor when there is no `Last-Event-ID` header: a
    /// browser's `EventSource` cannot set headers on its first connection, so a page passes
    /// a cursor it kept as `/sse/topic?lastEventId=…`.
    pub resume_param: &'static str,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(15)),
            retry: Some(Duration::from_secs(3)),
            accel_buffering_header: true,
            max_streams: 10_000,
            quota: Quota::default(),
            retry_after: Duration::from_secs(5),
            resume_param: "lastEventId",
        }
    }
}

impl SseConfig {
    /// Sets [`keep_alive`](Self::keep_alive).
    #[must_use]
    pub fn keep_alive(mut self, period: Option<Duration>) -> Self {
        self.keep_alive = period;
        self
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub fn retry(mut self, retry: Option<Duration>) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`accel_buffering_header`](Self::accel_buffering_header).
    #[must_use]
    pub fn accel_buffering_header(mut self, on: bool) -> Self {
        self.accel_buffering_header = on;
        self
    }

    /// Sets [`max_streams`](Self::max_streams).
    #[must_use]
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    /// Sets [`quota`](Self::quota).
    #[must_use]
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// Sets [`retry_after`](Self::retry_after).
    #[must_use]
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }

    /// Sets [`resume_param`](Self::resume_param).
    #[must_use]
    pub fn resume_param(mut self, name: &'static str) -> Self {
        self.resume_param = name;
        self
    }
}

/// An SSE endpoint over a [`Hub`]: cheap to clone, one per server (its stream limit is shared
/// by its clones).
#[derive(Debug, Clone)]
pub struct Sse {
    hub: Hub,
    config: Arc<SseConfig>,
    settings: Arc<StreamSettings>,
    limiter: Limiter,
    authorizer: Option<Authorizer>,
    meters: Meters,
}

impl Sse {
    /// An endpoint with the default [`SseConfig`].
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self::with_config(hub, SseConfig::default())
    }

    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: SseConfig) -> Self {
        let meters = Meters::new("sse");
        let limiter = Limiter::with_meters(config.max_streams, meters.clone()).quota(config.quota);
        let mut settings = StreamSettings::new("text/event-stream; charset=utf-8");
        settings.meters = meters.clone();
        settings.cache_control = "no-cache";
        settings.heartbeat = config.keep_alive;
        settings.accel_buffering_header = config.accel_buffering_header;
        settings.retry_after = config.retry_after;
        settings.no_content_when_finished = true;
        Self {
            hub,
            config: Arc::new(config),
            settings: Arc::new(settings),
            limiter,
            authorizer: None,
            meters,
        }
    }

    /// Runs `authorizer` before every stream: a client it refuses, or one whose grant does not
    /// cover the topic, gets `401` or `403` and no subscription.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Streams open right now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.limiter.open()
    }

    /// Where a request asks to start: the `Last-Event-ID` header, else the
    /// [`resume_param`](SseConfig::resume_param) query parameter, else only new events. A
    /// cursor that does not parse gives [`StartFrom::Invalid`] (a reset), never an error.
    #[must_use]
    pub fn start_from(&self, parts: &http::request::Parts) -> StartFrom {
        // An empty Last-Event-ID is what a browser sends before it saw any id.
        push_http::start_from(
            parts,
            Some(LAST_EVENT_ID),
            self.config.resume_param,
            StartFrom::Newest,
        )
    }

    /// Answers `req` with the event stream of `topic`.
    ///
    /// `GET` and `HEAD` get `200` with `text/event-stream`; another method gets `405`. At the
    /// stream limit, or when the hub is closed or unavailable, the answer is `503` with
    /// `Retry-After` and a one-line reason; a client over its [`quota`](SseConfig::quota) gets `429`
    /// with `Retry-After`. The stream starts with the `retry:` hint and the
    /// resume outcome ([`GAP_EVENT`](crate::GAP_EVENT) or [`RESET_EVENT`](crate::RESET_EVENT);
    /// a plain resume sends `id:` with the stream's cursor and a `:ok` comment, which sets the
    /// browser's `Last-Event-ID` without an event), then carries every event as it is published, and
    /// ends with a `retry:` hint when the hub is closed, with a
    /// [`COMPLETE_EVENT`](crate::COMPLETE_EVENT) when the topic is complete, or with an
    /// [`EXPIRED_EVENT`](crate::EXPIRED_EVENT) when the authorizer's grant expires. A request on
    /// a complete topic with nothing left to send gets `204 No Content`, which stops a browser's
    /// `EventSource` from reconnecting.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type (axum's, hyper's `Incoming`, …).
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<SseBody>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let from = self.start_from(&parts);
        let (this, topic) = (self.clone(), topic.clone());
        async move {
            let auth = this.authorizer.as_ref();
            let grant = match push_http::check_read(auth, &parts, &topic).await {
                Ok(grant) => grant,
                Err(refusal) => return this.answered(refusal),
            };
            let framing = SseFraming {
                retry: this.config.retry,
            };
            let (settings, method) = (&this.settings, &parts.method);
            let (limiter, retry_after) = (&this.limiter, settings.retry_after);
            let permit = match push_http::admit_stream(limiter, &parts, &grant, 1, retry_after) {
                Ok(permit) => permit,
                Err(res) => return this.answered(res),
            };
            let mut res =
                push_http::open_stream(&this.hub, permit, method, &topic, from, framing, settings)
                    .await;
            res.body_mut().expire_at(grant.deadline());
            this.answered(res)
        }
    }

    /// Counts an answer in the endpoint's meters.
    fn answered<B: http_body::Body>(&self, res: Response<B>) -> Response<B> {
        self.meters.answer(&res);
        res
    }
}

impl Sse {
    /// Answers `req` with one event stream of several `topics` (at most
    /// [`MAX_TOPICS`](push_http::multi::MAX_TOPICS); the caller reads them from the query with
    /// [`query_topics`](push_http::multi::query_topics), say).
    ///
    /// Every event's `id:` is the [combined cursor](push_http::multi) of all the topics, so a
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
    ) -> impl Future<Output = Response<SseMultiBody>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let position =
            push_http::cursor_text(&parts, Some(LAST_EVENT_ID), self.config.resume_param);
        let from =
            push_http::multi::start_points(position.as_deref(), topics.len(), StartFrom::Newest);
        let (this, topics) = (self.clone(), topics.to_vec());
        async move {
            let framing = SseFraming {
                retry: this.config.retry,
            };
            let auth = this.authorizer.as_ref();
            let (hub, limiter, settings) = (&this.hub, &this.limiter, &this.settings);
            let res = push_http::multi::answer_streams(
                hub, limiter, auth, &parts, &topics, &from, framing, settings,
            )
            .await;
            this.answered(res)
        }
    }
}

/// The SSE wire format as a [`Framing`]: the `retry:` hint and the resume outcome first, one
/// `id:`/`event:`/`data:` block per event (encoded once per event), a comment as heartbeat,
/// and a `retry:` hint as the goodbye.
#[derive(Debug)]
pub struct SseFraming {
    retry: Option<Duration>,
}

impl Framing for SseFraming {
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
        position: &push_http::multi::Position<'_>,
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

    fn multi_event(&self, event: &Event, position: &push_http::multi::Position<'_>) -> Bytes {
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
        position: &push_http::multi::Position<'_>,
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

    fn multi_end(&self, reason: End, _position: &push_http::multi::Position<'_>) -> Bytes {
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

/// The response body of [`Sse::respond`]: the event stream, or a short text for an error.
pub type SseBody = FramedBody<SseFraming>;

/// The response body of [`Sse::respond_topics`].
pub type SseMultiBody = MultiBody<SseFraming>;
