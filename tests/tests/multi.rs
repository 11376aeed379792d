//! Several topics in one request (`?topic=a&topic=b`) for SSE, stream, poll and long-poll: one
//! combined cursor resumes every topic exactly (SSE from one `Last-Event-ID` across a cut),
//! each topic's outcome stays explicit, events carry their topic, and the cap is enforced.

use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use push_core::{Hub, NewEvent, Topic};
use push_sse::SseConfig;
use push_tests::{boxed, get, http1, read_until, text, TestServer};
use serde_json::Value;

const BOUND: Duration = Duration::from_secs(20);

async fn server(hub: &Hub, sse: push_sse::Sse) -> TestServer {
    let stream = push_stream::Streamer::new(hub.clone());
    let poll = push_poll::Poller::new(hub.clone());
    let longpoll = push_longpoll::LongPoll::new(hub.clone());
    TestServer::start(move |req| {
        let (sse, stream, poll, longpoll) =
            (sse.clone(), stream.clone(), poll.clone(), longpoll.clone());
        Box::pin(async move {
            let topics = match push_http::topics::query_topics(req.uri(), "topic", 16) {
                Ok(topics) => topics,
                Err(reason) => {
                    let mut res = http::Response::new(text(reason));
                    *res.status_mut() = StatusCode::BAD_REQUEST;
                    return res;
                }
            };
            match req.uri().path() {
                "/sse" => sse.respond_topics(&topics, req).await.map(boxed),
                "/stream" => stream.respond_topics(&topics, req).await.map(boxed),
                "/poll" => poll.respond_topics(&topics, req).await.map(boxed),
                _ => longpoll.respond_topics(&topics, req).await.map(boxed),
            }
        })
    })
    .await
}

async fn json(addr: std::net::SocketAddr, path: &str) -> Value {
    let res = http1(addr, get(addr, path, &[])).await;
    assert_eq!(res.status(), 200, "{path}");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_client_cut_mid_sequence_resumes_every_topic_from_one_last_event_id() {
    let hub = Hub::memory();
    let sse = push_sse::Sse::with_config(
        hub.clone(),
        SseConfig::default().retry(Some(Duration::from_millis(50))),
    );
    let server = server(&hub, sse.clone()).await;
    let url = server.url("/sse?topic=a&topic=b").parse().unwrap();
    let mut client = push_sse::client::Client::new(url).retry(Duration::from_millis(50));
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = received.clone();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 40 {
            let m = client.next().await.unwrap();
            if m.event == "message" {
                let v: Value = serde_json::from_str(&m.data).unwrap();
                got.push(format!(
                    "{}:{}",
                    v["topic"].as_str().unwrap(),
                    v["data"].as_str().unwrap()
                ));
                // Every id is the combined cursor: two cursors.
                assert_eq!(m.last_event_id.split(',').count(), 2, "{}", m.last_event_id);
                count.store(got.len(), std::sync::atomic::Ordering::Release);
            }
        }
        (got, client.connects())
    });
    let deadline = tokio::time::Instant::now() + BOUND;
    while sse.open() < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
    let mut want = Vec::new();
    for i in 0..20 {
        hub.publish(&a, NewEvent::text(format!("a{i}")))
            .await
            .unwrap();
        hub.publish(&b, NewEvent::text(format!("b{i}")))
            .await
            .unwrap();
        want.push(format!("a:a{i}"));
        want.push(format!("b:b{i}"));
        if i == 9 {
            // Mid-sequence: once the client has the first twenty, cut it off.
            let deadline = tokio::time::Instant::now() + BOUND;
            while received.load(std::sync::atomic::Ordering::Acquire) < 20 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the first events never came"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            server.drop_connections();
        }
    }
    let (got, connects) = tokio::time::timeout(BOUND, reader).await.unwrap().unwrap();
    assert!(connects >= 2, "the cut made it reconnect");
    // Per topic, every event once and in order; across topics, any interleaving.
    for topic in ["a", "b"] {
        let mine = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .filter(|e| e.starts_with(&format!("{topic}:")))
                .cloned()
                .collect()
        };
        assert_eq!(mine(&got), mine(&want), "topic {topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_topic_keeps_its_outcome_and_the_other_techniques_resume_with_since() {
    let hub = Hub::memory();
    let sse = push_sse::Sse::new(hub.clone());
    let server = server(&hub, sse).await;
    let addr = server.addr;
    let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
    let a1 = hub.publish(&a, NewEvent::text("a1")).await.unwrap().id();
    let b1 = hub.publish(&b, NewEvent::text("b1")).await.unwrap().id();
    hub.publish(&a, NewEvent::text("a2")).await.unwrap();
    hub.publish(&b, NewEvent::json(r#"{"n":2}"#).unwrap())
        .await
        .unwrap();

    // Poll from the combined cursor after a1 and b1: one event of each, with its topic.
    let poll = json(addr, &format!("/poll?topic=a&topic=b&since={a1},{b1}")).await;
    assert_eq!(poll["topics"][0]["topic"], "a");
    assert_eq!(poll["topics"][1]["outcome"], "resumed");
    let events = poll["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{poll}");
    assert_eq!(
        (events[0]["topic"].clone(), events[0]["data"].clone()),
        ("a".into(), "a2".into())
    );
    assert_eq!(events[1]["json"]["n"], 2);
    let next = poll["next"].as_str().unwrap().to_owned();
    assert_eq!(next.split(',').count(), 2);

    // A cursor that does not fit the topics (one part for two) resets each, explicitly.
    let reset = json(addr, &format!("/poll?topic=a&topic=b&since={a1}")).await;
    assert_eq!(reset["topics"][0]["outcome"], "reset", "{reset}");
    assert_eq!(reset["topics"][1]["outcome"], "reset", "{reset}");

    // Long-poll from `next` waits for either topic and answers with b's event.
    let held = tokio::spawn(async move {
        json(
            addr,
            &format!("/longpoll?topic=a&topic=b&since={next}&timeout=10"),
        )
        .await
    });
    // Held: both of its subscriptions wait for news.
    let deadline = tokio::time::Instant::now() + BOUND;
    while hub.stats().waiting < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the long-poll was never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b3 = hub.publish(&b, NewEvent::text("b3")).await.unwrap().id();
    let answer = tokio::time::timeout(BOUND, held).await.unwrap().unwrap();
    let events = answer["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{answer}");
    assert_eq!(events[0]["topic"], "b");
    assert_eq!(answer["topics"][1]["cursor"], b3.to_string());

    // Stream from the start cursors: an outcome line per topic, then both topics' events.
    let res = http1(
        addr,
        get(
            addr,
            &format!("/stream?topic=a&topic=b&since={a1},{b1}"),
            &[],
        ),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| t.lines().count() >= 5).await;
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        (lines[0]["topic"].clone(), lines[0]["outcome"].clone()),
        ("a".into(), "resumed".into())
    );
    assert_eq!(lines[1]["topic"], "b");
    let data: Vec<&Value> = lines[2..].iter().map(|l| &l["topic"]).collect();
    assert_eq!(data.iter().filter(|t| ***t == "a").count(), 1, "{text}");
    assert_eq!(data.iter().filter(|t| ***t == "b").count(), 2, "{text}");

    // SSE: each topic's reset is its own event, naming the topic.
    let res = http1(
        addr,
        get(
            addr,
            "/sse?topic=a&topic=b",
            &[("last-event-id", "garbage,more")],
        ),
    )
    .await;
    let text = read_until(&mut res.into_body(), BOUND, |t| {
        t.matches("push-reset").count() == 2
    })
    .await;
    assert!(
        text.contains("data: {\"topic\":\"a\"}") && text.contains("data: {\"topic\":\"b\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn the_topic_cap_and_bad_names_are_a_400_and_complete_topics_end_the_request() {
    let hub = Hub::memory();
    let sse = push_sse::Sse::new(hub.clone());
    let server = server(&hub, sse).await;
    let addr = server.addr;
    let many: Vec<String> = (0..17).map(|i| format!("topic=t{i}")).collect();
    let res = http1(addr, get(addr, &format!("/poll?{}", many.join("&")), &[])).await;
    assert_eq!(res.status(), 400);
    let res = http1(addr, get(addr, "/poll?topic=a&topic=no%20spaces", &[])).await;
    assert_eq!(res.status(), 400);
    let res = http1(addr, get(addr, "/poll", &[])).await;
    assert_eq!(res.status(), 400);

    let (a, b) = (Topic::new("ja").unwrap(), Topic::new("jb").unwrap());
    let a1 = hub.publish(&a, NewEvent::text("x")).await.unwrap().id();
    let b1 = hub.publish(&b, NewEvent::text("y")).await.unwrap().id();
    hub.complete(&a).await.unwrap();
    let poll = json(addr, &format!("/poll?topic=ja&topic=jb&since={a1},{b1}")).await;
    assert!(poll.get("complete").is_none(), "jb is not complete: {poll}");
    let end_b = hub.complete(&b).await.unwrap();
    let poll = json(addr, &format!("/poll?topic=ja&topic=jb&since={a1},{b1}")).await;
    assert_eq!(poll["complete"], true, "{poll}");
    let next = poll["next"].as_str().unwrap().to_owned();
    assert!(next.ends_with(&end_b.to_string()), "{next}");
    // At every topic's end, an SSE request gets 204.
    let res = http1(
        addr,
        get(addr, "/sse?topic=ja&topic=jb", &[("last-event-id", &next)]),
    )
    .await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_poll_of_several_topics_with_nothing_new_is_a_304_by_its_tag() {
    let hub = Hub::memory();
    let server = server(&hub, push_sse::Sse::new(hub.clone())).await;
    let addr = server.addr;
    let (a, b) = (Topic::new("ea").unwrap(), Topic::new("eb").unwrap());
    let a1 = hub.publish(&a, NewEvent::text("x")).await.unwrap().id();
    let b1 = hub.publish(&b, NewEvent::text("y")).await.unwrap().id();
    let path = format!("/poll?topic=ea&topic=eb&since={a1},{b1}");
    let res = http1(addr, get(addr, &path, &[])).await;
    assert_eq!(res.status(), 200);
    let tag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        tag,
        format!("\"{a1}_{b1}\""),
        "the combined cursor, commas as _"
    );
    // Nothing new: the same question with the tag is answered 304, without a body.
    let res = http1(addr, get(addr, &path, &[("if-none-match", &tag)])).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(res
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
    // News on one topic: 200 with it, and a new tag.
    hub.publish(&b, NewEvent::text("z")).await.unwrap();
    let res = http1(addr, get(addr, &path, &[("if-none-match", &tag)])).await;
    assert_eq!(res.status(), 200);
    assert_ne!(res.headers()["etag"].to_str().unwrap(), tag);
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["events"][0]["data"], "z");
}
