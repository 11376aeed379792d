//! Subscriptions: a topic's replica, made at its stream's head and handed to a shared reader,
//! with the history a resume needs fetched in front of it; and the head a hub answers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use push_core::{Cursor, Error, ResetPolicy, StartFrom, Subscription, Topic};
use redis::Value;

use crate::hub::{Local, RedisHub, TopicEntry};
use crate::stream;

impl RedisHub {
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

    pub(crate) async fn do_subscribe(
        &self,
        topic: &Topic,
        from: StartFrom,
    ) -> Result<Subscription, Error> {
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

    pub(crate) async fn do_head(&self, topic: &Topic) -> Result<Option<Cursor>, Error> {
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
