//! The commands that never call a platform: profiles, the simulator's server and fleet, shell completions.

use std::io::Write;
use std::time::SystemTime;

use clap::CommandFactory;
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET};
use serde::Serialize;

use crate::cli::{AddProfileArgs, Cli, Format, ProfileCommand};
use crate::config::{self, Config, Profile};
use crate::connect;
use crate::error::{Exit, Failure};
use crate::output::{Listing, print_record, say};

/// What `profile show` and `profile list` print of a profile.
#[derive(Serialize)]
struct ShownProfile<'a> {
    name: &'a str,
    default: bool,
    #[serde(flatten)]
    profile: &'a Profile,
    /// Where the secret comes from; never the secret.
    secret: &'static str,
}

fn opt_path(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

/// `iotctl profile ...`
pub fn profile(cli: &Cli, cmd: &ProfileCommand) -> Result<Exit, Failure> {
    let mut config = Config::load()?;
    match cmd {
        ProfileCommand::Add(args) => {
            let AddProfileArgs { name, base_url, app_id, ca_file, client_cert, client_key, default } = args;
            iot_proto::BaseUrl::parse(base_url).map_err(|e| {
                Failure::usage(format!("--base-url {base_url:?}: {e}")).hint("like https://iot.example.com:8743")
            })?;
            iot_model::AppId::new(app_id.clone()).map_err(|e| Failure::usage(format!("--app-id {app_id:?}: {e}")))?;
            // Paths are stored absolute so that the profile works from any directory.
            let absolute = |p: &Option<std::path::PathBuf>| -> Option<std::path::PathBuf> {
                p.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            };
            let profile = Profile {
                base_url: base_url.clone(),
                app_id: app_id.clone(),
                ca_file: absolute(ca_file),
                client_cert: absolute(client_cert),
                client_key: absolute(client_key),
            };
            config.profiles.insert(name.clone(), profile);
            if *default || config.default.is_none() {
                config.default = Some(name.clone());
            }
            let path = config.save()?;
            say(&format!("saved profile {name} in {}", path.display()))?;
            Ok(Exit::Ok)
        }
        ProfileCommand::List => {
            let mut listing = Listing::new(cli.output, &["name", "default", "base url", "app id"]);
            for (name, p) in &config.profiles {
                let is_default = config.default.as_deref() == Some(name);
                let shown = ShownProfile { name, default: is_default, profile: p, secret: secret_source() };
                let mark = if is_default { "*" } else { "" };
                listing.item(&shown, vec![name.clone(), mark.to_owned(), p.base_url.clone(), p.app_id.clone()])?;
            }
            listing.finish()?;
            Ok(Exit::Ok)
        }
        ProfileCommand::Show { name } => {
            let (name, p) = config.select(name.as_deref().or(cli.profile.as_deref()))?;
            let is_default = config.default.as_deref() == Some(name.as_str());
            let shown = ShownProfile { name: &name, default: is_default, profile: &p, secret: secret_source() };
            let fields = vec![
                ("name", name.clone()),
                ("default", is_default.to_string()),
                ("base url", p.base_url.clone()),
                ("app id", p.app_id.clone()),
                ("ca file", opt_path(&p.ca_file)),
                ("client cert", opt_path(&p.client_cert)),
                ("client key", opt_path(&p.client_key)),
                ("secret", secret_source().to_owned()),
            ];
            print_record(cli.output, &shown, fields)?;
            Ok(Exit::Ok)
        }
        ProfileCommand::Remove { name } => {
            if config.profiles.remove(name).is_none() {
                return Err(
                    Failure::usage(format!("no profile named {name:?}")).hint("list them with `iotctl profile list`")
                );
            }
            if config.default.as_deref() == Some(name.as_str()) {
                config.default = None;
            }
            config.save()?;
            say(&format!("removed profile {name}"))?;
            Ok(Exit::Ok)
        }
    }
}

/// Where the secret would come from, for `profile show`: never the value itself.
fn secret_source() -> &'static str {
    if std::env::var_os(config::SECRET_ENV).is_some_and(|v| !v.is_empty()) {
        "[redacted] (from IOTCTL_SECRET)"
    } else {
        "[redacted] (not stored; set IOTCTL_SECRET or be prompted)"
    }
}

/// `iotctl completions SHELL`
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, Failure> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "iotctl", &mut out);
    std::io::stdout().write_all(&out).map_err(|e| Failure::usage(format!("cannot write the output: {e}")))?;
    Ok(Exit::Ok)
}

/// `iotctl sim devices`
pub fn sim_devices(cli: &Cli, device_type: Option<&str>, ids: bool, limit: Option<usize>) -> Result<Exit, Failure> {
    let fleet = connect::sim_fleet(cli)?;
    let chosen =
        fleet.iter().filter(|d| device_type.is_none_or(|t| d.device_type == t)).take(limit.unwrap_or(usize::MAX));
    if ids {
        for d in chosen {
            say(d.device_id.as_str())?;
        }
        return Ok(Exit::Ok);
    }
    let columns = &["device id", "device type", "model", "manufacturer", "firmware", "software", "groups"];
    let mut listing = Listing::new(cli.output, columns);
    for d in chosen {
        let cells = vec![
            d.device_id.to_string(),
            d.device_type.clone(),
            d.model.clone(),
            d.manufacturer_name.clone(),
            d.firmware_version.clone(),
            d.software_version.clone(),
            d.groups.join(" "),
        ];
        listing.item(d, cells)?;
    }
    listing.finish()?;
    Ok(Exit::Ok)
}

/// `iotctl sim serve`: serves until Ctrl-C, with a profile named `sim` pointing at it meanwhile.
pub async fn sim_serve(cli: &Cli) -> Result<Exit, Failure> {
    // A served simulator runs on real time, so that windows given as real times behave as on a platform.
    let session = connect::start_sim(cli, SystemTime::now()).await?;
    let seeded = session.seeded.clone();
    let Some(sim) = session.sim else { return Err(Failure::usage("the simulator did not start")) };
    let url = sim.base_url().to_owned();
    let mut config = Config::load()?;
    let profile = Profile {
        base_url: url.clone(),
        app_id: DEFAULT_APP_ID.to_owned(),
        ca_file: None,
        client_cert: None,
        client_key: None,
    };
    config.profiles.insert("sim".to_owned(), profile);
    let path = config.save()?;
    if cli.output == Format::Json {
        let seeded: Vec<_> = seeded.iter().map(|(what, id)| serde_json::json!({"what": what, "id": id})).collect();
        let line = serde_json::json!({"url": url, "profile": "sim", "appId": DEFAULT_APP_ID, "seeded": seeded});
        say(&line.to_string())?;
    } else {
        say(&format!("simulator serving at {url}"))?;
        say(&format!("profile sim written to {}", path.display()))?;
        for (what, id) in &seeded {
            say(&format!("seeded {what}: {id}"))?;
        }
        // The simulator's secret is a published development value, so showing it gives nothing away.
        say(&format!("in another shell: export IOTCTL_SECRET={DEFAULT_SECRET}; iotctl --profile sim tasks list"))?;
        say("Press Ctrl-C to stop.")?;
    }
    // Waiting fails only when no signal handler can be installed; then stop at once rather than hang.
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(Exit::Ok)
}
