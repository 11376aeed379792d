//! The streaming endpoint: request in, one long NDJSON response out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use push_core::{Hub, StartFrom, Topic};
use push_http::json::Ndjson;
use push_http::{Authorizer, FramedBody, Limiter, Meters, Quota, StreamSettings};

/// Settings of a [`Streamer`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`heartbeat`](Self::heartbeat) | a `{"heartbeat":MS}` line after 15 s of silence |
/// | [`accel_buffering_header`](Self::accel_buffering_header) | `X-Accel-Buffering: no` sent |
/// | [`max_streams`](Self::max_streams) | 10,000 open streams, then `503` |
/// | [`quota`](Self::quota) | 1,000 streams and 1,000 topics per client, then `429` ([`Quota`]) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
/// | [`resume_param`](Self::resume_param) | `since` |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamConfig {
    /// The silence after which a heartbeat line is sent; `None` turns it off.
    pub heartbeat: Option<Duration>,
    /// Whether to send `X-Accel-Buffering: no`, which stops nginx from buffering the stream.
    pub accel_buffering_header: bool,
    /// The most streams open at once on this endpoint.
    pub max_streams: usize,
    /// What one client may hold of it: over its quota a client gets `429` with `Retry-After`
    /// while the others are served. Clients are told apart by [`Client::of`](push_http::Client::of).
    pub quota: Quota,
    /// The `Retry-After` sent with `503`.
    pub retry_after: Duration,
    /// The query parameter holding the cursor to resume after.
    pub resume_param: &'static str,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            heartbeat: Some(Duration::from_secs(15)),
            accel_buffering_header: true,
            max_streams: 10_000,
            quota: Quota::default(),
            retry_after: Duration::from_secs(5),
            resume_param: "since",
        }
    }
}

impl StreamConfig {
    /// Sets [`heartbeat`](Self::heartbeat).
    #[must_use]
    pub fn heartbeat(mut self, period: Option<Duration>) -> Self {
        self.heartbeat = period;
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

/// An NDJSON streaming endpoint over a [`Hub`]: cheap to clone, one per server (its stream
/// limit is shared by its clones).
#[derive(Debug, Clone)]
pub struct Streamer {
    hub: Hub,
    config: Arc<StreamConfig>,
    settings: Arc<StreamSettings>,
    limiter: Limiter,
    authorizer: Option<Authorizer>,
    meters: Meters,
}

impl Streamer {
    /// An endpoint with the default [`StreamConfig`].
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self::with_config(hub, StreamConfig::default())
    }

    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: StreamConfig) -> Self {
        let meters = Meters::new("stream");
        let limiter = Limiter::with_meters(config.max_streams, meters.clone()).quota(config.quota);
        let mut settings = StreamSettings::new("application/x-ndjson");
        settings.meters = meters.clone();
        settings.heartbeat = config.heartbeat;
        settings.accel_buffering_header = config.accel_buffering_header;
        settings.retry_after = config.retry_after;
        Self {
            hub,
            config: Arc::new(config),
            settings: Arc::new(settings),
            limiter,
            authorizer: None,
            meters,
        }
    }

    /// Counts an answer in the endpoint's meters.
    fn answered<B: http_body::Body>(&self, res: Response<B>) -> Response<B> {
        self.meters.answer(&res);
        res
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

    /// Where a request asks to start: after the [`resume_param`](StreamConfig::resume_param)
    /// cursor, else only new events. A cursor that does not parse is a reset, never an error.
    #[must_use]
    pub fn start_from(&self, parts: &http::request::Parts) -> StartFrom {
        push_http::start_from(parts, None, self.config.resume_param, StartFrom::Newest)
    }

    /// Answers `req` with the NDJSON stream of `topic`.
    ///
    /// `GET` and `HEAD` get `200` with `application/x-ndjson`; another method gets `405`. At the
    /// stream limit, or when the hub is closed or unavailable, the answer is `503` with
    /// `Retry-After`; a client over its [`quota`](StreamConfig::quota) gets `429` with
    /// `Retry-After`. The first line is the resume outcome, then one line per event as it is
    /// published (each its own chunk or DATA frame, flushed at once), heartbeats when idle, and
    /// an `{"end":"shutdown",…}` line when the hub is closed, or `{"end":"expired",…}` when the
    /// authorizer's grant expires.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type.
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<StreamBody>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let from = self.start_from(&parts);
        let (this, topic) = (self.clone(), topic.clone());
        async move {
            let auth = this.authorizer.as_ref();
            let grant = match push_http::check_read(auth, &parts, &topic).await {
                Ok(grant) => grant,
                Err(refusal) => return this.answered(refusal),
            };
            let (settings, method) = (&this.settings, &parts.method);
            let (limiter, retry_after) = (&this.limiter, settings.retry_after);
            let permit = match push_http::admit_stream(limiter, &parts, &grant, 1, retry_after) {
                Ok(permit) => permit,
                Err(res) => return this.answered(res),
            };
            let mut res =
                push_http::open_stream(&this.hub, permit, method, &topic, from, Ndjson, settings)
                    .await;
            res.body_mut().expire_at(grant.deadline());
            this.answered(res)
        }
    }
}

/// The response body of [`Streamer::respond`]: the NDJSON stream, or a short text for an error.
pub type StreamBody = FramedBody<Ndjson>;

/// The response body of [`Streamer::respond_topics`].
pub type StreamMultiBody = push_http::MultiBody<Ndjson>;

impl Streamer {
    /// Answers `req` with one NDJSON stream of several `topics` (at most
    /// [`MAX_TOPICS`](push_http::multi::MAX_TOPICS)).
    ///
    /// The stream starts with one outcome line per topic (`{"topic":T,"outcome":…,"cursor":C}`),
    /// then carries every event as its object with its topic (`{"topic":T,"id":C,…}`), per-topic
    /// gaps, `{"topic":T,"complete":true,"cursor":C}` when a topic completes, and ends with
    /// `{"end":R,"cursor":POSITION}`. To resume, ask with `?since=` the
    /// [combined cursor](push_http::multi): each topic's last `id` (or outcome cursor), in the
    /// request's order, joined by `,`. The grant must cover every topic.
    pub fn respond_topics<B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
    ) -> impl Future<Output = Response<StreamMultiBody>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let since = push_http::cursor_text(&parts, None, self.config.resume_param);
        let from =
            push_http::multi::start_points(since.as_deref(), topics.len(), StartFrom::Newest);
        let (this, topics) = (self.clone(), topics.to_vec());
        async move {
            let auth = this.authorizer.as_ref();
            let (hub, limiter, settings) = (&this.hub, &this.limiter, &this.settings);
            let res = push_http::multi::answer_streams(
                hub, limiter, auth, &parts, &topics, &from, Ndjson, settings,
            )
            .await;
            this.answered(res)
        }
    }
}
