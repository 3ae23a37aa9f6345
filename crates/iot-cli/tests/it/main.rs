//! The command line's tests: snapshot cases run by trycmd (tests/cmd), and the checks a snapshot cannot make.
//!
//! Every case runs `iotctl` against the simulator it embeds (`--sim`), with its fixed seed and, where the
//! output must not move, `--sim-time-scale 0` (frozen time), so ids, times and counters are the same on
//! every run. Sandboxed cases (a `NAME.in` directory next to `NAME.md`) run in a scratch copy of it, which is
//! also where `IOTCTL_CONFIG_DIR` points, so no test reads or writes the user's profiles.

// Tests fail by panicking; the library lints against it do not apply here.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod process;
mod rollout;

/// The snapshot cases; `TRYCMD=overwrite cargo test -p iot-cli` rewrites them after a deliberate change.
#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin("iotctl", std::path::Path::new(env!("CARGO_BIN_EXE_iotctl")))
        // Relative: each case's own working directory (its sandbox when it has one).
        .env("IOTCTL_CONFIG_DIR", "iotctl-config")
        // Empty counts as unset, so a secret or profile in the developer's shell cannot leak into a case.
        .env("IOTCTL_SECRET", "")
        .env("NO_COLOR", "1")
        .case("tests/cmd/*.md");
}
