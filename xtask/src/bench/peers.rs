//! The peers and the workloads of `cargo xtask bench` beyond the fixed-rate fan-out: Nchan
//! (nginx with Debian's `libnginx-mod-nchan`, configured by `xtask/nchan/nginx.conf`), the
//! flat-out fan-out versus N, and many topics; the tables with ratios against each peer and the
//! raw-socket ceiling; the SVG chart.

use super::http::{measure, Load, Measured};
use super::report::fmt_num;
use super::server::{ServerKind, SATURATION};

/// N idle connections per server: memory per connection = (RSS with N − RSS with 0) / N.
pub(crate) async fn idle(kinds: &[ServerKind], clients: usize) -> Result<Vec<Measured>, String> {
    let mut out = Vec::new();
    for &kind in kinds {
        let load = Load {
            ws: false,
            clients,
            topics: 1,
            rate: Some(1),
            seconds: 0,
        };
        out.push(super::http::measure_counting(kind, load).await?);
    }
    Ok(out)
}

/// The idle-memory table.
pub(crate) fn idle_markdown(rows: &[Measured]) -> String {
    let clients = rows.first().map_or(0, |m| m.clients);
    let mut out = format!(
        "## Idle memory: {clients} idle connections per server (one server process per row)\n\n\
         | server | KiB per connection | vs Nchan | vs hyper-bare | heap B/conn | heap blocks/conn | heap blocks by size | connect p50 / p99 ms | errors |\n\
         |---|---:|---:|---:|---:|---:|---|---:|---:|\n"
    );
    let get = |k: &str| find(rows, k, clients).map_or(f64::NAN, |m| m.idle_kib_per_conn);
    for m in rows {
        let nchan = match m.kind {
            "push-ws" | "tungstenite" | "nchan-ws" => get("nchan-ws"),
            "push-longpoll" | "nchan-longpoll" => get("nchan-longpoll"),
            _ => get("nchan-sse"),
        };
        let (bytes, by_size) = heap_cells(m);
        let blocks = m
            .heap
            .as_ref()
            .map_or("–".to_owned(), |h| format!("{:.1}", h.total_blocks()));
        out += &format!(
            "| {} | {:.1} | {} | {} | {bytes} | {blocks} | {by_size} | {:.1} / {:.1} | {} |\n",
            m.kind,
            m.idle_kib_per_conn,
            ratio(m.idle_kib_per_conn, nchan),
            ratio(m.idle_kib_per_conn, get("hyper-bare")),
            m.connect_p50_ms,
            m.connect_p99_ms,
            m.errors,
        );
    }
    out += "\nEach push technique is compared with its Nchan counterpart (SSE for streams, \
            long-poll, WebSocket), measured on nginx's one worker process. `hyper-bare` is what \
            hyper 1 itself holds per HTTP/1.1 connection with a response in flight: its read \
            buffer and its 8 KiB head buffer are fixed (`INIT_BUFFER_SIZE`), and no builder \
            setting lowers them.\n";
    out
}

/// The flat-out fan-out at each N in `sizes`.
pub(crate) async fn saturation(
    kinds: &[ServerKind],
    sizes: &[usize],
    seconds: u64,
) -> Result<Vec<Measured>, String> {
    let mut out = Vec::new();
    for &n in sizes {
        for &kind in kinds {
            let load = Load {
                ws: false,
                clients: n,
                topics: 1,
                rate: None,
                seconds,
            };
            out.push(measure(kind, load).await?);
        }
    }
    Ok(out)
}

/// N clients, each on its own topic; the publisher goes round the topics at `rate`.
pub(crate) async fn many_topics(
    kinds: &[ServerKind],
    clients: usize,
    rate: u64,
    seconds: u64,
) -> Result<Vec<Measured>, String> {
    let mut out = Vec::new();
    for &kind in kinds {
        let load = Load {
            ws: false,
            clients,
            topics: clients,
            rate: Some(rate),
            seconds,
        };
        out.push(super::http::measure_counting(kind, load).await?);
    }
    Ok(out)
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "–".to_owned()
    }
}

fn find<'a>(rows: &'a [Measured], kind: &str, clients: usize) -> Option<&'a Measured> {
    rows.iter().find(|m| m.kind == kind && m.clients == clients)
}

/// The flat-out table: per N, each server's delivered events/s and latency, with ratios
/// against Nchan, axum and the ceiling.
pub(crate) fn saturation_markdown(rows: &[Measured], seconds: u64) -> String {
    let mut out = format!(
        "## Fan-out flat out: N clients on one topic, one publisher back to back for {seconds} s (one server process per row, 1 worker thread)\n\n\
         | N | server | delivered/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/event | events per server CPU-second | vs nchan-sse | vs axum-sse | of the ceiling |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let capacity = |m: &Measured| 1e6 / m.cpu_us_per_event();
    for m in rows {
        let get = |k: &str| find(rows, k, m.clients).map_or(f64::NAN, capacity);
        out += &format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} |\n",
            m.clients,
            m.kind,
            fmt_num(m.delivered_per_sec),
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            m.p999_us / 1e3,
            m.cpu_us_per_event(),
            fmt_num(capacity(m)),
            ratio(capacity(m), get("nchan-sse")),
            ratio(capacity(m), get("axum-sse")),
            ratio(capacity(m), get("raw")),
        );
    }
    out += "\nThe publisher waits for each publish's answer; delivered/s counts events received \
            over all clients until the last arrived. On a 2-core machine the load generator shares \
            the cores with the server and is itself the bound on delivered/s, so the ratios are \
            taken on what the server would sustain on one core: delivered events per second of \
            server CPU time (user + system, from `/proc`). `raw` is the ceiling: a tokio server \
            writing the same pre-encoded `data:` bytes to every socket in turn, no HTTP framework, \
            no hub.\n";
    out
}

/// The many-topics table.
pub(crate) fn many_topics_markdown(rows: &[Measured], rate: u64, seconds: u64) -> String {
    let clients = rows.first().map_or(0, |m| m.clients);
    let mut out = format!(
        "## Many topics: {clients} clients each on its own topic, {rate} events/s round the topics for {seconds} s\n\n\
         | server | delivered / expected / repeated | p50 ms | p99 ms | p99.9 ms | idle KiB/client | idle vs nchan-sse | heap B/client | heap blocks by size | server CPU µs/event | CPU vs nchan-sse |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n"
    );
    let nchan = find(rows, "nchan-sse", clients);
    for m in rows {
        let (bytes, by_size) = heap_cells(m);
        out +=
            &format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {bytes} | {by_size} | {:.2} | {} |\n",
            m.kind,
            m.delivery_cell(),
            m.p50_us / 1e3,
            m.p99_us / 1e3,
            m.p999_us / 1e3,
            m.idle_kib_per_conn,
            ratio(m.idle_kib_per_conn, nchan.map_or(f64::NAN, |n| n.idle_kib_per_conn)),
            m.cpu_us_per_event(),
            ratio(m.cpu_us_per_event(), nchan.map_or(f64::NAN, Measured::cpu_us_per_event)),
        );
    }
    out +=
        "\nHeap per client is counted in the server process (Rust servers only) while the clients \
            are idle; against the one-topic idle table it gives what a topic with one subscriber \
            costs besides the connection.\n";
    out
}

/// The heap cells of a row: bytes per connection, and blocks by size class.
fn heap_cells(m: &Measured) -> (String, String) {
    m.heap.as_ref().map_or_else(
        || ("–".to_owned(), "–".to_owned()),
        |h| (format!("{:.0}", h.bytes), h.breakdown()),
    )
}

/// An SVG chart of the flat-out runs: delivered events/s and p99 latency versus N, one line per
/// server.
pub(crate) fn chart(
    rows: &[Measured],
    path: &std::path::Path,
    machine: &str,
) -> Result<(), String> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(
            &format!("Fan-out flat out, one topic ({machine})"),
            ("sans-serif", 18),
        )
        .map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(500);
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = rows.iter().map(|m| m.clients).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let (min_n, max_n) = (
        *sizes.first().ok_or("no rows")? as f64,
        *sizes.last().ok_or("no rows")? as f64,
    );
    let colors = [RED, BLUE, GREEN, MAGENTA, BLACK];
    for (area, title, value, unit) in [
        (
            &left,
            "delivered events/s",
            (|m: &Measured| m.delivered_per_sec) as fn(&Measured) -> f64,
            "events/s",
        ),
        (&right, "p99 latency", |m: &Measured| m.p99_us / 1e3, "ms"),
    ] {
        let max_y = rows.iter().map(value).fold(0.0f64, f64::max).max(1.0) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d((min_n * 0.8..max_n * 1.25).log_scale(), 0.0..max_y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("N clients")
            .y_desc(unit)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, kind) in SATURATION.iter().map(|k| k.name()).enumerate() {
            let color = colors[i % colors.len()];
            let points: Vec<(f64, f64)> = sizes
                .iter()
                .filter_map(|&n| find(rows, kind, n).map(|m| (n as f64, value(m))))
                .filter(|(_, y)| y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(kind)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
