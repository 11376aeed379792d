//! The shared log of one topic: its retained events under retention, the holes of events that
//! never reached it, its end, the idempotency keys of recent publishes, and the subscribers a
//! publish wakes. Reading it at a cursor is the parent module's `Subscription`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime};

use slab::Slab;

use crate::event::Meter;
use crate::{Cursor, Epoch, Event, HubConfig, NewEvent, Topic};

pub(crate) struct TopicLog {
    pub(crate) topic: Topic,
    pub(crate) epoch: Epoch,
    /// Shared by the hub's logs.
    pub(super) config: Arc<HubConfig>,
    /// Bytes held by this log's events (and, through it, by the hub's logs).
    pub(super) meter: Arc<Meter>,
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

pub(super) struct State {
    /// The retained events; an entry that is the `hole` placeholder stands for an event that
    /// never reached this log (see [`TopicLog::append`]).
    pub(super) events: VecDeque<Arc<Event>>,
    /// Shared by every hole of this log; compared by pointer. Made at the first hole: most
    /// logs never have one, and an empty log should cost little.
    hole: Option<Arc<Event>>,
    /// The sequence number of `events[0]`, or `next_seq` when the log is empty.
    pub(super) first_seq: u64,
    /// The sequence number the next publish gets.
    pub(super) next_seq: u64,
    /// Wakers of subscribers that found nothing to read; all are woken and cleared on publish.
    pub(super) waiters: Slab<Waker>,
    /// Incremented whenever `waiters` is cleared, so that a subscription can tell whether the
    /// slab key it holds is still its own.
    pub(super) generation: u64,
    pub(super) subscribers: usize,
    pub(super) closed: bool,
    /// Set by [`TopicLog::complete`]: no more publishes; readers end after the last event.
    /// The end takes a position of its own, `next_seq - 1`, after the last event, so that the
    /// head (and with it a poll's `ETag`) changes when a topic completes, and a cursor at the
    /// end is a cursor past every event.
    pub(super) completed: bool,
    /// Set when the hub reclaimed this log; operations that meet it look the topic up again.
    pub(super) retired: bool,
    /// Idempotency keys of recent publishes, made at the first keyed publish (boxed: most
    /// topics never see one, and an empty log should cost little).
    keys: Option<Box<Keys>>,
    pub(super) last_active: Instant,
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
    ///
    /// [`Delivery::Gap`]: crate::Delivery::Gap
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

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
}

impl TopicLog {
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
    ///
    /// [`Delivery::Gap`]: crate::Delivery::Gap
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
    pub(super) fn is_hole(&self, event: &Arc<Event>) -> bool {
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

    pub(super) fn trim(&mut self, now: Instant, config: &HubConfig, meter: &Meter) {
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
