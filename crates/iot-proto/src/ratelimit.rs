//! Sans-IO client-side rate limiter: keeps an application under the platform's call quota (by default 100
//! calls in any 60 seconds) so that a long walk paces itself instead of drawing throttling answers.
//!
//! A sliding window of the instants of the calls made: a call may go when fewer than `calls` fell in the last
//! `window`, else it waits until the oldest of them leaves the window. Time is an argument, so the limiter is
//! tested on a virtual clock; a driver keeps one behind a lock shared by all clones of its client.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use iot_proto::ratelimit::{Acquire, RateLimiter};
//!
//! let t0 = Instant::now();
//! let mut limiter = RateLimiter::new(2, Duration::from_secs(60));
//! assert_eq!(limiter.poll_acquire(t0), Acquire::Go);
//! assert_eq!(limiter.poll_acquire(t0), Acquire::Go);
//! assert_eq!(limiter.poll_acquire(t0), Acquire::WaitUntil(t0 + Duration::from_secs(60)));
//! assert_eq!(limiter.poll_acquire(t0 + Duration::from_secs(60)), Acquire::Go);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the limiter allows a call to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Acquire {
    /// Send now; the call has been counted.
    Go,
    /// Do not send before this instant, then ask again.
    WaitUntil(Instant),
}

/// A call quota: at most `calls` calls in any `window`. Plain data, for configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimit {
    /// Calls allowed in any window; 0 switches the limit off.
    pub calls: u32,
    /// The length of the window; zero switches the limit off.
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::platform()
    }
}

impl RateLimit {
    /// `calls` per `window`; `calls == 0` or a zero window means no limit.
    pub const fn new(calls: u32, window: Duration) -> Self {
        Self { calls, window }
    }

    /// The platform's quota per application: 100 calls in any 60 seconds.
    pub const fn platform() -> Self {
        Self::new(100, Duration::from_secs(60))
    }

    /// No limit.
    pub const fn disabled() -> Self {
        Self::new(0, Duration::ZERO)
    }
}

/// A sliding-window limit of `calls` per `window` (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimiter {
    calls: usize,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter of `calls` per `window`; `calls == 0` or a zero window disables it.
    pub fn new(calls: u32, window: Duration) -> Self {
        let calls = usize::try_from(calls).unwrap_or(usize::MAX);
        Self { calls, window, sent: VecDeque::with_capacity(calls.min(1024)) }
    }

    /// The platform's default quota: 100 calls per 60 seconds.
    pub fn platform_default() -> Self {
        Self::from(RateLimit::platform())
    }

    /// A limiter that never waits.
    pub fn disabled() -> Self {
        Self::new(0, Duration::ZERO)
    }

    /// Whether the limiter limits anything.
    pub fn is_enabled(&self) -> bool {
        self.calls > 0 && !self.window.is_zero()
    }

    /// Asks to send one call at `now`: counts it and says [`Acquire::Go`], or says when to ask again. Call it
    /// before every request (logins and refreshes count against the platform's quota too).
    pub fn poll_acquire(&mut self, now: Instant) -> Acquire {
        if !self.is_enabled() {
            return Acquire::Go;
        }
        let window = self.window;
        self.sent.retain(|t| now.saturating_duration_since(*t) < window);
        if self.sent.len() < self.calls {
            self.sent.push_back(now);
            return Acquire::Go;
        }
        match self.sent.iter().min() {
            Some(oldest) => Acquire::WaitUntil(*oldest + self.window),
            None => Acquire::Go,
        }
    }

    /// Records that the call sent at `sent_at` got its answer at `now`; call it when the answer (or the failure)
    /// arrives.
    ///
    /// The platform counts a call when the request arrives, somewhere between the two instants. Counting it from
    /// the later one keeps the next window's first call from reaching the platform before the previous window's
    /// last one has left it there, whatever the network's delays.
    pub fn handle_completed(&mut self, sent_at: Instant, now: Instant) {
        if let Some(slot) = self.sent.iter_mut().rev().find(|t| **t == sent_at) {
            *slot = now.max(sent_at);
        }
    }
}

impl From<RateLimit> for RateLimiter {
    fn from(limit: RateLimit) -> Self {
        Self::new(limit.calls, limit.window)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Sends `n` calls as early as the limiter allows, on a virtual clock; returns their send instants.
    fn drive(limiter: &mut RateLimiter, t0: Instant, n: usize) -> Vec<Instant> {
        let mut now = t0;
        let mut sent = Vec::new();
        while sent.len() < n {
            match limiter.poll_acquire(now) {
                Acquire::Go => sent.push(now),
                Acquire::WaitUntil(t) => {
                    assert!(t > now, "a wait must move time forward");
                    now = t;
                }
            }
        }
        sent
    }

    #[test]
    fn no_window_of_sixty_seconds_holds_more_than_a_hundred_calls() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::platform_default();
        let sent = drive(&mut limiter, t0, 350);
        for (i, start) in sent.iter().enumerate() {
            let inside = sent[i..].iter().take_while(|t| t.duration_since(*start) < Duration::from_secs(60)).count();
            assert!(inside <= 100, "{inside} calls in the window starting at call {i}");
        }
        // As fast as the limit allows: 100 at once, then 100 more every 60 s.
        assert_eq!(sent[99], t0);
        assert_eq!(sent[100], t0 + Duration::from_secs(60));
        assert_eq!(sent[349], t0 + Duration::from_secs(180));
    }

    #[test]
    fn a_disabled_limiter_never_waits() {
        let t0 = Instant::now();
        for mut limiter in [RateLimiter::disabled(), RateLimiter::new(0, Duration::from_secs(60))] {
            assert!(drive(&mut limiter, t0, 1000).iter().all(|t| *t == t0));
        }
    }

    #[test]
    fn a_call_counts_from_when_its_answer_arrived() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert_eq!(limiter.poll_acquire(t0), Acquire::Go);
        let second = t0 + Duration::from_secs(1);
        assert_eq!(limiter.poll_acquire(second), Acquire::Go);
        // The first call's answer took 5 s: the platform may have counted it as late as then.
        limiter.handle_completed(t0, t0 + Duration::from_secs(5));
        // The window frees up when the earliest counted call (now the second, at 1 s) leaves it.
        assert_eq!(limiter.poll_acquire(second), Acquire::WaitUntil(second + Duration::from_secs(60)));
        assert_eq!(limiter.poll_acquire(second + Duration::from_secs(60)), Acquire::Go);
        // The next slot is the first call's, counted from its answer.
        let later = second + Duration::from_secs(60);
        assert_eq!(limiter.poll_acquire(later), Acquire::WaitUntil(t0 + Duration::from_secs(65)));
        // Completing a call the limiter never counted (switched off, say) changes nothing.
        limiter.handle_completed(t0 + Duration::from_secs(999), later);
        assert_eq!(limiter.poll_acquire(later), Acquire::WaitUntil(t0 + Duration::from_secs(65)));
    }

    #[test]
    fn the_platform_limit_is_the_default() {
        assert_eq!(RateLimit::default(), RateLimit::new(100, Duration::from_secs(60)));
        assert!(RateLimiter::from(RateLimit::platform()).is_enabled());
        assert!(!RateLimiter::from(RateLimit::disabled()).is_enabled());
    }
}
