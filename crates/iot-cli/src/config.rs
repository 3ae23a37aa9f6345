//! Profiles: where a platform is and how to reach it, kept in `config.toml` under the user's config directory.
//!
//! A profile holds the base URL, the app id and the paths of the CA file and the client certificate and key.
//! It never holds the app secret: that comes from `IOTCTL_SECRET` or a prompt (see [`secret`]), so a config file
//! that is copied, backed up or shown on screen gives nobody the keys. A `secret` key in the file is refused
//! rather than ignored, so whoever put it there learns that it is not used.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use iot_model::AppSecret;
use serde::{Deserialize, Serialize};

use crate::error::Failure;

/// The environment variable that overrides the config directory (tests point it at a temporary directory).
pub const CONFIG_DIR_ENV: &str = "IOTCTL_CONFIG_DIR";
/// The environment variable the app secret is read from.
pub const SECRET_ENV: &str = "IOTCTL_SECRET";
/// The name of the file holding the profiles, inside the config directory.
pub const CONFIG_FILE: &str = "config.toml";

/// One platform and app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The platform's base URL, such as `https://iot.example.com:8743`.
    pub base_url: String,
    /// The app id (`app_key`).
    pub app_id: String,
    /// A PEM file of the CA certificates to trust instead of the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A PEM file of the client certificate chain, for two-way TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// A PEM file of the client's private key, for two-way TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// The whole config file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The profile used when `--profile` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The profiles by name; a `BTreeMap` so that the file and `profile list` are sorted.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The config directory: `IOTCTL_CONFIG_DIR`, else the platform's per-user config directory for `iotctl`.
pub fn config_dir() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "iotctl").map(|dirs| dirs.config_dir().to_owned()).ok_or_else(|| {
        Failure::usage("cannot find a config directory for this user").hint(format!("set {CONFIG_DIR_ENV}"))
    })
}

impl Config {
    /// The path of the config file.
    pub fn path() -> Result<PathBuf, Failure> {
        Ok(config_dir()?.join(CONFIG_FILE))
    }

    /// Reads the config file; a missing file is an empty config.
    pub fn load() -> Result<Self, Failure> {
        let path = Self::path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Failure::usage(format!("cannot read {}: {e}", path.display()))),
        };
        toml::from_str(&text).map_err(|e| {
            let hint = if e.message().contains("secret") {
                format!("profiles never hold the secret; remove it from the file and set {SECRET_ENV}")
            } else {
                "fix the file, or recreate the profile with `iotctl profile add`".to_owned()
            };
            Failure::usage(format!("invalid config file {}: {}", path.display(), one_line(e.message()))).hint(hint)
        })
    }

    /// Writes the config file, creating the directory when needed.
    pub fn save(&self) -> Result<PathBuf, Failure> {
        let path = Self::path()?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
            std::fs::write(&path, text)
        };
        write().map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// The profile `name`, or the default one when no name is given.
    pub fn select(&self, name: Option<&str>) -> Result<(String, Profile), Failure> {
        let name = match name.or(self.default.as_deref()) {
            Some(name) => name.to_owned(),
            None if self.profiles.len() == 1 => self.profiles.keys().next().cloned().unwrap_or_default(),
            None => {
                return Err(Failure::usage("no profile selected")
                    .hint("add one with `iotctl profile add NAME --base-url URL --app-id ID`, pass --profile NAME, or try --sim"));
            }
        };
        match self.profiles.get(&name) {
            Some(p) => Ok((name, p.clone())),
            None => {
                Err(Failure::usage(format!("no profile named {name:?}")).hint("list them with `iotctl profile list`"))
            }
        }
    }
}

/// Reads the app secret: `IOTCTL_SECRET`, else a prompt when someone is at the terminal.
///
/// There is deliberately no flag for it: a flag's value ends up in shell history and in the process list.
pub fn secret(profile: &str, app_id: &str) -> Result<AppSecret, Failure> {
    if let Ok(value) = std::env::var(SECRET_ENV)
        && !value.is_empty()
    {
        return Ok(AppSecret::new(value));
    }
    // Only prompt when a person can answer; a script without the variable fails at once instead of hanging.
    if std::io::stdin().is_terminal() {
        let prompt = format!("secret of app {app_id} (profile {profile}): ");
        if let Ok(value) = rpassword::prompt_password(prompt)
            && !value.is_empty()
        {
            return Ok(AppSecret::new(value));
        }
    }
    Err(Failure::usage(format!("no secret for app {app_id} (profile {profile})"))
        .hint(format!("set {SECRET_ENV}, or run in a terminal to be prompted")))
}

/// Reads a file a profile names, with the profile's name in the error.
pub fn read_profile_file(what: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        Failure::usage(format!("cannot read the {what} {}: {e}", path.display()))
            .hint("fix the path with `iotctl profile add` (it replaces the profile)")
    })
}

/// Folds a multi-line message onto one line, for the one-line error report.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_profile_round_trips_and_a_secret_in_the_file_is_refused() {
        let mut config = Config::default();
        config.profiles.insert(
            "prod".into(),
            Profile {
                base_url: "https://iot.example.com:8743".into(),
                app_id: "app".into(),
                ca_file: Some("/etc/ca.pem".into()),
                client_cert: None,
                client_key: None,
            },
        );
        let text = toml::to_string_pretty(&config).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
        let with_secret = format!("{text}secret = \"x\"\n");
        assert!(toml::from_str::<Config>(&with_secret).is_err());
    }

    #[test]
    fn a_single_profile_is_selected_without_a_name() {
        let mut config = Config::default();
        assert!(config.select(None).is_err());
        let p = Profile {
            base_url: "http://x".into(),
            app_id: "a".into(),
            ca_file: None,
            client_cert: None,
            client_key: None,
        };
        config.profiles.insert("only".into(), p);
        assert_eq!(config.select(None).unwrap().0, "only");
        assert!(config.select(Some("other")).is_err());
    }
}
