//! The queue-and-sink app of `examples/notes`, end to end: the real
//! `slserver` (routes listener, the kv plugin) and the real `slcli`. Notes
//! posted to `POST /notes` go on the topic `notes`, the subscription
//! `store-notes` stores them in kv, and `GET /notes` lists them in the order
//! they were posted.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{request, Server};
use serde_json::{json, Value};

/// A copy of the whole of `examples/notes`, its server configuration
/// `config.lua` included (deploy writes its state file into the directory).
fn copy_app(to: &Path) -> PathBuf {
    let app = to.join("notes-app");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/notes"), &app);
    assert!(app.join("sl.toml").is_file() && app.join("notes/store.lua").is_file());
    app
}

/// Copies the directory `from` to `to`, all of it but what running the app
/// leaves in it (`data/`, `test-data/`, `.sl/`).
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

/// A server with the kv plugin, its data in `kv_db`.
fn server_with_kv(kv_db: &Path) -> Server {
    Server::start_with(&format!(
        "Plugin \"kv\" {{ file = {:?}, path = {:?} }}\n",
        sl_testkit::plugin_lib("sl_kv").display().to_string(),
        kv_db.display().to_string()
    ))
}

/// Waits until `ok` holds; panics with `what` after 20 s.
#[track_caller]
fn wait_until(what: impl Fn() -> String, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "gave up waiting: {}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Posts one note; its place in the topic, from the 202.
#[track_caller]
fn post(routes: &str, content_type: &str, body: &str) -> (i64, i64) {
    let r = request(routes, "POST", "/notes", Some(content_type), body);
    assert_eq!(r.status, 202, "{}", r.body);
    let place = r.json();
    (place["partition"].as_i64().unwrap(), place["offset"].as_i64().unwrap())
}

#[test]
fn posted_notes_are_queued_then_stored_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = server_with_kv(&dir.join("kv.db"));
    let app = copy_app(dir);
    let app_arg = app.to_str().unwrap();

    assert_eq!(
        server.ok(dir, &["deploy", app_arg]),
        "created notes.list\ncreated notes.post\ncreated notes.store\ntopic created notes\n\
         subscription created store-notes (notes -> notes.store, from beginning)\n\
         route added POST /notes -> notes.post\nroute added GET /notes -> notes.list\n\
         3 created, 0 updated, 0 deleted, 2 routes added, 0 routes deleted, 1 topics created, \
         1 subscriptions created\n"
    );
    assert_eq!(server.ok(dir, &["deploy", app_arg]), "nothing changed\n");
    let r = &server.routes_url;
    assert_eq!(request(r, "GET", "/notes", None, "").body, "[]");

    // A text/plain body, JSON, a form: one after the other, so in this order.
    let mut expected = Vec::new();
    for n in 0..30 {
        let text = format!("note {n}: naïve\nsecond line");
        let place = match n % 3 {
            0 => post(r, "text/plain; charset=utf-8", &text),
            1 => post(r, "application/json", &json!({ "text": text }).to_string()),
            _ => post(r, "application/x-www-form-urlencoded", &format!("text=note+{n}%3A+na%C3%AFve%0Asecond+line")),
        };
        assert_eq!(place, (0, n), "one partition: the offsets count the notes");
        expected.push(json!({"offset": n, "text": text}));
    }
    // Posted at once from several connections: each stored at the offset its 202 named.
    let posters: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        let text = format!("poster {t}, note {i}");
                        let (partition, offset) = post(&r, "text/plain", &text);
                        assert_eq!(partition, 0);
                        (offset, text)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut concurrent: Vec<(i64, String)> = posters.into_iter().flat_map(|p| p.join().unwrap()).collect();
    concurrent.sort();
    assert_eq!(concurrent.iter().map(|(o, _)| *o).collect::<Vec<_>>(), (30..70).collect::<Vec<_>>());
    expected.extend(concurrent.into_iter().map(|(offset, text)| json!({"offset": offset, "text": text})));
    let expected = Value::Array(expected);

    // No text, or only blanks: nothing is published.
    for (content_type, body) in [("text/plain", ""), ("text/plain", " \n"), ("application/json", r#"{"text": 5}"#)] {
        let bad = request(r, "POST", "/notes", Some(content_type), body);
        assert_eq!(bad.status, 400, "{body:?}: {}", bad.body);
        assert_eq!(bad.json(), json!({"error": {"kind": "action", "message": "text is required"}}));
    }
    let bad = request(r, "POST", "/notes", Some("application/x-www-form-urlencoded"), "just text");
    assert_eq!(bad.status, 400, "a form without a text field: {}", bad.body);

    let listed = || request(r, "GET", "/notes", None, "").json();
    wait_until(|| format!("GET /notes: {}", listed()), || listed() == expected);

    // The sink kept up: no backlog, no dead letters, the cursor past the 70 notes.
    let shown = server.ok(dir, &["sub", "get", "store-notes"]);
    assert!(shown.contains("\nbacklog:       0\ndead letters:  0\n"), "{shown}");
    let sub: Value = serde_json::from_str(&server.ok(dir, &["--json", "sub", "get", "store-notes"])).unwrap();
    assert_eq!((&sub["backlog"], &sub["dead"], &sub["partitions"][0]["cursor"]), (&json!(0), &json!(0), &json!(70)));
    let topic: Value = serde_json::from_str(&server.ok(dir, &["--json", "topic", "get", "notes"])).unwrap();
    assert_eq!((&topic["partitions"], &topic["messages"]), (&json!(1), &json!(70)), "{topic}");

    // Delivered again (a replay, as a crash would): the same notes, once each.
    server.ok(dir, &["sub", "reset", "store-notes", "--to", "beginning"]);
    let cursor_and_backlog = || {
        let sub: Value = serde_json::from_str(&server.ok(dir, &["--json", "sub", "get", "store-notes"])).unwrap();
        (sub["partitions"][0]["cursor"].clone(), sub["backlog"].clone())
    };
    wait_until(|| format!("{:?}", cursor_and_backlog()), || cursor_and_backlog() == (json!(70), json!(0)));
    assert_eq!(listed(), expected);
    let runs = server.ok(dir, &["invocations", "notes.store"]);
    assert!(runs.contains("succeeded") && !runs.contains("failed"), "{runs}");

    // The app's tests, on a server of their own with a kv store of its own.
    let test_server = server_with_kv(&dir.join("test-kv.db"));
    let on_test_server = |args: &[&str]| {
        let mut all = vec!["--url", test_server.url.as_str()];
        all.extend_from_slice(args);
        test_server.ok(dir, &all)
    };
    let deployed = on_test_server(&["deploy", app_arg]);
    assert!(deployed.contains("3 created, 0 updated, 0 deleted, 2 routes added"), "{deployed}");
    let tests = on_test_server(&["test", app_arg]);
    assert_eq!(
        tests,
        "ok 1 - notes_test.lua: test_a_batch_delivered_twice_is_stored_once\n\
         ok 2 - notes_test.lua: test_a_note_goes_on_the_topic\n\
         ok 3 - notes_test.lua: test_a_text_plain_body_is_a_note\n\
         ok 4 - notes_test.lua: test_text_is_required\n\
         4 passed, 0 failed\n"
    );
    assert_eq!(listed(), expected, "the tests wrote into the app's data");
}
