//! A rollout killed mid-wave and resumed from its journal, against `iotctl sim serve` on loopback: the
//! simulator must end up with exactly one task per planned task, and the resumed rollout must complete.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::process::{iotctl, run, scratch, text};

/// The seed-1, 300-device fleet's water meter firmware V2.0.0 (as in tests/cmd/rollout.md).
const PACKAGE: &str = "b0abfe663519a188df688537";
/// The simulator's published development secret.
const SECRET: &str = "sim-secret";
/// No step of this test may take longer; a hung process fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(90);

/// A child process that is killed and reaped however the test ends, so nothing it started outlives it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut std::process::Command) -> Running {
    match cmd.spawn() {
        Ok(child) => Running(child),
        Err(e) => panic!("cannot start iotctl: {e}"),
    }
}

/// The journal's records, parsed (a line torn by the kill is skipped, as the library does).
fn records(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn a_rollout_killed_mid_wave_resumes_without_creating_any_task_twice() {
    let dir = scratch();
    // A simulator 300 times faster than real time: an upgrade takes at most ~1 s, so a wave is long enough to
    // be killed in the middle of, and the whole rollout takes a few seconds.
    let mut serve = spawn(
        iotctl(dir.path())
            .args(["sim", "serve", "-o", "json", "--sim-time-scale", "300", "--sim-failure-rate", "0"])
            .stdout(Stdio::piped()),
    );
    let mut banner = String::new();
    if let Some(stdout) = serve.0.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut banner);
    }
    assert!(banner.contains("http://127.0.0.1:"), "sim serve did not start: {banner}");

    let ids = run(iotctl(dir.path()).args(["sim", "devices", "--device-type", "WaterMeter", "--ids", "--limit", "60"]));
    assert!(ids.status.success());
    let fleet = dir.path().join("fleet.txt");
    std::fs::write(&fleet, &ids.stdout).unwrap_or_else(|e| panic!("cannot write the fleet: {e}"));
    let journal = dir.path().join("rollout.jsonl");

    let rollout = |args: &[&str]| {
        let mut cmd = iotctl(dir.path());
        cmd.env("IOTCTL_SECRET", SECRET).args(["--profile", "sim"]).args(args);
        cmd
    };
    let mut first = spawn(
        rollout(&["rollout", "--firmware", "--package", PACKAGE, "--stages", "10%,50%,100%", "--poll", "0.1"])
            .arg("--devices")
            .arg(&fleet)
            .arg("--journal")
            .arg(&journal)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // Kill it as soon as the journal holds a create of the second wave or later: pending (the create may or
    // may not have reached the simulator) or already created.
    let started = Instant::now();
    let killed_at = loop {
        let found = records(&journal).into_iter().find(|r| {
            matches!(r["event"].as_str(), Some("create_pending" | "created")) && r["wave"].as_u64() >= Some(1)
        });
        if let Some(record) = found {
            let _ = first.0.kill();
            let _ = first.0.wait();
            break record;
        }
        if let Ok(Some(status)) = first.0.try_wait() {
            panic!("the rollout ended ({status}) before its second wave was created");
        }
        assert!(started.elapsed() < DEADLINE, "no create of wave 2 journaled in time");
        std::thread::sleep(Duration::from_millis(1));
    };
    let before = records(&journal);
    assert!(!before.iter().any(|r| r["event"] == "completed"), "killed too late: {killed_at}");
    let pending_only = before.iter().filter(|r| r["event"] == "create_pending").count()
        > before.iter().filter(|r| r["event"] == "created").count();
    eprintln!(
        "killed after {} of wave {} task {}; a create was pending without its id: {pending_only}",
        killed_at["event"], killed_at["wave"], killed_at["task"]
    );

    let mut second = spawn(rollout(&["rollout", "resume"]).arg(&journal).stdout(Stdio::piped()).stderr(Stdio::piped()));
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = second.0.try_wait() {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "the resumed rollout did not finish in time");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(s) = second.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut BufReader::new(s), &mut out);
    }
    if let Some(s) = second.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut BufReader::new(s), &mut err);
    }
    assert!(status.success(), "resume failed ({status}): {out}\n{err}");
    assert!(out.contains("rollout completed: 60 of 60 devices upgraded"), "{out}");

    // Every planned task, by its devices, and every firmware V2.0.0 task the simulator holds.
    let after = records(&journal);
    let found = after.iter().filter(|r| r["found_by_lookup"] == true).count();
    let absent = after.iter().filter(|r| r["event"] == "lookup_absent").count();
    eprintln!("resumed: {found} task(s) found on the platform, {absent} proven absent and created again");
    let plan = &after[0]["plan"]["waves"];
    let planned: Vec<BTreeSet<String>> = plan
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_owned)).collect())
        .collect();
    assert_eq!(planned.len(), 3, "10%, 50% and 100% of 60 devices: three tasks");
    let listed = run(&mut rollout(&["tasks", "list", "--type", "firmware", "-o", "json"]));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let ours: Vec<BTreeSet<String>> = text(&listed.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|t| t["extendPara"]["fileVersion"] == "V2.0.0")
        .map(|t| {
            t["targets"]["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .collect();
    assert_eq!(ours.len(), planned.len(), "one task per planned task, none twice: {ours:?}");
    for task in &planned {
        assert_eq!(ours.iter().filter(|t| *t == task).count(), 1, "planned task {task:?}");
    }
    let created: BTreeSet<&str> =
        after.iter().filter(|r| r["event"] == "created").filter_map(|r| r["operation_id"].as_str()).collect();
    assert_eq!(created.len(), planned.len(), "the journal names each task once");
    assert_eq!(after.iter().filter(|r| r["event"] == "completed").count(), 1);
    drop(serve);
}
