//! retry-failed: a finished task's failed devices, and creates for exactly those.

use std::collections::BTreeSet;
use std::time::Duration;

use iot_model::{CreateUpgradeTask, DeviceId, OperateDevices};
use iot_proto::CreateFirmwareUpgradeTask;
use iot_rollout::{Answer, CallFailure, Create, RetryAction, RetryError, RetryFailed, RetryPlan};

use crate::harness::{Platform, water_meters};

fn run(p: &mut Platform, mut retry: RetryFailed) -> Result<RetryPlan, RetryError> {
    loop {
        let result = match retry.poll() {
            RetryAction::QueryTask(q) => p.call(&q).map(Answer::Task),
            RetryAction::ListFailed(q) => p.call(&q).map(Answer::Subtasks),
            RetryAction::Done(result) => return result,
            other => panic!("{other:?}"),
        };
        match result {
            Ok(answer) => retry.handle_answer(answer).unwrap(),
            Err(e) => retry.handle_failure(CallFailure::from_call_error(&e)).unwrap(),
        }
    }
}

/// A task of 256 devices with a 30% failing firmware: the retry names exactly the failed devices, at most 256
/// (or the chosen size) per create, and the tasks it creates on the platform name exactly those devices.
#[test]
fn retry_failed_creates_tasks_for_exactly_the_failed_devices() {
    let (sim, fleet, package) = water_meters(300, 0.3);
    let mut p = Platform::new(sim);
    let body = CreateUpgradeTask::new(package.clone(), OperateDevices::new().with_devices(fleet[..256].to_vec()));
    let source = p.call(&CreateFirmwareUpgradeTask::new(body)).unwrap().operation_id;

    // Still running: no plan, the list of failures could still grow.
    let early = run(&mut p, RetryFailed::new(source.clone(), package.clone()));
    assert!(matches!(early, Err(RetryError::TaskRunning { .. })), "{early:?}");

    p.clock.advance(Duration::from_secs(30 * 60));
    let failed = p.failed_subtasks(&source);
    let failed_ids: BTreeSet<DeviceId> = failed.iter().map(|(d, _)| d.clone()).collect();
    assert!(failed.len() > 40, "{} of 256 failed", failed.len());

    let plan = run(&mut p, RetryFailed::new(source.clone(), package.clone())).unwrap();
    let listed: BTreeSet<_> = plan.failed.iter().map(|f| (f.device_id.clone(), f.cause.clone())).collect();
    assert_eq!(listed, failed);
    assert_eq!(plan.creates.len(), 1);
    let in_creates: Vec<DeviceId> = plan.creates.iter().flat_map(|c| c.devices().to_vec()).collect();
    assert_eq!(in_creates.len(), failed_ids.len(), "each device once");
    assert_eq!(in_creates.iter().cloned().collect::<BTreeSet<_>>(), failed_ids);
    assert_eq!(plan.rollout_config().unwrap().fleet.len(), failed_ids.len());

    // Smaller tasks: every device in exactly one, none over the size.
    let small = run(&mut p, RetryFailed::new(source.clone(), package).with_task_size(32)).unwrap();
    assert_eq!(small.creates.len(), failed_ids.len().div_ceil(32));
    assert!(small.creates.iter().all(|c| c.devices().len() <= 32));
    let in_small: Vec<DeviceId> = small.creates.iter().flat_map(|c| c.devices().to_vec()).collect();
    assert_eq!(in_small.len(), failed_ids.len());
    assert_eq!(in_small.into_iter().collect::<BTreeSet<_>>(), failed_ids);

    // Sent, the creates make tasks for exactly those devices.
    let before = p.sim.task_counts().0;
    let mut on_platform = BTreeSet::new();
    for create in &plan.creates {
        let Create::Firmware(request) = create else { panic!("the source task was a firmware upgrade") };
        let id = p.call(request).unwrap().operation_id;
        on_platform.extend(p.task_devices(&id));
    }
    assert_eq!(p.sim.task_counts().0, before + plan.creates.len());
    assert_eq!(on_platform, failed_ids);
}
