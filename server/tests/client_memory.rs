//! Clients that try to fill the server's memory or disk, against the real
//! `slserver`: bodies that stop one byte short, slow readers of big
//! answers, and route requests whose records would keep everything.
//! Each test states the bound it checks; SECURITY.md names them.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{connect, ping, status_kib, wait_until, ResponseReader, TestServer};
use serde_json::json;

/// Writes as much of `data` as the socket takes without blocking, from
/// `*pos`; returns whether it wrote anything.
fn write_some(c: &mut TcpStream, data: &[u8], pos: &mut usize) -> bool {
    let start = *pos;
    while *pos < data.len() {
        match c.write(&data[*pos..]) {
            Ok(n) => *pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    *pos > start
}

/// 600 clients each send a head announcing 1 MiB and all of the body but
/// its last byte. The server holds at most `request_memory` (16 MiB here)
/// of their bodies, plus 16 KiB a connection, and keeps serving; when the
/// last bytes come, every request is answered.
#[test]
fn bodies_that_stop_one_byte_short_hold_at_most_the_request_memory() {
    // The requests wait for memory: give them time (request_timeout would
    // otherwise answer those still waiting with 408).
    let s = TestServer::start("Nulldb {}\nServer { request_memory = 16777216, request_timeout = 120000 }");
    let pid = s.child.id();
    let base = status_kib(pid, "VmRSS");
    let n = 600;
    let body_len = 1 << 20;
    let head = format!("POST /actions/nothing/block HTTP/1.1\r\nHost: x\r\nContent-Length: {body_len}\r\n\r\n");
    let mut request = head.into_bytes();
    request.extend(std::iter::repeat_n(b' ', body_len));
    let short = request.len() - 1;
    let mut conns: Vec<(TcpStream, usize)> = (0..n)
        .map(|_| {
            let c = connect(s.addr);
            c.set_nonblocking(true).unwrap();
            (c, 0)
        })
        .collect();
    // Send until the server takes no more (or everything but the last byte).
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(2) {
        let mut progress = false;
        for (c, pos) in &mut conns {
            progress |= write_some(c, &request[..short], pos);
        }
        if progress {
            quiet = Instant::now();
        }
    }
    let sent: usize = conns.iter().map(|(_, p)| p).sum();
    let grown = status_kib(pid, "VmRSS").saturating_sub(base);
    eprintln!("{n} clients sent {} MiB of bodies; the server grew by {grown} KiB", sent >> 20);
    assert!(sent > 100 << 20, "the clients got only {sent} bytes out");
    let (status, took) = ping(s.addr, Duration::from_secs(5)).expect("a ping meanwhile");
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "a ping took {took:?}");
    // 16 MiB of bodies, 16 KiB a connection, and the allocator's slack.
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB");
    // Now the rest: every request completes and is answered, in turn.
    for (c, pos) in &mut conns {
        c.set_nonblocking(false).unwrap();
        c.write_all(&request[*pos..]).unwrap();
    }
    for (i, (c, _)) in conns.into_iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let r = ResponseReader::new(c).read_one().unwrap_or_else(|| panic!("request {i} never answered"));
        assert_eq!(r.status, 404, "request {i}: {}", r.text());
    }
}

/// Open file descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// 20 clients ask a route for a 16 MB page (more than the kernel's socket
/// buffers take) and read it one byte a second (never idle, so
/// `idle_timeout` does not end them). The server holds at most about
/// `response_memory` (32 MiB here) of answers waiting, closing the
/// connections of the slowest readers past it, and closes each remaining
/// slow reader `send_timeout` (3 s here) after its answer began to wait;
/// others are served meanwhile.
#[test]
fn slow_readers_hold_at_most_the_response_memory_for_at_most_the_send_timeout() {
    let s = TestServer::start(
        "Nulldb {}\nRoutes { port = 0 }\nServer { response_memory = 33554432, send_timeout = 3000 }\n\
         Invocations { record_blocking = false }",
    );
    let pid = s.child.id();
    let page = "function main() return http.response{status = 200, body = string.rep('x', 16000000)} end";
    assert_eq!(s.create("page", page, "").status, 201);
    assert_eq!(s.route("GET", "/page", "page", "").status, 201);
    let web = s.routes_addr.unwrap();
    // Warm up, then measure from here.
    assert_eq!(s.web("GET", "/page", &[], b"").body.len(), 16_000_000);
    let (base_rss, base_fds) = (status_kib(pid, "VmRSS"), fd_count(pid));
    let n = 20;
    let mut readers: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut c = connect(web);
            c.write_all(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            c
        })
        .collect();
    let start = Instant::now();
    let mut peak = 0;
    let mut open_at_1s = None;
    while start.elapsed() < Duration::from_secs(6) {
        for c in &mut readers {
            let _ = c.read(&mut [0u8; 1]);
        }
        peak = peak.max(status_kib(pid, "VmRSS").saturating_sub(base_rss));
        if open_at_1s.is_none() && start.elapsed() >= Duration::from_secs(1) {
            open_at_1s = Some(fd_count(pid).saturating_sub(base_fds));
        }
        // Served meanwhile. (Not within 50 ms: the first turn copies 20
        // answers of 16 MB on the loop, seconds in a debug build; bounding
        // that is the sandbox's part of the work, not this one's.)
        let (status, _) = ping(s.addr, Duration::from_secs(10)).expect("a ping meanwhile");
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(250));
    }
    let open_at_6s = fd_count(pid).saturating_sub(base_fds);
    eprintln!(
        "the server grew by at most {peak} KiB; slow readers' connections open after 1 s: {open_at_1s:?}, \
         after 6 s: {open_at_6s}"
    );
    // 32 MiB of answers waiting, the copies of the answer being made, and
    // the allocator's slack: far below the 320 MB asked for.
    assert!(peak < 160 * 1024, "the server grew by {peak} KiB");
    let open_at_1s = open_at_1s.unwrap();
    assert!(open_at_1s > 0 && open_at_1s < n, "{open_at_1s} of {n} open after 1 s (the slowest closed at the bound)");
    assert_eq!(open_at_6s, 0, "slow readers' connections still open after send_timeout");
    // A reader that reads is still served in full.
    assert_eq!(s.web("GET", "/page", &[], b"").body.len(), 16_000_000);
}

/// Route runs are recorded, but a record keeps at most `record_limit`
/// (64 KiB by default) of the arguments, the result, the logs and the
/// error, and never the client's credential headers: 100 requests with a
/// 1 MiB body grow the database by a few MB, not 300 MB, and the record
/// of a request with `Authorization` and `Cookie` has them redacted.
#[test]
fn route_records_keep_bounded_fields_and_no_credentials() {
    let s = TestServer::start("Routes { port = 0 }");
    let echo = "function main(a) print(string.rep('log', 50000)) return a end";
    assert_eq!(s.create("echo", echo, "").status, 201);
    assert_eq!(s.route("POST", "/echo", "echo", "").status, 201);
    let form = format!("a={}", "b".repeat((1 << 20) - 2));
    let db = |s: &TestServer| -> u64 {
        std::fs::read_dir(s.dir.join("data")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
    };
    let before = db(&s);
    for _ in 0..100 {
        let r = s.web("POST", "/echo", &["Content-Type: application/x-www-form-urlencoded"], form.as_bytes());
        assert_eq!(r.status, 200);
        assert!(r.body.len() > 1 << 20, "the client gets the whole answer");
    }
    let r = s.web("POST", "/echo", &["Authorization: Bearer end-user-secret", "Cookie: session=s3cret"], b"{}");
    let id = r.header("X-SL-Invocation").unwrap().to_string();
    assert!(wait_until(Duration::from_secs(10), || s
        .get("/invocations?action=echo&limit=1000")
        .json()
        .as_array()
        .is_some_and(|a| a.len() == 101)));
    let grown = db(&s).saturating_sub(before);
    eprintln!("100 route runs with 1 MiB bodies grew the database by {} KiB", grown / 1024);
    assert!(grown < 40 << 20, "the database grew by {grown} bytes");
    let rec = s.get("/invocations?action=echo&limit=1000").json();
    let all = rec.as_array().unwrap();
    let big = all.iter().find(|r| r["id"] != json!(id)).unwrap();
    assert_eq!(big["args"], json!({"$sl_truncated": {"over": 65536}}));
    assert_eq!(big["result"], json!({"$sl_truncated": {"over": 65536}}));
    assert!(big["logs"].as_str().unwrap().ends_with("more bytes not kept]"), "{}", big["logs"]);
    let small = all.iter().find(|r| r["id"] == json!(id)).unwrap();
    let headers = &small["args"]["http"]["headers"];
    assert_eq!(headers["authorization"], "[redacted]");
    assert_eq!(headers["cookie"], "[redacted]");
    let args = small["args"].to_string();
    assert!(!args.contains("s3cret") && !args.contains("end-user-secret"), "{args}");
}
