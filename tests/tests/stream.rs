//! push-stream through real sockets: chunked HTTP/1.1 and HTTP/2 DATA frames.

use std::time::Duration;

use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Retention, Topic};
use push_stream::{StreamConfig, Streamer};
use push_tests::{boxed, get, http1, http2, read_until, TestServer};
use serde_json::Value;

const BOUND: Duration = Duration::from_secs(20);

fn topic() -> Topic {
    Topic::new("t").unwrap()
}

async fn server(hub: &Hub, config: StreamConfig) -> TestServer {
    let streamer = Streamer::with_config(hub.clone(), config);
    TestServer::start(move |req| {
        let streamer = streamer.clone();
        Box::pin(async move {
            let topic = Topic::new(req.uri().path().trim_start_matches("/stream/")).unwrap();
            streamer.respond(&topic, req).await.map(boxed)
        })
    })
    .await
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[tokio::test]
async fn chunked_lines_arrive_in_order_as_they_are_published() {
    let hub = Hub::memory();
    let server = server(&hub, StreamConfig::default()).await;
    let res = http1(server.addr, get(server.addr, "/stream/t", &[])).await;
    assert_eq!(res.headers()["transfer-encoding"], "chunked");
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    assert_eq!(res.headers()["cache-control"], "no-cache, no-transform");
    let mut body = res.into_body();
    // The outcome line arrives before any event: the stream is flushed from the start.
    let first = read_until(&mut body, BOUND, |t| t.ends_with('\n')).await;
    assert_eq!(lines(&first)[0]["outcome"], "resumed");
    let mut text = String::new();
    for i in 1..=5 {
        hub.publish(&topic(), NewEvent::new(format!("e{i}")))
            .await
            .unwrap();
        // Each event is readable before the next is published: flushed per event.
        text += &read_until(&mut body, BOUND, |t| t.ends_with('\n')).await;
    }
    let data: Vec<_> = lines(&text)
        .iter()
        .map(|v| v["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data, ["e1", "e2", "e3", "e4", "e5"]);
}

#[tokio::test]
async fn since_resumes_exactly_and_binary_payloads_survive() {
    let hub = Hub::memory();
    let server = server(&hub, StreamConfig::default()).await;
    let first = hub.publish(&topic(), NewEvent::new("text")).await.unwrap();
    let binary: Vec<u8> = (0..=255).collect();
    hub.publish(&topic(), NewEvent::new(binary.clone()))
        .await
        .unwrap();
    let mut h2 = http2(server.addr).await;
    let url = server.url(&format!("/stream/t?since={}", first.id()));
    let res = h2
        .send_request(
            http::Request::get(url)
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    let text = read_until(&mut res.into_body(), BOUND, |t| t.lines().count() >= 2).await;
    let lines = lines(&text);
    assert_eq!(lines[0]["outcome"], "resumed");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(lines[1]["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, binary);
}

#[tokio::test]
async fn gap_and_reset_are_the_first_line() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(2)),
    ));
    let server = server(&hub, StreamConfig::default()).await;
    let first = hub.publish(&topic(), NewEvent::new("1")).await.unwrap();
    for i in 2..=6 {
        hub.publish(&topic(), NewEvent::new(i.to_string()))
            .await
            .unwrap();
    }
    let res = http1(
        server.addr,
        get(server.addr, &format!("/stream/t?since={}", first.id()), &[]),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.lines().count() >= 3).await;
    let l = lines(&text);
    assert_eq!(
        (l[0]["outcome"].as_str(), l[0]["missed"].as_u64()),
        (Some("gap"), Some(3))
    );
    assert_eq!(
        (l[1]["data"].as_str(), l[2]["data"].as_str()),
        (Some("5"), Some("6"))
    );

    let res = http1(
        server.addr,
        get(server.addr, "/stream/t?since=not-a-cursor", &[]),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.lines().count() >= 3).await;
    let l = lines(&text);
    assert_eq!(l[0]["outcome"], "reset");
    assert_eq!(l[1]["data"], "5");
}

#[tokio::test]
async fn heartbeats_and_the_shutdown_line() {
    let hub = Hub::memory();
    let server = server(
        &hub,
        StreamConfig::default().heartbeat(Some(Duration::from_millis(50))),
    )
    .await;
    let res = http1(server.addr, get(server.addr, "/stream/t", &[])).await;
    let mut body = res.into_body();
    let text = read_until(&mut body, BOUND, |t| t.matches("heartbeat").count() >= 2).await;
    assert!(lines(&text)[1]["heartbeat"].as_u64().unwrap() > 1_600_000_000_000);
    hub.publish(&topic(), NewEvent::new("last")).await.unwrap();
    hub.close();
    assert!(
        server.graceful_shutdown(BOUND).await,
        "graceful shutdown did not complete"
    );
    let rest = read_until(&mut body, BOUND, |_| false).await;
    let l = lines(&rest);
    let end = l.last().unwrap();
    assert_eq!(end["end"], "shutdown");
    assert!(
        l.iter().any(|v| v["data"] == "last"),
        "published before the close, still delivered: {rest}"
    );
}

#[tokio::test]
async fn the_stream_limit_answers_503() {
    let hub = Hub::memory();
    let server = server(
        &hub,
        StreamConfig::default()
            .max_streams(1)
            .retry_after(Duration::from_secs(7)),
    )
    .await;
    let _open = http1(server.addr, get(server.addr, "/stream/t", &[])).await;
    let refused = http1(server.addr, get(server.addr, "/stream/t", &[])).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_across_cuts_without_loss_or_repeat() {
    use push_stream::client::{Received, StreamClient};
    let hub = Hub::memory();
    let server = server(&hub, StreamConfig::default()).await;
    let first = hub.publish(&topic(), NewEvent::new("0")).await.unwrap();
    let mut client = StreamClient::new(&server.url("/stream/t"))
        .unwrap()
        .since(first.id().to_string());
    let mut got = Vec::new();
    for round in 0..3 {
        for i in 0..5 {
            let n = round * 5 + i + 1;
            hub.publish(&topic(), NewEvent::new(n.to_string()))
                .await
                .unwrap();
        }
        while got.len() < (round + 1) * 5 {
            match tokio::time::timeout(BOUND, client.next())
                .await
                .unwrap()
                .unwrap()
            {
                Received::Event(event) => got.push(event.data),
                Received::Outcome { outcome, .. } => {
                    assert_eq!(outcome, push_core::Outcome::Resumed)
                }
                other => panic!("{other:?}"),
            }
        }
        // Cut every connection: the client asks again from its cursor.
        server.drop_connections();
    }
    let expected: Vec<String> = (1..=15).map(|n| n.to_string()).collect();
    assert_eq!(
        got, expected,
        "every event once, in order, across three cuts"
    );
    assert!(client.connects() >= 3, "{} connects", client.connects());
}
