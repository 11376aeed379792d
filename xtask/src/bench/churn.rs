//! The churn row: memory after many short connections (`Connection: close`, one after the
//! other), for the push servers and Nchan side by side. A server that keeps anything per
//! connection ever accepted grows here; one that frees a finished connection at once does not.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::server::{proc_kib, start, start_command, Server, ServerKind};

/// One server's figures.
#[derive(Debug)]
pub(crate) struct Churn {
    pub(crate) server: &'static str,
    pub(crate) connections: usize,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) per_sec: f64,
    pub(crate) errors: usize,
}

/// The request each connection sends: a route every server answers at once (404 where it has
/// none), so that only the connection itself is measured.
const REQUEST: &[u8] = b"GET /poll/churn HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

/// Runs `connections` sequential short connections against the showcase (the README's main
/// job, release build), the bench's push server and Nchan.
pub(crate) async fn measure(connections: usize) -> Result<Vec<Churn>, String> {
    let showcase = crate::release_showcase()?;
    let mut rows = Vec::new();
    for server in ["showcase", "push", "nchan"] {
        let started = match server {
            "showcase" => {
                let mut command = tokio::process::Command::new(&showcase);
                command.args(["--addr", "127.0.0.1:0", "--no-ticker"]);
                start_command(server, command).await?
            }
            "push" => start(ServerKind::PushSse).await?,
            _ => start(ServerKind::NchanSse).await?,
        };
        rows.push(run(server, &started, connections).await);
    }
    Ok(rows)
}

async fn run(server: &'static str, started: &Server, connections: usize) -> Churn {
    let (pid, addr) = (started.pid, started.addr);
    let warm_up = (connections / 10).max(100);
    let mut errors = 0;
    for _ in 0..warm_up {
        errors += usize::from(!one(addr).await);
    }
    let rss_before_kib = proc_kib(pid, "VmRSS:");
    let clock = Instant::now();
    for _ in 0..connections {
        errors += usize::from(!one(addr).await);
    }
    let per_sec = connections as f64 / clock.elapsed().as_secs_f64();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Churn {
        server,
        connections,
        rss_before_kib,
        rss_after_kib: proc_kib(pid, "VmRSS:"),
        per_sec,
        errors,
    }
}

/// One connection: the request, then read until the server closes. Whether an answer came.
async fn one(addr: std::net::SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if stream.write_all(REQUEST).await.is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut buf),
    )
    .await;
    matches!(read, Ok(Ok(_))) && buf.starts_with(b"HTTP/1.1 ")
}

/// The churn table.
pub(crate) fn markdown(rows: &[Churn]) -> String {
    let n = rows.first().map_or(0, |r| r.connections);
    let mut out = format!(
        "## Churn: {} sequential short connections (`Connection: close`) per server\n\n\
         | server | RSS before KiB | RSS after KiB | growth KiB | bytes per connection | connections/s | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        super::report::fmt_num(n as f64)
    );
    for r in rows {
        let growth = r.rss_after_kib.saturating_sub(r.rss_before_kib);
        out += &format!(
            "| {} | {} | {} | {} | {:.1} | {:.0} | {} |\n",
            r.server,
            r.rss_before_kib,
            r.rss_after_kib,
            growth,
            growth as f64 * 1024.0 / r.connections.max(1) as f64,
            r.per_sec,
            r.errors,
        );
    }
    out +=
        "\nRSS of the measured process (Nchan: its one nginx worker) after a warm-up of a tenth \
            as many connections, and again after all of them. `showcase` is the README's main job \
            on `server-kit`'s accept loop; `push` is the bench's own hyper server.\n";
    out
}

/// The rows as JSON.
pub(crate) fn json(rows: &[Churn]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "server": r.server,
                    "connections": r.connections,
                    "rss_before_kib": r.rss_before_kib,
                    "rss_after_kib": r.rss_after_kib,
                    "connections_per_sec": r.per_sec,
                    "errors": r.errors,
                })
            })
            .collect(),
    )
}
