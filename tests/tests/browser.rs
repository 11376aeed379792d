//! Real browser behaviour in headless Chromium: an `EventSource` that receives events, is cut
//! off by the server, reconnects by itself with `Last-Event-ID` and misses nothing; and `fetch()`
//! reading push-stream's NDJSON through a `ReadableStream` as it arrives.
//!
//! The page reports what it received by POSTing JSON back to the test server.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use push_core::{Hub, NewEvent, Topic};
use push_sse::{Sse, SseConfig};
use push_stream::Streamer;
use push_tests::{boxed, text, Browser, TestServer};
use serde_json::Value;
use tokio::sync::mpsc;

/// Generous: Chromium's first start on a cold machine can take a while.
const BOUND: Duration = Duration::from_secs(90);

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>push browser test</title>
<script>
const report = (path, body) => fetch(path, { method: "POST", body: JSON.stringify(body) });

const sse = [];
let opens = 0;
const source = new EventSource("/sse/t");
source.onopen = () => { opens += 1; report("/report/open", { opens }); };
source.onmessage = (e) => {
  sse.push({ data: e.data, id: e.lastEventId });
  if (sse.length === 5) report("/report/sse-half", { got: sse });
  if (sse.length === 10) { source.close(); report("/report/sse", { got: sse, opens }); }
};

(async () => {
  const res = await fetch("/stream/s");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const got = [];
  let first = null;
  while (got.length < 5) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if (first === null) { first = line; report("/report/stream-open", line); }
      if ("data" in line) got.push(line.data);
    }
  }
  reader.cancel();
  report("/report/stream", { got, first });
})();
</script>
"#;

/// The page's reports, in any order: waiting for one keeps the others for later.
struct Reports {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    early: Vec<(String, Value)>,
}

impl Reports {
    async fn wait_for(&mut self, path: &str) -> Value {
        if let Some(i) = self.early.iter().position(|(p, _)| p == path) {
            return self.early.remove(i).1;
        }
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let (got, body) = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("the page did not report {path} in time"))
                .expect("server alive");
            if got == path {
                return body;
            }
            self.early.push((got, body));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_reconnects_without_loss_and_fetch_reads_ndjson_as_it_arrives() {
    let hub = Hub::memory();
    let sse = Sse::with_config(
        hub.clone(),
        SseConfig::default().retry(Some(Duration::from_millis(200))),
    );
    let streamer = Streamer::new(hub.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut reports = Reports {
        rx,
        early: Vec::new(),
    };
    let server = TestServer::start(move |req| {
        let (sse, streamer, tx) = (sse.clone(), streamer.clone(), tx.clone());
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if let Some(name) = path.strip_prefix("/sse/") {
                return sse
                    .respond(&Topic::new(name).unwrap(), &req)
                    .await
                    .map(boxed);
            }
            if let Some(name) = path.strip_prefix("/stream/") {
                return streamer
                    .respond(&Topic::new(name).unwrap(), &req)
                    .await
                    .map(boxed);
            }
            if path.starts_with("/report/") {
                let body: Bytes = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send((path, value));
                return http::Response::new(text("ok"));
            }
            let mut res = http::Response::new(text(PAGE));
            res.headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            res
        })
    })
    .await;
    let Some(_browser) = Browser::open(&server.url("/page")) else {
        return;
    };

    reports.wait_for("/report/open").await;
    let stream_first = reports.wait_for("/report/stream-open").await;
    assert_eq!(stream_first["outcome"], "resumed");

    let (t, s) = (Topic::new("t").unwrap(), Topic::new("s").unwrap());
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(
            hub.publish(&t, NewEvent::new(format!("sse {i}")))
                .await
                .unwrap()
                .id()
                .to_string(),
        );
        hub.publish(&s, NewEvent::new(format!("stream {i}")))
            .await
            .unwrap();
    }
    let stream = reports.wait_for("/report/stream").await;
    let want: Vec<String> = (1..=5).map(|i| format!("stream {i}")).collect();
    assert_eq!(stream["got"], serde_json::json!(want));

    reports.wait_for("/report/sse-half").await;
    // Cut every connection; publish while the browser is disconnected.
    server.drop_connections();
    for i in 6..=10 {
        ids.push(
            hub.publish(&t, NewEvent::new(format!("sse {i}")))
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    let report = reports.wait_for("/report/sse").await;
    let got: Vec<(String, String)> = report["got"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["data"].as_str().unwrap().to_owned(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = (1..=10)
        .map(|i| (format!("sse {i}"), ids[i - 1].clone()))
        .collect();
    assert_eq!(
        got, want,
        "every event exactly once, in order, with its cursor as lastEventId"
    );
    assert!(
        report["opens"].as_u64().unwrap() >= 2,
        "the EventSource reconnected by itself: {report}"
    );
}
