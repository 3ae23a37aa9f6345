//! The data model of the Huawei IoT platform (OceanConnect) northbound API: plain serde types, no I/O.
//!
//! Most of this crate is generated from `docs/spec/northbound.toml` by `cargo xtask codegen`; the generic
//! pieces the generated code leans on (timestamps, identifier rules, forward-compatible enums, secrets) are
//! written by hand in the modules below.
//!
//! Reading is tolerant and writing is canonical: every documented spelling of a field is accepted, enum values
//! are matched without regard to case and unknown ones are kept, unknown fields are ignored, and `null` means
//! absent; when writing, absent fields are omitted and enums use their canonical spelling. The one exception
//! is the answer fields the spec marks `nullable` (such as a running task's `stopTime`), which are written
//! as `null` like the platform does; no request structure has one.
//!
//! ```
//! use iot_model::{OperationPage, OperationStatus};
//! let page: OperationPage = serde_json::from_str(
//!     r#"{"totalSize": 1, "pageNo": 0, "pageSize": 1, "data": [
//!         {"operationId": "op-1", "status": "FAIL", "policy": null, "somethingNew": 1}]}"#,
//! ).unwrap();
//! assert_eq!(page.total_count, Some(1));
//! assert_eq!(page.data[0].status, Some(OperationStatus::Failed));
//! ```
//!
//! # Features
//!
//! A structure that holds a secret implements `Serialize` only for the side that must send it: request bodies
//! (the login form, the refresh and logout bodies) with `client` (on by default), answers (the tokens of a
//! login or a refresh) with `server` (off by default; the simulator turns it on). Everything else always
//! serializes, and everything always deserializes.

#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly (see [package.metadata.docs.rs]): feature-gated items then say
// which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;

mod batch;
pub mod de;
pub mod id;
mod rejected;
pub mod secret;
mod timestamp;
pub mod wire_enum;

mod generated;

#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod strategies;
#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod strategies_support;

pub use generated::*;
pub use rejected::RejectedItem;
pub use secret::{AccessToken, AppSecret, RefreshToken};
pub use timestamp::Timestamp;
pub use wire_enum::{UnknownValue, WireEnum};

/// Re-exported so that users and generated code name the same JSON types.
pub use serde_json::{Map as JsonMap, Value as Json};

/// An error building a model value from bad input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// An identifier broke one of the identifier rules.
    InvalidId {
        /// The identifier type, such as `OperationId`.
        kind: &'static str,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A time was not a valid `yyyyMMddTHHmmssZ` UTC time.
    InvalidTimestamp {
        /// What was wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidId { kind, reason } => write!(f, "invalid {kind}: {reason}"),
            Self::InvalidTimestamp { reason } => write!(f, "invalid timestamp: {reason}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// Without `server`, an answer that holds tokens cannot be serialized (run by `cargo test -p iot-model --doc`,
/// where only the default features are on; CI does):
///
/// ```compile_fail
/// fn serializable<T: serde::Serialize>() {}
/// serializable::<iot_model::AuthToken>();
/// ```
///
/// while a request body that carries a secret can, since the client sends it:
///
/// ```
/// fn serializable<T: serde::Serialize>() {}
/// serializable::<iot_model::LoginForm>();
/// ```
#[cfg(all(doctest, feature = "client", not(feature = "server")))]
pub struct SecretAnswersDoNotSerialize;
