//! The glue generated for every endpoint (parameter writer and reader, checks, answer reader) and the helpers
//! it calls. The module is private: nothing here is nameable outside the crate, so the glue is no promise to
//! users, and [`Endpoint`](crate::Endpoint), whose supertrait [`Glue`] is, cannot be implemented outside it.

#[cfg(any(feature = "client", feature = "server"))]
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::FromHttpResponseError;
use crate::validate::Validator;
#[cfg(feature = "client")]
use crate::wire::encode_component;

#[cfg(any(feature = "client", feature = "server"))]
mod query;
#[cfg(any(feature = "client", feature = "server"))]
pub use query::QueryValue;
#[cfg(any(feature = "client", feature = "server"))]
pub(crate) use query::{query_value_enum, query_value_id};

/// What the generator writes for each endpoint; generic code in this crate calls it, users never see it.
///
/// `Body` and `Response` are the endpoint's [`Endpoint::Body`](crate::Endpoint::Body) and
/// [`Endpoint::Response`](crate::Endpoint::Response); they are parameters here because a supertrait cannot
/// name its subtrait's associated types.
pub trait Glue<Body, Response>: Sized {
    /// Writes path and query parameters.
    #[cfg(feature = "client")]
    fn write_params(&self, w: &mut ParamWriter);
    /// Reads path and query parameters and puts the body in place.
    #[cfg(feature = "server")]
    fn read_params(r: &mut ParamReader<'_>, body: Body) -> Result<Self, ParamError>;
    /// Records every limit and rule the parameters and the body break.
    fn check(&self, v: &mut Validator);
    /// Reads the body of a 2xx JSON answer: paged queries keep the readable items of a page that holds
    /// unreadable ones ([`crate::client::read_page`]), every other endpoint reads with
    /// [`crate::client::read_answer`].
    fn read_answer(status: http::StatusCode, body: &[u8]) -> Result<Response, FromHttpResponseError>;
}

/// The glue generated for every page structure: how the reader of a page with unreadable items finds the
/// items member and puts the readable and unreadable items back. `Item` is the page's
/// [`Page::Item`](crate::Page::Item).
pub trait PageGlue<Item> {
    /// The wire names of the items member, the canonical one first.
    const ITEM_MEMBERS: &'static [&'static str];
    /// Replaces the items and the unreadable items.
    fn replace_items(&mut self, items: Vec<Item>, rejected: Vec<iot_model::RejectedItem>);
}

/// What a request body must be: readable always, writable on the client side, which sends it (a body with a
/// secret serializes only under `client`).
#[cfg(feature = "client")]
pub trait WireBody: Serialize + DeserializeOwned {}
#[cfg(feature = "client")]
impl<T: Serialize + DeserializeOwned> WireBody for T {}
/// What a request body must be: readable always, writable on the client side, which sends it.
#[cfg(not(feature = "client"))]
pub trait WireBody: DeserializeOwned {}
#[cfg(not(feature = "client"))]
impl<T: DeserializeOwned> WireBody for T {}

/// What an answer must be: readable always, writable on the server side, which sends it (an answer with a
/// token serializes only under `server`).
#[cfg(feature = "server")]
pub trait WireAnswer: Serialize + DeserializeOwned {}
#[cfg(feature = "server")]
impl<T: Serialize + DeserializeOwned> WireAnswer for T {}
/// What an answer must be: readable always, writable on the server side, which sends it.
#[cfg(not(feature = "server"))]
pub trait WireAnswer: DeserializeOwned {}
#[cfg(not(feature = "server"))]
impl<T: DeserializeOwned> WireAnswer for T {}

/// A request parameter could not be read (server side).
#[cfg(feature = "server")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's wire name.
    pub name: &'static str,
    /// What was wrong.
    pub message: String,
}

#[cfg(feature = "server")]
impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "parameter {}: {}", self.name, self.message)
    }
}

/// Collects an endpoint's path values and query string (client side). Values are percent-encoded here, once.
#[cfg(feature = "client")]
#[derive(Debug, Default)]
pub struct ParamWriter {
    pub(crate) path: Vec<(&'static str, String)>,
    pub(crate) query: String,
}

#[cfg(feature = "client")]
impl ParamWriter {
    /// Sets a path placeholder's value.
    pub fn path(&mut self, name: &'static str, value: &str) {
        self.path.push((name, encode_component(value).into_owned()));
    }

    /// Adds an optional query parameter; absent values are left out entirely.
    pub fn query<T: QueryValue>(&mut self, name: &'static str, value: &Option<T>) {
        if let Some(v) = value {
            self.query_required(name, v);
        }
    }

    /// Adds a query parameter.
    pub fn query_required<T: QueryValue>(&mut self, name: &'static str, value: &T) {
        if !self.query.is_empty() {
            self.query.push('&');
        }
        self.query.push_str(&encode_component(name));
        self.query.push('=');
        self.query.push_str(&encode_component(&value.to_query()));
    }
}

/// Hands decoded path and query values to an endpoint's generated reader (server side).
#[cfg(feature = "server")]
#[derive(Debug)]
pub struct ParamReader<'a> {
    pub(crate) path: &'a [(&'static str, String)],
    pub(crate) query: &'a [(String, String)],
}

#[cfg(feature = "server")]
impl ParamReader<'_> {
    /// Reads a path placeholder.
    pub fn path<T: QueryValue>(&mut self, name: &'static str) -> Result<T, ParamError> {
        let raw = self.path.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("");
        T::from_query(raw).map_err(|message| ParamError { name, message })
    }

    /// Reads an optional query parameter; an empty value counts as absent, a repeated one is an error.
    pub fn query<T: QueryValue>(&mut self, name: &'static str) -> Result<Option<T>, ParamError> {
        let mut found = self.query.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let first = found.next();
        if found.next().is_some() {
            return Err(ParamError { name, message: "given more than once".into() });
        }
        match first {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => T::from_query(v).map(Some).map_err(|message| ParamError { name, message }),
        }
    }

    /// Reads a required query parameter.
    pub fn query_required<T: QueryValue>(&mut self, name: &'static str) -> Result<T, ParamError> {
        self.query(name)?.ok_or_else(|| ParamError { name, message: "is required".into() })
    }
}

#[cfg(test)]
mod tests {
    use iot_model::{OperationStatus, TaskId};

    use super::*;

    #[test]
    fn query_values_print_back_as_they_read() {
        assert_eq!(u32::from_query("42"), Ok(42));
        assert!(u32::from_query("-1").is_err());
        assert_eq!(bool::from_query(&true.to_query()), Ok(true));
        assert_eq!(TaskId::from_query("t-1").map(|t| t.to_query().into_owned()), Ok("t-1".to_owned()));
        assert!(TaskId::from_query("..").is_err());
        // A wire enum reads tolerantly, writes canonically and keeps an unknown value as received.
        assert_eq!(OperationStatus::from_query("FAILED"), Ok(OperationStatus::Failed));
        assert_eq!(OperationStatus::Failed.to_query(), "failed");
        assert_eq!(OperationStatus::from_query("paused").map(|s| s.to_query().into_owned()), Ok("paused".into()));
    }

    #[test]
    #[cfg(all(feature = "client", feature = "server"))]
    fn absent_empty_and_repeated_query_values() {
        let query = [("a".to_owned(), "1".to_owned()), ("b".to_owned(), String::new())];
        let twice = [("a".to_owned(), "1".to_owned()), ("a".to_owned(), "2".to_owned())];
        let mut r = ParamReader { path: &[], query: &query };
        assert_eq!(r.query::<u32>("a"), Ok(Some(1)));
        assert_eq!(r.query::<u32>("b"), Ok(None));
        assert_eq!(r.query_required::<u32>("b").map_err(|e| e.to_string()), Err("parameter b: is required".into()));
        let mut r = ParamReader { path: &[], query: &twice };
        assert!(r.query::<u32>("a").is_err());
        let mut w = ParamWriter::default();
        w.query("a", &Some(1u32));
        w.query::<u32>("b", &None);
        w.query_required("c d", &"x&y".to_owned());
        assert_eq!(w.query, "a=1&c%20d=x%26y");
    }
}
