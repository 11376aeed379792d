//! The polling endpoint: request in, one complete JSON answer (or `304`) out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER,
};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use push_core::{Cursor, Hub, Outcome, StartFrom, Topic};
use push_http::{text, Authorizer, Cors, CorsRules};

use crate::rate::RateTable;

/// The response header carrying the recommended polling interval, in whole seconds (the name
/// GitHub's events API uses for the same purpose).
pub const POLL_INTERVAL: HeaderName = HeaderName::from_static("x-poll-interval");

/// Settings of a [`Poller`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`max_batch`](Self::max_batch) | 100 events per answer |
/// | [`max_batch_bytes`](Self::max_batch_bytes) | 1 MiB of event objects per answer |
/// | [`interval`](Self::interval) | `X-Poll-Interval: 5` |
/// | [`min_interval`](Self::min_interval) | off; when set, a keyed client polling faster gets `429` |
/// | [`max_clients`](Self::max_clients) | 100,000 client keys tracked for `min_interval` |
/// | [`start`](Self::start) | a poll without a cursor starts at the newest point |
/// | [`resume_param`](Self::resume_param) | `since` |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
/// | [`cors`](Self::cors) | off (same-origin only) |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollConfig {
    /// The most events in one answer; `more: true` tells the client to ask again at once.
    pub max_batch: usize,
    /// The most bytes of event objects in one answer (a small request must not pin a large
    /// answer); `more: true` when it cuts. An event larger than this is still answered, alone.
    pub max_batch_bytes: usize,
    /// The interval recommended to clients in [`POLL_INTERVAL`].
    pub interval: Duration,
    /// The shortest interval allowed between two polls of one client key on one topic
    /// (see [`Poller::respond_keyed`]); `None` turns the check off.
    pub min_interval: Option<Duration>,
    /// How many client keys [`min_interval`](Self::min_interval) tracks at once. When the
    /// table is full of keys seen within `min_interval`, new keys are not limited (fail open)
    /// rather than making memory grow.
    pub max_clients: usize,
    /// Where a poll without a cursor starts: [`StartFrom::Newest`] (an empty answer carrying the
    /// cursor to poll from) or [`StartFrom::Oldest`] (everything retained).
    pub start: StartFrom,
    /// The query parameter holding the cursor to resume after.
    pub resume_param: &'static str,
    /// The `Retry-After` sent with `503`.
    pub retry_after: Duration,
    /// Cross-origin access for browsers on other origins; `None` answers no CORS headers.
    pub cors: Option<Cors>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            max_batch: 100,
            max_batch_bytes: 1 << 20,
            interval: Duration::from_secs(5),
            min_interval: None,
            max_clients: 100_000,
            start: StartFrom::Newest,
            resume_param: "since",
            retry_after: Duration::from_secs(5),
            cors: None,
        }
    }
}

impl PollConfig {
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

    /// Sets [`interval`](Self::interval).
    #[must_use]
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Sets [`min_interval`](Self::min_interval).
    #[must_use]
    pub fn min_interval(mut self, d: Option<Duration>) -> Self {
        self.min_interval = d;
        self
    }

    /// Sets [`max_clients`](Self::max_clients).
    #[must_use]
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n;
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

    /// Sets [`retry_after`](Self::retry_after).
    #[must_use]
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }

    /// Sets [`cors`](Self::cors).
    #[must_use]
    pub fn cors(mut self, cors: Option<Cors>) -> Self {
        self.cors = cors;
        self
    }
}

/// A short-polling endpoint over a [`Hub`]: cheap to clone, one per server (the rate table is
/// shared by its clones).
#[derive(Debug, Clone)]
pub struct Poller {
    hub: Hub,
    config: Arc<PollConfig>,
    rate: Option<Arc<RateTable>>,
    authorizer: Option<Authorizer>,
    meters: push_http::Meters,
}

const METHODS: &str = "GET, HEAD, OPTIONS";
const CORS_RULES: CorsRules = CorsRules {
    methods: METHODS,
    allow_headers: "If-None-Match",
    // The response headers a page on another origin may read.
    expose: "ETag, X-Poll-Interval, Retry-After",
};

impl Poller {
    /// An endpoint with the default [`PollConfig`].
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self::with_config(hub, PollConfig::default())
    }

    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: PollConfig) -> Self {
        let rate = config
            .min_interval
            .map(|min| Arc::new(RateTable::new(min, config.max_clients)));
        Self {
            hub,
            config: Arc::new(config),
            rate,
            authorizer: None,
            meters: push_http::Meters::new("poll"),
        }
    }

    /// Runs `authorizer` before every poll: a client it refuses, or one whose grant does not
    /// cover the topic, gets `401` or `403`.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &PollConfig {
        &self.config
    }

    /// Where a request asks to start: after the [`resume_param`](PollConfig::resume_param)
    /// cursor, else [`start`](PollConfig::start). A cursor that does not parse is a reset, never
    /// an error.
    #[must_use]
    pub fn start_from(&self, parts: &Parts) -> StartFrom {
        push_http::start_from(parts, None, self.config.resume_param, self.config.start)
    }

    /// Answers `req` for `topic` without a rate limit: see [`respond_keyed`](Self::respond_keyed).
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<PollBody>> + Send + 'static {
        self.answer(topic, req, None)
    }

    /// Answers `req` for `topic`, applying [`min_interval`](PollConfig::min_interval) to
    /// `client` (whatever identifies a client to the application: a session, a token, an
    /// address).
    ///
    /// - `GET`: `200` with the [batch answer](push_http::json) of the events after the cursor
    ///   (at most [`max_batch`](PollConfig::max_batch)), `ETag` (the topic's head cursor),
    ///   `Cache-Control: no-cache` and [`POLL_INTERVAL`]; or `304 Not Modified` without a body
    ///   when `If-None-Match` names the current head and the cursor asked from is that head
    ///   (nothing new). The `304` path reads the head only: no subscription, no JSON.
    /// - `HEAD`: the same status and headers without the body.
    /// - `OPTIONS`: `204` with `Allow` (and the CORS preflight headers when configured).
    /// - another method: `405`; polling faster than `min_interval`: `429` with `Retry-After`;
    ///   hub closed or unavailable: `503` with `Retry-After`.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type.
    pub fn respond_keyed<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
        client: &str,
    ) -> impl Future<Output = Response<PollBody>> + Send + 'static {
        self.answer(topic, req, Some(client))
    }

    /// Answers `req` for several `topics` at once (at most
    /// [`MAX_TOPICS`](push_http::multi::MAX_TOPICS)), without a rate limit: `200` with the
    /// [several-topic answer](push_http::json::multi_batch_response) (each topic's outcome and
    /// cursor, their events with their topic, and `next`, the
    /// [combined cursor](push_http::multi) to pass as `since` next time), `Cache-Control:
    /// no-cache` and [`POLL_INTERVAL`]; no `ETag` or `304`. Other answers as
    /// [`respond_keyed`](Self::respond_keyed). The grant must cover every topic.
    pub fn respond_topics<B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
    ) -> impl Future<Output = Response<PollBody>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let (this, topics) = (self.clone(), topics.to_vec());
        async move {
            let auth = this.authorizer.as_ref();
            if let Err(refusal) = push_http::check_read_all(auth, &parts, &topics).await {
                this.meters.answer(&refusal);
                return refusal;
            }
            let mut res = match parts.method {
                Method::GET | Method::HEAD => this.answer_topics(&topics, &parts).await,
                Method::OPTIONS => push_http::options(METHODS),
                _ => push_http::method_not_allowed(METHODS, "polls answer GET, HEAD and OPTIONS\n"),
            };
            if let Some(cors) = &this.config.cors {
                cors.apply(
                    &parts.method,
                    &parts.headers,
                    &CORS_RULES,
                    res.headers_mut(),
                );
            }
            this.meters.answer(&res);
            res
        }
    }

    async fn answer_topics(&self, topics: &[Topic], parts: &Parts) -> Response<PollBody> {
        let since = push_http::cursor_text(parts, None, self.config.resume_param);
        let from =
            push_http::multi::start_points(since.as_deref(), topics.len(), self.config.start);
        let mut subs = match push_http::multi::subscribe_all(&self.hub, topics, &from).await {
            Ok(subs) => subs,
            Err(e) => return self.unavailable(&format!("{e}\n")),
        };
        let limit =
            push_http::json::batch_limit(self.config.max_batch, self.config.max_batch_bytes);
        let Some(batch) = push_http::multi::try_batch_all(&mut subs, limit) else {
            return self.unavailable("hub is closed\n");
        };
        self.meters.delivered(batch.events.len() as u64, 0);
        for (_, outcome, _) in &batch.topics {
            self.meters.outcome(*outcome);
        }
        // Nothing new since the client's cursor, which the client's tag names: `304`.
        let tag = multi_tag(&batch.next);
        let quiet = batch.events.is_empty()
            && !batch.complete
            && batch.topics.iter().all(|(_, o, _)| *o == Outcome::Resumed);
        let mut res = if quiet
            && parts
                .headers
                .get(IF_NONE_MATCH)
                .is_some_and(|tags| matches_tag(tags, &tag))
        {
            let mut res = text(StatusCode::NOT_MODIFIED, "");
            res.headers_mut().remove(CONTENT_TYPE);
            res
        } else {
            push_http::json::multi_batch_response(&batch)
        };
        self.set_cache_headers(res.headers_mut(), None);
        if let Ok(tag) = HeaderValue::try_from(format!("\"{tag}\"")) {
            res.headers_mut().insert(ETAG, tag);
        }
        res
    }

    fn answer<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
        client: Option<&str>,
    ) -> impl Future<Output = Response<PollBody>> + Send + 'static {
        let (parts, _) = req.into_parts();
        let (this, topic, client) = (self.clone(), topic.clone(), client.map(str::to_owned));
        async move {
            let auth = this.authorizer.as_ref();
            if let Err(refusal) = push_http::check_read(auth, &parts, &topic).await {
                this.meters.answer(&refusal);
                return refusal;
            }
            let mut res = this.answer_inner(&topic, &parts, client.as_deref()).await;
            if let Some(cors) = &this.config.cors {
                cors.apply(
                    &parts.method,
                    &parts.headers,
                    &CORS_RULES,
                    res.headers_mut(),
                );
            }
            this.meters.answer(&res);
            res
        }
    }

    async fn answer_inner(
        &self,
        topic: &Topic,
        parts: &Parts,
        client: Option<&str>,
    ) -> Response<PollBody> {
        match parts.method {
            Method::GET | Method::HEAD => {}
            Method::OPTIONS => return push_http::options(METHODS),
            _ => {
                return push_http::method_not_allowed(
                    METHODS,
                    "polls answer GET, HEAD and OPTIONS\n",
                )
            }
        }
        if let (Some(rate), Some(client)) = (&self.rate, client) {
            if let Err(wait) = rate.check(client, topic) {
                let mut res = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "polling faster than every {} ms\n",
                        rate.min_interval().as_millis()
                    ),
                );
                res.headers_mut().insert(RETRY_AFTER, seconds_up(wait));
                return self.with_interval(res);
            }
        }
        let from = self.start_from(parts);
        if let Some(tags) = parts.headers.get(IF_NONE_MATCH) {
            match self.hub.head(topic).await {
                Ok(Some(head))
                    if nothing_after(from, head) && matches_tag(tags, &head.to_string()) =>
                {
                    let mut res = text(StatusCode::NOT_MODIFIED, "");
                    res.headers_mut().remove(CONTENT_TYPE);
                    self.set_cache_headers(res.headers_mut(), Some(head));
                    return res;
                }
                Ok(_) => {}
                Err(e) => return self.unavailable(&format!("{e}\n")),
            }
        }
        let batch = match self
            .hub
            .read(
                topic,
                from,
                push_http::json::batch_limit(self.config.max_batch, self.config.max_batch_bytes),
            )
            .await
        {
            Ok(batch) => batch,
            Err(e) => return self.unavailable(&format!("{e}\n")),
        };
        self.meters.delivered(batch.events.len() as u64, 0);
        self.meters.outcome(batch.outcome);
        let head = self.hub.head(topic).await.ok().flatten();
        let more =
            batch.cut || batch.events.len() >= self.config.max_batch && head != Some(batch.next);
        let mut res = push_http::json::batch_response(&batch, more);
        self.set_cache_headers(res.headers_mut(), head);
        res
    }

    fn set_cache_headers(&self, headers: &mut HeaderMap, head: Option<Cursor>) {
        // `no-cache`: a cache may keep the answer but must revalidate it (with the ETag) before
        // every use, so it never serves stale news.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some(head) = head {
            if let Ok(tag) = HeaderValue::try_from(format!("\"{head}\"")) {
                headers.insert(ETAG, tag);
            }
        }
        headers.insert(POLL_INTERVAL, seconds_up(self.config.interval));
    }

    fn with_interval(&self, mut res: Response<PollBody>) -> Response<PollBody> {
        res.headers_mut()
            .insert(POLL_INTERVAL, seconds_up(self.config.interval));
        res
    }

    fn unavailable(&self, reason: &str) -> Response<PollBody> {
        push_http::unavailable(self.config.retry_after, reason)
    }
}

/// Whether an answer for `from` when the head is `head` is certainly empty and resumed, i.e.
/// what a client that saw `head` already has.
fn nothing_after(from: StartFrom, head: Cursor) -> bool {
    match from {
        StartFrom::After(cursor) => cursor == head,
        StartFrom::Newest => true,
        StartFrom::Oldest | StartFrom::Invalid => false,
    }
}

/// Whether an `If-None-Match` value names `head` (weak comparison, as RFC 9110 §13.1.2 asks).
fn matches_tag(value: &HeaderValue, head: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    value.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag
                .strip_prefix("W/")
                .unwrap_or(tag)
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                == Some(head)
    })
}

/// The entity tag of a several-topics answer: its combined next cursor, with `_` for the
/// commas (which `If-None-Match` uses to separate tags).
fn multi_tag(next: &str) -> String {
    next.replace(',', "_")
}

fn seconds_up(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_millis().div_ceil(1000).max(1) as u64)
}

/// The response body of [`Poller::respond`](crate::Poller::respond): one complete answer.
pub type PollBody = Full<Bytes>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_use_weak_comparison() {
        let head = "ab-7";
        for yes in ["\"ab-7\"", "W/\"ab-7\"", "\"x\", \"ab-7\"", "*"] {
            assert!(matches_tag(&HeaderValue::from_static(yes), head), "{yes}");
        }
        for no in ["\"ab-6\"", "ab-7", "\"ab-70\"", ""] {
            assert!(!matches_tag(&HeaderValue::from_static(no), head), "{no}");
        }
    }

    #[test]
    fn only_a_cursor_at_the_head_is_unmodified() {
        let head = Cursor::parse("ab-7").unwrap();
        assert!(nothing_after(StartFrom::After(head), head));
        assert!(!nothing_after(
            StartFrom::After(Cursor::parse("ab-6").unwrap()),
            head
        ));
        assert!(!nothing_after(StartFrom::Oldest, head));
        assert!(!nothing_after(StartFrom::Invalid, head));
    }
}
