//! End-to-end benchmark: what one `QueryUpgradeTaskList` call (a 100-item page) costs through
//! `iot_hyper::Client`, against the same request sent by a bare hyper-util legacy client that decodes the body
//! with `serde_json::from_slice` into plain derive-only structures (the floor).
//!
//! Run with `cargo bench -p iot-hyper --bench e2e` (about half a minute). Settings, all optional:
//! - `E2E_ROUNDS` (default 21): rounds per scenario; every round times each side once, in rotating order, so
//!   that noise from the shared machine hits all sides alike. The figure to read is the median of the
//!   per-round ratios, of wall time and of the client thread's CPU time.
//! - `E2E_SEQ` (default 200) and `E2E_CONC` (default 480): calls per side per round, sequential and with 16
//!   or 64 in flight (rounded down to a multiple of the width).
//! - `E2E_PIN=1`: pins the client thread to CPU 0 and the server thread to CPU 1 (with `taskset`).
//! - `E2E_LOOP=<side>:<server>:<calls>` skips the timing and makes `<calls>` sequential calls after a
//!   warm-up, for instruction counts under callgrind (`--separate-threads=yes`; the client is thread 1).
//!   Sides: `sdk`, `bare`, `raw` (bare without decoding); servers: `fixed`, `fixed1`, `live`. Subtracting a
//!   zero-call run gives the cost of one call.
//!
//! Three servers, all on a tokio runtime with one worker thread of its own:
//! - `fixed`: answers every call with the bytes of a 100-item page captured once from the simulator (login
//!   answers with a captured token), so what is compared is the client, not the simulator.
//! - `fixed1`: the same with a 1-item page, which leaves the per-call machinery almost alone.
//! - `live`: the simulator itself, which renders the page for every call (its cost is in both sides).
//!
//! The client side runs on a current-thread runtime on the main thread, so with 16 calls in flight the
//! ratio is one of CPU cost per call, not of parallelism. Figures and method: `docs/performance.md`, "End to
//! end".

// Bench set-up talks to a local simulator it just started; failing loudly on it is fine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::future::join_all;
use http::header::HeaderValue;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use iot_hyper::{Client, ClientConfig};
use iot_model::{
    AccessToken, AppId, AppSecret, CreateUpgradeTask, DeviceId, ExecuteType, FileType, LoginForm, OperateDevices,
    OperatePolicy,
};
use iot_proto::ratelimit::RateLimit;
use iot_proto::{BaseUrl, BearerAuth, CreateFirmwareUpgradeTask, Endpoint, Login, QueryUpgradeTaskList};
use iot_sim::embedded::{SimClock, handler};
use iot_sim::server::{self, Handler, RunningServer, ServerConfig};
use iot_sim::sim::{AppConfig, DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};
use serde::Deserialize;

/// Tasks in the simulator, and items on the page (the upgrade family's largest page size).
const TASKS: usize = 100;
/// Devices each task targets; with the simulator's 36-character ids this makes a page of about 60 KB, the
/// size the performance notes measured.
const DEVICES_PER_TASK: usize = 5;
/// Calls in flight in the concurrent runs.
const WIDTHS: [usize; 2] = [16, 64];
/// The bare client logs in as a second app: a login invalidates the app's earlier tokens, so sharing one app
/// would make the two clients log each other out.
const BARE_APP: &str = "bench-bare";
const BARE_SECRET: &str = "bench-bare-secret";

/// Plain derive-only mirrors of the model (strings for ids, enums and times, no aliases, no checks): the
/// floor the SDK's decode is compared with.
mod plain {
    #![allow(dead_code)] // Fields are only read through `black_box`.

    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperationPage {
        pub page_no: Option<u32>,
        pub page_size: Option<u32>,
        pub total_count: Option<u64>,
        pub data: Vec<OperationInfo>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperationInfo {
        pub operation_id: String,
        pub create_time: Option<String>,
        pub start_time: Option<String>,
        pub stop_time: Option<String>,
        pub operate_type: Option<String>,
        pub targets: Option<OperateDevices>,
        pub policy: Option<OperatePolicy>,
        pub status: Option<String>,
        pub sta_result: Option<StaResult>,
        pub extend_para: Option<BTreeMap<String, serde_json::Value>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperateDevices {
        pub device_groups: Option<Vec<String>>,
        pub device_type: Option<String>,
        pub model: Option<String>,
        pub manufacturer_name: Option<String>,
        pub devices: Option<Vec<String>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperatePolicy {
        pub execute_type: Option<String>,
        pub start_time: Option<String>,
        pub end_time: Option<String>,
        pub retry_type: Option<bool>,
        pub retry_times: Option<u32>,
    }

    #[derive(Deserialize)]
    pub struct StaResult {
        pub total: Option<u64>,
        pub wait: u64,
        pub processing: u64,
        pub success: u64,
        pub fail: u64,
        pub stop: u64,
        pub timeout: u64,
    }
}

/// Which server a run talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerKind {
    /// Captured bytes of the 100-item page.
    Fixed,
    /// Captured bytes of a 1-item page: almost no decoding, so what is left is the per-call machinery.
    FixedOne,
    /// The simulator, rendering the 100-item page for every call.
    Live,
}

impl ServerKind {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "fixed" => Some(ServerKind::Fixed),
            "fixed1" => Some(ServerKind::FixedOne),
            "live" => Some(ServerKind::Live),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ServerKind::Fixed => "fixed server, 100-item page",
            ServerKind::FixedOne => "fixed server, 1-item page",
            ServerKind::Live => "live simulator, 100-item page",
        }
    }

    /// Items on the page this server answers.
    fn items(self) -> usize {
        match self {
            ServerKind::FixedOne => 1,
            ServerKind::Fixed | ServerKind::Live => TASKS,
        }
    }
}

/// One way of making the call.
#[derive(Clone)]
enum Caller {
    /// `iot_hyper::Client::query_upgrade_task_list`.
    Sdk(Client, QueryUpgradeTaskList),
    /// The bare hyper-util client with the plain decode.
    Bare(Arc<Bare>),
    /// The bare client without decoding: the transport alone.
    Raw(Arc<Bare>),
}

impl Caller {
    fn name(&self) -> &'static str {
        match self {
            Caller::Sdk(..) => "sdk",
            Caller::Bare(_) => "bare",
            Caller::Raw(_) => "raw",
        }
    }

    /// Makes one call and returns the number of items on the page (`None` for `Raw`, which does not decode).
    async fn call(&self) -> Option<usize> {
        match self {
            Caller::Sdk(client, request) => {
                let page = client.query_upgrade_task_list(request).await.unwrap();
                let n = page.data.len();
                black_box(page);
                Some(n)
            }
            Caller::Bare(bare) => {
                let body = bare.fetch().await;
                let page: plain::OperationPage = serde_json::from_slice(&body).unwrap();
                let n = page.data.len();
                black_box(page);
                Some(n)
            }
            Caller::Raw(bare) => {
                black_box(bare.fetch().await);
                None
            }
        }
    }
}

/// A bare hyper-util legacy client with the transport's pool settings, and the request to send.
struct Bare {
    client: LegacyClient<HttpConnector, Full<Bytes>>,
    uri: Uri,
    headers: Vec<(http::HeaderName, HeaderValue)>,
}

impl Bare {
    fn new(uri: Uri, headers: &HeaderMap) -> Self {
        let mut http = HttpConnector::new();
        // The SDK's transport sets these too; without TCP_NODELAY the comparison would measure Nagle.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = LegacyClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(http);
        let headers = headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Self { client, uri, headers }
    }

    /// Sends the request (built afresh, as a hand-written client would) and collects the body.
    async fn fetch(&self) -> Bytes {
        let mut builder = Request::get(self.uri.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name, value.clone());
        }
        let response = self.client.request(builder.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap().to_bytes()
    }

    /// Logs in through the bare client (set-up only) and returns the access token.
    async fn login(&self, base: &BaseUrl, app: &AppId, secret: &str) -> AccessToken {
        let request = Login::new(LoginForm::new(app.clone(), AppSecret::new(secret)))
            .try_into_http_request(base, None)
            .unwrap()
            .map(|body| Full::new(Bytes::from(body)));
        let response = self.client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Login::try_from_http_response(&Response::from_parts(parts, body)).unwrap().access_token
    }
}

/// A response captured once and served again and again.
#[derive(Clone)]
struct Captured {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Captured {
    fn of(response: Response<Vec<u8>>) -> Self {
        let (parts, body) = response.into_parts();
        Self { status: parts.status, headers: parts.headers, body }
    }

    fn to_response(&self) -> Response<Vec<u8>> {
        let mut response = Response::new(self.body.clone());
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

fn auth<'a>(app_id: &'a AppId, token: &'a AccessToken) -> Option<BearerAuth<'a>> {
    Some(BearerAuth { app_id, token })
}

fn page_request(items: usize) -> QueryUpgradeTaskList {
    QueryUpgradeTaskList::new().with_page_size(items as u32)
}

/// Logs in to the pure simulator core, without a server.
fn core_login(sim: &mut Simulator, now: SystemTime, base: &BaseUrl, app: &AppId, secret: &str) -> Response<Vec<u8>> {
    let request = Login::new(LoginForm::new(app.clone(), AppSecret::new(secret))).try_into_http_request(base, None);
    sim.handle(now, request.unwrap())
}

/// Answers captured from the simulator.
struct Captures {
    login: Captured,
    page: Captured,
    one: Captured,
}

/// The simulator with `TASKS` firmware upgrade tasks of `DEVICES_PER_TASK` devices each, created at `t0`,
/// plus the captured login answer and page answers (100 items and 1 item) at `t_serve`, when every task has
/// finished, so the pages no longer change.
fn populated(t0: SystemTime, t_serve: SystemTime) -> (Simulator, Captures) {
    let bare_app = AppConfig::new(AppId::new(BARE_APP).unwrap(), AppSecret::new(BARE_SECRET));
    let mut sim = Simulator::new(SimConfig::default().with_rate_limit(None).with_app(bare_app));
    let base = BaseUrl::parse("http://sim.invalid").unwrap();
    let app = AppId::new(DEFAULT_APP_ID).unwrap();
    let token =
        Login::try_from_http_response(&core_login(&mut sim, t0, &base, &app, DEFAULT_SECRET)).unwrap().access_token;
    let package =
        sim.packages().iter().find(|p| p.file_type == Some(FileType::FirmwarePackage)).cloned().expect("a package");
    let devices: Vec<DeviceId> = sim.devices_for(&package).map(|d| d.device_id.clone()).collect();
    assert!(devices.len() >= DEVICES_PER_TASK, "only {} devices fit the package", devices.len());
    for i in 0..TASKS {
        let chosen = (0..DEVICES_PER_TASK).map(|d| devices[(i * 7 + d) % devices.len()].clone()).collect();
        let task = CreateUpgradeTask::new(package.file_id.clone(), OperateDevices::new().with_devices(chosen))
            .with_policy(
                OperatePolicy::new().with_execute_type(ExecuteType::Now).with_retry_type(true).with_retry_times(2),
            );
        let request = CreateFirmwareUpgradeTask::new(task).try_into_http_request(&base, auth(&app, &token)).unwrap();
        let answer = sim.handle(t0, request);
        CreateFirmwareUpgradeTask::try_from_http_response(&answer).unwrap();
    }
    let login = core_login(&mut sim, t_serve, &base, &app, DEFAULT_SECRET);
    let token = Login::try_from_http_response(&login).unwrap().access_token;
    let mut capture = |items| {
        let page = sim.handle(t_serve, page_request(items).try_into_http_request(&base, auth(&app, &token)).unwrap());
        assert_eq!(page.status(), StatusCode::OK);
        Captured::of(page)
    };
    let (page, one) = (capture(TASKS), capture(1));
    (sim, Captures { login: Captured::of(login), page, one })
}

/// Pins the calling thread to `cpu` with `taskset`, when asked to.
fn pin_current_thread(cpu: usize) {
    if std::env::var("E2E_PIN").as_deref() != Ok("1") {
        return;
    }
    // "/proc/thread-self" links to "<pid>/task/<tid>".
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = link.file_name().unwrap().to_string_lossy().into_owned();
    let status = Command::new("taskset").args(["-pc", &cpu.to_string(), &tid]).output();
    if !status.is_ok_and(|o| o.status.success()) {
        eprintln!("could not pin thread {tid} to cpu {cpu}");
    }
}

/// The first three fields of `/proc/loadavg` (1, 5 and 15 minutes).
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time this thread has run so far, from `/proc/thread-self/schedstat` (nanoseconds, first field).
///
/// The client runs on a current-thread runtime, so this is the whole client: connection tasks included, the
/// server and other processes excluded. That makes it steadier than wall time on a shared machine.
fn thread_cpu() -> Duration {
    // The kernel brings a running thread's total up to date only at scheduler events and ticks (4 ms here),
    // so without this yield a reading can lag by a whole tick; yielding is such an event.
    std::thread::yield_now();
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Wall time and client CPU time of one timed run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Runs `calls` calls, `width` at a time (1: one after the other), checks that each page holds `items`
/// items, and returns the wall and CPU time.
async fn timed(caller: &Caller, items: usize, calls: usize, width: usize) -> Sample {
    let (start, cpu_start) = (Instant::now(), thread_cpu());
    if width <= 1 {
        for _ in 0..calls {
            assert!(caller.call().await.is_none_or(|n| n == items));
        }
    } else {
        let per_task = calls / width;
        let tasks = (0..width).map(|_| {
            let caller = caller.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    assert!(caller.call().await.is_none_or(|n| n == items));
                }
            })
        });
        for joined in join_all(tasks).await {
            joined.unwrap();
        }
    }
    Sample { wall: start.elapsed(), cpu: thread_cpu().saturating_sub(cpu_start) }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn quartiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    (values[n / 4], values[(3 * n) / 4])
}

/// Times every caller `rounds` times in rotating order and prints, per caller, the median wall time and
/// client CPU time per call and the medians of the per-round ratios to the bare client.
async fn compare(kind: ServerKind, callers: &[Caller], rounds: usize, calls: usize, width: usize) {
    let items = kind.items();
    // Warm-up: opens the pooled connections, fills allocator caches.
    for caller in callers {
        timed(caller, items, (calls / 4).max(width), width).await;
    }
    let calls = calls / width * width;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); callers.len()];
    for round in 0..rounds {
        for k in 0..callers.len() {
            let i = (round + k) % callers.len();
            samples[i].push(timed(&callers[i], items, calls, width).await);
        }
    }
    let bare = callers.iter().position(|c| matches!(c, Caller::Bare(_))).unwrap();
    let per_call = |d: Duration| d.as_secs_f64() * 1e6 / calls as f64;
    println!("{}: {rounds} rounds of {calls} calls per side, {width} in flight", kind.describe());
    println!("  side   wall us/call  cpu us/call   wall ratio (q1..q3)      cpu ratio (q1..q3)");
    for (i, caller) in callers.iter().enumerate() {
        let mut wall: Vec<f64> = samples[i].iter().map(|s| per_call(s.wall)).collect();
        let mut cpu: Vec<f64> = samples[i].iter().map(|s| per_call(s.cpu)).collect();
        let ratios = |f: fn(&Sample) -> Duration| -> Vec<f64> {
            samples[i].iter().zip(&samples[bare]).map(|(a, b)| f(a).as_secs_f64() / f(b).as_secs_f64()).collect()
        };
        let mut wall_ratios = ratios(|s| s.wall);
        let mut cpu_ratios = ratios(|s| s.cpu);
        let (wq1, wq3) = quartiles(&mut wall_ratios);
        let (cq1, cq3) = quartiles(&mut cpu_ratios);
        println!(
            "  {:<5} {:>11.1} {:>12.1}   {:.3} ({wq1:.3}..{wq3:.3})    {:.3} ({cq1:.3}..{cq3:.3})",
            caller.name(),
            median(&mut wall),
            median(&mut cpu),
            median(&mut wall_ratios),
            median(&mut cpu_ratios),
        );
    }
}

/// Decode only, on the captured page: the SDK's decode against the plain one, same rounds method.
fn compare_decode(page: &Captured, rounds: usize) {
    let response = page.to_response();
    let iterations = 200;
    // CPU time of this thread: decoding is single-threaded, and preemption by other processes is left out.
    let sdk = || {
        let start = thread_cpu();
        for _ in 0..iterations {
            black_box(QueryUpgradeTaskList::try_from_http_response(black_box(&response)).unwrap());
        }
        thread_cpu().saturating_sub(start).as_secs_f64() * 1e6 / f64::from(iterations)
    };
    let plain = || {
        let start = thread_cpu();
        for _ in 0..iterations {
            black_box(serde_json::from_slice::<plain::OperationPage>(black_box(response.body())).unwrap());
        }
        thread_cpu().saturating_sub(start).as_secs_f64() * 1e6 / f64::from(iterations)
    };
    sdk();
    plain();
    let (mut s, mut p, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = sdk();
            (a, plain())
        } else {
            let b = plain();
            (sdk(), b)
        };
        s.push(a);
        p.push(b);
        ratios.push(a / b);
    }
    let ratio = median(&mut ratios);
    let (q1, q3) = quartiles(&mut ratios);
    println!("decode only ({} bytes): {rounds} rounds of {iterations} decodes per side", page.body.len());
    println!(
        "  sdk   {:>8.1} us cpu/decode   ratio to plain: median {ratio:.3} (quartiles {q1:.3}..{q3:.3})",
        median(&mut s)
    );
    println!("  plain {:>8.1} us cpu/decode", median(&mut p));
}

/// The servers, on a one-thread runtime of their own.
struct Servers {
    runtime: tokio::runtime::Runtime,
    fixed: RunningServer,
    fixed_one: RunningServer,
    live: RunningServer,
    page: Captured,
    one: Captured,
}

impl Servers {
    fn get(&self, kind: ServerKind) -> &RunningServer {
        match kind {
            ServerKind::Fixed => &self.fixed,
            ServerKind::FixedOne => &self.fixed_one,
            ServerKind::Live => &self.live,
        }
    }

    fn shutdown(self) {
        let Servers { runtime, fixed, fixed_one, live, .. } = self;
        runtime.block_on(async {
            fixed.shutdown().await;
            fixed_one.shutdown().await;
            live.shutdown().await;
        });
    }
}

/// A server that answers login with `login` and everything else with `page`, whatever the credentials.
fn fixed_handler(login: Captured, page: Captured) -> Handler {
    let login_path = Login::META.path;
    Arc::new(
        move |req: Request<Bytes>| {
            if req.uri().path() == login_path { login.to_response() } else { page.to_response() }
        },
    )
}

fn start_servers() -> Servers {
    let t0 = SystemTime::now();
    let t_serve = t0 + Duration::from_secs(86_400);
    let (sim, captures) = populated(t0, t_serve);
    let fixed = fixed_handler(captures.login.clone(), captures.page.clone());
    let fixed_one = fixed_handler(captures.login.clone(), captures.one.clone());
    let live = handler(sim, SimClock::new(t_serve, 1.0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("e2e-server")
        .on_thread_start(|| pin_current_thread(1))
        .enable_all()
        .build()
        .unwrap();
    let (fixed, fixed_one, live) = runtime.block_on(async {
        (
            server::start(ServerConfig::default(), fixed).await.unwrap(),
            server::start(ServerConfig::default(), fixed_one).await.unwrap(),
            server::start(ServerConfig::default(), live).await.unwrap(),
        )
    });
    Servers { runtime, fixed, fixed_one, live, page: captures.page, one: captures.one }
}

/// The three callers against one server; the SDK client is logged in.
async fn callers(servers: &Servers, kind: ServerKind) -> Vec<Caller> {
    let base = BaseUrl::parse(servers.get(kind).base_url()).unwrap();
    // The servers have no rate limit, so the client's is off too: the bench compares per-call cost.
    let sdk = Client::new(
        ClientConfig::new(base.clone(), AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(DEFAULT_SECRET))
            .with_rate_limit(RateLimit::disabled()),
    )
    .unwrap();
    sdk.login().await.unwrap();
    // The bare client sends the request iot-proto builds, byte for byte, with a token of its own: on the live
    // simulator it logs in as a second app; the fixed servers ignore credentials and answer the captured login.
    let probe = Bare::new(Uri::from_static("http://127.0.0.1/"), &HeaderMap::new());
    let (app, secret) =
        if kind == ServerKind::Live { (BARE_APP, BARE_SECRET) } else { (DEFAULT_APP_ID, DEFAULT_SECRET) };
    let app = AppId::new(app).unwrap();
    let token = probe.login(&base, &app, secret).await;
    let request = page_request(kind.items());
    let template = request.try_into_http_request(&base, auth(&app, &token)).unwrap();
    let bare = Arc::new(Bare::new(template.uri().clone(), template.headers()));
    assert_eq!(Caller::Bare(bare.clone()).call().await, Some(kind.items()));
    vec![Caller::Sdk(sdk, request), Caller::Bare(bare.clone()), Caller::Raw(bare)]
}

/// Runs a fixed number of sequential calls for callgrind.
fn instruction_loop(spec: &str) {
    let mut parts = spec.split(':');
    let (side, server, calls) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let calls: usize = calls.parse().unwrap();
    let kind = ServerKind::parse(server).unwrap_or_else(|| panic!("unknown server {server}"));
    let servers = start_servers();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let callers = callers(&servers, kind).await;
        let caller = callers.into_iter().find(|c| c.name() == side).unwrap_or_else(|| panic!("unknown side {side}"));
        timed(&caller, kind.items(), 20, 1).await;
        timed(&caller, kind.items(), calls, 1).await;
    });
    drop(runtime);
    servers.shutdown();
}

fn main() {
    if let Ok(spec) = std::env::var("E2E_LOOP") {
        instruction_loop(&spec);
        return;
    }
    let rounds = env_usize("E2E_ROUNDS", 21);
    let seq = env_usize("E2E_SEQ", 200);
    let conc = env_usize("E2E_CONC", 480).max(WIDTHS[1]);
    pin_current_thread(0);
    let servers = start_servers();
    println!(
        "pages: {TASKS} items in {} bytes of JSON, 1 item in {} bytes; client on a current-thread runtime, \
         servers on a runtime with one worker thread",
        servers.page.body.len(),
        servers.one.body.len(),
    );
    // The machine is shared: its load before and after says how much the other processes took.
    println!("load average at start: {}", load_average());
    compare_decode(&servers.page, rounds);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for kind in [ServerKind::Fixed, ServerKind::Live, ServerKind::FixedOne] {
            let callers = callers(&servers, kind).await;
            compare(kind, &callers, rounds, seq, 1).await;
            for width in WIDTHS {
                compare(kind, &callers, rounds, conc, width).await;
            }
        }
    });
    drop(runtime);
    servers.shutdown();
    println!("load average at end: {}", load_average());
}
