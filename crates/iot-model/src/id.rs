//! Rules shared by every identifier newtype, and the macro that declares one.

use crate::ModelError;

/// Checks an identifier: not empty, not `.` or `..` (which a URL resolver would swallow), no control
/// characters, and at most `max_len` characters. Anything else is allowed, because it is percent-encoded
/// wherever it travels.
pub fn check_id(kind: &'static str, value: &str, max_len: usize) -> Result<(), ModelError> {
    let bytes = value.as_bytes();
    // Ids are decoded by the thousand per page, so the common ASCII case is checked on bytes, and characters
    // are only counted when the byte length alone could exceed the limit.
    // One branch-free pass flags non-ASCII bytes and ASCII control bytes together; only non-ASCII ids need
    // the character-level check (which also catches the C1 controls).
    let (non_ascii, ascii_control) =
        bytes.iter().fold((false, false), |(n, c), &b| (n | (b >= 0x80), c | (b < 0x20) | (b == 0x7f)));
    let has_control = if non_ascii { value.chars().any(char::is_control) } else { ascii_control };
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value == "." || value == ".." {
        "must not be `.` or `..`"
    } else if has_control {
        "must not contain control characters"
    } else if bytes.len() > max_len && value.chars().count() > max_len {
        "is too long"
    } else {
        return Ok(());
    };
    Err(ModelError::InvalidId { kind, reason })
}

/// Declares an identifier newtype checked with [`check_id`]. Used by the generated model.
#[macro_export]
#[doc(hidden)]
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        ///
        /// Checked at construction: not empty, not `.` or `..`, no control characters, at most
        #[doc = concat!(stringify!($max), " characters.")]
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Box<str>);

        impl $name {
            /// Longest accepted value, in characters.
            pub const MAX_LEN: usize = $max;

            /// Checks and wraps an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, $crate::ModelError> {
                let value = value.into();
                $crate::id::check_id(stringify!($name), &value, $max)?;
                Ok(Self(value.into_boxed_str()))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::ModelError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::ModelError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl ::serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                    fn visit_string<E: ::serde::de::Error>(self, v: String) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                    // An id sent as a bare integer has one meaning: its decimal digits.
                    fn visit_u64<E: ::serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        $name::new(v.to_string()).map_err(E::custom)
                    }
                    fn visit_i64<E: ::serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::new(v.to_string()).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn rejects_what_a_path_would_swallow_or_break() {
        for bad in ["", ".", "..", "a\nb", "a\0", "x\u{7f}"] {
            assert!(check_id("T", bad, 256).is_err(), "{bad:?}");
        }
        for good in ["a/b", "?x=1", "#", "%2F", "a b", "日本", "...", ".a", "a.."] {
            assert!(check_id("T", good, 256).is_ok(), "{good:?}");
        }
        assert!(check_id("T", &"é".repeat(256), 256).is_ok());
        assert!(check_id("T", &"é".repeat(257), 256).is_err());
    }
}
