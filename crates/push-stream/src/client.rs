//! A small NDJSON streaming client: follows one topic URL, keeps its cursor, and after a cut
//! (a dropped connection, a shutdown's end line) asks again with `?since=` so that no event is
//! lost or repeated. HTTP/1.1 over TCP (`http://` URLs) with hyper-util's pooled client.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use push_core::Outcome;
pub use push_http::json::ReceivedEvent;
pub use push_http::Error as ClientError;
use serde_json::Value;

/// The longest line the client accepts (an event of the hub's largest size, escaped, fits).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One line of the stream that matters to an application (heartbeats are skipped, those that
/// say the backend is away too: see [`StreamClient::backend_away`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// How the stream started (after each connect), or a gap met mid-stream.
    Outcome {
        /// The outcome.
        outcome: Outcome,
        /// Where the stream stands.
        cursor: String,
    },
    /// An event.
    Event(ReceivedEvent),
    /// The server ended the stream; the next call reconnects from the cursor.
    End {
        /// Where the stream stood.
        cursor: String,
        /// Why: `"shutdown"` (reconnecting resumes, here or on another server), `"expired"`
        /// (the credentials ended: the reconnect is refused with `401` unless the URL or
        /// headers now carry fresh ones), or `"complete"` (the topic is complete: the next
        /// call answers [`ClientError::Complete`] without reconnecting).
        reason: String,
    },
}

/// A streaming client for one topic URL, e.g. `http://127.0.0.1:8080/stream/news`.
#[derive(Debug)]
pub struct StreamClient {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    url: Uri,
    cursor: Option<String>,
    body: Option<Incoming>,
    buf: BytesMut,
    connects: u64,
    retry: Duration,
    /// Set by an `{"end":"complete"}` line: the client does not reconnect.
    complete: bool,
    /// Whether the latest line was a heartbeat saying the server's backend is away.
    away: bool,
}

impl StreamClient {
    /// A client that starts at the server's default start (new events only).
    ///
    /// # Errors
    ///
    /// [`ClientError::Url`] when `url` is not an `http://` URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Ok(Self {
            http: push_http::client::pooled(),
            url: push_http::client::http_url(url)?,
            cursor: None,
            body: None,
            buf: BytesMut::new(),
            connects: 0,
            retry: Duration::from_millis(250),
            complete: false,
            away: false,
        })
    }

    /// Resumes after `cursor` (an event id or an outcome's cursor seen before).
    #[must_use]
    pub fn since(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The cursor a reconnect would ask from.
    #[must_use]
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Whether the latest line read was a heartbeat saying that the server's backend is not
    /// available (`{"heartbeat":MS,"away":"backend unavailable"}`, while a shared store such
    /// as Redis does not answer): nothing comes until it is back, and then the stream goes on
    /// from its cursor by itself. Any later line clears it. Such heartbeats are skipped by
    /// [`next`](Self::next) like the others, so an application that shows it reads it between
    /// calls (say, after a `next` that timed out).
    #[must_use]
    pub fn backend_away(&self) -> bool {
        self.away
    }

    /// Connections made (the first, and every reconnect).
    #[must_use]
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The next line that matters, reconnecting from the cursor when the stream was cut.
    ///
    /// # Errors
    ///
    /// A refused request ([`ClientError::Status`]), a line that is not push's NDJSON
    /// ([`ClientError::Json`]) or one over [`MAX_LINE`]. A dropped connection is not an error:
    /// the client reconnects.
    pub async fn next(&mut self) -> Result<Received, ClientError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(nl + 1).freeze();
                if let Some(received) = self.parse(&line[..nl])? {
                    return Ok(received);
                }
                continue;
            }
            if self.buf.len() > MAX_LINE {
                return Err(ClientError::Body(format!("a line over {MAX_LINE} bytes")));
            }
            let Some(body) = self.body.as_mut() else {
                if self.complete {
                    return Err(ClientError::Complete);
                }
                self.connect().await?;
                continue;
            };
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                // The stream was cut: what is buffered is an incomplete line; ask again.
                Some(Err(_)) | None => {
                    self.body = None;
                    self.buf.clear();
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        if self.connects > 0 {
            tokio::time::sleep(self.retry).await;
        }
        self.connects += 1;
        let mut text = self.url.to_string();
        if let Some(cursor) = &self.cursor {
            let pair = form_urlencoded::Serializer::new(String::new())
                .append_pair("since", cursor)
                .finish();
            text.push(if self.url.query().is_some() { '&' } else { '?' });
            text.push_str(&pair);
        }
        let uri: Uri = text.parse().map_err(|e| ClientError::Url(format!("{e}")))?;
        let req = Request::get(uri)
            .body(Empty::new())
            .map_err(|e| ClientError::Url(e.to_string()))?;
        let res = match self.http.request(req).await {
            Ok(res) => res,
            // Not reachable now: the next call tries again after the pause.
            Err(_) => return Ok(()),
        };
        if res.status() != StatusCode::OK {
            let status = res.status();
            let body = res.into_body().collect().await.map(|b| b.to_bytes());
            let reason = body.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
            return Err(ClientError::Status {
                status,
                reason: reason.unwrap_or_default(),
                retry_after: None,
            });
        }
        self.body = Some(res.into_body());
        Ok(())
    }

    fn parse(&mut self, line: &[u8]) -> Result<Option<Received>, ClientError> {
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| ClientError::Body(format!("not JSON: {e}")))?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        // A heartbeat, or one that says the backend is away (a heartbeat with `away`): skipped.
        self.away = value.get("away").is_some();
        if value.get("heartbeat").is_some() {
            return Ok(None);
        }
        if let Some(cursor) = text("cursor") {
            self.cursor = Some(cursor.clone());
            if let Some(reason) = text("end") {
                self.body = None;
                self.buf.clear();
                self.complete = reason == "complete";
                return Ok(Some(Received::End { cursor, reason }));
            }
            let outcome = match (text("outcome").as_deref(), value.get("missed")) {
                (Some("gap"), Some(missed)) => Outcome::Gap {
                    missed: missed.as_u64().unwrap_or(0),
                },
                (Some("reset"), _) => Outcome::Reset,
                _ => Outcome::Resumed,
            };
            return Ok(Some(Received::Outcome { outcome, cursor }));
        }
        let event = ReceivedEvent::parse(line)?;
        self.cursor = Some(event.id.clone());
        Ok(Some(Received::Event(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_and_away_heartbeats_are_skipped_and_away_is_told() {
        let mut client = StreamClient::new("http://127.0.0.1:1/stream/t").unwrap();
        assert_eq!(client.parse(br#"{"heartbeat":1}"#).unwrap(), None);
        assert!(!client.backend_away());
        let away = br#"{"heartbeat":1,"away":"backend unavailable"}"#;
        assert_eq!(client.parse(away).unwrap(), None);
        assert!(client.backend_away());
        let line = br#"{"outcome":"resumed","cursor":"1a-3"}"#;
        assert!(matches!(
            client.parse(line).unwrap(),
            Some(Received::Outcome { .. })
        ));
        assert!(!client.backend_away());
        assert_eq!(client.cursor(), Some("1a-3"));
    }
}
