//! One access model for every technique: the same `push_http::Authorizer` on poll, long-poll,
//! SSE, stream, WebSocket and push-h2's event subscriptions. No credentials → 401, a grant for
//! `chat:*` reads `chat:1` and is refused `admin` with 403, before any subscription is made.

use http::StatusCode;
use push_core::Hub;
use push_http::{Allow, Authorizer, Grant, Refusal};
use push_tests::{get, http1, techniques_server, TestServer};

/// Bearer `reader` may read `chat:*`; any other token is not valid; none is required.
fn authorizer() -> Authorizer {
    Authorizer::new(|parts| {
        let token = parts.headers.get("authorization").cloned();
        async move {
            match token.as_ref().and_then(|v| v.to_str().ok()) {
                Some("Bearer reader") => {
                    Ok(Grant::new(Allow::patterns(["chat:*"]), Allow::Nothing))
                }
                Some(_) => Err(Refusal::InvalidToken("the token is not valid".into())),
                None => Err(Refusal::NoCredentials("a bearer token is required".into())),
            }
        }
    })
}

async fn server(hub: &Hub) -> TestServer {
    techniques_server(hub, Some(authorizer())).await
}

const WS_HEADERS: [(&str, &str); 4] = [
    ("upgrade", "websocket"),
    ("connection", "Upgrade"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

async fn status(
    addr: std::net::SocketAddr,
    kind: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut headers: Vec<(&str, &str)> = if kind == "ws" {
        WS_HEADERS.to_vec()
    } else {
        Vec::new()
    };
    if let Some(token) = token {
        headers.push(("authorization", token));
    }
    let res = http1(addr, get(addr, path, &headers)).await;
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (res.status(), challenge)
}

const KINDS: [&str; 6] = ["poll", "longpoll", "sse", "stream", "ws", "h2"];

fn path(kind: &str, topic: &str) -> String {
    let query = if kind == "longpoll" { "?timeout=0" } else { "" };
    format!("/{kind}/{topic}{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_technique_refuses_and_admits_the_same_way() {
    let hub = Hub::memory();
    let server = server(&hub).await;
    let addr = server.addr;
    for kind in KINDS {
        // RFC 6750 §3: no error code without credentials, then invalid_token, insufficient_scope.
        let refused = [
            ("chat:1", None, StatusCode::UNAUTHORIZED, "Bearer"),
            (
                "chat:1",
                Some("Bearer forged"),
                StatusCode::UNAUTHORIZED,
                r#"Bearer error="invalid_token", error_description="the token is not valid""#,
            ),
            (
                "admin",
                Some("Bearer reader"),
                StatusCode::FORBIDDEN,
                r#"Bearer error="insufficient_scope""#,
            ),
        ];
        for (topic, token, want, want_challenge) in refused {
            let (got, challenge) = status(addr, kind, &path(kind, topic), token).await;
            assert_eq!(got, want, "{kind} {topic} with {token:?}");
            assert_eq!(challenge.as_deref(), Some(want_challenge), "{kind} {topic}");
        }
    }
    // The check runs before any subscription: no topic was even created.
    assert_eq!(hub.stats().topics, 0, "{:?}", hub.stats());
    for kind in KINDS {
        let ok = if kind == "ws" {
            StatusCode::SWITCHING_PROTOCOLS
        } else {
            StatusCode::OK
        };
        let (got, _) = status(addr, kind, &path(kind, "chat:1"), Some("Bearer reader")).await;
        assert_eq!(got, ok, "{kind}");
    }
}
