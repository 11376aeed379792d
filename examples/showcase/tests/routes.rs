//! Starts the showcase binary as a user would and exercises every route with real clients:
//! curl over HTTP/1.1, nghttp over HTTP/2 (prior knowledge), and a WebSocket client.

use std::process::Command;
use std::time::Duration;

use push_tests::{curl, require, Example};
use push_ws::client::{Client, Received};

fn nghttp(args: &[&str]) -> String {
    let out = Command::new("nghttp")
        .args(args)
        .output()
        .expect("run nghttp");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn every_route_answers_with_its_technique() {
    if !require("nghttp", "nghttp2-client") {
        return;
    }
    let example = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &["--no-ticker"]);
    let base = example.base.clone();
    let first = example.publish("demo", "one");
    let second = example.publish("demo", "two");

    // The page and its assets over HTTP/1.1.
    let page = curl(&["-sf", &base]);
    assert!(
        page.contains("<script type=\"module\" src=\"/app.js\">"),
        "{page}"
    );
    assert!(curl(&["-sf", &format!("{base}app.js")]).contains("pushPanels"));
    // The browser client, as push-http exports it.
    let client = curl(&["-sf", &format!("{base}client.js")]);
    assert_eq!(client, push_http::browser::CLIENT_JS);

    // Over h2c the page comes with 103 Early Hints and its assets pushed.
    let log = nghttp(&["-nv", "-t", "20", &base]);
    assert!(log.contains(":status: 103"), "{log}");
    assert_eq!(log.matches("recv PUSH_PROMISE frame").count(), 3, "{log}");

    // Poll and long-poll from the first cursor: the second event.
    let poll = curl(&["-sf", &format!("{base}poll/demo?since={first}")]);
    assert!(poll.contains("\"data\":\"two\""), "{poll}");
    let longpoll = curl(&[
        "-sf",
        &format!("{base}longpoll/demo?since={first}&timeout=1"),
    ]);
    assert!(longpoll.contains("\"data\":\"two\""), "{longpoll}");
    // Nothing after the second: the long-poll times out empty with the same cursor.
    let empty = curl(&[
        "-sf",
        &format!("{base}longpoll/demo?since={second}&timeout=0.2"),
    ]);
    assert!(empty.contains(&format!("\"next\":\"{second}\"")), "{empty}");

    // SSE and NDJSON streams resume from the first cursor (curl stops them after 2 s).
    let sse = curl(&[
        "-sN",
        "--max-time",
        "2",
        "-H",
        &format!("Last-Event-ID: {first}"),
        &format!("{base}sse/demo"),
    ]);
    assert!(sse.contains("data: two"), "{sse}");
    let stream = curl(&[
        "-sN",
        "--max-time",
        "2",
        &format!("{base}stream/demo?since={first}"),
    ]);
    assert!(stream.contains("\"data\":\"two\""), "{stream}");

    // WebSocket, resuming from the first cursor.
    let ws_base = base.replacen("http://", "ws://", 1);
    let mut ws = Client::connect(&format!("{ws_base}ws/demo?since={first}"))
        .await
        .unwrap();
    assert!(matches!(ws.next().await.unwrap(), Received::Outcome { .. }));
    match tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .unwrap()
        .unwrap()
    {
        Received::Event { event, .. } => assert_eq!(event.data, "two"),
        other => panic!("{other:?}"),
    }

    // Events as pushed responses over HTTP/2.
    let log = nghttp(&["-v", "-t", "2", &format!("{base}h2/demo?since={first}")]);
    assert!(
        log.contains(&format!(":path: /h2/demo/{second}")),
        "the second event promised:\n{log}"
    );

    // Admin and metrics.
    assert!(curl(&["-sf", "-X", "POST", &format!("{base}admin/ticker?rate=5")]).contains("5/s"));
    let bad = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        &format!("{base}admin/ticker?rate=x"),
    ]);
    assert_eq!(bad, "400");
    assert!(curl(&["-sf", "-X", "POST", &format!("{base}admin/drop")]).contains("dropped"));
    let metrics = curl(&["-sf", &format!("{base}metrics")]);
    for technique in ["poll", "longpoll", "sse", "ws", "stream", "h2"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("push_requests_total{{technique=\"{technique}\"}}")))
            .unwrap_or_else(|| panic!("no request counter for {technique}:\n{metrics}"));
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1, "{line}");
    }
    assert!(metrics.contains("push_h2_promised_total"), "{metrics}");
    for technique in ["poll", "longpoll", "sse", "stream"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("push_bytes_total{{technique=\"{technique}\"}}")))
            .unwrap_or_else(|| panic!("no byte counter for {technique}:\n{metrics}"));
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > 0, "{line}");
    }
}

#[tokio::test]
async fn with_tls_alpn_chooses_http2_with_push_or_http1() {
    if !require("nghttp", "nghttp2-client") {
        return;
    }
    let example = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &["--no-ticker", "--tls"]);
    // The port speaks TLS and plain HTTP alike: the first byte tells.
    let plain = example.base.clone();
    assert!(plain.starts_with("http://"), "{plain}");
    let base = format!("https://{}/", example.addr());
    let out = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-w", "%{http_version}", &plain])
        .output()
        .expect("curl is installed (Debian package curl)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.1");
    // ALPN h2: the page with 103 and its assets pushed (style, app and client).
    let log = nghttp(&["-nv", "-t", "20", &base]);
    assert!(log.contains(":status: 103"), "{log}");
    assert_eq!(log.matches("recv PUSH_PROMISE frame").count(), 3, "{log}");
    // ALPN http/1.1 (the certificate is self-signed: -k).
    let out = Command::new("curl")
        .args([
            "-sfk",
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            &base,
        ])
        .output()
        .expect("curl is installed (Debian package curl)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.1");
    let out = Command::new("curl")
        .args(["-sfk", "-d", "x", &format!("{base}topics/demo")])
        .output()
        .expect("curl");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"id\""));
}

#[tokio::test]
async fn topics_complete_and_delete() {
    let example = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &["--no-ticker"]);
    let base = example.base.clone();
    let first = example.publish("job", "one");
    example.publish("job", "two");
    let end = curl(&["-sf", "-X", "POST", &format!("{base}topics/job/complete")]);
    let end = end
        .trim()
        .strip_prefix("{\"end\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .unwrap_or_else(|| panic!("{end}"))
        .to_owned();
    let late = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-d",
        "x",
        &format!("{base}topics/job"),
    ]);
    assert_eq!(late, "409", "a complete topic takes no more events");
    let poll = curl(&["-sf", &format!("{base}poll/job?since={first}")]);
    assert!(
        poll.contains("\"complete\":true") && poll.contains("\"data\":\"two\""),
        "{poll}"
    );
    assert!(poll.contains(&format!("\"next\":\"{end}\"")), "{poll}");
    // An SSE reconnect at the end gets 204, which stops a browser's EventSource.
    let sse = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "2",
        "-H",
        &format!("Last-Event-ID: {end}"),
        &format!("{base}sse/job"),
    ]);
    assert_eq!(sse, "204");
    let stream = curl(&[
        "-sN",
        "--max-time",
        "2",
        &format!("{base}stream/job?since={first}"),
    ]);
    assert!(
        stream.contains("\"data\":\"two\"") && stream.contains("{\"end\":\"complete\""),
        "{stream}"
    );

    let deleted = curl(&["-sf", "-X", "DELETE", &format!("{base}topics/job")]);
    assert_eq!(deleted.trim(), "{\"deleted\":true}");
    // The name starts a new history: the old cursor is a reset.
    example.publish("job", "again");
    let poll = curl(&["-sf", &format!("{base}poll/job?since={first}")]);
    assert!(
        poll.contains("\"outcome\":\"reset\"") && poll.contains("\"data\":\"again\""),
        "{poll}"
    );
}

/// `/metrics` is rendered by metrics-exporter-prometheus from the crates' meters.
#[tokio::test]
async fn metrics_count_answers_refusals_deliveries_resets_and_the_hub() {
    let example = Example::start_with(
        env!("CARGO_BIN_EXE_showcase"),
        &[
            "--no-ticker",
            "--jwt-secret",
            "a metrics test secret of 32 bytes",
        ],
    );
    let base = example.base.clone();
    let status = |url: &str| curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", url]);
    assert_eq!(status(&format!("{base}sse/news")), "401");
    let token = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_showcase"))
            .args(["token", "--jwt-secret", "a metrics test secret of 32 bytes"])
            .args(["--subscribe", "news", "--publish", "news"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bearer = format!("Authorization: Bearer {}", token.trim());
    let publish = curl(&[
        "-s",
        "-H",
        &bearer,
        "-d",
        "hello",
        &format!("{base}topics/news"),
    ]);
    assert!(publish.contains("\"id\""), "{publish}");
    let poll = curl(&[
        "-s",
        "-H",
        &bearer,
        &format!("{base}poll/news?since=garbage"),
    ]);
    assert!(
        poll.contains("\"outcome\":\"reset\"") && poll.contains("hello"),
        "{poll}"
    );

    let metrics = curl(&["-sf", &format!("{base}metrics")]);
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert!(
        metrics.contains("# TYPE push_deliveries_total counter"),
        "{metrics}"
    );
    assert_eq!(
        value("push_refusals_total{technique=\"sse\",reason=\"unauthorized\"}"),
        1.0
    );
    assert_eq!(value("push_resets_total{technique=\"poll\"}"), 1.0);
    assert_eq!(value("push_deliveries_total{technique=\"poll\"}"), 1.0);
    assert!(value("push_bytes_total{technique=\"poll\"}") > 0.0);
    assert_eq!(
        value("push_answers_total{technique=\"poll\",status=\"200\"}"),
        1.0
    );
    assert_eq!(value("push_hub_topics"), 1.0);
    assert_eq!(value("push_hub_published_total"), 1.0);
}
