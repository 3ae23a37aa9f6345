//! Staged rollouts of a firmware or software package to a fleet, as a pure state machine: no I/O, no clock, no
//! randomness. The driver (the `iotctl` CLI, a test on a virtual clock) sends the calls and passes `now`.
//!
//! A [`Rollout`] cuts the fleet into waves by cumulative stage (1%, 10%, 50%, 100% by default: wave k covers the
//! devices up to `ceil(stage_k * fleet)`, in the fleet's order) and each wave into upgrade tasks of at most 256
//! devices. It creates a wave's tasks, polls them until every one has finished, lists the failed devices with
//! their causes, and judges the wave: at or under the failure threshold it goes on to the next wave, over it
//! it halts. See `docs/rollout.md` for the rules and the journal.
//!
//! # The action loop
//!
//! In the style of quinn-proto and of iot-proto's call machine: [`Rollout::poll`] says what to do,
//! [`Rollout::handle_answer`] and [`Rollout::handle_failure`] take what came of it, and
//! [`Rollout::take_records`] hands over the journal records to persist.
//!
//! ```text
//! let mut rollout = match journal_file_exists {
//!     false => Rollout::new(&RolloutConfig::new(package, UpgradeKind::Firmware, fleet), now())?,
//!     true => Rollout::resume(Journal::from_json_lines(&read(path)?)?)?,
//! };
//! loop {
//!     let action = rollout.poll(now());
//!     append_and_fsync(path, rollout.take_records());      // BEFORE acting: a create is journaled as pending here
//!     let answer = match action {
//!         Action::CheckPackage(q) => client.send(&q).await.map(Answer::Package),
//!         Action::Create(Create::Firmware(c)) => client.send(&c).await.map(Answer::Created),
//!         Action::Create(Create::Software(c)) => client.send(&c).await.map(Answer::Created),
//!         Action::FindCreated(q) => client.send(&q).await.map(Answer::Tasks),
//!         Action::QueryTask(q) => client.send(&q).await.map(Answer::Task),
//!         Action::ListFailed(q) => client.send(&q).await.map(Answer::Subtasks),
//!         Action::Wait(until) => { sleep_until(until).await; continue }
//!         Action::Completed(report) | Action::Halted(report) => break report,
//!     };
//!     match answer {
//!         Ok(answer) => rollout.handle_answer(now(), answer)?,
//!         Err(e) => rollout.handle_failure(now(), CallFailure::new(e.platform_may_have_acted(), e.is_retryable(), e.to_string()))?,
//!     }
//!     append_and_fsync(path, rollout.take_records());
//! }
//! ```
//!
//! `now` is wall-clock time ([`std::time::SystemTime`]), not `Instant`: the journal outlives the process, and a
//! resumed rollout compares its pending record's time with the platform's `createTime`.
//!
//! # Never creating a task twice
//!
//! A create is journaled as [`Record::CreatePending`] (with its devices and the time) before the driver sends
//! it, and as [`Record::Created`] once its id is known. [`Rollout::resume`] rebuilds the machine from the
//! journal; a create still pending is first looked for in the task list ([`Action::FindCreated`]: same kind,
//! the package's version, exactly the same devices, created no earlier than the pending record less a margin),
//! and sent again only when the whole list has been read without finding it. A create that fails in doubt
//! while the process lives is handled the same way.
//!
//! [`RetryFailed`] plans a new attempt for the devices that failed in an earlier task.
//!
#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly (see [package.metadata.docs.rs]): feature-gated items then say
// which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod journal;
mod machine;
mod plan;
mod report;
pub mod retry;

pub use error::{ConfigError, DriverError, JournalError};
pub use journal::{Journal, Record};
pub use machine::{Action, Answer, CallFailure, Create, Rollout};
pub use plan::{MAX_TASK_DEVICES, Plan, RolloutConfig, UpgradeKind, WavePlan};
pub use report::{FailedDevice, HaltReason, Report, TaskCounts, TaskReport, WaveReport, WaveState};
pub use retry::{RetryAction, RetryError, RetryFailed, RetryPlan};
