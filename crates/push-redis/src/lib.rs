//! A [`push_core::Backend`] on **Redis Streams**: several push servers share topics, and a cursor
//! that one server handed out resumes on any other.
//!
//! ```no_run
//! use push_core::Hub;
//! use push_redis::{RedisConfig, RedisHub};
//!
//! # async fn run() -> Result<(), push_redis::RedisError> {
//! let hub = Hub::new(RedisHub::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?);
//! // Hand `hub` to push-sse, push-ws, push-poll … exactly as an in-memory hub.
//! # Ok(()) }
//! ```
//!
//! # How topics map to streams
//!
//! Topic `t` is the stream `{key_prefix}t` (`push:t` by default). Each entry has the fields
//! `data` (the payload, binary-safe), `time` (publish time in milliseconds since the Unix
//! epoch) and, when set, `type`, and `kind` (`json` or `binary`) when the payload is not text;
//! a JSON payload read back is checked again.
//!
//! A topic's end ([`Hub::complete`](push_core::Hub::complete)) is an entry of its own with the
//! field `end` = `complete`, taking the end's sequence number (as push-core's end does): the
//! publish script refuses to append after it ([`Error::Complete`]), and every server's reader
//! completes its replica when it reads it. [`Hub::delete`](push_core::Hub::delete) trims the
//! stream and leaves one `end` = `deleted` entry, so every server's readers end; the next
//! publish or subscribe replaces the stream with a new epoch.
//!
//! A cursor **is** the entry's stream id: every entry of a stream has the same milliseconds part,
//! which is the topic's [`Epoch`](push_core::Epoch), and sequence numbers 1, 2, 3 … so that the
//! distance between two cursors is the number of events between them and a gap can be counted
//! exactly. A publish runs a small Lua script that appends with `XADD key MAXLEN ~ N E-*`
//! (atomic, so two servers publishing at once never interleave ids); a stream that does not
//! exist gets a new epoch from the Redis server's clock. So:
//!
//! - the same event has the same cursor on every server;
//! - a stream that was deleted (or emptied and written again) has a new, larger epoch, and a
//!   client holding a cursor of the old one gets [`Outcome::Reset`](push_core::Outcome::Reset);
//! - a cursor whose events were trimmed from the stream gets an exact
//!   [`Outcome::Gap`](push_core::Outcome::Gap).
//!
//! The cursor's text form is push-core's (`{epoch:x}-{seq}`, the epoch in hex); the stream id
//! has the epoch in decimal. Client cursors are parsed strictly by push-core.
//!
//! # Reading: a few shared readers per process
//!
//! Subscriptions never talk to Redis. The first subscription to a topic in a process creates a
//! [`ReplicaLog`] at the stream's head and hands the topic to one of the process's readers
//! ([`RedisConfig::readers`], 4 by default), chosen by a hash of its name. A reader is one
//! connection looping on one `XREAD BLOCK` over the streams of all its topics, each from the
//! last id it saw, and appends what it reads to their replicas; a topic joining a reader
//! interrupts its blocking read with `CLIENT UNBLOCK`, so the next read includes it at once.
//! So a process holds at most `readers` reading connections, whatever its number of topics, plus
//! one for commands. Every subscriber of the process reads the replica at its own position, as
//! with the in-memory hub. A resume from a cursor older than the replica holds is served by one
//! `XREVRANGE` that puts the missing events in front of the replica (up to retention by count),
//! so later resumes from that range cost nothing. A topic leaves its reader once it has had no
//! subscriber for [`HubConfig::idle_timeout`]; a reader with no topic closes its connection and
//! starts again with the next.
//!
//! Publishes share one multiplexed connection, so concurrent publishes are pipelined.
//!
//! # Redis Cluster (feature `cluster`)
//!
//! `RedisHub::connect_cluster` takes seeds of a cluster; the redis crate's cluster client
//! routes every command by key and follows `MOVED` and `ASK`. One `XREAD` may only name keys
//! of one slot, so a topic's stream is `{key_prefix}{TAG}{topic}`, `TAG` being the hash tag of
//! one of [`RedisConfig::readers`] groups (set the same on every process): the groups' slots
//! are spread evenly over the slot space, so over the masters, and one reader per group follows
//! all its topics on one connection, found with `CLUSTER SLOTS` whenever it connects.
//!
//! A failover must not take back what a client saw: Redis replicates asynchronously, and the
//! replica promoted when a master dies may lack its last writes and reuse their ids. So readers
//! read a replica of their slot's master (the master only while it has none), new
//! subscriptions take the head from that replica, and resumes read history from replicas; a
//! client is only ever handed what the next master will hold. With
//! [`RedisConfig::wait_replicas`] at 1, a publish is acknowledged only once a replica holds it
//! (`WAIT` in the same pipeline as the write, so on the node that took it), so an acknowledged
//! publish survives the failover too; one that was not acknowledged may still be stored
//! ([`Error::OutcomeUnknown`]), and retrying it with its idempotency key stores it once. While
//! a slot's master has no replica (after a failover, until the old master comes back as a
//! replica), its publishes are then not acknowledged. A failure of the new master within a
//! moment of the old one (before the readers moved to the new replica) is not covered.
//!
//! # Failures
//!
//! A failed publish says what happened to its event (its message starts with `redis`):
//!
//! - [`Error::Backend`], push-http's `503`: it was **not** stored.
//!   The connection could not be made (refused, a missing socket, authentication failed), or
//!   Redis refused the script before running it (`NOSCRIPT` once reloading failed, `READONLY`,
//!   `LOADING`, `BUSY`, `OOM`, `NOREPLICAS`, `MISCONF`, cluster redirections left over, …).
//! - [`Error::OutcomeUnknown`], push-http's `202` with
//!   `"outcome":"unknown"`: the script was sent and its answer did not come, so it may be
//!   stored, now or later. A response timeout ([`RedisConfig::response_timeout`]: a Redis
//!   that is paused runs what it received when it resumes), the connection lost while the
//!   request was in flight, an answer that is not an entry id, and with
//!   [`RedisConfig::wait_replicas`] a `WAIT` that counted too few replicas (the master holds
//!   it). When the `redis` crate's error cannot tell whether the request was written (a
//!   connect timeout looks like a response timeout), the outcome is unknown. Repeat the publish
//!   with the same idempotency key: the retry answers the stored event's cursor, or stores it
//!   once. Without a key, a retry may store it twice.
//!
//! `complete` and `delete` fail the same two ways; both are safe to repeat as they are.
//!
//! - Readers reconnect with exponential backoff ([`RedisConfig::backoff_min`] to
//!   [`RedisConfig::backoff_max`]) and resume with `XREAD` from the last id they saw, so
//!   subscribers stay attached and receive every event once, in order. If Redis lost the stream
//!   meanwhile (no persistence), the next events carry a new epoch: subscriptions of the old
//!   epoch end and resuming clients get a reset.
//! - While a reader has lost its connection and not read since, or the latest command went
//!   unanswered and Redis has answered nothing since, the hub is not available
//!   ([`Hub::is_available`](push_core::Hub::is_available), one atomic load): push-http's
//!   streams write an away notice instead of their heartbeats (push-sse: a comment; push-stream:
//!   `{"heartbeat":MS,"away":"backend unavailable"}`), stay open, and go on from their cursors
//!   when Redis is back. A paused Redis is noticed within [`RedisConfig::block`] plus
//!   [`RedisConfig::response_timeout`] (a reader's read times out), or at the first unanswered
//!   command.
//! - [`RedisHub::health`] reports it: readers running and connected, reconnects, errors, the
//!   last error's text, and whether the hub is available.
//!
//! # Idempotency keys
//!
//! A publish's idempotency key ([`NewEvent::with_idempotency_key`]) is checked and recorded by
//! the publish script, atomically with the append, so two servers retrying one publish at once
//! store it once. A topic's keys are a hash (`{stream}#idem`: key to entry id) and a sorted set
//! (`{stream}#idem-at`: key by arrival, on the Redis clock), bounded by count as in memory:
//! keys older than [`HubConfig::idempotency_window`] are forgotten, and past
//! [`HubConfig::max_idempotency_keys`] the oldest go first, so a flood of keyed publishes holds
//! at most that many keys per topic (each step O(log n)). Both expire a window after the
//! latest keyed publish and go with the topic when it is deleted.
//! ([`HubConfig::max_idempotency_bytes`] bounds a process's memory; Redis holds at most
//! `max_idempotency_keys` per topic.)
//!
//! # Retention
//!
//! [`Retention::max_events`](push_core::Retention::max_events) is both the stream's
//! `MAXLEN ~` and the replica's bound; age and byte bounds apply to the replica (stream ids carry
//! the epoch, not the time, so `MINID` cannot express an age).
//!
//! # Limits and defaults
//!
//! | setting | default |
//! |---|---|
//! | [`RedisConfig::hub`] | [`HubConfig::default`] (1,000 events per topic, 10,000 topics, 1 MiB per event, 60 s idle) |
//! | [`RedisConfig::key_prefix`] | `push:` |
//! | [`RedisConfig::block`] | 5 s |
//! | [`RedisConfig::read_count`] | 1,000 entries per read |
//! | [`RedisConfig::connect_timeout`] | 1 s |
//! | [`RedisConfig::response_timeout`] | 2 s |
//! | [`RedisConfig::backoff_min`] / [`backoff_max`](RedisConfig::backoff_max) | 50 ms / 2 s |
//! | [`RedisConfig::readers`] | 4 reader connections per process (in a cluster, also the hash-tag groups) |
//! | [`RedisConfig::wait_replicas`] / [`wait_timeout`](RedisConfig::wait_timeout) | 0 (acknowledged once the master has it) / 1 s |
//! | idempotency keys per topic | [`HubConfig::max_idempotency_keys`] (256), each for [`HubConfig::idempotency_window`] (5 min) |

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cluster")]
mod cluster;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use push_core::{
    Backend, BoxFuture, Cursor, Error, Event, HubConfig, HubStats, NewEvent, ReplicaLog,
    ResetPolicy, StartFrom, Subscription, Topic,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::watch;

/// Settings of a [`RedisHub`]; see the crate docs for the defaults.
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

/// What can go wrong with Redis. A failed command reaches callers inside
/// [`push_core::Error::Backend`] (it did not run) or [`push_core::Error::OutcomeUnknown`] (a
/// write that may have run); its text says which operation failed and why. No type of the
/// `redis` crate is part of this API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is invalid or the server cannot be reached.
    #[error("cannot connect to redis: {0}")]
    Connect(String),
    /// A command failed.
    #[error("redis {op} failed: {reason}")]
    Command {
        /// The operation (`publish`, `read`, …).
        op: &'static str,
        /// What Redis or the connection said.
        reason: String,
    },
}

impl RedisError {
    /// A failure of a command that did not run: [`Error::Backend`].
    fn boxed(op: &'static str, source: redis::RedisError) -> Error {
        Error::Backend(Box::new(Self::Command {
            op,
            reason: source.to_string(),
        }))
    }

    /// A failure of a command that writes: [`Error::Backend`] when it certainly did not run
    /// ([`not_run`]), else [`Error::OutcomeUnknown`].
    fn write(op: &'static str, source: &redis::RedisError) -> Error {
        let error = Box::new(Self::Command {
            op,
            reason: source.to_string(),
        });
        if not_run(source) {
            Error::Backend(error)
        } else {
            Error::OutcomeUnknown(error)
        }
    }

    /// A write whose command ran, or may have, but whose outcome is not known: `reason` says
    /// why.
    fn unknown(op: &'static str, reason: String) -> Error {
        Error::OutcomeUnknown(Box::new(Self::Command { op, reason }))
    }

    fn connect(source: redis::RedisError) -> Self {
        Self::Connect(source.to_string())
    }
}

/// Whether a command that failed with `e` certainly did not run, so that nothing it would have
/// written is stored. What the `redis` crate (1.x) tells apart:
///
/// - The connection could not be made (`is_connection_refusal`: `ECONNREFUSED`, or a missing
///   unix socket), authentication failed, the client refused the command itself, or a cluster
///   client found no connection for the slot: nothing was written.
/// - Redis refused the command before running it: `NOSCRIPT`, `MOVED`, `ASK`, `TRYAGAIN`,
///   `CLUSTERDOWN`, `CROSSSLOT`, `MASTERDOWN`, `READONLY`, `LOADING`, `NOPERM`, `EXECABORT`,
///   `BUSY`, and those a script meets at its first write, before which it wrote nothing an
///   event depends on (`OOM`, `NOREPLICAS`, `MISCONF`), or at connection (`NOAUTH`,
///   `WRONGPASS`).
///
/// Everything else may have run: a response timeout (the request may have been written; a
/// paused Redis runs it when it resumes), a connection closed or reset while the request was
/// in flight (`BrokenPipe`, `ConnectionReset`, `UnexpectedEof`: the `redis` crate reports a
/// request whose connection task ended, written or not, as `BrokenPipe`), an answer that did
/// not parse, or a script error raised after it wrote. A timeout while connecting is also an
/// `io::ErrorKind::TimedOut`, the same as a response timeout, so it counts as unknown too.
fn not_run(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind as Kind, ServerErrorKind as Server};
    if e.is_connection_refusal() {
        return true;
    }
    match e.kind() {
        Kind::Client
        | Kind::InvalidClientConfig
        | Kind::AuthenticationFailed
        | Kind::ClusterConnectionNotFound
        | Kind::RESP3NotSupported => true,
        Kind::Server(
            Server::NoScript
            | Server::Moved
            | Server::Ask
            | Server::TryAgain
            | Server::ClusterDown
            | Server::CrossSlot
            | Server::MasterDown
            | Server::ReadOnly
            | Server::BusyLoading
            | Server::NoPerm
            | Server::ExecAbort,
        ) => true,
        Kind::Extension => matches!(
            e.code(),
            Some("BUSY" | "OOM" | "NOREPLICAS" | "MISCONF" | "NOAUTH" | "WRONGPASS")
        ),
        _ => false,
    }
}

/// Whether `e` says Redis did not answer (an I/O error or timeout), as opposed to an answer
/// that was an error: what makes the hub [unavailable](RedisHub::is_available).
fn unanswered(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// The health of a [`RedisHub`]'s connections, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisHealth {
    /// Shared readers running in this process (at most [`RedisConfig::readers`]).
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
    pub available: bool,
    /// The text of the latest error, if any.
    pub last_error: Option<String>,
    /// Each shared reader, in order ([`RedisConfig::readers`] of them).
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

/// How a hub reaches Redis: one server, or a cluster.
enum Mode {
    Single(redis::Client),
    #[cfg(feature = "cluster")]
    Cluster(Arc<cluster::Cluster>),
}

/// The connection for commands (everything but the readers' blocking reads), which routes
/// each command to the node of its key in a cluster.
#[derive(Clone)]
enum Commands {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Topics shared through Redis Streams; see the crate docs.
///
/// Cheap to clone. Must be created inside a Tokio runtime (readers are tasks).
#[derive(Clone)]
pub struct RedisHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHub")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    mode: Mode,
    commands: Commands,
    config: RedisConfig,
    publish: redis::Script,
    head: redis::Script,
    complete: redis::Script,
    delete: redis::Script,
    topics: Mutex<HashMap<Topic, Arc<TopicEntry>>>,
    /// The shared readers ([`RedisConfig::readers`]).
    shards: Vec<Arc<Shard>>,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    published: AtomicU64,
    health: Arc<Health>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every handle is gone: readers stop (the shutdown sender drops), and subscriptions
        // still held end instead of waiting forever.
        let topics = self
            .topics
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for entry in topics.values() {
            if let Some(local) = entry.local().as_ref() {
                local.log.close();
            }
        }
    }
}

#[derive(Default)]
struct Health {
    readers: AtomicUsize,
    readers_connected: AtomicUsize,
    reconnects: AtomicU64,
    events_read: AtomicU64,
    publishes: AtomicU64,
    publish_errors: AtomicU64,
    read_errors: AtomicU64,
    publish_failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// How many of the sources below say Redis does not answer now: each reader that lost its
    /// connection and has not read since ([`Shard::down`]), and the command connection while
    /// its latest command went unanswered. Zero: available. One counter, so that
    /// [`RedisHub::is_available`] is one atomic load.
    down: AtomicUsize,
    /// Whether the latest command (not a reader's read) went unanswered, and no answer from
    /// Redis came since.
    commands_down: AtomicBool,
}

impl Health {
    fn error(&self, text: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(text);
    }

    /// Sets one source of [`down`](Self::down); a load and nothing more when it does not
    /// change.
    fn set_down(&self, flag: &AtomicBool, down: bool) {
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
    fn command(&self, e: Option<&redis::RedisError>) {
        self.set_down(&self.commands_down, e.is_some_and(unanswered));
    }

    fn available(&self) -> bool {
        self.down.load(Ordering::Acquire) == 0
    }
}

/// One topic this process reads.
struct TopicEntry {
    topic: Topic,
    key: String,
    /// The replica, once initialised; replaced when the stream's epoch changes.
    local: Mutex<Option<Local>>,
    /// Serialises initialisation, so that one reader starts per topic.
    init: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Local {
    log: ReplicaLog,
    /// Whether the replica already holds everything the stream retains (no history to fetch).
    complete: bool,
}

impl Local {
    /// An empty replica at `head`, the stream's newest entry (sequence 0: an empty stream, so
    /// nothing older to fetch).
    fn at(topic: &Topic, head: Cursor, config: HubConfig) -> Self {
        Self {
            log: ReplicaLog::new(topic.clone(), head.epoch(), head.seq(), config),
            complete: head.seq() == 0,
        }
    }
}

impl TopicEntry {
    fn local(&self) -> MutexGuard<'_, Option<Local>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RedisHub {
    /// Connects to the Redis server at `url` (`redis://host:port/db`).
    ///
    /// # Errors
    ///
    /// [`RedisError::Connect`] when the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, RedisError> {
        let client = redis::Client::open(url).map_err(RedisError::connect)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_min_delay(config.backoff_min)
            .set_max_delay(config.backoff_max)
            .set_number_of_retries(2);
        let commands = ConnectionManager::new_with_config(client.clone(), manager)
            .await
            .map_err(RedisError::connect)?;
        Ok(Self::with(
            Mode::Single(client),
            Commands::Single(commands),
            config,
        ))
    }

    /// Connects to a Redis Cluster through `seeds` (`redis://host:port` of one or more of its
    /// nodes; the first one's settings, such as a password, serve every node).
    ///
    /// The redis crate's cluster client routes every command to the node of its key and
    /// follows `MOVED` and `ASK`. Each topic's stream carries the hash tag of one of
    /// [`RedisConfig::readers`] groups (set the same on every process), spread over the slot
    /// space; each group's reader holds one connection to a replica of its slot's master (the
    /// master while it has none), found with `CLUSTER SLOTS` whenever it connects and checked
    /// with the node's own `ROLE`.
    ///
    /// # Errors
    ///
    /// [`RedisError::Connect`] when a seed is invalid or no node can be reached.
    #[cfg(feature = "cluster")]
    pub async fn connect_cluster(seeds: &[&str], config: RedisConfig) -> Result<Self, RedisError> {
        use redis::IntoConnectionInfo as _;
        let infos = seeds
            .iter()
            .map(|seed| seed.into_connection_info())
            .collect::<Result<Vec<_>, _>>()
            .map_err(RedisError::connect)?;
        let seed = infos
            .first()
            .cloned()
            .ok_or_else(|| RedisError::Connect("no cluster seed".to_owned()))?;
        // Read-only commands (a resume's history) go to replicas, as the readers do.
        let client = redis::cluster::ClusterClientBuilder::new(infos)
            .read_routing_strategy(redis::cluster_read_routing::RandomReplicaStrategy)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            .build()
            .map_err(RedisError::connect)?;
        let commands = client
            .get_async_connection()
            .await
            .map_err(RedisError::connect)?;
        let cluster = cluster::Cluster {
            seed,
            tags: cluster::tags(config.readers),
        };
        Ok(Self::with(
            Mode::Cluster(Arc::new(cluster)),
            Commands::Cluster(commands),
            config,
        ))
    }

    fn with(mode: Mode, commands: Commands, config: RedisConfig) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                mode,
                commands,
                shards: (0..config.readers.max(1))
                    .map(|index| {
                        Arc::new(Shard {
                            index,
                            ..Shard::default()
                        })
                    })
                    .collect(),
                config,
                publish: stream::publish_script(),
                head: stream::head_script(),
                complete: stream::complete_script(),
                delete: stream::delete_script(),
                topics: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                shutdown,
                published: AtomicU64::new(0),
                health: Arc::default(),
            }),
        }
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The stream key of `topic`: `{key_prefix}{topic}` on one server; in a cluster
    /// `{key_prefix}{TAG}{topic}`, with the hash tag of the topic's reader group.
    #[must_use]
    pub fn key(&self, topic: &Topic) -> String {
        match &self.inner.mode {
            Mode::Single(_) => format!("{}{}", self.inner.config.key_prefix, topic.as_str()),
            #[cfg(feature = "cluster")]
            Mode::Cluster(cluster) => format!(
                "{}{{{}}}{}",
                self.inner.config.key_prefix,
                cluster.tags[cluster::group(topic, cluster.tags.len())],
                topic.as_str()
            ),
        }
    }

    /// Connection health, for metrics.
    #[must_use]
    pub fn health(&self) -> RedisHealth {
        let h = &self.inner.health;
        RedisHealth {
            readers: h.readers.load(Ordering::Relaxed),
            readers_connected: h.readers_connected.load(Ordering::Relaxed),
            reconnects: h.reconnects.load(Ordering::Relaxed),
            events_read: h.events_read.load(Ordering::Relaxed),
            publishes: h.publishes.load(Ordering::Relaxed),
            publish_errors: h.publish_errors.load(Ordering::Relaxed),
            read_errors: h.read_errors.load(Ordering::Relaxed),
            publishing: !h.publish_failing.load(Ordering::Relaxed),
            available: h.available(),
            last_error: h
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            shards: self
                .inner
                .shards
                .iter()
                .map(|s| ReaderHealth {
                    running: s.started.load(Ordering::Relaxed),
                    connected: s.connected.load(Ordering::Relaxed),
                    topics: s.entries().len(),
                    reconnects: s.reconnects.load(Ordering::Relaxed),
                    lag_ms: s.lag_ms.load(Ordering::Relaxed),
                    node: s
                        .node
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .as_ref()
                        .map(|(host, port)| format!("{host}:{port}")),
                })
                .collect(),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    async fn do_publish(&self, topic: &Topic, event: NewEvent) -> Result<Arc<Event>, Error> {
        self.check_open()?;
        let limit = self.inner.config.hub.max_event_bytes;
        if event.len() > limit {
            return Err(Error::EventTooLarge {
                size: event.len(),
                limit,
            });
        }
        let published_at = SystemTime::now();
        let stream_key = self.key(topic);
        let [idem, idem_at] = stream::idempotency_keys(&stream_key);
        let hub = &self.inner.config.hub;
        let mut publish = redis::cmd("EVALSHA");
        publish
            .arg(self.inner.publish.get_hash())
            .arg(3)
            .arg(&stream_key)
            .arg(idem)
            .arg(idem_at)
            .arg(hub.retention.max_events.max(1))
            .arg(event.idempotency_key().unwrap_or(""))
            .arg(
                u64::try_from(hub.idempotency_window.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .arg(hub.max_idempotency_keys.max(1));
        for field in stream::fields(&event, published_at) {
            publish.arg(field);
        }
        let health = &self.inner.health;
        let id = match self.run_publish(publish).await {
            Ok(id) => id,
            Err(Error::Complete) => return Err(Error::Complete),
            Err(error) => {
                health.publish_errors.fetch_add(1, Ordering::Relaxed);
                health.publish_failing.store(true, Ordering::Relaxed);
                health.error(error.to_string());
                return Err(error);
            }
        };
        health.publishes.fetch_add(1, Ordering::Relaxed);
        health.publish_failing.store(false, Ordering::Relaxed);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        // The script ran and answered something else than an id: it may have stored it.
        let cursor = stream::parse_id(&id).ok_or_else(|| {
            RedisError::unknown(
                "publish",
                format!("redis returned an unexpected stream id {id:?}"),
            )
        })?;
        Ok(Arc::new(Event::restored(
            cursor,
            topic.clone(),
            event,
            published_at,
        )))
    }

    /// Runs the publish script (`EVALSHA`, loading the script where a node lacks it) and returns
    /// the entry's id. With [`RedisConfig::wait_replicas`], `WAIT` follows in the same pipeline:
    /// the pipeline goes to one node as a whole, and is sent again as a whole when the script is
    /// redirected, so `WAIT` always counts the replicas of the node and connection that wrote,
    /// whatever a cluster client's slot map says by then.
    ///
    /// Fails with [`Error::Backend`] only where the script certainly did not run ([`not_run`]:
    /// not connected, refused before running, `NOSCRIPT` and a failed reload), else with
    /// [`Error::OutcomeUnknown`]: no answer, or a `WAIT` that did not count enough replicas (the
    /// master holds the entry, which a failover may lose).
    async fn run_publish(&self, publish: redis::Cmd) -> Result<Vec<u8>, Error> {
        let config = &self.inner.config;
        let health = &self.inner.health;
        let mut pipe = redis::pipe();
        pipe.ignore_errors().add_command(publish);
        if config.wait_replicas > 0 {
            pipe.cmd("WAIT").arg(config.wait_replicas).arg(
                u64::try_from(config.wait_timeout.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        }
        let mut conn = self.inner.commands.clone();
        let mut loads = 0;
        let (written, waited) = loop {
            let replies: Vec<redis::RedisResult<Value>> = match pipe.query_async(&mut conn).await {
                Ok(replies) => replies,
                Err(e) => {
                    health.command(Some(&e));
                    return Err(RedisError::write("publish", &e));
                }
            };
            health.command(None);
            let mut replies = replies.into_iter();
            match replies.next() {
                Some(Err(e))
                    if loads < 3
                        && e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    loads += 1;
                    // The publish did not run: whatever the load does, nothing is stored.
                    self.inner
                        .publish
                        .load_async(&mut conn)
                        .await
                        .map_err(|e| {
                            health.command(Some(&e));
                            RedisError::boxed("publish", e)
                        })?;
                }
                Some(written) => break (written, replies.next()),
                None => {
                    return Err(RedisError::unknown(
                        "publish",
                        "redis answered no reply".into(),
                    ))
                }
            }
        };
        let id = match written {
            Ok(id) => redis::from_redis_value::<Vec<u8>>(id).map_err(|e| {
                RedisError::unknown(
                    "publish",
                    format!("redis returned an unexpected stream id: {e}"),
                )
            })?,
            Err(e) if e.code() == Some("PUSHCOMPLETE") => return Err(Error::Complete),
            Err(e) => return Err(RedisError::write("publish", &e)),
        };
        // From here on the entry is stored on the node that took it.
        match waited {
            None => Ok(id),
            Some(Ok(Value::Int(n))) if usize::try_from(n).unwrap_or(0) >= config.wait_replicas => {
                Ok(id)
            }
            Some(Ok(Value::Int(n))) => Err(RedisError::unknown(
                "publish",
                format!(
                    "{n} of {} replicas hold it after {:?}; it may still be stored: retry with its idempotency key",
                    config.wait_replicas, config.wait_timeout
                ),
            )),
            Some(Ok(other)) => Err(RedisError::unknown(
                "publish",
                format!("redis WAIT answered {other:?}"),
            )),
            Some(Err(e)) => Err(RedisError::unknown("publish", format!("redis WAIT failed: {e}"))),
        }
    }

    /// The newest id of `key` as a cursor, creating the stream when `create` is set.
    async fn redis_head(&self, key: &str, create: bool) -> Result<Option<Cursor>, Error> {
        Ok(self
            .redis_head_end(key, create)
            .await?
            .filter(|(_, end)| *end != Some(stream::End::Deleted))
            .map(|(head, _)| head))
    }

    /// The newest id of `key` and what it ends with, if an end entry.
    async fn redis_head_end(
        &self,
        key: &str,
        create: bool,
    ) -> Result<Option<(Cursor, Option<stream::End>)>, Error> {
        let mut conn = self.inner.commands.clone();
        #[cfg(feature = "cluster")]
        if let Commands::Cluster(c) = &mut conn {
            // On a replica: a head handed out must survive a failover. The master only
            // creates a stream that does not exist yet, and then is read again.
            let read = self
                .replica_head(c, key)
                .await
                .map_err(|e| self.read_error("head", e))?;
            self.inner.health.command(None);
            let deleted = matches!(&read, Some((_, end)) if end.as_slice() == b"deleted");
            if !create || (read.is_some() && !deleted) {
                return Ok(Self::parse_head(read));
            }
        }
        let reply: Option<(Vec<u8>, Vec<u8>)> = self
            .inner
            .head
            .key(key)
            .arg(if create { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.read_error("head", e))?;
        self.inner.health.command(None);
        Ok(Self::parse_head(reply))
    }

    /// The head script's answer on a replica of `key`'s master, read-only: `EVALSHA_RO`, and
    /// the script's text (`EVAL_RO`) only when that replica does not know it yet.
    #[cfg(feature = "cluster")]
    async fn replica_head(
        &self,
        conn: &mut redis::cluster_async::ClusterConnection,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, redis::RedisError> {
        use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
        static HEAD_LUA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let slot = u16::try_from(cluster::key_slot(key)).unwrap_or(0);
        let route = || {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                slot,
                SlotAddr::ReplicaRequired,
            )))
        };
        let mut cmd = redis::cmd("EVALSHA_RO");
        cmd.arg(self.inner.head.get_hash()).arg(1).arg(key).arg("0");
        let reply = match conn
            .route_command(cmd, route())
            .await
            .and_then(Value::extract_error)
        {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                let mut cmd = redis::cmd("EVAL_RO");
                cmd.arg(HEAD_LUA.get_or_init(stream::head_lua).as_str())
                    .arg(1)
                    .arg(key)
                    .arg("0");
                conn.route_command(cmd, route()).await?
            }
            reply => reply?,
        };
        redis::from_redis_value(reply).map_err(redis::RedisError::from)
    }

    fn parse_head(reply: Option<(Vec<u8>, Vec<u8>)>) -> Option<(Cursor, Option<stream::End>)> {
        reply.and_then(|(id, end)| {
            let end = match end.as_slice() {
                b"complete" => Some(stream::End::Complete),
                b"deleted" => Some(stream::End::Deleted),
                _ => None,
            };
            Some((stream::parse_id(&id)?, end))
        })
    }

    async fn do_complete(&self, topic: &Topic) -> Result<Cursor, Error> {
        self.check_open()?;
        let millis = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut conn = self.inner.commands.clone();
        let id: Result<Vec<u8>, _> = self
            .inner
            .complete
            .key(self.key(topic))
            .arg(self.inner.config.hub.retention.max_events.max(1))
            .arg(millis.to_string())
            .invoke_async(&mut conn)
            .await;
        self.inner.health.command(id.as_ref().err());
        let id = id.map_err(|e| RedisError::write("complete", &e))?;
        stream::parse_id(&id).ok_or_else(|| {
            RedisError::unknown(
                "complete",
                format!("redis returned an unexpected stream id {id:?}"),
            )
        })
    }

    async fn do_delete(&self, topic: &Topic) -> Result<bool, Error> {
        self.check_open()?;
        let mut conn = self.inner.commands.clone();
        let key = self.key(topic);
        let [idem, idem_at] = stream::idempotency_keys(&key);
        let deleted: Result<i64, _> = self
            .inner
            .delete
            .key(key)
            .key(idem)
            .key(idem_at)
            .invoke_async(&mut conn)
            .await;
        self.inner.health.command(deleted.as_ref().err());
        Ok(deleted.map_err(|e| RedisError::write("delete", &e))? == 1)
    }

    fn read_error(&self, op: &'static str, e: redis::RedisError) -> Error {
        let health = &self.inner.health;
        health.command(Some(&e));
        health.read_errors.fetch_add(1, Ordering::Relaxed);
        let error = RedisError::boxed(op, e);
        health.error(error.to_string());
        error
    }

    /// The entry of `topic`, created (without a replica yet) if needed.
    fn entry(&self, topic: &Topic) -> Result<Arc<TopicEntry>, Error> {
        let mut topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.check_open()?;
        if let Some(entry) = topics.get(topic) {
            return Ok(entry.clone());
        }
        let limit = self.inner.config.hub.max_topics;
        if topics.len() >= limit {
            return Err(Error::TooManyTopics { limit });
        }
        let entry = Arc::new(TopicEntry {
            topic: topic.clone(),
            key: self.key(topic),
            local: Mutex::new(None),
            init: tokio::sync::Mutex::new(()),
        });
        topics.insert(topic.clone(), entry.clone());
        Ok(entry)
    }

    /// The replica of `entry`, initialised at the stream's head with its reader started.
    async fn local(&self, entry: &Arc<TopicEntry>) -> Result<Local, Error> {
        if let Some(local) = entry.local().clone() {
            return Ok(local);
        }
        let _init = entry.init.lock().await;
        if let Some(local) = entry.local().clone() {
            return Ok(local);
        }
        let (head, end) = self
            .redis_head_end(&entry.key, true)
            .await?
            .ok_or_else(|| Error::Backend("redis did not create the stream".into()))?;
        self.check_open()?;
        let local = match end {
            // The stream ends with its end entry: a replica just before it, completed there.
            Some(stream::End::Complete) => {
                let before = Cursor::new(head.epoch(), head.seq().saturating_sub(1));
                let local = Local::at(&entry.topic, before, self.inner.config.hub);
                local.log.complete(head);
                local
            }
            _ => Local::at(&entry.topic, head, self.inner.config.hub),
        };
        *entry.local() = Some(local.clone());
        self.follow(entry, head);
        Ok(local)
    }

    async fn do_subscribe(&self, topic: &Topic, from: StartFrom) -> Result<Subscription, Error> {
        // A replica closed by its reader (idle, or a new epoch) is replaced: try again.
        for _ in 0..3 {
            let entry = self.entry(topic)?;
            let mut local = self.local(&entry).await?;
            let epoch = local.log.epoch();
            let mut known_head = 0;
            let history = match from {
                StartFrom::After(c) if c.epoch() == epoch => {
                    if c.seq() > local.log.head().seq() {
                        // Handed out by a server whose reader is ahead of ours.
                        if let Some(head) = self.redis_head(&entry.key, false).await? {
                            if head.epoch() == epoch {
                                known_head = head.seq();
                            }
                        }
                        None
                    } else {
                        Some(Some(c))
                    }
                }
                StartFrom::After(c) => {
                    // Another epoch: maybe the stream was replaced and our reader has not seen
                    // its first event yet.
                    if let Some(head) = self.redis_head(&entry.key, false).await? {
                        if head.epoch() != epoch && head.epoch() > epoch {
                            local = self.replace(&entry, &local, head);
                            if c.epoch() == head.epoch() && c.seq() <= head.seq() {
                                known_head = head.seq();
                            }
                        }
                    }
                    (self.inner.config.hub.reset_policy == ResetPolicy::Oldest).then_some(None)
                }
                StartFrom::Oldest => Some(None),
                StartFrom::Invalid => {
                    (self.inner.config.hub.reset_policy == ResetPolicy::Oldest).then_some(None)
                }
                StartFrom::Newest => None,
            };
            if let Some(after) = history {
                self.backfill(&entry, &local, after).await?;
            }
            match local.log.subscribe(from, known_head) {
                Ok(sub) => return Ok(sub),
                Err(_) => self.check_open()?,
            }
        }
        Err(Error::Backend(
            "redis topic replica kept closing while subscribing".into(),
        ))
    }

    /// Replaces the replica of `entry` by one of `head`'s epoch at `head`, closing the old one.
    fn replace(&self, entry: &TopicEntry, old: &Local, head: Cursor) -> Local {
        let mut slot = entry.local();
        if let Some(current) = slot.as_ref() {
            if current.log.epoch() != old.log.epoch() {
                return current.clone();
            }
        }
        let local = Local::at(&entry.topic, head, self.inner.config.hub);
        old.log.close();
        *slot = Some(local.clone());
        local
    }

    /// Fetches the events after `after` (all retained ones for `None`) that the replica lacks
    /// and puts them in front of it, as far as retention by count has room.
    async fn backfill(
        &self,
        entry: &TopicEntry,
        local: &Local,
        after: Option<Cursor>,
    ) -> Result<(), Error> {
        if local.complete {
            return Ok(());
        }
        let (first, room) = local.log.front();
        let epoch = local.log.epoch();
        if room == 0 || first <= 1 || after.is_some_and(|c| c.seq() + 1 >= first) {
            return Ok(());
        }
        let end = stream::stream_id(Cursor::new(epoch, first - 1));
        let start = after.map_or_else(
            || stream::stream_id(Cursor::new(epoch, 0)),
            |c| format!("({}", stream::stream_id(c)),
        );
        let mut conn = self.inner.commands.clone();
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(&entry.key)
            .arg(end)
            .arg(start)
            .arg("COUNT")
            .arg(room)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.read_error("history read", e))?;
        self.inner.health.command(None);
        let mut entries =
            stream::entries(&entry.topic, reply, self.inner.config.hub.max_event_bytes);
        let reached_start = entries.len() < room;
        entries.reverse();
        let events: Vec<_> = entries
            .into_iter()
            .filter(|e| e.cursor.epoch() == epoch)
            .filter_map(|e| e.event)
            .collect();
        local.log.prepend(&events);
        if after.is_none() && reached_start {
            let mut slot = entry.local();
            if let Some(current) = slot.as_mut() {
                if current.log.epoch() == epoch {
                    current.complete = true;
                }
            }
        }
        Ok(())
    }

    async fn do_head(&self, topic: &Topic) -> Result<Option<Cursor>, Error> {
        self.check_open()?;
        let entry = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .cloned();
        if let Some(entry) = entry {
            // The replica's head is current while its shard's reader is connected and has
            // taken the topic in (no pending change).
            let shard = self.shard_of(topic);
            if shard.connected.load(Ordering::Acquire) && !shard.changed.load(Ordering::Acquire) {
                if let Some(local) = entry.local().as_ref() {
                    return Ok(Some(local.log.head()));
                }
            }
        }
        self.redis_head(&self.key(topic), false).await
    }
}

impl Backend for RedisHub {
    fn publish<'a>(
        &'a self,
        topic: &'a Topic,
        event: NewEvent,
    ) -> BoxFuture<'a, Result<Arc<Event>, Error>> {
        Box::pin(self.do_publish(topic, event))
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a Topic,
        from: StartFrom,
    ) -> BoxFuture<'a, Result<Subscription, Error>> {
        Box::pin(self.do_subscribe(topic, from))
    }

    fn head<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<Option<Cursor>, Error>> {
        Box::pin(self.do_head(topic))
    }

    fn complete<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<Cursor, Error>> {
        Box::pin(self.do_complete(topic))
    }

    fn delete<'a>(&'a self, topic: &'a Topic) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.do_delete(topic))
    }

    fn close(&self) {
        let entries: Vec<_> = {
            let mut topics = self
                .inner
                .topics
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.inner.closed.store(true, Ordering::Release);
            topics.drain().map(|(_, entry)| entry).collect()
        };
        self.inner.shutdown.send_replace(true);
        for entry in entries {
            if let Some(local) = entry.local().as_ref() {
                local.log.close();
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// `false` while a reader has lost its connection and not read since (it reconnects with
    /// backoff), or while the latest command went unanswered (a timeout, a connection refused
    /// or dropped) and Redis has answered nothing since. One atomic load.
    fn is_available(&self) -> bool {
        self.inner.health.available()
    }

    fn stats(&self) -> HubStats {
        let entries: Vec<_> = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut stats = HubStats::default();
        stats.topics = entries.len();
        stats.published = self.inner.published.load(Ordering::Relaxed);
        for entry in entries {
            if let Some(local) = entry.local().as_ref() {
                let s = local.log.stats();
                stats.subscribers += s.subscribers;
                stats.waiting += s.waiting;
                stats.retained_events += s.events;
                stats.retained_bytes += s.bytes;
            }
        }
        stats
    }
}

/// One shared reader: a connection that follows many topics with one `XREAD BLOCK` over all
/// their streams. A process runs at most [`RedisConfig::readers`] of them, whatever its number
/// of topics; a topic belongs to the one its name hashes to.
#[derive(Default)]
struct Shard {
    /// Its place among the hub's shards (in a cluster, its hash-tag group).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    index: usize,
    /// In a cluster, the node its reader is connected to, for `CLIENT UNBLOCK`.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    node: Mutex<Option<(String, u16)>>,
    /// The topics followed, by stream key: the entry, and the id read up to.
    entries: Mutex<HashMap<String, (Arc<TopicEntry>, Cursor)>>,
    /// Set when `entries` changed, so that the reader reads again with the new set.
    changed: AtomicBool,
    /// The reader connection's `CLIENT ID` (0 while it has none), for `CLIENT UNBLOCK`.
    client_id: std::sync::atomic::AtomicI64,
    /// Whether the reader holds a working connection.
    connected: AtomicBool,
    /// Whether the reader task runs (it starts with the shard's first topic).
    started: AtomicBool,
    /// Reconnections of this reader.
    reconnects: AtomicU64,
    /// The age of the newest event of the latest read, in milliseconds.
    lag_ms: AtomicU64,
    /// Whether the reader lost its connection (or cannot make one) and has not read since: one
    /// source of [`Health::down`].
    down: AtomicBool,
}

impl Shard {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, (Arc<TopicEntry>, Cursor)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, entry: &Arc<TopicEntry>) {
        let mut entries = self.entries();
        if entries
            .get(&entry.key)
            .is_some_and(|(e, _)| Arc::ptr_eq(e, entry))
        {
            entries.remove(&entry.key);
        }
    }
}

impl RedisHub {
    /// The shard that reads `topic`.
    fn shard_of(&self, topic: &Topic) -> &Arc<Shard> {
        shard_of(&self.inner, topic)
    }

    /// Starts following `entry` from `head` on its shard, starting the shard's reader if it
    /// is the first topic, and interrupting its blocking read so that the next one includes
    /// the new stream.
    fn follow(&self, entry: &Arc<TopicEntry>, head: Cursor) {
        let shard = self.shard_of(&entry.topic).clone();
        shard
            .entries()
            .insert(entry.key.clone(), (entry.clone(), head));
        shard.changed.store(true, Ordering::Release);
        if !shard.started.swap(true, Ordering::AcqRel) {
            self.inner.health.readers.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(shard_loop(
                Arc::downgrade(&self.inner),
                shard,
                self.inner.shutdown.subscribe(),
            ));
            return;
        }
        let mut conn = self.inner.commands.clone();
        tokio::spawn(async move {
            // `CLIENT UNBLOCK` finds the reader blocked only once its read reached Redis: try
            // until the reader took the change (a handful of times at most).
            for _ in 0..20 {
                if !shard.changed.load(Ordering::Acquire) {
                    return;
                }
                let id = shard.client_id.load(Ordering::Acquire);
                if id != 0 && unblock(&mut conn, &shard, id).await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
}

/// `CLIENT UNBLOCK id` on the reader's node; whether it unblocked a client.
async fn unblock(conn: &mut Commands, shard: &Shard, id: i64) -> bool {
    let _ = shard;
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("UNBLOCK").arg(id);
    let reply: Result<Value, redis::RedisError> = match conn {
        Commands::Single(c) => cmd.query_async(c).await,
        #[cfg(feature = "cluster")]
        Commands::Cluster(c) => {
            let node = shard
                .node
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let Some((host, port)) = node else {
                return false;
            };
            let routing = redis::cluster_routing::RoutingInfo::SingleNode(
                redis::cluster_routing::SingleNodeRoutingInfo::ByAddress { host, port },
            );
            c.route_command(cmd, routing).await
        }
    };
    matches!(reply, Ok(Value::Int(1)))
}

fn shard_of<'a>(inner: &'a Inner, topic: &Topic) -> &'a Arc<Shard> {
    use std::hash::{Hash as _, Hasher as _};
    // In a cluster, a reader follows one hash-tag group: its streams share a slot, which one
    // XREAD needs.
    #[cfg(feature = "cluster")]
    if let Mode::Cluster(_) = inner.mode {
        return &inner.shards[cluster::group(topic, inner.shards.len())];
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    topic.as_str().hash(&mut hasher);
    let n = inner.shards.len().max(1);
    let i = usize::try_from(hasher.finish() % n as u64).unwrap_or(0);
    &inner.shards[i]
}

/// A shard's reader: runs while the shard follows topics, and again if one arrives as it stops.
async fn shard_loop(hub: Weak<Inner>, shard: Arc<Shard>, mut shutdown: watch::Receiver<bool>) {
    loop {
        run_shard(&hub, &shard, &mut shutdown).await;
        // A reader that stops reads nothing: it says nothing about Redis.
        if let Some(inner) = hub.upgrade() {
            inner.health.set_down(&shard.down, false);
        }
        shard.started.store(false, Ordering::Release);
        // A topic that came while the reader was stopping: run again (unless `follow` already
        // started a new reader for it).
        let stopped = *shutdown.borrow() || hub.strong_count() == 0;
        if stopped || shard.entries().is_empty() || shard.started.swap(true, Ordering::AcqRel) {
            break;
        }
    }
    if let Some(inner) = hub.upgrade() {
        inner.health.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connects (with backoff), then reads every followed stream from where it stands; reconnects
/// on failure; returns when the hub closes or is dropped, or once the shard follows nothing.
async fn run_shard(hub: &Weak<Inner>, shard: &Arc<Shard>, shutdown: &mut watch::Receiver<bool>) {
    let mut attempt = 0u32;
    // Whether the connection was lost (a read failed), so that the next one is a reconnect
    // even when it succeeds at once.
    let mut lost = false;
    loop {
        let Some(inner) = hub.upgrade() else { return };
        let config = inner.config.clone();
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.block + config.response_timeout));
        let client = reader_client(&inner, shard);
        drop(inner);
        let conn = async {
            client
                .await?
                .get_multiplexed_async_connection_with_config(&connection)
                .await
        };
        let conn = tokio::select! {
            conn = conn => conn,
            _ = shutdown.wait_for(|closed| *closed) => break,
        };
        let Some(inner) = hub.upgrade() else { return };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                inner.health.read_errors.fetch_add(1, Ordering::Relaxed);
                inner.health.set_down(&shard.down, true);
                inner
                    .health
                    .error(format!("redis reader connect failed: {e}"));
                drop(inner);
                let delay = config
                    .backoff_min
                    .saturating_mul(1 << attempt.min(16))
                    .min(config.backoff_max);
                attempt += 1;
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    _ = shutdown.wait_for(|closed| *closed) => break,
                }
            }
        };
        if attempt > 0 || lost {
            inner.health.reconnects.fetch_add(1, Ordering::Relaxed);
            shard.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        attempt = 0;
        drop(inner);
        match read_connected(hub, shard, &mut conn, shutdown).await {
            Stop::Done => break,
            Stop::Reconnect => lost = true,
        }
    }
}

enum Stop {
    Done,
    Reconnect,
}

/// The client a shard's reader connects with: the server, or in a cluster the master that
/// serves the shard's slot now, asked of the cluster at each connection, so that a reader
/// follows a failover or a moved slot when it reconnects.
fn reader_client(
    inner: &Inner,
    shard: &Arc<Shard>,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<redis::Client, redis::RedisError>> + Send>,
> {
    let _ = shard;
    match (&inner.mode, &inner.commands) {
        (Mode::Single(client), _) => {
            let client = client.clone();
            Box::pin(async move { Ok(client) })
        }
        #[cfg(feature = "cluster")]
        (Mode::Cluster(cluster), Commands::Cluster(commands)) => {
            let (cluster, mut commands, shard) = (cluster.clone(), commands.clone(), shard.clone());
            Box::pin(async move {
                let slot = cluster.group_slot(shard.index);
                let (client, node) = cluster.node(&mut commands, slot).await?;
                *shard.node.lock().unwrap_or_else(PoisonError::into_inner) = Some(node);
                Ok(client)
            })
        }
        #[cfg(feature = "cluster")]
        (Mode::Cluster(_), Commands::Single(_)) => Box::pin(async {
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "a cluster hub without a cluster connection",
            )))
        }),
    }
}

/// Counts a shard's working connection while alive.
struct Connected {
    health: Arc<Health>,
    shard: Arc<Shard>,
}

impl Connected {
    fn new(health: Arc<Health>, shard: Arc<Shard>) -> Self {
        health.readers_connected.fetch_add(1, Ordering::Relaxed);
        shard.connected.store(true, Ordering::Release);
        Self { health, shard }
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.health
            .readers_connected
            .fetch_sub(1, Ordering::Relaxed);
        self.shard.connected.store(false, Ordering::Release);
        self.shard.client_id.store(0, Ordering::Release);
    }
}

async fn read_connected(
    hub: &Weak<Inner>,
    shard: &Arc<Shard>,
    conn: &mut MultiplexedConnection,
    shutdown: &mut watch::Receiver<bool>,
) -> Stop {
    let Some(inner) = hub.upgrade() else {
        return Stop::Done;
    };
    let config = inner.config.clone();
    // In a cluster the reader reads a replica (told READONLY), or a master only while it has
    // no replica. The node was picked from one node's view of the cluster, which may be stale
    // (a restarted master still naming its old replica, now the master): the node's own ROLE
    // decides.
    #[cfg(feature = "cluster")]
    if let Mode::Cluster(_) = inner.mode {
        let readonly: Result<(), _> = redis::cmd("READONLY").query_async(conn).await;
        let role: Result<Value, _> = redis::cmd("ROLE").query_async(conn).await;
        if readonly.is_err() || !role.is_ok_and(|role| cluster::safe_to_read(&role)) {
            inner.health.read_errors.fetch_add(1, Ordering::Relaxed);
            inner.health.set_down(&shard.down, true);
            inner
                .health
                .error("redis reader: the node is a master with replicas; asking again".to_owned());
            drop(inner);
            tokio::time::sleep(config.backoff_min).await;
            return Stop::Reconnect;
        }
    }
    let id: Result<i64, _> = redis::cmd("CLIENT").arg("ID").query_async(conn).await;
    let Ok(id) = id else {
        inner.health.set_down(&shard.down, true);
        return Stop::Reconnect;
    };
    inner.health.set_down(&shard.down, false);
    let _connected = Connected::new(inner.health.clone(), shard.clone());
    shard.client_id.store(id, Ordering::Release);
    // The reader holds no strong handle while it waits, so dropping the last `RedisHub` stops it.
    drop(inner);
    let block_ms = u64::try_from(config.block.as_millis()).unwrap_or(u64::MAX);
    let mut last_sweep = std::time::Instant::now();
    loop {
        shard.changed.store(false, Ordering::Release);
        // The command is written under the shard's lock (no await there), so no key is copied
        // on its way into it.
        let mut xread = redis::cmd("XREAD");
        {
            let entries = shard.entries();
            if entries.is_empty() {
                // The shard follows nothing (its topics went idle): the reader stops, and
                // starts again with the next topic.
                return Stop::Done;
            }
            xread
                .arg("COUNT")
                .arg(config.read_count)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS");
            for key in entries.keys() {
                xread.arg(key);
            }
            for (_, last) in entries.values() {
                xread.arg(stream::stream_id(*last));
            }
        }
        let reply: Result<Value, _> = tokio::select! {
            reply = xread.query_async(conn) => reply,
            _ = shutdown.wait_for(|closed| *closed) => return Stop::Done,
        };
        let Some(inner) = hub.upgrade() else {
            return Stop::Done;
        };
        match reply {
            Err(e) => {
                inner.health.read_errors.fetch_add(1, Ordering::Relaxed);
                inner.health.set_down(&shard.down, true);
                inner.health.error(format!("redis reader failed: {e}"));
                return Stop::Reconnect;
            }
            Ok(reply) => {
                // Redis answered: it is there for commands too.
                inner.health.command(None);
                if reply != Value::Nil {
                    let read = apply_streams(&inner, shard, reply);
                    inner.health.events_read.fetch_add(read, Ordering::Relaxed);
                }
            }
        }
        if inner.closed.load(Ordering::Acquire) {
            return Stop::Done;
        }
        // Idle topics leave their shard at least once per block period, even on a busy one.
        if last_sweep.elapsed() >= config.block {
            last_sweep = std::time::Instant::now();
            let entries: Vec<Arc<TopicEntry>> =
                shard.entries().values().map(|(e, _)| e.clone()).collect();
            for entry in entries {
                if retire_if_idle(&inner, &entry) {
                    shard.remove(&entry);
                }
            }
            // In a cluster, a reader left on a promoted master moves to its new replica once
            // there is one: what it hands out must survive the next failover too.
            #[cfg(feature = "cluster")]
            if let (Mode::Cluster(cluster), Commands::Cluster(commands)) =
                (&inner.mode, &inner.commands)
            {
                let (cluster, mut commands) = (cluster.clone(), commands.clone());
                let at = shard
                    .node
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                drop(inner);
                let now = cluster
                    .node(&mut commands, cluster.group_slot(shard.index))
                    .await
                    .map(|(_, node)| node);
                if now.is_ok_and(|node| Some(node) != at) {
                    return Stop::Reconnect;
                }
            }
        }
    }
}

/// Applies an `XREAD` reply of several streams to their topics' replicas. Returns how many
/// events were read.
fn apply_streams(inner: &Inner, shard: &Shard, reply: Value) -> u64 {
    let streams: Vec<(Value, Value)> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    Some((kv.pop()?, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(map) => map,
        _ => Vec::new(),
    };
    let mut read = 0;
    for (key, entries) in streams {
        let Value::BulkString(key) = key else {
            continue;
        };
        let Ok(key) = String::from_utf8(key) else {
            continue;
        };
        let Some((entry, mut last)) = shard.entries().get(&key).cloned() else {
            continue;
        };
        let (n, gone) = apply(inner, &entry, entries, &mut last);
        read += n;
        if n > 0 {
            if let Some(local) = entry.local().as_ref() {
                let age = local.log.head_published().and_then(|t| t.elapsed().ok());
                let ms = age.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                shard.lag_ms.store(ms, Ordering::Relaxed);
            }
        }
        if gone {
            shard.remove(&entry);
            continue;
        }
        let mut followed = shard.entries();
        if let Some((e, at)) = followed.get_mut(&key) {
            if Arc::ptr_eq(e, &entry) {
                *at = last;
            }
        }
    }
    read
}

/// Appends one stream's entries of an `XREAD` reply to the replica, replacing it when the
/// stream's epoch changed. Returns how many events were read, and whether the topic was deleted.
fn apply(inner: &Inner, entry: &Arc<TopicEntry>, entries: Value, last: &mut Cursor) -> (u64, bool) {
    let streams = [entries];
    let mut read = 0;
    for entries in streams {
        for item in stream::entries(&entry.topic, entries, inner.config.hub.max_event_bytes) {
            *last = item.cursor;
            match item.end {
                Some(stream::End::Complete) => {
                    complete(inner, entry, item.cursor);
                    continue;
                }
                Some(stream::End::Deleted) => {
                    deleted(inner, entry);
                    return (read, true);
                }
                None => {}
            }
            let Some(event) = item.event else { continue };
            read += 1;
            let mut slot = entry.local();
            let Some(local) = slot.as_mut() else { continue };
            let epoch = local.log.epoch();
            if item.cursor.epoch() > epoch {
                // The stream was replaced: subscriptions of the old epoch end (their clients
                // come back with an old cursor and are told of the reset).
                let before = Cursor::new(item.cursor.epoch(), item.cursor.seq() - 1);
                local.log.close();
                *local = Local::at(&entry.topic, before, inner.config.hub);
            } else if item.cursor.epoch() < epoch {
                continue;
            }
            local.log.append(event);
        }
    }
    (read, false)
}

/// The stream ended with `end complete` at `end`: the replica completes there (replaced first
/// when the end belongs to a newer epoch, as an event of one would).
fn complete(inner: &Inner, entry: &TopicEntry, end: Cursor) {
    let mut slot = entry.local();
    let Some(local) = slot.as_mut() else { return };
    if end.epoch() > local.log.epoch() {
        local.log.close();
        let before = Cursor::new(end.epoch(), end.seq().saturating_sub(1));
        *local = Local::at(&entry.topic, before, inner.config.hub);
    }
    local.log.complete(end);
}

/// The topic was deleted: its replica closes (its subscriptions end) and the entry goes, so
/// that the next use starts the new stream with a reader of its own.
fn deleted(inner: &Inner, entry: &Arc<TopicEntry>) {
    let mut topics = inner.topics.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(local) = entry.local().take() {
        local.log.close();
    }
    if topics
        .get(&entry.topic)
        .is_some_and(|e| Arc::ptr_eq(e, entry))
    {
        topics.remove(&entry.topic);
    }
}

/// Removes `entry` from the hub and closes its replica if no one has subscribed for the idle
/// timeout. Returns whether it did.
fn retire_if_idle(inner: &Inner, entry: &Arc<TopicEntry>) -> bool {
    let mut topics = inner.topics.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = entry.local();
    let Some(local) = slot.as_ref() else {
        return false;
    };
    let idle = local
        .log
        .idle_since()
        .is_some_and(|since| since.elapsed() >= inner.config.hub.idle_timeout);
    if !idle {
        return false;
    }
    local.log.close();
    if topics
        .get(&entry.topic)
        .is_some_and(|e| Arc::ptr_eq(e, entry))
    {
        topics.remove(&entry.topic);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> redis::RedisError {
        redis::RedisError::from(std::io::Error::from(kind))
    }

    #[test]
    fn only_what_certainly_did_not_run_is_a_failure() {
        use redis::{ErrorKind as Kind, ServerErrorKind as Server};
        // Nothing was written: the connection was refused, or Redis refused the command.
        assert!(not_run(&io(std::io::ErrorKind::ConnectionRefused)));
        for kind in [
            Server::NoScript,
            Server::ReadOnly,
            Server::BusyLoading,
            Server::Moved,
        ] {
            assert!(not_run(&(Kind::Server(kind), "refused").into()), "{kind:?}");
        }
        assert!(not_run(&(Kind::AuthenticationFailed, "auth").into()));
        for code in ["BUSY", "OOM", "NOREPLICAS", "MISCONF"] {
            assert!(
                not_run(&redis::make_extension_error(code.into(), None)),
                "{code}"
            );
        }
        // The request may have been written: a timeout (a paused Redis runs it later), a
        // connection lost in flight, an answer that did not parse, an error a script raised
        // after it wrote.
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert!(!not_run(&io(kind)), "{kind:?}");
            assert!(unanswered(&io(kind)), "{kind:?}");
        }
        assert!(!not_run(&(Kind::Parse, "garbled").into()));
        assert!(!not_run(
            &(Kind::Server(Server::ResponseError), "ERR").into()
        ));
        assert!(!not_run(&redis::make_extension_error(
            "WRONGTYPE".into(),
            None
        )));
        // An error answer is an answer: Redis is there.
        assert!(!unanswered(
            &(Kind::Server(Server::NoScript), "refused").into()
        ));
    }

    #[test]
    fn writes_map_to_backend_or_unknown() {
        let refused = RedisError::write("publish", &io(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(refused, Error::Backend(_)), "{refused}");
        let timeout = RedisError::write("publish", &io(std::io::ErrorKind::TimedOut));
        assert!(matches!(timeout, Error::OutcomeUnknown(_)), "{timeout}");
        assert!(
            timeout.to_string().contains("redis publish failed"),
            "{timeout}"
        );
    }

    #[test]
    fn availability_counts_each_source_once() {
        let health = Health::default();
        let shard = Shard::default();
        assert!(health.available());
        health.set_down(&shard.down, true);
        health.set_down(&shard.down, true);
        health.command(Some(&io(std::io::ErrorKind::TimedOut)));
        assert_eq!(health.down.load(Ordering::Relaxed), 2);
        health.set_down(&shard.down, false);
        assert!(!health.available(), "commands still unanswered");
        // A server's error answer is still an answer.
        health.command(Some(&redis::make_extension_error("OOM".into(), None)));
        assert!(health.available());
        health.command(None);
        assert_eq!(health.down.load(Ordering::Relaxed), 0);
    }
}
