//! Applications: their tokens (one live access token and refresh token each) and their call rate.
//!
//! Tokens are HMAC-SHA256 tags keyed by the app's secret over the seed, the app id, a per-app counter and the
//! token's kind. Everything else the simulator draws follows from the seed alone, and the default seed is
//! public; a token drawn from the seed could be computed by anyone who knows it, without the secret. Keyed by
//! the secret, the same seed and secret still give the same tokens (tests stay deterministic), while a caller
//! without the secret cannot predict one.

use std::collections::VecDeque;

use iot_model::{AccessToken, AuthToken, RefreshToken};
use ring::hmac;

use super::{AppConfig, Ms};

/// Separates the simulator's token derivation from any other use of the same key.
const TOKEN_CONTEXT: &[u8] = b"iot-sim token v1";

/// Bytes of the tag a token keeps: 128 bits, written as 32 hexadecimal digits.
const TOKEN_BYTES: usize = 16;

/// Which token a derivation is for, so an access token never equals a refresh token.
#[derive(Clone, Copy)]
enum Kind {
    Access = 1,
    Refresh = 2,
}

/// A token and the moment it stops being accepted.
#[derive(Clone)]
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
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) config: AppConfig,
    access: Option<Issued>,
    refresh: Option<Issued>,
    /// Times of the calls admitted inside the current rate-limit window, oldest first.
    calls: VecDeque<Ms>,
    /// How many times tokens were issued; part of each token's derivation, so every issue differs.
    issues: u64,
}

impl AppState {
    pub(crate) fn new(config: AppConfig) -> Self {
        Self { config, access: None, refresh: None, calls: VecDeque::new(), issues: 0 }
    }

    /// A token: the HMAC-SHA256 of the seed, app id, issue counter and kind under the app's secret, in hex.
    fn derive(&self, seed: u64, kind: Kind) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.config.secret.expose_secret().as_bytes());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(TOKEN_CONTEXT);
        ctx.update(&seed.to_be_bytes());
        let app = self.config.app_id.as_str().as_bytes();
        // Length-prefixed, so no two (app id, counter) pairs give the same message.
        ctx.update(&(app.len() as u64).to_be_bytes());
        ctx.update(app);
        ctx.update(&self.issues.to_be_bytes());
        ctx.update(&[kind as u8]);
        let tag = ctx.sign();
        tag.as_ref().iter().take(TOKEN_BYTES).map(|b| format!("{b:02x}")).collect()
    }

    /// Issues a fresh access token and refresh token; the previous ones stop working, as on the platform.
    pub(crate) fn issue(&mut self, seed: u64, now: Ms, access_life: Ms, refresh_life: Ms) -> AuthToken {
        self.issues += 1;
        let access = self.derive(seed, Kind::Access);
        let refresh = self.derive(seed, Kind::Refresh);
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
        let first = a.issue(1, 0, 3_600_000, 86_400_000);
        assert_eq!(first.expires_in, 3600);
        let t1 = first.access_token.expose_secret().to_owned();
        assert!(a.access_ok(&t1, 3_599_999));
        assert!(!a.access_ok(&t1, 3_600_000), "expired at the end of its lifetime");
        let second = a.issue(1, 10, 3_600_000, 86_400_000);
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
    fn tokens_follow_from_the_secret_as_well_as_the_seed() {
        let with_secret = |secret: &str| {
            let Ok(id) = AppId::new("a") else { unreachable!("a valid id") };
            AppState::new(AppConfig::new(id, AppSecret::new(secret)))
        };
        let tokens = |mut a: AppState, seed: u64| {
            let t = a.issue(seed, 0, 1, 1);
            let refresh = t.refresh_token.as_ref().map(|r| r.expose_secret().to_owned()).unwrap_or_default();
            (t.access_token.expose_secret().to_owned(), refresh)
        };
        let (access, refresh) = tokens(with_secret("s"), 7);
        assert_eq!(access.len(), 32);
        assert!(access.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(access, refresh);
        assert_eq!(tokens(with_secret("s"), 7), (access.clone(), refresh), "same seed and secret, same tokens");
        assert_ne!(tokens(with_secret("t"), 7).0, access, "another secret, another token");
        assert_ne!(tokens(with_secret("s"), 8).0, access, "another seed, another token");
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
