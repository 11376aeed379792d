//! push-h2's error: opaque, as hyper's.

use std::fmt;

/// An error of the connection driver or of the client. Opaque, as hyper's: its `Display` says
/// what failed, [`source`](std::error::Error::source) gives the cause, and no dependency's error
/// type is part of the API.
pub struct Error {
    kind: Kind,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "client"), allow(dead_code))]
enum Kind {
    Io,
    Http2,
    Request,
}

impl Error {
    pub(crate) fn h2(cause: h2::Error) -> Self {
        let kind = if cause.is_io() { Kind::Io } else { Kind::Http2 };
        Self {
            kind,
            cause: Box::new(cause),
        }
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn io(cause: std::io::Error) -> Self {
        Self {
            kind: Kind::Io,
            cause: Box::new(cause),
        }
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn request(cause: http::Error) -> Self {
        Self {
            kind: Kind::Request,
            cause: Box::new(cause),
        }
    }

    /// Whether the connection's I/O failed (connect, read, write), rather than the protocol.
    #[must_use]
    pub fn is_io(&self) -> bool {
        self.kind == Kind::Io
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Io => "connection i/o failed",
            Kind::Http2 => "http/2 failed",
            Kind::Request => "invalid request",
        };
        write!(f, "{what}: {}", self.cause)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}
