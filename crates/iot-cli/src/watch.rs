//! Following a task until it ends: progress bars on a terminal, plain lines elsewhere, JSON lines with `-o json`.
//!
//! The task is polled every `--interval` seconds (the client keeps under the platform's rate limit by itself).
//! Each poll is reduced to a [`Snapshot`]: the task's state and its per-status counters. On a terminal there is
//! one bar per status plus a "done" bar with the rate and the ETA; anywhere else a line is printed whenever the
//! counters change, so a log or a CI job shows the same progress without control characters. The command's
//! exit code says how the task ended (docs/cli.md).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use iot_model::{BatchTaskStatus, OperationId, OperationStatus, TaskId};
use iot_proto::{QueryBatchTask, QueryUpgradeTask};
use serde::Serialize;

use crate::cli::Format;
use crate::connect::Session;
use crate::error::{Exit, Failure};
use crate::output::say;

/// One poll of a task, reduced to what the display needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The task's id.
    pub id: String,
    /// The task's state as the platform spells it.
    pub status: String,
    /// Devices in the task.
    pub total: u64,
    /// Devices that finished, whatever the outcome.
    pub done: u64,
    /// Count per status, in display order.
    pub counts: Vec<(&'static str, u64)>,
    /// Set once the task has ended: whether it ended well, and how to say it.
    #[serde(skip)]
    pub ended: Option<(bool, String)>,
}

/// Follows an upgrade task.
pub async fn upgrade(s: &Session, format: Format, id: &OperationId, interval: f64) -> Result<Exit, Failure> {
    let query = QueryUpgradeTask::new(id.clone());
    follow(format, interval, "upgrade task", || async {
        let t = s.client.query_upgrade_task(&query).await?;
        let sta = t.sta_result.unwrap_or_default();
        let done = sta.success + sta.fail + sta.stop;
        let total = sta.total.unwrap_or(sta.wait + sta.processing + done);
        let mut counts =
            vec![("success", sta.success), ("fail", sta.fail), ("processing", sta.processing), ("wait", sta.wait)];
        if sta.stop > 0 {
            counts.push(("stop", sta.stop));
        }
        let ended = match &t.status {
            Some(OperationStatus::Success) => {
                Some((true, format!("success: {} of {total} devices upgraded", sta.success)))
            }
            Some(OperationStatus::Failed) => {
                Some((false, format!("failed: {} of {total} devices failed, {} upgraded", sta.fail, sta.success)))
            }
            Some(OperationStatus::Stop) => {
                Some((false, format!("stopped: {} of {total} devices upgraded", sta.success)))
            }
            _ => None,
        };
        let status = t.status.as_ref().map(ToString::to_string).unwrap_or_default();
        Ok(Snapshot { id: t.operation_id.to_string(), status, total, done, counts, ended })
    })
    .await
    .map_err(|f| match f.exit {
        Exit::TaskFailed => f.hint(format!("list the failed devices with `iotctl subtasks {id} --status fail`")),
        _ => f,
    })
}

/// Follows a batch task.
pub async fn batch(s: &Session, format: Format, id: &TaskId, interval: f64) -> Result<Exit, Failure> {
    let query = QueryBatchTask::new(id.clone());
    follow(format, interval, "batch task", || async {
        let b = s.client.query_batch_task(&query).await?;
        let (success, fail, timeout) =
            (b.success_cnt.unwrap_or(0), b.fail_cnt.unwrap_or(0), b.timeout_cnt.unwrap_or(0));
        let done = b.complete_cnt.unwrap_or(success + fail + timeout);
        let total = b.total_cnt.unwrap_or(done);
        let counts =
            vec![("success", success), ("fail", fail), ("timeout", timeout), ("running", total.saturating_sub(done))];
        let ended = match &b.status {
            Some(BatchTaskStatus::Complete) if fail == 0 && timeout == 0 => {
                Some((true, format!("complete: {success} of {total} commands succeeded")))
            }
            Some(BatchTaskStatus::Complete | BatchTaskStatus::Timeout) => Some((
                false,
                format!(
                    "{}: {success} of {total} commands succeeded, {fail} failed, {timeout} timed out",
                    b.status.as_ref().map(ToString::to_string).unwrap_or_default().to_lowercase()
                ),
            )),
            _ => None,
        };
        let status = b.status.as_ref().map(ToString::to_string).unwrap_or_default();
        Ok(Snapshot { id: b.task_id.to_string(), status, total, done, counts, ended })
    })
    .await
    .map_err(|f| match f.exit {
        Exit::TaskFailed => f.hint(format!("list the failed commands with `iotctl batch details {id} --status fail`")),
        _ => f,
    })
}

/// Polls until the task ends, showing its progress, and turns the ending into an exit code.
async fn follow<F, Fut>(format: Format, interval: f64, what: &str, mut poll: F) -> Result<Exit, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Snapshot, Failure>>,
{
    if !interval.is_finite() || interval < 0.05 {
        return Err(Failure::usage(format!("--interval must be at least 0.05 seconds, got {interval}")));
    }
    let interval = Duration::from_secs_f64(interval);
    let mut display = Display::new(format);
    let started = Instant::now();
    let mut first_done = None;
    loop {
        let snap = match poll().await {
            Ok(snap) => snap,
            Err(f) => {
                display.clear();
                return Err(f);
            }
        };
        let base = *first_done.get_or_insert(snap.done);
        display.show(&snap, started.elapsed(), base)?;
        if let Some((ok, summary)) = &snap.ended {
            display.clear();
            if format == Format::Json {
                let line = serde_json::json!({"id": snap.id, "status": snap.status, "ended": true, "ok": ok});
                say(&line.to_string())?;
            } else {
                say(&format!("{what} {} ended {summary}", snap.id))?;
            }
            return if *ok {
                Ok(Exit::Ok)
            } else {
                Err(Failure::new(Exit::TaskFailed, format!("{what} {} ended {summary}", snap.id)))
            };
        }
        tokio::time::sleep(interval).await;
    }
}

/// Where progress goes.
enum Display {
    /// indicatif bars: "done" first, then one per status.
    Bars { multi: MultiProgress, done: ProgressBar, per_status: Vec<ProgressBar> },
    /// A line per change.
    Lines { last: Option<Snapshot>, json: bool },
}

impl Display {
    fn new(format: Format) -> Self {
        if format == Format::Table && std::io::stdout().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let done = multi.add(ProgressBar::new(0));
            done.set_style(bar_style("{prefix:>10} [{bar:40.green/white}] {pos}/{len}  {per_sec}  ETA {eta}  {msg}"));
            done.set_prefix("done");
            Display::Bars { multi, done, per_status: Vec::new() }
        } else {
            Display::Lines { last: None, json: format == Format::Json }
        }
    }

    fn show(&mut self, snap: &Snapshot, elapsed: Duration, first_done: u64) -> Result<(), Failure> {
        match self {
            Display::Bars { multi, done, per_status } => {
                done.set_length(snap.total);
                done.set_position(snap.done);
                done.set_message(format!("{} {}", snap.id, snap.status));
                if per_status.is_empty() {
                    for (name, _) in &snap.counts {
                        let bar = multi.add(ProgressBar::new(snap.total));
                        bar.set_style(bar_style("{prefix:>10} [{bar:40.cyan/white}] {pos}/{len}"));
                        bar.set_prefix(*name);
                        per_status.push(bar);
                    }
                }
                for (bar, (_, count)) in per_status.iter().zip(&snap.counts) {
                    bar.set_length(snap.total);
                    bar.set_position(*count);
                }
                Ok(())
            }
            Display::Lines { last, json } => {
                // Only changes are printed, so a slow task does not flood a log with identical lines.
                if last.as_ref().is_some_and(|l| l.status == snap.status && l.counts == snap.counts) {
                    return Ok(());
                }
                *last = Some(snap.clone());
                if *json {
                    return say(&serde_json::to_string(snap).unwrap_or_default());
                }
                let counts: Vec<String> = snap.counts.iter().map(|(n, c)| format!("{n} {c}")).collect();
                let percent = (snap.done * 100).checked_div(snap.total).unwrap_or(0);
                say(&format!(
                    "{} {}: {}/{} done ({percent}%), {}{}",
                    snap.id,
                    snap.status,
                    snap.done,
                    snap.total,
                    counts.join(", "),
                    rate_and_eta(snap, elapsed, first_done)
                ))
            }
        }
    }

    fn clear(&mut self) {
        if let Display::Bars { multi, done, per_status } = self {
            for bar in per_status.iter().chain(std::iter::once(&*done)) {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}

fn bar_style(template: &str) -> ProgressStyle {
    // The templates are constants of this file; a bad one falls back to indicatif's default bar.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

/// ", 12.0/min, ETA 40s" once devices have finished since the watch began, else nothing.
fn rate_and_eta(snap: &Snapshot, elapsed: Duration, first_done: u64) -> String {
    let finished = snap.done.saturating_sub(first_done);
    let secs = elapsed.as_secs_f64();
    if finished == 0 || secs < 0.5 || snap.ended.is_some() {
        return String::new();
    }
    let per_sec = finished as f64 / secs;
    let left = snap.total.saturating_sub(snap.done) as f64 / per_sec;
    format!(", {:.1}/min, ETA {}s", per_sec * 60.0, left.round())
}
