//! The error enum of the transport layer: each variant says how far the call got.

use iot_proto::call::CallError;
use iot_proto::{ApiError, DecodeError, ValidationError};

use crate::tls::TlsError;
use crate::transport::TransportError;

/// Why a call failed.
///
/// The variants follow the life of a call: never sent (`Invalid`, `Config`), could not reach the platform
/// (`Connect`, `Tls`), no complete answer (`Timeout`, `Transport`), the platform refused (`Api`), the answer
/// was unreadable (`Decode`). [`Error::is_retryable`] says whether trying again later may help.
///
/// A call that is not idempotent (creating an upgrade or batch task) that failed after its request may have
/// reached the platform, without the platform proving that it refused the request, is wrapped in
/// [`Error::OutcomeUnknown`]: the task may exist. [`Error::outcome_unknown`] tests for it, and
/// [`Error::cause`], [`Error::api`] and `source()` reach the failure it wraps.
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
    /// The TLS handshake failed: untrusted server certificate, client certificate refused, or a handshake that
    /// broke off (see [`TransportError::TlsHandshake`]).
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
    Api(#[source] ApiError),
    /// The platform's answer could not be decoded.
    #[error("the platform's answer could not be decoded")]
    Decode(#[source] DecodeError),
    /// A paged walk could not start (page size outside the endpoint's limits).
    #[error("invalid paging")]
    Paging(#[source] iot_proto::pager::PagerError),
    /// A paged walk failed: the platform's pages do not add up (a page repeated or answered for another page
    /// number, a shrinking or unreached `totalCount`, the page guard). Items may have been lost or repeated, so
    /// the walk ends with this error, never as a complete listing.
    #[error("the paged walk failed; the listing may be incomplete")]
    Walk(#[source] iot_proto::pager::WalkError),
    /// One item of a page could not be read; the walk yields it in the item's place and goes on.
    #[error("an item of the page could not be read")]
    Item(#[source] iot_model::RejectedItem),
    /// A call that is not idempotent failed after its request may have reached the platform, and the platform
    /// did not prove that it refused it: the task it creates may exist.
    ///
    /// The client never resends such a call by itself, because a second request could create a second task.
    /// Look the task up (for example in the task list) before creating it again.
    #[error("the outcome of {endpoint} is unknown: the platform may have acted on it, so the task may exist")]
    OutcomeUnknown {
        /// The endpoint's name in the spec, such as `CreateBatchTask`.
        endpoint: &'static str,
        /// How the last attempt failed.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether trying the same call again later may succeed (the call machine's verdict).
    ///
    /// [`Error::OutcomeUnknown`] is not retryable: the task may already exist, and sending the call again
    /// could create a second one.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(t) | Self::Tls(t) | Self::Transport(t) | Self::Timeout(Some(t)) => t.failure().is_retryable(),
            Self::Timeout(None) => true,
            Self::Api(api) => api.is_retryable(),
            Self::Invalid(_)
            | Self::Config(_)
            | Self::Decode(_)
            | Self::Paging(_)
            | Self::Walk(_)
            | Self::Item(_)
            | Self::OutcomeUnknown { .. } => false,
        }
    }

    /// Whether the platform may have received the request: for a transport failure, the core's verdict on
    /// [`TransportError::failure`], the one the call machine acted on.
    pub fn request_may_have_been_sent(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::Config(_) | Self::Paging(_) => false,
            Self::Connect(t) | Self::Tls(t) | Self::Transport(t) | Self::Timeout(Some(t)) => {
                t.failure().request_may_have_been_sent()
            }
            Self::Timeout(None) => true,
            Self::Api(_) | Self::Decode(_) | Self::Walk(_) | Self::Item(_) | Self::OutcomeUnknown { .. } => true,
        }
    }

    /// Whether the platform may have acted on the request: it may have been sent, and no answer proves that the
    /// platform refused it (see [`ApiError::proves_refusal`]). The same verdict the call machine reaches.
    pub fn platform_may_have_acted(&self) -> bool {
        match self {
            Self::Api(api) => !api.proves_refusal(),
            Self::Connect(t) | Self::Tls(t) | Self::Transport(t) | Self::Timeout(Some(t)) => {
                t.failure().request_may_have_been_sent()
            }
            other => other.request_may_have_been_sent(),
        }
    }

    /// Whether this is [`Error::OutcomeUnknown`]: a call that is not idempotent may have created its task.
    ///
    /// When it is false for a failed create, the platform certainly did not create the task.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// The failure itself: the error, or for [`Error::OutcomeUnknown`] the failure it wraps.
    pub fn cause(&self) -> &Error {
        match self {
            Self::OutcomeUnknown { source, .. } => source.cause(),
            other => other,
        }
    }

    /// The platform error, if the platform answered one (also inside [`Error::OutcomeUnknown`]).
    pub fn api(&self) -> Option<&ApiError> {
        match self.cause() {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn from_transport(e: TransportError) -> Self {
        match e {
            TransportError::Connect { .. } => Self::Connect(e),
            TransportError::Tls { .. } | TransportError::TlsHandshake { .. } => Self::Tls(e),
            TransportError::Timeout { .. } => Self::Timeout(Some(e)),
            _ => Self::Transport(e),
        }
    }
}

impl From<CallError<TransportError>> for Error {
    fn from(e: CallError<TransportError>) -> Self {
        match e {
            CallError::Invalid(v) => Self::Invalid(v),
            CallError::Transport { error, .. } => Self::from_transport(error),
            CallError::Api(api) => Self::Api(api),
            CallError::Decode(d) => Self::Decode(d),
            CallError::Timeout(_) => Self::Timeout(None),
            CallError::OutcomeUnknown { endpoint, source } => {
                Self::OutcomeUnknown { endpoint, source: Box::new(Self::from(*source)) }
            }
            // The driver never polls a finished call; any later kind of failure still means the call did not go.
            other => Self::Invalid(ValidationError::new("call", other.to_string(), None)),
        }
    }
}
