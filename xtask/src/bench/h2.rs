//! The HTTP/2 part of `cargo xtask bench`: a page with K linked assets loaded over server push,
//! over 103 Early Hints then fetches, and over plain requests, through a proxy that delays every
//! chunk by half a round trip each way; and events per second pushed as responses against the
//! same events on the subscription's body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use push_core::{Hub, NewEvent, Topic};
use push_h2::{Builder, Events, H2Body, PushPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Assets linked from the page.
const ASSETS: usize = 8;
/// Each asset's size.
const ASSET_BYTES: usize = 4 * 1024;
/// The page handler's own work (a database query, a template), during which 103 helps.
const THINK: Duration = Duration::from_millis(30);

fn asset_paths() -> Vec<String> {
    (0..ASSETS).map(|i| format!("/asset{i}.css")).collect()
}

async fn start_server(hub: Hub) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let paths = asset_paths();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let policy = PushPolicy::new().push("/page", &refs);
    let events = Events::new(hub);
    let h2 = Builder::new().push_policy(policy);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let events = events.clone();
            let service = move |req: Request<H2Body>| {
                let events = events.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    if path == "/page" {
                        tokio::time::sleep(THINK).await;
                        return Response::new(Full::new(Bytes::from_static(&[b'p'; 2048])).boxed());
                    }
                    if path.starts_with("/asset") {
                        return Response::new(
                            Full::new(Bytes::from(vec![b'a'; ASSET_BYTES])).boxed(),
                        );
                    }
                    let topic = Topic::new("t").expect("valid");
                    events.respond(&topic, req).await.map(BodyExt::boxed)
                }
            };
            tokio::spawn(h2.serve_connection(stream, service));
        }
    });
    Ok(addr)
}

/// A TCP proxy that delivers every chunk `one_way` after it was read, in order, in both
/// directions: a round trip of `2 × one_way` with no bandwidth limit.
async fn start_delay_proxy(upstream: SocketAddr, one_way: Duration) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(delay_pipe(cr, sw, one_way));
            tokio::spawn(delay_pipe(sr, cw, one_way));
        }
    });
    Ok(addr)
}

async fn delay_pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Bytes)>();
    tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(n) if n > 0 => {
                let due = tokio::time::Instant::now() + delay;
                if tx.send((due, Bytes::copy_from_slice(&buf[..n]))).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// How a page load fetches its assets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Push,
    EarlyHints,
    Plain,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Push => "server push",
            Mode::EarlyHints => "103 Early Hints, then fetches",
            Mode::Plain => "plain: page, then fetches",
        }
    }

    /// Dependent request waves after the connection is up.
    pub(crate) fn round_trips(self) -> u32 {
        match self {
            Mode::Push | Mode::EarlyHints => 1,
            Mode::Plain => 2,
        }
    }
}

async fn drain(body: &mut h2::RecvStream) -> Result<usize, String> {
    let mut n = 0;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
        n += chunk.len();
    }
    Ok(n)
}

fn get(addr: SocketAddr, path: &str) -> Result<Request<()>, String> {
    Request::get(format!("http://{addr}{path}"))
        .body(())
        .map_err(|e| e.to_string())
}

/// Requests every asset at once on `send` and reads them all; returns the bytes read.
async fn fetch_assets(
    addr: SocketAddr,
    send: h2::client::SendRequest<Bytes>,
) -> Result<usize, String> {
    let mut tasks = Vec::new();
    for path in asset_paths() {
        let mut send = send.clone().ready().await.map_err(|e| e.to_string())?;
        let (response, _) = send
            .send_request(get(addr, &path)?, true)
            .map_err(|e| e.to_string())?;
        tasks.push(tokio::spawn(async move {
            let mut body = response.await.map_err(|e| e.to_string())?.into_body();
            drain(&mut body).await
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total)
}

/// One page load on a fresh connection; returns the wall time from connect to the last byte.
async fn load(addr: SocketAddr, mode: Mode) -> Result<Duration, String> {
    let start = Instant::now();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = h2::client::Builder::new()
        .enable_push(mode == Mode::Push)
        .handshake::<_, Bytes>(tcp)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.map_err(|e| e.to_string())?;
    let (mut response, _) = send
        .send_request(get(addr, "/page")?, true)
        .map_err(|e| e.to_string())?;
    let mut promises = (mode == Mode::Push).then(|| response.push_promises());
    let mut early = None;
    if mode == Mode::EarlyHints {
        // A browser starts the preloads as soon as the 103 arrives.
        if let Some(hint) = std::future::poll_fn(|cx| response.poll_informational(cx)).await {
            hint.map_err(|e| e.to_string())?;
            early = Some(tokio::spawn(fetch_assets(addr, send.clone())));
        }
    }
    let mut page = response.await.map_err(|e| e.to_string())?.into_body();
    drain(&mut page).await?;
    let assets = match mode {
        Mode::Push => {
            let mut total = 0;
            if let Some(promises) = promises.as_mut() {
                while let Some(promise) = promises.push_promise().await {
                    let (_, response) = promise.map_err(|e| e.to_string())?.into_parts();
                    let mut body = response.await.map_err(|e| e.to_string())?.into_body();
                    total += drain(&mut body).await?;
                }
            }
            total
        }
        Mode::EarlyHints => match early {
            Some(task) => task.await.map_err(|e| e.to_string())??,
            None => fetch_assets(addr, send).await?,
        },
        Mode::Plain => fetch_assets(addr, send).await?,
    };
    if assets != ASSETS * ASSET_BYTES {
        return Err(format!(
            "{mode:?}: {assets} asset bytes, {} expected",
            ASSETS * ASSET_BYTES
        ));
    }
    Ok(start.elapsed())
}

/// The page-load figures of one mode.
pub(crate) struct PageLoad {
    pub(crate) mode: Mode,
    pub(crate) median_ms: f64,
}

/// Pushed events per second against events on the subscription's body.
pub(crate) struct EventRate {
    pub(crate) pushed_per_sec: f64,
    pub(crate) body_per_sec: f64,
    pub(crate) events: u64,
}

pub(crate) async fn measure(
    rtt: Duration,
    loads: usize,
    events: u64,
) -> Result<(Vec<PageLoad>, EventRate), String> {
    let hub = Hub::memory();
    let server = start_server(hub.clone()).await?;
    let proxy = start_delay_proxy(server, rtt / 2).await?;
    let mut pages = Vec::new();
    for mode in [Mode::Push, Mode::EarlyHints, Mode::Plain] {
        let mut times = Vec::with_capacity(loads);
        for _ in 0..loads {
            times.push(load(proxy, mode).await?.as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        pages.push(PageLoad {
            mode,
            median_ms: times[times.len() / 2],
        });
    }
    let pushed_per_sec = event_rate(server, &hub, events, true).await?;
    let body_per_sec = event_rate(server, &hub, events, false).await?;
    Ok((
        pages,
        EventRate {
            pushed_per_sec,
            body_per_sec,
            events,
        },
    ))
}

/// Publishes `events` as fast as the hub takes them and times their arrival at one client,
/// as pushed responses (`push`) or as lines on the subscription's body.
async fn event_rate(addr: SocketAddr, hub: &Hub, events: u64, push: bool) -> Result<f64, String> {
    let mut client = push_h2::client::Client::connect(addr, push)
        .await
        .map_err(|e| e.to_string())?;
    let mut sub = client.subscribe("/h2/t").await.map_err(|e| e.to_string())?;
    sub.next_line().await.map_err(|e| e.to_string())?;
    let topic = Topic::new("t").expect("valid");
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let publisher = {
        let (hub, received) = (hub.clone(), received.clone());
        tokio::spawn(async move {
            for i in 0..events {
                // Stay within retention (1,000 events) of the subscriber, so that every event
                // is delivered and the figure is a delivery rate, not a gap count.
                while i.saturating_sub(received.load(std::sync::atomic::Ordering::Relaxed)) > 500 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                let _ = hub.publish(&topic, NewEvent::new(i.to_string())).await;
            }
        })
    };
    let start = Instant::now();
    let mut count = 0u64;
    while count < events {
        let got = if push {
            sub.next_event().await.map_err(|e| e.to_string())?.is_some()
        } else {
            sub.next_line().await.map_err(|e| e.to_string())?.is_some()
        };
        if !got {
            return Err(format!("the subscription ended after {count} events"));
        }
        count += 1;
        received.store(count, std::sync::atomic::Ordering::Relaxed);
    }
    let elapsed = start.elapsed();
    publisher.await.map_err(|e| e.to_string())?;
    Ok(events as f64 / elapsed.as_secs_f64())
}
