//! Integration tests for iot-hyper, compiled as one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod amplify;
mod client;
mod e2e;
mod reuse;
mod sim_support;
mod support;
mod tracing_events;
mod transport;
mod walks;
mod wire;
