//! The API spec (`docs/spec/northbound.toml`): its shape, and the checks run before anything is generated.
//!
//! Every field with a fixed set of values is an enum read by serde, so a misspelt method, class, kind or
//! location is refused by the TOML reader with its line; the checks below cover what one field cannot say alone.

// The mirror structs below are documented by the spec file's own header; repeating it per field adds nothing.
#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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
    /// Codes the simulator invents where the platform documents none; never part of the platform's catalog.
    #[serde(default)]
    pub simulator_errors: Vec<SimErrorDef>,
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
    /// Smallest page size, a limit's name.
    pub page_size_min: LimitRef,
    /// Largest page size, a limit's name.
    pub page_size_max: LimitRef,
    pub page_size_default: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub name: String,
    pub value: u64,
    pub doc: String,
}

/// A rule's number, named: the `name` of a `[[limits]]` entry. A bare number is refused by the reader, so
/// every rule's number lives once, in `[[limits]]`, and generated code uses its constant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct LimitRef(pub String);

impl fmt::Display for LimitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdDef {
    pub name: String,
    pub doc: String,
    pub max_len: usize,
}

/// A contract quirk a type or field absorbs: a section of the contract's quirk list (`5.N`), optionally
/// followed by `: a note`. Documented under `docs/decisions.md#quirk-5n`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Quirk {
    /// The section, such as `5.1`.
    pub section: String,
    /// What the quirk is, when the spec says it in place.
    pub note: Option<String>,
}

impl Quirk {
    /// The anchor of the quirk's heading (`### Quirk 5.1`) in `docs/decisions.md`, slugged as GitHub does.
    pub fn anchor(&self) -> String {
        github_slug(&format!("Quirk {}", self.section))
    }
}

impl TryFrom<String> for Quirk {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (section, note) = match s.split_once(':') {
            Some((a, b)) => (a.trim(), Some(b.trim().to_owned())),
            None => (s.trim(), None),
        };
        let numbered = section
            .split_once('.')
            .is_some_and(|(a, b)| [a, b].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())));
        if !numbered {
            return Err(format!("quirk `{s}` must start with a contract section such as `5.1`"));
        }
        Ok(Quirk { section: section.to_owned(), note })
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.note {
            Some(n) => write!(f, "{}: {n}", self.section),
            None => f.write_str(&self.section),
        }
    }
}

/// A Markdown heading's anchor as GitHub makes it: lower case, punctuation other than `-` and `_` dropped,
/// spaces turned into `-`.
pub fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumDef {
    pub name: String,
    pub doc: String,
    #[serde(default)]
    pub quirk: Option<Quirk>,
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
    pub quirk: Option<Quirk>,
    #[serde(default)]
    pub rules: bool,
    /// Validated although no request body reaches it as a typed field (it travels inside a free JSON
    /// object, as a DeviceCmd task's `param` does); the hand-written rules call its generated checks.
    #[serde(default)]
    pub validated: bool,
    #[serde(default)]
    pub page: Option<PageDef>,
    pub fields: Vec<Field>,
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Path,
    Query,
}

impl Location {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    pub quirk: Option<Quirk>,
    pub doc: String,
    #[serde(default)]
    pub max_len: Option<LimitRef>,
    /// `1` for "not empty"; a lower bound on length is not a platform limit, so it stays a plain number.
    #[serde(default)]
    pub min_len: Option<usize>,
    #[serde(default)]
    pub min: Option<LimitRef>,
    #[serde(default)]
    pub max: Option<LimitRef>,
    #[serde(default)]
    pub max_items: Option<LimitRef>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, rename = "in")]
    pub location: Option<Location>,
}

impl Field {
    /// The Rust field name: the override, or the JSON name in snake case.
    pub fn rust_name(&self) -> String {
        self.rust.clone().unwrap_or_else(|| snake(&self.json))
    }

    /// Every named limit the field's rules use.
    pub fn limit_refs(&self) -> impl Iterator<Item = &LimitRef> {
        [&self.max_len, &self.min, &self.max, &self.max_items].into_iter().flatten()
    }
}

/// How a client should handle an error code; drives retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    Permanent,
    Throttled,
    /// The token is invalid or expired.
    Auth,
    Server,
}

impl ErrorClass {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Permanent => "permanent",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Auth => "auth",
            ErrorClass::Server => "server",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDef {
    pub code: String,
    pub name: String,
    pub status: Vec<u16>,
    pub class: ErrorClass,
    pub doc: String,
}

/// A code the simulator invents; `name` is the Rust constant's name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimErrorDef {
    pub code: String,
    pub name: String,
    /// The HTTP status it comes with; absent for codes that only travel inside a batch subtask's `error`.
    #[serde(default)]
    pub status: Option<u16>,
    pub doc: String,
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyKind {
    Json,
    Form,
}

impl fmt::Display for BodyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyKind::Json => "json",
            BodyKind::Form => "form",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyDef {
    pub kind: BodyKind,
    #[serde(rename = "type")]
    pub ty: String,
}

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The method as HTTP (and `http::Method`'s constants) spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API family an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Auth,
    Upgrade,
    Batch,
}

impl Family {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Auth => "auth",
            Family::Upgrade => "upgrade",
            Family::Batch => "batch",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client finds what a create in doubt may have made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reconcile {
    /// By the body's `fileId` and `targets`, answering `operationId`.
    UpgradeTask,
}

impl fmt::Display for Reconcile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reconcile::UpgradeTask => "upgrade-task",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointDef {
    pub name: String,
    pub doc: String,
    pub family: Family,
    pub method: Method,
    pub path: String,
    pub auth: bool,
    pub idempotent: bool,
    /// How the client finds what a create in doubt may have made; absent when it cannot.
    #[serde(default)]
    pub reconcile: Option<Reconcile>,
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

    /// The limit a rule names.
    pub fn limit(&self, r: &LimitRef) -> Option<&Limit> {
        self.limits.iter().find(|l| l.name == r.0)
    }

    /// The value of the limit a rule names (0 for an unknown name, which `validate` refuses).
    pub fn limit_value(&self, r: &LimitRef) -> u64 {
        self.limit(r).map_or(0, |l| l.value)
    }

    /// The catalog entry of a platform error code.
    pub fn error(&self, code: &str) -> Option<&ErrorDef> {
        self.errors.iter().find(|e| e.code == code)
    }

    /// Checks the spec; every problem is listed, so one run shows them all.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let checks: &[fn(&Spec, &mut Vec<String>)] = &[
            check_unique_type_names,
            check_limits,
            check_paging_families,
            check_error_catalog,
            check_simulator_errors,
            check_enums,
            check_struct_fields,
            check_pages,
            check_routes,
            check_bodies,
            check_reconcile,
            check_paging_refs,
            check_endpoint_codes,
            check_path_params,
            check_params,
            check_requests_not_nullable,
        ];
        for check in checks {
            check(self, &mut errs);
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

/// Ids, enums and structs share one namespace with the built-in types.
fn check_unique_type_names(spec: &Spec, errs: &mut Vec<String>) {
    let mut names: BTreeSet<&str> = BUILTINS.iter().copied().collect();
    let declared = spec
        .ids
        .iter()
        .map(|i| &i.name)
        .chain(spec.enums.iter().map(|e| &e.name))
        .chain(spec.structs.iter().map(|s| &s.name));
    for n in declared {
        if !names.insert(n) {
            errs.push(format!("type name `{n}` is declared twice (or shadows a built-in)"));
        }
    }
}

/// Limit names are unique constants in SCREAMING_SNAKE_CASE.
fn check_limits(spec: &Spec, errs: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    for l in &spec.limits {
        if !names.insert(&l.name) {
            errs.push(format!("limit `{}` declared twice", l.name));
        }
        if l.name.is_empty() || !l.name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            errs.push(format!("limit `{}` must be named in SCREAMING_SNAKE_CASE", l.name));
        }
    }
}

/// Paging families are unique, name existing limits, and their default page size is in their range.
fn check_paging_families(spec: &Spec, errs: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    for p in &spec.paging {
        if !names.insert(&p.name) {
            errs.push(format!("paging family `{}` declared twice", p.name));
        }
        for r in [&p.page_size_min, &p.page_size_max] {
            if spec.limit(r).is_none() {
                errs.push(format!("paging `{}`: limit `{r}` does not exist", p.name));
            }
        }
        let range = spec.limit_value(&p.page_size_min)..=spec.limit_value(&p.page_size_max);
        if !range.contains(&u64::from(p.page_size_default)) {
            errs.push(format!("paging `{}`: default page size outside its range", p.name));
        }
    }
}

/// Platform codes and names are unique; codes are numeric and documented with at least one HTTP status.
fn check_error_catalog(spec: &Spec, errs: &mut Vec<String>) {
    let mut codes = BTreeSet::new();
    let mut names = BTreeSet::new();
    for e in &spec.errors {
        if !codes.insert(&e.code) {
            errs.push(format!("error code `{}` is listed twice", e.code));
        }
        if !names.insert(&e.name) {
            errs.push(format!("error name `{}` is used twice", e.name));
        }
        if e.status.is_empty() {
            errs.push(format!("error `{}` has no HTTP status", e.code));
        }
        if !is_numeric(&e.code) {
            errs.push(format!("error code `{}` is not numeric", e.code));
        }
    }
}

/// The simulator's own codes start with 9, so they can never be taken for a platform code, and clash with
/// nothing.
fn check_simulator_errors(spec: &Spec, errs: &mut Vec<String>) {
    let mut codes: BTreeSet<&str> = spec.errors.iter().map(|e| e.code.as_str()).collect();
    let mut names = BTreeSet::new();
    for e in &spec.simulator_errors {
        if !codes.insert(&e.code) {
            errs.push(format!("simulator code `{}` repeats another code", e.code));
        }
        if !names.insert(&e.name) {
            errs.push(format!("simulator code name `{}` is used twice", e.name));
        }
        if !is_numeric(&e.code) || !e.code.starts_with('9') {
            errs.push(format!("simulator code `{}` must be numeric and start with 9", e.code));
        }
    }
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// Variants are unique and not `Unknown`; wire strings and aliases are unique ignoring case.
fn check_enums(spec: &Spec, errs: &mut Vec<String>) {
    for e in &spec.enums {
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
}

/// The checks every field (struct field or parameter) passes.
fn check_field(spec: &Spec, owner: &str, f: &Field, errs: &mut Vec<String>) {
    let t = match Ty::parse(&f.ty) {
        Ok(t) => t,
        Err(e) => return errs.push(format!("{owner}.{}: {e}", f.json)),
    };
    if !spec.kinds().contains_key(t.leaf()) {
        errs.push(format!("{owner}.{}: type `{}` does not exist", f.json, t.leaf()));
    }
    if let Some(c) = &f.code
        && spec.error(c).is_none()
    {
        errs.push(format!("{owner}.{}: error code `{c}` is not in the catalog", f.json));
    }
    for r in f.limit_refs() {
        if spec.limit(r).is_none() {
            errs.push(format!("{owner}.{}: limit `{r}` does not exist", f.json));
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

/// A struct's wire and Rust field names are unique, it has no `in`, and each field passes `check_field`.
fn check_struct_fields(spec: &Spec, errs: &mut Vec<String>) {
    for s in &spec.structs {
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
            check_field(spec, &format!("struct `{}`", s.name), f, errs);
        }
    }
}

/// A page names a known family, holds its items in a required list, and carries the paging members.
fn check_pages(spec: &Spec, errs: &mut Vec<String>) {
    for s in &spec.structs {
        let Some(p) = &s.page else { continue };
        if !spec.paging.iter().any(|f| f.name == p.family) {
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

/// Endpoint names are unique (and no type's), each method and path pair is served once, paths are clean.
fn check_routes(spec: &Spec, errs: &mut Vec<String>) {
    let types = spec.kinds();
    let mut names = BTreeSet::new();
    let mut routes = BTreeSet::new();
    for ep in &spec.endpoints {
        let owner = format!("endpoint `{}`", ep.name);
        if !names.insert(&ep.name) || types.contains_key(&ep.name) {
            errs.push(format!("{owner}: name is not unique"));
        }
        if !routes.insert((ep.method, ep.path.as_str())) {
            errs.push(format!("{owner}: method and path repeat another endpoint"));
        }
        if !ep.path.starts_with('/') || ep.path.contains("//") || ep.path.contains('?') {
            errs.push(format!("{owner}: path must be absolute, without query or empty segments"));
        }
    }
}

/// GET and DELETE carry no body; bodies and answers are structs (or `empty`).
fn check_bodies(spec: &Spec, errs: &mut Vec<String>) {
    let kinds = spec.kinds();
    for ep in &spec.endpoints {
        let owner = format!("endpoint `{}`", ep.name);
        if matches!(ep.method, Method::Get | Method::Delete) && ep.body.is_some() {
            errs.push(format!("{owner}: a {} has no body", ep.method));
        }
        if let Some(b) = &ep.body
            && kinds.get(&b.ty) != Some(&Kind::Struct)
        {
            errs.push(format!("{owner}: body type `{}` is not a struct", b.ty));
        }
        if ep.response != "empty" && kinds.get(&ep.response) != Some(&Kind::Struct) {
            errs.push(format!("{owner}: response type `{}` is not a struct", ep.response));
        }
    }
}

/// Reconciliation reads the body's `fileId` and `targets` and answers `operationId`, so it needs a create
/// that is not idempotent with a CreateUpgradeTask body.
fn check_reconcile(spec: &Spec, errs: &mut Vec<String>) {
    for ep in &spec.endpoints {
        let Some(r) = ep.reconcile else { continue };
        let fits = match r {
            Reconcile::UpgradeTask => {
                !ep.idempotent
                    && ep.body.as_ref().is_some_and(|b| b.ty == "CreateUpgradeTask")
                    && ep.response == "CreateUpgradeTaskResponse"
            }
        };
        if !fits {
            errs.push(format!(
                "endpoint `{}`: reconcile `{r}` needs a create that is not idempotent with a CreateUpgradeTask body",
                ep.name
            ));
        }
    }
}

/// A paged endpoint names a known family, answers a page of it, takes `pageNo` and `pageSize` in its query
/// with the same page-limit code, and bounds `pageSize` by its family's limits.
fn check_paging_refs(spec: &Spec, errs: &mut Vec<String>) {
    for ep in &spec.endpoints {
        let Some(p) = &ep.paging else { continue };
        let owner = format!("endpoint `{}`", ep.name);
        let family = spec.paging.iter().find(|f| &f.name == p);
        if family.is_none() {
            errs.push(format!("{owner}: unknown paging family `{p}`"));
        }
        let paged = spec.struct_def(&ep.response).and_then(|s| s.page.as_ref());
        if paged.map(|pg| pg.family.as_str()) != Some(p.as_str()) {
            errs.push(format!("{owner}: a paged endpoint must answer a page of family `{p}`"));
        }
        for needed in ["pageNo", "pageSize"] {
            if !ep.params.iter().any(|f| f.json == needed && f.location == Some(Location::Query)) {
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
        if let (Some(fam), Some(size)) = (family, ep.params.iter().find(|f| f.json == "pageSize"))
            && (size.min.as_ref() != Some(&fam.page_size_min) || size.max.as_ref() != Some(&fam.page_size_max))
        {
            errs.push(format!(
                "{owner}: `pageSize` must be bounded by its family's `{}` and `{}`",
                fam.page_size_min, fam.page_size_max
            ));
        }
    }
}

/// An endpoint's rejection and documented errors are in the platform's catalog.
fn check_endpoint_codes(spec: &Spec, errs: &mut Vec<String>) {
    for ep in &spec.endpoints {
        for c in std::iter::once(&ep.rejection).chain(&ep.errors) {
            if spec.error(c).is_none() {
                errs.push(format!("endpoint `{}`: error code `{c}` is not in the catalog", ep.name));
            }
        }
    }
}

/// The path's `{placeholders}` are exactly the path params, each once.
fn check_path_params(spec: &Spec, errs: &mut Vec<String>) {
    for ep in &spec.endpoints {
        let placeholders = ep.placeholders();
        let path_params: Vec<&str> =
            ep.params.iter().filter(|p| p.location == Some(Location::Path)).map(|p| p.json.as_str()).collect();
        let a: BTreeSet<&str> = placeholders.iter().map(String::as_str).collect();
        let b: BTreeSet<&str> = path_params.iter().copied().collect();
        if a != b || a.len() != placeholders.len() {
            errs.push(format!(
                "endpoint `{}`: path placeholders {placeholders:?} differ from path params {path_params:?}",
                ep.name
            ));
        }
    }
}

/// Params are unique, have a location, path params are required ids, query params are scalars, ids or
/// enums; `body` is reserved and params are never `nullable`.
fn check_params(spec: &Spec, errs: &mut Vec<String>) {
    let kinds = spec.kinds();
    for ep in &spec.endpoints {
        let owner = format!("endpoint `{}`", ep.name);
        let mut seen = BTreeSet::new();
        for p in &ep.params {
            if !seen.insert(&p.json) {
                errs.push(format!("{owner}: param `{}` repeated", p.json));
            }
            match p.location {
                Some(Location::Path) => {
                    if !p.required || kinds.get(&p.ty) != Some(&Kind::Id) {
                        errs.push(format!("{owner}: path param `{}` must be a required id", p.json));
                    }
                }
                Some(Location::Query) => {
                    if !matches!(Ty::parse(&p.ty), Ok(Ty::Named(_)))
                        || matches!(kinds.get(&p.ty), Some(Kind::Struct))
                        || ["Json", "JsonObject", "LooseString"].contains(&p.ty.as_str())
                        || SECRETS.contains(&p.ty.as_str())
                    {
                        errs.push(format!("{owner}: query param `{}` must be a scalar, id or enum", p.json));
                    }
                }
                None => errs.push(format!("{owner}: param `{}` needs `in` (path or query)", p.json)),
            }
            if p.rust_name() == "body" {
                errs.push(format!("{owner}: param name `body` is reserved"));
            }
            if p.nullable {
                errs.push(format!("{owner}: param `{}` cannot be `nullable`", p.json));
            }
            check_field(spec, &owner, p, errs);
        }
    }
}

/// Requests are written canonically (absent fields left out), so nothing a request body reaches may be
/// written as null.
fn check_requests_not_nullable(spec: &Spec, errs: &mut Vec<String>) {
    for s in spec.request_structs() {
        for f in s.fields.iter().filter(|f| f.nullable) {
            errs.push(format!("struct `{}`: field `{}` is in a request body and cannot be `nullable`", s.name, f.json));
        }
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
        spec.endpoints[4].body = Some(BodyDef { kind: BodyKind::Json, ty: "CategoryInfo".into() });
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

    /// The smallest spec that passes every check: one of each kind of entry.
    const TINY: &str = r#"
[api]
title = "tiny"
default_port = 1

[[paging]]
name = "Fam"
doc = "d"
page_no_default = 0
page_size_min = "PAGE_MIN"
page_size_max = "PAGE_MAX"
page_size_default = 5

[[limits]]
name = "PAGE_MIN"
value = 1
doc = "d"

[[limits]]
name = "PAGE_MAX"
value = 10
doc = "d"

[[limits]]
name = "NAME_LEN"
value = 8
doc = "d"

[[ids]]
name = "ThingId"
doc = "d"
max_len = 8

[[enums]]
name = "Colour"
doc = "d"
quirk = "5.2: a note"
values = [{ wire = "red", variant = "Red", doc = "d" }, { wire = "blue", variant = "Blue", doc = "d" }]

[[structs]]
name = "Thing"
doc = "d"
quirk = "5.1"
fields = [
  { json = "id", type = "ThingId", required = true, doc = "d" },
  { json = "name", type = "String", max_len = "NAME_LEN", code = "100", doc = "d" },
]

[[structs]]
name = "ThingPage"
doc = "d"
page = { family = "Fam", items = "data" }
fields = [
  { json = "pageNo", type = "u32", doc = "d" },
  { json = "pageSize", type = "u32", doc = "d" },
  { json = "totalCount", type = "u64", doc = "d" },
  { json = "data", type = "[Thing]", required = true, default = true, doc = "d" },
]

[[errors]]
code = "100"
name = "Bad"
status = [400]
class = "permanent"
doc = "d"

[[simulator_errors]]
code = "900"
name = "SIM_BAD"
status = 404
doc = "d"

[[endpoints]]
name = "PutThing"
doc = "d"
family = "upgrade"
method = "PUT"
path = "/things/{id}"
auth = true
idempotent = true
body = { kind = "json", type = "Thing" }
response = "empty"
rejection = "100"
errors = ["100"]
params = [{ json = "id", in = "path", type = "ThingId", required = true, doc = "d" }]

[[endpoints]]
name = "ListThings"
doc = "d"
family = "upgrade"
method = "GET"
path = "/things"
auth = true
idempotent = true
response = "ThingPage"
paging = "Fam"
rejection = "100"
errors = ["100"]
params = [
  { json = "pageNo", in = "query", type = "u32", code = "100", doc = "d" },
  { json = "pageSize", in = "query", type = "u32", min = "PAGE_MIN", max = "PAGE_MAX", code = "100", doc = "d" },
]
"#;

    fn tiny() -> Spec {
        toml::from_str(TINY).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs one check on the tiny spec after `edit`, and returns what it found.
    fn run(check: fn(&Spec, &mut Vec<String>), edit: impl FnOnce(&mut Spec)) -> String {
        let mut spec = tiny();
        edit(&mut spec);
        let mut errs = Vec::new();
        check(&spec, &mut errs);
        errs.join("\n")
    }

    #[test]
    fn the_tiny_spec_passes_every_check() {
        tiny().validate().unwrap_or_else(|e| panic!("{e:?}"));
    }

    #[test]
    fn stringly_fields_with_a_fixed_set_are_refused_by_the_reader_with_their_line() {
        for (good, bad, field) in [
            (r#"method = "PUT""#, r#"method = "PATCH""#, "method"),
            (r#"class = "permanent""#, r#"class = "sometimes""#, "class"),
            (r#"kind = "json""#, r#"kind = "xml""#, "kind"),
            (r#"in = "path""#, r#"in = "header""#, "in"),
            (r#"family = "upgrade""#, r#"family = "misc""#, "family"),
            (r#"max_len = "NAME_LEN""#, "max_len = 8", "max_len"),
            (r#"quirk = "5.1""#, r#"quirk = "see notes""#, "quirk"),
        ] {
            let text = TINY.replacen(good, bad, 1);
            assert_ne!(text, TINY, "{good}");
            let err = toml::from_str::<Spec>(&text).expect_err(bad).to_string();
            let line = TINY.lines().position(|l| l.contains(good)).unwrap() + 1;
            assert!(err.contains(&format!("line {line}")), "{field}: {err}");
        }
    }

    #[test]
    fn check_unique_type_names_refuses_a_repeated_or_builtin_name() {
        assert!(run(check_unique_type_names, |s| s.ids[0].name = "Thing".into()).contains("`Thing` is declared twice"));
        assert!(run(check_unique_type_names, |s| s.enums[0].name = "u32".into()).contains("shadows a built-in"));
    }

    #[test]
    fn check_limits_refuses_repeats_and_odd_names() {
        assert!(run(check_limits, |s| s.limits[1].name = "PAGE_MIN".into()).contains("declared twice"));
        assert!(run(check_limits, |s| s.limits[2].name = "nameLen".into()).contains("SCREAMING_SNAKE_CASE"));
    }

    #[test]
    fn check_paging_families_refuses_unknown_limits_and_a_default_out_of_range() {
        assert!(
            run(check_paging_families, |s| s.paging[0].page_size_max = LimitRef("NOPE".into()))
                .contains("limit `NOPE` does not exist")
        );
        assert!(run(check_paging_families, |s| s.paging[0].page_size_default = 11).contains("outside its range"));
    }

    #[test]
    fn check_error_catalog_refuses_repeats_missing_statuses_and_non_numeric_codes() {
        let add = |s: &mut Spec, code: &str, name: &str, status: Vec<u16>| {
            let (doc, class) = ("d".to_owned(), ErrorClass::Server);
            s.errors.push(ErrorDef { code: code.into(), name: name.into(), status, class, doc });
        };
        assert!(run(check_error_catalog, |s| add(s, "100", "Other", vec![500])).contains("`100` is listed twice"));
        assert!(run(check_error_catalog, |s| add(s, "101", "Bad", vec![500])).contains("`Bad` is used twice"));
        assert!(run(check_error_catalog, |s| add(s, "101", "Other", vec![])).contains("no HTTP status"));
        assert!(run(check_error_catalog, |s| add(s, "10x", "Other", vec![500])).contains("not numeric"));
    }

    #[test]
    fn check_simulator_errors_keeps_invented_codes_apart_from_the_platforms() {
        assert!(run(check_simulator_errors, |s| s.simulator_errors[0].code = "100".into()).contains("repeats"));
        assert!(run(check_simulator_errors, |s| s.simulator_errors[0].code = "800".into()).contains("start with 9"));
    }

    #[test]
    fn check_enums_refuses_repeated_variants_and_wire_strings() {
        assert!(run(check_enums, |s| s.enums[0].values[1].variant = "Red".into()).contains("repeated or reserved"));
        assert!(run(check_enums, |s| s.enums[0].values[1].variant = "Unknown".into()).contains("reserved"));
        assert!(run(check_enums, |s| s.enums[0].values[1].aliases = vec!["RED".into()]).contains("not unique"));
    }

    #[test]
    fn check_struct_fields_checks_names_types_codes_and_limits() {
        fn f(s: &mut Spec) -> &mut Field {
            &mut s.structs[0].fields[1]
        }
        assert!(run(check_struct_fields, |s| f(s).json = "id".into()).contains("field name `id` is not unique"));
        assert!(run(check_struct_fields, |s| f(s).rust = Some("id".into())).contains("Rust field `id`"));
        assert!(run(check_struct_fields, |s| f(s).location = Some(Location::Query)).contains("only params take"));
        assert!(run(check_struct_fields, |s| f(s).ty = "[Nope]".into()).contains("`Nope` does not exist"));
        assert!(run(check_struct_fields, |s| f(s).ty = "[String".into()).contains("malformed type"));
        assert!(run(check_struct_fields, |s| f(s).code = Some("555".into())).contains("`555` is not in the catalog"));
        assert!(
            run(check_struct_fields, |s| f(s).max_len = Some(LimitRef("NOPE".into())))
                .contains("limit `NOPE` does not exist")
        );
        assert!(run(check_struct_fields, |s| f(s).default = true).contains("`default` needs `required`"));
        assert!(run(check_struct_fields, |s| s.structs[0].fields[0].nullable = true).contains("for optional fields"));
        assert!(run(check_struct_fields, |s| f(s).ty = "[AppSecret]".into()).contains("secrets cannot be nested"));
    }

    #[test]
    fn check_pages_needs_a_known_family_a_required_list_and_the_paging_members() {
        assert!(
            run(check_pages, |s| s.structs[1].page.as_mut().unwrap().family = "X".into())
                .contains("unknown paging family `X`")
        );
        assert!(run(check_pages, |s| s.structs[1].fields[3].required = false).contains("must be a required list"));
        assert!(run(check_pages, |s| s.structs[1].fields[2].json = "total".into()).contains("needs `totalCount`"));
    }

    #[test]
    fn check_routes_refuses_repeats_and_unclean_paths() {
        assert!(run(check_routes, |s| s.endpoints[1].name = "PutThing".into()).contains("name is not unique"));
        assert!(run(check_routes, |s| s.endpoints[1].name = "Thing".into()).contains("name is not unique"));
        assert!(
            run(check_routes, |s| {
                s.endpoints[1].method = Method::Put;
                s.endpoints[1].path = "/things/{id}".into();
            })
            .contains("repeat another endpoint")
        );
        assert!(run(check_routes, |s| s.endpoints[1].path = "/things?x=1".into()).contains("must be absolute"));
    }

    #[test]
    fn check_bodies_refuses_a_body_on_get_and_non_struct_types() {
        let body = || Some(BodyDef { kind: BodyKind::Json, ty: "Thing".into() });
        assert!(run(check_bodies, |s| s.endpoints[1].body = body()).contains("a GET has no body"));
        assert!(
            run(check_bodies, |s| s.endpoints[0].body.as_mut().unwrap().ty = "ThingId".into())
                .contains("body type `ThingId` is not a struct")
        );
        assert!(run(check_bodies, |s| s.endpoints[0].response = "Colour".into()).contains("is not a struct"));
    }

    #[test]
    fn check_reconcile_needs_a_create_of_an_upgrade_task() {
        let found = run(check_reconcile, |s| s.endpoints[0].reconcile = Some(Reconcile::UpgradeTask));
        assert!(found.contains("reconcile `upgrade-task` needs a create"), "{found}");
    }

    #[test]
    fn check_paging_refs_ties_a_paged_endpoint_to_its_family() {
        assert!(run(check_paging_refs, |s| s.endpoints[1].paging = Some("X".into())).contains("unknown paging family"));
        assert!(run(check_paging_refs, |s| s.endpoints[1].response = "Thing".into()).contains("answer a page"));
        assert!(
            run(check_paging_refs, |s| s.endpoints[1].params[0].location = Some(Location::Path))
                .contains("needs query param `pageNo`")
        );
        assert!(run(check_paging_refs, |s| s.endpoints[1].params[0].code = None).contains("same page-limit `code`"));
        assert!(
            run(check_paging_refs, |s| s.endpoints[1].params[1].max = Some(LimitRef("NAME_LEN".into())))
                .contains("bounded by its family's `PAGE_MIN` and `PAGE_MAX`")
        );
    }

    #[test]
    fn check_endpoint_codes_needs_catalog_codes() {
        assert!(run(check_endpoint_codes, |s| s.endpoints[0].rejection = "900".into()).contains("`900` is not in"));
        assert!(run(check_endpoint_codes, |s| s.endpoints[0].errors.push("7".into())).contains("`7` is not in"));
    }

    #[test]
    fn check_path_params_matches_placeholders_and_params() {
        assert!(run(check_path_params, |s| s.endpoints[0].path = "/things/{key}".into()).contains("differ"));
        assert!(run(check_path_params, |s| s.endpoints[0].path = "/things/{id}/{id}".into()).contains("differ"));
    }

    #[test]
    fn check_params_checks_location_types_and_reserved_names() {
        fn p(s: &mut Spec) -> &mut Field {
            &mut s.endpoints[0].params[0]
        }
        assert!(run(check_params, |s| p(s).required = false).contains("must be a required id"));
        assert!(run(check_params, |s| p(s).location = None).contains("needs `in`"));
        assert!(run(check_params, |s| p(s).rust = Some("body".into())).contains("`body` is reserved"));
        assert!(run(check_params, |s| p(s).nullable = true).contains("cannot be `nullable`"));
        assert!(
            run(check_params, |s| {
                p(s).location = Some(Location::Query);
                p(s).ty = "Thing".into();
            })
            .contains("must be a scalar, id or enum")
        );
        let repeat = |s: &mut Spec| {
            let again: Field =
                toml::from_str("json = 'id'\nin = 'path'\ntype = 'ThingId'\nrequired = true\ndoc = 'd'").unwrap();
            s.endpoints[0].params.push(again);
        };
        assert!(run(check_params, repeat).contains("param `id` repeated"));
    }

    #[test]
    fn check_requests_not_nullable_covers_everything_a_body_reaches() {
        let found = run(check_requests_not_nullable, |s| s.structs[0].fields[1].nullable = true);
        assert!(found.contains("`name` is in a request body"), "{found}");
    }

    #[test]
    fn quirks_name_a_section_and_slug_like_github() {
        let q: Quirk = "5.2: upper case".to_owned().try_into().unwrap();
        assert_eq!((q.section.as_str(), q.note.as_deref(), q.anchor()), ("5.2", Some("upper case"), "quirk-52".into()));
        assert!(Quirk::try_from("5.".to_owned()).is_err());
        assert_eq!(
            github_slug("Validation (client side, and the simulator)"),
            "validation-client-side-and-the-simulator"
        );
        assert_eq!(
            github_slug("A client that never amplifies (issue 8, point 3)"),
            "a-client-that-never-amplifies-issue-8-point-3"
        );
    }
}
