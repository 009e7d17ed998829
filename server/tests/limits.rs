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
    assert_eq!(s.create("evil", EVIL, r#""maxmem": 50000"#).status, 201);
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

/// A plain table whose keys 2^0 to 2^62, given in one constructor, are
/// all in its hash part, so that its border (`#t`) is 2^62: `table.insert`
/// at 1 shifts 2^62 slots, which Lua's C loop did without one instruction
/// or allocation (no limit stopped it).
fn sparse_border_insert() -> String {
    let keys: Vec<String> = (0..63).map(|k| format!("[{}]=true", 1u64 << k)).collect();
    format!("local t = {{{}}}\ntable.insert(t, 1, 'x')\n", keys.join(", "))
}

/// `GET /ping` on a connection of its own, timed (`None` if no answer
/// within `patience`).
fn ping(addr: std::net::SocketAddr, patience: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(patience)).ok()?;
    common::send(&mut c, "GET", "/ping", None);
    common::try_read_response(&mut c).filter(|r| r.status == 200).map(|_| start.elapsed())
}

#[test]
fn a_huge_shift_ends_at_its_limits_and_sigterm_still_stops_the_server() {
    let mut s = TestServer::start("");
    let code = format!("function main()\n{}return 'inserted'\nend\n", sparse_border_insert());
    let r = s.create("shift", &code, r#""timeout": 200, "instructions": 100000"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let mut attack = s.connect();
    attack.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    common::send(&mut attack, "POST", "/actions/shift/block", Some(""));
    let mut worst = Duration::ZERO;
    while start.elapsed() < Duration::from_millis(150) {
        worst = worst.max(ping(s.addr, Duration::from_secs(2)).expect("no answer to /ping while the shift runs"));
    }
    assert!(worst < Duration::from_millis(50), "slowest ping while the shift ran: {worst:?}");
    let r = common::try_read_response(&mut attack).expect("the shift was not answered");
    let took = start.elapsed();
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(["timeout", "instructions"].contains(&r.error_kind().as_str()), "{}", r.text());
    assert!(took < Duration::from_millis(300), "the shift was answered after {took:?}");
    // SIGTERM while another shift runs stops the server (the run is
    // dropped unanswered, as any at shutdown).
    common::send(&mut attack, "POST", "/actions/shift/block", Some(""));
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: `kill` with the pid of our child process.
    assert_eq!(unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let stopping = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(stopping.elapsed() < Duration::from_secs(3), "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The chunk of a new action runs at create time on the blocking pool
/// (4 threads): creates of a chunk that hangs there must each end at the
/// action's limits, so that the pool, and every store operation queued
/// behind it, goes on.
#[test]
fn creates_of_hanging_chunks_do_not_wedge_the_blocking_pool() {
    let s = TestServer::start("");
    let code = format!("{}function main() return 1 end\n", sparse_border_insert());
    let creates: Vec<_> = (0..6)
        .map(|i| {
            let (addr, code) = (s.addr, code.clone());
            std::thread::spawn(move || {
                use base64::Engine;
                let code = base64::engine::general_purpose::STANDARD.encode(code);
                let body = format!(r#"{{"name":"hang{i}","code":"{code}","timeout":200,"instructions":100000}}"#);
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let start = Instant::now();
                common::send(&mut c, "POST", "/actions", Some(&body));
                (common::try_read_response(&mut c), start.elapsed())
            })
        })
        .collect();
    for h in creates {
        let (r, took) = h.join().unwrap();
        let r = r.expect("a create of a hanging chunk was not answered");
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("limit"), "{}", r.text());
        assert!(took < Duration::from_secs(2), "a create took {took:?}");
    }
    // The pool is free: store operations and creates go through.
    let start = Instant::now();
    assert_eq!(s.get("/actions").status, 200);
    assert_eq!(s.create("hello", HELLO, "").status, 201);
    assert_eq!(s.post("/actions/hello/block", "{}").status, 200);
    assert!(start.elapsed() < Duration::from_secs(2), "the store took {:?}", start.elapsed());
}

/// `Limits.max_string` (KiB): the default refuses a string of 8 MiB and one
/// byte with a message that names the setting; a server configured for
/// more lets an action build it.
#[test]
fn max_string_is_a_server_setting() {
    const BUILD: &str = "function main(a) local s = string.rep('x', a.n) return #(s .. '') end";
    let n = 8 * 1024 * 1024 + 1;
    let s = TestServer::start("");
    assert_eq!(s.create("long", BUILD, r#""maxmem": 65536"#).status, 201);
    let r = s.post("/actions/long/block", &format!(r#"{{"n": {n}}}"#));
    assert_eq!((r.status, r.error_kind()), (500, "memory".to_string()), "{}", r.text());
    assert!(r.text().contains("a string may hold at most 8 MiB on this server (Limits.max_string"), "{}", r.text());
    let r = s.post("/actions/long/block", &format!(r#"{{"n": {}}}"#, n - 1));
    assert_eq!((r.status, r.text()), (200, (n - 1).to_string()));

    let s = TestServer::start("Limits { max_string = 32768 }");
    assert_eq!(s.create("long", BUILD, r#""maxmem": 65536"#).status, 201);
    let r = s.post("/actions/long/block", &format!(r#"{{"n": {n}}}"#));
    assert_eq!((r.status, r.text()), (200, n.to_string()));
    let r = s.post("/actions/long/block", &format!(r#"{{"n": {}}}"#, 32 * 1024 * 1024 + 1));
    assert_eq!((r.status, r.error_kind()), (500, "memory".to_string()), "{}", r.text());
    assert!(r.text().contains("at most 32 MiB"), "{}", r.text());
}

/// CPU time, in clock ticks, of the threads of process `pid` named `name`.
fn thread_ticks(pid: u32, name: &str) -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the command, in parentheses: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks
}

/// Steps of the VM that take time in proportion to the heap and cannot be
/// paused (a table's rehash, the collector's atomic step, freeing a state)
/// run on the worker's heavy thread once the heap is past
/// `Limits.offload_heap`: with `max_maxmem` at 512 MiB, an action that
/// grows one table until its memory limit (the last rehash moves some
/// 128 MiB, the state freed after holds 256 MiB or more) leaves `/ping`
/// answered within 50 ms throughout, and the heavy thread, not the
/// worker, did the work. (With the work on the loop, pings waited 120 to
/// 600 ms.)
#[test]
fn a_large_heap_takes_its_slices_off_the_event_loop() {
    let _serial = common::serial();
    let s = TestServer::start("Limits { max_maxmem = 524288, total_memory = 1048576 }\n");
    let code = "function main()\n  local h, i = {}, 0\n  while true do\n    i = i + 1\n    h[i + 0.5] = true\n  \
                end\nend\n";
    let r = s.create("grow", code, r#""timeout": 5000, "maxmem": 524288"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let pid = s.child.id();
    let (heavy_before, worker_before) = (thread_ticks(pid, "sl-heavy-0"), thread_ticks(pid, "sl-worker-0"));
    let mut attack = s.connect();
    attack.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    common::send(&mut attack, "POST", "/actions/grow/block", Some(""));
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    let mut pings = 0;
    let answer = loop {
        let took = ping(s.addr, Duration::from_secs(5)).expect("no answer to /ping while the heap grows");
        worst = worst.max(took);
        pings += 1;
        attack.set_nonblocking(true).unwrap();
        let mut peek = [0u8; 1];
        let ready = matches!(attack.peek(&mut peek), Ok(n) if n > 0);
        attack.set_nonblocking(false).unwrap();
        if ready {
            break common::read_response(&mut attack);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the action was not answered");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(answer.status, 500, "{}", answer.text());
    assert!(["memory", "timeout"].contains(&answer.error_kind().as_str()), "{}", answer.text());
    // Its state is freed after the answer: keep pinging through that too.
    for _ in 0..20 {
        worst = worst.max(ping(s.addr, Duration::from_secs(5)).expect("no answer to /ping"));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pings > 10, "{pings} pings");
    assert!(worst < Duration::from_millis(50), "slowest ping while the heap grew: {worst:?}");
    let heavy = thread_ticks(pid, "sl-heavy-0") - heavy_before;
    let worker = thread_ticks(pid, "sl-worker-0") - worker_before;
    assert!(heavy > worker * 2, "CPU ticks: heavy thread {heavy}, worker {worker}");
}
