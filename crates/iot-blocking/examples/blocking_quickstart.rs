//! The blocking client against the embedded simulator: log in, list, walk every subtask of a new upgrade task,
//! log out. Run with `cargo run -p iot-blocking --example blocking_quickstart`.
//!
//! The simulator needs a tokio runtime to serve; the client does not, and runs on the main thread.

use iot_blocking::{Client, ClientConfig};
use iot_model::{AppId, AppSecret, CreateUpgradeTask, DeviceId, FileType, OperateDevices};
use iot_proto::{BaseUrl, CreateFirmwareUpgradeTask, QueryPackageList, QuerySubOperations};
use iot_sim::embedded::EmbeddedSim;
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Runtime::new()?;
    let sim = runtime.block_on(EmbeddedSim::start_default())?;

    let client = Client::new(ClientConfig::new(
        BaseUrl::parse(sim.base_url())?,
        AppId::new(DEFAULT_APP_ID)?,
        AppSecret::new(DEFAULT_SECRET),
    ))?;
    client.login()?;

    let packages = client.query_package_list(&QueryPackageList::new().with_file_type(FileType::FirmwarePackage))?;
    let package = packages.data.first().ok_or("no firmware package")?.clone();
    let devices: Vec<DeviceId> = sim.with_sim(|s| {
        s.devices()
            .iter()
            .filter(|d| {
                Some(&d.device_type) == package.device_type.as_ref() && Some(&d.model) == package.model.as_ref()
            })
            .filter(|d| Some(&d.manufacturer_name) == package.manufacturer_name.as_ref())
            .map(|d| d.device_id.clone())
            .take(30)
            .collect()
    });
    let task = CreateUpgradeTask::new(package.file_id.clone(), OperateDevices::new().with_devices(devices));
    let operation = client.create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(task))?.operation_id;
    println!("created upgrade task {operation}");

    // An iterator: one page in memory at a time, an unreadable item in its place, a failed walk as the last item.
    for sub in client.items(QuerySubOperations::new(operation).with_page_size(10)) {
        let sub = sub?;
        println!("  {:?}: {:?}", sub.device_id, sub.status);
    }

    client.logout()?;
    runtime.block_on(sim.shutdown());
    Ok(())
}
