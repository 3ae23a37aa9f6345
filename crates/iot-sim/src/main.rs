//! The `iot-sim` binary: serves the simulated platform over HTTP, HTTPS or two-way TLS and prints how to reach it.
//!
//! Simulated time starts at the real time of launch and runs `--time-scale` times faster than real time; every
//! request is answered by the pure core ([`iot_sim::sim::Simulator`]) at the simulated time it arrives.

// A large fleet's setup leaves glibc's heap in small free chunks that every later answer pays to search; mimalloc
// keeps a page's cost what the page costs (docs/performance.md, "National fleet").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, ValueEnum};
use iot_model::{AppId, AppSecret};
use iot_sim::embedded::{SimClock, gated_handler};
use iot_sim::pki::TestPki;
use iot_sim::server::{self, Limits, ServerConfig, ServerError, TlsMode};
use iot_sim::sim::{
    AppConfig, DEFAULT_APP_ID, DEFAULT_FAILURE_RATE, DEFAULT_FLEET_SIZE, DEFAULT_SECRET, DEFAULT_SEED, Faults,
    FleetSpec, SimConfig, SimError, Simulator,
};

/// Transport security of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TlsArg {
    /// Plain HTTP.
    Off,
    /// HTTPS with a certificate for localhost from a CA generated at start.
    SelfSigned,
    /// HTTPS with the certificate chain and key given by --cert and --key.
    Pem,
}

/// A simulator of the Huawei IoT platform (OceanConnect) northbound API.
#[derive(Parser)]
#[command(name = "iot-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8743")]
    addr: SocketAddr,
    /// Seed of every random choice; the same seed and requests give the same answers.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Number of devices to generate.
    #[arg(long, default_value_t = DEFAULT_FLEET_SIZE)]
    fleet_size: usize,
    /// A fleet file (JSON with `devices` and `packages`) to use instead of a generated fleet.
    #[arg(long, conflicts_with = "fleet_size")]
    fleet_file: Option<PathBuf>,
    /// The appId that may log in.
    #[arg(long, default_value = DEFAULT_APP_ID)]
    app_id: String,
    /// The app's secret (default: the well-known development secret, printed at start).
    #[arg(long)]
    secret: Option<String>,
    /// Transport security.
    #[arg(long, value_enum, default_value_t = TlsArg::Off)]
    tls: TlsArg,
    /// Certificate chain PEM file (with --tls pem).
    #[arg(long, required_if_eq("tls", "pem"))]
    cert: Option<PathBuf>,
    /// Private key PEM file (with --tls pem).
    #[arg(long, required_if_eq("tls", "pem"))]
    key: Option<PathBuf>,
    /// Require client certificates issued by this CA (a PEM file, or `generated` for the CA of --tls self-signed).
    #[arg(long)]
    client_ca: Option<String>,
    /// Where --tls self-signed writes its CA certificate and a client certificate and key (default: a directory
    /// in the system's temporary directory).
    #[arg(long)]
    pki_dir: Option<PathBuf>,
    /// Simulated seconds per real second (60 = one simulated minute per second).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Calls per minute each app may make (0 = no limit).
    #[arg(long, default_value_t = iot_model::limits::RATE_LIMIT_CALLS as u32)]
    rate_limit: u32,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = iot_model::limits::TOKEN_LIFETIME_SECS)]
    token_lifetime: u64,
    /// Probability (0 to 1) that an upgrade attempt or a command fails.
    #[arg(long, default_value_t = DEFAULT_FAILURE_RATE)]
    failure_rate: f64,
    /// Answer every n-th call with 500/50252, to exercise clients' retries (0 = never).
    #[arg(long, default_value_t = 0)]
    fail_every: u64,
    /// The largest request body in bytes; larger ones are answered 413.
    #[arg(long, default_value_t = server::DEFAULT_MAX_REQUEST_BODY)]
    max_body: usize,
    /// Milliseconds a request's body may take to arrive once its head is in; 408 after.
    #[arg(long, default_value_t = server::DEFAULT_BODY_READ_TIMEOUT.as_millis() as u64)]
    body_timeout_ms: u64,
    /// Milliseconds a request's head may take to arrive (also the idle keep-alive limit), and its body and answer.
    #[arg(long, default_value_t = server::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64)]
    request_timeout_ms: u64,
    /// The most connections served at once; more are closed on accept.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// The most request-body bytes buffered across all requests in flight; a body that does not fit gets 503.
    #[arg(long, default_value_t = server::DEFAULT_MAX_BUFFERED_BYTES)]
    max_buffered_bytes: usize,
}

/// The server limits the options ask for.
fn limits(args: &Args) -> Result<Limits, CliError> {
    if args.max_connections == 0 || args.body_timeout_ms == 0 || args.request_timeout_ms == 0 {
        return Err(CliError::Usage(
            "--max-connections, --body-timeout-ms and --request-timeout-ms must be positive".to_owned(),
        ));
    }
    Ok(Limits::default()
        .with_max_request_body(args.max_body)
        .with_body_read_timeout(Duration::from_millis(args.body_timeout_ms))
        .with_request_timeout(Duration::from_millis(args.request_timeout_ms))
        .with_max_connections(args.max_connections)
        .with_max_buffered_bytes(args.max_buffered_bytes))
}

/// Why the binary could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum CliError {
    /// An option's value is unusable.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The fleet file is invalid.
    #[error("invalid fleet file {path}")]
    Fleet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: SimError,
    },
    /// The server could not start.
    #[error("cannot start the server")]
    Server(#[source] ServerError),
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io { path: path.to_owned(), source })
}

fn read_text(path: &Path) -> Result<String, CliError> {
    String::from_utf8(read(path)?).map_err(|_| CliError::Usage(format!("{} is not UTF-8 text", path.display())))
}

/// Builds the simulator's configuration from the options.
fn sim_config(args: &Args) -> Result<SimConfig, CliError> {
    if !(0.0..=1.0).contains(&args.failure_rate) {
        return Err(CliError::Usage(format!("--failure-rate must be between 0 and 1, got {}", args.failure_rate)));
    }
    let app_id = AppId::new(args.app_id.clone()).map_err(|e| CliError::Usage(format!("--app-id: {e}")))?;
    let secret = args.secret.clone().unwrap_or_else(|| DEFAULT_SECRET.to_owned());
    if secret.is_empty() {
        return Err(CliError::Usage("--secret must not be empty".to_owned()));
    }
    let mut config = SimConfig::default()
        .with_seed(args.seed)
        .with_fleet_size(args.fleet_size)
        .with_token_lifetime(Duration::from_secs(args.token_lifetime))
        .with_rate_limit((args.rate_limit > 0).then(|| (args.rate_limit, Duration::from_secs(60))))
        .with_failure_rate(args.failure_rate)
        .with_faults(Faults::fail_every_nth(args.fail_every));
    config.apps = vec![AppConfig::new(app_id, AppSecret::new(secret))];
    if let Some(path) = &args.fleet_file {
        let spec =
            FleetSpec::from_json(&read(path)?).map_err(|source| CliError::Fleet { path: path.clone(), source })?;
        config = config.with_fleet(spec);
    }
    Ok(config)
}

/// What the server presents, and the generated test PKI when there is one.
struct Security {
    mode: TlsMode,
    pki: Option<TestPki>,
}

fn security(args: &Args) -> Result<Security, CliError> {
    let client_ca = |generated: Option<&TestPki>| -> Result<Option<String>, CliError> {
        match args.client_ca.as_deref() {
            None => Ok(None),
            Some("generated") => match generated {
                Some(pki) => Ok(Some(pki.ca_cert_pem().to_owned())),
                None => Err(CliError::Usage("--client-ca generated needs --tls self-signed".to_owned())),
            },
            Some(path) => read_text(Path::new(path)).map(Some),
        }
    };
    let with_client_ca = |cert_chain_pem: String, key_pem: String, ca: Option<String>| match ca {
        None => TlsMode::Tls { cert_chain_pem, key_pem },
        Some(client_ca_pem) => TlsMode::MutualTls { cert_chain_pem, key_pem, client_ca_pem },
    };
    match args.tls {
        TlsArg::Off if args.client_ca.is_some() => {
            Err(CliError::Usage("--client-ca needs --tls self-signed or --tls pem".to_owned()))
        }
        TlsArg::Off => Ok(Security { mode: TlsMode::Plain, pki: None }),
        TlsArg::SelfSigned => {
            let pki = TestPki::generate().map_err(CliError::Server)?;
            let ca = client_ca(Some(&pki))?;
            let mode = with_client_ca(pki.server().cert_chain_pem().to_owned(), pki.server().key_pem().to_owned(), ca);
            Ok(Security { mode, pki: Some(pki) })
        }
        TlsArg::Pem => {
            let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
                return Err(CliError::Usage("--tls pem needs --cert and --key".to_owned()));
            };
            let ca = client_ca(None)?;
            Ok(Security { mode: with_client_ca(read_text(cert)?, read_text(key)?, ca), pki: None })
        }
    }
}

/// Writes the generated CA certificate, client certificate and client key for clients to use.
fn write_pki(pki: &TestPki, dir: &Path) -> Result<[PathBuf; 3], CliError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ca = dir.join("ca.pem");
    let cert = dir.join("client.pem");
    let key = dir.join("client-key.pem");
    std::fs::write(&ca, pki.ca_cert_pem()).map_err(io(&ca))?;
    std::fs::write(&cert, pki.client().cert_pem()).map_err(io(&cert))?;
    std::fs::write(&key, pki.client().key_pem()).map_err(io(&key))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The key is a throwaway test key, but other users of the machine still have no business reading it.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).map_err(io(&key))?;
    }
    Ok([ca, cert, key])
}

/// The start-up banner.
struct Banner<'a> {
    base_url: &'a str,
    args: &'a Args,
    devices: usize,
    packages: usize,
    pki_files: Option<[PathBuf; 3]>,
    mutual: bool,
}

impl fmt::Display for Banner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.args;
        writeln!(f, "iot-sim serving the northbound API at {}", self.base_url)?;
        writeln!(f, "  app id:      {}", a.app_id)?;
        match &a.secret {
            // The built-in secret is a published development value; a secret the user chose is not echoed.
            None => writeln!(f, "  secret:      {DEFAULT_SECRET}")?,
            Some(_) => writeln!(f, "  secret:      (as given by --secret)")?,
        }
        writeln!(f, "  fleet:       {} devices, {} packages, seed {}", self.devices, self.packages, a.seed)?;
        writeln!(f, "  time scale:  {} simulated seconds per second", a.time_scale)?;
        match a.rate_limit {
            0 => writeln!(f, "  rate limit:  off")?,
            n => writeln!(f, "  rate limit:  {n} calls per minute per app")?,
        }
        writeln!(f, "  tokens:      access {} s, refresh 24 h", a.token_lifetime)?;
        writeln!(
            f,
            "  limits:      body {} bytes in {} ms, request {} ms, {} connections, {} bytes buffered",
            a.max_body, a.body_timeout_ms, a.request_timeout_ms, a.max_connections, a.max_buffered_bytes
        )?;
        if let Some([ca, cert, key]) = &self.pki_files {
            writeln!(f, "  trust CA:    {}", ca.display())?;
            if self.mutual {
                writeln!(f, "  client cert: {}", cert.display())?;
                writeln!(f, "  client key:  {}", key.display())?;
            }
        } else if self.mutual {
            writeln!(f, "  client certificates are required")?;
        }
        write!(f, "Press Ctrl-C to stop.")
    }
}

async fn run(args: Args) -> Result<(), CliError> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return Err(CliError::Usage(format!("--time-scale must be a positive number, got {}", args.time_scale)));
    }
    let config = sim_config(&args)?;
    let limits = limits(&args)?;
    let security = security(&args)?;
    let mutual = matches!(security.mode, TlsMode::MutualTls { .. });
    let pki_files = match &security.pki {
        Some(pki) => {
            let dir = args.pki_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("iot-sim-pki"));
            Some(write_pki(pki, &dir)?)
        }
        None => None,
    };
    let sim = Simulator::new(config);
    let (devices, packages) = (sim.devices().len(), sim.packages().len());
    let clock = SimClock::new(SystemTime::now(), args.time_scale);
    let mut server_config = ServerConfig::with_tls(security.mode);
    server_config.addr = args.addr;
    server_config.limits = limits;
    let (gate, handler) = gated_handler(sim, clock);
    let running = server::start_gated(server_config, gate, handler).await.map_err(CliError::Server)?;
    let banner = Banner { base_url: running.base_url(), args: &args, devices, packages, pki_files, mutual };
    println!("{banner}");
    // Waiting for Ctrl-C can only fail when no signal handler can be installed; then stop at once.
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("iot-sim: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprint!(": {s}");
                source = s.source();
            }
            eprintln!();
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("iot-sim").chain(extra.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_match_the_platform() {
        let a = args(&[]);
        assert_eq!(a.addr.to_string(), "127.0.0.1:8743");
        let c = sim_config(&a).unwrap();
        assert_eq!(c.rate_limit, Some((100, Duration::from_secs(60))));
        assert_eq!(c.token_lifetime, Duration::from_secs(3600));
        assert_eq!(c.apps.len(), 1);
        assert_eq!(c.apps[0].app_id.as_str(), DEFAULT_APP_ID);
        assert!(matches!(security(&a).unwrap().mode, TlsMode::Plain));
        assert_eq!(limits(&a).unwrap(), Limits::default());
    }

    #[test]
    fn limit_options_shape_the_server() {
        let a = args(&[
            "--max-body",
            "100",
            "--body-timeout-ms",
            "200",
            "--request-timeout-ms",
            "300",
            "--max-connections",
            "4",
            "--max-buffered-bytes",
            "1000",
        ]);
        let l = limits(&a).unwrap();
        assert_eq!((l.max_request_body, l.max_connections, l.max_buffered_bytes), (100, 4, 1000));
        assert_eq!((l.body_read_timeout, l.request_timeout), (Duration::from_millis(200), Duration::from_millis(300)));
        assert!(limits(&args(&["--max-connections", "0"])).is_err());
    }

    #[test]
    fn options_shape_the_config() {
        let a = args(&["--seed", "9", "--rate-limit", "0", "--token-lifetime", "60", "--fail-every", "5"]);
        let c = sim_config(&a).unwrap();
        assert_eq!((c.seed, c.rate_limit, c.token_lifetime), (9, None, Duration::from_secs(60)));
        assert_eq!(c.faults, Faults::fail_every_nth(5));
        assert!(sim_config(&args(&["--failure-rate", "1.5"])).is_err());
        assert!(sim_config(&args(&["--secret", ""])).is_err());
    }

    #[test]
    fn tls_options_are_checked() {
        assert!(Args::try_parse_from(["iot-sim", "--tls", "pem"]).is_err(), "pem needs --cert and --key");
        assert!(Args::try_parse_from(["iot-sim", "--fleet-size", "5", "--fleet-file", "f.json"]).is_err());
        assert!(matches!(security(&args(&["--client-ca", "ca.pem"])), Err(CliError::Usage(_))));
        let a = args(&["--tls", "self-signed", "--client-ca", "generated"]);
        let s = security(&a).unwrap();
        assert!(matches!(s.mode, TlsMode::MutualTls { .. }));
        assert!(s.pki.is_some());
        let missing = args(&["--tls", "pem", "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"]);
        assert!(matches!(security(&missing), Err(CliError::Io { .. })));
    }

    #[test]
    fn the_banner_shows_the_default_secret_but_never_a_chosen_one() {
        let a = args(&["--secret", "chosen-SENTINEL"]);
        let b = Banner {
            base_url: "http://127.0.0.1:1",
            args: &a,
            devices: 1,
            packages: 2,
            pki_files: None,
            mutual: false,
        };
        let text = b.to_string();
        assert!(!text.contains("SENTINEL"), "{text}");
        let a = args(&[]);
        let b = Banner {
            base_url: "http://127.0.0.1:1",
            args: &a,
            devices: 1,
            packages: 2,
            pki_files: None,
            mutual: false,
        };
        assert!(b.to_string().contains(DEFAULT_SECRET));
    }
}
