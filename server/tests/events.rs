//! Events end to end: topics, publishing (HTTP and Lua), subscriptions
//! delivering in order per key, retries with backoff, dead letters and
//! redrive, replay and retention, crashes, and several servers on one
//! MongoDB (nx-27017).
//!
//! Subscribers here record what they get by publishing it to a topic of
//! their own (`seen`), read back through `GET /topics/seen/messages`: the
//! order of that log is the order in which batches were handled.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::{wait_until, Resp, TestServer};
use serde_json::{json, Value};
use sl_testkit::Mongo;

/// Records every batch it gets, then acks it.
const SINK: &str = r#"
function main(b)
  local items = {}
  for i, m in ipairs(b.messages) do
    items[i] = {key = m.key, n = m.payload.n, offset = m.offset, partition = m.partition, attempts = m.attempts}
  end
  publish("seen", {sub = b.subscription, items = items})
end
"#;

fn create_topic(s: &TestServer, name: &str, partitions: u32, extra: &str) {
    let body = format!(r#"{{"name":"{name}","partitions":{partitions}{extra}}}"#);
    let r = s.post("/topics", &body);
    assert_eq!(r.status, 201, "{}", r.text());
}

fn create_sub(s: &TestServer, name: &str, topic: &str, action: &str, extra: &str) {
    let body = format!(r#"{{"name":"{name}","topic":"{topic}","action":"{action}"{extra}}}"#);
    let r = s.post("/subscriptions", &body);
    assert_eq!(r.status, 201, "{}", r.text());
}

fn publish_batch(s: &TestServer, topic: &str, messages: &[Value]) -> Resp {
    s.post(&format!("/topics/{topic}/batch"), &Value::Array(messages.to_vec()).to_string())
}

/// Every message of partition 0 of `topic`, in offset order.
fn read_all(s: &TestServer, topic: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let from = out.last().map_or(0, |m: &Value| m["offset"].as_i64().unwrap() + 1);
        let r = s.get(&format!("/topics/{topic}/messages?from={from}&limit=1000"));
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json().as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// The items the subscribers recorded, in the order they handled them:
/// (subscription, key, n, attempts).
fn seen(s: &TestServer) -> Vec<(String, String, i64, i64)> {
    let mut out = Vec::new();
    for m in read_all(s, "seen") {
        let p = &m["payload"];
        let sub = p["sub"].as_str().unwrap().to_string();
        for it in p["items"].as_array().into_iter().flatten() {
            out.push((
                sub.clone(),
                it["key"].as_str().unwrap_or("").to_string(),
                it["n"].as_i64().unwrap(),
                it["attempts"].as_i64().unwrap(),
            ));
        }
    }
    out
}

#[test]
fn a_subscription_delivers_each_key_in_order_once() {
    let s = TestServer::start("");
    assert_eq!(s.create("sink", SINK, "").status, 201);
    create_topic(&s, "orders", 4, "");
    create_topic(&s, "seen", 1, "");
    create_sub(&s, "all", "orders", "sink", r#","batch_size":7"#);
    let mut batch = Vec::new();
    for n in 0..50 {
        for k in 0..10 {
            batch.push(json!({"key": format!("k{k}"), "payload": {"n": n}}));
        }
    }
    let r = publish_batch(&s, "orders", &batch);
    assert_eq!(r.status, 201, "{}", r.text());
    let places = r.json()["messages"].as_array().unwrap().clone();
    assert_eq!(places.len(), 500);
    assert!(wait_until(Duration::from_secs(20), || seen(&s).len() >= 500), "{} of 500", seen(&s).len());
    std::thread::sleep(Duration::from_millis(300));
    let got = seen(&s);
    assert_eq!(got.len(), 500, "each once");
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (_, key, n, attempts) in &got {
        assert_eq!(*attempts, 1);
        by_key.entry(key.clone()).or_default().push(*n);
    }
    for (key, ns) in by_key {
        assert_eq!(ns, (0..50).collect::<Vec<_>>(), "key {key}");
    }
    // The subscription's cursors are past everything, nothing pending.
    let sub = s.get("/subscriptions/all").json();
    assert_eq!(sub["backlog"], 0, "{sub}");
    let cursors: i64 = sub["partitions"].as_array().unwrap().iter().map(|p| p["cursor"].as_i64().unwrap()).sum();
    assert_eq!(cursors, 500, "{sub}");
    // Delivery runs are recorded under the subscriber's name, counted as
    // the kind `event`, and the metrics show the subscription.
    let recs = s.get("/invocations?action=sink&limit=1000").json();
    assert!(!recs.as_array().unwrap().is_empty());
    assert!(wait_until(Duration::from_secs(3), || s.get("/actions/sink").json()["runs"]["event"]["succeeded"]
        .as_u64()
        .is_some_and(|n| n > 0)));
    let metrics = s.get("/metrics").text();
    for line in [
        "sl_subscription_messages_total{subscription=\"all\"} 500",
        "sl_subscription_retries_total{subscription=\"all\"} 0",
        "sl_subscription_backlog{subscription=\"all\"} 0",
        "sl_subscription_lag_seconds{subscription=\"all\"} 0",
        "sl_subscription_dead_letters{subscription=\"all\"} 0",
        "sl_topic_messages{topic=\"orders\"} 500",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no line {line} in\n{metrics}");
    }
    assert!(metrics.contains("sl_invocations_total{action=\"sink\",kind=\"event\",outcome=\"success\"}"));
}

#[test]
fn publishing_answers_offsets_and_refuses_bad_input() {
    let s = TestServer::start("");
    create_topic(&s, "t", 2, "");
    // One message: its place; a retry of its idempotency key gets the same.
    let once = |key: &str| {
        let mut c = s.connect();
        let body = r#"{"hello":"world"}"#;
        let req = format!(
            "POST /topics/t?key=user-1 HTTP/1.1\r\nHost: x\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
        common::read_response(&mut c)
    };
    let first = once("abc");
    assert_eq!(first.status, 201, "{}", first.text());
    let again = once("abc");
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        (again.json()["offset"].clone(), again.json()["existing"].clone()),
        (first.json()["offset"].clone(), json!(true))
    );
    assert_eq!(
        once("other").json()["offset"],
        json!(first.json()["offset"].as_i64().unwrap() + 1),
        "same key, same partition"
    );
    let read = s.get(&format!("/topics/t/messages?partition={}", first.json()["partition"])).json();
    assert_eq!(read[0]["payload"], json!({"hello": "world"}));
    assert_eq!(read[0]["key"], "user-1");
    let info = s.get("/topics/t").json();
    assert_eq!((info["messages"].clone(), info["partitions"].clone()), (json!(2), json!(2)));
    // Errors.
    for (method, path, body, status) in [
        ("POST", "/topics", r#"{"name":"t"}"#, 409),
        ("POST", "/topics", r#"{"name":"bad name"}"#, 400),
        ("POST", "/topics", r#"{"name":"x","partitions":0}"#, 400),
        ("POST", "/topics", r#"{"name":"x","partitions":257}"#, 400),
        ("POST", "/topics", r#"{"name":"x","retention_ms":5}"#, 400),
        ("POST", "/topics", r#"{"name":"x","colour":"red"}"#, 400),
        ("POST", "/topics/nope", r#"1"#, 404),
        ("POST", "/topics/t", r#"{not json"#, 400),
        ("POST", "/topics/t", "", 400),
        ("POST", "/topics/t/batch", r#"[]"#, 400),
        (
            "POST",
            "/topics/t/batch",
            r#"[{"payload":1,"idempotency_key":"a"},{"payload":2,"idempotency_key":"a"}]"#,
            400,
        ),
        ("POST", "/topics/nope/batch", r#"[{"payload":1}]"#, 404),
        ("GET", "/topics/nope", "", 404),
        ("GET", "/topics/t/messages?partition=2", "", 400),
        ("PUT", "/topics/nope", r#"{"retention_ms":60000}"#, 404),
        ("POST", "/subscriptions", r#"{"name":"s","topic":"nope","action":"a"}"#, 404),
        ("POST", "/subscriptions", r#"{"name":"s","topic":"t","action":"nope"}"#, 404),
        ("POST", "/subscriptions", r#"{"name":"s","topic":"t","action":"a","batch_size":0}"#, 400),
        ("POST", "/subscriptions", r#"{"name":"s","topic":"t","action":"a","start":"middle"}"#, 400),
        ("GET", "/subscriptions/nope", "", 404),
        ("POST", "/subscriptions/nope/reset", r#"{"to":"beginning"}"#, 404),
        ("GET", "/subscriptions/nope/dead", "", 404),
        ("DELETE", "/topics/nope", "", 404),
    ] {
        let r = s.request(method, path, (!body.is_empty()).then_some(body));
        assert_eq!(r.status, status, "{method} {path} {body}: {}", r.text());
        assert!(r.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text());
    }
    // Too deep for a batch's arguments, and the server's own keys.
    let deep = format!("{}1{}", "[".repeat(98), "]".repeat(98));
    let r = s.post("/topics/t", &deep);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("at most 97 levels"), "{}", r.text());
    assert_eq!(s.post("/topics/t", &format!("{}1{}", "[".repeat(97), "]".repeat(97))).status, 201);
    let mut c = s.connect();
    let req = "POST /topics/t HTTP/1.1\r\nHost: x\r\nIdempotency-Key: sl:schedule:x:1\r\nContent-Length: 1\r\n\r\n1";
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let r = common::read_response(&mut c);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("must not start with 'sl:'"), "{}", r.text());
    // A key too long.
    let long = "k".repeat(1025);
    assert_eq!(s.post(&format!("/topics/t?key={long}"), "1").status, 400);
    for (path, status) in [("/topics/t/messages?limit=0", 400), ("/topics/t/messages?limit=1001", 400)] {
        assert_eq!(s.get(path).status, status, "{path}");
    }
    // Retention: a field left out keeps its value, null lifts the bound.
    let r = s.request("PUT", "/topics/t", Some(r#"{"retention_ms":60000,"retention_bytes":5000}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.request("PUT", "/topics/t", Some(r#"{"retention_bytes":null}"#)).json();
    assert_eq!((r["retention_ms"].clone(), r["retention_bytes"].clone()), (json!(60000), json!(null)), "{r}");
    assert_eq!(s.request("PUT", "/topics/t", Some("{}")).status, 400);
    // A topic with subscriptions is not deleted, nor an action they deliver to.
    assert_eq!(s.create("a", "function main() end", "").status, 201);
    create_sub(&s, "s", "t", "a", "");
    let r = s.request("DELETE", "/topics/t", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("delete them first"), "{}", r.text());
    let r = s.request("DELETE", "/actions/a", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("receives subscriptions (s)"), "{}", r.text());
    assert_eq!(s.get("/subscriptions/s/dead?limit=0").status, 400);
    assert_eq!(s.request("DELETE", "/subscriptions/s", None).status, 200);
    assert_eq!(s.request("DELETE", "/topics/t", None).status, 200);
    assert_eq!(s.get("/topics").json(), json!([]));
    assert_eq!(s.request("DELETE", "/actions/a", None).status, 200);
}

#[test]
fn lua_publishes_and_gets_offsets_and_partitions() {
    let s = TestServer::start("");
    create_topic(&s, "t", 3, "");
    let code = r#"
      function main(a)
        local o1, p1 = publish("t", {n = 1}, "same")
        local o2, p2 = publish("t", {n = 2}, "same")
        local ok, err = pcall(publish, "nope", 1)
        return {o1 = o1, o2 = o2, p1 = p1, p2 = p2, ok = ok, err = err}
      end"#;
    assert_eq!(s.create("pub", code, "").status, 201);
    let r = s.post("/actions/pub/block", "{}").json();
    assert_eq!(r["o2"], json!(r["o1"].as_i64().unwrap() + 1), "{r}");
    assert_eq!((r["p1"].clone(), r["ok"].clone()), (r["p2"].clone(), json!(false)), "{r}");
    assert_eq!(r["err"], "publish: no topic named 'nope'");
}

/// The poison message case: a message that always fails is retried with
/// the subscription's backoff, then becomes a dead letter with its
/// attempts, last error and logs; other keys flow meanwhile, its own key
/// waits behind it; fixed and redriven, it is handled once.
#[test]
fn a_poison_message_backs_off_then_dies_and_redrive_handles_it_once() {
    let s = TestServer::start("");
    create_topic(&s, "orders", 1, "");
    create_topic(&s, "seen", 1, "");
    create_topic(&s, "tries", 1, "");
    let handler = |poison_fails: bool| {
        format!(
            r#"
        function main(b)
          local bad, items = nil, {{}}
          for _, m in ipairs(b.messages) do
            if m.payload.poison and {poison_fails} then
              bad = m
              publish("tries", {{attempts = m.attempts}})
            else
              items[#items + 1] = {{key = m.key, n = m.payload.n, attempts = m.attempts}}
              ack(m)
            end
          end
          if #items > 0 then publish("seen", {{sub = b.subscription, items = items}}) end
          if bad then
            print("cannot handle offset " .. bad.offset)
            error("poison at offset " .. bad.offset)
          end
        end"#
        )
    };
    assert_eq!(s.create("handle", &handler(true), "").status, 201);
    create_sub(&s, "h", "orders", "handle", r#","max_retries":3,"backoff_ms":1000,"backoff_max_ms":60000"#);
    let msg = |key: &str, n: i64, poison: bool| json!({"key": key, "payload": {"n": n, "poison": poison}});
    assert_eq!(publish_batch(&s, "orders", &[msg("a", 0, false), msg("p", 0, true), msg("b", 0, false)]).status, 201);
    // Other keys, and the poison's own key, published while it retries.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    assert_eq!(publish_batch(&s, "orders", &[msg("a", 1, false), msg("p", 1, false), msg("b", 1, false)]).status, 201);
    assert!(
        wait_until(Duration::from_secs(3), || seen(&s).iter().filter(|i| i.1 != "p").count() == 4),
        "{:?}",
        seen(&s)
    );
    assert!(sent.elapsed() < Duration::from_secs(2), "other keys waited {:?}", sent.elapsed());
    assert!(!seen(&s).iter().any(|i| i.1 == "p"), "p/1 waits behind the poison");
    // Four attempts: the first and three retries, 1 s, 2 s and 4 s apart (±20%).
    assert!(wait_until(Duration::from_secs(15), || read_all(&s, "tries").len() == 4));
    let tries = read_all(&s, "tries");
    let times: Vec<i64> = tries.iter().map(|m| m["published"].as_i64().unwrap()).collect();
    let attempts: Vec<i64> = tries.iter().map(|m| m["payload"]["attempts"].as_i64().unwrap()).collect();
    assert_eq!(attempts, vec![1, 2, 3, 4]);
    for (i, want) in [1000.0, 2000.0, 4000.0].iter().enumerate() {
        let gap = (times[i + 1] - times[i]) as f64;
        assert!((gap - want).abs() <= want * 0.2, "retry {} came {gap} ms after the last, not {want} ± 20%", i + 1);
    }
    // Dead: listed with its attempts, error and logs; its key flows again.
    assert!(wait_until(Duration::from_secs(3), || s.get("/subscriptions/h/dead").json().as_array().unwrap().len() == 1));
    let dead = &s.get("/subscriptions/h/dead").json()[0];
    assert_eq!((dead["attempts"].clone(), dead["key"].clone()), (json!(4), json!("p")), "{dead}");
    assert!(dead["error"].as_str().unwrap().contains("poison at offset 1"), "{dead}");
    assert!(dead["logs"].to_string().contains("cannot handle offset 1"), "{dead}");
    assert_eq!(dead["payload"], json!({"n": 0, "poison": true}));
    assert!(wait_until(Duration::from_secs(3), || seen(&s).iter().any(|i| i.1 == "p")));
    assert_eq!(s.get("/subscriptions/h").json()["dead"], 1);
    // Fixed and redriven: handled once.
    let r = s.request("PUT", "/actions/handle", Some(&update_body(&handler(false))));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post("/subscriptions/h/dead/redrive", "");
    assert_eq!((r.status, r.json()["redriven"].clone()), (200, json!(1)), "{}", r.text());
    assert!(wait_until(Duration::from_secs(5), || seen(&s).iter().filter(|i| i.1 == "p").count() == 2));
    std::thread::sleep(Duration::from_millis(500));
    let p: Vec<(i64, i64)> = seen(&s).iter().filter(|i| i.1 == "p").map(|i| (i.2, i.3)).collect();
    assert_eq!(p, vec![(1, 1), (0, 1)], "p/1 once, then the redriven p/0 once, as a first attempt");
    assert_eq!(s.get("/subscriptions/h/dead").json(), json!([]));
    assert_eq!(s.get("/subscriptions/h").json()["dead"], 0);
}

fn update_body(code: &str) -> String {
    use base64::Engine;
    json!({"code": base64::engine::general_purpose::STANDARD.encode(code)}).to_string()
}

#[test]
fn replay_delivers_exactly_the_retained_log() {
    let s = TestServer::start("");
    assert_eq!(s.create("sink", SINK, "").status, 201);
    // Two partitions; retention keeps about 40 messages' worth of bytes.
    let payload_bytes = json!({"n": 10, "pad": "x".repeat(80)}).to_string().len() as u64;
    create_topic(&s, "log", 2, &format!(r#","retention_bytes":{}"#, 40 * (payload_bytes + 2)));
    create_topic(&s, "seen", 1, "");
    let batch: Vec<Value> =
        (0..100).map(|n| json!({"key": format!("k{}", n % 5), "payload": {"n": n, "pad": "x".repeat(80)}})).collect();
    assert_eq!(publish_batch(&s, "log", &batch).status, 201);
    // The sweep deletes the oldest.
    assert!(wait_until(Duration::from_secs(10), || s.get("/topics/log").json()["messages"].as_u64().unwrap() < 100));
    let retained = s.get("/topics/log").json()["messages"].as_u64().unwrap() as usize;
    assert!((30..=40).contains(&retained), "{retained} retained");
    create_sub(&s, "replay", "log", "sink", r#","start":"beginning""#);
    assert!(wait_until(Duration::from_secs(10), || seen(&s).len() >= retained));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(seen(&s).len(), retained, "replay from the beginning delivers the retained count");
    // Reset to the beginning: all of it again; to the end: nothing more.
    let r = s.post("/subscriptions/replay/reset", r#"{"to":"beginning"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(wait_until(Duration::from_secs(10), || seen(&s).len() >= 2 * retained));
    let r = s.post("/subscriptions/replay/reset", r#"{"to":"end"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(seen(&s).len(), 2 * retained);
    // A subscription created at the end gets only what comes next.
    create_sub(&s, "late", "log", "sink", "");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(publish_batch(&s, "log", &[json!({"key": "z", "payload": {"n": 1000}})]).status, 201);
    assert!(wait_until(Duration::from_secs(5), || seen(&s).iter().any(|i| i.0 == "late")));
    let late: Vec<i64> = seen(&s).iter().filter(|i| i.0 == "late").map(|i| i.2).collect();
    assert_eq!(late, vec![1000]);
}

/// Checks what subscribers saw: every (key, n) of `keys` × `per_key` at
/// least once, each key's in order (a step back is a delivery again), and
/// at most `max_dup` deliveries again in all.
fn check_delivery(
    got: &[(String, String, i64, i64)],
    subs: &[&str],
    keys: usize,
    per_key: i64,
    crashes: usize,
    max_dup: usize,
) {
    for sub in subs {
        let mut by_key: HashMap<&str, Vec<i64>> = HashMap::new();
        for (s, key, n, _) in got {
            if s == sub {
                by_key.entry(key).or_default().push(*n);
            }
        }
        assert_eq!(by_key.len(), keys, "{sub}: keys seen");
        let mut dups = 0;
        for (key, ns) in by_key {
            // In order; a step back is a delivery again (after a crash).
            let mut want = 0;
            for &n in &ns {
                match n.cmp(&want) {
                    std::cmp::Ordering::Equal => want += 1,
                    std::cmp::Ordering::Less => dups += 1,
                    std::cmp::Ordering::Greater => panic!("{sub}: key {key} got {n} before {want}: {ns:?}"),
                }
            }
            assert_eq!(want, per_key, "{sub}: key {key} got {ns:?}");
        }
        assert!(dups <= max_dup, "{sub}: {dups} deliveries again (at most {max_dup} after {crashes} crashes)");
        eprintln!(
            "{sub}: {} deliveries, {dups} again after {crashes} crashes",
            got.iter().filter(|g| g.0 == *sub).count()
        );
    }
}

/// 3 subscribers, 10,000 events over 100 keys in `PARTITIONS` partitions,
/// and 2 `kill -9` while batches run: each subscriber gets every event at
/// least once, in order per key, with at most one batch per partition (a
/// partition has one in flight) delivered again per crash: with one
/// partition, at most one batch per crash.
fn crash_test(config: &str, partitions: u32) {
    let partitions_in_flight = partitions as usize;
    const BATCH: usize = 50;
    let mut s = TestServer::start(config);
    // A little work per batch, so that kills land while batches run.
    let sink = SINK.replace("local items = {}", "local items = {} for i = 1, 200000 do end");
    assert_eq!(s.create("sink", &sink, "").status, 201);
    create_topic(&s, "events", partitions, "");
    create_topic(&s, "seen", 1, "");
    let subs = ["s1", "s2", "s3"];
    for sub in subs {
        create_sub(&s, sub, "events", "sink", &format!(r#","batch_size":{BATCH}"#));
    }
    for round in 0..10 {
        let batch: Vec<Value> = (0..1000)
            .map(|i| {
                let n = round * 10 + i / 100;
                json!({"key": format!("key-{}", i % 100), "payload": {"n": n}})
            })
            .collect();
        let r = publish_batch(&s, "events", &batch);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let total = 3 * 10_000;
    for crash in 1..=2 {
        let at = total * crash / 3;
        assert!(wait_until(Duration::from_secs(120), || seen(&s).len() >= at), "{} of {at}", seen(&s).len());
        s = s.restart();
    }
    assert!(
        wait_until(Duration::from_secs(300), || {
            let got = seen(&s);
            subs.iter().all(|sub| {
                let mut distinct: Vec<(&str, i64)> =
                    got.iter().filter(|g| g.0 == *sub).map(|g| (g.1.as_str(), g.2)).collect();
                distinct.sort_unstable();
                distinct.dedup();
                distinct.len() == 10_000
            })
        }),
        "not every event arrived"
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = seen(&s);
    check_delivery(&got, &subs, 100, 100, 2, 2 * partitions_in_flight * BATCH);
}

#[test]
fn crashes_lose_no_event_and_repeat_at_most_a_batch_on_sqlite() {
    crash_test("", 4);
    crash_test("", 1);
}

#[test]
fn crashes_lose_no_event_and_repeat_at_most_a_batch_on_mongodb() {
    let m = Mongo::start();
    crash_test(&format!("Mongodb {{ url = {:?}, database = {:?} }}\n", m.uri(), m.fresh_db()), 4);
    crash_test(&format!("Mongodb {{ url = {:?}, database = {:?} }}\n", m.uri(), m.fresh_db()), 1);
}

/// Two servers on one MongoDB share a subscription's partitions without
/// delivering anything twice while both live; when one dies, the other
/// takes its partitions over once their leases end.
#[test]
fn two_servers_share_partitions_and_one_takes_over_from_a_dead_one() {
    let m = Mongo::start();
    let config = format!("Mongodb {{ url = {:?}, database = {:?} }}\n", m.uri(), m.fresh_db());
    let mut a = TestServer::start(&config);
    let b = TestServer::start(&config);
    assert_eq!(a.create("sink", SINK, "").status, 201);
    create_topic(&a, "events", 4, "");
    create_topic(&a, "seen", 1, "");
    create_sub(&a, "s", "events", "sink", r#","batch_size":20"#);
    std::thread::sleep(Duration::from_secs(2));
    let publish_round = |s: &TestServer, round: i64| {
        let batch: Vec<Value> = (0..200)
            .map(|i| json!({"key": format!("key-{}", i % 20), "payload": {"n": round * 10 + i / 20}}))
            .collect();
        assert_eq!(publish_batch(s, "events", &batch).status, 201);
    };
    publish_round(&a, 0);
    publish_round(&b, 1);
    assert!(wait_until(Duration::from_secs(30), || seen(&b).len() >= 400), "{}", seen(&b).len());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(seen(&b).len(), 400, "nothing twice while both servers live");
    // Kill the server that owns partitions (maybe both own some).
    a.kill9();
    let killed = Instant::now();
    publish_round(&b, 2);
    assert!(wait_until(Duration::from_secs(30), || seen(&b).len() >= 600), "{}", seen(&b).len());
    eprintln!("the survivor delivered everything {:?} after the kill", killed.elapsed());
    check_delivery(&seen(&b), &["s"], 20, 30, 0, 0);
}
