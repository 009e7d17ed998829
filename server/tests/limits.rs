//! Limits end to end: memory, instructions and time, and fairness while
//! an action spins.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, HELLO};

const EVIL: &str =
    "function main(args)\n  strings = {}\n  while true do\n    table.insert(strings, 'evil')\n  end\nend\n";

#[test]
fn memory_limit_aborts_and_is_logged() {
    let s = TestServer::start("");
    assert_eq!(s.create("evil", EVIL, r#""maxmem": 100000"#).status, 201);
    let r = s.post("/actions/evil/block", "");
    assert_eq!((r.status, r.error_kind()), (500, "memory".to_string()), "{}", r.text());
    assert!(
        s.wait_log("Action 'evil' aborted after violating memory constraints", Duration::from_secs(5)),
        "{}",
        s.log()
    );
    // The next invocation is unaffected.
    s.create("hello", HELLO, "");
    assert_eq!(s.post("/actions/hello/block", "").status, 200);
    assert_eq!(s.post("/actions/evil/block", "").error_kind(), "memory");
}

#[test]
fn timeout_aborts_after_about_the_limit() {
    let s = TestServer::start("");
    assert_eq!(s.create("spin", "function main() while true do end end", r#""timeout": 200"#).status, 201);
    let start = Instant::now();
    let r = s.post("/actions/spin/block", "");
    let took = start.elapsed();
    assert_eq!((r.status, r.error_kind()), (500, "timeout".to_string()), "{}", r.text());
    assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(700), "{took:?}");
}

#[test]
fn instruction_budget_aborts() {
    let s = TestServer::start("");
    s.create(
        "count",
        "function main() local i = 0 while true do i = i + 1 end end",
        r#""instructions": 100000, "timeout": 10000"#,
    );
    let r = s.post("/actions/count/block", "");
    assert_eq!((r.status, r.error_kind()), (500, "instructions".to_string()), "{}", r.text());
}

#[test]
fn server_defaults_apply_when_limits_are_absent() {
    let s = TestServer::start("Limits { timeout = 150, maxmem = 2048 }");
    s.create("spin", "function main() while true do end end", "");
    let start = Instant::now();
    assert_eq!(s.post("/actions/spin/block", "").error_kind(), "timeout");
    assert!(start.elapsed() < Duration::from_millis(600));
    s.create("evil", EVIL, "");
    assert_eq!(s.post("/actions/evil/block", "").error_kind(), "memory");
}

#[test]
fn a_spinning_action_does_not_stop_other_requests() {
    let s = TestServer::start("");
    s.create("spin", "function main() while true do end end", r#""timeout": 3000"#);
    s.create("hello", HELLO, "");
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let addr = s.addr;
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                common::send(&mut c, "POST", "/actions/spin/block", Some(""));
                common::read_response(&mut c).status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut worst = Duration::ZERO;
    let mut conn = s.connect();
    for i in 0..40 {
        let start = Instant::now();
        if i % 2 == 0 {
            common::send(&mut conn, "GET", "/ping", None);
        } else {
            common::send(&mut conn, "POST", "/actions/hello/block", Some("{}"));
        }
        let r = common::read_response(&mut conn);
        assert_eq!(r.status, 200);
        worst = worst.max(start.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(worst < Duration::from_millis(50), "slowest answer while spinning took {worst:?}");
    for h in spinners {
        assert_eq!(h.join().unwrap(), 500);
    }
}

/// Many long invocations together hold a request back about one time
/// slice a turn of the loop, not one slice each: with 16 spinning, the
/// typical answer takes a few milliseconds (16 ms if each spinner ran a
/// 1 ms slice before the reactor looked at the sockets again).
#[test]
fn many_spinning_actions_share_one_slice_a_turn() {
    let s = TestServer::start("");
    let spin =
        s.create("spin", "function main() while true do end end", r#""timeout": 2000, "instructions": 10000000000"#);
    assert_eq!(spin.status, 201);
    s.create("hello", HELLO, "");
    let mut spinners: Vec<_> = (0..16).map(|_| s.connect()).collect();
    for c in &mut spinners {
        common::send(c, "POST", "/actions/spin/block", Some(""));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut conn = s.connect();
    let mut took = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        common::send(&mut conn, "POST", "/actions/hello/block", Some("{}"));
        assert_eq!(common::read_response(&mut conn).status, 200);
        took.push(start.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(median < Duration::from_millis(8), "median answer with 16 spinners took {median:?} (all: {took:?})");
    for c in &mut spinners {
        assert_eq!(common::read_response(c).status, 500);
    }
}
