//! Measures how long a small query waits while other clients create the largest batch tasks they may.
//!
//! Run with `cargo run --release -p iot-sim --example create_stall -- [LIST_SIZE] [SECONDS]`. It starts the
//! embedded simulator on loopback (rate limit off, so only the creations' cost is measured), logs in, then for
//! SECONDS (default 3) two clients create DeviceList batch tasks of LIST_SIZE unique device ids (default: the
//! simulator's cap) back to back while a third sends `GET /category/{fileId}` one after another and records
//! each answer's wall time. It prints the creations' outcome and the queries' median, 99th percentile and worst
//! latency. The figures in docs/performance.md come from this program.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one HTTP/1.1 request on a fresh connection and returns the status and body.
async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("{head}host: sim\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server that answers before reading the whole body may close early; the answer is still readable.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| out[i + 4..].to_vec()).unwrap_or_default();
    (status, body)
}

fn list_size_default() -> usize {
    iot_model::limits::MAX_BATCH_DEVICES as usize
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let list_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(list_size_default);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);

    let config = SimConfig::default().with_rate_limit(None);
    let sim = EmbeddedSim::start(config, EmbeddedOptions::default()).await.unwrap();
    let addr: SocketAddr = sim.base_url().trim_start_matches("http://").parse().unwrap();
    let file_id = sim.with_sim(|s| s.packages()[0].file_id.to_string());

    let form = format!("appId={DEFAULT_APP_ID}&secret={DEFAULT_SECRET}");
    let (status, body) = send(
        addr,
        "POST /iocm/app/sec/v1.1.0/login HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded\r\n",
        form.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = token["accessToken"].as_str().unwrap().to_owned();
    let auth = format!("app_key: {DEFAULT_APP_ID}\r\nauthorization: Bearer {token}\r\n");

    let ids: Vec<String> = (0..list_size).map(|i| format!("dev-{i:07}")).collect();
    let create = serde_json::json!({
        "appId": DEFAULT_APP_ID, "timeout": 10, "taskName": "big", "taskType": "DeviceCmd",
        "param": {"type": "DeviceList", "deviceList": ids, "command": {"serviceId": "s", "method": "m"}},
    })
    .to_string()
    .into_bytes();
    println!("list size {list_size}, body {} bytes, {seconds} s", create.len());

    let end = Instant::now() + Duration::from_secs(seconds);
    let mut creators = Vec::new();
    for _ in 0..2 {
        let (create, auth) = (create.clone(), auth.clone());
        creators.push(tokio::spawn(async move {
            let (mut n, mut statuses, mut slowest) = (0u32, std::collections::BTreeMap::new(), Duration::ZERO);
            while Instant::now() < end {
                let head = format!(
                    "POST /iocm/app/batchtask/v1.1.0/tasks HTTP/1.1\r\ncontent-type: application/json\r\n{auth}"
                );
                let started = Instant::now();
                let (status, _) = send(addr, &head, &create).await;
                slowest = slowest.max(started.elapsed());
                *statuses.entry(status).or_insert(0u32) += 1;
                n += 1;
            }
            (n, statuses, slowest)
        }));
    }
    // Let the creations start before the first query is timed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut latencies = Vec::new();
    let head = format!("GET /iodm/northbound/v1.5.0/category/{file_id} HTTP/1.1\r\n{auth}");
    while Instant::now() < end {
        let started = Instant::now();
        let (status, _) = send(addr, &head, b"").await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200);
    }
    for c in creators {
        let (n, statuses, slowest) = c.await.unwrap();
        println!("creator: {n} creations, statuses {statuses:?}, slowest {slowest:?}");
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "queries: {} answered, median {:?}, p99 {:?}, worst {:?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
    let (upgrades, batches) = sim.with_sim(|s| s.task_counts());
    println!("tasks stored: {upgrades} upgrade, {batches} batch");
    sim.shutdown().await;
}
