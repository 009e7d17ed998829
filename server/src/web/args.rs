//! The arguments of a route invocation, built from the request.
//!
//! `args` merges, later sources winning on equal keys:
//! 1. query parameters (`?a=1&b=2`, strings; a repeated key keeps its last value),
//! 2. the body's fields: a JSON object (`Content-Type: application/json`,
//!    or no content type and a body that starts with `{`) or a form
//!    (`application/x-www-form-urlencoded`, strings),
//! 3. route parameters (`:id`, `*rest`, strings).
//!
//! `args.http` (always set, overriding any `http` field from the sources
//! above) holds `method`, `path` (as sent), `host` (the `Host` header, or
//! the authority of an absolute-form target, which replaces it), `route`
//! (the pattern), `query` (the raw query string), `headers` (names in lower
//! case; repeated headers joined with `, `), `params` (the route
//! parameters), and `body` (the raw body as text) or `body_base64` when the
//! body is not UTF-8.

use base64::Engine;
use serde_json::{Map, Value};

use crate::http::{Request, Response};
use crate::sandbox;

/// The arguments of a route invocation (see the module docs).
pub(super) fn route_args(req: &Request, pattern: &str, params: &[(String, String)]) -> Result<Value, Response> {
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
    http.insert("host".into(), req.host().into());
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
            authority: None,
            body: body.as_bytes().to_vec(),
            keep_alive: true,
            authorization: None,
            idempotency_key: None,
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
}
