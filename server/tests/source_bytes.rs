//! Lua source that is not UTF-8, end to end: a string literal may hold any
//! bytes, so the API takes and gives back the source's exact bytes, and the
//! stores keep them through a restart (SQLite, and MongoDB through nx-27017).

mod common;

use base64::Engine;
use common::TestServer;
use serde_json::json;
use sl_testkit::Mongo;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// "café" in Latin-1: 0xE9 is not UTF-8 on its own.
const LATIN1: &[u8] = b"local s = \"caf\xe9\" -- Latin-1\nfunction main() return {len = #s, last = s:byte(-1)} end\n";

/// A string, not UTF-8, as the result.
const RAW_RESULT: &[u8] = b"function main() return \"caf\xe9\" end\n";

/// Every byte from 0x80 to 0xFF in a long string, and some in a comment.
fn high_bytes() -> Vec<u8> {
    let mut source = b"-- \xff\xfe\xc3\x28\n local s = [[".to_vec();
    source.extend(0x80..=0xffu8);
    source.extend_from_slice(b"]]\nfunction main() return {len = #s, first = s:byte(1), last = s:byte(-1)} end\n");
    source
}

fn create(s: &TestServer, name: &str, source: &[u8]) -> common::Resp {
    s.post("/actions", &json!({"name": name, "code": B64.encode(source)}).to_string())
}

fn code_of(s: &TestServer, name: &str) -> Vec<u8> {
    let got = s.get(&format!("/actions/{name}"));
    assert_eq!(got.status, 200, "{}", got.text());
    B64.decode(got.json()["code"].as_str().expect("code")).expect("base64")
}

fn latin1_sources_round_trip(s: TestServer) {
    let r = create(&s, "latin1", LATIN1);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.post("/actions/latin1/block", "");
    assert_eq!((r.status, r.json()), (200, json!({"len": 4, "last": 233})), "{}", r.text());
    assert_eq!(code_of(&s, "latin1"), LATIN1);

    // A result is JSON, so a string in it must be UTF-8: returning the
    // Latin-1 string itself fails, as the README says, and says why.
    assert_eq!(create(&s, "raw", RAW_RESULT).status, 201);
    let r = s.post("/actions/raw/block", "");
    assert_eq!((r.status, r.error_kind()), (500, "runtime".to_string()), "{}", r.text());
    assert!(r.text().contains("not valid UTF-8"), "{}", r.text());

    // Update to other bytes that are not UTF-8.
    let high = high_bytes();
    let r = s.request("PUT", "/actions/latin1", Some(&json!({"code": B64.encode(&high)}).to_string()));
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(2)), "{}", r.text());
    assert_eq!(s.post("/actions/latin1/block", "").json(), json!({"len": 128, "first": 128, "last": 255}));
    assert_eq!(code_of(&s, "latin1"), high);

    // A syntax error next to such bytes is still a clear 400 in JSON.
    let r = create(&s, "broken", b"function main()\n  return \"caf\xe9\n end");
    assert_eq!((r.status, r.error_kind()), (400, "compile".to_string()), "{}", r.text());
    let message = r.json()["error"]["message"].as_str().expect("a message").to_string();
    // The byte that is not UTF-8 shows as U+FFFD in the message.
    assert_eq!(message, "broken:2: unfinished string near '\"caf\u{fffd}'");

    // Kept by the store through a restart.
    let s = s.restart();
    assert_eq!(code_of(&s, "latin1"), high);
    assert_eq!(code_of(&s, "raw"), RAW_RESULT);
    assert_eq!(s.post("/actions/latin1/block", "").json(), json!({"len": 128, "first": 128, "last": 255}));
    assert_eq!(s.get("/ping").text(), "OK");
}

#[test]
fn latin1_source_on_sqlite() {
    latin1_sources_round_trip(TestServer::start(""));
}

#[test]
fn latin1_source_on_mongodb() {
    let m = Mongo::start();
    let cfg = format!("Mongodb {{ url = {:?}, database = {:?} }}\n", m.uri(), m.fresh_db());
    latin1_sources_round_trip(TestServer::start(&cfg));
}
