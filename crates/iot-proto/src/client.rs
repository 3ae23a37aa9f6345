//! Client side: typed request to `http::Request`, `http::Response` bytes to the typed answer or error.

use std::fmt;
use std::marker::PhantomData;

use http::StatusCode;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use iot_model::{AccessToken, AppId};
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::endpoint::{BodyKind, Endpoint, Page, ResponseKind};
use crate::error::{ApiError, DecodeError, FromHttpResponseError, IntoHttpError, excerpt};
use crate::generated::ErrorCode;
use crate::wire::BaseUrl;

/// Name of the header that carries the appId on authenticated calls.
pub const APP_KEY: &str = "app_key";

/// The credentials of an authenticated call.
#[derive(Clone, Copy, Debug)]
pub struct BearerAuth<'a> {
    /// Sent as `app_key`.
    pub app_id: &'a AppId,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: &'a AccessToken,
}

fn sensitive(value: &str) -> Result<HeaderValue, IntoHttpError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        IntoHttpError::Invalid(crate::ValidationError {
            field: "credentials".into(),
            rule: "must be a valid header value (visible ASCII)".into(),
            code: None,
        })
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn substitute(template: &str, values: &[(&'static str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    for seg in template.split('/').skip(1) {
        out.push('/');
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let v = values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("");
                out.push_str(v);
            }
            None => out.push_str(seg),
        }
    }
    out
}

/// Builds an endpoint's HTTP request. Validation runs first; values are percent-encoded; absent optional
/// query values are left out; auth headers are marked sensitive.
pub fn build_request<E: Endpoint>(
    ep: &E,
    base: &BaseUrl,
    auth: Option<BearerAuth<'_>>,
) -> Result<http::Request<Vec<u8>>, IntoHttpError> {
    ep.validate()?;
    let meta = E::META;
    let mut w = crate::endpoint::ParamWriter::default();
    ep.write_params(&mut w);
    let mut uri = String::with_capacity(base.as_str().len() + meta.path.len() + w.query.len() + 16);
    uri.push_str(base.as_str());
    uri.push_str(&substitute(meta.path, &w.path));
    if !w.query.is_empty() {
        uri.push('?');
        uri.push_str(&w.query);
    }
    let mut builder = http::Request::builder().method(meta.method.clone()).uri(uri);
    builder = builder.header(ACCEPT, HeaderValue::from_static("application/json"));
    if meta.auth {
        let auth = auth.ok_or(IntoHttpError::MissingCredentials { endpoint: meta.name })?;
        builder = builder.header(APP_KEY, sensitive(auth.app_id.as_str())?);
        let mut bearer = String::with_capacity(7 + auth.token.expose_secret().len());
        bearer.push_str("Bearer ");
        bearer.push_str(auth.token.expose_secret());
        builder = builder.header(AUTHORIZATION, sensitive(&bearer)?);
    }
    let body = match meta.body {
        BodyKind::None => Vec::new(),
        BodyKind::Json => {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            serde_json::to_vec(ep.body()).map_err(|e| invalid_body(&e.to_string()))?
        }
        BodyKind::Form => {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
            serde_urlencoded::to_string(ep.body()).map_err(|e| invalid_body(&e.to_string()))?.into_bytes()
        }
    };
    builder.body(body).map_err(|e| invalid_body(&e.to_string()))
}

fn invalid_body(message: &str) -> IntoHttpError {
    IntoHttpError::Invalid(crate::ValidationError { field: "body".into(), rule: message.to_owned(), code: None })
}

/// Reads an endpoint's HTTP answer into its typed answer, or a typed error.
///
/// A non-2xx status is always an error; its body becomes the platform's code and description, or an excerpt
/// when it is not a platform error (an HTML page from a proxy). Under a 2xx status, a JSON object carrying
/// `error_code` (or only `error_desc`) at its top level is an error too, whatever its size and for every
/// endpoint, including those that answer nothing. Decode failures carry the JSON path of the failure; a page
/// with unreadable items keeps its readable ones (see [`read_page`]).
pub fn parse_response<E: Endpoint, B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<E::Response, FromHttpResponseError> {
    let status = response.status();
    let body = response.body().as_ref();
    if !status.is_success() {
        return Err(FromHttpResponseError::Api(ApiError::from_body(status, body)));
    }
    match E::META.response {
        ResponseKind::Empty => {
            // Nothing to read, unless the platform wrote an error object where it owed nothing.
            if let Some((code, description)) = crate::error::probe_error_body(body) {
                return Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }));
            }
            decode_json::<E::Response>(status, b"null")
        }
        ResponseKind::Json => E::read_answer(status, body).map_err(|mut e| {
            if E::META.secret_response {
                if let FromHttpResponseError::Decode(d) = &mut e {
                    // The answer holds tokens: never quote it, not even in an error.
                    d.body_excerpt = "[redacted: the answer carries tokens]".to_owned();
                    // serde quotes offending values (a token sent as a number, say): keep only the path.
                    d.message = "[redacted: the answer carries tokens]".to_owned();
                }
            }
            e
        }),
    }
}

/// Reads a 2xx JSON answer as `T`, in one pass: the top-level `error_code` and `error_desc` members are lifted
/// out while `T` is read, so an error object is told apart from an answer without a second parse. Only when
/// that pass fails is the body read again, to tell an error object from a malformed answer and to find the
/// JSON path of the failure.
pub fn read_answer<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, FromHttpResponseError> {
    match fast::<T>(body) {
        Some(Ok(value)) => Ok(value),
        Some(Err((code, description))) => {
            Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }))
        }
        None => {
            if let Some((code, description)) = crate::error::probe_error_body(body) {
                return Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }));
            }
            Err(FromHttpResponseError::Decode(decode_error::<T>(status, body)))
        }
    }
}

/// Reads a 2xx answer that is one page of a paged query: like [`read_answer`], and when an item of the page
/// cannot be read, the page still yields every readable item, with each unreadable one described in the page's
/// `rejected` list (its index, the JSON path and the reason). Only a page whose own members are unreadable (its
/// `totalCount`, say, or items that are not a list) is an error as a whole.
pub fn read_page<P: Page + DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<P, FromHttpResponseError>
where
    P::Item: DeserializeOwned,
{
    match fast::<P>(body) {
        Some(Ok(page)) => return Ok(page),
        Some(Err((code, description))) => {
            return Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }));
        }
        None => {}
    }
    // The slow path, for pages that failed the fast one: read the tree, then each item on its own.
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Err(FromHttpResponseError::Decode(decode_error::<P>(status, body)));
    };
    if let Some((code, description)) = crate::error::error_members(&object) {
        return Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }));
    }
    // Every spelling of the items member comes out of the object; the first that carries a value is read.
    let mut items_value = None;
    for name in P::ITEM_MEMBERS {
        if let Some(v) = object.remove(*name) {
            if items_value.is_none() && !v.is_null() {
                items_value = Some((*name, v));
            }
        }
    }
    let whole = serde_json::Value::Object(object);
    let mut page = match serde_path_to_error::deserialize::<_, P>(&whole) {
        Ok(page) => page,
        Err(e) => {
            let (path, message) = (e.path().to_string(), e.inner().to_string());
            return Err(FromHttpResponseError::Decode(DecodeError {
                status,
                path,
                message,
                body_excerpt: excerpt(body),
            }));
        }
    };
    let raw_items = match items_value {
        None => Vec::new(),
        Some((_, serde_json::Value::Array(items))) => items,
        Some((name, other)) => {
            return Err(FromHttpResponseError::Decode(DecodeError {
                status,
                path: name.to_owned(),
                message: format!("expected a list of items, found {}", kind_of(&other)),
                body_excerpt: excerpt(body),
            }));
        }
    };
    let mut items = Vec::with_capacity(raw_items.len());
    let mut rejected = Vec::new();
    for (index, raw) in raw_items.iter().enumerate() {
        match serde_path_to_error::deserialize::<_, P::Item>(raw) {
            Ok(item) => items.push(item),
            Err(e) => rejected.push(iot_model::RejectedItem::new(
                index,
                e.path().to_string(),
                e.inner().to_string(),
                excerpt(raw.to_string().as_bytes()),
            )),
        }
    }
    page.replace_items(items, rejected);
    Ok(page)
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The platform's error members, when an answer read in one pass carried them.
type ErrorMembers = (Option<ErrorCode>, Option<String>);

/// The one-pass read: `Some(Ok)` for an answer, `Some(Err)` for an error object, `None` when the body did not
/// read as `T` in one pass (the caller then looks closer).
fn fast<T: DeserializeOwned>(body: &[u8]) -> Option<Result<T, ErrorMembers>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = Envelope::<T>::deserialize(&mut de).ok()?;
    de.end().ok()?;
    match envelope {
        Envelope { code: None, description: None, value } => Some(Ok(value)),
        Envelope { code, description, .. } => {
            Some(Err((code.map(|c| <ErrorCode as iot_model::WireEnum>::from_wire(c.trim())), description)))
        }
    }
}

/// Decodes JSON in one fast pass; only on failure is it decoded again to find the path of the failure.
pub fn decode_json<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, FromHttpResponseError> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(_) => Err(FromHttpResponseError::Decode(decode_error::<T>(status, body))),
    }
}

/// Describes why `body` does not read as `T`, with the JSON path of the failure.
fn decode_error<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> DecodeError {
    let mut de = serde_json::Deserializer::from_slice(body);
    let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => (e.path().to_string(), e.inner().to_string()),
        Ok(_) => match de.end() {
            Err(e) => (".".to_owned(), e.to_string()),
            Ok(()) => (".".to_owned(), "not a JSON object".to_owned()),
        },
    };
    DecodeError { status, path, message, body_excerpt: excerpt(body) }
}

/// A top-level JSON object read as `T` while its `error_code` and `error_desc` members are set aside.
struct Envelope<T> {
    value: T,
    code: Option<String>,
    description: Option<String>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Envelope<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

struct EnvelopeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<T> {
    type Value = Envelope<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut filter = ErrorFilter { inner: map, code: None, description: None };
        let value = T::deserialize(MapAccessDeserializer::new(&mut filter))?;
        Ok(Envelope { value, code: filter.code, description: filter.description })
    }
}

/// Hands a map to `T` without its error members, which it keeps.
struct ErrorFilter<A> {
    inner: A,
    code: Option<String>,
    description: Option<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for &mut ErrorFilter<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        loop {
            let Some(key) = self.inner.next_key::<Key<'de>>()? else { return Ok(None) };
            let key = match key {
                Key::Borrowed(k) => k,
                Key::Owned(k) => {
                    if !self.lift(&k)? {
                        return seed.deserialize(StringDeserializer::new(k)).map(Some);
                    }
                    continue;
                }
            };
            if !self.lift(key)? {
                return seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some);
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> ErrorFilter<A> {
    /// Reads the value of an error member into its slot; `false` when `key` is not one.
    fn lift(&mut self, key: &str) -> Result<bool, A::Error> {
        let slot = match key {
            crate::error::ERROR_CODE => &mut self.code,
            crate::error::ERROR_DESC => &mut self.description,
            _ => return Ok(false),
        };
        *slot = self.inner.next_value_seed(TextSeed)?;
        Ok(true)
    }
}

/// A map key, borrowed from the body when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Reads an error member with the tolerant reader's free-text rule (a numeric `error_code`, say).
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        iot_model::de::text(deserializer)
    }
}
