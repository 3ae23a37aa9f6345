//! A thin hyper 1 server on tokio that hands every request, body collected, to a synchronous handler.
//!
//! It speaks HTTP/1.1 over plain TCP, TLS, or mutual TLS (rustls with the ring provider chosen explicitly).
//! Every task it starts is owned by a [`RunningServer`]: dropping it or calling [`RunningServer::shutdown`] stops the
//! accept loop and every connection, so nothing outlives a test.

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
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The request handler: a synchronous function from a request with its whole body to a response.
pub type Handler = Arc<dyn Fn(Request<Bytes>) -> Response<Vec<u8>> + Send + Sync>;

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
    /// The largest request body accepted; larger bodies are answered with 413. The default is 1 MiB.
    pub max_request_body: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: TlsMode::Plain,
            max_request_body: 1024 * 1024,
        }
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

/// Binds the listener and starts serving `handler` in the background.
pub async fn start(config: ServerConfig, handler: Handler) -> Result<RunningServer, ServerError> {
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
    let shared = Arc::new(Shared { handler, max_request_body: config.max_request_body });
    let task = tokio::spawn(accept_loop(listener, acceptor, shared, stopped));
    Ok(RunningServer { base_url, local_addr, stop: Some(stop), task: Some(task) })
}

struct Shared {
    handler: Handler,
    max_request_body: usize,
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
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(stream, acceptor.clone(), shared.clone()));
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
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
    });
    // Connection errors (the peer vanished, a malformed request) end only this connection.
    let _ = hyper::server::conn::http1::Builder::new().timer(TokioTimer::new()).serve_connection(io, service).await;
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > shared.max_request_body as u64) {
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let body = match Limited::new(body, shared.max_request_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let req = Request::from_parts(parts, body);
    // A panicking handler answers 500 instead of silently killing the connection.
    match std::panic::catch_unwind(AssertUnwindSafe(|| (shared.handler)(req))) {
        Ok(response) => response.map(|b| Full::new(Bytes::from(b))),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
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
        let config = ServerConfig { max_request_body: 8, ..ServerConfig::default() };
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
