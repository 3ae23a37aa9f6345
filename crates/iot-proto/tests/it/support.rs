//! Helpers shared by the integration tests: fixed credentials, fixtures, and a line scan of the API spec.

use iot_model::{AccessToken, AppId};
use iot_proto::{BaseUrl, BearerAuth};

/// The API spec, read at compile time so that a changed spec rebuilds the tests.
pub const SPEC: &str = include_str!("../../../../docs/spec/northbound.toml");

/// The base URL every test request is built against.
pub fn base() -> BaseUrl {
    BaseUrl::parse("https://iot.example.com:8743").unwrap()
}

/// The application id of the test credentials.
pub fn app_id() -> AppId {
    AppId::new("app-1").unwrap()
}

/// The access token of the test credentials.
pub fn token() -> AccessToken {
    AccessToken::new("tok-123")
}

/// Credentials borrowing `app_id` and `token`.
pub fn auth<'a>(app_id: &'a AppId, token: &'a AccessToken) -> BearerAuth<'a> {
    BearerAuth { app_id, token }
}

/// The bytes of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// An HTTP answer with `status` and `body`.
pub fn response(status: u16, body: impl Into<Vec<u8>>) -> http::Response<Vec<u8>> {
    let mut r = http::Response::new(body.into());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r
}

/// The value of `key = "..."` on a spec line, if the line has one.
fn quoted_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("{key} = \"");
    let start = line.find(&pattern)? + pattern.len();
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

/// The `name` of every `[[<table>]]` entry of the spec, in spec order.
pub fn spec_names(table: &str) -> Vec<String> {
    let header = format!("[[{table}]]");
    let mut names = Vec::new();
    let mut inside = false;
    for line in SPEC.lines() {
        let line = line.trim();
        if line.starts_with("[[") || (line.starts_with('[') && !line.starts_with("[[")) {
            inside = line == header;
            continue;
        }
        if inside && line.starts_with("name = ") {
            names.extend(quoted_value(line, "name").map(str::to_owned));
            inside = false;
        }
    }
    names
}

/// JSON names of the spec's fields whose values are free-form JSON (`Json`, `JsonObject`, `{Json}`): `null`
/// may legitimately appear inside them.
pub fn free_form_fields() -> Vec<String> {
    SPEC.lines()
        .filter(|l| l.trim_start().starts_with("{ json = "))
        .filter(|l| matches!(quoted_value(l, "type"), Some("Json" | "JsonObject" | "{Json}" | "[Json]")))
        .filter_map(|l| quoted_value(l, "json").map(str::to_owned))
        .collect()
}

/// The JSON name of every answer field the spec marks `nullable = true` (written as `null` when absent).
pub fn nullable_fields() -> Vec<String> {
    SPEC.lines()
        .filter(|l| l.trim_start().starts_with("{ json = ") && l.contains("nullable = true"))
        .filter_map(|l| quoted_value(l, "json").map(str::to_owned))
        .collect()
}

/// Every error `code = "..."` attached to a field or parameter limit in the spec.
pub fn spec_limit_codes() -> Vec<String> {
    SPEC.lines()
        .filter(|l| l.trim_start().starts_with("{ json = "))
        .filter_map(|l| quoted_value(l, "code").map(str::to_owned))
        .collect()
}

/// Where `null` occurs in `value`, outside free-form members, as JSON paths.
pub fn nulls_outside_free_form(value: &serde_json::Value, free_form: &[String]) -> Vec<String> {
    fn walk(v: &serde_json::Value, path: &str, free_form: &[String], out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null => out.push(if path.is_empty() { ".".to_owned() } else { path.to_owned() }),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), free_form, out);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    if free_form.iter().any(|f| f == k) {
                        continue;
                    }
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(item, &p, free_form, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", free_form, &mut out);
    out
}

#[test]
fn spec_scan_finds_the_declared_tables() {
    // Guards the line scan itself: if the spec's layout changes, coverage checks must not pass vacuously.
    let structs = spec_names("structs");
    assert!(structs.len() >= 20, "{structs:?}");
    assert!(structs.contains(&"OperationInfo".to_owned()));
    assert_eq!(spec_names("endpoints").len(), iot_proto::EndpointId::ALL.len());
    let free = free_form_fields();
    for f in ["extendPara", "extendInfo", "param", "paras"] {
        assert!(free.iter().any(|x| x == f), "{f} missing from {free:?}");
    }
    assert!(spec_limit_codes().contains(&"123029".to_owned()));
    let nullable = nullable_fields();
    for f in ["stopTime", "policy"] {
        assert!(nullable.iter().any(|x| x == f), "{f} missing from {nullable:?}");
    }
}
