//! The crate's error type.

/// Why a store operation failed. rmcp receives it boxed (`EventStoreError`,
/// `SessionStoreError`) and answers a failed resume with an empty `200` stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `Last-Event-ID` that is not an event id this store handed out: no `/`, a stream part
    /// that is not a topic name, or a cursor that does not parse.
    #[error("invalid event id: {0}")]
    EventId(&'static str),
    /// A stream or session id that cannot name a topic (push-core's charset and length).
    #[error("id cannot name a topic: {0}")]
    Name(#[source] push_core::Error),
    /// The event id names a stream the hub does not hold: never stored here, deleted with its
    /// session, or expired by retention.
    #[error("unknown stream")]
    UnknownStream,
    /// The event id names a stream of another session (or one this session never opened).
    #[error("stream does not belong to this session")]
    OtherSession,
    /// The stream's history is gone: it was deleted and its name reused, or its store lost it
    /// (push-core's `Outcome::Reset`). The client must start the request again.
    #[error("stream history was reset")]
    Reset,
    /// A stored message or session state that does not decode.
    #[error("stored data does not decode: {0}")]
    Decode(#[source] serde_json::Error),
    /// The hub refused or failed the operation.
    #[error(transparent)]
    Hub(#[from] push_core::Error),
    /// The wrapped rmcp session manager failed.
    #[error(transparent)]
    Session(
        #[from] rmcp::transport::streamable_http_server::session::local::LocalSessionManagerError,
    ),
}
