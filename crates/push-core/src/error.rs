//! The crate's error type.

/// Why a hub operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hub was closed; no more publishing or subscribing.
    #[error("hub is closed")]
    Closed,
    /// Creating the topic would exceed [`HubConfig::max_topics`](crate::HubConfig::max_topics).
    #[error("too many topics (limit {limit})")]
    TooManyTopics {
        /// The limit.
        limit: usize,
    },
    /// The payload is larger than [`HubConfig::max_event_bytes`](crate::HubConfig::max_event_bytes).
    #[error("event of {size} bytes is over the limit of {limit} bytes")]
    EventTooLarge {
        /// The payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A backend failed (for instance its server is unreachable).
    #[error("backend unavailable: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
