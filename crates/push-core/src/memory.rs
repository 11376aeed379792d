//! The in-memory hub: the default backend.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::backend::{Backend, BoxFuture};
use crate::log::{HubCounters, Refused, TopicLog};
use crate::{
    Cursor, Epoch, Error, Event, HubConfig, HubStats, NewEvent, StartFrom, Subscription, Topic,
};

/// Topics held in this process's memory: the embedded default [`Backend`].
///
/// Cheap to clone (a reference count). Publishing, subscribing and reading never block on I/O, so
/// besides the [`Backend`] methods it offers synchronous ones ([`publish_now`](Self::publish_now),
/// [`subscribe_now`](Self::subscribe_now)) that skip the boxed future.
///
/// Each topic is created on first use with a fresh [`Epoch`], and reclaimed when idle (see
/// [`HubConfig::idle_timeout`]); reclaiming happens during topic creation, at most once per
/// `idle_timeout`, or when the topic limit is reached, so no background task is needed.
/// Memory is bounded twice: per topic by [`Retention`](crate::Retention), and over all topics by
/// [`HubConfig::max_bytes`], checked at every publish and subscribe.
#[derive(Clone, Debug)]
pub struct MemoryHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Shared with every topic's log.
    config: Arc<HubConfig>,
    topics: Mutex<Topics>,
    closed: AtomicBool,
    published: AtomicU64,
    /// Bytes retained over all topics (see [`HubConfig::max_bytes`]) and bytes of idempotency
    /// keys (see [`HubConfig::max_idempotency_bytes`]).
    counters: HubCounters,
    /// Held while one publisher trims for the byte budget; others do not wait for it.
    evicting: Mutex<()>,
    /// Held while one publisher forgets keys for the key budget; others do not wait for it.
    forgetting: Mutex<()>,
}

/// One of a log's "oldest entry" functions: its time, or (dropping it) the next one's.
type Oldest = fn(&TopicLog) -> Option<Instant>;

struct Topics {
    map: HashMap<Topic, Arc<TopicLog>>,
    last_sweep: Instant,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics")
            .field("len", &self.map.len())
            .finish()
    }
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self::new(HubConfig::default())
    }
}

impl MemoryHub {
    /// A hub with the given limits.
    #[must_use]
    pub fn new(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                topics: Mutex::new(Topics {
                    map: HashMap::new(),
                    last_sweep: Instant::now(),
                }),
                closed: AtomicBool::new(false),
                published: AtomicU64::new(0),
                counters: HubCounters::default(),
                evicting: Mutex::new(()),
                forgetting: Mutex::new(()),
            }),
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    fn topics(&self) -> MutexGuard<'_, Topics> {
        self.inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, topic: &Topic) -> Result<Arc<TopicLog>, Error> {
        let mut topics = self.topics();
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(log) = topics.map.get(topic) {
            return Ok(log.clone());
        }
        let config = &self.inner.config;
        let now = Instant::now();
        if topics.map.len() >= config.max_topics
            || now.saturating_duration_since(topics.last_sweep)
                >= config.idle_timeout.max(Duration::from_secs(1))
        {
            Self::sweep_locked(&mut topics, now, config.idle_timeout);
        }
        if topics.map.len() >= config.max_topics {
            Self::reclaim_unsubscribed(&mut topics, config.max_topics);
        }
        if topics.map.len() >= config.max_topics {
            return Err(Error::TooManyTopics {
                limit: config.max_topics,
            });
        }
        let log = Arc::new(TopicLog::new(
            topic.clone(),
            Epoch::random(),
            self.inner.config.clone(),
            &self.inner.counters,
        ));
        topics.map.insert(topic.clone(), log.clone());
        Ok(log)
    }

    fn sweep_locked(topics: &mut Topics, now: Instant, idle_timeout: Duration) {
        topics
            .map
            .retain(|_, log| !log.retire_if_idle(now, idle_timeout));
        topics.last_sweep = now;
    }

    /// At the topic cap: reclaims topics nobody subscribes to, least recently used first, a
    /// sixty-fourth of the cap at a time so that a flood of new names pays for the scan once
    /// per many topics.
    fn reclaim_unsubscribed(topics: &mut Topics, cap: usize) {
        let mut idle: Vec<(Instant, Topic)> = topics
            .map
            .iter()
            .filter_map(|(name, log)| log.idle_since().map(|t| (t, name.clone())))
            .collect();
        let batch = (cap / 64).max(1).min(idle.len());
        if batch == 0 {
            return;
        }
        if batch < idle.len() {
            idle.select_nth_unstable_by_key(batch - 1, |(t, _)| *t);
        }
        for (_, name) in idle.into_iter().take(batch) {
            let unsubscribed = topics
                .map
                .get(&name)
                .is_some_and(|log| log.retire_if_unsubscribed());
            if unsubscribed {
                topics.map.remove(&name);
            }
        }
    }

    /// Trims the oldest events across topics until the hub holds at most 90 % of
    /// [`HubConfig::max_bytes`].
    fn enforce_budget(&self) {
        let inner = &self.inner;
        self.trim_oldest(
            &inner.counters.events,
            inner.config.max_bytes,
            &inner.evicting,
            (TopicLog::front_instant, TopicLog::evict_front),
        );
    }

    /// Forgets the oldest idempotency keys across topics until they take at most 90 % of
    /// [`HubConfig::max_idempotency_bytes`]: a budget of their own, so a flood of keys shortens
    /// the key window and never touches retained events.
    fn enforce_key_budget(&self) {
        let inner = &self.inner;
        self.trim_oldest(
            &inner.counters.keys,
            inner.config.max_idempotency_bytes,
            &inner.forgetting,
            (TopicLog::oldest_key_instant, TopicLog::forget_oldest_key),
        );
    }

    /// When `counter` is over `limit`, takes the oldest entry across topics (by `oldest.0`,
    /// dropping with `oldest.1`, which returns the next one's time) until it is at 90 % of
    /// `limit`, so the scan is paid once per tenth of the budget. One trimmer at a time holds
    /// `lock`; a caller that finds it held goes on.
    fn trim_oldest(
        &self,
        counter: &std::sync::atomic::AtomicUsize,
        limit: usize,
        lock: &Mutex<()>,
        oldest: (Oldest, Oldest),
    ) {
        if counter.load(Ordering::Relaxed) <= limit {
            return;
        }
        let Ok(_trimming) = lock.try_lock() else {
            return;
        };
        let target = limit / 10 * 9;
        let logs: Vec<Arc<TopicLog>> = self.topics().map.values().cloned().collect();
        let (front, drop_front) = oldest;
        let mut heap: BinaryHeap<Reverse<(Instant, usize)>> = logs
            .iter()
            .enumerate()
            .filter_map(|(i, log)| front(log).map(|t| Reverse((t, i))))
            .collect();
        while counter.load(Ordering::Relaxed) > target {
            let Some(Reverse((_, i))) = heap.pop() else {
                break;
            };
            if let Some(next) = drop_front(&logs[i]) {
                heap.push(Reverse((next, i)));
            }
        }
    }

    /// Bytes retained over all topics now (see [`HubConfig::max_bytes`]).
    #[must_use]
    pub fn retained_bytes(&self) -> usize {
        self.inner.counters.events.load(Ordering::Relaxed)
    }

    /// Bytes of idempotency keys remembered over all topics now (see
    /// [`HubConfig::max_idempotency_bytes`]).
    #[must_use]
    pub fn key_bytes(&self) -> usize {
        self.inner.counters.keys.load(Ordering::Relaxed)
    }

    /// Reclaims every idle topic now (see [`HubConfig::idle_timeout`]) and returns how many
    /// topics remain.
    pub fn sweep(&self) -> usize {
        let mut topics = self.topics();
        Self::sweep_locked(&mut topics, Instant::now(), self.inner.config.idle_timeout);
        topics.map.len()
    }

    /// Publishes without a future; see [`Hub::publish`](crate::Hub::publish).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::TooManyTopics`] or [`Error::EventTooLarge`].
    pub fn publish_now(&self, topic: &Topic, event: NewEvent) -> Result<Arc<Event>, Error> {
        let limit = self.inner.config.max_event_bytes;
        if event.len() > limit {
            return Err(Error::EventTooLarge {
                size: event.len(),
                limit,
            });
        }
        let mut event = event;
        loop {
            match self.log(topic)?.publish(event) {
                Ok(published) => {
                    self.inner.published.fetch_add(1, Ordering::Relaxed);
                    self.enforce_budget();
                    self.enforce_key_budget();
                    return Ok(published);
                }
                Err(Refused::Closed) => return Err(Error::Closed),
                Err(Refused::Complete) => return Err(Error::Complete),
                Err(Refused::Retired(back)) => event = back,
            }
        }
    }

    /// Subscribes without a future; see [`Hub::subscribe`](crate::Hub::subscribe).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] or [`Error::TooManyTopics`].
    pub fn subscribe_now(&self, topic: &Topic, from: StartFrom) -> Result<Subscription, Error> {
        loop {
            match self.log(topic)?.subscribe(from) {
                Ok(sub) => {
                    // Encodings cached since the last publish count too.
                    self.enforce_budget();
                    return Ok(sub);
                }
                Err(Refused::Closed | Refused::Complete) => return Err(Error::Closed),
                Err(Refused::Retired(())) => {}
            }
        }
    }

    /// Completes `topic` now (see [`Hub::complete`](crate::Hub::complete)); the last event's
    /// cursor. A topic that does not exist is created complete.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the hub is closed; [`Error::TooManyTopics`] to create it.
    pub fn complete_now(&self, topic: &Topic) -> Result<Cursor, Error> {
        loop {
            match self.log(topic)?.complete() {
                Ok(head) => return Ok(head),
                Err(Refused::Closed | Refused::Complete) => return Err(Error::Closed),
                Err(Refused::Retired(())) => {}
            }
        }
    }

    /// Deletes `topic` now (see [`Hub::delete`](crate::Hub::delete)); whether it existed.
    pub fn delete_now(&self, topic: &Topic) -> bool {
        let log = self.topics().map.remove(topic);
        let existed = log.is_some();
        if let Some(log) = log {
            log.delete();
        }
        existed
    }

    /// The cursor of the newest event of `topic` (sequence 0 if none was published yet), or
    /// `None` if the topic does not exist.
    #[must_use]
    pub fn head_now(&self, topic: &Topic) -> Option<Cursor> {
        self.topics().map.get(topic).map(|log| log.head())
    }
}

impl Backend for MemoryHub {
    fn publish<'a>(
        &'a self,
        topic: &'a Topic,
        event: NewEvent,
    ) -> BoxFuture<'a, Result<Arc<Event>, Error>> {
        let result = self.publish_now(topic, event);
        Box::pin(std::future::ready(result))
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a Topic,
        from: StartFrom,
    ) -> BoxFuture<'a, Result<Subscription, Error>> {
        let result = self.subscribe_now(topic, from);
        Box::pin(std::future::ready(result))
    }

    fn head<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<Option<Cursor>, Error>> {
        let result = if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(self.head_now(topic))
        };
        Box::pin(std::future::ready(result))
    }

    fn complete<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<Cursor, Error>> {
        Box::pin(std::future::ready(self.complete_now(topic)))
    }

    fn topic_stats(&self, topic: &Topic) -> Option<crate::TopicStats> {
        let log = self.topics().map.get(topic).cloned()?;
        let s = log.stats();
        Some(crate::TopicStats {
            subscribers: s.subscribers,
            retained_events: s.events,
            retained_bytes: s.bytes,
        })
    }

    fn delete<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<bool, Error>> {
        let result = if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(self.delete_now(topic))
        };
        Box::pin(std::future::ready(result))
    }

    fn close(&self) {
        let logs: Vec<_> = {
            let mut topics = self.topics();
            self.inner.closed.store(true, Ordering::Release);
            topics.map.drain().map(|(_, log)| log).collect()
        };
        for log in logs {
            log.close();
        }
    }

    fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    fn stats(&self) -> HubStats {
        let logs: Vec<_> = self.topics().map.values().cloned().collect();
        let mut stats = HubStats {
            topics: logs.len(),
            published: self.inner.published.load(Ordering::Relaxed),
            ..HubStats::default()
        };
        for log in logs {
            let s = log.stats();
            stats.subscribers += s.subscribers;
            stats.waiting += s.waiting;
            stats.retained_events += s.events;
            stats.retained_bytes += s.bytes;
        }
        stats
    }
}
