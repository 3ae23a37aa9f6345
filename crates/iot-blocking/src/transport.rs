//! The only place that touches the network: one ureq agent, one exchange at a time, and the one function that
//! says what a failed exchange means to the core ([`classify`]).
//!
//! ureq is configured so that every answer comes back as a response whatever its status (the core reads the
//! platform's errors), no redirect is followed (a 3xx is an answer too), and no body is decompressed.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use iot_proto::retry::TransportFailure;
use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig};

use crate::config::{ClientConfig, Roots};

/// Why an exchange got no answer; the core files it under a [`TransportFailure`] and keeps it as the cause.
/// Neither `Display` nor `Debug` holds a header or a body, so no token can leak through it.
#[derive(Debug, thiserror::Error)]
#[error("the http exchange failed")]
pub struct TransportError(#[source] ureq::Error);

impl TransportError {
    /// ureq's own error.
    pub fn ureq(&self) -> &ureq::Error {
        &self.0
    }
}

/// A ureq agent with the client's timeouts, TLS and body cap.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    agent: Agent,
    max_body_bytes: u64,
}

impl Transport {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        // ring is passed explicitly so that no process-wide provider (or another backend) is ever picked.
        let tls = TlsConfig::builder()
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(match &config.roots {
                Roots::Platform => RootCerts::WebPki,
                Roots::CustomCa(certs) => RootCerts::Specific(certs.clone()),
            })
            .client_cert(config.identity.as_ref().map(|i| i.0.clone()));
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .accept_encoding("identity")
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_call(Some(config.request_timeout))
            .tls_config(tls.build())
            .build()
            .new_agent();
        Self { agent, max_body_bytes: config.max_body_bytes }
    }

    /// Sends `request` and reads the whole answer, giving up at `deadline` at the latest.
    pub(crate) fn send(
        &self,
        request: http::Request<Vec<u8>>,
        deadline: Instant,
    ) -> Result<http::Response<Vec<u8>>, (TransportFailure, TransportError)> {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = self.agent.configure_request(request).timeout_global(Some(left)).build();
        let exchange = self.agent.run(request).and_then(|response| {
            let (parts, body) = response.into_parts();
            let bytes = body.into_with_config().limit(self.max_body_bytes).read_to_vec()?;
            Ok(http::Response::from_parts(parts, bytes))
        });
        exchange.map_err(|e| (classify(&e), TransportError(e)))
    }
}

/// What a ureq failure means for the call: whether the request may have gone out, and whether a retry can help.
/// ureq does not say whether a broken connection had sent the request, so a reset is taken as after sending.
pub(crate) fn classify(e: &ureq::Error) -> TransportFailure {
    use ureq::Error as E;
    use ureq::Timeout as T;
    match e {
        E::HostNotFound | E::ConnectionFailed => TransportFailure::ConnectFailed,
        E::Timeout(T::Resolve | T::Connect) => TransportFailure::ConnectFailed,
        E::Timeout(_) => TransportFailure::Timeout,
        // A ureq error that travelled through `io::Read` (a body read as a stream) is classified as itself.
        E::Io(io) if io.get_ref().and_then(|e| e.downcast_ref::<ureq::Error>()).is_some() => {
            io.get_ref().and_then(|e| e.downcast_ref::<ureq::Error>()).map_or(TransportFailure::Other, classify)
        }
        E::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown => TransportFailure::ConnectFailed,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportFailure::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => TransportFailure::ResetAfterSend,
            // Framing the reader refused (a bad chunk size line): the answer is malformed, the line was fine.
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => TransportFailure::Malformed,
            _ => TransportFailure::Other,
        },
        E::Rustls(tls) => match tls {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(_) => TransportFailure::TlsRefused,
            _ => TransportFailure::TlsHandshake,
        },
        E::Tls(_) => TransportFailure::TlsHandshake,
        E::BodyExceedsLimit(_) => TransportFailure::BodyTooLarge,
        // The answer was not valid HTTP: the same server would likely answer the same way.
        E::Protocol(_) => TransportFailure::Malformed,
        E::BadUri(_) | E::Http(_) | E::RequireHttpsOnly(_) | E::TlsRequired | E::Pem(_) | E::InvalidProxyUrl => {
            TransportFailure::Unsendable
        }
        _ => TransportFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn failures_are_classified_by_how_far_the_request_got() {
        let io = |kind| ureq::Error::Io(io::Error::from(kind));
        assert_eq!(classify(&io(io::ErrorKind::ConnectionRefused)), TransportFailure::ConnectFailed);
        assert_eq!(classify(&io(io::ErrorKind::ConnectionReset)), TransportFailure::ResetAfterSend);
        assert_eq!(classify(&ureq::Error::Timeout(ureq::Timeout::Connect)), TransportFailure::ConnectFailed);
        assert_eq!(classify(&ureq::Error::Timeout(ureq::Timeout::RecvResponse)), TransportFailure::Timeout);
        assert_eq!(classify(&ureq::Error::BodyExceedsLimit(10)), TransportFailure::BodyTooLarge);
        assert_eq!(classify(&ureq::Error::BadUri("x".into())), TransportFailure::Unsendable);
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(classify(&ureq::Error::Rustls(refused)), TransportFailure::TlsRefused);
        assert_eq!(classify(&ureq::Error::TooManyRedirects), TransportFailure::Other);
    }

    /// Sends a GET to a loopback server that answers `reply` to the first connection and then waits for the
    /// client to hang up; returns how the exchange was classified.
    fn exchange_with(reply: &'static [u8]) -> TransportFailure {
        use std::io::{Read, Write};
        use std::time::Duration;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 16 * 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
            // Until the client hangs up (or the bound above), so that the failure is the answer's, not a reset.
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        });
        let base = iot_proto::BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let config = ClientConfig::new(base, iot_model::AppId::new("app").unwrap(), iot_model::AppSecret::new("s"))
            .with_request_timeout(Duration::from_secs(5));
        let request = http::Request::get(format!("http://127.0.0.1:{port}/")).body(Vec::new()).unwrap();
        let result = Transport::new(&config).send(request, Instant::now() + Duration::from_secs(5));
        server.join().unwrap();
        match result {
            Err((failure, _)) => failure,
            Ok(response) => panic!("a malformed answer was accepted: {response:?}"),
        }
    }

    #[test]
    fn a_malformed_chunked_body_is_malformed_not_a_network_blip() {
        let bad_chunk: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz-not-hex\r\nxx\r\n0\r\n\r\n";
        let failure = exchange_with(bad_chunk);
        assert_eq!(failure, TransportFailure::Malformed);
        assert!(!failure.is_retryable());
    }

    #[test]
    fn framing_errors_that_arrive_as_io_errors_are_malformed() {
        // ureq reports its own framing errors as `Protocol`; the same errors read through `io::Read`, or an
        // I/O layer's own refusal of the bytes, must not pass for a broken connection.
        let refused = ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, "invalid chunk size line"));
        assert_eq!(classify(&refused), TransportFailure::Malformed);
        let wrapped = ureq::Error::Io(io::Error::other(ureq::Error::BodyExceedsLimit(10)));
        assert_eq!(classify(&wrapped), TransportFailure::BodyTooLarge);
    }

    #[test]
    fn invalid_response_headers_are_malformed() {
        let bad_head: &[u8] = b"HTTP/1.1 200 OK\r\nthis is no header\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(exchange_with(bad_head), TransportFailure::Malformed);
    }
}
