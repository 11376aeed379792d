//! push-redis against the in-memory hub: the same fan-out (N subscribers in this process, a
//! publisher at rate R) and the publish rate one process sustains, through a redis-server this
//! bench starts on a free loopback port.

use std::time::{Duration, Instant};

use bytes::Bytes;
use push_core::{Delivery, Hub, HubConfig, MemoryHub, NewEvent, Retention, StartFrom, Topic};
use push_redis::{RedisConfig, RedisHub};
use serde_json::json;

/// What one backend measured.
pub(crate) struct Figures {
    pub(crate) backend: &'static str,
    /// Fan-out at the fixed rate: events delivered over all subscribers, and expected.
    pub(crate) delivered: u64,
    pub(crate) expected: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// Fan-out flat out: deliveries per second with publishers as fast as they go.
    pub(crate) max_deliveries_per_sec: f64,
    /// Publishes per second from one publisher, awaiting each.
    pub(crate) publish_one: f64,
    /// Publishes per second from `CONCURRENT` publishers sharing the hub.
    pub(crate) publish_concurrent: f64,
}

const CONCURRENT: usize = 64;

pub(crate) async fn measure(
    subscribers: usize,
    rate: u64,
    seconds: u64,
) -> Result<Vec<Figures>, String> {
    let redis = push_tests::RedisServer::start()
        .ok_or("redis-server is not installed (Debian package redis-server)")?;
    let mut out = Vec::new();
    let flat = (rate * seconds * 40).min(20_000);
    for backend in ["in-memory", "redis"] {
        // Retention holds every event of the flat-out run, so no subscriber skips any.
        let config = HubConfig::default()
            .retention(Retention::default().max_events(usize::try_from(flat).unwrap_or(1)));
        let hub = || async {
            match backend {
                "redis" => RedisHub::connect(&redis.url(), RedisConfig::default().hub(config))
                    .await
                    .map(Hub::new)
                    .map_err(|e| e.to_string()),
                _ => Ok(Hub::new(MemoryHub::new(config))),
            }
        };
        let (delivered, expected, p50_us, p99_us) =
            fan_out(&hub().await?, subscribers, rate, seconds).await?;
        let max_deliveries_per_sec = flat_out(&hub().await?, subscribers, flat).await?;
        let publish_one = publish_rate(&hub().await?, 1, seconds).await?;
        let publish_concurrent = publish_rate(&hub().await?, CONCURRENT, seconds).await?;
        out.push(Figures {
            backend,
            delivered,
            expected,
            p50_us,
            p99_us,
            max_deliveries_per_sec,
            publish_one,
            publish_concurrent,
        });
    }
    Ok(out)
}

/// Payload: the publish time in nanoseconds since `base`, so receivers measure latency.
fn stamp(base: Instant) -> NewEvent {
    let nanos = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
    NewEvent::new(Bytes::copy_from_slice(&nanos.to_le_bytes()))
}

async fn subscribe_all(
    hub: &Hub,
    topic: &Topic,
    n: usize,
) -> Result<Vec<push_core::Subscription>, String> {
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        subs.push(
            hub.subscribe(topic, StartFrom::Newest)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(subs)
}

async fn fan_out(
    hub: &Hub,
    subscribers: usize,
    rate: u64,
    seconds: u64,
) -> Result<(u64, u64, f64, f64), String> {
    let topic = Topic::new("bench-fanout").expect("valid");
    let events = rate * seconds;
    let base = Instant::now();
    let mut readers = Vec::new();
    for sub in subscribe_all(hub, &topic, subscribers).await? {
        readers.push(tokio::spawn(receive(sub, events, seconds, base)));
    }
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    for _ in 0..events {
        tick.tick().await;
        hub.publish(&topic, stamp(base))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut delivered = 0;
    let mut samples = Vec::new();
    for r in readers {
        let (got, s) = r.await.map_err(|e| e.to_string())?;
        delivered += got;
        samples.extend(s);
    }
    let (p50, p99) = quantiles(&mut samples);
    Ok((delivered, events * subscribers as u64, p50, p99))
}

/// `events` published by four publishers as fast as they go, retention holding them all: the
/// time until every subscriber has received every event gives deliveries per second.
async fn flat_out(hub: &Hub, subscribers: usize, events: u64) -> Result<f64, String> {
    let topic = Topic::new("bench-flat").expect("valid");
    let mut readers = Vec::new();
    for mut sub in subscribe_all(hub, &topic, subscribers).await? {
        readers.push(tokio::spawn(async move {
            let mut got = 0u64;
            while got < events {
                match tokio::time::timeout(Duration::from_secs(30), sub.recv()).await {
                    Ok(Some(Delivery::Event(_))) => got += 1,
                    Ok(Some(Delivery::Gap { missed })) => {
                        return Err(format!("{missed} events missed: retention too small"))
                    }
                    Ok(Some(other)) => return Err(format!("unexpected {other:?}")),
                    Ok(None) | Err(_) => return Err(format!("stalled after {got} events")),
                }
            }
            Ok(got)
        }));
    }
    let start = Instant::now();
    let mut publishers = Vec::new();
    for _ in 0..4 {
        let hub = hub.clone();
        let topic = topic.clone();
        publishers.push(tokio::spawn(async move {
            for _ in 0..events / 4 {
                hub.publish(&topic, NewEvent::new("x"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        }));
    }
    for p in publishers {
        p.await.map_err(|e| e.to_string())??;
    }
    let mut delivered = 0;
    for r in readers {
        delivered += r.await.map_err(|e| e.to_string())??;
    }
    Ok(delivered as f64 / start.elapsed().as_secs_f64())
}

async fn publish_rate(hub: &Hub, publishers: usize, seconds: u64) -> Result<f64, String> {
    let topic = Topic::new("bench-publish").expect("valid");
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let hub = hub.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                hub.publish(&topic, NewEvent::new("0123456789abcdef"))
                    .await
                    .map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok::<_, String>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

pub(crate) fn markdown(rows: &[Figures], subscribers: usize, rate: u64, seconds: u64) -> String {
    let [memory, redis] = rows else {
        return String::new();
    };
    let ms = |us: f64| format!("{:.2} ms", us / 1e3);
    let num = super::report::fmt_num;
    let mut out = String::from(
        "## push-redis vs in-memory (one process, redis-server on loopback)\n\n\
         | workload | in-memory | Redis Streams | Redis / in-memory |\n|---|---:|---:|---:|\n",
    );
    out += &format!(
        "| fan-out, {subscribers} subscribers, {rate} events/s for {seconds} s: delivered | {} / {} | {} / {} | |\n",
        memory.delivered, memory.expected, redis.delivered, redis.expected
    );
    out += &format!(
        "| publish-to-receive p50 | {} | {} | {:.1}x |\n",
        ms(memory.p50_us),
        ms(redis.p50_us),
        redis.p50_us / memory.p50_us
    );
    out += &format!(
        "| publish-to-receive p99 | {} | {} | {:.1}x |\n",
        ms(memory.p99_us),
        ms(redis.p99_us),
        redis.p99_us / memory.p99_us
    );
    out += &format!(
        "| fan-out flat out, {subscribers} subscribers, {} events from 4 publishers: deliveries/s | {} | {} | {:.2}x |\n",
        (rate * seconds * 40).min(20_000),
        num(memory.max_deliveries_per_sec),
        num(redis.max_deliveries_per_sec),
        redis.max_deliveries_per_sec / memory.max_deliveries_per_sec
    );
    out += &format!(
        "| publishes/s, 1 publisher awaiting each | {} | {} | {:.3}x |\n",
        num(memory.publish_one),
        num(redis.publish_one),
        redis.publish_one / memory.publish_one
    );
    out += &format!(
        "| publishes/s, {CONCURRENT} concurrent publishers (pipelined) | {} | {} | {:.3}x |\n",
        num(memory.publish_concurrent),
        num(redis.publish_concurrent),
        redis.publish_concurrent / memory.publish_concurrent
    );
    out
}

pub(crate) fn json(rows: &[Figures]) -> serde_json::Value {
    json!(rows
        .iter()
        .map(|f| json!({
            "backend": f.backend,
            "delivered": f.delivered,
            "expected": f.expected,
            "p50_us": f.p50_us,
            "p99_us": f.p99_us,
            "max_deliveries_per_sec": f.max_deliveries_per_sec,
            "publish_one_per_sec": f.publish_one,
            "publish_concurrent_per_sec": f.publish_concurrent,
            "concurrent_publishers": CONCURRENT,
        }))
        .collect::<Vec<_>>())
}

/// Many topics on two servers: what one design of reading costs.
pub(crate) struct ManyTopics {
    /// On a 3-master, 3-replica cluster rather than one server.
    pub(crate) cluster: bool,
    /// Reader connections per process.
    pub(crate) readers: usize,
    pub(crate) topics: usize,
    pub(crate) delivered: u64,
    pub(crate) expected: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// Clients connected to Redis at the end (both servers, and this bench's `CLIENT LIST`).
    pub(crate) connections: usize,
    /// Redis CPU seconds (user + system) over the run.
    pub(crate) redis_cpu_s: f64,
    /// This process's resident memory growth over the run, in MiB (both servers are in it).
    pub(crate) rss_mib: f64,
}

/// `topics` topics, each with one subscriber on each of two servers (two `RedisHub`s in this
/// process), and one event per topic per second for `seconds`, published round the topics on
/// alternating servers; with `readers` reader connections per server. Run once with a few
/// shared readers and once with as many as topics (a reader per topic, the design they
/// replaced).
pub(crate) async fn many_topics(
    topics: usize,
    seconds: u64,
    readers: usize,
    cluster: bool,
) -> Result<ManyTopics, String> {
    let missing = "redis-server is not installed (Debian packages redis-server and redis-tools)";
    let redis = if cluster {
        Redis::Cluster(push_tests::RedisCluster::start(3).ok_or(missing)?)
    } else {
        Redis::Single(push_tests::RedisServer::start().ok_or(missing)?)
    };
    let config = RedisConfig::default()
        .readers(readers)
        .hub(HubConfig::default().max_topics(topics + 10));
    let connect = || async {
        let hub = match &redis {
            Redis::Single(server) => RedisHub::connect(&server.url(), config.clone()).await,
            Redis::Cluster(cluster) => {
                let seeds = cluster.seeds();
                let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
                RedisHub::connect_cluster(&seeds, config.clone()).await
            }
        };
        hub.map(Hub::new).map_err(|e| e.to_string())
    };
    let servers = [connect().await?, connect().await?];
    let rss_before = rss_kib();
    let cpu_before = redis.cpu();
    let names: Vec<Topic> = (0..topics)
        .map(|i| Topic::new(&format!("room{i}")).expect("valid"))
        .collect();
    let events = seconds;
    let base = Instant::now();
    let mut readers_tasks = Vec::new();
    for hub in &servers {
        for topic in &names {
            let sub = hub
                .subscribe(topic, StartFrom::Newest)
                .await
                .map_err(|e| e.to_string())?;
            readers_tasks.push(tokio::spawn(receive(sub, events, seconds, base)));
        }
    }
    publish_rounds(&servers, &names, events, base).await?;
    let (mut delivered, mut samples) = (0, Vec::new());
    for r in readers_tasks {
        let (got, s) = r.await.map_err(|e| e.to_string())?;
        delivered += got;
        samples.extend(s);
    }
    let (p50_us, p99_us) = quantiles(&mut samples);
    let connections = redis.connections();
    Ok(ManyTopics {
        cluster,
        readers,
        topics,
        delivered,
        expected: events * 2 * topics as u64,
        p50_us,
        p99_us,
        connections,
        redis_cpu_s: redis.cpu() - cpu_before,
        rss_mib: rss_kib().saturating_sub(rss_before) as f64 / 1024.0,
    })
}

/// One event per topic per second for `rounds` seconds, alternating servers: 32 publishers, each
/// pacing its share of the topics over the second (one awaited publish is a round trip, so a
/// single publisher could not keep up with thousands of topics).
async fn publish_rounds(
    servers: &[Hub; 2],
    names: &[Topic],
    rounds: u64,
    base: Instant,
) -> Result<(), String> {
    const PUBLISHERS: usize = 32;
    let chunk = names.len().div_ceil(PUBLISHERS).max(1);
    let mut tasks = Vec::new();
    for (p, share) in names.chunks(chunk).enumerate() {
        let (share, servers) = (share.to_vec(), servers.clone());
        tasks.push(tokio::spawn(async move {
            let gap = Duration::from_secs(1) / u32::try_from(share.len().max(1)).unwrap_or(1);
            let mut tick = tokio::time::interval(gap);
            for round in 0..rounds {
                for (i, topic) in share.iter().enumerate() {
                    tick.tick().await;
                    let via = &servers[(p + i + usize::try_from(round).unwrap_or(0)) % 2];
                    via.publish(topic, stamp(base))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Receives `events` stamped events (or stops `seconds` + 30 s from now): how many, and the
/// publish-to-receive latency of each in µs.
async fn receive(
    mut sub: push_core::Subscription,
    events: u64,
    seconds: u64,
    base: Instant,
) -> (u64, Vec<f64>) {
    let (mut got, mut samples) = (0u64, Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 30);
    while got < events {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(Delivery::Event(e))) => {
                got += 1;
                let sent = u64::from_le_bytes(e.data()[..8].try_into().expect("8 bytes"));
                let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                samples.push(now.saturating_sub(sent) as f64 / 1e3);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (got, samples)
}

/// The median and 99th percentile of `samples` (sorted here).
fn quantiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99))
}

/// One Redis server, or a cluster of them.
enum Redis {
    Single(push_tests::RedisServer),
    Cluster(push_tests::RedisCluster),
}

impl Redis {
    /// CPU seconds of every node so far.
    fn cpu(&self) -> f64 {
        match self {
            Self::Single(server) => redis_cpu(server),
            Self::Cluster(cluster) => cluster.nodes.iter().map(redis_cpu).sum(),
        }
    }

    /// Client connections over every node (replication links not counted).
    fn connections(&self) -> usize {
        match self {
            Self::Single(server) => server.cli(&["CLIENT", "LIST"]).lines().count(),
            Self::Cluster(cluster) => cluster.client_count(),
        }
    }
}

/// Redis's CPU seconds so far (`INFO cpu`: user + system).
fn redis_cpu(redis: &push_tests::RedisServer) -> f64 {
    redis
        .cli(&["INFO", "cpu"])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            matches!(k, "used_cpu_sys" | "used_cpu_user").then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    super::server::proc_kib(std::process::id(), "VmRSS:")
}

pub(crate) fn many_topics_markdown(rows: &[ManyTopics], seconds: u64) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "## push-redis: many topics on two servers, 2 subscribers each, 1 event per topic per second for {seconds} s\n\n\
         | topics | Redis | readers per server | delivered / expected | p50 | p99 | Redis connections | Redis CPU | RSS growth (both servers) |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let label = if r.readers >= r.topics {
            format!("{} (a reader per topic)", r.readers)
        } else if r.cluster {
            format!("{} (shared, one per hash-tag group)", r.readers)
        } else {
            format!("{} (shared)", r.readers)
        };
        let redis = if r.cluster {
            "cluster, 3 masters + 3 replicas"
        } else {
            "one server"
        };
        out += &format!(
            "| {} | {redis} | {label} | {} / {} | {:.2} ms | {:.2} ms | {} | {:.2} s | {:.1} MiB |\n",
            r.topics,
            r.delivered,
            r.expected,
            r.p50_us / 1e3,
            r.p99_us / 1e3,
            r.connections,
            r.redis_cpu_s,
            r.rss_mib
        );
    }
    out
}

pub(crate) fn many_topics_json(rows: &[ManyTopics]) -> serde_json::Value {
    json!(rows
        .iter()
        .map(|r| json!({
            "cluster": r.cluster,
            "readers": r.readers,
            "topics": r.topics,
            "delivered": r.delivered,
            "expected": r.expected,
            "p50_us": r.p50_us,
            "p99_us": r.p99_us,
            "redis_connections": r.connections,
            "redis_cpu_s": r.redis_cpu_s,
            "rss_mib": r.rss_mib,
        }))
        .collect::<Vec<_>>())
}
