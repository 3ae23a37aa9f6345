//! Simulator throughput over loopback (issue 11, goal 3): authenticated 100-item task-list pages answered by
//! the simulator's own hyper server, against the same server machinery answering every call with the captured
//! bytes of that page (the floor: what hyper, the socket and the server wrapper cost alone).
//!
//! `cargo bench -p iot-sim --bench throughput -- MODE SERVER ...`, where SERVER is `sim` (the simulator core
//! behind `embedded::gated_handler`, as `EmbeddedSim` runs it) or `fixed` (a handler returning the captured
//! answer), each on a tokio runtime with one worker thread of its own, on 127.0.0.1 with port 0; and MODE is
//! - `loop CALLS`: 20 warm-up calls, then CALLS sequential calls on one keep-alive connection, for instruction
//!   counts under `valgrind --tool=callgrind --separate-threads=yes` (the server's worker is the thread named
//!   `sim-server`; subtracting a run with fewer calls gives the cost of one call);
//! - `rate SECONDS CONNECTIONS`: CONNECTIONS keep-alive connections, each sending its next call as soon as the
//!   previous answer is read, for SECONDS; prints pages per second, the server thread's CPU time per page and
//!   the load average before and after (the machine is shared).
//!
//! The simulator holds 1,000 devices and 100 one-device firmware tasks, served a day after their creation
//! (all finished), as the `fleet` page of the `scale` bench. Every answer's body is checked against the page
//! captured from the core, so both servers send the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use iot_sim::embedded::{SimClock, gated_handler};
use iot_sim::server::{self, Handler, ServerConfig};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Simulated creation time: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;
const BASE: &str = "http://sim.bench";
const PAGE: &str = "/iodm/northbound/v1.5.0/operations?pageSize=100";

fn login(sim: &mut Simulator, now: SystemTime) -> String {
    let req = Request::post(format!("{BASE}/iocm/app/sec/v1.1.0/login"))
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("appId={DEFAULT_APP_ID}&secret={DEFAULT_SECRET}").into_bytes())
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(sim.handle(now, req).body()).unwrap();
    v["accessToken"].as_str().unwrap().to_owned()
}

fn authed(token: &str, method: &str, path: &str, body: String) -> Request<Vec<u8>> {
    Request::builder()
        .method(method)
        .uri(format!("{BASE}{path}"))
        .header("app_key", DEFAULT_APP_ID)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.into_bytes())
        .unwrap()
}

/// The populated simulator, the time it serves at, a token valid then and the page captured from the core.
fn populated() -> (Simulator, SystemTime, String, Response<Vec<u8>>) {
    let t0 = UNIX_EPOCH + Duration::from_secs(T0);
    let mut sim = Simulator::new(SimConfig::default().with_fleet_size(1000).with_rate_limit(None));
    let token = login(&mut sim, t0);
    let p = sim
        .packages()
        .iter()
        .find(|p| p.file_type == Some(iot_model::FileType::FirmwarePackage) && sim.devices_for(p).count() > 0)
        .unwrap()
        .clone();
    let devices: Vec<String> = sim.devices_for(&p).take(100).map(|d| d.device_id.to_string()).collect();
    for i in 0..100 {
        let body =
            format!(r#"{{"fileId":"{}","targets":{{"devices":["{}"]}}}}"#, p.file_id, devices[i % devices.len()]);
        let resp = sim.handle(t0, authed(&token, "POST", "/iodm/northbound/v1.5.0/operations/firmwareUpgrade", body));
        assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(resp.body()));
    }
    let serve = t0 + Duration::from_secs(86_400);
    let token = login(&mut sim, serve);
    let page = sim.handle(serve, authed(&token, "GET", PAGE, String::new()));
    assert_eq!(page.status(), 200);
    (sim, serve, token, page)
}

/// Sends a request head on a keep-alive connection and reads one answer; returns its body.
async fn call(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("a content-length");
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed");
                buf.extend_from_slice(&chunk[..n]);
            }
            return buf[end + 4..end + 4 + len].to_vec();
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU time (nanoseconds) of the process's thread named `name`, from the scheduler's account.
fn thread_cpu(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            return stat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (mode, kind) = (args[0].as_str(), args[1].as_str());
    let (sim, serve, token, page) = populated();
    let expected = Arc::new(page.body().clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim-server")
        .enable_all()
        .build()
        .unwrap();
    let running = runtime.block_on(async {
        match kind {
            "sim" => {
                let (gate, handler) = gated_handler(sim, SimClock::new(serve, 1.0));
                server::start_gated(ServerConfig::default(), gate, handler).await.unwrap()
            }
            "fixed" => {
                let (parts, body) = page.into_parts();
                let handler: Handler = Arc::new(move |_: Request<Bytes>| {
                    let mut r = Response::new(body.clone());
                    *r.headers_mut() = parts.headers.clone();
                    r
                });
                server::start(ServerConfig::default(), handler).await.unwrap()
            }
            other => panic!("unknown server {other}"),
        }
    });
    let addr: SocketAddr = running.local_addr();
    let request = format!(
        "GET {PAGE} HTTP/1.1\r\nhost: sim\r\napp_key: {DEFAULT_APP_ID}\r\nauthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes();
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    client.block_on(async {
        match mode {
            "loop" => {
                let calls: usize = args[2].parse().unwrap();
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let mut buf = Vec::new();
                for _ in 0..20 + calls {
                    let body = call(&mut stream, &request, &mut buf).await;
                    assert!(body == *expected, "the answer differs from the core's page");
                }
                println!("{kind}: {calls} calls after 20 warm-up, {} bytes each", expected.len());
            }
            "rate" => {
                let secs: u64 = args[2].parse().unwrap();
                let conns: usize = args[3].parse().unwrap();
                println!("load average before: {}", load_average());
                let done = Arc::new(AtomicU64::new(0));
                let cpu0 = thread_cpu("sim-server");
                let start = Instant::now();
                let end = start + Duration::from_secs(secs);
                let mut workers = Vec::new();
                for _ in 0..conns {
                    let (request, expected, done) = (request.clone(), expected.clone(), done.clone());
                    workers.push(tokio::spawn(async move {
                        let mut stream = TcpStream::connect(addr).await.unwrap();
                        let mut buf = Vec::new();
                        while Instant::now() < end {
                            let body = call(&mut stream, &request, &mut buf).await;
                            assert!(body == *expected, "the answer differs from the core's page");
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }));
                }
                for w in workers {
                    w.await.unwrap();
                }
                let wall = start.elapsed().as_secs_f64();
                let cpu = (thread_cpu("sim-server") - cpu0) as f64 / 1e9;
                let n = done.load(Ordering::Relaxed) as f64;
                println!(
                    "{kind}: {conns} connections, {n} pages in {wall:.2} s: {:.0} pages/s wall; server thread CPU \
                     {cpu:.2} s, {:.0} pages per CPU-second",
                    n / wall,
                    n / cpu
                );
                println!("load average after: {}", load_average());
            }
            other => panic!("unknown mode {other}"),
        }
    });
    runtime.block_on(running.shutdown());
}
