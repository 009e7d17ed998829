//! Overload: bounded waiting invocations, a bounded queue, and one memory
//! budget for all Lua states.

mod common;

use std::time::Duration;

use common::{read_response, send, TestServer, HELLO};

#[test]
fn too_many_waiting_invocations_get_503() {
    let s = TestServer::start("Limits { max_waiting = 2 }");
    s.create("spin", "function main() while true do end end", r#""timeout": 4000, "instructions": 10000000000"#);
    s.create("hello", HELLO, "");
    let mut spinners: Vec<_> = (0..2).map(|_| s.connect()).collect();
    for c in spinners.iter_mut() {
        send(c, "POST", "/actions/spin/block", Some("{}"));
    }
    // The server takes the spinners in its own time (CI machines are busy):
    // hello answers normally until both are running, then gets 503.
    let deadline = std::time::Instant::now() + Duration::from_millis(3000);
    let r = loop {
        let r = s.post("/actions/hello/block", "{}");
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((r.status, r.error_kind()), (503, "overloaded".to_string()), "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert_eq!(s.get("/ping").status, 200);
    for c in spinners.iter_mut() {
        assert_eq!(read_response(c).error_kind(), "timeout");
    }
    assert_eq!(s.post("/actions/hello/block", "{}").status, 200);
}

#[test]
fn a_full_queue_gets_503() {
    let s = TestServer::start("Invocations { concurrency = 1, max_queued = 5 }");
    s.create("spin", "function main() while true do end end", r#""timeout": 2000"#);
    let statuses: Vec<u16> = (0..12).map(|_| s.post("/actions/spin", "{}").status).collect();
    assert!(statuses.contains(&202) && statuses.contains(&503), "{statuses:?}");
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!(accepted <= 7, "{statuses:?}");
}

#[test]
fn all_lua_states_share_one_memory_budget() {
    // 8 MiB for every Lua state of the server together.
    let s = TestServer::start("Limits { total_memory = 8192, maxmem = 65536 }");
    // An action's own limit would allow 20 MiB; the server's budget does not.
    s.create("big", "function main() return #string.rep('x', 20 * 1024 * 1024) end", "");
    assert_eq!(s.post("/actions/big/block", "").error_kind(), "memory");
    // Many actions that each keep 1 MiB in a global: idle instances are
    // evicted to make room, and every invocation still succeeds.
    for i in 0..20 {
        let r =
            s.create(&format!("hold{i}"), "blob = string.rep('y', 1024 * 1024) function main() return #blob end", "");
        assert_eq!(r.status, 201, "{}", r.text());
    }
    for round in 0..2 {
        for i in 0..20 {
            let r = s.post(&format!("/actions/hold{i}/block"), "");
            assert_eq!(r.status, 200, "round {round}, hold{i}: {}", r.text());
        }
    }
}
