//! A small long-polling client: keeps its cursor, so that one request follows another without
//! losing or repeating an event. HTTP/1.1 over TCP (`http://` URLs) with hyper-util's pooled
//! client (one kept-alive connection reused across requests).

use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
pub use push_http::json::{ReceivedBatch, ReceivedEvent};

/// The largest answer the client reads (a full batch of large events fits).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// What can go wrong with one request.
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
    /// The server answered with a status other than 200.
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

/// A long-polling client for one topic URL, e.g. `http://127.0.0.1:8080/longpoll/news`.
#[derive(Debug, Clone)]
pub struct LongPollClient {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    url: Uri,
    cursor: Option<String>,
    timeout: Option<Duration>,
    requests: u64,
}

impl LongPollClient {
    /// A client that starts where the server's default start is (normally the next event).
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
            timeout: None,
            requests: 0,
        })
    }

    /// Resumes after `cursor` (an event id or a `next` seen before).
    #[must_use]
    pub fn since(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
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
        self.cursor.as_deref()
    }

    /// Requests made.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// One long-poll: waits for the server's answer (events, or none at its timeout) and moves
    /// the cursor to the answer's `next`. On an error the cursor is unchanged, so asking again
    /// loses nothing.
    ///
    /// # Errors
    ///
    /// See [`ClientError`]; a `503` carries the server's `Retry-After`.
    pub async fn next_batch(&mut self) -> Result<ReceivedBatch, ClientError> {
        let req = Request::get(self.request_uri()?)
            .body(Empty::new())
            .map_err(|e| ClientError::Url(e.to_string()))?;
        self.requests += 1;
        let res = self.http.request(req).await?;
        let status = res.status();
        let retry_after = header_secs(res.headers().get(RETRY_AFTER));
        let body = Limited::new(res.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| ClientError::Body(e.to_string()))?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(ClientError::Status {
                status,
                reason: String::from_utf8_lossy(&body).trim().to_owned(),
                retry_after,
            });
        }
        let batch = ReceivedBatch::parse(&body)?;
        self.cursor = Some(batch.next.clone());
        Ok(batch)
    }

    fn request_uri(&self) -> Result<Uri, ClientError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(cursor) = &self.cursor {
            query.append_pair("since", cursor);
        }
        if let Some(timeout) = self.timeout {
            query.append_pair("timeout", &timeout.as_secs_f64().to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            return Ok(self.url.clone());
        }
        let mut text = self.url.to_string();
        text.push(if self.url.query().is_some() { '&' } else { '?' });
        text.push_str(&query);
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
