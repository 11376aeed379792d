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
    // Reading connections do not grow with the topics: per server, one per group plus the
    // cluster client's one per master.
    let clients = cluster.client_count();
    assert!(clients <= 2 * (GROUPS + 3), "{clients} client connections");
    let health = backend_b.health();
    assert_eq!(health.readers_connected, GROUPS, "{health:?}");
}
