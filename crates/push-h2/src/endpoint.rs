//! Event push: a subscription request whose events arrive as pushed responses.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::Full;
use push_core::{Event, Hub, PayloadKind, StartFrom, Topic};
use push_http::{Authorizer, Limiter, Quota};
use std::time::Duration;

use crate::server::PushEvents;

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
    hub: Hub,
    resume_param: Arc<str>,
    authorizer: Option<Authorizer>,
    meters: push_http::Meters,
    limiter: Limiter,
}

impl Events {
    /// An endpoint over `hub`, reading the cursor from `since`.
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        let meters = push_http::Meters::new("h2");
        Self {
            hub,
            resume_param: Arc::from("since"),
            authorizer: None,
            // Not metered: the driver counts what is open (`push_open`) while it delivers.
            limiter: Limiter::new(10_000),
            meters,
        }
    }

    /// Caps the subscriptions open at once at `max` (`503` past it; 10,000 by default) and
    /// what one client may hold at `quota` (`429` past it; see [`Quota`]).
    #[must_use]
    pub fn limits(mut self, max: usize, quota: Quota) -> Self {
        self.limiter = Limiter::new(max).quota(quota);
        self
    }

    /// Runs `authorizer` before every subscription: a client it refuses, or one whose grant
    /// does not cover the topic, gets `401` or `403`.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
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
        let (parts, _) = req.into_parts();
        let from = push_http::start_from(&parts, None, &self.resume_param, StartFrom::Newest);
        let base = parts.uri.path().trim_end_matches('/').to_owned();
        let (hub, topic, auth) = (self.hub.clone(), topic.clone(), self.authorizer.clone());
        let (meters, limiter) = (self.meters.clone(), self.limiter.clone());
        async move {
            let res = match push_http::check_read(auth.as_ref(), &parts, &topic).await {
                Ok(grant) => match limiter.admit(&parts, &grant, 1, Duration::from_secs(5)) {
                    Ok(permit) => {
                        let (expires, meters) = (grant.deadline(), meters.clone());
                        let place = (base, expires, meters, permit);
                        Self::subscribe(&hub, &topic, from, place).await
                    }
                    Err(res) => res,
                },
                Err(refusal) => refusal,
            };
            meters.answer(&res);
            res
        }
    }

    async fn subscribe(
        hub: &Hub,
        topic: &Topic,
        from: StartFrom,
        place: (
            String,
            Option<tokio::time::Instant>,
            push_http::Meters,
            push_http::Permit,
        ),
    ) -> Response<EventsBody> {
        let (base, expires, meters, permit) = place;
        let sub = match hub.subscribe(topic, from).await {
            Ok(sub) => sub,
            Err(e) => {
                return push_http::unavailable(std::time::Duration::from_secs(5), &format!("{e}\n"))
            }
        };
        let mut res = Response::new(Full::new(Bytes::new()));
        res.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        res.extensions_mut()
            .insert(PushEvents::new(sub, base, expires, meters, permit));
        res
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
