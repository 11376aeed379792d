//! Shutdown in one call: closing the hub ends every technique's open connections with its
//! goodbye, so hyper-util's `GracefulShutdown` completes with a client of every technique
//! connected (axum's graceful shutdown is tested by `examples/axum-server`).

use std::time::Duration;

use http_body_util::BodyExt;
use push_core::{Hub, Topic};
use push_longpoll::LongPoll;
use push_sse::Sse;
use push_stream::Streamer;
use push_tests::{boxed, get, http1, TestServer};
use push_ws::client::{Client, ClientError};
use push_ws::Ws;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_hub_lets_hyper_util_graceful_shutdown_complete() {
    let hub = Hub::memory();
    let (sse, stream, longpoll, ws) = (
        Sse::new(hub.clone()),
        Streamer::new(hub.clone()),
        LongPoll::new(hub.clone()),
        Ws::new(hub.clone()),
    );
    let ws_open = ws.clone();
    let topic = Topic::new("t").unwrap();
    let server = TestServer::start(move |req| {
        let (sse, stream, longpoll, ws, topic) = (
            sse.clone(),
            stream.clone(),
            longpoll.clone(),
            ws.clone(),
            topic.clone(),
        );
        Box::pin(async move {
            match req.uri().path() {
                "/sse" => sse.respond(&topic, req).await.map(boxed),
                "/stream" => stream.respond(&topic, req).await.map(boxed),
                "/longpoll" => longpoll.respond(&topic, req).await.map(boxed),
                // No topic: this connection holds no subscription, and still says goodbye.
                _ => ws.respond_topics(&[], req).await.map(boxed),
            }
        })
    })
    .await;
    let addr = server.addr;
    let read_all = |path: &'static str| {
        tokio::spawn(async move {
            let res = http1(addr, get(addr, path, &[])).await;
            let body = res.into_body().collect().await.expect("body").to_bytes();
            String::from_utf8_lossy(&body).into_owned()
        })
    };
    let sse_body = read_all("/sse");
    let stream_body = read_all("/stream");
    let longpoll_body = read_all("/longpoll?timeout=50");
    let mut ws_client = Client::connect(&format!("ws://{addr}/ws")).await.unwrap();
    let ws_closed = tokio::spawn(async move {
        loop {
            match ws_client.next().await {
                Ok(_) => {}
                Err(ClientError::Closed { code, .. }) => return code,
                Err(_) => return None,
            }
        }
    });
    // Every client attached: three subscriptions (SSE, stream, the held long-poll) and the socket.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub.stats().subscribers < 3 || ws_open.open() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "clients did not attach"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The one call.
    hub.close();
    assert!(
        server.graceful_shutdown(Duration::from_secs(10)).await,
        "connections still open 10 s after the hub closed"
    );
    assert!(sse_body.await.unwrap().contains("retry:"));
    assert!(stream_body.await.unwrap().contains("\"end\":\"shutdown\""));
    assert!(longpoll_body.await.unwrap().contains("\"outcome\""));
    let ws_code = tokio::time::timeout(Duration::from_secs(10), ws_closed)
        .await
        .expect("the WebSocket was not closed within 10 s of the hub closing");
    assert_eq!(ws_code.unwrap(), Some(1001));
}
