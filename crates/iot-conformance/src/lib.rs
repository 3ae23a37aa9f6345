//! One behaviour suite for every driver of the SDK: a small blocking [`Driver`] trait over a client, the
//! platform harnesses the scenarios run against, and the scenarios themselves ([`scenarios`]).
//!
//! The suite exists so that iot-blocking and iot-hyper are proven to behave alike: both drive the same sans-IO
//! core (or, for iot-hyper while its internals are rewritten, promise to), and each scenario checks what a user
//! sees (answers, walks, renewals, throttling, errors) and what the platform received.

// The scenarios are assertions: a failed `unwrap` is how they report a difference between drivers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod drivers;
pub mod harness;
pub mod scenarios;

use std::fmt::Debug;
use std::time::Duration;

use iot_proto::ratelimit::RateLimit;
use iot_proto::retry::RetryPolicy;
use iot_proto::session::SessionState;
use iot_proto::{Endpoint, Page, Paged};

/// The item type of a paged endpoint.
pub type Item<E> = <<E as Endpoint>::Response as Page>::Item;

/// What a scenario may ask of any driver's error; each driver answers from its own error type.
pub trait ErrorView: std::error::Error + Debug {
    /// The platform's answer as (HTTP status, `error_code`), when the platform answered an error.
    fn api_code(&self) -> Option<(u16, String)>;
    /// Whether a create failed after the platform may have acted.
    fn outcome_unknown(&self) -> bool;
    /// Whether trying again later may succeed.
    fn is_retryable(&self) -> bool;
    /// Whether the platform may have acted on the request.
    fn platform_may_have_acted(&self) -> bool;
}

/// Settings every driver honours, so the scenarios can shape retries and deadlines alike.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The retry policy.
    pub retry: RetryPolicy,
    /// The deadline of a whole call.
    pub call_timeout: Duration,
    /// The client-side rate limit, for drivers that have one.
    pub rate_limit: RateLimit,
}

impl Default for Settings {
    /// The default retry policy, a 20 s call deadline (well inside a test's limit), and the platform's rate limit.
    fn default() -> Self {
        Self { retry: RetryPolicy::default(), call_timeout: Duration::from_secs(20), rate_limit: RateLimit::platform() }
    }
}

/// A client of the northbound API, seen through blocking calls.
pub trait Driver: Sized {
    /// The driver's error.
    type Error: ErrorView;

    /// A client of the simulator's default app at `base_url`.
    fn connect(base_url: &str, settings: &Settings) -> Self;

    /// Sends any endpoint's request.
    fn send<E>(&self, request: &E) -> Result<E::Response, Self::Error>
    where
        E: Endpoint + Send + Sync + 'static,
        E::Response: Send;

    /// Walks every page, calling `after_page` with the number of pages seen so far after each one.
    fn pages_with<E>(&self, request: E, after_page: &mut dyn FnMut(usize)) -> Vec<Result<E::Response, Self::Error>>
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        Item<E>: Clone + PartialEq + Send;

    /// Walks every item.
    fn items<E>(&self, request: E) -> Vec<Result<Item<E>, Self::Error>>
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        Item<E>: Clone + PartialEq + Send;

    /// Logs in now.
    fn login(&self) -> Result<(), Self::Error>;

    /// Renews the token now.
    fn renew_token(&self) -> Result<(), Self::Error>;

    /// Logs out.
    fn logout(&self) -> Result<(), Self::Error>;

    /// The token session's state.
    fn session_state(&self) -> SessionState;
}
