//! `cargo xtask public-api [--check]`: lists the public API of every publishable library crate into
//! `docs/public-api/<crate>.txt`, so that a change to the surface is a visible diff in review; `--check` fails
//! with that diff when the committed listing is not what the code exports.
//!
//! The listing comes from rustdoc's JSON output. Stable rustdoc emits it only behind `-Z unstable-options`, so
//! the build sets `RUSTC_BOOTSTRAP=1` for that one `cargo rustdoc` call, in a target directory of its own (the
//! flag is part of cargo's fingerprint, and sharing the main one would rebuild the dependencies twice over).
//! The JSON format is unstable too: [`FORMAT_VERSION`] is the one the pinned `public-api` crate reads, and a
//! toolchain that writes another one is refused with a message instead of a confusing parse error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to call this task.
pub const USAGE: &str = "cargo xtask public-api [--check]";

/// The publishable library crates whose surface is listed (iot-cli is a binary, iot-conformance and xtask are
/// not published).
pub const CRATES: &[&str] = &["iot-model", "iot-proto", "iot-hyper", "iot-blocking", "iot-sim", "iot-rollout"];

/// Where the listings live, relative to the workspace root.
pub const DIR: &str = "docs/public-api";

/// The rustdoc JSON format that `public-api` 0.52.1 (through `rustdoc-types` 0.57.3) reads; Rust 1.95 writes it.
pub const FORMAT_VERSION: u32 = 57;

/// Lines that are not this crate's surface: traits that stable Rust cannot name (the auto traits `Freeze` and
/// `UnsafeUnpin`, and the hidden `TrivialClone` that `#[derive(Clone, Copy)]` implements), whose presence
/// changes with the toolchain, and the hidden method `#[derive(Eq)]` writes into every `Eq` impl.
const UNNAMEABLE: &[&str] = &[
    "core::marker::Freeze for ",
    "core::marker::UnsafeUnpin for ",
    "core::clone::TrivialClone for ",
    "::assert_fields_are_eq(&self)",
];

/// Runs the task with the arguments after `public-api`.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let check = match args.first().map(String::as_str) {
        None => false,
        Some("--check") => true,
        Some(other) => return Err(format!("unknown option `{other}`; usage: {USAGE}")),
    };
    let mut changed = Vec::new();
    for name in CRATES {
        let listing = listing(root, name)?;
        let path = root.join(DIR).join(format!("{name}.txt"));
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old == listing {
            continue;
        }
        if check {
            eprintln!("--- {DIR}/{name}.txt (committed)\n+++ {name} (the code)\n{}", diff(&old, &listing));
            changed.push(*name);
        } else {
            std::fs::create_dir_all(root.join(DIR)).map_err(|e| format!("cannot create {DIR}: {e}"))?;
            std::fs::write(&path, &listing).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("wrote {DIR}/{name}.txt");
        }
    }
    if !changed.is_empty() {
        return Err(format!(
            "the public API of {} differs from the committed listing (diff above)\nif the change is meant, run \
             `cargo xtask public-api` and commit {DIR}/ with it, so the review sees the new surface",
            changed.join(", ")
        ));
    }
    if check {
        println!("the public API listings in {DIR}/ are up to date");
    }
    Ok(())
}

/// Builds one crate's rustdoc JSON (all features on, so feature-gated items are listed too) and renders its
/// public items, one a line, sorted, under a header naming the command.
fn listing(root: &Path, name: &str) -> Result<String, String> {
    let target = target_dir(root);
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        // The listing must not depend on whoever ran it: flags from the environment could change what rustdoc
        // sees (a `--cfg docsrs`, say).
        .env_remove("RUSTDOCFLAGS")
        .env_remove("RUSTFLAGS")
        .args(["rustdoc", "--quiet", "--locked", "--lib", "--all-features", "-p", name, "--target-dir"])
        .arg(&target)
        // `#[doc(hidden)]` items are public all the same (an exported macro the generated code calls, say): a
        // user can name them, so they are listed, and plumbing cannot leave the surface by being hidden.
        .args(["--", "-Z", "unstable-options", "--output-format", "json", "--document-hidden-items"])
        .status()
        .map_err(|e| format!("cannot run cargo rustdoc: {e}"))?;
    if !status.success() {
        return Err(format!("cargo rustdoc -p {name} (JSON output) failed"));
    }
    let json = target.join("doc").join(format!("{}.json", name.replace('-', "_")));
    let text = std::fs::read_to_string(&json).map_err(|e| format!("cannot read {}: {e}", json.display()))?;
    let version = format_version(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "this toolchain writes rustdoc JSON format {version}, and the pinned public-api crate reads format \
             {FORMAT_VERSION}: move xtask's public-api pin to the release that reads format {version} (its \
             changelog says which), then regenerate the listings with `cargo xtask public-api`"
        ));
    }
    let api = public_api::Builder::from_rustdoc_json(&json)
        // `impl<T> From<T> for T` and the like are the same for every type; listing them is noise. Auto traits
        // (Send, Sync, Unpin...) stay: losing one is a breaking change.
        .omit_blanket_impls(true)
        .build()
        .map_err(|e| format!("cannot read the public API of {name} from {}: {e}", json.display()))?;
    let mut out = format!("# The public API of {name}: written by `cargo xtask public-api`; do not edit by hand.\n");
    for item in api.items().map(ToString::to_string).filter(|line| !UNNAMEABLE.iter().any(|t| line.contains(t))) {
        out.push_str(&item);
        out.push('\n');
    }
    Ok(out)
}

/// `target/public-api` under the workspace's target directory.
fn target_dir(root: &Path) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let base = if base.is_absolute() { base } else { root.join(base) };
    base.join("public-api")
}

/// Reads only the `format_version` member of a rustdoc JSON document.
fn format_version(text: &str) -> Result<u32, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        format_version: u32,
    }
    serde_json::from_str::<Head>(text).map(|h| h.format_version).map_err(|e| format!("not rustdoc JSON: {e}"))
}

/// The lines only in `old` (prefixed `-`) and only in `new` (prefixed `+`), each side in its own order.
///
/// Both listings are sorted, so a line that moved is the same item: what a reviewer needs is which items went
/// and which came, counted as a multiset so that two identical lines are not one.
fn diff(old: &str, new: &str) -> String {
    let mut count: BTreeMap<&str, isize> = BTreeMap::new();
    for line in old.lines() {
        *count.entry(line).or_default() += 1;
    }
    for line in new.lines() {
        *count.entry(line).or_default() -= 1;
    }
    let mut out = String::new();
    let mut removed = count.clone();
    for line in old.lines() {
        if let Some(n) = removed.get_mut(line).filter(|n| **n > 0) {
            *n -= 1;
            out.push_str(&format!("-{line}\n"));
        }
    }
    for line in new.lines() {
        if let Some(n) = count.get_mut(line).filter(|n| **n < 0) {
            *n += 1;
            out.push_str(&format!("+{line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_what_went_and_what_came() {
        let old = "# h\npub fn a()\npub fn b()\npub fn c()\n";
        let new = "# h\npub fn a()\npub fn c(x: u8)\npub fn c()\npub fn d()\n";
        assert_eq!(diff(old, new), "-pub fn b()\n+pub fn c(x: u8)\n+pub fn d()\n");
    }

    #[test]
    fn diff_counts_repeated_lines() {
        assert_eq!(diff("x\nx\n", "x\n"), "-x\n");
        assert_eq!(diff("x\n", "x\nx\ny\n"), "+x\n+y\n");
        assert_eq!(diff("a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn format_version_is_read_from_the_head_alone() {
        assert_eq!(format_version(r#"{"root": 1, "format_version": 57, "index": {}}"#), Ok(57));
        assert!(format_version("{}").is_err());
    }

    #[test]
    fn every_listed_crate_has_a_committed_listing() {
        let root = crate::project_root();
        for name in CRATES {
            let path = root.join(DIR).join(format!("{name}.txt"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(text.starts_with(&format!("# The public API of {name}:")), "{} has no header", path.display());
        }
    }
}
