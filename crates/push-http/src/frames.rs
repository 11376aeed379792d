//! Turning a subscription into a stream of encoded frames: the engine shared by the techniques
//! that keep one response open (SSE, HTTP streaming, HTTP/2 push).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use push_core::{Cursor, Delivery, Event, Hub, Outcome, Subscription, Topic};

use crate::Permit;

/// How a technique writes each part of a long-lived stream. Implementations are small and
/// stateless; [`Frames`] decides when each part is written.
pub trait Framing: Send + Unpin + 'static {
    /// The first bytes of the stream: anything the format wants up front (an SSE `retry:`
    /// hint), and the start [`Outcome`] with the subscription's position.
    fn start(&self, outcome: Outcome, cursor: Cursor) -> Bytes;
    /// One event. Use [`Event::encoded`] so a fan-out encodes each event once.
    fn event(&self, event: &Event) -> Bytes;
    /// A gap met mid-stream: `missed` events left retention before they were read.
    fn gap(&self, missed: u64, cursor: Cursor) -> Bytes;
    /// A heartbeat, written when nothing else was written for the heartbeat period.
    fn heartbeat(&self) -> Bytes;
    /// Written instead of a [`heartbeat`](Self::heartbeat) while the hub's backend is not
    /// available ([`Hub::is_available`]: a shared store not answering), on streams that
    /// watch their hub ([`Frames::watch_hub`]): it keeps the connection alive as a heartbeat
    /// does, and tells a client that reads it why nothing comes. The stream stays open and
    /// goes on from its position when the backend is back. The default is the heartbeat.
    fn away(&self) -> Bytes {
        self.heartbeat()
    }
    /// The goodbye written before the stream ends, for `reason`.
    fn end(&self, reason: End, cursor: Cursor) -> Bytes;

    /// For a request following several topics ([`open_streams`](crate::open_streams)): the
    /// first bytes, with every topic's start outcome and cursor; `position` is the combined
    /// cursor ([`crate::multi`]). The default writes [`start`](Self::start) for the first
    /// topic only: override all four `multi_` methods to serve several topics.
    fn multi_start(
        &self,
        topics: &[(Topic, Outcome, Cursor)],
        position: &crate::multi::Position<'_>,
    ) -> Bytes {
        let _ = position;
        topics
            .first()
            .map(|(_, outcome, cursor)| self.start(*outcome, *cursor))
            .unwrap_or_default()
    }

    /// One event of one of several topics, with the combined cursor after it. The default is
    /// [`event`](Self::event).
    fn multi_event(&self, event: &Event, position: &crate::multi::Position<'_>) -> Bytes {
        let _ = position;
        self.event(event)
    }

    /// A gap met mid-stream on one of several topics, or that topic completing (`missed`
    /// `None`). The default writes gaps with [`gap`](Self::gap) and nothing for a completion.
    fn multi_topic(
        &self,
        topic: &Topic,
        missed: Option<u64>,
        cursor: Cursor,
        position: &crate::multi::Position<'_>,
    ) -> Bytes {
        let _ = (topic, position);
        missed
            .map(|missed| self.gap(missed, cursor))
            .unwrap_or_default()
    }

    /// The goodbye of a stream of several topics. The default writes nothing.
    fn multi_end(&self, reason: End, position: &crate::multi::Position<'_>) -> Bytes {
        let _ = (reason, position);
        Bytes::new()
    }
}

/// Why the server ends a long-lived stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The hub closed (graceful shutdown): reconnect, to this server or another, and resume.
    Shutdown,
    /// The client's credentials expired ([`Grant::expires`](crate::Grant::expires)):
    /// reconnecting needs fresh ones.
    Expired,
    /// The topic is complete ([`Hub::complete`](push_core::Hub::complete)) and every event
    /// was sent: there is nothing more to reconnect for.
    Complete,
}

impl End {
    /// `"shutdown"`, `"expired"` or `"complete"`: the name JSON end lines carry.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            End::Shutdown => "shutdown",
            End::Expired => "expired",
            End::Complete => "complete",
        }
    }
}

/// The timers of a long-lived stream: the heartbeat and the credentials' end.
///
/// Events cost the heartbeat nothing: a timer ticks every half period and a heartbeat goes out
/// on a tick that finds no frame handed out since the previous one, instead of a timer reset (a
/// clock read and a timer-wheel update) per event and subscriber. Whether the backend is away
/// is asked only then: one call to [`Hub::is_available`] (an atomic load) per silent tick, no
/// waker or channel per stream.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Ticks every half heartbeat period while heartbeats are on.
    heartbeat: Option<Interval>,
    /// Whether a frame was handed out since the last tick.
    active: bool,
    /// When the client's credentials expire; boxed, as only authorized streams have one.
    expiry: Option<Pin<Box<Sleep>>>,
    /// The hub whose availability a due heartbeat reports ([`Framing::away`]).
    hub: Option<Hub>,
}

/// What a due heartbeat writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// [`Framing::heartbeat`].
    Heartbeat,
    /// [`Framing::away`]: the hub's backend is not available.
    Away,
}

impl Timers {
    pub(crate) fn new(heartbeat: Option<Duration>) -> Self {
        let heartbeat = heartbeat.filter(|d| !d.is_zero()).map(|period| {
            let half = (period / 2).max(Duration::from_millis(1));
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            heartbeat,
            active: true,
            expiry: None,
            hub: None,
        }
    }

    /// Heartbeats due while `hub` is not available are [`Beat::Away`].
    pub(crate) fn watch_hub(&mut self, hub: &Hub) {
        self.hub = Some(hub.clone());
    }

    pub(crate) fn expire_at(&mut self, deadline: Option<Instant>) {
        self.expiry = deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
    }

    /// Whether the credentials' end has come.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.expiry
            .as_mut()
            .is_some_and(|expiry| expiry.as_mut().poll(cx).is_ready())
    }

    /// The heartbeat due now (when nothing else is ready), if any.
    pub(crate) fn poll_heartbeat(&mut self, cx: &mut Context<'_>) -> Option<Beat> {
        let interval = self.heartbeat.as_mut()?;
        // Every tick that passes registers the waker for the next one.
        while interval.poll_tick(cx).is_ready() {
            if !std::mem::replace(&mut self.active, false) {
                self.active = true;
                let away = self.hub.as_ref().is_some_and(|hub| !hub.is_available());
                return Some(if away { Beat::Away } else { Beat::Heartbeat });
            }
        }
        None
    }

    /// A frame was handed out.
    pub(crate) fn touch(&mut self) {
        self.active = true;
    }
}

impl Beat {
    /// The frame `framing` writes for this beat.
    pub(crate) fn frame<F: Framing>(self, framing: &F) -> Bytes {
        match self {
            Beat::Heartbeat => framing.heartbeat(),
            Beat::Away => framing.away(),
        }
    }
}

/// A [`Subscription`] as a stream of encoded frames: the start outcome, then events and gaps as
/// they come, heartbeats when idle (or [`Framing::away`] while the hub's backend is away, once
/// told of the hub with [`watch_hub`](Self::watch_hub)), and a goodbye when the hub closes, the
/// topic is complete, or the client's grant expires ([`expire_at`](Self::expire_at)).
///
/// Each event's bytes come from [`Framing::event`], shared between all streams when the framing
/// uses [`Event::encoded`]; nothing is buffered beyond the frame being handed out, so a client
/// that stops reading costs only its position in the log (and gets a gap if it falls behind
/// retention).
#[derive(Debug)]
pub struct Frames<F> {
    sub: Subscription,
    framing: F,
    timers: Timers,
    state: State,
    meters: crate::Meters,
    _permit: Option<Permit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Start,
    Streaming,
    Done,
}

impl<F: Framing> Frames<F> {
    /// Frames `sub` with `framing`, writing a heartbeat when the stream has been silent for
    /// between half of `heartbeat` and `heartbeat` (`None` turns heartbeats off), so it is
    /// never silent longer than `heartbeat`. `permit` is released when the stream is dropped.
    ///
    /// # Panics
    ///
    /// When a heartbeat period is given outside a tokio runtime (the timer needs one).
    #[must_use]
    pub fn new(
        sub: Subscription,
        framing: F,
        heartbeat: Option<Duration>,
        permit: Option<Permit>,
    ) -> Self {
        Self {
            sub,
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

    /// Ends the stream at `deadline` with [`End::Expired`] (`None`: no end).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when `deadline` is set.
    pub fn expire_at(&mut self, deadline: Option<Instant>) {
        self.timers.expire_at(deadline);
    }

    /// Writes [`Framing::away`] instead of a heartbeat while `hub` is not available
    /// ([`Hub::is_available`], asked once per silent heartbeat tick), so that a client learns
    /// why nothing comes while a shared store is unreachable. The stream stays open and goes
    /// on from its position when the store is back. Holds a clone of `hub` for the stream's
    /// life.
    #[must_use]
    pub fn watch_hub(mut self, hub: &Hub) -> Self {
        self.timers.watch_hub(hub);
        self
    }

    /// The subscription's position: the cursor of the last event handed out.
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        self.sub.cursor()
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
                self.meters.outcome(self.sub.outcome());
                return Poll::Ready(Some(
                    self.framing.start(self.sub.outcome(), self.sub.cursor()),
                ));
            }
            State::Streaming => {}
        }
        if self.timers.poll_expired(cx) {
            self.state = State::Done;
            return Poll::Ready(Some(self.framing.end(End::Expired, self.sub.cursor())));
        }
        let frame = match self.sub.poll_recv(cx) {
            Poll::Ready(Some(Delivery::Event(event))) => {
                self.meters.delivered(1, 0);
                self.framing.event(&event)
            }
            Poll::Ready(Some(Delivery::Gap { missed })) => {
                self.meters.outcome(Outcome::Gap { missed });
                self.framing.gap(missed, self.sub.cursor())
            }
            Poll::Ready(Some(Delivery::Complete)) => {
                self.state = State::Done;
                let end = self.framing.end(End::Complete, self.sub.cursor());
                return Poll::Ready(Some(end));
            }
            // A delivery this version does not know: nothing to write for it.
            Poll::Ready(Some(_)) => Bytes::new(),
            Poll::Ready(None) => {
                self.state = State::Done;
                let end = self.framing.end(End::Shutdown, self.sub.cursor());
                return Poll::Ready(Some(end));
            }
            Poll::Pending => {
                return match self.timers.poll_heartbeat(cx) {
                    Some(beat) => Poll::Ready(Some(beat.frame(&self.framing))),
                    None => Poll::Pending,
                };
            }
        };
        self.timers.touch();
        Poll::Ready(Some(frame))
    }
}

impl<F: Framing> futures_core::Stream for Frames<F> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.get_mut().poll_frame(cx)
    }
}
