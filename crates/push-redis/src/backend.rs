//! [`RedisHub`]'s [`Backend`] implementation: push-core's operations, each handed to the
//! hub's commands or subscriptions.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use push_core::{
    Backend, BoxFuture, Cursor, Error, Event, HubStats, NewEvent, StartFrom, Subscription, Topic,
};

use crate::hub::RedisHub;

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
