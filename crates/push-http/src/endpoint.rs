//! The endpoint core: what every technique endpoint holds (hub, limits, access hook, meters and
//! the settings they all share) and the two ways a technique answers: a long-lived framed
//! stream, and a batch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use push_core::{Hub, Outcome, StartFrom, Subscription, Topic};

use crate::access::{check_read_all, Authorizer, Cors, CorsRules, Grant, Limiter, Permit, Quota};
use crate::answer::{method_not_allowed, unavailable};
use crate::logs;
use crate::meters::Meters;
use crate::query::cursor_text;
use crate::stream::{Frames, Framing, MultiFrames, StreamBody};

/// The settings every technique endpoint shares. A technique's config sets them through its
/// own methods ([`max_streams`](#max_streams), …, written once by this crate's
/// `shared_settings!`), so each is set one way.
///
/// | setting | default |
/// |---|---|
/// | `max_streams` | 10,000 open at once (streams, held requests, sockets), then `503` |
/// | `quota` | 1,000 streams and 1,000 topics per client, then `429` ([`Quota`]) |
/// | `retry_after` | `Retry-After: 5` on `503` and `429` |
/// | `resume_param` | `since` |
/// | `heartbeat` | after 15 s of silence (streams) |
/// | `accel_buffering_header` | `X-Accel-Buffering: no` sent (streams) |
/// | `cors` | off: same-origin only (request/response techniques) |
/// | `start` | a request without a cursor starts at the newest point |
/// | `max_batch` / `max_batch_bytes` | 100 events / 1 MiB of event objects per batch answer |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The most streams, held requests or sockets open at once on the endpoint.
    pub max_streams: usize,
    /// What one client may hold of the endpoint.
    pub quota: Quota,
    /// The `Retry-After` sent with `503` and `429`.
    pub retry_after: Duration,
    /// The query parameter holding the cursor to resume after.
    pub resume_param: &'static str,
    /// The silence after which a stream writes [`Framing::heartbeat`]; `None` sends none.
    pub heartbeat: Option<Duration>,
    /// Whether a stream sends `X-Accel-Buffering: no`, which stops nginx from buffering it.
    pub accel_buffering_header: bool,
    /// Cross-origin access for pages on other origins; `None` answers no CORS headers.
    pub cors: Option<Cors>,
    /// Where a request without a cursor starts.
    pub start: StartFrom,
    /// The most events in one batch answer.
    pub max_batch: usize,
    /// The most bytes of event objects in one batch answer.
    pub max_batch_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_streams: 10_000,
            quota: Quota::default(),
            retry_after: Duration::from_secs(5),
            resume_param: "since",
            heartbeat: Some(Duration::from_secs(15)),
            accel_buffering_header: true,
            cors: None,
            start: StartFrom::Newest,
            max_batch: 100,
            max_batch_bytes: 1 << 20,
        }
    }
}

/// Writes, on a technique's config type (a struct with a field `shared: push_http::Settings`),
/// the setters of the shared [`Settings`] it uses, each documented once here:
///
/// ```
/// # use push_http::Settings;
/// #[derive(Default)]
/// pub struct MyConfig {
///     shared: Settings,
/// }
/// push_http::shared_settings!(MyConfig { max_streams, quota, retry_after, resume_param });
/// let config = MyConfig::default().max_streams(100);
/// # assert_eq!(config.shared.max_streams, 100);
/// ```
///
/// A setting may be named otherwise on a technique (`max_streams as max_connections`).
#[macro_export]
macro_rules! shared_settings {
    ($config:ty { $($field:ident $(as $name:ident)?),* $(,)? }) => {
        impl $config {
            $( $crate::shared_settings!(@one $field $(as $name)?); )*
        }
    };
    (@one $field:ident) => {
        $crate::shared_settings!(@one $field as $field);
    };
    (@one max_streams as $name:ident) => {
        /// Sets the most streams, held requests or sockets open at once on this endpoint
        /// (10,000 by default); past it, `503` with `Retry-After`.
        #[must_use]
        pub fn $name(mut self, n: usize) -> Self {
            self.shared.max_streams = n;
            self
        }
    };
    (@one quota as $name:ident) => {
        /// Sets what one client may hold of this endpoint (by default 1,000 streams and 1,000
        /// subscribed topics): over it, the client gets `429` with `Retry-After` while the others
        /// are served. Clients are told apart by the subject an authorizer vouched for, else by
        /// address (see [`Quota`]($crate::Quota)).
        #[must_use]
        pub fn $name(mut self, quota: $crate::Quota) -> Self {
            self.shared.quota = quota;
            self
        }
    };
    (@one retry_after as $name:ident) => {
        /// Sets the `Retry-After` sent with `503` and `429` (5 s by default).
        #[must_use]
        pub fn $name(mut self, d: ::std::time::Duration) -> Self {
            self.shared.retry_after = d;
            self
        }
    };
    (@one resume_param as $name:ident) => {
        /// Sets the query parameter read for the cursor to resume after.
        #[must_use]
        pub fn $name(mut self, name: &'static str) -> Self {
            self.shared.resume_param = name;
            self
        }
    };
    (@one heartbeat as $name:ident) => {
        /// Sets the silence after which a heartbeat is written (15 s by default); `None` turns
        /// heartbeats off.
        #[must_use]
        pub fn $name(mut self, period: Option<::std::time::Duration>) -> Self {
            self.shared.heartbeat = period;
            self
        }
    };
    (@one accel_buffering_header as $name:ident) => {
        /// Sets whether to send `X-Accel-Buffering: no` (on by default), which stops nginx
        /// from buffering the stream.
        #[must_use]
        pub fn $name(mut self, on: bool) -> Self {
            self.shared.accel_buffering_header = on;
            self
        }
    };
    (@one start as $name:ident) => {
        /// Sets where a request without a cursor starts: `StartFrom::Newest` (the default: only
        /// what comes next) or `StartFrom::Oldest` (everything retained, at once).
        #[must_use]
        pub fn $name(mut self, from: ::push_core::StartFrom) -> Self {
            self.shared.start = from;
            self
        }
    };
    (@one max_batch as $name:ident) => {
        /// Sets the most events in one answer (at least 1; 100 by default); `more: true` tells
        /// the client to ask again at once.
        #[must_use]
        pub fn $name(mut self, n: usize) -> Self {
            self.shared.max_batch = n.max(1);
            self
        }
    };
    (@one max_batch_bytes as $name:ident) => {
        /// Sets the most bytes of event objects in one answer (1 MiB by default), so a small
        /// request cannot pin a large answer; `more: true` when it cuts. An event larger than
        /// this is still answered, alone.
        #[must_use]
        pub fn $name(mut self, n: usize) -> Self {
            self.shared.max_batch_bytes = n;
            self
        }
    };
    (@one cors as $name:ident) => {
        /// Sets cross-origin access for pages on other origins (off by default: no CORS
        /// headers, same-origin only).
        #[must_use]
        pub fn $name(mut self, cors: Option<$crate::Cors>) -> Self {
            self.shared.cors = cors;
            self
        }
    };
}

/// Writes, on a technique's endpoint type (a struct with a field `core: push_http::Endpoint`
/// whose config type is given), the methods every endpoint has, each documented once here:
/// `new` (the default config), `authorize` and `open`.
///
/// ```
/// # use push_http::{Endpoint, Settings};
/// # #[derive(Default)] pub struct MyConfig { shared: Settings }
/// pub struct Mine {
///     core: Endpoint,
/// }
/// impl Mine {
///     pub fn with_config(hub: push_core::Hub, config: MyConfig) -> Self {
///         Self { core: Endpoint::new(hub, "mine", config.shared) }
///     }
/// }
/// push_http::endpoint_methods!(Mine: MyConfig { new, authorize, open });
/// assert_eq!(Mine::new(push_core::Hub::memory()).open(), 0);
/// ```
#[macro_export]
macro_rules! endpoint_methods {
    ($endpoint:ty : $config:ty { $($method:ident),* $(,)? }) => {
        impl $endpoint {
            $( $crate::endpoint_methods!(@one $method $config); )*
        }
    };
    (@one new $config:ty) => {
        /// An endpoint over `hub` with the default config.
        #[must_use]
        pub fn new(hub: ::push_core::Hub) -> Self {
            Self::with_config(hub, <$config>::default())
        }
    };
    (@one authorize $config:ty) => {
        /// Runs `authorizer` before every answer: a client it refuses, or one whose grant does
        /// not cover every topic asked for, gets `401` or `403` and no subscription.
        #[must_use]
        pub fn authorize(mut self, authorizer: $crate::Authorizer) -> Self {
            self.core = self.core.authorize(authorizer);
            self
        }
    };
    (@one open $config:ty) => {
        /// Streams, held requests or connections open right now (the endpoint's clones share
        /// the count). One whose client goes away leaves it at once: the server drops its
        /// future or body, which frees its place and its subscriptions.
        #[must_use]
        pub fn open(&self) -> usize {
            self.core.open()
        }
    };
}

/// What a technique endpoint holds, and its answers: cheap to clone (one pointer), one per
/// endpoint (its limits are shared by its clones).
///
/// A technique crate is its wire format (a [`Framing`], or a batch form), its own settings,
/// and a `respond` that calls [`stream`](Self::stream), [`stream_topics`](Self::stream_topics)
/// or [`batch_topics`](Self::batch_topics); the access check, the limits, the start point,
/// the headers, the meters and the end of a stream at the credentials' end are done here, the
/// same way for all.
///
/// ```
/// use bytes::Bytes;
/// use push_core::{Cursor, Event, Hub, Outcome, Topic};
/// use push_http::{End, Endpoint, Framing, Settings};
///
/// /// A stream of one line per event.
/// struct Lines;
///
/// impl Framing for Lines {
///     const CONTENT_TYPE: &'static str = "text/plain; charset=utf-8";
///     fn start(&self, _: Outcome, cursor: Cursor) -> Bytes {
///         format!("start {cursor}\n").into()
///     }
///     fn event(&self, event: &Event) -> Bytes {
///         [event.data().as_ref(), b"\n"].concat().into()
///     }
///     fn gap(&self, missed: u64, _: Cursor) -> Bytes {
///         format!("missed {missed}\n").into()
///     }
///     fn heartbeat(&self) -> Bytes {
///         Bytes::from_static(b"\n")
///     }
///     fn end(&self, _: End, _: Cursor) -> Bytes {
///         Bytes::from_static(b"bye\n")
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let lines = Endpoint::new(Hub::memory(), "lines", Settings::default());
/// let topic = Topic::new("news").unwrap();
/// let req = http::Request::get("/lines/news").body(()).unwrap();
/// let res = lines.stream(&topic, req, None, Lines).await;
/// assert_eq!(res.status(), 200);
/// assert_eq!(lines.open(), 1);
/// drop(res);
/// assert_eq!(lines.open(), 0);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    hub: Hub,
    settings: Settings,
    limiter: Limiter,
    authorizer: Option<Authorizer>,
    meters: Meters,
    cors_rules: CorsRules,
}

impl Endpoint {
    /// The endpoint of `technique` (its name in metrics: `sse`, `ws`, …) over `hub`.
    #[must_use]
    pub fn new(hub: Hub, technique: &'static str, settings: Settings) -> Self {
        let meters = Meters::new(technique);
        let limiter = Limiter::new(settings.max_streams, settings.quota, meters.clone());
        Self {
            inner: Arc::new(Inner {
                hub,
                settings,
                limiter,
                authorizer: None,
                meters,
                cors_rules: CorsRules::default(),
            }),
        }
    }

    /// Runs `authorizer` before every answer: a client it refuses, or one whose grant does not
    /// cover every topic asked for, gets `401` or `403` and no subscription.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        Arc::make_mut(&mut self.inner).authorizer = Some(authorizer);
        self
    }

    /// What the endpoint declares in its CORS answers (when [`Settings::cors`] is set): the
    /// methods it answers and the request headers a page may send (for preflights), and the
    /// response headers a page may read.
    #[must_use]
    pub fn cors_rules(
        mut self,
        methods: &'static str,
        allow_headers: &'static str,
        expose: &'static str,
    ) -> Self {
        Arc::make_mut(&mut self.inner).cors_rules = CorsRules {
            methods,
            allow_headers,
            expose,
        };
        self
    }

    /// The hub.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The shared settings.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Streams, held requests or sockets open right now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.inner.limiter.open()
    }

    /// Where a request asks to start: the `header`'s value when present and not empty, else
    /// the [`resume_param`](Settings::resume_param) query parameter, else
    /// [`start`](Settings::start). A cursor that does not parse gives [`StartFrom::Invalid`]
    /// (a reset), never an error.
    #[must_use]
    pub fn start_from(&self, parts: &Parts, header: Option<&str>) -> StartFrom {
        let settings = &self.inner.settings;
        let text = cursor_text(parts, header, settings.resume_param);
        StartFrom::from_client(text.as_deref(), settings.start)
    }

    /// Where each of `n` topics starts, from the [combined cursor](crate::topics) read as
    /// [`start_from`](Self::start_from) reads one.
    #[must_use]
    pub fn start_points(&self, parts: &Parts, header: Option<&str>, n: usize) -> Vec<StartFrom> {
        let settings = &self.inner.settings;
        let text = cursor_text(parts, header, settings.resume_param);
        crate::topics::start_points(text.as_deref(), n, settings.start)
    }

    /// The access check of a request reading `topics`: the grant, or the refusal's `401` or
    /// `403`. Without an authorizer, and for `OPTIONS` (a CORS preflight carries no
    /// credentials), the grant is [`Grant::default`].
    ///
    /// # Errors
    ///
    /// The refusal's answer.
    pub async fn check<B: From<Bytes>>(
        &self,
        parts: &Parts,
        topics: &[Topic],
    ) -> Result<Grant, Response<B>> {
        let checked = check_read_all(self.inner.authorizer.as_ref(), parts, topics).await;
        if let Err(res) = &checked {
            let reason = if res.status() == StatusCode::FORBIDDEN {
                "forbidden"
            } else {
                "unauthorized"
            };
            logs::refused(self.technique(), topics, reason, res.status(), None);
        }
        checked
    }

    /// A place under the endpoint's limit and the client's [`Quota`] for a request whose access
    /// check gave `grant`, reading `topics` topics; held until the permit is dropped.
    ///
    /// # Errors
    ///
    /// `503` at the limit, `429` over the client's quota, each with `Retry-After`.
    pub fn admit<B: From<Bytes>>(
        &self,
        parts: &Parts,
        grant: &Grant,
        topics: usize,
    ) -> Result<Permit, Response<B>> {
        let settings = &self.inner.settings;
        let admitted = self
            .inner
            .limiter
            .admit(parts, grant, topics, settings.retry_after);
        if let Err(res) = &admitted {
            // A limit of the endpoint or of the client: no one topic's doing.
            let reason = if res.status() == StatusCode::TOO_MANY_REQUESTS {
                "quota"
            } else {
                "stream_limit"
            };
            logs::refused(self.technique(), &[], reason, res.status(), None);
        }
        admitted
    }

    /// Answers `req` with the stream of `topic` in `framing`, starting where the request asks
    /// (the `header`, else the resume parameter, else only new events): `405` for another
    /// method than `GET` or `HEAD`, `401`/`403` from the authorizer, `503`/`429` at the limits
    /// or when the hub refuses the subscription, `204` when
    /// [`Framing::NO_CONTENT_WHEN_FINISHED`] and the topic is complete with nothing left, else
    /// `200` with a [`StreamBody`] that ends when the grant expires.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type.
    pub fn stream<F: Framing, B>(
        &self,
        topic: &Topic,
        req: Request<B>,
        header: Option<&'static str>,
        framing: F,
    ) -> impl Future<Output = Response<StreamBody<F>>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let from = vec![self.start_from(&parts, header)];
        self.open_stream(parts, vec![topic.clone()], from, framing, false)
    }

    /// [`stream`](Self::stream) for several `topics` in one response, through the `multi_`
    /// methods of `framing`: the request's cursor is the [combined cursor](crate::topics), the
    /// grant must cover every topic, and `204` (when the framing asks for it) needs every topic
    /// complete.
    pub fn stream_topics<F: Framing, B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
        header: Option<&'static str>,
        framing: F,
    ) -> impl Future<Output = Response<StreamBody<F>>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let from = self.start_points(&parts, header, topics.len());
        self.open_stream(parts, topics.to_vec(), from, framing, true)
    }

    fn open_stream<F: Framing>(
        &self,
        parts: Parts,
        topics: Vec<Topic>,
        from: Vec<StartFrom>,
        framing: F,
        many: bool,
    ) -> impl Future<Output = Response<StreamBody<F>>> + Send + 'static {
        let this = self.clone();
        async move {
            let res = this
                .open_stream_inner(&parts, &topics, &from, framing, many)
                .await;
            this.answered(res)
        }
    }

    async fn open_stream_inner<F: Framing>(
        &self,
        parts: &Parts,
        topics: &[Topic],
        from: &[StartFrom],
        framing: F,
        many: bool,
    ) -> Response<StreamBody<F>> {
        let grant = match self.check(parts, topics).await {
            Ok(grant) => grant,
            Err(refusal) => return refusal,
        };
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let res = method_not_allowed("GET, HEAD", "streams answer GET and HEAD only\n");
            return self.refused(topics, "method", res);
        }
        let permit = match self.admit(parts, &grant, topics.len()) {
            Ok(permit) => permit,
            Err(res) => return res,
        };
        let settings = &self.inner.settings;
        let mut subs = match subscribe_all(&self.inner.hub, topics, from).await {
            Ok(subs) => subs,
            Err(e) => return self.hub_error(topics, &e),
        };
        if F::NO_CONTENT_WHEN_FINISHED && subs.iter().all(Subscription::is_finished) {
            let mut res = Response::new(StreamBody::from(Bytes::new()));
            *res.status_mut() = StatusCode::NO_CONTENT;
            return self.refused(topics, "finished", res);
        }
        for (sub, from) in subs.iter().zip(from) {
            logs::told(self.technique(), sub.topic(), *from, sub.outcome());
        }
        let (hub, meters, beat) = (
            &self.inner.hub,
            self.inner.meters.clone(),
            settings.heartbeat,
        );
        let mut body = match subs.pop() {
            Some(sub) if !many => {
                StreamBody::one(Frames::new(sub, framing, beat, hub, meters, permit))
            }
            last => {
                subs.extend(last);
                StreamBody::many(MultiFrames::new(subs, framing, beat, hub, meters, permit))
            }
        };
        body.expire_at(grant.deadline());
        let mut res = Response::new(body);
        // Sized for the headers set here: hyper keeps a response's header map, emptied, for
        // the connection's life (to parse the next request into), so on a held stream its
        // capacity is resident per connection (about 0.6 KiB at the default growth, 0.3 here).
        let headers = res.headers_mut();
        *headers = HeaderMap::with_capacity(3);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(F::CONTENT_TYPE));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(F::CACHE_CONTROL));
        if settings.accel_buffering_header {
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        res
    }

    /// Adds the CORS headers of [`Settings::cors`] (when set) for a request's `method` and
    /// `headers` to an answer's headers, with the endpoint's [`cors_rules`](Self::cors_rules).
    pub fn apply_cors(&self, method: &Method, headers: &HeaderMap, out: &mut HeaderMap) {
        if let Some(cors) = &self.inner.settings.cors {
            cors.apply(method, headers, &self.inner.cors_rules, out);
        }
    }

    /// `503 Service Unavailable` with the endpoint's `Retry-After` and a one-line reason.
    #[must_use]
    pub fn unavailable<B: From<Bytes>>(&self, reason: &str) -> Response<B> {
        unavailable(self.inner.settings.retry_after, reason)
    }

    /// The answer to a hub `error` met for `topics` (a subscription or a read refused: the hub
    /// is closed, at its topic cap, or its backend unreachable): `503` with the endpoint's
    /// `Retry-After` and the error's text, [logged](crate::logs) as refused for `unavailable`
    /// (or `shutdown` once the hub is closed) with the error.
    #[must_use]
    pub fn hub_error<B: From<Bytes>>(
        &self,
        topics: &[Topic],
        error: &push_core::Error,
    ) -> Response<B> {
        let reason = if matches!(error, push_core::Error::Closed) {
            "shutdown"
        } else {
            "unavailable"
        };
        let status = StatusCode::SERVICE_UNAVAILABLE;
        logs::refused(self.technique(), topics, reason, status, Some(error));
        self.unavailable(&format!("{error}\n"))
    }

    /// [Logs](crate::logs) `res` as the refusal of a request for `topics` for `reason` (one
    /// word of the table there: `method`, `rate_limited`, …) and gives it back: for the
    /// refusals a technique decides by itself. The endpoint logs its own ([`check`](Self::check),
    /// [`admit`](Self::admit), [`hub_error`](Self::hub_error), its streams and batches).
    #[must_use]
    pub fn refused<B>(
        &self,
        topics: &[Topic],
        reason: &'static str,
        res: Response<B>,
    ) -> Response<B> {
        logs::refused(self.technique(), topics, reason, res.status(), None);
        res
    }

    /// Counts `res` in the endpoint's meters (`push_answers_total`, `push_refusals_total`) and
    /// gives it back: every answer passes here once.
    pub fn answered<B: http_body::Body>(&self, res: Response<B>) -> Response<B> {
        self.inner.meters.answer(&res);
        res
    }

    /// Counts what a technique wrote by itself (a batch answer, a socket's messages):
    /// `events` delivered, `bytes` written.
    pub fn delivered(&self, events: u64, bytes: usize) {
        self.inner.meters.delivered(events, bytes);
    }

    /// Counts an outcome told to a client (a gap or a reset) that the technique wrote by
    /// itself.
    pub fn told(&self, outcome: Outcome) {
        self.inner.meters.outcome(outcome);
    }

    /// [`told`](Self::told), for a client of `topic` that asked to start `from` (or, for a gap
    /// met mid-stream, stood there), and [logs](crate::logs) it when it is a gap or a reset.
    pub fn told_from(&self, topic: &Topic, from: StartFrom, outcome: Outcome) {
        self.told(outcome);
        logs::told(self.technique(), topic, from, outcome);
    }

    /// The technique's name, for the logs.
    fn technique(&self) -> &'static str {
        self.inner.meters.technique()
    }
}

/// Subscribes to every topic from its start point; the first refusal's `503`.
///
/// # Errors
///
/// The hub's error for the first topic it refused.
pub(crate) async fn subscribe_all(
    hub: &Hub,
    topics: &[Topic],
    from: &[StartFrom],
) -> Result<Vec<Subscription>, push_core::Error> {
    let mut subs = Vec::with_capacity(topics.len());
    for (topic, from) in topics.iter().zip(from) {
        subs.push(hub.subscribe(topic, *from).await?);
    }
    Ok(subs)
}
