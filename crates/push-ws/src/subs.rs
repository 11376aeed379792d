//! A connection's subscriptions, keyed by topic and polled in turn.
//!
//! A connection holds one subscription or a handful (its `max_topics`, 64 by default), so a
//! vector searched by name beats a map, and polling it costs one poll per subscription with
//! no hashing and no random numbers. Fairness comes from where each poll starts: one past the
//! subscription that delivered last, so a busy topic cannot starve the others.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt as _;
use push_core::{Delivery, Subscription, Topic};

/// What a poll hands out: the topic, and a delivery or `None` for an end without completion.
pub(crate) type Item = (Topic, Option<Delivery>);

#[derive(Default)]
pub(crate) struct Subs {
    entries: Vec<(Topic, Subscription)>,
    /// Where the next poll starts.
    start: usize,
}

impl Subs {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains(&self, topic: &str) -> bool {
        self.entries.iter().any(|(t, _)| t.as_str() == topic)
    }

    /// Adds `sub` under `topic`, replacing (and dropping) one already there.
    pub(crate) fn insert(&mut self, topic: Topic, sub: Subscription) {
        match self.entries.iter_mut().find(|(t, _)| *t == topic) {
            Some(entry) => entry.1 = sub,
            None => self.entries.push((topic, sub)),
        }
    }

    /// Drops the subscription of `topic`; whether there was one.
    pub(crate) fn remove(&mut self, topic: &str) -> bool {
        let Some(i) = self.entries.iter().position(|(t, _)| t.as_str() == topic) else {
            return false;
        };
        self.entries.swap_remove(i);
        true
    }

    pub(crate) fn get(&self, topic: &str) -> Option<&Subscription> {
        self.entries
            .iter()
            .find(|(t, _)| t.as_str() == topic)
            .map(|(_, s)| s)
    }

    pub(crate) fn topics(&self) -> impl Iterator<Item = &Topic> + Clone {
        self.entries.iter().map(|(t, _)| t)
    }

    /// The next delivery of any subscription; `Ready(None)` only when there are none. A
    /// subscription that ends without completing is dropped, and its end handed out as
    /// `(topic, None)`, so the connection learns of it.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let n = self.entries.len();
        if n == 0 {
            return Poll::Ready(None);
        }
        for k in 0..n {
            let i = (self.start + k) % n;
            let (topic, sub) = &mut self.entries[i];
            match sub.poll_next_unpin(cx) {
                Poll::Pending => {}
                Poll::Ready(Some(delivery)) => {
                    self.start = (i + 1) % n;
                    return Poll::Ready(Some((topic.clone(), Some(delivery))));
                }
                Poll::Ready(None) => {
                    let topic = topic.clone();
                    self.entries.swap_remove(i);
                    self.start = 0;
                    return Poll::Ready(Some((topic, None)));
                }
            }
        }
        Poll::Pending
    }

    /// [`poll_next`](Self::poll_next) as a future.
    pub(crate) fn next(&mut self) -> Next<'_> {
        Next(self)
    }
}

pub(crate) struct Next<'a>(&'a mut Subs);

impl std::future::Future for Next<'_> {
    type Output = Option<Item>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.0.poll_next(cx)
    }
}
