//! The client: drives iot-proto's token session, retry policy and pager over the transport.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use iot_model::{AppId, AppSecret, AuthToken, LoginForm, LogoutRequest, RefreshTokenRequest};
use iot_proto::retry::{RetryCall, RetryDecision, RetryPolicy, RetryQuota, Signal, SplitMix64, TransportFailure};
use iot_proto::session::{SessionAction, SessionConfig, SessionState, TokenLease, TokenSession};
use iot_proto::{BaseUrl, BearerAuth, Endpoint, Login, Logout, RefreshAccessToken};

use crate::error::Error;
use crate::transport::{TimeoutPhase, Transport, TransportConfig, TransportError};

/// Waits for a duration; injectable so tests can record the delays instead of sleeping.
pub trait Sleeper: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The default sleeper: `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Everything a [`Client`] needs. Build it with [`ClientConfig::new`] and the `with_*` methods.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The platform, for example `https://iot.example.com:8743`.
    pub base_url: BaseUrl,
    /// The application's id, sent as `app_key`.
    pub app_id: AppId,
    /// The application's secret, used only for login and refresh.
    pub secret: AppSecret,
    /// Timeouts, body limit and TLS.
    pub transport: TransportConfig,
    /// When to refresh the token.
    pub session: SessionConfig,
    /// Retries of failed attempts.
    pub retry: RetryPolicy,
    /// Capacity of the retry quota shared by all clones (0 disables the quota).
    pub retry_quota: u32,
    /// A deadline for a whole call, retries and waits included (default 120 s).
    pub call_timeout: Duration,
    /// Most pages one paged walk fetches; a guard against a server that never stops (default 100 000).
    pub max_pages: u32,
    /// Waits between retries.
    pub sleeper: Arc<dyn Sleeper>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("secret", &self.secret)
            .field("transport", &self.transport)
            .field("retry", &self.retry)
            .field("call_timeout", &self.call_timeout)
            .field("max_pages", &self.max_pages)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with finite default timeouts, the platform's public roots, retries on, and the
    /// retry quota on.
    pub fn new(base_url: BaseUrl, app_id: AppId, secret: AppSecret) -> Self {
        Self {
            base_url,
            app_id,
            secret,
            transport: TransportConfig::default(),
            session: SessionConfig::default(),
            retry: RetryPolicy::default(),
            retry_quota: RetryQuota::default().capacity(),
            call_timeout: Duration::from_secs(120),
            max_pages: 100_000,
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// Sets the transport settings (timeouts, body limit, TLS).
    pub fn with_transport(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the retry policy ([`RetryPolicy::disabled`] turns retries off).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the token session settings.
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets the deadline of a whole call.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the page guard of paged walks.
    pub fn with_max_pages(mut self, max_pages: u32) -> Self {
        self.max_pages = max_pages;
        self
    }

    /// Sets the sleeper used between retries.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }
}

struct Inner {
    config: ClientConfig,
    transport: Transport,
    // An async mutex held across the login or refresh exchange: concurrent calls wait for one renewal
    // instead of each logging in (a login invalidates the tokens issued before it).
    session: tokio::sync::Mutex<TokenSession>,
    quota: Mutex<RetryQuota>,
    rng: Mutex<SplitMix64>,
}

/// A client of the northbound API. Cheap to clone; clones share the connection pool, the token session and
/// the retry quota. Every future it returns is `Send`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use iot_hyper::{Client, ClientConfig};
/// use iot_model::{AppId, AppSecret};
/// use iot_proto::{BaseUrl, QueryUpgradeTaskList};
///
/// let config = ClientConfig::new(
///     BaseUrl::parse("https://iot.example.com:8743")?,
///     AppId::new("my-app")?,
///     AppSecret::new(std::env::var("IOT_SECRET")?),
/// );
/// let client = Client::new(config)?;
/// let page = client.query_upgrade_task_list(&QueryUpgradeTaskList::new().with_page_size(100)).await?;
/// println!("{} tasks", page.total_count.unwrap_or(0));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// What one attempt's failure asks the call loop to do.
enum Outcome {
    Renew(Error),
    Fail(Error),
}

impl Client {
    /// Builds a client; fails only when the TLS settings are unusable. No connection is opened yet.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let transport = Transport::new(config.transport.clone()).map_err(Error::Config)?;
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Ok(Self {
            inner: Arc::new(Inner {
                session: tokio::sync::Mutex::new(TokenSession::new(config.session)),
                quota: Mutex::new(RetryQuota::new(config.retry_quota)),
                rng: Mutex::new(SplitMix64::new(seed)),
                transport,
                config,
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends any endpoint's request: logs in or refreshes first when needed, retries what the policy allows,
    /// renews a rejected token once, and returns the typed answer.
    ///
    /// A call that is not idempotent (a create) is resent only when its request never reached the platform or
    /// the platform proved that it refused it (throttling code `1010009`, or a rejected token, renewed once).
    /// When it fails after the platform may have acted, the error is [`Error::OutcomeUnknown`].
    pub async fn send<E: Endpoint + Sync>(&self, request: &E) -> Result<E::Response, Error>
    where
        E::Response: Send,
    {
        let deadline = self.inner.config.call_timeout;
        // Set while an attempt whose effect on the platform is unknown is in flight or was the last one; it
        // lives outside the deadline so that a deadline firing mid-attempt still knows.
        let in_doubt = AtomicBool::new(false);
        let result = match tokio::time::timeout(deadline, self.send_inner(request, &in_doubt)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(None)),
        };
        result.map_err(|e| e.settle(E::META.name, E::META.idempotent, in_doubt.load(Ordering::Acquire)))
    }

    async fn send_inner<E: Endpoint + Sync>(&self, request: &E, in_doubt: &AtomicBool) -> Result<E::Response, Error>
    where
        E::Response: Send,
    {
        let mut call = RetryCall::new(self.inner.config.retry, E::META.idempotent);
        if !E::META.auth {
            return self.with_retries(request, &mut call, None, Some(in_doubt)).await.map_err(Outcome::into_error);
        }
        let mut lease = self.lease().await?;
        loop {
            match self.with_retries(request, &mut call, Some(&lease), Some(in_doubt)).await {
                Ok(answer) => return Ok(answer),
                Err(Outcome::Fail(e)) => return Err(e),
                Err(Outcome::Renew(_)) => {
                    // The session decides whether to renew (the rejected token is current) or simply to use
                    // the newer token another call already fetched; either way this call retries once, which
                    // the retry bookkeeping enforces.
                    self.inner.session.lock().await.handle_rejected(lease.generation);
                    lease = self.lease().await?;
                }
            }
        }
    }

    /// Runs attempts until success, a renewal request, or the policy gives up.
    ///
    /// `in_doubt`, when given, is set before each attempt goes out and afterwards tells whether the failed
    /// attempt may have been acted on.
    async fn with_retries<E: Endpoint + Sync>(
        &self,
        request: &E,
        call: &mut RetryCall,
        lease: Option<&TokenLease>,
        in_doubt: Option<&AtomicBool>,
    ) -> Result<E::Response, Outcome> {
        let config = &self.inner.config;
        loop {
            let auth = lease.map(|l| BearerAuth { app_id: &config.app_id, token: &l.token });
            let http_request = request
                .try_into_http_request(&config.base_url, auth)
                .map_err(|e| Outcome::Fail(Error::from_build(e)))?;
            if let Some(flag) = in_doubt {
                flag.store(true, Ordering::Release);
            }
            let (error, decision) = match self.inner.transport.send(http_request).await {
                Ok(response) => match E::try_from_http_response(&response) {
                    Ok(answer) => {
                        let mut quota = self.inner.quota.lock().unwrap_or_else(PoisonError::into_inner);
                        let quota = (config.retry_quota > 0).then_some(&mut *quota);
                        std::mem::replace(call, RetryCall::new(config.retry, E::META.idempotent)).on_success(quota);
                        return Ok(answer);
                    }
                    Err(e) => {
                        let retry_after = response
                            .headers()
                            .get(http::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| iot_proto::retry::parse_retry_after(v, SystemTime::now()));
                        let status = response.status().as_u16();
                        let error = Error::from_answer(e);
                        let decision = match &error {
                            Error::Api(api) => {
                                let code = api.code.as_ref().map(|c| c.as_str().to_owned());
                                let signal = Signal::Response { status, error_code: code.as_deref(), retry_after };
                                self.decide(call, &signal)
                            }
                            _ => self.decide(call, &Signal::Decode),
                        };
                        (error, decision)
                    }
                },
                Err(transport) => {
                    let decision = match failure_kind(&transport) {
                        Some(kind) => self.decide(call, &Signal::Transport(kind)),
                        // TLS, oversized bodies and malformed requests do not heal by retrying.
                        None => RetryDecision::GiveUp(iot_proto::retry::GiveUpReason::Permanent),
                    };
                    (Error::from_transport(transport), decision)
                }
            };
            if let Some(flag) = in_doubt {
                flag.store(error.platform_may_have_acted(), Ordering::Release);
            }
            match decision {
                RetryDecision::RetryAfter(delay) => config.sleeper.sleep(delay).await,
                RetryDecision::RenewTokenAndRetry if lease.is_some() => return Err(Outcome::Renew(error)),
                _ => return Err(Outcome::Fail(error)),
            }
        }
    }

    fn decide(&self, call: &mut RetryCall, signal: &Signal<'_>) -> RetryDecision {
        let config = &self.inner.config;
        let mut rng = self.inner.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let mut quota = self.inner.quota.lock().unwrap_or_else(PoisonError::into_inner);
        let quota = (config.retry_quota > 0).then_some(&mut *quota);
        call.on_failure(signal, quota, &mut *rng)
    }

    /// A token to use now: logs in or refreshes first if the session says so. One renewal at a time.
    async fn lease(&self) -> Result<TokenLease, Error> {
        let mut session = self.inner.session.lock().await;
        self.lease_locked(&mut session).await
    }

    /// Does what the session asks until it hands out a token; the caller holds the session lock.
    async fn lease_locked(&self, session: &mut TokenSession) -> Result<TokenLease, Error> {
        // At most: a refresh that fails, then a login. A third round would mean the platform hands out
        // tokens the session cannot use, which must not loop.
        for _ in 0..3 {
            match session.poll(Instant::now()) {
                SessionAction::Ready(lease) => return Ok(lease),
                SessionAction::Login => {
                    let token = self.exchange_login().await?;
                    install(session, token, false);
                }
                SessionAction::Refresh(refresh_token) => {
                    let request = RefreshAccessToken::new(RefreshTokenRequest::new(
                        self.inner.config.app_id.clone(),
                        self.inner.config.secret.clone(),
                        refresh_token,
                    ));
                    match self.unauthenticated(&request).await {
                        Ok(token) => install(session, token, true),
                        // The platform refused the refresh token (expired, or invalidated by another login):
                        // fall back to a login on the next round. Throttling and server failures are not a
                        // verdict on the token, and a login would invalidate tokens other calls still use.
                        Err(Error::Api(api)) if !api.is_throttled() && !api.is_server_error() => {
                            session.handle_refresh_failed()
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        match session.poll(Instant::now()) {
            SessionAction::Ready(lease) => Ok(lease),
            _ => Err(Error::Invalid(iot_proto::ValidationError::new(
                "session",
                "the platform issued a token that expires at once",
                None,
            ))),
        }
    }

    async fn exchange_login(&self) -> Result<AuthToken, Error> {
        let config = &self.inner.config;
        self.unauthenticated(&Login::new(LoginForm::new(config.app_id.clone(), config.secret.clone()))).await
    }

    async fn unauthenticated<E: Endpoint + Sync>(&self, request: &E) -> Result<E::Response, Error> {
        let mut call = RetryCall::new(self.inner.config.retry, E::META.idempotent);
        self.with_retries(request, &mut call, None, None).await.map_err(Outcome::into_error)
    }

    /// Logs in now, replacing the current tokens (other calls wait for it). Calls log in by themselves when
    /// needed, so this is only for checking credentials early.
    pub async fn login(&self) -> Result<(), Error> {
        let mut session = self.inner.session.lock().await;
        let token = self.exchange_login().await?;
        install(&mut session, token, false);
        Ok(())
    }

    /// Renews the access token now: refreshes it with the refresh token, or logs in when there is no usable
    /// refresh token (or no token yet), falling back to a login when the platform refuses the refresh token.
    ///
    /// The renewal runs under the session lock, so calls made meanwhile wait for it and then use the new token
    /// instead of renewing again. Calls renew by themselves when the token is due or rejected; this is for
    /// applications that know better, for example after tokens were invalidated by a login elsewhere.
    pub async fn renew_token(&self) -> Result<(), Error> {
        let mut session = self.inner.session.lock().await;
        session.handle_renewal_requested();
        self.lease_locked(&mut session).await.map(|_| ())
    }

    /// Revokes the current access token on the platform and forgets both tokens. Does nothing if the client
    /// holds no token.
    pub async fn logout(&self) -> Result<(), Error> {
        let mut session = self.inner.session.lock().await;
        let SessionAction::Ready(lease) = session.poll(Instant::now()) else {
            session.handle_logout();
            return Ok(());
        };
        let request = Logout::new(LogoutRequest::new(lease.token.clone()));
        let mut call = RetryCall::new(self.inner.config.retry, true);
        let result = self.with_retries(&request, &mut call, Some(&lease), None).await.map_err(Outcome::into_error);
        session.handle_logout();
        result.map(|_| ())
    }

    /// The state of the token session, for diagnostics.
    pub async fn session_state(&self) -> SessionState {
        self.inner.session.lock().await.state(Instant::now())
    }

    /// Tokens left in the shared retry quota.
    pub fn retry_quota_available(&self) -> u32 {
        self.inner.quota.lock().unwrap_or_else(PoisonError::into_inner).available()
    }
}

impl Outcome {
    fn into_error(self) -> Error {
        match self {
            Outcome::Renew(e) | Outcome::Fail(e) => e,
        }
    }
}

fn install(session: &mut TokenSession, token: AuthToken, refresh: bool) {
    let lifetime = Duration::from_secs(token.expires_in);
    if refresh {
        session.handle_refresh(Instant::now(), token.access_token, token.refresh_token, lifetime);
    } else {
        session.handle_login(Instant::now(), token.access_token, token.refresh_token, lifetime);
    }
}

/// How a transport failure looks to the retry policy; `None` for failures retrying cannot cure.
fn failure_kind(e: &TransportError) -> Option<TransportFailure> {
    match e {
        TransportError::Connect { .. } => Some(TransportFailure::ConnectFailed),
        TransportError::Timeout { phase: TimeoutPhase::Connect, .. } => Some(TransportFailure::ConnectFailed),
        TransportError::Timeout { .. } => Some(TransportFailure::Timeout),
        TransportError::Io { request_may_have_been_sent: false, .. } => Some(TransportFailure::ResetBeforeSend),
        TransportError::Io { .. } => Some(TransportFailure::ResetAfterSend),
        TransportError::Protocol { .. } => Some(TransportFailure::Other),
        _ => None,
    }
}
