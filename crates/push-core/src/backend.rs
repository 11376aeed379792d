//! The backend trait and the [`Hub`] handle that technique crates take.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{
    Batch, BatchLimit, Cursor, Error, Event, MemoryHub, NewEvent, StartFrom, Subscription, Topic,
};

/// A boxed, sendable future, as [`Backend`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where topics live: in this process ([`MemoryHub`]) or in a shared store that several server
/// processes use (such as Redis Streams).
///
/// A backend hands out [`Subscription`]s, which always read an in-process log: a shared-store
/// backend runs one reader per topic that appends what it reads to that log, so local fan-out costs
/// the same whatever the backend, and technique crates never see the difference. Cursors must
/// keep their meaning across processes: same epoch and sequence for the same event everywhere.
///
/// Methods return boxed futures so that [`Hub`] can hold any backend behind one type; the cost is
/// one allocation per publish or subscribe, none per delivered event.
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Appends an event to `topic` (created if needed) and returns it with its cursor.
    ///
    /// A failure must say honestly what happened to the event: [`Error::Backend`] only when
    /// it was certainly not stored (the store could not be reached, or refused the command
    /// before running it), [`Error::OutcomeUnknown`] when the command may have run (sent, then
    /// no answer). When in doubt, it is unknown: a client told "failed" for a stored event
    /// publishes it twice.
    fn publish<'a>(
        &'a self,
        topic: &'a Topic,
        event: NewEvent,
    ) -> BoxFuture<'a, Result<Arc<Event>, Error>>;

    /// Starts reading `topic` (created if needed) from `from`.
    fn subscribe<'a>(
        &'a self,
        topic: &'a Topic,
        from: StartFrom,
    ) -> BoxFuture<'a, Result<Subscription, Error>>;

    /// The cursor of the newest event of `topic`, or `None` if the topic does not exist.
    fn head<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<Option<Cursor>, Error>>;

    /// Completes `topic`: no more publishes ([`Error::Complete`]); every subscription, present
    /// or later, receives the events it has not read, then [`Delivery::Complete`](crate::Delivery::Complete).
    /// Returns the last event's cursor. The topic leaves with retention like any other.
    ///
    /// The default answers [`Error::Unsupported`].
    fn complete<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<Cursor, Error>> {
        let _ = topic;
        Box::pin(std::future::ready(Err(Error::Unsupported("complete"))))
    }

    /// One topic's figures (`None` when it does not exist here, or the backend does not tell).
    fn topic_stats(&self, topic: &Topic) -> Option<TopicStats> {
        let _ = topic;
        None
    }

    /// Deletes `topic` and its events: its subscriptions end (as at a close), and the name
    /// starts a new history (a new epoch: a client resuming with an old cursor gets a reset).
    /// Returns whether it existed.
    ///
    /// The default answers [`Error::Unsupported`].
    fn delete<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = topic;
        Box::pin(std::future::ready(Err(Error::Unsupported("delete"))))
    }

    /// Closes the backend: every subscription ends, publishing and subscribing fail with
    /// [`Error::Closed`].
    fn close(&self);

    /// Whether [`close`](Self::close) was called.
    fn is_closed(&self) -> bool;

    /// Whether the backend can reach its store now, as far as it knows: `false` while a shared
    /// store does not answer (its readers reconnecting, its commands failing), so that
    /// streams can tell their clients why nothing comes. Subscriptions stay open meanwhile
    /// and go on from their positions when it is back.
    ///
    /// Asked by every open stream on each heartbeat tick, so it must be cheap: an atomic load,
    /// no I/O. The default is `true` (an in-process backend is always there).
    fn is_available(&self) -> bool {
        true
    }

    /// Current figures, for metrics.
    fn stats(&self) -> HubStats;
}

/// One topic's figures ([`Hub::topic_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Subscriptions open on it.
    pub subscribers: usize,
    /// Events retained.
    pub retained_events: usize,
    /// Bytes retained (cached encodings included).
    pub retained_bytes: usize,
}

/// Figures about a backend, for metrics and for tests that check resources are released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Topics that exist.
    pub topics: usize,
    /// Live subscriptions.
    pub subscribers: usize,
    /// Subscriptions waiting for an event (for instance held long-poll requests).
    pub waiting: usize,
    /// Events retained over all topics.
    pub retained_events: usize,
    /// Bytes retained over all topics (see [`Event::retained_size`]).
    pub retained_bytes: usize,
    /// Events published since the backend started.
    pub published: u64,
}

/// A cheap, cloneable handle to a [`Backend`]: what every technique crate takes.
///
/// ```
/// use push_core::{Hub, NewEvent, StartFrom, Topic, Outcome, Delivery};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), push_core::Error> {
/// let hub = Hub::memory();
/// let topic = Topic::new("news").unwrap();
/// let first = hub.publish(&topic, NewEvent::new("hello")).await?;
///
/// // A client that saw `first` resumes after it and gets exactly what followed.
/// hub.publish(&topic, NewEvent::new("world")).await?;
/// let mut sub = hub.subscribe(&topic, StartFrom::After(first.id())).await?;
/// assert_eq!(sub.outcome(), Outcome::Resumed);
/// let Some(Delivery::Event(event)) = sub.recv().await else { unreachable!() };
/// assert_eq!(event.data(), "world");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Hub {
    backend: Arc<dyn Backend>,
    /// Turns true when [`Hub::close`] is called, for [`Hub::closed`].
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::memory()
    }
}

impl Hub {
    /// An in-memory hub with the default [`HubConfig`](crate::HubConfig).
    #[must_use]
    pub fn memory() -> Self {
        Self::new(MemoryHub::default())
    }

    /// A hub over any backend.
    #[must_use]
    pub fn new(backend: impl Backend) -> Self {
        Self {
            backend: Arc::new(backend),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Publishes an event to `topic` (created if needed). A publish to a topic without
    /// subscribers is retained like any other, so a client that connects a moment later can
    /// replay it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::TooManyTopics`], [`Error::EventTooLarge`],
    /// [`Error::Backend`] when a shared store is unreachable (nothing was stored), or
    /// [`Error::OutcomeUnknown`] when the store was asked but did not answer (the event may
    /// be stored: repeat the publish with the same idempotency key).
    pub async fn publish(&self, topic: &Topic, event: NewEvent) -> Result<Arc<Event>, Error> {
        self.backend.publish(topic, event).await
    }

    /// Subscribes to `topic` from `from`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::TooManyTopics`] or [`Error::Backend`].
    pub async fn subscribe(&self, topic: &Topic, from: StartFrom) -> Result<Subscription, Error> {
        self.backend.subscribe(topic, from).await
    }

    /// Reads what is retained after `from` now, up to `limit` events, without waiting: the
    /// short-poll access pattern.
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Self::subscribe).
    pub async fn read(
        &self,
        topic: &Topic,
        from: StartFrom,
        limit: impl Into<BatchLimit>,
    ) -> Result<Batch, Error> {
        let mut sub = self.subscribe(topic, from).await?;
        sub.try_batch(limit).ok_or(Error::Closed)
    }

    /// The cursor of the newest event of `topic`, or `None` if it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] or [`Error::Backend`].
    pub async fn head(&self, topic: &Topic) -> Result<Option<Cursor>, Error> {
        self.backend.head(topic).await
    }

    /// Completes `topic`: a finished job, a generated answer that reached its end. No more
    /// publishes; every reader gets the rest, then [`Delivery::Complete`](crate::Delivery::Complete),
    /// and each technique tells its clients to stop (SSE answers a reconnect `204`). Returns
    /// the last event's cursor.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], a backend failure, [`Error::OutcomeUnknown`] (repeat it: completing
    /// twice is once), or [`Error::Unsupported`].
    pub async fn complete(&self, topic: &Topic) -> Result<Cursor, Error> {
        self.backend.complete(topic).await
    }

    /// One topic's figures: its subscriber count, what it retains. `None` when the topic does
    /// not exist (or the backend does not tell).
    #[must_use]
    pub fn topic_stats(&self, topic: &Topic) -> Option<TopicStats> {
        self.backend.topic_stats(topic)
    }

    /// Deletes `topic` and its events; its readers end, and the name starts a new history.
    /// Returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], a backend failure, [`Error::OutcomeUnknown`] (repeat it; a repeat
    /// of a delete that took effect answers `false`), or [`Error::Unsupported`].
    pub async fn delete(&self, topic: &Topic) -> Result<bool, Error> {
        self.backend.delete(topic).await
    }

    /// Closes the hub: every subscription ends cleanly, so servers can drain, and every
    /// [`closed`](Self::closed) future resolves. This is the one call a server's graceful stop
    /// needs: every technique crate ends its open streams with its goodbye when it happens.
    pub fn close(&self) {
        self.backend.close();
        self.closing.send_replace(true);
    }

    /// Resolves once [`close`](Self::close) was called on this hub or a clone of it (at once if
    /// it already was). What a long-lived connection that holds no subscription (a WebSocket
    /// waiting for its client's first subscribe) waits on to say goodbye.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            // An error means every sender is gone: no hub is left to close.
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Whether the hub was closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.backend.is_closed()
    }

    /// Whether the backend can reach its store now ([`Backend::is_available`]): always `true`
    /// in memory; `false` while a shared store does not answer. One atomic load for the
    /// backends of this workspace; stream endpoints ask it on each heartbeat tick.
    #[must_use]
    pub fn is_available(&self) -> bool {
        self.backend.is_available()
    }

    /// Current figures.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        self.backend.stats()
    }
}
