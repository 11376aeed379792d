//! Property tests of the text push-core reads from clients: cursors, topic names, event types,
//! idempotency keys and payloads of a declared kind. Arbitrary input never panics, and each is
//! accepted exactly when the documented rule holds; each rule is written out below as an
//! oracle of its own rather than taken from the code under test.

use proptest::prelude::*;
use proptest::sample::Index;
use push_core::{
    Cursor, Epoch, Error, EventType, NewEvent, PayloadKind, StartFrom, Topic, MAX_CURSOR_LEN,
    MAX_EVENT_TYPE_LEN, MAX_TOPIC_LEN,
};

const CASES: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Oracles: the documented rules, written independently of the parsers.

/// The documented cursor text: `EPOCH-SEQ`, the epoch in lowercase hex without leading zeros
/// (never zero), the sequence in decimal without leading zeros; exactly what `Display` writes.
/// Computed digit by digit with checked arithmetic, then required to be the canonical form.
fn cursor_oracle(text: &str) -> Option<(u64, u64)> {
    let (epoch_text, seq_text) = text.split_once('-')?;
    let mut epoch: u64 = 0;
    for c in epoch_text.chars() {
        let digit = match c {
            '0'..='9' => c as u64 - '0' as u64,
            'a'..='f' => c as u64 - 'a' as u64 + 10,
            _ => return None,
        };
        epoch = epoch.checked_mul(16)?.checked_add(digit)?;
    }
    let mut seq: u64 = 0;
    for c in seq_text.chars() {
        let digit = match c {
            '0'..='9' => c as u64 - '0' as u64,
            _ => return None,
        };
        seq = seq.checked_mul(10)?.checked_add(digit)?;
    }
    // Canonical: no empty part, no leading zero, a nonzero epoch.
    (epoch != 0 && format!("{epoch:x}-{seq}") == text).then_some((epoch, seq))
}

/// Topic names: 1 to 128 bytes of ASCII letters, digits and `- _ . ~ :`.
fn topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.~:".contains(c)
}

/// Event types: 1 to 64 bytes of ASCII letters, digits and `- _ . :`.
fn event_type_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.:".contains(c)
}

/// The error a name of `max` bytes over `allowed` gets: `Err(None)` for its length, `Err(c)`
/// for its first character outside the set, `Ok` when valid.
fn name_oracle(name: &str, max: usize, allowed: fn(char) -> bool) -> Result<(), Option<char>> {
    if name.is_empty() || name.len() > max {
        return Err(None);
    }
    match name.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(Some(c)),
        None => Ok(()),
    }
}

/// Idempotency keys: 1 to 128 visible ASCII characters (`!` to `~`).
fn key_oracle(key: &str) -> bool {
    (1..=128).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// UTF-8 as RFC 3629 defines it (no surrogates, no overlong forms, nothing above U+10FFFF).
fn utf8_oracle(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let lead = bytes[i];
        // The continuation count and the range of the first continuation byte.
        let (more, first) = match lead {
            0x00..=0x7f => (0, 0x80..=0xbf),
            0xc2..=0xdf => (1, 0x80..=0xbf),
            0xe0 => (2, 0xa0..=0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80..=0xbf),
            0xed => (2, 0x80..=0x9f),
            0xf0 => (3, 0x90..=0xbf),
            0xf1..=0xf3 => (3, 0x80..=0xbf),
            0xf4 => (3, 0x80..=0x8f),
            _ => return false,
        };
        for k in 1..=more {
            let Some(&b) = bytes.get(i + k) else {
                return false;
            };
            let range = if k == 1 { first.clone() } else { 0x80..=0xbf };
            if !range.contains(&b) {
                return false;
            }
        }
        i += 1 + more;
    }
    true
}

/// RFC 8259's grammar of one JSON text (a value between optional whitespace), over bytes:
/// UTF-8 is checked apart.
fn json_grammar(bytes: &[u8]) -> bool {
    let mut p = Json { b: bytes, i: 0 };
    p.ws();
    let ok = p.value();
    p.ws();
    ok && p.i == bytes.len()
}

struct Json<'a> {
    b: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let hit = self.b[self.i..].starts_with(word);
        if hit {
            self.i += word.len();
        }
        hit
    }

    fn value(&mut self) -> bool {
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.eat(b'}') {
                    return true;
                }
                loop {
                    self.ws();
                    if !self.string() {
                        return false;
                    }
                    self.ws();
                    if !self.eat(b':') {
                        return false;
                    }
                    self.ws();
                    if !self.value() {
                        return false;
                    }
                    self.ws();
                    if self.eat(b'}') {
                        return true;
                    }
                    if !self.eat(b',') {
                        return false;
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.eat(b']') {
                    return true;
                }
                loop {
                    self.ws();
                    if !self.value() {
                        return false;
                    }
                    self.ws();
                    if self.eat(b']') {
                        return true;
                    }
                    if !self.eat(b',') {
                        return false;
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.i += 1;
                    return true;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return false;
                                }
                                self.i += 1;
                            }
                        }
                        _ => return false,
                    }
                }
                Some(0x00..=0x1f) => return false,
                Some(_) => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if !self.eat(b'0') && (!matches!(self.peek(), Some(b'1'..=b'9')) || self.digits() == 0) {
            return false;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }
}

#[test]
fn the_oracles_agree_with_known_answers() {
    assert_eq!(cursor_oracle("abc-42"), Some((0xabc, 42)));
    assert_eq!(
        cursor_oracle("ffffffffffffffff-18446744073709551615"),
        Some((u64::MAX, u64::MAX))
    );
    for bad in [
        "", "-", "0-1", "0a-1", "a-01", "a-", "-1", "A-1", "a-+1", "a- 1", "a-1-2",
    ] {
        assert_eq!(cursor_oracle(bad), None, "{bad:?}");
    }
    assert!(utf8_oracle("héllo €𝄞".as_bytes()));
    for bad in [
        &b"\xc0\x80"[..],
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x82",
        b"\xff",
    ] {
        assert!(!utf8_oracle(bad), "{bad:?}");
    }
    for good in [
        "0",
        "-0.5e+3",
        " [1, {\"a\": [true, null]}] ",
        "\"\\ud800\\n\"",
        "{}",
    ] {
        assert!(json_grammar(good.as_bytes()), "{good:?}");
    }
    for bad in [
        "", "01", "1.", ".5", "+1", "[1,]", "{\"a\"}", "'a'", "\"\t\"", "tru", "1 2",
    ] {
        assert!(!json_grammar(bad.as_bytes()), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Strings made of characters a cursor has, the ones it must not have, and separators; and
/// near misses: hex, a dash, digits, of any lengths (zero epochs, leading zeros, overflow).
fn cursorish() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("[0-9a-fA-FxX+ \t\n,:._/-]{0,40}").expect("regex"),
        proptest::string::string_regex("[0-9a-f]{0,18}-[0-9]{0,22}").expect("regex"),
        proptest::string::string_regex("0{0,2}[0-9a-f]{0,3}-0{0,2}[0-9]{0,3}").expect("regex"),
    ]
}

/// A valid cursor's text mutated into one of the classes that must be refused.
#[derive(Debug, Clone)]
enum Broken {
    LeadingZeroEpoch,
    LeadingZeroSeq,
    Sign(&'static str, bool),
    Space(&'static str, usize),
    EpochOverflow(u8),
    SeqOverflow(u64),
    Separator(char),
    Uppercase,
    ZeroEpoch,
    EmptyPart(bool),
    ExtraPart(String),
}

fn broken() -> impl Strategy<Value = Broken> {
    prop_oneof![
        Just(Broken::LeadingZeroEpoch),
        Just(Broken::LeadingZeroSeq),
        (prop::sample::select(vec!["+", "-", "−"]), any::<bool>())
            .prop_map(|(s, on_epoch)| Broken::Sign(s, on_epoch)),
        (
            prop::sample::select(vec![" ", "\t", "\n", "\r", "\u{a0}", "\u{3000}"]),
            0..4usize
        )
            .prop_map(|(s, at)| Broken::Space(s, at)),
        (1..=15u8).prop_map(Broken::EpochOverflow),
        (0..u64::MAX).prop_map(Broken::SeqOverflow),
        prop::sample::select(vec![':', '_', ',', '.', '/', ' ', '+', '–', '=', '\0'])
            .prop_map(Broken::Separator),
        Just(Broken::Uppercase),
        Just(Broken::ZeroEpoch),
        any::<bool>().prop_map(Broken::EmptyPart),
        proptest::string::string_regex("-[0-9a-f]{0,3}")
            .expect("regex")
            .prop_map(Broken::ExtraPart),
    ]
}

fn break_cursor(epoch: u64, seq: u64, how: &Broken) -> String {
    let (e, s) = (format!("{epoch:x}"), seq.to_string());
    match how {
        Broken::LeadingZeroEpoch => format!("0{e}-{s}"),
        Broken::LeadingZeroSeq => format!("{e}-0{s}"),
        Broken::Sign(sign, true) => format!("{sign}{e}-{s}"),
        Broken::Sign(sign, false) => format!("{e}-{sign}{s}"),
        Broken::Space(space, 0) => format!("{space}{e}-{s}"),
        Broken::Space(space, 1) => format!("{e}{space}-{s}"),
        Broken::Space(space, 2) => format!("{e}-{space}{s}"),
        Broken::Space(space, _) => format!("{e}-{s}{space}"),
        // More than 16 hex digits, with a nonzero first one.
        Broken::EpochOverflow(extra) => format!("{e:f>16}{}-{s}", "f".repeat(*extra as usize)),
        Broken::SeqOverflow(excess) => {
            format!("{e}-{}", u128::from(u64::MAX) + 1 + u128::from(*excess))
        }
        Broken::Separator(c) => format!("{e}{c}{s}"),
        // The epoch with at least one letter in uppercase (an epoch of only digits gets one).
        Broken::Uppercase => format!("{}A-{s}", e.to_uppercase()),
        Broken::ZeroEpoch => format!("0-{s}"),
        Broken::EmptyPart(true) => format!("-{s}"),
        Broken::EmptyPart(false) => format!("{e}-"),
        Broken::ExtraPart(tail) => format!("{e}-{s}{tail}"),
    }
}

fn epoch_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        1..=0xffu64,
        1..=0xffff_ffff_ffffu64,
        1..=u64::MAX,
        Just(u64::MAX)
    ]
}

fn seq_value() -> impl Strategy<Value = u64> {
    prop_oneof![0..=100u64, any::<u64>(), Just(u64::MAX)]
}

/// Names over a set a little wider than the allowed one, of lengths around the limit `max`.
fn names(max: usize) -> impl Strategy<Value = String> {
    let allowed = "[A-Za-z0-9_.~:-]";
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(&format!("{allowed}{{0,{}}}", max + 3)).expect("regex"),
        proptest::string::string_regex(&format!("{allowed}{{{},{}}}", max - 2, max + 2))
            .expect("regex"),
        proptest::string::string_regex(&format!(
            "({allowed}|[ /#?%+*,;=@!$&'()\\[\\]\t\n\0é€𝄞]){{0,{}}}",
            max + 2
        ))
        .expect("regex"),
    ]
}

/// Keys over printable ASCII, space and a few others, of lengths around 128.
fn keys() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex("[ -~]{0,131}").expect("regex"),
        proptest::string::string_regex("[!-~]{126,130}").expect("regex"),
        proptest::string::string_regex("([!-~]|[ \t\u{7f}\u{80}é\0]){0,20}").expect("regex"),
    ]
}

/// Byte sequences at the edges of UTF-8: overlong forms, surrogates, the largest code points,
/// truncated sequences, stray continuation bytes.
fn utf8_edges() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"a",
        b"\"",
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"\xc2\x80",
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xdf\xbf",
        b"\xe0\x80\x80",
        b"\xe0\xa0\x80",
        b"\xed\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xee\x80\x80",
        b"\xef\xbf\xbf",
        b"\xf0\x8f\xbf\xbf",
        b"\xf0\x90\x80\x80",
        b"\xf4\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xe2\x82",
        b"\x80",
        b"\xbf",
        b"\xfe",
        b"\xff",
        b"\0",
    ];
    prop::collection::vec(prop::sample::select(pieces), 0..8).prop_map(|p| p.concat())
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A change to a JSON text that may or may not keep it valid.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    Truncate(Index),
    Delete(Index),
    Insert(Index, u8),
    Replace(Index, u8),
    Wrap(&'static str, &'static str),
    Twice,
}

fn json_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(
            b" \t\n\r\x0b\x0c{}[]\",:\\/-+.0123456789eEtrufalsn\0\x1f\x7f".to_vec()
        ),
        0x80..=0xffu8,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let spaces = vec![
        "", " ", "\t\n\r ", "\x0b", "\x0c", "\u{a0}", "\u{feff}", "\0",
    ];
    prop_oneof![
        Just(Mutation::None),
        any::<Index>().prop_map(Mutation::Truncate),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), json_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), json_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (
            prop::sample::select(spaces.clone()),
            prop::sample::select(spaces)
        )
            .prop_map(|(a, b)| Mutation::Wrap(a, b)),
        Just(Mutation::Twice),
    ]
}

fn mutate(mut text: Vec<u8>, how: &Mutation) -> Vec<u8> {
    let at = |i: &Index, len: usize| i.index(len + 1);
    match how {
        Mutation::None => {}
        Mutation::Truncate(i) => text.truncate(at(i, text.len())),
        Mutation::Delete(i) if !text.is_empty() => {
            text.remove(i.index(text.len()));
        }
        Mutation::Delete(_) => {}
        Mutation::Insert(i, b) => text.insert(at(i, text.len()), *b),
        Mutation::Replace(i, b) if !text.is_empty() => {
            let i = i.index(text.len());
            text[i] = *b;
        }
        Mutation::Replace(..) => {}
        Mutation::Wrap(a, b) => {
            text = [a.as_bytes(), &text, b.as_bytes()].concat();
        }
        Mutation::Twice => text = [&text[..], b" ", &text[..]].concat(),
    }
    text
}

/// Payload bytes: arbitrary, UTF-8 text, UTF-8 edge cases (also inside a JSON string), tokens
/// of the JSON alphabet, and serialized JSON values with one mutation.
fn payloads() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        any::<String>().prop_map(String::into_bytes),
        utf8_edges(),
        prop::collection::vec(json_byte(), 0..24),
        (json_value(), mutation()).prop_map(|(v, m)| mutate(v.to_string().into_bytes(), &m)),
        (json_value(), mutation())
            .prop_map(|(v, m)| { mutate(serde_json::to_vec_pretty(&v).unwrap_or_default(), &m) }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Cursors.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any text: `Cursor::parse` (and `FromStr`, and `StartFrom::from_client`) accept it
    /// exactly when it is the canonical text of a cursor, with that cursor's parts.
    #[test]
    fn cursor_text_is_accepted_exactly_when_canonical(
        text in prop_oneof![any::<String>(), cursorish()],
        default in prop::sample::select(vec![StartFrom::Newest, StartFrom::Oldest]),
    ) {
        let parsed = Cursor::parse(&text);
        let from_str = text.parse::<Cursor>();
        match cursor_oracle(&text) {
            Some((epoch, seq)) => {
                let cursor = parsed.expect("a canonical cursor parses");
                prop_assert_eq!((cursor.epoch().get(), cursor.seq()), (epoch, seq));
                prop_assert_eq!(from_str.ok(), Some(cursor));
                prop_assert_eq!(StartFrom::from_client(Some(&text), default), StartFrom::After(cursor));
            }
            None => {
                prop_assert!(matches!(parsed, Err(Error::Cursor(_))), "{:?} accepted: {:?}", text, parsed);
                prop_assert!(from_str.is_err());
                prop_assert_eq!(StartFrom::from_client(Some(&text), default), StartFrom::Invalid);
            }
        }
        prop_assert_eq!(StartFrom::from_client(None, default), default);
    }

    /// Every cursor's text is its canonical form, at most `MAX_CURSOR_LEN` bytes, and parses
    /// back to the same cursor.
    #[test]
    fn every_cursor_round_trips_through_its_text(epoch in epoch_value(), seq in seq_value()) {
        let cursor = Cursor::new(Epoch::new(epoch).expect("nonzero"), seq);
        let text = cursor.to_string();
        prop_assert_eq!(&text, &format!("{epoch:x}-{seq}"));
        prop_assert!(text.len() <= MAX_CURSOR_LEN);
        prop_assert_eq!(Cursor::parse(&text).ok(), Some(cursor));
        prop_assert_eq!(text.parse::<Cursor>().ok(), Some(cursor));
        prop_assert_eq!(cursor_oracle(&text), Some((epoch, seq)));
    }

    /// A valid cursor with a leading zero, a sign, whitespace, an overflowing part, another
    /// separator, uppercase, a zero epoch, an empty or an extra part is refused.
    #[test]
    fn broken_cursors_are_refused(epoch in epoch_value(), seq in seq_value(), how in broken()) {
        let text = break_cursor(epoch, seq, &how);
        prop_assert_eq!(cursor_oracle(&text), None, "the oracle takes {:?}", text);
        let parsed = Cursor::parse(&text);
        prop_assert!(matches!(parsed, Err(Error::Cursor(_))), "{:?} accepted: {:?}", text, parsed);
    }

    /// Epochs: zero is none, every other value is one and keeps its value.
    #[test]
    fn epochs_are_the_nonzero_values(value in prop_oneof![Just(0u64), any::<u64>()]) {
        prop_assert_eq!(Epoch::new(value).map(Epoch::get), (value != 0).then_some(value));
    }
}

// ---------------------------------------------------------------------------------------------
// Names and keys.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// `Topic::new` (and `FromStr`) accept exactly the names of 1 to `MAX_TOPIC_LEN` bytes of
    /// the charset; the error says which rule failed and names the first bad character.
    #[test]
    fn topic_names_follow_the_charset_and_length_rule(name in names(MAX_TOPIC_LEN)) {
        let got = Topic::new(&name);
        match name_oracle(&name, MAX_TOPIC_LEN, topic_char) {
            Ok(()) => {
                let topic = got.expect("a valid name is accepted");
                prop_assert_eq!(topic.as_str(), name.as_str());
                prop_assert_eq!(topic.to_string(), name.clone());
                prop_assert_eq!(name.parse::<Topic>().ok(), Some(topic));
            }
            Err(None) => prop_assert!(
                matches!(got, Err(Error::TopicLength { len, max: MAX_TOPIC_LEN }) if len == name.len()),
                "{:?}: {:?}", name, got
            ),
            Err(Some(c)) => prop_assert!(
                matches!(got, Err(Error::TopicChar(bad)) if bad == c), "{:?}: {:?}", name, got
            ),
        }
    }

    /// `EventType::new` accepts exactly the types of 1 to `MAX_EVENT_TYPE_LEN` bytes of its
    /// charset (which has no `~`).
    #[test]
    fn event_types_follow_the_charset_and_length_rule(name in names(MAX_EVENT_TYPE_LEN)) {
        let got = EventType::new(&name);
        match name_oracle(&name, MAX_EVENT_TYPE_LEN, event_type_char) {
            Ok(()) => {
                let t = got.expect("a valid type is accepted");
                prop_assert_eq!(t.as_str(), name.as_str());
                prop_assert_eq!(t.to_string(), name.clone());
            }
            Err(None) => prop_assert!(
                matches!(got, Err(Error::EventTypeLength { len, max: MAX_EVENT_TYPE_LEN }) if len == name.len()),
                "{:?}: {:?}", name, got
            ),
            Err(Some(c)) => prop_assert!(
                matches!(got, Err(Error::EventTypeChar(bad)) if bad == c), "{:?}: {:?}", name, got
            ),
        }
    }

    /// `with_idempotency_key` accepts exactly 1 to 128 visible ASCII characters, and keeps the
    /// key as given.
    #[test]
    fn idempotency_keys_are_one_to_128_visible_ascii(key in keys()) {
        let got = NewEvent::text("x").with_idempotency_key(&key);
        if key_oracle(&key) {
            let event = got.expect("a valid key is accepted");
            prop_assert_eq!(event.idempotency_key(), Some(key.as_str()));
        } else {
            prop_assert!(matches!(got, Err(Error::IdempotencyKey { max: 128 })), "{:?}: {:?}", key, got);
        }
    }

    /// `PayloadKind::from_name` knows exactly the three names `as_str` gives.
    #[test]
    fn payload_kind_names_are_exact(name in prop_oneof![
        any::<String>(),
        prop::sample::select(vec!["text", "json", "binary", "Text", "JSON", " json", "json ", ""])
            .prop_map(str::to_owned),
    ]) {
        let kind = PayloadKind::from_name(&name);
        prop_assert_eq!(kind.is_some(), ["text", "json", "binary"].contains(&name.as_str()));
        if let Some(kind) = kind {
            prop_assert_eq!(kind.as_str(), name.as_str());
        }
    }
}

#[cfg(feature = "serde")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A topic deserialized from JSON (an axum `Path<Topic>`, say) follows the same rule.
    #[test]
    fn deserialized_topics_follow_the_same_rule(name in names(MAX_TOPIC_LEN)) {
        let got = serde_json::from_value::<Topic>(serde_json::Value::String(name.clone()));
        prop_assert_eq!(got.is_ok(), name_oracle(&name, MAX_TOPIC_LEN, topic_char).is_ok());
        if let Ok(topic) = got {
            prop_assert_eq!(topic.as_str(), name.as_str());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payload kinds.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A text payload is accepted exactly when it is UTF-8; an untyped one is text exactly
    /// when it is UTF-8, else binary; a binary one always. The bytes are kept as given.
    #[test]
    fn text_payloads_are_accepted_exactly_when_utf8(data in payloads()) {
        let utf8 = utf8_oracle(&data);
        let text = NewEvent::of_kind(PayloadKind::Text, data.clone());
        match &text {
            Ok(event) => {
                prop_assert!(utf8, "{:?} accepted as text", data);
                prop_assert_eq!(event.kind(), PayloadKind::Text);
                prop_assert_eq!(&event.data()[..], &data[..]);
            }
            Err(e) => {
                prop_assert!(!utf8, "{:?} refused as text: {}", data, e);
                prop_assert!(matches!(e, Error::Payload { kind: PayloadKind::Text, .. }), "{:?}", e);
            }
        }
        let untyped = NewEvent::new(data.clone());
        prop_assert_eq!(untyped.kind(), if utf8 { PayloadKind::Text } else { PayloadKind::Binary });
        let binary = NewEvent::of_kind(PayloadKind::Binary, data.clone()).expect("any bytes");
        prop_assert_eq!(binary.kind(), PayloadKind::Binary);
        prop_assert_eq!(&binary.data()[..], &data[..]);
    }

    /// A JSON payload in UTF-8 is accepted exactly when it is one RFC 8259 JSON text; one that
    /// is not UTF-8 is refused.
    #[test]
    fn json_payloads_are_accepted_exactly_when_rfc8259(data in payloads()) {
        let grammar = json_grammar(&data);
        let got = NewEvent::of_kind(PayloadKind::Json, data.clone());
        prop_assert_eq!(NewEvent::json(data.clone()).is_ok(), got.is_ok());
        if utf8_oracle(&data) {
            prop_assert_eq!(got.is_ok(), grammar, "{:?}: {:?}", String::from_utf8_lossy(&data), got);
        } else {
            prop_assert!(got.is_err(), "{:?} accepted as JSON", data);
        }
        match got {
            Ok(event) => {
                prop_assert_eq!(event.kind(), PayloadKind::Json);
                prop_assert_eq!(&event.data()[..], &data[..]);
            }
            Err(e) => prop_assert!(matches!(e, Error::Payload { kind: PayloadKind::Json, .. }), "{:?}", e),
        }
    }

    /// A serialized JSON value is accepted exactly when serde_json's `Value` decodes it.
    #[test]
    fn serialized_json_values_are_accepted(value in json_value(), depth in 0..300usize) {
        let text = value.to_string();
        prop_assert!(NewEvent::json(text.clone()).is_ok(), "{}", text);
        let nested = format!("{}{text}{}", "[".repeat(depth), "]".repeat(depth));
        prop_assert!(json_grammar(nested.as_bytes()));
        let decodes = serde_json::from_str::<serde_json::Value>(&nested).is_ok();
        prop_assert_eq!(NewEvent::json(nested).is_ok(), decodes);
        let unclosed = "[{\"a\":".repeat(depth + 1); // refused, and no stack overflow
        prop_assert!(NewEvent::json(unclosed).is_err());
    }

    /// The rule below, over random text: a JSON string holding bytes that are not UTF-8.
    #[test]
    fn non_utf8_json_payloads_are_refused(
        before in any::<String>(),
        bad in utf8_edges(),
    ) {
        prop_assume!(!utf8_oracle(&bad));
        let data = [b"[\"", before.as_bytes(), &bad, b"\"]"].concat();
        prop_assert!(NewEvent::json(data.clone()).is_err(), "{:?} accepted as JSON", data);
    }
}

/// RFC 8259 §8.1: a JSON text is UTF-8. Parsing the bytes (`serde_json::from_slice`) skips
/// the inside of strings without looking at them, so a JSON payload could hold bytes that are
/// not UTF-8, and every technique would then carry them as if they were JSON.
#[test]
fn json_payload_with_a_non_utf8_string_is_refused() {
    let got = NewEvent::of_kind(PayloadKind::Json, &b"\"\xff\""[..]);
    assert!(
        matches!(
            got,
            Err(Error::Payload {
                kind: PayloadKind::Json,
                ..
            })
        ),
        "{got:?}"
    );
}
