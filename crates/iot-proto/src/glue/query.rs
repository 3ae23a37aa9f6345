//! Values that travel in a query string or a path segment: numbers, text, identifiers and wire enums. Only the
//! sides that write or read parameters need them, so the module exists with `client` or `server`.

use std::borrow::Cow;

/// A value that can travel in a query string or a path segment (only the sides that write or read one need it).
pub trait QueryValue: Sized {
    /// The unencoded text form.
    fn to_query(&self) -> Cow<'_, str>;
    /// Reads the decoded text form.
    fn from_query(s: &str) -> Result<Self, String>;
}

impl QueryValue for String {
    fn to_query(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
    fn from_query(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}

macro_rules! query_number {
    ($($t:ty),*) => {$(
        impl QueryValue for $t {
            fn to_query(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
            fn from_query(s: &str) -> Result<Self, String> {
                s.parse().map_err(|_| format!("expected {}, got {s:?}", stringify!($t)))
            }
        }
    )*};
}
query_number!(u32, u64, i64, bool);

/// Implements [`QueryValue`] for identifier newtypes (checked on read).
macro_rules! query_value_id {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::glue::QueryValue for $t {
            fn to_query(&self) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(self.as_str())
            }
            fn from_query(s: &str) -> Result<Self, String> {
                <$t>::new(s).map_err(|e| e.to_string())
            }
        }
    )*};
}
pub(crate) use query_value_id;

/// Implements [`QueryValue`] for wire enums (canonical spelling on write, tolerant on read).
macro_rules! query_value_enum {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::glue::QueryValue for $t {
            fn to_query(&self) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(self.as_str())
            }
            fn from_query(s: &str) -> Result<Self, String> {
                Ok(<$t as iot_model::WireEnum>::from_wire(s))
            }
        }
    )*};
}
pub(crate) use query_value_enum;
