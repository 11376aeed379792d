//! Property tests of what push-http reads from a client's request: query strings, the cursor
//! in `Last-Event-ID` or the query, several topics and their combined cursor, a publish's
//! headers, and (feature `jwt`) bearer tokens. Arbitrary input never panics, and each is
//! accepted exactly when the documented rule holds; each rule is written out below as an
//! oracle of its own rather than taken from the code under test.

use http::request::Parts;
use http::HeaderValue;
use proptest::prelude::*;
use push_core::{Cursor, Epoch, Error, NewEvent, PayloadKind, StartFrom, Topic};
use push_http::multi::{query_topics, start_points, MAX_TOPICS};
use push_http::{cursor_text, query_value, start_from, PublishHead};

const CASES: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Oracles: the documented rules, written independently of the parsers.

/// `application/x-www-form-urlencoded` parsing as the URL standard defines it: split on `&`,
/// skip empty pieces, split each at its first `=`, turn `+` into a space, decode `%XX` (a `%`
/// without two hex digits stays), and read the bytes as UTF-8 with replacement characters.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digits = (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                );
                if let (Some(high), Some(low)) = digits {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The inverse: every byte but ASCII letters, digits and `*-._` as `%XX`, a space as `+`.
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `text` as it may stand in a URI's query: characters a query may not hold as `%XX`, every
/// other one (`&`, `=`, `+`, `%` too) as it is.
fn query_raw(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{21}' | '\u{24}'..='\u{3b}' | '=' | '\u{3f}'..='\u{7e}' => c.to_string(),
            c if c.is_ascii() => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The first value of `name` in `query`.
fn first_value(query: &str, name: &str) -> Option<String> {
    form_pairs(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// What `HeaderValue::to_str` reads: visible ASCII and tabs; anything else is no text.
fn header_text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|b| *b == b'\t' || (0x20..0x7f).contains(b))
        .then(|| std::str::from_utf8(value).expect("ASCII"))
}

/// The canonical cursor text `EPOCH-SEQ` (lowercase hex without leading zeros, never zero;
/// decimal without leading zeros).
fn cursor_oracle(text: &str) -> Option<Cursor> {
    let (epoch_text, seq_text) = text.split_once('-')?;
    let epoch = u64::from_str_radix(epoch_text, 16).ok()?;
    let seq = seq_text.parse::<u64>().ok()?;
    let cursor = Cursor::new(Epoch::new(epoch)?, seq);
    (format!("{epoch:x}-{seq}") == text).then_some(cursor)
}

/// A client's cursor text read as a start: none → `default`, canonical → after it, else a reset.
fn start_oracle(text: Option<&str>, default: StartFrom) -> StartFrom {
    match text {
        None => default,
        Some(t) => cursor_oracle(t).map_or(StartFrom::Invalid, StartFrom::After),
    }
}

/// Topic names: 1 to 128 bytes of ASCII letters, digits and `- _ . ~ :`.
fn topic_ok(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~:".contains(c))
}

/// Event types: 1 to 64 bytes of ASCII letters, digits and `- _ . :`.
fn event_type_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// Idempotency keys: 1 to 128 visible ASCII characters.
fn key_ok(key: &str) -> bool {
    (1..=128).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The kind `Content-Type` names: its essence (before any `;`, without surrounding blanks,
/// in any case) `application/json` or `…+json` is JSON, `application/octet-stream` binary,
/// `text/…` text; anything else, or a value that is not text, names none.
fn kind_oracle(content_type: Option<&[u8]>) -> Option<PayloadKind> {
    let text = header_text(content_type?)?;
    let essence = text.split(';').next().unwrap_or("");
    let essence = essence.trim_matches([' ', '\t']).to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Some(PayloadKind::Json)
    } else if essence == "application/octet-stream" {
        Some(PayloadKind::Binary)
    } else if essence.starts_with("text/") {
        Some(PayloadKind::Text)
    } else {
        None
    }
}

fn parts(uri: &str, headers: &[(&str, &[u8])]) -> Parts {
    let mut req = http::Request::builder().uri(uri);
    for (name, value) in headers {
        req = req.header(
            *name,
            HeaderValue::from_bytes(value).expect("a valid header value"),
        );
    }
    req.body(()).expect("a valid request").into_parts().0
}

#[test]
fn the_oracles_agree_with_known_answers() {
    assert_eq!(
        form_pairs("a=1&&b&c=%41+%zz%4&=d&e==f"),
        [
            ("a", "1"),
            ("b", ""),
            ("c", "A %zz%4"),
            ("", "d"),
            ("e", "=f")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(form_decode("%FF%C3%A9"), "\u{fffd}é");
    assert_eq!(form_decode(&form_encode("a b+c&=é%")), "a b+c&=é%");
    assert_eq!(
        cursor_oracle("abc-42").map(|c| c.to_string()).as_deref(),
        Some("abc-42")
    );
    for bad in [
        "0-1", "0a-1", "a-01", "A-1", "a-+1", "+a-1", "a- 1", "a-1-2",
    ] {
        assert_eq!(cursor_oracle(bad), None, "{bad:?}");
    }
    assert_eq!(
        kind_oracle(Some(b" Application/JSON ; charset=x")),
        Some(PayloadKind::Json)
    );
    assert_eq!(
        kind_oracle(Some(b"application/ld+json")),
        Some(PayloadKind::Json)
    );
    assert_eq!(kind_oracle(Some(b"text/plain")), Some(PayloadKind::Text));
    assert_eq!(
        kind_oracle(Some(b"application/x-www-form-urlencoded")),
        None
    );
    assert_eq!(kind_oracle(Some(b"application/json\xff")), None);
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Query strings a URI can hold: raw characters (UTF-8 too), the separators, and escapes that
/// are right, wrong, truncated or not UTF-8, in any order.
fn queries() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        proptest::string::string_regex("([!$-;=?-~]|[é€𝄞]){0,6}").expect("regex"),
        prop::sample::select(vec![
            "&",
            "=",
            "+",
            "%",
            "%2",
            "%20",
            "%2B",
            "%26",
            "%3D",
            "%2C",
            "%ff",
            "%FF",
            "%C3%A9",
            "%e2%82",
            "%zz",
            "%%",
            "since",
            "lastEventId",
            "topic",
            "event",
            "access_token",
        ])
        .prop_map(str::to_owned),
        cursor_texts().prop_map(|c| form_encode(&c)),
    ];
    prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

/// Cursor-like texts: canonical ones, near misses and garbage.
fn cursor_texts() -> impl Strategy<Value = String> {
    prop_oneof![
        (1..=u64::MAX, any::<u64>()).prop_map(|(e, s)| format!("{e:x}-{s}")),
        (1..=0xffffu64, 0..100u64).prop_map(|(e, s)| format!("{e:x}-{s}")),
        proptest::string::string_regex("[0-9a-fA-F]{0,17}[-,:_ ]?[0-9+ ]{0,21}").expect("regex"),
        any::<String>(),
        Just(String::new()),
    ]
}

/// Bytes a header value may hold: visible ASCII, tabs and opaque bytes (no other controls).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::string::string_regex("[ -~\t]{0,40}")
            .expect("regex")
            .prop_map(String::into_bytes),
        prop::collection::vec(
            prop_oneof![0x20..=0x7eu8, Just(b'\t'), 0x80..=0xffu8],
            0..40
        ),
    ]
}

fn defaults() -> impl Strategy<Value = StartFrom> {
    prop::sample::select(vec![StartFrom::Newest, StartFrom::Oldest])
}

// ---------------------------------------------------------------------------------------------
// Query strings and cursors.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `query_value` is the first value of the name, decoded as the URL standard says.
    #[test]
    fn query_value_is_the_first_decoded_value(
        query in prop_oneof![3 => queries(), 1 => any::<String>()],
        other in prop_oneof![
            prop::sample::select(vec!["since", "lastEventId", "topic", "", " ", "é", "a b"]).prop_map(str::to_owned),
            any::<String>(),
        ],
        pick in prop::option::weighted(0.7, any::<prop::sample::Index>()),
    ) {
        // Mostly a name the query has (by the oracle's reading), else another one.
        let pairs = form_pairs(&query);
        let name = match pick {
            Some(i) if !pairs.is_empty() => i.get(&pairs).0.clone(),
            _ => other,
        };
        let got = query_value(&query, &name);
        let expected = first_value(&query, &name);
        prop_assert_eq!(got.as_deref(), expected.as_deref(), "{:?} in {:?}", name, query);
    }

    /// Any names and values, encoded into a query string, decode back to themselves.
    #[test]
    fn encoded_values_round_trip(
        pairs in prop::collection::vec((any::<String>(), any::<String>()), 1..5),
        pick in any::<prop::sample::Index>(),
    ) {
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let (name, _) = pick.get(&pairs);
        let first = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let got = query_value(&query, name);
        prop_assert_eq!(got.as_deref(), first);
    }

    /// `cursor_text` is the header's value when the header is named, present and not empty
    /// (a value that is not text reads as U+FFFD), else the parameter's first value when not
    /// empty; `start_from` reads that text as a cursor, a reset when it is not one.
    #[test]
    fn cursor_text_and_start_from_follow_the_documented_order(
        header_named in any::<bool>(),
        header in prop::option::of(prop_oneof![
            header_bytes(),
            cursor_texts().prop_filter_map("a header value", |c| HeaderValue::from_str(&c).ok().map(|_| c.into_bytes())),
        ]),
        query in prop_oneof![
            queries(),
            (queries(), cursor_texts(), queries()).prop_map(|(a, c, b)| format!("{a}&lastEventId={}&{b}", form_encode(&c))),
            cursor_texts().prop_map(|c| format!("lastEventId={}", query_raw(&c))),
        ],
        default in defaults(),
    ) {
        let headers: Vec<(&str, &[u8])> = header.iter().map(|h| ("last-event-id", &h[..])).collect();
        let parts = parts(&format!("/sse/t?{query}"), &headers);
        let header_name = header_named.then_some("last-event-id");

        let from_header = header_name
            .and(header.as_deref())
            .map(|v| header_text(v).unwrap_or("\u{fffd}").to_owned())
            .filter(|v| !v.is_empty());
        let expected = from_header.or_else(|| first_value(&query, "lastEventId").filter(|v| !v.is_empty()));

        let text = cursor_text(&parts, header_name, "lastEventId");
        prop_assert_eq!(text.as_deref(), expected.as_deref());
        let from = start_from(&parts, header_name, "lastEventId", default);
        prop_assert_eq!(from, start_oracle(expected.as_deref(), default));
    }
}

// ---------------------------------------------------------------------------------------------
// Several topics.

/// Values of `?topic=`: valid names (often repeated), invalid ones, encoded or raw.
fn topic_queries() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "chat:1", "x.y~z", "A-_"]).prop_map(str::to_owned),
        1 => proptest::string::string_regex("[A-Za-z0-9_.~:-]{1,4}").expect("regex"),
        1 => proptest::string::string_regex("[A-Za-z0-9_.~:-]{127,129}").expect("regex"),
        1 => any::<String>(),
        1 => Just(String::new()),
    ];
    let pair = (
        prop::sample::select(vec!["topic", "topic", "topic", "Topic", "topics", "t", "x"]),
        name,
        any::<bool>(),
    )
        .prop_map(|(key, name, raw)| {
            let raw = raw
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~:".contains(&b));
            format!("{key}={}", if raw { name } else { form_encode(&name) })
        });
    prop_oneof![
        prop::collection::vec(pair, 0..20).prop_map(|p| p.join("&")),
        queries(),
    ]
}

/// A combined cursor's parts: canonical cursors, empty parts, garbage, long garbage.
fn positions() -> impl Strategy<Value = Option<String>> {
    let part = prop_oneof![
        4 => (1..=u64::MAX, any::<u64>()).prop_map(|(e, s)| format!("{e:x}-{s}")),
        1 => Just(String::new()),
        1 => cursor_texts(),
        1 => proptest::string::string_regex("[0-9a-f-]{38,60}").expect("regex"),
    ];
    prop_oneof![
        Just(None),
        prop::collection::vec(part, 0..6).prop_map(|p| Some(p.join(","))),
        any::<String>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `query_topics`: the parameter's values in order without repeats, each a valid name, at
    /// least one and at most `max`; otherwise a reason.
    #[test]
    fn query_topics_takes_exactly_the_valid_lists(
        query in topic_queries(),
        max in prop_oneof![0..=4usize, Just(MAX_TOPICS)],
    ) {
        let uri: http::Uri = format!("/sse?{query}").parse().expect("a valid URI");
        let got = query_topics(&uri, "topic", max);

        let mut expected: Result<Vec<String>, ()> = Ok(Vec::new());
        for (key, value) in form_pairs(&query) {
            let Ok(list) = &mut expected else { break };
            if key != "topic" {
                continue;
            }
            if !topic_ok(&value) {
                expected = Err(());
            } else if !list.contains(&value) {
                if list.len() == max {
                    expected = Err(());
                } else {
                    list.push(value);
                }
            }
        }
        if expected.as_ref().is_ok_and(Vec::is_empty) {
            expected = Err(());
        }

        match (got, expected) {
            (Ok(topics), Ok(names)) => {
                let got: Vec<&str> = topics.iter().map(Topic::as_str).collect();
                prop_assert_eq!(got, names);
            }
            (Err(reason), Err(())) => prop_assert!(!reason.is_empty()),
            (got, expected) => prop_assert!(false, "{:?}: got {:?}, expected {:?}", query, got, expected),
        }
    }

    /// `start_points`: no text (or an empty one) is `default` for each topic; a text with
    /// another number of comma-separated parts than topics, or longer than that many cursors
    /// and commas can be, is a reset for each; otherwise each part is read on its own, an
    /// empty part as no cursor.
    #[test]
    fn start_points_reads_each_part_or_resets_all(
        position in positions(),
        n in 0..6usize,
        default in defaults(),
    ) {
        let got = start_points(position.as_deref(), n, default);
        let expected = match position.as_deref() {
            None | Some("") => vec![default; n],
            Some(text) => {
                let parts: Vec<&str> = text.split(',').collect();
                if parts.len() != n || text.len() > n * (push_core::MAX_CURSOR_LEN + 1) {
                    vec![StartFrom::Invalid; n]
                } else {
                    parts.iter().map(|p| start_oracle(Some(*p).filter(|p| !p.is_empty()), default)).collect()
                }
            }
        };
        prop_assert_eq!(got, expected, "{:?} for {} topics", position, n);
    }
}

// ---------------------------------------------------------------------------------------------
// A publish's head.

fn content_types() -> impl Strategy<Value = Vec<u8>> {
    let known = prop::sample::select(vec![
        "application/json",
        "application/octet-stream",
        "text/plain",
        "text/",
        "text",
        "application/ld+json",
        "+json",
        "application/jsonx",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "",
    ]);
    let dressed = (
        known,
        prop::collection::vec(any::<bool>(), 32),
        prop::sample::select(vec!["", " ", "\t", "  \t"]),
        prop::sample::select(vec![
            "",
            "; charset=utf-8",
            ";",
            "; a=\"b;c\"",
            ",text/plain",
            "\u{e9}",
        ]),
    )
        .prop_map(|(t, upper, pad, params)| {
            let t: String = t
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            format!("{pad}{t}{pad}{params}").into_bytes()
        });
    prop_oneof![3 => dressed, 1 => header_bytes()]
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..32),
        any::<String>().prop_map(String::into_bytes),
        prop::sample::select(vec![
            &b"{\"a\":[1,2.5e3,null,true]}"[..],
            b"\"\xc3\xa9\"",
            b"{oops",
            b"",
            b" 1 ",
            b"\xff\xfe",
            b"\"\xff\"",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

fn event_types() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::string::string_regex("[A-Za-z0-9_.:-]{1,64}").expect("regex"),
        1 => proptest::string::string_regex("[A-Za-z0-9_.:~-]{0,66}").expect("regex"),
        1 => prop::sample::select(vec!["price", "chat.message:v1", "", "a b", "a\tb"])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn keys() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => proptest::string::string_regex("[!-~]{1,128}")
            .expect("regex")
            .prop_map(String::into_bytes),
        1 => proptest::string::string_regex("[!-~]{126,130}|[!-~]{0,4}[ \t]{1,2}[!-~]{0,4}")
            .expect("regex")
            .prop_map(String::into_bytes),
        1 => header_bytes(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `PublishHead::from_parts` refuses exactly an invalid event type (from the header, else
    /// the first `?event=`); `event` then refuses exactly a body that is not of the
    /// `Content-Type`'s kind, then an invalid idempotency key, and otherwise gives the event
    /// with that kind (or the body's own when the type names none), type, key and bytes.
    #[test]
    fn publish_heads_are_accepted_exactly_when_valid(
        content_type in prop::option::of(content_types()),
        key in prop::option::of(keys()),
        type_header in prop::option::of(prop_oneof![
            event_types().prop_filter_map("a header value", |t| HeaderValue::from_str(&t).ok().map(|_| t.into_bytes())),
            header_bytes(),
        ]),
        type_param in prop::option::of(event_types()),
        body in bodies(),
    ) {
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(v) = &content_type {
            headers.push(("content-type", v));
        }
        if let Some(v) = &key {
            headers.push(("idempotency-key", v));
        }
        if let Some(v) = &type_header {
            headers.push(("push-event-type", v));
        }
        let query = type_param.as_ref().map_or(String::new(), |t| format!("?a=1&event={}&event=x", form_encode(t)));
        let parts = parts(&format!("/topics/t{query}"), &headers);

        let event_type = match &type_header {
            Some(v) => Some(header_text(v).unwrap_or("\u{fffd}").to_owned()),
            None => type_param.clone(),
        };
        let head = PublishHead::from_parts(&parts);
        if let Some(t) = event_type.as_ref().filter(|t| !event_type_ok(t)) {
            prop_assert!(
                matches!(head, Err(Error::EventTypeLength { .. } | Error::EventTypeChar(_))),
                "type {:?}: {:?}", t, head
            );
            return Ok(());
        }
        let head = head.expect("a valid event type is accepted");

        let kind = kind_oracle(content_type.as_deref());
        let utf8 = std::str::from_utf8(&body).is_ok();
        let body_ok = match kind {
            Some(PayloadKind::Text) => utf8,
            // What a JSON payload is, is push-core's rule (its own property tests).
            Some(PayloadKind::Json) => NewEvent::json(body.clone()).is_ok(),
            _ => true,
        };
        let key_text = key.as_deref().map(|k| header_text(k).unwrap_or("\u{fffd}"));
        let event = head.event(body.clone().into());
        if !body_ok {
            let kind = kind.expect("a kind");
            prop_assert!(matches!(event, Err(Error::Payload { kind: k, .. }) if k == kind), "{:?}", event);
        } else if key_text.is_some_and(|k| !key_ok(k)) {
            prop_assert!(matches!(event, Err(Error::IdempotencyKey { .. })), "key {:?}: {:?}", key_text, event);
        } else {
            let event = event.expect("a valid publish is accepted");
            let own = if utf8 { PayloadKind::Text } else { PayloadKind::Binary };
            prop_assert_eq!(event.kind(), kind.unwrap_or(own));
            prop_assert_eq!(event.event_type().map(|t| t.as_str()), event_type.as_deref());
            prop_assert_eq!(event.idempotency_key(), key_text);
            prop_assert_eq!(&event.data()[..], &body[..]);
        }
    }

    /// `payload_kind` is the kind the `Content-Type` names.
    #[test]
    fn payload_kind_follows_the_content_type(content_type in prop::option::of(content_types())) {
        let headers: Vec<(&str, &[u8])> = content_type.iter().map(|v| ("content-type", &v[..])).collect();
        let parts = parts("/", &headers);
        prop_assert_eq!(push_http::payload_kind(&parts.headers), kind_oracle(content_type.as_deref()));
    }
}

// ---------------------------------------------------------------------------------------------
// JSON Web Tokens.

#[cfg(feature = "jwt")]
mod jwt {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{Algorithm, EncodingKey};
    use proptest::prelude::*;
    use push_http::jwt::Jwt;
    use push_http::{Allow, Authorizer, Grant, Refusal};
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
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
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

    /// A refusal is a `401` with `WWW-Authenticate: Bearer` and a reason that does not echo
    /// the token.
    fn check_refusal(refusal: &Refusal, token: &str) -> Result<(), TestCaseError> {
        prop_assert!(matches!(refusal, Refusal::Unauthorized(_)), "{:?}", refusal);
        let res = refusal.response::<bytes::Bytes>();
        prop_assert_eq!(res.status(), http::StatusCode::UNAUTHORIZED);
        prop_assert_eq!(
            res.headers().get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
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
                prop::sample::select(vec!["sub", "iss", "iat", "jti", "typ"])
                    .prop_map(str::to_owned),
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
        let claims =
            json!({"exp": future, "push": {"subscribe": ["*"], "publish": ["*"]}}).to_string();
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
            let jwt = Jwt::hs256(SECRET);
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
            let refusal = Jwt::hs256(SECRET).grant(&parts).expect_err("not signed with the secret");
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
            let jwt = Jwt::hs256(SECRET);
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
            let refusal = Jwt::hs256(SECRET).grant(&bearer(&token)).expect_err("not a claims object");
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
            let got = Jwt::hs256(SECRET).grant(&parts);
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
        let result = std::panic::catch_unwind(|| Jwt::hs256(SECRET).grant(&bearer(&token)));
        let grant = result.expect("Jwt::grant panicked");
        assert!(matches!(grant, Err(Refusal::Unauthorized(_))), "{grant:?}");
    }

    /// RFC 7519 §2: a NumericDate may have a fraction, as `nbf` is read; a token expiring
    /// at `NOW.5` is accepted too.
    #[test]
    fn a_fractional_exp_is_accepted() {
        let exp = now() + MARGIN;
        let token = sign(format!("{{\"exp\":{exp}.5}}").as_bytes());
        let grant = Jwt::hs256(SECRET).grant(&bearer(&token));
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
        for jwt in [Jwt::hs256(SECRET), Jwt::hs256(SECRET).audience(&["push"])] {
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
            let grant = Jwt::hs256(SECRET).grant(&bearer(&token));
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
            prop_assert!(Jwt::hs256(SECRET).grant(&bearer(&token)).is_err(), "aud {} accepted", aud);
            let token = sign(json!({"exp": exp, "push": push}).to_string().as_bytes());
            prop_assert!(Jwt::hs256(SECRET).grant(&bearer(&token)).is_err(), "push {:?} accepted", push);
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
}
