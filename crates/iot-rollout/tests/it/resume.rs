//! A driver killed mid-wave, between sending a create and journaling its id, and resumed from the journal: the
//! pending create is found in the task list, never sent twice.

use std::collections::BTreeSet;
use std::time::Duration;

use iot_model::DeviceId;
use iot_rollout::{Action, Create, Journal, Record, Rollout, RolloutConfig, UpgradeKind};

use crate::harness::{Driver, Platform, Ran, water_meters};

/// Runs a 2,000-device rollout up to the `nth` create (from 1), which the hook stops before it is carried out;
/// returns the platform, the journal so far and the create.
fn run_to_create(nth: usize) -> (Platform, String, Create) {
    let (sim, fleet, package) = water_meters(2000, 0.0);
    let mut p = Platform::new(sim);
    let config = RolloutConfig::new(package, UpgradeKind::Firmware, fleet);
    let mut rollout = Rollout::new(&config, p.clock.system()).unwrap();
    let mut journal = String::new();
    let mut seen = 0;
    let ran = Driver::new(&mut journal).run(&mut p, &mut rollout, |action| {
        seen += usize::from(matches!(action, Action::Create(_)));
        seen == nth
    });
    let Ran::Stopped(Action::Create(create)) = ran else { panic!("{ran:?}") };
    // The machine is dropped here: the process is killed.
    drop(rollout);
    (p, journal, create)
}

fn last_record(journal: &str) -> Record {
    Journal::from_json_lines(journal).unwrap().records().last().unwrap().clone()
}

/// Tasks on the platform that name exactly `devices`.
fn tasks_for(p: &mut Platform, devices: &[DeviceId]) -> usize {
    let wanted: BTreeSet<&DeviceId> = devices.iter().collect();
    p.all_tasks()
        .iter()
        .filter(|t| t.targets.as_ref().unwrap().devices.as_ref().unwrap().iter().collect::<BTreeSet<_>>() == wanted)
        .count()
}

/// Killed after the 4th create (wave 2, task 1) reached the platform but before its id was journaled.
#[test]
fn a_create_sent_before_the_kill_is_found_again_not_sent_twice() {
    let (mut p, mut journal, create) = run_to_create(4);
    let Record::CreatePending { wave: 2, task: 1, devices, .. } = last_record(&journal) else { panic!("{journal}") };
    assert_eq!(devices, create.devices());
    // The create reaches the platform; the answer is lost with the process.
    let Create::Firmware(request) = &create else { panic!() };
    let _lost = p.call(request).unwrap();
    assert_eq!(p.sim.task_counts().0, 4);

    // A new process, half a minute later, resumes from what was on disk.
    p.clock.advance(Duration::from_secs(30));
    p.restart_client();
    let mut rollout = Rollout::resume(Journal::from_json_lines(&journal).unwrap()).unwrap();
    let mut driver = Driver::new(&mut journal);
    let ran = driver.run(&mut p, &mut rollout, |_| false);
    assert!(matches!(ran, Ran::Completed(_)), "{ran:?}");
    assert!(driver.lookups >= 1);
    assert_eq!(driver.creates, 6, "the six creates after the lost one, not the lost one again");

    assert_eq!(tasks_for(&mut p, create.devices()), 1, "exactly one task for those devices");
    assert_eq!(p.sim.task_counts().0, 10);
    let found = Journal::from_json_lines(&journal)
        .unwrap()
        .records()
        .iter()
        .any(|r| matches!(r, Record::Created { wave: 2, task: 1, found_by_lookup: true, .. }));
    assert!(found, "the task was adopted from the task list");
}

/// Killed after the pending record was durable but before the create was sent: the lookup proves it absent and
/// the create is sent once.
#[test]
fn a_create_never_sent_before_the_kill_is_sent_once_after_the_lookup() {
    let (mut p, mut journal, create) = run_to_create(4);
    assert_eq!(p.sim.task_counts().0, 3);
    p.clock.advance(Duration::from_secs(30));
    p.restart_client();
    let mut rollout = Rollout::resume(Journal::from_json_lines(&journal).unwrap()).unwrap();
    let ran = Driver::new(&mut journal).run(&mut p, &mut rollout, |_| false);
    assert!(matches!(ran, Ran::Completed(_)), "{ran:?}");
    assert_eq!(tasks_for(&mut p, create.devices()), 1);
    assert_eq!(p.sim.task_counts().0, 10);
    let records = Journal::from_json_lines(&journal).unwrap();
    let for_task: Vec<&str> = records
        .records()
        .iter()
        .filter_map(|r| match r {
            Record::CreatePending { wave: 2, task: 1, .. } => Some("pending"),
            Record::LookupAbsent { wave: 2, task: 1, .. } => Some("absent"),
            Record::Created { wave: 2, task: 1, found_by_lookup, .. } => {
                Some(if *found_by_lookup { "found" } else { "created" })
            }
            _ => None,
        })
        .collect();
    assert_eq!(for_task, ["pending", "absent", "pending", "created"]);
}

/// A journal whose last line was torn by the kill resumes from the lines before it.
#[test]
fn a_torn_last_line_is_dropped_on_resume() {
    let (mut p, journal, _) = run_to_create(2);
    // The pending record of the 2nd create, half written.
    let torn = &journal[..journal.len() - 15];
    let mut rollout = Rollout::resume(Journal::from_json_lines(torn).unwrap()).unwrap();
    // A driver cuts the torn tail off the file before it appends again.
    let mut rest = torn[..=torn.rfind('\n').unwrap()].to_owned();
    let ran = Driver::new(&mut rest).run(&mut p, &mut rollout, |_| false);
    assert!(matches!(ran, Ran::Completed(_)), "{ran:?}");
    assert_eq!(p.sim.task_counts().0, 10);
}
