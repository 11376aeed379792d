//! What every technique counts, through the [`metrics`](https://docs.rs/metrics) facade when
//! the `metrics` feature is on (a no-op otherwise, costing nothing).
//!
//! Every series has the label `technique` (`sse`, `stream`, `poll`, `longpoll`, `ws`, `h2`):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `push_answers_total` | counter | answers, labelled `status` (`200`, `204`, `304`, …) |
//! | `push_refusals_total` | counter | refused requests, labelled `reason`: `unauthorized` (401), `forbidden` (403), `bad_request` (400), `method` (405), `conflict` (409), `too_large` (413), `rate_limited` (429), `unavailable` (503: a limit, shutdown, or the hub) |
//! | `push_open` | gauge | streams, held requests and sockets open now |
//! | `push_deliveries_total` | counter | events written to clients |
//! | `push_bytes_total` | counter | body bytes written (frames and answers) |
//! | `push_gaps_total` | counter | gaps told to clients (start or mid-stream) |
//! | `push_missed_total` | counter | events those gaps skipped |
//! | `push_resets_total` | counter | resets told to clients |
//!
//! The hub's own figures ([`Hub::stats`](push_core::Hub::stats)) are gauges set by
//! [`record_hub`]: call it before each scrape (`push_hub_topics`, `push_hub_subscriptions`,
//! `push_hub_retained_events`, `push_hub_retained_bytes`, `push_hub_published_total`).
//!
//! Handles are registered once per endpoint and shared by its streams, so counting costs an
//! atomic add per event and stream, and nothing when no recorder is installed.

use http::StatusCode;
use push_core::Outcome;

/// One technique's handles; cheap to clone (one pointer with the `metrics` feature, nothing
/// without). With the `tracing` feature it also carries the technique's name, for the
/// [`logs`](crate::logs) of its streams.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meters {
    #[cfg(feature = "metrics")]
    inner: Option<std::sync::Arc<Handles>>,
    #[cfg(feature = "tracing")]
    technique: &'static str,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Handles {
    technique: &'static str,
    open: metrics::Gauge,
    deliveries: metrics::Counter,
    bytes: metrics::Counter,
    gaps: metrics::Counter,
    missed: metrics::Counter,
    resets: metrics::Counter,
}

impl Meters {
    /// The handles of `technique`, registered with the installed recorder.
    #[must_use]
    pub(crate) fn new(technique: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        let inner = {
            let labels = [("technique", technique)];
            Some(std::sync::Arc::new(Handles {
                technique,
                open: metrics::gauge!("push_open", &labels),
                deliveries: metrics::counter!("push_deliveries_total", &labels),
                bytes: metrics::counter!("push_bytes_total", &labels),
                gaps: metrics::counter!("push_gaps_total", &labels),
                missed: metrics::counter!("push_missed_total", &labels),
                resets: metrics::counter!("push_resets_total", &labels),
            }))
        };
        #[cfg(not(any(feature = "metrics", feature = "tracing")))]
        let _ = technique;
        Self {
            #[cfg(feature = "metrics")]
            inner,
            #[cfg(feature = "tracing")]
            technique,
        }
    }

    /// The technique's name (`sse`, `ws`, …) for the logs; empty without the `tracing`
    /// feature, which is the only user.
    pub(crate) fn technique(&self) -> &'static str {
        #[cfg(feature = "tracing")]
        return self.technique;
        #[cfg(not(feature = "tracing"))]
        ""
    }

    /// An answer went out with `status`: counted, and as a refusal when it is one.
    pub(crate) fn answered(&self, status: StatusCode) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.inner {
            let code = status.as_str().to_owned();
            metrics::counter!("push_answers_total", "technique" => h.technique, "status" => code)
                .increment(1);
            if let Some(reason) = refusal(status) {
                metrics::counter!("push_refusals_total", "technique" => h.technique, "reason" => reason)
                    .increment(1);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = status;
    }

    /// An answer: its status (see [`answered`](Self::answered)) and, for a complete body, its
    /// bytes. Streams count their bytes as they write them.
    pub(crate) fn answer<B: http_body::Body>(&self, res: &http::Response<B>) {
        self.answered(res.status());
        if let Some(bytes) = res.body().size_hint().exact() {
            self.delivered(0, usize::try_from(bytes).unwrap_or(usize::MAX));
        }
    }

    /// A stream, held request or socket opened (`1`) or closed (`-1`).
    pub(crate) fn open(&self, delta: f64) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.inner {
            h.open.increment(delta);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = delta;
    }

    /// `events` events written, in `bytes` bytes (bytes may be written without events).
    pub(crate) fn delivered(&self, events: u64, bytes: usize) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.inner {
            if events > 0 {
                h.deliveries.increment(events);
            }
            h.bytes.increment(bytes as u64);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (events, bytes);
    }

    /// An outcome told to a client.
    pub(crate) fn outcome(&self, outcome: Outcome) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.inner {
            match outcome {
                Outcome::Gap { missed } => {
                    h.gaps.increment(1);
                    h.missed.increment(missed);
                }
                Outcome::Reset => h.resets.increment(1),
                Outcome::Resumed => {}
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = outcome;
    }
}

/// The refusal reason of an answer's status, if it is one.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn refusal(status: StatusCode) -> Option<&'static str> {
    Some(match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        405 => "method",
        409 => "conflict",
        413 => "too_large",
        429 => "rate_limited",
        503 => "unavailable",
        _ => return None,
    })
}

/// Sets the hub's gauges from [`Hub::stats`](push_core::Hub::stats); call it before a scrape.
pub fn record_hub(hub: &push_core::Hub) {
    #[cfg(feature = "metrics")]
    {
        let stats = hub.stats();
        metrics::gauge!("push_hub_topics").set(stats.topics as f64);
        metrics::gauge!("push_hub_subscriptions").set(stats.subscribers as f64);
        metrics::gauge!("push_hub_retained_events").set(stats.retained_events as f64);
        metrics::gauge!("push_hub_retained_bytes").set(stats.retained_bytes as f64);
        metrics::counter!("push_hub_published_total").absolute(stats.published);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = hub;
}
