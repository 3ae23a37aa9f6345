//! A harness that drives the simulator core on a virtual clock with requests built by iot-proto's client side.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iot_model::{AccessToken, AppId, AppSecret, AuthToken, LoginForm};
use iot_proto::{APP_KEY, BaseUrl, BearerAuth, Endpoint, FromHttpResponseError, Login};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};

/// Simulated start of every test: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000;

/// The simulator, a virtual clock and the default app's current token.
pub struct Harness {
    pub sim: Simulator,
    pub base: BaseUrl,
    /// Seconds since [`T0`].
    pub offset: u64,
    pub app: AppId,
    pub secret: AppSecret,
    pub token: Option<AccessToken>,
}

impl Harness {
    /// A simulator from `config`, not logged in, at T0.
    pub fn new(config: SimConfig) -> Self {
        Self {
            sim: Simulator::new(config),
            base: BaseUrl::parse("http://sim.test").unwrap(),
            offset: 0,
            app: AppId::new(DEFAULT_APP_ID).unwrap(),
            secret: AppSecret::new(DEFAULT_SECRET),
            token: None,
        }
    }

    /// The default simulator without a rate limit, logged in.
    pub fn ready() -> Self {
        Self::ready_with(SimConfig::default().with_rate_limit(None))
    }

    /// A simulator from `config`, logged in as the default app.
    pub fn ready_with(config: SimConfig) -> Self {
        let mut h = Self::new(config);
        h.login().unwrap();
        h
    }

    /// The simulated time now.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + self.offset)
    }

    /// Moves the virtual clock forward.
    pub fn advance(&mut self, secs: u64) {
        self.offset += secs;
    }

    /// Sends a raw request at the current time.
    pub fn raw(&mut self, req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let now = self.now();
        self.sim.handle(now, req)
    }

    /// Logs in as the harness's app and keeps the token.
    pub fn login(&mut self) -> Result<AuthToken, FromHttpResponseError> {
        let ep = Login::new(LoginForm::new(self.app.clone(), self.secret.clone()));
        let token = self.call_as(&ep, None)?;
        self.token = Some(token.access_token.clone());
        Ok(token)
    }

    /// Calls an endpoint with the kept token.
    pub fn call<E: Endpoint>(&mut self, ep: &E) -> Result<E::Response, FromHttpResponseError> {
        let token = self.token.clone().unwrap_or_else(|| AccessToken::new("none"));
        let app = self.app.clone();
        self.call_as(ep, Some((&app, &token)))
    }

    /// Calls an endpoint with the given credentials.
    pub fn call_as<E: Endpoint>(
        &mut self,
        ep: &E,
        auth: Option<(&AppId, &AccessToken)>,
    ) -> Result<E::Response, FromHttpResponseError> {
        // The harness only sends requests the client side can build; a build failure is a broken test.
        let req = ep
            .try_into_http_request(&self.base, auth.map(|(app_id, token)| BearerAuth { app_id, token }))
            .expect("the request builds");
        let resp = self.raw(req);
        E::try_from_http_response(&resp)
    }

    /// A raw request with the kept credentials, for bodies the client side would refuse to build.
    pub fn raw_authed(&mut self, method: &str, path_and_query: &str, body: &str) -> http::Response<Vec<u8>> {
        let token = self.token.as_ref().map(|t| t.expose_secret().to_owned()).unwrap_or_default();
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.base))
            .header(APP_KEY, self.app.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap();
        self.raw(req)
    }
}

/// The platform error code of a failed call.
pub fn code<T: std::fmt::Debug>(r: Result<T, FromHttpResponseError>) -> String {
    match r {
        Err(e) => {
            e.api().and_then(|a| a.code.as_ref()).map(|c| c.as_str().to_owned()).unwrap_or_else(|| format!("{e:?}"))
        }
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The status and error code of a raw answer.
pub fn raw_code(resp: &http::Response<Vec<u8>>) -> (u16, String) {
    let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap_or_default();
    (resp.status().as_u16(), v["error_code"].as_str().unwrap_or_default().to_owned())
}
