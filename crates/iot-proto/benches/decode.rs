//! Decode benchmark: the tolerant client-side decode of a 100-item task-list page and a 100-item subtask page,
//! against `serde_json` into plain derive-only structures of the same shape.
//!
//! Run with `cargo bench -p iot-proto --bench decode`. For instruction counts, run the bench executable under
//! callgrind with `DECODE_LOOP=<workload>:<iterations>` (workloads: `tasks-tolerant`, `tasks-model`,
//! `tasks-plain`, `tasks-plain-text`, `subtasks-tolerant`, `subtasks-model`, `subtasks-plain`,
//! `subtasks-plain-text`, `none`); it then skips criterion
//! and decodes the workload that many times. Subtracting a zero-iteration run gives the cost of one decode.
//! `DECODE_ROUNDS=<rounds>` instead times tolerant and plain decodes in interleaved rounds and prints the
//! median of the per-round ratios, which is steadier than separate runs on a shared machine.

// Bench data is generated here, never read from the network, so failing loudly on it is fine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use iot_proto::{Endpoint, QuerySubOperations, QueryUpgradeTaskList};
use serde::Deserialize;

/// Items on each page, the platform's largest page size.
const ITEMS: usize = 100;
/// Devices targeted by each task of the task-list page.
const DEVICES_PER_TASK: usize = 20;

/// Plain derive-only mirrors of the model: strings for ids, enums and times, `Option` for optional fields,
/// `BTreeMap<String, Value>` for maps, no aliases and no checks. This is the baseline the tolerant decoder
/// is measured against.
mod plain {
    #![allow(dead_code)] // The fields are only read through `black_box`.

    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperationPage {
        pub page_no: Option<u32>,
        pub page_size: Option<u32>,
        pub total_count: Option<u64>,
        pub data: Vec<OperationInfo>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperationInfo {
        pub operation_id: String,
        pub create_time: Option<String>,
        pub start_time: Option<String>,
        pub stop_time: Option<String>,
        pub operate_type: Option<String>,
        pub targets: Option<OperateDevices>,
        pub policy: Option<OperatePolicy>,
        pub status: Option<String>,
        pub sta_result: Option<OperationStaResult>,
        pub extend_para: Option<BTreeMap<String, serde_json::Value>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperateDevices {
        pub device_groups: Option<Vec<String>>,
        pub device_type: Option<String>,
        pub model: Option<String>,
        pub manufacturer_name: Option<String>,
        pub devices: Option<Vec<String>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct OperatePolicy {
        pub execute_type: Option<String>,
        pub start_time: Option<String>,
        pub end_time: Option<String>,
        pub retry_type: Option<bool>,
        pub retry_times: Option<u32>,
    }

    #[derive(Deserialize)]
    pub struct OperationStaResult {
        pub total: Option<u64>,
        pub wait: u64,
        pub processing: u64,
        pub success: u64,
        pub fail: u64,
        pub stop: u64,
        pub timeout: u64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SubOperationPage {
        pub page_no: Option<u32>,
        pub page_size: Option<u32>,
        pub total_count: Option<u64>,
        pub data: Vec<SubOperationInfo>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SubOperationInfo {
        pub sub_operation_id: String,
        pub create_time: Option<String>,
        pub start_time: Option<String>,
        pub stop_time: Option<String>,
        pub operate_type: Option<String>,
        pub device_id: Option<String>,
        pub status: Option<String>,
        pub detail_info: Option<String>,
        pub extend_info: Option<BTreeMap<String, serde_json::Value>>,
    }
}

/// A compact UTC time `secs` seconds after 2024-01-01, formatted without the model's help.
fn time(secs: u64) -> String {
    let day = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    format!("202401{:02}T{h:02}{m:02}{s:02}Z", 1 + day % 28)
}

/// A device id of eight hex digits, deterministic in `n`.
fn device_id(n: usize) -> String {
    format!("{:08x}", (n as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff)
}

const TASK_STATUSES: [&str; 5] = ["wait", "processing", "FAIL", "success", "stop"];
const SUB_STATUSES: [&str; 5] = ["wait", "processing", "FAIL", "success", "stop"];

/// A task-list page of `ITEMS` tasks with every field filled.
fn task_list_page() -> Vec<u8> {
    let mut out = String::with_capacity(64 * 1024);
    write!(out, r#"{{"totalCount":{},"pageNo":0,"pageSize":{ITEMS},"data":["#, ITEMS * 7).unwrap();
    for i in 0..ITEMS {
        if i > 0 {
            out.push(',');
        }
        let t = (i as u64) * 3_671;
        let devices: Vec<String> = (0..DEVICES_PER_TASK).map(|d| format!("\"{}\"", device_id(i * 64 + d))).collect();
        write!(
            out,
            concat!(
                r#"{{"operationId":"op-{:08x}","createTime":"{}","startTime":"{}","stopTime":"{}","#,
                r#""operateType":"{}","targets":{{"deviceType":"WaterMeter","model":"WM-{}","#,
                r#""manufacturerName":"Acme Metering","devices":[{}]}},"#,
                r#""policy":{{"executeType":"custom","startTime":"{}","endTime":"{}","retryType":true,"retryTimes":3}},"#,
                r#""status":"{}","staResult":{{"total":{},"wait":{},"processing":{},"success":{},"fail":{},"stop":0,"timeout":{}}},"#,
                r#""extendPara":{{"fileVersion":"V1.{}.{}","fileSize":{}}}}}"#
            ),
            (i as u64).wrapping_mul(0x9e37_79b9) & 0xffff_ffff,
            time(t),
            time(t + 60),
            time(t + 7_200),
            if i % 2 == 0 { "firmware_upgrade" } else { "software_upgrade" },
            i % 7,
            devices.join(","),
            time(t + 60),
            time(t + 3_660),
            TASK_STATUSES[i % TASK_STATUSES.len()],
            DEVICES_PER_TASK,
            i % 3,
            i % 5,
            DEVICES_PER_TASK - i % 3 - i % 5 - i % 2,
            i % 2,
            0,
            i % 10,
            i % 100,
            1_048_576 + i * 4_096,
        )
        .unwrap();
    }
    out.push_str("]}");
    out.into_bytes()
}

/// A subtask page of `ITEMS` subtasks with every field filled; extension members are sometimes null.
fn subtask_page() -> Vec<u8> {
    let mut out = String::with_capacity(48 * 1024);
    write!(out, r#"{{"totalCount":{},"pageNo":0,"pageSize":{ITEMS},"data":["#, ITEMS * 3).unwrap();
    for i in 0..ITEMS {
        if i > 0 {
            out.push(',');
        }
        let t = (i as u64) * 977;
        let upgraded = if i % 3 == 0 { "null".to_owned() } else { format!("\"{}\"", time(t + 600)) };
        write!(
            out,
            concat!(
                r#"{{"subOperationId":"sub-{:06}-{:08x}","createTime":"{}","startTime":"{}","stopTime":"{}","#,
                r#""operateType":"firmware_upgrade","deviceId":"{}","status":"{}","#,
                r#""detailInfo":"step {} of the upgrade finished on the device","#,
                r#""extendInfo":{{"upgradeTime":{},"sourceVersion":"V1.0.{}","curVersion":"V1.1.{}","#,
                r#""downloadTime":"{}","targetVersion":"V1.1.10"}}}}"#
            ),
            i,
            (i as u64).wrapping_mul(0x85eb_ca6b) & 0xffff_ffff,
            time(t),
            time(t + 30),
            time(t + 900),
            device_id(i),
            SUB_STATUSES[i % SUB_STATUSES.len()],
            i % 4,
            upgraded,
            i % 9,
            i % 10,
            time(t + 300),
        )
        .unwrap();
    }
    out.push_str("]}");
    out.into_bytes()
}

/// The two pages as 200 answers, checked once so that every variant decodes the same data.
struct Payloads {
    tasks: http::Response<Vec<u8>>,
    subtasks: http::Response<Vec<u8>>,
}

impl Payloads {
    fn new() -> Self {
        let p = Self { tasks: http::Response::new(task_list_page()), subtasks: http::Response::new(subtask_page()) };
        let typed = QueryUpgradeTaskList::try_from_http_response(&p.tasks).expect("tolerant decode of tasks");
        let plain: plain::OperationPage = serde_json::from_slice(p.tasks.body()).expect("plain decode of tasks");
        assert_eq!(typed.data.len(), ITEMS);
        assert_eq!(plain.data.len(), ITEMS);
        for (t, p) in typed.data.iter().zip(&plain.data) {
            assert_eq!(t.operation_id.as_str(), p.operation_id);
            let devices = t.targets.as_ref().and_then(|x| x.devices.as_ref()).map_or(0, Vec::len);
            assert_eq!(devices, DEVICES_PER_TASK);
            assert!(t.policy.is_some() && t.sta_result.is_some() && t.extend_para.is_some());
            assert!(t.status.as_ref().is_some_and(|s| !iot_model::WireEnum::is_unknown(s)));
        }
        let typed = QuerySubOperations::try_from_http_response(&p.subtasks).expect("tolerant decode of subtasks");
        let plain: plain::SubOperationPage = serde_json::from_slice(p.subtasks.body()).expect("plain decode");
        assert_eq!(typed.data.len(), ITEMS);
        assert_eq!(plain.data.len(), ITEMS);
        for (t, p) in typed.data.iter().zip(&plain.data) {
            assert_eq!(t.sub_operation_id.as_str(), p.sub_operation_id);
            assert_eq!(t.extend_info.as_ref().map(BTreeMap::len), Some(5));
        }
        p
    }
}

fn tasks_tolerant(p: &Payloads) {
    black_box(QueryUpgradeTaskList::try_from_http_response(black_box(&p.tasks)).unwrap());
}

fn tasks_model(p: &Payloads) {
    black_box(serde_json::from_slice::<iot_model::OperationPage>(black_box(p.tasks.body())).unwrap());
}

fn tasks_plain(p: &Payloads) {
    black_box(serde_json::from_slice::<plain::OperationPage>(black_box(p.tasks.body())).unwrap());
}

/// The plain baseline given the tolerant reader's first step too: the whole body checked as UTF-8 once, then
/// read as text, so that `serde_json` does not check each string again. Not the goal's baseline (a bare client
/// reads the bytes it received), but it shows how much of the gap comes from that step alone.
fn tasks_plain_text(p: &Payloads) {
    let text = std::str::from_utf8(black_box(p.tasks.body())).unwrap();
    black_box(serde_json::from_str::<plain::OperationPage>(text).unwrap());
}

fn subtasks_tolerant(p: &Payloads) {
    black_box(QuerySubOperations::try_from_http_response(black_box(&p.subtasks)).unwrap());
}

fn subtasks_model(p: &Payloads) {
    black_box(serde_json::from_slice::<iot_model::SubOperationPage>(black_box(p.subtasks.body())).unwrap());
}

fn subtasks_plain(p: &Payloads) {
    black_box(serde_json::from_slice::<plain::SubOperationPage>(black_box(p.subtasks.body())).unwrap());
}

/// See [`tasks_plain_text`].
fn subtasks_plain_text(p: &Payloads) {
    let text = std::str::from_utf8(black_box(p.subtasks.body())).unwrap();
    black_box(serde_json::from_str::<plain::SubOperationPage>(text).unwrap());
}

/// One decode of one page.
type Workload = fn(&Payloads);

/// Every workload by name; `tolerant` is the SDK's path, `model` the model types without the HTTP layer,
/// `plain` the baseline, `plain-text` the baseline read as text after one UTF-8 check of the body.
const WORKLOADS: &[(&str, Workload)] = &[
    ("tasks-tolerant", tasks_tolerant),
    ("tasks-model", tasks_model),
    ("tasks-plain", tasks_plain),
    ("tasks-plain-text", tasks_plain_text),
    ("subtasks-tolerant", subtasks_tolerant),
    ("subtasks-model", subtasks_model),
    ("subtasks-plain", subtasks_plain),
    ("subtasks-plain-text", subtasks_plain_text),
];

fn decode(c: &mut Criterion) {
    let p = Payloads::new();
    for (name, body) in [("task_list_page", p.tasks.body().len()), ("subtask_page", p.subtasks.body().len())] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(body as u64));
        let prefix = if name == "task_list_page" { "tasks-" } else { "subtasks-" };
        for (workload, run) in WORKLOADS.iter().filter(|(w, _)| w.starts_with(prefix)) {
            group.bench_function(&workload[prefix.len()..], |b| b.iter(|| run(&p)));
        }
        group.finish();
    }
}

/// Runs one workload `iterations` times without criterion, for instruction counting under callgrind.
fn run_loop(spec: &str) {
    let (name, iterations) = spec.split_once(':').unwrap_or((spec, "100"));
    let iterations: usize = iterations.parse().expect("DECODE_LOOP iterations must be a number");
    let p = Payloads::new();
    eprintln!("payloads: task list {} bytes, subtasks {} bytes", p.tasks.body().len(), p.subtasks.body().len());
    if name == "none" {
        return;
    }
    let run = WORKLOADS.iter().find(|(w, _)| *w == name).unwrap_or_else(|| panic!("no workload {name}")).1;
    for _ in 0..iterations {
        run(&p);
    }
}

/// Times `a` and `b` alternately for `rounds` rounds of `per_round` calls each; returns the median time of
/// one call of each (in microseconds) and the median of the per-round ratios `a / b`.
fn interleaved(p: &Payloads, a: Workload, b: Workload, rounds: usize, per_round: usize) -> (f64, f64, f64) {
    let time = |f: Workload| {
        let start = std::time::Instant::now();
        for _ in 0..per_round {
            f(p);
        }
        start.elapsed().as_secs_f64() * 1e6 / per_round as f64
    };
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first so that neither always runs on a warmer cache.
        let (x, y) = if round % 2 == 0 {
            let x = time(a);
            (x, time(b))
        } else {
            let y = time(b);
            (time(a), y)
        };
        ta.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut ta), median(&mut tb), median(&mut ratios))
}

fn run_rounds(rounds: &str) {
    let rounds: usize = rounds.parse().expect("DECODE_ROUNDS must be a number");
    let p = Payloads::new();
    for (name, a, b) in [
        ("task_list_page", tasks_tolerant as Workload, tasks_plain as Workload),
        ("subtask_page", subtasks_tolerant, subtasks_plain),
    ] {
        let (ta, tb, ratio) = interleaved(&p, a, b, rounds.max(1), 50);
        println!("{name}: tolerant {ta:.1} us, plain {tb:.1} us, median per-round ratio {ratio:.3}");
    }
}

fn main() {
    if let Ok(rounds) = std::env::var("DECODE_ROUNDS") {
        run_rounds(&rounds);
        return;
    }
    if let Ok(spec) = std::env::var("DECODE_LOOP") {
        run_loop(&spec);
        return;
    }
    // What `criterion_group!` and `criterion_main!` expand to, without the undocumented public function.
    let mut c = Criterion::default().configure_from_args();
    decode(&mut c);
    c.final_summary();
}
