//! Helpers of the end-to-end and wire tests: the embedded simulator started and stopped under a time limit,
//! clients pointed at it, the recorded requests sorted by endpoint, and a sleeper that moves simulated time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use iot_hyper::{Client, ClientConfig, Clock, TransportConfig};
use iot_model::{AppId, AppSecret, BatchTaskRequest, CategoryInfo, Command, DeviceCmdParam, DeviceId, FileType};
use iot_proto::{BaseUrl, CreateBatchTask};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};

/// Every test body must finish well within this; a hang fails the test instead of blocking the suite.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The login path of the contract.
pub const LOGIN: &str = "/iocm/app/sec/v1.1.0/login";
/// The token refresh path of the contract.
pub const REFRESH: &str = "/iocm/app/sec/v1.1.0/refreshToken";
/// The logout path of the contract.
pub const LOGOUT: &str = "/iocm/app/sec/v1.1.0/logout";

/// The prefix of the device upgrade API.
pub const UPGRADE: &str = "/iodm/northbound/v1.5.0";
/// The prefix of the batch API.
pub const BATCH: &str = "/iocm/app/batchtask/v1.1.0";

/// Runs a test body under [`LIMIT`].
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future).await.expect("test exceeded its time limit")
}

/// Starts the simulator on loopback.
pub async fn start(config: SimConfig, options: EmbeddedOptions) -> EmbeddedSim {
    EmbeddedSim::start(config, options).await.expect("the simulator starts")
}

/// A client configuration for the simulator's default app, with default transport settings.
pub fn config(sim: &EmbeddedSim) -> ClientConfig {
    ClientConfig::new(
        BaseUrl::parse(sim.base_url()).expect("the simulator's url is a base url"),
        AppId::new(DEFAULT_APP_ID).expect("a valid app id"),
        AppSecret::new(DEFAULT_SECRET),
    )
}

/// A client configuration for the simulator's default app over TLS with these transport settings.
pub fn config_with(sim: &EmbeddedSim, transport: TransportConfig) -> ClientConfig {
    config(sim).with_transport(transport)
}

/// A client for the simulator's default app.
pub fn client(sim: &EmbeddedSim) -> Client {
    Client::new(config(sim)).expect("the client builds")
}

/// The device kind (type, model, manufacturer) with the most devices, its devices in fleet order, and its
/// newest package of `file_type`.
pub fn biggest_kind(sim: &EmbeddedSim, file_type: FileType) -> (Vec<DeviceId>, CategoryInfo) {
    sim.with_sim(|s| biggest_kind_of(s, file_type))
}

/// [`biggest_kind`] of a simulator at hand.
pub fn biggest_kind_of(s: &iot_sim::sim::Simulator, file_type: FileType) -> (Vec<DeviceId>, CategoryInfo) {
    let mut best: Option<(Vec<DeviceId>, CategoryInfo)> = None;
    for package in s.packages().iter().filter(|p| p.file_type.as_ref() == Some(&file_type)) {
        let devices: Vec<DeviceId> = s.devices_for(package).map(|d| d.device_id.clone()).collect();
        // Later packages of a kind are newer; `>=` keeps the newest of the biggest kind.
        if best.as_ref().is_none_or(|(b, _)| devices.len() >= b.len()) {
            best = Some((devices, package.clone()));
        }
    }
    best.expect("the fleet has packages of every kind")
}

/// A `DeviceCmd` batch task of the default app sending `Maintenance.REBOOT` to the devices `param` selects.
pub fn reboot_task(name: &str, param: DeviceCmdParam) -> CreateBatchTask {
    let app = AppId::new(DEFAULT_APP_ID).expect("a valid app id");
    CreateBatchTask::new(BatchTaskRequest::device_cmd(app, 30, name, param))
}

/// The reboot command of [`reboot_task`].
pub fn reboot() -> Command {
    Command::new("Maintenance".to_owned(), "REBOOT".to_owned())
}

/// How many recorded requests went to exactly this path.
pub fn count_path(recorded: &[http::Request<Bytes>], path: &str) -> usize {
    recorded.iter().filter(|r| r.uri().path() == path).count()
}

/// The access token a recorded request presented, if any.
pub fn bearer(req: &http::Request<Bytes>) -> Option<String> {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// The value of a query parameter of a recorded request (raw, not decoded); only for plain ASCII values.
pub fn query_param(req: &http::Request<Bytes>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// A clock that does not sleep: a wait moves the simulator's clock (and this clock) forward by the wait and
/// records it, so that a client backing off from the rate limit sees the window slide at once, deterministically.
#[derive(Clone)]
pub struct SimTimeSleeper {
    sim: Arc<EmbeddedSim>,
    start: Instant,
    state: Arc<Mutex<(Duration, Vec<Duration>)>>,
}

impl SimTimeSleeper {
    /// A clock driving `sim`'s clock.
    pub fn new(sim: Arc<EmbeddedSim>) -> Self {
        Self { sim, start: Instant::now(), state: Arc::default() }
    }

    /// The waits asked for so far.
    pub fn delays(&self) -> Vec<Duration> {
        self.state.lock().unwrap().1.clone()
    }
}

impl Clock for SimTimeSleeper {
    fn now(&self) -> Instant {
        self.start + self.state.lock().unwrap().0
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut state = self.state.lock().unwrap();
        let wait = deadline.saturating_duration_since(self.start + state.0);
        state.0 += wait;
        state.1.push(wait);
        advance(&self.sim, wait);
        Box::pin(std::future::ready(()))
    }
}

/// Moves the simulator's clock `by` past the simulated time now (time never runs backwards, so requests
/// see at least this time from then on).
pub fn advance(sim: &EmbeddedSim, by: Duration) {
    let to: SystemTime = sim.now().max(sim.with_sim(|s| s.now())) + by;
    sim.with_sim(|s| s.advance_to(to));
}
