//! `cargo xtask compare`: the showcase binary under one fixed workload, technique by technique,
//! measured by the bench's load generator: what each technique costs per delivered event.

use crate::bench::http::measure_server;
use crate::bench::{fmt_num, ServerKind};

/// The techniques the load generator speaks (push-h2's events need an HTTP/2 client and are
/// measured by `cargo xtask bench --only h2`).
const KINDS: [ServerKind; 5] = [
    ServerKind::PushPoll,
    ServerKind::PushLongpoll,
    ServerKind::PushSse,
    ServerKind::PushWs,
    ServerKind::PushStream,
];

/// `cargo xtask compare` options.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CompareArgs {
    /// Clients per technique, on one topic.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Events per second.
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

pub(crate) fn main(args: &CompareArgs) -> Result<(), String> {
    let (clients, rate, seconds) = (args.clients, args.rate, args.seconds);
    let showcase = crate::release_showcase()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let _ = rlimit::increase_nofile_limit(clients as u64 + 256);
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for kind in KINDS {
            let mut command = tokio::process::Command::new(&showcase);
            command.args(["--addr", "127.0.0.1:0", "--no-ticker"]);
            rows.push(measure_server(kind, command, clients, rate, seconds).await?);
        }
        Ok::<_, String>(rows)
    })?;
    println!(
        "## The showcase, {clients} clients per technique on one topic, {rate} events/s for {seconds} s\n\n\
         | technique | delivered / expected | requests | requests/event | bytes/event | p50 ms | p99 ms | server CPU µs/event |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for m in &rows {
        let per = |x: f64| {
            if m.delivered == 0 {
                f64::NAN
            } else {
                x / m.delivered as f64
            }
        };
        println!(
            "| {} | {} / {} | {} | {:.3} | {:.0} | {:.1} | {:.1} | {:.1} |",
            m.kind,
            m.delivered,
            m.expected,
            fmt_num(m.requests as f64),
            per(m.requests as f64),
            per(m.bytes_in as f64),
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            per(m.cpu_ticks as f64 * 10_000.0),
        );
    }
    println!(
        "\nBytes count what clients received (headers included). Pollers poll every second, so \
         their latency includes up to a second of staleness. CPU is the showcase process's user \
         and system time while events were published."
    );
    Ok(())
}
