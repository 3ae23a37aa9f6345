//! What a [`Client`](crate::Client) needs: the platform, the credentials, the transport's limits and TLS, and the
//! rules the core applies (retries, quota, rate limit, deadlines).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use iot_model::{AppId, AppSecret};
use iot_proto::BaseUrl;
use iot_proto::call::CoreConfig;
use iot_proto::ratelimit::RateLimit;
use iot_proto::retry::{RetryPolicy, RetryQuota};
use iot_proto::session::SessionConfig;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A certificate PEM could not be read, or held no certificate.
    #[error("invalid certificate pem")]
    CertificatePem,
    /// The private key PEM could not be read or held no key; the parser's message is dropped because it may
    /// quote a line of the key.
    #[error("invalid private key pem")]
    PrivateKeyPem,
}

/// The certificate authorities trusted to identify the platform.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Roots {
    /// The Mozilla root program as bundled by `webpki-roots`; nothing is read from the operating system.
    #[default]
    Platform,
    /// Only these CA certificates; the public roots are not trusted at all.
    CustomCa(Arc<Vec<Certificate<'static>>>),
}

impl Roots {
    /// Trusts only the CA certificates in `pem` (one or more `CERTIFICATE` sections).
    pub fn custom_ca_pem(pem: &[u8]) -> Result<Roots, ConfigError> {
        Ok(Roots::CustomCa(Arc::new(certificates(pem)?)))
    }
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::Platform => f.write_str("Platform"),
            Roots::CustomCa(certs) => write!(f, "CustomCa({} certificates)", certs.len()),
        }
    }
}

/// A client certificate chain and its key, for platforms that require two-way TLS. `Debug` hides the key.
#[derive(Clone)]
pub struct Identity(pub(crate) ClientCert);

impl Identity {
    /// Reads a certificate chain (leaf first) and a private key (PKCS#8, PKCS#1 or SEC1) from PEM.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, ConfigError> {
        let chain = certificates(cert_chain_pem)?;
        let key = PrivateKey::from_pem(key_pem).map_err(|_| ConfigError::PrivateKeyPem)?;
        Ok(Identity(ClientCert::new_with_certs(&chain, key)))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("certs", &self.0.certs().len()).field("key", &"[redacted]").finish()
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, ConfigError> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(cert) = item.map_err(|_| ConfigError::CertificatePem)? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(ConfigError::CertificatePem);
    }
    Ok(certs)
}

/// Everything a [`Client`](crate::Client) needs. Build it with [`ClientConfig::new`] and the `with_*` methods;
/// `Debug` prints the secret and the client key as `[redacted]`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The platform, for example `https://iot.example.com:8743`.
    pub base_url: BaseUrl,
    /// The application's id, sent as `app_key`.
    pub app_id: AppId,
    /// The application's secret, sent only to log in and to refresh.
    pub secret: AppSecret,
    /// The limit for opening a connection, TLS handshake included (default 10 s).
    pub connect_timeout: Duration,
    /// The limit for one attempt: connecting, sending and reading the whole answer (default 30 s).
    pub request_timeout: Duration,
    /// The largest answer body accepted (default 16 MiB); a larger one fails the attempt.
    pub max_body_bytes: u64,
    /// The trusted server roots.
    pub roots: Roots,
    /// The client identity for two-way TLS, if any.
    pub identity: Option<Identity>,
    /// When to refresh the token.
    pub session: SessionConfig,
    /// Retries of failed attempts.
    pub retry: RetryPolicy,
    /// Capacity of the retry quota shared by all clones (0 switches the quota off).
    pub retry_quota: u32,
    /// The client-side call quota shared by all clones (default: the platform's 100 calls per 60 s).
    pub rate_limit: RateLimit,
    /// A deadline for a whole call, token renewal, retries and waits included (default 120 s).
    pub call_timeout: Duration,
    /// Most pages one paged walk fetches (default 100 000).
    pub max_pages: u32,
}

impl ClientConfig {
    /// The platform's usual rules, finite timeouts and the public roots.
    pub fn new(base_url: BaseUrl, app_id: AppId, secret: AppSecret) -> Self {
        let core = CoreConfig::new(base_url.clone(), app_id.clone(), secret.clone());
        Self {
            base_url,
            app_id,
            secret,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
            roots: Roots::Platform,
            identity: None,
            session: core.session,
            retry: core.retry,
            retry_quota: RetryQuota::DEFAULT_CAPACITY,
            rate_limit: core.rate_limit,
            call_timeout: core.call_timeout,
            max_pages: core.max_pages,
        }
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit of one attempt.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the largest answer body accepted, in bytes.
    pub fn with_max_body_bytes(mut self, max: u64) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Trusts these roots instead of the public ones.
    pub fn with_roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// Presents this client certificate (two-way TLS).
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sets the token session's timing.
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets the retry policy ([`RetryPolicy::disabled`] turns retries off).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the capacity of the shared retry quota (0 switches it off).
    pub fn with_retry_quota(mut self, capacity: u32) -> Self {
        self.retry_quota = capacity;
        self
    }

    /// Sets the client-side rate limit ([`RateLimit::disabled`] switches it off).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets the deadline of a whole call.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the page guard of paged walks.
    pub fn with_max_pages(mut self, max_pages: u32) -> Self {
        self.max_pages = max_pages;
        self
    }

    /// The core's share of the configuration.
    pub(crate) fn core(&self) -> CoreConfig {
        let mut core = CoreConfig::new(self.base_url.clone(), self.app_id.clone(), self.secret.clone());
        core.session = self.session;
        core.retry = self.retry;
        core.retry_quota = self.retry_quota;
        core.rate_limit = self.rate_limit;
        core.call_timeout = self.call_timeout;
        core.max_pages = self.max_pages;
        core
    }
}
