//! `cargo xtask bench`: measurements that always carry a baseline from the same run, so that the
//! figure that matters is a ratio, not an absolute number from a shared, noisy machine.
//!
//! push-core's section compares the shared-log hub with `tokio::sync::broadcast` doing the same
//! fan-out (same payload, same runtime, same capacity): publish throughput with 0, 1, 100 and
//! 10,000 subscribers, delivered events per second, and wake-to-receive latency. Each figure is
//! the median of several rounds.

use std::time::Instant;

use bytes::Bytes;
use push_core::{Delivery, HubConfig, MemoryHub, NewEvent, Retention, StartFrom, Topic};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

/// Retained events / channel capacity, the same for both sides.
const CAPACITY: usize = 1024;
const PAYLOAD: &[u8] = &[b'x'; 64];

/// The parts of the bench, in the order they run.
const PARTS: [&str; 9] = [
    "core",
    "http",
    "ws",
    "saturation",
    "idle",
    "topics",
    "h2",
    "churn",
    "redis",
];

pub(crate) fn main(args: &[String]) -> Result<(), String> {
    if cfg!(debug_assertions) {
        // Figures from an unoptimized build mean nothing: run again as a release build.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut full = vec![
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--",
            "bench",
        ];
        full.extend(args.iter().map(String::as_str));
        return crate::cmd(&cargo, &full, &[]);
    }
    let mut quick = false;
    let mut core = true;
    let mut only: Option<String> = None;
    let mut clients: Option<usize> = None;
    let mut ws_clients: Option<usize> = None;
    let mut json_path = crate::root().join("target/bench/bench.json");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--servers" => {
                let list = args
                    .next()
                    .ok_or("--servers needs a comma-separated list")?;
                crate::bench_http::only_servers(list)?;
            }
            "--no-core" => core = false,
            "--only" => {
                let part = args
                    .next()
                    .ok_or(format!("--only needs one of {}", PARTS.join("|")))?;
                if !PARTS.contains(&part.as_str()) {
                    return Err(format!(
                        "--only: unknown part {part:?}; parts: {}",
                        PARTS.join(", ")
                    ));
                }
                only = Some(part.clone());
            }
            "--json" => json_path = args.next().ok_or("--json needs a path")?.into(),
            "--ws-clients" => {
                let n = args.next().ok_or("--ws-clients needs a number")?;
                ws_clients = Some(n.parse().map_err(|e| format!("--ws-clients {n}: {e}"))?);
            }
            "--clients" => {
                let n = args.next().ok_or("--clients needs a number")?;
                clients = Some(n.parse().map_err(|e| format!("--clients {n}: {e}"))?);
            }
            other => return Err(format!("unknown bench option {other:?}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let report = (core && part("core")).then(|| runtime.block_on(core_bench(quick)));
    if let Some(report) = &report {
        println!("{}", report.markdown());
    }
    let clients = clients.unwrap_or(if quick { 200 } else { 1_000 });
    let ws_clients = ws_clients.unwrap_or(if quick { 500 } else { 10_000 });
    // Each client holds a socket here and one in the server process; raise the open-file limit
    // (the server inherits it) or fail saying so.
    // The flat-out fan-out goes up to 10 × clients (full run).
    let wanted = (10 * clients).max(ws_clients).max(5_000) as u64 + 256;
    let got = rlimit::increase_nofile_limit(wanted)
        .map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    if got < wanted {
        return Err(format!(
            "open-file limit is {got}, {wanted} needed for {clients} clients; raise the hard limit"
        ));
    }
    let (rate, seconds) = if quick { (50, 3) } else { (100, 10) };
    let http_kinds: &[&'static str] = if part("http") {
        &crate::bench_http::KINDS
    } else {
        &[]
    };
    let ws_kinds: &[&'static str] = if part("ws") {
        &crate::bench_http::WS_KINDS
    } else {
        &[]
    };
    let http = runtime.block_on(async {
        let mut out = Vec::new();
        for &kind in http_kinds.iter().filter(|k| crate::bench_http::selected(k)) {
            let load = crate::bench_http::Load::fan_out(clients, rate, seconds);
            out.push(crate::bench_http::measure(kind, load).await?);
        }
        Ok::<_, String>(out)
    })?;
    if !http.is_empty() {
        println!("{}", http_markdown(&http, rate, seconds));
    }
    let (ws_rate, ws_seconds) = if quick { (10, 3) } else { (10, 10) };
    let ws = runtime.block_on(async {
        let mut out = Vec::new();
        for &kind in ws_kinds.iter().filter(|k| crate::bench_http::selected(k)) {
            let load = crate::bench_http::Load::fan_out(ws_clients, ws_rate, ws_seconds);
            out.push(crate::bench_http::measure(kind, load).await?);
        }
        Ok::<_, String>(out)
    })?;
    if !ws.is_empty() {
        println!("{}", ws_markdown(&ws, ws_rate, ws_seconds));
    }
    let machine = crate::bench_peers::machine();
    let (sizes, flat_seconds): (Vec<usize>, u64) = if quick {
        (vec![50, clients], 2)
    } else {
        (vec![100, clients, 10 * clients], 5)
    };
    let saturation = if part("saturation") {
        runtime.block_on(crate::bench_peers::saturation(&sizes, flat_seconds))?
    } else {
        Vec::new()
    };
    let chart_path = json_path.with_file_name("fanout.svg");
    if !saturation.is_empty() {
        println!(
            "{}",
            crate::bench_peers::saturation_markdown(&saturation, flat_seconds)
        );
        if let Some(dir) = chart_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        crate::bench_peers::chart(&saturation, &chart_path, &machine)?;
        println!("chart: {}\n", chart_path.display());
    }
    let idle_clients = if quick { 500 } else { 5_000 };
    let idle = if part("idle") {
        runtime.block_on(crate::bench_peers::idle(idle_clients))?
    } else {
        Vec::new()
    };
    if !idle.is_empty() {
        println!("{}", crate::bench_peers::idle_markdown(&idle));
    }
    let many_rate = if quick { 200 } else { 1_000 };
    let many = if part("topics") {
        runtime.block_on(crate::bench_peers::many_topics(clients, many_rate, seconds))?
    } else {
        Vec::new()
    };
    if !many.is_empty() {
        println!(
            "{}",
            crate::bench_peers::many_topics_markdown(&many, many_rate, seconds)
        );
    }
    let rtt = std::time::Duration::from_millis(40);
    let (loads, events) = if quick { (5, 2_000) } else { (21, 20_000) };
    let h2 = if part("h2") {
        Some(runtime.block_on(crate::bench_h2::measure(rtt, loads, events))?)
    } else {
        None
    };
    if let Some((pages, rate)) = &h2 {
        println!("{}", h2_markdown(pages, rate, rtt, loads));
    }
    let churn_connections = if quick { 5_000 } else { 50_000 };
    let churn = if part("churn") {
        let rows = runtime.block_on(crate::bench_churn::measure(churn_connections))?;
        println!("{}", crate::bench_churn::markdown(&rows));
        Some(rows)
    } else {
        None
    };
    let redis = if part("redis") {
        let rows = runtime.block_on(crate::bench_redis::measure(clients, rate, seconds))?;
        println!(
            "{}",
            crate::bench_redis::markdown(&rows, clients, rate, seconds)
        );
        Some(rows)
    } else {
        None
    };
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json!({
            "core": report.as_ref().map(|r| r.json()),
            "redis": redis.as_deref().map(crate::bench_redis::json),
            "churn": churn.as_deref().map(crate::bench_churn::json),
            "h2": h2.as_ref().map(|(pages, rate)| json!({
                "page_loads": pages.iter().map(|p| json!({
                    "mode": p.mode.name(),
                    "round_trips": p.mode.round_trips(),
                    "median_ms": p.median_ms,
                })).collect::<Vec<_>>(),
                "events": rate.events,
                "pushed_per_sec": rate.pushed_per_sec,
                "body_per_sec": rate.body_per_sec,
            })),
            "machine": machine,
            "websocket": ws.iter().map(crate::bench_http::Measured::json).collect::<Vec<_>>(),
            "http": http.iter().map(crate::bench_http::Measured::json).collect::<Vec<_>>(),
            "saturation": saturation.iter().map(crate::bench_http::Measured::json).collect::<Vec<_>>(),
            "idle": idle.iter().map(crate::bench_http::Measured::json).collect::<Vec<_>>(),
            "many_topics": many.iter().map(crate::bench_http::Measured::json).collect::<Vec<_>>(),
        }))
        .expect("json"),
    )
    .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    println!("\nwritten to {}", json_path.display());
    Ok(())
}

fn h2_markdown(
    pages: &[crate::bench_h2::PageLoad],
    rate: &crate::bench_h2::EventRate,
    rtt: std::time::Duration,
    loads: usize,
) -> String {
    let plain = pages
        .iter()
        .find(|p| p.mode.round_trips() == 2)
        .map_or(f64::NAN, |p| p.median_ms);
    let mut out = format!(
        "## HTTP/2: a page with 8 linked 4 KiB assets, {} ms round trip (delaying proxy), handler think time 30 ms, fresh connection, median of {loads}\n\n\
         | how the assets come | round trips after connect | page load ms | vs plain |\n\
         |---|---:|---:|---:|\n",
        rtt.as_millis()
    );
    for p in pages {
        out += &format!(
            "| {} | {} | {:.1} | {:.2}x |\n",
            p.mode.name(),
            p.mode.round_trips(),
            p.median_ms,
            p.median_ms / plain
        );
    }
    out += &format!(
        "\nEvent push, one client, {} events on loopback: {} events/s as pushed responses, {} events/s as lines on the subscription body (the fallback), {:.2}x.\n",
        rate.events,
        fmt_num(rate.pushed_per_sec),
        fmt_num(rate.body_per_sec),
        rate.pushed_per_sec / rate.body_per_sec
    );
    out
}

fn ws_markdown(rows: &[crate::bench_http::Measured], rate: u64, seconds: u64) -> String {
    let find = |k: &str| rows.iter().find(|m| m.kind == k);
    let (nchan, base) = (find("nchan-ws"), find("tungstenite"));
    let ratio = |a: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 && a.is_finite() => format!("{:.2}x", a / b),
        _ => "–".to_owned(),
    };
    let mut out = format!(
        "## WebSocket, {} idle then broadcast clients on one topic, {rate} events/s for {seconds} s (one server process per row, 1 worker thread)\n\n\
         | server | idle KiB/conn | idle vs nchan-ws | idle vs tungstenite | delivered / expected | p50 ms | p99 ms | p99.9 ms | connect p50 / p99 ms | errors | peak RSS MiB | server CPU µs/event | bytes/event |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        rows.first().map_or(0, |m| m.clients)
    );
    for m in rows {
        out += &format!(
            "| {} | {:.1} | {} | {} | {} / {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {} | {:.1} | {:.2} | {:.0} |\n",
            m.kind,
            m.idle_kib_per_conn,
            ratio(m.idle_kib_per_conn, nchan.map(|b| b.idle_kib_per_conn)),
            ratio(m.idle_kib_per_conn, base.map(|b| b.idle_kib_per_conn)),
            m.delivered,
            m.expected,
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            m.p999_us / 1e3,
            m.connect_p50_ms,
            m.connect_p99_ms,
            m.errors,
            m.peak_rss_mib,
            m.cpu_us_per_event(),
            if m.delivered == 0 {
                f64::NAN
            } else {
                m.bytes_in as f64 / m.delivered as f64
            },
        );
    }
    out +=
        "\n`tungstenite` is a plain tokio-tungstenite server with default settings (128 KiB read \
            buffer) forwarding a `tokio::sync::broadcast`; push-ws runs its defaults (4 KiB read \
            buffer); `nchan-ws` is nginx 1.22 with Nchan 1.3.6, one worker. Idle cost = (RSS with \
            N connections − RSS with none) / N, of the one server process (Nchan: the worker).\n";
    out
}

fn http_markdown(rows: &[crate::bench_http::Measured], rate: u64, seconds: u64) -> String {
    let find = |k: &str| rows.iter().find(|m| m.kind == k);
    // Each push technique against its Nchan counterpart.
    let peer = |kind: &str| match kind {
        "push-sse" | "axum-sse" | "raw" => find("nchan-sse"),
        "push-stream" => find("nchan-stream"),
        "push-longpoll" => find("nchan-longpoll"),
        _ => None,
    };
    let ratio = |a: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 && a.is_finite() => format!("{:.2}x", a / b),
        _ => "–".to_owned(),
    };
    let mut out = format!(
        "## HTTP techniques, {} clients on one topic, {rate} events/s for {seconds} s (one server process per row, 1 worker thread)\n\n\
         | server | delivered / expected | p50 ms | p99 ms | p99.9 ms | connect p50 / p99 ms | errors | idle KiB/client | idle vs Nchan | peak / steady RSS MiB | server CPU µs/event | CPU vs Nchan | requests/event | bytes/event | requests/s | 304/s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        rows.first().map_or(0, |m| m.clients)
    );
    for m in rows {
        let per_event = |x: u64| {
            if m.delivered == 0 {
                f64::NAN
            } else {
                x as f64 / m.delivered as f64
            }
        };
        let nchan = peer(m.kind).filter(|p| p.kind != m.kind);
        out += &format!(
            "| {} | {} / {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {} | {:.1} | {} | {:.1} / {:.1} | {:.2} | {} | {:.3} | {:.0} | {} | {} |\n",
            m.kind,
            m.delivered,
            m.expected,
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            m.p999_us / 1e3,
            m.connect_p50_ms,
            m.connect_p99_ms,
            m.errors,
            m.idle_kib_per_conn,
            ratio(m.idle_kib_per_conn, nchan.map(|p| p.idle_kib_per_conn)),
            m.peak_rss_mib,
            m.steady_rss_mib,
            m.cpu_us_per_event(),
            ratio(m.cpu_us_per_event(), nchan.map(crate::bench_http::Measured::cpu_us_per_event)),
            per_event(m.requests),
            per_event(m.bytes_in),
            if m.kind.ends_with("poll") {
                fmt_num(m.requests_per_sec)
            } else {
                "–".to_owned()
            },
            m.not_modified_per_sec.map_or("–".to_owned(), fmt_num),
        );
    }
    out += "\n`nchan-*` is nginx 1.22 with Nchan 1.3.6 (Debian's packages), one worker, retention 1,000 \
            messages, measured on its worker process; `axum-sse` is axum's `Sse` over \
            `tokio::sync::broadcast`; `raw` is the ceiling (no HTTP framework, no hub, the same \
            bytes written to each socket). Idle cost = (RSS with N clients − RSS with none) / N. \
            Ratios below 1 mean less memory or CPU than Nchan.\n";
    out
}

struct Row {
    workload: String,
    unit: &'static str,
    ours: f64,
    baseline: f64,
    /// Whether a larger figure is better (throughput) or a smaller one (latency).
    higher_is_better: bool,
    note: String,
}

struct Report {
    rows: Vec<Row>,
    rounds: usize,
}

impl Report {
    fn markdown(&self) -> String {
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

    fn json(&self) -> serde_json::Value {
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

pub(crate) fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.1}")
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

async fn core_bench(quick: bool) -> Report {
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
                    None => break,
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
