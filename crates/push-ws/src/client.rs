//! A small client of the `push.v1` protocol over tokio-tungstenite: keeps the last cursor of
//! every topic it subscribed to, and after [`Client::reconnect`] subscribes to each again from
//! it, so nothing is lost or repeated across a dropped connection. `ws://` URLs.

use std::collections::BTreeMap;

use futures_util::{SinkExt as _, StreamExt as _};
use push_core::Outcome;
use push_http::json::ReceivedEvent;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The WebSocket layer failed (connect, handshake, I/O).
    #[error("websocket: {0}")]
    Ws(String),
    /// The server closed the connection.
    #[error("closed by the server: {code:?} {reason}")]
    Closed {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// The server sent something that is not a `push.v1` message.
    #[error("unexpected message: {0}")]
    Protocol(String),
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// An event of a subscribed topic.
    Event {
        /// The topic.
        topic: String,
        /// The event (id, type, time, data).
        event: ReceivedEvent,
    },
    /// A subscription's outcome (after subscribing, or a gap mid-stream).
    Outcome {
        /// The topic.
        topic: String,
        /// The outcome.
        outcome: Outcome,
        /// Where the subscription stands.
        cursor: String,
    },
    /// A publish was accepted.
    Published {
        /// The topic.
        topic: String,
        /// The new event's cursor.
        id: String,
    },
    /// An unsubscribe was done.
    Unsubscribed {
        /// The topic.
        topic: String,
    },
    /// The topic is complete and every event was received: its subscription ended, and a
    /// [`reconnect`](Client::reconnect) does not subscribe to it again.
    Complete {
        /// The topic.
        topic: String,
        /// The topic's end.
        cursor: String,
    },
    /// The application handler's reply.
    Reply(String),
    /// A fresh token ([`Client::auth`]) was accepted.
    Authorized {
        /// Its end, in seconds since the Unix epoch (`None`: none).
        expires: Option<u64>,
        /// Subscribed topics it does not cover, which the server unsubscribed.
        unsubscribed: Vec<String>,
    },
    /// A publish whose outcome is unknown: the server's store did not answer, and may have
    /// kept the event or not. Repeat it with [`Client::publish_with_key`] and the key
    /// [`Client::publish`] returned: the answer is then the stored cursor, or it is stored once.
    PublishUnknown {
        /// The topic.
        topic: String,
        /// What happened.
        error: String,
    },
    /// A refused or malformed request.
    Error {
        /// The reason.
        error: String,
        /// The topic concerned, if any.
        topic: Option<String>,
    },
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A `push.v1` client.
#[derive(Debug)]
pub struct Client {
    url: String,
    socket: Socket,
    /// Every topic subscribed with a message and the cursor to resume it from.
    cursors: BTreeMap<String, Option<String>>,
    /// Topics the server subscribed from the URL (`/ws/{topic}`), and their cursors: a
    /// reconnect resumes them through the URL's `since`, not with a second subscription.
    url_topics: BTreeMap<String, Option<String>>,
}

impl Client {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8080/ws/news`), offering `push.v1`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Ws`] when the connection or the handshake fails (the status of a refused
    /// handshake is in the error).
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let socket = open(url).await?;
        Ok(Self {
            url: url.to_owned(),
            socket,
            cursors: BTreeMap::new(),
            url_topics: BTreeMap::new(),
        })
    }

    /// The cursor to resume `topic` from: the last event id or outcome cursor seen for it.
    #[must_use]
    pub fn cursor(&self, topic: &str) -> Option<&str> {
        self.cursors
            .get(topic)
            .or_else(|| self.url_topics.get(topic))?
            .as_deref()
    }

    /// The slot holding `topic`'s cursor: a subscribed topic's, or else a URL topic's (one the
    /// server subscribed from the URL, recorded when its first outcome arrives).
    fn slot(&mut self, topic: &str, outcome: bool) -> Option<&mut Option<String>> {
        if self.cursors.contains_key(topic) {
            return self.cursors.get_mut(topic);
        }
        if outcome && !self.url_topics.contains_key(topic) {
            self.url_topics.insert(topic.to_owned(), None);
        }
        self.url_topics.get_mut(topic)
    }

    /// Subscribes to `topic` after `since` (or only new events).
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn subscribe(&mut self, topic: &str, since: Option<&str>) -> Result<(), ClientError> {
        self.cursors
            .insert(topic.to_owned(), since.map(str::to_owned));
        let mut op = json!({"op": "subscribe", "topic": topic});
        if let Some(since) = since {
            op["since"] = json!(since);
        }
        self.send(op).await
    }

    /// Unsubscribes from `topic`.
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        self.cursors.remove(topic);
        self.send(json!({"op": "unsubscribe", "topic": topic}))
            .await
    }

    /// Publishes `data` to `topic` under a fresh idempotency key, which it returns (answered by
    /// [`Received::Published`] or an error). When the answer does not come, or is an error
    /// saying the outcome is unknown (the server's store may have kept the event), send it
    /// again with [`publish_with_key`](Self::publish_with_key) and that key: the server then
    /// answers the first publish's cursor instead of storing the event twice.
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn publish(&mut self, topic: &str, data: &str) -> Result<String, ClientError> {
        let key = fresh_key();
        self.publish_with_key(topic, data, &key).await?;
        Ok(key)
    }

    /// Publishes `data` to `topic` under the idempotency `key` (1 to 128 visible ASCII
    /// characters): a retry of [`publish`](Self::publish) with the key it returned.
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn publish_with_key(
        &mut self,
        topic: &str,
        data: &str,
        key: &str,
    ) -> Result<(), ClientError> {
        self.send(json!({"op": "publish", "topic": topic, "data": data, "key": key}))
            .await
    }

    /// Sends a fresh token before the connection's expires (the server closes with 4401 at
    /// the end of the one it was opened with); the answer is [`Received::Authorized`], or
    /// [`Received::Error`] for a refused token.
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn auth(&mut self, token: &str) -> Result<(), ClientError> {
        self.send(json!({"op": "auth", "token": token})).await
    }

    /// Sends an application message.
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn message(&mut self, data: &str) -> Result<(), ClientError> {
        self.send(json!({"op": "message", "data": data})).await
    }

    /// Sends raw text, for tests of the server's error handling.
    ///
    /// # Errors
    ///
    /// When the message cannot be sent.
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.socket.send(message).await.map_err(ws)
    }

    async fn send(&mut self, op: Value) -> Result<(), ClientError> {
        self.socket
            .send(Message::text(op.to_string()))
            .await
            .map_err(ws)
    }

    /// The next message from the server, keeping cursors up to date.
    ///
    /// # Errors
    ///
    /// [`ClientError::Closed`] when the server closed the connection (with its code), or
    /// another error when the connection broke.
    pub async fn next(&mut self) -> Result<Received, ClientError> {
        loop {
            let message = match self.socket.next().await {
                None => {
                    return Err(ClientError::Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
                Some(Err(e)) => return Err(ws(e)),
                Some(Ok(message)) => message,
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    return Err(ClientError::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                _ => continue,
            };
            return self.parse(text.as_str());
        }
    }

    fn parse(&mut self, text: &str) -> Result<Received, ClientError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ClientError::Protocol(format!("{e}: {text}")))?;
        let s = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let topic = s("topic");
        if let Some(error) = s("error") {
            if let (Some("unknown"), Some(topic)) = (s("outcome").as_deref(), topic.clone()) {
                return Ok(Received::PublishUnknown { topic, error });
            }
            return Ok(Received::Error { error, topic });
        }
        if let Some(reply) = s("reply") {
            return Ok(Received::Reply(reply));
        }
        if v.get("auth").is_some() {
            let unsubscribed: Vec<String> = v
                .get("unsubscribed")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for topic in &unsubscribed {
                self.cursors.remove(topic);
            }
            let expires = v.get("expires").and_then(Value::as_u64);
            return Ok(Received::Authorized {
                expires,
                unsubscribed,
            });
        }
        let topic = topic.ok_or_else(|| ClientError::Protocol(text.to_owned()))?;
        if let Some(outcome) = s("outcome") {
            let cursor = s("cursor").unwrap_or_default();
            let outcome = match (outcome.as_str(), v.get("missed").and_then(Value::as_u64)) {
                ("resumed", _) => Outcome::Resumed,
                ("gap", Some(missed)) => Outcome::Gap { missed },
                ("reset", _) => Outcome::Reset,
                _ => return Err(ClientError::Protocol(text.to_owned())),
            };
            if let Some(slot) = self.slot(&topic, true) {
                *slot = Some(cursor.clone());
            }
            return Ok(Received::Outcome {
                topic,
                outcome,
                cursor,
            });
        }
        if let Some(id) = s("published") {
            return Ok(Received::Published { topic, id });
        }
        if v.get("unsubscribed").is_some() {
            return Ok(Received::Unsubscribed { topic });
        }
        if v.get("complete").is_some() {
            self.cursors.remove(&topic);
            self.url_topics.remove(&topic);
            let cursor = s("cursor").unwrap_or_default();
            return Ok(Received::Complete { topic, cursor });
        }
        let event = ReceivedEvent::parse(text.as_bytes())
            .map_err(|e| ClientError::Protocol(format!("{e}: {text}")))?;
        if let Some(slot) = self.slot(&topic, false) {
            *slot = Some(event.id.clone());
        }
        Ok(Received::Event { topic, event })
    }

    /// Opens a new connection and subscribes to every topic again from its cursor.
    ///
    /// # Errors
    ///
    /// When connecting or sending fails.
    ///
    /// The topics of the URL are resumed through it: with one, its `since` is set to that
    /// topic's cursor; with several (one `since` cannot fit them all), it is dropped and they
    /// start from new events, so subscribe to several topics with messages instead. A complete
    /// topic is not followed again.
    pub async fn reconnect(&mut self) -> Result<(), ClientError> {
        let url = self.resume_url();
        self.socket = open(&url).await?;
        let topics: Vec<(String, Option<String>)> = self
            .cursors
            .iter()
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect();
        for (topic, cursor) in topics {
            self.subscribe(&topic, cursor.as_deref()).await?;
        }
        Ok(())
    }

    /// The URL with `since` set to the one URL topic's cursor, or dropped.
    fn resume_url(&self) -> String {
        let (base, query) = self.url.split_once('?').unwrap_or((&self.url, ""));
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key != "since" {
                out.append_pair(&key, &value);
            }
        }
        let mut topics = self.url_topics.values();
        if let (Some(Some(cursor)), None) = (topics.next(), topics.next()) {
            out.append_pair("since", cursor);
        }
        let query = out.finish();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{query}")
        }
    }

    /// Closes the connection with 1000.
    ///
    /// # Errors
    ///
    /// When the close frame cannot be sent.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.socket.close(None).await.map_err(ws)
    }
}

async fn open(url: &str) -> Result<Socket, ClientError> {
    let mut req = url.into_client_request().map_err(ws)?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(crate::SUBPROTOCOL),
    );
    let (socket, _) = tokio_tungstenite::connect_async(req).await.map_err(ws)?;
    Ok(socket)
}

/// A WebSocket-layer failure, as text: the client's errors name no dependency's type.
fn ws(error: tokio_tungstenite::tungstenite::Error) -> ClientError {
    ClientError::Ws(error.to_string())
}

/// An idempotency key no other publish of this process (or, with overwhelming odds, of any
/// other) uses: a per-process random seed, the time and a counter.
fn fresh_key() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<RandomState> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = SEED.get_or_init(RandomState::new).hash_one((nanos, n));
    format!("ws-{random:016x}-{n:x}")
}
