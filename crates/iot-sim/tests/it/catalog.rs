//! Every error code of the catalog is produced by some request, with one of its documented statuses; and the
//! simulator's own answers for unknown paths and wrong methods.

use std::time::Duration;

use iot_model::{AppId, AppSecret, FileType, Timestamp};
use iot_proto::ERROR_CATALOG;
use iot_sim::sim::{AppConfig, Faults, SimConfig, codes};

use crate::support::{Harness, T0, raw_code};

const FIRMWARE: &str = "/iodm/northbound/v1.5.0/operations/firmwareUpgrade";
const TASKS: &str = "/iocm/app/batchtask/v1.1.0/tasks";

fn harness() -> Harness {
    let config = SimConfig::default()
        .with_rate_limit(None)
        .with_app(AppConfig::new(AppId::new("frozen-app").unwrap(), AppSecret::new("pw")).frozen())
        .with_app(AppConfig::new(AppId::new("other-app").unwrap(), AppSecret::new("pw")));
    Harness::ready_with(config)
}

fn post_form(h: &mut Harness, path: &str, body: &str) -> http::Response<Vec<u8>> {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://sim.test{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.as_bytes().to_vec())
        .unwrap();
    h.raw(req)
}

fn post_json(h: &mut Harness, path: &str, body: &str) -> http::Response<Vec<u8>> {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://sim.test{path}"))
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap();
    h.raw(req)
}

/// A firmware task body with these targets and this policy (JSON members).
fn task(targets: &str, policy: &str) -> String {
    let policy = if policy.is_empty() { String::new() } else { format!(r#","policy":{policy}"#) };
    format!(r#"{{"fileId":"f1","targets":{targets}{policy}}}"#)
}

fn custom(start_offset: i64, end_offset: i64) -> String {
    let at = |o: i64| Timestamp::from_unix_seconds(T0 as i64 + o).unwrap();
    format!(r#"{{"executeType":"custom","startTime":"{}","endTime":"{}"}}"#, at(start_offset), at(end_offset))
}

fn batch(app: &str, timeout: u32) -> String {
    format!(
        r#"{{"appId":"{app}","timeout":{timeout},"taskName":"t","taskType":"DeviceCmd",
            "param":{{"type":"Broadcast","command":{{"serviceId":"S","method":"M"}}}}}}"#
    )
}

/// A request that the simulator answers with `code`.
fn produce(code: &str) -> http::Response<Vec<u8>> {
    let mut h = harness();
    let groups = |fields: &str| format!(r#"{{"deviceGroups":["north"]{fields}}}"#);
    match code {
        "100022" => h.raw_authed("POST", TASKS, &batch("sim-app", 5)),
        "100203" => h.raw_authed("POST", TASKS, &batch("nobody", 10)),
        "100208" => post_form(&mut h, "/iocm/app/sec/v1.1.0/login", "appId=sim-app&secret=wrong"),
        "100217" => h.raw_authed("POST", TASKS, &batch("other-app", 10)),
        "100247" => post_form(&mut h, "/iocm/app/sec/v1.1.0/login", "appId=frozen-app&secret=pw"),
        "102202" => post_form(&mut h, "/iocm/app/sec/v1.1.0/login", "appId=sim-app&secret="),
        "105005" => h.raw_authed("GET", "/iocm/app/batchtask/v1.1.0/tasks/nope", ""),
        "120015" => h.raw_authed("POST", FIRMWARE, "{not json"),
        "123002" => h.raw_authed("GET", "/iodm/northbound/v1.5.0/category/nope", ""),
        "123009" => h.raw_authed("GET", "/iodm/northbound/v1.5.0/operations/nope", ""),
        "123016" => {
            let device = h.sim.devices().iter().find(|d| d.device_type == "SmokeDetector").unwrap().device_id.clone();
            let pkg = h
                .sim
                .packages()
                .iter()
                .find(|p| {
                    p.device_type.as_deref() == Some("WaterMeter") && p.file_type == Some(FileType::FirmwarePackage)
                })
                .unwrap()
                .file_id
                .clone();
            h.raw_authed("POST", FIRMWARE, &format!(r#"{{"fileId":"{pkg}","targets":{{"devices":["{device}"]}}}}"#))
        }
        "123019" => h.raw_authed("POST", FIRMWARE, &task(&groups(r#","deviceType":"T","model":"M""#), "")),
        "123020" => h.raw_authed("POST", FIRMWARE, &task(&groups(r#","model":"M","manufacturerName":"N""#), "")),
        "123021" => h.raw_authed("POST", FIRMWARE, &task(&groups(r#","deviceType":"T","manufacturerName":"N""#), "")),
        "123022" => h.raw_authed("POST", FIRMWARE, &task("{}", "")),
        "123023" => h.raw_authed(
            "POST",
            FIRMWARE,
            &task(&groups(r#","deviceType":"T","model":"M","manufacturerName":"N","devices":["d"]"#), ""),
        ),
        "123024" => {
            let many: Vec<String> = (0..257).map(|i| format!("\"d{i}\"")).collect();
            h.raw_authed("POST", FIRMWARE, &task(&format!(r#"{{"devices":[{}]}}"#, many.join(",")), ""))
        }
        "123025" => h.raw_authed("POST", FIRMWARE, &task(r#"{"devices":["d"]}"#, "{}")),
        "123026" => h.raw_authed("POST", FIRMWARE, &task(r#"{"devices":["d"]}"#, r#"{"executeType":"custom"}"#)),
        "123028" => {
            h.raw_authed("POST", FIRMWARE, &task(r#"{"devices":["d"]}"#, r#"{"executeType":"now","retryType":true}"#))
        }
        "123029" => h.raw_authed("GET", "/iodm/northbound/v1.5.0/operations?pageSize=0", ""),
        "123032" => h.raw_authed("POST", FIRMWARE, &task(r#"{"devices":["d"]}"#, &custom(7200, 3600))),
        "123033" => h.raw_authed("POST", FIRMWARE, &task(r#"{"devices":["d"]}"#, &custom(-60, 3600))),
        "123034" => h.raw_authed("POST", FIRMWARE, &task(r#"{"devices":["d"]}"#, &custom(600, 800))),
        "1010005" => {
            h.token = Some(iot_model::AccessToken::new("forged"));
            h.raw_authed("GET", "/iodm/northbound/v1.5.0/category", "")
        }
        "1010009" => {
            let mut h = Harness::ready_with(SimConfig::default().with_rate_limit(Some((1, Duration::from_secs(60)))));
            h.raw_authed("GET", "/iodm/northbound/v1.5.0/category", "")
        }
        "50252" => {
            let mut h = Harness::ready_with(SimConfig::default().with_faults(Faults::fail_every_nth(2)));
            h.raw_authed("GET", "/iodm/northbound/v1.5.0/category", "")
        }
        "50400" => post_json(
            &mut h,
            "/iocm/app/sec/v1.1.0/refreshToken",
            r#"{"appId":"sim-app","secret":"sim-secret","refreshToken":"made-up"}"#,
        ),
        other => panic!("no request in this test produces {other}; add one"),
    }
}

#[test]
fn every_catalog_code_is_reachable_with_a_documented_status() {
    assert!(ERROR_CATALOG.len() >= 28);
    for info in ERROR_CATALOG {
        let resp = produce(info.code);
        let (status, code) = raw_code(&resp);
        assert_eq!(code, info.code, "{}: {}", info.name, String::from_utf8_lossy(resp.body()));
        assert!(info.statuses.contains(&status), "{} answered {status}, documented {:?}", info.code, info.statuses);
        assert_eq!(resp.headers()["content-type"], "application/json");
    }
}

#[test]
fn faults_fail_every_nth_call_and_nothing_else() {
    let mut h = Harness::new(SimConfig::default().with_rate_limit(None).with_faults(Faults::fail_every_nth(3)));
    h.login().unwrap();
    let mut answers = Vec::new();
    for _ in 0..9 {
        answers.push(raw_code(&h.raw_authed("GET", "/iodm/northbound/v1.5.0/category", "")).0);
    }
    // The login was call 1, so calls 3, 6 and 9 overall fail: the 2nd, 5th and 8th here.
    assert_eq!(answers, [200, 500, 200, 200, 500, 200, 200, 500, 200]);
}

#[test]
fn unknown_paths_and_wrong_methods_get_platform_style_errors() {
    let mut h = harness();
    let resp = h.raw_authed("GET", "/iodm/northbound/v1.5.0/nothing-here", "");
    assert_eq!(raw_code(&resp), (404, codes::NOT_FOUND.to_owned()));
    let resp = h.raw_authed("PUT", "/iodm/northbound/v1.5.0/category/f1", "");
    assert_eq!(raw_code(&resp), (405, codes::METHOD_NOT_ALLOWED.to_owned()));
    assert_eq!(resp.headers()["allow"], "GET, DELETE");
    let resp = h.raw_authed("GET", "/iocm/app/sec/v1.1.0/login", "");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}
