//! Event push: a subscription request whose events arrive as pushed responses.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use push_core::{Event, Hub, PayloadKind, Topic};
use push_http::json::Ndjson;
use push_http::{Endpoint, Settings};

/// The header of a pushed event response carrying its cursor.
pub const EVENT_ID: &str = "push-event-id";
/// The header carrying the event type, when it has one.
pub const EVENT_TYPE: &str = "push-event-type";
/// The header carrying the publish time, in milliseconds since the Unix epoch.
pub const EVENT_TIME: &str = "push-event-time";

/// The event-push endpoint: `GET /h2/{topic}?since=CURSOR` over HTTP/2.
///
/// The answer is `200` with an `application/x-ndjson` body that stays open: its first line is
/// the resume outcome (`{"outcome":…,"cursor":…}`, as push-stream's). Each event then arrives
/// as a response pushed on that stream: a PUSH_PROMISE for `GET {path}/{cursor}`, answered with
/// the payload as body and [`EVENT_ID`], [`EVENT_TYPE`], [`EVENT_TIME`] headers, so any HTTP/2
/// client library receives events as independent responses. A client that disables push (or
/// refuses a pushed stream) gets the events on the open body instead, one JSON object per line:
/// nothing is lost either way. When the hub closes, the body ends with
/// `{"end":"shutdown","cursor":…}`; when the topic is complete, with `{"end":"complete",…}`;
/// when the authorizer's grant expires, with `{"end":"expired","cursor":…}`.
#[derive(Debug, Clone)]
pub struct Events {
    core: Endpoint,
}

/// Settings of an [`Events`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`max_streams`](Self::max_streams) | 10,000 subscriptions open at once, then `503` |
/// | [`quota`](Self::quota) | 1,000 subscriptions and 1,000 topics per client, then `429` ([`Quota`](push_http::Quota)) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
/// | [`resume_param`](Self::resume_param) | `since` |
#[derive(Debug, Clone)]
pub struct EventsConfig {
    shared: Settings,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let mut shared = Settings::default();
        // The connection's PINGs keep it alive; the body carries only what the client reads.
        shared.heartbeat = None;
        shared.accel_buffering_header = false;
        Self { shared }
    }
}

push_http::shared_settings!(EventsConfig {
    max_streams,
    quota,
    retry_after,
    resume_param,
});

push_http::endpoint_methods!(Events: EventsConfig { new, authorize, open });

impl Events {
    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: EventsConfig) -> Self {
        Self {
            core: Endpoint::new(hub, "h2", config.shared),
        }
    }

    /// Answers a subscription request for `topic`. Served by
    /// [`Builder::serve_connection`](crate::Builder::serve_connection), which does the pushing; another server
    /// sends the headers and an empty body.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type.
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<EventsBody>> + Send + 'static {
        let base = req.uri().path().trim_end_matches('/').to_owned();
        let stream = self.core.stream(topic, req, None, Ndjson);
        async move {
            let (mut head, mut body) = stream.await.into_parts();
            if head.status != StatusCode::OK {
                // A refusal's text, complete at once.
                let mut cx = Context::from_waker(Waker::noop());
                let text = match body.poll_next(&mut cx) {
                    Poll::Ready(Some((text, _))) => text,
                    _ => Bytes::new(),
                };
                return Response::from_parts(head, Full::new(text));
            }
            head.extensions.insert(PushEvents::new(body, base));
            Response::from_parts(head, Full::new(Bytes::new()))
        }
    }
}

/// A response extension that turns the response into an event subscription: the response's
/// headers go out as usual, its body stays open for the stream's lines, and every event is
/// pushed as its own response. Made by [`Events::respond`].
#[derive(Debug, Clone)]
pub(crate) struct PushEvents {
    // Response extensions must be `Clone`: the stream is taken out once by the driver.
    inner: Arc<Mutex<Option<(EventStream, String)>>>,
}

/// The subscription's frames: its NDJSON lines, and the events they carry.
pub(crate) type EventStream = push_http::StreamBody<Ndjson>;

impl PushEvents {
    fn new(stream: EventStream, base: String) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Some((stream, base)))),
        }
    }

    /// The stream and the path its events are promised under, once.
    pub(crate) fn take(&self) -> Option<(EventStream, String)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// The head of a pushed event response.
pub(crate) fn pushed_response(event: &Event) -> Response<()> {
    let mut res = Response::new(());
    let h = res.headers_mut();
    let content_type = match event.kind() {
        PayloadKind::Json => "application/json",
        PayloadKind::Binary => "application/octet-stream",
        _ => "text/plain; charset=utf-8",
    };
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::try_from(event.id().to_string()) {
        h.insert(EVENT_ID, v);
    }
    if let Some(t) = event
        .event_type()
        .and_then(|t| HeaderValue::try_from(t.as_str()).ok())
    {
        h.insert(EVENT_TYPE, t);
    }
    h.insert(EVENT_TIME, HeaderValue::from(event.published_at_millis()));
    res
}

/// The response body of [`Events::respond`](crate::Events::respond): one complete answer.
pub type EventsBody = Full<Bytes>;
