//! Two showcase processes on one Redis (`--redis`): a client subscribes over SSE on A, is cut
//! off, resumes with its last id on B, and receives exactly what it missed; and when A is
//! killed (`kill -9`) under SSE and WebSocket clients, they resume on B with their cursors and
//! miss nothing. On a Redis Cluster (`--redis` seeds), the master holding a topic is killed
//! while an SSE client on the other process follows it: after the failover the client has
//! every event once, in order.

use std::process::{Command, Stdio};
use std::time::Duration;

use push_tests::{Example, RedisCluster, RedisServer};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// One SSE event as read: its `id:` and `data:`.
#[derive(Debug, PartialEq)]
struct Sse {
    id: String,
    data: String,
}

/// An SSE response read by `curl -N`, so the test decides when to cut it off (by killing it).
struct SseClient {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl SseClient {
    fn open(base: &str, path: &str, last_event_id: Option<&str>) -> Self {
        let mut command = tokio::process::Command::new("curl");
        command.args(["-sN", "-H", "Accept: text/event-stream"]);
        if let Some(id) = last_event_id {
            command.args(["-H", &format!("Last-Event-ID: {id}")]);
        }
        let mut child = command
            .arg(format!("{}{}", base, path.trim_start_matches('/')))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("curl is installed (Debian package curl)");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    /// The next event with data and no `event:` name (so not the outcome event), waiting at
    /// most 20 s.
    async fn next(&mut self) -> Sse {
        let (mut id, mut data, mut named) = (None, None, false);
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("an event within 20 s")
                .unwrap()
                .expect("the stream stays open");
            if line.is_empty() {
                if let (Some(id), Some(data), false) = (id.take(), data.take(), named) {
                    return Sse { id, data };
                }
                named = false;
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(v.to_owned());
            } else if line.starts_with("event: ") {
                named = true;
            }
        }
    }

    async fn cut_off(mut self) {
        self.child.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_resumes_on_the_other_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let args = ["--no-ticker", "--redis", url.as_str()];
    let a = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args);
    let b = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args);

    let mut client = SseClient::open(&a.base, "/sse/shared", None);
    // Wait until A's subscription is up before publishing (its reader starts with it).
    wait_for_metric(&a.base, "push_redis_readers_connected 1").await;
    // Each shared reader reports its topics (one topic: on one of them).
    wait_for_metric(&a.base, "push_redis_reader_topics{reader=").await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        // Publish on both servers: they share the topic.
        let via = if i % 2 == 0 { &a } else { &b };
        ids.push(via.publish("shared", &format!("event {i}")));
    }
    let mut last = String::new();
    for i in 1..=5 {
        let event = client.next().await;
        assert_eq!(event.data, format!("event {i}"));
        assert_eq!(
            event.id,
            ids[i - 1],
            "the cursor is the same on both servers"
        );
        last = event.id;
    }
    // Cut off; what is published meanwhile must not be lost.
    client.cut_off().await;
    for i in 6..=10 {
        a.publish("shared", &format!("event {i}"));
    }
    let mut resumed = SseClient::open(&b.base, "/sse/shared", Some(&last));
    for i in 6..=10 {
        assert_eq!(resumed.next().await.data, format!("event {i}"));
    }
    // Nothing repeated or skipped after the missed ones: the next event is the next published.
    b.publish("shared", "event 11");
    assert_eq!(resumed.next().await.data, "event 11");

    // The stream is visible in Redis itself, under the documented key.
    assert_eq!(redis.cli(&["XLEN", "push:shared"]).trim(), "11");
}

async fn wait_for_metric(base: &str, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("curl")
            .args(["-sf", &format!("{base}metrics")])
            .output()
            .expect("curl is installed (Debian package curl)");
        if String::from_utf8_lossy(&out.stdout).contains(line) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `{line}` in /metrics"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A push server dies (`kill -9`) with SSE and WebSocket clients on it: they reconnect to the
/// other server with their cursors and miss nothing, repeat nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_server_resume_on_the_other_without_loss() {
    use push_ws::client::{Client as WsClient, Received};
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let args = ["--no-ticker", "--redis", url.as_str()];
    let a = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args);
    let b = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args);

    let sse_url = |base: &str| format!("{base}sse/room").parse().unwrap();
    let mut sse = push_sse::client::Client::new(sse_url(&a.base)).max_attempts(1);
    let ws_base = |base: &str| base.replacen("http://", "ws://", 1);
    let mut ws = WsClient::connect(&format!("{}ws/room", ws_base(&a.base)))
        .await
        .unwrap();
    assert!(matches!(ws.next().await.unwrap(), Received::Outcome { .. }));
    // Both of A's subscriptions are up (one reader) before anything is published.
    wait_for_metric(&a.base, "push_redis_readers_connected 1").await;

    let mut ws_got = Vec::new();
    // The SSE client connects when first polled: read in a task, and publish once it is open.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 5 {
            let m = next_sse(&mut sse).await.unwrap();
            if m.event == "message" {
                got.push(m.data);
            }
        }
        (sse, got)
    });
    wait_for_metric(&a.base, "push_open{technique=\"sse\"} 1").await;
    for i in 1..=5 {
        b.publish("room", &format!("m{i}"));
    }
    let (mut sse, mut sse_got) = reader.await.unwrap();
    while ws_got.len() < 5 {
        if let Received::Event { event, .. } = ws.next().await.unwrap() {
            ws_got.push(String::from_utf8(event.data.to_vec()).unwrap());
        }
    }

    // A dies without a goodbye; B keeps publishing.
    a.signal("KILL");
    for i in 6..=10 {
        b.publish("room", &format!("m{i}"));
    }
    assert!(next_sse(&mut sse).await.is_err(), "A is gone");
    assert!(ws.next().await.is_err(), "A is gone");

    // Each client comes back on B with the cursor it kept.
    let last = sse.current_last_event_id().to_owned();
    let mut sse = push_sse::client::Client::new(sse_url(&b.base)).last_event_id(&last);
    let cursor = ws
        .cursor("room")
        .expect("a cursor for the URL's topic")
        .to_owned();
    let url = format!("{}ws/room?since={cursor}", ws_base(&b.base));
    let mut ws = WsClient::connect(&url).await.unwrap();
    while sse_got.len() < 10 {
        let m = next_sse(&mut sse).await.unwrap();
        if m.event == "message" {
            sse_got.push(m.data);
        }
    }
    while ws_got.len() < 10 {
        match ws.next().await.unwrap() {
            Received::Event { event, .. } => {
                ws_got.push(String::from_utf8(event.data.to_vec()).unwrap());
            }
            Received::Outcome { outcome, .. } => {
                assert_eq!(
                    outcome,
                    push_core::Outcome::Resumed,
                    "resumed, no gap or reset"
                );
            }
            _ => {}
        }
    }
    let want: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    assert_eq!(sse_got, want, "SSE: every event once, in order");
    assert_eq!(ws_got, want, "WebSocket: every event once, in order");
}

async fn next_sse(
    sse: &mut push_sse::client::Client,
) -> Result<push_sse::client::Message, push_sse::client::ClientError> {
    tokio::time::timeout(Duration::from_secs(20), sse.next())
        .await
        .expect("an SSE event in time")
}

/// Publishes `body` to `topic` on `base` with `Idempotency-Key: body`, retrying until it is
/// acknowledged (60 s at most); its cursor.
async fn publish_retrying(base: &str, topic: &str, body: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("curl")
            .args(["-sf", "-H", &format!("Idempotency-Key: {body}"), "-d", body])
            .arg(format!("{base}topics/{topic}"))
            .output()
            .expect("curl is installed (Debian package curl)");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            if let Some(id) = text.split('"').nth(3) {
                return id.to_owned();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{body} never acknowledged: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_an_sse_client_gets_every_event_across_a_master_failover() {
    let Some(cluster) = RedisCluster::start(3) else {
        return;
    };
    let mut args = vec![
        "--no-ticker".to_owned(),
        "--redis-wait-replicas".to_owned(),
        "1".to_owned(),
    ];
    for seed in cluster.seeds() {
        args.extend(["--redis".to_owned(), seed]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args);
    let b = Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args);
    let start = publish_retrying(&a.base, "news", "0").await;
    let mut client = SseClient::open(&b.base, "/sse/news", Some(&start));
    let mut cluster = cluster;
    for n in 1..=20 {
        publish_retrying(&a.base, "news", &n.to_string()).await;
        if n == 10 {
            // The master holding the topic's stream dies; its replica takes over.
            let holder = cluster
                .masters()
                .into_iter()
                .find(|&m| {
                    cluster.nodes[m]
                        .cli(&["--scan", "--pattern", "*news"])
                        .lines()
                        .any(|k| k.ends_with("}news"))
                })
                .expect("a master holds the stream");
            cluster.nodes[holder].kill();
            // Publishes wait for a replica: the new master gets one when the old one returns.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while cluster.masters().len() < 3 {
                assert!(std::time::Instant::now() < deadline, "no failover");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            cluster.nodes[holder].restart();
            cluster.wait_ok();
        }
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        got.push(client.next().await.data);
    }
    let want: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
    assert_eq!(got, want);
    client.cut_off().await;
}

/// 10,000 active topics over two showcase processes on one Redis, each topic followed on both
/// (WebSocket clients of 64 topics each, push-ws's per-connection cap): Redis sees a handful of
/// connections, and every subscriber receives its topic's event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_topics_over_two_showcases_hold_few_redis_connections() {
    use push_ws::client::{Client, Received};
    const TOPICS: usize = 10_000;
    const PER_CLIENT: usize = 64;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // One test client holds every subscription: its quota is raised past them.
    let args = [
        "--no-ticker",
        "--redis",
        url.as_str(),
        "--client-topics",
        "20000",
    ];
    let servers = [
        Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args),
        Example::start_with(env!("CARGO_BIN_EXE_showcase"), &args),
    ];
    let names: Vec<String> = (0..TOPICS).map(|i| format!("room-{i}")).collect();
    // Every client subscribes to its 64 topics and waits for their outcomes.
    let mut clients = Vec::new();
    for server in &servers {
        for chunk in names.chunks(PER_CLIENT) {
            let ws = format!("ws://{}/ws", server.addr());
            let chunk = chunk.to_vec();
            clients.push(tokio::spawn(async move {
                let mut client = Client::connect(&ws).await.expect("connect");
                for topic in &chunk {
                    client.subscribe(topic, None).await.expect("subscribe");
                }
                let mut pending: std::collections::HashSet<String> =
                    chunk.iter().cloned().collect();
                while !pending.is_empty() {
                    match tokio::time::timeout(Duration::from_secs(60), client.next()).await {
                        Ok(Ok(Received::Outcome { topic, .. })) => {
                            pending.remove(&topic);
                        }
                        Ok(Ok(_)) => {}
                        other => panic!("while subscribing: {other:?}"),
                    }
                }
                (client, chunk)
            }));
        }
    }
    let mut subscribed = Vec::new();
    for c in clients {
        subscribed.push(c.await.expect("a client"));
    }
    // One event per topic, published by a third server (a RedisHub in this test).
    let publisher = push_core::Hub::new(
        push_redis::RedisHub::connect(&url, push_redis::RedisConfig::default())
            .await
            .expect("connect"),
    );
    let mut tasks = Vec::new();
    for share in names.chunks(TOPICS / 32) {
        let (share, publisher) = (share.to_vec(), publisher.clone());
        tasks.push(tokio::spawn(async move {
            for name in share {
                let topic = push_core::Topic::new(&name).unwrap();
                publisher
                    .publish(&topic, push_core::NewEvent::text(name.clone()))
                    .await
                    .expect("publish");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let connections = redis.cli(&["CLIENT", "LIST"]).lines().count();
    // Every subscriber, on both servers, receives its topic's event.
    let mut receivers = Vec::new();
    for (mut client, chunk) in subscribed {
        receivers.push(tokio::spawn(async move {
            let mut pending: std::collections::HashSet<String> = chunk.into_iter().collect();
            while !pending.is_empty() {
                match tokio::time::timeout(Duration::from_secs(60), client.next()).await {
                    Ok(Ok(Received::Event { topic, event })) => {
                        assert_eq!(event.data, topic.as_bytes(), "{topic}");
                        assert!(pending.remove(&topic), "{topic} twice");
                    }
                    Ok(Ok(_)) => {}
                    other => panic!("{} events missing: {other:?}", pending.len()),
                }
            }
        }));
    }
    for r in receivers {
        r.await.expect("every event");
    }
    eprintln!(
        "{TOPICS} topics on two servers, 2 subscribers each: {connections} Redis connections"
    );
    // Two servers (4 readers and 1 command connection each), this test's publisher, redis-cli.
    assert!(connections <= 64, "{connections} Redis connections");
}
