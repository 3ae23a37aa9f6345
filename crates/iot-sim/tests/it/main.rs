//! Integration tests of the simulator core, driven through iot-proto's client side; one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod batch;
mod catalog;
mod choreography;
mod determinism;
mod golden;
mod hardening;
mod listening;
mod shapes;
mod state;
mod support;
mod upgrade;
