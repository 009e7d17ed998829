//! Composition end to end: `invoke` chains with their limits and records,
//! and `require` of library actions kept in the store.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;

#[test]
fn invoke_runs_another_action_and_returns_its_result() {
    let s = TestServer::start("");
    s.create("double", "function main(a) return {n = a.n * 2} end", "");
    s.create("fails", "function main() return nil, 'not today' end", "");
    s.create("crashes", "function main() error('broken') end", "");
    s.create(
        "chain",
        r#"function main(a)
             local r = invoke('double', {n = a.n})
             local ok, e = pcall(invoke, 'fails', {})
             local ok2, e2 = pcall(invoke, 'crashes')
             local ok3, e3 = pcall(invoke, 'missing')
             return {r.n, ok, e, ok2, e2, ok3, e3}
           end"#,
        "",
    );
    let r = s.post("/actions/chain/block", r#"{"n": 21}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v[0], json!(42));
    assert_eq!((&v[1], &v[2]), (&json!(false), &json!("action 'fails' failed (action): not today")));
    assert_eq!(v[3], json!(false));
    assert!(v[4].as_str().unwrap().starts_with("action 'crashes' failed (runtime): crashes:1: broken"), "{v}");
    assert_eq!(
        (&v[5], &v[6]),
        (&json!(false), &json!("action 'missing' failed (not_found): no action named 'missing'"))
    );
    // An error the caller does not catch fails the caller.
    s.create("uncaught", "function main() return invoke('fails') end", "");
    let r = s.post("/actions/uncaught/block", "{}");
    assert_eq!((r.status, r.error_kind()), (500, "runtime".to_string()));
    assert!(r.text().contains("not today"), "{}", r.text());
}

#[test]
fn callee_records_name_their_caller() {
    let s = TestServer::start("");
    s.create("leaf", "function main() return 'leaf' end", "");
    s.create("root", "function main() return invoke('leaf') end", "");
    let id = s.post("/actions/root", "{}").json()["InvocationId"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/invocation/{id}?wait=5")).json(), json!("leaf"));
    let start = Instant::now();
    let leaf = loop {
        let list = s.get("/invocations?action=leaf").json();
        if let Some(rec) = list.as_array().unwrap().first() {
            break rec.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no record of the callee");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(leaf["caller"], json!(id), "{leaf}");
    assert_eq!(leaf["status"], json!("succeeded"));
}

#[test]
fn invoke_depth_is_limited_and_the_caller_timeout_bounds_the_whole() {
    let s = TestServer::start("");
    // Each level invokes the next; depth 0 is the request.
    s.create("deep", "function main(a) if a.n == 0 then return 0 end return 1 + invoke('deep', {n = a.n - 1}) end", "");
    assert_eq!(s.post("/actions/deep/block", r#"{"n": 8}"#).json(), json!(8));
    let r = s.post("/actions/deep/block", r#"{"n": 9}"#);
    assert_eq!(r.status, 500);
    assert!(r.text().contains("more than 8 nested invocations"), "{}", r.text());
    // Endless self-invocation ends on the depth limit, not in a hang.
    s.create("forever", "function main() return invoke('forever') end", "");
    assert!(s.post("/actions/forever/block", "{}").text().contains("nested invocations"));
    // The callee may run for 5 s, but its caller only has 300 ms.
    s.create("slow", "function main() while true do end end", r#""timeout": 5000, "instructions": 10000000000"#);
    s.create("impatient", "function main() return invoke('slow') end", r#""timeout": 300"#);
    let start = Instant::now();
    let r = s.post("/actions/impatient/block", "{}");
    let took = start.elapsed();
    assert_eq!(r.error_kind(), "timeout", "{}", r.text());
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    // The server keeps serving.
    assert_eq!(s.get("/ping").status, 200);
}

#[test]
fn require_loads_library_actions_and_follows_their_updates() {
    let s = TestServer::start("");
    let lib = |v: &str| format!("local M = {{}} function M.greet(n) return '{v} ' .. n end return M");
    assert_eq!(s.create("greetings", &lib("Hello"), "").status, 201);
    // A library cannot be invoked.
    let r = s.post("/actions/greetings/block", "{}");
    assert_eq!((r.status, r.error_kind()), (400, "library".to_string()), "{}", r.text());
    // Top-level require: resolved at create time too.
    let app = "local g = require('greetings') function main(a) return g.greet(a.name) end";
    assert_eq!(s.create("app", app, "").status, 201);
    assert_eq!(s.post("/actions/app/block", r#"{"name": "Ann"}"#).json(), json!("Hello Ann"));
    // Updating the library reloads the actions that use it.
    let code = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(lib("Howdy"))
    };
    let r = s.request("PUT", "/actions/greetings", Some(&format!(r#"{{"code": "{code}"}}"#)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.post("/actions/app/block", r#"{"name": "Bob"}"#).json(), json!("Howdy Bob"));
    // Requiring what is not there fails creation with a clear message.
    let r = s.create("broken", "local x = require('nope') function main() end", "");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no library action named 'nope'"), "{}", r.text());
    // require inside main, and a library that requires another library.
    s.create("base", "return { two = function() return 2 end }", "");
    s.create("derived", "local b = require('base') return { four = function() return b.two() * 2 end }", "");
    s.create("user", "function main() return require('derived').four() end", "");
    assert_eq!(s.post("/actions/user/block", "{}").json(), json!(4));
}
