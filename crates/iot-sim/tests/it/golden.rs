//! The simulator's answers to a fixed scripted session, byte for byte: status, headers and body of every query
//! endpoint (filters, pages, both task kinds, batch details) at fixed virtual times, hashed against a golden value
//! recorded before the simulator's data structures were reworked for large fleets. Any change to an answer's bytes
//! fails here; set `IOT_SIM_GOLDEN_DUMP=path` to write the whole transcript for a diff.

use iot_sim::sim::{SimConfig, Simulator};

use crate::support::{Harness, T0};

/// FNV-1a, 64 bits: a fixed, dependency-free hash, so the golden value never changes with a library.
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The compact timestamp `secs` after T0.
fn at(secs: u64) -> String {
    let t = iot_model::Timestamp::from_unix_seconds(i64::try_from(T0 + secs).unwrap()).unwrap();
    t.to_string()
}

/// Plays the script and returns the transcript: one block per call, with its request line and whole answer.
fn transcript() -> Vec<u8> {
    let mut h = Harness::ready_with(SimConfig::default().with_seed(7).with_failure_rate(0.3).with_rate_limit(None));
    let mut out = Vec::new();
    let mut call = |h: &mut Harness, method: &str, path: &str, body: &str| -> Vec<u8> {
        let resp = h.raw_authed(method, path, body);
        out.extend_from_slice(format!("> {} {method} {path}\n< {}\n", h.offset, resp.status()).as_bytes());
        for (name, value) in resp.headers() {
            out.extend_from_slice(format!("{name}: ").as_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(resp.body());
        out.push(b'\n');
        resp.body().clone()
    };
    let id_of = |body: &[u8], member: &str| -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v[member].as_str().unwrap_or_else(|| panic!("no {member} in {v}")).to_owned()
    };

    let sim: &Simulator = &h.sim;
    let dev0 = sim.devices()[0].clone();
    let firmware = sim
        .packages()
        .iter()
        .find(|p| p.file_type == Some(iot_model::FileType::FirmwarePackage) && sim.devices_for(p).count() > 0)
        .unwrap()
        .clone();
    let software =
        sim.packages().iter().rfind(|p| p.file_type == Some(iot_model::FileType::SoftwarePackage)).unwrap().clone();
    let fits: Vec<String> = sim.devices_for(&firmware).take(40).map(|d| d.device_id.to_string()).collect();
    let online: Vec<String> = sim.devices_for(&firmware).skip(40).take(12).map(|d| d.device_id.to_string()).collect();
    let (sw_type, sw_model, sw_maker) = (
        software.device_type.clone().unwrap(),
        software.model.clone().unwrap(),
        software.manufacturer_name.clone().unwrap(),
    );
    let mut list = fits.clone();
    list.push(fits[0].clone());
    let list_json = serde_json::to_string(&list).unwrap();
    let online_json = serde_json::to_string(&online).unwrap();

    let up = "/iodm/northbound/v1.5.0/operations";
    let fw = call(
        &mut h,
        "POST",
        &format!("{up}/firmwareUpgrade"),
        &format!(
            r#"{{"fileId":"{}","targets":{{"devices":{list_json}}},"policy":{{"executeType":"now","retryType":true,"retryTimes":2}}}}"#,
            firmware.file_id
        ),
    );
    let fw = id_of(&fw, "operationId");
    let sw = call(
        &mut h,
        "POST",
        &format!("{up}/softwareUpgrade"),
        &format!(
            r#"{{"fileId":"{}","targets":{{"deviceGroups":["north","pilot"],"deviceType":"{sw_type}","model":"{sw_model}","manufacturerName":"{sw_maker}"}}}}"#,
            software.file_id
        ),
    );
    let sw = id_of(&sw, "operationId");
    let custom = call(
        &mut h,
        "POST",
        &format!("{up}/firmwareUpgrade"),
        &format!(
            r#"{{"fileId":"{}","targets":{{"devices":{list_json}}},"policy":{{"executeType":"custom","startTime":"{}","endTime":"{}"}}}}"#,
            firmware.file_id,
            at(600),
            at(1200)
        ),
    );
    let custom = id_of(&custom, "operationId");
    let on = call(
        &mut h,
        "POST",
        &format!("{up}/firmwareUpgrade"),
        &format!(
            r#"{{"fileId":"{}","targets":{{"devices":{online_json}}},"policy":{{"executeType":"device_online","retryType":true,"retryTimes":1}}}}"#,
            firmware.file_id
        ),
    );
    let on = id_of(&on, "operationId");

    let bt = "/iocm/app/batchtask/v1.1.0";
    let cmd = r#""command":{"serviceId":"Meter","method":"RESET","paras":{"level":"a\"b\u00e9"}}"#;
    let app = h.app.to_string();
    let mut batches = Vec::new();
    for (timeout, param) in [
        (10, r#"{"type":"Broadcast",CMD}"#.to_owned()),
        (
            11,
            format!(
                r#"{{"type":"DeviceList","deviceList":["no-such-device",{}],CMD}}"#,
                &list_json[1..list_json.len() - 1]
            ),
        ),
        (30, format!(r#"{{"type":"DeviceType","deviceType":"{}","model":"{}",CMD}}"#, dev0.device_type, dev0.model)),
        (20, r#"{"type":"GroupList","groupList":["south","pilot"],CMD}"#.to_owned()),
    ] {
        let param = param.replace("CMD", cmd);
        let body = format!(
            r#"{{"appId":"{app}","timeout":{timeout},"taskName":"golden {timeout}","taskType":"DeviceCmd","param":{param},"tags":[{{"tagName":"k","tagValue":"v"}}]}}"#
        );
        let resp = call(&mut h, "POST", &format!("{bt}/tasks"), &body);
        batches.push(id_of(&resp, "taskID"));
    }
    let commands = h.sim.batch_command_ids(&iot_model::TaskId::new(batches[1].clone()).unwrap()).unwrap();
    let command = commands[3].to_string();
    let ops = [fw, sw, custom, on];

    for step in [0, 1, 30, 60, 120, 300, 480, 700, 1300, 2400, 7300, 90_000] {
        h.offset = step;
        // Tokens last an hour; a fresh login keeps every query authorised.
        h.login().unwrap();
        let dev = &fits[1];
        for q in [
            String::new(),
            "?pageSize=2".into(),
            "?pageNo=1&pageSize=3".into(),
            "?pageNo=9".into(),
            "?operationType=firmware_upgrade".into(),
            "?operationType=software_upgrade&pageSize=100".into(),
            format!("?deviceType={}&model={}", dev0.device_type, dev0.model),
            format!("?manufacturerName={}", dev0.manufacturer_name.replace(' ', "%20")),
            format!("?deviceId={dev}"),
            format!("?deviceId={dev}&operationStatus=processing"),
        ] {
            call(&mut h, "GET", &format!("{up}{q}"), "");
        }
        for status in ["wait", "processing", "success", "failed", "stop"] {
            call(&mut h, "GET", &format!("{up}?operationStatus={status}&pageSize=100"), "");
        }
        for op in &ops {
            call(&mut h, "GET", &format!("{up}/{op}"), "");
            call(&mut h, "GET", &format!("{up}/{op}/subOperations"), "");
            call(&mut h, "GET", &format!("{up}/{op}/subOperations?pageNo=1&pageSize=7"), "");
            call(&mut h, "GET", &format!("{up}/{op}/subOperations?pageNo=50&pageSize=100"), "");
            for status in ["wait", "processing", "success", "fail", "stop"] {
                call(&mut h, "GET", &format!("{up}/{op}/subOperations?subOperationStatus={status}&pageSize=5"), "");
            }
        }
        call(&mut h, "GET", &format!("{up}/000000000000000000000000"), "");
        call(&mut h, "GET", &format!("{up}/000000000000000000000000/subOperations"), "");
        for task in &batches {
            call(&mut h, "GET", &format!("{bt}/tasks/{task}"), "");
            call(&mut h, "GET", &format!("{bt}/tasks/{task}?select=tag"), "");
            call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}"), "");
            call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}&pageNo=2&pageSize=11"), "");
            call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}&pageNo=99&pageSize=250"), "");
            for status in ["Pending", "WaitResult", "Success", "Fail", "Timeout"] {
                call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}&status={status}&pageSize=4"), "");
            }
            call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}&deviceId={dev}"), "");
            call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}&commandId={command}"), "");
            call(&mut h, "GET", &format!("{bt}/taskDetails?taskId={task}&index=1"), "");
        }
        call(&mut h, "GET", &format!("{bt}/tasks/000000000000000000000000"), "");
        call(&mut h, "GET", &format!("{bt}/taskDetails?taskId=000000000000000000000000"), "");
    }
    out
}

/// The hash of the transcript recorded before the rework; the transcript is about 1.8 MB.
const GOLDEN: u64 = 626_635_979_852_605_597;

#[test]
fn answers_are_byte_identical_to_the_recorded_session() {
    let t = transcript();
    if let Ok(path) = std::env::var("IOT_SIM_GOLDEN_DUMP") {
        std::fs::write(path, &t).unwrap();
    }
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    hash.write(&t);
    assert_eq!(t, transcript(), "the session is not deterministic");
    assert_eq!(hash.0, GOLDEN, "the answers changed ({} bytes of transcript)", t.len());
}
