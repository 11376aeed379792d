//! push-http's publish endpoint through real sockets: the answer and its cursor, the limits,
//! cross-site requests refused, and the access hook's publish grant.

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use push_core::{Hub, StartFrom, Topic};
use push_http::{Allow, Authorizer, Grant, PublishConfig, Publisher, Refusal};
use push_tests::{boxed, TestServer};

async fn server(publisher: Publisher) -> TestServer {
    TestServer::start(move |req| {
        let publisher = publisher.clone();
        Box::pin(async move {
            let topic = Topic::new(req.uri().path().trim_start_matches("/topics/")).unwrap();
            publisher.respond(&topic, req).await.map(boxed)
        })
    })
    .await
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", server.addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let res = push_tests::http1(server.addr, req).await;
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_post_becomes_an_event_and_bad_requests_get_their_status() {
    let hub = Hub::memory();
    let publisher = Publisher::with_config(hub.clone(), PublishConfig::default().max_body(1024));
    let server = server(publisher).await;
    let (status, body) = send(
        &server,
        "POST",
        "/topics/news",
        &[("push-event-type", "greeting")],
        "hello",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body
        .trim()
        .strip_prefix("{\"id\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .unwrap()
        .to_owned();
    let batch = hub
        .read(&Topic::new("news").unwrap(), StartFrom::Oldest, 10)
        .await
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].id().to_string(), id);
    assert_eq!(batch.events[0].data(), "hello");
    assert_eq!(batch.events[0].event_type().unwrap().as_str(), "greeting");

    let (status, _) = send(&server, "GET", "/topics/news", &[], "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = send(&server, "POST", "/topics/news", &[], &"x".repeat(2000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = send(&server, "POST", "/topics/news?event=bad%20type", &[], "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A form on another site, or a fetch from one: refused without credentials.
    let cross = [
        ("origin", "http://evil.example"),
        ("content-type", "text/plain"),
    ];
    let (status, _) = send(&server, "POST", "/topics/news", &cross, "x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &server,
        "POST",
        "/topics/news",
        &[("sec-fetch-site", "cross-site")],
        "x",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let same = format!("http://{}", server.addr);
    let (status, _) = send(
        &server,
        "POST",
        "/topics/news",
        &[("origin", same.as_str())],
        "x",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        hub.read(&Topic::new("news").unwrap(), StartFrom::Oldest, 10)
            .await
            .unwrap()
            .events
            .len(),
        2,
        "refused requests published nothing"
    );
}

#[tokio::test]
async fn publishing_follows_the_grant() {
    let hub = Hub::memory();
    let auth = Authorizer::new(|parts| {
        let token = parts.headers.get("authorization").cloned();
        async move {
            match token.as_ref().and_then(|v| v.to_str().ok()) {
                Some("Bearer writer") => Ok(Grant::new(Allow::All, Allow::patterns(["chat:*"]))),
                _ => Err(Refusal::NoCredentials("a bearer token is required".into())),
            }
        }
    });
    let server = server(Publisher::new(hub.clone()).authorize(auth)).await;
    let (status, _) = send(&server, "POST", "/topics/chat:1", &[], "x").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = ("authorization", "Bearer writer");
    let (status, _) = send(&server, "POST", "/topics/admin", &[token], "x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(&server, "POST", "/topics/chat:1", &[token], "x").await;
    assert_eq!(status, StatusCode::OK);
    // A credential vouches for a cross-site request (a token is not sent by a forged form).
    let (status, _) = send(
        &server,
        "POST",
        "/topics/chat:1",
        &[token, ("origin", "http://app.example")],
        "x",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Completing and deleting need the grant's `manage` patterns, which publishing does not
/// imply; and a cookie never vouches for a cross-site request, whatever it would grant.
#[tokio::test]
async fn complete_and_delete_follow_the_manage_grant_and_cookies_never_cross_sites() {
    let hub = Hub::memory();
    let auth = Authorizer::new(|parts| {
        let bearer = parts.headers.get("authorization").cloned();
        let cookie = parts.headers.get("cookie").cloned();
        async move {
            let who = bearer.or(cookie);
            match who.as_ref().and_then(|v| v.to_str().ok()) {
                Some("Bearer writer") => Ok(Grant::new(Allow::All, Allow::All)),
                Some("Bearer admin" | "session=admin") => {
                    Ok(Grant::new(Allow::All, Allow::All).with_manage(Allow::patterns(["chat:*"])))
                }
                _ => Err(Refusal::NoCredentials("credentials are required".into())),
            }
        }
    });
    let publisher = Publisher::new(hub.clone()).authorize(auth);
    let server = TestServer::start(move |req| {
        let publisher = publisher.clone();
        Box::pin(async move {
            let path = req.uri().path().trim_start_matches("/topics/").to_owned();
            let (name, completing) = match path.strip_suffix("/complete") {
                Some(name) => (name.to_owned(), true),
                None => (path, false),
            };
            let topic = Topic::new(&name).unwrap();
            let res = match (req.method().as_str(), completing) {
                ("DELETE", _) => publisher.delete(&topic, req).await,
                (_, true) => publisher.complete(&topic, req).await,
                _ => publisher.respond(&topic, req).await,
            };
            res.map(boxed)
        })
    })
    .await;
    let writer = ("authorization", "Bearer writer");
    let admin = ("authorization", "Bearer admin");
    let (status, _) = send(&server, "POST", "/topics/chat:1", &[writer], "x").await;
    assert_eq!(status, StatusCode::OK);
    // A publisher may not finish or delete.
    let (status, body) = send(&server, "POST", "/topics/chat:1/complete", &[writer], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("finishing or deleting"), "{body}");
    let (status, _) = send(&server, "DELETE", "/topics/chat:1", &[writer], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A session cookie, same-site: admitted; cross-site: refused before the authorizer.
    let cookie = ("cookie", "session=admin");
    let evil = [
        cookie,
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let (status, body) = send(&server, "POST", "/topics/chat:1/complete", &evil, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("Authorization"), "{body}");
    let (status, _) = send(&server, "DELETE", "/topics/chat:1", &evil, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(&server, "POST", "/topics/chat:1", &evil, "x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(&server, "POST", "/topics/chat:1/complete", &[cookie], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("{\"end\":\""), "{body}");
    // Outside its manage patterns, refused; inside, deleted.
    let (status, _) = send(&server, "DELETE", "/topics/news", &[admin], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(&server, "DELETE", "/topics/chat:1", &[admin], "").await;
    assert_eq!(
        (status, body.trim()),
        (StatusCode::OK, "{\"deleted\":true}")
    );
    let (status, _) = send(&server, "GET", "/topics/chat:1/complete", &[admin], "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_answer_the_first_cursor() {
    let hub = Hub::memory();
    let server = server(Publisher::new(hub.clone())).await;
    let key = [("idempotency-key", "checkout-42")];
    let (status, first) = send(&server, "POST", "/topics/orders", &key, "paid").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, retry) = send(&server, "POST", "/topics/orders", &key, "paid").await;
    assert_eq!(retry, first, "the retry answers the same cursor");
    let (_, other) = send(
        &server,
        "POST",
        "/topics/orders",
        &[("idempotency-key", "checkout-43")],
        "paid",
    )
    .await;
    assert_ne!(other, first);
    let (status, reason) = send(
        &server,
        "POST",
        "/topics/orders",
        &[("idempotency-key", "has space")],
        "x",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}");
    let topic = Topic::new("orders").unwrap();
    let batch = hub.read(&topic, StartFrom::Oldest, 10).await.unwrap();
    assert_eq!(batch.events.len(), 2, "stored once per key");
}
