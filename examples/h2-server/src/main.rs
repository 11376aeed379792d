//! An HTTP/2 server with push-h2, to copy from: h2c with prior knowledge on TCP.
//!
//! - `GET /` (or `/index.html`): a page; `/styles.css` and `/app.js` are pushed with it
//!   (PUSH_PROMISE), and announced first in `103 Early Hints` (what browsers use);
//! - `GET /h2/{topic}?since=CURSOR`: every event of the topic as a pushed response;
//! - `POST /topics/{topic}`: publishes the body as one event, answers `{"id":"CURSOR"}`.
//!
//! With `--tls`, the port speaks TLS with ALPN `h2` and a self-signed certificate generated at
//! start (for `localhost` and `127.0.0.1`), which is how a browser reaches HTTP/2 (it will
//! warn about the certificate).
//!
//! ```sh
//! cargo run -p h2-server -- --addr 127.0.0.1:8443
//! nghttp -nv http://127.0.0.1:8443/index.html
//! cargo run -p h2-server -- --addr 127.0.0.1:8443 --tls
//! nghttp -nv https://127.0.0.1:8443/index.html
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use push_core::{Hub, Topic};
use push_h2::{Builder, Events, H2Body, H2Config, PushPolicy};
use push_http::Publisher;
use server_kit::ServerArgs;

type Body = BoxBody<Bytes, std::convert::Infallible>;

const PAGE: &str = "<!doctype html><meta charset=utf-8><title>push-h2</title>\
<link rel=stylesheet href=/styles.css><script src=/app.js></script><h1>pushed</h1>\n";
const CSS: &str = "h1 { color: teal }\n";
const JS: &str = "console.log('pushed with the page');\n";

/// A short plain-text answer.
fn text_response(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *res.status_mut() = status;
    res
}

fn file(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    res.headers_mut()
        .insert("content-type", http::HeaderValue::from_static(content_type));
    res
}

async fn handle(publisher: Publisher, events: Events, req: Request<H2Body>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/" | "/index.html" => return file("text/html; charset=utf-8", PAGE),
        "/styles.css" => return file("text/css", CSS),
        "/app.js" => return file("text/javascript", JS),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/h2/") {
        return match Topic::new(name) {
            Ok(topic) => events.respond(&topic, req).await.map(BodyExt::boxed),
            Err(e) => text_response(StatusCode::BAD_REQUEST, &format!("{e}\n")).map(BodyExt::boxed),
        };
    }
    if let Some(name) = path.strip_prefix("/topics/") {
        // push-http's publish endpoint: POST only, a 64 KiB body limit, `{"id":"CURSOR"}`.
        return match Topic::new(name) {
            Ok(topic) => publisher.respond(&topic, req).await.map(BodyExt::boxed),
            Err(e) => text_response(StatusCode::BAD_REQUEST, &format!("{e}\n")).map(BodyExt::boxed),
        };
    }
    text_response(
        StatusCode::NOT_FOUND,
        "routes: GET /, GET /h2/{topic}, POST /topics/{topic}\n",
    )
    .map(BodyExt::boxed)
}

/// The command line.
#[derive(Debug, clap::Parser)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Serve TLS with ALPN `h2` and a self-signed certificate generated at start.
    #[arg(long)]
    tls: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let acceptor = if args.tls {
        Some(tls_acceptor()?)
    } else {
        None
    };
    let listener = args.server.bind().await?;
    let scheme = if args.tls { "https" } else { "http" };
    println!("listening on {scheme}://{}/", listener.local_addr()?);
    let hub = Hub::memory();
    let events = Events::new(hub.clone());
    let publisher = Publisher::new(hub.clone());
    let policy = PushPolicy::new()
        .push("/", &["/styles.css", "/app.js"])
        .push("/index.html", &["/styles.css", "/app.js"]);
    let mut config = H2Config::default();
    config.handshake_timeout = args.server.handshake_timeout;
    let h2 = Builder::new().config(config).push_policy(policy);
    // Every event stream ends; every connection gets GOAWAY (below) and drains.
    let on_stop = {
        let hub = hub.clone();
        async move { hub.close() }
    };
    server_kit::run(listener, &args.server, on_stop, move |conn| {
        let (publisher, events, h2) = (publisher.clone(), events.clone(), h2.clone());
        let service = move |req| handle(publisher.clone(), events.clone(), req);
        let acceptor = acceptor.clone();
        async move {
            let ctx = conn.ctx;
            ctx.mark_served();
            match acceptor {
                Some(acceptor) => {
                    if let Some(Ok(tls)) = ctx.handshake(acceptor.accept(conn.stream)).await {
                        let conn = h2.serve_connection(tls, service);
                        server_kit::drive(conn, &ctx, |c| c.graceful_shutdown()).await;
                    }
                }
                None => {
                    let conn = h2.serve_connection(conn.stream, service);
                    server_kit::drive(conn, &ctx, |c| c.graceful_shutdown()).await;
                }
            }
        }
    })
    .await
}

/// A TLS acceptor with a self-signed certificate for `localhost` and `127.0.0.1`, offering only
/// `h2` by ALPN.
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
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
