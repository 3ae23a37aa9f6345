//! Device upgrade tasks: checks against the fleet, one timeline per device fixed at creation, and the views the
//! queries answer, computed from that timeline at the time of the query.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use iot_model::{
    CategoryInfo, CreateUpgradeTask, CreateUpgradeTaskResponse, DeviceId, ExecuteType, FileType, Json, OperateDevices,
    OperatePolicy, OperateType, OperationId, OperationInfo, OperationPage, OperationStaResult, OperationStatus,
    SubOperationId, SubOperationInfo, SubOperationPage, SubOperationStatus,
};
use iot_proto::{ApiError, ErrorCode, Page, QuerySubOperations, QueryUpgradeTaskList, UPGRADE_PAGING, rules};

use super::paging::{Fenwick, PageWindow};
use super::rng::Rng;
use super::{Ms, Simulator, VersionEvent, timestamp};

/// Label of the streams upgrade timelines are drawn from.
const UPGRADE_STREAM: u64 = 0x0F1A_0001;
/// Longest delay before a device of a `now` or `custom` task is handed its subtask.
const DISPATCH_MAX: Ms = 30_000;
/// Latest moment, after creation, at which a device of a `device_online` task comes online.
const ONLINE_MAX: Ms = 2 * 3_600_000;
/// Shortest and longest package download.
const DOWNLOAD: (Ms, Ms) = (20_000, 120_000);
/// Shortest and longest installation.
const INSTALL: (Ms, Ms) = (30_000, 180_000);
/// How long a download may run before it is given up.
const DOWNLOAD_TIMEOUT: Ms = 300_000;
/// How long the platform waits for a device to report the result of an installation.
const REPORT_TIMEOUT: Ms = 600_000;
/// Pause before a failed device is retried.
const RETRY_DELAY: Ms = 60_000;

/// Why a device's upgrade failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    DownloadTimedOut,
    ChecksumMismatch,
    LowBattery,
    InstallFailed,
    NoReport,
    WindowEnded,
    NeverStarted,
}

/// The causes drawn at random; the window causes only come from a custom policy's end.
const RANDOM_CAUSES: &[Cause] =
    &[Cause::DownloadTimedOut, Cause::ChecksumMismatch, Cause::LowBattery, Cause::InstallFailed, Cause::NoReport];

impl Cause {
    fn text(self) -> &'static str {
        match self {
            Self::DownloadTimedOut => "download timed out",
            Self::ChecksumMismatch => "device rejected the package: checksum mismatch",
            Self::LowBattery => "device refused the upgrade: battery too low",
            Self::InstallFailed => "installation failed: the device rolled back to the previous version",
            Self::NoReport => "the device did not report the upgrade result in time",
            Self::WindowEnded => "the upgrade window ended before the device finished",
            Self::NeverStarted => "the upgrade window ended before the device could start",
        }
    }

    /// Timeouts are counted in `staResult.timeout` (as a part of `fail`).
    fn is_timeout(self) -> bool {
        matches!(self, Self::DownloadTimedOut | Self::NoReport | Self::WindowEnded | Self::NeverStarted)
    }
}

/// One try at upgrading one device.
#[derive(Clone, Debug)]
struct Attempt {
    start: Ms,
    downloaded: Option<Ms>,
    end: Ms,
    failure: Option<Cause>,
}

/// One device's part of a task, with its whole future fixed at creation.
#[derive(Clone, Debug)]
struct SubTask {
    id: SubOperationId,
    device_id: DeviceId,
    source_version: String,
    waiting_for: &'static str,
    attempts: Vec<Attempt>,
    /// When the subtask reaches its final state.
    end: Ms,
    /// `None` for success.
    failure: Option<Cause>,
}

/// A subtask as seen at one moment.
struct SubState {
    status: SubOperationStatus,
    started: Option<Ms>,
    stopped: Option<Ms>,
    detail: String,
    downloaded: Option<Ms>,
    upgraded: Option<Ms>,
    /// Counted from the timeline by the queries; kept here so a unit test can see one subtask's view of it.
    #[cfg_attr(not(test), allow(dead_code))]
    timed_out: bool,
}

impl SubTask {
    /// The status alone at `now`: what [`SubTask::state`] gives, without building the detail text.
    fn status(&self, now: Ms) -> SubOperationStatus {
        if now >= self.end {
            if self.failure.is_none() { SubOperationStatus::Success } else { SubOperationStatus::Fail }
        } else if self.attempts.first().is_some_and(|a| a.start <= now) {
            SubOperationStatus::Processing
        } else {
            SubOperationStatus::Wait
        }
    }

    fn state(&self, now: Ms, target: &str) -> SubState {
        let started = self.attempts.first().map(|a| a.start).filter(|s| *s <= now);
        let downloaded = self.attempts.iter().rev().filter_map(|a| a.downloaded).find(|d| *d <= now);
        if now >= self.end {
            let (status, detail) = match self.failure {
                None => (SubOperationStatus::Success, format!("upgraded to {target}")),
                Some(cause) if self.attempts.len() > 1 => {
                    (SubOperationStatus::Fail, format!("{} (after {} attempts)", cause.text(), self.attempts.len()))
                }
                Some(cause) => (SubOperationStatus::Fail, cause.text().to_owned()),
            };
            return SubState {
                status,
                started,
                stopped: Some(self.end),
                detail,
                downloaded,
                upgraded: self.failure.is_none().then_some(self.end),
                timed_out: self.failure.is_some_and(Cause::is_timeout),
            };
        }
        let current = self.attempts.iter().enumerate().rev().find(|(_, a)| a.start <= now);
        let detail = match current {
            None => self.waiting_for.to_owned(),
            Some((k, a)) if now < a.end => {
                let step = if a.downloaded.is_some_and(|d| now >= d) {
                    "installing the package"
                } else {
                    "downloading the package"
                };
                if k == 0 { step.to_owned() } else { format!("{step} (attempt {})", k + 1) }
            }
            Some((_, a)) => format!("retrying after: {}", a.failure.map_or("an error", Cause::text)),
        };
        let status = if current.is_some() { SubOperationStatus::Processing } else { SubOperationStatus::Wait };
        SubState { status, started, stopped: None, detail, downloaded, upgraded: None, timed_out: false }
    }
}

/// Draws one device's attempts: outcomes, causes and durations from `rng`, cut short by a custom window's end.
fn plan(
    rng: &mut Rng,
    first_start: Ms,
    max_attempts: u32,
    failure_rate: f64,
    window_end: Option<Ms>,
) -> (Vec<Attempt>, Ms, Option<Cause>) {
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut t = first_start;
    for _ in 0..max_attempts {
        if window_end.is_some_and(|we| t >= we) {
            break;
        }
        let download = rng.millis(DOWNLOAD.0, DOWNLOAD.1);
        let install = rng.millis(INSTALL.0, INSTALL.1);
        let failure = if rng.chance(failure_rate) { rng.pick(RANDOM_CAUSES).copied() } else { None };
        let (downloaded, end) = match failure {
            None | Some(Cause::InstallFailed) => (Some(t + download), t + download + install),
            Some(Cause::DownloadTimedOut) => (None, t + DOWNLOAD_TIMEOUT),
            Some(Cause::LowBattery) => (None, t + 2_000),
            Some(Cause::ChecksumMismatch) => (Some(t + download), t + download + 1_000),
            Some(_) => (Some(t + download), t + download + REPORT_TIMEOUT),
        };
        let mut attempt = Attempt { start: t, downloaded, end, failure };
        if let Some(we) = window_end.filter(|we| attempt.end > *we) {
            attempt.end = we;
            attempt.downloaded = attempt.downloaded.filter(|d| *d <= we);
            attempt.failure = Some(Cause::WindowEnded);
            attempts.push(attempt);
            break;
        }
        attempts.push(attempt);
        if failure.is_none() {
            break;
        }
        t = end + RETRY_DELAY;
    }
    match attempts.last() {
        Some(last) => {
            let (end, failure) = (last.end, last.failure);
            (attempts, end, failure)
        }
        None => (attempts, window_end.unwrap_or(first_start), Some(Cause::NeverStarted)),
    }
}

/// The times a task's subtasks change state, each list sorted, fixed at creation: the counts at any time are
/// binary searches instead of a pass over every subtask.
#[derive(Clone, Debug, Default)]
struct Timeline {
    /// When each subtask that starts at all starts its first attempt.
    starts: Vec<Ms>,
    /// When each successful subtask succeeds.
    successes: Vec<Ms>,
    /// When each failed subtask that had started fails.
    started_failures: Vec<Ms>,
    /// When each subtask that never started fails (its window ended first).
    unstarted_failures: Vec<Ms>,
    /// When each failed subtask whose cause is a timeout fails.
    timeouts: Vec<Ms>,
    /// The first time any subtask leaves `wait`; the task waits until then.
    first_change: Ms,
    /// The time the last subtask finishes; the task has finished from then on.
    last_end: Ms,
}

impl Timeline {
    fn new(subs: &[SubTask]) -> Self {
        let mut t = Self { first_change: Ms::MAX, last_end: Ms::MIN, ..Self::default() };
        for sub in subs {
            match sub.attempts.first() {
                Some(first) => {
                    t.starts.push(first.start);
                    t.first_change = t.first_change.min(first.start);
                    if sub.failure.is_some() { &mut t.started_failures } else { &mut t.successes }.push(sub.end);
                }
                None => {
                    t.unstarted_failures.push(sub.end);
                    t.first_change = t.first_change.min(sub.end);
                }
            }
            if sub.failure.is_some_and(Cause::is_timeout) {
                t.timeouts.push(sub.end);
            }
            t.last_end = t.last_end.max(sub.end);
        }
        for list in
            [&mut t.starts, &mut t.successes, &mut t.started_failures, &mut t.unstarted_failures, &mut t.timeouts]
        {
            list.sort_unstable();
            list.shrink_to_fit();
        }
        t
    }
}

/// How many of the sorted times are at or before `now`.
fn count_by(times: &[Ms], now: Ms) -> u64 {
    times.partition_point(|t| *t <= now) as u64
}

/// The task statuses [`StatusIndex`] tracks, in its order; `stop` is never reached (the API cannot stop a task).
const TRACKED: [OperationStatus; 4] =
    [OperationStatus::Wait, OperationStatus::Processing, OperationStatus::Success, OperationStatus::Failed];

/// Every upgrade task's status at the simulator's clock, and which tasks are in each status in creation order.
///
/// A task changes status at most twice, at times fixed when it is created (its first subtask's start and its
/// last subtask's end), and the clock never runs backwards, so the index is moved forward as those times come
/// due. The n-th task of a status is then a search in a Fenwick tree: a filtered page costs its items and a
/// logarithm, not a pass over every task.
#[derive(Clone, Debug, Default)]
pub(crate) struct StatusIndex {
    members: [Fenwick; 4],
    status: Vec<u8>,
    due: BinaryHeap<Reverse<(Ms, u32)>>,
}

impl StatusIndex {
    fn slot(status: &OperationStatus) -> Option<usize> {
        TRACKED.iter().position(|s| s == status)
    }

    fn add(&mut self, task: &UpgradeTask, now: Ms) {
        let i = self.status.len();
        let slot = Self::slot(&task.status_at(now)).unwrap_or(0);
        for (k, tree) in self.members.iter_mut().enumerate() {
            tree.push(u32::from(k == slot));
        }
        self.status.push(slot as u8);
        for t in [task.timeline.first_change, task.timeline.last_end] {
            if t > now {
                self.due.push(Reverse((t, i as u32)));
            }
        }
    }

    /// Moves the tasks whose status changes by `now`.
    pub(crate) fn advance(&mut self, now: Ms, tasks: &[UpgradeTask]) {
        while let Some(Reverse((t, i))) = self.due.peek().copied() {
            if t > now {
                break;
            }
            self.due.pop();
            let i = i as usize;
            let (Some(task), Some(old)) = (tasks.get(i), self.status.get(i).copied()) else { continue };
            let new = Self::slot(&task.status_at(now)).unwrap_or(0) as u8;
            if new != old {
                self.members[usize::from(old)].add(i, -1);
                self.members[usize::from(new)].add(i, 1);
                self.status[i] = new;
            }
        }
    }

    fn status(&self, i: usize) -> OperationStatus {
        self.status.get(i).and_then(|s| TRACKED.get(usize::from(*s))).cloned().unwrap_or(OperationStatus::Wait)
    }
}

/// An upgrade task.
#[derive(Clone, Debug)]
pub(crate) struct UpgradeTask {
    id: OperationId,
    created: Ms,
    start: Ms,
    kind: OperateType,
    version: String,
    device_type: String,
    model: String,
    manufacturer_name: String,
    targets: OperateDevices,
    policy: Option<OperatePolicy>,
    subs: Vec<SubTask>,
    timeline: Timeline,
    /// The task's list item as JSON, kept from its first listing: a 100-item page is then mostly copies of
    /// these bytes instead of 100 built and serialised `OperationInfo`s (issue 11, goal 3). Kept only once
    /// listed so that tasks never listed cost no memory.
    listed: Option<Box<ItemJson>>,
}

/// The status, counts and stop time an item was written at.
type Summary = (OperationStatus, OperationStaResult, Option<Ms>);

/// A task's list item as JSON cut around its time-dependent fields (`stopTime`, `status`, `staResult`), with
/// those fields as last written: they change only when a subtask changes state, so most pages copy them too.
#[derive(Clone, Debug)]
struct ItemJson {
    /// The bytes up to and including `"stopTime":`.
    head: Box<[u8]>,
    /// From the `,` after the stop time up to the `,` before `"extendPara"` (where `status` and `staResult`
    /// go, in the generated struct's field order).
    middle: Box<[u8]>,
    /// From `,"extendPara":` to the closing `}`.
    tail: Box<[u8]>,
    /// The summary `varying` was written at.
    at: Summary,
    /// The stop time's JSON, then `,"status":…,"staResult":…`, split at `split`.
    varying: Vec<u8>,
    split: usize,
}

impl ItemJson {
    /// Cuts the serialised item of `task` with the time-dependent fields left empty: `stopTime` then reads
    /// `null` (it is always written) and `status` and `staResult` are skipped, so the cuts fall where those
    /// fields go and every other byte is the serialiser's own.
    fn new(task: &UpgradeTask, at: Summary) -> Option<Self> {
        // Sized for a typical item (about 480 bytes) at once: growing it step by step costs a reallocation per
        // step, and in the fragmented heap a large fleet leaves behind, each one walks glibc's free lists.
        let mut json = Vec::with_capacity(1024);
        serde_json::to_writer(&mut json, &task.info_fixed()).ok()?;
        const STOP: &[u8] = b"\"stopTime\":null";
        const EXTEND: &[u8] = b",\"extendPara\":";
        // The fields before `stopTime` are an id and two timestamps, and key text inside string values is
        // escaped, so the first unescaped `"stopTime":null` is the field itself; `extendPara` is the last field.
        let stop = json.windows(STOP.len()).position(|w| w == STOP)?;
        let extend = json.windows(EXTEND.len()).rposition(|w| w == EXTEND)?;
        let after_stop = stop + STOP.len();
        if extend < after_stop {
            return None;
        }
        let mut item = Self {
            head: json[..after_stop - b"null".len()].into(),
            middle: json[after_stop..extend].into(),
            tail: json[extend..].into(),
            at: at.clone(),
            // A stop time, a status and a result: about 90 bytes, written in one allocation.
            varying: Vec::with_capacity(128),
            split: 0,
        };
        item.update(at);
        Some(item)
    }

    /// Rewrites the time-dependent fields for `at`, unless they were last written for it.
    fn refresh(&mut self, at: Summary) {
        if self.at != at || self.varying.is_empty() {
            self.update(at);
        }
    }

    fn update(&mut self, at: Summary) {
        let (status, sta, stop) = &at;
        let out = &mut self.varying;
        out.clear();
        // Writing into a `Vec` cannot fail, nor can these plain values.
        match stop.and_then(timestamp) {
            Some(t) => serde_json::to_writer(&mut *out, &t).unwrap_or_default(),
            None => out.extend_from_slice(b"null"),
        }
        self.split = out.len();
        out.extend_from_slice(b",\"status\":");
        serde_json::to_writer(&mut *out, status).unwrap_or_default();
        out.extend_from_slice(b",\"staResult\":");
        serde_json::to_writer(&mut *out, sta).unwrap_or_default();
        self.at = at;
    }

    /// Appends the item: the same bytes as serialising [`UpgradeTask::info`] at the summary last refreshed.
    fn write(&self, out: &mut Vec<u8>) {
        let (stop, rest) = self.varying.split_at(self.split);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(stop);
        out.extend_from_slice(&self.middle);
        out.extend_from_slice(rest);
        out.extend_from_slice(&self.tail);
    }
}

impl UpgradeTask {
    pub(crate) fn subtask_count(&self) -> usize {
        self.subs.len()
    }

    /// Status, counts and stop time at `now`, all counted from the subtasks' timeline.
    fn summary(&self, now: Ms) -> (OperationStatus, OperationStaResult, Option<Ms>) {
        let t = &self.timeline;
        let total = self.subs.len() as u64;
        let mut sta = OperationStaResult::new().with_total(total);
        sta.success = count_by(&t.successes, now);
        let started_failed = count_by(&t.started_failures, now);
        sta.fail = started_failed + count_by(&t.unstarted_failures, now);
        // A subtask that started and has not finished is processing; every finished one that started is counted
        // in `starts` too, since a subtask starts before it ends.
        sta.processing = count_by(&t.starts, now) - sta.success - started_failed;
        sta.wait = total - sta.processing - sta.success - sta.fail;
        sta.timeout = count_by(&t.timeouts, now);
        let status = self.status_at(now);
        let stop = matches!(status, OperationStatus::Success | OperationStatus::Failed).then_some(t.last_end);
        (status, sta, stop)
    }

    /// The task's status at `now`: waiting until any subtask leaves `wait`, finished once the last one ends.
    fn status_at(&self, now: Ms) -> OperationStatus {
        let t = &self.timeline;
        if self.subs.is_empty() || now < t.first_change {
            OperationStatus::Wait
        } else if now >= t.last_end {
            if t.started_failures.is_empty() && t.unstarted_failures.is_empty() {
                OperationStatus::Success
            } else {
                OperationStatus::Failed
            }
        } else {
            OperationStatus::Processing
        }
    }

    /// How many subtasks are in `status` at `now`, from the timeline.
    fn count_in(&self, status: &SubOperationStatus, now: Ms) -> u64 {
        let (_, sta, _) = self.summary(now);
        match status {
            SubOperationStatus::Wait => sta.wait,
            SubOperationStatus::Processing => sta.processing,
            SubOperationStatus::Success => sta.success,
            SubOperationStatus::Fail => sta.fail,
            _ => 0,
        }
    }

    fn info(&self, now: Ms) -> OperationInfo {
        let (status, sta, stop) = self.summary(now);
        let mut info = self.info_fixed().with_status(status).with_sta_result(sta);
        info.stop_time = stop.and_then(timestamp);
        info
    }

    /// The list item's fields that do not change once the task exists (all but `status`, `staResult` and
    /// `stopTime`).
    fn info_fixed(&self) -> OperationInfo {
        // The documented example carries only `fileVersion` here.
        let mut extend = BTreeMap::new();
        extend.insert("fileVersion".to_owned(), Json::String(self.version.clone()));
        // The platform reports the type, model and manufacturer of the targets even when devices were named
        // by id; every target fits the package, so they are the package's.
        let mut targets = self.targets.clone();
        targets.device_type.get_or_insert_with(|| self.device_type.clone());
        targets.model.get_or_insert_with(|| self.model.clone());
        targets.manufacturer_name.get_or_insert_with(|| self.manufacturer_name.clone());
        let mut info = OperationInfo::new(self.id.clone())
            .with_operate_type(self.kind.clone())
            .with_targets(targets)
            .with_extend_para(extend);
        info.create_time = timestamp(self.created);
        info.start_time = timestamp(self.start);
        info.policy = self.policy.clone();
        info
    }

    fn sub_info(&self, sub: &SubTask, now: Ms) -> SubOperationInfo {
        let s = sub.state(now, &self.version);
        let ts = |t: Option<Ms>| t.and_then(timestamp).map_or(Json::Null, |t| Json::String(t.to_string()));
        let current = if s.upgraded.is_some() { &self.version } else { &sub.source_version };
        let mut extend = BTreeMap::new();
        extend.insert("sourceVersion".to_owned(), Json::String(sub.source_version.clone()));
        extend.insert("targetVersion".to_owned(), Json::String(self.version.clone()));
        extend.insert("curVersion".to_owned(), Json::String(current.clone()));
        extend.insert("downloadTime".to_owned(), ts(s.downloaded));
        extend.insert("upgradeTime".to_owned(), ts(s.upgraded));
        let mut info = SubOperationInfo::new(sub.id.clone())
            .with_operate_type(self.kind.clone())
            .with_device_id(sub.device_id.clone())
            .with_status(s.status)
            .with_detail_info(s.detail)
            .with_extend_info(extend);
        info.create_time = timestamp(self.created);
        info.start_time = s.started.and_then(timestamp);
        info.stop_time = s.stopped.and_then(timestamp);
        info
    }

    /// Whether the task passes the list's filters on its kind, device type, model and manufacturer (the device
    /// and status filters are answered from indexes).
    fn matches_kind(&self, q: &QueryUpgradeTaskList) -> bool {
        q.operation_type.as_ref().is_none_or(|t| *t == self.kind)
            && q.device_type.as_ref().is_none_or(|t| *t == self.device_type)
            && q.model.as_ref().is_none_or(|m| *m == self.model)
            && q.manufacturer_name.as_ref().is_none_or(|m| *m == self.manufacturer_name)
    }
}

fn not_found(what: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::DeviceOrPackageNotFound, what)
}

fn mismatch(what: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::VersionMismatch, what)
}

impl Simulator {
    /// Creates a software or firmware upgrade task after the checks that need the platform's state.
    pub(super) fn create_upgrade(
        &mut self,
        now: Ms,
        kind: OperateType,
        body: CreateUpgradeTask,
    ) -> Result<CreateUpgradeTaskResponse, ApiError> {
        if let Some(policy) = &body.policy {
            let now_ts = timestamp(now)
                .ok_or_else(|| ApiError::new(ErrorCode::InternalError, "the simulated clock is out of range"))?;
            rules::policy_starts_in_future(policy, now_ts)
                .map_err(|e| ApiError::new(e.code.clone().unwrap_or(ErrorCode::StartInPast), e.to_string()))?;
        }
        let package = self
            .packages
            .iter()
            .find(|p| p.file_id == body.file_id)
            .ok_or_else(|| not_found(format!("version package {} does not exist", body.file_id)))?
            .clone();
        let wanted =
            if kind == OperateType::FirmwareUpgrade { FileType::FirmwarePackage } else { FileType::SoftwarePackage };
        if package.file_type.as_ref() != Some(&wanted) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("package {} is not a {wanted}, as a {kind} task needs", body.file_id),
            ));
        }
        let (p_type, p_model, p_maker) = package_kind(&package);
        let devices = self.upgrade_targets(&body.targets, p_type, p_model, p_maker)?;

        let seq = self.next_seq();
        let id = self.fresh_id();
        let id = OperationId::new(id).map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
        let policy = body.policy.clone();
        let execute = policy.as_ref().and_then(|p| p.execute_type.clone()).unwrap_or(ExecuteType::Now);
        let window = match (&execute, policy.as_ref().and_then(|p| p.start_time.zip(p.end_time))) {
            (ExecuteType::Custom, Some((s, e))) => Some((s.unix_seconds() * 1000, e.unix_seconds() * 1000)),
            _ => None,
        };
        let max_attempts = match &policy {
            Some(p) if p.retry_type == Some(true) => 1 + p.retry_times.unwrap_or(0),
            _ => 1,
        };
        let (start, waiting_for) = match (&execute, window) {
            (ExecuteType::Custom, Some((s, _))) => (s, "waiting for the upgrade window"),
            (ExecuteType::DeviceOnline, _) => (now, "waiting for the device to come online"),
            _ => (now, "queued for delivery to the device"),
        };
        let mut subs = Vec::with_capacity(devices.len());
        let new_version: std::sync::Arc<str> = package.version.clone().unwrap_or_default().into();
        for (i, device) in devices.into_iter().enumerate() {
            let mut rng = Rng::derive(self.seed, &[UPGRADE_STREAM, seq, i as u64]);
            let first_start = match execute {
                ExecuteType::DeviceOnline => now + rng.millis(0, ONLINE_MAX),
                _ => start + rng.millis(0, DISPATCH_MAX),
            };
            let (attempts, end, failure) =
                plan(&mut rng, first_start, max_attempts, self.failure_rate, window.map(|(_, e)| e));
            let sub_id = self.fresh_id();
            let sub_id =
                SubOperationId::new(sub_id).map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
            let source_version =
                self.device(device.as_str()).map(|d| d.version_for(&wanted).to_owned()).unwrap_or_default();
            if failure.is_none()
                && let Some(position) = self.device_position(device.as_str())
            {
                self.schedule_version(VersionEvent {
                    at: end,
                    seq,
                    device: position,
                    file_type: wanted.clone(),
                    version: new_version.clone(),
                });
            }
            subs.push(SubTask { id: sub_id, device_id: device, source_version, waiting_for, attempts, end, failure });
        }
        let position = self.upgrades.len();
        for sub in &subs {
            if let Some(device) = self.device_position(sub.device_id.as_str()) {
                self.upgrades_by_device.entry(device as u32).or_default().push(position as u32);
            }
        }
        let timeline = Timeline::new(&subs);
        let task = UpgradeTask {
            id: id.clone(),
            created: now,
            start,
            kind,
            version: package.version.clone().unwrap_or_default(),
            device_type: p_type.to_owned(),
            model: p_model.to_owned(),
            manufacturer_name: p_maker.to_owned(),
            targets: body.targets,
            policy,
            subs,
            timeline,
            listed: None,
        };
        self.upgrade_status.add(&task, now);
        self.upgrade_index.insert(id.clone(), position);
        self.upgrades.push(task);
        Ok(CreateUpgradeTaskResponse::new(id))
    }

    /// Expands the targets to devices, in the order given (device lists) or fleet order (groups), without
    /// duplicates; every device must exist and fit the package.
    fn upgrade_targets(
        &self,
        targets: &OperateDevices,
        p_type: &str,
        p_model: &str,
        p_maker: &str,
    ) -> Result<Vec<DeviceId>, ApiError> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(ids) = targets.devices.as_ref().filter(|d| !d.is_empty()) {
            for id in ids {
                let device =
                    self.device(id.as_str()).ok_or_else(|| not_found(format!("device {id} does not exist")))?;
                if !device.is_kind(p_type, p_model, p_maker) {
                    return Err(mismatch(format!(
                        "device {id} is a {} {} by {}, the package is for {p_type} {p_model} by {p_maker}",
                        device.device_type, device.model, device.manufacturer_name
                    )));
                }
                if seen.insert(id.clone()) {
                    out.push(id.clone());
                }
            }
            return Ok(out);
        }
        let groups = targets.device_groups.as_deref().unwrap_or_default();
        let t_type = targets.device_type.as_deref().unwrap_or_default();
        let t_model = targets.model.as_deref().unwrap_or_default();
        let t_maker = targets.manufacturer_name.as_deref().unwrap_or_default();
        if (t_type, t_model, t_maker) != (p_type, p_model, p_maker) {
            return Err(mismatch(format!(
                "the targets name {t_type} {t_model} by {t_maker}, the package is for {p_type} {p_model} by {p_maker}"
            )));
        }
        for g in groups {
            if !self.devices.iter().any(|d| d.groups.contains(g)) {
                return Err(not_found(format!("device group {g} does not exist")));
            }
        }
        // Fleet ids are unique, so a walk over the fleet needs no duplicate check: a set of copies of half a
        // million ids, freed right after, would also leave the heap fragmented for every later query.
        for d in &self.devices {
            if d.is_kind(t_type, t_model, t_maker) && d.groups.iter().any(|g| groups.contains(g)) {
                out.push(d.device_id.clone());
            }
        }
        if out.is_empty() {
            return Err(not_found(format!(
                "no {t_type} {t_model} by {t_maker} is in the groups {}",
                groups.join(", ")
            )));
        }
        Ok(out)
    }

    pub(super) fn query_upgrade(&self, now: Ms, id: &OperationId) -> Result<OperationInfo, ApiError> {
        self.upgrade(id).map(|t| t.info(now))
    }

    /// A page of the task list. Only the page's tasks are read: no filter is a range of the list, a status
    /// filter alone the status index, a device filter the device's own tasks; the kind filters (type, model,
    /// manufacturer, operation type) walk the tasks without collecting them. The typed page the answer's
    /// written bytes (`list_upgrades_json`) are tested against.
    #[cfg(test)]
    pub(super) fn list_upgrades(&self, now: Ms, q: &QueryUpgradeTaskList) -> OperationPage {
        let (w, total, positions) = self.upgrade_page(q);
        let items = positions.into_iter().filter_map(|i| self.upgrades.get(i)).map(|t| t.info(now)).collect();
        OperationPage::from_items(w.page_no, w.page_size, total, items)
    }

    /// The JSON body of [`Simulator::list_upgrades`]'s page, byte for byte, written from each task's cached
    /// [`ItemJson`] with only the status, counts and stop time serialised per query: building and serialising
    /// 100 `OperationInfo`s cost about 1.3 M instructions a page, most of it escaping the same strings again.
    pub(super) fn list_upgrades_json(&mut self, now: Ms, q: &QueryUpgradeTaskList) -> Vec<u8> {
        let (w, total, positions) = self.upgrade_page(q);
        // The page's own fields come from the serialiser too: an empty page ends in `[]}`, where the items go.
        let shell = OperationPage::from_items(w.page_no, w.page_size, total, Vec::new());
        let shell = serde_json::to_vec(&shell).unwrap_or_default();
        let Some(open) = shell.strip_suffix(b"[]}") else {
            return shell;
        };
        let mut out = Vec::with_capacity(open.len() + positions.len() * 512 + 2);
        out.extend_from_slice(open);
        out.push(b'[');
        for (n, i) in positions.into_iter().enumerate() {
            let Some(task) = self.upgrades.get_mut(i) else { continue };
            if n > 0 {
                out.push(b',');
            }
            let at = task.summary(now);
            match &mut task.listed {
                Some(item) => item.refresh(at),
                None => task.listed = ItemJson::new(task, at).map(Box::new),
            }
            match &task.listed {
                Some(item) => item.write(&mut out),
                // Not reached (the cuts always exist); the slow way gives the same bytes.
                None => serde_json::to_writer(&mut out, &task.info(now)).unwrap_or_default(),
            }
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The window, total and task positions of a task-list page.
    fn upgrade_page(&self, q: &QueryUpgradeTaskList) -> (PageWindow, u64, Vec<usize>) {
        let w = PageWindow::new(q.page_no, q.page_size, UPGRADE_PAGING);
        let status_ok = |i: usize| q.operation_status.as_ref().is_none_or(|st| *st == self.upgrade_status.status(i));
        let (total, positions): (u64, Vec<usize>) = if let Some(device) = &q.device_id {
            let own = self
                .device_position(device.as_str())
                .and_then(|d| self.upgrades_by_device.get(&(d as u32)))
                .map_or(&[][..], Vec::as_slice);
            w.filter(own.iter().map(|i| *i as usize), |i| {
                status_ok(*i) && self.upgrades.get(*i).is_some_and(|t| t.matches_kind(q))
            })
        } else if q.operation_type.is_none()
            && q.device_type.is_none()
            && q.model.is_none()
            && q.manufacturer_name.is_none()
        {
            match &q.operation_status {
                None => w.range(self.upgrades.len() as u64),
                Some(st) => match StatusIndex::slot(st) {
                    Some(slot) => {
                        let members = &self.upgrade_status.members[slot];
                        let total = u64::from(members.total());
                        (total, w.indices(total).filter_map(|k| members.nth(k as u32)).collect())
                    }
                    None => (0, Vec::new()),
                },
            }
        } else {
            w.filter(0..self.upgrades.len(), |i| {
                status_ok(*i) && self.upgrades.get(*i).is_some_and(|t| t.matches_kind(q))
            })
        };
        (w, total, positions)
    }

    /// A page of a task's subtasks: a range of the list without a filter; with a status filter, the total comes
    /// from the timeline and the walk stops once the page is full.
    pub(super) fn list_sub_operations(&self, now: Ms, q: &QuerySubOperations) -> Result<SubOperationPage, ApiError> {
        let task = self.upgrade(&q.operation_id)?;
        let w = PageWindow::new(q.page_no, q.page_size, UPGRADE_PAGING);
        let (total, positions) = match &q.sub_operation_status {
            None => w.range(task.subs.len() as u64),
            Some(want) => {
                let total = task.count_in(want, now);
                (
                    total,
                    w.first_matches(total, task.subs.iter().enumerate(), |(_, s)| s.status(now) == *want, |(i, _)| i),
                )
            }
        };
        let items = positions.into_iter().filter_map(|i| task.subs.get(i)).map(|s| task.sub_info(s, now)).collect();
        Ok(SubOperationPage::from_items(w.page_no, w.page_size, total, items))
    }

    /// Every upgrade task's id and its subtasks' devices, in creation order: the platform's own record, read
    /// without a request, for checks that compare what clients saw with what exists (tests, the soak).
    pub fn upgrade_tasks(&self) -> Vec<(OperationId, Vec<DeviceId>)> {
        self.upgrades.iter().map(|t| (t.id.clone(), t.subs.iter().map(|s| s.device_id.clone()).collect())).collect()
    }

    /// The ids of an upgrade task's subtasks in listing order, read without a request; `None` for an unknown task.
    pub fn sub_operation_ids(&self, id: &OperationId) -> Option<Vec<SubOperationId>> {
        self.upgrade(id).ok().map(|t| t.subs.iter().map(|s| s.id.clone()).collect())
    }

    fn upgrade(&self, id: &OperationId) -> Result<&UpgradeTask, ApiError> {
        self.upgrade_index
            .get(id)
            .and_then(|i| self.upgrades.get(*i))
            .ok_or_else(|| ApiError::new(ErrorCode::TaskNotFound, format!("upgrade task {id} does not exist")))
    }
}

fn package_kind(p: &CategoryInfo) -> (&str, &str, &str) {
    (
        p.device_type.as_deref().unwrap_or_default(),
        p.model.as_deref().unwrap_or_default(),
        p.manufacturer_name.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(attempts: Vec<Attempt>, end: Ms, failure: Option<Cause>) -> SubTask {
        let Ok(id) = SubOperationId::new("s") else { unreachable!("valid id") };
        let Ok(device_id) = DeviceId::new("d") else { unreachable!("valid id") };
        SubTask { id, device_id, source_version: "V1".into(), waiting_for: "waiting", attempts, end, failure }
    }

    #[test]
    fn a_successful_attempt_walks_wait_processing_success() {
        let mut rng = Rng::new(5);
        let (attempts, end, failure) = plan(&mut rng, 1_000, 1, 0.0, None);
        assert!(failure.is_none());
        let s = sub(attempts.clone(), end, failure);
        assert_eq!(s.state(999, "V2").status, SubOperationStatus::Wait);
        assert_eq!(s.state(1_000, "V2").status, SubOperationStatus::Processing);
        assert_eq!(s.state(1_000, "V2").detail, "downloading the package");
        let downloaded = attempts[0].downloaded.unwrap_or(0);
        assert_eq!(s.state(downloaded, "V2").detail, "installing the package");
        assert_eq!(s.state(end - 1, "V2").status, SubOperationStatus::Processing);
        let done = s.state(end, "V2");
        assert_eq!(done.status, SubOperationStatus::Success);
        assert_eq!(done.upgraded, Some(end));
        assert_eq!(done.stopped, Some(end));
        assert_eq!(done.started, Some(1_000));
    }

    #[test]
    fn retries_repeat_failures_until_the_budget_is_spent() {
        let mut rng = Rng::new(5);
        let (attempts, end, failure) = plan(&mut rng, 0, 4, 1.0, None);
        assert_eq!(attempts.len(), 4);
        assert!(failure.is_some());
        for pair in attempts.windows(2) {
            assert_eq!(pair[1].start, pair[0].end + RETRY_DELAY);
        }
        let s = sub(attempts.clone(), end, failure);
        let between = attempts[0].end;
        assert_eq!(s.state(between, "V2").status, SubOperationStatus::Processing);
        assert!(s.state(between, "V2").detail.starts_with("retrying after: "));
        let done = s.state(end, "V2");
        assert_eq!(done.status, SubOperationStatus::Fail);
        assert!(done.detail.ends_with("(after 4 attempts)"), "{}", done.detail);
    }

    #[test]
    fn a_custom_window_cuts_work_short_with_a_timeout() {
        let mut rng = Rng::new(5);
        // Nothing finishes within 10 seconds: the window's end turns the attempt into a timeout.
        let (attempts, end, failure) = plan(&mut rng, 0, 1, 0.0, Some(10_000));
        assert_eq!(end, 10_000);
        assert_eq!(failure, Some(Cause::WindowEnded));
        assert_eq!(attempts.len(), 1);
        let s = sub(attempts, end, failure);
        assert!(s.state(end, "V2").timed_out);
        // A device that would start after the window never starts.
        let (attempts, end, failure) = plan(&mut rng, 20_000, 3, 0.0, Some(10_000));
        assert!(attempts.is_empty());
        assert_eq!((end, failure), (10_000, Some(Cause::NeverStarted)));
        let s = sub(attempts, end, failure);
        assert_eq!(s.state(9_999, "V2").status, SubOperationStatus::Wait);
        assert_eq!(s.state(10_000, "V2").status, SubOperationStatus::Fail);
    }
}
