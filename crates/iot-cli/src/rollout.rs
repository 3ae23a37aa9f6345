//! `iotctl rollout`, `rollout resume` and `retry-failed`: drives iot-rollout's state machine with the client.
//!
//! The machine decides everything (which call, when, whether a wave passed); this module sends its calls,
//! feeds back their answers and keeps its journal on disk. The journal is appended and `fsync`ed after every
//! `poll` and every answer, before the next call is sent: a create is journaled as pending before its request
//! exists, so a process killed at any point can be resumed without creating any task twice (docs/rollout.md).
//!
//! Everything the user is given as input (stages, threshold, devices file, journal) is checked by [`prepare`]
//! before anything connects, so a typo costs one line and exit 1, not a half-started rollout.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use iot_model::{FileId, OperationId};
use iot_rollout::{
    Action, Answer, CallFailure, Create, HaltReason, Journal, Record, Report, RetryAction, RetryError, RetryFailed,
    Rollout, RolloutConfig, UpgradeKind, WaveState,
};
use serde::Serialize;

use crate::cli::{Cli, Command, Format, RetryFailedArgs, RolloutArgs, RolloutCommand, RunArgs};
use crate::connect::Session;
use crate::devices;
use crate::error::{Exit, Failure};
use crate::output::{Listing, say};

/// A rate given as a percentage (`2%`) or a fraction (`0.02`), checked to be within `[0, 1]`.
pub fn parse_rate(flag: &str, text: &str) -> Result<f64, Failure> {
    let bad = || Failure::usage(format!("{flag} {text:?} is not a rate between 0% and 100%")).hint("like 2% or 0.02");
    let value = match text.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => text.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if !value.is_finite() || !(0.0..=1.0).contains(&value) {
        return Err(bad());
    }
    Ok(value)
}

/// Cumulative stages (`1%,10%,50%,100%`, or fractions), each in `(0, 1]`, strictly increasing.
pub fn parse_stages(text: &str) -> Result<Vec<f64>, Failure> {
    let hint = "cumulative percentages of the fleet, strictly increasing, like 1%,10%,50%,100%";
    let mut stages: Vec<f64> = Vec::new();
    for part in text.split(',') {
        let value = parse_rate("--stages", part).map_err(|_| {
            Failure::usage(format!("--stages {text:?}: {:?} is not a percentage of the fleet", part.trim())).hint(hint)
        })?;
        if value == 0.0 {
            return Err(Failure::usage(format!("--stages {text:?}: a stage of 0% reaches no device")).hint(hint));
        }
        if let Some(&before) = stages.last()
            && value <= before
        {
            return Err(Failure::usage(format!(
                "--stages {text:?}: {} is not larger than the stage before it; stages are cumulative",
                part.trim()
            ))
            .hint(hint));
        }
        stages.push(value);
    }
    Ok(stages)
}

fn parse_poll(secs: f64) -> Result<Duration, Failure> {
    if !secs.is_finite() || !(0.01..=86_400.0).contains(&secs) {
        return Err(Failure::usage(format!("--poll must be between 0.01 and 86400 seconds, got {secs}")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A journal file being appended to.
struct JournalFile {
    path: PathBuf,
    file: File,
}

impl JournalFile {
    /// A new journal; an existing file is never overwritten (it may be a rollout that is still to be resumed).
    fn create(path: &Path) -> Result<Self, Failure> {
        let file = OpenOptions::new().append(true).create_new(true).open(path).map_err(|e| {
            Failure::usage(format!("cannot create the journal {}: {e}", path.display()))
                .hint("give another --journal, or resume that rollout with `iotctl rollout resume PATH`")
        })?;
        Ok(Self { path: path.to_owned(), file })
    }

    /// An existing journal, cut back to its last complete line (a crash can tear only the last one, which
    /// `Journal::from_json_lines` has already dropped), ready for appending.
    fn reopen(path: &Path, text: &str) -> Result<Self, Failure> {
        let keep = text.rfind('\n').map_or(0, |i| i + 1) as u64;
        let fail = |e: std::io::Error| Failure::usage(format!("cannot reopen the journal {}: {e}", path.display()));
        let file = OpenOptions::new().append(true).open(path).map_err(fail)?;
        file.set_len(keep).map_err(fail)?;
        Ok(Self { path: path.to_owned(), file })
    }

    /// Appends the records and makes them durable before the caller acts on them.
    fn append(&mut self, records: &[Record]) -> Result<(), Failure> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for r in records {
            let line = r.to_json_line().map_err(|e| Failure::usage(format!("cannot encode a journal record: {e}")))?;
            text.push_str(&line);
            text.push('\n');
        }
        let fail = |e: std::io::Error| {
            Failure::usage(format!("cannot write the journal {}: {e}", self.path.display()))
                .hint("nothing more was sent; free the disk, then `iotctl rollout resume` the journal")
        };
        self.file.write_all(text.as_bytes()).map_err(fail)?;
        self.file.sync_data().map_err(fail)
    }
}

/// A checked command, ready to run once connected.
pub enum Job {
    /// A new rollout.
    New { config: RolloutConfig, journal: PathBuf },
    /// A rollout resumed from its journal.
    Resume { rollout: Box<Rollout>, journal: PathBuf, text: String },
    /// A retry of an earlier task's failed devices.
    Retry { task: OperationId, package: FileId, max_failure_rate: f64, poll: Duration, journal: PathBuf },
}

/// `./PREFIX-20240603T080000Z.jsonl`, named after the wall clock (also under `--sim`, whose clock starts at
/// the same instant on every run, so that two runs do not pick the same name).
fn default_journal(prefix: &str) -> PathBuf {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let stamp = iot_model::Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string());
    PathBuf::from(format!("./{prefix}-{stamp}.jsonl"))
}

fn new_journal_path(run: &RunArgs, prefix: &str) -> Result<PathBuf, Failure> {
    let path = run.journal.clone().unwrap_or_else(|| default_journal(prefix));
    if path.exists() {
        return Err(Failure::usage(format!("the journal {} exists already", path.display()))
            .hint("give another --journal, or resume that rollout with `iotctl rollout resume PATH`"));
    }
    Ok(path)
}

/// Checks the input of `rollout`, `rollout resume` and `retry-failed`; `None` for other commands.
pub fn prepare(cli: &Cli) -> Result<Option<Job>, Failure> {
    match &cli.command {
        Command::Rollout(args) => prepare_rollout(cli, args).map(Some),
        Command::RetryFailed(args) => prepare_retry(args).map(Some),
        _ => Ok(None),
    }
}

fn prepare_rollout(cli: &Cli, args: &RolloutArgs) -> Result<Job, Failure> {
    if let Some(RolloutCommand::Resume { journal }) = &args.resume {
        if cli.sim {
            return Err(Failure::usage("a rollout cannot be resumed against --sim: every --sim run starts a fresh simulator that holds none of its tasks")
                .hint("run the simulator with `iotctl sim serve` and resume with `--profile sim`"));
        }
        let text = std::fs::read_to_string(journal)
            .map_err(|e| Failure::usage(format!("cannot read the journal {}: {e}", journal.display())))?;
        let parsed = Journal::from_json_lines(&text)
            .map_err(|e| Failure::usage(format!("the journal {} cannot be read: {e}", journal.display())))?;
        let rollout = Rollout::resume(parsed)
            .map_err(|e| Failure::usage(format!("the journal {} cannot be resumed: {e}", journal.display())))?;
        return Ok(Job::Resume { rollout: Box::new(rollout), journal: journal.clone(), text });
    }
    // clap requires these without a subcommand; the checks keep a grammar change from panicking here.
    let package = args.package.as_deref().ok_or_else(|| Failure::usage("--package is required"))?;
    let file = args.devices.as_deref().ok_or_else(|| Failure::usage("--devices is required"))?;
    let package = FileId::new(package.to_owned()).map_err(|e| Failure::usage(format!("--package {package:?}: {e}")))?;
    let stages = parse_stages(&args.stages)?;
    let max = parse_rate("--max-failure-rate", &args.run.max_failure_rate)?;
    let poll = parse_poll(args.run.poll)?;
    let fleet = devices::collect(&[], Some(file))?;
    let kind = if args.software { UpgradeKind::Software } else { UpgradeKind::Firmware };
    let config = RolloutConfig::new(package, kind, fleet)
        .with_stages(stages)
        .with_max_failure_rate(max)
        .with_poll_interval(poll);
    // The machine checks the same rules; asking it here reports them before anything connects.
    config.plan().map_err(|e| Failure::usage(format!("the rollout cannot be planned: {e}")))?;
    Ok(Job::New { config, journal: new_journal_path(&args.run, "rollout")? })
}

fn prepare_retry(args: &RetryFailedArgs) -> Result<Job, Failure> {
    let task = OperationId::new(args.task.clone()).map_err(|e| Failure::usage(format!("task {:?}: {e}", args.task)))?;
    let package =
        FileId::new(args.package.clone()).map_err(|e| Failure::usage(format!("--package {:?}: {e}", args.package)))?;
    let max_failure_rate = parse_rate("--max-failure-rate", &args.run.max_failure_rate)?;
    let poll = parse_poll(args.run.poll)?;
    let journal = new_journal_path(&args.run, &format!("retry-{task}"))?;
    Ok(Job::Retry { task, package, max_failure_rate, poll, journal })
}

/// Runs a prepared job.
pub async fn run(s: &Session, format: Format, job: Job) -> Result<Exit, Failure> {
    let mut out = Out::new(format);
    match job {
        Job::New { config, journal } => {
            let mut file = JournalFile::create(&journal)?;
            let rollout = Rollout::new(&config, s.now())
                .map_err(|e| Failure::usage(format!("the rollout cannot be planned: {e}")))?;
            out.line(&format!("journal: {}", journal.display()))?;
            out.plan(&rollout)?;
            drive(s, &mut out, rollout, &mut file).await
        }
        Job::Resume { rollout, journal, text } => {
            let mut file = JournalFile::reopen(&journal, &text)?;
            out.line(&format!("resuming the rollout journaled in {}", journal.display()))?;
            out.plan(&rollout)?;
            out.resumed(&rollout.report())?;
            drive(s, &mut out, *rollout, &mut file).await
        }
        Job::Retry { task, package, max_failure_rate, poll, journal } => {
            let Some(config) = plan_retry(s, &mut out, &task, package).await? else { return Ok(Exit::Ok) };
            let config = config.with_max_failure_rate(max_failure_rate).with_poll_interval(poll);
            let mut file = JournalFile::create(&journal)?;
            let rollout = Rollout::new(&config, s.now())
                .map_err(|e| Failure::usage(format!("the retry cannot be planned: {e}")))?;
            out.line(&format!("journal: {}", journal.display()))?;
            out.plan(&rollout)?;
            drive(s, &mut out, rollout, &mut file).await
        }
    }
}

/// Lists the failed devices of `task` and turns them into a one-wave rollout; `None` when none failed.
async fn plan_retry(
    s: &Session,
    out: &mut Out,
    task: &OperationId,
    package: FileId,
) -> Result<Option<RolloutConfig>, Failure> {
    let mut retry = RetryFailed::new(task.clone(), package);
    let internal = |e: iot_rollout::DriverError| Failure::new(Exit::BadAnswer, format!("internal error: {e}"));
    let plan = loop {
        // A failed call ends the retry at once (the client already retried it): its error says best what to do.
        match retry.poll() {
            RetryAction::QueryTask(q) => {
                let answer = s.client.query_upgrade_task(&q).await.map_err(Failure::from)?;
                retry.handle_answer(Answer::Task(answer)).map_err(internal)?;
            }
            RetryAction::ListFailed(q) => {
                let answer = s.client.query_sub_operations(&q).await.map_err(Failure::from)?;
                retry.handle_answer(Answer::Subtasks(answer)).map_err(internal)?;
            }
            RetryAction::Done(Ok(plan)) => break plan,
            RetryAction::Done(Err(RetryError::TaskRunning { .. })) => {
                return Err(Failure::usage(format!("task {task} has not finished yet: its failures may still grow"))
                    .hint(format!("wait for it with `iotctl tasks watch {task}`")));
            }
            RetryAction::Done(Err(e)) => return Err(Failure::new(Exit::BadAnswer, e.to_string())),
            _ => return Err(Failure::new(Exit::BadAnswer, "internal error: an unknown retry step")),
        }
    };
    let Some(config) = plan.rollout_config() else {
        out.line(&format!("task {task}: no device failed; nothing to retry"))?;
        return Ok(None);
    };
    out.line(&format!(
        "task {task}: {} device(s) failed; retrying exactly those in a new {} task",
        plan.failed.len(),
        kind_name(plan.kind)
    ))?;
    Ok(Some(config))
}

fn kind_name(kind: UpgradeKind) -> &'static str {
    match kind {
        UpgradeKind::Software => "software",
        _ => "firmware",
    }
}

/// The action loop of docs/rollout.md: poll, persist, act, feed, persist.
async fn drive(s: &Session, out: &mut Out, mut rollout: Rollout, journal: &mut JournalFile) -> Result<Exit, Failure> {
    let internal = |e: iot_rollout::DriverError| Failure::new(Exit::BadAnswer, format!("internal error: {e}"));
    // The last failed call's exit code, for a rollout that halts because calls kept failing.
    let mut last_failure: Option<Exit> = None;
    loop {
        let action = rollout.poll(s.now());
        let records = rollout.take_records();
        journal.append(&records)?;
        out.records(&records, &rollout)?;
        let answer = match action {
            Action::CheckPackage(q) => s.client.query_package(&q).await.map(Answer::Package),
            Action::Create(Create::Firmware(c)) => s.client.create_firmware_upgrade_task(&c).await.map(Answer::Created),
            Action::Create(Create::Software(c)) => s.client.create_software_upgrade_task(&c).await.map(Answer::Created),
            Action::FindCreated(q) => s.client.query_upgrade_task_list(&q).await.map(Answer::Tasks),
            Action::QueryTask(q) => s.client.query_upgrade_task(&q).await.map(Answer::Task),
            Action::ListFailed(q) => s.client.query_sub_operations(&q).await.map(Answer::Subtasks),
            Action::Wait(until) => {
                s.sleep_until(until).await;
                continue;
            }
            Action::Completed(report) => {
                out.clear();
                out.report(&report, &journal.path)?;
                return Ok(Exit::Ok);
            }
            Action::Halted(report) => {
                out.clear();
                out.report(&report, &journal.path)?;
                return Err(halted(&report, &journal.path, last_failure));
            }
            _ => return Err(Failure::new(Exit::BadAnswer, "internal error: an action this iotctl does not know")),
        };
        let now = s.now();
        match answer {
            Ok(answer) => rollout.handle_answer(now, answer).map_err(internal)?,
            Err(e) => {
                let (acted, retryable) = (e.platform_may_have_acted(), e.is_retryable());
                let failure = Failure::from(e);
                out.warn(&format!("a call failed: {}", failure.message))?;
                last_failure = Some(failure.exit);
                rollout.handle_failure(now, CallFailure::new(acted, retryable, failure.message)).map_err(internal)?;
            }
        }
        let records = rollout.take_records();
        journal.append(&records)?;
        out.records(&records, &rollout)?;
        out.tick(&rollout.report())?;
    }
}

/// The failure a halted rollout ends the command with.
fn halted(report: &Report, journal: &Path, last_failure: Option<Exit>) -> Failure {
    let waves = report.waves.len();
    let resume = format!("`iotctl rollout resume {}`", journal.display());
    match &report.halted {
        Some(HaltReason::FailureRate { wave, devices, failed, rate, max_failure_rate }) => {
            let retry = report.waves.get(*wave).and_then(|w| w.failed_devices.first()).map(|f| {
                format!(
                    "; once the cause is fixed, `iotctl retry-failed {} --package {}`",
                    f.operation_id, report.package
                )
            });
            Failure::new(
                Exit::TaskFailed,
                format!(
                    "rollout halted in wave {}/{waves}: {failed} of {devices} devices failed ({}), over the threshold of {}",
                    wave + 1,
                    percent(*rate),
                    percent(*max_failure_rate)
                ),
            )
            .hint(format!("the failed devices and causes are listed above{}", retry.unwrap_or_default()))
        }
        Some(HaltReason::PackageUnusable { message }) => {
            Failure::new(Exit::TaskFailed, format!("rollout halted: the package cannot be used: {message}"))
                .hint("check the package and --firmware/--software (`iotctl packages list`)")
        }
        Some(HaltReason::CreateRefused { wave, task, message }) => Failure::new(
            Exit::TaskFailed,
            format!("rollout halted: the platform refused task {} of wave {}/{waves}: {message}", task + 1, wave + 1),
        )
        .hint("check that every device fits the package"),
        Some(HaltReason::CallsFailing { failures, message }) => Failure::new(
            last_failure.unwrap_or(Exit::Unreachable),
            format!("rollout paused after {failures} failed calls in a row: {message}"),
        )
        .hint(format!("nothing is lost; once the platform answers again, {resume}")),
        _ => Failure::new(Exit::TaskFailed, "rollout halted").hint(format!("see the journal {}", journal.display())),
    }
}

fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// The short spelling of a stage: `1%`, `12.5%`.
fn stage(s: f64) -> String {
    let p = s * 100.0;
    if (p - p.round()).abs() < 1e-9 { format!("{}%", p.round()) } else { format!("{p}%") }
}

/// Where progress and the report go. With `-o table` everything is the command's output (stdout); with
/// `-o json` or `-o csv` stdout is kept for the report, and progress goes to stderr.
struct Out {
    format: Format,
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    /// Per wave, the (succeeded, failed) last shown, so that a poll that changed nothing prints nothing.
    shown: Vec<Option<(u64, u64)>>,
    waves: usize,
}

impl Out {
    fn new(format: Format) -> Self {
        let bars = (format == Format::Table && std::io::stdout().is_terminal())
            .then(|| (MultiProgress::with_draw_target(ProgressDrawTarget::stdout()), Vec::new()));
        Self { format, bars, shown: Vec::new(), waves: 0 }
    }

    fn line(&self, text: &str) -> Result<(), Failure> {
        match (&self.bars, self.format) {
            // Lines above the bars, so that they scroll while the bars stay at the bottom.
            (Some((multi, _)), _) => {
                let _ = multi.println(text);
                Ok(())
            }
            (None, Format::Table) => say(text),
            (None, _) => {
                eprintln!("{text}");
                Ok(())
            }
        }
    }

    fn warn(&self, text: &str) -> Result<(), Failure> {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(format!("warning: {text}"));
            }
            None => eprintln!("warning: {text}"),
        }
        Ok(())
    }

    fn plan(&mut self, rollout: &Rollout) -> Result<(), Failure> {
        let plan = rollout.plan();
        self.waves = plan.waves.len();
        self.shown = vec![None; self.waves];
        let devices: usize = plan.waves.iter().map(|w| w.device_count()).sum();
        let sizes: Vec<String> = plan
            .waves
            .iter()
            .map(|w| {
                format!(
                    "{} ({} devices, {} task{})",
                    stage(w.stage),
                    w.device_count(),
                    w.tasks.len(),
                    plural(w.tasks.len())
                )
            })
            .collect();
        self.line(&format!(
            "{} package {} to {devices} devices in {} wave{}: {}; halt over {} failed per wave",
            kind_name(plan.kind),
            plan.package,
            self.waves,
            plural(self.waves),
            sizes.join(", "),
            percent(plan.max_failure_rate)
        ))
    }

    fn resumed(&self, report: &Report) -> Result<(), Failure> {
        let passed = report.waves.iter().filter(|w| w.state == WaveState::Passed).count();
        let known: usize = report.waves.iter().flat_map(|w| &w.tasks).filter(|t| t.operation_id.is_some()).count();
        self.line(&format!("{passed} wave(s) had passed; {known} task(s) were created before"))
    }

    fn wave_name(&self, wave: usize) -> String {
        format!("wave {}/{}", wave + 1, self.waves)
    }

    /// One line per decision the machine journaled.
    fn records(&mut self, records: &[Record], rollout: &Rollout) -> Result<(), Failure> {
        let plan = rollout.plan();
        for r in records {
            let text = match r {
                Record::PackageChecked { version, .. } => {
                    format!("package {} checked: version {}", plan.package, version.as_deref().unwrap_or("unknown"))
                }
                Record::WaveStarted { wave, .. } => {
                    let w = &plan.waves[*wave];
                    if let Some((multi, bars)) = &mut self.bars {
                        let bar = multi.add(ProgressBar::new(w.device_count() as u64));
                        bar.set_style(
                            ProgressStyle::with_template("{prefix:>9} [{bar:40.green/white}] {pos}/{len}  {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                        );
                        bar.set_prefix(format!("wave {}/{}", wave + 1, plan.waves.len()));
                        bars.push(bar);
                    }
                    format!(
                        "{} started: {} devices up to {} of the fleet, {} task{}",
                        self.wave_name(*wave),
                        w.device_count(),
                        stage(w.stage),
                        w.tasks.len(),
                        plural(w.tasks.len())
                    )
                }
                Record::Created { wave, task, operation_id, found_by_lookup, .. } => {
                    let how =
                        if *found_by_lookup { "found on the platform (created before the restart)" } else { "created" };
                    format!(
                        "{}: task {}/{} {how}: {operation_id} ({} devices)",
                        self.wave_name(*wave),
                        task + 1,
                        plan.waves[*wave].tasks.len(),
                        plan.waves[*wave].tasks[*task].len()
                    )
                }
                Record::LookupAbsent { wave, task, .. } => format!(
                    "{}: task {} was not created before the restart; creating it now",
                    self.wave_name(*wave),
                    task + 1
                ),
                Record::CreateNotMade { wave, task, error, .. } => {
                    format!("{}: task {} was not created: {error}", self.wave_name(*wave), task + 1)
                }
                Record::TaskFinished { wave, task, counts, .. } => format!(
                    "{}: task {} finished: {} upgraded, {} failed",
                    self.wave_name(*wave),
                    task + 1,
                    counts.success,
                    counts.failed()
                ),
                Record::WaveFinished { wave, devices, failed, passed, .. } => {
                    if let Some(bar) = self.bars.as_ref().and_then(|(_, b)| b.get(*wave)) {
                        bar.finish_with_message(if *passed { "passed" } else { "failed" });
                    }
                    let rate = *failed as f64 / (*devices).max(1) as f64;
                    format!(
                        "{} {}: {} of {devices} devices failed ({}, threshold {})",
                        self.wave_name(*wave),
                        if *passed { "passed" } else { "FAILED" },
                        failed,
                        percent(rate),
                        percent(plan.max_failure_rate)
                    )
                }
                _ => continue,
            };
            self.line(&text)?;
        }
        Ok(())
    }

    /// Progress of the running wave after a poll: the bar on a terminal, else a line when the counts changed.
    fn tick(&mut self, report: &Report) -> Result<(), Failure> {
        for w in report.waves.iter().filter(|w| w.state == WaveState::Running) {
            let now = (w.succeeded, w.failed);
            if let Some((_, bars)) = &self.bars {
                if let Some(bar) = bars.get(w.wave) {
                    bar.set_position(w.succeeded + w.failed);
                    bar.set_message(format!("{} failed", w.failed));
                }
                continue;
            }
            let Some(shown) = self.shown.get_mut(w.wave) else { continue };
            if *shown == Some(now) || (shown.is_none() && now == (0, 0)) {
                continue;
            }
            *shown = Some(now);
            let text = format!(
                "{}: {}/{} devices done, {} upgraded, {} failed",
                self.wave_name(w.wave),
                w.succeeded + w.failed,
                w.devices,
                w.succeeded,
                w.failed
            );
            self.line(&text)?;
        }
        Ok(())
    }

    fn clear(&mut self) {
        if let Some((multi, bars)) = self.bars.take() {
            for bar in &bars {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }

    /// The report: per wave, then the failed devices with their causes.
    fn report(&self, report: &Report, journal: &Path) -> Result<(), Failure> {
        if self.format == Format::Json {
            #[derive(Serialize)]
            struct Shown<'a> {
                journal: String,
                #[serde(flatten)]
                report: &'a Report,
            }
            let line = serde_json::to_string(&Shown { journal: journal.display().to_string(), report })
                .map_err(|e| Failure::usage(format!("cannot encode the report as JSON: {e}")))?;
            return say(&line);
        }
        if self.format == Format::Table {
            say("")?;
        }
        let header = &["wave", "stage", "state", "devices", "succeeded", "failed", "failure rate", "tasks"];
        let mut waves = Listing::new(self.format, header);
        for w in &report.waves {
            let state = match w.state {
                WaveState::NotStarted => "not started",
                WaveState::Running => "running",
                WaveState::Passed => "passed",
                WaveState::Failed => "failed",
                _ => "unknown",
            };
            let cells = vec![
                (w.wave + 1).to_string(),
                stage(w.stage),
                state.to_owned(),
                w.devices.to_string(),
                w.succeeded.to_string(),
                w.failed.to_string(),
                percent(w.failure_rate),
                w.tasks.len().to_string(),
            ];
            waves.item(w, cells)?;
        }
        waves.finish()?;
        let failed: Vec<_> = report.failed_devices().collect();
        if !failed.is_empty() {
            say("")?;
            let mut devices = Listing::new(self.format, &["failed device", "task", "status", "cause"]);
            for f in &failed {
                let cells =
                    vec![f.device_id.to_string(), f.operation_id.to_string(), f.status.clone(), f.cause.clone()];
                devices.item(f, cells)?;
            }
            devices.finish()?;
        }
        if self.format == Format::Table {
            say("")?;
            let devices: u64 = report.waves.iter().map(|w| w.devices).sum();
            let succeeded: u64 = report.waves.iter().map(|w| w.succeeded).sum();
            let what = if report.completed { "completed" } else { "halted" };
            say(&format!(
                "rollout {what}: {succeeded} of {devices} devices upgraded, {} failed (journal: {})",
                failed.len(),
                journal.display()
            ))?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rates_and_stages_are_read_as_percentages_or_fractions() {
        assert_eq!(parse_rate("--x", "2%").unwrap(), 0.02);
        assert_eq!(parse_rate("--x", "0.5").unwrap(), 0.5);
        assert!(parse_rate("--x", "120%").is_err());
        assert!(parse_rate("--x", "-1%").is_err());
        assert!(parse_rate("--x", "two").is_err());
        assert_eq!(parse_stages("1%,10%,50%,100%").unwrap(), vec![0.01, 0.1, 0.5, 1.0]);
        let e = parse_stages("10%,5%").unwrap_err();
        assert!(e.message.contains("5% is not larger"), "{}", e.message);
        assert!(parse_stages("0%,100%").is_err());
        assert!(parse_stages("10%,,100%").is_err());
    }

    #[test]
    fn stages_are_spelled_short() {
        assert_eq!(stage(0.01), "1%");
        assert_eq!(stage(0.125), "12.5%");
        assert_eq!(stage(1.0), "100%");
    }
}
