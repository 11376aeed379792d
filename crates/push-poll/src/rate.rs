//! The minimum-interval check: when each client key last polled each topic.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use push_core::Topic;

/// Last accepted poll per (client key, topic), bounded to `max` entries.
#[derive(Debug)]
pub(crate) struct RateTable {
    min: Duration,
    max: usize,
    /// Keys are hashes with a per-process random seed, so that clients cannot aim collisions.
    hasher: RandomState,
    last: Mutex<HashMap<u64, Instant>>,
}

impl RateTable {
    pub(crate) fn new(min: Duration, max: usize) -> Self {
        Self {
            min,
            max,
            hasher: RandomState::new(),
            last: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn min_interval(&self) -> Duration {
        self.min
    }

    /// Records a poll now, or says how long the client must still wait.
    pub(crate) fn check(&self, client: &str, topic: &Topic) -> Result<(), Duration> {
        self.check_at(client, topic, Instant::now())
    }

    fn check_at(&self, client: &str, topic: &Topic, now: Instant) -> Result<(), Duration> {
        let key = self.hasher.hash_one((client, topic.as_str()));
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&at) = last.get(&key) {
            let since = now.saturating_duration_since(at);
            if since < self.min {
                return Err(self.min - since);
            }
        }
        if last.len() >= self.max && !last.contains_key(&key) {
            // Keys older than the interval no longer limit anyone: forget them. If every key is
            // recent, the table is full of active clients; let this one through untracked.
            let min = self.min;
            last.retain(|_, at| now.saturating_duration_since(*at) < min);
            if last.len() >= self.max {
                return Ok(());
            }
        }
        last.insert(key, now);
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client_and_topic_and_stays_bounded() {
        let table = RateTable::new(Duration::from_secs(1), 2);
        let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
        let t0 = Instant::now();
        assert!(table.check_at("x", &a, t0).is_ok());
        assert_eq!(
            table.check_at("x", &a, t0 + Duration::from_millis(300)),
            Err(Duration::from_millis(700))
        );
        // Another topic, another client: their own clocks.
        assert!(table.check_at("x", &b, t0).is_ok());
        // Full of recent keys: a third is let through untracked.
        assert!(table.check_at("y", &a, t0).is_ok());
        assert!(table.check_at("y", &a, t0).is_ok());
        assert_eq!(table.len(), 2);
        // Later, stale keys make room.
        let t1 = t0 + Duration::from_secs(2);
        assert!(table.check_at("y", &a, t1).is_ok());
        assert!(table.check_at("y", &a, t1).is_err());
        assert_eq!(table.len(), 1);
        assert!(table.check_at("x", &a, t1).is_ok());
    }
}
