//! `PushSessionManager`: rmcp's local session manager with the session binding the event
//! store cannot do alone.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use rmcp::transport::WorkerTransport;

use crate::id::EventId;
use crate::store::SyncFuture;
use crate::{Error, McpStore};

/// rmcp's [`LocalSessionManager`] with an [`McpStore`] as its event store, plus what rmcp's
/// `EventStore` cannot see: which session a stream belongs to.
///
/// rmcp names a request's stream by a fresh UUID and gives the store neither the session when
/// storing nor when replaying (`replay_events_after` gets the `Last-Event-ID` alone). So this
/// manager records each request stream under its session when the stream's first event goes
/// out ([`McpStore::bind`]), and refuses a resume whose id names a stream of another session
/// before the store replays anything ([`Error::OtherSession`]; rmcp answers it with an empty
/// `200` stream). The same record lets [`McpStore`]'s `SessionStore::delete` find a session's
/// topics.
#[derive(Debug)]
pub struct PushSessionManager {
    inner: LocalSessionManager,
    store: McpStore,
}

impl PushSessionManager {
    /// A manager storing its streams' events in `store`, with rmcp's default session settings.
    #[must_use]
    pub fn new(store: McpStore) -> Self {
        Self::with_local(LocalSessionManager::default(), store)
    }

    /// A manager around `local` (its `session_config` as you set it), storing in `store`.
    #[must_use]
    pub fn with_local(local: LocalSessionManager, store: McpStore) -> Self {
        let event_store: Arc<dyn EventStore> = Arc::new(store.clone());
        Self {
            inner: local.with_event_store(event_store),
            store,
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &McpStore {
        &self.store
    }

    /// The wrapped rmcp manager (its open sessions are `inner().sessions`).
    #[must_use]
    pub fn inner(&self) -> &LocalSessionManager {
        &self.inner
    }
}

impl SessionManager for PushSessionManager {
    type Error = Error;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Error> {
        Ok(self.inner.create_session().await?)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Error> {
        Ok(self.inner.has_session(id).await?)
    }

    /// Closes the session in this process. Its topics stay: rmcp also closes sessions when a
    /// process shuts down, and another process may still serve them. A client's `DELETE`
    /// reaches `SessionStore::delete`, which deletes them.
    async fn close_session(&self, id: &SessionId) -> Result<(), Error> {
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Error> {
        let stream = self.inner.create_stream(id, message).await?;
        let store = self.store.clone();
        let session = id.to_string();
        let mut bound = false;
        // The first event carries the stream's id: record the stream under its session before
        // the client can hold any id of it.
        Ok(stream.then(move |message| {
            let bind = if bound {
                None
            } else {
                bound = true;
                message
                    .event_id
                    .as_deref()
                    .and_then(|id| EventId::parse(id).ok())
            };
            let store = store.clone();
            let session = session.clone();
            SyncFuture::new(async move {
                if let Some(id) = bind {
                    // A failed record makes later resumes of this stream refused; the live
                    // stream goes on.
                    let _ = store.bind(&session, &id.stream).await;
                }
                message
            })
        }))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    /// Refuses an id of another session's stream ([`Error::OtherSession`]), then replays
    /// through the store ([`McpStore::replay`]).
    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Error> {
        let event = EventId::parse(&last_event_id)?;
        if !self.store.belongs(id, &event.stream).await? {
            return Err(Error::OtherSession);
        }
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Error> {
        Ok(self.inner.restore_session(id).await?)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
