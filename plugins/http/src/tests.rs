//! Tests against a small HTTP server on 127.0.0.1 started by the test.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use super::*;
use sl_plugin::serde_json;

/// A one-request-per-connection HTTP/1.1 server on a free port.
struct TestServer {
    port: u16,
}

impl TestServer {
    fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let _ = serve(stream, port);
                });
            }
        });
        TestServer { port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(stream: TcpStream, port: u16) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;

    let (status, extra, out): (&str, Vec<String>, Vec<u8>) = match path.as_str() {
        "/hello" => ("200 OK", vec!["X-Test: yes".into(), "X-Multi: a".into(), "X-Multi: b".into()], b"hello".to_vec()),
        "/echo" => {
            let v = json!({
                "method": method,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            ("200 OK", vec!["Content-Type: application/json".into()], v.to_string().into_bytes())
        }
        "/missing" => ("404 Not Found", vec![], b"not here".to_vec()),
        "/slow" => {
            thread::sleep(Duration::from_millis(1500));
            ("200 OK", vec![], b"late".to_vec())
        }
        "/binary" => ("200 OK", vec![], vec![0, 159, 146, 150, 255]),
        "/big" => ("200 OK", vec![], vec![b'x'; 4096]),
        "/redirect" => ("302 Found", vec!["Location: /hello".into()], vec![]),
        "/redirect307" => ("307 Temporary Redirect", vec!["Location: echo".into()], vec![]),
        "/loop" => ("302 Found", vec!["Location: /loop".into()], vec![]),
        "/away" => ("302 Found", vec![format!("Location: http://localhost:{port}/hello")], vec![]),
        _ => ("500 Internal Server Error", vec![], b"unknown test path".to_vec()),
    };
    let mut stream = stream;
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", out.len());
    for h in extra {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&out)?;
    stream.flush()
}

fn plugin(config: Value) -> Http {
    Http::init(config).unwrap()
}

fn request(http: &Http, payload: Value) -> Result<Value, String> {
    http.call("request", payload)
}

#[test]
fn get_returns_status_headers_and_body() {
    let s = TestServer::start();
    let r = request(&plugin(json!({})), json!({ "url": s.url("/hello") })).unwrap();
    assert_eq!(r["status"], 200);
    assert_eq!(r["body"], "hello");
    assert_eq!(r["body_base64"], false);
    assert_eq!(r["headers"]["x-test"], "yes");
    assert_eq!(r["headers"]["x-multi"], "a, b");
    assert_eq!(r["url"], s.url("/hello"));
}

#[test]
fn request_headers_method_and_body_are_sent() {
    let s = TestServer::start();
    let http = plugin(json!({}));
    let r = request(
        &http,
        json!({
            "method": "post",
            "url": s.url("/echo"),
            "headers": { "X-Token": "abc", "X-Num": 42, "Content-Type": "text/plain" },
            "body": "payload text",
        }),
    )
    .unwrap();
    assert_eq!(r["status"], 200);
    assert_eq!(r["headers"]["content-type"], "application/json");
    let echo: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], "payload text");
    assert_eq!(echo["headers"]["x-token"], "abc");
    assert_eq!(echo["headers"]["x-num"], "42");
    assert!(echo["headers"]["user-agent"].as_str().unwrap().starts_with("sl-http/"));

    let r =
        request(&http, json!({ "method": "PUT", "url": s.url("/echo"), "body": "AP8=", "body_base64": true })).unwrap();
    let echo: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["content-length"], "2");
}

#[test]
fn non_2xx_is_a_result() {
    let s = TestServer::start();
    let r = request(&plugin(json!({})), json!({ "url": s.url("/missing") })).unwrap();
    assert_eq!(r["status"], 404);
    assert_eq!(r["body"], "not here");
}

#[test]
fn binary_bodies_come_back_as_base64() {
    let s = TestServer::start();
    let r = request(&plugin(json!({})), json!({ "url": s.url("/binary") })).unwrap();
    assert_eq!(r["body_base64"], true);
    assert_eq!(r["body"], "AJ+Slv8=");
}

#[test]
fn redirects_are_followed_and_checked() {
    let s = TestServer::start();
    let http = plugin(json!({ "allow": [format!("127.0.0.1:{}", s.port)] }));
    let r = request(&http, json!({ "url": s.url("/redirect") })).unwrap();
    assert_eq!(r["status"], 200);
    assert_eq!(r["body"], "hello");
    assert_eq!(r["url"], s.url("/hello"));

    // 307 keeps the method and the body; a relative location resolves.
    let r = request(&http, json!({ "method": "POST", "url": s.url("/redirect307"), "body": "again" })).unwrap();
    let echo: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!((echo["method"].as_str(), echo["body"].as_str()), (Some("POST"), Some("again")));

    let r = request(&http, json!({ "url": s.url("/redirect"), "follow_redirects": false })).unwrap();
    assert_eq!(r["status"], 302);
    assert_eq!(r["headers"]["location"], "/hello");

    let e = request(&http, json!({ "url": s.url("/loop") })).unwrap_err();
    assert!(e.contains("too many redirects"), "{e}");

    // A redirect to a host outside the allow list is refused.
    let e = request(&http, json!({ "url": s.url("/away") })).unwrap_err();
    assert!(e.contains(&format!("host localhost:{} is not allowed", s.port)), "{e}");
}

#[test]
fn disallowed_hosts_are_errors() {
    let s = TestServer::start();
    let http = plugin(json!({ "allow": [format!("127.0.0.1:{}", s.port), "api.example.com"] }));
    assert!(request(&http, json!({ "url": s.url("/hello") })).is_ok());
    let e = request(&http, json!({ "url": format!("http://localhost:{}/hello", s.port) })).unwrap_err();
    assert_eq!(
        e,
        format!(
            "http: host localhost:{} is not allowed by the plugin's allow list (allowed: 127.0.0.1:{}, api.example.com)",
            s.port, s.port
        )
    );
    let e = request(&plugin(json!({ "allow": [] })), json!({ "url": s.url("/hello") })).unwrap_err();
    assert!(e.contains("the allow list is empty"), "{e}");
    let e = request(&plugin(json!({ "allow": {} })), json!({ "url": s.url("/hello") })).unwrap_err();
    assert!(e.contains("the allow list is empty"), "{e}");
}

#[test]
fn timeouts_are_errors() {
    let s = TestServer::start();
    let start = Instant::now();
    let e = request(&plugin(json!({})), json!({ "url": s.url("/slow"), "timeout": 200 })).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1400), "took {:?}", start.elapsed());
    assert_eq!(e, format!("http: GET {} timed out after 200 ms", s.url("/slow")));

    // The configured default applies when the request gives none.
    let e = request(&plugin(json!({ "timeout": 150 })), json!({ "url": s.url("/slow") })).unwrap_err();
    assert!(e.contains("timed out after 150 ms"), "{e}");

    let e = request(
        &plugin(json!({ "max_timeout": 1000, "timeout": 500 })),
        json!({ "url": s.url("/slow"), "timeout": 5000 }),
    )
    .unwrap_err();
    assert!(e.contains("larger than the plugin's max_timeout (1000 ms)"), "{e}");
}

#[test]
fn connection_failures_are_errors() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = request(&plugin(json!({})), json!({ "url": format!("http://127.0.0.1:{port}/") })).unwrap_err();
    assert!(e.starts_with(&format!("http: cannot connect to 127.0.0.1:{port}")), "{e}");
}

#[test]
fn max_body_is_enforced() {
    let s = TestServer::start();
    let e = request(&plugin(json!({ "max_body": 1000 })), json!({ "url": s.url("/big") })).unwrap_err();
    assert!(e.contains("larger than max_body (1000 bytes)"), "{e}");
    let r = request(&plugin(json!({ "max_body": 4096 })), json!({ "url": s.url("/big") })).unwrap();
    assert_eq!(r["body"].as_str().unwrap().len(), 4096);
}

#[test]
fn bad_payloads_are_clear_errors() {
    let http = plugin(json!({}));
    let cases = [
        (json!(null), "payload must be a table"),
        (json!("http://x"), "not a string"),
        (json!({}), "missing 'url'"),
        (json!({ "url": 5 }), "'url' must be a string"),
        (json!({ "url": "/relative" }), "must be absolute"),
        (json!({ "url": "ftp://host/x" }), "unsupported scheme 'ftp'"),
        (json!({ "url": "http://a b" }), "invalid url"),
        (json!({ "url": "http://h/", "method": "GE T" }), "invalid method"),
        (json!({ "url": "http://h/", "headers": { "bad header": "x" } }), "invalid header name"),
        (json!({ "url": "http://h/", "headers": { "x": "a\nb" } }), "invalid value for header 'x'"),
        (json!({ "url": "http://h/", "headers": { "x": {} } }), "header 'x' must be a string"),
        (json!({ "url": "http://h/", "body": 1 }), "'body' must be a string"),
        (json!({ "url": "http://h/", "body": "!!", "body_base64": true }), "not valid base64"),
        (json!({ "url": "http://h/", "timeout": -1 }), "'timeout' must be milliseconds"),
        (json!({ "url": "http://h/", "follow_redirects": "yes" }), "must be true or false"),
        (json!({ "url": "http://h/", "uri": "typo" }), "unknown field 'uri'"),
    ];
    for (payload, expected) in cases {
        let e = request(&http, payload.clone()).unwrap_err();
        assert!(e.contains(expected), "{payload}: {e}");
    }
    let e = http.call("get", json!({})).unwrap_err();
    assert_eq!(e, "http: unknown action 'get' (known: request)");
}

#[test]
fn bad_configs_are_refused() {
    let cases = [
        (json!({ "alow": ["x"] }), "unknown setting 'alow'"),
        (json!({ "allow": "x.com" }), "'allow' must be a list"),
        (json!({ "allow": [1] }), "allow entries must be strings"),
        (json!({ "allow": ["http://x.com"] }), "invalid allow entry 'http://x.com'"),
        (json!({ "timeout": "5s" }), "'timeout' must be a number"),
        (json!({ "timeout": 70000 }), "must not be larger than 'max_timeout'"),
        (json!({ "proxy": "not a url at all" }), "invalid proxy"),
        (json!([1]), "must be a table"),
    ];
    for (config, expected) in cases {
        let e = Http::init(config.clone()).err().unwrap();
        assert!(e.contains(expected), "{config}: {e}");
    }
    // Lua numbers may arrive as floats.
    assert!(Http::init(json!({ "timeout": 5000.0, "allow": ["a.com"] })).is_ok());
}

#[test]
fn redirect_locations_resolve() {
    let base: Uri = "http://h:8080/a/b?q=1".parse().unwrap();
    let cases = [
        ("http://other/x", "http://other/x"),
        ("//other/y", "http://other/y"),
        ("/root", "http://h:8080/root"),
        ("/next?to=http://x/", "http://h:8080/next?to=http://x/"),
        ("sib", "http://h:8080/a/sib"),
        ("?z=2", "http://h:8080/a/b?z=2"),
    ];
    for (loc, want) in cases {
        assert_eq!(resolve(&base, loc).unwrap().to_string(), want, "{loc}");
    }
}

#[cfg(feature = "tls")]
#[test]
fn https_urls_are_accepted() {
    // No network in tests: an https URL to a closed local port must fail to
    // connect, not be refused for the scheme.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = request(&plugin(json!({})), json!({ "url": format!("https://127.0.0.1:{port}/") })).unwrap_err();
    assert!(e.contains("cannot connect"), "{e}");
}

#[cfg(not(feature = "tls"))]
#[test]
fn https_urls_need_the_tls_feature() {
    let e = request(&plugin(json!({})), json!({ "url": "https://127.0.0.1:1/" })).unwrap_err();
    assert!(e.contains("no TLS support"), "{e}");
}
