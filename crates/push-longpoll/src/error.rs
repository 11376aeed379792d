//! What can be wrong with a long-poll request.

/// A long-poll request that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The timeout parameter is not a non-negative number of seconds (answered `400`).
    #[error("{param}={value:?} is not a number of seconds")]
    Timeout {
        /// The parameter's name.
        param: &'static str,
        /// What the client sent.
        value: String,
    },
}
