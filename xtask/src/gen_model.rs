//! Generates iot-model's types (`crates/iot-model/src/generated.rs`) and proptest strategies
//! (`crates/iot-model/src/strategies.rs`).

use std::fmt::Write as _;

use crate::spec::{Field, Kind, SECRETS, Spec, StructDef, Ty, snake};

/// The Rust type of a spec type, with `p` as the path prefix of model types (`crate::` or `iot_model::`).
pub fn rust_ty(t: &Ty, p: &str) -> String {
    match t {
        Ty::Named(n) => match n.as_str() {
            "String" | "LooseString" => "String".into(),
            "bool" | "u32" | "u64" | "i64" => n.clone(),
            "JsonObject" => format!("{p}JsonMap<String, {p}Json>"),
            other => format!("{p}{other}"),
        },
        Ty::List(t) => format!("Vec<{}>", rust_ty(t, p)),
        Ty::Map(t) => format!("std::collections::BTreeMap<String, {}>", rust_ty(t, p)),
    }
}

/// The Rust type of a field: optional fields are wrapped in `Option`.
pub fn field_ty(f: &Field, p: &str) -> String {
    let t = Ty::parse(&f.ty).map(|t| rust_ty(&t, p)).unwrap_or_default();
    if f.required { t } else { format!("Option<{t}>") }
}

fn doc_lines(out: &mut String, doc: &str, quirk: Option<&str>) {
    for line in doc.lines() {
        let _ = writeln!(out, "/// {line}");
    }
    if let Some(q) = quirk {
        let _ = writeln!(out, "///\n/// Tolerates contract quirk {q}.");
    }
}

pub fn model(spec: &Spec) -> String {
    let mut o = String::new();
    o.push_str(crate::HEADER);
    o.push('\n');

    o.push_str("/// Limits of the platform, as numbers.\npub mod limits {\n");
    for l in &spec.limits {
        doc_lines(&mut o, &l.doc, None);
        let _ = writeln!(o, "pub const {}: u64 = {};", l.name, l.value);
    }
    o.push_str("}\n\n");
    let _ = writeln!(
        o,
        "/// The port the platform usually serves the northbound API on.\npub const DEFAULT_PORT: u16 = {};\n",
        spec.api.default_port
    );

    for id in &spec.ids {
        o.push_str("crate::id::id_newtype!(\n");
        doc_lines(&mut o, &id.doc, None);
        let _ = writeln!(o, "{}, {});\n", id.name, id.max_len);
    }

    for e in &spec.enums {
        doc_lines(&mut o, &e.doc, e.quirk.as_ref().map(ToString::to_string).as_deref());
        o.push_str("///\n/// Read without regard to case; a value this SDK does not know is kept in `Unknown`.\n");
        o.push_str("#[derive(Clone, Debug, PartialEq, Eq, Hash)]\n#[non_exhaustive]\n");
        let _ = writeln!(o, "pub enum {} {{", e.name);
        for v in &e.values {
            let aliases = if v.aliases.is_empty() {
                String::new()
            } else {
                format!(
                    " Also read from {}.",
                    v.aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                )
            };
            let _ = writeln!(o, "/// {} Wire value `{}`.{aliases}\n{},", v.doc, v.wire, v.variant);
        }
        o.push_str("/// A value this SDK does not know, kept as received.\nUnknown(crate::UnknownValue),\n}\n");
        let rows: Vec<WireRow<'_>> =
            e.values.iter().map(|v| WireRow { variant: &v.variant, wire: &v.wire, aliases: &v.aliases }).collect();
        wire_enum_impls(&mut o, "crate::", &e.name, &rows);
    }

    for s in &spec.structs {
        struct_def(&mut o, spec, s);
    }
    o
}

/// One variant of a wire enum, for [`wire_enum_impls`].
pub struct WireRow<'a> {
    pub variant: &'a str,
    pub wire: &'a str,
    pub aliases: &'a [String],
}

/// Emits a wire enum's impls after its definition (which ends in `Unknown(UnknownValue)`), for iot-model's
/// enums and iot-proto's `ErrorCode` alike; `p` is the path prefix of iot-model (`crate::` or `iot_model::`).
/// Only the data and the `as_wire` match are per type: the reading and writing logic is written once in
/// `iot_model::wire_enum`, which the other impls call.
pub fn wire_enum_impls(o: &mut String, p: &str, name: &str, rows: &[WireRow<'_>]) {
    let table: Vec<String> = rows
        .iter()
        .map(|r| {
            let aliases: Vec<String> = r.aliases.iter().map(|a| format!("{a:?}")).collect();
            format!("({:?}, &[{}])", r.wire, aliases.join(", "))
        })
        .collect();
    let known: Vec<String> = rows.iter().map(|r| format!("Self::{}", r.variant)).collect();
    let arms: String = rows.iter().map(|r| format!("Self::{} => {:?},\n", r.variant, r.wire)).collect();
    let (table, known) = (table.join(", "), known.join(", "));
    // Written as the output reads; rustfmt lays it out.
    let _ = writeln!(
        o,
        r#"
impl {p}wire_enum::WireEnum for {name} {{
    const TABLE: &'static [(&'static str, &'static [&'static str])] = &[{table}];
    const KNOWN: &'static [Self] = &[{known}];
    fn unknown(value: {p}UnknownValue) -> Self {{ Self::Unknown(value) }}
    fn unknown_value(&self) -> Option<&{p}UnknownValue> {{
        match self {{ Self::Unknown(v) => Some(v), _ => None }}
    }}
    fn as_wire(&self) -> &str {{
        match self {{
            {arms}Self::Unknown(v) => v.as_str(),
        }}
    }}
}}

impl {name} {{
    /// The canonical wire form (or the unknown value as received).
    pub fn as_str(&self) -> &str {{ {p}wire_enum::WireEnum::as_wire(self) }}
}}

impl std::fmt::Display for {name} {{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{ f.write_str(self.as_str()) }}
}}

impl std::str::FromStr for {name} {{
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {{ Ok({p}wire_enum::WireEnum::from_wire(s)) }}
}}

impl serde::Serialize for {name} {{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {{ {p}wire_enum::serialize(self, s) }}
}}

impl<'de> serde::Deserialize<'de> for {name} {{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{ {p}wire_enum::deserialize(d) }}
}}
"#
    );
}

/// How a field is read: which tolerant reader of `iot_model::de` applies to its type (see that module for the
/// rules). `optional` asks for the flavour that yields an `Option`, whatever the field's own `required`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Optional,
    Defaulted,
    Required,
}

fn presence(f: &Field) -> Presence {
    match (f.required, f.default) {
        (false, _) => Presence::Optional,
        (true, true) => Presence::Defaulted,
        (true, false) => Presence::Required,
    }
}

/// The serde attributes that read a field of type `ty` with presence `p`.
fn read_attrs(ty: &str, p: Presence) -> Vec<String> {
    let family = match Ty::parse(ty) {
        Ok(Ty::Named(n)) => match n.as_str() {
            "String" | "LooseString" => Some("text"),
            "u32" | "u64" | "i64" => Some("int"),
            "bool" => Some("flag"),
            "JsonObject" => Some("object"),
            _ => None,
        },
        Ok(Ty::Map(_)) => Some("object"),
        // Lists go through the budgeted reader, so that a list of tiny elements cannot decode into many times
        // its size.
        Ok(Ty::List(_)) => Some("list"),
        _ => None,
    };
    let with = |suffix: &str| format!("deserialize_with = \"crate::de::{}{suffix}\"", family.unwrap_or_default());
    match (family, p) {
        (Some(_), Presence::Optional) => vec!["default".into(), with("")],
        (Some(_), Presence::Defaulted) => vec!["default".into(), with("_or_default")],
        (Some(_), Presence::Required) => vec![with("_required")],
        (None, Presence::Optional) => vec!["default".into()],
        (None, Presence::Defaulted) => {
            vec!["default".into(), "deserialize_with = \"crate::de::null_as_default\"".into()]
        }
        (None, Presence::Required) => vec![],
    }
}

/// The serde attributes that write a field.
fn write_attrs(f: &Field) -> Vec<String> {
    let secret = SECRETS.contains(&f.ty.as_str());
    let mut attrs = Vec::new();
    if !f.required {
        if !f.nullable {
            attrs.push("skip_serializing_if = \"Option::is_none\"".into());
        }
        if secret {
            attrs.push("serialize_with = \"crate::secret::serialize_exposed_opt\"".into());
        }
    } else if secret {
        attrs.push("serialize_with = \"crate::secret::serialize_exposed\"".into());
    }
    attrs
}

/// The feature under which a structure that holds a secret implements `Serialize`: only the side that must
/// send it writes it, so a request body with a secret serializes under `client`, an answer with one under
/// `server`; `None` for a structure without secrets, which always serializes.
fn serialize_feature(spec: &Spec, name: &str) -> Option<&'static str> {
    if !crate::gen_proto::carries_secrets(spec, name) {
        return None;
    }
    let is_body = spec.endpoints.iter().any(|e| e.body.as_ref().is_some_and(|b| b.ty == name));
    Some(if is_body { "client" } else { "server" })
}

fn struct_def(o: &mut String, spec: &Spec, s: &StructDef) {
    doc_lines(o, &s.doc, s.quirk.as_ref().map(ToString::to_string).as_deref());
    let needs_args: Vec<&Field> = s.fields.iter().filter(|f| f.required && !f.default).collect();
    let derive_default = needs_args.is_empty();
    // A structure with alias spellings is read through a private mirror that gives every spelling its own
    // slot, so an answer carrying two spellings of one member is read (canonical first) instead of refused.
    let mirrored = s.fields.iter().any(|f| !f.aliases.is_empty());
    let serialize = match serialize_feature(spec, &s.name) {
        None => ", serde::Serialize".to_owned(),
        Some(feature) => {
            let _ =
                writeln!(o, "///\n/// Holds a secret, so it implements `Serialize` only with the `{feature}` feature.");
            String::new()
        }
    };
    let _ = writeln!(
        o,
        "#[derive(Clone, Debug, PartialEq{}{serialize}{})]",
        if derive_default { ", Default" } else { "" },
        if mirrored { "" } else { ", serde::Deserialize" },
    );
    if let Some(feature) = serialize_feature(spec, &s.name) {
        let _ = writeln!(o, "#[cfg_attr(feature = \"{feature}\", derive(serde::Serialize))]");
    }
    let _ = writeln!(o, "#[non_exhaustive]\npub struct {} {{", s.name);
    for f in &s.fields {
        doc_lines(o, &f.doc, f.quirk.as_ref().map(ToString::to_string).as_deref());
        if f.nullable {
            o.push_str("///\n/// Written as `null` when absent, as the platform does.\n");
        }
        let mut attrs = vec![format!("rename = {:?}", f.json)];
        if !mirrored {
            attrs.extend(read_attrs(&f.ty, presence(f)));
        }
        attrs.extend(write_attrs(f));
        let _ = writeln!(o, "#[serde({})]\npub {}: {},", attrs.join(", "), f.rust_name(), field_ty(f, "crate::"));
    }
    if s.page.is_some() {
        o.push_str(
            "/// Items of this page that could not be read, with where and why; the readable ones are in the \
             items member. Never on the wire.\n#[serde(skip)]\npub rejected: Vec<crate::RejectedItem>,\n",
        );
    }
    o.push_str("}\n\n");
    if mirrored {
        mirror(o, s);
    }
    let _ = writeln!(o, "impl {} {{", s.name);
    let args: Vec<String> =
        needs_args.iter().map(|f| format!("{}: {}", f.rust_name(), field_ty(f, "crate::"))).collect();
    // Clippy's limit is seven; a structure with more required fields says so where it happens.
    let allow = if args.len() > 7 { "#[allow(clippy::too_many_arguments)]\n" } else { "" };
    let _ = writeln!(
        o,
        "/// Builds a value from its required fields; the optional ones start empty.\n{allow}pub fn new({}) -> Self {{\nSelf {{",
        args.join(", ")
    );
    for f in &s.fields {
        if f.required && !f.default {
            let _ = writeln!(o, "{},", f.rust_name());
        } else if f.required {
            let _ = writeln!(o, "{}: Default::default(),", f.rust_name());
        } else {
            let _ = writeln!(o, "{}: None,", f.rust_name());
        }
    }
    if s.page.is_some() {
        o.push_str("rejected: Vec::new(),\n");
    }
    o.push_str("}\n}\n");
    // Builder-style setters for optional fields keep construction of #[non_exhaustive] structs pleasant.
    for f in s.fields.iter().filter(|f| !f.required) {
        let inner = Ty::parse(&f.ty).map(|t| rust_ty(&t, "crate::")).unwrap_or_default();
        let _ = writeln!(
            o,
            "/// Sets `{}`.\npub fn with_{}(mut self, value: {inner}) -> Self {{\nself.{} = Some(value);\nself\n}}",
            f.json,
            f.rust_name().trim_start_matches("r#"),
            f.rust_name()
        );
    }
    o.push_str("}\n\n");
}

/// The private mirror of a structure with alias spellings, and the `Deserialize` impl that reads through it.
fn mirror(o: &mut String, s: &StructDef) {
    let wire = format!("{}Wire", s.name);
    let _ = writeln!(
        o,
        "/// Every spelling of every member of [`{0}`] in its own slot.\n#[derive(serde::Deserialize)]\nstruct {wire} {{",
        s.name
    );
    for f in &s.fields {
        let inner = Ty::parse(&f.ty).map(|t| rust_ty(&t, "crate::")).unwrap_or_default();
        if f.aliases.is_empty() {
            let mut attrs = vec![format!("rename = {:?}", f.json)];
            attrs.extend(read_attrs(&f.ty, presence(f)));
            let _ = writeln!(o, "#[serde({})]\n{}: {},", attrs.join(", "), f.rust_name(), field_ty(f, "crate::"));
            continue;
        }
        for (i, json) in std::iter::once(&f.json).chain(&f.aliases).enumerate() {
            let mut attrs = vec![format!("rename = {json:?}")];
            attrs.extend(read_attrs(&f.ty, Presence::Optional));
            let _ = writeln!(
                o,
                "#[serde({})]\n{}{}: Option<{inner}>,",
                attrs.join(", "),
                f.rust_name().trim_start_matches("r#"),
                if i == 0 { String::new() } else { format!("_{i}") }
            );
        }
    }
    o.push_str("}\n\n");
    let _ = writeln!(
        o,
        "impl<'de> serde::Deserialize<'de> for {0} {{\nfn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {{\n\
         let w = <{wire} as serde::Deserialize>::deserialize(d)?;\nOk(Self {{",
        s.name
    );
    for f in &s.fields {
        let name = f.rust_name();
        if f.aliases.is_empty() {
            let _ = writeln!(o, "{name}: w.{name},");
            continue;
        }
        let bare = name.trim_start_matches("r#");
        let alts: Vec<String> = (1..=f.aliases.len()).map(|i| format!("w.{bare}_{i}")).collect();
        let pick = format!("crate::de::first_present(w.{bare}, [{}])", alts.join(", "));
        let _ = match presence(f) {
            Presence::Optional => writeln!(o, "{name}: {pick},"),
            Presence::Defaulted => writeln!(o, "{name}: {pick}.unwrap_or_default(),"),
            Presence::Required => writeln!(
                o,
                "{name}: {pick}.ok_or_else(|| <D::Error as serde::de::Error>::custom(crate::de::missing({:?})))?,",
                f.json
            ),
        };
    }
    if s.page.is_some() {
        o.push_str("rejected: Vec::new(),\n");
    }
    o.push_str("})\n}\n}\n\n");
}

/// The strategy expression for a spec type.
fn strategy(t: &Ty, spec: &Spec) -> String {
    let kinds = spec.kinds();
    match t {
        Ty::Named(n) => match (n.as_str(), kinds.get(n)) {
            ("String" | "LooseString", _) => "s::string()".into(),
            ("bool" | "u32" | "u64" | "i64", _) => format!("any::<{n}>().boxed()"),
            ("Timestamp", _) => "s::timestamp()".into(),
            ("Json", _) => "s::json()".into(),
            ("JsonObject", _) => "s::json_object()".into(),
            (sec, _) if SECRETS.contains(&sec) => format!("s::secret(crate::{sec}::new)"),
            (_, Some(Kind::Id)) => format!("s::id(crate::{n}::new)"),
            (_, Some(Kind::Enum)) => format!("s::wire_enum::<crate::{n}>()"),
            _ => format!("{}()", snake(n)),
        },
        Ty::List(t) => format!("proptest::collection::vec({}, 0..3).boxed()", strategy(t, spec)),
        Ty::Map(t) => format!("proptest::collection::btree_map(s::string(), {}, 0..3).boxed()", strategy(t, spec)),
    }
}

pub fn strategies(spec: &Spec) -> String {
    let mut o = String::new();
    o.push_str(crate::HEADER);
    o.push_str("//!\n//! One strategy per structure, for property tests (feature `proptest`).\n\n");
    o.push_str("use proptest::prelude::*;\n\nuse crate::strategies_support as s;\n\n");
    for s in &spec.structs {
        let _ =
            writeln!(o, "/// Any `{}`.\npub fn {}() -> BoxedStrategy<crate::{}> {{", s.name, snake(&s.name), s.name);
        let chunks: Vec<&[Field]> = s.fields.chunks(8).collect();
        let mut tuple_parts = Vec::new();
        let mut pat_parts = Vec::new();
        for c in &chunks {
            let exprs: Vec<String> = c
                .iter()
                .map(|f| {
                    let t = Ty::parse(&f.ty).unwrap_or(Ty::Named(String::new()));
                    let e = strategy(&t, spec);
                    if f.required { e } else { format!("proptest::option::of({e})") }
                })
                .collect();
            tuple_parts.push(format!("({},)", exprs.join(", ")));
            pat_parts.push(format!("({},)", c.iter().map(|f| f.rust_name()).collect::<Vec<_>>().join(", ")));
        }
        let mut names: Vec<String> = s.fields.iter().map(|f| f.rust_name()).collect();
        if s.page.is_some() {
            names.push("rejected: Vec::new()".into());
        }
        let _ = writeln!(
            o,
            "({},).prop_map(|({},)| crate::{} {{ {} }}).boxed()\n}}\n",
            tuple_parts.join(", "),
            pat_parts.join(", "),
            s.name,
            names.join(", ")
        );
    }
    o
}
