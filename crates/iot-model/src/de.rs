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
//! Identifiers and enums accept integers as well as strings (see the `id_newtype!` macro and
//! [`crate::wire_enum::deserialize`]).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::{Json, JsonMap};

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
        // Through the budgeted tree, so that text sent as a huge object costs no more than the budget allows.
        let value = FreeFormVisitor.visit_map(map)?;
        Ok(Some(value.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = FreeFormVisitor.visit_seq(seq)?;
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

impl<'de, M: Default + Extend<(String, Json)>> Visitor<'de> for ObjectVisitor<M> {
    type Value = Option<M>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (or a string holding one)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = M::default();
        // The first member allocates a whole B-tree node; later ones share nodes.
        let mut cost = MAP_NODE_COST;
        while let Some(key) = map.next_key::<String>()? {
            charge(cost + key.len())?;
            cost = MAP_ENTRY_COST;
            let FreeForm(value) = map.next_value()?;
            out.extend(Some((key, value)));
        }
        Ok(Some(out))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if !t.starts_with('{') {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        let inner = |e: serde_json::Error| E::custom(format_args!("an object held in a string: {e}"));
        let mut de = serde_json::Deserializer::from_str(t);
        let value = de.deserialize_map(ObjectVisitor::<M>(PhantomData)).map_err(inner)?;
        de.end().map_err(inner)?;
        Ok(value)
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

/// Reads an optional JSON object (a map type such as `JsonMap` or `BTreeMap<String, Json>`), under the decode
/// budget (see [`with_budget`]).
pub fn object<'de, D: Deserializer<'de>, M: Default + Extend<(String, Json)>>(
    deserializer: D,
) -> Result<Option<M>, D::Error> {
    deserializer.deserialize_any(ObjectVisitor(PhantomData))
}

/// Reads a required JSON object; `null` or absence is an error.
pub fn object_required<'de, D: Deserializer<'de>, M: Default + Extend<(String, Json)>>(
    deserializer: D,
) -> Result<M, D::Error> {
    object(deserializer)?.ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"a JSON object"))
}

/// Reads a JSON object whose `null` means the empty object.
pub fn object_or_default<'de, D: Deserializer<'de>, M: Default + Extend<(String, Json)>>(
    deserializer: D,
) -> Result<M, D::Error> {
    object(deserializer).map(Option::unwrap_or_default)
}

// ---------------------------------------------------------------------------------------------------------
// Lists.

/// A list read under the decode budget.
struct BudgetedList<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for BudgetedList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = BudgetedList<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<T>()? {
                    grow(&mut out)?;
                    out.push(item);
                }
                Ok(BudgetedList(out))
            }
        }
        deserializer.deserialize_seq(V(PhantomData))
    }
}

/// Reads an optional list, charging each element to the decode budget (see [`with_budget`]): a list of
/// two-byte strings (`"",`) would otherwise decode into 24-byte `String`s.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Vec<T>>, D::Error> {
    Ok(Option::<BudgetedList<T>>::deserialize(deserializer)?.map(|l| l.0))
}

/// Reads a required list; `null` or absence is an error.
pub fn list_required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    BudgetedList::deserialize(deserializer).map(|l| l.0)
}

/// Reads a list whose `null` means the empty list.
pub fn list_or_default<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    list(deserializer).map(Option::unwrap_or_default)
}

// ---------------------------------------------------------------------------------------------------------
// The decode budget.

thread_local! {
    /// Bytes of decoded structure the current decode may still build; `None` when no budget is set.
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
}

/// What a free-form object member is charged besides its key's bytes: its key and value slots, twice (the
/// nodes of a B-tree are at least about half full).
const MAP_ENTRY_COST: usize = 2 * (std::mem::size_of::<String>() + std::mem::size_of::<Json>());

/// What the first member of a free-form object is charged besides its key's bytes: a B-tree leaf of eleven
/// key and value slots and its header (an object of one member costs that much).
const MAP_NODE_COST: usize = 11 * (std::mem::size_of::<String>() + std::mem::size_of::<Json>()) + 16;

/// Makes room for one more element in `list`, charging the new block to the budget first. The capacity grows
/// as `Vec` grows it (doubling, from 4), but under our control, and every block is charged in full: while a
/// block is copied into the next, both are live, and the charges of the blocks so far always cover that.
fn grow<T, E: de::Error>(list: &mut Vec<T>) -> Result<(), E> {
    if list.len() < list.capacity() {
        return Ok(());
    }
    let target = list.capacity().saturating_mul(2).max(4);
    charge(target.saturating_mul(std::mem::size_of::<T>()))?;
    list.reserve_exact(target - list.len());
    Ok(())
}

/// The message of a decode that ran out of budget.
pub const BUDGET_EXCEEDED: &str = "the answer decodes into more memory than its size allows (decode budget exhausted)";

/// Runs `f` with a decode budget of `bytes`, then restores the budget that was set before (none, usually).
///
/// Free-form JSON (`param`, `extendInfo`...), free text sent as an object or a list, and the lists of the model
/// are charged to the budget as they are read, at an upper estimate of the heap they take (strings are not
/// charged: they never take more than the body's bytes). A decode that would spend more fails with
/// [`BUDGET_EXCEEDED`]. Without a budget nothing is charged: `serde_json::from_str` on a model type behaves as
/// it always did. The client sets a budget proportional to the body's length around every decode, so that no
/// body, whatever its shape, decodes into more than a small multiple of its size (see `docs/decisions.md`).
pub fn with_budget<R>(bytes: usize, f: impl FnOnce() -> R) -> R {
    /// Puts the previous budget back, even when `f` panics.
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.set(self.0);
        }
    }
    let _restore = Restore(BUDGET.replace(Some(bytes)));
    f()
}

/// Charges `bytes` to the decode budget, if one is set.
fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    BUDGET.with(|budget| match budget.get() {
        None => Ok(()),
        Some(left) => match left.checked_sub(bytes) {
            Some(rest) => {
                budget.set(Some(rest));
                Ok(())
            }
            None => Err(E::custom(BUDGET_EXCEEDED)),
        },
    })
}

/// A free-form JSON value read under the decode budget.
struct FreeForm(Json);

impl<'de> Deserialize<'de> for FreeForm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FreeFormVisitor).map(FreeForm)
    }
}

/// Builds a `Json` tree as `serde_json` does, charging every array element and object member.
struct FreeFormVisitor;

impl<'de> Visitor<'de> for FreeFormVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(FreeForm(value)) = seq.next_element()? {
            grow(&mut out)?;
            out.push(value);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
        ObjectVisitor::<JsonMap<String, Json>>(PhantomData).visit_map(map).map(|m| Json::Object(m.unwrap_or_default()))
    }
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
