//! The HTTP/2 connection driver: settings, the accept loop, resource push with 103 Early Hints
//! and the `Link` fallback, event push, keep-alive pings and graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use http::header::{HeaderValue, LINK};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};

use crate::body::{send_body, send_data, H2Body};
use crate::endpoint::{EventStream, PushEvents};
use crate::Error;

/// Settings of the driver.
///
/// | setting | default |
/// |---|---|
/// | [`max_concurrent_streams`](Self::max_concurrent_streams) | 256 client streams at once |
/// | [`initial_window_size`](Self::initial_window_size) | 256 KiB per stream |
/// | [`initial_connection_window_size`](Self::initial_connection_window_size) | 1 MiB |
/// | [`max_header_list_size`](Self::max_header_list_size) | 16 KiB |
/// | [`max_send_buffer_size`](Self::max_send_buffer_size) | 64 KiB buffered per stream |
/// | [`max_pushes_in_flight`](Self::max_pushes_in_flight) | 32 promised streams not yet finished, per connection |
/// | [`max_pushed_bytes`](Self::max_pushed_bytes) | 256 MiB pushed per connection, then pushing stops (`Link` fallback) |
/// | [`keep_alive`](Self::keep_alive) | a PING every 30 s; no answer within 20 s closes |
/// | [`handshake_timeout`](Self::handshake_timeout) | 10 s for the client's preface |
/// | [`drain_timeout`](Self::drain_timeout) | 5 s after GOAWAY, then the connection is cut |
/// | [`early_hints`](Self::early_hints) | on |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct H2Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub initial_window_size: u32,
    /// The connection's receive window.
    pub initial_connection_window_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: u32,
    /// The most data buffered per stream before the client's window opens.
    pub max_send_buffer_size: usize,
    /// The most pushed streams promised and not yet finished.
    pub max_pushes_in_flight: usize,
    /// The most body bytes pushed over one connection.
    pub max_pushed_bytes: u64,
    /// PING period and answer timeout; `None` sends none.
    pub keep_alive: Option<(Duration, Duration)>,
    /// The longest wait for the client's connection preface; a client that sends nothing is
    /// closed after it.
    pub handshake_timeout: Duration,
    /// After the shutdown signal (GOAWAY), the longest the streams in progress may take to
    /// finish before the connection is cut.
    pub drain_timeout: Duration,
    /// Whether the push policy also sends `103 Early Hints` with its `Link` headers.
    pub early_hints: bool,
}

impl Default for H2Config {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 256,
            initial_window_size: 256 * 1024,
            initial_connection_window_size: 1024 * 1024,
            max_header_list_size: 16 * 1024,
            max_send_buffer_size: 64 * 1024,
            max_pushes_in_flight: 32,
            max_pushed_bytes: 256 * 1024 * 1024,
            keep_alive: Some((Duration::from_secs(30), Duration::from_secs(20))),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            early_hints: true,
        }
    }
}

/// Which resources to push with which page: `"/index.html" → ["/styles.css", "/app.js"]`.
#[derive(Debug, Clone, Default)]
pub struct PushPolicy {
    assets: HashMap<String, Vec<String>>,
}

impl PushPolicy {
    /// An empty policy.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Pushes `assets` (paths on the same authority) with every `GET path`.
    #[must_use]
    pub fn push(mut self, path: &str, assets: &[&str]) -> Self {
        self.assets.insert(
            path.to_owned(),
            assets.iter().map(|a| (*a).to_owned()).collect(),
        );
        self
    }

    fn for_path(&self, path: &str) -> &[String] {
        self.assets.get(path).map_or(&[], Vec::as_slice)
    }
}

/// A response extension by which a handler names resources to push with its response, in
/// addition to the [`PushPolicy`].
#[derive(Debug, Clone, Default)]
pub struct Push(pub Vec<String>);

/// What the connections of a [`Builder`] have done so far: a snapshot, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct H2Stats {
    /// PUSH_PROMISEs sent.
    pub promised: u64,
    /// Pushes the client refused or disabled (answered with a `Link` fallback instead).
    pub refused: u64,
    /// Body bytes pushed.
    pub pushed_bytes: u64,
}

/// The counters behind [`H2Stats`], shared by the connections of one builder.
#[derive(Debug, Default)]
struct Counters {
    promised: AtomicU64,
    refused: AtomicU64,
    pushed_bytes: AtomicU64,
}

/// Serves HTTP/2 connections with server push, as hyper's builders do: configure once, then
/// [`serve_connection`](Self::serve_connection) for each accepted connection (h2c with prior
/// knowledge on TCP, or TLS after ALPN `h2`).
///
/// ```
/// use push_h2::{Builder, H2Config, PushPolicy};
///
/// let builder = Builder::new()
///     .config(H2Config::default())
///     .push_policy(PushPolicy::new().push("/", &["/app.js"]));
/// assert_eq!(builder.stats().promised, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: H2Config,
    policy: PushPolicy,
    counters: Arc<Counters>,
}

impl Builder {
    /// A builder with the default [`H2Config`] and an empty [`PushPolicy`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the connection settings.
    #[must_use]
    pub fn config(mut self, config: H2Config) -> Self {
        self.config = config;
        self
    }

    /// Sets which resources are pushed with which page.
    #[must_use]
    pub fn push_policy(mut self, policy: PushPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// What every connection this builder served has done so far.
    #[must_use]
    pub fn stats(&self) -> H2Stats {
        H2Stats {
            promised: self.counters.promised.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            pushed_bytes: self.counters.pushed_bytes.load(Ordering::Relaxed),
        }
    }

    /// Serves one connection with `service` until the client goes away, or until
    /// [`Connection::graceful_shutdown`] (then GOAWAY, and the streams in progress finish
    /// within [`H2Config::drain_timeout`]).
    ///
    /// Every stream's handler and body watch the stream: when the client resets it
    /// (RST_STREAM) or the connection ends, they are dropped at once, and with them the
    /// subscriptions and permits they held. The push budget
    /// ([`H2Config::max_pushed_bytes`]) is counted per connection.
    pub fn serve_connection<I, S, F, B>(&self, io: I, service: S) -> Connection
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Fn(Request<H2Body>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<B>> + Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
    {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let run = run(
            io,
            service,
            self.policy.clone(),
            self.config.clone(),
            shutdown_rx,
            self.counters.clone(),
        );
        Connection {
            inner: Box::pin(run),
            shutdown,
        }
    }
}

/// One connection being served: a future that completes when the connection ends.
#[must_use = "a connection does nothing unless polled"]
pub struct Connection {
    inner: std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts the graceful shutdown: GOAWAY, no new streams, the streams in progress finish
    /// within [`H2Config::drain_timeout`], then the future completes.
    pub fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        self.shutdown.send_replace(true);
    }
}

impl Future for Connection {
    type Output = Result<(), Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// The connection's task: see [`Builder::serve_connection`].
async fn run<I, S, F, B>(
    io: I,
    service: S,
    policy: PushPolicy,
    config: H2Config,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<Counters>,
) -> Result<(), Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: Fn(Request<H2Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
{
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(config.max_concurrent_streams)
        .initial_window_size(config.initial_window_size)
        .initial_connection_window_size(config.initial_connection_window_size)
        .max_header_list_size(config.max_header_list_size)
        .max_send_buffer_size(config.max_send_buffer_size);
    let Ok(handshake) =
        tokio::time::timeout(config.handshake_timeout, builder.handshake::<_, Bytes>(io)).await
    else {
        connection_closed("handshake_timeout", None);
        return Ok(());
    };
    let mut conn = handshake.map_err(|e| {
        connection_closed("protocol_error", Some(&e));
        Error::h2(e)
    })?;
    let shared = Arc::new(Shared {
        policy,
        config: config.clone(),
        pushes: Arc::new(Semaphore::new(config.max_pushes_in_flight)),
        pushed_bytes: AtomicU64::new(0),
        stats,
    });
    // Armed when the shutdown signal arrives.
    let drain = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(drain);
    let mut ping = conn.ping_pong();
    let period = config
        .keep_alive
        .map_or(Duration::from_secs(3600), |(p, _)| p);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut closing = false;
    loop {
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((req, respond))) => {
                    let (service, shared) = (service.clone(), shared.clone());
                    tokio::spawn(handle(req, respond, service, shared));
                }
                Some(Err(e)) if e.is_go_away() || e.is_io() => return Ok(()),
                Some(Err(e)) => {
                    connection_closed("protocol_error", Some(&e));
                    return Err(Error::h2(e));
                }
                None => return Ok(()),
            },
            _ = shutdown.changed(), if !closing => {
                if *shutdown.borrow() {
                    closing = true;
                    conn.graceful_shutdown();
                    drain.as_mut().reset(tokio::time::Instant::now() + config.drain_timeout);
                }
            }
            () = &mut drain, if closing => return Ok(()),
            _ = tick.tick(), if config.keep_alive.is_some() && ping.is_some() => {
                if let (Some(pinger), Some((_, timeout))) = (ping.as_mut(), config.keep_alive) {
                    // Keep the connection polled while the ping is out: run both.
                    let answered = tokio::time::timeout(timeout, async {
                        if pinger.send_ping(h2::Ping::opaque()).is_err() {
                            return false;
                        }
                        let pong = std::future::poll_fn(|cx| pinger.poll_pong(cx));
                        tokio::pin!(pong);
                        loop {
                            tokio::select! {
                                r = &mut pong => return r.is_ok(),
                                accepted = std::future::poll_fn(|cx| conn.poll_accept(cx)) => match accepted {
                                    Some(Ok((req, respond))) => {
                                        let (service, shared) = (service.clone(), shared.clone());
                                        tokio::spawn(handle(req, respond, service, shared));
                                    }
                                    _ => return false,
                                },
                            }
                        }
                    })
                    .await;
                    if !matches!(answered, Ok(true)) {
                        connection_closed("no_pong", None);
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Logs (feature `tracing`) why the driver ended a connection: `protocol_error` (`info`, with
/// the `error`), or a client that sent no preface in time (`handshake_timeout`) or answered no
/// PING (`no_pong`), at `debug`. Its streams log their own ends (push-http's `closed`).
fn connection_closed(reason: &'static str, error: Option<&h2::Error>) {
    #[cfg(feature = "tracing")]
    if error.is_some() {
        let error = error.map(tracing::field::display);
        tracing::info!(technique = %"h2", reason = %reason, error, "connection closed");
    } else {
        tracing::debug!(technique = %"h2", reason = %reason, "connection closed");
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (reason, error);
}

struct Shared {
    policy: PushPolicy,
    config: H2Config,
    pushes: Arc<Semaphore>,
    /// Body bytes pushed on this connection: the push budget.
    pushed_bytes: AtomicU64,
    stats: Arc<Counters>,
}

impl Shared {
    fn may_push(&self) -> bool {
        self.pushed_bytes.load(Ordering::Relaxed) < self.config.max_pushed_bytes
    }

    fn pushed(&self, n: u64) {
        self.pushed_bytes.fetch_add(n, Ordering::Relaxed);
        self.stats.pushed_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

fn link_value(assets: &[String]) -> Option<HeaderValue> {
    let text = assets
        .iter()
        .map(|a| format!("<{a}>; rel=preload; as={}", preload_as(a)))
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::try_from(text).ok()
}

fn preload_as(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "style",
        Some("js" | "mjs") => "script",
        Some("woff" | "woff2" | "ttf") => "font",
        Some("png" | "jpg" | "jpeg" | "gif" | "webp" | "svg" | "avif") => "image",
        _ => "fetch",
    }
}

async fn handle<S, F, B>(
    req: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    service: S,
    shared: Arc<Shared>,
) where
    S: Fn(Request<H2Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
{
    let (parts, recv) = req.into_parts();
    let policy_assets: Vec<String> = if parts.method == Method::GET {
        shared.policy.for_path(parts.uri.path()).to_vec()
    } else {
        Vec::new()
    };
    // 103 first: the browser can start fetching while the handler works.
    if shared.config.early_hints && !policy_assets.is_empty() {
        if let Some(link) = link_value(&policy_assets) {
            let mut hints = Response::new(());
            *hints.status_mut() = StatusCode::EARLY_HINTS;
            hints.headers_mut().insert(LINK, link);
            let _ = respond.send_informational(hints);
        }
    }
    let authority = parts.uri.authority().cloned();
    let scheme = parts.uri.scheme().cloned();
    let req = Request::from_parts(parts, H2Body::new(recv));
    // A held handler (a long-poll, say) is dropped as soon as the client resets the stream or
    // the connection ends, releasing what it holds.
    let mut res = tokio::select! {
        res = service(req) => res,
        _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => return,
    };
    let mut assets = policy_assets;
    if let Some(Push(named)) = res.extensions_mut().remove::<Push>() {
        assets.extend(named);
    }
    let events = res
        .extensions_mut()
        .remove::<PushEvents>()
        .and_then(|e| e.take());
    // Promise every asset before the main response, so that the client never requests what
    // is on its way; what cannot be pushed is announced as a preload instead.
    let mut fallback = Vec::new();
    for asset in assets {
        let uri = build_uri(scheme.as_ref(), authority.as_ref(), &asset);
        let pushed = uri.and_then(|uri| {
            if !shared.may_push() {
                return None;
            }
            let promise = Request::get(uri).body(()).ok()?;
            respond.push_request(promise).ok()
        });
        match pushed {
            Some(pushed) => {
                shared.stats.promised.fetch_add(1, Ordering::Relaxed);
                let (service, shared) = (service.clone(), shared.clone());
                let path = asset.clone();
                tokio::spawn(serve_pushed(pushed, path, service, shared));
            }
            None => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                fallback.push(asset);
            }
        }
    }
    let (mut head, body) = res.into_parts();
    if let Some(link) = (!fallback.is_empty())
        .then(|| link_value(&fallback))
        .flatten()
    {
        head.headers.append(LINK, link);
    }
    let Ok(mut stream) = respond.send_response(Response::from_parts(head, ()), false) else {
        return;
    };
    match events {
        None => {
            let _ = send_body(&mut stream, body).await;
        }
        Some(events) => {
            deliver_events(events, respond, stream, scheme, authority, shared).await;
        }
    }
}

fn build_uri(
    scheme: Option<&http::uri::Scheme>,
    authority: Option<&http::uri::Authority>,
    path: &str,
) -> Option<http::Uri> {
    let mut builder = http::Uri::builder()
        .scheme(scheme.cloned().unwrap_or(http::uri::Scheme::HTTP))
        .path_and_query(path);
    if let Some(authority) = authority {
        builder = builder.authority(authority.clone());
    }
    builder.build().ok()
}

async fn serve_pushed<S, F, B>(
    mut pushed: h2::server::SendPushedResponse<Bytes>,
    path: String,
    service: S,
    shared: Arc<Shared>,
) where
    S: Fn(Request<H2Body>) -> F,
    F: Future<Output = Response<B>>,
    B: Body<Data = Bytes>,
{
    let Ok(_permit) = shared.pushes.acquire().await else {
        return;
    };
    let Ok(req) = Request::get(path.as_str()).body(H2Body::empty()) else {
        return;
    };
    let res = service(req).await;
    let (head, body) = res.into_parts();
    let Ok(mut stream) = pushed.send_response(Response::from_parts(head, ()), false) else {
        return;
    };
    let counted = CountingBody {
        inner: body,
        shared: &shared,
    };
    let _ = send_body(&mut stream, counted).await;
}

pin_project_lite::pin_project! {
    struct CountingBody<'a, B> {
        #[pin]
        inner: B,
        shared: &'a Shared,
    }
}

impl<B: Body<Data = Bytes>> Body for CountingBody<'_, B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.shared.pushed(data.len() as u64);
            }
        }
        polled
    }
}

/// Pushes every event of the subscription as its own response, promised on the subscription's
/// stream: `GET {base}/{cursor}` answered with the payload and the event's headers. The
/// stream's other frames (the start outcome, gaps, the goodbye) are its body's NDJSON lines;
/// when the client does not accept pushes, the events go there too, as lines, so nothing is
/// lost. What is written when comes from push-http's engine, as for SSE and streaming.
async fn deliver_events(
    events: (EventStream, String),
    mut respond: SendResponse<Bytes>,
    mut stream: h2::SendStream<Bytes>,
    scheme: Option<http::uri::Scheme>,
    authority: Option<http::uri::Authority>,
    shared: Arc<Shared>,
) {
    let (mut frames, base) = events;
    let mut pushing = true;
    loop {
        let next = tokio::select! {
            next = std::future::poll_fn(|cx| frames.poll_next(cx)) => next,
            _ = std::future::poll_fn(|cx| stream.poll_reset(cx)) => return,
        };
        let Some((frame, event)) = next else {
            let _ = send_data(&mut stream, Bytes::new(), true).await;
            return;
        };
        if let Some(event) = event.filter(|_| pushing && shared.may_push()) {
            // The bound on promised streams in flight is also what slows a client that does
            // not read: its window closes, pushes stop finishing, and the subscription waits.
            let Ok(permit) = shared.pushes.clone().acquire_owned().await else {
                return;
            };
            let path = format!("{base}/{}", event.id());
            let promised = build_uri(scheme.as_ref(), authority.as_ref(), &path)
                .and_then(|uri| Request::get(uri).body(()).ok())
                .and_then(|req| respond.push_request(req).ok());
            if let Some(mut pushed) = promised {
                shared.stats.promised.fetch_add(1, Ordering::Relaxed);
                let res = crate::endpoint::pushed_response(&event);
                if let Ok(mut body) = pushed.send_response(res, false) {
                    let data = event.data().clone();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let n = data.len() as u64;
                        if send_data(&mut body, data, true).await.is_ok() {
                            shared.pushed(n);
                        }
                        drop(permit);
                    });
                }
                continue;
            }
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            pushing = false;
        }
        // Lines: one DATA frame for every line ready now (up to 16 KiB): fewer, larger frames,
        // which HTTP/2 clients budget for (h2 counts small unread DATA frames against the peer).
        let mut lines = Vec::from(frame);
        let ended = !pushing && gather_ready(&mut frames, &mut lines);
        if send_data(&mut stream, Bytes::from(lines), ended)
            .await
            .is_err()
            || ended
        {
            return;
        }
    }
}

/// Appends the frames ready now to `lines`, up to 16 KiB; whether the stream ended.
fn gather_ready(frames: &mut EventStream, lines: &mut Vec<u8>) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while lines.len() < 16 * 1024 {
        match frames.poll_next(&mut cx) {
            std::task::Poll::Ready(Some((frame, _))) => lines.extend_from_slice(&frame),
            std::task::Poll::Ready(None) => return true,
            // Nothing ready: the caller waits for it.
            std::task::Poll::Pending => return false,
        }
    }
    false
}
