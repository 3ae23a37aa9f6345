//! Soak: many concurrent walks and creates through `iot_hyper::Client` at full rate for a set time, against
//! the simulator in this process behind a server that injects faults, then checks the outcome against the
//! simulator's own state.
//!
//! ```text
//! cargo run --release -p iot-hyper --example soak -- --duration 600     # the record: 10 minutes
//! cargo run -p iot-hyper --example soak -- --duration 4                 # the short run CI does
//! ```
//!
//! Faults, all at once: every `FAIL_EVERY`-th call answers 500/50252 (the simulator's `Faults`); the
//! simulator's rate limit, with half of the apps' clients pacing themselves a little looser than it and the
//! other half not at all, so 1010009 answers really happen; access tokens that expire after a few real seconds
//! (a short lifetime on a simulated clock running `TIME_SCALE` times faster than the client's, so the client
//! believes its token for longer than the platform accepts it); and a server in front of the simulator that
//! drops some connections at the moment they are reused (after the platform acted on the request or before,
//! alternately) and cuts some answers off half-way.
//!
//! Work, on four apps with a client each: walkers walk every item of an upgrade task's subtasks or a batch
//! task's details, creators create upgrade tasks (which the client reconciles when their outcome is in doubt)
//! and batch tasks (which it cannot, so they may end `OutcomeUnknown`). Every create names a set of devices or
//! a name no other create uses, so each task the simulator holds can be traced to the create that made it.
//!
//! Checks (any violation makes the exit status non-zero): every walk that completed saw each item of the
//! simulator's task exactly once, and every walk that failed failed with a typed error, never a short listing;
//! every create that returned `Ok` made exactly one task, the one it returned; no task exists that no create
//! returned, except for creates that ended `OutcomeUnknown`; a create that failed definitely made no task; and
//! resident memory after warm-up grew by no more than the tasks created explain (their cost is measured on a
//! scratch simulator before the run) plus a small slack. The summary counts calls, faults by kind, retries,
//! renewals, reconciliations and outcomes, and lists the memory samples.
//!
//! An example rather than a `[[bench]]`: it checks correctness rather than measuring speed, takes its own
//! arguments, and `cargo test` and `cargo clippy --all-targets` build it, so it cannot rot unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use iot_hyper::{Client, ClientConfig, Error, TransportConfig};
use iot_model::{
    AppId, AppSecret, BatchTaskRequest, CategoryInfo, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType,
    DeviceId, FileType, Json, LoginForm, OperateDevices, OperationId, TaskId,
};
use iot_proto::ratelimit::RateLimit;
use iot_proto::{
    BaseUrl, BearerAuth, CreateBatchTask, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, Endpoint, ErrorCode,
    Login, QuerySubOperations, QueryTaskDetails,
};
use iot_sim::embedded::SimClock;
use iot_sim::sim::{AppConfig, Faults, SimConfig, Simulator, StateSize};
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Devices in the fleet: two kinds of about 400, so about 160 000 distinct pairs of devices to create on.
const FLEET: usize = 800;
/// Simulated seconds per real second. Tokens, the rate limit's window and task timelines run on this clock.
const TIME_SCALE: f64 = 4.0;
/// Access token lifetime in simulated time: 3 real seconds. The client believes at least a minute.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12);
/// The platform's rate limit per app: this many calls per `RATE_WINDOW` of simulated time (one real second),
/// unless `--rate-limit` says otherwise. It must bind for throttling to happen, so it sits below what an app's
/// workers ask for on two busy cores: a debug build serves several times fewer calls than a release build.
const RATE_CALLS: u32 = if cfg!(debug_assertions) { 40 } else { 250 };
const RATE_WINDOW: Duration = Duration::from_secs(4);
/// Every this many calls that reach an endpoint answer 500/50252 (the simulator's own fault injection).
const FAIL_EVERY: u64 = 97;
/// Every this many requests, when it arrives on a connection already used, the connection is dropped.
const REUSE_DROP_EVERY: u64 = 61;
/// Every this many requests, the answer is cut off half-way and the connection dropped.
const MID_DROP_EVERY: u64 = 89;
/// The deadline of one call, retries and waits included; bounds how long the drain at the end can take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Memory growth after warm-up allowed beyond what the tasks explain.
const RSS_SLACK_KB: u64 = 16 * 1024;
/// Tasks created on the scratch simulator to measure what one costs.
const CALIBRATION_TASKS: usize = 2000;

/// The command line.
struct Options {
    duration: Duration,
    rate_limit: u32,
    walkers: usize,
    creators: usize,
    seed: u64,
}

fn options() -> Result<Options, BoxError> {
    let mut o = Options { duration: Duration::from_secs(10), rate_limit: RATE_CALLS, walkers: 6, creators: 2, seed: 1 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--duration" => o.duration = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--rate-limit" => o.rate_limit = value()?.parse()?,
            "--walkers" => o.walkers = value()?.parse()?,
            "--creators" => o.creators = value()?.parse()?,
            "--seed" => o.seed = value()?.parse()?,
            "-h" | "--help" => {
                println!(
                    "usage: soak [--duration SECS] [--rate-limit CALLS_PER_SEC] [--walkers PER_APP] [--creators PER_APP] [--seed N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------------------
// The platform: the simulator behind a server that injects connection faults.

/// What the server saw and did, by kind.
#[derive(Default)]
struct WireStats {
    connections: AtomicU64,
    requests: AtomicU64,
    injected_5xx: AtomicU64,
    throttled: AtomicU64,
    token_rejected: AtomicU64,
    other_errors: AtomicU64,
    /// Dropped at reuse after the simulator acted on the request.
    reuse_acted: AtomicU64,
    /// Dropped at reuse before the simulator saw the request.
    reuse_unseen: AtomicU64,
    /// Answered, then cut off half-way.
    mid_answer: AtomicU64,
}

struct Platform {
    sim: Mutex<Simulator>,
    clock: SimClock,
    /// Off while the soak sets up its walk targets.
    faults: AtomicBool,
    stats: WireStats,
}

impl Platform {
    fn sim(&self) -> std::sync::MutexGuard<'_, Simulator> {
        self.sim.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the simulator on one request and counts the errors it answered, by code.
    fn handle(&self, request: http::Request<Bytes>) -> http::Response<Vec<u8>> {
        let answer = self.sim().handle(self.clock.now(), request);
        if !answer.status().is_success() {
            let code = serde_json::from_slice::<serde_json::Value>(answer.body())
                .ok()
                .and_then(|v| v.get("error_code").and_then(Json::as_str).map(str::to_owned));
            let counter = match code.as_deref().map(<ErrorCode as iot_model::WireEnum>::from_wire) {
                Some(ErrorCode::InternalError) => &self.stats.injected_5xx,
                Some(ErrorCode::Throttled) => &self.stats.throttled,
                Some(ErrorCode::TokenInvalid) => &self.stats.token_rejected,
                _ => &self.stats.other_errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }
}

/// How the server breaks a connection: an error from the service, or from the answer's body, closes it.
#[derive(Debug)]
struct Broken(&'static str);

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Broken {}

type Body = BoxBody<Bytes, Broken>;

/// The whole answer.
fn full(answer: http::Response<Vec<u8>>) -> http::Response<Body> {
    answer.map(|b| Full::new(Bytes::from(b)).map_err(|never| match never {}).boxed())
}

/// The answer's head and the first half of its body, then a broken connection.
fn cut_off(answer: http::Response<Vec<u8>>) -> http::Response<Body> {
    answer.map(|b| {
        let body = Bytes::from(b);
        let half = body.slice(..body.len() / 2);
        let frames = vec![Ok(Frame::data(half)), Err(Broken("the connection broke mid-answer"))];
        BodyExt::boxed(StreamBody::new(stream::iter(frames)))
    })
}

/// Serves the platform on loopback until the listener's task is aborted.
async fn serve(platform: Arc<Platform>) -> Result<(String, tokio::task::JoinHandle<()>), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let _ = stream.set_nodelay(true);
            platform.stats.connections.fetch_add(1, Ordering::Relaxed);
            let platform = platform.clone();
            // Requests answered on this connection: a request arriving when it is not 0 reuses it.
            let served = Arc::new(AtomicU64::new(0));
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let (p, served) = (platform.clone(), served.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let request = http::Request::from_parts(parts, body);
                        let n = p.stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
                        let faults = p.faults.load(Ordering::Relaxed);
                        if faults && served.load(Ordering::Relaxed) > 0 && n % REUSE_DROP_EVERY == 0 {
                            // The race every pooled client meets: the gateway closed the idle connection as the
                            // request went out. Alternately it had passed the request on, or not.
                            let (acted, unseen) = (&p.stats.reuse_acted, &p.stats.reuse_unseen);
                            if (acted.load(Ordering::Relaxed) + unseen.load(Ordering::Relaxed)) % 2 == 0 {
                                let _lost = p.handle(request);
                                acted.fetch_add(1, Ordering::Relaxed);
                            } else {
                                unseen.fetch_add(1, Ordering::Relaxed);
                            }
                            // An error from the service closes the connection without an answer.
                            return Err::<http::Response<Body>, Broken>(Broken("dropped at reuse"));
                        }
                        let answer = p.handle(request);
                        served.fetch_add(1, Ordering::Relaxed);
                        if faults && n % MID_DROP_EVERY == 0 {
                            p.stats.mid_answer.fetch_add(1, Ordering::Relaxed);
                            return Ok(cut_off(answer));
                        }
                        Ok(full(answer))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok((base, server))
}

// ---------------------------------------------------------------------------------------------------------
// The client's own account of what it did, from its `tracing` events.

/// Counts the client's events by kind: requests sent by purpose, retries by reason, renewals, throttling
/// pauses, reconciliations. A subscriber of our own, so the example needs no extra dependency.
#[derive(Default)]
struct EventCounter {
    next_span: AtomicU64,
    counts: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
struct Fields {
    message: String,
    purpose: String,
    reason: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "purpose" => &mut self.purpose,
            "reason" => &mut self.reason,
            _ => return,
        };
        let _ = write!(slot, "{value:?}");
    }
}

impl tracing::Subscriber for EventCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("iot_")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let key = match f.message.as_str() {
            "sending" => format!("sent {}", f.purpose),
            "retrying" => format!("retry {} ({})", f.reason, f.purpose),
            "token renewed" => format!("renewed by {}", f.purpose),
            m if m.contains("task it made was found") => "reconciled: found".to_owned(),
            m if m.contains("it made no task") => "reconciled: absent".to_owned(),
            m => m.to_owned(),
        };
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default() += 1;
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------------------------------------
// Work: walks and creates, and what they saw.

/// One app and its client.
struct App {
    id: AppId,
    client: Client,
    /// How the client paces itself, for the summary.
    pacing: String,
}

/// Devices of one kind and the package the soak upgrades them with.
struct Pool {
    package: CategoryInfo,
    firmware: bool,
    devices: Vec<DeviceId>,
}

/// Hands out device pairs no create used before: pool by pool in turn, pairs `(i, i + d)` by growing `d`.
struct PairSource {
    next: Vec<(usize, usize)>,
    turn: usize,
}

impl PairSource {
    fn take(&mut self, pools: &[Pool]) -> Option<(usize, Vec<DeviceId>)> {
        for _ in 0..pools.len() {
            let p = self.turn % pools.len();
            self.turn += 1;
            let n = pools[p].devices.len();
            let (d, i) = self.next[p];
            if d >= n {
                continue;
            }
            self.next[p] = if i + d + 1 >= n { (d + 1, 0) } else { (d, i + 1) };
            return Some((p, vec![pools[p].devices[i].clone(), pools[p].devices[i + d].clone()]));
        }
        None
    }
}

/// What a create asked for, which identifies the task it may have made.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Upgrade(BTreeSet<DeviceId>),
    Batch(String),
}

#[derive(Debug)]
enum Outcome {
    Ok(String),
    Unknown(String),
    Failed(String),
}

/// Everything the workers report.
#[derive(Default)]
struct Tally {
    walks_ok: [AtomicU64; 2],
    walk_items: AtomicU64,
    walks_failed: Mutex<BTreeMap<String, u64>>,
    creates: Mutex<Vec<(Key, Outcome)>>,
    violations: Mutex<Vec<String>>,
    upgrade_targets: Mutex<Vec<OperationId>>,
    /// Batch tasks by owning app.
    batch_targets: Vec<Mutex<Vec<TaskId>>>,
    pairs_exhausted: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tally {
    fn violation(&self, what: String) {
        lock(&self.violations).push(what);
    }

    fn walk_failed(&self, kind: &str, e: &Error) {
        *lock(&self.walks_failed).entry(format!("{kind}: {}", error_kind(e))).or_default() += 1;
    }
}

/// A failure's kind: the variant, with the platform's code or the transport's classification.
fn error_kind(e: &Error) -> String {
    let cause = match e.cause() {
        Error::Api(api) => format!("api {}", api.code.as_ref().map_or("(no code)".to_owned(), |c| c.to_string())),
        Error::Timeout(_) => "timeout".to_owned(),
        Error::Transport(t) | Error::Connect(t) | Error::Tls(t) => format!("transport {:?}", t.failure()),
        Error::Decode(_) => "decode".to_owned(),
        Error::Walk(w) => format!("walk ({w})"),
        Error::Item(_) => "unreadable item".to_owned(),
        Error::Invalid(_) => "invalid".to_owned(),
        Error::Paging(_) => "paging".to_owned(),
        other => format!("{other}"),
    };
    if e.outcome_unknown() { format!("outcome unknown after {cause}") } else { cause }
}

/// A small xorshift generator: the workers' choices need not be good random numbers, only varied.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Walks one task's items and checks them against the simulator's own record.
async fn walk(platform: &Platform, app: &App, app_index: usize, tally: &Tally, rng: &mut Xorshift) {
    let upgrade = rng.below(2) == 0;
    if upgrade {
        let target = {
            let targets = lock(&tally.upgrade_targets);
            targets.get(rng.below(targets.len())).cloned()
        };
        let Some(op) = target else { return };
        let page_size = [10, 25, 50, 100][rng.below(4)];
        let mut items = app.client.items(QuerySubOperations::new(op.clone()).with_page_size(page_size));
        let mut seen = Vec::new();
        while let Some(item) = items.next().await {
            match item {
                Ok(sub) => seen.push(sub.sub_operation_id.to_string()),
                Err(e) => return walk_error(tally, "subtask walk", &e),
            }
        }
        let truth = platform.sim().sub_operation_ids(&op);
        let truth = truth.map(|t| t.iter().map(ToString::to_string).collect());
        check_walk(tally, 0, &format!("subtasks of {op}"), seen, truth);
    } else {
        let target = {
            let targets = lock(&tally.batch_targets[app_index]);
            targets.get(rng.below(targets.len())).cloned()
        };
        let Some(task) = target else { return };
        let page_size = [25, 50, 100, 250][rng.below(4)];
        let mut items = app.client.items(QueryTaskDetails::new(task.clone()).with_page_size(page_size));
        let mut seen = Vec::new();
        while let Some(item) = items.next().await {
            match item {
                Ok(detail) => {
                    let command = detail.param.as_ref().and_then(|p| p.get("commandId")).and_then(Json::as_str);
                    seen.push(command.unwrap_or("(no commandId)").to_owned());
                }
                Err(e) => return walk_error(tally, "detail walk", &e),
            }
        }
        let truth = platform.sim().batch_command_ids(&task);
        let truth = truth.map(|t| t.iter().map(ToString::to_string).collect());
        check_walk(tally, 1, &format!("details of {task}"), seen, truth);
    }
}

fn walk_error(tally: &Tally, kind: &str, e: &Error) {
    if matches!(e, Error::Item(_)) {
        // The simulator only sends readable items: an unreadable one is the reader's bug.
        tally.violation(format!("{kind}: an item could not be read: {e:?}"));
    }
    tally.walk_failed(kind, e);
}

/// A completed walk must have seen every item of the task exactly once, in any order.
fn check_walk(tally: &Tally, kind: usize, what: &str, mut seen: Vec<String>, truth: Option<Vec<String>>) {
    let Some(mut truth) = truth else { return tally.violation(format!("{what}: the simulator has no such task")) };
    tally.walk_items.fetch_add(seen.len() as u64, Ordering::Relaxed);
    seen.sort();
    truth.sort();
    if seen != truth {
        let unique: BTreeSet<&String> = seen.iter().collect();
        tally.violation(format!(
            "{what}: the walk completed with {} items ({} distinct) where the task has {}",
            seen.len(),
            unique.len(),
            truth.len()
        ));
    } else {
        tally.walks_ok[kind].fetch_add(1, Ordering::Relaxed);
    }
}

/// Creates one upgrade task on a device pair no create used before, or a batch task with a fresh name.
#[allow(clippy::too_many_arguments)]
async fn create(
    app: &App,
    app_index: usize,
    upgrade: bool,
    n: u64,
    pools: &[Pool],
    pairs: &Mutex<PairSource>,
    tally: &Tally,
) {
    let pair = if upgrade { lock(pairs).take(pools) } else { None };
    if upgrade && pair.is_none() {
        tally.pairs_exhausted.store(true, Ordering::Relaxed);
    }
    let (key, result) = match pair {
        Some((p, devices)) => {
            let key = Key::Upgrade(devices.iter().cloned().collect());
            let body =
                CreateUpgradeTask::new(pools[p].package.file_id.clone(), OperateDevices::new().with_devices(devices));
            let result = if pools[p].firmware {
                app.client.send(&CreateFirmwareUpgradeTask::new(body)).await.map(|r| r.operation_id)
            } else {
                app.client.send(&CreateSoftwareUpgradeTask::new(body)).await.map(|r| r.operation_id)
            };
            if let Ok(op) = &result {
                lock(&tally.upgrade_targets).push(op.clone());
            }
            (key, result.map(|op| op.to_string()))
        }
        None => {
            let name = format!("soak-{app_index}-{n}");
            let devices = {
                let pool = &pools[n as usize % pools.len()].devices;
                let i = (n as usize / pools.len()) % pool.len();
                vec![pool[i].clone(), pool[(i + 1) % pool.len()].clone()]
            };
            let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, reboot()).with_device_list(devices);
            let request = BatchTaskRequest::device_cmd(app.id.clone(), 30, name.clone(), param);
            let result = app.client.send(&CreateBatchTask::new(request)).await.map(|r| r.task_id);
            if let Ok(task) = &result {
                lock(&tally.batch_targets[app_index]).push(task.clone());
            }
            (Key::Batch(name), result.map(|t| t.to_string()))
        }
    };
    let outcome = match result {
        Ok(id) => Outcome::Ok(id),
        Err(e) if e.outcome_unknown() => Outcome::Unknown(error_kind(&e)),
        Err(e) => Outcome::Failed(error_kind(&e)),
    };
    lock(&tally.creates).push((key, outcome));
}

fn reboot() -> Command {
    Command::new("Maintenance".to_owned(), "REBOOT".to_owned())
}

// ---------------------------------------------------------------------------------------------------------
// Memory.

/// `VmRSS` of this process, in KiB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

struct Sample {
    at: Duration,
    rss_kb: u64,
    state: StateSize,
}

/// Bytes one upgrade task and one batch task of two devices cost the simulator: `CALIBRATION_TASKS` of each
/// made on a scratch simulator, which is returned so that its memory stays taken (freed memory would be reused
/// by the soak's own tasks and hide their cost).
fn calibrate(pools: &[Pool], seed: u64) -> Result<(Simulator, f64, f64), BoxError> {
    let config = SimConfig::default().with_seed(seed).with_fleet_size(FLEET).with_rate_limit(None);
    let app = AppId::new(iot_sim::sim::DEFAULT_APP_ID)?;
    let mut sim = Simulator::new(config);
    let base = BaseUrl::parse("http://scratch.invalid")?;
    let now = SystemTime::now();
    let login = Login::new(LoginForm::new(app.clone(), AppSecret::new(iot_sim::sim::DEFAULT_SECRET)));
    let token = Login::try_from_http_response(&sim.handle(now, login.try_into_http_request(&base, None)?))?;
    let auth = BearerAuth { app_id: &app, token: &token.access_token };
    let mut pairs = PairSource { next: vec![(1, 0); pools.len()], turn: 0 };
    let before = rss_kb();
    for _ in 0..CALIBRATION_TASKS {
        let Some((p, devices)) = pairs.take(pools) else { break };
        let body =
            CreateUpgradeTask::new(pools[p].package.file_id.clone(), OperateDevices::new().with_devices(devices));
        let request = if pools[p].firmware {
            CreateFirmwareUpgradeTask::new(body).try_into_http_request(&base, Some(auth))?
        } else {
            CreateSoftwareUpgradeTask::new(body).try_into_http_request(&base, Some(auth))?
        };
        sim.handle(now, request);
    }
    let middle = rss_kb();
    for n in 0..CALIBRATION_TASKS {
        let pool = &pools[n % pools.len()].devices;
        let devices = vec![pool[n % pool.len()].clone(), pool[(n + 1) % pool.len()].clone()];
        let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, reboot()).with_device_list(devices);
        let request = BatchTaskRequest::device_cmd(app.clone(), 30, format!("scratch-{n}"), param);
        sim.handle(now, CreateBatchTask::new(request).try_into_http_request(&base, Some(auth))?);
    }
    let after = rss_kb();
    let (u, b) = sim.task_counts();
    if (u, b) != (CALIBRATION_TASKS, CALIBRATION_TASKS) {
        return Err(format!("calibration made {u} upgrade and {b} batch tasks").into());
    }
    let per = |kb: u64| kb as f64 * 1024.0 / CALIBRATION_TASKS as f64;
    Ok((sim, per(middle.saturating_sub(before)), per(after.saturating_sub(middle))))
}

// ---------------------------------------------------------------------------------------------------------
// The run.

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, BoxError> {
    let options = options()?;
    let counter = Arc::new(EventCounter::default());
    tracing::subscriber::set_global_default(counter.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(soak(options, &counter))
}

fn app_ids() -> Result<Vec<AppId>, BoxError> {
    Ok((0..4).map(|i| AppId::new(format!("soak-app-{i}"))).collect::<Result<_, _>>()?)
}

async fn soak(options: Options, counter: &EventCounter) -> Result<bool, BoxError> {
    let started_load = load_average();
    let ids = app_ids()?;
    let secret = "soak-secret";
    let mut config = SimConfig::default()
        .with_seed(options.seed)
        .with_fleet_size(FLEET)
        .with_token_lifetime(TOKEN_LIFETIME)
        .with_rate_limit(Some((options.rate_limit, RATE_WINDOW)))
        .with_faults(Faults::fail_every_nth(FAIL_EVERY));
    for id in &ids {
        config = config.with_app(AppConfig::new(id.clone(), AppSecret::new(secret)));
    }
    let sim = Simulator::new(config);

    // One pool per device kind, firmware and software in turn, each with the kind's newest package of that type.
    let mut pools: Vec<Pool> = Vec::new();
    for package in sim.packages() {
        let firmware = package.file_type == Some(FileType::FirmwarePackage);
        let devices: Vec<DeviceId> = sim.devices_for(package).map(|d| d.device_id.clone()).collect();
        let wanted_firmware = pools.len().is_multiple_of(2);
        let slot = pools.iter().position(|p| p.devices == devices);
        match slot {
            // Later packages of a kind are newer.
            Some(i) if pools[i].firmware == firmware => pools[i].package = package.clone(),
            Some(_) => {}
            None if firmware == wanted_firmware && devices.len() >= 3 => {
                pools.push(Pool { package: package.clone(), firmware, devices })
            }
            None => {}
        }
    }
    if pools.is_empty() {
        return Err("the fleet has no device kind with a package".into());
    }
    let (scratch, upgrade_cost, batch_cost) = calibrate(&pools, options.seed)?;

    let platform = Arc::new(Platform {
        sim: Mutex::new(sim),
        clock: SimClock::new(SystemTime::now(), TIME_SCALE),
        faults: AtomicBool::new(false),
        stats: WireStats::default(),
    });
    let (base, server) = serve(platform.clone()).await?;
    let base = BaseUrl::parse(&base)?;

    // Half the clients pace themselves 10% looser than the platform's limit, half not at all.
    let real_window = RATE_WINDOW.div_f64(TIME_SCALE);
    let mut apps = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (limit, pacing) = if i % 2 == 0 {
            let calls = options.rate_limit + options.rate_limit / 10;
            (RateLimit::new(calls, real_window), format!("{calls} per {real_window:?}"))
        } else {
            (RateLimit::disabled(), "off".to_owned())
        };
        let transport = TransportConfig::default()
            .with_connect_timeout(Duration::from_secs(2))
            .with_request_timeout(Duration::from_secs(10))
            .with_pool_idle_timeout(Duration::from_secs(30));
        let config = ClientConfig::new(base.clone(), id.clone(), AppSecret::new(secret))
            .with_transport(transport)
            .with_call_timeout(CALL_TIMEOUT)
            .with_rate_limit(limit);
        apps.push(App { id: id.clone(), client: Client::new(config)?, pacing });
    }

    // Walk targets with many items: an upgrade task per pool over 250 of its devices (a task's limit is 256), and per app a command task
    // per device kind. Made without connection faults; the simulator's 5xx may still lose one, which is fine.
    let tally = Arc::new(Tally { batch_targets: ids.iter().map(|_| Mutex::default()).collect(), ..Tally::default() });
    for pool in &pools {
        let body = CreateUpgradeTask::new(
            pool.package.file_id.clone(),
            OperateDevices::new().with_devices(pool.devices.iter().take(250).cloned().collect()),
        );
        let made = if pool.firmware {
            apps[0].client.send(&CreateFirmwareUpgradeTask::new(body)).await.map(|_| ())
        } else {
            apps[0].client.send(&CreateSoftwareUpgradeTask::new(body)).await.map(|_| ())
        };
        if let Err(e) = made {
            eprintln!("setup: an upgrade task was not made: {e:?}");
        }
    }
    for app in &apps {
        for (k, pool) in pools.iter().enumerate() {
            let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, reboot()).with_device_list(pool.devices.clone());
            let request = BatchTaskRequest::device_cmd(app.id.clone(), 30, format!("setup-{k}"), param);
            if let Err(e) = app.client.send(&CreateBatchTask::new(request)).await {
                eprintln!("setup: a batch task was not made: {e:?}");
            }
        }
    }
    let (setup_upgrades, setup_batches) = {
        let sim = platform.sim();
        (sim.upgrade_tasks(), sim.batch_tasks())
    };
    let setup_ids: BTreeSet<String> = setup_upgrades
        .iter()
        .map(|(id, _)| id.to_string())
        .chain(setup_batches.iter().map(|(id, _, _)| id.to_string()))
        .collect();
    lock(&tally.upgrade_targets).extend(setup_upgrades.iter().map(|(id, _)| id.clone()));
    for (task, owner, _) in &setup_batches {
        if let Some(i) = ids.iter().position(|a| a == owner) {
            lock(&tally.batch_targets[i]).push(task.clone());
        }
    }
    if setup_upgrades.is_empty() || setup_batches.is_empty() {
        return Err("the setup made no walk targets".into());
    }
    let setup_calls = counter_total(counter, "sent ");
    let setup_state = platform.sim().state_size();

    // The run.
    platform.faults.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let apps = Arc::new(apps);
    let pools = Arc::new(pools);
    let pairs = Arc::new(Mutex::new(PairSource { next: vec![(1, 0); pools.len()], turn: 0 }));
    let samples = Arc::new(Mutex::new(vec![Sample { at: Duration::ZERO, rss_kb: rss_kb(), state: setup_state }]));
    let sampler = {
        let (platform, stop, samples) = (platform.clone(), stop.clone(), samples.clone());
        let every = options.duration.div_f64(60.0).clamp(Duration::from_millis(250), Duration::from_secs(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let state = platform.sim().state_size();
                lock(&samples).push(Sample { at: start.elapsed(), rss_kb: rss_kb(), state });
            }
        })
    };
    let mut workers = Vec::new();
    for (a, _) in apps.iter().enumerate() {
        for w in 0..options.walkers {
            let (platform, apps, tally, stop) = (platform.clone(), apps.clone(), tally.clone(), stop.clone());
            let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15 ^ ((a * 1000 + w) as u64 + 1));
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    walk(&platform, &apps[a], a, &tally, &mut rng).await;
                }
            }));
        }
        for c in 0..options.creators {
            let (apps, pools, pairs, tally, stop) =
                (apps.clone(), pools.clone(), pairs.clone(), tally.clone(), stop.clone());
            workers.push(tokio::spawn(async move {
                let mut n = c as u64;
                while !stop.load(Ordering::Relaxed) {
                    create(&apps[a], a, n.is_multiple_of(2), n, &pools, &pairs, &tally).await;
                    n += options.creators as u64;
                }
            }));
        }
    }
    tokio::time::sleep(options.duration).await;
    stop.store(true, Ordering::Relaxed);
    let ran = start.elapsed();
    // Every operation in flight finishes (each call within its deadline), so every create's outcome is known.
    let drain = tokio::time::timeout(CALL_TIMEOUT * 3, futures_util::future::join_all(workers)).await;
    let drained = start.elapsed() - ran;
    let _ = sampler.await;
    platform.faults.store(false, Ordering::Relaxed);
    let end_state = platform.sim().state_size();
    lock(&samples).push(Sample { at: start.elapsed(), rss_kb: rss_kb(), state: end_state });
    server.abort();
    let ended_load = load_average();

    // Checks.
    if drain.is_err() {
        tally.violation(format!("the workers did not finish within {:?} of the end", CALL_TIMEOUT * 3));
    }
    let creates = std::mem::take(&mut *lock(&tally.creates));
    let report = check_creates(&platform, &creates, &setup_ids, &tally);
    let memory = check_memory(&lock(&samples), options.duration, upgrade_cost, batch_cost, &tally);
    drop(scratch);

    // Summary.
    let counts = lock(&counter.counts).clone();
    let stats = &platform.stats;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let calls = counter_total(counter, "sent ") - setup_calls;
    println!(
        "soak: {:.0} s of load (+{:.1} s to drain) on {} CPUs, seed {}",
        ran.as_secs_f64(),
        drained.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.seed
    );
    println!("  load average (1, 5, 15 min) at start {started_load}, at end {ended_load}");
    println!(
        "  {} apps x ({} walkers + {} creators); platform limit {} calls per {:?} per app; client pacing: {}",
        apps.len(),
        options.walkers,
        options.creators,
        options.rate_limit,
        RATE_WINDOW.div_f64(TIME_SCALE),
        apps.iter().map(|a| a.pacing.as_str()).collect::<Vec<_>>().join(", ")
    );
    println!(
        "calls: {calls} requests sent by the clients, {:.0}/s; {} requests reached the server on {} connections",
        calls as f64 / ran.as_secs_f64(),
        load(&stats.requests),
        load(&stats.connections)
    );
    println!("faults injected (whole run):");
    println!("  5xx (50252, every {FAIL_EVERY}th call)      {}", load(&stats.injected_5xx));
    println!("  throttled (1010009)                 {}", load(&stats.throttled));
    println!("  token rejected (1010005)            {}", load(&stats.token_rejected));
    println!("  dropped at reuse, after acting      {}", load(&stats.reuse_acted));
    println!("  dropped at reuse, before acting     {}", load(&stats.reuse_unseen));
    println!("  cut off mid-answer                  {}", load(&stats.mid_answer));
    println!("  other error answers                 {}", load(&stats.other_errors));
    println!("client events (whole run, setup included):");
    for (k, v) in &counts {
        println!("  {k:<58} {v}");
    }
    let walks_ok = [load(&tally.walks_ok[0]), load(&tally.walks_ok[1])];
    println!(
        "walks: {} subtask walks and {} detail walks complete ({} items, each seen exactly once)",
        walks_ok[0],
        walks_ok[1],
        load(&tally.walk_items)
    );
    for (k, v) in lock(&tally.walks_failed).iter() {
        println!("  failed, {k:<52} {v}");
    }
    print!("{report}");
    let first = lock(&samples).first().map_or(0, |s| s.rss_kb);
    println!(
        "simulator state: {} -> {} upgrade tasks ({} -> {} subtasks), {} -> {} batch tasks ({} -> {} subtasks), {} -> {} ids, {} -> {} pending version changes",
        setup_state.upgrade_tasks,
        end_state.upgrade_tasks,
        setup_state.upgrade_subtasks,
        end_state.upgrade_subtasks,
        setup_state.batch_tasks,
        end_state.batch_tasks,
        setup_state.batch_subtasks,
        end_state.batch_subtasks,
        setup_state.issued_ids,
        end_state.issued_ids,
        setup_state.pending_versions,
        end_state.pending_versions
    );
    println!("memory: {memory}");
    println!(
        "  measured cost per task: upgrade (2 devices) {upgrade_cost:.0} B, batch (2 devices) {batch_cost:.0} B; RSS at start of run {first} KiB"
    );
    let samples = lock(&samples);
    let step = (samples.len() / 12).max(1);
    for (i, s) in samples.iter().enumerate() {
        if i % step == 0 || i + 1 == samples.len() {
            println!(
                "  t={:>6.1}s  rss {:>7} KiB  tasks {:>6} upgrade + {:>6} batch",
                s.at.as_secs_f64(),
                s.rss_kb,
                s.state.upgrade_tasks,
                s.state.batch_tasks
            );
        }
    }
    drop(samples);

    // Sanity: the run must have exercised what it claims to.
    let exercised = [
        ("a complete subtask walk", walks_ok[0]),
        ("a complete detail walk", walks_ok[1]),
        ("an injected 5xx", load(&stats.injected_5xx)),
        ("a throttling answer", load(&stats.throttled)),
        ("a rejected token", load(&stats.token_rejected)),
        ("a drop at reuse after acting", load(&stats.reuse_acted)),
        ("a drop at reuse before acting", load(&stats.reuse_unseen)),
        ("an answer cut off", load(&stats.mid_answer)),
    ];
    for (what, n) in exercised {
        if n == 0 {
            tally.violation(format!("the run never saw {what}"));
        }
    }
    if tally.pairs_exhausted.load(Ordering::Relaxed) {
        println!("note: every device pair was used; later creates were batch tasks only");
    }
    let violations = lock(&tally.violations);
    if violations.is_empty() {
        println!("checks: all passed");
        Ok(true)
    } else {
        println!("checks: {} violated", violations.len());
        for v in violations.iter().take(30) {
            println!("  VIOLATION {v}");
        }
        Ok(false)
    }
}

fn counter_total(counter: &EventCounter, prefix: &str) -> u64 {
    lock(&counter.counts).iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

/// Traces every task the soak made to its create, and every create to its task; returns the outcome report.
fn check_creates(platform: &Platform, creates: &[(Key, Outcome)], setup: &BTreeSet<String>, tally: &Tally) -> String {
    let (upgrades, batches) = {
        let sim = platform.sim();
        (sim.upgrade_tasks(), sim.batch_tasks())
    };
    // Tasks by what made them: device set or name.
    let mut tasks: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    for (id, devices) in upgrades.iter().filter(|(id, _)| !setup.contains(id.as_str())) {
        tasks.entry(Key::Upgrade(devices.iter().cloned().collect())).or_default().push(id.to_string());
    }
    for (id, _, name) in batches.iter().filter(|(id, _, _)| !setup.contains(id.as_str())) {
        tasks.entry(Key::Batch(name.clone())).or_default().push(id.to_string());
    }
    let mut asked: BTreeSet<&Key> = BTreeSet::new();
    let mut returned: BTreeSet<&str> = BTreeSet::new();
    // Per kind: ok, failed by kind, unknown by kind with (task found, absent).
    let mut ok = [0u64; 2];
    let mut failed: [BTreeMap<&str, u64>; 2] = Default::default();
    let mut unknown: [BTreeMap<&str, (u64, u64)>; 2] = Default::default();
    for (key, outcome) in creates {
        let k = usize::from(matches!(key, Key::Batch(_)));
        if !asked.insert(key) {
            tally.violation(format!("two creates asked for {key:?}; the soak's own bug"));
        }
        let made = tasks.get(key).map_or(&[][..], Vec::as_slice);
        match outcome {
            Outcome::Ok(id) => {
                ok[k] += 1;
                if made != [id.clone()] {
                    tally.violation(format!("a create of {key:?} returned {id}, but the platform holds {made:?}"));
                }
                if !returned.insert(id) {
                    tally.violation(format!("two creates returned the same task {id}"));
                }
            }
            Outcome::Unknown(why) => {
                let e = unknown[k].entry(why).or_default();
                match made.len() {
                    0 => e.1 += 1,
                    1 => e.0 += 1,
                    _ => tally.violation(format!("a create of {key:?} in doubt made {} tasks", made.len())),
                }
            }
            Outcome::Failed(why) => {
                *failed[k].entry(why).or_default() += 1;
                if !made.is_empty() {
                    tally.violation(format!("a create of {key:?} failed ({why}) as not made, but made {made:?}"));
                }
            }
        }
    }
    for (key, ids) in &tasks {
        if !asked.contains(key) {
            tally.violation(format!("tasks {ids:?} exist that no create asked for ({key:?})"));
        }
    }
    let mut out = String::new();
    for (k, name) in ["upgrade", "batch"].iter().enumerate() {
        let _ = writeln!(out, "{name} creates: {} ok, each made exactly one task", ok[k]);
        for (why, n) in &failed[k] {
            let _ = writeln!(out, "  failed, certainly not made ({why}): {n}, none made");
        }
        for (why, (found, absent)) in &unknown[k] {
            let _ = writeln!(
                out,
                "  outcome unknown ({why}): {}, of which the task exists {found}, absent {absent}",
                found + absent
            );
        }
    }
    out
}

/// Resident memory after warm-up may grow by what the simulator's new tasks cost (measured) and the soak's
/// record of each create, plus a slack; anything more is a leak on one side or the other.
fn check_memory(samples: &[Sample], duration: Duration, upgrade_cost: f64, batch_cost: f64, tally: &Tally) -> String {
    let warm_up = duration.div_f64(10.0).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let Some(base) = samples.iter().find(|s| s.at >= warm_up) else {
        return "too few samples to judge".to_owned();
    };
    let Some(peak) = samples.iter().filter(|s| s.at >= warm_up).max_by_key(|s| s.rss_kb) else {
        return "too few samples to judge".to_owned();
    };
    let end = samples.last().map_or(base.state, |s| s.state);
    let new_upgrades = end.upgrade_tasks.saturating_sub(base.state.upgrade_tasks) as f64;
    let new_batches = end.batch_tasks.saturating_sub(base.state.batch_tasks) as f64;
    // The soak keeps a record of each create (its key and outcome) and of each walk target: about 200 bytes.
    let bookkeeping = 256.0 * (new_upgrades + new_batches);
    let explained_kb = ((new_upgrades * upgrade_cost + new_batches * batch_cost + bookkeeping) / 1024.0) as u64;
    let grew = peak.rss_kb.saturating_sub(base.rss_kb);
    let bound = explained_kb * 3 / 2 + RSS_SLACK_KB;
    if grew > bound {
        tally.violation(format!(
            "memory grew {grew} KiB after warm-up, more than the {explained_kb} KiB the tasks explain (bound {bound} KiB)"
        ));
    }
    format!(
        "after warm-up ({:.0} s) RSS {} KiB, peak {} KiB: grew {grew} KiB; {} new upgrade and {} new batch tasks explain {explained_kb} KiB; bound 1.5 x that + {} KiB = {bound} KiB; unexplained {} KiB",
        base.at.as_secs_f64(),
        base.rss_kb,
        peak.rss_kb,
        new_upgrades,
        new_batches,
        RSS_SLACK_KB,
        grew.saturating_sub(explained_kb) as i64,
    )
}
