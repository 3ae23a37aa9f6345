//! The API spec (`docs/spec/northbound.toml`): its shape, and the checks run before anything is generated.

// The mirror structs below are documented by the spec file's own header; repeating it per field adds nothing.
#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The whole spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub api: Api,
    pub paging: Vec<Paging>,
    pub limits: Vec<Limit>,
    pub ids: Vec<IdDef>,
    pub enums: Vec<EnumDef>,
    pub structs: Vec<StructDef>,
    pub errors: Vec<ErrorDef>,
    pub endpoints: Vec<EndpointDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub title: String,
    pub default_port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    pub name: String,
    pub doc: String,
    pub page_no_default: u32,
    pub page_size_min: u32,
    pub page_size_max: u32,
    pub page_size_default: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub name: String,
    pub value: u64,
    pub doc: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdDef {
    pub name: String,
    pub doc: String,
    pub max_len: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumDef {
    pub name: String,
    pub doc: String,
    #[serde(default)]
    pub quirk: Option<String>,
    pub values: Vec<EnumValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumValue {
    pub wire: String,
    pub variant: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub doc: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageDef {
    pub family: String,
    pub items: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructDef {
    pub name: String,
    pub doc: String,
    #[serde(default)]
    pub quirk: Option<String>,
    #[serde(default)]
    pub rules: bool,
    #[serde(default)]
    pub page: Option<PageDef>,
    pub fields: Vec<Field>,
}

/// A struct field or an endpoint parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub json: String,
    #[serde(default)]
    pub rust: Option<String>,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: bool,
    /// Written as `null` when absent instead of being left out (answers only; see the spec's header).
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub quirk: Option<String>,
    pub doc: String,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub min_len: Option<usize>,
    #[serde(default)]
    pub min: Option<u64>,
    #[serde(default)]
    pub max: Option<u64>,
    #[serde(default)]
    pub max_items: Option<usize>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, rename = "in")]
    pub location: Option<String>,
}

impl Field {
    /// The Rust field name: the override, or the JSON name in snake case.
    pub fn rust_name(&self) -> String {
        self.rust.clone().unwrap_or_else(|| snake(&self.json))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDef {
    pub code: String,
    pub name: String,
    pub status: Vec<u16>,
    pub class: String,
    pub doc: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyDef {
    pub kind: String,
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointDef {
    pub name: String,
    pub doc: String,
    pub family: String,
    pub method: String,
    pub path: String,
    pub auth: bool,
    pub idempotent: bool,
    /// How the client finds what a create in doubt may have made (`upgrade-task`); absent when it cannot.
    #[serde(default)]
    pub reconcile: Option<String>,
    #[serde(default)]
    pub body: Option<BodyDef>,
    pub response: String,
    #[serde(default)]
    pub paging: Option<String>,
    pub rejection: String,
    pub errors: Vec<String>,
    #[serde(default)]
    pub params: Vec<Field>,
}

impl EndpointDef {
    /// Names of the `{placeholders}` in the path template, in order.
    pub fn placeholders(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect()
    }
}

/// Converts `camelCase` (or `taskID`) to `snake_case`.
pub fn snake(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Converts `CamelCase` to `SCREAMING_SNAKE`.
pub fn screaming(s: &str) -> String {
    snake(s).to_ascii_uppercase()
}

/// Scalar types the generator knows without a declaration.
pub const BUILTINS: &[&str] = &[
    "String",
    "LooseString",
    "bool",
    "u32",
    "u64",
    "i64",
    "Timestamp",
    "Json",
    "JsonObject",
    "AppSecret",
    "AccessToken",
    "RefreshToken",
];

/// Secret types: written through `serialize_exposed`, never derived `Serialize`.
pub const SECRETS: &[&str] = &["AppSecret", "AccessToken", "RefreshToken"];

/// A field type, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Named(String),
    List(Box<Ty>),
    Map(Box<Ty>),
}

impl Ty {
    pub fn parse(s: &str) -> Result<Ty, String> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            Ok(Ty::List(Box::new(Ty::parse(inner)?)))
        } else if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            Ok(Ty::Map(Box::new(Ty::parse(inner)?)))
        } else if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()) {
            Ok(Ty::Named(s.to_owned()))
        } else {
            Err(format!("malformed type `{s}`"))
        }
    }

    /// The innermost named type.
    pub fn leaf(&self) -> &str {
        match self {
            Ty::Named(n) => n,
            Ty::List(t) | Ty::Map(t) => t.leaf(),
        }
    }
}

/// What a name declared in the spec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Builtin,
    Id,
    Enum,
    Struct,
}

impl Spec {
    /// Every declared or built-in type name with its kind.
    pub fn kinds(&self) -> BTreeMap<String, Kind> {
        let mut m = BTreeMap::new();
        for b in BUILTINS {
            m.insert((*b).to_owned(), Kind::Builtin);
        }
        for i in &self.ids {
            m.insert(i.name.clone(), Kind::Id);
        }
        for e in &self.enums {
            m.insert(e.name.clone(), Kind::Enum);
        }
        for s in &self.structs {
            m.insert(s.name.clone(), Kind::Struct);
        }
        m
    }

    pub fn struct_def(&self, name: &str) -> Option<&StructDef> {
        self.structs.iter().find(|s| s.name == name)
    }

    /// Checks the spec; every problem is listed, so one run shows them all.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let mut names = BTreeSet::new();
        for b in BUILTINS {
            names.insert((*b).to_owned());
        }
        let declared = self
            .ids
            .iter()
            .map(|i| &i.name)
            .chain(self.enums.iter().map(|e| &e.name))
            .chain(self.structs.iter().map(|s| &s.name));
        for n in declared {
            if !names.insert(n.clone()) {
                errs.push(format!("type name `{n}` is declared twice (or shadows a built-in)"));
            }
        }
        let kinds = self.kinds();
        let paging: BTreeSet<&str> = self.paging.iter().map(|p| p.name.as_str()).collect();
        if paging.len() != self.paging.len() {
            errs.push("paging family names are not unique".into());
        }
        for p in &self.paging {
            if !(p.page_size_min..=p.page_size_max).contains(&p.page_size_default) {
                errs.push(format!("paging `{}`: default page size outside its range", p.name));
            }
        }
        let mut limit_names = BTreeSet::new();
        for l in &self.limits {
            if !limit_names.insert(&l.name) {
                errs.push(format!("limit `{}` declared twice", l.name));
            }
        }
        let codes: BTreeSet<&str> = self.errors.iter().map(|e| e.code.as_str()).collect();
        if codes.len() != self.errors.len() {
            errs.push("error codes are not unique".into());
        }
        let mut error_names = BTreeSet::new();
        for e in &self.errors {
            if !error_names.insert(&e.name) {
                errs.push(format!("error name `{}` is used twice", e.name));
            }
            if e.status.is_empty() {
                errs.push(format!("error `{}` has no HTTP status", e.code));
            }
            if !["permanent", "throttled", "auth", "server"].contains(&e.class.as_str()) {
                errs.push(format!("error `{}` has unknown class `{}`", e.code, e.class));
            }
            if e.code.is_empty() || !e.code.chars().all(|c| c.is_ascii_digit()) {
                errs.push(format!("error code `{}` is not numeric", e.code));
            }
        }
        for e in &self.enums {
            let mut seen = BTreeSet::new();
            let mut variants = BTreeSet::new();
            for v in &e.values {
                if !variants.insert(&v.variant) || v.variant == "Unknown" {
                    errs.push(format!("enum `{}`: variant `{}` repeated or reserved", e.name, v.variant));
                }
                for w in std::iter::once(&v.wire).chain(&v.aliases) {
                    if !seen.insert(w.to_ascii_lowercase()) {
                        errs.push(format!("enum `{}`: wire string `{w}` is not unique (ignoring case)", e.name));
                    }
                }
            }
        }
        let check_field = |owner: &str, f: &Field, errs: &mut Vec<String>| match Ty::parse(&f.ty) {
            Err(e) => errs.push(format!("{owner}.{}: {e}", f.json)),
            Ok(t) => {
                if !kinds.contains_key(t.leaf()) {
                    errs.push(format!("{owner}.{}: type `{}` does not exist", f.json, t.leaf()));
                }
                if let Some(c) = &f.code {
                    if !codes.contains(c.as_str()) {
                        errs.push(format!("{owner}.{}: error code `{c}` is not in the catalog", f.json));
                    }
                }
                if f.default && !f.required {
                    errs.push(format!("{owner}.{}: `default` needs `required`", f.json));
                }
                if f.nullable && f.required {
                    errs.push(format!("{owner}.{}: `nullable` is for optional fields", f.json));
                }
                if SECRETS.contains(&t.leaf()) && t != Ty::Named(t.leaf().to_owned()) {
                    errs.push(format!("{owner}.{}: secrets cannot be nested in lists or maps", f.json));
                }
            }
        };
        for s in &self.structs {
            let mut json = BTreeSet::new();
            let mut rust = BTreeSet::new();
            for f in &s.fields {
                for n in std::iter::once(&f.json).chain(&f.aliases) {
                    if !json.insert(n.clone()) {
                        errs.push(format!("struct `{}`: field name `{n}` is not unique", s.name));
                    }
                }
                if !rust.insert(f.rust_name()) {
                    errs.push(format!("struct `{}`: Rust field `{}` is not unique", s.name, f.rust_name()));
                }
                if f.location.is_some() {
                    errs.push(format!("struct `{}`: field `{}` has `in`, which only params take", s.name, f.json));
                }
                check_field(&s.name, f, &mut errs);
            }
            if let Some(p) = &s.page {
                if !paging.contains(p.family.as_str()) {
                    errs.push(format!("struct `{}`: unknown paging family `{}`", s.name, p.family));
                }
                match s.fields.iter().find(|f| f.json == p.items) {
                    Some(f) if matches!(Ty::parse(&f.ty), Ok(Ty::List(_))) && f.required => {}
                    _ => errs.push(format!("struct `{}`: page items `{}` must be a required list", s.name, p.items)),
                }
                for needed in ["pageNo", "pageSize", "totalCount"] {
                    if !s.fields.iter().any(|f| f.json == needed) {
                        errs.push(format!("struct `{}`: a page needs `{needed}`", s.name));
                    }
                }
            }
        }
        let mut ep_names = BTreeSet::new();
        let mut routes = BTreeSet::new();
        for ep in &self.endpoints {
            let owner = format!("endpoint `{}`", ep.name);
            if !ep_names.insert(&ep.name) || names.contains(&ep.name) {
                errs.push(format!("{owner}: name is not unique"));
            }
            if !["GET", "POST", "DELETE", "PUT"].contains(&ep.method.as_str()) {
                errs.push(format!("{owner}: unknown method `{}`", ep.method));
            }
            if !routes.insert((ep.method.clone(), ep.path.clone())) {
                errs.push(format!("{owner}: method and path repeat another endpoint"));
            }
            if !ep.path.starts_with('/') || ep.path.contains("//") || ep.path.contains('?') {
                errs.push(format!("{owner}: path must be absolute, without query or empty segments"));
            }
            if matches!(ep.method.as_str(), "GET" | "DELETE") && ep.body.is_some() {
                errs.push(format!("{owner}: a {} has no body", ep.method));
            }
            match ep.reconcile.as_deref() {
                None => {}
                // Reconciliation reads the body's `fileId` and `targets` and answers `operationId`.
                Some("upgrade-task")
                    if !ep.idempotent
                        && ep.body.as_ref().is_some_and(|b| b.ty == "CreateUpgradeTask")
                        && ep.response == "CreateUpgradeTaskResponse" => {}
                Some(other) => errs.push(format!(
                    "{owner}: reconcile `{other}` needs a create that is not idempotent with a CreateUpgradeTask body"
                )),
            }
            if let Some(b) = &ep.body {
                if !["json", "form"].contains(&b.kind.as_str()) {
                    errs.push(format!("{owner}: unknown body kind `{}`", b.kind));
                }
                if kinds.get(&b.ty) != Some(&Kind::Struct) {
                    errs.push(format!("{owner}: body type `{}` is not a struct", b.ty));
                }
            }
            if ep.response != "empty" && kinds.get(&ep.response) != Some(&Kind::Struct) {
                errs.push(format!("{owner}: response type `{}` is not a struct", ep.response));
            }
            if let Some(p) = &ep.paging {
                if !paging.contains(p.as_str()) {
                    errs.push(format!("{owner}: unknown paging family `{p}`"));
                }
                let paged = self.struct_def(&ep.response).and_then(|s| s.page.as_ref());
                if paged.map(|pg| pg.family.as_str()) != Some(p.as_str()) {
                    errs.push(format!("{owner}: a paged endpoint must answer a page of family `{p}`"));
                }
                for needed in ["pageNo", "pageSize"] {
                    if !ep.params.iter().any(|f| f.json == needed && f.location.as_deref() == Some("query")) {
                        errs.push(format!("{owner}: a paged endpoint needs query param `{needed}`"));
                    }
                }
                // A page number or size the server cannot read is answered with the family's page-limit code.
                let codes: Vec<Option<&String>> = ep
                    .params
                    .iter()
                    .filter(|f| ["pageNo", "pageSize"].contains(&f.json.as_str()))
                    .map(|f| f.code.as_ref())
                    .collect();
                if codes.iter().any(Option::is_none) || codes.windows(2).any(|w| w[0] != w[1]) {
                    errs.push(format!("{owner}: `pageNo` and `pageSize` need the same page-limit `code`"));
                }
            }
            for c in std::iter::once(&ep.rejection).chain(&ep.errors) {
                if !codes.contains(c.as_str()) {
                    errs.push(format!("{owner}: error code `{c}` is not in the catalog"));
                }
            }
            let placeholders = ep.placeholders();
            let path_params: Vec<String> =
                ep.params.iter().filter(|p| p.location.as_deref() == Some("path")).map(|p| p.json.clone()).collect();
            let a: BTreeSet<_> = placeholders.iter().collect();
            let b: BTreeSet<_> = path_params.iter().collect();
            if a != b || a.len() != placeholders.len() {
                errs.push(format!(
                    "{owner}: path placeholders {placeholders:?} differ from path params {path_params:?}"
                ));
            }
            let mut seen = BTreeSet::new();
            for p in &ep.params {
                if !seen.insert(&p.json) {
                    errs.push(format!("{owner}: param `{}` repeated", p.json));
                }
                match p.location.as_deref() {
                    Some("path") => {
                        if !p.required || kinds.get(&p.ty) != Some(&Kind::Id) {
                            errs.push(format!("{owner}: path param `{}` must be a required id", p.json));
                        }
                    }
                    Some("query") => {
                        if !matches!(Ty::parse(&p.ty), Ok(Ty::Named(_)))
                            || matches!(kinds.get(&p.ty), Some(Kind::Struct))
                            || ["Json", "JsonObject", "LooseString"].contains(&p.ty.as_str())
                            || SECRETS.contains(&p.ty.as_str())
                        {
                            errs.push(format!("{owner}: query param `{}` must be a scalar, id or enum", p.json));
                        }
                    }
                    other => errs.push(format!("{owner}: param `{}` has location {other:?}", p.json)),
                }
                if p.rust_name() == "body" {
                    errs.push(format!("{owner}: param name `body` is reserved"));
                }
                if p.nullable {
                    errs.push(format!("{owner}: param `{}` cannot be `nullable`", p.json));
                }
                check_field(&owner, p, &mut errs);
            }
        }
        // Requests are written canonically (absent fields left out), so nothing a request body reaches may
        // be written as null.
        for s in self.request_structs() {
            for f in s.fields.iter().filter(|f| f.nullable) {
                errs.push(format!(
                    "struct `{}`: field `{}` is in a request body and cannot be `nullable`",
                    s.name, f.json
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The structures a request body reaches, directly or through its fields.
    fn request_structs(&self) -> Vec<&StructDef> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> =
            self.endpoints.iter().filter_map(|e| e.body.as_ref()).map(|b| b.ty.as_str()).collect();
        let mut found = Vec::new();
        while let Some(name) = todo.pop() {
            let Some(s) = self.struct_def(name) else { continue };
            if !seen.insert(name) {
                continue;
            }
            todo.extend(
                s.fields
                    .iter()
                    .filter_map(|f| Ty::parse(&f.ty).ok())
                    .map(|t| t.leaf().to_owned())
                    .filter_map(|n| self.struct_def(&n))
                    .map(|s| s.name.as_str()),
            );
            found.push(s);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_handles_acronyms() {
        assert_eq!(snake("taskID"), "task_id");
        assert_eq!(snake("operationId"), "operation_id");
        assert_eq!(snake("error_code"), "error_code");
        assert_eq!(snake("OperationInfo"), "operation_info");
        assert_eq!(snake("HTTPCode"), "http_code");
    }

    fn load() -> Spec {
        let text = std::fs::read_to_string(crate::project_root().join("docs/spec/northbound.toml")).unwrap();
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_spec_is_valid_and_complete() {
        let spec = load();
        spec.validate().unwrap();
        assert_eq!(spec.endpoints.len(), 14);
    }

    #[test]
    fn validation_catches_broken_specs() {
        let mut spec = load();
        spec.endpoints[3].path.push_str("/{nope}");
        spec.enums[0].values[1].wire = spec.enums[0].values[0].wire.to_uppercase();
        spec.structs[0].fields[0].ty = "Missing".into();
        spec.endpoints[4].body = Some(BodyDef { kind: "json".into(), ty: "CategoryInfo".into() });
        let targets = spec.structs.iter_mut().find(|s| s.name == "OperateDevices").unwrap();
        targets.fields[0].nullable = true;
        let errs = spec.validate().unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("placeholders"), "{all}");
        assert!(all.contains("not unique"), "{all}");
        assert!(all.contains("does not exist"), "{all}");
        assert!(all.contains("has no body"), "{all}");
        assert!(all.contains("`deviceGroups` is in a request body and cannot be `nullable`"), "{all}");
    }
}
