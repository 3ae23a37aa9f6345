//! The simulator on a runtime of its own (the client under test blocks the test thread), stopped when dropped,
//! and a time limit for every test body.

use std::sync::mpsc;
use std::time::Duration;

use iot_blocking::{Client, ClientConfig};
use iot_model::{AppId, AppSecret};
use iot_proto::BaseUrl;
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};

/// Every test body must finish well within this.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The login path of the contract.
pub const LOGIN: &str = "/iocm/app/sec/v1.1.0/login";
/// The refresh path of the contract.
pub const REFRESH: &str = "/iocm/app/sec/v1.1.0/refreshToken";
/// The logout path of the contract.
pub const LOGOUT: &str = "/iocm/app/sec/v1.1.0/logout";

/// Runs `f` on its own thread; fails when it panics or outlives [`LIMIT`].
pub fn bounded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the test ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test exceeded its time limit of {LIMIT:?}"),
    }
}

/// The embedded simulator, recording requests, served by a runtime of its own.
pub struct Sim {
    runtime: tokio::runtime::Runtime,
    sim: Option<EmbeddedSim>,
}

impl Sim {
    pub fn start(config: SimConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let sim = runtime.block_on(EmbeddedSim::start(config, EmbeddedOptions::default().with_recording())).unwrap();
        Self { runtime, sim: Some(sim) }
    }

    pub fn sim(&self) -> &EmbeddedSim {
        self.sim.as_ref().unwrap()
    }

    /// A configuration for the simulator's default app.
    pub fn config(&self) -> ClientConfig {
        ClientConfig::new(
            BaseUrl::parse(self.sim().base_url()).unwrap(),
            AppId::new(DEFAULT_APP_ID).unwrap(),
            AppSecret::new(DEFAULT_SECRET),
        )
        .with_call_timeout(Duration::from_secs(20))
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }

    /// The paths of the requests received since the last call.
    pub fn take_paths(&self) -> Vec<String> {
        self.sim().take_recorded().iter().map(|r| r.uri().path().to_owned()).collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// How many of `paths` are exactly `path`.
pub fn count(paths: &[String], path: &str) -> usize {
    paths.iter().filter(|p| *p == path).count()
}
