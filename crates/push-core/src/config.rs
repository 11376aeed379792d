//! Limits and retention, with their defaults.

use std::time::Duration;

/// How much of a topic's history is kept for late subscribers and resuming clients.
///
/// An event leaves the log when any bound is exceeded; the oldest go first. A subscriber whose
/// unread events leave the log gets [`Delivery::Gap`](crate::Delivery::Gap) with the count.
///
/// | bound | default | peers for comparison |
/// |---|---|---|
/// | [`max_events`](Self::max_events) | 1,000 | Nchan: 10 messages |
/// | [`max_age`](Self::max_age) | 1 hour | Nchan: 1 hour |
/// | [`max_bytes`](Self::max_bytes) | 8 MiB | |
///
/// Bytes are counted as [`Event::retained_size`](crate::Event::retained_size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// The most events kept per topic (at least 1).
    pub max_events: usize,
    /// The longest an event is kept.
    pub max_age: Duration,
    /// The most bytes kept per topic; the newest event is always kept, whatever its size, as
    /// long as it is within [`HubConfig::max_event_bytes`].
    pub max_bytes: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_events: 1_000,
            max_age: Duration::from_secs(3600),
            max_bytes: 8 << 20,
        }
    }
}

impl Retention {
    /// Sets [`max_events`](Self::max_events) (a value of 0 is taken as 1).
    #[must_use]
    pub fn max_events(mut self, n: usize) -> Self {
        self.max_events = n.max(1);
        self
    }

    /// Sets [`max_age`](Self::max_age).
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }
}

/// What a reset (a cursor from another epoch, or one that cannot be parsed) starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResetPolicy {
    /// Replay every retained event (the default): the client rebuilds its state from history.
    #[default]
    Oldest,
    /// Only events published from now on.
    Newest,
}

/// The in-memory hub's limits.
///
/// | limit | default |
/// |---|---|
/// | [`retention`](Self::retention) | see [`Retention`] |
/// | [`max_topics`](Self::max_topics) | 10,000 |
/// | [`max_bytes`](Self::max_bytes) | 256 MiB over all topics |
/// | [`max_event_bytes`](Self::max_event_bytes) | 1 MiB |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s |
/// | [`reset_policy`](Self::reset_policy) | [`ResetPolicy::Oldest`] |
/// | [`idempotency_window`](Self::idempotency_window) | 5 min |
/// | [`max_idempotency_keys`](Self::max_idempotency_keys) | 256 per topic |
/// | [`max_idempotency_bytes`](Self::max_idempotency_bytes) | 16 MiB over all topics |
///
/// Events and idempotency keys have budgets of their own, so the hub holds at most about
/// `max_bytes + max_idempotency_bytes` (plus each topic's fixed cost, a few hundred bytes): a
/// flood of keyed publishes forgets the oldest keys sooner, and never trims an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubConfig {
    /// Retention applied to every topic.
    pub retention: Retention,
    /// The most topics that may exist at once. At the cap, creating one more first reclaims
    /// idle topics, then topics without subscribers, least recently used first (their
    /// retained events go, and a later reader's cursor gets [`Outcome::Reset`](crate::Outcome::Reset)),
    /// so a flood of invented names cannot lock new topics out. Only when every topic has a
    /// subscriber does creating one fail, with [`Error::TooManyTopics`](crate::Error::TooManyTopics).
    pub max_topics: usize,
    /// The most bytes retained over all topics, counted as
    /// [`Event::retained_size`](crate::Event::retained_size) (cached encodings included).
    /// Whatever each topic's [`Retention`] allows, a publish that takes the hub over this bound
    /// trims the oldest events across all topics (by publish time) until the hub is back under
    /// 90 % of it; their readers get an exact [`Delivery::Gap`](crate::Delivery::Gap), as with
    /// any retention. Publishing is never refused for it.
    pub max_bytes: usize,
    /// The largest payload a publish may carry, else
    /// [`Error::EventTooLarge`](crate::Error::EventTooLarge).
    pub max_event_bytes: usize,
    /// A topic with no subscribers and no retained events is reclaimed once it has been idle
    /// (no publish, no subscriber) this long. Topics that still retain events are kept until
    /// their events expire, so a resuming client is never reset early.
    pub idle_timeout: Duration,
    /// Where a reset starts.
    pub reset_policy: ResetPolicy,
    /// How long a publish's idempotency key ([`NewEvent::with_idempotency_key`](crate::NewEvent::with_idempotency_key))
    /// is remembered: a publish with the same key on the same topic within it returns the
    /// first one's cursor instead of storing the event again.
    pub idempotency_window: Duration,
    /// The most idempotency keys remembered per topic; past it the oldest is forgotten first
    /// (so a flood of keys costs bounded memory, and shortens the window). A key costs twice
    /// its length plus 100 bytes (at most 356 bytes: keys are at most
    /// [`MAX_IDEMPOTENCY_KEY_LEN`](crate::MAX_IDEMPOTENCY_KEY_LEN) long), counted against
    /// [`max_idempotency_bytes`](Self::max_idempotency_bytes), not against the events' budgets:
    /// at most about 89 KiB per topic at the default.
    pub max_idempotency_keys: usize,
    /// The most bytes of idempotency keys remembered over all topics. Past it, the oldest keys
    /// across topics are forgotten (by when they came) until they take 90 % of it, so a flood
    /// of keys shortens the window of the oldest keys and leaves every retained event alone.
    /// 16 MiB hold about 47,000 keys of the longest kind, and about 42,000 right after a trim.
    pub max_idempotency_bytes: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            max_topics: 10_000,
            max_bytes: 256 << 20,
            max_event_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(60),
            reset_policy: ResetPolicy::Oldest,
            idempotency_window: Duration::from_secs(300),
            max_idempotency_keys: 256,
            max_idempotency_bytes: 16 << 20,
        }
    }
}

impl HubConfig {
    /// Sets [`retention`](Self::retention).
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Sets [`max_topics`](Self::max_topics).
    #[must_use]
    pub fn max_topics(mut self, n: usize) -> Self {
        self.max_topics = n;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    #[must_use]
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets [`max_event_bytes`](Self::max_event_bytes).
    #[must_use]
    pub fn max_event_bytes(mut self, n: usize) -> Self {
        self.max_event_bytes = n;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Sets [`reset_policy`](Self::reset_policy).
    #[must_use]
    pub fn reset_policy(mut self, p: ResetPolicy) -> Self {
        self.reset_policy = p;
        self
    }

    /// Sets [`idempotency_window`](Self::idempotency_window).
    #[must_use]
    pub fn idempotency_window(mut self, d: Duration) -> Self {
        self.idempotency_window = d;
        self
    }

    /// Sets [`max_idempotency_keys`](Self::max_idempotency_keys).
    #[must_use]
    pub fn max_idempotency_keys(mut self, n: usize) -> Self {
        self.max_idempotency_keys = n;
        self
    }

    /// Sets [`max_idempotency_bytes`](Self::max_idempotency_bytes).
    #[must_use]
    pub fn max_idempotency_bytes(mut self, n: usize) -> Self {
        self.max_idempotency_bytes = n;
        self
    }
}
