//! The hub's commands to Redis: publish (the publish script, and `WAIT` for replicas),
//! complete, delete, and reading a stream's head (on a replica in a cluster).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use push_core::{Cursor, Error, Event, NewEvent, Topic};
use redis::Value;

#[cfg(feature = "cluster")]
use crate::cluster;
use crate::error::RedisError;
#[cfg(feature = "cluster")]
use crate::hub::Commands;
use crate::hub::RedisHub;
use crate::{scripts, stream};

impl RedisHub {
    pub(crate) async fn do_publish(
        &self,
        topic: &Topic,
        event: NewEvent,
    ) -> Result<Arc<Event>, Error> {
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
        let [idem, idem_at] = scripts::idempotency_keys(&stream_key);
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
    ///
    /// [`RedisConfig::wait_replicas`]: crate::RedisConfig::wait_replicas
    /// [`not_run`]: crate::error::not_run
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
    pub(crate) async fn redis_head(
        &self,
        key: &str,
        create: bool,
    ) -> Result<Option<Cursor>, Error> {
        Ok(self
            .redis_head_end(key, create)
            .await?
            .filter(|(_, end)| *end != Some(stream::End::Deleted))
            .map(|(head, _)| head))
    }

    /// The newest id of `key` and what it ends with, if an end entry.
    pub(crate) async fn redis_head_end(
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
                cmd.arg(HEAD_LUA.get_or_init(scripts::head_lua).as_str())
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

    pub(crate) async fn do_complete(&self, topic: &Topic) -> Result<Cursor, Error> {
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

    pub(crate) async fn do_delete(&self, topic: &Topic) -> Result<bool, Error> {
        self.check_open()?;
        let mut conn = self.inner.commands.clone();
        let key = self.key(topic);
        let [idem, idem_at] = scripts::idempotency_keys(&key);
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

    pub(crate) fn read_error(&self, op: &'static str, e: redis::RedisError) -> Error {
        let health = &self.inner.health;
        health.command(Some(&e));
        health.read_errors.fetch_add(1, Ordering::Relaxed);
        let error = RedisError::boxed(op, e);
        health.error(error.to_string());
        error
    }
}
