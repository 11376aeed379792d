//! The HTTP part of `cargo xtask bench`: push-sse and push-stream against axum's `Sse` over
//! `tokio::sync::broadcast` (what a Rust user writes by hand today), each server in its own
//! process so that its memory can be read from `/proc`, all driven by the same load generator.
//!
//! Per server: N streaming clients on one topic; memory per idle connection =
//! (RSS with N − RSS with 0) / N; then a publisher posts R events per second for D seconds
//! (each carrying its publish time) and the clients measure publish-to-receive latency.

use std::convert::Infallible;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The servers compared, as `xtask serve KIND` starts them.
pub(crate) const KINDS: [&str; 3] = ["push-sse", "push-stream", "axum-sse"];

/// `xtask serve KIND`: a benchmark server on a free loopback port; prints its address first.
pub(crate) fn serve(args: &[String]) -> Result<(), String> {
    let kind = args.first().cloned().ok_or("serve needs a kind")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        println!("{}", listener.local_addr().map_err(|e| e.to_string())?);
        match kind.as_str() {
            "push-sse" | "push-stream" => serve_push(listener, kind == "push-sse").await,
            "axum-sse" => serve_axum(listener).await,
            other => Err(format!("unknown server kind {other:?}")),
        }
    })
}

async fn serve_push(listener: TcpListener, sse: bool) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    use push_core::{Hub, NewEvent, Topic};
    let hub = Hub::memory();
    let sse_endpoint = push_sse::Sse::new(hub.clone());
    let stream_endpoint = push_stream::Streamer::new(hub.clone());
    let topic = Topic::new("t").expect("valid");
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (hub, topic, sse_endpoint, stream_endpoint) = (
            hub.clone(),
            topic.clone(),
            sse_endpoint.clone(),
            stream_endpoint.clone(),
        );
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let (hub, topic, sse_endpoint, stream_endpoint) = (
                    hub.clone(),
                    topic.clone(),
                    sse_endpoint.clone(),
                    stream_endpoint.clone(),
                );
                async move {
                    let res = if req.method() == http::Method::POST {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = hub.publish(&topic, NewEvent::new(body)).await;
                        http::Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync())
                    } else if sse {
                        sse_endpoint
                            .respond(&topic, &req)
                            .await
                            .map(BodyExt::boxed_unsync)
                    } else {
                        stream_endpoint
                            .respond(&topic, &req)
                            .await
                            .map(BodyExt::boxed_unsync)
                    };
                    Ok::<_, Infallible>(res)
                }
            });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn serve_axum(listener: TcpListener) -> Result<(), String> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::routing::{get, post};
    use tokio_stream::StreamExt as _;
    let (tx, _) = tokio::sync::broadcast::channel::<String>(1024);
    let sub = tx.clone();
    let app = axum::Router::new()
        .route(
            "/sse/t",
            get(move || {
                let rx = sub.subscribe();
                async move {
                    let events = tokio_stream::wrappers::BroadcastStream::new(rx)
                        .filter_map(|m| m.ok())
                        .map(|m| Ok::<_, Infallible>(Event::default().data(m)));
                    Sse::new(events).keep_alive(KeepAlive::default())
                }
            }),
        )
        .route(
            "/topics/t",
            post(move |body: String| async move {
                let _ = tx.send(body);
                "ok"
            }),
        );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// What one server measured.
pub(crate) struct Measured {
    pub(crate) kind: &'static str,
    pub(crate) clients: usize,
    pub(crate) delivered_per_sec: f64,
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) idle_kib_per_conn: f64,
    pub(crate) peak_rss_mib: f64,
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Extracts every publish timestamp in `text` (`data: NANOS` for SSE, `"data":"NANOS"` for
/// NDJSON) and returns the latencies in microseconds; consumed bytes are removed.
fn take_latencies(buf: &mut Vec<u8>, out: &mut Vec<f64>) {
    let now = now_nanos();
    let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
        return;
    };
    let text = String::from_utf8_lossy(&buf[..=last_nl]).into_owned();
    for line in text.lines() {
        let digits = line
            .strip_prefix("data: ")
            .or_else(|| line.split_once("\"data\":\"").map(|(_, rest)| rest))
            .map(|rest| rest.trim_end_matches(['"', '}']));
        if let Some(sent) = digits.and_then(|d| d.parse::<u128>().ok()) {
            out.push(now.saturating_sub(sent) as f64 / 1e3);
        }
    }
    buf.drain(..=last_nl);
}

async fn client(
    addr: std::net::SocketAddr,
    path: &'static str,
    until: tokio::time::Instant,
) -> Option<Vec<f64>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n");
    stream.get_mut().write_all(req.as_bytes()).await.ok()?;
    // Headers first.
    let mut line = String::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    let mut samples = Vec::new();
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                buf.extend_from_slice(&chunk[..n]);
                take_latencies(&mut buf, &mut samples);
            }
            _ => return Some(samples),
        }
    }
}

/// Runs the workload against one server kind.
pub(crate) async fn measure(
    kind: &'static str,
    clients: usize,
    rate: u64,
    seconds: u64,
) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", kind])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {kind} server: {e}"))?;
    let pid = child.id().ok_or("server exited")?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut first)
        .await
        .map_err(|e| e.to_string())?;
    let addr: std::net::SocketAddr = first
        .trim()
        .parse()
        .map_err(|e| format!("{kind} printed {first:?}: {e}"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_empty = proc_kib(pid, "VmRSS:");
    let path = if kind == "push-stream" {
        "/stream/t"
    } else {
        "/sse/t"
    };
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds + 5);
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        tasks.push(tokio::spawn(client(addr, path, until)));
    }
    // Let every connection settle, then read the idle cost.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = proc_kib(pid, "VmRSS:");
    let publisher = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(publisher))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("publisher connection: {e}");
        }
    });
    let start = Instant::now();
    let total = rate * seconds;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let req = http::Request::post("/topics/t")
            .header("host", "bench")
            .body(http_body_util::Full::new(Bytes::from(
                now_nanos().to_string(),
            )))
            .map_err(|e| e.to_string())?;
        // The connection needs a poll to become idle again after the previous response.
        sender
            .ready()
            .await
            .map_err(|e| format!("{kind}: publish connection lost: {e}"))?;
        let res = match sender.send_request(req).await {
            Ok(res) => res,
            Err(e) => {
                let status = child.try_wait();
                return Err(format!(
                    "{kind}: publish {i} of {total} failed: {e:?} (server exit: {status:?})"
                ));
            }
        };
        let _ = http_body_util::BodyExt::collect(res.into_body()).await;
    }
    let elapsed = start.elapsed();
    let mut samples = Vec::new();
    for t in tasks {
        if let Ok(Some(s)) = t.await {
            samples.extend(s);
        }
    }
    let peak = proc_kib(pid, "VmHWM:");
    let _ = child.kill().await;
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Measured {
        kind,
        clients,
        delivered_per_sec: samples.len() as f64 / elapsed.as_secs_f64(),
        expected: total * clients as u64,
        delivered: samples.len() as u64,
        p50_us: at(0.50),
        p99_us: at(0.99),
        idle_kib_per_conn: rss_idle.saturating_sub(rss_empty) as f64 / clients as f64,
        peak_rss_mib: peak as f64 / 1024.0,
    })
}
