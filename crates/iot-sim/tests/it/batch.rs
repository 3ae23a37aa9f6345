//! Batch tasks: DeviceCmd creation, counters over simulated time, detail filters and paging.

use std::collections::BTreeSet;

use iot_model::{
    AppId, AppSecret, BatchSelect, BatchTaskInfo, BatchTaskRequest, BatchTaskStatus, BatchTaskType, Command,
    DeviceCmdParam, DeviceCmdType, DeviceId, JsonMap, Tag, TaskDetail, TaskDetailStatus, TaskId,
};
use iot_proto::{CreateBatchTask, QueryBatchTask, QueryTaskDetails};
use iot_sim::sim::{AppConfig, SimConfig};

use crate::support::{Harness, code};

fn param(p: DeviceCmdParam) -> JsonMap<String, serde_json::Value> {
    match serde_json::to_value(p).unwrap() {
        serde_json::Value::Object(m) => m,
        other => panic!("{other}"),
    }
}

fn command() -> Command {
    Command::new("Meter".into(), "REBOOT".into())
}

fn create(h: &mut Harness, p: DeviceCmdParam, timeout_minutes: u32) -> TaskId {
    let body =
        BatchTaskRequest::new(h.app.clone(), timeout_minutes, "reboot".into(), BatchTaskType::DeviceCmd, param(p))
            .with_tags(vec![Tag::new("site".into(), "lab".into())]);
    h.call(&CreateBatchTask::new(body)).unwrap().task_id
}

fn details(h: &mut Harness, id: &TaskId, status: Option<TaskDetailStatus>, page_size: u32) -> Vec<TaskDetail> {
    let mut out = Vec::new();
    for page_no in 0.. {
        let mut q = QueryTaskDetails::new(id.clone()).with_page_no(page_no).with_page_size(page_size);
        q.status = status.clone();
        let page = h.call(&q).unwrap();
        if page.task_details.is_empty() {
            assert_eq!(page.total_count, Some(out.len() as u64));
            break;
        }
        out.extend(page.task_details);
        assert!(page_no < 1000);
    }
    out
}

fn check_counters(h: &mut Harness, id: &TaskId) -> BatchTaskInfo {
    let info = h.call(&QueryBatchTask::new(id.clone())).unwrap();
    let total = info.total_cnt.unwrap();
    let (s, f, t) = (info.success_cnt.unwrap(), info.fail_cnt.unwrap(), info.timeout_cnt.unwrap());
    assert_eq!(info.complete_cnt, Some(s + f + t));
    assert!(info.expired_cnt.unwrap() <= t);
    assert_eq!(info.progress, Some(((s + f + t) * 1000 / total) as u32));
    assert_eq!(info.success_rate, Some((s * 1000 / total) as u32));
    let all = details(h, id, None, 250);
    assert_eq!(all.len() as u64, total);
    let count = |st: TaskDetailStatus| all.iter().filter(|d| d.status == Some(st.clone())).count() as u64;
    assert_eq!(
        (count(TaskDetailStatus::Success), count(TaskDetailStatus::Fail), count(TaskDetailStatus::Timeout)),
        (s, f, t)
    );
    let pending = count(TaskDetailStatus::Pending);
    let expected = if s + f + t == total {
        if t > 0 { BatchTaskStatus::Timeout } else { BatchTaskStatus::Complete }
    } else if pending == total {
        BatchTaskStatus::Pending
    } else {
        BatchTaskStatus::Running
    };
    assert_eq!(info.status, Some(expected));
    info
}

#[test]
fn a_broadcast_command_runs_to_completion_with_consistent_counters() {
    let mut h = Harness::ready();
    let id = create(&mut h, DeviceCmdParam::new(DeviceCmdType::Broadcast, command()), 10);
    let first = check_counters(&mut h, &id);
    assert_eq!(first.status, Some(BatchTaskStatus::Pending));
    assert_eq!(first.total_cnt, Some(300));
    assert_eq!(first.task_type, Some(BatchTaskType::DeviceCmd));
    assert_eq!(first.timeout, Some(10));
    assert!(first.tags.is_none(), "tags only with select=tag");
    let mut statuses = BTreeSet::new();
    for _ in 0..11 {
        h.advance(60);
        statuses.insert(check_counters(&mut h, &id).status.unwrap().as_str().to_owned());
    }
    assert!(statuses.contains("Running"), "{statuses:?}");
    let last = check_counters(&mut h, &id);
    // With a 10% failure rate over 300 devices some commands go unanswered, so the deadline ends the task.
    assert_eq!(last.status, Some(BatchTaskStatus::Timeout));
    assert!(last.success_cnt.unwrap() > 240 && last.fail_cnt.unwrap() > 0 && last.expired_cnt.unwrap() > 0);
    let tagged = h.call(&QueryBatchTask::new(id.clone()).with_select(BatchSelect::Tag)).unwrap();
    assert_eq!(tagged.tags, Some(vec![Tag::new("site".into(), "lab".into())]));

    for d in details(&mut h, &id, Some(TaskDetailStatus::Fail), 100) {
        let err: serde_json::Value = serde_json::from_str(d.error.as_deref().unwrap()).unwrap();
        assert!(err["error_code"].is_string() && err["error_desc"].is_string());
    }
    for d in details(&mut h, &id, Some(TaskDetailStatus::Success), 100) {
        let out: serde_json::Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
        assert_eq!(out["method"], "REBOOT");
    }
}

#[test]
fn without_failures_a_task_completes_before_its_deadline() {
    let mut h = Harness::ready_with(SimConfig::default().with_rate_limit(None).with_failure_rate(0.0));
    let p = DeviceCmdParam::new(DeviceCmdType::DeviceType, command()).with_device_type("SmokeDetector".into());
    let id = create(&mut h, p, 10);
    h.advance(120);
    let info = check_counters(&mut h, &id);
    assert_eq!(info.status, Some(BatchTaskStatus::Complete));
    assert_eq!(info.success_rate, Some(1000));
    let detectors = h.sim.devices().iter().filter(|d| d.device_type == "SmokeDetector").count() as u64;
    assert_eq!(info.total_cnt, Some(detectors));
}

#[test]
fn selections_pick_the_right_devices() {
    let mut h = Harness::ready();
    let fleet = h.sim.devices().to_vec();
    let ghost = DeviceId::new("ghost").unwrap();
    let list = vec![fleet[0].device_id.clone(), fleet[1].device_id.clone(), fleet[0].device_id.clone(), ghost.clone()];
    let id = create(&mut h, DeviceCmdParam::new(DeviceCmdType::DeviceList, command()).with_device_list(list), 10);
    h.advance(1);
    let all = details(&mut h, &id, None, 25);
    let devices: Vec<&str> = all.iter().map(|d| d.param.as_ref().unwrap()["deviceId"].as_str().unwrap()).collect();
    assert_eq!(devices, [fleet[0].device_id.as_str(), fleet[1].device_id.as_str(), "ghost"]);
    let ghost_detail = h.call(&QueryTaskDetails::new(id.clone()).with_device_id(ghost)).unwrap();
    assert_eq!(ghost_detail.task_details[0].status, Some(TaskDetailStatus::Fail));

    let north = fleet.iter().filter(|d| d.groups.iter().any(|g| g == "north")).count() as u64;
    let p = DeviceCmdParam::new(DeviceCmdType::GroupList, command()).with_group_list(vec!["north".into()]);
    let id = create(&mut h, p, 10);
    assert_eq!(h.call(&QueryBatchTask::new(id)).unwrap().total_cnt, Some(north));

    let acme = fleet.iter().filter(|d| d.manufacturer_key() == "acme").count() as u64;
    let p = DeviceCmdParam::new(DeviceCmdType::DeviceType, command())
        .with_device_type("WaterMeter".into())
        .with_manufacturer_id("acme".into())
        .with_model("WM-200".into());
    let id = create(&mut h, p, 10);
    assert_eq!(h.call(&QueryBatchTask::new(id)).unwrap().total_cnt, Some(acme));

    let unsupported = DeviceCmdParam::new(DeviceCmdType::DeviceArea, command()).with_device_location("roof".into());
    let body = BatchTaskRequest::new(h.app.clone(), 10, "x".into(), BatchTaskType::DeviceCmd, param(unsupported));
    assert_eq!(code(h.call(&CreateBatchTask::new(body))), "100022");
    let nothing = DeviceCmdParam::new(DeviceCmdType::DeviceType, command()).with_device_type("Toaster".into());
    let body = BatchTaskRequest::new(h.app.clone(), 10, "x".into(), BatchTaskType::DeviceCmd, param(nothing));
    assert_eq!(code(h.call(&CreateBatchTask::new(body))), "100022");
    let reg = BatchTaskRequest::new(h.app.clone(), 10, "x".into(), BatchTaskType::DeviceReg, JsonMap::new());
    assert_eq!(code(h.call(&CreateBatchTask::new(reg))), "100022");
}

#[test]
fn details_filter_and_page() {
    let mut h = Harness::ready();
    let id = create(&mut h, DeviceCmdParam::new(DeviceCmdType::Broadcast, command()), 10);
    h.advance(45);
    let all = details(&mut h, &id, None, 7);
    assert_eq!(all.len(), 300);
    let commands: BTreeSet<String> =
        all.iter().map(|d| d.param.as_ref().unwrap()["commandId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(commands.len(), 300, "every subtask once, each with its own command id");
    let mut by_status = 0;
    for st in [
        TaskDetailStatus::Pending,
        TaskDetailStatus::WaitResult,
        TaskDetailStatus::Success,
        TaskDetailStatus::Fail,
        TaskDetailStatus::Timeout,
    ] {
        let some = details(&mut h, &id, Some(st.clone()), 250);
        assert!(some.iter().all(|d| d.status == Some(st.clone())));
        by_status += some.len();
    }
    assert_eq!(by_status, 300);
    let default = h.call(&QueryTaskDetails::new(id.clone())).unwrap();
    assert_eq!((default.page_no, default.page_size, default.task_details.len()), (Some(0), Some(25), 25));
    let one = commands.iter().next().unwrap().clone();
    let by_command =
        h.call(&QueryTaskDetails::new(id.clone()).with_command_id(one.as_str().try_into().unwrap())).unwrap();
    assert_eq!(by_command.total_count, Some(1));
    let registration = h.call(&QueryTaskDetails::new(id.clone()).with_index(0)).unwrap();
    assert_eq!(registration.total_count, Some(0));
    let raw = h.raw_authed("GET", &format!("/iocm/app/batchtask/v1.1.0/taskDetails?taskId={id}&pageSize=251"), "");
    assert_eq!(crate::support::raw_code(&raw), (400, "100022".to_owned()));
}

#[test]
fn apps_only_see_and_act_for_themselves() {
    let config = SimConfig::default()
        .with_rate_limit(None)
        .with_app(AppConfig::new(AppId::new("other-app").unwrap(), AppSecret::new("pw")));
    let mut h = Harness::ready_with(config);
    let id = create(&mut h, DeviceCmdParam::new(DeviceCmdType::Broadcast, command()), 10);
    let p = param(DeviceCmdParam::new(DeviceCmdType::Broadcast, command()));
    let other = AppId::new("other-app").unwrap();
    let body = BatchTaskRequest::new(other.clone(), 10, "x".into(), BatchTaskType::DeviceCmd, p.clone());
    let err = h.call(&CreateBatchTask::new(body)).unwrap_err();
    assert_eq!(err.api().unwrap().status, 403);
    assert_eq!(code::<()>(Err(err)), "100217");
    let body = BatchTaskRequest::new(AppId::new("nobody").unwrap(), 10, "x".into(), BatchTaskType::DeviceCmd, p);
    assert_eq!(code(h.call(&CreateBatchTask::new(body))), "100203");
    assert_eq!(code(h.call(&QueryBatchTask::new(id.clone()).with_app_id(other.clone()))), "100217");
    assert_eq!(code(h.call(&QueryTaskDetails::new(id.clone()).with_app_id(AppId::new("nobody").unwrap()))), "100203");
    assert!(h.call(&QueryBatchTask::new(id.clone()).with_app_id(h.app.clone())).is_ok());
    assert_eq!(code(h.call(&QueryBatchTask::new(TaskId::new("missing").unwrap()))), "105005");
    // The other app cannot see this app's task.
    let mut o = Harness { app: other, secret: AppSecret::new("pw"), ..h };
    o.login().unwrap();
    assert_eq!(code(o.call(&QueryBatchTask::new(id.clone()))), "105005");
    assert_eq!(code(o.call(&QueryTaskDetails::new(id))), "105005");
}
