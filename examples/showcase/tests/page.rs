//! The showcase page in headless Chromium: every panel receives a published sequence exactly
//! once, through the browser client, across a server-side drop of every connection; the
//! request counters tell the techniques apart; and the connection-limit panel shows 6 streams
//! open and 2 waiting over HTTP/1.1, and all 8 on one connection over HTTP/2. A screenshot is
//! kept in `target/showcase.png`, and one of the limit panel in
//! `target/showcase-limits.png`.

use std::time::Duration;

use push_tests::{DevTools, Example};

const BOUND: Duration = Duration::from_secs(90);

fn metric(base: &str, line_start: &str) -> u64 {
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("{base}metrics")])
        .output()
        .expect("curl is installed (Debian package curl)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_receives_the_sequence_exactly_once_across_a_drop() {
    // --tls: the port speaks https:// beside http://, for the HTTP/2 side of the limit panel.
    let example = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &["--no-ticker", "--tls"]);
    let base = example.base.clone();
    let Some(mut page) = DevTools::open_with(&base, &["--ignore-certificate-errors"]).await else {
        return;
    };
    // Every technique has taken its position: the poller has its cursor, the others are open.
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let poll_ready = page
            .eval("window.pushPanels?.poll?.requests >= 1")
            .await
            .as_bool()
            .unwrap_or(false);
        let open = ["longpoll", "sse", "stream", "ws"]
            .iter()
            .all(|t| metric(&base, &format!("push_open{{technique=\"{t}\"}}")) >= 1);
        if poll_ready && open {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never got ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut want = Vec::new();
    for i in 1..=10 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let data = format!("{{\"n\":{i},\"t\":{now}}}");
        // Published as JSON: every JSON form carries it as a value, SSE as its text.
        let out = std::process::Command::new("curl")
            .args(["-sf", "-H", "content-type: application/json", "-d", &data])
            .arg(format!("{base}topics/demo"))
            .output()
            .expect("curl");
        assert!(out.status.success(), "{out:?}");
        want.push(data);
        if i == 5 {
            let out = std::process::Command::new("curl")
                .args(["-sf", "-X", "POST", &format!("{base}admin/drop")])
                .output()
                .expect("curl");
            assert!(out.status.success());
        }
        // Slower than the long-poll's cycle, faster than the poller's interval.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let techniques = ["poll", "longpoll", "sse", "ws", "stream"];
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let done = page
            .eval(&format!(
                "{:?}.every(t => window.pushPanels[t].got.length >= 10)",
                techniques
            ))
            .await
            .as_bool()
            .unwrap_or(false);
        if done {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let state = page
                .eval("JSON.stringify(Object.fromEntries(Object.entries(window.pushPanels).map(([k, p]) => [k, { got: p.got.length, state: p.sub && p.sub.state, transport: p.sub && p.sub.transport, stats: p.sub && p.sub.stats, cursors: p.sub && p.sub.cursors }])))")
                .await;
            panic!("not every panel got 10 events: {state}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let panels = page
        .eval("JSON.parse(JSON.stringify(window.pushPanels, (k, v) => k === 'section' ? undefined : v))")
        .await;
    for t in techniques {
        let got: Vec<String> = panels[t]["got"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "{t}: every event exactly once, in order");
        // Decoded once by the client: every technique handed the page values.
        assert_eq!(panels[t]["values"], 10, "{t}: {panels}");
    }
    let requests = |t: &str| panels[t]["requests"].as_u64().unwrap();
    assert!(
        requests("poll") > requests("longpoll") && requests("longpoll") > requests("sse"),
        "polling > long polling > SSE in requests: {panels}"
    );
    for t in ["sse", "ws", "stream"] {
        assert!(
            panels[t]["reconnects"].as_u64().unwrap() >= 1,
            "{t} reconnected after the drop: {panels}"
        );
    }
    // Several topics on one EventSource got every demo event too, each naming its topic.
    let several = panels["several"]["got"].as_array().unwrap();
    assert_eq!(several.len(), 10, "{panels}");
    assert!(
        several
            .iter()
            .all(|v| v.as_str().unwrap().starts_with("demo: ")),
        "{panels}"
    );

    // A finished topic: the generated answer arrives whole, and the EventSource stops (204).
    page.eval("document.querySelector('#finished button').click()")
        .await;
    let deadline = tokio::time::Instant::now() + BOUND;
    while page.eval("window.pushPanels.finished.completed").await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the answer never completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = page
        .eval("document.querySelector('#finished p:nth-of-type(2)').textContent")
        .await;
    assert!(
        text.as_str().unwrap().starts_with("A topic can finish.")
            && text.as_str().unwrap().ends_with("reconnects after it."),
        "{text}"
    );

    // Eight streams per origin: over HTTP/1.1 six open on six connections and two wait; over
    // HTTP/2 all eight share one connection.
    page.eval("document.querySelector('#limits button').click()")
        .await;
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let limits = page
            .eval("JSON.parse(JSON.stringify(window.pushLimits))")
            .await;
        if limits["h1"]["open"] == 6 && limits["h2"]["open"] == 8 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the limit panel never filled: {limits}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give the waiting streams time to be (wrongly) served before reading the final figures.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let limits = page
        .eval("JSON.parse(JSON.stringify(window.pushLimits))")
        .await;
    assert_eq!(limits["h1"]["open"], 6, "{limits}");
    assert_eq!(limits["h1"]["waiting"], 2, "{limits}");
    assert_eq!(limits["h1"]["connections"], 6, "{limits}");
    assert_eq!(limits["h2"]["open"], 8, "{limits}");
    assert_eq!(limits["h2"]["connections"], 1, "{limits}");
    assert_eq!(limits["h2"]["protocol"], "HTTP/2", "{limits}");

    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/showcase.png");
    page.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    let shot = shot.with_file_name("showcase-limits.png");
    page.screenshot_element("#limits", &shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
}
