//! Property tests of bearer tokens: arbitrary tokens never panic, and a token is accepted
//! exactly when its claims say so.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::jwt::Jwt;
use crate::{Allow, Authorizer, Grant, Refusal};
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{form_encode, header_bytes, header_text, parts, CASES};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
/// `Jwt`'s default `max_token`.
const MAX_TOKEN: usize = 8 * 1024;
/// Times in claims stay this far from now, so that the clock moving during the test
/// changes no answer.
const MARGIN: u64 = 3600;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// base64url without padding (RFC 7515's encoding of each part).
fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..=chunk.len() {
            out.push(ALPHABET[(v >> (18 - 6 * k)) as usize & 63] as char);
        }
    }
    out
}

/// A token of these exact claims bytes, signed with HS256 and `SECRET`.
fn sign(claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(claims)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("HS256");
    format!("{message}.{signature}")
}

fn bearer(token: &str) -> http::request::Parts {
    parts(
        "/",
        &[("authorization", format!("Bearer {token}").as_bytes())],
    )
}

/// The grant of the `Authorizer` made of `jwt` (its future is ready at once).
fn authorizer_grant(jwt: &Jwt, parts: &http::request::Parts) -> Result<Grant, Refusal> {
    let authorizer = Authorizer::from(jwt.clone());
    let mut future = std::pin::pin!(authorizer.grant(parts));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("a JWT grant does not wait"),
    }
}

/// A refusal is a `401` with `WWW-Authenticate: Bearer` (no token found) or `Bearer
/// error="invalid_token", …` (a token), and a reason that does not echo the token.
fn check_refusal(refusal: &Refusal, token: &str) -> Result<(), TestCaseError> {
    let res = refusal.response::<bytes::Bytes>();
    prop_assert_eq!(res.status(), http::StatusCode::UNAUTHORIZED);
    let challenge = res.headers().get("www-authenticate").map(|v| v.as_bytes());
    match refusal {
        Refusal::NoCredentials(_) => prop_assert_eq!(challenge, Some(&b"Bearer"[..])),
        Refusal::InvalidToken(_) => prop_assert!(
            challenge.is_some_and(|c| c.starts_with(br#"Bearer error="invalid_token""#)),
            "{:?}",
            challenge
        ),
        _ => prop_assert!(false, "{:?}", refusal),
    }
    prop_assert!(!refusal.reason().is_empty());
    if token.len() >= 16 {
        prop_assert!(
            !refusal.reason().contains(token),
            "the reason echoes the token"
        );
    }
    Ok(())
}

/// The grant a token should get.
#[derive(Debug)]
struct Expected {
    read: Allow,
    publish: Allow,
    exp: u64,
    subject: Option<String>,
}

/// What a claims object grants by the documented rules, or `None` for a refusal: `exp`
/// required, an integer of seconds, in the future; `nbf` optional, a number of seconds
/// not in the future; no `aud` (no audience is set); `sub`, when given, a string; `push`
/// optional (or null), an object whose `subscribe` and `publish` are optional lists of
/// strings. Other claims are not read. The grant has the `push` patterns, ends at `exp` and
/// names `sub`.
fn claims_oracle(claims: &Map<String, Value>, now: u64) -> Option<Expected> {
    let exp = claims.get("exp")?.as_u64().filter(|exp| *exp > now)?;
    if let Some(nbf) = claims.get("nbf") {
        let nbf = match nbf.as_u64() {
            Some(n) => n,
            None => nbf.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?.round() as u64,
        };
        if nbf > now {
            return None;
        }
    }
    if claims.get("aud").is_some_and(|aud| !aud.is_null()) {
        return None;
    }
    // RFC 7519 §4.1.2: `sub` is a string.
    let subject = match claims.get("sub") {
        None | Some(Value::Null) => None,
        Some(Value::String(sub)) => Some(sub.clone()),
        Some(_) => return None,
    };
    let list = |push: &Map<String, Value>, name: &str| -> Option<Allow> {
        let Some(list) = push.get(name) else {
            return Some(Allow::Nothing);
        };
        let patterns: Vec<String> = list
            .as_array()?
            .iter()
            .map(|p| p.as_str().map(str::to_owned))
            .collect::<Option<_>>()?;
        Some(if patterns.is_empty() {
            Allow::Nothing
        } else {
            Allow::Patterns(patterns)
        })
    };
    let (read, publish) = match claims.get("push") {
        None | Some(Value::Null) => (Allow::Nothing, Allow::Nothing),
        Some(Value::Object(push)) => (list(push, "subscribe")?, list(push, "publish")?),
        Some(_) => return None,
    };
    Some(Expected {
        read,
        publish,
        exp,
        subject,
    })
}

/// A JSON scalar, or a small object.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(json!({"x": 1})),
    ]
}

fn string_list() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec!["chat:*", "news", "*", ""]).prop_map(str::to_owned),
            any::<String>(),
        ],
        0..3,
    )
    .prop_map(Value::from)
}

/// A list that is not only strings, or not a list.
fn wrong_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        (string_list(), scalar()).prop_map(|(list, odd)| {
            let mut list = list.as_array().cloned().unwrap_or_default();
            list.push(odd);
            Value::Array(list)
        }),
    ]
    .prop_filter("not a list of strings", |v| {
        !v.as_array().is_some_and(|l| l.iter().all(Value::is_string))
    })
}

/// Claims objects with every claim right, wrong, of the wrong type or missing.
fn claims(now: u64) -> impl Strategy<Value = Map<String, Value>> {
    let past = 0..now - MARGIN;
    let future = now + MARGIN..now + 1_000_000_000;
    let exp = prop_oneof![
        1 => Just(None),
        1 => past.clone().prop_map(|t| Some(json!(t))),
        4 => future.clone().prop_map(|t| Some(json!(t))),
        // Far in the future, but within what a time can hold
        // (`an_exp_beyond_i64_is_refused` below).
        1 => (now + MARGIN..i64::MAX as u64).prop_map(|t| Some(json!(t))),
        // The wrong type: not an integer (`a_fractional_exp_is_accepted` covers fractions).
        1 => scalar()
            .prop_filter("not a number", |v| !v.is_number())
            .prop_map(Some),
        1 => (1..=i64::MAX).prop_map(|t| Some(json!(-t))),
    ];
    let nbf = prop_oneof![
        4 => Just(None),
        1 => past.clone().prop_map(|t| Some(json!(t))),
        1 => past.prop_map(|t| Some(json!(t as f64 + 0.25))),
        1 => future.prop_map(|t| Some(json!(t))),
        1 => scalar().prop_filter("not a number", |v| !v.is_number()).prop_map(Some),
        1 => (1..=i64::MAX).prop_map(|t| Some(json!(-t))),
    ];
    let aud = prop_oneof![
        6 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => any::<String>().prop_map(|a| Some(json!(a))),
        1 => prop::collection::vec(any::<String>(), 0..3).prop_map(|a| Some(json!(a))),
    ];
    let push = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => (
            prop::option::of(prop_oneof![3 => string_list(), 1 => wrong_list()]),
            prop::option::of(prop_oneof![3 => string_list(), 1 => wrong_list()]),
            prop::option::of(scalar()),
        )
            .prop_map(|(subscribe, publish, other)| {
                let mut push = Map::new();
                let fields = [("subscribe", subscribe), ("publish", publish), ("other", other)];
                for (name, value) in fields {
                    if let Some(value) = value {
                        push.insert(name.to_owned(), value);
                    }
                }
                Some(Value::Object(push))
            }),
        1 => scalar().prop_filter("not an object", |v| !v.is_object() && !v.is_null()).prop_map(Some),
    ];
    let extra = prop::collection::btree_map(
        prop_oneof![
            prop::sample::select(vec!["sub", "iss", "iat", "jti", "typ"]).prop_map(str::to_owned),
            proptest::string::string_regex("[a-z]{1,6}").expect("regex"),
        ],
        scalar(),
        0..3,
    );
    // Now and then a claim long enough to put the token around `max_token`.
    let filler = prop_oneof![8 => Just(0usize), 1 => 5_900..6_300usize];
    (exp, nbf, aud, push, extra, filler).prop_map(|(exp, nbf, aud, push, extra, filler)| {
        let mut claims: Map<String, Value> = extra
            .into_iter()
            .filter(|(k, _)| !["exp", "nbf", "aud", "push"].contains(&k.as_str()))
            .collect();
        for (name, value) in [("exp", exp), ("nbf", nbf), ("aud", aud), ("push", push)] {
            if let Some(value) = value {
                claims.insert(name.to_owned(), value);
            }
        }
        if filler > 0 {
            claims.insert("filler".to_owned(), Value::from("f".repeat(filler)));
        }
        claims
    })
}

/// Text that is not a JWT signed with `SECRET`: base64url of anything, base64 with the
/// wrong alphabet or padding, raw text, joined by any number of dots; a well-formed header
/// and claims with a signature of random bytes; an unsigned (`alg: none`) token.
fn unsigned_tokens() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| b64url(&b)),
        any::<String>().prop_map(|s| b64url(s.as_bytes())),
        json_texts().prop_map(|s| b64url(s.as_bytes())),
        proptest::string::string_regex("[A-Za-z0-9+/=_-]{0,40}").expect("regex"),
        proptest::string::string_regex("[ -~]{0,20}").expect("regex"),
    ];
    let future = now() + MARGIN;
    let claims = json!({"exp": future, "push": {"subscribe": ["*"], "publish": ["*"]}}).to_string();
    prop_oneof![
        prop::collection::vec(segment, 0..5).prop_map(|s| s.join(".")),
        prop::collection::vec(any::<u8>(), 0..64).prop_map({
            let claims = claims.clone();
            move |sig| {
                format!(
                    "{}.{}.{}",
                    b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
                    b64url(claims.as_bytes()),
                    b64url(&sig)
                )
            }
        }),
        prop::sample::select(vec!["", "x", "AAAA"]).prop_map(move |sig| {
            format!(
                "{}.{}.{sig}",
                b64url(br#"{"alg":"none","typ":"JWT"}"#),
                b64url(claims.as_bytes())
            )
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any `Authorization` value, with no token anywhere else, is refused with `401`.
    #[test]
    fn any_authorization_header_without_a_valid_token_is_refused(
        scheme in prop::sample::select(vec!["Bearer ", "bearer ", "BEARER  ", "Basic ", "Bearer", "Bearer\t", "", " Bearer "]),
        rest in header_bytes(),
    ) {
        let value = [scheme.as_bytes(), &rest].concat();
        let parts = parts("/", &[("authorization", &value)]);
        let jwt = Jwt::hs256(SECRET).unwrap();
        let refusal = jwt.grant(&parts).expect_err("no valid token");
        check_refusal(&refusal, &String::from_utf8_lossy(&rest))?;
        prop_assert_eq!(authorizer_grant(&jwt, &parts).err(), Some(refusal));
    }

    /// Tokens that are not signed with the secret, from the header or the query, are
    /// refused with `401`.
    #[test]
    fn unsigned_or_malformed_tokens_are_refused(token in unsigned_tokens(), in_query in any::<bool>()) {
        let parts = if in_query {
            parts(&format!("/?access_token={}", form_encode(&token)), &[])
        } else {
            bearer(&token)
        };
        let refusal = Jwt::hs256(SECRET).unwrap().grant(&parts).expect_err("not signed with the secret");
        check_refusal(&refusal, &token)?;
    }

    /// A token signed with the secret is accepted exactly when its claims follow the
    /// documented rules and it is at most `max_token` bytes; the grant then has the `push`
    /// claim's patterns, ends at `exp` and names `sub`; a refusal is a `401`. The
    /// `Authorizer` answers the same.
    #[test]
    fn signed_claims_are_accepted_exactly_when_valid(claims in claims(now())) {
        let now = now();
        let token = sign(Value::Object(claims.clone()).to_string().as_bytes());
        let parts = bearer(&token);
        let jwt = Jwt::hs256(SECRET).unwrap();
        let got = jwt.grant(&parts);
        let expected = claims_oracle(&claims, now).filter(|_| token.len() <= MAX_TOKEN);
        match (&got, expected) {
            (Ok(grant), Some(expected)) => {
                prop_assert_eq!(&grant.read, &expected.read);
                prop_assert_eq!(&grant.publish, &expected.publish);
                prop_assert_eq!(grant.expires, Some(UNIX_EPOCH + Duration::from_secs(expected.exp)));
                prop_assert_eq!(&grant.subject, &expected.subject);
                prop_assert!(grant.deadline().is_some());
            }
            (Err(refusal), None) => check_refusal(refusal, &token)?,
            (got, expected) => prop_assert!(
                false,
                "claims {}: got {:?}, expected {:?}", Value::Object(claims.clone()), got, expected
            ),
        }
        prop_assert_eq!(authorizer_grant(&jwt, &parts), got);
    }

    /// Claims that are not a JSON object, or not JSON, are refused.
    #[test]
    fn signed_non_objects_are_refused(claims in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        json_values()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|v| v.to_string().into_bytes()),
        (claims(now()), any::<prop::sample::Index>()).prop_map(|(c, cut)| {
            let mut text = Value::Object(c).to_string().into_bytes();
            text.truncate(cut.index(text.len()));
            text
        }),
    ]) {
        let object = serde_json::from_slice::<Value>(&claims).is_ok_and(|v| v.is_object());
        prop_assume!(!object);
        let token = sign(&claims);
        let refusal = Jwt::hs256(SECRET).unwrap().grant(&bearer(&token)).expect_err("not a claims object");
        check_refusal(&refusal, &token)?;
    }

    /// The token comes from `Authorization: Bearer` when the header has that scheme
    /// (its value trimmed), else from `?access_token=`, which grants reading only.
    #[test]
    fn the_bearer_header_comes_before_the_query(
        scheme in prop::sample::select(vec!["Bearer ", "bearer ", "BeArEr ", "Bearer", "Basic ", "Token ", ""]),
        pad in prop::sample::select(vec!["", " ", "\t ", "  "]),
        header_token in prop_oneof![Just(None), Just(Some(String::new())), any::<String>().prop_map(Some)],
        with_header in any::<bool>(),
    ) {
        let good = sign(json!({"exp": now() + MARGIN, "push": {"subscribe": ["ok"], "publish": ["ok"]}}).to_string().as_bytes());
        let header_token = header_token.unwrap_or_else(|| good.clone());
        let value = format!("{scheme}{pad}{header_token}{pad}");
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        let value_ok = http::HeaderValue::from_str(&value).is_ok();
        if with_header && value_ok {
            headers.push(("authorization", value.as_bytes()));
        }
        let parts = parts(&format!("/?access_token={good}"), &headers);
        // A value that is not visible ASCII carries no token (the query's counts).
        let from_header = (with_header && value_ok && header_text(value.as_bytes()).is_some())
            .then(|| value.split_once(' '))
            .flatten()
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim_matches([' ', '\t']));
        let accepted = from_header.is_none_or(|t| t == good);
        let got = Jwt::hs256(SECRET).unwrap().grant(&parts);
        prop_assert_eq!(got.is_ok(), accepted, "{:?}: {:?}", value, got);
        // A token from the query grants reading only.
        if let Ok(grant) = got {
            prop_assert_eq!(grant.read, Allow::Patterns(vec!["ok".into()]));
            let publish = if from_header.is_some() { Allow::Patterns(vec!["ok".into()]) } else { Allow::Nothing };
            prop_assert_eq!(grant.publish, publish);
        }
    }
}

#[test]
fn a_signed_token_of_known_claims_is_accepted() {
    let claims = json!({"exp": now() + MARGIN, "push": {"publish": ["news"]}});
    let grant = Jwt::hs256(SECRET)
        .unwrap()
        .grant(&bearer(&sign(claims.to_string().as_bytes())))
        .expect("accepted");
    assert_eq!(grant.publish, Allow::Patterns(vec!["news".into()]));
    assert_eq!(grant.read, Allow::Nothing);
}

/// `UNIX_EPOCH + Duration::from_secs(exp)` panics ("overflow when adding duration to
/// instant") for an `exp` of 2^63 seconds or more: a token signed by the issuer with such
/// an `exp` must be refused, not panic the request's task.
#[test]
fn an_exp_beyond_i64_is_refused() {
    let token = sign(format!("{{\"exp\":{}}}", 1u64 << 63).as_bytes());
    let result = std::panic::catch_unwind(|| Jwt::hs256(SECRET).unwrap().grant(&bearer(&token)));
    let grant = result.expect("Jwt::grant panicked");
    assert!(matches!(grant, Err(Refusal::InvalidToken(_))), "{grant:?}");
}

/// RFC 7519 §2: a NumericDate may have a fraction, as `nbf` is read; a token expiring
/// at `NOW.5` is accepted too.
#[test]
fn a_fractional_exp_is_accepted() {
    let exp = now() + MARGIN;
    let token = sign(format!("{{\"exp\":{exp}.5}}").as_bytes());
    let grant = Jwt::hs256(SECRET).unwrap().grant(&bearer(&token));
    assert!(grant.is_ok(), "{grant:?}");
    // The connection ends at the whole second.
    assert_eq!(
        grant.unwrap().expires,
        Some(UNIX_EPOCH + Duration::from_secs(exp))
    );
}

/// `aud` is checked by jsonwebtoken only when it is a string or a list of strings: of
/// another type (a number, an object, a list holding a number) the token is refused,
/// whether or not an audience is set.
#[test]
fn an_aud_of_the_wrong_type_is_refused() {
    let exp = now() + MARGIN;
    for jwt in [
        Jwt::hs256(SECRET).unwrap(),
        Jwt::hs256(SECRET).unwrap().audience(&["push"]),
    ] {
        for aud in [
            json!(5),
            json!({"push": 1}),
            json!(["push", 5]),
            json!(true),
        ] {
            let token = sign(json!({"exp": exp, "aud": aud}).to_string().as_bytes());
            assert!(
                jwt.grant(&bearer(&token)).is_err(),
                "aud {aud} accepted by {jwt:?}"
            );
        }
    }
}

/// `Jwt::audience` "accepts only tokens whose `aud` names one of `audience`": a token
/// without one is refused.
#[test]
fn a_missing_aud_with_an_audience_set_is_refused() {
    let token = sign(json!({"exp": now() + MARGIN}).to_string().as_bytes());
    let grant = Jwt::hs256(SECRET)
        .unwrap()
        .audience(&["push"])
        .grant(&bearer(&token));
    assert!(grant.is_err(), "{grant:?}");
}

/// The `push` claim is documented as an object; serde also reads a struct from a JSON
/// list, which must not make `"push": [["chat:*"], ["news"]]` grant subscribe `chat:*`
/// and publish `news`.
#[test]
fn a_push_claim_as_a_list_is_refused() {
    let exp = now() + MARGIN;
    for push in [json!([["chat:*"], ["news"]]), json!([])] {
        let token = sign(json!({"exp": exp, "push": push}).to_string().as_bytes());
        let grant = Jwt::hs256(SECRET).unwrap().grant(&bearer(&token));
        assert!(grant.is_err(), "push {push}: {grant:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The two claim rules above over random values.
    #[test]
    fn claims_of_the_wrong_type_are_refused(aud in json_values(), push in prop::collection::vec(json_values(), 0..3)) {
        prop_assume!(!aud.is_null() && !aud.is_string());
        let exp = now() + MARGIN;
        let token = sign(json!({"exp": exp, "aud": aud}).to_string().as_bytes());
        prop_assert!(Jwt::hs256(SECRET).unwrap().grant(&bearer(&token)).is_err(), "aud {} accepted", aud);
        let token = sign(json!({"exp": exp, "push": push}).to_string().as_bytes());
        prop_assert!(Jwt::hs256(SECRET).unwrap().grant(&bearer(&token)).is_err(), "push {:?} accepted", push);
    }
}

/// JSON texts for tokens' segments: serialized values, some cut short.
fn json_texts() -> impl Strategy<Value = String> {
    (json_values(), any::<prop::sample::Index>(), any::<bool>()).prop_map(|(v, i, cut)| {
        let text = v.to_string();
        if cut {
            let mut at = i.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_owned()
        } else {
            text
        }
    })
}

/// Arbitrary JSON values, nested a few levels.
fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
