//! The streaming engine shared by the techniques that keep one response open (SSE, HTTP
//! streaming, HTTP/2 event push): subscriptions in, encoded frames out, with the start outcome,
//! gaps, heartbeats, the credentials' end and the goodbye decided once, here.
//!
//! Layered without cycles: [`framing`] (what a technique writes) and [`timers`] (heartbeat,
//! expiry) at the bottom, `one` (one topic) and `many` (several) on them, [`body`] on both.

mod body;
mod framing;
mod many;
mod one;
mod timers;

pub use body::StreamBody;
pub use framing::{End, Framing};
pub(crate) use many::MultiFrames;
pub(crate) use one::Frames;

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The start outcome is still to write.
    Start,
    /// Events, gaps and heartbeats as they come.
    Streaming,
    /// The goodbye was written.
    Done,
}
