//! Request snapshots: one representative request per endpoint, rendered as request line, headers and body
//! and compared with text checked by hand against the platform contract.

use iot_model::{
    AccessToken, AppId, AppSecret, BatchSelect, BatchTaskRequest, BatchTaskType, Command, CreateUpgradeTask,
    DeviceCmdParam, DeviceCmdType, DeviceId, ExecuteType, FileId, FileType, LoginForm, LogoutRequest, OperateDevices,
    OperatePolicy, OperationId, OperationStatus, RefreshToken, RefreshTokenRequest, SubOperationStatus, Tag,
    TaskDetailStatus, TaskId, Timestamp,
};
use iot_proto::*;

use crate::support::{app_id, auth, base, token};

/// Renders a request: request line, headers sorted by name, a blank line, and the body.
fn render(req: &http::Request<Vec<u8>>) -> String {
    let mut headers: Vec<String> = req.headers().iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap())).collect();
    headers.sort();
    let mut out = format!("{} {}\n", req.method(), req.uri());
    for h in headers {
        out.push_str(&h);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(std::str::from_utf8(req.body()).unwrap());
    out
}

/// Builds `ep` with the test credentials, checks the rules every request obeys, and compares its rendering.
fn snapshot<E: Endpoint>(ep: E, expected: &str) {
    let (app, tok) = (app_id(), token());
    let req = ep.try_into_http_request(&base(), Some(auth(&app, &tok))).unwrap();
    let body = std::str::from_utf8(req.body()).unwrap();
    assert!(!body.contains("null"), "{}: body has null: {body}", E::META.name);
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            assert!(!pair.is_empty() && !pair.ends_with('='), "{}: empty query parameter in {q}", E::META.name);
        }
    }
    if E::META.auth {
        for name in [APP_KEY, "authorization"] {
            let value = req.headers().get(name).unwrap_or_else(|| panic!("{}: no {name}", E::META.name));
            assert!(value.is_sensitive(), "{}: {name} is not marked sensitive", E::META.name);
        }
    } else {
        assert!(req.headers().get(APP_KEY).is_none(), "{}: app_key on an unauthenticated call", E::META.name);
        assert!(req.headers().get("authorization").is_none(), "{}: bearer on an unauthenticated call", E::META.name);
    }
    assert_eq!(render(&req), expected, "{}", E::META.name);
}

#[test]
fn login_is_a_form_without_auth_headers() {
    let form = LoginForm::new(AppId::new("app-1").unwrap(), AppSecret::new("s3cr3t+/= x"));
    snapshot(
        Login::new(form),
        "POST https://iot.example.com:8743/iocm/app/sec/v1.1.0/login
accept: application/json
content-type: application/x-www-form-urlencoded

appId=app-1&secret=s3cr3t%2B%2F%3D+x",
    );
}

#[test]
fn refresh_is_json_without_auth_headers() {
    let body =
        RefreshTokenRequest::new(AppId::new("app-1").unwrap(), AppSecret::new("s3cr3t"), RefreshToken::new("rt-9"));
    snapshot(
        RefreshAccessToken::new(body),
        r#"POST https://iot.example.com:8743/iocm/app/sec/v1.1.0/refreshToken
accept: application/json
content-type: application/json

{"appId":"app-1","secret":"s3cr3t","refreshToken":"rt-9"}"#,
    );
}

#[test]
fn logout_carries_auth_headers_and_the_token_body() {
    snapshot(
        Logout::new(LogoutRequest::new(AccessToken::new("tok-123"))),
        r#"POST https://iot.example.com:8743/iocm/app/sec/v1.1.0/logout
accept: application/json
app_key: app-1
authorization: Bearer tok-123
content-type: application/json

{"accessToken":"tok-123"}"#,
    );
}

#[test]
fn query_package_list() {
    let mut q = QueryPackageList::new();
    q.file_type = Some(FileType::FirmwarePackage);
    q.device_type = Some("Water Meter".to_owned());
    q.page_no = Some(0);
    q.page_size = Some(10);
    snapshot(
        q,
        "GET https://iot.example.com:8743/iodm/northbound/v1.5.0/category?fileType=firmwarePackage&deviceType=Water%20Meter&pageNo=0&pageSize=10
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn query_package() {
    snapshot(
        QueryPackage::new(FileId::new("file-1").unwrap()),
        "GET https://iot.example.com:8743/iodm/northbound/v1.5.0/category/file-1
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn delete_package_encodes_the_id() {
    snapshot(
        DeletePackage::new(FileId::new("file 2/3").unwrap()),
        "DELETE https://iot.example.com:8743/iodm/northbound/v1.5.0/category/file%202%2F3
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn create_software_upgrade_task_by_devices() {
    let mut targets = OperateDevices::new();
    targets.devices = Some(vec![DeviceId::new("dev-1").unwrap(), DeviceId::new("dev-2").unwrap()]);
    let policy = OperatePolicy::new().with_execute_type(ExecuteType::Now);
    let body = CreateUpgradeTask::new(FileId::new("file-1").unwrap(), targets).with_policy(policy);
    snapshot(
        CreateSoftwareUpgradeTask::new(body),
        r#"POST https://iot.example.com:8743/iodm/northbound/v1.5.0/operations/softwareUpgrade
accept: application/json
app_key: app-1
authorization: Bearer tok-123
content-type: application/json

{"fileId":"file-1","targets":{"devices":["dev-1","dev-2"]},"policy":{"executeType":"now"}}"#,
    );
}

#[test]
fn create_firmware_upgrade_task_by_groups_in_a_window() {
    let targets = OperateDevices::new()
        .with_device_groups(vec!["north".to_owned()])
        .with_device_type("WaterMeter".to_owned())
        .with_model("WM-1".to_owned())
        .with_manufacturer_name("Acme".to_owned());
    let policy = OperatePolicy::new()
        .with_execute_type(ExecuteType::Custom)
        .with_start_time(Timestamp::parse("20300101T000000Z").unwrap())
        .with_end_time(Timestamp::parse("20300101T000500Z").unwrap())
        .with_retry_type(true)
        .with_retry_times(3);
    let body = CreateUpgradeTask::new(FileId::new("fw-2").unwrap(), targets).with_policy(policy);
    snapshot(
        CreateFirmwareUpgradeTask::new(body),
        r#"POST https://iot.example.com:8743/iodm/northbound/v1.5.0/operations/firmwareUpgrade
accept: application/json
app_key: app-1
authorization: Bearer tok-123
content-type: application/json

{"fileId":"fw-2","targets":{"deviceGroups":["north"],"deviceType":"WaterMeter","model":"WM-1","manufacturerName":"Acme"},"policy":{"executeType":"custom","startTime":"20300101T000000Z","endTime":"20300101T000500Z","retryType":true,"retryTimes":3}}"#,
    );
}

#[test]
fn query_upgrade_task() {
    snapshot(
        QueryUpgradeTask::new(OperationId::new("op-1").unwrap()),
        "GET https://iot.example.com:8743/iodm/northbound/v1.5.0/operations/op-1
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn query_sub_operations() {
    let mut q = QuerySubOperations::new(OperationId::new("op-1").unwrap());
    q.sub_operation_status = Some(SubOperationStatus::Fail);
    q.page_no = Some(2);
    q.page_size = Some(50);
    snapshot(
        q,
        "GET https://iot.example.com:8743/iodm/northbound/v1.5.0/operations/op-1/subOperations?subOperationStatus=fail&pageNo=2&pageSize=50
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn query_upgrade_task_list_encodes_filters() {
    let q = QueryUpgradeTaskList::new()
        .with_operation_status(OperationStatus::Failed)
        .with_manufacturer_name("A&B=C".to_owned())
        .with_device_id(DeviceId::new("dev-1").unwrap())
        .with_page_size(100);
    snapshot(
        q,
        "GET https://iot.example.com:8743/iodm/northbound/v1.5.0/operations?operationStatus=failed&manufacturerName=A%26B%3DC&deviceId=dev-1&pageSize=100
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn filter_setters_take_str_and_string() {
    let owned = String::from("WM-200");
    let q = QueryUpgradeTaskList::new()
        .with_device_type("Water Meter")
        .with_model(owned.clone())
        .with_manufacturer_name(&owned);
    assert_eq!(q.device_type.as_deref(), Some("Water Meter"));
    assert_eq!(q.model.as_deref(), Some("WM-200"));
    assert_eq!(q.manufacturer_name.as_deref(), Some("WM-200"));
    let p = QueryPackageList::new().with_device_type("Water Meter").with_version(String::from("V1"));
    assert_eq!(p.device_type.as_deref(), Some("Water Meter"));
    assert_eq!(p.version.as_deref(), Some("V1"));
    snapshot(
        q,
        "GET https://iot.example.com:8743/iodm/northbound/v1.5.0/operations?deviceType=Water%20Meter&model=WM-200&manufacturerName=WM-200
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn a_typed_device_command_param_builds_the_same_request_as_a_hand_built_object() {
    let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Switch".to_owned(), "SET".to_owned()))
        .with_device_list(vec![DeviceId::new("dev-1").unwrap()]);
    let by_hand = serde_json::to_value(&param).unwrap().as_object().unwrap().clone();
    let typed = BatchTaskRequest::device_cmd(AppId::new("app-1").unwrap(), 60, "lights", param);
    let hand_built =
        BatchTaskRequest::new(AppId::new("app-1").unwrap(), 60, "lights".to_owned(), BatchTaskType::DeviceCmd, by_hand);
    let (app, tok) = (app_id(), token());
    let typed = CreateBatchTask::new(typed).try_into_http_request(&base(), Some(auth(&app, &tok))).unwrap();
    let hand_built = CreateBatchTask::new(hand_built).try_into_http_request(&base(), Some(auth(&app, &tok))).unwrap();
    assert_eq!(render(&typed), render(&hand_built));
}

#[test]
fn create_batch_task_with_a_device_command() {
    let mut command = Command::new("Switch".to_owned(), "SET".to_owned());
    command.paras = Some(serde_json::json!({"state": "on"}).as_object().unwrap().clone());
    let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, command)
        .with_device_list(vec![DeviceId::new("dev-1").unwrap()])
        .with_max_retransmit(2);
    let param = serde_json::to_value(param).unwrap().as_object().unwrap().clone();
    let body =
        BatchTaskRequest::new(AppId::new("app-1").unwrap(), 60, "lights".to_owned(), BatchTaskType::DeviceCmd, param)
            .with_tags(vec![Tag::new("site".to_owned(), "north".to_owned())]);
    snapshot(
        CreateBatchTask::new(body),
        r#"POST https://iot.example.com:8743/iocm/app/batchtask/v1.1.0/tasks
accept: application/json
app_key: app-1
authorization: Bearer tok-123
content-type: application/json

{"appId":"app-1","timeout":60,"taskName":"lights","taskType":"DeviceCmd","param":{"command":{"method":"SET","paras":{"state":"on"},"serviceId":"Switch"},"deviceList":["dev-1"],"maxRetransmit":2,"type":"DeviceList"},"tags":[{"tagName":"site","tagValue":"north"}]}"#,
    );
}

#[test]
fn query_batch_task() {
    snapshot(
        QueryBatchTask::new(TaskId::new("task-1").unwrap()).with_select(BatchSelect::Tag),
        "GET https://iot.example.com:8743/iocm/app/batchtask/v1.1.0/tasks/task-1?select=tag
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn query_task_details_has_the_task_id_in_the_query() {
    let q = QueryTaskDetails::new(TaskId::new("task-1").unwrap())
        .with_status(TaskDetailStatus::Fail)
        .with_page_no(0)
        .with_page_size(250);
    snapshot(
        q,
        "GET https://iot.example.com:8743/iocm/app/batchtask/v1.1.0/taskDetails?taskId=task-1&status=Fail&pageNo=0&pageSize=250
accept: application/json
app_key: app-1
authorization: Bearer tok-123

",
    );
}

#[test]
fn every_endpoint_has_a_snapshot() {
    // One snapshot test per endpoint above; the names are checked against the spec's endpoint list.
    let source = include_str!("snapshots.rs");
    for id in EndpointId::ALL {
        let name = id.meta().name;
        assert!(source.contains(&format!("{name}::new(")), "no snapshot builds {name}");
    }
}
