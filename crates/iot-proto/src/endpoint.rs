//! What an endpoint is: a request type with generated metadata and parameter glue, and the generic code that
//! turns it into HTTP and back on both the client and the server side.

use std::fmt;

use crate::client;
#[cfg(feature = "server")]
use crate::error::ApiError;
use crate::error::FromHttpResponseError;
#[cfg(feature = "client")]
use crate::error::IntoHttpError;
use crate::generated::{EndpointId, ErrorCode};
use crate::glue::{Glue, PageGlue, WireAnswer, WireBody};
use crate::pager::PagingLimits;
#[cfg(feature = "server")]
use crate::server;
use crate::validate::Validator;
#[cfg(feature = "client")]
use crate::wire::BaseUrl;

/// How the client looks for what a create in doubt may have made, before it resends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reconcile {
    /// An upgrade task: same package, same targets, created since the call began, in the task list.
    UpgradeTask,
}

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyKind {
    /// No body.
    None,
    /// `application/json`.
    Json,
    /// `application/x-www-form-urlencoded` (login only).
    Form,
}

/// What a successful answer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseKind {
    /// A JSON document.
    Json,
    /// Nothing worth reading (any body is ignored).
    Empty,
}

/// Where a parameter travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamLocation {
    /// A `{placeholder}` segment of the path.
    Path,
    /// The query string.
    Query,
}

/// A parameter's metadata.
#[derive(Debug)]
#[non_exhaustive]
pub struct ParamMeta {
    /// Wire name.
    pub name: &'static str,
    /// Where it travels.
    pub location: ParamLocation,
    /// Whether it must be present.
    pub required: bool,
    /// The code the platform answers when the value breaks its limits or cannot be read at all (for page
    /// numbers and sizes, the paging family's page-limit code); `None` leaves it to the endpoint's rejection.
    pub code: Option<ErrorCode>,
}

/// Everything generic code needs to know about an endpoint, generated from the spec.
#[derive(Debug)]
#[non_exhaustive]
pub struct EndpointMeta {
    /// Which endpoint this is.
    pub id: EndpointId,
    /// Its name in the spec.
    pub name: &'static str,
    /// Its API family (`auth`, `upgrade` or `batch`).
    pub family: &'static str,
    /// HTTP method.
    pub method: http::Method,
    /// Path template with `{placeholders}`.
    pub path: &'static str,
    /// Whether the call carries `app_key` and `Authorization: Bearer`.
    pub auth: bool,
    /// Whether repeating the call is harmless (it may be retried after an ambiguous failure).
    pub idempotent: bool,
    /// For a create that is not idempotent: how to find what it may have made when its outcome is in doubt.
    pub reconcile: Option<Reconcile>,
    /// Body encoding.
    pub body: BodyKind,
    /// What a success carries.
    pub response: ResponseKind,
    /// Whether the answer carries secrets (tokens): then errors never quote its body.
    pub secret_response: bool,
    /// Paging limits, for paged queries.
    pub paging: Option<PagingLimits>,
    /// The code the platform answers for a malformed request with no more specific code.
    pub rejection: ErrorCode,
    /// Documented error codes.
    pub errors: &'static [ErrorCode],
    /// Path and query parameters.
    pub params: &'static [ParamMeta],
}

/// A request body type for endpoints without a body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoBody;

/// The answer type of endpoints that answer nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Empty;

/// An endpoint: its request type implements this trait, generated from the spec.
///
/// Drivers and users name it in bounds (`E: Endpoint`, `E::Response`) and call its conversions; only this
/// crate implements it (the generated glue is a private supertrait), so adding an endpoint or changing the glue
/// breaks no one. The provided methods are the four symmetric conversions: client `try_into_http_request` /
/// `try_from_http_response`, server `try_from_http_request` / `try_into_http_response`.
pub trait Endpoint: Glue<Self::Body, Self::Response> + fmt::Debug + Clone + PartialEq {
    /// The request body (or [`NoBody`]).
    type Body: WireBody + fmt::Debug + Clone + PartialEq;
    /// The answer on success (or [`Empty`]).
    type Response: WireAnswer + fmt::Debug + Clone + PartialEq;
    /// Metadata generated from the spec.
    const META: &'static EndpointMeta;

    /// The request body ([`NoBody`] for endpoints without one).
    fn body(&self) -> &Self::Body;

    /// Checks every rule of the contract that can be checked without the platform.
    fn validate(&self) -> Result<(), crate::ValidationError> {
        let mut v = Validator::new();
        self.check(&mut v);
        v.finish()
    }

    /// Builds the HTTP request (client side). Validates first: a request that breaks the contract never exists.
    #[cfg(feature = "client")]
    fn try_into_http_request(
        &self,
        base: &BaseUrl,
        auth: Option<client::BearerAuth<'_>>,
    ) -> Result<http::Request<Vec<u8>>, IntoHttpError> {
        client::build_request(self, base, auth)
    }

    /// Reads the HTTP answer (client side): the typed answer, or a typed error.
    fn try_from_http_response<B: AsRef<[u8]>>(
        response: &http::Response<B>,
    ) -> Result<Self::Response, FromHttpResponseError> {
        client::parse_response::<Self, B>(response)
    }

    /// Reads the HTTP request (server side), or the rejection the platform would answer.
    #[cfg(feature = "server")]
    fn try_from_http_request<B: AsRef<[u8]>>(request: &http::Request<B>) -> Result<Self, ApiError> {
        server::parse_request(request)
    }

    /// Builds the HTTP answer (server side).
    #[cfg(feature = "server")]
    fn try_into_http_response(response: &Self::Response) -> http::Response<Vec<u8>> {
        server::encode_response::<Self>(response)
    }
}

/// An answer that is one page of a paged query (generated for every page structure; only this crate
/// implements it).
pub trait Page: PageGlue<Self::Item> {
    /// The items on the page.
    type Item;
    /// The paging limits of the page's family.
    const LIMITS: PagingLimits;
    /// The items on this page.
    fn items(&self) -> &[Self::Item];
    /// Takes the items.
    fn into_items(self) -> Vec<Self::Item>;
    /// `totalCount`, when the platform sent it.
    fn total_count(&self) -> Option<u64>;
    /// `pageNo` as the platform echoed it, when it did.
    fn page_no(&self) -> Option<u32>;
    /// Items of the page that could not be read (see [`iot_model::RejectedItem`]).
    fn rejected(&self) -> &[iot_model::RejectedItem];
    /// How many items the page held as sent: the readable ones and the unreadable ones.
    fn item_count(&self) -> usize {
        self.items().len() + self.rejected().len()
    }
    /// Builds a page (server side).
    fn from_items(page_no: u32, page_size: u32, total_count: u64, items: Vec<Self::Item>) -> Self;
}

/// A paged query: the pager sets its page number and size (generated).
pub trait Paged: Endpoint
where
    Self::Response: Page,
{
    /// The requested page number.
    fn page_no(&self) -> Option<u32>;
    /// The requested page size.
    fn page_size(&self) -> Option<u32>;
    /// Sets the page to request.
    fn set_page(&mut self, page_no: u32, page_size: u32);
}
