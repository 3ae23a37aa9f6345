//! `retry-failed`: given an earlier, finished task, list its failed subtasks and produce the creates (at most
//! 256 devices each) that upgrade exactly those devices again.
//!
//! A small machine of the same shape as [`crate::Rollout`]:
//!
//! ```text
//! let mut retry = RetryFailed::new(task_id, package);
//! let plan = loop {
//!     match retry.poll() {
//!         RetryAction::QueryTask(q) => feed(retry.handle_answer(Answer::Task(send(&q)?))),
//!         RetryAction::ListFailed(q) => feed(retry.handle_answer(Answer::Subtasks(send(&q)?))),
//!         RetryAction::Done(result) => break result?,
//!     }
//! };
//! // Either send plan.creates yourself, or, to get the journal's protection against creating twice,
//! // run them as a one-wave rollout:
//! let rollout = Rollout::new(&plan.rollout_config().unwrap(), now)?;
//! ```

use std::collections::BTreeSet;

use iot_model::{DeviceId, FileId, OperatePolicy, OperationId, OperationStatus, SubOperationStatus};
use iot_proto::call::PageWalker;
use iot_proto::{QuerySubOperations, QueryUpgradeTask};

use crate::error::DriverError;
use crate::machine::{Answer, CallFailure, Create};
use crate::plan::{MAX_TASK_DEVICES, RolloutConfig, UpgradeKind, split};
use crate::report::{FailedDevice, TaskCounts};

/// Items per page of the subtask walk.
const PAGE_SIZE: u32 = 100;
/// Most pages of the subtask walk (a task has at most 256 subtasks).
const MAX_PAGES: u32 = 1_000;

/// Why a retry could not be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// The task has not finished: its list of failed devices may still grow.
    #[error("task {operation_id} has not finished yet")]
    TaskRunning {
        /// The task.
        operation_id: OperationId,
        /// Its counts, when the platform gave them.
        counts: Option<TaskCounts>,
    },
    /// The task is of a kind this SDK does not know, so the create to use is unknown.
    #[error("task {0} is neither a firmware nor a software upgrade")]
    UnknownKind(OperationId),
    /// A call failed.
    #[error("a call failed: {0}")]
    CallFailed(String),
    /// The subtask pages did not add up, so the list of failed devices may be incomplete.
    #[error("the subtask list did not add up: {0}")]
    Incomplete(String),
}

/// What to do next for a retry.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RetryAction {
    /// Query the earlier task; feed [`Answer::Task`].
    QueryTask(QueryUpgradeTask),
    /// One page of its failed subtasks; feed [`Answer::Subtasks`].
    ListFailed(QuerySubOperations),
    /// Done: the creates to send, or why there are none.
    Done(Result<RetryPlan, RetryError>),
}

/// The devices of an earlier task that failed, and the creates that upgrade exactly those devices.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPlan {
    /// The earlier task.
    pub source: OperationId,
    /// The package, as given.
    pub package: FileId,
    /// Firmware or software, as the earlier task was.
    pub kind: UpgradeKind,
    /// The failed devices with their causes, in the platform's order, each once.
    pub failed: Vec<FailedDevice>,
    /// The creates: every failed device in exactly one, at most 256 devices each. Empty when nothing failed.
    pub creates: Vec<Create>,
    /// The policy the creates carry.
    pub policy: Option<OperatePolicy>,
}

impl RetryPlan {
    /// The failed devices as a one-wave rollout (stage 100%), so that the creates are journaled and a crash
    /// between sending and recording cannot create a task twice. `None` when nothing failed.
    pub fn rollout_config(&self) -> Option<RolloutConfig> {
        if self.failed.is_empty() {
            return None;
        }
        let fleet = self.failed.iter().map(|f| f.device_id.clone()).collect();
        let mut config = RolloutConfig::new(self.package.clone(), self.kind, fleet).with_stages(vec![1.0]);
        config.policy = self.policy.clone();
        Some(config)
    }
}

#[derive(Debug)]
enum State {
    Query(QueryUpgradeTask),
    List {
        kind: UpgradeKind,
        walker: Box<PageWalker<QuerySubOperations>>,
        current: QuerySubOperations,
        found: Vec<FailedDevice>,
    },
    Done(Result<RetryPlan, RetryError>),
}

/// Plans the retry of an earlier task's failed devices. See the [module documentation](self).
#[derive(Debug)]
pub struct RetryFailed {
    source: OperationId,
    package: FileId,
    policy: Option<OperatePolicy>,
    task_size: usize,
    state: State,
}

impl RetryFailed {
    /// A retry of the devices that failed in task `source`, with `package` (the task list does not say which
    /// package a task installed, so the caller names it; a rollout's journal has it in its plan).
    pub fn new(source: OperationId, package: FileId) -> Self {
        let query = QueryUpgradeTask::new(source.clone());
        Self { source, package, policy: None, task_size: MAX_TASK_DEVICES, state: State::Query(query) }
    }

    /// Creates the new tasks with this policy (default: none, the platform's default).
    pub fn with_policy(mut self, policy: OperatePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// At most this many devices per create, clamped to `1..=256`.
    pub fn with_task_size(mut self, size: usize) -> Self {
        self.task_size = size.clamp(1, MAX_TASK_DEVICES);
        self
    }

    /// What to do next. Returns the same call until it is answered.
    pub fn poll(&self) -> RetryAction {
        match &self.state {
            State::Query(q) => RetryAction::QueryTask(q.clone()),
            State::List { current, .. } => RetryAction::ListFailed(current.clone()),
            State::Done(result) => RetryAction::Done(result.clone()),
        }
    }

    /// Takes the answer to the outstanding call.
    pub fn handle_answer(&mut self, answer: Answer) -> Result<(), DriverError> {
        let state = std::mem::replace(&mut self.state, State::Done(Err(RetryError::CallFailed("busy".into()))));
        self.state = match (state, answer) {
            (State::Query(_), Answer::Task(info)) => {
                let finished = matches!(
                    info.status,
                    Some(OperationStatus::Success | OperationStatus::Failed | OperationStatus::Stop)
                );
                let kind = info.operate_type.as_ref().and_then(UpgradeKind::from_operate_type);
                match (finished, kind) {
                    (false, _) => State::Done(Err(RetryError::TaskRunning {
                        operation_id: self.source.clone(),
                        counts: info.sta_result.as_ref().map(TaskCounts::from),
                    })),
                    (true, None) => State::Done(Err(RetryError::UnknownKind(self.source.clone()))),
                    (true, Some(kind)) => self.start_walk(kind),
                }
            }
            (State::List { kind, mut walker, found: mut failed, .. }, Answer::Subtasks(page)) => {
                if let Err(e) = walker.handle_page(&page) {
                    self.state = State::Done(Err(RetryError::Incomplete(e.to_string())));
                    return Ok(());
                }
                for sub in &page.data {
                    if let (Some(SubOperationStatus::Fail), Some(device)) = (&sub.status, &sub.device_id) {
                        let cause = sub.detail_info.clone().unwrap_or_default();
                        failed.push(FailedDevice::new(device.clone(), self.source.clone(), "fail".into(), cause));
                    }
                }
                match walker.next_request() {
                    Some(next) => State::List { kind, current: next.clone(), walker, found: failed },
                    None => match walker.outcome() {
                        Some(Ok(_)) => State::Done(Ok(self.plan(kind, failed))),
                        other => State::Done(Err(RetryError::Incomplete(format!("{other:?}")))),
                    },
                }
            }
            (state, answer) => {
                let expected = match &state {
                    State::Query(_) => "task",
                    State::List { .. } => "subtask page",
                    State::Done(_) => {
                        self.state = state;
                        return Err(DriverError::NothingOutstanding);
                    }
                };
                let got = match answer {
                    Answer::Task(_) => "task",
                    Answer::Subtasks(_) => "subtask page",
                    _ => "answer to another call",
                };
                self.state = state;
                return Err(DriverError::WrongAnswer { expected, got });
            }
        };
        Ok(())
    }

    /// Takes the failure of the outstanding call: the retry ends with it (the driver's client already retried).
    pub fn handle_failure(&mut self, failure: CallFailure) -> Result<(), DriverError> {
        if matches!(self.state, State::Done(_)) {
            return Err(DriverError::NothingOutstanding);
        }
        self.state = State::Done(Err(RetryError::CallFailed(failure.message)));
        Ok(())
    }

    fn start_walk(&self, kind: UpgradeKind) -> State {
        let query = QuerySubOperations::new(self.source.clone())
            .with_sub_operation_status(SubOperationStatus::Fail)
            .with_page_size(PAGE_SIZE);
        let walk = PageWalker::new(query, MAX_PAGES).map(Box::new);
        match walk {
            Ok(mut walker) => match walker.next_request().cloned() {
                Some(current) => State::List { kind, walker, current, found: Vec::new() },
                None => State::Done(Ok(self.plan(kind, Vec::new()))),
            },
            Err(e) => State::Done(Err(RetryError::Incomplete(e.to_string()))),
        }
    }

    fn plan(&self, kind: UpgradeKind, failed: Vec<FailedDevice>) -> RetryPlan {
        // A device listed twice (pages that shifted under the walk) is retried once.
        let mut seen = BTreeSet::new();
        let failed: Vec<FailedDevice> = failed.into_iter().filter(|f| seen.insert(f.device_id.clone())).collect();
        let devices: Vec<&DeviceId> = failed.iter().map(|f| &f.device_id).collect();
        let creates = if devices.is_empty() {
            Vec::new()
        } else {
            split(&devices, self.task_size)
                .into_iter()
                .map(|chunk| Create::for_devices(kind, self.package.clone(), chunk, self.policy.clone()))
                .collect()
        };
        RetryPlan {
            source: self.source.clone(),
            package: self.package.clone(),
            kind,
            failed,
            creates,
            policy: self.policy.clone(),
        }
    }
}
