//! push-redis against a real `redis-server` started by the test on a free loopback port.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use push_core::{
    Cursor, Delivery, Hub, HubConfig, NewEvent, Outcome, StartFrom, Subscription, Topic,
};
use push_redis::{RedisConfig, RedisHub};
use push_tests::{boxed, get, http1, read_until, RedisServer, TestServer};

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

/// The SSE comment written instead of a heartbeat while the backend is away.
const AWAY: &str =
    ": backend unavailable; events resume from this stream's cursor when it is back\n\n";

/// push-http's `Publisher` at `/topics/{topic}`, and push-sse's `Sse` with a `keep_alive`
/// period at `/sse/{topic}` and `/sse-topics?topic=…` (several topics), over `hub`.
async fn http_server(hub: &Hub, keep_alive: Duration) -> TestServer {
    let publisher = push_http::Publisher::new(hub.clone());
    let config = push_sse::SseConfig::default().keep_alive(Some(keep_alive));
    let sse = push_sse::Sse::with_config(hub.clone(), config);
    TestServer::start(move |req| {
        let (publisher, sse) = (publisher.clone(), sse.clone());
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if path == "/sse-topics" {
                let topics = push_http::topics::query_topics(req.uri(), "topic", 8).unwrap();
                return sse.respond_topics(&topics, req).await.map(boxed);
            }
            if let Some(name) = path.strip_prefix("/sse/") {
                return sse.respond(&topic(name), req).await.map(boxed);
            }
            let name = path.trim_start_matches("/topics/");
            publisher.respond(&topic(name), req).await.map(boxed)
        })
    })
    .await
}

/// `POST /topics/{name}` with `body` (and an `Idempotency-Key` when given): the status, the
/// headers and the body of the answer, which must come within 20 s.
async fn post(
    server: &TestServer,
    name: &str,
    body: &str,
    key: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::post(format!("/topics/{name}"))
        .header("host", server.addr.to_string())
        .header("content-type", "text/plain");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(20), http1(server.addr, req))
        .await
        .expect("an answer within 20 s");
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// Waits up to `bound` for `condition`, checking every 20 ms.
async fn wait_for(bound: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + bound;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {bound:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis paused (SIGSTOP): a publish was written to it and never answered, so whether it is
/// stored is unknown. The publish endpoint says so with `202` and the advice to repeat the
/// request with its key, not with a failure status. Once Redis resumes it runs what it
/// received, so the event arrives, once, and the retry with the key answers that event's
/// cursor and stores nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_redis_does_not_answer_is_accepted_as_unknown_and_stored_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut config = config();
    config.response_timeout = Duration::from_millis(500);
    let (hub, backend) = hub(&redis, config).await;
    let server = http_server(&hub, Duration::from_secs(15)).await;
    let orders = topic("orders");
    let mut sub = hub.subscribe(&orders, StartFrom::Newest).await.unwrap();
    // A server that has published before: Redis knows the publish script. (Paused before its
    // first publish, Redis would answer the paused one `NOSCRIPT` on resuming and store
    // nothing: the outcome was just as unknown, and the retry with the key stores it once.)
    let (status, _, body) = post(&server, "orders", "o0", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(payloads(&take(&mut sub, 1).await), ["o0"]);
    assert!(hub.is_available());

    redis.stop();
    let (status, headers, body) = post(&server, "orders", "o1", Some("order-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("retry-after").is_none());
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["outcome"], "unknown", "{body}");
    assert!(
        answer.get("id").is_none(),
        "no cursor for an unknown outcome: {body}"
    );
    let retry = answer["retry"].as_str().unwrap();
    assert!(retry.contains("same Idempotency-Key"), "{body}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("redis publish failed"), "{body}");
    assert!(!hub.is_available(), "{:?}", backend.health());
    assert!(!backend.health().available);

    redis.cont();
    // Redis runs the publish it received while paused: the event arrives.
    let got = take(&mut sub, 1).await;
    assert_eq!(payloads(&got), ["o1"]);
    let Delivery::Event(stored) = &got[0] else {
        unreachable!()
    };
    // The client repeats the request with its key: the stored event's cursor, nothing stored.
    let (status, _, body) = post(&server, "orders", "o1", Some("order-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, format!("{{\"id\":\"{}\"}}\n", stored.id()));
    let (status, _, body) = post(&server, "orders", "o2", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        payloads(&take(&mut sub, 1).await),
        ["o2"],
        "o1 was stored once"
    );
    assert_eq!(redis.cli(&["XLEN", &backend.key(&orders)]).trim(), "3");
    wait_for(Duration::from_secs(10), "redis answers again", || {
        hub.is_available()
    })
    .await;
}

/// Redis down (killed: connections refused): nothing can have been sent, so nothing is
/// stored, and the publish endpoint answers `503` with `Retry-After`. After the restart the
/// event is not there; the client's retry with its key stores it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_while_redis_is_down_fails_and_stores_nothing() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (hub, _) = hub(&redis, config()).await;
    let server = http_server(&hub, Duration::from_secs(15)).await;
    let jobs = topic("jobs");
    let (status, _, body) = post(&server, "jobs", "before", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    redis.kill();
    // A command sent at the moment of the kill may have been written to the connection Redis
    // was closing: its outcome is honestly unknown. Once the hub has seen the connection go,
    // nothing can be sent until Redis is back.
    let probe = hub.head(&topic("probe")).await;
    assert!(probe.is_err(), "{probe:?}");
    assert!(!hub.is_available());
    let (status, headers, body) = post(&server, "jobs", "lost", Some("job-1")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert!(
        body.starts_with("backend unavailable: redis publish failed"),
        "{body}"
    );

    redis.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let batch = loop {
        match hub.read(&jobs, StartFrom::Oldest, 10).await {
            Ok(batch) => break batch,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        payloads_of(&batch.events),
        ["before"],
        "nothing more stored"
    );
    let (status, _, first) = post(&server, "jobs", "lost", Some("job-1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, _, again) = post(&server, "jobs", "lost", Some("job-1")).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    let batch = hub.read(&jobs, StartFrom::Oldest, 10).await.unwrap();
    assert_eq!(payloads_of(&batch.events), ["before", "lost"]);
    assert!(hub.is_available());
}

/// An SSE stream on a Redis-backed hub while Redis is paused: its heartbeats become a comment
/// that says the backend is away, the stream stays open, and once Redis resumes the stream goes
/// on from its cursor: the event published during the pause (stored when Redis resumed) and
/// the next, each once, in order, then plain heartbeats again. The same for a stream of
/// several topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_stream_says_when_redis_is_away_and_goes_on_from_its_cursor() {
    const BOUND: Duration = Duration::from_secs(20);
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut config = config();
    config.response_timeout = Duration::from_millis(500);
    let (hub, _) = hub(&redis, config).await;
    let server = http_server(&hub, Duration::from_secs(1)).await;
    let feed = topic("feed");
    let mut bodies = Vec::new();
    for path in ["/sse/feed", "/sse-topics?topic=feed&topic=other"] {
        let res = http1(server.addr, get(server.addr, path, &[])).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let mut body = res.into_body();
        let text = read_until(&mut body, BOUND, |t| t.contains(":ok\n\n")).await;
        assert!(text.contains(":ok\n\n"), "{path}: {text:?}");
        bodies.push((path, body, String::new()));
    }
    let e1 = hub
        .publish(&feed, NewEvent::text("ev-one"))
        .await
        .unwrap()
        .id();
    for (path, body, text) in &mut bodies {
        *text += &read_until(body, BOUND, |t| t.contains("ev-one")).await;
        assert!(
            text.contains("ev-one") && !text.contains(AWAY),
            "{path}: {text:?}"
        );
    }

    redis.stop();
    // Nothing is published: the streams' reader finds Redis silent (its read times out), and
    // the next heartbeat says so.
    for (path, body, text) in &mut bodies {
        *text += &read_until(body, BOUND, |t| t.contains(AWAY)).await;
        assert!(text.contains(AWAY), "{path}: {text:?}");
    }
    let unknown = hub
        .publish(&feed, NewEvent::text("ev-two"))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, push_core::Error::OutcomeUnknown(_)),
        "{unknown}"
    );

    redis.cont();
    let e3 = hub
        .publish(&feed, NewEvent::text("ev-three"))
        .await
        .unwrap()
        .id();
    assert_eq!(e3, Cursor::new(e1.epoch(), e1.seq() + 2), "e2 was stored");
    for (path, body, text) in &mut bodies {
        *text += &read_until(body, BOUND, |t| t.contains("ev-three")).await;
        let after = text
            .split_once("ev-one")
            .map(|(_, after)| after)
            .unwrap_or("");
        let (e2_at, e3_at) = (after.find("ev-two"), after.find("ev-three"));
        assert!(
            e2_at.is_some() && e2_at < e3_at,
            "{path}: ev-two then ev-three on the same stream: {text:?}"
        );
        assert_eq!(after.matches("ev-two").count(), 1, "{path}: {text:?}");
        assert_eq!(after.matches("ev-three").count(), 1, "{path}: {text:?}");
        if !path.contains('?') {
            let e2 = Cursor::new(e1.epoch(), e1.seq() + 1);
            assert!(
                after.contains(&format!("id: {e2}\ndata: ev-two\n\n")),
                "{text:?}"
            );
            assert!(
                after.contains(&format!("id: {e3}\ndata: ev-three\n\n")),
                "{text:?}"
            );
        }
        // Redis answers again: plain heartbeats.
        let rest = read_until(body, BOUND, |t| t.contains(":\n\n")).await;
        assert!(
            rest.contains(":\n\n") && !rest.contains(AWAY),
            "{path}: {rest:?}"
        );
    }
}

/// Idempotency keys are bounded per topic by count (`HubConfig::max_idempotency_keys`), in
/// Redis as in memory: a flood of keyed publishes keeps the newest keys, forgets the oldest,
/// and the keys go with the topic when it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_in_redis_are_bounded_per_topic_and_go_with_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let hub_config = HubConfig::default().max_idempotency_keys(4);
    let (a, backend) = hub(&redis, config().hub(hub_config)).await;
    let flood = topic("flood");
    let keyed = |k: u32| {
        NewEvent::text(format!("e{k}"))
            .with_idempotency_key(&format!("k{k}"))
            .unwrap()
    };
    let mut ids = Vec::new();
    for k in 1..=50u32 {
        ids.push(a.publish(&flood, keyed(k)).await.unwrap().id());
    }
    let key = backend.key(&flood);
    let (hash, times) = (format!("{key}#idem"), format!("{key}#idem-at"));
    assert_eq!(redis.cli(&["HLEN", &hash]).trim(), "4");
    assert_eq!(redis.cli(&["ZCARD", &times]).trim(), "4");
    let ttl: i64 = redis.cli(&["PTTL", &hash]).trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 300_000, "expires with the window: {ttl}");
    // The newest four are remembered; an older key is forgotten, so its retry stores again.
    assert_eq!(a.publish(&flood, keyed(50)).await.unwrap().id(), ids[49]);
    assert_eq!(a.publish(&flood, keyed(47)).await.unwrap().id(), ids[46]);
    let again = a.publish(&flood, keyed(1)).await.unwrap().id();
    assert_eq!(again.seq(), ids[49].seq() + 1, "k1 was forgotten");
    assert_eq!(redis.cli(&["HLEN", &hash]).trim(), "4");

    assert!(a.delete(&flood).await.unwrap());
    assert_eq!(redis.cli(&["EXISTS", &hash, &times]).trim(), "0");
    let fresh = a.publish(&flood, keyed(50)).await.unwrap().id();
    assert_ne!(
        fresh.epoch(),
        ids[0].epoch(),
        "a new history, with no key remembered"
    );
}

/// The next message of a WebSocket client, within 20 s.
async fn ws_next(client: &mut push_ws::client::Client) -> push_ws::client::Received {
    tokio::time::timeout(Duration::from_secs(20), client.next())
        .await
        .expect("an answer in time")
        .expect("a message")
}

/// The same over a WebSocket: a publish Redis does not answer is told as an unknown outcome
/// (not a plain error), and the client's retry with the key it was given stores it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_publish_redis_does_not_answer_is_unknown_and_its_retry_stores_it_once() {
    use push_ws::client::{Client, Received};
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut config = config();
    config.response_timeout = Duration::from_millis(500);
    let (hub, backend) = hub(&redis, config).await;
    let auth = push_http::Authorizer::new(|_| async {
        Ok(push_http::Grant::new(
            push_http::Allow::All,
            push_http::Allow::All,
        ))
    });
    let ws = push_ws::Ws::new(hub.clone()).authorize(auth);
    let server = TestServer::start(move |req| {
        let ws = ws.clone();
        Box::pin(async move { ws.respond(&topic("feed"), req).await.map(boxed) })
    })
    .await;
    let mut client = Client::connect(&format!("ws://{}/ws/feed", server.addr))
        .await
        .unwrap();
    assert!(matches!(
        ws_next(&mut client).await,
        Received::Outcome { .. }
    ));
    // Redis learns the publish script first (see the HTTP test above).
    client.publish("orders", "o0").await.unwrap();
    assert!(matches!(
        ws_next(&mut client).await,
        Received::Published { .. }
    ));

    redis.stop();
    let key = client.publish("orders", "o1").await.unwrap();
    let answer = ws_next(&mut client).await;
    let Received::PublishUnknown { topic: name, error } = &answer else {
        panic!("expected an unknown outcome, got {answer:?}");
    };
    assert_eq!(name, "orders");
    assert!(error.contains("same idempotency key"), "{error}");
    redis.cont();
    let orders = topic("orders");
    wait_for(
        Duration::from_secs(20),
        "the paused publish is stored",
        || redis.cli(&["XLEN", &backend.key(&orders)]).trim() == "2",
    )
    .await;
    client.publish_with_key("orders", "o1", &key).await.unwrap();
    let again = ws_next(&mut client).await;
    assert!(matches!(again, Received::Published { .. }), "{again:?}");
    assert_eq!(
        redis.cli(&["XLEN", &backend.key(&orders)]).trim(),
        "2",
        "the retry stored nothing"
    );
}

/// A retry of a keyed publish stored before its topic completed answers the stored cursor, on
/// Redis as in memory: a 409 would tell the client that nothing was stored.
#[tokio::test]
async fn a_keyed_retry_after_the_topic_completed_answers_its_cursor() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (hub, backend) = hub(&redis, config()).await;
    let done = topic("done");
    let keyed = |k: &str| NewEvent::text("last").with_idempotency_key(k).unwrap();
    let stored = hub.publish(&done, keyed("k1")).await.unwrap();
    hub.complete(&done).await.unwrap();
    let retried = hub.publish(&done, keyed("k1")).await.unwrap();
    assert_eq!(retried.id(), stored.id());
    assert!(matches!(
        hub.publish(&done, keyed("k2")).await,
        Err(push_core::Error::Complete)
    ));
    // The event and the end: nothing more was stored.
    assert_eq!(redis.cli(&["XLEN", &backend.key(&done)]).trim(), "2");
}
