//! Batch tasks: DeviceCmd tasks that deliver one command to many devices, each subtask's future fixed at
//! creation, and the views the queries answer.

use std::collections::BTreeSet;
use std::sync::Arc;

use iot_model::{
    AppId, BatchSelect, BatchTaskInfo, BatchTaskRequest, BatchTaskStatus, BatchTaskType, CommandId,
    CreateBatchTaskResponse, DeviceCmdParam, DeviceCmdType, DeviceId, Json, JsonMap, Tag, TaskDetail, TaskDetailPage,
    TaskDetailStatus, TaskId,
};
use iot_proto::{ApiError, BATCH_PAGING, ErrorCode, Page, QueryBatchTask, QueryTaskDetails};

use super::paging::PageWindow;
use super::rng::Rng;
use super::{Ms, Simulator, codes, timestamp};

/// Label of the streams batch subtask futures are drawn from.
const BATCH_STREAM: u64 = 0xBA7C_0001;
/// Delay before the first command of a task is sent.
const FIRST_SEND: Ms = 500;
/// Delay between two commands of one task (the platform sends about twenty a second).
const SEND_INTERVAL: Ms = 50;
/// Shortest and longest time a device takes to answer a command.
const ANSWER: (Ms, Ms) = (2_000, 90_000);

/// How a device answers a command.
#[derive(Clone, Debug)]
enum Answer {
    /// The command's output, one string shared by every subtask of the task.
    Output(Arc<str>),
    Error(&'static str, &'static str),
}

/// One device's command within a batch task.
#[derive(Clone, Debug)]
struct CmdSub {
    device_id: DeviceId,
    command_id: CommandId,
    /// When the command reaches the device; `None` when the device stays offline.
    sent: Option<Ms>,
    /// When and how the device answers; `None` when it never does.
    answer: Option<(Ms, Answer)>,
}

impl CmdSub {
    /// The status at `now`, and whether a timeout is an expiry (the command was never sent).
    fn status(&self, now: Ms, deadline: Ms) -> (TaskDetailStatus, bool) {
        if let Some((at, answer)) = &self.answer
            && *at < deadline
            && now >= *at
        {
            let status = match answer {
                Answer::Output(_) => TaskDetailStatus::Success,
                Answer::Error(..) => TaskDetailStatus::Fail,
            };
            return (status, false);
        }
        if now >= deadline {
            return (TaskDetailStatus::Timeout, self.sent.is_none_or(|s| s >= deadline));
        }
        match self.sent {
            Some(s) if now >= s => (TaskDetailStatus::WaitResult, false),
            _ => (TaskDetailStatus::Pending, false),
        }
    }

    fn detail(&self, now: Ms, deadline: Ms) -> TaskDetail {
        let (status, expired) = self.status(now, deadline);
        let mut param = JsonMap::new();
        param.insert("deviceId".to_owned(), Json::String(self.device_id.to_string()));
        param.insert("commandId".to_owned(), Json::String(self.command_id.to_string()));
        let mut detail = TaskDetail::new().with_status(status.clone()).with_param(param);
        match (status, &self.answer) {
            (TaskDetailStatus::Success, Some((_, Answer::Output(out)))) => detail.output = Some(out.to_string()),
            (TaskDetailStatus::Fail, Some((_, Answer::Error(code, desc)))) => {
                detail.error = Some(error_text(code, desc))
            }
            (TaskDetailStatus::Timeout, _) if expired => {
                detail.error =
                    Some(error_text(codes::COMMAND_EXPIRED, "the command expired before the device came online"))
            }
            (TaskDetailStatus::Timeout, _) => {
                detail.error = Some(error_text(codes::NO_ANSWER, "the device did not answer before the task timed out"))
            }
            _ => {}
        }
        detail
    }
}

/// The platform's error body as a string, which TaskDetail carries in `error`.
fn error_text(code: &str, desc: &str) -> String {
    let body = iot_model::ErrorBody::new().with_error_code(code.to_owned()).with_error_desc(desc.to_owned());
    serde_json::to_string(&body).unwrap_or_default()
}

/// The times a batch task's subtasks change state, each list sorted, fixed at creation: the counters at any
/// time are binary searches instead of a pass over every subtask.
#[derive(Clone, Debug, Default)]
struct Timeline {
    /// When each command that is ever sent is sent.
    sent: Vec<Ms>,
    /// When each command answered with an output before the deadline is answered.
    successes: Vec<Ms>,
    /// When each command answered with an error before the deadline is answered.
    failures: Vec<Ms>,
    /// Commands never sent before the deadline: they count as expired once it passes.
    expired: u64,
}

impl Timeline {
    fn new(subs: &[CmdSub], deadline: Ms) -> Self {
        let mut t = Self::default();
        for sub in subs {
            if let Some(s) = sub.sent {
                t.sent.push(s);
            }
            match &sub.answer {
                Some((at, Answer::Output(_))) if *at < deadline => t.successes.push(*at),
                Some((at, Answer::Error(..))) if *at < deadline => t.failures.push(*at),
                _ => {}
            }
            if sub.sent.is_none_or(|s| s >= deadline) {
                t.expired += 1;
            }
        }
        for list in [&mut t.sent, &mut t.successes, &mut t.failures] {
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

/// A batch task's counters at one moment.
struct Counts {
    pending: u64,
    wait_result: u64,
    success: u64,
    fail: u64,
    timeout: u64,
    expired: u64,
}

/// A batch task.
#[derive(Clone, Debug)]
pub(crate) struct BatchTask {
    id: TaskId,
    app_id: AppId,
    name: String,
    task_type: BatchTaskType,
    created: Ms,
    timeout_minutes: u32,
    deadline: Ms,
    param: JsonMap<String, Json>,
    tags: Option<Vec<Tag>>,
    subs: Vec<CmdSub>,
    timeline: Timeline,
}

impl BatchTask {
    pub(crate) fn subtask_count(&self) -> usize {
        self.subs.len()
    }

    /// The counters at `now`, from the timeline: an answer before the deadline settles a subtask; at the deadline
    /// every other one times out; before it, a sent command waits for its result and an unsent one is pending.
    fn counts(&self, now: Ms) -> Counts {
        let t = &self.timeline;
        let total = self.subs.len() as u64;
        let success = count_by(&t.successes, now);
        let fail = count_by(&t.failures, now);
        if now >= self.deadline {
            return Counts {
                pending: 0,
                wait_result: 0,
                success,
                fail,
                timeout: total - success - fail,
                expired: t.expired,
            };
        }
        // Every answered command was sent no later than its answer, so it is among the sent ones.
        let sent = count_by(&t.sent, now);
        Counts { pending: total - sent, wait_result: sent - success - fail, success, fail, timeout: 0, expired: 0 }
    }

    fn count_in(&self, status: &TaskDetailStatus, now: Ms) -> u64 {
        let c = self.counts(now);
        match status {
            TaskDetailStatus::Pending => c.pending,
            TaskDetailStatus::WaitResult => c.wait_result,
            TaskDetailStatus::Success => c.success,
            TaskDetailStatus::Fail => c.fail,
            TaskDetailStatus::Timeout => c.timeout,
            _ => 0,
        }
    }

    fn info(&self, now: Ms, with_tags: bool) -> BatchTaskInfo {
        let Counts { pending, success, fail, timeout, expired, .. } = self.counts(now);
        let total = self.subs.len() as u64;
        let complete = success + fail + timeout;
        let status = if complete == total {
            if timeout > 0 { BatchTaskStatus::Timeout } else { BatchTaskStatus::Complete }
        } else if pending == total {
            BatchTaskStatus::Pending
        } else {
            BatchTaskStatus::Running
        };
        let per_mille = |n: u64| u32::try_from(n * 1000 / total.max(1)).unwrap_or(1000);
        let mut info = BatchTaskInfo::new(self.id.clone())
            .with_app_id(self.app_id.clone())
            .with_task_name(self.name.clone())
            .with_operator(self.app_id.to_string())
            .with_task_from("API".to_owned())
            .with_task_type(self.task_type.clone())
            .with_status(status)
            .with_timeout(self.timeout_minutes)
            .with_progress(per_mille(complete))
            .with_total_cnt(total)
            .with_success_cnt(success)
            .with_fail_cnt(fail)
            .with_timeout_cnt(timeout)
            .with_expired_cnt(expired)
            .with_complete_cnt(complete)
            .with_success_rate(per_mille(success))
            .with_param(self.param.clone());
        info.start_time = timestamp(self.created);
        if with_tags {
            info.tags = Some(self.tags.clone().unwrap_or_default());
        }
        info
    }
}

impl Simulator {
    /// Checks an `appId` named in a batch request: it must be the caller's own app.
    fn check_acting_app(&self, caller: &AppId, named: Option<&AppId>) -> Result<(), ApiError> {
        match named {
            None => Ok(()),
            Some(a) if a == caller => Ok(()),
            Some(a) if self.apps.iter().any(|s| s.config.app_id == *a) => Err(ApiError::new(
                ErrorCode::AppNotAuthorized,
                format!("app {caller} may not act for app {a}; send no appId unless acting for another app"),
            )),
            Some(a) => Err(ApiError::new(ErrorCode::AppNotFound, format!("app {a} does not exist"))),
        }
    }

    /// Creates a batch task; only DeviceCmd tasks selecting by DeviceList, DeviceType, GroupList or Broadcast are
    /// simulated.
    pub(super) fn create_batch(
        &mut self,
        now: Ms,
        caller: &AppId,
        body: BatchTaskRequest,
    ) -> Result<CreateBatchTaskResponse, ApiError> {
        self.check_acting_app(caller, Some(&body.app_id))?;
        let invalid = |desc: String| ApiError::new(ErrorCode::InvalidInput, desc);
        if body.task_type != BatchTaskType::DeviceCmd {
            return Err(invalid(format!("taskType {} is unsupported in simulator", body.task_type)));
        }
        let param: DeviceCmdParam = serde_json::from_value(Json::Object(body.param.clone()))
            .map_err(|e| invalid(format!("param is not a DeviceCmd param: {e}")))?;
        let devices = self.command_targets(&param)?;
        if devices.is_empty() {
            return Err(invalid("no device matches the task's selection".to_owned()));
        }
        let seq = self.next_seq();
        let id = self.fresh_id();
        let id = TaskId::new(id).map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
        let deadline = now + i64::from(body.timeout) * 60_000;
        let output = {
            let mut o = JsonMap::new();
            o.insert("resultCode".to_owned(), Json::String("SUCCESSFUL".to_owned()));
            o.insert("serviceId".to_owned(), Json::String(param.command.service_id.clone()));
            o.insert("method".to_owned(), Json::String(param.command.method.clone()));
            Arc::<str>::from(Json::Object(o).to_string())
        };
        let mut subs = Vec::with_capacity(devices.len());
        for (i, device_id) in devices.into_iter().enumerate() {
            let mut rng = Rng::derive(self.seed, &[BATCH_STREAM, seq, i as u64]);
            let command_id =
                CommandId::new(self.fresh_id()).map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
            let send = now + FIRST_SEND + SEND_INTERVAL * i as i64;
            let answer_at = send + rng.millis(ANSWER.0, ANSWER.1);
            let roll = rng.unit();
            let rate = self.failure_rate;
            let (sent, answer) = if self.device(device_id.as_str()).is_none() {
                (Some(send), Some((send, Answer::Error(codes::NO_SUCH_DEVICE, "the device does not exist"))))
            } else if roll < rate * 0.5 {
                let (code, desc) = if rng.chance(0.5) {
                    (codes::COMMAND_REJECTED, "the device rejected the command")
                } else {
                    (codes::COMMAND_FAILED, "the device failed to execute the command")
                };
                (Some(send), Some((answer_at, Answer::Error(code, desc))))
            } else if roll < rate * 0.8 {
                (Some(send), None)
            } else if roll < rate {
                (None, None)
            } else {
                (Some(send), Some((answer_at, Answer::Output(output.clone()))))
            };
            subs.push(CmdSub { device_id, command_id, sent, answer });
        }
        let timeline = Timeline::new(&subs, deadline);
        self.batch_index.insert(id.clone(), self.batches.len());
        self.batches.push(BatchTask {
            id: id.clone(),
            app_id: caller.clone(),
            name: body.task_name,
            task_type: body.task_type,
            created: now,
            timeout_minutes: body.timeout,
            deadline,
            param: body.param,
            tags: body.tags,
            subs,
            timeline,
        });
        Ok(CreateBatchTaskResponse::new(id))
    }

    /// The devices a DeviceCmd task selects, in the order given (device lists) or fleet order, without duplicates.
    fn command_targets(&self, p: &DeviceCmdParam) -> Result<Vec<DeviceId>, ApiError> {
        let fleet = |pred: &dyn Fn(&super::Device) -> bool| -> Vec<DeviceId> {
            self.devices.iter().filter(|d| pred(d)).map(|d| d.device_id.clone()).collect()
        };
        let selected = match &p.kind {
            DeviceCmdType::DeviceList => {
                // Only a list given by the caller can repeat an id; the fleet's are unique.
                let mut seen = BTreeSet::new();
                let list = p.device_list.as_deref().unwrap_or_default();
                return Ok(list.iter().filter(|id| seen.insert(*id)).cloned().collect());
            }
            DeviceCmdType::DeviceType => {
                let t = p.device_type.as_deref().unwrap_or_default();
                let model = p.model.as_deref().filter(|m| !m.is_empty());
                let maker = p.manufacturer_id.as_deref().filter(|m| !m.is_empty());
                fleet(&|d| {
                    d.device_type == t
                        && model.is_none_or(|m| d.model == m)
                        && maker.is_none_or(|m| d.manufacturer_key() == m)
                })
            }
            DeviceCmdType::GroupList => {
                let groups = p.group_list.as_deref().unwrap_or_default();
                if let Some(g) = groups.iter().find(|g| !self.devices.iter().any(|d| d.groups.contains(g))) {
                    return Err(ApiError::new(ErrorCode::InvalidInput, format!("device group {g} does not exist")));
                }
                fleet(&|d| d.groups.iter().any(|g| groups.contains(g)))
            }
            DeviceCmdType::Broadcast => fleet(&|_| true),
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("DeviceCmd type {other} is unsupported in simulator"),
                ));
            }
        };
        Ok(selected)
    }

    /// Every batch task's id, owning app and name, in creation order: the platform's own record, read without a
    /// request, for checks that compare what clients saw with what exists (tests, the soak).
    pub fn batch_tasks(&self) -> Vec<(TaskId, AppId, String)> {
        self.batches.iter().map(|t| (t.id.clone(), t.app_id.clone(), t.name.clone())).collect()
    }

    /// The command ids of a batch task's subtasks in listing order, read without a request; `None` for an
    /// unknown task.
    pub fn batch_command_ids(&self, id: &TaskId) -> Option<Vec<CommandId>> {
        let task = self.batch_index.get(id).and_then(|i| self.batches.get(*i))?;
        Some(task.subs.iter().map(|s| s.command_id.clone()).collect())
    }

    fn batch(&self, caller: &AppId, id: &TaskId) -> Result<&BatchTask, ApiError> {
        self.batch_index
            .get(id)
            .and_then(|i| self.batches.get(*i))
            .filter(|t| t.app_id == *caller)
            .ok_or_else(|| ApiError::new(ErrorCode::BatchTaskNotFound, format!("batch task {id} does not exist")))
    }

    pub(super) fn query_batch(&self, now: Ms, caller: &AppId, q: &QueryBatchTask) -> Result<BatchTaskInfo, ApiError> {
        self.check_acting_app(caller, q.app_id.as_ref())?;
        let task = self.batch(caller, &q.task_id)?;
        Ok(task.info(now, q.select == Some(BatchSelect::Tag)))
    }

    pub(super) fn query_task_details(
        &self,
        now: Ms,
        caller: &AppId,
        q: &QueryTaskDetails,
    ) -> Result<TaskDetailPage, ApiError> {
        self.check_acting_app(caller, q.app_id.as_ref())?;
        let task = self.batch(caller, &q.task_id)?;
        let w = PageWindow::new(q.page_no, q.page_size, BATCH_PAGING);
        let status_ok = |s: &&CmdSub| q.status.as_ref().is_none_or(|want| *want == s.status(now, task.deadline).0);
        let (total, items): (u64, Vec<&CmdSub>) = if q.index.is_some() || q.node_id.is_some() {
            // Command subtasks have no index or node id, so those filters (meant for registration tasks) match none.
            (0, Vec::new())
        } else if q.device_id.is_some() || q.command_id.is_some() {
            // A task holds each device once and each command id is issued once, so the first match is the only one.
            let found = task
                .subs
                .iter()
                .filter(|s| q.device_id.as_ref().is_none_or(|d| *d == s.device_id))
                .find(|s| q.command_id.as_ref().is_none_or(|c| *c == s.command_id));
            w.filter(found.into_iter(), status_ok)
        } else if let Some(want) = &q.status {
            let total = task.count_in(want, now);
            (total, w.first_matches(total, task.subs.iter(), status_ok, |s| s))
        } else {
            let (total, positions) = w.range(task.subs.len() as u64);
            (total, positions.into_iter().filter_map(|i| task.subs.get(i)).collect())
        };
        Ok(TaskDetailPage::from_items(
            w.page_no,
            w.page_size,
            total,
            items.into_iter().map(|s| s.detail(now, task.deadline)).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(sent: Option<Ms>, answer: Option<(Ms, Answer)>) -> CmdSub {
        let (Ok(device_id), Ok(command_id)) = (DeviceId::new("d"), CommandId::new("c")) else {
            unreachable!("valid ids")
        };
        CmdSub { device_id, command_id, sent, answer }
    }

    #[test]
    fn a_command_walks_pending_wait_result_success() {
        let s = sub(Some(10), Some((20, Answer::Output("ok".into()))));
        assert_eq!(s.status(9, 100).0, TaskDetailStatus::Pending);
        assert_eq!(s.status(10, 100).0, TaskDetailStatus::WaitResult);
        assert_eq!(s.status(20, 100).0, TaskDetailStatus::Success);
        assert_eq!(s.detail(20, 100).output.as_deref(), Some("ok"));
    }

    #[test]
    fn late_answers_and_unsent_commands_time_out_at_the_deadline() {
        let late = sub(Some(10), Some((200, Answer::Output("ok".into()))));
        assert_eq!(late.status(99, 100).0, TaskDetailStatus::WaitResult);
        assert_eq!(late.status(100, 100), (TaskDetailStatus::Timeout, false));
        assert_eq!(late.status(300, 100), (TaskDetailStatus::Timeout, false), "the answer came too late");
        let offline = sub(None, None);
        assert_eq!(offline.status(99, 100).0, TaskDetailStatus::Pending);
        assert_eq!(offline.status(100, 100), (TaskDetailStatus::Timeout, true));
        let error = offline.detail(100, 100).error.unwrap_or_default();
        let parsed: Json = serde_json::from_str(&error).unwrap_or_default();
        assert_eq!(parsed["error_code"], codes::COMMAND_EXPIRED);
    }

    #[test]
    fn failures_carry_an_escaped_error_body() {
        let s = sub(Some(0), Some((5, Answer::Error(codes::COMMAND_FAILED, "boom"))));
        let d = s.detail(5, 100);
        assert_eq!(d.status, Some(TaskDetailStatus::Fail));
        let parsed: Json = serde_json::from_str(d.error.as_deref().unwrap_or_default()).unwrap_or_default();
        assert_eq!(parsed["error_code"], codes::COMMAND_FAILED);
        assert_eq!(parsed["error_desc"], "boom");
    }
}
