//! The endpoint: configuration, authorization, the upgrade answer, and shutdown.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use push_core::{Hub, StartFrom, Topic};
use push_http::{text, Authorizer, Grant, Limiter, Quota};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::connection::{self, Connection};
use crate::handshake::{self, OriginPolicy, Upgrade};

/// What to do with a client that reads more slowly than events are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowClient {
    /// Keep the connection; the client's subscriptions fall behind in the shared log and, once
    /// behind retention, skip ahead with a `gap` message carrying the count missed. Memory stays
    /// bounded by retention plus one bounded write buffer.
    Gap,
    /// Close the connection with 1008 ("too slow") when a write (a batch of at most 64 messages
    /// and its flush) has waited for the client longer than [`WsConfig::slow_timeout`].
    Close,
}

/// Settings of a [`Ws`] endpoint.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`read_buffer`](Self::read_buffer) | 1 KiB | tungstenite's 128 KiB default is resident for every idle connection; clients send small control messages, and a larger message grows the buffer for as long as it takes |
/// | [`write_buffer`](Self::write_buffer) | 0 (write each message at once) | events are flushed as they come |
/// | [`max_write_buffer`](Self::max_write_buffer) | 256 KiB | the bound on what waits for a slow client; an event whose envelope is larger arrives as a `gap` of one at its cursor, and the connection stays open |
/// | [`max_message`](Self::max_message) / [`max_frame`](Self::max_frame) | 64 KiB / 64 KiB | a client's message over it is closed with 1009 |
/// | [`ping_interval`](Self::ping_interval) | 30 s | keeps NATs and proxies from dropping idle connections |
/// | [`pong_timeout`](Self::pong_timeout) | 20 s | a client silent that long after a ping is closed (1001) |
/// | [`slow_client`](Self::slow_client) / [`slow_timeout`](Self::slow_timeout) | [`SlowClient::Gap`] / 10 s | |
/// | [`max_connections`](Self::max_connections) | 10,000, then `503` | |
/// | [`max_topics`](Self::max_topics) | 64 subscriptions per connection | |
/// | [`quota`](Self::quota) | 1,000 connections and 1,000 subscribed topics per client, then `429` (a subscribe over it gets an `error` message) | one client cannot fill the connection cap, nor the hub's topic cap with topics it keeps subscribed |
/// | [`max_messages_per_second`](Self::max_messages_per_second) | 100 per connection (a burst of as many) | over it: an `error` message, then close `1008`: one connection's flood is cut at once (a client's connections are bounded by [`quota`](Self::quota)) |
/// | [`subprotocols`](Self::subprotocols) | `push.v1` | chosen when the client offers it |
/// | [`origins`](Self::origins) | same-origin pages and non-browser clients | |
/// | [`shutdown_grace`](Self::shutdown_grace) | 5 s for clients to answer the close frame | |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// The read buffer of each connection, allocated at once and kept.
    pub read_buffer: usize,
    /// How much outgoing data is gathered before writing to the socket (0: every message).
    pub write_buffer: usize,
    /// The most outgoing data buffered for one connection. An event whose envelope (with the
    /// frame header, and [`write_buffer`](Self::write_buffer) already taken) would not fit is
    /// sent as an `outcome` message `gap` with `missed: 1` and the event's cursor, so a client
    /// that reads is never closed for one large event. The buffer only grows as far as the
    /// largest message written, and keeps that capacity.
    pub max_write_buffer: usize,
    /// The largest message a client may send.
    pub max_message: usize,
    /// The largest frame a client may send.
    pub max_frame: usize,
    /// How often to ping; `None` turns pings (and the pong timeout) off.
    pub ping_interval: Option<Duration>,
    /// How long to wait for any frame after a ping before closing.
    pub pong_timeout: Duration,
    /// The policy for clients that read too slowly.
    pub slow_client: SlowClient,
    /// How long a write may wait for a slow client under [`SlowClient::Close`].
    pub slow_timeout: Duration,
    /// The most connections at once on this endpoint.
    pub max_connections: usize,
    /// The most topics one connection may subscribe to at once.
    pub max_topics: usize,
    /// What one client may hold over all its connections: connections, and subscribed
    /// topics. Clients are told apart by [`Client::of`](push_http::Client::of).
    pub quota: Quota,
    /// The most messages (text, binary, ping, pong) a client may send on one connection in a
    /// one-second window (opened by the first message after the previous window); the first
    /// message over it gets an `error` message and the connection is closed with `1008`
    /// (policy violation). Per connection: a client's connections are bounded by
    /// [`quota`](Self::quota). `0` turns the limit off.
    pub max_messages_per_second: u32,
    /// The subprotocols the server accepts, in its order of preference.
    pub subprotocols: Vec<String>,
    /// Which browser origins may connect.
    pub origins: OriginPolicy,
    /// How long [`Ws::shutdown`] waits for clients to answer the close frame.
    pub shutdown_grace: Duration,
    /// The `Retry-After` sent with `503`.
    pub retry_after: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            read_buffer: 1024,
            write_buffer: 0,
            max_write_buffer: 256 * 1024,
            max_message: 64 * 1024,
            max_frame: 64 * 1024,
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(20),
            slow_client: SlowClient::Gap,
            slow_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_topics: 64,
            quota: Quota::default(),
            max_messages_per_second: 100,
            subprotocols: vec![crate::SUBPROTOCOL.to_owned()],
            origins: OriginPolicy::default(),
            shutdown_grace: Duration::from_secs(5),
            retry_after: Duration::from_secs(5),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $ty:ty),* $(,)?) => {$(
        #[$doc]
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    )*};
}

impl WsConfig {
    setter! {
        /// Sets [`read_buffer`](Self::read_buffer).
        read_buffer: usize,
        /// Sets [`write_buffer`](Self::write_buffer).
        write_buffer: usize,
        /// Sets [`max_write_buffer`](Self::max_write_buffer).
        max_write_buffer: usize,
        /// Sets [`max_message`](Self::max_message).
        max_message: usize,
        /// Sets [`max_frame`](Self::max_frame).
        max_frame: usize,
        /// Sets [`ping_interval`](Self::ping_interval).
        ping_interval: Option<Duration>,
        /// Sets [`pong_timeout`](Self::pong_timeout).
        pong_timeout: Duration,
        /// Sets [`slow_client`](Self::slow_client).
        slow_client: SlowClient,
        /// Sets [`slow_timeout`](Self::slow_timeout).
        slow_timeout: Duration,
        /// Sets [`max_connections`](Self::max_connections).
        max_connections: usize,
        /// Sets [`max_topics`](Self::max_topics).
        max_topics: usize,
        /// Sets [`quota`](Self::quota).
        quota: Quota,
        /// Sets [`max_messages_per_second`](Self::max_messages_per_second).
        max_messages_per_second: u32,
        /// Sets [`subprotocols`](Self::subprotocols).
        subprotocols: Vec<String>,
        /// Sets [`origins`](Self::origins).
        origins: OriginPolicy,
        /// Sets [`shutdown_grace`](Self::shutdown_grace).
        shutdown_grace: Duration,
        /// Sets [`retry_after`](Self::retry_after).
        retry_after: Duration,
    }

    pub(crate) fn tungstenite(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer)
            .write_buffer_size(self.write_buffer)
            .max_write_buffer_size(self.max_write_buffer.max(self.write_buffer + 1))
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_frame))
    }
}

/// The application-message handler: gets the `data` of a client's `{"op":"message"}` and may
/// answer with a `{"reply":…}`.
pub type OnMessage = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A WebSocket endpoint over a [`Hub`]: cheap to clone, one per server (its connection limit
/// and shutdown signal are shared by its clones).
#[derive(Clone)]
pub struct Ws {
    pub(crate) hub: Hub,
    pub(crate) config: Arc<WsConfig>,
    limiter: Limiter,
    authorizer: Option<Authorizer>,
    pub(crate) meters: push_http::Meters,
    pub(crate) on_message: Option<Arc<OnMessage>>,
    shutdown: Arc<watch::Sender<bool>>,
    restart: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for Ws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ws")
            .field("config", &self.config)
            .field("open", &self.open())
            .field("authorizer", &self.authorizer.is_some())
            .field("on_message", &self.on_message.is_some())
            .finish_non_exhaustive()
    }
}

/// The body of a handshake answer: empty for `101`/`200`, a reason for a refusal.
pub type WsBody = Full<Bytes>;

impl Ws {
    /// An endpoint with the default [`WsConfig`].
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self::with_config(hub, WsConfig::default())
    }

    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: WsConfig) -> Self {
        let meters = push_http::Meters::new("ws");
        let limiter =
            Limiter::with_meters(config.max_connections, meters.clone()).quota(config.quota);
        Self {
            hub,
            config: Arc::new(config),
            limiter,
            authorizer: None,
            meters,
            on_message: None,
            shutdown: Arc::new(watch::channel(false).0),
            restart: Arc::new(watch::channel(0).0),
        }
    }

    /// Runs `authorizer` on every handshake: a client it refuses gets its `401` or `403` as the
    /// handshake's answer; its [`Grant`] then decides which topics the connection may subscribe
    /// and publish to (a later subscribe or publish outside it gets an error message on the
    /// connection). Without one, every topic is readable and none publishable.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Sets the handler of application messages (without one, they get an error reply).
    #[must_use]
    pub fn on_message(
        mut self,
        handler: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.on_message = Some(Arc::new(handler));
        self
    }

    /// Connections open right now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.limiter.open()
    }

    /// Answers a handshake request and, when it is valid, serves the connection on a spawned
    /// task once the server completes the upgrade.
    ///
    /// `topic` is subscribed at once, from the `since` query parameter's cursor when there is
    /// one (else from the newest point); the client adds and removes topics with messages.
    ///
    /// | answer | when |
    /// |---|---|
    /// | `101` (HTTP/1.1) or `200` (HTTP/2 extended CONNECT) | valid handshake |
    /// | `400` | malformed handshake (missing or bad `Sec-WebSocket-Key`, …) |
    /// | `405` | an HTTP/1.1 method other than `GET` |
    /// | `426` + `Sec-WebSocket-Version: 13` | no `Upgrade: websocket`, or another version |
    /// | `403` | `Origin` not allowed, a topic not readable, or the hook refused (its status) |
    /// | `503` + `Retry-After` | at [`max_connections`](WsConfig::max_connections) or shutting down |
    /// | `429` + `Retry-After` | the client holds its [`quota`](WsConfig::quota) of connections |
    ///
    /// The server must keep the connection for upgrades: hyper's
    /// `serve_connection_with_upgrades` (HTTP/1.1) and `enable_connect_protocol` (HTTP/2).
    ///
    /// The request is taken by value; the returned future is `Send` and `'static` whatever the
    /// body type, the same shape as every technique crate's `respond`.
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<WsBody>> + Send + 'static {
        self.answer(req, std::slice::from_ref(topic))
    }

    /// [`respond`](Self::respond) for several topics at once (or none: the client then
    /// subscribes with messages).
    pub fn respond_topics<B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
    ) -> impl Future<Output = Response<WsBody>> + Send + 'static {
        self.answer(req, topics)
    }

    fn answer<B>(
        &self,
        mut req: Request<B>,
        topics: &[Topic],
    ) -> impl Future<Output = Response<WsBody>> + Send + 'static {
        let validated = handshake::validate(&req).and_then(|u| {
            self.config.origins.check(&req)?;
            Ok(u)
        });
        // Taken now: if the answer is a refusal, hyper simply does not upgrade.
        let on_upgrade = validated.is_ok().then(|| hyper::upgrade::on(&mut req));
        let (parts, _body) = req.into_parts();
        let (this, topics) = (self.clone(), topics.to_vec());
        let meters = self.meters.clone();
        let answer = async move {
            let (upgrade, on_upgrade) = match (validated, on_upgrade) {
                (Ok(upgrade), Some(on_upgrade)) => (upgrade, on_upgrade),
                (Err(refusal), _) => return refused(&refusal),
                (Ok(_), None) => return text(StatusCode::INTERNAL_SERVER_ERROR, "no upgrade\n"),
            };
            let grant = match &this.authorizer {
                Some(authorizer) => match authorizer.read(&parts, &topics).await {
                    Ok(grant) => grant,
                    Err(refusal) => return refusal.response(),
                },
                None => Grant::default(),
            };
            this.accept(upgrade, on_upgrade, &parts, grant, topics)
        };
        async move {
            let res = answer.await;
            meters.answered(res.status());
            res
        }
    }

    /// Accepts a valid, authorized handshake: `101`/`200`, and the connection's task.
    fn accept(
        &self,
        upgrade: Upgrade,
        on_upgrade: hyper::upgrade::OnUpgrade,
        parts: &http::request::Parts,
        grant: Grant,
        topics: Vec<Topic>,
    ) -> Response<WsBody> {
        if *self.shutdown.borrow() || self.hub.is_closed() {
            return self.unavailable("shutting down\n");
        }
        let permit = match self
            .limiter
            .admit(parts, &grant, 0, self.config.retry_after)
        {
            Ok(permit) => permit,
            Err(res) => return res,
        };
        let from = push_http::start_from(parts, None, "since", StartFrom::Newest);
        let protocol =
            handshake::negotiate(&parts.headers, &self.config.subprotocols).map(str::to_owned);
        let reauth = self
            .authorizer
            .clone()
            .map(|authorizer| connection::Reauth::new(authorizer, parts));
        let conn = Connection {
            ws: self.clone(),
            access: grant,
            reauth,
            initial: topics.into_iter().map(|t| (t, from)).collect(),
            permit,
            shutdown: self.shutdown.subscribe(),
            restart: self.restart.subscribe(),
        };
        // Boxed: an async block or fn keeps its captured arguments beside the state it moves
        // them into, so a connection passed by value would be resident twice for its life.
        tokio::spawn(connection::upgraded(Box::new(conn), on_upgrade));
        accepted(upgrade, protocol)
    }

    /// Answers a handshake like [`respond`](Self::respond) but serves an echo connection: every
    /// text or binary message is sent back as it came, with this endpoint's buffers, limits and
    /// close codes. For conformance suites (Autobahn's cases) and diagnostics; not a push
    /// connection.
    pub fn echo<B>(&self, mut req: Request<B>) -> Response<WsBody> {
        let upgrade = match handshake::validate(&req) {
            Ok(upgrade) => upgrade,
            Err(refusal) => return text(refusal.status, &format!("{}\n", refusal.reason)),
        };
        let Some(permit) = self.limiter.try_acquire() else {
            return self.unavailable("too many WebSocket connections\n");
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let ws = self.clone();
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                connection::echo(ws, upgraded, permit).await;
            }
        });
        accepted(upgrade, None)
    }

    /// Closes every open connection with 1012 ("service restart": reconnect), e.g. to move
    /// clients to other servers; the endpoint keeps accepting. Clients resume from their
    /// cursors, so they lose nothing.
    pub fn restart_all(&self) {
        self.restart.send_modify(|n| *n += 1);
    }

    /// Closes every connection with 1001 ("going away") and waits until they are gone, at most
    /// [`shutdown_grace`](WsConfig::shutdown_grace) plus a moment to tear down; new handshakes
    /// get `503` from now on. Returns whether every connection ended in time.
    pub async fn shutdown(&self) -> bool {
        self.shutdown.send_replace(true);
        let deadline =
            tokio::time::Instant::now() + self.config.shutdown_grace + Duration::from_secs(1);
        while self.open() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    fn unavailable(&self, reason: &str) -> Response<WsBody> {
        push_http::unavailable(self.config.retry_after, reason)
    }
}

/// The answer to an invalid handshake, with `Sec-WebSocket-Version` on `426`.
fn refused(refusal: &handshake::Refusal) -> Response<WsBody> {
    let mut res = text(refusal.status, &format!("{}\n", refusal.reason));
    if refusal.status == StatusCode::UPGRADE_REQUIRED {
        res.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        res.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
    }
    res
}

fn accepted(upgrade: Upgrade, protocol: Option<String>) -> Response<WsBody> {
    let mut res = Response::new(Full::new(Bytes::new()));
    match upgrade {
        Upgrade::Http1 { accept } => {
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = res.headers_mut();
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(v) = HeaderValue::try_from(accept) {
                h.insert(handshake::ACCEPT, v);
            }
        }
        Upgrade::Http2 => {}
    }
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::try_from(p).ok()) {
        res.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    res
}
