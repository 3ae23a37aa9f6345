//! Quickstart: a firmware rollout and a batch command against the embedded simulator, start to finish.
//!
//! Run with `cargo run -p iot-hyper --example quickstart`. The simulator runs in this process on
//! `127.0.0.1` with simulated time 600 times faster than real time, so a rollout of several simulated
//! minutes plays in a few seconds. Point `ClientConfig` at a real platform and the same code runs there.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::TryStreamExt;
use iot_hyper::{Client, ClientConfig};
use iot_model::{
    AppId, AppSecret, BatchTaskRequest, BatchTaskStatus, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType,
    DeviceId, ExecuteType, FileType, OperateDevices, OperatePolicy, OperateType, OperationStatus, TaskDetailStatus,
};
use iot_proto::{
    BaseUrl, CreateBatchTask, CreateFirmwareUpgradeTask, QueryBatchTask, QueryPackageList, QuerySubOperations,
    QueryTaskDetails, QueryUpgradeTask, QueryUpgradeTaskList,
};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How often the example polls for progress, in real time.
const POLL: Duration = Duration::from_millis(250);
/// Gives up waiting for a task after this many polls (a minute of real time).
const MAX_POLLS: u32 = 240;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // 1. The platform: the embedded simulator, 300 devices, time x600.
    let sim = EmbeddedSim::start(SimConfig::default(), EmbeddedOptions::default().with_time_scale(600.0)).await?;
    println!("simulator at {} (app {DEFAULT_APP_ID})", sim.base_url());

    // 2. The client: logs in on first use and refreshes by itself.
    let client = Client::new(ClientConfig::new(
        BaseUrl::parse(sim.base_url())?,
        AppId::new(DEFAULT_APP_ID)?,
        AppSecret::new(DEFAULT_SECRET),
    ))?;
    client.login().await?;
    println!("logged in");

    // 3. Pick a firmware package, and the devices it fits. A real application knows its own inventory;
    //    here we ask the simulator for the ids of the devices of the package's type.
    let packages = client
        .query_package_list(&QueryPackageList::new().with_file_type(FileType::FirmwarePackage).with_page_size(10))
        .await?;
    let package = packages.data.first().ok_or("the simulator offers no firmware package")?.clone();
    let device_type = package.device_type.clone().unwrap_or_default();
    let devices: Vec<DeviceId> = sim.with_sim(|s| {
        s.devices_for(&package).map(|d| d.device_id.clone()).take(iot_model::limits::MAX_TARGETS as usize).collect()
    });
    println!(
        "package {} ({}, version {}) for {} devices of type {device_type}",
        package.file_id,
        package.name.as_deref().unwrap_or("?"),
        package.version.as_deref().unwrap_or("?"),
        devices.len()
    );

    // 4. Create the firmware upgrade task: start now, let the platform retry a failed device twice.
    let task = CreateUpgradeTask::new(package.file_id.clone(), OperateDevices::new().with_devices(devices.clone()))
        .with_policy(
            OperatePolicy::new().with_execute_type(ExecuteType::Now).with_retry_type(true).with_retry_times(2),
        );
    let created = client.create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(task)).await?;
    let operation_id = created.operation_id;
    println!("created upgrade task {operation_id}");

    // 5. Follow it to completion; progress comes from staResult.
    let mut final_status = None;
    for _ in 0..MAX_POLLS {
        let info = client.query_upgrade_task(&QueryUpgradeTask::new(operation_id.clone())).await?;
        let s = info.sta_result.clone().unwrap_or_default();
        let total = s.total.unwrap_or(s.wait + s.processing + s.success + s.fail + s.stop);
        let done = s.success + s.fail + s.stop;
        println!(
            "  {:<10} {done:>3}/{total} done: {} ok, {} failed ({} timed out), {} running, {} waiting",
            info.status.as_ref().map(|x| x.as_str()).unwrap_or("?"),
            s.success,
            s.fail,
            s.timeout,
            s.processing,
            s.wait
        );
        if matches!(info.status, Some(OperationStatus::Success | OperationStatus::Failed | OperationStatus::Stop)) {
            final_status = info.status;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let final_status = final_status.ok_or("the upgrade task did not finish in time")?;
    println!("upgrade task finished: {final_status}");

    // 6. List firmware tasks for this device type, with filters.
    let list = client
        .query_upgrade_task_list(
            &QueryUpgradeTaskList::new()
                .with_operation_type(OperateType::FirmwareUpgrade)
                .with_device_type(&device_type)
                .with_page_size(20),
        )
        .await?;
    println!("{} firmware task(s) for {device_type}", list.total_count.unwrap_or(0));

    // 7. Page through every subtask (25 per page) and print the failures with their causes.
    let subtasks = client.items(QuerySubOperations::new(operation_id.clone()).with_page_size(25));
    let mut subtasks = std::pin::pin!(subtasks);
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    while let Some(sub) = subtasks.try_next().await? {
        let status = sub.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        *by_status.entry(status).or_default() += 1;
        if sub.status == Some(iot_model::SubOperationStatus::Fail) {
            failures.push(sub);
        }
    }
    println!("subtasks by status: {by_status:?}");
    for sub in failures.iter().take(10) {
        println!(
            "  failed: {} - {}",
            sub.device_id.as_ref().map(|d| d.as_str()).unwrap_or("?"),
            sub.detail_info.as_deref().unwrap_or("no cause given")
        );
    }
    if failures.len() > 10 {
        println!("  ... and {} more", failures.len() - 10);
    }

    // 8. A batch command to the same devices, then its details page by page.
    let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Maintenance".into(), "REBOOT".into()))
        .with_device_list(devices.iter().take(60).cloned().collect());
    let batch = BatchTaskRequest::device_cmd(AppId::new(DEFAULT_APP_ID)?, 30, "reboot after upgrade", param);
    let task_id = client.create_batch_task(&CreateBatchTask::new(batch)).await?.task_id;
    println!("created batch task {task_id}");
    for _ in 0..MAX_POLLS {
        let info = client.query_batch_task(&QueryBatchTask::new(task_id.clone())).await?;
        println!(
            "  {:<9} progress {:>4}/1000: {} ok, {} failed, {} timed out of {}",
            info.status.as_ref().map(|x| x.as_str()).unwrap_or("?"),
            info.progress.unwrap_or(0),
            info.success_cnt.unwrap_or(0),
            info.fail_cnt.unwrap_or(0),
            info.timeout_cnt.unwrap_or(0),
            info.total_cnt.unwrap_or(0)
        );
        if matches!(info.status, Some(BatchTaskStatus::Complete | BatchTaskStatus::Timeout)) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let mut pages = std::pin::pin!(client.pages(QueryTaskDetails::new(task_id.clone()).with_page_size(25)));
    let (mut seen, mut failed) = (0, 0);
    while let Some(page) = pages.try_next().await? {
        for detail in &page.task_details {
            seen += 1;
            if detail.status == Some(TaskDetailStatus::Fail) {
                failed += 1;
                if failed <= 3 {
                    println!("  command failed: {}", detail.error.as_deref().unwrap_or("?"));
                }
            }
        }
    }
    println!("batch details: {seen} subtasks, {failed} failed");

    client.logout().await?;
    sim.shutdown().await;
    println!("done");
    Ok(())
}
