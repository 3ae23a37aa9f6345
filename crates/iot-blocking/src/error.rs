//! The crate's one error: a call's failure as the core tells it, or a paged walk's. Every question about a
//! failure is answered by the core's [`CallError`]; nothing is re-tabled here.

use iot_proto::ApiError;
use iot_proto::call::CallError;
use iot_proto::pager::{PagerError, WalkError};

use crate::config::ConfigError;
use crate::transport::TransportError;

/// Why a call (or a walk) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; nothing was sent.
    #[error("invalid client configuration")]
    Config(#[source] ConfigError),
    /// The call failed; [`CallError`] says how far it got.
    #[error(transparent)]
    Call(CallError<TransportError>),
    /// A paged walk could not start (page size outside the endpoint's limits).
    #[error("invalid paging")]
    Paging(#[source] PagerError),
    /// The pages of a walk do not add up: items may have been lost or repeated, so the walk ends with this
    /// error, never as a complete listing.
    #[error("the paged walk failed; the listing may be incomplete")]
    Walk(#[source] WalkError),
    /// One item of a page could not be read; an item walk yields it in the item's place and goes on.
    #[error("an item of the page could not be read")]
    Item(#[source] iot_model::RejectedItem),
}

impl Error {
    /// The call's failure, if this is one.
    pub fn call(&self) -> Option<&CallError<TransportError>> {
        match self {
            Self::Call(e) => Some(e),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (see [`CallError::is_retryable`]); a walk's and an item's errors
    /// are not.
    pub fn is_retryable(&self) -> bool {
        self.call().is_some_and(CallError::is_retryable)
    }

    /// Whether the platform may have received the request (see [`CallError::request_may_have_been_sent`]).
    pub fn request_may_have_been_sent(&self) -> bool {
        self.call().is_some_and(CallError::request_may_have_been_sent)
    }

    /// Whether the platform may have acted on the request (see [`CallError::platform_may_have_acted`]).
    pub fn platform_may_have_acted(&self) -> bool {
        self.call().is_some_and(CallError::platform_may_have_acted)
    }

    /// Whether a create failed after the platform may have acted: the task may exist, so look it up before
    /// creating it again.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Call(CallError::OutcomeUnknown { .. }))
    }

    /// The platform's error, if it answered one (also inside an unknown outcome).
    pub fn api(&self) -> Option<&ApiError> {
        self.call().and_then(CallError::api)
    }
}

impl From<CallError<TransportError>> for Error {
    fn from(e: CallError<TransportError>) -> Self {
        Self::Call(e)
    }
}
