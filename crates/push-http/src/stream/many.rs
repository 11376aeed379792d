//! Several subscriptions as one stream of frames.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use push_core::{Cursor, Delivery, Event, Hub, Outcome, Subscription, Topic};
use tokio::time::Instant;

use super::framing::{End, Framing};
use super::timers::Timers;
use super::State;
use crate::access::Permit;
use crate::logs;
use crate::meters::Meters;
use crate::topics::Position;

/// Subscriptions to several topics read as one: deliveries in turn, so a busy topic does not
/// starve the others.
#[derive(Debug)]
struct Merged {
    subs: Vec<Subscription>,
    /// Per subscription: it ended (`Some(true)`: complete; `Some(false)`: closed).
    ended: Vec<Option<bool>>,
    next: usize,
}

impl Merged {
    /// Merges `subs`, in the request's order.
    #[must_use]
    fn new(subs: Vec<Subscription>) -> Self {
        let ended = vec![None; subs.len()];
        Self {
            subs,
            ended,
            next: 0,
        }
    }

    /// The subscriptions.
    #[must_use]
    fn subs(&self) -> &[Subscription] {
        &self.subs
    }

    /// The combined cursor.
    #[must_use]
    fn position(&self) -> Position<'_> {
        Position(&self.subs)
    }

    /// Whether every topic completed (rather than the hub closing).
    #[must_use]
    fn all_complete(&self) -> bool {
        self.ended.iter().all(|e| *e == Some(true))
    }

    /// The next delivery of any topic with its index; `Ready(None)` once every subscription
    /// ended (each complete, or the hub closed).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Delivery)>> {
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
pub(crate) struct MultiFrames<F> {
    merged: Merged,
    framing: F,
    timers: Timers,
    state: State,
    meters: Meters,
    _permit: Permit,
}

impl<F: Framing> MultiFrames<F> {
    /// Frames `subs` with `framing`; see [`Frames::new`](super::one::Frames::new).
    pub(crate) fn new(
        subs: Vec<Subscription>,
        framing: F,
        heartbeat: Option<Duration>,
        hub: &Hub,
        meters: Meters,
        permit: Permit,
    ) -> Self {
        Self {
            merged: Merged::new(subs),
            framing,
            timers: Timers::new(heartbeat, hub),
            state: State::Start,
            meters,
            _permit: permit,
        }
    }

    /// Ends the stream at `deadline` with [`End::Expired`].
    pub(crate) fn expire_at(&mut self, deadline: Option<Instant>) {
        self.timers.expire_at(deadline);
    }

    /// The combined cursor.
    pub(crate) fn position(&self) -> String {
        self.merged.position().to_string()
    }

    /// The meters the body counts its frames' bytes on.
    pub(crate) fn meters(&self) -> &Meters {
        &self.meters
    }

    /// Polls for the next frame, with the event it carries when it is one; `Ready(None)`
    /// after the goodbye.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(Bytes, Option<Arc<Event>>)>> {
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
                return Poll::Ready(Some((start, None)));
            }
            State::Streaming => {}
        }
        if self.timers.poll_expired(cx) {
            return Poll::Ready(Some((self.end(End::Expired), None)));
        }
        let (i, delivery) = match self.merged.poll_recv(cx) {
            Poll::Ready(Some(ready)) => ready,
            Poll::Ready(None) => {
                let end = if self.merged.all_complete() {
                    End::Complete
                } else {
                    End::Shutdown
                };
                return Poll::Ready(Some((self.end(end), None)));
            }
            Poll::Pending => {
                return match self.timers.poll_heartbeat(cx) {
                    Some(beat) => Poll::Ready(Some((beat.frame(&self.framing), None))),
                    None => Poll::Pending,
                };
            }
        };
        let position = self.merged.position();
        let sub = &self.merged.subs()[i];
        let next = match delivery {
            Delivery::Event(event) => {
                self.meters.delivered(1, 0);
                (self.framing.multi_event(&event, &position), Some(event))
            }
            Delivery::Gap { missed } => {
                let outcome = Outcome::Gap { missed };
                self.meters.outcome(outcome);
                let from = logs::before_gap(sub.cursor(), missed);
                logs::told(self.meters.technique(), sub.topic(), from, outcome);
                let frame =
                    self.framing
                        .multi_topic(sub.topic(), Some(missed), sub.cursor(), &position);
                (frame, None)
            }
            Delivery::Complete => {
                let frame = self
                    .framing
                    .multi_topic(sub.topic(), None, sub.cursor(), &position);
                (frame, None)
            }
        };
        self.timers.touch();
        Poll::Ready(Some(next))
    }

    /// The goodbye for `end`, [logged](crate::logs); the stream is done after it.
    fn end(&mut self, end: End) -> Bytes {
        self.state = State::Done;
        let position = self.merged.position();
        let reason = self.timers.reason(end);
        let topics = logs::Subscribed(self.merged.subs());
        logs::closed(self.meters.technique(), &topics, reason, &position);
        self.framing.multi_end(end, &position)
    }
}

/// A stream dropped before its goodbye: its client went away.
#[cfg(feature = "tracing")]
impl<F> Drop for MultiFrames<F> {
    fn drop(&mut self) {
        if self.state != State::Done {
            let topics = logs::Subscribed(self.merged.subs());
            let position = self.merged.position();
            logs::closed(self.meters.technique(), &topics, "gone", &position);
        }
    }
}
