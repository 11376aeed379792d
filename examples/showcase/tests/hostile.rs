//! The showcase under hostile and heavy traffic, as an attacker would try it: each test is one
//! attack with a resource assertion (memory, open connections, permits, exit time). Loopback
//! only; every loop is bounded in count, and every time bound here is a generous safety limit,
//! not a performance claim.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use push_tests::{require, Example};
use push_ws::client::{Client, ClientError, Received};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
