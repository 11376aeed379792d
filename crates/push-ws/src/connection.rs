//! One upgraded connection: subscriptions, client operations, pings, slow clients, closing.

use std::future::Future as _;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use push_core::{Delivery, EventType, StartFrom, Subscription, Topic};
use push_http::Permit;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use http::header::{HeaderValue, AUTHORIZATION, HOST, ORIGIN};
use push_http::{Authorizer, Grant};

use crate::config::{OnMessage, SlowClient, WsConfig};
use crate::frames;
use crate::logs;
use crate::protocol::{self, ClientOp, Payload};
use crate::rate::Rate;
use crate::subs::Subs;
use crate::wakes::Wakes;

/// What every connection of an endpoint shares: the endpoint core (hub, limits, access,
/// meters), the settings and the message handler.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) core: push_http::Endpoint,
    pub(crate) config: std::sync::Arc<WsConfig>,
    pub(crate) on_message: Option<std::sync::Arc<OnMessage>>,
}

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// The most deliveries written in one write (fewer when their frames reach the connection's
/// `max_write_buffer`).
const BATCH: usize = 64;

/// The most delivery turns (of up to [`BATCH`] deliveries each) written in a row before the
/// socket is read.
const FAIR: u32 = 16;

pub(crate) struct Connection {
    pub(crate) ws: Ctx,
    pub(crate) access: Grant,
    pub(crate) reauth: Option<Reauth>,
    pub(crate) initial: Vec<(Topic, StartFrom)>,
    pub(crate) permit: Permit,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) restart: watch::Receiver<u64>,
}

/// Why the server ends a connection: the close code and reason sent.
struct Closing(CloseCode, &'static str);

/// What a token refresh (`{"op":"auth"}`) needs: the authorizer, and the parts of the handshake
/// it may read besides the token, copied so that the connection does not keep the handshake's
/// buffers. Only connections with an authorizer carry one.
pub(crate) struct Reauth {
    authorizer: Authorizer,
    uri: http::Uri,
    host: Option<HeaderValue>,
    origin: Option<HeaderValue>,
}

impl Reauth {
    pub(crate) fn new(authorizer: Authorizer, parts: &http::request::Parts) -> Self {
        let copy = |name| {
            let value = parts.headers.get(name)?;
            HeaderValue::from_bytes(value.as_bytes()).ok()
        };
        Self {
            authorizer,
            uri: parts.uri.to_string().parse().unwrap_or_default(),
            host: copy(HOST),
            origin: copy(ORIGIN),
        }
    }

    /// The request the authorizer sees for a refresh: the handshake's URI, `Host` and `Origin`,
    /// with `Authorization: Bearer TOKEN`.
    fn parts(&self, token: &str) -> Option<http::request::Parts> {
        let mut req = http::Request::get(self.uri.clone()).body(()).ok()?;
        let headers = req.headers_mut();
        for (name, value) in [(HOST, &self.host), (ORIGIN, &self.origin)] {
            if let Some(value) = value {
                headers.insert(name, value.clone());
            }
        }
        let bearer = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
        headers.insert(AUTHORIZATION, bearer);
        Some(req.into_parts().0)
    }
}

/// A deadline to wait for: the grant's end, or far enough away to be never.
fn deadline(grant: &Grant) -> Instant {
    grant
        .deadline()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400))
}

/// The close code for an error met while reading the client's frames, or `None` when the
/// connection is simply gone.
fn close_for(error: &tungstenite::Error) -> Option<Closing> {
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => Some(Closing(CloseCode::Size, "message too big")),
        E::Utf8(_) => Some(Closing(CloseCode::Invalid, "text is not valid UTF-8")),
        E::Protocol(_) => Some(Closing(CloseCode::Protocol, "protocol error")),
        E::WriteBufferFull(_) => Some(Closing(CloseCode::Policy, "too slow")),
        _ => None,
    }
}

/// Sends a close frame and waits (bounded) for the client's answer, so that the closing
/// handshake completes when the client cooperates.
async fn close(socket: &mut Socket, closing: Closing, grace: Duration) {
    let frame = CloseFrame {
        code: closing.0,
        reason: closing.1.into(),
    };
    let _ = tokio::time::timeout(grace, async {
        if socket.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

/// Serves `conn` once the handshake's upgrade is done.
pub(crate) async fn upgraded(conn: Box<Connection>, on_upgrade: hyper::upgrade::OnUpgrade) {
    if let Ok(upgraded) = on_upgrade.await {
        serve(conn, upgraded).await;
    }
}

async fn serve(conn: Box<Connection>, upgraded: Upgraded) {
    let Connection {
        ws,
        access,
        reauth,
        initial,
        permit,
        mut shutdown,
        mut restart,
    } = *conn;
    let config = ws.config.clone();
    let mut socket = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(config.tungstenite()),
    )
    .await;
    let mut state = State {
        ws: &ws,
        access,
        reauth,
        renewed: false,
        unflushed: false,
        torn: false,
        subs: Subs::default(),
        permit,
        ended: false,
    };
    restart.mark_unchanged();
    let closing = run(
        &mut socket,
        &mut state,
        initial,
        &mut shutdown,
        &mut restart,
    )
    .await;
    logs::closed(state.subs.topics(), closing.as_ref().map(|c| (c.0, c.1)));
    // A write cut short by the slow-client timeout left part of a frame on the wire: a close
    // frame after it would be read as that frame's payload, so the connection just ends.
    if let Some(closing) = closing.filter(|_| !state.torn) {
        Box::pin(close(&mut socket, closing, config.shutdown_grace)).await;
    }
    drop(state);
}

struct State<'a> {
    ws: &'a Ctx,
    access: Grant,
    reauth: Option<Reauth>,
    /// Set when a refresh replaced `access`, so the loop moves its expiry.
    renewed: bool,
    /// Set when tungstenite may hold output the connection has not flushed (a pong or a close
    /// answered by itself while reading): it goes out before the connection's own frames.
    unflushed: bool,
    /// Set while the connection writes its own frames: still set after the write, when a
    /// timeout cut it short, perhaps in the middle of a frame.
    torn: bool,
    /// Keyed by topic: a delivery comes with its topic, whose clone is a reference count where
    /// a `String`'s would be an allocation.
    subs: Subs,
    /// The connection's place under the endpoint's limits, counting its subscribed topics
    /// against the client's quota.
    permit: Permit,
    /// Set when a subscription ended without its topic completing (the hub closed, or the
    /// topic's log was replaced under it): the connection closes so that the client
    /// reconnects and resumes from its cursors.
    ended: bool,
}

async fn run(
    socket: &mut Socket,
    state: &mut State<'_>,
    initial: Vec<(Topic, StartFrom)>,
    shutdown: &mut watch::Receiver<bool>,
    restart: &mut watch::Receiver<u64>,
) -> Option<Closing> {
    let config = state.ws.config.clone();
    // What runs rarely is boxed, so that the connection's task (resident for its whole life)
    // is not sized for it: the first subscriptions, client messages, pings and the close.
    if let Err(closing) = Box::pin(subscribe_initial(socket, state, initial, &config)).await {
        return closing;
    }
    let period = config.ping_interval.unwrap_or(Duration::from_secs(3600));
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    // When the last ping went out without any frame heard since.
    let mut ping_outstanding: Option<Instant> = None;
    // Why the server would stop, as one future kept across the loop's turns: waiting on the
    // shared signals registers once per signal, not once per delivery. Closing the hub is the
    // one call a graceful stop needs: it closes this connection too, even when it holds no
    // subscription.
    let mut stop = Box::pin(stopped(state.ws.core.hub().closed(), shutdown, restart));
    // The grant's end; only a grant that ends has a timer.
    let mut expiry = state
        .access
        .expires
        .is_some()
        .then(|| Box::pin(tokio::time::sleep_until(deadline(&state.access))));
    // Delivery turns since the client's side was last read: see [`FAIR`].
    let mut streak = 0u32;
    let mut rate = Rate::new(config.max_messages_per_second);
    let wakes = Wakes::new();
    loop {
        // In order: a shutdown, restart, the grant's end or the ping is acted on before more
        // deliveries are written, and deliveries before the client's (rare) frames are read.
        // All but the subscriptions are polled only when their waker fired (see `wakes`), so a
        // wake-up for an event costs no read attempt. Every FAIR delivery turns in a row, one turn reads first, so a
        // flood of events cannot hold off a client's messages.
        let turn = std::future::poll_fn(|cx| {
            wakes.register(cx);
            let woken = wakes.take();
            let mut rest = Context::from_waker(wakes.rest());
            let mut poll = || {
                if woken {
                    if let Poll::Ready(closing) = stop.as_mut().poll(&mut rest) {
                        return Poll::Ready(Turn::Stop(closing));
                    }
                    if let Some(sleep) = expiry.as_mut() {
                        if sleep.as_mut().poll(&mut rest).is_ready() {
                            return Poll::Ready(Turn::Expired);
                        }
                    }
                    if config.ping_interval.is_some() && ping.poll_tick(&mut rest).is_ready() {
                        return Poll::Ready(Turn::Ping);
                    }
                }
                if streak < FAIR && !state.subs.is_empty() {
                    if let Poll::Ready(delivery) = state.subs.poll_next(cx) {
                        return Poll::Ready(Turn::Delivery(delivery));
                    }
                }
                if woken || streak >= FAIR {
                    if let Poll::Ready(incoming) = socket.poll_next_unpin(&mut rest) {
                        return Poll::Ready(Turn::Incoming(incoming));
                    }
                }
                if streak >= FAIR {
                    return Poll::Ready(Turn::Fair);
                }
                Poll::Pending
            };
            let turn = poll();
            // A wait found ready ends the turn before the waits after it are polled, and may
            // be ready again with no wake-up (tungstenite may hold more frames, a timer is
            // armed by its next poll): everything is polled on the next turn.
            if turn.is_ready() && (woken || streak >= FAIR) {
                wakes.mark();
            }
            turn
        })
        .await;
        match turn {
            Turn::Stop(closing) => return Some(closing),
            Turn::Expired => {
                return Some(Closing(
                    CloseCode::Library(protocol::EXPIRED),
                    "credentials expired",
                ));
            }
            Turn::Delivery(delivery) => {
                streak += 1;
                let Some(first) = delivery else {
                    return Some(state.ended_closing());
                };
                // Waiting is the backpressure unless slow clients are closed: then the batch is
                // written under a timeout (boxed: most connections never need its timer).
                let written = match config.slow_client {
                    SlowClient::Gap => write_batch(socket, state, first).await,
                    SlowClient::Close => {
                        let write = write_batch(socket, state, first);
                        match Box::pin(tokio::time::timeout(config.slow_timeout, write)).await {
                            Ok(written) => written,
                            Err(_) => return Some(Closing(CloseCode::Policy, "too slow")),
                        }
                    }
                };
                if let Err(e) = written {
                    return close_for(&e);
                }
                if state.ended {
                    return Some(state.ended_closing());
                }
            }
            Turn::Incoming(incoming) => {
                streak = 0;
                let message = match incoming {
                    None => return None,
                    Some(Err(e)) => return close_for(&e),
                    Some(Ok(message)) => message,
                };
                // tungstenite may have queued an answer (a pong) it has not written yet.
                state.unflushed = true;
                ping_outstanding = None;
                if !rate.allow() {
                    let limit = config.max_messages_per_second;
                    let reason = format!("too many messages: the limit is {limit} per second");
                    let error = Message::text(protocol::error_message(&reason, None));
                    // Best effort, bounded: a flooding client that does not read must not
                    // hold its place while the server waits to tell it.
                    let grace = config.shutdown_grace;
                    let _ = Box::pin(tokio::time::timeout(grace, socket.send(error))).await;
                    return Some(Closing(CloseCode::Policy, "too many messages"));
                }
                match message {
                    Message::Text(text) => {
                        let reply = Box::pin(state.handle(text.as_str())).await;
                        if let Some(reply) = reply {
                            if let Err(closing) =
                                Box::pin(send(socket, Message::text(reply), &config)).await
                            {
                                return closing;
                            }
                        }
                        if std::mem::take(&mut state.renewed) {
                            expiry = state.access.expires.is_some().then(|| {
                                Box::pin(tokio::time::sleep_until(deadline(&state.access)))
                            });
                            // The new timer is armed by its first poll.
                            wakes.mark();
                        }
                    }
                    Message::Binary(_) => {
                        return Some(Closing(
                            CloseCode::Unsupported,
                            "binary messages are not part of this protocol",
                        ))
                    }
                    // The client closed: tungstenite answers it; no frame may follow that answer.
                    Message::Close(_) => {
                        let grace = config.shutdown_grace;
                        let _ = Box::pin(tokio::time::timeout(grace, socket.flush())).await;
                        return None;
                    }
                    // tungstenite answers pings by itself.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            Turn::Ping => {
                match ping_outstanding {
                    Some(sent) if sent.elapsed() >= config.pong_timeout => {
                        return Some(Closing(CloseCode::Away, "no pong"));
                    }
                    Some(_) => {}
                    None => {
                        let message = Message::Ping(Default::default());
                        if let Err(closing) = Box::pin(send(socket, message, &config)).await {
                            return closing;
                        }
                        ping_outstanding = Some(Instant::now());
                        // Check again once the timeout has passed.
                        ping.reset_after(config.pong_timeout.min(period));
                    }
                }
            }
            // The fair turn: the socket was polled above; deliveries resume.
            Turn::Fair => streak = 0,
        }
    }
}

/// What woke a connection's loop, in the order they are looked at.
enum Turn {
    Stop(Closing),
    Expired,
    Delivery(Option<crate::subs::Item>),
    Incoming(Option<Result<Message, tungstenite::Error>>),
    Ping,
    Fair,
}

/// Subscribes the topics of the handshake, answering each.
async fn subscribe_initial(
    socket: &mut Socket,
    state: &mut State<'_>,
    initial: Vec<(Topic, StartFrom)>,
    config: &crate::WsConfig,
) -> Sent {
    for (topic, from) in initial {
        let reply = state.subscribe(topic, from).await;
        send(socket, Message::text(reply), config).await?;
    }
    Ok(())
}

/// Resolves when the connection must close for the server's sake: shutdown, the hub closed,
/// or a restart.
async fn stopped(
    hub_closed: impl std::future::Future<Output = ()>,
    shutdown: &mut watch::Receiver<bool>,
    restart: &mut watch::Receiver<u64>,
) -> Closing {
    tokio::pin!(hub_closed);
    let away = Closing(CloseCode::Away, "server shutting down");
    let mut shutdown_open = true;
    loop {
        if *shutdown.borrow_and_update() {
            return away;
        }
        tokio::select! {
            biased;
            changed = shutdown.changed(), if shutdown_open => shutdown_open = changed.is_ok(),
            () = &mut hub_closed => return away,
            _ = restart.changed() => {
                return Closing(CloseCode::Restart, "service restart: reconnect");
            }
        }
    }
}

/// Writes `first` and whatever else is ready now, up to [`BATCH`] deliveries or
/// `max_write_buffer` bytes of frames: in one vectored write, straight from the buffers they
/// share with every other subscriber.
async fn write_batch(
    socket: &mut Socket,
    state: &mut State<'_>,
    first: (Topic, Option<Delivery>),
) -> Result<(), tungstenite::Error> {
    if std::mem::take(&mut state.unflushed) {
        // What tungstenite queued goes first, whole: a frame never splits another.
        socket.flush().await?;
    }
    // The first frame stays out of the vector, which is only made when a second one is
    // ready: most wake-ups carry one event.
    let mut one: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    let mut bytes = 0;
    let limit = state.ws.config.max_write_buffer;
    let mut pending = Some(first);
    while let Some((topic, delivery)) = pending.take() {
        let Some(delivery) = delivery else {
            // Ended without completing: what was written so far goes out, then the close.
            state.ended = true;
            break;
        };
        let complete = matches!(delivery, Delivery::Complete);
        let frame = state.encode(&topic, delivery);
        bytes += frame.len();
        match &one {
            None => one = Some(frame),
            Some(_) => more.push(frame),
        }
        if complete {
            // The topic ends here, by design: it no longer counts, and its end is not news.
            state.unsubscribe(topic.as_str());
        }
        if more.len() + 1 < BATCH && bytes < limit {
            pending = state.subs.next().now_or_never().flatten();
        }
    }
    let Some(one) = one else {
        return Ok(());
    };
    state.torn = true;
    if more.is_empty() {
        frames::write_all(socket.get_mut(), std::slice::from_ref(&one)).await?;
    } else {
        more.insert(0, one);
        frames::write_all(socket.get_mut(), &more).await?;
    }
    state.torn = false;
    Ok(())
}

/// The result of a write: `Err(Some(..))` closes with that code, `Err(None)` means the
/// connection is gone.
type Sent = Result<(), Option<Closing>>;

async fn with_policy(
    config: &crate::WsConfig,
    write: impl std::future::Future<Output = Result<(), tungstenite::Error>>,
) -> Sent {
    let result = match config.slow_client {
        SlowClient::Close => match tokio::time::timeout(config.slow_timeout, write).await {
            Ok(result) => result,
            Err(_) => return Err(Some(Closing(CloseCode::Policy, "too slow"))),
        },
        // Waiting is the backpressure: the subscriptions are not read meanwhile, fall behind
        // in the shared log and report a gap when they pass retention.
        SlowClient::Gap => write.await,
    };
    result.map_err(|e| close_for(&e))
}

async fn send(socket: &mut Socket, message: Message, config: &crate::WsConfig) -> Sent {
    with_policy(config, socket.send(message)).await
}

impl State<'_> {
    /// How to close once a subscription ended without completing: `1001` when the server is
    /// shutting down (the hub closed), else `1012`: the topic's log was replaced (a shared
    /// store restarted or lost it), and the client should reconnect and resume from its
    /// cursors, which tells it exactly what it missed.
    fn ended_closing(&self) -> Closing {
        if self.ws.core.hub().is_closed() {
            Closing(CloseCode::Away, "server shutting down")
        } else {
            Closing(
                CloseCode::Restart,
                "subscription restarted: reconnect and resume",
            )
        }
    }

    /// Drops the subscription of `topic`, if any, and its place in the client's quota.
    fn unsubscribe(&mut self, topic: &str) {
        if self.subs.remove(topic) {
            self.permit.remove_topics(1);
        }
    }

    /// The frame telling the client of `delivery`.
    fn encode(&mut self, key: &Topic, delivery: Delivery) -> Bytes {
        let topic = key.as_str();
        let text = match delivery {
            Delivery::Event(event) => {
                let frame = frames::event(&event);
                // An event whose frame is larger than the connection's write buffer could ever
                // hold becomes a gap of one event at its cursor, so the client knows exactly
                // what it missed and a client that reads well is never closed for it.
                let room = self
                    .ws
                    .config
                    .max_write_buffer
                    .saturating_sub(self.ws.config.write_buffer);
                if frame.len() <= room {
                    self.ws.core.delivered(1, frame.len());
                    return frame;
                }
                let outcome = push_core::Outcome::Gap { missed: 1 };
                self.ws
                    .core
                    .told_from(key, logs::before_gap(event.id(), 1), outcome);
                protocol::outcome_message(topic, outcome, event.id())
            }
            Delivery::Gap { missed } => {
                let (outcome, cursor) = (push_core::Outcome::Gap { missed }, self.cursor(topic));
                let from = cursor.map_or(StartFrom::Invalid, |c| logs::before_gap(c, missed));
                self.ws.core.told_from(key, from, outcome);
                match cursor {
                    Some(cursor) => protocol::outcome_message(topic, outcome, cursor),
                    None => protocol::error_message("gap", Some(topic)),
                }
            }
            // The subscription ends after this.
            Delivery::Complete => match self.cursor(topic) {
                Some(cursor) => protocol::complete_message(topic, cursor),
                None => protocol::error_message("complete", Some(topic)),
            },
        };
        let frame = frames::text(text.as_bytes());
        self.ws.core.delivered(0, frame.len());
        frame
    }

    fn cursor(&self, topic: &str) -> Option<push_core::Cursor> {
        self.subs.get(topic).map(Subscription::cursor)
    }

    async fn subscribe(&mut self, topic: Topic, from: StartFrom) -> String {
        let name = topic.as_str();
        if !self.access.read.allows(&topic) {
            logs::refused(name, "forbidden", None);
            return protocol::error_message("not allowed to read this topic", Some(name));
        }
        let new = !self.subs.contains(name);
        if new && self.subs.len() >= self.ws.config.max_topics {
            logs::refused(name, "topic_limit", None);
            return protocol::error_message("too many topics on this connection", Some(name));
        }
        if new {
            if let Err(over) = self.permit.add_topics(1) {
                logs::refused(name, "quota", None);
                return protocol::error_message(&over.to_string(), Some(name));
            }
        }
        match self.ws.core.hub().subscribe(&topic, from).await {
            Ok(sub) => {
                self.ws.core.told_from(&topic, from, sub.outcome());
                let reply = protocol::outcome_message(name, sub.outcome(), sub.cursor());
                self.subs.insert(topic, sub);
                reply
            }
            Err(e) => {
                if new {
                    self.permit.remove_topics(1);
                }
                logs::hub_refused(name, &e);
                protocol::error_message(&e.to_string(), Some(name))
            }
        }
    }

    /// Handles one client message; returns the reply, if any.
    async fn handle(&mut self, text: &str) -> Option<String> {
        let op = match ClientOp::parse(text) {
            Ok(op) => op,
            Err(e) => {
                return Some(protocol::error_message(
                    &format!("invalid message: {e}"),
                    None,
                ));
            }
        };
        match op {
            ClientOp::Subscribe { topic, since } => Some(match Topic::new(&topic) {
                Ok(topic) => {
                    let from = StartFrom::from_client(
                        since.as_deref().filter(|s| !s.is_empty()),
                        StartFrom::Newest,
                    );
                    self.subscribe(topic, from).await
                }
                Err(e) => protocol::error_message(&e.to_string(), Some(&topic)),
            }),
            ClientOp::Unsubscribe { topic } => {
                self.unsubscribe(topic.as_str());
                Some(protocol::unsubscribed_message(&topic))
            }
            ClientOp::Publish {
                topic,
                data,
                data_base64,
                json,
                event_type,
                key,
            } => {
                let payload = Payload {
                    data,
                    data_base64,
                    json,
                };
                Some(self.publish(&topic, payload, event_type, key).await)
            }
            ClientOp::Message { data } => Some(match &self.ws.on_message {
                Some(handler) => return handler(&data).map(|r| protocol::reply_message(&r)),
                None => protocol::error_message("this server takes no application messages", None),
            }),
            ClientOp::Auth { token } => Some(self.reauthorize(&token).await),
        }
    }

    /// A fresh token: the authorizer's new grant replaces the connection's (with its end), and
    /// subscriptions it no longer covers end. A refused token changes nothing.
    async fn reauthorize(&mut self, token: &str) -> String {
        let Some(reauth) = &self.reauth else {
            return protocol::error_message("this server takes no tokens", None);
        };
        let Some(parts) = reauth.parts(token) else {
            return protocol::error_message("token refused: not a valid header value", None);
        };
        let grant = match reauth.authorizer.grant(&parts).await {
            Ok(grant) => grant,
            Err(refusal) => {
                let reason = format!("token refused: {}", refusal.reason());
                return protocol::error_message(&reason, None);
            }
        };
        let dropped: Vec<String> = self
            .subs
            .topics()
            .filter(|topic| !grant.read.allows(topic))
            .map(|topic| topic.as_str().to_owned())
            .collect();
        for name in &dropped {
            self.unsubscribe(name);
        }
        let reply = protocol::authorized_message(grant.expires, &dropped);
        self.access = grant;
        self.renewed = true;
        reply
    }

    async fn publish(
        &mut self,
        name: &str,
        payload: Payload,
        event_type: Option<String>,
        key: Option<String>,
    ) -> String {
        let topic = match Topic::new(name) {
            Ok(topic) => topic,
            Err(e) => return protocol::error_message(&e.to_string(), Some(name)),
        };
        if !self.access.publish.allows(&topic) {
            logs::refused(name, "forbidden", None);
            return protocol::error_message("not allowed to publish to this topic", Some(name));
        }
        let mut event = match payload.into_event() {
            Ok(event) => event,
            Err(e) => return protocol::error_message(&e, Some(name)),
        };
        if let Some(t) = event_type {
            match EventType::new(&t) {
                Ok(t) => event = event.with_type(t),
                Err(e) => return protocol::error_message(&e.to_string(), Some(name)),
            }
        }
        if let Some(key) = key {
            match event.with_idempotency_key(&key) {
                Ok(keyed) => event = keyed,
                Err(e) => return protocol::error_message(&e.to_string(), Some(name)),
            }
        }
        match self.ws.core.hub().publish(&topic, event).await {
            Ok(event) => protocol::published_message(name, event.id()),
            Err(e @ push_core::Error::OutcomeUnknown(_)) => {
                logs::hub_refused(name, &e);
                protocol::unknown_message(&e.to_string(), name)
            }
            Err(e) => {
                logs::hub_refused(name, &e);
                protocol::error_message(&e.to_string(), Some(name))
            }
        }
    }
}

/// The echo loop behind [`Ws::echo`](crate::Ws::echo): every data message back as it came,
/// with the same buffers, limits and close codes as a push connection.
pub(crate) async fn echo(ws: Ctx, upgraded: Upgraded, permit: Permit) {
    let config = ws.config.clone();
    let mut socket = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(config.tungstenite()),
    )
    .await;
    let closing = loop {
        match socket.next().await {
            None => break None,
            Some(Err(e)) => break close_for(&e),
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                if let Err(closing) = send(&mut socket, message, &config).await {
                    break closing;
                }
            }
            Some(Ok(_)) => {}
        }
    };
    if let Some(closing) = closing {
        close(&mut socket, closing, config.shutdown_grace).await;
    }
    drop(permit);
}
