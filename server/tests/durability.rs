//! Asynchronous invocations survive restarts, including `kill -9`.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::TestServer;

fn status_of(s: &TestServer, id: &str) -> (u16, serde_json::Value) {
    let r = s.get(&format!("/invocation/{id}?wait=0"));
    (r.status, serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn queued_invocations_run_after_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = "Invocations { concurrency = 2 }";
    let s = TestServer::start_in(tmp.path(), cfg);
    assert_eq!(
        s.create("slow", "function main(a) local x = 0 for i = 1, 2000000 do x = x + 1 end return a.n end", "").status,
        201
    );
    let mut ids = Vec::new();
    for n in 0..60 {
        let r = s.post("/actions/slow", &format!(r#"{{"n": {n}}}"#));
        assert_eq!(r.status, 202, "{}", r.text());
        ids.push((n, r.json()["InvocationId"].as_str().unwrap().to_string()));
    }
    // Kill while most are still queued or running.
    let s = s.restart();
    let start = Instant::now();
    let mut done = HashSet::new();
    while done.len() < ids.len() && start.elapsed() < Duration::from_secs(60) {
        for (n, id) in &ids {
            if done.contains(id) {
                continue;
            }
            let (status, body) = status_of(&s, id);
            match status {
                200 => {
                    assert_eq!(body, serde_json::json!(n), "invocation {id} returned the wrong result");
                    done.insert(id.clone());
                }
                202 => {}
                other => panic!("invocation {id} ended with {other}: {body}"),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(done.len(), ids.len(), "not every accepted invocation finished after the restart");
    let recs = s.get("/invocations?action=slow&limit=1000").json();
    let reruns = recs.as_array().unwrap().iter().filter(|r| r["attempts"].as_u64().unwrap_or(0) > 1).count();
    eprintln!("{reruns} invocations ran a second time after the kill");
}

#[test]
fn actions_survive_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(tmp.path(), "");
    s.create("keep", "function main() return 'kept' end", "");
    let s = s.restart();
    assert_eq!(s.post("/actions/keep/block", "").json(), serde_json::json!("kept"));
}
