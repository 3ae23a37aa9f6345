//! Validation tables: every cross-field rule of `iot_proto::rules` and every limit of the spec, with the field
//! path and platform code the client reports, and the same code (at the catalog's status) from the server.

use iot_model::{
    AppId, AppSecret, BatchTaskRequest, BatchTaskType, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType,
    DeviceId, ExecuteType, FileId, JsonMap, LoginForm, OperateDevices, OperatePolicy, OperationId, RefreshToken,
    RefreshTokenRequest, Tag, TaskId, Timestamp, WireEnum,
};
use iot_proto::endpoint::BodyKind;
use iot_proto::server::error_response;
use iot_proto::*;

use crate::support::{app_id, auth, base, spec_limit_codes, token};

/// How the server side is shown the broken request.
enum Server {
    /// The valid twin's request with the broken request's body.
    Body,
    /// The valid twin's request with the first string replaced by the second in its URI.
    Uri(String, String),
    /// The breakage cannot be put on the wire (an empty query value reads as absent).
    ClientOnly,
}

/// Collects the outcome of every row, so that one run reports every broken rule at once.
#[derive(Default)]
struct Table {
    failures: Vec<String>,
}

fn uri(from: &str, to: &str) -> Server {
    Server::Uri(from.to_owned(), to.to_owned())
}

fn build<E: Endpoint>(ep: &E) -> Result<http::Request<Vec<u8>>, IntoHttpError> {
    let (app, tok) = (app_id(), token());
    ep.try_into_http_request(&base(), Some(auth(&app, &tok)))
}

fn catalog_status(code: &str) -> Option<u16> {
    ERROR_CATALOG.iter().find(|e| e.code == code).and_then(|e| e.statuses.first().copied())
}

fn encode_body<E: Endpoint>(ep: &E) -> Vec<u8> {
    match E::META.body {
        BodyKind::Json => serde_json::to_vec(ep.body()).unwrap(),
        BodyKind::Form => serde_urlencoded::to_string(ep.body()).unwrap().into_bytes(),
        _ => Vec::new(),
    }
}

/// `req` with `from` replaced by `to` in its URI.
fn with_uri(req: &http::Request<Vec<u8>>, from: &str, to: &str) -> Result<http::Request<Vec<u8>>, String> {
    let uri = req.uri().to_string();
    if !uri.contains(from) {
        return Err(format!("{uri} does not contain {from}"));
    }
    let mut out = req.clone();
    *out.uri_mut() = uri.replacen(from, to, 1).parse().map_err(|e| format!("{e}"))?;
    Ok(out)
}

impl Table {
    /// `invalid` must fail validation at `field` with `code`, and never be built; the server must answer the
    /// same code (or the endpoint's rejection when the rule has none) at the catalog's status.
    fn rejects<E: Endpoint>(
        &mut self,
        name: &str,
        valid: &E,
        invalid: &E,
        field: &str,
        code: Option<&str>,
        server: Server,
    ) {
        if let Err(msg) = self.check_rejects(valid, invalid, field, code, server) {
            self.failures.push(format!("{name}: {msg}"));
        }
    }

    fn check_rejects<E: Endpoint>(
        &self,
        valid: &E,
        invalid: &E,
        field: &str,
        code: Option<&str>,
        server: Server,
    ) -> Result<(), String> {
        valid.validate().map_err(|e| format!("the valid twin is refused: {e}"))?;
        let err = invalid.validate().err().ok_or("accepted")?;
        if err.field != field || err.code.as_ref().map(ErrorCode::as_str) != code {
            return Err(format!("expected {field} / {code:?}, got {} / {:?} ({})", err.field, err.code, err.rule));
        }
        match build(invalid) {
            Err(IntoHttpError::Invalid(e)) if e == err => {}
            other => return Err(format!("the client built or failed differently: {other:?}")),
        }
        let good = build(valid).map_err(|e| format!("{e:?}"))?;
        E::try_from_http_request(&good).map_err(|e| format!("the server refuses the valid twin: {e}"))?;
        let bad = match server {
            Server::Body => {
                let mut bad = good.clone();
                *bad.body_mut() = encode_body(invalid);
                bad
            }
            Server::Uri(from, to) => with_uri(&good, &from, &to)?,
            Server::ClientOnly => return Ok(()),
        };
        self.server_answers(&bad, code.unwrap_or(E::META.rejection.as_str()))
    }

    /// The server must refuse `req` with `code` at the catalog's status, and the client must read the
    /// server's error answer back as the same code and status.
    fn server_answers(&self, req: &http::Request<Vec<u8>>, code: &str) -> Result<(), String> {
        let api = dispatch(req).err().ok_or_else(|| format!("the server accepted {req:?}"))?;
        if api.code.as_ref().map(ErrorCode::as_str) != Some(code) {
            return Err(format!("server answered {:?}, expected {code} ({:?})", api.code, api.description));
        }
        let status = catalog_status(code).ok_or_else(|| format!("{code} is not in the catalog"))?;
        if api.status.as_u16() != status {
            return Err(format!("server status {} for {code}, catalog says {status}", api.status));
        }
        let answer = error_response(&api);
        match QueryUpgradeTask::try_from_http_response(&answer) {
            Err(FromHttpResponseError::Api(back)) if back.code == api.code && back.status == api.status => Ok(()),
            other => Err(format!("the client read the error answer as {other:?}")),
        }
    }

    /// The server alone must refuse a request the client cannot build.
    fn server_rejects<E: Endpoint>(&mut self, name: &str, valid: &E, from: &str, to: &str, code: &str) {
        let result = build(valid)
            .map_err(|e| format!("{e:?}"))
            .and_then(|good| with_uri(&good, from, to))
            .and_then(|bad| self.server_answers(&bad, code));
        if let Err(msg) = result {
            self.failures.push(format!("{name}: {msg}"));
        }
    }

    /// `ep` sits on the accepted side of a limit: it validates, builds, and reads back equal.
    fn accepts<E: Endpoint>(&mut self, name: &str, ep: &E) {
        let outcome = build(ep)
            .map_err(|e| format!("refused: {e:?}"))
            .and_then(|req| E::try_from_http_request(&req).map_err(|e| format!("server refused: {e}")))
            .and_then(|back| if &back == ep { Ok(()) } else { Err("read back differently".to_owned()) });
        if let Err(msg) = outcome {
            self.failures.push(format!("{name}: {msg}"));
        }
    }

    fn finish(self) {
        assert!(self.failures.is_empty(), "{} failing rows:\n{}", self.failures.len(), self.failures.join("\n"));
    }
}

/// Reads a request as the endpoint it is routed to.
struct Read<'r>(&'r http::Request<Vec<u8>>);

impl EndpointVisitor for Read<'_> {
    type Output = Result<(), ApiError>;

    fn visit<E: Endpoint + Send + 'static>(self) -> Self::Output {
        E::try_from_http_request(self.0).map(drop)
    }
}

/// Routes a request and reads it with its endpoint's server side.
fn dispatch(req: &http::Request<Vec<u8>>) -> Result<(), ApiError> {
    let routed = server::Router::new()
        .route(req.method(), req.uri().path())
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    routed.endpoint.visit(Read(req))
}

// ---------------------------------------------------------------------------------------------------------
// Builders of valid requests.

fn devices(n: usize) -> Vec<DeviceId> {
    (0..n).map(|i| DeviceId::new(format!("dev-{i}")).unwrap()).collect()
}

fn by_devices(n: usize) -> OperateDevices {
    OperateDevices::new().with_devices(devices(n))
}

fn by_groups(groups: Vec<String>) -> OperateDevices {
    OperateDevices::new()
        .with_device_groups(groups)
        .with_device_type("WaterMeter".to_owned())
        .with_model("WM-1".to_owned())
        .with_manufacturer_name("Acme".to_owned())
}

fn upgrade(targets: OperateDevices, policy: Option<OperatePolicy>) -> CreateSoftwareUpgradeTask {
    let mut body = CreateUpgradeTask::new(FileId::new("file-1").unwrap(), targets);
    body.policy = policy;
    CreateSoftwareUpgradeTask::new(body)
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn custom(start: Option<&str>, end: Option<&str>) -> OperatePolicy {
    let mut p = OperatePolicy::new().with_execute_type(ExecuteType::Custom);
    p.start_time = start.map(t);
    p.end_time = end.map(t);
    p
}

fn now_policy() -> OperatePolicy {
    OperatePolicy::new().with_execute_type(ExecuteType::Now)
}

fn object(value: serde_json::Value) -> JsonMap<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

fn cmd_param(p: DeviceCmdParam) -> JsonMap<String, serde_json::Value> {
    object(serde_json::to_value(p).unwrap())
}

fn command() -> Command {
    Command::new("Switch".to_owned(), "SET".to_owned())
}

fn broadcast() -> DeviceCmdParam {
    DeviceCmdParam::new(DeviceCmdType::Broadcast, command())
}

fn batch(param: JsonMap<String, serde_json::Value>) -> CreateBatchTask {
    CreateBatchTask::new(BatchTaskRequest::new(
        AppId::new("app-1").unwrap(),
        60,
        "task".to_owned(),
        BatchTaskType::DeviceCmd,
        param,
    ))
}

fn batch_with(f: impl FnOnce(&mut BatchTaskRequest)) -> CreateBatchTask {
    let mut ep = batch(cmd_param(broadcast()));
    f(&mut ep.body);
    ep
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

// ---------------------------------------------------------------------------------------------------------
// The tables.

#[test]
fn paging_limits() {
    let mut table = Table::default();
    let with_size = |n: u32| QueryPackageList::new().with_page_size(n);
    table.rejects(
        "packages pageSize 0",
        &with_size(10),
        &with_size(0),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=0"),
    );
    table.rejects(
        "packages pageSize 101",
        &with_size(10),
        &with_size(101),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=101"),
    );
    table.accepts("packages pageSize 1", &with_size(1));
    table.accepts("packages pageSize 100", &with_size(100));

    let op = OperationId::new("op-1").unwrap();
    let subs = |n: u32| {
        let mut q = QuerySubOperations::new(op.clone());
        q.page_size = Some(n);
        q
    };
    table.rejects(
        "subtasks pageSize 0",
        &subs(10),
        &subs(0),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=0"),
    );
    table.rejects(
        "subtasks pageSize 101",
        &subs(10),
        &subs(101),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=101"),
    );
    table.accepts("subtasks pageSize 100", &subs(100));

    let tasks = |n: u32| QueryUpgradeTaskList::new().with_page_size(n);
    table.rejects(
        "tasks pageSize 0",
        &tasks(10),
        &tasks(0),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=0"),
    );
    table.rejects(
        "tasks pageSize 101",
        &tasks(10),
        &tasks(101),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=101"),
    );
    table.rejects(
        "tasks pageSize u32::MAX",
        &tasks(10),
        &tasks(u32::MAX),
        "pageSize",
        Some("123029"),
        uri("pageSize=10", "pageSize=4294967295"),
    );
    table.accepts("tasks pageSize 1", &tasks(1));

    let details = |n: u32| QueryTaskDetails::new(TaskId::new("task-1").unwrap()).with_page_size(n);
    table.rejects(
        "details pageSize 0",
        &details(25),
        &details(0),
        "pageSize",
        Some("100022"),
        uri("pageSize=25", "pageSize=0"),
    );
    table.rejects(
        "details pageSize 251",
        &details(25),
        &details(251),
        "pageSize",
        Some("100022"),
        uri("pageSize=25", "pageSize=251"),
    );
    table.accepts("details pageSize 1", &details(1));
    table.accepts("details pageSize 250", &details(250));

    // What only a hand-made request can carry.
    // An unreadable page number or size gets the family's page-limit code, like an out-of-range one.
    table.server_rejects("tasks pageSize not a number", &tasks(10), "pageSize=10", "pageSize=ten", "123029");
    table.server_rejects("tasks pageSize twice", &tasks(10), "pageSize=10", "pageSize=10&pageSize=20", "123029");
    table.server_rejects("tasks pageSize overflow", &tasks(10), "pageSize=10", "pageSize=4294967296", "123029");
    table.server_rejects("tasks pageNo negative", &tasks(10), "pageSize=10", "pageSize=10&pageNo=-1", "123029");
    table.server_rejects("details pageSize not a number", &details(25), "pageSize=25", "pageSize=x", "100022");
    table.server_rejects("details without taskId", &details(25), "taskId=task-1&", "", "100022");
    table.server_rejects("details pageNo negative", &details(25), "pageSize=25", "pageSize=25&pageNo=-1", "100022");
    table.finish();
}

#[test]
fn filter_and_id_limits() {
    let mut table = Table::default();
    let tasks = |s: &str| QueryUpgradeTaskList::new().with_device_type(s.to_owned());
    table.rejects("empty deviceType filter", &tasks("x"), &tasks(""), "deviceType", None, Server::ClientOnly);
    table.rejects(
        "deviceType filter 257",
        &tasks("x"),
        &tasks(&long(257)),
        "deviceType",
        None,
        uri("deviceType=x", &format!("deviceType={}", long(257))),
    );
    table.accepts("deviceType filter 256", &tasks(&long(256)));
    let model = QueryUpgradeTaskList::new().with_model(String::new());
    table.rejects("empty model filter", &tasks("x"), &model, "model", None, Server::ClientOnly);
    let maker = QueryUpgradeTaskList::new().with_manufacturer_name(long(257));
    table.rejects("manufacturerName filter 257", &tasks("x"), &maker, "manufacturerName", None, Server::ClientOnly);

    let mut version = QueryPackageList::new();
    version.version = Some(long(257));
    let mut fine = QueryPackageList::new();
    fine.version = Some("V1".to_owned());
    table.rejects("version filter 257", &fine, &version, "version", None, Server::ClientOnly);

    let details = |node: &str| QueryTaskDetails::new(TaskId::new("task-1").unwrap()).with_node_id(node.to_owned());
    table.rejects(
        "nodeId 257",
        &details("n"),
        &details(&long(257)),
        "nodeId",
        None,
        uri("nodeId=n", &format!("nodeId={}", long(257))),
    );
    table.rejects("empty nodeId", &details("n"), &details(""), "nodeId", None, Server::ClientOnly);

    // Identifiers the server must refuse when they arrive in a path or a query.
    let op = QueryUpgradeTask::new(OperationId::new("op-1").unwrap());
    table.server_rejects("operationId ..", &op, "/op-1", "/%2E%2E", "120015");
    table.server_rejects("operationId control character", &op, "/op-1", "/a%0Ab", "120015");
    table.server_rejects("operationId 257", &op, "/op-1", &format!("/{}", long(257)), "120015");
    let task = QueryBatchTask::new(TaskId::new("task-1").unwrap());
    table.server_rejects("taskId .", &task, "/task-1", "/%2E", "100022");
    let with_device = QueryUpgradeTaskList::new().with_device_id(DeviceId::new("dev-1").unwrap());
    table.server_rejects("deviceId control character", &with_device, "deviceId=dev-1", "deviceId=%00", "120015");
    table.server_rejects("path not UTF-8", &op, "/op-1", "/%FF", "120015");
    table.finish();
}

#[test]
fn upgrade_targets() {
    let mut table = Table::default();
    let ok = upgrade(by_devices(1), None);
    table.accepts("256 devices", &upgrade(by_devices(256), None));
    table.rejects("257 devices", &ok, &upgrade(by_devices(257), None), "targets.devices", Some("123024"), Server::Body);
    let groups = |n: usize| (0..n).map(|i| format!("group-{i}")).collect::<Vec<_>>();
    table.accepts("256 groups", &upgrade(by_groups(groups(256)), None));
    table.rejects(
        "257 groups",
        &ok,
        &upgrade(by_groups(groups(257)), None),
        "targets.deviceGroups",
        Some("123024"),
        Server::Body,
    );
    table.rejects(
        "group name 257",
        &ok,
        &upgrade(by_groups(vec![long(257)]), None),
        "targets.deviceGroups[0]",
        Some("123024"),
        Server::Body,
    );
    let both = by_groups(groups(1)).with_devices(devices(1));
    table.rejects("both targets", &ok, &upgrade(both, None), "targets.devices", Some("123023"), Server::Body);
    table.rejects(
        "neither target",
        &ok,
        &upgrade(OperateDevices::new(), None),
        "targets.devices",
        Some("123022"),
        Server::Body,
    );
    let empty = OperateDevices::new().with_devices(Vec::new()).with_device_groups(Vec::new());
    table.rejects("empty lists", &ok, &upgrade(empty, None), "targets.devices", Some("123022"), Server::Body);
    // Empty lists count as absent, so an empty group list beside devices is not "both".
    table.accepts("devices beside an empty group list", &upgrade(by_devices(2).with_device_groups(Vec::new()), None));

    let mut no_type = by_groups(groups(1));
    no_type.device_type = None;
    table.rejects(
        "groups without deviceType",
        &ok,
        &upgrade(no_type, None),
        "targets.deviceType",
        Some("123020"),
        Server::Body,
    );
    let empty_type = by_groups(groups(1)).with_device_type(String::new());
    table.rejects(
        "groups with empty deviceType",
        &ok,
        &upgrade(empty_type, None),
        "targets.deviceType",
        Some("123020"),
        Server::Body,
    );
    let mut no_model = by_groups(groups(1));
    no_model.model = None;
    table.rejects("groups without model", &ok, &upgrade(no_model, None), "targets.model", Some("123021"), Server::Body);
    let mut no_maker = by_groups(groups(1));
    no_maker.manufacturer_name = None;
    table.rejects(
        "groups without manufacturerName",
        &ok,
        &upgrade(no_maker, None),
        "targets.manufacturerName",
        Some("123019"),
        Server::Body,
    );
    let long_type = by_devices(1).with_device_type(long(257));
    table.rejects("deviceType 257", &ok, &upgrade(long_type, None), "targets.deviceType", None, Server::Body);

    // The same rules guard the firmware endpoint.
    let fw_ok = CreateFirmwareUpgradeTask::new(ok.body.clone());
    let fw_both = CreateFirmwareUpgradeTask::new(upgrade(by_groups(groups(1)).with_devices(devices(1)), None).body);
    table.rejects("firmware: both targets", &fw_ok, &fw_both, "targets.devices", Some("123023"), Server::Body);
    table.finish();
}

#[test]
fn upgrade_policy() {
    let mut table = Table::default();
    let ok = upgrade(by_devices(1), Some(now_policy()));
    let with = |p: OperatePolicy| upgrade(by_devices(1), Some(p));
    table.accepts("no policy", &upgrade(by_devices(1), None));
    table.rejects(
        "executeType missing",
        &ok,
        &with(OperatePolicy::new()),
        "policy.executeType",
        Some("123025"),
        Server::Body,
    );
    let unknown = OperatePolicy::new().with_execute_type(ExecuteType::from_wire("later"));
    table.rejects("executeType unknown", &ok, &with(unknown), "policy.executeType", Some("123025"), Server::Body);
    table.accepts("device_online", &with(OperatePolicy::new().with_execute_type(ExecuteType::DeviceOnline)));

    table.rejects(
        "custom without startTime",
        &ok,
        &with(custom(None, Some("20300101T010000Z"))),
        "policy.startTime",
        Some("123026"),
        Server::Body,
    );
    table.rejects(
        "custom without endTime",
        &ok,
        &with(custom(Some("20300101T010000Z"), None)),
        "policy.endTime",
        Some("123026"),
        Server::Body,
    );
    table.rejects(
        "start after end",
        &ok,
        &with(custom(Some("20300101T010000Z"), Some("20300101T000000Z"))),
        "policy.startTime",
        Some("123032"),
        Server::Body,
    );
    table.rejects(
        "window 299 s",
        &ok,
        &with(custom(Some("20300101T000000Z"), Some("20300101T000459Z"))),
        "policy.endTime",
        Some("123034"),
        Server::Body,
    );
    table.rejects(
        "window 0 s",
        &ok,
        &with(custom(Some("20300101T000000Z"), Some("20300101T000000Z"))),
        "policy.endTime",
        Some("123034"),
        Server::Body,
    );
    table.accepts("window 300 s", &with(custom(Some("20300101T000000Z"), Some("20300101T000500Z"))));
    // Times only matter for custom windows.
    table.accepts("now with times", &with(now_policy().with_start_time(t("20300101T000000Z"))));

    table.rejects(
        "retryType without retryTimes",
        &ok,
        &with(now_policy().with_retry_type(true)),
        "policy.retryTimes",
        Some("123028"),
        Server::Body,
    );
    for (n, accepted) in [(0, false), (1, true), (5, true), (6, false), (u32::MAX, false)] {
        let ep = with(now_policy().with_retry_type(true).with_retry_times(n));
        if accepted {
            table.accepts(&format!("retryTimes {n}"), &ep);
        } else {
            table.rejects(&format!("retryTimes {n}"), &ok, &ep, "policy.retryTimes", Some("123028"), Server::Body);
        }
    }
    table.accepts("retryType false without retryTimes", &with(now_policy().with_retry_type(false)));
    table.finish();
}

#[test]
fn start_in_the_past_needs_the_platform_clock() {
    let now = t("20300101T000000Z");
    let window = custom(Some("20291231T235959Z"), Some("20300101T010000Z"));
    // validate() cannot know the platform's clock ...
    assert_eq!(upgrade(by_devices(1), Some(window.clone())).validate(), Ok(()));
    // ... the clock-aware rule refuses the past start with 123033.
    let err = rules::policy_starts_in_future(&window, now).unwrap_err();
    assert_eq!((err.field.as_str(), err.code), ("policy.startTime", Some(ErrorCode::StartInPast)));
    assert_eq!(catalog_status("123033"), Some(400));
    assert_eq!(ApiError::new(ErrorCode::StartInPast, "").status, http::StatusCode::BAD_REQUEST);
    assert_eq!(rules::policy_starts_in_future(&custom(Some("20300101T000000Z"), None), now), Ok(()));
    assert_eq!(rules::policy_starts_in_future(&now_policy().with_start_time(t("20000101T000000Z")), now), Ok(()));
}

#[test]
fn batch_task_limits() {
    let mut table = Table::default();
    let ok = batch(cmd_param(broadcast()));
    for (n, accepted) in [(9, false), (10, true), (2880, true), (2881, false), (0, false)] {
        let ep = batch_with(|b| b.timeout = n);
        if accepted {
            table.accepts(&format!("timeout {n}"), &ep);
        } else {
            table.rejects(&format!("timeout {n}"), &ok, &ep, "timeout", Some("100022"), Server::Body);
        }
    }
    table.rejects("taskName empty", &ok, &batch_with(|b| b.task_name.clear()), "taskName", None, Server::Body);
    table.rejects("taskName 257", &ok, &batch_with(|b| b.task_name = long(257)), "taskName", None, Server::Body);
    table.accepts("taskName 256", &batch_with(|b| b.task_name = "é".repeat(256)));
    table.rejects(
        "taskType unknown",
        &ok,
        &batch_with(|b| b.task_type = BatchTaskType::from_wire("DeviceZap")),
        "taskType",
        Some("100022"),
        Server::Body,
    );
    let tag = |n: &str, v: &str| Tag::new(n.to_owned(), v.to_owned());
    table.rejects(
        "257 tags",
        &ok,
        &batch_with(|b| b.tags = Some(vec![tag("a", "b"); 257])),
        "tags",
        None,
        Server::Body,
    );
    table.accepts("256 tags", &batch_with(|b| b.tags = Some(vec![tag("a", "b"); 256])));
    table.rejects(
        "tagName 257",
        &ok,
        &batch_with(|b| b.tags = Some(vec![tag("a", "b"), tag(&long(257), "b")])),
        "tags[1].tagName",
        None,
        Server::Body,
    );
    table.rejects(
        "tagValue 257",
        &ok,
        &batch_with(|b| b.tags = Some(vec![tag("a", &long(257))])),
        "tags[0].tagValue",
        None,
        Server::Body,
    );
    table.finish();
}

#[test]
fn device_cmd_param_rules() {
    let mut table = Table::default();
    let ok = batch(cmd_param(broadcast()));
    let with = |p: DeviceCmdParam| batch(cmd_param(p));
    let kind = |k: DeviceCmdType| DeviceCmdParam::new(k, command());
    let code = Some("100022");
    table.rejects(
        "DeviceList without deviceList",
        &ok,
        &with(kind(DeviceCmdType::DeviceList)),
        "param.deviceList",
        code,
        Server::Body,
    );
    table.rejects(
        "DeviceList with an empty list",
        &ok,
        &with(kind(DeviceCmdType::DeviceList).with_device_list(Vec::new())),
        "param.deviceList",
        code,
        Server::Body,
    );
    table.accepts("DeviceList", &with(kind(DeviceCmdType::DeviceList).with_device_list(devices(3))));
    table.rejects(
        "DeviceType without deviceType",
        &ok,
        &with(kind(DeviceCmdType::DeviceType)),
        "param.deviceType",
        code,
        Server::Body,
    );
    table.rejects(
        "DeviceType with an empty deviceType",
        &ok,
        &with(kind(DeviceCmdType::DeviceType).with_device_type(String::new())),
        "param.deviceType",
        code,
        Server::Body,
    );
    table.accepts("DeviceType", &with(kind(DeviceCmdType::DeviceType).with_device_type("WaterMeter".to_owned())));
    table.rejects(
        "DeviceArea without deviceLocation",
        &ok,
        &with(kind(DeviceCmdType::DeviceArea)),
        "param.deviceLocation",
        code,
        Server::Body,
    );
    table.accepts("DeviceArea", &with(kind(DeviceCmdType::DeviceArea).with_device_location("hall".to_owned())));
    table.rejects(
        "GroupList without groupList",
        &ok,
        &with(kind(DeviceCmdType::GroupList)),
        "param.groupList",
        code,
        Server::Body,
    );
    table.rejects(
        "GroupIdList without groupList",
        &ok,
        &with(kind(DeviceCmdType::GroupIdList)),
        "param.groupList",
        code,
        Server::Body,
    );
    table.accepts("GroupIdList", &with(kind(DeviceCmdType::GroupIdList).with_group_list(vec!["g-1".to_owned()])));
    table.rejects(
        "type unknown",
        &ok,
        &with(kind(DeviceCmdType::from_wire("Satellite"))),
        "param.type",
        code,
        Server::Body,
    );
    let mut no_service = broadcast();
    no_service.command.service_id.clear();
    table.rejects("serviceId empty", &ok, &with(no_service), "param.command.serviceId", code, Server::Body);
    let mut long_method = broadcast();
    long_method.command.method = long(257);
    table.rejects("method 257", &ok, &with(long_method), "param.command.method", code, Server::Body);
    table.rejects(
        "maxRetransmit 4",
        &ok,
        &with(broadcast().with_max_retransmit(4)),
        "param.maxRetransmit",
        code,
        Server::Body,
    );
    table.accepts("maxRetransmit 3", &with(broadcast().with_max_retransmit(3)));
    // `param` is a free JSON object: the rules run DeviceCmdParam's generated checks (the spec marks it
    // `validated`), so its caps and string limits are the spec's named limits.
    let max_devices = iot_model::limits::MAX_BATCH_DEVICES as usize;
    table.accepts(
        "deviceList at its cap",
        &with(kind(DeviceCmdType::DeviceList).with_device_list(devices(max_devices))),
    );
    table.rejects(
        "deviceList over its cap",
        &ok,
        &with(kind(DeviceCmdType::DeviceList).with_device_list(devices(max_devices + 1))),
        "param.deviceList",
        code,
        Server::Body,
    );
    let groups = |n: usize| (0..n).map(|i| format!("g-{i}")).collect::<Vec<_>>();
    let max_groups = iot_model::limits::MAX_BATCH_GROUPS as usize;
    table.accepts("groupList at its cap", &with(kind(DeviceCmdType::GroupList).with_group_list(groups(max_groups))));
    table.rejects(
        "groupList over its cap",
        &ok,
        &with(kind(DeviceCmdType::GroupList).with_group_list(groups(max_groups + 1))),
        "param.groupList",
        code,
        Server::Body,
    );
    let max_url = iot_model::limits::MAX_URL_LEN as usize;
    table.accepts("callbackUrl at its limit", &with(broadcast().with_callback_url(long(max_url))));
    table.rejects(
        "callbackUrl over its limit",
        &ok,
        &with(broadcast().with_callback_url(long(max_url + 1))),
        "param.callbackUrl",
        code,
        Server::Body,
    );
    let max_len = iot_model::limits::MAX_STRING_LEN as usize;
    let typed = |t: String| kind(DeviceCmdType::DeviceType).with_device_type(t);
    table.accepts("deviceType at its limit", &with(typed(long(max_len))));
    table.rejects(
        "deviceType over its limit",
        &ok,
        &with(typed(long(max_len + 1))),
        "param.deviceType",
        code,
        Server::Body,
    );
    table.rejects(
        "groupTag over its limit",
        &ok,
        &with(broadcast().with_group_tag(long(max_len + 1))),
        "param.groupTag",
        code,
        Server::Body,
    );
    let no_command = object(serde_json::json!({"type": "Broadcast"}));
    table.rejects("param without command", &ok, &batch(no_command), "param", code, Server::Body);
    let wrong_shape = object(
        serde_json::json!({"type": "DeviceList", "deviceList": "dev-1", "command": {"serviceId": "S", "method": "M"}}),
    );
    table.rejects("deviceList not a list", &ok, &batch(wrong_shape), "param", code, Server::Body);
    // Other task types keep their param as given.
    table.accepts(
        "DeviceReg param is free",
        &batch_with(|b| {
            b.task_type = BatchTaskType::DeviceReg;
            b.param = object(serde_json::json!({"fileId": "f-1"}));
        }),
    );
    table.finish();
}

#[test]
fn authentication_bodies() {
    let mut table = Table::default();
    let login = |secret: String| Login::new(LoginForm::new(AppId::new("app-1").unwrap(), AppSecret::new(secret)));
    table.rejects("login secret 257", &login("s".to_owned()), &login(long(257)), "secret", None, Server::Body);
    table.accepts("login secret 256", &login("s".repeat(256)));
    let refresh = |secret: String| {
        RefreshAccessToken::new(RefreshTokenRequest::new(
            AppId::new("app-1").unwrap(),
            AppSecret::new(secret),
            RefreshToken::new("rt-1"),
        ))
    };
    table.rejects("refresh secret 257", &refresh("s".to_owned()), &refresh(long(257)), "secret", None, Server::Body);
    table.accepts("refresh secret 256", &refresh("s".repeat(256)));
    table.finish();
}

#[test]
fn server_refuses_malformed_bodies_with_the_endpoint_rejection() {
    // Bodies no typed request can produce: the server answers the endpoint's rejection code.
    type MakeRequest = Box<dyn Fn() -> http::Request<Vec<u8>>>;
    let cases: [(&str, MakeRequest, &str); 4] = [
        (
            "login form without secret",
            Box::new(|| {
                let mut r = build(&Login::new(LoginForm::new(app_id(), AppSecret::new("s")))).unwrap();
                *r.body_mut() = b"appId=app-1".to_vec();
                r
            }),
            "102202",
        ),
        (
            "refresh body not JSON",
            Box::new(|| {
                let body = RefreshTokenRequest::new(app_id(), AppSecret::new("s"), RefreshToken::new("r"));
                let mut r = build(&RefreshAccessToken::new(body)).unwrap();
                *r.body_mut() = b"appId=app-1".to_vec();
                r
            }),
            "50400",
        ),
        (
            "upgrade body with a malformed time",
            Box::new(|| {
                let mut r = build(&upgrade(by_devices(1), None)).unwrap();
                *r.body_mut() =
                    br#"{"fileId":"f","targets":{"devices":["d"]},"policy":{"executeType":"custom","startTime":"2030-01-01"}}"#
                        .to_vec();
                r
            }),
            "120015",
        ),
        (
            "batch body with a string timeout",
            Box::new(|| {
                let mut r = build(&batch(cmd_param(broadcast()))).unwrap();
                *r.body_mut() =
                    br#"{"appId":"a","timeout":"60","taskName":"t","taskType":"DeviceCmd","param":{}}"#.to_vec();
                r
            }),
            "100022",
        ),
    ];
    let mut table = Table::default();
    for (name, make, code) in cases {
        if let Err(msg) = table.server_answers(&make(), code) {
            table.failures.push(format!("{name}: {msg}"));
        }
    }
    table.finish();
}

#[test]
fn the_tables_cover_every_rule_and_limit() {
    // A scan of rules.rs and of the spec for every code and field a rule names; each must have a row above.
    let rules_src = include_str!("../../src/rules.rs");
    let mut rule_codes = Vec::new();
    let mut rule_fields = Vec::new();
    for (i, _) in rules_src.match_indices("Some(\"") {
        let rest = &rules_src[i + 6..];
        rule_codes.push(rest[..rest.find('"').unwrap()].to_owned());
    }
    for call in ["fail(\"", "known(\"", "len(\"", "range(\""] {
        for (i, _) in rules_src.match_indices(call) {
            let rest = &rules_src[i + call.len()..];
            rule_fields.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    assert!(rule_fields.len() >= 15, "the scan of rules.rs found too little: {rule_fields:?}");
    let this = include_str!("validation.rs");
    for code in rule_codes.iter().chain(spec_limit_codes().iter()) {
        assert!(this.contains(&format!("\"{code}\"")), "no validation row for code {code}");
    }
    for field in &rule_fields {
        assert!(
            this.contains(&format!("\"{field}\"")) || this.contains(&format!(".{field}\"")),
            "no validation row for field {field} of rules.rs"
        );
    }
    // And every code a rule can produce is in the catalog with a status.
    for code in rule_codes.iter().chain(spec_limit_codes().iter()) {
        assert!(catalog_status(code).is_some(), "{code} has no catalog status");
    }
}

/// A JSON body followed by anything but whitespace is refused with the endpoint family's rejection code, for
/// every endpoint with a JSON body; trailing whitespace stays fine.
#[test]
fn json_bodies_with_trailing_bytes_are_refused() {
    let upgrade = build(&upgrade(by_devices(1), None)).unwrap();
    let batch = build(&batch(cmd_param(broadcast()))).unwrap();
    let refresh = build(&RefreshAccessToken::new(RefreshTokenRequest::new(
        AppId::new("app-1").unwrap(),
        AppSecret::new("s"),
        RefreshToken::new("r"),
    )))
    .unwrap();
    let cases = [(upgrade, "120015"), (batch, "100022"), (refresh, RefreshAccessToken::META.rejection.as_str())];
    for (good, code) in cases {
        dispatch(&good).unwrap();
        let mut spaced = good.clone();
        spaced.body_mut().extend_from_slice(b" \r\n\t ");
        dispatch(&spaced).unwrap();
        for tail in [&b"x"[..], b"{}", b" 1", b"]", b"\0"] {
            let mut bad = good.clone();
            bad.body_mut().extend_from_slice(tail);
            let err = dispatch(&bad).unwrap_err();
            assert_eq!(err.code.as_ref().map(ErrorCode::as_str), Some(code), "{tail:?}: {err}");
            assert_eq!(err.status, 400, "{tail:?}");
        }
    }
}
