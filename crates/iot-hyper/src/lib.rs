//! The transport layer of the northbound SDK: a client on hyper 1, hyper-util, hyper-rustls and tokio.
//!
//! It is thin by design: requests are built and answers parsed by `iot-proto`, and the decisions (when to
//! log in or refresh, whether to retry, which page comes next) are `iot-proto`'s state machines. This crate
//! sends bytes, reads the clock, sleeps and waits, and logs the machine's events with `tracing`.
//!
//! - [`Client`]: a typed method per endpoint, plus [`Client::send`] for any endpoint type, automatic login and
//!   single-flight token renewal, retries, and paged walks as `Stream`s ([`Client::pages`], [`Client::items`]).
//! - [`transport::Transport`]: timeouts, a body cap, no redirects, pooled keep-alive connections.
//! - [`tls`]: the platform's public roots or a custom CA, and an optional client certificate (two-way TLS).
//!
#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly (see [package.metadata.docs.rs]): feature-gated items then say
// which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod error;
mod generated;
mod paging;
pub mod tls;
pub mod transport;

pub use client::{Client, ClientConfig, Clock, TokioClock};
pub use error::Error;
pub use paging::{PageWalk, WalkOutcomeError};
pub use tls::{Identity, Roots, TlsOptions};
pub use transport::{TransportConfig, TransportError};

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
