//! HTTP calls to the server, and the errors they end in.
//!
//! Every response is read whole, whatever its status (`http_status_as_error`
//! is off), so that a server error can be reported with its kind and message,
//! but never more than the client's bound ([`DEFAULT_MAX_BODY`] unless
//! `--max-body-mib` or `SLCLI_MAX_BODY_MIB` say otherwise): the read stops
//! there with an error naming the bound. Failing to talk to the server at
//! all is a [`cannot reach`](Client::send) error.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use ureq::http::{StatusCode, Uri};

use crate::json::Scalar;

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Tries of a request with an idempotency key whose answer is lost
/// ([`Client::call_with_key`]).
const KEYED_TRIES: u32 = 4;

/// One mebibyte, the unit of `--max-body-mib`.
pub const MIB: u64 = 1 << 20;

/// The largest response body read unless configured otherwise: 256 MiB.
/// It holds the result of an action at the server's default memory limit
/// (64 MiB, and a result counts against it) four times over, an action's
/// source (the server takes requests of 1 MiB by default), and a page of
/// 1000 invocation records with 64 KiB of text logs and some KiB of args
/// and result each. Bigger honest answers (results of actions allowed more
/// memory, pages of records with big results) need `--max-body-mib`; what
/// a hostile server can make slcli hold is a small multiple of the bound.
pub const DEFAULT_MAX_BODY: u64 = 256 * MIB;

/// Checks a server URL and returns it without trailing slashes, so that
/// paths can be appended. Only plain `http://HOST[:PORT][/PREFIX]` is taken.
pub fn normalize_url(raw: &str) -> Result<String> {
    let url = raw.trim().trim_end_matches('/');
    let invalid = |why: &str| anyhow!("invalid server URL '{raw}': {why}");
    if url.is_empty() {
        return Err(invalid("it is empty; use e.g. http://127.0.0.1:8080"));
    }
    if !url.contains("://") {
        return Err(invalid(&format!("it needs a scheme, e.g. http://{url}")));
    }
    let uri: Uri = url.parse().map_err(|e| invalid(&format!("{e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(invalid("https is not supported; slcli speaks plain HTTP like slserver")),
        Some(other) => return Err(invalid(&format!("unsupported scheme '{other}'; use http://HOST:PORT"))),
        None => return Err(invalid("it needs a scheme, e.g. http://127.0.0.1:8080")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(invalid("it must not have a query or fragment"));
    }
    Ok(url.to_string())
}

/// Percent-encodes one path segment or query value (everything but the
/// unreserved characters; a lone `.` or `..` is encoded too).
pub fn encode(segment: &str) -> String {
    let keep_dots = segment != "." && segment != "..";
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) || (b == b'.' && keep_dots) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        })
    }
}

/// A response: its status and its body as text.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The reply if its status is 2xx, else the server's error.
    pub fn success(self) -> Result<Self, ServerError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(ServerError::from_reply(self))
        }
    }

    /// The fields of the JSON body that a `T` holds; the rest of the body
    /// is read past, not built (see [`crate::json`]).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body).with_context(|| {
            if serde_json::from_str::<IgnoredAny>(&self.body).is_ok() {
                format!("the server's answer is not what slcli expects: {}", snippet(&self.body))
            } else {
                format!("the server's answer is not valid JSON: {}", snippet(&self.body))
            }
        })
    }
}

/// A 4xx/5xx (or otherwise unexpected) answer from the server.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub status: u16,
    /// `error.kind` of the body `{"error": {"kind", "message"}}`, if it has that form.
    pub kind: Option<String>,
    pub message: Option<String>,
    /// The body as received.
    pub body: String,
}

/// The error body `{"error": {"kind", "message"}}`, as far as it is read.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    kind: Scalar,
    #[serde(default)]
    message: Scalar,
}

impl ServerError {
    pub fn from_reply(reply: Reply) -> Self {
        let (kind, message) = match serde_json::from_str::<ErrorBody>(&reply.body) {
            Ok(ErrorBody { error: ErrorFields { kind, message } }) => (kind, message),
            Err(_) => (Scalar::Null, Scalar::Null),
        };
        let text = |v: Scalar| match v {
            Scalar::Str(s) => Some(s),
            _ => None,
        };
        Self { status: reply.status, kind: text(kind), message: text(message), body: reply.body }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = StatusCode::from_u16(self.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        match (&self.message, &self.kind) {
            (Some(message), Some(kind)) => write!(f, "{message} ({} {kind})", self.status),
            (Some(message), None) => write!(f, "{message} ({} {reason})", self.status),
            (None, Some(kind)) => write!(f, "{kind} ({} {reason})", self.status),
            (None, None) if self.body.trim().is_empty() => {
                write!(f, "the server answered {} {reason} with no body", self.status)
            }
            (None, None) => write!(f, "{} ({} {reason})", snippet(&self.body), self.status),
        }
    }
}

impl std::error::Error for ServerError {}

/// At most a few hundred characters of `text`, on one line.
pub fn snippet(text: &str) -> String {
    let one_line = text.trim().replace(['\r', '\n'], " ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    }
}

fn with_headers<B>(req: ureq::RequestBuilder<B>, headers: &[(&str, &str)]) -> ureq::RequestBuilder<B> {
    headers.iter().fold(req, |req, (name, value)| req.header(*name, *value))
}

/// Why [`Client::send_with`] failed.
#[derive(Debug)]
pub enum Failure {
    /// The request did not reach the server, or its answer did not come
    /// back: the server may or may not have acted on it.
    Unreachable(anyhow::Error),
    /// Anything else (an answer too large or unreadable).
    Other(anyhow::Error),
}

impl Failure {
    /// The failure as an error.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Unreachable(e) | Failure::Other(e) => e,
        }
    }
}

/// A client for one server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    timeout: Option<Duration>,
    authorization: Option<String>,
    /// The largest response body read, in bytes.
    max_body: u64,
}

impl Client {
    /// `base` must have gone through [`normalize_url`]. `timeout` bounds
    /// each whole request (None = no limit); connecting takes at most 5 s.
    pub fn new(base: &str, timeout: Option<Duration>) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_global(timeout)
            .user_agent(concat!("slcli/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { agent: config.into(), base: base.to_string(), timeout, authorization: None, max_body: DEFAULT_MAX_BODY }
    }

    /// Reads response bodies of at most `bytes` bytes (see [`DEFAULT_MAX_BODY`]).
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sends `token` as `Authorization: Bearer TOKEN` with every request.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.authorization = token.map(|t| format!("Bearer {t}"));
        self
    }

    /// `GET path`, a JSON array of `what` read one element at a time: the
    /// elements whose name (the first of what `split` makes of each) `keep`
    /// keeps, by name; `None` if the server has no such API (a 404: an
    /// older server). Deploy reads the topics, subscriptions and schedules
    /// it manages this way.
    pub fn fetch_named<T: DeserializeOwned, V>(
        &self,
        path: &str,
        what: &str,
        keep: impl Fn(&str) -> bool,
        split: impl Fn(T) -> (String, V),
    ) -> Result<Option<std::collections::BTreeMap<String, V>>> {
        let reply = self.send(Method::Get, path, None)?;
        if reply.status == 404 {
            return Ok(None);
        }
        let reply = reply.success()?;
        let mut found = std::collections::BTreeMap::new();
        crate::json::each(&reply.body, |item: T| {
            let (name, value) = split(item);
            if keep(&name) {
                found.insert(name, value);
            }
            Ok(())
        })
        .map_err(|e| anyhow!("the server's answer to GET {path} is not a JSON array of {what}: {e}"))?;
        Ok(Some(found))
    }

    /// Sends a request to `path` (with its query, already encoded) and
    /// reads the whole response, whatever its status. A JSON `body` is
    /// sent with `Content-Type: application/json`.
    pub fn send(&self, method: Method, path: &str, body: Option<&[u8]>) -> Result<Reply> {
        self.send_with(method, path, body, &[]).map_err(Failure::into_error)
    }

    /// [`Client::send`] with more header fields, telling a request that
    /// never reached the server or got no answer ([`Failure::Unreachable`],
    /// which may be retried when retrying is safe) from every other failure.
    pub fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> std::result::Result<Reply, Failure> {
        let url = format!("{}{path}", self.base);
        let auth = self.authorization.as_deref();
        let result = match (method, body) {
            (Method::Get, _) => with_headers(with_auth(self.agent.get(&url), auth), headers).call(),
            (Method::Delete, _) => with_headers(with_auth(self.agent.delete(&url), auth), headers).call(),
            (Method::Post, None) => with_headers(with_auth(self.agent.post(&url), auth), headers).send_empty(),
            (Method::Put, None) => with_headers(with_auth(self.agent.put(&url), auth), headers).send_empty(),
            (Method::Post, Some(b)) => {
                with_headers(with_auth(self.agent.post(&url), auth), headers).content_type("application/json").send(b)
            }
            (Method::Put, Some(b)) => {
                with_headers(with_auth(self.agent.put(&url), auth), headers).content_type("application/json").send(b)
            }
        };
        let unreachable = |e: ureq::Error| {
            Failure::Unreachable(anyhow!("cannot reach {} ({method} {path}): {}", self.base, self.reason(e)))
        };
        let mut response = result.map_err(unreachable)?;
        let status = response.status().as_u16();
        let too_large = || {
            anyhow!(
                "the answer of {} to {method} {path} is larger than {}, the most slcli reads \
                 (raise the bound with --max-body-mib N or SLCLI_MAX_BODY_MIB=N)",
                self.base,
                size(self.max_body)
            )
        };
        // A length announced over the bound fails before anything is read.
        let announced = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.trim().parse().ok());
        if announced.is_some_and(|len: u64| len > self.max_body) {
            return Err(Failure::Other(too_large()));
        }
        let bytes = read_at_most(&mut response.body_mut().as_reader(), self.max_body, announced)
            .map_err(|e| {
                // The answer broke off: whether the server acted is unknown.
                Failure::Unreachable(anyhow!(
                    "cannot read the answer of {} to {method} {path}: {}",
                    self.base,
                    self.reason(e.into())
                ))
            })?
            .ok_or_else(|| Failure::Other(too_large()))?;
        let body = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Reply { status, body })
    }

    /// `send`, then [`Reply::success`].
    pub fn call(&self, method: Method, path: &str, body: Option<&[u8]>) -> Result<Reply> {
        Ok(self.send(method, path, body)?.success()?)
    }

    /// [`call`](Self::call) with `Idempotency-Key: key`, trying again
    /// (after 0.5, 1 and 2 s) when the request or its answer is lost: the
    /// key makes a retry safe, since the server answers it with what the
    /// first try did (the invocation it queued, the message it stored).
    pub fn call_with_key(&self, method: Method, path: &str, body: &[u8], key: &str) -> Result<Reply> {
        let mut pause = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.send_with(method, path, Some(body), &[("Idempotency-Key", key)]) {
                Ok(reply) => return Ok(reply.success()?),
                Err(Failure::Unreachable(e)) if attempt < KEYED_TRIES => {
                    eprintln!("{e}; trying again with the same Idempotency-Key in {} ms", pause.as_millis());
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e.into_error()),
            }
        }
    }

    /// Why a request failed, in words.
    fn reason(&self, e: ureq::Error) -> String {
        use ureq::Timeout as T;
        match e {
            ureq::Error::Timeout(T::Connect | T::Resolve) => {
                format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
            }
            ureq::Error::Timeout(T::Global) => match self.timeout {
                Some(t) => format!("no answer within {} s (see --timeout-secs)", t.as_secs()),
                None => "timed out".to_string(),
            },
            ureq::Error::Timeout(t) => format!("timed out ({t})"),
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::Io(e) => io_reason(&e),
            other => other.to_string(),
        }
    }
}

/// Reads `reader` to its end if that is at most `limit` bytes (`None` if it
/// is longer): one byte past the limit is read to tell, never more. `hint`
/// is the announced length, to allocate once.
fn read_at_most(reader: &mut impl Read, limit: u64, hint: Option<u64>) -> io::Result<Option<Vec<u8>>> {
    let capacity = hint.unwrap_or(0).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    reader.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// A size in bytes for people: whole MiB as `N MiB`, else `N bytes`.
pub fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by the server".to_string(),
        K::ConnectionAborted => "connection aborted".to_string(),
        K::UnexpectedEof => "the server closed the connection before answering".to_string(),
        K::TimedOut => "timed out".to_string(),
        K::AddrNotAvailable => "address not available".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalized() {
        assert_eq!(normalize_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_url(" http://localhost:8080/ ").unwrap(), "http://localhost:8080");
        assert_eq!(normalize_url("http://example.com/sl//").unwrap(), "http://example.com/sl");
        for (bad, why) in [
            ("", "empty"),
            ("localhost:8080", "http://localhost:8080"),
            ("127.0.0.1", "needs a scheme"),
            ("https://example.com", "https is not supported"),
            ("ftp://example.com", "unsupported scheme 'ftp'"),
            ("http://", "invalid server URL"),
            ("http://exa mple.com", "invalid server URL"),
            ("http://h:1/?x=1", "query"),
        ] {
            let e = normalize_url(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("invalid server URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("hello.v2_x-y"), "hello.v2_x-y");
        assert_eq!(encode("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(encode(".."), "%2E%2E");
        assert_eq!(encode("ü"), "%C3%BC");
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply { status, body: body.to_string() }
    }

    #[test]
    fn server_errors_show_kind_message_and_status() {
        let e =
            reply(500, r#"{"error":{"kind":"memory","message":"memory limit exceeded: evil"}}"#).success().unwrap_err();
        assert_eq!(e.kind.as_deref(), Some("memory"));
        assert_eq!(e.to_string(), "memory limit exceeded: evil (500 memory)");
        let e = reply(404, "").success().unwrap_err();
        assert_eq!(e.to_string(), "the server answered 404 Not Found with no body");
        let e = reply(502, "<html>Bad gateway</html>\n").success().unwrap_err();
        assert_eq!(e.to_string(), "<html>Bad gateway</html> (502 Bad Gateway)");
        assert!(reply(201, "{}").success().is_ok());
    }

    #[test]
    fn unreachable_servers_are_named() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let e = Client::new(&base, Some(Duration::from_secs(5))).send(Method::Get, "/ping", None).unwrap_err();
        assert_eq!(e.to_string(), format!("cannot reach {base} (GET /ping): connection refused"));
    }

    #[test]
    fn reads_stop_one_byte_past_the_limit() {
        let read = |text: &[u8], limit| read_at_most(&mut &text[..], limit, None).unwrap();
        assert_eq!(read(b"12345", 5).as_deref(), Some(&b"12345"[..]));
        assert_eq!(read(b"", 0).as_deref(), Some(&b""[..]));
        assert_eq!(read(b"123456", 5), None);
        // An endless reader is read no further than the limit and one byte.
        let mut endless = std::io::repeat(b'0');
        assert_eq!(read_at_most(&mut endless, 1 << 20, Some(u64::MAX)).unwrap(), None);
        let mut counted = (&mut endless).take(10);
        assert_eq!(read_at_most(&mut counted, 3, None).unwrap(), None);
        assert_eq!(counted.limit(), 6, "4 bytes read");
    }

    #[test]
    fn sizes_read_like_the_flag() {
        assert_eq!(size(256 * MIB), "256 MiB");
        assert_eq!(size(MIB + 1), "1048577 bytes");
        assert_eq!(size(10), "10 bytes");
    }

    #[test]
    fn long_bodies_are_cut_in_messages() {
        let s = snippet(&"x".repeat(1000));
        assert_eq!(s.len(), 303);
        assert_eq!(snippet("ü".repeat(400).as_str()).chars().count(), 303);
    }
}
