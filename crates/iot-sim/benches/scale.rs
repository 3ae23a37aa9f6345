//! The simulator at national-fleet scale, driven sans-IO through `Simulator::handle` (issue 11, goals 1 and 2).
//!
//! `cargo bench -p iot-sim --bench scale -- MODE ARGS`, where MODE is
//! - `page KIND SIZE [REPS]`: builds a simulator of that size, then answers REPS (default 200) page queries of KIND
//!   inside `measured_queries` and prints their wall time; under
//!   `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_queries*'` the instruction count
//!   is the queries' alone. KIND is `fleet` (SIZE devices, 100 tasks: a 100-item task-list page), `fleet-device`
//!   (the same, filtered by a device), `tasks` (SIZE one-device upgrade tasks: a 100-item page in the middle of
//!   the list), `tasks-status` (the same filtered by `operationStatus=success`), `task` (one task by id, the
//!   last one), `subtasks` (a broadcast batch task over SIZE devices: a 10-item details page in the middle),
//!   `subtasks-upgrade` (an upgrade task over about SIZE devices: a 10-item subtask page in the middle);
//! - `create [MAX]`: the creation curve: fleet start, a broadcast batch over the fleet, and group upgrade tasks,
//!   by size up to MAX, in wall and CPU time; `start N`: one fleet start;
//! - `memory N TASKS`: resident memory of an N-device fleet, then with TASKS finished 256-device upgrade tasks and
//!   one broadcast batch over the fleet, per device and per subtask.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

// The allocator the `iot-sim` binary uses (its `mimalloc` feature, on by default); `--no-default-features`
// measures under glibc's, whose fragmented heap the large cases pay for (docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};

/// Simulated start: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;
const BASE: &str = "http://sim.bench";

struct Bench {
    sim: Simulator,
    secs: u64,
    token: String,
}

impl Bench {
    fn new(devices: usize) -> Self {
        let sim = Simulator::new(SimConfig::default().with_fleet_size(devices).with_rate_limit(None));
        let mut b = Self { sim, secs: 0, token: String::new() };
        b.login();
        b
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + self.secs)
    }

    fn login(&mut self) {
        let req = http::Request::post(format!("{BASE}/iocm/app/sec/v1.1.0/login"))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("appId={DEFAULT_APP_ID}&secret={DEFAULT_SECRET}").into_bytes())
            .unwrap();
        let resp = self.sim.handle(self.now(), req);
        let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        self.token = v["accessToken"].as_str().unwrap().to_owned();
    }

    fn request(&self, method: &str, path: &str, body: &str) -> http::Request<Vec<u8>> {
        http::Request::builder()
            .method(method)
            .uri(format!("{BASE}{path}"))
            .header("app_key", DEFAULT_APP_ID)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let req = self.request(method, path, body);
        let resp = self.sim.handle(self.now(), req);
        assert_eq!(resp.status(), 200, "{method} {path}: {}", String::from_utf8_lossy(resp.body()));
        serde_json::from_slice(resp.body()).unwrap_or_default()
    }

    /// A firmware package and the ids of the first `limit` devices it fits. Only as many as needed: half a
    /// million id copies freed after setup would leave the heap fragmented and charge glibc's consolidation of
    /// the holes to every later query.
    fn firmware(&self, limit: usize) -> (String, Vec<String>) {
        let p = self
            .sim
            .packages()
            .iter()
            .find(|p| p.file_type == Some(iot_model::FileType::FirmwarePackage) && self.sim.devices_for(p).count() > 0)
            .unwrap();
        (p.file_id.to_string(), self.sim.devices_for(p).take(limit).map(|d| d.device_id.to_string()).collect())
    }

    fn upgrade_devices(&mut self, file_id: &str, devices: &[String]) -> String {
        let body = format!(r#"{{"fileId":"{file_id}","targets":{{"devices":{}}}}}"#, serde_json::json!(devices));
        let v = self.call("POST", "/iodm/northbound/v1.5.0/operations/firmwareUpgrade", &body);
        v["operationId"].as_str().unwrap().to_owned()
    }

    /// An upgrade task over every device of the firmware package's kind.
    fn upgrade_groups(&mut self) -> String {
        let p = self
            .sim
            .packages()
            .iter()
            .find(|p| p.file_type == Some(iot_model::FileType::FirmwarePackage) && self.sim.devices_for(p).count() > 0)
            .unwrap()
            .clone();
        let body = format!(
            r#"{{"fileId":"{}","targets":{{"deviceGroups":["north","south","east","west"],"deviceType":"{}","model":"{}","manufacturerName":"{}"}}}}"#,
            p.file_id,
            p.device_type.unwrap(),
            p.model.unwrap(),
            p.manufacturer_name.unwrap()
        );
        let v = self.call("POST", "/iodm/northbound/v1.5.0/operations/firmwareUpgrade", &body);
        v["operationId"].as_str().unwrap().to_owned()
    }

    fn broadcast(&mut self) -> String {
        let body = format!(
            r#"{{"appId":"{DEFAULT_APP_ID}","timeout":30,"taskName":"all","taskType":"DeviceCmd","param":{{"type":"Broadcast","command":{{"serviceId":"S","method":"M"}}}}}}"#
        );
        let v = self.call("POST", "/iocm/app/batchtask/v1.1.0/tasks", &body);
        v["taskID"].as_str().unwrap().to_owned()
    }
}

/// Answers `reps` copies of the query; the function callgrind counts.
#[inline(never)]
fn measured_queries(b: &mut Bench, path: &str, reps: usize) -> usize {
    let now = b.now();
    let mut bytes = 0;
    for _ in 0..reps {
        let req = b.request("GET", path, "");
        let resp = b.sim.handle(now, req);
        assert_eq!(resp.status(), 200, "{path}: {}", String::from_utf8_lossy(resp.body()));
        bytes += black_box(resp.body().len());
    }
    bytes
}

fn page(kind: &str, size: usize, reps: usize) {
    let started = Instant::now();
    let (mut b, path) = match kind {
        "fleet" | "fleet-device" => {
            let mut b = Bench::new(size);
            let (file, devices) = b.firmware(100);
            for i in 0..100 {
                b.upgrade_devices(&file, &devices[i % devices.len()..=i % devices.len()]);
            }
            let path = if kind == "fleet" {
                "/iodm/northbound/v1.5.0/operations?pageSize=100".to_owned()
            } else {
                format!("/iodm/northbound/v1.5.0/operations?pageSize=100&deviceId={}", devices[7])
            };
            (b, path)
        }
        "tasks" | "tasks-status" | "task" => {
            let mut b = Bench::new(1000);
            let (file, devices) = b.firmware(1000);
            let mut last = String::new();
            for i in 0..size {
                last = b.upgrade_devices(&file, &devices[i % devices.len()..=i % devices.len()]);
            }
            // Every task has finished: the status filter matches them all.
            b.secs += 3 * 3600;
            b.login();
            let mid = (size / 100 / 2) as u64;
            let path = match kind {
                "tasks" => format!("/iodm/northbound/v1.5.0/operations?pageSize=100&pageNo={mid}"),
                "tasks-status" => {
                    format!("/iodm/northbound/v1.5.0/operations?pageSize=100&pageNo={mid}&operationStatus=success")
                }
                _ => format!("/iodm/northbound/v1.5.0/operations/{last}"),
            };
            (b, path)
        }
        "subtasks" => {
            let mut b = Bench::new(size);
            let task = b.broadcast();
            b.secs += 600;
            b.login();
            let mid = size / 10 / 2;
            (b, format!("/iocm/app/batchtask/v1.1.0/taskDetails?taskId={task}&pageSize=10&pageNo={mid}"))
        }
        "subtasks-upgrade" => {
            let mut b = Bench::new(size * 2);
            let op = b.upgrade_groups();
            b.secs += 600;
            b.login();
            let mid = size / 10 / 2;
            (b, format!("/iodm/northbound/v1.5.0/operations/{op}/subOperations?pageSize=10&pageNo={mid}"))
        }
        other => panic!("unknown page kind {other}"),
    };
    let setup = started.elapsed();
    let t = Instant::now();
    let bytes = measured_queries(&mut b, &path, reps);
    let per = t.elapsed() / reps.max(1) as u32;
    println!("page {kind} size {size}: setup {setup:.2?}, {reps} queries, {per:.2?} each, {} bytes each", bytes / reps);
}

/// The CPU time this thread has run, from the scheduler's own account (nanoseconds): on a shared, loaded machine
/// it leaves out the time other processes held the core, which wall time does not.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Runs `f` and returns its wall and CPU time.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (t, c) = (Instant::now(), cpu());
    let out = f();
    (out, t.elapsed(), cpu() - c)
}

fn create(max: usize) {
    println!("fleet start and a broadcast batch over the fleet (wall / CPU)");
    for n in [1_000, 10_000, 100_000, 1_000_000].into_iter().filter(|n| *n <= max) {
        let (mut b, wall, cpu) = timed(|| Bench::new(n));
        let (_, bwall, bcpu) = timed(|| b.broadcast());
        println!("  {n:>9} devices: start {wall:>10.2?} / {cpu:>10.2?}   broadcast {bwall:>10.2?} / {bcpu:>10.2?}");
    }
    println!("upgrade tasks by device group (wall / CPU)");
    for n in [256, 1_000, 10_000, 25_000, 100_000, 500_000].into_iter().filter(|n| *n <= max) {
        let mut b = Bench::new(n * 2);
        let (op, wall, cpu) = timed(|| b.upgrade_groups());
        let subs = b.sim.sub_operation_ids(&iot_model::OperationId::new(op).unwrap()).unwrap().len();
        println!("  {subs:>9} subtasks: {wall:>10.2?} / {cpu:>10.2?}");
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn memory(devices: usize, tasks: usize) {
    let base = rss_kib();
    let mut b = Bench::new(devices);
    let fleet = rss_kib();
    let (file, ids) = b.firmware(tasks * 256 + 256);
    let before_tasks = rss_kib();
    for i in 0..tasks {
        let from = (i * 256) % ids.len().saturating_sub(256).max(1);
        b.upgrade_devices(&file, &ids[from..(from + 256).min(ids.len())]);
    }
    b.broadcast();
    b.secs += 24 * 3600;
    b.login();
    b.sim.advance_to(b.now());
    let after = rss_kib();
    let s = b.sim.state_size();
    let subs = s.upgrade_subtasks + s.batch_subtasks;
    println!(
        "memory: {devices} devices {:.0} MiB RSS ({} bytes/device); {} tasks, {subs} subtasks: {:.0} MiB RSS in all \
         ({} bytes/subtask)",
        (fleet - base) as f64 / 1024.0,
        (fleet - base) * 1024 / devices.max(1) as u64,
        s.upgrade_tasks + s.batch_tasks,
        after as f64 / 1024.0,
        (after - before_tasks) * 1024 / subs.max(1) as u64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let arg = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    match args.first().map(String::as_str) {
        Some("page") => page(&args[1], arg(2).unwrap_or(1000), arg(3).unwrap_or(200)),
        Some("create") => create(arg(1).unwrap_or(1_000_000)),
        Some("start") => {
            let (b, wall, cpu) = timed(|| Bench::new(arg(1).unwrap_or(1_000_000)));
            println!("start {} devices: {wall:.2?} wall, {cpu:.2?} CPU", b.sim.devices().len());
        }
        Some("memory") => memory(arg(1).unwrap_or(1_000_000), arg(2).unwrap_or(1000)),
        // `cargo bench` without arguments: a quick pass over every mode at small sizes.
        _ => {
            for kind in ["fleet", "fleet-device", "tasks", "tasks-status", "task", "subtasks", "subtasks-upgrade"] {
                page(kind, 1000, 50);
            }
            memory(10_000, 10);
        }
    }
}
