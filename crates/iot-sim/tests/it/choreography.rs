//! The client's choreography (iot-proto's sans-IO `ClientCore`, `Call`, `Renewal` and `PageWalker`) wired
//! straight to the simulator's pure core on a virtual clock: no sockets, no threads, no sleeping.
//!
//! A [`harness::Platform`] owns the simulator and the clock and stands between the machines and the simulator,
//! where an injector may drop a request or replace or rewrite its answer. [`harness::drive`] runs one call to
//! its end; [`harness::Executor`] runs several at once by hand, in a fixed order, so that single flight and
//! pauses shared between calls show without threads.

use std::time::{Duration, Instant};

use iot_model::{CreateUpgradeTask, DeviceId, FileType, OperateDevices, OperationId, SubOperationInfo};
use iot_proto::call::{Call, CallError, ClientCore, Event, PageWalker, Purpose, Renewal, Step, WalkStop};
use iot_proto::pager::{PagerError, StopReason, WalkError};
use iot_proto::ratelimit::RateLimit;
use iot_proto::retry::{FailureClass, Jitter, RetryPolicy, TransportFailure};
use iot_proto::session::SessionState;
use iot_proto::{CreateFirmwareUpgradeTask, ErrorCode, QuerySubOperations, QueryUpgradeTask, QueryUpgradeTaskList};
use iot_sim::sim::fleet::{Device, FleetSpec};
use iot_sim::sim::{Faults, SimConfig};

use harness::{Executor, Fault, Lost, Machine, Platform, drive, faults, walk};

/// The virtual clock, the platform between the machines and the simulator, and the drivers.
mod harness {
    use std::fmt;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use iot_model::{AppId, AppSecret, LoginForm};
    use iot_proto::call::{Call, CallError, ClientCore, CoreConfig, Event, PageWalker, Purpose, Renewal, Step};
    use iot_proto::call::{WalkStop, items_in_order};
    use iot_proto::pager::StopReason;
    use iot_proto::retry::TransportFailure;
    use iot_proto::{BaseUrl, Endpoint, Login, Page, Paged};
    use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};

    use crate::support::T0;

    /// A monotonic `Instant` for the machines and a `SystemTime` for the simulator, moved together in whole
    /// milliseconds so that the two never disagree.
    pub struct VirtualClock {
        instant0: Instant,
        system0: SystemTime,
        elapsed: Duration,
    }

    impl VirtualClock {
        pub fn new() -> Self {
            Self { instant0: Instant::now(), system0: UNIX_EPOCH + Duration::from_secs(T0), elapsed: Duration::ZERO }
        }

        pub fn now(&self) -> Instant {
            self.instant0 + self.elapsed
        }

        pub fn system(&self) -> SystemTime {
            self.system0 + self.elapsed
        }

        /// Milliseconds since the start.
        pub fn ms(&self) -> u64 {
            u64::try_from(self.elapsed.as_millis()).unwrap()
        }

        pub fn advance_ms(&mut self, ms: u64) {
            self.elapsed += Duration::from_millis(ms);
        }

        /// Moves to `t`, rounded up to the next millisecond (jittered delays are finer), never backwards.
        pub fn advance_to(&mut self, t: Instant) {
            let nanos = t.saturating_duration_since(self.instant0).as_nanos();
            let ms = u64::try_from(nanos.div_ceil(1_000_000)).unwrap();
            self.elapsed = self.elapsed.max(Duration::from_millis(ms));
        }

        /// The instant `ms` milliseconds after the start.
        pub fn at_ms(&self, ms: u64) -> Instant {
            self.instant0 + Duration::from_millis(ms)
        }
    }

    /// The driver's transport error: which failure the injector made up.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Lost(pub TransportFailure);

    impl fmt::Display for Lost {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "injected transport failure {:?}", self.0)
        }
    }

    impl std::error::Error for Lost {}

    /// A rewrite of the simulator's answer.
    pub type Rewrite = Box<dyn FnOnce(http::Response<Vec<u8>>) -> http::Response<Vec<u8>>>;

    /// What happens to one request between the machine and the simulator.
    pub enum Fault {
        /// The simulator answers.
        Pass,
        /// No answer arrives. A failure after which the request may have been sent (`ResetAfterSend`,
        /// `Timeout`) still reaches the simulator, which acts on it; the others never reach it.
        Drop(TransportFailure),
        /// This answer arrives instead; the simulator never sees the request.
        Answer(http::Response<Vec<u8>>),
        /// The simulator answers and the answer is rewritten on its way back.
        Rewrite(Rewrite),
    }

    /// Decides, per request, what happens to it.
    pub type Injector = Box<dyn FnMut(&Seen<'_>) -> Fault>;

    /// What the injector knows about a request.
    pub struct Seen<'a> {
        /// Index of the request among all the machines sent, from 0.
        pub n: usize,
        pub purpose: Purpose,
        pub attempt: u32,
        /// `"{METHOD} {last path segment}"`, with `#{pageNo}` for paged queries.
        pub label: &'a str,
    }

    /// One request the machines sent, and what came of it.
    #[derive(Clone, Debug)]
    pub struct Record {
        pub at_ms: u64,
        pub purpose: Purpose,
        pub attempt: u32,
        pub label: String,
        /// `"200"`, `"403/1010009"`, or `"lost(ConnectFailed)"`.
        pub outcome: String,
        /// The `Authorization` header sent, for checking which token a request carried.
        pub bearer: Option<String>,
    }

    impl Record {
        pub fn line(&self) -> String {
            format!("{} -> {}", self.label, self.outcome)
        }
    }

    /// The simulator, the clock, the injector and a log of every request.
    pub struct Platform {
        pub sim: Simulator,
        pub clock: VirtualClock,
        /// Time from sending a request to its answer.
        pub latency_ms: u64,
        pub log: Vec<Record>,
        injector: Option<Injector>,
    }

    impl Platform {
        pub fn new(config: SimConfig) -> Self {
            Self {
                sim: Simulator::new(config),
                clock: VirtualClock::new(),
                latency_ms: 0,
                log: Vec::new(),
                injector: None,
            }
        }

        pub fn with_latency(mut self, ms: u64) -> Self {
            self.latency_ms = ms;
            self
        }

        pub fn inject(&mut self, injector: impl FnMut(&Seen<'_>) -> Fault + 'static) {
            self.injector = Some(Box::new(injector));
        }

        pub fn config(&self) -> CoreConfig {
            let base = BaseUrl::parse("http://sim.test").unwrap();
            CoreConfig::new(base, AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(DEFAULT_SECRET))
        }

        /// A core for the default app with the platform's usual rules and a fixed jitter seed.
        pub fn core(&self) -> ClientCore {
            ClientCore::new(self.config(), 7)
        }

        /// Sends one request at the current time: the injector decides, the simulator answers.
        pub fn exchange(&mut self, purpose: Purpose, attempt: u32, request: http::Request<Vec<u8>>) -> Answer {
            let label = label(purpose, &request);
            let bearer = request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
            let fault = match &mut self.injector {
                Some(inject) => inject(&Seen { n: self.log.len(), purpose, attempt, label: &label }),
                None => Fault::Pass,
            };
            let now = self.clock.system();
            let answer = match fault {
                Fault::Pass => Ok(self.sim.handle(now, request)),
                Fault::Drop(failure) => {
                    if failure.request_may_have_been_sent() {
                        let _lost = self.sim.handle(now, request);
                    }
                    Err(failure)
                }
                Fault::Answer(response) => Ok(response),
                Fault::Rewrite(rewrite) => Ok(rewrite(self.sim.handle(now, request))),
            };
            let outcome = match &answer {
                Ok(response) => outcome_of(response),
                Err(failure) => format!("lost({failure:?})"),
            };
            self.log.push(Record { at_ms: self.clock.ms(), purpose, attempt, label, outcome, bearer });
            answer
        }

        /// The log as `"label -> outcome"` lines.
        pub fn trace(&self) -> Vec<String> {
            self.log.iter().map(Record::line).collect()
        }

        /// The log from request `from` on.
        pub fn trace_from(&self, from: usize) -> Vec<String> {
            self.log[from..].iter().map(Record::line).collect()
        }

        pub fn sent(&self, purpose: Purpose) -> usize {
            self.log.iter().filter(|r| r.purpose == purpose).count()
        }

        /// Answers whose outcome was exactly `outcome` (`"403/1010009"`, say).
        pub fn answered(&self, outcome: &str) -> usize {
            self.log.iter().filter(|r| r.outcome == outcome).count()
        }

        /// Logs in from elsewhere with the same credentials, as another process of the application would: the
        /// platform invalidates every token issued before.
        pub fn login_elsewhere(&mut self) {
            let config = self.config();
            let login = Login::new(LoginForm::new(config.app_id, config.secret));
            let request = login.try_into_http_request(&config.base_url, None).unwrap();
            let now = self.clock.system();
            assert_eq!(self.sim.handle(now, request).status(), 200);
        }
    }

    impl Platform {
        /// Asks the simulator, outside the client, whether it accepts `authorization` (a whole `Bearer ...`
        /// header); returns the outcome as in the log.
        pub fn probe(&mut self, authorization: &str) -> String {
            let config = self.config();
            let token = iot_model::AccessToken::new(authorization.trim_start_matches("Bearer "));
            let auth = iot_proto::BearerAuth { app_id: &config.app_id, token: &token };
            let request = iot_proto::QueryUpgradeTaskList::new().try_into_http_request(&config.base_url, Some(auth));
            let now = self.clock.system();
            outcome_of(&self.sim.handle(now, request.unwrap()))
        }
    }

    /// What came back for a request.
    pub type Answer = Result<http::Response<Vec<u8>>, TransportFailure>;

    fn label(purpose: Purpose, request: &http::Request<Vec<u8>>) -> String {
        match purpose {
            Purpose::Login => "login".to_owned(),
            Purpose::Refresh => "refresh".to_owned(),
            _ => {
                let tail = request.uri().path().rsplit('/').next().unwrap_or_default();
                let page = request
                    .uri()
                    .query()
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("pageNo=")))
                    .map(|n| format!("#{n}"))
                    .unwrap_or_default();
                format!("{} {tail}{page}", request.method())
            }
        }
    }

    fn outcome_of(response: &http::Response<Vec<u8>>) -> String {
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        match body.get("error_code").and_then(serde_json::Value::as_str) {
            Some(code) => format!("{}/{code}", response.status().as_u16()),
            None => response.status().as_u16().to_string(),
        }
    }

    /// A call or a renewal, seen by the drivers.
    pub trait Machine {
        type Output;
        fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<Self::Output, Lost>;
        fn answer(&mut self, core: &mut ClientCore, now: Instant, answer: Answer);
        fn next_event(&mut self) -> Option<Event>;
    }

    impl<E: Endpoint> Machine for Call<'_, E, Lost> {
        type Output = E::Response;

        fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<E::Response, Lost> {
            Call::poll(self, core, now)
        }

        fn answer(&mut self, core: &mut ClientCore, now: Instant, answer: Answer) {
            match answer {
                Ok(response) => self.handle_response(core, now, response),
                Err(failure) => self.handle_failure(core, now, failure, Lost(failure)),
            }
        }

        fn next_event(&mut self) -> Option<Event> {
            self.poll_event()
        }
    }

    impl Machine for Renewal<Lost> {
        type Output = ();

        fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<(), Lost> {
            Renewal::poll(self, core, now)
        }

        fn answer(&mut self, core: &mut ClientCore, now: Instant, answer: Answer) {
            match answer {
                Ok(response) => self.handle_response(core, now, response),
                Err(failure) => self.handle_failure(core, now, failure, Lost(failure)),
            }
        }

        fn next_event(&mut self) -> Option<Event> {
            self.poll_event()
        }
    }

    /// How a machine ended.
    pub type Outcome<R> = Result<R, CallError<Lost>>;

    /// Bounds every driver loop, so that a machine that never ends fails the test instead of hanging it.
    const MAX_STEPS: usize = 100_000;

    /// Runs one machine to its end: sends through the platform (the answer arrives `latency_ms` later), waits
    /// by moving the clock. A lone call never waits for another's renewal.
    pub fn drive<M: Machine>(
        core: &mut ClientCore,
        p: &mut Platform,
        mut machine: M,
    ) -> (Result<M::Output, CallError<Lost>>, Vec<Event>) {
        let mut events = Vec::new();
        for _ in 0..MAX_STEPS {
            let now = p.clock.now();
            let step = machine.poll(core, now);
            events.extend(std::iter::from_fn(|| machine.next_event()));
            // A lone machine has no one to wake; the flag is cleared so that it cannot leak into a later run.
            let _no_waiters = core.take_wakeup();
            match step {
                Step::Send(transmit) => {
                    let answer = p.exchange(transmit.purpose, transmit.attempt, transmit.request);
                    p.clock.advance_ms(p.latency_ms);
                    machine.answer(core, p.clock.now(), answer);
                    events.extend(std::iter::from_fn(|| machine.next_event()));
                }
                Step::Wait(until) => {
                    assert!(until > now, "a wait must move time forward");
                    p.clock.advance_to(until);
                }
                Step::WaitForRenewal(_) => panic!("a lone call waits for a renewal no one runs"),
                Step::Done(result) => return (result, events),
            }
        }
        panic!("the call did not end in {MAX_STEPS} steps");
    }

    /// Runs a call of `request` to its end.
    pub fn call<E: Endpoint>(
        core: &mut ClientCore,
        p: &mut Platform,
        request: &E,
    ) -> (Result<E::Response, CallError<Lost>>, Vec<Event>) {
        let call = core.call(request, p.clock.now());
        drive(core, p, call)
    }

    /// A finished walk: the items in order, the pages, and how it ended.
    pub struct WalkRun<I> {
        pub items: Vec<I>,
        pub pages: usize,
        pub outcome: Result<StopReason, WalkStop>,
        pub failure: Option<CallError<Lost>>,
    }

    /// Walks `request` with a [`PageWalker`], one call per page, `think_ms` of the user's time between pages.
    pub fn walk<E>(
        core: &mut ClientCore,
        p: &mut Platform,
        request: E,
        think_ms: u64,
    ) -> WalkRun<<E::Response as Page>::Item>
    where
        E: Paged,
        E::Response: Page,
        <E::Response as Page>::Item: Clone + PartialEq,
    {
        let mut walker = PageWalker::new(request, core.config().max_pages).unwrap();
        let mut run = WalkRun { items: Vec::new(), pages: 0, outcome: Ok(StopReason::EmptyPage), failure: None };
        while let Some(request) = walker.next_request() {
            let (result, _) = call(core, p, request);
            match result {
                Ok(page) => {
                    run.pages += 1;
                    // A page that breaks the walk is not handed on.
                    if walker.handle_page(&page).is_ok() {
                        run.items.extend(items_in_order(page).map(Result::unwrap));
                    }
                }
                Err(e) => {
                    walker.handle_call_failed();
                    run.failure = Some(e);
                }
            }
            p.clock.advance_ms(think_ms);
        }
        run.outcome = walker.outcome().expect("a walk that asks for nothing more has an outcome");
        run
    }

    /// Where one machine of an [`Executor`] stands.
    enum Slot<R> {
        Ready,
        InFlight {
            until: Instant,
            answer: Answer,
        },
        Sleeping(Instant),
        /// Waiting in `Step::WaitForRenewal` for a wakeup or this instant.
        Parked(Instant),
        Done(Option<Result<R, CallError<Lost>>>),
    }

    /// Runs several machines "concurrently" on the virtual clock, deterministically: ready machines are polled
    /// in index order, answers arrive `latency_ms` after their request, and a renewal that ends wakes every
    /// parked machine, as a driver's notification would.
    pub struct Executor<M: Machine> {
        machines: Vec<M>,
        slots: Vec<Slot<M::Output>>,
        pub events: Vec<Vec<Event>>,
        /// How many times a machine was parked in `WaitForRenewal`.
        pub parked: usize,
    }

    impl<M: Machine> Executor<M> {
        pub fn new(machines: Vec<M>) -> Self {
            let n = machines.len();
            Self { machines, slots: (0..n).map(|_| Slot::Ready).collect(), events: vec![Vec::new(); n], parked: 0 }
        }

        fn poll(&mut self, i: usize, core: &mut ClientCore, p: &mut Platform) {
            let now = p.clock.now();
            let step = self.machines[i].poll(core, now);
            self.drain(i);
            self.slots[i] = match step {
                Step::Send(t) => {
                    let answer = p.exchange(t.purpose, t.attempt, t.request);
                    Slot::InFlight { until: now + Duration::from_millis(p.latency_ms), answer }
                }
                Step::Wait(until) => {
                    assert!(until > now, "a wait must move time forward");
                    Slot::Sleeping(until)
                }
                Step::WaitForRenewal(until) => {
                    self.parked += 1;
                    Slot::Parked(until)
                }
                Step::Done(result) => Slot::Done(Some(result)),
            };
            self.wake(core);
        }

        fn drain(&mut self, i: usize) {
            let machine = &mut self.machines[i];
            self.events[i].extend(std::iter::from_fn(|| machine.next_event()));
        }

        fn wake(&mut self, core: &mut ClientCore) {
            if core.take_wakeup() {
                for slot in &mut self.slots {
                    if matches!(slot, Slot::Parked(_)) {
                        *slot = Slot::Ready;
                    }
                }
            }
        }

        /// Runs every machine to its end; returns the results in index order.
        pub fn run(mut self, core: &mut ClientCore, p: &mut Platform) -> (Vec<Outcome<M::Output>>, Self) {
            for _ in 0..MAX_STEPS {
                if let Some(i) = self.slots.iter().position(|s| matches!(s, Slot::Ready)) {
                    self.poll(i, core, p);
                    continue;
                }
                let next = self
                    .slots
                    .iter()
                    .filter_map(|s| match s {
                        Slot::InFlight { until, .. } | Slot::Sleeping(until) | Slot::Parked(until) => Some(*until),
                        _ => None,
                    })
                    .min();
                let Some(next) = next else {
                    let results = self
                        .slots
                        .iter_mut()
                        .map(|s| match s {
                            Slot::Done(r) => r.take().unwrap(),
                            _ => unreachable!("every machine is done"),
                        })
                        .collect();
                    return (results, self);
                };
                p.clock.advance_to(next);
                let now = p.clock.now();
                for i in 0..self.slots.len() {
                    match std::mem::replace(&mut self.slots[i], Slot::Ready) {
                        Slot::InFlight { until, answer } if until <= now => {
                            self.machines[i].answer(core, now, answer);
                            self.drain(i);
                            self.wake(core);
                            // The driver polls again at once, as a task that got its answer would.
                            self.poll(i, core, p);
                        }
                        Slot::Sleeping(until) | Slot::Parked(until) if until <= now => {}
                        other => self.slots[i] = other,
                    }
                }
            }
            panic!("the machines did not end in {MAX_STEPS} steps");
        }
    }

    /// Answers to inject.
    pub mod faults {
        use iot_proto::{ApiError, ErrorCode};

        fn platform_error(code: ErrorCode, status: u16, retry_after: Option<u64>) -> http::Response<Vec<u8>> {
            let mut error = ApiError::new(code, "injected");
            error.status = http::StatusCode::from_u16(status).unwrap();
            let mut response = iot_proto::server::error_response(&error);
            if let Some(secs) = retry_after {
                response.headers_mut().insert(http::header::RETRY_AFTER, secs.into());
            }
            response
        }

        /// The platform's error answer for `code`, at the code's usual status.
        pub fn refused(code: ErrorCode) -> http::Response<Vec<u8>> {
            iot_proto::server::error_response(&ApiError::new(code, "injected"))
        }

        /// 403/1010009, the platform's throttling answer, with or without `Retry-After`.
        pub fn throttled(retry_after: Option<u64>) -> http::Response<Vec<u8>> {
            platform_error(ErrorCode::Throttled, 403, retry_after)
        }

        /// 401/1010005, a rejected access token.
        pub fn token_rejected() -> http::Response<Vec<u8>> {
            platform_error(ErrorCode::TokenInvalid, 401, None)
        }

        /// 400/50400, the refresh token refused.
        pub fn refresh_refused() -> http::Response<Vec<u8>> {
            platform_error(ErrorCode::InvalidRefreshInput, 400, None)
        }

        /// A 503 from something in front of the platform: no platform code, an HTML body.
        pub fn unavailable(retry_after: Option<u64>) -> http::Response<Vec<u8>> {
            let mut builder = http::Response::builder().status(503).header(http::header::CONTENT_TYPE, "text/html");
            if let Some(secs) = retry_after {
                builder = builder.header(http::header::RETRY_AFTER, secs);
            }
            builder.body(b"<html><body>Service Unavailable</body></html>".to_vec()).unwrap()
        }

        /// The answer with its JSON body changed by `edit`.
        pub fn edit_json(
            response: http::Response<Vec<u8>>,
            edit: impl FnOnce(&mut serde_json::Value),
        ) -> http::Response<Vec<u8>> {
            let (parts, body) = response.into_parts();
            let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            edit(&mut json);
            http::Response::from_parts(parts, serde_json::to_vec(&json).unwrap())
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers shared by the scenarios.

const WATER_METER: (&str, &str, &str) = ("WaterMeter", "WM-200", "Acme Metering");

/// A platform without the simulator's rate limit, with upgrades that never fail (so listings are stable), and
/// enough water meters (about half of the fleet) for a task of 256.
fn quiet_config() -> SimConfig {
    SimConfig::default().with_rate_limit(None).with_failure_rate(0.0).with_fleet_size(600)
}

/// A firmware upgrade task of `n` (at most 256) water meters of the default fleet.
fn create_task_request(p: &Platform, n: usize) -> CreateFirmwareUpgradeTask {
    let (device_type, model, _) = WATER_METER;
    let devices: Vec<DeviceId> = p
        .sim
        .devices()
        .iter()
        .filter(|d| d.device_type == device_type && d.model == model)
        .take(n)
        .map(|d| d.device_id.clone())
        .collect();
    assert_eq!(devices.len(), n, "the fleet has enough water meters");
    let package = newest_firmware(p);
    CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(package, OperateDevices::new().with_devices(devices)))
}

fn newest_firmware(p: &Platform) -> iot_model::FileId {
    let (device_type, model, _) = WATER_METER;
    p.sim
        .packages()
        .iter()
        .rfind(|pk| {
            pk.file_type == Some(FileType::FirmwarePackage)
                && pk.device_type.as_deref() == Some(device_type)
                && pk.model.as_deref() == Some(model)
        })
        .unwrap()
        .file_id
        .clone()
}

fn create_task(core: &mut ClientCore, p: &mut Platform, n: usize) -> OperationId {
    let request = create_task_request(p, n);
    harness::call(core, p, &request).0.unwrap().operation_id
}

/// Every subtask of a task as the simulator lists it, fetched outside the client (100 per page) by a login of
/// its own, which invalidates the client's tokens: call it once the client is done.
fn sim_listing(p: &mut Platform, id: &OperationId) -> Vec<(String, String)> {
    let mut core = p.core();
    let mut out = Vec::new();
    for page_no in 0.. {
        let request = QuerySubOperations::new(id.clone()).with_page_no(page_no).with_page_size(100);
        let page = harness::call(&mut core, p, &request).0.unwrap();
        if page.data.is_empty() {
            break;
        }
        out.extend(page.data.iter().map(ids));
    }
    out
}

fn ids(s: &SubOperationInfo) -> (String, String) {
    (s.sub_operation_id.to_string(), s.device_id.as_ref().unwrap().to_string())
}

fn retries(events: &[Event]) -> Vec<(Purpose, Duration, FailureClass)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Retry { purpose, delay, reason, .. } => Some((*purpose, *delay, *reason)),
            _ => None,
        })
        .collect()
}

/// Runs `core.login(now)` or `core.renew(now)` to its end.
fn renewal(
    core: &mut ClientCore,
    p: &mut Platform,
    start: fn(&mut ClientCore, Instant) -> Renewal<Lost>,
) -> (Result<(), CallError<Lost>>, Vec<Event>) {
    let machine = start(core, p.clock.now());
    drive(core, p, machine)
}

fn waits_until<R>(step: Step<R, Lost>) -> Option<Instant> {
    match step {
        Step::Wait(t) => Some(t),
        _ => None,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Token expiry in the middle of a paged walk.

/// The walk outlives the access token (120 s here); the session refreshes it ahead of its expiry, once, with the
/// refresh token, and no page is skipped or repeated.
#[test]
fn a_walk_across_the_token_expiry_refreshes_once_ahead_of_time() {
    let mut p = Platform::new(quiet_config().with_token_lifetime(Duration::from_secs(120)));
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 200);
    // 20 pages, 5 s of the user's time after each: the walk spans 100 s and crosses the refresh point, 60 s
    // (half the short lifetime) after the login.
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id.clone()), 5_000);
    assert_eq!(run.outcome, Ok(StopReason::TotalReached));
    assert_eq!(run.pages, 20);
    let trace = p.trace();
    assert_eq!(trace[..2], ["login -> 200", "POST firmwareUpgrade -> 200"]);
    let mut expected: Vec<String> = (0..12).map(|n| format!("GET subOperations#{n} -> 200")).collect();
    expected.push("refresh -> 200".to_owned());
    expected.extend((12..20).map(|n| format!("GET subOperations#{n} -> 200")));
    assert_eq!(trace[2..], expected);
    let refresh = p.log.iter().find(|r| r.purpose == Purpose::Refresh).unwrap();
    assert_eq!(refresh.at_ms, 60_000);
    assert_eq!(core.session_state(p.clock.now()), SessionState::Valid);

    let walked: Vec<_> = run.items.iter().map(ids).collect();
    assert_eq!(walked, sim_listing(&mut p, &id), "nothing skipped, nothing repeated");
}

/// The platform ends the token before the `expiresIn` it announced (the login's answer is rewritten to claim an
/// hour while the simulator keeps 120 s): the page that meets the dead token draws 1010005, the token is
/// refreshed once and that page alone is asked again.
#[test]
fn a_token_that_dies_early_mid_walk_is_refreshed_once_and_the_page_asked_again() {
    let mut p = Platform::new(quiet_config().with_token_lifetime(Duration::from_secs(120))).with_latency(50);
    p.inject(|seen| match seen.purpose {
        Purpose::Login | Purpose::Refresh => {
            Fault::Rewrite(Box::new(|r| faults::edit_json(r, |j| j["expiresIn"] = 3600.into())))
        }
        _ => Fault::Pass,
    });
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 200);
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id.clone()), 9_000);
    assert_eq!(run.outcome, Ok(StopReason::TotalReached));
    assert_eq!(run.pages, 20);
    // Login at 0 ms, create at 50 ms, page n sent at 100 + n * 9050 ms: page 13 at 117 750 ms still meets the
    // first token, page 14 at 126 800 ms meets it dead.
    let trace = p.trace_from(2);
    let mut expected: Vec<String> = (0..14).map(|n| format!("GET subOperations#{n} -> 200")).collect();
    expected.push("GET subOperations#14 -> 403/1010005".to_owned());
    expected.push("refresh -> 200".to_owned());
    expected.extend((14..20).map(|n| format!("GET subOperations#{n} -> 200")));
    assert_eq!(trace, expected);
    assert_eq!((p.sent(Purpose::Login), p.sent(Purpose::Refresh)), (1, 1));
    let walked: Vec<_> = run.items.iter().map(ids).collect();
    assert_eq!(walked.len(), 200);
    assert_eq!(walked, sim_listing(&mut p, &id), "nothing skipped, nothing repeated");
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Single flight.

/// Shown by hand, step by step: the call that finds no token logs in, the other waits for it, and takes the
/// new token without a second login.
#[test]
fn single_flight_by_hand_one_login_while_another_call_waits() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task_request(&p, 3);
    let now = p.clock.now();
    let query = QueryUpgradeTask::new(OperationId::new("0123456789abcdef01234567").unwrap());
    let mut a = core.call::<_, Lost>(&id, now);
    let mut b = core.call::<_, Lost>(&query, now);

    let Step::Send(login) = a.poll(&mut core, now) else { panic!("A must log in") };
    assert_eq!(login.purpose, Purpose::Login);
    let Step::WaitForRenewal(until) = b.poll(&mut core, now) else { panic!("B must wait for A's login") };
    assert!(until <= b.deadline());
    assert!(!core.take_wakeup(), "no renewal has ended yet");

    let answer = p.exchange(login.purpose, login.attempt, login.request).unwrap();
    p.clock.advance_ms(30);
    a.handle_response(&mut core, p.clock.now(), answer);
    assert!(core.take_wakeup(), "the login ended: wake B");
    assert!(!core.take_wakeup(), "once per renewal");
    assert_eq!(a.poll_event(), Some(Event::Renewed { purpose: Purpose::Login, generation: 1 }));

    let now = p.clock.now();
    let Step::Send(create) = a.poll(&mut core, now) else { panic!("A sends its create") };
    let Step::Send(get) = b.poll(&mut core, now) else { panic!("B sends its query with the new token") };
    assert_eq!((create.purpose, get.purpose), (Purpose::Request, Purpose::Request));
    let token = |t: &http::Request<Vec<u8>>| t.headers()[http::header::AUTHORIZATION].clone();
    assert_eq!(token(&create.request), token(&get.request));
    let answer = p.exchange(create.purpose, create.attempt, create.request).unwrap();
    a.handle_response(&mut core, now, answer);
    let answer = p.exchange(get.purpose, get.attempt, get.request).unwrap();
    b.handle_response(&mut core, now, answer);
    assert!(matches!(a.poll(&mut core, now), Step::Done(Ok(_))));
    // The task id is made up: the platform's 404 reaches B as the platform's error, not as a token problem.
    let Step::Done(Err(CallError::Api(e))) = b.poll(&mut core, now) else { panic!("B ends with the 404") };
    assert_eq!(e.code, Some(ErrorCode::TaskNotFound));
    assert!(matches!(a.poll(&mut core, now), Step::Done(Err(CallError::Finished))));
    assert_eq!(
        p.trace(),
        ["login -> 200", "POST firmwareUpgrade -> 200", "GET 0123456789abcdef01234567 -> 404/123009"]
    );
}

/// Twenty calls in flight with a token that a login elsewhere has just invalidated: every one draws 1010005,
/// one renewal runs (the refresh token died with the login elsewhere, so a refused refresh and a login), the
/// other nineteen wait for it and retry once with the new token.
#[test]
fn twenty_calls_meeting_a_rejected_token_renew_it_once() {
    let mut p = Platform::new(quiet_config()).with_latency(40);
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 30);
    p.login_elsewhere();
    let from = p.log.len();
    let queries: Vec<QuerySubOperations> =
        (0..20).map(|n| QuerySubOperations::new(id.clone()).with_page_no(n % 3).with_page_size(10)).collect();
    let now = p.clock.now();
    let calls = queries.iter().map(|q| core.call::<_, Lost>(q, now)).collect();
    let (results, exec) = Executor::new(calls).run(&mut core, &mut p);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let trace = p.trace_from(from);
    assert_eq!(trace.iter().filter(|l| l.ends_with("-> 403/1010005")).count(), 20);
    assert_eq!(trace.iter().filter(|l| l.starts_with("refresh")).collect::<Vec<_>>(), ["refresh -> 400/50400"]);
    assert_eq!(trace.iter().filter(|l| l.starts_with("login")).collect::<Vec<_>>(), ["login -> 200"]);
    assert_eq!(trace.len(), 20 + 2 + 20);
    // The renewal started with the first rejection and everyone else parked until it ended.
    assert_eq!(trace[20..22], ["refresh -> 400/50400", "login -> 200"]);
    assert_eq!(exec.parked, 19);
    // 40 ms for the rejected round, two for the renewal, one for the retries.
    assert_eq!(p.clock.ms() - p.log[from].at_ms, 4 * 40);
    let rejected = exec.events.iter().flatten().filter(|e| matches!(e, Event::TokenRejected { generation: 1 })).count();
    assert_eq!(rejected, 20);
}

/// The same burst when only the access token was revoked (a logout elsewhere): the refresh token still lives,
/// so the one renewal is a refresh.
#[test]
fn twenty_calls_meeting_a_revoked_token_refresh_it_once() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 30);
    // Revoke the client's access token from elsewhere: the client's own logout request, sent by hand.
    let token = p.log[1].bearer.clone().unwrap().trim_start_matches("Bearer ").to_owned();
    let logout = http::Request::post("http://sim.test/iocm/app/sec/v1.1.0/logout")
        .header("app_key", iot_sim::sim::DEFAULT_APP_ID)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&serde_json::json!({ "accessToken": token })).unwrap())
        .unwrap();
    let now = p.clock.system();
    assert_eq!(p.sim.handle(now, logout).status(), 200);
    let from = p.log.len();
    let queries: Vec<QueryUpgradeTask> = (0..20).map(|_| QueryUpgradeTask::new(id.clone())).collect();
    let now = p.clock.now();
    let calls = queries.iter().map(|q| core.call::<_, Lost>(q, now)).collect();
    let (results, _) = Executor::new(calls).run(&mut core, &mut p);
    assert!(results.iter().all(Result::is_ok));
    let trace = p.trace_from(from);
    assert_eq!(trace.len(), 41);
    assert_eq!(trace[20], "refresh -> 200");
    assert_eq!((p.sent(Purpose::Login), p.sent(Purpose::Refresh)), (1, 1));
}

/// An answer 401/1010005 renews the token and retries once; a second one for the same call is the end of it, so
/// a platform that refuses every fresh token cannot make a call loop.
#[test]
fn a_rejected_token_is_renewed_once_per_call() {
    for rejections in [1, 2] {
        let mut p = Platform::new(quiet_config());
        let mut core = p.core();
        let id = create_task(&mut core, &mut p, 5);
        let from = p.log.len();
        p.inject(move |seen| {
            if seen.purpose == Purpose::Request && seen.n < from + 2 * rejections {
                Fault::Answer(faults::token_rejected())
            } else {
                Fault::Pass
            }
        });
        let (result, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id.clone()));
        let get = format!("GET {id}");
        if rejections == 1 {
            assert!(result.is_ok());
            assert_eq!(
                p.trace_from(from),
                [format!("{get} -> 401/1010005"), "refresh -> 200".into(), format!("{get} -> 200")]
            );
        } else {
            let Err(CallError::Api(e)) = result else { panic!("{result:?}") };
            assert!(e.is_token_invalid());
            assert_eq!(
                p.trace_from(from),
                [format!("{get} -> 401/1010005"), "refresh -> 200".into(), format!("{get} -> 401/1010005")]
            );
        }
        // The event announces a renewal: the second rejection ends the call instead.
        assert_eq!(events.iter().filter(|e| matches!(e, Event::TokenRejected { .. })).count(), 1);
    }
}

/// A create answered 1010005 was refused unprocessed: the token is renewed (a refresh) and the create sent again
/// once, with the new token; a renewal is session upkeep, not a retry, so nothing waits. `retry` is the policy.
fn create_with_a_rejected_token(retry: RetryPolicy) {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| {
        if seen.purpose == Purpose::Request && seen.attempt == 1 {
            Fault::Answer(faults::token_rejected())
        } else {
            Fault::Pass
        }
    });
    let mut config = p.config();
    config.retry = retry;
    let mut core = ClientCore::new(config, 7);
    let request = create_task_request(&p, 5);
    let (result, events) = harness::call(&mut core, &mut p, &request);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        p.trace(),
        ["login -> 200", "POST firmwareUpgrade -> 401/1010005", "refresh -> 200", "POST firmwareUpgrade -> 200"]
    );
    // The resent create carried the refreshed token (the simulator accepts no other once a refresh is issued).
    assert_ne!(p.log[3].bearer, p.log[1].bearer);
    assert_eq!(
        events,
        [
            Event::Renewed { purpose: Purpose::Login, generation: 1 },
            Event::TokenRejected { generation: 1 },
            Event::Renewed { purpose: Purpose::Refresh, generation: 2 },
        ]
    );
    assert_eq!(p.clock.ms(), 0, "nothing waited");
    assert_eq!(p.sim.task_counts(), (1, 0));
}

#[test]
fn a_create_with_a_rejected_token_is_renewed_and_resent_once() {
    create_with_a_rejected_token(RetryPolicy::default());
}

/// Renewing a rejected token is not a retry: a client with retries switched off still renews and resends once.
#[test]
fn an_expired_token_is_renewed_even_with_retries_disabled() {
    create_with_a_rejected_token(RetryPolicy::disabled());
}

// ---------------------------------------------------------------------------------------------------------------
// 3. A refused refresh falls back to a login.

#[test]
fn a_refused_refresh_falls_back_to_a_login() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| match seen.purpose {
        Purpose::Refresh => Fault::Answer(faults::refresh_refused()),
        _ => Fault::Pass,
    });
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 5);
    // 56 minutes on: inside the 5-minute refresh margin of the hour-long token.
    p.clock.advance_ms(56 * 60_000);
    let id_text = id.to_string();
    let (result, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    assert!(result.is_ok());
    assert_eq!(p.trace_from(2), ["refresh -> 400/50400", "login -> 200", &format!("GET {id_text} -> 200")]);
    assert_eq!(events, [Event::RefreshRefused, Event::Renewed { purpose: Purpose::Login, generation: 2 },]);
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Throttling.

/// 1010009 with `Retry-After: 7`: the call waits exactly the 7 s, and a second call started meanwhile is paused
/// until then too.
#[test]
fn throttling_with_retry_after_pauses_every_call_until_then() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 5);
    let throttle_from = p.log.len();
    p.inject(move |seen| if seen.n == throttle_from { Fault::Answer(faults::throttled(Some(7))) } else { Fault::Pass });
    let t0 = p.clock.ms();
    let first = QueryUpgradeTask::new(id.clone());
    let second = QuerySubOperations::new(id.clone());
    let now = p.clock.now();
    let mut a = core.call::<_, Lost>(&first, now);
    let Step::Send(t) = a.poll(&mut core, now) else { panic!() };
    let answer = p.exchange(t.purpose, t.attempt, t.request);
    a.handle_response(&mut core, now, answer.unwrap());
    let seven = p.clock.at_ms(t0 + 7_000);
    assert_eq!(waits_until(a.poll(&mut core, now)), Some(seven));
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::Throttled { until: seven },
            Event::Retry {
                purpose: Purpose::Request,
                attempt: 1,
                delay: Duration::from_secs(7),
                reason: FailureClass::Throttled
            },
        ]
    );
    // One second later another call starts: it must not go before the pause ends.
    p.clock.advance_ms(1_000);
    let mut b = core.call::<_, Lost>(&second, p.clock.now());
    assert_eq!(waits_until(b.poll(&mut core, p.clock.now())), Some(seven));
    assert_eq!(b.poll_event(), Some(Event::Paced { until: seven }));
    p.clock.advance_to(seven);
    let (ra, _) = drive(&mut core, &mut p, a);
    let (rb, _) = drive(&mut core, &mut p, b);
    assert!(ra.is_ok() && rb.is_ok());
    let sent: Vec<_> = p.log[throttle_from..].iter().map(|r| (r.at_ms - t0, r.outcome.clone())).collect();
    assert_eq!(sent, [(0, "403/1010009".to_owned()), (7_000, "200".to_owned()), (7_000, "200".to_owned())]);
}

/// Without `Retry-After` the wait is the policy's throttling wait: between the 1 s floor and 2 s after the first
/// throttling answer, then between 1 s and 4 s.
#[test]
fn throttling_without_retry_after_backs_off_from_the_floor() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 5);
    let from = p.log.len();
    p.inject(
        move |seen| {
            if seen.n == from || seen.n == from + 1 { Fault::Answer(faults::throttled(None)) } else { Fault::Pass }
        },
    );
    let t0 = p.clock.ms();
    let (result, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    assert!(result.is_ok());
    let waits = retries(&events);
    assert_eq!(waits.len(), 2);
    assert!(waits.iter().all(|(purpose, _, class)| *purpose == Purpose::Request && *class == FailureClass::Throttled));
    let (d1, d2) = (waits[0].1, waits[1].1);
    assert!(Duration::from_secs(1) <= d1 && d1 <= Duration::from_secs(2), "{d1:?}");
    assert!(Duration::from_secs(1) <= d2 && d2 <= Duration::from_secs(4), "{d2:?}");
    let at: Vec<u64> = p.log[from..].iter().map(|r| r.at_ms - t0).collect();
    assert_eq!(at, [0, ms(d1) + u64::from(d1.subsec_nanos() % 1_000_000 != 0), at[2]]);
    assert_eq!(at[2] - at[1], ms(d2) + u64::from(d2.subsec_nanos() % 1_000_000 != 0));
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Throttled { .. })).count(), 2);
}

/// A create refused with the platform's throttling code was not acted on, so it is sent again: one task.
#[test]
fn a_throttled_create_is_sent_again_and_creates_one_task() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| {
        if seen.label == "POST firmwareUpgrade" && seen.attempt == 1 {
            Fault::Answer(faults::throttled(Some(2)))
        } else {
            Fault::Pass
        }
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, _) = harness::call(&mut core, &mut p, &request);
    assert!(result.is_ok());
    assert_eq!(p.trace(), ["login -> 200", "POST firmwareUpgrade -> 403/1010009", "POST firmwareUpgrade -> 200"]);
    assert_eq!(p.log[2].at_ms, 2_000);
    assert_eq!(p.sim.task_counts(), (1, 0));
}

/// A create throttled on every attempt is retried (throttling proves the platform refused it unprocessed) until the
/// attempts run out, then surfaces as the throttling answer: not as an unknown outcome, and not as a token problem
/// (the token is never renewed).
#[test]
fn persistent_throttling_surfaces_as_throttling_without_renewing_the_token() {
    let mut p = Platform::new(quiet_config());
    p.inject(
        |seen| if seen.purpose == Purpose::Request { Fault::Answer(faults::throttled(None)) } else { Fault::Pass },
    );
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, events) = harness::call(&mut core, &mut p, &request);
    let err = result.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!err.platform_may_have_acted(), "{err:?}");
    let CallError::Api(api) = &err else { panic!("the throttling answer itself, not an unknown outcome: {err:?}") };
    assert!(api.is_throttled() && api.proves_refusal(), "{api:?}");
    assert!(!api.is_token_invalid());
    assert_eq!(api.status, http::StatusCode::FORBIDDEN);
    let attempts = core.config().retry.max_attempts as usize;
    assert_eq!(p.sent(Purpose::Request), attempts);
    assert_eq!((p.sent(Purpose::Login), p.sent(Purpose::Refresh)), (1, 0));
    assert!(p.log.iter().skip(1).all(|r| r.bearer == p.log[1].bearer), "every attempt presented the one token");
    let waits = retries(&events);
    assert_eq!(waits.len(), attempts - 1);
    assert!(waits.iter().all(|(purpose, _, class)| *purpose == Purpose::Request && *class == FailureClass::Throttled));
    assert!(!events.iter().any(|e| matches!(e, Event::TokenRejected { .. })));
    assert_eq!(core.session_state(p.clock.now()), SessionState::Valid);
    assert_eq!(p.sim.task_counts(), (0, 0));
}

/// A create answered 503 without the platform's code may have been acted on (the answer may come from a proxy
/// after the platform created the task): it is not sent again blind; the lookup finds the task the simulator
/// made, and the call returns it.
#[test]
fn a_create_answered_503_after_the_platform_acted_is_found_and_not_sent_again() {
    for retry_after in [None, Some(3)] {
        let mut p = Platform::new(quiet_config());
        p.inject(move |seen| {
            if seen.label == "POST firmwareUpgrade" {
                Fault::Rewrite(Box::new(move |_| faults::unavailable(retry_after)))
            } else {
                Fault::Pass
            }
        });
        let mut core = p.core();
        let request = create_task_request(&p, 5);
        let (result, events) = harness::call(&mut core, &mut p, &request);
        let created = result.expect("found");
        assert!(events.contains(&Event::Reconciled { found: true }), "{events:?}");
        assert_eq!(p.sent(Purpose::Request), 1, "never sent again");
        assert_eq!(p.trace()[1], "POST firmwareUpgrade -> 503");
        assert_eq!(p.sim.task_counts(), (1, 0));
        assert_eq!(created.operation_id, only_task(&mut core, &mut p));
    }
}

/// Asserts that `err` is the typed "the task may exist" error of `endpoint`.
fn assert_may_exist(err: &CallError<Lost>, endpoint: &str) {
    assert!(matches!(err, CallError::OutcomeUnknown { endpoint: e, .. } if *e == endpoint), "{err:?}");
    assert!(err.platform_may_have_acted(), "{err:?}");
    assert!(err.request_may_have_been_sent(), "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("the task may exist"), "{err}");
    assert!(!matches!(err.cause(), CallError::OutcomeUnknown { .. }), "{err:?}");
    assert!(std::error::Error::source(err).is_some(), "{err:?}");
    assert!(!format!("{err:?}").contains(iot_sim::sim::DEFAULT_SECRET), "{err:?}");
}

/// An answer to a create that does not prove the platform refused it (no platform code, a load-shedding or
/// server status, the platform's internal error, an undocumented code, an unreadable success): the create is
/// never sent again blind. Here the simulator did create the task, so the lookup finds it and the call returns
/// it: one request, one task, and the caller told what exists.
#[test]
fn a_create_whose_answer_proves_nothing_is_looked_for_and_found() {
    type Answer = fn() -> http::Response<Vec<u8>>;
    let answers: [(&str, Answer, Option<u16>); 6] = [
        ("429 without a code", || http::Response::builder().status(429).body(Vec::new()).unwrap(), Some(429)),
        (
            "503 with Retry-After",
            || http::Response::builder().status(503).header(http::header::RETRY_AFTER, "1").body(Vec::new()).unwrap(),
            Some(503),
        ),
        (
            "502 html page from a proxy",
            || {
                http::Response::builder()
                    .status(502)
                    .header(http::header::CONTENT_TYPE, "text/html")
                    .body(b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec())
                    .unwrap()
            },
            Some(502),
        ),
        ("500 with the platform's internal error", || faults::refused(ErrorCode::InternalError), Some(500)),
        (
            "500 with a code the platform does not document",
            || {
                http::Response::builder()
                    .status(500)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(br#"{"error_code":"999999","error_desc":"boom"}"#.to_vec())
                    .unwrap()
            },
            Some(500),
        ),
        ("200 that cannot be decoded", || http::Response::new(br#"{"operationId": [42]}"#.to_vec()), None),
    ];
    for (what, answer, status) in answers {
        let mut p = Platform::new(quiet_config());
        p.inject(move |seen| {
            if seen.purpose == Purpose::Request { Fault::Rewrite(Box::new(move |_| answer())) } else { Fault::Pass }
        });
        let mut core = p.core();
        let request = create_task_request(&p, 5);
        let (result, events) = harness::call(&mut core, &mut p, &request);
        let created = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(p.sent(Purpose::Request), 1, "{what}: exactly one request may reach the platform");
        assert!(retries(&events).is_empty(), "{what}: {events:?}");
        assert!(events.contains(&Event::Reconciled { found: true }), "{what}: {events:?}");
        assert_eq!(p.clock.ms(), 0, "{what}: nothing waited");
        assert_eq!(p.sim.task_counts(), (1, 0), "{what}: one task");
        assert_eq!(created.operation_id, only_task(&mut core, &mut p), "{what}");
        // The answer itself proves nothing: what made the call look.
        let err = <iot_proto::CreateFirmwareUpgradeTask as iot_proto::Endpoint>::try_from_http_response(&answer())
            .unwrap_err();
        assert_eq!(err.api().map(|api| api.status.as_u16()), status, "{what}: {err:?}");
        assert!(err.api().is_none_or(|api| !api.proves_refusal()), "{what}: {err:?}");
    }
}

/// Answers that prove the platform refused a create (its throttling, rejected-token and validation codes), a
/// create that never connected, and a create that breaks the contract: none can have created the task, so none is
/// an unknown outcome.
#[test]
fn a_create_refused_with_a_platform_code_certainly_did_not_create_the_task() {
    let codes = [
        (ErrorCode::Throttled, 403),
        (ErrorCode::TokenInvalid, 403),
        (ErrorCode::NoTargets, 400),
        (ErrorCode::DeviceOrPackageNotFound, 404),
    ];
    for (code, status) in codes {
        let mut p = Platform::new(quiet_config());
        let answer = code.clone();
        p.inject(move |seen| {
            if seen.purpose == Purpose::Request { Fault::Answer(faults::refused(answer.clone())) } else { Fault::Pass }
        });
        let mut core = p.core();
        let request = create_task_request(&p, 5);
        let (result, _) = harness::call(&mut core, &mut p, &request);
        let err = result.unwrap_err();
        assert!(!err.platform_may_have_acted(), "{code:?}: {err:?}");
        let CallError::Api(api) = &err else { panic!("{code:?}: the platform's answer itself: {err:?}") };
        assert!(api.proves_refusal(), "{code:?}: {api:?}");
        assert_eq!((api.code.as_ref(), api.status.as_u16()), (Some(&code), status));
        assert!(!err.to_string().contains("may exist"), "{code:?}: {err}");
        assert_eq!(p.sim.task_counts(), (0, 0));
    }

    // Nothing reached the platform: the connection could not be opened.
    let mut p = Platform::new(quiet_config());
    p.inject(
        |seen| {
            if seen.purpose == Purpose::Request { Fault::Drop(TransportFailure::ConnectFailed) } else { Fault::Pass }
        },
    );
    let mut config = p.config();
    config.retry = RetryPolicy::disabled();
    let mut core = ClientCore::new(config, 7);
    let request = create_task_request(&p, 5);
    let (result, _) = harness::call(&mut core, &mut p, &request);
    let err = result.unwrap_err();
    assert!(matches!(err, CallError::Transport { failure: TransportFailure::ConnectFailed, .. }), "{err:?}");
    assert!(!err.platform_may_have_acted(), "{err:?}");
    assert_eq!(p.sim.task_counts(), (0, 0));

    // A request that breaks the contract is never sent.
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let invalid = CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(newest_firmware(&p), OperateDevices::new()));
    let (result, _) = harness::call(&mut core, &mut p, &invalid);
    let err = result.unwrap_err();
    assert!(matches!(err, CallError::Invalid(_)), "{err:?}");
    assert!(!err.platform_may_have_acted(), "{err:?}");
    assert_eq!(p.sent(Purpose::Request), 0);
}

/// A query answered 503 with `Retry-After: 5` is idempotent and waits the 5 s before asking again.
#[test]
fn a_query_that_got_503_with_retry_after_waits_and_asks_again() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 5);
    let from = p.log.len();
    p.inject(move |seen| if seen.n == from { Fault::Answer(faults::unavailable(Some(5))) } else { Fault::Pass });
    let (result, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    assert!(result.is_ok());
    assert_eq!(retries(&events), [(Purpose::Request, Duration::from_secs(5), FailureClass::Overloaded)]);
    assert_eq!(p.log[from + 1].at_ms - p.log[from].at_ms, 5_000);
    // Load shedding is not the platform's quota: the other calls are not paused.
    assert!(!events.iter().any(|e| matches!(e, Event::Throttled { .. })));
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Server faults, transport failures, the retry quota.

/// Every 7th call the simulator answers 500/50252: each failed page is asked again after a short backoff and the
/// walk still holds every subtask once.
#[test]
fn a_walk_through_injected_server_faults_retries_each_failed_page_once() {
    let mut p = Platform::new(quiet_config().with_faults(Faults::fail_every_nth(7)));
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 200);
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id.clone()), 0);
    assert_eq!(run.outcome, Ok(StopReason::TotalReached));
    assert_eq!(run.items.len(), 200);
    // Login and create are calls 1 and 2; 20 pages and 3 failures make calls 3 to 25, of which 7, 14 and 21 fail.
    assert_eq!(p.log.len(), 25);
    let failed: Vec<usize> =
        p.log.iter().enumerate().filter(|(_, r)| r.outcome == "500/50252").map(|(i, _)| i + 1).collect();
    assert_eq!(failed, [7, 14, 21]);
    for call in failed {
        let (bad, retry) = (&p.log[call - 1], &p.log[call]);
        assert_eq!((bad.label.as_str(), bad.attempt, retry.attempt), (retry.label.as_str(), 1, 2));
        // Full jitter under a 100 ms cap for the first retry.
        assert!(retry.at_ms - bad.at_ms <= 100);
    }
    assert_eq!(core.retry_quota_available(), 500, "successes give back what the retries took");
    let from_sim = {
        p.inject(|_| Fault::Pass);
        // The simulator's own listing, read past the faults: every 7th call of it fails too and is retried.
        sim_listing(&mut p, &id)
    };
    assert_eq!(run.items.iter().map(ids).collect::<Vec<_>>(), from_sim);
}

/// Transport failures: a connect failure (nothing sent) is retried for every call, a reset after sending only
/// for idempotent ones.
#[test]
fn transport_failures_before_and_after_sending() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| match (seen.n, seen.label) {
        // The login and the create each fail to connect once.
        (0, _) | (2, _) => Fault::Drop(TransportFailure::ConnectFailed),
        // The query's first answer is lost after the request went out.
        (_, l) if l.starts_with("GET") && seen.attempt == 1 => Fault::Drop(TransportFailure::ResetAfterSend),
        _ => Fault::Pass,
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (created, events) = harness::call(&mut core, &mut p, &request);
    let id = created.unwrap().operation_id;
    assert_eq!(
        p.trace(),
        [
            "login -> lost(ConnectFailed)",
            "login -> 200",
            "POST firmwareUpgrade -> lost(ConnectFailed)",
            "POST firmwareUpgrade -> 200"
        ]
    );
    assert_eq!(
        retries(&events).iter().map(|(purpose, _, class)| (*purpose, *class)).collect::<Vec<_>>(),
        [(Purpose::Login, FailureClass::Transient), (Purpose::Request, FailureClass::Transient)]
    );
    assert_eq!(p.sim.task_counts(), (1, 0));
    let (got, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    assert!(got.is_ok());
    assert_eq!(retries(&events).iter().map(|r| r.2).collect::<Vec<_>>(), [FailureClass::ServerTransient]);
    // 5 taken for each of three retries, 1 back for the create's and the query's success, nothing more.
    assert_eq!(core.retry_quota_available(), 500);
}

/// A create whose request went out and whose answer was lost is not sent again blind: the client looks for the
/// task first (the package for its version, then the task list), finds the one the simulator made, and returns it.
#[test]
fn a_create_reset_after_sending_is_found_by_reconciliation_and_not_sent_again() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| {
        if seen.label == "POST firmwareUpgrade" { Fault::Drop(TransportFailure::ResetAfterSend) } else { Fault::Pass }
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, events) = harness::call(&mut core, &mut p, &request);
    let created = result.expect("the lost attempt's task");
    assert!(events.contains(&Event::Reconciled { found: true }), "{events:?}");
    let trace = p.trace();
    assert_eq!(trace[..2], ["login -> 200", "POST firmwareUpgrade -> lost(ResetAfterSend)"]);
    assert!(trace[2].starts_with("GET ") && trace[2].ends_with(" -> 200"), "the package: {trace:?}");
    assert_eq!(trace[3..], ["GET operations#0 -> 200"]);
    assert_eq!(p.sim.task_counts(), (1, 0), "exactly one task");
    assert_eq!(created.operation_id, only_task(&mut core, &mut p));
}

/// The id of the only upgrade task the simulator holds.
fn only_task(core: &mut ClientCore, p: &mut Platform) -> iot_model::OperationId {
    // Asked past any injected fault.
    p.inject(|_| Fault::Pass);
    let (page, _) = harness::call(core, p, &QueryUpgradeTaskList::new());
    let page = page.unwrap();
    assert_eq!(page.data.len(), 1);
    page.data[0].operation_id.clone()
}

/// A create whose answer proves nothing, though the platform never saw it (a proxy answered 503 in its stead),
/// is looked for, provably absent, and then sent again: one task, created by the second attempt.
#[test]
fn a_create_that_never_reached_the_platform_is_found_absent_and_sent_again() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| {
        if seen.label == "POST firmwareUpgrade" && seen.attempt == 1 {
            Fault::Answer(faults::unavailable(None))
        } else {
            Fault::Pass
        }
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, events) = harness::call(&mut core, &mut p, &request);
    let created = result.expect("created by the second attempt");
    assert!(events.contains(&Event::Reconciled { found: false }), "{events:?}");
    assert_eq!(p.sent(Purpose::Request), 2, "sent again only after the lookup proved it absent");
    let trace = p.trace();
    assert_eq!(trace[1], "POST firmwareUpgrade -> 503");
    assert_eq!(trace[3..], ["GET operations#0 -> 200", "POST firmwareUpgrade -> 200"]);
    assert_eq!(p.sim.task_counts(), (1, 0));
    assert_eq!(created.operation_id, only_task(&mut core, &mut p));
}

/// A task with the same package and targets made before the call began is not taken for the call's own: the
/// lookup only counts tasks created since the call began on the platform's clock.
#[test]
fn an_older_identical_task_is_not_taken_for_the_lost_one() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (first, _) = harness::call(&mut core, &mut p, &request);
    let first = first.unwrap().operation_id;
    // A minute later the same create is answered 503 by a proxy that never passed it on.
    p.clock.advance_ms(60_000);
    let from = p.log.len();
    p.inject(move |seen| if seen.n == from { Fault::Answer(faults::unavailable(None)) } else { Fault::Pass });
    let (second, events) = harness::call(&mut core, &mut p, &request);
    let second = second.unwrap().operation_id;
    assert!(events.contains(&Event::Reconciled { found: false }), "{events:?}");
    assert_ne!(first, second);
    assert_eq!(p.sim.task_counts(), (2, 0));
}

/// Without the platform's clock (no `Date` on any answer) nothing bounds which tasks could be the call's own:
/// the create in doubt stays in doubt rather than be matched against an older task.
#[test]
fn without_the_platforms_clock_a_create_in_doubt_stays_unknown() {
    let mut p = Platform::new(quiet_config());
    let strip = |mut r: http::Response<Vec<u8>>| {
        r.headers_mut().remove(http::header::DATE);
        r
    };
    p.inject(move |seen| {
        if seen.label == "POST firmwareUpgrade" {
            Fault::Drop(TransportFailure::ResetAfterSend)
        } else {
            Fault::Rewrite(Box::new(strip))
        }
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, _) = harness::call(&mut core, &mut p, &request);
    let Err(CallError::OutcomeUnknown { source, .. }) = result else { panic!("{result:?}") };
    assert!(matches!(*source, CallError::Transport { failure: TransportFailure::ResetAfterSend, .. }));
    assert_eq!(p.trace(), ["login -> 200", "POST firmwareUpgrade -> lost(ResetAfterSend)"]);
    assert_eq!(p.sim.task_counts(), (1, 0));
}

/// A lookup that keeps failing is retried as the query it is (three attempts), then leaves the create in doubt:
/// the caller learns the task may exist, and nothing is resent.
#[test]
fn a_failed_lookup_leaves_the_create_in_doubt() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| match (seen.label, seen.purpose) {
        ("POST firmwareUpgrade", _) => Fault::Drop(TransportFailure::ResetAfterSend),
        (_, Purpose::Lookup) => Fault::Answer(faults::refused(ErrorCode::InternalError)),
        _ => Fault::Pass,
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, _) = harness::call(&mut core, &mut p, &request);
    let err = result.unwrap_err();
    assert_may_exist(&err, "CreateFirmwareUpgradeTask");
    assert_eq!(p.sent(Purpose::Request), 1);
    assert_eq!(p.sent(Purpose::Lookup), 3);
    assert!(p.log.iter().filter(|r| r.purpose == Purpose::Lookup).all(|r| r.outcome == "500/50252"));
}

/// A lookup that fails once (a broken connection) is asked again, and the search still concludes.
#[test]
fn a_lookup_that_fails_once_is_asked_again() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| match (seen.label, seen.purpose, seen.attempt) {
        ("POST firmwareUpgrade", _, _) => Fault::Drop(TransportFailure::ResetAfterSend),
        (_, Purpose::Lookup, 1) => Fault::Drop(TransportFailure::ResetAfterSend),
        _ => Fault::Pass,
    });
    let mut core = p.core();
    let request = create_task_request(&p, 5);
    let (result, events) = harness::call(&mut core, &mut p, &request);
    assert!(result.is_ok(), "{result:?}");
    assert!(events.contains(&Event::Reconciled { found: true }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Retry { purpose: Purpose::Lookup, .. })), "{events:?}");
    assert_eq!(p.sim.task_counts(), (1, 0));
}

/// Batch tasks cannot be listed, so a batch create in doubt cannot be looked for and stays in doubt.
#[test]
fn a_batch_create_in_doubt_stays_unknown() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| {
        if seen.purpose == Purpose::Request { Fault::Drop(TransportFailure::ResetAfterSend) } else { Fault::Pass }
    });
    let mut core = p.core();
    let param = iot_model::DeviceCmdParam::new(
        iot_model::DeviceCmdType::Broadcast,
        iot_model::Command::new("Maintenance".into(), "REBOOT".into()),
    );
    let app = iot_model::AppId::new(iot_sim::sim::DEFAULT_APP_ID).unwrap();
    let request = iot_proto::CreateBatchTask::new(iot_model::BatchTaskRequest::device_cmd(app, 120, "reboot", param));
    let (result, _) = harness::call(&mut core, &mut p, &request);
    let err = result.unwrap_err();
    assert_may_exist(&err, "CreateBatchTask");
    assert_eq!(p.sent(Purpose::Lookup), 0);
    assert_eq!(p.sim.task_counts(), (0, 1));
}

/// A query that keeps failing with 500 is tried three times (the default attempts), with growing backoff caps.
#[test]
fn a_failing_query_gives_up_after_three_attempts() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 5);
    p.inject(|seen| {
        if seen.purpose == Purpose::Request {
            Fault::Rewrite(Box::new(|_| {
                iot_proto::server::error_response(&iot_proto::ApiError::new(ErrorCode::InternalError, "down"))
            }))
        } else {
            Fault::Pass
        }
    });
    let (result, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    let Err(CallError::Api(e)) = result else { panic!("{result:?}") };
    assert_eq!(e.code, Some(ErrorCode::InternalError));
    assert_eq!(p.log.len(), 2 + 3);
    let waits = retries(&events);
    assert_eq!(waits.len(), 2);
    assert!(waits[0].1 <= Duration::from_millis(100) && waits[1].1 <= Duration::from_millis(200), "{waits:?}");
    // Two retries took 5 each and the call failed: nothing given back.
    assert_eq!(core.retry_quota_available(), 500 - 10);
}

/// Without jitter every retry waits exactly its backoff cap: the initial backoff doubling per attempt, up to the
/// maximum (250, 500, then 600 instead of 1 000 ms).
#[test]
fn without_jitter_the_recorded_delays_are_the_backoff_caps() {
    let mut p = Platform::new(quiet_config());
    let mut config = p.config();
    config.retry = RetryPolicy::new()
        .with_max_attempts(4)
        .with_backoff(Duration::from_millis(250), Duration::from_millis(600))
        .with_jitter(Jitter::None);
    let mut core = ClientCore::new(config, 7);
    let id = create_task(&mut core, &mut p, 5);
    let from = p.log.len();
    p.inject(|seen| {
        if seen.purpose == Purpose::Request && seen.attempt < 4 {
            Fault::Answer(faults::refused(ErrorCode::InternalError))
        } else {
            Fault::Pass
        }
    });
    let t0 = p.clock.ms();
    let (result, events) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    assert!(result.is_ok(), "{result:?}");
    let delays: Vec<Duration> = retries(&events).iter().map(|r| r.1).collect();
    assert_eq!(delays, [250, 500, 600].map(Duration::from_millis));
    let at: Vec<u64> = p.log[from..].iter().map(|r| r.at_ms - t0).collect();
    assert_eq!(at, [0, 250, 750, 1_350]);
}

/// The shared retry quota stops a retry storm: with room for two retries, the first failing call spends it and
/// the next failing call gives up after its first attempt; a success refills one token.
#[test]
fn the_retry_quota_is_shared_and_runs_out() {
    let mut p = Platform::new(quiet_config());
    let mut config = p.config();
    config.retry_quota = 10;
    let mut core = ClientCore::new(config, 7);
    let id = create_task(&mut core, &mut p, 5);
    assert_eq!(core.retry_quota_available(), 10, "full: the successes had nothing to give back");
    p.inject(
        |seen| {
            if seen.label.starts_with("GET") { Fault::Drop(TransportFailure::ConnectFailed) } else { Fault::Pass }
        },
    );
    let from = p.log.len();
    let query = QueryUpgradeTask::new(id.clone());
    let (first, _) = harness::call(&mut core, &mut p, &query);
    assert!(matches!(first, Err(CallError::Transport { failure: TransportFailure::ConnectFailed, .. })));
    assert_eq!(p.log.len() - from, 3, "two retries, paid 5 each");
    assert_eq!(core.retry_quota_available(), 0);
    let (second, events) = harness::call(&mut core, &mut p, &query);
    assert!(second.is_err());
    assert_eq!(p.log.len() - from, 4, "no retry: the quota is empty");
    assert!(retries(&events).is_empty());
    p.inject(|_| Fault::Pass);
    assert!(harness::call(&mut core, &mut p, &query).0.is_ok());
    assert_eq!(core.retry_quota_available(), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// 6. The client-side rate limiter against the platform's quota.

const BIG_TASK: usize = 5_000;

/// A platform with the default rate limit (100 calls per 60 s) and 5 000 water meters in one group.
fn big_fleet_platform() -> Platform {
    let (device_type, model, maker) = WATER_METER;
    let devices = (0..BIG_TASK)
        .map(|i| Device {
            device_id: DeviceId::new(format!("wm-{i:05}")).unwrap(),
            device_type: device_type.to_owned(),
            model: model.to_owned(),
            manufacturer_name: maker.to_owned(),
            manufacturer_id: None,
            groups: vec!["north".to_owned()],
            firmware_version: "V1.0.0".to_owned(),
            software_version: "V3.0.1".to_owned(),
        })
        .collect();
    let packages = FleetSpec::generate(1, 0).packages;
    Platform::new(SimConfig::default().with_failure_rate(0.0).with_fleet(FleetSpec { devices, packages }))
        .with_latency(20)
}

fn big_task_request(p: &Platform) -> CreateFirmwareUpgradeTask {
    let (device_type, model, maker) = WATER_METER;
    let targets = OperateDevices::new()
        .with_device_groups(vec!["north".to_owned()])
        .with_device_type(device_type.to_owned())
        .with_model(model.to_owned())
        .with_manufacturer_name(maker.to_owned());
    CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(newest_firmware(p), targets))
}

/// Login, create and a 500-page walk: 502 calls.
fn big_walk(core: &mut ClientCore, p: &mut Platform) -> harness::WalkRun<SubOperationInfo> {
    let request = big_task_request(p);
    let id = harness::call(core, p, &request).0.unwrap().operation_id;
    let run = walk(core, p, QuerySubOperations::new(id), 0);
    assert_eq!(run.outcome, Ok(StopReason::TotalReached), "{:?}", run.failure);
    assert_eq!(run.pages, BIG_TASK / 10);
    let devices: Vec<String> = run.items.iter().map(|s| s.device_id.as_ref().unwrap().to_string()).collect();
    let fleet: Vec<String> = (0..BIG_TASK).map(|i| format!("wm-{i:05}")).collect();
    assert_eq!(devices, fleet, "every subtask once, in the platform's order");
    run
}

#[test]
fn the_default_rate_limit_walks_five_thousand_subtasks_without_one_throttling_answer() {
    let mut p = big_fleet_platform();
    let mut core = p.core();
    assert_eq!(core.config().rate_limit, RateLimit::platform());
    big_walk(&mut core, &mut p);
    let calls = p.log.len();
    assert_eq!(calls, 502);
    assert_eq!(p.answered("403/1010009"), 0);
    // 100 calls per window: the 502nd call cannot go before 5 windows have passed.
    let minimum_ms = (calls as u64 - 1) / 100 * 60_000;
    let elapsed = p.clock.ms();
    assert!(elapsed >= minimum_ms, "{elapsed} ms is faster than the platform allows");
    assert!(elapsed * 100 <= minimum_ms * 105, "{elapsed} ms is more than 5% over {minimum_ms} ms");
    // Each window starts one latency later (a call counts from its answer): 5 * 20 ms, then the last window's
    // two calls of 20 ms each.
    assert_eq!(elapsed, 300_000 + 5 * 20 + 2 * 20);
    // Within every window of 60 s the platform saw at most 100 calls.
    let at: Vec<u64> = p.log.iter().map(|r| r.at_ms).collect();
    for (i, start) in at.iter().enumerate() {
        assert!(at[i..].iter().take_while(|t| **t < start + 60_000).count() <= 100);
    }
}

/// Without the client's limiter the walk runs into the platform's quota; with enough attempts for a throttled
/// call to outlast the window (the default 3 wait at most 2 s + 4 s, never a 60 s window) it still completes.
#[test]
fn without_the_client_limiter_the_walk_is_throttled_yet_completes() {
    let mut p = big_fleet_platform();
    let mut config = p.config();
    config.rate_limit = RateLimit::disabled();
    config.retry = RetryPolicy::default().with_max_attempts(8).with_jitter(Jitter::None);
    let mut core = ClientCore::new(config, 7);
    big_walk(&mut core, &mut p);
    let throttled = p.answered("403/1010009");
    // Per window: 100 calls of 20 ms go, the 101st is throttled 5 times (20 ms each, then waits of 2, 4, 8, 16 and
    // 32 s) and goes 62 s after its first try.
    assert_eq!(throttled, 5 * 5);
    assert_eq!(p.log.len(), 502 + throttled);
    assert_eq!(p.clock.ms(), 5 * (100 * 20 + 5 * 20 + 62_000) + 2 * 20);
}

/// With the default retry policy the same walk, without the limiter, fails at the first full window: the
/// default attempts cannot outlast the platform's 60 s window. The walk says so instead of passing for complete.
#[test]
fn without_the_client_limiter_and_the_default_retries_the_walk_fails_and_says_so() {
    let mut p = big_fleet_platform();
    let mut config = p.config();
    config.rate_limit = RateLimit::disabled();
    let mut core = ClientCore::new(config, 7);
    let request = big_task_request(&p);
    let id = harness::call(&mut core, &mut p, &request).0.unwrap().operation_id;
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id), 0);
    assert_eq!(run.outcome, Err(WalkStop::CallFailed));
    assert_eq!(run.items.len(), 98 * 10, "98 pages fit in the first window beside the login and the create");
    let failure = run.failure.unwrap();
    assert!(failure.api().is_some_and(iot_proto::ApiError::is_throttled), "{failure:?}");
    assert_eq!(p.answered("403/1010009"), 3);
}

// ---------------------------------------------------------------------------------------------------------------
// 7. Walk integrity.

/// Runs a 50-subtask walk (5 pages) whose page `bad` is rewritten by `edit`.
fn walk_with_bad_page(bad: u32, edit: fn(&mut serde_json::Value)) -> harness::WalkRun<SubOperationInfo> {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 50);
    let target = format!("GET subOperations#{bad}");
    p.inject(move |seen| {
        if seen.label == target { Fault::Rewrite(Box::new(move |r| faults::edit_json(r, edit))) } else { Fault::Pass }
    });
    walk(&mut core, &mut p, QuerySubOperations::new(id), 0)
}

#[test]
fn a_repeated_page_ends_the_walk_as_broken() {
    // Page 2 comes back with page 1's items under its own page number.
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 50);
    let page1 = std::rc::Rc::new(std::cell::RefCell::new(None::<serde_json::Value>));
    let keep = page1.clone();
    p.inject(move |seen| {
        let keep = keep.clone();
        match seen.label {
            "GET subOperations#1" => Fault::Rewrite(Box::new(move |r| {
                *keep.borrow_mut() =
                    Some(serde_json::from_slice::<serde_json::Value>(r.body()).unwrap()["data"].clone());
                r
            })),
            "GET subOperations#2" => {
                Fault::Rewrite(Box::new(move |r| faults::edit_json(r, |j| j["data"] = keep.borrow().clone().unwrap())))
            }
            _ => Fault::Pass,
        }
    });
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id), 0);
    assert_eq!(run.outcome, Err(WalkStop::Walk(WalkError::RepeatedPage { page_no: 2 })));
    assert_eq!(run.pages, 3);
    assert_eq!(run.items.len(), 20, "the repeated page is not handed on");
    assert!(page1.borrow().is_some());
}

#[test]
fn a_server_that_ignores_page_no_ends_the_walk_as_broken() {
    let run = walk_with_bad_page(1, |j| j["pageNo"] = 0.into());
    assert_eq!(run.outcome, Err(WalkStop::Walk(WalkError::PageNumberMismatch { asked: 1, answered: 0 })));
    assert_eq!(run.items.len(), 10);
}

#[test]
fn a_shrinking_total_ends_the_walk_as_broken() {
    let run = walk_with_bad_page(3, |j| j["totalCount"] = 49.into());
    assert_eq!(run.outcome, Err(WalkStop::Walk(WalkError::TotalShrank { page_no: 3, was: 50, now: 49 })));
    assert_eq!(run.items.len(), 30);
}

#[test]
fn a_listing_cut_short_ends_the_walk_as_broken() {
    let run = walk_with_bad_page(2, |j| j["data"] = serde_json::json!([]));
    assert_eq!(run.outcome, Err(WalkStop::Walk(WalkError::Truncated { page_no: 2, seen: 20, total: 50 })));
}

#[test]
fn a_failed_page_ends_the_walk_as_failed() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 50);
    p.inject(
        |seen| {
            if seen.label == "GET subOperations#3" { Fault::Drop(TransportFailure::TlsRefused) } else { Fault::Pass }
        },
    );
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id), 0);
    assert_eq!(run.outcome, Err(WalkStop::CallFailed));
    assert_eq!((run.pages, run.items.len()), (3, 30));
    assert_eq!(p.answered("lost(TlsRefused)"), 1, "a refused peer is not retried");
}

/// A server that never ends (full pages without a `totalCount`, here 20 pages of them against a guard of 8) is
/// stopped by the page guard, and the walk ends as an error, not as a complete listing.
#[test]
fn a_server_that_never_ends_is_stopped_by_the_page_guard_as_an_error() {
    let mut p = Platform::new(quiet_config());
    let mut config = p.config();
    config.max_pages = 8;
    let mut core = ClientCore::new(config, 7);
    let id = create_task(&mut core, &mut p, 200);
    let from = p.log.len();
    p.inject(|seen| {
        if seen.purpose == Purpose::Request {
            Fault::Rewrite(Box::new(|r| {
                faults::edit_json(r, |j| {
                    j.as_object_mut().unwrap().remove("totalCount");
                })
            }))
        } else {
            Fault::Pass
        }
    });
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id), 0);
    assert_eq!(run.outcome, Err(WalkStop::Walk(WalkError::PageGuard { pages: 8 })));
    assert_eq!(p.log.len() - from, 8);
    assert_eq!(run.pages, 8);
    assert_eq!(run.items.len(), 70, "the page that hit the guard is not handed on");
}

/// A full first page that reports a total of zero ends the walk: the items seen reach the reported total, and the
/// page guard is never needed. The page's items are handed on.
#[test]
fn a_reported_total_of_zero_ends_the_walk_after_the_first_page() {
    let mut p = Platform::new(quiet_config());
    let mut config = p.config();
    config.max_pages = 5;
    let mut core = ClientCore::new(config, 7);
    let id = create_task(&mut core, &mut p, 50);
    let from = p.log.len();
    p.inject(|seen| {
        if seen.purpose == Purpose::Request {
            Fault::Rewrite(Box::new(|r| faults::edit_json(r, |j| j["totalCount"] = 0.into())))
        } else {
            Fault::Pass
        }
    });
    let run = walk(&mut core, &mut p, QuerySubOperations::new(id).with_page_size(3), 0);
    assert_eq!(run.outcome, Ok(StopReason::TotalReached));
    assert_eq!((run.pages, run.items.len()), (1, 3));
    assert_eq!(p.trace_from(from), ["GET subOperations#0 -> 200"]);
}

/// A page size outside the family's limits fails the walk before it asks for anything: there is no walker to ask.
#[test]
fn an_invalid_page_size_fails_the_walk_before_any_request() {
    let p = Platform::new(quiet_config());
    let core = p.core();
    for size in [0, 101] {
        let walker = PageWalker::new(QueryUpgradeTaskList::new().with_page_size(size), core.config().max_pages);
        assert!(
            matches!(walker, Err(PagerError::PageSizeOutOfRange { value, .. }) if value == size),
            "{size}: {walker:?}"
        );
    }
    assert!(p.log.is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// 8. The call deadline.

fn short_deadline(p: &Platform) -> ClientCore {
    let mut config = p.config();
    config.call_timeout = Duration::from_secs(10);
    ClientCore::new(config, 7)
}

/// A 30 s `Retry-After` outlasts a 10 s deadline: the call ends at the deadline, not after the wait.
#[test]
fn the_deadline_ends_a_call_in_a_long_backoff() {
    let mut p = Platform::new(quiet_config());
    let mut core = short_deadline(&p);
    let id = create_task(&mut core, &mut p, 5);
    let from = p.log.len();
    p.inject(move |seen| if seen.n >= from { Fault::Answer(faults::unavailable(Some(30))) } else { Fault::Pass });
    let t0 = p.clock.ms();
    let (result, _) = harness::call(&mut core, &mut p, &QueryUpgradeTask::new(id));
    assert!(matches!(result, Err(CallError::Timeout(d)) if d == Duration::from_secs(10)), "{result:?}");
    assert_eq!(p.clock.ms() - t0, 10_000);
    assert_eq!(p.log.len() - from, 1);
}

/// A create still on the wire at its deadline may have reached the platform: its timeout is an unknown outcome.
#[test]
fn a_create_in_flight_at_its_deadline_has_an_unknown_outcome() {
    let mut p = Platform::new(quiet_config());
    let mut core = short_deadline(&p);
    let id = create_task(&mut core, &mut p, 5);
    assert!(!id.as_str().is_empty());
    let request = create_task_request(&p, 5);
    let mut call = core.call::<_, Lost>(&request, p.clock.now());
    let Step::Send(t) = call.poll(&mut core, p.clock.now()) else { panic!() };
    // The simulator acts on it, but the answer takes longer than the deadline.
    let late = p.exchange(t.purpose, t.attempt, t.request);
    let Step::Wait(deadline) = call.poll(&mut core, p.clock.now()) else {
        panic!("in flight: wait at most until the deadline")
    };
    assert_eq!(deadline, call.deadline());
    p.clock.advance_to(deadline);
    let Step::Done(Err(CallError::OutcomeUnknown { source, .. })) = call.poll(&mut core, p.clock.now()) else {
        panic!("the deadline passed while the create was in doubt")
    };
    assert!(matches!(*source, CallError::Timeout(_)));
    // The answer that comes after the end changes nothing.
    call.handle_response(&mut core, p.clock.now(), late.unwrap());
    assert!(matches!(call.poll(&mut core, p.clock.now()), Step::Done(Err(CallError::Finished))));
    assert_eq!(p.sim.task_counts(), (2, 0));
}

/// A create whose attempts never left the client (connect failures) times out plainly: nothing was sent.
#[test]
fn a_create_that_never_connected_times_out_plainly() {
    let mut p = Platform::new(quiet_config());
    let mut config = p.config();
    config.call_timeout = Duration::from_secs(10);
    config.retry = RetryPolicy::default()
        .with_max_attempts(100)
        .with_backoff(Duration::from_secs(4), Duration::from_secs(4))
        .with_jitter(Jitter::None);
    let mut core = ClientCore::new(config, 7);
    // Log in first, so that the create's deadline is spent on the create alone.
    assert!(renewal(&mut core, &mut p, ClientCore::login).0.is_ok());
    p.inject(
        |seen| {
            if seen.purpose == Purpose::Request { Fault::Drop(TransportFailure::ConnectFailed) } else { Fault::Pass }
        },
    );
    let request = create_task_request(&p, 5);
    let (result, _) = harness::call(&mut core, &mut p, &request);
    assert!(matches!(result, Err(CallError::Timeout(_))), "{result:?}");
    // Tries at 0, 4 and 8 s; the next would be at 12 s, past the 10 s deadline, where the call ends.
    let creates: Vec<u64> = p.log[1..].iter().map(|r| r.at_ms).collect();
    assert_eq!(creates, [0, 4_000, 8_000]);
    assert_eq!(p.clock.ms(), 10_000);
    assert_eq!(p.sim.task_counts(), (0, 0));
}

// ---------------------------------------------------------------------------------------------------------------
// 9. login(), renew(), logout().

#[test]
fn login_renew_and_logout_run_as_renewals() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let now = p.clock.now();
    assert_eq!(core.session_state(now), SessionState::NoToken);
    assert!(core.logout::<Lost>(now).is_none(), "nothing to log out");

    let (r, events) = renewal(&mut core, &mut p, ClientCore::login);
    assert!(r.is_ok());
    assert_eq!(events, [Event::Renewed { purpose: Purpose::Login, generation: 1 }]);
    // A login replaces a valid token all the same.
    let (r, events) = renewal(&mut core, &mut p, ClientCore::login);
    assert!(r.is_ok());
    assert_eq!(events, [Event::Renewed { purpose: Purpose::Login, generation: 2 }]);
    // renew() refreshes while the refresh token lives...
    let (r, events) = renewal(&mut core, &mut p, ClientCore::renew);
    assert!(r.is_ok());
    assert_eq!(events, [Event::Renewed { purpose: Purpose::Refresh, generation: 3 }]);
    // ...and logs in when the platform refuses it.
    p.inject(
        |seen| if seen.purpose == Purpose::Refresh { Fault::Answer(faults::refresh_refused()) } else { Fault::Pass },
    );
    let (r, events) = renewal(&mut core, &mut p, ClientCore::renew);
    assert!(r.is_ok());
    assert_eq!(events, [Event::RefreshRefused, Event::Renewed { purpose: Purpose::Login, generation: 4 }]);
    assert_eq!(core.session_state(p.clock.now()), SessionState::Valid);
    p.inject(|_| Fault::Pass);

    let logout = core.logout::<Lost>(p.clock.now()).unwrap();
    let (r, _) = drive(&mut core, &mut p, logout);
    assert!(r.is_ok());
    assert_eq!(core.session_state(p.clock.now()), SessionState::NoToken);
    assert_eq!(
        p.trace(),
        [
            "login -> 200",
            "login -> 200",
            "refresh -> 200",
            "refresh -> 400/50400",
            "login -> 200",
            "POST logout -> 200"
        ]
    );
    // The logout carried the token of the last login, and that token is dead at the platform: a later call
    // logs in afresh (the refresh token was forgotten too).
    let logged_out = p.log[5].bearer.clone().unwrap();
    assert_eq!(p.probe(&logged_out), "403/1010005");
    let id = create_task(&mut core, &mut p, 3);
    assert!(!id.as_str().is_empty());
    assert_eq!(p.trace_from(6), ["login -> 200", "POST firmwareUpgrade -> 200"]);
}

/// renew() without a token logs in, and logs in again when the platform refuses the refresh token; a renewal
/// that fails surfaces its error.
#[test]
fn renew_logs_in_without_a_token_or_when_the_refresh_is_refused() {
    let mut p = Platform::new(quiet_config());
    p.inject(
        |seen| if seen.purpose == Purpose::Refresh { Fault::Answer(faults::refresh_refused()) } else { Fault::Pass },
    );
    let mut core = p.core();
    let (r, events) = renewal(&mut core, &mut p, ClientCore::renew);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(events, [Event::Renewed { purpose: Purpose::Login, generation: 1 }]);
    assert_eq!(p.trace(), ["login -> 200"]);
    let (r, _) = renewal(&mut core, &mut p, ClientCore::renew);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(p.trace(), ["login -> 200", "refresh -> 400/50400", "login -> 200"]);
    // The next call uses the second login's token, which the simulator accepts.
    let id = create_task(&mut core, &mut p, 3);
    assert!(!id.as_str().is_empty());
    assert_eq!(p.trace_from(3), ["POST firmwareUpgrade -> 200"]);

    // A renewal whose exchange times out, with retries off, ends with that failure.
    let mut p = Platform::new(quiet_config());
    p.inject(|_| Fault::Drop(TransportFailure::Timeout));
    let mut config = p.config();
    config.retry = RetryPolicy::disabled();
    let mut offline = ClientCore::new(config, 7);
    let (r, _) = renewal(&mut offline, &mut p, ClientCore::renew);
    assert!(matches!(r, Err(CallError::Transport { failure: TransportFailure::Timeout, .. })), "{r:?}");
    assert_eq!(p.trace(), ["login -> lost(Timeout)"]);
}

/// A login whose first attempt cannot connect is tried again; bad credentials are not.
#[test]
fn a_login_retries_transport_failures_but_not_bad_credentials() {
    let mut p = Platform::new(quiet_config());
    p.inject(|seen| if seen.n == 0 { Fault::Drop(TransportFailure::ConnectFailed) } else { Fault::Pass });
    let mut core = p.core();
    let (r, _) = renewal(&mut core, &mut p, ClientCore::login);
    assert!(r.is_ok());
    assert_eq!(p.trace(), ["login -> lost(ConnectFailed)", "login -> 200"]);

    let mut config = p.config();
    config.secret = iot_model::AppSecret::new("wrong");
    let mut wrong = ClientCore::new(config, 7);
    let (r, _) = renewal(&mut wrong, &mut p, ClientCore::login);
    let Err(CallError::Api(e)) = r else { panic!("{r:?}") };
    assert_eq!(e.code, Some(ErrorCode::BadCredentials));
    assert_eq!(p.trace_from(2), ["login -> 401/100208"]);
}

/// A login() started while a call renews waits for that renewal, then runs its own.
#[test]
fn a_login_waits_for_the_renewal_in_flight() {
    let mut p = Platform::new(quiet_config()).with_latency(25);
    let mut core = p.core();
    let query = QueryUpgradeTask::new(OperationId::new("0123456789abcdef01234567").unwrap());
    let now = p.clock.now();
    let machines = vec![Either::Call(core.call(&query, now)), Either::Renewal(core.login(now))];
    let (results, exec) = Executor::new(machines).run(&mut core, &mut p);
    // The made-up task is not found; what matters is that the call got that far with a token.
    assert!(results[0].as_ref().is_err_and(|e| e.api().is_some_and(|a| a.code == Some(ErrorCode::TaskNotFound))));
    assert!(results[1].is_ok());
    assert_eq!(exec.parked, 1);
    // The call's login came first; the forced login followed it instead of racing it.
    assert_eq!(p.trace(), ["login -> 200", "GET 0123456789abcdef01234567 -> 404/123009", "login -> 200"]);
    assert_eq!(p.log.iter().map(|r| r.at_ms).collect::<Vec<_>>(), [0, 25, 25]);
}

/// A call or a renewal in one executor, their results reduced to success.
enum Either<'r, E: iot_proto::Endpoint> {
    Call(Call<'r, E, Lost>),
    Renewal(Renewal<Lost>),
}

fn unit<R>(step: Step<R, Lost>) -> Step<(), Lost> {
    match step {
        Step::Send(t) => Step::Send(t),
        Step::Wait(t) => Step::Wait(t),
        Step::WaitForRenewal(t) => Step::WaitForRenewal(t),
        Step::Done(r) => Step::Done(r.map(|_| ())),
    }
}

impl<E: iot_proto::Endpoint> Machine for Either<'_, E> {
    type Output = ();

    fn poll(&mut self, core: &mut ClientCore, now: Instant) -> Step<(), Lost> {
        match self {
            Self::Call(c) => unit(c.poll(core, now)),
            Self::Renewal(r) => r.poll(core, now),
        }
    }

    fn answer(&mut self, core: &mut ClientCore, now: Instant, answer: harness::Answer) {
        match self {
            Self::Call(c) => Machine::answer(c, core, now, answer),
            Self::Renewal(r) => Machine::answer(r, core, now, answer),
        }
    }

    fn next_event(&mut self) -> Option<Event> {
        match self {
            Self::Call(c) => c.poll_event(),
            Self::Renewal(r) => r.poll_event(),
        }
    }
}

/// A logout whose token the platform already rejects has nothing left to revoke: it ends there, without
/// renewing the token only to log it out (a login would also invalidate the tokens of the application's other
/// processes).
#[test]
fn a_logout_of_a_rejected_token_does_not_renew_it() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    assert!(renewal(&mut core, &mut p, ClientCore::login).0.is_ok());
    p.login_elsewhere();
    let logout = core.logout::<Lost>(p.clock.now()).unwrap();
    let (r, events) = drive(&mut core, &mut p, logout);
    assert_eq!(p.trace(), ["login -> 200", "POST logout -> 403/1010005"]);
    assert!(r.as_ref().is_err_and(|e| e.api().is_some_and(iot_proto::ApiError::is_token_invalid)), "{r:?}");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(core.session_state(p.clock.now()), SessionState::NoToken);
}

/// A token inside its refresh margin is no longer handed to calls, but the platform still accepts it: a logout
/// then revokes it rather than forgetting it locally and leaving it live.
#[test]
fn a_logout_inside_the_refresh_margin_still_revokes_the_token() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    assert!(renewal(&mut core, &mut p, ClientCore::login).0.is_ok());
    // The simulator's tokens live an hour; the client refreshes from 5 minutes before the end.
    p.clock.advance_to(p.clock.at_ms(p.clock.ms() + 57 * 60_000));
    assert_eq!(core.session_state(p.clock.now()), SessionState::RefreshDue);
    let logout = core.logout::<Lost>(p.clock.now()).expect("a live token to revoke");
    let (r, _) = drive(&mut core, &mut p, logout);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(p.trace(), ["login -> 200", "POST logout -> 200"]);
    assert_eq!(core.session_state(p.clock.now()), SessionState::NoToken);
}

/// A call that took its token and then waited (here behind a throttling pause) while another call renewed the
/// token sends the current token, not the one the renewal superseded (which the platform no longer accepts).
#[test]
fn a_call_that_waited_through_a_renewal_sends_the_current_token() {
    let mut p = Platform::new(quiet_config());
    let mut core = p.core();
    let id = create_task(&mut core, &mut p, 5);
    let from = p.log.len();
    p.inject(move |seen| if seen.n == from { Fault::Answer(faults::throttled(Some(10))) } else { Fault::Pass });
    let (first, second) = (QueryUpgradeTask::new(id.clone()), QuerySubOperations::new(id.clone()));
    // A is throttled: every call pauses for 10 s.
    let now = p.clock.now();
    let mut a = core.call::<_, Lost>(&first, now);
    let Step::Send(t) = a.poll(&mut core, now) else { panic!() };
    let answer = p.exchange(t.purpose, t.attempt, t.request);
    Machine::answer(&mut a, &mut core, now, answer);
    // B starts with the current token and waits out the pause.
    let mut b = core.call::<_, Lost>(&second, now);
    let ten = p.clock.at_ms(p.clock.ms() + 10_000);
    assert_eq!(waits_until(b.poll(&mut core, now)), Some(ten));
    // Meanwhile the application renews the token (after a login elsewhere, say).
    p.clock.advance_to(ten);
    assert!(renewal(&mut core, &mut p, ClientCore::renew).0.is_ok());
    let (ra, _) = drive(&mut core, &mut p, a);
    let (rb, eb) = drive(&mut core, &mut p, b);
    assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
    assert!(eb.iter().all(|e| !matches!(e, Event::TokenRejected { .. })), "{eb:?}");
    assert_eq!(
        p.trace_from(from).iter().map(|l| l.split(' ').next_back().unwrap().to_owned()).collect::<Vec<_>>(),
        ["403/1010009", "200", "200", "200"]
    );
    assert_eq!(p.log[from + 2].bearer, p.log[from + 3].bearer, "both calls sent the refreshed token");
}
