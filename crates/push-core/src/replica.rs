//! The in-process log of a topic whose events are numbered by a shared store.

use std::sync::Arc;
use std::time::Instant;

use crate::log::{Refused, TopicLog};
use crate::{Cursor, Epoch, Error, Event, HubConfig, StartFrom, Subscription, Topic};

pub use crate::log::Appended;

/// A topic's in-process log fed by a backend that numbers events itself, such as a stream in a
/// shared store that several server processes read.
///
/// The backend's reader of a topic [`append`](Self::append)s what it reads, and
/// [`prepend`](Self::prepend)s older events when a resuming client needs history the replica
/// does not hold yet; subscribers read the replica exactly as they read a [`MemoryHub`] topic,
/// so fan-out costs the same whatever the backend. Retention is the [`HubConfig`]'s.
///
/// Cheap to clone (a reference count).
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use push_core::{Cursor, Delivery, Epoch, HubConfig, NewEvent, Outcome, ReplicaLog, StartFrom, Topic};
///
/// let topic = Topic::new("news").unwrap();
/// let epoch = Epoch::new(0x5eed).unwrap();
/// let event = |seq| Arc::new(push_core::Event::restored(
///     Cursor::new(epoch, seq), topic.clone(), NewEvent::new(format!("e{seq}")), SystemTime::now()));
///
/// // The store's stream is at 41 when this process starts reading it.
/// let log = ReplicaLog::new(topic.clone(), epoch, 41, HubConfig::default());
/// log.append(event(42));
/// // A client that read 39 elsewhere: the backend fetches 40 and 41 from the store.
/// assert_eq!(log.prepend(&[event(40), event(41)]), 2);
/// let mut sub = log.subscribe(StartFrom::After(Cursor::new(epoch, 39)), 0).unwrap();
/// assert_eq!(sub.outcome(), Outcome::Resumed);
/// let batch = sub.try_batch(10).unwrap();
/// assert_eq!(batch.events.iter().map(|e| e.id().seq()).collect::<Vec<_>>(), [40, 41, 42]);
/// ```
///
/// [`MemoryHub`]: crate::MemoryHub
#[derive(Clone)]
pub struct ReplicaLog {
    log: Arc<TopicLog>,
}

impl std::fmt::Debug for ReplicaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaLog")
            .field("topic", &self.log.topic)
            .field("head", &self.log.head())
            .finish()
    }
}

/// Figures about one [`ReplicaLog`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStats {
    /// Live subscriptions.
    pub subscribers: usize,
    /// Subscriptions waiting for an event.
    pub waiting: usize,
    /// Events retained.
    pub events: usize,
    /// Bytes retained (see [`Event::retained_size`]).
    pub bytes: usize,
}

impl ReplicaLog {
    /// An empty replica of `topic` in `epoch` whose next event has sequence `head + 1`.
    #[must_use]
    pub fn new(topic: Topic, epoch: Epoch, head: u64, config: HubConfig) -> Self {
        Self {
            log: Arc::new(TopicLog::starting_after(
                topic,
                epoch,
                head,
                Arc::new(config),
                &crate::log::HubCounters::default(),
            )),
        }
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &Topic {
        &self.log.topic
    }

    /// The epoch every cursor of this replica has.
    #[must_use]
    pub fn epoch(&self) -> Epoch {
        self.log.epoch
    }

    /// When the newest event it holds was published (`None` when it holds none): with the
    /// time it was read, how far behind the store a reader runs.
    #[must_use]
    pub fn head_published(&self) -> Option<std::time::SystemTime> {
        self.log.newest_published()
    }

    /// The cursor of the newest event received.
    #[must_use]
    pub fn head(&self) -> Cursor {
        self.log.head()
    }

    /// The sequence of the oldest event retained (the next one when none is), and how many
    /// older events retention by count still has room for: what a backend may
    /// [`prepend`](Self::prepend).
    #[must_use]
    pub fn front(&self) -> (u64, usize) {
        self.log.front()
    }

    /// Appends the next event read from the store and wakes the subscribers that wait. The
    /// event's epoch must be [`epoch`](Self::epoch) (else it is ignored as a duplicate would
    /// be); see [`Appended`] for the other cases.
    pub fn append(&self, event: Arc<Event>) -> Appended {
        if event.id().epoch() != self.log.epoch {
            return Appended::Duplicate;
        }
        self.log.append(event)
    }

    /// Puts older events in front of the retained ones. `older` is in ascending order; the
    /// events that continue the replica backwards without a hole are taken, as long as
    /// retention by count has room. Returns how many were taken.
    pub fn prepend(&self, older: &[Arc<Event>]) -> usize {
        self.log.prepend(older)
    }

    /// Subscribes from `from`. A cursor of this epoch up to `known_head` is valid even when
    /// its event has not arrived here yet (the store is ahead of this replica): such a
    /// subscription waits for it rather than being reset. Pass 0 when the store's head is not
    /// known to be ahead.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the replica is closed.
    pub fn subscribe(&self, from: StartFrom, known_head: u64) -> Result<Subscription, Error> {
        match self.log.subscribe_known(from, known_head) {
            Ok(sub) => Ok(sub),
            Err(Refused::Closed | Refused::Complete | Refused::Retired(())) => Err(Error::Closed),
        }
    }

    /// Completes the replica at `end`, the end's position in the store (the sequence after
    /// the last event): readers get every event, then [`Delivery::Complete`](crate::Delivery::Complete);
    /// later appends are ignored. Events between the head and `end` that never arrived are a
    /// gap. An `end` of another epoch, or at or before the head, is ignored.
    pub fn complete(&self, end: Cursor) {
        if end.epoch() == self.log.epoch {
            self.log.complete_at(end.seq());
        }
    }

    /// Closes the replica: subscriptions yield what they have not read, then end.
    pub fn close(&self) {
        self.log.close();
    }

    /// Whether [`close`](Self::close) was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.log.is_closed()
    }

    /// When the last subscription ended, or `None` while there are subscriptions.
    #[must_use]
    pub fn idle_since(&self) -> Option<Instant> {
        self.log.idle_since()
    }

    /// Current figures.
    #[must_use]
    pub fn stats(&self) -> ReplicaStats {
        let s = self.log.stats();
        ReplicaStats {
            subscribers: s.subscribers,
            waiting: s.waiting,
            events: s.events,
            bytes: s.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::{Delivery, NewEvent, Outcome, Retention};

    fn setup(max_events: usize) -> (ReplicaLog, impl Fn(u64) -> Arc<Event>) {
        let topic = Topic::new("t").unwrap();
        let epoch = Epoch::new(7).unwrap();
        let config = HubConfig::default().retention(Retention::default().max_events(max_events));
        let log = ReplicaLog::new(topic.clone(), epoch, 10, config);
        let event = move |seq| {
            Arc::new(Event::restored(
                Cursor::new(epoch, seq),
                topic.clone(),
                NewEvent::new(seq.to_string()),
                SystemTime::now(),
            ))
        };
        (log, event)
    }

    #[test]
    fn a_hole_upstream_is_a_counted_gap() {
        let (log, event) = setup(100);
        let mut sub = log.subscribe(StartFrom::Newest, 0).unwrap();
        assert_eq!(log.append(event(11)), Appended::Appended);
        assert_eq!(log.append(event(11)), Appended::Duplicate);
        let batch = sub.try_batch(10).unwrap();
        assert_eq!(batch.outcome, Outcome::Resumed);
        assert_eq!(batch.events.len(), 1);
        assert_eq!(log.append(event(15)), Appended::AfterGap { missed: 3 });
        let batch = sub.try_batch(10).unwrap();
        assert_eq!(batch.outcome, Outcome::Gap { missed: 3 });
        assert_eq!(batch.events[0].id().seq(), 15);

        // Events before a hole that a reader has not read yet stay readable.
        let mut slow = log.subscribe(StartFrom::Newest, 0).unwrap();
        log.append(event(16));
        log.append(event(18));
        let got: Vec<_> =
            std::iter::from_fn(|| slow.try_batch(1)?.events.pop().map(|e| e.id().seq())).collect();
        assert_eq!(got, [16, 18]);
        let mut again = log
            .subscribe(StartFrom::After(Cursor::new(log.epoch(), 15)), 0)
            .unwrap();
        let mut deliveries = Vec::new();
        while let Some(d) = futures_poll(&mut again) {
            deliveries.push(d);
        }
        assert!(
            matches!(
                deliveries[..],
                [
                    Delivery::Event(_),
                    Delivery::Gap { missed: 1 },
                    Delivery::Event(_)
                ]
            ),
            "{deliveries:?}"
        );
    }

    /// The deliveries ready now.
    fn futures_poll(sub: &mut Subscription) -> Option<Delivery> {
        let waker = std::task::Waker::noop();
        match sub.poll_recv(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(d) => d,
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn prepend_takes_only_what_continues_the_log_and_fits() {
        let (log, event) = setup(4);
        log.append(event(11));
        // 8 does not touch 11 (9 and 10 are missing): nothing taken.
        assert_eq!(log.prepend(&[event(8)]), 0);
        // 7..=10: room for 3 only, the newest ones.
        assert_eq!(log.prepend(&[event(7), event(8), event(9), event(10)]), 3);
        assert_eq!(log.front(), (8, 0));
        let sub = log
            .subscribe(StartFrom::After(Cursor::new(log.epoch(), 5)), 0)
            .unwrap();
        assert_eq!(sub.outcome(), Outcome::Gap { missed: 2 });
    }

    #[test]
    fn a_cursor_the_store_has_but_the_replica_not_yet_waits() {
        let (log, event) = setup(100);
        let ahead = StartFrom::After(Cursor::new(log.epoch(), 12));
        assert_eq!(log.subscribe(ahead, 0).unwrap().outcome(), Outcome::Reset);
        let mut sub = log.subscribe(ahead, 12).unwrap();
        assert_eq!(sub.outcome(), Outcome::Resumed);
        for seq in 11..=13 {
            log.append(event(seq));
        }
        let Some(Delivery::Event(e)) = sub.try_batch(1).unwrap().events.pop().map(Delivery::Event)
        else {
            panic!("no event");
        };
        assert_eq!(e.id().seq(), 13);
        log.close();
        assert!(log.subscribe(StartFrom::Newest, 0).is_err());
    }
}
