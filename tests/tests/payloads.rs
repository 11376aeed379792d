//! Payload kinds end to end: a publish's `Content-Type` picks text, JSON or binary (checked
//! once, `400` when the body is not what it says), and every JSON form (poll, long-poll, stream,
//! WebSocket, HTTP/2 event lines) marks the kind by key: `json` holding the value itself,
//! `data` text, `data_base64` bytes. SSE carries the JSON's text. The Rust clients decode once.

use std::net::SocketAddr;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::Request;
use http_body_util::{BodyExt, Empty, Full};
use push_core::{Hub, PayloadKind};
use push_h2::Events;
use push_tests::{get, http1, http2, read_until, techniques_server, H2Server, TestServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const BOUND: std::time::Duration = std::time::Duration::from_secs(20);
const JSON: &str = r#"{"text":"hello","n":[1,2.5,12345678901234567890],"nested":{"ok":true}}"#;

async fn server(hub: &Hub) -> TestServer {
    // Publishing over a WebSocket needs a grant: this one allows every topic.
    let anyone = push_http::Authorizer::new(|_| async {
        Ok(push_http::Grant::new(
            push_http::Allow::All,
            push_http::Allow::All,
        ))
    });
    techniques_server(hub, Some(anyone)).await
}

async fn h2_server(hub: &Hub) -> SocketAddr {
    H2Server::start(Events::new(hub.clone())).await.addr
}

/// POSTs `body` with `content_type`; the status and the answer.
async fn publish(addr: SocketAddr, content_type: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut req = Request::post("/topics/kinds").header("host", addr.to_string());
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let res = http1(addr, req).await;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn body_json(addr: SocketAddr, path: &str) -> Value {
    let res = http1(addr, get(addr, path, &[])).await;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// The three events' payload fields, each as its own object of the one key that carries it.
fn payloads(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let key = ["json", "data", "data_base64"]
                .into_iter()
                .find(|k| e.get(*k).is_some())
                .expect("a payload key");
            assert_eq!(
                ["json", "data", "data_base64"]
                    .iter()
                    .filter(|k| e.get(**k).is_some())
                    .count(),
                1,
                "exactly one payload key: {e}"
            );
            json!({ key: e[key] })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_form_carries_the_payload_by_its_kind() {
    let hub = Hub::memory();
    let server = server(&hub).await;
    let h2 = h2_server(&hub).await;
    let addr = server.addr;

    // Refused before anything is stored: JSON that does not parse, text that is not UTF-8.
    let (status, reason) = publish(addr, Some("application/json"), b"{\"oops\":").await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("JSON"), "{reason}");
    let (status, reason) = publish(addr, Some("text/plain"), &[0xff, 0xfe]).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("UTF-8"), "{reason}");

    let (status, first) = publish(addr, None, b"start").await;
    assert_eq!(status, 200, "{first}");
    let start: Value = serde_json::from_str(&first).unwrap();
    let start = start["id"].as_str().unwrap().to_owned();
    for (content_type, body) in [
        (Some("application/json; charset=utf-8"), JSON.as_bytes()),
        (Some("text/plain"), b"plain".as_slice()),
        (Some("application/octet-stream"), b"abc".as_slice()),
        (None, [0xff, 0x00].as_slice()),
    ] {
        let (status, answer) = publish(addr, content_type, body).await;
        assert_eq!(status, 200, "{content_type:?}: {answer}");
    }
    let want = vec![
        json!({ "json": serde_json::from_str::<Value>(JSON).unwrap() }),
        json!({ "data": "plain" }),
        json!({ "data_base64": base64::engine::general_purpose::STANDARD.encode("abc") }),
        json!({ "data_base64": base64::engine::general_purpose::STANDARD.encode([0xff, 0x00]) }),
    ];

    let poll = body_json(addr, &format!("/poll/kinds?since={start}")).await;
    assert_eq!(payloads(poll["events"].as_array().unwrap()), want, "poll");
    let longpoll = body_json(addr, &format!("/longpoll/kinds?since={start}&timeout=0")).await;
    assert_eq!(
        payloads(longpoll["events"].as_array().unwrap()),
        want,
        "long-poll"
    );

    // The JSON value's exact text travels: a number beyond f64 stays as written.
    let raw = http1(addr, get(addr, &format!("/poll/kinds?since={start}"), &[])).await;
    let raw = raw.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&raw).contains(&format!("\"json\":{JSON}")),
        "{raw:?}"
    );

    let res = http1(
        addr,
        get(addr, &format!("/stream/kinds?since={start}"), &[]),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.lines().count() >= 5).await;
    let lines: Vec<Value> = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(payloads(&lines), want, "stream");

    let mut sender = http2(h2).await;
    let req = Request::get(format!("http://{h2}/h2/kinds?since={start}"))
        .body(Empty::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let text = read_until(&mut res.into_body(), BOUND, |t| t.lines().count() >= 5).await;
    let lines: Vec<Value> = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(payloads(&lines), want, "h2 event lines");

    let url = format!("ws://{addr}/ws/kinds?since={start}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut events = Vec::new();
    while events.len() < 4 {
        let message = tokio::time::timeout(BOUND, socket.next()).await.unwrap();
        let Some(Ok(Message::Text(text))) = message else {
            panic!("{message:?}")
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        if v.get("id").is_some() {
            events.push(v);
        }
    }
    assert_eq!(payloads(&events), want, "ws");

    // SSE is text: the JSON's text in data lines.
    let res = http1(addr, get(addr, "/sse/kinds", &[("last-event-id", &start)])).await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.contains("data: plain")).await;
    assert!(text.contains(&format!("data: {JSON}\n")), "{text}");

    // A WebSocket publish of a JSON value is a JSON event too, its text kept exactly.
    socket
        .send(Message::text(format!(
            r#"{{"op":"publish","topic":"kinds","json":{JSON}}}"#
        )))
        .await
        .unwrap();
    let mut published = None;
    while published.is_none() {
        let message = tokio::time::timeout(BOUND, socket.next()).await.unwrap();
        let Some(Ok(Message::Text(text))) = message else {
            panic!("{message:?}")
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        if v.get("id").is_some() {
            published = Some(v);
        }
    }
    let published = published.unwrap();
    assert_eq!(payloads(&[published]), want[..1], "ws publish");
    for bad in [
        r#"{"op":"publish","topic":"kinds","json":{"a":1},"data":"x"}"#,
        r#"{"op":"publish","topic":"kinds"}"#,
        r#"{"op":"subscribe","topic":"kinds","json":1}"#,
    ] {
        socket.send(Message::text(bad)).await.unwrap();
        let message = tokio::time::timeout(BOUND, socket.next()).await.unwrap();
        let Some(Ok(Message::Text(text))) = message else {
            panic!("{message:?}")
        };
        assert!(text.contains("\"error\""), "{bad} → {text}");
    }
}

#[tokio::test]
async fn the_rust_clients_decode_each_kind_once() {
    let hub = Hub::memory();
    let server = server(&hub).await;
    let addr = server.addr;
    let mut client =
        push_stream::client::StreamClient::new(&format!("http://{addr}/stream/kinds")).unwrap();
    let first = tokio::time::timeout(BOUND, client.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, push_stream::client::Received::Outcome { .. }),
        "{first:?}"
    );
    publish(addr, Some("application/json"), JSON.as_bytes()).await;
    publish(addr, Some("application/octet-stream"), b"abc").await;
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let next = tokio::time::timeout(BOUND, client.next())
            .await
            .unwrap()
            .unwrap();
        if let push_stream::client::Received::Event(event) = next {
            kinds.push(event);
        }
    }
    assert_eq!(kinds[0].kind, PayloadKind::Json);
    let value: Value = kinds[0].json().unwrap();
    assert_eq!(value["nested"]["ok"], true);
    assert_eq!(kinds[0].data, JSON.as_bytes());
    assert_eq!(kinds[1].kind, PayloadKind::Binary);
    assert_eq!(kinds[1].data, "abc");
    assert!(kinds[1].json::<Value>().is_err());
}
