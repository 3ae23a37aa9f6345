//! The commands that call the platform: packages, upgrade tasks, subtasks, batch tasks and login.
//!
//! Each command builds the endpoint's typed request from the options (ids are checked there, before anything
//! is sent), calls the client, and hands the typed answer to [`crate::output`]. Listings walk every page
//! through the client's `items()` stream and print as items arrive.

use std::io::IsTerminal;
use std::pin::pin;

use futures_util::{Stream, StreamExt};
use iot_hyper::Error;
use iot_model::limits::{MAX_BATCH_DEVICES, MAX_TARGETS};
use iot_model::{
    BatchTaskInfo, BatchTaskRequest, CategoryInfo, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, DeviceId,
    ExecuteType, FileId, FileType, Json, OperateDevices, OperatePolicy, OperateType, OperationId, OperationInfo,
    OperationStatus, SubOperationInfo, SubOperationStatus, TaskDetail, TaskDetailStatus, TaskId, Timestamp,
};
use iot_proto::{
    CreateBatchTask, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, QueryBatchTask, QueryPackage,
    QueryPackageList, QuerySubOperations, QueryTaskDetails, QueryUpgradeTask, QueryUpgradeTaskList,
};
use serde::Serialize;

use crate::cli::{
    BatchCommand, CreateBatchArgs, CreateTaskArgs, DetailStatus, DetailsArgs, Execute, Format, Kind, PackageFilter,
    PackagesCommand, SubtaskStatus, SubtasksArgs, TaskFilter, TaskStatus, TasksCommand,
};
use crate::connect::Session;
use crate::error::{Exit, Failure};
use crate::output::{Listing, opt, print_record, say, time};
use crate::{devices, watch};

/// Parses an id given on the command line, naming the option in the error.
fn id<T>(what: &str, value: &str, new: impl FnOnce(String) -> Result<T, iot_model::ModelError>) -> Result<T, Failure> {
    new(value.to_owned()).map_err(|e| Failure::usage(format!("{what} {value:?}: {e}")))
}

/// Prints every item of a paged walk (at most `limit`), reporting unreadable items without losing the rest.
async fn list<T: Serialize>(
    format: Format,
    header: &'static [&'static str],
    stream: impl Stream<Item = Result<T, Error>>,
    limit: Option<usize>,
    cells: impl Fn(&T) -> Vec<String>,
) -> Result<Exit, Failure> {
    let mut stream = pin!(stream);
    let mut listing = Listing::new(format, header);
    let (mut shown, mut unreadable) = (0usize, 0usize);
    while limit.is_none_or(|l| shown < l) {
        match stream.next().await {
            None => break,
            Some(Ok(item)) => {
                listing.item(&item, cells(&item))?;
                shown += 1;
            }
            // One item the SDK cannot read stands in its place; the walk goes on and the end says so.
            Some(Err(Error::Item(rejected))) => {
                eprintln!("warning: an item could not be read: {rejected}");
                unreadable += 1;
            }
            Some(Err(e)) => {
                // What arrived before the failure is still printed, then the failure is reported.
                listing.abandon()?;
                let failure = Failure::from(e);
                return Err(if shown > 0 { failure.context("the listing is incomplete") } else { failure });
            }
        }
    }
    listing.finish()?;
    if unreadable > 0 {
        return Err(Failure::new(Exit::BadAnswer, format!("{unreadable} item(s) of the listing could not be read")));
    }
    Ok(Exit::Ok)
}

fn kind_file_type(kind: Kind) -> FileType {
    match kind {
        Kind::Firmware => FileType::FirmwarePackage,
        Kind::Software => FileType::SoftwarePackage,
    }
}

const PACKAGE_COLUMNS: &[&str] =
    &["file id", "name", "version", "type", "device type", "model", "manufacturer", "uploaded"];

fn package_cells(p: &CategoryInfo) -> Vec<String> {
    vec![
        p.file_id.to_string(),
        opt(&p.name),
        opt(&p.version),
        opt(&p.file_type),
        opt(&p.device_type),
        opt(&p.model),
        opt(&p.manufacturer_name),
        time(&p.upload_time),
    ]
}

/// `iotctl packages ...`
pub async fn packages(s: &Session, format: Format, cmd: &PackagesCommand) -> Result<Exit, Failure> {
    match cmd {
        PackagesCommand::List(f) => {
            let PackageFilter { file_type, device_type, model, manufacturer, package_version, limit } = f;
            let mut q = QueryPackageList::new().with_page_size(100);
            q.file_type = file_type.map(kind_file_type);
            q.device_type = device_type.clone();
            q.model = model.clone();
            q.manufacturer_name = manufacturer.clone();
            q.version = package_version.clone();
            list(format, PACKAGE_COLUMNS, s.client.items(q), *limit, package_cells).await
        }
        PackagesCommand::Show { file_id } => {
            let q = QueryPackage::new(id("package", file_id, FileId::new)?);
            let p = s.client.query_package(&q).await?;
            let fields = PACKAGE_COLUMNS.iter().copied().zip(package_cells(&p)).chain([
                ("protocol", opt(&p.protocol_type)),
                ("description", opt(&p.description)),
                ("date", opt(&p.date)),
            ]);
            print_record(format, &p, fields.collect())?;
            Ok(Exit::Ok)
        }
        PackagesCommand::Delete { file_id, yes } => {
            let file_id = id("package", file_id, FileId::new)?;
            if !yes && !confirm(&format!("delete package {file_id}?"))? {
                return Err(Failure::usage("not deleted").hint("pass --yes to delete without being asked"));
            }
            s.client.delete_package(&DeletePackage::new(file_id.clone())).await?;
            say(&format!("deleted package {file_id}"))?;
            Ok(Exit::Ok)
        }
    }
}

/// Asks a yes/no question on the terminal; without one, the answer is no.
fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

const TASK_COLUMNS: &[&str] =
    &["operation id", "type", "status", "created", "total", "wait", "processing", "success", "fail"];

fn task_cells(t: &OperationInfo) -> Vec<String> {
    let sta = t.sta_result.clone().unwrap_or_default();
    vec![
        t.operation_id.to_string(),
        opt(&t.operate_type),
        opt(&t.status),
        time(&t.create_time),
        opt(&sta.total),
        sta.wait.to_string(),
        sta.processing.to_string(),
        sta.success.to_string(),
        sta.fail.to_string(),
    ]
}

fn task_fields(t: &OperationInfo) -> Vec<(&'static str, String)> {
    let sta = t.sta_result.clone().unwrap_or_default();
    let targets = t.targets.clone().unwrap_or_default();
    let policy = t.policy.clone().unwrap_or_default();
    let version = t.extend_para.as_ref().and_then(|p| p.get("fileVersion")).and_then(Json::as_str);
    vec![
        ("operation id", t.operation_id.to_string()),
        ("type", opt(&t.operate_type)),
        ("status", opt(&t.status)),
        ("version", version.unwrap_or_default().to_owned()),
        ("created", time(&t.create_time)),
        ("started", time(&t.start_time)),
        ("stopped", time(&t.stop_time)),
        ("device type", opt(&targets.device_type)),
        ("model", opt(&targets.model)),
        ("manufacturer", opt(&targets.manufacturer_name)),
        ("devices", targets.devices.as_ref().map(|d| d.len().to_string()).unwrap_or_default()),
        ("groups", targets.device_groups.map(|g| g.join(" ")).unwrap_or_default()),
        ("execute", opt(&policy.execute_type)),
        ("retry times", opt(&policy.retry_times)),
        ("total", opt(&sta.total)),
        ("wait", sta.wait.to_string()),
        ("processing", sta.processing.to_string()),
        ("success", sta.success.to_string()),
        ("fail", sta.fail.to_string()),
        ("stop", sta.stop.to_string()),
        ("timeout", sta.timeout.to_string()),
    ]
}

/// `iotctl tasks ...`
pub async fn tasks(s: &Session, format: Format, cmd: &TasksCommand) -> Result<Exit, Failure> {
    match cmd {
        TasksCommand::Create(args) => create_tasks(s, format, args).await,
        TasksCommand::List(f) => {
            let TaskFilter { kind, status, device_type, model, manufacturer, device_id, limit } = f;
            let mut q = QueryUpgradeTaskList::new().with_page_size(100);
            q.operation_type = kind.map(|k| match k {
                Kind::Firmware => OperateType::FirmwareUpgrade,
                Kind::Software => OperateType::SoftwareUpgrade,
            });
            q.operation_status = status.map(|s| match s {
                TaskStatus::Wait => OperationStatus::Wait,
                TaskStatus::Processing => OperationStatus::Processing,
                TaskStatus::Failed => OperationStatus::Failed,
                TaskStatus::Success => OperationStatus::Success,
                TaskStatus::Stop => OperationStatus::Stop,
            });
            q.device_type = device_type.clone();
            q.model = model.clone();
            q.manufacturer_name = manufacturer.clone();
            q.device_id = device_id.as_deref().map(|d| id("--device-id", d, DeviceId::new)).transpose()?;
            list(format, TASK_COLUMNS, s.client.items(q), *limit, task_cells).await
        }
        TasksCommand::Show { id: task } => {
            let t = s.client.query_upgrade_task(&QueryUpgradeTask::new(id("task", task, OperationId::new)?)).await?;
            print_record(format, &t, task_fields(&t))?;
            Ok(Exit::Ok)
        }
        TasksCommand::Watch(w) => watch::upgrade(s, format, &id("task", &w.id, OperationId::new)?, w.interval).await,
    }
}

/// The policy the options ask for, if any.
fn policy(args: &CreateTaskArgs) -> Result<Option<OperatePolicy>, Failure> {
    let parse_time = |name: &str, v: &Option<String>| -> Result<Option<Timestamp>, Failure> {
        v.as_deref()
            .map(|t| {
                Timestamp::parse(t).map_err(|e| {
                    Failure::usage(format!("{name} {t:?}: {e}")).hint("write times as yyyyMMddTHHmmssZ, in UTC")
                })
            })
            .transpose()
    };
    let start = parse_time("--start-time", &args.start_time)?;
    let end = parse_time("--end-time", &args.end_time)?;
    if args.execute.is_none() && start.is_none() && end.is_none() && args.retry_times.is_none() {
        return Ok(None);
    }
    let mut policy = OperatePolicy::new();
    policy.execute_type = Some(match args.execute {
        Some(Execute::DeviceOnline) => ExecuteType::DeviceOnline,
        Some(Execute::Custom) => ExecuteType::Custom,
        // A window implies custom execution; otherwise the platform's default, now.
        None if start.is_some() || end.is_some() => ExecuteType::Custom,
        Some(Execute::Now) | None => ExecuteType::Now,
    });
    policy.start_time = start;
    policy.end_time = end;
    if let Some(n) = args.retry_times {
        policy = policy.with_retry_type(true).with_retry_times(n);
    }
    Ok(Some(policy))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    /// Devices listed in the task; absent when the task selects them by type, group or broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    devices: Option<usize>,
}

/// Prints one created task: a sentence for people, a JSON line or a CSV row for programs.
fn print_created(listing: &mut Listing, format: Format, what: &str, created: Created) -> Result<(), Failure> {
    let id = created.operation_id.clone().or(created.task_id.clone()).unwrap_or_default();
    if format == Format::Table {
        return match created.devices {
            Some(1) => say(&format!("created {what} {id} (1 device)")),
            Some(n) => say(&format!("created {what} {id} ({n} devices)")),
            None => say(&format!("created {what} {id}")),
        };
    }
    let devices = created.devices.map(|n| n.to_string()).unwrap_or_default();
    listing.item(&created, vec![id, devices])
}

/// Splits a device list into the platform's per-task maximum, telling the user when it does.
fn split(devices: &[DeviceId], max: u64, what: &str) -> Vec<Vec<DeviceId>> {
    let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
    let chunks: Vec<Vec<DeviceId>> = devices.chunks(max).map(<[DeviceId]>::to_vec).collect();
    if chunks.len() > 1 {
        eprintln!(
            "note: {} devices are more than the platform's {max} per {what}: creating {} {what}s",
            devices.len(),
            chunks.len()
        );
    }
    chunks
}

async fn create_tasks(s: &Session, format: Format, args: &CreateTaskArgs) -> Result<Exit, Failure> {
    let file_id = id("--package", &args.package, FileId::new)?;
    let policy = policy(args)?;
    let devices = devices::collect(&args.targets.device, args.targets.devices.as_deref())?;
    let chunks = split(&devices, MAX_TARGETS, "task");
    let what = if args.firmware { "firmware upgrade task" } else { "software upgrade task" };
    let mut listing = Listing::new(format, &["operation id", "devices"]);
    let mut created: Vec<OperationId> = Vec::new();
    let total = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let n = chunk.len();
        let mut body = CreateUpgradeTask::new(file_id.clone(), OperateDevices::new().with_devices(chunk));
        body.policy = policy.clone();
        let answer = if args.firmware {
            s.client.create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(body)).await
        } else {
            s.client.create_software_upgrade_task(&CreateSoftwareUpgradeTask::new(body)).await
        };
        match answer {
            Ok(r) => {
                let op = Created { operation_id: Some(r.operation_id.to_string()), task_id: None, devices: Some(n) };
                print_created(&mut listing, format, what, op)?;
                created.push(r.operation_id);
            }
            Err(e) => {
                listing.abandon()?;
                let mut failure = Failure::from(e);
                if total > 1 {
                    failure =
                        failure.context(format!("task {} of {total} ({} created before it)", i + 1, created.len()));
                }
                return Err(failure);
            }
        }
    }
    listing.abandon()?;
    if !args.watch {
        return Ok(Exit::Ok);
    }
    watch_each(&created, |op| watch::upgrade(s, format, op, args.interval)).await
}

/// `iotctl subtasks ID`
pub async fn subtasks(s: &Session, format: Format, args: &SubtasksArgs) -> Result<Exit, Failure> {
    let mut q = QuerySubOperations::new(id("task", &args.id, OperationId::new)?).with_page_size(100);
    q.sub_operation_status = args.status.map(|st| match st {
        SubtaskStatus::Wait => SubOperationStatus::Wait,
        SubtaskStatus::Processing => SubOperationStatus::Processing,
        SubtaskStatus::Fail => SubOperationStatus::Fail,
        SubtaskStatus::Success => SubOperationStatus::Success,
        SubtaskStatus::Stop => SubOperationStatus::Stop,
    });
    let columns = &["device id", "status", "started", "stopped", "version", "detail"];
    let cells = |sub: &SubOperationInfo| {
        let version = sub.extend_info.as_ref().and_then(|e| e.get("curVersion")).and_then(Json::as_str);
        vec![
            opt(&sub.device_id),
            opt(&sub.status),
            time(&sub.start_time),
            time(&sub.stop_time),
            version.unwrap_or_default().to_owned(),
            opt(&sub.detail_info),
        ]
    };
    list(format, columns, s.client.items(q), args.limit, cells).await
}

fn batch_fields(b: &BatchTaskInfo) -> Vec<(&'static str, String)> {
    vec![
        ("task id", b.task_id.to_string()),
        ("name", opt(&b.task_name)),
        ("type", opt(&b.task_type)),
        ("status", opt(&b.status)),
        ("started", time(&b.start_time)),
        ("timeout minutes", opt(&b.timeout)),
        ("progress", b.progress.map(|p| format!("{:.1}%", f64::from(p) / 10.0)).unwrap_or_default()),
        ("total", opt(&b.total_cnt)),
        ("success", opt(&b.success_cnt)),
        ("fail", opt(&b.fail_cnt)),
        ("timeout", opt(&b.timeout_cnt)),
        ("expired", opt(&b.expired_cnt)),
        ("complete", opt(&b.complete_cnt)),
        ("success rate", b.success_rate.map(|p| format!("{:.1}%", f64::from(p) / 10.0)).unwrap_or_default()),
    ]
}

/// `iotctl batch ...`
pub async fn batch(s: &Session, format: Format, cmd: &BatchCommand) -> Result<Exit, Failure> {
    match cmd {
        BatchCommand::Create(args) => create_batch(s, format, args).await,
        BatchCommand::Show { id: task } => {
            let b = s.client.query_batch_task(&QueryBatchTask::new(id("batch task", task, TaskId::new)?)).await?;
            print_record(format, &b, batch_fields(&b))?;
            Ok(Exit::Ok)
        }
        BatchCommand::Details(args) => details(s, format, args).await,
        BatchCommand::Watch(w) => watch::batch(s, format, &id("batch task", &w.id, TaskId::new)?, w.interval).await,
    }
}

async fn details(s: &Session, format: Format, args: &DetailsArgs) -> Result<Exit, Failure> {
    let mut q = QueryTaskDetails::new(id("batch task", &args.id, TaskId::new)?).with_page_size(250);
    q.status = args.status.map(|st| match st {
        DetailStatus::Pending => TaskDetailStatus::Pending,
        DetailStatus::WaitResult => TaskDetailStatus::WaitResult,
        DetailStatus::Success => TaskDetailStatus::Success,
        DetailStatus::Fail => TaskDetailStatus::Fail,
        DetailStatus::Timeout => TaskDetailStatus::Timeout,
    });
    q.device_id = args.device_id.as_deref().map(|d| id("--device-id", d, DeviceId::new)).transpose()?;
    q.command_id = args.command_id.as_deref().map(|c| id("--command-id", c, iot_model::CommandId::new)).transpose()?;
    q.index = args.index;
    q.node_id = args.node_id.clone();
    let columns = &["device id", "command id", "status", "output", "error"];
    let cells = |d: &TaskDetail| {
        let param =
            |key: &str| d.param.as_ref().and_then(|p| p.get(key)).and_then(Json::as_str).unwrap_or_default().to_owned();
        vec![param("deviceId"), param("commandId"), opt(&d.status), opt(&d.output), opt(&d.error)]
    };
    list(format, columns, s.client.items(q), args.limit, cells).await
}

/// The DeviceCmd parameter (without its device list) that the selector options ask for.
fn device_cmd(args: &CreateBatchArgs) -> Result<DeviceCmdParam, Failure> {
    let paras = match &args.params {
        None => None,
        Some(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => Some(map),
            _ => {
                return Err(Failure::usage(format!("--params {text:?} is not a JSON object"))
                    .hint(r#"write it as '{"name":"value"}'"#));
            }
        },
    };
    let mut command = Command::new(args.service_id.clone(), args.method.clone());
    command.paras = paras;
    let kind = if args.device_type.is_some() {
        DeviceCmdType::DeviceType
    } else if !args.group.is_empty() {
        DeviceCmdType::GroupList
    } else if args.broadcast {
        DeviceCmdType::Broadcast
    } else {
        DeviceCmdType::DeviceList
    };
    let mut param = DeviceCmdParam::new(kind, command);
    param.device_type = args.device_type.clone();
    param.model = args.model.clone();
    param.manufacturer_id = args.manufacturer_id.clone();
    param.group_list = (!args.group.is_empty()).then(|| args.group.clone());
    param.max_retransmit = args.max_retransmit;
    Ok(param)
}

async fn create_batch(s: &Session, format: Format, args: &CreateBatchArgs) -> Result<Exit, Failure> {
    let param = device_cmd(args)?;
    let chunks = if param.kind == DeviceCmdType::DeviceList {
        let devices = devices::collect(&args.device, args.devices.as_deref())?;
        split(&devices, MAX_BATCH_DEVICES, "batch task").into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let total = chunks.len();
    let mut listing = Listing::new(format, &["task id", "devices"]);
    let mut created = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut param = param.clone();
        let n = chunk.as_ref().map(Vec::len);
        param.device_list = chunk;
        let name = if total > 1 { format!("{} ({}/{total})", args.name, i + 1) } else { args.name.clone() };
        let body = BatchTaskRequest::device_cmd(s.app_id.clone(), args.timeout_minutes, name, param);
        match s.client.create_batch_task(&CreateBatchTask::new(body)).await {
            Ok(r) => {
                let c = Created { operation_id: None, task_id: Some(r.task_id.to_string()), devices: n };
                print_created(&mut listing, format, "batch task", c)?;
                created.push(r.task_id);
            }
            Err(e) => {
                listing.abandon()?;
                let mut failure = Failure::from(e);
                if total > 1 {
                    failure = failure.context(format!(
                        "batch task {} of {total} ({} created before it)",
                        i + 1,
                        created.len()
                    ));
                }
                return Err(failure);
            }
        }
    }
    listing.abandon()?;
    if !args.watch {
        return Ok(Exit::Ok);
    }
    watch_each(&created, |task| watch::batch(s, format, task, args.interval)).await
}

/// Watches each created task in turn until it ends; the worst exit wins. When several were created, one that
/// fails is reported and the others are still watched.
async fn watch_each<'a, T, F, Fut>(created: &'a [T], mut watch_one: F) -> Result<Exit, Failure>
where
    F: FnMut(&'a T) -> Fut,
    Fut: Future<Output = Result<Exit, Failure>>,
{
    let mut worst = Exit::Ok;
    for task in created {
        match watch_one(task).await {
            Ok(exit) if exit != Exit::Ok => worst = exit,
            Ok(_) => {}
            Err(f) if f.exit == Exit::TaskFailed && created.len() > 1 => {
                eprintln!("{f}");
                worst = Exit::TaskFailed;
            }
            Err(f) => return Err(f),
        }
    }
    Ok(worst)
}

/// `iotctl login`: logs in once, to check the profile and the secret.
pub async fn login(s: &Session) -> Result<Exit, Failure> {
    s.client.login().await?;
    let base = s.client.config().base_url.to_string();
    say(&format!("logged in to {base} as app {}", s.app_id))?;
    Ok(Exit::Ok)
}
