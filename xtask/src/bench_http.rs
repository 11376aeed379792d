//! The HTTP part of `cargo xtask bench`: push-sse, push-stream, push-longpoll and push-poll
//! against axum's `Sse` over `tokio::sync::broadcast` (what a Rust user writes by hand today),
//! each measured in a fresh server process so that its memory can be read from `/proc`, all
//! driven by the same raw-socket load generator.
//!
//! Per technique: N clients on one topic (streams open, long-polls held, pollers kept alive);
//! memory per idle client = (RSS with N − RSS with 0) / N; then a publisher posts R events per
//! second for D seconds (each carrying its publish time) and the clients measure
//! publish-to-receive latency, requests made and bytes received. Pollers poll every second with
//! `If-None-Match`; after the publishing they poll back to back for a short flood, which measures
//! how many empty polls (`304`) per second the server answers.

use std::convert::Infallible;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The HTTP techniques measured, in table order.
pub(crate) const KINDS: [&str; 5] = [
    "push-sse",
    "push-stream",
    "axum-sse",
    "push-longpoll",
    "push-poll",
];

/// The WebSocket servers measured (at their own, larger N).
pub(crate) const WS_KINDS: [&str; 2] = ["push-ws", "tungstenite"];

/// How often a poller polls while events are published.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long pollers poll back to back, after the publishing, to measure `304`s per second.
const FLOOD: Duration = Duration::from_secs(2);

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
            "push" => serve_push(listener).await,
            "axum-sse" => serve_axum(listener).await,
            "tungstenite" => serve_tungstenite(listener).await,
            other => Err(format!("unknown server kind {other:?}")),
        }
    })
}

async fn serve_push(listener: TcpListener) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    use push_core::{Hub, NewEvent, Topic};
    let hub = Hub::memory();
    let sse = push_sse::Sse::new(hub.clone());
    let streamer = push_stream::Streamer::new(hub.clone());
    let longpoll = push_longpoll::LongPoll::new(hub.clone());
    let poller = push_poll::Poller::new(hub.clone());
    let ws = push_ws::Ws::new(hub.clone());
    let topic = Topic::new("t").expect("valid");
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (hub, topic, sse, streamer, longpoll, poller, ws) = (
            hub.clone(),
            topic.clone(),
            sse.clone(),
            streamer.clone(),
            longpoll.clone(),
            poller.clone(),
            ws.clone(),
        );
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let (hub, topic, sse, streamer, longpoll, poller, ws) = (
                    hub.clone(),
                    topic.clone(),
                    sse.clone(),
                    streamer.clone(),
                    longpoll.clone(),
                    poller.clone(),
                    ws.clone(),
                );
                async move {
                    let path = req.uri().path();
                    let res = if req.method() == http::Method::POST {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = hub.publish(&topic, NewEvent::new(body)).await;
                        http::Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync())
                    } else if path.starts_with("/sse/") {
                        sse.respond(&topic, &req).await.map(BodyExt::boxed_unsync)
                    } else if path.starts_with("/stream/") {
                        streamer
                            .respond(&topic, &req)
                            .await
                            .map(BodyExt::boxed_unsync)
                    } else if path.starts_with("/ws/") {
                        let topics = [topic.clone()];
                        ws.respond(req, &topics).map(BodyExt::boxed_unsync)
                    } else if path.starts_with("/longpoll/") {
                        longpoll
                            .respond(&topic, &req)
                            .await
                            .map(BodyExt::boxed_unsync)
                    } else {
                        poller
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
                .with_upgrades()
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

/// What a Rust user writes by hand with tokio-tungstenite, default settings: every subscriber
/// connection forwards a `tokio::sync::broadcast`; messages sent on `/pub` are broadcast.
async fn serve_tungstenite(listener: TcpListener) -> Result<(), String> {
    use futures_util::{SinkExt as _, StreamExt as _};
    let (tx, _) = tokio::sync::broadcast::channel::<tokio_tungstenite::tungstenite::Message>(1024);
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut path = String::new();
            #[allow(clippy::result_large_err)] // tungstenite's callback signature
            let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                            res| {
                path = req.uri().path().to_owned();
                Ok(res)
            };
            let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            if path == "/pub" {
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_text() {
                        let _ = tx.send(message);
                    }
                }
                return;
            }
            let mut rx = tx.subscribe();
            loop {
                tokio::select! {
                    message = rx.recv() => match message {
                        Ok(message) => if socket.send(message).await.is_err() { return },
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    },
                    incoming = socket.next() => if !matches!(incoming, Some(Ok(_))) { return },
                }
            }
        });
    }
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
    /// HTTP requests made while events were published (streams: one per client).
    pub(crate) requests: u64,
    /// Bytes the clients received while events were published, headers included.
    pub(crate) bytes_in: u64,
    pub(crate) requests_per_sec: f64,
    /// Server CPU time (user + system, clock ticks of 10 ms) from the end of the idle phase.
    pub(crate) cpu_ticks: u64,
    /// Pollers only: `304` answers per second during the flood.
    pub(crate) not_modified_per_sec: Option<f64>,
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

/// What one client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<f64>,
    requests: u64,
    bytes_in: u64,
    /// `304`s during the flood.
    flood_304: u64,
}

/// The phases of a run, told to every client through a `watch` channel.
const SETTLE: u8 = 0;
const FLOOD_PHASE: u8 = 1;
const STOP: u8 = 2;

type Phase = tokio::sync::watch::Receiver<u8>;
type Ready = std::sync::Arc<std::sync::atomic::AtomicUsize>;

fn count_ready(ready: &Ready) {
    ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

async fn stopped(phase: &mut Phase) {
    let _ = phase.wait_for(|p| *p >= STOP).await;
}

/// A streaming client (SSE or NDJSON): one request, then read until told to stop.
async fn stream_client(
    addr: std::net::SocketAddr,
    path: &'static str,
    ready: Ready,
    mut phase: Phase,
) -> Option<Seen> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n");
    stream.get_mut().write_all(req.as_bytes()).await.ok()?;
    let mut seen = Seen {
        requests: 1,
        ..Seen::default()
    };
    // Headers first.
    let mut line = String::new();
    loop {
        line.clear();
        seen.bytes_in += stream.read_line(&mut line).await.ok()? as u64;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    count_ready(&ready);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(n) if n > 0 => {
                    seen.bytes_in += n as u64;
                    buf.extend_from_slice(&chunk[..n]);
                    take_latencies(&mut buf, &mut seen.latencies_us);
                }
                _ => return Some(seen),
            },
            () = stopped(&mut phase) => return Some(seen),
        }
    }
}

/// One HTTP/1.1 answer read from a kept-alive connection: status, head+body size, body.
async fn read_answer(stream: &mut BufReader<TcpStream>) -> Option<(u16, u64, Vec<u8>)> {
    let mut line = String::new();
    let mut size = stream.read_line(&mut line).await.ok()? as u64;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    loop {
        line.clear();
        let n = stream.read_line(&mut line).await.ok()?;
        if n == 0 {
            return None;
        }
        size += n as u64;
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((status, size + length as u64, body))
}

/// Reads the latencies out of a batch answer and returns its `next` cursor.
fn take_batch(body: &[u8], now: u128, seen: &mut Seen) -> Option<String> {
    let batch = push_core::json::ReceivedBatch::parse(body).ok()?;
    for event in &batch.events {
        if let Some(sent) = std::str::from_utf8(&event.data)
            .ok()
            .and_then(|d| d.parse::<u128>().ok())
        {
            seen.latencies_us
                .push(now.saturating_sub(sent) as f64 / 1e3);
        }
    }
    Some(batch.next)
}

/// A long-polling client: one held request after another on a kept-alive connection.
async fn longpoll_client(
    addr: std::net::SocketAddr,
    ready: Ready,
    mut phase: Phase,
) -> Option<Seen> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    let mut seen = Seen::default();
    let mut since = String::new();
    let mut first = true;
    loop {
        let req = format!("GET /longpoll/t?timeout=30{since} HTTP/1.1\r\nHost: bench\r\n\r\n");
        stream.get_mut().write_all(req.as_bytes()).await.ok()?;
        if std::mem::take(&mut first) {
            count_ready(&ready);
        }
        let answer = tokio::select! {
            answer = read_answer(&mut stream) => answer,
            () = stopped(&mut phase) => return Some(seen),
        };
        let (status, size, body) = answer?;
        seen.requests += 1;
        seen.bytes_in += size;
        if status != 200 {
            return Some(seen);
        }
        since = format!("&since={}", take_batch(&body, now_nanos(), &mut seen)?);
    }
}

/// A polling client: every [`POLL_INTERVAL`] with `If-None-Match`; back to back in the flood.
async fn poll_client(addr: std::net::SocketAddr, ready: Ready, mut phase: Phase) -> Option<Seen> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    let mut seen = Seen::default();
    let mut since = String::new();
    let mut etag = String::new();
    let mut first = true;
    loop {
        let now_phase = *phase.borrow();
        if now_phase >= STOP {
            return Some(seen);
        }
        let flood = now_phase == FLOOD_PHASE;
        let req = format!("GET /poll/t{since} HTTP/1.1\r\nHost: bench\r\n{etag}\r\n");
        stream.get_mut().write_all(req.as_bytes()).await.ok()?;
        let (status, size, body) = read_answer(&mut stream).await?;
        if std::mem::take(&mut first) {
            count_ready(&ready);
        }
        match status {
            304 if flood => seen.flood_304 += 1,
            304 => {}
            200 => {
                let next = take_batch(&body, now_nanos(), &mut seen)?;
                etag = format!("If-None-Match: \"{next}\"\r\n");
                since = format!("?since={next}");
            }
            _ => return Some(seen),
        }
        if !flood {
            seen.requests += 1;
            seen.bytes_in += size;
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = phase.changed() => {}
            }
        }
    }
}

/// A WebSocket client with a small read buffer (the load generator's own memory matters at
/// 10,000 connections): reads every message until told to stop.
async fn ws_client(
    addr: std::net::SocketAddr,
    path: &'static str,
    ready: Ready,
    mut phase: Phase,
) -> Option<Seen> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}{path}"),
        stream,
        Some(config),
    )
    .await
    .ok()?;
    count_ready(&ready);
    let mut seen = Seen {
        requests: 1,
        ..Seen::default()
    };
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    let now = now_nanos();
                    // Payload plus the 2- or 4-byte frame header.
                    seen.bytes_in += text.len() as u64 + if text.len() < 126 { 2 } else { 4 };
                    let digits = text
                        .as_str()
                        .split_once("\"data\":\"")
                        .map_or(text.as_str(), |(_, rest)| rest.trim_end_matches(['"', '}']));
                    if let Ok(sent) = digits.parse::<u128>() {
                        seen.latencies_us.push(now.saturating_sub(sent) as f64 / 1e3);
                    }
                }
                Some(Ok(_)) => {}
                _ => return Some(seen),
            },
            () = stopped(&mut phase) => return Some(seen),
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
    let server = match kind {
        "axum-sse" | "tungstenite" => kind,
        _ => "push",
    };
    let mut command = tokio::process::Command::new(exe);
    command.args(["serve", server]);
    measure_server(kind, command, clients, rate, seconds).await
}

/// Reads a process's CPU time (user + system) in clock ticks from `/proc`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ")".
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Runs the workload against a server started by `command`, which prints its address first
/// (`ADDR`, or `listening on http://ADDR/`).
pub(crate) async fn measure_server(
    kind: &'static str,
    mut command: tokio::process::Command,
    clients: usize,
    rate: u64,
    seconds: u64,
) -> Result<Measured, String> {
    let mut child = command
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
        .trim_start_matches("listening on http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("{kind} printed {first:?}: {e}"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_empty = proc_kib(pid, "VmRSS:");
    let (phase_tx, phase) = tokio::sync::watch::channel(SETTLE);
    let ready: Ready = Ready::default();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (r, p) = (ready.clone(), phase.clone());
        tasks.push(match kind {
            "push-stream" => tokio::spawn(stream_client(addr, "/stream/t", r, p)),
            "push-longpoll" => tokio::spawn(longpoll_client(addr, r, p)),
            "push-poll" => tokio::spawn(poll_client(addr, r, p)),
            "push-ws" => tokio::spawn(ws_client(addr, "/ws/t", r, p)),
            "tungstenite" => tokio::spawn(ws_client(addr, "/t", r, p)),
            _ => tokio::spawn(stream_client(addr, "/sse/t", r, p)),
        });
    }
    // Every client connected (bounded), then a moment to settle, then the idle cost.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ready.load(std::sync::atomic::Ordering::Relaxed) < clients {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{kind}: only {} of {clients} clients connected within 60 s",
                ready.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = proc_kib(pid, "VmRSS:");
    let cpu_before = cpu_ticks(pid);
    let start = Instant::now();
    let total = rate * seconds;
    if kind == "tungstenite" {
        publish_ws(addr, rate, total).await?;
    } else {
        publish_http(kind, addr, rate, total, &mut child).await?;
    }
    let elapsed = start.elapsed();
    // Let the last events arrive; pollers then poll back to back for the flood.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_ticks(pid).saturating_sub(cpu_before);
    if kind == "push-poll" {
        phase_tx.send_replace(FLOOD_PHASE);
        tokio::time::sleep(FLOOD).await;
    }
    phase_tx.send_replace(STOP);
    let poll_span = start.elapsed().as_secs_f64()
        - if kind == "push-poll" {
            FLOOD.as_secs_f64()
        } else {
            0.0
        };
    let mut samples = Vec::new();
    let (mut requests, mut bytes_in, mut flood_304) = (0, 0, 0);
    for t in tasks {
        if let Ok(Some(seen)) = t.await {
            samples.extend(seen.latencies_us);
            requests += seen.requests;
            bytes_in += seen.bytes_in;
            flood_304 += seen.flood_304;
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
        requests,
        bytes_in,
        // Long-polls cycle while events are published; pollers poll from the start to the flood.
        requests_per_sec: requests as f64
            / match kind {
                "push-poll" => poll_span,
                _ => elapsed.as_secs_f64(),
            },
        cpu_ticks: cpu,
        not_modified_per_sec: (kind == "push-poll").then(|| flood_304 as f64 / FLOOD.as_secs_f64()),
    })
}

async fn publish_http(
    kind: &str,
    addr: std::net::SocketAddr,
    rate: u64,
    total: u64,
    child: &mut tokio::process::Child,
) -> Result<(), String> {
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
    Ok(())
}

/// The plain tokio-tungstenite server takes its publishes as messages on `/pub`.
async fn publish_ws(addr: std::net::SocketAddr, rate: u64, total: u64) -> Result<(), String> {
    use futures_util::SinkExt as _;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/pub"))
        .await
        .map_err(|e| format!("tungstenite: publisher: {e}"))?;
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(
                now_nanos().to_string(),
            ))
            .await
            .map_err(|e| format!("tungstenite: publish {i}: {e}"))?;
    }
    Ok(())
}
