//! The HTTP side of the batch clients (push-poll's and push-longpoll's): one pooled
//! hyper-util connection, a topic URL with query parameters, answers read within a bound and
//! parsed as batch answers, and one error type for all of it.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, RETRY_AFTER};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

use crate::json::{JsonError, ReceivedBatch};

/// The largest answer a client reads (a full batch of large events fits).
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
    Http(String),
    /// The answer's body could not be read (or was over [`MAX_ANSWER`]).
    #[error("reading the answer failed: {0}")]
    Body(String),
    /// The server answered with a status the client does not take.
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
    Json(#[from] JsonError),
    /// The topic is complete and every event was received: nothing more will come, so the
    /// client stops asking.
    #[error("the topic is complete")]
    Complete,
}

/// A client of one topic URL that answers with batches, e.g. `http://127.0.0.1:8080/poll/news`.
#[derive(Debug, Clone)]
pub struct BatchClient {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    url: Uri,
    requests: u64,
}

/// One answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl BatchClient {
    /// A client of `url`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Url`] when `url` is not an `http://` URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(Self {
            http: pooled(),
            url: http_url(url)?,
            requests: 0,
        })
    }

    /// Requests made.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// `GET` the URL with `query` pairs appended and `headers` set; the whole answer, whatever
    /// its status.
    ///
    /// # Errors
    ///
    /// [`ClientError::Url`], [`ClientError::Http`] or [`ClientError::Body`].
    pub async fn get(
        &mut self,
        query: &[(&str, String)],
        headers: &[(HeaderName, String)],
    ) -> Result<Answer, ClientError> {
        let mut req = Request::get(self.uri(query)?);
        for (name, value) in headers {
            req = req.header(name, value.as_str());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| ClientError::Url(e.to_string()))?;
        self.requests += 1;
        let res = self
            .http
            .request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let (parts, body) = res.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| ClientError::Body(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn uri(&self, query: &[(&str, String)]) -> Result<Uri, ClientError> {
        if query.is_empty() {
            return Ok(self.url.clone());
        }
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
        let mut text = self.url.to_string();
        text.push(if self.url.query().is_some() { '&' } else { '?' });
        text.push_str(&pairs.finish());
        text.parse().map_err(|e| ClientError::Url(format!("{e}")))
    }
}

/// Parses an `http://` URL with a host, as every push client takes.
///
/// # Errors
///
/// [`ClientError::Url`] for anything else.
pub fn http_url(url: &str) -> Result<Uri, ClientError> {
    let url: Uri = url.parse().map_err(|e| ClientError::Url(format!("{e}")))?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        return Err(ClientError::Url(format!("{url} is not an http:// URL")));
    }
    Ok(url)
}

/// hyper-util's pooled HTTP/1.1 client, as every push client uses it.
#[must_use]
pub fn pooled<B>() -> HttpClient<HttpConnector, B>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

impl Answer {
    /// A header holding whole seconds (`Retry-After`, `X-Poll-Interval`).
    #[must_use]
    pub fn seconds(&self, name: &HeaderName) -> Option<Duration> {
        self.headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
            .map(Duration::from_secs)
    }

    /// The batch a `200` carries.
    ///
    /// # Errors
    ///
    /// [`ClientError::Status`] for any other status, [`ClientError::Json`] for a body that is
    /// not a batch answer.
    pub fn batch(&self) -> Result<ReceivedBatch, ClientError> {
        if self.status != StatusCode::OK {
            return Err(self.refusal());
        }
        Ok(ReceivedBatch::parse(&self.body)?)
    }

    /// The answer as a [`ClientError::Status`].
    #[must_use]
    pub fn refusal(&self) -> ClientError {
        ClientError::Status {
            status: self.status,
            reason: String::from_utf8_lossy(&self.body).trim().to_owned(),
            retry_after: self.seconds(&RETRY_AFTER),
        }
    }
}
