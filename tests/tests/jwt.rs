//! JWT access on every technique (push-http's `jwt` feature): no token → 401, a token for
//! `chat:*` reads `chat:1` and is refused `admin` with 403, an expired token → 401, from the
//! `Authorization` header and from `?access_token=`; long-lived connections end within a second
//! of the token's `exp`; a WebSocket that sends a fresh token in time stays connected.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use http::Request;
use http_body_util::{BodyExt, Empty};
use jsonwebtoken::{encode, EncodingKey, Header};
use push_core::{Hub, NewEvent, Topic};
use push_h2::Events;
use push_http::jwt::Jwt;
use push_http::Authorizer;
use push_tests::{get, http1, http2, read_until, techniques_server, H2Server, TestServer};
use push_ws::client::Received;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"the jwt test secret, 32 bytes or more";
const BOUND: Duration = Duration::from_secs(20);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token granting `subscribe` and `publish`, ending at `exp` (Unix seconds).
fn token(subscribe: &[&str], publish: &[&str], exp: u64) -> String {
    let claims = serde_json::json!({
        "exp": exp,
        "push": {"subscribe": subscribe, "publish": publish},
    });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn auth() -> Authorizer {
    Jwt::hs256(SECRET).unwrap().into()
}

/// Every technique on one HTTP/1.1 server (HTTP/2 event push on its own driver below).
async fn http1_server(hub: &Hub) -> TestServer {
    techniques_server(hub, Some(auth())).await
}

/// push-h2's event push, served by its own driver.
async fn h2_server(hub: &Hub) -> SocketAddr {
    H2Server::start(Events::new(hub.clone()).authorize(auth()))
        .await
        .addr
}

const WS_HEADERS: [(&str, &str); 4] = [
    ("upgrade", "websocket"),
    ("connection", "Upgrade"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

const KINDS: [&str; 5] = ["poll", "longpoll", "sse", "stream", "ws"];

/// The status of a request for `topic` with `kind`, the token in a header or the query.
async fn status(
    addr: SocketAddr,
    kind: &str,
    topic: &str,
    token: Option<&str>,
    query: bool,
) -> u16 {
    let mut headers: Vec<(&str, String)> = Vec::new();
    if kind == "ws" {
        headers.extend(WS_HEADERS.iter().map(|(k, v)| (*k, (*v).to_owned())));
    }
    let mut params = vec![];
    if kind == "longpoll" {
        params.push("timeout=0".to_owned());
    }
    match token {
        Some(t) if query => params.push(format!("access_token={t}")),
        Some(t) => headers.push(("authorization", format!("Bearer {t}"))),
        None => {}
    }
    let path = format!("/{kind}/{topic}?{}", params.join("&"));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http1(addr, get(addr, &path, &headers))
        .await
        .status()
        .as_u16()
}

async fn h2_status(addr: SocketAddr, topic: &str, token: Option<&str>) -> u16 {
    let mut sender = http2(addr).await;
    let mut req = Request::get(format!("http://{addr}/h2/{topic}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = sender.send_request(req.body(Empty::new()).unwrap()).await;
    res.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_technique_admits_and_refuses_by_the_tokens_claims() {
    let hub = Hub::memory();
    let server = http1_server(&hub).await;
    let h2 = h2_server(&hub).await;
    let exp = unix_now() + 600;
    let reader = token(&["chat:*"], &[], exp);
    let expired = token(&["chat:*"], &[], unix_now() - 1);
    let other_key = encode(
        &Header::default(),
        &serde_json::json!({"exp": exp, "push": {"subscribe": ["*"]}}),
        &EncodingKey::from_secret(b"not the server's secret at all, no"),
    )
    .unwrap();
    let refused = [
        ("chat:1", None, 401),
        ("chat:1", Some(expired.as_str()), 401),
        ("chat:1", Some(other_key.as_str()), 401),
        ("chat:1", Some("not.a.token"), 401),
        ("admin", Some(reader.as_str()), 403),
    ];
    for kind in KINDS {
        for query in [false, true] {
            for (topic, token, want) in refused {
                let got = status(server.addr, kind, topic, token, query).await;
                assert_eq!(got, want, "{kind} {topic} query={query} {token:?}");
            }
            let ok = if kind == "ws" { 101 } else { 200 };
            let got = status(server.addr, kind, "chat:1", Some(&reader), query).await;
            assert_eq!(got, ok, "{kind} query={query}");
        }
    }
    for (topic, token, want) in refused {
        assert_eq!(
            h2_status(h2, topic, token).await,
            want,
            "h2 {topic} {token:?}"
        );
    }
    assert_eq!(h2_status(h2, "chat:1", Some(&reader)).await, 200);
}

/// How far past `exp` (Unix seconds) it is now; negative when before.
fn past(exp: u64) -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    now.as_secs_f64() - exp as f64
}

/// Asserts that a connection ended after `exp`, and less than a second past it (a generous
/// bound: the end is a timer set to `exp`).
fn ended_in_time(what: &str, exp: u64) {
    let late = past(exp);
    // The grant's end maps the wall clock onto tokio's, to the millisecond.
    assert!(late > -0.05, "{what} ended {:.3} s before exp", -late);
    assert!(late < 1.0, "{what} ended {late:.3} s after exp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_connections_end_when_their_token_expires() {
    let hub = Hub::memory();
    let server = http1_server(&hub).await;
    let h2 = h2_server(&hub).await;
    let addr = server.addr;
    let exp = unix_now() + 2;
    let t = token(&["chat:*"], &[], exp);
    let bearer = format!("Bearer {t}");

    let sse = async {
        let res = http1(
            addr,
            get(addr, "/sse/chat:1", &[("authorization", &bearer)]),
        )
        .await;
        let text = read_until(&mut res.into_body(), BOUND, |t| t.contains("push-expired")).await;
        assert!(
            text.contains("event: push-expired\ndata: {\"end\":\"expired\"}"),
            "{text}"
        );
        ended_in_time("sse", exp);
    };
    let stream = async {
        let res = http1(
            addr,
            get(addr, "/stream/chat:1", &[("authorization", &bearer)]),
        )
        .await;
        let text = read_until(&mut res.into_body(), BOUND, |t| t.contains("\"end\"")).await;
        assert!(text.contains("{\"end\":\"expired\""), "{text}");
        ended_in_time("stream", exp);
    };
    let longpoll = async {
        let path = "/longpoll/chat:1?timeout=30";
        let res = http1(addr, get(addr, path, &[("authorization", &bearer)])).await;
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["events"], serde_json::json!([]), "{v}");
        ended_in_time("long-poll", exp);
    };
    let h2 = async {
        let mut sender = http2(h2).await;
        let req = Request::get(format!("http://{h2}/h2/chat:1"))
            .header("authorization", &bearer)
            .body(Empty::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        let text = read_until(&mut res.into_body(), BOUND, |t| t.contains("\"end\"")).await;
        assert!(text.contains("{\"end\":\"expired\""), "{text}");
        ended_in_time("h2", exp);
    };
    let ws = async {
        let mut req = format!("ws://{addr}/ws/chat:1")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", bearer.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let close = tokio::time::timeout(BOUND, async {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Close(frame) = message {
                    return frame;
                }
            }
            None
        })
        .await
        .unwrap()
        .expect("a close frame");
        assert_eq!(close.code, CloseCode::Library(4401), "{close:?}");
        ended_in_time("ws", exp);
    };
    tokio::join!(sse, stream, longpoll, h2, ws);
}

async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> serde_json::Value {
    loop {
        let message = tokio::time::timeout(BOUND, socket.next())
            .await
            .expect("a message in time")
            .expect("connection open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_refreshes_its_token_and_stays() {
    let hub = Hub::memory();
    let server = http1_server(&hub).await;
    let exp = unix_now() + 2;
    let url = format!(
        "ws://{}/ws/chat:1?access_token={}",
        server.addr,
        token(&["chat:*"], &[], exp)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_text(&mut socket).await["outcome"], "resumed");

    let auth = |token: String| Message::text(format!(r#"{{"op":"auth","token":"{token}"}}"#));
    // A refused token changes nothing and says why.
    socket
        .send(auth(token(&["chat:*"], &[], unix_now() - 5)))
        .await
        .unwrap();
    let refused = next_text(&mut socket).await;
    assert!(
        refused["error"].as_str().unwrap().contains("expired"),
        "{refused}"
    );

    let fresh_exp = unix_now() + 600;
    socket
        .send(auth(token(&["chat:*", "news"], &[], fresh_exp)))
        .await
        .unwrap();
    let ok = next_text(&mut socket).await;
    assert_eq!(ok["auth"], "ok", "{ok}");
    assert_eq!(ok["expires"], fresh_exp, "{ok}");

    // Past the first token's end, the connection is still there and still delivers.
    while past(exp) < 1.5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chat = Topic::new("chat:1").unwrap();
    let id = hub
        .publish(&chat, NewEvent::new("still here"))
        .await
        .unwrap()
        .id();
    let event = next_text(&mut socket).await;
    assert_eq!(event["data"], "still here");
    assert_eq!(event["id"], id.to_string());

    // A token that no longer covers a subscribed topic ends that subscription.
    socket
        .send(auth(token(&["news"], &[], fresh_exp)))
        .await
        .unwrap();
    let narrowed = next_text(&mut socket).await;
    assert_eq!(
        narrowed["unsubscribed"],
        serde_json::json!(["chat:1"]),
        "{narrowed}"
    );
    socket
        .send(Message::text(r#"{"op":"subscribe","topic":"chat:2"}"#))
        .await
        .unwrap();
    let refused = next_text(&mut socket).await;
    assert!(
        refused["error"].as_str().unwrap().contains("not allowed"),
        "{refused}"
    );

    // The Rust client's side of the same: `auth`, then `Authorized`.
    let url = format!(
        "ws://{}/ws/chat:1?access_token={}",
        server.addr,
        token(&["chat:*"], &[], unix_now() + 60)
    );
    let mut client = push_ws::client::Client::connect(&url).await.unwrap();
    let first = tokio::time::timeout(BOUND, client.next()).await.unwrap();
    assert!(matches!(first, Ok(Received::Outcome { .. })), "{first:?}");
    client
        .auth(&token(&["news"], &[], fresh_exp))
        .await
        .unwrap();
    let answer = tokio::time::timeout(BOUND, client.next()).await.unwrap();
    match answer {
        Ok(Received::Authorized {
            expires,
            unsubscribed,
        }) => {
            assert_eq!(expires, Some(fresh_exp));
            assert_eq!(unsubscribed, ["chat:1"]);
        }
        other => panic!("{other:?}"),
    }
}
