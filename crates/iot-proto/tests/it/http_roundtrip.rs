//! HTTP round trips of every endpoint: a request the client builds is read back equal by the server side and
//! routed to its endpoint; an answer the server encodes is read back equal by the client side.

use std::cell::Cell;

use iot_model::strategies;
use iot_model::strategies_support as s;
use iot_model::{
    AppId, BatchTaskRequest, BatchTaskType, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, DeviceId, ExecuteType,
    OperatePolicy, WireEnum,
};
use iot_proto::server::{Router, bearer_auth};
use iot_proto::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{app_id, auth, base, token};

/// Cases per endpoint for requests and for answers.
const CASES: u32 = 128;

fn fail(context: &str, e: impl std::fmt::Debug) -> TestCaseError {
    TestCaseError::fail(format!("{context}: {e:?}"))
}

/// Checks one request; returns whether validation accepted it.
fn check_request<E: Endpoint>(ep: &E, router: &Router) -> Result<bool, TestCaseError> {
    let (app, tok) = (app_id(), token());
    let built = ep.try_into_http_request(&base(), Some(auth(&app, &tok)));
    if let Err(rule) = ep.validate() {
        // A request that breaks the contract is never built, and the build reports the same violation.
        prop_assert_eq!(built.err(), Some(IntoHttpError::Invalid(rule)));
        return Ok(false);
    }
    let req = built.map_err(|e| fail("build", e))?;
    let back = E::try_from_http_request(&req).map_err(|e| fail(&format!("server read {req:?}"), e))?;
    prop_assert_eq!(&back, ep);
    let routed = router.route(req.method(), req.uri().path()).map_err(|e| fail("route", e))?;
    prop_assert_eq!(routed.endpoint, E::META.id);
    prop_assert_eq!(req.method(), &E::META.method);
    if E::META.auth {
        let (sent_app, sent_token) = bearer_auth(&req).ok_or_else(|| fail("auth headers", req.headers()))?;
        prop_assert_eq!(sent_app, app.as_str());
        prop_assert_eq!(sent_token, tok);
    } else {
        prop_assert!(req.headers().get(APP_KEY).is_none());
        prop_assert!(req.headers().get(http::header::AUTHORIZATION).is_none());
    }
    Ok(true)
}

/// Runs `CASES` requests through [`check_request`] and requires that most of them were valid, so that the
/// round trip is not vacuous.
fn run_requests<E: Endpoint>(strategy: impl Strategy<Value = E>) {
    let router = Router::new();
    let accepted = Cell::new(0u32);
    let total = Cell::new(0u32);
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let outcome = runner.run(&strategy, |ep| {
        total.set(total.get() + 1);
        if check_request(&ep, &router)? {
            accepted.set(accepted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{} request round trip: {e}", E::META.name);
    }
    assert!(
        accepted.get() * 2 > total.get(),
        "{}: only {} of {} generated requests were valid",
        E::META.name,
        accepted.get(),
        total.get()
    );
}

/// Runs `CASES` answers through the server's encoder and the client's decoder.
fn run_responses<E: Endpoint>(strategy: impl Strategy<Value = E::Response>) {
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let outcome = runner.run(&strategy, |answer| {
        let resp = E::try_into_http_response(&answer);
        prop_assert_eq!(resp.status(), http::StatusCode::OK);
        let back = E::try_from_http_response(&resp).map_err(|e| fail("client read", e))?;
        prop_assert_eq!(back, answer);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{} answer round trip: {e}", E::META.name);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Request strategies.

/// A filter string: mostly valid (1 to 12 characters, including the ones that could reshape a query), now
/// and then anything, including empty.
fn filter() -> BoxedStrategy<String> {
    prop_oneof![4 => "[a-zA-Z0-9 &=?#%+/;]{1,12}", 1 => s::string()].boxed()
}

/// A page size: mostly within `1..=max`, now and then any number.
fn page_size(max: u32) -> BoxedStrategy<Option<u32>> {
    proptest::option::of(prop_oneof![8 => 1..=max, 1 => any::<u32>()]).boxed()
}

fn opt<T: std::fmt::Debug + 'static>(strategy: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    proptest::option::of(strategy).boxed()
}

/// Turns a generated upgrade task into one the contract accepts, keeping as much of it as possible.
fn fix_upgrade_task(mut t: CreateUpgradeTask, by_groups: bool, pick: usize, window: i64) -> CreateUpgradeTask {
    let filled = |s: &mut Option<String>, default: &str| {
        if s.as_deref().is_none_or(str::is_empty) {
            *s = Some(default.to_owned());
        }
    };
    if by_groups {
        t.targets.devices = None;
        if t.targets.device_groups.as_ref().is_none_or(Vec::is_empty) {
            t.targets.device_groups = Some(vec!["group-a".to_owned()]);
        }
        filled(&mut t.targets.device_type, "meter");
        filled(&mut t.targets.model, "m-1");
        filled(&mut t.targets.manufacturer_name, "acme");
    } else {
        t.targets.device_groups = None;
        if t.targets.devices.as_ref().is_none_or(Vec::is_empty) {
            t.targets.devices = Some(vec![DeviceId::new("dev-1").unwrap()]);
        }
    }
    if let Some(p) = t.policy.as_mut() {
        fix_policy(p, pick, window);
    }
    t
}

fn fix_policy(p: &mut OperatePolicy, pick: usize, window: i64) {
    if p.execute_type.as_ref().is_none_or(WireEnum::is_unknown) {
        p.execute_type = Some(ExecuteType::KNOWN[pick % ExecuteType::KNOWN.len()].clone());
    }
    if p.execute_type == Some(ExecuteType::Custom) {
        let start = p.start_time.unwrap_or_else(|| iot_model::Timestamp::from_unix_seconds(1_700_000_000).unwrap());
        p.start_time = Some(start);
        p.end_time = start.checked_add_secs(window);
    }
    if let Some(n) = p.retry_times {
        p.retry_times = Some(n % 5 + 1);
    }
    if p.retry_type == Some(true) && p.retry_times.is_none() {
        p.retry_times = Some(1 + (pick % 5) as u32);
    }
}

fn upgrade_task() -> BoxedStrategy<CreateUpgradeTask> {
    let fixed = (strategies::create_upgrade_task(), any::<bool>(), any::<usize>(), 300i64..1_000_000)
        .prop_map(|(t, by_groups, pick, window)| fix_upgrade_task(t, by_groups, pick, window));
    prop_oneof![9 => fixed, 1 => strategies::create_upgrade_task()].boxed()
}

/// Turns a generated DeviceCmd param into one the contract accepts.
fn fix_device_cmd(mut p: DeviceCmdParam) -> DeviceCmdParam {
    let filled = |s: &mut Option<String>, default: &str| {
        if s.as_deref().is_none_or(str::is_empty) {
            *s = Some(default.to_owned());
        }
    };
    match p.kind {
        DeviceCmdType::DeviceList if p.device_list.as_ref().is_none_or(Vec::is_empty) => {
            p.device_list = Some(vec![DeviceId::new("dev-1").unwrap()]);
        }
        DeviceCmdType::DeviceType => filled(&mut p.device_type, "meter"),
        DeviceCmdType::DeviceArea => filled(&mut p.device_location, "hall-1"),
        DeviceCmdType::GroupList | DeviceCmdType::GroupIdList if p.group_list.as_ref().is_none_or(Vec::is_empty) => {
            p.group_list = Some(vec!["group-a".to_owned()]);
        }
        DeviceCmdType::Unknown(_) => p.kind = DeviceCmdType::Broadcast,
        _ => {}
    }
    if p.command.service_id.is_empty() {
        p.command.service_id = "Switch".to_owned();
    }
    if p.command.method.is_empty() {
        p.command.method = "SET".to_owned();
    }
    if let Some(n) = p.max_retransmit {
        p.max_retransmit = Some(n % 4);
    }
    p
}

fn batch_task() -> BoxedStrategy<BatchTaskRequest> {
    let fixed = (strategies::batch_task_request(), strategies::device_cmd_param(), any::<bool>()).prop_map(
        |(mut t, param, command)| {
            t.timeout = 10 + t.timeout % 2871;
            if t.task_name.is_empty() {
                t.task_name = "task".to_owned();
            }
            if command || t.task_type.is_unknown() {
                t.task_type = BatchTaskType::DeviceCmd;
            }
            if t.task_type == BatchTaskType::DeviceCmd {
                let value = serde_json::to_value(fix_device_cmd(param)).unwrap();
                t.param = value.as_object().unwrap().clone();
            }
            t
        },
    );
    prop_oneof![9 => fixed, 1 => strategies::batch_task_request()].boxed()
}

fn query_package_list() -> impl Strategy<Value = QueryPackageList> {
    (
        opt(s::wire_enum()),
        (opt(filter()), opt(filter()), opt(filter()), opt(filter())),
        opt(any::<u32>().boxed()),
        page_size(100),
    )
        .prop_map(|(file_type, (device_type, model, manufacturer_name, version), page_no, page_size)| {
            let mut q = QueryPackageList::new();
            q.file_type = file_type;
            q.device_type = device_type;
            q.model = model;
            q.manufacturer_name = manufacturer_name;
            q.version = version;
            q.page_no = page_no;
            q.page_size = page_size;
            q
        })
}

fn query_sub_operations() -> impl Strategy<Value = QuerySubOperations> {
    (s::id(iot_model::OperationId::new), opt(s::wire_enum()), opt(any::<u32>().boxed()), page_size(100)).prop_map(
        |(id, status, page_no, page_size)| {
            let mut q = QuerySubOperations::new(id);
            q.sub_operation_status = status;
            q.page_no = page_no;
            q.page_size = page_size;
            q
        },
    )
}

fn query_upgrade_task_list() -> impl Strategy<Value = QueryUpgradeTaskList> {
    (
        (opt(s::wire_enum()), opt(s::wire_enum())),
        (opt(filter()), opt(filter()), opt(filter())),
        opt(s::id(DeviceId::new)),
        opt(any::<u32>().boxed()),
        page_size(100),
    )
        .prop_map(|((kind, status), (device_type, model, manufacturer_name), device_id, page_no, page_size)| {
            let mut q = QueryUpgradeTaskList::new();
            q.operation_type = kind;
            q.operation_status = status;
            q.device_type = device_type;
            q.model = model;
            q.manufacturer_name = manufacturer_name;
            q.device_id = device_id;
            q.page_no = page_no;
            q.page_size = page_size;
            q
        })
}

fn query_batch_task() -> impl Strategy<Value = QueryBatchTask> {
    (s::id(iot_model::TaskId::new), opt(s::id(AppId::new)), opt(s::wire_enum())).prop_map(|(id, app, select)| {
        let mut q = QueryBatchTask::new(id);
        q.app_id = app;
        q.select = select;
        q
    })
}

fn query_task_details() -> impl Strategy<Value = QueryTaskDetails> {
    (
        (s::id(iot_model::TaskId::new), opt(s::id(AppId::new)), opt(s::wire_enum())),
        (opt(any::<u32>().boxed()), opt(filter())),
        (opt(s::id(DeviceId::new)), opt(s::id(iot_model::CommandId::new))),
        opt(any::<u32>().boxed()),
        page_size(250),
    )
        .prop_map(|((id, app, status), (index, node_id), (device_id, command_id), page_no, page_size)| {
            let mut q = QueryTaskDetails::new(id);
            q.app_id = app;
            q.status = status;
            q.index = index;
            q.node_id = node_id;
            q.device_id = device_id;
            q.command_id = command_id;
            q.page_no = page_no;
            q.page_size = page_size;
            q
        })
}

// ---------------------------------------------------------------------------------------------------------
// One test per endpoint; `COVERED` is checked against `EndpointId::ALL`.

macro_rules! endpoint_round_trips {
    ($($test:ident: $endpoint:ident => requests $requests:expr, answers $answers:expr;)*) => {
        /// The endpoints with a round-trip test below.
        const COVERED: &[EndpointId] = &[$(EndpointId::$endpoint),*];
        $(
            #[test]
            fn $test() {
                run_requests::<$endpoint>($requests);
                run_responses::<$endpoint>($answers);
            }
        )*
    };
}

endpoint_round_trips! {
    login: Login => requests strategies::login_form().prop_map(Login::new),
        answers strategies::auth_token();
    refresh_access_token: RefreshAccessToken => requests strategies::refresh_token_request().prop_map(RefreshAccessToken::new),
        answers strategies::auth_token();
    logout: Logout => requests strategies::logout_request().prop_map(Logout::new),
        answers Just(Empty);
    query_package_list_round_trip: QueryPackageList => requests query_package_list(),
        answers strategies::category_page();
    query_package: QueryPackage => requests s::id(iot_model::FileId::new).prop_map(QueryPackage::new),
        answers strategies::category_info();
    delete_package: DeletePackage => requests s::id(iot_model::FileId::new).prop_map(DeletePackage::new),
        answers Just(Empty);
    create_software_upgrade_task: CreateSoftwareUpgradeTask => requests upgrade_task().prop_map(CreateSoftwareUpgradeTask::new),
        answers strategies::create_upgrade_task_response();
    create_firmware_upgrade_task: CreateFirmwareUpgradeTask => requests upgrade_task().prop_map(CreateFirmwareUpgradeTask::new),
        answers strategies::create_upgrade_task_response();
    query_upgrade_task: QueryUpgradeTask => requests s::id(iot_model::OperationId::new).prop_map(QueryUpgradeTask::new),
        answers strategies::operation_info();
    query_sub_operations_round_trip: QuerySubOperations => requests query_sub_operations(),
        answers strategies::sub_operation_page();
    query_upgrade_task_list_round_trip: QueryUpgradeTaskList => requests query_upgrade_task_list(),
        answers strategies::operation_page();
    create_batch_task: CreateBatchTask => requests batch_task().prop_map(CreateBatchTask::new),
        answers strategies::create_batch_task_response();
    query_batch_task_round_trip: QueryBatchTask => requests query_batch_task(),
        answers strategies::batch_task_info();
    query_task_details_round_trip: QueryTaskDetails => requests query_task_details(),
        answers strategies::task_detail_page();
}

#[test]
fn every_endpoint_has_a_round_trip_test() {
    let missing: Vec<_> = EndpointId::ALL.iter().filter(|id| !COVERED.contains(id)).collect();
    assert!(missing.is_empty(), "endpoints without an HTTP round-trip test: {missing:?}");
    assert_eq!(COVERED.len(), EndpointId::ALL.len(), "an endpoint is listed twice");
}

#[test]
fn fixed_up_bodies_are_valid() {
    // The fix-up functions are what makes the acceptance share meaningful; check them on their own.
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    let strategy = (strategies::create_upgrade_task(), any::<bool>(), any::<usize>(), 300i64..1_000_000)
        .prop_map(|(t, g, pick, w)| fix_upgrade_task(t, g, pick, w));
    runner
        .run(&strategy, |t| {
            let ep = CreateFirmwareUpgradeTask::new(t);
            prop_assert_eq!(ep.validate(), Ok(()));
            Ok(())
        })
        .unwrap();
}
