//! The settings of a WebSocket endpoint.

use std::time::Duration;

use push_http::Settings;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::handshake::OriginPolicy;

/// What to do with a client that reads more slowly than events are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowClient {
    /// Keep the connection; the client's subscriptions fall behind in the shared log and, once
    /// behind retention, skip ahead with a `gap` message carrying the count missed. Memory stays
    /// bounded by retention plus one batch of frames in flight (under twice
    /// [`WsConfig::max_write_buffer`]).
    Gap,
    /// Close the connection with 1008 ("too slow") when a write (a batch of at most 64 messages,
    /// or [`WsConfig::max_write_buffer`] bytes of them) has waited for the client longer than
    /// [`WsConfig::slow_timeout`]. When the timeout cut a frame short, the connection ends
    /// without a close frame (which the client would read as part of that frame): the client
    /// sees an abnormal closure, 1006.
    Close,
}

/// Settings of a [`Ws`](crate::Ws) endpoint.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`read_buffer`](Self::read_buffer) | 1 KiB | tungstenite's 128 KiB default is resident for every idle connection; clients send small control messages, and a larger message grows the buffer for as long as it takes |
/// | [`write_buffer`](Self::write_buffer) | 0 (write each message at once) | replies go out as they come; events never pass through it (their frames are shared and written as they are) |
/// | [`max_write_buffer`](Self::max_write_buffer) | 256 KiB | the bound on what tungstenite buffers, and on an event's frame: a larger one arrives as a `gap` of one at its cursor, and the connection stays open |
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
pub struct WsConfig {
    pub(crate) read_buffer: usize,
    pub(crate) write_buffer: usize,
    pub(crate) max_write_buffer: usize,
    pub(crate) max_message: usize,
    pub(crate) max_frame: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) slow_client: SlowClient,
    pub(crate) slow_timeout: Duration,
    pub(crate) max_topics: usize,
    pub(crate) max_messages_per_second: u32,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) origins: OriginPolicy,
    pub(crate) shutdown_grace: Duration,
    pub(crate) shared: Settings,
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
            max_topics: 64,
            max_messages_per_second: 100,
            subprotocols: vec![crate::SUBPROTOCOL.to_owned()],
            origins: OriginPolicy::default(),
            shutdown_grace: Duration::from_secs(5),
            shared: Settings::default(),
        }
    }
}

macro_rules! setter {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    )*};
}

push_http::shared_settings!(WsConfig {
    max_streams as max_connections,
    quota,
    retry_after,
});

impl WsConfig {
    setter! {
        /// The read buffer of each connection, allocated at once and kept.
        read_buffer: usize,
        /// How much of the connection's own outgoing messages (replies, pings) tungstenite
        /// gathers before writing (0: every message). Events do not pass through it: their
        /// frames are shared by every subscriber and written as they are, up to 64 at once.
        write_buffer: usize,
        /// The most outgoing data tungstenite buffers for one connection's own messages, and
        /// the largest event frame sent: an event whose frame (header and envelope, with
        /// [`write_buffer`](Self::write_buffer) taken) is larger is sent as an `outcome` message
        /// `gap` with `missed: 1` and the event's cursor, so a client that reads is never
        /// closed for one large event.
        max_write_buffer: usize,
        /// The largest message a client may send.
        max_message: usize,
        /// The largest frame a client may send.
        max_frame: usize,
        /// How often to ping; `None` turns pings (and the pong timeout) off.
        ping_interval: Option<Duration>,
        /// How long to wait for any frame after a ping before closing.
        pong_timeout: Duration,
        /// The policy for clients that read too slowly.
        slow_client: SlowClient,
        /// How long a write may wait for a slow client under [`SlowClient::Close`].
        slow_timeout: Duration,
        /// The most topics one connection may subscribe to at once.
        max_topics: usize,
        /// The most messages (text, binary, ping, pong) a client may send on one connection in a
        /// one-second window (opened by the first message after the previous window); the first
        /// message over it gets an `error` message and the connection is closed with `1008`
        /// (policy violation). Per connection: a client's connections are bounded by
        /// [`quota`](Self::quota). `0` turns the limit off.
        max_messages_per_second: u32,
        /// The subprotocols the server accepts, in its order of preference.
        subprotocols: Vec<String>,
        /// Which browser origins may connect.
        origins: OriginPolicy,
        /// How long [`Ws::shutdown`](crate::Ws::shutdown) waits for clients to answer the close frame.
        shutdown_grace: Duration,
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
