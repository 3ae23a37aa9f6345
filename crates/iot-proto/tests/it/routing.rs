//! The server side listens like the platform: a trailing slash on any path is accepted, empty segments never
//! stand for an id, and a page number or size that cannot be read gets its paging family's page-limit code.

use iot_model::{BatchTaskRequest, BatchTaskType, OperationId, TaskId};
use iot_proto::server::{RouteError, Router};
use iot_proto::*;

use crate::support::{app_id, auth, base, token};

/// Every endpoint's path with each placeholder filled with `x`.
fn concrete_path(meta: &EndpointMeta) -> String {
    meta.path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/")
}

#[test]
fn every_endpoint_accepts_a_trailing_slash() {
    let router = Router::new();
    for id in EndpointId::ALL {
        let meta = id.meta();
        let path = concrete_path(meta);
        let plain = router.route(&meta.method, &path).unwrap();
        let slashed = router.route(&meta.method, &format!("{path}/")).unwrap();
        assert_eq!(plain.endpoint, *id, "{path}");
        assert_eq!(slashed, plain, "{path}/");
    }
}

#[test]
fn only_one_trailing_slash_is_forgiven() {
    let router = Router::new();
    for id in EndpointId::ALL {
        let meta = id.meta();
        let path = concrete_path(meta);
        assert_eq!(router.route(&meta.method, &format!("{path}//")), Err(RouteError::NotFound), "{path}//");
    }
}

#[test]
fn empty_segments_never_match_an_id() {
    let router = Router::new();
    let get = http::Method::GET;
    let ops = "/iodm/northbound/v1.5.0/operations";
    assert_eq!(router.route(&get, &format!("{ops}//subOperations")), Err(RouteError::NotFound));
    assert_eq!(router.route(&get, &format!("{ops}//subOperations/")), Err(RouteError::NotFound));
    assert_eq!(router.route(&get, &format!("{ops}//")), Err(RouteError::NotFound));
    assert_eq!(router.route(&get, "//iodm/northbound/v1.5.0/operations"), Err(RouteError::NotFound));
    assert_eq!(router.route(&get, "/iodm//northbound/v1.5.0/operations"), Err(RouteError::NotFound));
    // `/operations/` is the task list, not the task with the id "".
    assert_eq!(router.route(&get, &format!("{ops}/")).unwrap().endpoint, EndpointId::QueryUpgradeTaskList);
    // `/category/` with DELETE is the list's path with the wrong method, not a delete of "".
    let delete = http::Method::DELETE;
    assert_eq!(router.route(&delete, "/iodm/northbound/v1.5.0/category/"), Err(RouteError::MethodNotAllowed));
    let batch = "/iocm/app/batchtask/v1.1.0/tasks";
    assert_eq!(router.route(&get, &format!("{batch}/")), Err(RouteError::MethodNotAllowed));
    assert_eq!(router.route(&http::Method::POST, &format!("{batch}/")).unwrap().endpoint, EndpointId::CreateBatchTask);
}

/// `req` with `/` appended to its path (before the query).
fn with_trailing_slash(mut req: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let uri = req.uri().clone();
    let mut text = format!("{}://{}{}/", uri.scheme_str().unwrap(), uri.authority().unwrap(), uri.path());
    if let Some(q) = uri.query() {
        text.push('?');
        text.push_str(q);
    }
    *req.uri_mut() = text.parse().unwrap();
    req
}

#[test]
fn the_server_side_reads_requests_sent_with_a_trailing_slash() {
    let (app, tok) = (app_id(), token());
    let param = serde_json::json!({
        "type": "DeviceList",
        "deviceList": ["dev-1"],
        "command": {"serviceId": "Meter", "method": "RESET", "paras": {}}
    });
    let serde_json::Value::Object(param) = param else { unreachable!("an object") };
    let body = BatchTaskRequest::new(app_id(), 10, "t".into(), BatchTaskType::DeviceCmd, param);
    let create = CreateBatchTask::new(body);
    let req = with_trailing_slash(create.try_into_http_request(&base(), Some(auth(&app, &tok))).unwrap());
    assert!(req.uri().path().ends_with("/tasks/"));
    assert_eq!(CreateBatchTask::try_from_http_request(&req).unwrap(), create);

    let mut subs = QuerySubOperations::new(OperationId::new("op-1").unwrap());
    subs.page_no = Some(2);
    subs.page_size = Some(50);
    let req = with_trailing_slash(subs.try_into_http_request(&base(), Some(auth(&app, &tok))).unwrap());
    assert!(req.uri().path().ends_with("/subOperations/"));
    assert_eq!(QuerySubOperations::try_from_http_request(&req).unwrap(), subs);

    let one = QueryBatchTask::new(TaskId::new("task-1").unwrap());
    let req = with_trailing_slash(one.try_into_http_request(&base(), Some(auth(&app, &tok))).unwrap());
    assert_eq!(QueryBatchTask::try_from_http_request(&req).unwrap(), one);
}

/// A bare GET of `path_and_query` on the test host.
fn get(path_and_query: &str) -> http::Request<Vec<u8>> {
    http::Request::get(format!("https://iot.example.com:8743{path_and_query}")).body(Vec::new()).unwrap()
}

/// The error code the server side answers for a GET of `path_and_query` to `E`.
fn code_of<E: Endpoint>(path_and_query: &str) -> String {
    let err = E::try_from_http_request(&get(path_and_query)).unwrap_err();
    err.code.map(|c| c.as_str().to_owned()).unwrap_or_default()
}

const BAD_PAGES: &[&str] =
    &["pageNo=-1", "pageNo=abc", "pageNo=1.5", "pageNo=99999999999", "pageSize=x", "pageSize=-1", "pageSize=0x10"];

#[test]
fn unreadable_page_numbers_get_the_upgrade_page_limit_code() {
    for q in BAD_PAGES {
        let subs = format!("/iodm/northbound/v1.5.0/operations/op-1/subOperations?{q}");
        assert_eq!(code_of::<QuerySubOperations>(&subs), "123029", "{subs}");
        let list = format!("/iodm/northbound/v1.5.0/operations?{q}");
        assert_eq!(code_of::<QueryUpgradeTaskList>(&list), "123029", "{list}");
        let packages = format!("/iodm/northbound/v1.5.0/category/?{q}");
        assert_eq!(code_of::<QueryPackageList>(&packages), "123029", "{packages}");
    }
    // A repeated page number cannot be read either.
    let twice = "/iodm/northbound/v1.5.0/operations/op-1/subOperations?pageNo=1&pageNo=2";
    assert_eq!(code_of::<QuerySubOperations>(twice), "123029");
    // Out of range but readable: the same code, from the limit check.
    assert_eq!(code_of::<QueryUpgradeTaskList>("/iodm/northbound/v1.5.0/operations?pageSize=101"), "123029");
}

#[test]
fn unreadable_page_numbers_get_the_batch_page_limit_code() {
    for q in BAD_PAGES {
        let details = format!("/iocm/app/batchtask/v1.1.0/taskDetails?taskId=t-1&{q}");
        assert_eq!(code_of::<QueryTaskDetails>(&details), "100022", "{details}");
    }
    assert_eq!(code_of::<QueryTaskDetails>("/iocm/app/batchtask/v1.1.0/taskDetails?taskId=t-1&pageSize=251"), "100022");
}

#[test]
fn other_unreadable_parameters_keep_the_endpoint_rejection() {
    // A device id with a control character cannot be read; it is no page parameter, so the generic code stays.
    assert_eq!(code_of::<QueryUpgradeTaskList>("/iodm/northbound/v1.5.0/operations?deviceId=%00"), "120015");
    assert_eq!(code_of::<QueryTaskDetails>("/iocm/app/batchtask/v1.1.0/taskDetails?taskId=t-1&index=x"), "100022");
}

#[test]
fn valid_pages_are_still_read() {
    let q =
        QueryUpgradeTaskList::try_from_http_request(&get("/iodm/northbound/v1.5.0/operations/?pageNo=0&pageSize=100"))
            .unwrap();
    assert_eq!((q.page_no, q.page_size), (Some(0), Some(100)));
}
