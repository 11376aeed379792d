//! A small polling client: keeps its cursor and the last `ETag`, so that an empty poll costs a
//! `304`, and follows the server's recommended interval. HTTP/1.1 over TCP (`http://` URLs) with
//! hyper-util's pooled client (one kept-alive connection reused across polls).

use std::time::Duration;

use bytes::Bytes;
use http::header::{ETAG, IF_NONE_MATCH, RETRY_AFTER};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use push_core::Outcome;
pub use push_http::json::{ReceivedBatch, ReceivedEvent};

use crate::POLL_INTERVAL;

/// The largest answer the client reads (a full batch of large events fits).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// What can go wrong with one poll.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not an `http://` URL with a host.
    #[error("invalid URL: {0}")]
    Url(String),
    /// The request failed on the network.
    #[error("request failed: {0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// The answer's body could not be read.
    #[error("reading the answer failed: {0}")]
    Body(String),
    /// The server answered with a status other than 200 or 304.
    #[error("server answered {status}: {reason}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The body's text.
        reason: String,
        /// The server's `Retry-After`, if any (`429`, `503`).
        retry_after: Option<Duration>,
    },
    /// The answer was not a batch answer.
    #[error(transparent)]
    Json(#[from] push_http::json::JsonError),
}

/// A polling client for one topic URL, e.g. `http://127.0.0.1:8080/poll/news`.
#[derive(Debug, Clone)]
pub struct PollClient {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    url: Uri,
    cursor: Option<String>,
    etag: Option<String>,
    interval: Duration,
    requests: u64,
    not_modified: u64,
}

impl PollClient {
    /// A client that starts where the server's default start is (normally the newest point).
    ///
    /// # Errors
    ///
    /// [`ClientError::Url`] when `url` is not an `http://` URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let url: Uri = url.parse().map_err(|e| ClientError::Url(format!("{e}")))?;
        if url.scheme_str() != Some("http") || url.host().is_none() {
            return Err(ClientError::Url(format!("{url} is not an http:// URL")));
        }
        Ok(Self {
            http: HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
            url,
            cursor: None,
            etag: None,
            interval: Duration::from_secs(5),
            requests: 0,
            not_modified: 0,
        })
    }

    /// Resumes after `cursor` (an event id or a `next` seen before).
    #[must_use]
    pub fn since(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The cursor the next poll asks from.
    #[must_use]
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The interval the server recommends (`X-Poll-Interval`; 5 s until it said).
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Requests made, and how many of them were answered `304`.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.requests, self.not_modified)
    }

    /// Polls once: `Ok(None)` when nothing is new (`304`), otherwise the batch, after which the
    /// cursor has moved to its `next`. On an error the cursor is unchanged, so polling again
    /// loses nothing.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; a `429` or `503` carries the server's `Retry-After`.
    pub async fn poll(&mut self) -> Result<Option<ReceivedBatch>, ClientError> {
        let mut req = Request::get(self.request_uri()?);
        if let Some(tag) = &self.etag {
            req = req.header(IF_NONE_MATCH, tag.as_str());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| ClientError::Url(e.to_string()))?;
        self.requests += 1;
        let res = self.http.request(req).await?;
        if let Some(secs) = header_secs(res.headers().get(POLL_INTERVAL)) {
            self.interval = secs;
        }
        let status = res.status();
        let etag = res
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = header_secs(res.headers().get(RETRY_AFTER));
        let body = Limited::new(res.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| ClientError::Body(e.to_string()))?
            .to_bytes();
        match status {
            StatusCode::NOT_MODIFIED => {
                self.not_modified += 1;
                Ok(None)
            }
            StatusCode::OK => {
                let batch = ReceivedBatch::parse(&body)?;
                self.cursor = Some(batch.next.clone());
                self.etag = etag;
                Ok(Some(batch))
            }
            status => Err(ClientError::Status {
                status,
                reason: String::from_utf8_lossy(&body).trim().to_owned(),
                retry_after,
            }),
        }
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
                Some(batch) if !batch.events.is_empty() || batch.outcome != Outcome::Resumed => {
                    return Ok(batch)
                }
                Some(batch) if batch.more => continue,
                _ => tokio::time::sleep(self.interval).await,
            }
        }
    }

    fn request_uri(&self) -> Result<Uri, ClientError> {
        let Some(cursor) = &self.cursor else {
            return Ok(self.url.clone());
        };
        let param: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("since", cursor)
            .finish();
        let mut text = self.url.to_string();
        text.push(if self.url.query().is_some() { '&' } else { '?' });
        text.push_str(&param);
        text.parse().map_err(|e| ClientError::Url(format!("{e}")))
    }
}

fn header_secs(value: Option<&http::HeaderValue>) -> Option<Duration> {
    value?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}
