//! API tokens end to end.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{read_response, TestServer, BIN, HELLO};

const ADMIN: &str = "admin-0123456789abcdef";
const INVOKE: &str = "invoke-0123456789abcdef";

fn with_token(s: &TestServer, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> common::Resp {
    let mut c = s.connect();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    c.write_all(req.as_bytes()).unwrap();
    read_response(&mut c)
}

#[test]
fn tokens_decide_who_may_do_what() {
    let s = TestServer::start(&format!("Auth {{ admin = {ADMIN:?}, invoke = {{ {INVOKE:?} }} }}"));
    assert_eq!(s.get("/ping").status, 200);
    use base64::Engine;
    let code = base64::engine::general_purpose::STANDARD.encode(HELLO);
    let create = format!(r#"{{"name":"hello","code":"{code}"}}"#);

    // Without a valid token nothing but /ping, and nothing about what exists.
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        for (m, p, b) in [
            ("GET", "/actions", None),
            ("POST", "/actions", Some(create.as_str())),
            ("POST", "/actions/hello/block", Some("{}")),
            ("POST", "/actions/nosuch/block", Some("{}")),
            ("GET", "/actions/nosuch", None),
            ("GET", "/invocation/00000000-0000-0000-0000-000000000000", None),
            ("GET", "/nosuchroute", None),
        ] {
            let r = with_token(&s, m, p, b, token);
            assert_eq!(r.status, 401, "{m} {p} with {token:?}: {}", r.text());
            assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
            assert!(!r.text().contains("nosuch") && !r.text().contains("hello"), "{}", r.text());
        }
    }
    // The invoke token runs and resolves, and may not manage.
    assert_eq!(with_token(&s, "POST", "/actions", Some(&create), Some(INVOKE)).status, 403);
    assert_eq!(with_token(&s, "GET", "/actions", None, Some(INVOKE)).status, 403);
    assert_eq!(with_token(&s, "POST", "/actions", Some(&create), Some(ADMIN)).status, 201);
    let r = with_token(&s, "POST", "/actions/hello/block", Some(r#"{"name":"t"}"#), Some(INVOKE));
    assert_eq!(r.json(), serde_json::json!("Hello t"));
    let id = with_token(&s, "POST", "/actions/hello", Some("{}"), Some(INVOKE)).json()["InvocationId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = with_token(&s, "GET", &format!("/invocation/{id}?wait=5"), None, Some(INVOKE));
    assert_eq!(r.json(), serde_json::json!("Hello World"));
    assert_eq!(with_token(&s, "DELETE", "/actions/hello", None, Some(INVOKE)).status, 403);
    assert_eq!(with_token(&s, "DELETE", "/actions/hello", None, Some(ADMIN)).status, 200);
    assert!(!s.log().contains(ADMIN) && !s.log().contains(INVOKE), "a token was logged");
}

fn run_server(config: &str, listen: &str) -> std::process::Child {
    let tmp = tempfile::tempdir().unwrap().keep();
    let path = tmp.join("config.lua");
    std::fs::write(&path, config).unwrap();
    Command::new(BIN)
        .args(["--config", path.to_str().unwrap(), "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn without_tokens_only_loopback_unless_insecure() {
    let out = run_server("Nulldb {}", "0.0.0.0:0").wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0") && err.contains("insecure = true"), "{err}");

    let mut child = run_server("Nulldb {}\nServer { insecure = true }\nLogger { level = \"info\" }", "0.0.0.0:0");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("slserver listening on http://0.0.0.0:"), "{line}");
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("insecure = true") && err.contains("WARN"), "{err}");

    let s = TestServer::start("");
    assert!(s.wait_log("API is open to local users only", Duration::from_secs(2)), "{}", s.log());
}
