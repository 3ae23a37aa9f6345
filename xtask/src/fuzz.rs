//! `cargo xtask fuzz`: the fuzz targets of `fuzz/`, under libFuzzer on nightly or as a smoke run on stable.
//!
//! The fuzz crate is outside the workspace (libFuzzer needs nightly, and `cargo test --workspace` must not), so
//! this module drives it through `cargo` child processes rather than depending on it; xtask also never
//! depends on the SDK's crates, so `cargo xtask codegen` still runs when generated code does not compile.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds per target when `--time` is not given: libFuzzer runs, then smoke runs.
const FUZZ_SECS: u64 = 300;
const SMOKE_SECS: f64 = 2.0;

/// The usage line of the subcommand.
pub const USAGE: &str = "cargo xtask fuzz [--smoke] [--time SECS] [--runs N] [TARGET...]";

/// Runs `cargo xtask fuzz` with the arguments after `fuzz`.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut smoke = false;
    let mut time: Option<String> = None;
    let mut runs: Option<u64> = None;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--time" => time = Some(it.next().ok_or("--time needs a number of seconds")?.clone()),
            "--runs" => runs = Some(it.next().and_then(|n| n.parse().ok()).ok_or("--runs needs a whole number")?),
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`; usage: {USAGE}")),
            name => targets.push(name.to_owned()),
        }
    }
    if smoke {
        let secs = match time {
            Some(t) => t.parse::<f64>().map_err(|_| format!("--time: `{t}` is not a number"))?,
            None => SMOKE_SECS,
        };
        let mut smoke_args = vec!["run".to_owned(), "--secs-per-target".to_owned(), secs.to_string()];
        smoke_args.extend(targets);
        return smoke_runner(root, &smoke_args);
    }
    let secs = match time {
        Some(t) => t.parse::<u64>().map_err(|_| format!("--time: `{t}` is not a whole number of seconds"))?,
        None => FUZZ_SECS,
    };
    libfuzzer(root, secs, runs, &targets)
}

/// Builds and runs the stable smoke runner (`fuzz/src/bin/smoke.rs`) with `args`.
///
/// It shares the workspace's target directory, so the SDK's crates and their dependencies, already built by
/// `cargo test`, are reused (the build takes seconds in CI, not minutes).
fn smoke_runner(root: &Path, args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "run",
        "--quiet",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--no-default-features",
        "--features",
        "smoke",
    ]);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.arg("--target-dir").arg(root.join("target"));
    }
    cmd.args(["--bin", "smoke", "--"]).args(args);
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("the fuzz smoke runner failed ({status})"));
    }
    Ok(())
}

/// Seeds each target's corpus from the golden payloads, then runs the libFuzzer targets one after another,
/// each for `secs` seconds (or until it has run `runs` inputs), and prints libFuzzer's figures for each.
fn libfuzzer(root: &Path, secs: u64, runs: Option<u64>, targets: &[String]) -> Result<(), String> {
    let fuzz = root.join("fuzz");
    let version = nightly_cargo(&fuzz).args(["fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !version.is_ok_and(|s| s.success()) {
        return Err("libFuzzer runs need the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); \
                    on stable, run `cargo xtask fuzz --smoke`"
            .into());
    }
    let targets: Vec<String> = if targets.is_empty() { list_targets(&fuzz)? } else { targets.to_vec() };
    // The seeding step: each target's seeds, derived from the golden payloads, into `fuzz/seeds/<target>`
    // (read-only for libFuzzer; what it learns goes into `fuzz/corpus/<target>`).
    let mut seed_args = vec!["seed".to_owned(), fuzz.join("seeds").display().to_string()];
    seed_args.extend(targets.iter().cloned());
    smoke_runner(root, &seed_args)?;
    let logs = fuzz.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for t in &targets {
        let corpus = fuzz.join("corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let log_path = logs.join(format!("{t}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        println!("fuzzing {t} for {secs}s (log: {})", log_path.display());
        let started = Instant::now();
        // No sanitizer: the workspace forbids `unsafe`, so AddressSanitizer would only watch the dependencies'
        // unsafe code, at half the executions per second. Debug assertions and overflow checks stay on
        // (cargo-fuzz's default), so an arithmetic overflow is a crash.
        let status = nightly_cargo(&fuzz)
            .args(["fuzz", "run", "--sanitizer", "none", t])
            .arg(&corpus)
            .arg(fuzz.join("seeds").join(t))
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .args(runs.map(|n| format!("-runs={n}")))
            // A hang is an input that runs for over 10 s; an OOM one that takes over 2 GiB.
            .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .status()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        rows.push(summary(t, &text, started.elapsed().as_secs()));
        if !status.success() {
            failed.push(format!("{t} (see {} and fuzz/artifacts/{t})", log_path.display()));
        }
    }
    println!("\n| target | executions | exec/s | seconds | cov | ft | corpus | peak RSS MB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("libFuzzer found a problem in: {}", failed.join(", "))) }
}

/// `cargo +nightly` through rustup, without the variables that pin the stable toolchain `cargo xtask` runs on.
fn nightly_cargo(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir).arg("+nightly");
    for var in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC", "RUSTC_WRAPPER", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    cmd
}

/// The fuzz targets, in the fuzz crate's order (its `[[bin]]` entries under `fuzz_targets/`).
fn list_targets(fuzz: &Path) -> Result<Vec<String>, String> {
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    let value: toml::Value = toml::from_str(&manifest).map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    let bins = value.get("bin").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    Ok(bins
        .iter()
        .filter(|b| b.get("path").and_then(toml::Value::as_str).is_some_and(|p| p.starts_with("fuzz_targets/")))
        .filter_map(|b| b.get("name").and_then(toml::Value::as_str).map(str::to_owned))
        .collect())
}

/// One table row from a libFuzzer log: the final statistics and the last status line's coverage figures.
fn summary(target: &str, log: &str, secs: u64) -> String {
    let stat = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "?".into())
    };
    // Status lines look like `#123456 pulse  cov: 812 ft: 2210 corp: 301/40Kb ... exec/s: 51234 rss: 80Mb`.
    let last = log.lines().rev().find(|l| l.starts_with('#') && l.contains(" cov: ")).unwrap_or_default();
    let field = |name: &str| {
        let mut words = last.split_whitespace();
        words.by_ref().find(|w| *w == name);
        words.next().unwrap_or("?").to_owned()
    };
    format!(
        "| {target} | {} | {} | {secs} | {} | {} | {} | {} |",
        stat("number_of_executed_units"),
        stat("average_exec_per_sec"),
        field("cov:"),
        field("ft:"),
        field("corp:"),
        stat("peak_rss_mb"),
    )
}
