//! Generates iot-proto's endpoint types and metadata, the error catalog and the validation glue
//! (`crates/iot-proto/src/generated.rs`). Logic lives in hand-written generic code; this only states data.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::gen_model::{WireRow, field_ty, rust_ty, wire_enum_impls};
use crate::spec::{
    BodyKind, EndpointDef, ErrorClass, Field, Kind, LimitRef, Location, Reconcile, SECRETS, Spec, Ty, screaming, snake,
};

const P: &str = "iot_model::";

pub fn proto(spec: &Spec) -> String {
    let mut o = String::new();
    o.push_str(crate::HEADER);
    o.push_str(
        "\nuse crate::endpoint::{BodyKind, Endpoint, EndpointMeta, ParamLocation, ParamMeta, Reconcile, ResponseKind};\n\
         use crate::error::FromHttpResponseError;\n\
         use crate::glue::{Glue, PageGlue};\n\
         #[cfg(feature = \"client\")]\nuse crate::glue::ParamWriter;\n\
         #[cfg(feature = \"server\")]\nuse crate::glue::{ParamError, ParamReader};\n\
         use crate::pager::PagingLimits;\nuse crate::validate::{Validate, Validator};\n\n",
    );

    for p in &spec.paging {
        let _ = writeln!(
            o,
            "/// {}\npub const {}_PAGING: PagingLimits = PagingLimits {{ page_size_min: {} as u32, page_size_max: {} as u32, page_size_default: {} }};\n",
            p.doc,
            screaming(&p.name),
            limit(&p.page_size_min),
            limit(&p.page_size_max),
            p.page_size_default
        );
    }

    // Error codes: a forward-compatible enum plus the catalog, in the same order.
    o.push_str("/// A platform error code (`error_code`); codes this SDK does not know are kept in `Unknown`.\n");
    o.push_str("#[derive(Clone, Debug, PartialEq, Eq, Hash)]\n#[non_exhaustive]\npub enum ErrorCode {\n");
    for e in &spec.errors {
        let _ = writeln!(o, "/// `{}`: {}\n{},", e.code, e.doc, e.name);
    }
    o.push_str("/// A code this SDK does not know, kept as received.\nUnknown(iot_model::UnknownValue),\n}\n");
    let rows: Vec<WireRow<'_>> =
        spec.errors.iter().map(|e| WireRow { variant: &e.name, wire: &e.code, aliases: &[] }).collect();
    wire_enum_impls(&mut o, P, "ErrorCode", &rows);
    o.push_str("/// Every documented error code, in the order of [`ErrorCode`]'s variants.\npub static ERROR_CATALOG: &[crate::error::ErrorInfo] = &[\n");
    for e in &spec.errors {
        let class = match e.class {
            ErrorClass::Throttled => "Throttled",
            ErrorClass::Auth => "TokenInvalid",
            ErrorClass::Server => "Server",
            ErrorClass::Permanent => "Permanent",
        };
        let statuses: Vec<String> = e.status.iter().map(u16::to_string).collect();
        let _ = writeln!(
            o,
            "crate::error::ErrorInfo {{ code: {:?}, name: {:?}, statuses: &[{}], class: crate::error::ErrorClass::{class}, doc: {:?} }},",
            e.code,
            e.name,
            statuses.join(", "),
            e.doc
        );
    }
    o.push_str("];\n\n");

    // Query-value impls for every id and enum, so any of them can travel in a query or a path.
    let ids: Vec<String> = spec.ids.iter().map(|id| format!("{P}{}", id.name)).collect();
    let both = "#[cfg(any(feature = \"client\", feature = \"server\"))]";
    let _ = writeln!(o, "{both}\ncrate::glue::query_value_id!({});", ids.join(", "));
    let enums: Vec<String> = spec.enums.iter().map(|e| format!("{P}{}", e.name)).collect();
    let _ = writeln!(o, "{both}\ncrate::glue::query_value_enum!({});\n", enums.join(", "));

    // The endpoint id enum.
    o.push_str("/// Names every endpoint; [`EndpointId::meta`] gives its metadata.\n");
    o.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum EndpointId {\n");
    for ep in &spec.endpoints {
        let _ = writeln!(o, "/// {}\n{},", ep.doc, ep.name);
    }
    o.push_str(
        "}\n\nimpl EndpointId {\n/// Every endpoint, in spec order.\npub const ALL: &'static [EndpointId] = &[\n",
    );
    for ep in &spec.endpoints {
        let _ = writeln!(o, "EndpointId::{},", ep.name);
    }
    o.push_str("];\n\n/// The endpoint's metadata.\npub fn meta(self) -> &'static EndpointMeta {\nmatch self {\n");
    for ep in &spec.endpoints {
        let _ = writeln!(o, "EndpointId::{0} => <{0} as Endpoint>::META,", ep.name);
    }
    o.push_str("}\n}\n}\n\n");
    server_dispatch(&mut o, spec);

    for ep in &spec.endpoints {
        endpoint(&mut o, spec, ep);
    }

    for s in spec.structs.iter().filter(|s| s.page.is_some()) {
        let Some(page) = &s.page else { continue };
        let items = s.fields.iter().find(|f| f.json == page.items);
        let Some(items) = items else { continue };
        let item_ty = match Ty::parse(&items.ty) {
            Ok(Ty::List(t)) => rust_ty(&t, P),
            _ => continue,
        };
        let members: Vec<String> =
            std::iter::once(&items.json).chain(&items.aliases).map(|m| format!("{m:?}")).collect();
        let (name, fam, f, members) = (&s.name, screaming(&page.family), items.rust_name(), members.join(", "));
        // Written as the output reads; rustfmt lays it out.
        let _ = writeln!(
            o,
            r#"impl crate::endpoint::Page for {P}{name} {{
    type Item = {item_ty};
    const LIMITS: PagingLimits = {fam}_PAGING;
    fn items(&self) -> &[Self::Item] {{ &self.{f} }}
    fn into_items(self) -> Vec<Self::Item> {{ self.{f} }}
    fn total_count(&self) -> Option<u64> {{ self.total_count }}
    fn page_no(&self) -> Option<u32> {{ self.page_no }}
    fn rejected(&self) -> &[iot_model::RejectedItem] {{ &self.rejected }}
    fn from_items(page_no: u32, page_size: u32, total_count: u64, items: Vec<Self::Item>) -> Self {{
        let mut page = Self::new();
        page.page_no = Some(page_no);
        page.page_size = Some(page_size);
        page.total_count = Some(total_count);
        page.{f} = items;
        page
    }}
}}

impl PageGlue<{item_ty}> for {P}{name} {{
    const ITEM_MEMBERS: &'static [&'static str] = &[{members}];
    fn replace_items(&mut self, items: Vec<{item_ty}>, rejected: Vec<iot_model::RejectedItem>) {{
        self.{f} = items;
        self.rejected = rejected;
    }}
}}
"#
        );
    }

    // Validation glue for every structure a request body can reach.
    let reachable = body_reachable(spec);
    for s in spec.structs.iter().filter(|s| reachable.contains(&s.name)) {
        let _ = writeln!(o, "impl Validate for {P}{} {{", s.name);
        let mut checks = String::new();
        for f in &s.fields {
            field_checks(&mut checks, spec, f, "self.", &reachable);
        }
        if s.rules {
            let _ = writeln!(checks, "crate::rules::{}(self, v);", snake(&s.name));
        }
        emit_fn(&mut o, "fn validate(&self, {v}: &mut Validator)", "v", &checks);
        o.push_str("}\n\n");
    }
    o
}

fn body_reachable(spec: &Spec) -> BTreeSet<String> {
    let kinds = spec.kinds();
    let mut set = BTreeSet::new();
    // Bodies, and the structs checked although they travel inside a free JSON object.
    let mut todo: Vec<String> = spec.endpoints.iter().filter_map(|e| e.body.as_ref().map(|b| b.ty.clone())).collect();
    todo.extend(spec.structs.iter().filter(|s| s.validated).map(|s| s.name.clone()));
    while let Some(n) = todo.pop() {
        if !set.insert(n.clone()) {
            continue;
        }
        if let Some(s) = spec.struct_def(&n) {
            for f in &s.fields {
                if let Ok(t) = Ty::parse(&f.ty)
                    && kinds.get(t.leaf()) == Some(&Kind::Struct)
                {
                    todo.push(t.leaf().to_owned());
                }
            }
        }
    }
    set
}

/// Whether a structure holds a secret anywhere inside it.
pub(crate) fn carries_secrets(spec: &Spec, name: &str) -> bool {
    let Some(s) = spec.struct_def(name) else { return false };
    s.fields.iter().any(|f| {
        Ty::parse(&f.ty)
            .is_ok_and(|t| SECRETS.contains(&t.leaf()) || (t.leaf() != name && carries_secrets(spec, t.leaf())))
    })
}

/// The `ErrorCode` variant of a catalog code (the spec's checks make sure there is one).
fn code_variant(spec: &Spec, code: &str) -> String {
    format!("ErrorCode::{}", spec.error(code).map_or("Unknown", |e| e.name.as_str()))
}

fn code_arg(spec: &Spec, f: &Field) -> String {
    match &f.code {
        Some(c) => format!("Some({})", code_variant(spec, c)),
        None => "None".into(),
    }
}

/// The constant of a named limit.
fn limit(r: &LimitRef) -> String {
    format!("{P}limits::{r}")
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    match v {
        Some(x) => format!("Some({x})"),
        None => "None".into(),
    }
}

/// A named limit as a length (`usize`).
fn opt_len(v: Option<&LimitRef>) -> String {
    opt(v.map(|r| format!("{} as usize", limit(r))))
}

/// Emits the checks of one field; `owner` is `self.` for struct fields.
fn field_checks(o: &mut String, spec: &Spec, f: &Field, owner: &str, reachable: &BTreeSet<String>) {
    let Ok(t) = Ty::parse(&f.ty) else { return };
    let kinds = spec.kinds();
    let code = code_arg(spec, f);
    let json = &f.json;
    let mut body = String::new();
    let str_of =
        |leaf: &str| -> &'static str { if SECRETS.contains(&leaf) { "x.expose_secret()" } else { "x.as_str()" } };
    match &t {
        Ty::Named(n) => {
            let is_str = matches!(kinds.get(n), Some(Kind::Id))
                || ["String", "LooseString"].contains(&n.as_str())
                || SECRETS.contains(&n.as_str());
            if is_str && (f.max_len.is_some() || f.min_len.is_some()) {
                let _ = writeln!(
                    body,
                    "v.len({json:?}, {}, {}, {}, {code});",
                    str_of(n),
                    opt(f.min_len),
                    opt_len(f.max_len.as_ref())
                );
            }
            if ["u32", "u64"].contains(&n.as_str()) && (f.min.is_some() || f.max.is_some()) {
                let _ = writeln!(
                    body,
                    "v.range({json:?}, u64::from(*x), {}, {}, {code});",
                    opt(f.min.as_ref().map(limit)),
                    opt(f.max.as_ref().map(limit))
                );
            }
            if reachable.contains(n) {
                let _ = writeln!(body, "v.nested({json:?}, x);");
            }
        }
        Ty::List(inner) => {
            if let Some(m) = &f.max_items {
                let _ = writeln!(body, "v.items({json:?}, x.len(), {} as usize, {code});", limit(m));
            }
            if let Ty::Named(n) = inner.as_ref() {
                let is_str = matches!(kinds.get(n), Some(Kind::Id)) || n == "String";
                if is_str && (f.max_len.is_some() || f.min_len.is_some()) {
                    let _ = writeln!(
                        body,
                        "v.each_len({json:?}, x.iter().map(|x| x.as_str()), {}, {}, {code});",
                        opt(f.min_len),
                        opt_len(f.max_len.as_ref())
                    );
                }
                if reachable.contains(n) {
                    let _ = writeln!(body, "v.nested_each({json:?}, x);");
                }
            }
        }
        Ty::Map(_) => {}
    }
    if body.is_empty() {
        return;
    }
    let name = f.rust_name();
    if f.required {
        let _ = write!(o, "{{\nlet x = &{owner}{name};\n{body}}}\n");
    } else {
        let _ = write!(o, "if let Some(x) = &{owner}{name} {{\n{body}}}\n");
    }
}

fn endpoint(o: &mut String, spec: &Spec, ep: &EndpointDef) {
    endpoint_struct(o, ep);
    endpoint_builders(o, ep);
    endpoint_impl(o, spec, ep);
    endpoint_glue(o, spec, ep);
    if ep.paging.is_some() {
        paged_impl(o, ep);
    }
}

/// The request type: one public field per parameter, and the body.
fn endpoint_struct(o: &mut String, ep: &EndpointDef) {
    let _ = writeln!(o, "/// {}\n///\n/// `{} {}`", ep.doc, ep.method, ep.path);
    o.push_str("#[derive(Clone, Debug, PartialEq)]\n#[non_exhaustive]\n");
    let _ = writeln!(o, "pub struct {} {{", ep.name);
    for p in &ep.params {
        let _ = writeln!(
            o,
            "/// {} ({} parameter `{}`)\npub {}: {},",
            p.doc,
            p.location.map_or("", Location::as_str),
            p.json,
            p.rust_name(),
            field_ty(p, P)
        );
    }
    if let Some(b) = &ep.body {
        let _ = writeln!(o, "/// The request body.\npub body: {P}{},", b.ty);
    }
    o.push_str("}\n\n");
}

/// `new` from the required parts, a `with_` setter per optional parameter, and `Default` when nothing is required.
fn endpoint_builders(o: &mut String, ep: &EndpointDef) {
    let mut args: Vec<String> =
        ep.params.iter().filter(|p| p.required).map(|p| format!("{}: {}", p.rust_name(), field_ty(p, P))).collect();
    if let Some(b) = &ep.body {
        args.push(format!("body: {P}{}", b.ty));
    }
    // Clippy's limit is seven; an endpoint with more required parts says so where it happens.
    let allow = if args.len() > 7 { "#[allow(clippy::too_many_arguments)]\n" } else { "" };
    let _ = writeln!(
        o,
        "impl {} {{\n/// Builds the request from its required parts; optional parameters start unset.\n{allow}pub fn new({}) -> Self {{\nSelf {{",
        ep.name,
        args.join(", ")
    );
    for p in &ep.params {
        if p.required {
            let _ = writeln!(o, "{},", p.rust_name());
        } else {
            let _ = writeln!(o, "{}: None,", p.rust_name());
        }
    }
    if ep.body.is_some() {
        o.push_str("body,\n");
    }
    o.push_str("}\n}\n");
    for p in ep.params.iter().filter(|p| !p.required) {
        let inner = Ty::parse(&p.ty).map(|t| rust_ty(&t, P)).unwrap_or_default();
        // Free-text filters take anything that becomes a `String`, so callers can pass `&str` without
        // `.to_owned()`; typed values (enums, ids, numbers) keep their own type.
        let (arg, value) =
            if inner == "String" { ("impl Into<String>".to_owned(), "value.into()") } else { (inner, "value") };
        let _ = writeln!(
            o,
            "/// Sets `{}`.\npub fn with_{}(mut self, value: {arg}) -> Self {{\nself.{1} = Some({value});\nself\n}}",
            p.json,
            p.rust_name()
        );
    }
    o.push_str("}\n\n");
    if ep.params.iter().all(|p| !p.required) && ep.body.is_none() {
        let _ = writeln!(o, "impl Default for {} {{\nfn default() -> Self {{\nSelf::new()\n}}\n}}\n", ep.name);
    }
}

/// The body type of an endpoint, as generated code names it.
fn body_ty(ep: &EndpointDef) -> String {
    ep.body.as_ref().map(|b| format!("{P}{}", b.ty)).unwrap_or_else(|| "crate::endpoint::NoBody".into())
}

/// The public `Endpoint` impl: its types, its metadata and `body()`.
fn endpoint_impl(o: &mut String, spec: &Spec, ep: &EndpointDef) {
    let body_kind = match ep.body.as_ref().map(|b| b.kind) {
        Some(BodyKind::Form) => "Form",
        Some(BodyKind::Json) => "Json",
        None => "None",
    };
    let params: Vec<String> = ep
        .params
        .iter()
        .map(|p| {
            let loc = if p.location == Some(Location::Path) { "Path" } else { "Query" };
            struct_lit(
                "ParamMeta",
                &[
                    ("name", format!("{:?}", p.json)),
                    ("location", format!("ParamLocation::{loc}")),
                    ("required", p.required.to_string()),
                    ("code", code_arg(spec, p)),
                ],
            )
        })
        .collect();
    let errors: Vec<String> = ep.errors.iter().map(|e| code_variant(spec, e)).collect();
    let name = &ep.name;
    let meta = struct_lit(
        "EndpointMeta",
        &[
            ("id", format!("EndpointId::{name}")),
            ("name", format!("{name:?}")),
            ("family", format!("{:?}", ep.family.as_str())),
            ("method", format!("http::Method::{}", ep.method)),
            ("path", format!("{:?}", ep.path)),
            ("auth", ep.auth.to_string()),
            ("idempotent", ep.idempotent.to_string()),
            (
                "reconcile",
                match ep.reconcile {
                    Some(Reconcile::UpgradeTask) => "Some(Reconcile::UpgradeTask)".into(),
                    None => "None".into(),
                },
            ),
            ("body", format!("BodyKind::{body_kind}")),
            ("response", format!("ResponseKind::{}", if ep.response == "empty" { "Empty" } else { "Json" })),
            ("secret_response", carries_secrets(spec, &ep.response).to_string()),
            ("paging", ep.paging.as_ref().map_or_else(|| "None".into(), |p| format!("Some({}_PAGING)", screaming(p)))),
            ("rejection", code_variant(spec, &ep.rejection)),
            ("errors", format!("&[{}]", errors.join(", "))),
            ("params", format!("&[{}]", params.join(", "))),
        ],
    );
    let _ = writeln!(
        o,
        "impl Endpoint for {name} {{\ntype Body = {};\ntype Response = {};\nconst META: &'static EndpointMeta = &{meta};\n",
        body_ty(ep),
        response_ty(ep)
    );
    if ep.body.is_some() {
        o.push_str("fn body(&self) -> &Self::Body {\n&self.body\n}\n}\n\n");
    } else {
        o.push_str("fn body(&self) -> &Self::Body {\n&crate::endpoint::NoBody\n}\n}\n\n");
    }
}

/// The glue: a private supertrait, so none of it is public API.
fn endpoint_glue(o: &mut String, spec: &Spec, ep: &EndpointDef) {
    let (body_ty, resp_ty) = (body_ty(ep), response_ty(ep));
    let _ = writeln!(o, "impl Glue<{body_ty}, {resp_ty}> for {} {{", ep.name);
    let mut writes = String::new();
    let mut reads = String::new();
    for p in &ep.params {
        let (write, read) = match (p.location, p.required) {
            (Some(Location::Path), _) => (format!("w.path({:?}, self.{}.as_str());", p.json, p.rust_name()), "path"),
            (_, true) => (format!("w.query_required({:?}, &self.{});", p.json, p.rust_name()), "query_required"),
            _ => (format!("w.query({:?}, &self.{});", p.json, p.rust_name()), "query"),
        };
        let _ = writeln!(writes, "{write}");
        let _ = writeln!(reads, "{}: r.{read}({:?})?,", p.rust_name(), p.json);
    }
    emit_fn(o, "#[cfg(feature = \"client\")]\nfn write_params(&self, {w}: &mut ParamWriter)", "w", &writes);
    // The body is the reader's input whether or not the endpoint has one, so the generic server code need not
    // tell the two apart; `NoBody` is simply dropped.
    let body_arg = if ep.body.is_some() { "body" } else { "_" };
    let r = if ep.params.is_empty() { "_" } else { "r" };
    let _ = writeln!(
        o,
        "#[cfg(feature = \"server\")]\n\
         fn read_params({r}: &mut ParamReader<'_>, {body_arg}: {body_ty}) -> Result<Self, ParamError> {{\nOk(Self {{\n{reads}{}}})\n}}\n",
        if ep.body.is_some() { "body,\n" } else { "" }
    );
    let empty = BTreeSet::new();
    let mut checks = String::new();
    for p in &ep.params {
        field_checks(&mut checks, spec, p, "self.", &empty);
    }
    if ep.body.is_some() {
        checks.push_str("self.body.validate(v);\n");
    }
    emit_fn(o, "fn check(&self, {v}: &mut Validator)", "v", &checks);
    // A page with unreadable items keeps its readable ones.
    let reader = if ep.paging.is_some() { "read_page" } else { "read_answer" };
    let _ = writeln!(
        o,
        "fn read_answer(status: http::StatusCode, body: &[u8]) -> Result<{resp_ty}, FromHttpResponseError> {{\n\
         crate::client::{reader}(status, body)\n}}\n}}\n"
    );
}

/// A paged query's page setters.
fn paged_impl(o: &mut String, ep: &EndpointDef) {
    let _ = writeln!(
        o,
        r#"impl crate::endpoint::Paged for {} {{
    fn page_no(&self) -> Option<u32> {{ self.page_no }}
    fn page_size(&self) -> Option<u32> {{ self.page_size }}
    fn set_page(&mut self, page_no: u32, page_size: u32) {{
        self.page_no = Some(page_no);
        self.page_size = Some(page_size);
    }}
}}
"#,
        ep.name
    );
}

/// A struct literal, `name { field: value, ... }`, from its fields in order (rustfmt lays it out).
fn struct_lit(name: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("{name} {{\n");
    for (field, value) in fields {
        let _ = writeln!(out, "{field}: {value},");
    }
    out.push('}');
    out
}

/// Emits a function whose only parameter besides `self` is `name`; the parameter is `_` when the body does not
/// use it, so the output carries no `let _ = name;`. `sig` holds `{name}` where the parameter goes.
fn emit_fn(o: &mut String, sig: &str, name: &str, body: &str) {
    let sig = sig.replace(&format!("{{{name}}}"), if body.is_empty() { "_" } else { name });
    if body.is_empty() {
        let _ = writeln!(o, "{sig} {{}}\n");
    } else {
        let _ = writeln!(o, "{sig} {{\n{body}}}\n");
    }
}

/// The response type of an endpoint, as generated code names it.
fn response_ty(ep: &EndpointDef) -> String {
    if ep.response == "empty" { "crate::endpoint::Empty".into() } else { format!("{P}{}", ep.response) }
}

/// The server side's two ways from an [`EndpointId`] to its type, both `match`es without a catch-all: a visitor
/// for generic code (reading any request), and a trait with one handler per endpoint, so that a new endpoint
/// in the spec is a compile error in every server until it is answered.
fn server_dispatch(o: &mut String, spec: &Spec) {
    // Written as the output reads; rustfmt lays it out.
    let mut handlers = String::new();
    let mut visits = String::new();
    let mut dispatches = String::new();
    for ep in &spec.endpoints {
        let (name, method, answer) = (&ep.name, snake(&ep.name), response_ty(ep));
        let (doc, verb, path) = (ep.doc.trim_end_matches('.'), &ep.method, &ep.path);
        let caller = if ep.auth { "caller: Self::Caller, " } else { "" };
        let _ = writeln!(
            handlers,
            "    /// {doc} (`{verb} {path}`).\n    \
             fn {method}(&mut self, {caller}request: {name}) -> Result<crate::server::Answer<{answer}>, crate::ApiError>;"
        );
        let _ = writeln!(visits, "            EndpointId::{name} => visitor.visit::<{name}>(),");
        // An authenticated call is checked before its request is read.
        let outcome = if ep.auth {
            format!(
                "handlers.authenticate().and_then(|caller| {{ let request = handlers.request()?; \
                 handlers.{method}(caller, request) }})"
            )
        } else {
            format!("handlers.request().and_then(|request| handlers.{method}(request))")
        };
        let _ = writeln!(dispatches, "            EndpointId::{name} => crate::server::respond::<{name}>({outcome}),");
    }
    let _ = writeln!(
        o,
        r#"/// Generic server code run with the endpoint type an [`EndpointId`] names (see [`EndpointId::visit`]).
#[cfg(feature = "server")]
pub trait EndpointVisitor {{
    /// What the visit gives.
    type Output;
    /// Runs with `E`, the endpoint the id names.
    fn visit<E: Endpoint + Send + 'static>(self) -> Self::Output;
}}

/// What a server does with each endpoint's request: one method per endpoint of the spec, called by
/// [`EndpointId::dispatch`]. A new endpoint adds a required method, so a server does not compile until it
/// answers the endpoint.
#[cfg(feature = "server")]
pub trait Handlers {{
    /// Who made an authenticated call.
    type Caller;
    /// Checks an authenticated call's credentials; runs before the request is read, so a caller without
    /// them learns nothing about their request.
    fn authenticate(&mut self) -> Result<Self::Caller, crate::ApiError>;
    /// Reads the request of endpoint `E`, or the rejection the platform answers.
    fn request<E: Endpoint + Send + 'static>(&mut self) -> Result<E, crate::ApiError>;
{handlers}}}

#[cfg(feature = "server")]
impl EndpointId {{
    /// Runs `visitor` with the endpoint type this id names.
    pub fn visit<V: EndpointVisitor>(self, visitor: V) -> V::Output {{
        match self {{
{visits}        }}
    }}

    /// Answers a call to this endpoint: authenticates it if the endpoint needs it, reads its request and
    /// hands it to the endpoint's handler.
    pub fn dispatch<H: Handlers>(self, handlers: &mut H) -> http::Response<Vec<u8>> {{
        match self {{
{dispatches}        }}
    }}
}}
"#
    );
}
