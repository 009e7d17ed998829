//! Tests through the `Plugin` trait, each on a fresh file in a temporary
//! directory.

use std::sync::Arc;

use tempfile::TempDir;

use super::store::prefix_upper_bound;
use super::*;

/// A plugin on a fresh file; keep the directory alive as long as the plugin.
fn plugin() -> (TempDir, Kv) {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(&dir.path().join("kv.db"));
    (dir, kv)
}

fn open(path: &Path) -> Kv {
    Kv::init(json!({ "path": path.to_str().unwrap() })).unwrap_or_else(|e| panic!("init: {e}"))
}

fn ok(kv: &Kv, action: &str, payload: Value) -> Value {
    kv.call(action, payload.clone()).unwrap_or_else(|e| panic!("{action} {payload}: {e}"))
}

fn err(kv: &Kv, action: &str, payload: Value) -> String {
    match kv.call(action, payload.clone()) {
        Ok(v) => panic!("{action} {payload}: expected an error, got {v}"),
        Err(e) => e,
    }
}

fn init_err(config: Value) -> String {
    match Kv::init(config.clone()) {
        Ok(_) => panic!("init {config}: expected an error"),
        Err(e) => e,
    }
}

fn keys(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect()
}

#[test]
fn put_get_delete() {
    let (_dir, kv) = plugin();
    assert_eq!(ok(&kv, "get", json!({"key": "items/1"})), Value::Null);
    assert_eq!(ok(&kv, "put", json!({"key": "items/1", "value": {"name": "apple"}})), json!(true));
    assert_eq!(ok(&kv, "get", json!({"key": "items/1"})), json!({"name": "apple"}));
    // Replaces.
    assert_eq!(ok(&kv, "put", json!({"key": "items/1", "value": {"name": "pear", "n": 2}})), json!(true));
    assert_eq!(ok(&kv, "get", json!({"key": "items/1"})), json!({"name": "pear", "n": 2}));
    assert_eq!(ok(&kv, "delete", json!({"key": "items/1"})), json!(true));
    assert_eq!(ok(&kv, "delete", json!({"key": "items/1"})), json!(false));
    assert_eq!(ok(&kv, "get", json!({"key": "items/1"})), Value::Null);
    assert_eq!(ok(&kv, "delete", json!({"key": "never"})), json!(false));
}

#[test]
fn any_json_value_round_trips() {
    let (_dir, kv) = plugin();
    let values = [
        json!("text with ünïcödé and \"quotes\""),
        json!(""),
        json!(42),
        json!(-7),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(2.5),
        json!(false),
        json!([]),
        json!({}),
        json!([1, "two", null, {"three": [3.0]}]),
        json!({"nested": {"deep": {"list": [true, false], "null": null}}}),
    ];
    for (i, value) in values.iter().enumerate() {
        let key = format!("v/{i}");
        ok(&kv, "put", json!({"key": key, "value": value}));
        let back = ok(&kv, "get", json!({"key": key}));
        assert_eq!(&back, value, "value {i}");
    }
    // Integers stay integers.
    assert!(ok(&kv, "get", json!({"key": "v/2"})).is_i64());
    assert!(ok(&kv, "get", json!({"key": "v/6"})).is_f64());
}

#[test]
fn keys_are_exact_strings() {
    let (_dir, kv) = plugin();
    for key in ["a", "A", "a ", " a", "a/b", "ключ", "🔑", "a\u{0}b", "%", "_", "'; DROP TABLE kv; --"] {
        ok(&kv, "put", json!({"key": key, "value": key}));
    }
    for key in ["a", "A", "a ", " a", "a/b", "ключ", "🔑", "a\u{0}b", "%", "_", "'; DROP TABLE kv; --"] {
        assert_eq!(ok(&kv, "get", json!({"key": key})), json!(key), "{key:?}");
    }
    assert_eq!(ok(&kv, "get", json!({"key": "a\u{0}"})), Value::Null);
    assert_eq!(ok(&kv, "list", json!({})).as_array().unwrap().len(), 11);
}

#[test]
fn list_sorts_filters_and_limits() {
    let (_dir, kv) = plugin();
    for key in ["items/2", "items/10", "items/1", "item", "items0", "other/1", "itemsX", "items/"] {
        ok(&kv, "put", json!({"key": key, "value": {"k": key}}));
    }
    let all = ok(&kv, "list", Value::Null);
    assert_eq!(keys(&all), ["item", "items/", "items/1", "items/10", "items/2", "items0", "itemsX", "other/1"]);
    assert_eq!(all[0], json!({"key": "item", "value": {"k": "item"}}));

    let items = ok(&kv, "list", json!({"prefix": "items/"}));
    assert_eq!(keys(&items), ["items/", "items/1", "items/10", "items/2"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "items/1"}))), ["items/1", "items/10"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "items/", "limit": 2}))), ["items/", "items/1"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "", "limit": 1}))), ["item"]);
    assert_eq!(ok(&kv, "list", json!({"prefix": "nothing"})), json!([]));
    assert_eq!(ok(&kv, "list", json!([])).as_array().unwrap().len(), 8);
}

#[test]
fn list_prefixes_are_literal() {
    let (_dir, kv) = plugin();
    for key in ["a%b", "a%", "a%%", "aXb", "ab", "a_b", "a_", "aZ", "a\\b", "a\\", "b"] {
        ok(&kv, "put", json!({"key": key, "value": 1}));
    }
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "a%"}))), ["a%", "a%%", "a%b"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "a%%"}))), ["a%%"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "a_"}))), ["a_", "a_b"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "a\\"}))), ["a\\", "a\\b"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "%"}))), Vec::<&str>::new());
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "_"}))), Vec::<&str>::new());
}

#[test]
fn list_prefixes_at_the_ends_of_unicode() {
    let (_dir, kv) = plugin();
    let keys_in = ["\u{D7FF}", "\u{D7FF}x", "\u{E000}", "\u{10FFFF}", "\u{10FFFF}\u{10FFFF}", "\u{10FFFF}a", "z"];
    for key in keys_in {
        ok(&kv, "put", json!({"key": key, "value": 1}));
    }
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "\u{D7FF}"}))), ["\u{D7FF}", "\u{D7FF}x"]);
    assert_eq!(
        keys(&ok(&kv, "list", json!({"prefix": "\u{10FFFF}"}))),
        ["\u{10FFFF}", "\u{10FFFF}a", "\u{10FFFF}\u{10FFFF}"]
    );
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "\u{10FFFF}\u{10FFFF}"}))), ["\u{10FFFF}\u{10FFFF}"]);
}

#[test]
fn prefix_upper_bounds() {
    assert_eq!(prefix_upper_bound(""), None);
    assert_eq!(prefix_upper_bound("a"), Some("b".into()));
    assert_eq!(prefix_upper_bound("items/"), Some("items0".into()));
    assert_eq!(prefix_upper_bound("a%"), Some("a&".into()));
    assert_eq!(prefix_upper_bound("a\u{D7FF}"), Some("a\u{E000}".into()));
    assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
    assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
    assert_eq!(prefix_upper_bound("\u{7F}"), Some("\u{80}".into()));
}

#[test]
fn list_limits() {
    let (_dir, kv) = plugin();
    for i in 0..1001 {
        ok(&kv, "put", json!({"key": format!("k/{i:04}"), "value": i}));
    }
    let default = ok(&kv, "list", json!({"prefix": "k/"}));
    assert_eq!(default.as_array().unwrap().len(), DEFAULT_LIMIT);
    assert_eq!(default[99], json!({"key": "k/0099", "value": 99}));
    let max = ok(&kv, "list", json!({"limit": MAX_LIMIT}));
    assert_eq!(max.as_array().unwrap().len(), MAX_LIMIT);
    assert_eq!(max[999]["key"], json!("k/0999"));
}

#[test]
fn list_pages_with_after_and_stops_at_its_byte_bound() {
    let (_dir, kv) = plugin();
    for key in ["a/1", "a/2", "a/3", "b/1"] {
        ok(&kv, "put", json!({"key": key, "value": key}));
    }
    assert_eq!(keys(&ok(&kv, "list", json!({"after": "a/1"}))), ["a/2", "a/3", "b/1"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "a/", "after": "a/2"}))), ["a/3"]);
    // An `after` before the prefix starts it at the prefix.
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "b/", "after": "a/9"}))), ["b/1"]);
    assert_eq!(keys(&ok(&kv, "list", json!({"prefix": "a/", "after": "a/3"}))), Vec::<&str>::new());
    assert!(err(&kv, "list", json!({"after": 5})).contains("'after' must be a string"));
    // Values of 1 MiB: a list holds at most MAX_LIST_BYTES of them, and the
    // last key pages on.
    let big = "v".repeat(MAX_VALUE_BYTES - 2);
    for i in 0..10 {
        ok(&kv, "put", json!({"key": format!("big/{i}"), "value": big}));
    }
    let (mut seen, mut after) = (Vec::new(), Value::Null);
    loop {
        let page = ok(&kv, "list", json!({"prefix": "big/", "after": after, "limit": 1000}));
        let page = page.as_array().unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= MAX_LIST_BYTES / MAX_VALUE_BYTES, "{} values of 1 MiB in one list", page.len());
        seen.extend(page.iter().map(|e| e["key"].as_str().unwrap().to_string()));
        after = page[page.len() - 1]["key"].clone();
    }
    assert_eq!(seen, (0..10).map(|i| format!("big/{i}")).collect::<Vec<_>>());
}

#[test]
fn incr_counts() {
    let (_dir, kv) = plugin();
    assert_eq!(ok(&kv, "incr", json!({"key": "n"})), json!(1));
    assert_eq!(ok(&kv, "incr", json!({"key": "n"})), json!(2));
    assert_eq!(ok(&kv, "incr", json!({"key": "n", "by": 10})), json!(12));
    assert_eq!(ok(&kv, "incr", json!({"key": "n", "by": -20})), json!(-8));
    assert_eq!(ok(&kv, "get", json!({"key": "n"})), json!(-8));
    assert!(ok(&kv, "get", json!({"key": "n"})).is_i64());
    assert_eq!(ok(&kv, "incr", json!({"key": "fresh", "by": 5})), json!(5));
    assert_eq!(ok(&kv, "incr", json!({"key": "zero", "by": 0})), json!(0));
    // A value put as an integer can be incremented.
    ok(&kv, "put", json!({"key": "p", "value": 41}));
    assert_eq!(ok(&kv, "incr", json!({"key": "p"})), json!(42));
}

#[test]
fn incr_refuses_what_is_not_an_integer() {
    let (_dir, kv) = plugin();
    for (value, shown) in [
        (json!("7"), "\"7\""),
        (json!(2.5), "2.5"),
        (json!(5.0), "5.0"),
        (json!({"n": 1}), "{\"n\":1}"),
        (json!(true), "true"),
        (json!(u64::MAX), "18446744073709551615"),
    ] {
        ok(&kv, "put", json!({"key": "x", "value": value}));
        let e = err(&kv, "incr", json!({"key": "x"}));
        assert!(e.starts_with("kv incr: the value of \"x\" is "), "{e}");
        assert!(e.contains(&format!("is {shown}, not an integer")), "{e}");
        // Unchanged.
        assert_eq!(ok(&kv, "get", json!({"key": "x"})), value);
    }
    ok(&kv, "put", json!({"key": "big", "value": i64::MAX}));
    let e = err(&kv, "incr", json!({"key": "big"}));
    assert!(e.contains("overflows"), "{e}");
    assert_eq!(ok(&kv, "get", json!({"key": "big"})), json!(i64::MAX));
    assert_eq!(ok(&kv, "incr", json!({"key": "big", "by": -1})), json!(i64::MAX - 1));
}

#[test]
fn bad_payloads_name_the_action_and_the_field() {
    let (_dir, kv) = plugin();
    let cases: &[(&str, Value, &str)] = &[
        ("get", json!("items/1"), "kv get: the payload must be a table like {key = 'items/1'}, got a string"),
        ("list", json!(5), "kv list: the payload must be a table like {prefix = 'items/'}, got a number"),
        ("put", json!([1, 2]), "kv put: the payload must be a table"),
        ("get", json!({}), "kv get: missing 'key'"),
        ("delete", Value::Null, "kv delete: missing 'key'"),
        ("incr", json!({"by": 1}), "kv incr: missing 'key'"),
        ("put", json!({"value": 1}), "kv put: missing 'key'"),
        ("get", json!({"key": 1}), "kv get: 'key' must be a string, got a number"),
        ("put", json!({"key": {"a": 1}, "value": 1}), "kv put: 'key' must be a string, got a table"),
        ("delete", json!({"key": ""}), "kv delete: 'key' is empty"),
        ("get", json!({"key": "a", "prefix": "b"}), "kv get: unknown field 'prefix' (known: key)"),
        ("put", json!({"key": "a", "val": 1}), "kv put: unknown field 'val' (known: key, value)"),
        ("list", json!({"prefx": "a"}), "kv list: unknown field 'prefx' (known: after, limit, prefix)"),
        ("put", json!({"key": "a"}), "kv put: missing 'value'"),
        ("put", json!({"key": "a", "value": null}), "kv put: missing 'value'"),
        ("list", json!({"prefix": 1}), "kv list: 'prefix' must be a string, got a number"),
        ("list", json!({"limit": 0}), "kv list: 'limit' must be an integer from 1 to 1000, got 0"),
        ("list", json!({"limit": 1001}), "kv list: 'limit' must be an integer from 1 to 1000, got 1001"),
        ("list", json!({"limit": -1}), "kv list: 'limit' must be an integer from 1 to 1000, got -1"),
        ("list", json!({"limit": 2.5}), "kv list: 'limit' must be an integer from 1 to 1000, got 2.5"),
        ("list", json!({"limit": "10"}), "kv list: 'limit' must be an integer from 1 to 1000, got \"10\""),
        ("incr", json!({"key": "n", "by": 1.5}), "kv incr: 'by' must be an integer, got 1.5"),
        ("incr", json!({"key": "n", "by": "1"}), "kv incr: 'by' must be an integer, got \"1\""),
        ("incr", json!({"key": "n", "by": u64::MAX}), "kv incr: 'by' must be an integer, got 18446744073709551615"),
    ];
    for (action, payload, expected) in cases {
        let e = err(&kv, action, payload.clone());
        assert!(e.starts_with(expected), "{action} {payload}: {e}\n  expected: {expected}");
    }
    // Nothing was written.
    assert_eq!(ok(&kv, "list", json!({})), json!([]));
}

#[test]
fn size_limits() {
    let (_dir, kv) = plugin();
    let longest = "k".repeat(MAX_KEY_BYTES);
    ok(&kv, "put", json!({"key": longest, "value": 1}));
    assert_eq!(ok(&kv, "get", json!({"key": longest})), json!(1));
    let e = err(&kv, "put", json!({"key": format!("{longest}k"), "value": 1}));
    assert_eq!(e, "kv put: 'key' is 1025 bytes long; at most 1024 are allowed");
    // Bytes, not characters: 342 three-byte characters are 1026 bytes.
    let e = err(&kv, "get", json!({"key": "€".repeat(342)}));
    assert!(e.contains("1026 bytes long"), "{e}");

    // A string value serialises with its two quotes.
    let biggest = "v".repeat(MAX_VALUE_BYTES - 2);
    ok(&kv, "put", json!({"key": "big", "value": biggest}));
    assert_eq!(ok(&kv, "get", json!({"key": "big"})).as_str().unwrap().len(), MAX_VALUE_BYTES - 2);
    let e = err(&kv, "put", json!({"key": "big", "value": format!("{biggest}v")}));
    assert_eq!(e, "kv put: 'value' is 1048577 bytes as JSON; at most 1048576 (1 MiB) are allowed");
    // Refused, so the old value stays.
    assert_eq!(ok(&kv, "get", json!({"key": "big"})).as_str().unwrap().len(), MAX_VALUE_BYTES - 2);
}

#[test]
fn unknown_actions_name_the_known_ones() {
    let (_dir, kv) = plugin();
    assert_eq!(err(&kv, "set", json!({})), "kv: unknown action 'set' (known: put, get, delete, list, incr)");
}

#[test]
fn config_is_checked() {
    assert_eq!(init_err(json!({})), "kv: missing 'path', the SQLite file (path = \"data/kv.db\")");
    assert_eq!(init_err(Value::Null), "kv: missing 'path', the SQLite file (path = \"data/kv.db\")");
    assert_eq!(init_err(json!({"path": ""})), "kv: 'path' is empty; it names the SQLite file");
    assert_eq!(init_err(json!({"path": 5})), "kv: 'path' must be a string, got a number");
    assert_eq!(init_err(json!({"path": "x.db", "pth": 1})), "kv: unknown setting 'pth' (known: path)");
    assert_eq!(init_err(json!(["x"])), "kv: the configuration must be a table, got a list");

    let dir = tempfile::tempdir().unwrap();
    let e = init_err(json!({"path": dir.path().to_str().unwrap()}));
    assert!(e.contains("is a directory"), "{e}");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let e = init_err(json!({"path": junk.to_str().unwrap()}));
    assert!(e.starts_with(&format!("kv: cannot open {}: ", junk.display())), "{e}");
    assert!(e.contains("not a database"), "{e}");
}

#[test]
fn refuses_a_database_of_something_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE actions (name TEXT); CREATE TABLE invocations (id TEXT);").unwrap();
    drop(conn);
    let e = init_err(json!({"path": path.to_str().unwrap()}));
    assert!(e.contains("has the tables actions, invocations"), "{e}");
    assert!(e.contains("give the kv plugin a file of its own"), "{e}");
}

#[test]
fn creates_directories_and_keeps_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/kv.db");
    let kv = open(&path);
    assert_eq!(kv.path(), path);
    ok(&kv, "put", json!({"key": "k", "value": [1, 2, 3]}));
    ok(&kv, "incr", json!({"key": "n", "by": 3}));
    kv.shutdown();
    let e = err(&kv, "get", json!({"key": "k"}));
    assert_eq!(e, "kv get: the plugin has been shut down");
    drop(kv);

    let kv = open(&path);
    assert_eq!(ok(&kv, "get", json!({"key": "k"})), json!([1, 2, 3]));
    assert_eq!(ok(&kv, "incr", json!({"key": "n"})), json!(4));

    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn relative_paths_are_relative_to_the_working_directory() {
    // Only checks the resolution: changing the working directory in a test
    // would race with the other tests.
    let resolved = resolve(Path::new("data/kv.db")).unwrap();
    assert_eq!(resolved, std::env::current_dir().unwrap().join("data/kv.db"));
    assert_eq!(resolve(Path::new("/srv/kv.db")).unwrap(), Path::new("/srv/kv.db"));
}

#[test]
fn a_stored_value_that_is_not_json_is_reported() {
    let (dir, kv) = plugin();
    let conn = rusqlite::Connection::open(dir.path().join("kv.db")).unwrap();
    conn.execute("INSERT INTO kv (key, value) VALUES ('bad', 'not json')", []).unwrap();
    let e = err(&kv, "get", json!({"key": "bad"}));
    assert!(e.starts_with("kv get: the stored value of \"bad\" is not valid JSON"), "{e}");
    let e = err(&kv, "incr", json!({"key": "bad"}));
    assert!(e.starts_with("kv incr: the stored value of \"bad\" is not valid JSON"), "{e}");
    assert_eq!(ok(&kv, "delete", json!({"key": "bad"})), json!(true));
}

#[test]
fn concurrent_incrs_lose_nothing() {
    let (_dir, kv) = plugin();
    let kv = Arc::new(kv);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let kv = Arc::clone(&kv);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    kv.call("incr", json!({"key": "hits"})).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok(&kv, "get", json!({"key": "hits"})), json!(800));
}

#[test]
fn concurrent_incrs_from_two_instances_on_one_file_lose_nothing() {
    // Two plugins on the same file stand for two server processes: each has
    // its own connections, and only SQLite's locking keeps them apart.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let a = Arc::new(open(&path));
    let b = Arc::new(open(&path));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let kv = Arc::clone(if i % 2 == 0 { &a } else { &b });
            std::thread::spawn(move || {
                for j in 0..100 {
                    kv.call("incr", json!({"key": "hits"})).unwrap();
                    // Readers and other writers at the same time.
                    kv.call("put", json!({"key": format!("t{i}/{j}"), "value": j})).unwrap();
                    kv.call("list", json!({"prefix": format!("t{i}/"), "limit": 5})).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok(&a, "get", json!({"key": "hits"})), json!(800));
    assert_eq!(ok(&b, "list", json!({"prefix": "t7/", "limit": 1000})).as_array().unwrap().len(), 100);
}

#[test]
fn more_callers_than_connections_wait_their_turn() {
    let (_dir, kv) = plugin();
    let kv = Arc::new(kv);
    let threads: Vec<_> = (0..4 * store::POOL_SIZE)
        .map(|i| {
            let kv = Arc::clone(&kv);
            std::thread::spawn(move || {
                for j in 0..25 {
                    let key = format!("c{i}/{j}");
                    kv.call("put", json!({"key": key, "value": j})).unwrap();
                    assert_eq!(kv.call("get", json!({"key": key})).unwrap(), json!(j));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok(&kv, "list", json!({"limit": 1000})).as_array().unwrap().len(), 4 * store::POOL_SIZE * 25);
}
