//! The timers of a long-lived stream: the heartbeat and the credentials' end.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use bytes::Bytes;
use push_core::Hub;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use super::framing::{End, Framing};

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
    hub: Hub,
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
    pub(crate) fn new(heartbeat: Option<Duration>, hub: &Hub) -> Self {
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
            hub: hub.clone(),
        }
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
                let away = !self.hub.is_available();
                return Some(if away { Beat::Away } else { Beat::Heartbeat });
            }
        }
        None
    }

    /// A frame was handed out.
    pub(crate) fn touch(&mut self) {
        self.active = true;
    }

    /// The [logs](crate::logs)' word for a stream's `end`: `expired`, `finished`, and for
    /// [`End::Shutdown`] `shutdown` when the hub closed, else `restart` (the topic's log was
    /// replaced under the stream).
    pub(crate) fn reason(&self, end: End) -> &'static str {
        match end {
            End::Expired => "expired",
            End::Complete => "finished",
            _ if self.hub.is_closed() => "shutdown",
            _ => "restart",
        }
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
