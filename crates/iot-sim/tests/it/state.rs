//! Reading the simulator's state without a request (what the soak compares its walks and creates with) agrees
//! with what the queries answer.

use iot_model::{
    BatchTaskRequest, BatchTaskType, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, FileType, Json,
    OperateDevices,
};
use iot_proto::{CreateBatchTask, CreateFirmwareUpgradeTask, QuerySubOperations, QueryTaskDetails};

use crate::support::Harness;

#[test]
fn the_state_read_directly_is_what_the_queries_answer() {
    let mut h = Harness::ready();
    assert_eq!(h.sim.state_size().upgrade_tasks, 0);
    let device = h.sim.devices()[0].clone();
    let package = h
        .sim
        .packages()
        .iter()
        .rfind(|p| {
            p.file_type == Some(FileType::FirmwarePackage)
                && p.device_type.as_deref() == Some(device.device_type.as_str())
                && p.model.as_deref() == Some(device.model.as_str())
        })
        .cloned()
        .unwrap();
    let devices: Vec<_> = h
        .sim
        .devices()
        .iter()
        .filter(|d| d.device_type == device.device_type && d.model == device.model)
        .take(3)
        .map(|d| d.device_id.clone())
        .collect();
    let body = CreateUpgradeTask::new(package.file_id, OperateDevices::new().with_devices(devices.clone()));
    let op = h.call(&CreateFirmwareUpgradeTask::new(body)).unwrap().operation_id;

    let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Meter".into(), "REBOOT".into()))
        .with_device_list(devices.clone());
    let Json::Object(param) = serde_json::to_value(param).unwrap() else { panic!("an object") };
    let request = BatchTaskRequest::new(h.app.clone(), 30, "named".into(), BatchTaskType::DeviceCmd, param);
    let task = h.call(&CreateBatchTask::new(request)).unwrap().task_id;

    assert_eq!(h.sim.upgrade_tasks(), vec![(op.clone(), devices.clone())]);
    let subs = h.call(&QuerySubOperations::new(op.clone()).with_page_size(100)).unwrap();
    let listed: Vec<_> = subs.data.into_iter().map(|s| s.sub_operation_id).collect();
    assert_eq!(h.sim.sub_operation_ids(&op), Some(listed));

    assert_eq!(h.sim.batch_tasks(), vec![(task.clone(), h.app.clone(), "named".to_owned())]);
    let details = h.call(&QueryTaskDetails::new(task.clone()).with_page_size(100)).unwrap();
    let listed: Vec<String> = details
        .task_details
        .iter()
        .map(|d| d.param.as_ref().unwrap()["commandId"].as_str().unwrap().to_owned())
        .collect();
    let direct: Vec<String> = h.sim.batch_command_ids(&task).unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(direct, listed);

    let size = h.sim.state_size();
    let counts = (size.upgrade_tasks, size.upgrade_subtasks, size.batch_tasks, size.batch_subtasks);
    assert_eq!(counts, (1, 3, 1, 3));
    // One id per task, subtask and command.
    assert_eq!(size.issued_ids, 8);
    assert_eq!(h.sim.sub_operation_ids(&"0123456789abcdef01234567".parse().unwrap()), None);
}
