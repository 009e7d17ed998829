//! The `http` plugin: outbound HTTP requests from actions, on `ureq`.
//!
//! ```lua
//! -- config.lua
//! Plugin "http" { file = "target/release/libsl_http.so", timeout = 5000, allow = { "api.example.com" } }
//! -- an action
//! local r = call('http', 'request', { method = "POST", url = "https://api.example.com/v1/items",
//!                                    headers = { ["content-type"] = "application/json" },
//!                                    body = '{"name":"x"}', timeout = 2000 })
//! if r.status ~= 201 then return nil, "upstream said " .. r.status end
//! return r.body
//! ```
//!
//! # Configuration
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `allow` | absent: **any host** | hosts actions may reach: `"host"`, `"host:port"`, `"*.domain"`, `"[::1]:8080"`, `"*"`; an empty list allows nothing |
//! | `timeout` | 10000 | default timeout of a request in milliseconds, from connecting to the end of the body, redirects included |
//! | `max_timeout` | 60000 | the largest `timeout` a request may ask for |
//! | `max_body` | 10485760 | largest response body in bytes; a larger one is an error |
//! | `max_redirects` | 5 | redirects followed (each target is checked against `allow`) |
//! | `proxy` | none | proxy URL for every request (`http://host:port`, `socks5://host:port`); environment variables are ignored |
//!
//! Without `allow`, actions can reach every host the server can, including
//! services on its own loopback and private network (databases, metadata
//! endpoints). Configure `allow` whenever the actions are not fully trusted.
//! The list is checked against the host name in the URL (and in every
//! redirect), not against the addresses it resolves to.
//!
//! # Action `request`
//!
//! Payload: `url` (required, `http://` or `https://`), `method` (default
//! `GET`), `headers` (table of name to string, or to a list of strings),
//! `body` (string; with `body_base64 = true` it is base64 and sent decoded),
//! `timeout` (milliseconds), `follow_redirects` (default true).
//!
//! Result: `{status, headers, body, body_base64, url}`. Header names are
//! lower-case; repeated headers are joined with `", "`. `body` is the text
//! when the body is UTF-8, otherwise base64 with `body_base64 = true`. `url`
//! is the final URL after redirects. Every status is a result (a 404 is not
//! an error); a disallowed host, a connection failure, a timeout or a body
//! over `max_body` is an error.

mod allow;

use std::time::{Duration, Instant};

use base64::Engine as _;
use sl_plugin::serde_json::Map;
use sl_plugin::{export_plugin, json, Plugin, Value};
use ureq::http::{self, Method, Uri};
use ureq::{Agent, AsSendBody};

pub use allow::{Allow, AllowEntry};

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
const DEFAULT_MAX_REDIRECTS: u32 = 5;
const CONFIG_KEYS: &[&str] = &["allow", "max_body", "max_redirects", "max_timeout", "proxy", "timeout"];
const PAYLOAD_KEYS: &[&str] = &["body", "body_base64", "follow_redirects", "headers", "method", "timeout", "url"];

/// The plugin: one `ureq` agent (its connection pool is shared by all calls)
/// and the settings.
pub struct Http {
    agent: Agent,
    allow: Allow,
    timeout: Duration,
    max_timeout: Duration,
    max_body: u64,
    max_redirects: u32,
}

impl Plugin for Http {
    const NAME: &'static str = "http";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: Value) -> Result<Self, String> {
        let config = match config {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(format!("http: the configuration must be a table, got {other}")),
        };
        if let Some(key) = config.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
            return Err(format!("http: unknown setting '{key}' (known: {})", CONFIG_KEYS.join(", ")));
        }
        let allow = match config.get("allow") {
            None | Some(Value::Null) => Allow::Any,
            Some(Value::Array(items)) => Allow::List(
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => AllowEntry::parse(s).map_err(|e| format!("http: {e}")),
                        other => Err(format!("http: allow entries must be strings, got {other}")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            // An empty Lua table may arrive as an empty JSON object.
            Some(Value::Object(map)) if map.is_empty() => Allow::List(Vec::new()),
            Some(other) => return Err(format!("http: 'allow' must be a list of hosts, got {other}")),
        };
        let timeout = Duration::from_millis(setting(&config, "timeout", DEFAULT_TIMEOUT_MS)?);
        let max_timeout = Duration::from_millis(setting(&config, "max_timeout", DEFAULT_MAX_TIMEOUT_MS)?);
        if timeout > max_timeout {
            return Err("http: 'timeout' must not be larger than 'max_timeout'".to_string());
        }
        let max_body = setting(&config, "max_body", DEFAULT_MAX_BODY)?;
        let max_redirects = u32::try_from(setting(&config, "max_redirects", DEFAULT_MAX_REDIRECTS.into())?)
            .map_err(|_| "http: 'max_redirects' is too large".to_string())?;
        let proxy = match config.get("proxy") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => {
                Some(ureq::Proxy::new(url).map_err(|e| format!("http: invalid proxy '{url}': {e}"))?)
            }
            Some(other) => return Err(format!("http: 'proxy' must be a URL string, got {other}")),
        };
        let agent: Agent = Agent::config_builder()
            // Statuses are results; redirects are followed here, so that every
            // hop is checked against the allow list.
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(proxy)
            .user_agent(concat!("sl-http/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Http { agent, allow, timeout, max_timeout, max_body, max_redirects })
    }

    fn call(&self, action: &str, payload: Value) -> Result<Value, String> {
        match action {
            "request" => self.request(&payload),
            other => Err(format!("http: unknown action '{other}' (known: request)")),
        }
    }
}

export_plugin!(Http);

/// A parsed `request` payload.
struct Request {
    method: Method,
    url: Uri,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    follow_redirects: bool,
}

impl Http {
    /// The action `request`.
    pub fn request(&self, payload: &Value) -> Result<Value, String> {
        let mut req = self.parse(payload)?;
        let deadline = Instant::now() + req.timeout;
        let mut redirects = 0;
        loop {
            let (host, port) = host_port(&req.url)?;
            self.allow.check(&host, port)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timed_out(&req));
            }
            let mut response = match &req.body {
                Some(body) => self.send(&req, body.as_slice(), remaining),
                None => self.send(&req, (), remaining),
            }
            .map_err(|e| self.failure(&req, &host, port, e))?;

            let status = response.status();
            let location = response.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok());
            if req.follow_redirects && status.is_redirection() && location.is_some() {
                if redirects == self.max_redirects {
                    return Err(format!(
                        "http: too many redirects (more than {}) from {}",
                        self.max_redirects, req.url
                    ));
                }
                let next = resolve(&req.url, location.unwrap_or_default())?;
                redirect(&mut req, status, next);
                redirects += 1;
                continue;
            }

            let body = response
                .body_mut()
                .with_config()
                .limit(self.max_body)
                .read_to_vec()
                .map_err(|e| self.failure(&req, &host, port, e))?;
            let mut headers = Map::new();
            for (name, value) in response.headers() {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                match headers.get_mut(name.as_str()) {
                    Some(Value::String(prev)) => {
                        prev.push_str(", ");
                        prev.push_str(&value);
                    }
                    _ => {
                        headers.insert(name.as_str().to_string(), Value::String(value));
                    }
                }
            }
            let (body, body_base64) = match String::from_utf8(body) {
                Ok(text) => (text, false),
                Err(e) => (base64::engine::general_purpose::STANDARD.encode(e.as_bytes()), true),
            };
            return Ok(json!({
                "status": status.as_u16(),
                "headers": headers,
                "body": body,
                "body_base64": body_base64,
                "url": req.url.to_string(),
            }));
        }
    }

    fn send(
        &self,
        req: &Request,
        body: impl AsSendBody,
        timeout: Duration,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let mut builder = http::Request::builder().method(req.method.clone()).uri(req.url.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(body)?;
        let request = self.agent.configure_request(request).timeout_global(Some(timeout)).build();
        self.agent.run(request)
    }

    /// The error message for a failed request.
    fn failure(&self, req: &Request, host: &str, port: u16, e: ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => timed_out(req),
            ureq::Error::HostNotFound => format!("http: cannot resolve host '{host}' ({})", req.url),
            ureq::Error::ConnectionFailed => format!("http: cannot connect to {host}:{port} ({})", req.url),
            ureq::Error::Io(io) if is_connect_error(&io) => {
                format!("http: cannot connect to {host}:{port} ({}): {io}", req.url)
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => timed_out(req),
            ureq::Error::BodyExceedsLimit(limit) => {
                format!("http: the response body of {} is larger than max_body ({limit} bytes)", req.url)
            }
            other => format!("http: {} {} failed: {other}", req.method, req.url),
        }
    }

    fn parse(&self, payload: &Value) -> Result<Request, String> {
        let p = match payload {
            Value::Object(map) => map,
            Value::String(_) => {
                return Err("http request: the payload must be a table such as {url = \"http://...\"}, not a string"
                    .to_string())
            }
            other => {
                return Err(format!(
                    "http request: the payload must be a table such as {{url = \"http://...\"}}, got {other}"
                ))
            }
        };
        if let Some(key) = p.keys().find(|k| !PAYLOAD_KEYS.contains(&k.as_str())) {
            return Err(format!("http request: unknown field '{key}' (known: {})", PAYLOAD_KEYS.join(", ")));
        }
        let url = match p.get("url") {
            Some(Value::String(s)) => s,
            Some(other) => return Err(format!("http request: 'url' must be a string, got {other}")),
            None => return Err("http request: missing 'url'".to_string()),
        };
        let url: Uri = url.parse().map_err(|e| format!("http request: invalid url '{url}': {e}"))?;
        host_port(&url)?;
        let method = match p.get("method") {
            None | Some(Value::Null) => Method::GET,
            Some(Value::String(m)) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("http request: invalid method '{m}'"))?,
            Some(other) => return Err(format!("http request: 'method' must be a string, got {other}")),
        };
        let mut headers = Vec::new();
        match p.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let header = http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| format!("http request: invalid header name '{name}'"))?;
                    let values = match value {
                        Value::Array(items) => items.iter().collect(),
                        one => vec![one],
                    };
                    for v in values {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            other => {
                                return Err(format!("http request: header '{name}' must be a string, got {other}"))
                            }
                        };
                        let value = http::HeaderValue::from_str(&text)
                            .map_err(|_| format!("http request: invalid value for header '{name}'"))?;
                        headers.push((header.clone(), value));
                    }
                }
            }
            Some(other) => return Err(format!("http request: 'headers' must be a table, got {other}")),
        }
        let body_base64 = flag(p, "body_base64", false)?;
        let body = match p.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if body_base64 => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("http request: 'body' is not valid base64: {e}"))?,
            ),
            Some(Value::String(s)) => Some(s.clone().into_bytes()),
            Some(other) => return Err(format!("http request: 'body' must be a string, got {other}")),
        };
        let timeout = match p.get("timeout") {
            None | Some(Value::Null) => self.timeout,
            Some(v) => {
                let ms =
                    millis(v).ok_or_else(|| "http request: 'timeout' must be milliseconds, 0 or more".to_string())?;
                let t = Duration::from_millis(ms);
                if t > self.max_timeout {
                    return Err(format!(
                        "http request: 'timeout' {ms} is larger than the plugin's max_timeout ({} ms)",
                        self.max_timeout.as_millis()
                    ));
                }
                t
            }
        };
        let follow_redirects = flag(p, "follow_redirects", true)?;
        Ok(Request { method, url, headers, body, timeout, follow_redirects })
    }
}

fn timed_out(req: &Request) -> String {
    format!("http: {} {} timed out after {} ms", req.method, req.url, req.timeout.as_millis())
}

fn is_connect_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | AddrNotAvailable)
        || e.kind() == HostUnreachable
        || e.kind() == NetworkUnreachable
}

/// Lower-case host (IPv6 in brackets) and port (default by scheme).
fn host_port(url: &Uri) -> Result<(String, u16), String> {
    let default_port = match url.scheme_str() {
        Some("http") => 80,
        Some("https") if cfg!(feature = "tls") => 443,
        Some("https") => {
            return Err(format!("http: {url} needs TLS, and this build of the http plugin has no TLS support"))
        }
        Some(other) => return Err(format!("http request: unsupported scheme '{other}' in {url} (use http or https)")),
        None => return Err(format!("http request: the url must be absolute (http://host/...), got '{url}'")),
    };
    let host = url.host().filter(|h| !h.is_empty()).ok_or_else(|| format!("http request: no host in url '{url}'"))?;
    Ok((host.to_ascii_lowercase(), url.port_u16().unwrap_or(default_port)))
}

/// Resolves a `Location` header against the URL that returned it.
fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    let bad = |e: &dyn std::fmt::Display| format!("http: invalid redirect location '{location}' from {base}: {e}");
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let is_absolute = location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let joined = if is_absolute {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    joined.parse::<Uri>().map_err(|e| bad(&e))
}

/// Turns `req` into the request that follows a redirect to `next`.
fn redirect(req: &mut Request, status: http::StatusCode, next: Uri) {
    // 301, 302 and 303 turn into a GET without body (what browsers and curl
    // do); 307 and 308 repeat the request as it was.
    if matches!(status.as_u16(), 301..=303) && req.method != Method::HEAD {
        req.method = Method::GET;
        req.body = None;
        req.headers.retain(|(n, _)| n != http::header::CONTENT_TYPE && n != http::header::CONTENT_LENGTH);
    }
    // Credentials are not sent to another host.
    if next.authority() != req.url.authority() {
        req.headers.retain(|(n, _)| n != http::header::AUTHORIZATION && n != http::header::COOKIE);
    }
    req.url = next;
}

/// A non-negative whole number of milliseconds (integer or float).
fn millis(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}

fn setting(config: &Map<String, Value>, key: &str, default: u64) -> Result<u64, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => millis(v).ok_or_else(|| format!("http: '{key}' must be a number, 0 or more, got {v}")),
    }
}

fn flag(p: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("http request: '{key}' must be true or false, got {other}")),
    }
}

#[cfg(test)]
mod tests;
