//! A thin hyper 1 server on tokio that hands every request, body collected, to a synchronous handler.
//!
//! It speaks HTTP/1.1 over plain TCP, TLS, or mutual TLS (rustls with the ring provider chosen explicitly).
//! Every task it starts is owned by a [`RunningServer`]: dropping it or calling [`RunningServer::shutdown`] stops the
//! accept loop and every connection, so nothing outlives a test.
//!
//! # Holding under attack
//!
//! A client that is slow or hostile cannot pin the server's memory or its connections for long:
//! - a request's head must arrive within [`Limits::request_timeout`] (an idle keep-alive connection waits
//!   that long for the next head, then is closed); its body must arrive within [`Limits::body_read_timeout`]
//!   and its body and answer within `request_timeout`, else it is answered 408 and its connection closed;
//! - a [`Gate`] sees each request's head before any of its body is read, and may answer at once (for example
//!   a call without valid credentials) or lower the body's size cap (for example for a login);
//! - at most [`Limits::max_connections`] connections are served at once; the ones beyond are closed as soon
//!   as they are accepted;
//! - the bodies being read by all requests together hold at most [`Limits::max_buffered_bytes`] bytes:
//!   a request reserves its body's size (its `content-length`, or its cap when the length is not declared)
//!   before reading it, and a request that does not fit is answered 503 at once.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The request handler: a synchronous function from a request with its whole body to a response.
pub type Handler = Arc<dyn Fn(Request<Bytes>) -> Response<Vec<u8>> + Send + Sync>;

/// Looks at a request's head before any of its body is read, and decides what happens to it.
pub type Gate = Arc<dyn Fn(&http::request::Parts) -> Admission + Send + Sync>;

/// What a [`Gate`] decides from a request's head.
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission {
    /// Read the body: under [`Limits::max_request_body`] with `None`, under the smaller of the two with
    /// `Some(cap)`.
    Read(Option<usize>),
    /// Send this answer without reading the body; when the request announced a body, the connection is closed
    /// after it, since the unread body cannot be skipped cheaply.
    Answer(Response<Vec<u8>>),
}

/// The default of [`Limits::max_request_body`]: 1 MiB, far above any body the contract describes (an
/// upgrade task of 256 device ids of 256 characters is about 70 KiB).
pub const DEFAULT_MAX_REQUEST_BODY: usize = 1024 * 1024;

/// The default of [`Limits::body_read_timeout`]: 10 s, enough for a 1 MiB body at 1 Mbit/s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of [`Limits::request_timeout`]: 30 s, hyper's own default for reading a request's head.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`Limits::max_connections`]: 256, far more than a test suite or a few SDK clients open
/// (their pools keep a handful each), and few enough that idle sockets cannot exhaust the process's descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The default of [`Limits::max_buffered_bytes`]: 64 MiB, room for 64 requests with bodies of the default
/// maximum at once, while a crowd of clients can hold no more than that.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// How long a client may take to complete the TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to keep reading after a failed handshake so that the peer receives the alert instead of a reset.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The most bytes read while draining a connection whose handshake failed.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Errors from starting the server or generating test certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound or inspected.
    #[error("could not bind the listening socket")]
    Bind(#[source] io::Error),
    /// A certificate PEM could not be parsed or contained no certificate.
    #[error("invalid certificate pem for the {what}")]
    CertificatePem {
        /// Which input was wrong: `server certificate chain` or `client ca`.
        what: &'static str,
    },
    /// The private key PEM could not be parsed; the parser's message is dropped because it may quote key material.
    #[error("invalid private key pem")]
    KeyPem,
    /// rustls rejected the configuration (for example a key that does not match the certificate).
    #[error("invalid tls configuration")]
    Tls(#[source] rustls::Error),
    /// The client certificate verifier could not be built from the client CA.
    #[error("invalid client ca")]
    ClientCa(#[source] rustls::server::VerifierBuilderError),
    /// rcgen could not generate a test certificate.
    #[error("could not generate a test certificate")]
    Pki(#[source] rcgen::Error),
}

/// Which transport security the server uses.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain HTTP over TCP.
    #[default]
    Plain,
    /// HTTPS with a server certificate; clients are not asked for one.
    Tls {
        /// The server certificate chain, leaf first, as PEM.
        cert_chain_pem: String,
        /// The server private key as PEM.
        key_pem: String,
    },
    /// HTTPS that requires a client certificate issued by `client_ca_pem`; other clients fail the handshake.
    MutualTls {
        /// The server certificate chain, leaf first, as PEM.
        cert_chain_pem: String,
        /// The server private key as PEM.
        key_pem: String,
        /// The CA certificates that client certificates must chain to, as PEM.
        client_ca_pem: String,
    },
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::Plain => f.write_str("Plain"),
            TlsMode::Tls { .. } => f.debug_struct("Tls").field("key_pem", &"[redacted]").finish(),
            TlsMode::MutualTls { .. } => f.debug_struct("MutualTls").field("key_pem", &"[redacted]").finish(),
        }
    }
}

/// Server settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address to listen on; the default is `127.0.0.1:0` (a free loopback port).
    pub addr: SocketAddr,
    /// Plain, TLS or mutual TLS.
    pub tls: TlsMode,
    /// How much a client may take: body sizes, deadlines, connections, buffered bytes.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: TlsMode::Plain,
            limits: Limits::default(),
        }
    }
}

/// How much the server lets clients take; see the module documentation for how each is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest request body accepted; larger bodies are answered with 413 ([`DEFAULT_MAX_REQUEST_BODY`]).
    pub max_request_body: usize,
    /// How long reading one request's body may take once its head has arrived; a body still incomplete then is
    /// answered 408 and the connection closed ([`DEFAULT_BODY_READ_TIMEOUT`]).
    pub body_read_timeout: Duration,
    /// How long a request's head may take to arrive (which also bounds an idle keep-alive connection), and
    /// how long its body and answer may take together; 408 and a closed connection after
    /// ([`DEFAULT_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// The most connections served at once; a connection beyond it is closed as soon as it is accepted
    /// ([`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// The most request-body bytes buffered by all requests in flight together; a request whose body does not
    /// fit is answered 503 without reading it ([`DEFAULT_MAX_BUFFERED_BYTES`]).
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
        }
    }
}

impl Limits {
    /// Sets the largest request body.
    pub fn with_max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// Sets the deadline for reading one request's body.
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Sets the deadline for a request's head, and for its body and answer.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the most connections served at once.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets the most body bytes buffered by all requests in flight.
    pub fn with_max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }
}

impl ServerConfig {
    /// Returns the default configuration with the given security mode.
    pub fn with_tls(tls: TlsMode) -> Self {
        ServerConfig { tls, ..ServerConfig::default() }
    }
}

/// A server that is accepting connections; dropping it stops the server.
pub struct RunningServer {
    base_url: String,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer").field("base_url", &self.base_url).finish()
    }
}

impl RunningServer {
    /// Returns the URL to reach the server, without a trailing slash.
    ///
    /// It is `http://127.0.0.1:PORT` for plain HTTP and `https://localhost:PORT` with TLS, so that hostname checks
    /// pass against the certificate from [`crate::pki::TestPki`].
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns the address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, aborts every open connection and waits until the accept loop has ended.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The loop may already have ended; then there is nobody to tell.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // A join error means the task was aborted or panicked; either way it is gone.
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds the listener and starts serving `handler` in the background; every request's body is read.
pub async fn start(config: ServerConfig, handler: Handler) -> Result<RunningServer, ServerError> {
    start_gated(config, Arc::new(|_: &http::request::Parts| Admission::Read(None)), handler).await
}

/// Binds the listener and starts serving in the background: `gate` sees each request's head first and decides
/// whether its body is read, then `handler` answers it.
pub async fn start_gated(config: ServerConfig, gate: Gate, handler: Handler) -> Result<RunningServer, ServerError> {
    let acceptor = match &config.tls {
        TlsMode::Plain => None,
        TlsMode::Tls { cert_chain_pem, key_pem } => Some(tls_acceptor(cert_chain_pem, key_pem, None)?),
        TlsMode::MutualTls { cert_chain_pem, key_pem, client_ca_pem } => {
            Some(tls_acceptor(cert_chain_pem, key_pem, Some(client_ca_pem))?)
        }
    };
    let listener = TcpListener::bind(config.addr).await.map_err(ServerError::Bind)?;
    let local_addr = listener.local_addr().map_err(ServerError::Bind)?;
    let base_url = if acceptor.is_some() {
        format!("https://localhost:{}", local_addr.port())
    } else {
        format!("http://{}", reachable(local_addr))
    };
    let (stop, stopped) = oneshot::channel();
    let limits = config.limits;
    let shared = Arc::new(Shared {
        handler,
        gate,
        max_request_body: limits.max_request_body,
        body_read_timeout: limits.body_read_timeout,
        request_timeout: limits.request_timeout,
        connections: Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS))),
        buffered: Arc::new(Semaphore::new(limits.max_buffered_bytes.min(Semaphore::MAX_PERMITS))),
    });
    let task = tokio::spawn(accept_loop(listener, acceptor, shared, stopped));
    Ok(RunningServer { base_url, local_addr, stop: Some(stop), task: Some(task) })
}

struct Shared {
    handler: Handler,
    gate: Gate,
    max_request_body: usize,
    body_read_timeout: Duration,
    request_timeout: Duration,
    /// One permit per connection being served.
    connections: Arc<Semaphore>,
    /// One permit per body byte that requests in flight may buffer.
    buffered: Arc<Semaphore>,
}

/// Replaces a wildcard bind address by the loopback address of the same family, which a client can dial.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port()),
        _ => addr,
    }
}

fn tls_acceptor(cert_chain_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Result<TlsAcceptor, ServerError> {
    let chain = parse_certs(cert_chain_pem, "server certificate chain")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| ServerError::KeyPem)?;
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ServerError::Tls)?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca_pem) => {
            let mut roots = RootCertStore::empty();
            for cert in parse_certs(ca_pem, "client ca")? {
                roots.add(cert).map_err(ServerError::Tls)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(ServerError::ClientCa)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server_config = builder.with_single_cert(chain, key).map_err(ServerError::Tls)?;
    // Only HTTP/1.1 is served; advertising it lets clients that offer ALPN agree on it.
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

fn parse_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ServerError::CertificatePem { what })?;
    if certs.is_empty() {
        return Err(ServerError::CertificatePem { what });
    }
    Ok(certs)
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    // Owning the connection tasks here means that ending or aborting this loop aborts all of them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Accept errors (such as running out of file descriptors) are usually transient; pausing
                    // briefly avoids spinning on them.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Over the limit the connection is dropped at once: the client sees it closed instead of waiting in
                // the backlog, and the server spends nothing on it.
                let Ok(permit) = shared.connections.clone().try_acquire_owned() else { continue };
                let _ = stream.set_nodelay(true);
                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                connections.spawn(async move {
                    serve_connection(stream, acceptor, shared).await;
                    drop(permit);
                });
            }
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    match acceptor {
        None => serve_http(TokioIo::new(stream), shared).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream).into_fallible()).await;
            match handshake {
                Ok(Ok(tls)) => serve_http(TokioIo::new(tls), shared).await,
                Ok(Err((_error, stream))) => drain(stream).await,
                Err(_elapsed) => {}
            }
        }
    }
}

/// Half-closes a connection whose handshake failed and reads what the peer still sends.
///
/// rustls has already written its alert. Closing a socket that still has unread input makes the kernel send a
/// reset, which can overtake the alert; reading until the peer closes lets the client see why it was refused.
async fn drain(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while total < DRAIN_LIMIT {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

async fn serve_http<I>(io: I, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let request_timeout = shared.request_timeout;
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move {
            let answer = match tokio::time::timeout(shared.request_timeout, handle(req, &shared)).await {
                Ok(answer) => answer,
                Err(_elapsed) => closing(StatusCode::REQUEST_TIMEOUT),
            };
            Ok::<_, Infallible>(answer)
        }
    });
    // Connection errors (the peer vanished, a malformed request, a head that came too late) end only this
    // connection.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .serve_connection(io, service)
        .await;
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // The gate runs before a single body byte is read, so a refused caller costs no buffer and no wait.
    let gate = std::panic::catch_unwind(AssertUnwindSafe(|| (shared.gate)(&parts)));
    let cap = match gate {
        Ok(Admission::Read(cap)) => cap.map_or(shared.max_request_body, |c| c.min(shared.max_request_body)),
        Ok(Admission::Answer(answer)) => {
            let answer = answer.map(|b| Full::new(Bytes::from(b)));
            return if has_body(&parts) { close_after(answer) } else { answer };
        }
        Err(_) => return closing(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap as u64) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE);
    }
    // Reserve the body's bytes in the shared budget before reading any: its declared length, or its cap when
    // it is sent chunked. The permit lives until the answer is built, as long as the bytes are held.
    let reserve = declared.map_or(cap, |len| len as usize);
    let _budget = match reserve_bytes(&shared.buffered, reserve) {
        Some(permit) => permit,
        None => return closing(StatusCode::SERVICE_UNAVAILABLE),
    };
    let read = tokio::time::timeout(shared.body_read_timeout, Limited::new(body, cap).collect()).await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return closing(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Ok(Err(_)) => return closing(StatusCode::BAD_REQUEST),
        Err(_elapsed) => return closing(StatusCode::REQUEST_TIMEOUT),
    };
    let req = Request::from_parts(parts, body);
    // A panicking handler answers 500 instead of silently killing the connection.
    match std::panic::catch_unwind(AssertUnwindSafe(|| (shared.handler)(req))) {
        Ok(response) => response.map(|b| Full::new(Bytes::from(b))),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Whether a request announces a body (a non-zero `content-length`, or any `transfer-encoding`).
fn has_body(parts: &http::request::Parts) -> bool {
    let length = parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    parts.headers.contains_key(http::header::TRANSFER_ENCODING) || length.is_some_and(|v| v.trim() != "0")
}

/// Takes `bytes` permits from the budget without waiting; `None` when they are not there. A zero-byte body
/// needs no permit. Bodies are capped far below `u32::MAX`, the most one call can take.
fn reserve_bytes(budget: &Arc<Semaphore>, bytes: usize) -> Option<Option<OwnedSemaphorePermit>> {
    if bytes == 0 {
        return Some(None);
    }
    let n = u32::try_from(bytes).ok()?;
    budget.clone().try_acquire_many_owned(n).ok().map(Some)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// An empty answer with `code` that also closes the connection.
fn closing(code: StatusCode) -> Response<Full<Bytes>> {
    close_after(status(code))
}

/// Marks an answer as the connection's last. It is sent before the request's body was read (or after reading
/// it failed), and the unread rest cannot be told apart from a next request, so the connection must end.
fn close_after(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::time::timeout;

    const LIMIT: Duration = Duration::from_secs(5);

    /// Sends one raw HTTP/1.1 request and returns the whole response text; the server closes after answering.
    async fn raw(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    fn echo() -> Handler {
        Arc::new(|req: Request<Bytes>| {
            let text = format!("{} {} {}", req.method(), req.uri(), req.body().len());
            Response::new(text.into_bytes())
        })
    }

    #[tokio::test]
    async fn serves_the_handler_and_caps_the_body() {
        let config = ServerConfig { limits: Limits::default().with_max_request_body(8), ..ServerConfig::default() };
        let server = timeout(LIMIT, start(config, echo())).await.unwrap().unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        let addr = server.local_addr();

        let ok = timeout(
            LIMIT,
            raw(addr, b"POST /a?b=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 3\r\n\r\nabc"),
        )
        .await
        .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("POST /a?b=1 3"), "{ok}");

        let declared = timeout(
            LIMIT,
            raw(addr, b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 9\r\n\r\n123456789"),
        )
        .await
        .unwrap();
        assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");

        let chunked = timeout(
            LIMIT,
            raw(
                addr,
                b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n",
            ),
        )
        .await
        .unwrap();
        assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");

        timeout(LIMIT, server.shutdown()).await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn drop_stops_open_connections() {
        let server = start(ServerConfig::default(), echo()).await.unwrap();
        let addr = server.local_addr();
        // An idle keep-alive connection stays open until the server goes away.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = timeout(LIMIT, idle.read(&mut buf)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

        drop(server);
        // The connection task was aborted, so the socket is closed: EOF or a reset, never a hang.
        let after = timeout(LIMIT, idle.read(&mut buf)).await.unwrap();
        assert!(matches!(after, Ok(0) | Err(_)), "{after:?}");
    }

    #[tokio::test]
    async fn rejects_bad_pem_without_echoing_it() {
        let mode =
            TlsMode::Tls { cert_chain_pem: "not a certificate".to_owned(), key_pem: "SECRET-KEY-MATERIAL".to_owned() };
        assert!(!format!("{mode:?}").contains("SECRET"));
        let err = start(ServerConfig::with_tls(mode), echo()).await.unwrap_err();
        assert!(matches!(err, ServerError::CertificatePem { .. }), "{err:?}");

        let pki = crate::pki::TestPki::generate().unwrap();
        let mode = TlsMode::Tls {
            cert_chain_pem: pki.server().cert_chain_pem().to_owned(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nSECRET!!\n-----END PRIVATE KEY-----\n".to_owned(),
        };
        let err = start(ServerConfig::with_tls(mode), echo()).await.unwrap_err();
        assert!(matches!(err, ServerError::KeyPem), "{err:?}");
        assert!(!format!("{err:?} {err}").contains("SECRET"));
    }
}
