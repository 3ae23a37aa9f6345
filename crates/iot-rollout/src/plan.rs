//! What a rollout is asked to do ([`RolloutConfig`]) and what it will do ([`Plan`]): the fleet cut into waves
//! by cumulative stage, each wave cut into upgrade tasks of at most 256 devices.

use std::collections::BTreeSet;
use std::time::Duration;

use iot_model::{DeviceId, FileId, FileType, OperatePolicy, OperateType};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Most devices one upgrade task may name (platform contract, `OperateDevices.devices`).
pub const MAX_TASK_DEVICES: usize = 256;

/// Parts per million: fractions and rates are compared in whole numbers, so that "2% of 100 devices" is exactly
/// 2 devices and never 2.0000000000000004.
const PPM: u64 = 1_000_000;

/// Which upgrade endpoint a rollout uses, and which kind of package it installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeKind {
    /// A firmware package, through `POST /operations/firmwareUpgrade`.
    Firmware,
    /// A software package, through `POST /operations/softwareUpgrade`.
    Software,
}

impl UpgradeKind {
    /// The task kind the platform reports for this rollout's tasks (`operateType`).
    pub fn operate_type(self) -> OperateType {
        match self {
            Self::Firmware => OperateType::FirmwareUpgrade,
            Self::Software => OperateType::SoftwareUpgrade,
        }
    }

    /// The kind of package this rollout installs (`fileType`).
    pub fn file_type(self) -> FileType {
        match self {
            Self::Firmware => FileType::FirmwarePackage,
            Self::Software => FileType::SoftwarePackage,
        }
    }

    /// The kind of a task as the platform reports it, or `None` for a kind this SDK does not know.
    pub fn from_operate_type(kind: &OperateType) -> Option<Self> {
        match kind {
            OperateType::FirmwareUpgrade => Some(Self::Firmware),
            OperateType::SoftwareUpgrade => Some(Self::Software),
            _ => None,
        }
    }
}

/// Everything a staged rollout needs to know. Build it with [`RolloutConfig::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RolloutConfig {
    /// The version package to install.
    pub package: FileId,
    /// Firmware or software.
    pub kind: UpgradeKind,
    /// The devices, in the order they are rolled out to; a device named twice is rolled out to once, at its
    /// first place. The order is the caller's: sort the list for an order that does not depend on where it
    /// came from, or put canary devices first.
    pub fleet: Vec<DeviceId>,
    /// Cumulative fractions of the fleet, strictly increasing, each in `(0, 1]`: stage k covers the first
    /// `ceil(stage_k * fleet)` devices. Default: 1%, 10%, 50%, 100%.
    pub stages: Vec<f64>,
    /// The highest share of a wave's devices that may fail (or be stopped) for the rollout to go on to the
    /// next wave, in `[0, 1]`. Default 2%.
    pub max_failure_rate: f64,
    /// How long to wait between two queries of a running task. Default 60 s.
    pub poll_interval: Duration,
    /// The policy every task is created with (`None`: the platform's default, start now, no retries).
    pub policy: Option<OperatePolicy>,
    /// Most devices per task, `1..=256`. Default 256.
    pub task_size: usize,
    /// How long before its pending record a task found by a resume may have been created and still count as
    /// the one the pending create made: the platform's `createTime` has one-second resolution and its clock
    /// is not ours. Default 120 s.
    pub lookup_margin: Duration,
    /// How many calls in a row may fail before the rollout halts (resumably). Default 10.
    pub max_call_failures: u32,
}

impl RolloutConfig {
    /// A rollout of `package` to `fleet` with the default stages (1%, 10%, 50%, 100%), a 2% failure threshold
    /// and a 60 s poll interval.
    pub fn new(package: FileId, kind: UpgradeKind, fleet: Vec<DeviceId>) -> Self {
        Self {
            package,
            kind,
            fleet,
            stages: vec![0.01, 0.10, 0.50, 1.0],
            max_failure_rate: 0.02,
            poll_interval: Duration::from_secs(60),
            policy: None,
            task_size: MAX_TASK_DEVICES,
            lookup_margin: Duration::from_secs(120),
            max_call_failures: 10,
        }
    }

    /// Sets the cumulative stages (fractions of the fleet, such as `[0.01, 0.1, 0.5, 1.0]`).
    pub fn with_stages(mut self, stages: Vec<f64>) -> Self {
        self.stages = stages;
        self
    }

    /// Sets the highest failure rate a wave may have for the rollout to go on (`0.02` is 2%).
    pub fn with_max_failure_rate(mut self, rate: f64) -> Self {
        self.max_failure_rate = rate;
        self
    }

    /// Sets the time between two queries of a running task.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the policy every task is created with.
    pub fn with_policy(mut self, policy: OperatePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets the most devices per task (at most 256).
    pub fn with_task_size(mut self, size: usize) -> Self {
        self.task_size = size;
        self
    }

    /// Sets how long before a pending record a task found on resume may have been created.
    pub fn with_lookup_margin(mut self, margin: Duration) -> Self {
        self.lookup_margin = margin;
        self
    }

    /// Sets how many calls in a row may fail before the rollout halts.
    pub fn with_max_call_failures(mut self, n: u32) -> Self {
        self.max_call_failures = n;
        self
    }

    /// Checks the configuration and cuts the fleet into waves and tasks.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        if self.stages.is_empty() {
            return Err(ConfigError::NoStages);
        }
        let mut stages_ppm = Vec::with_capacity(self.stages.len());
        for (i, &stage) in self.stages.iter().enumerate() {
            let ppm =
                to_ppm(stage).filter(|p| *p > 0).ok_or(ConfigError::StageOutOfRange { index: i, value: stage })?;
            if stages_ppm.last().is_some_and(|prev| *prev >= ppm) {
                return Err(ConfigError::StagesNotIncreasing { index: i });
            }
            stages_ppm.push(ppm);
        }
        let max_failure_ppm =
            to_ppm(self.max_failure_rate).ok_or(ConfigError::RateOutOfRange(self.max_failure_rate))?;
        if !(1..=MAX_TASK_DEVICES).contains(&self.task_size) {
            return Err(ConfigError::TaskSize(self.task_size));
        }
        if self.poll_interval.is_zero() {
            return Err(ConfigError::ZeroPollInterval);
        }
        if self.max_call_failures == 0 {
            return Err(ConfigError::ZeroCallFailures);
        }
        let mut seen = BTreeSet::new();
        let fleet: Vec<&DeviceId> = self.fleet.iter().filter(|d| seen.insert(*d)).collect();
        if fleet.is_empty() {
            return Err(ConfigError::EmptyFleet);
        }
        let n = fleet.len() as u64;
        let mut waves = Vec::new();
        let mut covered = 0usize;
        for (&stage, &ppm) in self.stages.iter().zip(&stages_ppm) {
            // The ceiling, so that 1% of 50 devices is one device rather than none.
            let upto = usize::try_from((ppm * n).div_ceil(PPM)).unwrap_or(fleet.len()).min(fleet.len());
            if upto <= covered {
                // A stage that adds no device (1% and 2% of 10 devices are both one device) makes no wave.
                continue;
            }
            let devices = &fleet[covered..upto];
            waves.push(WavePlan { stage, tasks: split(devices, self.task_size) });
            covered = upto;
        }
        Ok(Plan {
            package: self.package.clone(),
            kind: self.kind,
            max_failure_rate: self.max_failure_rate,
            max_failure_ppm,
            poll_interval_ms: millis(self.poll_interval),
            policy: self.policy.clone(),
            lookup_margin_ms: millis(self.lookup_margin),
            max_call_failures: self.max_call_failures,
            waves,
        })
    }
}

/// A fraction in `[0, 1]` as parts per million, rounded to the nearest; `None` outside the range or NaN.
fn to_ppm(fraction: f64) -> Option<u64> {
    if !(0.0..=1.0).contains(&fraction) {
        return None;
    }
    // In range, so the product lies in 0..=1e6 and the conversion is exact after rounding.
    Some((fraction * PPM as f64).round() as u64)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Cuts `devices` into the fewest tasks of at most `size`, as even as possible (800 devices make four tasks of
/// 200, not three of 256 and one of 32), so that one small task does not judge a wave alone.
pub(crate) fn split(devices: &[&DeviceId], size: usize) -> Vec<Vec<DeviceId>> {
    let tasks = devices.len().div_ceil(size);
    let (base, extra) = (devices.len() / tasks, devices.len() % tasks);
    let mut out = Vec::with_capacity(tasks);
    let mut at = 0;
    for i in 0..tasks {
        let len = base + usize::from(i < extra);
        out.push(devices[at..at + len].iter().map(|d| (*d).clone()).collect());
        at += len;
    }
    out
}

/// What a rollout will do: the checked settings and the waves. Written whole into the journal's first record,
/// so that a resume needs nothing but the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// The version package to install.
    pub package: FileId,
    /// Firmware or software.
    pub kind: UpgradeKind,
    /// The failure threshold as given.
    pub max_failure_rate: f64,
    /// The failure threshold in parts per million, the figure waves are judged by.
    pub max_failure_ppm: u64,
    /// Time between two queries of a running task, in milliseconds.
    pub poll_interval_ms: u64,
    /// The policy every task is created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<OperatePolicy>,
    /// See [`RolloutConfig::lookup_margin`], in milliseconds.
    pub lookup_margin_ms: u64,
    /// See [`RolloutConfig::max_call_failures`].
    pub max_call_failures: u32,
    /// The waves, in order; stages that add no device have none.
    pub waves: Vec<WavePlan>,
}

impl Plan {
    /// Every device of the rollout, in wave and task order.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceId> {
        self.waves.iter().flat_map(|w| w.tasks.iter().flatten())
    }

    /// Whether `failed` of `total` devices is within the threshold.
    pub fn within_threshold(&self, failed: u64, total: u64) -> bool {
        u128::from(failed) * u128::from(PPM) <= u128::from(self.max_failure_ppm) * u128::from(total)
    }
}

/// One wave: the stage it reaches and its tasks' devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WavePlan {
    /// The cumulative fraction of the fleet the rollout reaches with this wave.
    pub stage: f64,
    /// The devices of each task, at most 256 per task.
    pub tasks: Vec<Vec<DeviceId>>,
}

impl WavePlan {
    /// How many devices the wave upgrades.
    pub fn device_count(&self) -> usize {
        self.tasks.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Vec<DeviceId> {
        (0..n).map(|i| DeviceId::new(format!("dev-{i:05}")).unwrap()).collect()
    }

    fn config(n: usize) -> RolloutConfig {
        RolloutConfig::new(FileId::new("pkg").unwrap(), UpgradeKind::Firmware, fleet(n))
    }

    #[test]
    fn two_thousand_devices_make_waves_of_20_180_800_1000_in_1_1_4_4_tasks() {
        let plan = config(2000).plan().unwrap();
        let sizes: Vec<usize> = plan.waves.iter().map(WavePlan::device_count).collect();
        assert_eq!(sizes, [20, 180, 800, 1000]);
        let tasks: Vec<Vec<usize>> = plan.waves.iter().map(|w| w.tasks.iter().map(Vec::len).collect()).collect();
        assert_eq!(tasks, [vec![20], vec![180], vec![200; 4], vec![250; 4]]);
        // Every device once, in the fleet's order.
        assert_eq!(plan.devices().cloned().collect::<Vec<_>>(), fleet(2000));
    }

    #[test]
    fn uneven_splits_stay_within_256_and_differ_by_at_most_one() {
        let plan = config(1000).with_stages(vec![0.513, 1.0]).plan().unwrap();
        for wave in &plan.waves {
            let lens: Vec<usize> = wave.tasks.iter().map(Vec::len).collect();
            assert!(lens.iter().all(|l| *l <= MAX_TASK_DEVICES), "{lens:?}");
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1, "{lens:?}");
        }
        assert_eq!(plan.waves[0].device_count(), 513);
        assert_eq!(plan.waves[0].tasks.len(), 3);
    }

    #[test]
    fn small_fleets_round_up_and_skip_empty_stages_and_duplicates() {
        let mut c = config(10).with_stages(vec![0.01, 0.02, 0.5, 1.0]);
        c.fleet.push(c.fleet[0].clone());
        let plan = c.plan().unwrap();
        let sizes: Vec<usize> = plan.waves.iter().map(WavePlan::device_count).collect();
        assert_eq!(sizes, [1, 4, 5]);
        assert_eq!(plan.waves.iter().map(|w| w.stage).collect::<Vec<_>>(), [0.01, 0.5, 1.0]);
    }

    #[test]
    fn thresholds_are_exact() {
        let plan = config(100).plan().unwrap();
        assert!(plan.within_threshold(2, 100));
        assert!(!plan.within_threshold(3, 100));
        assert!(plan.within_threshold(0, 20));
        assert!(!plan.within_threshold(1, 20));
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert_eq!(config(0).plan(), Err(ConfigError::EmptyFleet));
        assert_eq!(config(5).with_stages(vec![]).plan(), Err(ConfigError::NoStages));
        assert_eq!(config(5).with_stages(vec![0.5, 0.5]).plan(), Err(ConfigError::StagesNotIncreasing { index: 1 }));
        assert!(matches!(config(5).with_stages(vec![0.0, 1.0]).plan(), Err(ConfigError::StageOutOfRange { .. })));
        assert!(matches!(config(5).with_stages(vec![f64::NAN]).plan(), Err(ConfigError::StageOutOfRange { .. })));
        assert!(matches!(config(5).with_max_failure_rate(1.5).plan(), Err(ConfigError::RateOutOfRange(_))));
        assert_eq!(config(5).with_task_size(257).plan(), Err(ConfigError::TaskSize(257)));
        assert_eq!(config(5).with_poll_interval(Duration::ZERO).plan(), Err(ConfigError::ZeroPollInterval));
    }
}
