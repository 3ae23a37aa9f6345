//! The same seed and the same requests at the same times give the same answers, byte for byte.

use iot_model::{
    BatchTaskRequest, BatchTaskType, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, FileType,
    OperateDevices, OperatePolicy,
};
use iot_proto::{
    CreateBatchTask, CreateFirmwareUpgradeTask, Endpoint, QueryBatchTask, QuerySubOperations, QueryTaskDetails,
    QueryUpgradeTask, QueryUpgradeTaskList,
};
use iot_sim::sim::SimConfig;

use crate::support::Harness;

/// Plays a fixed script and returns every answer's status and body.
fn script(seed: u64) -> Vec<(u16, Vec<u8>)> {
    let mut h = Harness::ready_with(SimConfig::default().with_seed(seed).with_rate_limit(None));
    let mut out = Vec::new();
    let mut record = |h: &mut Harness, req: http::Request<Vec<u8>>| {
        let resp = h.raw(req);
        out.push((resp.status().as_u16(), resp.body().clone()));
        resp
    };
    let auth = |h: &Harness| (h.app.clone(), h.token.clone().unwrap());
    let build = |h: &Harness, ep: &dyn Fn(&iot_proto::BaseUrl, iot_proto::BearerAuth<'_>) -> http::Request<Vec<u8>>| {
        let (app, token) = auth(h);
        ep(&h.base, iot_proto::BearerAuth { app_id: &app, token: &token })
    };

    let device = h.sim.devices()[0].clone();
    let pkg = h
        .sim
        .packages()
        .iter()
        .find(|p| {
            p.file_type == Some(FileType::FirmwarePackage)
                && p.device_type.as_deref() == Some(device.device_type.as_str())
        })
        .unwrap()
        .clone();
    let targets: Vec<_> = h
        .sim
        .devices()
        .iter()
        .filter(|d| d.device_type == device.device_type)
        .take(50)
        .map(|d| d.device_id.clone())
        .collect();
    let body = CreateUpgradeTask::new(pkg.file_id.clone(), OperateDevices::new().with_devices(targets)).with_policy(
        OperatePolicy::new().with_execute_type(iot_model::ExecuteType::Now).with_retry_type(true).with_retry_times(1),
    );
    let create = CreateFirmwareUpgradeTask::new(body);
    let req = build(&h, &|b, a| create.try_into_http_request(b, Some(a)).unwrap());
    let resp = record(&mut h, req);
    let op = CreateFirmwareUpgradeTask::try_from_http_response(&resp).unwrap().operation_id;

    let p = DeviceCmdParam::new(DeviceCmdType::Broadcast, Command::new("S".into(), "M".into()));
    let serde_json::Value::Object(param) = serde_json::to_value(p).unwrap() else { unreachable!() };
    let batch =
        CreateBatchTask::new(BatchTaskRequest::new(h.app.clone(), 10, "b".into(), BatchTaskType::DeviceCmd, param));
    let req = build(&h, &|b, a| batch.try_into_http_request(b, Some(a)).unwrap());
    let resp = record(&mut h, req);
    let task = CreateBatchTask::try_from_http_response(&resp).unwrap().task_id;

    for step in 0..12 {
        h.advance(if step % 2 == 0 { 37 } else { 301 });
        let q1 = QueryUpgradeTask::new(op.clone());
        let q2 = QuerySubOperations::new(op.clone()).with_page_size(100);
        let q3 = QueryUpgradeTaskList::new();
        let q4 = QueryBatchTask::new(task.clone());
        let q5 = QueryTaskDetails::new(task.clone()).with_page_size(250);
        for req in [
            build(&h, &|b, a| q1.try_into_http_request(b, Some(a)).unwrap()),
            build(&h, &|b, a| q2.try_into_http_request(b, Some(a)).unwrap()),
            build(&h, &|b, a| q3.try_into_http_request(b, Some(a)).unwrap()),
            build(&h, &|b, a| q4.try_into_http_request(b, Some(a)).unwrap()),
            build(&h, &|b, a| q5.try_into_http_request(b, Some(a)).unwrap()),
        ] {
            record(&mut h, req);
        }
    }
    out
}

#[test]
fn the_same_seed_gives_the_same_answers_and_another_seed_does_not() {
    let a = script(42);
    let b = script(42);
    assert_eq!(a.len(), 62);
    assert!(a.iter().all(|(status, _)| *status == 200));
    assert!(a == b, "two runs with seed 42 differ");
    let c = script(43);
    assert_ne!(a, c);
}
