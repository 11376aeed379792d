//! The showcase under hostile and heavy traffic, as an attacker would try it: each test is one
//! attack with a resource assertion (memory, open connections, permits, exit time). Loopback
//! only; every loop is bounded in count, and every time bound here is a generous safety limit,
//! not a performance claim.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use push_tests::{require, Example};
use push_ws::client::{Client, ClientError, Received};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const SHOWCASE: &str = env!("CARGO_BIN_EXE_showcase");

fn showcase(args: &[&str]) -> Example {
    let mut all = vec!["--no-ticker"];
    all.extend_from_slice(args);
    Example::start_with(SHOWCASE, &all)
}

/// Sends one HTTP/1.1 request on a new connection and reads the whole answer (until the server
/// closes).
async fn request(addr: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn post(path: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A `/metrics` gauge.
async fn metric(addr: SocketAddr, line: &str) -> u64 {
    let text = request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in {text}"))
}

/// Polls until a fresh connection is served (the server recovered), failing after `bound`.
async fn served_within(addr: SocketAddr, bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let get = "GET /poll/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = request(addr, get).await;
        if answer.starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(Instant::now() < deadline, "not served again: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `n` connections that each send `GET path` and then never read.
async fn open_requests_unchecked(addr: SocketAddr, n: usize, path: &str) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        streams.push(stream);
    }
    streams
}

/// [`open_requests_unchecked`], then waits until the server holds all of them (its
/// `push_open` gauge for `technique`).
async fn open_requests(addr: SocketAddr, n: usize, path: &str, technique: &str) -> Vec<TcpStream> {
    let streams = open_requests_unchecked(addr, n, path).await;
    let gauge = format!("push_open{{technique=\"{technique}\"}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(addr, &gauge).await < n as u64 {
        assert!(
            Instant::now() < deadline,
            "the server did not take {n} requests"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    streams
}

/// Whether the server closed `stream` (EOF or reset) within `bound`, reading and discarding.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_sequential_connections_do_not_grow_memory() {
    let example = showcase(&[]);
    let addr = example.addr();
    let get = "GET /poll/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Warm up: allocator arenas, the topic, hyper's caches.
    for _ in 0..2_000 {
        assert!(request(addr, get).await.starts_with("HTTP/1.1 200"));
    }
    let before = example.rss_kib();
    for _ in 0..20_000 {
        request(addr, get).await;
    }
    let after = example.rss_kib();
    let growth = after.saturating_sub(before);
    eprintln!("RSS {before} -> {after} KiB over 20,000 connections");
    assert!(
        growth < 2 * 1024,
        "RSS grew {growth} KiB over 20,000 closed connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_tricklers_are_closed_by_the_header_timeout() {
    let example = showcase(&["--header-timeout", "2"]);
    let addr = example.addr();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..300 {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(b"GET /sse/demo HTTP/1.1\r\n").await.ok();
            // One byte a second, never finishing the head.
            for _ in 0..30 {
                if stream.write_all(b"X").await.is_err() {
                    return Some(started.elapsed());
                }
                if closed_within(&mut stream, Duration::from_secs(1)).await {
                    return Some(started.elapsed());
                }
            }
            None
        }));
    }
    let mut latest = Duration::ZERO;
    for task in tasks {
        let closed = task.await.expect("task");
        let at = closed.expect("a trickling connection outlived 30 s");
        latest = latest.max(at);
    }
    eprintln!("300 tricklers all closed by the server within {latest:?}");
    assert!(latest < Duration::from_secs(15), "{latest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_and_unfinished_tls_handshakes_are_closed() {
    for tls in [false, true] {
        let mut args = vec!["--handshake-timeout", "1"];
        if tls {
            args.push("--tls");
        }
        let example = showcase(&args);
        let addr = example.addr();
        let mut streams = Vec::new();
        for _ in 0..200 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            if tls {
                // A TLS record header announcing a ClientHello that never comes.
                stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.ok();
            }
            streams.push(stream);
        }
        for stream in &mut streams {
            assert!(
                closed_within(stream, Duration::from_secs(10)).await,
                "a silent connection (tls: {tls}) was still open after 10 s"
            );
        }
        // A half-sent HTTP/2 preface is held to the same bound.
        if !tls {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(b"PRI * HTTP/2.0\r\n").await.ok();
            assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_clients_that_vanish_give_their_permits_back() {
    let example = showcase(&[]);
    let addr = example.addr();
    let mut connections = Vec::new();
    let mut held = Vec::new();
    for c in 0..4 {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.expect("ready");
        for i in 0..10 {
            let path = match i % 3 {
                0 => "/sse/demo",
                1 => "/stream/demo",
                _ => "/longpoll/demo?timeout=50",
            };
            let req = http::Request::get(format!("http://{addr}{path}"))
                .body(())
                .expect("request");
            let (response, _) = client.send_request(req, true).expect("send");
            held.push((c, response));
            client = client.ready().await.expect("ready");
        }
        connections.push(driver);
    }
    // Every stream is open on the server.
    let open = || async {
        metric(addr, "push_open{technique=\"sse\"}").await
            + metric(addr, "push_open{technique=\"stream\"}").await
            + metric(addr, "push_open{technique=\"longpoll\"}").await
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while open().await < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open().await, 40);
    // Connection 0's streams are reset one by one (RST_STREAM CANCEL when dropped) while the
    // connection lives; connections 1 to 3 vanish (their sockets close).
    held.retain(|(c, _)| *c != 0);
    for driver in connections.drain(1..) {
        driver.abort();
    }
    drop(held);
    let started = Instant::now();
    while open().await > 0 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = open().await;
    eprintln!(
        "40 h2 streams released {left} left after {:?}",
        started.elapsed()
    );
    assert_eq!(left, 0, "streams still counted after the clients went away");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_websocket_client_stays_open_across_a_huge_event() {
    let example = showcase(&[]);
    let addr = example.addr();
    let mut client = Client::connect(&format!("ws://{addr}/ws/big"))
        .await
        .expect("connect");
    assert!(matches!(
        client.next().await.expect("outcome"),
        Received::Outcome { .. }
    ));
    // 50,000 control characters: the JSON envelope escapes each as \u0001 (300,000 bytes).
    let huge = "\u{1}".repeat(50_000);
    let answer = request(addr, &post("/topics/big", "", &huge)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = request(addr, &post("/topics/big", "", "after")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut seen_gap_or_event = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Ok(Received::Outcome { outcome, .. })) => {
                assert_eq!(outcome, push_core::Outcome::Gap { missed: 1 });
                seen_gap_or_event = true;
            }
            Ok(Ok(Received::Event { event, .. })) if event.data == "after" => break,
            Ok(Ok(Received::Event { event, .. })) => {
                assert_eq!(event.data.len(), 50_000);
                seen_gap_or_event = true;
            }
            other => panic!("the client was not kept open: {other:?}"),
        }
    }
    assert!(
        seen_gap_or_event,
        "the huge event was neither delivered nor counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_byte_budget_holds_under_a_publish_flood() {
    let example = showcase(&["--max-retained-mib", "16"]);
    let addr = example.addr();
    let before = example.rss_kib();
    let payload = "x".repeat(64 * 1024);
    // 1,600 events of 64 KiB over 160 topics: 100 MiB published, 16 MiB may stay.
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let topic = (worker * 200 + i) % 160;
                let answer =
                    request(addr, &post(&format!("/topics/flood-{topic}"), "", &payload)).await;
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher");
    }
    let retained = metric(addr, "push_hub_retained_bytes").await;
    let after = example.rss_kib();
    eprintln!(
        "retained {} KiB; RSS {before} -> {after} KiB after 100 MiB published",
        retained / 1024
    );
    assert!(retained <= 16 << 20, "{retained} bytes retained");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew {} KiB",
        after.saturating_sub(before)
    );
    // A new topic still works.
    let answer = request(addr, &post("/topics/fresh", "", "hello")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_missing_tokens_are_refused() {
    let open = showcase(&[]);
    let cases: [(&str, &str, &str); 3] = [
        // A form on another site, a fetch from one, and the page's own origin.
        (
            "/topics/t",
            "Origin: http://evil.example\r\nContent-Type: text/plain\r\n",
            "403",
        ),
        ("/admin/drop", "Sec-Fetch-Site: cross-site\r\n", "403"),
        ("/topics/t", "Origin: http://127.0.0.1\r\n", "200"),
    ];
    expect_statuses(open.addr(), &cases).await;
    let guarded = showcase(&["--token", "s3cret"]);
    let cases: [(&str, &str, &str); 4] = [
        ("/topics/t", "", "401"),
        ("/admin/drop", "Authorization: Bearer nope\r\n", "401"),
        ("/topics/t", "Authorization: Bearer s3cret\r\n", "200"),
        // A token does not let another site through.
        (
            "/topics/t",
            "Authorization: Bearer s3cret\r\nOrigin: http://evil.example\r\n",
            "403",
        ),
    ];
    expect_statuses(guarded.addr(), &cases).await;
    // Reading stays open to all.
    let read = request(
        guarded.addr(),
        "GET /poll/t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
}

/// POSTs each `(path, headers, expected status)` and checks the status.
async fn expect_statuses(addr: SocketAddr, cases: &[(&str, &str, &str)]) {
    for (path, headers, status) in cases {
        let answer = request(addr, &post(path, headers, "x")).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path} with {headers:?}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_and_the_cap_recovers() {
    let example = showcase(&["--max-connections", "21"]);
    let addr = example.addr();
    // 20 held (the 21st slot stays free for the gauge's own request), then one more.
    let mut held = open_requests(addr, 20, "/longpoll/demo?timeout=30", "longpoll").await;
    held.extend(open_requests_unchecked(addr, 1, "/longpoll/demo?timeout=30").await);
    // Until the server has taken the 21st, a request may still find a free slot: ask again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let over = loop {
        let get = "GET /poll/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = request(addr, get).await;
        if answer.starts_with("HTTP/1.1 503") || Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(over.starts_with("HTTP/1.1 503"), "{over}");
    assert!(over.contains("Retry-After: 1"), "{over}");
    drop(held);
    served_within(addr, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_accept_loop_backs_off_and_recovers() {
    if !require("prlimit", "util-linux") {
        return;
    }
    let log = std::env::temp_dir().join(format!("showcase-emfile-{}.log", std::process::id()));
    let mut command = Command::new("prlimit");
    command
        .args(["--nofile=64:64", SHOWCASE, "--no-ticker"])
        .stderr(std::fs::File::create(&log).expect("log file"));
    let example = Example::spawn(command);
    let addr = example.addr();
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            held.push(stream);
        }
    }
    let cpu_before = example.cpu_time();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = example.cpu_time().saturating_sub(cpu_before);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines = text.lines().filter(|l| l.starts_with("accept:")).count();
    eprintln!("at the file limit for 3 s: {lines} log lines, {cpu:?} of CPU");
    assert!(lines >= 1, "the error was never reported: {text}");
    assert!(lines <= 5, "{lines} accept lines in 3 s:\n{text}");
    assert!(
        cpu < Duration::from_millis(1_500),
        "the accept loop spun: {cpu:?}"
    );
    drop(held);
    served_within(addr, Duration::from_secs(15)).await;
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_are_bounded_by_the_send_buffer() {
    if !require("ss", "iproute2") {
        return;
    }
    let example = showcase(&[]);
    let addr = example.addr();
    let clients = open_requests(addr, 20, "/sse/slow", "sse").await;
    let payload = "y".repeat(60_000);
    for _ in 0..60 {
        request(addr, &post("/topics/slow", "", &payload)).await;
    }
    // Wait until the server has filled what it may of every socket (each has bytes queued).
    let ss = || {
        Command::new("ss")
            .args([
                "-tmnH",
                "state",
                "established",
                &format!("( sport = :{} )", addr.port()),
            ])
            .output()
            .expect("ss")
    };
    let queued = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with(char::is_whitespace))
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|q| q != "0"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = ss();
    while queued(&String::from_utf8_lossy(&out.stdout)) < 20 {
        assert!(
            Instant::now() < deadline,
            "the non-reading sockets never filled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        out = ss();
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let buffers: Vec<u64> = text
        .split("tb")
        .skip(1)
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .collect();
    eprintln!("server-side send buffers: {buffers:?}");
    assert!(buffers.len() >= 20, "{text}");
    // SO_SNDBUF 64 KiB: the kernel reports twice that, and never autotunes it up to MiBs.
    assert!(buffers.iter().all(|&tb| tb <= 2 * 64 * 1024), "{text}");
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_mixed_clients_exits_within_the_bound_and_tells_each() {
    let mut example = showcase(&[]);
    let addr = example.addr();
    let first = example.publish("demo", "zero");
    let stream_reader = |path: String| {
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            stream.write_all(head.as_bytes()).await.expect("write");
            let mut out = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let mut sse = Vec::new();
    let mut streams = Vec::new();
    let mut longpolls = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..100 {
        sse.push(stream_reader("/sse/demo".into()));
        streams.push(stream_reader(format!("/stream/demo?since={first}")));
        longpolls.push(stream_reader(format!(
            "/longpoll/demo?since={first}&timeout=50"
        )));
    }
    for _ in 0..100 {
        let client = Client::connect(&format!("ws://{addr}/ws/demo"))
            .await
            .expect("connect");
        sockets.push(tokio::spawn(async move {
            let mut client = client;
            loop {
                match client.next().await {
                    Ok(_) => {}
                    Err(ClientError::Closed { code, .. }) => return code,
                    Err(_) => return None,
                }
            }
        }));
    }
    // HTTP/2 clients (push-h2's driver): 100 SSE streams on one connection.
    let mut h2_streams = Vec::new();
    {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.expect("ready");
        for _ in 0..100 {
            let req = http::Request::get(format!("http://{addr}/sse/demo"))
                .body(())
                .expect("request");
            let (response, _) = client.send_request(req, true).expect("send");
            h2_streams.push(tokio::spawn(async move {
                let mut body = response.await.expect("response").into_body();
                let mut text = Vec::new();
                while let Some(Ok(chunk)) = body.data().await {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    text.extend_from_slice(&chunk);
                }
                String::from_utf8_lossy(&text).into_owned()
            }));
            client = client.ready().await.expect("ready");
        }
    }
    // Attackers that must not extend the stop: silent and header-trickling connections.
    let mut silent = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"GET /sse/demo HTTP/1.1\r\nX").await.ok();
        silent.push(stream);
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(addr, "push_open{technique=\"ws\"}").await < 100
        || metric(addr, "push_open{technique=\"sse\"}").await < 200
    {
        assert!(Instant::now() < deadline, "clients did not all connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while metric(addr, "push_open{technique=\"longpoll\"}").await < 100 {
        assert!(Instant::now() < deadline, "long-polls were not all held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    example.signal("TERM");
    let status = example
        .wait_exit(Duration::from_secs(15))
        .expect("the showcase did not exit within 15 s of SIGTERM");
    let took = started.elapsed();
    eprintln!("SIGTERM with 500 clients and 100 attackers: exit {status} after {took:?}");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    for task in sse {
        let text = task.await.expect("sse");
        assert!(
            text.contains("retry:"),
            "an SSE client got no retry hint: {text}"
        );
    }
    for task in h2_streams {
        let text = task.await.expect("h2 sse");
        assert!(
            text.contains("retry:"),
            "an HTTP/2 SSE client got no retry hint: {text}"
        );
    }
    for task in streams {
        let text = task.await.expect("stream");
        assert!(text.contains("\"end\":\"shutdown\""), "no end line: {text}");
    }
    for task in longpolls {
        let text = task.await.expect("longpoll");
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "a long-poll was not answered: {text}"
        );
    }
    for task in sockets {
        assert_eq!(task.await.expect("ws"), Some(1001));
    }
}

/// Connects to `addr` from the loopback address `from` (every 127.0.0.0/8 address is local on
/// Linux): the server tells clients apart by address, so each address is another client.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback source address");
    socket.connect(addr).await.expect("connect")
}

/// Reads until the end of a response head, EOF or `bound`: what was read.
async fn read_head(stream: &mut (impl AsyncRead + Unpin), bound: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + bound;
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// [`request`] from the loopback address `from`.
async fn request_from(from: [u8; 4], addr: SocketAddr, head: &str) -> String {
    let mut stream = connect_from(from, addr).await;
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// [`served_within`] for a client at the loopback address `from`.
async fn served_from_within(from: [u8; 4], addr: SocketAddr, bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let get = "GET /poll/demo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = request_from(from, addr, get).await;
        if answer.starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{from:?} not served again: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The JSON body of a whole answer read by [`request`].
fn body_json(answer: &str) -> serde_json::Value {
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .trim();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Reads one HTTP/1.1 response with a `Content-Length` body off a keep-alive connection,
/// keeping what follows it in `buf`: its status and body.
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: tokio::time::Instant,
) -> (u16, String) {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buf, deadline).await;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {head}"));
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    while buf.len() < end + length {
        read_more(stream, buf, deadline).await;
    }
    let body = String::from_utf8_lossy(&buf[end..end + length]).into_owned();
    buf.drain(..end + length);
    (status, body)
}

/// Reads what `stream` has into `buf`, failing at EOF or at `deadline`.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: tokio::time::Instant) {
    let mut chunk = [0u8; 16 * 1024];
    let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
        .await
        .expect("an answer before the deadline")
        .expect("read");
    assert!(n > 0, "the server closed the connection");
    buf.extend_from_slice(&chunk[..n]);
}

/// The `id` of a publish's answer body, `{"id":"CURSOR"}`.
fn published_id(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {body}"))
        .to_owned()
}

/// An idempotency key of the longest kind (128 visible ASCII characters), unique by `tag`.
fn long_key(tag: &str) -> String {
    let mut key = format!("{tag}~");
    while key.len() < push_core::MAX_IDEMPOTENCY_KEY_LEN {
        key.push(char::from(b'!' + (key.len() % 94) as u8));
    }
    key
}

/// A publish of one byte with `key` on a keep-alive connection.
fn keyed_publish(topic: &str, key: &str) -> String {
    format!(
        "POST /topics/{topic} HTTP/1.1\r\nHost: x\r\nIdempotency-Key: {key}\r\nContent-Length: 1\r\n\r\nx"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idempotency_keys_trims_no_event() {
    const WORKERS: usize = 8;
    const PER_WORKER: usize = 6_250;
    const BATCH: usize = 250;
    const TOPICS: usize = 500;
    let example = showcase(&["--max-retained-mib", "16"]);
    let addr = example.addr();
    // Where the quiet topic stands before its first event, then its 20 events.
    let get = "GET /poll/quiet HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let head = body_json(&request(addr, get).await)["next"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    for i in 0..20 {
        let answer = request(addr, &post("/topics/quiet", "", &format!("q{i}"))).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // The oldest key of all, published before the flood.
    let first_key = long_key("first");
    let mut lone = TcpStream::connect(addr).await.expect("connect");
    lone.write_all(keyed_publish("flood-0", &first_key).as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = read_response(&mut lone, &mut buf, deadline).await;
    assert_eq!(status, 200, "{body}");
    let first_id = published_id(&body);
    let before = example.rss_kib();
    // 50,000 publishes with distinct 128-character keys over 500 topics: 8 keep-alive
    // connections, each pipelining batches of 250.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        workers.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let mut buf = Vec::new();
            let mut last = (String::new(), String::new(), String::new());
            for batch in 0..PER_WORKER / BATCH {
                let mut requests = String::new();
                let mut sent = Vec::new();
                for i in 0..BATCH {
                    let n = (batch * BATCH + i) * WORKERS + w;
                    let (topic, key) = (format!("flood-{}", n % TOPICS), long_key(&n.to_string()));
                    requests.push_str(&keyed_publish(&topic, &key));
                    sent.push((topic, key));
                }
                stream.write_all(requests.as_bytes()).await.expect("write");
                for (topic, key) in sent {
                    let (status, body) = read_response(&mut stream, &mut buf, deadline).await;
                    assert_eq!(status, 200, "a keyed publish was refused: {body}");
                    last = (topic, key, published_id(&body));
                }
            }
            last
        }));
    }
    let mut newest = Vec::new();
    for worker in workers {
        newest.push(worker.await.expect("publisher"));
    }
    let took = started.elapsed();
    let after = example.rss_kib();
    let retained = metric(addr, "push_hub_retained_bytes").await;
    eprintln!(
        "50,000 keyed publishes in {took:?}: RSS {before} -> {after} KiB, {} KiB of events retained",
        retained / 1024
    );
    // Every quiet event is still there, in order, without a gap.
    let get =
        format!("GET /poll/quiet?since={head} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answer = body_json(&request(addr, &get).await);
    assert_eq!(answer["outcome"], "resumed", "{answer}");
    let data: Vec<&str> = answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["data"].as_str())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("q{i}")).collect();
    assert_eq!(data, expected, "{answer}");
    assert_eq!(answer["more"], false, "{answer}");
    assert!(retained <= 16 << 20, "{retained} bytes of events retained");
    // Keys have a budget of their own: the newest are remembered (a retry answers the first
    // publish's id), the oldest of all was forgotten (a retry publishes anew).
    for (topic, key, id) in newest {
        lone.write_all(keyed_publish(&topic, &key).as_bytes())
            .await
            .expect("write");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (status, body) = read_response(&mut lone, &mut buf, deadline).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(published_id(&body), id, "a recent key was forgotten");
    }
    lone.write_all(keyed_publish("flood-0", &first_key).as_bytes())
        .await
        .expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = read_response(&mut lone, &mut buf, deadline).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        published_id(&body),
        first_id,
        "the oldest key outlived 17 MB of newer keys: the key budget is not enforced"
    );
    assert!(
        after < 300 * 1024,
        "RSS {after} KiB after the key flood (from {before} KiB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_over_its_connection_quota_gets_429_and_others_are_served() {
    let example = showcase(&[
        "--max-connections",
        "200",
        "--max-connections-per-address",
        "50",
    ]);
    let addr = example.addr();
    let get = "GET /sse/demo HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        let mut stream = connect_from([127, 0, 0, 2], addr).await;
        // Over the quota the server answers before reading, and may have closed already.
        let _ = stream.write_all(get.as_bytes()).await;
        let head = read_head(&mut stream, Duration::from_secs(10)).await;
        if head.starts_with("HTTP/1.1 200") {
            held.push(stream);
        } else {
            assert!(head.starts_with("HTTP/1.1 429"), "{head}");
            assert!(head.contains("Retry-After: "), "{head}");
            refused += 1;
        }
    }
    eprintln!(
        "127.0.0.2: {} SSE streams served, {refused} connections refused",
        held.len()
    );
    assert_eq!((held.len(), refused), (50, 10));
    // Another address is served meanwhile, a stream too.
    let mut other = connect_from([127, 0, 0, 3], addr).await;
    other.write_all(get.as_bytes()).await.expect("write");
    let head = read_head(&mut other, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Once its connections close, 127.0.0.2 is served again.
    drop(held);
    served_from_within([127, 0, 0, 2], addr, Duration::from_secs(10)).await;
}

/// An HTTP/2 connection (prior knowledge) from the loopback address `from`, its driver spawned.
async fn h2_from(from: [u8; 4], addr: SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = connect_from(from, addr).await;
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client.ready().await.expect("ready")
}

/// The status of `GET /sse/demo` on a new HTTP/2 connection from `from`, and its response
/// (which holds the stream open).
async fn h2_sse_from(
    from: [u8; 4],
    addr: SocketAddr,
) -> (http::StatusCode, http::Response<h2::RecvStream>) {
    let mut client = h2_from(from, addr).await;
    let req = http::Request::get(format!("http://{addr}/sse/demo"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(req, true).expect("send");
    let res = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("answered in time")
        .expect("response");
    (res.status(), res)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_over_its_stream_quota_on_http2_gets_429_and_others_are_served() {
    let example = showcase(&[]);
    let addr = example.addr();
    let attack = async {
        // 8 connections x 140 SSE streams from one address: 1,120, over the quota of 1,000.
        let mut responses = Vec::new();
        for _ in 0..8 {
            let mut client = h2_from([127, 0, 0, 4], addr).await;
            for _ in 0..140 {
                let req = http::Request::get(format!("http://{addr}/sse/demo"))
                    .body(())
                    .expect("request");
                let (response, _) = client.send_request(req, true).expect("send");
                responses.push(response);
                client = client.ready().await.expect("ready");
            }
        }
        let mut held = Vec::new();
        let mut refused = 0;
        for response in responses {
            let res = response.await.expect("response");
            match res.status().as_u16() {
                200 => held.push(res),
                429 => {
                    assert!(res.headers().contains_key(http::header::RETRY_AFTER));
                    refused += 1;
                }
                other => panic!("{other}: {res:?}"),
            }
        }
        (held, refused)
    };
    let started = Instant::now();
    let (held, refused) = tokio::time::timeout(Duration::from_secs(20), attack)
        .await
        .expect("1,120 HTTP/2 streams answered within 20 s");
    eprintln!(
        "127.0.0.4 over HTTP/2: {} streams served, {refused} refused, in {:?}",
        held.len(),
        started.elapsed()
    );
    assert_eq!((held.len(), refused), (1_000, 120));
    assert_eq!(metric(addr, "push_open{technique=\"sse\"}").await, 1_000);
    // Another client is served meanwhile.
    let (status, other) = h2_sse_from([127, 0, 0, 5], addr).await;
    assert_eq!(status, 200);
    drop(other);
    // The streams reset, the client is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = h2_sse_from([127, 0, 0, 4], addr).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "127.0.0.4 not served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bare WebSocket client (RFC 6455, text messages only) from a chosen loopback address,
/// which push-ws's `Client` cannot bind: WebSocket clients are told apart by address.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    async fn connect(from: [u8; 4], addr: SocketAddr, path: &str) -> Self {
        let mut stream = connect_from(from, addr).await;
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
            push_ws::SUBPROTOCOL
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut ws = Self {
            stream,
            buf: Vec::new(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            ws.read_more(deadline).await;
        };
        let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        ws.buf.drain(..end);
        ws
    }

    async fn read_more(&mut self, deadline: tokio::time::Instant) {
        read_more(&mut self.stream, &mut self.buf, deadline).await;
    }

    /// Sends `text` as one masked text frame.
    async fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mask = [0x5a, 0x13, 0xc7, 0x2e];
        let mut frame = vec![0x81];
        match u8::try_from(payload.len()) {
            Ok(n) if n < 126 => frame.push(0x80 | n),
            _ => {
                let n = u16::try_from(payload.len()).expect("a short message");
                frame.push(0x80 | 126);
                frame.extend_from_slice(&n.to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("write");
    }

    /// The next text message as JSON (pings skipped; a close fails the test).
    async fn next(&mut self) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while self.buf.len() < 2 {
                self.read_more(deadline).await;
            }
            let opcode = self.buf[0] & 0x0f;
            let (start, len) = match self.buf[1] & 0x7f {
                126 => {
                    while self.buf.len() < 4 {
                        self.read_more(deadline).await;
                    }
                    (
                        4,
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                    )
                }
                127 => panic!("an unexpectedly large message"),
                n => (2, usize::from(n)),
            };
            while self.buf.len() < start + len {
                self.read_more(deadline).await;
            }
            let payload: Vec<u8> = self.buf.drain(..start + len).skip(start).collect();
            match opcode {
                0x1 => return serde_json::from_slice(&payload).expect("JSON"),
                0x8 => panic!("closed by the server: {payload:?}"),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_fill_the_topic_table() {
    let example = showcase(&[]);
    let addr = example.addr();
    // 20 connections x 64 invented topics from 127.0.0.1: 1,280 subscriptions asked.
    let mut attackers = Vec::new();
    let (mut subscribed, mut refused) = (0, 0);
    for c in 0..20 {
        let mut client = Client::connect(&format!("ws://{addr}/ws"))
            .await
            .expect("connect");
        for t in 0..64 {
            let topic = format!("invented-{c}-{t}");
            client.subscribe(&topic, None).await.expect("subscribe");
        }
        for _ in 0..64 {
            let message = tokio::time::timeout(Duration::from_secs(10), client.next())
                .await
                .expect("every subscribe answered")
                .expect("a message");
            match message {
                Received::Outcome { .. } => subscribed += 1,
                Received::Error { error, .. } => {
                    assert!(error.contains("quota"), "{error}");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        attackers.push(client);
    }
    let topics = metric(addr, "push_hub_topics").await;
    eprintln!("one client: {subscribed} subscriptions, {refused} refused; {topics} hub topics");
    assert_eq!((subscribed, refused), (1_000, 280));
    assert!(topics <= 1_001, "{topics} topics in the hub");
    // Another client subscribes to a brand-new topic and gets what is published there.
    let mut other = RawWs::connect([127, 0, 0, 6], addr, "/ws").await;
    other
        .send(r#"{"op":"subscribe","topic":"brand-new"}"#)
        .await;
    let outcome = other.next().await;
    assert_eq!(outcome["outcome"], "resumed", "{outcome}");
    let answer = request(addr, &post("/topics/brand-new", "", "fresh")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let event = other.next().await;
    assert_eq!(event["data"], "fresh", "{event}");
    // A publish to a new topic is not refused for want of room.
    let answer = request(addr, &post("/topics/another-new", "", "x")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(attackers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_flood_is_closed_with_1008_and_others_are_served() {
    let example = showcase(&[]);
    let addr = example.addr();
    let mut calm = Client::connect(&format!("ws://{addr}/ws"))
        .await
        .expect("connect");
    let mut flooder = Client::connect(&format!("ws://{addr}/ws"))
        .await
        .expect("connect");
    let mut sent = 0;
    for _ in 0..1_000 {
        if flooder.unsubscribe("nothing").await.is_err() {
            break;
        }
        sent += 1;
    }
    // The answers to what was within the limit, then the error, then the close.
    let mut error = None;
    let mut answers = 0;
    let code = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), flooder.next())
            .await
            .expect("the flooder was neither told nor closed");
        match message {
            Ok(Received::Error { error: e, .. }) => error = Some(e),
            Ok(Received::Unsubscribed { .. }) => answers += 1,
            Ok(other) => panic!("{other:?}"),
            Err(ClientError::Closed { code, .. }) => break code,
            Err(e) => panic!("not closed cleanly: {e} after {answers} answers"),
        }
        assert!(answers <= 1_000);
    };
    eprintln!("flooder: {sent} messages sent, {answers} answered, then {error:?}, close {code:?}");
    let error = error.expect("an error message before the close");
    assert!(error.contains("too many messages"), "{error}");
    assert_eq!(code, Some(1008));
    // The other client subscribes and gets a published event.
    calm.subscribe("calm", None).await.expect("subscribe");
    let outcome = tokio::time::timeout(Duration::from_secs(10), calm.next())
        .await
        .expect("subscribe answered")
        .expect("a message");
    assert!(matches!(outcome, Received::Outcome { .. }), "{outcome:?}");
    let answer = request(addr, &post("/topics/calm", "", "still here")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let event = tokio::time::timeout(Duration::from_secs(10), calm.next())
        .await
        .expect("the event delivered")
        .expect("a message");
    match event {
        Received::Event { event, .. } => assert_eq!(event.data, "still here"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_trickled_publish_bodies_get_413_and_408() {
    let example = showcase(&[]);
    let addr = example.addr();
    // A declared length of 100 GB with three bytes: refused before the body is waited for.
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /topics/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc")
        .await
        .expect("write");
    let head = read_head(&mut stream, Duration::from_secs(20)).await;
    let took = started.elapsed();
    eprintln!("declared 100 GB: {:?} after {took:?}", head.lines().next());
    // A body that was waited for would end with 408 at the body timeout, not 413.
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // A body of 60 bytes at one byte a second: cut at the 10 s body timeout.
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"POST /topics/x HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            if write.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let head = read_head(&mut read, Duration::from_secs(20)).await;
    let took = started.elapsed();
    trickle.abort();
    eprintln!("trickled body: {:?} after {took:?}", head.lines().next());
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kib_url_gets_414() {
    let example = showcase(&[]);
    let addr = example.addr();
    let get = |pad: &str| {
        format!("GET /poll/demo?pad={pad} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    };
    let answer = request(addr, &get("short")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = request(addr, &get(&"a".repeat(100 * 1024))).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    // The bound is 8 KiB of path and query: `/poll/demo?pad=` is 15 bytes.
    let answer = request(addr, &get(&"a".repeat(8 * 1024 - 15))).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = request(addr, &get(&"a".repeat(8 * 1024 - 14))).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_url_reads_but_does_not_publish() {
    const SECRET: &str = "the hostile test secret, long enough";
    let out = Command::new(SHOWCASE)
        .args(["token", "--jwt-secret", SECRET])
        .args(["--subscribe", "demo", "--publish", "demo"])
        .output()
        .expect("run showcase token");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    let example = showcase(&["--jwt-secret", SECRET]);
    let addr = example.addr();
    // Reading with the token in the URL works.
    let get = format!(
        "GET /poll/demo?access_token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let answer = request(addr, &get).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let head = body_json(&answer)["next"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    // Publishing, completing or deleting with it in the URL is refused.
    let path = format!("/topics/demo?access_token={token}");
    let refused = request(addr, &post(&path, "", "from the URL")).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let path = format!("/topics/demo/complete?access_token={token}");
    let answer = request(addr, &post(&path, "", "")).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let delete = format!(
        "DELETE /topics/demo?access_token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let answer = request(addr, &delete).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // The same token in Authorization publishes.
    let auth = format!("Authorization: Bearer {token}\r\n");
    let answer = request(addr, &post("/topics/demo", &auth, "from the header")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Only that publish was stored.
    let get = format!(
        "GET /poll/demo?since={head}&access_token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let answer = body_json(&request(addr, &get).await);
    let data: Vec<&str> = answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["data"].as_str())
        .collect();
    assert_eq!(data, ["from the header"], "{answer}");
    // The refusal tells the client why, so that it moves the token to the header.
    let body = refused.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(
        body.to_ascii_lowercase().contains("read"),
        "the refusal does not say a URL token grants reading only: {body:?}"
    );
}
