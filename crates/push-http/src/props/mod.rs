//! Property tests of what push-http reads from a client's request: query strings, the cursor
//! in `Last-Event-ID` or the query, several topics and their combined cursor, a publish's
//! headers, and (feature `jwt`) bearer tokens. Arbitrary input never panics, and each is
//! accepted exactly when the documented rule holds; each rule is written out below as an
//! oracle of its own rather than taken from the code under test.

use crate::publish::PublishHead;
use crate::query::{cursor_text, query_value};
use crate::topics::{query_topics, start_points, MAX_TOPICS};
use http::request::Parts;
use http::HeaderValue;
use proptest::prelude::*;
use push_core::{Cursor, Epoch, Error, NewEvent, PayloadKind, StartFrom, Topic};

/// Where a request starts, as [`Endpoint::start_from`](crate::Endpoint::start_from) reads it.
fn start_from(parts: &Parts, header: Option<&str>, param: &str, default: StartFrom) -> StartFrom {
    StartFrom::from_client(cursor_text(parts, header, param).as_deref(), default)
}

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
        prop_assert_eq!(crate::publish::payload_kind(&parts.headers), kind_oracle(content_type.as_deref()));
    }
}

#[cfg(feature = "jwt")]
mod jwt;
