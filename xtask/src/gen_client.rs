//! Generates iot-hyper's typed method per endpoint (`crates/iot-hyper/src/generated.rs`): one-line wrappers
//! over the generic `Client::send`. Authentication endpoints are driven by the client's session instead.

use std::fmt::Write as _;

use crate::spec::{Spec, snake};

pub fn client(spec: &Spec) -> String {
    let mut o = String::new();
    o.push_str(crate::HEADER);
    o.push_str("\nuse crate::{Client, Error};\n\nimpl Client {\n");
    for ep in spec.endpoints.iter().filter(|e| e.family != "auth") {
        let resp =
            if ep.response == "empty" { "iot_proto::Empty".to_owned() } else { format!("iot_model::{}", ep.response) };
        let _ = writeln!(
            o,
            "/// {}\n///\n/// `{} {}`; logs in or refreshes the token first when needed.\n\
             pub async fn {}(&self, request: &iot_proto::{}) -> Result<{resp}, Error> {{\nself.send(request).await\n}}\n",
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
