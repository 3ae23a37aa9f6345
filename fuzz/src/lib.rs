//! Fuzzing the SDK: each target's body is a plain function ([`targets`]), its seeds are derived from the golden
//! payloads ([`seeds`]), and its input is plain text ([`input`]). libFuzzer runs the bodies on nightly
//! (`fuzz_targets/`, through cargo-fuzz); `src/bin/smoke.rs` runs the same bodies on stable.

pub mod input;
pub mod seeds;
pub mod targets;

pub use targets::{TARGETS, Target};
