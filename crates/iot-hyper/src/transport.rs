//! The HTTP transport: sends an `http::Request<Vec<u8>>` and returns the response with its whole body.
//!
//! It is a thin layer over the hyper-util legacy client with a hyper-rustls connector. It adds what that client
//! lacks: a timeout over the whole exchange, a cap on the response body, an idle-pool timer, and errors that say
//! whether the request may have reached the server. It never follows redirects: a 3xx is returned as a response.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use iot_proto::retry::TransportFailure;
use tokio::time::Instant;

use crate::tls::{TlsError, TlsOptions};

/// A boxed error kept as the cause of a [`TransportError`]; crate-private shorthand, so the public fields show
/// the plain `Box<dyn Error + Send + Sync>` and no alias joins the API.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How deep to look into a chain of causes; real chains are a handful of links long.
const MAX_CHAIN_DEPTH: usize = 32;

/// Settings for a [`Transport`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// The limit for establishing a TCP connection; the default is 10 s.
    pub connect_timeout: Duration,
    /// The limit for one whole exchange: connecting if needed, sending, and reading the headers and the entire
    /// body. The default is 30 s.
    pub request_timeout: Duration,
    /// How long an idle pooled connection is kept; the default is 50 s, under the idle timeouts of typical
    /// gateways and load balancers (60 s and more), so the client retires a connection before the other side
    /// closes it under a request.
    pub pool_idle_timeout: Duration,
    /// The largest response body accepted; the default is 16 MiB.
    pub max_body_bytes: usize,
    /// Trusted roots and the optional client identity.
    pub tls: TlsOptions,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(50),
            max_body_bytes: 16 * 1024 * 1024,
            tls: TlsOptions::default(),
        }
    }
}

impl TransportConfig {
    /// Returns the default settings with the given TLS options.
    ///
    /// This is a constructor; to change the TLS options of a configuration being built, use
    /// [`TransportConfig::with_tls_options`].
    pub fn with_tls(tls: TlsOptions) -> Self {
        TransportConfig { tls, ..TransportConfig::default() }
    }

    /// Sets the limit for establishing a TCP connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit for one whole exchange (connecting if needed, sending, and reading the entire answer).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how long an idle pooled connection is kept.
    pub fn with_pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Sets the largest response body accepted, in bytes.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Sets the trusted roots and the optional client identity.
    pub fn with_tls_options(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }
}

/// What the transport was doing when a timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Opening the TCP connection; the request was not sent.
    Connect,
    /// Waiting for the response headers; this includes any TLS handshake, so the request may have been sent.
    Response,
    /// Reading the response body; the request was sent and the headers have arrived.
    Body,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Response => "waiting for the response",
            TimeoutPhase::Body => "reading the response body",
        })
    }
}

/// Errors from sending a request.
///
/// Neither `Display` nor `Debug` contains header values or bodies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request cannot be sent as given (for example its URI has no host); nothing was sent.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with the request.
        reason: &'static str,
    },
    /// No connection could be established (refused, unreachable, name not resolved); nothing was sent.
    #[error("could not connect")]
    Connect {
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// TLS failed: the server's certificate was not trusted, or the server refused the client certificate.
    #[error("tls handshake failed")]
    Tls {
        /// Whether request bytes may have been written before the failure surfaced.
        ///
        /// With TLS 1.3 the server checks the client certificate after the client has finished its side of the
        /// handshake, so the refusal can arrive after the request was written (though never processed).
        request_may_have_been_sent: bool,
        /// The rustls error found in the cause chain.
        #[source]
        source: rustls::Error,
    },
    /// The TLS handshake failed for another reason than a refused certificate (the server closed the
    /// connection or broke the protocol during the handshake); nothing was sent, and trying again may succeed.
    #[error("tls handshake did not complete")]
    TlsHandshake {
        /// The rustls error found in the cause chain.
        #[source]
        source: rustls::Error,
    },
    /// A timeout fired.
    #[error("{phase} timed out after {after:?}")]
    Timeout {
        /// What was happening when it fired.
        phase: TimeoutPhase,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// The response body is larger than the configured limit.
    #[error("response body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: usize,
        /// The announced `Content-Length`, when the response was rejected on it before reading.
        content_length: Option<u64>,
    },
    /// The connection failed during the exchange (reset, closed early, an I/O error).
    #[error("connection failed")]
    Io {
        /// Whether the request may have reached the server.
        request_may_have_been_sent: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The server's response was not valid HTTP/1.
    #[error("malformed http response")]
    Protocol {
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl TransportError {
    /// How the failure looks to the call machine: the one table from this transport's errors to the core's
    /// failure kinds, which decide retries and whether a create may have been acted on.
    pub fn failure(&self) -> TransportFailure {
        match self {
            TransportError::InvalidRequest { .. } => TransportFailure::Unsendable,
            TransportError::Connect { .. } | TransportError::Timeout { phase: TimeoutPhase::Connect, .. } => {
                TransportFailure::ConnectFailed
            }
            TransportError::Tls { .. } => TransportFailure::TlsRefused,
            TransportError::TlsHandshake { .. } => TransportFailure::TlsHandshake,
            TransportError::Timeout { .. } => TransportFailure::Timeout,
            TransportError::BodyTooLarge { .. } => TransportFailure::BodyTooLarge,
            TransportError::Io { request_may_have_been_sent: false, .. } => TransportFailure::ResetBeforeSend,
            TransportError::Io { .. } => TransportFailure::ResetAfterSend,
            TransportError::Protocol { .. } => TransportFailure::Malformed,
        }
    }

    /// Returns whether the failure is transient, so that trying again may succeed (the core's verdict on
    /// [`failure`](Self::failure)).
    ///
    /// This says nothing about safety: an operation that is not idempotent may only be retried when
    /// [`TransportError::request_may_have_been_sent`] is false as well.
    pub fn is_retryable(&self) -> bool {
        self.failure().is_retryable()
    }

    /// Returns whether the server may have received (and acted on) the request.
    pub fn request_may_have_been_sent(&self) -> bool {
        match self {
            TransportError::InvalidRequest { .. }
            | TransportError::Connect { .. }
            | TransportError::TlsHandshake { .. } => false,
            TransportError::Tls { request_may_have_been_sent, .. }
            | TransportError::Io { request_may_have_been_sent, .. } => *request_may_have_been_sent,
            TransportError::Timeout { phase, .. } => *phase != TimeoutPhase::Connect,
            TransportError::BodyTooLarge { .. } | TransportError::Protocol { .. } => true,
        }
    }
}

/// Sends requests over a shared connection pool; cloning is cheap and clones share the pool.
#[derive(Clone)]
pub struct Transport {
    client: Client<ConnectWithin, Full<Bytes>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body_bytes: usize,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the transport; this fails only if the TLS settings are unusable.
    pub fn new(config: TransportConfig) -> Result<Transport, TlsError> {
        let tls = config.tls.client_config()?;
        let mut http = HttpConnector::new();
        // The https connector decides on the scheme; the inner connector must accept https URIs too.
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let https =
            HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
        // The connect timeout covers the TLS handshake too: a server that accepts and never finishes the handshake
        // is a connection that was never made, not a request that may have been sent.
        let connector = ConnectWithin { inner: https, timeout: config.connect_timeout };
        // Without a timer the pool never evicts idle connections, and a server that closes them first leaves
        // stale ones behind.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        Ok(Transport {
            client,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Sends one request and reads the whole response.
    ///
    /// The request timeout covers connecting, sending, and reading headers and body. A response whose
    /// `Content-Length` exceeds the body limit is rejected before its body is read. Redirects are returned as
    /// they are, never followed.
    pub async fn send(&self, req: Request<Vec<u8>>) -> Result<Response<Bytes>, TransportError> {
        match self.send_before(req, None, true).await {
            Exchange::Done(result) => result,
            // Without a caller's deadline only the transport's own can end the exchange.
            Exchange::CallerDeadline => {
                Err(TransportError::Timeout { phase: TimeoutPhase::Response, after: self.request_timeout })
            }
        }
    }

    /// [`Transport::send`] under the caller's deadline too, when it comes before the transport's own: one timer
    /// for the whole exchange, instead of one around it and one for each of its two phases (each timer is
    /// registered with the runtime and cancelled again, about 400 instructions a call each). `check` is false
    /// for requests built by `iot-proto` from a checked base URL, which [`check_request`] would only parse again.
    pub(crate) async fn send_before(&self, req: Request<Vec<u8>>, caller: Option<Instant>, check: bool) -> Exchange {
        if check && let Err(e) = check_request(&req) {
            return Exchange::Done(Err(e));
        }
        // One deadline for the whole exchange; an absurdly long timeout simply means no deadline.
        let own = Instant::now().checked_add(self.request_timeout);
        let (deadline, callers) = match (own, caller) {
            (Some(own), Some(caller)) if caller < own => (Some(caller), true),
            (None, Some(caller)) => (Some(caller), true),
            (own, _) => (own, false),
        };
        let timer = deadline.map(tokio::time::sleep_until);
        tokio::pin!(timer);
        let timed_out = |phase| {
            if callers {
                Exchange::CallerDeadline
            } else {
                Exchange::Done(Err(TransportError::Timeout { phase, after: self.request_timeout }))
            }
        };
        let method = req.method().clone();
        let req = req.map(|body| Full::new(Bytes::from(body)));

        let response = match within(timer.as_mut(), self.client.request(req)).await {
            None => return timed_out(TimeoutPhase::Response),
            Some(Err(e)) => return Exchange::Done(Err(self.classify_send_error(e))),
            Some(Ok(response)) => response,
        };

        let (parts, body) = response.into_parts();
        if may_have_body(&method, parts.status)
            && let Some(len) = content_length(&parts.headers)
            && len > self.max_body_bytes as u64
        {
            return Exchange::Done(Err(TransportError::BodyTooLarge {
                limit: self.max_body_bytes,
                content_length: Some(len),
            }));
        }

        let body = match within(timer.as_mut(), Limited::new(body, self.max_body_bytes).collect()).await {
            None => return timed_out(TimeoutPhase::Body),
            Some(Err(e)) => return Exchange::Done(Err(self.classify_body_error(e))),
            Some(Ok(collected)) => collected.to_bytes(),
        };
        Exchange::Done(Ok(Response::from_parts(parts, body)))
    }

    fn classify_send_error(&self, err: hyper_util::client::legacy::Error) -> TransportError {
        let connect = err.is_connect();
        if let Some(tls) = find_in_chain::<rustls::Error>(&err) {
            // A handshake that broke for another reason than a certificate sent nothing and may go better on
            // another connection.
            if connect && !refuses_a_certificate(tls) {
                return TransportError::TlsHandshake { source: tls.clone() };
            }
            return TransportError::Tls { request_may_have_been_sent: !connect, source: tls.clone() };
        }
        if connect {
            let timed_out = find_in_chain::<io::Error>(&err).is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
            if timed_out {
                return TransportError::Timeout { phase: TimeoutPhase::Connect, after: self.connect_timeout };
            }
            return TransportError::Connect { source: Box::new(err) };
        }
        let hyper_error = find_in_chain::<hyper::Error>(&err);
        if hyper_error.is_some_and(is_parse_error) || is_bad_framing(&err) {
            return TransportError::Protocol { source: Box::new(err) };
        }
        // hyper reports a request that never reached the connection as canceled; anything else may have been
        // written, at least in part.
        let canceled = hyper_error.is_some_and(hyper::Error::is_canceled);
        TransportError::Io { request_may_have_been_sent: !canceled, source: Box::new(err) }
    }

    fn classify_body_error(&self, err: BoxError) -> TransportError {
        if err.downcast_ref::<LengthLimitError>().is_some() {
            return TransportError::BodyTooLarge { limit: self.max_body_bytes, content_length: None };
        }
        if let Some(tls) = find_in_chain::<rustls::Error>(&*err) {
            return TransportError::Tls { request_may_have_been_sent: true, source: tls.clone() };
        }
        if find_in_chain::<hyper::Error>(&*err).is_some_and(is_parse_error) || is_bad_framing(&*err) {
            return TransportError::Protocol { source: err };
        }
        TransportError::Io { request_may_have_been_sent: true, source: err }
    }
}

/// Rejects requests the client cannot send, before anything touches the network.
fn check_request<B>(req: &Request<B>) -> Result<(), TransportError> {
    let uri = req.uri();
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => {
            return Err(TransportError::InvalidRequest { reason: "uri scheme must be http or https" });
        }
        None => {
            return Err(TransportError::InvalidRequest { reason: "uri has no scheme" });
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::InvalidRequest { reason: "uri has no host" });
    }
    if req.version() != Version::HTTP_11 && req.version() != Version::HTTP_10 {
        return Err(TransportError::InvalidRequest { reason: "only http/1.0 and http/1.1 are supported" });
    }
    Ok(())
}

/// Runs `future` until `timer` fires (never, without a timer); `None` means the timer fired first. The future
/// is polled first, as `tokio::time::timeout` does, so an answer that is ready wins over a deadline that passed.
async fn within<F: Future>(mut timer: Pin<&mut Option<tokio::time::Sleep>>, future: F) -> Option<F::Output> {
    tokio::pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        match timer.as_mut().as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

/// How an exchange under a caller's deadline ended.
pub(crate) enum Exchange {
    /// The transport's answer or failure (its own timeout included).
    Done(Result<Response<Bytes>, TransportError>),
    /// The caller's deadline passed first.
    CallerDeadline,
}

/// Whether a response to `method` with `status` carries a body whose length `Content-Length` announces.
fn may_have_body(method: &Method, status: StatusCode) -> bool {
    // A HEAD response and 204/304 announce the length of a body they do not carry.
    *method != Method::HEAD && status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn is_parse_error(err: &hyper::Error) -> bool {
    err.is_parse() || err.is_parse_status() || err.is_parse_too_large()
}

/// Whether hyper refused the framing of a body (a bad chunk size line, an oversized chunk extension): it
/// reports that while the body is read, as an `io::Error` of kind `InvalidInput` or `InvalidData` inside its
/// body error, not as a parse error. The answer is malformed; the connection did not break (a body cut short
/// is `UnexpectedEof`, which stays a broken connection).
fn is_bad_framing(err: &(dyn StdError + 'static)) -> bool {
    find_in_chain::<hyper::Error>(err).is_some()
        && find_in_chain::<io::Error>(err)
            .is_some_and(|io| matches!(io.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData))
}

/// Whether a TLS failure is a refused certificate (ours or the server's): the only TLS failures that trying
/// again cannot mend.
fn refuses_a_certificate(err: &rustls::Error) -> bool {
    use rustls::AlertDescription as A;
    match err {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired
        ),
        _ => false,
    }
}

/// The https connector under one timeout for the TCP connect and the TLS handshake together.
#[derive(Clone, Debug)]
struct ConnectWithin {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl tower_service::Service<http::Uri> for ConnectWithin {
    type Response = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                // Reported as the TCP connector reports its own timeout, so both read as a connect timeout.
                Err(_) => Err(Box::new(io::Error::new(io::ErrorKind::TimedOut, "connect and tls handshake timed out"))
                    as BoxError),
            }
        })
    }
}

/// Finds the first error of type `T` in the cause chain of `err`, including `err` itself.
///
/// `io::Error::source` skips the error it wraps and returns that error's source instead, and rustls errors
/// travel wrapped in `io::Error`s, so the walk also looks inside every `io::Error` it meets.
fn find_in_chain<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    for _ in 0..MAX_CHAIN_DEPTH {
        let e = current?;
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        let inner =
            e.downcast_ref::<io::Error>().and_then(io::Error::get_ref).map(|inner| inner as &(dyn StdError + 'static));
        current = inner.or_else(|| e.source());
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn finds_errors_wrapped_in_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = io::Error::new(io::ErrorKind::InvalidData, tls);
        let outer = io::Error::other(inner);
        // std's io::Error::source skips the wrapped error, which is why the walk needs get_ref.
        assert!(outer.source().is_none());
        let found = find_in_chain::<rustls::Error>(&outer).unwrap();
        assert!(matches!(found, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)));
        assert!(find_in_chain::<hyper::Error>(&outer).is_none());
    }

    #[test]
    fn invalid_requests_are_rejected_before_sending() {
        let cases =
            [("/relative/path", "uri has no scheme"), ("ftp://example.com/", "uri scheme must be http or https")];
        for (uri, reason) in cases {
            let req = Request::get(uri).body(Vec::<u8>::new()).unwrap();
            let err = check_request(&req).unwrap_err();
            assert!(matches!(err, TransportError::InvalidRequest { reason: r } if r == reason), "{uri}: {err:?}");
            assert!(!err.is_retryable());
            assert!(!err.request_may_have_been_sent());
        }
        let req = Request::get("http://example.com/").version(Version::HTTP_2).body(Vec::<u8>::new()).unwrap();
        assert!(check_request(&req).is_err());
        let req = Request::get("https://example.com/x?y=1").body(Vec::<u8>::new()).unwrap();
        assert!(check_request(&req).is_ok());
    }

    #[test]
    fn classification_table() {
        let boxed = || -> BoxError { Box::new(io::Error::other("x")) };
        let tls = || rustls::Error::General("x".to_owned());
        let rows: Vec<(TransportError, bool, bool)> = vec![
            (TransportError::Connect { source: boxed() }, true, false),
            (TransportError::Tls { request_may_have_been_sent: false, source: tls() }, false, false),
            (TransportError::Tls { request_may_have_been_sent: true, source: tls() }, false, true),
            (TransportError::Timeout { phase: TimeoutPhase::Connect, after: Duration::from_secs(1) }, true, false),
            (TransportError::Timeout { phase: TimeoutPhase::Response, after: Duration::from_secs(1) }, true, true),
            (TransportError::BodyTooLarge { limit: 1, content_length: None }, false, true),
            (TransportError::Io { request_may_have_been_sent: false, source: boxed() }, true, false),
            (TransportError::Protocol { source: boxed() }, false, true),
        ];
        for (err, retryable, sent) in rows {
            assert_eq!(err.is_retryable(), retryable, "{err:?}");
            assert_eq!(err.request_may_have_been_sent(), sent, "{err:?}");
            let shown = err.to_string();
            assert_eq!(shown, shown.to_lowercase(), "{shown}");
            assert!(!shown.ends_with('.'), "{shown}");
        }
    }

    #[test]
    fn builder_methods_set_every_setting() {
        let tls = TlsOptions::default();
        let config = TransportConfig::default()
            .with_connect_timeout(Duration::from_millis(1_500))
            .with_request_timeout(Duration::from_secs(7))
            .with_pool_idle_timeout(Duration::from_millis(50))
            .with_max_body_bytes(4096)
            .with_tls_options(tls.clone());
        assert_eq!(config.connect_timeout, Duration::from_millis(1_500));
        assert_eq!(config.request_timeout, Duration::from_secs(7));
        assert_eq!(config.pool_idle_timeout, Duration::from_millis(50));
        assert_eq!(config.max_body_bytes, 4096);
        assert_eq!(format!("{:?}", config.tls), format!("{tls:?}"));
        // Untouched settings keep their defaults.
        let defaults = TransportConfig::default();
        let only_body = TransportConfig::default().with_max_body_bytes(1);
        assert_eq!(only_body.connect_timeout, defaults.connect_timeout);
        assert_eq!(only_body.request_timeout, defaults.request_timeout);
        assert_eq!(only_body.pool_idle_timeout, defaults.pool_idle_timeout);
    }

    #[test]
    fn content_length_is_only_trusted_when_a_body_follows() {
        assert!(may_have_body(&Method::GET, StatusCode::OK));
        assert!(!may_have_body(&Method::HEAD, StatusCode::OK));
        assert!(!may_have_body(&Method::GET, StatusCode::NOT_MODIFIED));
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, " 42 ".parse().unwrap());
        assert_eq!(content_length(&headers), Some(42));
        headers.insert(http::header::CONTENT_LENGTH, "x".parse().unwrap());
        assert_eq!(content_length(&headers), None);
    }
}
