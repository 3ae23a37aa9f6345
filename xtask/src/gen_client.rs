//! Generates each driver's typed method per endpoint: iot-hyper's async ones (`crates/iot-hyper/src/generated.rs`)
//! and iot-blocking's blocking ones (`crates/iot-blocking/src/generated.rs`), one-line wrappers over the generic
//! `Client::send`. Authentication endpoints are driven by the client's session instead.

use std::fmt::Write as _;

use crate::spec::{Family, Spec, snake};

/// How a driver's methods look.
#[derive(Clone, Copy)]
pub enum Flavour {
    /// `pub async fn ...` over `self.send(request).await`.
    Async,
    /// `pub fn ...` over `self.send(request)`.
    Blocking,
}

pub fn client(spec: &Spec, flavour: Flavour) -> String {
    let (asyncness, wait) = match flavour {
        Flavour::Async => ("async ", ".await"),
        Flavour::Blocking => ("", ""),
    };
    let mut o = String::new();
    o.push_str(crate::HEADER);
    o.push_str("\nuse crate::{Client, Error};\n\nimpl Client {\n");
    for ep in spec.endpoints.iter().filter(|e| e.family != Family::Auth) {
        let resp =
            if ep.response == "empty" { "iot_proto::Empty".to_owned() } else { format!("iot_model::{}", ep.response) };
        let _ = writeln!(
            o,
            "/// {}\n///\n/// `{} {}`; logs in or refreshes the token first when needed.\n\
             pub {asyncness}fn {}(&self, request: &iot_proto::{}) -> Result<{resp}, Error> {{\nself.send(request){wait}\n}}\n",
            ep.doc,
            ep.method,
            ep.path,
            snake(&ep.name),
            ep.name
        );
    }
    o.push_str("}\n");
    o
}
