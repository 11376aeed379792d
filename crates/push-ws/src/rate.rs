//! A connection's limit on the messages its client sends.

use std::time::Duration;

use tokio::time::Instant;

/// A connection's message rate, counted in fixed windows: a window opens with the first
/// message after the previous one closed and lasts a second, and takes at most `limit`
/// messages. (Two windows back to back can let up to twice `limit` through within a second;
/// a flood is still cut at once.)
pub(crate) struct Rate {
    limit: u32,
    count: u32,
    since: Option<Instant>,
}

impl Rate {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            count: 0,
            since: None,
        }
    }

    /// Counts one message; whether it is within the limit (always, for a limit of 0).
    pub(crate) fn allow(&mut self) -> bool {
        if self.limit == 0 {
            return true;
        }
        let now = Instant::now();
        match self.since {
            Some(since) if now.saturating_duration_since(since) < Duration::from_secs(1) => {
                self.count += 1;
            }
            _ => {
                self.since = Some(now);
                self.count = 1;
            }
        }
        self.count <= self.limit
    }
}
