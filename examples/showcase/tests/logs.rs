//! The showcase's log (the crates' `tracing` events, on its stderr) against real clients on
//! loopback and a real Redis: a refused stream, a slow WebSocket client closed, and a Redis
//! killed and started again each show up as exactly one line, and the outage's end as one more.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use push_tests::{Example, RedisServer, TempDir};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// The log lines holding every one of `words`.
fn lines(log: &Path, words: &[&str]) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| words.iter().all(|w| line.contains(w)))
        .map(str::to_owned)
        .collect()
}

/// Waits (at most `bound`) for a line holding every one of `words` and asserts there is one;
/// the test counts again at its end, seconds later, so a late second line fails it too.
async fn exactly_one(log: &Path, words: &[&str], bound: Duration) -> String {
    let deadline = Instant::now() + bound;
    while lines(log, words).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no line with {words:?} within {bound:?}; the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let found = lines(log, words);
    assert_eq!(found.len(), 1, "one line with {words:?}, got {found:#?}");
    found[0].clone()
}

/// Sends a request head on a new connection and reads the answer's head (the body stays
/// unread); the connection is returned so that the caller decides how long it stays open.
async fn open(stream: TcpStream, head: &str) -> (TcpStream, String) {
    let mut stream = stream;
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert_eq!(n, 1, "the server closed before answering: {got:?}");
        got.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&got).into_owned())
}

/// `POST /topics/{topic}` with `body`; the answer's status.
async fn publish(addr: SocketAddr, topic: &str, body: Bytes) -> u16 {
    let req = http::Request::post(format!("/topics/{topic}"))
        .header("host", addr.to_string())
        .body(Full::new(body))
        .unwrap();
    push_tests::http1(addr, req).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_a_slow_client_and_a_redis_outage_are_one_line_each() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let dir = TempDir::new("showcase-log");
    let log = dir.0.join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_showcase"));
    command
        .args(["--no-ticker", "--redis", &redis.url()])
        .args(["--client-streams", "1", "--ws-slow-timeout", "1"])
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap());
    let showcase = Example::spawn(command);
    let addr = showcase.addr();
    let host = addr.to_string();

    // A refusal: the client's second stream is over its quota of one (`--client-streams 1`).
    let get = format!("GET /sse/logs HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let (_held, head) = open(TcpStream::connect(addr).await.unwrap(), &get).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, head) = open(TcpStream::connect(addr).await.unwrap(), &get).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let line = exactly_one(
        &log,
        &["INFO", "refused", "technique=sse", "reason=quota"],
        secs(5),
    )
    .await;
    assert!(line.contains("status=429"), "{line}");

    // A slow client: a WebSocket that stops reading, with a small receive buffer, while
    // events of 60 KB are published; its writes wait past `--ws-slow-timeout 1`.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let handshake = format!(
        "GET /ws/slow HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let (mut ws, head) = open(socket.connect(addr).await.unwrap(), &handshake).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The subscription's outcome message: subscribed, so what is published next is sent.
    let mut first = [0u8; 256];
    let n = tokio::time::timeout(secs(5), ws.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).contains("outcome"));
    let payload = Bytes::from(vec![b'x'; 60_000]);
    for _ in 0..30 {
        assert_eq!(publish(addr, "slow", payload.clone()).await, 200);
    }
    let words = ["INFO", "closed", "technique=ws", "reason=slow_client"];
    let line = exactly_one(&log, &words, secs(5)).await;
    assert!(
        line.contains("topic=slow") && line.contains("code=1008"),
        "{line}"
    );
    drop(ws);

    // An outage: Redis killed while a stream follows a topic, publishes failing and readers
    // retrying meanwhile, then started again: one warning, and one line when it answers again.
    redis.kill();
    assert_ne!(publish(addr, "logs", Bytes::from("away")).await, 200);
    let unreachable = ["WARN", "redis unreachable"];
    let line = exactly_one(&log, &unreachable, secs(5)).await;
    assert!(line.contains("error="), "{line}");
    // More failures during the same outage add no warning.
    for _ in 0..3 {
        assert_ne!(publish(addr, "logs", Bytes::from("away")).await, 200);
    }
    assert_eq!(lines(&log, &unreachable).len(), 1, "one warning per outage");
    redis.restart();
    let deadline = Instant::now() + secs(10);
    while publish(addr, "logs", Bytes::from("back")).await != 200 {
        assert!(
            Instant::now() < deadline,
            "no publish succeeded after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    exactly_one(&log, &["INFO", "redis reachable again"], secs(10)).await;
    assert_eq!(
        lines(&log, &unreachable).len(),
        1,
        "one warning for the outage"
    );
    // Still one line for each decision, after everything that followed it.
    assert_eq!(
        lines(&log, &["refused", "technique=sse", "reason=quota"]).len(),
        1
    );
    assert_eq!(
        lines(&log, &["closed", "technique=ws", "reason=slow_client"]).len(),
        1
    );
    assert_eq!(lines(&log, &["redis reachable again"]).len(), 1);
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
