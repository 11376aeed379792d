//! Fairness under hostile clients, through real sockets: one client over its quota gets `429`
//! while another is served; a topic cap cannot be filled by one client's subscriptions; a
//! WebSocket flood is closed with 1008; a publish body is bounded in size and in time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use push_core::{Hub, HubConfig, MemoryHub, Topic};
use push_http::{Allow, Authorizer, Grant, PublishConfig, Publisher, Quota};
use push_sse::{Sse, SseConfig};
use push_tests::{boxed, TestServer};
use push_ws::client::{Client, ClientError, Received};
use push_ws::{Ws, WsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A bound on waits that should be quick; a safety limit, not a performance claim.
const BOUND: Duration = Duration::from_secs(10);

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback source address");
    socket.connect(server).await.expect("connect")
}

/// One HTTP/1.1 GET of `path` from `from`, its body unread.
async fn get_from(from: [u8; 4], server: SocketAddr, path: &str) -> Response<Incoming> {
    let stream = connect_from(from, server).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", server.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    sender.send_request(req).await.expect("response")
}

async fn sse_server(config: SseConfig) -> TestServer {
    let sse = Sse::with_config(Hub::memory(), config);
    TestServer::start(move |req| {
        let sse = sse.clone();
        Box::pin(async move {
            let topic = Topic::new(req.uri().path().trim_start_matches("/sse/")).expect("topic");
            sse.respond(&topic, req).await.map(boxed)
        })
    })
    .await
}

#[tokio::test]
async fn one_address_over_its_stream_quota_gets_429_and_another_is_served() {
    let config = SseConfig::default()
        .max_streams(10)
        .quota(Quota::default().streams(3));
    let server = sse_server(config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let res = get_from([127, 0, 0, 2], server.addr, "/sse/t").await;
        assert_eq!(res.status(), 200);
        held.push(res);
    }
    let refused = get_from([127, 0, 0, 2], server.addr, "/sse/t").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body = refused
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, "too many open streams from this client (quota 3)\n");
    // Another client is served; the server's own limit is a 503, not a 429.
    let other = get_from([127, 0, 0, 3], server.addr, "/sse/t").await;
    assert_eq!(other.status(), 200);
    // The quota is given back with the streams.
    held.clear();
    drop(other);
    let again = tokio::time::timeout(BOUND, async {
        loop {
            let res = get_from([127, 0, 0, 2], server.addr, "/sse/t").await;
            if res.status() == 200 {
                return res;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the quota is given back when the streams close");
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn http2_streams_count_against_the_same_quota() {
    let config = SseConfig::default().quota(Quota::default().streams(4));
    let server = sse_server(config).await;
    // Two HTTP/2 connections from one address, three streams each: four are served.
    let mut statuses = Vec::new();
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = connect_from([127, 0, 0, 4], server.addr).await;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        for _ in 0..3 {
            let req = Request::get(format!("http://{}/sse/t", server.addr))
                .body(Empty::<Bytes>::new())
                .expect("request");
            let res = sender.send_request(req).await.expect("response");
            statuses.push(res.status());
            held.push(res);
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let over = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, over), (4, 2), "{statuses:?}");
    let other = get_from([127, 0, 0, 5], server.addr, "/sse/t").await;
    assert_eq!(other.status(), 200);
}

/// The ws endpoint with an authorizer that names the client by `?user=` (as a token's `sub`
/// would), on a hub whose topic cap is 20.
async fn ws_server(config: WsConfig) -> TestServer {
    let hub = Hub::new(MemoryHub::new(HubConfig::default().max_topics(20)));
    let auth = Authorizer::new(|parts| {
        let user = parts
            .uri
            .query()
            .and_then(|q| push_http::query_value(q, "user"))
            .map(|u| u.into_owned());
        async move {
            let grant = Grant::new(Allow::All, Allow::All);
            Ok(match user {
                Some(user) => grant.with_subject(user),
                None => grant,
            })
        }
    });
    let ws = Ws::with_config(hub, config).authorize(auth);
    TestServer::start(move |req| {
        let ws = ws.clone();
        Box::pin(async move {
            let topic = Topic::new("lobby").expect("topic");
            ws.respond(&topic, req).await.map(boxed)
        })
    })
    .await
}

async fn next(client: &mut Client) -> Result<Received, ClientError> {
    tokio::time::timeout(BOUND, client.next())
        .await
        .expect("an answer in time")
}

#[tokio::test]
async fn one_client_cannot_fill_the_topic_cap_with_subscriptions() {
    let config = WsConfig::default().quota(Quota::default().topics(12));
    let server = ws_server(config).await;
    let url = |user: &str| format!("ws://{}/ws/lobby?user={user}", server.addr);
    // The greedy client: two connections, each with the handshake's topic and 10 more; its
    // 13th subscription is refused, and the hub's cap of 20 topics is never reached by it.
    let mut refused = 0;
    let mut subscribed = 0;
    let mut conns = Vec::new();
    for _ in 0..2 {
        let mut client = Client::connect(&url("greedy")).await.expect("connect");
        for i in 0..11 {
            let topic = format!("greedy-{}-{i}", conns.len());
            if i > 0 {
                client.subscribe(&topic, None).await.expect("send");
            }
            match next(&mut client).await.expect("message") {
                Received::Outcome { .. } => subscribed += 1,
                Received::Error { error, .. } => {
                    assert!(error.contains("quota 12"), "{error}");
                    refused += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        conns.push(client);
    }
    assert_eq!((subscribed, refused), (12, 10));
    // Another client subscribes to topics of its own: the cap has room.
    let mut other = Client::connect(&url("other")).await.expect("connect");
    assert!(matches!(
        next(&mut other).await.expect("outcome"),
        Received::Outcome { .. }
    ));
    for i in 0..5 {
        other
            .subscribe(&format!("other-{i}"), None)
            .await
            .expect("send");
        let answer = next(&mut other).await.expect("outcome");
        assert!(matches!(answer, Received::Outcome { .. }), "{answer:?}");
    }
    // Unsubscribing gives the greedy client its quota back.
    let greedy = &mut conns[0];
    greedy.unsubscribe("greedy-0-1").await.expect("send");
    assert!(matches!(
        next(greedy).await.expect("answer"),
        Received::Unsubscribed { .. }
    ));
    greedy.subscribe("greedy-again", None).await.expect("send");
    let answer = next(greedy).await.expect("answer");
    assert!(matches!(answer, Received::Outcome { .. }), "{answer:?}");
}

#[tokio::test]
async fn a_websocket_flood_gets_an_error_then_1008() {
    let config = WsConfig::default().max_messages_per_second(20);
    let server = ws_server(config).await;
    let mut client = Client::connect(&format!("ws://{}/ws/lobby", server.addr))
        .await
        .expect("connect");
    assert!(matches!(
        next(&mut client).await.expect("outcome"),
        Received::Outcome { .. }
    ));
    for _ in 0..40 {
        if client.message("hi").await.is_err() {
            break;
        }
    }
    // Twenty answers (this server takes no application messages), then the limit.
    let mut answers = 0;
    let closed = loop {
        match next(&mut client).await {
            Ok(Received::Error { error, .. }) if error.contains("too many messages") => {}
            Ok(Received::Error { .. }) => answers += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(answers, 20);
    match closed {
        ClientError::Closed { code, reason } => {
            assert_eq!(code, Some(1008));
            assert_eq!(reason, "too many messages");
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

async fn publish_server(config: PublishConfig) -> TestServer {
    let publisher = Publisher::with_config(Hub::memory(), config);
    TestServer::start(move |req| {
        let publisher = publisher.clone();
        Box::pin(async move {
            let topic = Topic::new("t").expect("topic");
            publisher.respond(&topic, req).await.map(boxed)
        })
    })
    .await
}

/// Writes `head` and reads the answer's status line, within `bound`.
async fn status_line(stream: &mut TcpStream, head: &str, bound: Duration) -> String {
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0; 512];
    let n = tokio::time::timeout(bound, stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let server = publish_server(PublishConfig::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc";
    let line = status_line(&mut stream, head, BOUND).await;
    assert_eq!(line, "HTTP/1.1 413 Payload Too Large");
}

#[tokio::test]
async fn a_trickled_body_ends_with_408_at_the_body_timeout() {
    let config = PublishConfig::default().body_timeout(Duration::from_millis(500));
    let server = publish_server(config).await;
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let head = "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab";
    write.write_all(head.as_bytes()).await.expect("write");
    // One byte now and then, never the whole body.
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b"c").await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0; 512];
    let n = tokio::time::timeout(BOUND, read.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    trickle.abort();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout"),
        "{answer}"
    );
    // A body in time is published.
    let ok = status_line(
        &mut TcpStream::connect(server.addr).await.expect("connect"),
        "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok",
        BOUND,
    )
    .await;
    assert_eq!(ok, "HTTP/1.1 200 OK");
}
