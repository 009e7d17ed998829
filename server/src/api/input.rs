//! What the API reads from a request: paths, names, query parameters and
//! bodies, each refused with a clear 400 when it is not what it must be.

use base64::Engine;
use serde::Deserialize;

use crate::http::Response;
use crate::ids::valid_name;
use crate::sandbox::ArgsText;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A 400 with `message`.
pub(super) fn bad_request(message: impl AsRef<str>) -> Response {
    Response::error(400, "bad_request", message.as_ref())
}

/// A 405 naming the methods allowed.
pub(super) fn not_allowed(allow: &str) -> Response {
    Response::error(405, "method_not_allowed", &format!("method not allowed; use {allow}"))
        .with_header("Allow", allow.to_string())
}

/// `name` if it is a valid action name, else a 400 that says what one is.
pub(super) fn check_name(name: &str) -> Result<(), Response> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "invalid action name '{}': use 1 to 128 letters, digits, '-', '_' or '.' (but not '.' or '..')",
            name.chars().take(140).collect::<String>()
        )))
    }
}

/// The segments of an API path (`/actions/hello/block` gives `actions`,
/// `hello`, `block`; trailing slashes ignored, empty segments kept), at
/// most four: every API path has at most three, so longer ones match no
/// endpoint whatever follows. No allocation, one pass over the bytes.
pub(super) fn segments(path: &str) -> ([&str; 4], usize) {
    let path = path.trim_end_matches('/');
    let mut buf = [""; 4];
    let mut n = 0;
    // Split after the leading '/' (the parser checked that there is one).
    let Some(rest) = path.strip_prefix('/') else { return (buf, 0) };
    let bytes = rest.as_bytes();
    let mut start = 0;
    while n < buf.len() {
        let end = bytes[start..].iter().position(|&b| b == b'/').map_or(bytes.len(), |i| start + i);
        buf[n] = &rest[start..end];
        n += 1;
        if end == bytes.len() {
            break;
        }
        start = end + 1;
    }
    (buf, n)
}

/// Whether a body holds no arguments (`{}` is meant).
pub(super) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Arguments of an invocation, parsed for its run: the body as a JSON
/// object that Lua can take (empty = `{}`).
pub(super) fn parse_args(body: Vec<u8>) -> Result<ArgsText, Response> {
    let body = if is_blank(&body) { b"{}".to_vec() } else { body };
    ArgsText::parse(body).map_err(bad_request)
}

/// A JSON request body as `T`.
pub(super) fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    if body.is_empty() {
        return Err(bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid request body: {e}")))
}

/// The value of query parameter `key`, decoded.
pub(super) fn query_param<'a>(query: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v)
}

/// An action's code as sent: base64 of the source's bytes, any bytes (Lua
/// string literals and comments need not be UTF-8).
pub(super) fn decode_code(code: &str) -> Result<Vec<u8>, Response> {
    B64.decode(code.trim()).map_err(|e| bad_request(format!("code is not valid base64: {e}")))
}

/// An action's source as the API shows it (base64 of its exact bytes).
pub(super) fn encode_code(source: &[u8]) -> String {
    B64.encode(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments() {
        // What splitting on '/' after the leading one gives, first four.
        fn by_split(path: &str) -> Vec<&str> {
            path.trim_end_matches('/').split('/').skip(1).take(4).collect()
        }
        for path in [
            "/",
            "//",
            "/ping",
            "/ping/",
            "/actions/hello/block",
            "/actions/hello/block//",
            "/actions//block",
            "/a/b/c/d/e/f",
            "/a/b/c/d",
            "/a/b/c/d/",
            "///x",
            "/ü/é",
            "/actions/hello%2Fx",
        ] {
            let (buf, n) = segments(path);
            assert_eq!(buf[..n].to_vec(), by_split(path), "{path}");
        }
    }

    #[test]
    fn args_must_be_an_object() {
        assert_eq!(parse_args(b"".to_vec()).unwrap().text(), b"{}");
        assert_eq!(parse_args(b" \n".to_vec()).unwrap().text(), b"{}");
        assert_eq!(parse_args(br#" {"a":1}"#.to_vec()).unwrap().text(), br#" {"a":1}"#);
        for bad in [&b"[1]"[..], b"{bad", b"{\"a\":\"\xff\"}", b"\xff"] {
            let err = parse_args(bad.to_vec()).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(
                String::from_utf8_lossy(&err.body).contains("JSON")
                    || String::from_utf8_lossy(&err.body).contains("object")
            );
        }
    }

    #[test]
    fn code_round_trips_and_bad_code_is_a_400() {
        assert_eq!(decode_code(&encode_code(b"return 1")).unwrap(), b"return 1");
        assert_eq!(decode_code("%%%").unwrap_err().status, 400);
        // Any bytes are a source; whether they are Lua is for the compiler.
        let latin1 = b"return 'caf\xe9\xff\xfe'";
        assert_eq!(encode_code(latin1), B64.encode(latin1));
        assert_eq!(decode_code(&encode_code(latin1)).unwrap(), latin1);
    }
}
