//! A topic that finishes: 500 token-sized events, then `complete`, while the server cuts every
//! connection three times. Every technique's client ends with the exact text and then stops:
//! SSE in headless Chromium (the `EventSource` reconnects after `push-complete`, gets `204` and
//! closes for good) and with push-sse's client, and the Rust clients of stream, poll, long-poll,
//! WebSocket and HTTP/2 event push.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use push_core::{Hub, NewEvent, Topic};
use push_h2::Events;
use push_http::Error as ClientError;
use push_sse::SseConfig;
use push_tests::{boxed, http2, text, Browser, H2Server, TestServer};
use serde_json::Value;

const TOKENS: usize = 500;
const BOUND: Duration = Duration::from_secs(90);

fn token(i: usize) -> String {
    format!("t{i} ")
}

fn want() -> String {
    (0..TOKENS).map(token).collect()
}

/// Every technique on one HTTP/1.1 server; `/page` is a page whose `EventSource` follows
/// `/sse/answer` from `start` and reports what it saw to `/report`.
async fn server(
    hub: &Hub,
    (sse, ws): (push_sse::Sse, push_ws::Ws),
    start: &str,
    reports: tokio::sync::mpsc::UnboundedSender<Value>,
) -> TestServer {
    let stream = push_stream::Streamer::new(hub.clone());
    let poll = push_poll::Poller::new(hub.clone());
    let longpoll = push_longpoll::LongPoll::new(hub.clone());
    let page: &'static str = Box::leak(PAGE.replace("START", start).into_boxed_str());
    TestServer::start(move |req| {
        let (sse, stream, poll, longpoll, ws) = (
            sse.clone(),
            stream.clone(),
            poll.clone(),
            longpoll.clone(),
            ws.clone(),
        );
        let reports = reports.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if path == "/page" {
                let mut res = http::Response::new(text(page));
                res.headers_mut()
                    .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
                return res;
            }
            if path == "/report" {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let _ = reports.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                return http::Response::new(text("ok"));
            }
            // Anything else the browser asks for (a favicon): not found.
            let Some((kind, name)) = path.trim_start_matches('/').split_once('/') else {
                let mut res = http::Response::new(text("not found"));
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                return res;
            };
            let topic = Topic::new(name).unwrap();
            match kind {
                "sse" => sse.respond(&topic, req).await.map(boxed),
                "stream" => stream.respond(&topic, req).await.map(boxed),
                "poll" => poll.respond(&topic, req).await.map(boxed),
                "longpoll" => longpoll.respond(&topic, req).await.map(boxed),
                _ => ws.respond(&topic, req).await.map(boxed),
            }
        })
    })
    .await
}

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<script>
let text = "", opens = 0, completes = 0, errors = 0;
const source = new EventSource("/sse/answer?lastEventId=START");
source.onopen = () => { opens += 1; };
source.onmessage = (e) => { text += e.data; };
// Not closed by the page: the browser reconnects, gets 204, and stops by itself.
source.addEventListener("push-complete", () => { completes += 1; });
source.onerror = () => {
  errors += 1;
  if (source.readyState === EventSource.CLOSED) {
    // Still closed a second later: nothing reopened it.
    setTimeout(() => fetch("/report", { method: "POST",
      body: JSON.stringify({ text, opens, completes, errors, state: source.readyState }) }), 1000);
  }
};
</script>
"#;

/// Reads push-h2's event lines (push refused, so events come on the body), resuming after
/// every cut, until the end line `complete`.
async fn h2_client(addr: SocketAddr, mut cursor: String) -> (String, usize) {
    let (mut got, mut connects) = (String::new(), 0);
    loop {
        connects += 1;
        let mut sender = http2(addr).await;
        let req = Request::get(format!("http://{addr}/h2/answer?since={cursor}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let Ok(res) = sender.send_request(req).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut body = res.into_body();
        let mut buf = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.push_str(&String::from_utf8_lossy(&data));
            while let Some(nl) = buf.find('\n') {
                let line: Value = serde_json::from_str(&buf[..nl]).unwrap();
                buf.drain(..=nl);
                if let Some(id) = line["id"].as_str() {
                    cursor = id.to_owned();
                    got.push_str(line["data"].as_str().unwrap());
                } else if line["end"] == "complete" {
                    return (got, connects);
                } else if let Some(c) = line["cursor"].as_str() {
                    cursor = c.to_owned();
                }
            }
        }
    }
}

/// What one client read, and how many times it connected.
type Read = (String, usize);

async fn sse_client(url: String, start: String) -> Read {
    let uri = url.parse().unwrap();
    let mut client = push_sse::client::Client::new(uri)
        .last_event_id(&start)
        .retry(Duration::from_millis(50));
    let mut got = String::new();
    loop {
        match client.next().await {
            Ok(m) if m.event == "message" => got.push_str(&m.data),
            Ok(_) => {}
            Err(push_sse::client::ClientError::Complete) => break,
            Err(e) => panic!("sse: {e}"),
        }
    }
    // Stopped: asking again does not reconnect.
    let connects = usize::try_from(client.connects()).unwrap();
    assert!(matches!(
        client.next().await,
        Err(push_sse::client::ClientError::Complete)
    ));
    assert_eq!(
        client.connects(),
        connects as u64,
        "sse reconnected after the end"
    );
    (got, connects)
}

async fn stream_client(url: String, start: String) -> Read {
    let mut client = push_stream::client::StreamClient::new(&url)
        .unwrap()
        .since(start);
    let mut got = String::new();
    loop {
        match client.next().await {
            Ok(push_stream::client::Received::Event(e)) => {
                got.push_str(std::str::from_utf8(&e.data).unwrap());
            }
            Ok(_) => {}
            Err(ClientError::Complete) => break,
            Err(e) => panic!("stream: {e}"),
        }
    }
    let connects = usize::try_from(client.connects()).unwrap();
    assert!(matches!(client.next().await, Err(ClientError::Complete)));
    assert_eq!(
        client.connects(),
        connects as u64,
        "stream reconnected after the end"
    );
    (got, connects)
}

async fn poll_client(url: String, start: String) -> Read {
    let mut client = push_poll::client::PollClient::new(&url)
        .unwrap()
        .since(start);
    let (mut got, mut errors) = (String::new(), 0);
    loop {
        match client.poll().await {
            Ok(Some(batch)) => {
                for e in &batch.events {
                    got.push_str(std::str::from_utf8(&e.data).unwrap());
                }
            }
            Ok(None) => {}
            Err(ClientError::Complete) => break,
            // A cut connection: ask again, from the same cursor.
            Err(_) => errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (got, errors)
}

async fn longpoll_client(url: String, start: String) -> Read {
    let mut client = push_longpoll::client::LongPollClient::new(&url)
        .unwrap()
        .since(start);
    let (mut got, mut errors) = (String::new(), 0);
    loop {
        match client.next_batch().await {
            Ok(batch) => {
                for e in &batch.events {
                    got.push_str(std::str::from_utf8(&e.data).unwrap());
                }
            }
            Err(ClientError::Complete) => break,
            Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (got, errors)
}

async fn ws_client(url: String) -> Read {
    use push_ws::client::{Client, Received};
    let mut client = Client::connect(&url).await.unwrap();
    let (mut got, mut connects) = (String::new(), 1);
    loop {
        match client.next().await {
            Ok(Received::Event { event, .. }) => {
                got.push_str(std::str::from_utf8(&event.data).unwrap());
            }
            Ok(Received::Complete { topic, .. }) => {
                assert_eq!(topic, "answer");
                break;
            }
            Ok(_) => {}
            Err(_) => {
                // Closed by the server (1012): reconnect and resubscribe from the cursor.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if client.reconnect().await.is_ok() {
                    connects += 1;
                }
            }
        }
    }
    assert_eq!(client.cursor("answer"), None, "no longer subscribed");
    (got, connects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_ends_with_the_exact_text_and_stops_after_complete() {
    let hub = Hub::memory();
    let topic = Topic::new("answer").unwrap();
    let start = hub
        .publish(&topic, NewEvent::text("prompt"))
        .await
        .unwrap()
        .id()
        .to_string();
    let sse = push_sse::Sse::with_config(
        hub.clone(),
        SseConfig::default().retry(Some(Duration::from_millis(100))),
    );
    let ws = push_ws::Ws::new(hub.clone());
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let server = server(&hub, (sse.clone(), ws.clone()), &start, reports_tx).await;
    let h2 = H2Server::start(Events::new(hub.clone())).await;
    let browser = Browser::open(&server.url("/page"));

    let base = format!("http://{}", server.addr);
    let ws_url = format!("ws://{}/ws/answer?since={start}", server.addr);
    let clients = tokio::spawn({
        let (base, start) = (base.clone(), start.clone());
        async move {
            tokio::join!(
                sse_client(format!("{base}/sse/answer"), start.clone()),
                stream_client(format!("{base}/stream/answer"), start.clone()),
                poll_client(format!("{base}/poll/answer"), start.clone()),
                longpoll_client(format!("{base}/longpoll/answer"), start.clone()),
                ws_client(ws_url),
                h2_client(h2.addr, start),
            )
        }
    });
    // Every client is connected before the first token, so that each of them is cut: the
    // browser's EventSource and push-sse's client on the SSE endpoint.
    let streams = if browser.is_some() { 2 } else { 1 };
    let deadline = tokio::time::Instant::now() + BOUND;
    while sse.open() < streams || ws.open() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clients never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for i in 0..TOKENS {
        hub.publish(&topic, NewEvent::text(token(i))).await.unwrap();
        if i % 125 == 124 && i + 1 < TOKENS {
            // Three cuts mid-stream, on every transport.
            server.drop_connections();
            h2.cut();
            ws.restart_all();
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    hub.complete(&topic).await.unwrap();

    let results = tokio::time::timeout(BOUND, clients).await.unwrap().unwrap();
    let (sse, stream, poll, longpoll, ws, h2) = results;
    for (name, (got, _)) in [
        ("sse", &sse),
        ("stream", &stream),
        ("poll", &poll),
        ("long-poll", &longpoll),
        ("ws", &ws),
        ("h2", &h2),
    ] {
        assert_eq!(got.len(), want().len(), "{name}: {got:?}");
        assert_eq!(*got, want(), "{name}: every token once, in order");
    }
    assert!(
        sse.1 >= 4 && stream.1 >= 4 && h2.1 >= 4,
        "cut three times: {sse:?} {stream:?} {h2:?}"
    );

    if browser.is_some() {
        let report = tokio::time::timeout(BOUND, reports.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report["text"], want(), "the browser's text");
        assert_eq!(report["completes"], 1, "{report}");
        assert_eq!(report["state"], 2, "EventSource CLOSED: {report}");
        assert!(
            report["opens"].as_u64().unwrap() >= 4,
            "reconnected after each cut: {report}"
        );
    }
}
