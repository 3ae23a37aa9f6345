//! The platforms the scenarios run against, all on `127.0.0.1` port 0 and all stopped when dropped: the embedded
//! simulator, and a scripted server that lets the simulator act and then answers a gateway failure.

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::server::{self, Handler, RunningServer, ServerConfig};
use iot_sim::sim::{SimConfig, Simulator};

/// The login path of the contract.
pub const LOGIN: &str = "/iocm/app/sec/v1.1.0/login";
/// The token refresh path of the contract.
pub const REFRESH: &str = "/iocm/app/sec/v1.1.0/refreshToken";
/// The logout path of the contract.
pub const LOGOUT: &str = "/iocm/app/sec/v1.1.0/logout";
/// The batch task path of the contract (creates are `POST`s to it).
pub const BATCH_TASKS: &str = "/iocm/app/batchtask/v1.1.0/tasks";

/// Every scenario must finish well within this; a hang fails the test instead of blocking the suite.
pub const LIMIT: Duration = Duration::from_secs(90);

/// Runs `f` on its own thread and fails if it takes longer than [`LIMIT`] (or panics).
pub fn bounded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(r) => r,
        // A panic drops the sender: report the scenario's own message.
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the scenario ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the scenario exceeded its time limit of {LIMIT:?}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // The server's tasks run on these workers while the test thread blocks in the client.
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The embedded simulator, recording every request, on a runtime of its own.
pub struct Platform {
    runtime: tokio::runtime::Runtime,
    sim: Option<EmbeddedSim>,
}

impl Platform {
    /// Starts the simulator with `config` at real-time speed.
    pub fn start(config: SimConfig) -> Self {
        let runtime = runtime();
        let sim = runtime.block_on(EmbeddedSim::start(config, EmbeddedOptions::default().with_recording())).unwrap();
        Self { runtime, sim: Some(sim) }
    }

    /// The running simulator.
    pub fn sim(&self) -> &EmbeddedSim {
        self.sim.as_ref().unwrap()
    }

    /// Where a client finds it.
    pub fn base_url(&self) -> &str {
        self.sim().base_url()
    }

    /// The paths of the requests received since the last call.
    pub fn take_paths(&self) -> Vec<String> {
        self.sim().take_recorded().iter().map(|r| r.uri().path().to_owned()).collect()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// A server in front of the simulator that lets it handle every request, then, for a `POST` to one path,
/// throws the answer away and answers `502` with an HTML page, as a gateway whose upstream timed out would: the
/// platform has acted, and the client cannot know.
pub struct Scripted {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    sim: Arc<Mutex<Simulator>>,
}

impl Scripted {
    /// Starts the server; `POST`s to `fail_after_acting` get the gateway failure.
    pub fn start(config: SimConfig, fail_after_acting: &'static str) -> Self {
        let runtime = runtime();
        let sim = Arc::new(Mutex::new(Simulator::new(config)));
        let shared = sim.clone();
        let handler: Handler = Arc::new(move |req: http::Request<Bytes>| {
            let doomed = req.method() == http::Method::POST && req.uri().path() == fail_after_acting;
            let answer = shared.lock().unwrap_or_else(PoisonError::into_inner).handle(SystemTime::now(), req);
            if !doomed {
                return answer;
            }
            let mut failure = http::Response::new(b"<html><body>502 Bad Gateway</body></html>".to_vec());
            *failure.status_mut() = http::StatusCode::BAD_GATEWAY;
            failure.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html"));
            failure
        });
        let server = runtime.block_on(server::start(ServerConfig::default(), handler)).unwrap();
        Self { runtime, server: Some(server), sim }
    }

    /// Where a client finds it.
    pub fn base_url(&self) -> &str {
        self.server.as_ref().unwrap().base_url()
    }

    /// Looks at the simulator behind the server.
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut Simulator) -> R) -> R {
        f(&mut self.sim.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}
