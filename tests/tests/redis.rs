//! push-redis against a real `redis-server` started by the test on a free loopback port.

use std::time::Duration;

use push_core::{Delivery, Hub, HubConfig, NewEvent, Outcome, StartFrom, Subscription, Topic};
use push_redis::{RedisConfig, RedisHub};
use push_tests::RedisServer;

fn topic(name: &str) -> Topic {
    Topic::new(name).unwrap()
}

fn config() -> RedisConfig {
    RedisConfig::default()
        .block(Duration::from_millis(500))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

async fn hub(redis: &RedisServer, config: RedisConfig) -> (Hub, RedisHub) {
    let backend = RedisHub::connect(&redis.url(), config)
        .await
        .expect("connect to the test's redis-server");
    (Hub::new(backend.clone()), backend)
}

/// Receives `n` deliveries, panicking after 20 s.
async fn take(sub: &mut Subscription, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), sub.recv()).await {
            Ok(Some(d)) => out.push(d),
            Ok(None) => panic!("subscription ended after {} deliveries", out.len()),
            Err(_) => panic!("only {} of {n} deliveries within 20 s: {out:?}", out.len()),
        }
    }
    out
}

fn payloads(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| match d {
            Delivery::Event(e) => String::from_utf8(e.data().to_vec()).unwrap(),
            Delivery::Gap { missed } => format!("gap {missed}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn numbers(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_and_resume_on_another_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, backend_a) = hub(&redis, config()).await;
    let (b, _) = hub(&redis, config()).await;
    let news = topic("news");

    let mut sub_a = a.subscribe(&news, StartFrom::Newest).await.unwrap();
    let mut sub_b = b.subscribe(&news, StartFrom::Newest).await.unwrap();
    // Many subscribers in one process share one reader.
    let more: Vec<_> =
        futures_util::future::join_all((0..20).map(|_| a.subscribe(&news, StartFrom::Newest)))
            .await;
    assert_eq!(backend_a.health().readers, 1);

    let mut ids = Vec::new();
    for i in 1..=50u32 {
        // Alternate servers: both append to the one stream, in one order.
        let via = if i % 2 == 0 { &a } else { &b };
        ids.push(
            via.publish(&news, NewEvent::new(i.to_string()))
                .await
                .unwrap()
                .id(),
        );
    }
    for w in ids.windows(2) {
        assert_eq!(w[0].epoch(), w[1].epoch());
        assert_eq!(w[0].seq() + 1, w[1].seq(), "sequences are contiguous");
    }
    let got_a = take(&mut sub_a, 50).await;
    let got_b = take(&mut sub_b, 50).await;
    assert_eq!(payloads(&got_a), numbers(1..=50));
    assert_eq!(payloads(&got_b), numbers(1..=50));
    let seen: Vec<_> = got_b
        .iter()
        .map(|d| match d {
            Delivery::Event(e) => e.id(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(seen, ids, "the same event has the same cursor everywhere");
    drop(more);

    // A client read 20 on A; it resumes on a third server that has never read the topic, with
    // the cursor's text as it travelled.
    let cursor = ids[19].to_string();
    let (c, _) = hub(&redis, config()).await;
    let from = StartFrom::from_client(Some(&cursor), StartFrom::Newest);
    let mut resumed = c.subscribe(&news, from).await.unwrap();
    assert_eq!(resumed.outcome(), Outcome::Resumed);
    assert_eq!(payloads(&take(&mut resumed, 30).await), numbers(21..=50));
    // The short-poll pattern on yet another handle.
    let batch = b.read(&news, from, 100).await.unwrap();
    assert_eq!(batch.outcome, Outcome::Resumed);
    assert_eq!(batch.events.len(), 30);
    assert_eq!(batch.next, ids[49]);
    assert_eq!(c.head(&news).await.unwrap(), Some(ids[49]));
    assert_eq!(c.head(&topic("never-published")).await.unwrap(), None);

    // Strict cursors: garbage and a cursor beyond the stream's head are resets.
    for bad in ["garbage", &format!("{:x}-999", ids[0].epoch().get())] {
        let from = StartFrom::from_client(Some(bad), StartFrom::Newest);
        let sub = c.subscribe(&news, from).await.unwrap();
        assert_eq!(sub.outcome(), Outcome::Reset, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_after_trim_and_reset_after_delete() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = hub(&redis, config()).await;
    let t = topic("trimmed");
    let mut ids = Vec::new();
    for i in 1..=30u32 {
        ids.push(
            a.publish(&t, NewEvent::new(i.to_string()))
                .await
                .unwrap()
                .id(),
        );
    }
    // Trim exactly to the newest 10 (21..=30).
    assert_eq!(
        redis.cli(&["XTRIM", "push:trimmed", "MAXLEN", "10"]).trim(),
        "20"
    );

    let (b, _) = hub(&redis, config()).await;
    let mut sub = b.subscribe(&t, StartFrom::After(ids[4])).await.unwrap();
    assert_eq!(sub.outcome(), Outcome::Gap { missed: 15 });
    assert_eq!(payloads(&take(&mut sub, 10).await), numbers(21..=30));
    // Within what is retained, a resume is lossless.
    let sub = b.subscribe(&t, StartFrom::After(ids[24])).await.unwrap();
    assert_eq!(sub.outcome(), Outcome::Resumed);

    // The stream is deleted and written again: a new epoch.
    let mut live = b.subscribe(&t, StartFrom::Newest).await.unwrap();
    assert_eq!(redis.cli(&["DEL", "push:trimmed"]).trim(), "1");
    let fresh = a.publish(&t, NewEvent::new("new")).await.unwrap();
    assert_ne!(fresh.id().epoch(), ids[0].epoch());
    assert!(fresh.id().epoch() > ids[0].epoch(), "epochs grow");
    assert_eq!(fresh.id().seq(), 1);
    // The live subscription of the old epoch ends, so its client comes back with its cursor…
    let end = tokio::time::timeout(Duration::from_secs(10), live.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    // … and is told of the reset, then replays the new history.
    let (c, _) = hub(&redis, config()).await;
    for hub in [&b, &c] {
        let mut sub = hub.subscribe(&t, StartFrom::After(ids[29])).await.unwrap();
        assert_eq!(sub.outcome(), Outcome::Reset);
        assert_eq!(payloads(&take(&mut sub, 1).await), ["new"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_in_the_middle_of_a_publish_sequence() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, backend_a) = hub(&redis, config()).await;
    let (b, backend_b) = hub(&redis, config()).await;
    let t = topic("restart");
    let mut sub_a = a.subscribe(&t, StartFrom::Newest).await.unwrap();
    let mut sub_b = b.subscribe(&t, StartFrom::Newest).await.unwrap();

    for i in 1..=100u32 {
        a.publish(&t, NewEvent::new(i.to_string())).await.unwrap();
    }
    assert_eq!(payloads(&take(&mut sub_a, 100).await), numbers(1..=100));

    redis.kill();
    // Publishing during the outage fails, and says why.
    let error = a
        .publish(&t, NewEvent::new("101"))
        .await
        .expect_err("redis is down");
    let text = error.to_string();
    assert!(text.contains("redis publish failed"), "{text}");
    assert!(!backend_a.health().publishing);

    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        redis.restart();
        redis
    });
    // The publisher retries each event until Redis takes it.
    let mut failures = 1;
    for i in 101..=200u32 {
        loop {
            match a.publish(&t, NewEvent::new(i.to_string())).await {
                Ok(_) => break,
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    let _redis = restart.join().unwrap();
    // Subscribers stayed attached on both servers and got the exact sequence: nothing lost,
    // nothing repeated, no gap (nothing was trimmed).
    assert_eq!(payloads(&take(&mut sub_a, 100).await), numbers(101..=200));
    assert_eq!(payloads(&take(&mut sub_b, 200).await), numbers(1..=200));
    for backend in [&backend_a, &backend_b] {
        let health = backend.health();
        assert!(health.reconnects >= 1, "{health:?}");
        assert!(health.read_errors >= 1, "{health:?}");
        assert_eq!(health.readers_connected, 1, "{health:?}");
    }
    let health = backend_a.health();
    assert_eq!(health.publish_errors, failures, "{health:?}");
    assert!(health.publishing);
    assert!(health.last_error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_readers_stop_and_limits_hold() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let hub_config = HubConfig::default()
        .idle_timeout(Duration::from_millis(300))
        .max_topics(3)
        .max_event_bytes(1024);
    let (a, backend) = hub(
        &redis,
        config().block(Duration::from_millis(200)).hub(hub_config),
    )
    .await;
    let mut subs = Vec::new();
    for name in ["t1", "t2", "t3"] {
        subs.push(a.subscribe(&topic(name), StartFrom::Newest).await.unwrap());
    }
    // Three topics share the process's few readers (four by default).
    let readers = backend.health().readers;
    assert!((1..=3).contains(&readers), "{readers}");
    let refused = a.subscribe(&topic("t4"), StartFrom::Newest).await;
    assert!(matches!(
        refused,
        Err(push_core::Error::TooManyTopics { limit: 3 })
    ));
    let big = a
        .publish(&topic("t1"), NewEvent::new(vec![0u8; 2048]))
        .await;
    assert!(matches!(big, Err(push_core::Error::EventTooLarge { .. })));
    // Publishing needs no reader.
    a.publish(&topic("t4"), NewEvent::new("x")).await.unwrap();

    // An entry written by something else with a payload over the limit is skipped, and counted.
    let mut live = a.subscribe(&topic("t1"), StartFrom::Newest).await.unwrap();
    let first = a.publish(&topic("t1"), NewEvent::new("a")).await.unwrap();
    let big = "z".repeat(2000);
    let id = format!("{}-*", first.id().epoch().get());
    assert!(!redis
        .cli(&["XADD", "push:t1", &id, "data", &big])
        .trim()
        .is_empty());
    a.publish(&topic("t1"), NewEvent::new("b")).await.unwrap();
    assert_eq!(payloads(&take(&mut live, 3).await), ["a", "gap 1", "b"]);
    drop(live);

    drop(subs);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while backend.health().readers > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            backend.health()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.stats().topics, 0);
    // And a topic comes back on demand.
    let mut sub = a.subscribe(&topic("t4"), StartFrom::Oldest).await.unwrap();
    assert_eq!(payloads(&take(&mut sub, 1).await), ["x"]);

    a.close();
    assert!(sub.recv().await.is_none());
    assert!(matches!(
        a.publish(&topic("t1"), NewEvent::new("y")).await,
        Err(push_core::Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_and_delete_reach_every_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = hub(&redis, config()).await;
    let (b, _) = hub(&redis, config()).await;
    let job = topic("job");
    let mut live_b = b.subscribe(&job, StartFrom::Newest).await.unwrap();
    let first = a.publish(&job, NewEvent::text("1")).await.unwrap().id();
    a.publish(&job, NewEvent::text("2")).await.unwrap();
    let last = a.publish(&job, NewEvent::text("3")).await.unwrap().id();
    let end = a.complete(&job).await.unwrap();
    assert_eq!(end.seq(), last.seq() + 1, "the end has its own position");
    assert_eq!(
        a.complete(&job).await.unwrap(),
        end,
        "completing twice is once"
    );
    assert!(matches!(
        b.publish(&job, NewEvent::text("late")).await,
        Err(push_core::Error::Complete)
    ));

    // B's subscriber gets the three events, then the end, then nothing.
    let got = take(&mut live_b, 4).await;
    assert_eq!(payloads(&got[..3]), numbers(1..=3));
    assert!(matches!(got[3], Delivery::Complete), "{got:?}");
    assert!(live_b.recv().await.is_none());

    // A third server that never read the topic: resuming gets the rest, then the end; at the
    // end, finished at once.
    let (c, _) = hub(&redis, config()).await;
    let mut late = c.subscribe(&job, StartFrom::After(first)).await.unwrap();
    let got = take(&mut late, 3).await;
    assert_eq!(payloads(&got[..2]), numbers(2..=3));
    assert!(matches!(got[2], Delivery::Complete), "{got:?}");
    let at_end = c.subscribe(&job, StartFrom::After(last)).await.unwrap();
    assert!(at_end.is_finished());
    let batch = c.read(&job, StartFrom::After(first), 10).await.unwrap();
    assert!(batch.complete && batch.events.len() == 2, "{batch:?}");

    // Delete: B's readers of another topic end; the name starts over with a new epoch.
    let room = topic("room");
    let old = a.publish(&room, NewEvent::text("old")).await.unwrap().id();
    let mut reader_b = b.subscribe(&room, StartFrom::Newest).await.unwrap();
    assert!(a.delete(&room).await.unwrap());
    assert!(!a.delete(&room).await.unwrap(), "deleted already");
    let ended = tokio::time::timeout(Duration::from_secs(20), reader_b.recv()).await;
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    assert_eq!(
        b.head(&room).await.unwrap(),
        None,
        "a deleted topic has no head"
    );
    let new = b.publish(&room, NewEvent::text("new")).await.unwrap().id();
    assert_ne!(new.epoch(), old.epoch());
    let batch = a.read(&room, StartFrom::After(old), 10).await.unwrap();
    assert_eq!(batch.outcome, Outcome::Reset);
    assert_eq!(payloads_of(&batch.events), ["new"]);
}

fn payloads_of(events: &[std::sync::Arc<push_core::Event>]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8(e.data().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_stores_a_retried_publish_once_across_servers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _) = hub(&redis, config()).await;
    let (b, _) = hub(&redis, config()).await;
    let orders = topic("orders");
    let keyed = |k: &str| NewEvent::text("order 7").with_idempotency_key(k).unwrap();
    let first = a.publish(&orders, keyed("req-1")).await.unwrap().id();
    // The client lost the answer and retries, on another server.
    let retried = b.publish(&orders, keyed("req-1")).await.unwrap().id();
    assert_eq!(retried, first);
    let next = b.publish(&orders, keyed("req-2")).await.unwrap().id();
    assert_eq!(next.seq(), first.seq() + 1, "one entry per key");
    let batch = a.read(&orders, StartFrom::Oldest, 10).await.unwrap();
    assert_eq!(batch.events.len(), 2, "{batch:?}");
}

/// With `wait_replicas`, a publish is acknowledged only once a replica holds it: refused while
/// the master has none (with a message that says what to do), stored once when retried with its
/// idempotency key after a replica joined, and on the replica as soon as it is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_publish_is_held_by_a_replica() {
    // Full syncs start at once instead of after Redis's default 5 s.
    let Some(master) = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    let acked = config().wait_replicas(1, Duration::from_millis(300));
    let (hub, backend) = hub(&master, acked).await;
    let orders = topic("orders");
    let keyed = |text: &str| {
        NewEvent::text(text.to_owned())
            .with_idempotency_key(text)
            .unwrap()
    };
    let refused = hub.publish(&orders, keyed("o1")).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("0 of 1 replicas hold it after 300ms; it may still be stored: retry with its idempotency key"),
        "{refused}"
    );
    let health = backend.health();
    assert!(
        !health.publishing && health.publish_errors == 1,
        "{health:?}"
    );

    let port = master.port.to_string();
    let mut replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never synced"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // After a full sync, Redis starts the replica's stream at its first acknowledgement (up to a
    // second later): until then publishes may be refused, and are retried as the message says.
    let retry = |text: &'static str| {
        let (hub, orders) = (&hub, &orders);
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                match hub.publish(orders, keyed(text)).await {
                    Ok(event) => return event,
                    Err(e) => assert!(tokio::time::Instant::now() < deadline, "{text}: {e}"),
                }
            }
        }
    };
    let retried = retry("o1").await;
    let second = retry("o2").await;
    assert_eq!(second.id().seq(), retried.id().seq() + 1, "o1 stored once");
    let key = backend.key(&orders);
    let on_replica = replica.cli(&["XRANGE", &key, "-", "+"]);
    assert!(
        on_replica.contains("o1") && on_replica.contains("o2"),
        "{on_replica}"
    );
    assert_eq!(replica.cli(&["XLEN", &key]).trim(), "2");

    replica.kill();
    let refused = hub.publish(&orders, keyed("o3")).await.unwrap_err();
    assert!(refused.to_string().contains("0 of 1 replicas"), "{refused}");
    let batch = hub.read(&orders, StartFrom::Oldest, 10).await.unwrap();
    assert_eq!(payloads_of(&batch.events), ["o1", "o2", "o3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_topics_share_a_few_reader_connections() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, backend) = hub(&redis, config().readers(4)).await;
    let (b, _) = hub(&redis, config().readers(4)).await;
    let mut subs = Vec::new();
    for i in 0..300 {
        subs.push(
            a.subscribe(&topic(&format!("room{i}")), StartFrom::Newest)
                .await
                .unwrap(),
        );
    }
    for i in 0..300 {
        b.publish(
            &topic(&format!("room{i}")),
            NewEvent::text(format!("hello {i}")),
        )
        .await
        .unwrap();
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(payloads(&take(sub, 1).await), [format!("hello {i}")]);
    }
    let health = backend.health();
    assert!(
        health.readers <= 4 && health.readers_connected <= 4,
        "{health:?}"
    );
    // Per reader: the 300 topics spread over the four, each connected.
    assert_eq!(health.shards.len(), 4);
    assert_eq!(
        health.shards.iter().map(|s| s.topics).sum::<usize>(),
        300,
        "{health:?}"
    );
    assert!(
        health.shards.iter().all(|s| s.connected && s.topics > 0),
        "{health:?}"
    );
    // Both processes: at most 4 readers and 1 command connection each, and this `redis-cli`.
    let clients = redis.cli(&["CLIENT", "LIST"]).lines().count();
    assert!(
        clients <= 2 * (4 + 1) + 1,
        "{clients} connections for 300 topics"
    );
}
