//! Routes end to end: the real `slserver` with a routes listener, a small
//! REST app built from actions, web responses, host routing, and the
//! routes API with its errors.

mod common;

use common::{TestServer, HELLO};
use serde_json::json;

/// A REST app over items kept in the warm instance's memory (one reactor,
/// `warm_instances = 1`, so every request sees the same instance).
const ITEMS: &str = r#"
items = items or {}
next_id = next_id or 1
function main(args)
  local m = args.http.method
  if m == 'GET' and args.id == nil then
    local out = {}
    for id, item in pairs(items) do
      if args.q == nil or item.name:find(args.q, 1, true) then out[#out + 1] = item end
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
  end
  if m == 'POST' then
    if type(args.name) ~= 'string' then return nil, 'name is required' end
    local item = { id = next_id, name = args.name }
    items[tostring(next_id)] = item
    next_id = next_id + 1
    return http.response{ status = 201, headers = { Location = '/items/' .. item.id }, body = item }
  end
  local item = items[args.id]
  if item == nil then
    return http.response{ status = 404, body = { error = 'no item ' .. args.id } }
  end
  if m == 'GET' then return item end
  if m == 'PUT' then
    item.name = args.name or item.name
    return item
  end
  if m == 'DELETE' then
    items[args.id] = nil
    return http.response(204)
  end
end
"#;

fn server() -> TestServer {
    TestServer::start("Routes { port = 0 }\nLimits { warm_instances = 1 }")
}

#[test]
fn a_rest_app_served_through_routes() {
    let s = server();
    assert_eq!(s.create("items", ITEMS, "").status, 201);
    for (m, p) in
        [("GET", "/items"), ("POST", "/items"), ("GET", "/items/:id"), ("PUT", "/items/:id"), ("DELETE", "/items/:id")]
    {
        let r = s.route(m, p, "items", "");
        assert_eq!(r.status, 201, "{m} {p}: {}", r.text());
    }
    let json_body = ["Content-Type: application/json"];
    let r = s.web("POST", "/items", &json_body, br#"{"name": "apple"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/items/1"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json(), json!({"id": 1, "name": "apple"}));
    assert!(r.header("X-SL-Invocation").is_some());
    // A form body works too.
    let form = ["Content-Type: application/x-www-form-urlencoded"];
    assert_eq!(s.web("POST", "/items", &form, b"name=banana+split").status, 201);
    assert_eq!(s.web("GET", "/items/2", &[], b"").json(), json!({"id": 2, "name": "banana split"}));
    // Query parameters.
    let r = s.web("GET", "/items?q=app", &[], b"");
    assert_eq!(r.json(), json!([{"id": 1, "name": "apple"}]));
    assert_eq!(s.web("GET", "/items", &[], b"").json().as_array().unwrap().len(), 2);
    // Route params win over the body's fields.
    let r = s.web("PUT", "/items/1", &json_body, br#"{"id": "2", "name": "pear"}"#);
    assert_eq!(r.json(), json!({"id": 1, "name": "pear"}));
    // nil, message is a 400.
    let r = s.web("POST", "/items", &json_body, b"{}");
    assert_eq!((r.status, r.error_kind()), (400, "action".to_string()));
    assert!(r.text().contains("name is required"));
    let r = s.web("DELETE", "/items/1", &[], b"");
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(s.web("GET", "/items/1", &[], b"").status, 404);
    // A method without a route: 405 with the methods that have one.
    let r = s.web("PATCH", "/items/2", &[], b"");
    assert_eq!((r.status, r.header("Allow")), (405, Some("DELETE, GET, HEAD, PUT")));
    assert_eq!(s.web("GET", "/nothing/here", &[], b"").status, 404);
    assert_eq!(s.web("GET", "/items/%zz", &[], b"").status, 400);
    // The API is not reachable through the routes listener, nor routes through the API.
    assert_eq!(s.web("GET", "/actions", &[], b"").status, 404);
    assert_eq!(s.get("/items").status, 404);
    // Every route invocation has a record (written in batches, soon after).
    let start = std::time::Instant::now();
    loop {
        let list = s.get("/invocations?action=items&limit=100").json();
        if list.as_array().unwrap().len() >= 9 {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "records missing: {list}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn web_responses_errors_and_http_details() {
    let s = TestServer::start("Routes { port = 0 }");
    let png: &[u8] = &[0x89, b'P', b'N', b'G', 0, 0xff];
    s.create(
        "img",
        r#"function main() return http.response{status = 200, headers = {['Content-Type'] = 'image/png',
             ['Cache-Control'] = 'max-age=60'}, body = '\137PNG\0\255'} end"#,
        "",
    );
    s.create("echo", "function main(a) return a end", "");
    s.create("boom", "function main() error('secret internal detail') end", "");
    s.create("spin", "function main() while true do end end", r#""timeout": 100"#);
    s.create(
        "badhdr",
        "function main() return http.response{status = 200, headers = {['X'] = 'a\\r\\nEvil: 1'}} end",
        "",
    );
    s.create("text", "function main(a) return http.response(418, 'short and stout') end", "");
    for (p, a) in [
        ("/img", "img"),
        ("/echo/:x/*rest", "echo"),
        ("/boom", "boom"),
        ("/spin", "spin"),
        ("/bad", "badhdr"),
        ("/tea", "text"),
    ] {
        assert_eq!(s.route("*", p, a, "").status, 201);
    }
    let r = s.web("GET", "/img", &[], b"");
    assert_eq!((r.status, r.header("Content-Type"), r.body.as_slice()), (200, Some("image/png"), png));
    assert_eq!(r.header("Cache-Control"), Some("max-age=60"));
    let r = s.web("GET", "/tea", &[], b"");
    assert_eq!(
        (r.status, r.header("Content-Type"), r.text().as_str()),
        (418, Some("text/plain; charset=utf-8"), "short and stout")
    );
    // args.http carries the request.
    let r = s.web("POST", "/echo/a%2Fb/c/d?k=v", &["X-Thing: 1", "Content-Type: text/plain"], b"raw text");
    let a = r.json();
    assert_eq!((&a["x"], &a["rest"], &a["k"]), (&json!("a/b"), &json!("c/d"), &json!("v")));
    let h = &a["http"];
    assert_eq!(
        (&h["method"], &h["path"], &h["route"]),
        (&json!("POST"), &json!("/echo/a%2Fb/c/d"), &json!("/echo/:x/*rest"))
    );
    assert_eq!((&h["query"], &h["body"], &h["headers"]["x-thing"]), (&json!("k=v"), &json!("raw text"), &json!("1")));
    // Errors and limits: 500 without details (not in debug mode); the record has them.
    let r = s.web("GET", "/boom", &[], b"");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("secret"), "{}", r.text());
    let id = r.header("X-SL-Invocation").unwrap().to_string();
    let rec = s.get(&format!("/invocation/{id}")).json();
    assert!(rec["error"]["message"].as_str().unwrap_or("").contains("secret internal detail"), "{rec}");
    assert_eq!(s.web("GET", "/spin", &[], b"").status, 500);
    // A header that would inject another header is refused.
    let r = s.web("GET", "/bad", &[], b"");
    assert_eq!(r.status, 500);
    assert!(r.header("Evil").is_none());
    // Still serving.
    assert_eq!(s.web("GET", "/tea", &[], b"").status, 418);
}

#[test]
fn debug_mode_shows_error_details() {
    let s = TestServer::start("Routes { port = 0 }\nServer { debug = true }");
    s.create("boom", "function main() error('visible detail') end", "");
    s.route("GET", "/boom", "boom", "");
    let r = s.web("GET", "/boom", &[], b"");
    assert_eq!((r.status, r.error_kind()), (500, "runtime".to_string()));
    assert!(r.text().contains("visible detail"));
}

#[test]
fn host_routing_serves_several_sites() {
    let s = TestServer::start("Routes { port = 0 }");
    s.create("a", "function main() return 'site a' end", "");
    s.create("b", "function main() return 'site b' end", "");
    s.create("any", "function main() return 'any site' end", "");
    assert_eq!(s.route("GET", "/", "a", "a.example").status, 201);
    assert_eq!(s.route("GET", "/", "b", "B.Example").status, 201);
    assert_eq!(s.route("GET", "/", "any", "").status, 201);
    assert_eq!(s.route("GET", "/only-any", "any", "").status, 201);
    let get = |host: &str, path: &str| s.web("GET", path, &[&format!("Host: {host}")], b"").json();
    assert_eq!(get("a.example", "/"), json!("site a"));
    assert_eq!(get("b.example:8081", "/"), json!("site b"));
    assert_eq!(get("c.example", "/"), json!("any site"));
    // A host's routes fall back to any-host routes for paths they do not cover.
    assert_eq!(get("a.example", "/only-any"), json!("any site"));
    let list = s.get("/routes").json();
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert!(list.as_array().unwrap().iter().any(|r| r["host"] == "b.example"), "{list}");
}

#[test]
fn the_routes_api_checks_what_it_is_given() {
    let s = TestServer::start("Routes { port = 0 }");
    s.create("hello", HELLO, "");
    assert_eq!(s.route("GET", "/users/:id", "hello", "").status, 201);
    // Same shape, other param name: a conflict naming the existing route.
    let r = s.route("GET", "/users/:uid", "hello", "");
    assert_eq!((r.status, r.error_kind()), (409, "conflict".to_string()));
    assert!(r.text().contains("GET /users/:id"), "{}", r.text());
    // Static beats param: not a conflict.
    assert_eq!(s.route("GET", "/users/new", "hello", "").status, 201);
    for (method, path, action, kind, status) in [
        ("GET", "users", "hello", "bad_request", 400),
        ("GET", "/a//b", "hello", "bad_request", 400),
        ("GET", "/*rest/x", "hello", "bad_request", 400),
        ("FETCH", "/x", "hello", "bad_request", 400),
        ("GET", "/x", "no_such_action", "not_found", 404),
        ("GET", "/x", "bad name", "bad_request", 400),
    ] {
        let r = s.route(method, path, action, "");
        assert_eq!((r.status, r.error_kind()), (status, kind.to_string()), "{method} {path} {action}: {}", r.text());
    }
    assert_eq!(s.route("GET", "/x", "hello", "bad host!").status, 400);
    assert_eq!(s.post("/routes", "{\"method\": \"GET\"}").status, 400);
    // Served at once, and gone at once when deleted.
    assert_eq!(s.web("GET", "/users/new?name=Ann", &[], b"").json(), json!("Hello Ann"));
    let r = s.request("DELETE", "/routes?method=GET&path=%2Fusers%2Fnew", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.request("DELETE", "/routes?method=GET&path=%2Fusers%2Fnew", None).status, 404);
    assert_eq!(s.request("DELETE", "/routes?method=GET", None).status, 400);
    // Now the param route answers.
    assert_eq!(s.web("GET", "/users/new", &[], b"").json(), json!("Hello World"));
    // The routes survive a restart (they are in the store).
    let s = s.restart();
    let list = s.get("/routes").json();
    assert_eq!(
        list,
        json!([{"method": "GET", "host": "", "path": "/users/:id", "action": "hello",
                             "created": list[0]["created"]}])
    );
    assert_eq!(s.web("GET", "/users/1", &[], b"").status, 200);
}

#[test]
fn routes_added_through_one_server_are_served_by_another() {
    let tmp = tempfile::tempdir().unwrap();
    let a = TestServer::start_in(tmp.path(), "Routes { port = 0 }");
    a.create("hello", HELLO, "");
    // A second server on the same SQLite file (as servers share a MongoDB).
    let b = TestServer::start_in(tmp.path(), "Routes { port = 0 }");
    assert_eq!(a.route("GET", "/hi", "hello", "").status, 201);
    let start = std::time::Instant::now();
    loop {
        let r = b.web("GET", "/hi", &[], b"");
        if r.status == 200 {
            assert_eq!(r.json(), json!("Hello World"));
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "server b never saw the route");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A route's client gets the invocation's id in `X-SL-Invocation` and may
/// ask for its record at once, before the store has it.
#[test]
fn records_of_route_runs_can_be_read_at_once() {
    let s = TestServer::start("Routes { port = 0 }");
    s.create("hi", "function main(a) return {n = tonumber(a.n)} end", "");
    assert_eq!(s.route("GET", "/hi", "hi", "").status, 201);
    for i in 0..50 {
        let r = s.web("GET", &format!("/hi?n={i}"), &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r.header("X-SL-Invocation").expect("the invocation id").to_string();
        let rec = s.get(&format!("/invocation/{id}?wait=0"));
        assert_eq!(rec.status, 200, "request {i}: {}", rec.text());
        assert_eq!(rec.json(), json!({"n": i}));
    }
}

/// A request whose target is an absolute URI is routed by the URI's host,
/// whatever its `Host` header says (RFC 9112, 3.2.2: the authority replaces
/// Host), with the path and query taken from the URI; the action sees that
/// host in `args.http.host` and `args.http.headers.host`. Before, such a
/// request was refused with 400.
#[test]
fn absolute_form_targets_are_routed_by_their_host() {
    let s = TestServer::start("Routes { port = 0 }");
    s.create("a", "function main() return 'site a' end", "");
    s.create("any", "function main() return 'any site' end", "");
    s.create("echo", "function main(a) return a end", "");
    assert_eq!(s.route("GET", "/", "a", "a.example").status, 201);
    assert_eq!(s.route("GET", "/", "any", "").status, 201);
    assert_eq!(s.route("*", "/echo/:x/*rest", "echo", "").status, 201);
    let get = |target: &str, host: &str| s.web("GET", target, &[&format!("Host: {host}")], b"");
    assert_eq!(get("http://a.example/", "c.example").json(), json!("site a"));
    assert_eq!(get("http://A.Example:8081", "c.example").json(), json!("site a"));
    assert_eq!(get("http://c.example/", "a.example").json(), json!("any site"));
    assert_eq!(get("/", "a.example").json(), json!("site a"), "origin-form still routes by Host");
    let r = s.web("POST", "http://b.example:8081/echo/a%2Fb/c/d?k=v", &["Host: a.example", "X-T: 1"], b"");
    let a = r.json();
    assert_eq!((&a["x"], &a["rest"], &a["k"]), (&json!("a/b"), &json!("c/d"), &json!("v")), "{a}");
    let h = &a["http"];
    assert_eq!(
        (&h["path"], &h["query"], &h["host"]),
        (&json!("/echo/a%2Fb/c/d"), &json!("k=v"), &json!("b.example:8081"))
    );
    assert_eq!((&h["headers"]["host"], &h["headers"]["x-t"]), (&json!("b.example:8081"), &json!("1")), "{h}");
    assert_eq!(s.web("GET", "http://user@a.example/", &[], b"").status, 400);
}

/// `OPTIONS *` on the routes listener: 204 with the methods the routes for
/// the request's host (its own and the any-host ones) serve, `HEAD` with
/// `GET`, every method if a `*` route is among them, and `OPTIONS` itself.
/// An absolute URI with an empty path means the same (RFC 9112, 3.2.4).
/// Before, 400.
#[test]
fn options_asterisk_lists_the_methods_of_the_routes() {
    let s = TestServer::start("Routes { port = 0 }");
    s.create("hello", HELLO, "");
    for (method, path, host) in [
        ("GET", "/", "a.example"),
        ("POST", "/items", ""),
        ("DELETE", "/items/:id", "b.example"),
        ("*", "/x", "z.example"),
    ] {
        assert_eq!(s.route(method, path, "hello", host).status, 201);
    }
    for (target, host, allow) in [
        ("*", "a.example", "GET, HEAD, OPTIONS, POST"),
        ("*", "B.example:8081", "DELETE, OPTIONS, POST"),
        ("*", "c.example", "OPTIONS, POST"),
        ("*", "z.example", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
        ("http://b.example", "a.example", "DELETE, OPTIONS, POST"),
        ("http://a.example:8081", "", "GET, HEAD, OPTIONS, POST"),
    ] {
        let r = s.web("OPTIONS", target, &[&format!("Host: {host}")], b"");
        assert_eq!((r.status, r.header("Allow")), (204, Some(allow)), "{target} {host}: {}", r.text());
        assert!(r.header("Content-Length").is_none() && r.body.is_empty());
    }
    assert_eq!(s.web("GET", "*", &[], b"").status, 400);
}
