//! Integration tests of iot-proto's contract core, compiled as one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod golden;
mod http_roundtrip;
mod id_safety;
mod json_roundtrip;
mod redaction;
mod routing;
mod snapshots;
mod support;
mod tolerant;
mod validation;
