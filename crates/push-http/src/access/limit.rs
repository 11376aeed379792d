//! A cap on concurrent connections, requests or streams, without waiting, with a quota per
//! client beside it.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Response, StatusCode};

use super::grant::Grant;
use crate::meters::Meters;

/// Who a request comes from, for the per-client [`Quota`]: the subject an authorizer vouched
/// for ([`Grant::subject`]), else the client's address, read from the request's extensions
/// (a [`SocketAddr`] the server inserted; an IPv6 address counts by its /64 prefix, which is
/// what one host is usually given). Opaque: a keyed hash, so holding one costs 8 bytes.
///
/// Without either, a request has no client and only the server-wide limit applies to it: a
/// server that wants quotas inserts the peer's address into each request, as the examples'
/// accept loop does (`req.extensions_mut().insert(peer)`; with axum, `ConnectInfo` copied
/// in by a middleware). Behind a reverse proxy, insert the client's address the proxy reports
/// (`Forwarded`, `X-Forwarded-For`, from a proxy you trust) instead of the proxy's own, or
/// every client counts as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Client(u64);

impl Client {
    /// The client of a request whose access check gave `grant`.
    #[must_use]
    pub(crate) fn of(parts: &Parts, grant: &Grant) -> Option<Self> {
        if let Some(subject) = &grant.subject {
            return Some(Self::hashed((0u8, subject.as_str())));
        }
        let addr = parts.extensions.get::<SocketAddr>()?;
        Some(Self::of_addr(addr.ip()))
    }

    /// The client at `ip` (an IPv6 address by its /64 prefix).
    #[must_use]
    pub(crate) fn of_addr(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::hashed((1u8, u128::from(u32::from(v4)))),
            IpAddr::V6(v6) => Self::hashed((2u8, u128::from(v6) >> 64)),
        }
    }

    fn hashed(value: impl Hash) -> Self {
        // Keyed per process, so that nobody can pick names that collide with another client's.
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        Self(KEYS.get_or_init(RandomState::new).hash_one(value))
    }
}

/// What one client may hold at once on one endpoint, so that no client can fill a limit meant
/// for everyone. Over it the client gets `429 Too Many Requests` with `Retry-After`; the
/// others are served.
///
/// | quota | default |
/// |---|---|
/// | [`streams`](Self::streams) | 1,000 open streams, held requests or connections per client |
/// | [`topics`](Self::topics) | 1,000 subscribed topics per client, over all its streams |
///
/// The defaults are a tenth of the default server-wide limits (10,000 streams, 10,000 topics
/// in the hub): generous for many users behind one address, small enough that one client
/// cannot take everything. Each endpoint counts its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quota {
    /// The most streams (held requests, WebSocket connections) one client holds open at once.
    pub(crate) streams: usize,
    /// The most topic subscriptions one client holds at once, summed over its streams (a
    /// stream of three topics holds three): what keeps one client from filling the hub's
    /// topic cap with topics it keeps subscribed.
    pub(crate) topics: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            streams: 1_000,
            topics: 1_000,
        }
    }
}

impl Quota {
    /// Sets [`streams`](Self::streams).
    #[must_use]
    pub fn streams(mut self, n: usize) -> Self {
        self.streams = n;
        self
    }

    /// Sets [`topics`](Self::topics).
    #[must_use]
    pub fn topics(mut self, n: usize) -> Self {
        self.topics = n;
        self
    }

    /// No quota: only the server-wide limit applies.
    #[must_use]
    pub fn unlimited() -> Self {
        Self {
            streams: usize::MAX,
            topics: usize::MAX,
        }
    }
}

/// Why a [`Limiter`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Over {
    /// The server-wide limit is reached: `503`, the server's fault.
    Server {
        /// The limit.
        limit: usize,
    },
    /// This client holds its quota of streams: `429`.
    Streams {
        /// The quota.
        limit: usize,
    },
    /// This client holds its quota of subscribed topics: `429`.
    Topics {
        /// The quota.
        limit: usize,
    },
}

impl std::fmt::Display for Over {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Over::Server { limit } => write!(f, "too many open streams (limit {limit})"),
            Over::Streams { limit } => {
                write!(f, "too many open streams from this client (quota {limit})")
            }
            Over::Topics { limit } => {
                write!(
                    f,
                    "too many subscribed topics for this client (quota {limit})"
                )
            }
        }
    }
}

impl Over {
    /// The status: `503` for the server's limit, `429` for a client's quota.
    #[must_use]
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Over::Server { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Over::Streams { .. } | Over::Topics { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The answer: [`status`](Self::status) with `Retry-After` and the reason as text.
    #[must_use]
    pub(crate) fn response<B: From<Bytes>>(&self, retry_after: Duration) -> Response<B> {
        let mut res = crate::answer::unavailable(retry_after, &format!("{self}\n"));
        *res.status_mut() = self.status();
        res
    }
}

/// Counts what is open and refuses more than `max` (`503`), and more than a client's
/// [`Quota`] (`429`): technique crates use one per endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    open: AtomicUsize,
    max: usize,
    quota: Quota,
    /// What each client holds, while it holds anything (an entry goes with its last permit),
    /// so the map is bounded by the open permits.
    clients: Mutex<HashMap<Client, Held>>,
    /// Mirrors `open` as the `push_open` gauge.
    meters: Meters,
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    streams: usize,
    topics: usize,
}

impl Limiter {
    /// A limiter allowing `max` at once and `quota` per client, counting what is open in
    /// `meters`.
    pub(crate) fn new(max: usize, quota: Quota, meters: Meters) -> Self {
        Self {
            inner: Arc::new(Inner {
                open: AtomicUsize::new(0),
                max,
                quota,
                clients: Mutex::default(),
                meters,
            }),
        }
    }

    /// Takes a place for `client` subscribing `topics` topics: refused at the server's limit or
    /// over the client's [`Quota`]. A request with no known client (`None`) meets only the
    /// server's limit.
    ///
    /// # Errors
    ///
    /// What was over.
    pub(crate) fn acquire(&self, client: Option<Client>, topics: usize) -> Result<Permit, Over> {
        let inner = &self.inner;
        if let Some(client) = client {
            let quota = inner.quota;
            let mut clients = inner.lock_clients();
            let held = clients.get(&client).copied().unwrap_or_default();
            if held.streams >= quota.streams {
                return Err(Over::Streams {
                    limit: quota.streams,
                });
            }
            if held.topics.saturating_add(topics) > quota.topics {
                return Err(Over::Topics {
                    limit: quota.topics,
                });
            }
            inner.take_place()?;
            let entry = clients.entry(client).or_default();
            entry.streams += 1;
            entry.topics += topics;
        } else {
            inner.take_place()?;
        }
        inner.meters.open(1.0);
        Ok(Permit {
            inner: inner.clone(),
            client,
            topics,
        })
    }

    /// [`acquire`](Self::acquire) for a request whose access check gave `grant`, reading
    /// `topics` topics, its client found by [`Client::of`]: the permit, or the answer
    /// ([`Over::response`]: `429` or `503`, with `retry_after`).
    ///
    /// # Errors
    ///
    /// The refusal's answer.
    pub(crate) fn admit<B: From<Bytes>>(
        &self,
        parts: &Parts,
        grant: &Grant,
        topics: usize,
        retry_after: Duration,
    ) -> Result<Permit, Response<B>> {
        self.acquire(Client::of(parts, grant), topics)
            .map_err(|over| over.response(retry_after))
    }

    /// How many places are taken.
    #[must_use]
    pub(crate) fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }
}

impl Inner {
    fn lock_clients(&self) -> std::sync::MutexGuard<'_, HashMap<Client, Held>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_place(&self) -> Result<(), Over> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| Over::Server { limit: self.max })
    }
}

/// A place taken under an endpoint's limits, given back on drop, with the topics its client
/// subscribed through it.
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Inner>,
    client: Option<Client>,
    topics: usize,
}

impl Permit {
    /// Counts `n` more topics for this permit's client (a WebSocket subscribing).
    ///
    /// # Errors
    ///
    /// The reason, to tell the client, when the client's quota of topics would be passed;
    /// nothing is counted then.
    pub fn add_topics(&mut self, n: usize) -> Result<(), String> {
        let Some(client) = self.client else {
            self.topics += n;
            return Ok(());
        };
        let limit = self.inner.quota.topics;
        let mut clients = self.inner.lock_clients();
        let held = clients.entry(client).or_default();
        if held.topics.saturating_add(n) > limit {
            return Err(Over::Topics { limit }.to_string());
        }
        held.topics += n;
        self.topics += n;
        Ok(())
    }

    /// Counts `n` fewer topics for this permit's client (a WebSocket unsubscribing).
    pub fn remove_topics(&mut self, n: usize) {
        let n = n.min(self.topics);
        self.topics -= n;
        if let Some(client) = self.client {
            if let Some(held) = self.inner.lock_clients().get_mut(&client) {
                held.topics = held.topics.saturating_sub(n);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(client) = self.client {
            let mut clients = self.inner.lock_clients();
            if let Some(held) = clients.get_mut(&client) {
                held.streams = held.streams.saturating_sub(1);
                held.topics = held.topics.saturating_sub(self.topics);
                if held.streams == 0 {
                    clients.remove(&client);
                }
            }
        }
        self.inner.open.fetch_sub(1, Ordering::AcqRel);
        self.inner.meters.open(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_frees_on_drop() {
        let limiter = Limiter::new(2, Quota::default(), Meters::default());
        let a = limiter.acquire(None, 0).ok().unwrap();
        let _b = limiter.acquire(None, 0).ok().unwrap();
        assert!(limiter.acquire(None, 0).ok().is_none());
        drop(a);
        assert_eq!(limiter.open(), 1);
        assert!(limiter.acquire(None, 0).ok().is_some());
    }

    #[test]
    fn a_client_over_its_quota_is_refused_and_the_others_are_served() {
        let limiter = Limiter::new(10, Quota::default().streams(2).topics(5), Meters::default());
        let greedy = Client::of_addr("127.0.0.2".parse().unwrap());
        let other = Client::of_addr("127.0.0.3".parse().unwrap());
        let a = limiter.acquire(Some(greedy), 2).unwrap();
        let mut b = limiter.acquire(Some(greedy), 3).unwrap();
        assert_eq!(
            limiter.acquire(Some(greedy), 0).unwrap_err(),
            Over::Streams { limit: 2 }
        );
        assert_eq!(
            b.add_topics(1).unwrap_err(),
            Over::Topics { limit: 5 }.to_string(),
            "no topic left"
        );
        let c = limiter.acquire(Some(other), 5).unwrap();
        b.remove_topics(2);
        b.add_topics(2).unwrap();
        drop((a, b));
        // Everything the greedy client held is back: the map forgets it.
        let _d = limiter.acquire(Some(greedy), 5).unwrap();
        assert_eq!(limiter.inner.lock_clients().len(), 2);
        drop(c);
        assert_eq!(limiter.inner.lock_clients().len(), 1);
        assert_eq!(limiter.open(), 1);
    }

    #[test]
    fn the_server_limit_is_a_503_and_a_quota_a_429() {
        let limiter = Limiter::new(1, Quota::default().streams(1), Meters::default());
        let client = Client::of_addr("::1".parse().unwrap());
        let _a = limiter.acquire(Some(client), 1).unwrap();
        let over = limiter.acquire(Some(client), 1).unwrap_err();
        assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
        let over = limiter.acquire(None, 1).unwrap_err();
        assert_eq!(over.status(), StatusCode::SERVICE_UNAVAILABLE);
        let res: Response<Bytes> = over.response(Duration::from_secs(3));
        assert_eq!(res.headers()["retry-after"], "3");
    }

    #[test]
    fn ipv6_clients_count_by_their_64_prefix() {
        let a = Client::of_addr("2001:db8:1:2::1".parse().unwrap());
        let b = Client::of_addr("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = Client::of_addr("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = Client::of_addr("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(mapped, Client::of_addr("127.0.0.1".parse().unwrap()));
    }
}
