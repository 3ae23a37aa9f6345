//! The crate's errors: a configuration that cannot be planned, a journal that cannot be read or replayed, and a
//! driver that fed an answer to the wrong question.

/// A [`crate::RolloutConfig`] that cannot be planned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The fleet names no device.
    #[error("the fleet is empty")]
    EmptyFleet,
    /// No stage was given.
    #[error("no stages")]
    NoStages,
    /// A stage is not a fraction in `(0, 1]`.
    #[error("stage {index} is {value}, not a fraction in (0, 1]")]
    StageOutOfRange {
        /// Position of the stage.
        index: usize,
        /// The stage as given.
        value: f64,
    },
    /// A stage is not larger than the one before it (stages are cumulative).
    #[error("stage {index} is not larger than the stage before it; stages are cumulative")]
    StagesNotIncreasing {
        /// Position of the stage.
        index: usize,
    },
    /// The failure threshold is not a fraction in `[0, 1]`.
    #[error("the failure threshold {0} is not a fraction in [0, 1]")]
    RateOutOfRange(f64),
    /// The task size is outside `1..=256`.
    #[error("a task holds 1 to 256 devices, not {0}")]
    TaskSize(usize),
    /// The poll interval is zero.
    #[error("the poll interval is zero")]
    ZeroPollInterval,
    /// No failed call would be tolerated at all.
    #[error("max_call_failures is zero")]
    ZeroCallFailures,
}

/// A journal that cannot be read or does not describe a rollout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A line is not a journal record.
    #[error("journal line {line} is not a record")]
    Syntax {
        /// The line, from 1.
        line: usize,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The journal is empty: the rollout never started.
    #[error("the journal is empty")]
    Empty,
    /// The first record is not the rollout's start.
    #[error("the journal does not begin with the rollout's start")]
    NoStart,
    /// The journal was written by a newer format.
    #[error("journal format {0} is not supported (this library reads format {format})", format = crate::journal::FORMAT)]
    Format(u32),
    /// A record does not fit the records before it (a wave or task that does not exist, an id for a task that
    /// was never pending, ...).
    #[error("journal record {record} does not fit the rollout: {reason}")]
    Inconsistent {
        /// The record, from 1.
        record: usize,
        /// What does not fit.
        reason: &'static str,
    },
}

/// The driver fed an answer the machine did not ask for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// No call was outstanding.
    #[error("no call is outstanding: poll first")]
    NothingOutstanding,
    /// The answer is not the answer to the outstanding call.
    #[error("the answer is a {got}, the outstanding call is a {expected}")]
    WrongAnswer {
        /// What the outstanding call answers.
        expected: &'static str,
        /// What was fed.
        got: &'static str,
    },
}
