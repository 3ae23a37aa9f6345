//! Sans-IO token session: decides when to log in, when to refresh, and which access token to present.
//!
//! The platform issues an access token (about an hour) and a refresh token (about a day), and a new
//! login invalidates the tokens issued before it. A [`TokenSession`] holds the current pair and answers
//! [`poll`](TokenSession::poll) with what the caller must do next. It never reads the clock: every
//! time-dependent method takes `now`. The transport is expected to run at most one login or refresh at a
//! time (single flight) and to feed the outcome back through the `handle_*` methods.
//!
//! # Avoiding loops
//!
//! Every token handed out carries a generation. When the server rejects a token (error code `1010005`)
//! the caller reports the generation to [`handle_rejected`](TokenSession::handle_rejected) and retries
//! the request **at most once**; a second rejection of the same call is surfaced as an error. Only a
//! rejection of the current generation invalidates the token, so a burst of concurrent rejections of
//! one token causes one renewal, and a rejection of an older token causes none.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use iot_model::secret::{AccessToken, RefreshToken};
//! use iot_proto::session::{SessionAction, SessionConfig, TokenSession};
//!
//! let start = Instant::now();
//! let mut session = TokenSession::new(SessionConfig::default());
//! assert!(matches!(session.poll(start), SessionAction::Login));
//! session.handle_login(
//!     start,
//!     AccessToken::new("access"),
//!     Some(RefreshToken::new("refresh")),
//!     Duration::from_secs(3600),
//! );
//! let SessionAction::Ready(lease) = session.poll(start) else { unreachable!() };
//! assert_eq!(lease.generation, 1);
//! // Five minutes before expiry the session asks for a refresh.
//! assert!(matches!(session.poll(start + Duration::from_secs(3300)), SessionAction::Refresh(_)));
//! ```

use std::time::{Duration, Instant};

use iot_model::secret::{AccessToken, RefreshToken};

/// Timing rules of a [`TokenSession`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How long before the access token expires the session asks for a refresh (default 5 minutes).
    ///
    /// For a token that lives shorter than twice this margin, half its lifetime is used instead.
    pub refresh_margin: Duration,
    /// How long a refresh token stays usable after it was issued (default 24 hours); the platform does
    /// not report it.
    pub refresh_token_lifetime: Duration,
    /// The shortest lifetime the session believes for an access token (default 60 seconds).
    ///
    /// A response claiming `expiresIn` 0, or a few seconds, would otherwise make every poll ask for a
    /// new token; the server's own rejection of a stale token still leads to one renewal.
    pub min_token_lifetime: Duration,
}

impl SessionConfig {
    /// The platform's usual timing: refresh 5 minutes early, refresh tokens live 24 hours.
    pub const fn new() -> Self {
        Self {
            refresh_margin: Duration::from_secs(5 * 60),
            refresh_token_lifetime: Duration::from_secs(24 * 60 * 60),
            min_token_lifetime: Duration::from_secs(60),
        }
    }

    /// Returns the configuration with another refresh margin.
    pub const fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Returns the configuration with another refresh-token lifetime.
    pub const fn with_refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// Returns the configuration with another floor for access-token lifetimes.
    pub const fn with_min_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.min_token_lifetime = lifetime;
        self
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// An access token handed to one request, with the generation it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenLease {
    /// The token to present as `Authorization: Bearer <token>`.
    pub token: AccessToken,
    /// The generation of the token: it grows by one with every login and refresh.
    pub generation: u64,
}

/// What the caller must do before it can send an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionAction {
    /// Log in with the application credentials, then call [`TokenSession::handle_login`].
    Login,
    /// Trade this refresh token for new tokens, then call [`TokenSession::handle_refresh`], or
    /// [`TokenSession::handle_refresh_failed`] if the platform refuses.
    Refresh(RefreshToken),
    /// Send the request with this token.
    Ready(TokenLease),
}

/// A summary of the session for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// No access token: never logged in, or logged out.
    NoToken,
    /// The access token is usable and not yet due for a refresh.
    Valid,
    /// The access token still works but lies within the refresh margin.
    RefreshDue,
    /// The access token has expired.
    Expired,
    /// The server rejected the current access token.
    Rejected,
}

/// The token session state machine; see the [module documentation](self).
///
/// `Debug` shows deadlines and the generation; the tokens print `[redacted]`.
#[derive(Clone, Debug)]
pub struct TokenSession {
    config: SessionConfig,
    access: Option<Access>,
    refresh: Option<Refresh>,
    generation: u64,
}

/// The current access token and its deadlines; a deadline of `None` lies beyond what `Instant` can
/// represent, that is never.
#[derive(Clone, Debug)]
struct Access {
    token: AccessToken,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
    rejected: bool,
}

#[derive(Clone, Debug)]
struct Refresh {
    token: RefreshToken,
    expires_at: Option<Instant>,
}

impl TokenSession {
    /// Creates a session without tokens; the first poll asks for a login.
    pub fn new(config: SessionConfig) -> Self {
        Self { config, access: None, refresh: None, generation: 0 }
    }

    /// Returns what the caller must do at `now` before sending an authenticated request.
    ///
    /// `Ready` while the access token is valid and outside the refresh margin; otherwise `Refresh` while
    /// the refresh token is still valid, and `Login` when there is no usable refresh token or no token
    /// at all.
    pub fn poll(&self, now: Instant) -> SessionAction {
        let Some(access) = &self.access else {
            return SessionAction::Login;
        };
        if !access.rejected && !reached(now, access.refresh_at) {
            return SessionAction::Ready(TokenLease { token: access.token.clone(), generation: self.generation });
        }
        match &self.refresh {
            Some(refresh) if !reached(now, refresh.expires_at) => SessionAction::Refresh(refresh.token.clone()),
            _ => SessionAction::Login,
        }
    }

    /// Records a successful login at `now`: both tokens are replaced and the generation grows.
    ///
    /// `refresh` `None` means the response carried no refresh token, so the next renewal is a login.
    pub fn handle_login(
        &mut self,
        now: Instant,
        access: AccessToken,
        refresh: Option<RefreshToken>,
        expires_in: Duration,
    ) {
        self.refresh = refresh.map(|token| self.new_refresh(now, token));
        self.install_access(now, access, expires_in);
    }

    /// Records a successful refresh at `now`: the access token is replaced and the generation grows.
    ///
    /// A new refresh token replaces the old one and starts a new refresh-token lifetime; `None` keeps the
    /// old refresh token with its original deadline.
    pub fn handle_refresh(
        &mut self,
        now: Instant,
        access: AccessToken,
        refresh: Option<RefreshToken>,
        expires_in: Duration,
    ) {
        if let Some(token) = refresh {
            self.refresh = Some(self.new_refresh(now, token));
        }
        self.install_access(now, access, expires_in);
    }

    /// Records that the platform refused the refresh token: it is dropped, so the next poll that needs
    /// a renewal asks for a login.
    pub fn handle_refresh_failed(&mut self) {
        self.refresh = None;
    }

    /// Records that the server rejected the token of `generation`; the caller then polls again and retries
    /// its request once with what the poll hands out.
    ///
    /// A generation older than the current one changes nothing: a newer token already replaced it, so the
    /// retry uses that one without renewing. The current generation (or one never handed out) marks the
    /// current token invalid, so the next poll asks for a refresh or a login.
    ///
    /// The caller retries at most once after this: a call whose retry is rejected again must fail, which
    /// bounds the work of a session whose fresh tokens are refused too.
    pub fn handle_rejected(&mut self, generation: u64) {
        if generation < self.generation {
            return;
        }
        if let Some(access) = &mut self.access {
            access.rejected = true;
        }
    }

    /// Records that the application asked for a new access token now, whatever the current one's deadlines.
    ///
    /// The current access token stops being handed out, so the next poll asks for a refresh while the refresh
    /// token is usable, and for a login otherwise (or when there is no token at all). Leases handed out before
    /// keep their generation, so a later rejection of one of them does not cause a second renewal.
    pub fn handle_renewal_requested(&mut self) {
        if let Some(access) = &mut self.access {
            access.rejected = true;
        }
    }

    /// Forgets both tokens, for example after an explicit logout; the generation keeps growing from
    /// where it was so leases handed out earlier stay recognisably old.
    pub fn handle_logout(&mut self) {
        self.access = None;
        self.refresh = None;
    }

    /// Returns the generation of the current token (0 before the first login).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The access token while the platform should still accept it at `now` (not expired, not rejected), even
    /// inside the refresh margin; for revoking it with a logout, which needs no fresh token.
    pub fn live_token(&self, now: Instant) -> Option<TokenLease> {
        let access = self.access.as_ref().filter(|a| !a.rejected && !reached(now, a.expires_at))?;
        Some(TokenLease { token: access.token.clone(), generation: self.generation })
    }

    /// Summarises the access token at `now` for diagnostics.
    pub fn state(&self, now: Instant) -> SessionState {
        match &self.access {
            None => SessionState::NoToken,
            Some(access) if access.rejected => SessionState::Rejected,
            Some(access) if reached(now, access.expires_at) => SessionState::Expired,
            Some(access) if reached(now, access.refresh_at) => SessionState::RefreshDue,
            Some(_) => SessionState::Valid,
        }
    }

    fn new_refresh(&self, now: Instant, token: RefreshToken) -> Refresh {
        Refresh { token, expires_at: now.checked_add(self.config.refresh_token_lifetime) }
    }

    fn install_access(&mut self, now: Instant, token: AccessToken, expires_in: Duration) {
        let lifetime = expires_in.max(self.config.min_token_lifetime);
        // Capping the margin at half the lifetime keeps a short-lived token usable for a while instead
        // of asking for a refresh the moment it arrives.
        let margin = self.config.refresh_margin.min(lifetime / 2);
        self.generation = self.generation.saturating_add(1);
        self.access = Some(Access {
            token,
            refresh_at: now.checked_add(lifetime.saturating_sub(margin)),
            expires_at: now.checked_add(lifetime),
            rejected: false,
        });
    }
}

/// Returns whether `now` is at or past `deadline`; `None` is a deadline that never comes.
fn reached(now: Instant, deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| now >= deadline)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const SECRET_ACCESS: &str = "access-SENTINEL-1";
    const SECRET_REFRESH: &str = "refresh-SENTINEL-2";
    const HOUR: Duration = Duration::from_secs(3600);
    const MIN: Duration = Duration::from_secs(60);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn access(n: u32) -> AccessToken {
        AccessToken::new(format!("{SECRET_ACCESS}-{n}"))
    }

    fn refresh(n: u32) -> RefreshToken {
        RefreshToken::new(format!("{SECRET_REFRESH}-{n}"))
    }

    fn ready(session: &TokenSession, now: Instant) -> TokenLease {
        match session.poll(now) {
            SessionAction::Ready(lease) => lease,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn wants_refresh(session: &TokenSession, now: Instant) -> RefreshToken {
        match session.poll(now) {
            SessionAction::Refresh(token) => token,
            other => panic!("expected Refresh, got {other:?}"),
        }
    }

    fn logged_in(t0: Instant) -> TokenSession {
        let mut session = TokenSession::new(SessionConfig::default());
        session.handle_login(t0, access(1), Some(refresh(1)), HOUR);
        session
    }

    #[test]
    fn defaults_match_the_platform() {
        let config = SessionConfig::default();
        assert_eq!(config.refresh_margin, 5 * MIN);
        assert_eq!(config.refresh_token_lifetime, 24 * HOUR);
        assert_eq!(config.min_token_lifetime, MIN);
        let custom = SessionConfig::new()
            .with_refresh_margin(MIN)
            .with_refresh_token_lifetime(HOUR)
            .with_min_token_lifetime(secs(1));
        assert_eq!(custom.refresh_margin, MIN);
        assert_eq!(custom.refresh_token_lifetime, HOUR);
        assert_eq!(custom.min_token_lifetime, secs(1));
        // The session runs on the configuration it was given: a 1-minute margin, refresh tokens for an hour.
        let t0 = Instant::now();
        let mut session = TokenSession::new(custom);
        session.handle_login(t0, access(1), Some(refresh(1)), HOUR);
        ready(&session, t0 + HOUR - MIN - Duration::from_nanos(1));
        wants_refresh(&session, t0 + HOUR - MIN);
        assert_eq!(session.poll(t0 + HOUR), SessionAction::Login);
    }

    #[test]
    fn a_new_session_asks_for_a_login() {
        let t0 = Instant::now();
        let session = TokenSession::new(SessionConfig::default());
        assert_eq!(session.poll(t0), SessionAction::Login);
        assert_eq!(session.state(t0), SessionState::NoToken);
        assert_eq!(session.generation(), 0);
    }

    #[test]
    fn login_makes_the_token_ready_until_the_margin() {
        let t0 = Instant::now();
        let session = logged_in(t0);
        let lease = ready(&session, t0);
        assert_eq!(lease.token.expose_secret(), format!("{SECRET_ACCESS}-1"));
        assert_eq!(lease.generation, 1);
        assert_eq!(session.state(t0), SessionState::Valid);
        // One nanosecond before the margin starts the token is still ready.
        let margin_start = t0 + HOUR - 5 * MIN;
        ready(&session, margin_start - Duration::from_nanos(1));
        assert_eq!(session.state(margin_start - Duration::from_nanos(1)), SessionState::Valid);
        // From the margin on the session asks for a refresh with the stored refresh token.
        let token = wants_refresh(&session, margin_start);
        assert_eq!(token.expose_secret(), format!("{SECRET_REFRESH}-1"));
        assert_eq!(session.state(margin_start), SessionState::RefreshDue);
        // The token expires after exactly its lifetime; an expired access token with a live refresh token is
        // refreshed too.
        assert_eq!(session.state(t0 + HOUR - Duration::from_nanos(1)), SessionState::RefreshDue);
        wants_refresh(&session, t0 + HOUR);
        assert_eq!(session.state(t0 + HOUR), SessionState::Expired);
        wants_refresh(&session, t0 + 10 * HOUR);
    }

    #[test]
    fn refresh_replaces_the_access_token_and_bumps_the_generation() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let t1 = t0 + 56 * MIN;
        wants_refresh(&session, t1);
        session.handle_refresh(t1, access(2), Some(refresh(2)), HOUR);
        let lease = ready(&session, t1);
        assert_eq!(lease.generation, 2);
        assert_eq!(lease.token.expose_secret(), format!("{SECRET_ACCESS}-2"));
        assert_eq!(session.state(t1), SessionState::Valid);
        // The new token's lifetime runs from the refresh.
        assert_eq!(session.state(t1 + HOUR - Duration::from_nanos(1)), SessionState::RefreshDue);
        assert_eq!(session.state(t1 + HOUR), SessionState::Expired);
        // The next refresh uses the rotated refresh token.
        let token = wants_refresh(&session, t1 + 55 * MIN);
        assert_eq!(token.expose_secret(), format!("{SECRET_REFRESH}-2"));
    }

    #[test]
    fn refresh_without_a_new_refresh_token_keeps_the_old_one_and_its_deadline() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let t1 = t0 + 23 * HOUR;
        session.handle_refresh(t1, access(2), None, HOUR);
        assert_eq!(ready(&session, t1).generation, 2);
        // The old refresh token still serves within its 24 hours...
        let due = t1 + 55 * MIN;
        assert!(due < t0 + 24 * HOUR);
        assert_eq!(wants_refresh(&session, due).expose_secret(), format!("{SECRET_REFRESH}-1"));
        // ...and not after them.
        assert_eq!(session.poll(t0 + 24 * HOUR), SessionAction::Login);
    }

    #[test]
    fn expired_refresh_token_means_login() {
        let t0 = Instant::now();
        let session = logged_in(t0);
        let late = t0 + 24 * HOUR;
        wants_refresh(&session, late - Duration::from_nanos(1));
        assert_eq!(session.poll(late), SessionAction::Login);
        assert_eq!(session.state(late), SessionState::Expired);
    }

    #[test]
    fn login_without_refresh_token_logs_in_again_when_due() {
        let t0 = Instant::now();
        let mut session = TokenSession::new(SessionConfig::default());
        session.handle_login(t0, access(1), None, HOUR);
        ready(&session, t0);
        assert_eq!(session.poll(t0 + 55 * MIN), SessionAction::Login);
    }

    #[test]
    fn a_new_login_replaces_both_tokens() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let t1 = t0 + 30 * MIN;
        session.handle_login(t1, access(2), None, HOUR);
        assert_eq!(ready(&session, t1).generation, 2);
        // The refresh token of the first login died with it.
        assert_eq!(session.poll(t1 + 55 * MIN), SessionAction::Login);
    }

    #[test]
    fn the_live_token_lasts_until_expiry_or_rejection() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        // Inside the refresh margin the token is no longer handed to calls, but it still works.
        let due = t0 + 56 * MIN;
        wants_refresh(&session, due);
        assert_eq!(session.live_token(due).map(|l| l.generation), Some(1));
        assert!(session.live_token(t0 + HOUR).is_none(), "expired");
        session.handle_rejected(1);
        assert!(session.live_token(t0).is_none(), "rejected");
        assert!(TokenSession::new(SessionConfig::default()).live_token(t0).is_none(), "no token");
    }

    #[test]
    fn refresh_failure_drops_the_refresh_token() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let t1 = t0 + 56 * MIN;
        wants_refresh(&session, t1);
        session.handle_refresh_failed();
        assert_eq!(session.poll(t1), SessionAction::Login);
        // The access token itself is untouched: it is still within its lifetime.
        assert_eq!(session.state(t1), SessionState::RefreshDue);
        session.handle_login(t1, access(2), Some(refresh(2)), HOUR);
        assert_eq!(ready(&session, t1).generation, 2);
    }

    #[test]
    fn refresh_failure_while_valid_still_serves_the_token() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        session.handle_refresh_failed();
        ready(&session, t0 + 10 * MIN);
        assert_eq!(session.poll(t0 + 55 * MIN), SessionAction::Login);
    }

    #[test]
    fn rejection_of_the_current_token_renews_it_once() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let t1 = t0 + 10 * MIN;
        let lease = ready(&session, t1);
        session.handle_rejected(lease.generation);
        assert_eq!(session.state(t1), SessionState::Rejected);
        wants_refresh(&session, t1);
        // Other calls rejected with the same token while the refresh is in flight renew the same way,
        // and the session still asks for exactly the one refresh.
        for _ in 0..19 {
            session.handle_rejected(lease.generation);
            wants_refresh(&session, t1);
            assert_eq!(session.generation(), 1);
        }
        session.handle_refresh(t1, access(2), Some(refresh(2)), HOUR);
        let renewed = ready(&session, t1);
        assert_eq!(renewed.generation, 2);
        // Late rejections of the old token no longer renew anything: the retry gets the current token.
        session.handle_rejected(lease.generation);
        assert_eq!(ready(&session, t1), renewed);
        assert_eq!(session.state(t1), SessionState::Valid);
    }

    #[test]
    fn rejection_without_a_refresh_token_asks_for_login() {
        let t0 = Instant::now();
        let mut session = TokenSession::new(SessionConfig::default());
        session.handle_login(t0, access(1), None, HOUR);
        session.handle_rejected(1);
        assert_eq!(session.state(t0), SessionState::Rejected);
        assert_eq!(session.poll(t0), SessionAction::Login);
    }

    #[test]
    fn rejection_with_an_expired_refresh_token_asks_for_login() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        session.handle_refresh(t0 + 23 * HOUR, access(2), None, HOUR);
        let t1 = t0 + 24 * HOUR + MIN;
        session.handle_rejected(2);
        assert_eq!(session.state(t1), SessionState::Rejected);
        assert_eq!(session.poll(t1), SessionAction::Login);
    }

    #[test]
    fn rejection_without_any_token_asks_for_login() {
        let t0 = Instant::now();
        let mut session = TokenSession::new(SessionConfig::default());
        session.handle_rejected(0);
        assert_eq!(session.state(t0), SessionState::NoToken);
        assert_eq!(session.poll(t0), SessionAction::Login);
    }

    #[test]
    fn a_second_rejection_after_renewal_does_not_loop() {
        // The caller retries at most once; the session itself never asks for more than one renewal per
        // rejected generation, so a server refusing every token costs one renewal per call.
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let first = ready(&session, t0);
        session.handle_rejected(first.generation);
        wants_refresh(&session, t0);
        session.handle_refresh(t0, access(2), Some(refresh(2)), HOUR);
        let second = ready(&session, t0);
        // The retry is rejected as well: the session marks the new token, the caller surfaces an error.
        session.handle_rejected(second.generation);
        assert_eq!(session.state(t0), SessionState::Rejected);
        // Asking about the same generation again changes nothing more.
        session.handle_rejected(second.generation);
        assert_eq!(session.state(t0), SessionState::Rejected);
        wants_refresh(&session, t0);
        assert_eq!(session.generation(), 2);
    }

    #[test]
    fn logout_forgets_tokens_but_not_the_generation() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        let old = ready(&session, t0);
        session.handle_logout();
        assert_eq!(session.poll(t0), SessionAction::Login);
        assert_eq!(session.state(t0), SessionState::NoToken);
        assert_eq!(session.generation(), 1);
        session.handle_login(t0, access(2), Some(refresh(2)), HOUR);
        assert_eq!(ready(&session, t0).generation, 2);
        // A lease from before the logout is old: its rejection leaves the new token in service.
        session.handle_rejected(old.generation);
        assert_eq!(session.state(t0), SessionState::Valid);
        assert_eq!(ready(&session, t0).generation, 2);
    }

    #[test]
    fn zero_expires_in_does_not_ask_for_an_endless_refresh() {
        let t0 = Instant::now();
        let mut session = logged_in(t0);
        session.handle_refresh(t0, access(2), Some(refresh(2)), Duration::ZERO);
        // The floor of 60 s applies and the margin shrinks to half of it.
        let lease = ready(&session, t0);
        assert_eq!(lease.generation, 2);
        ready(&session, t0 + secs(29));
        assert_eq!(session.state(t0 + secs(29)), SessionState::Valid);
        wants_refresh(&session, t0 + secs(30));
        assert_eq!(session.state(t0 + MIN - Duration::from_nanos(1)), SessionState::RefreshDue);
        assert_eq!(session.state(t0 + MIN), SessionState::Expired);

        // Without the floor a zero lifetime would be due the moment it arrives, which is what the
        // floor exists to prevent.
        let config = SessionConfig::default().with_min_token_lifetime(Duration::ZERO);
        let mut bare = TokenSession::new(config);
        bare.handle_login(t0, access(1), Some(refresh(1)), Duration::ZERO);
        assert_eq!(bare.state(t0), SessionState::Expired);
        wants_refresh(&bare, t0);
    }

    #[test]
    fn short_lifetime_caps_the_margin_to_half() {
        let t0 = Instant::now();
        let mut session = TokenSession::new(SessionConfig::default());
        // 4 minutes is shorter than the 5-minute margin: refresh after 2 minutes, not at once.
        session.handle_login(t0, access(1), Some(refresh(1)), 4 * MIN);
        ready(&session, t0);
        ready(&session, t0 + 2 * MIN - Duration::from_nanos(1));
        wants_refresh(&session, t0 + 2 * MIN);
        assert_eq!(session.state(t0 + 2 * MIN), SessionState::RefreshDue);
        assert_eq!(session.state(t0 + 4 * MIN), SessionState::Expired);

        // 10 minutes is exactly twice the margin: the full margin applies.
        session.handle_refresh(t0, access(2), None, 10 * MIN);
        ready(&session, t0 + 5 * MIN - Duration::from_nanos(1));
        wants_refresh(&session, t0 + 5 * MIN);
    }

    #[test]
    fn huge_lifetimes_never_expire_instead_of_overflowing() {
        let t0 = Instant::now();
        let config = SessionConfig::default().with_refresh_token_lifetime(Duration::MAX);
        let mut session = TokenSession::new(config);
        session.handle_login(t0, access(1), Some(refresh(1)), Duration::MAX);
        let far = t0 + 100_000 * HOUR;
        ready(&session, far);
        assert_eq!(session.state(far), SessionState::Valid);
        // The refresh token is still usable that far out too.
        session.handle_renewal_requested();
        wants_refresh(&session, far);
    }

    #[test]
    fn generation_grows_with_every_login_and_refresh() {
        let t0 = Instant::now();
        let mut session = TokenSession::new(SessionConfig::default());
        let mut seen = Vec::new();
        for n in 0..6_u32 {
            let now = t0 + n * MIN;
            if n % 2 == 0 {
                session.handle_login(now, access(n), Some(refresh(n)), HOUR);
            } else {
                session.handle_refresh(now, access(n), None, HOUR);
            }
            seen.push(ready(&session, now).generation);
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let t0 = Instant::now();
        let session = logged_in(t0);
        let lease = ready(&session, t0);
        let refresh_action = session.poll(t0 + 59 * MIN);
        for shown in
            [format!("{session:?}"), format!("{session:#?}"), format!("{lease:?}"), format!("{refresh_action:?}")]
        {
            assert!(!shown.contains("SENTINEL"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
    }

    #[test]
    fn a_requested_renewal_refreshes_or_logs_in() {
        let start = Instant::now();
        // No token: a login, and the request changes nothing.
        let mut session = TokenSession::new(SessionConfig::default());
        session.handle_renewal_requested();
        assert!(matches!(session.poll(start), SessionAction::Login));
        assert_eq!(session.state(start), SessionState::NoToken);

        // A valid pair: the refresh token is used, and the generation grows only when the new token arrives.
        session.handle_login(start, access(1), Some(refresh(1)), HOUR);
        assert!(matches!(session.poll(start), SessionAction::Ready(_)));
        session.handle_renewal_requested();
        match session.poll(start) {
            SessionAction::Refresh(token) => assert_eq!(token.expose_secret(), refresh(1).expose_secret()),
            other => panic!("expected a refresh, got {other:?}"),
        }
        assert_eq!(session.generation(), 1);
        session.handle_refresh(start, access(2), None, HOUR);
        assert_eq!(session.generation(), 2);
        assert!(matches!(session.poll(start), SessionAction::Ready(lease) if lease.generation == 2));
        // A rejection of a lease from before the renewal does not renew again.
        session.handle_rejected(1);
        assert!(matches!(session.poll(start), SessionAction::Ready(lease) if lease.generation == 2));
        assert_eq!(session.state(start), SessionState::Valid);

        // Without a refresh token: a login.
        let mut session = TokenSession::new(SessionConfig::default());
        session.handle_login(start, access(1), None, HOUR);
        session.handle_renewal_requested();
        assert!(matches!(session.poll(start), SessionAction::Login));
    }
}
