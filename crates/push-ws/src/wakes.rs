//! Whether anything but the subscriptions woke a connection's task.
//!
//! A connection waits on its subscriptions (woken by every event) and on the rest: the
//! client's frames (rare), the server's stop, the grant's end and the ping timer (rarer
//! still). A plain `select!` polls every wait on every wake-up, so each event delivered also
//! cost a read attempt through tokio-tungstenite and a poll of the stop signals. Here the rest
//! wake the task through a waker of their own that raises a flag first: the connection polls
//! them only when the flag is up (or again right after one was ready), and an event costs a
//! poll of the subscriptions alone. One allocation per connection: the flag and the task's
//! waker, which is itself the waker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use futures_util::task::AtomicWaker;

struct Shared {
    /// Raised by a wake-up of the rest, lowered when they are polled.
    woken: AtomicBool,
    /// The connection's task.
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

pub(crate) struct Wakes {
    rest: Waker,
    shared: Arc<Shared>,
}

impl Wakes {
    /// The flag starts up, so the first turn polls everything.
    pub(crate) fn new() -> Self {
        let shared = Arc::new(Shared {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            rest: Waker::from(shared.clone()),
            shared,
        }
    }

    /// Registers the task's waker; call at the start of every poll, before [`take`](Self::take).
    pub(crate) fn register(&self, cx: &Context<'_>) {
        self.shared.task.register(cx.waker());
    }

    /// Lowers the flag; whether it was up. Lower it before polling, so a wake-up during the
    /// poll raises it again.
    pub(crate) fn take(&self) -> bool {
        self.shared.woken.swap(false, Ordering::AcqRel)
    }

    /// Raises the flag: the rest are polled on the next turn (after one was ready it may be
    /// ready again without a wake-up: tungstenite may hold more frames, a timer is armed
    /// again by its next poll).
    pub(crate) fn mark(&self) {
        self.shared.woken.store(true, Ordering::Release);
    }

    /// The waker to poll the rest with.
    pub(crate) fn rest(&self) -> &Waker {
        &self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_rest_wake_the_task_and_raise_the_flag() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let wakes = Wakes::new();
        wakes.register(&Context::from_waker(&task));
        // Up at first, and taking lowers it.
        assert!(wakes.take());
        assert!(!wakes.take());
        wakes.rest().wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(wakes.take());
        // The task's waker is consumed by a wake: registered again, it is woken again.
        wakes.register(&Context::from_waker(&task));
        // By value, as a waker stored by a wait is woken.
        let stored = wakes.rest().clone();
        Waker::wake(stored);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(wakes.take());
        wakes.mark();
        assert!(wakes.take());
    }
}
