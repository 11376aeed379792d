//! Cursors: the resumable position of an event in its topic's log.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// The longest text form of a [`Cursor`]: 16 hex digits, a dash and 20 decimal digits.
pub const MAX_CURSOR_LEN: usize = 16 + 1 + 20;

/// Identifies one unbroken history of a topic.
///
/// A topic gets a new epoch whenever its log is not a continuation of an earlier one: a fresh
/// in-memory hub after a restart, a topic that was reclaimed and created again, a backend stream
/// that was deleted. A client holding a cursor of another epoch is told [`Outcome::Reset`] instead
/// of waiting for sequence numbers that will never come.
///
/// [`Outcome::Reset`]: crate::Outcome::Reset
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(NonZeroU64);

impl Epoch {
    /// Wraps a raw epoch value, or `None` for zero (never a valid epoch).
    #[must_use]
    pub const fn new(value: u64) -> Option<Self> {
        match NonZeroU64::new(value) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// A fresh, unpredictable epoch of 48 bits (so that cursors stay short).
    ///
    /// Two epochs made by one process are always different; epochs made by different processes
    /// collide with a probability of about 2^-48.
    #[must_use]
    pub fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            .hash(&mut hasher);
        std::process::id().hash(&mut hasher);
        let value = hasher.finish() & 0xffff_ffff_ffff;
        // A zero value has probability 2^-48; map it to 1 instead of looping.
        Self::new(value).unwrap_or(Self(NonZeroU64::MIN))
    }

    /// The raw value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({:x})", self.0)
    }
}

/// The position of an event in a topic: an [`Epoch`] and a sequence number.
///
/// Sequence numbers start at 1 and are contiguous within an epoch, so the distance between two
/// cursors of one epoch is the number of events between them. The cursor with sequence 0 stands
/// for "before the first event" of its epoch.
///
/// The text form is `EPOCH-SEQ`: the epoch in lowercase hexadecimal and the sequence in decimal,
/// both without leading zeros, for example `3fa2c41b9e07-42`. It is stable: [`Cursor::parse`]
/// accepts exactly the strings that [`Display`](fmt::Display) produces, so a cursor round-trips
/// through a client unchanged. To clients it is opaque.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    epoch: Epoch,
    seq: u64,
}

impl Cursor {
    /// A cursor at `seq` in `epoch`.
    #[must_use]
    pub const fn new(epoch: Epoch, seq: u64) -> Self {
        Self { epoch, seq }
    }

    /// The epoch.
    #[must_use]
    pub const fn epoch(self) -> Epoch {
        self.epoch
    }

    /// The sequence number (0 means "before the first event").
    #[must_use]
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// Parses the text form strictly.
    ///
    /// # Errors
    ///
    /// Returns [`Error::Cursor`] for anything that [`Display`](fmt::Display) would not produce:
    /// empty parts, uppercase or non-hex epoch digits, leading zeros, a zero epoch, overflow, or
    /// text longer than [`MAX_CURSOR_LEN`]. Never panics.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(Error::Cursor("too long"));
        }
        let (epoch, seq) = text.split_once('-').ok_or(Error::Cursor("missing '-'"))?;
        if epoch.is_empty() || epoch.len() > 16 {
            return Err(Error::Cursor("epoch must have 1 to 16 hex digits"));
        }
        if !epoch
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Error::Cursor("epoch must be lowercase hex"));
        }
        if epoch.starts_with('0') {
            return Err(Error::Cursor("epoch must not start with 0"));
        }
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Cursor("sequence must be decimal digits"));
        }
        if seq.len() > 1 && seq.starts_with('0') {
            return Err(Error::Cursor("sequence must not have leading zeros"));
        }
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| Error::Cursor("epoch overflows"))?;
        let epoch = Epoch::new(epoch).ok_or(Error::Cursor("epoch must not be zero"))?;
        let seq = seq
            .parse::<u64>()
            .map_err(|_| Error::Cursor("sequence overflows"))?;
        Ok(Self { epoch, seq })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch.0, self.seq)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({self})")
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A cursor is its text form in every serde format, and is read back through
/// [`Cursor::parse`]: a string that is not a cursor is a deserialization error.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Cursor::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn serde_is_the_text_form() {
        let c = Cursor::new(epoch(0x3fa2), 42);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"3fa2-42\"");
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
        let bad = serde_json::from_str::<Cursor>("\"3fa2-042\"").unwrap_err();
        assert!(bad.to_string().contains("cursor"), "{bad}");
        assert!(serde_json::from_str::<Cursor>("42").is_err());
    }

    fn epoch(v: u64) -> Epoch {
        Epoch::new(v).unwrap()
    }

    #[test]
    fn text_form_round_trips() {
        for (e, s) in [(1, 0), (0xabc, 42), (u64::MAX, u64::MAX), (0x10, 7)] {
            let c = Cursor::new(epoch(e), s);
            let text = c.to_string();
            assert_eq!(Cursor::parse(&text).ok(), Some(c), "{text}");
        }
        assert_eq!(Cursor::new(epoch(0xabc), 42).to_string(), "abc-42");
        assert_eq!(
            Cursor::new(epoch(u64::MAX), u64::MAX).to_string().len(),
            MAX_CURSOR_LEN
        );
    }

    #[test]
    fn rejects_non_canonical_text() {
        for bad in [
            "",
            "-",
            "abc",
            "abc-",
            "-1",
            "ABC-1",
            "0abc-1",
            "0-1",
            "abc-01",
            "abc-1-2",
            "abc- 1",
            "abc-+1",
            "xyz-1",
            "abc-18446744073709551616",
            "10000000000000000-1",
            "abc-1\n",
            "é-1",
            "aaaaaaaaaaaaaaaa-111111111111111111111",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn random_epochs_differ() {
        let a = Epoch::random();
        let b = Epoch::random();
        assert_ne!(a, b);
        assert!(a.get() < 1 << 48);
    }
}
