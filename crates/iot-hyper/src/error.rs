//! The error enum of the transport layer: each variant says how far the call got.

use iot_proto::{ApiError, DecodeError, ValidationError};

use crate::tls::TlsError;
use crate::transport::TransportError;

/// Why a call failed.
///
/// The variants follow the life of a call: never sent (`Invalid`, `Config`), could not reach the platform
/// (`Connect`, `Tls`), no complete answer (`Timeout`, `Transport`), the platform refused (`Platform`), the answer
/// was unreadable (`Decode`). [`Error::is_retryable`] says whether trying again later may help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks a rule of the contract; it was never sent.
    #[error("request not sent: it breaks a rule of the contract")]
    Invalid(#[source] ValidationError),
    /// The client configuration is unusable (for example a PEM file without certificates).
    #[error("invalid client configuration")]
    Config(#[source] TlsError),
    /// No connection could be opened; the request was not sent.
    #[error("could not connect to the platform")]
    Connect(#[source] TransportError),
    /// The TLS handshake failed: untrusted server certificate, or client certificate refused.
    #[error("tls handshake with the platform failed")]
    Tls(#[source] TransportError),
    /// A timeout fired (connect, answer, or the whole call's deadline).
    #[error("the call timed out")]
    Timeout(#[source] Option<TransportError>),
    /// The connection broke, the answer was not HTTP, or its body was too large.
    #[error("transport failure")]
    Transport(#[source] TransportError),
    /// The platform answered with an error.
    #[error("the platform refused the call")]
    Platform(#[source] ApiError),
    /// The platform's answer could not be decoded.
    #[error("the platform's answer could not be decoded")]
    Decode(#[source] DecodeError),
    /// A paged walk could not start (page size outside the endpoint's limits).
    #[error("invalid paging")]
    Paging(#[source] iot_proto::pager::PagerError),
}

impl Error {
    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Timeout(_) => true,
            Self::Transport(t) => t.is_retryable(),
            Self::Platform(api) => api.is_throttled() || api.is_server_error() || api.is_token_invalid(),
            Self::Invalid(_) | Self::Config(_) | Self::Tls(_) | Self::Decode(_) | Self::Paging(_) => false,
        }
    }

    /// Whether the platform may have received (and acted on) the request.
    pub fn request_may_have_been_sent(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::Config(_) | Self::Connect(_) | Self::Paging(_) => false,
            Self::Tls(t) | Self::Transport(t) => t.request_may_have_been_sent(),
            Self::Timeout(t) => t.as_ref().is_none_or(TransportError::request_may_have_been_sent),
            Self::Platform(_) | Self::Decode(_) => true,
        }
    }

    /// The platform error, if the platform answered one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Platform(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn from_proto(e: iot_proto::Error) -> Self {
        match e {
            iot_proto::Error::Invalid(v) => Self::Invalid(v),
            iot_proto::Error::Api(a) => Self::Platform(a),
            iot_proto::Error::Decode(d) => Self::Decode(d),
            iot_proto::Error::MissingCredentials { endpoint } => Self::Invalid(missing_credentials(endpoint)),
            other => Self::Invalid(ValidationError::new("request", other.to_string(), None)),
        }
    }

    pub(crate) fn from_transport(e: TransportError) -> Self {
        match e {
            TransportError::Connect { .. } => Self::Connect(e),
            TransportError::Tls { .. } => Self::Tls(e),
            TransportError::Timeout { .. } => Self::Timeout(Some(e)),
            _ => Self::Transport(e),
        }
    }
}

fn missing_credentials(endpoint: &str) -> ValidationError {
    ValidationError::new("credentials", format!("endpoint {endpoint} needs an app id and an access token"), None)
}
