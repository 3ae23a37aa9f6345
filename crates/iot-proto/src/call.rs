//! The whole client as sans-IO state machines: a [`ClientCore`] shared by every call of a client, and one
//! [`Call`] per request, in the style of quinn-proto.
//!
//! The core decides everything a client does between "send this request" and "here is the typed answer": when
//! to log in or refresh, that only one call renews the token at a time (single flight), that a rejected token
//! is renewed once, that a refused refresh falls back to a login, which failures are retried and after how long
//! (`Retry-After`, backoff, throttling), the client-side rate limit, the call's deadline, and whether a failed
//! create may have been acted on. A driver only moves bytes, reads its clock and sleeps:
//!
//! ```text
//! let mut call = core.call(&request, now);
//! loop {
//!     match call.poll(&mut core, now) {
//!         Step::Send(transmit) => match send(transmit.request) {        // your HTTP client
//!             Ok(response) => call.handle_response(&mut core, now, response),
//!             Err(e) => call.handle_failure(&mut core, now, kind_of(&e), e),
//!         },
//!         Step::Wait(until) => sleep_until(until),
//!         Step::WaitForRenewal(until) => wait_for_wakeup_or(until),     // another call is renewing the token
//!         Step::Done(result) => return result,
//!     }
//! }
//! ```
//!
//! (`now` is re-read before every method call.) [`ClientCore`] is plain data: a driver with several calls in
//! flight keeps it behind a mutex and never holds the lock while it sends or sleeps. After any method that may
//! end a renewal, [`ClientCore::take_wakeup`] says whether to wake the calls that wait in
//! [`Step::WaitForRenewal`]. A call dropped before it is done gives back what it holds with
//! [`Call::abandon`].
//!
//! Paged walks are a machine on top: [`PageWalker`] says which page to ask for next and checks that the pages
//! add up (see [`crate::pager::Walk`]).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use iot_model::{AppId, AppSecret, AuthToken, LoginForm, LogoutRequest, RefreshTokenRequest};

use crate::endpoint::{Endpoint, Page, Paged};
use crate::error::{ApiError, DecodeError, FromHttpResponseError, IntoHttpError, ValidationError};
use crate::pager::{PageRequest, PagerError, StopReason, Walk, WalkError};
use crate::ratelimit::{Acquire, RateLimit, RateLimiter};
use crate::reconcile::{Next, Search, Verdict};
use crate::retry::{
    FailureClass, RetryCall, RetryDecision, RetryPolicy, RetryQuota, Signal, SplitMix64, TransportFailure, classify,
    parse_retry_after,
};
use crate::session::{SessionAction, SessionConfig, SessionState, TokenLease, TokenSession};
use crate::wire::BaseUrl;
use crate::{BearerAuth, Login, Logout, RefreshAccessToken};

/// Everything the core needs to know about the client: the platform, the credentials and the rules.
#[derive(Clone)]
#[non_exhaustive]
pub struct CoreConfig {
    /// The platform, for example `https://iot.example.com:8743`.
    pub base_url: BaseUrl,
    /// The application's id, sent as `app_key`.
    pub app_id: AppId,
    /// The application's secret, sent only to log in and to refresh.
    pub secret: AppSecret,
    /// When to refresh the token.
    pub session: SessionConfig,
    /// Retries of failed attempts.
    pub retry: RetryPolicy,
    /// Capacity of the retry quota shared by all calls (0 switches the quota off).
    pub retry_quota: u32,
    /// The client-side call quota shared by all calls (default: the platform's 100 calls per 60 s).
    pub rate_limit: RateLimit,
    /// A deadline for a whole call, token renewal, retries and waits included (default 120 s).
    pub call_timeout: Duration,
    /// Most pages one paged walk fetches; a guard against a server that never stops (default 100 000).
    pub max_pages: u32,
}

impl fmt::Debug for CoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("secret", &self.secret)
            .field("session", &self.session)
            .field("retry", &self.retry)
            .field("retry_quota", &self.retry_quota)
            .field("rate_limit", &self.rate_limit)
            .field("call_timeout", &self.call_timeout)
            .field("max_pages", &self.max_pages)
            .finish()
    }
}

impl CoreConfig {
    /// The platform's usual rules: refresh 5 minutes early, 3 attempts with backoff, a retry quota of 500,
    /// 100 calls per 60 s, 120 s per call, at most 100 000 pages per walk.
    pub fn new(base_url: BaseUrl, app_id: AppId, secret: AppSecret) -> Self {
        Self {
            base_url,
            app_id,
            secret,
            session: SessionConfig::default(),
            retry: RetryPolicy::default(),
            retry_quota: RetryQuota::DEFAULT_CAPACITY,
            rate_limit: RateLimit::platform(),
            call_timeout: Duration::from_secs(120),
            max_pages: 100_000,
        }
    }
}

/// Who holds the one renewal allowed at a time, and since when.
#[derive(Clone, Copy, Debug)]
struct Renewing {
    call: u64,
    since: Instant,
}

/// The state every call of one client shares: the token session, the renewal in flight, the retry quota, the
/// rate limiter and the throttling pause. Plain data; see the [module documentation](self).
pub struct ClientCore {
    config: CoreConfig,
    session: TokenSession,
    renewing: Option<Renewing>,
    quota: RetryQuota,
    limiter: RateLimiter,
    /// No call is sent before this instant: the platform said the application is over its quota.
    paused_until: Option<Instant>,
    rng: SplitMix64,
    next_call: u64,
    wakeup: bool,
    /// The last `Date` header the platform sent and when it arrived: the platform's clock, for reconciling
    /// creates (kept raw; parsed only when a create is in doubt).
    platform_date: Option<(Instant, http::HeaderValue)>,
}

impl fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCore")
            .field("config", &self.config)
            .field("session", &self.session)
            .field("renewing", &self.renewing.is_some())
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

impl ClientCore {
    /// A core without tokens; `seed` feeds the jitter of retry delays (any value will do, a clock reading is
    /// typical; equal seeds give equal delays, which tests use).
    pub fn new(config: CoreConfig, seed: u64) -> Self {
        Self {
            session: TokenSession::new(config.session),
            renewing: None,
            quota: RetryQuota::new(config.retry_quota),
            limiter: RateLimiter::from(config.rate_limit),
            paused_until: None,
            rng: SplitMix64::new(seed),
            next_call: 0,
            wakeup: false,
            platform_date: None,
            config,
        }
    }

    /// The configuration the core was built with.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Starts a call of `request` at `now`; drive it with [`Call::poll`].
    pub fn call<'r, E: Endpoint, T>(&mut self, request: &'r E, now: Instant) -> Call<'r, E, T> {
        Call::new(self, Cow::Borrowed(request), Goal::Answer, now)
    }

    /// Starts a login at `now` that replaces the current tokens whatever their state; calls that need a token
    /// meanwhile wait for it. Calls log in by themselves when needed, so this is for checking credentials early.
    pub fn login<T>(&mut self, now: Instant) -> Renewal<T> {
        Renewal(Call::new(self, Cow::Owned(self.login_request()), Goal::Token(Force::Login), now))
    }

    /// Starts a renewal of the access token at `now`: a refresh while the refresh token is usable, else a login
    /// (and a login when the platform refuses the refresh token). For applications that know the token went
    /// bad, for example after a login elsewhere.
    pub fn renew<T>(&mut self, now: Instant) -> Renewal<T> {
        Renewal(Call::new(self, Cow::Owned(self.login_request()), Goal::Token(Force::Renew), now))
    }

    /// Starts a logout of the current access token at `now`, after which both tokens are forgotten whatever the
    /// answer. `None` when the client holds no usable token: the tokens are forgotten at once and there is
    /// nothing to send.
    pub fn logout<T>(&mut self, now: Instant) -> Option<Call<'static, Logout, T>> {
        // A token inside its refresh margin still works and is still worth revoking.
        let Some(lease) = self.session.live_token(now) else {
            self.session.handle_logout();
            return None;
        };
        let request = Logout::new(LogoutRequest::new(lease.token.clone()));
        let mut call = Call::new(self, Cow::Owned(request), Goal::Answer, now);
        call.lease = Some(lease);
        call.forget_tokens = true;
        Some(call)
    }

    /// The state of the token session at `now`, for diagnostics.
    pub fn session_state(&self, now: Instant) -> SessionState {
        self.session.state(now)
    }

    /// Tokens left in the shared retry quota.
    pub fn retry_quota_available(&self) -> u32 {
        self.quota.available()
    }

    /// Whether calls waiting in [`Step::WaitForRenewal`] should be woken now: a renewal ended. Call it after
    /// every method of a call; it returns `true` once per ended renewal.
    #[must_use]
    pub fn take_wakeup(&mut self) -> bool {
        std::mem::take(&mut self.wakeup)
    }

    fn login_request(&self) -> Login {
        Login::new(LoginForm::new(self.config.app_id.clone(), self.config.secret.clone()))
    }

    fn end_renewal(&mut self, call: u64) {
        if self.renewing.is_some_and(|r| r.call == call) {
            self.renewing = None;
            self.wakeup = true;
        }
    }

    /// Whether another call holds the renewal at `now`. A holder that kept it longer than a whole call may
    /// last was lost without [`Call::abandon`] (a driver bug or a panic); its renewal is taken over.
    fn renewal_held_by_other(&self, call: u64, now: Instant) -> Option<Instant> {
        let held = self.renewing.filter(|r| r.call != call)?;
        let stale = held.since.checked_add(self.config.call_timeout)?;
        (now < stale).then_some(stale)
    }

    /// When the call may be sent: the throttling pause and the rate limiter, which counts the call on `Go`.
    fn gate(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.paused_until.filter(|until| now < *until) {
            return Some(until);
        }
        match self.limiter.poll_acquire(now) {
            Acquire::Go => None,
            Acquire::WaitUntil(until) => Some(until),
        }
    }

    /// The platform's clock at `at`, from the last `Date` header it sent.
    fn platform_time(&self, at: Instant) -> Option<SystemTime> {
        let (seen, date) = self.platform_date.as_ref()?;
        let then = http_date(date.to_str().ok()?)?;
        match at.checked_duration_since(*seen) {
            Some(later) => then.checked_add(later),
            None => then.checked_sub(seen.duration_since(at)),
        }
    }

    fn note_date(&mut self, now: Instant, headers: &http::HeaderMap) {
        if let Some(date) = headers.get(http::header::DATE) {
            self.platform_date = Some((now, date.clone()));
        }
    }

    fn install(&mut self, now: Instant, token: AuthToken, refresh: bool) {
        let lifetime = Duration::from_secs(token.expires_in);
        if refresh {
            self.session.handle_refresh(now, token.access_token, token.refresh_token, lifetime);
        } else {
            self.session.handle_login(now, token.access_token, token.refresh_token, lifetime);
        }
    }
}

/// What a driver does next for a call.
#[derive(Debug)]
#[must_use]
pub enum Step<R, T> {
    /// Send this request, then report the answer with [`Call::handle_response`] or the failure with
    /// [`Call::handle_failure`].
    Send(Transmit),
    /// Sleep until this instant, then poll again.
    Wait(Instant),
    /// Another call is renewing the token: wait until [`ClientCore::take_wakeup`] says a renewal ended (or
    /// until this instant, whichever is first), then poll again.
    WaitForRenewal(Instant),
    /// The call is over; polling again gives [`CallError::Finished`].
    Done(Result<R, CallError<T>>),
}

/// A request to send, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Transmit {
    /// The request, ready for the wire.
    pub request: http::Request<Vec<u8>>,
    /// What the request is for.
    pub purpose: Purpose,
    /// The attempt number of this purpose in the call, from 1.
    pub attempt: u32,
}

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// A login with the application's credentials.
    Login,
    /// A refresh of the access token.
    Refresh,
    /// The call's own request.
    Request,
    /// A lookup for what a create in doubt may have made, before it is sent again.
    Lookup,
}

/// Something a driver may log; read them with [`Call::poll_event`]. None carries a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A login or refresh succeeded; the new token has this generation.
    Renewed {
        /// A login or a refresh.
        purpose: Purpose,
        /// The generation of the new token.
        generation: u64,
    },
    /// The platform refused the refresh token; a login follows.
    RefreshRefused,
    /// The platform rejected the access token; the call renews it (or takes a newer one) and retries once.
    TokenRejected {
        /// The generation of the rejected token.
        generation: u64,
    },
    /// An attempt failed and will be retried after `delay`.
    Retry {
        /// What the failed attempt was for.
        purpose: Purpose,
        /// The number of the attempt that failed, from 1.
        attempt: u32,
        /// How long the call waits before the next attempt.
        delay: Duration,
        /// How the failure was classified.
        reason: FailureClass,
    },
    /// The platform said the application is over its call quota: every call of the client pauses until `until`.
    Throttled {
        /// When calls may go again.
        until: Instant,
    },
    /// A create whose outcome was in doubt was looked for: `found` when the platform had made it (the call
    /// returns it), else it was provably absent and is sent again.
    Reconciled {
        /// Whether the lost attempt had made it.
        found: bool,
    },
    /// The client-side rate limit (or a throttling pause) holds the call until `until`.
    Paced {
        /// When the call may go.
        until: Instant,
    },
}

/// Why a call failed. One taxonomy for every driver: `T` is the driver's own transport error, classified by
/// the driver into a [`TransportFailure`] when it reports it.
// Display and Error are written by hand: thiserror's derive bounds the impl on `Box<CallError<T>>: Error`
// for the boxed source of `OutcomeUnknown`, a bound that needs the impl itself, so the derived impl never
// applied and no driver could use `CallError` as an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError<T> {
    /// The request breaks a rule of the contract; it was never sent.
    Invalid(ValidationError),
    /// The request did not get an HTTP answer.
    Transport {
        /// How the driver classified the failure.
        failure: TransportFailure,
        /// The driver's error.
        error: T,
    },
    /// The platform (or something in front of it) answered with an error.
    Api(ApiError),
    /// The platform's answer could not be decoded.
    Decode(DecodeError),
    /// The call's deadline passed.
    Timeout(Duration),
    /// A call that is not idempotent failed after its request may have reached the platform, and the platform
    /// did not prove that it refused it: the task it creates may exist. Look it up before creating it again.
    OutcomeUnknown {
        /// The endpoint's name in the spec, such as `CreateBatchTask`.
        endpoint: &'static str,
        /// How the last attempt failed.
        source: Box<CallError<T>>,
    },
    /// The call was polled after it had finished.
    Finished,
}

impl<T> fmt::Display for CallError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(_) => f.write_str("request not sent: it breaks a rule of the contract"),
            Self::Transport { failure, .. } => write!(f, "transport failure ({failure:?})"),
            Self::Api(_) => f.write_str("the platform refused the call"),
            Self::Decode(_) => f.write_str("the platform's answer could not be decoded"),
            Self::Timeout(limit) => write!(f, "the call's deadline of {limit:?} passed"),
            Self::OutcomeUnknown { endpoint, .. } => write!(
                f,
                "the outcome of {endpoint} is unknown: the platform may have acted on it, so the task may exist"
            ),
            Self::Finished => f.write_str("the call had already finished"),
        }
    }
}

impl<T: std::error::Error + 'static> std::error::Error for CallError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Transport { error, .. } => Some(error),
            Self::Api(e) => Some(e),
            Self::Decode(e) => Some(e),
            Self::OutcomeUnknown { source, .. } => Some(&**source),
            Self::Timeout(_) | Self::Finished => None,
        }
    }
}

impl<T> CallError<T> {
    /// Whether trying the same call again later may succeed. [`CallError::OutcomeUnknown`] is not: the task may
    /// already exist.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { failure, .. } => failure.is_retryable(),
            Self::Api(api) => api.is_retryable(),
            Self::Timeout(_) => true,
            Self::Invalid(_) | Self::Decode(_) | Self::OutcomeUnknown { .. } | Self::Finished => false,
        }
    }

    /// Whether the platform may have received the request.
    pub fn request_may_have_been_sent(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::Finished => false,
            Self::Transport { failure, .. } => failure.request_may_have_been_sent(),
            Self::Api(_) | Self::Decode(_) | Self::Timeout(_) | Self::OutcomeUnknown { .. } => true,
        }
    }

    /// Whether the platform may have acted on the request: it may have been sent, and no answer proves that the
    /// platform refused it (see [`ApiError::proves_refusal`]).
    pub fn platform_may_have_acted(&self) -> bool {
        match self {
            Self::Api(api) => !api.proves_refusal(),
            other => other.request_may_have_been_sent(),
        }
    }

    /// The failure itself: the error, or for [`CallError::OutcomeUnknown`] the failure it wraps.
    pub fn cause(&self) -> &Self {
        match self {
            Self::OutcomeUnknown { source, .. } => source.cause(),
            other => other,
        }
    }

    /// The platform's error, if it answered one (also inside [`CallError::OutcomeUnknown`]).
    pub fn api(&self) -> Option<&ApiError> {
        match self.cause() {
            Self::Api(api) => Some(api),
            _ => None,
        }
    }

    fn from_build(e: IntoHttpError) -> Self {
        match e {
            IntoHttpError::Invalid(v) => Self::Invalid(v),
            IntoHttpError::MissingCredentials { endpoint } => Self::Invalid(ValidationError::new(
                "credentials",
                format!("endpoint {endpoint} needs an app id and an access token"),
                None,
            )),
        }
    }

    fn from_answer(e: FromHttpResponseError) -> Self {
        match e {
            FromHttpResponseError::Api(api) => Self::Api(api),
            FromHttpResponseError::Decode(d) => Self::Decode(d),
        }
    }
}

/// Whether the call wants the endpoint's answer or only a fresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Goal {
    Answer,
    Token(Force),
}

/// The renewal a [`Renewal`] asks for before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Force {
    Login,
    Renew,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Ready to go on (first attempt, after a renewal, after a wait).
    Idle,
    /// Waiting out a retry delay.
    Backoff(Instant),
    /// A request is on the wire.
    InFlight { purpose: Purpose, sent_at: Instant, generation: u64 },
    /// The result has been handed out.
    Finished,
}

/// One call's state machine; see the [module documentation](self). Every method takes the shared core and the
/// current instant.
pub struct Call<'r, E: Endpoint + Clone, T> {
    id: u64,
    request: Cow<'r, E>,
    goal: Goal,
    deadline: Instant,
    state: State,
    /// Retries of the call's own request.
    retry: RetryCall,
    /// Retries of the login or refresh in progress.
    renew_retry: Option<RetryCall>,
    /// Login and refresh exchanges this call ran to get one token; bounded so a platform that hands out
    /// unusable tokens cannot loop.
    exchanges: u8,
    lease: Option<TokenLease>,
    /// Whether the last attempt of the call's own request may have been acted on.
    in_doubt: bool,
    forget_tokens: bool,
    paced: bool,
    /// A renewal asked for by [`ClientCore::login`] or [`ClientCore::renew`] and not yet done.
    force: Option<Force>,
    /// When the call began, for finding what a create in doubt may have made.
    started: Instant,
    /// The search for what a create in doubt made, and the failure it would end with otherwise.
    search: Option<(Search, CallError<T>)>,
    /// Retries of the search's lookups, which are queries and so safe to repeat.
    lookup_retry: Option<RetryCall>,
    events: VecDeque<Event>,
    /// The result, waiting for the next poll; `Ok(None)` is the success of a call that wanted only a token.
    result: Option<Result<Option<E::Response>, CallError<T>>>,
}

impl<E: Endpoint, T> fmt::Debug for Call<'_, E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("endpoint", &E::META.name)
            .field("state", &self.state)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Most login and refresh exchanges one call runs: a refused refresh, then a login, then one more.
const MAX_EXCHANGES: u8 = 3;

impl<'r, E: Endpoint, T> Call<'r, E, T> {
    fn new(core: &mut ClientCore, request: Cow<'r, E>, goal: Goal, now: Instant) -> Self {
        core.next_call = core.next_call.wrapping_add(1);
        let idempotent = E::META.idempotent;
        // A request that breaks the contract ends here: no login, no slot of the quota, nothing sent.
        let invalid = match goal {
            Goal::Answer => request.validate().err().map(|e| Err(CallError::Invalid(e))),
            Goal::Token(_) => None,
        };
        Self {
            id: core.next_call,
            request,
            goal,
            deadline: now.checked_add(core.config.call_timeout).unwrap_or(now + Duration::from_secs(86_400 * 365)),
            state: State::Idle,
            retry: RetryCall::new(core.config.retry, idempotent),
            renew_retry: None,
            exchanges: 0,
            lease: None,
            in_doubt: false,
            forget_tokens: false,
            paced: false,
            force: match goal {
                Goal::Token(force) => Some(force),
                Goal::Answer => None,
            },
            started: now,
            search: None,
            lookup_retry: None,
            events: VecDeque::new(),
            result: invalid,
        }
    }

    /// The instant the call gives up; a driver bounds every send and sleep by it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Says what to do next at `now`. Call it first, and again after every `handle_*` and every wait.
    #[must_use = "the step says what the driver must do next"]
    pub fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<E::Response, T> {
        match self.poll_inner(core, now) {
            Step::Send(transmit) => Step::Send(transmit),
            Step::Wait(until) => Step::Wait(until),
            Step::WaitForRenewal(until) => Step::WaitForRenewal(until),
            Step::Done(Ok(Some(answer))) => Step::Done(Ok(answer)),
            // Only a token goal succeeds without an answer, and a `Call` never has one.
            Step::Done(Ok(None)) => Step::Done(Err(CallError::Finished)),
            Step::Done(Err(e)) => Step::Done(Err(e)),
        }
    }

    fn poll_inner(&mut self, core: &mut ClientCore, now: Instant) -> Step<Option<E::Response>, T> {
        // Bounded: each round either returns or changes the state towards a send, a wait or a result.
        for _ in 0..8 {
            if let Some(result) = self.result.take() {
                self.state = State::Finished;
                return Step::Done(result);
            }
            if matches!(self.state, State::Finished) {
                return Step::Done(Err(CallError::Finished));
            }
            if now >= self.deadline {
                let timeout = CallError::Timeout(core.config.call_timeout);
                self.finish(core, Err(timeout));
                continue;
            }
            match self.state {
                State::InFlight { .. } => return Step::Wait(self.deadline),
                State::Backoff(until) if now < until => return Step::Wait(until.min(self.deadline)),
                State::Backoff(_) | State::Idle => self.state = State::Idle,
                State::Finished => {}
            }
            if let Some(step) = self.advance(core, now) {
                return step;
            }
        }
        Step::Wait(now.min(self.deadline))
    }

    /// Reports the answer to the request of the last [`Step::Send`], received at `now`.
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        core: &mut ClientCore,
        now: Instant,
        response: http::Response<B>,
    ) {
        let State::InFlight { purpose, sent_at, generation } = self.state else { return };
        core.limiter.handle_completed(sent_at, now);
        core.note_date(now, response.headers());
        self.state = State::Idle;
        match purpose {
            Purpose::Lookup => self.lookup_answered(core, now, generation, &response),
            Purpose::Request => match E::try_from_http_response(&response) {
                Ok(answer) => {
                    let quota = (core.config.retry_quota > 0).then_some(&mut core.quota);
                    self.retry.clone().on_success(quota);
                    self.in_doubt = false;
                    self.finish(core, Ok(Some(answer)));
                }
                Err(e) => {
                    let signal = answer_signal(&e, response.status(), retry_after(response.headers()));
                    let judged = judge(&mut self.retry, core, &signal);
                    self.request_failed(core, now, generation, judged, CallError::from_answer(e));
                }
            },
            Purpose::Login | Purpose::Refresh => {
                let answer = if purpose == Purpose::Login {
                    Login::try_from_http_response(&response)
                } else {
                    RefreshAccessToken::try_from_http_response(&response)
                };
                match answer {
                    Ok(token) => {
                        core.install(now, token, purpose == Purpose::Refresh);
                        core.end_renewal(self.id);
                        // A renewal that succeeded gives back what its retries took from the shared quota, as a
                        // call's own request does; dropping the bookkeeping instead leaked the cost of every retried
                        // login or refresh.
                        if let Some(retry) = self.renew_retry.take().filter(|r| r.quota_spent() > 0) {
                            retry.on_success((core.config.retry_quota > 0).then_some(&mut core.quota));
                        }
                        self.force = None;
                        self.events.push_back(Event::Renewed { purpose, generation: core.session.generation() });
                        if let Goal::Token(_) = self.goal {
                            self.finish(core, Ok(None));
                        }
                    }
                    // The platform refused the refresh token (expired, or invalidated by another login): a login
                    // follows. Throttling and server failures are no verdict on the token, and a login would
                    // invalidate tokens other calls still use.
                    Err(FromHttpResponseError::Api(api))
                        if purpose == Purpose::Refresh && !api.is_throttled() && !api.is_server_error() =>
                    {
                        core.session.handle_refresh_failed();
                        self.renew_retry = None;
                        self.events.push_back(Event::RefreshRefused);
                    }
                    Err(e) => {
                        let signal = answer_signal(&e, response.status(), retry_after(response.headers()));
                        let retry = self.renew_retry.get_or_insert(RetryCall::new(core.config.retry, true));
                        let judged = judge(retry, core, &signal);
                        self.renewal_failed(core, now, purpose, judged, CallError::from_answer(e));
                    }
                }
            }
        }
    }

    /// Reports that the request of the last [`Step::Send`] got no answer, classified by the driver as `failure`.
    pub fn handle_failure(&mut self, core: &mut ClientCore, now: Instant, failure: TransportFailure, error: T) {
        let State::InFlight { purpose, sent_at, generation } = self.state else { return };
        core.limiter.handle_completed(sent_at, now);
        self.state = State::Idle;
        let signal = Signal::Transport(failure);
        let error = CallError::Transport { failure, error };
        match purpose {
            Purpose::Lookup => self.lookup_failed(core, now, generation, &signal),
            Purpose::Request => {
                let judged = judge(&mut self.retry, core, &signal);
                self.request_failed(core, now, generation, judged, error);
            }
            Purpose::Login | Purpose::Refresh => {
                let retry = self.renew_retry.get_or_insert(RetryCall::new(core.config.retry, true));
                let judged = judge(retry, core, &signal);
                self.renewal_failed(core, now, purpose, judged, error);
            }
        }
    }

    /// Gives back what the call holds in the core (a renewal in progress), for a call dropped before it was
    /// done. Dropping a call without it is safe but makes others wait up to a call timeout for the renewal.
    pub fn abandon(self, core: &mut ClientCore) {
        core.end_renewal(self.id);
    }

    /// The next thing worth logging, if any; call it after every method until it gives `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves an idle call on: a token first when needed, then the request. `None` when the state changed
    /// and the caller should look again.
    fn advance(&mut self, core: &mut ClientCore, now: Instant) -> Option<Step<Option<E::Response>, T>> {
        let needs_token = matches!(self.goal, Goal::Token(_)) || E::META.auth;
        // A lease taken before a wait (the rate limit, a throttling pause, a backoff) may have been superseded by
        // another call's renewal meanwhile, and the platform stops accepting a token once it issues the next: take
        // the current one rather than spend a request and the call's one token retry on a 1010005. A logout keeps
        // its lease, the token its body names.
        let superseded = self.lease.as_ref().is_some_and(|l| l.generation < core.session.generation());
        if superseded && !self.forget_tokens {
            self.lease = None;
        }
        if needs_token && self.lease.is_none() {
            return self.obtain_token(core, now);
        }
        if self.search.is_some() {
            return self.look_up(core, now);
        }
        let auth = self.lease.as_ref().map(|l| BearerAuth { app_id: &core.config.app_id, token: &l.token });
        let request = match self.request.try_into_http_request(&core.config.base_url, auth) {
            Ok(request) => request,
            Err(e) => {
                self.finish(core, Err(CallError::from_build(e)));
                return None;
            }
        };
        // Gated after building, so a request that cannot be built never spends a slot of the quota.
        if let Some(until) = self.gated(core, now) {
            return Some(Step::Wait(until));
        }
        self.in_doubt = true;
        self.paced = false;
        let generation = self.lease.as_ref().map_or(0, |l| l.generation);
        self.state = State::InFlight { purpose: Purpose::Request, sent_at: now, generation };
        Some(Step::Send(Transmit { request, purpose: Purpose::Request, attempt: self.retry.failures() + 1 }))
    }

    /// Gets a token: takes the current one, waits for another call's renewal, or renews it itself.
    fn obtain_token(&mut self, core: &mut ClientCore, now: Instant) -> Option<Step<Option<E::Response>, T>> {
        if let Some(stale) = core.renewal_held_by_other(self.id, now) {
            return Some(Step::WaitForRenewal(stale.min(self.deadline)));
        }
        // A forced renewal holds until one exchange succeeds: a login() whose first attempt failed must not
        // end on the old token.
        let action = match self.force {
            Some(Force::Login) => SessionAction::Login,
            Some(Force::Renew) => {
                core.session.handle_renewal_requested();
                core.session.poll(now)
            }
            None => core.session.poll(now),
        };
        let purpose = match action {
            SessionAction::Ready(lease) => {
                core.end_renewal(self.id);
                match self.goal {
                    Goal::Answer => self.lease = Some(lease),
                    Goal::Token(_) => self.finish(core, Ok(None)),
                }
                return None;
            }
            SessionAction::Login => Purpose::Login,
            SessionAction::Refresh(_) => Purpose::Refresh,
        };
        if self.exchanges >= MAX_EXCHANGES {
            let error = ValidationError::new("session", "the platform issued a token that expires at once", None);
            self.finish(core, Err(CallError::Invalid(error)));
            return None;
        }
        // No one else holds the renewal (or its holder was lost): this call renews for everyone.
        if core.renewing.is_none_or(|r| r.call != self.id) {
            core.renewing = Some(Renewing { call: self.id, since: now });
        }
        let request = match action {
            SessionAction::Refresh(refresh_token) => {
                let body =
                    RefreshTokenRequest::new(core.config.app_id.clone(), core.config.secret.clone(), refresh_token);
                RefreshAccessToken::new(body).try_into_http_request(&core.config.base_url, None)
            }
            _ => core.login_request().try_into_http_request(&core.config.base_url, None),
        };
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                core.end_renewal(self.id);
                self.finish(core, Err(CallError::from_build(e)));
                return None;
            }
        };
        if let Some(until) = self.gated(core, now) {
            return Some(Step::Wait(until));
        }
        self.exchanges += 1;
        self.paced = false;
        let retry = self.renew_retry.get_or_insert(RetryCall::new(core.config.retry, true));
        let attempt = retry.failures() + 1;
        self.state = State::InFlight { purpose, sent_at: now, generation: core.session.generation() };
        Some(Step::Send(Transmit { request, purpose, attempt }))
    }

    /// The instant the call must wait for (throttling pause, rate limit), or `None` when it may go now and has
    /// been counted.
    fn gated(&mut self, core: &mut ClientCore, now: Instant) -> Option<Instant> {
        let until = core.gate(now)?;
        if !self.paced {
            self.paced = true;
            self.events.push_back(Event::Paced { until });
        }
        Some(until.min(self.deadline))
    }

    fn request_failed(
        &mut self,
        core: &mut ClientCore,
        now: Instant,
        generation: u64,
        (class, decision): (FailureClass, RetryDecision),
        error: CallError<T>,
    ) {
        self.paced = false;
        self.in_doubt = error.platform_may_have_acted();
        pause_if_throttled(core, &mut self.events, now, class, decision);
        match decision {
            RetryDecision::RetryAfter(delay) => {
                let attempt = self.retry.failures();
                self.events.push_back(Event::Retry { purpose: Purpose::Request, attempt, delay, reason: class });
                self.state = State::Backoff(now + delay);
            }
            // A logout whose token is rejected has nothing left to revoke. Renewing would log in (invalidating the
            // tokens of the application's other processes) only to send the dead token in the body, leaving the
            // new one live: the call ends with the rejection instead.
            RetryDecision::RenewTokenAndRetry if (E::META.auth || self.lease.is_some()) && !self.forget_tokens => {
                core.session.handle_rejected(generation);
                self.events.push_back(Event::TokenRejected { generation });
                self.lease = None;
                self.exchanges = 0;
            }
            _ => self.reconcile_or_finish(core, error),
        }
    }

    /// Ends a failed call, unless it is a create in doubt that can be looked for: then the search starts, and
    /// the failure waits for its verdict.
    fn reconcile_or_finish(&mut self, core: &mut ClientCore, error: CallError<T>) {
        if self.in_doubt && !E::META.idempotent && matches!(self.goal, Goal::Answer) {
            // The platform's clock at the call's start bounds which tasks can be this call's; without it an
            // older task with the same targets could be taken for this one, so nothing is looked for.
            let since = core.platform_time(self.started);
            if let Some(search) = since.and_then(|since| Search::new(&*self.request, since)) {
                self.search = Some((search, error));
                return;
            }
        }
        self.finish(core, Err(error));
    }

    /// Sends the search's next lookup, or acts on its verdict.
    fn look_up(&mut self, core: &mut ClientCore, now: Instant) -> Option<Step<Option<E::Response>, T>> {
        let (search, _) = self.search.as_mut()?;
        let lease = self.lease.as_ref()?;
        let auth = BearerAuth { app_id: &core.config.app_id, token: &lease.token };
        let generation = lease.generation;
        match search.next(&core.config.base_url, auth) {
            Ok(Next::Lookup(request)) => {
                if let Some(until) = self.gated(core, now) {
                    return Some(Step::Wait(until));
                }
                self.paced = false;
                self.state = State::InFlight { purpose: Purpose::Lookup, sent_at: now, generation };
                let attempt = self.lookup_retry.as_ref().map_or(0, RetryCall::failures) + 1;
                Some(Step::Send(Transmit { request, purpose: Purpose::Lookup, attempt }))
            }
            Ok(Next::Done(verdict)) => {
                self.settle_search(core, verdict);
                None
            }
            Err(_) => {
                self.search_failed(core);
                None
            }
        }
    }

    fn lookup_answered<B: AsRef<[u8]>>(
        &mut self,
        core: &mut ClientCore,
        now: Instant,
        generation: u64,
        response: &http::Response<B>,
    ) {
        if !response.status().is_success() {
            let error = FromHttpResponseError::Api(ApiError::from_body(response.status(), response.body().as_ref()));
            let signal = answer_signal(&error, response.status(), retry_after(response.headers()));
            return self.lookup_failed(core, now, generation, &signal);
        }
        let Some((search, _)) = self.search.as_mut() else { return };
        match search.handle(response) {
            Ok(Some(verdict)) => self.settle_search(core, verdict),
            Ok(None) => self.lookup_retry = None,
            Err(_) => self.search_failed(core),
        }
    }

    /// A lookup failed: it is a query, so it is retried as one (the search asks for the same thing again), and
    /// a rejected token is renewed; when retrying cannot help, the create stays in doubt.
    fn lookup_failed(&mut self, core: &mut ClientCore, now: Instant, generation: u64, signal: &Signal<'_>) {
        let retry = self.lookup_retry.get_or_insert(RetryCall::new(core.config.retry, true));
        let (class, decision) = judge(retry, core, signal);
        pause_if_throttled(core, &mut self.events, now, class, decision);
        match decision {
            RetryDecision::RetryAfter(delay) => {
                let attempt = self.lookup_retry.as_ref().map_or(1, RetryCall::failures);
                self.events.push_back(Event::Retry { purpose: Purpose::Lookup, attempt, delay, reason: class });
                self.state = State::Backoff(now + delay);
            }
            RetryDecision::RenewTokenAndRetry => {
                core.session.handle_rejected(generation);
                self.events.push_back(Event::TokenRejected { generation });
                self.lease = None;
                self.exchanges = 0;
            }
            RetryDecision::GiveUp(_) => self.search_failed(core),
        }
    }

    /// Found: the call returns what the lost attempt made. Absent: the create is sent again if its attempts
    /// allow, and otherwise fails with its last error, now known not to have acted.
    fn settle_search(&mut self, core: &mut ClientCore, verdict: Verdict) {
        let Some((_, error)) = self.search.take() else { return };
        self.in_doubt = false;
        match verdict {
            Verdict::Found(answer) => {
                self.events.push_back(Event::Reconciled { found: true });
                let result = E::try_from_http_response(&answer).map(Some).map_err(CallError::from_answer);
                self.finish(core, result);
            }
            Verdict::Absent => {
                self.events.push_back(Event::Reconciled { found: false });
                if self.retry.failures() >= core.config.retry.max_attempts {
                    self.finish(core, Err(error));
                }
            }
        }
    }

    /// The search could not conclude: the create stays in doubt.
    fn search_failed(&mut self, core: &mut ClientCore) {
        if let Some((_, error)) = self.search.take() {
            self.finish(core, Err(error));
        }
    }

    fn renewal_failed(
        &mut self,
        core: &mut ClientCore,
        now: Instant,
        purpose: Purpose,
        (class, decision): (FailureClass, RetryDecision),
        error: CallError<T>,
    ) {
        self.paced = false;
        let attempt = self.renew_retry.as_ref().map_or(1, RetryCall::failures);
        pause_if_throttled(core, &mut self.events, now, class, decision);
        match decision {
            RetryDecision::RetryAfter(delay) => {
                // The exchange is repeated; it does not count as another one.
                self.exchanges = self.exchanges.saturating_sub(1);
                self.events.push_back(Event::Retry { purpose, attempt, delay, reason: class });
                self.state = State::Backoff(now + delay);
            }
            _ => {
                core.end_renewal(self.id);
                self.finish(core, Err(error));
            }
        }
    }

    /// Stores the result; a failure of a call that is not idempotent whose last attempt may have been acted on
    /// becomes [`CallError::OutcomeUnknown`].
    fn finish(&mut self, core: &mut ClientCore, result: Result<Option<E::Response>, CallError<T>>) {
        core.end_renewal(self.id);
        if self.forget_tokens {
            core.session.handle_logout();
        }
        let result = result.map_err(|e| {
            if E::META.idempotent || !self.in_doubt || matches!(self.goal, Goal::Token(_)) {
                e
            } else {
                CallError::OutcomeUnknown { endpoint: E::META.name, source: Box::new(e) }
            }
        });
        self.result = Some(result);
    }
}

/// Classifies a failed attempt and lets the call's retry bookkeeping decide, charging the shared quota.
fn judge(retry: &mut RetryCall, core: &mut ClientCore, signal: &Signal<'_>) -> (FailureClass, RetryDecision) {
    let quota = (core.config.retry_quota > 0).then_some(&mut core.quota);
    (classify(signal), retry.on_failure(signal, quota, &mut core.rng))
}

/// After the platform's throttling code, every call of the client pauses as long as the throttled one waits.
fn pause_if_throttled(
    core: &mut ClientCore,
    events: &mut VecDeque<Event>,
    now: Instant,
    class: FailureClass,
    decision: RetryDecision,
) {
    if class != FailureClass::Throttled {
        return;
    }
    let delay = match decision {
        RetryDecision::RetryAfter(delay) => delay,
        _ => core.config.retry.throttle_floor,
    };
    let until = now + delay;
    if core.paused_until.is_none_or(|p| p < until) {
        core.paused_until = Some(until);
    }
    events.push_back(Event::Throttled { until });
}

/// How a failed answer looks to the retry policy.
fn answer_signal(e: &FromHttpResponseError, status: http::StatusCode, retry_after: Option<Duration>) -> Signal<'_> {
    match e {
        FromHttpResponseError::Api(api) => Signal::Response {
            status: status.as_u16(),
            error_code: api.code.as_ref().map(crate::ErrorCode::as_str),
            retry_after,
        },
        FromHttpResponseError::Decode(_) => Signal::Decode,
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as an instant: the date parser reads a date against a `now`,
/// and read against the epoch a date is its distance from the epoch.
fn http_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    // The parser also takes delta-seconds, which a date is not.
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(parse_retry_after(value, SystemTime::UNIX_EPOCH)?)
}

/// The answer's `Retry-After` as a wait. The date form is measured against the answer's own `Date` header, so
/// the core needs no wall clock and a skewed client clock does no harm; without a `Date` the date form is
/// ignored and the policy's own delay applies.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return parse_retry_after(value, SystemTime::UNIX_EPOCH);
    }
    let sent = http_date(headers.get(http::header::DATE)?.to_str().ok()?)?;
    parse_retry_after(value, sent)
}

/// A login or refresh, or any call that only needs a fresh token: [`ClientCore::login`] and
/// [`ClientCore::renew`]. Driven like a [`Call`]; its result carries nothing but success.
#[derive(Debug)]
pub struct Renewal<T>(Call<'static, Login, T>);

impl<T> Renewal<T> {
    /// The instant the renewal gives up.
    pub fn deadline(&self) -> Instant {
        self.0.deadline()
    }

    /// Says what to do next at `now`; see [`Call::poll`].
    #[must_use = "the step says what the driver must do next"]
    pub fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<(), T> {
        match self.0.poll_inner(core, now) {
            Step::Send(t) => Step::Send(t),
            Step::Wait(i) => Step::Wait(i),
            Step::WaitForRenewal(i) => Step::WaitForRenewal(i),
            Step::Done(Ok(_)) => Step::Done(Ok(())),
            Step::Done(Err(e)) => Step::Done(Err(e)),
        }
    }

    /// See [`Call::handle_response`].
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        core: &mut ClientCore,
        now: Instant,
        response: http::Response<B>,
    ) {
        self.0.handle_response(core, now, response);
    }

    /// See [`Call::handle_failure`].
    pub fn handle_failure(&mut self, core: &mut ClientCore, now: Instant, failure: TransportFailure, error: T) {
        self.0.handle_failure(core, now, failure, error);
    }

    /// See [`Call::poll_event`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.0.poll_event()
    }

    /// See [`Call::abandon`].
    pub fn abandon(self, core: &mut ClientCore) {
        self.0.abandon(core);
    }
}

/// What a driver loop needs of a [`Call`] or a [`Renewal`]: both are driven the same way, so a driver writes its
/// loop once, generic over this trait. Each method is the inherent method of the same name.
pub trait Drive<T> {
    /// What the machine ends with: the endpoint's answer for a call, `()` for a renewal.
    type Output;
    /// See [`Call::poll`].
    #[must_use = "the step says what the driver must do next"]
    fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<Self::Output, T>;
    /// See [`Call::handle_response`].
    fn handle_response<B: AsRef<[u8]>>(&mut self, core: &mut ClientCore, now: Instant, response: http::Response<B>);
    /// See [`Call::handle_failure`].
    fn handle_failure(&mut self, core: &mut ClientCore, now: Instant, failure: TransportFailure, error: T);
    /// See [`Call::poll_event`].
    #[must_use]
    fn poll_event(&mut self) -> Option<Event>;
    /// See [`Call::deadline`].
    fn deadline(&self) -> Instant;
    /// See [`Call::abandon`].
    fn abandon(self, core: &mut ClientCore);
}

impl<E: Endpoint, T> Drive<T> for Call<'_, E, T> {
    type Output = E::Response;
    fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<E::Response, T> {
        Call::poll(self, core, now)
    }
    fn handle_response<B: AsRef<[u8]>>(&mut self, core: &mut ClientCore, now: Instant, response: http::Response<B>) {
        Call::handle_response(self, core, now, response);
    }
    fn handle_failure(&mut self, core: &mut ClientCore, now: Instant, failure: TransportFailure, error: T) {
        Call::handle_failure(self, core, now, failure, error);
    }
    fn poll_event(&mut self) -> Option<Event> {
        Call::poll_event(self)
    }
    fn deadline(&self) -> Instant {
        Call::deadline(self)
    }
    fn abandon(self, core: &mut ClientCore) {
        Call::abandon(self, core);
    }
}

impl<T> Drive<T> for Renewal<T> {
    type Output = ();
    fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<(), T> {
        Renewal::poll(self, core, now)
    }
    fn handle_response<B: AsRef<[u8]>>(&mut self, core: &mut ClientCore, now: Instant, response: http::Response<B>) {
        Renewal::handle_response(self, core, now, response);
    }
    fn handle_failure(&mut self, core: &mut ClientCore, now: Instant, failure: TransportFailure, error: T) {
        Renewal::handle_failure(self, core, now, failure, error);
    }
    fn poll_event(&mut self) -> Option<Event> {
        Renewal::poll_event(self)
    }
    fn deadline(&self) -> Instant {
        Renewal::deadline(self)
    }
    fn abandon(self, core: &mut ClientCore) {
        Renewal::abandon(self, core);
    }
}

/// A paged walk as a machine on top of [`Call`]: it says which page to ask for, checks each page against the
/// walk's integrity rules, and says how the walk ended.
///
/// ```text
/// while let Some(request) = walker.next_request() {
///     let page = run(core.call(request, now))?;   // drive the call as usual
///     walker.handle_page(&page);                   // then hand the page to the user
/// }
/// walker.outcome()
/// ```
pub struct PageWalker<E>
where
    E: Paged,
    E::Response: Page,
{
    request: E,
    walk: Walk<<E::Response as Page>::Item>,
    stopped: Option<WalkStop>,
}

impl<E> fmt::Debug for PageWalker<E>
where
    E: Paged,
    E::Response: Page,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageWalker").field("request", &self.request).field("stopped", &self.stopped).finish()
    }
}

/// Why a walk did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalkStop {
    /// The pages did not add up: items may have been lost or repeated.
    Walk(WalkError),
    /// A call of the walk failed.
    CallFailed,
}

impl<E> PageWalker<E>
where
    E: Paged,
    E::Response: Page,
    <E::Response as Page>::Item: Clone + PartialEq,
{
    /// A walk of `request` from its `pageNo` (0 when unset) with its `pageSize` (the family's default when unset),
    /// fetching at most `max_pages` pages.
    pub fn new(request: E, max_pages: u32) -> Result<Self, PagerError> {
        let walk =
            Walk::new(<E::Response as Page>::LIMITS, request.page_size(), request.page_no().unwrap_or(0), max_pages)?;
        Ok(Self { request, walk, stopped: None })
    }

    /// The request for the next page, or `None` once the walk has ended. Call it before each page.
    #[must_use]
    pub fn next_request(&mut self) -> Option<&E> {
        if self.stopped.is_some() {
            return None;
        }
        let PageRequest { page_no, page_size } = self.walk.next_request()?;
        self.request.set_page(page_no, page_size);
        Some(&self.request)
    }

    /// Checks the page the last request brought back; `Err` when the pages no longer add up, which ends the
    /// walk. Call it with every page before handing the page on.
    pub fn handle_page(&mut self, page: &E::Response) -> Result<(), WalkError> {
        match self.walk.handle_page(page) {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Records that the call for the last request failed, which ends the walk.
    pub fn handle_call_failed(&mut self) {
        self.stopped = Some(WalkStop::CallFailed);
    }

    /// How the walk ended: `Ok` with the reason the listing is complete, `Err` with the reason it is not; `None`
    /// while it goes on.
    #[must_use]
    pub fn outcome(&self) -> Option<Result<StopReason, WalkStop>> {
        if let Some(stopped) = &self.stopped {
            return Some(Err(stopped.clone()));
        }
        self.walk.outcome().map(|o| o.clone().map_err(WalkStop::Walk))
    }
}

/// A page's items in the order they were sent, each unreadable one as `Err` in its place; both drivers' item
/// walks yield this.
pub fn items_in_order<P: Page>(page: P) -> impl Iterator<Item = Result<P::Item, iot_model::RejectedItem>> {
    let mut rejected = page.rejected().to_vec().into_iter().peekable();
    let total = page.item_count();
    let mut readable = page.into_items().into_iter();
    (0..total).filter_map(move |position| match rejected.next_if(|r| r.index == position) {
        Some(r) => Some(Err(r)),
        // An index past the readable items (a page built by hand) still yields its rejected item.
        None => readable.next().map(Ok).or_else(|| rejected.next().map(Err)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::QueryUpgradeTaskList;

    fn core(limit: RateLimit) -> ClientCore {
        let mut config = CoreConfig::new(
            BaseUrl::parse("https://iot.example.com:8743").unwrap(),
            AppId::new("app").unwrap(),
            AppSecret::new("secret"),
        );
        config.rate_limit = limit;
        ClientCore::new(config, 1)
    }

    #[test]
    fn a_request_that_breaks_the_contract_ends_before_anything_is_sent_or_counted() {
        let now = Instant::now();
        // One call a minute: a slot spent on the invalid request would hold the next call for a minute.
        let mut core = core(RateLimit::new(1, Duration::from_secs(60)));
        let invalid = QueryUpgradeTaskList::new().with_page_size(0);
        let mut call = core.call::<_, ()>(&invalid, now);
        match call.poll(&mut core, now) {
            Step::Done(Err(CallError::Invalid(e))) => assert_eq!(e.field, "pageSize"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(call.poll(&mut core, now), Step::Done(Err(CallError::Finished))));
        let valid = QueryUpgradeTaskList::new();
        let mut call = core.call::<_, ()>(&valid, now);
        match call.poll(&mut core, now) {
            Step::Send(t) => assert_eq!(t.purpose, Purpose::Login),
            other => panic!("{other:?}"),
        }
        assert_eq!(core.session_state(now), SessionState::NoToken);
    }
}
