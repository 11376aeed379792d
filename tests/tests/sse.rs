//! push-sse through real sockets: hyper server on 127.0.0.1, the crate's SSE client, hyper's
//! HTTP/1.1 and HTTP/2 clients, and curl.

use std::time::Duration;

use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Retention, Topic};
use push_sse::client::Client;
use push_sse::{Sse, SseConfig};
use push_tests::{boxed, get, http1, http2, read_until, require, TestServer};

const BOUND: Duration = Duration::from_secs(20);

fn topic() -> Topic {
    Topic::new("t").unwrap()
}

async fn server(hub: &Hub, config: SseConfig) -> (TestServer, Sse) {
    let sse = Sse::with_config(hub.clone(), config);
    let endpoint = sse.clone();
    let server = TestServer::start(move |req| {
        let sse = endpoint.clone();
        Box::pin(async move {
            let topic = Topic::new(req.uri().path().trim_start_matches("/sse/")).unwrap();
            sse.respond(&topic, req).await.map(boxed)
        })
    })
    .await;
    (server, sse)
}

async fn publish(hub: &Hub, range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in range {
        ids.push(
            hub.publish(&topic(), NewEvent::new(format!("event {i}")))
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    ids
}

async fn next_data(client: &mut Client) -> String {
    let message = tokio::time::timeout(BOUND, client.next())
        .await
        .expect("in time")
        .expect("message");
    message.data
}

#[tokio::test]
async fn events_arrive_in_order_and_a_reconnect_misses_nothing() {
    let hub = Hub::memory();
    let config = SseConfig::default().retry(Some(Duration::from_millis(100)));
    let (server, _) = server(&hub, config).await;
    let mut client = Client::new(server.url("/sse/t").parse().unwrap()).max_attempts(20);
    // The first message proves the stream is open (the subscription starts from the newest).
    let first = tokio::spawn(async move {
        let data = next_data(&mut client).await;
        (client, data)
    });
    // Publish until the client's subscription exists, so no event is published before it.
    while hub.stats().subscribers == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    publish(&hub, 1..=5).await;
    let (mut client, data) = first.await.unwrap();
    let mut got = vec![data];
    for _ in 2..=5 {
        got.push(next_data(&mut client).await);
    }
    // The server cuts every connection; events published meanwhile must still arrive, once.
    server.drop_connections();
    publish(&hub, 6..=10).await;
    for _ in 6..=10 {
        got.push(next_data(&mut client).await);
    }
    let want: Vec<String> = (1..=10).map(|i| format!("event {i}")).collect();
    assert_eq!(got, want);
    assert_eq!(client.connects(), 2, "exactly one reconnect");
}

#[tokio::test]
async fn a_new_client_resumes_exactly_after_its_last_id_by_header_or_query() {
    let hub = Hub::memory();
    let (server, _) = server(&hub, SseConfig::default()).await;
    let ids = publish(&hub, 1..=6).await;
    let mut by_header = Client::new(server.url("/sse/t").parse().unwrap()).last_event_id(&ids[2]);
    for i in 4..=6 {
        let m = tokio::time::timeout(BOUND, by_header.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.data, m.last_event_id),
            (format!("event {i}"), ids[i - 1].clone())
        );
    }
    let res = http1(
        server.addr,
        get(server.addr, &format!("/sse/t?lastEventId={}", ids[4]), &[]),
    )
    .await;
    let mut body = res.into_body();
    let text = read_until(&mut body, BOUND, |t| t.contains("event 6")).await;
    assert!(
        !text.contains("event 5") && text.contains(&format!("id: {}\ndata: event 6\n\n", ids[5])),
        "{text}"
    );
}

#[tokio::test]
async fn an_old_cursor_yields_the_gap_event_and_another_epoch_the_reset_event() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(3)),
    ));
    let (server, _) = server(&hub, SseConfig::default()).await;
    let ids = publish(&hub, 1..=10).await;
    let res = http1(
        server.addr,
        get(server.addr, "/sse/t", &[("last-event-id", &ids[1])]),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.contains("event 10")).await;
    // Events 3..=7 are gone: 5 missed, then 8, 9, 10; the gap's id is the cursor before 8.
    let gap = format!(
        "id: {}\nevent: push-gap\ndata: {{\"missed\":5}}\n\n",
        ids[6]
    );
    assert!(text.starts_with(&format!("retry: 3000\n\n{gap}")), "{text}");
    assert!(
        text.contains("data: event 8") && !text.contains("data: event 7"),
        "{text}"
    );

    let res = http1(
        server.addr,
        get(server.addr, "/sse/t", &[("last-event-id", "abc-3")]),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.contains("event 10")).await;
    assert!(text.contains("event: push-reset\ndata: {}\n\n"), "{text}");
    assert!(
        text.contains("data: event 8"),
        "a reset replays what is retained: {text}"
    );
}

#[tokio::test]
async fn a_client_that_reads_nothing_costs_no_more_than_retention_and_learns_of_the_gap() {
    let retained = 100;
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(retained)),
    ));
    let (server, _) = server(&hub, SseConfig::default()).await;
    let res = http1(server.addr, get(server.addr, "/sse/t", &[])).await;
    let mut body = res.into_body();
    // Published while the client reads nothing: far more than socket buffers hold.
    let total = 20_000u64;
    let payload = "x".repeat(1024);
    for _ in 0..total {
        hub.publish(&topic(), NewEvent::new(payload.clone()))
            .await
            .unwrap();
    }
    let stats = hub.stats();
    assert!(stats.retained_events <= retained, "{stats:?}");
    // Now read everything: events received plus gaps reported must account for every event.
    let mut received = 0u64;
    let mut missed = 0u64;
    let mut parser = push_sse::client::Parser::new();
    let last = hub.head(&topic()).await.unwrap().unwrap().to_string();
    let _ = tokio::time::timeout(BOUND, async {
        use http_body_util::BodyExt;
        while let Some(Ok(frame)) = body.frame().await {
            let mut out = Vec::new();
            parser.feed(frame.data_ref().map_or(&[][..], |d| &d[..]), &mut out);
            for m in out {
                if m.event == "push-gap" {
                    let v: serde_json::Value = serde_json::from_str(&m.data).unwrap();
                    missed += v["missed"].as_u64().unwrap();
                } else {
                    received += 1;
                }
            }
            if parser.last_event_id() == last {
                break;
            }
        }
    })
    .await;
    assert!(missed > 0, "a reader that fell behind must be told");
    assert_eq!(
        received + missed,
        total,
        "received {received}, missed {missed}"
    );
}

#[tokio::test]
async fn graceful_shutdown_completes_with_clients_connected() {
    let hub = Hub::memory();
    let (server, sse) = server(
        &hub,
        SseConfig::default().retry(Some(Duration::from_millis(1500))),
    )
    .await;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let res = http1(server.addr, get(server.addr, "/sse/t", &[])).await;
        bodies.push(res.into_body());
    }
    let mut h2 = http2(server.addr).await;
    let h2_res = h2
        .send_request(
            http::Request::get(server.url("/sse/t"))
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(h2_res.version(), http::Version::HTTP_2);
    bodies.push(h2_res.into_body());
    assert_eq!(sse.open(), 4);
    hub.close();
    assert!(
        server.graceful_shutdown(BOUND).await,
        "graceful shutdown did not complete"
    );
    for mut body in bodies {
        let text = read_until(&mut body, BOUND, |_| false).await;
        assert!(text.ends_with("retry: 1500\n\n"), "{text:?}");
    }
    assert_eq!(sse.open(), 0);
}

#[tokio::test]
async fn http2_streams_carry_events() {
    let hub = Hub::memory();
    let (server, _) = server(&hub, SseConfig::default()).await;
    let mut h2 = http2(server.addr).await;
    let res = h2
        .send_request(
            http::Request::get(server.url("/sse/t"))
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut body = res.into_body();
    publish(&hub, 1..=3).await;
    let text = read_until(&mut body, BOUND, |t| t.contains("event 3")).await;
    assert!(
        text.contains("data: event 1\n\n") && text.contains("data: event 3\n\n"),
        "{text}"
    );
}

#[tokio::test]
async fn limits_and_methods_get_the_right_status() {
    let hub = Hub::memory();
    let (server, _) = server(&hub, SseConfig::default().max_streams(1)).await;
    let open = http1(server.addr, get(server.addr, "/sse/t", &[])).await;
    assert_eq!(open.status(), 200);
    let refused = http1(server.addr, get(server.addr, "/sse/t", &[])).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let mut body = refused.into_body();
    assert_eq!(
        read_until(&mut body, BOUND, |_| false).await,
        "too many open streams (limit 1)\n"
    );
    drop(open);
    let post = http::Request::post("/sse/t")
        .header("host", "x")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = http1(server.addr, post).await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn keep_alive_comments_flow_on_an_idle_stream() {
    let hub = Hub::memory();
    let (server, _) = server(
        &hub,
        SseConfig::default().keep_alive(Some(Duration::from_millis(50))),
    )
    .await;
    let res = http1(server.addr, get(server.addr, "/sse/t", &[])).await;
    let text = read_until(&mut res.into_body(), BOUND, |t| {
        t.matches(":\n\n").count() >= 3
    })
    .await;
    assert!(text.matches(":\n\n").count() >= 3, "{text:?}");
}

#[tokio::test]
async fn curl_receives_events_unbuffered() {
    if !require("curl", "curl") {
        return;
    }
    let hub = Hub::memory();
    let (server, _) = server(&hub, SseConfig::default()).await;
    let url = server.url("/sse/t");
    let curl = tokio::process::Command::new("curl")
        .args(["-sN", "--max-time", "10", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while hub.stats().subscribers == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    publish(&hub, 1..=2).await;
    // Closing the hub ends the stream after what was published, so curl exits on its own.
    hub.close();
    let out = curl.wait_with_output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("data: event 1\n\n") && text.contains("data: event 2\n\n"),
        "{text}"
    );
}
