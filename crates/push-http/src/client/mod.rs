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

pub use crate::json::{ReceivedBatch, ReceivedEvent};
pub use crate::Error as ClientError;
use crate::Error;

/// The largest answer a client reads (a full batch of large events fits).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// A client of one topic URL that answers with batches, e.g. `http://127.0.0.1:8080/poll/news`.
#[derive(Debug, Clone)]
pub struct BatchClient {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    url: Uri,
    requests: u64,
    /// Where the next request asks from: the latest answer's `next`.
    cursor: Option<String>,
    /// Set by an answer marked `complete`: nothing more will come.
    complete: bool,
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
    /// [`Error::Url`] when `url` is not an `http://` URL.
    pub fn new(url: &str) -> Result<Self, Error> {
        Ok(Self {
            http: pooled(),
            url: http_url(url)?,
            requests: 0,
            cursor: None,
            complete: false,
        })
    }

    /// Resumes after `cursor` (an event id or a `next` seen before).
    #[must_use]
    pub fn since(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
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

    /// The batch a `200` answer carries, after which the client asks from its `next` (and
    /// asks no more once it is `complete`). On an error the cursor is unchanged, so asking
    /// again loses nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Status`] for another status, [`Error::Json`] for a body that is not a batch
    /// answer.
    pub fn take(&mut self, answer: &Answer) -> Result<ReceivedBatch, Error> {
        let batch = answer.batch()?;
        self.cursor = Some(batch.next.clone());
        self.complete = batch.complete;
        Ok(batch)
    }

    /// `GET` the URL with the cursor as `since` and `query` pairs appended, and `headers` set;
    /// the whole answer, whatever its status. Read its batch with [`take`](Self::take).
    ///
    /// # Errors
    ///
    /// [`Error::Complete`] once an answer said the topic is complete (no request is made);
    /// [`Error::Url`], [`Error::Http`] or [`Error::Body`].
    pub async fn get(
        &mut self,
        query: &[(&str, String)],
        headers: &[(HeaderName, String)],
    ) -> Result<Answer, Error> {
        if self.complete {
            return Err(Error::Complete);
        }
        let mut pairs: Vec<(&str, String)> =
            self.cursor.iter().map(|c| ("since", c.clone())).collect();
        pairs.extend_from_slice(query);
        let mut req = Request::get(self.uri(&pairs)?);
        for (name, value) in headers {
            req = req.header(name, value.as_str());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| Error::Url(e.to_string()))?;
        self.requests += 1;
        let res = self
            .http
            .request(req)
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        let (parts, body) = res.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| Error::Body(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn uri(&self, query: &[(&str, String)]) -> Result<Uri, Error> {
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
        text.parse().map_err(|e| Error::Url(format!("{e}")))
    }
}

/// Parses an `http://` URL with a host, as every push client takes.
///
/// # Errors
///
/// [`Error::Url`] for anything else.
pub fn http_url(url: &str) -> Result<Uri, Error> {
    let url: Uri = url.parse().map_err(|e| Error::Url(format!("{e}")))?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        return Err(Error::Url(format!("{url} is not an http:// URL")));
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
    /// [`Error::Status`] for any other status, [`Error::Json`] for a body that is
    /// not a batch answer.
    fn batch(&self) -> Result<ReceivedBatch, Error> {
        if self.status != StatusCode::OK {
            return Err(self.refusal());
        }
        ReceivedBatch::parse(&self.body)
    }

    /// The answer as a [`Error::Status`].
    #[must_use]
    pub fn refusal(&self) -> Error {
        Error::Status {
            status: self.status,
            reason: String::from_utf8_lossy(&self.body).trim().to_owned(),
            retry_after: self.seconds(&RETRY_AFTER),
        }
    }
}
