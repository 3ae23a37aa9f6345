//! Sans-IO protocol layer of the northbound SDK: typed requests to `http::Request`, `http::Response` to typed
//! answers or errors, on the client and the server side, plus the state machines a transport drives
//! (pager, token session, retry policy). Nothing here touches a socket, a clock or a random source: time
//! arrives as a `now` argument and randomness through an injected source.
//!
//! ```
//! use iot_proto::{BaseUrl, BearerAuth, Endpoint, QueryUpgradeTaskList};
//! use iot_model::{AccessToken, AppId, OperationStatus};
//!
//! let base = BaseUrl::parse("https://iot.example.com:8743").unwrap();
//! let app_id = AppId::new("my-app").unwrap();
//! let token = AccessToken::new("token-from-login");
//! let query = QueryUpgradeTaskList::new()
//!     .with_operation_status(OperationStatus::Failed)
//!     .with_page_size(100);
//! let request = query
//!     .try_into_http_request(&base, Some(BearerAuth { app_id: &app_id, token: &token }))
//!     .unwrap();
//! assert_eq!(
//!     request.uri(),
//!     "https://iot.example.com:8743/iodm/northbound/v1.5.0/operations?operationStatus=failed&pageSize=100"
//! );
//!
//! // Feed the answer bytes back through the same endpoint type.
//! let answer = http::Response::new(br#"{"pageNo":0,"pageSize":100,"totalCount":0,"data":[]}"#.to_vec());
//! let page = QueryUpgradeTaskList::try_from_http_response(&answer).unwrap();
//! assert!(page.data.is_empty());
//! ```
//!
#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly (see [package.metadata.docs.rs]): feature-gated items then say
// which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
pub mod call;
pub mod client;
pub mod endpoint;
pub mod error;
mod generated;
mod glue;
pub mod pager;
#[cfg(feature = "client")]
pub mod ratelimit;
#[cfg(feature = "client")]
mod reconcile;
#[cfg(feature = "client")]
pub mod retry;
pub mod rules;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "client")]
pub mod session;
mod validate;
pub mod wire;

pub use client::{APP_KEY, BearerAuth};
pub use endpoint::{Empty, Endpoint, EndpointMeta, NoBody, Page, Paged, Reconcile};
pub use error::{
    ApiError, DecodeError, DecodeErrorKind, ErrorClass, ErrorInfo, FromHttpResponseError, IntoHttpError,
    ValidationError,
};
pub use generated::*;
pub use wire::BaseUrl;

/// The driver guide's examples (docs/driver.md), compiled and run as doctests so the guide cannot rot.
#[doc = include_str!("../../../docs/driver.md")]
#[cfg(doctest)]
pub struct DriverGuide;
