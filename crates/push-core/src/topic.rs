//! Topic names.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use crate::Error;

/// The longest accepted topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;

/// The validated name of a topic: 1 to [`MAX_TOPIC_LEN`] bytes of ASCII letters, digits and
/// `-`, `_`, `.`, `~`, `:`.
///
/// The charset is the URL path segment characters that need no escaping, plus `:` for
/// namespacing (`chat:room-1`), so a topic can appear in a path such as `/sse/{topic}` as it is.
/// Cloning is cheap (a reference count).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`Error::TopicLength`] when the name is empty or too long, [`Error::TopicChar`] when it
    /// has a character outside the charset.
    pub fn new(name: &str) -> Result<Self, Error> {
        if name.is_empty() || name.len() > MAX_TOPIC_LEN {
            return Err(Error::TopicLength {
                len: name.len(),
                max: MAX_TOPIC_LEN,
            });
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':')))
        {
            return Err(Error::TopicChar(c));
        }
        Ok(Self(Arc::from(name)))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", &*self.0)
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Topic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Topic::new(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl serde::Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert_eq!(
            Topic::new("chat:room-1.a_b~").unwrap().as_str(),
            "chat:room-1.a_b~"
        );
        assert!(matches!(
            Topic::new(""),
            Err(Error::TopicLength { len: 0, .. })
        ));
        assert!(matches!(Topic::new("a/b"), Err(Error::TopicChar('/'))));
        assert!(matches!(Topic::new("a b"), Err(Error::TopicChar(' '))));
        assert!(matches!(Topic::new("é"), Err(Error::TopicChar('é'))));
        assert!(Topic::new(&"x".repeat(MAX_TOPIC_LEN)).is_ok());
        assert!(matches!(
            Topic::new(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(Error::TopicLength { .. })
        ));
    }
}
