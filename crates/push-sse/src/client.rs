//! A small SSE client: parses a `text/event-stream` as the WHATWG standard says, reconnects with
//! backoff and `Last-Event-ID`, and honours `retry:`. Plain HTTP/1.1 over TCP (`http://` URLs).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One dispatched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event type (`message` when the stream named none).
    pub event: String,
    /// The data, lines joined with LF.
    pub data: String,
    /// The last event id at dispatch time (as `MessageEvent.lastEventId`).
    pub last_event_id: String,
}

/// The stream parser, fed bytes as they arrive.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    data: String,
    event: String,
    last_event_id: String,
    retry: Option<Duration>,
}

impl Parser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event id seen (kept across streams by [`Client`]).
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Takes the latest `retry:` value, if one came since the last call.
    pub fn take_retry(&mut self) -> Option<Duration> {
        self.retry.take()
    }

    /// Forgets a partial line and message at a reconnect, keeping the last event id.
    pub fn restart(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.started = false;
        self.data.clear();
        self.event.clear();
    }

    /// Feeds bytes, appending every dispatched message to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Message>) {
        if !self.started && !bytes.is_empty() {
            // A UTF-8 byte order mark at the very start is skipped (split BOMs are rare enough
            // to ignore: only a full one is recognised).
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = rest;
            }
            self.started = true;
        }
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&String::from_utf8_lossy(&line), out);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    fn line_done(&mut self, line: &str, out: &mut Vec<Message>) {
        if line.is_empty() {
            if self.data.is_empty() {
                self.event.clear();
                return;
            }
            if self.data.ends_with('\n') {
                self.data.pop();
            }
            let event = if self.event.is_empty() {
                "message".to_owned()
            } else {
                std::mem::take(&mut self.event)
            };
            out.push(Message {
                event,
                data: std::mem::take(&mut self.data),
                last_event_id: self.last_event_id.clone(),
            });
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.last_event_id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }
}

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not an `http://host:port/path` URL.
    #[error("unsupported url: {0}")]
    Url(String),
    /// The server answered with a status other than 200; per the standard, the client does not
    /// reconnect.
    #[error("server answered {0}")]
    Status(StatusCode),
    /// The server answered 200 with another content type.
    #[error("server answered with content type {0:?}, not text/event-stream")]
    ContentType(String),
    /// The topic is complete: the stream ended with a
    /// [`COMPLETE_EVENT`](crate::COMPLETE_EVENT) (handed out before this), or the server
    /// answered `204 No Content`. The client does not reconnect.
    #[error("the topic is complete")]
    Complete,
    /// Connecting failed this many times in a row ([`Client::max_attempts`]).
    #[error("gave up after {attempts} failed connection attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
}

/// A reconnecting SSE client.
///
/// ```no_run
/// # async fn demo() -> Result<(), push_sse::client::ClientError> {
/// let mut client = push_sse::client::Client::new("http://127.0.0.1:8080/sse/news".parse().unwrap());
/// while let Ok(message) = client.next().await {
///     println!("{} {}", message.last_event_id, message.data);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    uri: Uri,
    parser: Parser,
    retry: Duration,
    max_backoff: Duration,
    max_attempts: Option<u32>,
    body: Option<Incoming>,
    queue: std::collections::VecDeque<Message>,
    connects: u64,
    /// Set when a [`COMPLETE_EVENT`](crate::COMPLETE_EVENT) arrived.
    complete: bool,
}

impl Client {
    /// A client for `uri`; nothing happens until [`next`](Self::next).
    #[must_use]
    pub fn new(uri: Uri) -> Self {
        Self {
            uri,
            parser: Parser::new(),
            retry: Duration::from_secs(3),
            max_backoff: Duration::from_secs(30),
            max_attempts: None,
            body: None,
            queue: std::collections::VecDeque::new(),
            connects: 0,
            complete: false,
        }
    }

    /// Starts from this cursor, sent as `Last-Event-ID` on the first connection.
    #[must_use]
    pub fn last_event_id(mut self, id: &str) -> Self {
        id.clone_into(&mut self.parser.last_event_id);
        self
    }

    /// The delay before reconnecting until the server sends `retry:` (default 3 s).
    #[must_use]
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// Gives up after this many failed connection attempts in a row (default: never). Each
    /// failed attempt doubles the delay, up to 30 s.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// How many connections were made (1 + reconnects).
    #[must_use]
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The last event id seen.
    #[must_use]
    pub fn current_last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The next message, reconnecting as needed.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the server refuses the stream or when
    /// [`max_attempts`](Self::max_attempts) connections failed in a row.
    pub async fn next(&mut self) -> Result<Message, ClientError> {
        let mut failures = 0u32;
        loop {
            if let Some(message) = self.queue.pop_front() {
                if message.event == crate::COMPLETE_EVENT {
                    self.complete = true;
                    self.queue.clear();
                    self.body = None;
                }
                return Ok(message);
            }
            if self.complete {
                return Err(ClientError::Complete);
            }
            let Some(body) = &mut self.body else {
                if self.connects > 0 || failures > 0 {
                    let backoff = self
                        .retry
                        .saturating_mul(1 << failures.min(16))
                        .min(self.max_backoff.max(self.retry));
                    tokio::time::sleep(backoff).await;
                }
                match self.connect().await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.connects += 1;
                        self.parser.restart();
                    }
                    Err(Fatal(e)) => return Err(e),
                    Err(Retry(e)) => {
                        failures += 1;
                        if self.max_attempts.is_some_and(|max| failures >= max) {
                            return Err(ClientError::GaveUp {
                                attempts: failures,
                                last: e,
                            });
                        }
                    }
                }
                continue;
            };
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let mut out = Vec::new();
                        self.parser.feed(data, &mut out);
                        self.queue.extend(out);
                        if let Some(retry) = self.parser.take_retry() {
                            self.retry = retry;
                        }
                    }
                }
                // The stream ended or broke: reconnect after the retry delay.
                Some(Err(_)) | None => self.body = None,
            }
        }
    }

    async fn connect(&self) -> Result<Incoming, ConnectError> {
        let authority = self
            .uri
            .authority()
            .ok_or_else(|| Fatal(ClientError::Url(self.uri.to_string())))?;
        if self.uri.scheme_str() != Some("http") {
            return Err(Fatal(ClientError::Url(self.uri.to_string())));
        }
        let port = authority.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((authority.host().trim_matches(['[', ']']), port))
            .await
            .map_err(|e| Retry(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Retry(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::get(self.uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str())
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache");
        if !self.parser.last_event_id.is_empty() {
            req = req.header(crate::LAST_EVENT_ID, self.parser.last_event_id.as_str());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| Fatal(ClientError::Url(e.to_string())))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| Retry(e.to_string()))?;
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            return Err(Retry("server answered 503".to_owned()));
        }
        if res.status() == StatusCode::NO_CONTENT {
            return Err(Fatal(ClientError::Complete));
        }
        if res.status() != StatusCode::OK {
            return Err(Fatal(ClientError::Status(res.status())));
        }
        let content_type = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("text/event-stream") {
            return Err(Fatal(ClientError::ContentType(content_type)));
        }
        Ok(res.into_body())
    }
}

enum ConnectError {
    Fatal(ClientError),
    Retry(String),
}
use ConnectError::{Fatal, Retry};

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> (Vec<Message>, Parser) {
        let mut parser = Parser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        (out, parser)
    }

    #[test]
    fn parses_the_standard_examples() {
        // From the HTML standard's examples.
        let (out, _) = parse(&[b"data: YHOO\ndata: +2\ndata: 10\n\n"]);
        assert_eq!(out[0].data, "YHOO\n+2\n10");
        let (out, p) = parse(&[b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"]);
        assert_eq!(
            out.iter().map(|m| m.data.as_str()).collect::<Vec<_>>(),
            ["first event", "second event", " third event"]
        );
        assert_eq!(out[0].last_event_id, "1");
        assert_eq!(out[1].last_event_id, "");
        assert_eq!(p.last_event_id(), "");
        let (out, _) = parse(&[b"data\n\ndata\ndata\n\ndata:"]);
        // The standard: the first block fires with empty data, the middle one with one LF, and
        // the unterminated last block never fires.
        assert_eq!(
            out.iter().map(|m| m.data.as_str()).collect::<Vec<_>>(),
            ["", "\n"]
        );
        let (out, _) = parse(&[b"event: x\n\ndata: y\n\n"]);
        assert_eq!(out.len(), 1, "a block without data does not dispatch");
        assert_eq!(out[0].event, "message", "and its event type is forgotten");
    }

    #[test]
    fn every_line_ending_and_chunk_split_works() {
        let whole = b"event: a\r\ndata: 1\r\rdata: 2\n\nretry: 250\r\n";
        for split in 0..whole.len() {
            let (out, mut p) = parse(&[&whole[..split], &whole[split..]]);
            assert_eq!(out.len(), 2, "split at {split}");
            assert_eq!((out[0].event.as_str(), out[0].data.as_str()), ("a", "1"));
            assert_eq!(
                (out[1].event.as_str(), out[1].data.as_str()),
                ("message", "2")
            );
            assert_eq!(p.take_retry(), Some(Duration::from_millis(250)));
        }
    }

    #[test]
    fn bom_and_bad_fields_are_handled() {
        let (out, mut p) = parse(&[b"\xEF\xBB\xBFdata: x\nid: a\0b\nretry: 1x\n\n"]);
        assert_eq!(out[0].data, "x");
        assert_eq!(out[0].last_event_id, "", "an id with NUL is ignored");
        assert_eq!(p.take_retry(), None);
    }
}
