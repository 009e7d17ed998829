//! Results and records as HTTP responses, for the API and the routes alike.
//!
//! - A failed invocation is `{"error": {"kind", "message"}}` with the
//!   status of its kind ([`error_status`]).
//! - A stored record answers `GET /invocation/:id` ([`record_response`]).
//! - On a route, a result becomes the response (a value as JSON, or the
//!   response `http.response` described), and a failure's details are
//!   hidden unless `Server { debug = true }` ([`route_response`],
//!   [`route_failure`]); every route answer names its invocation in
//!   `X-SL-Invocation`.
//! - Failed store calls and overload are the same on every path
//!   ([`store_error`], [`overloaded`]).

use std::borrow::Cow;

use base64::Engine;
use serde_json::{Map, Value};
use sl_store::{InvocationRecord, InvocationStatus, StoreError};

use crate::http::Response;
use crate::reactor::json_within;
use crate::sandbox::InvokeError;

/// The key `http.response` marks its tables with.
const RESPONSE_MARK: &str = "$sl_response";

/// Why an action may not answer with a 1xx status (after "status N is").
const INFORMATIONAL: &str = "informational (1xx), an interim response the server alone sends; an action's \
                             response needs a final status, 200 to 599";

/// Header naming the invocation that answered a route.
const INVOCATION_HEADER: &str = "X-SL-Invocation";

/// The most bytes a scalar value takes as JSON (a string's characters may
/// each become `\u00XX`), or `None` for an array or object.
pub(crate) fn worst_json_len(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.len().saturating_mul(6).saturating_add(2)),
        Value::Null | Value::Bool(_) => Some(5),
        Value::Number(_) => Some(40),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The response to a failed store call.
pub(crate) fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::AlreadyExists(_) => Response::error(409, "conflict", &e.to_string()),
        StoreError::NotFound(_) => Response::error(404, "not_found", &e.to_string()),
        StoreError::Conflict { .. } => Response::error(409, "conflict", &format!("{e}; retry the update")),
        StoreError::LeaseLost { .. } => Response::error(409, "conflict", &format!("{e}; retry")),
        StoreError::Unavailable(_) => {
            Response::error(503, "unavailable", &e.to_string()).with_header("Retry-After", "1")
        }
        StoreError::Corrupt(_) => Response::error(500, "internal", &e.to_string()),
    }
}

/// 503 with `Retry-After`: the server has too much to do.
pub(crate) fn overloaded(message: &str) -> Response {
    Response::error(503, "overloaded", &format!("{message}; retry later")).with_header("Retry-After", "1")
}

/// `v` as a JSON response.
pub(crate) fn json_response<T: serde::Serialize>(status: u16, v: &T) -> Response {
    Response::json(status, serde_json::to_vec(v).unwrap_or_default())
}

/// The HTTP response for an invocation that failed (a successful one is
/// its result as JSON).
pub(crate) fn error_response(e: &InvokeError) -> Response {
    Response::error(error_status(e.kind()), e.kind(), &e.to_string())
}

/// Status code of an error kind.
pub(crate) fn error_status(kind: &str) -> u16 {
    match kind {
        "action" | "bad_request" | "compile" | "library" => 400,
        "not_found" => 404,
        "conflict" => 409,
        "unavailable" => 503,
        _ => 500,
    }
}

/// The response for a stored invocation record; a result over `limit`
/// bytes of JSON (`Server.max_response`) is a `too_large` error.
pub(crate) fn record_response(rec: &InvocationRecord, limit: usize) -> Response {
    match rec.status {
        InvocationStatus::Succeeded => {
            let v = rec.result.as_ref().unwrap_or(&Value::Null);
            match json_within(v, limit) {
                Some(body) => Response::json(200, body),
                None => error_response(&InvokeError::TooLarge(limit)),
            }
        }
        InvocationStatus::Failed => {
            let (kind, message) =
                rec.error.as_ref().map(|e| (e.kind.as_str(), e.message.as_str())).unwrap_or(("runtime", ""));
            Response::error(error_status(kind), kind, message)
        }
        InvocationStatus::Queued | InvocationStatus::Running => {
            let body = serde_json::json!({"id": rec.id, "status": rec.status.as_str(), "action": rec.action});
            Response::json(202, body.to_string().into_bytes())
        }
    }
}

/// The response of a route whose invocation `id` ended with `result`.
///
/// A result marked as a web response that is not a valid one (`http.response`
/// checks what it is given, but a table can be marked by hand) becomes a
/// runtime error, in `result` too, so that the invocation record says why
/// the client got a 500.
///
/// An answer over `limit` bytes (`Server.max_response`) becomes a
/// `too_large` error, in `result` too.
pub(crate) fn route_response(result: &mut Result<Value, InvokeError>, id: &str, debug: bool, limit: usize) -> Response {
    if let Ok(Value::Object(o)) = &*result {
        if o.get(RESPONSE_MARK) == Some(&Value::Bool(true)) {
            match web_response(o, limit) {
                Ok(resp) => return resp.with_header(INVOCATION_HEADER, id.to_string()),
                Err(WebError::TooLarge) => *result = Err(InvokeError::TooLarge(limit)),
                Err(WebError::Invalid(m)) => *result = Err(InvokeError::Runtime(format!("invalid web response: {m}"))),
            }
        }
    }
    if let Ok(v) = &*result {
        match json_within(v, limit) {
            Some(body) => return Response::json(200, body).with_header(INVOCATION_HEADER, id.to_string()),
            None => *result = Err(InvokeError::TooLarge(limit)),
        }
    }
    let resp = match &*result {
        Ok(_) => unreachable!("answered above"),
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

/// Why `http.response`'s table makes no response.
enum WebError {
    Invalid(String),
    /// Its body is over the response limit.
    TooLarge,
}

impl From<String> for WebError {
    fn from(m: String) -> Self {
        Self::Invalid(m)
    }
}

impl From<&str> for WebError {
    fn from(m: &str) -> Self {
        Self::Invalid(m.to_string())
    }
}

/// Builds the response `http.response` described, with a body of at most
/// `limit` bytes.
fn web_response(o: &Map<String, Value>, limit: usize) -> Result<Response, WebError> {
    let status = o
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .ok_or("status must be a whole number from 200 to 599")? as u16;
    if status < 200 {
        // A client reads past an interim response to the next one, which
        // the action could forge in the body.
        return Err(format!("status {status} is {INFORMATIONAL}").into());
    }
    let text = Cow::Borrowed("text/plain; charset=utf-8");
    let (mut content_type, body) = match (o.get("body"), o.get("body_base64"), o.get("json")) {
        (Some(Value::String(b)), None, None) if b.len() > limit => return Err(WebError::TooLarge),
        (Some(Value::String(b)), None, None) => (text, b.as_bytes().to_vec()),
        // Base64 takes 4 bytes for 3.
        (None, Some(Value::String(b)), None) if b.len() / 4 * 3 > limit => return Err(WebError::TooLarge),
        (None, Some(Value::String(b)), None) => {
            (text, base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("body: {e}"))?)
        }
        (None, None, Some(v)) => (Cow::Borrowed("application/json"), json_within(v, limit).ok_or(WebError::TooLarge)?),
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
            let Value::String(value) = value else {
                return Err(format!("header '{name}' must have a text value").into());
            };
            if !valid_header_name(&name) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!("header '{name}' is not a valid header field").into());
            }
            let lower = name.to_ascii_lowercase();
            if matches!(lower.as_str(), "content-length" | "transfer-encoding" | "connection") {
                return Err(format!("header '{name}' is set by the server").into());
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
    use serde_json::json;

    #[test]
    fn results_become_responses() {
        let ok = route_response(&mut Ok(json!({"a": 1})), "id1", false, usize::MAX);
        assert_eq!((ok.status, ok.body.as_slice()), (200, &br#"{"a":1}"#[..]));
        assert!(ok.headers.iter().any(|(k, v)| k == INVOCATION_HEADER && v == "id1"));
        let bad = route_response(&mut Err(InvokeError::Action("no such item".into())), "i", false, usize::MAX);
        assert_eq!(bad.status, 400);
        assert!(String::from_utf8_lossy(&bad.body).contains("no such item"));
        let err = route_response(&mut Err(InvokeError::Runtime("t:3: secret detail".into())), "i", false, usize::MAX);
        assert_eq!(err.status, 500);
        assert!(!String::from_utf8_lossy(&err.body).contains("secret"));
        let err = route_response(&mut Err(InvokeError::Runtime("t:3: secret detail".into())), "i", true, usize::MAX);
        assert!(String::from_utf8_lossy(&err.body).contains("secret detail"));
    }

    #[test]
    fn web_responses_set_status_headers_and_bodies() {
        let v = json!({RESPONSE_MARK: true, "status": 201, "headers": {"Location": "/items/1", "Content-Type": "image/png"},
                       "body_base64": "/wBB"});
        let r = route_response(&mut Ok(v), "i", false, usize::MAX);
        assert_eq!((r.status, r.content_type.as_ref(), r.body.as_slice()), (201, "image/png", &[0xff, 0, 0x41][..]));
        assert!(r.headers.iter().any(|(k, v)| k == "Location" && v == "/items/1"));
        let v = json!({RESPONSE_MARK: true, "status": 202, "headers": [], "json": {"queued": true}});
        let r = route_response(&mut Ok(v), "i", false, usize::MAX);
        assert_eq!(
            (r.status, r.content_type.as_ref(), r.body.as_slice()),
            (202, "application/json", &br#"{"queued":true}"#[..])
        );
        for bad in [
            json!({RESPONSE_MARK: true, "status": 99}),
            json!({RESPONSE_MARK: true, "status": 100, "body": "HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\n\r\n"}),
            json!({RESPONSE_MARK: true, "status": 101, "headers": {"Upgrade": "websocket"}}),
            json!({RESPONSE_MARK: true, "status": 103}),
            json!({RESPONSE_MARK: true, "status": 199}),
            json!({RESPONSE_MARK: true, "status": 600}),
            json!({RESPONSE_MARK: true, "status": 200, "headers": {"Bad Name": "x"}}),
            json!({RESPONSE_MARK: true, "status": 200, "headers": {"X": "a\r\nInjected: 1"}}),
            json!({RESPONSE_MARK: true, "status": 200, "headers": {"Content-Length": "5"}}),
        ] {
            let mut result = Ok(bad.clone());
            assert_eq!(route_response(&mut result, "i", false, usize::MAX).status, 500, "{bad}");
            // The record says why.
            let message = result.unwrap_err().to_string();
            assert!(message.starts_with("invalid web response: "), "{bad}: {message}");
        }
        let mut result = Ok(json!({RESPONSE_MARK: true, "status": 101}));
        let r = route_response(&mut result, "i", true, usize::MAX);
        assert_eq!((r.status, r.headers.last()), (500, Some(&(Cow::Borrowed(INVOCATION_HEADER), "i".to_string()))));
        let message = result.unwrap_err().to_string();
        assert!(message.contains("status 101 is informational (1xx)"), "{message}");
        assert!(String::from_utf8_lossy(&r.body).contains(&message), "debug mode shows it");
    }

    #[test]
    fn failures_that_could_not_start_hide_their_details_but_overload_says_so() {
        let r = route_failure("not_found", "no action named 'x'", "i", false);
        assert_eq!(r.status, 500);
        assert!(!String::from_utf8_lossy(&r.body).contains("'x'"));
        let r = route_failure("unavailable", "the store is down", "i", false);
        assert_eq!(r.status, 503);
        assert!(r.headers.iter().any(|(k, v)| k == "Retry-After" && v == "1"));
        assert!(r.headers.iter().any(|(k, v)| k == INVOCATION_HEADER && v == "i"));
    }

    #[test]
    fn answers_over_the_limit_are_too_large_errors_found_within_the_limit() {
        let big = json!("\u{1}".repeat(1000)); // 6,002 bytes as JSON
        let mut result = Ok(big.clone());
        let r = route_response(&mut result, "i", true, 6001);
        assert_eq!(r.status, 500);
        assert!(String::from_utf8_lossy(&r.body).contains("too_large"));
        assert!(matches!(result, Err(InvokeError::TooLarge(6001))));
        let mut result = Ok(big.clone());
        assert_eq!(route_response(&mut result, "i", true, 6002).body.len(), 6002);
        // Web responses: a text body, a base64 body and a JSON body.
        for (body, limit) in [
            (json!({RESPONSE_MARK: true, "status": 200, "body": "x".repeat(101)}), 100),
            (json!({RESPONSE_MARK: true, "status": 200, "body_base64": "eHh4".repeat(40)}), 100),
            (json!({RESPONSE_MARK: true, "status": 200, "json": vec!["x"; 50]}), 100),
        ] {
            let mut result = Ok(body.clone());
            assert_eq!(route_response(&mut result, "i", false, limit).status, 500, "{body}");
            assert!(matches!(result, Err(InvokeError::TooLarge(100))), "{body}");
            let mut result = Ok(body.clone());
            assert_ne!(route_response(&mut result, "i", false, 1000).status, 500, "{body}");
        }
        // A stored result alike.
        let mut rec = InvocationRecord::queued("id".into(), "a".into(), Value::Null, true, 0);
        rec.status = InvocationStatus::Succeeded;
        rec.result = Some(big);
        let r = record_response(&rec, 100);
        assert_eq!((r.status, String::from_utf8_lossy(&r.body).contains("too_large")), (500, true));
        assert_eq!(record_response(&rec, 10_000).status, 200);
    }

    #[test]
    fn the_worst_json_length_of_a_scalar_bounds_its_json() {
        for v in
            [json!("\u{1}\u{7f}é\"\\"), json!(null), json!(false), json!(-1.2345678901234567e-300), json!(u64::MAX)]
        {
            assert!(serde_json::to_vec(&v).unwrap().len() <= worst_json_len(&v).unwrap(), "{v}");
        }
        assert_eq!(worst_json_len(&json!([1])), None);
    }

    #[test]
    fn records_answer_by_status() {
        let mut rec = InvocationRecord::queued("id".into(), "a".into(), Value::Null, true, 0);
        assert_eq!(record_response(&rec, usize::MAX).status, 202);
        rec.status = InvocationStatus::Succeeded;
        rec.result = Some(json!({"k": 1}));
        assert_eq!(record_response(&rec, usize::MAX).body, br#"{"k":1}"#);
        rec.status = InvocationStatus::Failed;
        rec.error = Some(sl_store::InvocationError { kind: "not_found".into(), message: "gone".into() });
        assert_eq!(record_response(&rec, usize::MAX).status, 404);
    }
}
