//! The README's tutorial ("Building apps"), step by step, with the real
//! `slserver` (routes listener, the kv plugin) and the real `slcli` on the
//! app in `examples/items`.

mod common;

use std::path::{Path, PathBuf};

use common::{request, Server};

/// A copy of the whole of `examples/items`, its server configuration
/// `config.lua` included (deploy writes its state file into the directory).
fn copy_app(to: &Path) -> PathBuf {
    let app = to.join("items-app");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/items"), &app);
    assert!(app.join("config.lua").is_file() && app.join("items/create.lua").is_file());
    app
}

/// Copies the directory `from` to `to`, all of it but what running the
/// tutorial leaves in it (`data/`, `test-data/`, `.sl/`).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "data" || name == "test-data" || name == ".sl" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn the_readme_tutorial() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kv = sl_testkit::plugin_lib("sl_kv");
    let server = Server::start_with(&format!(
        "Plugin \"kv\" {{ file = {:?}, path = {:?} }}\n",
        kv.display().to_string(),
        dir.join("kv.db").display().to_string()
    ));
    let app = copy_app(dir);
    let app_arg = app.to_str().unwrap();

    let out = server.ok(dir, &["deploy", app_arg]);
    for line in [
        "created lib.items",
        "created items.create",
        "route added GET /items -> items.list",
        "6 created, 0 updated, 0 deleted, 5 routes added, 0 routes deleted",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let r = &server.routes_url;
    let created = request(r, "POST", "/items", Some("application/json"), r#"{"name": "pen"}"#);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some("/items/1"));
    assert_eq!(created.json(), serde_json::json!({"id": "1", "name": "pen"}));
    let form = request(r, "POST", "/items", Some("application/x-www-form-urlencoded"), "name=blue+pencil");
    assert_eq!(form.json(), serde_json::json!({"id": "2", "name": "blue pencil"}));
    let found = request(r, "GET", "/items?q=pen", None, "");
    assert_eq!(found.json(), serde_json::json!([{"id": "1", "name": "pen"}, {"id": "2", "name": "blue pencil"}]));
    assert_eq!(request(r, "GET", "/items?q=zzz", None, "").body, "[]");
    let put = request(r, "PUT", "/items/1", Some("application/json"), r#"{"name": "quill"}"#);
    assert_eq!(put.json(), serde_json::json!({"id": "1", "name": "quill"}));
    assert_eq!(request(r, "DELETE", "/items/1", None, "").status, 204);
    let gone = request(r, "GET", "/items/1", None, "");
    assert_eq!((gone.status, gone.json()), (404, serde_json::json!({"error": "no item 1"})));
    let bad = request(r, "POST", "/items", None, "");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("name is required"), "{}", bad.body);

    assert_eq!(server.ok(dir, &["deploy", app_arg]).trim(), "nothing changed");

    // The tests run on a server of their own, with a kv store of its own
    // (as README's ITEMS_DATA=test-data server): the app's data stays as it was.
    let before = request(r, "GET", "/items", None, "").json();
    assert_eq!(before, serde_json::json!([{"id": "2", "name": "blue pencil"}]));
    let test_server = Server::start_with(&format!(
        "Plugin \"kv\" {{ file = {:?}, path = {:?} }}\n",
        kv.display().to_string(),
        dir.join("test-kv.db").display().to_string()
    ));
    let on_test_server = |args: &[&str]| {
        let mut all = vec!["--url", test_server.url.as_str()];
        all.extend_from_slice(args);
        test_server.ok(dir, &all)
    };
    let deployed = on_test_server(&["deploy", app_arg]);
    assert!(deployed.contains("6 created, 0 updated, 0 deleted, 5 routes added"), "{deployed}");
    let tests = on_test_server(&["test", app_arg]);
    assert!(tests.contains("ok 1 - items_test.lua: test_a_name_is_required"), "{tests}");
    assert!(tests.trim_end().ends_with("4 passed, 0 failed"), "{tests}");
    assert_eq!(request(r, "GET", "/items", None, "").json(), before, "the tests wrote into the app's data");
    let test_items = request(&test_server.routes_url, "GET", "/items", None, "").json();
    assert!(!test_items.as_array().unwrap().is_empty(), "the tests' items are on their own server: {test_items}");
    // Both servers are in the deploy state, by URL.
    assert_eq!(server.ok(dir, &["deploy", app_arg]).trim(), "nothing changed");
}
