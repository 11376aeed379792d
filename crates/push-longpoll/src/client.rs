//! A small long-polling client: keeps its cursor, so that one request follows another without
//! losing or repeating an event. HTTP/1.1 over TCP (`http://` URLs) with hyper-util's pooled
//! client (one kept-alive connection reused across requests).

use std::time::Duration;

use push_http::client::BatchClient;
pub use push_http::client::{ClientError, ReceivedBatch, ReceivedEvent, MAX_ANSWER};

/// A long-polling client for one topic URL, e.g. `http://127.0.0.1:8080/longpoll/news`.
#[derive(Debug, Clone)]
pub struct LongPollClient {
    http: BatchClient,
    timeout: Option<Duration>,
}

impl LongPollClient {
    /// A client that starts where the server's default start is (normally the next event).
    ///
    /// # Errors
    ///
    /// [`ClientError::Url`] when `url` is not an `http://` URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(Self {
            http: BatchClient::new(url)?,
            timeout: None,
        })
    }

    /// Resumes after `cursor` (an event id or a `next` seen before).
    #[must_use]
    pub fn since(mut self, cursor: impl Into<String>) -> Self {
        self.http = self.http.since(cursor);
        self
    }

    /// Asks the server to hold each request at most `timeout` (it may cap it).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The cursor the next request asks from.
    #[must_use]
    pub fn cursor(&self) -> Option<&str> {
        self.http.cursor()
    }

    /// Requests made.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.http.requests()
    }

    /// One long-poll: waits for the server's answer (events, or none at its timeout) and moves
    /// the cursor to the answer's `next`. On an error the cursor is unchanged, so asking again
    /// loses nothing.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; a `503` carries the server's `Retry-After`.
    pub async fn next_batch(&mut self) -> Result<ReceivedBatch, ClientError> {
        let query: Vec<_> = self
            .timeout
            .iter()
            .map(|t| ("timeout", t.as_secs_f64().to_string()))
            .collect();
        let answer = self.http.get(&query, &[]).await?;
        self.http.take(&answer)
    }
}
