//! Connections a gateway closes at the moment they are reused. A server that drops a keep-alive connection
//! idle for `IDLE` when the next request arrives on it (after reading that request, half the time after the
//! platform acted on it) stands in for the race every pooled client meets: the request went out, no answer
//! comes back. Over many creates the client must neither fail nor create a task twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use iot_hyper::{Client, ClientConfig, TransportConfig};
use iot_model::{AppId, AppSecret, CreateUpgradeTask, FileType, OperateDevices};
use iot_proto::ratelimit::RateLimit;
use iot_proto::{BaseUrl, CreateFirmwareUpgradeTask, QueryUpgradeTaskList};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};
use tokio::net::TcpListener;

use crate::sim_support::{biggest_kind_of, bounded};

/// How long a connection may idle before the server drops it under the next request.
const IDLE: Duration = Duration::from_millis(60);
/// The pause between two creates: longer than `IDLE`, so every create meets a connection the server drops.
const PAUSE: Duration = Duration::from_millis(90);
const CREATES: usize = 8;

/// What the server did.
#[derive(Default)]
struct Dropped {
    /// Requests dropped without being acted on.
    unseen: AtomicUsize,
    /// Requests acted on, then dropped without an answer.
    acted: AtomicUsize,
}

/// A simulator behind a server that drops connections idle for [`IDLE`] at their next request.
async fn start(sim: Simulator) -> (String, Arc<Mutex<Simulator>>, Arc<Dropped>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = Arc::new(Mutex::new(sim));
    let dropped = Arc::new(Dropped::default());
    let (shared, stats) = (sim.clone(), dropped.clone());
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (sim, stats) = (shared.clone(), stats.clone());
            let last_answer: Arc<Mutex<Option<Instant>>> = Arc::default();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let (sim, stats, last_answer) = (sim.clone(), stats.clone(), last_answer.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let request = http::Request::from_parts(parts, body);
                        let expired = last_answer.lock().unwrap().is_some_and(|t| t.elapsed() >= IDLE);
                        if expired {
                            // Alternately the gateway passed the request on before the connection died, or not.
                            let n = stats.unseen.load(Ordering::SeqCst) + stats.acted.load(Ordering::SeqCst);
                            if n % 2 == 0 {
                                let _lost = sim.lock().unwrap().handle(SystemTime::now(), request);
                                stats.acted.fetch_add(1, Ordering::SeqCst);
                            } else {
                                stats.unseen.fetch_add(1, Ordering::SeqCst);
                            }
                            // An error from the service closes the connection without an answer.
                            return Err("keep-alive expired");
                        }
                        let answer = sim.lock().unwrap().handle(SystemTime::now(), request);
                        *last_answer.lock().unwrap() = Some(Instant::now());
                        Ok::<_, &str>(answer.map(|b| Full::new(Bytes::from(b))))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (base, sim, dropped, server)
}

fn simulator() -> Simulator {
    Simulator::new(SimConfig::default().with_rate_limit(None).with_failure_rate(0.0).with_fleet_size(600))
}

fn client(base: &str, pool_idle: Duration) -> Client {
    let transport = TransportConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(5))
        .with_pool_idle_timeout(pool_idle);
    let config = ClientConfig::new(
        BaseUrl::parse(base).unwrap(),
        AppId::new(DEFAULT_APP_ID).unwrap(),
        AppSecret::new(DEFAULT_SECRET),
    )
    .with_transport(transport)
    .with_rate_limit(RateLimit::disabled());
    Client::new(config).unwrap()
}

/// Creates one firmware task per device, pausing between them, and returns the operation ids answered.
async fn creates(client: &Client, sim: &Simulator) -> Vec<iot_model::OperationId> {
    let (devices, package) = biggest_kind_of(sim, FileType::FirmwarePackage);
    let mut ids = Vec::new();
    for device in devices.into_iter().take(CREATES) {
        tokio::time::sleep(PAUSE).await;
        let targets = OperateDevices::new().with_devices(vec![device]);
        let create = CreateFirmwareUpgradeTask::new(CreateUpgradeTask::new(package.file_id.clone(), targets));
        ids.push(client.send(&create).await.expect("no create fails").operation_id);
    }
    ids
}

/// Every create the server dropped at the moment of reuse was reconciled: found when the platform had acted,
/// sent again when it had not. No create failed, none was made twice.
#[tokio::test]
async fn creates_on_connections_dropped_at_reuse_neither_fail_nor_repeat() {
    bounded(async {
        let probe = simulator();
        let (base, sim, dropped, server) = start(simulator()).await;
        // The pool keeps connections far longer than the server does: every create meets a dropped one.
        let client = client(&base, Duration::from_secs(30));
        client.login().await.unwrap();

        let ids = creates(&client, &probe).await;

        let unseen = dropped.unseen.load(Ordering::SeqCst);
        let acted = dropped.acted.load(Ordering::SeqCst);
        assert!(unseen >= 2 && acted >= 2, "the race happened both ways: {unseen} unseen, {acted} acted");
        let listed = client.query_upgrade_task_list(&QueryUpgradeTaskList::new().with_page_size(100)).await.unwrap();
        let mut listed: Vec<_> = listed.data.into_iter().map(|t| t.operation_id).collect();
        let mut answered = ids.clone();
        listed.sort();
        answered.sort();
        answered.dedup();
        assert_eq!(answered.len(), CREATES, "every create answered its own task");
        assert_eq!(listed, answered, "exactly one task per create, each the one answered");
        assert_eq!(sim.lock().unwrap().task_counts(), (CREATES, 0));
        server.abort();
    })
    .await;
}

/// A pool that retires idle connections before the server would drop them never meets the race at all.
#[tokio::test]
async fn a_pool_that_retires_idle_connections_first_never_meets_a_dropped_one() {
    bounded(async {
        let probe = simulator();
        let (base, sim, dropped, server) = start(simulator()).await;
        let client = client(&base, IDLE / 3);
        client.login().await.unwrap();

        let ids = creates(&client, &probe).await;

        assert_eq!(dropped.unseen.load(Ordering::SeqCst) + dropped.acted.load(Ordering::SeqCst), 0);
        assert_eq!(ids.len(), CREATES);
        assert_eq!(sim.lock().unwrap().task_counts(), (CREATES, 0));
        server.abort();
    })
    .await;
}
