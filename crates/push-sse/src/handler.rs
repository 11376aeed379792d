//! The SSE endpoint: request in, `text/event-stream` response out.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use push_core::{Cursor, Error, Event, Frames, Framing, Hub, Limiter, Outcome, StartFrom, Topic};

use crate::encode::{encode_event, outcome_event};

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
    limiter: Limiter,
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
        let limiter = Limiter::new(config.max_streams);
        Self {
            hub,
            config: Arc::new(config),
            limiter,
        }
    }

    /// Streams open right now.
    #[must_use]
    pub fn open_streams(&self) -> usize {
        self.limiter.open()
    }

    /// Where a request asks to start: the `Last-Event-ID` header, else the
    /// [`resume_param`](SseConfig::resume_param) query parameter, else only new events. A
    /// cursor that does not parse gives [`StartFrom::Invalid`] (a reset), never an error.
    #[must_use]
    pub fn start_from<B>(&self, req: &Request<B>) -> StartFrom {
        let header = req
            .headers()
            .get(LAST_EVENT_ID)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        match header {
            // An empty Last-Event-ID is what a browser sends before it saw any id.
            Some("") | None => {
                let query = req.uri().query().unwrap_or("");
                let param = push_core::query_value(query, self.config.resume_param);
                StartFrom::from_client(
                    param.as_deref().filter(|p| !p.is_empty()),
                    StartFrom::Newest,
                )
            }
            Some(id) => StartFrom::from_client(Some(id), StartFrom::Newest),
        }
    }

    /// Answers `req` with the event stream of `topic`.
    ///
    /// `GET` and `HEAD` get `200` with `text/event-stream`; another method gets `405`. At the
    /// stream limit, or when the hub is closed or unavailable, the answer is `503` with
    /// `Retry-After` and a one-line reason. The stream starts with the `retry:` hint and the
    /// resume outcome ([`GAP_EVENT`](crate::GAP_EVENT) or [`RESET_EVENT`](crate::RESET_EVENT);
    /// a plain resume sends a `:ok` comment), then carries every event as it is published, and
    /// ends with a `retry:` hint when the hub is closed.
    pub async fn respond<B>(&self, topic: &Topic, req: &Request<B>) -> Response<SseBody> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut res = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "sse streams answer GET and HEAD only\n",
            );
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let Some(permit) = self.limiter.try_acquire() else {
            return self.unavailable(&format!(
                "too many open streams (limit {})\n",
                self.limiter.max()
            ));
        };
        let sub = match self.hub.subscribe(topic, self.start_from(req)).await {
            Ok(sub) => sub,
            Err(e @ (Error::Closed | Error::TooManyTopics { .. } | Error::Backend(_))) => {
                return self.unavailable(&format!("{e}\n"));
            }
            Err(e) => return self.unavailable(&format!("{e}\n")),
        };
        let framing = SseFraming {
            retry: self.config.retry,
        };
        let frames = Frames::new(sub, framing, self.config.keep_alive, Some(permit));
        let mut res = Response::new(SseBody {
            kind: Kind::Stream(frames),
        });
        // Sized for the headers set here: hyper keeps a response's header map, emptied, for
        // the connection's life (to parse the next request into), so on a held stream its
        // capacity is resident per connection (about 0.6 KiB at the default growth, 0.3 here).
        let headers = res.headers_mut();
        *headers = http::HeaderMap::with_capacity(3);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if self.config.accel_buffering_header {
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        res
    }

    fn unavailable(&self, reason: &str) -> Response<SseBody> {
        let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, reason);
        res.headers_mut().insert(
            RETRY_AFTER,
            HeaderValue::from(self.config.retry_after.as_secs().max(1)),
        );
        res
    }
}

fn plain(status: StatusCode, text: &str) -> Response<SseBody> {
    let mut res = Response::new(SseBody {
        kind: Kind::Full(Some(Bytes::copy_from_slice(text.as_bytes()))),
    });
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

#[derive(Debug)]
struct SseFraming {
    retry: Option<Duration>,
}

impl Framing for SseFraming {
    fn start(&self, outcome: Outcome, cursor: Cursor) -> Bytes {
        let retry = self
            .retry
            .map(|r| format!("retry: {}\n\n", r.as_millis()))
            .unwrap_or_default();
        let outcome =
            outcome_event(outcome, cursor).unwrap_or_else(|| Bytes::from_static(b":ok\n\n"));
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

    fn end(&self, _cursor: Cursor) -> Bytes {
        self.retry
            .map(|r| format!("retry: {}\n\n", r.as_millis()).into())
            .unwrap_or_default()
    }
}

/// The response body of [`Sse::respond`]: the event stream, or a short text for an error.
///
/// Each event is a frame holding bytes shared with every other stream of the same event; there
/// is no per-event boxing or copying on this path.
pub struct SseBody {
    kind: Kind,
}

enum Kind {
    Stream(Frames<SseFraming>),
    Full(Option<Bytes>),
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Stream(frames) => f
                .debug_struct("SseBody")
                .field("cursor", &frames.cursor())
                .finish(),
            Kind::Full(_) => f.debug_struct("SseBody").finish_non_exhaustive(),
        }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Stream(frames) => frames.poll_frame(cx).map(|f| f.map(|b| Ok(Frame::data(b)))),
            Kind::Full(data) => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}
