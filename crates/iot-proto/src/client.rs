//! Client side: typed request to `http::Request`, `http::Response` bytes to the typed answer or error.

use std::fmt;
use std::marker::PhantomData;

use http::StatusCode;
#[cfg(feature = "client")]
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use iot_model::{AccessToken, AppId};
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[cfg(feature = "client")]
use crate::endpoint::BodyKind;
use crate::endpoint::{Endpoint, Page, ResponseKind};
#[cfg(feature = "client")]
use crate::error::IntoHttpError;
use crate::error::{ApiError, DecodeError, DecodeErrorKind, FromHttpResponseError, excerpt};
use crate::generated::ErrorCode;
#[cfg(feature = "client")]
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

#[cfg(feature = "client")]
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

#[cfg(feature = "client")]
/// Writes `template` with its `{name}` segments replaced by their values (already percent-encoded) to `out`.
fn substitute(out: &mut String, template: &str, values: &[(&'static str, String)]) {
    // Most paths have no placeholder: copied whole, without splitting them into segments.
    if values.is_empty() && template.starts_with('/') && !template.as_bytes().contains(&b'{') {
        out.push_str(template);
        return;
    }
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
}

/// The `app_key` header's name, made once.
#[cfg(feature = "client")]
const APP_KEY_HEADER: http::HeaderName = http::HeaderName::from_static(APP_KEY);

#[cfg(feature = "client")]
/// Builds an endpoint's HTTP request. Validation runs first; values are percent-encoded; absent optional
/// query values are left out; auth headers are marked sensitive.
pub fn build_request<E: Endpoint>(
    ep: &E,
    base: &BaseUrl,
    auth: Option<BearerAuth<'_>>,
) -> Result<http::Request<Vec<u8>>, IntoHttpError> {
    ep.validate()?;
    let meta = E::META;
    let mut w = crate::glue::ParamWriter::default();
    ep.write_params(&mut w);
    // Only the path and query are written as text; the base's scheme and authority were parsed once, when it
    // was made, and are shared. (Writing the whole URI and having `http` parse it back cost about 1,000
    // instructions a call: see docs/performance.md, "Fixed cost after issue 11".)
    let (scheme, authority, prefix) = base.parts();
    let mut target = String::with_capacity(prefix.len() + meta.path.len() + w.query.len() + 16);
    target.push_str(prefix);
    substitute(&mut target, meta.path, &w.path);
    if !w.query.is_empty() {
        target.push('?');
        target.push_str(&w.query);
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(scheme.clone());
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(target).map_err(|e| invalid_uri(&e.to_string()))?);
    let uri = http::Uri::from_parts(parts).map_err(|e| invalid_uri(&e.to_string()))?;
    // Set in place rather than through `http::request::Builder`, which moves the whole request at every step.
    let mut headers = http::HeaderMap::with_capacity(4);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if meta.auth {
        let auth = auth.ok_or(IntoHttpError::MissingCredentials { endpoint: meta.name })?;
        headers.insert(APP_KEY_HEADER, sensitive(auth.app_id.as_str())?);
        let mut bearer = String::with_capacity(7 + auth.token.expose_secret().len());
        bearer.push_str("Bearer ");
        bearer.push_str(auth.token.expose_secret());
        headers.insert(AUTHORIZATION, sensitive(&bearer)?);
    }
    let body = match meta.body {
        BodyKind::None => Vec::new(),
        BodyKind::Json => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            serde_json::to_vec(ep.body()).map_err(|e| invalid_body(&e.to_string()))?
        }
        BodyKind::Form => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
            serde_urlencoded::to_string(ep.body()).map_err(|e| invalid_body(&e.to_string()))?.into_bytes()
        }
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = meta.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// A URI that `http` refuses. The path and query are percent-encoded and the base was checked, so this is not
/// expected; it is reported like the builder reported it before.
#[cfg(feature = "client")]
fn invalid_uri(message: &str) -> IntoHttpError {
    invalid_body(message)
}

#[cfg(feature = "client")]
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
            if E::META.secret_response
                && let FromHttpResponseError::Decode(d) = &mut e
            {
                // The answer holds tokens: never quote it, not even in an error.
                d.body_excerpt = "[redacted: the answer carries tokens]".to_owned();
                // serde quotes offending values (a token sent as a number, say): keep only the path.
                d.message = "[redacted: the answer carries tokens]".to_owned();
            }
            e
        }),
    }
}

/// How many bytes of decoded structure (lists, free-form trees; strings are not counted) a body of `len` bytes
/// may build: [`BUDGET_FACTOR`] times its length, and at least [`BUDGET_FLOOR`]. Every decode of an answer runs under this budget (see
/// [`iot_model::de::with_budget`]), so that no body decodes into more than a small multiple of its size.
pub fn decode_budget(len: usize) -> usize {
    len.saturating_mul(BUDGET_FACTOR).max(BUDGET_FLOOR)
}

/// The decode budget per byte of body (see [`decode_budget`] and `docs/decisions.md`).
pub const BUDGET_FACTOR: usize = 4;

/// The smallest decode budget, 1 MiB: an answer of up to a quarter of that is never refused, however dense its
/// free-form members (a page of 100 tasks is about 80 KB).
pub const BUDGET_FLOOR: usize = 1024 * 1024;

/// Reads a 2xx JSON answer as `T`, in one pass: the top-level `error_code` and `error_desc` members are lifted
/// out while `T` is read, so an error object is told apart from an answer without a second parse. Only when
/// that pass fails is the body read again, to tell an error object from a malformed answer and to find the
/// JSON path of the failure. Both passes run under the [`decode_budget`] of the body.
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
///
/// The items member is read aside from the page, and refused as soon as it holds more items than the family's
/// largest page size ([`DecodeErrorKind::OversizedPage`]): a page
/// is never collected first and counted after, so a body of millions of tiny items never becomes millions of
/// decoded ones.
pub fn read_page<P: Page + DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<P, FromHttpResponseError>
where
    P::Item: DeserializeOwned,
{
    let max = usize::try_from(P::LIMITS.page_size_max).unwrap_or(usize::MAX);
    let budget = decode_budget(body.len());
    let oversized = |member: &'static str| {
        let mut e = DecodeError::new(
            status,
            member,
            format!("the page holds more than the {max} items a page of its family may hold"),
            body,
        );
        e.kind = DecodeErrorKind::OversizedPage { max: P::LIMITS.page_size_max };
        FromHttpResponseError::Decode(e)
    };
    // The fast path: the items are read as items, in the same pass as the page.
    let mut aside = ItemsAside::<P::Item>::new(P::ITEM_MEMBERS, max);
    let fast = iot_model::de::with_budget(budget, || read_whole(body, EnvelopeVisitor::<P, _>::new(&mut aside)));
    if let Some(member) = aside.oversized {
        return Err(oversized(member));
    }
    if let Ok(envelope) = fast {
        return finish_page(status, body, envelope, aside, |_, items| Ok((items, Vec::new())));
    }
    // The slow path, for pages that failed the fast one: the items as raw JSON text (borrowed from the body, so
    // nothing is copied), then each item on its own.
    let mut aside = ItemsAside::<&serde_json::value::RawValue>::new(P::ITEM_MEMBERS, max);
    let mut track = serde_path_to_error::Track::new();
    let slow = iot_model::de::with_budget(budget, || {
        let mut de = serde_json::Deserializer::from_slice(body);
        let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
        let envelope = EnvelopeVisitor::<P, _>::new(&mut aside).deserialize_from(tracked)?;
        de.end().map(|()| envelope)
    });
    if let Some(member) = aside.oversized {
        return Err(oversized(member));
    }
    let envelope = match slow {
        Ok(envelope) => envelope,
        Err(e) => {
            if let Some((code, description)) = crate::error::probe_error_body(body) {
                return Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }));
            }
            let path = track.path().to_string();
            return Err(FromHttpResponseError::Decode(decode_failure(status, path, e.to_string(), body)));
        }
    };
    finish_page(status, body, envelope, aside, |name, raw_items| {
        iot_model::de::with_budget(budget, || {
            let mut items = Vec::with_capacity(raw_items.len());
            let mut rejected = Vec::new();
            for (index, raw) in raw_items.iter().enumerate() {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                match serde_path_to_error::deserialize::<_, P::Item>(&mut de) {
                    Ok(item) => items.push(item),
                    Err(e) => {
                        if e.inner().to_string().contains(iot_model::de::BUDGET_EXCEEDED) {
                            // Out of budget is the answer's fault as a whole, not this item's.
                            let path = format!("{name}[{index}].{}", e.path());
                            return Err(decode_failure(status, path, e.inner().to_string(), body));
                        }
                        rejected.push(iot_model::RejectedItem::new(
                            index,
                            e.path().to_string(),
                            e.inner().to_string(),
                            excerpt(raw.get().as_bytes()),
                        ));
                    }
                }
            }
            Ok((items, rejected))
        })
    })
}

/// Ends a page read: an error object is an error; else the first spelling of the items member that carried a
/// value becomes the page's items (through `read`), or an error when it is not a list.
fn finish_page<P: Page, X>(
    status: StatusCode,
    body: &[u8],
    envelope: Envelope<P>,
    aside: ItemsAside<X>,
    read: impl FnOnce(&'static str, Vec<X>) -> Result<(Vec<P::Item>, Vec<iot_model::RejectedItem>), DecodeError>,
) -> Result<P, FromHttpResponseError> {
    let Envelope { value: mut page, code, description } = envelope;
    if code.is_some() || description.is_some() {
        let code = code.map(|c| <ErrorCode as iot_model::WireEnum>::from_wire(c.trim()));
        return Err(FromHttpResponseError::Api(ApiError { status, code, description, body_excerpt: None }));
    }
    let chosen = aside.names.iter().zip(aside.slots).find_map(|(name, slot)| slot.map(|s| (*name, s)));
    let (items, rejected) = match chosen {
        None => (Vec::new(), Vec::new()),
        Some((name, Slot::List(items))) => read(name, items).map_err(FromHttpResponseError::Decode)?,
        Some((name, Slot::NotAList(kind))) => {
            let message = format!("expected a list of items, found {kind}");
            return Err(FromHttpResponseError::Decode(DecodeError::new(status, name, message, body)));
        }
    };
    page.replace_items(items, rejected);
    Ok(page)
}

/// The platform's error members, when an answer read in one pass carried them.
type ErrorMembers = (Option<ErrorCode>, Option<String>);

/// The one-pass read: `Some(Ok)` for an answer, `Some(Err)` for an error object, `None` when the body did not
/// read as `T` in one pass (the caller then looks closer).
fn fast<T: DeserializeOwned>(body: &[u8]) -> Option<Result<T, ErrorMembers>> {
    let envelope =
        iot_model::de::with_budget(decode_budget(body.len()), || read_whole(body, PhantomData::<Envelope<T>>).ok())?;
    match envelope {
        Envelope { code: None, description: None, value } => Some(Ok(value)),
        Envelope { code, description, .. } => {
            Some(Err((code.map(|c| <ErrorCode as iot_model::WireEnum>::from_wire(c.trim())), description)))
        }
    }
}

/// Decodes JSON in one fast pass; only on failure is it decoded again to find the path of the failure.
pub fn decode_json<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, FromHttpResponseError> {
    match iot_model::de::with_budget(decode_budget(body.len()), || read_whole(body, PhantomData::<T>)) {
        Ok(v) => Ok(v),
        Err(_) => Err(FromHttpResponseError::Decode(decode_error::<T>(status, body))),
    }
}

/// Reads all of `body` as one JSON value through `seed`.
///
/// A body that is valid UTF-8 as a whole (every answer of the platform) is read as text: one check of the
/// whole body, word by word, instead of one check per string that `serde_json` makes on bytes, which cost
/// more than any rule of the tolerant reader (about 15% of a page; see docs/performance.md, "Below plain
/// serde"). Any other body is read as bytes, exactly as before: invalid UTF-8 in a member that is skipped is
/// no error, and in a string that is read it is the same error.
fn read_whole<'de, S: DeserializeSeed<'de>>(body: &'de [u8], seed: S) -> Result<S::Value, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let value = seed.deserialize(&mut de)?;
            de.end().map(|()| value)
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let value = seed.deserialize(&mut de)?;
            de.end().map(|()| value)
        }
    }
}

/// Describes why `body` does not read as `T`, with the JSON path of the failure.
fn decode_error<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> DecodeError {
    let (path, message) = iot_model::de::with_budget(decode_budget(body.len()), || {
        let mut de = serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => (e.path().to_string(), e.inner().to_string()),
            Ok(_) => match de.end() {
                Err(e) => (".".to_owned(), e.to_string()),
                Ok(()) => (".".to_owned(), "not a JSON object".to_owned()),
            },
        }
    });
    decode_failure(status, path, message, body)
}

/// A decode error, of kind [`DecodeErrorKind::OverBudget`] when the decode ran out of budget.
fn decode_failure(status: StatusCode, path: String, message: String, body: &[u8]) -> DecodeError {
    let mut e = DecodeError::new(status, path, message, body);
    if e.message.contains(iot_model::de::BUDGET_EXCEEDED) {
        e.kind = DecodeErrorKind::OverBudget { budget: decode_budget(body.len()) };
    }
    e
}

/// What an [`ErrorFilter`] hands to a side reader instead of `T`: nothing, for most answers.
trait Aside<'de> {
    /// Reads the value of member `key` aside; `false` when `key` is not one to read aside.
    fn take<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

impl<'de> Aside<'de> for () {
    #[inline]
    fn take<A: MapAccess<'de>>(&mut self, _: &str, _: &mut A) -> Result<bool, A::Error> {
        Ok(false)
    }
}

/// The items member of a page, read aside from the page under a cap on the number of items: one slot per
/// spelling of the member.
struct ItemsAside<X> {
    names: &'static [&'static str],
    max: usize,
    slots: Vec<Option<Slot<X>>>,
    /// The spelling whose list went past `max` items, if one did.
    oversized: Option<&'static str>,
}

/// One spelling of the items member, as sent (a `null` spelling is no slot at all).
enum Slot<X> {
    List(Vec<X>),
    NotAList(&'static str),
}

impl<X> ItemsAside<X> {
    fn new(names: &'static [&'static str], max: usize) -> Self {
        Self { names, max, slots: names.iter().map(|_| None).collect(), oversized: None }
    }
}

impl<'de, X: Deserialize<'de>> Aside<'de> for &mut ItemsAside<X> {
    fn take<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let Some(index) = self.names.iter().position(|n| *n == key) else { return Ok(false) };
        let seed = ItemsSeed::<X> { max: self.max, over: false, item: PhantomData };
        let mut seed = seed;
        let read = map.next_value_seed(&mut seed);
        if seed.over {
            self.oversized = Some(self.names[index]);
        }
        self.slots[index] = read?;
        Ok(true)
    }
}

/// Reads a list of at most `max` items; `over` records a list that went past it.
struct ItemsSeed<X> {
    max: usize,
    over: bool,
    item: PhantomData<X>,
}

impl<'de, X: Deserialize<'de>> DeserializeSeed<'de> for &mut ItemsSeed<X> {
    type Value = Option<Slot<X>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, X: Deserialize<'de>> Visitor<'de> for &mut ItemsSeed<X> {
    type Value = Option<Slot<X>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<X>()? {
            // The item past the largest page ends the read: nothing more of the list is decoded.
            if items.len() == self.max {
                self.over = true;
                return Err(serde::de::Error::custom(format_args!(
                    "the page holds more than the {} items a page of its family may hold",
                    self.max
                )));
            }
            items.push(item);
        }
        Ok(Some(Slot::List(items)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some(Slot::NotAList("a boolean")))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Some(Slot::NotAList("a number")))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Some(Slot::NotAList("a number")))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Some(Slot::NotAList("a number")))
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Some(Slot::NotAList("a string")))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Some(Slot::NotAList("an object")))
    }
}

/// A top-level JSON object read as `T` while its `error_code` and `error_desc` members are set aside.
struct Envelope<T> {
    value: T,
    code: Option<String>,
    description: Option<String>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Envelope<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EnvelopeVisitor::new(()).deserialize_from(deserializer)
    }
}

/// Reads an [`Envelope`], handing the members `S` wants to it.
struct EnvelopeVisitor<T, S> {
    aside: S,
    value: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, S: Aside<'de>> EnvelopeVisitor<T, S> {
    fn new(aside: S) -> Self {
        Self { aside, value: PhantomData }
    }

    fn deserialize_from<D: Deserializer<'de>>(self, deserializer: D) -> Result<Envelope<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>, S: Aside<'de>> DeserializeSeed<'de> for EnvelopeVisitor<T, S> {
    type Value = Envelope<T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Envelope<T>, D::Error> {
        self.deserialize_from(deserializer)
    }
}

impl<'de, T: Deserialize<'de>, S: Aside<'de>> Visitor<'de> for EnvelopeVisitor<T, S> {
    type Value = Envelope<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut filter = ErrorFilter { inner: map, code: None, description: None, aside: self.aside };
        let value = T::deserialize(MapAccessDeserializer::new(&mut filter))?;
        Ok(Envelope { value, code: filter.code, description: filter.description })
    }
}

/// Hands a map to `T` without its error members, which it keeps, and without the members `aside` reads.
struct ErrorFilter<A, S> {
    inner: A,
    code: Option<String>,
    description: Option<String>,
    aside: S,
}

impl<'de, A: MapAccess<'de>, S: Aside<'de>> MapAccess<'de> for &mut ErrorFilter<A, S> {
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

impl<'de, A: MapAccess<'de>, S: Aside<'de>> ErrorFilter<A, S> {
    /// Reads the value of an error member into its slot, or of a member read aside; `false` when `key` is
    /// neither.
    fn lift(&mut self, key: &str) -> Result<bool, A::Error> {
        let slot = match key {
            crate::error::ERROR_CODE => &mut self.code,
            crate::error::ERROR_DESC => &mut self.description,
            _ => return self.aside.take(key, &mut self.inner),
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
