//! The virtual clock, the simulator behind iot-proto's `ClientCore`, and a driver that runs a rollout's actions
//! through the real endpoint types, persisting the journal as JSON lines the way a real driver would.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use iot_model::{AppId, AppSecret, DeviceId, FileId, FileType, OperationId, OperationInfo, SubOperationStatus};
use iot_proto::call::{Call, CallError, ClientCore, CoreConfig, Step};
use iot_proto::{BaseUrl, Endpoint, QuerySubOperations, QueryUpgradeTask, QueryUpgradeTaskList};
use iot_rollout::{Action, Answer, CallFailure, Create, Report, Rollout};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, FleetSpec, SimConfig, Simulator};

/// Simulated start of every test: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;
/// Time from sending a request to its answer.
const LATENCY_MS: u64 = 20;
/// Bounds every loop, so that a machine that never ends fails the test instead of hanging it.
const MAX_STEPS: usize = 200_000;

/// The device kind every test fleet is made of, so that one firmware package fits every device.
const KIND: (&str, &str) = ("WaterMeter", "WM-200");

/// A monotonic `Instant` for the client machines and a `SystemTime` for the simulator and the rollout, moved
/// together in whole milliseconds.
pub struct VirtualClock {
    instant0: Instant,
    elapsed: Duration,
}

impl VirtualClock {
    fn new() -> Self {
        Self { instant0: Instant::now(), elapsed: Duration::ZERO }
    }

    pub fn now(&self) -> Instant {
        self.instant0 + self.elapsed
    }

    pub fn system(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0) + self.elapsed
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    pub fn advance(&mut self, d: Duration) {
        self.elapsed += d;
    }

    /// Moves to `t` (rounded up to the millisecond), never backwards.
    fn advance_to(&mut self, t: Instant) {
        let ms = t.saturating_duration_since(self.instant0).as_nanos().div_ceil(1_000_000);
        self.elapsed = self.elapsed.max(Duration::from_millis(u64::try_from(ms).unwrap()));
    }

    fn advance_to_system(&mut self, t: SystemTime) {
        let since = t.duration_since(UNIX_EPOCH + Duration::from_secs(T0)).unwrap_or_default();
        self.elapsed = self.elapsed.max(since);
    }
}

/// The simulator, the clock, and one client process (a `ClientCore`) talking to it.
pub struct Platform {
    pub sim: Simulator,
    pub clock: VirtualClock,
    core: ClientCore,
    /// Requests the client sent (logins and refreshes included).
    pub requests: usize,
}

impl Platform {
    pub fn new(config: SimConfig) -> Self {
        Self { sim: Simulator::new(config), clock: VirtualClock::new(), core: client(), requests: 0 }
    }

    /// A new client process: no token, nothing in common with the one before.
    pub fn restart_client(&mut self) {
        self.core = client();
    }

    /// Runs one call to its end through the client machine, on the virtual clock.
    pub fn call<E: Endpoint>(&mut self, request: &E) -> Result<E::Response, CallError<Infallible>> {
        let mut call: Call<'_, E, Infallible> = self.core.call(request, self.clock.now());
        for _ in 0..MAX_STEPS {
            let step = call.poll(&mut self.core, self.clock.now());
            // A lone call has no one to wake.
            let _no_waiters = self.core.take_wakeup();
            match step {
                Step::Send(transmit) => {
                    let answer = self.sim.handle(self.clock.system(), transmit.request);
                    self.requests += 1;
                    self.clock.advance(Duration::from_millis(LATENCY_MS));
                    call.handle_response(&mut self.core, self.clock.now(), answer);
                }
                Step::Wait(until) => {
                    self.clock.advance_to(until);
                    if until <= self.clock.now() {
                        self.clock.advance(Duration::from_millis(1));
                    }
                }
                Step::WaitForRenewal(_) => panic!("a lone call waits for a renewal no one runs"),
                Step::Done(result) => return result,
            }
        }
        panic!("the call did not end in {MAX_STEPS} steps");
    }

    /// Every task the simulator holds, through the task list.
    pub fn all_tasks(&mut self) -> Vec<OperationInfo> {
        let mut out = Vec::new();
        for page_no in 0.. {
            let query = QueryUpgradeTaskList::new().with_page_no(page_no).with_page_size(100);
            let page = self.call(&query).unwrap();
            if page.data.is_empty() {
                return out;
            }
            out.extend(page.data);
        }
        out
    }

    /// The devices of a task, as the simulator reports it.
    pub fn task_devices(&mut self, id: &OperationId) -> BTreeSet<DeviceId> {
        let info = self.call(&QueryUpgradeTask::new(id.clone())).unwrap();
        info.targets.unwrap().devices.unwrap().into_iter().collect()
    }

    /// A task's failed subtasks as `(device, cause)`, walked outside the rollout.
    pub fn failed_subtasks(&mut self, id: &OperationId) -> BTreeSet<(DeviceId, String)> {
        let mut out = BTreeSet::new();
        for page_no in 0.. {
            let query = QuerySubOperations::new(id.clone())
                .with_sub_operation_status(SubOperationStatus::Fail)
                .with_page_no(page_no)
                .with_page_size(100);
            let page = self.call(&query).unwrap();
            if page.data.is_empty() {
                return out;
            }
            out.extend(page.data.into_iter().map(|s| (s.device_id.unwrap(), s.detail_info.unwrap())));
        }
        out
    }
}

fn client() -> ClientCore {
    let base = BaseUrl::parse("http://sim.test").unwrap();
    ClientCore::new(CoreConfig::new(base, AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(DEFAULT_SECRET)), 7)
}

/// A simulator whose fleet is `n` water meters (with the simulator's default rate limit of 100 calls a minute,
/// which the client paces itself under), the fleet in the simulator's order, and the newest water-meter
/// firmware.
pub fn water_meters(n: usize, failure_rate: f64) -> (SimConfig, Vec<DeviceId>, FileId) {
    // About half of a generated fleet are water meters; generate enough and keep those.
    let generated = FleetSpec::generate(1, 2 * n + 400);
    let devices: Vec<_> =
        generated.devices.into_iter().filter(|d| (&*d.device_type, &*d.model) == KIND).take(n).collect();
    assert_eq!(devices.len(), n, "the generated fleet has enough water meters");
    let package = generated
        .packages
        .iter()
        .rfind(|p| {
            p.file_type == Some(FileType::FirmwarePackage)
                && p.device_type.as_deref() == Some(KIND.0)
                && p.model.as_deref() == Some(KIND.1)
        })
        .unwrap()
        .file_id
        .clone();
    let ids = devices.iter().map(|d| d.device_id.clone()).collect();
    let spec = FleetSpec { devices, packages: generated.packages };
    (SimConfig::default().with_fleet(spec).with_failure_rate(failure_rate), ids, package)
}

/// How a run of the driver ended.
#[derive(Debug)]
pub enum Ran {
    Completed(Report),
    Halted(Report),
    /// The stop hook asked to stop before this action was carried out (its records are persisted).
    Stopped(Action),
}

/// A driver: runs the rollout's actions against the platform and appends the journal records to `journal`
/// (JSON lines, as a file would hold them) after every step and before every action is carried out.
pub struct Driver<'a> {
    pub journal: &'a mut String,
    /// Actions carried out, by kind.
    pub creates: usize,
    pub queries: usize,
    pub lookups: usize,
    pub listings: usize,
    pub waits: usize,
}

impl<'a> Driver<'a> {
    pub fn new(journal: &'a mut String) -> Self {
        Self { journal, creates: 0, queries: 0, lookups: 0, listings: 0, waits: 0 }
    }

    fn persist(&mut self, rollout: &mut Rollout) {
        for record in rollout.take_records() {
            self.journal.push_str(&record.to_json_line().unwrap());
        }
    }

    /// Runs until the rollout ends, or until `stop` says to stop before an action.
    pub fn run(&mut self, p: &mut Platform, rollout: &mut Rollout, mut stop: impl FnMut(&Action) -> bool) -> Ran {
        for _ in 0..MAX_STEPS {
            let action = rollout.poll(p.clock.system());
            // Durable before anything is sent: a create's pending record is among these.
            self.persist(rollout);
            if stop(&action) {
                return Ran::Stopped(action);
            }
            let answer = match action {
                Action::CheckPackage(q) => p.call(&q).map(Answer::Package),
                Action::Create(Create::Firmware(c)) => {
                    self.creates += 1;
                    p.call(&c).map(Answer::Created)
                }
                Action::Create(Create::Software(c)) => {
                    self.creates += 1;
                    p.call(&c).map(Answer::Created)
                }
                Action::FindCreated(q) => {
                    self.lookups += 1;
                    p.call(&q).map(Answer::Tasks)
                }
                Action::QueryTask(q) => {
                    self.queries += 1;
                    p.call(&q).map(Answer::Task)
                }
                Action::ListFailed(q) => {
                    self.listings += 1;
                    p.call(&q).map(Answer::Subtasks)
                }
                Action::Wait(until) => {
                    assert!(until > p.clock.system(), "a wait must move time forward");
                    self.waits += 1;
                    p.clock.advance_to_system(until);
                    continue;
                }
                Action::Completed(report) => return Ran::Completed(report),
                Action::Halted(report) => return Ran::Halted(report),
                other => panic!("an action this driver does not know: {other:?}"),
            };
            let now = p.clock.system();
            match answer {
                Ok(answer) => rollout.handle_answer(now, answer).unwrap(),
                Err(e) => rollout.handle_failure(now, CallFailure::from_call_error(&e)).unwrap(),
            }
            self.persist(rollout);
        }
        panic!("the rollout did not end in {MAX_STEPS} steps");
    }
}
