//! push-core against `tokio::sync::broadcast` doing the same fan-out (same payload, same
//! runtime, same capacity): publish throughput with 0, 1, 100 and 10,000 subscribers, delivered
//! events per second, and wake-to-receive latency. Each figure is the median of several rounds.

use std::time::Instant;

use bytes::Bytes;
use push_core::{Delivery, HubConfig, MemoryHub, NewEvent, Retention, StartFrom, Topic};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::report::fmt_num;

/// Retained events / channel capacity, the same for both sides.
const CAPACITY: usize = 1024;
const PAYLOAD: &[u8] = &[b'x'; 64];

pub(crate) struct Row {
    workload: String,
    unit: &'static str,
    ours: f64,
    baseline: f64,
    /// Whether a larger figure is better (throughput) or a smaller one (latency).
    higher_is_better: bool,
    note: String,
}

pub(crate) struct Report {
    rows: Vec<Row>,
    rounds: usize,
}

impl Report {
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "## push-core vs tokio::sync::broadcast (median of {} rounds, 2 worker threads)\n\n\
             | workload | unit | push-core | broadcast | push-core advantage (>1 is better) | note |\n\
             |---|---|---:|---:|---:|---|\n",
            self.rounds
        );
        for r in &self.rows {
            let ratio = if r.higher_is_better {
                r.ours / r.baseline
            } else {
                r.baseline / r.ours
            };
            out += &format!(
                "| {} | {} | {} | {} | {:.2}x | {} |\n",
                r.workload,
                r.unit,
                fmt_num(r.ours),
                fmt_num(r.baseline),
                ratio,
                r.note
            );
        }
        out
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        json!({
            "suite": "push-core",
            "baseline": "tokio::sync::broadcast",
            "rounds": self.rounds,
            "rows": self.rows.iter().map(|r| json!({
                "workload": r.workload, "unit": r.unit, "push_core": r.ours,
                "broadcast": r.baseline, "higher_is_better": r.higher_is_better, "note": r.note,
            })).collect::<Vec<_>>(),
        })
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What one fan-out round measured.
struct FanOut {
    publish_per_sec: f64,
    delivered_per_sec: f64,
    missed: u64,
}

pub(crate) async fn core_bench(quick: bool) -> Report {
    let rounds = if quick { 3 } else { 7 };
    let scale = if quick { 5 } else { 1 };
    let mut rows = Vec::new();
    for (subscribers, events) in [
        (0usize, 1_000_000u64),
        (1, 200_000),
        (100, 20_000),
        (10_000, 200),
    ] {
        let events = events / scale;
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..rounds {
            // Alternate the order so neither side always runs on a warmer machine.
            ours.push(fanout_core(subscribers, events).await);
            theirs.push(fanout_broadcast(subscribers, events).await);
        }
        let missed = |v: &[FanOut]| v.iter().map(|f| f.missed).sum::<u64>();
        rows.push(Row {
            workload: format!("publish, {subscribers} subscribers"),
            unit: "publishes/s",
            ours: median(ours.iter().map(|f| f.publish_per_sec).collect()),
            baseline: median(theirs.iter().map(|f| f.publish_per_sec).collect()),
            higher_is_better: true,
            note: format!("{events} events"),
        });
        if subscribers > 0 {
            rows.push(Row {
                workload: format!("fan-out, {subscribers} subscribers"),
                unit: "deliveries/s",
                ours: median(ours.iter().map(|f| f.delivered_per_sec).collect()),
                baseline: median(theirs.iter().map(|f| f.delivered_per_sec).collect()),
                higher_is_better: true,
                note: format!(
                    "missed over all rounds: push-core {} (Gap), broadcast {} (Lagged)",
                    missed(&ours),
                    missed(&theirs)
                ),
            });
        }
    }
    let pings = 2_000 / scale as usize;
    let mut ours = (Vec::new(), Vec::new());
    let mut theirs = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (p50, p99) = latency_core(pings).await;
        ours.0.push(p50);
        ours.1.push(p99);
        let (p50, p99) = latency_broadcast(pings).await;
        theirs.0.push(p50);
        theirs.1.push(p99);
    }
    for (label, i) in [("p50", 0), ("p99", 1)] {
        let pick =
            |v: &(Vec<f64>, Vec<f64>)| median(if i == 0 { v.0.clone() } else { v.1.clone() });
        rows.push(Row {
            workload: format!("wake-to-receive latency {label}"),
            unit: "µs",
            ours: pick(&ours),
            baseline: pick(&theirs),
            higher_is_better: false,
            note: format!("1 subscriber, {pings} pings"),
        });
    }
    Report { rows, rounds }
}

fn core_hub() -> (MemoryHub, Topic) {
    let hub =
        MemoryHub::new(HubConfig::default().retention(Retention::default().max_events(CAPACITY)));
    (hub, Topic::new("bench").expect("valid"))
}

async fn fanout_core(subscribers: usize, events: u64) -> FanOut {
    let (hub, topic) = core_hub();
    let mut readers = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let mut sub = hub
            .subscribe_now(&topic, StartFrom::Newest)
            .expect("open hub");
        readers.push(tokio::spawn(async move {
            let mut missed = 0;
            while sub.cursor().seq() < events {
                match sub.recv().await {
                    Some(Delivery::Event(_)) => {}
                    Some(Delivery::Gap { missed: n }) => missed += n,
                    Some(_) | None => break,
                }
            }
            missed
        }));
    }
    let payload = Bytes::copy_from_slice(PAYLOAD);
    let start = Instant::now();
    let publisher = {
        let hub = hub.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for i in 0..events {
                hub.publish_now(&topic, NewEvent::new(payload.clone()))
                    .expect("publish");
                if i % 256 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            start.elapsed()
        })
    };
    let publish_time = publisher.await.expect("publisher");
    let mut missed = 0;
    for r in readers {
        missed += r.await.expect("reader");
    }
    let total = start.elapsed();
    FanOut {
        publish_per_sec: events as f64 / publish_time.as_secs_f64(),
        delivered_per_sec: (events * subscribers as u64 - missed) as f64 / total.as_secs_f64(),
        missed,
    }
}

async fn fanout_broadcast(subscribers: usize, events: u64) -> FanOut {
    let (tx, _) = broadcast::channel::<(u64, Bytes)>(CAPACITY);
    let mut readers = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let mut rx = tx.subscribe();
        readers.push(tokio::spawn(async move {
            let mut missed = 0;
            loop {
                match rx.recv().await {
                    Ok((i, _)) if i + 1 == events => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => missed += n,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
            missed
        }));
    }
    // A payload in shared memory, as a server's would be (a static one would skip the refcount).
    let payload = Bytes::copy_from_slice(PAYLOAD);
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        for i in 0..events {
            // With no receiver, send reports an error; that is the 0-subscriber case, not a failure.
            let _ = tx.send((i, payload.clone()));
            if i % 256 == 0 {
                tokio::task::yield_now().await;
            }
        }
        start.elapsed()
    });
    let publish_time = publisher.await.expect("publisher");
    let mut missed = 0;
    for r in readers {
        missed += r.await.expect("reader");
    }
    let total = start.elapsed();
    FanOut {
        publish_per_sec: events as f64 / publish_time.as_secs_f64(),
        delivered_per_sec: (events * subscribers as u64 - missed) as f64 / total.as_secs_f64(),
        missed,
    }
}

fn percentiles(mut micros: Vec<f64>) -> (f64, f64) {
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    (at(0.50), at(0.99))
}

/// One subscriber waits; the publisher publishes, the subscriber records the time from just
/// before the publish call to its receipt, then acknowledges so the next ping starts idle.
async fn latency_core(pings: usize) -> (f64, f64) {
    let (hub, topic) = core_hub();
    let base = Instant::now();
    let mut sub = hub
        .subscribe_now(&topic, StartFrom::Newest)
        .expect("open hub");
    let (ack_tx, mut ack_rx) = mpsc::channel::<()>(1);
    let reader = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(pings);
        while samples.len() < pings {
            if let Some(Delivery::Event(e)) = sub.recv().await {
                let sent = u64::from_le_bytes(e.data()[..8].try_into().expect("8 bytes"));
                let now = base.elapsed().as_nanos() as u64;
                samples.push(now.saturating_sub(sent) as f64 / 1e3);
                ack_tx.send(()).await.expect("ack");
            }
        }
        samples
    });
    for _ in 0..pings {
        let sent = base.elapsed().as_nanos() as u64;
        hub.publish_now(
            &topic,
            NewEvent::new(Bytes::copy_from_slice(&sent.to_le_bytes())),
        )
        .expect("publish");
        ack_rx.recv().await.expect("reader alive");
    }
    percentiles(reader.await.expect("reader"))
}

async fn latency_broadcast(pings: usize) -> (f64, f64) {
    let (tx, mut rx) = broadcast::channel::<(u64, Bytes)>(CAPACITY);
    let base = Instant::now();
    let (ack_tx, mut ack_rx) = mpsc::channel::<()>(1);
    let reader = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(pings);
        while samples.len() < pings {
            if let Ok((sent, _)) = rx.recv().await {
                let now = base.elapsed().as_nanos() as u64;
                samples.push(now.saturating_sub(sent) as f64 / 1e3);
                ack_tx.send(()).await.expect("ack");
            }
        }
        samples
    });
    for _ in 0..pings {
        let sent = base.elapsed().as_nanos() as u64;
        tx.send((sent, Bytes::copy_from_slice(PAYLOAD)))
            .expect("receiver alive");
        ack_rx.recv().await.expect("reader alive");
    }
    percentiles(reader.await.expect("reader"))
}
