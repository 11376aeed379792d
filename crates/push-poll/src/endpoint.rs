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
use push_core::{Cursor, Hub, StartFrom, Topic};
use push_http::{text, Endpoint, Settings};

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
pub struct PollConfig {
    interval: Duration,
    min_interval: Option<Duration>,
    max_clients: usize,
    shared: Settings,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            min_interval: None,
            max_clients: 100_000,
            shared: Settings::default(),
        }
    }
}

push_http::shared_settings!(PollConfig {
    max_batch,
    max_batch_bytes,
    start,
    resume_param,
    retry_after,
    cors,
});

impl PollConfig {
    /// Sets the interval recommended to clients in [`POLL_INTERVAL`].
    #[must_use]
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Sets the shortest interval allowed between two polls of one client key on one topic
    /// (see [`Poller::respond_keyed`]); `None` turns the check off.
    #[must_use]
    pub fn min_interval(mut self, d: Option<Duration>) -> Self {
        self.min_interval = d;
        self
    }

    /// Sets how many client keys [`min_interval`](Self::min_interval) tracks at once. When the
    /// table is full of keys seen within `min_interval`, new keys are not limited (fail open)
    /// rather than making memory grow.
    #[must_use]
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n;
        self
    }
}

/// A short-polling endpoint over a [`Hub`]: cheap to clone, one per server (the rate table is
/// shared by its clones).
#[derive(Debug, Clone)]
pub struct Poller {
    core: Endpoint,
    config: Arc<PollConfig>,
    rate: Option<Arc<RateTable>>,
}

const METHODS: &str = "GET, HEAD, OPTIONS";

push_http::endpoint_methods!(Poller: PollConfig { new, authorize });

impl Poller {
    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: PollConfig) -> Self {
        let rate = config
            .min_interval
            .map(|min| Arc::new(RateTable::new(min, config.max_clients)));
        // The response headers a page on another origin may read.
        let core = Endpoint::new(hub, "poll", config.shared.clone()).cors_rules(
            METHODS,
            "If-None-Match",
            "ETag, X-Poll-Interval, Retry-After",
        );
        Self {
            core,
            config: Arc::new(config),
            rate,
        }
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
    /// [`MAX_TOPICS`](push_http::topics::MAX_TOPICS)), without a rate limit: `200` with the
    /// [several-topic answer](push_http::json) (each topic's outcome and
    /// cursor, their events with their topic, and `next`, the
    /// [combined cursor](push_http::topics) to pass as `since` next time), `Cache-Control:
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
            if let Err(refusal) = this.core.check(&parts, &topics).await {
                return this.core.answered(refusal);
            }
            let mut res = match parts.method {
                Method::GET | Method::HEAD => this.answer_topics(&topics, &parts).await,
                Method::OPTIONS => push_http::options(METHODS),
                _ => {
                    let reason = "polls answer GET, HEAD and OPTIONS\n";
                    let res = push_http::method_not_allowed(METHODS, reason);
                    this.core.refused(&topics, "method", res)
                }
            };
            this.core
                .apply_cors(&parts.method, &parts.headers, res.headers_mut());
            this.core.answered(res)
        }
    }

    async fn answer_topics(&self, topics: &[Topic], parts: &Parts) -> Response<PollBody> {
        let from = self.core.start_points(parts, None, topics.len());
        let if_none_match = parts.headers.get(IF_NONE_MATCH);
        let mut res = self
            .core
            .batch_topics(topics, &from, Duration::ZERO, if_none_match)
            .await;
        self.set_cache_headers(res.headers_mut(), None);
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
            let topics = std::slice::from_ref(&topic);
            if let Err(refusal) = this.core.check(&parts, topics).await {
                return this.core.answered(refusal);
            }
            let mut res = this.answer_inner(&topic, &parts, client.as_deref()).await;
            this.core
                .apply_cors(&parts.method, &parts.headers, res.headers_mut());
            this.core.answered(res)
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
                let res =
                    push_http::method_not_allowed(METHODS, "polls answer GET, HEAD and OPTIONS\n");
                return self
                    .core
                    .refused(std::slice::from_ref(topic), "method", res);
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
                let res = self
                    .core
                    .refused(std::slice::from_ref(topic), "rate_limited", res);
                return self.with_interval(res);
            }
        }
        let hub = self.core.hub();
        let from = self.core.start_from(parts, None);
        if let Some(tags) = parts.headers.get(IF_NONE_MATCH) {
            match hub.head(topic).await {
                Ok(Some(head))
                    if nothing_after(from, head)
                        && push_http::matches_tag(tags, &head.to_string()) =>
                {
                    let mut res = text(StatusCode::NOT_MODIFIED, "");
                    res.headers_mut().remove(CONTENT_TYPE);
                    self.set_cache_headers(res.headers_mut(), Some(head));
                    return res;
                }
                Ok(_) => {}
                Err(e) => return self.core.hub_error(std::slice::from_ref(topic), &e),
            }
        }
        let batch = match hub.read(topic, from, self.core.batch_limit()).await {
            Ok(batch) => batch,
            Err(e) => return self.core.hub_error(std::slice::from_ref(topic), &e),
        };
        self.core.delivered(batch.events.len() as u64, 0);
        self.core.told_from(topic, from, batch.outcome);
        let head = hub.head(topic).await.ok().flatten();
        let more = batch.cut
            || batch.events.len() >= self.core.settings().max_batch && head != Some(batch.next);
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

fn seconds_up(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_millis().div_ceil(1000).max(1) as u64)
}

/// The response body of [`Poller::respond`](crate::Poller::respond): one complete answer.
pub type PollBody = Full<Bytes>;

#[cfg(test)]
mod tests {
    use super::*;

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
