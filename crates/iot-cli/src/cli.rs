//! The command line's grammar: every command, option and value, as clap derive types.
//!
//! Only parsing lives here; each command's behaviour is in its own module. Help texts are the reference users
//! see first, so they say what a value means, not how it is implemented.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// The operator's command line for the Huawei IoT platform (OceanConnect) northbound API.
///
/// Exit codes: 0 ok, 1 usage or local input, 2 the platform refused, 3 unreachable or timed out, 4 outcome of a
/// create unknown (the task may exist), 5 a watched task failed or was halted, 6 unreadable answer.
#[derive(Debug, Parser)]
#[command(name = "iotctl", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    /// The profile to use (see `iotctl profile`); default: the config's default profile.
    #[arg(long, global = true, env = "IOTCTL_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Run against a simulator started in this process instead of a profile (seeded with a few tasks).
    #[arg(long, global = true)]
    pub sim: bool,
    /// Seed of the simulator (--sim and `sim serve`): the same seed gives the same fleet, ids and outcomes.
    #[arg(long, global = true, default_value_t = 1, value_name = "N")]
    pub sim_seed: u64,
    /// Simulated seconds per real second (--sim and `sim serve`); 0 freezes simulated time.
    #[arg(long, global = true, default_value_t = 60.0, value_name = "X", allow_negative_numbers = true)]
    pub sim_time_scale: f64,
    /// Number of simulated devices (--sim and `sim serve`), of two device types.
    #[arg(long, global = true, default_value_t = 300, value_name = "N")]
    pub sim_fleet_size: usize,
    /// Chance that a simulated device's upgrade (or command) fails, like 10% or 0.1 (--sim and `sim serve`;
    /// default 10%).
    #[arg(long, global = true, value_name = "RATE")]
    pub sim_failure_rate: Option<String>,
    /// Output format: a table for people, JSON (one object per line) or CSV for programs.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Seconds one call may take, retries included.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table sized to the terminal.
    Table,
    /// JSON, one object per line (JSON lines for listings).
    Json,
    /// CSV with a header row.
    Csv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in with the profile's app id and secret, to check them.
    Login,
    /// Version packages.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// Upgrade (OTA) tasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// List the per-device subtasks of an upgrade task, as they arrive.
    Subtasks(SubtasksArgs),
    /// Batch tasks (a command sent to many devices).
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Manage profiles (platform, app id, certificates; never the secret).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// The platform simulator.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Roll a package out to a fleet in waves, halting when a wave fails too often (see docs/rollout.md).
    Rollout(RolloutArgs),
    /// Create a new task for exactly the devices that failed in an earlier, finished upgrade task.
    RetryFailed(RetryFailedArgs),
}

/// `iotctl rollout ...`: a new rollout, or `rollout resume JOURNAL`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(group(ArgGroup::new("kind").required(true).args(["firmware", "software"])))]
pub struct RolloutArgs {
    /// Resume a rollout from its journal.
    #[command(subcommand)]
    pub resume: Option<RolloutCommand>,
    /// Roll out a firmware package.
    #[arg(long)]
    pub firmware: bool,
    /// Roll out a software package.
    #[arg(long)]
    pub software: bool,
    /// The package's file id.
    #[arg(long, value_name = "ID", required = true)]
    pub package: Option<String>,
    /// The fleet, in rollout order: a file of device ids, one per line or a JSON array (`-` = stdin).
    #[arg(long, value_name = "FILE", required = true)]
    pub devices: Option<PathBuf>,
    /// Cumulative stages, as percentages of the fleet, strictly increasing.
    #[arg(long, default_value = "1%,10%,50%,100%", value_name = "LIST")]
    pub stages: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Settings shared by `rollout` and `retry-failed`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Halt when more than this share of a wave's devices fail (like 2%).
    #[arg(long, default_value = "2%", value_name = "RATE")]
    pub max_failure_rate: String,
    /// Seconds between polls of a running task (on --sim, simulated seconds).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub poll: f64,
    /// The journal to write; it must not exist yet (default: ./rollout-TIME.jsonl, or ./retry-TASK-TIME.jsonl).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
}

/// `iotctl rollout resume`
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Resume a rollout from its journal, after a crash, a kill or a halt because calls kept failing.
    Resume {
        /// The journal the rollout wrote.
        journal: PathBuf,
    },
}

/// Options of `retry-failed`.
#[derive(Debug, Args)]
pub struct RetryFailedArgs {
    /// The earlier upgrade task's operation id; it must have finished.
    pub task: String,
    /// The package to install (the task does not say which file it installed).
    #[arg(long, value_name = "ID")]
    pub package: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `iotctl packages ...`
#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// List version packages.
    List(PackageFilter),
    /// Show one package.
    Show {
        /// The package's file id.
        file_id: String,
    },
    /// Delete one package.
    Delete {
        /// The package's file id.
        file_id: String,
        /// Delete without asking (required when no one is at the terminal).
        #[arg(long, short)]
        yes: bool,
    },
}

/// Filters of `packages list`.
#[derive(Debug, Args)]
pub struct PackageFilter {
    /// Only firmware or only software packages.
    #[arg(long, value_enum)]
    pub file_type: Option<Kind>,
    /// Only packages for this device type.
    #[arg(long)]
    pub device_type: Option<String>,
    /// Only packages for this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only packages from this manufacturer (name).
    #[arg(long)]
    pub manufacturer: Option<String>,
    /// Only this version (`--version` is iotctl's own).
    #[arg(long = "package-version", value_name = "VERSION")]
    pub package_version: Option<String>,
    /// Stop after this many.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Firmware or software.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Firmware.
    Firmware,
    /// Software.
    Software,
}

/// `iotctl tasks ...`
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Create a firmware or software upgrade task (several, when more than 256 devices are given).
    Create(CreateTaskArgs),
    /// List upgrade tasks.
    List(TaskFilter),
    /// Show one upgrade task and its counters.
    Show {
        /// The task's operation id.
        id: String,
    },
    /// Follow an upgrade task until it ends; the exit code says how it ended.
    Watch(WatchArgs),
}

/// Where the devices of a new task come from.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("targets").required(true).args(["device", "devices"])))]
pub struct DeviceSelection {
    /// A device id (repeat for more).
    #[arg(long = "device", value_name = "ID")]
    pub device: Vec<String>,
    /// A file of device ids: one per line (`#` comments allowed) or a JSON array; any number (`-` = stdin).
    #[arg(long, value_name = "FILE")]
    pub devices: Option<PathBuf>,
}

/// Options of `tasks create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("kind").required(true).args(["firmware", "software"])))]
pub struct CreateTaskArgs {
    /// Upgrade firmware.
    #[arg(long)]
    pub firmware: bool,
    /// Upgrade software.
    #[arg(long)]
    pub software: bool,
    /// The package's file id.
    #[arg(long, value_name = "ID")]
    pub package: String,
    /// The devices.
    #[command(flatten)]
    pub targets: DeviceSelection,
    /// When the devices upgrade: now, when each comes online, or in the window --start-time..--end-time.
    #[arg(long, value_enum)]
    pub execute: Option<Execute>,
    /// Start of the window (yyyyMMddTHHmmssZ, UTC), with --execute custom.
    #[arg(long, value_name = "TIME")]
    pub start_time: Option<String>,
    /// End of the window (yyyyMMddTHHmmssZ, UTC), with --execute custom.
    #[arg(long, value_name = "TIME")]
    pub end_time: Option<String>,
    /// Retry a failed device this many times (1 to 5).
    #[arg(long, value_name = "N")]
    pub retry_times: Option<u32>,
    /// Follow the task(s) until they end.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between polls while watching.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub interval: f64,
}

/// Execution policies of an upgrade task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Execute {
    /// At once.
    Now,
    /// When each device next comes online.
    DeviceOnline,
    /// In a time window.
    Custom,
}

/// Filters of `tasks list` (every filter of the platform's task list query).
#[derive(Debug, Args)]
pub struct TaskFilter {
    /// Only firmware or only software upgrades.
    #[arg(long = "type", value_enum, value_name = "KIND")]
    pub kind: Option<Kind>,
    /// Only tasks in this state.
    #[arg(long, value_enum)]
    pub status: Option<TaskStatus>,
    /// Only tasks for this device type.
    #[arg(long)]
    pub device_type: Option<String>,
    /// Only tasks for this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only tasks for this manufacturer (name).
    #[arg(long)]
    pub manufacturer: Option<String>,
    /// Only tasks that include this device.
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,
    /// Stop after this many.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// States of an upgrade task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskStatus {
    /// Not started.
    Wait,
    /// Running.
    Processing,
    /// Finished with failures.
    Failed,
    /// Finished, every device upgraded.
    Success,
    /// Stopped.
    Stop,
}

/// States of an upgrade subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SubtaskStatus {
    /// Not started.
    Wait,
    /// Running.
    Processing,
    /// Failed.
    Fail,
    /// Upgraded.
    Success,
    /// Stopped.
    Stop,
}

/// Options of `subtasks`.
#[derive(Debug, Args)]
pub struct SubtasksArgs {
    /// The upgrade task's operation id.
    pub id: String,
    /// Only subtasks in this state.
    #[arg(long, value_enum)]
    pub status: Option<SubtaskStatus>,
    /// Stop after this many.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Options of the `watch` commands.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The task's id.
    pub id: String,
    /// Seconds between polls.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub interval: f64,
}

/// `iotctl batch ...`
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Create a DeviceCmd batch task: one command sent to many devices.
    Create(CreateBatchArgs),
    /// Show one batch task and its counters.
    Show {
        /// The batch task's id.
        id: String,
    },
    /// List the subtasks (one per device) of a batch task, as they arrive.
    Details(DetailsArgs),
    /// Follow a batch task until it ends; the exit code says how it ended.
    Watch(WatchArgs),
}

/// Options of `batch create`; the selector options decide the DeviceCmd type.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("select").required(true).args(["device", "devices", "device_type", "group", "broadcast"])))]
pub struct CreateBatchArgs {
    /// The task's name.
    #[arg(long)]
    pub name: String,
    /// Minutes before unfinished commands time out (10 to 2880).
    #[arg(long = "timeout-minutes", default_value_t = 30, value_name = "MINUTES")]
    pub timeout_minutes: u32,
    /// The command's service id, such as `Switch`.
    #[arg(long)]
    pub service_id: String,
    /// The command's method, such as `SET`.
    #[arg(long)]
    pub method: String,
    /// The command's parameters, a JSON object such as '{"state":"on"}'.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Type DeviceList: a device id (repeat for more).
    #[arg(long = "device", value_name = "ID")]
    pub device: Vec<String>,
    /// Type DeviceList: a file of device ids, one per line or a JSON array (`-` = stdin).
    #[arg(long, value_name = "FILE")]
    pub devices: Option<PathBuf>,
    /// Type DeviceType: every device of this type (narrowed by --model and --manufacturer-id).
    #[arg(long)]
    pub device_type: Option<String>,
    /// With --device-type: only this model.
    #[arg(long, requires = "device_type")]
    pub model: Option<String>,
    /// With --device-type: only this manufacturer id.
    #[arg(long, requires = "device_type")]
    pub manufacturer_id: Option<String>,
    /// Type GroupList: every device of this group (repeat for more).
    #[arg(long = "group", value_name = "NAME")]
    pub group: Vec<String>,
    /// Type Broadcast: every device of the app.
    #[arg(long)]
    pub broadcast: bool,
    /// How often the platform resends an unanswered command.
    #[arg(long)]
    pub max_retransmit: Option<u32>,
    /// Follow the task until it ends.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between polls while watching.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub interval: f64,
}

/// Options of `batch details` (every filter of the platform's query).
#[derive(Debug, Args)]
pub struct DetailsArgs {
    /// The batch task's id.
    pub id: String,
    /// Only subtasks in this state.
    #[arg(long, value_enum)]
    pub status: Option<DetailStatus>,
    /// Only the subtask of this device.
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,
    /// Only the subtask of this command.
    #[arg(long, value_name = "ID")]
    pub command_id: Option<String>,
    /// Only the subtask at this index (registration tasks).
    #[arg(long)]
    pub index: Option<u32>,
    /// Only the subtask of this node id (registration tasks).
    #[arg(long)]
    pub node_id: Option<String>,
    /// Stop after this many.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// States of a batch subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DetailStatus {
    /// Not sent yet.
    Pending,
    /// Sent, waiting for the device's answer.
    WaitResult,
    /// The device executed it.
    Success,
    /// It failed.
    Fail,
    /// No answer in time.
    Timeout,
}

/// `iotctl profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Add (or replace) a profile.
    Add(AddProfileArgs),
    /// List the profiles.
    List,
    /// Show a profile (the secret is never stored nor shown).
    Show {
        /// The profile; default: the selected one.
        name: Option<String>,
    },
    /// Remove a profile.
    Remove {
        /// The profile.
        name: String,
    },
}

/// Options of `profile add`.
#[derive(Debug, Args)]
pub struct AddProfileArgs {
    /// The profile's name.
    pub name: String,
    /// The platform's base URL, such as `https://iot.example.com:8743`.
    #[arg(long)]
    pub base_url: String,
    /// The app id.
    #[arg(long)]
    pub app_id: String,
    /// A PEM file of the CA certificates to trust (instead of the public roots).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A PEM file of the client certificate chain (two-way TLS).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// A PEM file of the client's private key (two-way TLS).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Make it the default profile.
    #[arg(long)]
    pub default: bool,
}

/// `iotctl sim ...`
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a simulator on 127.0.0.1 until Ctrl-C and write a profile named `sim` pointing at it.
    Serve,
    /// List the simulated fleet (the same seed and size as --sim and `sim serve`), to find device ids.
    Devices {
        /// Only devices of this type (such as WaterMeter or SmokeDetector).
        #[arg(long)]
        device_type: Option<String>,
        /// Print only the ids, one per line: a devices file for `--devices`.
        #[arg(long)]
        ids: bool,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
