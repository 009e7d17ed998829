//! The HTTP API end to end against the real server.

mod common;

use common::{TestServer, HELLO};
use serde_json::json;

#[test]
fn walkthrough_over_http() {
    let s = TestServer::start("");
    assert_eq!(s.get("/ping").text(), "OK");
    assert_eq!(s.get("/actions").json(), json!([]));

    let r = s.create("hello", HELLO, "");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "hello");
    assert_eq!(r.json()["version"], 1);

    let r = s.post("/actions/hello/block", r#"{"name": "from Lua"}"#);
    assert_eq!((r.status, r.json()), (200, json!("Hello from Lua")));
    let r = s.post("/actions/hello/block", "");
    assert_eq!(r.json(), json!("Hello World"));

    let r = s.post("/actions/hello", r#"{"name": "from Lua"}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["InvocationId"].as_str().unwrap().to_string();
    let r = s.get(&format!("/invocation/{id}?wait=5"));
    assert_eq!((r.status, r.json()), (200, json!("Hello from Lua")));

    let list = s.get("/actions").json();
    let hello = &list[0];
    assert_eq!(hello["name"], "hello");
    assert!(hello["size"].as_u64().unwrap() > 0);
    for key in ["maxmem", "timeout", "instructions", "version", "created", "updated"] {
        assert!(hello.get(key).is_some(), "list entry lacks {key}: {hello}");
    }

    let got = s.get("/actions/hello").json();
    use base64::Engine;
    let code = base64::engine::general_purpose::STANDARD.decode(got["code"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(code).unwrap(), HELLO);

    // The blocking run's record is written a moment after its answer.
    let start = std::time::Instant::now();
    let mut recs = s.get("/invocations?action=hello&limit=10").json();
    while recs.as_array().unwrap().len() < 2 && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(5));
        recs = s.get("/invocations?action=hello&limit=10").json();
    }
    assert!(recs.as_array().unwrap().len() >= 2, "{recs}");
    let async_rec = recs.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(async_rec["status"], "succeeded");
    assert!(async_rec["instructions"].is_number() && async_rec["peak_memory"].is_number());

    assert_eq!(s.request("DELETE", "/actions/hello", None).text(), "OK");
    assert_eq!(s.request("DELETE", "/actions/hello", None).status, 404);
    assert_eq!(s.post("/actions/hello/block", "").status, 404);
}

#[test]
fn update_replaces_code_and_limits_for_the_next_invocation() {
    let s = TestServer::start("");
    assert_eq!(s.create("f", "function main() return 1 end", r#""timeout": 1000"#).status, 201);
    assert_eq!(s.post("/actions/f/block", "").json(), json!(1));
    use base64::Engine;
    let code = base64::engine::general_purpose::STANDARD.encode("function main() return 2 end");
    let r = s.request("PUT", "/actions/f", Some(&format!(r#"{{"code":"{code}"}}"#)));
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(2)), "{}", r.text());
    assert_eq!(s.post("/actions/f/block", "").json(), json!(2));
    let r = s.request("PUT", "/actions/f", Some(r#"{"maxmem": 2048}"#));
    assert_eq!(r.json()["version"], 3);
    let got = s.get("/actions/f").json();
    assert_eq!((got["maxmem"].clone(), got["timeout"].clone()), (json!(2048), json!(1000)));
    assert_eq!(s.request("PUT", "/actions/nope", Some(r#"{"maxmem": 1}"#)).status, 404);
    assert_eq!(s.request("PUT", "/actions/f", Some("{}")).status, 400);
}

#[test]
fn bad_requests_get_clear_4xx_and_the_server_keeps_serving() {
    let s = TestServer::start("Limits { max_timeout = 10000 }");
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("POST", "/actions", Some("{not json"), 400, "invalid request body"),
        ("POST", "/actions", Some("[1,2]"), 400, "invalid request body"),
        ("POST", "/actions", Some(r#"{"name":"x"}"#), 400, "missing field `code`"),
        ("POST", "/actions", Some(r#"{"name":"x","code":"!!!"}"#), 400, "base64"),
        ("POST", "/actions", Some(r#"{"name":"x","code":5}"#), 400, "invalid type"),
        ("POST", "/actions", Some(r#"{"name":"a b","code":""}"#), 400, "invalid action name"),
        ("POST", "/actions", Some(r#"{"name":"x","code":"","extra":1}"#), 400, "unknown field"),
        ("POST", "/actions", Some(r#"{"name":"x","code":"","timeout":20000}"#), 400, "above this server's maximum"),
        ("POST", "/actions", Some(r#"{"name":"x","code":"","timeout":-1}"#), 400, "invalid value"),
        ("POST", "/actions", None, 400, "needs a JSON body"),
        ("GET", "/actions/a%2Fb", None, 400, "invalid action name"),
        ("GET", "/nope", None, 404, "no route"),
        ("PATCH", "/actions", None, 405, "method not allowed"),
        ("DELETE", "/ping", None, 405, "method not allowed"),
        ("GET", "/invocation/not-a-uuid!", None, 400, "invalid invocation id"),
        ("GET", "/invocation/0190e0a0-0000-7000-8000-000000000000?wait=0", None, 404, "no invocation"),
        ("GET", "/invocations?limit=abc", None, 400, "limit"),
        ("POST", "/actions/nope/block", Some("{}"), 404, "no action named 'nope'"),
        ("POST", "/actions/nope", Some("{}"), 404, "no action named 'nope'"),
    ];
    for (method, path, body, status, needle) in cases {
        let r = s.request(method, path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(r.text().contains(needle), "{method} {path}: {} lacks {needle:?}", r.text());
    }
    assert_eq!(s.request("PATCH", "/actions", None).header("Allow"), Some("GET, POST"));

    // Lua syntax errors come back with the compiler's message and line.
    let r = s.create("broken", "function main()\n  return 1 +\nend", "");
    assert_eq!((r.status, r.error_kind()), (400, "compile".to_string()), "{}", r.text());
    assert!(r.text().contains("broken:3:"), "{}", r.text());
    let r = s.create("nomain", "x = 1", "");
    assert!(r.text().contains("does not define a global function 'main'"), "{}", r.text());

    // Arguments must be a JSON object.
    assert_eq!(s.create("echo", "function main(a) return a end", "").status, 201);
    for body in ["[1]", "\"x\"", "{oops"] {
        let r = s.post("/actions/echo/block", body);
        assert_eq!((r.status, r.error_kind()), (400, "bad_request".to_string()), "{body}: {}", r.text());
    }
    assert_eq!(s.create("echo", "function main(a) return a end", "").status, 409);
    assert_eq!(s.get("/ping").text(), "OK");
}

#[test]
fn action_errors_map_to_status_codes() {
    let s = TestServer::start("");
    s.create("nilmsg", "function main() return nil, 'name is required' end", "");
    s.create("boom", "function main()\n  error('boom')\nend", "");
    s.create("fn", "function main() return function() end end", "");
    s.create(
        "data",
        "function main() return {list = {1, 2}, empty = {}, flag = true, n = 1.5, null = json.null} end",
        "",
    );
    let r = s.post("/actions/nilmsg/block", "");
    assert_eq!((r.status, r.error_kind()), (400, "action".to_string()));
    assert_eq!(r.json()["error"]["message"], "name is required");
    let r = s.post("/actions/boom/block", "");
    assert_eq!((r.status, r.error_kind()), (500, "runtime".to_string()));
    assert!(r.text().contains("boom:2: boom"), "{}", r.text());
    let r = s.post("/actions/fn/block", "");
    assert_eq!((r.status, r.error_kind()), (500, "runtime".to_string()));
    assert!(r.text().contains("function has no JSON form"), "{}", r.text());
    let r = s.post("/actions/data/block", "");
    assert_eq!(r.json(), json!({"list": [1, 2], "empty": {}, "flag": true, "n": 1.5, "null": null}));
}

#[test]
fn print_output_is_kept_in_the_invocation_record() {
    let s = TestServer::start("");
    s.create("talk", "function main() print('hello', 42) return 'done' end", "");
    let id = s.post("/actions/talk", "{}").json()["InvocationId"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/invocation/{id}?wait=5")).json(), json!("done"));
    let mut logs = String::new();
    for _ in 0..50 {
        let recs = s.get("/invocations?action=talk").json();
        if let Some(r) = recs.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()) {
            logs = r["logs"].as_str().unwrap_or("").to_string();
            if !logs.is_empty() {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs, "hello\t42\n");
}

#[test]
fn nulldb_serves_the_walkthrough_in_memory() {
    let s = TestServer::start("Nulldb {}");
    assert_eq!(s.create("hello", HELLO, "").status, 201);
    assert_eq!(s.post("/actions/hello/block", r#"{"name":"x"}"#).json(), json!("Hello x"));
}

/// A blocking run that is not recorded reads its arguments straight from the
/// body's text; one that is recorded parses them into the record first.
/// Both give `main` the same arguments, and refuse the same bodies.
#[test]
fn arguments_are_the_same_whether_the_run_is_recorded_or_not() {
    let recorded = TestServer::start("Invocations { record_blocking = true }");
    let unrecorded = TestServer::start("Invocations { record_blocking = false }");
    let nest = |depth: usize| format!(r#"{{"a": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
    let bodies = [
        String::new(),
        "  ".to_string(),
        "{}".to_string(),
        r#"{"name": "x", "n": 3, "f": 1.5, "neg": -7, "t": true, "big": 18446744073709551615}"#.to_string(),
        r#"{"s": "esc\"aped \u00e9 \n\t", "k\u00e9y": "v", "arr": [1, null, [], {}, "x"], "o": {"in": null}}"#
            .to_string(),
        r#"{"dup": 1, "dup": 2, "gone": 1, "gone": null}"#.to_string(),
        nest(98),
        nest(120),
        nest(200),
        "[1]".to_string(),
        "{oops".to_string(),
        r#"{"a": 1} {"b": 2}"#.to_string(),
    ];
    // Echoes the arguments and says whether nulls in arrays arrived as
    // json.null (they must, or positions would shift).
    let echo = "function main(a) return {args = a, null_kept = type(a.arr) ~= 'table' or a.arr[2] == json.null} end";
    for s in [&recorded, &unrecorded] {
        assert_eq!(s.create("echo", echo, "").status, 201);
    }
    for body in &bodies {
        let a = recorded.post("/actions/echo/block", body);
        let b = unrecorded.post("/actions/echo/block", body);
        let short = &body[..body.len().min(60)];
        // Compared as JSON: the order of an object's members comes from
        // the Lua table it was made from, which differs between states.
        assert_eq!((a.status, a.json()), (b.status, b.json()), "{short}");
    }
    let r = unrecorded.post("/actions/echo/block", &bodies[5]);
    assert_eq!(r.json(), json!({"args": {"dup": 2}, "null_kept": true}));
    let r = unrecorded.post("/actions/echo/block", &bodies[4]);
    assert_eq!(r.json()["args"]["arr"], json!([1, null, [], {}, "x"]));
    assert_eq!(r.json()["args"]["kéy"], "v");
    for depth in [120, 200] {
        let r = unrecorded.post("/actions/echo/block", &nest(depth));
        assert_eq!((r.status, r.error_kind()), (400, "bad_request".to_string()), "{}", r.text());
        assert!(r.text().contains("nested deeper than 100 levels"), "{}", r.text());
    }
    assert_eq!(unrecorded.post("/actions/echo/block", &nest(98)).status, 200);
    assert_eq!(unrecorded.post("/actions/echo/block", "{oops").error_kind(), "bad_request");
    assert_eq!(unrecorded.get("/ping").text(), "OK");
}

#[test]
fn a_pending_invocation_is_held_one_second_by_default() {
    // The original Node client's `resolve` gives up after 2 s: without
    // `?wait=` the server must answer "pending" well before that.
    let s = TestServer::start("");
    let limits = r#""timeout": 4000, "instructions": 10000000000"#;
    assert_eq!(s.create("spin", "function main() while true do end end", limits).status, 201);
    let id = s.post("/actions/spin", "{}").json()["InvocationId"].as_str().unwrap().to_string();
    let start = std::time::Instant::now();
    let r = s.get(&format!("/invocation/{id}"));
    let took = start.elapsed();
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!((&r.json()["id"], &r.json()["action"]), (&json!(id), &json!("spin")), "{}", r.text());
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_millis(1900),
        "held {took:?}"
    );
    // `?wait=0` answers at once; the spin ends with its timeout.
    let start = std::time::Instant::now();
    assert_eq!(s.get(&format!("/invocation/{id}?wait=0")).status, 202);
    assert!(start.elapsed() < std::time::Duration::from_millis(500), "{:?}", start.elapsed());
    let r = s.get(&format!("/invocation/{id}?wait=10"));
    assert_eq!((r.status, r.error_kind()), (500, "timeout".to_string()), "{}", r.text());
}
