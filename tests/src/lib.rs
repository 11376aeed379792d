//! Shared harness of the end-to-end tests: a hyper server on a free loopback port serving
//! HTTP/1.1 and HTTP/2 (prior knowledge) on one port, that can drop every connection on demand
//! and shut down gracefully, plus small helpers for clients and for headless Chromium.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The body every test handler answers with.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;
/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Boxes any infallible body.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    body.boxed_unsync()
}

/// A full body from text.
pub fn text(s: impl Into<Bytes>) -> Body {
    boxed(Full::new(s.into()))
}

/// A running test server.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server calling `handler` for every request.
    pub async fn start<F>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> HandlerFuture + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let handler = Arc::new(handler);
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let conns = connections.clone();
        let task = tokio::spawn(async move {
            let graceful = GracefulShutdown::new();
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    _ = shutdown_rx.changed() => break,
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                // The client's address, as a server gives it to push-http's per-client quotas.
                let service = service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(peer);
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                // WebSocket over HTTP/2 (RFC 8441).
                builder.http2().enable_connect_protocol();
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                let handle = tokio::spawn(async move {
                    let _ = conn.await;
                });
                conns.lock().expect("lock").push(handle.abort_handle());
            }
            // Graceful: wait for every connection to finish on its own.
            graceful.shutdown().await;
        });
        Self {
            addr,
            connections,
            shutdown,
            task,
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Closes every open connection at once, as a crashed proxy or a network cut would.
    pub fn drop_connections(&self) {
        for handle in self.connections.lock().expect("lock").drain(..) {
            handle.abort();
        }
    }

    /// Stops accepting and waits until every connection ended by itself (hyper's graceful
    /// shutdown). Returns false if that took longer than `bound`.
    pub async fn graceful_shutdown(self, bound: Duration) -> bool {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(bound, self.task).await.is_ok()
    }
}

/// Every technique's endpoint on one [`TestServer`], each with `authorizer`, routed
/// `/{kind}/{topic}`: `poll`, `longpoll`, `sse`, `stream`, `ws`, `h2` (push-h2's endpoint, which
/// outside push-h2's driver answers headers only) and `topics` (push-http's `Publisher`).
pub async fn techniques_server(
    hub: &push_core::Hub,
    authorizer: Option<push_http::Authorizer>,
) -> TestServer {
    let publisher = push_http::Publisher::new(hub.clone());
    let poll = push_poll::Poller::new(hub.clone());
    let longpoll = push_longpoll::LongPoll::new(hub.clone());
    let sse = push_sse::Sse::new(hub.clone());
    let stream = push_stream::Streamer::new(hub.clone());
    let ws = push_ws::Ws::new(hub.clone());
    let events = push_h2::Events::new(hub.clone());
    let (publisher, poll, longpoll, sse, stream, ws, events) = match authorizer {
        Some(a) => (
            publisher.authorize(a.clone()),
            poll.authorize(a.clone()),
            longpoll.authorize(a.clone()),
            sse.authorize(a.clone()),
            stream.authorize(a.clone()),
            ws.authorize(a.clone()),
            events.authorize(a),
        ),
        None => (publisher, poll, longpoll, sse, stream, ws, events),
    };
    TestServer::start(move |req| {
        let (publisher, poll, longpoll, sse) = (
            publisher.clone(),
            poll.clone(),
            longpoll.clone(),
            sse.clone(),
        );
        let (stream, ws, events) = (stream.clone(), ws.clone(), events.clone());
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let (kind, name) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", ""));
            let Ok(topic) = push_core::Topic::new(name) else {
                let mut res = Response::new(text("no such route"));
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                return res;
            };
            match kind {
                "topics" => publisher.respond(&topic, req).await.map(boxed),
                "poll" => poll.respond(&topic, req).await.map(boxed),
                "longpoll" => longpoll.respond(&topic, req).await.map(boxed),
                "sse" => sse.respond(&topic, req).await.map(boxed),
                "stream" => stream.respond(&topic, req).await.map(boxed),
                "ws" => ws.respond(&topic, req).await.map(boxed),
                _ => events.respond(&topic, req).await.map(boxed),
            }
        })
    })
    .await
}

/// push-h2's event endpoint served by push-h2's driver on a loopback port (`/h2/{topic}`), with
/// connections that [`cut`](Self::cut) aborts.
#[derive(Debug)]
pub struct H2Server {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl H2Server {
    /// Serves `events` for every request, the topic being the path after `/h2/`.
    pub async fn start(events: push_h2::Events) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let list = connections.clone();
        tokio::spawn(async move {
            let builder = push_h2::Builder::new();
            while let Ok((stream, _)) = listener.accept().await {
                let events = events.clone();
                let service = move |req: Request<push_h2::H2Body>| {
                    let events = events.clone();
                    async move {
                        let name = req.uri().path().trim_start_matches("/h2/").to_owned();
                        let topic = push_core::Topic::new(&name).expect("a topic in the path");
                        events.respond(&topic, req).await
                    }
                };
                let task = tokio::spawn(builder.serve_connection(stream, service));
                list.lock().expect("lock").push(task.abort_handle());
            }
        });
        Self { addr, connections }
    }

    /// Cuts every connection, as a network failure would.
    pub fn cut(&self) {
        for conn in self.connections.lock().expect("lock").drain(..) {
            conn.abort();
        }
    }
}

/// Sends one HTTP/1.1 request and returns the response with its body unread.
pub async fn http1(addr: SocketAddr, req: Request<Full<Bytes>>) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender.send_request(req).await.expect("response")
}

/// Opens an HTTP/2 (prior knowledge) connection and returns a sender on it.
pub async fn http2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// A GET request for `path` with the given headers.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::get(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(Bytes::new())).expect("request")
}

/// Reads body frames until `until` returns true on the collected text, or `bound` passes.
pub async fn read_until(
    body: &mut Incoming,
    bound: Duration,
    until: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    let _ = tokio::time::timeout(bound, async {
        while !until(&text) {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        text.push_str(&String::from_utf8_lossy(data));
                    }
                }
                _ => break,
            }
        }
    })
    .await;
    text
}

/// Fails with a message naming the Debian package when a required program is missing, unless
/// `PUSH_ALLOW_SKIP=1` allows skipping (CI never sets it). Returns whether to go on.
pub fn require(program: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return true;
    }
    if std::env::var("PUSH_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("skipping: `{program}` is not installed (Debian package {package})");
        return false;
    }
    panic!("`{program}` is not installed: install the Debian package `{package}` (.ci/run does)");
}

/// Headless Chromium showing `url`, killed on drop.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    _profile: TempDir,
}

impl Browser {
    /// Starts Debian's chromium on `url`, or `None` when skipping is allowed and it is missing.
    pub fn open(url: &str) -> Option<Self> {
        if !require("chromium", "chromium") {
            return None;
        }
        let profile = TempDir::new("chromium");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                &format!("--user-data-dir={}", profile.0.display()),
                "--remote-debugging-port=0",
                url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        Some(Self {
            child,
            _profile: profile,
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(prefix: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("push-{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `redis-server` of its own on a free loopback port, its data in a temp dir with an
/// append-only file synced on every write (so a restart keeps every acknowledged event); killed
/// on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    dir: TempDir,
    /// More `redis-server` arguments (cluster mode, say).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one, or `None` when `redis-server` is missing and skipping is allowed.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with more `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        if !require("redis-server", "redis-server") {
            return None;
        }
        let mut server = Self {
            child: None,
            port: 0,
            dir: TempDir::new("redis"),
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        // A port found free may be taken again before redis-server binds it (by another
        // test's connection): then the server exits at once, and another port is tried.
        for _ in 0..3 {
            server.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if server.spawn_and_wait() {
                return Some(server);
            }
        }
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pauses the server (SIGSTOP), as a machine that stops answering would: connections stay
    /// open, the kernel still accepts new ones and takes what clients write, and nothing is
    /// answered until [`cont`](Self::cont), when the server runs what it received meanwhile.
    pub fn stop(&self) {
        self.signal("STOP");
    }

    /// Resumes a server paused by [`stop`](Self::stop) (SIGCONT).
    pub fn cont(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .expect("kill is installed");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Starts the server again on the same port and data, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(
            self.spawn_and_wait(),
            "redis-server did not answer on port {}",
            self.port
        );
    }

    /// Starts the server on its port and data; whether it answered within 10 s (`false` at
    /// once when it exited, as it does when the port is taken).
    fn spawn_and_wait(&mut self) -> bool {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir.0)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The end of its log file (`--logfile redis.log`), if it has one.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.0.join("redis.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Runs `redis-cli` against it and returns what it printed (empty when it fails).
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of `redis-server` processes on loopback: `masters` masters with one replica
/// each (`cluster-enabled yes`, made by `redis-cli --cluster create`), a short node timeout
/// (a second) so that a failover takes a few seconds; killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    /// Every node, masters first as created (roles change with failovers).
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts one and waits until every node says `cluster_state:ok`, or `None` when
    /// `redis-server` is missing and skipping is allowed.
    pub fn start(masters: usize) -> Option<Self> {
        if !require("redis-cli", "redis-tools") {
            return None;
        }
        let mut nodes = Vec::new();
        for _ in 0..masters * 2 {
            nodes.push(RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "1000",
                "--cluster-config-file",
                "nodes.conf",
                // A node that comes back resynchronises from its master: no disk writes.
                "--appendonly",
                "no",
                "--logfile",
                "redis.log",
                // Replicas synchronise at once (the default waits 5 s for more replicas).
                "--repl-diskless-sync-delay",
                "0",
            ])?);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_ok();
        Some(cluster)
    }

    /// `redis://127.0.0.1:PORT` of every node, as seeds.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Waits until every running node reports `cluster_state:ok` and every running replica
    /// is in sync with its master (after a start or a failover): only a replica in sync can
    /// take over.
    pub fn wait_ok(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                let replication = n.cli(&["INFO", "replication"]);
                n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            });
            if ok {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The nodes that are masters now (`ROLE`).
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].child.is_some()
                    && self.nodes[i].cli(&["ROLE"]).lines().next() == Some("master")
            })
            .collect()
    }

    /// Client connections over every running node (`CLIENT LIST`), less redis-cli's own.
    pub fn client_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| {
                n.cli(&["CLIENT", "LIST"])
                    .lines()
                    // Not redis-cli itself, nor replication links (flags S and M).
                    .filter(|l| {
                        !l.contains("cmd=client")
                            && !l.contains("flags=S")
                            && !l.contains("flags=M")
                    })
                    .count()
            })
            .sum()
    }
}

/// Runs `curl` with `args` and returns what it wrote to stdout.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(args)
        .output()
        .expect("curl is installed (Debian package curl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An example's binary running on a free loopback port, killed on drop.
#[derive(Debug)]
pub struct Example {
    child: Child,
    /// `http://ADDR/`, from the line the example prints first.
    pub base: String,
}

impl Example {
    /// Starts `bin` (an example's `CARGO_BIN_EXE_…`) with `--addr 127.0.0.1:0` and reads its
    /// first line, `listening on http://ADDR/`.
    pub fn start(bin: &str) -> Self {
        Self::start_with(bin, &[])
    }

    /// [`start`](Self::start) with more arguments.
    pub fn start_with(bin: &str, args: &[&str]) -> Self {
        let mut command = Command::new(bin);
        command.args(args);
        Self::spawn(command)
    }

    /// Starts a prepared command (another program may wrap the example, such as `prlimit`),
    /// adding `--addr 127.0.0.1:0`, and reads the address it prints first.
    pub fn spawn(mut command: Command) -> Self {
        use std::io::BufRead as _;
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the example");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the example prints its address");
        // `listening on http://ADDR/` (the showcase with --tls adds ` and https://ADDR/`).
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("first line names the address, got {first:?}"))
            .to_owned();
        Self { child, base }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .expect("an IP:PORT address")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory, in KiB (`VmRSS` in `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        proc_status(self.pid(), "VmRSS:")
    }

    /// The process's CPU time so far (user + system), from `/proc/PID/stat`.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    /// Sends a signal by name (`TERM`, `INT`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill is installed");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `bound` for the process to exit; its status, or `None` if still running.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `curl -sf -d BODY BASE/topics/TOPIC`: publishes and returns the new event's id.
    pub fn publish(&self, topic: &str, body: &str) -> String {
        let out = Command::new("curl")
            .args(["-sf", "-d", body, &format!("{}topics/{topic}", self.base)])
            .output()
            .expect("curl is installed (Debian package curl)");
        assert!(out.status.success(), "publish failed: {out:?}");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        text.trim()
            .strip_prefix("{\"id\":\"")
            .and_then(|s| s.strip_suffix("\"}"))
            .expect("{\"id\":…}")
            .to_owned()
    }
}

/// A `/proc/PID/status` field in KiB.
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium driven through the DevTools protocol (its own WebSocket endpoint, no driver
/// crate): evaluate JavaScript in the page and take screenshots.
#[derive(Debug)]
pub struct DevTools {
    _browser: Browser,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl DevTools {
    /// Opens `url` in headless Chromium with remote debugging on a free loopback port, or
    /// `None` when skipping is allowed and Chromium is missing.
    pub async fn open(url: &str) -> Option<Self> {
        Self::open_with(url, &[]).await
    }

    /// [`open`](Self::open) with more Chromium switches (`--ignore-certificate-errors` for a
    /// self-signed certificate, say).
    pub async fn open_with(url: &str, switches: &[&str]) -> Option<Self> {
        use std::io::BufRead as _;
        if !require("chromium", "chromium") {
            return None;
        }
        let profile = TempDir::new("chromium");
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.0.display()),
            ])
            .args(switches)
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("stderr");
        let browser = Browser {
            child,
            _profile: profile,
        };
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let port = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stderr).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
                let rest = line.split("DevTools listening on ws://127.0.0.1:").nth(1)?;
                rest.split('/').next()?.parse::<u16>().ok()
            });
            // Keep draining so that Chromium never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            port
        })
        .await
        .expect("join")
        .expect("chromium printed its DevTools address");
        // The page target's WebSocket, from the /json/list endpoint.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let ws_url = loop {
            let list = http1(
                SocketAddr::from(([127, 0, 0, 1], port)),
                get(SocketAddr::from(([127, 0, 0, 1], port)), "/json/list", &[]),
            )
            .await;
            let body = list.into_body().collect().await.expect("body").to_bytes();
            let targets: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let page = targets.as_array().and_then(|t| {
                t.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if let Some(url) = page {
                break url;
            }
            assert!(tokio::time::Instant::now() < deadline, "no page target");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("connect to the page's DevTools");
        Some(Self {
            _browser: browser,
            socket,
            next_id: 0,
        })
    }

    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use futures_util::{SinkExt as _, StreamExt as _};
        self.next_id += 1;
        let id = self.next_id;
        let message = serde_json::json!({"id": id, "method": method, "params": params});
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(
                message.to_string(),
            ))
            .await
            .expect("send to DevTools");
        loop {
            let reply = self
                .socket
                .next()
                .await
                .expect("DevTools open")
                .expect("DevTools message");
            let Ok(text) = reply.to_text() else { continue };
            let value: serde_json::Value = serde_json::from_str(text).expect("JSON");
            if value["id"] == id {
                return value;
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value (JSON-serializable results;
    /// a promise is awaited).
    pub async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let reply = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        reply["result"]["result"]["value"].clone()
    }

    /// Saves a PNG screenshot of the element `selector` matches (scrolled into view) to `path`.
    pub async fn screenshot_element(&mut self, selector: &str, path: &std::path::Path) {
        let rect = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector:?}); e.scrollIntoView(); \
                 const r = e.getBoundingClientRect(); \
                 return {{ x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height }}; }})()"
            ))
            .await;
        let mut clip = rect;
        clip["scale"] = 1.into();
        self.capture(serde_json::json!({"format": "png", "clip": clip}), path)
            .await;
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        self.capture(serde_json::json!({"format": "png"}), path)
            .await;
    }

    async fn capture(&mut self, params: serde_json::Value, path: &std::path::Path) {
        use base64::Engine as _;
        let reply = self.call("Page.captureScreenshot", params).await;
        let data = reply["result"]["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot's directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }
}
