//! What a rollout reports: per wave, its tasks' counts, the failure rate and the failed devices with their
//! causes; and, for a halted rollout, why it halted.

use iot_model::{DeviceId, OperationId, OperationStaResult};
use serde::{Deserialize, Serialize};

use crate::plan::UpgradeKind;

/// A task's `staResult`, as journaled and reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskCounts {
    /// Devices in the task (`total`, or the sum of the states when the platform leaves it out).
    pub total: u64,
    /// Not started.
    pub wait: u64,
    /// Running.
    pub processing: u64,
    /// Upgraded.
    pub success: u64,
    /// Failed (timeouts included).
    pub fail: u64,
    /// Stopped.
    pub stop: u64,
    /// Failed by a timeout (a part of `fail`).
    pub timeout: u64,
}

impl TaskCounts {
    /// Devices that did not upgrade and never will in this task: failed or stopped.
    pub fn failed(&self) -> u64 {
        self.fail + self.stop
    }

    /// Whether no device is waiting or running.
    pub fn settled(&self) -> bool {
        self.wait == 0 && self.processing == 0
    }
}

impl From<&OperationStaResult> for TaskCounts {
    fn from(s: &OperationStaResult) -> Self {
        let sum = s.wait + s.processing + s.success + s.fail + s.stop;
        Self {
            total: s.total.unwrap_or(sum),
            wait: s.wait,
            processing: s.processing,
            success: s.success,
            fail: s.fail,
            stop: s.stop,
            timeout: s.timeout,
        }
    }
}

/// A device that did not upgrade, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedDevice {
    /// The device.
    pub device_id: DeviceId,
    /// The task it failed in.
    pub operation_id: OperationId,
    /// Its subtask's final state as the platform spelled it (`fail` or `stop`).
    pub status: String,
    /// The platform's `detailInfo`, or a placeholder when it gave none.
    pub cause: String,
}

impl FailedDevice {
    /// A failed device.
    pub fn new(device_id: DeviceId, operation_id: OperationId, status: String, cause: String) -> Self {
        Self { device_id, operation_id, status, cause }
    }
}

/// Why a rollout halted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HaltReason {
    /// A wave's failure rate was over the threshold. Final.
    FailureRate {
        /// The wave, from 0.
        wave: usize,
        /// Devices in the wave.
        devices: u64,
        /// Devices that failed or were stopped.
        failed: u64,
        /// `failed / devices`.
        rate: f64,
        /// The threshold.
        max_failure_rate: f64,
    },
    /// The package does not exist or is not of the rollout's kind. Final.
    PackageUnusable {
        /// What is wrong with it.
        message: String,
    },
    /// The platform refused a create, and trying again would not change its mind (a device that does not fit
    /// the package, say). Final.
    CreateRefused {
        /// The wave, from 0.
        wave: usize,
        /// The task of the wave.
        task: usize,
        /// The driver's description of the refusal.
        message: String,
    },
    /// Calls kept failing (the platform unreachable, say). Not final: a resume carries on.
    CallsFailing {
        /// How many calls failed in a row.
        failures: u32,
        /// The last failure.
        message: String,
    },
}

impl HaltReason {
    /// Whether a resume stays halted; `false` for [`HaltReason::CallsFailing`], which a resume retries.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::CallsFailing { .. })
    }
}

/// Where a wave stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaveState {
    /// Not begun.
    NotStarted,
    /// Tasks being created or running.
    Running,
    /// Every task finished and the failure rate was within the threshold.
    Passed,
    /// Every task finished and the failure rate was over the threshold.
    Failed,
}

/// One task of a wave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// The platform's id, once known.
    pub operation_id: Option<OperationId>,
    /// Devices the task names.
    pub devices: u64,
    /// The last counts seen (final once the task finished).
    pub counts: Option<TaskCounts>,
    /// Whether the task finished.
    pub finished: bool,
}

/// One wave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaveReport {
    /// The wave, from 0.
    pub wave: usize,
    /// The cumulative fraction of the fleet it reaches.
    pub stage: f64,
    /// Where it stands.
    pub state: WaveState,
    /// Devices in the wave.
    pub devices: u64,
    /// Devices upgraded so far.
    pub succeeded: u64,
    /// Devices failed or stopped so far.
    pub failed: u64,
    /// `failed / devices`.
    pub failure_rate: f64,
    /// The tasks.
    pub tasks: Vec<TaskReport>,
    /// The failed devices listed so far, with causes (listed once their task has finished).
    pub failed_devices: Vec<FailedDevice>,
}

/// A rollout's state: what [`crate::Action::Completed`] and [`crate::Action::Halted`] carry, and what
/// [`crate::Rollout::report`] gives at any time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The package.
    pub package: iot_model::FileId,
    /// Firmware or software.
    pub kind: UpgradeKind,
    /// The threshold waves are judged by.
    pub max_failure_rate: f64,
    /// Every wave of the plan, begun or not.
    pub waves: Vec<WaveReport>,
    /// Why the rollout halted, if it did.
    pub halted: Option<HaltReason>,
    /// Whether every wave passed.
    pub completed: bool,
}

impl Report {
    /// Every failed device of every wave.
    pub fn failed_devices(&self) -> impl Iterator<Item = &FailedDevice> {
        self.waves.iter().flat_map(|w| w.failed_devices.iter())
    }
}
