//! One subscription as a stream of encoded frames.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use push_core::{Delivery, Event, Hub, Outcome, Subscription};
use tokio::time::Instant;

use super::framing::{End, Framing};
use super::timers::Timers;
use super::State;
use crate::access::Permit;
use crate::logs;
use crate::meters::Meters;

/// A [`Subscription`] as a stream of encoded frames: the start outcome, then events and gaps as
/// they come, heartbeats when idle (or [`Framing::away`] while the hub's backend is away), and
/// a goodbye when the hub closes, the topic is complete, or the client's grant expires.
///
/// Each event's bytes come from [`Framing::event`], shared between all streams when the framing
/// uses [`Event::encoded`]; nothing is buffered beyond the frame being handed out, so a client
/// that stops reading costs only its position in the log (and gets a gap if it falls behind
/// retention).
#[derive(Debug)]
pub(crate) struct Frames<F> {
    sub: Subscription,
    framing: F,
    timers: Timers,
    state: State,
    meters: Meters,
    _permit: Permit,
}

impl<F: Framing> Frames<F> {
    /// Frames `sub` with `framing`, writing a heartbeat when the stream has been silent for
    /// between half of `heartbeat` and `heartbeat` (`None` turns heartbeats off), and
    /// [`Framing::away`] instead while `hub` is not available. `permit` is released when the
    /// stream is dropped.
    pub(crate) fn new(
        sub: Subscription,
        framing: F,
        heartbeat: Option<Duration>,
        hub: &Hub,
        meters: Meters,
        permit: Permit,
    ) -> Self {
        Self {
            sub,
            framing,
            timers: Timers::new(heartbeat, hub),
            state: State::Start,
            meters,
            _permit: permit,
        }
    }

    /// Ends the stream at `deadline` with [`End::Expired`] (`None`: no end).
    pub(crate) fn expire_at(&mut self, deadline: Option<Instant>) {
        self.timers.expire_at(deadline);
    }

    /// The subscription's position: the cursor of the last event handed out.
    pub(crate) fn cursor(&self) -> push_core::Cursor {
        self.sub.cursor()
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
                self.meters.outcome(self.sub.outcome());
                let start = self.framing.start(self.sub.outcome(), self.sub.cursor());
                return Poll::Ready(Some((start, None)));
            }
            State::Streaming => {}
        }
        if self.timers.poll_expired(cx) {
            return Poll::Ready(Some((self.end(End::Expired), None)));
        }
        let next = match self.sub.poll_recv(cx) {
            Poll::Ready(Some(Delivery::Event(event))) => {
                self.meters.delivered(1, 0);
                (self.framing.event(&event), Some(event))
            }
            Poll::Ready(Some(Delivery::Gap { missed })) => {
                let outcome = Outcome::Gap { missed };
                self.meters.outcome(outcome);
                let (topic, cursor) = (self.sub.topic(), self.sub.cursor());
                logs::told(
                    self.meters.technique(),
                    topic,
                    logs::before_gap(cursor, missed),
                    outcome,
                );
                (self.framing.gap(missed, cursor), None)
            }
            Poll::Ready(Some(Delivery::Complete)) => {
                return Poll::Ready(Some((self.end(End::Complete), None)));
            }
            Poll::Ready(None) => {
                return Poll::Ready(Some((self.end(End::Shutdown), None)));
            }
            Poll::Pending => {
                return match self.timers.poll_heartbeat(cx) {
                    Some(beat) => Poll::Ready(Some((beat.frame(&self.framing), None))),
                    None => Poll::Pending,
                };
            }
        };
        self.timers.touch();
        Poll::Ready(Some(next))
    }

    /// The goodbye for `end`, [logged](crate::logs); the stream is done after it.
    fn end(&mut self, end: End) -> Bytes {
        self.state = State::Done;
        let cursor = self.sub.cursor();
        let reason = self.timers.reason(end);
        logs::closed(self.meters.technique(), self.sub.topic(), reason, &cursor);
        self.framing.end(end, cursor)
    }
}

/// A stream dropped before its goodbye: its client went away.
#[cfg(feature = "tracing")]
impl<F> Drop for Frames<F> {
    fn drop(&mut self) {
        if self.state != State::Done {
            let cursor = self.sub.cursor();
            logs::closed(self.meters.technique(), self.sub.topic(), "gone", &cursor);
        }
    }
}
