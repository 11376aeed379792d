//! JSON Web Tokens as an [`Authorizer`]: which topics a client may read and publish to, signed
//! by whoever issues the tokens (an application's login, an identity provider).
//!
//! A token is a JWT (RFC 7519) signed with HS256 ([`Jwt::hs256`]), or, with feature `jwt`,
//! RS256 or ES256 (`Jwt::rs256_pem`, `Jwt::es256_pem`), carrying:
//!
//! | claim | meaning |
//! |---|---|
//! | `exp` | required: the end of the token, in seconds since the Unix epoch (a fraction is dropped). Long-lived connections end then |
//! | `nbf` | optional: not valid before |
//! | `aud` | a string or a list of strings, checked against [`Jwt::audience`] and required when one is set; a token naming an audience is refused when none is set (RFC 7519 §4.1.3) |
//! | `push` | an object, `{"subscribe":[PATTERN…],"publish":[PATTERN…],"manage":[PATTERN…]}`: topic patterns, each an exact name or a prefix ending in `*` (`chat:*`); a missing list grants nothing. `manage` is finishing and deleting a topic ([`Grant::manage`]), which publishing does not imply |
//! | `sub` | optional: the client, which per-client quotas count by ([`Grant::subject`]) instead of its address |
//!
//! The token is read from, in this order: `Authorization: Bearer TOKEN`, the cookie named by
//! [`Jwt::cookie`] (none by default), and the `access_token` query parameter
//! ([`Jwt::query_param`]), which is how a browser's `EventSource` and `WebSocket` pass it
//! (they cannot set headers). A token from the query grants **reading only**: its `publish`
//! and `manage` patterns are ignored, since URLs end up in access logs, browser history and `Referer`
//! headers, and a leaked reading token should not be a publishing one. Publish with the token
//! in `Authorization` (a WebSocket sends it in an `auth` message). Keep query tokens
//! short-lived.
//!
//! ```
//! use push_core::{Hub, Topic};
//! use push_http::jwt::Jwt;
//! use push_http::{Authorizer, Publisher};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::memory();
//! let auth: Authorizer = Jwt::hs256(b"a secret of at least 32 bytes, please")
//!     .expect("32 bytes or more")
//!     .into();
//! // The same authorizer for every endpoint: `push_sse::Sse::new(hub.clone())
//! // .authorize(auth.clone())`, `push_ws::Ws::new(hub.clone()).authorize(auth.clone())`, …
//! let publisher = Publisher::new(hub.clone()).authorize(auth);
//!
//! let req = http::Request::post("/topics/news").body(String::from("hi")).unwrap();
//! let res = publisher.respond(&Topic::new("news").unwrap(), req).await;
//! assert_eq!(res.status(), 401); // no token
//! # }
//! ```
//!
//! Expiry is exact: no leeway unless [`Jwt::leeway`] sets one, so a token is refused from its
//! `exp` second on, and a connection admitted with it ends then.
//!
//! A request without a token is refused with [`Refusal::NoCredentials`] (`401`,
//! `WWW-Authenticate: Bearer`); a token that is too long, malformed, badly signed, signed with
//! another algorithm, expired, not yet valid or for another audience with
//! [`Refusal::InvalidToken`] (`401`, `Bearer error="invalid_token", error_description="…"`);
//! a valid token without the topic gets `403`, `Bearer error="insufficient_scope"`.
//!
//! # Features
//!
//! - `jwt-hs256`: this module with [`Jwt::hs256`] only. jsonwebtoken comes without its own
//!   crypto; push-http's HMAC (HS256, HS384, HS512, with RustCrypto's `hmac` and `sha2`)
//!   stands in, and a token signed with anything else is refused as `invalid_token`, never a
//!   panic. Less than half the dependency tree of `jwt`: no RSA, elliptic curves, big
//!   numbers or `rand`.
//! - `jwt`: also `Jwt::rs256_pem` and `Jwt::es256_pem`, with jsonwebtoken's `rust_crypto`
//!   provider and PEM keys.
//!
//! jsonwebtoken checks signatures with one [`CryptoProvider`] for the whole process. With
//! `jwt-hs256` alone, making the first [`Jwt`] installs push-http's HMAC-only one, unless a
//! provider is installed already (which is then kept). So a program that also uses
//! jsonwebtoken itself with RSA or EC keys should enable `jwt` (or install its own provider,
//! such as `jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER`, before making a `Jwt`).
//!
//! [`CryptoProvider`]: jsonwebtoken::crypto::CryptoProvider

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::grant::{Allow, Authorizer, Grant, Refusal};

/// The claims read from a token.
#[derive(Debug, Deserialize)]
struct Claims {
    // Required: validation refuses a token without it; optional here so that the refusal
    // names the missing claim.
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    /// Who the token names: the grant's subject, which the per-client quotas count by.
    #[serde(default)]
    sub: Option<String>,
    /// Only checked for its type: jsonwebtoken compares it with the audience when it is a
    /// string or a list of strings, and ignores it when it is anything else.
    #[serde(default, rename = "aud", deserialize_with = "audience")]
    _aud: (),
    #[serde(default, deserialize_with = "push_claim")]
    push: Option<PushClaim>,
}

/// A NumericDate (RFC 7519 §2): seconds since the Unix epoch, possibly with a fraction, which
/// is dropped. A negative or non-finite number, or anything else, is refused.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct NumericDate;
    impl Visitor<'_> for NumericDate {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative number of seconds")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() && v >= 0.0 {
                // Saturates at u64::MAX, which is then out of range for a time.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(v.floor() as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }
    deserializer.deserialize_any(NumericDate)
}

/// `aud`: absent, null, a string or a list of strings (RFC 7519 §4.1.3).
fn audience<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    struct Audience;
    impl<'de> Visitor<'de> for Audience {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<String>()?.is_some() {}
            Ok(())
        }
    }
    deserializer.deserialize_any(Audience)
}

/// `push`: absent, null or an object; serde would also read the struct from a list.
fn push_claim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PushClaim>, D::Error> {
    struct Object;
    impl<'de> Visitor<'de> for Object {
        type Value = Option<PushClaim>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            PushClaim::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    deserializer.deserialize_any(Object)
}

/// The `push` claim: topic patterns the token grants.
#[derive(Debug, Default, Deserialize)]
struct PushClaim {
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    manage: Vec<String>,
}

/// A JWT authorizer's settings. Turn it into an [`Authorizer`] with `.into()` (or
/// [`Jwt::authorizer`]) and hand that to every endpoint and the [`Publisher`](crate::Publisher).
///
/// | setting | default |
/// |---|---|
/// | algorithm | fixed by the constructor: [`hs256`](Self::hs256); with feature `jwt`, `rs256_pem`, `es256_pem` |
/// | [`audience`](Self::audience) | none (a token with an `aud` claim is refused) |
/// | [`leeway`](Self::leeway) | 0 s |
/// | [`cookie`](Self::cookie) | not read |
/// | [`query_param`](Self::query_param) | `access_token` |
/// | [`max_token`](Self::max_token) | 8 KiB, then `401` |
#[derive(Clone)]
pub struct Jwt {
    key: DecodingKey,
    validation: Validation,
    cookie: Option<String>,
    query_param: Option<String>,
    max_token: usize,
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithms", &self.validation.algorithms)
            .field("audience", &self.validation.aud)
            .field("leeway", &self.validation.leeway)
            .field("cookie", &self.cookie)
            .field("query_param", &self.query_param)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        ensure_provider();
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        Self {
            key,
            validation,
            cookie: None,
            query_param: Some("access_token".to_owned()),
            max_token: 8 * 1024,
        }
    }

    /// Tokens signed with HMAC-SHA256 and `secret`.
    ///
    /// With feature `jwt-hs256` alone, the first `Jwt` made installs push-http's HMAC-only
    /// provider for jsonwebtoken, unless one is installed already (see the
    /// [module](self#features)).
    ///
    /// # Errors
    ///
    /// [`Error::ShortSecret`](crate::Error::ShortSecret) for a secret under 32 bytes (RFC 7518
    /// §3.2: the key is at least as long as the hash), which could be guessed offline from any
    /// token.
    pub fn hs256(secret: &[u8]) -> Result<Self, crate::Error> {
        if secret.len() < 32 {
            return Err(crate::Error::ShortSecret { len: secret.len() });
        }
        Ok(Self::with_key(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
        ))
    }

    /// Tokens signed with RSASSA-PKCS1-v1_5 SHA-256, checked with this PEM public key.
    ///
    /// # Errors
    ///
    /// A PEM that holds no RSA public key.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, crate::Error> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(crate::Error::Key)?;
        Ok(Self::with_key(key, Algorithm::RS256))
    }

    /// Tokens signed with ECDSA P-256 SHA-256, checked with this PEM public key.
    ///
    /// # Errors
    ///
    /// A PEM that holds no EC public key.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn es256_pem(pem: &[u8]) -> Result<Self, crate::Error> {
        let key = DecodingKey::from_ec_pem(pem).map_err(crate::Error::Key)?;
        Ok(Self::with_key(key, Algorithm::ES256))
    }

    /// Accepts only tokens whose `aud` names one of `audience`: a token without `aud` is
    /// refused.
    #[must_use]
    pub fn audience<S: AsRef<str>>(mut self, audience: &[S]) -> Self {
        let set: HashSet<String> = audience.iter().map(|a| a.as_ref().to_owned()).collect();
        self.validation.aud = Some(set);
        self.validation
            .required_spec_claims
            .insert("aud".to_owned());
        self
    }

    /// Tolerates clocks that differ by up to `leeway` when checking `exp` and `nbf`; the
    /// connection's end stays the token's `exp`.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Also reads the token from the cookie `name` (after `Authorization`).
    #[must_use]
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// The query parameter read last (`None`: none).
    #[must_use]
    pub fn query_param(mut self, name: Option<&str>) -> Self {
        self.query_param = name.map(str::to_owned);
        self
    }

    /// The longest token read; a longer one is refused without being decoded.
    #[must_use]
    pub fn max_token(mut self, bytes: usize) -> Self {
        self.max_token = bytes;
        self
    }

    /// The token a request carries, from the first place that has one, and whether that
    /// place is the query string.
    fn token(&self, parts: &Parts) -> Option<(String, bool)> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| {
            let v = v.to_str().ok()?;
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
        if let Some(token) = header {
            return Some((token, false));
        }
        let cookie = self.cookie.as_deref().and_then(|name| {
            parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
        });
        if let Some(token) = cookie {
            return Some((token, false));
        }
        let (param, query) = (self.query_param.as_deref()?, parts.uri.query()?);
        crate::query::query_value(query, param).map(|token| (token.into_owned(), true))
    }

    /// The grant a request's token carries.
    ///
    /// # Errors
    ///
    /// [`Refusal::NoCredentials`] when the request carries no token;
    /// [`Refusal::InvalidToken`] with the reason for one too long, malformed, with a bad
    /// signature, of another algorithm, expired, not yet valid, for the wrong audience, or
    /// with an `exp` beyond what a time holds.
    pub fn grant(&self, parts: &Parts) -> Result<Grant, Refusal> {
        let (token, in_query) = self.token(parts).ok_or_else(|| {
            Refusal::NoCredentials(
                "a token is required (Authorization: Bearer, or ?access_token=)".into(),
            )
        })?;
        if token.len() > self.max_token {
            return Err(Refusal::InvalidToken(format!(
                "the token is longer than {} bytes",
                self.max_token
            )));
        }
        let data = jsonwebtoken::decode::<Claims>(&token, &self.key, &self.validation)
            .map_err(|e| Refusal::InvalidToken(reason(e.kind())))?;
        let exp = data
            .claims
            .exp
            .ok_or_else(|| Refusal::InvalidToken("the token has no exp claim".into()))?;
        let push = data.claims.push.unwrap_or_default();
        let expires = UNIX_EPOCH
            .checked_add(Duration::from_secs(exp))
            .ok_or_else(|| Refusal::InvalidToken("the token's exp is out of range".into()))?;
        let (publish, manage) = if in_query {
            (Allow::Nothing, Allow::Nothing)
        } else {
            (allow(push.publish), allow(push.manage))
        };
        let mut grant = Grant::new(allow(push.subscribe), publish)
            .with_manage(manage)
            .until(expires);
        grant.subject = data.claims.sub;
        Ok(grant)
    }

    /// This as an [`Authorizer`].
    #[must_use]
    pub fn authorizer(self) -> Authorizer {
        let jwt = Arc::new(self);
        Authorizer::new(move |parts| std::future::ready(jwt.grant(parts)))
    }
}

impl From<Jwt> for Authorizer {
    fn from(jwt: Jwt) -> Self {
        jwt.authorizer()
    }
}

/// Makes sure jsonwebtoken has a crypto provider. With feature `jwt`, its `rust_crypto` one is
/// chosen by its own features; with `jwt-hs256` alone, push-http's HMAC-only one is installed,
/// unless one is installed already.
fn ensure_provider() {
    #[cfg(not(feature = "jwt"))]
    super::jwt_hmac::install();
}

fn allow(patterns: Vec<String>) -> Allow {
    if patterns.is_empty() {
        Allow::Nothing
    } else {
        Allow::Patterns(patterns)
    }
}

/// A refusal's reason: what is wrong, without echoing the token.
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is for another audience".into(),
        ErrorKind::InvalidSignature => "the token's signature is not valid".into(),
        ErrorKind::InvalidAlgorithm => "the token is signed with another algorithm".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's {claim} claim is malformed"),
        ErrorKind::Json(_) => "the token's claims are malformed".into(),
        _ => "the token is malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
    use jsonwebtoken::{encode, EncodingKey, Header};
    use push_core::Topic;
    use std::future::Future as _;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn token(claims: &serde_json::Value) -> String {
        // Under `jwt-hs256` alone, signing needs the provider a `Jwt` installs.
        ensure_provider();
        encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn reads_patterns_and_expiry_from_every_place() {
        let exp = unix_now() + 60;
        let t = token(&serde_json::json!({"exp": exp, "push": {"subscribe": ["chat:*"]}}));
        let jwt = Jwt::hs256(SECRET).unwrap().cookie("push_token");
        let bearer = format!("Bearer {t}");
        let cookie = format!("a=b; push_token={t}");
        let query = format!("/sse/chat:1?access_token={t}");
        for p in [
            parts("/", &[("authorization", &bearer)]),
            parts("/", &[("cookie", &cookie)]),
            parts(&query, &[]),
        ] {
            let grant = jwt.grant(&p).unwrap();
            assert!(grant.read.allows(&Topic::new("chat:1").unwrap()));
            assert!(!grant.read.allows(&Topic::new("admin").unwrap()));
            assert_eq!(grant.publish, Allow::Nothing);
            assert_eq!(grant.expires, Some(UNIX_EPOCH + Duration::from_secs(exp)));
        }
    }

    #[test]
    fn a_token_in_the_query_grants_reading_only_and_the_subject_is_kept() {
        let claims = serde_json::json!({
            "exp": unix_now() + 60,
            "sub": "alice",
            "push": {"subscribe": ["news"], "publish": ["news"], "manage": ["news"]},
        });
        let t = token(&claims);
        let jwt = Jwt::hs256(SECRET).unwrap();
        let news = Topic::new("news").unwrap();
        let header = jwt
            .grant(&parts("/", &[("authorization", &format!("Bearer {t}"))]))
            .unwrap();
        assert!(header.publish.allows(&news));
        assert!(header.manage.allows(&news));
        assert_eq!(header.subject.as_deref(), Some("alice"));
        let query = jwt
            .grant(&parts(&format!("/topics/news?access_token={t}"), &[]))
            .unwrap();
        assert!(query.read.allows(&news));
        assert_eq!(query.publish, Allow::Nothing);
        assert_eq!(query.manage, Allow::Nothing);
        assert_eq!(query.subject.as_deref(), Some("alice"));
    }

    #[test]
    fn publishing_does_not_imply_managing_and_short_secrets_are_refused() {
        let t = token(&serde_json::json!({"exp": unix_now() + 60, "push": {"publish": ["*"]}}));
        let grant = Jwt::hs256(SECRET)
            .unwrap()
            .grant(&parts("/", &[("authorization", &format!("Bearer {t}"))]))
            .unwrap();
        assert_eq!(grant.manage, Allow::Nothing);
        for short in [&b""[..], b"secret", &[7u8; 31]] {
            let err = Jwt::hs256(short).unwrap_err();
            assert!(
                matches!(err, crate::Error::ShortSecret { len } if len == short.len()),
                "{err}"
            );
        }
        assert!(Jwt::hs256(&[7u8; 32]).is_ok());
    }

    #[test]
    fn refuses_with_a_reason() {
        let jwt = Jwt::hs256(SECRET).unwrap();
        let now = unix_now();
        let cases = [
            (None, "a token is required"),
            (Some("nonsense".to_owned()), "malformed"),
            (Some(token(&serde_json::json!({"exp": now - 1}))), "expired"),
            (
                Some(token(
                    &serde_json::json!({"exp": now + 60, "nbf": now + 30}),
                )),
                "not valid yet",
            ),
            (Some(token(&serde_json::json!({"push": {}}))), "no exp"),
            (
                Some(token(&serde_json::json!({"exp": now + 60, "aud": "other"}))),
                "audience",
            ),
        ];
        for (t, want) in cases {
            let headers: Vec<(&str, String)> = t
                .iter()
                .map(|t| ("authorization", format!("Bearer {t}")))
                .collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let err = jwt.grant(&parts("/", &headers)).unwrap_err();
            if t.is_some() {
                assert!(matches!(err, Refusal::InvalidToken(_)), "{want}");
            } else {
                assert!(matches!(err, Refusal::NoCredentials(_)), "{want}");
            }
            assert!(err.reason().contains(want), "{} !~ {want}", err.reason());
        }
        let other = encode(
            &Header::default(),
            &serde_json::json!({"exp": now + 60}),
            &EncodingKey::from_secret(b"another secret, also 32 bytes!!!"),
        )
        .unwrap();
        let err = jwt
            .grant(&parts(
                "/",
                &[("authorization", &format!("Bearer {other}"))],
            ))
            .unwrap_err();
        assert!(err.reason().contains("signature"), "{}", err.reason());
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn rs256_and_es256_keys_check_their_signatures() {
        let claims = serde_json::json!({"exp": unix_now() + 60, "push": {"publish": ["news"]}});
        let cases = [
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(include_bytes!("../../testdata/rsa-private.pem")),
                Jwt::rs256_pem(include_bytes!("../../testdata/rsa-public.pem")),
            ),
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(include_bytes!("../../testdata/ec-private.pem")),
                Jwt::es256_pem(include_bytes!("../../testdata/ec-public.pem")),
            ),
        ];
        for (algorithm, key, jwt) in cases {
            let (key, jwt) = (key.unwrap(), jwt.unwrap());
            let t = encode(&Header::new(algorithm), &claims, &key).unwrap();
            let grant = jwt
                .grant(&parts("/", &[("authorization", &format!("Bearer {t}"))]))
                .unwrap();
            assert!(grant.publish.allows(&Topic::new("news").unwrap()));
            assert_eq!(grant.read, Allow::Nothing);
            // An HS256 token signed with the public key as secret (the classic confusion) is
            // refused: the algorithm is fixed by the key.
            let pem: &[u8] = match algorithm {
                Algorithm::RS256 => include_bytes!("../../testdata/rsa-public.pem"),
                _ => include_bytes!("../../testdata/ec-public.pem"),
            };
            let forged = encode(&Header::default(), &claims, &EncodingKey::from_secret(pem));
            let forged = forged.unwrap();
            let err = jwt
                .grant(&parts(
                    "/",
                    &[("authorization", &format!("Bearer {forged}"))],
                ))
                .unwrap_err();
            assert!(err.reason().contains("algorithm"), "{}", err.reason());
        }
        assert!(Jwt::rs256_pem(b"not a key").is_err());
    }

    /// A token signed with RS256 and `testdata/rsa-private.pem` (by `openssl dgst -sha256
    /// -sign`, outside this crate), granting everything until 2100.
    const RS256_TOKEN: &str = concat!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.",
        "eyJleHAiOjQxMDI0NDQ4MDAsInB1c2giOnsic3Vic2NyaWJlIjpbIioiXSwicHVibGlzaCI6WyIqIl19fQ.",
        "gja3w8QxdKfTGBLX9IOF3s_qUeeoeqUWvU2pZIm1DgxEUnEVou8WGpZSbOf-bGpZSZNqSzLG7h9I4rwu",
        "-A7VykfbvivybkwmhvNkCozmjnlJcyKxfZPoycigtdyGC6v5mMcpQxjjFzNcPWK04THpUywW2Xe0mPwb",
        "udMDVA-OeFV5w70pm5KSVR8jU5Y8DkJIMCV-FdlYnyV8JOw9fvY4P78yHVg6AiHWWAD-yJnf_AX6vWGv",
        "7GruKR-J7u2fNbeHqoW1N4r_Wt7gU6i1up8XPO6Xm2p-g_-0e7z9FTonfLqu91a4oaIzTvDX3PutU40104FIZ7938KDbxvQl8mCFjg",
    );

    /// The fixture is a good RS256 token: `jwt` accepts it with the public key.
    #[cfg(feature = "jwt")]
    #[test]
    fn the_rs256_fixture_is_accepted_by_its_key() {
        let jwt = Jwt::rs256_pem(include_bytes!("../../testdata/rsa-public.pem")).unwrap();
        let bearer = format!("Bearer {RS256_TOKEN}");
        let grant = jwt
            .grant(&parts("/", &[("authorization", &bearer)]))
            .unwrap();
        assert_eq!(grant.read, Allow::Patterns(vec!["*".into()]));
    }

    /// RFC 7515 appendix A.1: a token signed with HS256 elsewhere (it expired in 2011), and
    /// its key, as the RFC lists its bytes.
    const RFC7515_A1: &str = concat!(
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.",
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    );
    const RFC7515_A1_KEY: [u8; 64] = [
        3, 35, 53, 75, 43, 15, 165, 188, 131, 126, 6, 101, 119, 123, 166, 143, 90, 179, 40, 230,
        240, 84, 201, 40, 169, 15, 132, 178, 210, 80, 46, 191, 211, 251, 90, 146, 210, 6, 71, 239,
        150, 138, 180, 195, 119, 98, 61, 34, 61, 46, 33, 114, 5, 46, 79, 8, 192, 205, 154, 245,
        103, 208, 128, 163,
    ];

    /// A `Jwt` alone checks signatures: nothing in this test signs or installs a provider
    /// first (under `jwt-hs256`, the one `Jwt::hs256` installs does it; run alone, as nextest
    /// does, a `Jwt` that did not install it would panic here). The signature is good, so the
    /// refusal is for the expiry; with another secret, for the signature.
    #[test]
    fn a_jwt_alone_checks_a_token_signed_elsewhere() {
        let bearer = format!("Bearer {RFC7515_A1}");
        let request = parts("/", &[("authorization", &bearer)]);
        let err = Jwt::hs256(&RFC7515_A1_KEY)
            .unwrap()
            .grant(&request)
            .unwrap_err();
        assert_eq!(err, Refusal::InvalidToken("the token expired".into()));
        let err = Jwt::hs256(SECRET).unwrap().grant(&request).unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidToken("the token's signature is not valid".into())
        );
    }

    /// An HS256 `Jwt` (the only kind with `jwt-hs256` alone, whose provider has no RSA) refuses
    /// an RS256 token as `invalid_token`, and does not panic.
    #[test]
    fn an_rs256_token_is_refused_by_an_hs256_jwt_without_a_panic() {
        let jwt = Jwt::hs256(SECRET).unwrap();
        let bearer = format!("Bearer {RS256_TOKEN}");
        let request = parts("/", &[("authorization", &bearer)]);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| jwt.grant(&request)));
        let err = result.expect("Jwt::grant panicked").unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidToken("the token is signed with another algorithm".into())
        );
        let res = err.response::<bytes::Bytes>();
        assert_eq!(res.status(), http::StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer error="invalid_token", error_description="the token is signed with another algorithm""#
        );
    }

    /// Through the `Authorizer` every endpoint runs: no token, a bad one, a good one without
    /// the topic, and the topic.
    #[test]
    fn the_three_challenges_of_a_jwt_authorizer() {
        let auth = Authorizer::from(Jwt::hs256(SECRET).unwrap());
        let good = token(&serde_json::json!({
            "exp": unix_now() + 60,
            "push": {"subscribe": ["chat:*"]},
        }));
        let expired = token(&serde_json::json!({"exp": unix_now() - 1}));
        let answer = |token: Option<&str>, topic: &str| {
            let bearer = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = bearer
                .iter()
                .map(|b| ("authorization", b.as_str()))
                .collect();
            let request = parts("/", &headers);
            let topics = [Topic::new(topic).unwrap()];
            let mut future = std::pin::pin!(super::super::grant::check_read_all::<bytes::Bytes>(
                Some(&auth),
                &request,
                &topics,
            ));
            let waker = std::task::Waker::noop();
            let std::task::Poll::Ready(result) = future
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
            else {
                panic!("a JWT grant does not wait")
            };
            result.map(|_| ()).map_err(|res| {
                let challenge = res.headers()["www-authenticate"].to_str().unwrap();
                (res.status().as_u16(), challenge.to_owned())
            })
        };
        assert_eq!(answer(None, "chat:1"), Err((401, "Bearer".into())));
        assert_eq!(
            answer(Some("nonsense"), "chat:1"),
            Err((
                401,
                r#"Bearer error="invalid_token", error_description="the token is malformed""#
                    .into()
            ))
        );
        assert_eq!(
            answer(Some(&expired), "chat:1"),
            Err((
                401,
                r#"Bearer error="invalid_token", error_description="the token expired""#.into()
            ))
        );
        assert_eq!(
            answer(Some(&good), "admin"),
            Err((403, r#"Bearer error="insufficient_scope""#.into()))
        );
        assert_eq!(answer(Some(&good), "chat:1"), Ok(()));
    }

    #[test]
    fn audience_is_checked_when_set() {
        let jwt = Jwt::hs256(SECRET).unwrap().audience(&["push"]);
        let exp = unix_now() + 60;
        let good = token(&serde_json::json!({"exp": exp, "aud": "push"}));
        let bad = token(&serde_json::json!({"exp": exp, "aud": "billing"}));
        let auth = |t: &str| parts("/", &[("authorization", &format!("Bearer {t}"))]);
        assert!(jwt.grant(&auth(&good)).is_ok());
        assert!(jwt.grant(&auth(&bad)).is_err());
    }
}
