//! Batch answers of several topics (poll and long-poll): what every subscription holds, read
//! at once or after waiting for the first news.

use std::sync::Arc;
use std::task::Poll;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_TYPE, ETAG};
use http::{Response, StatusCode};
use push_core::{Batch, BatchLimit, Cursor, Event, Outcome, StartFrom, Subscription, Topic};

use crate::answer::text;
use crate::endpoint::{subscribe_all, Endpoint};
use crate::query::matches_tag;
use crate::topics::Position;

impl Endpoint {
    /// One batch answer for several `topics` (poll and long-poll), each from its start point
    /// in `from`: what every topic holds within the [batch limit](Self::batch_limit) in all, at once when `hold` is zero or
    /// any topic has news, an outcome to tell or its end, else after waiting up to `hold` for
    /// the first news. `200` with the [several-topic answer](crate::json) and an `ETag` naming
    /// its `next` cursor; `304 Not Modified` when `if_none_match` names that tag and there is
    /// nothing new; `503` with `Retry-After` when the hub refuses a subscription or closes.
    /// The caller adds its caching headers.
    pub async fn batch_topics<B: From<Bytes>>(
        &self,
        topics: &[Topic],
        from: &[StartFrom],
        hold: Duration,
        if_none_match: Option<&HeaderValue>,
    ) -> Response<B> {
        let mut subs = match subscribe_all(self.hub(), topics, from).await {
            Ok(subs) => subs,
            Err(e) => return self.hub_error(topics, &e),
        };
        let limit = self.batch_limit();
        let batch = if hold.is_zero() {
            try_batch_all(&mut subs, limit)
        } else {
            match tokio::time::timeout(hold, next_batch_all(&mut subs, limit)).await {
                Ok(batch) => batch,
                // Timed out: what there is now (nothing new, outcomes resumed).
                Err(_) => try_batch_all(&mut subs, limit),
            }
        };
        let Some(batch) = batch else {
            return self.refused(topics, "shutdown", self.unavailable("shutting down\n"));
        };
        self.delivered(batch.events.len() as u64, 0);
        for ((topic, outcome, _), from) in batch.topics.iter().zip(from) {
            self.told_from(topic, *from, *outcome);
        }
        // The combined cursor, with `_` for its commas (which `If-None-Match` uses to
        // separate tags).
        let tag = batch.next.replace(',', "_");
        // Nothing new since the client's cursor, which the client's tag names: `304`.
        let quiet = batch.events.is_empty()
            && !batch.complete
            && batch.topics.iter().all(|(_, o, _)| *o == Outcome::Resumed);
        let mut res = match if_none_match {
            Some(tags) if quiet && matches_tag(tags, &tag) => {
                let mut res = text(StatusCode::NOT_MODIFIED, "");
                res.headers_mut().remove(CONTENT_TYPE);
                res
            }
            _ => multi_batch_response(&batch),
        };
        if let Ok(tag) = HeaderValue::try_from(format!("\"{tag}\"")) {
            res.headers_mut().insert(ETAG, tag);
        }
        res
    }

    /// The bound of one batch answer: [`max_batch`](crate::Settings::max_batch) events and
    /// [`max_batch_bytes`](crate::Settings::max_batch_bytes) of event objects as push-http's JSON
    /// forms encode them.
    #[must_use]
    pub fn batch_limit(&self) -> push_core::BatchLimit {
        let settings = self.settings();
        crate::json::batch_limit(settings.max_batch, settings.max_batch_bytes)
    }
}

/// One answer for several topics: each topic's outcome and position, their events, the
/// combined cursor to ask from next.
#[derive(Debug, Clone)]
pub(crate) struct MultiBatch {
    /// Per topic, in the request's order: its outcome in this answer and its cursor after it.
    pub(crate) topics: Vec<(Topic, Outcome, Cursor)>,
    /// The events of every topic, in publish order.
    pub(crate) events: Vec<Arc<Event>>,
    /// The combined cursor to ask from next.
    pub(crate) next: String,
    /// Events were left for the next request (a limit was reached).
    pub(crate) more: bool,
    /// Every topic is complete and this answer reached each one's end.
    pub(crate) complete: bool,
}

/// What every subscription has now, within `limit` in all; `first` is a batch already read
/// from the subscription at its index. `None` once the hub is closed.
fn gather(
    subs: &mut [Subscription],
    mut first: Option<(usize, Batch)>,
    limit: BatchLimit,
) -> Option<MultiBatch> {
    let (mut events, mut bytes) = (0usize, 0usize);
    let mut batches = Vec::with_capacity(subs.len());
    let mut more = false;
    for (i, sub) in subs.iter_mut().enumerate() {
        let batch = match first.take_if(|(at, _)| *at == i) {
            Some((_, batch)) => batch,
            None => {
                let left = BatchLimit::new(
                    limit.events.saturating_sub(events).max(1),
                    limit.bytes.saturating_sub(bytes).max(1),
                    limit.size,
                );
                sub.try_batch(left)?
            }
        };
        events += batch.events.len();
        bytes += batch.events.iter().map(|e| (limit.size)(e)).sum::<usize>();
        more |= batch.cut || events >= limit.events;
        batches.push(batch);
    }
    let complete = batches.iter().all(|b| b.complete);
    let topics = subs
        .iter()
        .zip(&batches)
        .map(|(sub, b)| (sub.topic().clone(), b.outcome, sub.cursor()))
        .collect();
    let mut all: Vec<_> = batches.into_iter().flat_map(|b| b.events).collect();
    all.sort_by_key(|e| e.published_at());
    Some(MultiBatch {
        topics,
        events: all,
        next: Position(subs).to_string(),
        more,
        complete,
    })
}

/// What the subscriptions hold now, without waiting; `None` once the hub is closed.
pub(crate) fn try_batch_all(
    subs: &mut [Subscription],
    limit: impl Into<BatchLimit>,
) -> Option<MultiBatch> {
    gather(subs, None, limit.into())
}

/// Waits until any subscription has events, an outcome to tell, or its end, then answers with
/// what every one of them holds (long-poll); `None` once the hub is closed.
pub(crate) async fn next_batch_all(
    subs: &mut [Subscription],
    limit: impl Into<BatchLimit>,
) -> Option<MultiBatch> {
    let limit = limit.into();
    let first = std::future::poll_fn(|cx| {
        for (i, sub) in subs.iter_mut().enumerate() {
            match sub.poll_batch(cx, limit) {
                Poll::Ready(Some(batch)) => return Poll::Ready(Some((i, batch))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await?;
    gather(subs, Some(first), limit)
}

/// The answer of a poll or long-poll of several topics:
///
/// ```json
/// {"topics":[{"topic":"a","outcome":"resumed","cursor":"…"},{"topic":"b","outcome":"gap","missed":3,"cursor":"…"}],
///  "next":"CA,CB","more":false,"events":[{"topic":"a","id":"…",…},…]}
/// ```
///
/// `"complete":true` appears when every topic is complete and the answer reached each end.
#[must_use]
pub(crate) fn multi_batch_response<B: From<Bytes>>(batch: &MultiBatch) -> http::Response<B> {
    let mut out = BytesMut::with_capacity(128 + batch.events.len() * 96);
    out.put_slice(b"{\"topics\":[");
    for (i, (topic, outcome, cursor)) in batch.topics.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        let line = crate::json::topic_outcome_line(topic, *outcome, *cursor);
        out.put_slice(line.strip_suffix(b"\n").unwrap_or(&line));
    }
    // The combined cursor is cursors and commas: nothing to escape.
    out.put_slice(format!("],\"next\":\"{}\",\"more\":{},", batch.next, batch.more).as_bytes());
    if batch.complete {
        out.put_slice(b"\"complete\":true,");
    }
    out.put_slice(b"\"events\":[");
    for (i, event) in batch.events.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&crate::json::topic_event(event));
    }
    out.put_slice(b"]}");
    let mut res = http::Response::new(B::from(out.freeze()));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}
