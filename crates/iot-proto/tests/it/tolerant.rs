//! The tolerant reader's rules, each a property over every structure the spec declares (or a table over every
//! endpoint), so that a rule holds by principle and not field by field: alias spellings alone or together,
//! numbers sent as strings, free text in any JSON shape, a page that keeps its readable items, and error
//! objects under any 2xx status.

use std::fmt::Debug;

use iot_model::strategies;
use iot_proto::{Endpoint, FromHttpResponseError};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::{SPEC, free_form_fields, response};

/// `(canonical, alias)` for every member the spec gives another spelling (scanned from the spec's lines).
fn spec_aliases() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in SPEC.lines().map(str::trim).filter(|l| l.starts_with("{ json = ") && l.contains("aliases = [")) {
        let json = line.split('"').nth(1).unwrap().to_owned();
        let list = &line[line.find("aliases = [").unwrap() + "aliases = [".len()..];
        let list = &list[..list.find(']').unwrap()];
        for alias in list.split(',').map(|a| a.trim().trim_matches('"')).filter(|a| !a.is_empty()) {
            out.push((json.clone(), alias.to_owned()));
        }
    }
    out
}

/// JSON names of the spec's free-text members (`String`), excluding names that are another member's alias.
fn free_text_fields() -> Vec<String> {
    let aliases: Vec<String> = spec_aliases().into_iter().map(|(_, a)| a).collect();
    SPEC.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("{ json = ") && l.contains(r#"type = "String""#))
        .map(|l| l.split('"').nth(1).unwrap().to_owned())
        .filter(|n| !aliases.contains(n))
        .collect()
}

fn fail(e: impl ToString) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// A different valid value of the same JSON shape, for the "both spellings" case.
fn other_value(v: &Value) -> Option<Value> {
    Some(match v {
        Value::Array(_) => json!([]),
        Value::Number(n) => json!(n.as_u64()?.wrapping_add(1) % 1000),
        Value::String(s) => Value::String(format!("{s}-other")),
        Value::Object(_) => json!({}),
        _ => return None,
    })
}

/// Rule 1: every documented spelling is read alone, together with the canonical one (which wins), and when
/// the canonical one is `null`.
fn check_aliases<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let Value::Object(tree) = serde_json::to_value(value).map_err(fail)? else { return Ok(()) };
    for (canonical, alias) in spec_aliases() {
        let Some(v) = tree.get(&canonical) else { continue };
        let read = |obj: serde_json::Map<String, Value>| -> Result<T, TestCaseError> {
            serde_json::from_value(Value::Object(obj)).map_err(fail)
        };
        let mut alone = tree.clone();
        let moved = alone.remove(&canonical).unwrap();
        alone.insert(alias.clone(), moved);
        prop_assert_eq!(&read(alone)?, value, "`{}` alone", alias);
        if let Some(other) = other_value(v) {
            let mut both = tree.clone();
            both.insert(alias.clone(), other);
            prop_assert_eq!(&read(both)?, value, "`{}` and `{}` together: the canonical one wins", canonical, alias);
        }
        let mut null_canonical = tree.clone();
        null_canonical.insert(canonical.clone(), Value::Null);
        null_canonical.insert(alias.clone(), v.clone());
        prop_assert_eq!(&read(null_canonical)?, value, "`{}` null, `{}` carries the value", canonical, alias);
    }
    Ok(())
}

/// Turns every number outside free-form members into its string spelling.
fn numbers_to_strings(v: &mut Value, free_form: &[String]) {
    match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(|i| numbers_to_strings(i, free_form)),
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if !free_form.contains(k) {
                    numbers_to_strings(item, free_form);
                }
            }
        }
        _ => {}
    }
}

/// Rule 2: numbers that arrive as numeric strings read as the numbers.
fn check_numbers_as_strings<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let mut tree = serde_json::to_value(value).map_err(fail)?;
    numbers_to_strings(&mut tree, &free_form_fields());
    let back: T = serde_json::from_value(tree.clone()).map_err(|e| fail(format!("{e} in {tree}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

/// Replaces every free-text member outside free-form members with `odd`, and says what it should read as.
fn odd_free_text(v: &mut Value, expected: &mut Value, odd: &Value, free_text: &[String], free_form: &[String]) {
    match (v, expected) {
        (Value::Array(items), Value::Array(want)) => {
            for (i, w) in items.iter_mut().zip(want.iter_mut()) {
                odd_free_text(i, w, odd, free_text, free_form);
            }
        }
        (Value::Object(map), Value::Object(want)) => {
            for (k, item) in map.iter_mut() {
                if free_form.contains(k) {
                    continue;
                }
                let w = want.get_mut(k).unwrap();
                if free_text.contains(k) && item.is_string() {
                    *item = odd.clone();
                    *w = Value::String(odd.to_string());
                } else {
                    odd_free_text(item, w, odd, free_text, free_form);
                }
            }
        }
        _ => {}
    }
}

/// Rule 3: free text arrives as any JSON scalar or object and is kept as a faithful string of it.
fn check_free_text<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let (free_text, free_form) = (free_text_fields(), free_form_fields());
    for odd in [json!(42), json!(-7.5), json!(true), json!({"k": [1, "x"]}), json!(["a", 2])] {
        let mut tree = serde_json::to_value(value).map_err(fail)?;
        let mut expected = tree.clone();
        odd_free_text(&mut tree, &mut expected, &odd, &free_text, &free_form);
        let back: T = serde_json::from_value(tree.clone()).map_err(|e| fail(format!("{e} in {tree}")))?;
        prop_assert_eq!(serde_json::to_value(&back).map_err(fail)?, expected, "free text given as {}", odd);
    }
    Ok(())
}

macro_rules! tolerant_properties {
    ($($strategy:ident => $ty:ident),* $(,)?) => {
        /// The structures the properties below cover.
        const COVERED: &[&str] = &[$(stringify!($ty)),*];

        mod properties {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(48))]
                $(
                    #[test]
                    fn $strategy(value in strategies::$strategy()) {
                        check_aliases::<iot_model::$ty>(&value)?;
                        check_numbers_as_strings::<iot_model::$ty>(&value)?;
                        check_free_text::<iot_model::$ty>(&value)?;
                    }
                )*
            }
        }
    };
}

tolerant_properties! {
    auth_token => AuthToken,
    category_info => CategoryInfo,
    category_page => CategoryPage,
    operate_devices => OperateDevices,
    operate_policy => OperatePolicy,
    create_upgrade_task => CreateUpgradeTask,
    create_upgrade_task_response => CreateUpgradeTaskResponse,
    operation_sta_result => OperationStaResult,
    operation_info => OperationInfo,
    operation_page => OperationPage,
    sub_operation_info => SubOperationInfo,
    sub_operation_page => SubOperationPage,
    tag => Tag,
    command => Command,
    device_cmd_param => DeviceCmdParam,
    batch_task_request => BatchTaskRequest,
    create_batch_task_response => CreateBatchTaskResponse,
    batch_task_info => BatchTaskInfo,
    task_detail => TaskDetail,
    task_detail_page => TaskDetailPage,
    error_body => ErrorBody,
}

#[test]
fn every_answer_structure_is_covered_by_the_tolerance_properties() {
    // Structures that only travel from the SDK to the platform and carry secrets have no Deserialize worth
    // tolerating beyond the server side's own reading; every other one is covered.
    let skipped = ["LoginForm", "RefreshTokenRequest", "LogoutRequest"];
    let missing: Vec<String> = crate::support::spec_names("structs")
        .into_iter()
        .filter(|s| !COVERED.contains(&s.as_str()) && !skipped.contains(&s.as_str()))
        .collect();
    assert!(missing.is_empty(), "structures without tolerance properties: {missing:?}");
    assert!(spec_aliases().len() >= 8, "the alias scan found too few: {:?}", spec_aliases());
    assert!(free_text_fields().contains(&"detailInfo".to_owned()));
}

#[test]
fn both_spellings_of_the_items_member_are_read_canonical_first() {
    let body = r#"{"totalCount":1,"totalSize":9,"data":[{"subOperationId":"s-1"}],"date":[{"subOperationId":"s-2"}]}"#;
    let page = iot_proto::QuerySubOperations::try_from_http_response(&response(200, body)).unwrap();
    assert_eq!(page.total_count, Some(1));
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].sub_operation_id.as_str(), "s-1");
    let body = r#"{"taskId":"t-canonical","taskID":"t-other"}"#;
    let created = iot_proto::CreateBatchTask::try_from_http_response(&response(200, body)).unwrap();
    assert_eq!(created.task_id.as_str(), "t-other", "`taskID` is the canonical spelling of this answer");
}

#[test]
fn counters_token_lifetimes_and_codes_are_read_from_strings() {
    let login = br#"{"accessToken":"a","refreshToken":"r","expiresIn":"3600","scope":7,"tokenType":"bearer"}"#;
    let token = iot_proto::Login::try_from_http_response(&response(200, login.to_vec())).unwrap();
    assert_eq!(token.expires_in, 3600);
    assert_eq!(token.scope.as_deref(), Some("7"));
    let page = br#"{"pageNo":"0","pageSize":"10","totalCount":"2","data":[{"operationId":1234,
        "staResult":{"total":"2","wait":"1","success":1.0,"fail":null},"status":404}]}"#;
    let page = iot_proto::QueryUpgradeTaskList::try_from_http_response(&response(200, page.to_vec())).unwrap();
    assert_eq!((page.page_no, page.page_size, page.total_count), (Some(0), Some(10), Some(2)));
    let task = &page.data[0];
    assert_eq!(task.operation_id.as_str(), "1234", "an id sent as a number is its digits");
    let sta = task.sta_result.as_ref().unwrap();
    assert_eq!((sta.total, sta.wait, sta.success, sta.fail), (Some(2), 1, 1, 0));
    assert_eq!(task.status.as_ref().unwrap().as_str(), "404", "an unknown enum value sent as a number is kept");
    let err = iot_proto::QueryUpgradeTask::try_from_http_response(&response(
        403,
        r#"{"error_code":1010009,"error_desc":{"reason":"quota"}}"#,
    ))
    .unwrap_err();
    let api = err.api().unwrap();
    assert!(api.is_throttled());
    assert_eq!(api.description.as_deref(), Some(r#"{"reason":"quota"}"#));
}

/// One broken item in the middle of each kind of page: the page keeps the two readable items, in order, and
/// names the broken one.
#[test]
fn one_malformed_item_never_loses_the_page() {
    fn check<E: Endpoint>(body: Value, broken_path: &str)
    where
        E::Response: iot_proto::Page + Debug,
    {
        use iot_proto::Page;
        let page = E::try_from_http_response(&response(200, body.to_string())).unwrap();
        assert_eq!(page.items().len(), 2, "{page:?}");
        assert_eq!(page.item_count(), 3);
        let [rejected] = page.rejected() else { panic!("one rejected item expected in {page:?}") };
        assert_eq!((rejected.index, rejected.path.as_str()), (1, broken_path), "{rejected}");
        assert!(rejected.to_string().contains("item 1"), "{rejected}");
    }
    check::<iot_proto::QueryUpgradeTaskList>(
        json!({"totalCount": 3, "data": [{"operationId": "a"}, {"operationId": "b", "createTime": "yesterday"},
            {"operationId": "c"}]}),
        "createTime",
    );
    check::<iot_proto::QuerySubOperations>(
        json!({"totalCount": 3, "date": [{"subOperationId": "a"}, {"subOperationId": ["no"]},
            {"subOperationId": "c"}]}),
        "subOperationId",
    );
    check::<iot_proto::QueryPackageList>(json!({"data": [{"fileId": "a"}, {"name": "no id"}, {"fileId": "c"}]}), ".");
    check::<iot_proto::QueryTaskDetails>(
        json!({"taskDetails": [{"status": "Success"}, {"param": [1, 2]}, {"output": "ok"}]}),
        "param",
    );
}

/// Every endpoint, every 2xx status, an error object of any size: always a platform error, never an answer.
#[test]
fn an_error_object_is_an_error_under_any_2xx_status_for_every_endpoint() {
    fn check<E: Endpoint>(checked: &mut Vec<&'static str>) {
        let long = "x".repeat(64 * 1024);
        let bodies = [
            json!({"error_code": "123029", "error_desc": "pageNo or pageSize beyond the limit"}),
            json!({"error_desc": long, "error_code": 123029}),
            json!({"totalCount": 0, "data": [], "error_code": "123029"}),
            json!({"error_desc": "only a description"}),
        ];
        for status in [200, 201, 202, 204] {
            for body in &bodies {
                let err = E::try_from_http_response(&response(status, body.to_string()))
                    .map(|_| ())
                    .expect_err(&format!("{} took an error object for an answer under {status}", E::META.name));
                let FromHttpResponseError::Api(api) = err else { panic!("{}: {err:?}", E::META.name) };
                assert_eq!(api.status.as_u16(), status);
                if body.get("error_code").is_some() {
                    assert_eq!(api.code.as_ref().map(|c| c.as_str()), Some("123029"), "{}", E::META.name);
                }
            }
        }
        checked.push(E::META.name);
    }
    let mut checked = Vec::new();
    check::<iot_proto::Login>(&mut checked);
    check::<iot_proto::RefreshAccessToken>(&mut checked);
    check::<iot_proto::Logout>(&mut checked);
    check::<iot_proto::QueryPackageList>(&mut checked);
    check::<iot_proto::QueryPackage>(&mut checked);
    check::<iot_proto::DeletePackage>(&mut checked);
    check::<iot_proto::CreateSoftwareUpgradeTask>(&mut checked);
    check::<iot_proto::CreateFirmwareUpgradeTask>(&mut checked);
    check::<iot_proto::QueryUpgradeTask>(&mut checked);
    check::<iot_proto::QuerySubOperations>(&mut checked);
    check::<iot_proto::QueryUpgradeTaskList>(&mut checked);
    check::<iot_proto::CreateBatchTask>(&mut checked);
    check::<iot_proto::QueryBatchTask>(&mut checked);
    check::<iot_proto::QueryTaskDetails>(&mut checked);
    let mut all: Vec<&str> = iot_proto::EndpointId::ALL.iter().map(|id| id.meta().name).collect();
    all.sort_unstable();
    checked.sort_unstable();
    assert_eq!(checked, all, "every endpoint is checked");
}

/// A page that mentions `error_code` anywhere below its top level is a page, however long it is.
#[test]
fn a_page_is_never_taken_for_an_error_object() {
    let item = json!({"status": "Fail", "error": "{\"error_code\":\"9000\",\"error_desc\":\"no answer\"}",
        "param": {"deviceId": "d", "error_code": "nested"}});
    for n in [1, 200] {
        let body = json!({"totalCount": n, "taskDetails": vec![item.clone(); n]});
        let page = iot_proto::QueryTaskDetails::try_from_http_response(&response(200, body.to_string())).unwrap();
        assert_eq!(page.task_details.len(), n);
    }
    // An empty answer where nothing is owed is fine; `null` members are absent, not errors.
    iot_proto::DeletePackage::try_from_http_response(&response(204, "")).unwrap();
    iot_proto::DeletePackage::try_from_http_response(&response(200, "{}")).unwrap();
    iot_proto::DeletePackage::try_from_http_response(&response(200, r#"{"error_code":null}"#)).unwrap();
    let page = iot_proto::QueryUpgradeTaskList::try_from_http_response(&response(
        200,
        r#"{"error_code":null,"error_desc":null,"data":[]}"#,
    ))
    .unwrap();
    assert!(page.data.is_empty());
}

#[test]
fn a_single_page_past_the_family_maximum_is_a_typed_decode_error() {
    use iot_proto::{DecodeErrorKind, Page, QueryUpgradeTaskList};
    let max = <iot_model::OperationPage as Page>::LIMITS.page_size_max as usize;
    let page = |count: usize| {
        let items: Vec<Value> = (0..count).map(|n| json!({ "operationId": format!("op-{n}") })).collect();
        serde_json::to_vec(&json!({ "totalCount": count, "data": items })).unwrap()
    };
    let full = http::Response::builder().status(200).body(page(max)).unwrap();
    let read = iot_proto::client::parse_response::<QueryUpgradeTaskList, _>(&full).unwrap();
    assert_eq!(read.data.len(), max);
    // One item more than any page of the family may hold, readable or not.
    for body in [page(max + 1), format!(r#"{{"date":[{}]}}"#, vec!["{}"; max + 1].join(",")).into_bytes()] {
        let over = http::Response::builder().status(200).body(body).unwrap();
        match iot_proto::client::parse_response::<QueryUpgradeTaskList, _>(&over) {
            Err(FromHttpResponseError::Decode(e)) => {
                assert_eq!(e.kind, DecodeErrorKind::OversizedPage { max: 100 });
                assert!(e.path == "data" || e.path == "date", "{}", e.path);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_page_walker_ends_on_a_page_larger_than_it_asked_for() {
    use iot_model::{OperationId, OperationInfo, OperationPage};
    use iot_proto::call::{PageWalker, WalkStop};
    use iot_proto::pager::WalkError;
    use iot_proto::{Page, QueryUpgradeTaskList};
    let mut walker = PageWalker::new(QueryUpgradeTaskList::new().with_page_size(10), 10).unwrap();
    assert!(walker.next_request().is_some());
    let items = (0..11).map(|n| OperationInfo::new(OperationId::new(format!("op-{n}")).unwrap())).collect();
    let page = OperationPage::from_items(0, 10, 100, items);
    let oversized = WalkError::OversizedPage { page_no: 0, asked: 10, held: 11 };
    assert_eq!(walker.handle_page(&page), Err(oversized.clone()));
    assert!(walker.next_request().is_none());
    assert_eq!(walker.outcome(), Some(Err(WalkStop::Walk(oversized))));
}

/// Answers are read as text when the whole body is UTF-8 (issue 11); a body that is not is still read as bytes,
/// so bytes that are not UTF-8 cost nothing in a member that is skipped, and in a member that is read they are
/// refused as before, never replaced.
#[test]
fn a_body_that_is_not_utf8_reads_as_before() {
    use iot_proto::QueryUpgradeTaskList;
    let page = |extra: &[u8], id: &[u8]| {
        let mut body = br#"{"totalCount":2,"data":[{"operationId":"a","somethingNew":""#.to_vec();
        body.extend_from_slice(extra);
        body.extend_from_slice(br#""},{"operationId":""#);
        body.extend_from_slice(id);
        body.extend_from_slice(br#""}]}"#);
        QueryUpgradeTaskList::try_from_http_response(&response(200, body))
    };
    let text = page(b"caf\xc3\xa9", b"b").unwrap();
    let bytes = page(b"caf\xe9", b"b").unwrap();
    assert_eq!(bytes, text);
    assert_eq!(bytes.data.iter().map(|t| t.operation_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    // Invalid UTF-8 inside an id that is read: a decode error at the item, never a replacement character.
    match page(b"x", b"b\xff") {
        Err(FromHttpResponseError::Decode(e)) => {
            assert_eq!(e.path, "data[1]", "{e:?}");
            assert!(e.message.contains("invalid unicode code point"), "{e:?}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}
