//! `Server { workers = N }`: several reactors on one port.

mod common;

use common::{read_response, send, TestServer};
use serde_json::json;

#[test]
fn workers_share_the_port_and_see_changes_at_once() {
    let s = TestServer::start("Server { workers = 3 }");
    assert_eq!(s.create("v", "function main() return 1 end", "").status, 201);
    // Many connections: the kernel spreads them over the workers, and each
    // worker warms its own instance.
    let mut conns: Vec<_> = (0..24).map(|_| s.connect()).collect();
    for c in conns.iter_mut() {
        send(c, "POST", "/actions/v/block", Some("{}"));
        assert_eq!(read_response(c).json(), json!(1));
    }
    use base64::Engine;
    let code = base64::engine::general_purpose::STANDARD.encode("function main() return 2 end");
    assert_eq!(s.request("PUT", "/actions/v", Some(&format!(r#"{{"code":"{code}"}}"#))).status, 200);
    // The next invocation on every worker runs the new version.
    for c in conns.iter_mut() {
        send(c, "POST", "/actions/v/block", Some("{}"));
        assert_eq!(read_response(c).json(), json!(2));
    }
    assert_eq!(s.request("DELETE", "/actions/v", None).status, 200);
    for c in conns.iter_mut() {
        send(c, "POST", "/actions/v/block", Some("{}"));
        assert_eq!(read_response(c).status, 404);
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", s.child.id()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|n| n.starts_with("sl-worker"))
        .count();
    assert_eq!(threads, 3, "expected one reactor thread per worker (sl-worker-0..2)");
}
