//! The tables every part prints, and the helpers they share.

use super::h2::{EventRate, PageLoad};
use super::http::Measured;
use super::ServerKind;

/// The row of `kind`'s Nchan peer and of its raw ceiling, both at its workers (a row is never
/// its own peer); in a WebSocket table (`ws`), the ceiling's peer is Nchan's WebSocket.
fn peers<'a>(
    rows: &'a [Measured],
    kind: &str,
    ws: bool,
) -> (Option<&'a Measured>, Option<&'a Measured>) {
    let this = <ServerKind as clap::ValueEnum>::from_str(kind, false).ok();
    let find = |k: Option<ServerKind>| {
        let k = k.filter(|k| k.name() != kind)?;
        rows.iter().find(|m| m.kind == k.name())
    };
    let peer = match this {
        Some(ServerKind::Raw) if ws => Some(ServerKind::NchanWs),
        Some(ServerKind::Raw2w) if ws => Some(ServerKind::NchanWs2w),
        _ => this.and_then(ServerKind::nchan_peer),
    };
    (find(peer), find(this.and_then(ServerKind::ceiling)))
}

/// Server CPU per event in user space and in the kernel.
fn split(m: &Measured) -> String {
    let (user, kernel) = m.split_us_per_event();
    format!("{user:.2} / {kernel:.2}")
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 && a.is_finite() => format!("{:.2}x", a / b),
        _ => "–".to_owned(),
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

pub(crate) fn h2_markdown(
    pages: &[PageLoad],
    rate: &EventRate,
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

pub(crate) fn ws_markdown(rows: &[Measured], rate: u64, seconds: u64) -> String {
    let base = rows.iter().find(|m| m.kind == "tungstenite");
    let mut out = format!(
        "## WebSocket, {} idle then broadcast clients on one topic, {rate} events/s for {seconds} s (one server process per row{}{})\n\n\
         | server | idle KiB/conn | idle vs Nchan | idle vs tungstenite | delivered / expected / repeated | p50 ms | p99 ms | p99.9 ms | p99 vs Nchan | p99.9 vs Nchan | connect p50 / p99 ms | errors | peak RSS MiB | server CPU µs/event | user / kernel | CPU vs Nchan | CPU vs ceiling | server + clients CPU µs/event | vs Nchan | bytes/event |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        rows.first().map_or(0, |m| m.clients),
        WORKERS,
        runs_note(rows),
    );
    for m in rows {
        let (nchan, ceiling) = peers(rows, m.kind, true);
        out += &format!(
            "| {} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} / {:.1} | {} | {:.1} | {:.2} | {} | {} | {} | {:.2} | {} | {:.0} |\n",
            m.kind,
            m.idle_kib_per_conn,
            ratio(m.idle_kib_per_conn, nchan.map(|b| b.idle_kib_per_conn)),
            ratio(m.idle_kib_per_conn, base.map(|b| b.idle_kib_per_conn)),
            m.delivery_cell(),
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            m.p999_us / 1e3,
            ratio(m.p99_us, nchan.map(|b| b.p99_us)),
            ratio(m.p999_us, nchan.map(|b| b.p999_us)),
            m.connect_p50_ms,
            m.connect_p99_ms,
            m.errors,
            m.peak_rss_mib,
            m.cpu_us_per_event(),
            split(m),
            ratio(m.cpu_us_per_event(), nchan.map(Measured::cpu_us_per_event)),
            ratio(m.cpu_us_per_event(), ceiling.map(Measured::cpu_us_per_event)),
            m.total_cpu_us_per_event(),
            ratio(
                m.total_cpu_us_per_event(),
                nchan.map(Measured::total_cpu_us_per_event),
            ),
            if m.delivered == 0 {
                f64::NAN
            } else {
                m.bytes_in as f64 / m.delivered as f64
            },
        );
    }
    out +=
        "\n`tungstenite` is a plain tokio-tungstenite server with default settings (128 KiB read \
            buffer) forwarding a `tokio::sync::broadcast`; push-ws runs its defaults (1 KiB read \
            buffer); `nchan-ws` is nginx 1.22 with Nchan 1.3.6, one worker process (`-2w`: two); \
            `raw` is the ceiling: the bare payload in a text frame written to each socket, no \
            framework. Each row is compared with Nchan and the ceiling at its own workers. Idle \
            cost = (RSS with N connections − RSS with none) / N, of the server's processes (Nchan: \
            its workers).\n";
    out
}

pub(crate) fn http_markdown(rows: &[Measured], rate: u64, seconds: u64) -> String {
    let mut out = format!(
        "## HTTP techniques, {} clients on one topic, {rate} events/s for {seconds} s (one server process per row{}{})\n\n\
         | server | delivered / expected / repeated | p50 ms | p99 ms | p99.9 ms | p99 vs Nchan | p99.9 vs Nchan | connect p50 / p99 ms | errors | idle KiB/client | idle vs Nchan | peak / steady RSS MiB | server CPU µs/event | user / kernel | CPU vs Nchan | CPU vs ceiling | server + clients CPU µs/event | vs Nchan | requests/event | bytes/event | requests/s | 304/s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        rows.first().map_or(0, |m| m.clients),
        WORKERS,
        runs_note(rows),
    );
    for m in rows {
        let per_event = |x: u64| {
            if m.delivered == 0 {
                f64::NAN
            } else {
                x as f64 / m.delivered as f64
            }
        };
        let (nchan, ceiling) = peers(rows, m.kind, false);
        out += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} / {:.1} | {} | {:.1} | {} | {:.1} / {:.1} | {:.2} | {} | {} | {} | {:.2} | {} | {:.3} | {:.0} | {} | {} |\n",
            m.kind,
            m.delivery_cell(),
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            m.p999_us / 1e3,
            ratio(m.p99_us, nchan.map(|p| p.p99_us)),
            ratio(m.p999_us, nchan.map(|p| p.p999_us)),
            m.connect_p50_ms,
            m.connect_p99_ms,
            m.errors,
            m.idle_kib_per_conn,
            ratio(m.idle_kib_per_conn, nchan.map(|p| p.idle_kib_per_conn)),
            m.peak_rss_mib,
            m.steady_rss_mib,
            m.cpu_us_per_event(),
            split(m),
            ratio(m.cpu_us_per_event(), nchan.map(Measured::cpu_us_per_event)),
            ratio(m.cpu_us_per_event(), ceiling.map(Measured::cpu_us_per_event)),
            m.total_cpu_us_per_event(),
            ratio(
                m.total_cpu_us_per_event(),
                nchan.map(Measured::total_cpu_us_per_event),
            ),
            per_event(m.requests),
            per_event(m.bytes_in),
            if m.kind.contains("poll") {
                fmt_num(m.requests_per_sec)
            } else {
                "–".to_owned()
            },
            m.not_modified_per_sec.map_or("–".to_owned(), fmt_num),
        );
    }
    out += "\n`nchan-*` is nginx 1.22 with Nchan 1.3.6 (Debian's packages), one worker process \
            (`-2w`: two), retention 1,000 messages, measured on its worker processes; each row is \
            compared with Nchan and the ceiling at its own workers; `axum-sse` is axum's `Sse` over \
            `tokio::sync::broadcast`; `raw` is the ceiling (no HTTP framework, no hub, the same \
            bytes written to each socket). Idle cost = (RSS with N clients − RSS with none) / N. \
            Ratios below 1 mean less memory or CPU than Nchan.\n";
    out
}

/// How many worker threads the rows' servers run: the rows with two say so in their names.
const WORKERS: &str = ", 1 worker thread unless named -2w";

/// ", median of N paired runs" when the rows are medians.
fn runs_note(rows: &[Measured]) -> String {
    match rows.first().map_or(1, |m| m.p99_runs_us.len()) {
        0 | 1 => String::new(),
        n => format!(", median of {n} paired runs"),
    }
}

/// What the machine is, for the tables and the chart: CPU model, cores, kernel.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, Linux {}", kernel.trim())
}
