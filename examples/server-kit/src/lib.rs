//! The server loop every example shares, so that the part a user copies is also the part that
//! survives hostile traffic.
//!
//! A push server holds many connections for a long time, which is exactly what an attacker
//! exploits: connections that never finish their headers, handshakes that never complete,
//! clients that never read, floods of short connections, a process at its open-file limit.
//! [`run`] is the accept loop with every one of those bounded:
//!
//! | bound | flag | default |
//! |---|---|---|
//! | connections open at once; one more is answered `503` and closed | `--max-connections` | 10,000 |
//! | connections open at once from one address (an IPv6 client by its /64); one more is answered `429` and closed, so one client cannot fill the server for the others | `--max-connections-per-address` | 1,000 |
//! | first bytes of a connection, the TLS handshake, the HTTP/2 preface | `--handshake-timeout` | 5 s |
//! | an HTTP/1.1 request head, counted from accept and from the end of the previous response (so it is also the idle keep-alive limit) | `--header-timeout` | 10 s |
//! | a socket's kernel send buffer (`SO_SNDBUF`; the kernel doubles it for bookkeeping); 0 leaves the kernel's autotuning, up to 4 MiB per socket on Linux | `--send-buffer` | 64 KiB |
//! | the whole graceful stop after SIGTERM or SIGINT | `--shutdown-timeout` | 5 s |
//! | connections the kernel completes before they are accepted (capped by `net.core.somaxconn`) | `--backlog` | 1,024 |
//! | share the port with other processes started so (`SO_REUSEPORT`; the kernel spreads new connections over them), to run several processes on one port past one process's open-file limit | `--reuse-port` | off |
//!
//! Every request carries its client's address as a [`SocketAddr`] request extension (through
//! [`Ctx::track`], or [`Ctx::peer`] for a server that inserts it itself): push-http's
//! per-client quotas (`push_http::Quota`) count by it.
//!
//! Finished connections free everything at once: connections are tracked by a
//! [`TaskTracker`], which counts running tasks without keeping finished ones. Accept errors
//! such as `EMFILE` back off from 10 to 100 ms and are logged at most once a second.
//!
//! On SIGTERM or SIGINT the listener closes, the application's stop future runs (close the hub,
//! so that every technique sends its goodbye), every connection is asked to finish gracefully
//! (HTTP/1.1 keep-alive ends, HTTP/2 sends GOAWAY), and whatever is still open when
//! `--shutdown-timeout` runs out is cut: no silent client extends the stop.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use clap::Parser;
//! use server_kit::ServerArgs;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! # async fn example() -> std::io::Result<()> {
//! let args = Args::parse();
//! let listener = args.server.bind().await?;
//! server_kit::run(listener, &args.server, async {}, |conn| async move {
//!     let service = hyper::service::service_fn(|_req| async {
//!         Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
//!             bytes::Bytes::from_static(b"hello\n"),
//!         )))
//!     });
//!     conn.serve(None, service).await;
//! })
//! .await
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use tokio_util::sync::CancellationToken as StopToken;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection over the cap is told before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nConnection: close\r\n\r\nserver at its connection limit\n";

/// What a connection over its address's quota is told before it is closed.
const OVER_QUOTA: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 39\r\nConnection: close\r\n\r\ntoo many connections from this address\n";

/// The server's bounds, as command-line flags (flatten them into an example's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The most connections open at once; one more is answered 503 and closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// The most connections open at once from one address (an IPv6 address counts by its
    /// /64); one more is answered 429 and closed.
    #[arg(long, default_value_t = 1_000)]
    pub max_connections_per_address: usize,
    /// Seconds a connection may take to send its first bytes, finish its TLS handshake or
    /// its HTTP/2 preface.
    #[arg(long, default_value = "5", value_parser = seconds)]
    pub handshake_timeout: Duration,
    /// Seconds an HTTP/1.1 request head may take to arrive, counted from accept and from the
    /// end of the previous response (so also the idle keep-alive limit).
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub header_timeout: Duration,
    /// Bytes of kernel send buffer per socket (SO_SNDBUF); 0 keeps the kernel's autotuning.
    #[arg(long, default_value_t = 64 * 1024)]
    pub send_buffer: usize,
    /// Seconds the whole graceful stop may take after SIGTERM or SIGINT.
    #[arg(long, default_value = "5", value_parser = seconds)]
    pub shutdown_timeout: Duration,
    /// Share the port with other processes started with this flag (SO_REUSEPORT): the kernel
    /// spreads new connections over them. For several processes on one port, each sharing
    /// its topics through Redis, past one process's open-file limit.
    #[arg(long)]
    pub reuse_port: bool,
    /// The listen backlog: connections the kernel completes before they are accepted
    /// (capped by net.core.somaxconn).
    #[arg(long, default_value_t = 1024)]
    pub backlog: u32,
}

impl Default for ServerArgs {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            send_buffer: 64 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            reuse_port: false,
            backlog: 1024,
        }
    }
}

fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err("seconds must be between 0 and 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

impl ServerArgs {
    /// Binds [`addr`](Self::addr) with [`backlog`](Self::backlog), sharing the port when
    /// [`reuse_port`](Self::reuse_port) is set (on Unix).
    ///
    /// # Errors
    ///
    /// The bind error, naming the address.
    pub async fn bind(&self) -> io::Result<TcpListener> {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", self.addr));
        let socket = if self.addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(named)?;
        // As std and tokio do on Unix: a restart may bind while old connections linger.
        socket.set_reuseaddr(true).map_err(named)?;
        #[cfg(unix)]
        if self.reuse_port {
            socket.set_reuseport(true).map_err(named)?;
        }
        socket.bind(self.addr).map_err(named)?;
        socket.listen(self.backlog.max(1)).map_err(named)
    }
}

/// One accepted connection, handed to the application's connection function.
#[derive(Debug)]
pub struct Conn {
    /// The socket, with `TCP_NODELAY` and the send buffer already set.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The bounds and the stop signal, usable after the stream was moved out (into TLS, say).
    pub ctx: Ctx,
}

/// A connection's bounds and stop signal.
#[derive(Debug, Clone)]
pub struct Ctx {
    limits: Arc<ServerArgs>,
    peer: SocketAddr,
    stop: CancellationToken,
    /// Set once a request reached the application (see [`Ctx::track`]).
    served: Arc<AtomicBool>,
}

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The HTTP/2 preface (prior knowledge, h2c).
    Http2,
    /// Anything else: taken as HTTP/1.1 (hyper answers garbage with 400).
    Http1,
    /// A TLS record (first byte `0x16`, a handshake): for a server that also speaks TLS on
    /// the port; [`Conn::serve`] answers it as HTTP/1.1, which fails.
    Tls,
}

impl Ctx {
    /// Wraps a hyper service so that the connection knows whether a request ever reached it:
    /// at the stop, a connection that never completed a request head (a client trickling its
    /// headers, say) is cut at once instead of holding the stop until the deadline.
    pub fn track<S, B>(
        &self,
        service: S,
    ) -> impl hyper::service::Service<
        http::Request<Incoming>,
        Response = http::Response<B>,
        Error = S::Error,
        Future = S::Future,
    > + Clone
    where
        S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>> + Clone,
    {
        Tracked {
            inner: service,
            served: self.served.clone(),
            peer: self.peer,
        }
    }

    /// The client's address, which [`track`](Self::track) inserts into every request.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Records that the connection got a request, for a server that does not go through
    /// [`track`](Self::track) (HTTP/2 served by another driver): at the stop it is then given
    /// its graceful shutdown instead of being cut.
    pub fn mark_served(&self) {
        self.served.store(true, Ordering::Relaxed);
    }

    /// Fires when the server stops: the connection should finish gracefully.
    #[must_use]
    pub fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// The bounds in force.
    #[must_use]
    pub fn limits(&self) -> &ServerArgs {
        &self.limits
    }

    /// Runs `fut` under the handshake timeout; `None` when it ran out (or the server stopped).
    pub async fn handshake<F: Future>(&self, fut: F) -> Option<F::Output> {
        tokio::select! {
            out = tokio::time::timeout(self.limits.handshake_timeout, fut) => out.ok(),
            () = self.stop.cancelled() => None,
        }
    }

    /// hyper's builders with this server's bounds: HTTP/1.1 with the header timeout and
    /// upgrades, HTTP/2 with keep-alive pings and the handshake timeout as their answer time.
    #[must_use]
    pub fn builders(&self) -> Builders {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(self.limits.handshake_timeout.max(Duration::from_secs(1)));
        Builders { http1, http2 }
    }
}

impl Conn {
    /// Waits (within the handshake timeout) until the first bytes tell HTTP/2's preface from
    /// anything else. `None`: the client sent nothing in time, or closed.
    pub async fn sniff(&self) -> Option<Protocol> {
        let mut first = [0u8; PREFACE.len()];
        self.ctx
            .handshake(async {
                loop {
                    let seen = self.stream.peek(&mut first).await.ok()?;
                    if seen == 0 {
                        return None;
                    }
                    if first[0] == 0x16 {
                        return Some(Protocol::Tls);
                    }
                    if !PREFACE.starts_with(&first[..seen]) {
                        return Some(Protocol::Http1);
                    }
                    if seen == PREFACE.len() {
                        return Some(Protocol::Http2);
                    }
                    // A prefix of the preface: wait for more (peek returns at once while data is
                    // buffered, so pause briefly instead of spinning).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .flatten()
    }

    /// Serves the connection with hyper (HTTP/1.1 with upgrades, or HTTP/2 by its preface),
    /// with `builders`, or [`Ctx::builders`] as they are when `None`.
    pub async fn serve<S, B>(self, builders: Option<&Builders>, service: S)
    where
        S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let default;
        let builders = match builders {
            Some(builders) => builders,
            None => {
                default = self.ctx.builders();
                &default
            }
        };
        let Some(protocol) = self.sniff().await else {
            return;
        };
        let ctx = self.ctx;
        let io = TokioIo::new(self.stream);
        let service = ctx.track(service);
        match protocol {
            Protocol::Http2 => {
                let conn = builders.http2.serve_connection(io, service);
                drive(conn, &ctx, |c| c.graceful_shutdown()).await;
            }
            Protocol::Http1 | Protocol::Tls => {
                let conn = builders.http1.serve_connection(io, service).with_upgrades();
                drive(conn, &ctx, |c| c.graceful_shutdown()).await;
            }
        }
    }
}

/// hyper's two connection builders, configured by [`Ctx::builders`].
#[derive(Debug)]
pub struct Builders {
    /// HTTP/1.1.
    pub http1: hyper::server::conn::http1::Builder,
    /// HTTP/2 (prior knowledge).
    pub http2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

/// Runs a connection future until it ends. When the server stops, a connection whose service
/// (wrapped by [`Ctx::track`]) never got a request is dropped at once; any other gets
/// `graceful` (hyper's `graceful_shutdown`) and may finish within the stop's deadline.
pub async fn drive<C: Future>(conn: C, ctx: &Ctx, graceful: impl FnOnce(std::pin::Pin<&mut C>)) {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = ctx.stop.cancelled() => {
            if !ctx.served.load(Ordering::Relaxed) {
                return;
            }
            graceful(conn.as_mut());
        }
    }
    let _ = conn.await;
}

/// A service that records that a request reached it and gives it the client's address; see
/// [`Ctx::track`].
#[derive(Debug, Clone)]
struct Tracked<S> {
    inner: S,
    served: Arc<AtomicBool>,
    peer: SocketAddr,
}

impl<S, B> hyper::service::Service<http::Request<B>> for Tracked<S>
where
    S: hyper::service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: http::Request<B>) -> Self::Future {
        self.served.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(self.peer);
        self.inner.call(req)
    }
}

/// Connections open per client address (an IPv6 address by its /64 prefix); an address's
/// entry goes with its last connection, so the map is bounded by the open connections.
#[derive(Debug, Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl PerAddress {
    fn key(ip: std::net::IpAddr) -> std::net::IpAddr {
        match ip.to_canonical() {
            std::net::IpAddr::V6(v6) => {
                std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)).into()
            }
            v4 => v4,
        }
    }

    /// Takes a place for `ip`, or `None` when it holds `max` already.
    fn take(self: &Arc<Self>, ip: std::net::IpAddr, max: usize) -> Option<AddressSlot> {
        let key = Self::key(ip);
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Looked up before inserting: a refused address leaves no entry behind.
        if map.get(&key).copied().unwrap_or(0) >= max {
            return None;
        }
        *map.entry(key).or_insert(0) += 1;
        Some(AddressSlot {
            map: self.clone(),
            key,
        })
    }
}

/// A connection's place in its address's count, given back on drop.
#[derive(Debug)]
struct AddressSlot {
    map: Arc<PerAddress>,
    key: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self
            .map
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Accepts connections on `listener` and runs `serve` for each on its own task, within the
/// bounds of `args`, until SIGTERM or SIGINT; then runs `on_stop` and drains (see the crate
/// doc). Returns once every connection has finished or the shutdown timeout cut the rest.
///
/// # Errors
///
/// None today: accept errors are logged and retried. The `Result` leaves room for setup
/// errors.
pub async fn run<F, Fut, S>(
    listener: TcpListener,
    args: &ServerArgs,
    on_stop: S,
    serve: F,
) -> io::Result<()>
where
    F: FnMut(Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    S: Future<Output = ()>,
{
    run_until(listener, args, stop_signal(), on_stop, serve).await
}

/// [`run`], stopping when `signal` resolves instead of on SIGTERM or SIGINT.
///
/// # Errors
///
/// See [`run`].
pub async fn run_until<F, Fut, G, S>(
    listener: TcpListener,
    args: &ServerArgs,
    signal: G,
    on_stop: S,
    mut serve: F,
) -> io::Result<()>
where
    F: FnMut(Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    G: Future<Output = ()>,
    S: Future<Output = ()>,
{
    let limits = Arc::new(args.clone());
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(args.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let mut errors = ErrorLog::default();
    let mut backoff = Duration::ZERO;
    let mut signal = std::pin::pin!(signal);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut signal => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::ZERO;
                pair
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors or memory: accepting again at once would spin. Back
                // off, and say so at most once a second.
                backoff =
                    (backoff * 2).clamp(Duration::from_millis(10), Duration::from_millis(100));
                errors.log(&e);
                tokio::select! {
                    biased;
                    () = &mut signal => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap: a short answer without a task, then close.
            let _ = stream.try_write(OVER_CAPACITY);
            continue;
        };
        let Some(address_slot) = per_address.take(peer.ip(), args.max_connections_per_address)
        else {
            let _ = stream.try_write(OVER_QUOTA);
            continue;
        };
        let _ = stream.set_nodelay(true);
        if args.send_buffer > 0 {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(args.send_buffer);
        }
        let conn = Conn {
            stream,
            peer,
            ctx: Ctx {
                limits: limits.clone(),
                peer,
                stop: stop.child_token(),
                served: Arc::default(),
            },
        };
        let task = serve(conn);
        tracker.spawn(async move {
            task.await;
            drop((slot, address_slot));
        });
    }
    drop(listener);
    let open = tracker.len();
    eprintln!(
        "stopping: {open} connection(s) open, at most {:.1} s to finish",
        args.shutdown_timeout.as_secs_f64()
    );
    let started = Instant::now();
    tracker.close();
    stop.cancel();
    let drained = tokio::time::timeout(args.shutdown_timeout, async {
        on_stop.await;
        tracker.wait().await;
    })
    .await;
    match drained {
        Ok(()) => eprintln!(
            "stopped: every connection finished in {} ms",
            started.elapsed().as_millis()
        ),
        Err(_) => eprintln!(
            "stopped: {} connection(s) cut at the {:.1} s shutdown timeout",
            tracker.len(),
            args.shutdown_timeout.as_secs_f64()
        ),
    }
    Ok(())
}

/// Errors that concern one connection only (retry at once) rather than the process.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Logs accept errors at most once a second, with how many were not logged.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    quiet: u64,
}

impl ErrorLog {
    fn log(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.quiet += 1;
            return;
        }
        if self.quiet > 0 {
            eprintln!(
                "accept: {e} (and {} more in the last second; backing off)",
                self.quiet
            );
        } else {
            eprintln!("accept: {e} (backing off)");
        }
        self.last = Some(now);
        self.quiet = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two servers share a port only when both ask to; the kernel hands connections to both.
    #[tokio::test]
    async fn reuse_port_shares_a_port_and_only_when_asked() {
        let first = ServerArgs {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            reuse_port: true,
            ..ServerArgs::default()
        };
        let a = first.bind().await.unwrap();
        let shared = ServerArgs {
            addr: a.local_addr().unwrap(),
            ..first.clone()
        };
        let b = shared
            .bind()
            .await
            .expect("a second listener on the shared port");
        let alone = ServerArgs {
            reuse_port: false,
            ..shared.clone()
        };
        let err = alone
            .bind()
            .await
            .expect_err("without the flag the port is taken");
        assert!(err.to_string().contains("cannot listen on"), "{err}");
        // Connections reach both listeners: the kernel spreads them by a hash of the
        // source, so enough clients from different ports land on each.
        let mut clients = Vec::new();
        for _ in 0..64 {
            clients.push(TcpStream::connect(shared.addr).await.unwrap());
        }
        // Every connection is accepted by one listener or the other (within 10 s).
        let (mut on_a, mut on_b) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while on_a + on_b < 64 {
            tokio::select! {
                r = a.accept() => { r.unwrap(); on_a += 1; }
                r = b.accept() => { r.unwrap(); on_b += 1; }
                () = tokio::time::sleep_until(deadline) => panic!("accepted {on_a} + {on_b} of 64"),
            }
        }
        assert!(on_a > 0 && on_b > 0, "{on_a} and {on_b}");
    }
}
