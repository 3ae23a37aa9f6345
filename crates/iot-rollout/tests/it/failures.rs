//! Failed calls and driver mistakes, fed by hand (no simulator): what halts, what pauses, what a resume does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iot_model::{CategoryInfo, CreateUpgradeTaskResponse, DeviceId, FileId, FileType, OperationId};
use iot_rollout::{
    Action, Answer, CallFailure, DriverError, HaltReason, Journal, Record, Rollout, RolloutConfig, UpgradeKind,
};

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn rollout() -> Rollout {
    let fleet = (0..300).map(|i| DeviceId::new(format!("dev-{i:03}")).unwrap()).collect();
    let config = RolloutConfig::new(FileId::new("pkg").unwrap(), UpgradeKind::Firmware, fleet)
        .with_stages(vec![0.5, 1.0])
        .with_max_call_failures(3);
    Rollout::new(&config, t(0)).unwrap()
}

fn package() -> Answer {
    Answer::Package(
        CategoryInfo::new(FileId::new("pkg").unwrap())
            .with_file_type(FileType::FirmwarePackage)
            .with_version("V2.0.0".into()),
    )
}

/// A rollout past its package check, with its first create returned.
fn at_first_create() -> Rollout {
    let mut r = rollout();
    assert!(matches!(r.poll(t(0)), Action::CheckPackage(_)));
    r.handle_answer(t(0), package()).unwrap();
    assert!(matches!(r.poll(t(0)), Action::Create(_)));
    r
}

#[test]
fn answers_to_the_wrong_question_are_refused_and_the_call_stays_outstanding() {
    let mut r = rollout();
    assert_eq!(r.handle_answer(t(0), package()), Err(DriverError::NothingOutstanding));
    let Action::CheckPackage(q) = r.poll(t(0)) else { panic!() };
    let created = Answer::Created(CreateUpgradeTaskResponse::new(OperationId::new("op").unwrap()));
    assert!(matches!(r.handle_answer(t(0), created), Err(DriverError::WrongAnswer { .. })));
    assert_eq!(r.poll(t(0)), Action::CheckPackage(q));
}

#[test]
fn a_package_of_the_wrong_kind_halts_before_anything_is_created() {
    let mut r = rollout();
    let _ = r.poll(t(0));
    let software = CategoryInfo::new(FileId::new("pkg").unwrap()).with_file_type(FileType::SoftwarePackage);
    r.handle_answer(t(0), Answer::Package(software)).unwrap();
    let Action::Halted(report) = r.poll(t(0)) else { panic!() };
    assert!(matches!(report.halted, Some(HaltReason::PackageUnusable { .. })));
}

/// The first wave of 150 devices is one task of 150: the create is the first action after the check.
#[test]
fn a_create_the_platform_refused_for_good_halts_and_a_resume_stays_halted() {
    let mut r = at_first_create();
    let refused = CallFailure::new(false, false, "platform answered 400 with error 123016");
    r.handle_failure(t(1), refused).unwrap();
    let Action::Halted(report) = r.poll(t(1)) else { panic!() };
    assert!(matches!(report.halted, Some(HaltReason::CreateRefused { wave: 0, task: 0, .. })));
    let kinds: Vec<&str> = r
        .journal()
        .records()
        .iter()
        .map(|rec| match rec {
            Record::Started { .. } => "started",
            Record::PackageChecked { .. } => "package",
            Record::WaveStarted { .. } => "wave",
            Record::CreatePending { .. } => "pending",
            Record::CreateNotMade { .. } => "not made",
            Record::Halted { .. } => "halted",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["started", "package", "wave", "pending", "not made", "halted"]);
    let mut resumed = Rollout::resume(r.journal().clone()).unwrap();
    assert!(matches!(resumed.poll(t(2)), Action::Halted(_)));
}

/// A create in doubt (sent, no answer) stays pending: after a pause the rollout looks for its task instead of
/// sending it again.
#[test]
fn a_create_in_doubt_is_looked_up_after_a_pause() {
    let mut r = at_first_create();
    r.handle_failure(t(1), CallFailure::new(true, false, "outcome unknown")).unwrap();
    let Action::Wait(until) = r.poll(t(1)) else { panic!() };
    assert_eq!(until, t(61));
    let Action::FindCreated(query) = r.poll(until) else { panic!() };
    assert_eq!(query.device_id.unwrap().as_str(), "dev-000");
}

/// Calls that keep failing halt the rollout after `max_call_failures`, but not for good: a resume carries on.
#[test]
fn calls_that_keep_failing_halt_resumably() {
    let mut r = rollout();
    let mut now = t(0);
    for _ in 0..3 {
        match r.poll(now) {
            Action::CheckPackage(_) => r.handle_failure(now, CallFailure::new(true, true, "timed out")).unwrap(),
            Action::Wait(until) => now = until,
            other => panic!("{other:?}"),
        }
        if let Action::Wait(until) = r.poll(now) {
            now = until;
        }
    }
    let Action::Halted(report) = r.poll(now) else { panic!() };
    assert!(matches!(report.halted, Some(HaltReason::CallsFailing { failures: 3, .. })));
    let text = r.journal().to_json_lines().unwrap();
    let mut resumed = Rollout::resume(Journal::from_json_lines(&text).unwrap()).unwrap();
    assert!(matches!(resumed.poll(now), Action::CheckPackage(_)));
}

#[test]
fn a_journal_that_does_not_fit_is_refused() {
    let r = at_first_create();
    let mut records = r.journal().records().to_vec();
    records.push(Record::Created {
        at_ms: 0,
        wave: 1,
        task: 0,
        operation_id: OperationId::new("op").unwrap(),
        found_by_lookup: false,
    });
    let e = Rollout::resume(Journal::from_records(records)).unwrap_err();
    assert!(matches!(e, iot_rollout::JournalError::Inconsistent { record: 5, .. }), "{e}");
    assert!(matches!(Rollout::resume(Journal::default()), Err(iot_rollout::JournalError::Empty)));
}
