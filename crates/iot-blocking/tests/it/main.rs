//! Integration tests of the blocking client against the embedded simulator on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod support;
