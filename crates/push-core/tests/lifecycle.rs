//! A topic's end: `complete` (readers get the rest, then `Complete`, and publishing stops) and
//! `delete` (readers end, the name starts a new history).

use push_core::{Delivery, Error, Hub, NewEvent, Outcome, StartFrom, Topic};

fn topic() -> Topic {
    Topic::new("job").unwrap()
}

#[tokio::test]
async fn readers_get_the_rest_then_complete_and_publishing_stops() {
    let hub = Hub::memory();
    let t = topic();
    let mut live = hub.subscribe(&t, StartFrom::Newest).await.unwrap();
    assert_eq!(hub.topic_stats(&t).unwrap().subscribers, 1);
    assert!(hub.topic_stats(&Topic::new("nobody").unwrap()).is_none());
    let first = hub.publish(&t, NewEvent::text("a")).await.unwrap();
    hub.publish(&t, NewEvent::text("b")).await.unwrap();
    let last = hub.publish(&t, NewEvent::text("c")).await.unwrap();
    // The end has a position of its own, right after the last event.
    let end = hub.complete(&t).await.unwrap();
    assert_eq!(end.seq(), last.id().seq() + 1);
    assert_eq!(hub.head(&t).await.unwrap(), Some(end));
    // Completing again is the same.
    assert_eq!(hub.complete(&t).await.unwrap(), end);
    assert!(matches!(
        hub.publish(&t, NewEvent::text("late")).await,
        Err(Error::Complete)
    ));

    let mut got = Vec::new();
    while let Some(delivery) = live.recv().await {
        match delivery {
            Delivery::Event(e) => got.push(e.data().clone()),
            Delivery::Complete => got.push("<complete>".into()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, ["a", "b", "c", "<complete>"]);
    assert!(live.is_finished());
    assert_eq!(live.cursor(), end);

    // A reader resuming from before the end gets the rest, then the end.
    let mut late = hub
        .subscribe(&t, StartFrom::After(first.id()))
        .await
        .unwrap();
    assert!(!late.is_finished());
    let mut rest = Vec::new();
    while let Some(Delivery::Event(e)) = late.recv().await {
        rest.push(e.data().clone());
    }
    assert_eq!(rest, ["b", "c"]);
    assert!(late.is_finished());

    // From the end, or fresh: finished at once.
    let at_end = hub
        .subscribe(&t, StartFrom::After(last.id()))
        .await
        .unwrap();
    assert!(at_end.is_finished());
    let past_end = hub.subscribe(&t, StartFrom::After(end)).await.unwrap();
    assert!(past_end.is_finished());
    assert_eq!(past_end.outcome(), Outcome::Resumed);
    let fresh = hub.subscribe(&t, StartFrom::Newest).await.unwrap();
    assert!(fresh.is_finished());

    // Batches say so, and a long-poll style wait answers at once.
    let batch = hub
        .read(&t, StartFrom::After(first.id()), 10)
        .await
        .unwrap();
    assert_eq!(batch.events.len(), 2);
    assert!(batch.complete);
    let mut waiting = hub
        .subscribe(&t, StartFrom::After(last.id()))
        .await
        .unwrap();
    let batch = waiting.next_batch(10).await.unwrap();
    assert!(batch.events.is_empty() && batch.complete);
    assert_eq!(batch.next, end);
}

#[tokio::test]
async fn a_batch_cut_before_the_end_is_not_complete() {
    let hub = Hub::memory();
    let t = topic();
    let start = hub.publish(&t, NewEvent::text("0")).await.unwrap();
    for i in 1..=5 {
        hub.publish(&t, NewEvent::text(i.to_string()))
            .await
            .unwrap();
    }
    hub.complete(&t).await.unwrap();
    let first = hub.read(&t, StartFrom::After(start.id()), 3).await.unwrap();
    assert_eq!(first.events.len(), 3);
    assert!(!first.complete);
    let second = hub.read(&t, StartFrom::After(first.next), 3).await.unwrap();
    assert_eq!(second.events.len(), 2);
    assert!(second.complete);
}

#[tokio::test]
async fn delete_ends_readers_and_the_name_starts_over() {
    let hub = Hub::memory();
    let t = topic();
    let old = hub.publish(&t, NewEvent::text("old")).await.unwrap();
    let mut reader = hub.subscribe(&t, StartFrom::Newest).await.unwrap();
    assert!(hub.delete(&t).await.unwrap());
    assert!(reader.recv().await.is_none(), "the reader ends");
    assert!(!hub.delete(&t).await.unwrap(), "gone already");
    hub.publish(&t, NewEvent::text("new")).await.unwrap();
    let batch = hub.read(&t, StartFrom::After(old.id()), 10).await.unwrap();
    assert_eq!(batch.outcome, Outcome::Reset);
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].data(), "new");
}

#[tokio::test]
async fn a_retried_publish_with_its_idempotency_key_is_stored_once() {
    use push_core::{HubConfig, MemoryHub};
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default()
            .idempotency_window(std::time::Duration::from_millis(200))
            .max_idempotency_keys(2),
    ));
    let t = topic();
    let keyed = |k: &str| NewEvent::text("order 7").with_idempotency_key(k).unwrap();
    let first = hub.publish(&t, keyed("k1")).await.unwrap();
    let again = hub.publish(&t, keyed("k1")).await.unwrap();
    assert_eq!(again.id(), first.id(), "the retry answers the first cursor");
    let other = hub.publish(&t, keyed("k2")).await.unwrap();
    assert_ne!(other.id(), first.id());
    assert_eq!(
        hub.topic_stats(&t).unwrap().retained_events,
        2,
        "stored once each"
    );

    // At the cap the oldest key goes first; past the window every key goes.
    hub.publish(&t, keyed("k3")).await.unwrap();
    let k1_again = hub.publish(&t, keyed("k1")).await.unwrap();
    assert_ne!(k1_again.id(), first.id(), "k1 was forgotten at the cap");
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let k3_late = hub.publish(&t, keyed("k3")).await.unwrap();
    assert_eq!(
        hub.topic_stats(&t).unwrap().retained_events,
        5,
        "{k3_late:?}"
    );

    // Once the topic is complete, a retry of a stored publish still answers its cursor (it was
    // stored: a 409 would say otherwise); a new publish is refused.
    let done = Topic::new("done").unwrap();
    let stored = hub.publish(&done, keyed("k9")).await.unwrap();
    hub.complete(&done).await.unwrap();
    let retried = hub.publish(&done, keyed("k9")).await.unwrap();
    assert_eq!(retried.id(), stored.id());
    assert!(matches!(
        hub.publish(&done, keyed("k10")).await,
        Err(push_core::Error::Complete)
    ));

    for bad in ["", "has space", &"x".repeat(129), "é"] {
        assert!(
            NewEvent::text("x").with_idempotency_key(bad).is_err(),
            "{bad:?}"
        );
    }
}
