//! Forward-compatible string enums: read case-insensitively with aliases, written canonically, and an unknown
//! value kept instead of failing.
//!
//! The logic is written once here, generically over [`WireEnum`]; a generated enum states only its data (the
//! spelling table, its variants, how to wrap and unwrap an unknown value, each variant's canonical spelling)
//! and its serde, `Display` and `FromStr` impls are one-line calls into this module.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// A wire value this SDK does not know, kept as it was received.
///
/// It has no public constructor: [`WireEnum::from_wire`] makes one when a string matches no spelling of the
/// enum's table. The `Unknown` variants are public, so a value can be moved into another enum, where it may be
/// a known spelling; decide on the known variants, not on `Unknown`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnknownValue(Box<str>);

impl UnknownValue {
    /// The value as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    // Private so that the only source of unknown values is a failed lookup in `from_wire` (see the type's docs).
    fn new(s: &str) -> Self {
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
///
/// Inlined into each enum's `from_wire`, where the table is a constant: out of line, the exact pass walks a
/// table it cannot see and reads cost about 0.6% more instructions (task-list decode bench).
#[inline(always)]
fn lookup(table: &[(&str, &[&str])], s: &str) -> Option<usize> {
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

/// A forward-compatible string enum: every generated enum of this crate, and iot-proto's `ErrorCode`.
///
/// Reading ([`from_wire`](Self::from_wire)) matches the canonical names and aliases of
/// [`TABLE`](Self::TABLE) without regard to ASCII case and keeps a value that matches none as an
/// [`UnknownValue`]; writing ([`as_wire`](Self::as_wire)) gives the canonical name, or the unknown value as it
/// was received.
pub trait WireEnum: Sized + Clone + 'static {
    /// Canonical names and accepted aliases, in variant order.
    const TABLE: &'static [(&'static str, &'static [&'static str])];
    /// Every known variant, in table order.
    const KNOWN: &'static [Self];

    /// Wraps a value that matches no spelling of [`TABLE`](Self::TABLE) (the enum's `Unknown` variant).
    fn unknown(value: UnknownValue) -> Self;

    /// The value as received if this is one the SDK does not know, `None` for a known variant.
    fn unknown_value(&self) -> Option<&UnknownValue>;

    /// The canonical wire form (or the unknown value as received).
    ///
    /// Required rather than looked up in [`TABLE`](Self::TABLE) because a `match` per variant is what the
    /// generator writes anyway, and it costs no search.
    fn as_wire(&self) -> &str;

    /// Reads a wire value; unknown values are kept.
    fn from_wire(s: &str) -> Self {
        match lookup(Self::TABLE, s) {
            Some(i) => Self::KNOWN[i].clone(),
            None => Self::unknown(UnknownValue::new(s)),
        }
    }

    /// Whether this is a value the SDK does not know.
    fn is_unknown(&self) -> bool {
        self.unknown_value().is_some()
    }
}

/// Writes a wire enum as [`WireEnum::as_wire`], a string; what the enums' `Serialize` impls call, and usable
/// with `#[serde(serialize_with = "iot_model::wire_enum::serialize")]`.
pub fn serialize<T: WireEnum, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.as_wire())
}

/// Reads a wire enum with [`WireEnum::from_wire`] from a string, or from an integer taken as its decimal digits
/// (the platform sends some values, such as error codes, as numbers); what the enums' `Deserialize` impls call,
/// and usable with `#[serde(deserialize_with = "iot_model::wire_enum::deserialize")]`.
pub fn deserialize<'de, T: WireEnum, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(WireVisitor(PhantomData))
}

/// The visitor behind [`deserialize`].
struct WireVisitor<T>(PhantomData<T>);

impl<T: WireEnum> Visitor<'_> for WireVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The type's own name ("a FileType string"), without its module path.
        let path = std::any::type_name::<T>();
        write!(f, "a {} string", path.rsplit("::").next().unwrap_or(path))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_wire(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::from_wire(&v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::from_wire(&v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::{UnknownValue, WireEnum, lookup};
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

    /// The generic `deserialize` keeps what each enum's hand-expanded visitor did: numbers read as their digits,
    /// and an error that names the enum's type.
    #[test]
    fn numbers_read_as_digits_and_errors_name_the_type() {
        let code: FileType = serde_json::from_str("12").unwrap();
        assert_eq!(code.unknown_value().map(UnknownValue::as_str), Some("12"));
        let negative: FileType = serde_json::from_str("-3").unwrap();
        assert_eq!(negative.as_wire(), "-3");
        let e = serde_json::from_str::<FileType>("true").unwrap_err().to_string();
        assert!(e.contains("expected a FileType string"), "{e}");
    }
}
