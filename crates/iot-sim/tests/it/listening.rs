//! The simulator listens like the platform: a trailing slash on a path is the same path, an empty id segment
//! is no resource, and an unreadable page number or size gets the paging family's page-limit code.

use iot_model::{DeviceId, TaskId};
use iot_sim::sim::codes;

use crate::support::{Harness, raw_code};

const UPGRADE: &str = "/iodm/northbound/v1.5.0";
const BATCH: &str = "/iocm/app/batchtask/v1.1.0";

/// A DeviceCmd body for the default app that reboots `devices`.
fn batch_body(h: &Harness, devices: &[DeviceId]) -> String {
    let list: Vec<&str> = devices.iter().map(DeviceId::as_str).collect();
    serde_json::json!({
        "appId": h.app.as_str(),
        "timeout": 10,
        "taskName": "slash",
        "taskType": "DeviceCmd",
        "param": {"type": "DeviceList", "deviceList": list, "command": {"serviceId": "Meter", "method": "REBOOT"}},
    })
    .to_string()
}

#[test]
fn a_trailing_slash_reaches_the_same_endpoint() {
    let mut h = Harness::ready();
    let devices: Vec<DeviceId> = h.sim.devices().iter().take(2).map(|d| d.device_id.clone()).collect();
    let body = batch_body(&h, &devices);
    let created = h.raw_authed("POST", &format!("{BATCH}/tasks/"), &body);
    assert_eq!(created.status(), 200, "{}", String::from_utf8_lossy(created.body()));
    let id: serde_json::Value = serde_json::from_slice(created.body()).unwrap();
    let id = TaskId::new(id["taskID"].as_str().unwrap()).unwrap();
    assert_eq!(h.sim.task_counts().1, 1);

    for path in [
        format!("{BATCH}/tasks/{id}/"),
        format!("{BATCH}/taskDetails/?taskId={id}"),
        format!("{UPGRADE}/category/"),
        format!("{UPGRADE}/operations/?pageNo=0"),
    ] {
        let resp = h.raw_authed("GET", &path, "");
        assert_eq!(resp.status(), 200, "{path}: {}", String::from_utf8_lossy(resp.body()));
    }
    let file_id = h.sim.packages()[0].file_id.clone();
    let resp = h.raw_authed("GET", &format!("{UPGRADE}/category/{file_id}/"), "");
    assert_eq!(resp.status(), 200);
}

#[test]
fn empty_segments_and_doubled_slashes_are_no_resource() {
    let mut h = Harness::ready();
    for path in [
        format!("{UPGRADE}/operations//subOperations"),
        format!("{UPGRADE}/operations//"),
        format!("{BATCH}/tasks//"),
        format!("{UPGRADE}//category"),
    ] {
        assert_eq!(raw_code(&h.raw_authed("GET", &path, "")), (404, codes::NOT_FOUND.to_owned()), "{path}");
    }
}

#[test]
fn unreadable_pages_get_the_family_page_limit_code() {
    let mut h = Harness::ready();
    for q in ["pageNo=-1", "pageNo=abc", "pageSize=x", "pageSize=-10"] {
        for path in [
            format!("{UPGRADE}/operations?{q}"),
            format!("{UPGRADE}/category?{q}"),
            format!("{UPGRADE}/operations/op-1/subOperations?{q}"),
        ] {
            assert_eq!(raw_code(&h.raw_authed("GET", &path, "")), (400, "123029".to_owned()), "{path}");
        }
        let path = format!("{BATCH}/taskDetails?taskId=t-1&{q}");
        assert_eq!(raw_code(&h.raw_authed("GET", &path, "")), (400, "100022".to_owned()), "{path}");
    }
    // Other unreadable filters keep the generic rejection.
    let path = format!("{UPGRADE}/operations?deviceId=%00");
    assert_eq!(raw_code(&h.raw_authed("GET", &path, "")), (400, "120015".to_owned()));
}
