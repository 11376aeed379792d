//! The MCP server through real sockets, on a real Redis, two server processes sharing it: a
//! tool call's stream cut and resumed with `Last-Event-ID` (same server, other server, after
//! the first server was killed), a `Last-Event-ID` of another session, `DELETE`, and 1,000
//! sessions at once. Raw HTTP per the spec, since a stream must be cut at a chosen event.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use push_tests::{http1, Example, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-server");
const VERSION: &str = "2025-11-25";
/// Every wait on the servers is bounded by this.
const BOUND: Duration = Duration::from_secs(20);

/// One SSE event as the client saw it.
#[derive(Debug, Clone)]
struct SseEvent {
    id: Option<String>,
    data: String,
}

/// Splits the text of an event stream into complete events.
fn events(text: &str) -> Vec<SseEvent> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        if !text.contains(&format!("{block}\n\n")) {
            continue;
        }
        let mut id = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if id.is_some() || !data.is_empty() {
            out.push(SseEvent { id, data });
        }
    }
    out
}

fn request(
    addr: SocketAddr,
    method: &str,
    session: Option<&str>,
    body: &str,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", VERSION);
    if let Some(session) = session {
        req = req.header("mcp-session-id", session);
    }
    req.body(Full::new(Bytes::from(body.to_owned())))
        .expect("request")
}

/// Opens a session on `addr` and returns its id.
async fn initialize(addr: SocketAddr) -> String {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;
    let res = http1(addr, request(addr, "POST", None, init)).await;
    assert_eq!(res.status(), 200);
    let session = res.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let _ = tokio::time::timeout(BOUND, res.into_body().collect())
        .await
        .expect("initialize answered");
    let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let res = http1(addr, request(addr, "POST", Some(&session), done)).await;
    assert_eq!(res.status(), 202);
    session
}

/// Starts `count` to `n` in `session`; the response's body is the call's stream.
async fn call(addr: SocketAddr, session: &str, id: u64, n: u64) -> Response<Incoming> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"count","arguments":{{"n":{n}}},"_meta":{{"progressToken":"t{id}"}}}}}}"#
    );
    let res = http1(addr, request(addr, "POST", Some(session), &body)).await;
    assert_eq!(res.status(), 200);
    res
}

/// `GET` with `Last-Event-ID`: a resume.
async fn resume(addr: SocketAddr, session: &str, last: &str) -> Response<Incoming> {
    let req = Request::get("/mcp")
        .header("host", addr.to_string())
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", VERSION)
        .header("mcp-session-id", session)
        .header("last-event-id", last)
        .body(Full::new(Bytes::new()))
        .expect("request");
    http1(addr, req).await
}

/// Reads `body` until `until` holds on its complete events, or it ends, within [`BOUND`].
async fn read(body: &mut Incoming, until: impl Fn(&[SseEvent]) -> bool) -> Vec<SseEvent> {
    read_ending(body, until).await.0
}

/// [`read`], and whether the body ended (rather than `until` holding or the bound passing).
async fn read_ending(
    body: &mut Incoming,
    until: impl Fn(&[SseEvent]) -> bool,
) -> (Vec<SseEvent>, bool) {
    let mut text = String::new();
    let ended = tokio::time::timeout(BOUND, async {
        while !until(&events(&text)) {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        text.push_str(&String::from_utf8_lossy(data));
                    }
                }
                _ => return true,
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    (events(&text), ended)
}

/// Whether `body` ends within [`BOUND`] having carried no event: what a refused resume gets.
async fn ends_empty(body: &mut Incoming) -> bool {
    let (seen, ended) = read_ending(body, |_| false).await;
    ended && seen.is_empty()
}

fn progress_count(events: &[SseEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.data.contains("notifications/progress"))
        .count()
}

fn has_result(events: &[SseEvent]) -> bool {
    events.iter().any(|e| e.data.contains("\"result\""))
}

/// What a client assembled from all its connections: each step once, in order, and the result.
/// Returns (lost, repeated).
fn tally(seen: &[SseEvent], id: u64, n: u64) -> (u64, u64) {
    let mut steps = Vec::new();
    let mut results: u64 = 0;
    for e in seen.iter().filter(|e| !e.data.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(&e.data).expect("JSON message");
        if let Some(p) = v["params"]["progress"].as_f64() {
            steps.push(p as u64);
        } else if v["id"] == id {
            assert_eq!(v["result"]["content"][0]["text"], format!("counted to {n}"));
            results += 1;
        }
    }
    let expected: Vec<u64> = (1..=n).collect();
    let mut unique = steps.clone();
    unique.dedup();
    assert!(
        unique.windows(2).all(|w| w[0] < w[1]),
        "out of order: {steps:?}"
    );
    let lost =
        expected.iter().filter(|s| !steps.contains(s)).count() as u64 + u64::from(results == 0);
    let repeated = (steps.len() - unique.len()) as u64 + results.saturating_sub(1);
    (lost, repeated)
}

/// Cuts a call after `cut_at` progress events, resumes it on `to`, and returns what the client
/// assembled.
async fn cut_and_resume(
    from: SocketAddr,
    to: SocketAddr,
    session: &str,
    id: u64,
    n: u64,
    cut_at: usize,
) -> Vec<SseEvent> {
    let mut res = call(from, session, id, n).await;
    let mut seen = read(res.body_mut(), |e| progress_count(e) >= cut_at).await;
    assert_eq!(
        progress_count(&seen),
        cut_at,
        "the stream ran before the cut"
    );
    drop(res);
    let last = seen
        .last()
        .and_then(|e| e.id.clone())
        .expect("events have ids");
    let mut res = resume(to, session, &last).await;
    assert_eq!(res.status(), 200);
    seen.extend(read(res.body_mut(), has_result).await);
    seen
}

fn servers(redis: &RedisServer) -> (Example, Example) {
    let args = ["--redis", &redis.url(), "--delay-ms", "20"];
    (
        Example::start_with(BIN, &args),
        Example::start_with(BIN, &args),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_stream_resumes_on_the_same_server_on_another_and_after_a_crash() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut a, b) = servers(&redis);
    let session = initialize(a.addr()).await;
    let (mut lost, mut repeated) = (0, 0);

    // Same server.
    let seen = cut_and_resume(a.addr(), a.addr(), &session, 2, 30, 5).await;
    let (l, r) = tally(&seen, 2, 30);
    (lost, repeated) = (lost + l, repeated + r);
    // Started on A, resumed on B.
    let seen = cut_and_resume(a.addr(), b.addr(), &session, 3, 30, 7).await;
    let (l, r) = tally(&seen, 3, 30);
    (lost, repeated) = (lost + l, repeated + r);

    // A dies during a call: B replays what A stored, and the client finishes on B.
    let mut res = call(a.addr(), &session, 4, 200).await;
    let mut seen = read(res.body_mut(), |e| progress_count(e) >= 10).await;
    drop(res);
    a.signal("KILL");
    assert!(a.wait_exit(BOUND).is_some(), "A exits");
    let last = seen.last().and_then(|e| e.id.clone()).expect("ids");
    let stream = last.split_once('/').expect("stream/cursor").0.to_owned();
    // What Redis holds of the stream: every event A stored before it died.
    let stored: usize = redis
        .cli(&["XLEN", &format!("push:mcp:s:{stream}")])
        .trim()
        .parse()
        .expect("XLEN");
    let mut res = resume(b.addr(), &session, &last).await;
    assert_eq!(
        res.status(),
        200,
        "B accepts A's session from the session store"
    );
    // The priming event and progress events: all stored ones, then nothing more will come.
    seen.extend(read(res.body_mut(), |e| progress_count(e) + 1 >= stored).await);
    drop(res);
    assert_eq!(
        progress_count(&seen) + 1,
        stored,
        "B replayed every event A stored"
    );
    let steps = progress_count(&seen) as u64;
    let (l, r) = tally(&seen, 4, steps);
    // No result yet: the call died with A. It is the one "lost" item of this tally.
    assert_eq!((l, r), (1, 0), "every stored step once, in order");
    let mut res = call(b.addr(), &session, 5, 10).await;
    let seen = read(res.body_mut(), has_result).await;
    let (l, r) = tally(&seen, 5, 10);
    (lost, repeated) = (lost + l, repeated + r);
    eprintln!("mcp cuts: lost {lost}, repeated {repeated}");
    assert_eq!((lost, repeated), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_sessions_id_replays_nothing_and_delete_removes_the_session() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = servers(&redis);
    let mine = initialize(a.addr()).await;
    let other = initialize(a.addr()).await;
    let mut res = call(a.addr(), &mine, 2, 3).await;
    let seen = read(res.body_mut(), has_result).await;
    let first = seen[0].id.clone().expect("the priming event has an id");
    assert!(seen[0].data.is_empty(), "the priming event has empty data");
    // Another session's GET with this session's id, on either server: an empty stream.
    for addr in [a.addr(), b.addr()] {
        let mut res = resume(addr, &other, &first).await;
        assert_eq!(res.status(), 200);
        assert!(ends_empty(res.body_mut()).await);
    }
    // Garbage ids: an empty stream too, never a crash.
    for garbage in ["", "x", "x/1-1", "../..", &format!("{first}0")] {
        let mut res = resume(a.addr(), &mine, garbage).await;
        assert!(ends_empty(res.body_mut()).await, "{garbage:?}");
    }
    // Its own id replays it, again and again (completed: the rest, then the end).
    let mut res = resume(b.addr(), &mine, &first).await;
    let (replayed, ended) = read_ending(res.body_mut(), |_| false).await;
    assert_eq!(progress_count(&replayed), 3);
    assert!(ended, "a completed stream's replay ends");

    let stream = first.split_once('/').expect("stream/cursor").0.to_owned();
    let key = format!("push:mcp:s:{stream}");
    assert_eq!(redis.cli(&["EXISTS", &key]).trim(), "1");
    let res = http1(b.addr(), request(b.addr(), "DELETE", Some(&mine), "")).await;
    assert!(
        res.status().is_success(),
        "DELETE answered {}",
        res.status()
    );
    // push-redis leaves one `end deleted` entry in a deleted topic's stream, so that every
    // server's reader learns of the delete; no event is left.
    for key in [
        key,
        format!("push:mcp:st:{mine}"),
        format!("push:mcp:i:{mine}"),
    ] {
        let entries = redis.cli(&["XRANGE", &key, "-", "+"]);
        assert_eq!(redis.cli(&["XLEN", &key]).trim(), "1", "{key}: {entries}");
        assert!(entries.contains("deleted"), "{key}: {entries}");
    }
    let res = resume(b.addr(), &mine, &first).await;
    assert_eq!(res.status(), 404, "a deleted session answers 404");
    // rmcp keeps a session in the memory of each process that served it, and a DELETE closes
    // it only where it lands: A still knows the session (until rmcp's keep-alive closes it),
    // but its streams are gone, so A replays nothing.
    let mut res = resume(a.addr(), &mine, &first).await;
    assert!(ends_empty(res.body_mut()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_sessions_stay_bounded() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, _b) = servers(&redis);
    let addr = a.addr();
    let started = Instant::now();
    let rss_before = a.rss_kib();
    let mut tasks = Vec::new();
    for i in 0..1_000u64 {
        tasks.push(tokio::spawn(async move {
            let session = initialize(addr).await;
            let mut res = call(addr, &session, 2 + i % 3, 5).await;
            let seen = read(res.body_mut(), has_result).await;
            tally(&seen, 2 + i % 3, 5)
        }));
    }
    let (mut lost, mut repeated) = (0, 0);
    for task in tasks {
        let (l, r) = task.await.expect("a session's task");
        lost += l;
        repeated += r;
    }
    let elapsed = started.elapsed();
    let rss = a.rss_kib();
    let clients = redis.cli(&["CLIENT", "LIST"]).lines().count();
    eprintln!(
        "1,000 sessions: {elapsed:?}, RSS {rss_before} -> {rss} KiB, Redis clients {clients}, lost {lost}, repeated {repeated}"
    );
    assert_eq!((lost, repeated), (0, 0));
    assert!(clients <= 20, "{clients} Redis connections for two servers");
}
