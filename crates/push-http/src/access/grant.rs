//! Who may read and publish: one access model for every technique.
//!
//! An [`Authorizer`] is an async hook from a request's parts (headers, URI, extensions) to a
//! [`Grant`] (the topics the client may read and may publish to) or a [`Refusal`]. Every
//! technique crate takes the same type and runs it before any subscription is made: a refusal
//! is `401` (no credentials, or credentials that are not valid) or `403` (not this topic), each
//! with its `WWW-Authenticate: Bearer` challenge (RFC 6750 §3).

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
    /// Topics the client may finish and delete ([`Publisher::complete`](crate::Publisher::complete),
    /// [`Publisher::delete`](crate::Publisher::delete)): both end every reader's history, so
    /// publishing does not imply them. [`Grant::new`] grants none.
    pub manage: Allow,
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
    /// A grant of `read` and `publish` (finishing and deleting none), with no end.
    #[must_use]
    pub fn new(read: Allow, publish: Allow) -> Self {
        Self {
            read,
            publish,
            manage: Allow::Nothing,
            expires: None,
            subject: None,
        }
    }

    /// The same grant, which may also finish and delete the topics `manage` allows (see
    /// [`manage`](Self::manage)).
    #[must_use]
    pub fn with_manage(mut self, manage: Allow) -> Self {
        self.manage = manage;
        self
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

/// Why a request is refused, and so its answer (RFC 6750 §3). The reason is the answer's body;
/// it is for people and may say more than the challenge does.
///
/// | variant | status | `WWW-Authenticate` |
/// |---|---|---|
/// | [`NoCredentials`](Self::NoCredentials) | `401` | `Bearer` |
/// | [`InvalidToken`](Self::InvalidToken) | `401` | `Bearer error="invalid_token", error_description="REASON"` |
/// | [`Forbidden`](Self::Forbidden) | `403` | `Bearer error="insufficient_scope"` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The request carries no credentials at all (or only in a scheme not understood): `401`
    /// with a bare `Bearer` challenge, no error code (RFC 6750 §3.1).
    NoCredentials(String),
    /// Credentials that are not valid: malformed, badly signed, expired, not yet valid, for
    /// another audience. `401` with `error="invalid_token"` and the reason as
    /// `error_description` (its printable ASCII without `"` and `\`, at most 120 bytes).
    InvalidToken(String),
    /// Valid credentials that do not cover this (a topic, publishing): `403` with
    /// `error="insufficient_scope"`.
    Forbidden(String),
}

impl Refusal {
    /// The reason given, as text.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Refusal::NoCredentials(reason)
            | Refusal::InvalidToken(reason)
            | Refusal::Forbidden(reason) => reason,
        }
    }

    /// The status of the answer: `401` or `403`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoCredentials(_) | Refusal::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The `WWW-Authenticate` challenge of the answer (see the table above).
    #[must_use]
    pub fn challenge(&self) -> HeaderValue {
        match self {
            Refusal::NoCredentials(_) => HeaderValue::from_static("Bearer"),
            Refusal::InvalidToken(reason) => {
                let description = description(reason);
                if description.is_empty() {
                    return HeaderValue::from_static(r#"Bearer error="invalid_token""#);
                }
                HeaderValue::try_from(format!(
                    r#"Bearer error="invalid_token", error_description="{description}""#
                ))
                .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer error="invalid_token""#))
            }
            Refusal::Forbidden(_) => {
                HeaderValue::from_static(r#"Bearer error="insufficient_scope""#)
            }
        }
    }

    /// The answer: [`status`](Self::status), the [`challenge`](Self::challenge) in
    /// `WWW-Authenticate`, and the reason as text.
    #[must_use]
    pub fn response<B: From<Bytes>>(&self) -> Response<B> {
        let mut res = crate::answer::text(self.status(), &format!("{}\n", self.reason()));
        res.headers_mut().insert(WWW_AUTHENTICATE, self.challenge());
        res
    }
}

/// The longest `error_description` of an `invalid_token` challenge: a longer reason is cut
/// there (the body has all of it).
const MAX_DESCRIPTION: usize = 120;

/// `reason` as an `error_description` (RFC 6750 §3: `%x20-21 / %x23-5B / %x5D-7E`): line
/// breaks and tabs become spaces, `"`, `\`, other controls and non-ASCII are dropped, the ends
/// trimmed, and it is cut at [`MAX_DESCRIPTION`] bytes.
fn description(reason: &str) -> String {
    let mut out: String = reason
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            '"' | '\\' => None,
            ' '..='~' => Some(c),
            _ => None,
        })
        .collect();
    out.truncate(MAX_DESCRIPTION);
    out.trim().to_owned()
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
///             Some(_) => Err(Refusal::InvalidToken("unknown token".into())),
///             None => Err(Refusal::NoCredentials("a bearer token is required".into())),
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
    /// The hook's refusal, or [`Refusal::InvalidToken`] for a grant whose
    /// [`expires`](Grant::expires) has passed.
    pub async fn grant(&self, parts: &Parts) -> Result<Grant, Refusal> {
        let grant = (self.hook)(parts).await?;
        if grant.expires.is_some_and(|t| t <= SystemTime::now()) {
            return Err(Refusal::InvalidToken("the credentials expired".into()));
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

    /// Status, `WWW-Authenticate` and body of a refusal's answer.
    fn answer(refusal: &Refusal) -> (StatusCode, String, String) {
        let res = refusal.response::<Bytes>();
        let challenge = res
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .collect::<Vec<_>>();
        assert_eq!(challenge.len(), 1, "one challenge");
        let challenge = challenge[0].to_str().unwrap().to_owned();
        let body = String::from_utf8(res.body().to_vec()).unwrap();
        (res.status(), challenge, body)
    }

    #[test]
    fn each_refusal_has_its_rfc_6750_challenge_and_the_reason_as_body() {
        let cases = [
            (
                Refusal::NoCredentials("a bearer token is required".into()),
                StatusCode::UNAUTHORIZED,
                "Bearer",
                "a bearer token is required\n",
            ),
            (
                Refusal::InvalidToken("the token expired".into()),
                StatusCode::UNAUTHORIZED,
                r#"Bearer error="invalid_token", error_description="the token expired""#,
                "the token expired\n",
            ),
            (
                Refusal::Forbidden(r#"topic "admin" is not readable"#.into()),
                StatusCode::FORBIDDEN,
                r#"Bearer error="insufficient_scope""#,
                "topic \"admin\" is not readable\n",
            ),
        ];
        for (refusal, status, challenge, body) in cases {
            assert_eq!(refusal.status(), status);
            assert_eq!(
                answer(&refusal),
                (status, challenge.to_owned(), body.to_owned())
            );
        }
    }

    #[test]
    fn an_error_description_is_a_valid_quoted_string_and_short() {
        let description = |reason: &str| {
            let (_, challenge, body) = answer(&Refusal::InvalidToken(reason.into()));
            assert_eq!(body, format!("{reason}\n"), "the body keeps the reason");
            let prefix = r#"Bearer error="invalid_token""#;
            let rest = challenge.strip_prefix(prefix).expect(&challenge);
            if rest.is_empty() {
                return None;
            }
            let value = rest
                .strip_prefix(r#", error_description=""#)
                .expect(&challenge);
            Some(value.strip_suffix('"').expect(&challenge).to_owned())
        };
        assert_eq!(
            description(r#"the "aud" claim \ is "x""#).as_deref(),
            Some("the aud claim  is x")
        );
        assert_eq!(
            description("line one\nline two\tand\u{7f}\u{0} café ✓").as_deref(),
            Some("line one line two and caf")
        );
        assert_eq!(description(""), None);
        assert_eq!(description(" \"\\\u{1} "), None);
        let long = "x".repeat(500);
        assert_eq!(
            description(&long).as_deref(),
            Some(&long[..MAX_DESCRIPTION])
        );
        // Whatever the reason, the value holds only what RFC 6750 allows.
        let every_char: String = (0..=0x2ffu32).filter_map(char::from_u32).collect();
        for chunk in every_char.as_bytes().chunks(100) {
            let reason = String::from_utf8_lossy(chunk);
            if let Some(value) = description(&reason) {
                assert!(value.len() <= MAX_DESCRIPTION);
                assert!(
                    value
                        .bytes()
                        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
                    "{value:?}"
                );
            }
        }
    }

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        let mut future = std::pin::pin!(future);
        let waker = std::task::Waker::noop();
        match future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("the hook does not wait"),
        }
    }

    /// A hook as users write one: no header, a wrong token, a token for `chat:*`, an expired one.
    fn hook() -> Authorizer {
        Authorizer::new(|parts| {
            let token = parts.headers.get("authorization").cloned();
            std::future::ready(match token.as_ref().and_then(|v| v.to_str().ok()) {
                None => Err(Refusal::NoCredentials("a bearer token is required".into())),
                Some("Bearer reader") => {
                    Ok(Grant::new(Allow::patterns(["chat:*"]), Allow::Nothing))
                }
                Some("Bearer old") => Ok(Grant::new(Allow::All, Allow::Nothing)
                    .until(SystemTime::now() - std::time::Duration::from_secs(1))),
                Some(_) => Err(Refusal::InvalidToken("unknown token".into())),
            })
        })
    }

    #[test]
    fn a_custom_hook_gives_each_kind_of_refusal() {
        let parts = |token: Option<&str>| {
            let mut req = http::Request::get("/sse/chat:1");
            if let Some(token) = token {
                req = req.header("authorization", token);
            }
            req.body(()).unwrap().into_parts().0
        };
        let auth = hook();
        let check = |token: Option<&str>, topic: &str| {
            let topics = [Topic::new(topic).unwrap()];
            block_on(check_read_all::<Bytes>(Some(&auth), &parts(token), &topics))
                .map(|_| ())
                .map_err(|res| {
                    let challenge = res.headers().get(WWW_AUTHENTICATE).unwrap();
                    (res.status(), challenge.to_str().unwrap().to_owned())
                })
        };
        let unauthorized = StatusCode::UNAUTHORIZED;
        assert_eq!(check(None, "chat:1"), Err((unauthorized, "Bearer".into())));
        assert_eq!(
            check(Some("Bearer guess"), "chat:1"),
            Err((
                unauthorized,
                r#"Bearer error="invalid_token", error_description="unknown token""#.into()
            ))
        );
        assert_eq!(
            check(Some("Bearer old"), "chat:1"),
            Err((
                unauthorized,
                r#"Bearer error="invalid_token", error_description="the credentials expired""#
                    .into()
            ))
        );
        assert_eq!(
            check(Some("Bearer reader"), "admin"),
            Err((
                StatusCode::FORBIDDEN,
                r#"Bearer error="insufficient_scope""#.into()
            ))
        );
        assert_eq!(check(Some("Bearer reader"), "chat:1"), Ok(()));
    }
}
