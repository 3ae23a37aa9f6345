//! The tolerant reader: serde helpers the generated model applies by field type, so that every rule holds
//! for every field of that type rather than field by field.
//!
//! The rules (each has a test in this module and a golden test in iot-proto):
//! - **Free text** (`String` fields: names, descriptions, `detailInfo`, `error_desc`...) accepts any JSON value:
//!   a string as sent, a number or boolean as its JSON text, an object or array as compact JSON text. A
//!   diagnostic member in an unexpected shape never costs the item that carries it.
//! - **Counters and sizes** (`u32`, `u64`, `i64` fields: `totalCount`, `expiresIn`, `pageNo`, the `staResult`
//!   counters...) accept a JSON number or a string holding one (`"42"`, ` 42 `), and a float without a
//!   fraction (`42.0`); an empty string counts as absent. A value out of the field's range is an error.
//! - **Flags** (`bool` fields) accept `true`/`false` and the strings `"true"`/`"false"` in any case.
//! - **Objects** (`param`, `extendInfo`, `extendPara`) accept an object, or a string holding one (some
//!   gateways send nested JSON escaped); an empty string counts as absent.
//! - **`null` means absent** everywhere; a required field with a default reads `null` as that default.
//!
//! Identifiers and enums accept integers as well as strings (see the `id_newtype!` and `wire_enum!` macros).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// Reads a field whose `null` means the same as absent: the type's default.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

// ---------------------------------------------------------------------------------------------------------
// Free text.

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("free text")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // The JSON spelling of the number (serde_json's own formatting), not Rust's `Display`.
        Ok(Some(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Some(value.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Some(value.to_string()))
    }
}

/// Reads optional free text from any JSON value (see the module documentation).
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(TextVisitor)
}

/// Reads required free text from any JSON value but `null`.
pub fn text_required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    text(deserializer)?.ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"free text"))
}

/// Reads free text whose `null` means the empty string.
pub fn text_or_default<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    text(deserializer).map(Option::unwrap_or_default)
}

// ---------------------------------------------------------------------------------------------------------
// Counters.

/// An integer type the tolerant reader can fill from a number or a numeric string.
pub trait LooseInt: Sized + FromStr + TryFrom<u64> + TryFrom<i64> + Default {
    /// The type's name, for error messages.
    const NAME: &'static str;
}

impl LooseInt for u32 {
    const NAME: &'static str = "a 32-bit unsigned integer";
}
impl LooseInt for u64 {
    const NAME: &'static str = "a 64-bit unsigned integer";
}
impl LooseInt for i64 {
    const NAME: &'static str = "a 64-bit integer";
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: LooseInt> IntVisitor<T> {
    fn out_of_range<E: de::Error>(unexpected: de::Unexpected<'_>) -> E {
        E::invalid_value(unexpected, &T::NAME)
    }
}

impl<'de, T: LooseInt> Visitor<'de> for IntVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (a number or a string holding one)", T::NAME)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::try_from(v).map(Some).map_err(|_| Self::out_of_range(de::Unexpected::Unsigned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::try_from(v).map(Some).map_err(|_| Self::out_of_range(de::Unexpected::Signed(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Only a float that is exactly an integer has one meaning; `2.5` pages is not a count.
        let whole = v.is_finite() && v.fract() == 0.0;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let converted = if !whole {
            None
        } else if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            T::try_from(v as u64).ok()
        } else if (-9_223_372_036_854_775_808.0..0.0).contains(&v) {
            T::try_from(v as i64).ok()
        } else {
            None
        };
        converted.map(Some).ok_or_else(|| Self::out_of_range(de::Unexpected::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let trimmed = v.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        trimmed.parse::<T>().map(Some).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &T::NAME))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Reads an optional integer from a number or a numeric string (see the module documentation).
pub fn int<'de, D: Deserializer<'de>, T: LooseInt>(deserializer: D) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_any(IntVisitor(PhantomData))
}

/// Reads a required integer; `null`, absence or an empty string is an error.
pub fn int_required<'de, D: Deserializer<'de>, T: LooseInt>(deserializer: D) -> Result<T, D::Error> {
    int(deserializer)?.ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &T::NAME))
}

/// Reads an integer whose `null` (or empty string) means zero.
pub fn int_or_default<'de, D: Deserializer<'de>, T: LooseInt>(deserializer: D) -> Result<T, D::Error> {
    int(deserializer).map(Option::unwrap_or_default)
}

// ---------------------------------------------------------------------------------------------------------
// Flags.

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean (or the string \"true\" or \"false\")")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            Ok(None)
        } else if t.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if t.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Reads an optional boolean from a JSON boolean or its string spelling.
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    deserializer.deserialize_any(FlagVisitor)
}

/// Reads a required boolean.
pub fn flag_required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    flag(deserializer)?.ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &FlagVisitor))
}

// ---------------------------------------------------------------------------------------------------------
// Objects.

struct ObjectVisitor<M>(PhantomData<M>);

impl<'de, M: DeserializeOwned> Visitor<'de> for ObjectVisitor<M> {
    type Value = Option<M>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (or a string holding one)")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        M::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if !t.starts_with('{') {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        serde_json::from_str::<M>(t).map(Some).map_err(|e| E::custom(format_args!("an object held in a string: {e}")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Reads an optional JSON object (a map type such as `JsonMap` or `BTreeMap<String, Json>`).
pub fn object<'de, D: Deserializer<'de>, M: DeserializeOwned>(deserializer: D) -> Result<Option<M>, D::Error> {
    deserializer.deserialize_any(ObjectVisitor(PhantomData))
}

/// Reads a required JSON object; `null` or absence is an error.
pub fn object_required<'de, D: Deserializer<'de>, M: DeserializeOwned>(deserializer: D) -> Result<M, D::Error> {
    object(deserializer)?.ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"a JSON object"))
}

/// Reads a JSON object whose `null` means the empty object.
pub fn object_or_default<'de, D: Deserializer<'de>, M: DeserializeOwned + Default>(
    deserializer: D,
) -> Result<M, D::Error> {
    object(deserializer).map(Option::unwrap_or_default)
}

// ---------------------------------------------------------------------------------------------------------
// Aliases.

/// Picks the value of a member that has other documented spellings: the canonical spelling when it carries
/// a value, else the first alias that does. Used by the generated readers of structures with aliases, which
/// read every spelling into its own slot so that an answer carrying two spellings is never a "duplicate
/// field" error.
pub fn first_present<T>(canonical: Option<T>, aliases: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    canonical.or_else(|| aliases.into_iter().flatten().next())
}

/// The error of a generated reader when a required member is absent under every spelling.
pub fn missing(member: &'static str) -> String {
    format!("missing field `{member}`")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(default, deserialize_with = "super::text")]
        s: Option<String>,
        #[serde(default, deserialize_with = "super::int")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "super::int")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "super::flag")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "super::object")]
        o: Option<serde_json::Map<String, serde_json::Value>>,
    }

    fn read(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn free_text_takes_any_json_value() {
        let cases = [
            (r#""x y""#, Some("x y")),
            ("12", Some("12")),
            ("-3", Some("-3")),
            ("1.5", Some("1.5")),
            ("true", Some("true")),
            ("null", None),
            (r#"{"b":1,"a":[true]}"#, Some(r#"{"a":[true],"b":1}"#)),
            ("[1,\"x\"]", Some(r#"[1,"x"]"#)),
        ];
        for (raw, want) in cases {
            let t = read(&format!(r#"{{"s":{raw}}}"#)).unwrap();
            assert_eq!(t.s.as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn counters_take_numbers_and_numeric_strings() {
        for (raw, want) in
            [("7", Some(7)), (r#""7""#, Some(7)), (r#"" 7 ""#, Some(7)), ("7.0", Some(7)), ("null", None)]
        {
            assert_eq!(read(&format!(r#"{{"n":{raw}}}"#)).unwrap().n, want, "{raw}");
        }
        assert_eq!(read(r#"{"n":""}"#).unwrap().n, None);
        assert_eq!(read(r#"{"i":"-12"}"#).unwrap().i, Some(-12));
        for bad in [r#""seven""#, "7.5", "-1", "4294967296", r#""-1""#, "true", "[1]", "{}"] {
            assert!(read(&format!(r#"{{"n":{bad}}}"#)).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn flags_take_booleans_and_their_spellings() {
        for (raw, want) in
            [("true", Some(true)), (r#""FALSE""#, Some(false)), (r#""True""#, Some(true)), ("null", None)]
        {
            assert_eq!(read(&format!(r#"{{"b":{raw}}}"#)).unwrap().b, want, "{raw}");
        }
        assert!(read(r#"{"b":"yes"}"#).is_err());
    }

    #[test]
    fn objects_take_objects_and_escaped_objects() {
        let direct = read(r#"{"o":{"k":1}}"#).unwrap().o.unwrap();
        let escaped = read(r#"{"o":"{\"k\":1}"}"#).unwrap().o.unwrap();
        assert_eq!(direct, escaped);
        assert_eq!(read(r#"{"o":""}"#).unwrap().o, None);
        assert_eq!(read(r#"{"o":null}"#).unwrap().o, None);
        assert!(read(r#"{"o":"plain words"}"#).is_err());
        assert!(read(r#"{"o":[1]}"#).is_err());
    }

    #[test]
    fn the_canonical_spelling_wins_when_both_carry_a_value() {
        assert_eq!(super::first_present(Some(1), [Some(2)]), Some(1));
        assert_eq!(super::first_present(None, [None, Some(3)]), Some(3));
        assert_eq!(super::first_present::<u8>(None, [None]), None);
    }
}
