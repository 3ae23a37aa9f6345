//! The stable-toolchain runner of the fuzz targets: every target's seeds, then pseudo-random mutations of them
//! for a set time, failing on the first panic; and `seed DIR`, which writes each target's seeds for libFuzzer.
//!
//! libFuzzer needs nightly, which a fresh CI machine does not have; this runner gives CI the same target
//! bodies on stable. It is a smoke test, not a fuzzer: it has no coverage feedback.
//!
//! ```text
//! smoke run [--secs-per-target SECS] [--seed N] [TARGET...]
//! smoke seed DIR [TARGET...]
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use iot_fuzz::seeds::seeds;
use iot_fuzz::targets::{TARGETS, Target, target};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Bytes the mutator likes to write: JSON, percent-encoding, query and request-text punctuation.
const INTERESTING_BYTES: &[u8] = b"\0\x7f\xff\"{}[],:0-.+eE\\%&=/?#\n\r\t T";

/// Tokens the mutator inserts: JSON values at the edges of their types, the error members, escapes and
/// encodings that decoders treat specially, and the request-text placeholders of `sim_handle`.
const TOKENS: &[&[u8]] = &[
    b"null",
    b"true",
    b"\"\"",
    b"{}",
    b"[]",
    b"-1",
    b"0.5",
    b"1e999",
    b"4294967296",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\"error_code\":",
    b"\"error_desc\":",
    b"\\u0000",
    b"\\ud800",
    b"%FF",
    b"%2F",
    b"%",
    b"..",
    b"99991231T235959Z",
    b"\n===\n",
    b"$TOKEN",
    b"$REFRESH",
    b"+31622400\n",
];

/// The largest input the mutator builds; libFuzzer's default `-max_len` is in the same range for these seeds.
const MAX_LEN: usize = 64 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("seed") => seed(&args[1..]),
        _ => {
            Err("usage: smoke run [--secs-per-target SECS] [--seed N] [TARGET...] | smoke seed DIR [TARGET...]".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The targets named, or every target when none is.
fn selected(names: &[String]) -> Result<Vec<&'static Target>, String> {
    if names.is_empty() {
        return Ok(TARGETS.iter().collect());
    }
    names.iter().map(|n| target(n).ok_or_else(|| format!("no target `{n}`"))).collect()
}

fn seed(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(args.first().ok_or("seed needs a folder")?);
    for t in selected(&args[1..])? {
        let out = dir.join(t.name);
        std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let seeds = seeds(t.name);
        for (i, s) in seeds.iter().enumerate() {
            let path = out.join(format!("seed-{i:03}"));
            std::fs::write(&path, s).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        println!("{}: {} seeds in {}", t.name, seeds.len(), out.display());
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let mut secs = 2.0_f64;
    let mut rng_seed = 0x1077_f022_u64;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs-per-target" => {
                secs = it.next().and_then(|v| v.parse().ok()).ok_or("--secs-per-target needs a number")?;
            }
            "--seed" => rng_seed = it.next().and_then(|v| v.parse().ok()).ok_or("--seed needs a number")?,
            name => names.push(name.to_owned()),
        }
    }
    let budget = Duration::from_secs_f64(secs);
    // A panic is reported below with the input that caused it; the default hook's message and location are kept.
    let started = Instant::now();
    for t in selected(&names)? {
        let corpus = seeds(t.name);
        if corpus.is_empty() {
            return Err(format!("{} has no seeds", t.name));
        }
        let mut rng = SmallRng::seed_from_u64(rng_seed);
        let t0 = Instant::now();
        let mut runs = 0u64;
        for s in &corpus {
            exec(t, s)?;
            runs += 1;
        }
        let mut input = Vec::new();
        while t0.elapsed() < budget {
            // Mutations pile up on the same input for a few rounds before it starts again from a seed, so
            // inputs drift further from the seeds than one mutation would take them.
            if runs % 8 == 0 || input.is_empty() {
                input.clone_from(corpus.choose(&mut rng).ok_or("no seeds")?);
            }
            for _ in 0..rng.random_range(1..=4) {
                mutate(&mut rng, &mut input, &corpus);
            }
            exec(t, &input)?;
            runs += 1;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        println!(
            "{:<18} {:>9} runs ({} seeds) in {:.1}s, {:.0}/s, 0 crashes",
            t.name,
            runs,
            corpus.len(),
            elapsed,
            runs as f64 / elapsed
        );
    }
    println!("smoke fuzzing: every target ran clean in {:.1}s (rng seed {rng_seed})", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs one input; a panic becomes an error naming the target and the file the input was saved to.
fn exec(t: &Target, input: &[u8]) -> Result<(), String> {
    if catch_unwind(AssertUnwindSafe(|| (t.run)(input))).is_ok() {
        return Ok(());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts").join(t.name);
    let path = dir.join("smoke-crash");
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    let place = match saved {
        Ok(()) => format!("saved to {}", path.display()),
        Err(e) => format!("not saved ({e}): {:?}", String::from_utf8_lossy(input)),
    };
    Err(format!("target {} panicked on an input, {place}", t.name))
}

/// One random edit of `input`, drawing on the corpus for splices.
fn mutate(rng: &mut SmallRng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = input.len();
    match rng.random_range(0..8) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = *INTERESTING_BYTES.choose(rng).unwrap_or(&0);
        }
        2 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..=16)).min(len);
            input.drain(start..end);
        }
        3 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = (start + rng.random_range(1..=32)).min(len);
            let copy = input[start..end].to_vec();
            let at = rng.random_range(0..=len);
            input.splice(at..at, copy);
        }
        4 => {
            let at = rng.random_range(0..=len);
            let token = TOKENS.choose(rng).copied().unwrap_or_default();
            input.splice(at..at, token.iter().copied());
        }
        5 => {
            // Splice: this input's head with another seed's tail.
            let other = corpus.choose(rng).map(Vec::as_slice).unwrap_or_default();
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..=other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        6 if len > 0 => {
            // Replace a run of digits with another number, to reach the limits of numeric fields.
            let i = rng.random_range(0..len);
            if let Some(start) = input[i..].iter().position(u8::is_ascii_digit).map(|p| p + i) {
                let end = input[start..].iter().position(|b| !b.is_ascii_digit()).map_or(input.len(), |p| p + start);
                let n: u64 = match rng.random_range(0..3) {
                    0 => rng.random_range(0..16),
                    1 => u64::from(u32::MAX) + rng.random_range(0..2),
                    _ => rng.random(),
                };
                input.splice(start..end, n.to_string().into_bytes());
            }
        }
        _ => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            input.splice(at..at, bytes);
        }
    }
    input.truncate(MAX_LEN);
}
