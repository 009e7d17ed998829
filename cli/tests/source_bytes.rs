//! Lua files that are not UTF-8 (a Latin-1 byte in a string literal),
//! through the real `slcli` and `slserver`: `deploy`, `create`, `update`
//! and `test` send the file's exact bytes, and `get -o` gives them back.

mod common;

use std::path::Path;
use std::process::Output;

use common::{stderr, stdout, Server};

/// "café" in Latin-1: 0xE9 is not UTF-8 on its own.
const LATIN1: &[u8] = b"local s = \"caf\xe9\" -- Latin-1\nfunction main() return {len = #s, last = s:byte(-1)} end\n";

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "{}:\nstdout:\n{}\nstderr:\n{}", o.status, stdout(o), stderr(o));
}

/// `slcli --json run NAME -b`, parsed.
fn result(server: &Server, cwd: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&server.ok(cwd, &["--json", "run", name, "-b"])).unwrap()
}

#[test]
fn deploy_get_and_test_keep_the_bytes_of_a_latin1_file() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(&app, "latin1.lua", LATIN1);
    write(
        &app,
        "latin1_test.lua",
        b"function test_bytes()\n  assert_eq(invoke('latin1', {}), {len = 4, last = 0xe9})\n  \
          assert_eq(#'\xe9\xff', 2)\nend\n",
    );

    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created latin1\n1 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(result(&server, cwd, "latin1"), serde_json::json!({"len": 4, "last": 233}));
    // The server has the same bytes: nothing to deploy.
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");

    // `get -o FILE` writes the exact bytes; `get -o -` to a pipe too.
    server.ok(cwd, &["get", "latin1", "-o", "saved.lua"]);
    assert_eq!(std::fs::read(cwd.join("saved.lua")).unwrap(), LATIN1);
    let o = server.slcli(cwd, &["get", "latin1", "-o", "-"]);
    assert_ok(&o);
    assert_eq!(o.stdout, LATIN1);
    // `get` shows it, the byte that is not UTF-8 as U+FFFD.
    let shown = server.ok(cwd, &["get", "latin1"]);
    assert!(shown.contains("local s = \"caf\u{fffd}\" -- Latin-1\n"), "{shown}");

    // An edit to other bytes that are not UTF-8 is an update.
    let edited = b"local s = \"\xff\xfe\xfd\"\nfunction main() return {len = #s, last = s:byte(-1)} end\n";
    write(&app, "latin1.lua", edited);
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "updated latin1\n0 created, 1 updated, 0 deleted, 0 routes added, 0 routes deleted\n"
    );
    assert_eq!(result(&server, cwd, "latin1"), serde_json::json!({"len": 3, "last": 253}));
    server.ok(cwd, &["get", "latin1", "-o", "saved.lua"]);
    assert_eq!(std::fs::read(cwd.join("saved.lua")).unwrap(), edited);

    // `slcli test` sends a test file that is not UTF-8 as it is.
    write(&app, "latin1.lua", LATIN1);
    server.ok(cwd, &["deploy", "app"]);
    let o = server.slcli(cwd, &["test", "app"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "ok 1 - latin1_test.lua: test_bytes\n1 passed, 0 failed\n");

    // `create -f` and `update -f` send the file's bytes too.
    write(cwd, "one.lua", LATIN1);
    server.ok(cwd, &["create", "one", "-f", "one.lua"]);
    assert_eq!(result(&server, cwd, "one"), serde_json::json!({"len": 4, "last": 233}));
    write(cwd, "two.lua", edited);
    server.ok(cwd, &["update", "one", "-f", "two.lua"]);
    assert_eq!(result(&server, cwd, "one"), serde_json::json!({"len": 3, "last": 253}));
    let o = server.slcli(cwd, &["get", "one", "-o", "-"]);
    assert_ok(&o);
    assert_eq!(o.stdout, edited);
}
