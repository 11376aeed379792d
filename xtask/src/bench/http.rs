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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::heap::PerConnection;
use super::server::{cpu_ticks, start, start_command, start_with, Process, Server, ServerKind};

/// How often a poller polls while events are published.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long pollers poll back to back, after the publishing, to measure `304`s per second.
const FLOOD: Duration = Duration::from_secs(2);

/// `xtask serve PROCESS`: a benchmark server on a free loopback port; prints its address first.
pub(crate) fn serve(process: Process) -> Result<(), String> {
    super::heap::serve_if_asked();
    let workers = process.workers();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        // A backlog as nginx's default (511) or larger, so that N clients connecting at once
        // are not held back by SYN retries on any server.
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .map_err(|e| e.to_string())?;
        let listener = socket.listen(1024).map_err(|e| e.to_string())?;
        println!("{}", listener.local_addr().map_err(|e| e.to_string())?);
        match process {
            Process::Push | Process::Push2w => serve_push(listener).await,
            Process::AxumSse => serve_axum(listener).await,
            Process::Tungstenite => serve_tungstenite(listener).await,
            Process::Raw | Process::Raw2w => serve_raw(listener).await,
            Process::HyperBare => serve_hyper_bare(listener).await,
        }
    })
}

/// Every push technique over one hub, as the bench's push server routes them.
#[derive(Clone)]
struct PushEndpoints {
    hub: push_core::Hub,
    sse: push_sse::Sse,
    streamer: push_stream::Streamer,
    longpoll: push_longpoll::LongPoll,
    poller: push_poll::Poller,
    ws: push_ws::Ws,
}

type PushBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A response with its body boxed: what every route answers.
fn boxed<B>(res: http::Response<B>) -> http::Response<PushBody>
where
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    res.map(http_body_util::BodyExt::boxed_unsync)
}

/// The future of one push request, boxed: see [`PushEndpoints::route`].
type Routed = std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<PushBody>> + Send>>;

impl PushEndpoints {
    fn new() -> Self {
        let hub = push_core::Hub::memory();
        Self {
            sse: push_sse::Sse::new(hub.clone()),
            streamer: push_stream::Streamer::new(hub.clone()),
            longpoll: push_longpoll::LongPoll::new(hub.clone()),
            poller: push_poll::Poller::new(hub.clone()),
            ws: push_ws::Ws::new(hub.clone()),
            hub,
        }
    }

    /// The answer to `req`, as a boxed future of the one technique it asks for.
    ///
    /// hyper allocates a connection's service future once and keeps that allocation, emptied,
    /// for the connection's life: a future inlining every technique (and the publish path)
    /// would be resident at its largest size (2.5 KiB) on every held stream. Boxed per
    /// request, hyper keeps a pointer, and each request's state is freed when it is answered.
    fn route(&self, req: http::Request<hyper::body::Incoming>) -> Routed {
        use futures_util::FutureExt as _;
        use http_body_util::{BodyExt, Full};
        let path = req.uri().path();
        let name = path.rsplit('/').next().unwrap_or_default();
        let Ok(topic) = push_core::Topic::new(name) else {
            let mut res =
                http::Response::new(Full::new(Bytes::from_static(b"bad topic")).boxed_unsync());
            *res.status_mut() = http::StatusCode::BAD_REQUEST;
            return Box::pin(std::future::ready(res));
        };
        if req.method() == http::Method::POST {
            let hub = self.hub.clone();
            return Box::pin(async move {
                let body = req.into_body().collect().await;
                let body = body.map(|b| b.to_bytes()).unwrap_or_default();
                let _ = hub.publish(&topic, push_core::NewEvent::new(body)).await;
                http::Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync())
            });
        }
        // Each technique's answer is a `'static` future of its own: no handle is cloned.
        match path.split('/').nth(1).unwrap_or_default() {
            "sse" => Box::pin(self.sse.respond(&topic, req).map(boxed)),
            "stream" => Box::pin(self.streamer.respond(&topic, req).map(boxed)),
            "ws" => Box::pin(self.ws.respond(&topic, req).map(boxed)),
            "longpoll" => Box::pin(self.longpoll.respond(&topic, req).map(boxed)),
            _ => Box::pin(self.poller.respond(&topic, req).map(boxed)),
        }
    }
}

async fn serve_push(listener: TcpListener) -> Result<(), String> {
    // One `Arc` per connection's service rather than a copy of every endpoint's handle.
    let endpoints = std::sync::Arc::new(PushEndpoints::new());
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let endpoints = endpoints.clone();
        let service = hyper::service::service_fn(move |req| {
            let routed = endpoints.route(req);
            async move { Ok::<_, Infallible>(routed.await) }
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
    use axum::extract::Path;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::routing::{get, post};
    use tokio_stream::StreamExt as _;
    // One broadcast channel per topic, as a hand-written server would keep them.
    type Topics = std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, tokio::sync::broadcast::Sender<String>>>,
    >;
    let channel = || tokio::sync::broadcast::channel::<String>(1024).0;
    let topics: Topics = Topics::default();
    let sub = topics.clone();
    let app = axum::Router::new()
        .route(
            "/sse/{topic}",
            get(move |Path(topic): Path<String>| {
                let rx = sub
                    .lock()
                    .expect("lock")
                    .entry(topic)
                    .or_insert_with(channel)
                    .subscribe();
                async move {
                    let events = tokio_stream::wrappers::BroadcastStream::new(rx)
                        .filter_map(|m| m.ok())
                        .map(|m| Ok::<_, Infallible>(Event::default().data(m)));
                    Sse::new(events).keep_alive(KeepAlive::default())
                }
            }),
        )
        .route(
            "/topics/{topic}",
            post(move |Path(topic): Path<String>, body: String| async move {
                let tx = topics
                    .lock()
                    .expect("lock")
                    .entry(topic)
                    .or_insert_with(channel)
                    .clone();
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

/// The ceiling: no HTTP framework, no hub. Subscribers send any request head and get a
/// minimal `200` head; a `POST /topics/{topic}` (on a kept-alive connection) is encoded once as
/// `data: BODY` and written, as the same bytes, to every socket of its topic in turn.
/// The subscribers of each topic: SSE clients and WebSocket clients.
#[derive(Default)]
struct RawTopic {
    sse: Vec<tokio::net::tcp::OwnedWriteHalf>,
    ws: Vec<tokio::net::tcp::OwnedWriteHalf>,
}
type RawSockets = std::sync::Arc<tokio::sync::Mutex<std::collections::HashMap<String, RawTopic>>>;
/// Writes `frame` to each socket of `list`, keeping those that took it.
async fn raw_write_each(list: &mut Vec<tokio::net::tcp::OwnedWriteHalf>, frame: &[u8]) {
    let mut kept = Vec::with_capacity(list.len());
    for mut socket in list.drain(..) {
        if socket.write_all(frame).await.is_ok() {
            kept.push(socket);
        }
    }
    *list = kept;
}

async fn serve_raw(listener: TcpListener) -> Result<(), String> {
    let sockets = RawSockets::default();
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let sockets = sockets.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            loop {
                let Some((head, length, ws_key)) = raw_head(&mut read).await else {
                    return;
                };
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let topic = path.rsplit('/').next().unwrap_or_default().to_owned();
                if method != "POST" {
                    let answer = match &ws_key {
                        Some(key) => format!(
                            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
                             connection: upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
                            tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                                key.as_bytes()
                            )
                        ),
                        None => "HTTP/1.1 200 OK\r\n\r\n".to_owned(),
                    };
                    if write.write_all(answer.as_bytes()).await.is_ok() {
                        let mut map = sockets.lock().await;
                        let entry = map.entry(topic).or_default();
                        if ws_key.is_some() {
                            entry.ws.push(write);
                        } else {
                            entry.sse.push(write);
                        }
                    }
                    // Keep the read half until the client goes; nothing else is read.
                    let mut sink = [0u8; 64];
                    while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
                let mut body = vec![0; length];
                if read.read_exact(&mut body).await.is_err() {
                    return;
                }
                let mut frame = Vec::with_capacity(body.len() + 8);
                frame.extend_from_slice(b"data: ");
                frame.extend_from_slice(&body);
                frame.extend_from_slice(b"\n\n");
                let ws_frame = raw_ws_frame(&body);
                let mut map = sockets.lock().await;
                if let Some(topic) = map.get_mut(&topic) {
                    raw_write_each(&mut topic.sse, &frame).await;
                    raw_write_each(&mut topic.ws, &ws_frame).await;
                }
                drop(map);
                if write
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// The raw server's request head: its first line, `Content-Length` and `Sec-WebSocket-Key`;
/// `None` when the client went.
async fn raw_head(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<(String, usize, Option<String>)> {
    let (mut head, mut length, mut ws_key) = (String::new(), 0usize, None);
    loop {
        let mut line = String::new();
        match read.read_line(&mut line).await {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        if line == "\r\n" {
            return Some((head, length, ws_key));
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                ws_key = Some(value.trim().to_owned());
            }
        }
        if head.is_empty() {
            head = line;
        }
    }
}

/// An unmasked text frame (RFC 6455) of `payload`, as a server sends it.
fn raw_ws_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match u16::try_from(payload.len()) {
        Ok(n) if n < 126 => frame.push(n as u8),
        Ok(n) => {
            frame.push(126);
            frame.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            frame.push(127);
            frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// The floor of any technique built on hyper: HTTP/1.1 connections whose response body never
/// yields (publishes are answered and dropped).
async fn serve_hyper_bare(listener: TcpListener) -> Result<(), String> {
    use http_body_util::{BodyExt, Full, StreamBody};
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let service =
            hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let res = if req.method() == http::Method::POST {
                    http::Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync())
                } else {
                    let never = futures_util::stream::pending::<
                        Result<hyper::body::Frame<Bytes>, Infallible>,
                    >();
                    http::Response::new(StreamBody::new(never).boxed_unsync())
                };
                Ok::<_, Infallible>(res)
            });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What one server measured.
pub(crate) struct Measured {
    pub(crate) kind: &'static str,
    pub(crate) clients: usize,
    /// Topics the clients were spread over (one per client in the many-topics workload).
    pub(crate) topics: usize,
    /// Whether the publisher published back to back instead of at a fixed rate.
    pub(crate) flat_out: bool,
    pub(crate) published: u64,
    pub(crate) delivered_per_sec: f64,
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    /// Time from opening a client's socket to its first response head (or its upgrade).
    pub(crate) connect_p50_ms: f64,
    pub(crate) connect_p99_ms: f64,
    /// Clients that could not connect or whose connection failed.
    pub(crate) errors: u64,
    /// Events a client received again, or after a later one: not counted in `delivered`.
    pub(crate) repeated: u64,
    pub(crate) idle_kib_per_conn: f64,
    pub(crate) peak_rss_mib: f64,
    /// RSS right after the publishing phase.
    pub(crate) steady_rss_mib: f64,
    /// HTTP requests made while events were published (streams: one per client).
    pub(crate) requests: u64,
    /// Bytes the clients received while events were published, headers included.
    pub(crate) bytes_in: u64,
    pub(crate) requests_per_sec: f64,
    /// Server CPU time (user + system, clock ticks of 10 ms) from the end of the idle phase.
    pub(crate) cpu_ticks: u64,
    /// The part of `cpu_ticks` in user space.
    pub(crate) user_ticks: u64,
    /// The part in the kernel (on loopback, sends and the receiving side's TCP input); its
    /// own median, so that it is a run's figure.
    pub(crate) kernel_ticks: u64,
    /// The load generator's CPU time (this process) over the same span. On loopback a send
    /// also runs the receiver's TCP input, and waking a client that sleeps costs the sender,
    /// so how the work splits between server and clients depends on their timing; the sum
    /// does not.
    pub(crate) clients_cpu_ticks: u64,
    /// Pollers only: `304` answers per second during the flood.
    pub(crate) not_modified_per_sec: Option<f64>,
    /// What each idle client holds on the server's heap, when it ran counting.
    pub(crate) heap: Option<PerConnection>,
    /// The p99 of each run this row is the median of (one run: its own).
    pub(crate) p99_runs_us: Vec<f64>,
}

impl Measured {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "server": self.kind,
            "clients": self.clients,
            "topics": self.topics,
            "flat_out": self.flat_out,
            "published": self.published,
            "delivered_per_sec": self.delivered_per_sec,
            "delivered": self.delivered,
            "expected": self.expected,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "connect_p50_ms": self.connect_p50_ms,
            "connect_p99_ms": self.connect_p99_ms,
            "errors": self.errors,
            "repeated": self.repeated,
            "idle_kib_per_conn": self.idle_kib_per_conn,
            "peak_rss_mib": self.peak_rss_mib,
            "steady_rss_mib": self.steady_rss_mib,
            "requests": self.requests,
            "bytes_in": self.bytes_in,
            "requests_per_sec": self.requests_per_sec,
            "cpu_seconds": self.cpu_ticks as f64 / 100.0,
            "user_cpu_seconds": self.user_ticks as f64 / 100.0,
            "kernel_cpu_seconds": self.kernel_ticks as f64 / 100.0,
            "clients_cpu_seconds": self.clients_cpu_ticks as f64 / 100.0,
            "not_modified_per_sec": self.not_modified_per_sec,
            "heap_per_conn": self.heap.as_ref().map(PerConnection::json),
            "runs": self.p99_runs_us.len(),
            "p99_each_run_us": self.p99_runs_us,
        })
    }

    /// One row from several runs of the same server and load: the median of each figure,
    /// the fewest events delivered and the most errors and repeats of any run (a loss in one
    /// run is not hidden by the others).
    pub(crate) fn median(mut runs: Vec<Measured>) -> Option<Measured> {
        fn mid(mut values: Vec<f64>) -> f64 {
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
        }
        let f = |runs: &[Measured], get: fn(&Measured) -> f64| mid(runs.iter().map(get).collect());
        let u = |runs: &[Measured], get: fn(&Measured) -> u64| {
            mid(runs.iter().map(|m| get(m) as f64).collect()) as u64
        };
        let p99_runs_us = runs.iter().map(|m| m.p99_us).collect();
        let row = Measured {
            kind: runs.first()?.kind,
            clients: runs[0].clients,
            topics: runs[0].topics,
            flat_out: runs[0].flat_out,
            published: runs.iter().map(|m| m.published).min().unwrap_or(0),
            delivered_per_sec: f(&runs, |m| m.delivered_per_sec),
            expected: runs.iter().map(|m| m.expected).min().unwrap_or(0),
            delivered: runs.iter().map(|m| m.delivered).min().unwrap_or(0),
            p50_us: f(&runs, |m| m.p50_us),
            p99_us: f(&runs, |m| m.p99_us),
            p999_us: f(&runs, |m| m.p999_us),
            connect_p50_ms: f(&runs, |m| m.connect_p50_ms),
            connect_p99_ms: f(&runs, |m| m.connect_p99_ms),
            errors: runs.iter().map(|m| m.errors).max().unwrap_or(0),
            repeated: runs.iter().map(|m| m.repeated).max().unwrap_or(0),
            idle_kib_per_conn: f(&runs, |m| m.idle_kib_per_conn),
            peak_rss_mib: f(&runs, |m| m.peak_rss_mib),
            steady_rss_mib: f(&runs, |m| m.steady_rss_mib),
            requests: u(&runs, |m| m.requests),
            bytes_in: u(&runs, |m| m.bytes_in),
            requests_per_sec: f(&runs, |m| m.requests_per_sec),
            cpu_ticks: u(&runs, |m| m.cpu_ticks),
            user_ticks: u(&runs, |m| m.user_ticks),
            kernel_ticks: u(&runs, |m| m.kernel_ticks),
            clients_cpu_ticks: u(&runs, |m| m.clients_cpu_ticks),
            not_modified_per_sec: runs[0]
                .not_modified_per_sec
                .map(|_| f(&runs, |m| m.not_modified_per_sec.unwrap_or(f64::NAN))),
            heap: runs.pop().and_then(|m| m.heap),
            p99_runs_us,
        };
        Some(row)
    }

    /// The `delivered / expected / repeated` cell of the tables.
    pub(crate) fn delivery_cell(&self) -> String {
        format!("{} / {} / {}", self.delivered, self.expected, self.repeated)
    }

    /// Server and load-generator CPU microseconds per delivered event.
    pub(crate) fn total_cpu_us_per_event(&self) -> f64 {
        if self.delivered == 0 {
            f64::NAN
        } else {
            (self.cpu_ticks + self.clients_cpu_ticks) as f64 * 10_000.0 / self.delivered as f64
        }
    }

    /// Server CPU microseconds per delivered event in user space and in the kernel.
    pub(crate) fn split_us_per_event(&self) -> (f64, f64) {
        if self.delivered == 0 {
            (f64::NAN, f64::NAN)
        } else {
            let per = |ticks: u64| ticks as f64 * 10_000.0 / self.delivered as f64;
            (per(self.user_ticks), per(self.kernel_ticks))
        }
    }

    /// Server CPU microseconds per delivered event.
    pub(crate) fn cpu_us_per_event(&self) -> f64 {
        if self.delivered == 0 {
            f64::NAN
        } else {
            self.cpu_ticks as f64 * 10_000.0 / self.delivered as f64
        }
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A publish's payload: the time in nanoseconds, and greater than every earlier stamp of this
/// process even if the clock steps back, so a client that receives one not greater than the
/// last it received on its topic has a repeat (or a reordering).
fn stamp() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(now_nanos()).unwrap_or(u64::MAX);
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(prev + 1).to_string()
}

/// Latency samples of one run, shared by every client: each buffers a few and records them in
/// one HdrHistogram (1 µs to 10 min, 3 significant digits).
#[derive(Clone)]
struct Latencies(std::sync::Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>);

impl Latencies {
    /// How many samples, and the latencies at `qs` (µs; NaN without samples).
    fn quantiles<const N: usize>(&self, qs: [f64; N]) -> (u64, [f64; N]) {
        let histogram = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = histogram.len();
        let at = |q: f64| {
            if n == 0 {
                f64::NAN
            } else {
                histogram.value_at_quantile(q) as f64
            }
        };
        (n, qs.map(at))
    }
    fn new() -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(
            hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        )))
    }

    fn record(&self, samples: &mut Vec<u64>) {
        let mut h = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in samples.drain(..) {
            h.saturating_record(s.max(1));
        }
    }
}

/// What one client saw.
struct Seen {
    /// Publish-to-receive latencies (µs) not yet recorded in the shared histogram.
    pending: Vec<u64>,
    latencies: Latencies,
    requests: u64,
    bytes_in: u64,
    /// `304`s during the flood.
    flood_304: u64,
    last_receipt: Option<Instant>,
    connect_us: u64,
    /// The newest publish stamp received (see [`stamp`]).
    last_sent: u128,
    /// Events received again or after a later one.
    repeated: u64,
}

impl Seen {
    fn new(latencies: &Latencies) -> Self {
        Self {
            pending: Vec::with_capacity(64),
            latencies: latencies.clone(),
            requests: 0,
            bytes_in: 0,
            flood_304: 0,
            last_receipt: None,
            connect_us: 0,
            last_sent: 0,
            repeated: 0,
        }
    }

    /// One event received at `now` that was published at `sent`.
    fn sample(&mut self, now: u128, sent: u128) {
        if sent <= self.last_sent {
            self.repeated += 1;
            return;
        }
        self.last_sent = sent;
        self.pending
            .push(u64::try_from(now.saturating_sub(sent) / 1000).unwrap_or(u64::MAX));
        self.last_receipt = Some(Instant::now());
        if self.pending.len() >= 64 {
            self.latencies.record(&mut self.pending);
        }
    }

    fn finish(mut self) -> Self {
        self.latencies.record(&mut self.pending);
        self
    }
}

/// Extracts every publish timestamp in `buf` (`data: NANOS` for SSE, `"data":"NANOS"` for
/// NDJSON, a bare `NANOS` line for Nchan's chunked stream) and records the latencies; consumed
/// bytes are removed.
fn take_latencies(buf: &mut Vec<u8>, seen: &mut Seen) {
    let now = now_nanos();
    let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
        return;
    };
    let text = String::from_utf8_lossy(&buf[..=last_nl]).into_owned();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let digits = line
            .strip_prefix("data: ")
            .or_else(|| line.split_once("\"data\":\"").map(|(_, rest)| rest))
            .map(|rest| rest.trim_end_matches(['"', '}']))
            .or_else(|| {
                (line.len() >= 16 && line.bytes().all(|b| b.is_ascii_digit())).then_some(line)
            });
        if let Some(sent) = digits.and_then(|d| d.parse::<u128>().ok()) {
            seen.sample(now, sent);
        }
    }
    buf.drain(..=last_nl);
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

/// Connects with Nagle off; returns when the socket was opened, for the connect time.
async fn connect(addr: std::net::SocketAddr) -> Option<(Instant, TcpStream)> {
    let opened = Instant::now();
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    Some((opened, stream))
}

/// Everything a client task needs.
struct Client {
    addr: std::net::SocketAddr,
    path: String,
    ready: Ready,
    phase: Phase,
    seen: Seen,
}

/// A streaming client (SSE, NDJSON or Nchan's chunked stream): one request with `headers`,
/// then read until told to stop.
async fn stream_client(c: Client, headers: &'static str) -> Option<Seen> {
    let Client {
        addr,
        path,
        ready,
        mut phase,
        mut seen,
    } = c;
    let (opened, stream) = connect(addr).await?;
    let mut stream = BufReader::new(stream);
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}\r\n");
    stream.get_mut().write_all(req.as_bytes()).await.ok()?;
    seen.requests = 1;
    // Headers first.
    let mut line = String::new();
    loop {
        line.clear();
        seen.bytes_in += stream.read_line(&mut line).await.ok()? as u64;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    seen.connect_us = opened.elapsed().as_micros() as u64;
    count_ready(&ready);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(n) if n > 0 => {
                    seen.bytes_in += n as u64;
                    buf.extend_from_slice(&chunk[..n]);
                    take_latencies(&mut buf, &mut seen);
                }
                _ => return Some(seen.finish()),
            },
            () = stopped(&mut phase) => return Some(seen.finish()),
        }
    }
}

/// One HTTP/1.1 answer read from a kept-alive connection: status, head+body size, the
/// `Last-Modified` and `Etag` headers (Nchan's long-poll cursor), body.
async fn read_answer(
    stream: &mut BufReader<TcpStream>,
) -> Option<(u16, u64, Option<(String, String)>, Vec<u8>)> {
    let mut line = String::new();
    let mut size = stream.read_line(&mut line).await.ok()? as u64;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    let (mut modified, mut etag) = (None, None);
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
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok()?;
            } else if name.eq_ignore_ascii_case("last-modified") {
                modified = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("etag") {
                etag = Some(value.to_owned());
            }
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((status, size + length as u64, modified.zip(etag), body))
}

/// Reads the latencies out of a batch answer and returns its `next` cursor.
fn take_batch(body: &[u8], now: u128, seen: &mut Seen) -> Option<String> {
    let batch = push_http::json::ReceivedBatch::parse(body).ok()?;
    for event in &batch.events {
        if let Some(sent) = std::str::from_utf8(&event.data)
            .ok()
            .and_then(|d| d.parse::<u128>().ok())
        {
            seen.sample(now, sent);
        }
    }
    Some(batch.next)
}

/// A long-polling client: one held request after another on a kept-alive connection. push's
/// protocol carries the cursor as `?since=`; Nchan's (`nchan`) as `If-Modified-Since` and
/// `If-None-Match` from the previous answer, one message per answer.
async fn longpoll_client(c: Client, nchan: bool) -> Option<Seen> {
    let Client {
        addr,
        path,
        ready,
        mut phase,
        mut seen,
    } = c;
    let (opened, stream) = connect(addr).await?;
    let mut stream = BufReader::new(stream);
    let mut since = String::new();
    let mut first = true;
    loop {
        let req = if nchan {
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{since}\r\n")
        } else {
            format!("GET {path}?timeout=30{since} HTTP/1.1\r\nHost: bench\r\n\r\n")
        };
        stream.get_mut().write_all(req.as_bytes()).await.ok()?;
        if std::mem::take(&mut first) {
            seen.connect_us = opened.elapsed().as_micros() as u64;
            count_ready(&ready);
        }
        let answer = tokio::select! {
            answer = read_answer(&mut stream) => answer,
            () = stopped(&mut phase) => return Some(seen.finish()),
        };
        let (status, size, cursor, body) = answer?;
        seen.requests += 1;
        seen.bytes_in += size;
        if nchan {
            // 304/408: nothing new within Nchan's timeout; ask again with the same cursor.
            if status == 200 {
                if let Some(sent) = std::str::from_utf8(&body)
                    .ok()
                    .and_then(|d| d.trim().parse::<u128>().ok())
                {
                    seen.sample(now_nanos(), sent);
                }
                let (modified, etag) = cursor?;
                since = format!("If-Modified-Since: {modified}\r\nIf-None-Match: {etag}\r\n");
            } else if status != 304 && status != 408 {
                return Some(seen.finish());
            }
            continue;
        }
        if status != 200 {
            return Some(seen.finish());
        }
        since = format!("&since={}", take_batch(&body, now_nanos(), &mut seen)?);
    }
}

/// A polling client: every [`POLL_INTERVAL`] with `If-None-Match`; back to back in the flood.
async fn poll_client(c: Client) -> Option<Seen> {
    let Client {
        addr,
        path,
        ready,
        mut phase,
        mut seen,
    } = c;
    let (opened, stream) = connect(addr).await?;
    let mut stream = BufReader::new(stream);
    let mut since = String::new();
    let mut etag = String::new();
    let mut first = true;
    loop {
        let now_phase = *phase.borrow();
        if now_phase >= STOP {
            return Some(seen.finish());
        }
        let flood = now_phase == FLOOD_PHASE;
        let req = format!("GET {path}{since} HTTP/1.1\r\nHost: bench\r\n{etag}\r\n");
        stream.get_mut().write_all(req.as_bytes()).await.ok()?;
        let (status, size, _, body) = read_answer(&mut stream).await?;
        if std::mem::take(&mut first) {
            seen.connect_us = opened.elapsed().as_micros() as u64;
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
            _ => return Some(seen.finish()),
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
/// 10,000 connections): reads every message until told to stop. The payload is push-ws's JSON
/// envelope or, for the other servers, the bare timestamp.
async fn ws_client(c: Client) -> Option<Seen> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let Client {
        addr,
        path,
        ready,
        mut phase,
        mut seen,
    } = c;
    let (opened, stream) = connect(addr).await?;
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}{path}"),
        stream,
        Some(config),
    )
    .await
    .ok()?;
    seen.connect_us = opened.elapsed().as_micros() as u64;
    count_ready(&ready);
    seen.requests = 1;
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
                    if let Ok(sent) = digits.trim().parse::<u128>() {
                        seen.sample(now, sent);
                    }
                }
                Some(Ok(_)) => {}
                _ => return Some(seen.finish()),
            },
            () = stopped(&mut phase) => return Some(seen.finish()),
        }
    }
}

/// The workload of one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) clients: usize,
    /// Clients are spread over this many topics (client `i` on topic `t{i % topics}`), and the
    /// publisher goes round them.
    pub(crate) topics: usize,
    /// Events per second, or `None` to publish back to back (one request at a time).
    pub(crate) rate: Option<u64>,
    pub(crate) seconds: u64,
    /// The raw ceiling's clients speak WebSocket (the other kinds speak one protocol each).
    pub(crate) ws: bool,
}

impl Load {
    pub(crate) fn fan_out(clients: usize, rate: u64, seconds: u64) -> Self {
        Self {
            clients,
            topics: 1,
            rate: Some(rate),
            seconds,
            ws: false,
        }
    }
}

/// Runs the workload against one server kind, in a fresh server process.
pub(crate) async fn measure(kind: ServerKind, load: Load) -> Result<Measured, String> {
    let server = start(kind).await?;
    measure_load(kind, server, load).await
}

/// [`measure`] with the server on the counting allocator: the row gets its heap per client.
pub(crate) async fn measure_counting(kind: ServerKind, load: Load) -> Result<Measured, String> {
    let server = start_with(kind, true).await?;
    measure_load(kind, server, load).await
}

/// Runs the fixed-rate fan-out against a server started by `command`, which prints its address
/// first.
pub(crate) async fn measure_server(
    kind: ServerKind,
    command: tokio::process::Command,
    clients: usize,
    rate: u64,
    seconds: u64,
) -> Result<Measured, String> {
    let server = start_command(kind.name(), command).await?;
    measure_load(kind, server, Load::fan_out(clients, rate, seconds)).await
}

/// The client task for `kind` on topic `topic`; `ws` for the ceiling's WebSocket clients.
fn spawn_client(kind: ServerKind, ws: bool, c: Client) -> tokio::task::JoinHandle<Option<Seen>> {
    const SSE: &str = "Accept: text/event-stream\r\n";
    let topic = c.path.clone();
    let c = |prefix: &str| Client {
        path: format!("{prefix}{topic}"),
        ..c
    };
    match kind.base() {
        ServerKind::PushStream => tokio::spawn(stream_client(c("/stream/"), "")),
        ServerKind::NchanStream => tokio::spawn(stream_client(c("/stream/"), "TE: chunked\r\n")),
        ServerKind::PushLongpoll => tokio::spawn(longpoll_client(c("/longpoll/"), false)),
        ServerKind::NchanLongpoll => tokio::spawn(longpoll_client(c("/longpoll/"), true)),
        ServerKind::PushPoll => tokio::spawn(poll_client(c("/poll/"))),
        ServerKind::PushWs | ServerKind::NchanWs => tokio::spawn(ws_client(c("/ws/"))),
        // The ceiling serves WebSocket clients too: a fan-out of WebSocket rows has it.
        ServerKind::Raw if ws => tokio::spawn(ws_client(c("/ws/"))),
        ServerKind::Tungstenite => tokio::spawn(ws_client(c("/"))),
        // Every kind is its base here.
        ServerKind::PushSse2w
        | ServerKind::PushStream2w
        | ServerKind::PushLongpoll2w
        | ServerKind::PushWs2w
        | ServerKind::NchanSse2w
        | ServerKind::NchanStream2w
        | ServerKind::NchanLongpoll2w
        | ServerKind::NchanWs2w
        | ServerKind::Raw2w
        | ServerKind::PushSse
        | ServerKind::NchanSse
        | ServerKind::AxumSse
        | ServerKind::Raw
        | ServerKind::HyperBare => tokio::spawn(stream_client(c("/sse/"), SSE)),
    }
}

/// The clients of one run, connected, and what the server held before and after.
struct Connected {
    tasks: Vec<tokio::task::JoinHandle<Option<Seen>>>,
    phase: tokio::sync::watch::Sender<u8>,
    latencies: Latencies,
    rss_empty: u64,
    rss_idle: u64,
    heap: Option<PerConnection>,
}

/// Starts every client and waits (bounded) until all are connected, then a moment to settle.
async fn connect_clients(
    kind: ServerKind,
    server: &mut Server,
    load: &Load,
) -> Result<Connected, String> {
    let addr = server.addr;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_empty = server.kib("VmRSS:");
    let heap_empty = server.heap().await;
    let (phase_tx, phase) = tokio::sync::watch::channel(SETTLE);
    let ready: Ready = Ready::default();
    let latencies = Latencies::new();
    let tasks = (0..load.clients)
        .map(|i| {
            spawn_client(
                kind,
                load.ws,
                Client {
                    addr,
                    path: format!("t{}", i % load.topics.max(1)),
                    ready: ready.clone(),
                    phase: phase.clone(),
                    seen: Seen::new(&latencies),
                },
            )
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ready.load(std::sync::atomic::Ordering::Relaxed) < load.clients {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{}: only {} of {} clients connected within 60 s",
                kind.name(),
                ready.load(std::sync::atomic::Ordering::Relaxed),
                load.clients
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = server.kib("VmRSS:");
    let heap = match (heap_empty, server.last_heap().await) {
        (Some(empty), Some(idle)) => Some(idle.per(&empty, load.clients)),
        _ => None,
    };
    Ok(Connected {
        tasks,
        phase: phase_tx,
        latencies,
        rss_empty,
        rss_idle,
        heap,
    })
}

/// What the clients counted, summed.
#[derive(Default)]
struct Totals {
    requests: u64,
    repeated: u64,
    bytes_in: u64,
    flood_304: u64,
    errors: u64,
    last_receipt: Option<Instant>,
    connect: Option<hdrhistogram::Histogram<u64>>,
}

impl Totals {
    /// A quantile of the connect times, in ms.
    fn connect_ms(&self, q: f64) -> f64 {
        self.connect
            .as_ref()
            .map_or(f64::NAN, |h| h.value_at_quantile(q) as f64 / 1e3)
    }
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Option<Seen>>>) -> Totals {
    let mut t = Totals {
        connect: hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok(),
        ..Totals::default()
    };
    for task in tasks {
        let Ok(Some(seen)) = task.await else {
            t.errors += 1;
            continue;
        };
        t.requests += seen.requests;
        t.bytes_in += seen.bytes_in;
        t.flood_304 += seen.flood_304;
        t.repeated += seen.repeated;
        if let Some(h) = t.connect.as_mut() {
            h.saturating_record(seen.connect_us.max(1));
        }
        t.last_receipt = t.last_receipt.max(seen.last_receipt);
    }
    t
}

/// What the publishing phase of a run measured.
struct Published {
    published: u64,
    elapsed: Duration,
    /// The server's RSS (KiB) right after the publishing.
    steady: u64,
    /// Server CPU ticks from the start of the publishing until 3 s after it.
    cpu: u64,
    /// The part of `cpu` in user space.
    user: u64,
    /// The load generator's CPU ticks over the same span.
    clients_cpu: u64,
}

/// Publishes `load`'s events to `server`, then lets the last ones arrive (3 s).
async fn publish(kind: ServerKind, server: &mut Server, load: &Load) -> Result<Published, String> {
    let addr = server.addr;
    let cpu_before = server.cpu_ticks();
    let user_before = server.user_ticks();
    let clients_before = cpu_ticks(std::process::id());
    let start = Instant::now();
    let published = if kind == ServerKind::Tungstenite {
        publish_ws(addr, load.rate.unwrap_or(1000), load.seconds).await?
    } else {
        let child = &mut server.child;
        let topics = load.topics.max(1);
        publish_http(kind.name(), addr, topics, load.rate, load.seconds, child).await?
    };
    let elapsed = start.elapsed();
    let steady = server.kib("VmRSS:");
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(Published {
        published,
        elapsed,
        steady,
        cpu: server.cpu_ticks().saturating_sub(cpu_before),
        user: server.user_ticks().saturating_sub(user_before),
        clients_cpu: cpu_ticks(std::process::id()).saturating_sub(clients_before),
    })
}

/// Runs `load` against `server`.
pub(crate) async fn measure_load(
    kind: ServerKind,
    mut server: Server,
    load: Load,
) -> Result<Measured, String> {
    let Connected {
        tasks,
        phase,
        latencies,
        rss_empty,
        rss_idle,
        heap,
    } = connect_clients(kind, &mut server, &load).await?;
    let start = Instant::now();
    let topics = load.topics.max(1);
    let Published {
        published,
        elapsed,
        steady,
        cpu,
        user,
        clients_cpu,
    } = publish(kind, &mut server, &load).await?;
    let polls = kind.base() == ServerKind::PushPoll;
    if polls {
        phase.send_replace(FLOOD_PHASE);
        tokio::time::sleep(FLOOD).await;
    }
    phase.send_replace(STOP);
    let flood = if polls { FLOOD.as_secs_f64() } else { 0.0 };
    let poll_span = start.elapsed().as_secs_f64() - flood;
    let totals = collect(tasks).await;
    let peak = server.kib("VmHWM:");
    let _ = server.child.kill().await;
    let (delivered, [p50_us, p99_us, p999_us]) = latencies.quantiles([0.5, 0.99, 0.999]);
    // At a fixed rate, deliveries are spread over the publishing; flat out, over the time until
    // the last one arrived.
    let last = totals.last_receipt.unwrap_or(start);
    let span = if load.rate.is_some() {
        elapsed
    } else {
        last.duration_since(start).max(elapsed)
    };
    // Long-polls cycle while events are published; pollers poll from the start to the flood.
    let request_span = if polls {
        poll_span
    } else {
        elapsed.as_secs_f64()
    };
    Ok(Measured {
        kind: kind.name(),
        clients: load.clients,
        topics: load.topics,
        flat_out: load.rate.is_none(),
        published,
        delivered_per_sec: delivered as f64 / span.as_secs_f64(),
        expected: published * load.clients as u64 / topics as u64,
        delivered,
        p50_us,
        p99_us,
        p999_us,
        connect_p50_ms: totals.connect_ms(0.5),
        connect_p99_ms: totals.connect_ms(0.99),
        errors: totals.errors,
        repeated: totals.repeated,
        idle_kib_per_conn: rss_idle.saturating_sub(rss_empty) as f64 / load.clients as f64,
        peak_rss_mib: peak as f64 / 1024.0,
        steady_rss_mib: steady as f64 / 1024.0,
        requests: totals.requests,
        bytes_in: totals.bytes_in,
        requests_per_sec: totals.requests as f64 / request_span,
        cpu_ticks: cpu,
        user_ticks: user,
        kernel_ticks: cpu.saturating_sub(user),
        clients_cpu_ticks: clients_cpu,
        not_modified_per_sec: polls.then(|| totals.flood_304 as f64 / FLOOD.as_secs_f64()),
        heap,
        p99_runs_us: vec![p99_us],
    })
}

/// Publishes over one kept-alive HTTP/1.1 connection, going round the topics, at `rate` events
/// per second or back to back; returns how many events were published.
async fn publish_http(
    kind: &str,
    addr: std::net::SocketAddr,
    topics: usize,
    rate: Option<u64>,
    seconds: u64,
    child: &mut tokio::process::Child,
) -> Result<u64, String> {
    let publisher = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = publisher.set_nodelay(true);
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
    let total = rate.map(|r| r * seconds);
    let until = start + Duration::from_secs(seconds);
    let paths: Vec<String> = (0..topics).map(|t| format!("/topics/t{t}")).collect();
    let mut i = 0u64;
    loop {
        match (rate, total) {
            (Some(rate), Some(total)) => {
                if i >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            _ => {
                if Instant::now() >= until {
                    break;
                }
            }
        }
        let req = http::Request::post(paths[(i % topics as u64) as usize].as_str())
            .header("host", "bench")
            .body(http_body_util::Full::new(Bytes::from(stamp())))
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
                    "{kind}: publish {i} failed: {e:?} (server exit: {status:?})"
                ));
            }
        };
        if !res.status().is_success() {
            return Err(format!("{kind}: publish {i} answered {}", res.status()));
        }
        let _ = http_body_util::BodyExt::collect(res.into_body()).await;
        i += 1;
    }
    Ok(i)
}

/// The plain tokio-tungstenite server takes its publishes as messages on `/pub` (one topic).
async fn publish_ws(addr: std::net::SocketAddr, rate: u64, seconds: u64) -> Result<u64, String> {
    use futures_util::SinkExt as _;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/pub"))
        .await
        .map_err(|e| format!("tungstenite: publisher: {e}"))?;
    let start = Instant::now();
    let total = rate * seconds;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(stamp()))
            .await
            .map_err(|e| format!("tungstenite: publish {i}: {e}"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::{stamp, Latencies, Seen};

    #[test]
    fn a_repeated_or_reordered_event_is_counted_and_not_delivered() {
        let stamps: Vec<u128> = (0..4).map(|_| stamp().parse().unwrap()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        let latencies = Latencies::new();
        let mut seen = Seen::new(&latencies);
        let now = stamps[3] + 1_000_000;
        for sent in [stamps[0], stamps[1], stamps[1], stamps[3], stamps[2]] {
            seen.sample(now, sent);
        }
        let seen = seen.finish();
        assert_eq!(seen.repeated, 2);
        assert_eq!(latencies.quantiles([0.5]).0, 3, "three events delivered");
    }
}
