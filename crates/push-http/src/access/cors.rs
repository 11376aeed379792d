//! Which browser origins may use an endpoint: the `Origin` allow-list that WebSocket endpoints
//! check and the CORS answers of the request/response endpoints, shared so that every technique
//! reads the same configuration the same way.

use std::time::Duration;

use http::header::{HeaderValue, ORIGIN};
use http::{HeaderMap, Method};

/// The origins an endpoint accepts, compared with the request's `Origin` header exactly
/// (scheme, host and port; ASCII case-insensitive), e.g. `https://app.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Every origin. For public, credential-free data only.
    Any,
    /// Only these origins.
    List(Vec<String>),
}

impl Origins {
    /// Only the origins in `list`.
    #[must_use]
    pub fn list<I, S>(list: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Origins::List(
            list.into_iter()
                .map(|s| s.into().trim_end_matches('/').to_owned())
                .collect(),
        )
    }

    /// Whether `origin` (an `Origin` header's value) is accepted.
    #[must_use]
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// Cross-origin resource sharing for an endpoint that browsers on other origins call with
/// `fetch`.
///
/// | setting | default |
/// |---|---|
/// | `origins` | none: [`Origins::List`] empty (set it) |
/// | `credentials` | `false` (no cookies) |
/// | `max_age` | preflight answers cached 10 minutes |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Cors {
    /// The origins answered with `Access-Control-Allow-Origin`.
    pub(crate) origins: Origins,
    /// Whether to send `Access-Control-Allow-Credentials: true` (cookies, HTTP auth).
    pub(crate) credentials: bool,
    /// How long a browser may cache a preflight answer.
    pub(crate) max_age: Duration,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            origins: Origins::List(Vec::new()),
            credentials: false,
            max_age: Duration::from_secs(600),
        }
    }
}

/// A CORS header to add to an answer: `(name, value)`.
type CorsHeader = (&'static str, String);

/// What an endpoint declares in its CORS answers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CorsRules {
    /// The methods it answers (e.g. `"GET, HEAD, OPTIONS"`), for preflights.
    pub(crate) methods: &'static str,
    /// The request headers a page may send (e.g. `"If-None-Match"`), for preflights.
    pub(crate) allow_headers: &'static str,
    /// The response headers a page may read (e.g. `"ETag, Retry-After"`).
    pub(crate) expose: &'static str,
}

impl Cors {
    /// CORS for `origins`, other settings as default.
    #[must_use]
    pub fn new(origins: Origins) -> Self {
        Self {
            origins,
            ..Self::default()
        }
    }

    /// Sets `credentials`.
    #[must_use]
    pub fn credentials(mut self, on: bool) -> Self {
        self.credentials = on;
        self
    }

    /// Sets `max_age`.
    #[must_use]
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }

    /// Adds the CORS headers for a request (its `method` and `headers`) to an answer's
    /// `response` headers: the preflight headers for `OPTIONS`, the actual-answer headers
    /// otherwise, and nothing when the request has no `Origin` or one not allowed (the browser
    /// then hides the answer from the page).
    pub(crate) fn apply(
        &self,
        method: &Method,
        headers: &HeaderMap,
        rules: &CorsRules,
        response: &mut HeaderMap,
    ) {
        let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
            return;
        };
        let added = if method == Method::OPTIONS {
            self.preflight(origin, rules.methods, rules.allow_headers)
        } else {
            self.headers(origin, rules.expose)
        };
        for (name, value) in added {
            if let Ok(value) = HeaderValue::try_from(value) {
                response.append(name, value);
            }
        }
    }

    /// The headers for an actual (non-preflight) answer to a request from `origin`: empty when
    /// the origin is not allowed, so the browser hides the answer from the page. `expose` lists
    /// the response headers the page may read (e.g. `"ETag, Retry-After"`).
    #[must_use]
    fn headers(&self, origin: &str, expose: &str) -> Vec<CorsHeader> {
        if !self.origins.allows(origin) {
            return Vec::new();
        }
        let mut out = self.allow_origin(origin);
        if !expose.is_empty() {
            out.push(("access-control-expose-headers", expose.to_owned()));
        }
        out
    }

    /// The headers for a preflight (`OPTIONS` with `Access-Control-Request-Method`) from
    /// `origin`: empty when the origin is not allowed. `methods` and `allow_headers` are what
    /// the endpoint accepts (e.g. `"GET, HEAD"` and `"If-None-Match"`).
    #[must_use]
    fn preflight(&self, origin: &str, methods: &str, allow_headers: &str) -> Vec<CorsHeader> {
        if !self.origins.allows(origin) {
            return Vec::new();
        }
        let mut out = self.allow_origin(origin);
        out.push(("access-control-allow-methods", methods.to_owned()));
        if !allow_headers.is_empty() {
            out.push(("access-control-allow-headers", allow_headers.to_owned()));
        }
        out.push(("access-control-max-age", self.max_age.as_secs().to_string()));
        out
    }

    fn allow_origin(&self, origin: &str) -> Vec<CorsHeader> {
        // With credentials the origin must be echoed (never `*`); echoing it always, with
        // `Vary: Origin`, keeps shared caches from serving one origin's answer to another.
        let mut out = vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("vary", "Origin".to_owned()),
        ];
        if self.credentials {
            out.push(("access-control-allow-credentials", "true".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_exact_origins() {
        let o = Origins::list(["https://a.example", "http://localhost:3000/"]);
        assert!(o.allows("https://a.example"));
        assert!(o.allows("HTTPS://A.EXAMPLE"));
        assert!(o.allows("http://localhost:3000"));
        assert!(!o.allows("https://a.example.evil"));
        assert!(!o.allows("http://a.example"));
        assert!(!o.allows("null"));
        assert!(Origins::Any.allows("null"));
    }

    #[test]
    fn answers_only_allowed_origins() {
        let cors = Cors::new(Origins::list(["https://a.example"])).credentials(true);
        assert!(cors.headers("https://b.example", "ETag").is_empty());
        let h = cors.headers("https://a.example", "ETag");
        assert!(h.contains(&("access-control-allow-origin", "https://a.example".into())));
        assert!(h.contains(&("access-control-allow-credentials", "true".into())));
        assert!(h.contains(&("access-control-expose-headers", "ETag".into())));
        let p = cors.preflight("https://a.example", "GET, HEAD", "If-None-Match");
        assert!(p.contains(&("access-control-max-age", "600".into())));
        assert!(p.contains(&("access-control-allow-methods", "GET, HEAD".into())));
    }
}
