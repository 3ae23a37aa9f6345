//! Peak memory of a long paged walk: the 100 000 subtasks of one batch task, 400 pages of 250, item by item
//! through `Client::items`, measured in the client's process while the simulator runs in another.
//!
//! ```text
//! cargo run --release -p iot-hyper --example page_memory                 # starts its own simulator process
//! cargo run --release -p iot-hyper --example page_memory -- --connect http://127.0.0.1:PORT
//! ```
//!
//! Without `--connect` it runs itself again with `--serve` as a child process: the child serves a simulator
//! of 100 000 devices (rate limit off, simulated time 10 000 times real time so that the task has ended
//! before the walk starts, and access tokens valid for a simulated week, which is an hour of real time, as on
//! the platform) and prints its URL; closing its standard input stops it. With `--connect` it uses a
//! simulator that is already running, such as `iot-sim --addr 127.0.0.1:0 --fleet-size 100000 --rate-limit 0
//! --time-scale 10000 --token-lifetime 604800`, which is how to run the client alone under a heap profiler
//! (`heaptrack`).
//!
//! The client logs in, creates a `Broadcast` command task over the whole fleet, waits for it to finish, and
//! takes its baseline: resident memory (`VmRSS`), after resetting the peak (`VmHWM`) through
//! `/proc/self/clear_refs`. Then it walks every subtask and reads the peak again. It exits with an error when
//! it saw fewer subtasks than the fleet has, or when the peak grew by more than `--budget-mb` (5 by default).
//!
//! Options: `--no-walk` stops after the baseline (a heap profiler's reference run); `--collect` keeps every
//! subtask in a `Vec` instead of dropping it, to show what the walk saves; `--page-size N` (1 to 250).

use std::io::{BufRead, BufReader, Read, Write};
use std::pin::pin;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use iot_hyper::{Client, ClientConfig};
use iot_model::{
    AppId, AppSecret, BatchTaskRequest, BatchTaskStatus, Command as DeviceCommand, DeviceCmdParam, DeviceCmdType,
    TaskDetailStatus,
};
use iot_proto::ratelimit::RateLimit;
use iot_proto::{BaseUrl, CreateBatchTask, QueryBatchTask, QueryTaskDetails};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Devices in the simulated fleet, and so subtasks of the broadcast task.
const FLEET: usize = 100_000;
/// Simulated seconds per real second in the child simulator.
const TIME_SCALE: f64 = 10_000.0;
/// Access token lifetime in the child simulator: a simulated week, so that at `TIME_SCALE` a token lasts
/// about as long in real time as the platform's hour-long tokens do.
const TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long to wait for the child simulator to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often, and how many times, to poll the task before the walk.
const POLL: Duration = Duration::from_millis(250);
const MAX_POLLS: u32 = 240;

/// Parsed command line.
struct Options {
    serve: bool,
    connect: Option<String>,
    walk: bool,
    collect: bool,
    page_size: u32,
    budget_mb: f64,
}

fn options() -> Result<Options, BoxError> {
    let mut o = Options { serve: false, connect: None, walk: true, collect: false, page_size: 250, budget_mb: 5.0 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--serve" => o.serve = true,
            "--connect" => o.connect = Some(args.next().ok_or("--connect needs a URL")?),
            "--no-walk" => o.walk = false,
            "--collect" => o.collect = true,
            "--page-size" => o.page_size = args.next().ok_or("--page-size needs a number")?.parse()?,
            "--budget-mb" => o.budget_mb = args.next().ok_or("--budget-mb needs a number")?.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// Resident memory now and at its peak, in bytes, from `/proc/self/status`.
#[derive(Clone, Copy, Debug)]
struct Rss {
    current: u64,
    peak: u64,
}

fn rss() -> Result<Rss, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> Result<u64, BoxError> {
        let line = status.lines().find(|l| l.starts_with(name)).ok_or_else(|| format!("no {name} in status"))?;
        let kb: u64 = line.trim_start_matches(name).trim().trim_end_matches("kB").trim().parse()?;
        Ok(kb * 1024)
    };
    Ok(Rss { current: field("VmRSS:")?, peak: field("VmHWM:")? })
}

/// Resets the peak resident size to the current one (Linux 4.0 and later).
fn reset_peak() -> Result<(), BoxError> {
    std::fs::write("/proc/self/clear_refs", "5")?;
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The child: serves the simulator until its standard input closes.
fn serve() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        let config =
            SimConfig::default().with_fleet_size(FLEET).with_rate_limit(None).with_token_lifetime(TOKEN_LIFETIME);
        let sim = EmbeddedSim::start(config, EmbeddedOptions::default().with_time_scale(TIME_SCALE)).await?;
        println!("{}", sim.base_url());
        std::io::stdout().flush()?;
        // The parent holds the other end; when it closes it (or exits), the read ends and so does the server.
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
        sim.shutdown().await;
        Ok(())
    })
}

/// A child simulator process; dropping it closes its input and waits for it to stop.
struct SimProcess {
    child: Child,
}

impl SimProcess {
    fn start() -> Result<(Self, String), BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let process = SimProcess { child };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).map_err(|_| "the simulator did not start in time")?;
        let url = line.trim().to_owned();
        if url.is_empty() {
            return Err("the simulator exited before printing its URL".into());
        }
        Ok((process, url))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        // Give it a moment to stop by itself, then kill this one child by its handle.
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client side: baseline, walk, peak.
async fn measure(base_url: &str, o: &Options) -> Result<(), BoxError> {
    let app = AppId::new(DEFAULT_APP_ID)?;
    let client =
        // The simulator's rate limit is off, so the client's is too: this measures memory, not pacing.
        Client::new(
            ClientConfig::new(BaseUrl::parse(base_url)?, app.clone(), AppSecret::new(DEFAULT_SECRET))
                .with_rate_limit(RateLimit::disabled()),
        )?;
    client.login().await?;

    let param =
        DeviceCmdParam::new(DeviceCmdType::Broadcast, DeviceCommand::new("Maintenance".into(), "REBOOT".into()));
    // Two simulated hours: at 20 commands a second every command is sent within 5 000 s, and the task ends
    // (about 0.7 s of real time) before the walk, so the pages do not change under it.
    let request = BatchTaskRequest::device_cmd(app, 120, "reboot the fleet", param);
    let task_id = client.create_batch_task(&CreateBatchTask::new(request)).await?.task_id;
    let mut finished = None;
    for _ in 0..MAX_POLLS {
        let info = client.query_batch_task(&QueryBatchTask::new(task_id.clone())).await?;
        if matches!(info.status, Some(BatchTaskStatus::Complete | BatchTaskStatus::Timeout)) {
            finished = Some(info);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let info = finished.ok_or("the batch task did not finish in time")?;
    let total = info.total_cnt.unwrap_or(0);
    println!(
        "batch task {task_id}: {total} subtasks, {} succeeded, {} failed, {} timed out",
        info.success_cnt.unwrap_or(0),
        info.fail_cnt.unwrap_or(0),
        info.timeout_cnt.unwrap_or(0)
    );

    let baseline = rss()?;
    reset_peak()?;
    let after_reset = rss()?;
    println!(
        "baseline (client built, logged in, task created): rss {:.2} MB, peak since start {:.2} MB, peak after reset {:.2} MB",
        mb(baseline.current),
        mb(baseline.peak),
        mb(after_reset.peak)
    );
    if !o.walk {
        return Ok(());
    }

    let start = Instant::now();
    let request = QueryTaskDetails::new(task_id).with_page_size(o.page_size);
    let mut items = pin!(client.items(request));
    let (mut seen, mut succeeded, mut failed, mut bytes_of_text) = (0usize, 0usize, 0usize, 0usize);
    let mut kept = Vec::new();
    while let Some(detail) = items.try_next().await? {
        seen += 1;
        match detail.status {
            Some(TaskDetailStatus::Success) => succeeded += 1,
            Some(TaskDetailStatus::Fail) => failed += 1,
            _ => {}
        }
        bytes_of_text += detail.output.as_ref().map_or(0, String::len) + detail.error.as_ref().map_or(0, String::len);
        if o.collect {
            kept.push(detail);
        }
    }
    let elapsed = start.elapsed();
    let after = rss()?;
    let pages = seen.div_ceil(o.page_size as usize);
    println!(
        "walked {seen} subtasks in {pages} pages of {} in {:.2} s ({succeeded} succeeded, {failed} failed, {:.1} MB of outputs and errors)",
        o.page_size,
        elapsed.as_secs_f64(),
        mb(bytes_of_text as u64)
    );
    if o.collect {
        println!("kept {} subtasks in a Vec", kept.len());
    }
    let growth = after.peak.saturating_sub(after_reset.peak);
    println!(
        "after the walk: rss {:.2} MB, peak {:.2} MB; peak minus baseline {:.2} MB, rss minus baseline {:+.2} MB",
        mb(after.current),
        mb(after.peak),
        mb(growth),
        mb(after.current) - mb(baseline.current)
    );
    drop(kept);
    client.logout().await?;
    if seen != FLEET || total != FLEET as u64 {
        return Err(format!("saw {seen} subtasks, expected {total}").into());
    }
    if !o.collect && mb(growth) > o.budget_mb {
        return Err(format!("peak grew by {:.2} MB, over the budget of {} MB", mb(growth), o.budget_mb).into());
    }
    Ok(())
}

fn run() -> Result<(), BoxError> {
    let o = options()?;
    if o.serve {
        return serve();
    }
    // The child simulator (if any) outlives the runtime and stops when `_process` drops.
    let (_process, url) = match &o.connect {
        Some(url) => (None, url.clone()),
        None => {
            let (process, url) = SimProcess::start()?;
            (Some(process), url)
        }
    };
    println!("simulator at {url}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(measure(&url, &o))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("page_memory: {e}");
            ExitCode::FAILURE
        }
    }
}
