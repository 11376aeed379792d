//! `McpStore`: rmcp's `EventStore` and `SessionStore` on a push `Hub`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream;
use push_core::{
    Delivery, Event, EventType, Hub, NewEvent, Outcome, PayloadKind, StartFrom, Subscription,
};
use rmcp::model::ServerJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::{
    EventId as RmcpEventId, EventStore, EventStoreError, EventStream, ServerSseMessage,
    SessionState, SessionStore, SessionStoreError,
};

use crate::id::{common_stream, index_topic, state_topic, stream_topic, EventId};
use crate::Error;

/// The most entries read back from a session's index or state topic at once. A session that
/// opened more request streams than its topic retains
/// ([`Retention::max_events`](push_core::Retention::max_events)) has its oldest ones
/// forgotten: they can no longer be resumed, and expire by age instead of by `DELETE`.
const INDEX_READ: usize = 100_000;

/// rmcp's event store and session store over one push [`Hub`]: one topic per MCP stream, event
/// ids made of the stream and the push cursor, streams completed with their JSON-RPC response.
///
/// Cheap to clone (a [`Hub`] handle). Give it to rmcp through
/// [`PushSessionManager::new`](crate::PushSessionManager::new) (the event store, and the session binding that
/// keeps a `Last-Event-ID` inside its session) and `StreamableHttpServerConfig::session_store`
/// (the session store, which also learns of a `DELETE`).
///
/// Retention, ages and byte budgets are the hub's ([`HubConfig`](push_core::HubConfig)): a
/// stream is resumable as long as its topic retains its events.
#[derive(Debug, Clone)]
pub struct McpStore {
    hub: Hub,
}

impl McpStore {
    /// A store writing to `hub`: [`Hub::memory`] for one process, a push-redis hub for several
    /// processes behind a load balancer.
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }

    /// The hub the store writes to.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stores one SSE message of `stream` and returns its event id. A JSON-RPC response or
    /// error ends its request's stream (rmcp closes it after sending it), so its topic is
    /// completed: a resume from any point gets the rest and then ends.
    ///
    /// # Errors
    ///
    /// [`Error::Name`] for a stream id that cannot name a topic, [`Error::Hub`] when the hub
    /// refused the publish (nothing is stored then, except with
    /// [`push_core::Error::OutcomeUnknown`]).
    pub async fn store_message(
        &self,
        stream: &str,
        message: &ServerSseMessage,
    ) -> Result<String, Error> {
        let topic = stream_topic(stream)?;
        let mut event = match &message.message {
            Some(message) => {
                NewEvent::json(serde_json::to_vec(&**message).map_err(Error::Decode)?)?
            }
            None => NewEvent::text(""),
        };
        if let Some(retry) = message.retry {
            event = event.with_type(EventType::new(&format!("retry:{}", retry.as_millis()))?);
        }
        let stored = self.hub.publish(&topic, event).await?;
        let ends = matches!(
            message.message.as_deref(),
            Some(ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_))
        );
        if ends && !stream.ends_with(":common") {
            // The response is stored and is what the caller waits for; a completion that
            // fails leaves the stream open, and its resumes end by the client's own timeout
            // until retention removes the topic.
            let _ = self.hub.complete(&topic).await;
        }
        Ok(EventId::format(stream, stored.id()))
    }

    /// The messages of the stream named by `last_event_id` after it, live: a stream still
    /// being written keeps delivering (from any process sharing the hub) until its response,
    /// then ends.
    ///
    /// What a resume older than retention gets: push reports
    /// [`Outcome::Gap`], and the replay goes on from the oldest retained event. The Streamable
    /// HTTP transport has no way to tell the client of missed events, and the message that
    /// matters, the response, is the stream's newest and so the last to go: a client
    /// missing a few progress notifications still gets its result. A
    /// [`Outcome::Reset`] (the topic was deleted and started over, or its store lost it) is
    /// [`Error::Reset`]: the history is gone and the request must be sent again.
    ///
    /// # Errors
    ///
    /// [`Error::EventId`] for an id this store did not make, [`Error::UnknownStream`] for a
    /// stream the hub does not hold, [`Error::Reset`], [`Error::Hub`]. rmcp answers every
    /// one of them with an empty `200` event stream that ends at once.
    pub async fn replay(&self, last_event_id: &str) -> Result<EventStream, Error> {
        let id = EventId::parse(last_event_id)?;
        let topic = stream_topic(&id.stream)?;
        // Asked first so that an invented id never creates a topic.
        if self.hub.head(&topic).await?.is_none() {
            return Err(Error::UnknownStream);
        }
        let subscription = self
            .hub
            .subscribe(&topic, StartFrom::After(id.cursor))
            .await?;
        match subscription.outcome() {
            Outcome::Resumed | Outcome::Gap { .. } => {}
            Outcome::Reset => return Err(Error::Reset),
        }
        Ok(Box::pin(replay_stream(id.stream, subscription)))
    }

    /// Records that `session` opened the request stream `stream`, so that a resume in this
    /// session may name it and a `DELETE` of the session deletes it.
    ///
    /// # Errors
    ///
    /// [`Error::Name`], [`Error::Hub`].
    pub async fn bind(&self, session: &str, stream: &str) -> Result<(), Error> {
        let index = index_topic(session)?;
        self.hub
            .publish(&index, NewEvent::text(stream.to_owned()))
            .await?;
        Ok(())
    }

    /// Whether `stream` is one of `session`'s: its standalone stream, or a request stream
    /// [`bind`](Self::bind) recorded.
    ///
    /// # Errors
    ///
    /// [`Error::Name`], [`Error::Hub`].
    pub async fn belongs(&self, session: &str, stream: &str) -> Result<bool, Error> {
        if stream == common_stream(session) {
            return Ok(true);
        }
        Ok(self.streams(session).await?.iter().any(|s| s == stream))
    }

    /// The request streams `session` opened, oldest first.
    async fn streams(&self, session: &str) -> Result<Vec<String>, Error> {
        let index = index_topic(session)?;
        if self.hub.head(&index).await?.is_none() {
            return Ok(Vec::new());
        }
        let batch = self.hub.read(&index, StartFrom::Oldest, INDEX_READ).await?;
        Ok(batch
            .events
            .iter()
            .filter_map(|e| std::str::from_utf8(e.data()).ok().map(str::to_owned))
            .collect())
    }

    /// Deletes every topic of `session`: its request streams, its standalone stream, its index
    /// and its state. Their readers end; a resume then finds no stream.
    ///
    /// # Errors
    ///
    /// [`Error::Name`], [`Error::Hub`].
    pub async fn delete_session(&self, session: &str) -> Result<(), Error> {
        for stream in self.streams(session).await? {
            self.hub.delete(&stream_topic(&stream)?).await?;
        }
        self.hub
            .delete(&stream_topic(&common_stream(session))?)
            .await?;
        self.hub.delete(&index_topic(session)?).await?;
        self.hub.delete(&state_topic(session)?).await?;
        Ok(())
    }

    /// The session state stored for `session`, the newest if several.
    ///
    /// # Errors
    ///
    /// [`Error::Name`], [`Error::Hub`], [`Error::Decode`].
    pub async fn load_session(&self, session: &str) -> Result<Option<SessionState>, Error> {
        let topic = state_topic(session)?;
        let Some(head) = self.hub.head(&topic).await? else {
            return Ok(None);
        };
        // The newest state is the one that counts: read only it, not the topic's history.
        let before = push_core::Cursor::new(head.epoch(), head.seq().saturating_sub(1));
        let batch = self.hub.read(&topic, StartFrom::After(before), 1).await?;
        match batch.events.last() {
            None => Ok(None),
            Some(event) => serde_json::from_slice(event.data())
                .map(Some)
                .map_err(Error::Decode),
        }
    }

    /// Stores `state` for `session`.
    ///
    /// # Errors
    ///
    /// [`Error::Name`], [`Error::Hub`], [`Error::Decode`].
    pub async fn store_session(&self, session: &str, state: &SessionState) -> Result<(), Error> {
        let topic = state_topic(session)?;
        let json = serde_json::to_vec(state).map_err(Error::Decode)?;
        self.hub.publish(&topic, NewEvent::json(json)?).await?;
        Ok(())
    }
}

/// The replay: each event as rmcp's message with its original id, until the topic completes.
fn replay_stream(
    stream_id: String,
    subscription: Subscription,
) -> impl futures_util::Stream<Item = ServerSseMessage> + Send + Sync + 'static {
    stream::unfold(
        (stream_id, subscription),
        |(stream_id, mut subscription)| async move {
            loop {
                match subscription.recv().await? {
                    Delivery::Event(event) => {
                        let Some(message) = message_of(&stream_id, &event) else {
                            continue;
                        };
                        return Some((message, (stream_id, subscription)));
                    }
                    Delivery::Gap { .. } => continue,
                    Delivery::Complete => return None,
                    // `Delivery` may grow: an unknown delivery ends the replay rather than
                    // guessing.
                    #[allow(unreachable_patterns)]
                    _ => return None,
                }
            }
        },
    )
}

/// Decodes one stored event. An event this store did not write (a payload that is not a
/// message) is skipped.
fn message_of(stream_id: &str, event: &Arc<Event>) -> Option<ServerSseMessage> {
    let retry = event
        .event_type()
        .and_then(|t| t.as_str().strip_prefix("retry:"))
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let id = EventId::format(stream_id, event.id());
    let mut message = match event.kind() {
        PayloadKind::Json => ServerSseMessage::new(id, serde_json::from_slice(event.data()).ok()?),
        _ if event.data().is_empty() => ServerSseMessage::priming(id, Duration::ZERO),
        _ => return None,
    };
    message.retry = retry;
    Some(message)
}

#[async_trait::async_trait]
impl EventStore for McpStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<RmcpEventId, EventStoreError> {
        Ok(self.store_message(stream_id, event).await?)
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        Ok(self.replay(last_event_id).await?)
    }
}

/// The session store: the state in topic `mcp:st:{session}`; `delete` (which rmcp calls on a
/// client's `DELETE`, on whichever process gets it) deletes every topic of the session.
#[async_trait::async_trait]
impl SessionStore for McpStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(self.load_session(session_id).await?)
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        Ok(self.store_session(session_id, state).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.delete_session(session_id).await?)
    }
}

/// A `Send` future made `Sync` by a lock it alone takes: rmcp's streams must be `Sync`, and
/// push-core's boxed backend futures are `Send` only.
pub(crate) struct SyncFuture<T>(Mutex<Pin<Box<dyn Future<Output = T> + Send>>>);

impl<T> SyncFuture<T> {
    pub(crate) fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self(Mutex::new(Box::pin(future)))
    }
}

impl<T> Future for SyncFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Only this future's own poll takes the lock, so it is never contended; a poisoned lock
        // (a panic inside a poll) is taken as it is.
        let mut future = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        future.as_mut().poll(cx)
    }
}
