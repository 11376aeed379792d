//! The servers under test: every kind the bench knows (an enum, so that an unknown name is
//! refused where it is typed), starting each in its own process (Nchan: nginx with its one
//! worker measured), and reading their memory and CPU time from `/proc`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::heap::Snapshot;

/// Every server the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub(crate) enum ServerKind {
    /// push-sse on the bench's push server.
    #[value(name = "push-sse")]
    PushSse,
    /// push-stream.
    #[value(name = "push-stream")]
    PushStream,
    /// push-longpoll.
    #[value(name = "push-longpoll")]
    PushLongpoll,
    /// push-poll.
    #[value(name = "push-poll")]
    PushPoll,
    /// push-ws.
    #[value(name = "push-ws")]
    PushWs,
    /// push-sse on two worker threads.
    #[value(name = "push-sse-2w")]
    PushSse2w,
    /// push-stream on two worker threads.
    #[value(name = "push-stream-2w")]
    PushStream2w,
    /// push-longpoll on two worker threads.
    #[value(name = "push-longpoll-2w")]
    PushLongpoll2w,
    /// push-ws on two worker threads.
    #[value(name = "push-ws-2w")]
    PushWs2w,
    /// Nchan's EventSource.
    #[value(name = "nchan-sse")]
    NchanSse,
    /// Nchan's chunked stream.
    #[value(name = "nchan-stream")]
    NchanStream,
    /// Nchan's long-poll.
    #[value(name = "nchan-longpoll")]
    NchanLongpoll,
    /// Nchan's WebSocket.
    #[value(name = "nchan-ws")]
    NchanWs,
    /// Nchan's EventSource, nginx with two workers.
    #[value(name = "nchan-sse-2w")]
    NchanSse2w,
    /// Nchan's chunked stream, two workers.
    #[value(name = "nchan-stream-2w")]
    NchanStream2w,
    /// Nchan's long-poll, two workers.
    #[value(name = "nchan-longpoll-2w")]
    NchanLongpoll2w,
    /// Nchan's WebSocket, two workers.
    #[value(name = "nchan-ws-2w")]
    NchanWs2w,
    /// axum's `Sse` over `tokio::sync::broadcast`.
    #[value(name = "axum-sse")]
    AxumSse,
    /// A default tokio-tungstenite broadcast server.
    #[value(name = "tungstenite")]
    Tungstenite,
    /// The ceiling: the same bytes written to each socket, no HTTP framework (SSE, and
    /// WebSocket frames to WebSocket clients).
    #[value(name = "raw")]
    Raw,
    /// The ceiling on two worker threads.
    #[value(name = "raw-2w")]
    Raw2w,
    /// hyper's own floor: a connection holding a body that never yields.
    #[value(name = "hyper-bare")]
    HyperBare,
}

/// The process a kind runs in (`cargo xtask serve PROCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Process {
    /// Every push technique on one hyper server.
    Push,
    /// The same on two worker threads.
    #[value(name = "push-2w")]
    Push2w,
    /// axum's `Sse`.
    #[value(name = "axum-sse")]
    AxumSse,
    /// tokio-tungstenite.
    Tungstenite,
    /// The raw-socket ceiling.
    Raw,
    /// The same on two worker threads.
    #[value(name = "raw-2w")]
    Raw2w,
    /// hyper's floor.
    #[value(name = "hyper-bare")]
    HyperBare,
}

impl Process {
    /// The tokio worker threads it runs on.
    pub(crate) fn workers(self) -> usize {
        match self {
            Process::Push2w | Process::Raw2w => 2,
            _ => 1,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Process::Push => "push",
            Process::Push2w => "push-2w",
            Process::AxumSse => "axum-sse",
            Process::Tungstenite => "tungstenite",
            Process::Raw => "raw",
            Process::Raw2w => "raw-2w",
            Process::HyperBare => "hyper-bare",
        }
    }
}

impl ServerKind {
    /// The name in tables, JSON and `--servers`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ServerKind::PushSse => "push-sse",
            ServerKind::PushStream => "push-stream",
            ServerKind::PushLongpoll => "push-longpoll",
            ServerKind::PushPoll => "push-poll",
            ServerKind::PushWs => "push-ws",
            ServerKind::PushSse2w => "push-sse-2w",
            ServerKind::PushStream2w => "push-stream-2w",
            ServerKind::PushLongpoll2w => "push-longpoll-2w",
            ServerKind::PushWs2w => "push-ws-2w",
            ServerKind::NchanSse => "nchan-sse",
            ServerKind::NchanStream => "nchan-stream",
            ServerKind::NchanLongpoll => "nchan-longpoll",
            ServerKind::NchanWs => "nchan-ws",
            ServerKind::NchanSse2w => "nchan-sse-2w",
            ServerKind::NchanStream2w => "nchan-stream-2w",
            ServerKind::NchanLongpoll2w => "nchan-longpoll-2w",
            ServerKind::NchanWs2w => "nchan-ws-2w",
            ServerKind::AxumSse => "axum-sse",
            ServerKind::Tungstenite => "tungstenite",
            ServerKind::Raw => "raw",
            ServerKind::Raw2w => "raw-2w",
            ServerKind::HyperBare => "hyper-bare",
        }
    }

    /// The same server on one worker: what its clients speak.
    pub(crate) fn base(self) -> ServerKind {
        match self {
            PushSse2w => PushSse,
            PushStream2w => PushStream,
            PushLongpoll2w => PushLongpoll,
            PushWs2w => PushWs,
            NchanSse2w => NchanSse,
            NchanStream2w => NchanStream,
            NchanLongpoll2w => NchanLongpoll,
            NchanWs2w => NchanWs,
            Raw2w => Raw,
            other => other,
        }
    }

    /// Worker threads (nginx: worker processes) it runs on.
    pub(crate) fn workers(self) -> usize {
        if self.base() == self {
            1
        } else {
            2
        }
    }

    /// Nchan's row at the same workers: the peer each push row is compared with.
    pub(crate) fn nchan_peer(self) -> Option<ServerKind> {
        let one = match self.base() {
            PushSse | AxumSse | Raw => NchanSse,
            PushStream => NchanStream,
            PushLongpoll => NchanLongpoll,
            PushWs | Tungstenite => NchanWs,
            _ => return None,
        };
        Some(match (one, self.workers()) {
            (NchanSse, 2) => NchanSse2w,
            (NchanStream, 2) => NchanStream2w,
            (NchanLongpoll, 2) => NchanLongpoll2w,
            (NchanWs, 2) => NchanWs2w,
            (one, _) => one,
        })
    }

    /// The raw-socket ceiling at the same workers.
    pub(crate) fn ceiling(self) -> Option<ServerKind> {
        match self.base() {
            PushSse | PushStream | PushLongpoll | PushWs | NchanSse | NchanStream
            | NchanLongpoll | NchanWs | AxumSse | Tungstenite => {
                Some(if self.workers() == 2 { Raw2w } else { Raw })
            }
            _ => None,
        }
    }

    /// The process serving it; `None` for Nchan (nginx).
    pub(crate) fn process(self) -> Option<Process> {
        match self {
            ServerKind::PushSse
            | ServerKind::PushStream
            | ServerKind::PushLongpoll
            | ServerKind::PushPoll
            | ServerKind::PushWs => Some(Process::Push),
            ServerKind::PushSse2w
            | ServerKind::PushStream2w
            | ServerKind::PushLongpoll2w
            | ServerKind::PushWs2w => Some(Process::Push2w),
            ServerKind::NchanSse
            | ServerKind::NchanStream
            | ServerKind::NchanLongpoll
            | ServerKind::NchanWs
            | ServerKind::NchanSse2w
            | ServerKind::NchanStream2w
            | ServerKind::NchanLongpoll2w
            | ServerKind::NchanWs2w => None,
            ServerKind::AxumSse => Some(Process::AxumSse),
            ServerKind::Tungstenite => Some(Process::Tungstenite),
            ServerKind::Raw => Some(Process::Raw),
            ServerKind::Raw2w => Some(Process::Raw2w),
            ServerKind::HyperBare => Some(Process::HyperBare),
        }
    }
}

use ServerKind::{
    AxumSse, HyperBare, NchanLongpoll, NchanLongpoll2w, NchanSse, NchanSse2w, NchanStream,
    NchanStream2w, NchanWs, NchanWs2w, PushLongpoll, PushLongpoll2w, PushPoll, PushSse, PushSse2w,
    PushStream, PushStream2w, PushWs, PushWs2w, Raw, Raw2w, Tungstenite,
};

/// The HTTP servers of the fan-out table, in table order: each push technique next to its
/// peers, at one worker and at two (nginx: worker processes), and the raw-socket ceiling at
/// each.
pub(crate) const HTTP: [ServerKind; 16] = [
    PushSse,
    NchanSse,
    AxumSse,
    PushStream,
    NchanStream,
    PushLongpoll,
    NchanLongpoll,
    PushPoll,
    Raw,
    PushSse2w,
    NchanSse2w,
    PushStream2w,
    NchanStream2w,
    PushLongpoll2w,
    NchanLongpoll2w,
    Raw2w,
];

/// The WebSocket servers measured (at their own, larger N), at one worker and at two.
pub(crate) const WS: [ServerKind; 7] = [
    PushWs,
    NchanWs,
    Tungstenite,
    Raw,
    PushWs2w,
    NchanWs2w,
    Raw2w,
];

/// The servers of the flat-out fan-out, measured at every N.
pub(crate) const SATURATION: [ServerKind; 5] = [PushSse, PushStream, NchanSse, AxumSse, Raw];

/// The servers of the many-topics workload.
pub(crate) const MANY_TOPICS: [ServerKind; 4] = [PushSse, NchanSse, AxumSse, Raw];

/// The servers of the idle-memory table: every technique, its peers, the ceiling, and
/// `hyper-bare` (a hyper HTTP/1.1 connection holding a response body that never yields: the
/// floor of any technique built on hyper).
pub(crate) const IDLE: [ServerKind; 11] = [
    PushSse,
    PushStream,
    PushLongpoll,
    PushWs,
    NchanSse,
    NchanLongpoll,
    NchanWs,
    AxumSse,
    Tungstenite,
    Raw,
    HyperBare,
];

/// A `/proc/PID/status` field in KiB.
pub(crate) fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    field_kib(&status, field)
}

/// A `NAME: VALUE kB` line's value, from a `/proc` file's text.
fn field_kib(text: &str, field: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads a process's CPU time (user + system) in clock ticks from `/proc`.
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// A process's CPU time in user space and in the kernel, in clock ticks, from `/proc`.
pub(crate) fn cpu_split(pid: u32) -> (u64, u64) {
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
    (field(11), field(12))
}

/// A server under test.
pub(crate) struct Server {
    pub(crate) child: tokio::process::Child,
    /// The child's pid, kept after it is reaped.
    child_pid: u32,
    /// The process whose memory and CPU are measured (Nchan: its first nginx worker).
    pub(crate) pid: u32,
    /// Every process measured (Nchan: each worker), summed in [`Server::kib`] and
    /// [`Server::cpu_ticks`].
    pids: Vec<u32>,
    pub(crate) addr: std::net::SocketAddr,
    /// The counting allocator's line protocol, when the server was started counting.
    heap: Option<HeapIo>,
    _dir: Option<push_tests::TempDir>,
}

/// The pipes of a counting server: a line out asks, a [`Snapshot`] line comes back.
struct HeapIo {
    ask: tokio::process::ChildStdin,
    answers: BufReader<tokio::process::ChildStdout>,
}

/// Starts the server for `kind` in its own process.
pub(crate) async fn start(kind: ServerKind) -> Result<Server, String> {
    start_with(kind, false).await
}

/// Starts the server for `kind` in its own process; with `counting`, on the counting
/// allocator ([`super::heap`]; Nchan is not a Rust process and is started as it is).
pub(crate) async fn start_with(kind: ServerKind, counting: bool) -> Result<Server, String> {
    let Some(process) = kind.process() else {
        return start_nchan(kind.workers()).await;
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(exe);
    command.args(["serve", process.name()]);
    if counting {
        command.env(super::heap::ENV, "1").stdin(Stdio::piped());
    }
    start_command(kind.name(), command).await
}

/// Starts a server that prints its address first (`ADDR`, or `listening on http://ADDR/`).
pub(crate) async fn start_command(
    kind: &str,
    mut command: tokio::process::Command,
) -> Result<Server, String> {
    let mut child = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {kind} server: {e}"))?;
    let pid = child.id().ok_or("server exited")?;
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    stdout
        .read_line(&mut first)
        .await
        .map_err(|e| e.to_string())?;
    let heap = child.stdin.take().map(|ask| HeapIo {
        ask,
        answers: stdout,
    });
    let addr: std::net::SocketAddr = first
        .trim()
        .trim_start_matches("listening on http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("{kind} printed {first:?}: {e}"))?;
    Ok(Server {
        child,
        child_pid: pid,
        pid,
        pids: vec![pid],
        addr,
        heap,
        _dir: None,
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        // nginx's workers outlive a killed master: kill the measured processes too.
        for &pid in self.pids.iter().filter(|&&p| p != self.child_pid) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

impl Server {
    pub(crate) fn new(
        child: tokio::process::Child,
        pids: Vec<u32>,
        addr: std::net::SocketAddr,
        dir: push_tests::TempDir,
    ) -> Self {
        let pid = pids.first().copied().unwrap_or(0);
        let child_pid = child.id().unwrap_or(pid);
        Self {
            child,
            child_pid,
            pid,
            pids,
            addr,
            heap: None,
            _dir: Some(dir),
        }
    }

    /// A `/proc/PID/status` field in KiB, summed over the measured processes. For several
    /// (nginx's workers) `VmRSS:` is their proportional set size, so that pages they share
    /// (Nchan's shared memory) count once; `VmHWM:` is the sum of each one's peak.
    pub(crate) fn kib(&self, field: &str) -> u64 {
        if self.pids.len() > 1 && field == "VmRSS:" {
            return self
                .pids
                .iter()
                .map(|&p| {
                    let rollup = format!("/proc/{p}/smaps_rollup");
                    let text = std::fs::read_to_string(rollup).unwrap_or_default();
                    field_kib(&text, "Pss:")
                })
                .sum();
        }
        self.pids.iter().map(|&p| proc_kib(p, field)).sum()
    }

    /// CPU time in clock ticks, summed over the measured processes.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        self.pids.iter().map(|&p| cpu_ticks(p)).sum()
    }

    /// CPU time in user space, clock ticks, summed over the measured processes.
    pub(crate) fn user_ticks(&self) -> u64 {
        self.pids.iter().map(|&p| cpu_split(p).0).sum()
    }

    /// The server's live heap now, when it was started counting (and answers within 5 s).
    pub(crate) async fn heap(&mut self) -> Option<Snapshot> {
        self.ask_heap(b"\n").await
    }

    /// [`heap`](Self::heap), then counting stops: what follows runs at full speed.
    pub(crate) async fn last_heap(&mut self) -> Option<Snapshot> {
        self.ask_heap(b"off\n").await
    }

    async fn ask_heap(&mut self, line: &[u8]) -> Option<Snapshot> {
        use tokio::io::AsyncWriteExt as _;
        let io = self.heap.as_mut()?;
        let asked = async {
            io.ask.write_all(line).await.ok()?;
            io.ask.flush().await.ok()?;
            let mut line = String::new();
            io.answers.read_line(&mut line).await.ok()?;
            Snapshot::parse(&line)
        };
        tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .ok()
            .flatten()
    }
}

const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// Starts nginx with Nchan and `workers` worker processes on a free loopback port, in a temp
/// dir; measures its workers.
async fn start_nchan(workers: usize) -> Result<Server, String> {
    let nginx_found = std::process::Command::new("nginx")
        .arg("-v")
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !nginx_found || !std::path::Path::new(NCHAN_MODULE).exists() {
        return Err(
            "the Nchan peer needs nginx with Nchan: install the Debian packages nginx and \
             libnginx-mod-nchan (.ci/run does)"
                .to_owned(),
        );
    }
    let dir = push_tests::TempDir::new("nchan");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let conf = include_str!("../../nchan/nginx.conf")
        .replace("@PREFIX@", &dir.0.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@WORKERS@", &workers.to_string());
    let path = dir.0.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let child = tokio::process::Command::new("nginx")
        .arg("-p")
        .arg(&dir.0)
        .arg("-e")
        .arg(dir.0.join("error.log"))
        .arg("-c")
        .arg(&path)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let master = child.id().ok_or("nginx exited at once")?;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default();
        let pids: Vec<u32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.len() >= workers && tokio::net::TcpStream::connect(addr).await.is_ok() {
            break pids;
        }
        if std::time::Instant::now() >= deadline {
            let log = std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
            return Err(format!("nginx with Nchan did not start within 10 s: {log}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Server::new(child, pids, addr, dir))
}
