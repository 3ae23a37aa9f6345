//! The scenarios: each starts its own platform, runs one driver against it, and asserts what the user sees and
//! what the platform received. Every driver must pass every scenario unchanged.

use std::collections::BTreeSet;
use std::time::Duration;

use iot_model::{
    AppId, BatchTaskRequest, CategoryInfo, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, DeviceId, FileId,
    FileType, OperateDevices, OperationId, SubOperationInfo,
};
use iot_proto::ratelimit::RateLimit;
use iot_proto::retry::RetryPolicy;
use iot_proto::server::Router;
use iot_proto::session::SessionState;
use iot_proto::{
    CreateBatchTask, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, EndpointId, ErrorCode,
    QueryBatchTask, QueryPackage, QueryPackageList, QuerySubOperations, QueryTaskDetails, QueryUpgradeTask,
    QueryUpgradeTaskList,
};
use iot_sim::sim::{DEFAULT_APP_ID, SimConfig};

use crate::harness::{BATCH_TASKS, LOGIN, LOGOUT, Platform, REFRESH, Scripted};
use crate::{Driver, ErrorView, Settings};

/// The simulator's access-token lifetime plus a second: advancing simulated time by this expires the token a
/// client holds, while its refresh token (a day) stays valid.
const PAST_TOKEN_LIFETIME: Duration = Duration::from_secs(3601);

/// The paths of the calls the platform received since the last take; their endpoints are added to `seen`.
fn take_noting(platform: &Platform, seen: &mut BTreeSet<EndpointId>) -> Vec<String> {
    let router = Router::new();
    let recorded = platform.sim().take_recorded();
    seen.extend(recorded.iter().filter_map(|r| router.route(r.method(), r.uri().path()).ok()).map(|m| m.endpoint));
    recorded.iter().map(|r| r.uri().path().to_owned()).collect()
}

fn count(paths: &[String], path: &str) -> usize {
    paths.iter().filter(|p| *p == path).count()
}

/// The devices of the package kind with the most devices, and that kind's newest package of `file_type`.
fn biggest_kind(platform: &Platform, file_type: FileType) -> (Vec<DeviceId>, CategoryInfo) {
    platform.sim().with_sim(|s| {
        let mut best: Option<(Vec<DeviceId>, CategoryInfo)> = None;
        for package in s.packages().iter().filter(|p| p.file_type.as_ref() == Some(&file_type)) {
            let devices: Vec<DeviceId> = s.devices_for(package).map(|d| d.device_id.clone()).collect();
            if best.as_ref().is_none_or(|(b, _)| devices.len() >= b.len()) {
                best = Some((devices, package.clone()));
            }
        }
        best.unwrap()
    })
}

fn reboot_task(devices: Vec<DeviceId>) -> CreateBatchTask {
    let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Maintenance".into(), "REBOOT".into()))
        .with_device_list(devices);
    CreateBatchTask::new(BatchTaskRequest::device_cmd(AppId::new(DEFAULT_APP_ID).unwrap(), 30, "conformance", param))
}

/// Every endpoint (login, refresh, logout and the API calls) round-trips against the simulator, and the
/// platform holds what they did.
pub fn every_endpoint<D: Driver>() {
    let platform = Platform::start(SimConfig::default());
    let client = D::connect(platform.base_url(), &Settings::default());
    let mut seen = BTreeSet::new();

    assert_eq!(client.session_state(), SessionState::NoToken);
    client.login().unwrap();
    assert_eq!(client.session_state(), SessionState::Valid);
    assert_eq!(take_noting(&platform, &mut seen), vec![LOGIN.to_owned()]);

    let firmware: Vec<CategoryInfo> = platform.sim().with_sim(|s| {
        s.packages().iter().filter(|p| p.file_type == Some(FileType::FirmwarePackage)).cloned().collect()
    });
    let list =
        client.send(&QueryPackageList::new().with_file_type(FileType::FirmwarePackage).with_page_size(100)).unwrap();
    assert_eq!(list.data, firmware);

    let (fw_devices, fw_package) = biggest_kind(&platform, FileType::FirmwarePackage);
    let (sw_devices, sw_package) = biggest_kind(&platform, FileType::SoftwarePackage);
    let doomed = firmware.iter().find(|p| p.file_id != fw_package.file_id).unwrap().clone();
    assert_eq!(client.send(&QueryPackage::new(doomed.file_id.clone())).unwrap(), doomed);
    client.send(&DeletePackage::new(doomed.file_id.clone())).unwrap();
    assert!(platform.sim().with_sim(|s| s.packages().iter().all(|p| p.file_id != doomed.file_id)));

    let fw_targets: Vec<DeviceId> = fw_devices.into_iter().take(6).collect();
    let fw_op = client
        .send(&CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(
            fw_package.file_id.clone(),
            OperateDevices::new().with_devices(fw_targets.clone()),
        )))
        .unwrap()
        .operation_id;
    let sw_op = client
        .send(&CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(
            sw_package.file_id.clone(),
            OperateDevices::new().with_devices(sw_devices.into_iter().take(3).collect()),
        )))
        .unwrap()
        .operation_id;
    assert_eq!(platform.sim().with_sim(|s| s.task_counts()), (2, 0));
    assert_eq!(client.send(&QueryUpgradeTask::new(fw_op.clone())).unwrap().operation_id, fw_op);
    let tasks = client.send(&QueryUpgradeTaskList::new()).unwrap();
    let ids: Vec<_> = tasks.data.iter().map(|t| t.operation_id.clone()).collect();
    assert_eq!(ids, vec![fw_op.clone(), sw_op]);
    let subs = client.send(&QuerySubOperations::new(fw_op).with_page_size(100)).unwrap();
    let sub_devices: Vec<DeviceId> = subs.data.iter().filter_map(|s| s.device_id.clone()).collect();
    assert_eq!(sub_devices, fw_targets);

    let batch_targets: Vec<DeviceId> = fw_targets.into_iter().take(4).collect();
    let task_id = client.send(&reboot_task(batch_targets)).unwrap().task_id;
    assert_eq!(platform.sim().with_sim(|s| s.task_counts()), (2, 1));
    assert_eq!(client.send(&QueryBatchTask::new(task_id.clone())).unwrap().total_cnt, Some(4));
    assert_eq!(client.send(&QueryTaskDetails::new(task_id)).unwrap().total_count, Some(4));

    let paths = take_noting(&platform, &mut seen);
    assert_eq!((count(&paths, LOGIN), paths.len()), (0, 11), "{paths:?}");
    client.renew_token().unwrap();
    assert_eq!(take_noting(&platform, &mut seen), vec![REFRESH.to_owned()]);
    client.logout().unwrap();
    assert_eq!(client.session_state(), SessionState::NoToken);
    assert_eq!(take_noting(&platform, &mut seen), vec![LOGOUT.to_owned()]);
    // A new endpoint in the spec fails here until this scenario calls it.
    let missing: Vec<_> = EndpointId::ALL.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "the scenario calls no {missing:?}");
}

/// Creates a firmware upgrade task over up to 40 devices of one kind; its subtasks are a listing of several
/// pages whose expected order (the targets') is known.
fn big_task<D: Driver>(platform: &Platform, client: &D) -> (OperationId, Vec<DeviceId>) {
    let (devices, package) = biggest_kind(platform, FileType::FirmwarePackage);
    let targets: Vec<DeviceId> = devices.into_iter().take(40).collect();
    assert!(targets.len() > 14, "the biggest kind should fill several pages of 7");
    let task = CreateUpgradeTask::new(package.file_id, OperateDevices::new().with_devices(targets.clone()));
    (client.send(&CreateFirmwareUpgradeTask::new(task)).unwrap().operation_id, targets)
}

fn device_ids(subs: impl IntoIterator<Item = SubOperationInfo>) -> Vec<DeviceId> {
    subs.into_iter().map(|s| s.device_id.unwrap()).collect()
}

/// A walk across several pages yields exactly the simulator's list, in order, pages and items alike.
pub fn walk_equals_list<D: Driver>() {
    let platform = Platform::start(SimConfig::default());
    let client = D::connect(platform.base_url(), &Settings::default());
    let (operation, targets) = big_task(&platform, &client);
    let query = || QuerySubOperations::new(operation.clone()).with_page_size(7);

    let items = client.items(query()).into_iter().map(Result::unwrap);
    assert_eq!(device_ids(items), targets);
    let pages = client.pages_with(query(), &mut |_| {});
    // Full pages, then a short one (or an empty one when the count divides evenly).
    assert_eq!(pages.len(), targets.len() / 7 + 1);
    assert_eq!(device_ids(pages.into_iter().flat_map(|p| p.unwrap().data)), targets);
}

/// The platform stops accepting the access token in the middle of a walk (simulated time moves past its
/// lifetime): the next page's call is refused once, the driver refreshes, and the walk completes unchanged.
pub fn token_expires_midway<D: Driver>() {
    let platform = Platform::start(SimConfig::default());
    let client = D::connect(platform.base_url(), &Settings::default());
    let (operation, targets) = big_task(&platform, &client);

    let query = QuerySubOperations::new(operation).with_page_size(5);
    let pages = client.pages_with(query, &mut |seen| {
        if seen == 2 {
            platform.sim().advance(PAST_TOKEN_LIFETIME);
        }
    });
    assert_eq!(device_ids(pages.into_iter().flat_map(|p| p.unwrap().data)), targets);
    let paths = platform.take_paths();
    assert_eq!((count(&paths, LOGIN), count(&paths, REFRESH)), (1, 1), "{paths:?}");
    assert_eq!(client.session_state(), SessionState::Valid);
}

/// The simulator's rate limit (3 calls per 300 ms) throttles a burst; every call is retried after the
/// throttling answer and succeeds.
pub fn throttling_is_retried<D: Driver>() {
    let platform = Platform::start(SimConfig::default().with_rate_limit(Some((3, Duration::from_millis(300)))));
    let retry = RetryPolicy::new()
        .with_max_attempts(12)
        .with_throttling(Duration::from_millis(100), Duration::from_millis(500));
    // The client's own limit is off so that the platform's is what the burst meets.
    let settings = Settings { retry, rate_limit: RateLimit::disabled(), ..Settings::default() };
    let client = D::connect(platform.base_url(), &settings);
    for _ in 0..8 {
        client.send(&QueryUpgradeTaskList::new()).unwrap();
    }
    let paths = platform.take_paths();
    let lists = paths.iter().filter(|p| p.ends_with("/operations")).count();
    assert!(lists > 8, "some calls should have been throttled and resent: {paths:?}");
}

/// The platform's error answer reaches the user as the same `api()` code, neither retryable nor in doubt.
pub fn error_answer<D: Driver>() {
    let platform = Platform::start(SimConfig::default());
    let client = D::connect(platform.base_url(), &Settings::default());
    let missing = FileId::new("no-such-package").unwrap();
    let err = client.send(&QueryPackage::new(missing)).unwrap_err();
    let not_found = ErrorCode::DeviceOrPackageNotFound.as_str().to_owned();
    assert_eq!(err.api_code(), Some((404, not_found)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!err.outcome_unknown());
}

/// A create whose answer is lost after the platform acted (a gateway's 502 page) ends as an unknown outcome,
/// and is not sent again: the platform holds exactly one task.
pub fn create_in_doubt<D: Driver>() {
    let platform = Scripted::start(SimConfig::default(), BATCH_TASKS);
    let client = D::connect(platform.base_url(), &Settings::default());
    let devices: Vec<DeviceId> =
        platform.with_sim(|s| s.devices().iter().take(3).map(|d| d.device_id.clone()).collect());
    let err = client.send(&reboot_task(devices)).unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert!(err.platform_may_have_acted());
    assert!(!err.is_retryable());
    assert_eq!(err.api_code().map(|(status, _)| status), Some(502));
    assert_eq!(platform.with_sim(|s| s.task_counts()), (0, 1));
}
