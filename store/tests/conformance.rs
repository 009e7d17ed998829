//! The conformance suite against every backend in this crate, and what only
//! the SQLite backend has to do (files, reopening, schema versions).

use std::collections::HashSet;
use std::path::Path;

use sl_store::conformance::{Guarded, CASES, EVENTS_CASES, SCHEDULES_CASES};
use sl_store::{InvocationRecord, MemoryStore, SqliteStore, Store, StoreError};
use tempfile::TempDir;

mod memory {
    sl_store::conformance_tests!(sl_store::MemoryStore::new());
    sl_store::events_conformance_tests!(sl_store::MemoryStore::new());
    sl_store::schedules_conformance_tests!(sl_store::MemoryStore::new());
}

mod sqlite_in_memory {
    sl_store::conformance_tests!(sl_store::SqliteStore::open_in_memory().expect("open in memory"));
    sl_store::events_conformance_tests!(sl_store::SqliteStore::open_in_memory().expect("open in memory"));
    sl_store::schedules_conformance_tests!(sl_store::SqliteStore::open_in_memory().expect("open in memory"));
}

/// A database file in a fresh temporary directory, removed after the test.
fn sqlite_file() -> Guarded<SqliteStore, TempDir> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("data").join("sl.db")).expect("open database file");
    Guarded { store, guard: dir }
}

mod sqlite_file {
    sl_store::conformance_tests!(super::sqlite_file());
    sl_store::events_conformance_tests!(super::sqlite_file());
    sl_store::schedules_conformance_tests!(super::sqlite_file());
}

#[test]
fn run_all_runs_every_case() {
    sl_store::conformance::run_all(&|| Box::new(MemoryStore::new()));
}

#[test]
fn run_all_events_runs_every_case() {
    sl_store::conformance::run_all_events(&|| Box::new(MemoryStore::new()));
}

#[test]
fn run_all_schedules_runs_every_case() {
    sl_store::conformance::run_all_schedules(&|| Box::new(MemoryStore::new()));
}

#[test]
fn cases_are_listed_once_each() {
    let names: HashSet<&str> = CASES.iter().map(|(name, _)| *name).collect();
    assert_eq!(names.len(), CASES.len());
    assert!(CASES.len() >= 26, "{} cases", CASES.len());
    let events: HashSet<&str> = EVENTS_CASES.iter().map(|(name, _)| *name).collect();
    assert_eq!(events.len(), EVENTS_CASES.len());
    assert!(events.iter().all(|name| name.starts_with("events_")), "{events:?}");
    assert!(events.is_disjoint(&names));
    assert!(EVENTS_CASES.len() >= 33, "{} events cases", EVENTS_CASES.len());
    let schedules: HashSet<&str> = SCHEDULES_CASES.iter().map(|(name, _)| *name).collect();
    assert_eq!(schedules.len(), SCHEDULES_CASES.len());
    assert!(schedules.iter().all(|name| name.starts_with("schedules_")), "{schedules:?}");
    assert!(schedules.is_disjoint(&names) && schedules.is_disjoint(&events));
    assert!(SCHEDULES_CASES.len() >= 11, "{} schedules cases", SCHEDULES_CASES.len());
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

// ---------------------------------------------------------------------------
// SQLite only: events

fn events_topic(name: &str, partitions: u32) -> sl_store::Topic {
    sl_store::Topic { name: name.into(), partitions, retention_ms: Some(60_000), retention_bytes: None, created: 1 }
}

fn events_subscription(name: &str, topic: &str) -> sl_store::Subscription {
    sl_store::Subscription {
        name: name.into(),
        topic: topic.into(),
        action: "handle".into(),
        batch_size: 10,
        max_wait_ms: 5,
        max_retries: 2,
        backoff_ms: 100,
        backoff_max_ms: 1_000,
        created: 1,
    }
}

fn new_message(topic: &str, partition: u32, payload: String) -> sl_store::NewMessage {
    sl_store::NewMessage { topic: topic.into(), partition, key: None, payload, idempotency_key: None }
}

/// Two stores on one file (two servers): publishers get distinct offsets
/// with no gap, and each partition's lease goes to one claimer, whichever
/// connection it uses.
#[test]
fn two_stores_on_one_file_share_offsets_and_leases() {
    use sl_store::{Events, Position, Published};
    const THREADS: usize = 4;
    const CALLS: usize = 25;
    const PARTITIONS: u32 = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let stores = [SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap()];
    stores[0].create_topic(&events_topic("t", PARTITIONS)).unwrap();
    stores[1].create_subscription(&events_subscription("s", "t"), Position::Beginning).unwrap();
    let results: Vec<(Vec<i64>, Vec<u32>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &stores[t % 2];
                scope.spawn(move || {
                    let mut offsets = Vec::new();
                    let mut claimed = Vec::new();
                    for i in 0..CALLS {
                        let batch = [
                            new_message("t", 0, format!("\"{t}-{i}-a\"")),
                            new_message("t", 0, format!("\"{t}-{i}-b\"")),
                        ];
                        for answer in store.publish(&batch, 10 + i as i64).unwrap() {
                            let Published::New { offset, .. } = answer else { panic!("{answer:?}") };
                            offsets.push(offset);
                        }
                        let p = (i as u32 + t as u32) % PARTITIONS;
                        // A holder claiming again keeps its partition: counted once.
                        let got = store.claim_partition("s", p, &format!("w{t}"), 10, 60_000).unwrap();
                        if got.is_some() && !claimed.contains(&p) {
                            claimed.push(p);
                        }
                    }
                    (offsets, claimed)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut offsets: Vec<i64> = results.iter().flat_map(|(o, _)| o.clone()).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..(2 * THREADS * CALLS) as i64).collect::<Vec<_>>());
    let mut claimed: Vec<u32> = results.iter().flat_map(|(_, c)| c.clone()).collect();
    claimed.sort_unstable();
    assert_eq!(claimed, (0..PARTITIONS).collect::<Vec<_>>(), "each partition claimed once");
    let info = stores[1].get_topic("t").unwrap().unwrap();
    assert_eq!((info.messages, info.partitions[0].next), ((2 * THREADS * CALLS) as u64, (2 * THREADS * CALLS) as i64));
}

/// Topics, logs, subscriptions with their cursors, leases and pending
/// lists, and dead letters survive closing and reopening the file.
#[test]
fn events_survive_close_and_reopen() {
    use sl_store::{DeadLetter, DeliveryCommit, Events, Pending, Position};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_topic(&events_topic("t", 2)).unwrap();
    store.publish(&(0..5).map(|i| new_message("t", 1, format!("{i}"))).collect::<Vec<_>>(), 7).unwrap();
    store.create_subscription(&events_subscription("s", "t"), Position::Beginning).unwrap();
    let state = store.claim_partition("s", 1, "A", 10, 60_000).unwrap().unwrap();
    let log = store.read_messages("t", 1, 0, 10, usize::MAX).unwrap();
    let pending = Pending { message: log[1].clone(), attempts: 1, not_before: 500, last_error: Some("e".into()) };
    let dead = DeadLetter {
        subscription: "s".into(),
        message: log[0].clone(),
        attempts: 3,
        error: "boom".into(),
        logs: vec!["a".into(), "b".into()],
        invocation: Some("inv".into()),
        died: 11,
    };
    store
        .commit_delivery(&DeliveryCommit {
            subscription: "s".into(),
            partition: 1,
            owner: "A".into(),
            epoch: state.epoch,
            now_ms: 11,
            lease_ms: 60_000,
            cursor: 3,
            done: vec![],
            pending: vec![pending.clone()],
            dead: vec![dead.clone()],
        })
        .unwrap();
    let topic = store.get_topic("t").unwrap();
    let sub = store.get_subscription("s", 12).unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_topic("t").unwrap(), topic);
    assert_eq!(store.get_subscription("s", 12).unwrap(), sub);
    assert_eq!(store.read_messages("t", 1, 0, 10, usize::MAX).unwrap(), log);
    assert_eq!(store.list_dead("s", 10).unwrap(), [dead]);
    let again = store.claim_partition("s", 1, "A", 13, 60_000).unwrap().unwrap();
    assert_eq!((again.epoch, again.cursor, again.pending), (state.epoch, 3, vec![pending]));
    assert_eq!(
        store.publish(&[new_message("t", 1, "5".into())], 14).unwrap()[0],
        sl_store::Published::New { partition: 1, offset: 5 }
    );
}
