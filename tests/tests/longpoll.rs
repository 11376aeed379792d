//! push-longpoll through real sockets: the exact sequence across hundreds of cycles with a
//! concurrent publisher, hold and release, timeouts, disconnects during a hold, limits and
//! graceful shutdown.

use std::time::Duration;

use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Outcome, Retention, Topic};
use push_longpoll::client::LongPollClient;
use push_longpoll::{LongPoll, LongPollConfig};
use push_tests::{boxed, get, http1, http2, TestServer};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const BOUND: Duration = Duration::from_secs(20);

fn topic() -> Topic {
    Topic::new("t").unwrap()
}

async fn server(lp: &LongPoll) -> TestServer {
    let lp = lp.clone();
    TestServer::start(move |req| {
        let lp = lp.clone();
        Box::pin(async move {
            let topic = Topic::new(req.uri().path().trim_start_matches("/longpoll/")).unwrap();
            lp.respond(&topic, req).await.map(boxed)
        })
    })
    .await
}

async fn body_json(res: http::Response<hyper::body::Incoming>) -> Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).expect("JSON body")
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_cycles_receive_the_exact_sequence_while_publishing() {
    const TOTAL: usize = 800;
    let hub = Hub::memory();
    let lp = LongPoll::with_config(hub.clone(), LongPollConfig::default().max_batch(5));
    let server = server(&lp).await;
    // The client holds its cursor from the start: ask once to learn the head (times out empty).
    let mut client = LongPollClient::new(&server.url("/longpoll/t"))
        .unwrap()
        .timeout(Duration::from_millis(50));
    let start = client.next_batch().await.unwrap();
    assert_eq!(start.outcome, Outcome::Resumed);
    assert!(start.events.is_empty());
    let mut client = client.timeout(Duration::from_secs(10));
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for i in 0..TOTAL {
                hub.publish(&topic(), NewEvent::new(i.to_string()))
                    .await
                    .unwrap();
                // Bursts and pauses: some events land while a request is held, some between
                // an answer and the next request.
                if i % 4 == 0 {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
            }
        })
    };
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < TOTAL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {}",
            got.len()
        );
        let batch = client.next_batch().await.unwrap();
        assert_eq!(batch.outcome, Outcome::Resumed);
        got.extend(batch.events.iter().map(|e| {
            std::str::from_utf8(&e.data)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        }));
    }
    publisher.await.unwrap();
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>(), "no loss, no repeat");
    assert!(
        client.requests() > (TOTAL / 5) as u64,
        "{} cycles",
        client.requests()
    );
    assert_eq!(lp.open(), 0);
}

#[tokio::test]
async fn a_held_request_is_released_by_a_publish_and_times_out_empty() {
    let hub = Hub::memory();
    let lp = LongPoll::new(hub.clone());
    let server = server(&lp).await;
    let addr = server.addr;
    let held = tokio::spawn(async move { http1(addr, get(addr, "/longpoll/t", &[])).await });
    eventually("the request is held", || lp.open() == 1).await;
    assert!(!held.is_finished());
    let e = hub.publish(&topic(), NewEvent::new("news")).await.unwrap();
    let res = tokio::time::timeout(BOUND, held).await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v = body_json(res).await;
    assert_eq!(v["events"][0]["data"], "news");
    assert_eq!(v["next"], e.id().to_string());

    // Timeout: no events, the same cursor back.
    let path = format!("/longpoll/t?since={}&timeout=0.2", e.id());
    let res = http1(addr, get(addr, &path, &[])).await;
    let v = body_json(res).await;
    assert_eq!(v["outcome"], "resumed");
    assert_eq!(v["events"], serde_json::json!([]));
    assert_eq!(v["next"], e.id().to_string());
    assert_eq!(lp.open(), 0);
}

#[tokio::test]
async fn gap_and_reset_are_answered_at_once() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(3)),
    ));
    let lp = LongPoll::new(hub.clone());
    let server = server(&lp).await;
    let first = hub.publish(&topic(), NewEvent::new("0")).await.unwrap();
    for i in 1..10 {
        hub.publish(&topic(), NewEvent::new(i.to_string()))
            .await
            .unwrap();
    }
    let path = format!("/longpoll/t?since={}", first.id());
    let v = body_json(http1(server.addr, get(server.addr, &path, &[])).await).await;
    assert_eq!(v["outcome"], "gap");
    assert_eq!(v["missed"], 6);
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    // A reset is told at once, even with nothing retained after it.
    let head = hub.head(&topic()).await.unwrap().unwrap();
    let v = body_json(
        http1(
            server.addr,
            get(server.addr, "/longpoll/t?since=ffff-1&timeout=30", &[]),
        )
        .await,
    )
    .await;
    assert_eq!(v["outcome"], "reset");
    // The default reset policy restarts from the oldest retained event.
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    assert_eq!(v["next"], head.to_string());
}

#[tokio::test]
async fn a_client_that_goes_away_frees_its_waiter_at_once() {
    let hub = Hub::memory();
    let lp = LongPoll::new(hub.clone());
    let server = server(&lp).await;

    // HTTP/1.1: the client closes its socket during the hold.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /longpoll/t HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    eventually("the request is held", || lp.open() == 1).await;
    assert_eq!(hub.stats().waiting, 1);
    drop(socket);
    eventually("the held request is released", || lp.open() == 0).await;
    assert_eq!(hub.stats().waiting, 0);
    assert_eq!(hub.stats().subscribers, 0);

    // HTTP/2: the client resets the stream (drops the response future).
    let mut h2 = http2(server.addr).await;
    let req = http::Request::get(server.url("/longpoll/t"))
        .body(Empty::new())
        .unwrap();
    let pending = tokio::spawn(async move {
        let res = h2.send_request(req).await;
        drop(res);
    });
    eventually("the h2 request is held", || lp.open() == 1).await;
    pending.abort();
    eventually("the h2 request is released", || lp.open() == 0).await;
    assert_eq!(hub.stats().waiting, 0);
}

#[tokio::test]
async fn limits_bad_input_and_methods() {
    let hub = Hub::memory();
    let lp = LongPoll::with_config(hub.clone(), LongPollConfig::default().max_held(2));
    let server = server(&lp).await;
    let addr = server.addr;
    let a = tokio::spawn(async move { http1(addr, get(addr, "/longpoll/t", &[])).await });
    let b = tokio::spawn(async move { http1(addr, get(addr, "/longpoll/t", &[])).await });
    eventually("two requests held", || lp.open() == 2).await;
    let res = http1(addr, get(addr, "/longpoll/t", &[])).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    hub.publish(&topic(), NewEvent::new("x")).await.unwrap();
    assert_eq!(a.await.unwrap().status(), StatusCode::OK);
    assert_eq!(b.await.unwrap().status(), StatusCode::OK);

    let res = http1(addr, get(addr, "/longpoll/t?timeout=soon", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let mut head = get(addr, "/longpoll/t", &[]);
    *head.method_mut() = http::Method::HEAD;
    let res = tokio::time::timeout(Duration::from_secs(5), http1(addr, head))
        .await
        .expect("HEAD answers at once");
    assert_eq!(res.status(), StatusCode::OK);
    let mut options = get(addr, "/longpoll/t", &[]);
    *options.method_mut() = http::Method::OPTIONS;
    let res = http1(addr, options).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    let mut delete = get(addr, "/longpoll/t", &[]);
    *delete.method_mut() = http::Method::DELETE;
    assert_eq!(
        http1(addr, delete).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn graceful_shutdown_answers_every_held_request_at_once() {
    let hub = Hub::memory();
    let lp = LongPoll::new(hub.clone());
    let server = server(&lp).await;
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(tokio::spawn(async move {
            http1(addr, get(addr, "/longpoll/t?timeout=50", &[])).await
        }));
    }
    let mut h2 = http2(addr).await;
    let h2_held = tokio::spawn(async move {
        h2.send_request(
            http::Request::get(format!("http://{addr}/longpoll/t?timeout=50"))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap()
    });
    eventually("six requests held", || lp.open() == 6).await;
    hub.close();
    assert!(
        server.graceful_shutdown(BOUND).await,
        "hyper's graceful shutdown completed with held requests"
    );
    for h in held {
        let res = h.await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["retry-after"], "5");
        assert_eq!(body_json(res).await["events"], serde_json::json!([]));
    }
    assert_eq!(h2_held.await.unwrap().status(), StatusCode::OK);
}
