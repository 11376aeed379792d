//! Who may read and publish: one access model for every technique.
//!
//! An [`Authorizer`] is an async hook from a request's parts (headers, URI, extensions) to a
//! [`Grant`] (the topics the client may read and may publish to) or a [`Refusal`]. Every
//! technique crate takes the same type and runs it before any subscription is made: a refusal
//! is `401` (no or bad credentials, with `WWW-Authenticate: Bearer`) or `403` (not this topic).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Response, StatusCode};
use push_core::Topic;

/// Which topics a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Allow {
    /// Every topic.
    All,
    /// No topic.
    Nothing,
    /// Topics matching any of these patterns: an exact name, or a prefix ending in `*`
    /// (`chat:*` covers `chat:1` and `chat:room:7`).
    Patterns(Vec<String>),
}

impl Allow {
    /// Topics matching `patterns` (exact names, or prefixes ending in `*`).
    #[must_use]
    pub fn patterns<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Allow::Patterns(patterns.into_iter().map(Into::into).collect())
    }

    /// Whether `topic` is covered.
    #[must_use]
    pub fn allows(&self, topic: &Topic) -> bool {
        let name = topic.as_str();
        match self {
            Allow::All => true,
            Allow::Nothing => false,
            Allow::Patterns(list) => list.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => p == name,
            }),
        }
    }
}

/// What a client may do, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// Topics the client may subscribe to.
    pub read: Allow,
    /// Topics the client may publish to.
    pub publish: Allow,
    /// When the credentials stop being valid (a token's `exp`): long-lived connections end
    /// then (SSE and streams with an `expired` end, a WebSocket with close code
    /// `4401`, a held long-poll with its empty answer), and a grant already past it is
    /// refused with `401`. `None`: no end.
    pub expires: Option<SystemTime>,
    /// Who the credentials name (a token's `sub`), when the authorizer vouches for one: the
    /// per-client [`Quota`](crate::Quota) then counts by it instead of by address, so clients
    /// behind one address are told apart and one client on many addresses is not.
    pub subject: Option<String>,
}

impl Grant {
    /// A grant of `read` and `publish`, with no end.
    #[must_use]
    pub fn new(read: Allow, publish: Allow) -> Self {
        Self {
            read,
            publish,
            expires: None,
            subject: None,
        }
    }

    /// The same grant, naming the client `subject` (see [`subject`](Self::subject)).
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The same grant, ending at `expires`.
    #[must_use]
    pub fn until(mut self, expires: SystemTime) -> Self {
        self.expires = Some(expires);
        self
    }

    /// When the grant ends, on tokio's clock (`None`: never). A time already past gives now.
    #[must_use]
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        let expires = self.expires?;
        let left = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }
}

impl Default for Grant {
    /// Read every topic, publish to none, no end: the grant when no authorizer is set.
    fn default() -> Self {
        Self::new(Allow::All, Allow::Nothing)
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No credentials, or credentials that are not valid: `401`.
    Unauthorized(String),
    /// Valid credentials that do not cover this: `403`.
    Forbidden(String),
}

impl Refusal {
    /// The reason given, as text.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Refusal::Unauthorized(reason) | Refusal::Forbidden(reason) => reason,
        }
    }

    /// The answer: `401` with `WWW-Authenticate: Bearer`, or `403`, with the reason as text.
    #[must_use]
    pub fn response<B: From<Bytes>>(&self) -> Response<B> {
        match self {
            Refusal::Unauthorized(reason) => {
                let mut res = crate::answer::text(StatusCode::UNAUTHORIZED, &format!("{reason}\n"));
                res.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                res
            }
            Refusal::Forbidden(reason) => {
                crate::answer::text(StatusCode::FORBIDDEN, &format!("{reason}\n"))
            }
        }
    }
}

type Hook =
    dyn Fn(&Parts) -> Pin<Box<dyn Future<Output = Result<Grant, Refusal>> + Send>> + Send + Sync;

/// The access hook every technique takes: cheap to clone.
///
/// ```
/// use push_http::{Allow, Authorizer, Grant, Refusal};
///
/// let auth = Authorizer::new(|parts| {
///     let token = parts.headers.get("authorization").cloned();
///     async move {
///         match token.as_ref().and_then(|t| t.to_str().ok()) {
///             Some("Bearer reader") => Ok(Grant::new(Allow::patterns(["chat:*"]), Allow::Nothing)),
///             Some(_) => Err(Refusal::Unauthorized("unknown token".into())),
///             None => Err(Refusal::Unauthorized("a bearer token is required".into())),
///         }
///     }
/// });
/// # let _ = auth;
/// ```
#[derive(Clone)]
pub struct Authorizer {
    hook: Arc<Hook>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").finish_non_exhaustive()
    }
}

impl Authorizer {
    /// An authorizer calling `hook` with each request's parts. The hook reads what it needs
    /// from the parts before its future starts (the future must be `Send + 'static`).
    pub fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(&Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Grant, Refusal>> + Send + 'static,
    {
        Self {
            hook: Arc::new(move |parts: &Parts| Box::pin(hook(parts))),
        }
    }

    /// The grant for a request.
    ///
    /// # Errors
    ///
    /// The hook's refusal, or [`Refusal::Unauthorized`] for a grant whose
    /// [`expires`](Grant::expires) has passed.
    pub async fn grant(&self, parts: &Parts) -> Result<Grant, Refusal> {
        let grant = (self.hook)(parts).await?;
        if grant.expires.is_some_and(|t| t <= SystemTime::now()) {
            return Err(Refusal::Unauthorized("the credentials expired".into()));
        }
        Ok(grant)
    }

    /// The grant for a request that reads `topics`: a [`Refusal::Forbidden`] when any of them is
    /// not readable with it.
    ///
    /// # Errors
    ///
    /// The hook's refusal, or a topic not granted.
    pub(crate) async fn read(&self, parts: &Parts, topics: &[Topic]) -> Result<Grant, Refusal> {
        let grant = self.grant(parts).await?;
        if let Some(topic) = topics.iter().find(|t| !grant.read.allows(t)) {
            return Err(Refusal::Forbidden(format!(
                "topic {:?} is not readable with these credentials",
                topic.as_str()
            )));
        }
        Ok(grant)
    }
}

/// Runs `authorizer` (when set) for a request reading `topics`: its grant, which must cover
/// each, or the refusal's answer. Without an authorizer, and for `OPTIONS` (a CORS preflight
/// carries no credentials and answers no data), the grant is [`Grant::default`].
///
/// # Errors
///
/// The refusal's `401` or `403` answer.
pub(crate) async fn check_read_all<B: From<Bytes>>(
    authorizer: Option<&Authorizer>,
    parts: &Parts,
    topics: &[Topic],
) -> Result<Grant, Response<B>> {
    let Some(authorizer) = authorizer.filter(|_| parts.method != http::Method::OPTIONS) else {
        return Ok(Grant::default());
    };
    authorizer
        .read(parts, topics)
        .await
        .map_err(|refusal| refusal.response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_exact_names_or_star_prefixes() {
        let allow = Allow::patterns(["chat:*", "news"]);
        let t = |n: &str| Topic::new(n).unwrap();
        assert!(allow.allows(&t("chat:1")));
        assert!(allow.allows(&t("chat:room:7")));
        assert!(allow.allows(&t("news")));
        assert!(!allow.allows(&t("newsroom")));
        assert!(!allow.allows(&t("admin")));
        assert!(!Allow::Nothing.allows(&t("news")));
        assert!(Allow::All.allows(&t("admin")));
    }
}
