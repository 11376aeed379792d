//! Topic names.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

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
    /// [`TopicError`] when the name is empty, too long or has a character outside the charset.
    pub fn new(name: &str) -> Result<Self, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong {
                len: name.len(),
                max: MAX_TOPIC_LEN,
            });
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':')))
        {
            return Err(TopicError::BadChar(c));
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
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a topic name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is empty.
    #[error("topic name is empty")]
    Empty,
    /// The name is longer than [`MAX_TOPIC_LEN`].
    #[error("topic name is {len} bytes long, the limit is {max}")]
    TooLong {
        /// The length of the rejected name.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name has a character outside the allowed set.
    #[error("topic name has the character {0:?}; allowed are ASCII letters, digits and - _ . ~ :")]
    BadChar(char),
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
        assert_eq!(Topic::new(""), Err(TopicError::Empty));
        assert_eq!(Topic::new("a/b"), Err(TopicError::BadChar('/')));
        assert_eq!(Topic::new("a b"), Err(TopicError::BadChar(' ')));
        assert_eq!(Topic::new("é"), Err(TopicError::BadChar('é')));
        assert!(Topic::new(&"x".repeat(MAX_TOPIC_LEN)).is_ok());
        assert!(matches!(
            Topic::new(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong { .. })
        ));
    }
}
