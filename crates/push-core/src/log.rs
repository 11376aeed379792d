//! The per-topic log that every subscriber reads at its own cursor, and the subscription type.
//!
//! This module has what readers see: where a subscription starts ([`StartFrom`]), how the start
//! went ([`Outcome`]), what it yields ([`Delivery`], [`Batch`]) and the [`Subscription`] that
//! reads a log. The log itself, [`TopicLog`], is in `topic_log`, which uses nothing of this
//! module.

mod topic_log;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

pub use self::topic_log::Appended;
use self::topic_log::State;
pub(crate) use self::topic_log::{HubCounters, Refused, TopicLog};
use crate::{Cursor, Event, ResetPolicy, Topic};

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Only events published from now on.
    Newest,
    /// Every retained event.
    Oldest,
    /// The events after this cursor (a resume).
    After(Cursor),
    /// A cursor the client sent that could not be parsed: the subscription starts with
    /// [`Outcome::Reset`].
    Invalid,
}

impl StartFrom {
    /// Reads a client-supplied cursor: `None` (the client sent none) gives `default`, text that
    /// parses gives [`StartFrom::After`], anything else [`StartFrom::Invalid`]. Never panics.
    #[must_use]
    pub fn from_client(cursor: Option<&str>, default: StartFrom) -> Self {
        match cursor {
            None => default,
            Some(text) => Cursor::parse(text).map_or(StartFrom::Invalid, StartFrom::After),
        }
    }
}

/// How a subscription's start relates to what the client asked for. Every technique reports it
/// to the client in its own format before any event.
///
/// Not `#[non_exhaustive]` on purpose: every technique crate must handle every outcome, and a new
/// one should fail their build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every event after the requested point follows: none lost, none repeated.
    Resumed,
    /// Events after the cursor were no longer retained: the subscription continues from the
    /// oldest retained event, and `missed` events were skipped.
    Gap {
        /// How many events were skipped.
        missed: u64,
    },
    /// The cursor belongs to another epoch (the log was replaced, or the server restarted) or
    /// could not be parsed: the client should drop its local state. The subscription starts as
    /// [`HubConfig::reset_policy`] says.
    ///
    /// [`HubConfig::reset_policy`]: crate::HubConfig::reset_policy
    Reset,
}

impl Outcome {
    /// Combines an outcome with `missed` further skipped events.
    #[must_use]
    pub fn and_missed(self, missed: u64) -> Self {
        match self {
            Outcome::Reset => Outcome::Reset,
            _ if missed == 0 => self,
            Outcome::Resumed => Outcome::Gap { missed },
            Outcome::Gap { missed: m } => Outcome::Gap {
                missed: m.saturating_add(missed),
            },
        }
    }
}

/// What a [`Subscription`] yields, in order.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The next event.
    Event(Arc<Event>),
    /// The subscriber fell behind retention: `missed` events it had not read left the log, and
    /// the subscription continues with the oldest retained one. (With a shared-store backend,
    /// also events that left the store before this process read them.) Never a silent skip.
    Gap {
        /// How many events were skipped.
        missed: u64,
    },
    /// The topic is complete ([`Hub::complete`](crate::Hub::complete)) and every event was
    /// delivered: the last delivery; the subscription ends after it.
    Complete,
}

/// A batch of events read at once: what poll and long-poll answer with.
#[derive(Debug, Clone)]
pub struct Batch {
    /// For a subscription's first batch, its start [`Outcome`] combined with any gap met while
    /// reading; afterwards [`Outcome::Resumed`] or a [`Outcome::Gap`] met while reading.
    pub outcome: Outcome,
    /// The events, in order.
    pub events: Vec<Arc<Event>>,
    /// The cursor to resume from for the events after this batch.
    pub next: Cursor,
    /// The batch stopped at its [`BatchLimit::bytes`] with events left to read: the client
    /// should ask again at once.
    pub cut: bool,
    /// The topic is complete and this batch holds its last events (or none are left): there
    /// is nothing more to ask for.
    pub complete: bool,
}

/// How much one batch may hold: events, and bytes as the technique will send them.
///
/// A `usize` converts to a limit by count only. The first event of a batch is always taken,
/// whatever its size, so that a reader makes progress.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimit {
    /// The most events.
    pub events: usize,
    /// The most bytes, as measured by `size`.
    pub bytes: usize,
    /// An event's size in the answer (for instance its cached JSON encoding's length).
    pub size: fn(&Event) -> usize,
}

impl BatchLimit {
    /// At most `events` events and `bytes` bytes, each event measured by `size`.
    #[must_use]
    pub fn new(events: usize, bytes: usize, size: fn(&Event) -> usize) -> Self {
        Self {
            events,
            bytes,
            size,
        }
    }
}

impl From<usize> for BatchLimit {
    fn from(events: usize) -> Self {
        Self {
            events,
            bytes: usize::MAX,
            size: |_| 0,
        }
    }
}

impl TopicLog {
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        from: StartFrom,
    ) -> Result<Subscription, Refused<()>> {
        self.subscribe_known(from, 0)
    }

    /// Subscribes, taking cursors up to `known_head` as valid even when this log has not
    /// received their events yet (a replica that lags the shared store): such a subscription
    /// waits for them instead of being reset.
    pub(crate) fn subscribe_known(
        self: &Arc<Self>,
        from: StartFrom,
        known_head: u64,
    ) -> Result<Subscription, Refused<()>> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.retired {
            return Err(Refused::Retired(()));
        }
        state.trim(Instant::now(), &self.config, &self.meter);
        let reset_start = match self.config.reset_policy {
            ResetPolicy::Oldest => state.first_seq,
            ResetPolicy::Newest => state.next_seq,
        };
        let (next_seq, outcome) = match from {
            StartFrom::Newest => (state.next_seq, Outcome::Resumed),
            StartFrom::Oldest => (state.first_seq, Outcome::Resumed),
            StartFrom::After(c)
                if c.epoch() == self.epoch
                    && (c.seq() < state.next_seq || c.seq() <= known_head) =>
            {
                let want = c.seq() + 1;
                if want >= state.first_seq {
                    (want, Outcome::Resumed)
                } else {
                    (
                        state.first_seq,
                        Outcome::Gap {
                            missed: state.first_seq - want,
                        },
                    )
                }
            }
            // Another epoch, a cursor beyond the head (not one this log handed out), or garbage.
            StartFrom::After(_) | StartFrom::Invalid => (reset_start, Outcome::Reset),
        };
        state.subscribers += 1;
        drop(state);
        Ok(Subscription {
            log: self.clone(),
            next_seq,
            outcome,
            first_batch: true,
            done: false,
            waiter: None,
        })
    }
}

/// A reader of one topic's log at its own cursor.
///
/// There is no per-subscriber queue: a subscription holds a position in the shared log, so a
/// publish costs the same whatever the number of subscribers (plus waking those that wait). A
/// subscriber that falls further behind than retention allows gets [`Delivery::Gap`].
///
/// Two ways to read, for the two kinds of technique:
/// - one by one, as a [`Stream`](futures_core::Stream) of [`Delivery`] or with
///   [`recv`](Self::recv) / [`poll_recv`](Self::poll_recv) (SSE, WebSocket, streaming);
/// - in batches, with [`try_batch`](Self::try_batch) ("what is there now, up to N") and
///   [`next_batch`](Self::next_batch) ("wait until there is something", long-poll).
///
/// The start [`Outcome`] is known at once ([`outcome`](Self::outcome)). When the hub is closed,
/// a subscription still yields the events published before the close that it has not read, then
/// ends (`None`): a connected client loses nothing to a graceful shutdown. Dropping a
/// subscription releases everything it held at once.
pub struct Subscription {
    log: Arc<TopicLog>,
    next_seq: u64,
    outcome: Outcome,
    first_batch: bool,
    /// Set once [`Delivery::Complete`] was yielded: the subscription then ends.
    done: bool,
    /// `(generation, slab key)` of this subscription's registered waker.
    waiter: Option<(u64, usize)>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.log.topic)
            .field("cursor", &self.cursor())
            .field("outcome", &self.outcome)
            .finish()
    }
}

enum Step {
    Event(Arc<Event>),
    Gap(u64),
    Empty,
    Complete,
    Closed,
}

impl Subscription {
    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &Topic {
        &self.log.topic
    }

    /// How the start relates to what was asked for.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The position: the cursor of the last event read, or of the point before the next one.
    /// Resuming from it later receives exactly the events this subscription has not yielded.
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.log.epoch, self.next_seq - 1)
    }

    /// Polls for the next delivery; `Ready(None)` once the hub is closed.
    ///
    /// Age-based retention is applied on publish, subscribe and batch reads, not on this hot
    /// path: a streaming subscriber that is caught up never reads an expired event anyway.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let mut state = self.log.lock();
        if self.done {
            return Poll::Ready(None);
        }
        match step(&mut self.next_seq, &mut state) {
            Step::Event(event) => Poll::Ready(Some(Delivery::Event(event))),
            Step::Gap(missed) => Poll::Ready(Some(Delivery::Gap { missed })),
            Step::Complete => {
                self.done = true;
                unregister(&mut self.waiter, &mut state);
                Poll::Ready(Some(Delivery::Complete))
            }
            Step::Closed => {
                unregister(&mut self.waiter, &mut state);
                Poll::Ready(None)
            }
            Step::Empty => {
                register(&mut self.waiter, &mut state, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Waits for the next delivery; `None` once the hub is closed.
    pub async fn recv(&mut self) -> Option<Delivery> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Whether the topic is complete and this subscription has nothing left to read: its next
    /// delivery is [`Delivery::Complete`] (SSE answers such a request `204 No Content`).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        let state = self.log.lock();
        // The end's position is `next_seq - 1`: a reader there or past it has read every event.
        self.done || state.completed && self.next_seq + 1 >= state.next_seq
    }

    /// Reads what is available now, up to `limit` (a count of events, or a [`BatchLimit`]),
    /// without waiting. `None` once the hub is closed.
    pub fn try_batch(&mut self, limit: impl Into<BatchLimit>) -> Option<Batch> {
        let limit = limit.into();
        let log = self.log.clone();
        let mut state = log.lock();
        self.read_batch(&mut state, limit)
    }

    fn read_batch(&mut self, state: &mut State, limit: BatchLimit) -> Option<Batch> {
        state.trim(Instant::now(), &self.log.config, &self.log.meter);
        let mut missed = 0;
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut cut = false;
        let mut complete = false;
        while events.len() < limit.events {
            match step(&mut self.next_seq, state) {
                Step::Event(event) => {
                    let size = (limit.size)(&event);
                    if !events.is_empty() && bytes.saturating_add(size) > limit.bytes {
                        // Leave it for the next batch.
                        self.next_seq -= 1;
                        cut = true;
                        break;
                    }
                    bytes = bytes.saturating_add(size);
                    events.push(event);
                }
                Step::Gap(n) => missed += n,
                Step::Empty => break,
                Step::Complete => {
                    complete = true;
                    break;
                }
                Step::Closed => return None,
            }
        }
        let start = if std::mem::take(&mut self.first_batch) {
            self.outcome
        } else {
            Outcome::Resumed
        };
        Some(Batch {
            outcome: start.and_missed(missed),
            events,
            next: self.cursor(),
            cut,
            complete,
        })
    }

    /// Polls for a batch of up to `limit` events. Ready at once when events are available or
    /// when this first batch has an outcome other than [`Outcome::Resumed`] to report (the
    /// client must learn of a gap or reset without waiting for news); otherwise it waits for a
    /// publish. `Ready(None)` once the hub is closed.
    pub fn poll_batch(
        &mut self,
        cx: &mut Context<'_>,
        limit: impl Into<BatchLimit>,
    ) -> Poll<Option<Batch>> {
        let limit = limit.into();
        let log = self.log.clone();
        let mut state = log.lock();
        let first = self.first_batch;
        let Some(batch) = self.read_batch(&mut state, limit) else {
            unregister(&mut self.waiter, &mut state);
            return Poll::Ready(None);
        };
        if !batch.events.is_empty() || batch.outcome != Outcome::Resumed || batch.complete {
            return Poll::Ready(Some(batch));
        }
        // Nothing to report yet: keep the start outcome for the batch that will carry news.
        self.first_batch = first;
        register(&mut self.waiter, &mut state, cx.waker());
        Poll::Pending
    }

    /// Waits for a batch of up to `limit` events; see [`poll_batch`](Self::poll_batch).
    pub async fn next_batch(&mut self, limit: impl Into<BatchLimit>) -> Option<Batch> {
        let limit = limit.into();
        poll_fn(|cx| self.poll_batch(cx, limit)).await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Delivery;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.log.lock();
        unregister(&mut self.waiter, &mut state);
        state.subscribers -= 1;
        state.last_active = Instant::now();
    }
}

/// Advances `next_seq` by one delivery, if there is one.
fn step(next_seq: &mut u64, state: &mut State) -> Step {
    if *next_seq < state.first_seq {
        let missed = state.first_seq - *next_seq;
        *next_seq = state.first_seq;
        return Step::Gap(missed);
    }
    if *next_seq < state.next_seq {
        // In range: first_seq <= next_seq < state.next_seq, so the index is valid.
        let index = usize::try_from(*next_seq - state.first_seq).unwrap_or(usize::MAX);
        if let Some(event) = state.events.get(index) {
            if !state.is_hole(event) {
                *next_seq += 1;
                return Step::Event(event.clone());
            }
            // A run of holes is one gap.
            let holes = state
                .events
                .range(index..)
                .take_while(|e| state.is_hole(e))
                .count();
            *next_seq += holes as u64;
            return Step::Gap(holes as u64);
        }
    }
    // A closed log still hands out what was published before the close, then ends; a
    // complete one hands out everything, then says so.
    if state.completed {
        // Past the end's own position.
        *next_seq = (*next_seq).max(state.next_seq);
        Step::Complete
    } else if state.closed {
        Step::Closed
    } else {
        Step::Empty
    }
}

/// Registers `waker` for the next publish, reusing this subscription's slot when it still holds
/// one of the current generation, so repeated polls never register twice.
fn register(waiter: &mut Option<(u64, usize)>, state: &mut State, waker: &Waker) {
    if let Some((generation, key)) = *waiter {
        if generation == state.generation {
            if let Some(slot) = state.waiters.get_mut(key) {
                slot.clone_from(waker);
                return;
            }
        }
    }
    let key = state.waiters.insert(waker.clone());
    *waiter = Some((state.generation, key));
}

fn unregister(waiter: &mut Option<(u64, usize)>, state: &mut State) {
    if let Some((generation, key)) = waiter.take() {
        if generation == state.generation {
            state.waiters.try_remove(key);
        }
    }
}
