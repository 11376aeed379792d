//! The publish endpoint: a `POST` body becomes one event.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use push_core::{EventType, Hub, NewEvent, PayloadKind, Topic};

use crate::access::{Authorizer, Refusal};
use crate::answer::{error_response, method_not_allowed, text};
use crate::logs;
use crate::query::query_value;

/// The request header naming the event's type (`event` in the query works too).
pub const EVENT_TYPE_HEADER: &str = "push-event-type";

/// The request header that makes a publish idempotent
/// ([`NewEvent::with_idempotency_key`]): a retry with the same key answers the first
/// publish's cursor.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Settings of a [`Publisher`].
///
/// | setting | default |
/// |---|---|
/// | [`max_body`](Self::max_body) | 64 KiB, then `413` |
/// | [`body_timeout`](Self::body_timeout) | 10 s for the whole body, then `408` |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishConfig {
    /// The largest body accepted. A request whose `Content-Length` says more is refused at
    /// once, before any of its body is read.
    pub(crate) max_body: usize,
    /// The longest the whole body may take to arrive, counted from when the request head was
    /// answered to: a client trickling its body cannot hold the request (and its connection)
    /// longer than this.
    pub(crate) body_timeout: Duration,
    /// The `Retry-After` sent with `503`.
    pub(crate) retry_after: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            max_body: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(5),
        }
    }
}

impl PublishConfig {
    /// Sets [`max_body`](Self::max_body).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets [`body_timeout`](Self::body_timeout).
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets [`retry_after`](Self::retry_after).
    #[must_use]
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }
}

/// The publish endpoint: `POST /topics/{topic}` with the payload as body, answered
/// `{"id":"CURSOR"}`. The payload's kind comes from `Content-Type`:
/// `application/json` publishes JSON that every JSON envelope carries as a value. With an
/// `Idempotency-Key` header, a retried publish answers the first one's cursor instead of
/// storing the event twice (within the hub's
/// [`idempotency_window`](push_core::HubConfig::idempotency_window), 5 minutes by default).
///
/// | answer | when |
/// |---|---|
/// | `200` `{"id":"CURSOR"}` | published |
/// | `202` `{"outcome":"unknown","error":TEXT,"retry":…}` | the backend took the publish and did not answer (a response timeout, a connection lost in flight, a replica acknowledgement that did not come): it may be stored, now or later. Not a failure: repeat the request with the same [`IDEMPOTENCY_KEY_HEADER`], which answers `200` with the stored cursor or stores it once ([`error_response`](crate::error_response) says why `202`) |
/// | `405` + `Allow: POST` | another method (`Allow: DELETE` for [`delete`](Self::delete)) |
/// | `400` | an invalid [`IDEMPOTENCY_KEY_HEADER`] (1 to 128 visible ASCII characters), an invalid event type ([`EVENT_TYPE_HEADER`] or `?event=`), or a body that is not what its `Content-Type` says (JSON that does not parse, `text/*` that is not UTF-8) |
/// | `401` / `403` | the [`Authorizer`] refused, or its grant does not cover publishing to the topic |
/// | `403` | a cross-site browser request (`Origin` of another host, or `Sec-Fetch-Site` not `same-origin`/`none`) without an `Authorization` header, whatever its cookies; a grant from a token in the URL (`?access_token=`), which grants reading only |
/// | `408` | the body did not arrive within [`body_timeout`](PublishConfig::body_timeout) |
/// | `409` | the topic is complete ([`Hub::complete`](push_core::Hub::complete)) |
/// | `413` | a body over [`max_body`](PublishConfig::max_body), or a `Content-Length` over it (answered before reading the body) |
/// | `503` + `Retry-After` | the hub is closed, at its topic cap, or unreachable; nothing was stored |
///
/// Without an authorizer anyone who can reach the endpoint may publish (fine on loopback or
/// behind the application's own checks), but a page on another site cannot make a visitor's
/// browser do it: a cross-site request is refused unless it carries `Authorization`, which a
/// browser sends across sites only after a CORS preflight this endpoint does not grant (a
/// cookie alone never suffices, even one an authorizer would accept). With an authorizer, the
/// grant's `publish` patterns decide, and its `manage` patterns for finishing and deleting.
///
/// The same endpoint finishes a topic ([`complete`](Self::complete)) and deletes one
/// ([`delete`](Self::delete)), admitted the same way. In axum:
///
/// ```
/// use axum::extract::{Path, Request, State};
/// use axum::response::IntoResponse;
/// use axum::routing::post;
/// use push_core::{Hub, Topic};
/// use push_http::Publisher;
///
/// async fn publish(State(p): State<Publisher>, Path(t): Path<Topic>, req: Request) -> impl IntoResponse {
///     p.respond(&t, req).await
/// }
/// async fn complete(State(p): State<Publisher>, Path(t): Path<Topic>, req: Request) -> impl IntoResponse {
///     p.complete(&t, req).await
/// }
/// async fn delete(State(p): State<Publisher>, Path(t): Path<Topic>, req: Request) -> impl IntoResponse {
///     p.delete(&t, req).await
/// }
///
/// let app: axum::Router = axum::Router::new()
///     .route("/topics/{topic}", post(publish).delete(delete))
///     .route("/topics/{topic}/complete", post(complete))
///     .with_state(Publisher::new(Hub::memory()));
/// ```
#[derive(Debug, Clone)]
pub struct Publisher {
    hub: Hub,
    config: Arc<PublishConfig>,
    authorizer: Option<Authorizer>,
}

impl Publisher {
    /// An endpoint with the default [`PublishConfig`].
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self::with_config(hub, PublishConfig::default())
    }

    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: PublishConfig) -> Self {
        Self {
            hub,
            config: Arc::new(config),
            authorizer: None,
        }
    }

    /// Publishing needs a grant from `authorizer` whose `publish` patterns cover the topic.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Answers a publish request for `topic`; see [`Publisher`] for the answers.
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send + 'static
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (this, topic) = (self.clone(), topic.clone());
        async move {
            let (parts, body) = req.into_parts();
            if let Err(res) = this.admit(&parts, &topic, Act::Publish).await {
                return res;
            }
            let head = match PublishHead::from_parts(&parts) {
                Ok(head) => head,
                Err(e) => {
                    let res = text(StatusCode::BAD_REQUEST, &format!("{e}\n"));
                    return refused(&topic, "bad_request", res);
                }
            };
            let body = match this.read_body(&parts, body).await {
                Ok(body) => body,
                Err(res) => {
                    let reason = match res.status() {
                        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                        StatusCode::REQUEST_TIMEOUT => "timeout",
                        _ => "bad_request",
                    };
                    return refused(&topic, reason, res);
                }
            };
            drop(parts);
            let event = match head.event(body) {
                Ok(event) => event,
                Err(e) => {
                    let res = text(StatusCode::BAD_REQUEST, &format!("{e}\n"));
                    return refused(&topic, "bad_request", res);
                }
            };
            match this.hub.publish(&topic, event).await {
                Ok(event) => json(format!("{{\"id\":\"{}\"}}\n", event.id())),
                Err(e) => hub_refused(&topic, &e, this.config.retry_after),
            }
        }
    }

    /// Answers a request to finish `topic` (`POST /topics/{t}/complete`, say) with
    /// [`Hub::complete`](push_core::Hub::complete): `200` `{"end":"CURSOR"}`, the cursor of the
    /// end every reader gets after the rest. It is admitted as a publish is (`POST`, the
    /// cross-site rule), but by the grant's [`manage`](crate::Grant::manage) patterns, which
    /// publishing does not imply; a hub error is answered by
    /// [`error_response`](crate::error_response). Finishing a finished topic answers its end
    /// again.
    pub fn complete<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send + 'static {
        self.manage(topic, req, Act::Complete)
    }

    /// Answers a request to delete `topic` (`DELETE /topics/{t}`) with
    /// [`Hub::delete`](push_core::Hub::delete): `200` `{"deleted":true}`, or `false` when
    /// there was no such topic. Its readers end, and the name starts a new history: a cursor
    /// from before is answered as a reset. Admitted as [`complete`](Self::complete) is, with
    /// `DELETE`.
    pub fn delete<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send + 'static {
        self.manage(topic, req, Act::Delete)
    }

    /// Finishes or deletes `topic`, admitted by the grant's `manage` patterns.
    fn manage<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
        op: Act,
    ) -> impl Future<Output = Response<Full<Bytes>>> + Send + 'static {
        let (this, topic) = (self.clone(), topic.clone());
        let (parts, _body) = req.into_parts();
        async move {
            if let Err(res) = this.admit(&parts, &topic, op).await {
                return res;
            }
            let done = if op == Act::Delete {
                (this.hub.delete(&topic).await)
                    .map(|existed| format!("{{\"deleted\":{existed}}}\n"))
            } else {
                (this.hub.complete(&topic).await).map(|end| format!("{{\"end\":\"{end}\"}}\n"))
            };
            match done {
                Ok(body) => json(body),
                Err(e) => hub_refused(&topic, &e, this.config.retry_after),
            }
        }
    }

    /// The body, bounded in size (a declared length over the limit is refused unread) and in
    /// time.
    async fn read_body<B>(&self, parts: &Parts, body: B) -> Result<Bytes, Response<Full<Bytes>>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = self.config.max_body;
        let too_large = |what: &str| {
            let reason = format!("{what} is over the limit of {limit} bytes\n");
            text(StatusCode::PAYLOAD_TOO_LARGE, &reason)
        };
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large("the declared Content-Length"));
        }
        let timeout = self.config.body_timeout;
        let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
        match read {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large("the body")),
            Ok(Err(e)) => Err(text(
                StatusCode::BAD_REQUEST,
                &format!("the body could not be read: {e}\n"),
            )),
            Err(_) => Err(text(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {} s\n",
                    timeout.as_secs_f64()
                ),
            )),
        }
    }

    /// The method, the cross-site rule, and the authorizer's grant.
    ///
    /// A browser sends cookies with a cross-site `POST` or `DELETE` (a form, a `fetch` without
    /// preflight) but never an `Authorization` header it was not allowed to send: so a
    /// cross-site request is refused unless its credentials are in `Authorization`, whether or
    /// not an authorizer is set and whatever it would grant a cookie.
    async fn admit(
        &self,
        parts: &Parts,
        topic: &Topic,
        act: Act,
    ) -> Result<(), Response<Full<Bytes>>> {
        let method = if act == Act::Delete {
            http::Method::DELETE
        } else {
            http::Method::POST
        };
        if parts.method != method {
            let res = if act == Act::Delete {
                method_not_allowed("DELETE", "delete a topic with DELETE\n")
            } else {
                method_not_allowed("POST", "publish or complete with POST\n")
            };
            return Err(refused(topic, "method", res));
        }
        if cross_site(parts) && !parts.headers.contains_key(AUTHORIZATION) {
            // Not a token's scope: a plain 403, no challenge.
            let reason = "a cross-site request may publish, complete or delete only with \
                          credentials in Authorization\n";
            return Err(refused(
                topic,
                "origin",
                text(StatusCode::FORBIDDEN, reason),
            ));
        }
        let Some(authorizer) = &self.authorizer else {
            return Ok(());
        };
        let grant = authorizer.grant(parts).await.map_err(|r| {
            let res = r.response();
            let reason = if res.status() == StatusCode::FORBIDDEN {
                "forbidden"
            } else {
                "unauthorized"
            };
            refused(topic, reason, res)
        })?;
        let (allowed, what) = match act {
            Act::Publish => (&grant.publish, "publishing to"),
            Act::Complete | Act::Delete => (&grant.manage, "finishing or deleting"),
        };
        if !allowed.allows(topic) {
            let mut reason = format!("{what} {:?} is not granted", topic.as_str());
            if parts
                .uri
                .query()
                .is_some_and(|q| query_value(q, "access_token").is_some())
            {
                reason.push_str(
                    " (a token in the URL grants reading only: send it in Authorization: Bearer)",
                );
            }
            return Err(refused(
                topic,
                "forbidden",
                Refusal::Forbidden(reason).response(),
            ));
        }
        Ok(())
    }
}

/// `res`, [logged](crate::logs) as the refusal of a publish (or a complete, a delete) of
/// `topic` for `reason`.
fn refused(
    topic: &Topic,
    reason: &'static str,
    res: Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    logs::refused(
        "publish",
        std::slice::from_ref(topic),
        reason,
        res.status(),
        None,
    );
    res
}

/// [`error_response`] for a hub `error` met on `topic`, [logged](crate::logs) with the error.
fn hub_refused(
    topic: &Topic,
    error: &push_core::Error,
    retry_after: Duration,
) -> Response<Full<Bytes>> {
    let res = error_response(error, retry_after);
    let reason = match error {
        push_core::Error::OutcomeUnknown(_) => "outcome_unknown",
        push_core::Error::EventTooLarge { .. } => "too_large",
        push_core::Error::Complete => "finished",
        push_core::Error::Payload { .. } => "bad_request",
        push_core::Error::Unsupported(_) => "unsupported",
        push_core::Error::Closed => "shutdown",
        _ => "unavailable",
    };
    let topics = std::slice::from_ref(topic);
    logs::refused("publish", topics, reason, res.status(), Some(error));
    res
}

/// What a request to the publisher does to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Publishes (`POST`; the grant's `publish`).
    Publish,
    /// Finishes the topic (`POST`; the grant's `manage`).
    Complete,
    /// Deletes the topic (`DELETE`; the grant's `manage`).
    Delete,
}

/// A `200` `application/json` answer.
fn json(body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Whether a browser sent this from another site: `Sec-Fetch-Site` other than `same-origin`
/// or `none`, or an `Origin` whose host is not the request's.
fn cross_site(parts: &Parts) -> bool {
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = parts.headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str));
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    !matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The payload kind a publish request's `Content-Type` names: `application/json` or any
/// `+json` type → JSON, `application/octet-stream` → binary, `text/*` → text; any other type,
/// or none (`curl -d` sends a form type), leaves it to the payload: text when it is UTF-8,
/// else binary. Check the body with [`NewEvent::of_kind`].
#[must_use]
pub(crate) fn payload_kind(headers: &http::HeaderMap) -> Option<PayloadKind> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some(PayloadKind::Json),
        "application/octet-stream" => Some(PayloadKind::Binary),
        t if t.ends_with("+json") => Some(PayloadKind::Json),
        t if t.starts_with("text/") => Some(PayloadKind::Text),
        _ => None,
    }
}

/// What a publish request says about its event besides the body: the payload kind from
/// `Content-Type` ([`payload_kind`]), the type from [`EVENT_TYPE_HEADER`] or `?event=`, and the
/// [`IDEMPOTENCY_KEY_HEADER`]: what [`Publisher`] reads.
#[derive(Debug, Clone)]
pub(crate) struct PublishHead {
    kind: Option<PayloadKind>,
    event_type: Option<EventType>,
    idempotency_key: Option<String>,
}

impl PublishHead {
    /// Reads the request's head.
    ///
    /// # Errors
    ///
    /// An event type or idempotency key that is not valid (a `400`).
    pub(crate) fn from_parts(parts: &Parts) -> Result<Self, push_core::Error> {
        let idempotency_key = parts
            .headers
            .get(IDEMPOTENCY_KEY_HEADER)
            // A header that is not text is no valid key: refused with the event.
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
        Ok(Self {
            kind: payload_kind(&parts.headers),
            event_type: event_type(parts)?,
            idempotency_key,
        })
    }

    /// The event of `body`.
    ///
    /// # Errors
    ///
    /// A body that is not of its `Content-Type`'s kind, or an idempotency key that is not
    /// valid (a `400`).
    pub(crate) fn event(self, body: Bytes) -> Result<NewEvent, push_core::Error> {
        let mut event = match self.kind {
            Some(kind) => NewEvent::of_kind(kind, body)?,
            None => NewEvent::new(body),
        };
        if let Some(key) = &self.idempotency_key {
            event = event.with_idempotency_key(key)?;
        }
        if let Some(t) = self.event_type {
            event = event.with_type(t);
        }
        Ok(event)
    }
}

/// The event type from [`EVENT_TYPE_HEADER`] or the `event` query parameter.
fn event_type(parts: &Parts) -> Result<Option<EventType>, push_core::Error> {
    let header = parts
        .headers
        .get(EVENT_TYPE_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    let query = query_value(parts.uri.query().unwrap_or(""), "event").map(|v| v.into_owned());
    header.or(query).map(|t| EventType::new(&t)).transpose()
}
