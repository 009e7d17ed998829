//! HTTP framing against the real server: keep-alive, pipelining, limits,
//! slow and vanishing clients.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{read_response, send, try_read_response, TestServer, HELLO};

#[test]
fn keep_alive_and_pipelining() {
    let s = TestServer::start("");
    s.create("hello", HELLO, "");
    let mut c = s.connect();
    let mut batch = String::new();
    for i in 0..20 {
        let body = format!(r#"{{"name":"{i}"}}"#);
        batch.push_str(&format!("POST /actions/hello/block HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
        batch.push_str("GET /ping HTTP/1.1\r\n\r\n");
    }
    c.write_all(batch.as_bytes()).unwrap();
    for i in 0..20 {
        assert_eq!(read_response(&mut c).json(), serde_json::json!(format!("Hello {i}")));
        assert_eq!(read_response(&mut c).text(), "OK");
    }
    // The connection is still usable.
    send(&mut c, "GET", "/ping", None);
    assert_eq!(read_response(&mut c).status, 200);
}

#[test]
fn connection_close_is_honoured() {
    let s = TestServer::start("");
    let mut c = s.connect();
    c.write_all(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let r = read_response(&mut c);
    assert_eq!(r.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn oversized_heads_and_bodies_and_chunked_bodies_are_refused() {
    let s = TestServer::start("Server { max_body = 1000 }");
    let mut c = s.connect();
    c.write_all(format!("GET /ping HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000)).as_bytes()).unwrap();
    assert_eq!(read_response(&mut c).status, 431);

    let mut c = s.connect();
    c.write_all(b"POST /actions HTTP/1.1\r\nContent-Length: 5000\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c).status, 413);

    let mut c = s.connect();
    c.write_all(b"POST /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c).status, 411);

    let mut c = s.connect();
    c.write_all(b"POST /actions HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}").unwrap();
    assert_eq!(read_response(&mut c).status, 400);
    assert_eq!(s.get("/ping").status, 200);
}

#[test]
fn expect_continue_gets_an_interim_response() {
    let s = TestServer::start("");
    let mut c = s.connect();
    c.write_all(b"POST /actions/x/block HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let interim = read_response(&mut c);
    assert_eq!(interim.status, 100);
    c.write_all(b"{}").unwrap();
    assert_eq!(read_response(&mut c).status, 404);
}

#[test]
fn slow_clients_are_cut_off_and_idle_ones_closed() {
    let s = TestServer::start("Server { request_timeout = 500, idle_timeout = 700 }");
    // Slowloris: one byte at a time never completes a request in time.
    let mut c = s.connect();
    let start = Instant::now();
    let mut got = None;
    for b in b"GET /ping HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
        if c.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        c.set_nonblocking(true).unwrap();
        let mut peek = [0u8; 1];
        let ready = c.peek(&mut peek).is_ok();
        c.set_nonblocking(false).unwrap();
        if ready {
            got = try_read_response(&mut c);
            break;
        }
    }
    assert_eq!(got.map(|r| r.status), Some(408), "slow request was not answered with 408");
    assert!(start.elapsed() < Duration::from_secs(3));

    // An idle keep-alive connection is closed after idle_timeout.
    let mut c = s.connect();
    send(&mut c, "GET", "/ping", None);
    assert_eq!(read_response(&mut c).status, 200);
    let start = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(s.get("/ping").status, 200);
}

#[test]
fn clients_that_vanish_do_not_hurt_the_server() {
    let s = TestServer::start("");
    s.create("spin", "function main() local x = 0 for i = 1, 3000000 do x = x + i end return x end", "");
    for _ in 0..20 {
        let mut c = s.connect();
        c.write_all(b"POST /actions/spin/block HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\"").unwrap();
        drop(c);
        let mut c = s.connect();
        send(&mut c, "POST", "/actions/spin/block", Some("{}"));
        drop(c);
    }
    let mut c = s.connect();
    c.write_all(b"GET /ping HTTP/1.1\r\n\r\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_response(&mut c).status, 200);
    assert_eq!(s.get("/ping").text(), "OK");
    assert_eq!(s.post("/actions/spin/block", "").status, 200);
}

#[test]
fn head_requests_have_no_body() {
    let s = TestServer::start("");
    let mut c = s.connect();
    c.write_all(b"HEAD /ping HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let mut all = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let n = c.read(&mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
        if all.ends_with(b"OK") && all.windows(4).filter(|w| w == b"HTTP").count() == 2 {
            break;
        }
    }
    let text = String::from_utf8(all).unwrap();
    assert_eq!(text.matches("Content-Length: 2").count(), 2, "{text}");
    assert!(text.ends_with("\r\n\r\nOK"), "{text}");
}

/// The request forms RFC 9112 (3.2) requires a server to accept: an
/// absolute URI as the target (`GET http://host/ping`), served as its
/// path and query, and `OPTIONS *`, answered 204 with the methods the API
/// serves in `Allow`, without a token even when tokens are configured (it
/// tells nothing the README does not). Before, both were 400. Python's
/// `http.client` sends an absolute URI as it is given, and curl sends one
/// to a proxy (`-x`) and `*` with `--request-target`.
#[test]
fn absolute_form_and_options_asterisk_are_served() {
    let s = TestServer::start("");
    s.create("hello", HELLO, "");
    let mut c = s.connect();
    let body = r#"{"name":"abs"}"#;
    c.write_all(
        format!(
            "GET http://{addr}/ping HTTP/1.1\r\nHost: {addr}\r\n\r\n\
             POST HTTP://Elsewhere.example:1/actions/hello/block?x=1 HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}\
             OPTIONS * HTTP/1.1\r\nHost: {addr}\r\n\r\n\
             OPTIONS http://{addr} HTTP/1.1\r\n\r\n\
             GET /ping HTTP/1.1\r\n\r\n",
            body.len(),
            addr = s.addr
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_response(&mut c).text(), "OK");
    assert_eq!(read_response(&mut c).json(), serde_json::json!("Hello abs"));
    for _ in 0..2 {
        let r = read_response(&mut c);
        assert_eq!((r.status, r.header("Allow")), (204, Some("DELETE, GET, HEAD, OPTIONS, POST, PUT")));
        assert!(r.header("Content-Length").is_none() && r.body.is_empty());
    }
    assert_eq!(read_response(&mut c).text(), "OK", "the connection is still in step");
    // Still refused: `*` with another method, other schemes, userinfo, no host.
    for target in ["*", "ftp://h/ping", "http://user@h/ping", "http:///ping", "ping"] {
        let mut c = s.connect();
        c.write_all(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
        assert_eq!(read_response(&mut c).status, 400, "{target}");
    }
    // Real clients.
    let py = r#"
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
c.request("GET", "http://%s:%s/ping" % (sys.argv[1], sys.argv[2]))
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode()}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", py, &s.addr.ip().to_string(), &s.addr.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"status": 200, "body": "OK"}"#, "{out:?}");
    if std::process::Command::new("curl").arg("--version").output().is_ok() {
        let url = s.url();
        let curl = |args: &[&str]| {
            let out = std::process::Command::new("curl").args(["-sS", "-i", "--max-time", "10"]).args(args).output();
            String::from_utf8_lossy(&out.unwrap().stdout).into_owned()
        };
        let out = curl(&["-x", &url, "http://any.example/ping"]);
        assert!(out.starts_with("HTTP/1.1 200 OK") && out.ends_with("\r\n\r\nOK"), "{out}");
        let out = curl(&["-X", "OPTIONS", "--request-target", "*", &url]);
        assert!(out.starts_with("HTTP/1.1 204 No Content"), "{out}");
        assert!(out.contains("\r\nAllow: DELETE, GET, HEAD, OPTIONS, POST, PUT\r\n"), "{out}");
    }
    // With tokens, OPTIONS * needs none (and absolute-form ones still do).
    let s = TestServer::start("Auth { admin = \"admin-0123456789abcdef\" }");
    let mut c = s.connect();
    c.write_all(b"OPTIONS * HTTP/1.1\r\n\r\nGET http://h/actions HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c).status, 204);
    assert_eq!(read_response(&mut c).status, 401);
}
