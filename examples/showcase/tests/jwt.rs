//! The showcase with `--jwt-secret`: tokens made by `showcase token` admit and refuse exactly
//! by their claims on every technique and on publishing, and the page in headless Chromium
//! follows the topic with its token in the URL: an `EventSource` and a `WebSocket`
//! authenticate with `?access_token=`, and an `EventSource` whose token expires stops.

use std::process::Command;
use std::time::Duration;

use push_tests::{curl, require, DevTools, Example};

const SECRET: &str = "the showcase test secret, long enough";
const BOUND: Duration = Duration::from_secs(90);

/// `showcase token` with these arguments.
fn token(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_showcase"))
        .args(["token", "--jwt-secret", SECRET])
        .args(args)
        .output()
        .expect("run showcase token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The status curl saw for a GET of `url` with `headers` (streams cut after a second).
fn status(url: &str, headers: &[String]) -> String {
    let mut args = vec![
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "1",
    ];
    for h in headers {
        args.extend(["-H", h.as_str()]);
    }
    args.push(url);
    curl(&args)
}

fn nghttp_status(url: &str, token: Option<&str>) -> String {
    let mut command = Command::new("nghttp");
    command.args(["-v", "-t", "1"]);
    if let Some(t) = token {
        command.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = command.arg(url).output().expect("run nghttp");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.lines()
        .find_map(|l| l.split(":status: ").nth(1).map(str::to_owned))
        .unwrap_or(log)
}

fn publish(base: &str, topic: &str, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec!["-s", "-w", " %{http_code}", "-d", "hello"];
    if let Some(h) = &auth {
        args.extend(["-H", h.as_str()]);
    }
    let url = format!("{base}topics/{topic}");
    args.push(&url);
    curl(&args)
}

#[tokio::test]
async fn tokens_admit_and_refuse_by_their_claims() {
    if !require("nghttp", "nghttp2-client") {
        return;
    }
    let example = Example::start_with(
        env!("CARGO_BIN_EXE_showcase"),
        &["--no-ticker", "--jwt-secret", SECRET],
    );
    let base = example.base.clone();
    let reader = token(&["--subscribe", "chat:*"]);
    let writer = token(&["--subscribe", "chat:*", "--publish", "chat:*"]);
    let expired = token(&["--subscribe", "chat:*", "--ttl", "0"]);
    let bearer = |t: &str| vec![format!("Authorization: Bearer {t}")];
    for kind in ["poll", "longpoll", "sse", "stream"] {
        let query = if kind == "longpoll" { "?timeout=0" } else { "" };
        let url = |topic: &str| format!("{base}{kind}/{topic}{query}");
        assert_eq!(status(&url("chat:1"), &[]), "401", "{kind} without a token");
        assert_eq!(
            status(&url("chat:1"), &bearer(&expired)),
            "401",
            "{kind} expired"
        );
        assert_eq!(status(&url("chat:1"), &bearer(&reader)), "200", "{kind}");
        assert_eq!(
            status(&url("admin"), &bearer(&reader)),
            "403",
            "{kind} admin"
        );
        let sep = if query.is_empty() { "?" } else { "&" };
        let in_query = format!("{}{sep}access_token={reader}", url("chat:1"));
        assert_eq!(status(&in_query, &[]), "200", "{kind} with ?access_token=");
    }
    let ws = base.replacen("http://", "ws://", 1);
    assert!(push_ws::client::Client::connect(&format!("{ws}ws/chat:1"))
        .await
        .is_err());
    let url = format!("{ws}ws/chat:1?access_token={reader}");
    assert!(push_ws::client::Client::connect(&url).await.is_ok());
    let h2 = format!("{base}h2/chat:1");
    assert_eq!(nghttp_status(&h2, None), "401");
    assert_eq!(
        nghttp_status(&format!("{base}h2/admin"), Some(&reader)),
        "403"
    );
    assert_eq!(nghttp_status(&h2, Some(&reader)), "200");

    assert!(publish(&base, "chat:1", None).ends_with(" 401"));
    assert!(publish(&base, "chat:1", Some(&reader)).ends_with(" 403"));
    assert!(publish(&base, "admin", Some(&writer)).ends_with(" 403"));
    let ok = publish(&base, "chat:1", Some(&writer));
    assert!(ok.starts_with("{\"id\":") && ok.ends_with(" 200"), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_authenticates_with_a_query_token_and_an_expired_event_source_stops() {
    let example = Example::start_with(
        env!("CARGO_BIN_EXE_showcase"),
        &["--no-ticker", "--jwt-secret", SECRET],
    );
    let base = example.base.clone();
    let page_token = token(&["--subscribe", "demo", "--publish", "demo"]);
    let Some(mut page) = DevTools::open(&format!("{base}?access_token={page_token}")).await else {
        return;
    };
    let ready = "window.pushPanels?.sse?.requests >= 1 && window.pushPanels?.ws?.requests >= 1";
    wait_for(&mut page, ready, "the SSE and WebSocket panels to open").await;
    let writer = token(&["--subscribe", "demo", "--publish", "demo"]);
    for _ in 0..3 {
        let res = publish(&base, "demo", Some(&writer));
        assert!(res.ends_with(" 200"), "{res}");
    }
    let got = "['sse', 'ws'].every(t => window.pushPanels[t].got.length >= 3)";
    wait_for(
        &mut page,
        got,
        "three events on the SSE and WebSocket panels",
    )
    .await;
    let note = page.eval("document.getElementById('auth').hidden").await;
    assert_eq!(
        note,
        serde_json::json!(true),
        "no auth note while the token is good"
    );

    // A token that ends in two seconds: the stream ends with push-expired, the browser's
    // reconnect is refused with 401, and the EventSource stops for good.
    let short = token(&["--subscribe", "demo", "--ttl", "2"]);
    page.eval(&format!(
        "window.short = {{ expired: 0, opens: 0, closed: false }};
         const s = new EventSource('/sse/demo?access_token={short}');
         s.onopen = () => window.short.opens++;
         s.addEventListener('push-expired', () => window.short.expired++);
         s.onerror = () => {{ if (s.readyState === EventSource.CLOSED) window.short.closed = true; }};"
    ))
    .await;
    wait_for(
        &mut page,
        "window.short.closed",
        "the expired EventSource to stop",
    )
    .await;
    let short = page.eval("window.short").await;
    assert_eq!(short["expired"], 1, "{short}");
    assert_eq!(short["opens"], 1, "{short}");
}

async fn wait_for(page: &mut DevTools, condition: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        if page.eval(condition).await.as_bool().unwrap_or(false) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
