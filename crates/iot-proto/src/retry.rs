//! Sans-IO retry policy: classifies a failed attempt and decides whether, and after how long, to retry.
//!
//! The policy never sleeps and never draws randomness of its own: jitter comes from an injected
//! [`RandomSource`], delays are returned as [`Duration`]s for the transport to wait, and the shared
//! [`RetryQuota`] is a plain value the transport keeps behind its own lock.
//!
//! # Classification
//!
//! The client looks at the platform `error_code` first and the HTTP status second, because the
//! platform answers 403 both for throttling and for permission errors:
//!
//! | signal | class | retried when |
//! |---|---|---|
//! | connect failure, TLS handshake failure, reset before the request was written | [`Transient`](FailureClass::Transient) | always |
//! | attempt timeout, reset after the request was written, other transport failure | [`ServerTransient`](FailureClass::ServerTransient) | idempotent calls only |
//! | `error_code` `1010009` (any status, usually 403) | [`Throttled`](FailureClass::Throttled) | always, after at least the throttling floor |
//! | `error_code` `1010005` (any status, usually 401 or 403) | [`AuthExpired`](FailureClass::AuthExpired) | once per call, after renewing the token |
//! | 429, or 503 with `Retry-After`, without the platform's throttling code | [`Overloaded`](FailureClass::Overloaded) | idempotent calls only, after at least the throttling floor |
//! | 500, 502, 504, 503 without `Retry-After` | [`ServerTransient`](FailureClass::ServerTransient) | idempotent calls only |
//! | any other status (403 with another code, other 4xx, other 5xx), response body too large, undecodable 2xx body | [`Permanent`](FailureClass::Permanent) | never |
//!
//! A call that is not idempotent (a create) is resent only when nothing reached the platform or the
//! platform proved that it did not act: its throttling code `1010009` or its rejected-token code `1010005`.
//! A 429 or a 503 with `Retry-After` asks the client to slow down, but without the platform's code it may
//! come from a proxy or a gateway after the platform has already acted, so it proves nothing.
//!
//! # Where it runs
//!
//! The call machine ([`crate::call`]) classifies every failed attempt, lets the call's retry bookkeeping decide
//! (attempt budget, one token renewal per call, the shared [`RetryQuota`]), and waits the delay the policy
//! chose. Applications only configure it:
//!
//! ```
//! use std::time::Duration;
//! use iot_proto::retry::{Jitter, RetryPolicy};
//!
//! let policy = RetryPolicy::new()
//!     .with_max_attempts(5)
//!     .with_backoff(Duration::from_millis(200), Duration::from_secs(10))
//!     .with_jitter(Jitter::None);
//! // Without jitter the waits are the exponential caps: 200 ms, 400 ms, 800 ms...
//! assert_eq!(policy.backoff_cap(3), Duration::from_millis(800));
//! assert_eq!(RetryPolicy::disabled().max_attempts, 1);
//! ```

use std::time::{Duration, SystemTime};

use crate::error::{ErrorClass, classify_answer};
use crate::generated::ErrorCode;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// How an attempt failed below HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The TCP connection could not be established (including a connect timeout).
    ConnectFailed,
    /// The TLS handshake failed or timed out.
    TlsHandshake,
    /// The connection broke before any byte of the request was written.
    ResetBeforeSend,
    /// The attempt timed out after the request may have been written.
    Timeout,
    /// The connection broke after the request was (at least partly) written.
    ResetAfterSend,
    /// The response body exceeded the configured size limit.
    BodyTooLarge,
    /// The TLS peer was refused (an untrusted server certificate, a refused client certificate): the platform
    /// did not process the request, and retrying cannot help.
    TlsRefused,
    /// The transport cannot send the request as given (no host in the URI, say); nothing was sent.
    Unsendable,
    /// The answer was not valid HTTP (malformed framing): the request went out, and the same server would
    /// likely answer the same way, so it is not retried as a network blip.
    Malformed,
    /// Any other transport failure; treated as possibly sent.
    Other,
}

impl TransportFailure {
    /// Returns whether the server may have received, and acted on, the request.
    pub const fn request_may_have_been_sent(&self) -> bool {
        match self {
            Self::ConnectFailed | Self::TlsHandshake | Self::ResetBeforeSend | Self::TlsRefused | Self::Unsendable => {
                false
            }
            Self::Timeout | Self::ResetAfterSend | Self::BodyTooLarge | Self::Malformed | Self::Other => true,
        }
    }

    /// Returns whether sending the same request again may succeed (for calls that may be repeated).
    pub fn is_retryable(&self) -> bool {
        classify(&Signal::Transport(*self)) != FailureClass::Permanent
    }
}

/// What a failed attempt looked like, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum Signal<'a> {
    /// No HTTP response arrived.
    Transport(TransportFailure),
    /// An error response arrived.
    Response {
        /// The HTTP status code.
        status: u16,
        /// The platform `error_code` of the body, if the body had one.
        error_code: Option<&'a str>,
        /// The parsed `Retry-After` header, if any (see [`parse_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// A successful status whose body could not be decoded.
    Decode,
}

impl Signal<'_> {
    /// Returns the server's `Retry-After` hint, if the signal carries one.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Response { retry_after, .. } => *retry_after,
            Self::Transport(_) | Self::Decode => None,
        }
    }
}

/// The retry-relevant class of a failure; see the table in the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// The request never reached the server: retrying is safe for every operation.
    Transient,
    /// The platform refused the request with its throttling code (`1010009`) and did not act on it: retry
    /// any operation after a longer wait.
    Throttled,
    /// The server or something in front of it asked the client to slow down (429, or 503 with
    /// `Retry-After`) without the platform's throttling code, so the request may have been processed:
    /// retry idempotent operations only, after a throttling wait that honours the hint.
    Overloaded,
    /// The access token was rejected: renew it and retry once.
    AuthExpired,
    /// The server may have processed the request: retry idempotent operations only.
    ServerTransient,
    /// Retrying cannot help.
    Permanent,
}

/// Classifies a failed attempt, by platform `error_code` first and HTTP status second.
pub(crate) fn classify(signal: &Signal<'_>) -> FailureClass {
    match *signal {
        Signal::Transport(failure) => match failure {
            TransportFailure::ConnectFailed | TransportFailure::TlsHandshake | TransportFailure::ResetBeforeSend => {
                FailureClass::Transient
            }
            TransportFailure::Timeout | TransportFailure::ResetAfterSend | TransportFailure::Other => {
                FailureClass::ServerTransient
            }
            // The same request would bring back the same oversized body, or meet the same refusal.
            TransportFailure::BodyTooLarge
            | TransportFailure::TlsRefused
            | TransportFailure::Unsendable
            | TransportFailure::Malformed => FailureClass::Permanent,
        },
        Signal::Decode => FailureClass::Permanent,
        Signal::Response { status, error_code, retry_after } => match classify_answer(status, error_code) {
            // Only the platform's own code proves that the platform refused the request unprocessed.
            ErrorClass::Throttled if throttled_by_code(error_code) => FailureClass::Throttled,
            // A bare 429 may come from a gateway after the platform acted on the request.
            ErrorClass::Throttled => FailureClass::Overloaded,
            ErrorClass::TokenInvalid => FailureClass::AuthExpired,
            // A 503 that says when to come back is the server shedding load: wait as for throttling, but it
            // proves nothing about whether the request was processed.
            ErrorClass::Server if status == 503 && retry_after.is_some() => FailureClass::Overloaded,
            ErrorClass::Server => FailureClass::ServerTransient,
            _ => FailureClass::Permanent,
        },
    }
}

/// Returns whether `error_code` is a platform code whose catalog class is throttling (`1010009`).
fn throttled_by_code(error_code: Option<&str>) -> bool {
    let code = error_code.map(|c| <ErrorCode as iot_model::WireEnum>::from_wire(c.trim()));
    code.as_ref().and_then(ErrorCode::info).is_some_and(|info| info.class == ErrorClass::Throttled)
}

/// A source of uniformly distributed random numbers, injected so the policy stays deterministic.
pub trait RandomSource {
    /// Returns the next random value.
    fn next_u64(&mut self) -> u64;
}

/// The SplitMix64 generator: tiny, seeded and deterministic; good for jitter, not for secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Creates a generator from a seed; equal seeds give equal sequences.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How delays are randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Full jitter: a delay drawn uniformly between the lower bound and the exponential cap.
    Full,
    /// No jitter: always the exponential cap.
    None,
}

/// Why the policy stopped retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum GiveUpReason {
    /// The failure cannot be cured by retrying.
    Permanent,
    /// The request may have been processed and the operation is not idempotent.
    NotIdempotent,
    /// The attempt budget of the call is spent.
    MaxAttempts,
    /// The token was rejected again after it had been renewed once in this call.
    AuthRejectedAfterRenewal,
    /// The shared retry quota is empty.
    QuotaExhausted,
}

/// What the caller does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RetryDecision {
    /// Wait this long, then send the request again.
    RetryAfter(Duration),
    /// Renew the access token (see the token session), then send the request again at once.
    RenewTokenAndRetry,
    /// Surface the failure.
    GiveUp(GiveUpReason),
}

/// The retry policy: attempt budget, backoff and throttling delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per call, the first one included (default 3); 0 and 1 both mean no retries.
    pub max_attempts: u32,
    /// The backoff cap of the first retry (default 100 ms); it doubles with each attempt.
    pub initial_backoff: Duration,
    /// The largest backoff cap (default 20 s).
    pub max_backoff: Duration,
    /// The shortest wait after throttling (default 1 s).
    pub throttle_floor: Duration,
    /// The largest wait after throttling, and how far a `Retry-After` hint may exceed the backoff
    /// (default 60 s, the platform's rate window).
    pub throttle_cap: Duration,
    /// How delays are randomised (default [`Jitter::Full`]).
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The default policy: 3 attempts, 100 ms doubling to 20 s, throttling waits of 1 s to 60 s, full
    /// jitter.
    pub const fn new() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(20),
            throttle_floor: Duration::from_secs(1),
            throttle_cap: Duration::from_secs(60),
            jitter: Jitter::Full,
        }
    }

    /// A policy that never retries; an expired token is still renewed once per call, because that is
    /// session upkeep rather than a retry.
    pub const fn disabled() -> Self {
        Self::new().with_max_attempts(1)
    }

    /// Returns the policy with another attempt budget.
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Returns the policy with other backoff bounds.
    pub const fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Returns the policy with other throttling bounds.
    pub const fn with_throttling(mut self, floor: Duration, cap: Duration) -> Self {
        self.throttle_floor = floor;
        self.throttle_cap = cap;
        self
    }

    /// Returns the policy with another jitter mode.
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Returns the backoff cap after failed attempt `attempt` (1-based; 0 counts as 1):
    /// `min(initial_backoff * 2^(attempt-1), max_backoff)`, without overflow for any input.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        exponential(self.initial_backoff, attempt.max(1) - 1, self.max_backoff)
    }

    /// Returns the backoff after failed attempt `attempt`: uniform in `[0, backoff_cap(attempt)]` with
    /// full jitter, exactly the cap without.
    pub(crate) fn backoff(&self, attempt: u32, rng: &mut dyn RandomSource) -> Duration {
        self.jittered(Duration::ZERO, self.backoff_cap(attempt), rng)
    }

    /// Returns the longest throttling wait after failed attempt `attempt` (1-based; 0 counts as 1):
    /// `min(throttle_cap, throttle_floor * 2^attempt)`, never below the floor.
    pub fn throttle_delay_cap(&self, attempt: u32) -> Duration {
        exponential(self.throttle_floor, attempt.max(1), self.throttle_cap).max(self.throttle_floor)
    }

    /// Returns the wait after throttling: uniform in `[throttle_floor, throttle_delay_cap(attempt)]`
    /// with full jitter, exactly the cap without.
    pub(crate) fn throttle_delay(&self, attempt: u32, rng: &mut dyn RandomSource) -> Duration {
        self.jittered(self.throttle_floor, self.throttle_delay_cap(attempt), rng)
    }

    /// Decides what follows failed attempt `attempt` (1-based) of a call.
    ///
    /// `idempotent` says whether the operation may safely run twice; `retry_after` is the server's
    /// hint, honoured but clamped to `[delay, delay + throttle_cap]` where `delay` is the policy's own
    /// backoff (or throttling wait); `auth_retried` says whether this call already renewed its token,
    /// and turns a second expired-token answer into [`GiveUpReason::AuthRejectedAfterRenewal`]. The
    /// token renewal is not limited by `max_attempts`, only by `auth_retried`; every other retry is.
    /// The shared quota is applied by [`RetryCall`].
    pub(crate) fn decide(
        &self,
        attempt: u32,
        class: FailureClass,
        idempotent: bool,
        retry_after: Option<Duration>,
        auth_retried: bool,
        rng: &mut dyn RandomSource,
    ) -> RetryDecision {
        let attempt = attempt.max(1);
        let give_up = match class {
            FailureClass::Permanent => Some(GiveUpReason::Permanent),
            FailureClass::AuthExpired if auth_retried => Some(GiveUpReason::AuthRejectedAfterRenewal),
            FailureClass::AuthExpired => return RetryDecision::RenewTokenAndRetry,
            FailureClass::ServerTransient | FailureClass::Overloaded if !idempotent => {
                Some(GiveUpReason::NotIdempotent)
            }
            _ if attempt >= self.max_attempts => Some(GiveUpReason::MaxAttempts),
            FailureClass::Transient
            | FailureClass::Throttled
            | FailureClass::Overloaded
            | FailureClass::ServerTransient => None,
        };
        if let Some(reason) = give_up {
            return RetryDecision::GiveUp(reason);
        }
        let base = match class {
            FailureClass::Throttled | FailureClass::Overloaded => self.throttle_delay(attempt, rng),
            _ => self.backoff(attempt, rng),
        };
        let delay = match retry_after {
            Some(hint) => hint.max(base).min(base.saturating_add(self.throttle_cap)),
            None => base,
        };
        RetryDecision::RetryAfter(delay)
    }

    fn jittered(&self, low: Duration, high: Duration, rng: &mut dyn RandomSource) -> Duration {
        match self.jitter {
            Jitter::None => high,
            Jitter::Full => low.saturating_add(uniform_up_to(high.saturating_sub(low), rng)),
        }
    }
}

/// A token bucket shared by all calls of a client that stops retry storms.
///
/// Every retry takes tokens ([`RETRY_COST`](Self::RETRY_COST), or the cheaper
/// [`THROTTLE_COST`](Self::THROTTLE_COST) after throttling, whose waits already slow the client down);
/// token renewals take none. A call that succeeds gives back what it took, or
/// [`SUCCESS_REFILL`](Self::SUCCESS_REFILL) if it took nothing. When the bucket cannot pay for a retry the
/// call gives up at once, so a burst of failures against a sick server stops retrying quickly. Sans-IO:
/// the transport keeps the bucket behind its own lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryQuota {
    capacity: u32,
    available: u32,
}

impl Default for RetryQuota {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl RetryQuota {
    /// The default size of the bucket.
    pub const DEFAULT_CAPACITY: u32 = 500;
    /// The cost of a retry after a transient or server failure.
    pub const RETRY_COST: u32 = 5;
    /// The cost of a retry after throttling.
    pub const THROTTLE_COST: u32 = 1;
    /// What a call that succeeded without retrying gives back.
    pub const SUCCESS_REFILL: u32 = 1;

    /// Creates a full bucket of `capacity` tokens.
    pub const fn new(capacity: u32) -> Self {
        Self { capacity, available: capacity }
    }

    /// Returns the size of the bucket.
    pub const fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Returns the tokens left.
    pub const fn available(&self) -> u32 {
        self.available
    }

    /// Returns what a retry of `class` costs; renewals and permanent failures cost nothing.
    pub(crate) const fn cost(class: FailureClass) -> u32 {
        match class {
            FailureClass::Transient | FailureClass::ServerTransient => Self::RETRY_COST,
            FailureClass::Throttled | FailureClass::Overloaded => Self::THROTTLE_COST,
            FailureClass::AuthExpired | FailureClass::Permanent => 0,
        }
    }

    /// Takes the cost of a retry of `class`, or returns `false` and takes nothing if too few are left.
    pub(crate) fn try_acquire(&mut self, class: FailureClass) -> bool {
        match self.available.checked_sub(Self::cost(class)) {
            Some(left) => {
                self.available = left;
                true
            }
            None => false,
        }
    }

    /// Records a successful call that had taken `spent` tokens for its retries.
    pub(crate) fn record_success(&mut self, spent: u32) {
        let refill = if spent == 0 { Self::SUCCESS_REFILL } else { spent };
        self.available = self.available.saturating_add(refill).min(self.capacity);
    }
}

/// The retry bookkeeping of one call: attempt count, the one token renewal, and quota charges.
///
/// Feed it each failed attempt with [`on_failure`](Self::on_failure) and the final success with
/// [`on_success`](Self::on_success). Passing `None` for the quota retries without one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RetryCall {
    policy: RetryPolicy,
    idempotent: bool,
    failures: u32,
    auth_renewed: bool,
    quota_spent: u32,
}

impl RetryCall {
    /// Starts the bookkeeping of a call to an operation that is, or is not, idempotent.
    pub(crate) const fn new(policy: RetryPolicy, idempotent: bool) -> Self {
        Self { policy, idempotent, failures: 0, auth_renewed: false, quota_spent: 0 }
    }

    /// Records a failed attempt and decides what follows.
    ///
    /// A retry the policy allows is then charged to `quota`; if the quota cannot pay, the decision is
    /// [`GiveUpReason::QuotaExhausted`]. A token renewal is allowed once per call and never charged.
    pub(crate) fn on_failure(
        &mut self,
        signal: &Signal<'_>,
        quota: Option<&mut RetryQuota>,
        rng: &mut dyn RandomSource,
    ) -> RetryDecision {
        self.failures = self.failures.saturating_add(1);
        let class = classify(signal);
        let decision =
            self.policy.decide(self.failures, class, self.idempotent, signal.retry_after(), self.auth_renewed, rng);
        match decision {
            RetryDecision::RenewTokenAndRetry => self.auth_renewed = true,
            RetryDecision::RetryAfter(_) => {
                if let Some(quota) = quota {
                    if !quota.try_acquire(class) {
                        return RetryDecision::GiveUp(GiveUpReason::QuotaExhausted);
                    }
                    self.quota_spent = self.quota_spent.saturating_add(RetryQuota::cost(class));
                }
            }
            RetryDecision::GiveUp(_) => {}
        }
        decision
    }

    /// Records that the call finally succeeded, refunding its retries to `quota`.
    pub(crate) fn on_success(self, quota: Option<&mut RetryQuota>) {
        if let Some(quota) = quota {
            quota.record_success(self.quota_spent);
        }
    }

    /// Returns the number of failed attempts recorded.
    pub(crate) const fn failures(&self) -> u32 {
        self.failures
    }

    /// Returns the quota tokens this call has taken so far.
    pub(crate) const fn quota_spent(&self) -> u32 {
        self.quota_spent
    }
}

/// Parses a `Retry-After` header value received at `now` into a wait.
///
/// Accepts delta-seconds (`120`) and the HTTP date form (`Sun, 06 Nov 1994 08:49:37 GMT`); a date in
/// the past gives zero, a number too large for a `u64` saturates. The weekday of a date must be a valid
/// name but is not checked against the date. Anything else, including the obsolete RFC 850 and asctime
/// date forms, gives `None`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: the parse can fail only by overflow.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = time::PrimitiveDateTime::parse(value, format).ok()?.assume_utc();
    let target = i128::from(date.unix_timestamp()) * signed(NANOS_PER_SEC);
    let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => signed(after.as_nanos()),
        Err(before) => -signed(before.duration().as_nanos()),
    };
    Some(u128::try_from(target.saturating_sub(now)).map_or(Duration::ZERO, duration_from_nanos))
}

/// Converts a nanosecond count from the standard library, always below 2^96, to `i128`.
fn signed(nanos: u128) -> i128 {
    i128::try_from(nanos).unwrap_or(i128::MAX)
}

/// Returns `min(base * 2^doublings, ceiling)` without overflow.
fn exponential(base: Duration, doublings: u32, ceiling: Duration) -> Duration {
    let product = 1_u128.checked_shl(doublings).and_then(|factor| base.as_nanos().checked_mul(factor));
    match product {
        Some(nanos) if nanos <= ceiling.as_nanos() => duration_from_nanos(nanos),
        // A zero base stays zero however often it doubles.
        _ if base.is_zero() => Duration::ZERO,
        _ => ceiling,
    }
}

/// Returns a duration drawn uniformly from `[0, span]` (`span` is truncated to about 584 years).
fn uniform_up_to(span: Duration, rng: &mut dyn RandomSource) -> Duration {
    let span = span.as_nanos().min(u128::from(u64::MAX));
    // Multiply-shift maps a 64-bit draw onto 0..=span; the product stays below 2^128.
    let pick = (u128::from(rng.next_u64()) * (span + 1)) >> 64;
    duration_from_nanos(pick)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    /// A source that always returns the same value, to hit the ends of a range exactly.
    struct Fixed(u64);

    impl RandomSource for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    fn response(status: u16, code: Option<&str>) -> Signal<'_> {
        Signal::Response { status, error_code: code, retry_after: None }
    }

    fn no_jitter() -> RetryPolicy {
        RetryPolicy::default().with_jitter(Jitter::None)
    }

    /// The decision for a first failed attempt, with jitter off.
    fn first_decision(signal: &Signal<'_>, idempotent: bool) -> RetryDecision {
        no_jitter().decide(1, classify(signal), idempotent, signal.retry_after(), false, &mut Fixed(0))
    }

    #[test]
    fn transport_failures_know_whether_the_request_went_out() {
        use TransportFailure::*;
        let table = [
            (ConnectFailed, false),
            (TlsHandshake, false),
            (ResetBeforeSend, false),
            (Timeout, true),
            (ResetAfterSend, true),
            (BodyTooLarge, true),
            (Other, true),
        ];
        for (failure, sent) in table {
            assert_eq!(failure.request_may_have_been_sent(), sent, "{failure:?}");
        }
    }

    #[test]
    fn classification_table() {
        use FailureClass::*;
        use RetryDecision::{GiveUp, RenewTokenAndRetry, RetryAfter};
        let backoff = RetryAfter(100 * MS);
        let throttle = RetryAfter(2 * SEC);
        let hinted = |s: u16, secs: u64| Signal::Response {
            status: s,
            error_code: None,
            retry_after: Some(Duration::from_secs(secs)),
        };
        // (signal, class, decision for an idempotent call, decision for a non-idempotent call)
        let table: Vec<(Signal<'_>, FailureClass, RetryDecision, RetryDecision)> = vec![
            // Nothing reached the server: retry anything.
            (Signal::Transport(TransportFailure::ConnectFailed), Transient, backoff, backoff),
            (Signal::Transport(TransportFailure::TlsHandshake), Transient, backoff, backoff),
            (Signal::Transport(TransportFailure::ResetBeforeSend), Transient, backoff, backoff),
            // The server may have acted: retry idempotent operations only.
            (
                Signal::Transport(TransportFailure::Timeout),
                ServerTransient,
                backoff,
                GiveUp(GiveUpReason::NotIdempotent),
            ),
            (
                Signal::Transport(TransportFailure::ResetAfterSend),
                ServerTransient,
                backoff,
                GiveUp(GiveUpReason::NotIdempotent),
            ),
            (Signal::Transport(TransportFailure::Other), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            (
                Signal::Transport(TransportFailure::BodyTooLarge),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            // Throttling is recognised by its code, whatever the status, and never taken for auth.
            (response(403, Some("1010009")), Throttled, throttle, throttle),
            (response(429, Some("1010009")), Throttled, throttle, throttle),
            (response(200, Some("1010009")), Throttled, throttle, throttle),
            (response(403, Some(" 1010009 ")), Throttled, throttle, throttle),
            // An expired token is renewed once, for any operation.
            (response(403, Some("1010005")), AuthExpired, RenewTokenAndRetry, RenewTokenAndRetry),
            (response(401, Some("1010005")), AuthExpired, RenewTokenAndRetry, RenewTokenAndRetry),
            // 403 with any other code, or none, is a permission error.
            (
                response(403, Some("100217")),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            (
                response(403, Some("100203")),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            (response(403, None), Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
            (
                response(401, Some("100208")),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            (response(401, None), Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
            // Standard load-shedding statuses without the platform's code prove nothing: the request may have
            // been processed before a gateway answered, so only idempotent calls are resent.
            (response(429, None), Overloaded, throttle, GiveUp(GiveUpReason::NotIdempotent)),
            // A known code decides before the status: the platform's internal error is a server failure.
            (response(429, Some("50252")), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            (response(429, Some("999999")), Overloaded, throttle, GiveUp(GiveUpReason::NotIdempotent)),
            (hinted(429, 1), Overloaded, throttle, GiveUp(GiveUpReason::NotIdempotent)),
            (hinted(503, 5), Overloaded, RetryAfter(5 * SEC), GiveUp(GiveUpReason::NotIdempotent)),
            (
                Signal::Response { status: 503, error_code: Some("50252"), retry_after: Some(5 * SEC) },
                Overloaded,
                RetryAfter(5 * SEC),
                GiveUp(GiveUpReason::NotIdempotent),
            ),
            // The platform's throttling code proves the refusal whatever the status and hint.
            (
                Signal::Response { status: 503, error_code: Some("1010009"), retry_after: Some(5 * SEC) },
                Throttled,
                RetryAfter(5 * SEC),
                RetryAfter(5 * SEC),
            ),
            (
                Signal::Response { status: 429, error_code: Some("1010009"), retry_after: Some(SEC) },
                Throttled,
                throttle,
                throttle,
            ),
            // So does its rejected-token code.
            (response(500, Some("1010005")), AuthExpired, RenewTokenAndRetry, RenewTokenAndRetry),
            // Server errors that may have done the work.
            (response(500, None), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            (response(500, Some("50252")), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            (response(502, None), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            (response(503, None), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            (response(504, None), ServerTransient, backoff, GiveUp(GiveUpReason::NotIdempotent)),
            // Everything else is permanent.
            (
                response(400, Some("123029")),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            (
                response(404, Some("123009")),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            (response(408, None), Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
            (response(501, None), Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
            (response(302, None), Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
            (
                response(200, Some("100022")),
                Permanent,
                GiveUp(GiveUpReason::Permanent),
                GiveUp(GiveUpReason::Permanent),
            ),
            (response(400, None), Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
            (Signal::Decode, Permanent, GiveUp(GiveUpReason::Permanent), GiveUp(GiveUpReason::Permanent)),
        ];
        for (signal, class, idempotent, not_idempotent) in table {
            assert_eq!(classify(&signal), class, "class of {signal:?}");
            assert_eq!(first_decision(&signal, true), idempotent, "idempotent {signal:?}");
            assert_eq!(first_decision(&signal, false), not_idempotent, "non-idempotent {signal:?}");
        }
    }

    #[test]
    fn defaults_and_disabled() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.initial_backoff, 100 * MS);
        assert_eq!(policy.max_backoff, 20 * SEC);
        assert_eq!(policy.throttle_floor, SEC);
        assert_eq!(policy.throttle_cap, 60 * SEC);
        assert_eq!(policy.jitter, Jitter::Full);
        let disabled = RetryPolicy::disabled();
        for class in
            [FailureClass::Transient, FailureClass::Throttled, FailureClass::Overloaded, FailureClass::ServerTransient]
        {
            assert_eq!(
                disabled.decide(1, class, true, None, false, &mut Fixed(0)),
                RetryDecision::GiveUp(GiveUpReason::MaxAttempts)
            );
        }
        assert_eq!(
            disabled.decide(1, FailureClass::AuthExpired, true, None, false, &mut Fixed(0)),
            RetryDecision::RenewTokenAndRetry
        );
    }

    #[test]
    fn backoff_without_jitter_is_the_exponential_cap() {
        let policy = no_jitter();
        let expected_ms: [u64; 12] = [100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 20_000, 20_000, 20_000, 20_000];
        for (n, ms) in (1_u32..).zip(expected_ms) {
            let formula = (policy.initial_backoff * 2_u32.pow(n - 1)).min(policy.max_backoff);
            assert_eq!(formula, Duration::from_millis(ms));
            assert_eq!(policy.backoff(n, &mut Fixed(0)), formula, "attempt {n}");
            assert_eq!(policy.backoff_cap(n), formula, "attempt {n}");
        }
        // Attempt 0 is read as attempt 1.
        assert_eq!(policy.backoff(0, &mut Fixed(0)), 100 * MS);
    }

    #[test]
    fn throttle_delay_without_jitter_doubles_from_the_floor() {
        let policy = no_jitter();
        let expected_secs: [u64; 8] = [2, 4, 8, 16, 32, 60, 60, 60];
        for (n, secs) in (1_u32..).zip(expected_secs) {
            assert_eq!(policy.throttle_delay(n, &mut Fixed(0)), Duration::from_secs(secs), "attempt {n}");
        }
    }

    #[test]
    fn seeded_jitter_stays_in_range_and_spreads() {
        let policy = RetryPolicy::default().with_max_attempts(u32::MAX);
        let mut rng = SplitMix64::new(0x5EED);
        for n in 1..=40_u32 {
            let cap = policy.backoff_cap(n);
            let throttle_cap = policy.throttle_delay_cap(n);
            let mut below_half = 0;
            for _ in 0..200 {
                let delay = policy.backoff(n, &mut rng);
                assert!(delay <= cap, "attempt {n}: {delay:?} > {cap:?}");
                if delay < cap / 2 {
                    below_half += 1;
                }
                let wait = policy.throttle_delay(n, &mut rng);
                assert!(wait >= policy.throttle_floor && wait <= throttle_cap, "attempt {n}: {wait:?}");
            }
            // Full jitter spreads over the whole range: about half the draws fall below the middle.
            assert!((50..=150).contains(&below_half), "attempt {n}: {below_half} of 200 below half");
        }
    }

    #[test]
    fn jitter_reaches_both_ends_of_the_range() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(3, &mut Fixed(0)), Duration::ZERO);
        assert_eq!(policy.backoff(3, &mut Fixed(u64::MAX)), 400 * MS);
        assert_eq!(policy.throttle_delay(2, &mut Fixed(0)), SEC);
        assert_eq!(policy.throttle_delay(2, &mut Fixed(u64::MAX)), 4 * SEC);
    }

    #[test]
    fn huge_attempts_and_durations_do_not_overflow() {
        let policy = RetryPolicy::default().with_max_attempts(u32::MAX);
        let mut rng = SplitMix64::new(1);
        for n in [31, 32, 63, 64, 65, 127, 128, 129, u32::MAX - 1, u32::MAX] {
            assert_eq!(policy.backoff_cap(n), 20 * SEC);
            assert_eq!(policy.throttle_delay_cap(n), 60 * SEC);
            assert!(policy.backoff(n, &mut rng) <= 20 * SEC);
        }
        for n in [31, 32, 63, 64, 65, 127, 128, 129, u32::MAX - 1] {
            assert!(matches!(
                policy.decide(n, FailureClass::Transient, true, None, false, &mut rng),
                RetryDecision::RetryAfter(d) if d <= 20 * SEC
            ));
        }
        assert_eq!(
            policy.decide(u32::MAX, FailureClass::Transient, true, None, false, &mut rng),
            RetryDecision::GiveUp(GiveUpReason::MaxAttempts)
        );

        // Extreme configurations saturate instead of panicking.
        let extreme = RetryPolicy::default()
            .with_max_attempts(u32::MAX)
            .with_backoff(Duration::MAX, Duration::MAX)
            .with_throttling(Duration::MAX, Duration::MAX);
        for n in [1, 2, 64, u32::MAX - 1] {
            assert_eq!(extreme.backoff_cap(n), Duration::MAX);
            assert!(extreme.backoff(n, &mut rng) <= Duration::MAX);
            assert_eq!(extreme.throttle_delay(n, &mut rng), Duration::MAX);
            let hinted = extreme.decide(n, FailureClass::Throttled, true, Some(Duration::MAX), false, &mut rng);
            assert_eq!(hinted, RetryDecision::RetryAfter(Duration::MAX));
        }

        // A tiny base keeps doubling exactly past 32 doublings.
        let tiny =
            no_jitter().with_max_attempts(u32::MAX).with_backoff(Duration::from_nanos(1), Duration::from_secs(3600));
        assert_eq!(tiny.backoff_cap(41), Duration::from_nanos(1 << 40));
        assert_eq!(tiny.backoff_cap(100), Duration::from_secs(3600));

        // A zero base stays zero.
        let zero = no_jitter().with_backoff(Duration::ZERO, SEC);
        assert_eq!(zero.backoff_cap(u32::MAX), Duration::ZERO);

        // A floor above the cap still waits the floor.
        let inverted = no_jitter().with_throttling(10 * SEC, SEC);
        assert_eq!(inverted.throttle_delay(1, &mut rng), 10 * SEC);
    }

    #[test]
    fn retries_stop_at_max_attempts() {
        let timeout = Signal::Transport(TransportFailure::Timeout);
        for max_attempts in [0, 1, 2, 3, 5] {
            let policy = no_jitter().with_max_attempts(max_attempts);
            let mut call = RetryCall::new(policy, true);
            let mut waits = Vec::new();
            // Bounded: a policy that never gave up would fail the assertion below.
            for _ in 0..10 {
                match call.on_failure(&timeout, None, &mut Fixed(0)) {
                    RetryDecision::RetryAfter(d) => waits.push(d),
                    RetryDecision::GiveUp(reason) => {
                        assert_eq!(reason, GiveUpReason::MaxAttempts);
                        break;
                    }
                    RetryDecision::RenewTokenAndRetry => panic!("no auth failure here"),
                }
            }
            let attempts = max_attempts.max(1);
            assert_eq!(call.failures(), attempts, "max_attempts {max_attempts}");
            let expected: Vec<Duration> = (1..attempts).map(|n| policy.backoff_cap(n)).collect();
            assert_eq!(waits, expected);
        }
    }

    #[test]
    fn expired_token_is_renewed_once_per_call() {
        let expired = response(403, Some("1010005"));
        let mut call = RetryCall::new(RetryPolicy::default(), false);
        let mut quota = RetryQuota::default();
        let mut rng = SplitMix64::new(3);
        assert_eq!(call.on_failure(&expired, Some(&mut quota), &mut rng), RetryDecision::RenewTokenAndRetry);
        assert_eq!(
            call.on_failure(&expired, Some(&mut quota), &mut rng),
            RetryDecision::GiveUp(GiveUpReason::AuthRejectedAfterRenewal)
        );
        // Renewals are not charged to the quota.
        assert_eq!(quota.available(), RetryQuota::DEFAULT_CAPACITY);
        assert_eq!(call.quota_spent(), 0);

        // The pure decision agrees.
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(7, FailureClass::AuthExpired, true, None, true, &mut rng),
            RetryDecision::GiveUp(GiveUpReason::AuthRejectedAfterRenewal)
        );
    }

    #[test]
    fn renewal_then_throttling_then_success() {
        let policy = no_jitter().with_max_attempts(4);
        let mut call = RetryCall::new(policy, true);
        let mut quota = RetryQuota::default();
        let mut rng = Fixed(0);
        assert_eq!(
            call.on_failure(&response(401, Some("1010005")), Some(&mut quota), &mut rng),
            RetryDecision::RenewTokenAndRetry
        );
        assert_eq!(
            call.on_failure(&response(403, Some("1010009")), Some(&mut quota), &mut rng),
            RetryDecision::RetryAfter(4 * SEC)
        );
        assert_eq!(
            call.on_failure(&Signal::Transport(TransportFailure::ConnectFailed), Some(&mut quota), &mut rng),
            RetryDecision::RetryAfter(400 * MS)
        );
        assert_eq!(call.failures(), 3);
        assert_eq!(call.quota_spent(), RetryQuota::THROTTLE_COST + RetryQuota::RETRY_COST);
        assert_eq!(quota.available(), 500 - 6);
        call.on_success(Some(&mut quota));
        assert_eq!(quota.available(), 500);
    }

    #[test]
    fn a_burst_of_failing_calls_drains_the_quota_and_later_calls_fail_fast() {
        let mut quota = RetryQuota::default();
        let mut rng = SplitMix64::new(11);
        let failure = response(502, None);
        let mut retried_calls = 0;
        let mut fast_failures = 0;
        for _ in 0..300 {
            let mut call = RetryCall::new(RetryPolicy::default(), true);
            loop {
                match call.on_failure(&failure, Some(&mut quota), &mut rng) {
                    RetryDecision::RetryAfter(_) => {}
                    RetryDecision::GiveUp(GiveUpReason::QuotaExhausted) => {
                        if call.failures() == 1 {
                            fast_failures += 1;
                        }
                        break;
                    }
                    RetryDecision::GiveUp(GiveUpReason::MaxAttempts) => {
                        retried_calls += 1;
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        // 500 tokens pay for 100 retries of 5: 50 calls retry twice, then the bucket is empty.
        assert_eq!(retried_calls, 50);
        assert_eq!(quota.available(), 0);
        assert_eq!(fast_failures, 250);

        // Throttling retries are cheaper but cannot pay from an empty bucket either.
        let mut call = RetryCall::new(RetryPolicy::default(), true);
        assert_eq!(
            call.on_failure(&response(403, Some("1010009")), Some(&mut quota), &mut rng),
            RetryDecision::GiveUp(GiveUpReason::QuotaExhausted)
        );
        // Renewals need no tokens.
        let mut call = RetryCall::new(RetryPolicy::default(), true);
        assert_eq!(
            call.on_failure(&response(403, Some("1010005")), Some(&mut quota), &mut rng),
            RetryDecision::RenewTokenAndRetry
        );

        // Successes refill the bucket one token at a time until one throttled retry can be paid.
        RetryCall::new(RetryPolicy::default(), true).on_success(Some(&mut quota));
        assert_eq!(quota.available(), 1);
        let mut call = RetryCall::new(RetryPolicy::default(), true);
        assert!(matches!(
            call.on_failure(&response(403, Some("1010009")), Some(&mut quota), &mut rng),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(quota.available(), 0);
        call.on_success(Some(&mut quota));
        assert_eq!(quota.available(), 1);
    }

    #[test]
    fn quota_costs_refunds_and_capacity() {
        let mut quota = RetryQuota::new(12);
        assert_eq!(quota.capacity(), 12);
        assert!(quota.try_acquire(FailureClass::Transient));
        assert!(quota.try_acquire(FailureClass::ServerTransient));
        assert_eq!(quota.available(), 2);
        assert!(!quota.try_acquire(FailureClass::Transient));
        assert_eq!(quota.available(), 2);
        assert!(quota.try_acquire(FailureClass::Throttled));
        assert_eq!(RetryQuota::cost(FailureClass::Overloaded), RetryQuota::THROTTLE_COST);
        assert!(quota.try_acquire(FailureClass::AuthExpired));
        assert!(quota.try_acquire(FailureClass::Permanent));
        assert_eq!(quota.available(), 1);
        quota.record_success(5);
        assert_eq!(quota.available(), 6);
        quota.record_success(u32::MAX);
        assert_eq!(quota.available(), 12);
        quota.record_success(0);
        assert_eq!(quota.available(), 12);
    }

    #[test]
    fn retry_after_hints_are_honoured_within_bounds() {
        let policy = no_jitter();
        let mut rng = Fixed(0);
        let decide = |class, hint| policy.decide(1, class, true, Some(hint), false, &mut Fixed(0));
        // Throttling: own wait 2 s, hints clamped to [2 s, 62 s].
        assert_eq!(decide(FailureClass::Throttled, Duration::ZERO), RetryDecision::RetryAfter(2 * SEC));
        assert_eq!(decide(FailureClass::Throttled, 30 * SEC), RetryDecision::RetryAfter(30 * SEC));
        assert_eq!(decide(FailureClass::Throttled, 3_600 * SEC), RetryDecision::RetryAfter(62 * SEC));
        // Server errors: own backoff 100 ms, hints clamped to [100 ms, 60.1 s].
        assert_eq!(decide(FailureClass::ServerTransient, MS), RetryDecision::RetryAfter(100 * MS));
        assert_eq!(decide(FailureClass::ServerTransient, 5 * SEC), RetryDecision::RetryAfter(5 * SEC));
        assert_eq!(
            decide(FailureClass::ServerTransient, Duration::MAX),
            RetryDecision::RetryAfter(60 * SEC + 100 * MS)
        );
        // Through a whole call, a 503 hint drives the wait.
        let mut call = RetryCall::new(policy, true);
        let busy = Signal::Response { status: 503, error_code: None, retry_after: Some(7 * SEC) };
        assert_eq!(call.on_failure(&busy, None, &mut rng), RetryDecision::RetryAfter(7 * SEC));
        // A create is not resent on the hint alone, and nothing is charged to the quota.
        let mut create = RetryCall::new(policy, false);
        let mut quota = RetryQuota::default();
        assert_eq!(
            create.on_failure(&busy, Some(&mut quota), &mut rng),
            RetryDecision::GiveUp(GiveUpReason::NotIdempotent)
        );
        assert_eq!(quota.available(), RetryQuota::DEFAULT_CAPACITY);
    }

    #[test]
    fn parse_retry_after_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(120 * SEC));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("007", now), Some(7 * SEC));
        assert_eq!(parse_retry_after("99999999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        for bad in ["", " ", "-5", "+5", "1.5", "5s", "1e3", "abc", "12 34"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn parse_retry_after_http_dates() {
        // 1994-11-06T08:49:37Z is Unix time 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(parse_retry_after(date, at(784_111_777 - 90)), Some(90 * SEC));
        assert_eq!(
            parse_retry_after(date, at(784_111_777) - Duration::from_millis(250)),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after(date, at(784_111_777)), Some(Duration::ZERO));
        // Past dates mean "now".
        assert_eq!(parse_retry_after(date, at(1_700_000_000)), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&format!("  {date}  "), at(784_111_777 - 1)), Some(SEC));
        // The weekday name is read but not checked against the date: the date is what matters.
        assert_eq!(parse_retry_after("Mon, 06 Nov 1994 08:49:37 GMT", at(784_111_777 - 5)), Some(5 * SEC));
        // A clock before 1970 still works.
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:05 GMT", before_epoch), Some(15 * SEC));
        // Far future dates are honoured here and clamped by the policy.
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", at(0)),
            Some(Duration::from_secs(253_402_300_799))
        );
        for bad in [
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "sun, 06 nov 1994 08:49:37 gmt",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_retry_after(bad, at(0)), None, "{bad:?}");
        }
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let mut c = SplitMix64::new(43);
        let (xa, xb, xc) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }
}
