//! [`RedisConfig`]: a hub's settings, their defaults and setters.

use std::time::Duration;

use push_core::HubConfig;

/// Settings of a [`RedisHub`](crate::RedisHub); see the crate docs for the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Retention, topic and event limits, as for the in-memory hub.
    pub hub: HubConfig,
    /// Prepended to a topic name to make its stream key.
    pub key_prefix: String,
    /// How long one `XREAD` blocks before the reader checks whether it is still needed.
    pub block: Duration,
    /// The most entries one `XREAD` returns.
    pub read_count: usize,
    /// How long connecting to Redis may take.
    pub connect_timeout: Duration,
    /// How long a command (other than the readers' blocking read) may wait for its reply.
    pub response_timeout: Duration,
    /// The first delay before a reader reconnects.
    pub backoff_min: Duration,
    /// The longest delay between a reader's reconnection attempts.
    pub backoff_max: Duration,
    /// The most reader connections of a process, whatever its number of topics: each follows
    /// the topics whose names hash to it with one `XREAD BLOCK` over all their streams. In a
    /// cluster, also the number of hash-tag groups, which must be the same on every process.
    pub readers: usize,
    /// Replicas that must hold a publish before it is acknowledged (`WAIT`); 0 (the default)
    /// acknowledges once the master has it, which a failover can lose. Redis streams writes to
    /// a replica that has just synced only from its first acknowledgement, up to a second
    /// later, so publishes may be refused for that long after a replica (re)joins.
    pub wait_replicas: usize,
    /// How long a publish waits for [`wait_replicas`](Self::wait_replicas); past it the
    /// publish's outcome is unknown ([`Error::OutcomeUnknown`]: the master holds it, which a
    /// failover may lose; retry it with its idempotency key).
    ///
    /// [`Error::OutcomeUnknown`]: push_core::Error::OutcomeUnknown
    pub wait_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            hub: HubConfig::default(),
            key_prefix: "push:".to_owned(),
            block: Duration::from_secs(5),
            read_count: 1000,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            readers: 4,
            wait_replicas: 0,
            wait_timeout: Duration::from_secs(1),
        }
    }
}

impl RedisConfig {
    /// Sets [`hub`](Self::hub).
    #[must_use]
    pub fn hub(mut self, hub: HubConfig) -> Self {
        self.hub = hub;
        self
    }

    /// Sets [`key_prefix`](Self::key_prefix).
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets [`block`](Self::block).
    #[must_use]
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// Sets [`readers`](Self::readers) (at least 1).
    #[must_use]
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n.max(1);
        self
    }

    /// Sets [`wait_replicas`](Self::wait_replicas) and [`wait_timeout`](Self::wait_timeout).
    #[must_use]
    pub fn wait_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.wait_replicas = replicas;
        self.wait_timeout = timeout;
        self
    }

    /// Sets [`backoff_min`](Self::backoff_min) and [`backoff_max`](Self::backoff_max).
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }
}
