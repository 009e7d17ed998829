//! The conformance suite against every backend in this crate, and what only
//! the SQLite backend has to do (files, reopening, schema versions).

use std::collections::HashSet;
use std::path::Path;

use sl_store::conformance::{Guarded, CASES};
use sl_store::{InvocationRecord, MemoryStore, SqliteStore, Store, StoreError};
use tempfile::TempDir;

mod memory {
    sl_store::conformance_tests!(sl_store::MemoryStore::new());
}

mod sqlite_in_memory {
    sl_store::conformance_tests!(sl_store::SqliteStore::open_in_memory().expect("open in memory"));
}

/// A database file in a fresh temporary directory, removed after the test.
fn sqlite_file() -> Guarded<SqliteStore, TempDir> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("data").join("sl.db")).expect("open database file");
    Guarded { store, guard: dir }
}

mod sqlite_file {
    sl_store::conformance_tests!(super::sqlite_file());
}

#[test]
fn run_all_runs_every_case() {
    sl_store::conformance::run_all(&|| Box::new(MemoryStore::new()));
}

#[test]
fn cases_are_listed_once_each() {
    let names: HashSet<&str> = CASES.iter().map(|(name, _)| *name).collect();
    assert_eq!(names.len(), CASES.len());
    assert!(CASES.len() >= 26, "{} cases", CASES.len());
}

// ---------------------------------------------------------------------------
// SQLite only

fn queued(id: &str, created: i64) -> InvocationRecord {
    InvocationRecord::queued(id.into(), "act".into(), serde_json::json!({ "id": id }), true, created)
}

fn unavailable<T: std::fmt::Debug>(result: sl_store::Result<T>) -> String {
    match result {
        Err(StoreError::Unavailable(msg)) => msg,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn set_user_version(path: &Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

fn action(name: &str) -> sl_store::ActionRecord {
    sl_store::ActionRecord {
        name: name.into(),
        version: 1,
        source: "return 1".into(),
        bytecode: vec![0x1b, b'L', b'u', b'a', 0xff, 0x00],
        checksum: "abc".into(),
        limits: sl_store::Limits { maxmem: 64, timeout: 100, instructions: 1000 },
        created: 1,
        updated: 2,
    }
}

#[test]
fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_action(&action("kept")).unwrap();
    store.put_invocations(&[queued("a", 1), queued("b", 2), queued("c", 3)]).unwrap();
    let claimed = store.claim_invocations("old", 1, 10, 1_000_000).unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_action("kept").unwrap(), Some(action("kept")));
    assert_eq!(store.get_invocation("a").unwrap(), Some(claimed[0].clone()));
    assert_eq!(store.count_queued().unwrap(), 2);
    // The queue keeps its order, and new records go after the old ones.
    store.put_invocations(&[queued("d", 0)]).unwrap();
    assert_eq!(store.release_running().unwrap(), 1);
    let ids: Vec<String> = store.claim_invocations("new", 10, 20, 1000).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
}

#[test]
fn open_creates_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("sl.db");
    SqliteStore::open(&path).unwrap().create_action(&action("x")).unwrap();
    assert!(path.is_file());
}

#[test]
fn opening_a_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let msg = unavailable(SqliteStore::open(dir.path()));
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("directory"), "{msg}");
}

#[test]
fn opening_below_a_regular_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let msg = unavailable(SqliteStore::open(file.join("sl.db")));
    assert!(msg.contains("cannot create directory"), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}

#[test]
fn opening_in_a_read_only_directory_is_unavailable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), "").is_ok() {
        eprintln!("skipped: this user (root?) can write to read-only directories");
        return;
    }
    let path = locked.join("sl.db");
    let msg = unavailable(SqliteStore::open(&path));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    std::fs::write(&path, "this is not an SQLite database, it is a text file that is long enough".repeat(20)).unwrap();
    let msg = match SqliteStore::open(&path) {
        Err(StoreError::Corrupt(msg)) => msg,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert!(msg.contains("not a database") && msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn an_older_schema_version_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_action(&action("old")).unwrap();
    store.put_invocations(&[queued("q", 1)]).unwrap();
    drop(store);
    // A database made before the schema version was recorded.
    set_user_version(&path, 0);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_action("old").unwrap(), Some(action("old")));
    assert_eq!(store.count_queued().unwrap(), 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(version, SqliteStore::SCHEMA_VERSION);
}

#[test]
fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    drop(SqliteStore::open(&path).unwrap());
    set_user_version(&path, SqliteStore::SCHEMA_VERSION + 1);
    let msg = unavailable(SqliteStore::open(&path));
    assert!(msg.contains("newer"), "{msg}");
    assert!(msg.contains(&format!("version {}", SqliteStore::SCHEMA_VERSION + 1)), "{msg}");
}

#[test]
fn two_stores_on_one_file_claim_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let stores = [SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap()];
    let records: Vec<InvocationRecord> = (0..200).map(|i| queued(&format!("r{i:03}"), 1)).collect();
    stores[0].put_invocations(&records).unwrap();
    let taken: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let store = &stores[t % 2];
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_invocations(&format!("w{t}"), 2, 10, 60_000).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|rec| rec.id));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let unique: HashSet<&String> = taken.iter().collect();
    assert_eq!((taken.len(), unique.len()), (200, 200));
    assert_eq!(stores[1].count_queued().unwrap(), 0);
}

#[test]
fn sqlite_commits_survive_the_process_by_default_and_power_loss_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.durability().unwrap(), sl_store::Durability::Process);
    drop(store);
    let store = SqliteStore::open_with(&path, sl_store::Durability::Power).unwrap();
    assert_eq!(store.durability().unwrap(), sl_store::Durability::Power);
    store
        .put_invocations(&[InvocationRecord::queued("d".into(), "a".into(), serde_json::Value::Null, true, 1)])
        .unwrap();
    assert!(store.get_invocation("d").unwrap().is_some());
}
