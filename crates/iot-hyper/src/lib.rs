//! iot-hyper: the I/O layer of the SDK, a thin transport on hyper 1, hyper-util and hyper-rustls over tokio.

pub mod tls;
pub mod transport;
