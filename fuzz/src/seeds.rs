//! Seeds for every target, derived at run time from the golden payloads (`crates/iot-proto/tests/fixtures`) and
//! from a scripted session with the simulator, so no generated corpus is committed and the seeds follow the
//! spec as it changes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iot_model::{
    AccessToken, AppId, AppSecret, BatchTaskRequest, BatchTaskType, Command, DeviceCmdParam, DeviceCmdType, FileType,
    LoginForm, LogoutRequest, OperateDevices, RefreshTokenRequest,
};
use iot_proto::*;
use iot_sim::sim::{DEFAULT_APP_ID, DEFAULT_SECRET, SimConfig, Simulator};

use crate::input::{write_request, write_response};

/// The golden payloads' folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/iot-proto/tests/fixtures")
}

/// The seeds of the target named `name` (empty for an unknown name).
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let session = Session::record();
    let mut out = match name {
        "response_auth" | "response_upgrade" | "response_batch" => answers(&session),
        "probe_error_body" => bodies(),
        "request_router" => session.requests.iter().map(|(_, r)| r.clone()).collect(),
        "sim_handle" => sim_scripts(&session),
        "timestamp" => {
            ["20151212T121212Z", "20160229T235959Z", "00000101T000000Z", "99991231T235959Z", "20150230T000000Z"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect()
        }
        "ids" => ["sim-app", "dev-0001", ".", "..", "a/b?c#d", "日本語", "tab\there", "x"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        "query" => session
            .requests
            .iter()
            .filter_map(|(_, r)| crate::input::request(r).and_then(|r| r.uri().query().map(|q| q.as_bytes().to_vec())))
            .chain([b"pageNo=0&pageSize=100&status=FAIL+ED&x=%E6%97%A5".to_vec(), b"a&&b=&=c&%zz=1".to_vec()])
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// Every fixture's bytes, in name order.
fn fixtures() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e != "md"));
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Bodies for the error probe: the fixtures and the simulator's answers.
fn bodies() -> Vec<Vec<u8>> {
    let mut out = fixtures();
    out.extend(Session::record().answers.into_iter().map(|(_, body)| body));
    out
}

/// Answers for the decoders: every body under a success, and the error-looking ones under error statuses too.
fn answers(session: &Session) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for body in fixtures() {
        out.push(write_response(200, &body));
        for status in [400, 401, 429, 502] {
            out.push(write_response(status, &body));
        }
    }
    for (status, body) in &session.answers {
        out.push(write_response(*status, body));
    }
    out
}

/// Scripts for the simulator: the whole session with its credentials as placeholders, and each request alone.
fn sim_scripts(session: &Session) -> Vec<Vec<u8>> {
    let placeholders = |r: &[u8]| {
        let mut r = r.to_vec();
        for (secret, placeholder) in [(&session.token, &b"$TOKEN"[..]), (&session.refresh, &b"$REFRESH"[..])] {
            if !secret.is_empty() {
                r = replace(&r, secret, placeholder);
            }
        }
        r
    };
    let steps: Vec<Vec<u8>> = session.requests.iter().map(|(_, r)| placeholders(r)).collect();
    let mut out = steps.clone();
    // The session in order, a minute between calls as when it was recorded (the token lives an hour).
    let mut whole = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            whole.extend_from_slice(b"\n===\n+60\n");
        }
        whole.extend_from_slice(step);
    }
    out.push(whole);
    out
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = crate::input::find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A scripted session with the simulator (the same simulator `sim_handle` builds): every endpoint called once
/// with real ids, each request in the text form of [`crate::input::request`] and each answer's status and body.
struct Session {
    requests: Vec<(EndpointId, Vec<u8>)>,
    answers: Vec<(u16, Vec<u8>)>,
    token: Vec<u8>,
    refresh: Vec<u8>,
}

impl Session {
    fn record() -> Self {
        let mut s = Self { requests: Vec::new(), answers: Vec::new(), token: Vec::new(), refresh: Vec::new() };
        // Seeds are a convenience: if the client side refuses a request here, the other seeds still count.
        let _ = s.script();
        s
    }

    fn script(&mut self) -> Option<()> {
        let sim = Simulator::new(SimConfig::default().with_fleet_size(4).with_seed(7));
        // Upgrade tasks must target devices of the package's type and model: use the first device's kind.
        let first = sim.devices().first()?.clone();
        let kind = |d: &iot_sim::sim::Device| (d.device_type.clone(), d.model.clone());
        let devices: Vec<_> =
            sim.devices().iter().filter(|d| kind(d) == kind(&first)).map(|d| d.device_id.clone()).collect();
        let app = AppId::new(DEFAULT_APP_ID).ok()?;
        let base = BaseUrl::parse("https://sim.example").ok()?;
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut r = Recorder { sim, base, app: app.clone(), now, session: self };

        let tokens = r.call(&Login::new(LoginForm::new(app.clone(), AppSecret::new(DEFAULT_SECRET))), None)?;
        let token = tokens.access_token.clone();
        let refresh = tokens.refresh_token.clone()?;
        r.session.token = token.expose_secret().as_bytes().to_vec();
        r.session.refresh = refresh.expose_secret().as_bytes().to_vec();
        let t = Some(&token);

        let packages = r.call(&QueryPackageList::new().with_page_no(0).with_page_size(10), t)?.data;
        let of = |file_type: FileType| {
            packages
                .iter()
                .find(|p| {
                    p.file_type.as_ref() == Some(&file_type)
                        && p.device_type.as_deref() == Some(first.device_type.as_str())
                        && p.model.as_deref() == Some(first.model.as_str())
                })
                .map(|p| p.file_id.clone())
        };
        let (software, firmware) = (of(FileType::SoftwarePackage)?, of(FileType::FirmwarePackage)?);
        r.call(&QueryPackage::new(software.clone()), t)?;
        let targets = OperateDevices::new().with_devices(devices.clone());
        let sw = CreateSoftwareUpgradeTask::new(iot_model::CreateUpgradeTask::new(software, targets.clone()));
        let operation = r.call(&sw, t)?.operation_id;
        r.call(&CreateFirmwareUpgradeTask::new(iot_model::CreateUpgradeTask::new(firmware.clone(), targets)), t)?;
        r.call(&QueryUpgradeTask::new(operation.clone()), t)?;
        r.call(&QuerySubOperations::new(operation).with_page_no(0).with_page_size(2), t)?;
        r.call(&QueryUpgradeTaskList::new().with_page_size(5), t)?;

        let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new(first.device_type, "REBOOT".into()))
            .with_device_list(devices);
        let serde_json::Value::Object(param) = serde_json::to_value(param).ok()? else { return None };
        let body = BatchTaskRequest::new(app.clone(), 10, "reboot".into(), BatchTaskType::DeviceCmd, param);
        let task_id = r.call(&CreateBatchTask::new(body), t)?.task_id;
        r.call(&QueryBatchTask::new(task_id.clone()), t)?;
        r.call(&QueryTaskDetails::new(task_id).with_page_no(0).with_page_size(3), t)?;

        r.call(&DeletePackage::new(firmware), t)?;
        // Renewing revokes the access token, so the logout goes first.
        r.call(&Logout::new(LogoutRequest::new(token.clone())), t)?;
        r.call(&RefreshAccessToken::new(RefreshTokenRequest::new(app, AppSecret::new(DEFAULT_SECRET), refresh)), None)?;
        Some(())
    }
}

/// Sends the session's calls to the simulator, a minute apart, and records them.
struct Recorder<'a> {
    sim: Simulator,
    base: BaseUrl,
    app: AppId,
    now: SystemTime,
    session: &'a mut Session,
}

impl Recorder<'_> {
    /// One call: `None` when the request cannot be built or the answer is not a success.
    fn call<E: Endpoint>(&mut self, ep: &E, token: Option<&AccessToken>) -> Option<E::Response> {
        let auth = token.map(|token| client::BearerAuth { app_id: &self.app, token });
        let req = ep.try_into_http_request(&self.base, auth).ok()?;
        self.session.requests.push((E::META.id, write_request(&req)));
        let answer = self.sim.handle(self.now, req);
        self.session.answers.push((answer.status().as_u16(), answer.body().clone()));
        self.now += Duration::from_secs(60);
        E::try_from_http_response(&answer).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_calls_every_endpoint_and_each_call_succeeds() {
        let s = Session::record();
        let called: Vec<EndpointId> = s.requests.iter().map(|(id, _)| *id).collect();
        for id in EndpointId::ALL {
            assert!(
                called.contains(id),
                "{id:?} is not called by the seed session, which called {called:?} and got {:?}",
                s.answers.iter().map(|(st, b)| format!("{st} {}", String::from_utf8_lossy(b))).collect::<Vec<_>>()
            );
        }
        for (status, body) in &s.answers {
            assert!((200..300).contains(status), "{status}: {}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn every_target_has_seeds_and_runs_them() {
        for t in crate::targets::TARGETS {
            let seeds = seeds(t.name);
            assert!(!seeds.is_empty(), "{} has no seeds", t.name);
            for s in &seeds {
                (t.run)(s);
            }
        }
    }
}
