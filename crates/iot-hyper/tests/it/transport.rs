//! Transport-level tests against iot-sim's server with small closure handlers and against raw TCP listeners.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use iot_hyper::tls::{Identity, Roots, TlsOptions};
use iot_hyper::transport::{TimeoutPhase, Transport, TransportConfig, TransportError};
use iot_sim::pki::TestPki;
use iot_sim::server::{self, Handler, RunningServer, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Every test body must finish well within this; a hang fails the test instead of blocking the suite.
const TEST_LIMIT: Duration = Duration::from_secs(15);

const MIB: usize = 1024 * 1024;

// Compile-time checks: the transport can be shared across tasks and its futures can be spawned.
const _: fn(Transport, Request<Vec<u8>>) = |transport, req| {
    fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn sendable<T: Send>(_: &T) {}
    fn error_like<T: std::error::Error + Send + Sync + 'static>() {}
    shareable(&transport);
    sendable(&transport.send(req));
    error_like::<TransportError>();
    error_like::<iot_hyper::tls::TlsError>();
};

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, future).await.expect("test exceeded its time limit")
}

/// What a handler saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    headers: http::HeaderMap,
    body: Bytes,
}

/// A handler that records every request and answers with `respond`.
fn recording(
    respond: impl Fn(&Request<Bytes>) -> Response<Vec<u8>> + Send + Sync + 'static,
) -> (Handler, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handler: Handler = Arc::new(move |req: Request<Bytes>| {
        let response = respond(&req);
        log.lock().unwrap().push(Seen {
            method: req.method().clone(),
            path_and_query: req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            headers: req.headers().clone(),
            body: req.body().clone(),
        });
        response
    });
    (handler, seen)
}

fn ok_handler() -> (Handler, Arc<Mutex<Vec<Seen>>>) {
    recording(|_| Response::new(b"ok".to_vec()))
}

fn get(url: &str) -> Request<Vec<u8>> {
    Request::get(url).body(Vec::new()).unwrap()
}

fn transport(tls: TlsOptions) -> Transport {
    Transport::new(TransportConfig::with_tls(tls)).unwrap()
}

fn custom_ca(pem: &str) -> TlsOptions {
    TlsOptions::new(Roots::custom_ca_pem(pem.as_bytes()).unwrap())
}

async fn tls_server(pki: &TestPki, handler: Handler) -> RunningServer {
    let mode = TlsMode::Tls {
        cert_chain_pem: pki.server().cert_chain_pem().to_owned(),
        key_pem: pki.server().key_pem().to_owned(),
    };
    server::start(ServerConfig::with_tls(mode), handler).await.unwrap()
}

async fn mtls_server(pki: &TestPki, handler: Handler) -> RunningServer {
    let mode = TlsMode::MutualTls {
        cert_chain_pem: pki.server().cert_chain_pem().to_owned(),
        key_pem: pki.server().key_pem().to_owned(),
        client_ca_pem: pki.ca_cert_pem().to_owned(),
    };
    server::start(ServerConfig::with_tls(mode), handler).await.unwrap()
}

fn assert_tls_error(result: Result<Response<Bytes>, TransportError>) -> rustls::Error {
    match result {
        Err(TransportError::Tls { source, .. }) => source,
        other => panic!("expected a tls error, got {other:?}"),
    }
}

/// A raw TCP server that answers each connection with a fixed script; dropping it stops it and its connections.
struct RawServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a raw server treats a connection once it has read the request head.
#[derive(Clone, Copy)]
enum Script {
    /// Never answer, keep the connection open.
    Silent,
    /// Send these bytes, then keep the connection open without sending more.
    SendThenStall(&'static [u8]),
    /// Send a chunked 200 response whose body has this many bytes.
    Chunked(usize),
}

async fn raw_server(script: Script) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        // Owned by this task, so aborting the task closes every connection.
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(run_script(stream, script));
        }
    });
    RawServer { addr, task }
}

async fn run_script(mut stream: TcpStream, script: Script) {
    let mut buf = vec![0u8; 16 * 1024];
    // The requests in these tests are small GETs that arrive in one read.
    let _ = stream.read(&mut buf).await;
    match script {
        Script::Silent => {}
        Script::SendThenStall(bytes) => {
            let _ = stream.write_all(bytes).await;
        }
        Script::Chunked(total) => {
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                let mut framed = format!("{n:x}\r\n").into_bytes();
                framed.extend_from_slice(&chunk[..n]);
                framed.extend_from_slice(b"\r\n");
                // The client hangs up once it has seen enough; that ends the script.
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
                sent += n;
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    }
    // Hold the connection open until the server is dropped.
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn plain_http_round_trip_preserves_the_request() {
    bounded(async {
        let (handler, seen) = recording(|req| {
            Response::builder()
                .status(StatusCode::CREATED)
                .header("x-reply", "yes")
                .body(format!("got {} bytes", req.body().len()).into_bytes())
                .unwrap()
        });
        let server = server::start(ServerConfig::default(), handler).await.unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));

        let body = vec![0u8, 1, 2, 0xff, b'{', b'}'];
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("{}/iocm/app/dm/v1.4.0/devices/a%20b?appId=x%2Fy&pageNo=0", server.base_url()))
            .header("content-type", "application/json")
            .header("x-custom", "value-1")
            .header("x-custom", "value-2")
            .body(body.clone())
            .unwrap();
        let response = transport(TlsOptions::default()).send(req).await.unwrap();

        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["x-reply"], "yes");
        assert_eq!(&response.body()[..], b"got 6 bytes");

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.method, Method::PUT);
        assert_eq!(req.path_and_query, "/iocm/app/dm/v1.4.0/devices/a%20b?appId=x%2Fy&pageNo=0");
        assert_eq!(req.headers["content-type"], "application/json");
        let custom: Vec<_> = req.headers.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["value-1", "value-2"]);
        assert_eq!(req.headers["host"], server.base_url().trim_start_matches("http://"));
        assert_eq!(req.body, Bytes::from(body));

        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn https_with_custom_ca_succeeds() {
    bounded(async {
        let pki = TestPki::generate().unwrap();
        let (handler, seen) = ok_handler();
        let server = tls_server(&pki, handler).await;
        assert!(server.base_url().starts_with("https://localhost:"));

        let transport = transport(custom_ca(pki.ca_cert_pem()));
        for _ in 0..2 {
            let response = transport.send(get(&format!("{}/hello", server.base_url()))).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(&response.body()[..], b"ok");
        }
        assert_eq!(seen.lock().unwrap().len(), 2);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn https_with_platform_roots_rejects_the_test_ca() {
    bounded(async {
        let pki = TestPki::generate().unwrap();
        let (handler, seen) = ok_handler();
        let server = tls_server(&pki, handler).await;

        let result = transport(TlsOptions::new(Roots::Platform)).send(get(server.base_url())).await;
        let err = result.as_ref().map(|_| ()).unwrap_err();
        assert!(!err.request_may_have_been_sent());
        assert!(!err.is_retryable());
        let source = assert_tls_error(result);
        assert!(
            matches!(source, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
            "{source:?}"
        );
        assert!(seen.lock().unwrap().is_empty());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn https_with_another_issuers_ca_fails() {
    bounded(async {
        let pki = TestPki::generate().unwrap();
        let (handler, seen) = ok_handler();
        let server = tls_server(&pki, handler).await;

        let result = transport(custom_ca(pki.foreign_ca().cert_pem())).send(get(server.base_url())).await;
        let source = assert_tls_error(result);
        assert!(
            matches!(source, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
            "{source:?}"
        );
        assert!(seen.lock().unwrap().is_empty());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_trusted_ca() {
    bounded(async {
        let pki = TestPki::generate().unwrap();
        let (handler, seen) = ok_handler();
        let server = mtls_server(&pki, handler).await;
        let url = format!("{}/devices", server.base_url());

        let identity =
            Identity::from_pem(pki.client().cert_chain_pem().as_bytes(), pki.client().key_pem().as_bytes()).unwrap();
        let with_cert = transport(custom_ca(pki.ca_cert_pem()).with_identity(identity));
        let response = with_cert.send(get(&url)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.lock().unwrap().len(), 1);

        let without_cert = transport(custom_ca(pki.ca_cert_pem()));
        let source = assert_tls_error(without_cert.send(get(&url)).await);
        assert!(
            matches!(source, rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)),
            "{source:?}"
        );

        let foreign = Identity::from_pem(
            pki.foreign_client().cert_chain_pem().as_bytes(),
            pki.foreign_client().key_pem().as_bytes(),
        )
        .unwrap();
        let with_foreign = transport(custom_ca(pki.ca_cert_pem()).with_identity(foreign));
        let source = assert_tls_error(with_foreign.send(get(&url)).await);
        assert!(matches!(source, rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)), "{source:?}");

        // Only the request with the trusted certificate reached the handler.
        assert_eq!(seen.lock().unwrap().len(), 1);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn request_timeout_fires_when_the_server_never_answers() {
    bounded(async {
        let silent = raw_server(Script::Silent).await;
        let mut config = TransportConfig::default();
        config.request_timeout = Duration::from_millis(200);
        let transport = Transport::new(config).unwrap();

        let req = Request::get(format!("http://{}/slow", silent.addr))
            .header("authorization", "Bearer SENTINEL-TOKEN")
            .body(Vec::new())
            .unwrap();
        let started = Instant::now();
        let err = transport.send(req).await.unwrap_err();
        let elapsed = started.elapsed();

        assert!(
            matches!(
                err,
                TransportError::Timeout {
                    phase: TimeoutPhase::Response,
                    after
                } if after == Duration::from_millis(200)
            ),
            "{err:?}"
        );
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert!(err.is_retryable());
        assert!(err.request_may_have_been_sent());
        assert!(!format!("{err:?} {err}").contains("SENTINEL"));
    })
    .await;
}

#[tokio::test]
async fn large_bodies_are_refused() {
    bounded(async {
        let mut config = TransportConfig::default();
        config.max_body_bytes = MIB;
        let transport = Transport::new(config).unwrap();

        // A 10 MiB body from the simulator's server, which announces its length.
        let (handler, _seen) = recording(|_| Response::new(vec![b'x'; 10 * MIB]));
        let server = server::start(ServerConfig::default(), handler).await.unwrap();
        let err = transport.send(get(server.base_url())).await.unwrap_err();
        assert!(matches!(err, TransportError::BodyTooLarge { limit, .. } if limit == MIB), "{err:?}");
        assert!(!err.is_retryable());
        server.shutdown().await;

        // A 10 MiB chunked body has no announced length: the cap stops the read.
        let chunked = raw_server(Script::Chunked(10 * MIB)).await;
        let err = transport.send(get(&format!("http://{}/", chunked.addr))).await.unwrap_err();
        assert!(
            matches!(
                err,
                TransportError::BodyTooLarge {
                    limit,
                    content_length: None
                } if limit == MIB
            ),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn oversized_content_length_is_rejected_before_reading() {
    bounded(async {
        // The server announces 10 MiB, sends three bytes and stalls: reading the body would hit the timeout.
        let stalling =
            raw_server(Script::SendThenStall(b"HTTP/1.1 200 OK\r\ncontent-length: 10485760\r\n\r\nabc")).await;
        let mut config = TransportConfig::default();
        config.max_body_bytes = MIB;
        config.request_timeout = Duration::from_secs(5);
        let transport = Transport::new(config).unwrap();

        let started = Instant::now();
        let err = transport.send(get(&format!("http://{}/", stalling.addr))).await.unwrap_err();
        assert!(
            matches!(
                err,
                TransportError::BodyTooLarge {
                    limit,
                    content_length: Some(10_485_760)
                } if limit == MIB
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await;
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    bounded(async {
        let (target_handler, target_seen) = ok_handler();
        let target = server::start(ServerConfig::default(), target_handler).await.unwrap();
        let location = format!("{}/stolen", target.base_url());
        let (redirect_handler, redirect_seen) = recording(move |_| {
            Response::builder()
                .status(StatusCode::FOUND)
                .header("location", location.as_str())
                .body(Vec::new())
                .unwrap()
        });
        let redirecting = server::start(ServerConfig::default(), redirect_handler).await.unwrap();

        let req = Request::get(format!("{}/login", redirecting.base_url()))
            .header("app_key", "SENTINEL-APP")
            .header("authorization", "Bearer SENTINEL-TOKEN")
            .body(Vec::new())
            .unwrap();
        let response = transport(TlsOptions::default()).send(req).await.unwrap();

        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()["location"], format!("{}/stolen", target.base_url()).as_str());
        assert_eq!(redirect_seen.lock().unwrap().len(), 1);
        assert!(target_seen.lock().unwrap().is_empty());

        redirecting.shutdown().await;
        target.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn closed_port_gives_a_connect_error() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let err = transport(TlsOptions::default()).send(get(&format!("http://{addr}/"))).await.unwrap_err();
        assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(!err.request_may_have_been_sent());
        assert!(std::error::Error::source(&err).is_some());
    })
    .await;
}

#[tokio::test]
async fn requests_without_a_host_are_invalid() {
    bounded(async {
        let err = transport(TlsOptions::default()).send(get("/relative")).await.unwrap_err();
        assert!(matches!(err, TransportError::InvalidRequest { .. }), "{err:?}");
        assert!(!err.request_may_have_been_sent());
    })
    .await;
}
