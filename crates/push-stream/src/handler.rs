//! The streaming endpoint: request in, one long NDJSON response out.

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
use push_core::{Cursor, Event, Frames, Framing, Hub, Limiter, Outcome, StartFrom, Topic};

use push_core::json::{end_line, outcome_line};

use crate::line::{event_line, heartbeat_line};

/// Settings of a [`Streamer`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`heartbeat`](Self::heartbeat) | a `{"heartbeat":MS}` line after 15 s of silence |
/// | [`accel_buffering_header`](Self::accel_buffering_header) | `X-Accel-Buffering: no` sent |
/// | [`max_streams`](Self::max_streams) | 10,000 open streams, then `503` |
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
    limiter: Limiter,
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

    /// Where a request asks to start: after the [`resume_param`](StreamConfig::resume_param)
    /// cursor, else only new events. A cursor that does not parse is a reset, never an error.
    #[must_use]
    pub fn start_from<B>(&self, req: &Request<B>) -> StartFrom {
        let param =
            push_core::query_value(req.uri().query().unwrap_or(""), self.config.resume_param);
        StartFrom::from_client(
            param.as_deref().filter(|p| !p.is_empty()),
            StartFrom::Newest,
        )
    }

    /// Answers `req` with the NDJSON stream of `topic`.
    ///
    /// `GET` and `HEAD` get `200` with `application/x-ndjson`; another method gets `405`. At the
    /// stream limit, or when the hub is closed or unavailable, the answer is `503` with
    /// `Retry-After`. The first line is the resume outcome, then one line per event as it is
    /// published (each its own chunk or DATA frame, flushed at once), heartbeats when idle, and
    /// an `{"end":"shutdown",…}` line when the hub is closed.
    pub async fn respond<B>(&self, topic: &Topic, req: &Request<B>) -> Response<StreamBody> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut res = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "streams answer GET and HEAD only\n",
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
            Err(e) => return self.unavailable(&format!("{e}\n")),
        };
        let frames = Frames::new(sub, NdjsonFraming, self.config.heartbeat, Some(permit));
        let mut res = Response::new(StreamBody {
            kind: Kind::Stream(frames),
        });
        // Sized for the headers set here: hyper keeps a response's header map, emptied, for
        // the connection's life (to parse the next request into), so on a held stream its
        // capacity is resident per connection (about 0.6 KiB at the default growth, 0.3 here).
        let headers = res.headers_mut();
        *headers = http::HeaderMap::with_capacity(3);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        if self.config.accel_buffering_header {
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        res
    }

    fn unavailable(&self, reason: &str) -> Response<StreamBody> {
        let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, reason);
        res.headers_mut().insert(
            RETRY_AFTER,
            HeaderValue::from(self.config.retry_after.as_secs().max(1)),
        );
        res
    }
}

fn plain(status: StatusCode, text: &str) -> Response<StreamBody> {
    let mut res = Response::new(StreamBody {
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
struct NdjsonFraming;

impl Framing for NdjsonFraming {
    fn start(&self, outcome: Outcome, cursor: Cursor) -> Bytes {
        outcome_line(outcome, cursor)
    }

    fn event(&self, event: &Event) -> Bytes {
        event_line(event)
    }

    fn gap(&self, missed: u64, cursor: Cursor) -> Bytes {
        outcome_line(Outcome::Gap { missed }, cursor)
    }

    fn heartbeat(&self) -> Bytes {
        heartbeat_line()
    }

    fn end(&self, cursor: Cursor) -> Bytes {
        end_line(cursor)
    }
}

/// The response body of [`Streamer::respond`]: the NDJSON stream, or a short text for an error.
pub struct StreamBody {
    kind: Kind,
}

enum Kind {
    Stream(Frames<NdjsonFraming>),
    Full(Option<Bytes>),
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Stream(frames) => f
                .debug_struct("StreamBody")
                .field("cursor", &frames.cursor())
                .finish(),
            Kind::Full(_) => f.debug_struct("StreamBody").finish_non_exhaustive(),
        }
    }
}

impl Body for StreamBody {
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
