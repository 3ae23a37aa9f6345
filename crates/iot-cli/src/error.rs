//! How a command fails: one line on stderr with the platform's code and a hint, and an exit code per kind.
//!
//! The exit codes are part of the command line's interface (scripts branch on them) and are listed in
//! docs/cli.md; change them only together with that page.

use std::borrow::Cow;
use std::fmt;

use iot_hyper::Error;
use iot_proto::ErrorCode;

/// The exit codes of `iotctl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked (a watched task ended successfully).
    Ok = 0,
    /// The command line, a profile, the secret or an input file is wrong; nothing was sent.
    Usage = 1,
    /// The platform answered and refused the call (its error code is printed).
    Refused = 2,
    /// The platform could not be reached, or the exchange broke off or timed out.
    Unreachable = 3,
    /// A create failed after the platform may have acted: the task may exist.
    OutcomeUnknown = 4,
    /// A watched task ended badly: some devices failed, it timed out or it was stopped.
    TaskFailed = 5,
    /// The platform's answer could not be read, or a listing did not add up.
    BadAnswer = 6,
}

/// A failed command: what went wrong, a hint of what to do, and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, on one line.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with this exit code.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self { exit, message: message.into(), hint: None }
    }

    /// A usage failure (exit 1).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the causes held: a log line or a `2>` capture reads it whole.
        write!(f, "iotctl: error: {}", crate::config::one_line(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {})", crate::config::one_line(hint))?;
        }
        Ok(())
    }
}

/// The hint for a platform error code.
pub fn hint_for_code(code: &ErrorCode) -> Option<Cow<'static, str>> {
    use ErrorCode as C;
    if *code == C::TooManyTargets {
        // The number is the spec's, so the hint cannot drift from the limit iotctl splits by.
        let max = iot_model::limits::MAX_TARGETS;
        return Some(
            format!("at most {max} devices per task; pass them with --devices FILE and iotctl splits them").into(),
        );
    }
    let hint = match code {
        C::TokenInvalid => "check the app id/secret; the token was refused (another login of the same app replaces it)",
        C::Throttled => "slow down or raise the rate limit: the app exceeded its calls per minute",
        C::BadCredentials => "check the app id/secret",
        C::AppNotFound | C::AppNotAuthorized => "check the app id of the profile",
        C::AppFrozen => "the app is frozen; ask the platform's administrator",
        C::RequiredParameterMissing => "the secret is empty; set IOTCTL_SECRET",
        C::DeviceOrPackageNotFound => "no such device or package; check the ids (`iotctl packages list`)",
        C::TaskNotFound => "no such upgrade task; check the id (`iotctl tasks list`)",
        C::BatchTaskNotFound => "no such batch task; check the id",
        C::VersionMismatch => "the package does not fit the devices: their type, model or manufacturer differ",
        C::PageOutOfRange => "page number or size out of range",
        C::StartInPast => "the window starts in the past; give a later --start-time",
        C::StartAfterEnd | C::WindowTooShort | C::BadWindow => {
            "check --start-time and --end-time (yyyyMMddTHHmmssZ, at least an hour apart)"
        }
        C::BadRequest | C::InvalidInput => {
            "the platform refused the request's parameters; check them against docs/cli.md"
        }
        C::InternalError | C::InvalidRefreshInput => "the platform failed internally; try again later",
        _ => return None,
    };
    Some(hint.into())
}

/// The whole cause chain of an error, joined with `: `, each message said once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Layers often repeat their cause's words ("could not connect to the platform: could not connect").
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = chain(&e);
        if e.outcome_unknown() {
            return Failure::new(Exit::OutcomeUnknown, message)
                .hint("look for the task (`iotctl tasks list` / `iotctl batch show`) before creating it again");
        }
        if let Some(api) = e.api() {
            let code = api.code.as_ref().map(|c| c.as_str().to_owned());
            let what = api.description.clone().or(api.body_excerpt.clone()).unwrap_or_default();
            let message = match &code {
                Some(code) => format!("the platform refused the call with code {code} (HTTP {}): {what}", api.status),
                None => format!("the platform refused the call (HTTP {}): {what}", api.status),
            };
            let mut failure = Failure::new(Exit::Refused, message);
            if let Some(hint) = api.code.as_ref().and_then(hint_for_code) {
                failure = failure.hint(hint);
            } else if let Some(doc) = api.code.as_ref().and_then(|c| c.info()).map(|i| i.doc) {
                failure = failure.hint(doc);
            }
            return failure;
        }
        match e.cause() {
            Error::Invalid(_) => {
                // Nothing was sent, so the platform's hint for the same rule would mislead; say what to fix.
                Failure::usage(message).hint("nothing was sent; fix the value (see `iotctl COMMAND --help`)")
            }
            Error::Config(_) => {
                Failure::usage(message).hint("check the CA file and the client certificate and key of the profile")
            }
            Error::Connect(_) => {
                Failure::new(Exit::Unreachable, message).hint("check the base URL and that the platform is reachable")
            }
            Error::Tls(_) => Failure::new(Exit::Unreachable, message)
                .hint("check the CA file (ca_file) and the client certificate and key of the profile"),
            Error::Timeout(_) | Error::Transport(_) => Failure::new(Exit::Unreachable, message)
                .hint("the platform is slow or unreachable; try again, or raise --timeout"),
            _ => Failure::new(Exit::BadAnswer, message).hint("the platform's answer was not what the API documents"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iot_proto::ApiError;

    #[test]
    fn platform_errors_exit_2_with_the_code_and_a_hint() {
        let api = ApiError::new(ErrorCode::TokenInvalid, "invalid access token");
        let f = Failure::from(Error::Api(api));
        assert_eq!(f.exit, Exit::Refused);
        let line = f.to_string();
        assert!(line.contains("1010005"), "{line}");
        assert!(line.contains("check the app id/secret"), "{line}");
        assert!(!line.contains('\n'));
        let f = Failure::from(Error::Api(ApiError::new(ErrorCode::Throttled, "app throttle exceed")));
        assert!(f.to_string().contains("slow down or raise the rate limit"));
        let f = Failure::from(Error::Api(ApiError::new(ErrorCode::DeviceOrPackageNotFound, "no")));
        assert!(f.to_string().contains("no such device or package"));
    }

    #[test]
    fn outcome_unknown_exits_4() {
        let inner = Error::Api(ApiError::new(ErrorCode::InternalError, "boom"));
        let e = Error::OutcomeUnknown { endpoint: "CreateBatchTask", source: Box::new(inner) };
        assert_eq!(Failure::from(e).exit, Exit::OutcomeUnknown);
    }
}
