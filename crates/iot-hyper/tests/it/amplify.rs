//! Issue 8, point 3 at the transport: a malformed answer is not a network blip, a TLS handshake that never
//! completes is a connection never made, and a login never outlives the call's deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Request;
use iot_hyper::transport::{TimeoutPhase, Transport, TransportConfig, TransportError};
use iot_hyper::{Client, Error};
use iot_model::{AppId, AppSecret, CreateUpgradeTask, DeviceId, FileId, OperateDevices};
use iot_proto::retry::TransportFailure;
use iot_proto::{BaseUrl, CreateSoftwareUpgradeTask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::support::{APP_ID, RecordingSleeper, SECRET, bounded, config};

/// A loopback server that reads what arrives on each connection, writes `reply` (if any) and then holds the
/// connection open, silent; it counts the connections. Dropping it closes everything.
struct Stub {
    url_port: u16,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn stub(reply: Option<&'static [u8]>) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url_port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let task = tokio::spawn(async move {
        let mut held = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                // A request head or a TLS ClientHello: either arrives in one read here.
                let _ = stream.read(&mut buf).await;
                if let Some(reply) = reply {
                    let _ = stream.write_all(reply).await;
                }
                std::future::pending::<()>().await;
            });
        }
    });
    Stub { url_port, connections, task }
}

fn transport(connect_timeout: Duration) -> Transport {
    let config =
        TransportConfig::default().with_connect_timeout(connect_timeout).with_request_timeout(Duration::from_secs(10));
    Transport::new(config).unwrap()
}

fn get(url: &str) -> Request<Vec<u8>> {
    Request::get(url).body(Vec::new()).unwrap()
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_malformed_answer_not_a_network_blip() {
    bounded(async {
        let bad_chunk: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz-not-hex\r\nxx\r\n0\r\n\r\n";
        let server = stub(Some(bad_chunk)).await;
        let result =
            transport(Duration::from_secs(2)).send(get(&format!("http://127.0.0.1:{}/", server.url_port))).await;
        let err = result.expect_err("a broken chunk size line must fail the exchange");
        assert!(matches!(err, TransportError::Protocol { .. }), "{err:?}");
        assert_eq!(err.failure(), TransportFailure::Malformed);
        assert!(!err.is_retryable());
    })
    .await;
}

#[tokio::test]
async fn invalid_response_headers_are_a_malformed_answer() {
    bounded(async {
        let bad_head: &[u8] = b"HTTP/1.1 200 OK\r\nthis is no header\r\ncontent-length: 2\r\n\r\n{}";
        let server = stub(Some(bad_head)).await;
        let result =
            transport(Duration::from_secs(2)).send(get(&format!("http://127.0.0.1:{}/", server.url_port))).await;
        let err = result.expect_err("an invalid header line must fail the exchange");
        assert_eq!(err.failure(), TransportFailure::Malformed, "{err:?}");
        assert!(!err.is_retryable());
    })
    .await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_completes_is_a_connect_timeout() {
    bounded(async {
        let server = stub(None).await;
        let started = Instant::now();
        let result =
            transport(Duration::from_millis(300)).send(get(&format!("https://127.0.0.1:{}/", server.url_port))).await;
        let err = result.expect_err("a server that never answers the ClientHello");
        assert!(matches!(err, TransportError::Timeout { phase: TimeoutPhase::Connect, .. }), "{err:?}");
        assert_eq!(err.failure(), TransportFailure::ConnectFailed);
        assert!(!err.request_may_have_been_sent());
        assert!(err.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(5), "the connect timeout, not the request timeout, fired");
    })
    .await;
}

#[tokio::test]
async fn a_create_whose_tls_handshakes_never_complete_is_retried_and_never_outcome_unknown() {
    bounded(async {
        let server = stub(None).await;
        let sleeper = RecordingSleeper::default();
        let transport = TransportConfig::default()
            .with_connect_timeout(Duration::from_millis(200))
            .with_request_timeout(Duration::from_secs(10));
        let base = format!("https://127.0.0.1:{}", server.url_port);
        let client = Client::new(config(&base, &sleeper).with_transport(transport)).unwrap();
        let targets = OperateDevices::new().with_devices(vec![DeviceId::new("device-1").unwrap()]);
        let create = CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(FileId::new("file-1").unwrap(), targets));
        let err = client.create_software_upgrade_task(&create).await.expect_err("no handshake ever completes");
        assert!(!err.outcome_unknown(), "{err:?}");
        assert!(
            matches!(&err, Error::Timeout(Some(TransportError::Timeout { phase: TimeoutPhase::Connect, .. }))),
            "{err:?}"
        );
        assert!(!err.request_may_have_been_sent());
        assert!(!err.platform_may_have_acted());
        assert!(err.is_retryable());
        assert!(server.connections.load(Ordering::SeqCst) > 1, "the attempt was retried");
    })
    .await;
}

#[tokio::test]
async fn login_against_a_server_that_never_answers_ends_at_the_call_deadline() {
    bounded(async {
        let server = stub(None).await;
        // Attempts could each wait 10 s; the call's deadline of 1 s ends the login first.
        let transport = TransportConfig::default()
            .with_connect_timeout(Duration::from_secs(2))
            .with_request_timeout(Duration::from_secs(10));
        let config = iot_hyper::ClientConfig::new(
            BaseUrl::parse(&format!("http://127.0.0.1:{}", server.url_port)).unwrap(),
            AppId::new(APP_ID).unwrap(),
            AppSecret::new(SECRET),
        )
        .with_transport(transport)
        .with_call_timeout(Duration::from_secs(1));
        let client = Client::new(config).unwrap();
        let started = Instant::now();
        let err = client.login().await.expect_err("the server never answers");
        let took = started.elapsed();
        assert!(matches!(err, Error::Timeout(None)), "{err:?}");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
    })
    .await;
}
