//! Hostile clients against the real server (docs/hostile-clients.md):
//! request smuggling shapes, absurd heads, tricky paths, pipelined floods,
//! thousands of idle connections, slowloris, and clients that vanish in the
//! middle of a response. Every test ends by checking that a new client is
//! still answered quickly. Everything talks to 127.0.0.1 only, and every
//! loop is bounded in count and time.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    alive, connect, parse_response, ping, read_response, send, serial, sockets_on, status_kib, wait_until, FloodWriter,
    Resp, ResponseReader, TestServer,
};

// ---------------------------------------------------------------------------
// Helpers

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (once) and
/// returns the soft limit now in force. Servers started afterwards inherit it.
fn raise_nofile() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit only read and write `rl`.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
                return 1024;
            }
            if rl.rlim_cur < rl.rlim_max {
                let want = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    rl.rlim_cur = rl.rlim_max;
                }
            }
        }
        rl.rlim_cur
    })
}

/// The soft "Max open files" of a process, from /proc/PID/limits.
fn nofile_of(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Open file descriptors of a process once connections that clients just
/// closed are closed by the server too.
fn settled_fd_count(pid: u32) -> usize {
    std::thread::sleep(Duration::from_millis(300));
    fd_count(pid)
}

/// The bytes the server has not read yet on its connections on `port`.
/// Zero means the server has read everything its clients sent.
fn unread_by_server(port: u16) -> usize {
    sockets_on(port).iter().filter(|(state, _)| state == "01").map(|(_, rx)| rx).sum()
}

/// Clients of the server on `port` that it has not accepted yet: in its
/// listen backlog, or with their handshake not complete on its side.
fn not_accepted(port: u16) -> usize {
    sockets_on(port)
        .iter()
        .map(|(state, rx)| match state.as_str() {
            "0A" => *rx,
            "03" => 1,
            _ => 0,
        })
        .sum()
}

/// Asserts that a new client gets `GET /ping` answered with 200 quickly.
fn assert_serving(s: &TestServer) {
    let r = ping(s.addr, Duration::from_secs(5));
    let (status, took) = r.unwrap_or_else(|| panic!("the server no longer answers /ping; log:\n{}", s.log()));
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "/ping took {took:?}");
    assert!(alive(s.child.id()), "the server exited; log:\n{}", s.log());
}

/// Reads until the server closes the connection or `limit` passes; returns
/// the bytes and whether the connection was closed (EOF or reset).
fn read_until_closed(c: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while start.elapsed() < limit {
        match c.read(&mut buf) {
            Ok(0) => return (all, true),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return (all, true),
        }
    }
    (all, false)
}

/// Splits bytes into Content-Length framed responses; a trailing partial
/// response is an error.
fn split_responses(mut buf: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (resp, used) = parse_response(buf).unwrap_or_else(|| panic!("a truncated response: {buf:?}"));
        out.push(resp);
        buf = &buf[used..];
    }
    out
}

/// Sends `raw` on a new connection and collects every response until the
/// server closes it (or `limit` passes).
fn exchange(s: &TestServer, raw: &[u8], limit: Duration) -> (Vec<Resp>, bool) {
    let mut c = connect(s.addr);
    // A reset while writing (the server refused the head and closed) is fine:
    // what matters is what comes back.
    let _ = c.write_all(raw);
    let (bytes, closed) = read_until_closed(&mut c, limit);
    (split_responses(&bytes), closed)
}

/// An action that answers with its arguments.
const ECHO: &str = "function main(args) return args end";
/// An action with a large answer. Encoding it as JSON is what costs (about
/// 40 ms for 128 KiB in a debug build), so it is no larger: a client with a
/// small receive buffer is still far from the end when it goes.
const BIG: &str = "function main() return string.rep('x', 131072) end";
/// The length of `BIG`'s answer (a JSON string: two quotes more).
const BIG_LEN: usize = 131_074;
/// An answer of 1 MiB, the reactor's back-pressure cap.
const HUGE: &str = "function main() return string.rep('x', 1048576) end";
/// The length of `HUGE`'s answer.
const HUGE_LEN: usize = 1_048_578;
/// A blocking run of the action `huge`.
const HUGE_REQUEST: &str = "POST /actions/huge/block HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";

// ---------------------------------------------------------------------------
// Request smuggling

/// Every ambiguous framing is refused with one error response and the
/// connection closed, so that nothing after it (here a pipelined
/// `GET /ping`, the "smuggled" request) is ever read as a request.
#[test]
fn smuggling_shapes_get_one_error_and_a_closed_connection() {
    let _serial = serial();
    let s = TestServer::start("");
    let smuggled = "GET /ping HTTP/1.1\r\nHost: test\r\n\r\n";
    let cases: &[(&str, &str, u16)] = &[
        ("CL then TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("TE then CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        ("TE alone", "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        ("TE chunked, identity", "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 411),
        ("TE identity", "Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}", 400),
        ("conflicting CL", "Content-Length: 2\r\nContent-Length: 34\r\n\r\n{}", 400),
        ("CL +5", "Content-Length: +2\r\n\r\n{}", 400),
        ("CL list", "Content-Length: 2, 2\r\n\r\n{}", 400),
        ("CL with inner space", "Content-Length: 2 2\r\n\r\n{}", 400),
        ("CL hex", "Content-Length: 0x2\r\n\r\n{}", 400),
        ("CL negative", "Content-Length: -2\r\n\r\n{}", 400),
        ("CL overflow", "Content-Length: 18446744073709551618\r\n\r\n{}", 400),
        ("space before colon", "Content-Length : 2\r\n\r\n{}", 400),
        ("obs-fold", "X-A: a\r\n Content-Length: 2\r\n\r\n{}", 400),
        ("obs-fold tab", "X-A: a\r\n\tb\r\n\r\n", 400),
        ("NUL in a header", "X-A: a\0b\r\n\r\n", 400),
        // A reader that ends lines only at CRLF sees no Content-Length here.
        ("bare LF before CL", "X-A: a\nContent-Length: 2\r\n\r\n{}", 400),
        ("bare LF line ends", "Content-Length: 2\n\n{}", 400),
        ("bare LF empty line", "Content-Length: 2\r\n\n{}", 400),
        ("lone CR", "X-A: a\rContent-Length: 2\r\n\r\n{}", 400),
    ];
    for (what, rest, want) in cases {
        let raw = format!("POST /actions/echo/block HTTP/1.1\r\nHost: test\r\n{rest}{smuggled}");
        let (resps, closed) = exchange(&s, raw.as_bytes(), Duration::from_secs(5));
        let statuses: Vec<u16> = resps.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![*want], "{what}: {raw:?}");
        assert_eq!(resps[0].header("Connection"), Some("close"), "{what}");
        assert_eq!(resps[0].error_kind(), "bad_request", "{what}");
        assert!(closed, "{what}: the connection was left open");
    }
    assert!(!s.log().contains("panicked"), "{}", s.log());
    assert_serving(&s);
}

/// A body that holds a request is only a body: exactly one response for it,
/// and the connection stays in step (the next real request is answered
/// next). The body boundary is Content-Length alone.
#[test]
fn a_request_inside_a_body_is_never_run() {
    let _serial = serial();
    let s = TestServer::start("");
    assert_eq!(s.create("echo", ECHO, "").status, 201);
    let inner = "GET /ping HTTP/1.1\r\nHost: test\r\n\r\n";
    // As raw body bytes: not JSON, so one 400 from the action route.
    let head = format!("POST /actions/echo/block HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n", inner.len());
    // As a JSON string holding a request (escaped line ends): run, 200.
    let json = format!(r#"{{"s":"x\r\n\r\n{}"}}"#, inner.replace("\r\n", "\\r\\n"));
    let head2 = format!("POST /actions/echo/block HTTP/1.1\r\nContent-Length: {}\r\n\r\n", json.len());
    let mut c = connect(s.addr);
    c.write_all(format!("{head}{inner}{head2}{json}DELETE /actions/nope HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
    let first = read_response(&mut c);
    assert_eq!(first.status, 400, "{}", first.text());
    assert!(first.text().contains("invalid JSON"), "{}", first.text());
    let second = read_response(&mut c);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.json()["s"].as_str().unwrap(), format!("x\r\n\r\n{inner}"));
    let third = read_response(&mut c);
    assert_eq!(third.status, 404, "{}", third.text());
    // Nothing else: no response to a smuggled /ping.
    c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut extra = [0u8; 64];
    match c.read(&mut extra) {
        Ok(n) => assert_eq!(n, 0, "an extra response: {:?}", String::from_utf8_lossy(&extra[..n])),
        Err(e) => assert!(matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{e}"),
    }
    // Split across writes, the boundary is the same.
    let mut c = connect(s.addr);
    let raw = format!("POST /actions/echo/block HTTP/1.1\r\nContent-Length: {}\r\n\r\n{inner}", inner.len());
    for chunk in raw.as_bytes().chunks(7) {
        c.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_response(&mut c).status, 400);
    send(&mut c, "GET", "/ping", None);
    assert_eq!(read_response(&mut c).text(), "OK");
    assert_serving(&s);
}

// ---------------------------------------------------------------------------
// Absurd heads

/// 10,000 header fields, a 1 MB header line and a 1 MB request line: one
/// 431 each and a closed connection.
#[test]
fn absurd_header_counts_and_lines_get_431_and_a_close() {
    let _serial = serial();
    let s = TestServer::start("");
    let many: String = (0..10_000).map(|i| format!("X-{i}: y\r\n")).collect();
    let raw = format!("GET /ping HTTP/1.1\r\n{many}\r\n");
    let (resps, closed) = exchange(&s, raw.as_bytes(), Duration::from_secs(10));
    assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), vec![431]);
    assert!(resps[0].text().contains("header fields"), "{}", resps[0].text());
    assert!(closed);

    // One header line of 1 MB, written while the server answers.
    let raw = format!("GET /ping HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(1 << 20));
    let (resps, closed) = exchange(&s, raw.as_bytes(), Duration::from_secs(10));
    assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), vec![431]);
    assert!(resps[0].text().contains("request head is larger"), "{}", resps[0].text());
    assert!(closed);

    // A 1 MB request line (path) alike.
    let raw = format!("GET /{} HTTP/1.1\r\n\r\n", "p".repeat(1 << 20));
    let (resps, closed) = exchange(&s, raw.as_bytes(), Duration::from_secs(10));
    assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), vec![431]);
    assert!(closed);
    assert_serving(&s);
}

// ---------------------------------------------------------------------------
// Tricky paths and action names

/// Percent-encoded, dot-segment, non-ASCII, invalid UTF-8, control-byte
/// and overlong targets and action names: a 400 (or 404) that echoes at
/// most a bounded part of them, never another action, never a crash. The
/// server decodes nothing, so `%68ello` is not `hello`.
#[test]
fn tricky_paths_and_names_are_bad_requests_not_crashes() {
    let _serial = serial();
    let s = TestServer::start("");
    assert_eq!(s.create("hello", common::HELLO, "").status, 201);
    let invalid_name = "invalid action name";
    // (raw request line target, expected status, expected text in the message)
    let long = "n".repeat(129);
    let huge = "n".repeat(10_000);
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("/actions/%2e%2e".into(), "GET", 400, invalid_name),
        ("/actions/%2e%2e/block".into(), "POST", 400, invalid_name),
        ("/actions/%2E%2E%2Fhello/block".into(), "POST", 400, invalid_name),
        ("/actions/..%2Fhello".into(), "GET", 400, invalid_name),
        ("/actions/hello%2Fblock".into(), "POST", 400, invalid_name),
        ("/actions/%68ello/block".into(), "POST", 400, invalid_name),
        ("/actions/hello%00/block".into(), "POST", 400, invalid_name),
        ("/actions/hel%20lo".into(), "DELETE", 400, invalid_name),
        ("/actions/%D0%B0dmin".into(), "GET", 400, invalid_name),
        ("/actions/\u{0430}dmin".into(), "GET", 400, invalid_name),
        ("/actions/\u{ff48}ello/block".into(), "POST", 400, invalid_name),
        ("/actions/hello\u{200b}".into(), "PUT", 400, invalid_name),
        ("/actions/h\u{e9}llo".into(), "POST", 400, invalid_name),
        (format!("/actions/{long}"), "GET", 400, invalid_name),
        (format!("/actions/{huge}/block"), "POST", 400, invalid_name),
        ("/actions/hello/../hello/block".into(), "POST", 404, "not_found"),
        ("/actions/../../etc/passwd".into(), "GET", 404, "not_found"),
        ("/..".into(), "GET", 404, "not_found"),
        // Other request forms than the three of RFC 9112 (3.2), or `*`
        // with another method than OPTIONS, or an absolute URI with
        // userinfo (absolute-form and `OPTIONS *` are tested in http.rs).
        ("*".into(), "GET", 400, "only for OPTIONS"),
        ("ping".into(), "GET", 400, "absolute path"),
        ("127.0.0.1:80".into(), "GET", 400, "absolute path"),
        ("ftp://127.0.0.1/ping".into(), "GET", 400, "absolute path"),
        ("http://user@127.0.0.1/ping".into(), "GET", 400, "userinfo"),
        ("http:///ping".into(), "GET", 400, "no host"),
    ];
    for (target, method, want, text) in &cases {
        let mut c = connect(s.addr);
        let body = if *method == "POST" || *method == "PUT" { "{}" } else { "" };
        c.write_all(format!("{method} {target} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .unwrap();
        let r = read_response(&mut c);
        assert_eq!(r.status, *want, "{method} {target:.60}: {}", r.text());
        assert!(r.text().contains(text), "{method} {target:.60}: {}", r.text());
        assert!(r.body.len() < 1024, "the message echoes too much: {} bytes", r.body.len());
    }
    // Raw bytes the request line cannot hold: invalid UTF-8, NUL, controls.
    let raw_cases: &[&[u8]] = &[
        b"GET /actions/\xff\xfe HTTP/1.1\r\n\r\n",
        b"GET /actions/\xc0\xae\xc0\xae HTTP/1.1\r\n\r\n",
        b"POST /actions/hel\xe2\x80lo/block HTTP/1.1\r\n\r\n",
        b"GET /actions/a\x00b HTTP/1.1\r\n\r\n",
        b"GET /actions/a\x7fb HTTP/1.1\r\n\r\n",
        b"GET /actions/a\x1bb HTTP/1.1\r\n\r\n",
        b"GET /actions/a\tb HTTP/1.1\r\n\r\n",
    ];
    for raw in raw_cases {
        let (resps, closed) = exchange(&s, raw, Duration::from_secs(5));
        let statuses: Vec<u16> = resps.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![400], "{:?}", String::from_utf8_lossy(raw));
        assert!(closed);
    }
    // The same names in a create body.
    for name in ["%2e%2e", "a/b", "../x", "\u{0430}dmin", "hello\u{0000}", "", &long] {
        let body = serde_json::json!({"name": name, "code": ""}).to_string();
        let r = s.post("/actions", &body);
        assert_eq!(r.status, 400, "{name:?}: {}", r.text());
        assert!(r.text().contains(invalid_name), "{name:?}: {}", r.text());
    }
    // The real action is untouched and still runs.
    assert_eq!(s.post("/actions/hello/block", "{}").json(), serde_json::json!("Hello World"));
    assert!(!s.log().contains("panicked"), "{}", s.log());
    assert_serving(&s);
}

/// `.` and `..` pass the name rule (letters, digits, `-`, `_`, `.`), but no
/// HTTP client can address them: `/actions/..` is normalised to `/` by
/// curl, browsers and URL libraries, so such an action can be created and
/// never run or deleted by a normal client.
#[test]
fn dot_segments_are_not_valid_action_names() {
    let _serial = serial();
    let s = TestServer::start("");
    for name in [".", ".."] {
        let body = serde_json::json!({"name": name, "code": ""}).to_string();
        assert_eq!(s.post("/actions", &body).status, 400, "{name}");
        let r = s.get(&format!("/actions/{name}"));
        assert_eq!(r.status, 400, "{name}: {}", r.text());
    }
}

// ---------------------------------------------------------------------------
// Pipelined floods

/// The kinds of request in a flood, with a way to tell their answers apart.
fn flood_request(i: usize) -> String {
    match i % 3 {
        0 => "GET /ping HTTP/1.1\r\n\r\n".to_string(),
        // Invalid name: answered at once, the message names it.
        1 => format!("GET /actions/n%{i} HTTP/1.1\r\n\r\n"),
        // A store lookup on the pool: answered later, in order all the same.
        _ => format!("GET /actions/n{i} HTTP/1.1\r\n\r\n"),
    }
}

/// Asserts that `r` is the answer to `flood_request(i)`.
fn check_flood_response(i: usize, r: &Resp) {
    match i % 3 {
        0 => assert_eq!((r.status, r.text()), (200, "OK".to_string()), "response {i}"),
        1 => {
            assert_eq!(r.status, 400, "response {i}: {}", r.text());
            assert!(r.text().contains(&format!("'n%{i}'")), "response {i} out of order: {}", r.text());
        }
        _ => {
            assert_eq!(r.status, 404, "response {i}: {}", r.text());
            assert!(r.text().contains(&format!("n{i}")), "response {i} out of order: {}", r.text());
        }
    }
}

/// Writes `n` flood requests from a thread (the server may stop reading
/// while its answers are not read: back-pressure).
fn spawn_flood_writer(c: &TcpStream, n: usize) -> FloodWriter {
    FloodWriter::spawn(c, n, flood_request)
}

/// 5,000 pipelined requests, a third of them store lookups answered
/// later, sent before any answer is read: all answered, in order.
#[test]
fn five_thousand_pipelined_requests_are_answered_in_order() {
    let _serial = serial();
    let s = TestServer::start("");
    let pid = s.child.id();
    let n = 5_000;
    let mut c = connect(s.addr);
    let writer = spawn_flood_writer(&c, n);
    // Not reading until everything is sent (or 20 s passed).
    assert!(wait_until(Duration::from_secs(20), || writer.is_finished()), "the flood could not be sent");
    writer.join().unwrap();
    let start = Instant::now();
    for i in 0..n {
        let r = read_response(&mut c);
        check_flood_response(i, &r);
        assert!(start.elapsed() < Duration::from_secs(30), "too slow: {i} answers in 30 s");
    }
    let peak = status_kib(pid, "VmHWM");
    assert!(peak < 200 * 1024, "the server's peak RSS was {peak} KiB");
    // The connection is still in step.
    send(&mut c, "GET", "/ping", None);
    assert_eq!(read_response(&mut c).text(), "OK");
    assert_serving(&s);
}

/// A client that pipelines 1,000 requests and closes its sending side gets
/// every answer before the server closes (the server serves a connection
/// a share at a time, and must not take the half-close for the end).
#[test]
fn a_pipelined_burst_then_a_half_close_is_answered_in_full() {
    let _serial = serial();
    let s = TestServer::start("");
    let n = 1_000;
    let mut c = connect(s.addr);
    c.write_all("GET /ping HTTP/1.1\r\n\r\n".repeat(n).as_bytes()).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answers = ResponseReader::new(c);
    for i in 0..n {
        let r = answers.read_one().unwrap_or_else(|| panic!("only {i} of {n} answers before the close"));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]), "answer {i}");
    }
    assert!(answers.read_one().is_none(), "more answers than requests");
    assert_serving(&s);
}

/// Flooding clients that read their answers as fast as they can do not
/// starve others: the reactor serves a connection a bounded amount per
/// turn, so a new client's `/ping` is still answered quickly.
#[test]
fn floods_that_are_read_do_not_starve_other_clients() {
    let _serial = serial();
    let s = TestServer::start("");
    let n = 100_000;
    let floods: Vec<_> = (0..2)
        .map(|_| {
            let mut c = connect(s.addr);
            let mut w = c.try_clone().unwrap();
            let writer = std::thread::spawn(move || w.write_all("GET /ping HTTP/1.1\r\n\r\n".repeat(n).as_bytes()));
            let reader = std::thread::spawn(move || {
                let start = Instant::now();
                let mut buf = vec![0u8; 64 * 1024];
                let want = n
                    * "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK".len();
                let mut got = 0;
                while got < want && start.elapsed() < Duration::from_secs(60) {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got += k,
                    }
                }
                (got, want, start.elapsed())
            });
            (writer, reader)
        })
        .collect();
    let mut pings = 0;
    let mut slowest = Duration::ZERO;
    while floods.iter().any(|(_, reader)| !reader.is_finished()) {
        let (status, took) = ping(s.addr, Duration::from_secs(5)).expect("a ping was not answered during the floods");
        assert_eq!(status, 200);
        slowest = slowest.max(took);
        pings += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    for (writer, reader) in floods {
        writer.join().unwrap().unwrap();
        let (got, want, took) = reader.join().unwrap();
        assert_eq!(got, want, "a flood was answered {got} of {want} bytes in {took:?}");
        eprintln!("{n} pipelined pings answered in {took:?}");
    }
    eprintln!("{pings} pings during the floods, the slowest in {slowest:?}");
    assert!(pings >= 5, "only {pings} pings during the floods");
    assert!(slowest < Duration::from_millis(500), "the slowest /ping during the floods took {slowest:?}");
    assert_serving(&s);
}

/// A client that floods and does not read: once its unsent answers pass
/// the back-pressure cap (1 MiB) and the kernel's buffers are full, the
/// server stops reading it, so its memory stays bounded while the flood is
/// stuck; other clients are served meanwhile; and when the client reads,
/// every request is answered, in order.
#[test]
fn a_flood_that_is_not_read_is_held_back_then_answered_in_full() {
    let _serial = serial();
    let s = TestServer::start("");
    let pid = s.child.id();
    // 300,000 requests (7 MB) ask for about 30 MB of answers: far more than
    // the kernel's socket buffers hold, so without back-pressure the server
    // would hold tens of MB.
    let n = 300_000;
    let request = |i: usize| match i % 100 {
        // A store lookup now and then: answered later, in order all the same.
        99 => format!("GET /actions/n{i} HTTP/1.1\r\n\r\n"),
        k if k % 2 == 0 => "GET /ping HTTP/1.1\r\n\r\n".to_string(),
        // Invalid name: answered at once, the message names it.
        _ => format!("GET /actions/n%{i} HTTP/1.1\r\n\r\n"),
    };
    let c = connect(s.addr);
    let base_rss = status_kib(pid, "VmRSS");
    let writer = FloodWriter::spawn(&c, n, request);
    // The server stops reading: bytes wait unread in its socket, and stay.
    let port = s.addr.port();
    let mut unread = 0;
    let stopped = wait_until(Duration::from_secs(20), || {
        let before = unread_by_server(port);
        std::thread::sleep(Duration::from_millis(300));
        unread = unread_by_server(port);
        before > 0 && unread == before
    });
    assert!(stopped, "the server kept reading a flood whose answers were not read ({unread} bytes unread)");
    let grown = status_kib(pid, "VmRSS").saturating_sub(base_rss);
    eprintln!("held back with {unread} bytes unread; the server grew by {grown} KiB");
    assert!(grown < 16 * 1024, "the server grew by {grown} KiB while the flood was held back");
    assert_serving(&s);
    // Now read everything.
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answers = ResponseReader::new(c);
    let start = Instant::now();
    for i in 0..n {
        let r = answers.read_one().unwrap_or_else(|| panic!("only {i} of {n} pipelined requests answered"));
        match i % 100 {
            99 => assert!(r.status == 404 && r.text().contains(&format!("n{i}")), "answer {i}: {}", r.text()),
            k if k % 2 == 0 => assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]), "answer {i}"),
            _ => assert!(r.status == 400 && r.text().contains(&format!("'n%{i}'")), "answer {i}: {}", r.text()),
        }
        assert!(start.elapsed() < Duration::from_secs(60), "too slow: {i} answers in 60 s");
    }
    eprintln!("{n} answers read in {:?}", start.elapsed());
    assert!(wait_until(Duration::from_secs(5), || writer.is_finished()));
    writer.join().unwrap();
    assert_serving(&s);
}

// ---------------------------------------------------------------------------
// Idle connections and the connection limit

/// Opens `n` connections to `addr` that send nothing, within 30 s.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let start = Instant::now();
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect"));
        assert!(start.elapsed() < Duration::from_secs(30), "opening {n} connections took over 30 s");
    }
    eprintln!("{n} idle connections open after {:?}", start.elapsed());
    idle
}

/// How many connections this test may open at once: up to `want`, within
/// this process's and the server's open-file limits (each side needs one
/// descriptor per connection; leave a margin for the other tests of this
/// process and the server's own files).
fn connection_budget(want: usize, server_pid: u32) -> usize {
    let ours = raise_nofile();
    let server = nofile_of(server_pid);
    let n = want.min(ours.saturating_sub(1_000) as usize).min(server.saturating_sub(200) as usize);
    eprintln!("connections: {n} (our RLIMIT_NOFILE {ours}, the server's {server})");
    assert!(n >= 500, "too few file descriptors to test idle connections");
    n
}

/// 10,000 idle connections with the limit raised above them: the server
/// holds them all, a new client is still answered at once, and the idle
/// connections still work.
#[test]
fn ten_thousand_idle_connections_and_new_clients_are_still_served() {
    let _serial = serial();
    let s = TestServer::start("Server { max_connections = 20000 }");
    let pid = s.child.id();
    let n = connection_budget(10_000, pid);
    let base = settled_fd_count(pid);
    let mut idle = open_idle(s.addr, n);
    let accepted = wait_until(Duration::from_secs(20), || not_accepted(s.addr.port()) == 0);
    assert!(accepted, "{} clients are still not accepted", not_accepted(s.addr.port()));
    assert!(
        wait_until(Duration::from_secs(10), || fd_count(pid) >= base + n),
        "the server holds {} of {n} idle connections",
        fd_count(pid).saturating_sub(base)
    );
    // A new client is answered within 1 s.
    let (status, took) = ping(s.addr, Duration::from_secs(5)).expect("no answer with the idle connections open");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "/ping took {took:?} with {n} idle connections");
    // The idle connections are still usable, the first as well as the last.
    for i in (0..n).step_by(n / 10).chain([n - 1]) {
        let c = &mut idle[i];
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(c, "GET", "/ping", None);
        assert_eq!(read_response(c).status, 200, "idle connection {i}");
    }
    drop(idle);
    assert!(
        wait_until(Duration::from_secs(10), || fd_count(pid) <= base + 5),
        "the server still holds {} descriptors after the clients left (baseline {base})",
        fd_count(pid)
    );
    assert_serving(&s);
}

/// 10,000 idle connections against the default limit (`max_connections =
/// 4096`): the server never holds more than the limit, closes the longest
/// idle connections to make room, and so still answers new clients at once.
#[test]
fn ten_thousand_idle_connections_against_the_default_limit() {
    let _serial = serial();
    let s = TestServer::start("");
    let pid = s.child.id();
    let limit = 4096;
    let n = connection_budget(10_000, pid);
    assert!(n > limit + 1000, "too few file descriptors to pass the connection limit");
    let base = settled_fd_count(pid);
    let mut idle = open_idle(s.addr, n);
    let accepted = wait_until(Duration::from_secs(20), || not_accepted(s.addr.port()) == 0);
    assert!(accepted, "{} clients are still not accepted", not_accepted(s.addr.port()));
    // Every connection was accepted and the oldest closed, so the server
    // holds at most the limit.
    let mut held = 0;
    let settled = wait_until(Duration::from_secs(10), || {
        held = fd_count(pid).saturating_sub(base);
        held + 64 >= limit && held <= limit
    });
    assert!(settled, "the server holds {held} connections with a limit of {limit}");
    let (status, took) = ping(s.addr, Duration::from_secs(5)).expect("no answer at the connection limit");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "/ping took {took:?} at the connection limit");
    assert!(fd_count(pid) <= base + limit + 1, "over the limit: {} connections", fd_count(pid) - base);
    // The oldest were closed for the new ones; the newest still work.
    let (bytes, closed) = read_until_closed(&mut idle[0], Duration::from_secs(3));
    assert!(closed && bytes.is_empty(), "the oldest idle connection was not closed: {bytes:?}");
    // None of the newest half was closed: they were not refused (a refusal
    // is for when no connection is idle), nor closed before older ones.
    for (i, c) in idle.iter_mut().enumerate().skip(n - limit / 2) {
        c.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let open = matches!(c.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
        assert!(open, "connection {i} of {n} was closed; the log says:\n{}", s.log());
        c.set_nonblocking(false).unwrap();
    }
    let newest = idle.last_mut().unwrap();
    newest.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(newest, "GET", "/ping", None);
    assert_eq!(read_response(newest).status, 200);
    assert!(s.wait_log("connection limit reached", Duration::from_secs(2)), "{}", s.log());
    drop(idle);
    assert!(
        wait_until(Duration::from_secs(10), || fd_count(pid) <= base + 5),
        "the server still holds {} descriptors after the clients left (baseline {base})",
        fd_count(pid)
    );
    assert_serving(&s);
}

/// Opens a connection that sends a whole `GET /ping` and the start of a
/// second request in one write, and waits up to `limit` for the answer to
/// the first. The server reads both at once, so once that answer is here
/// the second request is in progress on the server: the connection is not
/// idle. `None`: no answer within `limit` (the server did not accept it).
fn open_busy(addr: SocketAddr, limit: Duration) -> Option<TcpStream> {
    let mut c = connect(addr);
    c.write_all(b"GET /ping HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\nX-Wait: ").unwrap();
    c.set_read_timeout(Some(limit)).unwrap();
    let answered = common::try_read_response(&mut c).is_some_and(|r| r.status == 200);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    answered.then_some(c)
}

/// At the limit, a new client closes the longest idle connection and is
/// served; the other connections keep working.
#[test]
fn at_the_connection_limit_the_longest_idle_connection_makes_room() {
    let _serial = serial();
    let s = TestServer::start("Server { max_connections = 100 }");
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut c = connect(s.addr);
        send(&mut c, "GET", "/ping", None);
        assert_eq!(read_response(&mut c).status, 200);
        held.push(c);
    }
    let (status, took) = ping(s.addr, Duration::from_secs(5)).expect("the 101st client was not served");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "the 101st client waited {took:?}");
    let (bytes, closed) = read_until_closed(&mut held[0], Duration::from_secs(3));
    assert!(closed && bytes.is_empty(), "the longest idle connection was not closed: {bytes:?}");
    for c in &mut held[1..] {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(c, "GET", "/ping", None);
        assert_eq!(read_response(c).status, 200);
    }
    assert!(s.wait_log("connection limit reached", Duration::from_secs(2)), "{}", s.log());
    drop(held);
    assert_serving(&s);
}

/// At the limit with no idle connection (each has a request arriving), a
/// new client is closed at once without an answer, and the connections
/// held are not touched; once one of them is idle, it makes room.
#[test]
fn at_the_connection_limit_with_no_idle_connection_new_clients_are_closed_at_once() {
    let _serial = serial();
    let s = TestServer::start("Server { max_connections = 100, request_timeout = 60000 }");
    let mut held: Vec<TcpStream> = (0..100)
        .map(|i| open_busy(s.addr, Duration::from_secs(5)).unwrap_or_else(|| panic!("connection {i}")))
        .collect();
    let start = Instant::now();
    let mut c = connect(s.addr);
    let _ = c.write_all(b"GET /ping HTTP/1.1\r\n\r\n");
    let (bytes, closed) = read_until_closed(&mut c, Duration::from_secs(3));
    assert!(closed && bytes.is_empty(), "the 101st connection got {:?}", String::from_utf8_lossy(&bytes));
    assert!(start.elapsed() < Duration::from_secs(1), "closing the 101st took {:?}", start.elapsed());
    assert!(s.wait_log("connection limit reached", Duration::from_secs(2)), "{}", s.log());
    // Every held request can still be finished.
    for c in &mut held {
        c.write_all(b"1\r\n\r\n").unwrap();
        assert_eq!(read_response(c).status, 200);
    }
    // Now all are idle: a new client is served, closing the longest idle.
    let (status, _) = ping(s.addr, Duration::from_secs(5)).expect("not served once connections were idle");
    assert_eq!(status, 200);
    let (bytes, closed) = read_until_closed(&mut held[0], Duration::from_secs(3));
    assert!(closed && bytes.is_empty(), "the longest idle connection was not closed: {bytes:?}");
    drop(held);
    assert_serving(&s);
}

/// Starts the server with a soft RLIMIT_NOFILE of `nofile`; returns the
/// process, its address and the temporary directory.
fn start_with_nofile(nofile: u64, extra: &str) -> (Child, SocketAddr, tempfile::TempDir) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.lua");
    std::fs::write(&config, format!("Logger {{ level = \"warn\" }}\nNulldb {{}}\n{extra}")).unwrap();
    let mut cmd = Command::new(common::BIN);
    cmd.arg("--config").arg(&config).arg("--listen").arg("127.0.0.1:0");
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: setrlimit is one, and the
    // closure allocates nothing (last_os_error only reads errno).
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit { rlim_cur: nofile as libc::rlim_t, rlim_max: nofile as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start slserver");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("slserver listening on http://").expect("the address line").parse().unwrap();
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = out.read_to_string(&mut sink);
    });
    (child, addr, tmp)
}

/// Kills the child when dropped, so that a failed assertion leaves no
/// server behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// When the server runs out of file descriptors (its RLIMIT_NOFILE, 128
/// here, is below `max_connections`) with every connection busy, clients
/// that connect meanwhile wait in the listen backlog. They are served once
/// descriptors free up, even if no other client connects after them.
#[test]
fn clients_queued_while_out_of_descriptors_are_served_when_some_free_up() {
    let _serial = serial();
    let (child, addr, _tmp) = start_with_nofile(128, "Server { request_timeout = 60000 }");
    let child = KillOnDrop(child);
    let mut held = Vec::new();
    for _ in 0..200 {
        match open_busy(addr, Duration::from_secs(1)) {
            Some(c) => held.push(c),
            None => break,
        }
    }
    assert!(held.len() < 200, "the descriptor limit was never reached");
    eprintln!("out of descriptors after {} connections", held.len());
    // The next client waits in the backlog: neither answered nor closed.
    let mut queued = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    queued.write_all(b"GET /ping HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\nX-Wait: ").unwrap();
    let (bytes, closed) = read_until_closed(&mut queued, Duration::from_millis(500));
    assert!(bytes.is_empty() && !closed, "a client was answered while out of descriptors: {bytes:?}");
    assert!(held.len() < 128, "{} connections held with 128 descriptors", held.len());
    // Twenty clients go; nobody else connects.
    held.drain(..20);
    queued.write_all(b"1\r\n\r\n").unwrap();
    queued.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    for which in ["first", "second"] {
        let r = common::try_read_response(&mut queued);
        assert_eq!(r.map(|r| r.status), Some(200), "the queued client's {which} request was not served");
    }
    assert!(alive(child.0.id()), "the server exited after running out of descriptors");
}

/// Out of descriptors with idle connections open: idle connections make
/// room, as at `max_connections`, so every new client is served.
#[test]
fn out_of_descriptors_idle_connections_make_room() {
    let _serial = serial();
    let (child, addr, _tmp) = start_with_nofile(128, "");
    let child = KillOnDrop(child);
    let pid = child.0.id();
    let mut held = Vec::new();
    for i in 0..300 {
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        send(&mut c, "GET", "/ping", None);
        let r = common::try_read_response(&mut c);
        assert_eq!(r.map(|r| r.status), Some(200), "client {i} was not served");
        held.push(c);
    }
    // 300 connections in 128 descriptors: the first ones were closed to
    // make room.
    let (bytes, closed) = read_until_closed(&mut held[0], Duration::from_secs(3));
    assert!(closed && bytes.is_empty(), "the longest idle connection was not closed: {bytes:?}");
    drop(held);
    assert!(
        wait_until(Duration::from_secs(5), || ping(addr, Duration::from_secs(1)).is_some_and(|(st, _)| st == 200)),
        "new clients are not served after the flood"
    );
    assert!(alive(pid), "the server exited after running out of descriptors");
}

// ---------------------------------------------------------------------------
// Slowloris

/// One byte a second, on the head and on the body, and from a crowd of 300
/// connections: 408 and a close within `request_timeout` (2 s), while other
/// clients are served normally.
#[test]
fn slowloris_gets_408_while_others_are_served() {
    let _serial = serial();
    let s = TestServer::start("Server { request_timeout = 2000 }");
    let addr = s.addr;
    let slow = |raw: &'static [u8]| {
        std::thread::spawn(move || {
            let mut c = connect(addr);
            let start = Instant::now();
            let mut got = Vec::new();
            for b in raw {
                if c.write_all(&[*b]).is_err() {
                    break;
                }
                // Wait one second, watching for the answer.
                let (bytes, closed) = read_until_closed(&mut c, Duration::from_secs(1));
                got.extend_from_slice(&bytes);
                if closed {
                    return (got, start.elapsed(), true);
                }
                if start.elapsed() > Duration::from_secs(8) {
                    break;
                }
            }
            let (bytes, closed) = read_until_closed(&mut c, Duration::from_secs(3));
            got.extend_from_slice(&bytes);
            (got, start.elapsed(), closed)
        })
    };
    // And a crowd: 300 connections, one byte a second each.
    let crowd = std::thread::spawn(move || {
        let raw = b"GET /ping HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let start = Instant::now();
        let mut conns: Vec<(TcpStream, Vec<u8>, Option<Duration>)> = (0..300)
            .map(|_| {
                let c = connect(addr);
                c.set_nonblocking(true).unwrap();
                (c, Vec::new(), None)
            })
            .collect();
        let mut sent = 0;
        while start.elapsed() < Duration::from_secs(8) && conns.iter().any(|(_, _, closed)| closed.is_none()) {
            if sent < raw.len() && start.elapsed() >= Duration::from_secs(sent as u64) {
                for (c, _, _) in conns.iter_mut().filter(|(_, _, closed)| closed.is_none()) {
                    let _ = c.write(&raw[sent..sent + 1]);
                }
                sent += 1;
            }
            for (c, got, closed) in conns.iter_mut().filter(|(_, _, closed)| closed.is_none()) {
                let mut buf = [0u8; 1024];
                match c.read(&mut buf) {
                    Ok(0) => *closed = Some(start.elapsed()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => *closed = Some(start.elapsed()),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        conns.into_iter().map(|(_, got, closed)| (got, closed)).collect::<Vec<_>>()
    });
    let head = slow(b"GET /ping HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n");
    let body = slow(
        b"POST /actions/x/block HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"a\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    );
    let fast_start = Instant::now();
    let mut pings = 0;
    let mut slowest = Duration::ZERO;
    while fast_start.elapsed() < Duration::from_millis(2500) {
        let (status, took) = ping(addr, Duration::from_secs(2)).expect("a ping was not answered during slowloris");
        assert_eq!(status, 200);
        slowest = slowest.max(took);
        pings += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(slowest < Duration::from_millis(500), "slowest /ping during slowloris: {slowest:?}");
    assert!(pings > 10);
    for (what, t) in [("head", head), ("body", body)] {
        let (got, took, closed) = t.join().unwrap();
        let resps = split_responses(&got);
        assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), vec![408], "slow {what}");
        assert!(closed, "slow {what}: not closed");
        // The first byte starts the clock; the check runs every 100 ms.
        assert!(took < Duration::from_millis(3500), "slow {what}: answered after {took:?}");
    }
    for (i, (got, closed)) in crowd.join().unwrap().into_iter().enumerate() {
        let resps = split_responses(&got);
        assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), vec![408], "slow client {i} of the crowd");
        let took = closed.unwrap_or_else(|| panic!("slow client {i} of the crowd was not closed"));
        assert!(took < Duration::from_millis(3500), "slow client {i} of the crowd closed after {took:?}");
    }
    assert_serving(&s);
}

// ---------------------------------------------------------------------------
// Clients that vanish

/// 200 clients at once ask for a 128 KiB answer and close after reading
/// 1 KB of it: the server must notice, drop the rest and close every one.
#[test]
fn clients_that_vanish_mid_response_leak_nothing() {
    let _serial = serial();
    let s = TestServer::start("Invocations { record_blocking = false }");
    let pid = s.child.id();
    // A generous timeout: 200 invocations at once share one reactor.
    assert_eq!(s.create("big", BIG, r#""timeout":60000"#).status, 201);
    let r = s.post("/actions/big/block", "{}");
    assert_eq!((r.status, r.body.len()), (200, BIG_LEN));
    assert_serving(&s);
    let base = settled_fd_count(pid);
    let addr = s.addr;
    let threads: Vec<_> = (0..200)
        .map(|_| {
            std::thread::spawn(move || {
                // A small receive buffer, so that the kernel cannot take the
                // whole answer in: the server is mid-write when the client
                // goes.
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
                sock.set_recv_buffer_size(4096).unwrap();
                sock.connect_timeout(&addr.into(), Duration::from_secs(10)).unwrap();
                let mut c: TcpStream = sock.into();
                c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                c.write_all(b"POST /actions/big/block HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 256];
                while got.len() < 1024 {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                // Gone, with most of the answer unread.
                got
            })
        })
        .collect();
    for t in threads {
        let got = t.join().unwrap();
        assert!(got.starts_with(b"HTTP/1.1 200 "), "{:?}", String::from_utf8_lossy(&got));
        assert!(got.len() >= 1024);
    }
    assert!(
        wait_until(Duration::from_secs(15), || fd_count(pid) <= base + 2),
        "the server holds {} descriptors, {base} before the vanishing clients",
        fd_count(pid)
    );
    assert!(!s.log().contains("panicked"), "{}", s.log());
    assert_serving(&s);
    assert_eq!(s.post("/actions/big/block", "{}").body.len(), BIG_LEN);
}

/// Requests pipelined behind an answer of 1 MiB or more (the reactor's
/// back-pressure cap, `MAX_PENDING_OUT`) must be answered once that answer
/// is written.
#[test]
fn requests_pipelined_behind_a_large_answer_are_answered() {
    let _serial = serial();
    let s = TestServer::start("Server { idle_timeout = 5000 }");
    assert_eq!(s.create("huge", HUGE, "").status, 201);
    let mut c = connect(s.addr);
    c.write_all(HUGE_REQUEST.repeat(2).as_bytes()).unwrap();
    send(&mut c, "GET", "/ping", None);
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    for what in ["first", "second"] {
        let r = common::try_read_response(&mut c).unwrap_or_else(|| panic!("no {what} answer"));
        assert_eq!((r.status, r.body.len()), (200, HUGE_LEN), "{what}");
    }
    let r = common::try_read_response(&mut c).expect("the /ping behind two large answers was never answered");
    assert_eq!(r.text(), "OK");
    assert_serving(&s);
}

/// A client that asks for a large answer and never reads it holds the
/// server's output buffer (what the kernel's socket buffer does not take):
/// the server must drop it once nothing could be written for
/// `idle_timeout`, rather than keep the memory forever.
#[test]
fn a_client_that_never_reads_is_dropped_after_idle_timeout() {
    let _serial = serial();
    let s = TestServer::start("Server { idle_timeout = 1000 }");
    let pid = s.child.id();
    // 6 MiB: more than the kernel's socket buffers take (net.ipv4.tcp_wmem
    // allows 4 MiB).
    let code = "function main() return string.rep('x', 6 * 1048576) end";
    assert_eq!(s.create("huge6", code, "").status, 201);
    let base = settled_fd_count(pid);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect_timeout(&s.addr.into(), Duration::from_secs(5)).unwrap();
    let mut c: TcpStream = sock.into();
    c.write_all(b"POST /actions/huge6/block HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").unwrap();
    assert!(wait_until(Duration::from_secs(3), || fd_count(pid) > base));
    let closed = wait_until(Duration::from_secs(10), || fd_count(pid) <= base);
    drop(c);
    assert!(closed, "a client that never reads is still held after idle_timeout");
    assert_serving(&s);
}
