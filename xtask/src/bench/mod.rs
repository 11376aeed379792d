//! `cargo xtask bench`: measurements that always carry a baseline from the same run, so that the
//! figure that matters is a ratio, not an absolute number from a shared, noisy machine.
//!
//! The tree: `core` (push-core against `tokio::sync::broadcast`), `server` (every server kind
//! and how it starts), `http` (the load generator and the fixed-rate fan-out), `peers` (Nchan's
//! workloads: flat-out fan-out, idle memory, many topics, the chart), `h2`, `churn`, `redis`,
//! `mcp` (push-mcp's event store against a `HashMap` one), and `report` (the tables). Each part is a function of [`Plan`] here; nothing is global.

mod churn;
mod core;
mod h2;
// A `GlobalAlloc` is unsafe to implement; it forwards every call to `System` unchanged.
#[allow(unsafe_code)]
pub(crate) mod heap;
pub(crate) mod http;
mod mcp;
mod peers;
mod redis;
mod report;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

pub(crate) use self::report::fmt_num;
pub(crate) use self::server::{Process, ServerKind};

/// A part of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Part {
    /// push-core against `tokio::sync::broadcast`.
    Core,
    /// The HTTP techniques against Nchan, axum's `Sse` and the raw-socket ceiling.
    Http,
    /// push-ws against Nchan and tokio-tungstenite.
    Ws,
    /// Flat-out fan-out versus N, with the chart.
    Saturation,
    /// Memory per idle connection.
    Idle,
    /// One subscriber per topic.
    Topics,
    /// HTTP/2 page loads (push, 103, plain) and pushed events.
    H2,
    /// RSS after sequential short connections (showcase, push, Nchan).
    Churn,
    /// push-redis against the in-memory hub.
    Redis,
    /// push-mcp's rmcp event store against a `HashMap` one: stores and replays per second.
    Mcp,
}

/// `cargo xtask bench` options.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BenchArgs {
    /// The small run CI uses as a smoke test of the harness.
    #[arg(long)]
    quick: bool,
    /// Only this part.
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Skip the push-core part.
    #[arg(long)]
    no_core: bool,
    /// Only these servers (comma-separated); an unknown name is refused.
    #[arg(long, value_enum, value_delimiter = ',')]
    servers: Option<Vec<ServerKind>>,
    /// HTTP clients per server (default 1,000; 200 with --quick).
    #[arg(long)]
    clients: Option<usize>,
    /// WebSocket clients per server (default 10,000; 500 with --quick).
    #[arg(long)]
    ws_clients: Option<usize>,
    /// Runs of the fixed-rate fan-out (HTTP and WebSocket), each server once per run in turn,
    /// so that push and its peer are paired in every run; the tables show the median of each
    /// figure (default 3; 1 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Where the JSON goes (the chart goes beside it).
    #[arg(long, default_value = "target/bench/bench.json")]
    json: PathBuf,
}

/// What this run measures: the parts, the servers and the sizes.
#[derive(Debug)]
struct Plan {
    args: BenchArgs,
    clients: usize,
    ws_clients: usize,
    rate: u64,
    seconds: u64,
}

impl Plan {
    fn new(args: BenchArgs) -> Self {
        let quick = args.quick;
        let (rate, seconds) = if quick { (50, 3) } else { (100, 10) };
        Self {
            clients: args.clients.unwrap_or(if quick { 200 } else { 1_000 }),
            ws_clients: args.ws_clients.unwrap_or(if quick { 500 } else { 10_000 }),
            rate,
            seconds,
            args,
        }
    }

    fn part(&self, part: Part) -> bool {
        self.args.only.is_none_or(|only| only == part)
    }

    /// The kinds of `list` this run measures.
    fn pick(&self, list: &[ServerKind]) -> Vec<ServerKind> {
        list.iter()
            .copied()
            .filter(|k| self.args.servers.as_ref().is_none_or(|s| s.contains(k)))
            .collect()
    }

    fn json_path(&self) -> PathBuf {
        if self.args.json.is_absolute() {
            self.args.json.clone()
        } else {
            crate::root().join(&self.args.json)
        }
    }
}

pub(crate) fn main(args: BenchArgs, raw: &[String]) -> Result<(), String> {
    if cfg!(debug_assertions) {
        // Figures from an unoptimized build mean nothing: run again as a release build.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut full = vec!["run", "--quiet", "--release", "--package", "xtask", "--"];
        full.extend(raw.iter().map(String::as_str));
        return crate::cmd(&cargo, &full, &[]);
    }
    let plan = Plan::new(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    let core = (!plan.args.no_core && plan.part(Part::Core))
        .then(|| runtime.block_on(self::core::core_bench(plan.args.quick)));
    if let Some(report) = &core {
        println!("{}", report.markdown());
    }
    raise_file_limit(&plan)?;
    let results = runtime.block_on(run_parts(&plan))?;
    write_json(&plan, core.as_ref().map(self::core::Report::json), results)
}

/// Each client holds a socket here and one in the server process: raise the open-file limit
/// (the server inherits it) or fail saying so. The flat-out fan-out goes up to 10 × clients.
fn raise_file_limit(plan: &Plan) -> Result<(), String> {
    let wanted = (10 * plan.clients).max(plan.ws_clients).max(5_000) as u64 + 256;
    let got = rlimit::increase_nofile_limit(wanted)
        .map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    if got < wanted {
        return Err(format!(
            "open-file limit is {got}, {wanted} needed for {} clients; raise the hard limit",
            plan.clients
        ));
    }
    Ok(())
}

/// Runs every selected part after core, printing each table as it is done; the JSON sections.
async fn run_parts(plan: &Plan) -> Result<Vec<(&'static str, serde_json::Value)>, String> {
    let mut out = Vec::new();
    out.push(("http", fan_out(plan, Part::Http).await?));
    out.push(("websocket", fan_out(plan, Part::Ws).await?));
    let machine = self::report::machine();
    out.push(("saturation", saturation(plan, &machine).await?));
    out.push(("idle", idle(plan).await?));
    out.push(("many_topics", many_topics(plan).await?));
    out.push(("h2", http2(plan).await?));
    out.push(("churn", churn(plan).await?));
    out.push(("redis", redis(plan).await?));
    out.push(("mcp", mcp(plan).await?));
    out.push(("machine", json!(machine)));
    Ok(out)
}

fn rows_json(rows: &[http::Measured]) -> serde_json::Value {
    json!(rows.iter().map(http::Measured::json).collect::<Vec<_>>())
}

/// The fixed-rate fan-out: HTTP techniques at `clients`, WebSocket at `ws_clients`.
async fn fan_out(plan: &Plan, part: Part) -> Result<serde_json::Value, String> {
    if !plan.part(part) {
        return Ok(json!([]));
    }
    let (kinds, clients, rate, seconds) = if part == Part::Ws {
        let seconds = if plan.args.quick { 3 } else { 10 };
        (plan.pick(&server::WS), plan.ws_clients, 10, seconds)
    } else {
        (
            plan.pick(&server::HTTP),
            plan.clients,
            plan.rate,
            plan.seconds,
        )
    };
    let runs = plan
        .args
        .runs
        .unwrap_or(if plan.args.quick { 1 } else { 3 })
        .max(1);
    let mut each: Vec<Vec<http::Measured>> = kinds.iter().map(|_| Vec::new()).collect();
    for run in 1..=runs {
        for (i, &kind) in kinds.iter().enumerate() {
            let load = http::Load {
                ws: part == Part::Ws,
                ..http::Load::fan_out(clients, rate, seconds)
            };
            let row = http::measure(kind, load).await?;
            if runs > 1 {
                eprintln!(
                    "run {run}/{runs}: {} p99 {:.1} ms, {} of {} delivered",
                    row.kind,
                    row.p99_us / 1e3,
                    row.delivered,
                    row.expected
                );
            }
            each[i].push(row);
        }
    }
    let rows: Vec<http::Measured> = each
        .into_iter()
        .filter_map(http::Measured::median)
        .collect();
    if !rows.is_empty() {
        let table = if part == Part::Ws {
            report::ws_markdown(&rows, rate, seconds)
        } else {
            report::http_markdown(&rows, rate, seconds)
        };
        println!("{table}");
    }
    Ok(rows_json(&rows))
}

async fn saturation(plan: &Plan, machine: &str) -> Result<serde_json::Value, String> {
    if !plan.part(Part::Saturation) {
        return Ok(json!([]));
    }
    let (sizes, seconds): (Vec<usize>, u64) = if plan.args.quick {
        (vec![50, plan.clients], 2)
    } else {
        (vec![100, plan.clients, 10 * plan.clients], 5)
    };
    let rows = peers::saturation(&plan.pick(&server::SATURATION), &sizes, seconds).await?;
    if !rows.is_empty() {
        println!("{}", peers::saturation_markdown(&rows, seconds));
        let chart = plan.json_path().with_file_name("fanout.svg");
        if let Some(dir) = chart.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        peers::chart(&rows, &chart, machine)?;
        println!("chart: {}\n", chart.display());
    }
    Ok(rows_json(&rows))
}

async fn idle(plan: &Plan) -> Result<serde_json::Value, String> {
    if !plan.part(Part::Idle) {
        return Ok(json!([]));
    }
    let clients = if plan.args.quick { 500 } else { 5_000 };
    let rows = peers::idle(&plan.pick(&server::IDLE), clients).await?;
    if !rows.is_empty() {
        println!("{}", peers::idle_markdown(&rows));
    }
    Ok(rows_json(&rows))
}

async fn many_topics(plan: &Plan) -> Result<serde_json::Value, String> {
    if !plan.part(Part::Topics) {
        return Ok(json!([]));
    }
    let rate = if plan.args.quick { 200 } else { 1_000 };
    let kinds = plan.pick(&server::MANY_TOPICS);
    let rows = peers::many_topics(&kinds, plan.clients, rate, plan.seconds).await?;
    if !rows.is_empty() {
        println!("{}", peers::many_topics_markdown(&rows, rate, plan.seconds));
    }
    Ok(rows_json(&rows))
}

async fn http2(plan: &Plan) -> Result<serde_json::Value, String> {
    if !plan.part(Part::H2) {
        return Ok(serde_json::Value::Null);
    }
    let rtt = Duration::from_millis(40);
    let (loads, events) = if plan.args.quick {
        (5, 2_000)
    } else {
        (21, 20_000)
    };
    let (pages, rate) = h2::measure(rtt, loads, events).await?;
    println!("{}", report::h2_markdown(&pages, &rate, rtt, loads));
    Ok(json!({
        "page_loads": pages.iter().map(|p| json!({
            "mode": p.mode.name(),
            "round_trips": p.mode.round_trips(),
            "median_ms": p.median_ms,
        })).collect::<Vec<_>>(),
        "events": rate.events,
        "pushed_per_sec": rate.pushed_per_sec,
        "body_per_sec": rate.body_per_sec,
    }))
}

async fn churn(plan: &Plan) -> Result<serde_json::Value, String> {
    if !plan.part(Part::Churn) {
        return Ok(serde_json::Value::Null);
    }
    let connections = if plan.args.quick { 5_000 } else { 50_000 };
    let rows = churn::measure(connections).await?;
    println!("{}", churn::markdown(&rows));
    Ok(churn::json(&rows))
}

async fn redis(plan: &Plan) -> Result<serde_json::Value, String> {
    if !plan.part(Part::Redis) {
        return Ok(serde_json::Value::Null);
    }
    let (clients, rate, seconds) = (plan.clients, plan.rate, plan.seconds);
    let rows = redis::measure(clients, rate, seconds).await?;
    println!("{}", redis::markdown(&rows, clients, rate, seconds));
    // Many topics: shared readers against a reader per topic, in the same run. A reader per
    // topic is a connection each: at 10,000 topics on two servers that is past Redis's
    // default `maxclients` (10,000) and this machine's descriptor limit, so it runs at 2,000.
    // And a cluster (3 masters, 3 replicas, 8 hash-tag groups) on the same load as one server.
    let runs: &[(usize, usize, bool)] = if plan.args.quick {
        &[(200, 4, false), (200, 200, false), (200, 8, true)]
    } else {
        &[
            (10_000, 4, false),
            (10_000, 8, true),
            (2_000, 4, false),
            (2_000, 8, true),
            (2_000, 2_000, false),
        ]
    };
    let many_seconds = seconds.clamp(2, 10);
    let mut many = Vec::new();
    for &(topics, readers, cluster) in runs {
        many.push(redis::many_topics(topics, many_seconds, readers, cluster).await?);
    }
    println!("{}", redis::many_topics_markdown(&many, many_seconds));
    Ok(serde_json::json!({
        "backends": redis::json(&rows),
        "many_topics": redis::many_topics_json(&many),
    }))
}

async fn mcp(plan: &Plan) -> Result<serde_json::Value, String> {
    if !plan.part(Part::Mcp) {
        return Ok(serde_json::Value::Null);
    }
    let report = mcp::measure(mcp::Workload::new(plan.args.quick)).await?;
    println!("{}", report.markdown());
    Ok(report.json())
}

fn write_json(
    plan: &Plan,
    core: Option<serde_json::Value>,
    sections: Vec<(&'static str, serde_json::Value)>,
) -> Result<(), String> {
    let path = plan.json_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut all = serde_json::Map::new();
    all.insert("core".to_owned(), core.unwrap_or(serde_json::Value::Null));
    for (name, value) in sections {
        all.insert(name.to_owned(), value);
    }
    let text = serde_json::to_string_pretty(&all).expect("json");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("\nwritten to {}", path.display());
    Ok(())
}

/// `cargo xtask serve PROCESS`: one benchmark server process, started by the bench.
pub(crate) fn serve(process: Process) -> Result<(), String> {
    http::serve(process)
}
