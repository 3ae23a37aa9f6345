//! The simulator's pure core: a deterministic state machine that answers the platform's northbound API.
//!
//! [`Simulator::handle`] takes the simulated time and one `http::Request` and returns the `http::Response` the
//! platform would send. Nothing here opens a socket, reads a clock, sleeps, spawns or asks the OS for randomness:
//! time arrives as `now`, randomness comes from a [`rng::Rng`] seeded by [`SimConfig::seed`]. The same
//! configuration and the same requests at the same times give byte-identical answers.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use iot_model::{AppId, AppSecret, LoginForm};
//! use iot_proto::{BaseUrl, Endpoint, Login};
//! use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};
//!
//! let mut sim = Simulator::new(SimConfig::default());
//! let base = BaseUrl::parse("http://sim.invalid").unwrap();
//! let login = Login::new(LoginForm::new(AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(DEFAULT_SECRET)));
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let answer = sim.handle(now, login.try_into_http_request(&base, None).unwrap());
//! let token = Login::try_from_http_response(&answer).unwrap();
//! assert_eq!(token.expires_in, 3600);
//! ```
//!
//! # Time
//!
//! State advances lazily: a task's whole future (when each device starts, how long it downloads and installs,
//! whether and why it fails, when it is retried) is drawn when the task is created, from a random stream derived
//! from the seed and the task's sequence number. A query computes the state at its `now` from that plan, so
//! the answer depends only on the creation time, the seed and `now`, never on how often anyone asked. Time never
//! runs backwards: a `now` earlier than one already seen is treated as the latest time seen.
//!
//! # Authentication and tokens
//!
//! Apps are configured in [`SimConfig::apps`] (by default one, [`DEFAULT_APP_ID`] with [`DEFAULT_SECRET`]).
//! Login reads the form body; refresh reads JSON. Each login or refresh issues a new access token (valid for
//! [`SimConfig::token_lifetime`], an hour by default) and a new refresh token (valid for
//! [`SimConfig::refresh_token_lifetime`], a day), and invalidates every token the app held before, as the
//! platform does. An empty secret or refresh token answers 400/102202, a wrong appId or secret 401/100208, a
//! frozen app ([`AppConfig::frozen`]) 400/100247, an unknown, superseded or expired refresh token 400/50400.
//! Every other call needs `app_key` naming an app and `Authorization: Bearer` with that app's current access
//! token, else 403/1010005; this check comes before the request is read, so a call without credentials gets
//! 1010005 whatever its body. Logout revokes the access token it names if it is the app's current one (the
//! refresh token stays usable) and answers an empty 200 either way.
//!
//! Tokens are 32 hexadecimal digits of an HMAC-SHA256 keyed by the app's secret over the seed, the app id and
//! a per-app issue counter. Everything else follows from the seed alone, and the default seed is public, so a
//! token drawn from the seed would let anyone who knows it in without the secret; keyed by the secret, the same
//! seed and secret still give the same tokens, and nobody without the secret can predict one.
//!
//! # Holding under attack
//!
//! [`Simulator::check_head`] gives a server the answer to a request from its head alone, before any of its
//! body is read: an unknown path, a wrong method, or an authenticated endpoint without `app_key` and a current
//! token of that app. It also tells the server how much body to read at most: [`SMALL_BODY_LIMIT`] for login,
//! refresh, logout and the endpoints without a body. Requests are read strictly: a JSON body with anything but
//! whitespace after its value answers the endpoint's bad-request code (120015 for the upgrade endpoints,
//! 100022 for batch tasks, 50400 for refresh, 102202 for logout) and changes nothing, and every list a request
//! carries is capped:
//! an upgrade task's `devices` and `deviceGroups` at the contract's 256 (123024), a batch task's `tags` at 256,
//! and a DeviceCmd `param`'s `deviceList` at `MAX_BATCH_DEVICES` (1000) and `groupList` at `MAX_BATCH_GROUPS`
//! (256), all 100022 (see `iot_model::limits`). The command's own `paras` is free JSON defined by the device's
//! profile; only the server's body cap bounds it.
//!
//! # Requests and answers
//!
//! Paths are matched by iot-proto's router: one trailing `/` is accepted on every path (`POST .../tasks/`),
//! while an empty segment never stands for an id, so `.../operations//subOperations` answers 404. A `pageNo`
//! or `pageSize` that cannot be read (negative, not a number, repeated) answers the paging family's
//! page-limit code, 400/123029 for the upgrade queries and 400/100022 for batch details, as an out-of-range
//! one does.
//!
//! Answers have the members of the platform's documented examples: every member is sent, and one whose value
//! is not known yet is `null` rather than missing. A running task's `stopTime` is null, a task created
//! without a policy has `"policy": null`, a subtask that has not started has null `startTime` and
//! `stopTime`, and a batch subtask has a null `output` until it succeeds and a null `error` unless it
//! failed or timed out.
//!
//! # Rate limit
//!
//! [`SimConfig::rate_limit`] (100 calls per 60 s per app by default, `None` to switch it off) is a sliding
//! window: a call is refused with 403/1010009 when the app already had that many admitted calls in the window
//! ending now. Refused calls are not recorded, so a client that backs off recovers as soon as its oldest calls
//! leave the window. A call counts once it has proved it is the app, before its body is checked: for
//! authenticated calls once its token is the current one of the app in `app_key`; for login and refresh once
//! the secret is right (so login counts, and a client cannot escape throttling by logging in again). Calls that
//! fail authentication are not counted, so a stranger who names an app cannot spend its quota and throttle it.
//!
//! # Upgrade tasks
//!
//! Creation runs the contract's stateless checks first (through `try_from_http_request`, which answers their
//! codes), then: a custom window starting before `now` answers 123033; an unknown `fileId` 404/123002; a
//! package of the wrong kind for the endpoint (a software package given to `firmwareUpgrade`, or the reverse)
//! 400/120015, because the request itself is wrong whatever the devices are; an unknown device 404/123002; a
//! device whose type, model or manufacturer differs from the package's 400/123016. Device groups expand to the
//! fleet's devices of the given type, model and manufacturer that belong to any named group; those three must
//! equal the package's (else 123016), an unknown group or a selection without any device answers 123002.
//! Repeated devices are upgraded once.
//!
//! Each device's subtask goes `wait` → `processing` → `success` or `fail`. With `now` (or no policy) it starts
//! within 30 s; with `device_online` when the device comes online, within two hours; with `custom` within 30 s
//! of the window's start, and whatever has not finished at the window's end fails with a timeout cause (a
//! retry that would start after the end is not started). A download takes 20 to 120 s, an installation 30 to
//! 180 s. An attempt fails with probability [`SimConfig::failure_rate`] (10% by default) with one of these
//! causes in `detailInfo`: "download timed out", "device rejected the package: checksum mismatch", "device
//! refused the upgrade: battery too low", "installation failed: the device rolled back to the previous
//! version", "the device did not report the upgrade result in time". With `retryType`, a failed device is tried
//! again 60 s later, up to `retryTimes` more times. `extendInfo` holds `sourceVersion`, `targetVersion`,
//! `curVersion`, `downloadTime` (when the last download finished) and `upgradeTime` (when the upgrade
//! succeeded), times in the compact format or null. A device that succeeds runs the new version from then on.
//!
//! `staResult` is always counted from the subtasks: `total = wait + processing + success + fail + stop`, and
//! `timeout` counts the failed subtasks whose cause is a timeout (a part of `fail`, not an extra state). The
//! task is `wait` while every subtask waits, `success` when all succeeded, `failed` when all finished and some
//! failed, `processing` otherwise; `stopTime` is set once it has finished. A task's `targets` are those it was
//! created with, plus the package's device type, model and manufacturer when the request left them out, and
//! its `extendPara` holds `fileVersion`, the version it installs. The API has no way to stop a task,
//! so `stop` stays 0. Lists keep creation order; a page past the end is empty.
//!
//! # Batch tasks
//!
//! Only `DeviceCmd` tasks are simulated, selecting devices by `DeviceList`, `DeviceType` (narrowed by `model`
//! and `manufacturerId`), `GroupList` or `Broadcast`; other task types and the `DeviceArea` and `GroupIdList`
//! selections answer 400/100022 "unsupported in simulator", as does a selection without any device or naming
//! an unknown group. The body's `appId` must be the caller's app: another app answers 403/100217, an app that
//! does not exist 403/100203; the same holds for the `appId` query parameter of the queries. Another app's
//! task answers 404/105005.
//!
//! Commands are sent from 0.5 s after creation, twenty a second; each subtask goes `Pending` → `WaitResult`
//! → `Success` (with an `output`) or `Fail` (with an `error` string holding an escaped error body); a device
//! answers within 2 to 90 s. `timeout` counts minutes: at the deadline every unfinished subtask becomes
//! `Timeout`, and a command never sent (its device stayed offline) also counts in `expiredCnt`, a part of
//! `timeoutCnt`. With probability [`SimConfig::failure_rate`] a command fails (half of those), is never
//! answered (three in ten) or finds its device offline (two in ten); a listed device that does not exist fails at
//! once. The task is `Pending` until its first command is sent, `Running`, then `Complete`, or `Timeout` when
//! its deadline left subtasks unfinished. `completeCnt = successCnt + failCnt + timeoutCnt`, `progress` and
//! `successRate` are per mille of `totalCnt`. Command subtasks have no `index` or `nodeId`, so filtering by
//! those returns nothing.
//!
//! # Errors the platform does not document
//!
//! Codes the simulator invents start with 9 and are listed in [`codes`]: a path no endpoint has answers
//! 404/[`codes::NOT_FOUND`], a known path with the wrong method 405/[`codes::METHOD_NOT_ALLOWED`] with an
//! `Allow` header, and batch subtask errors use the `9000xx` codes. [`Faults::fail_every_nth`] makes every n-th
//! call (counting calls that reached an endpoint) answer 500/50252 without any other effect; behind a server, a
//! call answered from its head by [`Simulator::check_head`] never reaches [`Simulator::handle`] and is not
//! counted.

mod auth;
mod batch;
mod fasthash;
pub mod fleet;
mod paging;
pub mod rng;
mod upgrade;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{ALLOW, HeaderValue};
use iot_model::{
    AppId, AppSecret, AuthToken, BatchTaskInfo, CategoryInfo, CategoryPage, CreateBatchTaskResponse,
    CreateUpgradeTaskResponse, FileType, OperateType, OperationId, OperationInfo, OperationPage, SubOperationPage,
    TaskDetailPage, TaskId, Timestamp,
};
use iot_proto::pager::slice_page;
use iot_proto::server::{self, Answer, RouteError, Router};
use iot_proto::{
    APP_KEY, ApiError, CreateBatchTask, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, Empty,
    Endpoint, EndpointVisitor, ErrorCode, Handlers, Login, Logout, Page, QueryBatchTask, QueryPackage,
    QueryPackageList, QuerySubOperations, QueryTaskDetails, QueryUpgradeTask, QueryUpgradeTaskList, RefreshAccessToken,
    UPGRADE_PAGING,
};

pub use fleet::{Device, FleetSource, FleetSpec};

use auth::AppState;
use fasthash::{DeviceIndex, FastMap, FastSet};
use rng::Rng;

/// The appId of the app a default configuration has.
pub const DEFAULT_APP_ID: &str = "sim-app";
/// The secret of the app a default configuration has; a well-known value for local testing only.
pub const DEFAULT_SECRET: &str = "sim-secret";
/// The seed of a default configuration.
pub const DEFAULT_SEED: u64 = 1;
/// The number of generated devices in a default configuration.
pub const DEFAULT_FLEET_SIZE: usize = 300;
/// The share of upgrade attempts and commands that fail in a default configuration.
pub const DEFAULT_FAILURE_RATE: f64 = 0.1;
/// The largest body [`Simulator::check_head`] lets a server read for a call that presents no bearer token
/// (login, refresh) or that has no body of its own (queries, deletions, logout): 8 KiB. The biggest legitimate one
/// is a refresh of an appId and a secret of 256 characters each, all percent-encoded 4-byte characters
/// (about 3 KiB each), plus a token; anything larger is not a call the platform would answer.
pub const SMALL_BODY_LIMIT: usize = 8 * 1024;

/// Error codes the simulator invents where the platform documents none; all start with 9. Generated from the
/// spec's `[[simulator_errors]]`, and listed apart from the platform's codes in docs/api-reference.md.
pub mod codes;

/// Milliseconds since the Unix epoch, the simulator's internal time.
pub(crate) type Ms = i64;

/// Errors building a simulator's inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The fleet file is not valid JSON of the documented shape.
    #[error("cannot read the fleet file")]
    FleetFile(#[source] serde_json::Error),
    /// A device id appears twice.
    #[error("device id {0} appears more than once")]
    DuplicateDevice(String),
    /// A package file id appears twice.
    #[error("package file id {0} appears more than once")]
    DuplicatePackage(String),
    /// An app id appears twice.
    #[error("app id {0} appears more than once")]
    DuplicateApp(String),
}

/// An application that may log in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppConfig {
    /// The app's id (its `app_key`).
    pub app_id: AppId,
    /// The app's secret.
    pub secret: AppSecret,
    /// A frozen app's logins are refused with 100247.
    pub frozen: bool,
}

impl AppConfig {
    /// An app that may log in with `secret`.
    pub fn new(app_id: AppId, secret: AppSecret) -> Self {
        Self { app_id, secret, frozen: false }
    }

    /// The same app, frozen.
    pub fn frozen(mut self) -> Self {
        self.frozen = true;
        self
    }
}

/// Faults to inject, for testing how clients cope with a failing platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// Every n-th call that reaches an endpoint answers 500/50252 and has no other effect.
    pub fail_every_nth: Option<NonZeroU64>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every `n`-th call fails with 500/50252; `0` means never.
    pub fn fail_every_nth(n: u64) -> Self {
        Self { fail_every_nth: NonZeroU64::new(n) }
    }
}

/// Everything that shapes a simulator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimConfig {
    /// Seed of every random choice (fleet, ids, task timelines); tokens also depend on the app's secret.
    pub seed: u64,
    /// The apps that may log in.
    pub apps: Vec<AppConfig>,
    /// Where the devices and packages come from.
    pub fleet: FleetSource,
    /// How long an access token is accepted.
    pub token_lifetime: Duration,
    /// How long a refresh token is accepted.
    pub refresh_token_lifetime: Duration,
    /// At most this many calls per app in any window of this length; `None` switches the limit off.
    pub rate_limit: Option<(u32, Duration)>,
    /// Probability, from 0 to 1, that an upgrade attempt or a command fails.
    pub failure_rate: f64,
    /// Faults to inject.
    pub faults: Faults,
}

impl Default for SimConfig {
    /// Seed 1, one app ([`DEFAULT_APP_ID`] / [`DEFAULT_SECRET`]), 300 generated devices of two types with
    /// packages for each, the platform's token lifetimes and rate limit, a 10% failure rate and no faults.
    fn default() -> Self {
        let app = AppId::new(DEFAULT_APP_ID).ok().map(|id| AppConfig::new(id, AppSecret::new(DEFAULT_SECRET)));
        Self {
            seed: DEFAULT_SEED,
            apps: app.into_iter().collect(),
            fleet: FleetSource::Generated { size: DEFAULT_FLEET_SIZE },
            token_lifetime: Duration::from_secs(iot_model::limits::TOKEN_LIFETIME_SECS),
            refresh_token_lifetime: Duration::from_secs(iot_model::limits::REFRESH_TOKEN_LIFETIME_SECS),
            rate_limit: Some((
                iot_model::limits::RATE_LIMIT_CALLS as u32,
                Duration::from_secs(iot_model::limits::RATE_LIMIT_WINDOW_SECS),
            )),
            failure_rate: DEFAULT_FAILURE_RATE,
            faults: Faults::none(),
        }
    }
}

impl SimConfig {
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generates this many devices from the seed.
    pub fn with_fleet_size(mut self, size: usize) -> Self {
        self.fleet = FleetSource::Generated { size };
        self
    }

    /// Uses this fleet.
    pub fn with_fleet(mut self, fleet: FleetSpec) -> Self {
        self.fleet = FleetSource::Spec(fleet);
        self
    }

    /// Adds an app.
    pub fn with_app(mut self, app: AppConfig) -> Self {
        self.apps.push(app);
        self
    }

    /// Sets the access token lifetime.
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Sets the rate limit (`None` switches it off).
    pub fn with_rate_limit(mut self, limit: Option<(u32, Duration)>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets the failure rate (clamped to 0..=1 when used).
    pub fn with_failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// Sets the faults to inject.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// How much state a simulator holds (see [`Simulator::state_size`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateSize {
    /// Upgrade tasks created.
    pub upgrade_tasks: usize,
    /// Their subtasks, one per device.
    pub upgrade_subtasks: usize,
    /// Batch tasks created.
    pub batch_tasks: usize,
    /// Their subtasks, one per device.
    pub batch_subtasks: usize,
    /// Ids issued so far (tasks, subtasks, commands), kept to never issue one twice.
    pub issued_ids: usize,
    /// Device version changes scheduled and not yet due.
    pub pending_versions: usize,
}

/// A device's version change, due when an upgrade succeeds.
#[derive(Clone, Debug)]
struct VersionEvent {
    at: Ms,
    seq: u64,
    /// The device's position in the fleet.
    device: usize,
    file_type: FileType,
    /// The version, one string shared by every event of the task: applying an event frees nothing, so half a
    /// million applied changes do not leave the heap in holes.
    version: std::sync::Arc<str>,
}

/// The simulated platform.
#[derive(Clone)]
pub struct Simulator {
    seed: u64,
    token_lifetime: Ms,
    refresh_lifetime: Ms,
    rate_limit: Option<(u32, Ms)>,
    failure_rate: f64,
    faults: Faults,
    router: Router,
    apps: Vec<AppState>,
    devices: Vec<Device>,
    device_index: DeviceIndex,
    packages: Vec<CategoryInfo>,
    upgrades: Vec<upgrade::UpgradeTask>,
    /// Upgrade tasks by id, so a lookup does not scan the list.
    upgrade_index: FastMap<OperationId, usize>,
    /// The upgrade tasks each device (by fleet position) is part of, in creation order (the `deviceId` filter of
    /// the task list).
    upgrades_by_device: FastMap<u32, Vec<u32>>,
    /// Every upgrade task's status at the clock, kept current as tasks reach their fixed transition times.
    upgrade_status: upgrade::StatusIndex,
    batches: Vec<batch::BatchTask>,
    /// Batch tasks by id.
    batch_index: FastMap<TaskId, usize>,
    /// Version changes not yet applied, keyed by due time, creation sequence and scheduling order, so changes
    /// apply in a fixed order and scheduling one is O(log n) rather than an insert into a sorted `Vec`.
    pending_versions: BTreeMap<(Ms, u64, u64), VersionEvent>,
    /// Version changes scheduled so far, the tie-breaker of `pending_versions`.
    scheduled_versions: u64,
    /// The stream ids and tokens are drawn from.
    ids: Rng,
    /// Every id issued, as the number its 24 hexadecimal digits spell: a sixth of the memory of the strings.
    issued_ids: FastSet<u128>,
    next_seq: u64,
    clock: Ms,
    calls: u64,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Apps hold live tokens, so only counts are shown.
        f.debug_struct("Simulator")
            .field("seed", &self.seed)
            .field("apps", &self.apps.len())
            .field("devices", &self.devices.len())
            .field("packages", &self.packages.len())
            .field("upgrade_tasks", &self.upgrades.len())
            .field("batch_tasks", &self.batches.len())
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> Ms {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The last millisecond of the year 9999, the end of the platform's time format.
const MAX_MS: Ms = 253_402_300_799_999;

/// A system time as simulated time, clamped to the range the platform's time format covers so that adding
/// durations of days or years can never overflow.
fn to_ms(t: SystemTime) -> Ms {
    t.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0).min(MAX_MS)
}

/// A simulated time in the platform's format, when it is in range.
pub(crate) fn timestamp(ms: Ms) -> Option<Timestamp> {
    Timestamp::from_unix_seconds(ms.div_euclid(1000)).ok()
}

/// An error answer with a code the platform does not document.
fn sim_error(status: http::StatusCode, code: &str, desc: String) -> http::Response<Vec<u8>> {
    let mut error = ApiError::new(<ErrorCode as iot_model::WireEnum>::from_wire(code), desc);
    error.status = status;
    server::error_response(&error)
}

/// What [`Simulator::check_head`] decides from a request's head.
#[derive(Debug)]
#[non_exhaustive]
pub enum HeadCheck {
    /// Read the body, at most `max_body` bytes when given; then call [`Simulator::handle`].
    Read {
        /// The most body bytes this endpoint can take, when it has its own cap.
        max_body: Option<usize>,
    },
    /// The whole answer, to send without reading the body.
    Answer(http::Response<Vec<u8>>),
}

/// A request's typed form, as [`Endpoint::try_from_http_request`] read it; boxed so that one type carries any
/// endpoint's.
type Parsed = Result<Box<dyn Any + Send>, ApiError>;

/// A request whose body has been read into its endpoint's typed form, without the simulator.
///
/// Reading a body (JSON of up to a megabyte, with every id checked) is the costly, stateless part of a call.
/// [`Prepared::new`] does it without touching any state, so a server can run it before taking the lock around
/// the simulator and [`Simulator::handle_prepared`] holds the lock only for the call's effect: a large or
/// malformed body then stalls nobody else. The answer is the same as [`Simulator::handle`] gives: credentials
/// and the rate limit are still checked before a parse error is answered.
pub struct Prepared<B> {
    req: http::Request<B>,
    parsed: Option<Parsed>,
}

impl<B> fmt::Debug for Prepared<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The request may carry a secret or a token; only its method and path are shown.
        f.debug_struct("Prepared").field("method", self.req.method()).field("path", &self.req.uri().path()).finish()
    }
}

impl<B: AsRef<[u8]>> Prepared<B> {
    /// Routes `req` and reads it as its endpoint's typed request; a request no endpoint takes is kept as it is.
    pub fn new(req: http::Request<B>) -> Self {
        let route = ROUTER.get_or_init(Router::new).route(req.method(), req.uri().path());
        let parsed = route.ok().map(|r| r.endpoint.visit(Parse(&req)));
        Self { req, parsed }
    }
}

/// Reads a request as the typed request of the endpoint it is routed to ([`EndpointId::visit`](iot_proto::EndpointId::visit)).
struct Parse<'r, B>(&'r http::Request<B>);

impl<B: AsRef<[u8]>> EndpointVisitor for Parse<'_, B> {
    type Output = Parsed;

    fn visit<E: Endpoint + Send + 'static>(self) -> Parsed {
        E::try_from_http_request(self.0).map(|e| Box::new(e) as Box<dyn Any + Send>)
    }
}

/// The router [`Prepared::new`] uses; built once, since it is the same for every simulator.
static ROUTER: OnceLock<Router> = OnceLock::new();

/// The typed request `pre` holds for `E`, or `req` read now when it holds none.
fn take_parsed<E: Endpoint + 'static, B: AsRef<[u8]>>(
    pre: &mut Option<Parsed>,
    req: &http::Request<B>,
) -> Result<E, ApiError> {
    match pre.take() {
        Some(Ok(any)) => match any.downcast::<E>() {
            Ok(ep) => Ok(*ep),
            // Only reachable if routing disagreed with itself; reading again is always right.
            Err(_) => E::try_from_http_request(req),
        },
        Some(Err(e)) => Err(e),
        None => E::try_from_http_request(req),
    }
}

/// The answer to a call without `app_key` and a current access token of that app.
fn token_invalid() -> ApiError {
    ApiError::new(ErrorCode::TokenInvalid, "the app_key or the access token is invalid or expired")
}

impl Simulator {
    /// Builds a simulator. Later duplicates of an app id, device id or package file id are ignored (use
    /// [`FleetSpec::from_json`] to have them reported), and the failure rate is clamped to 0..=1.
    pub fn new(config: SimConfig) -> Self {
        let fleet = match config.fleet {
            FleetSource::Generated { size } => FleetSpec::generate(config.seed, size),
            FleetSource::Spec(spec) => spec,
        };
        let mut sim = Self {
            seed: config.seed,
            token_lifetime: millis(config.token_lifetime),
            refresh_lifetime: millis(config.refresh_token_lifetime),
            rate_limit: config.rate_limit.map(|(n, w)| (n, millis(w))),
            failure_rate: if config.failure_rate.is_nan() { 0.0 } else { config.failure_rate.clamp(0.0, 1.0) },
            faults: config.faults,
            router: Router::new(),
            apps: Vec::new(),
            devices: Vec::new(),
            device_index: DeviceIndex::default(),
            packages: Vec::new(),
            upgrades: Vec::new(),
            upgrade_index: FastMap::default(),
            upgrades_by_device: FastMap::default(),
            upgrade_status: upgrade::StatusIndex::default(),
            batches: Vec::new(),
            batch_index: FastMap::default(),
            pending_versions: BTreeMap::new(),
            scheduled_versions: 0,
            ids: Rng::derive(config.seed, &[0x1D5]),
            issued_ids: FastSet::default(),
            next_seq: 0,
            clock: 0,
            calls: 0,
        };
        for app in config.apps {
            // Duplicates are documented as ignored.
            let _ = sim.add_app(app);
        }
        sim.devices.reserve(fleet.devices.len());
        sim.device_index.reserve(&sim.devices, fleet.devices.len());
        for device in fleet.devices {
            let _ = sim.add_device(device);
        }
        for package in fleet.packages {
            let _ = sim.add_package(package);
        }
        sim
    }

    /// The seed the simulator was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The devices, in fleet order, with the versions they ran at the latest time the simulator has seen
    /// (see [`Simulator::advance_to`]).
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The devices `package` fits, in fleet order: the same device type, model and manufacturer (what the
    /// platform checks when a task installs the package).
    pub fn devices_for<'a>(&'a self, package: &'a CategoryInfo) -> impl Iterator<Item = &'a Device> + 'a {
        self.devices.iter().filter(move |d| {
            Some(&d.device_type) == package.device_type.as_ref()
                && Some(&d.model) == package.model.as_ref()
                && Some(&d.manufacturer_name) == package.manufacturer_name.as_ref()
        })
    }

    /// The same as [`Simulator::devices`].
    pub fn fleet(&self) -> &[Device] {
        &self.devices
    }

    /// One device by id.
    pub fn device(&self, device_id: &str) -> Option<&Device> {
        self.device_position(device_id).and_then(|i| self.devices.get(i))
    }

    /// The position of a device in the fleet.
    fn device_position(&self, device_id: &str) -> Option<usize> {
        self.device_index.find(&self.devices, device_id)
    }

    /// The version packages, in the order they were added.
    pub fn packages(&self) -> &[CategoryInfo] {
        &self.packages
    }

    /// The apps' ids.
    pub fn app_ids(&self) -> impl Iterator<Item = &AppId> {
        self.apps.iter().map(|a| &a.config.app_id)
    }

    /// The number of upgrade tasks and of batch tasks created so far.
    pub fn task_counts(&self) -> (usize, usize) {
        (self.upgrades.len(), self.batches.len())
    }

    /// How much state the simulator holds, to tell growth that the tasks explain from a leak.
    pub fn state_size(&self) -> StateSize {
        StateSize {
            upgrade_tasks: self.upgrades.len(),
            upgrade_subtasks: self.upgrades.iter().map(upgrade::UpgradeTask::subtask_count).sum(),
            batch_tasks: self.batches.len(),
            batch_subtasks: self.batches.iter().map(batch::BatchTask::subtask_count).sum(),
            issued_ids: self.issued_ids.len(),
            pending_versions: self.pending_versions.len(),
        }
    }

    /// The latest simulated time seen.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.clock).unwrap_or(0))
    }

    /// Adds an app.
    pub fn add_app(&mut self, app: AppConfig) -> Result<(), SimError> {
        if self.apps.iter().any(|a| a.config.app_id == app.app_id) {
            return Err(SimError::DuplicateApp(app.app_id.to_string()));
        }
        self.apps.push(AppState::new(app));
        Ok(())
    }

    /// Adds a device at the end of the fleet.
    pub fn add_device(&mut self, device: Device) -> Result<(), SimError> {
        // One probe of the index on the common path (a new device); a duplicate puts the old position back.
        if !self.device_index.insert(&self.devices, device.device_id.as_str(), self.devices.len()) {
            return Err(SimError::DuplicateDevice(device.device_id.to_string()));
        }
        self.devices.push(device);
        Ok(())
    }

    /// Adds a version package.
    pub fn add_package(&mut self, package: CategoryInfo) -> Result<(), SimError> {
        if self.packages.iter().any(|p| p.file_id == package.file_id) {
            return Err(SimError::DuplicatePackage(package.file_id.to_string()));
        }
        self.packages.push(package);
        Ok(())
    }

    /// Moves the simulated clock to `now` (never backwards) and applies the version changes due by then, without
    /// a request; [`Simulator::handle`] does the same before answering.
    pub fn advance_to(&mut self, now: SystemTime) {
        let now = self.tick(now);
        self.apply_versions(now);
    }

    /// Looks at a request's head before its body is read, at simulated time `now`, changing nothing.
    ///
    /// [`HeadCheck::Answer`] is the whole answer, to send without reading the body: an unknown path (404), a wrong
    /// method (405), or an authenticated endpoint called without `app_key` and a current bearer token of that app
    /// (403/1010005, the answer [`Simulator::handle`] would give whatever the body). [`HeadCheck::Read`] with
    /// `Some(n)` asks to read at most `n` bytes of body ([`SMALL_BODY_LIMIT`] for login, refresh, logout and the
    /// body-less endpoints; a larger body is no call this endpoint can take), with `None` leaves the cap to the
    /// server. The check is repeated by
    /// `handle`, which stays the authority, so a token revoked in between is still refused there.
    pub fn check_head(&self, now: SystemTime, head: &http::request::Parts) -> HeadCheck {
        let now = self.clock.max(to_ms(now));
        let path = head.uri.path();
        let route = match self.router.route(&head.method, path) {
            Ok(route) => route,
            Err(RouteError::MethodNotAllowed) => return HeadCheck::Answer(self.method_not_allowed(&head.method, path)),
            Err(_) => {
                let desc = format!("no resource at {path}");
                return HeadCheck::Answer(sim_error(http::StatusCode::NOT_FOUND, codes::NOT_FOUND, desc));
            }
        };
        // Read from the metadata, not listed by name, so that a new endpoint is covered as the spec says.
        let meta = route.endpoint.meta();
        let small = meta.family == "auth" || meta.body == iot_proto::endpoint::BodyKind::None;
        if meta.auth {
            let app_key = head.headers.get(APP_KEY).and_then(|v| v.to_str().ok());
            let token = head
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let known = app_key.and_then(|k| self.app_index(k)).and_then(|i| self.apps.get(i));
            if !matches!((known, token), (Some(app), Some(t)) if !t.is_empty() && app.access_ok(t, now)) {
                return HeadCheck::Answer(server::error_response(&token_invalid()));
            }
        }
        HeadCheck::Read { max_body: small.then_some(SMALL_BODY_LIMIT) }
    }

    /// Answers one request at simulated time `now`. Every answer carries the platform's clock in `Date`, as an
    /// HTTP server's do (clients read it, for example to reconcile a create whose outcome is in doubt).
    pub fn handle<B: AsRef<[u8]>>(&mut self, now: SystemTime, req: http::Request<B>) -> http::Response<Vec<u8>> {
        self.handle_prepared(now, Prepared::new(req))
    }

    /// Answers a request read by [`Prepared::new`], at simulated time `now`; the same answer as
    /// [`Simulator::handle`] gives for the same request, `Date` included.
    pub fn handle_prepared<B: AsRef<[u8]>>(
        &mut self,
        now: SystemTime,
        prepared: Prepared<B>,
    ) -> http::Response<Vec<u8>> {
        let mut response = self.answer(now, prepared);
        if let Some(date) = http_date(self.now()) {
            response.headers_mut().insert(http::header::DATE, date);
        }
        response
    }

    fn answer<B: AsRef<[u8]>>(&mut self, now: SystemTime, prepared: Prepared<B>) -> http::Response<Vec<u8>> {
        let Prepared { req, parsed: pre } = prepared;
        let now = self.tick(now);
        let path = req.uri().path();
        let route = match self.router.route(req.method(), path) {
            Ok(route) => route,
            Err(RouteError::MethodNotAllowed) => return self.method_not_allowed(req.method(), path),
            Err(_) => {
                return sim_error(http::StatusCode::NOT_FOUND, codes::NOT_FOUND, format!("no resource at {path}"));
            }
        };
        self.calls += 1;
        if let Some(n) = self.faults.fail_every_nth
            && self.calls.is_multiple_of(n.get())
        {
            let e = ApiError::new(ErrorCode::InternalError, format!("injected fault: call {} fails", self.calls));
            return server::error_response(&e);
        }
        self.apply_versions(now);
        // One handler per endpoint (`Handlers`, generated): a new endpoint in the spec does not compile here
        // until it is answered.
        route.endpoint.dispatch(&mut Call { sim: self, now, req: &req, pre })
    }

    /// Moves the clock forward to `now` (never back) and returns the clock.
    fn tick(&mut self, now: SystemTime) -> Ms {
        self.clock = self.clock.max(to_ms(now));
        self.clock
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// A new 24-digit hexadecimal id, distinct from every id issued before.
    fn fresh_id(&mut self) -> String {
        loop {
            let id = self.ids.hex(24);
            // 24 hexadecimal digits always fit; the string itself is kept by whoever the id is issued to.
            let key = u128::from_str_radix(&id, 16).unwrap_or_default();
            if self.issued_ids.insert(key) {
                return id;
            }
        }
    }

    fn schedule_version(&mut self, event: VersionEvent) {
        // Ordered by due time, creation order breaking ties, then the order they were scheduled in.
        self.scheduled_versions += 1;
        self.pending_versions.insert((event.at, event.seq, self.scheduled_versions), event);
    }

    /// Applies the version changes due by `now`, and moves the upgrade tasks whose status changes by `now`.
    fn apply_versions(&mut self, now: Ms) {
        self.upgrade_status.advance(now, &self.upgrades);
        while let Some(entry) = self.pending_versions.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let event = entry.remove();
            if let Some(d) = self.devices.get_mut(event.device) {
                let running = match event.file_type {
                    FileType::SoftwarePackage => &mut d.software_version,
                    _ => &mut d.firmware_version,
                };
                // Written into the device's own string, which keeps its buffer when the new version fits.
                running.clear();
                running.push_str(&event.version);
            }
        }
    }

    fn method_not_allowed(&self, method: &http::Method, path: &str) -> http::Response<Vec<u8>> {
        let allowed: Vec<&str> = [http::Method::GET, http::Method::POST, http::Method::PUT, http::Method::DELETE]
            .iter()
            .filter(|m| self.router.route(m, path).is_ok())
            .map(http::Method::as_str)
            .collect();
        let mut resp = sim_error(
            http::StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}; use {}", allowed.join(", ")),
        );
        if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
            resp.headers_mut().insert(ALLOW, v);
        }
        resp
    }

    fn app_index(&self, app_id: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.config.app_id.as_str() == app_id)
    }

    /// Counts a call against the app's rate limit; `Err` when the app is over it.
    fn admit(&mut self, app: usize, now: Ms) -> Result<(), ApiError> {
        let limit = self.rate_limit;
        let Some(a) = self.apps.get_mut(app) else { return Ok(()) };
        if a.admit(now, limit) {
            return Ok(());
        }
        Err(ApiError::new(ErrorCode::Throttled, format!("app {} exceeded its call rate; retry later", a.config.app_id)))
    }

    /// Checks `app_key` and the bearer token, then counts the call against the app's rate limit, and returns the
    /// caller's app. The token comes first so that a stranger who names an app but holds no token of it cannot
    /// spend the app's quota and throttle it.
    fn authenticate<B>(&mut self, now: Ms, req: &http::Request<B>) -> Result<AppId, ApiError> {
        let app_key = req.headers().get(APP_KEY).and_then(|v| v.to_str().ok()).ok_or_else(token_invalid)?;
        let app = self.app_index(app_key).ok_or_else(token_invalid)?;
        let (_, token) = server::bearer_auth(req).ok_or_else(token_invalid)?;
        let state = self.apps.get(app).ok_or_else(token_invalid)?;
        if !state.access_ok(token.expose_secret(), now) {
            return Err(token_invalid());
        }
        let app_id = state.config.app_id.clone();
        self.admit(app, now)?;
        Ok(app_id)
    }

    fn login(&mut self, now: Ms, ep: Login) -> Result<AuthToken, ApiError> {
        {
            let app = self.app_index(ep.body.app_id.as_str());
            if ep.body.secret.expose_secret().is_empty() {
                return Err(ApiError::new(ErrorCode::RequiredParameterMissing, "secret is empty"));
            }
            let bad = || ApiError::new(ErrorCode::BadCredentials, "the appId or the secret is wrong");
            let app = app.ok_or_else(bad)?;
            if self.apps.get(app).is_none_or(|s| s.config.secret != ep.body.secret) {
                return Err(bad());
            }
            // Counted only once the secret is right: a stranger's wrong guesses must not throttle the app.
            self.admit(app, now)?;
            let (life, refresh_life) = (self.token_lifetime, self.refresh_lifetime);
            let seed = self.seed;
            let Self { apps, .. } = self;
            let state = apps.get_mut(app).ok_or_else(bad)?;
            if state.config.frozen {
                return Err(ApiError::new(ErrorCode::AppFrozen, format!("app {} is frozen", state.config.app_id)));
            }
            Ok(state.issue(seed, now, life, refresh_life))
        }
    }

    fn refresh(&mut self, now: Ms, ep: RefreshAccessToken) -> Result<AuthToken, ApiError> {
        {
            let body = ep.body;
            let app = self.app_index(body.app_id.as_str());
            if body.secret.expose_secret().is_empty() || body.refresh_token.expose_secret().is_empty() {
                return Err(ApiError::new(ErrorCode::RequiredParameterMissing, "secret or refreshToken is empty"));
            }
            let bad = || ApiError::new(ErrorCode::BadCredentials, "the appId or the secret is wrong");
            let app = app.ok_or_else(bad)?;
            if self.apps.get(app).is_none_or(|s| s.config.secret != body.secret) {
                return Err(bad());
            }
            // As for login: only a caller who knows the secret spends the app's quota.
            self.admit(app, now)?;
            let (life, refresh_life) = (self.token_lifetime, self.refresh_lifetime);
            let seed = self.seed;
            let Self { apps, .. } = self;
            let state = apps.get_mut(app).ok_or_else(bad)?;
            if !state.refresh_ok(body.refresh_token.expose_secret(), now) {
                return Err(ApiError::new(
                    ErrorCode::InvalidRefreshInput,
                    "the refresh token is unknown, superseded or expired",
                ));
            }
            Ok(state.issue(seed, now, life, refresh_life))
        }
    }
}

/// One call being answered: the simulator, the call's time and its request (read ahead of the lock by
/// [`Prepared::new`], or not yet).
struct Call<'s, 'r, B> {
    sim: &'s mut Simulator,
    now: Ms,
    req: &'r http::Request<B>,
    pre: Option<Parsed>,
}

impl<B: AsRef<[u8]>> Handlers for Call<'_, '_, B> {
    type Caller = AppId;

    fn authenticate(&mut self) -> Result<AppId, ApiError> {
        self.sim.authenticate(self.now, self.req)
    }

    fn request<E: Endpoint + Send + 'static>(&mut self) -> Result<E, ApiError> {
        take_parsed::<E, B>(&mut self.pre, self.req)
    }

    fn login(&mut self, request: Login) -> Result<Answer<AuthToken>, ApiError> {
        self.sim.login(self.now, request).map(Answer::from)
    }

    fn refresh_access_token(&mut self, request: RefreshAccessToken) -> Result<Answer<AuthToken>, ApiError> {
        self.sim.refresh(self.now, request).map(Answer::from)
    }

    fn logout(&mut self, app: AppId, ep: Logout) -> Result<Answer<Empty>, ApiError> {
        if ep.body.access_token.expose_secret().is_empty() {
            return Err(ApiError::new(ErrorCode::RequiredParameterMissing, "accessToken is empty"));
        }
        if let Some(a) = self.sim.apps.iter_mut().find(|a| a.config.app_id == app) {
            a.revoke_access(ep.body.access_token.expose_secret());
        }
        Ok(Answer::from(Empty))
    }

    fn query_package_list(&mut self, _: AppId, q: QueryPackageList) -> Result<Answer<CategoryPage>, ApiError> {
        let matching: Vec<&CategoryInfo> = self
            .sim
            .packages
            .iter()
            .filter(|p| {
                q.file_type.as_ref().is_none_or(|f| p.file_type.as_ref() == Some(f))
                    && q.device_type.as_ref().is_none_or(|v| p.device_type.as_ref() == Some(v))
                    && q.model.as_ref().is_none_or(|v| p.model.as_ref() == Some(v))
                    && q.manufacturer_name.as_ref().is_none_or(|v| p.manufacturer_name.as_ref() == Some(v))
                    && q.version.as_ref().is_none_or(|v| p.version.as_ref() == Some(v))
            })
            .collect();
        let (page_no, page_size, total, items) = slice_page(matching, q.page_no, q.page_size, UPGRADE_PAGING);
        Ok(Answer::Typed(Page::from_items(page_no, page_size, total, items.into_iter().cloned().collect())))
    }

    fn query_package(&mut self, _: AppId, q: QueryPackage) -> Result<Answer<CategoryInfo>, ApiError> {
        self.sim
            .packages
            .iter()
            .find(|p| p.file_id == q.file_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::DeviceOrPackageNotFound,
                    format!("version package {} does not exist", q.file_id),
                )
            })
            .map(Answer::from)
    }

    fn delete_package(&mut self, _: AppId, q: DeletePackage) -> Result<Answer<Empty>, ApiError> {
        let packages = &mut self.sim.packages;
        let before = packages.len();
        packages.retain(|p| p.file_id != q.file_id);
        if packages.len() == before {
            return Err(ApiError::new(
                ErrorCode::DeviceOrPackageNotFound,
                format!("version package {} does not exist", q.file_id),
            ));
        }
        Ok(Answer::from(Empty))
    }

    fn create_software_upgrade_task(
        &mut self,
        _: AppId,
        ep: CreateSoftwareUpgradeTask,
    ) -> Result<Answer<CreateUpgradeTaskResponse>, ApiError> {
        self.sim.create_upgrade(self.now, OperateType::SoftwareUpgrade, ep.body).map(Answer::from)
    }

    fn create_firmware_upgrade_task(
        &mut self,
        _: AppId,
        ep: CreateFirmwareUpgradeTask,
    ) -> Result<Answer<CreateUpgradeTaskResponse>, ApiError> {
        self.sim.create_upgrade(self.now, OperateType::FirmwareUpgrade, ep.body).map(Answer::from)
    }

    fn query_upgrade_task(&mut self, _: AppId, q: QueryUpgradeTask) -> Result<Answer<OperationInfo>, ApiError> {
        self.sim.query_upgrade(self.now, &q.operation_id).map(Answer::from)
    }

    fn query_sub_operations(&mut self, _: AppId, q: QuerySubOperations) -> Result<Answer<SubOperationPage>, ApiError> {
        self.sim.list_sub_operations(self.now, &q).map(Answer::from)
    }

    /// The simulator's heaviest frequent query (issue 11, goal 3) is answered with its JSON written from each
    /// listed task's cached item rather than built and serialised per call; the bytes are those of the typed
    /// page `Simulator::list_upgrades` gives (a test compares the two).
    fn query_upgrade_task_list(
        &mut self,
        _: AppId,
        q: QueryUpgradeTaskList,
    ) -> Result<Answer<OperationPage>, ApiError> {
        Ok(Answer::Json(self.sim.list_upgrades_json(self.now, &q)))
    }

    fn create_batch_task(
        &mut self,
        app: AppId,
        ep: CreateBatchTask,
    ) -> Result<Answer<CreateBatchTaskResponse>, ApiError> {
        self.sim.create_batch(self.now, &app, ep.body).map(Answer::from)
    }

    fn query_batch_task(&mut self, app: AppId, q: QueryBatchTask) -> Result<Answer<BatchTaskInfo>, ApiError> {
        self.sim.query_batch(self.now, &app, &q).map(Answer::from)
    }

    fn query_task_details(&mut self, app: AppId, q: QueryTaskDetails) -> Result<Answer<TaskDetailPage>, ApiError> {
        self.sim.query_task_details(self.now, &app, &q).map(Answer::from)
    }
}

/// `t` as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(t: SystemTime) -> Option<http::HeaderValue> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let text = time::OffsetDateTime::from(t).format(format).ok()?;
    http::HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task list written from cached pieces is, byte for byte, the typed page through `server::respond`, at
    /// every stage of the tasks (waiting, running, finished), for each kind of targets, with and without a
    /// policy, and for partial, filtered and empty pages.
    #[test]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    fn the_written_task_list_is_the_serialised_page() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut sim = Simulator::new(SimConfig::default().with_fleet_size(40).with_rate_limit(None));
        let login = |sim: &mut Simulator, now: SystemTime| {
            let form = format!("appId={DEFAULT_APP_ID}&secret={DEFAULT_SECRET}");
            let login = http::Request::post("http://sim.test/iocm/app/sec/v1.1.0/login")
                .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.into_bytes())
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(sim.handle(now, login).body()).unwrap();
            v["accessToken"].as_str().unwrap().to_owned()
        };
        let mut token = login(&mut sim, t0);
        let req = |token: &str, method: &str, path: &str, body: String| {
            http::Request::builder()
                .method(method)
                .uri(format!("http://sim.test{path}"))
                .header("app_key", DEFAULT_APP_ID)
                .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.into_bytes())
                .unwrap()
        };
        let p = sim
            .packages()
            .iter()
            .find(|p| p.file_type == Some(FileType::FirmwarePackage) && sim.devices_for(p).count() > 1)
            .unwrap()
            .clone();
        let devices: Vec<String> = sim.devices_for(&p).take(3).map(|d| d.device_id.to_string()).collect();
        let later = Timestamp::from_unix_seconds(1_700_000_000 + 120).unwrap();
        let bodies = [
            format!(r#"{{"fileId":"{}","targets":{{"devices":["{}"]}}}}"#, p.file_id, devices[0]),
            format!(r#"{{"fileId":"{}","targets":{{"devices":{}}}}}"#, p.file_id, serde_json::json!(devices)),
            format!(
                r#"{{"fileId":"{}","targets":{{"deviceGroups":["north","south"],"deviceType":"{}","model":"{}","manufacturerName":"{}"}}}}"#,
                p.file_id,
                p.device_type.clone().unwrap_or_default(),
                p.model.clone().unwrap_or_default(),
                p.manufacturer_name.clone().unwrap_or_default()
            ),
            format!(
                r#"{{"fileId":"{}","targets":{{"devices":["{}"]}},"policy":{{"executeType":"custom","startTime":"{later}","endTime":"{}"}}}}"#,
                p.file_id,
                devices[1],
                later.checked_add_secs(3600).unwrap()
            ),
        ];
        for body in bodies {
            let resp = sim.handle(t0, req(&token, "POST", "/iodm/northbound/v1.5.0/operations/firmwareUpgrade", body));
            assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(resp.body()));
        }
        let queries = [
            ("", QueryUpgradeTaskList::new()),
            ("?pageSize=2&pageNo=1", QueryUpgradeTaskList::new().with_page_size(2).with_page_no(1)),
            ("?pageSize=10&pageNo=7", QueryUpgradeTaskList::new().with_page_size(10).with_page_no(7)),
        ];
        for secs in [0, 1, 30, 200, 600, 3 * 3600] {
            let now = t0 + Duration::from_secs(secs);
            token = login(&mut sim, now);
            for (query, q) in &queries {
                let resp = sim.handle(
                    now,
                    req(&token, "GET", &format!("/iodm/northbound/v1.5.0/operations{query}"), String::new()),
                );
                let typed =
                    server::respond::<QueryUpgradeTaskList>(Ok(Answer::Typed(sim.list_upgrades(to_ms(now), q))));
                assert_eq!(resp.status(), typed.status());
                assert_eq!(
                    resp.headers().get(http::header::CONTENT_TYPE),
                    typed.headers().get(http::header::CONTENT_TYPE)
                );
                assert_eq!(
                    String::from_utf8_lossy(resp.body()),
                    String::from_utf8_lossy(typed.body()),
                    "{secs}s {query}"
                );
            }
        }
    }

    #[test]
    fn the_clock_never_runs_backwards() {
        let mut sim = Simulator::new(SimConfig::default().with_fleet_size(0));
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        sim.advance_to(t);
        sim.advance_to(UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(sim.now(), t);
    }

    #[test]
    fn absurd_times_are_clamped_instead_of_overflowing() {
        let mut sim = Simulator::new(SimConfig::default().with_fleet_size(2));
        sim.advance_to(UNIX_EPOCH + Duration::from_secs(1 << 40));
        assert_eq!(to_ms(sim.now()), MAX_MS);
        assert!(timestamp(MAX_MS).is_some());
        let login = http::Request::post("http://sim.invalid/iocm/app/sec/v1.1.0/login")
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("appId={DEFAULT_APP_ID}&secret={DEFAULT_SECRET}"));
        let Ok(login) = login else { unreachable!("a valid request") };
        assert_eq!(sim.handle(UNIX_EPOCH + Duration::from_secs(1 << 40), login).status(), 200);
    }

    #[test]
    fn duplicates_are_refused_by_the_adders() {
        let mut sim = Simulator::new(SimConfig::default().with_fleet_size(3));
        assert_eq!(sim.devices().len(), 3);
        let d = sim.devices()[0].clone();
        assert!(matches!(sim.add_device(d), Err(SimError::DuplicateDevice(_))));
        let p = sim.packages()[0].clone();
        assert!(matches!(sim.add_package(p), Err(SimError::DuplicatePackage(_))));
        let Ok(id) = AppId::new(DEFAULT_APP_ID) else { unreachable!("valid id") };
        assert!(matches!(sim.add_app(AppConfig::new(id, AppSecret::new("x"))), Err(SimError::DuplicateApp(_))));
        let debug = format!("{sim:?}");
        assert!(!debug.contains(DEFAULT_SECRET));
    }
}
