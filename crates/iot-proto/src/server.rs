//! Server side: `http::Request` to the typed request (or the platform's rejection), typed answer to
//! `http::Response`, and a router from method and path to the endpoint.

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use iot_model::AccessToken;

use crate::endpoint::{BodyKind, Endpoint, ResponseKind};
use crate::error::ApiError;
use crate::generated::{EndpointId, ErrorCode};
use crate::glue::ParamReader;
use crate::wire::decode_component;

/// Where a request was routed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteMatch {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Decoded path placeholder values.
    pub path_params: Vec<(&'static str, String)>,
}

/// Why a request matched no endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// No endpoint has this path.
    #[error("no such path")]
    NotFound,
    /// The path exists, but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
}

/// Maps method and path to an endpoint. Literal segments win over placeholders, so
/// `POST /operations/softwareUpgrade` is never read as an operation id.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<(http::Method, Vec<&'static str>, EndpointId)>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router over every endpoint of the spec.
    pub fn new() -> Self {
        let mut routes: Vec<_> = EndpointId::ALL
            .iter()
            .map(|id| {
                let m = id.meta();
                (m.method.clone(), m.path.split('/').skip(1).collect::<Vec<_>>(), *id)
            })
            .collect();
        // More literal segments first.
        routes.sort_by_key(|(_, segs, _)| std::cmp::Reverse(segs.iter().filter(|s| !s.starts_with('{')).count()));
        Self { routes }
    }

    /// Finds the endpoint for a method and a raw (still percent-encoded) path. One trailing slash is
    /// accepted (`/tasks/` is `/tasks`) because real clients send it; an empty segment anywhere else matches
    /// nothing.
    pub fn route(&self, method: &http::Method, path: &str) -> Result<RouteMatch, RouteError> {
        let segs = path_segments(path);
        let mut path_matched = false;
        for (m, template, id) in &self.routes {
            if let Some(params) = match_path(template, &segs) {
                if m == method {
                    return Ok(RouteMatch { endpoint: *id, path_params: params });
                }
                path_matched = true;
            }
        }
        Err(if path_matched { RouteError::MethodNotAllowed } else { RouteError::NotFound })
    }
}

/// The segments of a raw path after its leading `/`, with one trailing `/` dropped: real clients send
/// `POST .../tasks/`. Only one is dropped, so `.../tasks//` keeps an empty segment and matches nothing.
fn path_segments(path: &str) -> Vec<&str> {
    let path = match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    };
    path.split('/').skip(1).collect()
}

fn match_path(template: &[&'static str], segs: &[&str]) -> Option<Vec<(&'static str, String)>> {
    if template.len() != segs.len() {
        return None;
    }
    let mut params = Vec::new();
    for (t, s) in template.iter().zip(segs) {
        match t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            // An empty segment (`/operations//subOperations`) is no id: the path matches nothing.
            Some(_) if s.is_empty() => return None,
            Some(name) => params.push((name, decode_component(s, false).ok()?)),
            None if t == s => {}
            None => return None,
        }
    }
    Some(params)
}

/// Splits and decodes a raw query string into pairs.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let Some(q) = query else { return Ok(Vec::new()) };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode_component(k, true).map_err(|_| format!("query key {k:?} is not UTF-8"))?;
            let v = decode_component(v, true).map_err(|_| format!("query value of {k} is not UTF-8"))?;
            Ok((k, v))
        })
        .collect()
}

/// The rejection the platform answers for a malformed request to `E`.
pub fn rejection<E: Endpoint>(description: impl Into<String>) -> ApiError {
    ApiError::new(E::META.rejection.clone(), description)
}

/// Reads an endpoint's request, checking everything the platform checks without state: path, query, body
/// encoding and the contract's rules. Authentication is left to the caller ([`bearer_auth`]).
pub fn parse_request<E: Endpoint, B: AsRef<[u8]>>(req: &http::Request<B>) -> Result<E, ApiError> {
    let meta = E::META;
    let template: Vec<&'static str> = meta.path.split('/').skip(1).collect();
    let segs = path_segments(req.uri().path());
    let path = match_path(&template, &segs).ok_or_else(|| rejection::<E>("path does not match the endpoint"))?;
    let query = query_pairs(req.uri().query()).map_err(rejection::<E>)?;
    let raw = req.body().as_ref();
    let body: E::Body = match meta.body {
        BodyKind::None => serde_json::from_slice(b"null").map_err(|e| rejection::<E>(e.to_string()))?,
        BodyKind::Json => {
            let mut de = serde_json::Deserializer::from_slice(raw);
            let body = serde_path_to_error::deserialize(&mut de)
                .map_err(|e| rejection::<E>(format!("body at `{}`: {}", e.path(), e.inner())))?;
            // One JSON value and nothing after it but whitespace: a body with trailing bytes is not the
            // document the client meant, and acting on its first part would create what nobody asked for.
            de.end().map_err(|e| rejection::<E>(format!("body has bytes after its JSON value: {e}")))?;
            body
        }
        BodyKind::Form => serde_urlencoded::from_bytes(raw).map_err(|e| rejection::<E>(format!("form body: {e}")))?,
    };
    let mut reader = ParamReader { path: &path, query: &query };
    let ep = E::read_params(&mut reader, body).map_err(|e| {
        // A parameter with a limit code answers it even when unreadable: `pageNo=-1` or `pageSize=x` get the
        // paging family's page-limit code, not the endpoint's generic rejection.
        let param = meta.params.iter().find(|p| p.name == e.name);
        let code = param.and_then(|p| p.code.clone()).unwrap_or_else(|| meta.rejection.clone());
        ApiError::new(code, e.to_string())
    })?;
    ep.validate().map_err(|e| {
        let code = e.code.clone().unwrap_or_else(|| meta.rejection.clone());
        ApiError::new(code, e.to_string())
    })?;
    Ok(ep)
}

/// The `app_key` and bearer token of a request, if both are present and well-formed.
pub fn bearer_auth<B>(req: &http::Request<B>) -> Option<(String, AccessToken)> {
    let app = req.headers().get(crate::client::APP_KEY)?.to_str().ok()?.to_owned();
    let auth = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?;
    if token.is_empty() {
        return None;
    }
    Some((app, AccessToken::new(token)))
}

/// Builds the HTTP answer for a successful call.
pub fn encode_response<E: Endpoint>(response: &E::Response) -> http::Response<Vec<u8>> {
    match E::META.response {
        ResponseKind::Empty => http::Response::new(Vec::new()),
        ResponseKind::Json => match serde_json::to_vec(response) {
            Ok(body) => json_response(http::StatusCode::OK, body),
            Err(e) => error_response(&ApiError::new(ErrorCode::InternalError, e.to_string())),
        },
    }
}

/// What a handler answers: a typed answer, which the server serialises, or the JSON body of one that the handler
/// already holds written (a server that keeps a frequent answer ready, as the simulator does its task list, need
/// not build and serialise it per call). Either way the call's answer is a 200 with that body.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Answer<T> {
    /// The typed answer, serialised by [`respond`].
    Typed(T),
    /// The JSON body of a `T`, already written; sent as it is.
    Json(Vec<u8>),
}

impl<T> From<T> for Answer<T> {
    fn from(answer: T) -> Self {
        Answer::Typed(answer)
    }
}

/// The answer to a call: the handler's answer, or the platform's error answer.
pub fn respond<E: Endpoint>(result: Result<Answer<E::Response>, ApiError>) -> http::Response<Vec<u8>> {
    match result {
        Ok(Answer::Typed(answer)) => encode_response::<E>(&answer),
        Ok(Answer::Json(body)) => json_response(http::StatusCode::OK, body),
        Err(e) => error_response(&e),
    }
}

/// Builds the platform's error answer: the error's status and `{"error_code", "error_desc"}`.
pub fn error_response(err: &ApiError) -> http::Response<Vec<u8>> {
    let body = iot_model::ErrorBody::new()
        .with_error_code(err.code.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default())
        .with_error_desc(err.description.clone().unwrap_or_default());
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    json_response(err.status, bytes)
}

fn json_response(status: http::StatusCode, body: Vec<u8>) -> http::Response<Vec<u8>> {
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
