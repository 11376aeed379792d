//! The response body of a long-lived stream.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use push_core::Event;
use tokio::time::Instant;

use super::framing::Framing;
use super::many::MultiFrames;
use super::one::Frames;

/// The body of a stream answer ([`Endpoint::stream`](crate::Endpoint::stream) and
/// [`stream_topics`](crate::Endpoint::stream_topics)): the frames of one topic or of several,
/// or a short complete answer (an error's text, made with `StreamBody::from(bytes)`).
///
/// Each event is a frame holding bytes shared with every other stream of the same event (when
/// the [`Framing`] uses [`Event::encoded`]); there is no per-event boxing or copying on this
/// path. The place the stream holds under its endpoint's limits is released when the body is
/// dropped.
pub struct StreamBody<F> {
    kind: Kind<F>,
}

enum Kind<F> {
    One(Frames<F>),
    Many(MultiFrames<F>),
    Full(Option<Bytes>),
}

impl<F> StreamBody<F> {
    pub(crate) fn one(frames: Frames<F>) -> Self {
        Self {
            kind: Kind::One(frames),
        }
    }

    pub(crate) fn many(frames: MultiFrames<F>) -> Self {
        Self {
            kind: Kind::Many(frames),
        }
    }
}

impl<F: Framing> StreamBody<F> {
    /// Ends a streaming body at `deadline` with [`End::Expired`](crate::End::Expired); a
    /// complete answer is left as it is.
    pub(crate) fn expire_at(&mut self, deadline: Option<Instant>) {
        match &mut self.kind {
            Kind::One(frames) => frames.expire_at(deadline),
            Kind::Many(frames) => frames.expire_at(deadline),
            Kind::Full(_) => {}
        }
    }

    /// Polls for the next frame, with the event it carries when it is one (`None` for a start,
    /// gap, heartbeat or goodbye frame); `Ready(None)` at the end. A driver that delivers
    /// events its own way (HTTP/2 server push) sends the event and drops its frame; the
    /// [`Body`] impl sends every frame.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Bytes, Option<Arc<Event>>)>> {
        let (polled, meters) = match &mut self.kind {
            Kind::One(frames) => (frames.poll_next(cx), frames.meters()),
            Kind::Many(frames) => (frames.poll_next(cx), frames.meters()),
            Kind::Full(data) => return Poll::Ready(data.take().map(|b| (b, None))),
        };
        if let Poll::Ready(Some((frame, _))) = &polled {
            meters.delivered(0, frame.len());
        }
        polled
    }
}

impl<F> From<Bytes> for StreamBody<F> {
    fn from(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(Some(bytes)),
        }
    }
}

impl<F: Framing> fmt::Debug for StreamBody<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("StreamBody");
        match &self.kind {
            Kind::One(frames) => out.field("cursor", &frames.cursor().to_string()),
            Kind::Many(frames) => out.field("cursor", &frames.position()),
            Kind::Full(_) => return out.finish_non_exhaustive(),
        };
        out.finish()
    }
}

impl<F: Framing> Body for StreamBody<F> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .poll_next(cx)
            .map(|next| next.map(|(frame, _)| Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |b| b.len() as u64)),
            _ => SizeHint::default(),
        }
    }
}
