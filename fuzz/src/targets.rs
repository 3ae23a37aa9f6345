//! The targets' bodies: one plain function per target, run by libFuzzer (`fuzz_targets/`) and by the stable
//! smoke runner (`src/bin/smoke.rs`) alike, so the two never drift apart.
//!
//! A target returns quietly on any input the library handles; it panics only when the library breaks one of
//! its promises (a panic inside the library, or a failed `assert!` here naming the broken promise).

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use iot_model::{AccessToken, AppId, AppSecret, CommandId, DeviceId, FileId, OperationId, SubOperationId, TaskId};
use iot_model::{Timestamp, WireEnum};
use iot_proto::error::{EXCERPT_LIMIT, probe_error_body};
use iot_proto::server::{Router, query_pairs};
use iot_proto::wire::{decode_component, encode_component};
use iot_proto::*;
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};

use crate::input;

/// One fuzz target: its name (also the name of its `fuzz_targets/` binary and corpus folder) and its body.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
}

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "response_auth", run: response_auth },
    Target { name: "response_upgrade", run: response_upgrade },
    Target { name: "response_batch", run: response_batch },
    Target { name: "probe_error_body", run: probe_error },
    Target { name: "request_router", run: request_router },
    Target { name: "sim_handle", run: sim_handle },
    Target { name: "timestamp", run: timestamp },
    Target { name: "ids", run: ids },
    Target { name: "query", run: query },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The auth family's decoders (login, refresh, logout) on one answer (see [`input::response`]).
pub fn response_auth(data: &[u8]) {
    decode_family(data, "auth");
}

/// The upgrade family's decoders (packages and upgrade tasks) on one answer.
pub fn response_upgrade(data: &[u8]) {
    decode_family(data, "upgrade");
}

/// The batch family's decoders on one answer.
pub fn response_batch(data: &[u8]) {
    decode_family(data, "batch");
}

/// Every decoder of one family on one answer: the endpoints come from the spec, so a new one is fuzzed as
/// soon as it is generated.
fn decode_family(data: &[u8], family: &str) {
    let Some(resp) = input::response(data) else { return };
    for id in EndpointId::ALL.iter().filter(|id| id.meta().family == family) {
        id.visit(Decode(&resp));
    }
}

/// Runs [`decode`] with the endpoint an [`EndpointId`] names.
struct Decode<'r, 'b>(&'r http::Response<&'b [u8]>);

impl EndpointVisitor for Decode<'_, '_> {
    type Output = ();

    fn visit<E: Endpoint + Send + 'static>(self) {
        decode::<E>(self.0);
    }
}

/// One endpoint's decoder on one answer, with the promises its documentation makes.
fn decode<E: Endpoint>(resp: &http::Response<&[u8]>) {
    let body: &[u8] = resp.body();
    match E::try_from_http_response(resp) {
        Ok(answer) => {
            assert!(resp.status().is_success(), "{}: a {} answer decoded as a success", E::META.name, resp.status());
            // `parse_response`: a 2xx JSON object carrying `error_code` or `error_desc` at its top level is an
            // error for every endpoint, so no answer may come out of one.
            assert!(
                probe_error_body(body).is_none(),
                "{}: an error object decoded as an answer: {answer:?}",
                E::META.name
            );
            // What the server side writes for the answer reads back, and writing that again changes nothing:
            // the tolerant reader's output is a fixed point of the canonical writer.
            let written = E::try_into_http_response(&answer);
            let again = E::try_from_http_response(&written).unwrap_or_else(|e| {
                panic!("{}: the canonical form of {answer:?} does not read back: {e}", E::META.name)
            });
            let rewritten = E::try_into_http_response(&again);
            assert_eq!(written.body(), rewritten.body(), "{}: writing is not stable", E::META.name);
        }
        Err(e) => {
            let shown = e.to_string();
            match &e {
                FromHttpResponseError::Api(api) => {
                    assert_eq!(api.status, resp.status(), "{}: the error lost the answer's status", E::META.name);
                    if let Some(ex) = &api.body_excerpt {
                        assert!(ex.chars().count() <= EXCERPT_LIMIT + 3, "{}: unbounded excerpt", E::META.name);
                    }
                    // Classification reads only the code and the status; it must settle on something.
                    let _ = (api.class(), api.proves_refusal(), api.is_retryable());
                }
                FromHttpResponseError::Decode(d) => {
                    assert!(resp.status().is_success(), "{}: a decode error for a non-2xx answer", E::META.name);
                    if E::META.secret_response {
                        // The answer carries tokens: a decode error quotes none of it, in any field.
                        assert!(d.body_excerpt.starts_with("[redacted"), "{}: {shown}", E::META.name);
                        assert!(d.message.starts_with("[redacted"), "{}: {shown}", E::META.name);
                    } else {
                        assert!(d.body_excerpt.chars().count() <= EXCERPT_LIMIT + 3, "{}: unbounded", E::META.name);
                    }
                }
                _ => {}
            }
        }
    }
}

/// `probe_error_body` and `ApiError::from_body` on any body.
pub fn probe_error(data: &[u8]) {
    let probed = probe_error_body(data);
    if let Ok(serde_json::Value::Object(members)) = serde_json::from_slice::<serde_json::Value>(data) {
        // The probe's cheap refusals (first byte) must never refuse what the full reading accepts.
        assert_eq!(probed, iot_proto::error::error_members(&members), "probe and error_members disagree");
    } else if std::str::from_utf8(data).is_err() {
        // JSON is UTF-8: a body that is not is never an error object.
        assert!(probed.is_none(), "an error read from a body that is not UTF-8");
    }
    // Otherwise the probe may read an error object a strict reader refuses: it skips the members it does not
    // need without checking their escapes (a lone surrogate, say), which is the tolerant reading we want.
    let error = ApiError::from_body(http::StatusCode::BAD_REQUEST, data);
    let _ = (error.to_string(), error.class(), error.proves_refusal());
    match probed {
        Some((code, description)) => {
            assert_eq!((error.code, error.description), (code, description));
        }
        None => {
            let excerpt = error.body_excerpt.unwrap_or_default();
            assert!(excerpt.chars().count() <= EXCERPT_LIMIT + 3, "unbounded excerpt");
        }
    }
}

/// The router and every endpoint's `try_from_http_request` on one request (see [`input::request`]).
pub fn request_router(data: &[u8]) {
    static ROUTER: LazyLock<Router> = LazyLock::new(Router::new);
    let Some(req) = input::request(data) else { return };
    let routed = ROUTER.route(req.method(), req.uri().path()).map(|r| r.endpoint);
    if let Ok(id) = routed {
        assert_eq!(&id.meta().method, req.method(), "routed to an endpoint of another method");
    }
    parse::<Login>(&req, routed);
    parse::<RefreshAccessToken>(&req, routed);
    parse::<Logout>(&req, routed);
    parse::<QueryPackageList>(&req, routed);
    parse::<QueryPackage>(&req, routed);
    parse::<DeletePackage>(&req, routed);
    parse::<CreateSoftwareUpgradeTask>(&req, routed);
    parse::<CreateFirmwareUpgradeTask>(&req, routed);
    parse::<QueryUpgradeTask>(&req, routed);
    parse::<QuerySubOperations>(&req, routed);
    parse::<QueryUpgradeTaskList>(&req, routed);
    parse::<CreateBatchTask>(&req, routed);
    parse::<QueryBatchTask>(&req, routed);
    parse::<QueryTaskDetails>(&req, routed);
}

/// One endpoint's request parser, with the symmetry the server and client sides promise.
fn parse<E: Endpoint>(req: &http::Request<Vec<u8>>, routed: Result<EndpointId, server::RouteError>) {
    static BASE: LazyLock<Option<BaseUrl>> = LazyLock::new(|| BaseUrl::parse("https://fuzz.example:8743").ok());
    match E::try_from_http_request(req) {
        Ok(ep) => {
            // A request an endpoint accepts under its own method is routed to it: the router and the parser
            // agree on which paths belong to whom.
            if req.method() == E::META.method {
                assert_eq!(routed, Ok(E::META.id), "{} accepts {} but the router disagrees", E::META.name, req.uri());
            }
            // The typed request is all the request means: the client side builds it back into a request that
            // reads as the same value.
            let (Some(base), Ok(app)) = (BASE.as_ref(), AppId::new("fuzz-app")) else { return };
            let token = AccessToken::new("fuzz-token");
            let built = ep
                .try_into_http_request(base, Some(client::BearerAuth { app_id: &app, token: &token }))
                .unwrap_or_else(|e| panic!("{}: an accepted request does not build: {e}; {ep:?}", E::META.name));
            let back = E::try_from_http_request(&built)
                .unwrap_or_else(|e| panic!("{}: a built request does not read back: {e}; {built:?}", E::META.name));
            assert_eq!(back, ep, "{}: the request changed through the client side", E::META.name);
        }
        Err(e) => {
            let answer = server::error_response(&e);
            assert!(!answer.status().is_success(), "{}: a rejection answered {}", E::META.name, answer.status());
            let _ = e.to_string();
        }
    }
}

/// The simulator end to end: a login by the harness, then the requests of the input, separated by lines of
/// `===`. In each request `$TOKEN`, `$REFRESH` and `$APP` stand for the live access token, refresh token and
/// app id, so the fuzzer reaches the authenticated endpoints. A first line `+SECS` moves the clock on.
pub fn sim_handle(data: &[u8]) {
    // The simulator is built and logged into once; every input starts from a clone of that state, which is the
    // same as building it again (the simulator is a pure function of its seed and its requests) at a fraction of
    // the cost, so the run reaches more inputs.
    /// A logged-in simulator, with the access and refresh tokens it issued.
    type LoggedIn = Option<(Simulator, Vec<u8>, Vec<u8>)>;
    static LOGGED_IN: std::sync::OnceLock<LoggedIn> = std::sync::OnceLock::new();
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let Some((template, token, refresh)) = LOGGED_IN.get_or_init(|| {
        // A small fleet keeps a run cheap; the paging and task code is the same for 4 devices as for 300.
        let mut sim = Simulator::new(SimConfig::default().with_fleet_size(4).with_seed(7));
        let tokens = Login::try_from_http_response(&sim.handle(start, harness_login()?))
            .unwrap_or_else(|e| panic!("the simulator refused the harness's login: {e}"));
        let token = tokens.access_token.expose_secret().as_bytes().to_vec();
        let refresh = tokens.refresh_token.map(|t| t.expose_secret().as_bytes().to_vec()).unwrap_or_default();
        Some((sim, token, refresh))
    }) else {
        return;
    };
    let (mut sim, token, refresh) = (template.clone(), token.clone(), refresh.clone());
    let mut now = start;
    for part in split(data, b"\n===\n") {
        let part = substitute(
            &substitute(&substitute(part, b"$TOKEN", &token), b"$REFRESH", &refresh),
            b"$APP",
            DEFAULT_APP_ID.as_bytes(),
        );
        let (advance, rest) = clock_line(&part);
        now = now.checked_add(Duration::from_secs(advance)).unwrap_or(now);
        let Some(req) = input::request(rest) else { continue };
        let answer = sim.handle(now, req);
        check_sim_answer(&answer);
    }
}

/// The login the harness sends first, with the simulator's default credentials.
fn harness_login() -> Option<http::Request<Vec<u8>>> {
    let base = BaseUrl::parse("https://sim.example").ok()?;
    let form = iot_model::LoginForm::new(AppId::new(DEFAULT_APP_ID).ok()?, AppSecret::new(DEFAULT_SECRET));
    Login::new(form).try_into_http_request(&base, None).ok()
}

/// The simulator answers like the platform: a JSON body (or none), and never an internal error unless a fault
/// was asked for (this harness asks for none).
fn check_sim_answer(answer: &http::Response<Vec<u8>>) {
    assert_ne!(answer.status(), http::StatusCode::INTERNAL_SERVER_ERROR, "the simulator failed: {answer:?}");
    let body = answer.body();
    if !body.is_empty() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(body).is_ok(),
            "the simulator answered no JSON: {answer:?}"
        );
    }
    if !answer.status().is_success() {
        assert!(probe_error_body(body).is_some(), "an error answer without the platform's error body: {answer:?}");
    }
}

/// The timestamp parser against a plain reading of the format, and its round trip.
pub fn timestamp(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let parsed = Timestamp::parse(s);
    assert_eq!(parsed.as_ref().ok().copied(), reference_timestamp(s), "the word-wise parser disagrees on {s:?}");
    if let Ok(t) = parsed {
        assert_eq!(t.to_string(), s, "a timestamp does not print as it was read");
        assert_eq!(Timestamp::from_unix_seconds(t.unix_seconds()).ok(), Some(t), "unix seconds round trip");
    }
    // Through serde the same text reads the same way.
    let quoted = serde_json::to_string(s).unwrap_or_default();
    assert_eq!(serde_json::from_str::<Timestamp>(&quoted).ok(), parsed.ok(), "serde disagrees on {s:?}");
}

/// `yyyyMMdd'T'HHmmss'Z'` read one field at a time, with the calendar left to `Timestamp::from_parts`.
fn reference_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let field = |r| digits(r).and_then(|v| u8::try_from(v).ok());
    let year = i32::try_from(digits(0..4)?).ok()?;
    Timestamp::from_parts(year, field(4..6)?, field(6..8)?, field(9..11)?, field(11..13)?, field(13..15)?).ok()
}

/// Every id newtype against the plain rules of `iot_model::id::check_id`, and their round trips.
pub fn ids(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let expected = reference_id(s, 256);
    check_id::<AppId>(s, expected, AppId::new(s).map(|v| v.as_str().to_owned()));
    check_id::<FileId>(s, expected, FileId::new(s).map(|v| v.as_str().to_owned()));
    check_id::<OperationId>(s, expected, OperationId::new(s).map(|v| v.as_str().to_owned()));
    check_id::<SubOperationId>(s, expected, SubOperationId::new(s).map(|v| v.as_str().to_owned()));
    check_id::<DeviceId>(s, expected, DeviceId::new(s).map(|v| v.as_str().to_owned()));
    check_id::<TaskId>(s, expected, TaskId::new(s).map(|v| v.as_str().to_owned()));
    check_id::<CommandId>(s, expected, CommandId::new(s).map(|v| v.as_str().to_owned()));
    // The ids travel percent-encoded in paths and queries: the encoding must read back as the id.
    if expected {
        let encoded = encode_component(s);
        assert_eq!(decode_component(&encoded, false).ok().as_deref(), Some(s), "path encoding loses {s:?}");
        assert_eq!(decode_component(&encoded, true).ok().as_deref(), Some(s), "query encoding loses {s:?}");
    }
}

fn check_id<T>(s: &str, expected: bool, got: Result<String, iot_model::ModelError>) {
    let name = std::any::type_name::<T>();
    assert_eq!(got.is_ok(), expected, "{name} and the plain rules disagree on {s:?}");
    if let Ok(v) = got {
        assert_eq!(v, s, "{name} changed the id");
    }
}

/// The id rules read plainly: not empty, not `.` or `..`, no control character, at most `max` characters.
fn reference_id(s: &str, max: usize) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.chars().any(char::is_control) && s.chars().count() <= max
}

/// The server side's query reader: the pairs of a raw query string, and every type a parameter is read as.
pub fn query(data: &[u8]) {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = query_pairs(Some(q)) else { return };
    for (key, value) in &pairs {
        read_all(value);
        // A pair written by the client side's encoder reads back as itself.
        let written = format!("{}={}", encode_component(key), encode_component(value));
        assert_eq!(query_pairs(Some(&written)).ok(), Some(vec![(key.clone(), value.clone())]), "pair {written:?}");
    }
}

/// Reads one decoded value as every query parameter of every paged query and as every wire enum.
fn read_all(v: &str) {
    as_query_params::<QueryPackageList>(v);
    as_query_params::<QuerySubOperations>(v);
    as_query_params::<QueryUpgradeTaskList>(v);
    as_query_params::<QueryTaskDetails>(v);
    wire_enum::<iot_model::FileType>(v);
    wire_enum::<iot_model::OperateType>(v);
    wire_enum::<iot_model::OperationStatus>(v);
    wire_enum::<iot_model::SubOperationStatus>(v);
    wire_enum::<iot_model::ExecuteType>(v);
    wire_enum::<iot_model::BatchTaskType>(v);
    wire_enum::<iot_model::BatchTaskStatus>(v);
    wire_enum::<iot_model::TaskDetailStatus>(v);
    wire_enum::<iot_model::DeviceCmdType>(v);
    wire_enum::<iot_model::BatchSelect>(v);
}

/// `v` as each query parameter of `E` in turn (every type a parameter is read as: numbers, ids, enums, text):
/// a request the server side accepts is written back by the client side as one that reads as the same request.
fn as_query_params<E: Endpoint>(v: &str) {
    static BASE: LazyLock<Option<BaseUrl>> = LazyLock::new(|| BaseUrl::parse("https://fuzz.example").ok());
    let (Some(base), Ok(app)) = (BASE.as_ref(), AppId::new("fuzz-app")) else { return };
    let token = AccessToken::new("fuzz-token");
    let meta = E::META;
    // Path placeholders get a valid id, so that only the query value decides.
    let path: String = meta
        .path
        .split('/')
        .skip(1)
        .map(|seg| if seg.starts_with('{') { "/fuzz-id".to_owned() } else { format!("/{seg}") })
        .collect();
    for param in meta.params.iter().filter(|p| p.location == endpoint::ParamLocation::Query) {
        let uri = format!("{base}{path}?{}={}", encode_component(param.name), encode_component(v));
        let Ok(request) = http::Request::builder().method(meta.method.clone()).uri(uri).body(Vec::new()) else {
            continue;
        };
        let Ok(read) = E::try_from_http_request(&request) else { continue };
        let written = read
            .try_into_http_request(base, Some(BearerAuth { app_id: &app, token: &token }))
            .unwrap_or_else(|e| panic!("{}: {read:?}, read from {v:?}, is refused by the client: {e}", meta.name));
        let again = E::try_from_http_request(&written).unwrap_or_else(|e| {
            panic!("{}: {:?}, written from {read:?}, does not read back: {e}", meta.name, written.uri())
        });
        assert_eq!(again, read, "{}: {} = {v:?} does not read back as itself", meta.name, param.name);
    }
}

/// A wire enum reads any text; an unknown value is kept as received, a known one prints canonically and
/// reads back as itself.
fn wire_enum<T: WireEnum + PartialEq + std::fmt::Debug>(v: &str) {
    let read = T::from_wire(v);
    if read.is_unknown() {
        assert_eq!(read.as_wire(), v, "an unknown value was not kept as received");
    } else {
        assert!(
            read.as_wire().eq_ignore_ascii_case(v)
                || T::TABLE.iter().any(|(_, a)| a.iter().any(|a| a.eq_ignore_ascii_case(v)))
        );
        assert_eq!(T::from_wire(read.as_wire()), read, "the canonical spelling reads as another value");
    }
}

/// Splits `data` at each `sep`.
fn split<'a>(mut data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = input::find(data, sep) {
        parts.push(&data[..at]);
        data = &data[at + sep.len()..];
    }
    parts.push(data);
    parts
}

/// `data` with every `from` replaced by `to`.
fn substitute(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = input::find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// An optional first line `+SECS`: how far to move the clock before the request (at most a year, so a run
/// stays inside the platform's time range).
fn clock_line(part: &[u8]) -> (u64, &[u8]) {
    if let [b'+', rest @ ..] = part {
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let secs = std::str::from_utf8(&rest[..end]).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        return (secs.min(366 * 86_400), rest.get(end + 1..).unwrap_or_default());
    }
    (0, part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_in_a_fuzzed_family() {
        // The families of `response_auth`, `response_upgrade` and `response_batch`.
        const FAMILIES: [&str; 3] = ["auth", "upgrade", "batch"];
        for id in EndpointId::ALL {
            assert!(FAMILIES.contains(&id.meta().family), "{:?} is in no response target", id);
        }
    }
}
