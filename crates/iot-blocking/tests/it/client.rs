//! The blocking client end to end: typed methods, walks, renewals, threads sharing one client, throttling,
//! unknown outcomes, transport limits and secrets.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use iot_blocking::{Client, ClientConfig, Error};
use iot_model::{
    AppId, AppSecret, BatchTaskRequest, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, DeviceId, FileType,
    OperateDevices,
};
use iot_proto::call::CallError;
use iot_proto::pager::StopReason;
use iot_proto::ratelimit::RateLimit;
use iot_proto::retry::{RetryPolicy, TransportFailure};
use iot_proto::session::SessionState;
use iot_proto::{
    BaseUrl, CreateBatchTask, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, QueryBatchTask,
    QueryPackage, QueryPackageList, QuerySubOperations, QueryTaskDetails, QueryUpgradeTask, QueryUpgradeTaskList,
};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};

use crate::support::{LOGIN, LOGOUT, REFRESH, Sim, bounded, count};

/// A firmware task over 40 devices of the first firmware package's kind, and those devices in order.
fn big_task(sim: &Sim, client: &Client) -> (iot_model::OperationId, Vec<DeviceId>) {
    let (package, devices) = sim.sim().with_sim(|s| {
        let package = s.packages().iter().find(|p| p.file_type == Some(FileType::FirmwarePackage)).unwrap().clone();
        let devices: Vec<DeviceId> = s
            .devices()
            .iter()
            .filter(|d| {
                Some(&d.device_type) == package.device_type.as_ref() && Some(&d.model) == package.model.as_ref()
            })
            .filter(|d| Some(&d.manufacturer_name) == package.manufacturer_name.as_ref())
            .map(|d| d.device_id.clone())
            .take(40)
            .collect();
        (package, devices)
    });
    assert!(devices.len() > 14, "{}", devices.len());
    let task = CreateUpgradeTask::new(package.file_id, OperateDevices::new().with_devices(devices.clone()));
    (client.create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(task)).unwrap().operation_id, devices)
}

#[test]
fn every_endpoint_round_trips_with_its_typed_method() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default());
        let client = sim.client();
        assert_eq!(client.session_state(), SessionState::NoToken);
        client.login().unwrap();
        assert_eq!(client.session_state(), SessionState::Valid);
        let packages = client.query_package_list(&QueryPackageList::new().with_page_size(100)).unwrap();
        assert_eq!(packages.data, sim.sim().with_sim(|s| s.packages().to_vec()));
        let one = client.query_package(&QueryPackage::new(packages.data[0].file_id.clone())).unwrap();
        assert_eq!(one, packages.data[0]);
        let (operation, _) = big_task(&sim, &client);
        assert_eq!(
            client.query_upgrade_task(&QueryUpgradeTask::new(operation.clone())).unwrap().operation_id,
            operation
        );
        let subs =
            client.query_sub_operations(&QuerySubOperations::new(operation.clone()).with_page_size(100)).unwrap();
        assert_eq!(subs.data.len(), 40);
        let listed = client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).unwrap();
        assert_eq!(listed.data[0].operation_id, operation);
        let software = packages.data.iter().find(|p| p.file_type == Some(FileType::SoftwarePackage)).unwrap();
        let task = CreateUpgradeTask::new(
            software.file_id.clone(),
            OperateDevices::new().with_devices(vec![subs.data[0].device_id.clone().unwrap()]),
        );
        client.create_software_upgrade_task(&CreateSoftwareUpgradeTask::new(task)).unwrap();
        let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Maintenance".into(), "REBOOT".into()))
            .with_device_list(vec![subs.data[0].device_id.clone().unwrap()]);
        let batch = BatchTaskRequest::device_cmd(AppId::new(DEFAULT_APP_ID).unwrap(), 30, "reboot", param);
        let task_id = client.create_batch_task(&CreateBatchTask::new(batch)).unwrap().task_id;
        assert_eq!(client.query_batch_task(&QueryBatchTask::new(task_id.clone())).unwrap().total_cnt, Some(1));
        assert_eq!(client.query_task_details(&QueryTaskDetails::new(task_id)).unwrap().total_count, Some(1));
        assert_eq!(sim.sim().with_sim(|s| s.task_counts()), (2, 1));
        client.delete_package(&DeletePackage::new(software.file_id.clone())).unwrap();
        assert!(sim.sim().with_sim(|s| s.packages().iter().all(|p| p.file_id != software.file_id)));
        client.renew_token().unwrap();
        client.logout().unwrap();
        assert_eq!(client.session_state(), SessionState::NoToken);
        let paths = sim.take_paths();
        assert_eq!((count(&paths, LOGIN), count(&paths, REFRESH), count(&paths, LOGOUT)), (1, 1, 1), "{paths:?}");
        // Logging out again has nothing to send.
        client.logout().unwrap();
        assert!(sim.take_paths().is_empty());
    });
}

#[test]
fn walks_yield_the_simulators_list() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default());
        let client = sim.client();
        let (operation, devices) = big_task(&sim, &client);
        let query = || QuerySubOperations::new(operation.clone()).with_page_size(7);

        let items: Vec<DeviceId> = client.items(query()).map(|i| i.unwrap().device_id.unwrap()).collect();
        assert_eq!(items, devices);
        assert_eq!(client.pages(query()).count(), devices.len() / 7 + 1);

        let mut walk = client.walk(query());
        assert_eq!(walk.outcome(), None);
        let mut seen = 0;
        while let Some(page) = walk.next_page() {
            seen += page.unwrap().data.len();
        }
        assert_eq!(seen, devices.len());
        assert!(
            matches!(walk.outcome(), Some(Ok(StopReason::ShortPage | StopReason::TotalReached))),
            "{:?}",
            walk.outcome()
        );

        // A page size outside the family's limits ends the walk at once with the paging error.
        let mut bad = client.items(QuerySubOperations::new(operation).with_page_size(1000));
        assert!(matches!(bad.next(), Some(Err(Error::Paging(_)))));
        assert!(bad.next().is_none());
    });
}

#[test]
fn threads_share_one_client_and_one_login() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default());
        let client = sim.client();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for _ in 0..4 {
                        client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let paths = sim.take_paths();
        assert_eq!((count(&paths, LOGIN), paths.len()), (1, 33), "{paths:?}");
    });
}

#[test]
fn a_token_rejected_by_the_platform_is_refreshed_once() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default());
        let client = sim.client();
        client.login().unwrap();
        // The platform's clock moves past the token's lifetime; the client's does not, so it learns from the 403.
        sim.sim().advance(Duration::from_secs(3601));
        client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).unwrap();
        let paths = sim.take_paths();
        assert_eq!((count(&paths, LOGIN), count(&paths, REFRESH), paths.len()), (1, 1, 4), "{paths:?}");
    });
}

#[test]
fn throttling_by_the_platform_is_retried() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default().with_rate_limit(Some((3, Duration::from_millis(300)))));
        let retry = RetryPolicy::new()
            .with_max_attempts(12)
            .with_throttling(Duration::from_millis(100), Duration::from_millis(500));
        let client = Client::new(sim.config().with_retry(retry).with_rate_limit(RateLimit::disabled())).unwrap();
        for _ in 0..8 {
            client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).unwrap();
        }
        let paths = sim.take_paths();
        assert!(paths.iter().filter(|p| p.ends_with("/operations")).count() > 8, "{paths:?}");
    });
}

/// A one-shot loopback server: answers every connection with `answer` after reading the request's head, or,
/// for a login, with a token; for up to `connections` connections.
fn scripted(answer: &'static [u8], connections: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let worker = std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let login = buf[..n].starts_with(b"POST /iocm/app/sec/v1.1.0/login");
            let body = if login {
                let json = r#"{"accessToken":"tok-123456","refreshToken":"ref-123456","expiresIn":3600}"#;
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                    json.len()
                )
                .into_bytes()
            } else {
                answer.to_vec()
            };
            let _ = stream.write_all(&body);
        }
    });
    (url, worker)
}

fn config_for(url: &str) -> ClientConfig {
    ClientConfig::new(BaseUrl::parse(url).unwrap(), AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(DEFAULT_SECRET))
        .with_call_timeout(Duration::from_secs(10))
        .with_retry(RetryPolicy::disabled())
}

#[test]
fn a_create_whose_answer_is_lost_after_the_platform_acted_is_an_unknown_outcome() {
    bounded(|| {
        // The server reads the create, then closes the connection without answering.
        let (url, worker) = scripted(b"", 2);
        let client = Client::new(config_for(&url).with_retry(RetryPolicy::default())).unwrap();
        let task = CreateUpgradeTask::new(
            "file-1".parse().unwrap(),
            OperateDevices::new().with_devices(vec!["device-1".parse().unwrap()]),
        );
        let err = client.create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(task)).unwrap_err();
        assert!(err.outcome_unknown(), "{err:?}");
        assert!(err.platform_may_have_acted());
        assert!(!err.is_retryable());
        worker.join().unwrap();
    });
}

#[test]
fn an_answer_over_the_body_cap_fails_the_call() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default());
        let client = Client::new(sim.config().with_max_body_bytes(256).with_retry(RetryPolicy::disabled())).unwrap();
        let err = client.query_package_list(&QueryPackageList::new().with_page_size(100)).unwrap_err();
        assert!(
            matches!(err.call(), Some(CallError::Transport { failure: TransportFailure::BodyTooLarge, .. })),
            "{err:?}"
        );
    });
}

#[test]
fn a_refused_connection_was_never_sent() {
    bounded(|| {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = Client::new(config_for(&format!("http://127.0.0.1:{port}"))).unwrap();
        let err = client.query_upgrade_task_list(&QueryUpgradeTaskList::new()).unwrap_err();
        assert!(
            matches!(err.call(), Some(CallError::Transport { failure: TransportFailure::ConnectFailed, .. })),
            "{err:?}"
        );
        assert!(!err.request_may_have_been_sent());
        assert!(err.is_retryable());
    });
}

#[test]
fn secrets_never_print() {
    bounded(|| {
        let sim = Sim::start(SimConfig::default());
        let client = sim.client();
        client.login().unwrap();
        let printed = format!("{client:?} {:?}", sim.config());
        assert!(!printed.contains(DEFAULT_SECRET), "{printed}");
        assert!(printed.contains("[redacted]"));

        let wrong = Client::new(ClientConfig::new(
            BaseUrl::parse(sim.sim().base_url()).unwrap(),
            AppId::new(DEFAULT_APP_ID).unwrap(),
            AppSecret::new("the-wrong-secret-123"),
        ))
        .unwrap();
        let err = wrong.login().unwrap_err();
        let mut printed = format!("{err} {err:?} {wrong:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            printed.push_str(&cause.to_string());
            source = cause.source();
        }
        assert!(!printed.contains("the-wrong-secret-123"), "{printed}");
    });
}
