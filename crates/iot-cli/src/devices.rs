//! Device lists from the command line and from files: one id per line, or a JSON array of ids.
//!
//! Files can hold any number of devices; the platform takes at most 256 per upgrade task (1000 per batch
//! task), so callers split the list with `chunks` and say so. Every id is checked when read, with its line
//! number in the error, so a typo at line 40 000 is found before the first task is created.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use iot_model::DeviceId;

use crate::error::Failure;

/// The devices given by `--device` options and a `--devices` file, in order, each once.
pub fn collect(ids: &[String], file: Option<&Path>) -> Result<Vec<DeviceId>, Failure> {
    let mut out = Vec::new();
    for id in ids {
        out.push(DeviceId::new(id.clone()).map_err(|e| Failure::usage(format!("--device {id:?}: {e}")))?);
    }
    if let Some(path) = file {
        out.extend(read_file(path)?);
    }
    let mut seen = BTreeSet::new();
    let before = out.len();
    out.retain(|d| seen.insert(d.as_str().to_owned()));
    if out.len() < before {
        eprintln!("note: {} repeated device id(s) left out", before - out.len());
    }
    if out.is_empty() {
        return Err(Failure::usage("no devices given").hint("the devices file is empty"));
    }
    Ok(out)
}

/// Reads a devices file (`-` for stdin).
pub fn read_file(path: &Path) -> Result<Vec<DeviceId>, Failure> {
    let name = path.display().to_string();
    let mut text = String::new();
    let read = if name == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::usage(format!("cannot read the devices file {name}: {e}")))?;
    parse(&text).map_err(|e| e.context(format!("devices file {name}")))
}

/// Parses the text of a devices file.
pub fn parse(text: &str) -> Result<Vec<DeviceId>, Failure> {
    let hint = "give one device id per line, or a JSON array of strings";
    if text.trim_start().starts_with('[') {
        let ids: Vec<String> = serde_json::from_str(text).map_err(|e| {
            Failure::usage(format!("not a JSON array of device ids (line {}, column {}): {e}", e.line(), e.column()))
                .hint(hint)
        })?;
        return ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| {
                DeviceId::new(id.clone()).map_err(|e| Failure::usage(format!("item {i}: {id:?}: {e}")).hint(hint))
            })
            .collect();
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains(char::is_whitespace) || line.contains(',') {
            return Err(Failure::usage(format!("line {}: {line:?} is not one device id", n + 1)).hint(hint));
        }
        out.push(DeviceId::new(line).map_err(|e| Failure::usage(format!("line {}: {line:?}: {e}", n + 1)).hint(hint))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lines_and_json_arrays_are_read() {
        let ids = parse("# fleet\n dev-1 \n\ndev-2\n").unwrap();
        assert_eq!(ids.iter().map(DeviceId::as_str).collect::<Vec<_>>(), ["dev-1", "dev-2"]);
        let ids = parse(r#"["a", "b"]"#).unwrap();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let e = parse("dev-1\ndev 2\n").unwrap_err();
        assert!(e.message.contains("line 2"), "{}", e.message);
        let e = parse("dev-1\n..\n").unwrap_err();
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert!(parse("[1, 2]").is_err());
    }
}
