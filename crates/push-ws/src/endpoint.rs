//! The endpoint: configuration, authorization, the upgrade answer, and shutdown.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use push_core::{Hub, Topic};
use push_http::{text, Authorizer, Endpoint, Grant};
use tokio::sync::watch;

use crate::config::WsConfig;
use crate::connection::{self, Connection, Ctx};
use crate::handshake::{self, Upgrade};

/// A WebSocket endpoint over a [`Hub`]: cheap to clone, one per server (its connection limit
/// and shutdown signal are shared by its clones).
#[derive(Clone)]
pub struct Ws {
    ctx: Ctx,
    /// The hook again, to check a connection's credentials when it renews them.
    authorizer: Option<Authorizer>,
    shutdown: Arc<watch::Sender<bool>>,
    restart: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for Ws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ws")
            .field("config", &self.ctx.config)
            .field("open", &self.open())
            .field("authorizer", &self.authorizer.is_some())
            .field("on_message", &self.ctx.on_message.is_some())
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
        let core = Endpoint::new(hub, "ws", config.shared.clone());
        Self {
            ctx: Ctx {
                core,
                config: Arc::new(config),
                on_message: None,
            },
            authorizer: None,
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
        self.ctx.core = self.ctx.core.authorize(authorizer.clone());
        self.authorizer = Some(authorizer);
        self
    }

    /// Sets the handler of application messages (without one, they get an error reply).
    #[must_use]
    pub fn on_message(
        mut self,
        handler: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.ctx.on_message = Some(Arc::new(handler));
        self
    }

    /// Connections open right now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.ctx.core.open()
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
            self.ctx.config.origins.check(&req)?;
            Ok(u)
        });
        // Taken now: if the answer is a refusal, hyper simply does not upgrade.
        let on_upgrade = validated.is_ok().then(|| hyper::upgrade::on(&mut req));
        let (parts, _body) = req.into_parts();
        let (this, topics) = (self.clone(), topics.to_vec());
        let core = self.ctx.core.clone();
        let answer = async move {
            let (upgrade, on_upgrade) = match (validated, on_upgrade) {
                (Ok(upgrade), Some(on_upgrade)) => (upgrade, on_upgrade),
                (Err(refusal), _) => {
                    let reason = match refusal.status {
                        StatusCode::FORBIDDEN => "origin",
                        StatusCode::METHOD_NOT_ALLOWED => "method",
                        _ => "bad_request",
                    };
                    return this.ctx.core.refused(&topics, reason, refused(&refusal));
                }
                (Ok(_), None) => return text(StatusCode::INTERNAL_SERVER_ERROR, "no upgrade\n"),
            };
            let grant = match this.ctx.core.check(&parts, &topics).await {
                Ok(grant) => grant,
                Err(refusal) => return refusal,
            };
            this.accept(upgrade, on_upgrade, &parts, grant, topics)
        };
        async move { core.answered(answer.await) }
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
        let core = &self.ctx.core;
        if *self.shutdown.borrow() || core.hub().is_closed() {
            return core.refused(&topics, "shutdown", core.unavailable("shutting down\n"));
        }
        let permit = match core.admit(parts, &grant, 0) {
            Ok(permit) => permit,
            Err(res) => return res,
        };
        let from = core.start_from(parts, None);
        let protocol =
            handshake::negotiate(&parts.headers, &self.ctx.config.subprotocols).map(str::to_owned);
        let reauth = self
            .authorizer
            .clone()
            .map(|authorizer| connection::Reauth::new(authorizer, parts));
        let conn = Connection {
            ws: self.ctx.clone(),
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
        let parts = Request::new(()).into_parts().0;
        let permit = match self.ctx.core.admit(&parts, &Grant::default(), 0) {
            Ok(permit) => permit,
            Err(res) => return res,
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let ws = self.ctx.clone();
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
            tokio::time::Instant::now() + self.ctx.config.shutdown_grace + Duration::from_secs(1);
        while self.open() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
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
