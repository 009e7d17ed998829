//! Responses an action shapes with `http.response`, against the real
//! server and real clients (raw sockets, Python's `http.client`, curl): an
//! action cannot make a client read a response it forged inside a body,
//! neither behind an informational (1xx) status, which clients take as
//! interim and read past, nor behind a 204 or 304, whose body a client
//! never reads as one, so that one reusing the connection (a proxy's pool)
//! takes it for the next response. And no answer to a HEAD request has a
//! body, whoever writes it.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{connect, parse_response, Resp, TestServer};
use serde_json::{json, Value};

/// Answers with the status `?status=` and a body that is a whole response,
/// with a `Set-Cookie`, forged as a hostile action would, through
/// `http.response`.
const FORGE: &str = r#"
function main(args)
  return http.response{status = tonumber(args.status), headers = {['X-Real'] = 'yes'},
    body = 'HTTP/1.1 200 OK\r\nSet-Cookie: session=attacker\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nforged'}
end"#;

/// The same with a table marked by hand, which `http.response` never checked.
const FORGE_BY_HAND: &str = r#"
function main(args)
  return {['$sl_response'] = true, status = tonumber(args.status),
    body = 'HTTP/1.1 200 OK\r\nSet-Cookie: session=attacker\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nforged'}
end"#;

/// Statuses clients take as interim (curl: every 1xx but 101; Python: 100)
/// or as a response without a body (Python: every other 1xx).
const INFORMATIONAL: [u16; 6] = [100, 101, 102, 103, 150, 199];

/// A server with the routes `GET /forge` (FORGE), `GET /hand` (FORGE_BY_HAND),
/// `GET /hello` ("Hello World") and `GET /boom` (an error).
fn server(extra: &str) -> TestServer {
    let s = TestServer::start(&format!("Routes {{ port = 0 }}\n{extra}"));
    for (name, code, path) in [
        ("forge", FORGE, "/forge"),
        ("hand", FORGE_BY_HAND, "/hand"),
        ("hello", common::HELLO, "/hello"),
        ("boom", "function main() error('boom') end", "/boom"),
    ] {
        assert_eq!(s.create(name, code, "").status, 201, "{name}");
        assert_eq!(s.route("GET", path, name, "").status, 201, "{path}");
    }
    s
}

/// Writes `requests` (the last should close the connection) to `addr` in
/// one go and returns every byte the server sent until it closed.
fn raw_exchange(addr: SocketAddr, requests: &str) -> Vec<u8> {
    let mut c = connect(addr);
    let _ = c.write_all(requests.as_bytes());
    let mut all = Vec::new();
    c.read_to_end(&mut all).expect("read until the server closes");
    all
}

/// The responses in `bytes`, each framed by its `Content-Length` (none: no
/// body); panics if bytes are left over.
fn split(bytes: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (r, used) =
            parse_response(rest).unwrap_or_else(|| panic!("not a whole response: {:?}", String::from_utf8_lossy(rest)));
        out.push(r);
        rest = &rest[used..];
    }
    out
}

/// Runs a Python script with `args`; its stdout parsed as JSON.
fn python(script: &str, args: &[String]) -> Value {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3 failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("python3 printed no JSON ({e}): {stdout}"))
}

/// For each path: GET it with `http.client`, then GET `/hello` on the same
/// (kept-alive) connection, as a pooled client would; prints what the
/// client made of both answers, or the exception it raised.
const PY_TWO_GETS: &str = r#"
import http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2])
out = []
for path in sys.argv[3:]:
    got = {"path": path}
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        got["first"] = {"status": r.status, "set_cookie": r.getheader("Set-Cookie"), "body": r.read().decode("latin-1")}
        c.request("GET", "/hello")
        r = c.getresponse()
        got["second"] = {"status": r.status, "set_cookie": r.getheader("Set-Cookie"), "body": r.read().decode("latin-1")}
    except Exception as e:
        got["exception"] = type(e).__name__ + ": " + str(e)
    finally:
        c.close()
    out.append(got)
print(json.dumps(out))
"#;

/// Python's `http.client` and curl, asking for a route whose action forged
/// a response in its body behind a 1xx, 204 or 304 status, and then for
/// another route on the same connection: neither ever sees the forged
/// response, its `Set-Cookie` or its body; the first answer is the 500 of
/// an invalid web response (1xx) or the bodiless 204 or 304, the second is
/// the real answer. (Before: both took the 100 as interim and read the
/// forged 200 with its cookie, and curl the 103 too. Behind the 204 and
/// 304 both happened to drop the body, which they had buffered with the
/// head; `no_content_and_not_modified_have_no_body` reads it raw.)
#[test]
fn python_and_curl_never_see_a_response_forged_in_a_body() {
    let s = server("");
    let addr = s.routes_addr.unwrap();
    let mut paths: Vec<String> = Vec::new();
    for status in [100, 101, 103, 204, 304] {
        paths.push(format!("/forge?status={status}"));
        paths.push(format!("/hand?status={status}"));
    }
    let mut args = vec![addr.ip().to_string(), addr.port().to_string()];
    args.extend(paths.iter().cloned());
    let got = python(PY_TWO_GETS, &args);
    for g in got.as_array().unwrap() {
        let path = g["path"].as_str().unwrap();
        let text = g.to_string();
        assert!(g.get("exception").is_none(), "http.client raised: {text}");
        assert!(!text.contains("attacker") && !text.contains("forged"), "the forged response was read: {text}");
        let want = if path.ends_with("=204") {
            204
        } else if path.ends_with("=304") {
            304
        } else {
            500
        };
        assert_eq!(g["first"]["status"], json!(want), "{text}");
        if want != 500 {
            assert_eq!(g["first"]["body"], json!(""), "{text}");
        }
        assert_eq!(g["second"], json!({"status": 200, "set_cookie": null, "body": "\"Hello World\""}), "{text}");
    }
    // curl fetches both URLs on one connection (-i: with the heads).
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed: its half of the test is skipped");
        return;
    }
    for path in &paths {
        let first = format!("http://{addr}{path}");
        let second = format!("http://{addr}/hello");
        let out = Command::new("curl").args(["-sS", "-i", "--max-time", "10", &first, &second]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("attacker") && !all.contains("forged"), "curl read the forged response: {all}");
        assert!(out.status.success(), "curl failed: {all}");
        assert!(stdout.ends_with("\"Hello World\""), "curl did not get the second answer: {all}");
    }
}

/// Every 1xx status an action gives (with `http.response` or a table marked
/// by hand) is an invalid web response: 500 with the details hidden, the
/// action's headers and body dropped, no 1xx on the wire, and the
/// invocation record says why; the next request on the connection gets
/// its own answer.
#[test]
fn informational_statuses_from_actions_are_refused() {
    let s = server("");
    let addr = s.routes_addr.unwrap();
    for status in INFORMATIONAL {
        for route in ["/forge", "/hand"] {
            let bytes = raw_exchange(
                addr,
                &format!(
                    "GET {route}?status={status} HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\
                     Connection: close\r\n\r\n"
                ),
            );
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("attacker") && !text.contains("HTTP/1.1 1"), "{route} {status}: {text}");
            let resps = split(&bytes);
            assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200], "{route} {status}: {text}");
            assert_eq!(resps[0].error_kind(), "internal", "{text}");
            assert!(resps[0].header("X-Real").is_none(), "{text}");
            assert_eq!(resps[1].json(), json!("Hello World"));
            // The record keeps the reason.
            let id = resps[0].header("X-SL-Invocation").expect("the invocation id");
            let rec = s.get(&format!("/invocation/{id}"));
            let message = rec.json()["error"]["message"].as_str().unwrap_or_default().to_string();
            assert!(message.contains(&format!("status {status} is informational (1xx)")), "{route}: {}", rec.text());
        }
    }
    // In debug mode the client is told why.
    let s = server("Server { debug = true }");
    for route in ["/forge", "/hand"] {
        let r = s.web("GET", &format!("{route}?status=101"), &[], b"");
        assert_eq!(r.status, 500);
        assert!(r.text().contains("status 101 is informational (1xx)"), "{route}: {}", r.text());
    }
}

/// A 204 or 304 is written without a body and without `Content-Length`
/// (RFC 9110, 8.6 and 15.4.5; RFC 9112, 6.3), whatever body the action
/// gave, and keeps the action's other headers; the next request on the
/// connection gets its own answer. (Before: `Content-Length: 100` and the
/// body, which a reader of the connection takes for the next response.)
#[test]
fn no_content_and_not_modified_have_no_body() {
    let s = server("");
    let addr = s.routes_addr.unwrap();
    for status in [204, 304] {
        for (route, method) in [("/forge", "GET"), ("/hand", "GET"), ("/forge", "HEAD")] {
            let bytes = raw_exchange(
                addr,
                &format!(
                    "{method} {route}?status={status} HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\
                     Connection: close\r\n\r\n"
                ),
            );
            let text = String::from_utf8_lossy(&bytes);
            let head_end = text.find("\r\n\r\n").unwrap() + 4;
            let (head, rest) = text.split_at(head_end);
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{method} {route} {status}: {text}");
            assert!(!head.to_ascii_lowercase().contains("content-length"), "{method} {route} {status}: {text}");
            assert!(!head.to_ascii_lowercase().contains("content-type"), "{method} {route} {status}: {text}");
            if route == "/forge" {
                assert!(head.contains("\r\nX-Real: yes\r\n"), "{text}");
            }
            assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{method} {route} {status}: {text}");
            assert!(!text.contains("attacker"), "{text}");
            assert_eq!(split(rest.as_bytes())[0].json(), json!("Hello World"));
        }
    }
}

/// The requests whose answers `no_body_for_head` checks, on the API.
const API_HEADS: &[(&str, u16)] = &[
    ("HEAD /ping HTTP/1.1\r\n\r\n", 200),
    ("HEAD /actions HTTP/1.1\r\n\r\n", 200),
    ("HEAD /actions/nope HTTP/1.1\r\n\r\n", 404),
    ("HEAD /actions/n%20pe HTTP/1.1\r\n\r\n", 400),
    ("HEAD /nowhere HTTP/1.1\r\n\r\n", 404),
    ("HEAD /invocations?limit=x HTTP/1.1\r\n\r\n", 400),
];

/// Refusals of the reactor itself (the connection closes after them).
const REFUSED_HEADS: &[(&str, u16)] = &[
    ("HEAD /ping HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
    ("HEAD /ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    ("HEAD /ping HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
    ("HEAD /ping HTTP/1.1\r\nExpect: nothing\r\n\r\n", 417),
    ("\r\nHEAD /ping HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400),
    ("HEAD * HTTP/1.1\r\n\r\n", 400),
];

/// Asserts that `bytes` is one response of `status` with no body (its head
/// ends the bytes, or the next response starts right after it); returns
/// what follows the head.
fn assert_head_only<'a>(bytes: &'a [u8], status: u16, what: &str) -> &'a [u8] {
    let text = String::from_utf8_lossy(bytes);
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{what}: {text}");
    let end = text.find("\r\n\r\n").unwrap() + 4;
    let rest = &bytes[end..];
    assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 "), "{what}: a body after the head: {text}");
    rest
}

/// No answer to HEAD has a body, on any path: API answers and errors,
/// route answers and errors, and the reactor's own refusals (400, 408,
/// 411, 413, 417, 431), which before sent their error body.
#[test]
fn no_body_for_head() {
    let s = server("Server { max_body = 1000 }");
    let close = "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n";
    for (req, status) in API_HEADS {
        let bytes = raw_exchange(s.addr, &format!("{req}{close}"));
        let rest = assert_head_only(&bytes, *status, req);
        assert_eq!(split(rest).iter().map(|r| (r.status, r.text())).collect::<Vec<_>>(), [(200, "OK".into())]);
    }
    let web = s.routes_addr.unwrap();
    let close = "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n";
    for (req, status) in [
        ("HEAD /hello HTTP/1.1\r\n\r\n", 200),
        ("HEAD /boom HTTP/1.1\r\n\r\n", 500),
        ("HEAD /forge?status=418 HTTP/1.1\r\n\r\n", 418),
        ("HEAD /forge?status=100 HTTP/1.1\r\n\r\n", 500),
        ("HEAD /nothing HTTP/1.1\r\n\r\n", 404),
        ("HEAD /hello/%zz HTTP/1.1\r\n\r\n", 400),
    ] {
        let bytes = raw_exchange(web, &format!("{req}{close}"));
        let rest = assert_head_only(&bytes, status, req);
        assert_eq!(split(rest)[0].json(), json!("Hello World"), "{req}");
    }
    let big_head = format!("HEAD /ping HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    for addr in [s.addr, web] {
        for (req, status) in REFUSED_HEADS.iter().copied().chain([(big_head.as_str(), 431)]) {
            let bytes = raw_exchange(addr, req);
            let rest = assert_head_only(&bytes, status, &req[..req.len().min(60)]);
            assert!(rest.is_empty(), "{req:.60}: {}", String::from_utf8_lossy(&bytes));
        }
    }
    // A HEAD that takes too long gets its 408 without a body too.
    let s = TestServer::start("Server { request_timeout = 300 }");
    let mut c = connect(s.addr);
    c.write_all(b"HEAD /ping HTTP/1.1\r\nX-Slow: a").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = Vec::new();
    let _ = c.read_to_end(&mut bytes);
    assert!(assert_head_only(&bytes, 408, "a slow HEAD").is_empty());
}
