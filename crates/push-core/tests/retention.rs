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
fn at_the_topic_cap_unsubscribed_topics_are_reclaimed_least_recently_used_first() {
    let hub = MemoryHub::new(HubConfig::default().max_topics(3));
    let _a = hub.subscribe_now(&topic("a"), StartFrom::Newest).unwrap();
    let old_b = hub.publish_now(&topic("b"), NewEvent::new("x")).unwrap();
    let _c = hub.subscribe_now(&topic("c"), StartFrom::Newest).unwrap();
    // b has no subscriber: it makes room for d, although it still retains an event.
    let _d = hub.subscribe_now(&topic("d"), StartFrom::Newest).unwrap();
    // A later reader of b is told its cursor belongs to another history.
    let err = hub
        .subscribe_now(&topic("b"), StartFrom::After(old_b.id()))
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyTopics { limit: 3 }),
        "every topic has a subscriber now: {err}"
    );
    drop(_c);
    let b = hub
        .subscribe_now(&topic("b"), StartFrom::After(old_b.id()))
        .unwrap();
    assert_eq!(b.outcome(), Outcome::Reset);
    assert_eq!(hub.stats().topics, 3);
}

#[test]
fn a_flood_of_topic_names_never_locks_new_topics_out() {
    let hub = MemoryHub::new(HubConfig::default().max_topics(1_000));
    for i in 0..10_000 {
        hub.publish_now(&topic(&format!("flood-{i}")), NewEvent::new("x"))
            .unwrap();
    }
    assert!(hub.stats().topics <= 1_000);
    let mut sub = hub
        .subscribe_now(&topic("legit"), StartFrom::Newest)
        .unwrap();
    let sent = hub
        .publish_now(&topic("legit"), NewEvent::new("hello"))
        .unwrap();
    // The subscribed topic survives the flood that follows.
    for i in 0..5_000 {
        hub.publish_now(&topic(&format!("more-{i}")), NewEvent::new("x"))
            .unwrap();
    }
    match sub.try_batch(10).unwrap().events.as_slice() {
        [e] => assert_eq!(e.id(), sent.id()),
        other => panic!("expected the one event, got {other:?}"),
    }
}

#[test]
fn the_hub_byte_budget_holds_under_a_flood_with_exact_gaps() {
    let budget = 4 << 20;
    let hub = MemoryHub::new(HubConfig::default().max_bytes(budget));
    let payload = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    let first = hub
        .publish_now(&topic("t0"), NewEvent::new(payload.clone()))
        .unwrap();
    let mut reader = hub
        .subscribe_now(&topic("t0"), StartFrom::After(first.id()))
        .unwrap();
    for round in 0..20 {
        for t in 0..50 {
            hub.publish_now(&topic(&format!("t{t}")), NewEvent::new(payload.clone()))
                .unwrap();
            assert!(
                hub.retained_bytes() <= budget + 64 * 1024 + 1024,
                "round {round}: {} bytes retained",
                hub.retained_bytes()
            );
        }
    }
    assert_eq!(hub.stats().retained_bytes, hub.retained_bytes());
    // t0's reader was behind: it learns exactly how many events it lost.
    let mut seen = 0u64;
    let mut missed = 0u64;
    while let Some(batch) = reader.try_batch(1_000) {
        if let Outcome::Gap { missed: m } = batch.outcome {
            missed += m;
        }
        if batch.events.is_empty() {
            break;
        }
        seen += batch.events.len() as u64;
    }
    assert!(missed > 0, "the budget trimmed t0");
    assert_eq!(
        seen + missed,
        20,
        "every event of t0 after the cursor is seen or counted"
    );
}

#[test]
fn cached_encodings_count_as_retained() {
    static SLOT: push_core::EncodingSlot = push_core::EncodingSlot::new();
    let hub = MemoryHub::new(HubConfig::default().retention(Retention::default().max_events(1)));
    let event = hub
        .publish_now(&topic("t"), NewEvent::new(vec![1u8; 1_000]))
        .unwrap();
    assert_eq!(hub.retained_bytes(), EVENT_OVERHEAD + 1_000);
    event.encoded(&SLOT, |e| bytes::Bytes::from(vec![0u8; e.data().len() * 6]));
    assert_eq!(hub.retained_bytes(), EVENT_OVERHEAD + 7_000);
    assert_eq!(event.retained_size(), EVENT_OVERHEAD + 7_000);
    // Once retention drops the event, none of it counts, even if a reader still holds it.
    hub.publish_now(&topic("t"), NewEvent::new("x")).unwrap();
    assert_eq!(hub.retained_bytes(), EVENT_OVERHEAD + 1);
    // An encoding cached after the event left the log is not counted either.
    static LATE: push_core::EncodingSlot = push_core::EncodingSlot::new();
    event.encoded(&LATE, |_| bytes::Bytes::from_static(b"late"));
    assert_eq!(hub.retained_bytes(), EVENT_OVERHEAD + 1);
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
            other => format!("{other:?}"),
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

/// A flood of keyed publishes (the attack: 800,000 keys over 10,000 topics once left no event
/// retained anywhere) forgets old keys, never events: every untouched topic keeps its history
/// and the keys stay within their own budget.
#[test]
fn a_flood_of_idempotency_keys_never_trims_events() {
    let key_budget = 64 * 1024;
    // Room for every event retention keeps (20 + 50 topics x 10), not for the keys.
    let hub = MemoryHub::new(
        HubConfig::default()
            .retention(Retention::default().max_events(20))
            .max_bytes(256 * 1024)
            .max_idempotency_bytes(key_budget),
    );
    let quiet = topic("quiet");
    for i in 0..20 {
        hub.publish_now(&quiet, NewEvent::new(format!("ev{i}")))
            .unwrap();
    }
    let events_before = hub.retained_bytes();
    let long_key = "k".repeat(push_core::MAX_IDEMPOTENCY_KEY_LEN - 8);
    for i in 0..20_000 {
        let t = topic(&format!("flood-{}", i % 50));
        let key = format!("{long_key}{i:08}");
        let event = NewEvent::new("").with_idempotency_key(&key).unwrap();
        hub.publish_now(&t, event).unwrap();
        assert!(hub.key_bytes() <= key_budget + 512, "keys over budget");
    }
    // The keys' 7 MB went through their own budget; the quiet topic was not trimmed: its
    // reader gets all 20 with no gap.
    assert!(hub.retained_bytes() <= 256 * 1024);
    assert!(hub.key_bytes() > key_budget / 2);
    let mut sub = hub.subscribe_now(&quiet, StartFrom::Oldest).unwrap();
    assert_eq!(sub.outcome(), Outcome::Resumed);
    let batch = sub.try_batch(100).unwrap();
    assert_eq!(batch.events.len(), 20);
    assert!(events_before > 0);
    // The newest keys are still remembered: a retry of the last publish is not stored again.
    let last = topic("flood-49");
    let key = format!("{long_key}{:08}", 19_999);
    let before = hub.head_now(&last).unwrap();
    let again = hub
        .publish_now(&last, NewEvent::new("").with_idempotency_key(&key).unwrap())
        .unwrap();
    assert_eq!(again.id(), before);
    assert_eq!(hub.head_now(&last).unwrap(), before);
}
