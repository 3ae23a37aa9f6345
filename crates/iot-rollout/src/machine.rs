//! The rollout machine: [`Rollout::poll`] says what to do next, the `handle_*` methods take what came of it,
//! and every decision lands in the journal (see the [crate documentation](crate) for the loop).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iot_model::{
    CategoryInfo, CreateUpgradeTask, CreateUpgradeTaskResponse, DeviceId, FileId, OperateDevices, OperationId,
    OperationInfo, OperationPage, OperationStatus, SubOperationPage, SubOperationStatus,
};
use iot_proto::call::{CallError, PageWalker};
use iot_proto::{
    CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, QueryPackage, QuerySubOperations, QueryUpgradeTask,
    QueryUpgradeTaskList,
};

use crate::error::{ConfigError, DriverError, JournalError};
use crate::journal::{FORMAT, Journal, Record};
use crate::plan::{Plan, RolloutConfig, UpgradeKind};
use crate::report::{FailedDevice, HaltReason, Report, TaskCounts, TaskReport, WaveReport, WaveState};

/// Items per page when walking subtasks or the task list: the upgrade family's largest page.
const PAGE_SIZE: u32 = 100;
/// Most pages one walk reads: a task has at most 256 subtasks, and the task list is narrowed to one device.
const MAX_PAGES: u32 = 1_000;
/// The cause reported for a failed device whose subtask carries no `detailInfo`.
const NO_CAUSE: &str = "(the platform gave no cause)";

/// A create request of the rollout's kind: the driver sends it through the matching endpoint.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Create {
    /// `POST /operations/firmwareUpgrade`.
    Firmware(CreateFirmwareUpgradeTask),
    /// `POST /operations/softwareUpgrade`.
    Software(CreateSoftwareUpgradeTask),
}

impl Create {
    /// The create of `kind` with this body.
    pub fn new(kind: UpgradeKind, body: CreateUpgradeTask) -> Self {
        match kind {
            UpgradeKind::Firmware => Self::Firmware(CreateFirmwareUpgradeTask::new(body)),
            UpgradeKind::Software => Self::Software(CreateSoftwareUpgradeTask::new(body)),
        }
    }

    /// A task of `package` on `devices`, with `policy` when given.
    pub fn for_devices(
        kind: UpgradeKind,
        package: FileId,
        devices: Vec<DeviceId>,
        policy: Option<iot_model::OperatePolicy>,
    ) -> Self {
        let mut body = CreateUpgradeTask::new(package, OperateDevices::new().with_devices(devices));
        body.policy = policy;
        Self::new(kind, body)
    }

    /// The request body.
    pub fn body(&self) -> &CreateUpgradeTask {
        match self {
            Self::Firmware(c) => &c.body,
            Self::Software(c) => &c.body,
        }
    }

    /// The devices the task names.
    pub fn devices(&self) -> &[DeviceId] {
        self.body().targets.devices.as_deref().unwrap_or_default()
    }
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Query the package (`QueryPackage`) and feed [`Answer::Package`]: the rollout checks that it exists and
    /// is of its kind, and learns its version.
    CheckPackage(QueryPackage),
    /// Persist the journal (it now holds the create's [`Record::CreatePending`]), then send this create and
    /// feed [`Answer::Created`].
    Create(Create),
    /// One page of the task list, looking for the task a pending create may have made; feed
    /// [`Answer::Tasks`].
    FindCreated(QueryUpgradeTaskList),
    /// Query a task's progress; feed [`Answer::Task`].
    QueryTask(QueryUpgradeTask),
    /// One page of a finished task's failed (or stopped) subtasks; feed [`Answer::Subtasks`].
    ListFailed(QuerySubOperations),
    /// Nothing to do before this instant; poll again then.
    Wait(SystemTime),
    /// Every wave passed.
    Completed(Report),
    /// The rollout halted; [`Report::halted`] says why.
    Halted(Report),
}

/// The typed answer to the outstanding call.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// Answers [`Action::CheckPackage`].
    Package(CategoryInfo),
    /// Answers [`Action::Create`].
    Created(CreateUpgradeTaskResponse),
    /// Answers [`Action::FindCreated`].
    Tasks(OperationPage),
    /// Answers [`Action::QueryTask`].
    Task(OperationInfo),
    /// Answers [`Action::ListFailed`].
    Subtasks(SubOperationPage),
}

impl Answer {
    fn name(&self) -> &'static str {
        match self {
            Self::Package(_) => "package",
            Self::Created(_) => "create answer",
            Self::Tasks(_) => "task list page",
            Self::Task(_) => "task",
            Self::Subtasks(_) => "subtask page",
        }
    }
}

/// A call that ended without an answer, as the driver's client reported it (after its own retries).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallFailure {
    /// Whether the platform may have acted on the request: for a create, whether the task may exist.
    pub may_have_acted: bool,
    /// Whether the same call may succeed later.
    pub retryable: bool,
    /// What happened, for the journal and the report.
    pub message: String,
}

impl CallFailure {
    /// A failure as the driver's client classified it (iot-hyper's and iot-blocking's `Error` have
    /// `platform_may_have_acted()` and `is_retryable()`).
    pub fn new(may_have_acted: bool, retryable: bool, message: impl Into<String>) -> Self {
        Self { may_have_acted, retryable, message: message.into() }
    }

    /// A failure of a call driven through iot-proto's call machine.
    pub fn from_call_error<T>(e: &CallError<T>) -> Self {
        let message = match e.api() {
            Some(api) => format!("{e}: {api}"),
            None => e.to_string(),
        };
        Self::new(e.platform_may_have_acted(), e.is_retryable(), message)
    }
}

/// Where one task stands.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Not created, and no create is pending.
    New,
    /// A create was journaled and may have reached the platform; `at_ms` is when.
    Pending { at_ms: u64 },
    /// Created, running.
    Created(OperationId),
    /// Finished; its failed devices are still to be listed.
    Finished(OperationId),
    /// Finished, failed devices listed.
    Listed(OperationId),
}

#[derive(Clone, Debug)]
struct TaskState {
    phase: Phase,
    counts: Option<TaskCounts>,
    failed: Vec<FailedDevice>,
    /// When to query it next; `None` means at once.
    next_check: Option<SystemTime>,
}

impl TaskState {
    fn id(&self) -> Option<&OperationId> {
        match &self.phase {
            Phase::Created(id) | Phase::Finished(id) | Phase::Listed(id) => Some(id),
            Phase::New | Phase::Pending { .. } => None,
        }
    }
}

/// The call the machine waits for.
#[derive(Debug)]
enum Outstanding {
    Package(QueryPackage),
    Create {
        wave: usize,
        task: usize,
        request: Create,
    },
    Lookup {
        wave: usize,
        task: usize,
        since_ms: u64,
        walker: Box<PageWalker<QueryUpgradeTaskList>>,
        current: QueryUpgradeTaskList,
    },
    Query {
        wave: usize,
        task: usize,
        request: QueryUpgradeTask,
    },
    List {
        wave: usize,
        task: usize,
        id: OperationId,
        walker: Box<PageWalker<QuerySubOperations>>,
        current: QuerySubOperations,
        /// Statuses still to walk after this one.
        then: Vec<SubOperationStatus>,
        found: Vec<FailedDevice>,
    },
}

impl Outstanding {
    fn action(&self) -> Action {
        match self {
            Self::Package(q) => Action::CheckPackage(q.clone()),
            Self::Create { request, .. } => Action::Create(request.clone()),
            Self::Lookup { current, .. } => Action::FindCreated(current.clone()),
            Self::Query { request, .. } => Action::QueryTask(request.clone()),
            Self::List { current, .. } => Action::ListFailed(current.clone()),
        }
    }

    fn expects(&self) -> &'static str {
        match self {
            Self::Package(_) => "package",
            Self::Create { .. } => "create answer",
            Self::Lookup { .. } => "task list page",
            Self::Query { .. } => "task",
            Self::List { .. } => "subtask page",
        }
    }
}

/// How the rollout ended.
#[derive(Clone, Debug, PartialEq)]
enum End {
    Completed,
    Halted(HaltReason),
}

/// A staged rollout of one package to a fleet, as a pure state machine. See the [crate documentation](crate).
#[derive(Debug)]
pub struct Rollout {
    plan: Plan,
    journal: Journal,
    /// Records from this index on have not been taken by the driver yet.
    taken: usize,
    /// `Some(version)` once the package was checked.
    package_version: Option<Option<String>>,
    wave: usize,
    wave_started: bool,
    tasks: Vec<Vec<TaskState>>,
    outstanding: Option<Outstanding>,
    end: Option<End>,
    failures_in_row: u32,
    /// After a failed call, nothing is sent before this instant.
    not_before: Option<SystemTime>,
}

impl Rollout {
    /// Plans a rollout and journals its start at `now`.
    pub fn new(config: &RolloutConfig, now: SystemTime) -> Result<Self, ConfigError> {
        let plan = config.plan()?;
        let mut rollout = Self::from_plan(plan.clone());
        rollout.record(Record::Started { format: FORMAT, at_ms: ms(now), plan });
        Ok(rollout)
    }

    /// Rebuilds a rollout from its journal. Every record counts as persisted; a create that was pending without
    /// an id is looked up in the task list before anything else happens to its wave, and sent again only when
    /// the whole list proves it absent.
    pub fn resume(journal: Journal) -> Result<Self, JournalError> {
        let (first, rest) = journal.records().split_first().ok_or(JournalError::Empty)?;
        let Record::Started { format, plan, .. } = first else { return Err(JournalError::NoStart) };
        if *format > FORMAT {
            return Err(JournalError::Format(*format));
        }
        let mut rollout = Self::from_plan(plan.clone());
        for (i, record) in rest.iter().enumerate() {
            rollout.replay(record).map_err(|reason| JournalError::Inconsistent { record: i + 2, reason })?;
        }
        rollout.taken = journal.records().len();
        rollout.journal = journal;
        Ok(rollout)
    }

    fn from_plan(plan: Plan) -> Self {
        let tasks = plan
            .waves
            .iter()
            .map(|w| {
                w.tasks
                    .iter()
                    .map(|_| TaskState { phase: Phase::New, counts: None, failed: Vec::new(), next_check: None })
                    .collect()
            })
            .collect();
        Self {
            plan,
            journal: Journal::default(),
            taken: 0,
            package_version: None,
            wave: 0,
            wave_started: false,
            tasks,
            outstanding: None,
            end: None,
            failures_in_row: 0,
            not_before: None,
        }
    }

    /// The plan: waves, tasks and settings.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The whole journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The records added since the last call: append them to the journal file and make them durable before
    /// acting on the action `poll` returned.
    pub fn take_records(&mut self) -> Vec<Record> {
        let new = self.journal.records()[self.taken..].to_vec();
        self.taken = self.journal.records().len();
        new
    }

    /// Whether the rollout has completed or halted.
    pub fn is_done(&self) -> bool {
        self.end.is_some()
    }

    /// What to do next at `now`. While a call is outstanding (returned and not yet answered), `poll` returns the
    /// same action again: it is the same call, and must not be sent twice.
    pub fn poll(&mut self, now: SystemTime) -> Action {
        if let Some(end) = &self.end {
            return match end {
                End::Completed => Action::Completed(self.report()),
                End::Halted(_) => Action::Halted(self.report()),
            };
        }
        if let Some(outstanding) = &self.outstanding {
            return outstanding.action();
        }
        if let Some(t) = self.not_before {
            if now < t {
                return Action::Wait(t);
            }
            self.not_before = None;
        }
        if self.package_version.is_none() {
            let query = QueryPackage::new(self.plan.package.clone());
            self.outstanding = Some(Outstanding::Package(query.clone()));
            return Action::CheckPackage(query);
        }
        loop {
            let w = self.wave;
            if !self.wave_started {
                self.wave_started = true;
                self.record(Record::WaveStarted { at_ms: ms(now), wave: w });
            }
            if let Some(action) = self.next_create(w, now) {
                return action;
            }
            if let Some(action) = self.next_listing(w, now) {
                return action;
            }
            if let Some(action) = self.next_query(w, now) {
                return action;
            }
            // Every task of the wave is finished and its failures listed: judge the wave.
            let (devices, failed) = self.wave_failures(w);
            let passed = self.plan.within_threshold(failed, devices);
            self.record(Record::WaveFinished { at_ms: ms(now), wave: w, devices, failed, passed });
            if !passed {
                let reason = self.failure_rate_reason(w, devices, failed);
                return self.halt(now, reason);
            }
            self.wave += 1;
            self.wave_started = false;
            if self.wave == self.plan.waves.len() {
                self.record(Record::Completed { at_ms: ms(now) });
                self.end = Some(End::Completed);
                return Action::Completed(self.report());
            }
        }
    }

    /// The first task of wave `w` to create (journaling its pending record) or to look up.
    fn next_create(&mut self, w: usize, now: SystemTime) -> Option<Action> {
        let t = self.tasks[w].iter().position(|t| matches!(t.phase, Phase::New | Phase::Pending { .. }))?;
        let devices = self.plan.waves[w].tasks[t].clone();
        if let Phase::Pending { at_ms } = self.tasks[w][t].phase {
            // The create may have reached the platform: find its task before anything is sent again.
            let query = QueryUpgradeTaskList::new()
                .with_operation_type(self.plan.kind.operate_type())
                .with_page_size(PAGE_SIZE);
            let query = match devices.first() {
                Some(d) => query.with_device_id(d.clone()),
                None => query,
            };
            let Ok(mut walker) = PageWalker::new(query, MAX_PAGES) else {
                return Some(self.transient(now, "the task list cannot be walked".into()));
            };
            let current = walker.next_request()?.clone();
            self.outstanding =
                Some(Outstanding::Lookup { wave: w, task: t, since_ms: at_ms, walker: Box::new(walker), current });
            return self.outstanding.as_ref().map(Outstanding::action);
        }
        let at_ms = ms(now);
        self.record(Record::CreatePending { at_ms, wave: w, task: t, devices: devices.clone() });
        self.tasks[w][t].phase = Phase::Pending { at_ms };
        let request = Create::for_devices(self.plan.kind, self.plan.package.clone(), devices, self.plan.policy.clone());
        self.outstanding = Some(Outstanding::Create { wave: w, task: t, request: request.clone() });
        Some(Action::Create(request))
    }

    /// The first finished task of wave `w` whose failed devices are still to be listed.
    fn next_listing(&mut self, w: usize, now: SystemTime) -> Option<Action> {
        let t = self.tasks[w].iter().position(|t| matches!(t.phase, Phase::Finished(_)))?;
        let state = &self.tasks[w][t];
        let id = state.id()?.clone();
        let mut statuses = vec![SubOperationStatus::Fail];
        if state.counts.is_some_and(|c| c.stop > 0) {
            statuses.push(SubOperationStatus::Stop);
        }
        statuses.reverse();
        let first = statuses.pop()?;
        match self.start_listing(w, t, id, first, statuses, Vec::new()) {
            Ok(action) => Some(action),
            Err(message) => Some(self.transient(now, message)),
        }
    }

    fn start_listing(
        &mut self,
        wave: usize,
        task: usize,
        id: OperationId,
        status: SubOperationStatus,
        then: Vec<SubOperationStatus>,
        found: Vec<FailedDevice>,
    ) -> Result<Action, String> {
        let query = QuerySubOperations::new(id.clone()).with_sub_operation_status(status).with_page_size(PAGE_SIZE);
        let mut walker = PageWalker::new(query, MAX_PAGES).map_err(|e| e.to_string())?;
        let current = walker.next_request().ok_or("the subtask walk asked for nothing")?.clone();
        self.outstanding =
            Some(Outstanding::List { wave, task, id, walker: Box::new(walker), current: current.clone(), then, found });
        Ok(Action::ListFailed(current))
    }

    /// The first running task of wave `w` that is due for a query, or a wait until the next one is.
    fn next_query(&mut self, w: usize, now: SystemTime) -> Option<Action> {
        let running = self.tasks[w].iter().enumerate().filter(|(_, t)| matches!(t.phase, Phase::Created(_)));
        let mut earliest: Option<SystemTime> = None;
        for (t, state) in running {
            match state.next_check {
                Some(at) if at > now => earliest = Some(earliest.map_or(at, |e| e.min(at))),
                _ => {
                    let request = QueryUpgradeTask::new(state.id()?.clone());
                    self.outstanding = Some(Outstanding::Query { wave: w, task: t, request: request.clone() });
                    return Some(Action::QueryTask(request));
                }
            }
        }
        earliest.map(Action::Wait)
    }

    /// Devices in wave `w` and how many of them failed or were stopped.
    fn wave_failures(&self, w: usize) -> (u64, u64) {
        let devices = self.plan.waves[w].device_count() as u64;
        let failed = self.tasks[w].iter().filter_map(|t| t.counts).map(|c| c.failed()).sum();
        (devices, failed)
    }

    fn failure_rate_reason(&self, wave: usize, devices: u64, failed: u64) -> HaltReason {
        HaltReason::FailureRate {
            wave,
            devices,
            failed,
            rate: rate(failed, devices),
            max_failure_rate: self.plan.max_failure_rate,
        }
    }

    /// Takes the answer to the outstanding call.
    pub fn handle_answer(&mut self, now: SystemTime, answer: Answer) -> Result<(), DriverError> {
        let outstanding = self.outstanding.take().ok_or(DriverError::NothingOutstanding)?;
        match (outstanding, answer) {
            (Outstanding::Package(_), Answer::Package(info)) => {
                self.failures_in_row = 0;
                let kind = self.plan.kind.file_type();
                if info.file_type.as_ref().is_some_and(|t| *t != kind) {
                    let message = format!("package {} is not a {kind}", self.plan.package);
                    self.halt(now, HaltReason::PackageUnusable { message });
                    return Ok(());
                }
                self.package_version = Some(info.version.clone());
                self.record(Record::PackageChecked { at_ms: ms(now), version: info.version });
            }
            (Outstanding::Create { wave, task, .. }, Answer::Created(created)) => {
                self.failures_in_row = 0;
                self.created(now, wave, task, created.operation_id, false);
            }
            (Outstanding::Lookup { wave, task, since_ms, mut walker, .. }, Answer::Tasks(page)) => {
                self.failures_in_row = 0;
                if let Err(e) = walker.handle_page(&page) {
                    self.transient(now, format!("the task list did not add up: {e}"));
                    return Ok(());
                }
                if let Some(id) = self.find_ours(wave, task, since_ms, &page) {
                    self.created(now, wave, task, id, true);
                    return Ok(());
                }
                match walker.next_request().cloned() {
                    Some(current) => {
                        self.outstanding = Some(Outstanding::Lookup { wave, task, since_ms, walker, current });
                    }
                    None if matches!(walker.outcome(), Some(Ok(_))) => {
                        // The whole list was read and the task is not in it: the create never took effect.
                        self.record(Record::LookupAbsent { at_ms: ms(now), wave, task });
                        self.tasks[wave][task].phase = Phase::New;
                    }
                    None => {
                        self.transient(now, "the task list walk ended before the list did".into());
                    }
                }
            }
            (Outstanding::Query { wave, task, .. }, Answer::Task(info)) => {
                self.failures_in_row = 0;
                self.task_answered(now, wave, task, &info);
            }
            (Outstanding::List { wave, task, id, mut walker, then, mut found, .. }, Answer::Subtasks(page)) => {
                self.failures_in_row = 0;
                if let Err(e) = walker.handle_page(&page) {
                    self.transient(now, format!("the subtask list did not add up: {e}"));
                    return Ok(());
                }
                for sub in &page.data {
                    let failed = matches!(sub.status, Some(SubOperationStatus::Fail | SubOperationStatus::Stop));
                    if let (true, Some(device)) = (failed, &sub.device_id) {
                        let status = sub.status.as_ref().map(ToString::to_string).unwrap_or_default();
                        let cause = sub.detail_info.clone().filter(|c| !c.is_empty()).unwrap_or(NO_CAUSE.into());
                        found.push(FailedDevice::new(device.clone(), id.clone(), status, cause));
                    }
                }
                match walker.next_request().cloned() {
                    Some(current) => {
                        self.outstanding = Some(Outstanding::List { wave, task, id, walker, current, then, found });
                    }
                    None if matches!(walker.outcome(), Some(Ok(_))) => {
                        let mut then = then;
                        if let Some(status) = then.pop() {
                            if let Err(message) = self.start_listing(wave, task, id, status, then, found) {
                                self.transient(now, message);
                            }
                            return Ok(());
                        }
                        self.record(Record::FailuresListed { at_ms: ms(now), wave, task, failed: found.clone() });
                        let state = &mut self.tasks[wave][task];
                        state.failed = found;
                        state.phase = Phase::Listed(id);
                    }
                    None => {
                        self.transient(now, "the subtask walk ended before the list did".into());
                    }
                }
            }
            (outstanding, answer) => {
                let error = DriverError::WrongAnswer { expected: outstanding.expects(), got: answer.name() };
                self.outstanding = Some(outstanding);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Takes the failure of the outstanding call.
    pub fn handle_failure(&mut self, now: SystemTime, failure: CallFailure) -> Result<(), DriverError> {
        let outstanding = self.outstanding.take().ok_or(DriverError::NothingOutstanding)?;
        match outstanding {
            Outstanding::Package(_) if !failure.may_have_acted && !failure.retryable => {
                self.halt(now, HaltReason::PackageUnusable { message: failure.message });
            }
            Outstanding::Create { wave, task, .. } if !failure.may_have_acted => {
                // The platform did not make the task: the pending record is settled, nothing to look up.
                self.record(Record::CreateNotMade { at_ms: ms(now), wave, task, error: failure.message.clone() });
                self.tasks[wave][task].phase = Phase::New;
                if failure.retryable {
                    self.transient(now, failure.message);
                } else {
                    self.halt(now, HaltReason::CreateRefused { wave, task, message: failure.message });
                }
            }
            // A create in doubt stays pending, so the next poll looks for its task; every other call is simply
            // tried again after a pause.
            _ => {
                self.transient(now, failure.message);
            }
        }
        Ok(())
    }

    /// Counts a failed call: pause for a poll interval, or halt (resumably) after too many in a row.
    fn transient(&mut self, now: SystemTime, message: String) -> Action {
        self.failures_in_row += 1;
        if self.failures_in_row >= self.plan.max_call_failures {
            return self.halt(now, HaltReason::CallsFailing { failures: self.failures_in_row, message });
        }
        let until = now + self.poll_interval();
        self.not_before = Some(until);
        Action::Wait(until)
    }

    fn halt(&mut self, now: SystemTime, reason: HaltReason) -> Action {
        self.record(Record::Halted { at_ms: ms(now), reason: reason.clone() });
        self.end = Some(End::Halted(reason));
        self.outstanding = None;
        Action::Halted(self.report())
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.plan.poll_interval_ms)
    }

    fn created(&mut self, now: SystemTime, wave: usize, task: usize, id: OperationId, found_by_lookup: bool) {
        self.record(Record::Created { at_ms: ms(now), wave, task, operation_id: id.clone(), found_by_lookup });
        let next_check = now + self.poll_interval();
        let state = &mut self.tasks[wave][task];
        state.phase = Phase::Created(id);
        // A task found again may have finished long ago: ask at once. A fresh one has barely started.
        state.next_check = (!found_by_lookup).then_some(next_check);
    }

    fn task_answered(&mut self, now: SystemTime, wave: usize, task: usize, info: &OperationInfo) {
        let devices = self.plan.waves[wave].tasks[task].len() as u64;
        let next_check = now + self.poll_interval();
        let counts = match (&info.sta_result, &info.status) {
            (Some(sta), _) => Some(TaskCounts::from(sta)),
            // Every device upgraded; the counts follow without staResult.
            (None, Some(OperationStatus::Success)) => {
                Some(TaskCounts { total: devices, success: devices, ..TaskCounts::default() })
            }
            (None, _) => None,
        };
        let finished = match (&info.status, counts) {
            (Some(OperationStatus::Wait | OperationStatus::Processing), _) | (_, None) => false,
            (Some(OperationStatus::Success | OperationStatus::Failed | OperationStatus::Stop), Some(c)) => c.settled(),
            // An unknown or missing status: the counts decide.
            (_, Some(c)) => c.settled() && c.total > 0,
        };
        let state = &mut self.tasks[wave][task];
        state.counts = counts.or(state.counts);
        if let (true, Some(counts), Some(id)) = (finished, counts, state.id().cloned()) {
            state.phase = if counts.failed() == 0 { Phase::Listed(id) } else { Phase::Finished(id) };
            self.record(Record::TaskFinished { at_ms: ms(now), wave, task, counts });
        } else {
            state.next_check = Some(next_check);
        }
    }

    /// The task on this page that the pending create of `(wave, task)` made, if any: same kind, the package's
    /// version, exactly the same devices, created no earlier than the pending record (less the margin), and not
    /// a task this rollout already knows.
    fn find_ours(&self, wave: usize, task: usize, since_ms: u64, page: &OperationPage) -> Option<OperationId> {
        let wanted: BTreeSet<&DeviceId> = self.plan.waves[wave].tasks[task].iter().collect();
        let since = since_ms.saturating_sub(self.plan.lookup_margin_ms);
        let known: BTreeSet<&OperationId> = self.tasks.iter().flatten().filter_map(TaskState::id).collect();
        let version = self.package_version.as_ref().and_then(Option::as_deref);
        page.data
            .iter()
            .find(|info| {
                let kind = info.operate_type.as_ref().is_none_or(|k| *k == self.plan.kind.operate_type());
                let created = info
                    .create_time
                    .is_some_and(|t| u64::try_from(t.unix_seconds()).is_ok_and(|s| s.saturating_mul(1000) >= since));
                let same_version = match (version, info.extend_para.as_ref().and_then(|e| e.get("fileVersion"))) {
                    (Some(v), Some(iot_model::Json::String(have))) => v == have,
                    _ => true,
                };
                let devices: Option<BTreeSet<&DeviceId>> =
                    info.targets.as_ref().and_then(|t| t.devices.as_ref()).map(|d| d.iter().collect());
                kind && created
                    && same_version
                    && devices.is_some_and(|d| d == wanted)
                    && !known.contains(&info.operation_id)
            })
            .map(|info| info.operation_id.clone())
    }

    fn record(&mut self, record: Record) {
        self.journal.push(record);
    }

    /// Applies one journaled record to a machine being resumed.
    fn replay(&mut self, record: &Record) -> Result<(), &'static str> {
        let task = |this: &mut Self, wave: usize, task: usize| -> Result<(), &'static str> {
            if this.end.is_some() {
                return Err("a record after the rollout ended");
            }
            if wave != this.wave {
                return Err("a record for a wave other than the current one");
            }
            if task >= this.tasks[wave].len() {
                return Err("a task the wave does not have");
            }
            Ok(())
        };
        match record {
            Record::Started { .. } => return Err("a second start"),
            Record::PackageChecked { version, .. } => self.package_version = Some(version.clone()),
            Record::WaveStarted { wave, .. } => {
                if *wave != self.wave || *wave >= self.tasks.len() {
                    return Err("a wave started out of order");
                }
                self.wave_started = true;
            }
            Record::CreatePending { at_ms, wave, task: t, .. } => {
                task(self, *wave, *t)?;
                let state = &mut self.tasks[*wave][*t];
                if state.phase != Phase::New {
                    return Err("a create pending for a task that is not new");
                }
                state.phase = Phase::Pending { at_ms: *at_ms };
            }
            Record::Created { at_ms, wave, task: t, operation_id, found_by_lookup } => {
                task(self, *wave, *t)?;
                let state = &mut self.tasks[*wave][*t];
                if !matches!(state.phase, Phase::Pending { .. }) {
                    return Err("a task created without a pending create");
                }
                state.phase = Phase::Created(operation_id.clone());
                state.next_check = (!found_by_lookup)
                    .then(|| UNIX_EPOCH + Duration::from_millis(at_ms.saturating_add(self.plan.poll_interval_ms)));
            }
            Record::LookupAbsent { wave, task: t, .. } | Record::CreateNotMade { wave, task: t, .. } => {
                task(self, *wave, *t)?;
                let state = &mut self.tasks[*wave][*t];
                if !matches!(state.phase, Phase::Pending { .. }) {
                    return Err("a create settled that was not pending");
                }
                state.phase = Phase::New;
            }
            Record::TaskFinished { wave, task: t, counts, .. } => {
                task(self, *wave, *t)?;
                let state = &mut self.tasks[*wave][*t];
                let Phase::Created(id) = &state.phase else { return Err("a task finished that was not running") };
                state.phase =
                    if counts.failed() == 0 { Phase::Listed(id.clone()) } else { Phase::Finished(id.clone()) };
                state.counts = Some(*counts);
            }
            Record::FailuresListed { wave, task: t, failed, .. } => {
                task(self, *wave, *t)?;
                let state = &mut self.tasks[*wave][*t];
                let Phase::Finished(id) = &state.phase else { return Err("failures listed for an unfinished task") };
                state.phase = Phase::Listed(id.clone());
                state.failed = failed.clone();
            }
            Record::WaveFinished { wave, devices, failed, passed, .. } => {
                task(self, *wave, 0)?;
                if self.tasks[*wave].iter().any(|t| !matches!(t.phase, Phase::Listed(_))) {
                    return Err("a wave judged before all its tasks finished");
                }
                if *passed {
                    self.wave += 1;
                    self.wave_started = false;
                } else {
                    self.end = Some(End::Halted(self.failure_rate_reason(*wave, *devices, *failed)));
                }
            }
            Record::Halted { reason, .. } => {
                // A halt because calls kept failing is not final: the resumed rollout carries on.
                if reason.is_final() {
                    self.end = Some(End::Halted(reason.clone()));
                }
            }
            Record::Completed { .. } => {
                if self.wave != self.plan.waves.len() {
                    return Err("completed before every wave passed");
                }
                self.end = Some(End::Completed);
            }
        }
        Ok(())
    }

    /// Where the rollout stands: every wave of the plan, its tasks' counts, failure rate and failed devices.
    pub fn report(&self) -> Report {
        let halted = match &self.end {
            Some(End::Halted(reason)) => Some(reason.clone()),
            _ => None,
        };
        let failed_wave = match &halted {
            Some(HaltReason::FailureRate { wave, .. }) => Some(*wave),
            _ => None,
        };
        let waves = self
            .plan
            .waves
            .iter()
            .zip(&self.tasks)
            .enumerate()
            .map(|(w, (plan, tasks))| {
                let (devices, failed) = self.wave_failures(w);
                let state = if failed_wave == Some(w) {
                    WaveState::Failed
                } else if w < self.wave {
                    WaveState::Passed
                } else if w == self.wave && (self.wave_started || tasks.iter().any(|t| t.phase != Phase::New)) {
                    WaveState::Running
                } else {
                    WaveState::NotStarted
                };
                WaveReport {
                    wave: w,
                    stage: plan.stage,
                    state,
                    devices,
                    succeeded: tasks.iter().filter_map(|t| t.counts).map(|c| c.success).sum(),
                    failed,
                    failure_rate: rate(failed, devices),
                    tasks: plan
                        .tasks
                        .iter()
                        .zip(tasks)
                        .map(|(devices, t)| TaskReport {
                            operation_id: t.id().cloned(),
                            devices: devices.len() as u64,
                            counts: t.counts,
                            finished: matches!(t.phase, Phase::Finished(_) | Phase::Listed(_)),
                        })
                        .collect(),
                    failed_devices: tasks.iter().flat_map(|t| t.failed.iter().cloned()).collect(),
                }
            })
            .collect();
        Report {
            package: self.plan.package.clone(),
            kind: self.plan.kind,
            max_failure_rate: self.plan.max_failure_rate,
            waves,
            completed: self.end == Some(End::Completed),
            halted,
        }
    }
}

/// `failed / devices`, 0 for an empty wave.
fn rate(failed: u64, devices: u64) -> f64 {
    if devices == 0 { 0.0 } else { failed as f64 / devices as f64 }
}

/// Milliseconds since the Unix epoch (0 before it, which no real clock reads).
fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
