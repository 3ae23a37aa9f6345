//! The simulator holds under attack and faults: deadlines on heads and bodies, credentials checked before a
//! body is read, a connection limit and a shared byte budget (on loopback sockets), and in the core: no quota
//! spent by strangers, tokens that need the secret, no JSON with trailing bytes, capped lists.
//!
//! Every socket test runs on `127.0.0.1:0`, bounds each wait with a timeout and shuts its server down.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iot_model::{AppId, AppSecret, DeviceId, LoginForm};
use iot_proto::{BaseUrl, Endpoint, Login, QueryPackageList};
use iot_sim::embedded::{EmbeddedOptions, EmbeddedSim};
use iot_sim::server::Limits;
use iot_sim::sim::{AppConfig, DEFAULT_APP_ID, DEFAULT_SECRET, HeadCheck, SMALL_BODY_LIMIT, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::{Harness, code, raw_code};

const UPGRADE: &str = "/iodm/northbound/v1.5.0";
const BATCH: &str = "/iocm/app/batchtask/v1.1.0";

/// The longest any single wait in these tests may take before the test fails.
const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------------------
// Socket helpers.

async fn start(limits: Limits) -> (EmbeddedSim, SocketAddr) {
    let sim =
        EmbeddedSim::start(SimConfig::default().with_rate_limit(None), EmbeddedOptions::default().with_limits(limits))
            .await
            .unwrap();
    let addr = sim.base_url().trim_start_matches("http://").parse().unwrap();
    (sim, addr)
}

/// Reads what the server sends until it closes the connection, within [`WAIT`].
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed within {WAIT:?}: {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Logs in over the socket and returns the access token.
async fn login(addr: SocketAddr) -> String {
    let form = format!("appId={DEFAULT_APP_ID}&secret={DEFAULT_SECRET}");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /iocm/app/sec/v1.1.0/login HTTP/1.1\r\nhost: sim\r\nconnection: close\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
        form.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_all(&mut s).await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    token["accessToken"].as_str().unwrap().to_owned()
}

/// The head of an authenticated batch creation whose body is `len` bytes.
fn batch_head(token: &str, len: usize) -> String {
    format!(
        "POST {BATCH}/tasks HTTP/1.1\r\nhost: sim\r\nconnection: close\r\ncontent-type: application/json\r\n\
         app_key: {DEFAULT_APP_ID}\r\nauthorization: Bearer {token}\r\ncontent-length: {len}\r\n\r\n"
    )
}

// ---------------------------------------------------------------------------------------------------------
// Socket tests.

/// Before: the server read (and buffered) a whole body before the core saw that the call had no credentials, so
/// a stranger could hold up to 1 MiB per request for as long as it liked.
#[tokio::test]
async fn a_call_without_credentials_is_refused_before_its_body_is_read() {
    let (sim, addr) = start(Limits::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Announces a 500 kB body and sends none of it: only an answer from the head can come back.
    let head = format!(
        "POST {BATCH}/tasks HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\napp_key: {DEFAULT_APP_ID}\r\n\
         authorization: Bearer not-a-token\r\ncontent-length: 500000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("1010005"), "{answer}");
    assert_eq!(sim.with_sim(|s| s.task_counts()), (0, 0));
    sim.shutdown().await;
}

/// Before: login read up to the server's 1 MiB cap although its form is a few hundred bytes.
#[tokio::test]
async fn login_bodies_are_capped_tightly() {
    let (sim, addr) = start(Limits::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /iocm/app/sec/v1.1.0/login HTTP/1.1\r\nhost: sim\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        SMALL_BODY_LIMIT + 1
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A login of ordinary size still works.
    assert_eq!(login(addr).await.len(), 32);
    sim.shutdown().await;
}

/// Before: once the head was in, the server waited for the body forever.
#[tokio::test]
async fn a_body_that_stalls_is_answered_408_at_the_body_deadline() {
    let limits = Limits::default().with_body_read_timeout(Duration::from_millis(200));
    let (sim, addr) = start(limits).await;
    let token = login(addr).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(batch_head(&token, 100).as_bytes()).await.unwrap();
    s.write_all(b"{\"appId\":").await.unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(sim.with_sim(|s| s.task_counts()), (0, 0));
    sim.shutdown().await;
}

/// A head that never completes, and an idle keep-alive connection, are dropped at the request deadline.
#[tokio::test]
async fn a_head_that_stalls_and_an_idle_connection_are_closed_at_the_request_deadline() {
    let limits = Limits::default().with_request_timeout(Duration::from_millis(300));
    let (sim, addr) = start(limits).await;
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"GET /iodm/northbound/v1.5.0/category HTTP/1.1\r\nhost: sim\r\n").await.unwrap();
    let answer = read_all(&mut partial).await;
    assert!(!answer.contains(" 200 "), "{answer}");

    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nhost: sim\r\n\r\n").await.unwrap();
    // The 404 comes back, then the connection waits for a next head that never comes, and is closed.
    let answer = read_all(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    sim.shutdown().await;
}

/// Before: every accepted connection was served, so idle sockets could pile up without limit.
#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let (sim, addr) = start(Limits::default().with_max_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // A served request proves the connection holds a slot before the next one is opened.
        s.write_all(b"GET /nowhere HTTP/1.1\r\nhost: sim\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
        held.push(s);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    // The server closed it on accept; the request may not even be written.
    let _ = third.write_all(b"GET /nowhere HTTP/1.1\r\nhost: sim\r\n\r\n").await;
    assert_eq!(read_all(&mut third).await, "", "a third connection must not be served");

    // Once a slot is free, connections are served again; the server notices the close within a few polls.
    drop(held.pop());
    let mut served = false;
    for _ in 0..100 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(b"GET /nowhere HTTP/1.1\r\nhost: sim\r\nconnection: close\r\n\r\n").await;
        if read_all(&mut s).await.starts_with("HTTP/1.1 404") {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "a freed slot must be usable");
    sim.shutdown().await;
}

/// Before: each request could buffer up to the body cap, however many were in flight.
#[tokio::test]
async fn bodies_in_flight_share_one_byte_budget() {
    let limits = Limits::default()
        .with_max_request_body(1000)
        .with_max_buffered_bytes(1000)
        .with_body_read_timeout(Duration::from_secs(3));
    let (sim, addr) = start(limits).await;
    let token = login(addr).await;
    // The first request reserves 800 bytes and keeps them while it dribbles.
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(batch_head(&token, 800).as_bytes()).await.unwrap();
    first.write_all(b"{").await.unwrap();
    // Give the server the head before the second request arrives: the reservation happens on the head.
    let mut probe = TcpStream::connect(addr).await.unwrap();
    probe.write_all(b"GET /nowhere HTTP/1.1\r\nhost: sim\r\nconnection: close\r\n\r\n").await.unwrap();
    read_all(&mut probe).await;

    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(batch_head(&token, 800).as_bytes()).await.unwrap();
    let answer = read_all(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // A body that fits the rest of the budget is read and answered.
    let mut small = TcpStream::connect(addr).await.unwrap();
    small.write_all(format!("{}{{}}", batch_head(&token, 2)).as_bytes()).await.unwrap();
    let answer = read_all(&mut small).await;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("100022"), "{answer}");
    drop(first);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// Core tests.

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// Before: a call naming an app was counted before its token was checked (and a login before its secret), so a
/// stranger could spend an app's quota and throttle it.
#[test]
fn calls_that_fail_authentication_spend_no_quota() {
    let mut h = Harness::new(SimConfig::default().with_rate_limit(Some((5, Duration::from_secs(60)))));
    h.token = Some(iot_model::AccessToken::new("guessed"));
    for _ in 0..20 {
        assert_eq!(code(h.call(&QueryPackageList::new())), "1010005");
    }
    let wrong = Login::new(LoginForm::new(h.app.clone(), AppSecret::new("wrong")));
    for _ in 0..20 {
        assert_eq!(code(h.call_as(&wrong, None)), "100208");
    }
    // The app still has its whole quota: a login and four calls, then the sixth call is throttled.
    h.login().unwrap();
    for i in 2..=5 {
        assert!(h.call(&QueryPackageList::new()).is_ok(), "call {i}");
    }
    assert_eq!(code(h.call(&QueryPackageList::new())), "1010009");
}

/// Logs in to `sim` as the default app with `secret` and returns the answer's access token.
fn token_of(sim: &mut Simulator, secret: &str) -> (u16, String) {
    let base = BaseUrl::parse("http://sim.test").unwrap();
    let login = Login::new(LoginForm::new(AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(secret)));
    let answer = sim.handle(at(0), login.try_into_http_request(&base, None).unwrap());
    let status = answer.status().as_u16();
    let token = Login::try_from_http_response(&answer).map(|t| t.access_token.expose_secret().to_owned());
    (status, token.unwrap_or_default())
}

/// Before: tokens followed from the seed alone, so anyone who knew the (public, default) seed could compute the
/// token a login would get without knowing the secret.
#[test]
fn tokens_differ_by_secret_and_one_simulators_token_is_refused_by_another() {
    let with_secret = |secret: &str| {
        let mut config = SimConfig::default().with_fleet_size(2).with_rate_limit(None);
        config.apps = vec![AppConfig::new(AppId::new(DEFAULT_APP_ID).unwrap(), AppSecret::new(secret))];
        Simulator::new(config)
    };
    let (mut a, mut b, mut a_again) = (with_secret("secret-a"), with_secret("secret-b"), with_secret("secret-a"));
    let (sa, token_a) = token_of(&mut a, "secret-a");
    let (sb, token_b) = token_of(&mut b, "secret-b");
    assert_eq!((sa, sb), (200, 200));
    assert_ne!(token_a, token_b, "same seed, different secrets: different tokens");
    assert_eq!(token_of(&mut a_again, "secret-a").1, token_a, "same seed and secret: same token");

    let query = |sim: &mut Simulator, token: &str| {
        let req = http::Request::get(format!("http://sim.test{UPGRADE}/category"))
            .header("app_key", DEFAULT_APP_ID)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Vec::new())
            .unwrap();
        let (parts, _) = req.clone().into_parts();
        let head_ok = matches!(sim.check_head(at(1), &parts), HeadCheck::Read { .. });
        (head_ok, raw_code(&sim.handle(at(1), req)))
    };
    assert_eq!(query(&mut b, &token_a), (false, (403, "1010005".to_owned())), "a's token is refused by b");
    assert_eq!(query(&mut a, &token_b), (false, (403, "1010005".to_owned())), "b's token is refused by a");
    assert_eq!(query(&mut a, &token_a).1.0, 200);
}

/// Before: `{...}garbage` was read as its first value and the task was created.
#[test]
fn json_with_trailing_bytes_is_refused_and_creates_no_task() {
    let mut h = Harness::ready();
    let device = &h.sim.devices()[0];
    let package = h.sim.packages().iter().find(|p| p.device_type.as_deref() == Some(&device.device_type)).unwrap();
    let kind = if package.file_type == Some(iot_model::FileType::SoftwarePackage) { "software" } else { "firmware" };
    let upgrade =
        serde_json::json!({"fileId": package.file_id, "targets": {"devices": [device.device_id]}}).to_string();
    let batch = serde_json::json!({
        "appId": DEFAULT_APP_ID, "timeout": 10, "taskName": "t", "taskType": "DeviceCmd",
        "param": {"type": "Broadcast", "command": {"serviceId": "s", "method": "m"}},
    })
    .to_string();
    let upgrade_path = format!("{UPGRADE}/operations/{kind}Upgrade");
    let batch_path = format!("{BATCH}/tasks");
    for tail in ["garbage", "{}", " 1", "]"] {
        let answer = h.raw_authed("POST", &upgrade_path, &format!("{upgrade}{tail}"));
        assert_eq!(raw_code(&answer), (400, "120015".to_owned()), "{tail:?}");
        let answer = h.raw_authed("POST", &batch_path, &format!("{batch}{tail}"));
        assert_eq!(raw_code(&answer), (400, "100022".to_owned()), "{tail:?}");
    }
    assert_eq!(h.sim.task_counts(), (0, 0));
    // The same bodies with trailing whitespace only are fine.
    assert_eq!(h.raw_authed("POST", &upgrade_path, &format!("{upgrade} \r\n")).status(), 200);
    assert_eq!(h.raw_authed("POST", &batch_path, &format!("{batch}\n")).status(), 200);
    assert_eq!(h.sim.task_counts(), (1, 1));
}

/// Before: a DeviceList had no cap, so one request of about 1 MB stored tens of MB and held the simulator for
/// most of a second; now a list over `MAX_BATCH_DEVICES` (or groups over `MAX_BATCH_GROUPS`) stores nothing.
#[test]
fn batch_lists_over_their_caps_are_refused_and_store_nothing() {
    let mut h = Harness::ready();
    let list = |n: usize| (0..n).map(|i| format!("dev-{i:07}")).collect::<Vec<_>>();
    let body = |param: serde_json::Value| {
        serde_json::json!({
            "appId": DEFAULT_APP_ID, "timeout": 10, "taskName": "big", "taskType": "DeviceCmd", "param": param,
        })
        .to_string()
    };
    let cap = iot_model::limits::MAX_BATCH_DEVICES as usize;
    let over = body(serde_json::json!({"type": "DeviceList", "deviceList": list(cap + 1),
        "command": {"serviceId": "s", "method": "m"}}));
    assert_eq!(raw_code(&h.raw_authed("POST", &format!("{BATCH}/tasks"), &over)), (400, "100022".to_owned()));
    let groups = list(iot_model::limits::MAX_BATCH_GROUPS as usize + 1);
    let over = body(serde_json::json!({"type": "GroupList", "groupList": groups,
        "command": {"serviceId": "s", "method": "m"}}));
    assert_eq!(raw_code(&h.raw_authed("POST", &format!("{BATCH}/tasks"), &over)), (400, "100022".to_owned()));
    assert_eq!(h.sim.task_counts(), (0, 0));
    // A list at the cap is a task (its unknown devices fail at once, as documented).
    let at_cap = body(serde_json::json!({"type": "DeviceList", "deviceList": list(cap),
        "command": {"serviceId": "s", "method": "m"}}));
    assert_eq!(h.raw_authed("POST", &format!("{BATCH}/tasks"), &at_cap).status(), 200);
    // Upgrade targets keep the contract's 256.
    let ids: Vec<DeviceId> = (0..257).map(|i| DeviceId::new(format!("d-{i}")).unwrap()).collect();
    let upgrade = serde_json::json!({"fileId": h.sim.packages()[0].file_id, "targets": {"devices": ids}}).to_string();
    let answer = h.raw_authed("POST", &format!("{UPGRADE}/operations/firmwareUpgrade"), &upgrade);
    assert_eq!(raw_code(&answer), (400, "123024".to_owned()));
    assert_eq!(h.sim.task_counts(), (0, 1));
}

/// The head check answers what `handle` would for a call without credentials, and caps small bodies.
#[test]
fn the_head_check_refuses_strangers_and_caps_small_bodies() {
    let h = Harness::ready();
    let token = h.token.as_ref().unwrap().expose_secret().to_owned();
    let head = |method: &str, path: &str, token: Option<&str>| {
        let mut req = http::Request::builder().method(method).uri(format!("http://sim.test{path}"));
        if let Some(t) = token {
            req = req.header("app_key", DEFAULT_APP_ID).header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(()).unwrap().into_parts().0
    };
    let check = |sim: &Simulator, parts: &http::request::Parts| match sim.check_head(at(0), parts) {
        HeadCheck::Read { max_body } => Ok(max_body),
        HeadCheck::Answer(r) => Err(raw_code(&r)),
        other => panic!("{other:?}"),
    };
    let sim = &h.sim;
    assert_eq!(check(sim, &head("POST", "/iocm/app/sec/v1.1.0/login", None)), Ok(Some(SMALL_BODY_LIMIT)));
    assert_eq!(check(sim, &head("POST", "/iocm/app/sec/v1.1.0/refreshToken", None)), Ok(Some(SMALL_BODY_LIMIT)));
    assert_eq!(check(sim, &head("POST", &format!("{BATCH}/tasks"), Some(&token))), Ok(None));
    assert_eq!(check(sim, &head("GET", &format!("{UPGRADE}/category"), Some(&token))), Ok(Some(SMALL_BODY_LIMIT)));
    let refused = Err((403, "1010005".to_owned()));
    assert_eq!(check(sim, &head("POST", &format!("{BATCH}/tasks"), None)), refused);
    assert_eq!(check(sim, &head("POST", &format!("{BATCH}/tasks"), Some("wrong"))), refused);
    assert_eq!(check(sim, &head("GET", "/nowhere", None)), Err((404, iot_sim::sim::codes::NOT_FOUND.to_owned())));
    // The check changes nothing: no call was counted, no clock moved.
    assert_eq!(h.sim.task_counts(), (0, 0));
}
