//! Parsing requests from a connection's read buffer.

use std::mem::MaybeUninit;

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest request head (request line and headers), in bytes. Larger: 431.
    pub max_head: usize,
    /// Largest body, in bytes. Larger: 413.
    pub max_body: usize,
    /// Most header fields. More: 431.
    pub max_headers: usize,
    /// Keep every header field in [`Request::headers`] (the routes
    /// listener does, for `args.http`; the API needs none of them).
    pub keep_headers: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_head: 16 * 1024, max_body: 1024 * 1024, max_headers: 64, keep_headers: false }
    }
}

/// Request methods the API uses; anything else is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Other(String),
}

impl Method {
    pub(super) fn parse(s: &str) -> Self {
        match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            other => Self::Other(other.to_string()),
        }
    }

    /// The method as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(s) => s,
        }
    }
}

/// A complete request.
///
/// Its target was in one of the three forms a server receives (RFC 9112,
/// 3.2): origin-form (`/path?query`, what clients send to a server);
/// absolute-form (`http://host:port/path?query`, what they send to a
/// proxy, which a server must accept too): its path and query are read
/// from the URI (an empty path is `/`) and its authority replaces `Host`;
/// or asterisk-form (`*`, only for `OPTIONS`, a question about the whole
/// server): the path is `*`, as it is for `OPTIONS http://host` with an
/// empty path and no query (RFC 9112, 3.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path without the query string, as sent (not percent-decoded):
    /// it starts with `/`, or is `*` (asterisk-form, only for `OPTIONS`).
    pub path: String,
    /// The query string without `?` (empty if none).
    pub query: String,
    /// The authority (`host` or `host:port`) of an absolute-form target
    /// (`GET http://host/path`), which replaces the `Host` header: RFC
    /// 9112, 3.2.2. `None` for the other forms.
    pub authority: Option<String>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The `Authorization` header, if any.
    pub authorization: Option<Vec<u8>>,
    /// The `Idempotency-Key` header, if any (kept whatever
    /// [`ParseLimits::keep_headers`] says: an asynchronous submit reads it).
    pub idempotency_key: Option<Vec<u8>>,
    /// Every header field as sent, names in lower case, values as text
    /// (invalid UTF-8 replaced); only with [`ParseLimits::keep_headers`].
    /// For an absolute-form target, the `Host` fields sent are replaced by
    /// one with the target's authority, as a proxy would forward it.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header field named `name` (lower case), if kept.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The host the request is for: an absolute-form target's authority,
    /// else the `Host` header (if kept); "" if neither.
    pub fn host(&self) -> &str {
        self.authority.as_deref().or_else(|| self.header("host")).unwrap_or("")
    }
}

/// What the buffer holds so far.
#[derive(Debug)]
pub enum Parsed {
    /// Not a complete request yet. `expect_continue` is true once a complete
    /// head asked for `100 Continue` and its body has not fully arrived;
    /// `need` is, once the head is complete, how many bytes the whole
    /// request takes (head and body).
    Partial { expect_continue: bool, need: Option<usize> },
    /// A request, and how many bytes of the buffer it used.
    Complete(Request, usize),
}

/// A request that cannot be served; the connection is closed after the
/// error response, because the framing of what follows is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    pub status: u16,
    pub message: String,
}

fn err(status: u16, message: impl Into<String>) -> HttpError {
    HttpError { status, message: message.into() }
}

/// Whether the request head at the start of `buf` (all of `buf` while the
/// head has not ended) ends a line with a bare LF, a line feed without the
/// carriage return before it.
///
/// RFC 9112 lets a server accept bare LF as a line end, and httparse does;
/// SL refuses it instead, because a proxy in front that reads such a line
/// differently (as part of the previous header's value, say) would see
/// other headers, and so another request boundary, than SL. Every HTTP
/// client sends CRLF. The scan stops at the first empty line (`\r\n\r\n`)
/// after the empty lines a client may send before the request line, so it
/// never looks at the body.
fn has_bare_lf(buf: &[u8]) -> bool {
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    for i in memchr::memchr_iter(b'\n', &buf[start..]).map(|i| i + start) {
        if i == 0 || buf[i - 1] != b'\r' {
            return true;
        }
        if i >= start + 3 && &buf[i - 3..i] == b"\r\n\r" {
            return false;
        }
    }
    false
}

/// Whether the request at the start of `buf`, however much of it has
/// arrived, is a HEAD request: its request line (after the empty lines a
/// client may send first) starts with `HEAD `. So that an answer the
/// reactor gives to a request it refuses (413, 408...) has no body when
/// the client asked for HEAD, even though it is no complete request.
pub fn is_head(buf: &[u8]) -> bool {
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    buf[start..].starts_with(b"HEAD ")
}

/// The path and the query (without `?`) of an origin-form target, or of
/// the rest of an absolute-form one after its authority.
fn path_and_query(target: &str) -> (&str, &str) {
    match memchr::memchr(b'?', target.as_bytes()) {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, ""),
    }
}

/// The path of a request target in any form the parser accepts (empty if
/// it is in none).
pub(super) fn target_path<'a>(method: &Method, target: &'a str) -> &'a str {
    if target.starts_with('/') {
        path_and_query(target).0
    } else {
        split_other_target(method, target).map_or("", |(path, _, _)| path)
    }
}

/// The path, query and authority of a request target that is not an
/// absolute path (see [`Request`]); out of line, as it is rare.
#[inline(never)]
fn split_other_target<'a>(method: &Method, target: &'a str) -> Result<(&'a str, &'a str, Option<&'a str>), HttpError> {
    if target == "*" {
        if *method != Method::Options {
            return Err(err(400, "the request target * is only for OPTIONS"));
        }
        return Ok(("*", "", None));
    }
    let rest = ["http://", "https://"]
        .iter()
        .find(|scheme| target.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme)))
        .map(|scheme| &target[scheme.len()..])
        .ok_or_else(|| {
            err(
                400,
                "request target must be an absolute path (/...), an http or https URI (http://host/...) or * (OPTIONS)",
            )
        })?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    check_authority(authority)?;
    let (path, query) = match rest.strip_prefix('?') {
        // An empty path is `/`, or the whole server for OPTIONS (RFC 9112, 3.2.4).
        None if rest.is_empty() && *method == Method::Options => ("*", ""),
        None if rest.is_empty() => ("/", ""),
        None => path_and_query(rest),
        Some(query) => ("/", query),
    };
    Ok((path, query, Some(authority)))
}

/// Checks the authority of an absolute-form target, as nginx does: a host
/// name (letters, digits, `-` and `.`) or an IP literal in brackets, then
/// an optional `:port` (digits, maybe none). An empty host must be refused
/// (RFC 9110, 4.2.1), and so is userinfo (`user@`), which a client must not
/// send and a recipient should treat as an error (RFC 9110, 4.2.4): a
/// proxy that reads `http://a@b/` as host `a` would route it elsewhere.
fn check_authority(authority: &str) -> Result<(), HttpError> {
    let bad = |why: &str| Err(err(400, format!("invalid host in the request target: {why}")));
    let b = authority.as_bytes();
    if b.contains(&b'@') {
        return bad("userinfo (user@) is not allowed");
    }
    let host_end = if b.first() == Some(&b'[') {
        match b.iter().position(|&c| c == b']') {
            Some(end) if end > 1 && b[1..end].iter().all(|c| c.is_ascii_hexdigit() || b":.".contains(c)) => end + 1,
            _ => return bad("malformed IP literal"),
        }
    } else {
        b.iter().position(|c| !(c.is_ascii_alphanumeric() || b"-.".contains(c))).unwrap_or(b.len())
    };
    if host_end == 0 {
        return bad("no host");
    }
    match b[host_end..].split_first() {
        None => Ok(()),
        Some((b':', port)) if port.iter().all(u8::is_ascii_digit) => Ok(()),
        Some(_) => bad("a host is letters, digits, '-' and '.', or an IP literal in brackets, then :port"),
    }
}

/// The value of a `Content-Length` field: decimal digits, with optional
/// blanks around them, that fit a `usize`.
fn content_length_value(value: &[u8]) -> Option<usize> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses the first request in `buf`.
pub fn parse(buf: &[u8], limits: &ParseLimits) -> Result<Parsed, HttpError> {
    // First, so that the answer does not depend on how much of the head has
    // arrived (the reactor parses every prefix it reads).
    if has_bare_lf(buf) {
        return Err(err(400, "malformed request: a line of the request head ends with LF alone (send CRLF)"));
    }
    // The usual limit fits on the stack: no allocation per parse, and no
    // writes to the slots before httparse fills them.
    let mut on_stack = [const { MaybeUninit::<httparse::Header>::uninit() }; 64];
    let mut on_heap = Vec::new();
    let headers: &mut [MaybeUninit<httparse::Header>] = if limits.max_headers <= on_stack.len() {
        &mut on_stack[..limits.max_headers]
    } else {
        on_heap.reserve_exact(limits.max_headers);
        &mut on_heap.spare_capacity_mut()[..limits.max_headers]
    };
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return Err(err(431, format!("request head is larger than {} bytes", limits.max_head)));
            }
            return Ok(Parsed::Partial { expect_continue: false, need: None });
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(err(431, format!("more than {} header fields", limits.max_headers)))
        }
        Err(e) => return Err(err(400, format!("malformed request: {e}"))),
    };
    if head_len > limits.max_head {
        return Err(err(431, format!("request head is larger than {} bytes", limits.max_head)));
    }
    let method = Method::parse(req.method.unwrap_or(""));
    let target = req.path.unwrap_or("/");
    let version = req.version.unwrap_or(1);
    let mut content_length: Option<usize> = None;
    let mut connection_close = version == 0;
    let mut expect_continue = false;
    let mut authorization = None;
    let mut idempotency_key = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length_value(h.value).ok_or_else(|| err(400, "invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(err(400, "conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if content_length.is_some() || req.headers.iter().any(|h| h.name.eq_ignore_ascii_case("content-length")) {
                return Err(err(400, "both Content-Length and Transfer-Encoding are present"));
            }
            return Err(err(411, "Transfer-Encoding is not supported for request bodies: send a Content-Length"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                connection_close = true;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                connection_close = false;
            }
        } else if h.name.eq_ignore_ascii_case("authorization") {
            if authorization.is_some() {
                return Err(err(400, "more than one Authorization header"));
            }
            authorization = Some(h.value.to_vec());
        } else if h.name.eq_ignore_ascii_case("idempotency-key") {
            if idempotency_key.is_some() {
                return Err(err(400, "more than one Idempotency-Key header"));
            }
            idempotency_key = Some(h.value.to_vec());
        } else if h.name.eq_ignore_ascii_case("expect") {
            if h.value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(err(417, "only 'Expect: 100-continue' is supported"));
            }
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body {
        return Err(err(413, format!("request body is larger than {} bytes", limits.max_body)));
    }
    if buf.len() < head_len + body_len {
        return Ok(Parsed::Partial { expect_continue, need: Some(head_len + body_len) });
    }
    let (path, query, authority) = if target.starts_with('/') {
        let (path, query) = path_and_query(target);
        (path, query, None)
    } else {
        split_other_target(&method, target)?
    };
    let mut headers = Vec::new();
    if limits.keep_headers {
        headers.reserve_exact(req.headers.len() + usize::from(authority.is_some()));
        headers.extend(
            req.headers
                .iter()
                .filter(|h| authority.is_none() || !h.name.eq_ignore_ascii_case("host"))
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned())),
        );
        if let Some(authority) = authority {
            headers.push(("host".to_string(), authority.to_string()));
        }
    }
    Ok(Parsed::Complete(
        Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            authority: authority.map(str::to_string),
            body: buf[head_len..head_len + body_len].to_vec(),
            keep_alive: !connection_close,
            authorization,
            idempotency_key,
            headers,
        },
        head_len + body_len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Parsed, HttpError> {
        parse(s.as_bytes(), &ParseLimits::default())
    }

    #[test]
    fn content_length_values() {
        for (v, want) in [
            ("12", Some(12)),
            (" 12\t", Some(12)),
            ("0", Some(0)),
            ("007", Some(7)),
            ("18446744073709551615", Some(usize::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999999", None),
            ("", None),
            ("  ", None),
            ("1 2", None),
            ("+1", None),
            ("-1", None),
            ("1e3", None),
            ("\u{663}", None),
        ] {
            assert_eq!(content_length_value(v.as_bytes()), want, "{v:?}");
        }
    }

    fn complete(s: &str) -> (Request, usize) {
        match p(s).unwrap() {
            Parsed::Complete(r, n) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_get_and_post() {
        let (r, n) = complete("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.method, r.path.as_str(), r.keep_alive, n), (Method::Get, "/ping", true, 31));
        let (r, _) = complete("POST /actions/a/block?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}extra");
        assert_eq!((r.path.as_str(), r.query.as_str(), r.body.as_slice()), ("/actions/a/block", "x=1", &b"{}"[..]));
    }

    #[test]
    fn partial_until_body_arrives() {
        assert!(matches!(p("GET /ping HTTP/1.1\r\nHo"), Ok(Parsed::Partial { .. })));
        assert!(matches!(
            p("POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nab"),
            Ok(Parsed::Partial { expect_continue: true, need: Some(65) })
        ));
    }

    #[test]
    fn connection_semantics() {
        assert!(!complete("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").0.keep_alive);
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.keep_alive);
    }

    #[test]
    fn rejects_bad_framing() {
        let status = |s: &str| p(s).unwrap_err().status;
        assert_eq!(status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"), 413);
        assert_eq!(status("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), 400);
        assert_eq!(status("GARBAGE\r\n\r\n"), 400);
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(20_000));
        assert_eq!(status(&big), 431);
    }

    #[test]
    fn bare_lf_in_the_head_is_refused_wherever_it_is() {
        let status = |s: &str| p(s).unwrap_err().status;
        assert_eq!(status("GET /ping HTTP/1.1\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET /ping HTTP/1.1\r\nHost: x\n\r\n"), 400);
        assert_eq!(status("GET /ping HTTP/1.1\r\nHost: x\r\n\n"), 400);
        assert_eq!(status("GET /ping HTTP/1.1\nHost: x\n\n"), 400);
        assert_eq!(status("\nGET /ping HTTP/1.1\r\n\r\n"), 400);
        // Before the head is complete, too.
        assert_eq!(status("POST /ping HTTP/1.1\r\nX: a\nContent-Le"), 400);
        // Empty lines before the request line are skipped, then checked.
        assert_eq!(status("\r\n\r\nGET /ping HTTP/1.1\r\nX: a\n\r\n"), 400);
        assert_eq!(complete("\r\n\r\nGET /ping HTTP/1.1\r\n\r\n").0.path, "/ping");
        // The body is not the head: LF there is data.
        let (r, _) = complete("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb");
        assert_eq!(r.body, b"a\nb");
        // A lone CR is no line end either.
        assert_eq!(status("GET /ping HTTP/1.1\r\nX: a\rContent-Length: 1\r\n\r\n"), 400);
    }

    #[test]
    fn headers_are_kept_only_when_asked() {
        let text = "GET /x HTTP/1.1\r\nHost: Example.com\r\nX-Thing: a b\r\n\r\n";
        let (r, _) = complete(text);
        assert!(r.headers.is_empty());
        let limits = ParseLimits { keep_headers: true, ..Default::default() };
        let Ok(Parsed::Complete(r, _)) = parse(text.as_bytes(), &limits) else { panic!("incomplete") };
        assert_eq!(r.header("host"), Some("Example.com"));
        assert_eq!(r.header("x-thing"), Some("a b"));
        assert_eq!(r.headers.len(), 2);
    }

    #[test]
    fn absolute_form_targets_are_accepted_and_their_authority_replaces_host() {
        let keep = ParseLimits { keep_headers: true, ..Default::default() };
        let parsed = |s: &str| match parse(s.as_bytes(), &keep) {
            Ok(Parsed::Complete(r, n)) => {
                assert_eq!(n, s.len(), "{s:?}");
                r
            }
            other => panic!("{s:?}: {other:?}"),
        };
        for (target, host, path, query) in [
            ("http://example.com/ping", "example.com", "/ping", ""),
            ("HTTP://Example.COM:8081/users/7?x=1&y", "Example.COM:8081", "/users/7", "x=1&y"),
            ("https://a.example/b%2Fc/?q", "a.example", "/b%2Fc/", "q"),
            ("http://example.com", "example.com", "/", ""),
            ("http://example.com?k=v", "example.com", "/", "k=v"),
            ("http://127.0.0.1:80/", "127.0.0.1:80", "/", ""),
            ("http://[::1]:8080/x", "[::1]:8080", "/x", ""),
            ("http://host:/x", "host:", "/x", ""),
        ] {
            // The Host header the client sent is replaced, whatever it said.
            for hosts in ["", "Host: other.example\r\n", "Host: a\r\nHost: b\r\n"] {
                let r = parsed(&format!("GET {target} HTTP/1.1\r\n{hosts}X-A: 1\r\n\r\n"));
                assert_eq!((r.path.as_str(), r.query.as_str()), (path, query), "{target}");
                assert_eq!(r.header("host"), Some(host), "{target} {hosts:?}");
                assert_eq!(r.headers.iter().filter(|(n, _)| n == "host").count(), 1, "{target} {hosts:?}");
                assert_eq!(r.header("x-a"), Some("1"));
            }
        }
        // Origin-form keeps the Host header as sent.
        assert_eq!(parsed("GET /x HTTP/1.1\r\nHost: h.example\r\n\r\n").header("host"), Some("h.example"));
    }

    #[test]
    fn asterisk_form_is_for_options_alone() {
        let (r, _) = complete("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.method, r.path.as_str(), r.query.as_str()), (Method::Options, "*", ""));
        // An OPTIONS request for an absolute URI with an empty path is one
        // for the whole server too (RFC 9112, 3.2.4).
        let (r, _) = complete("OPTIONS http://example.com:8081 HTTP/1.1\r\n\r\n");
        assert_eq!((r.path.as_str(), r.query.as_str()), ("*", ""));
        assert_eq!(complete("OPTIONS http://example.com/ HTTP/1.1\r\n\r\n").0.path, "/");
        assert_eq!(complete("OPTIONS http://example.com?x HTTP/1.1\r\n\r\n").0.path, "/");
        for bad in
            ["GET * HTTP/1.1", "POST * HTTP/1.1", "options * HTTP/1.1", "OPTIONS *?x HTTP/1.1", "OPTIONS ** HTTP/1.1"]
        {
            assert_eq!(p(&format!("{bad}\r\n\r\n")).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn other_request_targets_are_refused() {
        for target in [
            "ping",
            "ping/x",
            "example.com:80",
            "ftp://example.com/ping",
            "file:///etc/passwd",
            "http:/example.com/ping",
            "http:example.com",
            "http://",
            "http:///ping",
            "http://:80/ping",
            "http://user@example.com/ping",
            "http://user:pw@example.com/ping",
            "http://@example.com/ping",
            "http://exa_mple.com/ping",
            "http://exa%6Dple.com/ping",
            "http://example.com:8o/ping",
            "http://example.com#f",
            "http://[::1/ping",
            "http://[::1]x/ping",
            "?x",
            "#",
        ] {
            let e = p(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap_err();
            assert_eq!(e.status, 400, "{target}: {e}");
        }
    }

    #[test]
    fn head_requests_are_recognised_before_they_are_complete() {
        for (buf, want) in [
            (&b"HEAD / HTTP/1.1\r\n\r\n"[..], true),
            (b"HEAD /x HTTP/1.1\r\nContent-Length: 99999999\r\n", true),
            (b"\r\n\r\nHEAD ", true),
            (b"HEAD", false),
            (b"HEADER / HTTP/1.1", false),
            (b"head / HTTP/1.1", false),
            (b"GET / HTTP/1.1", false),
            (b" HEAD / HTTP/1.1", false),
            (b"", false),
        ] {
            assert_eq!(is_head(buf), want, "{:?}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn identical_duplicate_content_length_is_accepted() {
        let (r, _) = complete("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(r.body, b"ok");
    }
}
