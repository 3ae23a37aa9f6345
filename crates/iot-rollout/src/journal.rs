//! The rollout's journal: one record per decision, written as JSON lines, from which
//! [`crate::Rollout::resume`] rebuilds the machine after the process that drove it died.
//!
//! The driver appends the records [`crate::Rollout::take_records`] hands it to a file, one JSON object per line,
//! and makes them durable (write and `fsync`) after every `poll` and every `handle_*`, and in any case before it
//! sends a create: the create's [`Record::CreatePending`] must be on disk before the request can reach the
//! platform. A process killed while writing leaves at most a torn last line; [`Journal::from_json_lines`] drops
//! such a line (a line without its newline that does not parse), which is safe because the driver sends nothing
//! before the line is whole; the driver cuts the file back to its last newline before appending again. The
//! records and their meaning are listed in `docs/rollout.md`.

use iot_model::{DeviceId, OperationId};
use serde::{Deserialize, Serialize};

use crate::error::JournalError;
use crate::plan::Plan;
use crate::report::{FailedDevice, HaltReason, TaskCounts};

/// The journal format this library writes and reads, in [`Record::Started`].
pub const FORMAT: u32 = 1;

/// One decision of a rollout. Times are milliseconds since the Unix epoch on the driver's clock (`at_ms`);
/// waves and tasks are positions in the [`Plan`], from 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// The rollout began with this plan. Always the first record.
    Started {
        /// [`FORMAT`] of the writer.
        format: u32,
        /// When.
        at_ms: u64,
        /// Everything the rollout will do.
        plan: Plan,
    },
    /// The package exists and is of the rollout's kind.
    PackageChecked {
        /// When.
        at_ms: u64,
        /// The package's version, which the platform reports in each task's `extendPara.fileVersion`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// A wave began.
    WaveStarted {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
    },
    /// A create is about to be sent. Written before the request exists, so that a resume knows the task may
    /// exist even if the process died before the answer arrived.
    CreatePending {
        /// When, on the driver's clock: a task this create made was created no earlier (give or take the
        /// plan's lookup margin).
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Which task of the wave.
        task: usize,
        /// The devices it names (the same as the plan's, repeated so that the record reads alone).
        devices: Vec<DeviceId>,
    },
    /// The task exists.
    Created {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Which task of the wave.
        task: usize,
        /// The platform's id of the task.
        operation_id: OperationId,
        /// `false` when the create's answer gave the id, `true` when a resume found the task in the task list.
        found_by_lookup: bool,
    },
    /// A resume looked for a pending create's task through the whole task list and it is not there: the create
    /// never reached the platform, and it is sent again (after a new [`Record::CreatePending`]).
    LookupAbsent {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Which task of the wave.
        task: usize,
    },
    /// The create failed in a way that proves the platform did not make the task (it refused it, or the request
    /// never left).
    CreateNotMade {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Which task of the wave.
        task: usize,
        /// The driver's description of the failure.
        error: String,
    },
    /// The task reached a final state (every device succeeded, failed or was stopped).
    TaskFinished {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Which task of the wave.
        task: usize,
        /// The task's final `staResult`.
        counts: TaskCounts,
    },
    /// The devices of a finished task that failed or were stopped, with their causes.
    FailuresListed {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Which task of the wave.
        task: usize,
        /// The devices, in the platform's order.
        failed: Vec<FailedDevice>,
    },
    /// Every task of the wave finished; the wave was judged.
    WaveFinished {
        /// When.
        at_ms: u64,
        /// Which wave.
        wave: usize,
        /// Devices in the wave.
        devices: u64,
        /// Devices that failed or were stopped.
        failed: u64,
        /// Whether the failure rate was at or under the threshold.
        passed: bool,
    },
    /// The rollout halted. A halt that [`HaltReason::is_final`] says is not final (calls kept failing) is
    /// passed over by a resume, which carries on where the rollout stood.
    Halted {
        /// When.
        at_ms: u64,
        /// Why.
        reason: HaltReason,
    },
    /// Every wave passed.
    Completed {
        /// When.
        at_ms: u64,
    },
}

impl Record {
    /// The record as one line of JSON, newline included.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(line)
    }
}

/// Every record of a rollout, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Journal {
    records: Vec<Record>,
}

impl Journal {
    /// A journal of these records.
    pub fn from_records(records: Vec<Record>) -> Self {
        Self { records }
    }

    /// The records, oldest first.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Appends a record.
    pub fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    /// The whole journal as JSON lines.
    pub fn to_json_lines(&self) -> Result<String, serde_json::Error> {
        let mut out = String::new();
        for record in &self.records {
            out.push_str(&record.to_json_line()?);
        }
        Ok(out)
    }

    /// Reads JSON lines; blank lines are skipped, and a torn last line (no newline, not a record) is dropped.
    pub fn from_json_lines(text: &str) -> Result<Self, JournalError> {
        let mut records = Vec::new();
        let torn_tail = !text.is_empty() && !text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(record) => records.push(record),
                // Only the last line can be torn by a crash; the driver sent nothing that depends on it.
                Err(_) if torn_tail && i + 1 == lines.len() => break,
                Err(source) => return Err(JournalError::Syntax { line: i + 1, source }),
            }
        }
        Ok(Self { records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{RolloutConfig, UpgradeKind};
    use iot_model::FileId;

    fn journal() -> Journal {
        let fleet = (0..3).map(|i| DeviceId::new(format!("d{i}")).unwrap()).collect();
        let plan = RolloutConfig::new(FileId::new("pkg").unwrap(), UpgradeKind::Software, fleet).plan().unwrap();
        let devices = plan.waves[0].tasks[0].clone();
        Journal::from_records(vec![
            Record::Started { format: FORMAT, at_ms: 1, plan },
            Record::CreatePending { at_ms: 2, wave: 0, task: 0, devices },
        ])
    }

    #[test]
    fn json_lines_round_trip_one_object_per_line() {
        let j = journal();
        let text = j.to_json_lines().unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).unwrap().starts_with(r#"{"event":"create_pending","at_ms":2,"wave":0"#));
        assert_eq!(Journal::from_json_lines(&text).unwrap(), j);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_a_bad_middle_line_is_an_error() {
        let text = journal().to_json_lines().unwrap();
        let torn = &text[..text.len() - 10];
        assert_eq!(Journal::from_json_lines(torn).unwrap().records().len(), 1);
        let broken = text.replacen("create_pending", "create_pendin", 1) + &text;
        assert!(matches!(Journal::from_json_lines(&broken), Err(JournalError::Syntax { line: 2, .. })));
    }
}
