//! Retention, limits, reclaiming and shutdown of the in-memory hub.

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use push_core::{
    Backend, Delivery, Error, Hub, HubConfig, MemoryHub, NewEvent, Outcome, ResetPolicy, Retention,
    StartFrom, Topic, EVENT_OVERHEAD,
};

fn topic(name: &str) -> Topic {
    Topic::new(name).unwrap()
}

fn hub_with(retention: Retention) -> MemoryHub {
    MemoryHub::new(HubConfig::default().retention(retention))
}

fn seqs(batch: &push_core::Batch) -> Vec<u64> {
    batch.events.iter().map(|e| e.id().seq()).collect()
}

#[test]
fn count_retention_keeps_the_newest_and_reports_the_gap() {
    let hub = hub_with(Retention::default().max_events(3));
    let t = topic("t");
    let first = hub.publish_now(&t, NewEvent::new("1")).unwrap();
    for i in 2..=10 {
        hub.publish_now(&t, NewEvent::new(i.to_string())).unwrap();
    }
    assert_eq!(hub.stats().retained_events, 3);
    let mut sub = hub.subscribe_now(&t, StartFrom::After(first.id())).unwrap();
    // Events 2..=7 are gone: 6 missed, then 8, 9, 10.
    assert_eq!(sub.outcome(), Outcome::Gap { missed: 6 });
    let batch = sub.try_batch(100).unwrap();
    assert_eq!(batch.outcome, Outcome::Gap { missed: 6 });
    assert_eq!(seqs(&batch), [8, 9, 10]);
    assert_eq!(batch.next.seq(), 10);
}

#[test]
fn byte_retention_counts_payload_and_overhead_and_keeps_the_newest() {
    let per_event = EVENT_OVERHEAD + 100;
    let hub = hub_with(Retention::default().max_bytes(per_event * 2));
    let t = topic("t");
    for _ in 0..5 {
        hub.publish_now(&t, NewEvent::new(vec![0u8; 100])).unwrap();
    }
    let stats = hub.stats();
    assert_eq!(stats.retained_events, 2);
    assert_eq!(stats.retained_bytes, per_event * 2);
    // One event larger than the whole budget is still kept (it is the newest).
    hub.publish_now(&t, NewEvent::new(vec![0u8; per_event * 3]))
        .unwrap();
    assert_eq!(hub.stats().retained_events, 1);
}

#[test]
fn age_retention_expires_old_events() {
    let hub = hub_with(Retention::default().max_age(Duration::from_millis(30)));
    let t = topic("t");
    hub.publish_now(&t, NewEvent::new("old")).unwrap();
    // Waiting past max_age is the condition itself: the monotonic clock only moves forward.
    std::thread::sleep(Duration::from_millis(40));
    hub.publish_now(&t, NewEvent::new("new")).unwrap();
    let mut sub = hub.subscribe_now(&t, StartFrom::Oldest).unwrap();
    let batch = sub.try_batch(10).unwrap();
    assert_eq!(seqs(&batch), [2]);
    assert_eq!(hub.stats().retained_events, 1);
}

#[test]
fn oversized_events_are_rejected() {
    let hub = MemoryHub::new(HubConfig::default().max_event_bytes(10));
    let err = hub
        .publish_now(&topic("t"), NewEvent::new(vec![0u8; 11]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::EventTooLarge {
                size: 11,
                limit: 10
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "event of 11 bytes is over the limit of 10 bytes"
    );
    hub.publish_now(&topic("t"), NewEvent::new(vec![0u8; 10]))
        .unwrap();
}

#[test]
fn topic_count_is_capped_and_idle_topics_are_reclaimed() {
    let hub = MemoryHub::new(
        HubConfig::default()
            .max_topics(3)
            .idle_timeout(Duration::ZERO)
            .retention(Retention::default().max_age(Duration::from_millis(20))),
    );
    // Topics holding a subscriber or retained events are never reclaimed.
    let _held = hub.subscribe_now(&topic("a"), StartFrom::Newest).unwrap();
    hub.publish_now(&topic("b"), NewEvent::new("x")).unwrap();
    let _c = hub.subscribe_now(&topic("c"), StartFrom::Newest).unwrap();
    let err = hub
        .subscribe_now(&topic("d"), StartFrom::Newest)
        .unwrap_err();
    assert!(matches!(err, Error::TooManyTopics { limit: 3 }), "{err}");
    // Once c's subscriber leaves and b's event expires, both can be reclaimed for new names.
    drop(_c);
    std::thread::sleep(Duration::from_millis(30));
    hub.subscribe_now(&topic("d"), StartFrom::Newest).unwrap();
    assert_eq!(hub.sweep(), 1, "only the held topic remains");
}

#[test]
fn a_reclaimed_topic_comes_back_with_a_new_epoch() {
    let hub = MemoryHub::new(
        HubConfig::default()
            .idle_timeout(Duration::ZERO)
            .retention(Retention::default().max_age(Duration::from_millis(10))),
    );
    let t = topic("t");
    let old = hub.publish_now(&t, NewEvent::new("x")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(hub.sweep(), 0);
    let sub = hub.subscribe_now(&t, StartFrom::After(old.id())).unwrap();
    assert_eq!(sub.outcome(), Outcome::Reset);
    assert_ne!(sub.cursor().epoch(), old.id().epoch());
}

#[test]
fn reset_policy_newest_skips_history() {
    let hub = MemoryHub::new(HubConfig::default().reset_policy(ResetPolicy::Newest));
    let t = topic("t");
    hub.publish_now(&t, NewEvent::new("x")).unwrap();
    let mut sub = hub.subscribe_now(&t, StartFrom::Invalid).unwrap();
    assert_eq!(sub.outcome(), Outcome::Reset);
    let batch = sub.try_batch(10).unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(batch.outcome, Outcome::Reset);
}

#[test]
fn cursors_beyond_the_head_and_garbage_are_resets() {
    let hub = MemoryHub::default();
    let t = topic("t");
    let e = hub.publish_now(&t, NewEvent::new("x")).unwrap();
    let future = push_core::Cursor::new(e.id().epoch(), 99);
    assert_eq!(
        hub.subscribe_now(&t, StartFrom::After(future))
            .unwrap()
            .outcome(),
        Outcome::Reset
    );
    for text in ["", "garbage", "1-", "ffffffffffffffffff-1"] {
        let from = StartFrom::from_client(Some(text), StartFrom::Newest);
        assert_eq!(from, StartFrom::Invalid);
        assert_eq!(
            hub.subscribe_now(&t, from).unwrap().outcome(),
            Outcome::Reset
        );
    }
    // The head itself is a valid resume point with nothing after it.
    let mut sub = hub.subscribe_now(&t, StartFrom::After(e.id())).unwrap();
    assert_eq!(sub.outcome(), Outcome::Resumed);
    assert!(sub.try_batch(10).unwrap().events.is_empty());
}

#[test]
fn a_slow_subscriber_gets_a_gap_mid_stream_never_a_silent_skip() {
    let hub = hub_with(Retention::default().max_events(4));
    let t = topic("t");
    let mut sub = hub.subscribe_now(&t, StartFrom::Newest).unwrap();
    for i in 0..10 {
        hub.publish_now(&t, NewEvent::new(i.to_string())).unwrap();
    }
    let mut cx = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    while let Poll::Ready(Some(d)) = sub.poll_recv(&mut cx) {
        got.push(match d {
            Delivery::Event(e) => format!("e{}", e.id().seq()),
            Delivery::Gap { missed } => format!("gap{missed}"),
        });
    }
    assert_eq!(got, ["gap6", "e7", "e8", "e9", "e10"]);
}

#[test]
fn dropping_a_waiting_subscription_releases_its_waiter() {
    let hub = MemoryHub::default();
    let t = topic("t");
    let mut cx = Context::from_waker(Waker::noop());
    let mut subs: Vec<_> = (0..100)
        .map(|_| hub.subscribe_now(&t, StartFrom::Newest).unwrap())
        .collect();
    for sub in &mut subs {
        // Polling twice must not register twice.
        assert!(sub.poll_recv(&mut cx).is_pending());
        assert!(sub.poll_recv(&mut cx).is_pending());
    }
    assert_eq!(hub.stats().waiting, 100);
    subs.truncate(40);
    let stats = hub.stats();
    assert_eq!((stats.waiting, stats.subscribers), (40, 40));
    hub.publish_now(&t, NewEvent::new("x")).unwrap();
    assert_eq!(
        hub.stats().waiting,
        0,
        "a publish wakes and clears every waiter"
    );
    drop(subs);
    assert_eq!(hub.stats().subscribers, 0);
}

#[tokio::test]
async fn close_ends_every_subscription_and_refuses_new_work() {
    let hub = Hub::memory();
    let t = topic("t");
    let mut waiting = hub.subscribe(&t, StartFrom::Newest).await.unwrap();
    let mut batching = hub.subscribe(&t, StartFrom::Newest).await.unwrap();
    let a = tokio::spawn(async move { waiting.recv().await.is_none() });
    let b = tokio::spawn(async move { batching.next_batch(10).await.is_none() });
    tokio::task::yield_now().await;
    hub.close();
    assert!(a.await.unwrap());
    assert!(b.await.unwrap());
    assert!(matches!(
        hub.publish(&t, NewEvent::new("x")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        hub.subscribe(&t, StartFrom::Newest).await,
        Err(Error::Closed)
    ));
    assert!(hub.is_closed());
    assert_eq!(hub.stats().topics, 0);
}

#[test]
fn a_closed_hub_still_hands_out_what_was_published_before_the_close() {
    let hub = MemoryHub::default();
    let t = topic("t");
    let mut sub = hub.subscribe_now(&t, StartFrom::Newest).unwrap();
    hub.publish_now(&t, NewEvent::new("a")).unwrap();
    hub.publish_now(&t, NewEvent::new("b")).unwrap();
    hub.close();
    let mut cx = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    while let Poll::Ready(Some(Delivery::Event(e))) = sub.poll_recv(&mut cx) {
        got.push(e.data().clone());
    }
    assert_eq!(got, ["a", "b"]);
    assert!(matches!(sub.poll_recv(&mut cx), Poll::Ready(None)));
}

#[tokio::test]
async fn next_batch_waits_for_news_but_reports_a_reset_at_once() {
    let hub = Hub::memory();
    let t = topic("t");
    // A reset on an empty topic must reach the client without waiting for a publish.
    let mut reset = hub.subscribe(&t, StartFrom::Invalid).await.unwrap();
    let batch = reset.next_batch(10).await.unwrap();
    assert_eq!(batch.outcome, Outcome::Reset);
    assert!(batch.events.is_empty());

    let mut sub = hub.subscribe(&t, StartFrom::Newest).await.unwrap();
    let publisher = hub.clone();
    let t2 = t.clone();
    let task = tokio::spawn(async move {
        tokio::task::yield_now().await;
        for i in 0..3 {
            publisher
                .publish(&t2, NewEvent::new(format!("{i}")))
                .await
                .unwrap();
        }
    });
    let batch = sub.next_batch(10).await.unwrap();
    assert_eq!(batch.outcome, Outcome::Resumed);
    assert!(!batch.events.is_empty());
    task.await.unwrap();
    assert_eq!(batch.events[0].id().seq(), 1);
    assert_eq!(hub.backend().stats().published, 3);
}
