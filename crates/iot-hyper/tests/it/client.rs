//! The tokio driver against a small scripted server on 127.0.0.1: what needs real sockets (timeouts, body limits,
//! redirects, connections that break or go silent, an HTML page through the transport), the driver's own wiring
//! (the deadline around an exchange, sharing one renewal between real tasks, the drop guard of a cancelled call,
//! the `Stream` adapters of paged walks) and credentials on the wire.
//!
//! The choreography itself (retries and backoff, throttling, token renewal, refused refreshes, the verdict on a
//! failed create, walk integrity) is asserted without sockets, on a virtual clock, by iot-sim's
//! `choreography` tests and iot-proto's unit tests.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use http::{Response, StatusCode};
use iot_hyper::transport::{TimeoutPhase, TransportError};
use iot_hyper::{Client, Error};
use iot_model::{CreateUpgradeTask, DeviceId, FileId, OperateDevices, OperationId, OperationPage};
use iot_proto::pager::PagerError;
use iot_proto::retry::RetryPolicy;
use iot_proto::session::{SessionConfig, SessionState};
use iot_proto::{CreateSoftwareUpgradeTask, ErrorCode, Page, QueryUpgradeTask, QueryUpgradeTaskList};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::support::{
    APP_ID, Call, HOUR, Kind, Platform, RecordingSleeper, SECRET, SilentListener, access_token, api_error,
    assert_error_hides_secrets, assert_hidden, bounded, client, config, hang_up, ok, operation, token_answer, tokens,
};

const MIB: usize = 1024 * 1024;

/// How many calls the concurrency tests run at once.
const CALLS: usize = 20;

// Compile-time checks: the client can be shared and cloned across tasks, the futures and streams of its
// public methods can be spawned, and its error fits `Box<dyn Error + Send + Sync>`.
const _: fn(Client) = |client| {
    fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn sendable<T: Send>(_: &T) {}
    fn error_like<T: std::error::Error + Send + Sync + 'static>() {}
    shareable(&client);
    let query = QueryUpgradeTask::new(OperationId::new("op").unwrap());
    sendable(&client.send(&query));
    sendable(&client.query_upgrade_task(&query));
    sendable(&client.login());
    sendable(&client.logout());
    sendable(&client.renew_token());
    sendable(&client.pages(QueryUpgradeTaskList::new()));
    sendable(&client.items(QueryUpgradeTaskList::new()));
    error_like::<Error>();
};

fn query() -> QueryUpgradeTask {
    QueryUpgradeTask::new(OperationId::new("op-1").unwrap())
}

fn create_task() -> CreateSoftwareUpgradeTask {
    let targets = OperateDevices::new().with_devices(vec![DeviceId::new("device-1").unwrap()]);
    CreateSoftwareUpgradeTask::new(CreateUpgradeTask::new(FileId::new("file-1").unwrap(), targets))
}

fn platform_error(result: Result<impl std::fmt::Debug, Error>) -> iot_proto::ApiError {
    match result {
        Err(Error::Api(api)) => api,
        other => panic!("expected a platform error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// An answer from something in front of the platform

#[tokio::test]
async fn an_html_502_from_a_proxy_surfaces_with_a_bounded_excerpt_after_the_retries() {
    bounded(async {
        let page = format!("<html><body><h1>502 Bad Gateway</h1>{}</body></html>", "<p>upstream down</p>".repeat(200));
        let platform = Platform::start(move |call| match call.kind {
            Kind::Api => Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .header("content-type", "text/html")
                .body(page.clone().into_bytes())
                .unwrap(),
            _ => tokens(call),
        })
        .await;
        let (client, sleeper) = client(&platform);

        let result = client.query_upgrade_task(&query()).await;

        let err = result.as_ref().map(|_| ()).unwrap_err();
        assert!(err.is_retryable());
        assert_error_hides_secrets(err);
        let api = platform_error(result);
        assert_eq!(api.status, StatusCode::BAD_GATEWAY);
        assert_eq!(api.code, None);
        let excerpt = api.body_excerpt.expect("an excerpt of the html page");
        assert!(excerpt.starts_with("<html><body><h1>502 Bad Gateway"), "{excerpt}");
        assert!(excerpt.len() <= iot_proto::error::EXCERPT_LIMIT + 3, "excerpt of {} bytes", excerpt.len());
        let attempts = client.config().retry.max_attempts as usize;
        assert_eq!(platform.log().count(Kind::Api), attempts);
        assert_eq!(sleeper.delays().len(), attempts - 1);
        platform.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// A create that failed on the wire: the transport's classification, the driver's deadline around an exchange

/// Asserts that `err` is the typed "the task may exist" error of a create, hiding secrets.
fn assert_may_exist(err: &Error, endpoint: &str) {
    assert!(err.outcome_unknown(), "{err:?}");
    assert!(matches!(err, Error::OutcomeUnknown { endpoint: e, .. } if *e == endpoint), "{err:?}");
    assert!(err.platform_may_have_acted(), "{err:?}");
    assert!(err.request_may_have_been_sent(), "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("the task may exist"), "{err}");
    assert!(!err.cause().outcome_unknown(), "{err:?}");
    assert!(std::error::Error::source(err).is_some(), "{err:?}");
    assert_error_hides_secrets(err);
}

/// The creates the platform saw, and the lookups of the package that reconciliation starts with.
fn creates_and_lookups(platform: &Platform) -> (usize, usize) {
    let api = platform.log().of(Kind::Api);
    let creates = api.iter().filter(|s| s.uri.path().ends_with("/softwareUpgrade")).count();
    let lookups = api.iter().filter(|s| s.uri.path().contains("/category/")).count();
    assert_eq!(creates + lookups, api.len(), "nothing else was sent");
    (creates, lookups)
}

#[tokio::test]
async fn a_create_whose_connection_breaks_after_the_body_is_sent_once() {
    bounded(async {
        let platform = Platform::start_async(|call: Call| async move {
            match call.kind {
                Kind::Api => hang_up(),
                _ => tokens(&call),
            }
        })
        .await;
        let (client, sleeper) = client(&platform);

        let err = client.create_software_upgrade_task(&create_task()).await.unwrap_err();

        assert_may_exist(&err, "CreateSoftwareUpgradeTask");
        assert!(
            matches!(err.cause(), Error::Transport(TransportError::Io { request_may_have_been_sent: true, .. })),
            "{err:?}"
        );
        // Sent once; then the client looked for the task before any resend (the package first, a query, so
        // tried three times), and this scripted platform broke every lookup too, so the outcome stays unknown.
        assert_eq!(creates_and_lookups(&platform), (1, 3));
        // The platform read the whole body before the connection broke.
        let body = platform.log().of(Kind::Api)[0].body.clone();
        assert!(body.ends_with(b"}") && body.windows(6).any(|w| w == b"file-1"), "{body:?}");
        assert_eq!(sleeper.delays().len(), 2, "the lookups' backoffs; the create itself never waited to be resent");
        platform.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_create_that_times_out_after_the_body_is_sent_once() {
    bounded(async {
        let platform = Platform::start_async(|call: Call| async move {
            match call.kind {
                Kind::Api => std::future::pending().await,
                _ => tokens(&call),
            }
        })
        .await;
        let sleeper = RecordingSleeper::default();
        let mut config = config(&platform.base_url(), &sleeper);
        config.transport.request_timeout = Duration::from_millis(200);
        let client = Client::new(config).unwrap();

        let err = client.create_software_upgrade_task(&create_task()).await.unwrap_err();

        assert_may_exist(&err, "CreateSoftwareUpgradeTask");
        assert!(
            matches!(err.cause(), Error::Timeout(Some(TransportError::Timeout { phase: TimeoutPhase::Response, .. }))),
            "{err:?}"
        );
        // Sent once; the lookups for the task that followed (three attempts) timed out too.
        assert_eq!(creates_and_lookups(&platform), (1, 3));
        assert!(platform.log().of(Kind::Api)[0].body.ends_with(b"}"));
        assert_eq!(sleeper.delays().len(), 2, "the lookups' backoffs; the create itself never waited to be resent");
        platform.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_call_deadline_during_a_create_attempt_says_the_task_may_exist() {
    bounded(async {
        let platform = Platform::start_async(|call: Call| async move {
            match call.kind {
                Kind::Api => std::future::pending().await,
                _ => tokens(&call),
            }
        })
        .await;
        let sleeper = RecordingSleeper::default();
        let client =
            Client::new(config(&platform.base_url(), &sleeper).with_call_timeout(Duration::from_millis(300))).unwrap();
        client.login().await.unwrap();

        let err = client.create_software_upgrade_task(&create_task()).await.unwrap_err();

        assert_may_exist(&err, "CreateSoftwareUpgradeTask");
        assert!(matches!(err.cause(), Error::Timeout(None)), "{err:?}");
        assert_eq!(platform.log().count(Kind::Api), 1);
        platform.stop().await;
    })
    .await;
}

/// A refused connection is classified by the transport as nothing sent, so the failed create certainly did not
/// create the task. (The answers that prove a refusal, and a request that breaks the contract, are choreography:
/// iot-sim's `a_create_refused_with_a_platform_code_certainly_did_not_create_the_task`.)
#[tokio::test]
async fn a_create_that_cannot_connect_certainly_did_not_create_the_task() {
    bounded(async {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let sleeper = RecordingSleeper::default();
        let client =
            Client::new(config(&format!("http://{addr}"), &sleeper).with_retry(RetryPolicy::disabled())).unwrap();
        let err = client.create_software_upgrade_task(&create_task()).await.unwrap_err();
        assert!(matches!(err, Error::Connect(_)), "{err:?}");
        assert!(!err.outcome_unknown() && !err.platform_may_have_acted(), "{err:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// One renewal shared by real tasks (the driver's wakeups), and calls cancelled mid-renewal (its drop guard)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_share_one_login() {
    bounded(async {
        let platform = Platform::start_async(|call: Call| async move {
            match call.kind {
                Kind::Login => {
                    // Holding the answer gives the other calls time to queue behind the session lock; a
                    // client without single flight would send its own login meanwhile.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    tokens(&call)
                }
                Kind::Api => ok::<QueryUpgradeTask>(&operation("op-1")),
                _ => tokens(&call),
            }
        })
        .await;
        let (client, _sleeper) = client(&platform);

        let mut calls = JoinSet::new();
        for _ in 0..CALLS {
            let client = client.clone();
            calls.spawn(async move { client.query_upgrade_task(&query()).await });
        }
        while let Some(joined) = calls.join_next().await {
            joined.unwrap().unwrap();
        }

        let log = platform.log();
        assert_eq!(log.count(Kind::Login), 1);
        assert_eq!(log.count(Kind::Refresh), 0);
        let api = log.of(Kind::Api);
        assert_eq!(api.len(), CALLS);
        assert!(api.iter().all(|s| s.bearer() == Some(access_token(1).as_str())));
        platform.stop().await;
    })
    .await;
}

/// Makes the access token due for a refresh the moment it arrives: a login answering `expiresIn` 0 with no
/// floor on the lifetime puts the refresh deadline at the time of the login.
fn refresh_at_once() -> SessionConfig {
    SessionConfig::new().with_min_token_lifetime(Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_during_renew_token_wait_for_it_and_use_the_new_token() {
    bounded(async {
        let held = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (arrived, go) = (held.clone(), release.clone());
        let platform = Platform::start_async(move |call: Call| {
            let (arrived, go) = (arrived.clone(), go.clone());
            async move {
                match call.kind {
                    Kind::Refresh => {
                        arrived.notify_one();
                        go.notified().await;
                        tokens(&call)
                    }
                    Kind::Api => ok::<QueryUpgradeTask>(&operation("op-1")),
                    _ => tokens(&call),
                }
            }
        })
        .await;
        let (client, _sleeper) = client(&platform);
        client.login().await.unwrap();

        let renewing = tokio::spawn({
            let client = client.clone();
            async move { client.renew_token().await }
        });
        held.notified().await;
        // The refresh is on the wire and holds the session lock: these calls must wait for it.
        let mut calls = JoinSet::new();
        for _ in 0..CALLS {
            let client = client.clone();
            calls.spawn(async move { client.query_upgrade_task(&query()).await });
        }
        release.notify_one();
        renewing.await.unwrap().unwrap();
        while let Some(result) = calls.join_next().await {
            result.unwrap().unwrap();
        }

        let log = platform.log();
        assert_eq!(log.count(Kind::Login), 1);
        assert_eq!(log.count(Kind::Refresh), 1);
        assert_eq!(log.count(Kind::Api), CALLS);
        assert!(log.of(Kind::Api).iter().all(|s| s.bearer() == Some(access_token(2).as_str())));
        platform.stop().await;
    })
    .await;
}

/// Runs `call` until the server reports that the request it holds has arrived, then drops the call
/// mid-flight; waiting for the report rather than a fixed time keeps this right on a loaded machine.
async fn drop_once_held<T: std::fmt::Debug>(call: impl Future<Output = T>, held: &Notify) {
    tokio::select! {
        () = held.notified() => {}
        outcome = call => panic!("the call ended while its request was held: {outcome:?}"),
    }
}

#[tokio::test]
async fn a_call_dropped_during_its_login_leaves_the_session_usable() {
    bounded(async {
        let held = Arc::new(Notify::new());
        let arrived = held.clone();
        let platform = Platform::start_async(move |call: Call| {
            let arrived = arrived.clone();
            async move {
                match call.kind {
                    // The first login is never answered; the server's shutdown ends it.
                    Kind::Login if call.n == 0 => {
                        arrived.notify_one();
                        std::future::pending().await
                    }
                    Kind::Api => ok::<QueryUpgradeTask>(&operation("op-1")),
                    _ => tokens(&call),
                }
            }
        })
        .await;
        let (client, _sleeper) = client(&platform);

        drop_once_held(client.query_upgrade_task(&query()), &held).await;
        // Reading the state takes the session lock, so this also shows the dropped call released it.
        assert_eq!(client.session_state().await, SessionState::NoToken);

        client.query_upgrade_task(&query()).await.unwrap();
        client.query_upgrade_task(&query()).await.unwrap();

        let log = platform.log();
        assert_eq!(log.kinds(), [Kind::Login, Kind::Login, Kind::Api, Kind::Api]);
        assert!(log.of(Kind::Api).iter().all(|s| s.bearer() == Some(access_token(2).as_str())));
        platform.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_call_dropped_during_its_refresh_leaves_the_session_usable() {
    bounded(async {
        let held = Arc::new(Notify::new());
        let arrived = held.clone();
        let platform = Platform::start_async(move |call: Call| {
            let arrived = arrived.clone();
            async move {
                match call.kind {
                    Kind::Login => token_answer(call.issued + 1, 0),
                    Kind::Refresh if call.n == 0 => {
                        arrived.notify_one();
                        std::future::pending().await
                    }
                    Kind::Refresh => token_answer(call.issued + 1, HOUR),
                    _ => ok::<QueryUpgradeTask>(&operation("op-1")),
                }
            }
        })
        .await;
        let sleeper = RecordingSleeper::default();
        let client = Client::new(config(&platform.base_url(), &sleeper).with_session(refresh_at_once())).unwrap();

        drop_once_held(client.query_upgrade_task(&query()), &held).await;
        // Reading the state takes the session lock, so this also shows the dropped call released it.
        assert_eq!(client.session_state().await, SessionState::Expired);

        client.query_upgrade_task(&query()).await.unwrap();

        let log = platform.log();
        assert_eq!(log.kinds(), [Kind::Login, Kind::Refresh, Kind::Refresh, Kind::Api]);
        assert_eq!(log.of(Kind::Api)[0].bearer(), Some(access_token(3).as_str()));
        platform.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Timeouts

#[tokio::test]
async fn a_silent_server_times_out_the_attempt() {
    bounded(async {
        let silent = SilentListener::start().await;
        let sleeper = RecordingSleeper::default();
        let mut config = config(&format!("http://{}", silent.addr), &sleeper).with_retry(RetryPolicy::disabled());
        config.transport.request_timeout = Duration::from_millis(200);
        let client = Client::new(config).unwrap();

        let started = Instant::now();
        let result = client.query_upgrade_task(&query()).await;
        let elapsed = started.elapsed();

        // The login is the first exchange, so it is the one that times out.
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::Timeout(Some(TransportError::Timeout { phase: TimeoutPhase::Response, .. }))),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert_error_hides_secrets(&err);
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        silent.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unanswered_call_times_out_once_with_retries_disabled() {
    bounded(async {
        let platform = Platform::start_async(|call: Call| async move {
            match call.kind {
                Kind::Api => std::future::pending().await,
                _ => tokens(&call),
            }
        })
        .await;
        let sleeper = RecordingSleeper::default();
        let mut config = config(&platform.base_url(), &sleeper).with_retry(RetryPolicy::disabled());
        config.transport.request_timeout = Duration::from_millis(200);
        let client = Client::new(config).unwrap();

        let started = Instant::now();
        let err = client.query_upgrade_task(&query()).await.unwrap_err();
        let elapsed = started.elapsed();

        assert!(matches!(err, Error::Timeout(Some(TransportError::Timeout { .. }))), "{err:?}");
        assert!(err.is_retryable());
        assert_error_hides_secrets(&err);
        assert!(err.request_may_have_been_sent());
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert_eq!(platform.log().count(Kind::Api), 1);
        assert!(sleeper.delays().is_empty());
        platform.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_call_deadline_bounds_retries_of_timeouts() {
    bounded(async {
        let platform = Platform::start_async(|call: Call| async move {
            match call.kind {
                Kind::Api => std::future::pending().await,
                _ => tokens(&call),
            }
        })
        .await;
        let sleeper = RecordingSleeper::default();
        // The real clock: this test is about a deadline in real time, spent by real timeouts and real waits.
        let mut config = config(&platform.base_url(), &sleeper)
            .with_clock(Arc::new(iot_hyper::TokioClock))
            .with_retry(RetryPolicy::new().with_max_attempts(1000))
            .with_call_timeout(Duration::from_millis(500));
        config.transport.request_timeout = Duration::from_millis(150);
        let client = Client::new(config).unwrap();
        // Logging in first leaves the whole deadline to the attempts of the call.
        client.login().await.unwrap();

        let started = Instant::now();
        let err = client.query_upgrade_task(&query()).await.unwrap_err();
        let elapsed = started.elapsed();

        assert!(matches!(err, Error::Timeout(None)), "{err:?}");
        assert!(err.is_retryable());
        assert_error_hides_secrets(&err);
        assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
        assert!(elapsed <= Duration::from_secs(1), "{elapsed:?}");
        // The attempts were retried until the deadline cut the call short.
        let attempts = platform.log().count(Kind::Api);
        assert!((2..=4).contains(&attempts), "{attempts} attempts");
        assert!(sleeper.delays().is_empty(), "the virtual clock was not used");
        platform.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Body limit and redirects

#[tokio::test]
async fn an_answer_over_the_body_limit_is_a_transport_error() {
    bounded(async {
        let platform = Platform::start(|call| match call.kind {
            Kind::Api => Response::new(vec![b'x'; 2 * MIB]),
            _ => tokens(call),
        })
        .await;
        let sleeper = RecordingSleeper::default();
        let config = config(&platform.base_url(), &sleeper);
        let transport = config.transport.clone().with_max_body_bytes(MIB);
        let client = Client::new(config.with_transport(transport)).unwrap();

        let err = client.query_upgrade_task(&query()).await.unwrap_err();

        assert!(matches!(err, Error::Transport(TransportError::BodyTooLarge { limit: MIB, .. })), "{err:?}");
        assert!(!err.is_retryable());
        assert_error_hides_secrets(&err);
        assert_eq!(platform.log().count(Kind::Api), 1);
        assert!(sleeper.delays().is_empty());
        platform.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_leaks_no_credentials() {
    bounded(async {
        let elsewhere = Platform::start(|_| Response::new(Vec::new())).await;
        let target = format!("{}/iodm/northbound/v1.5.0/operations/op-1", elsewhere.base_url());
        let platform = Platform::start(move |call| match call.kind {
            Kind::Api => {
                Response::builder().status(StatusCode::FOUND).header("location", &target).body(Vec::new()).unwrap()
            }
            _ => tokens(call),
        })
        .await;
        let (client, sleeper) = client(&platform);

        let result = client.query_upgrade_task(&query()).await;

        let err = result.as_ref().map(|_| ()).unwrap_err();
        assert!(!err.is_retryable());
        assert_error_hides_secrets(err);
        assert!(mentions(err, "redirects are not followed"), "{err}");
        assert_eq!(platform_error(result).status, StatusCode::FOUND);
        assert_eq!(platform.log().count(Kind::Api), 1);
        assert!(sleeper.delays().is_empty());
        assert!(elsewhere.log().all().is_empty(), "the redirect target was contacted");
        platform.stop().await;
        elsewhere.stop().await;
    })
    .await;
}

/// Whether the error or one of its causes says `words`.
fn mentions(error: &Error, words: &str) -> bool {
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = cause {
        if e.to_string().contains(words) {
            return true;
        }
        cause = e.source();
    }
    false
}

// ---------------------------------------------------------------------------------------------------------
// Paging

/// Answers a listing of `total` tasks honouring `pageNo` and `pageSize`.
fn listing(call: &Call, total: usize) -> Response<Vec<u8>> {
    let page_no: usize = call.query("pageNo").unwrap().parse().unwrap();
    let page_size: usize = call.query("pageSize").unwrap().parse().unwrap();
    let start = page_no.saturating_mul(page_size).min(total);
    let end = start.saturating_add(page_size).min(total);
    let items = (start..end).map(|i| operation(&format!("op-{i}"))).collect();
    let page = OperationPage::from_items(page_no as u32, page_size as u32, total as u64, items);
    ok::<QueryUpgradeTaskList>(&page)
}

fn ids(items: &[iot_model::OperationInfo]) -> Vec<String> {
    items.iter().map(|i| i.operation_id.as_str().to_owned()).collect()
}

#[tokio::test]
async fn items_yields_every_item_once() {
    bounded(async {
        const TOTAL: usize = 23;
        let platform = Platform::start(|call| match call.kind {
            Kind::Api => listing(call, TOTAL),
            _ => tokens(call),
        })
        .await;
        let (client, _sleeper) = client(&platform);

        let items: Vec<_> = client.items(QueryUpgradeTaskList::new().with_page_size(5)).try_collect().await.unwrap();

        let expected: Vec<String> = (0..TOTAL).map(|i| format!("op-{i}")).collect();
        assert_eq!(ids(&items), expected);
        let requested: Vec<(String, String)> = platform
            .log()
            .of(Kind::Api)
            .iter()
            .map(|s| (s.query("pageNo").unwrap(), s.query("pageSize").unwrap()))
            .collect();
        let five = || "5".to_owned();
        assert_eq!(requested, (0..5).map(|n| (n.to_string(), five())).collect::<Vec<_>>());
        assert_eq!(platform.log().count(Kind::Login), 1);
        platform.stop().await;
    })
    .await;
}

/// The walker refuses the page size before any request (iot-sim's
/// `an_invalid_page_size_fails_the_walk_before_any_request`); this is the adapters' side: the refusal is yielded
/// once as `Error::Paging`, then both streams end.
#[tokio::test]
async fn the_streams_yield_an_invalid_page_size_once_and_end() {
    bounded(async {
        let platform = Platform::start(tokens).await;
        let (client, _sleeper) = client(&platform);

        for size in [0, 101] {
            let mut pages = std::pin::pin!(client.pages(QueryUpgradeTaskList::new().with_page_size(size)));
            let first = pages.next().await.expect("an error item");
            assert!(
                matches!(first, Err(Error::Paging(PagerError::PageSizeOutOfRange { value, .. })) if value == size),
                "{first:?}"
            );
            assert_error_hides_secrets(first.as_ref().unwrap_err());
            assert!(pages.next().await.is_none(), "the walk goes on after its error");

            let mut items = std::pin::pin!(client.items(QueryUpgradeTaskList::new().with_page_size(size)));
            assert!(matches!(items.next().await, Some(Err(Error::Paging(_) | Error::Invalid(_)))));
            assert!(items.next().await.is_none());
        }
        assert!(platform.log().all().is_empty(), "{:?}", platform.log().kinds());
        platform.stop().await;
    })
    .await;
}

/// A failed call ends the walk (iot-sim's `a_failed_page_ends_the_walk_as_failed`); this is the adapter's side:
/// the call's error is the stream's last item and no page is asked for after it.
#[tokio::test]
async fn an_error_in_the_middle_of_a_walk_ends_it() {
    bounded(async {
        let platform = Platform::start(|call| match call.kind {
            Kind::Api if call.n == 1 => api_error(ErrorCode::PageOutOfRange, "page out of range"),
            Kind::Api => listing(call, 100),
            _ => tokens(call),
        })
        .await;
        let (client, _sleeper) = client(&platform);

        let pages: Vec<_> = client.pages(QueryUpgradeTaskList::new().with_page_size(10)).collect().await;

        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].as_ref().unwrap().data.len(), 10);
        assert_error_hides_secrets(pages[1].as_ref().unwrap_err());
        assert!(matches!(&pages[1], Err(Error::Api(api)) if api.code == Some(ErrorCode::PageOutOfRange)));
        assert_eq!(platform.log().count(Kind::Api), 2);
        platform.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Secrets

#[tokio::test]
async fn credentials_travel_exactly_where_the_contract_puts_them_and_print_nowhere() {
    bounded(async {
        let platform = Platform::start(|call| match call.kind {
            Kind::Api => ok::<QueryUpgradeTask>(&operation("op-1")),
            _ => tokens(call),
        })
        .await;
        let (client, _sleeper) = client(&platform);

        client.query_upgrade_task(&query()).await.unwrap();
        client.create_software_upgrade_task(&create_task()).await.unwrap();
        client.logout().await.unwrap();

        assert_hidden("ClientConfig Debug", &format!("{:?}", client.config()));
        assert_hidden("Client Debug", &format!("{client:?}"));
        assert!(format!("{client:?}").contains(APP_ID));

        let log = platform.log();
        assert_eq!(log.kinds(), [Kind::Login, Kind::Api, Kind::Api, Kind::Logout]);
        let login = &log.of(Kind::Login)[0];
        assert_eq!(login.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(login.header("authorization"), None);
        assert_eq!(login.header("app_key"), None);
        let form = iot_proto::server::query_pairs(Some(std::str::from_utf8(&login.body).unwrap())).unwrap();
        assert_eq!(form, [("appId".to_owned(), APP_ID.to_owned()), ("secret".to_owned(), SECRET.to_owned())]);
        let bearer = format!("Bearer {}", access_token(1));
        for seen in log.of(Kind::Api).iter().chain(&log.of(Kind::Logout)) {
            assert_eq!(seen.headers.get_all("app_key").iter().collect::<Vec<_>>(), [APP_ID]);
            assert_eq!(seen.headers.get_all("authorization").iter().collect::<Vec<_>>(), [bearer.as_str()]);
            // The secret goes to login only.
            assert!(!String::from_utf8_lossy(&seen.body).contains(SECRET));
        }
        platform.stop().await;
    })
    .await;
}
