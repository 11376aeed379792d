//! push-h2 with the h2 crate as client: PUSH_PROMISEs and their bodies, 103 before the final
//! response, the `Link` fallback with push disabled, event push without loss and with resume,
//! and GOAWAY on shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Retention, Topic};
use push_h2::client::Client;
use push_h2::{Builder, Events, H2Body, H2Config, Push, PushPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

const BOUND: Duration = Duration::from_secs(20);

type Body = BoxBody<Bytes, std::convert::Infallible>;

struct Server {
    addr: SocketAddr,
    builder: Builder,
    shutdown: watch::Sender<bool>,
    done: tokio::sync::mpsc::UnboundedReceiver<()>,
}

fn file(body: &'static str) -> Response<Body> {
    Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed())
}

async fn server(hub: &Hub) -> Server {
    server_with(hub, H2Config::default()).await
}

async fn server_with(hub: &Hub, config: H2Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (done_tx, done) = tokio::sync::mpsc::unbounded_channel();
    let events = Events::new(hub.clone());
    let sse = push_sse::Sse::new(hub.clone());
    let policy = PushPolicy::new().push("/index.html", &["/styles.css", "/app.js"]);
    let builder = Builder::new().config(config).push_policy(policy);
    let h2 = builder.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (events, sse) = (events.clone(), sse.clone());
            let service = move |req: Request<H2Body>| {
                let (events, sse) = (events.clone(), sse.clone());
                async move {
                    match req.uri().path() {
                        // Another technique's handler, unchanged, over this driver.
                        "/sse/t" => sse
                            .respond(&Topic::new("t").unwrap(), req)
                            .await
                            .map(BodyExt::boxed_unsync),
                        "/index.html" => file("<html>page</html>").map(BodyExt::boxed_unsync),
                        "/styles.css" => file("h1 {}").map(BodyExt::boxed_unsync),
                        "/app.js" => file("run()").map(BodyExt::boxed_unsync),
                        "/named" => {
                            let mut res = file("named page");
                            res.extensions_mut().insert(Push(vec!["/app.js".into()]));
                            res.map(BodyExt::boxed_unsync)
                        }
                        path => {
                            let topic = Topic::new(path.trim_start_matches("/h2/")).unwrap();
                            events.respond(&topic, req).await.map(BodyExt::boxed_unsync)
                        }
                    }
                }
            };
            let conn = h2.serve_connection(stream, service);
            let mut shutdown_rx = shutdown_rx.clone();
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = async { let _ = shutdown_rx.wait_for(|s| *s).await; } => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                let _ = done_tx.send(());
            });
        }
    });
    Server {
        addr,
        builder,
        shutdown,
        done,
    }
}

#[tokio::test]
async fn pushes_promised_assets_after_103_and_falls_back_to_link_without_push() {
    let hub = Hub::memory();
    let server = server(&hub).await;
    let mut client = Client::connect(server.addr, true).await.unwrap();
    let (hints, main, pushed) = tokio::time::timeout(BOUND, client.get("/index.html"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hints.len(), 1, "one 103 before the final response");
    assert_eq!(hints[0].status(), StatusCode::EARLY_HINTS);
    let link = hints[0].headers()["link"].to_str().unwrap();
    assert!(
        link.contains("</styles.css>; rel=preload; as=style"),
        "{link}"
    );
    assert!(link.contains("</app.js>; rel=preload; as=script"), "{link}");
    assert_eq!(main.status, StatusCode::OK);
    assert_eq!(main.body, "<html>page</html>");
    assert!(main.headers.get("link").is_none(), "pushed, so no fallback");
    let mut got: Vec<(String, Bytes)> = pushed.into_iter().map(|p| (p.path, p.body)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("/app.js".to_owned(), Bytes::from("run()")),
            ("/styles.css".to_owned(), Bytes::from("h1 {}"))
        ]
    );
    assert_eq!(server.builder.stats().promised, 2);

    // A handler names a push with its response.
    let (_, main, pushed) = client.get("/named").await.unwrap();
    assert_eq!(main.body, "named page");
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].path, "/app.js");

    // Push disabled: the page still arrives, with Link preload headers instead.
    let mut no_push = Client::connect(server.addr, false).await.unwrap();
    let (hints, main, pushed) = no_push.get("/index.html").await.unwrap();
    assert_eq!(hints.len(), 1);
    assert!(pushed.is_empty());
    assert_eq!(main.body, "<html>page</html>");
    let link = main.headers["link"].to_str().unwrap();
    assert!(
        link.contains("</styles.css>") && link.contains("</app.js>"),
        "{link}"
    );
    assert_eq!(server.builder.stats().refused, 2);
}

#[tokio::test]
async fn the_push_budget_is_counted_per_connection() {
    let hub = Hub::memory();
    let mut config = H2Config::default();
    // Less than one page's assets (11 bytes): the first page spends it.
    config.max_pushed_bytes = 5;
    let server = server_with(&hub, config).await;
    let mut first = Client::connect(server.addr, true).await.unwrap();
    let (_, _, pushed) = first.get("/index.html").await.unwrap();
    assert_eq!(pushed.len(), 2, "the budget is checked before each promise");
    // Spent on this connection: the next page falls back to Link preload headers.
    let (_, main, pushed) = first.get("/index.html").await.unwrap();
    assert!(pushed.is_empty());
    assert!(main.headers.get("link").is_some());
    // Another connection has its own budget.
    let mut second = Client::connect(server.addr, true).await.unwrap();
    let (_, _, pushed) = second.get("/index.html").await.unwrap();
    assert_eq!(
        pushed.len(),
        2,
        "one connection's pushes must not spend another's budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_as_pushed_responses_without_loss_and_resume_from_a_cursor() {
    let hub = Hub::memory();
    let server = server(&hub).await;
    let t = Topic::new("t").unwrap();
    let mut client = Client::connect(server.addr, true).await.unwrap();
    let mut sub = client.subscribe("/h2/t").await.unwrap();
    assert_eq!(sub.head.status(), StatusCode::OK);
    let outcome = sub.next_line().await.unwrap().unwrap();
    assert!(outcome.starts_with(b"{\"outcome\":\"resumed\""));
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            hub.publish(&t, NewEvent::new(format!("e{i}")))
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let event = tokio::time::timeout(BOUND, sub.next_event())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.data, format!("e{i}"));
        assert_eq!(&event.id, id);
        assert_eq!(event.path, format!("/h2/t/{id}"));
    }
    // Resume after the 40th on a new connection: exactly the last 10.
    let mut again = Client::connect(server.addr, true).await.unwrap();
    let mut sub = again
        .subscribe(&format!("/h2/t?since={}", ids[39]))
        .await
        .unwrap();
    assert!(sub
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .starts_with(b"{\"outcome\":\"resumed\""));
    for i in 40..50 {
        let event = tokio::time::timeout(BOUND, sub.next_event())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.data, format!("e{i}"));
    }
}

#[tokio::test]
async fn without_push_events_come_on_the_body_and_gaps_are_told() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(3)),
    ));
    let server = server(&hub).await;
    let t = Topic::new("t").unwrap();
    let first = hub.publish(&t, NewEvent::new("0")).await.unwrap();
    for i in 1..6 {
        hub.publish(&t, NewEvent::new(i.to_string())).await.unwrap();
    }
    let mut client = Client::connect(server.addr, false).await.unwrap();
    let mut sub = client
        .subscribe(&format!("/h2/t?since={}", first.id()))
        .await
        .unwrap();
    let outcome: serde_json::Value =
        serde_json::from_slice(&sub.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(outcome["outcome"], "gap");
    assert_eq!(outcome["missed"], 2);
    for want in ["3", "4", "5"] {
        let line = sub.next_line().await.unwrap().unwrap();
        let event = push_http::json::ReceivedEvent::parse(&line).unwrap();
        assert_eq!(event.data, want);
    }
    // Graceful shutdown: the hub closes (the body ends) and GOAWAY ends the connection.
    hub.close();
    let end = sub.next_line().await.unwrap().unwrap();
    assert!(end.starts_with(b"{\"end\":\"shutdown\""));
    let mut server = server;
    server.shutdown.send_replace(true);
    tokio::time::timeout(BOUND, server.done.recv())
        .await
        .expect("the connection ended after GOAWAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_costs_a_bounded_amount() {
    let hub = Hub::new(MemoryHub::new(
        HubConfig::default().retention(Retention::default().max_events(100)),
    ));
    let server = server(&hub).await;
    let mut client = Client::connect(server.addr, true).await.unwrap();
    // Subscribed, then never reads a pushed stream.
    let _sub = client.subscribe("/h2/t").await.unwrap();
    let t = Topic::new("t").unwrap();
    let payload = "x".repeat(4096);
    for _ in 0..5_000 {
        hub.publish(&t, NewEvent::new(payload.clone()))
            .await
            .unwrap();
    }
    // Wait until pushing started, rather than for a fixed time.
    let promised = || server.builder.stats().promised;
    let pushed = || server.builder.stats().pushed_bytes;
    let deadline = tokio::time::Instant::now() + BOUND;
    while promised() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was promised"
        );
        // Polling, not spinning: a spin would take a core from the server on a loaded machine.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The server is fine: another client gets its page.
    let mut other = Client::connect(server.addr, true).await.unwrap();
    let (_, main, _) = tokio::time::timeout(BOUND, other.get("/index.html"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(main.body, "<html>page</html>");
    // Of the 20 MiB published, what left for the client that reads nothing is bounded by its
    // windows and the promised streams in flight, not buffered.
    assert!(
        pushed() < 1024 * 1024,
        "{} bytes pushed to a client that reads nothing",
        pushed()
    );
}

#[tokio::test]
async fn another_techniques_handler_runs_over_the_driver() {
    let hub = Hub::memory();
    let server = server(&hub).await;
    let mut client = Client::connect(server.addr, true).await.unwrap();
    let mut sub = client.subscribe("/sse/t").await.unwrap();
    assert_eq!(
        sub.head.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    hub.publish(&Topic::new("t").unwrap(), NewEvent::new("over h2"))
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("data: over h2") {
        let line = tokio::time::timeout(BOUND, sub.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("stream open");
        text += std::str::from_utf8(&line).unwrap();
        text.push('\n');
    }
}
