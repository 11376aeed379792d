//! A cap on concurrent connections, requests or streams, without waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::Meters;

/// Counts what is open and refuses more than `max`: technique crates use one per server to
/// answer `503` with `Retry-After` at their connection limit.
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    open: AtomicUsize,
    max: usize,
    /// Mirrors `open` as the `push_open` gauge.
    meters: Meters,
}

impl Limiter {
    /// A limiter allowing `max` at once.
    #[must_use]
    pub fn new(max: usize) -> Self {
        Self::with_meters(max, Meters::default())
    }

    /// A limiter allowing `max` at once, counting what is open in `meters`.
    #[must_use]
    pub fn with_meters(max: usize, meters: Meters) -> Self {
        Self {
            inner: Arc::new(Inner {
                open: AtomicUsize::new(0),
                max,
                meters,
            }),
        }
    }

    /// Takes a place, or `None` when all `max` are taken.
    #[must_use]
    pub fn try_acquire(&self) -> Option<Permit> {
        self.inner
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.inner.max).then_some(n + 1)
            })
            .ok()
            .map(|_| {
                self.inner.meters.open(1.0);
                Permit {
                    inner: self.inner.clone(),
                }
            })
    }

    /// How many places are taken.
    #[must_use]
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// The limit.
    #[must_use]
    pub fn max(&self) -> usize {
        self.inner.max
    }
}

/// A place taken from a [`Limiter`], given back on drop.
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Inner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.open.fetch_sub(1, Ordering::AcqRel);
        self.inner.meters.open(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_frees_on_drop() {
        let limiter = Limiter::new(2);
        let a = limiter.try_acquire().unwrap();
        let _b = limiter.try_acquire().unwrap();
        assert!(limiter.try_acquire().is_none());
        drop(a);
        assert_eq!(limiter.open(), 1);
        assert!(limiter.try_acquire().is_some());
    }
}
