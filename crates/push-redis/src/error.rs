//! [`RedisError`], and how a failed command maps to push-core's errors: [`Error::Backend`]
//! when it certainly did not run, else [`Error::OutcomeUnknown`].

use push_core::Error;

/// What can go wrong with Redis. A failed command reaches callers inside
/// [`push_core::Error::Backend`] (it did not run) or [`push_core::Error::OutcomeUnknown`] (a
/// write that may have run); its text says which operation failed and why. No type of the
/// `redis` crate is part of this API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL is invalid or the server cannot be reached.
    #[error("cannot connect to redis: {0}")]
    Connect(String),
    /// A command failed.
    #[error("redis {op} failed: {reason}")]
    Command {
        /// The operation (`publish`, `read`, …).
        op: &'static str,
        /// What Redis or the connection said.
        reason: String,
    },
}

impl RedisError {
    /// A failure of a command that did not run: [`Error::Backend`].
    pub(crate) fn boxed(op: &'static str, source: redis::RedisError) -> Error {
        Error::Backend(Box::new(Self::Command {
            op,
            reason: source.to_string(),
        }))
    }

    /// A failure of a command that writes: [`Error::Backend`] when it certainly did not run
    /// ([`not_run`]), else [`Error::OutcomeUnknown`].
    pub(crate) fn write(op: &'static str, source: &redis::RedisError) -> Error {
        let error = Box::new(Self::Command {
            op,
            reason: source.to_string(),
        });
        if not_run(source) {
            Error::Backend(error)
        } else {
            Error::OutcomeUnknown(error)
        }
    }

    /// A write whose command ran, or may have, but whose outcome is not known: `reason` says
    /// why.
    pub(crate) fn unknown(op: &'static str, reason: String) -> Error {
        Error::OutcomeUnknown(Box::new(Self::Command { op, reason }))
    }

    pub(crate) fn connect(source: redis::RedisError) -> Self {
        Self::Connect(source.to_string())
    }
}

/// Whether a command that failed with `e` certainly did not run, so that nothing it would have
/// written is stored. What the `redis` crate (1.x) tells apart:
///
/// - The connection could not be made (`is_connection_refusal`: `ECONNREFUSED`, or a missing
///   unix socket), authentication failed, the client refused the command itself, or a cluster
///   client found no connection for the slot: nothing was written.
/// - Redis refused the command before running it: `NOSCRIPT`, `MOVED`, `ASK`, `TRYAGAIN`,
///   `CLUSTERDOWN`, `CROSSSLOT`, `MASTERDOWN`, `READONLY`, `LOADING`, `NOPERM`, `EXECABORT`,
///   `BUSY`, and those a script meets at its first write, before which it wrote nothing an
///   event depends on (`OOM`, `NOREPLICAS`, `MISCONF`), or at connection (`NOAUTH`,
///   `WRONGPASS`).
///
/// Everything else may have run: a response timeout (the request may have been written; a
/// paused Redis runs it when it resumes), a connection closed or reset while the request was
/// in flight (`BrokenPipe`, `ConnectionReset`, `UnexpectedEof`: the `redis` crate reports a
/// request whose connection task ended, written or not, as `BrokenPipe`), an answer that did
/// not parse, or a script error raised after it wrote. A timeout while connecting is also an
/// `io::ErrorKind::TimedOut`, the same as a response timeout, so it counts as unknown too.
pub(crate) fn not_run(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind as Kind, ServerErrorKind as Server};
    if e.is_connection_refusal() {
        return true;
    }
    match e.kind() {
        Kind::Client
        | Kind::InvalidClientConfig
        | Kind::AuthenticationFailed
        | Kind::ClusterConnectionNotFound
        | Kind::RESP3NotSupported => true,
        Kind::Server(
            Server::NoScript
            | Server::Moved
            | Server::Ask
            | Server::TryAgain
            | Server::ClusterDown
            | Server::CrossSlot
            | Server::MasterDown
            | Server::ReadOnly
            | Server::BusyLoading
            | Server::NoPerm
            | Server::ExecAbort,
        ) => true,
        Kind::Extension => matches!(
            e.code(),
            Some("BUSY" | "OOM" | "NOREPLICAS" | "MISCONF" | "NOAUTH" | "WRONGPASS")
        ),
        _ => false,
    }
}

/// Whether `e` says Redis did not answer (an I/O error or timeout), as opposed to an answer
/// that was an error: what makes the hub [unavailable](crate::RedisHub#method.is_available).
pub(crate) fn unanswered(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> redis::RedisError {
        redis::RedisError::from(std::io::Error::from(kind))
    }

    #[test]
    fn only_what_certainly_did_not_run_is_a_failure() {
        use redis::{ErrorKind as Kind, ServerErrorKind as Server};
        // Nothing was written: the connection was refused, or Redis refused the command.
        assert!(not_run(&io(std::io::ErrorKind::ConnectionRefused)));
        for kind in [
            Server::NoScript,
            Server::ReadOnly,
            Server::BusyLoading,
            Server::Moved,
        ] {
            assert!(not_run(&(Kind::Server(kind), "refused").into()), "{kind:?}");
        }
        assert!(not_run(&(Kind::AuthenticationFailed, "auth").into()));
        for code in ["BUSY", "OOM", "NOREPLICAS", "MISCONF"] {
            assert!(
                not_run(&redis::make_extension_error(code.into(), None)),
                "{code}"
            );
        }
        // The request may have been written: a timeout (a paused Redis runs it later), a
        // connection lost in flight, an answer that did not parse, an error a script raised
        // after it wrote.
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert!(!not_run(&io(kind)), "{kind:?}");
            assert!(unanswered(&io(kind)), "{kind:?}");
        }
        assert!(!not_run(&(Kind::Parse, "garbled").into()));
        assert!(!not_run(
            &(Kind::Server(Server::ResponseError), "ERR").into()
        ));
        assert!(!not_run(&redis::make_extension_error(
            "WRONGTYPE".into(),
            None
        )));
        // An error answer is an answer: Redis is there.
        assert!(!unanswered(
            &(Kind::Server(Server::NoScript), "refused").into()
        ));
    }

    #[test]
    fn writes_map_to_backend_or_unknown() {
        let refused = RedisError::write("publish", &io(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(refused, Error::Backend(_)), "{refused}");
        let timeout = RedisError::write("publish", &io(std::io::ErrorKind::TimedOut));
        assert!(matches!(timeout, Error::OutcomeUnknown(_)), "{timeout}");
        assert!(
            timeout.to_string().contains("redis publish failed"),
            "{timeout}"
        );
    }
}
