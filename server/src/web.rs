//! Serving routes: a request on the routes listener runs the action its
//! route names, with arguments built from the request, and the action's
//! result becomes the HTTP response.
//!
//! # Arguments
//!
//! `args` merges, later sources winning on equal keys:
//! 1. query parameters (`?a=1&b=2`, strings; a repeated key keeps its last value),
//! 2. the body's fields: a JSON object (`Content-Type: application/json`,
//!    or no content type and a body that starts with `{`) or a form
//!    (`application/x-www-form-urlencoded`, strings),
//! 3. route parameters (`:id`, `*rest`, strings).
//!
//! `args.http` (always set, overriding any `http` field from the sources
//! above) holds `method`, `path` (as sent), `host`, `route` (the pattern),
//! `query` (the raw query string), `headers` (names in lower case; repeated
//! headers joined with `, `), `params` (the route parameters), and `body`
//! (the raw body as text) or `body_base64` when the body is not UTF-8.
//!
//! # Responses
//!
//! - a value returned by `main` becomes `200` with its JSON;
//! - `return nil, message` becomes `400` with `{"error": {"kind": "action", "message": ...}}`;
//! - an error or a limit becomes `500` with `{"error": {"kind": "internal", ...}}`: the
//!   message is hidden from the client unless `Server { debug = true }`; the
//!   invocation record keeps it, and the `X-SL-Invocation` header names it;
//! - `http.response{status = ..., headers = {...}, body = ...}` sets status,
//!   headers and a text, binary or JSON body. It returns a plain table
//!   marked with the key `$sl_response`: `status`, `headers`, and `body`
//!   (text), `body_base64` (other bytes) or `json` (a table body), which is
//!   also what `invoke` returns to a caller of such an action.

use std::borrow::Cow;

use base64::Engine;
use serde_json::{Map, Value};
use sl_store::InvocationRecord;

use crate::exec::{error_status, Job, Reply};
use crate::http::{Request, Response};
use crate::reactor::{now_ms, ConnRef, Server};
use crate::routes::Lookup;
use crate::sandbox::{self, InvokeError};

/// The key `http.response` marks its tables with.
const RESPONSE_MARK: &str = "$sl_response";

/// Header naming the invocation that answered a route.
const INVOCATION_HEADER: &str = "X-SL-Invocation";

impl Server {
    /// Serves a request of the routes listener. `None`: the answer comes
    /// when the action finishes.
    pub(crate) fn handle_route(&mut self, conn: ConnRef, req: Request) -> Option<Response> {
        let host = req.header("host").unwrap_or("");
        let (action, pattern, params) = match self.routes.lookup(req.method.as_str(), host, &req.path) {
            Lookup::Found(m) => (
                m.value.clone(),
                m.pattern.to_string(),
                m.params.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Vec<_>>(),
            ),
            Lookup::MethodNotAllowed(allowed) => {
                let allow = allowed.join(", ");
                return Some(
                    Response::error(405, "method_not_allowed", &format!("method not allowed; use {allow}"))
                        .with_header("Allow", allow),
                );
            }
            Lookup::NotFound => {
                let path: String = req.path.chars().take(200).collect();
                return Some(Response::error(
                    404,
                    "not_found",
                    &format!("no route for {} {path}", req.method.as_str()),
                ));
            }
            Lookup::BadPath(message) => return Some(Response::error(400, "bad_request", &message)),
        };
        if let Err(resp) = self.check_room() {
            return Some(resp);
        }
        let args = match route_args(&req, &pattern, &params) {
            Ok(a) => a,
            Err(resp) => return Some(resp),
        };
        let id = crate::reactor::new_invocation_id();
        let record = InvocationRecord::queued(id, action, args, false, now_ms());
        self.invoke(Job::new(record, Reply::Web(conn)));
        None
    }
}

/// The arguments of a route invocation (see the module docs).
pub(crate) fn route_args(req: &Request, pattern: &str, params: &[(String, String)]) -> Result<Value, Response> {
    let bad = |m: String| Response::error(400, "bad_request", &m);
    let mut args = Map::new();
    for (k, v) in form_urlencoded::parse(req.query.as_bytes()) {
        args.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let content_type = req.header("content-type").unwrap_or("").to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or("").trim();
    let body_is_blank = req.body.iter().all(u8::is_ascii_whitespace);
    if !body_is_blank {
        let json = media == "application/json"
            || media.ends_with("+json")
            || (media.is_empty() && req.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'));
        if json {
            match serde_json::from_slice::<Value>(&req.body) {
                // Its fields become the arguments' own: the same depth
                // rule as for the body of a blocking run.
                Ok(v @ Value::Object(_)) if sandbox::nested_too_deep(&v) => {
                    return Err(bad(sandbox::too_deep_message()))
                }
                Ok(Value::Object(fields)) => args.extend(fields),
                Ok(_) => {} // an array or a scalar: only in args.http.body
                Err(e) => return Err(bad(format!("invalid JSON body: {e}"))),
            }
        } else if media == "application/x-www-form-urlencoded" {
            for (k, v) in form_urlencoded::parse(&req.body) {
                args.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let mut param_map = Map::new();
    for (k, v) in params {
        args.insert(k.clone(), Value::String(v.clone()));
        param_map.insert(k.clone(), Value::String(v.clone()));
    }
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        match headers.get_mut(name) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    let mut http = Map::new();
    http.insert("method".into(), req.method.as_str().into());
    http.insert("path".into(), req.path.clone().into());
    http.insert("host".into(), req.header("host").unwrap_or("").into());
    http.insert("route".into(), pattern.into());
    http.insert("query".into(), req.query.clone().into());
    http.insert("headers".into(), Value::Object(headers));
    http.insert("params".into(), Value::Object(param_map));
    match std::str::from_utf8(&req.body) {
        Ok(text) => http.insert("body".into(), text.into()),
        Err(_) => http.insert("body_base64".into(), base64::engine::general_purpose::STANDARD.encode(&req.body).into()),
    };
    args.insert("http".into(), Value::Object(http));
    Ok(Value::Object(args))
}

/// The response of a route whose invocation `id` ended with `result`.
pub(crate) fn route_response(result: &Result<Value, InvokeError>, id: &str, debug: bool) -> Response {
    let resp = match result {
        Ok(Value::Object(o)) if o.get(RESPONSE_MARK) == Some(&Value::Bool(true)) => web_response(o)
            .unwrap_or_else(|m| hidden_error(500, "internal", &format!("invalid web response: {m}"), debug)),
        Ok(v) => Response::json(200, serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec())),
        Err(InvokeError::Action(m)) => Response::error(400, "action", m),
        Err(e) => hidden_error(500, e.kind(), &e.to_string(), debug),
    };
    resp.with_header(INVOCATION_HEADER, id.to_string())
}

/// The response of a route whose invocation could not start.
pub(crate) fn route_failure(kind: &str, message: &str, id: &str, debug: bool) -> Response {
    let status = error_status(kind);
    let resp = match status {
        503 => Response::error(503, kind, message).with_header("Retry-After", "1"),
        // The route names an action that is gone: the site's fault, not the client's.
        _ => hidden_error(500, kind, message, debug),
    };
    resp.with_header(INVOCATION_HEADER, id.to_string())
}

/// A 5xx whose details only debug mode shows.
fn hidden_error(status: u16, kind: &str, message: &str, debug: bool) -> Response {
    if debug {
        Response::error(status, kind, message)
    } else {
        Response::error(status, "internal", "the action failed; its invocation record has the details")
    }
}

/// Builds the response `http.response` described.
fn web_response(o: &Map<String, Value>) -> Result<Response, String> {
    let status = o
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .ok_or("status must be a whole number from 100 to 599")? as u16;
    let text = Cow::Borrowed("text/plain; charset=utf-8");
    let (mut content_type, body) = match (o.get("body"), o.get("body_base64"), o.get("json")) {
        (Some(Value::String(b)), None, None) => (text, b.as_bytes().to_vec()),
        (None, Some(Value::String(b)), None) => {
            (text, base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("body: {e}"))?)
        }
        (None, None, Some(v)) => (Cow::Borrowed("application/json"), serde_json::to_vec(v).map_err(|e| e.to_string())?),
        (None, None, None) => (text, Vec::new()),
        _ => return Err("give one body: body (text), body_base64 or json".into()),
    };
    let mut headers = Vec::new();
    if let Some(h) = o.get("headers") {
        let h = match h {
            Value::Object(h) => h.clone(),
            // An empty Lua table converts to an empty array.
            Value::Array(a) if a.is_empty() => Map::new(),
            _ => return Err("headers must be a table of name = value".into()),
        };
        for (name, value) in h {
            let Value::String(value) = value else { return Err(format!("header '{name}' must have a text value")) };
            if !valid_header_name(&name) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!("header '{name}' is not a valid header field"));
            }
            let lower = name.to_ascii_lowercase();
            if matches!(lower.as_str(), "content-length" | "transfer-encoding" | "connection") {
                return Err(format!("header '{name}' is set by the server"));
            }
            if lower == "content-type" {
                content_type = Cow::Owned(value);
            } else {
                headers.push((Cow::Owned(name), value));
            }
        }
    }
    Ok(Response { status, content_type, headers, body })
}

/// An HTTP token (RFC 9110): the characters a header name may have.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use serde_json::json;

    fn req(method: Method, target: &str, headers: &[(&str, &str)], body: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method,
            path: path.into(),
            query: query.into(),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
            authorization: None,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn args_merge_query_then_body_then_params() {
        let r = req(
            Method::Post,
            "/users/7?id=q&page=2&a=1&a=2",
            &[("host", "x.test"), ("content-type", "application/json"), ("x-k", "1"), ("x-k", "2")],
            r#"{"id": "body", "name": "Ann", "page": 3}"#,
        );
        let a = route_args(&r, "/users/:id", &[("id".into(), "7".into())]).unwrap();
        assert_eq!((&a["id"], &a["name"], &a["page"], &a["a"]), (&json!("7"), &json!("Ann"), &json!(3), &json!("2")));
        let h = &a["http"];
        assert_eq!((&h["method"], &h["path"], &h["route"]), (&json!("POST"), &json!("/users/7"), &json!("/users/:id")));
        assert_eq!((&h["host"], &h["query"]), (&json!("x.test"), &json!("id=q&page=2&a=1&a=2")));
        assert_eq!(h["headers"]["x-k"], json!("1, 2"));
        assert_eq!(h["params"], json!({"id": "7"}));
        assert_eq!(h["body"], json!(r#"{"id": "body", "name": "Ann", "page": 3}"#));
    }

    #[test]
    fn form_bodies_and_odd_bodies() {
        let form = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let a = route_args(&req(Method::Post, "/f", &form, "a=1&b=x+y%21"), "/f", &[]).unwrap();
        assert_eq!((&a["a"], &a["b"]), (&json!("1"), &json!("x y!")));
        // A JSON array is not merged, only passed on.
        let a = route_args(&req(Method::Post, "/f", &[], "[1]"), "/f", &[]).unwrap();
        assert_eq!(a["http"]["body"], json!("[1]"));
        // No content type, but a JSON object: merged.
        let a = route_args(&req(Method::Post, "/f", &[], " {\"k\": true}"), "/f", &[]).unwrap();
        assert_eq!(a["k"], json!(true));
        let json_type = [("content-type", "application/json")];
        assert_eq!(route_args(&req(Method::Post, "/f", &json_type, "{bad"), "/f", &[]).unwrap_err().status, 400);
        // Nesting: Lua takes 100 levels below the arguments; deeper is a
        // 400 that says so (not a failed run), as for blocking runs.
        let nest = |depth: usize| format!(r#"{{"a": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        assert!(route_args(&req(Method::Post, "/f", &json_type, &nest(99)), "/f", &[]).is_ok());
        for depth in [100, 120, 200] {
            let err = route_args(&req(Method::Post, "/f", &json_type, &nest(depth)), "/f", &[]).unwrap_err();
            assert_eq!(err.status, 400, "{depth}");
            let body = String::from_utf8_lossy(&err.body).into_owned();
            assert!(body.contains("nested deeper than 100") || body.contains("recursion limit"), "{depth}: {body}");
        }
        let mut binary = req(Method::Put, "/f", &[("content-type", "image/png")], "");
        binary.body = vec![0xff, 0x00, 0x41];
        let a = route_args(&binary, "/f", &[]).unwrap();
        assert_eq!(a["http"]["body_base64"], json!("/wBB"));
    }

    #[test]
    fn results_become_responses() {
        let ok = route_response(&Ok(json!({"a": 1})), "id1", false);
        assert_eq!((ok.status, ok.body.as_slice()), (200, &br#"{"a":1}"#[..]));
        assert!(ok.headers.iter().any(|(k, v)| k == INVOCATION_HEADER && v == "id1"));
        let bad = route_response(&Err(InvokeError::Action("no such item".into())), "i", false);
        assert_eq!(bad.status, 400);
        assert!(String::from_utf8_lossy(&bad.body).contains("no such item"));
        let err = route_response(&Err(InvokeError::Runtime("t:3: secret detail".into())), "i", false);
        assert_eq!(err.status, 500);
        assert!(!String::from_utf8_lossy(&err.body).contains("secret"));
        let err = route_response(&Err(InvokeError::Runtime("t:3: secret detail".into())), "i", true);
        assert!(String::from_utf8_lossy(&err.body).contains("secret detail"));
    }

    #[test]
    fn web_responses_set_status_headers_and_bodies() {
        let v = json!({RESPONSE_MARK: true, "status": 201, "headers": {"Location": "/items/1", "Content-Type": "image/png"},
                       "body_base64": "/wBB"});
        let r = route_response(&Ok(v), "i", false);
        assert_eq!((r.status, r.content_type.as_ref(), r.body.as_slice()), (201, "image/png", &[0xff, 0, 0x41][..]));
        assert!(r.headers.iter().any(|(k, v)| k == "Location" && v == "/items/1"));
        let v = json!({RESPONSE_MARK: true, "status": 202, "headers": [], "json": {"queued": true}});
        let r = route_response(&Ok(v), "i", false);
        assert_eq!(
            (r.status, r.content_type.as_ref(), r.body.as_slice()),
            (202, "application/json", &br#"{"queued":true}"#[..])
        );
        for bad in [
            json!({RESPONSE_MARK: true, "status": 99}),
            json!({RESPONSE_MARK: true, "status": 200, "headers": {"Bad Name": "x"}}),
            json!({RESPONSE_MARK: true, "status": 200, "headers": {"X": "a\r\nInjected: 1"}}),
            json!({RESPONSE_MARK: true, "status": 200, "headers": {"Content-Length": "5"}}),
        ] {
            assert_eq!(route_response(&Ok(bad.clone()), "i", false).status, 500, "{bad}");
        }
    }
}
