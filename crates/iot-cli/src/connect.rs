//! Getting a client: from a profile and the secret, or from a simulator started in this process (`--sim`).
//!
//! The simulator of `--sim` and `sim serve` is seeded: besides its generated fleet it starts with two upgrade
//! tasks and a batch task made by the same client calls a user would make, so that `tasks list`, `subtasks`,
//! `batch show` and the watch commands have something to show at once. Simulated time starts at a fixed instant
//! for `--sim`, so that with a given seed every id and timestamp is the same from run to run.

use std::time::{Duration, SystemTime};

use iot_hyper::{Client, ClientConfig, Identity, Roots, TlsOptions, TransportConfig};
use iot_model::{
    AppId, AppSecret, BatchTaskRequest, Command, CreateUpgradeTask, DeviceCmdParam, DeviceCmdType, FileType,
    OperateDevices,
};
use iot_proto::ratelimit::RateLimit;
use iot_proto::{BaseUrl, CreateBatchTask, CreateFirmwareUpgradeTask, CreateSoftwareUpgradeTask};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, Device, SimConfig};

use crate::cli::Cli;
use crate::config::{self, Config};
use crate::error::Failure;

/// Where `--sim`'s simulated time starts: 2024-06-03T08:00:00Z, after the generated packages' upload dates.
pub const SIM_EPOCH_SECS: u64 = 1_717_401_600;

/// A client, and the simulator behind it when there is one (dropping it stops the simulator).
pub struct Session {
    /// The client.
    pub client: Client,
    /// The app id the client logs in as.
    pub app_id: AppId,
    /// The simulator, for `--sim`.
    pub sim: Option<EmbeddedSim>,
    /// The tasks the simulator was seeded with: what each is and its id.
    pub seeded: Vec<(&'static str, String)>,
    /// Simulated seconds per real second of `sim`'s clock (1 without a simulator).
    pub time_scale: f64,
}

impl Session {
    /// The time on the platform's clock as the driver sees it: the simulator's for `--sim` (which runs
    /// `time_scale` times faster than the wall clock and starts in 2024), else the wall clock.
    pub fn now(&self) -> SystemTime {
        self.sim.as_ref().map_or_else(SystemTime::now, EmbeddedSim::now)
    }

    /// Sleeps until `until` on [`Session::now`]'s clock.
    pub async fn sleep_until(&self, until: SystemTime) {
        let left = until.duration_since(self.now()).unwrap_or_default();
        let real = if self.sim.is_some() { left.div_f64(self.time_scale.max(1e-9)) } else { left };
        // A floor keeps a loop that overshoots by rounding from spinning; a ceiling keeps a frozen simulator
        // (scale ~0) from putting the process to sleep for ages.
        tokio::time::sleep(real.clamp(Duration::from_millis(1), Duration::from_secs(3600))).await;
    }
}

/// The simulator's settings from the command line.
pub fn sim_config(cli: &Cli) -> Result<(SimConfig, f64), Failure> {
    let scale = cli.sim_time_scale;
    if !scale.is_finite() || scale < 0.0 {
        return Err(Failure::usage(format!("--sim-time-scale must be 0 or a positive number, got {scale}")));
    }
    // The simulator's clock takes only positive scales; the smallest one stands for "frozen": a run of a
    // few seconds moves simulated time by far less than the second the platform's times resolve.
    let scale = if scale == 0.0 { f64::MIN_POSITIVE } else { scale };
    let mut config = SimConfig::default().with_seed(cli.sim_seed).with_fleet_size(cli.sim_fleet_size);
    if let Some(rate) = &cli.sim_failure_rate {
        config = config.with_failure_rate(crate::rollout::parse_rate("--sim-failure-rate", rate)?);
    }
    Ok((config, scale))
}

/// The fleet the simulator of these options has, without serving it.
pub fn sim_fleet(cli: &Cli) -> Result<Vec<Device>, Failure> {
    let (config, _) = sim_config(cli)?;
    Ok(iot_sim::sim::Simulator::new(config).devices().to_vec())
}

/// Starts a seeded simulator; `start` is its simulated time at start.
pub async fn start_sim(cli: &Cli, start: SystemTime) -> Result<Session, Failure> {
    let (config, scale) = sim_config(cli)?;
    let options = EmbeddedOptions::default().with_time_scale(scale).with_start(start);
    let sim = EmbeddedSim::start(config, options)
        .await
        .map_err(|e| Failure::new(crate::error::Exit::Unreachable, format!("cannot start the simulator: {e}")))?;
    let base = BaseUrl::parse(sim.base_url()).map_err(|e| Failure::usage(format!("simulator URL: {e}")))?;
    let app_id = AppId::new(DEFAULT_APP_ID).map_err(|e| Failure::usage(e.to_string()))?;
    let mut config = client_config(cli, base, app_id.clone(), AppSecret::new(DEFAULT_SECRET));
    if scale > 1.0 {
        // The simulator counts its 100 calls per minute on its own clock; a client counting them on the wall
        // clock would wait a real minute for what the simulator allows in 60/scale seconds.
        config = config.with_rate_limit(RateLimit::new(100, Duration::from_secs(60).div_f64(scale)));
    }
    let client = Client::new(config)?;
    let seeded = seed(&sim, &client, &app_id).await?;
    Ok(Session { client, app_id, sim: Some(sim), seeded, time_scale: scale })
}

/// The client settings every command shares.
fn client_config(cli: &Cli, base: BaseUrl, app_id: AppId, secret: AppSecret) -> ClientConfig {
    ClientConfig::new(base, app_id, secret).with_call_timeout(Duration::from_secs(cli.timeout.max(1)))
}

/// A client for the selected profile, or for a fresh simulator with `--sim`.
pub async fn connect(cli: &Cli) -> Result<Session, Failure> {
    if cli.sim {
        return start_sim(cli, SystemTime::UNIX_EPOCH + Duration::from_secs(SIM_EPOCH_SECS)).await;
    }
    let config = Config::load()?;
    let (name, profile) = config.select(cli.profile.as_deref())?;
    let base = BaseUrl::parse(&profile.base_url)
        .map_err(|e| Failure::usage(format!("profile {name}: invalid base URL {:?}: {e}", profile.base_url)))?;
    let app_id =
        AppId::new(profile.app_id.clone()).map_err(|e| Failure::usage(format!("profile {name}: app id: {e}")))?;
    let mut transport = TransportConfig::default();
    if profile.ca_file.is_some() || profile.client_cert.is_some() {
        let roots = match &profile.ca_file {
            Some(path) => Roots::custom_ca_pem(&config::read_profile_file("CA file", path)?)
                .map_err(|e| Failure::usage(format!("profile {name}: CA file {}: {e}", path.display())))?,
            None => Roots::default(),
        };
        let mut tls = TlsOptions::new(roots);
        if let (Some(cert), Some(key)) = (&profile.client_cert, &profile.client_key) {
            let identity = Identity::from_pem(
                &config::read_profile_file("client certificate", cert)?,
                &config::read_profile_file("client key", key)?,
            )
            .map_err(|e| Failure::usage(format!("profile {name}: client certificate or key: {e}")))?;
            tls = tls.with_identity(identity);
        }
        transport = TransportConfig::with_tls(tls);
    }
    let secret = config::secret(&name, app_id.as_str())?;
    let client = Client::new(client_config(cli, base, app_id.clone(), secret).with_transport(transport))?;
    Ok(Session { client, app_id, sim: None, seeded: Vec::new(), time_scale: 1.0 })
}

/// Creates the seeded tasks: a firmware task that has finished, and a software task and a batch task in progress.
async fn seed(sim: &EmbeddedSim, client: &Client, app_id: &AppId) -> Result<Vec<(&'static str, String)>, Failure> {
    let mut seeded = Vec::new();
    let (packages, devices) = sim.with_sim(|s| (s.packages().to_vec(), s.devices().to_vec()));
    let kind_of = |file_type: FileType| {
        packages.iter().find(|p| p.file_type.as_ref() == Some(&file_type)).map(|p| {
            let fits: Vec<_> = devices
                .iter()
                .filter(|d| {
                    Some(&d.device_type) == p.device_type.as_ref()
                        && Some(&d.model) == p.model.as_ref()
                        && Some(&d.manufacturer_name) == p.manufacturer_name.as_ref()
                })
                .map(|d| d.device_id.clone())
                .take(20)
                .collect();
            (p.file_id.clone(), fits)
        })
    };
    let failed = |e: iot_hyper::Error| Failure::from(e).context("seeding the simulator");
    if let Some((file_id, fits)) = kind_of(FileType::FirmwarePackage).filter(|(_, d)| !d.is_empty()) {
        let body = CreateUpgradeTask::new(file_id, OperateDevices::new().with_devices(fits));
        let r = client.create_firmware_upgrade_task(&CreateFirmwareUpgradeTask::new(body)).await.map_err(failed)?;
        seeded.push(("firmware upgrade task, finished", r.operation_id.to_string()));
    }
    // Twenty simulated minutes later the firmware task has long finished.
    sim.advance(Duration::from_secs(20 * 60));
    if let Some((file_id, fits)) = kind_of(FileType::SoftwarePackage).filter(|(_, d)| !d.is_empty()) {
        let body = CreateUpgradeTask::new(file_id, OperateDevices::new().with_devices(fits));
        let r = client.create_software_upgrade_task(&CreateSoftwareUpgradeTask::new(body)).await.map_err(failed)?;
        seeded.push(("software upgrade task, running", r.operation_id.to_string()));
    }
    let targets: Vec<_> = devices.iter().take(10).map(|d| d.device_id.clone()).collect();
    if !targets.is_empty() {
        let mut paras = iot_model::JsonMap::new();
        paras.insert("register".into(), "total".into());
        let command = Command::new("Meter".into(), "READ".into()).with_paras(paras);
        let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, command).with_device_list(targets);
        let body = BatchTaskRequest::device_cmd(app_id.clone(), 10, "read meters", param);
        let r = client.create_batch_task(&CreateBatchTask::new(body)).await.map_err(failed)?;
        seeded.push(("batch task, running", r.task_id.to_string()));
    }
    // One more simulated minute: the software task and the batch task are under way, not finished.
    sim.advance(Duration::from_secs(60));
    Ok(seeded)
}
