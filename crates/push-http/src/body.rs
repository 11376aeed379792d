//! The long-lived answer SSE and NDJSON streaming share: a body over [`Frames`], and the
//! request handling around it.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Response};
use http_body::{Body, Frame, SizeHint};
use push_core::{Hub, StartFrom, Topic};

use crate::{method_not_allowed, unavailable, Frames, Framing, Limiter, Permit};

/// A response body: a stream of frames, or a short complete answer (an error's text).
///
/// Each event is a frame holding bytes shared with every other stream of the same event (when
/// the [`Framing`] uses [`Event::encoded`](push_core::Event::encoded)); there is no per-event
/// boxing or copying on this path.
pub struct FramedBody<F> {
    kind: Kind<F>,
}

enum Kind<F> {
    Stream(Frames<F>),
    Full(Option<Bytes>),
}

impl<F> FramedBody<F> {
    /// A body streaming `frames`.
    #[must_use]
    pub fn stream(frames: Frames<F>) -> Self {
        Self {
            kind: Kind::Stream(frames),
        }
    }
}

impl<F: Framing> FramedBody<F> {
    /// Ends a streaming body at `deadline` with [`End::Expired`](crate::End::Expired); a
    /// complete answer is left as it is. See [`Frames::expire_at`].
    pub fn expire_at(&mut self, deadline: Option<tokio::time::Instant>) {
        if let Kind::Stream(frames) = &mut self.kind {
            frames.expire_at(deadline);
        }
    }
}

impl<F> From<Bytes> for FramedBody<F> {
    fn from(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(Some(bytes)),
        }
    }
}

impl<F: Framing> fmt::Debug for FramedBody<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Stream(frames) => f
                .debug_struct("FramedBody")
                .field("cursor", &frames.cursor())
                .finish(),
            Kind::Full(_) => f.debug_struct("FramedBody").finish_non_exhaustive(),
        }
    }
}

impl<F: Framing> Body for FramedBody<F> {
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

/// How a long-lived stream endpoint answers, besides its [`Framing`].
///
/// | setting | default |
/// |---|---|
/// | [`content_type`](Self::content_type) | given to [`new`](Self::new) |
/// | [`cache_control`](Self::cache_control) | `no-cache, no-transform` |
/// | [`heartbeat`](Self::heartbeat) | after 15 s of silence |
/// | [`accel_buffering_header`](Self::accel_buffering_header) | `X-Accel-Buffering: no` sent |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamSettings {
    /// The `Content-Type` of the stream.
    pub content_type: &'static str,
    /// The `Cache-Control` of the stream (`no-transform` keeps proxies from recompressing or
    /// buffering it).
    pub cache_control: &'static str,
    /// The silence after which [`Framing::heartbeat`] is written; `None` sends none.
    pub heartbeat: Option<Duration>,
    /// Whether to send `X-Accel-Buffering: no`, which stops nginx from buffering the stream.
    pub accel_buffering_header: bool,
    /// The `Retry-After` sent with `503`.
    pub retry_after: Duration,
    /// Whether a request on a complete topic with nothing left to send is answered
    /// `204 No Content` instead of a stream that only says so: what stops a browser's
    /// `EventSource` from reconnecting (WHATWG HTML, server-sent events).
    pub no_content_when_finished: bool,
    /// Where the streams count what they write.
    pub meters: crate::Meters,
}

impl StreamSettings {
    /// The defaults, with `content_type`.
    #[must_use]
    pub fn new(content_type: &'static str) -> Self {
        Self {
            content_type,
            cache_control: "no-cache, no-transform",
            heartbeat: Some(Duration::from_secs(15)),
            accel_buffering_header: true,
            retry_after: Duration::from_secs(5),
            no_content_when_finished: false,
            meters: crate::Meters::default(),
        }
    }
}

/// The place a stream request takes under `limiter` (see [`Limiter::admit`]), after its
/// method: `405` (with `Allow: GET, HEAD`) for another method than `GET` or `HEAD` comes first,
/// so a wrong method is told so whatever the limits, and never holds a place.
///
/// # Errors
///
/// The `405`, or the limiter's `429`/`503`.
pub fn admit_stream<B: From<Bytes>>(
    limiter: &Limiter,
    parts: &http::request::Parts,
    grant: &crate::Grant,
    topics: usize,
    retry_after: Duration,
) -> Result<Permit, Response<B>> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(method_not_allowed(
            "GET, HEAD",
            "streams answer GET and HEAD only\n",
        ));
    }
    limiter.admit(parts, grant, topics, retry_after)
}

/// Answers a stream request: `405` (with `Allow: GET, HEAD`) for another method than `GET` or
/// `HEAD`, `503` with `Retry-After` when the hub refuses the subscription (closed, at its topic
/// cap, unreachable), else `200` with a [`FramedBody`] over the subscription from `from`,
/// holding `permit` (the place the caller took from its [`Limiter`](crate::Limiter), see
/// [`Limiter::acquire`](crate::Limiter::acquire)) until the body is dropped.
pub async fn open_stream<F: Framing>(
    hub: &Hub,
    permit: Permit,
    method: &Method,
    topic: &Topic,
    from: StartFrom,
    framing: F,
    settings: &StreamSettings,
) -> Response<FramedBody<F>> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD", "streams answer GET and HEAD only\n");
    }
    let sub = match hub.subscribe(topic, from).await {
        Ok(sub) => sub,
        Err(e) => return unavailable(settings.retry_after, &format!("{e}\n")),
    };
    if settings.no_content_when_finished && sub.is_finished() {
        let mut res = Response::new(FramedBody::from(Bytes::new()));
        *res.status_mut() = http::StatusCode::NO_CONTENT;
        return res;
    }
    let frames = Frames::new(sub, framing, settings.heartbeat, Some(permit))
        .metered(settings.meters.clone())
        .watch_hub(hub);
    let mut res = Response::new(FramedBody::stream(frames));
    stream_headers(res.headers_mut(), settings);
    res
}

/// The headers of a long-lived stream.
pub(crate) fn stream_headers(headers: &mut http::HeaderMap, settings: &StreamSettings) {
    // Sized for the headers set here: hyper keeps a response's header map, emptied, for the
    // connection's life (to parse the next request into), so on a held stream its capacity is
    // resident per connection (about 0.6 KiB at the default growth, 0.3 here).
    *headers = http::HeaderMap::with_capacity(3);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(settings.content_type),
    );
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(settings.cache_control),
    );
    if settings.accel_buffering_header {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
}
