//! iot-sim: a simulator of the platform's northbound API, with a thin hyper server and a test PKI.
//!
#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly (see [package.metadata.docs.rs]): feature-gated items then say
// which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod embedded;
pub mod pki;
pub mod server;
pub mod sim;
