//! push-redis on a real Redis Cluster: three masters with a replica each, started by the test
//! from `redis-server` processes on loopback ports and joined by `redis-cli --cluster create`.

use std::time::Duration;

use push_core::{Delivery, Hub, NewEvent, StartFrom, Subscription, Topic};
use push_redis::{RedisConfig, RedisHub};
use push_tests::RedisCluster;

const GROUPS: usize = 8;

fn config() -> RedisConfig {
    RedisConfig::default()
        .readers(GROUPS)
        .block(Duration::from_millis(500))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

async fn hub(cluster: &RedisCluster) -> (Hub, RedisHub) {
    let seeds = cluster.seeds();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let backend = RedisHub::connect_cluster(&seeds, config())
        .await
        .expect("connect to the test's cluster");
    (Hub::new(backend.clone()), backend)
}

/// The payloads of the next `n` events, panicking after 20 s.
async fn take(sub: &mut Subscription, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), sub.recv()).await {
            Ok(Some(Delivery::Event(e))) => out.push(String::from_utf8(e.data().to_vec()).unwrap()),
            Ok(Some(other)) => panic!("unexpected {other:?} after {out:?}"),
            Ok(None) => panic!("subscription ended after {out:?}"),
            Err(_) => panic!("only {out:?} of {n} within 20 s"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_spread_over_the_masters_and_resume_on_another_server() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let (a, _) = hub(&cluster).await;
    let (b, backend_b) = hub(&cluster).await;
    let topics: Vec<Topic> = (0..200)
        .map(|i| Topic::new(&format!("room-{i}")).unwrap())
        .collect();
    let mut subs = Vec::new();
    for topic in &topics {
        subs.push(b.subscribe(topic, StartFrom::Newest).await.unwrap());
    }
    let mut firsts = Vec::new();
    for topic in &topics {
        let mut first = None;
        for n in 1..=3 {
            let event = a
                .publish(topic, NewEvent::text(format!("{} {n}", topic.as_str())))
                .await
                .unwrap();
            first.get_or_insert(event.id());
        }
        firsts.push(first.unwrap());
    }
    // Every subscriber on the other server gets its topic's three events, in order.
    for (topic, sub) in topics.iter().zip(&mut subs) {
        let want: Vec<String> = (1..=3).map(|n| format!("{} {n}", topic.as_str())).collect();
        assert_eq!(take(sub, 3).await, want);
    }
    // A cursor handed out by one server resumes on the other.
    for (topic, first) in topics.iter().zip(&firsts).take(20) {
        let mut sub = a.subscribe(topic, StartFrom::After(*first)).await.unwrap();
        let want: Vec<String> = (2..=3).map(|n| format!("{} {n}", topic.as_str())).collect();
        assert_eq!(take(&mut sub, 2).await, want);
    }
    // The streams are spread over every master, and the keys of a topic carry its group's tag.
    for master in cluster.masters() {
        let keys: u64 = cluster.nodes[master]
            .cli(&["DBSIZE"])
            .trim()
            .parse()
            .unwrap();
        assert!(keys > 0, "master {master} holds no stream");
    }
    assert!(
        backend_b.key(&topics[0]).contains('{'),
        "{}",
        backend_b.key(&topics[0])
    );
    // Connections do not grow with the 200 topics: per server, one per reader group plus at
    // most one per cluster node (the cluster client's, to masters and replicas alike, for
    // commands and topology; how many it holds at a moment varies, 18 to 23 in all here).
    let bound = 2 * (GROUPS + cluster.nodes.len());
    let clients = cluster.client_count();
    assert!(
        clients <= bound,
        "{clients} client connections, over {bound}"
    );
    let health = backend_b.health();
    assert_eq!(health.readers_connected, GROUPS, "{health:?}");
}

/// Publishes `text` to `topic` with it as idempotency key, retrying until a replica holds it
/// (the hub waits for one) or 60 s pass.
async fn publish_acked(hub: &Hub, topic: &Topic, text: &str) -> push_core::Cursor {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event = NewEvent::text(text.to_owned())
            .with_idempotency_key(&format!("{}-{text}", topic.as_str()))
            .unwrap();
        match hub.publish(topic, event).await {
            Ok(event) => return event.id(),
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} {text} never acknowledged: {e}",
                    topic.as_str()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads `sub` until it has seen every one of `last`, returning every payload and anything
/// else it met (a gap, its end, or a silence of 60 s).
async fn read_until(mut sub: Subscription, last: &[String]) -> Vec<String> {
    let mut got: Vec<String> = Vec::new();
    loop {
        if last.iter().all(|l| got.contains(l)) {
            return got;
        }
        match tokio::time::timeout(Duration::from_secs(60), sub.recv()).await {
            Ok(Some(Delivery::Event(e))) => got.push(String::from_utf8(e.data().to_vec()).unwrap()),
            Ok(Some(other)) => got.push(format!("{other:?}")),
            Ok(None) => {
                got.push("ended".to_owned());
                return got;
            }
            Err(_) => {
                got.push("silence".to_owned());
                return got;
            }
        }
    }
}

/// Whether every running reader of `hubs` reads a replica.
fn readers_on_replicas(cluster: &RedisCluster, hubs: &[&RedisHub]) -> bool {
    hubs.iter().all(|hub| {
        hub.health()
            .shards
            .iter()
            .filter(|reader| reader.running)
            .all(|reader| {
                let port = reader.node.as_deref().and_then(|n| n.rsplit(':').next());
                cluster.nodes.iter().any(|node| {
                    Some(node.port.to_string().as_str()) == port
                        && node.cli(&["ROLE"]).lines().next() == Some("slave")
                })
            })
    })
}

/// Two servers publish to the same topics at once while masters fail one after another; every
/// subscriber on either server must end with exactly what the streams hold, every
/// acknowledged publish in it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_master_failovers_end_in_the_exact_sequence_for_every_subscriber() {
    let Some(mut cluster) = RedisCluster::start(3) else {
        return;
    };
    // A publish is acknowledged once a replica holds it.
    let acked = || config().wait_replicas(1, Duration::from_millis(500));
    let seeds = cluster.seeds();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let backend_a = RedisHub::connect_cluster(&seeds, acked()).await.unwrap();
    let backend_b = RedisHub::connect_cluster(&seeds, acked()).await.unwrap();
    let (a, b) = (Hub::new(backend_a.clone()), Hub::new(backend_b.clone()));
    let topics: Vec<Topic> = (0..12)
        .map(|i| Topic::new(&format!("f-{i}")).unwrap())
        .collect();
    let mut readers = Vec::new();
    let mut starts = Vec::new();
    for topic in &topics {
        let start = publish_acked(&a, topic, "start").await;
        starts.push(start);
        for hub in [&a, &b] {
            readers.push((
                topic.clone(),
                hub.subscribe(topic, StartFrom::After(start)).await.unwrap(),
            ));
        }
    }
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publisher = |hub: Hub, name: &'static str| {
        let (topics, running) = (topics.clone(), running.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) || n < 20 {
                n += 1;
                for topic in &topics {
                    publish_acked(&hub, topic, &format!("{name}{n}")).await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            n
        })
    };
    let publishers = [publisher(a.clone(), "a"), publisher(b.clone(), "b")];
    for run in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let masters = cluster.masters();
        let victim = masters[run % masters.len()];
        cluster.nodes[victim].kill();
        // A replica takes over, then the old master comes back as its replica, so that
        // publishes find a replica to wait for again.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while cluster.masters().len() < 3 {
            if std::time::Instant::now() >= deadline {
                let alive = (victim + 1) % cluster.nodes.len();
                let nodes = cluster.nodes[alive].cli(&["CLUSTER", "NODES"]);
                let logs: Vec<String> = cluster
                    .nodes
                    .iter()
                    .map(|n| format!("--- {}\n{}", n.port, n.log_tail(15)))
                    .collect();
                panic!(
                    "run {run}: no failover of node {victim}: {nodes}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster.wait_ok();
        cluster.nodes[victim].restart();
        while !cluster.nodes[victim]
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(std::time::Instant::now() < deadline, "run {run}: no rejoin");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Readers left on a promoted master move to its new replica (checked once per read
        // block); the next failure is after that, as failures a moment apart are not covered.
        while !readers_on_replicas(&cluster, &[&backend_a, &backend_b]) {
            assert!(
                std::time::Instant::now() < deadline,
                "run {run}: readers stay on masters"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("failover {run}: node {victim} replaced and back as a replica");
    }
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let [pa, pb] = publishers;
    let (last_a, last_b) = (pa.await.unwrap(), pb.await.unwrap());
    let last = [format!("a{last_a}"), format!("b{last_b}")];
    // What the streams hold, read by a third server from the start.
    let c = Hub::new(RedisHub::connect_cluster(&seeds, config()).await.unwrap());
    for (topic, start) in topics.iter().zip(&starts) {
        let truth = read_until(
            c.subscribe(topic, StartFrom::After(*start)).await.unwrap(),
            &last,
        )
        .await;
        let mut want: Vec<String> = (1..=last_a).map(|n| format!("a{n}")).collect();
        want.extend((1..=last_b).map(|n| format!("b{n}")));
        let mut sorted = truth.clone();
        sorted.sort();
        want.sort();
        assert_eq!(
            sorted,
            want,
            "{}: every acknowledged publish once",
            topic.as_str()
        );
        for (t, sub) in readers.iter_mut().filter(|(t, _)| t == topic) {
            let _ = t;
            let sub = std::mem::replace(sub, c.subscribe(topic, StartFrom::Newest).await.unwrap());
            let got = read_until(sub, &last).await;
            assert_eq!(
                got,
                truth,
                "{}: a subscriber's exact sequence",
                topic.as_str()
            );
        }
    }
    eprintln!(
        "{last_a} + {last_b} events on each of {} topics, through ten failovers",
        topics.len()
    );
}

/// Slots move to another master (`redis-cli --cluster reshard`, which migrates the streams)
/// while subscribers follow topics in them: publishing and delivery go on, every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_keep_flowing_while_their_slots_move_to_another_master() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let (a, _) = hub(&cluster).await;
    let (b, backend_b) = hub(&cluster).await;
    let topics: Vec<Topic> = (0..200)
        .map(|i| Topic::new(&format!("moving-{i}")).unwrap())
        .collect();
    let mut subs = Vec::new();
    for topic in &topics {
        let start = a.publish(topic, NewEvent::text("0")).await.unwrap().id();
        subs.push(b.subscribe(topic, StartFrom::After(start)).await.unwrap());
    }
    let publish = |from: u32, to: u32| {
        let (a, topics) = (a.clone(), topics.clone());
        async move {
            // A publish meeting the move may fail; its idempotency key makes the retry store
            // it once.
            for n in from..=to {
                for topic in &topics {
                    publish_acked(&a, topic, &n.to_string()).await;
                }
            }
        }
    };
    publish(1, 5).await;
    // Every slot of the first master (a third of them, so a third of the groups) goes to
    // another.
    let masters = cluster.masters();
    let id = |i: usize| cluster.nodes[i].cli(&["CLUSTER", "MYID"]).trim().to_owned();
    let (from, to) = (id(masters[0]), id(masters[1]));
    let mover = std::process::Command::new("redis-cli")
        .args([
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", cluster.nodes[masters[0]].port),
        ])
        .args(["--cluster-from", &from, "--cluster-to", &to])
        .args(["--cluster-slots", "5461", "--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli --cluster reshard");
    // Publishing goes on during the move and after it.
    publish(6, 10).await;
    let status = tokio::task::spawn_blocking(move || {
        let mut mover = mover;
        mover.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "the reshard failed");
    cluster.wait_ok();
    publish(11, 15).await;
    let want: Vec<String> = (1..=15).map(|n| n.to_string()).collect();
    for (topic, sub) in topics.iter().zip(&mut subs) {
        assert_eq!(take(sub, 15).await, want, "{}", topic.as_str());
    }
    let health = backend_b.health();
    assert!(
        health.shards.iter().any(|s| s.reconnects > 0),
        "a reader followed its slot: {health:?}"
    );
}

/// The same cursors, gaps and resets as on one server: a trimmed stream resumes with an exact
/// gap on another server, and a deleted one gives a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_and_resets_are_those_of_one_server() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let (a, backend_a) = hub(&cluster).await;
    let t = Topic::new("trimmed").unwrap();
    let mut ids = Vec::new();
    for i in 1..=30u32 {
        ids.push(
            a.publish(&t, NewEvent::text(i.to_string()))
                .await
                .unwrap()
                .id(),
        );
    }
    // Trim exactly to the newest 10 (21..=30), on the master of the key (`-c` follows MOVED).
    let trimmed = std::process::Command::new("redis-cli")
        .args(["-c", "-p", &cluster.nodes[0].port.to_string()])
        .args(["XTRIM", &backend_a.key(&t), "MAXLEN", "10"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&trimmed.stdout).trim(), "20");
    // Served by the replica, which has the trim once replication brought it: until then the
    // resume is still whole.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // (A fresh server each time: one that read the history keeps it in its replica log.)
    let (_b, mut sub) = loop {
        let (b, _) = hub(&cluster).await;
        let sub = b.subscribe(&t, StartFrom::After(ids[4])).await.unwrap();
        if sub.outcome() != push_core::Outcome::Resumed {
            break (b, sub);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trim never reached the replica"
        );
        drop(sub);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(sub.outcome(), push_core::Outcome::Gap { missed: 15 });
    let want: Vec<String> = (21..=30).map(|n| n.to_string()).collect();
    assert_eq!(take(&mut sub, 10).await, want);
    // Deleted, then written again: a new epoch, and the old cursor is a reset.
    assert!(a.delete(&t).await.unwrap());
    let fresh = a.publish(&t, NewEvent::text("new")).await.unwrap();
    assert!(fresh.id().epoch() > ids[0].epoch(), "epochs grow");
    let (c, _) = hub(&cluster).await;
    let mut sub = c.subscribe(&t, StartFrom::After(ids[29])).await.unwrap();
    assert_eq!(sub.outcome(), push_core::Outcome::Reset);
    assert_eq!(take(&mut sub, 1).await, ["new"]);
}
