//! `cargo xtask lint`: no error code and no rule number is written by hand. Codes come from the generated
//! `ErrorCode` (or the simulator's generated `codes`), limits from the generated `iot_model::limits`; a code
//! typed as a string literal compiles and silently becomes an unknown code, so this finds them with file:line.
//!
//! It reads the production sources (`crates/*/src` and `crates/*/examples`), skipping generated files (they
//! start with [`crate::HEADER`]) and, in each file, every item marked `#[cfg(test)]` at the start of a line: tests
//! may spell out what goes on the wire. In the validation sources it also refuses integer literals other than 0
//! and 1, since every rule's number lives in the spec's `[[limits]]`.

use std::path::{Path, PathBuf};

use crate::spec::Spec;

/// The hand-written validation code, where any number other than 0 and 1 is a rule's number.
const RULE_FILES: &[&str] = &["crates/iot-proto/src/validate.rs", "crates/iot-proto/src/rules.rs"];

/// Runs the lint over the workspace and reports every finding.
pub fn run(root: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(root.join("docs/spec/northbound.toml")).map_err(|e| e.to_string())?;
    let spec: Spec = toml::from_str(&text).map_err(|e| format!("docs/spec/northbound.toml: {e}"))?;
    let findings = lint_tree(root, &spec)?;
    if findings.is_empty() {
        println!("no hand-written error codes or rule numbers");
        Ok(())
    } else {
        Err(format!("{} finding(s):\n{}", findings.len(), findings.join("\n")))
    }
}

/// Every finding in the production sources under `root`, as `path:line: what`.
pub fn lint_tree(root: &Path, spec: &Spec) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    let crates = root.join("crates");
    for entry in read_dir(&crates)? {
        for dir in ["src", "examples"] {
            collect_rs(&entry.join(dir), &mut files)?;
        }
    }
    files.sort();
    let mut findings = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let rel = file.strip_prefix(root).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        findings.extend(lint_source(&rel, &text, spec, RULE_FILES.contains(&rel.as_str())));
    }
    Ok(findings)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(entries.filter_map(Result::ok).map(|e| e.path()).collect())
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if !dir.is_dir() {
        return Ok(());
    }
    for path in read_dir(dir)? {
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The findings of one source file; `rules` also refuses rule numbers.
pub fn lint_source(path: &str, text: &str, spec: &Spec, rules: bool) -> Vec<String> {
    if text.starts_with(crate::HEADER.trim_end()) {
        return Vec::new();
    }
    let mut findings = Vec::new();
    // Inside a `#[cfg(test)]` item: the brace depth its body opened at, once it has opened.
    let (mut depth, mut test_item): (usize, Option<Option<usize>>) = (0, None);
    for token in tokens(text) {
        match (&token.kind, test_item) {
            (TokenKind::CfgTest, None) => test_item = Some(None),
            (TokenKind::Open, Some(None)) => test_item = Some(Some(depth)),
            // An item without a body (`#[cfg(test)] use ...;`) ends at its semicolon.
            (TokenKind::Semi, Some(None)) => test_item = None,
            (TokenKind::Close, Some(Some(d))) if depth == d + 1 => test_item = None,
            _ => {}
        }
        match token.kind {
            TokenKind::Open => depth += 1,
            TokenKind::Close => depth = depth.saturating_sub(1),
            _ => {}
        }
        if test_item.is_some() {
            continue;
        }
        match token.kind {
            TokenKind::Str(s) if looks_like_code(&s, spec) => {
                let hint = match spec.errors.iter().find(|e| e.code == s) {
                    Some(e) => format!("use ErrorCode::{}", e.name),
                    None => match spec.simulator_errors.iter().find(|e| e.code == s) {
                        Some(e) => format!("use codes::{}", e.name),
                        None => "no such code in docs/spec/northbound.toml".to_owned(),
                    },
                };
                findings.push(format!("{path}:{}: error code literal \"{s}\"; {hint}", token.line));
            }
            TokenKind::Int(n) if rules && !matches!(n.as_str(), "0" | "1") => {
                findings.push(format!(
                    "{path}:{}: rule number {n} in validation code; name it in the spec's [[limits]]",
                    token.line
                ));
            }
            _ => {}
        }
    }
    findings
}

/// A string literal that is a code: one the spec knows, or five to seven digits (the platform's codes are
/// 5 to 7 digits long; a mistyped one is the reason for this lint).
fn looks_like_code(s: &str, spec: &Spec) -> bool {
    let digits = (5..=7).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
    digits || spec.errors.iter().any(|e| e.code == s) || spec.simulator_errors.iter().any(|e| e.code == s)
}

#[derive(Debug, PartialEq)]
enum TokenKind {
    /// A string literal's contents (escapes left as written).
    Str(String),
    /// An integer literal, without its suffix.
    Int(String),
    /// `{`.
    Open,
    /// `}`.
    Close,
    /// `;`.
    Semi,
    /// `#[cfg(test)]` at the start of a line.
    CfgTest,
}

#[derive(Debug, PartialEq)]
struct Token {
    kind: TokenKind,
    line: usize,
}

/// The string and integer literals, braces and `#[cfg(test)]` markers of Rust source, with their lines;
/// comments, identifiers, character literals, lifetimes and floats are skipped. Enough of a lexer for this
/// lint, not a general one.
fn tokens(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                line += usize::from(c[i] == '\n');
                i += 1;
            }
            i += 2;
        } else if ch == 'r' && matches!(c.get(i + 1), Some('"' | '#')) && !ident_before(&c, i) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                i = j;
                continue;
            }
            let (start_line, start) = (line, j + 1);
            j += 1;
            while j < c.len() && !(c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#'))) {
                line += usize::from(c[j] == '\n');
                j += 1;
            }
            out.push(Token { kind: TokenKind::Str(c[start..j.min(c.len())].iter().collect()), line: start_line });
            i = j + 1 + hashes;
        } else if ch == '"' {
            let (start_line, start) = (line, i + 1);
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                line += usize::from(c.get(j) == Some(&'\n'));
                j += 1;
            }
            out.push(Token { kind: TokenKind::Str(c[start..j.min(c.len())].iter().collect()), line: start_line });
            i = j + 1;
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\''), or a lifetime ('a), which has no closing quote.
            if c.get(i + 1) == Some(&'\\') {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch == ';' {
            out.push(Token { kind: TokenKind::Semi, line });
            i += 1;
        } else if ch == '{' || ch == '}' {
            out.push(Token { kind: if ch == '{' { TokenKind::Open } else { TokenKind::Close }, line });
            i += 1;
        } else if ch == '#' && (i == 0 || c[i - 1] == '\n') && c[i..].starts_with(&CFG_TEST) {
            out.push(Token { kind: TokenKind::CfgTest, line });
            i += CFG_TEST.len();
        } else if ch.is_alphabetic() || ch == '_' {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let float = c.get(i) == Some(&'.') && c.get(i + 1).is_some_and(char::is_ascii_digit);
            if float {
                i += 1;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            } else {
                let raw: String = c[start..i].iter().collect();
                let number = strip_suffix(&raw).replace('_', "");
                out.push(Token { kind: TokenKind::Int(number), line });
            }
        } else {
            i += 1;
        }
    }
    out
}

const CFG_TEST: [char; 12] = ['#', '[', 'c', 'f', 'g', '(', 't', 'e', 's', 't', ')', ']'];

/// Whether the character before `i` continues an identifier (so `r` is not a raw string's prefix).
fn ident_before(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// An integer literal without its type suffix (`256usize`, `3_u32`).
fn strip_suffix(s: &str) -> &str {
    for suffix in ["u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize"] {
        if let Some(n) = s.strip_suffix(suffix) {
            return n;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let text = std::fs::read_to_string(crate::project_root().join("docs/spec/northbound.toml")).unwrap();
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_production_sources_have_no_hand_written_codes_or_rule_numbers() {
        let findings = lint_tree(&crate::project_root(), &spec()).unwrap();
        assert!(findings.is_empty(), "{}", findings.join("\n"));
    }

    #[test]
    fn codes_are_found_with_their_line_and_the_variant_to_use() {
        let src = "//! x\nfn f() {\n    // \"123029\" in a comment is fine\n    let s = 404;\n    v.fail(\"a\", \"b\", Some(\"123029\"));\n    let t = \"1234567\";\n    let r = r#\"900404\"#;\n}\n#[cfg(test)]\nuse x::y;\n#[cfg(test)]\nmod tests { fn t() { let x = \"123029\"; } }\nconst C: &str = \"100022\";\n";
        let found = lint_source("a.rs", src, &spec(), false);
        assert_eq!(
            found,
            [
                "a.rs:5: error code literal \"123029\"; use ErrorCode::PageOutOfRange",
                "a.rs:6: error code literal \"1234567\"; no such code in docs/spec/northbound.toml",
                "a.rs:7: error code literal \"900404\"; use codes::NOT_FOUND",
                "a.rs:13: error code literal \"100022\"; use ErrorCode::InvalidInput",
            ]
        );
    }

    #[test]
    fn rule_numbers_are_found_in_validation_code_only() {
        let src = "//! x\nfn f(x: u32) -> bool {\n    let a = 'a';\n    let l: &'static str = \"256\";\n    x > 1 && x < 256_u32 && x != 0 && y.0 > 2.5\n}\n";
        assert_eq!(
            lint_source("r.rs", src, &spec(), true),
            ["r.rs:5: rule number 256 in validation code; name it in the spec's [[limits]]"]
        );
        assert!(lint_source("r.rs", src, &spec(), false).is_empty());
    }

    #[test]
    fn generated_files_are_skipped() {
        let src = format!("{}\nconst C: &str = \"123029\";\n", crate::HEADER.trim_end());
        assert!(lint_source("g.rs", &src, &spec(), true).is_empty());
    }
}
