//! URL safety: no identifier or filter string, however hostile, can change the shape of a request's path or
//! query; it is either refused when the identifier is built, or it travels intact and reads back equal.

use iot_model::{DeviceId, FileId, ModelError, OperationId, TaskId};
use iot_proto::server::{Router, query_pairs};
use iot_proto::wire::decode_component;
use iot_proto::*;
use proptest::prelude::*;

use crate::support::{app_id, auth, base, token};

/// Strings that have broken URL builders before, plus the ones an identifier must refuse.
const EXPLICIT: &[&str] = &[
    "..",
    ".",
    "",
    "a/b",
    "?x=1",
    "#",
    "%2F",
    "%",
    " ",
    "a b",
    "日本語",
    "../x?y=1",
    "A&B=C",
    "x&pageSize=1000",
    "a=b",
    "&",
    "=",
    "a+b",
    "+",
    "%26",
    "...",
    "/",
    "//",
    "softwareUpgrade",
    "subOperations",
    "tab\there",
    "nul\0",
    "line\nbreak",
    "\u{7f}",
    "\u{200b}",
    "emoji 🦀",
];

/// Whether the identifier rules accept `raw`, computed here independently of the model.
fn id_is_valid(raw: &str) -> bool {
    !raw.is_empty() && raw != "." && raw != ".." && !raw.chars().any(char::is_control) && raw.chars().count() <= 256
}

/// Whether a filter string is accepted (1 to 256 characters).
fn filter_is_valid(raw: &str) -> bool {
    (1..=256).contains(&raw.chars().count())
}

fn fail(context: &str, e: impl std::fmt::Debug) -> TestCaseError {
    TestCaseError::fail(format!("{context}: {e:?}"))
}

fn build<E: Endpoint>(ep: &E) -> Result<http::Request<Vec<u8>>, TestCaseError> {
    let (app, tok) = (app_id(), token());
    ep.try_into_http_request(&base(), Some(auth(&app, &tok))).map_err(|e| fail("build", e))
}

/// The keys of a raw query string, in order; each pair must have exactly one `=`.
fn query_keys(query: Option<&str>) -> Result<Vec<String>, TestCaseError> {
    let Some(q) = query else { return Ok(Vec::new()) };
    q.split('&')
        .map(|pair| {
            prop_assert_eq!(pair.matches('=').count(), 1, "pair {:?} of {:?}", pair, q);
            Ok(pair.split('=').next().unwrap_or_default().to_owned())
        })
        .collect()
}

/// Checks an id in a path placeholder: refused exactly when the rules say so, else the path keeps the
/// template's segments, the placeholder decodes back to the id, and the server reads the same request.
fn check_path<E: Endpoint, I>(
    raw: &str,
    construct: impl Fn(&str) -> Result<I, ModelError>,
    endpoint: impl Fn(I) -> E,
) -> Result<(), TestCaseError> {
    let id = match construct(raw) {
        Err(_) => {
            prop_assert!(!id_is_valid(raw), "{} refused a valid id {:?}", E::META.name, raw);
            return Ok(());
        }
        Ok(id) => {
            prop_assert!(id_is_valid(raw), "{} accepted an invalid id {:?}", E::META.name, raw);
            id
        }
    };
    let ep = endpoint(id);
    let req = build(&ep)?;
    let template: Vec<&str> = E::META.path.split('/').collect();
    let path = req.uri().path();
    let segments: Vec<&str> = path.split('/').collect();
    prop_assert_eq!(segments.len(), template.len(), "path {} for {:?}", path, raw);
    for (t, seg) in template.iter().zip(&segments) {
        if t.starts_with('{') {
            prop_assert!(!seg.contains(['/', '?', '#']), "{:?} leaked into {}", raw, path);
            let decoded = decode_component(seg, false).map_err(|e| fail("decode", e))?;
            prop_assert_eq!(decoded.as_str(), raw);
        } else {
            prop_assert_eq!(t, seg, "literal segment changed in {}", path);
        }
    }
    prop_assert_eq!(req.uri().query(), None, "{} grew a query from {:?}", E::META.name, raw);
    prop_assert_eq!(req.uri().to_string(), format!("{}{}", base().as_str(), path));
    let back = E::try_from_http_request(&req).map_err(|e| fail("server read", e))?;
    prop_assert_eq!(&back, &ep);
    let routed = Router::new().route(req.method(), path).map_err(|e| fail("route", e))?;
    prop_assert_eq!(routed.endpoint, E::META.id, "{:?} rerouted {}", raw, path);
    prop_assert!(routed.path_params.iter().any(|(_, v)| v == raw));
    Ok(())
}

/// Checks a request whose only varying part is its query: the path is the template, the query has exactly
/// `keys`, each decoding back to `raw`, and the server reads the same request.
fn check_query<E: Endpoint>(raw: &str, ep: &E, keys: &[&str]) -> Result<(), TestCaseError> {
    let req = build(ep)?;
    prop_assert_eq!(req.uri().path(), E::META.path);
    prop_assert_eq!(query_keys(req.uri().query())?, keys, "query {:?} from {:?}", req.uri().query(), raw);
    let pairs = query_pairs(req.uri().query()).map_err(|e| fail("query", e))?;
    for (k, v) in &pairs {
        if keys.contains(&k.as_str()) {
            prop_assert_eq!(v.as_str(), raw, "value of {}", k);
        }
    }
    let back = E::try_from_http_request(&req).map_err(|e| fail("server read", e))?;
    prop_assert_eq!(&back, ep);
    let routed = Router::new().route(req.method(), req.uri().path()).map_err(|e| fail("route", e))?;
    prop_assert_eq!(routed.endpoint, E::META.id);
    Ok(())
}

/// Checks an id that travels in a query.
fn check_query_id<E: Endpoint, I>(
    raw: &str,
    construct: impl Fn(&str) -> Result<I, ModelError>,
    endpoint: impl Fn(I) -> E,
    key: &str,
) -> Result<(), TestCaseError> {
    match construct(raw) {
        Err(_) => {
            prop_assert!(!id_is_valid(raw), "{} refused a valid id {:?}", E::META.name, raw);
            Ok(())
        }
        Ok(id) => {
            prop_assert!(id_is_valid(raw), "{} accepted an invalid id {:?}", E::META.name, raw);
            check_query(raw, &endpoint(id), &[key])
        }
    }
}

/// Checks free-text filters: refused exactly when empty or too long, else they add no query keys.
fn check_filters(raw: &str) -> Result<(), TestCaseError> {
    let valid = filter_is_valid(raw);
    let mut tasks = QueryUpgradeTaskList::new();
    tasks.device_type = Some(raw.to_owned());
    tasks.model = Some(raw.to_owned());
    tasks.manufacturer_name = Some(raw.to_owned());
    prop_assert_eq!(tasks.validate().is_ok(), valid, "task filters {:?}", raw);
    if valid {
        check_query(raw, &tasks, &["deviceType", "model", "manufacturerName"])?;
    }
    let mut packages = QueryPackageList::new();
    packages.device_type = Some(raw.to_owned());
    packages.model = Some(raw.to_owned());
    packages.manufacturer_name = Some(raw.to_owned());
    packages.version = Some(raw.to_owned());
    prop_assert_eq!(packages.validate().is_ok(), valid, "package filters {:?}", raw);
    if valid {
        check_query(raw, &packages, &["deviceType", "model", "manufacturerName", "version"])?;
    }
    let mut details = QueryTaskDetails::new(TaskId::new("task-1").unwrap());
    details.node_id = Some(raw.to_owned());
    prop_assert_eq!(details.validate().is_ok(), valid, "nodeId {:?}", raw);
    if valid {
        let req = build(&details)?;
        prop_assert_eq!(query_keys(req.uri().query())?, ["taskId", "nodeId"]);
        let back = QueryTaskDetails::try_from_http_request(&req).map_err(|e| fail("server read", e))?;
        prop_assert_eq!(back, details);
    }
    Ok(())
}

/// Every place an identifier or a filter string travels.
fn check_everywhere(raw: &str) -> Result<(), TestCaseError> {
    check_path(raw, |s| OperationId::new(s), QueryUpgradeTask::new)?;
    check_path(raw, |s| OperationId::new(s), QuerySubOperations::new)?;
    check_path(raw, |s| FileId::new(s), QueryPackage::new)?;
    check_path(raw, |s| FileId::new(s), DeletePackage::new)?;
    check_path(raw, |s| TaskId::new(s), QueryBatchTask::new)?;
    check_query_id(raw, |s| TaskId::new(s), QueryTaskDetails::new, "taskId")?;
    check_query_id(
        raw,
        |s| DeviceId::new(s),
        |d| {
            let mut q = QueryUpgradeTaskList::new();
            q.device_id = Some(d);
            q
        },
        "deviceId",
    )?;
    check_filters(raw)
}

#[test]
fn explicit_hostile_strings() {
    for raw in EXPLICIT {
        if let Err(e) = check_everywhere(raw) {
            panic!("{raw:?}: {e}");
        }
    }
    let long = "é".repeat(256);
    check_everywhere(&long).unwrap();
    check_everywhere(&format!("{long}x")).unwrap();
}

#[test]
fn explicit_cases_include_refused_and_accepted_ids() {
    // The explicit list must exercise both outcomes, or the checks above prove little.
    assert!(EXPLICIT.iter().filter(|s| id_is_valid(s)).count() > 20);
    for refused in ["", ".", "..", "nul\0", "line\nbreak"] {
        assert!(OperationId::new(refused).is_err(), "{refused:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn any_string_is_refused_or_travels_intact(
        raw in prop_oneof![
            prop::string::string_regex(".*").unwrap(),
            "\\PC*",
            "[a-z/?#&=%+. ]{0,6}",
            ".{250,260}",
            proptest::sample::select(EXPLICIT).prop_map(str::to_owned),
        ]
    ) {
        check_everywhere(&raw)?;
    }
}

#[test]
fn every_endpoint_with_an_id_in_its_path_is_checked() {
    // `check_everywhere` names the endpoints it builds; a new endpoint with a path id fails here until it is added.
    let source = include_str!("id_safety.rs");
    for id in EndpointId::ALL {
        let meta = id.meta();
        if meta.params.iter().any(|p| p.location == endpoint::ParamLocation::Path) {
            assert!(
                source.contains(&format!("{}::new)", meta.name)),
                "no id-safety check for the path of {}",
                meta.name
            );
        }
    }
}
