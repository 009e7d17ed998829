//! `GET /metrics` end to end: the real server, read with the reference
//! parser of the Prometheus text format (`prometheus_client`, from PyPI,
//! installed by sl-testkit), and counted exactly.

mod common;

use common::{read_response, send, TestServer};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// A sample: its name, labels and value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses an exposition with `prometheus_client.parser`; fails the test
/// with the parser's message if it does not parse. Returns every sample
/// as `(name, labels, value)`, with the families' types.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let python = sl_testkit::prometheus_client_python();
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples, types = [], {}
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"samples": samples, "types": types}))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the exposition does not parse: {}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels =
                s[1].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
            (s[0].as_str().unwrap().to_owned(), labels, s[2].as_f64().unwrap())
        })
        .collect();
    let types =
        v["types"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    (samples, types)
}

/// The value of the sample `name` with exactly `labels`, if there is one.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.iter().find(|(n, l, _)| n == name && *l == want).map(|(_, _, v)| *v)
}

fn scrape(s: &TestServer) -> String {
    let r = s.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    r.text()
}

const ACTION: &str = r#"
function main(args)
  if args.spin then while true do end end
  return "ok " .. tostring(args.i)
end
"#;

/// 1,000 blocking runs of which 10 time out give exactly 990 successes and
/// 10 timeouts, and the rest of the exposition agrees with them.
#[test]
fn a_thousand_runs_with_ten_timeouts_are_counted_exactly() {
    let s = TestServer::start("");
    assert_eq!(s.create("t", ACTION, r#""timeout":40"#).status, 201);
    let mut c = s.connect();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for i in 0..1000 {
        let body = if i % 100 == 99 { r#"{"spin":true}"#.to_string() } else { format!(r#"{{"i":{i}}}"#) };
        send(&mut c, "POST", "/actions/t/block", Some(&body));
        let r = read_response(&mut c);
        *statuses.entry(r.status).or_default() += 1;
    }
    assert_eq!(statuses.get(&200), Some(&990), "{statuses:?}");
    assert_eq!(statuses.values().sum::<u64>(), 1000);
    // Five asynchronous runs, waited for.
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = s.post("/actions/t", &format!(r#"{{"i":{i}}}"#));
        assert_eq!(r.status, 202, "{}", r.text());
        ids.push(r.json()["InvocationId"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        assert_eq!(s.get(&format!("/invocation/{id}?wait=10")).status, 200);
    }

    let text = scrape(&s);
    let (samples, types) = parse(&text);
    let runs = |kind: &str, outcome: &str| {
        value(&samples, "sl_invocations_total", &[("action", "t"), ("kind", kind), ("outcome", outcome)])
    };
    assert_eq!(runs("blocking", "success"), Some(990.0), "{text}");
    assert_eq!(runs("blocking", "timeout"), Some(10.0), "{text}");
    assert_eq!(runs("async", "success"), Some(5.0), "{text}");
    assert_eq!(runs("blocking", "runtime"), None, "no sample of a count of zero");
    assert_eq!(value(&samples, "sl_limit_kills_total", &[("limit", "timeout")]), Some(10.0));
    assert_eq!(value(&samples, "sl_limit_kills_total", &[("limit", "memory")]), Some(0.0));
    assert_eq!(value(&samples, "sl_invocation_duration_seconds_count", &[("action", "t")]), Some(1005.0));
    // The ten timeouts ran 40 ms each (the deadline, rounded up by a tick).
    let slow = value(&samples, "sl_invocation_duration_seconds_bucket", &[("action", "t"), ("le", "0.025")]).unwrap();
    assert!(slow <= 995.0, "the timeouts are above 25 ms: {slow}");
    assert_eq!(value(&samples, "sl_invocation_queue_wait_seconds_count", &[("action", "t")]), Some(5.0));
    assert_eq!(value(&samples, "sl_invocation_instructions_count", &[("action", "t")]), Some(1005.0));
    assert_eq!(value(&samples, "sl_invocation_peak_memory_bytes_count", &[("action", "t")]), Some(1005.0));
    let http = |code: &str| value(&samples, "sl_http_responses_total", &[("listener", "api"), ("code", code)]);
    // 990 blocking answers, five results; the scrape itself is counted
    // after it is written.
    assert_eq!(http("200"), Some(995.0), "{text}");
    assert_eq!(http("202"), Some(5.0));
    assert_eq!(http("201"), Some(1.0));
    assert_eq!(http("500"), Some(10.0), "the timeouts' answers");
    assert!(value(&samples, "sl_instance_creations_total", &[]).unwrap() >= 1.0);
    assert!(value(&samples, "sl_warm_instances", &[]).unwrap() >= 1.0);
    assert_eq!(value(&samples, "sl_async_queue_depth", &[]), Some(0.0));
    assert_eq!(value(&samples, "sl_async_oldest_queued_age_seconds", &[]), Some(0.0));
    assert!(value(&samples, "sl_connections_open", &[]).unwrap() >= 1.0, "this scrape's own connection");
    assert!(value(&samples, "sl_process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(value(&samples, "sl_loop_turn_duration_seconds_count", &[("worker", "0")]).unwrap() >= 1000.0);
    let store = |op: &str| value(&samples, "sl_store_operation_duration_seconds_count", &[("op", op)]);
    assert_eq!(store("create_action"), Some(1.0));
    assert!(store("get_action").unwrap() >= 1.0, "the action was fetched once at least");
    assert!(store("enqueue_invocations").unwrap() >= 1.0);
    assert_eq!(value(&samples, "sl_store_operation_errors_total", &[("op", "create_action")]), None);
    for (family, kind) in [
        ("sl_invocations", "counter"),
        ("sl_invocation_duration_seconds", "histogram"),
        ("sl_warm_instances", "gauge"),
        ("sl_http_responses", "counter"),
        ("sl_loop_turn_duration_seconds", "histogram"),
    ] {
        assert_eq!(types.get(family).map(String::as_str), Some(kind), "{family}: {types:?}");
    }
    // The scrape before is in the next one.
    let (samples, _) = parse(&scrape(&s));
    assert_eq!(value(&samples, "sl_http_responses_total", &[("listener", "api"), ("code", "200")]), Some(996.0));
}

/// Plugin calls are timed by plugin, and the failed ones counted.
#[test]
fn plugin_calls_are_timed_and_their_errors_counted() {
    let lib = common::plugin_lib("sl_skeleton");
    let s = TestServer::start(&format!("Plugin \"skeleton\" {{ file = {lib:?} }}"));
    let code = "function main(args) return call('skeleton', args.op, { x = 1, y = 2 }) end";
    assert_eq!(s.create("p", code, "").status, 201);
    for _ in 0..3 {
        assert_eq!(s.post("/actions/p/block", r#"{"op":"add"}"#).status, 200);
    }
    let r = s.post("/actions/p/block", r#"{"op":"no-such-call"}"#);
    assert_ne!(r.status, 200, "{}", r.text());
    let (samples, _) = parse(&scrape(&s));
    assert_eq!(value(&samples, "sl_plugin_call_duration_seconds_count", &[("plugin", "skeleton")]), Some(4.0));
    assert_eq!(value(&samples, "sl_plugin_call_errors_total", &[("plugin", "skeleton")]), Some(1.0));
}

/// Every worker's counts are in the scrape, whichever worker answers it.
#[test]
fn the_workers_counts_add_up() {
    let s = TestServer::start("Server { workers = 2 }");
    assert_eq!(s.create("t", ACTION, "").status, 201);
    // Connections of their own: the kernel spreads them over the workers
    // (all 32 on one of the two: one chance in two billion).
    let handles: Vec<_> = (0..32)
        .map(|k| {
            let mut c = s.connect();
            std::thread::spawn(move || {
                for i in 0..25 {
                    send(&mut c, "POST", "/actions/t/block", Some(&format!(r#"{{"i":{}}}"#, k * 100 + i)));
                    assert_eq!(read_response(&mut c).status, 200);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for _ in 0..5 {
        let (samples, _) = parse(&scrape(&s));
        let ok =
            value(&samples, "sl_invocations_total", &[("action", "t"), ("kind", "blocking"), ("outcome", "success")]);
        assert_eq!(ok, Some(800.0), "whichever worker answers the scrape");
        let turns = |w: &str| value(&samples, "sl_loop_turn_duration_seconds_count", &[("worker", w)]);
        assert!(turns("0").is_some() && turns("1").is_some() && turns("2").is_none());
    }
}

/// Metrics need the admin token when tokens are on; with
/// `Server { metrics = false }` there are none.
#[test]
fn metrics_are_for_the_admin_and_can_be_turned_off() {
    const ADMIN: &str = "admin-0123456789abcdef";
    const INVOKE: &str = "invoke-0123456789abcdef";
    let s = TestServer::start(&format!("Auth {{ admin = {ADMIN:?}, invoke = {{ {INVOKE:?} }} }}"));
    let get = |token: Option<&str>| {
        let mut c = s.connect();
        let mut req = "GET /metrics HTTP/1.1\r\nHost: t\r\n".to_string();
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        c.write_all(req.as_bytes()).unwrap();
        read_response(&mut c)
    };
    assert_eq!(get(None).status, 401);
    assert_eq!(get(Some(INVOKE)).status, 403);
    let r = get(Some(ADMIN));
    assert_eq!(r.status, 200);
    parse(&r.text());

    let off = TestServer::start("Server { metrics = false }");
    let r = off.get("/metrics");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("metrics = false"), "{}", r.text());
    assert_eq!(off.post("/metrics", "").status, 405);
}
