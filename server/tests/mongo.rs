//! The MongoDB store end to end: the real server on a MongoDB-protocol
//! server (`$MONGODB_URI`, else nx-27017 from PyPI), several servers on one
//! database, and MongoDB going away and coming back.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{read_response, send, Resp, TestServer, HELLO};
use serde_json::json;
use sl_testkit::Mongo;

fn mongo_config(m: &Mongo, db: &str, extra: &str) -> String {
    format!("Mongodb {{ url = {:?}, database = {db:?} }}\n{extra}", m.uri())
}

/// Waits for every invocation to reach a terminal state; returns the
/// status code and body per id.
fn wait_all(servers: &[&TestServer], ids: &[String], limit: Duration) -> HashMap<String, Resp> {
    let start = Instant::now();
    let mut done = HashMap::new();
    let mut conns: Vec<_> = servers.iter().map(|s| s.connect()).collect();
    while done.len() < ids.len() && start.elapsed() < limit {
        for (i, id) in ids.iter().enumerate() {
            if done.contains_key(id) {
                continue;
            }
            let c = &mut conns[i % servers.len()];
            send(c, "GET", &format!("/invocation/{id}?wait=0"), None);
            let r = read_response(c);
            if r.status != 202 {
                done.insert(id.clone(), r);
            }
        }
        if done.len() < ids.len() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    done
}

fn submit_many(servers: &[&TestServer], action: &str, n: usize) -> Vec<String> {
    let mut conns: Vec<_> = servers.iter().map(|s| s.connect()).collect();
    (0..n)
        .map(|i| {
            let c = &mut conns[i % servers.len()];
            send(c, "POST", &format!("/actions/{action}"), Some(&format!(r#"{{"n": {i}}}"#)));
            let r = read_response(c);
            assert_eq!(r.status, 202, "{}", r.text());
            r.json()["InvocationId"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn the_walkthrough_on_mongodb() {
    let m = Mongo::start();
    let s = TestServer::start(&mongo_config(&m, &m.fresh_db(), ""));
    assert_eq!(s.get("/actions").json(), json!([]));
    assert_eq!(s.create("hello", HELLO, "").status, 201);
    assert_eq!(s.create("hello", HELLO, "").status, 409);
    assert_eq!(s.post("/actions/hello/block", r#"{"name": "from Lua"}"#).json(), json!("Hello from Lua"));
    let id = s.post("/actions/hello", r#"{"name": "async"}"#).json()["InvocationId"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/invocation/{id}?wait=10")).json(), json!("Hello async"));
    assert_eq!(s.get("/actions").json()[0]["name"], "hello");
    let s = s.restart();
    assert_eq!(s.post("/actions/hello/block", "").json(), json!("Hello World"));
    assert_eq!(s.request("DELETE", "/actions/hello", None).status, 200);
    assert_eq!(s.post("/actions/hello/block", "").status, 404);
}

#[test]
fn three_servers_share_one_database() {
    let m = Mongo::start();
    let db = m.fresh_db();
    // Short leases so that the work of a killed server is taken over quickly.
    let cfg = mongo_config(
        &m,
        &db,
        &format!(
            "Limits {{ timeout = 2000, max_timeout = 2000 }}\nInvocations {{ lease = 3000, concurrency = 8 }}\nPlugin \"skeleton\" {{ file = {:?} }}",
            common::plugin_lib("sl_skeleton")
        ),
    );
    let mut servers: Vec<TestServer> = (0..3).map(|_| TestServer::start(&cfg)).collect();
    // `nap` milliseconds of wall-clock time in a plugin, whatever the build.
    let code = "function main(a) if a.nap then call('skeleton', 'sleep', {ms = a.nap}) end return a.n end";
    assert_eq!(servers[0].create("work", code, r#""timeout": 2000"#).status, 201);

    // Any server runs an action created through another, and answers for
    // any invocation.
    let refs: Vec<&TestServer> = servers.iter().collect();
    let ids = submit_many(&refs, "work", 1000);
    let done = wait_all(&refs, &ids, Duration::from_secs(240));
    assert_eq!(done.len(), ids.len(), "not every invocation finished");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(done[id].json(), json!(i), "invocation {id}");
    }
    // Exactly once: every record was claimed a single time.
    let recs = servers[1].get("/invocations?action=work&limit=1000").json();
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 1000);
    assert!(recs.iter().all(|r| r["attempts"] == 1 && r["status"] == "succeeded"), "some invocation ran twice");

    // A second batch of slower invocations; one server dies in the middle.
    let refs: Vec<&TestServer> = servers.iter().collect();
    let mut conns: Vec<_> = refs.iter().map(|s| s.connect()).collect();
    let ids: Vec<String> = (0..60)
        .map(|i| {
            let c = &mut conns[i % 3];
            send(c, "POST", "/actions/work", Some(&format!(r#"{{"n": {i}, "nap": 1500}}"#)));
            read_response(c).json()["InvocationId"].as_str().unwrap().to_string()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    servers[2].kill9();
    let survivors: Vec<&TestServer> = servers[..2].iter().collect();
    let done = wait_all(&survivors, &ids, Duration::from_secs(240));
    assert_eq!(done.len(), ids.len(), "invocations of the killed server never finished");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(done[id].status, 200, "{id}: {}", done[id].text());
        assert_eq!(done[id].json(), json!(i));
    }
    let recs = servers[0].get("/invocations?action=work&limit=1000").json();
    let retried = recs.as_array().unwrap().iter().filter(|r| r["attempts"].as_u64().unwrap_or(0) > 1).count();
    eprintln!("{retried} invocations were taken over from the killed server");
    assert!(retried > 0, "the killed server held no invocation: the test did not exercise the take-over");
    servers.truncate(2);
}

#[test]
fn changes_through_one_server_reach_the_others_within_a_second() {
    let m = Mongo::start();
    let cfg = mongo_config(&m, &m.fresh_db(), "");
    let a = TestServer::start(&cfg);
    let b = TestServer::start(&cfg);
    a.create("v", "function main() return 1 end", "");
    assert_eq!(b.post("/actions/v/block", "").json(), json!(1));
    use base64::Engine;
    let code = base64::engine::general_purpose::STANDARD.encode("function main() return 2 end");
    assert_eq!(a.request("PUT", "/actions/v", Some(&format!(r#"{{"code":"{code}"}}"#))).status, 200);
    let start = Instant::now();
    while b.post("/actions/v/block", "").json() != json!(2) {
        assert!(start.elapsed() < Duration::from_millis(1500), "server b still runs the old version");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("update seen by the other server after {:?}", start.elapsed());
    assert_eq!(a.request("DELETE", "/actions/v", None).status, 200);
    let start = Instant::now();
    while b.post("/actions/v/block", "").status != 404 {
        assert!(start.elapsed() < Duration::from_millis(1500), "server b still runs a deleted action");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn mongodb_going_away_gives_503_and_the_server_recovers() {
    let mut m = Mongo::start_local();
    let s = TestServer::start(&mongo_config(&m, &m.fresh_db(), ""));
    s.create("hello", HELLO, "");
    assert_eq!(s.post("/actions/hello/block", "").status, 200);
    m.stop();
    let r = s.get("/actions");
    assert_eq!((r.status, r.error_kind()), (503, "unavailable".to_string()), "{}", r.text());
    assert!(r.header("Retry-After").is_some());
    assert_eq!(s.post("/actions/hello", "").status, 503);
    // Warm actions keep running.
    assert_eq!(s.post("/actions/hello/block", r#"{"name": "still"}"#).json(), json!("Hello still"));
    m.restart();
    let start = Instant::now();
    while s.get("/actions").status != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let id = s.post("/actions/hello", "").json()["InvocationId"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/invocation/{id}?wait=10")).json(), json!("Hello World"));
}

#[test]
fn an_unreachable_mongodb_at_start_up_is_retried() {
    let mut m = Mongo::start_local();
    let db = m.fresh_db();
    m.stop();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = mongo_config(&m, &db, "");
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        m.restart();
        m
    });
    // start_in waits for the "listening" line, printed once the store opened.
    let s = TestServer::start_in(tmp.path(), &cfg);
    let _m = restarter.join().unwrap();
    assert!(s.log().contains("retrying"), "{}", s.log());
    assert_eq!(s.get("/ping").status, 200);
}

/// Sends an asynchronous submit with an `Idempotency-Key` to `s`.
fn keyed_submit(s: &TestServer, action: &str, key: &str, body: &str) -> Resp {
    use std::io::Write;
    let mut c = s.connect();
    let req = format!(
        "POST /actions/{action} HTTP/1.1\r\nHost: test\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).unwrap();
    read_response(&mut c)
}

/// One key sent to two servers at once, many times: one invocation, one
/// id for every client, and one run; the key with other arguments is a 422
/// on either server.
#[test]
fn an_idempotency_key_holds_across_servers() {
    let m = Mongo::start();
    let cfg = mongo_config(&m, &m.fresh_db(), "");
    let a = TestServer::start(&cfg);
    let b = TestServer::start(&cfg);
    assert_eq!(a.create("once", "function main(x) return x.n end", "").status, 201);
    for round in 0..5 {
        let key = format!("order-{round}");
        let answers: Vec<Resp> = std::thread::scope(|scope| {
            let clients: Vec<_> = (0..16)
                .map(|i| {
                    let (s, key) = (if i % 2 == 0 { &a } else { &b }, &key);
                    scope.spawn(move || keyed_submit(s, "once", key, &format!(r#"{{"n":{round}}}"#)))
                })
                .collect();
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let ids: std::collections::HashSet<String> = answers
            .iter()
            .map(|r| {
                assert_eq!(r.status, 202, "{}", r.text());
                r.json()["InvocationId"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
        let replayed = answers.iter().filter(|r| r.header("idempotent-replayed") == Some("true")).count();
        assert_eq!(replayed, 15, "round {round}: every answer but the first is a replay");
        let id = ids.into_iter().next().unwrap();
        let done = wait_all(&[&a, &b], std::slice::from_ref(&id), Duration::from_secs(20));
        assert_eq!(done[&id].json(), json!(round));
        for s in [&a, &b] {
            let r = keyed_submit(s, "once", &key, r#"{"n":-1}"#);
            assert_eq!(r.status, 422, "{}", r.text());
            assert!(r.text().contains(&id), "{}", r.text());
        }
    }
    let all = a.get("/invocations?action=once&limit=100").json();
    assert_eq!(all.as_array().unwrap().len(), 5, "one record per key: {all}");
    assert!(all.as_array().unwrap().iter().all(|r| r["attempts"] == json!(1)), "each ran once: {all}");
}
