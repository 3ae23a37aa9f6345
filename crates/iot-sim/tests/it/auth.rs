//! Login, refresh, logout, token expiry and invalidation, and the rate limit.

use std::time::Duration;

use iot_model::{AccessToken, AppId, AppSecret, LogoutRequest, RefreshToken, RefreshTokenRequest};
use iot_proto::{Logout, QueryPackageList, RefreshAccessToken};
use iot_sim::sim::{AppConfig, SimConfig};

use crate::support::{Harness, code, raw_code};

#[test]
fn a_token_works_until_its_lifetime_ends() {
    let mut h = Harness::ready();
    assert!(h.call(&QueryPackageList::new()).is_ok());
    h.advance(3599);
    assert!(h.call(&QueryPackageList::new()).is_ok());
    h.advance(2);
    assert_eq!(code(h.call(&QueryPackageList::new())), "1010005");
    let err = h.call(&QueryPackageList::new()).unwrap_err();
    assert_eq!(err.api().unwrap().status, 403);
}

#[test]
fn the_token_lifetime_is_configurable() {
    let mut h = Harness::ready_with(SimConfig::default().with_token_lifetime(Duration::from_secs(60)));
    h.advance(59);
    assert!(h.call(&QueryPackageList::new()).is_ok());
    h.advance(1);
    assert_eq!(code(h.call(&QueryPackageList::new())), "1010005");
}

#[test]
fn a_second_login_invalidates_the_first_token() {
    let mut h = Harness::ready();
    let first = h.token.clone().unwrap();
    let second = h.login().unwrap();
    assert_ne!(first.expose_secret(), second.access_token.expose_secret());
    let app = h.app.clone();
    assert_eq!(code(h.call_as(&QueryPackageList::new(), Some((&app, &first)))), "1010005");
    assert!(h.call(&QueryPackageList::new()).is_ok());
}

#[test]
fn refresh_issues_new_tokens_and_retires_the_old_ones() {
    let mut h = Harness::new(SimConfig::default().with_rate_limit(None));
    let first = h.login().unwrap();
    let refresh = first.refresh_token.clone().unwrap();
    let req = |r: &RefreshToken, s: &str| {
        RefreshAccessToken::new(RefreshTokenRequest::new(AppId::new("sim-app").unwrap(), AppSecret::new(s), r.clone()))
    };
    h.advance(100);
    let second = h.call_as(&req(&refresh, "sim-secret"), None).unwrap();
    assert_eq!(second.expires_in, 3600);
    let app = h.app.clone();
    assert_eq!(code(h.call_as(&QueryPackageList::new(), Some((&app, &first.access_token)))), "1010005");
    assert!(h.call_as(&QueryPackageList::new(), Some((&app, &second.access_token))).is_ok());
    // The old refresh token was superseded; a wrong secret is refused before the token is looked at.
    assert_eq!(code(h.call_as(&req(&refresh, "sim-secret"), None)), "50400");
    let newer = second.refresh_token.clone().unwrap();
    assert_eq!(code(h.call_as(&req(&newer, "wrong"), None)), "100208");
    assert_eq!(code(h.call_as(&req(&RefreshToken::new("made-up"), "sim-secret"), None)), "50400");
    // Refresh tokens live a day.
    h.advance(86_400);
    assert_eq!(code(h.call_as(&req(&newer, "sim-secret"), None)), "50400");
}

#[test]
fn login_failures_answer_the_platform_codes() {
    let config =
        SimConfig::default().with_app(AppConfig::new(AppId::new("frozen-app").unwrap(), AppSecret::new("pw")).frozen());
    let mut h = Harness::new(config);
    h.secret = AppSecret::new("wrong");
    let err = h.login().unwrap_err();
    assert_eq!(err.api().unwrap().status, 401);
    assert_eq!(code::<()>(Err(err)), "100208");
    h.app = AppId::new("nobody").unwrap();
    assert_eq!(code(h.login()), "100208");
    h.app = AppId::new("frozen-app").unwrap();
    h.secret = AppSecret::new("pw");
    assert_eq!(code(h.login()), "100247");
    // The client side refuses to build an empty secret, so this request is written by hand.
    let req = http::Request::builder()
        .method("POST")
        .uri("http://sim.test/iocm/app/sec/v1.1.0/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"appId=sim-app&secret=".to_vec())
        .unwrap();
    assert_eq!(raw_code(&h.raw(req)), (400, "102202".to_owned()));
}

#[test]
fn calls_without_valid_credentials_are_refused() {
    let mut h = Harness::ready();
    let token = h.token.clone().unwrap();
    let other = AppId::new("someone-else").unwrap();
    assert_eq!(code(h.call_as(&QueryPackageList::new(), Some((&other, &token)))), "1010005");
    let app = h.app.clone();
    assert_eq!(code(h.call_as(&QueryPackageList::new(), Some((&app, &AccessToken::new("forged"))))), "1010005");
    // No headers at all.
    let req = http::Request::builder().uri("http://sim.test/iodm/northbound/v1.5.0/category").body(Vec::new()).unwrap();
    assert_eq!(raw_code(&h.raw(req)), (403, "1010005".to_owned()));
}

#[test]
fn logout_revokes_the_access_token_but_not_the_refresh_token() {
    let mut h = Harness::new(SimConfig::default().with_rate_limit(None));
    let t = h.login().unwrap();
    h.call(&Logout::new(LogoutRequest::new(t.access_token.clone()))).unwrap();
    assert_eq!(code(h.call(&QueryPackageList::new())), "1010005");
    let refresh = RefreshAccessToken::new(RefreshTokenRequest::new(
        h.app.clone(),
        h.secret.clone(),
        t.refresh_token.clone().unwrap(),
    ));
    let renewed = h.call_as(&refresh, None).unwrap();
    h.token = Some(renewed.access_token);
    assert!(h.call(&QueryPackageList::new()).is_ok());
}

#[test]
fn the_rate_limit_refuses_call_101_and_recovers_after_the_window() {
    let second = AppConfig::new(AppId::new("second-app").unwrap(), AppSecret::new("pw2"));
    let mut h = Harness::new(SimConfig::default().with_app(second));
    // The login is call 1: logins count against the app they name.
    h.login().unwrap();
    for i in 2..=100 {
        assert!(h.call(&QueryPackageList::new()).is_ok(), "call {i}");
    }
    let err = h.call(&QueryPackageList::new()).unwrap_err();
    assert_eq!(err.api().unwrap().status, 403);
    assert!(err.api().unwrap().is_throttled());
    assert_eq!(code::<()>(Err(err)), "1010009");
    // A login does not escape the limit.
    assert_eq!(code(h.login()), "1010009");
    // Another app has its own budget.
    let mut other = Harness { app: AppId::new("second-app").unwrap(), secret: AppSecret::new("pw2"), ..h };
    other.login().unwrap();
    assert!(other.call(&QueryPackageList::new()).is_ok());
    let mut h = Harness { app: AppId::new("sim-app").unwrap(), secret: AppSecret::new("sim-secret"), ..other };
    h.token = None;
    // Refused calls are not recorded, so the window empties 60 s after the admitted calls.
    h.advance(59);
    assert_eq!(code(h.login()), "1010009");
    h.advance(1);
    h.login().unwrap();
    assert!(h.call(&QueryPackageList::new()).is_ok());
}

#[test]
fn the_rate_limit_can_be_changed_or_switched_off() {
    let mut h = Harness::ready_with(SimConfig::default().with_rate_limit(Some((3, Duration::from_secs(10)))));
    assert!(h.call(&QueryPackageList::new()).is_ok());
    assert!(h.call(&QueryPackageList::new()).is_ok());
    assert_eq!(code(h.call(&QueryPackageList::new())), "1010009");
    h.advance(10);
    assert!(h.call(&QueryPackageList::new()).is_ok());

    let mut h = Harness::ready();
    for _ in 0..500 {
        assert!(h.call(&QueryPackageList::new()).is_ok());
    }
}
