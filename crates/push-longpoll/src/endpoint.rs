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
use push_http::{text, Endpoint, Grant, Permit, Settings};

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
/// | [`quota`](Self::quota) | 1,000 held requests and 1,000 topics per client, then `429` ([`Quota`](push_http::Quota)) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` and on the shutdown answer |
/// | [`start`](Self::start) | a request without a cursor waits for the next event |
/// | [`resume_param`](Self::resume_param) / [`timeout_param`](Self::timeout_param) | `since` / `timeout` |
/// | [`cors`](Self::cors) | off (same-origin only) |
///
/// The timeouts stay under 60 s because many proxies and load balancers cut a silent request
/// at 60 s.
#[derive(Debug, Clone)]
pub struct LongPollConfig {
    timeout: Duration,
    max_timeout: Duration,
    timeout_param: &'static str,
    shared: Settings,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(55),
            timeout_param: "timeout",
            shared: Settings::default(),
        }
    }
}

push_http::shared_settings!(LongPollConfig {
    max_batch,
    max_batch_bytes,
    start,
    max_streams as max_held,
    quota,
    retry_after,
    resume_param,
    cors,
});

impl LongPollConfig {
    /// Sets how long a request is held when the client does not ask for another timeout.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets the longest hold a client may ask for; longer requests are shortened to it.
    #[must_use]
    pub fn max_timeout(mut self, d: Duration) -> Self {
        self.max_timeout = d;
        self
    }

    /// Sets the query parameter holding the client's timeout, in seconds (decimals allowed).
    #[must_use]
    pub fn timeout_param(mut self, name: &'static str) -> Self {
        self.timeout_param = name;
        self
    }
}

/// A long-poll endpoint over a [`Hub`]: cheap to clone, one per server (the held-request limit
/// and gauge are shared by its clones).
#[derive(Debug, Clone)]
pub struct LongPoll {
    core: Endpoint,
    config: Arc<LongPollConfig>,
}

const METHODS: &str = "GET, HEAD, OPTIONS";

push_http::endpoint_methods!(LongPoll: LongPollConfig { new, authorize, open });

impl LongPoll {
    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: LongPollConfig) -> Self {
        let core = Endpoint::new(hub, "longpoll", config.shared.clone()).cors_rules(
            METHODS,
            "",
            "Retry-After",
        );
        Self {
            core,
            config: Arc::new(config),
        }
    }

    /// How long a request may be held: its [`timeout_param`](LongPollConfig::timeout_param),
    /// up to [`max_timeout`](LongPollConfig::max_timeout), else
    /// [`timeout`](LongPollConfig::timeout).
    fn hold_for(&self, parts: &Parts) -> Result<Duration, Error> {
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
            |this, parts| this.core.start_from(parts, None),
            move |this, hold, from, permit| async move {
                this.answer(&topic, hold, from, permit).await
            },
        )
    }

    /// Answers `req` for several `topics` at once (at most
    /// [`MAX_TOPICS`](push_http::topics::MAX_TOPICS)): held until any of them has news, an
    /// outcome to tell or its end, then `200` with the
    /// [several-topic answer](push_http::json) of what every topic holds;
    /// `next` is the [combined cursor](push_http::topics) to pass as `since` next time. Other
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
            move |this, parts| this.core.start_points(parts, None, n),
            move |this, hold, from, permit| async move {
                this.answer_topics(&list, hold, &from, permit).await
            },
        )
    }

    /// What both answers share: the hold and the start read from the request, the CORS
    /// headers decided up front, the access check, the hold cut to the grant's end, the method
    /// and the limits checked, the request dropped before the hold, and the CORS headers and
    /// meters on the answer.
    fn respond_with<B, S, F, Fut>(
        &self,
        req: Request<B>,
        topics: Vec<Topic>,
        start: impl FnOnce(&Self, &Parts) -> S,
        answer: F,
    ) -> impl Future<Output = Response<LongPollBody>> + Send + 'static
    where
        S: Send + 'static,
        F: FnOnce(Self, Duration, S, Permit) -> Fut + Send + 'static,
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
        self.core
            .apply_cors(&parts.method, &parts.headers, &mut cors);
        let this = self.clone();
        async move {
            let grant = match this.core.check(&parts, &topics).await {
                Ok(grant) => grant,
                Err(refusal) => return this.core.answered(refusal),
            };
            let admitted = this.admit(&parts, &grant, hold, &topics);
            // Dropped before the hold: under hyper a request's headers point into the
            // connection's read buffer, which a held request would otherwise keep.
            drop(parts);
            let mut res = match admitted {
                Ok((hold, permit)) => answer(this.clone(), hold, from, permit).await,
                Err(res) => res,
            };
            res.headers_mut().extend(cors);
            this.core.answered(res)
        }
    }

    /// The method's hold (`HEAD`: none; never past the grant's end) and a place under the
    /// held-request cap and the client's quota for `topics`, or the answer: `204` for
    /// `OPTIONS`, `400` for a bad timeout, `405`, `503` at the cap, `429` over the client's
    /// quota.
    // The error is the answer itself, made at most once per request: no boxing needed.
    #[allow(clippy::result_large_err)]
    fn admit(
        &self,
        parts: &Parts,
        grant: &Grant,
        hold: Result<Duration, Error>,
        topics: &[Topic],
    ) -> Result<(Duration, Permit), Response<LongPollBody>> {
        let hold = match parts.method {
            Method::GET => hold.map_err(|e| {
                let res = text(StatusCode::BAD_REQUEST, &format!("{e}\n"));
                self.core.refused(topics, "bad_request", res)
            })?,
            Method::HEAD => Duration::ZERO,
            Method::OPTIONS => return Err(push_http::options(METHODS)),
            _ => {
                let reason = "long polls answer GET, HEAD and OPTIONS\n";
                let res = push_http::method_not_allowed(METHODS, reason);
                return Err(self.core.refused(topics, "method", res));
            }
        };
        // A request is not held past its credentials' end: it answers empty then.
        let hold = match grant.deadline() {
            Some(end) => hold.min(end.saturating_duration_since(tokio::time::Instant::now())),
            None => hold,
        };
        let permit = self.core.admit(parts, grant, topics.len())?;
        Ok((hold, permit))
    }

    async fn answer_topics(
        &self,
        topics: &[Topic],
        hold: Duration,
        from: &[StartFrom],
        _permit: Permit,
    ) -> Response<LongPollBody> {
        let mut res = self.core.batch_topics(topics, from, hold, None).await;
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    async fn answer(
        &self,
        topic: &Topic,
        hold: Duration,
        from: StartFrom,
        _permit: Permit,
    ) -> Response<LongPollBody> {
        let hub = self.core.hub();
        let mut sub = match hub.subscribe(topic, from).await {
            Ok(sub) => sub,
            Err(e) => return self.core.hub_error(std::slice::from_ref(topic), &e),
        };
        let limit = self.core.settings().max_batch;
        let within = self.core.batch_limit();
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
        self.core.delivered(batch.events.len() as u64, 0);
        self.core.told_from(topic, from, batch.outcome);
        #[cfg(feature = "tracing")]
        if closing {
            tracing::info!(
                technique = %"longpoll",
                topic = %topic,
                reason = %"shutdown",
                cursor = %batch.next,
                "closed"
            );
        }
        let more = batch.cut
            || batch.events.len() >= limit
                && hub.head(topic).await.ok().flatten() != Some(batch.next);
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
            HeaderValue::from(self.core.settings().retry_after.as_secs().max(1)),
        );
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
