//! iot-sim: a simulator of the platform's northbound API, with a thin hyper server and a test PKI.

pub mod embedded;
pub mod pki;
pub mod server;
pub mod sim;
