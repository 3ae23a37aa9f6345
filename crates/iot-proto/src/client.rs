//! Client side: typed request to `http::Request`, `http::Response` bytes to the typed answer or error.

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use iot_model::{AccessToken, AppId};

use crate::endpoint::{BodyKind, Endpoint, ResponseKind};
use crate::error::{ApiError, DecodeError, Error, excerpt};
use crate::wire::BaseUrl;

/// Name of the header that carries the appId on authenticated calls.
pub const APP_KEY: &str = "app_key";

/// Bodies at most this long are checked for a platform error object even under a 2xx status: the platform
/// may answer an error with 200. Larger bodies are pages, and skipping the probe keeps decoding at one pass.
pub const ERROR_PROBE_LIMIT: usize = 4096;

/// The key that marks a platform error object.
const ERROR_KEY: &[u8] = b"error_code";

/// The credentials of an authenticated call.
#[derive(Clone, Copy, Debug)]
pub struct BearerAuth<'a> {
    /// Sent as `app_key`.
    pub app_id: &'a AppId,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: &'a AccessToken,
}

fn sensitive(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::Invalid(crate::ValidationError {
            field: "credentials".into(),
            rule: "must be a valid header value (visible ASCII)".into(),
            code: None,
        })
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn substitute(template: &str, values: &[(&'static str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    for seg in template.split('/').skip(1) {
        out.push('/');
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let v = values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("");
                out.push_str(v);
            }
            None => out.push_str(seg),
        }
    }
    out
}

/// Builds an endpoint's HTTP request. Validation runs first; values are percent-encoded; absent optional
/// query values are left out; auth headers are marked sensitive.
pub fn build_request<E: Endpoint>(
    ep: &E,
    base: &BaseUrl,
    auth: Option<BearerAuth<'_>>,
) -> Result<http::Request<Vec<u8>>, Error> {
    ep.validate()?;
    let meta = E::META;
    let mut w = crate::endpoint::ParamWriter::default();
    ep.write_params(&mut w);
    let mut uri = String::with_capacity(base.as_str().len() + meta.path.len() + w.query.len() + 16);
    uri.push_str(base.as_str());
    uri.push_str(&substitute(meta.path, &w.path));
    if !w.query.is_empty() {
        uri.push('?');
        uri.push_str(&w.query);
    }
    let mut builder = http::Request::builder().method(meta.method.as_http()).uri(uri);
    builder = builder.header(ACCEPT, HeaderValue::from_static("application/json"));
    if meta.auth {
        let auth = auth.ok_or(Error::MissingCredentials { endpoint: meta.name })?;
        builder = builder.header(APP_KEY, sensitive(auth.app_id.as_str())?);
        let mut bearer = String::with_capacity(7 + auth.token.expose_secret().len());
        bearer.push_str("Bearer ");
        bearer.push_str(auth.token.expose_secret());
        builder = builder.header(AUTHORIZATION, sensitive(&bearer)?);
    }
    let body = match meta.body {
        BodyKind::None => Vec::new(),
        BodyKind::Json => {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            serde_json::to_vec(ep.body()).map_err(|e| invalid_body(&e.to_string()))?
        }
        BodyKind::Form => {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
            serde_urlencoded::to_string(ep.body()).map_err(|e| invalid_body(&e.to_string()))?.into_bytes()
        }
    };
    builder.body(body).map_err(|e| invalid_body(&e.to_string()))
}

fn invalid_body(message: &str) -> Error {
    Error::Invalid(crate::ValidationError { field: "body".into(), rule: message.to_owned(), code: None })
}

/// Reads an endpoint's HTTP answer into its typed answer, or a typed error.
///
/// A non-2xx status is always an error; its body becomes the platform's code and description, or an excerpt
/// when it is not a platform error (an HTML page from a proxy). A short 2xx body holding an `error_code` is an
/// error too. Decode failures carry the JSON path of the failure.
pub fn parse_response<E: Endpoint, B: AsRef<[u8]>>(response: &http::Response<B>) -> Result<E::Response, Error> {
    let status = response.status();
    let body = response.body().as_ref();
    if !status.is_success() {
        return Err(Error::Api(ApiError::from_body(status, body)));
    }
    // Parse a short body a second time only if it can hold an error object at all. (A key spelled with JSON
    // escapes would slip past this; the platform never writes one.)
    if body.len() <= ERROR_PROBE_LIMIT && body.windows(ERROR_KEY.len()).any(|w| w == ERROR_KEY) {
        if let Some((code, description)) = crate::error::probe_error_body(body) {
            return Err(Error::Api(ApiError { status, code, description, body_excerpt: None }));
        }
    }
    match E::META.response {
        ResponseKind::Empty => decode_json::<E::Response>(status, b"null"),
        ResponseKind::Json => decode_json::<E::Response>(status, body).map_err(|mut e| {
            if E::META.secret_response {
                if let Error::Decode(d) = &mut e {
                    // The answer holds tokens: never quote it, not even in an error.
                    d.body_excerpt = "[redacted: the answer carries tokens]".to_owned();
                    // serde quotes offending values (a token sent as a number, say): keep only the path.
                    d.message = "[redacted: the answer carries tokens]".to_owned();
                }
            }
            e
        }),
    }
}

/// Decodes JSON in one fast pass; only on failure is it decoded again to find the path of the failure.
pub fn decode_json<T: serde::de::DeserializeOwned>(status: http::StatusCode, body: &[u8]) -> Result<T, Error> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(first) => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => (e.path().to_string(), e.inner().to_string()),
                Ok(_) => (".".to_owned(), first.to_string()),
            };
            Err(Error::Decode(DecodeError { status, path, message, body_excerpt: excerpt(body) }))
        }
    }
}
