//! A blocking client of the northbound SDK, for applications without an async runtime: ureq 3 with rustls
//! (ring) moves the bytes, and iot-proto's call machines ([`iot_proto::call`]) decide everything else.
//!
//! - [`Client`]: a typed method per endpoint, plus [`Client::send`] for any endpoint type, [`Client::login`],
//!   [`Client::renew_token`], [`Client::logout`]; automatic login, single-flight renewal shared by every clone
//!   and thread, retries, the client-side rate limit, and per-call deadlines.
//! - Paged walks as iterators: [`Client::pages`], [`Client::items`], and [`Client::walk`] by hand.
//! - [`Error`]: one error whose questions ([`Error::is_retryable`], [`Error::outcome_unknown`], [`Error::api`])
//!   are answered by the core's [`iot_proto::call::CallError`].
//!
#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly (see [package.metadata.docs.rs]): feature-gated items then say
// which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod config;
mod error;
mod generated;
mod paging;
mod transport;

pub use client::Client;
pub use config::{ClientConfig, ConfigError, Identity, Roots};
pub use error::Error;
pub use paging::{Items, PageWalk, Pages, WalkOutcomeError};
pub use transport::TransportError;
