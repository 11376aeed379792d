//! [`RedisHub`] and the state its handles share: how it reaches Redis (one server or a
//! cluster), the topics it reads with their replicas, and the shared readers' shards; connecting,
//! and the hub's settings, stream keys and health.
//!
//! The commands are in `commands`, subscriptions in `subscribe`, the readers in `reader`, and
//! `backend` puts them together as a [`Backend`](push_core::Backend).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use push_core::{Cursor, Error, HubConfig, ReplicaLog, Topic};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;
use tokio::sync::watch;

#[cfg(feature = "cluster")]
use crate::cluster;
use crate::config::RedisConfig;
use crate::error::RedisError;
use crate::health::{Health, ReaderHealth, RedisHealth};
use crate::scripts;

/// How a hub reaches Redis: one server, or a cluster.
pub(crate) enum Mode {
    Single(redis::Client),
    #[cfg(feature = "cluster")]
    Cluster(Arc<cluster::Cluster>),
}

/// The connection for commands (everything but the readers' blocking reads), which routes
/// each command to the node of its key in a cluster.
#[derive(Clone)]
pub(crate) enum Commands {
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
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHub")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) mode: Mode,
    pub(crate) commands: Commands,
    pub(crate) config: RedisConfig,
    pub(crate) publish: redis::Script,
    pub(crate) head: redis::Script,
    pub(crate) complete: redis::Script,
    pub(crate) delete: redis::Script,
    pub(crate) topics: Mutex<HashMap<Topic, Arc<TopicEntry>>>,
    /// The shared readers ([`RedisConfig::readers`]).
    pub(crate) shards: Vec<Arc<Shard>>,
    pub(crate) closed: AtomicBool,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) published: AtomicU64,
    pub(crate) health: Arc<Health>,
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

/// One topic this process reads.
pub(crate) struct TopicEntry {
    pub(crate) topic: Topic,
    pub(crate) key: String,
    /// The replica, once initialised; replaced when the stream's epoch changes.
    pub(crate) local: Mutex<Option<Local>>,
    /// Serialises initialisation, so that one reader starts per topic.
    pub(crate) init: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub(crate) struct Local {
    pub(crate) log: ReplicaLog,
    /// Whether the replica already holds everything the stream retains (no history to fetch).
    pub(crate) complete: bool,
}

impl Local {
    /// An empty replica at `head`, the stream's newest entry (sequence 0: an empty stream, so
    /// nothing older to fetch).
    pub(crate) fn at(topic: &Topic, head: Cursor, config: HubConfig) -> Self {
        Self {
            log: ReplicaLog::new(topic.clone(), head.epoch(), head.seq(), config),
            complete: head.seq() == 0,
        }
    }
}

impl TopicEntry {
    pub(crate) fn local(&self) -> MutexGuard<'_, Option<Local>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One shared reader: a connection that follows many topics with one `XREAD BLOCK` over all
/// their streams. A process runs at most [`RedisConfig::readers`] of them, whatever its number
/// of topics; a topic belongs to the one its name hashes to.
#[derive(Default)]
pub(crate) struct Shard {
    /// Its place among the hub's shards (in a cluster, its hash-tag group).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) index: usize,
    /// In a cluster, the node its reader is connected to, for `CLIENT UNBLOCK`.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) node: Mutex<Option<(String, u16)>>,
    /// The topics followed, by stream key: the entry, and the id read up to.
    pub(crate) entries: Mutex<HashMap<String, (Arc<TopicEntry>, Cursor)>>,
    /// Set when `entries` changed, so that the reader reads again with the new set.
    pub(crate) changed: AtomicBool,
    /// The reader connection's `CLIENT ID` (0 while it has none), for `CLIENT UNBLOCK`.
    pub(crate) client_id: std::sync::atomic::AtomicI64,
    /// Whether the reader holds a working connection.
    pub(crate) connected: AtomicBool,
    /// Whether the reader task runs (it starts with the shard's first topic).
    pub(crate) started: AtomicBool,
    /// Reconnections of this reader.
    pub(crate) reconnects: AtomicU64,
    /// The age of the newest event of the latest read, in milliseconds.
    pub(crate) lag_ms: AtomicU64,
    /// Whether the reader lost its connection (or cannot make one) and has not read since: one
    /// source of [`Health::down`].
    pub(crate) down: AtomicBool,
}

impl Shard {
    pub(crate) fn entries(&self) -> MutexGuard<'_, HashMap<String, (Arc<TopicEntry>, Cursor)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn remove(&self, entry: &Arc<TopicEntry>) {
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
                publish: scripts::publish_script(),
                head: scripts::head_script(),
                complete: scripts::complete_script(),
                delete: scripts::delete_script(),
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

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}
