//! `iotctl`, the operator's command line for the Huawei IoT platform's northbound API (see docs/cli.md).
//!
//! Parsing is clap's; every failure, clap's included, ends as one line on stderr and an exit code from
//! [`error::Exit`], so scripts can tell a typo from a refusal, an unreachable platform or a failed rollout.

mod cli;
mod commands;
mod config;
mod connect;
mod devices;
mod error;
mod local;
mod output;
mod rollout;
mod watch;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command, SimCommand};
use crate::error::{Exit, Failure};

async fn run(cli: &Cli) -> Result<Exit, Failure> {
    match &cli.command {
        Command::Profile(cmd) => return local::profile(cli, cmd),
        Command::Completions { shell } => return local::completions(*shell),
        Command::Sim(SimCommand::Serve) => return local::sim_serve(cli).await,
        Command::Sim(SimCommand::Devices { device_type, ids, limit }) => {
            return local::sim_devices(cli, device_type.as_deref(), *ids, *limit);
        }
        _ => {}
    }
    // The rollout commands' input is checked before anything connects.
    let job = rollout::prepare(cli)?;
    let session = connect::connect(cli).await?;
    let format = cli.output;
    let exit = match &cli.command {
        Command::Login => commands::login(&session).await,
        Command::Packages(cmd) => commands::packages(&session, format, cmd).await,
        Command::Tasks(cmd) => commands::tasks(&session, format, cmd).await,
        Command::Subtasks(args) => commands::subtasks(&session, format, args).await,
        Command::Batch(cmd) => commands::batch(&session, format, cmd).await,
        Command::Rollout(_) | Command::RetryFailed(_) => match job {
            Some(job) => rollout::run(&session, format, job).await,
            None => Ok(Exit::Ok),
        },
        Command::Profile(_) | Command::Completions { .. } | Command::Sim(_) => Ok(Exit::Ok),
    };
    let base = session.client.config().base_url.to_string();
    if let Some(sim) = session.sim {
        sim.shutdown().await;
    }
    exit.map_err(|f| match f.exit {
        // The URL is what to check first when a platform cannot be reached, so the hint names it.
        Exit::Unreachable => {
            let hint = f.hint.clone().unwrap_or_default().replace("the base URL", &format!("the base URL {base}"));
            f.hint(hint)
        }
        _ => f,
    })
}

/// Turns a clap error into the one-line report; help and version are not errors.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // A bare `iotctl` or `iotctl tasks`: the help is the most useful answer, but it is still a usage error.
            let _ = e.print();
            Err(ExitCode::from(Exit::Usage as u8))
        }
        Err(e) => {
            // clap's report runs over several lines (the error, a tip, the usage); the part before the
            // first blank line is the error itself, folded here onto one line.
            let text = e.to_string();
            let head: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
            let joined = head.join(" ");
            let message = joined.strip_prefix("error: ").unwrap_or(&joined);
            eprintln!("{}", Failure::usage(message).hint("see `iotctl --help` or `iotctl COMMAND --help`"));
            Err(ExitCode::from(Exit::Usage as u8))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}", Failure::usage(format!("cannot start the async runtime: {e}")));
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit as u8)
        }
    }
}
