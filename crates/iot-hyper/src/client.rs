//! The client: a thin tokio driver of iot-proto's call machine. It moves bytes, reads the clock, sleeps and
//! waits; every decision (tokens, retries, pacing, deadlines, outcome of creates) is the machine's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use iot_model::{AppId, AppSecret};
use iot_proto::call::{ClientCore, CoreConfig, Drive, Event, Renewal, Step, Transmit};
use iot_proto::ratelimit::RateLimit;
use iot_proto::retry::{RetryPolicy, RetryQuota};
use iot_proto::session::{SessionConfig, SessionState};
use iot_proto::{BaseUrl, Endpoint};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::error::Error;
use crate::transport::{Exchange, Transport, TransportConfig, TransportError};

/// The clock the client reads and sleeps on; injectable so tests can run on a virtual clock instead of waiting.
///
/// `now` and `sleep_until` must agree: after `sleep_until(t)` completes, `now()` is at least `t`.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The default clock: `Instant::now` and `tokio::time::sleep_until`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
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
    /// The client-side call quota shared by all clones (default: the platform's 100 calls per 60 s;
    /// [`RateLimit::disabled`] switches it off).
    pub rate_limit: RateLimit,
    /// The clock the client reads and sleeps on.
    pub clock: Arc<dyn Clock>,
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
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with finite default timeouts, the platform's public roots, retries on, the retry quota
    /// on, and the platform's rate limit.
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
            rate_limit: RateLimit::platform(),
            clock: Arc::new(TokioClock),
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

    /// Sets the client-side call quota ([`RateLimit::disabled`] switches it off).
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets the clock (a virtual one in tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn core(&self) -> CoreConfig {
        let mut core = CoreConfig::new(self.base_url.clone(), self.app_id.clone(), self.secret.clone());
        core.session = self.session;
        core.retry = self.retry;
        core.retry_quota = self.retry_quota;
        core.rate_limit = self.rate_limit;
        core.call_timeout = self.call_timeout;
        core.max_pages = self.max_pages;
        core
    }
}

struct Inner {
    config: ClientConfig,
    transport: Transport,
    /// The call machine's shared state. A plain mutex: it is never held across an await.
    core: Mutex<ClientCore>,
    /// Wakes the calls waiting for another call's token renewal.
    renewed: Notify,
}

/// A client of the northbound API. Cheap to clone; clones share the connection pool, the token session, the
/// retry quota and the rate limiter. Every future it returns is `Send`.
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

impl Client {
    /// Builds a client; fails only when the TLS settings are unusable. No connection is opened yet.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let transport = Transport::new(config.transport.clone()).map_err(Error::Config)?;
        // Jitter only needs to differ between processes; the wall clock is a good enough seed.
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let core = ClientCore::new(config.core(), seed);
        Ok(Self { inner: Arc::new(Inner { core: Mutex::new(core), renewed: Notify::new(), transport, config }) })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends any endpoint's request: logs in or refreshes first when needed, retries what the policy allows,
    /// renews a rejected token once, paces calls under the rate limit, and returns the typed answer.
    ///
    /// A call that is not idempotent (a create) is resent only when its request never reached the platform or
    /// the platform proved that it refused it (throttling code `1010009`, or a rejected token, renewed once).
    /// When it fails after the platform may have acted, the error is [`Error::OutcomeUnknown`].
    pub async fn send<E: Endpoint + Send + Sync>(&self, request: &E) -> Result<E::Response, Error>
    where
        E::Response: Send,
    {
        let span = tracing::info_span!("iot_call", endpoint = E::META.name);
        let call = self.lock().call(request, self.now());
        self.drive(call).instrument(span).await
    }

    /// Logs in now, replacing the current tokens (other calls wait for it). Calls log in by themselves when
    /// needed, so this is only for checking credentials early.
    pub async fn login(&self) -> Result<(), Error> {
        let renewal: Renewal<TransportError> = self.lock().login(self.now());
        self.drive(renewal).instrument(tracing::info_span!("iot_call", endpoint = "Login")).await
    }

    /// Renews the access token now: refreshes it with the refresh token, or logs in when there is no usable
    /// refresh token (or no token yet), falling back to a login when the platform refuses the refresh token.
    ///
    /// Calls made meanwhile wait for the renewal and then use the new token instead of renewing again. Calls
    /// renew by themselves when the token is due or rejected; this is for applications that know better, for
    /// example after tokens were invalidated by a login elsewhere.
    pub async fn renew_token(&self) -> Result<(), Error> {
        let renewal: Renewal<TransportError> = self.lock().renew(self.now());
        self.drive(renewal).instrument(tracing::info_span!("iot_call", endpoint = "RenewToken")).await
    }

    /// Revokes the current access token on the platform and forgets both tokens. Does nothing if the client
    /// holds no token.
    pub async fn logout(&self) -> Result<(), Error> {
        let Some(call) = self.lock().logout(self.now()) else { return Ok(()) };
        self.drive(call).instrument(tracing::info_span!("iot_call", endpoint = "Logout")).await.map(|_| ())
    }

    /// The state of the token session, for diagnostics.
    pub async fn session_state(&self) -> SessionState {
        self.lock().session_state(self.now())
    }

    /// Tokens left in the shared retry quota.
    pub fn retry_quota_available(&self) -> u32 {
        self.lock().retry_quota_available()
    }

    fn now(&self) -> Instant {
        self.inner.config.clock.now()
    }

    fn lock(&self) -> MutexGuard<'_, ClientCore> {
        // The core is plain data updated in single steps; a panic elsewhere cannot leave it half-changed.
        self.inner.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The driver loop: does what the machine says until it is done.
    async fn drive<M: Drive<TransportError> + Send>(&self, machine: M) -> Result<M::Output, Error> {
        let clock = &self.inner.config.clock;
        // Gives the machine back to the core if this future is dropped mid-call (a renewal it holds).
        let mut guard = Abandon { client: self, machine: Some(machine) };
        loop {
            let Some(machine) = guard.machine.as_mut() else { return Err(Error::Timeout(None)) };
            // Made before the poll, so a renewal ending between the poll and the wait still wakes us: a `Notified`
            // sees every `notify_waiters` from its creation on, without being enabled (which would put it on the
            // waiter list and take it off again on every turn of this loop, about 400 instructions a call).
            let renewed = self.inner.renewed.notified();
            let step = {
                let mut core = self.lock();
                let step = machine.poll(&mut core, clock.now());
                self.settle(&mut core, machine);
                step
            };
            match step {
                Step::Send(transmit) => {
                    trace_send(&transmit);
                    // The call's deadline in the runtime's time (the machine reads `clock`, which may be virtual),
                    // bounding the exchange under the same timer as the transport's own timeout.
                    let remaining = machine.deadline().saturating_duration_since(clock.now());
                    let deadline = tokio::time::Instant::now().checked_add(remaining);
                    // The machine built the request from a checked base URL: nothing for the transport to check.
                    let answer = self.inner.transport.send_before(transmit.request, deadline, false).await;
                    let mut core = self.lock();
                    let now = clock.now();
                    match answer {
                        Exchange::Done(Ok(response)) => machine.handle_response(&mut core, now, response),
                        Exchange::Done(Err(error)) => machine.handle_failure(&mut core, now, error.failure(), error),
                        // The call's deadline passed mid-exchange: the next poll ends the call.
                        Exchange::CallerDeadline => {}
                    }
                    self.settle(&mut core, machine);
                }
                Step::Wait(until) => clock.sleep_until(until).await,
                Step::WaitForRenewal(until) => {
                    // Bounded in the runtime's time, like the exchange it waits for: the other call's renewal
                    // runs on the network, whatever clock the machine reads.
                    let _ = tokio::time::timeout(until.saturating_duration_since(clock.now()), renewed).await;
                }
                Step::Done(result) => {
                    guard.machine = None;
                    return result.map_err(Error::from);
                }
            }
        }
    }

    /// After every step: wakes the calls waiting for a renewal that ended, and logs the machine's events.
    fn settle<M: Drive<TransportError>>(&self, core: &mut ClientCore, machine: &mut M) {
        if core.take_wakeup() {
            self.inner.renewed.notify_waiters();
        }
        // The clock is read only when there is something to log: most steps have no event.
        let mut now = None;
        while let Some(event) = machine.poll_event() {
            trace_event(&event, *now.get_or_insert_with(|| self.inner.config.clock.now()));
        }
    }
}

/// Returns a dropped call's hold on the core.
struct Abandon<'c, M: Drive<TransportError>> {
    client: &'c Client,
    machine: Option<M>,
}

impl<M: Drive<TransportError>> Drop for Abandon<'_, M> {
    fn drop(&mut self) {
        if let Some(machine) = self.machine.take() {
            let mut core = self.client.lock();
            machine.abandon(&mut core);
            if core.take_wakeup() {
                self.client.inner.renewed.notify_waiters();
            }
        }
    }
}

/// One debug event per request on the wire: its purpose, attempt, method and path (never headers or body,
/// which carry the secret and the tokens).
fn trace_send(transmit: &Transmit) {
    tracing::debug!(
        purpose = ?transmit.purpose,
        attempt = transmit.attempt,
        method = %transmit.request.method(),
        path = transmit.request.uri().path(),
        "sending"
    );
}

/// The machine's events as tracing events; none carries a secret.
fn trace_event(event: &Event, now: Instant) {
    match event {
        Event::Renewed { purpose, generation } => tracing::info!(?purpose, generation, "token renewed"),
        Event::RefreshRefused => tracing::warn!("refresh token refused; logging in"),
        Event::TokenRejected { generation } => tracing::info!(generation, "access token rejected; renewing once"),
        Event::Retry { purpose, attempt, delay, reason } => {
            tracing::warn!(?purpose, attempt, delay_ms = delay.as_millis() as u64, ?reason, "retrying")
        }
        Event::Throttled { until } => tracing::warn!(
            pause_ms = until.saturating_duration_since(now).as_millis() as u64,
            "throttled by the platform; pausing every call"
        ),
        Event::Paced { until } => tracing::debug!(
            wait_ms = until.saturating_duration_since(now).as_millis() as u64,
            "paced by the rate limit"
        ),
        Event::Reconciled { found: true } => {
            tracing::warn!("the create's answer was lost; the task it made was found and is returned")
        }
        Event::Reconciled { found: false } => {
            tracing::warn!("the create's answer was lost; it made no task, so it is sent again")
        }
        other => tracing::debug!(?other, "call event"),
    }
}
