//! Real browser behaviour in headless Chromium: an `EventSource` that receives events, is cut
//! off by the server, reconnects by itself with `Last-Event-ID` and misses nothing; and `fetch()`
//! reading push-stream's NDJSON through a `ReadableStream` as it arrives.
//!
//! The page reports what it received by POSTing JSON back to the test server.

// A route hands back the request it does not handle, by value: fine for a test.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use push_core::{Hub, NewEvent, Topic};
use push_sse::{Sse, SseConfig};
use push_stream::Streamer;
use push_tests::{boxed, text, Browser, HandlerFuture, TestServer};
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

/// A test server for a page: `/report/…` POSTs go to the returned [`Reports`], `route` answers
/// the technique's paths (returning the request it does not handle), and anything else gets
/// `page`.
async fn page_server<F>(page: &'static str, route: F) -> (TestServer, Reports)
where
    F: Fn(Request<Incoming>) -> Result<HandlerFuture, Request<Incoming>> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let server = TestServer::start(move |req| {
        let req = match route(req) {
            Ok(handled) => return handled,
            Err(req) => req,
        };
        let tx = tx.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
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
            let mut res = http::Response::new(text(page));
            res.headers_mut()
                .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            res
        })
    })
    .await;
    let reports = Reports {
        rx,
        early: Vec::new(),
    };
    (server, reports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_reconnects_without_loss_and_fetch_reads_ndjson_as_it_arrives() {
    let hub = Hub::memory();
    let sse = Sse::with_config(
        hub.clone(),
        SseConfig::default().retry(Some(Duration::from_millis(200))),
    );
    let streamer = Streamer::new(hub.clone());
    let (server, mut reports) = page_server(PAGE, move |req| {
        let path = req.uri().path().to_owned();
        let (sse, streamer) = (sse.clone(), streamer.clone());
        if let Some(name) = path.strip_prefix("/sse/") {
            let topic = Topic::new(name).unwrap();
            return Ok(Box::pin(async move {
                sse.respond(&topic, req).await.map(boxed)
            }));
        }
        if let Some(name) = path.strip_prefix("/stream/") {
            let topic = Topic::new(name).unwrap();
            return Ok(Box::pin(async move {
                streamer.respond(&topic, req).await.map(boxed)
            }));
        }
        Err(req)
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

const POLL_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>push polling test</title>
<script>
const report = (path, body) => fetch(path, { method: "POST", body: JSON.stringify(body) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Long-poll with fetch in a loop; the first request (timeout 0) only learns the cursor.
(async () => {
  let since = null, got = [], requests = 0;
  while (got.length < 10) {
    const timeout = since === null ? 0 : 10;
    const url = "/longpoll/lp?timeout=" + timeout + (since ? "&since=" + encodeURIComponent(since) : "");
    const res = await fetch(url);
    requests += 1;
    const answer = await res.json();
    if (since === null) report("/report/longpoll-ready", answer);
    if (answer.outcome !== "resumed") { report("/report/longpoll", { error: answer }); return; }
    since = answer.next;
    for (const e of answer.events) got.push(e.data);
  }
  report("/report/longpoll", { got, requests });
})();

// Poll on an interval; the browser's cache revalidates with If-None-Match by itself.
(async () => {
  let since = null, got = [], requests = 0, ready = false;
  while (got.length < 10) {
    const res = await fetch("/poll/p" + (since ? "?since=" + encodeURIComponent(since) : ""));
    requests += 1;
    const answer = await res.json();
    if (!ready) { ready = true; report("/report/poll-ready", answer); }
    if (answer.outcome !== "resumed") { report("/report/poll", { error: answer }); return; }
    since = answer.next;
    for (const e of answer.events) got.push(e.data);
    if (!answer.more) await sleep(50);
  }
  report("/report/poll", { got, requests });
})();
</script>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_long_polls_and_interval_polls_receive_the_sequence_without_loss() {
    use push_longpoll::LongPoll;
    use push_poll::{PollConfig, Poller};

    let hub = Hub::memory();
    let longpoll = LongPoll::new(hub.clone());
    let poller = Poller::with_config(hub.clone(), PollConfig::default().max_batch(3));
    let (server, mut reports) = page_server(POLL_PAGE, move |req| {
        let path = req.uri().path().to_owned();
        let (longpoll, poller) = (longpoll.clone(), poller.clone());
        if let Some(name) = path.strip_prefix("/longpoll/") {
            let topic = Topic::new(name).unwrap();
            return Ok(Box::pin(async move {
                longpoll.respond(&topic, req).await.map(boxed)
            }));
        }
        if let Some(name) = path.strip_prefix("/poll/") {
            let topic = Topic::new(name).unwrap();
            return Ok(Box::pin(async move {
                poller.respond(&topic, req).await.map(boxed)
            }));
        }
        Err(req)
    })
    .await;
    let Some(_browser) = Browser::open(&server.url("/page")) else {
        return;
    };
    reports.wait_for("/report/longpoll-ready").await;
    reports.wait_for("/report/poll-ready").await;
    let (lp, p) = (Topic::new("lp").unwrap(), Topic::new("p").unwrap());
    for i in 1..=10 {
        hub.publish(&lp, NewEvent::new(format!("lp {i}")))
            .await
            .unwrap();
        hub.publish(&p, NewEvent::new(format!("p {i}")))
            .await
            .unwrap();
        // Some events while a request is held, some in bursts between requests.
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    }
    let report = reports.wait_for("/report/longpoll").await;
    let want: Vec<String> = (1..=10).map(|i| format!("lp {i}")).collect();
    assert_eq!(report["got"], serde_json::json!(want), "{report}");
    let report = reports.wait_for("/report/poll").await;
    let want: Vec<String> = (1..=10).map(|i| format!("p {i}")).collect();
    assert_eq!(report["got"], serde_json::json!(want), "{report}");
    assert!(report["requests"].as_u64().unwrap() >= 4, "{report}");
}

const WS_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>push WebSocket test</title>
<script>
const report = (path, body) => fetch(path, { method: "POST", body: JSON.stringify(body) });
const got = { a: [], b: [] }, cursors = {}, closes = [];
let opens = 0, ready = false, half = false, done = false;
function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws/`, "push.v1");
  ws.onopen = () => {
    opens += 1;
    for (const topic of ["a", "b"]) ws.send(JSON.stringify({ op: "subscribe", topic, since: cursors[topic] }));
  };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if ("outcome" in msg) {
      if (msg.outcome !== "resumed") report("/report/ws", { error: msg });
      cursors[msg.topic] = msg.cursor;
      if (!ready && "a" in cursors && "b" in cursors) { ready = true; report("/report/ws-ready", { protocol: ws.protocol }); }
      return;
    }
    got[msg.topic].push(msg.data);
    cursors[msg.topic] = msg.id;
    if (!half && got.a.length === 5 && got.b.length === 5) { half = true; report("/report/ws-half", got); }
    if (!done && got.a.length === 10 && got.b.length === 10) { done = true; ws.close(); report("/report/ws", { got, opens, closes }); }
  };
  ws.onclose = (e) => { closes.push(e.code); if (!done) setTimeout(connect, 100); };
}
connect();
</script>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_websocket_reconnects_with_its_cursors_and_misses_nothing() {
    use push_ws::Ws;

    let hub = Hub::memory();
    let ws = Ws::new(hub.clone());
    let endpoint = ws.clone();
    let (server, mut reports) = page_server(WS_PAGE, move |req| {
        if req.uri().path().starts_with("/ws/") {
            let res = endpoint.respond_topics(&[], req);
            return Ok(Box::pin(async move { res.await.map(boxed) }));
        }
        Err(req)
    })
    .await;
    let Some(_browser) = Browser::open(&server.url("/page")) else {
        return;
    };
    let ready = reports.wait_for("/report/ws-ready").await;
    assert_eq!(ready["protocol"], "push.v1");
    let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
    for i in 1..=5 {
        hub.publish(&a, NewEvent::new(format!("a{i}")))
            .await
            .unwrap();
        hub.publish(&b, NewEvent::new(format!("b{i}")))
            .await
            .unwrap();
    }
    reports.wait_for("/report/ws-half").await;
    // The server closes every WebSocket (1012); more is published while the page reconnects.
    ws.restart_all();
    for i in 6..=10 {
        hub.publish(&a, NewEvent::new(format!("a{i}")))
            .await
            .unwrap();
        hub.publish(&b, NewEvent::new(format!("b{i}")))
            .await
            .unwrap();
    }
    let report = reports.wait_for("/report/ws").await;
    let want_a: Vec<String> = (1..=10).map(|i| format!("a{i}")).collect();
    let want_b: Vec<String> = (1..=10).map(|i| format!("b{i}")).collect();
    assert_eq!(report["got"]["a"], serde_json::json!(want_a), "{report}");
    assert_eq!(report["got"]["b"], serde_json::json!(want_b), "{report}");
    assert!(report["opens"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["closes"][0], 1012, "{report}");
}
