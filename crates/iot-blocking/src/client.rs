//! The client: one [`ClientCore`] behind a mutex, and the loop that drives a call's machine over ureq.
//!
//! The loop only moves bytes, reads `Instant::now()`, sleeps and waits. Everything else (tokens, retries,
//! pacing, classification, deadlines) is decided by `iot_proto::call`. The lock is never held while sending or
//! sleeping; a call waiting for another call's renewal waits on a condition variable that is notified whenever
//! the core says a renewal ended.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use iot_proto::Endpoint;
use iot_proto::call::{CallError, ClientCore, Drive, Step};
use iot_proto::session::SessionState;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::transport::{Transport, TransportError};

struct Inner {
    config: ClientConfig,
    transport: Transport,
    core: Mutex<ClientCore>,
    /// Notified when a renewal ends, for the calls in [`Step::WaitForRenewal`].
    renewed: Condvar,
}

/// A blocking client of the northbound API. Cheap to clone; clones share the connection pool, the token
/// session, the retry quota and the rate limit, and may be used from many threads at once.
///
/// ```no_run
/// use iot_blocking::{Client, ClientConfig};
/// use iot_model::{AppId, AppSecret};
/// use iot_proto::{BaseUrl, QueryUpgradeTaskList};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(ClientConfig::new(
///     BaseUrl::parse("https://iot.example.com:8743")?,
///     AppId::new("my-app")?,
///     AppSecret::new(std::env::var("IOT_SECRET")?),
/// ))?;
/// let page = client.query_upgrade_task_list(&QueryUpgradeTaskList::new().with_page_size(100))?;
/// println!("{} tasks", page.total_count.unwrap_or(0));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client; no connection is opened yet.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        // The seed only spreads retry jitter between processes.
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport::new(&config),
                core: Mutex::new(ClientCore::new(config.core(), seed)),
                renewed: Condvar::new(),
                config,
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends any endpoint's request: logs in or refreshes first when needed, retries what the policy allows,
    /// and returns the typed answer. A create that fails after the platform may have acted is
    /// [`Error::outcome_unknown`].
    pub fn send<E: Endpoint>(&self, request: &E) -> Result<E::Response, Error> {
        let call = self.lock().call(request, Instant::now());
        self.drive(call)
    }

    /// Logs in now, replacing the current tokens; calls made meanwhile wait for it. Calls log in by themselves,
    /// so this is for checking the credentials early.
    pub fn login(&self) -> Result<(), Error> {
        let renewal = self.lock().login(Instant::now());
        self.drive(renewal)
    }

    /// Renews the access token now: a refresh while the refresh token is usable, else a login.
    pub fn renew_token(&self) -> Result<(), Error> {
        let renewal = self.lock().renew(Instant::now());
        self.drive(renewal)
    }

    /// Revokes the access token on the platform and forgets both tokens; does nothing without a token.
    pub fn logout(&self) -> Result<(), Error> {
        let Some(call) = self.lock().logout(Instant::now()) else { return Ok(()) };
        self.drive(call).map(|_| ())
    }

    /// The state of the token session, for diagnostics.
    pub fn session_state(&self) -> SessionState {
        self.lock().session_state(Instant::now())
    }

    /// Tokens left in the shared retry quota.
    pub fn retry_quota_available(&self) -> u32 {
        self.lock().retry_quota_available()
    }

    fn lock(&self) -> MutexGuard<'_, ClientCore> {
        // The core stays consistent between its methods, so a panic elsewhere leaves nothing half-done.
        self.inner.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the calls waiting for a renewal when the core says one ended.
    fn wake(&self, core: &mut ClientCore) {
        if core.take_wakeup() {
            self.inner.renewed.notify_all();
        }
    }

    /// Runs a machine to its result.
    fn drive<M: Drive<TransportError>>(&self, machine: M) -> Result<M::Output, Error> {
        let mut guard = Abandon { client: self, machine: Some(machine) };
        // Always `Some` here; the guard takes the machine back only when it is dropped.
        let Some(machine) = guard.machine.as_mut() else { return Err(Error::Call(CallError::Finished)) };
        let mut core = self.lock();
        loop {
            let now = Instant::now();
            let step = machine.poll(&mut core, now);
            self.wake(&mut core);
            while machine.poll_event().is_some() {}
            match step {
                Step::Send(transmit) => {
                    drop(core);
                    let answer = self.inner.transport.send(transmit.request, machine.deadline());
                    core = self.lock();
                    match answer {
                        Ok(response) => machine.handle_response(&mut core, Instant::now(), response),
                        Err((failure, error)) => machine.handle_failure(&mut core, Instant::now(), failure, error),
                    }
                    self.wake(&mut core);
                }
                Step::Wait(until) => {
                    drop(core);
                    std::thread::sleep(until.saturating_duration_since(now));
                    core = self.lock();
                }
                Step::WaitForRenewal(until) => {
                    // The lock was held since the poll, so a renewal cannot end unseen before the wait starts.
                    let timeout = until.saturating_duration_since(now);
                    core = self.inner.renewed.wait_timeout(core, timeout).unwrap_or_else(PoisonError::into_inner).0;
                }
                Step::Done(result) => return result.map_err(Error::Call),
            }
        }
    }
}

/// Gives back what a machine holds in the core when the driving ends, by a result or by a panic.
struct Abandon<'c, M: Drive<TransportError>> {
    client: &'c Client,
    machine: Option<M>,
}

impl<M: Drive<TransportError>> Drop for Abandon<'_, M> {
    fn drop(&mut self) {
        if let Some(machine) = self.machine.take() {
            let mut core = self.client.lock();
            machine.abandon(&mut core);
            self.client.wake(&mut core);
        }
    }
}
