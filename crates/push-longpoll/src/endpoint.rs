//! The long-poll endpoint: a request held until news, a timeout or shutdown, then one complete
//! JSON answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use push_core::{Batch, Hub, Outcome, StartFrom, Topic};
use push_http::{text, Authorizer, Client, Cors, CorsRules, Limiter, Quota};

use crate::Error;

/// Settings of a [`LongPoll`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`timeout`](Self::timeout) | hold 30 s, then answer empty |
/// | [`max_timeout`](Self::max_timeout) | a client may ask for up to 55 s (`?timeout=SECONDS`) |
/// | [`max_batch`](Self::max_batch) | 100 events per answer |
/// | [`max_batch_bytes`](Self::max_batch_bytes) | 1 MiB of event objects per answer |
/// | [`max_held`](Self::max_held) | 10,000 requests held at once, then `503` |
/// | [`quota`](Self::quota) | 1,000 held requests and 1,000 topics per client, then `429` ([`Quota`]) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` and on the shutdown answer |
/// | [`start`](Self::start) | a request without a cursor waits for the next event |
/// | [`resume_param`](Self::resume_param) / [`timeout_param`](Self::timeout_param) | `since` / `timeout` |
/// | [`cors`](Self::cors) | off (same-origin only) |
///
/// The timeouts stay under 60 s because many proxies and load balancers cut a silent request
/// at 60 s.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LongPollConfig {
    /// How long a request is held when the client does not ask for another timeout.
    pub timeout: Duration,
    /// The longest hold a client may ask for; longer requests are shortened to it.
    pub max_timeout: Duration,
    /// The most events in one answer; `more: true` tells the client to ask again at once.
    pub max_batch: usize,
    /// The most bytes of event objects in one answer (a small request must not pin a large
    /// answer); `more: true` when it cuts. An event larger than this is still answered, alone.
    pub max_batch_bytes: usize,
    /// The most requests held (or being answered) at once on this endpoint.
    pub max_held: usize,
    /// What one client may hold of it: over its quota a client gets `429` with `Retry-After`
    /// while the others are served. Clients are told apart by [`Client::of`](push_http::Client::of).
    pub quota: Quota,
    /// The `Retry-After` sent with `503` and with the answers given at shutdown.
    pub retry_after: Duration,
    /// Where a request without a cursor starts: [`StartFrom::Newest`] (wait for the next event)
    /// or [`StartFrom::Oldest`] (everything retained, at once).
    pub start: StartFrom,
    /// The query parameter holding the cursor to resume after.
    pub resume_param: &'static str,
    /// The query parameter holding the client's timeout, in seconds (decimals allowed).
    pub timeout_param: &'static str,
    /// Cross-origin access for browsers on other origins; `None` answers no CORS headers.
    pub cors: Option<Cors>,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(55),
            max_batch: 100,
            max_batch_bytes: 1 << 20,
            max_held: 10_000,
            quota: Quota::default(),
            retry_after: Duration::from_secs(5),
            start: StartFrom::Newest,
            resume_param: "since",
            timeout_param: "timeout",
            cors: None,
        }
    }
}

impl LongPollConfig {
    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets [`max_timeout`](Self::max_timeout).
    #[must_use]
    pub fn max_timeout(mut self, d: Duration) -> Self {
        self.max_timeout = d;
        self
    }

    /// Sets [`max_batch`](Self::max_batch) (at least 1).
    #[must_use]
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Sets [`max_batch_bytes`](Self::max_batch_bytes).
    #[must_use]
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.max_batch_bytes = n;
        self
    }

    /// Sets [`max_held`](Self::max_held).
    #[must_use]
    pub fn max_held(mut self, n: usize) -> Self {
        self.max_held = n;
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

    /// Sets [`start`](Self::start).
    #[must_use]
    pub fn start(mut self, from: StartFrom) -> Self {
        self.start = from;
        self
    }

    /// Sets [`resume_param`](Self::resume_param).
    #[must_use]
    pub fn resume_param(mut self, name: &'static str) -> Self {
        self.resume_param = name;
        self
    }

    /// Sets [`timeout_param`](Self::timeout_param).
    #[must_use]
    pub fn timeout_param(mut self, name: &'static str) -> Self {
        self.timeout_param = name;
        self
    }

    /// Sets [`cors`](Self::cors).
    #[must_use]
    pub fn cors(mut self, cors: Option<Cors>) -> Self {
        self.cors = cors;
        self
    }
}

/// A long-poll endpoint over a [`Hub`]: cheap to clone, one per server (the held-request limit
/// and gauge are shared by its clones).
#[derive(Debug, Clone)]
pub struct LongPoll {
    hub: Hub,
    config: Arc<LongPollConfig>,
    limiter: Limiter,
    authorizer: Option<Authorizer>,
    meters: push_http::Meters,
}

const METHODS: &str = "GET, HEAD, OPTIONS";
const CORS_RULES: CorsRules = CorsRules {
    methods: METHODS,
    allow_headers: "",
    expose: "Retry-After",
};

impl LongPoll {
    /// An endpoint with the default [`LongPollConfig`].
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self::with_config(hub, LongPollConfig::default())
    }

    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: LongPollConfig) -> Self {
        let meters = push_http::Meters::new("longpoll");
        let limiter = Limiter::with_meters(config.max_held, meters.clone()).quota(config.quota);
        Self {
            hub,
            config: Arc::new(config),
            limiter,
            authorizer: None,
            meters,
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &LongPollConfig {
        &self.config
    }

    /// The gauge of requests held (or being answered) right now. A request whose client goes
    /// away leaves it at once: the server drops the request's future, which frees its place
    /// and its subscription.
    #[must_use]
    pub fn open(&self) -> usize {
        self.limiter.open()
    }

    /// Where a request asks to start: after the [`resume_param`](LongPollConfig::resume_param)
    /// cursor, else [`start`](LongPollConfig::start). A cursor that does not parse is a reset,
    /// never an error.
    #[must_use]
    pub fn start_from(&self, parts: &Parts) -> StartFrom {
        push_http::start_from(parts, None, self.config.resume_param, self.config.start)
    }

    /// How long `req` may be held: its [`timeout_param`](LongPollConfig::timeout_param), up
    /// to [`max_timeout`](LongPollConfig::max_timeout), else [`timeout`](LongPollConfig::timeout).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the parameter is not a non-negative number of seconds.
    pub fn hold_for(&self, parts: &Parts) -> Result<Duration, Error> {
        let query = parts.uri.query().unwrap_or("");
        let Some(text) = push_http::query_value(query, self.config.timeout_param) else {
            return Ok(self.config.timeout);
        };
        text.parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .map(|d| d.min(self.config.max_timeout))
            .ok_or_else(|| Error::Timeout {
                param: self.config.timeout_param,
                value: text.into_owned(),
            })
    }

    /// Answers `req` for `topic`.
    ///
    /// - `GET`: when events after the cursor are retained, or the cursor is not simply resumed
    ///   (a gap or a reset must be told at once), `200` at once with the
    ///   [batch answer](push_http::json) (at most [`max_batch`](LongPollConfig::max_batch)
    ///   events). Otherwise the request is held until an event is published (`200` with it), the
    ///   timeout (`200` with no events and the same cursor), or shutdown (`200` with what was
    ///   published before it, plus `Retry-After`). `Cache-Control: no-store`.
    /// - `HEAD`: answered at once, as a `GET` with timeout 0, without the body.
    /// - `OPTIONS`: `204` with `Allow` (and the CORS preflight headers when configured).
    /// - another method: `405`; a bad `timeout`: `400`; at [`max_held`](LongPollConfig::max_held)
    ///   or with the hub closed or unavailable: `503` with `Retry-After`.
    ///
    /// An event published after an answer left and before the client's next request is not
    /// lost: the next request resumes from the answer's `next` cursor and gets it at once.
    ///
    /// The request is taken by value and dropped before the hold: a held request keeps only
    /// its cursor and timeout, not its headers (under hyper, those point into the connection's
    /// 8 KiB read buffer, which would stay allocated beside a fresh one for as long as the
    /// request is held: about 4 KiB of resident memory per held request).
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<LongPollBody>> + Send + 'static {
        let topic = topic.clone();
        self.respond_with(
            req,
            vec![topic.clone()],
            |this, parts| this.start_from(parts),
            move |this, method, hold, from, client| async move {
                this.answer(&topic, &method, hold, from, client).await
            },
        )
    }

    /// Answers `req` for several `topics` at once (at most
    /// [`MAX_TOPICS`](push_http::multi::MAX_TOPICS)): held until any of them has news, an
    /// outcome to tell or its end, then `200` with the
    /// [several-topic answer](push_http::json::multi_batch_response) of what every topic holds;
    /// `next` is the [combined cursor](push_http::multi) to pass as `since` next time. Other
    /// answers as [`respond`](Self::respond). The grant must cover every topic.
    pub fn respond_topics<B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
    ) -> impl Future<Output = Response<LongPollBody>> + Send + 'static {
        let (n, list) = (topics.len(), topics.to_vec());
        self.respond_with(
            req,
            topics.to_vec(),
            move |this, parts| {
                let since = push_http::cursor_text(parts, None, this.config.resume_param);
                push_http::multi::start_points(since.as_deref(), n, this.config.start)
            },
            move |this, method, hold, from, client| async move {
                this.answer_topics(&list, &method, hold, &from, client)
                    .await
            },
        )
    }

    /// What both answers share: the hold and the start read from the request, the CORS
    /// headers decided up front, the access check, the hold cut to the grant's end, the
    /// request dropped before the hold, and the CORS headers and meters on the answer.
    fn respond_with<B, S, F, Fut>(
        &self,
        req: Request<B>,
        topics: Vec<Topic>,
        start: impl FnOnce(&Self, &Parts) -> S,
        answer: F,
    ) -> impl Future<Output = Response<LongPollBody>> + Send + 'static
    where
        S: Send + 'static,
        F: FnOnce(Self, Method, Result<Duration, Error>, S, Option<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Response<LongPollBody>> + Send,
    {
        let (parts, _) = req.into_parts();
        // Boxed: the future keeps what it captures for its whole life, and a held request's
        // state should not carry the request's parts (0.2 KiB) after they are dropped.
        let parts = Box::new(parts);
        let hold = self.hold_for(&parts);
        let from = start(self, &parts);
        // The CORS headers are decided now, so that the request's headers are not held.
        let mut cors = HeaderMap::new();
        if let Some(rules) = &self.config.cors {
            rules.apply(&parts.method, &parts.headers, &CORS_RULES, &mut cors);
        }
        let this = self.clone();
        async move {
            let auth = this.authorizer.as_ref();
            let grant = match push_http::check_read_all(auth, &parts, &topics).await {
                Ok(grant) => grant,
                Err(refusal) => {
                    this.meters.answer(&refusal);
                    return refusal;
                }
            };
            // A request is not held past its credentials' end: it answers empty then.
            let hold = hold.map(|hold| match grant.deadline() {
                Some(end) => hold.min(end.saturating_duration_since(tokio::time::Instant::now())),
                None => hold,
            });
            // Dropped before the hold: under hyper a request's headers point into the
            // connection's read buffer, which a held request would otherwise keep.
            let method = parts.method.clone();
            let client = Client::of(&parts, &grant);
            drop(parts);
            let meters = this.meters.clone();
            let mut res = answer(this, method, hold, from, client).await;
            res.headers_mut().extend(cors);
            meters.answer(&res);
            res
        }
    }

    /// The method's hold (`HEAD`: none) and a place under the held-request cap and the
    /// client's quota, or the answer: `204` for `OPTIONS`, `400` for a bad timeout, `405`,
    /// `503` at the cap, `429` over the client's quota.
    // The error is the answer itself, made at most once per request: no boxing needed.
    #[allow(clippy::result_large_err)]
    fn admit(
        &self,
        method: &Method,
        hold: Result<Duration, Error>,
        client: Option<Client>,
        topics: usize,
    ) -> Result<(Duration, push_http::Permit), Response<LongPollBody>> {
        let hold = match *method {
            Method::GET => hold.map_err(|e| text(StatusCode::BAD_REQUEST, &format!("{e}\n")))?,
            Method::HEAD => Duration::ZERO,
            Method::OPTIONS => return Err(push_http::options(METHODS)),
            _ => {
                let reason = "long polls answer GET, HEAD and OPTIONS\n";
                return Err(push_http::method_not_allowed(METHODS, reason));
            }
        };
        let permit = self
            .limiter
            .acquire(client, topics)
            .map_err(|over| over.response(self.config.retry_after))?;
        Ok((hold, permit))
    }

    async fn answer_topics(
        &self,
        topics: &[Topic],
        method: &Method,
        hold: Result<Duration, Error>,
        from: &[StartFrom],
        client: Option<Client>,
    ) -> Response<LongPollBody> {
        let (hold, _permit) = match self.admit(method, hold, client, topics.len()) {
            Ok(admitted) => admitted,
            Err(res) => return res,
        };
        let mut subs = match push_http::multi::subscribe_all(&self.hub, topics, from).await {
            Ok(subs) => subs,
            Err(e) => return self.unavailable(&format!("{e}\n")),
        };
        let limit =
            push_http::json::batch_limit(self.config.max_batch, self.config.max_batch_bytes);
        let waited =
            tokio::time::timeout(hold, push_http::multi::next_batch_all(&mut subs, limit)).await;
        let batch = match waited {
            Ok(Some(batch)) => Some(batch),
            // Timed out: what there is now (nothing new, outcomes resumed).
            Err(_) => push_http::multi::try_batch_all(&mut subs, limit),
            Ok(None) => None,
        };
        let Some(batch) = batch else {
            let mut res = self.unavailable("shutting down\n");
            self.set_retry_after(res.headers_mut());
            return res;
        };
        self.meters.delivered(batch.events.len() as u64, 0);
        for (_, outcome, _) in &batch.topics {
            self.meters.outcome(*outcome);
        }
        let mut res = push_http::json::multi_batch_response(&batch);
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    /// Runs `authorizer` before every request: a client it refuses, or one whose grant does
    /// not cover the topic, gets `401` or `403` and is not held.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    async fn answer(
        &self,
        topic: &Topic,
        method: &Method,
        hold: Result<Duration, Error>,
        from: StartFrom,
        client: Option<Client>,
    ) -> Response<LongPollBody> {
        let (hold, _permit) = match self.admit(method, hold, client, 1) {
            Ok(admitted) => admitted,
            Err(res) => return res,
        };
        let mut sub = match self.hub.subscribe(topic, from).await {
            Ok(sub) => sub,
            Err(e) => return self.unavailable(&format!("{e}\n")),
        };
        let limit = self.config.max_batch;
        let within =
            push_http::json::batch_limit(self.config.max_batch, self.config.max_batch_bytes);
        let (batch, closing) = match tokio::time::timeout(hold, sub.next_batch(within)).await {
            Ok(Some(batch)) => (batch, false),
            // Timed out: nothing new, and no gap or reset to tell (those answer at once).
            Err(_) => (
                Batch {
                    outcome: Outcome::Resumed,
                    events: Vec::new(),
                    next: sub.cursor(),
                    cut: false,
                    complete: false,
                },
                false,
            ),
            // Closed: every event published before the close was handed out before this.
            Ok(None) => (
                Batch {
                    outcome: sub.outcome(),
                    events: Vec::new(),
                    next: sub.cursor(),
                    cut: false,
                    complete: false,
                },
                true,
            ),
        };
        drop(sub);
        self.meters.delivered(batch.events.len() as u64, 0);
        self.meters.outcome(batch.outcome);
        let more = batch.cut
            || batch.events.len() >= limit
                && self.hub.head(topic).await.ok().flatten() != Some(batch.next);
        let mut res = push_http::json::batch_response(&batch, more);
        let headers = res.headers_mut();
        // Every answer is a moment in a sequence: never to be stored or replayed by a cache.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if closing {
            self.set_retry_after(headers);
        }
        res
    }

    fn set_retry_after(&self, headers: &mut HeaderMap) {
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from(self.config.retry_after.as_secs().max(1)),
        );
    }

    fn unavailable(&self, reason: &str) -> Response<LongPollBody> {
        push_http::unavailable(self.config.retry_after, reason)
    }
}

/// The response body of [`LongPoll::respond`](crate::LongPoll::respond): one complete answer.
pub type LongPollBody = Full<Bytes>;

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::NewEvent;

    fn get(uri: &str) -> Parts {
        Request::get(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn client_timeouts_are_capped_and_validated() {
        let lp = LongPoll::new(Hub::memory());
        assert_eq!(lp.hold_for(&get("/x")), Ok(Duration::from_secs(30)));
        assert_eq!(
            lp.hold_for(&get("/x?timeout=2.5")),
            Ok(Duration::from_millis(2500))
        );
        assert_eq!(
            lp.hold_for(&get("/x?timeout=3600")),
            Ok(Duration::from_secs(55))
        );
        for bad in ["-1", "abc", "NaN", "inf", ""] {
            assert!(lp.hold_for(&get(&format!("/x?timeout={bad}"))).is_err());
        }
    }

    #[tokio::test]
    async fn holds_until_publish_and_frees_its_place_when_dropped() {
        let hub = Hub::memory();
        let lp = LongPoll::new(hub.clone());
        let t = Topic::new("t").unwrap();
        let held = lp.respond(&t, Request::get("/t").body(()).unwrap());
        tokio::pin!(held);
        // Poll once: it is held.
        assert!(futures_poll_once(held.as_mut()).await.is_none());
        assert_eq!(lp.open(), 1);
        hub.publish(&t, NewEvent::new("x")).await.unwrap();
        let res = held.await;
        assert_eq!(res.status(), 200);
        assert_eq!(lp.open(), 0);

        // A held request that is dropped (the client went away) frees its place at once.
        let mut held = Box::pin(lp.respond(&t, Request::get("/t").body(()).unwrap()));
        assert!(futures_poll_once(held.as_mut()).await.is_none());
        assert_eq!(lp.open(), 1);
        drop(held);
        assert_eq!(lp.open(), 0);
        assert_eq!(hub.stats().waiting, 0);
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
