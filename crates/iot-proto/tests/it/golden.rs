//! Golden payloads: the contract's and the seed pages' examples, copied verbatim into `tests/fixtures`, and
//! hand-made answers for every tolerance the contract asks for, all read through the client side.

use std::collections::BTreeMap;

use iot_model::{ExecuteType, Json, OperateType, OperationStatus, SubOperationStatus, TaskDetailStatus, Timestamp};
use iot_proto::error::EXCERPT_LIMIT;
use iot_proto::*;
use serde_json::json;

use crate::support::{fixture, response};

fn ts(s: &str) -> Option<Timestamp> {
    Some(Timestamp::parse(s).unwrap())
}

fn api_error(result: Result<impl std::fmt::Debug, FromHttpResponseError>) -> ApiError {
    match result {
        Err(FromHttpResponseError::Api(e)) => e,
        other => panic!("expected a platform error, got {other:?}"),
    }
}

#[test]
fn seed_task_list_page() {
    // Quirks 5.2 and 5.6: upper-case FAIL, null policy and stopTime, staResult without total, null deviceGroups.
    let page =
        QueryUpgradeTaskList::try_from_http_response(&response(200, fixture("seed_operations_page.json"))).unwrap();
    assert_eq!((page.total_count, page.page_no, page.page_size), (Some(1), Some(0), Some(1)));
    assert_eq!(page.data.len(), 1);
    let op = &page.data[0];
    assert_eq!(op.operation_id.as_str(), "**********");
    assert_eq!(op.create_time, ts("20151212T121212Z"));
    assert_eq!(op.start_time, ts("20151212T121212Z"));
    assert_eq!(op.stop_time, None);
    assert_eq!(op.operate_type, Some(OperateType::SoftwareUpgrade));
    assert_eq!(op.status, Some(OperationStatus::Failed));
    assert_eq!(op.policy, None);
    let targets = op.targets.as_ref().unwrap();
    assert_eq!(targets.device_groups, None);
    assert_eq!(targets.device_type.as_deref(), Some("******"));
    assert_eq!(targets.model.as_deref(), Some("******"));
    assert_eq!(targets.manufacturer_name.as_deref(), Some("***"));
    let devices: Vec<&str> = targets.devices.as_ref().unwrap().iter().map(|d| d.as_str()).collect();
    assert_eq!(devices, ["**********"]);
    let sta = op.sta_result.as_ref().unwrap();
    assert_eq!(sta.total, None);
    assert_eq!((sta.wait, sta.processing, sta.success, sta.fail, sta.stop, sta.timeout), (0, 0, 0, 1, 0, 0));
    let extend = op.extend_para.as_ref().unwrap();
    assert_eq!(extend.get("fileVersion"), Some(&json!("V1.1.10")));
    assert_eq!(extend.len(), 1);
}

#[test]
fn seed_subtask_page_with_date_key() {
    // Quirks 5.1 and 5.2: the items arrive under `date`, the status is upper case, extendInfo members are null.
    let page =
        QuerySubOperations::try_from_http_response(&response(200, fixture("seed_sub_operations_page.json"))).unwrap();
    assert_eq!((page.total_count, page.page_no, page.page_size), (Some(1), Some(0), Some(1)));
    assert_eq!(page.data.len(), 1, "items must be taken from `date`");
    let sub = &page.data[0];
    assert_eq!(sub.sub_operation_id.as_str(), "**********");
    assert_eq!(sub.create_time, ts("20151212T121212Z"));
    assert_eq!(sub.start_time, ts("20151212T121212Z"));
    assert_eq!(sub.stop_time, None);
    assert_eq!(sub.operate_type, Some(OperateType::SoftwareUpgrade));
    assert_eq!(sub.device_id.as_ref().map(|d| d.as_str()), Some("**********"));
    assert_eq!(sub.status, Some(SubOperationStatus::Fail));
    assert_eq!(
        sub.detail_info.as_deref(),
        Some("The task failed to start, unable to find protocol service based on device information")
    );
    let extend = sub.extend_info.as_ref().unwrap();
    let expected: BTreeMap<String, Json> = [
        ("upgradeTime", Json::Null),
        ("sourceVersion", Json::Null),
        ("curVersion", json!("V1.1.10")),
        ("downloadTime", Json::Null),
        ("targetVersion", Json::Null),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(extend, &expected);
}

#[test]
fn contract_error_body() {
    let body = fixture("contract_error_body.json");
    let err = api_error(QueryPackage::try_from_http_response(&response(400, body.clone())));
    assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
    assert_eq!(err.code.as_ref().map(ErrorCode::as_str), Some("<string>"));
    assert!(matches!(err.code, Some(ErrorCode::Unknown(_))));
    assert_eq!(err.description.as_deref(), Some("<string>"));
    assert_eq!(err.body_excerpt, None);
    assert!(!err.is_throttled() && !err.is_token_invalid() && !err.is_server_error());
    // The same body under 200 is still an error (section 1: whatever the status).
    let err = api_error(QueryPackage::try_from_http_response(&response(200, body.clone())));
    assert_eq!(err.status, http::StatusCode::OK);
    assert_eq!(err.description.as_deref(), Some("<string>"));
    // And the model reads it as an error body.
    let model: iot_model::ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!(model.error_code.as_deref(), Some("<string>"));
}

#[test]
fn contract_create_batch_task_answer_with_capital_id() {
    let answer =
        CreateBatchTask::try_from_http_response(&response(200, fixture("contract_create_batch_task_response.json")))
            .unwrap();
    assert_eq!(answer.task_id.as_str(), "...");
    let answer =
        CreateBatchTask::try_from_http_response(&response(200, fixture("create_batch_task_response_task_id.json")))
            .unwrap();
    assert_eq!(answer.task_id.as_str(), "task-10");
}

#[test]
fn contract_extend_para_member() {
    let extend: BTreeMap<String, Json> = serde_json::from_slice(&fixture("contract_extend_para.json")).unwrap();
    assert_eq!(extend.get("fileVersion"), Some(&json!("V1.1.10")));
    // The seed task list carries the same member.
    let page =
        QueryUpgradeTaskList::try_from_http_response(&response(200, fixture("seed_operations_page.json"))).unwrap();
    assert_eq!(page.data[0].extend_para.as_ref(), Some(&extend));
}

#[test]
fn task_detail_with_an_escaped_error_string() {
    let page =
        QueryTaskDetails::try_from_http_response(&response(200, fixture("task_details_page_escaped_error.json")))
            .unwrap();
    assert_eq!((page.total_count, page.page_no, page.page_size), (Some(2), Some(0), Some(25)));
    assert_eq!(page.task_details.len(), 2);
    let failed = &page.task_details[0];
    assert_eq!(failed.status, Some(TaskDetailStatus::Fail));
    assert_eq!(failed.output, None);
    // The seed's escaped error text, unescaped once by the JSON reader.
    let escaped = String::from_utf8(fixture("seed_task_detail_error_string.txt")).unwrap();
    assert_eq!(failed.error.as_deref(), Some(escaped.replace("\\\"", "\"").as_str()));
    assert_eq!(failed.error.as_deref(), Some(r#"{"error_code": "****", "error_desc":"*****"}"#));
    let inner: iot_model::ErrorBody = serde_json::from_str(failed.error.as_deref().unwrap()).unwrap();
    assert_eq!(inner.error_code.as_deref(), Some("****"));
    assert_eq!(inner.error_desc.as_deref(), Some("*****"));
    let param = failed.param.as_ref().unwrap();
    assert_eq!(param.get("deviceId"), Some(&json!("dev-7")));
    assert_eq!(param.get("commandId"), Some(&json!("cmd-7")));
    let done = &page.task_details[1];
    assert_eq!(done.status, Some(TaskDetailStatus::Success), "status is read without regard to case");
    assert_eq!(done.output.as_deref(), Some(r#"{"result": "ok"}"#));
    assert_eq!(done.error, None);
    assert_eq!(done.param.as_ref().unwrap().get("index"), Some(&json!(3)));
}

#[test]
fn html_502_page_becomes_a_typed_error_with_a_bounded_excerpt() {
    let body = fixture("html_502.html");
    assert!(body.len() > EXCERPT_LIMIT, "the fixture must be longer than the excerpt limit");
    let err = api_error(QueryUpgradeTaskList::try_from_http_response(&response(502, body.clone())));
    assert_eq!(err.status, http::StatusCode::BAD_GATEWAY);
    assert_eq!(err.code, None);
    assert_eq!(err.description, None);
    let excerpt = err.body_excerpt.as_deref().unwrap();
    assert!(excerpt.starts_with("<!DOCTYPE html>"), "{excerpt}");
    assert!(excerpt.contains("502 Bad Gateway"));
    assert!(excerpt.len() <= EXCERPT_LIMIT + 3, "{} bytes", excerpt.len());
    assert!(excerpt.ends_with("..."), "a cut excerpt says so");
    assert!(err.is_server_error());
    assert!(err.to_string().starts_with("platform answered 502 Bad Gateway: <!DOCTYPE html>"), "{err}");
}

#[test]
fn numeric_error_code_is_read_as_a_string() {
    let err = api_error(QueryUpgradeTask::try_from_http_response(&response(403, fixture("error_numeric_code.json"))));
    assert_eq!(err.code, Some(ErrorCode::Throttled));
    assert_eq!(err.description.as_deref(), Some("call rate exceeded"));
    assert!(err.is_throttled());
}

#[test]
fn error_body_under_200_is_an_error() {
    let err = api_error(QueryUpgradeTask::try_from_http_response(&response(200, fixture("error_in_200.json"))));
    assert_eq!(err.status, http::StatusCode::OK);
    assert_eq!(err.code, Some(ErrorCode::TaskNotFound));
    assert_eq!(err.description.as_deref(), Some("no such task"));
    // An endpoint that answers nothing must not swallow it either.
    let err = api_error(DeletePackage::try_from_http_response(&response(200, fixture("error_in_200.json"))));
    assert_eq!(err.code, Some(ErrorCode::TaskNotFound));
}

#[test]
fn forbidden_means_throttled_or_bad_token_by_code() {
    let throttled =
        api_error(QueryTaskDetails::try_from_http_response(&response(403, fixture("error_throttled.json"))));
    assert_eq!(throttled.code, Some(ErrorCode::Throttled));
    assert!(throttled.is_throttled());
    assert!(!throttled.is_token_invalid());
    assert_eq!(throttled.class(), ErrorClass::Throttled);

    let bad_token =
        api_error(QueryTaskDetails::try_from_http_response(&response(403, fixture("error_token_invalid.json"))));
    assert_eq!(bad_token.code, Some(ErrorCode::TokenInvalid));
    assert!(bad_token.is_token_invalid());
    assert!(!bad_token.is_throttled());
    assert_eq!(bad_token.class(), ErrorClass::TokenInvalid);

    // Quirk 5.8: a 403 with any other code is permanent.
    let other = api_error(QueryTaskDetails::try_from_http_response(&response(
        403,
        r#"{"error_code":"100217","error_desc":"not authorized"}"#,
    )));
    assert_eq!(other.class(), ErrorClass::Permanent);
}

#[test]
fn redirect_is_an_error_not_followed() {
    let mut resp = response(302, Vec::new());
    resp.headers_mut().insert(http::header::LOCATION, http::HeaderValue::from_static("https://elsewhere.example/"));
    let err = api_error(QueryUpgradeTask::try_from_http_response(&resp));
    assert_eq!(err.status, http::StatusCode::FOUND);
    assert_eq!((err.code.as_ref(), err.description.as_deref(), err.body_excerpt.as_deref()), (None, None, None));
    assert!(err.to_string().contains("redirects are not followed"), "{err}");
}

#[test]
fn unknown_enum_values_are_kept_and_unknown_fields_ignored() {
    let page =
        QueryUpgradeTaskList::try_from_http_response(&response(200, fixture("operations_page_unknown_values.json")))
            .unwrap();
    assert_eq!(page.total_count, Some(2), "totalSize is read as totalCount");
    let first = &page.data[0];
    assert!(matches!(&first.status, Some(OperationStatus::Unknown(v)) if v.as_str() == "Paused"));
    assert!(matches!(&first.operate_type, Some(OperateType::Unknown(v)) if v.as_str() == "hardware_upgrade"));
    let policy = first.policy.as_ref().unwrap();
    assert!(matches!(&policy.execute_type, Some(ExecuteType::Unknown(v)) if v.as_str() == "on_demand"));
    assert_eq!(policy.retry_type, Some(false));
    let sta = first.sta_result.as_ref().unwrap();
    assert_eq!((sta.total, sta.wait, sta.processing, sta.success, sta.fail), (Some(4), 0, 1, 2, 1));
    let second = &page.data[1];
    assert_eq!(second.operate_type, Some(OperateType::FirmwareUpgrade));
    assert_eq!(second.status, Some(OperationStatus::Processing));

    let info =
        QueryBatchTask::try_from_http_response(&response(200, fixture("batch_task_info_unknown_fields.json"))).unwrap();
    assert_eq!(info.task_id.as_str(), "task-9", "taskID is read as taskId");
    assert_eq!(info.status, Some(iot_model::BatchTaskStatus::Running));
    assert_eq!(info.task_type, Some(iot_model::BatchTaskType::DeviceCmd));
    assert_eq!(info.start_time, ts("20200101T000000Z"));
    assert_eq!((info.progress, info.complete_cnt, info.success_rate), (Some(500), Some(5), Some(1000)));
    assert_eq!(info.tags.as_ref().map(|t| (t[0].tag_name.as_str(), t[0].tag_value.as_str())), Some(("site", "north")));
    assert_eq!(info.param.as_ref().and_then(|p| p.get("type")), Some(&json!("Broadcast")));
}

#[test]
fn total_size_and_null_items() {
    let page =
        QueryTaskDetails::try_from_http_response(&response(200, fixture("task_details_page_total_size.json"))).unwrap();
    assert_eq!(page.total_count, Some(0));
    assert!(page.task_details.is_empty(), "null items read as an empty page");
}

#[test]
fn extend_para_on_subtasks() {
    // Quirk 5.3: one source names the subtask map extendPara, and its members are not always strings.
    let page =
        QuerySubOperations::try_from_http_response(&response(200, fixture("sub_operations_page_extend_para.json")))
            .unwrap();
    assert_eq!(page.total_count, Some(3));
    let sub = &page.data[0];
    assert_eq!(sub.status, Some(SubOperationStatus::Fail), "`failed` is read as the subtask's `fail`");
    let extend = sub.extend_info.as_ref().unwrap();
    assert_eq!(extend.get("sourceVersion"), Some(&json!("V1.0")));
    assert_eq!(extend.get("downloadTime"), Some(&json!(12)));
    assert_eq!(extend.get("upgradeTime"), Some(&Json::Null));
    assert_eq!(extend.get("extra"), Some(&json!({"k": [true]})));
}

#[test]
fn an_unreadable_item_is_reported_in_its_place_and_the_page_is_kept() {
    let body = fixture("operations_page_bad_create_time.json");
    let page = QueryUpgradeTaskList::try_from_http_response(&response(200, body)).unwrap();
    assert!(page.data.is_empty(), "the only item is unreadable");
    assert_eq!(page.total_count, Some(1), "the page's own members are still read");
    let [rejected] = &page.rejected[..] else { panic!("one rejected item expected: {:?}", page.rejected) };
    assert_eq!(rejected.index, 0);
    assert_eq!(rejected.path, "createTime");
    assert!(rejected.message.contains("yyyyMMddTHHmmssZ"), "{}", rejected.message);
    assert!(rejected.excerpt.contains("2015-12-12 12:12:12"), "{}", rejected.excerpt);
}

#[test]
fn undecodable_body_reports_the_json_path() {
    // A page member (not an item) that cannot be read fails the page, at its path.
    let body = br#"{"totalCount": "many", "data": []}"#.to_vec();
    match QueryUpgradeTaskList::try_from_http_response(&response(200, body.clone())) {
        Err(FromHttpResponseError::Decode(e)) => {
            assert_eq!(e.status, http::StatusCode::OK);
            assert_eq!(e.path, "totalCount");
            assert_eq!(e.body_excerpt.as_bytes(), &body[..]);
            assert!(e.to_string().contains("totalCount"), "{e}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    // Outside pages, an unreadable member fails the answer at its path.
    match QueryUpgradeTask::try_from_http_response(&response(200, r#"{"operationId":"op","createTime":"today"}"#)) {
        Err(FromHttpResponseError::Decode(e)) => assert_eq!(e.path, "createTime"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    // A body that is not JSON at all fails at the root.
    match QueryUpgradeTask::try_from_http_response(&response(200, "<html>ok</html>")) {
        Err(FromHttpResponseError::Decode(e)) => assert_eq!(e.path, "."),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn every_fixture_is_used() {
    // A fixture no test reads proves nothing; this file and the redaction tests are the only readers.
    let sources = concat!(include_str!("golden.rs"), include_str!("redaction.rs"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "README.md" {
            continue;
        }
        assert!(sources.contains(&format!("\"{name}\"")), "fixture {name} is not used");
    }
}

/// Found by the fuzzer: a body that is no JSON (a bad UTF-8 byte in a member the probe skips) is not an error
/// object, as a JSON reader would say.
#[test]
fn a_body_with_a_bad_byte_in_a_skipped_member_is_no_error_object() {
    let body = b"{\"error_code\": \"<string>\", \"%4Ferror_desc\": \"\xbcstring>\"}";
    assert!(serde_json::from_slice::<serde_json::Value>(body).is_err());
    assert_eq!(iot_proto::error::probe_error_body(body), None);
    let error = ApiError::from_body(http::StatusCode::BAD_REQUEST, body);
    assert_eq!(error.code, None);
    assert!(error.body_excerpt.is_some());
}
