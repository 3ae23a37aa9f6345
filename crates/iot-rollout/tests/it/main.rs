//! Integration tests of the rollout machine, driven against the simulator's pure core on a virtual clock through
//! iot-proto's client machines; one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod failures;
mod harness;
mod resume;
mod retry_failed;
mod rollout;
