//! Plugins end to end: real `.so` files built by cargo, loaded by the real
//! server, called from actions with `call()`.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{plugin_lib, start_failing, TestServer, HELLO};
use serde_json::json;

fn with_plugins(extra: &str) -> TestServer {
    let cfg = format!(
        "Plugin \"skeleton\" {{ file = {:?} }}\nPlugin \"panic\" {{ file = {:?} }}\n{extra}",
        plugin_lib("sl_skeleton"),
        plugin_lib("sl_fixture_panic"),
    );
    TestServer::start(&cfg)
}

#[test]
fn skeleton_add_echo_and_the_plugin_list() {
    let s = with_plugins("");
    s.create("add", "function main(args) return call('skeleton', 'add', { x = args.x, y = args.y }) end", "");
    assert_eq!(s.post("/actions/add/block", r#"{"x": 2, "y": 3}"#).json(), json!(5));
    s.create("echo", "function main(args) return call('skeleton', 'echo', args) end", "");
    let payload = json!({"list": [1, 2, {"a": null}], "s": "ü", "f": 1.5, "empty": []});
    assert_eq!(
        s.post("/actions/echo/block", &payload.to_string()).json(),
        json!({"list": [1, 2, {}], "s": "ü", "f": 1.5, "empty": []})
    );
    let list = s.get("/plugins").json();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["panic", "skeleton"]);
    assert!(list[1]["version"].is_string(), "{list}");
}

#[test]
fn plugin_errors_are_catchable_and_panics_do_not_crash() {
    let s = with_plugins("");
    s.create(
        "caught",
        "function main() local ok, err = pcall(call, 'skeleton', 'nope', {}) return {ok = ok, err = err} end",
        "",
    );
    let v = s.post("/actions/caught/block", "").json();
    assert_eq!(v["ok"], json!(false));
    assert!(v["err"].as_str().unwrap().contains("nope"), "{v}");
    s.create("uncaught", "function main() return call('skeleton', 'add', {x = 'a'}) end", "");
    let r = s.post("/actions/uncaught/block", "");
    assert_eq!((r.status, r.error_kind()), (500, "runtime".to_string()), "{}", r.text());
    s.create("boom", "function main() local ok, err = pcall(call, 'panic', 'boom', {}) return {ok = ok, err = err, after = call('panic', 'ok', {})} end", "");
    let v = s.post("/actions/boom/block", "").json();
    assert_eq!(v["ok"], json!(false));
    assert!(v["err"].as_str().unwrap().contains("panicked"), "{v}");
    assert!(!v["after"].is_null(), "{v}");
    s.create("unknown", "function main() return call('nosuch', 'x', {}) end", "");
    let r = s.post("/actions/unknown/block", "");
    assert!(r.text().contains("unknown plugin 'nosuch'") && r.text().contains("skeleton"), "{}", r.text());
    s.create("badpayload", "function main() return call('skeleton', 'echo', {f = function() end}) end", "");
    assert!(s.post("/actions/badpayload/block", "").text().contains("payload"));
    assert_eq!(s.get("/ping").text(), "OK");
}

#[test]
fn a_sleeping_plugin_call_does_not_block_the_reactor() {
    let s = with_plugins("");
    s.create("nap", "function main(a) return call('skeleton', 'sleep', {ms = a.ms or 500}) end", "");
    s.create("hello", HELLO, "");
    let addr = s.addr;
    let sleeper = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        common::send(&mut c, "POST", "/actions/nap/block", Some("{}"));
        common::read_response(&mut c)
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut c = s.connect();
    for path in ["/ping", "/actions/hello/block"] {
        let start = Instant::now();
        common::send(
            &mut c,
            if path == "/ping" { "GET" } else { "POST" },
            path,
            if path == "/ping" { None } else { Some("{}") },
        );
        assert_eq!(common::read_response(&mut c).status, 200);
        assert!(start.elapsed() < Duration::from_millis(50), "{path} took {:?} while a plugin slept", start.elapsed());
    }
    assert_eq!(sleeper.join().unwrap().status, 200);
}

#[test]
fn a_hundred_concurrent_sleeps_overlap() {
    let s = with_plugins("");
    s.create("nap", "function main(a) return call('skeleton', 'sleep', {ms = 500}) end", "");
    assert_eq!(s.post("/actions/nap/block", "").status, 200);
    let start = Instant::now();
    let mut conns: Vec<_> = (0..100).map(|_| s.connect()).collect();
    for c in conns.iter_mut() {
        common::send(c, "POST", "/actions/nap/block", Some("{}"));
    }
    for c in conns.iter_mut() {
        assert_eq!(common::read_response(c).status, 200);
    }
    let took = start.elapsed();
    assert!(took < Duration::from_millis(2500), "100 sleeps of 500 ms took {took:?}");
    eprintln!("100 concurrent 500 ms plugin sleeps took {took:?}");
}

#[test]
fn time_parked_in_a_plugin_counts_against_the_timeout() {
    let s = with_plugins("");
    s.create("long", "function main() return call('skeleton', 'sleep', {ms = 3000}) end", r#""timeout": 200"#);
    let start = Instant::now();
    let r = s.post("/actions/long/block", "");
    let took = start.elapsed();
    assert_eq!((r.status, r.error_kind()), (500, "timeout".to_string()), "{}", r.text());
    assert!(took < Duration::from_millis(700), "timed out only after {took:?}");
    assert_eq!(s.post("/actions/long/block", "").error_kind(), "timeout");
}

#[test]
fn call_works_inside_coroutines() {
    let s = with_plugins("");
    let code = r#"
function main()
  local co = coroutine.wrap(function(a)
    local x = call('skeleton', 'add', {x = a, y = 1})
    local y = coroutine.yield(x)
    return call('skeleton', 'add', {x = y, y = 100})
  end)
  local first = co(1)
  local second = co(first * 10)
  -- table.sort runs a comparator as Lua code, where call() can wait...
  local t = {3, 1, 2}
  table.sort(t, function(a, b) return call('skeleton', 'echo', {v = a}).v < b end)
  -- ...and so does __tostring run by tostring...
  local text = tostring(setmetatable({}, {__tostring = function() return call('skeleton', 'echo', 'x') end}))
  -- ...but a __close handler run by coroutine.close cannot (Lua cannot
  -- yield there).
  local co2 = coroutine.create(function()
    local x <close> = setmetatable({}, {__close = function() call('skeleton', 'echo', 'x') end})
    coroutine.yield()
  end)
  coroutine.resume(co2)
  local ok, err = coroutine.close(co2)
  return {first, second, table.concat(t, ','), text, ok, err}
end"#;
    s.create("co", code, "");
    let r = s.post("/actions/co/block", "").json();
    assert_eq!(
        r.as_array().map(|a| &a[..5]),
        Some(&[json!(2), json!(120), json!("1,2,3"), json!("x"), json!(false)][..]),
        "{r}"
    );
    assert!(r[5].as_str().unwrap_or("").contains("call() cannot wait here"), "{r}");
}

#[test]
fn the_http_plugin_reaches_a_local_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.to_ascii_lowercase().contains("x-test: yes") { "header seen" } else { "no header" };
            write!(
                stream,
                "HTTP/1.1 201 Created\r\nContent-Length: {}\r\nX-Reply: ok\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    let s = TestServer::start(&format!("Plugin \"http\" {{ file = {:?}, timeout = 2000 }}", plugin_lib("sl_http")));
    let code = format!(
        "function main() local r = call('http', 'request', {{method = 'GET', url = 'http://127.0.0.1:{port}/x', headers = {{['X-Test'] = 'yes'}}}}) return {{status = r.status, body = r.body}} end"
    );
    s.create("fetch", &code, "");
    assert_eq!(s.post("/actions/fetch/block", "").json(), json!({"status": 201, "body": "header seen"}));
}

#[test]
fn bad_plugins_stop_the_server_with_a_clear_message() {
    let cases = [
        (format!("Plugin \"x\" {{ file = {:?} }}", "/nonexistent/libnope.so"), vec!["/nonexistent/libnope.so"]),
        (
            format!("Plugin \"x\" {{ file = {:?} }}", plugin_lib("sl_fixture_badabi")),
            vec!["libsl_fixture_badabi.so", "999"],
        ),
        (
            format!("Plugin \"x\" {{ file = {:?} }}", plugin_lib("sl_fixture_initfail")),
            vec!["libsl_fixture_initfail.so", "missing setting 'token'"],
        ),
        (
            format!("Plugin \"x\" {{ file = {:?} }}", plugin_lib("sl_fixture_nosym")),
            vec!["libsl_fixture_nosym.so", "sl_plugin_"],
        ),
    ];
    for (cfg, needles) in cases {
        let (status, stderr) = start_failing(&cfg);
        assert!(!status.success(), "{cfg}: the server started");
        for n in needles {
            assert!(stderr.contains(n), "{cfg}: stderr lacks {n:?}: {stderr}");
        }
    }
}

/// A plugin call's payload and its answer are bounded by
/// `Server.max_response` (both are encoded or parsed outside the action's
/// memory limit): over it, the call fails with an error the action can
/// catch, and the plugin's answer is never parsed.
#[test]
fn plugin_payloads_and_answers_are_bounded_by_max_response() {
    let s = TestServer::start(&format!(
        "Server {{ max_response = 2048 }}\nPlugin \"kv\" {{ file = {:?}, path = \"kv.db\" }}",
        plugin_lib("sl_kv")
    ));
    let code = r#"
function main(args)
  if args.put then
    return call('kv', 'put', { key = args.put, value = string.rep('v', args.size) })
  end
  local ok, err = pcall(call, 'kv', 'list', { prefix = 'k/' })
  return { ok = ok, err = err }
end"#;
    assert_eq!(s.create("kv", code, "").status, 201);
    for i in 0..3 {
        let r = s.post("/actions/kv/block", &format!(r#"{{"put": "k/{i}", "size": 1000}}"#));
        assert_eq!(r.json(), json!(true), "{}", r.text());
    }
    let r = s.post("/actions/kv/block", r#"{"put": "k/big", "size": 3000}"#);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("the payload is larger than Server.max_response (2048 bytes)"), "{}", r.text());
    let r = s.post("/actions/kv/block", "{}").json();
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["err"].as_str().unwrap().contains("more than Server.max_response (2048 bytes)"), "{r}");
}
