//! push-http's browser client (`push-client.js`) in headless Chromium, for every technique it
//! speaks (WebSocket, SSE, HTTP streaming, long polling, polling): the exact sequence across
//! server-side drops and a page reload (cursors in `sessionStorage`), a finished topic; the
//! fallback from a refused WebSocket to SSE carrying the cursor; gaps and resets handed to the
//! application. The page reads the client from `push_http::browser::CLIENT_JS`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Retention, Topic};
use push_tests::{boxed, text, DevTools, TestServer};
use serde_json::Value;

/// Generous: Chromium's first start on a cold machine can take a while.
const BOUND: Duration = Duration::from_secs(90);

const TECHNIQUES: [&str; 5] = ["ws", "sse", "stream", "longpoll", "poll"];

/// The test page: `start(name, topics, options)` follows with the client and records what the
/// application is handed in `runs[name]`; `?auto=[[name, topics, options], …]` starts runs at
/// load, with `sessionStorage` (so a reload resumes them).
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>push-client test</title>
<script type="module">
import { follow } from "/client.js";
window.runs = {};
window.start = (name, topics, options = {}) => {
  const run = { got: [], outcomes: [], completes: [], errors: [] };
  run.sub = follow(topics, {
    ...options,
    onevent: (e) => run.got.push(e.kind === "json" ? JSON.stringify(e.data) : e.data),
    onoutcome: (o) => run.outcomes.push(o),
    oncomplete: (t) => run.completes.push(t),
    onerror: (e) => run.errors.push(e),
  });
  window.runs[name] = run;
  return true;
};
window.view = (name) => {
  const r = window.runs[name];
  if (!r) return null;
  const s = r.sub;
  return { got: r.got, outcomes: r.outcomes, completes: r.completes, errors: r.errors,
           state: s.state, transport: s.transport, stats: s.stats, cursors: s.cursors };
};
const auto = new URLSearchParams(location.search).get("auto");
if (auto) {
  for (const [name, topics, options] of JSON.parse(auto)) {
    window.start(name, topics, { ...options, storage: sessionStorage });
  }
}
window.ready = true;
</script>
"#;

/// Every technique's several-topics route, `/ws` refusing upgrades while `refuse_ws` is set.
struct Server {
    server: TestServer,
    ws: push_ws::Ws,
    refuse_ws: Arc<AtomicBool>,
}

async fn server(hub: &Hub) -> Server {
    let sse = push_sse::Sse::with_config(
        hub.clone(),
        push_sse::SseConfig::default().retry(Some(Duration::from_millis(200))),
    );
    let stream = push_stream::Streamer::new(hub.clone());
    let poll = push_poll::Poller::new(hub.clone());
    let longpoll = push_longpoll::LongPoll::new(hub.clone());
    let ws = push_ws::Ws::new(hub.clone());
    let refuse_ws = Arc::new(AtomicBool::new(false));
    let (ws2, refuse) = (ws.clone(), refuse_ws.clone());
    let server = TestServer::start(move |req| {
        let (sse, stream, poll, longpoll, ws) = (
            sse.clone(),
            stream.clone(),
            poll.clone(),
            longpoll.clone(),
            ws2.clone(),
        );
        let refuse = refuse.load(Ordering::SeqCst);
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if path == "/client.js" {
                return push_http::browser::client_js_response().map(boxed);
            }
            if path == "/ws" {
                if refuse {
                    let mut res = http::Response::new(text("no WebSocket here\n"));
                    *res.status_mut() = http::StatusCode::FORBIDDEN;
                    return res;
                }
                return ws.respond_topics(&[], req).await.map(boxed);
            }
            let technique = path.trim_start_matches('/');
            if !["sse", "stream", "poll", "longpoll"].contains(&technique) {
                let mut res = http::Response::new(text(PAGE));
                res.headers_mut()
                    .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
                return res;
            }
            let topics = match push_http::topics::query_topics(req.uri(), "topic", 16) {
                Ok(topics) => topics,
                Err(reason) => {
                    let mut res = http::Response::new(text(reason));
                    *res.status_mut() = http::StatusCode::BAD_REQUEST;
                    return res;
                }
            };
            match technique {
                "sse" => sse.respond_topics(&topics, req).await.map(boxed),
                "stream" => stream.respond_topics(&topics, req).await.map(boxed),
                "poll" => poll.respond_topics(&topics, req).await.map(boxed),
                _ => longpoll.respond_topics(&topics, req).await.map(boxed),
            }
        })
    })
    .await;
    Server {
        server,
        ws,
        refuse_ws,
    }
}

impl Server {
    /// Cuts every connection: HTTP ones at once, WebSockets with 1012 (their tasks outlive the
    /// connection's).
    fn drop_all(&self) {
        self.server.drop_connections();
        self.ws.restart_all();
    }
}

async fn publish(hub: &Hub, topic: &Topic, n: usize) -> String {
    hub.publish(topic, NewEvent::json(format!("{{\"n\":{n}}}")).unwrap())
        .await
        .unwrap()
        .id()
        .to_string()
}

fn sequence(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|n| format!("{{\"n\":{n}}}")).collect()
}

/// Waits until `condition` holds of run `name`'s view, or panics with it.
async fn wait_for(
    page: &mut DevTools,
    name: &str,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let view = page.eval(&format!("window.view({name:?})")).await;
        if condition(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: {what}; it has {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn got(view: &Value) -> Vec<String> {
    view["got"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn open_page(url: &str) -> Option<DevTools> {
    let mut page = DevTools::open(url).await?;
    let deadline = tokio::time::Instant::now() + BOUND;
    while page.eval("window.ready === true").await != true {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_technique_delivers_the_exact_sequence_across_drops_a_reload_and_the_end() {
    let hub = Hub::memory();
    let s = server(&hub).await;
    let topic = Topic::new("seq").unwrap();
    // Every run starts after event 0, so none can miss the first events by starting late.
    let start = publish(&hub, &topic, 0).await;
    let runs: Vec<Value> = TECHNIQUES
        .iter()
        .map(|t| {
            serde_json::json!([t, ["seq"], {
                "transports": [t], "storageKey": format!("push:{t}"),
                "cursors": {"seq": start}, "pollInterval": 0.3,
                "backoff": {"initial": 100, "max": 1000},
            }])
        })
        .collect();
    let auto = serde_json::to_string(&runs).unwrap();
    let url = s.server.url(&format!(
        "/?auto={}",
        form_urlencoded::byte_serialize(auto.as_bytes()).collect::<String>()
    ));
    let Some(mut page) = open_page(&url).await else {
        return;
    };
    for n in 1..=20 {
        publish(&hub, &topic, n).await;
        if n == 7 || n == 14 {
            // Cut once every run has what was published so far, so the drop lands mid-sequence.
            for t in TECHNIQUES {
                wait_for(&mut page, t, &format!("{n} events"), |v| got(v).len() >= n).await;
            }
            s.drop_all();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in TECHNIQUES {
        let view = wait_for(&mut page, t, "20 events", |v| got(v).len() >= 20).await;
        assert_eq!(got(&view), sequence(1..=20), "{t}: {view}");
        assert_eq!(view["transport"], t, "{view}");
        // The long-lived ones were cut; a poll between requests may not notice the drop.
        if ["ws", "sse", "stream"].contains(&t) {
            let reconnects = view["stats"]["reconnects"].as_u64().unwrap();
            assert!(reconnects >= 2, "{t} reconnected after each drop: {view}");
        }
    }

    // A reload: the runs start again from the cursors kept in sessionStorage, and get what was
    // published while the page was away, exactly once.
    // The page stops following first, so that what is published before the reload certainly
    // reaches only the new page.
    page.eval("Object.values(window.runs).forEach((r) => r.sub.close())")
        .await;
    for n in 21..=25 {
        publish(&hub, &topic, n).await;
    }
    page.eval("location.reload()").await;
    let deadline = tokio::time::Instant::now() + BOUND;
    while page
        .eval("window.ready === true && Object.keys(window.runs).length === 5")
        .await
        != true
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 26..=30 {
        publish(&hub, &topic, n).await;
    }
    hub.complete(&topic).await.unwrap();
    for t in TECHNIQUES {
        let view = wait_for(&mut page, t, "the rest and the end", |v| {
            v["state"] == "complete"
        })
        .await;
        assert_eq!(
            got(&view),
            sequence(21..=30),
            "{t} after the reload: {view}"
        );
        assert_eq!(view["completes"], serde_json::json!(["seq"]), "{view}");
        assert_eq!(view["stats"]["duplicates"], 0, "{view}");
        assert_eq!(view["stats"]["gaps"], 0, "{view}");
        assert_eq!(view["stats"]["resets"], 0, "{view}");
        let outcomes = view["outcomes"].as_array().unwrap();
        assert!(
            outcomes.iter().all(|o| o["outcome"] == "resumed"),
            "{t}: only resumes: {view}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_websocket_falls_back_to_sse_with_the_same_cursor() {
    let hub = Hub::memory();
    let s = server(&hub).await;
    let topic = Topic::new("fb").unwrap();
    let start = publish(&hub, &topic, 0).await;
    let Some(mut page) = open_page(&s.server.url("/")).await else {
        return;
    };
    page.eval(&format!(
        "window.start('fb', ['fb'], {{ transports: ['ws', 'sse', 'longpoll'], cursors: {{ fb: {start:?} }}, backoff: {{ initial: 100, max: 1000 }} }})"
    ))
    .await;
    wait_for(&mut page, "fb", "an open WebSocket", |v| {
        v["state"] == "open"
    })
    .await;
    for n in 1..=5 {
        publish(&hub, &topic, n).await;
    }
    wait_for(&mut page, "fb", "5 events", |v| got(v).len() >= 5).await;
    // From now on the upgrade is refused (a proxy that blocks WebSocket): after two refused
    // attempts the client moves to SSE, from the cursor it had.
    s.refuse_ws.store(true, Ordering::SeqCst);
    s.drop_all();
    for n in 6..=8 {
        publish(&hub, &topic, n).await;
    }
    wait_for(
        &mut page,
        "fb",
        "SSE with the events published meanwhile",
        |v| v["transport"] == "sse" && got(v).len() >= 8,
    )
    .await;
    // And those published while it is on SSE.
    for n in 9..=10 {
        publish(&hub, &topic, n).await;
    }
    let view = wait_for(&mut page, "fb", "ten events", |v| got(v).len() >= 10).await;
    assert_eq!(got(&view), sequence(1..=10), "{view}");
    assert_eq!(view["stats"]["fallbacks"], 1, "{view}");
    assert_eq!(view["stats"]["duplicates"], 0, "{view}");
    assert!(
        view["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["transport"] == "ws"),
        "the fallback was reported: {view}"
    );

    // A client that never gets a WebSocket starts on SSE the same way.
    page.eval(&format!(
        "window.start('fresh', ['fb'], {{ cursors: {{ fb: {start:?} }}, backoff: {{ initial: 100, max: 1000 }} }})"
    ))
    .await;
    let view = wait_for(&mut page, "fresh", "the ten events over SSE", |v| {
        got(v).len() >= 10
    })
    .await;
    assert_eq!(got(&view), sequence(1..=10), "{view}");
    assert_eq!(view["transport"], "sse", "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_and_resets_reach_the_application_on_every_technique() {
    // Ten events retained per topic: a cursor older than that resumes with an exact gap.
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(10)),
    ));
    let s = server(&hub).await;
    let topic = Topic::new("g").unwrap();
    let first = publish(&hub, &topic, 1).await;
    for n in 2..=50 {
        publish(&hub, &topic, n).await;
    }
    let Some(mut page) = open_page(&s.server.url("/")).await else {
        return;
    };
    // A cursor of another epoch (the topic was deleted and made again, say): a reset.
    let stranger = "0123abcd-7";
    for t in TECHNIQUES {
        // One technique at a time: ten streams and held requests at once would queue behind
        // the browser's six connections per origin.
        page.eval(&format!(
            "window.start('gap-{t}', ['g'], {{ transports: [{t:?}], cursors: {{ g: {first:?} }} }});
             window.start('reset-{t}', ['g'], {{ transports: [{t:?}], cursors: {{ g: {stranger:?} }} }})"
        ))
        .await;
        // Events 2..=40 are gone: the gap says 39, then 41..=50 follow.
        let view = wait_for(&mut page, &format!("gap-{t}"), "the retained ten", |v| {
            got(v).len() >= 10
        })
        .await;
        assert_eq!(got(&view), sequence(41..=50), "{t}: {view}");
        let outcome = &view["outcomes"][0];
        assert_eq!(outcome["outcome"], "gap", "{t}: {view}");
        assert_eq!(outcome["missed"], 39, "{t}: {view}");
        assert_eq!(view["stats"]["missed"], 39, "{t}: {view}");

        // The reset comes first; the server then starts the run at the oldest event it has.
        let view = wait_for(
            &mut page,
            &format!("reset-{t}"),
            "a reset and the retained ten",
            |v| got(v).len() >= 10,
        )
        .await;
        assert_eq!(view["outcomes"][0]["outcome"], "reset", "{t}: {view}");
        assert_eq!(view["stats"]["resets"], 1, "{t}: {view}");
        assert_eq!(got(&view), sequence(41..=50), "{t}: {view}");
        assert_eq!(view["stats"]["duplicates"], 0, "{t}: {view}");
        page.eval(&format!(
            "window.runs['gap-{t}'].sub.close(); window.runs['reset-{t}'].sub.close()"
        ))
        .await;
    }
}
