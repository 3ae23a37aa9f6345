//! Helpers of the client tests: a scripted fake platform that logs every request, a sleeper that records
//! instead of sleeping, client builders, and checks that secrets stay out of printed errors.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use iot_hyper::{Client, ClientConfig, Clock, TransportConfig};
use iot_model::{AccessToken, AppId, AppSecret, AuthToken, OperationId, OperationInfo, RefreshToken};
use iot_proto::{ApiError, BaseUrl, Endpoint, ErrorCode, Login, Logout, RefreshAccessToken};
use iot_sim::server::{self, Handler, RunningServer, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Every test body must finish well within this; a hang fails the test instead of blocking the suite.
pub const TEST_LIMIT: Duration = Duration::from_secs(20);

/// The application id; it is not secret and may appear in `Debug` output.
pub const APP_ID: &str = "test-app";

/// Marks every secret the tests hand out (app secret, access and refresh tokens).
pub const SENTINEL: &str = "SENTINEL";

/// The application secret.
pub const SECRET: &str = "app-secret-SENTINEL-5b1e";

/// The lifetime the fake platform gives its tokens unless a test says otherwise, in seconds.
pub const HOUR: u64 = 3600;

/// Runs a test body under [`TEST_LIMIT`].
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, future).await.expect("test exceeded its time limit")
}

/// The access token of the `n`th token pair the fake platform issues (counting from 1).
pub fn access_token(n: usize) -> String {
    format!("access-{SENTINEL}-{n}")
}

/// The refresh token of the `n`th token pair the fake platform issues (counting from 1).
pub fn refresh_token(n: usize) -> String {
    format!("refresh-{SENTINEL}-{n}")
}

/// Which part of the API a request addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    Refresh,
    Logout,
    /// Any authenticated business endpoint.
    Api,
}

fn kind_of(path: &str) -> Kind {
    if path == <Login as Endpoint>::META.path {
        Kind::Login
    } else if path == <RefreshAccessToken as Endpoint>::META.path {
        Kind::Refresh
    } else if path == <Logout as Endpoint>::META.path {
        Kind::Logout
    } else {
        Kind::Api
    }
}

/// What the fake platform saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kind: Kind,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of `Authorization: Bearer <token>`, if the header has exactly that form.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization").and_then(|v| v.strip_prefix("Bearer "))
    }

    /// A decoded query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        query(&self.uri, name)
    }
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    let pairs = iot_proto::server::query_pairs(uri.query()).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// One request handed to a test's answer function.
#[derive(Debug)]
pub struct Call {
    pub kind: Kind,
    /// How many requests of the same kind arrived before this one.
    pub n: usize,
    /// How many login and refresh requests arrived before this one (meaningful for those two kinds).
    pub issued: usize,
    pub req: Request<Bytes>,
}

impl Call {
    /// A decoded query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        query(self.req.uri(), name)
    }
}

/// Every request the fake platform received, in order of arrival.
#[derive(Default)]
pub struct Log {
    seen: Mutex<Vec<Seen>>,
}

impl Log {
    fn record(&self, req: Request<Bytes>) -> Call {
        let kind = kind_of(req.uri().path());
        let mut seen = self.seen.lock().unwrap();
        let n = seen.iter().filter(|s| s.kind == kind).count();
        let issued = seen.iter().filter(|s| matches!(s.kind, Kind::Login | Kind::Refresh)).count();
        seen.push(Seen { kind, uri: req.uri().clone(), headers: req.headers().clone(), body: req.body().clone() });
        Call { kind, n, issued, req }
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests of one kind.
    pub fn of(&self, kind: Kind) -> Vec<Seen> {
        self.all().into_iter().filter(|s| s.kind == kind).collect()
    }

    /// How many requests of one kind arrived.
    pub fn count(&self, kind: Kind) -> usize {
        self.of(kind).len()
    }

    /// The kinds of every request, in order of arrival.
    pub fn kinds(&self) -> Vec<Kind> {
        self.all().iter().map(|s| s.kind).collect()
    }
}

/// A fake platform on 127.0.0.1 answering from a test's script; [`Platform::stop`] ends it.
pub struct Platform {
    server: Server,
    log: Arc<Log>,
}

enum Server {
    Sim(RunningServer),
    Held(HeldServer),
}

impl Platform {
    /// Serves a synchronous script on iot-sim's test server.
    pub async fn start(answer: impl Fn(&Call) -> Response<Vec<u8>> + Send + Sync + 'static) -> Self {
        let log = Arc::new(Log::default());
        let recorder = log.clone();
        let handler: Handler = Arc::new(move |req: Request<Bytes>| answer(&recorder.record(req)));
        let server = server::start(ServerConfig::default(), handler).await.unwrap();
        Self { server: Server::Sim(server), log }
    }

    /// Serves an asynchronous script, for answers that must wait (held logins, barriers, silence).
    pub async fn start_async<F, Fut>(answer: F) -> Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Vec<u8>>> + Send + 'static,
    {
        let log = Arc::new(Log::default());
        let recorder = log.clone();
        let answer = Arc::new(answer);
        let handler: AsyncHandler = Arc::new(move |req| {
            let call = recorder.record(req);
            Box::pin(answer(call))
        });
        Self { server: Server::Held(HeldServer::start(handler).await), log }
    }

    /// Where the platform listens, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.server {
            Server::Sim(server) => server.base_url().to_owned(),
            Server::Held(server) => format!("http://{}", server.addr),
        }
    }

    /// What the platform received so far.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Stops the server and every connection it holds.
    pub async fn stop(self) {
        match self.server {
            Server::Sim(server) => server.shutdown().await,
            Server::Held(server) => server.shutdown().await,
        }
    }
}

type AsyncHandler =
    Arc<dyn Fn(Request<Bytes>) -> Pin<Box<dyn Future<Output = Response<Vec<u8>>> + Send>> + Send + Sync>;

/// A minimal HTTP/1.1 server whose handler is asynchronous, so an answer can be held back; iot-sim's
/// server calls its handler synchronously on a runtime thread, where waiting would stall the runtime.
struct HeldServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HeldServer {
    async fn start(handler: AsyncHandler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops the set, which aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { break };
                        connections.spawn(serve(stream, handler.clone()));
                    }
                }
            }
        });
        Self { addr, task }
    }

    async fn shutdown(mut self) {
        self.task.abort();
        // A join error only says the task was aborted, which is the point.
        let _ = (&mut self.task).await;
    }
}

impl Drop for HeldServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The header that marks a [`hang_up`] answer; it never reaches the client.
const HANG_UP: &str = "x-test-hang-up";

/// An answer that [`Platform::start_async`] turns into closing the connection without a response, after the
/// whole request (body included) was read: the client sees a connection broken after sending.
pub fn hang_up() -> Response<Vec<u8>> {
    Response::builder().header(HANG_UP, "1").body(Vec::new()).unwrap()
}

async fn serve(stream: TcpStream, handler: AsyncHandler) {
    let service = service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let answer = handler(Request::from_parts(parts, body)).await;
            if answer.headers().contains_key(HANG_UP) {
                // A service error makes hyper drop the connection without writing a response.
                return Err("hang up");
            }
            Ok::<_, &str>(answer.map(|b| Full::new(Bytes::from(b))))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
}

/// A TCP listener on 127.0.0.1 that accepts connections, reads nothing and never answers.
pub struct SilentListener {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SilentListener {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Held, not read: the client's request sits in the socket buffer without an answer.
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                if held.len() < 64 {
                    held.push(stream);
                }
            }
        });
        Self { addr, task }
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A virtual clock that records the waits it is asked for and returns at once, moving its time forward.
#[derive(Clone)]
pub struct RecordingSleeper {
    start: Instant,
    state: Arc<Mutex<(Duration, Vec<Duration>)>>,
}

impl Default for RecordingSleeper {
    fn default() -> Self {
        Self { start: Instant::now(), state: Arc::default() }
    }
}

impl RecordingSleeper {
    /// The waits asked for so far, in order.
    pub fn delays(&self) -> Vec<Duration> {
        self.state.lock().unwrap().1.clone()
    }
}

impl Clock for RecordingSleeper {
    fn now(&self) -> Instant {
        self.start + self.state.lock().unwrap().0
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut state = self.state.lock().unwrap();
        let wait = deadline.saturating_duration_since(self.start + state.0);
        state.0 += wait;
        state.1.push(wait);
        Box::pin(std::future::ready(()))
    }
}

/// A configuration for `base_url` with short timeouts, the default retry policy and `sleeper`.
pub fn config(base_url: &str, sleeper: &RecordingSleeper) -> ClientConfig {
    let transport = TransportConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(5));
    ClientConfig::new(BaseUrl::parse(base_url).unwrap(), AppId::new(APP_ID).unwrap(), AppSecret::new(SECRET))
        .with_transport(transport)
        .with_call_timeout(Duration::from_secs(15))
        .with_clock(Arc::new(sleeper.clone()))
}

/// A client for `platform` with [`config`]'s settings, and its sleeper.
pub fn client(platform: &Platform) -> (Client, RecordingSleeper) {
    let sleeper = RecordingSleeper::default();
    let client = Client::new(config(&platform.base_url(), &sleeper)).unwrap();
    (client, sleeper)
}

/// A token answer: the `n`th pair, living `expires_in` seconds.
pub fn token_answer(n: usize, expires_in: u64) -> Response<Vec<u8>> {
    let token = AuthToken::new(expires_in, AccessToken::new(access_token(n)))
        .with_refresh_token(RefreshToken::new(refresh_token(n)))
        .with_token_type("bearer".to_owned());
    Login::try_into_http_response(&token)
}

/// The usual answer to a login or a refresh: the next token pair, valid for an hour.
pub fn tokens(call: &Call) -> Response<Vec<u8>> {
    token_answer(call.issued + 1, HOUR)
}

/// The platform's error answer for `code`, at the code's usual status.
pub fn api_error(code: ErrorCode, description: &str) -> Response<Vec<u8>> {
    iot_proto::server::error_response(&ApiError::new(code, description))
}

/// A successful answer of endpoint `E`.
pub fn ok<E: Endpoint>(answer: &E::Response) -> Response<Vec<u8>> {
    E::try_into_http_response(answer)
}

/// An upgrade task with this id.
pub fn operation(id: &str) -> OperationInfo {
    OperationInfo::new(OperationId::new(id).unwrap())
}

/// Asserts that a printed form contains no secret.
pub fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SENTINEL), "{what} shows a secret: {text}");
}

/// Asserts that neither `Debug` nor `Display` of an error, nor of any of its causes, shows a secret.
pub fn assert_error_hides_secrets(error: &iot_hyper::Error) {
    assert_hidden("error Debug", &format!("{error:?}"));
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    let mut depth = 0;
    while let Some(e) = cause {
        assert_hidden("error Display", &e.to_string());
        assert_hidden("cause Debug", &format!("{e:?}"));
        cause = e.source();
        depth += 1;
        assert!(depth < 32, "cause chain does not end");
    }
}
