//! Generates the simulator's own error codes (`crates/iot-sim/src/sim/codes.rs`) from the spec's
//! `[[simulator_errors]]`, so not even the codes the platform never documented are written by hand.

use std::fmt::Write as _;

use crate::spec::Spec;

pub fn sim_codes(spec: &Spec) -> String {
    let mut o = String::new();
    o.push_str(crate::HEADER);
    o.push('\n');
    for e in &spec.simulator_errors {
        let status = e.status.map_or_else(|| "in a subtask's `error`".to_owned(), |s| format!("HTTP {s}"));
        let _ = writeln!(o, "/// `{}` ({status}): {}\npub const {}: &str = {:?};", e.code, e.doc, e.name, e.code);
    }
    o
}
