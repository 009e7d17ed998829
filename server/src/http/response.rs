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

    /// Appends the response to `out`. `head_only` leaves the body out (HEAD).
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        write_head(out, self.status, &self.content_type, self.body.len(), &self.headers, keep_alive);
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// Appends a response with no header fields beyond the usual ones and
/// `body` borrowed: as [`Response::write_to`] of a response with that
/// status, content type and body, without making one.
pub fn write_parts(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8], keep_alive: bool, head_only: bool) {
    write_head(out, status, content_type, body.len(), &[], keep_alive);
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Appends a status line and header fields, through the empty line.
fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body_len: usize,
    headers: &[(Cow<'static, str>, String)],
    keep_alive: bool,
) {
    // Written piece by piece rather than with `write!`: this runs once
    // a request, and the formatting machinery costs more than the rest.
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(status));
        out.push(b' ');
        out.extend_from_slice(reason(status).as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body_len as u64);
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
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
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
        for (len, status) in [(0usize, 204u16), (7, 418), (1234567, 200)] {
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

    #[test]
    fn error_body_shape() {
        let r = Response::error(404, "not_found", "no action 'x'");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["kind"], "not_found");
    }
}
