//! The crate's error type.

/// Why an operation failed: push-core's one error type, for hub operations and for the
/// validation of names and cursors a client sends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A topic name is empty or longer than [`MAX_TOPIC_LEN`](crate::MAX_TOPIC_LEN).
    #[error("topic name must be 1 to {max} bytes long, got {len}")]
    TopicLength {
        /// The length of the rejected name.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A topic name has a character outside the allowed set.
    #[error("topic name has the character {0:?}; allowed are ASCII letters, digits and - _ . ~ :")]
    TopicChar(char),
    /// An event type is empty or longer than
    /// [`MAX_EVENT_TYPE_LEN`](crate::MAX_EVENT_TYPE_LEN).
    #[error("event type must be 1 to {max} bytes long, got {len}")]
    EventTypeLength {
        /// The length of the rejected type.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An event type has a character outside the allowed set.
    #[error("event type has the character {0:?}; allowed are ASCII letters, digits and - _ . :")]
    EventTypeChar(char),
    /// Text that is not a cursor's text form; says what is wrong with it.
    #[error("invalid cursor: {0}")]
    Cursor(&'static str),
    /// The hub was closed; no more publishing or subscribing.
    #[error("hub is closed")]
    Closed,
    /// The topic was completed ([`Hub::complete`](crate::Hub::complete)): no more publishing.
    #[error("topic is complete: no more events")]
    Complete,
    /// The backend does not do this (a third-party backend without topic completion, say).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
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
    /// A payload that is not what its kind says: text that is not UTF-8, JSON that does not
    /// parse.
    #[error("payload is not valid {kind}: {reason}")]
    Payload {
        /// The kind the payload was given.
        kind: crate::PayloadKind,
        /// What is wrong with it.
        reason: String,
    },
    /// An idempotency key that is empty, longer than
    /// [`MAX_IDEMPOTENCY_KEY_LEN`](crate::MAX_IDEMPOTENCY_KEY_LEN), or not visible ASCII.
    #[error("idempotency key must be 1 to {max} visible ASCII characters")]
    IdempotencyKey {
        /// The limit.
        max: usize,
    },
    /// A backend failed (for instance its server is unreachable), and what was asked was
    /// **not** done: a publish stored nothing. Worth retrying later.
    ///
    /// A backend returns it only where it knows the operation did not take effect (it could
    /// not connect, or the store refused the command before running it); when it cannot tell,
    /// it returns [`OutcomeUnknown`](Self::OutcomeUnknown) instead.
    #[error("backend unavailable: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The operation was sent to the backend but its answer never came (a response timeout, a
    /// connection lost after the command was written, a replica acknowledgement that did not
    /// come after the write): it may or may not have taken effect, and may still take effect
    /// later (a store that was only paused runs what it received once it resumes).
    ///
    /// Neither a success nor a failure: a publish may have been stored, so telling its client
    /// "failed" would be wrong, and a plain retry could store the event twice. Repeat the
    /// request with the same idempotency key
    /// ([`NewEvent::with_idempotency_key`](crate::NewEvent::with_idempotency_key)): the
    /// retry returns the stored event's cursor if the first attempt was stored, and stores it
    /// once if it was not. Completing and deleting are safe to repeat as they are. push-http
    /// answers it `202 Accepted` with `{"outcome":"unknown",…}`.
    #[error(
        "outcome unknown (the backend may have applied it): {0}; repeat the request, a publish with the same idempotency key"
    )]
    OutcomeUnknown(#[source] Box<dyn std::error::Error + Send + Sync>),
}
