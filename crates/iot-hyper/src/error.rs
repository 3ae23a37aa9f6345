//! The error enum of the transport layer: each variant says how far the call got.

use iot_proto::{ApiError, DecodeError, ErrorClass, ValidationError};

use crate::tls::TlsError;
use crate::transport::TransportError;

/// Why a call failed.
///
/// The variants follow the life of a call: never sent (`Invalid`, `Config`), could not reach the platform
/// (`Connect`, `Tls`), no complete answer (`Timeout`, `Transport`), the platform refused (`Platform`), the answer
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
    /// Whether trying the same call again later may succeed.
    ///
    /// [`Error::OutcomeUnknown`] is not retryable: the task may already exist, and sending the call again
    /// could create a second one.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Timeout(_) => true,
            Self::Transport(t) => t.is_retryable(),
            Self::Api(api) => api.is_throttled() || api.is_server_error() || api.is_token_invalid(),
            Self::Invalid(_)
            | Self::Config(_)
            | Self::Tls(_)
            | Self::Decode(_)
            | Self::Paging(_)
            | Self::Walk(_)
            | Self::Item(_)
            | Self::OutcomeUnknown { .. } => false,
        }
    }

    /// Whether the platform may have received (and acted on) the request.
    pub fn request_may_have_been_sent(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::Config(_) | Self::Connect(_) | Self::Paging(_) => false,
            Self::Tls(t) | Self::Transport(t) => t.request_may_have_been_sent(),
            Self::Timeout(t) => t.as_ref().is_none_or(TransportError::request_may_have_been_sent),
            Self::Api(_) | Self::Decode(_) | Self::Walk(_) | Self::Item(_) | Self::OutcomeUnknown { .. } => true,
        }
    }

    /// Whether the platform may have acted on the request: it may have been sent, and no answer proves that the
    /// platform refused it.
    ///
    /// An answer proves a refusal when it carries a platform `error_code` that is not a server failure: the
    /// throttling (`1010009`) and rejected-token (`1010005`) codes under any status, other documented codes
    /// unless they report an internal error, and undocumented codes under a status that is neither 429 nor
    /// 5xx. Answers without a code (429, 5xx, HTML pages from a proxy), timeouts and broken connections after
    /// the request went out, and undecodable successes prove nothing.
    pub fn platform_may_have_acted(&self) -> bool {
        match self {
            Self::Api(api) => !refused_by_platform(api),
            Self::OutcomeUnknown { .. } => true,
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

    /// Wraps the failure of a call that is not idempotent in [`Error::OutcomeUnknown`] when the last attempt
    /// left the platform's action in doubt.
    pub(crate) fn settle(self, endpoint: &'static str, idempotent: bool, in_doubt: bool) -> Self {
        if idempotent || !in_doubt || self.outcome_unknown() {
            return self;
        }
        Self::OutcomeUnknown { endpoint, source: Box::new(self) }
    }

    pub(crate) fn from_build(e: iot_proto::IntoHttpError) -> Self {
        match e {
            iot_proto::IntoHttpError::Invalid(v) => Self::Invalid(v),
            iot_proto::IntoHttpError::MissingCredentials { endpoint } => Self::Invalid(missing_credentials(endpoint)),
            other => Self::Invalid(ValidationError::new("request", other.to_string(), None)),
        }
    }

    pub(crate) fn from_answer(e: iot_proto::FromHttpResponseError) -> Self {
        match e {
            iot_proto::FromHttpResponseError::Api(a) => Self::Api(a),
            iot_proto::FromHttpResponseError::Decode(d) => Self::Decode(d),
            other => Self::Decode(iot_proto::DecodeError::new(http::StatusCode::OK, ".", other.to_string(), b"")),
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

/// Whether a platform answer proves that the platform refused the request without acting on it.
fn refused_by_platform(api: &ApiError) -> bool {
    // Without the platform's code the answer may come from a proxy or a gateway, after the platform acted.
    let Some(code) = &api.code else { return false };
    match code.info().map(|info| info.class) {
        Some(ErrorClass::Throttled | ErrorClass::TokenInvalid | ErrorClass::Permanent) => true,
        // An internal error may have struck halfway through the work.
        Some(ErrorClass::Server) => false,
        // An undocumented code is read by its status: a load-shedding or server status proves nothing.
        _ => api.status.as_u16() != 429 && !api.status.is_server_error(),
    }
}

fn missing_credentials(endpoint: &str) -> ValidationError {
    ValidationError::new("credentials", format!("endpoint {endpoint} needs an app id and an access token"), None)
}
