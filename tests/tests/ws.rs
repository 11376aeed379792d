//! push-ws through real sockets: handshake and origin refusals, close codes, ping timeout,
//! resume across a disconnect, gap and reset, many topics on one connection, publishing under
//! the authorization hook, HTTP/2 extended CONNECT, slow readers (kept with a gap, or cut off)
//! and shutdown.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Outcome, Retention, Topic};
use push_http::{Allow, Authorizer, Grant, Origins, Refusal};
use push_tests::{boxed, get, http1, TestServer};
use push_ws::client::{Client, ClientError, Received};
use push_ws::{OriginPolicy, Ws, WsConfig};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

const BOUND: Duration = Duration::from_secs(20);

async fn server(ws: &Ws) -> TestServer {
    let ws = ws.clone();
    TestServer::start(move |req| {
        let ws = ws.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let topics: Vec<Topic> = path
                .trim_start_matches("/ws/")
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| Topic::new(t).unwrap())
                .collect();
            ws.respond_topics(&topics, req).await.map(boxed)
        })
    })
    .await
}

fn ws_url(server: &TestServer, path: &str) -> String {
    format!("ws://{}{path}", server.addr)
}

async fn next(client: &mut Client) -> Received {
    tokio::time::timeout(BOUND, client.next())
        .await
        .expect("a message in time")
        .expect("connection open")
}

async fn closed_with(client: &mut Client) -> (Option<u16>, String) {
    loop {
        match tokio::time::timeout(BOUND, client.next())
            .await
            .expect("closed in time")
        {
            Err(ClientError::Closed { code, reason }) => return (code, reason),
            Err(e) => panic!("expected a close frame, got {e}"),
            Ok(_) => {}
        }
    }
}

fn event_data(r: &Received) -> (String, String) {
    match r {
        Received::Event { topic, event } => (
            topic.clone(),
            String::from_utf8(event.data.to_vec()).unwrap(),
        ),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn handshakes_are_validated_with_the_right_status() {
    let ws = Ws::with_config(
        Hub::memory(),
        WsConfig::default().origins(OriginPolicy::allow(Origins::list(["http://app.test"]))),
    );
    let server = server(&ws).await;
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = upgrade.to_vec();
        h.extend_from_slice(extra);
        h
    };
    let cases: Vec<(Vec<(&str, &str)>, StatusCode)> = vec![
        (vec![], StatusCode::UPGRADE_REQUIRED),
        (
            with(&[("sec-websocket-version", "12")]),
            StatusCode::UPGRADE_REQUIRED,
        ),
        (with(&[]), StatusCode::UPGRADE_REQUIRED),
        (
            vec![
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "not-a-key"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            with(&[
                ("sec-websocket-version", "13"),
                ("origin", "http://evil.test"),
            ]),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (headers, want) in cases {
        let res = http1(server.addr, get(server.addr, "/ws/t", &headers)).await;
        assert_eq!(res.status(), want, "{headers:?}");
        if want == StatusCode::UPGRADE_REQUIRED {
            assert_eq!(res.headers()["sec-websocket-version"], "13");
        }
    }
    // Allowed origin and no origin (a non-browser client): accepted.
    for origin in [Some("http://app.test"), None] {
        let mut headers = with(&[
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat, push.v1"),
        ]);
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        let res = http1(server.addr, get(server.addr, "/ws/t", &headers)).await;
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            res.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        // The first offered subprotocol the server supports is chosen.
        assert_eq!(res.headers()["sec-websocket-protocol"], "push.v1");
    }
    let mut post = get(
        server.addr,
        "/ws/t",
        &with(&[("sec-websocket-version", "13")]),
    );
    *post.method_mut() = http::Method::POST;
    assert_eq!(
        http1(server.addr, post).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn close_codes_for_oversize_invalid_utf8_binary_and_missing_pongs() {
    let ws = Ws::with_config(
        Hub::memory(),
        WsConfig::default()
            .max_message(1024)
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(300)),
    );
    let server = server(&ws).await;
    let url = ws_url(&server, "/ws/");

    let mut c = Client::connect(&url).await.unwrap();
    c.send_raw(Message::text("x".repeat(2048))).await.unwrap();
    assert_eq!(closed_with(&mut c).await.0, Some(1009));

    let mut c = Client::connect(&url).await.unwrap();
    let bad = Frame::message(vec![b'a', 0xff, 0xfe], OpCode::Data(Data::Text), true);
    c.send_raw(Message::Frame(bad)).await.unwrap();
    assert_eq!(closed_with(&mut c).await.0, Some(1007));

    let mut c = Client::connect(&url).await.unwrap();
    c.send_raw(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(closed_with(&mut c).await.0, Some(1003));
    drop(c);

    // A client that never reads never answers pings: closed with 1001 "no pong".
    let (mut silent, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    // The permit was taken before the 101: wait (bounded) until the server has closed every
    // connection, this one included, without reading.
    let deadline = tokio::time::Instant::now() + BOUND;
    while ws.open() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent client was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut close = None;
    while let Some(Ok(m)) = silent.next().await {
        if let Message::Close(frame) = m {
            close = frame;
            break;
        }
    }
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "no pong");
    // A client that reads (and so answers pings) stays open past several intervals.
    let mut c = Client::connect(&url).await.unwrap();
    let alive = tokio::time::timeout(Duration::from_millis(900), c.next()).await;
    assert!(
        alive.is_err(),
        "nothing to receive, and not closed: {alive:?}"
    );
    assert_eq!(ws.open(), 1, "the reading client is still connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_topics_resume_exactly_after_a_forced_disconnect() {
    let hub = Hub::memory();
    let ws = Ws::new(hub.clone());
    let server = server(&ws).await;
    let topics: Vec<String> = (0..20).map(|i| format!("topic-{i}")).collect();
    let mut c = Client::connect(&ws_url(&server, "/ws/")).await.unwrap();
    for t in &topics {
        c.subscribe(t, None).await.unwrap();
        assert!(matches!(
            next(&mut c).await,
            Received::Outcome {
                outcome: Outcome::Resumed,
                ..
            }
        ));
    }
    for round in 0..3 {
        for t in &topics {
            hub.publish(
                &Topic::new(t).unwrap(),
                NewEvent::new(format!("{t}/{round}")),
            )
            .await
            .unwrap();
        }
    }
    let mut got: Vec<(String, String)> = Vec::new();
    for _ in 0..60 {
        got.push(event_data(&next(&mut c).await));
    }
    // The server restarts every connection while more is published.
    ws.restart_all();
    assert_eq!(closed_with(&mut c).await.0, Some(1012));
    for round in 3..6 {
        for t in &topics {
            hub.publish(
                &Topic::new(t).unwrap(),
                NewEvent::new(format!("{t}/{round}")),
            )
            .await
            .unwrap();
        }
    }
    c.reconnect().await.unwrap();
    let mut outcomes = 0;
    while got.len() < 120 {
        match next(&mut c).await {
            Received::Outcome { outcome, .. } => {
                assert_eq!(outcome, Outcome::Resumed);
                outcomes += 1;
            }
            other => got.push(event_data(&other)),
        }
    }
    assert_eq!(outcomes, 20);
    for t in &topics {
        let mine: Vec<&str> = got
            .iter()
            .filter(|(topic, _)| topic == t)
            .map(|(_, d)| d.as_str())
            .collect();
        let want: Vec<String> = (0..6).map(|r| format!("{t}/{r}")).collect();
        assert_eq!(mine, want, "every event of {t} once, in order");
    }
}

#[tokio::test]
async fn gap_and_reset_outcomes_and_the_topic_limit() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(3)),
    ));
    let ws = Ws::with_config(hub.clone(), WsConfig::default().max_topics(2));
    let server = server(&ws).await;
    let t = Topic::new("t").unwrap();
    let first = hub.publish(&t, NewEvent::new("0")).await.unwrap();
    for i in 1..10 {
        hub.publish(&t, NewEvent::new(i.to_string())).await.unwrap();
    }
    let mut c = Client::connect(&ws_url(&server, &format!("/ws/t?since={}", first.id())))
        .await
        .unwrap();
    match next(&mut c).await {
        Received::Outcome { outcome, .. } => assert_eq!(outcome, Outcome::Gap { missed: 6 }),
        other => panic!("{other:?}"),
    }
    let mut data = Vec::new();
    for _ in 0..3 {
        data.push(event_data(&next(&mut c).await).1);
    }
    assert_eq!(data, ["7", "8", "9"]);
    c.subscribe("u", Some("abcdef-1")).await.unwrap();
    match next(&mut c).await {
        Received::Outcome { topic, outcome, .. } => {
            assert_eq!((topic.as_str(), outcome), ("u", Outcome::Reset));
        }
        other => panic!("{other:?}"),
    }
    c.subscribe("v", None).await.unwrap();
    match next(&mut c).await {
        Received::Error { error, topic } => {
            assert!(error.contains("too many topics"), "{error}");
            assert_eq!(topic.as_deref(), Some("v"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn publishing_follows_the_authorization_hook_and_app_messages_get_replies() {
    let hub = Hub::memory();
    let ws = Ws::new(hub.clone())
        .authorize(Authorizer::new(|parts| {
            let token = parts.headers.get("authorization").cloned();
            async move {
                match token {
                    Some(v) if v == "Bearer alice" => {
                        Ok(Grant::new(Allow::All, Allow::patterns(["alice.*"])))
                    }
                    Some(_) => Err(Refusal::InvalidToken("bad token".into())),
                    None => Ok(Grant::default()),
                }
            }
        }))
        .on_message(|text| Some(text.to_uppercase()));
    let server = server(&ws).await;
    let res = http1(
        server.addr,
        get(
            server.addr,
            "/ws/",
            &[
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("authorization", "Bearer mallory"),
            ],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Anonymous: may read, may not publish.
    let mut anon = Client::connect(&ws_url(&server, "/ws/alice.news"))
        .await
        .unwrap();
    assert!(matches!(next(&mut anon).await, Received::Outcome { .. }));
    anon.publish("alice.news", "spoof").await.unwrap();
    assert!(matches!(next(&mut anon).await, Received::Error { .. }));

    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        ws_url(&server, "/ws/"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer alice".parse().unwrap());
    let (mut alice, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    alice
        .send(Message::text(
            r#"{"op":"publish","topic":"alice.news","data":"hello"}"#,
        ))
        .await
        .unwrap();
    let ack = alice.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("\"published\""), "{ack}");
    alice
        .send(Message::text(
            r#"{"op":"publish","topic":"bob.news","data":"x"}"#,
        ))
        .await
        .unwrap();
    let refused = alice.next().await.unwrap().unwrap();
    assert!(
        refused.to_text().unwrap().contains("\"error\""),
        "{refused}"
    );
    assert_eq!(
        event_data(&next(&mut anon).await),
        ("alice.news".into(), "hello".into())
    );
    anon.message("ping?").await.unwrap();
    assert_eq!(next(&mut anon).await, Received::Reply("PING?".into()));
    anon.send_raw(Message::text("{not json")).await.unwrap();
    assert!(matches!(next(&mut anon).await, Received::Error { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_http2_extended_connect() {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let hub = Hub::memory();
    let ws = Ws::new(hub.clone());
    let server = server(&ws).await;
    let mut h2 = push_tests::http2(server.addr).await;
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(server.url("/ws/t"))
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "push.v1")
        .body(Empty::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut res = h2.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.headers()["sec-websocket-protocol"], "push.v1");
    let upgraded = hyper::upgrade::on(&mut res).await.unwrap();
    let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    let outcome = socket.next().await.unwrap().unwrap();
    assert!(outcome
        .to_text()
        .unwrap()
        .contains("\"outcome\":\"resumed\""));
    hub.publish(&Topic::new("t").unwrap(), NewEvent::new("over h2"))
        .await
        .unwrap();
    let event = tokio::time::timeout(BOUND, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        event.to_text().unwrap().contains("\"data\":\"over h2\""),
        "{event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stalls_gets_an_exact_gap_and_shutdown_sends_1001() {
    const TOTAL: u64 = 20_000;
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(100)),
    ));
    let ws = Ws::new(hub.clone());
    let server = server(&ws).await;
    let mut c = Client::connect(&ws_url(&server, "/ws/t")).await.unwrap();
    assert!(matches!(next(&mut c).await, Received::Outcome { .. }));
    let t = Topic::new("t").unwrap();
    let payload = "x".repeat(1024);
    for _ in 0..TOTAL {
        hub.publish(&t, NewEvent::new(payload.clone()))
            .await
            .unwrap();
    }
    let last = hub.head(&t).await.unwrap().unwrap().to_string();
    let (mut received, mut missed) = (0u64, 0u64);
    loop {
        match next(&mut c).await {
            Received::Event { event, .. } => {
                received += 1;
                if event.id == last {
                    break;
                }
            }
            Received::Outcome {
                outcome: Outcome::Gap { missed: m },
                ..
            } => missed += m,
            other => panic!("{other:?}"),
        }
    }
    assert!(missed > 0, "the stalled reader fell behind retention");
    assert_eq!(
        received + missed,
        TOTAL,
        "every event received or counted missed"
    );

    assert!(ws.shutdown().await, "every connection closed in time");
    assert_eq!(closed_with(&mut c).await.0, Some(1001));
    assert_eq!(ws.open(), 0);
    // New handshakes are refused while shut down.
    assert!(Client::connect(&ws_url(&server, "/ws/t")).await.is_err());
}

/// Deliveries are written before the client's frames are read, but never for long. A client
/// with a small receive buffer sends an unsubscribe while 8,000 events (more than the socket
/// buffers hold, all retained) wait for it: the server must read it between delivery turns and
/// answer before the backlog is through. Reading only when no delivery is ready would answer
/// after all 8,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_events_does_not_hold_off_the_clients_messages() {
    const EVENTS: usize = 8_000;
    let config =
        HubConfig::default().retention(Retention::default().max_events(EVENTS).max_bytes(64 << 20));
    let hub = Hub::new(MemoryHub::new(config));
    let ws = Ws::new(hub.clone());
    let server = server(&ws).await;
    // A fixed 4 KiB receive buffer: what the server can write ahead is bounded by its own send
    // buffer (4 MiB at most), well under the backlog's 8 MiB.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let url = ws_url(&server, "/ws/backlog");
    let (mut client, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let text = |m: Message| m.into_text().unwrap().as_str().to_owned();
    let first = tokio::time::timeout(BOUND, client.next()).await.unwrap();
    assert!(text(first.unwrap().unwrap()).contains("\"outcome\""));
    let topic = Topic::new("backlog").unwrap();
    let payload = "x".repeat(1024);
    for _ in 0..EVENTS {
        hub.publish(&topic, NewEvent::text(payload.clone()))
            .await
            .unwrap();
    }
    let unsubscribe = r#"{"op":"unsubscribe","topic":"backlog"}"#;
    client.send(Message::text(unsubscribe)).await.unwrap();
    let mut before = 0;
    loop {
        let message = tokio::time::timeout(BOUND, client.next())
            .await
            .expect("the answer in time")
            .expect("connection open")
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&text(message)).unwrap();
        if value["unsubscribed"] == true {
            break;
        }
        assert!(
            value.get("data").is_some(),
            "only events before the answer: {value}"
        );
        before += 1;
    }
    assert!(
        before < EVENTS,
        "the unsubscribe was answered only after the whole backlog"
    );
}

/// The client's publish sends a fresh idempotency key and returns it; a retry with that key
/// (what a client does when the answer did not come, or said the outcome is unknown) answers
/// the first cursor and stores nothing more.
#[tokio::test]
async fn a_publish_retried_with_its_key_is_stored_once() {
    let hub = Hub::memory();
    let auth = Authorizer::new(|_| async { Ok(Grant::new(Allow::All, Allow::All)) });
    let ws = Ws::new(hub.clone()).authorize(auth);
    let server = server(&ws).await;
    let mut client = Client::connect(&ws_url(&server, "/ws/orders"))
        .await
        .unwrap();
    assert!(matches!(next(&mut client).await, Received::Outcome { .. }));
    let key = client.publish("orders", "order 7").await.unwrap();
    let Received::Published { id: first, .. } = next(&mut client).await else {
        panic!("not published");
    };
    // The event comes back on the subscription, then the retry's answer.
    assert!(matches!(next(&mut client).await, Received::Event { .. }));
    client
        .publish_with_key("orders", "order 7", &key)
        .await
        .unwrap();
    let Received::Published { id: again, .. } = next(&mut client).await else {
        panic!("not published");
    };
    assert_eq!(first, again);
    let topic = Topic::new("orders").unwrap();
    assert_eq!(hub.topic_stats(&topic).unwrap().retained_events, 1);
    // Another publish gets another key and another event.
    let other = client.publish("orders", "order 8").await.unwrap();
    assert_ne!(other, key);
    client.publish_with_key("orders", "x", "").await.unwrap();
    let answers = [
        next(&mut client).await,
        next(&mut client).await,
        next(&mut client).await,
    ];
    assert!(
        answers.iter().any(
            |a| matches!(a, Received::Error { error, .. } if error.contains("idempotency key"))
        ),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_after_the_slow_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let hub = Hub::memory();
    let ws = Ws::with_config(
        hub.clone(),
        WsConfig::default()
            .slow_client(push_ws::SlowClient::Close)
            .slow_timeout(Duration::from_millis(300)),
    );
    let server = server(&ws).await;
    // A small receive buffer, so that the server's writes stall soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    let request = format!(
        "GET /ws/slow HTTP/1.1\r\nhost: {}\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the 101 answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Far more than the socket buffers hold, none of it read.
    let topic = Topic::new("slow").unwrap();
    let payload = "x".repeat(32 * 1024);
    for _ in 0..300 {
        hub.publish(&topic, NewEvent::text(payload.clone()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The server gave up on the write and ended the connection: what it wrote drains, then
    // the stream ends.
    let drained = tokio::time::timeout(BOUND, async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the server ends a connection whose client does not read");
    assert!(
        drained < 300 * payload.len(),
        "only part of the events went out: {drained} bytes"
    );
}
