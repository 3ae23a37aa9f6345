//! Wire helpers written once for every endpoint: base URLs and percent-encoding.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded, in path segments and query values alike, so
/// that `/`, `?`, `#`, `&`, `=`, `+`, `%` and spaces in a value can never change the request's shape.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one path segment or query component.
pub fn encode_component(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, STRICT).into()
}

/// Decodes one percent-encoded component; `+` stays `+` in paths, and means a space in queries.
pub fn decode_component(s: &str, plus_is_space: bool) -> Result<String, std::str::Utf8Error> {
    if plus_is_space && s.contains('+') {
        let replaced = s.replace('+', " ");
        return percent_decode_str(&replaced).decode_utf8().map(Cow::into_owned);
    }
    percent_decode_str(s).decode_utf8().map(Cow::into_owned)
}

/// A checked base URL: `http` or `https`, a host, an optional port and path prefix, no query or fragment.
///
/// ```
/// use iot_proto::BaseUrl;
/// let base = BaseUrl::parse("https://iot.example.com:8743/").unwrap();
/// assert_eq!(base.as_str(), "https://iot.example.com:8743");
/// assert!(BaseUrl::parse("ftp://example.com").is_err());
/// ```
#[derive(Clone)]
pub struct BaseUrl {
    text: String,
    /// The scheme and authority of `text`, parsed once: every request's URI is put together from them and its
    /// own path and query, instead of writing the whole URI as text for `http` to parse again.
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Where the path prefix starts in `text`.
    path_at: usize,
}

// A base URL is its text; the parsed parts only repeat it.
impl PartialEq for BaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for BaseUrl {}

impl std::hash::Hash for BaseUrl {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// Why a base URL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid base url: {0}")]
pub struct BaseUrlError(&'static str);

impl BaseUrl {
    /// Checks and normalizes a base URL (a trailing `/` is dropped).
    pub fn parse(s: &str) -> Result<Self, BaseUrlError> {
        let uri: http::Uri = s.parse().map_err(|_| BaseUrlError("not a URL"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(BaseUrlError("scheme must be http or https")),
        }
        let authority = uri.authority().ok_or(BaseUrlError("no host"))?;
        if authority.as_str().contains('@') {
            return Err(BaseUrlError("credentials in the URL are not allowed"));
        }
        if authority.host().is_empty() {
            return Err(BaseUrlError("no host"));
        }
        if uri.query().is_some() || s.contains('#') {
            return Err(BaseUrlError("no query or fragment allowed"));
        }
        let path = uri.path().trim_end_matches('/');
        let scheme = uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTPS);
        let authority = authority.clone();
        let text = format!("{scheme}://{authority}");
        let path_at = text.len();
        Ok(Self { text: text + path, scheme, authority, path_at })
    }

    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme, the authority and the path prefix (empty, or starting with `/` and without a trailing one).
    pub(crate) fn parts(&self) -> (&http::uri::Scheme, &http::uri::Authority, &str) {
        (&self.scheme, &self.authority, self.text.get(self.path_at..).unwrap_or_default())
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({:?})", self.text)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = BaseUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_strictly_encoded() {
        assert_eq!(encode_component("a b/c?d#e&f=g+h%i"), "a%20b%2Fc%3Fd%23e%26f%3Dg%2Bh%25i");
        assert_eq!(encode_component("日本"), "%E6%97%A5%E6%9C%AC");
        assert_eq!(encode_component("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(decode_component("a+b%20c", true).unwrap(), "a b c");
        assert_eq!(decode_component("a+b", false).unwrap(), "a+b");
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(BaseUrl::parse("http://127.0.0.1:8080").unwrap().as_str(), "http://127.0.0.1:8080");
        assert_eq!(BaseUrl::parse("https://h/prefix/").unwrap().as_str(), "https://h/prefix");
        for bad in ["", "h:80", "ftp://h", "https://h?x=1", "https://u:p@h", "https://h/#f", "/relative"] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_repeat_the_text() {
        for (url, scheme, authority, path) in [
            ("http://127.0.0.1:8080", "http", "127.0.0.1:8080", ""),
            ("https://H.example/prefix/", "https", "H.example", "/prefix"),
            ("https://h:8743/a/b", "https", "h:8743", "/a/b"),
            ("HTTPS://h", "https", "h", ""),
        ] {
            let base = BaseUrl::parse(url).unwrap();
            let (s, a, p) = base.parts();
            assert_eq!((s.as_str(), a.as_str(), p), (scheme, authority, path), "{url}");
            assert_eq!(base.as_str(), format!("{s}://{a}{p}"), "{url}");
        }
    }
}
