//! Several topics in one request (`?topic=a&topic=b`): the topics, one combined cursor, and
//! their subscriptions merged into one stream or one batch.
//!
//! # The combined cursor
//!
//! A request that follows topics `t1 … tn` has one cursor for all of them: each topic's cursor
//! ([`Cursor`]'s text), in the request's order, joined by `,`:
//!
//! ```text
//! 5f3a9c1e2b4d-42,5f3a9c1e2b50-7
//! ```
//!
//! It is what SSE sends as every event's `id:` (so a browser's `Last-Event-ID` resumes every
//! topic), and the `next` of a poll or long-poll answer. It is at most [`MAX_POSITION_LEN`]
//! bytes ([`MAX_TOPICS`] cursors of [`MAX_CURSOR_LEN`] and their commas), well under any
//! header limit. A combined cursor with another number of parts than the request has topics
//! (the client changed its topics) starts every topic over, as an invalid cursor does: a reset
//! for each, reported per topic.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use push_core::{Cursor, Delivery, Hub, Outcome, StartFrom, Subscription, Topic, MAX_CURSOR_LEN};

use crate::frames::{State, Timers};
use crate::{method_not_allowed, unavailable, End, Framing, Limiter, Permit, StreamSettings};

/// The most topics one request may follow, by default.
pub const MAX_TOPICS: usize = 16;

/// The longest combined cursor of [`MAX_TOPICS`] topics, in bytes.
pub const MAX_POSITION_LEN: usize = MAX_TOPICS * (MAX_CURSOR_LEN + 1);

/// The topics of a request's query parameter `param` (`?topic=a&topic=b`), in order, without
/// repeats.
///
/// ```
/// let req = http::Request::get("/sse?topic=a&topic=b&topic=a").body(()).unwrap();
/// let topics = push_http::multi::query_topics(req.uri(), "topic", 16).unwrap();
/// assert_eq!(topics.len(), 2);
/// ```
///
/// # Errors
///
/// A readable reason (for a `400`): no topic, more than `max`, or a name that is not valid.
pub fn query_topics(uri: &http::Uri, param: &str, max: usize) -> Result<Vec<Topic>, String> {
    let query = uri.query().unwrap_or("");
    let mut topics: Vec<Topic> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != param {
            continue;
        }
        let topic = Topic::new(&value).map_err(|e| format!("{param}: {e}"))?;
        if !topics.contains(&topic) {
            if topics.len() == max {
                return Err(format!("at most {max} topics per request"));
            }
            topics.push(topic);
        }
    }
    if topics.is_empty() {
        return Err(format!("name at least one topic: ?{param}=NAME"));
    }
    Ok(topics)
}

/// Where each of `n` topics starts, from a combined cursor (`None`: `default` for each). A
/// cursor with another number of parts than `n` is invalid for every topic (a reset each); an
/// empty part (`,C2`) starts that topic at `default`, as a client that has no cursor for it yet
/// sends.
#[must_use]
pub fn start_points(position: Option<&str>, n: usize, default: StartFrom) -> Vec<StartFrom> {
    let Some(text) = position.filter(|t| !t.is_empty()) else {
        return vec![default; n];
    };
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() != n || text.len() > n * (MAX_CURSOR_LEN + 1) {
        return vec![StartFrom::Invalid; n];
    }
    parts
        .into_iter()
        // An empty part: a topic the client has no cursor for yet starts like a fresh request.
        .map(|part| StartFrom::from_client(Some(part).filter(|p| !p.is_empty()), default))
        .collect()
}

/// The combined cursor of `subs`, in order.
#[must_use]
pub fn position(subs: &[Subscription]) -> String {
    Position(subs).to_string()
}

/// The combined cursor of a set of subscriptions, written when displayed: a framing that does
/// not put it on every event (NDJSON) costs nothing for it.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a>(&'a [Subscription]);

impl std::fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, sub) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", sub.cursor())?;
        }
        Ok(())
    }
}

/// Subscriptions to several topics read as one: deliveries in turn, so a busy topic does not
/// starve the others.
#[derive(Debug)]
pub struct Merged {
    subs: Vec<Subscription>,
    /// Per subscription: it ended (`Some(true)`: complete; `Some(false)`: closed).
    ended: Vec<Option<bool>>,
    next: usize,
}

impl Merged {
    /// Merges `subs`, in the request's order.
    #[must_use]
    pub fn new(subs: Vec<Subscription>) -> Self {
        let ended = vec![None; subs.len()];
        Self {
            subs,
            ended,
            next: 0,
        }
    }

    /// The subscriptions.
    #[must_use]
    pub fn subs(&self) -> &[Subscription] {
        &self.subs
    }

    /// The combined cursor.
    #[must_use]
    pub fn position(&self) -> Position<'_> {
        Position(&self.subs)
    }

    /// Whether every topic completed (rather than the hub closing).
    #[must_use]
    pub fn all_complete(&self) -> bool {
        self.ended.iter().all(|e| *e == Some(true))
    }

    /// The next delivery of any topic with its index; `Ready(None)` once every subscription
    /// ended (each complete, or the hub closed).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Delivery)>> {
        let n = self.subs.len();
        for step in 0..n {
            let i = (self.next + step) % n;
            if self.ended[i].is_some() {
                continue;
            }
            match self.subs[i].poll_recv(cx) {
                Poll::Ready(Some(delivery)) => {
                    if matches!(delivery, Delivery::Complete) {
                        self.ended[i] = Some(true);
                    }
                    self.next = (i + 1) % n;
                    return Poll::Ready(Some((i, delivery)));
                }
                Poll::Ready(None) => self.ended[i] = Some(false),
                Poll::Pending => {}
            }
        }
        if self.ended.iter().all(Option::is_some) {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// Several subscriptions as one stream of frames, through the `multi_` methods of a
/// [`Framing`]: every topic's start outcome, then events (each with the combined cursor after
/// it), per-topic gaps and completions, heartbeats, and one goodbye.
#[derive(Debug)]
pub struct MultiFrames<F> {
    merged: Merged,
    framing: F,
    timers: Timers,
    state: State,
    meters: crate::Meters,
    _permit: Option<Permit>,
}

impl<F: Framing> MultiFrames<F> {
    /// Frames `subs` with `framing`; see [`Frames::new`](crate::Frames::new).
    ///
    /// # Panics
    ///
    /// When a heartbeat period is given outside a tokio runtime.
    #[must_use]
    pub fn new(
        subs: Vec<Subscription>,
        framing: F,
        heartbeat: Option<Duration>,
        permit: Option<Permit>,
    ) -> Self {
        Self {
            merged: Merged::new(subs),
            framing,
            timers: Timers::new(heartbeat),
            state: State::Start,
            meters: crate::Meters::default(),
            _permit: permit,
        }
    }

    /// Counts what the stream writes in `meters`.
    #[must_use]
    pub fn metered(mut self, meters: crate::Meters) -> Self {
        self.meters = meters;
        self
    }

    /// Ends the stream at `deadline` with [`End::Expired`].
    pub fn expire_at(&mut self, deadline: Option<tokio::time::Instant>) {
        self.timers.expire_at(deadline);
    }

    /// Writes [`Framing::away`] instead of a heartbeat while `hub` is not available; see
    /// [`Frames::watch_hub`](crate::Frames::watch_hub).
    #[must_use]
    pub fn watch_hub(mut self, hub: &Hub) -> Self {
        self.timers.watch_hub(hub);
        self
    }

    /// Polls for the next frame; `Ready(None)` after the goodbye.
    pub fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let polled = self.poll_inner(cx);
        if let Poll::Ready(Some(frame)) = &polled {
            self.meters.delivered(0, frame.len());
        }
        polled
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.state {
            State::Done => return Poll::Ready(None),
            State::Start => {
                self.state = State::Streaming;
                let topics: Vec<(Topic, Outcome, Cursor)> = self
                    .merged
                    .subs()
                    .iter()
                    .map(|s| (s.topic().clone(), s.outcome(), s.cursor()))
                    .collect();
                for (_, outcome, _) in &topics {
                    self.meters.outcome(*outcome);
                }
                let start = self.framing.multi_start(&topics, &self.merged.position());
                return Poll::Ready(Some(start));
            }
            State::Streaming => {}
        }
        if self.timers.poll_expired(cx) {
            self.state = State::Done;
            let end = self
                .framing
                .multi_end(End::Expired, &self.merged.position());
            return Poll::Ready(Some(end));
        }
        let (i, delivery) = match self.merged.poll_recv(cx) {
            Poll::Ready(Some(ready)) => ready,
            Poll::Ready(None) => {
                self.state = State::Done;
                let reason = if self.merged.all_complete() {
                    End::Complete
                } else {
                    End::Shutdown
                };
                return Poll::Ready(Some(
                    self.framing.multi_end(reason, &self.merged.position()),
                ));
            }
            Poll::Pending => {
                return match self.timers.poll_heartbeat(cx) {
                    Some(beat) => Poll::Ready(Some(beat.frame(&self.framing))),
                    None => Poll::Pending,
                };
            }
        };
        let position = self.merged.position();
        let sub = &self.merged.subs()[i];
        let frame = match delivery {
            Delivery::Event(event) => {
                self.meters.delivered(1, 0);
                self.framing.multi_event(&event, &position)
            }
            Delivery::Gap { missed } => {
                self.meters.outcome(Outcome::Gap { missed });
                self.framing
                    .multi_topic(sub.topic(), Some(missed), sub.cursor(), &position)
            }
            Delivery::Complete => {
                self.framing
                    .multi_topic(sub.topic(), None, sub.cursor(), &position)
            }
            _ => Bytes::new(),
        };
        self.timers.touch();
        Poll::Ready(Some(frame))
    }
}

/// The response body of a request following several topics: a stream of frames, or a short
/// complete answer (an error's text).
#[derive(Debug)]
pub struct MultiBody<F> {
    frames: Option<MultiFrames<F>>,
    full: Option<Bytes>,
}

impl<F> From<Bytes> for MultiBody<F> {
    fn from(bytes: Bytes) -> Self {
        Self {
            frames: None,
            full: Some(bytes),
        }
    }
}

impl<F: Framing> MultiBody<F> {
    /// Ends a streaming body at `deadline` with [`End::Expired`].
    pub fn expire_at(&mut self, deadline: Option<tokio::time::Instant>) {
        if let Some(frames) = &mut self.frames {
            frames.expire_at(deadline);
        }
    }
}

impl<F: Framing> Body for MultiBody<F> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match &mut this.frames {
            Some(frames) => frames.poll_frame(cx).map(|f| f.map(|b| Ok(Frame::data(b)))),
            None => Poll::Ready(this.full.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_none() && self.full.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.frames, &self.full) {
            (None, Some(b)) => SizeHint::with_exact(b.len() as u64),
            (None, None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// A stream endpoint's whole answer for several topics once it knows where each starts: the
/// access check ([`check_read_all`](crate::check_read_all): `401`/`403`), [`open_streams`],
/// and the stream's end at the grant's.
#[allow(clippy::too_many_arguments)]
pub async fn answer_streams<F: Framing>(
    hub: &Hub,
    limiter: &Limiter,
    authorizer: Option<&crate::Authorizer>,
    parts: &http::request::Parts,
    topics: &[Topic],
    from: &[StartFrom],
    framing: F,
    settings: &StreamSettings,
) -> http::Response<MultiBody<F>> {
    let grant = match crate::check_read_all(authorizer, parts, topics).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let permit =
        match crate::admit_stream(limiter, parts, &grant, topics.len(), settings.retry_after) {
            Ok(permit) => permit,
            Err(res) => return res,
        };
    let mut res = open_streams(hub, permit, &parts.method, topics, from, framing, settings).await;
    res.body_mut().expire_at(grant.deadline());
    res
}

/// Subscribes to every topic from its start point; the first refusal's `503`.
///
/// # Errors
///
/// The hub's error for the first topic it refused.
pub async fn subscribe_all(
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

/// [`open_stream`](crate::open_stream) for several topics: `405`, `503` when the hub refuses a
/// subscription, `204` when [`StreamSettings::no_content_when_finished`] and every topic is
/// complete with nothing left, else `200` with a [`MultiBody`] holding `permit`.
pub async fn open_streams<F: Framing>(
    hub: &Hub,
    permit: Permit,
    method: &Method,
    topics: &[Topic],
    from: &[StartFrom],
    framing: F,
    settings: &StreamSettings,
) -> http::Response<MultiBody<F>> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD", "streams answer GET and HEAD only\n");
    }
    let subs = match subscribe_all(hub, topics, from).await {
        Ok(subs) => subs,
        Err(e) => return unavailable(settings.retry_after, &format!("{e}\n")),
    };
    if settings.no_content_when_finished && subs.iter().all(Subscription::is_finished) {
        let mut res = http::Response::new(MultiBody::from(Bytes::new()));
        *res.status_mut() = http::StatusCode::NO_CONTENT;
        return res;
    }
    let frames = MultiFrames::new(subs, framing, settings.heartbeat, Some(permit))
        .metered(settings.meters.clone())
        .watch_hub(hub);
    let mut res = http::Response::new(MultiBody {
        frames: Some(frames),
        full: None,
    });
    crate::body::stream_headers(res.headers_mut(), settings);
    res
}

/// One answer for several topics: each topic's outcome and position, their events, the
/// combined cursor to ask from next.
#[derive(Debug, Clone)]
pub struct MultiBatch {
    /// Per topic, in the request's order: its outcome in this answer and its cursor after it.
    pub topics: Vec<(Topic, Outcome, Cursor)>,
    /// The events of every topic, in publish order.
    pub events: Vec<std::sync::Arc<push_core::Event>>,
    /// The combined cursor to ask from next.
    pub next: String,
    /// Events were left for the next request (a limit was reached).
    pub more: bool,
    /// Every topic is complete and this answer reached each one's end.
    pub complete: bool,
}

/// What every subscription has now, within `limit` in all; `first` is a batch already read
/// from the subscription at its index. `None` once the hub is closed.
fn gather(
    subs: &mut [Subscription],
    mut first: Option<(usize, push_core::Batch)>,
    limit: push_core::BatchLimit,
) -> Option<MultiBatch> {
    let (mut events, mut bytes) = (0usize, 0usize);
    let mut batches = Vec::with_capacity(subs.len());
    let mut more = false;
    for (i, sub) in subs.iter_mut().enumerate() {
        let batch = match first.take_if(|(at, _)| *at == i) {
            Some((_, batch)) => batch,
            None => {
                let left = push_core::BatchLimit::new(
                    limit.events.saturating_sub(events).max(1),
                    limit.bytes.saturating_sub(bytes).max(1),
                    limit.size,
                );
                sub.try_batch(left)?
            }
        };
        events += batch.events.len();
        bytes += batch.events.iter().map(|e| (limit.size)(e)).sum::<usize>();
        more |= batch.cut || events >= limit.events;
        batches.push(batch);
    }
    let complete = batches.iter().all(|b| b.complete);
    let topics = subs
        .iter()
        .zip(&batches)
        .map(|(sub, b)| (sub.topic().clone(), b.outcome, sub.cursor()))
        .collect();
    let mut all: Vec<_> = batches.into_iter().flat_map(|b| b.events).collect();
    all.sort_by_key(|e| e.published_at());
    Some(MultiBatch {
        topics,
        events: all,
        next: position(subs),
        more,
        complete,
    })
}

/// What the subscriptions hold now, without waiting; `None` once the hub is closed.
pub fn try_batch_all(
    subs: &mut [Subscription],
    limit: impl Into<push_core::BatchLimit>,
) -> Option<MultiBatch> {
    gather(subs, None, limit.into())
}

/// Waits until any subscription has events, an outcome to tell, or its end, then answers with
/// what every one of them holds (long-poll); `None` once the hub is closed.
pub async fn next_batch_all(
    subs: &mut [Subscription],
    limit: impl Into<push_core::BatchLimit>,
) -> Option<MultiBatch> {
    let limit = limit.into();
    let first = std::future::poll_fn(|cx| {
        for (i, sub) in subs.iter_mut().enumerate() {
            match sub.poll_batch(cx, limit) {
                Poll::Ready(Some(batch)) => return Poll::Ready(Some((i, batch))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await?;
    gather(subs, Some(first), limit)
}
