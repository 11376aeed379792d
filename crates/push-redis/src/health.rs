//! A hub's health: the counters and the availability its connections keep up to date
//! ([`Health`]), and what [`RedisHub::health`](crate::RedisHub::health) reports of them
//! ([`RedisHealth`], [`ReaderHealth`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::unanswered;

/// The health of a [`RedisHub`]'s connections, for metrics.
///
/// [`RedisHub`]: crate::RedisHub
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisHealth {
    /// Shared readers running in this process (at most [`RedisConfig::readers`]).
    ///
    /// [`RedisConfig::readers`]: crate::RedisConfig::readers
    pub readers: usize,
    /// Of those, how many hold a working connection.
    pub readers_connected: usize,
    /// Times a reader connected again after losing its connection.
    pub reconnects: u64,
    /// Events read from Redis by all readers.
    pub events_read: u64,
    /// Publishes that succeeded.
    pub publishes: u64,
    /// Publishes that failed.
    pub publish_errors: u64,
    /// Reads (by readers, or of history for a resume) that failed.
    pub read_errors: u64,
    /// Whether the latest publish succeeded (true until one fails).
    pub publishing: bool,
    /// Whether Redis answers now, as [`RedisHub::is_available`] says.
    ///
    /// [`RedisHub::is_available`]: crate::RedisHub#method.is_available
    pub available: bool,
    /// The text of the latest error, if any.
    pub last_error: Option<String>,
    /// Each shared reader, in order ([`RedisConfig::readers`] of them).
    ///
    /// [`RedisConfig::readers`]: crate::RedisConfig::readers
    pub shards: Vec<ReaderHealth>,
}

/// One shared reader's state, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderHealth {
    /// Whether it runs (it does while it follows topics).
    pub running: bool,
    /// Whether it holds a working connection.
    pub connected: bool,
    /// Topics it follows.
    pub topics: usize,
    /// Times it connected again after losing its connection.
    pub reconnects: u64,
    /// How old the newest event of its latest read was when read, in milliseconds: how far
    /// behind the streams it runs (publish time to read, clocks of two machines allowing).
    pub lag_ms: u64,
    /// In a cluster, the node it reads (`host:port`): a replica of its slot's master, or the
    /// master while it has none.
    pub node: Option<String>,
}

#[derive(Default)]
pub(crate) struct Health {
    pub(crate) readers: AtomicUsize,
    pub(crate) readers_connected: AtomicUsize,
    pub(crate) reconnects: AtomicU64,
    pub(crate) events_read: AtomicU64,
    pub(crate) publishes: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) read_errors: AtomicU64,
    pub(crate) publish_failing: AtomicBool,
    pub(crate) last_error: Mutex<Option<String>>,
    /// How many of the sources below say Redis does not answer now: each reader that lost its
    /// connection and has not read since ([`Shard::down`]), and the command connection while
    /// its latest command went unanswered. Zero: available. One counter, so that
    /// [`RedisHub::is_available`] is one atomic load.
    ///
    /// [`Shard::down`]: crate::hub::Shard::down
    /// [`RedisHub::is_available`]: crate::RedisHub#method.is_available
    pub(crate) down: AtomicUsize,
    /// Whether the latest command (not a reader's read) went unanswered, and no answer from
    /// Redis came since.
    pub(crate) commands_down: AtomicBool,
    /// Whether an outage was logged and its end not yet (feature `tracing`): each is logged
    /// once, however many sources go down and however often they retry.
    #[cfg(feature = "tracing")]
    outage: AtomicBool,
}

impl Health {
    pub(crate) fn error(&self, text: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(text);
    }

    /// Sets one source of [`down`](Self::down); a load and nothing more when it does not
    /// change.
    pub(crate) fn set_down(&self, flag: &AtomicBool, down: bool) {
        if flag.load(Ordering::Acquire) == down {
            return;
        }
        if flag.swap(down, Ordering::AcqRel) != down {
            if down {
                self.down.fetch_add(1, Ordering::AcqRel);
            } else {
                self.down.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// A command was answered (`None`), or failed with `e`: unanswered makes the commands
    /// down, any answer (an error reply included) brings them up.
    pub(crate) fn command(&self, e: Option<&redis::RedisError>) {
        match e {
            Some(e) if unanswered(e) => self.lost(&self.commands_down, e),
            _ => self.heard(&self.commands_down),
        }
    }

    /// One source of [`down`](Self::down) could not reach Redis, for `error`: it is down, and
    /// the first source down starts an outage, logged once (`warn`, with this error).
    pub(crate) fn lost(&self, flag: &AtomicBool, error: &dyn std::fmt::Display) {
        self.set_down(flag, true);
        #[cfg(feature = "tracing")]
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = %error, "redis unreachable");
        }
        #[cfg(not(feature = "tracing"))]
        let _ = error;
    }

    /// [`lost`](Self::lost), keeping `error` as the last error.
    pub(crate) fn failed(&self, flag: &AtomicBool, error: String) {
        self.lost(flag, &error);
        self.error(error);
    }

    /// One source heard from Redis: it is up, and once every source is, a logged outage ends,
    /// logged once (`info`). A load or two when nothing changes.
    pub(crate) fn heard(&self, flag: &AtomicBool) {
        self.set_down(flag, false);
        #[cfg(feature = "tracing")]
        if self.outage.load(Ordering::Acquire)
            && self.available()
            && self.outage.swap(false, Ordering::AcqRel)
        {
            tracing::info!("redis reachable again");
        }
    }

    pub(crate) fn available(&self) -> bool {
        self.down.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> redis::RedisError {
        redis::RedisError::from(std::io::Error::from(kind))
    }

    #[test]
    fn availability_counts_each_source_once() {
        let health = Health::default();
        // A source of `down`, as a reader's `Shard::down` is.
        let down = AtomicBool::default();
        assert!(health.available());
        health.set_down(&down, true);
        health.set_down(&down, true);
        health.command(Some(&io(std::io::ErrorKind::TimedOut)));
        assert_eq!(health.down.load(Ordering::Relaxed), 2);
        health.set_down(&down, false);
        assert!(!health.available(), "commands still unanswered");
        // A server's error answer is still an answer.
        health.command(Some(&redis::make_extension_error("OOM".into(), None)));
        assert!(health.available());
        health.command(None);
        assert_eq!(health.down.load(Ordering::Relaxed), 0);
    }

    /// One outage is one `warn` and one `info`, however many sources fail and retry.
    #[cfg(feature = "tracing")]
    #[test]
    fn an_outage_starts_once_and_ends_once_every_source_is_up() {
        let health = Health::default();
        let reader = AtomicBool::default();
        let outage = || health.outage.load(Ordering::Relaxed);
        health.failed(&reader, "redis reader connect failed".to_owned());
        assert!(outage());
        for _ in 0..3 {
            health.failed(&reader, "redis reader connect failed".to_owned());
            health.command(Some(&io(std::io::ErrorKind::ConnectionRefused)));
        }
        health.heard(&reader);
        assert!(outage(), "the commands are still down");
        health.command(None);
        assert!(!outage() && health.available());
        // A source that stops without hearing from Redis leaves the outage open.
        health.lost(&reader, &"timed out");
        health.set_down(&reader, false);
        assert!(outage());
        health.command(None);
        assert!(!outage());
    }
}
