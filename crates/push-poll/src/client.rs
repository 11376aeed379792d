//! A small polling client: keeps its cursor and the last `ETag`, so that an empty poll costs a
//! `304`, and follows the server's recommended interval. HTTP/1.1 over TCP (`http://` URLs) with
//! hyper-util's pooled client (one kept-alive connection reused across polls).

use std::time::Duration;

use http::header::{ETAG, IF_NONE_MATCH};
use http::StatusCode;
use push_core::Outcome;
use push_http::client::BatchClient;
pub use push_http::client::{ClientError, ReceivedBatch, ReceivedEvent, MAX_ANSWER};

use crate::POLL_INTERVAL;

/// A polling client for one topic URL, e.g. `http://127.0.0.1:8080/poll/news`.
#[derive(Debug, Clone)]
pub struct PollClient {
    http: BatchClient,
    etag: Option<String>,
    interval: Duration,
    not_modified: u64,
}

impl PollClient {
    /// A client that starts where the server's default start is (normally the newest point).
    ///
    /// # Errors
    ///
    /// [`ClientError::Url`] when `url` is not an `http://` URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(Self {
            http: BatchClient::new(url)?,
            etag: None,
            interval: Duration::from_secs(5),
            not_modified: 0,
        })
    }

    /// Resumes after `cursor` (an event id or a `next` seen before).
    #[must_use]
    pub fn since(mut self, cursor: impl Into<String>) -> Self {
        self.http = self.http.since(cursor);
        self
    }

    /// The cursor the next poll asks from.
    #[must_use]
    pub fn cursor(&self) -> Option<&str> {
        self.http.cursor()
    }

    /// The interval the server recommends (`X-Poll-Interval`; 5 s until it said).
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Requests made, and how many of them were answered `304`.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.http.requests(), self.not_modified)
    }

    /// Polls once: `Ok(None)` when nothing is new (`304`), otherwise the batch, after which the
    /// cursor has moved to its `next`. On an error the cursor is unchanged, so polling again
    /// loses nothing.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; a `429` or `503` carries the server's `Retry-After`.
    pub async fn poll(&mut self) -> Result<Option<ReceivedBatch>, ClientError> {
        let headers: Vec<_> = self
            .etag
            .iter()
            .map(|t| (IF_NONE_MATCH, t.clone()))
            .collect();
        let answer = self.http.get(&[], &headers).await?;
        if let Some(secs) = answer.seconds(&POLL_INTERVAL) {
            self.interval = secs;
        }
        if answer.status == StatusCode::NOT_MODIFIED {
            self.not_modified += 1;
            return Ok(None);
        }
        let batch = self.http.take(&answer)?;
        self.etag = answer
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Some(batch))
    }

    /// Polls every [`interval`](Self::interval) (at once while the server says `more`) until a
    /// batch carries events or an outcome other than `resumed`.
    ///
    /// # Errors
    ///
    /// As [`poll`](Self::poll).
    pub async fn next_batch(&mut self) -> Result<ReceivedBatch, ClientError> {
        loop {
            match self.poll().await? {
                Some(batch)
                    if !batch.events.is_empty()
                        || batch.outcome != Outcome::Resumed
                        || batch.complete =>
                {
                    return Ok(batch)
                }
                Some(batch) if batch.more => continue,
                _ => tokio::time::sleep(self.interval).await,
            }
        }
    }
}
