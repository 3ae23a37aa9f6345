//! Checks that need a real process around `iotctl`: a closed port, a served simulator, big device files.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `iotctl` with a scratch config directory and none of the developer's settings.
pub(crate) fn iotctl(config_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iotctl"));
    cmd.env("IOTCTL_CONFIG_DIR", config_dir)
        .env_remove("IOTCTL_SECRET")
        .env_remove("IOTCTL_PROFILE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run iotctl: {e}"),
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn scratch() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temporary directory: {e}"),
    }
}

#[test]
fn an_unreachable_platform_is_one_line_and_exit_3() {
    let dir = scratch();
    // A port that was just free: bound, read, released, so nothing listens there.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("cannot bind: {e}"),
    };
    let url = format!("http://127.0.0.1:{port}");
    let add = run(iotctl(dir.path()).args(["profile", "add", "closed", "--base-url", &url, "--app-id", "app"]));
    assert!(add.status.success(), "{}", text(&add.stderr));
    let out = run(iotctl(dir.path()).env("IOTCTL_SECRET", "s3cret-SENTINEL").args(["--timeout", "5", "tasks", "list"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("iotctl: error: could not connect"), "{stderr}");
    assert!(stderr.contains(&url), "the hint names the URL: {stderr}");
    assert!(!stderr.contains("SENTINEL") && !text(&out.stdout).contains("SENTINEL"));
    assert!(out.stdout.is_empty());
}

#[test]
fn more_than_256_devices_become_several_tasks() {
    let dir = scratch();
    let fleet = ["--sim", "--sim-time-scale", "0", "--sim-fleet-size", "1300"];
    let ids = run(iotctl(dir.path()).args(fleet).args([
        "sim",
        "devices",
        "--device-type",
        "WaterMeter",
        "--ids",
        "--limit",
        "600",
    ]));
    assert!(ids.status.success());
    let ids = text(&ids.stdout);
    assert_eq!(ids.lines().count(), 600);
    let file = dir.path().join("devices.txt");
    if let Err(e) = std::fs::write(&file, &ids) {
        panic!("cannot write {}: {e}", file.display());
    }
    let pkg = run(iotctl(dir.path()).args(fleet).args([
        "packages",
        "list",
        "--file-type",
        "firmware",
        "--device-type",
        "WaterMeter",
        "--limit",
        "1",
        "-o",
        "csv",
    ]));
    let pkg = text(&pkg.stdout);
    let Some(file_id) = pkg.lines().nth(1).and_then(|l| l.split(',').next()) else { panic!("no package: {pkg}") };
    let out = run(iotctl(dir.path())
        .args(fleet)
        .args(["tasks", "create", "--firmware", "--package", file_id, "--devices"])
        .arg(&file)
        .args(["-o", "json"]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("600 devices are more than the platform's 256 per task: creating 3 tasks"), "{stderr}");
    let sizes: Vec<u64> = stdout
        .lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => v["devices"].as_u64().unwrap_or(0),
            Err(e) => panic!("not JSON: {l}: {e}"),
        })
        .collect();
    assert_eq!(sizes, [256, 256, 88]);
}

#[test]
fn sim_serve_writes_a_profile_other_shells_use() {
    let dir = scratch();
    let mut child = match iotctl(dir.path()).args(["sim", "serve", "-o", "json"]).stdout(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => panic!("cannot start iotctl sim serve: {e}"),
    };
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let banner: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    let url = banner["url"].as_str().unwrap_or_default().to_owned();
    let listed = run(iotctl(dir.path()).env("IOTCTL_SECRET", "sim-secret").args([
        "--profile",
        "sim",
        "tasks",
        "list",
        "-o",
        "csv",
    ]));
    let shown = run(iotctl(dir.path()).args(["profile", "show", "sim"]));
    // Stop the server this test started, by its own handle, before asserting anything.
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    assert_eq!(banner["seeded"].as_array().map(Vec::len), Some(3), "{line}");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout).lines().count(), 3, "a header and the two seeded upgrade tasks");
    assert!(text(&shown.stdout).contains(&url));
    assert!(text(&shown.stdout).contains("[redacted]"));
}

#[test]
fn a_wrong_secret_is_refused_with_the_platforms_code() {
    let dir = scratch();
    let mut child = match iotctl(dir.path()).args(["sim", "serve", "-o", "json"]).stdout(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => panic!("cannot start iotctl sim serve: {e}"),
    };
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let out = run(iotctl(dir.path()).env("IOTCTL_SECRET", "wrong-SENTINEL").args(["--profile", "sim", "login"]));
    let ok = run(iotctl(dir.path()).env("IOTCTL_SECRET", "sim-secret").args(["--profile", "sim", "login"]));
    let _ = child.kill();
    let _ = child.wait();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("100208") && stderr.contains("check the app id/secret"), "{stderr}");
    assert!(!stderr.contains("SENTINEL"));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("logged in to http://127.0.0.1:"));
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = scratch();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(iotctl(dir.path()).args(["completions", shell]));
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(script.contains("iotctl") && script.contains("subtasks"), "{shell}");
    }
    let out = run(iotctl(dir.path()).args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_devices_file_on_stdin_is_read() {
    let dir = scratch();
    let mut child = match iotctl(dir.path())
        .args([
            "--sim",
            "--sim-time-scale",
            "0",
            "tasks",
            "create",
            "--firmware",
            "--package",
            "33099fa88f6f3868edd3c004",
            "--devices",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot start iotctl: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"0f2434a1-918f-6b68-f214-5ea76e25c4f9\n");
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => panic!("iotctl did not finish: {e}"),
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("(1 device)"));
}
