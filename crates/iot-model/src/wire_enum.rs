//! Forward-compatible string enums: read case-insensitively with aliases, written canonically, and an unknown
//! value kept instead of failing.

use std::fmt;

/// A wire value this SDK does not know, kept as it was received.
///
/// It cannot be built outside this crate, so a user cannot forge an "unknown" value that is in fact known;
/// the only way to get one is to parse a string no variant matches.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnknownValue(Box<str>);

impl UnknownValue {
    /// The value as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[doc(hidden)]
    pub fn __new(s: &str) -> Self {
        Self(s.into())
    }
}

impl fmt::Debug for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Finds the index of the table row whose canonical name or alias matches `s`, ignoring ASCII case.
///
/// Answers almost always carry the canonical spelling, so an exact comparison of the canonical names (a length
/// test, then the bytes) runs first; only a miss pays for the case-insensitive scan over names and aliases.
/// Both passes give the same row because no two spellings of one table are equal ignoring case (the tests of
/// this module check that for every generated enum).
pub fn lookup(table: &[(&str, &[&str])], s: &str) -> Option<usize> {
    let b = s.as_bytes();
    match table.iter().position(|(wire, _)| wire.as_bytes() == b) {
        Some(i) => Some(i),
        None => lookup_ignoring_case(table, s),
    }
}

/// The case-insensitive scan over canonical names and aliases behind [`lookup`].
#[cold]
fn lookup_ignoring_case(table: &[(&str, &[&str])], s: &str) -> Option<usize> {
    table
        .iter()
        .position(|(wire, aliases)| wire.eq_ignore_ascii_case(s) || aliases.iter().any(|a| a.eq_ignore_ascii_case(s)))
}

/// Implemented by every generated wire enum.
pub trait WireEnum: Sized + Clone + 'static {
    /// Canonical names and accepted aliases, in variant order.
    const TABLE: &'static [(&'static str, &'static [&'static str])];
    /// Every known variant, in table order.
    const KNOWN: &'static [Self];

    /// Reads a wire value; unknown values are kept.
    fn from_wire(s: &str) -> Self;

    /// The canonical wire form (or the unknown value as received).
    fn as_wire(&self) -> &str;

    /// Whether this is a value the SDK does not know.
    fn is_unknown(&self) -> bool;
}

/// Declares a wire enum's trait impls. Used by the generated model; the enum itself is generated with a final
/// `Unknown(UnknownValue)` variant. Exported, hidden, only because iot-proto's generated `ErrorCode` uses it
/// too; it is no part of the documented surface.
#[macro_export]
#[doc(hidden)]
macro_rules! wire_enum {
    ($name:ident { $($variant:ident => $wire:literal [$($alias:literal),*]),+ $(,)? }) => {
        impl $crate::wire_enum::WireEnum for $name {
            const TABLE: &'static [(&'static str, &'static [&'static str])] = &[$(($wire, &[$($alias),*])),+];
            const KNOWN: &'static [Self] = &[$($name::$variant),+];

            fn from_wire(s: &str) -> Self {
                match $crate::wire_enum::lookup(Self::TABLE, s) {
                    Some(i) => Self::KNOWN[i].clone(),
                    None => $name::Unknown($crate::wire_enum::UnknownValue::__new(s)),
                }
            }

            fn as_wire(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(v) => v.as_str(),
                }
            }

            fn is_unknown(&self) -> bool {
                matches!(self, $name::Unknown(_))
            }
        }

        impl $name {
            /// The canonical wire form (or the unknown value as received).
            pub fn as_str(&self) -> &str {
                <Self as $crate::wire_enum::WireEnum>::as_wire(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(<Self as $crate::wire_enum::WireEnum>::from_wire(s))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
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
                        Ok(<$name as $crate::wire_enum::WireEnum>::from_wire(v))
                    }
                    // A value sent as a number (an error code, say) is read as its decimal digits.
                    fn visit_u64<E: ::serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        Ok(<$name as $crate::wire_enum::WireEnum>::from_wire(&v.to_string()))
                    }
                    fn visit_i64<E: ::serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        Ok(<$name as $crate::wire_enum::WireEnum>::from_wire(&v.to_string()))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{WireEnum, lookup};
    use crate::*;

    /// Every spelling (canonical names and aliases) of a table, lower-cased.
    fn spellings<E: WireEnum>() -> Vec<String> {
        E::TABLE
            .iter()
            .flat_map(|(wire, aliases)| std::iter::once(*wire).chain(aliases.iter().copied()))
            .map(str::to_ascii_lowercase)
            .collect()
    }

    fn check<E: WireEnum>() {
        // `lookup` relies on this: an exact hit on a canonical name is the row the case-insensitive scan finds.
        let mut all = spellings::<E>();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "two spellings equal ignoring case in {:?}", E::TABLE);
        for (i, (wire, aliases)) in E::TABLE.iter().enumerate() {
            for spelling in std::iter::once(*wire).chain(aliases.iter().copied()) {
                for s in [spelling.to_string(), spelling.to_ascii_uppercase(), spelling.to_ascii_lowercase()] {
                    assert_eq!(lookup(E::TABLE, &s), Some(i), "{s:?}");
                }
            }
        }
        assert_eq!(lookup(E::TABLE, "no such value"), None);
        assert_eq!(lookup(E::TABLE, ""), None);
    }

    #[test]
    fn every_generated_table_has_distinct_spellings_and_finds_them_in_any_case() {
        check::<FileType>();
        check::<OperateType>();
        check::<OperationStatus>();
        check::<SubOperationStatus>();
        check::<ExecuteType>();
        check::<BatchTaskType>();
        check::<BatchTaskStatus>();
        check::<TaskDetailStatus>();
        check::<DeviceCmdType>();
        check::<BatchSelect>();
    }
}
