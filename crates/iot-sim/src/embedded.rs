//! The simulator in process: its pure core behind the thin server, on loopback, for tests and examples.
//!
//! The core never reads a clock; this wrapper does, once per request, and maps real elapsed time onto
//! simulated time with a scale factor, so that an hour-long rollout can play in seconds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::pki::TestPki;
use crate::server::{self, Admission, Gate, Handler, Limits, RunningServer, ServerConfig, ServerError, TlsMode};
use crate::sim::{HeadCheck, Prepared, SimConfig, Simulator};

/// Maps real time onto simulated time: `start + elapsed * scale`.
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    real_start: Instant,
    sim_start: SystemTime,
    scale: f64,
}

impl SimClock {
    /// A clock that starts at `sim_start` now and runs `scale` times faster than real time (1.0 = real time).
    pub fn new(sim_start: SystemTime, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        Self { real_start: Instant::now(), sim_start, scale }
    }

    /// The simulated time now.
    pub fn now(&self) -> SystemTime {
        let elapsed = self.real_start.elapsed().as_secs_f64() * self.scale;
        self.sim_start + Duration::try_from_secs_f64(elapsed).unwrap_or(Duration::MAX / 4)
    }

    /// How much simulated time passes per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

/// How the embedded simulator serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTPS with a certificate from a CA generated at start (see [`EmbeddedSim::pki`]).
    Https,
    /// HTTPS that also requires a client certificate from the generated CA (two-way TLS).
    MutualTls,
}

/// Options of the embedded simulator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmbeddedOptions {
    /// HTTP, HTTPS or two-way TLS.
    pub transport: Transport,
    /// Simulated seconds per real second (default 1).
    pub time_scale: f64,
    /// Simulated time at start (default: the real time now).
    pub start: SystemTime,
    /// Keep a copy of every request received, for wire-level assertions (default off).
    pub record_requests: bool,
    /// The server's limits on bodies, deadlines, connections and buffered bytes (default: [`Limits::default`]).
    pub limits: Limits,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            transport: Transport::Http,
            time_scale: 1.0,
            start: SystemTime::now(),
            record_requests: false,
            limits: Limits::default(),
        }
    }
}

impl EmbeddedOptions {
    /// Serves over this transport.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Runs simulated time this many times faster than real time.
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Starts simulated time here.
    pub fn with_start(mut self, start: SystemTime) -> Self {
        self.start = start;
        self
    }

    /// Records every request received.
    pub fn with_recording(mut self) -> Self {
        self.record_requests = true;
        self
    }

    /// Serves under these limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

struct Shared {
    sim: Mutex<Simulator>,
    clock: SimClock,
    // Simulated time added by `EmbeddedSim::advance`, on top of the scaled clock.
    skew: Mutex<Duration>,
    recorded: Option<Mutex<Vec<http::Request<Bytes>>>>,
}

/// A running simulator on `127.0.0.1` with an OS-chosen port. Dropping it stops the server.
pub struct EmbeddedSim {
    server: RunningServer,
    shared: Arc<Shared>,
    pki: Option<TestPki>,
}

impl std::fmt::Debug for EmbeddedSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSim").field("base_url", &self.server.base_url()).finish_non_exhaustive()
    }
}

/// The handler that runs the simulator core for each request, at the clock's simulated time.
pub fn handler(sim: Simulator, clock: SimClock) -> Handler {
    gated_handler(sim, clock).1
}

/// The gate and the handler that run one simulator core, at the clock's simulated time: the gate answers calls
/// without valid credentials (and unknown paths) from the request's head, before a server reads their body
/// (see [`Simulator::check_head`]); give both to [`server::start_gated`].
pub fn gated_handler(sim: Simulator, clock: SimClock) -> (Gate, Handler) {
    let shared = Arc::new(Shared { sim: Mutex::new(sim), clock, skew: Mutex::new(Duration::ZERO), recorded: None });
    (shared_gate(shared.clone()), shared_handler(shared))
}

impl Shared {
    fn now(&self) -> SystemTime {
        self.clock.now() + *self.skew.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn shared_gate(shared: Arc<Shared>) -> Gate {
    Arc::new(move |head: &http::request::Parts| {
        let now = shared.now();
        let verdict = shared.sim.lock().unwrap_or_else(PoisonError::into_inner).check_head(now, head);
        match verdict {
            HeadCheck::Read { max_body } => Admission::Read(max_body),
            HeadCheck::Answer(answer) => {
                // A call answered from its head alone still reached the simulator; record it, without the body
                // that was never read, so wire-level assertions see every request.
                if let Some(log) = &shared.recorded {
                    let req = http::Request::from_parts(head.clone(), Bytes::new());
                    log.lock().unwrap_or_else(PoisonError::into_inner).push(req);
                }
                Admission::Answer(answer)
            }
        }
    })
}

fn shared_handler(shared: Arc<Shared>) -> Handler {
    Arc::new(move |req: http::Request<Bytes>| {
        if let Some(log) = &shared.recorded {
            log.lock().unwrap_or_else(PoisonError::into_inner).push(req.clone());
        }
        // The body is read into its typed form before the lock is taken, so a large body delays only its own call.
        let prepared = Prepared::new(req);
        let now = shared.now();
        shared.sim.lock().unwrap_or_else(PoisonError::into_inner).handle_prepared(now, prepared)
    })
}

impl EmbeddedSim {
    /// Builds the simulator and serves it on `127.0.0.1:0`. Must run inside a tokio runtime.
    pub async fn start(config: SimConfig, options: EmbeddedOptions) -> Result<Self, ServerError> {
        let sim = Simulator::new(config);
        let shared = Arc::new(Shared {
            sim: Mutex::new(sim),
            clock: SimClock::new(options.start, options.time_scale),
            skew: Mutex::new(Duration::ZERO),
            recorded: options.record_requests.then(|| Mutex::new(Vec::new())),
        });
        let (tls, pki) = match options.transport {
            Transport::Http => (TlsMode::Plain, None),
            Transport::Https | Transport::MutualTls => {
                let pki = TestPki::generate()?;
                let cert_chain_pem = pki.server().cert_chain_pem().to_owned();
                let key_pem = pki.server().key_pem().to_owned();
                let mode = if options.transport == Transport::Https {
                    TlsMode::Tls { cert_chain_pem, key_pem }
                } else {
                    TlsMode::MutualTls { cert_chain_pem, key_pem, client_ca_pem: pki.ca_cert_pem().to_owned() }
                };
                (mode, Some(pki))
            }
        };
        let config = ServerConfig { limits: options.limits, ..ServerConfig::with_tls(tls) };
        let server = server::start_gated(config, shared_gate(shared.clone()), shared_handler(shared.clone())).await?;
        Ok(Self { server, shared, pki })
    }

    /// Starts the default simulator (300 devices, one app) over plain HTTP at real-time speed.
    pub async fn start_default() -> Result<Self, ServerError> {
        Self::start(SimConfig::default(), EmbeddedOptions::default()).await
    }

    /// The base URL to give a client, such as `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The generated certificates, when serving HTTPS.
    pub fn pki(&self) -> Option<&TestPki> {
        self.pki.as_ref()
    }

    /// The simulated time now.
    pub fn now(&self) -> SystemTime {
        self.shared.now()
    }

    /// Moves simulated time forward by `by` (for example past a token's lifetime), for every later request.
    pub fn advance(&self, by: Duration) {
        let mut skew = self.shared.skew.lock().unwrap_or_else(PoisonError::into_inner);
        *skew = skew.saturating_add(by);
    }

    /// Looks at (or changes) the simulator's state, for example to read the fleet.
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut Simulator) -> R) -> R {
        let mut sim = self.shared.sim.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut sim)
    }

    /// Takes the requests recorded so far (empty unless recording was switched on).
    pub fn take_recorded(&self) -> Vec<http::Request<Bytes>> {
        match &self.shared.recorded {
            Some(log) => std::mem::take(&mut *log.lock().unwrap_or_else(PoisonError::into_inner)),
            None => Vec::new(),
        }
    }

    /// Stops the server and waits for its tasks.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_scales_real_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = SimClock::new(start, 1000.0);
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = clock.now().duration_since(start).unwrap_or_default();
        assert!(elapsed >= Duration::from_secs(20), "{elapsed:?}");
        assert_eq!(SimClock::new(start, f64::NAN).scale(), 1.0);
        assert_eq!(SimClock::new(start, -3.0).scale(), 1.0);
    }

    #[tokio::test]
    async fn advance_moves_simulated_time_for_the_server() {
        let sim = EmbeddedSim::start_default().await.unwrap();
        let before = sim.now();
        sim.advance(Duration::from_secs(7200));
        let after = sim.now();
        assert!(after.duration_since(before).unwrap_or_default() >= Duration::from_secs(7200));
        sim.shutdown().await;
    }
}
