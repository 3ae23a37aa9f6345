//! Whole rollouts against the simulator: a healthy firmware through four waves, and a bad one halted in the
//! first.

use std::collections::BTreeSet;
use std::time::Duration;

use iot_rollout::{HaltReason, Journal, Record, Rollout, RolloutConfig, UpgradeKind, WaveState};

use crate::harness::{Driver, Platform, Ran, water_meters};

/// The causes the simulator draws for a failed upgrade without retries.
const CAUSES: &[&str] = &[
    "download timed out",
    "device rejected the package: checksum mismatch",
    "device refused the upgrade: battery too low",
    "installation failed: the device rolled back to the previous version",
    "the device did not report the upgrade result in time",
];

/// 2,000 devices, 1% / 10% / 50% / 100%, a firmware that never fails: four waves of 20, 180, 800 and 1,000
/// devices in 1, 1, 4 and 4 tasks, every device in exactly one task, and the journal replays to the same end.
#[test]
fn a_healthy_firmware_reaches_all_2000_devices_in_four_waves() {
    let (sim, fleet, package) = water_meters(2000, 0.0);
    let mut p = Platform::new(sim);
    let config = RolloutConfig::new(package, UpgradeKind::Firmware, fleet.clone())
        .with_stages(vec![0.01, 0.10, 0.50, 1.0])
        .with_max_failure_rate(0.02)
        .with_poll_interval(Duration::from_secs(60));
    let mut rollout = Rollout::new(&config, p.clock.system()).unwrap();
    let mut journal = String::new();
    let mut driver = Driver::new(&mut journal);
    let Ran::Completed(report) = driver.run(&mut p, &mut rollout, |_| false) else { panic!("not completed") };
    let (creates, queries, listings, lookups) = (driver.creates, driver.queries, driver.listings, driver.lookups);

    assert!(report.completed && report.halted.is_none());
    let sizes: Vec<u64> = report.waves.iter().map(|w| w.devices).collect();
    assert_eq!(sizes, [20, 180, 800, 1000]);
    let tasks: Vec<usize> = report.waves.iter().map(|w| w.tasks.len()).collect();
    assert_eq!(tasks, [1, 1, 4, 4]);
    for wave in &report.waves {
        assert_eq!(wave.state, WaveState::Passed);
        assert_eq!((wave.succeeded, wave.failed, wave.failure_rate), (wave.devices, 0, 0.0));
        assert!(wave.failed_devices.is_empty());
    }
    assert_eq!((creates, listings, lookups), (10, 0, 0));

    // The platform holds exactly the ten tasks, and together they name every device once.
    assert_eq!(p.sim.task_counts().0, 10);
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for id in report.waves.iter().flat_map(|w| &w.tasks).map(|t| t.operation_id.clone().unwrap()) {
        let devices = p.task_devices(&id);
        assert!(devices.len() <= 256);
        total += devices.len();
        seen.extend(devices);
    }
    assert_eq!(total, 2000);
    assert_eq!(seen, fleet.iter().cloned().collect());

    // Each wave began only after the one before finished.
    let records = Journal::from_json_lines(&journal).unwrap();
    let order: Vec<String> = records
        .records()
        .iter()
        .filter_map(|r| match r {
            Record::WaveStarted { wave, .. } => Some(format!("start {wave}")),
            Record::WaveFinished { wave, passed, .. } => Some(format!("end {wave} {passed}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        ["start 0", "end 0 true", "start 1", "end 1 true", "start 2", "end 2 true", "start 3", "end 3 true"]
    );
    // The journal alone rebuilds the finished rollout.
    let mut resumed = Rollout::resume(records).unwrap();
    assert_eq!(resumed.report(), report);
    assert!(matches!(resumed.poll(p.clock.system()), iot_rollout::Action::Completed(_)));

    let elapsed = p.clock.elapsed();
    eprintln!(
        "healthy rollout: {} virtual minutes, {} requests ({creates} creates, {queries} task queries), journal {} lines / {} bytes",
        elapsed.as_secs() / 60,
        p.requests,
        journal.lines().count(),
        journal.len()
    );
    // Each wave's tasks finish within about six minutes (dispatch, download and install), polled every minute.
    assert!(elapsed < Duration::from_secs(40 * 60), "{elapsed:?}");
}

/// A firmware that fails on 30% of devices (no retries): the first wave (20 devices, one task) fails well
/// over the 2% threshold, the rollout halts there, the report lists exactly the devices the platform lists as
/// failed, with the platform's causes, and no task of a later wave exists.
#[test]
fn a_firmware_failing_on_30_percent_halts_in_the_first_wave_with_the_failed_devices() {
    let (sim, fleet, package) = water_meters(2000, 0.3);
    let mut p = Platform::new(sim);
    let config = RolloutConfig::new(package, UpgradeKind::Firmware, fleet);
    let mut rollout = Rollout::new(&config, p.clock.system()).unwrap();
    let mut journal = String::new();
    let Ran::Halted(report) = Driver::new(&mut journal).run(&mut p, &mut rollout, |_| false) else {
        panic!("not halted")
    };

    let Some(HaltReason::FailureRate { wave: 0, devices: 20, failed, rate, max_failure_rate }) = report.halted.clone()
    else {
        panic!("{:?}", report.halted)
    };
    assert!(failed >= 2, "{failed} of 20 failed");
    assert!(rate > max_failure_rate);
    assert_eq!(report.waves[0].state, WaveState::Failed);
    assert!(report.waves[1..].iter().all(|w| w.state == WaveState::NotStarted));
    assert_eq!(p.sim.task_counts().0, 1, "no task of a later wave was created");

    let id = report.waves[0].tasks[0].operation_id.clone().unwrap();
    let listed: BTreeSet<_> =
        report.waves[0].failed_devices.iter().map(|f| (f.device_id.clone(), f.cause.clone())).collect();
    assert_eq!(listed.len() as u64, failed);
    assert_eq!(listed, p.failed_subtasks(&id));
    assert!(listed.iter().all(|(_, cause)| CAUSES.contains(&cause.as_str())), "{listed:?}");
    assert!(report.waves[0].failed_devices.iter().all(|f| f.operation_id == id && f.status == "fail"));
    eprintln!(
        "30% firmware: halted at wave 0 with {failed} of 20 failed after {} virtual s",
        p.clock.elapsed().as_secs()
    );

    // A resume stays halted and sends nothing.
    let mut resumed = Rollout::resume(Journal::from_json_lines(&journal).unwrap()).unwrap();
    assert!(matches!(resumed.poll(p.clock.system()), iot_rollout::Action::Halted(r) if r == report));
}
