//! Many publishers and subscribers on a multi-thread runtime. Each subscriber must see every
//! sequence number exactly once, in order, or an explicit gap of exactly the skipped count, and
//! each publisher's events in the order it published them.

use std::sync::Arc;

use push_core::{Delivery, Hub, HubConfig, MemoryHub, NewEvent, Retention, StartFrom, Topic};

const PUBLISHERS: u64 = 4;
const PER_PUBLISHER: u64 = 2_000;
const TOTAL: u64 = PUBLISHERS * PER_PUBLISHER;

/// What one subscriber saw: events received, events reported missed.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    missed: u64,
}

async fn run(retention: Retention, subscribers: usize, slow_every: Option<u64>) -> Vec<Tally> {
    let hub = Hub::new(MemoryHub::new(HubConfig::default().retention(retention)));
    let topic = Topic::new("stress").unwrap();
    let mut readers = Vec::new();
    for r in 0..subscribers {
        // Subscribing before any publish: sequence 1 is the first event every reader expects.
        let mut sub = hub.subscribe(&topic, StartFrom::Newest).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut next = 1;
            let mut last_per_publisher = [None::<u64>; PUBLISHERS as usize];
            while next <= TOTAL {
                match sub.recv().await.expect("hub stays open") {
                    Delivery::Event(event) => {
                        assert_eq!(
                            event.id().seq(),
                            next,
                            "reader {r}: out of order or repeated"
                        );
                        let text = std::str::from_utf8(event.data()).unwrap();
                        let (p, i) = text.split_once(':').unwrap();
                        let (p, i): (usize, u64) = (p.parse().unwrap(), i.parse().unwrap());
                        if let Some(prev) = last_per_publisher[p] {
                            assert!(i > prev, "reader {r}: publisher {p} reordered");
                        }
                        last_per_publisher[p] = Some(i);
                        tally.received += 1;
                        next += 1;
                    }
                    Delivery::Gap { missed } => {
                        assert!(missed > 0);
                        tally.missed += missed;
                        next += missed;
                    }
                    other => panic!("unexpected {other:?}"),
                }
                if slow_every.is_some_and(|n| next % n == 0) {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            assert_eq!(next, TOTAL + 1, "reader {r}: skipped past the end");
            tally
        }));
    }
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let hub = hub.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                for i in 0..PER_PUBLISHER {
                    hub.publish(&topic, NewEvent::new(format!("{p}:{i}")))
                        .await
                        .unwrap();
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let mut tallies = Vec::new();
    for r in readers {
        tallies.push(r.await.unwrap());
    }
    assert_eq!(hub.stats().subscribers, 0);
    assert_eq!(hub.stats().published, TOTAL);
    tallies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_receives_every_event_once_in_order() {
    let retention = Retention::default().max_events(usize::try_from(TOTAL).unwrap());
    for tally in run(retention, 32, None).await {
        assert_eq!(tally.received, TOTAL);
        assert_eq!(tally.missed, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_subscribers_get_exact_gaps_under_tight_retention() {
    let tallies = run(Retention::default().max_events(16), 16, Some(50)).await;
    let mut any_gap = false;
    for tally in &tallies {
        // Nothing is lost without being reported: received + missed covers every event.
        assert_eq!(tally.received + tally.missed, TOTAL, "{tally:?}");
        any_gap |= tally.missed > 0;
    }
    // With 16 retained events and readers that sleep every 50, at least one must fall behind;
    // if none did, the test did not exercise what it claims to.
    assert!(any_gap, "no reader fell behind: {tallies:?}");
}

#[test]
fn hub_handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Hub>();
    check::<Arc<push_core::Event>>();
    check::<push_core::Subscription>();
}
