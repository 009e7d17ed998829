//! Writing responses.

use std::borrow::Cow;

/// A response ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    /// Further header fields. Names and values must be valid for HTTP
    /// (no CR, LF or NUL): check values that come from actions.
    pub headers: Vec<(Cow<'static, str>, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self { status, content_type: Cow::Borrowed("application/json"), headers: Vec::new(), body }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: Cow::Borrowed("text/plain; charset=utf-8"),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The standard error body `{"error": {"kind", "message"}}`.
    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        let body = serde_json::json!({"error": {"kind": kind, "message": message}});
        Self::json(status, body.to_string().into_bytes())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((Cow::Borrowed(name), value.into()));
        self
    }

    /// An empty response (for 204).
    pub fn empty(status: u16) -> Self {
        Self::text(status, Vec::new())
    }

    /// Appends the response to `out`: with `Connection: close` unless
    /// `keep_alive`, and framed as HTTP requires whatever the response
    /// says (see [`write_parts`]).
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        write_response(out, self.status, &self.content_type, &self.body, &self.headers, keep_alive, head_only);
    }
}

/// Appends a response with no header fields beyond the usual ones and
/// `body` borrowed: as [`Response::write_to`] of a response with that
/// status, content type and body, without making one.
///
/// Every response SL sends is written here (or by [`Response::write_to`]),
/// and whatever the caller gives, what is written is framed as RFC 9110
/// and 9112 require, so that no client or proxy can read a body as the
/// next response:
/// - `head_only` (the answer to HEAD): no body; `Content-Length` is the
///   length the body would have had;
/// - 204 and 304: no body, and neither `Content-Length` nor `Content-Type`
///   (RFC 9110, 8.6 forbids `Content-Length` on a 204; on a 304 it would
///   have to be the length of the 200 the client may have cached, which is
///   not known here; clients read neither response's body, RFC 9112, 6.3);
/// - any status outside 200..=599 (a 1xx is an interim response, which a
///   client reads past to take what follows as the final one): not the
///   response but a 500 `internal` error. The only interim response SL
///   sends is [`write_continue`].
pub fn write_parts(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8], keep_alive: bool, head_only: bool) {
    write_response(out, status, content_type, body, &[], keep_alive, head_only);
}

/// Appends the interim `100 Continue` (to a request that expects it).
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// The body of the 500 written in place of a response with a status that
/// is not a final one.
const INVALID_STATUS: &[u8] = br#"{"error":{"kind":"internal","message":"the response had an invalid status"}}"#;

/// Writes a response (see [`write_parts`] for the rules).
fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    headers: &[(Cow<'static, str>, String)],
    keep_alive: bool,
    head_only: bool,
) {
    // Written piece by piece rather than with `write!`: this runs once
    // a request, and the formatting machinery costs more than the rest.
    if status == 200 {
        // The usual case first, with one comparison.
        out.extend_from_slice(b"HTTP/1.1 200 OK");
    } else if !(200..=599).contains(&status) {
        return write_invalid_status(out, keep_alive, head_only);
    } else {
        write_status_line(out, status);
        if status == 204 || status == 304 {
            // No content: no body, nor the fields that describe one.
            write_fields(out, headers, keep_alive);
            return;
        }
    }
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body.len() as u64);
    write_fields(out, headers, keep_alive);
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Writes the 500 that replaces a response whose status is not a final one.
#[cold]
#[inline(never)]
fn write_invalid_status(out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
    write_response(out, 500, "application/json", INVALID_STATUS, &[], keep_alive, head_only);
}

/// Appends `HTTP/1.1 {status} {reason}` (without the line's end).
fn write_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
}

/// Ends the line before, appends `headers` and `Connection: close` unless
/// `keep_alive`, and the empty line that ends the head.
fn write_fields(out: &mut Vec<u8>, headers: &[(Cow<'static, str>, String)], keep_alive: bool) {
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_status_headers_and_body() {
        let mut out = Vec::new();
        Response::text(200, "OK").with_header("X-A", "b").write_to(&mut out, false, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nX-A: b\r\nConnection: close\r\n\r\nOK"
        );
    }

    #[test]
    fn lengths_and_statuses_are_written_in_decimal() {
        for (len, status) in [(0usize, 201u16), (7, 418), (1234567, 200)] {
            let mut out = Vec::new();
            let r = Response { status, body: vec![b'x'; len], ..Response::text(200, "") };
            r.write_to(&mut out, true, true);
            let head = String::from_utf8(out).unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains(&format!("\r\nContent-Length: {len}\r\n")), "{head}");
        }
    }

    #[test]
    fn parts_are_written_as_the_response_would_be() {
        for (status, body, keep, head_only) in [
            (200, &b"\"Hello x\""[..], true, false),
            (200, b"", false, false),
            (400, b"{}", true, true),
            (599, b"x", false, true),
        ] {
            let mut want = b"before".to_vec();
            Response::json(status, body.to_vec()).write_to(&mut want, keep, head_only);
            let mut out = b"before".to_vec();
            write_parts(&mut out, status, "application/json", body, keep, head_only);
            assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(want).unwrap());
        }
    }

    /// What `Response::write_to` and `write_parts` (which must agree) write.
    fn both_ways(r: &Response, keep_alive: bool, head_only: bool) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out, keep_alive, head_only);
        if r.headers.is_empty() {
            let mut parts = Vec::new();
            write_parts(&mut parts, r.status, &r.content_type, &r.body, keep_alive, head_only);
            assert_eq!(String::from_utf8_lossy(&parts), String::from_utf8_lossy(&out), "{r:?}");
        }
        String::from_utf8(out).unwrap()
    }

    /// A body that is a whole second response, as a hostile action writes it.
    const FORGED: &str = "HTTP/1.1 200 OK\r\nSet-Cookie: session=attacker\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn no_content_and_not_modified_are_written_without_body_or_content_length() {
        for (status, line) in [(204u16, "HTTP/1.1 204 No Content"), (304, "HTTP/1.1 304 Not Modified")] {
            for keep_alive in [true, false] {
                for head_only in [false, true] {
                    let close = if keep_alive { "" } else { "Connection: close\r\n" };
                    let plain = Response::text(status, FORGED);
                    assert_eq!(both_ways(&plain, keep_alive, head_only), format!("{line}\r\n{close}\r\n"));
                    // The action's own headers stay; its body, length and type do not.
                    let r = Response { content_type: "image/png".into(), ..plain }.with_header("ETag", "\"x\"");
                    assert_eq!(both_ways(&r, keep_alive, head_only), format!("{line}\r\nETag: \"x\"\r\n{close}\r\n"));
                }
            }
        }
    }

    #[test]
    fn informational_and_impossible_statuses_are_never_written_as_a_final_response() {
        let want = |keep_alive: bool, head_only: bool| {
            let mut out = Vec::new();
            Response::error(500, "internal", "the response had an invalid status")
                .write_to(&mut out, keep_alive, head_only);
            String::from_utf8(out).unwrap()
        };
        for status in [100u16, 101, 102, 103, 199, 0, 1, 99, 600, 999, 1000, u16::MAX] {
            for (keep_alive, head_only) in [(true, false), (false, false), (true, true)] {
                let r = Response::text(status, FORGED).with_header("Set-Cookie", "session=attacker");
                let got = both_ways(&r, keep_alive, head_only);
                assert_eq!(got, want(keep_alive, head_only), "status {status}");
                assert!(!got.contains("attacker") && !got.contains("HTTP/1.1 1"), "status {status}: {got}");
            }
        }
    }

    #[test]
    fn head_responses_have_every_header_and_no_body_whatever_the_status() {
        for status in [200u16, 201, 202, 400, 404, 405, 413, 418, 500, 503] {
            let r = Response::text(status, FORGED).with_header("X-A", "b");
            let full = both_ways(&r, true, false);
            let head = both_ways(&r, true, true);
            assert_eq!(full, format!("{head}{FORGED}"), "status {status}");
            assert!(head.ends_with("\r\n\r\n") && head.matches("\r\n\r\n").count() == 1, "{head}");
            assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", FORGED.len())), "{head}");
        }
    }

    #[test]
    fn the_interim_continue_is_the_only_1xx_written() {
        let mut out = b"before".to_vec();
        write_continue(&mut out);
        assert_eq!(out, b"beforeHTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn error_body_shape() {
        let r = Response::error(404, "not_found", "no action 'x'");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["kind"], "not_found");
    }
}
