//! Upgrade tasks: validation against the fleet, lifecycle over simulated time, counts, filters and paging.

use std::collections::BTreeSet;

use iot_model::{
    CategoryInfo, CreateUpgradeTask, DeviceId, ExecuteType, FileId, FileType, OperateDevices, OperatePolicy,
    OperateType, OperationId, OperationInfo, OperationStatus, SubOperationInfo, SubOperationStatus, Timestamp,
};
use iot_proto::{
    CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, QueryPackage, QueryPackageList,
    QuerySubOperations, QueryUpgradeTask, QueryUpgradeTaskList,
};
use iot_sim::sim::{Device, SimConfig};

use crate::support::{Harness, T0, code};

/// The newest package of `file_type` for devices like `device`.
fn package_for(h: &Harness, device: &Device, file_type: FileType) -> CategoryInfo {
    h.sim
        .packages()
        .iter()
        .rfind(|p| {
            p.file_type.as_ref() == Some(&file_type)
                && p.device_type.as_deref() == Some(device.device_type.as_str())
                && p.model.as_deref() == Some(device.model.as_str())
        })
        .cloned()
        .unwrap()
}

fn devices_of_type(h: &Harness, device_type: &str) -> Vec<Device> {
    h.sim.devices().iter().filter(|d| d.device_type == device_type).cloned().collect()
}

fn firmware_task(h: &mut Harness, devices: &[Device], policy: Option<OperatePolicy>) -> OperationId {
    let pkg = package_for(h, &devices[0], FileType::FirmwarePackage);
    let ids = devices.iter().map(|d| d.device_id.clone()).collect();
    let mut body = CreateUpgradeTask::new(pkg.file_id, OperateDevices::new().with_devices(ids));
    body.policy = policy;
    h.call(&CreateFirmwareUpgradeTask::new(body)).unwrap().operation_id
}

/// Every subtask of a task, walking the pages.
fn all_subs(
    h: &mut Harness,
    id: &OperationId,
    status: Option<SubOperationStatus>,
    page_size: u32,
) -> Vec<SubOperationInfo> {
    let mut out = Vec::new();
    for page_no in 0.. {
        let mut q = QuerySubOperations::new(id.clone()).with_page_no(page_no).with_page_size(page_size);
        q.sub_operation_status = status.clone();
        let page = h.call(&q).unwrap();
        assert_eq!(page.page_no, Some(page_no));
        assert_eq!(page.page_size, Some(page_size));
        if page.data.is_empty() {
            assert_eq!(page.total_count, Some(out.len() as u64));
            break;
        }
        out.extend(page.data);
        assert!(page_no < 1000, "paging does not end");
    }
    out
}

/// Checks that the task's counts agree with its subtasks and with its status.
fn check_consistent(h: &mut Harness, id: &OperationId) -> OperationInfo {
    let info = h.call(&QueryUpgradeTask::new(id.clone())).unwrap();
    let sta = info.sta_result.clone().unwrap();
    let total = sta.total.unwrap();
    assert_eq!(sta.wait + sta.processing + sta.success + sta.fail + sta.stop, total, "{sta:?}");
    assert!(sta.timeout <= sta.fail);
    let subs = all_subs(h, id, None, 100);
    assert_eq!(subs.len() as u64, total);
    let count = |s: SubOperationStatus| subs.iter().filter(|x| x.status == Some(s.clone())).count() as u64;
    assert_eq!(count(SubOperationStatus::Wait), sta.wait);
    assert_eq!(count(SubOperationStatus::Processing), sta.processing);
    assert_eq!(count(SubOperationStatus::Success), sta.success);
    assert_eq!(count(SubOperationStatus::Fail), sta.fail);
    // The documented timeout causes: a download or report that took too long, or a custom window's end.
    let timeouts = subs
        .iter()
        .filter(|x| x.status == Some(SubOperationStatus::Fail))
        .filter(|x| {
            let d = x.detail_info.as_deref().unwrap_or_default();
            d.contains("timed out") || d.contains("in time") || d.contains("window ended")
        })
        .count() as u64;
    assert_eq!(timeouts, sta.timeout);
    let expected = if sta.wait == total {
        OperationStatus::Wait
    } else if sta.success == total {
        OperationStatus::Success
    } else if sta.success + sta.fail == total {
        OperationStatus::Failed
    } else {
        OperationStatus::Processing
    };
    assert_eq!(info.status, Some(expected.clone()));
    assert_eq!(info.stop_time.is_some(), matches!(expected, OperationStatus::Success | OperationStatus::Failed));
    info
}

#[test]
fn a_task_runs_to_a_final_state_and_its_counts_always_add_up() {
    let mut h = Harness::ready();
    let devices = devices_of_type(&h, "WaterMeter");
    let targets: Vec<Device> = devices.iter().take(120).cloned().collect();
    let policy = OperatePolicy::new().with_execute_type(ExecuteType::Now).with_retry_type(true).with_retry_times(2);
    let id = firmware_task(&mut h, &targets, Some(policy));
    let created = check_consistent(&mut h, &id);
    assert_eq!(created.operate_type, Some(OperateType::FirmwareUpgrade));
    assert_eq!(created.sta_result.as_ref().unwrap().total, Some(120));
    let mut seen = BTreeSet::new();
    let mut last = created;
    for _ in 0..240 {
        h.advance(60);
        last = check_consistent(&mut h, &id);
        seen.insert(last.status.clone().unwrap().as_str().to_owned());
        if matches!(last.status, Some(OperationStatus::Success | OperationStatus::Failed)) {
            break;
        }
    }
    assert!(seen.contains("processing"), "{seen:?}");
    assert!(matches!(last.status, Some(OperationStatus::Success | OperationStatus::Failed)), "{last:?}");
    let version = last.extend_para.as_ref().unwrap()["fileVersion"].as_str().unwrap().to_owned();
    // Devices that succeeded now run the new firmware; the others kept theirs.
    for sub in all_subs(&mut h, &id, None, 100) {
        let device = h.sim.device(sub.device_id.as_ref().unwrap().as_str()).unwrap().clone();
        let extend = sub.extend_info.clone().unwrap();
        let source = extend["sourceVersion"].as_str().unwrap();
        assert_eq!(extend["targetVersion"], version.as_str());
        assert!(sub.stop_time.is_some() && sub.start_time.is_some());
        match sub.status {
            Some(SubOperationStatus::Success) => {
                assert_eq!(device.firmware_version, version);
                assert_eq!(extend["curVersion"], version.as_str());
                assert!(extend["upgradeTime"].is_string() && extend["downloadTime"].is_string());
            }
            Some(SubOperationStatus::Fail) => {
                assert_eq!(device.firmware_version, source);
                assert_eq!(extend["curVersion"], source);
                assert!(extend["upgradeTime"].is_null());
                assert!(!sub.detail_info.unwrap().is_empty());
            }
            other => panic!("not final: {other:?}"),
        }
    }
}

#[test]
fn failures_follow_the_failure_rate_and_name_a_cause() {
    let mut h = Harness::ready_with(SimConfig::default().with_rate_limit(None).with_failure_rate(1.0));
    let targets: Vec<Device> = devices_of_type(&h, "SmokeDetector").into_iter().take(30).collect();
    let id = firmware_task(&mut h, &targets, None);
    h.advance(3 * 3600);
    h.login().unwrap();
    let info = check_consistent(&mut h, &id);
    let sta = info.sta_result.unwrap();
    assert_eq!((sta.fail, sta.success), (30, 0));
    assert!(sta.timeout > 0 && sta.timeout < 30, "{sta:?}");
    assert_eq!(info.status, Some(OperationStatus::Failed));
    let causes: BTreeSet<String> =
        all_subs(&mut h, &id, None, 100).into_iter().map(|s| s.detail_info.unwrap()).collect();
    assert!(causes.len() >= 3, "{causes:?}");
    assert!(causes.iter().any(|c| c == "download timed out" || c == "device rejected the package: checksum mismatch"));

    let mut h = Harness::ready_with(SimConfig::default().with_rate_limit(None).with_failure_rate(0.0));
    let targets: Vec<Device> = devices_of_type(&h, "SmokeDetector").into_iter().take(30).collect();
    let id = firmware_task(&mut h, &targets, None);
    h.advance(3000);
    assert_eq!(check_consistent(&mut h, &id).status, Some(OperationStatus::Success));
}

#[test]
fn paging_covers_every_subtask_exactly_once() {
    let mut h = Harness::ready();
    let targets: Vec<Device> = devices_of_type(&h, "WaterMeter").into_iter().take(75).collect();
    let id = firmware_task(&mut h, &targets, None);
    h.advance(90);
    let all = all_subs(&mut h, &id, None, 7);
    let ids: BTreeSet<_> = all.iter().map(|s| s.sub_operation_id.clone()).collect();
    assert_eq!((all.len(), ids.len()), (75, 75));
    let devices: Vec<DeviceId> = all.iter().map(|s| s.device_id.clone().unwrap()).collect();
    let wanted: Vec<DeviceId> = targets.iter().map(|d| d.device_id.clone()).collect();
    assert_eq!(devices, wanted, "subtasks keep the order of the targets");
    // Filtered by status, the pages partition the same set.
    let mut by_status = 0;
    for s in [
        SubOperationStatus::Wait,
        SubOperationStatus::Processing,
        SubOperationStatus::Success,
        SubOperationStatus::Fail,
    ] {
        let subs = all_subs(&mut h, &id, Some(s.clone()), 10);
        assert!(subs.iter().all(|x| x.status == Some(s.clone())));
        by_status += subs.len();
    }
    assert_eq!(by_status, 75);
    // Default paging: page 0 of 10; a page past the end is empty but keeps the total.
    let first = h.call(&QuerySubOperations::new(id.clone())).unwrap();
    assert_eq!((first.page_no, first.page_size, first.data.len()), (Some(0), Some(10), 10));
    let past = h.call(&QuerySubOperations::new(id.clone()).with_page_no(50).with_page_size(100)).unwrap();
    assert!(past.data.is_empty());
    assert_eq!(past.total_count, Some(75));
    let raw = h.raw_authed("GET", &format!("/iodm/northbound/v1.5.0/operations/{id}/subOperations?pageSize=101"), "");
    assert_eq!(crate::support::raw_code(&raw), (400, "123029".to_owned()));
}

#[test]
fn creation_checks_the_package_and_the_devices() {
    let mut h = Harness::ready();
    let meters = devices_of_type(&h, "WaterMeter");
    let detectors = devices_of_type(&h, "SmokeDetector");
    let fw = package_for(&h, &meters[0], FileType::FirmwarePackage);
    let sw = package_for(&h, &meters[0], FileType::SoftwarePackage);
    let one = |d: &Device| OperateDevices::new().with_devices(vec![d.device_id.clone()]);
    let firmware =
        |file: &FileId, t: OperateDevices| CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(file.clone(), t));

    assert_eq!(code(h.call(&firmware(&FileId::new("nope").unwrap(), one(&meters[0])))), "123002");
    let ghost = OperateDevices::new().with_devices(vec![DeviceId::new("ghost").unwrap()]);
    assert_eq!(code(h.call(&firmware(&fw.file_id, ghost))), "123002");
    assert_eq!(code(h.call(&firmware(&fw.file_id, one(&detectors[0])))), "123016");
    // A software package given to the firmware endpoint is a bad request.
    assert_eq!(code(h.call(&firmware(&sw.file_id, one(&meters[0])))), "120015");
    let software = CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(fw.file_id.clone(), one(&meters[0])));
    assert_eq!(code(h.call(&software)), "120015");
    let software = CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(sw.file_id.clone(), one(&meters[0])));
    assert!(h.call(&software).is_ok());

    // Groups must exist, and their device kind must be the package's.
    let groups = |names: &[&str], d: &Device| {
        OperateDevices::new()
            .with_device_groups(names.iter().map(|s| (*s).to_owned()).collect())
            .with_device_type(d.device_type.clone())
            .with_model(d.model.clone())
            .with_manufacturer_name(d.manufacturer_name.clone())
    };
    assert_eq!(code(h.call(&firmware(&fw.file_id, groups(&["atlantis"], &meters[0])))), "123002");
    assert_eq!(code(h.call(&firmware(&fw.file_id, groups(&["north"], &detectors[0])))), "123016");
    let id = h.call(&firmware(&fw.file_id, groups(&["north", "pilot"], &meters[0]))).unwrap().operation_id;
    let expected = meters.iter().filter(|d| d.groups.iter().any(|g| g == "north" || g == "pilot")).count() as u64;
    let info = h.call(&QueryUpgradeTask::new(id)).unwrap();
    assert_eq!(info.sta_result.unwrap().total, Some(expected));

    // A custom window may not start in the past.
    let past = Timestamp::from_unix_seconds(T0 as i64 - 60).unwrap();
    let policy = OperatePolicy::new()
        .with_execute_type(ExecuteType::Custom)
        .with_start_time(past)
        .with_end_time(past.checked_add_secs(3600).unwrap());
    let body = CreateUpgradeTask::new(fw.file_id.clone(), one(&meters[0])).with_policy(policy);
    assert_eq!(code(h.call(&CreateFirmwareUpgradeTask::new(body))), "123033");
    assert_eq!(code(h.call(&QueryUpgradeTask::new(OperationId::new("missing").unwrap()))), "123009");
    assert_eq!(code(h.call(&QuerySubOperations::new(OperationId::new("missing").unwrap()))), "123009");
}

#[test]
fn a_custom_window_holds_devices_and_times_out_the_unfinished() {
    let mut h = Harness::ready();
    let targets: Vec<Device> = devices_of_type(&h, "WaterMeter").into_iter().take(60).collect();
    let start = Timestamp::from_unix_seconds(T0 as i64 + 600).unwrap();
    let end = start.checked_add_secs(300).unwrap();
    let policy = OperatePolicy::new().with_execute_type(ExecuteType::Custom).with_start_time(start).with_end_time(end);
    let id = firmware_task(&mut h, &targets, Some(policy));
    h.advance(599);
    let before = check_consistent(&mut h, &id);
    assert_eq!(before.status, Some(OperationStatus::Wait));
    assert_eq!(before.start_time, Some(start));
    h.advance(1);
    check_consistent(&mut h, &id);
    h.advance(300);
    let after = check_consistent(&mut h, &id);
    let sta = after.sta_result.unwrap();
    assert_eq!(sta.wait + sta.processing, 0, "{sta:?}");
    assert!(sta.timeout > 0, "a five-minute window leaves slow devices unfinished: {sta:?}");
    for sub in all_subs(&mut h, &id, None, 100) {
        assert!(sub.stop_time.unwrap() <= end);
        if sub.status == Some(SubOperationStatus::Fail) && sub.detail_info.as_deref().unwrap().contains("window") {
            assert_eq!(sub.stop_time, Some(end));
        }
    }
}

#[test]
fn device_online_tasks_wait_for_each_device() {
    let mut h = Harness::ready();
    let targets: Vec<Device> = devices_of_type(&h, "SmokeDetector").into_iter().take(40).collect();
    let policy = OperatePolicy::new().with_execute_type(ExecuteType::DeviceOnline);
    let id = firmware_task(&mut h, &targets, Some(policy));
    h.advance(1);
    let early = check_consistent(&mut h, &id).sta_result.unwrap();
    assert!(early.wait > 30, "most devices are still offline: {early:?}");
    let waiting = all_subs(&mut h, &id, Some(SubOperationStatus::Wait), 100);
    assert!(waiting[0].detail_info.as_deref().unwrap().contains("online"));
    h.advance(4 * 3600);
    h.login().unwrap();
    let late = check_consistent(&mut h, &id);
    assert!(matches!(late.status, Some(OperationStatus::Success | OperationStatus::Failed)));
}

#[test]
fn the_task_list_filters_and_keeps_creation_order() {
    let mut h = Harness::ready();
    let meters = devices_of_type(&h, "WaterMeter");
    let detectors = devices_of_type(&h, "SmokeDetector");
    let a = firmware_task(&mut h, &meters[..5], None);
    let sw = package_for(&h, &detectors[0], FileType::SoftwarePackage);
    let body = CreateUpgradeTask::new(
        sw.file_id.clone(),
        OperateDevices::new().with_devices(detectors[..3].iter().map(|d| d.device_id.clone()).collect()),
    );
    let b = h.call(&CreateSoftwareUpgradeTask::new(body)).unwrap().operation_id;
    let c = firmware_task(&mut h, &meters[3..8], None);
    let ids = |q: QueryUpgradeTaskList, h: &mut Harness| -> Vec<OperationId> {
        let page = h.call(&q).unwrap();
        assert_eq!(page.total_count, Some(page.data.len() as u64));
        page.data.into_iter().map(|o| o.operation_id).collect()
    };
    assert_eq!(ids(QueryUpgradeTaskList::new(), &mut h), [a.clone(), b.clone(), c.clone()]);
    assert_eq!(
        ids(QueryUpgradeTaskList::new().with_operation_type(OperateType::SoftwareUpgrade), &mut h),
        vec![b.clone()]
    );
    assert_eq!(ids(QueryUpgradeTaskList::new().with_device_type("WaterMeter"), &mut h), [a.clone(), c.clone()]);
    assert_eq!(ids(QueryUpgradeTaskList::new().with_model("SD-10"), &mut h), vec![b.clone()]);
    assert_eq!(
        ids(QueryUpgradeTaskList::new().with_manufacturer_name("Acme Metering"), &mut h),
        [a.clone(), c.clone()]
    );
    assert_eq!(
        ids(QueryUpgradeTaskList::new().with_device_id(meters[4].device_id.clone()), &mut h),
        [a.clone(), c.clone()]
    );
    assert_eq!(ids(QueryUpgradeTaskList::new().with_device_id(meters[0].device_id.clone()), &mut h), vec![a.clone()]);
    let page = h.call(&QueryUpgradeTaskList::new().with_page_size(2).with_page_no(1)).unwrap();
    assert_eq!(page.total_count, Some(3));
    assert_eq!(page.data.iter().map(|o| o.operation_id.clone()).collect::<Vec<_>>(), vec![c.clone()]);
    h.advance(6 * 3600);
    h.login().unwrap();
    let done = ids(QueryUpgradeTaskList::new().with_operation_status(OperationStatus::Processing), &mut h);
    assert!(done.is_empty());
    let finished = ids(QueryUpgradeTaskList::new().with_operation_status(OperationStatus::Success), &mut h).len()
        + ids(QueryUpgradeTaskList::new().with_operation_status(OperationStatus::Failed), &mut h).len();
    assert_eq!(finished, 3);
}

#[test]
fn packages_can_be_listed_filtered_read_and_deleted() {
    let mut h = Harness::ready();
    let all = h.call(&QueryPackageList::new().with_page_size(100)).unwrap();
    assert_eq!(all.total_count, Some(h.sim.packages().len() as u64));
    assert_eq!(all.data, h.sim.packages());
    let firmware =
        h.call(&QueryPackageList::new().with_file_type(FileType::FirmwarePackage).with_page_size(100)).unwrap();
    assert!(!firmware.data.is_empty());
    assert!(firmware.data.iter().all(|p| p.file_type == Some(FileType::FirmwarePackage)));
    let meters = h.call(&QueryPackageList::new().with_device_type("WaterMeter").with_version("V2.0.0")).unwrap();
    assert_eq!(meters.data.len(), 1);
    let first = all.data[0].clone();
    assert_eq!(h.call(&QueryPackage::new(first.file_id.clone())).unwrap(), first);
    h.call(&DeletePackage::new(first.file_id.clone())).unwrap();
    assert_eq!(code(h.call(&QueryPackage::new(first.file_id.clone()))), "123002");
    assert_eq!(code(h.call(&DeletePackage::new(first.file_id.clone()))), "123002");
    let after = h.call(&QueryPackageList::new()).unwrap();
    assert_eq!(after.total_count, Some(all.data.len() as u64 - 1));
    assert_eq!(h.call(&QueryPackageList::new().with_page_no(9)).unwrap().data.len(), 0);
}
