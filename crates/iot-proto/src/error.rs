//! Errors of the protocol layer: bad input, platform errors, undecodable answers.

use std::fmt;

use http::StatusCode;

use crate::generated::{ERROR_CATALOG, ErrorCode};

/// How a platform error code should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The request is wrong and will stay wrong; do not retry.
    Permanent,
    /// The application is over its call rate; retry later.
    Throttled,
    /// The access token (or app_key) is invalid or expired; renew the token and retry once.
    TokenInvalid,
    /// The platform failed; an idempotent call may be retried.
    Server,
}

/// One row of the error catalog, generated from the spec.
#[derive(Debug)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// The wire code, such as `1010009`.
    pub code: &'static str,
    /// The name of its [`ErrorCode`] variant.
    pub name: &'static str,
    /// Every HTTP status the code is documented with, the usual one first.
    pub statuses: &'static [u16],
    /// How to handle it.
    pub class: ErrorClass,
    /// What it means.
    pub doc: &'static str,
}

impl ErrorCode {
    /// The catalog entry of a known code.
    pub fn info(&self) -> Option<&'static ErrorInfo> {
        let wire = self.as_str();
        ERROR_CATALOG.iter().find(|e| e.code == wire)
    }

    /// The usual HTTP status of a known code; 400 for unknown ones.
    pub fn status(&self) -> StatusCode {
        self.info()
            .and_then(|i| i.statuses.first())
            .and_then(|s| StatusCode::from_u16(*s).ok())
            .unwrap_or(StatusCode::BAD_REQUEST)
    }
}

/// How to handle an error answer: by its `error_code` in the generated catalog first (the platform reuses 403
/// for throttling, bad tokens and permissions), by its HTTP status second. The one classification of answers;
/// [`ApiError::class`] and the retry policy both read it.
pub fn classify_answer(status: u16, error_code: Option<&str>) -> ErrorClass {
    let known = error_code.map(str::trim).map(<ErrorCode as iot_model::WireEnum>::from_wire);
    if let Some(info) = known.as_ref().and_then(ErrorCode::info) {
        return info.class;
    }
    match status {
        429 => ErrorClass::Throttled,
        500 | 502 | 503 | 504 => ErrorClass::Server,
        _ => ErrorClass::Permanent,
    }
}

/// Longest part of an unexpected body kept in an error, in bytes.
pub const EXCERPT_LIMIT: usize = 512;

/// A bounded, lossy UTF-8 excerpt of a body, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    let cut = body.len().min(EXCERPT_LIMIT);
    let mut s = String::from_utf8_lossy(&body[..cut]).into_owned();
    if body.len() > cut {
        s.push_str("...");
    }
    s
}

/// An error answered by the platform (or by something in front of it, such as a proxy).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The platform's `error_code`, when the body carried one.
    pub code: Option<ErrorCode>,
    /// The platform's `error_desc`, when the body carried one.
    pub description: Option<String>,
    /// A bounded excerpt of a body that was not a platform error (an HTML page from a proxy, say).
    pub body_excerpt: Option<String>,
}

impl ApiError {
    /// An error with a platform code, at the code's usual status.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self { status: code.status(), code: Some(code), description: Some(description.into()), body_excerpt: None }
    }

    /// Reads an error answer: the platform's JSON error body when there is one, else an excerpt of the body.
    pub fn from_body(status: StatusCode, body: &[u8]) -> Self {
        match probe_error_body(body) {
            Some((code, description)) => Self { status, code, description, body_excerpt: None },
            None => Self {
                status,
                code: None,
                description: None,
                body_excerpt: if body.is_empty() { None } else { Some(excerpt(body)) },
            },
        }
    }

    /// How to handle this error: by its code first, then by its status.
    pub fn class(&self) -> ErrorClass {
        classify_answer(self.status.as_u16(), self.code.as_ref().map(ErrorCode::as_str))
    }

    /// The call was refused because the application exceeded its call rate (`1010009`).
    pub fn is_throttled(&self) -> bool {
        self.class() == ErrorClass::Throttled
    }

    /// The access token or app_key was refused (`1010005`); renew the token and retry once.
    pub fn is_token_invalid(&self) -> bool {
        self.class() == ErrorClass::TokenInvalid
    }

    /// The platform (or a proxy) failed rather than the request.
    pub fn is_server_error(&self) -> bool {
        self.class() == ErrorClass::Server
    }

    /// Whether trying the same call again later may succeed: throttling, a server failure, a rejected token.
    pub fn is_retryable(&self) -> bool {
        self.class() != ErrorClass::Permanent
    }

    /// Whether the answer proves that the platform refused the request without acting on it.
    ///
    /// It does when it carries a platform `error_code` that is not a server failure: the throttling (`1010009`)
    /// and rejected-token (`1010005`) codes under any status, other documented codes unless they report an
    /// internal error, and undocumented codes under a status that is neither 429 nor 5xx. Answers without a code
    /// (429, 5xx, HTML pages from a proxy) may come from something in front of the platform after it acted, so
    /// they prove nothing.
    pub fn proves_refusal(&self) -> bool {
        let Some(code) = &self.code else { return false };
        match code.info().map(|info| info.class) {
            Some(ErrorClass::Throttled | ErrorClass::TokenInvalid | ErrorClass::Permanent) => true,
            // An internal error may have struck halfway through the work.
            Some(ErrorClass::Server) => false,
            // An undocumented code is read by its status: a load-shedding or server status proves nothing.
            _ => self.status.as_u16() != 429 && !self.status.is_server_error(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "platform answered {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " with error {code}")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        } else if let Some(ex) = &self.body_excerpt {
            write!(f, ": {ex}")?;
        } else if self.status.is_redirection() {
            f.write_str(" (redirects are not followed)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The member that marks a platform error object.
pub(crate) const ERROR_CODE: &str = "error_code";
/// The member that describes a platform error.
pub(crate) const ERROR_DESC: &str = "error_desc";

/// Reads a platform error body, if `body` is one: a JSON object whose top level carries `error_code` (or,
/// without a code, `error_desc`) with a value. Members deeper down (an item's escaped `error`, say) do not
/// count, so a page is never taken for an error.
pub fn probe_error_body(body: &[u8]) -> Option<(Option<ErrorCode>, Option<String>)> {
    // Cheap refusals first: an error object is a JSON object and names one of the two members.
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[start] != b'{' {
        return None;
    }
    // JSON is UTF-8 throughout: skipping a value does not check its bytes, so the whole body is checked first,
    // or a body a JSON reader refuses (a bad byte in a skipped member) could still pass for an error object.
    let text = std::str::from_utf8(body).ok()?;
    // Only the two members are read; every other value is skipped, not built, so that probing a huge body
    // costs no memory.
    let probe = iot_model::de::with_budget(crate::client::decode_budget(body.len()), || {
        serde_json::from_str::<ErrorProbe>(text)
    })
    .ok()?;
    let (code, description) = (probe.code.flatten(), probe.description.flatten());
    if code.is_none() && description.is_none() {
        return None;
    }
    Some((code.map(|c| <ErrorCode as iot_model::WireEnum>::from_wire(c.trim())), description))
}

/// The top-level error members of a JSON object, each read as free text; a member read as text that fails is
/// absent. A member sent twice keeps its last value, as in a `serde_json` map.
struct ErrorProbe {
    code: Option<Option<String>>,
    description: Option<Option<String>>,
}

impl<'de> serde::Deserialize<'de> for ErrorProbe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ErrorProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ErrorProbe, A::Error> {
                let mut probe = ErrorProbe { code: None, description: None };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        ERROR_CODE => &mut probe.code,
                        ERROR_DESC => &mut probe.description,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<Text>()?.0);
                }
                Ok(probe)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A value read with the tolerant reader's free-text rule.
struct Text(Option<String>);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        iot_model::de::text(deserializer).map(Text)
    }
}

/// The error a top-level JSON object carries, if any: its `error_code` and `error_desc` read as free text
/// (a numeric code is read as its digits). `null` members count as absent.
pub fn error_members(
    members: &serde_json::Map<String, serde_json::Value>,
) -> Option<(Option<ErrorCode>, Option<String>)> {
    let text = |name: &str| members.get(name).and_then(|v| iot_model::de::text(v).ok().flatten());
    let code = text(ERROR_CODE);
    let description = text(ERROR_DESC);
    if code.is_none() && description.is_none() {
        return None;
    }
    Some((code.map(|c| <ErrorCode as iot_model::WireEnum>::from_wire(c.trim())), description))
}

/// A request that breaks a rule of the contract; it was never sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationError {
    /// The offending field, as a JSON path such as `targets.devices` or `tags[3].tagName`.
    pub field: String,
    /// The rule it breaks, in words.
    pub rule: String,
    /// The code the platform answers for this rule, when it has a specific one.
    pub code: Option<ErrorCode>,
}

impl ValidationError {
    /// A violation of `rule` by `field`, with the platform's code for it if any.
    pub fn new(field: impl Into<String>, rule: impl Into<String>, code: Option<ErrorCode>) -> Self {
        Self { field: field.into(), rule: rule.into(), code }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for ValidationError {}

/// An answer whose body could not be read as the expected type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// JSON path of the failure, such as `data[3].createTime` (`.` for the whole body).
    pub path: String,
    /// What was wrong there.
    pub message: String,
    /// A bounded excerpt of the body.
    pub body_excerpt: String,
    /// What kind of failure this is.
    pub kind: DecodeErrorKind,
}

/// What made an answer undecodable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The body does not read as the expected type.
    Unreadable,
    /// A page holds more items than the largest page of its family; the items past the largest page were not
    /// read. The platform never answers more than it may, so the answer is not the platform's, or the platform
    /// broke its contract.
    OversizedPage {
        /// The largest page size of the family.
        max: u32,
    },
    /// The body decodes into more memory than the client allows a body of its size (see
    /// [`decode_budget`](crate::client::decode_budget)).
    OverBudget {
        /// The budget, in bytes.
        budget: usize,
    },
}

impl DecodeError {
    /// An answer with `status` unreadable at `path` (`.` for the whole body) for `message`.
    pub fn new(status: StatusCode, path: impl Into<String>, message: impl Into<String>, body: &[u8]) -> Self {
        Self {
            status,
            path: path.into(),
            message: message.into(),
            body_excerpt: excerpt(body),
            kind: DecodeErrorKind::Unreadable,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode the {} answer at `{}`: {}", self.status, self.path, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Why a request could not be turned into HTTP; nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntoHttpError {
    /// The request breaks a rule of the contract.
    #[error("invalid request")]
    Invalid(#[source] ValidationError),
    /// The endpoint needs `app_key` and a bearer token, and none were given.
    #[error("endpoint {endpoint} needs an app id and an access token")]
    MissingCredentials {
        /// The endpoint's name.
        endpoint: &'static str,
    },
}

/// Why an HTTP answer is not the endpoint's success: the platform refused, or the body is unreadable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FromHttpResponseError {
    /// The platform answered with an error.
    #[error("platform error")]
    Api(#[source] ApiError),
    /// The answer could not be decoded.
    #[error("undecodable answer")]
    Decode(#[source] DecodeError),
}

impl FromHttpResponseError {
    /// The platform error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            Self::Decode(_) => None,
        }
    }
}

impl From<ValidationError> for IntoHttpError {
    fn from(e: ValidationError) -> Self {
        Self::Invalid(e)
    }
}

impl From<ApiError> for FromHttpResponseError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<DecodeError> for FromHttpResponseError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}
