//! Secret redaction: request types, built requests and errors never show an app secret or a token.

use iot_model::{AccessToken, AppId, AppSecret, LoginForm, LogoutRequest, RefreshToken, RefreshTokenRequest};
use iot_proto::*;

use crate::support::{base, response};

/// A value no test data contains by chance.
const SENTINEL: &str = "SeNtInEl-7f3a9c";

/// Fails if any rendering contains the sentinel.
fn assert_hidden(what: &str, shown: &[String]) {
    for s in shown {
        assert!(!s.contains(SENTINEL), "{what} shows the secret: {s}");
    }
}

fn debug_and_display(e: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![format!("{e:?}"), format!("{e:#?}"), e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

fn app() -> AppId {
    AppId::new("app-1").unwrap()
}

#[test]
fn request_types_holding_secrets_do_not_print_them() {
    let login = Login::new(LoginForm::new(app(), AppSecret::new(SENTINEL)));
    let refresh =
        RefreshAccessToken::new(RefreshTokenRequest::new(app(), AppSecret::new(SENTINEL), RefreshToken::new(SENTINEL)));
    let logout = Logout::new(LogoutRequest::new(AccessToken::new(SENTINEL)));
    assert_hidden("Login", &[format!("{login:?}"), format!("{login:#?}")]);
    assert_hidden("RefreshAccessToken", &[format!("{refresh:?}"), format!("{refresh:#?}")]);
    assert_hidden("Logout", &[format!("{logout:?}"), format!("{logout:#?}")]);
    // The redaction must not hide the rest of the value.
    assert!(format!("{login:?}").contains("app-1"));
    assert!(format!("{login:?}").contains("[redacted]"));
    let token =
        iot_model::AuthToken::new(3600, AccessToken::new(SENTINEL)).with_refresh_token(RefreshToken::new(SENTINEL));
    assert_hidden("AuthToken", &[format!("{token:?}"), format!("{token:#?}")]);
}

#[test]
fn built_requests_keep_credentials_out_of_debug() {
    let app = app();
    let token = AccessToken::new(SENTINEL);
    let auth = BearerAuth { app_id: &app, token: &token };
    assert_hidden("BearerAuth", &[format!("{auth:?}")]);
    let query = QueryUpgradeTaskList::new().try_into_http_request(&base(), Some(auth)).unwrap();
    let logout =
        Logout::new(LogoutRequest::new(AccessToken::new(SENTINEL))).try_into_http_request(&base(), Some(auth)).unwrap();
    let login =
        Login::new(LoginForm::new(app.clone(), AppSecret::new(SENTINEL))).try_into_http_request(&base(), None).unwrap();
    for (name, req) in [("query", &query), ("logout", &logout), ("login", &login)] {
        assert_hidden(name, &[format!("{:?}", req.headers()), format!("{req:?}"), format!("{req:#?}")]);
    }
    // The credentials are there, only hidden: both headers are marked sensitive.
    for name in [APP_KEY, "authorization"] {
        assert!(query.headers()[name].is_sensitive(), "{name}");
    }
    assert_eq!(query.headers()["authorization"].to_str().unwrap(), format!("Bearer {SENTINEL}"));
}

#[test]
fn build_errors_do_not_echo_credentials() {
    let app = app();
    // A token that cannot be a header value is refused without being quoted.
    let bad_token = AccessToken::new(format!("{SENTINEL}\n"));
    let err = QueryUpgradeTaskList::new()
        .try_into_http_request(&base(), Some(BearerAuth { app_id: &app, token: &bad_token }))
        .unwrap_err();
    assert!(matches!(err, IntoHttpError::Invalid(_)), "{err:?}");
    assert_hidden("header error", &debug_and_display(&err));
    // A secret over the length limit is refused without being quoted.
    let err = Login::new(LoginForm::new(app, AppSecret::new(SENTINEL.repeat(30))))
        .try_into_http_request(&base(), None)
        .unwrap_err();
    assert!(matches!(&err, IntoHttpError::Invalid(v) if v.field == "secret"), "{err:?}");
    assert_hidden("length error", &debug_and_display(&err));
}

#[test]
fn server_rejections_do_not_echo_secrets() {
    let bodies: [(&str, &[u8]); 3] = [
        ("/iocm/app/sec/v1.1.0/login", b"appId=..&secret=SeNtInEl-7f3a9c"),
        ("/iocm/app/sec/v1.1.0/refreshToken", br#"{"appId":"a","secret":"SeNtInEl-7f3a9c","refreshToken":7}"#),
        (
            "/iocm/app/sec/v1.1.0/refreshToken",
            br#"{"appId":"","secret":"SeNtInEl-7f3a9c","refreshToken":"SeNtInEl-7f3a9c"}"#,
        ),
    ];
    for (path, body) in bodies {
        let req = http::Request::post(format!("https://h{path}")).body(body.to_vec()).unwrap();
        let err = if path.ends_with("login") {
            Login::try_from_http_request(&req).unwrap_err()
        } else {
            RefreshAccessToken::try_from_http_request(&req).unwrap_err()
        };
        assert_hidden(path, &[format!("{err:?}"), err.to_string()]);
        let answer = server::error_response(&err);
        assert_hidden(path, &[String::from_utf8_lossy(answer.body()).into_owned()]);
    }
}

#[test]
fn platform_errors_on_token_calls_do_not_carry_tokens() {
    // A token answer that fails to decode must not put the tokens it holds into the error's excerpt.
    let body = format!(r#"{{"accessToken":"{SENTINEL}","refreshToken":"{SENTINEL}","expiresIn":"soon"}}"#);
    let err = Login::try_from_http_response(&response(200, body.clone())).unwrap_err();
    assert!(matches!(&err, FromHttpResponseError::Decode(d) if d.path == "expiresIn"), "{err:?}");
    assert_hidden("login decode error", &debug_and_display(&err));
    let err = RefreshAccessToken::try_from_http_response(&response(200, body)).unwrap_err();
    assert_hidden("refresh decode error", &debug_and_display(&err));
    // An error answer to a login says why without quoting what was sent.
    let err = Login::try_from_http_response(&response(
        401,
        r#"{"error_code":"100208","error_desc":"appId or secret is wrong"}"#,
    ))
    .unwrap_err();
    assert_eq!(err.api().and_then(|a| a.code.clone()), Some(ErrorCode::BadCredentials));
    assert_hidden("login error", &debug_and_display(&err));
}
