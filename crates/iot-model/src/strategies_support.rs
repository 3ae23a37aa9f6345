//! Hand-written building blocks for the generated proptest strategies.

use proptest::prelude::*;

use crate::wire_enum::WireEnum;
use crate::{Json, JsonMap, Timestamp};

/// Any string, ASCII or not, of up to 12 characters, including JSON-hostile ones.
pub fn string() -> BoxedStrategy<String> {
    prop_oneof!["[a-zA-Z0-9 _.:/-]{0,12}", "\\PC{0,6}", Just("a&b=c?d#e%2F\"\\".to_owned()),].boxed()
}

/// A valid timestamp between years 1970 and 2100.
pub fn timestamp() -> BoxedStrategy<Timestamp> {
    (0i64..4_102_444_800).prop_filter_map("in range", |s| Timestamp::from_unix_seconds(s).ok()).boxed()
}

/// A JSON value without floats (which would not round-trip exactly), nested at most twice.
pub fn json() -> BoxedStrategy<Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        string().prop_map(Json::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            proptest::collection::btree_map(string(), inner, 0..3).prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A JSON object of small values.
pub fn json_object() -> BoxedStrategy<JsonMap<String, Json>> {
    proptest::collection::btree_map(string(), json(), 0..3).prop_map(|m| m.into_iter().collect()).boxed()
}

/// A valid identifier built with `make`, from any string that passes the identifier rules.
pub fn id<T: 'static + std::fmt::Debug>(make: fn(String) -> Result<T, crate::ModelError>) -> BoxedStrategy<T> {
    prop_oneof!["[a-zA-Z0-9_-]{1,24}", "\\PC{1,8}", Just("a/b ?x=1#%2F".to_owned())]
        .prop_filter_map("valid id", move |s| make(s).ok())
        .boxed()
}

/// Any value of a wire enum: a known variant, or an unknown value that matches no known spelling.
pub fn wire_enum<E: WireEnum + std::fmt::Debug>() -> BoxedStrategy<E> {
    let known = proptest::sample::select(E::KNOWN.to_vec());
    let unknown = "[a-z]{1,10}_x".prop_map(|s| E::from_wire(&s));
    prop_oneof![4 => known, 1 => unknown].boxed()
}

/// A secret built from a plain string.
pub fn secret<T: 'static + std::fmt::Debug>(make: fn(String) -> T) -> BoxedStrategy<T> {
    "[a-zA-Z0-9+/=._-]{1,40}".prop_map(make).boxed()
}
