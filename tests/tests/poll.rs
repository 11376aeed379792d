//! push-poll through real sockets: the exact sequence across hundreds of polls with a concurrent
//! publisher, 304s, outcomes, limits and CORS.

use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Outcome, Retention, Topic};
use push_http::{Cors, Origins};
use push_poll::client::PollClient;
use push_poll::{PollConfig, Poller};
use push_tests::{boxed, get, http1, TestServer};
use serde_json::Value;

fn topic() -> Topic {
    Topic::new("t").unwrap()
}

/// A poll server; a request with `x-client` is rate-limited under that key.
async fn server(hub: &Hub, config: PollConfig) -> TestServer {
    let poller = Poller::with_config(hub.clone(), config);
    TestServer::start(move |req| {
        let poller = poller.clone();
        Box::pin(async move {
            let topic = Topic::new(req.uri().path().trim_start_matches("/poll/")).unwrap();
            let key = req
                .headers()
                .get("x-client")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match key {
                Some(key) => poller.respond_keyed(&topic, req, &key).await.map(boxed),
                None => poller.respond(&topic, req).await.map(boxed),
            }
        })
    })
    .await
}

async fn body_json(res: http::Response<hyper::body::Incoming>) -> Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).expect("JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_polls_receive_the_exact_sequence_while_publishing() {
    const TOTAL: usize = 600;
    let hub = Hub::memory();
    let server = server(&hub, PollConfig::default().max_batch(7)).await;
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for i in 0..TOTAL {
                hub.publish(&topic(), NewEvent::new(i.to_string()))
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_micros(300)).await;
                }
            }
        })
    };
    // Start from the oldest: the first publishes may precede the first poll.
    let mut client = PollClient::new(&server.url("/poll/t"))
        .unwrap()
        .since("0-0");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut first = true;
    while got.len() < TOTAL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {}",
            got.len()
        );
        if let Some(batch) = client.poll().await.unwrap() {
            // "0-0" is another epoch: the first answer is a reset from the oldest retained.
            let want = if first {
                Outcome::Reset
            } else {
                Outcome::Resumed
            };
            assert_eq!(batch.outcome, want);
            first = false;
            got.extend(batch.events.iter().map(|e| {
                String::from_utf8(e.data.to_vec())
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            }));
        }
    }
    publisher.await.unwrap();
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>(), "no loss, no repeat");
    let (requests, not_modified) = client.counts();
    assert!(requests > (TOTAL / 7) as u64, "{requests} polls");
    // Nothing new after the end: 304.
    assert!(client.poll().await.unwrap().is_none());
    assert_eq!(client.counts(), (requests + 1, not_modified + 1));
}

#[tokio::test]
async fn empty_polls_are_304_with_cache_headers_and_head_matches_get() {
    let hub = Hub::memory();
    let server = server(&hub, PollConfig::default()).await;
    let e = hub.publish(&topic(), NewEvent::new("x")).await.unwrap();
    let since = format!("/poll/t?since={}", e.id());
    let res = http1(server.addr, get(server.addr, &since, &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", e.id()));
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(res.headers()["x-poll-interval"], "5");
    assert_eq!(res.headers()["content-type"], "application/json");
    let v = body_json(res).await;
    assert_eq!(v["events"], serde_json::json!([]));
    assert_eq!(v["next"], e.id().to_string());

    let res = http1(
        server.addr,
        get(server.addr, &since, &[("if-none-match", &etag)]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"], etag.as_str());
    assert!(res
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());

    // A new event: the same request is a 200 with it.
    hub.publish(&topic(), NewEvent::new("y")).await.unwrap();
    let res = http1(
        server.addr,
        get(server.addr, &since, &[("if-none-match", &etag)]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body_json(res).await["events"][0]["data"], "y");

    // An older cursor with the head's tag still gets its events (the tag alone is not enough).
    let head = hub.head(&topic()).await.unwrap().unwrap();
    let res = http1(
        server.addr,
        get(
            server.addr,
            &since,
            &[("if-none-match", &format!("\"{head}\""))],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    let mut head_req = get(server.addr, &since, &[]);
    *head_req.method_mut() = http::Method::HEAD;
    let res = http1(server.addr, head_req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], format!("\"{head}\"").as_str());
    assert!(res
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
}

#[tokio::test]
async fn gap_reset_and_batches_with_more() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(5)),
    ));
    let server = server(&hub, PollConfig::default().max_batch(2)).await;
    let first = hub.publish(&topic(), NewEvent::new("0")).await.unwrap();
    for i in 1..20 {
        hub.publish(&topic(), NewEvent::new(i.to_string()))
            .await
            .unwrap();
    }
    let mut client = PollClient::new(&server.url("/poll/t"))
        .unwrap()
        .since(first.id().to_string());
    let batch = client.poll().await.unwrap().unwrap();
    // 19 events after the cursor, 5 retained: 14 missed; then the first 2 of the 5.
    assert_eq!(batch.outcome, Outcome::Gap { missed: 14 });
    assert_eq!(batch.events.len(), 2);
    assert_eq!(batch.events[0].data, "15");
    assert!(batch.more);
    let mut rest = Vec::new();
    loop {
        let batch = client.next_batch().await.unwrap();
        assert_eq!(batch.outcome, Outcome::Resumed);
        rest.extend(batch.events.iter().map(|e| e.data.clone()));
        if !batch.more {
            break;
        }
    }
    assert_eq!(rest, ["17", "18", "19"]);

    for cursor in ["abcdef-3", "garbage"] {
        let res = http1(
            server.addr,
            get(server.addr, &format!("/poll/t?since={cursor}"), &[]),
        )
        .await;
        let v = body_json(res).await;
        assert_eq!(v["outcome"], "reset", "{cursor}");
        assert!(v.get("missed").is_none());
    }
}

#[tokio::test]
async fn answers_are_bounded_in_bytes_and_nothing_is_lost() {
    let hub = Hub::memory();
    let server = server(&hub, PollConfig::default().max_batch_bytes(1 << 20)).await;
    // 30 events of 100,000 control characters: 600 KB each once JSON-escaped, 18 MB in all.
    let payload = "\u{1}".repeat(100_000);
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(
            hub.publish(&topic(), NewEvent::new(payload.clone()))
                .await
                .unwrap()
                .id(),
        );
    }
    // A cursor the server does not know: a reset, then every retained event.
    let mut since = "garbage".to_owned();
    let mut seen = Vec::new();
    let mut answers = 0;
    loop {
        let res = http1(
            server.addr,
            get(server.addr, &format!("/poll/t?since={since}"), &[]),
        )
        .await;
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        // At most the bound plus one event (the first of an answer is always taken).
        assert!(bytes.len() <= (1 << 20) + 700_000, "{} bytes", bytes.len());
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        for e in v["events"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        answers += 1;
        since = v["next"].as_str().unwrap().to_owned();
        if !v["more"].as_bool().unwrap() {
            break;
        }
        assert!(answers < 100);
    }
    let expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(seen, expected, "every event once, in order");
    assert!(
        answers >= 15,
        "{answers} answers for 18 MB under a 1 MiB bound"
    );
}

#[tokio::test]
async fn rate_limit_method_and_shutdown_statuses() {
    let hub = Hub::memory();
    let server = server(
        &hub,
        PollConfig::default().min_interval(Some(Duration::from_secs(30))),
    )
    .await;
    let keyed = |addr| get(addr, "/poll/t", &[("x-client", "alice")]);
    assert_eq!(
        http1(server.addr, keyed(server.addr)).await.status(),
        StatusCode::OK
    );
    let res = http1(server.addr, keyed(server.addr)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Another key, or no key: not limited.
    let res = http1(
        server.addr,
        get(server.addr, "/poll/t", &[("x-client", "bob")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        http1(server.addr, get(server.addr, "/poll/t", &[]))
            .await
            .status(),
        StatusCode::OK
    );

    let mut post = get(server.addr, "/poll/t", &[]);
    *post.method_mut() = http::Method::POST;
    let res = http1(server.addr, post).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");

    hub.close();
    let res = http1(server.addr, get(server.addr, "/poll/t", &[])).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let hub = Hub::memory();
    let cors = Cors::new(Origins::list(["http://app.test"]));
    let server = server(&hub, PollConfig::default().cors(Some(cors))).await;
    let mut preflight = get(
        server.addr,
        "/poll/t",
        &[
            ("origin", "http://app.test"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "if-none-match"),
        ],
    );
    *preflight.method_mut() = http::Method::OPTIONS;
    let res = http1(server.addr, preflight).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    assert_eq!(
        res.headers()["access-control-allow-headers"],
        "If-None-Match"
    );

    let res = http1(
        server.addr,
        get(server.addr, "/poll/t", &[("origin", "http://app.test")]),
    )
    .await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    assert!(res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("ETag"));
    let res = http1(
        server.addr,
        get(server.addr, "/poll/t", &[("origin", "http://evil.test")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
