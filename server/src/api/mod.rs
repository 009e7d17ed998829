//! Routing and the handlers of the management and invocation API.
//!
//! A handler either answers at once (`Some(response)`) or starts work on
//! the pool or the executor and answers later through
//! [`Server::complete`](crate::reactor::Server::complete).

mod routes;

pub(crate) use routes::RoutesSync;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use sl_store::{ActionRecord, InvocationRecord, Limits, StoreError};

use crate::auth::{Access, Denied};
use crate::exec::{budget_for, record_response, Job, Reply};
use crate::http::{Method, Request, Response};
use crate::reactor::{now_ms, ConnRef, Server, Waiter};
use crate::sandbox::{self, check_object, ArgsText, InvokeError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Longest `?wait=` for an invocation result, in seconds.
const MAX_WAIT_SECS: u64 = 60;

/// The bytes an action name may hold: `[A-Za-z0-9._-]`.
static NAME_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b as u8, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-');
        b += 1;
    }
    t
};

/// Whether `name` is a valid action name: 1 to 128 of `[A-Za-z0-9._-]`,
/// but not `.` or `..`: URL libraries, curl and browsers resolve those path
/// segments away (`/actions/..` becomes `/`), so no ordinary client could
/// run or delete such an action.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name.bytes().fold(true, |ok, b| ok & NAME_BYTES[usize::from(b)])
}

fn bad_request(message: impl AsRef<str>) -> Response {
    Response::error(400, "bad_request", message.as_ref())
}

fn not_allowed(allow: &str) -> Response {
    Response::error(405, "method_not_allowed", &format!("method not allowed; use {allow}"))
        .with_header("Allow", allow.to_string())
}

fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::AlreadyExists(_) => Response::error(409, "conflict", &e.to_string()),
        StoreError::NotFound(_) => Response::error(404, "not_found", &e.to_string()),
        StoreError::Conflict { .. } => Response::error(409, "conflict", &format!("{e}; retry the update")),
        StoreError::Unavailable(_) => {
            Response::error(503, "unavailable", &e.to_string()).with_header("Retry-After", "1")
        }
        StoreError::Corrupt(_) => Response::error(500, "internal", &e.to_string()),
    }
}

fn overloaded(message: &str) -> Response {
    Response::error(503, "overloaded", &format!("{message}; retry later")).with_header("Retry-After", "1")
}

fn json_response<T: serde::Serialize>(status: u16, v: &T) -> Response {
    Response::json(status, serde_json::to_vec(v).unwrap_or_default())
}

fn check_name(name: &str) -> Result<(), Response> {
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
/// route whatever follows. No allocation, one pass over the bytes.
fn segments(path: &str) -> ([&str; 4], usize) {
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
fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Arguments of an invocation: the body as a JSON object (empty = `{}`).
fn parse_args(body: &[u8]) -> Result<serde_json::Value, Response> {
    if is_blank(body) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    // The same check as for the text path, so that both refuse the same
    // bodies with the same messages.
    check_object(body).map_err(bad_request)?;
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON: {e}")))
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    if body.is_empty() {
        return Err(bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid request body: {e}")))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    code: String,
    #[serde(default)]
    maxmem: u64,
    #[serde(default)]
    timeout: u64,
    #[serde(default)]
    instructions: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    code: Option<String>,
    maxmem: Option<u64>,
    timeout: Option<u64>,
    instructions: Option<u64>,
}

fn decode_code(code: &str) -> Result<String, Response> {
    let bytes = B64.decode(code.trim()).map_err(|e| bad_request(format!("code is not valid base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| bad_request("code is not valid UTF-8 text"))
}

fn action_json(rec: &ActionRecord, with_code: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": rec.name,
        "version": rec.version,
        "size": rec.bytecode.len(),
        "maxmem": rec.limits.maxmem,
        "timeout": rec.limits.timeout,
        "instructions": rec.limits.instructions,
        "checksum": rec.checksum,
        "created": rec.created,
        "updated": rec.updated,
    });
    if with_code {
        v["code"] = serde_json::Value::String(B64.encode(rec.source.as_bytes()));
    }
    v
}

impl Server {
    /// Routes a request. `None` means the answer comes later.
    pub(crate) fn handle(&mut self, conn: ConnRef, mut req: Request) -> Option<Response> {
        let method = if req.method == Method::Head { Method::Get } else { req.method.clone() };
        let (buf, n) = segments(&req.path);
        let segs = &buf[..n];
        let need = match (segs, &method) {
            (["ping"], _) => Access::Public,
            (["actions", _, "block"], Method::Post)
            | (["actions", _], Method::Post)
            | (["invocation", _], Method::Get) => Access::Invoke,
            _ => Access::Admin,
        };
        match self.tokens.check(req.authorization.as_deref(), need) {
            Ok(()) => {}
            Err(Denied::Unauthenticated) => {
                return Some(
                    Response::error(
                        401,
                        "unauthorized",
                        "missing or invalid API token (send Authorization: Bearer TOKEN)",
                    )
                    .with_header("WWW-Authenticate", "Bearer"),
                )
            }
            Err(Denied::Forbidden) => {
                return Some(Response::error(
                    403,
                    "forbidden",
                    "this token may only run actions and read their results",
                ))
            }
        }
        let result = match (segs, &method) {
            (["ping"], Method::Get) => Ok(Some(Response::text(200, "OK"))),
            (["ping"], _) => Err(not_allowed("GET")),
            (["actions"], Method::Get) => Ok(self.list_actions(conn)),
            (["actions"], Method::Post) => self.create_action(conn, &req.body),
            (["actions"], _) => Err(not_allowed("GET, POST")),
            (["actions", name], Method::Get) => check_name(name).map(|_| self.get_action(conn, name)),
            (["actions", name], Method::Put) => {
                check_name(name).and_then(|_| self.update_action(conn, name, &req.body))
            }
            (["actions", name], Method::Delete) => check_name(name).map(|_| self.delete_action(conn, name)),
            (["actions", name], Method::Post) => check_name(name).and_then(|_| self.submit(conn, name, &req.body)),
            (["actions", _], _) => Err(not_allowed("GET, PUT, DELETE, POST")),
            (["actions", name, "block"], Method::Post) => {
                check_name(name).and_then(|_| self.run_blocking(conn, name, std::mem::take(&mut req.body)))
            }
            (["actions", _, "block"], _) => Err(not_allowed("POST")),
            (["invocation", id], Method::Get) => self.get_invocation(conn, id, &req.query),
            (["invocation", _], _) => Err(not_allowed("GET")),
            (["invocations"], Method::Get) => self.list_invocations(conn, &req.query),
            (["invocations"], _) => Err(not_allowed("GET")),
            (["routes"], Method::Get) => Ok(self.list_routes(conn)),
            (["routes"], Method::Post) => self.create_route(conn, &req.body),
            (["routes"], Method::Delete) => self.delete_route(conn, &req.query),
            (["routes"], _) => Err(not_allowed("GET, POST, DELETE")),
            (["plugins"], Method::Get) => Ok(Some(json_response(200, &self.plugins.infos()))),
            (["plugins"], _) => Err(not_allowed("GET")),
            _ => Err(Response::error(404, "not_found", &format!("no route for {} {}", req.method.as_str(), req.path))),
        };
        result.unwrap_or_else(Some)
    }

    /// Runs `job` on the pool and answers `conn` with its response.
    fn answer_later<F>(&self, conn: ConnRef, job: F)
    where
        F: FnOnce(&dyn sl_store::Store) -> Response + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let resp = job(&*store);
            move |s: &mut Server| s.complete(conn, resp)
        });
    }

    fn list_actions(&mut self, conn: ConnRef) -> Option<Response> {
        self.answer_later(conn, |store| match store.list_actions() {
            Ok(list) => {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "name": m.name, "size": m.size, "maxmem": m.limits.maxmem, "timeout": m.limits.timeout,
                            "instructions": m.limits.instructions, "version": m.version, "created": m.created, "updated": m.updated,
                        })
                    })
                    .collect();
                json_response(200, &v)
            }
            Err(e) => store_error(&e),
        });
        None
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), Response> {
        let l = &self.cfg.limits;
        for (name, v, max) in [
            ("maxmem", limits.maxmem, l.max_maxmem),
            ("timeout", limits.timeout, l.max_timeout),
            ("instructions", limits.instructions, l.max_instructions),
        ] {
            if v > max {
                return Err(bad_request(format!("{name} = {v} is above this server's maximum of {max}")));
            }
        }
        Ok(())
    }

    fn create_action(&mut self, conn: ConnRef, body: &[u8]) -> Result<Option<Response>, Response> {
        let b: CreateBody = parse_body(body)?;
        check_name(&b.name)?;
        let source = decode_code(&b.code)?;
        let limits = Limits { maxmem: b.maxmem, timeout: b.timeout, instructions: b.instructions };
        self.check_limits(&limits)?;
        let cfg = self.cfg.limits;
        let name = b.name;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let now = now_ms();
            let mut rec = ActionRecord {
                name: name.clone(),
                version: 1,
                source,
                bytecode: Vec::new(),
                checksum: String::new(),
                limits,
                created: now,
                updated: now,
            };
            let resp = match sandbox::compile_with(&name, &rec.source, budget_for(&rec, &cfg), &libraries(&*store)) {
                Err(e) => compile_error(&e),
                Ok(c) => {
                    rec.bytecode = c.bytecode;
                    rec.checksum = c.checksum;
                    match store.create_action(&rec) {
                        Ok(()) => json_response(
                            201,
                            &serde_json::json!({"name": name, "version": 1, "size": rec.bytecode.len()}),
                        ),
                        Err(StoreError::AlreadyExists(_)) => Response::error(
                            409,
                            "conflict",
                            &format!("action '{name}' already exists (update it with PUT /actions/{name})"),
                        ),
                        Err(e) => store_error(&e),
                    }
                }
            };
            move |s: &mut Server| {
                if resp.status == 201 {
                    s.action_changed(&name);
                }
                s.complete(conn, resp)
            }
        });
        Ok(None)
    }

    fn get_action(&mut self, conn: ConnRef, name: &str) -> Option<Response> {
        let name = name.to_string();
        self.answer_later(conn, move |store| match store.get_action(&name) {
            Ok(Some(rec)) => json_response(200, &action_json(&rec, true)),
            Ok(None) => Response::error(404, "not_found", &format!("no action named '{name}'")),
            Err(e) => store_error(&e),
        });
        None
    }

    fn update_action(&mut self, conn: ConnRef, name: &str, body: &[u8]) -> Result<Option<Response>, Response> {
        let b: UpdateBody = parse_body(body)?;
        if b.code.is_none() && b.maxmem.is_none() && b.timeout.is_none() && b.instructions.is_none() {
            return Err(bad_request("nothing to update: give code, maxmem, timeout or instructions"));
        }
        let source = b.code.as_deref().map(decode_code).transpose()?;
        self.check_limits(&Limits {
            maxmem: b.maxmem.unwrap_or(0),
            timeout: b.timeout.unwrap_or(0),
            instructions: b.instructions.unwrap_or(0),
        })?;
        let cfg = self.cfg.limits;
        let name = name.to_string();
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let resp = (|| {
                let cur = match store.get_action(&name) {
                    Ok(Some(cur)) => cur,
                    Ok(None) => return Response::error(404, "not_found", &format!("no action named '{name}'")),
                    Err(e) => return store_error(&e),
                };
                let mut next = cur.clone();
                next.version = cur.version + 1;
                next.updated = now_ms().max(cur.updated);
                next.limits.maxmem = b.maxmem.unwrap_or(cur.limits.maxmem);
                next.limits.timeout = b.timeout.unwrap_or(cur.limits.timeout);
                next.limits.instructions = b.instructions.unwrap_or(cur.limits.instructions);
                if let Some(source) = source {
                    next.source = source;
                }
                if next.source != cur.source || next.limits != cur.limits {
                    match sandbox::compile_with(&name, &next.source, budget_for(&next, &cfg), &libraries(&*store)) {
                        Ok(c) => {
                            next.bytecode = c.bytecode;
                            next.checksum = c.checksum;
                        }
                        Err(e) => return compile_error(&e),
                    }
                }
                match store.update_action(&next, cur.version) {
                    Ok(()) => json_response(
                        200,
                        &serde_json::json!({"name": name, "version": next.version, "size": next.bytecode.len()}),
                    ),
                    Err(e) => store_error(&e),
                }
            })();
            move |s: &mut Server| {
                s.action_changed(&name);
                s.complete(conn, resp)
            }
        });
        Ok(None)
    }

    fn delete_action(&mut self, conn: ConnRef, name: &str) -> Option<Response> {
        let name = name.to_string();
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let resp = match store.delete_action(&name) {
                Ok(true) => Response::text(200, "OK"),
                Ok(false) => Response::error(404, "not_found", &format!("no action named '{name}'")),
                Err(e) => store_error(&e),
            };
            move |s: &mut Server| {
                s.action_changed(&name);
                s.complete(conn, resp)
            }
        });
        None
    }

    fn run_blocking(&mut self, conn: ConnRef, name: &str, body: Vec<u8>) -> Result<Option<Response>, Response> {
        self.check_room()?;
        let recorded = self.cfg.invocations.record_blocking;
        // Not recorded: the body is parsed once, for the run to push
        // straight into Lua, and the id is made only if something names it
        // (`Job::id`).
        let (args, text) = if recorded || is_blank(&body) {
            (parse_args(&body)?, None)
        } else {
            (serde_json::Value::Null, Some(ArgsText::parse(body).map_err(bad_request)?))
        };
        // An id and a creation time only for a record that is stored.
        let (id, created) = if recorded { (crate::reactor::new_invocation_id(), now_ms()) } else { (String::new(), 0) };
        let record = InvocationRecord::queued(id, name.to_string(), args, false, created);
        self.invoke(Job { args_text: text, ..Job::new(record, Reply::Conn(conn)) });
        Ok(None)
    }

    /// 503 when `Limits.max_waiting` invocations are running or waiting
    /// here already (blocking runs and routes).
    pub(crate) fn check_room(&self) -> Result<(), Response> {
        if self.exec.busy() >= self.cfg.limits.max_waiting {
            return Err(overloaded("too many invocations are running or waiting on this server"));
        }
        Ok(())
    }

    fn submit(&mut self, conn: ConnRef, name: &str, body: &[u8]) -> Result<Option<Response>, Response> {
        let args = parse_args(body)?;
        let id = crate::reactor::new_invocation_id();
        let record = InvocationRecord::queued(id.clone(), name.to_string(), args, true, now_ms());
        let known = self.exec.is_cached(name);
        let max_queued = self.cfg.invocations.max_queued;
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let resp = (|| {
                if !known {
                    match store.get_action(&record.action) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return Response::error(404, "not_found", &format!("no action named '{}'", record.action))
                        }
                        Err(e) => return store_error(&e),
                    }
                }
                match store.count_queued() {
                    Ok(n) if n >= max_queued => {
                        return overloaded(&format!(
                            "{n} asynchronous invocations are queued (the limit is {max_queued})"
                        ))
                    }
                    Ok(_) => {}
                    Err(e) => return store_error(&e),
                }
                match store.put_invocations(std::slice::from_ref(&record)) {
                    Ok(()) => json_response(202, &serde_json::json!({"InvocationId": id})),
                    Err(e) => store_error(&e),
                }
            })();
            move |s: &mut Server| {
                let accepted = resp.status == 202;
                s.complete(conn, resp);
                if accepted {
                    s.kick_dispatch();
                }
            }
        });
        Ok(None)
    }

    fn get_invocation(&mut self, conn: ConnRef, id: &str, query: &str) -> Result<Option<Response>, Response> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(bad_request("invalid invocation id"));
        }
        let wait = match query_param(query, "wait") {
            None => 5,
            Some(v) => {
                v.parse::<u64>().map_err(|_| bad_request("wait must be a whole number of seconds"))?.min(MAX_WAIT_SECS)
            }
        };
        if let Some(rec) = self.recent_done.get(id) {
            return Ok(Some(record_response(rec)));
        }
        let id = id.to_string();
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let r = store.get_invocation(&id);
            move |s: &mut Server| {
                let resp = match r {
                    Ok(Some(rec)) if !rec.status.is_terminal() && wait > 0 => {
                        if let Some(done) = s.recent_done.get(&id) {
                            record_response(done)
                        } else {
                            let deadline = Instant::now() + Duration::from_secs(wait);
                            s.waiters.entry(id).or_default().push(Waiter { conn, deadline });
                            return;
                        }
                    }
                    Ok(Some(rec)) => record_response(&rec),
                    Ok(None) => Response::error(404, "not_found", &format!("no invocation '{id}'")),
                    Err(e) => store_error(&e),
                };
                s.complete(conn, resp)
            }
        });
        Ok(None)
    }

    fn list_invocations(&mut self, conn: ConnRef, query: &str) -> Result<Option<Response>, Response> {
        let action = query_param(query, "action").map(|a| a.into_owned());
        if let Some(a) = &action {
            check_name(a)?;
        }
        let limit = match query_param(query, "limit") {
            None => 50,
            Some(v) => v.parse::<usize>().map_err(|_| bad_request("limit must be a whole number"))?.clamp(1, 1000),
        };
        self.answer_later(conn, move |store| match store.list_invocations(action.as_deref(), limit) {
            Ok(list) => json_response(200, &list),
            Err(e) => store_error(&e),
        });
        Ok(None)
    }
}

/// Resolves `require` while an action is compiled: the verified bytecode
/// of a library action in the store.
fn libraries(store: &dyn sl_store::Store) -> impl Fn(&str) -> Result<sandbox::Compiled, String> + '_ {
    move |lib| match store.get_action(lib) {
        Ok(Some(rec)) => sandbox::Compiled::verified(rec.bytecode, &rec.checksum).map_err(|e| e.to_string()),
        Ok(None) => Err(format!("require: no library action named '{lib}'")),
        Err(e) => Err(format!("require '{lib}': {e}")),
    }
}

fn compile_error(e: &InvokeError) -> Response {
    match e {
        InvokeError::Internal(m) => Response::error(500, "internal", m),
        other => Response::error(400, "compile", &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("hello"));
        assert!(valid_name("a.b-c_D9"));
        assert!(valid_name(&"x".repeat(128)));
        assert!(!valid_name(&"x".repeat(129)));
        assert!(valid_name("...") && valid_name(".a") && valid_name("a.."));
        for bad in ["", "a/b", "a b", "%2e%2e", "ü", "a?b", ".", ".."] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

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
        assert_eq!(parse_args(b"").unwrap(), serde_json::json!({}));
        assert_eq!(parse_args(b" \n").unwrap(), serde_json::json!({}));
        assert_eq!(parse_args(br#"{"a":1}"#).unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(parse_args(b"[1]").unwrap_err().status, 400);
        assert_eq!(parse_args(b"{bad").unwrap_err().status, 400);
    }
}
