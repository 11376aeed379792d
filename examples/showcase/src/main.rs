//! The showcase: one server, all six push techniques side by side on one topic.
//!
//! One port speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c, served by push-h2's driver so
//! that server push works); the first bytes of a connection tell which.
//!
//! | route | what |
//! |---|---|
//! | `POST /topics/{topic}[?event=TYPE]` | publish the body as one event (`Content-Type: application/json`: a JSON event); answers `{"id":CURSOR}`; `409` once the topic is complete |
//! | `POST /topics/{topic}/complete` | finish the topic: readers get the rest, then the end; answers `{"end":CURSOR}` |
//! | `DELETE /topics/{topic}` | delete the topic: its readers end, and its name starts over; answers `{"deleted":BOOL}` |
//! | `GET /poll/{topic}?since=C` | short polling (push-poll) |
//! | `GET /longpoll/{topic}?since=C` | long polling (push-longpoll) |
//! | `GET /sse/{topic}` | Server-Sent Events (push-sse) |
//! | `GET /sse?topic=a&topic=b` (also `/stream`, `/poll`, `/longpoll`) | several topics in one request, one combined cursor (at most 16 topics) |
//! | `GET /ws/{topic}` | WebSocket (push-ws, HTTP/1.1) |
//! | `GET /ws[?topic=a&topic=b]` | WebSocket with the URL's topics, or none: the client subscribes by message |
//! | `GET /stream/{topic}?since=C` | NDJSON streaming (push-stream) |
//! | `GET /h2/{topic}?since=C` | events as pushed responses (push-h2, HTTP/2) |
//! | `GET /` | the page; over HTTP/2 its assets are pushed after `103 Early Hints` |
//! | `GET /client.js` | the browser client, push-http's `push-client.js`, which the page uses |
//! | `GET /limits?n=N` | a page opening N (at most 12) event streams at once, to see a browser's per-origin connection limit; `GET /limits/hold` is one such stream, whose first event names the connection it came on |
//! | `GET /info.json` | what the page needs to know of the server: `{"tls":BOOL}` |
//! | `GET /metrics` | counters in the Prometheus text format |
//! | `POST /admin/drop` | closes every connection (streams resume from their cursors) |
//! | `POST /admin/ticker?rate=N` | the built-in publisher's events per second (0 stops it) |
//! | `POST /admin/answer` | streams a generated answer word by word to a new topic, then completes it; answers `{"topic":T,"from":C}` (at most 16 at once, then `503`) |
//!
//! A built-in publisher sends a small event to the topic `demo` every second (`--no-ticker`
//! turns it off). SIGTERM or Ctrl-C drains gracefully (at most 5 s). With `--tls` the port also
//! speaks TLS (told apart by the first byte) with a self-signed certificate generated at start,
//! and ALPN picks HTTP/2 (`h2`, push-h2's driver) or HTTP/1.1, which is how a browser gets
//! HTTP/2: `https://` and `http://` on the same port, so that the page can show both side by
//! side.
//!
//! With `--jwt-secret SECRET` every technique and publishing take HS256 JSON Web Tokens
//! (push-http's `jwt` feature), from `Authorization: Bearer` or `?access_token=`: the token's
//! `push` claim says which topics it may subscribe and publish to (`showcase token` prints one),
//! and connections end when it expires. Open the page as `/?access_token=TOKEN`.
//!
//! With `--redis redis://127.0.0.1:6379` topics live in Redis Streams (push-redis) instead of
//! this process's memory, so several showcase processes on one Redis share them: publish on
//! one, subscribe or resume with a cursor on another. `/metrics` then shows the Redis
//! readers' health too. `--redis` given twice or more names seeds of a Redis Cluster
//! (push-redis's `cluster` feature); `--redis-wait-replicas 1` acknowledges a publish once a
//! replica holds it, so that a failover loses nothing a client was told.
//!
//! The crates log their decisions (their `tracing` features): refusals, streams and WebSockets
//! ended and why, gaps and resets told, a Redis outage and its end, as lines on stderr filtered
//! by `RUST_LOG` (`info` when unset; `RUST_LOG=push_ws=debug` adds clients that went away).
//! `--ws-slow-timeout SECONDS` closes a WebSocket client that keeps a write waiting that long.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper_util::rt::TokioIo;
use push_core::{Hub, HubConfig, MemoryHub, NewEvent, Topic};
use push_h2::{Events, H2Config, PushPolicy};
use push_http::jwt::Jwt;
use push_http::Authorizer;
use push_longpoll::LongPoll;
use push_poll::Poller;
use push_redis::{RedisConfig, RedisHub};
use push_sse::Sse;
use push_stream::Streamer;
use push_ws::Ws;
use server_kit::{Conn, Ctx, Protocol, ServerArgs, StopToken};

type Body = UnsyncBoxBody<Bytes, Infallible>;

const PAGE: &str = include_str!("page.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");
const LIMITS_PAGE: &str = include_str!("limits.html");
/// How long `/limits/hold` holds a stream.
const LIMITS_HOLD: Duration = Duration::from_secs(120);
/// The longest URL (path and query) answered; longer ones get `414`. Several topics and a
/// combined cursor fit in far less.
const MAX_URI: usize = 8 * 1024;

/// The techniques, as the metrics and the page name them.
const TECHNIQUES: [&str; 6] = ["poll", "longpoll", "sse", "ws", "stream", "h2"];

/// Counts a request of `technique` (`push_requests_total`); the crates count the rest.
fn count_request(technique: &'static str) {
    metrics::counter!("push_requests_total", "technique" => technique).increment(1);
}

struct State {
    hub: Hub,
    /// `POST /topics/{t}`; the access checks are the showcase's own (`topics`).
    publisher: push_http::Publisher,
    redis: Option<RedisHub>,
    poller: Poller,
    longpoll: LongPoll,
    sse: Sse,
    streamer: Streamer,
    ws: Ws,
    events: Events,
    /// Renders what the crates and the showcase count, in the Prometheus text format.
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    /// push-h2's driver for every HTTP/2 connection (its stats sum over them).
    h2: push_h2::Builder,
    ticker_rate: AtomicU64,
    /// Answers generated by `/admin/answer`, for their topic names.
    answers: AtomicU64,
    /// Answers being generated at once (at most 16; more get `503`).
    generating: Arc<tokio::sync::Semaphore>,
    /// Cancelled (and replaced) by `/admin/drop`: every connection then ends.
    dropper: Mutex<StopToken>,
    /// `--token`: the bearer token publishing and `/admin/*` require.
    token: Option<String>,
    /// `--jwt-secret`: the JWT authorizer every technique and publishing use.
    authorizer: Option<Authorizer>,
    /// `--tls`: the port speaks TLS too.
    tls: bool,
    /// Numbers the connections, for `/limits/hold`.
    connections: AtomicU64,
}

/// Which connection a request came on (a request extension), for `/limits/hold`.
#[derive(Debug, Clone, Copy)]
struct ConnNumber(u64);

impl State {
    fn drop_token(&self) -> StopToken {
        self.dropper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()).boxed_unsync());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    reply(status, "text/plain; charset=utf-8", body)
}

async fn route<B>(state: Arc<State>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // hyper refuses a head larger than its read buffer (about 400 KiB) with 431 before any
    // service sees it; a URL under that but longer than any route needs is refused here.
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI {
        let reason = format!("the URL is longer than {MAX_URI} bytes\n");
        return text(StatusCode::URI_TOO_LONG, reason);
    }
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/" | "/index.html" => {
            let mut res = reply(StatusCode::OK, "text/html; charset=utf-8", PAGE);
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return res;
        }
        "/app.js" => return reply(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS),
        "/client.js" => return push_http::browser::client_js_response().map(BodyExt::boxed_unsync),
        "/limits" => return reply(StatusCode::OK, "text/html; charset=utf-8", LIMITS_PAGE),
        "/limits/hold" => return hold(&req),
        "/info.json" => {
            return reply(
                StatusCode::OK,
                "application/json",
                format!("{{\"tls\":{}}}\n", state.tls),
            );
        }
        "/style.css" => return reply(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS),
        "/metrics" => return metrics(&state),
        _ if path.starts_with("/admin/") || path.starts_with("/topics/") => {
            if let Some(refusal) = guard(&state, &req) {
                return refusal;
            }
        }
        _ => {}
    }
    match path.as_str() {
        "/admin/drop" if req.method() == Method::POST => {
            drop_connections(&state);
            return text(StatusCode::OK, "dropped\n");
        }
        "/admin/answer" if req.method() == Method::POST => return answer(state.clone()).await,
        "/admin/ticker" if req.method() == Method::POST => {
            let rate = push_http::query_value(req.uri().query().unwrap_or(""), "rate")
                .and_then(|r| r.parse::<u64>().ok());
            return match rate {
                Some(rate) if rate <= 100 => {
                    state.ticker_rate.store(rate, Ordering::Relaxed);
                    text(StatusCode::OK, format!("ticker at {rate}/s\n"))
                }
                _ => text(
                    StatusCode::BAD_REQUEST,
                    "rate: 0 to 100 events per second\n",
                ),
            };
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/topics/") {
        return topics(&state, rest, req).await;
    }
    if let Some(&technique) = MULTI.iter().find(|t| path.strip_prefix('/') == Some(**t)) {
        return several(&state, technique, req).await;
    }
    if path == "/ws" {
        return ws_topics(&state, req).await;
    }
    let Some((kind, name)) = path.trim_start_matches('/').split_once('/') else {
        return not_found();
    };
    let topic = match Topic::new(name) {
        Ok(topic) => topic,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let Some(&technique) = TECHNIQUES.iter().find(|t| **t == kind) else {
        return not_found();
    };
    count_request(technique);
    let res = match technique {
        "poll" => state
            .poller
            .respond(&topic, req)
            .await
            .map(BodyExt::boxed_unsync),
        "longpoll" => state
            .longpoll
            .respond(&topic, req)
            .await
            .map(BodyExt::boxed_unsync),
        "sse" => state
            .sse
            .respond(&topic, req)
            .await
            .map(BodyExt::boxed_unsync),
        "stream" => state
            .streamer
            .respond(&topic, req)
            .await
            .map(BodyExt::boxed_unsync),
        "ws" => state
            .ws
            .respond(&topic, req)
            .await
            .map(BodyExt::boxed_unsync),
        _ => state
            .events
            .respond(&topic, req)
            .await
            .map(BodyExt::boxed_unsync),
    };
    res
}

/// Publishing and `/admin/*` are refused to cross-site requests (a browser's `Origin` or
/// `Sec-Fetch-Site` naming another site: a form on any page could otherwise publish, or drop
/// every client), and with `--token` to requests without `Authorization: Bearer TOKEN`.
fn guard<B>(state: &State, req: &Request<B>) -> Option<Response<Body>> {
    let headers = req.headers();
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let same = match (origin.to_str().ok(), host) {
            (Some(origin), Some(host)) => origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host)),
            _ => false,
        };
        if !same {
            return Some(text(
                StatusCode::FORBIDDEN,
                "cross-site requests may not publish or use /admin\n",
            ));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
    {
        return Some(text(
            StatusCode::FORBIDDEN,
            "cross-site requests may not publish or use /admin\n",
        ));
    }
    // With tokens, a publish is checked against the token's publish claim instead.
    if state.authorizer.is_some() && req.uri().path().starts_with("/topics/") {
        return None;
    }
    let token = state.token.as_deref()?;
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return None;
    }
    let mut res = text(
        StatusCode::UNAUTHORIZED,
        "publishing and /admin need Authorization: Bearer TOKEN\n",
    );
    res.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer"),
    );
    Some(res)
}

/// Compares without an early exit, so that timing does not tell how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn not_found() -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        "routes: POST /topics/{topic}, GET /poll|longpoll|sse|ws|stream|h2/{topic}, GET /, GET /metrics\n",
    )
}

/// The techniques that follow several topics in one request: `GET /sse?topic=a&topic=b`.
const MULTI: [&str; 4] = ["sse", "stream", "poll", "longpoll"];

/// `GET /{technique}?topic=a&topic=b`: one request following several topics, with one combined
/// cursor (`Last-Event-ID` or `lastEventId` for SSE, `since` for the others).
async fn several<B>(state: &State, technique: &'static str, req: Request<B>) -> Response<Body> {
    let max = push_http::topics::MAX_TOPICS;
    let topics = match push_http::topics::query_topics(req.uri(), "topic", max) {
        Ok(topics) => topics,
        Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
    };
    count_request(technique);
    let res = match technique {
        "sse" => state
            .sse
            .respond_topics(&topics, req)
            .await
            .map(BodyExt::boxed_unsync),
        "stream" => state
            .streamer
            .respond_topics(&topics, req)
            .await
            .map(BodyExt::boxed_unsync),
        "poll" => state
            .poller
            .respond_topics(&topics, req)
            .await
            .map(BodyExt::boxed_unsync),
        _ => state
            .longpoll
            .respond_topics(&topics, req)
            .await
            .map(BodyExt::boxed_unsync),
    };
    res
}

/// `GET /ws?topic=a&topic=b`, or `GET /ws` with no topic: the client subscribes by message
/// (the browser client does, each topic from its own cursor).
async fn ws_topics<B>(state: &State, req: Request<B>) -> Response<Body> {
    let query = req.uri().query().unwrap_or("");
    let topics = if push_http::query_value(query, "topic").is_none() {
        Vec::new()
    } else {
        match push_http::topics::query_topics(req.uri(), "topic", push_http::topics::MAX_TOPICS) {
            Ok(topics) => topics,
            Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
        }
    };
    count_request("ws");
    state
        .ws
        .respond_topics(&topics, req)
        .await
        .map(BodyExt::boxed_unsync)
}

/// `GET /limits/hold`: an event stream whose one event names the connection it came on and
/// its protocol, then held open (a comment every 15 s) for at most two minutes, so that a page
/// opening several sees how many connections a browser gives one origin.
fn hold<B>(req: &Request<B>) -> Response<Body> {
    let number = req.extensions().get::<ConnNumber>().map_or(0, |c| c.0);
    let protocol = match req.version() {
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    let first = format!(
        "retry: 3600000\ndata: {{\"connection\":{number},\"protocol\":\"{protocol}\"}}\n\n"
    );
    // No task: the body is the whole stream, so a client that leaves frees it at once. A
    // comment every 15 s, for two minutes at most.
    let deadline = tokio::time::Instant::now() + LIMITS_HOLD;
    let frames = futures_util::stream::unfold(Some(first), move |first| async move {
        if let Some(first) = first {
            return Some((Ok(http_body::Frame::data(Bytes::from(first))), None));
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
        (tokio::time::Instant::now() < deadline).then(|| {
            (
                Ok(http_body::Frame::data(Bytes::from_static(b":\n\n"))),
                None,
            )
        })
    });
    let body = http_body_util::StreamBody::new(frames);
    let mut res = Response::new(BodyExt::boxed_unsync(body));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `POST /topics/{t}` publishes, `POST /topics/{t}/complete` finishes the topic, and
/// `DELETE /topics/{t}` deletes it; with tokens, each needs the token's publish grant.
async fn topics<B>(state: &State, rest: &str, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (name, completing) = match rest.strip_suffix("/complete") {
        Some(name) => (name, true),
        None => (rest, false),
    };
    let topic = match Topic::new(name) {
        Ok(topic) => topic,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    // The publisher admits each the same way: with tokens, the token's publish grant.
    let res = match (req.method().clone(), completing) {
        (Method::POST, false) => state.publisher.respond(&topic, req).await,
        (Method::POST, true) => state.publisher.complete(&topic, req).await,
        (Method::DELETE, false) => state.publisher.delete(&topic, req).await,
        _ => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST /topics/{t} publishes, POST /topics/{t}/complete finishes, DELETE /topics/{t} deletes\n",
            );
        }
    };
    res.map(BodyExt::boxed_unsync)
}

/// `/metrics`: push-http's meters of every technique (`push_answers_total`,
/// `push_refusals_total`, `push_open`, `push_deliveries_total`, `push_bytes_total`, gaps and
/// resets), the hub's gauges, push-h2's and push-redis's figures, and the showcase's own
/// counters, rendered by metrics-exporter-prometheus.
fn metrics(state: &State) -> Response<Body> {
    push_http::meters::record_hub(&state.hub);
    let h2 = state.h2.stats();
    metrics::counter!("push_h2_promised_total").absolute(h2.promised);
    metrics::counter!("push_h2_pushed_bytes_total").absolute(h2.pushed_bytes);
    if let Some(redis) = &state.redis {
        let h = redis.health();
        metrics::gauge!("push_redis_readers").set(h.readers as f64);
        metrics::gauge!("push_redis_readers_connected").set(h.readers_connected as f64);
        metrics::counter!("push_redis_reconnects_total").absolute(h.reconnects);
        metrics::counter!("push_redis_publish_errors_total").absolute(h.publish_errors);
        metrics::counter!("push_redis_read_errors_total").absolute(h.read_errors);
        metrics::gauge!("push_redis_publishing").set(f64::from(u8::from(h.publishing)));
        for (i, reader) in h.shards.iter().enumerate() {
            let label = i.to_string();
            let gauge = |name: &'static str, value: f64| {
                metrics::gauge!(name, "reader" => label.clone()).set(value);
            };
            gauge(
                "push_redis_reader_connected",
                f64::from(u8::from(reader.connected)),
            );
            gauge("push_redis_reader_topics", reader.topics as f64);
            gauge("push_redis_reader_lag_ms", reader.lag_ms as f64);
            metrics::counter!("push_redis_reader_reconnects_total", "reader" => label.clone())
                .absolute(reader.reconnects);
        }
    }
    reply(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        state.prometheus.render(),
    )
}

/// The text `/admin/answer` streams, a word at a time.
const ANSWER: &str = "A topic can finish. Its readers get every event, then the end: SSE a \
push-complete event and a 204 on the reconnect, so the EventSource stops; streams an end line; \
polls complete:true; a WebSocket a complete message. Nothing reconnects after it.";

/// `POST /admin/answer`: streams a generated answer, a word every 60 ms, to a new topic
/// `answer-N`, then completes it. Answers `{"topic":T,"from":CURSOR}`: read it from `from`.
async fn answer(state: Arc<State>) -> Response<Body> {
    let Ok(permit) = state.generating.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "16 answers are being generated; try again shortly\n",
        );
    };
    let n = state.answers.fetch_add(1, Ordering::Relaxed) + 1;
    let Ok(topic) = Topic::new(&format!("answer-{n}")) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "topic name\n");
    };
    // Made now, so that a reader can start from before the first word.
    let from = match state
        .hub
        .subscribe(&topic, push_core::StartFrom::Newest)
        .await
    {
        Ok(sub) => sub.cursor(),
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    };
    let (hub, name) = (state.hub.clone(), topic.clone());
    tokio::spawn(async move {
        for word in ANSWER.split_inclusive(' ') {
            tokio::time::sleep(Duration::from_millis(60)).await;
            if hub.publish(&name, NewEvent::text(word)).await.is_err() {
                return;
            }
        }
        let _ = hub.complete(&name).await;
        drop(permit);
    });
    let body = format!("{{\"topic\":\"{}\",\"from\":\"{from}\"}}\n", topic.as_str());
    reply(StatusCode::OK, "application/json", body)
}

fn drop_connections(state: &State) {
    let token = std::mem::take(
        &mut *state
            .dropper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    token.cancel();
    state.ws.restart_all();
}

async fn ticker(state: Arc<State>) {
    let topic = Topic::new("demo").expect("valid");
    let mut n = 0u64;
    loop {
        let rate = state.ticker_rate.load(Ordering::Relaxed);
        if rate == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_secs_f64(1.0 / rate as f64)).await;
        n += 1;
        // The publish time travels in the event, so that every page panel measures latency.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let Ok(event) = NewEvent::json(format!("{{\"n\":{n},\"t\":{now}}}")) else {
            return;
        };
        if state.hub.publish(&topic, event).await.is_err() {
            return;
        }
    }
}

fn h2_config(server: &ServerArgs) -> H2Config {
    let mut config = H2Config::default();
    config.handshake_timeout = server.handshake_timeout;
    config
}

fn push_policy() -> PushPolicy {
    PushPolicy::new()
        .push("/", &["/style.css", "/app.js", "/client.js"])
        .push("/index.html", &["/style.css", "/app.js", "/client.js"])
}

/// Serves one connection until it ends or `/admin/drop` cuts it.
async fn serve(state: Arc<State>, conn: Conn, tls: Option<tokio_rustls::TlsAcceptor>) {
    metrics::counter!("push_connections_total").increment(1);
    let number = ConnNumber(state.connections.fetch_add(1, Ordering::Relaxed) + 1);
    let dropped = state.drop_token();
    tokio::select! {
        () = serve_conn(state, conn, tls, number) => {}
        () = dropped.cancelled() => {}
    }
}

/// The first bytes tell: a TLS handshake when configured (then ALPN decides the protocol), the
/// HTTP/2 preface, or an HTTP/1.1 request. Every wait before the first request is under the
/// handshake timeout.
async fn serve_conn(
    state: Arc<State>,
    conn: Conn,
    tls: Option<tokio_rustls::TlsAcceptor>,
    number: ConnNumber,
) {
    let acceptor = match (conn.sniff().await, tls) {
        (None, _) => return,
        (Some(Protocol::Http2), _) => return serve_h2(state, conn.stream, &conn.ctx, number).await,
        (Some(Protocol::Tls), Some(acceptor)) => acceptor,
        (Some(_), _) => {
            return serve_http1(state, TokioIo::new(conn.stream), &conn.ctx, number).await;
        }
    };
    let ctx = conn.ctx;
    let Some(Ok(stream)) = ctx.handshake(acceptor.accept(conn.stream)).await else {
        return;
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return serve_h2(state, stream, &ctx, number).await;
    }
    serve_http1(state, TokioIo::new(stream), &ctx, number).await;
}

async fn serve_h2<I>(state: Arc<State>, io: I, ctx: &Ctx, number: ConnNumber)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let h2 = state.h2.clone();
    let peer = ctx.peer();
    let service = move |mut req: Request<_>| {
        req.extensions_mut().insert(number);
        req.extensions_mut().insert(peer);
        route(state.clone(), req)
    };
    // GOAWAY at the stop: an HTTP/2 connection without streams then closes at once.
    ctx.mark_served();
    let conn = h2.serve_connection(io, service);
    server_kit::drive(conn, ctx, |c| c.graceful_shutdown()).await;
}

async fn serve_http1<I>(state: Arc<State>, io: I, ctx: &Ctx, number: ConnNumber)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = ctx.track(hyper::service::service_fn(move |mut req: Request<_>| {
        req.extensions_mut().insert(number);
        let state = state.clone();
        async move { Ok::<_, Infallible>(route(state, req).await) }
    }));
    let conn = ctx
        .builders()
        .http1
        .serve_connection(io, service)
        .with_upgrades();
    server_kit::drive(conn, ctx, |c| c.graceful_shutdown()).await;
}

/// The showcase's command line.
#[derive(Debug, clap::Parser)]
#[command(about = "All six push techniques side by side on one port, live in a browser")]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
    /// Do not start the built-in publisher (one event per second to `demo`).
    #[arg(long)]
    no_ticker: bool,
    /// Also serve TLS on the port, with a self-signed certificate generated at start (ALPN h2
    /// or http/1.1): `https://` beside `http://`.
    #[arg(long)]
    tls: bool,
    /// Keep topics in Redis Streams at this URL (redis://HOST:PORT), shared by every showcase
    /// process that uses it. Given twice or more, the URLs are seeds of a Redis Cluster.
    #[arg(long, value_name = "URL")]
    redis: Vec<String>,
    /// With --redis: acknowledge a publish once this many replicas hold it (0: once the
    /// master has it, which a failover can lose).
    #[arg(long, default_value_t = 0, value_name = "N")]
    redis_wait_replicas: usize,
    /// The most MiB of events the in-memory hub retains over all topics (push-core's
    /// `HubConfig::max_bytes`); the oldest go first, and their readers get exact gaps.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    max_retained_mib: usize,
    /// The most streams, held long-polls or WebSockets one client (address, or a token's
    /// `sub`) may hold open on each technique; one more gets 429.
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    client_streams: usize,
    /// The most topics one client may hold subscribed on each technique (so that nobody fills
    /// the 10,000-topic cap alone); one more gets 429 (a WebSocket: an error message).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    client_topics: usize,
    /// Require `Authorization: Bearer TOKEN` to publish and for /admin/*.
    #[arg(long, env = "PUSH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Require HS256 JSON Web Tokens signed with SECRET for every technique and for publishing
    /// (from `Authorization: Bearer` or `?access_token=`; `showcase token` makes one).
    #[arg(
        long,
        env = "PUSH_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    jwt_secret: Option<String>,
    /// Close a WebSocket client (1008, "too slow") once a write to it has waited this many
    /// seconds; without it, a client that reads too slowly falls behind and is told a gap.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    ws_slow_timeout: Option<f64>,
}

/// A number of seconds above zero (fractions allowed).
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(secs),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

/// The crates' log events as lines on stderr: `RUST_LOG` filters them (`info` when unset,
/// `RUST_LOG=push_ws=debug` for every WebSocket decision, `RUST_LOG=push_redis=warn` …).
fn init_logs() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The WebSocket endpoint's settings: the per-client `quota`, and `--ws-slow-timeout`.
fn ws_config(args: &Args, quota: push_http::Quota) -> push_ws::WsConfig {
    let config = push_ws::WsConfig::default()
        .quota(quota)
        .max_connections(args.server.max_connections);
    match args.ws_slow_timeout {
        Some(secs) => config
            .slow_client(push_ws::SlowClient::Close)
            .slow_timeout(Duration::from_secs_f64(secs)),
        None => config,
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print an HS256 token for a server started with --jwt-secret.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The server's secret.
    #[arg(
        long,
        env = "PUSH_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    jwt_secret: String,
    /// A topic pattern the token may read: a name, or a prefix ending in `*` (repeatable).
    #[arg(long, value_name = "PATTERN", default_value = "demo")]
    subscribe: Vec<String>,
    /// A topic pattern the token may publish to (repeatable; none by default).
    #[arg(long, value_name = "PATTERN")]
    publish: Vec<String>,
    /// A topic pattern the token may finish and delete (repeatable; none by default).
    #[arg(long, value_name = "PATTERN")]
    manage: Vec<String>,
    /// How long the token is valid, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl: u64,
}

/// The token `showcase token` prints: `exp` and the `push` claim, signed with HS256.
fn mint(args: &TokenArgs) -> std::io::Result<String> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_add(args.ttl);
    let claims = serde_json::json!({
        "exp": exp,
        "push": {"subscribe": args.subscribe, "publish": args.publish, "manage": args.manage},
    });
    let key = jsonwebtoken::EncodingKey::from_secret(args.jwt_secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .map_err(std::io::Error::other)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if let Some(Command::Token(token)) = &args.command {
        println!("{}", mint(token)?);
        return Ok(());
    }
    init_logs();
    let acceptor = if args.tls {
        Some(tls_acceptor()?)
    } else {
        None
    };
    let listener = args.server.bind().await?;
    if !args.server.addr.ip().is_loopback() && args.token.is_none() {
        eprintln!(
            "warning: listening on {} without --token: anyone who can reach it may publish and use /admin/*",
            args.server.addr
        );
    }
    let redis_config =
        RedisConfig::default().wait_replicas(args.redis_wait_replicas, Duration::from_secs(1));
    let redis = match args.redis.as_slice() {
        [] => None,
        [url] => Some(
            RedisHub::connect(url, redis_config)
                .await
                .map_err(|e| std::io::Error::other(format!("--redis {url}: {e}")))?,
        ),
        seeds => {
            let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
            Some(
                RedisHub::connect_cluster(&seeds, redis_config)
                    .await
                    .map_err(|e| std::io::Error::other(format!("--redis (cluster): {e}")))?,
            )
        }
    };
    let memory = || {
        Hub::new(MemoryHub::new(
            HubConfig::default().max_bytes(args.max_retained_mib.saturating_mul(1 << 20)),
        ))
    };
    let hub = redis.clone().map_or_else(memory, Hub::new);
    let local = listener.local_addr()?;
    if args.tls {
        println!("listening on http://{local}/ and https://{local}/");
    } else {
        println!("listening on http://{local}/");
    }
    // Installed before the endpoints are made: they register their meters with it.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    let authorizer: Option<Authorizer> = match args.jwt_secret.as_deref() {
        Some(secret) => Some(
            Jwt::hs256(secret.as_bytes())
                .map_err(|e| std::io::Error::other(format!("--jwt-secret: {e}")))?
                .into(),
        ),
        None => None,
    };
    // Each technique's own cap follows the server's connection cap, so `--max-connections`
    // alone raises (or lowers) how many clients of any technique the showcase holds.
    let cap = args.server.max_connections;
    let quota = push_http::Quota::default()
        .streams(args.client_streams)
        .topics(args.client_topics);
    let (mut poller, mut longpoll, mut sse) = (
        // Polled every second: the page shows polling's cost at a pace a person watches.
        Poller::with_config(
            hub.clone(),
            push_poll::PollConfig::default().interval(Duration::from_secs(1)),
        ),
        LongPoll::with_config(
            hub.clone(),
            push_longpoll::LongPollConfig::default()
                .quota(quota)
                .max_held(cap),
        ),
        Sse::with_config(
            hub.clone(),
            push_sse::SseConfig::default().quota(quota).max_streams(cap),
        ),
    );
    let (mut streamer, mut ws, mut events) = (
        Streamer::with_config(
            hub.clone(),
            push_stream::StreamConfig::default()
                .quota(quota)
                .max_streams(cap),
        ),
        Ws::with_config(hub.clone(), ws_config(&args, quota)),
        Events::with_config(
            hub.clone(),
            push_h2::EventsConfig::default()
                .quota(quota)
                .max_streams(cap),
        ),
    );
    let mut publisher = push_http::Publisher::new(hub.clone());
    if let Some(auth) = &authorizer {
        poller = poller.authorize(auth.clone());
        longpoll = longpoll.authorize(auth.clone());
        sse = sse.authorize(auth.clone());
        streamer = streamer.authorize(auth.clone());
        ws = ws.authorize(auth.clone());
        events = events.authorize(auth.clone());
        publisher = publisher.authorize(auth.clone());
    }
    let state = Arc::new(State {
        publisher,
        redis,
        poller,
        longpoll,
        sse,
        streamer,
        ws,
        events,
        hub,
        prometheus,
        h2: push_h2::Builder::new()
            .config(h2_config(&args.server))
            .push_policy(push_policy()),
        ticker_rate: AtomicU64::new(u64::from(!args.no_ticker)),
        answers: AtomicU64::new(0),
        generating: Arc::new(tokio::sync::Semaphore::new(16)),
        dropper: Mutex::new(StopToken::new()),
        token: args.token.clone(),
        authorizer,
        tls: args.tls,
        connections: AtomicU64::new(0),
    });
    tokio::spawn(ticker(state.clone()));
    let on_stop = {
        let state = state.clone();
        async move {
            // WebSockets are told 1001 first; then the hub closes, which ends every SSE, stream
            // and push-h2 body with its goodbye and answers every held long-poll.
            tokio::join!(state.ws.shutdown(), async {
                tokio::task::yield_now().await;
                state.hub.close();
            });
        }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        serve(state.clone(), conn, acceptor.clone())
    })
    .await
}

/// A TLS acceptor with a self-signed certificate for `localhost` and `127.0.0.1`, offering
/// `h2` then `http/1.1` by ALPN.
fn tls_acceptor() -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    let invalid = |e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
    };
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| invalid(&e))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| invalid(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
