//! Wire fidelity: one call of each endpoint through the client, and the requests the simulator
//! received checked against the contract (methods, paths, headers, bodies, query encoding).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use iot_model::{
    AppId, CategoryInfo, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, DeviceId, ExecuteType, FileId, FileType,
    OperateDevices, OperatePolicy, OperateType, SubOperationStatus,
};
use iot_proto::{
    CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask, DeletePackage, Endpoint, EndpointId, QueryBatchTask,
    QueryPackage, QueryPackageList, QuerySubOperations, QueryTaskDetails, QueryUpgradeTask, QueryUpgradeTaskList,
};
use iot_sim::embedded::EmbeddedOptions;
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};
use serde_json::{Value, json};

use crate::sim_support::{
    BATCH, LOGIN, LOGOUT, REFRESH, UPGRADE, advance, biggest_kind, bounded, client, reboot, reboot_task, start,
};

/// A filter value with every character that could change a query's shape, and a non-ASCII one.
const AWKWARD: &str = "A&B=C d/é";
/// [`AWKWARD`] percent-encoded: everything but RFC 3986's unreserved characters is escaped.
const AWKWARD_ENCODED: &str = "A%26B%3DC%20d%2F%C3%A9";
/// A package id that needs escaping in a path segment.
const AWKWARD_FILE_ID: &str = "pkg 1/?#%é";

/// Decodes `%XX` escapes (and nothing else); panics on a malformed escape or invalid UTF-8.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Percent-encodes every byte but the unreserved characters, the form the contract's examples use.
fn strict_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The raw `key=value` pairs of a query or form body, checking that none is empty.
fn raw_pairs(what: &str, raw: &str) -> BTreeMap<String, String> {
    assert!(!raw.is_empty(), "{what}: empty query or form");
    assert!(!raw.contains("&&") && !raw.starts_with('&') && !raw.ends_with('&'), "{what}: empty parameter in {raw}");
    let mut pairs = BTreeMap::new();
    for pair in raw.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{what}: parameter without a value: {pair}"));
        assert!(!k.is_empty() && !v.is_empty(), "{what}: empty key or value in {raw}");
        assert!(
            v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{what}: {k} is not strictly percent-encoded: {v}"
        );
        assert!(pairs.insert(k.to_owned(), v.to_owned()).is_none(), "{what}: {k} appears twice");
    }
    pairs
}

fn pairs(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter().map(|(k, v)| ((*k).to_owned(), strict_encode(v))).collect()
}

fn nulls(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(path.to_owned()),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| nulls(v, &format!("{path}[{i}]"), found)),
        Value::Object(map) => map.iter().for_each(|(k, v)| nulls(v, &format!("{path}.{k}"), found)),
        _ => {}
    }
}

fn header(req: &http::Request<Bytes>, name: impl http::header::AsHeaderName) -> Vec<&str> {
    req.headers().get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
}

/// What one recorded request must look like.
struct Expect {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    body: Body,
}

enum Body {
    None,
    Form(BTreeMap<String, String>),
    Json(Value),
    /// A JSON object with exactly these keys; the values are checked separately.
    JsonKeys(&'static [&'static str]),
}

fn get(path: String, query: &[(&str, &str)]) -> Expect {
    Expect { method: Method::GET, path, query: pairs(query), body: Body::None }
}

fn post(path: String, body: Body) -> Expect {
    Expect { method: Method::POST, path, query: BTreeMap::new(), body }
}

#[tokio::test]
async fn every_endpoint_sends_exactly_what_the_contract_says() {
    bounded(async {
        let sim = start(SimConfig::default(), EmbeddedOptions::default().with_recording()).await;
        let (devices, firmware) = biggest_kind(&sim, FileType::FirmwarePackage);
        let (sw_devices, software) = biggest_kind(&sim, FileType::SoftwarePackage);
        let fw_targets: Vec<DeviceId> = devices.into_iter().take(3).collect();
        let sw_targets: Vec<DeviceId> = sw_devices.into_iter().take(2).collect();
        // A package whose id and device type both need escaping, to see the server decode them back.
        let awkward = CategoryInfo::new(FileId::new(AWKWARD_FILE_ID).unwrap())
            .with_name("awkward".to_owned())
            .with_file_type(FileType::FirmwarePackage)
            .with_device_type(AWKWARD.to_owned());
        sim.with_sim(|s| s.add_package(awkward.clone())).unwrap();
        let client = client(&sim);

        // 1. login
        client.login().await.unwrap();
        // 2. query_package_list with a filter that needs escaping: the server finds exactly that package.
        let list = client
            .query_package_list(&QueryPackageList::new().with_device_type(AWKWARD.to_owned()).with_page_size(5))
            .await
            .unwrap();
        assert_eq!(list.data, vec![awkward.clone()]);
        // 3. query_package, with an id that needs escaping in the path.
        let read = client.query_package(&QueryPackage::new(awkward.file_id.clone())).await.unwrap();
        assert_eq!(read, awkward);
        // 4, 5. both upgrade task creations, one with a policy.
        let policy = OperatePolicy::new().with_execute_type(ExecuteType::Now).with_retry_type(true).with_retry_times(2);
        let fw_op = client
            .create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(
                CreateUpgradeTask::new(
                    firmware.file_id.clone(),
                    OperateDevices::new().with_devices(fw_targets.clone()),
                )
                .with_policy(policy),
            ))
            .await
            .unwrap()
            .operation_id;
        let sw_op = client
            .create_software_upgrade_task(&CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(
                software.file_id.clone(),
                OperateDevices::new().with_devices(sw_targets.clone()),
            )))
            .await
            .unwrap()
            .operation_id;
        // 6, 7, 8. the upgrade queries.
        client.query_upgrade_task(&QueryUpgradeTask::new(fw_op.clone())).await.unwrap();
        client
            .query_sub_operations(
                &QuerySubOperations::new(fw_op.clone())
                    .with_sub_operation_status(SubOperationStatus::Wait)
                    .with_page_no(0)
                    .with_page_size(50),
            )
            .await
            .unwrap();
        let tasks = client
            .query_upgrade_task_list(
                &QueryUpgradeTaskList::new()
                    .with_operation_type(OperateType::SoftwareUpgrade)
                    .with_device_type(software.device_type.clone().unwrap())
                    .with_page_no(0)
                    .with_page_size(10),
            )
            .await
            .unwrap();
        assert_eq!(tasks.data.iter().map(|t| t.operation_id.clone()).collect::<Vec<_>>(), vec![sw_op.clone()]);
        // 9, 10, 11. the batch calls.
        let task_id = client
            .create_batch_task(&reboot_task(
                "wire check",
                DeviceCmdParam::new(DeviceCmdType::DeviceList, reboot()).with_device_list(fw_targets.clone()),
            ))
            .await
            .unwrap()
            .task_id;
        let app = AppId::new(DEFAULT_APP_ID).unwrap();
        client.query_batch_task(&QueryBatchTask::new(task_id.clone()).with_app_id(app.clone())).await.unwrap();
        let details = client
            .query_task_details(&QueryTaskDetails::new(task_id.clone()).with_app_id(app).with_page_size(25))
            .await
            .unwrap();
        assert_eq!(details.total_count, Some(3));
        // 12. delete_package, with the awkward id.
        client.delete_package(&DeletePackage::new(awkward.file_id.clone())).await.unwrap();
        assert!(sim.with_sim(|s| s.packages().iter().all(|p| p.file_id != awkward.file_id)));
        // 13. refreshToken: the platform's clock passes the token's lifetime; the next call is refused once.
        advance(&sim, Duration::from_secs(3601));
        client.query_upgrade_task(&QueryUpgradeTask::new(sw_op.clone())).await.unwrap();
        // 14. logout
        client.logout().await.unwrap();

        let recorded = sim.take_recorded();
        let category = format!("{UPGRADE}/category");
        let operations = format!("{UPGRADE}/operations");
        let fw_body = json!({
            "fileId": firmware.file_id.as_str(),
            "targets": {"devices": fw_targets.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
            "policy": {"executeType": "now", "retryType": true, "retryTimes": 2},
        });
        let sw_body = json!({
            "fileId": software.file_id.as_str(),
            "targets": {"devices": sw_targets.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
        });
        let batch_body = json!({
            "appId": DEFAULT_APP_ID,
            "timeout": 30,
            "taskName": "wire check",
            "taskType": "DeviceCmd",
            "param": {
                "type": "DeviceList",
                "deviceList": fw_targets.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                "command": {"serviceId": "Maintenance", "method": "REBOOT"},
            },
        });
        let expected = vec![
            post(LOGIN.to_owned(), Body::Form(pairs(&[("appId", DEFAULT_APP_ID), ("secret", DEFAULT_SECRET)]))),
            get(category.clone(), &[("deviceType", AWKWARD), ("pageSize", "5")]),
            get(format!("{category}/{}", strict_encode(AWKWARD_FILE_ID)), &[]),
            post(format!("{operations}/firmwareUpgrade"), Body::Json(fw_body)),
            post(format!("{operations}/softwareUpgrade"), Body::Json(sw_body)),
            get(format!("{operations}/{fw_op}"), &[]),
            get(
                format!("{operations}/{fw_op}/subOperations"),
                &[("subOperationStatus", "wait"), ("pageNo", "0"), ("pageSize", "50")],
            ),
            get(
                operations.clone(),
                &[
                    ("operationType", "software_upgrade"),
                    ("deviceType", software.device_type.as_deref().unwrap()),
                    ("pageNo", "0"),
                    ("pageSize", "10"),
                ],
            ),
            post(format!("{BATCH}/tasks"), Body::Json(batch_body)),
            get(format!("{BATCH}/tasks/{task_id}"), &[("appId", DEFAULT_APP_ID)]),
            get(
                format!("{BATCH}/taskDetails"),
                &[("taskId", task_id.as_str()), ("appId", DEFAULT_APP_ID), ("pageSize", "25")],
            ),
            Expect {
                method: Method::DELETE,
                path: format!("{category}/{}", strict_encode(AWKWARD_FILE_ID)),
                query: BTreeMap::new(),
                body: Body::None,
            },
            get(format!("{operations}/{sw_op}"), &[]),
            post(REFRESH.to_owned(), Body::JsonKeys(&["appId", "refreshToken", "secret"])),
            get(format!("{operations}/{sw_op}"), &[]),
            post(LOGOUT.to_owned(), Body::JsonKeys(&["accessToken"])),
        ];
        assert_eq!(recorded.len(), expected.len(), "{:?}", recorded.iter().map(|r| r.uri()).collect::<Vec<_>>());
        // Every endpoint of the spec has its row: a new one fails here until it is called and described above.
        let router = iot_proto::server::Router::new();
        let seen: BTreeSet<EndpointId> =
            recorded.iter().filter_map(|r| router.route(r.method(), r.uri().path()).ok()).map(|m| m.endpoint).collect();
        let missing: Vec<_> = EndpointId::ALL.iter().filter(|id| !seen.contains(*id)).collect();
        assert!(missing.is_empty(), "no wire-fidelity row for {missing:?}");

        let mut tokens = Vec::new();
        for (n, (req, want)) in recorded.iter().zip(&expected).enumerate() {
            let what = format!("request {n}: {} {}", req.method(), req.uri());
            assert_eq!(req.method(), want.method, "{what}");
            assert_eq!(req.uri().path(), want.path, "{what}");
            let query = req.uri().query().map(|q| raw_pairs(&what, q)).unwrap_or_default();
            assert_eq!(query, want.query, "{what}");

            // Authentication headers: none on login and refresh, exactly one of each elsewhere.
            let app_key = header(req, "app_key");
            let authorization = header(req, AUTHORIZATION);
            if want.path == LOGIN || want.path == REFRESH {
                assert!(app_key.is_empty() && authorization.is_empty(), "{what}: credentials on a token call");
            } else {
                assert_eq!(app_key, vec![DEFAULT_APP_ID], "{what}");
                assert_eq!(authorization.len(), 1, "{what}");
                let token = authorization[0].strip_prefix("Bearer ").unwrap_or_else(|| panic!("{what}: not bearer"));
                assert!(!token.is_empty() && !token.contains(char::is_whitespace), "{what}: one space, then the token");
                tokens.push((n, token.to_owned()));
            }

            // A content type exactly when there is a body.
            let content_type = header(req, CONTENT_TYPE);
            match &want.body {
                Body::None => {
                    assert!(req.body().is_empty(), "{what}: unexpected body");
                    assert!(content_type.is_empty(), "{what}: content type without a body");
                }
                Body::Form(expected) => {
                    assert_eq!(content_type, vec!["application/x-www-form-urlencoded"], "{what}");
                    let body = std::str::from_utf8(req.body()).unwrap();
                    assert_eq!(&raw_pairs(&what, body), expected, "{what}");
                }
                Body::Json(_) | Body::JsonKeys(_) => {
                    assert_eq!(content_type, vec!["application/json"], "{what}");
                    let body: Value = serde_json::from_slice(req.body()).unwrap();
                    let mut found = Vec::new();
                    nulls(&body, "$", &mut found);
                    assert!(found.is_empty(), "{what}: null at {found:?}");
                    match &want.body {
                        Body::Json(expected) => assert_eq!(&body, expected, "{what}"),
                        Body::JsonKeys(keys) => {
                            let got: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
                            assert_eq!(got, keys.iter().copied().collect(), "{what}");
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }

        // The escaped filter and path segment decode to the original values, by hand and by the server's parser.
        let list_query = raw_pairs("list", recorded[1].uri().query().unwrap());
        assert_eq!(list_query["deviceType"], AWKWARD_ENCODED);
        assert_eq!(percent_decode(&list_query["deviceType"]), AWKWARD);
        let parsed = QueryPackageList::try_from_http_request(&recorded[1]).unwrap();
        assert_eq!(parsed, QueryPackageList::new().with_device_type(AWKWARD.to_owned()).with_page_size(5));
        let segment = recorded[2].uri().path().rsplit('/').next().unwrap();
        assert_eq!(percent_decode(segment), AWKWARD_FILE_ID);
        assert_eq!(QueryPackage::try_from_http_request(&recorded[2]).unwrap().file_id.as_str(), AWKWARD_FILE_ID);
        let details = QueryTaskDetails::try_from_http_request(&recorded[10]).unwrap();
        assert_eq!(details.task_id, task_id);

        // The refresh carries the app's credentials and a refresh token; the token changes exactly there.
        let refresh: Value = serde_json::from_slice(recorded[13].body()).unwrap();
        assert_eq!(refresh["appId"], DEFAULT_APP_ID);
        assert_eq!(refresh["secret"], DEFAULT_SECRET);
        assert!(refresh["refreshToken"].as_str().is_some_and(|t| !t.is_empty()));
        let before: BTreeSet<&str> = tokens.iter().filter(|(n, _)| *n < 13).map(|(_, t)| t.as_str()).collect();
        let after: BTreeSet<&str> = tokens.iter().filter(|(n, _)| *n > 13).map(|(_, t)| t.as_str()).collect();
        assert_eq!((before.len(), after.len()), (1, 1), "one token before the refresh, one after");
        assert!(before.is_disjoint(&after));
        // Logout names the token it presents.
        let logout: Value = serde_json::from_slice(recorded[15].body()).unwrap();
        assert_eq!(logout["accessToken"].as_str(), after.first().copied());
        assert_ne!(refresh["refreshToken"].as_str(), after.first().copied());

        drop(client);
        sim.shutdown().await;
    })
    .await;
}
