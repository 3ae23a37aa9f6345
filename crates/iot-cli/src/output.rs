//! Printing results as a table, JSON lines or CSV, with colour only where a person is looking.
//!
//! Listings go through [`Listing`]: JSON lines and CSV rows are written (and flushed) as each item arrives, so a
//! long walk streams into `jq` or a file; a table needs every row to size its columns, so it is printed at the
//! end. Single objects go through [`print_record`].

use std::io::{IsTerminal, Write};

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde::Serialize;

use crate::cli::Format;
use crate::error::Failure;

/// Whether to colour the output: only on a terminal, and never when `NO_COLOR` is set (<https://no-color.org>).
pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// A table in the house layout: no borders, headers in capitals, as wide as the terminal when there is one.
fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    // Dynamic arrangement wraps cells to the terminal's width; off a terminal comfy-table keeps rows whole.
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.iter().map(|h| Cell::new(h.to_uppercase())));
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// A cell, coloured by the state it names when colour is on.
fn cell(text: &str, color: bool) -> Cell {
    let c = Cell::new(text);
    if !color {
        return c;
    }
    match text.to_ascii_lowercase().as_str() {
        "success" | "complete" => c.fg(Color::Green),
        "fail" | "failed" | "timeout" | "stop" => c.fg(Color::Red),
        "processing" | "running" | "waitresult" => c.fg(Color::Yellow),
        _ => c,
    }
}

/// Writes one line to stdout; a closed pipe (`iotctl ... | head`) ends the command quietly.
fn write_line(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::usage(format!("cannot write the output: {e}"))),
    }
}

/// Prints text as it is, for messages that are the command's output.
pub fn say(line: &str) -> Result<(), Failure> {
    write_line(line)
}

fn json_line<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::usage(format!("cannot encode the output as JSON: {e}")))
}

fn csv_line(cells: &[String]) -> Result<String, Failure> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    w.write_record(cells).map_err(|e| Failure::usage(format!("cannot encode the output as CSV: {e}")))?;
    let bytes = w.into_inner().map_err(|e| Failure::usage(format!("cannot encode the output as CSV: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).trim_end_matches('\n').to_owned())
}

/// A listing being printed.
pub struct Listing {
    format: Format,
    header: &'static [&'static str],
    rows: Vec<Vec<String>>,
    started: bool,
}

impl Listing {
    /// A listing with these columns.
    pub fn new(format: Format, header: &'static [&'static str]) -> Self {
        Self { format, header, rows: Vec::new(), started: false }
    }

    /// Adds one item: `value` for JSON, `cells` (one per column) for tables and CSV.
    pub fn item<T: Serialize>(&mut self, value: &T, cells: Vec<String>) -> Result<(), Failure> {
        match self.format {
            Format::Json => write_line(&json_line(value)?),
            Format::Csv => {
                if !self.started {
                    self.started = true;
                    let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
                    write_line(&csv_line(&header)?)?;
                }
                write_line(&csv_line(&cells)?)
            }
            Format::Table => {
                self.rows.push(cells);
                Ok(())
            }
        }
    }

    /// Ends a listing that was cut short by a failure: what arrived is printed, an empty table says nothing.
    pub fn abandon(mut self) -> Result<(), Failure> {
        if self.rows.is_empty() {
            self.started = true;
            self.format = Format::Json;
        }
        self.finish()
    }

    /// Ends the listing: prints the table, or the CSV header of an empty listing.
    pub fn finish(self) -> Result<(), Failure> {
        match self.format {
            Format::Json => Ok(()),
            Format::Csv if !self.started => {
                let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
                write_line(&csv_line(&header)?)
            }
            Format::Csv => Ok(()),
            Format::Table if self.rows.is_empty() => {
                // Said on stderr so that the (empty) output stays empty for whoever reads it.
                eprintln!("(none)");
                Ok(())
            }
            Format::Table => {
                let color = color_enabled();
                let mut table = new_table(self.header);
                for row in self.rows {
                    table.add_row(row.iter().map(|c| cell(c, color)));
                }
                write_line(table.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n").as_str())
            }
        }
    }
}

/// Prints one object: field/value lines for a table, one JSON line, or a CSV header and row.
pub fn print_record<T: Serialize>(
    format: Format,
    value: &T,
    fields: Vec<(&'static str, String)>,
) -> Result<(), Failure> {
    match format {
        Format::Json => write_line(&json_line(value)?),
        Format::Csv => {
            let (names, values): (Vec<String>, Vec<String>) =
                fields.into_iter().map(|(n, v)| (n.to_owned(), v)).unzip();
            write_line(&csv_line(&names)?)?;
            write_line(&csv_line(&values)?)
        }
        Format::Table => {
            let color = color_enabled();
            let mut table = Table::new();
            table.load_preset(presets::NOTHING);
            table.set_content_arrangement(ContentArrangement::Dynamic);
            // Empty fields are left out of the table (JSON and CSV keep every field, for programs).
            for (name, value) in fields.iter().filter(|(_, v)| !v.is_empty()) {
                table.add_row(vec![Cell::new(format!("{name}:")), cell(value, color)]);
            }
            for column in table.column_iter_mut() {
                column.set_padding((0, 2));
            }
            write_line(table.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n").as_str())
        }
    }
}

/// An optional value as a cell: empty when absent.
pub fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A platform time (`20240603T080000Z`) as `2024-06-03 08:00:00Z`, easier to read in a table.
pub fn time(value: &Option<iot_model::Timestamp>) -> String {
    let Some(t) = value else { return String::new() };
    let s = t.to_string();
    if s.len() == 16 {
        format!("{}-{}-{} {}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_line(&["a".into(), "b,c".into(), "d\"e".into()]).unwrap(), "a,\"b,c\",\"d\"\"e\"");
    }

    #[test]
    fn times_are_spelled_for_people() {
        let t = iot_model::Timestamp::parse("20240603T080000Z").unwrap();
        assert_eq!(time(&Some(t)), "2024-06-03 08:00:00Z");
        assert_eq!(time(&None), "");
    }
}
