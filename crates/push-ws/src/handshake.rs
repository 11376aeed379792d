//! The opening handshake: RFC 6455 §4.2 over HTTP/1.1, RFC 8441 (extended CONNECT) over HTTP/2.

use http::header::{
    HeaderValue, CONNECTION, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, Method, Request, StatusCode, Version};
use push_http::Origins;

/// Why a request was not upgraded: the status and a readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// Which kind of upgrade a valid request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// HTTP/1.1 `Upgrade: websocket`: answer `101` with this `Sec-WebSocket-Accept`.
    Http1 { accept: String },
    /// HTTP/2 extended CONNECT with `:protocol = websocket`: answer `200`.
    Http2,
}

/// Whether any comma-separated token of the `name` headers equals `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks the request as RFC 6455 §4.2.1 (or RFC 8441 §4–5) requires.
pub(crate) fn validate<B>(req: &Request<B>) -> Result<Upgrade, Refusal> {
    let headers = req.headers();
    let h2 = req.version() == Version::HTTP_2;
    if h2 {
        let protocol = req.extensions().get::<hyper::ext::Protocol>();
        if req.method() != Method::CONNECT || protocol.map(|p| p.as_str()) != Some("websocket") {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "WebSocket over HTTP/2 needs an extended CONNECT with :protocol websocket (RFC 8441)",
            ));
        }
    } else {
        if req.method() != Method::GET {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket handshake is a GET request",
            ));
        }
        if req.version() < Version::HTTP_11 {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "a WebSocket handshake needs HTTP/1.1 or later",
            ));
        }
        if !has_token(headers, UPGRADE, "websocket") {
            return Err(refuse(
                StatusCode::UPGRADE_REQUIRED,
                "this endpoint speaks WebSocket: send Upgrade: websocket",
            ));
        }
        if !has_token(headers, CONNECTION, "upgrade") {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "a WebSocket handshake needs Connection: Upgrade",
            ));
        }
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(refuse(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is supported (Sec-WebSocket-Version: 13)",
        ));
    }
    if h2 {
        return Ok(Upgrade::Http2);
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key"))?;
    // The key is the base64 of 16 bytes: 24 characters ending in "==".
    let valid = key.len() == 24
        && key.as_bytes().ends_with(b"==")
        && key.as_bytes()[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    if !valid {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key is not the base64 of 16 bytes",
        ));
    }
    Ok(Upgrade::Http1 {
        accept: tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
    })
}

/// Who may open a connection from a browser page.
///
/// Browsers send cookies with WebSocket handshakes to any origin and do not apply CORS to them,
/// so a page on another site could act as the user (cross-site WebSocket hijacking). A request
/// whose `Origin` is neither the server's own (same host and port as `Host`, when
/// `same_origin`) nor in `allowed` is refused with `403`. Requests without `Origin` come from
/// non-browser clients and are accepted.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Accept pages served by this server itself (`Origin` host:port equal to `Host`).
    pub same_origin: bool,
    /// Other accepted origins.
    pub allowed: Origins,
}

impl Default for OriginPolicy {
    /// Same-origin pages only.
    fn default() -> Self {
        Self {
            same_origin: true,
            allowed: Origins::List(Vec::new()),
        }
    }
}

impl OriginPolicy {
    /// Every origin: only for endpoints that serve public data and act on no credentials.
    #[must_use]
    pub fn any() -> Self {
        Self {
            same_origin: true,
            allowed: Origins::Any,
        }
    }

    /// Same-origin pages and `allowed`.
    #[must_use]
    pub fn allow(allowed: Origins) -> Self {
        Self {
            same_origin: true,
            allowed,
        }
    }

    pub(crate) fn check<B>(&self, req: &Request<B>) -> Result<(), Refusal> {
        let Some(origin) = req.headers().get(ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("");
        if self.allowed.allows(origin) {
            return Ok(());
        }
        if self.same_origin {
            let host = req
                .headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()));
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest.trim_end_matches('/'));
            if let (Some(host), Some(origin_host)) = (host, origin_host) {
                if host.eq_ignore_ascii_case(origin_host) {
                    return Ok(());
                }
            }
        }
        Err(refuse(
            StatusCode::FORBIDDEN,
            format!("origin {origin:?} is not allowed to open a WebSocket here"),
        ))
    }
}

/// The first of the client's offered subprotocols that the server supports.
pub(crate) fn negotiate<'a>(headers: &HeaderMap, supported: &'a [String]) -> Option<&'a str> {
    let offered: Vec<&str> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    offered
        .iter()
        .find_map(|o| supported.iter().find(|s| s.as_str() == *o))
        .map(String::as_str)
}

/// The header of a `101` answer.
pub(crate) const ACCEPT: http::HeaderName = SEC_WEBSOCKET_ACCEPT;

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_req() -> http::request::Builder {
        Request::get("/ws")
            .header("host", "example.test:8080")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    #[test]
    fn rfc_6455_sample_key_and_refusals() {
        let ok = validate(&upgrade_req().body(()).unwrap()).unwrap();
        // The example of RFC 6455 §1.3.
        assert_eq!(
            ok,
            Upgrade::Http1 {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
        let v12 = upgrade_req()
            .header("sec-websocket-version", "12")
            .body(())
            .unwrap();
        // `header` appends; build one with only 12.
        let mut v12 = v12;
        v12.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("12"));
        assert_eq!(
            validate(&v12).unwrap_err().status,
            StatusCode::UPGRADE_REQUIRED
        );
        let mut bad_key = upgrade_req().body(()).unwrap();
        bad_key
            .headers_mut()
            .insert("sec-websocket-key", HeaderValue::from_static("short"));
        assert_eq!(
            validate(&bad_key).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let mut post = upgrade_req().body(()).unwrap();
        *post.method_mut() = Method::POST;
        assert_eq!(
            validate(&post).unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let plain = Request::get("/ws").body(()).unwrap();
        assert_eq!(
            validate(&plain).unwrap_err().status,
            StatusCode::UPGRADE_REQUIRED
        );
    }

    #[test]
    fn origins_same_site_or_listed() {
        let policy = OriginPolicy::allow(Origins::list(["https://app.test"]));
        let with = |origin: &str| upgrade_req().header("origin", origin).body(()).unwrap();
        assert!(policy.check(&upgrade_req().body(()).unwrap()).is_ok());
        assert!(policy.check(&with("https://app.test")).is_ok());
        assert!(policy.check(&with("http://example.test:8080")).is_ok());
        assert_eq!(
            policy.check(&with("https://evil.test")).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(policy.check(&with("http://example.test:9090")).is_err());
        let strict = OriginPolicy {
            same_origin: false,
            allowed: Origins::List(Vec::new()),
        };
        assert!(strict.check(&with("http://example.test:8080")).is_err());
    }

    #[test]
    fn subprotocols_pick_the_first_offered_supported() {
        let mut h = HeaderMap::new();
        h.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, push.v1"),
        );
        let supported = vec!["push.v1".to_owned()];
        assert_eq!(negotiate(&h, &supported), Some("push.v1"));
        assert_eq!(negotiate(&HeaderMap::new(), &supported), None);
    }
}
