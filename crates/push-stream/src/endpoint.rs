//! The streaming endpoint: request in, one long NDJSON response out.

use std::future::Future;

use http::{Request, Response};
use push_core::{Hub, Topic};
use push_http::json::Ndjson;
use push_http::{Endpoint, Settings};

/// Settings of a [`Streamer`] endpoint.
///
/// | setting | default |
/// |---|---|
/// | [`heartbeat`](Self::heartbeat) | a `{"heartbeat":MS}` line after 15 s of silence |
/// | [`accel_buffering_header`](Self::accel_buffering_header) | `X-Accel-Buffering: no` sent |
/// | [`max_streams`](Self::max_streams) | 10,000 open streams, then `503` |
/// | [`quota`](Self::quota) | 1,000 streams and 1,000 topics per client, then `429` ([`Quota`](push_http::Quota)) |
/// | [`retry_after`](Self::retry_after) | `Retry-After: 5` on `503` |
/// | [`resume_param`](Self::resume_param) | `since` |
#[derive(Debug, Clone, Default)]
pub struct StreamConfig {
    shared: Settings,
}

push_http::shared_settings!(StreamConfig {
    heartbeat,
    accel_buffering_header,
    max_streams,
    quota,
    retry_after,
    resume_param,
});

/// An NDJSON streaming endpoint over a [`Hub`]: cheap to clone, one per server (its stream
/// limit is shared by its clones).
#[derive(Debug, Clone)]
pub struct Streamer {
    core: Endpoint,
}

push_http::endpoint_methods!(Streamer: StreamConfig { new, authorize, open });

impl Streamer {
    /// An endpoint with `config`.
    #[must_use]
    pub fn with_config(hub: Hub, config: StreamConfig) -> Self {
        Self {
            core: Endpoint::new(hub, "stream", config.shared),
        }
    }

    /// Answers `req` with the NDJSON stream of `topic`.
    ///
    /// `GET` and `HEAD` get `200` with `application/x-ndjson`; another method gets `405`. At the
    /// stream limit, or when the hub is closed or unavailable, the answer is `503` with
    /// `Retry-After`; a client over its [`quota`](StreamConfig::quota) gets `429` with
    /// `Retry-After`. The stream starts after the [`resume_param`](StreamConfig::resume_param)
    /// cursor, else with only new events (a cursor that does not parse is a reset, never an
    /// error). The first line is the resume outcome, then one line per event as it is
    /// published (each its own chunk or DATA frame, flushed at once), heartbeats when idle, and
    /// an `{"end":"shutdown",…}` line when the hub is closed, or `{"end":"expired",…}` when the
    /// authorizer's grant expires.
    ///
    /// The request is taken by value and its body dropped at once, so the returned future is
    /// `Send` and `'static` whatever the body type.
    pub fn respond<B>(
        &self,
        topic: &Topic,
        req: Request<B>,
    ) -> impl Future<Output = Response<StreamBody>> + Send + 'static {
        self.core.stream(topic, req, None, Ndjson)
    }

    /// Answers `req` with one NDJSON stream of several `topics` (at most
    /// [`MAX_TOPICS`](push_http::topics::MAX_TOPICS)).
    ///
    /// The stream starts with one outcome line per topic (`{"topic":T,"outcome":…,"cursor":C}`),
    /// then carries every event as its object with its topic (`{"topic":T,"id":C,…}`), per-topic
    /// gaps, `{"topic":T,"complete":true,"cursor":C}` when a topic completes, and ends with
    /// `{"end":R,"cursor":POSITION}`. To resume, ask with `?since=` the
    /// [combined cursor](push_http::topics): each topic's last `id` (or outcome cursor), in the
    /// request's order, joined by `,`. The grant must cover every topic.
    pub fn respond_topics<B>(
        &self,
        topics: &[Topic],
        req: Request<B>,
    ) -> impl Future<Output = Response<StreamBody>> + Send + 'static {
        self.core.stream_topics(topics, req, None, Ndjson)
    }
}

/// The response body of [`Streamer::respond`] and [`Streamer::respond_topics`]: the NDJSON
/// stream, or a short text for an error (`StreamBody::from(bytes)`).
pub type StreamBody = push_http::StreamBody<Ndjson>;
