//! The shared readers: per shard, one connection looping on one `XREAD BLOCK` over the streams
//! of all its topics, appending what it reads to their replicas; reconnecting with backoff, and
//! retiring idle topics.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use push_core::{Cursor, Topic};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::watch;

#[cfg(feature = "cluster")]
use crate::cluster;
use crate::health::Health;
use crate::hub::{Commands, Inner, Local, Mode, RedisHub, Shard, TopicEntry};
use crate::stream;

impl RedisHub {
    /// The shard that reads `topic`.
    pub(crate) fn shard_of(&self, topic: &Topic) -> &Arc<Shard> {
        shard_of(&self.inner, topic)
    }

    /// Starts following `entry` from `head` on its shard, starting the shard's reader if it
    /// is the first topic, and interrupting its blocking read so that the next one includes
    /// the new stream.
    pub(crate) fn follow(&self, entry: &Arc<TopicEntry>, head: Cursor) {
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
                let error = format!("redis reader connect failed: {e}");
                inner.health.failed(&shard.down, error);
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
            let error = "redis reader: the node is a master with replicas; asking again";
            inner.health.failed(&shard.down, error.to_owned());
            drop(inner);
            tokio::time::sleep(config.backoff_min).await;
            return Stop::Reconnect;
        }
    }
    let id: Result<i64, _> = redis::cmd("CLIENT").arg("ID").query_async(conn).await;
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            inner.health.lost(&shard.down, &e);
            return Stop::Reconnect;
        }
    };
    inner.health.heard(&shard.down);
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
                let error = format!("redis reader failed: {e}");
                inner.health.failed(&shard.down, error);
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
