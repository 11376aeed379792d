//! Runs the axum example as a user would and drives every route with real clients (curl and a
//! WebSocket client), then stops it with SIGTERM while a client of every technique is
//! connected: `axum::serve`'s graceful shutdown completes, and each client gets its goodbye.

use std::process::Command;
use std::time::Duration;

use push_tests::{curl, Example};
use push_ws::client::{Client, ClientError, Received};

/// `curl` in the background, reading a long answer until the server ends it.
fn curl_until_end(url: String) -> tokio::task::JoinHandle<String> {
    tokio::task::spawn_blocking(move || curl(&["-sN", "--max-time", "20", &url]))
}

/// Whether the server has at least `n` connections on `port` and has read everything its
/// clients sent on them (`ss`: every server-side socket's Recv-Q is 0).
fn all_read(port: u16, n: usize) -> bool {
    let out = Command::new("ss")
        .args([
            "-tnH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("ss is installed (Debian package iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let queues: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    queues.len() >= n && queues.iter().all(|q| *q == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_and_sigterm_tells_every_client() {
    let mut example = Example::start(env!("CARGO_BIN_EXE_axum-server"));
    let base = example.base.clone();
    let first = example.publish("news", "one");
    let second = example.publish("news", "two");

    let poll = curl(&["-sf", &format!("{base}poll/news?since={first}")]);
    assert!(poll.contains("\"data\":\"two\""), "{poll}");
    let longpoll = curl(&[
        "-sf",
        &format!("{base}longpoll/news?since={first}&timeout=1"),
    ]);
    assert!(longpoll.contains("\"data\":\"two\""), "{longpoll}");
    let sse = curl(&[
        "-sN",
        "--max-time",
        "1",
        &format!("{base}sse/news?lastEventId={first}"),
    ]);
    assert!(sse.contains(&format!("id: {second}\ndata: two")), "{sse}");
    let stream = curl(&[
        "-sN",
        "--max-time",
        "1",
        &format!("{base}stream/news?since={first}"),
    ]);
    assert!(stream.contains("\"data\":\"two\""), "{stream}");

    // A CORS preflight reaches push-poll through axum's router.
    let preflight = curl(&[
        "-si",
        "-X",
        "OPTIONS",
        "-H",
        "Origin: http://localhost:5173",
        "-H",
        "Access-Control-Request-Method: GET",
        &format!("{base}poll/news"),
    ]);
    assert!(preflight.starts_with("HTTP/1.1 204"), "{preflight}");
    assert!(
        preflight.contains("access-control-allow-origin: http://localhost:5173"),
        "{preflight}"
    );
    // axum's Path<Topic> refuses an invalid name before any handler.
    let bad = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}sse/a%20b"),
    ]);
    assert_eq!(bad, "400");

    let ws_url = format!("{}ws/news?since={first}", base.replace("http://", "ws://"));
    let mut ws = Client::connect(&ws_url).await.expect("websocket");
    let mut got = Vec::new();
    while got.is_empty() {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Ok(Received::Event { event, .. })) => got.push(event.data),
            Ok(Ok(_)) => {}
            other => panic!("websocket: {other:?}"),
        }
    }
    assert_eq!(got, ["two"]);

    // A topic finishes and another is deleted through the publisher's routes; a hub error
    // (publishing to the finished topic) is its status, not a panic or a 500.
    example.publish("done", "last");
    let end = curl(&["-sf", "-X", "POST", &format!("{base}topics/done/complete")]);
    assert!(end.starts_with("{\"end\":\""), "{end}");
    let after = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-d",
        "late",
        &format!("{base}topics/done"),
    ]);
    assert_eq!(after, "409");
    let read = curl(&["-sf", &format!("{base}poll/done")]);
    assert!(read.contains("\"complete\":true"), "{read}");
    example.publish("gone", "x");
    let deleted = curl(&["-sf", "-X", "DELETE", &format!("{base}topics/gone")]);
    assert_eq!(deleted.trim(), "{\"deleted\":true}");
    let again = curl(&["-sf", "-X", "DELETE", &format!("{base}topics/gone")]);
    assert_eq!(again.trim(), "{\"deleted\":false}");
    let wrong = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "GET",
        &format!("{base}topics/gone/complete"),
    ]);
    assert_eq!(wrong, "405");

    // One client of every technique is connected, then SIGTERM.
    let held = [
        curl_until_end(format!("{base}sse/news")),
        curl_until_end(format!("{base}stream/news?since={second}")),
        curl_until_end(format!("{base}longpoll/news?since={second}&timeout=30")),
    ];
    // Wait until the server has read every request (no bytes left in its sockets' receive
    // queues), so that each client is attached when the stop begins.
    let port = example.addr().port();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !all_read(port, 4) {
        assert!(
            std::time::Instant::now() < deadline,
            "the clients did not attach"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    example.signal("TERM");
    let status = example
        .wait_exit(Duration::from_secs(10))
        .expect("axum's graceful shutdown did not complete within 10 s");
    assert!(status.success(), "{status}");
    let [sse, stream, longpoll] = held;
    let sse = sse.await.expect("sse");
    assert!(sse.contains("retry:"), "{sse}");
    let stream = stream.await.expect("stream");
    assert!(stream.contains("\"end\":\"shutdown\""), "{stream}");
    let longpoll = longpoll.await.expect("longpoll");
    assert!(longpoll.contains("\"outcome\":\"resumed\""), "{longpoll}");
    let closed = loop {
        match ws.next().await {
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => break code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(closed, Some(1001));
}
