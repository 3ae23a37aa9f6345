//! Applications: their tokens (one live access token and refresh token each) and their call rate.

use std::collections::VecDeque;

use iot_model::{AccessToken, AuthToken, RefreshToken};

use super::rng::Rng;
use super::{AppConfig, Ms};

/// A token and the moment it stops being accepted.
struct Issued {
    value: String,
    expires: Ms,
}

impl Issued {
    fn accepts(&self, value: &str, now: Ms) -> bool {
        self.value == value && now < self.expires
    }
}

/// One application's live state.
pub(crate) struct AppState {
    pub(crate) config: AppConfig,
    access: Option<Issued>,
    refresh: Option<Issued>,
    /// Times of the calls admitted inside the current rate-limit window, oldest first.
    calls: VecDeque<Ms>,
}

impl AppState {
    pub(crate) fn new(config: AppConfig) -> Self {
        Self { config, access: None, refresh: None, calls: VecDeque::new() }
    }

    /// Issues a fresh access token and refresh token; the previous ones stop working, as on the platform.
    pub(crate) fn issue(&mut self, ids: &mut Rng, now: Ms, access_life: Ms, refresh_life: Ms) -> AuthToken {
        let access = ids.hex(32);
        let refresh = ids.hex(32);
        self.access = Some(Issued { value: access.clone(), expires: now.saturating_add(access_life) });
        self.refresh = Some(Issued { value: refresh.clone(), expires: now.saturating_add(refresh_life) });
        let expires_in = u64::try_from(access_life / 1000).unwrap_or(0);
        AuthToken::new(expires_in, AccessToken::new(access))
            .with_scope("default".to_owned())
            .with_token_type("bearer".to_owned())
            .with_refresh_token(RefreshToken::new(refresh))
    }

    /// Whether `token` is this app's current, unexpired access token.
    pub(crate) fn access_ok(&self, token: &str, now: Ms) -> bool {
        self.access.as_ref().is_some_and(|t| t.accepts(token, now))
    }

    /// Whether `token` is this app's current, unexpired refresh token.
    pub(crate) fn refresh_ok(&self, token: &str, now: Ms) -> bool {
        self.refresh.as_ref().is_some_and(|t| t.accepts(token, now))
    }

    /// Revokes the access token if it is the current one; the refresh token stays usable.
    pub(crate) fn revoke_access(&mut self, token: &str) {
        if self.access.as_ref().is_some_and(|t| t.value == token) {
            self.access = None;
        }
    }

    /// Admits a call under a sliding-window limit of `calls` per `window`; refused calls are not recorded, so
    /// a client that backs off recovers once its old calls leave the window.
    pub(crate) fn admit(&mut self, now: Ms, limit: Option<(u32, Ms)>) -> bool {
        let Some((max, window)) = limit else { return true };
        while self.calls.front().is_some_and(|t| *t <= now.saturating_sub(window)) {
            self.calls.pop_front();
        }
        if self.calls.len() >= max as usize {
            return false;
        }
        self.calls.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use iot_model::{AppId, AppSecret};

    use super::*;

    fn app() -> AppState {
        let Ok(id) = AppId::new("a") else { unreachable!("a valid id") };
        AppState::new(AppConfig::new(id, AppSecret::new("s")))
    }

    #[test]
    fn a_new_issue_replaces_the_old_tokens() {
        let mut a = app();
        let mut ids = Rng::new(1);
        let first = a.issue(&mut ids, 0, 3_600_000, 86_400_000);
        assert_eq!(first.expires_in, 3600);
        let t1 = first.access_token.expose_secret().to_owned();
        assert!(a.access_ok(&t1, 3_599_999));
        assert!(!a.access_ok(&t1, 3_600_000), "expired at the end of its lifetime");
        let second = a.issue(&mut ids, 10, 3_600_000, 86_400_000);
        assert!(!a.access_ok(&t1, 20));
        assert!(a.access_ok(second.access_token.expose_secret(), 20));
        let r2 = second.refresh_token.as_ref().map(|r| r.expose_secret().to_owned()).unwrap_or_default();
        assert!(a.refresh_ok(&r2, 86_400_009));
        assert!(!a.refresh_ok(&r2, 86_400_010));
        a.revoke_access(second.access_token.expose_secret());
        assert!(!a.access_ok(second.access_token.expose_secret(), 20));
        assert!(a.refresh_ok(&r2, 20));
    }

    #[test]
    fn the_window_slides() {
        let mut a = app();
        let limit = Some((3, 60_000));
        assert!(a.admit(0, limit) && a.admit(1, limit) && a.admit(2, limit));
        assert!(!a.admit(59_999, limit));
        assert!(a.admit(60_000, limit), "the call at 0 left the window");
        assert!(!a.admit(60_000, limit));
        assert!(a.admit(60_001, limit));
        assert!((0..1000).all(|i| a.admit(i, None)));
    }
}
