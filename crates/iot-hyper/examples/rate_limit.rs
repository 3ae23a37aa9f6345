//! The client-side rate limit at work: a walk of 5 000 batch subtasks, ten to a page, against a simulator that
//! enforces the platform's quota of 100 calls in any 60 seconds, under the client's default limit.
//!
//! ```text
//! cargo run --release -p iot-hyper --example rate_limit            # simulated time 100 times real time
//! cargo run --release -p iot-hyper --example rate_limit -- 50      # another time scale
//! ```
//!
//! Simulated time runs faster than real time, so the client's window is shrunk by the same factor: 100 calls
//! per 60 s of simulated time is 100 calls per 0.6 s of real time at the default scale. The walk makes 502
//! calls (login, create, 500 pages), so the fastest schedule the quota allows takes five windows: 300 s of
//! simulated time. The example prints the calls the simulator saw, the throttling answers among them (every
//! call beyond the 502 is a retry after one) and the time taken against that minimum, and fails when a call
//! was throttled or the walk took more than 5% over the minimum.

use std::pin::pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use iot_hyper::{Client, ClientConfig};
use iot_model::{AppId, AppSecret, BatchTaskRequest, Command as DeviceCommand, DeviceCmdParam, DeviceCmdType};
use iot_proto::ratelimit::RateLimit;
use iot_proto::{BaseUrl, CreateBatchTask, QueryTaskDetails};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Devices in the fleet, and so subtasks of the broadcast task.
const FLEET: usize = 5_000;
/// Subtasks per page: the upgrade family's default, so the walk is long.
const PAGE_SIZE: u32 = 10;
/// The platform's quota.
const CALLS: u32 = 100;
const WINDOW: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, BoxError> {
    let scale: f64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(100.0);
    let sim = EmbeddedSim::start(
        SimConfig::default().with_fleet_size(FLEET).with_rate_limit(Some((CALLS, WINDOW))),
        EmbeddedOptions::default().with_time_scale(scale).with_recording(),
    )
    .await?;
    let app = AppId::new(DEFAULT_APP_ID)?;
    let window = WINDOW.div_f64(scale);
    let config = ClientConfig::new(BaseUrl::parse(sim.base_url())?, app.clone(), AppSecret::new(DEFAULT_SECRET))
        .with_rate_limit(RateLimit::new(CALLS, window));
    let client = Client::new(config)?;

    let started = Instant::now();
    client.login().await?;
    let param =
        DeviceCmdParam::new(DeviceCmdType::Broadcast, DeviceCommand::new("Maintenance".into(), "REBOOT".into()));
    let request = BatchTaskRequest::device_cmd(app, 120, "reboot the fleet", param);
    let task_id = client.create_batch_task(&CreateBatchTask::new(request)).await?.task_id;
    let mut items = pin!(client.items(QueryTaskDetails::new(task_id).with_page_size(PAGE_SIZE)));
    let mut seen = 0_usize;
    while items.try_next().await?.is_some() {
        seen += 1;
    }
    let elapsed = started.elapsed();

    let pages = FLEET.div_ceil(PAGE_SIZE as usize);
    let expected = 2 + pages;
    let calls = sim.take_recorded().len();
    let throttled = calls.saturating_sub(expected);
    // The first hundred calls go at once; every further hundred waits one more window.
    let minimum = window * ((expected as u32 - 1) / CALLS);
    let ratio = elapsed.as_secs_f64() / minimum.as_secs_f64();
    println!("time scale {scale}: {seen} subtasks in {pages} pages, {calls} calls ({expected} needed)");
    println!("throttling answers: {throttled}");
    println!(
        "took {:.1} s of simulated time; the quota's minimum is {:.1} s: {ratio:.4}x",
        elapsed.as_secs_f64() * scale,
        minimum.as_secs_f64() * scale,
    );
    drop(client);
    sim.shutdown().await;
    Ok(seen == FLEET && throttled == 0 && ratio <= 1.05)
}
