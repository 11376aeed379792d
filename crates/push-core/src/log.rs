//! The per-topic log that every subscriber reads at its own cursor, and the subscription type.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use slab::Slab;

use crate::event::Meter;
use crate::{Cursor, Epoch, Event, HubConfig, NewEvent, ResetPolicy, Topic};

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
#[non_exhaustive]
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

pub(crate) struct TopicLog {
    pub(crate) topic: Topic,
    pub(crate) epoch: Epoch,
    /// Shared by the hub's logs.
    config: Arc<HubConfig>,
    /// Bytes held by this log's events (and, through it, by the hub's logs).
    meter: Arc<Meter>,
    /// Bytes held by this log's idempotency keys (and, through it, by the hub's logs): a
    /// budget apart from the events', so that keys can never crowd out events.
    key_meter: Meter,
    state: Mutex<State>,
}

/// The hub-wide byte counters every log of a hub adds to.
#[derive(Debug, Clone, Default)]
pub(crate) struct HubCounters {
    /// Bytes of retained events (see [`HubConfig::max_bytes`]).
    pub(crate) events: Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes of remembered idempotency keys (see [`HubConfig::max_idempotency_bytes`]).
    pub(crate) keys: Arc<std::sync::atomic::AtomicUsize>,
}

/// A log's idempotency keys.
#[derive(Default)]
struct Keys {
    /// The cursor and time of the first publish of each key.
    first: HashMap<Box<str>, (Cursor, SystemTime)>,
    /// The same keys in the order they came, with when, for expiry and the caps.
    order: VecDeque<(Box<str>, Instant)>,
}

struct State {
    /// The retained events; an entry that is the `hole` placeholder stands for an event that
    /// never reached this log (see [`TopicLog::append`]).
    events: VecDeque<Arc<Event>>,
    /// Shared by every hole of this log; compared by pointer. Made at the first hole: most
    /// logs never have one, and an empty log should cost little.
    hole: Option<Arc<Event>>,
    /// The sequence number of `events[0]`, or `next_seq` when the log is empty.
    first_seq: u64,
    /// The sequence number the next publish gets.
    next_seq: u64,
    /// Wakers of subscribers that found nothing to read; all are woken and cleared on publish.
    waiters: Slab<Waker>,
    /// Incremented whenever `waiters` is cleared, so that a subscription can tell whether the
    /// slab key it holds is still its own.
    generation: u64,
    subscribers: usize,
    closed: bool,
    /// Set by [`TopicLog::complete`]: no more publishes; readers end after the last event.
    /// The end takes a position of its own, `next_seq - 1`, after the last event, so that the
    /// head (and with it a poll's `ETag`) changes when a topic completes, and a cursor at the
    /// end is a cursor past every event.
    completed: bool,
    /// Set when the hub reclaimed this log; operations that meet it look the topic up again.
    retired: bool,
    /// Idempotency keys of recent publishes, made at the first keyed publish (boxed: most
    /// topics never see one, and an empty log should cost little).
    keys: Option<Box<Keys>>,
    last_active: Instant,
}

/// What [`ReplicaLog::append`](crate::ReplicaLog::append) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The event follows the head.
    Appended,
    /// The event was at or before the head, so already there: ignored.
    Duplicate,
    /// The event came after a hole of `missed` events (trimmed upstream before they were read,
    /// or unreadable): readers get the events before the hole, then a [`Delivery::Gap`] for it.
    AfterGap {
        /// How many events the hole held.
        missed: u64,
    },
    /// The log is closed.
    Closed,
}

/// Why a log refused an operation.
pub(crate) enum Refused<T> {
    Closed,
    /// The topic is complete: no more publishes.
    Complete,
    /// Reclaimed by the hub; the caller retries on a fresh lookup with the returned input.
    Retired(T),
}

impl TopicLog {
    pub(crate) fn new(
        topic: Topic,
        epoch: Epoch,
        config: Arc<HubConfig>,
        hub: &HubCounters,
    ) -> Self {
        Self::starting_after(topic, epoch, 0, config, hub)
    }

    /// An empty log whose next event has sequence `head + 1`; its bytes count in `hub`.
    pub(crate) fn starting_after(
        topic: Topic,
        epoch: Epoch,
        head: u64,
        config: Arc<HubConfig>,
        hub: &HubCounters,
    ) -> Self {
        let next = head.saturating_add(1);
        Self {
            topic,
            epoch,
            config,
            meter: Arc::new(Meter::new(hub.events.clone())),
            key_meter: Meter::new(hub.keys.clone()),
            state: Mutex::new(State {
                events: VecDeque::new(),
                hole: None,
                first_seq: next,
                next_seq: next,
                waiters: Slab::new(),
                generation: 0,
                subscribers: 0,
                closed: false,
                completed: false,
                keys: None,
                retired: false,
                last_active: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; if one ever did, the state is still
        // consistent between statements, so recovering is sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish(&self, new: NewEvent) -> Result<Arc<Event>, Refused<NewEvent>> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.retired {
            return Err(Refused::Retired(new));
        }
        let key = new.idempotency_key.clone();
        if let Some(key) = &key {
            self.forget_old_keys(&mut state);
            let first = state.keys.as_ref().and_then(|keys| keys.first.get(key));
            if let Some(&(cursor, at)) = first {
                // A retry: the first publish's cursor, nothing stored (even once the topic
                // completed: the event was stored before, and saying otherwise would lie).
                return Ok(Arc::new(Event::restored(
                    cursor,
                    self.topic.clone(),
                    new,
                    at,
                )));
            }
        }
        if state.completed {
            return Err(Refused::Complete);
        }
        let seq = state.next_seq;
        let event = Arc::new(Event::new(
            Cursor::new(self.epoch, seq),
            self.topic.clone(),
            new,
        ));
        if let Some(key) = key {
            self.remember_key(&mut state, key, &event);
        }
        let now = event.published_instant;
        self.push_and_wake(state, event.clone(), now);
        Ok(event)
    }

    /// Drops keys past the window.
    fn forget_old_keys(&self, state: &mut State) {
        let window = self.config.idempotency_window;
        let Some(keys) = state.keys.as_mut() else {
            return;
        };
        while let Some((_, at)) = keys.order.front() {
            if at.elapsed() < window {
                break;
            }
            if let Some((key, _)) = keys.order.pop_front() {
                drop_key(&self.key_meter, keys, &key);
            }
        }
        if keys.order.is_empty() {
            state.keys = None;
        }
    }

    fn remember_key(&self, state: &mut State, key: Box<str>, event: &Event) {
        self.key_meter.add(key_cost(&key));
        let keys = state.keys.get_or_insert_with(Box::default);
        keys.first
            .insert(key.clone(), (event.id(), event.published_at()));
        keys.order.push_back((key, Instant::now()));
        while keys.order.len() > self.config.max_idempotency_keys.max(1) {
            if let Some((old, _)) = keys.order.pop_front() {
                drop_key(&self.key_meter, keys, &old);
            }
        }
    }

    /// Forgets the oldest idempotency key, for the hub's key budget. Returns when the key
    /// that is oldest afterwards came, if any.
    pub(crate) fn forget_oldest_key(&self) -> Option<Instant> {
        let mut state = self.lock();
        let keys = state.keys.as_mut()?;
        if let Some((old, _)) = keys.order.pop_front() {
            drop_key(&self.key_meter, keys, &old);
        }
        let next = keys.order.front().map(|(_, at)| *at);
        if next.is_none() {
            state.keys = None;
        }
        next
    }

    /// When the oldest idempotency key this log remembers came.
    pub(crate) fn oldest_key_instant(&self) -> Option<Instant> {
        let state = self.lock();
        state.keys.as_ref()?.order.front().map(|(_, at)| *at)
    }

    /// Appends the event that takes the next sequence, applies retention, releases the lock
    /// and wakes the subscribers that wait.
    fn push_and_wake(&self, mut state: MutexGuard<'_, State>, event: Arc<Event>, now: Instant) {
        event.retain(&self.meter);
        state.events.push_back(event);
        state.next_seq += 1;
        state.last_active = now;
        state.trim(now, &self.config, &self.meter);
        let wakers = state.take_waiters();
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

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

    /// Completes the topic: no more publishes, and readers end after the last event. Returns
    /// the end's cursor (completing twice is the same as once).
    pub(crate) fn complete(&self) -> Result<Cursor, Refused<()>> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.retired {
            return Err(Refused::Retired(()));
        }
        if !state.completed {
            state.completed = true;
            state.next_seq += 1;
        }
        state.last_active = Instant::now();
        let head = Cursor::new(self.epoch, state.next_seq - 1);
        let wakers = state.take_waiters();
        drop(state);
        for waker in wakers {
            waker.wake();
        }
        Ok(head)
    }

    /// This log's hole placeholder, made at the first hole.
    fn hole(&self, state: &mut State) -> Arc<Event> {
        state
            .hole
            .get_or_insert_with(|| {
                Arc::new(Event::new(
                    Cursor::new(self.epoch, 0),
                    self.topic.clone(),
                    NewEvent::new(bytes::Bytes::new()),
                ))
            })
            .clone()
    }

    /// Completes the log at `end`, the end's own position as a shared store numbered it: the
    /// events between the head and it that never arrived become a hole (readers get a gap),
    /// then readers end after the last event.
    pub(crate) fn complete_at(&self, end: u64) {
        let mut state = self.lock();
        if state.closed || state.completed || end < state.next_seq {
            return;
        }
        for _ in state.next_seq..end {
            let hole = self.hole(&mut state);
            self.meter.add(hole.retained_size());
            state.events.push_back(hole);
        }
        state.next_seq = end + 1;
        state.completed = true;
        state.last_active = Instant::now();
        let wakers = state.take_waiters();
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Ends the log for its readers (as a close does) and retires it, so that the next use of
    /// the topic's name starts a new one.
    pub(crate) fn delete(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.retired = true;
        state.release_all(&self.meter, &self.key_meter);
        let wakers = state.take_waiters();
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    /// When the newest retained event was published, if there is one.
    pub(crate) fn newest_published(&self) -> Option<SystemTime> {
        let state = self.lock();
        state
            .events
            .iter()
            .rev()
            .find(|e| !state.is_hole(e))
            .map(|e| e.published_at())
    }

    pub(crate) fn head(&self) -> Cursor {
        Cursor::new(self.epoch, self.lock().next_seq - 1)
    }

    /// Appends an event numbered elsewhere. An event at or before the head is a duplicate and
    /// is ignored. One past `head + 1` means the events between never reached this log (trimmed
    /// upstream before they were read, or unreadable): they are kept as holes, so that readers
    /// still get the events before them and then a [`Delivery::Gap`] counting the hole. A hole
    /// at least as long as retention by count simply restarts the log at the new event.
    pub(crate) fn append(&self, event: Arc<Event>) -> Appended {
        let mut state = self.lock();
        if state.closed {
            return Appended::Closed;
        }
        if state.completed {
            return Appended::Duplicate;
        }
        let seq = event.id().seq();
        if seq < state.next_seq {
            return Appended::Duplicate;
        }
        let skipped = seq - state.next_seq;
        let max_events = u64::try_from(self.config.retention.max_events.max(1)).unwrap_or(u64::MAX);
        if skipped >= max_events {
            state.release_all(&self.meter, &self.key_meter);
            state.first_seq = seq;
            state.next_seq = seq;
        } else {
            for _ in 0..skipped {
                let hole = self.hole(&mut state);
                self.meter.add(hole.retained_size());
                state.events.push_back(hole);
                state.next_seq += 1;
            }
        }
        self.push_and_wake(state, event, Instant::now());
        if skipped > 0 {
            Appended::AfterGap { missed: skipped }
        } else {
            Appended::Appended
        }
    }

    /// Adds older events in front of the retained ones: `older` in ascending order, of which
    /// those that continue the log backwards without a hole are taken, as long as retention by
    /// count leaves room. Returns how many were taken.
    pub(crate) fn prepend(&self, older: &[Arc<Event>]) -> usize {
        let mut state = self.lock();
        let mut room = self
            .config
            .retention
            .max_events
            .max(1)
            .saturating_sub(state.events.len());
        let mut taken = 0;
        for event in older.iter().rev() {
            let seq = event.id().seq();
            if seq >= state.first_seq {
                continue;
            }
            if room == 0 || seq + 1 != state.first_seq {
                break;
            }
            event.retain(&self.meter);
            state.events.push_front(event.clone());
            state.first_seq = seq;
            room -= 1;
            taken += 1;
        }
        taken
    }

    /// The sequence of the oldest retained event (the next one when nothing is retained) and
    /// how many more events retention by count would keep.
    pub(crate) fn front(&self) -> (u64, usize) {
        let state = self.lock();
        let room = self
            .config
            .retention
            .max_events
            .max(1)
            .saturating_sub(state.events.len());
        (state.first_seq, room)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// When the last subscriber left, or `None` while there are subscribers.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        let state = self.lock();
        (state.subscribers == 0).then_some(state.last_active)
    }

    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let wakers = state.take_waiters();
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Marks the log retired if nobody reads it, releasing its events (a later reader's cursor
    /// then belongs to another epoch: a reset). Returns whether it did.
    pub(crate) fn retire_if_unsubscribed(&self) -> bool {
        let mut state = self.lock();
        if state.subscribers > 0 || state.closed {
            return false;
        }
        state.retired = true;
        state.release_all(&self.meter, &self.key_meter);
        true
    }

    /// Drops the oldest retained event, even the newest one, for the hub's byte budget. Returns
    /// the publish time of the event that is oldest afterwards, if any.
    pub(crate) fn evict_front(&self) -> Option<Instant> {
        let mut state = self.lock();
        state.pop_front(&self.meter);
        state.front_instant()
    }

    /// When the oldest retained event was published.
    pub(crate) fn front_instant(&self) -> Option<Instant> {
        self.lock().front_instant()
    }

    /// Marks the log retired if it is idle: no subscriber, nothing retained, and no activity for
    /// `idle_timeout`. Returns whether it did.
    pub(crate) fn retire_if_idle(&self, now: Instant, idle_timeout: Duration) -> bool {
        let mut state = self.lock();
        state.trim(now, &self.config, &self.meter);
        let idle = state.subscribers == 0
            && state.events.is_empty()
            && now.saturating_duration_since(state.last_active) >= idle_timeout;
        if idle {
            state.retired = true;
        }
        idle
    }

    pub(crate) fn stats(&self) -> LogStats {
        let state = self.lock();
        LogStats {
            subscribers: state.subscribers,
            waiting: state.waiters.len(),
            events: state.events.len(),
            bytes: self.meter.topic_bytes(),
        }
    }
}

impl Drop for TopicLog {
    fn drop(&mut self) {
        // Events still referenced elsewhere (a reader holding one) no longer count as retained.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        state.release_all(&self.meter, &self.key_meter);
    }
}

pub(crate) struct LogStats {
    pub(crate) subscribers: usize,
    pub(crate) waiting: usize,
    pub(crate) events: usize,
    pub(crate) bytes: usize,
}

impl State {
    /// Whether `event` is this log's hole placeholder.
    fn is_hole(&self, event: &Arc<Event>) -> bool {
        self.hole
            .as_ref()
            .is_some_and(|hole| Arc::ptr_eq(event, hole))
    }

    fn pop_front(&mut self, meter: &Meter) {
        if let Some(event) = self.events.pop_front() {
            if self.is_hole(&event) {
                meter.sub(event.retained_size());
            } else {
                event.release();
            }
            self.first_seq += 1;
        }
    }

    fn release_all(&mut self, meter: &Meter, key_meter: &Meter) {
        while !self.events.is_empty() {
            self.pop_front(meter);
        }
        if let Some(keys) = self.keys.take() {
            for key in keys.first.keys() {
                key_meter.sub(key_cost(key));
            }
        }
    }

    fn front_instant(&self) -> Option<Instant> {
        self.events
            .iter()
            .find(|e| !self.is_hole(e))
            .map(|e| e.published_instant)
    }

    fn trim(&mut self, now: Instant, config: &HubConfig, meter: &Meter) {
        let retention = &config.retention;
        while self.events.len() > retention.max_events.max(1) {
            self.pop_front(meter);
        }
        while meter.topic_bytes() > retention.max_bytes && self.events.len() > 1 {
            self.pop_front(meter);
        }
        while self.events.front().is_some_and(|e| {
            now.saturating_duration_since(e.published_instant) >= retention.max_age
        }) {
            self.pop_front(meter);
        }
    }

    fn take_waiters(&mut self) -> Vec<Waker> {
        if self.waiters.is_empty() {
            return Vec::new();
        }
        self.generation += 1;
        self.waiters.drain().collect()
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

fn drop_key(key_meter: &Meter, keys: &mut Keys, key: &str) {
    if keys.first.remove(key).is_some() {
        key_meter.sub(key_cost(key));
    }
}

/// What remembering an idempotency key costs (the key twice, the map and queue entries), for
/// the key budget.
fn key_cost(key: &str) -> usize {
    key.len() * 2 + 100
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
