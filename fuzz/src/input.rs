//! The byte formats the targets read: a status line and a body for answers, an HTTP/1-like text for requests.
//!
//! The formats are plain text on purpose: seeds stay readable, libFuzzer's mutations of a digit or a path
//! segment stay meaningful, and a crash input can be read in an editor.

/// An answer: the first line is the status code, the rest is the body (`200\n{"pageNo":0}`).
///
/// Returns `None` for a status `http` cannot carry (outside 100..=999) or an input without a status line,
/// because no transport can hand such an answer to a decoder.
pub fn response(data: &[u8]) -> Option<http::Response<&[u8]>> {
    let (line, body) = split_line(data);
    let status = std::str::from_utf8(line).ok()?.trim().parse::<u16>().ok()?;
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(status).ok()?;
    Some(response)
}

/// A request: `METHOD URI`, then `Name: value` header lines, an empty line, and the body.
///
/// A header line that `http` refuses is skipped rather than ending the input, so mutations of one header do
/// not hide the rest of the request. Returns `None` when the method or the URI cannot exist in `http`.
pub fn request(data: &[u8]) -> Option<http::Request<Vec<u8>>> {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let (line, headers) = split_line(head);
    let line = std::str::from_utf8(line).ok()?;
    let (method, uri) = line.split_once(' ').unwrap_or((line, "/"));
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(method.as_bytes()).ok()?)
        .uri(http::Uri::try_from(uri.trim_end_matches('\r')).ok()?);
    for header in headers.split(|b| *b == b'\n') {
        let Some(colon) = header.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&header[..colon], trim(&header[colon + 1..]));
        let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    builder.body(body.to_vec()).ok()
}

/// Writes a request in the format [`request`] reads (used to derive seeds from requests the client builds).
pub fn write_request<B: AsRef<[u8]>>(req: &http::Request<B>) -> Vec<u8> {
    let mut out = format!("{} {}\n", req.method(), req.uri()).into_bytes();
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(req.body().as_ref());
    out
}

/// Writes an answer in the format [`response`] reads.
pub fn write_response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{status}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// The first line (without its `\n`) and the rest.
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_its_text_form() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/a/b?c=d")
            .header("app_key", "k")
            .body(b"{\"x\":1}\n\nrest".to_vec())
            .unwrap_or_default();
        let back = request(&write_request(&req)).unwrap_or_default();
        assert_eq!(back.method(), req.method());
        assert_eq!(back.uri(), req.uri());
        assert_eq!(back.headers(), req.headers());
        assert_eq!(back.body(), req.body());
    }

    #[test]
    fn an_answer_survives_its_text_form() {
        let resp = response(&write_response(404, b"{}")).map(|r| (r.status().as_u16(), r.body().to_vec()));
        assert_eq!(resp, Some((404, b"{}".to_vec())));
        assert!(response(b"42\n{}").is_none(), "no status below 100 exists");
    }
}
