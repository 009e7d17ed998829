//! Tests that need the connection inside a [`SqliteStore`].

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::{InvocationStatus, Limits, Submit};

fn action(name: &str, bytecode: Vec<u8>) -> ActionRecord {
    ActionRecord {
        name: name.into(),
        version: 1,
        source: "return 1".into(),
        bytecode,
        checksum: "00".into(),
        limits: Limits::default(),
        created: 1,
        updated: 1,
    }
}

fn unavailable<T: fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(StoreError::Unavailable(msg)) => msg,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn pragma_i64(store: &SqliteStore, name: &str) -> i64 {
    store.lock().pragma_query_value(None, name, |row| row.get(0)).unwrap()
}

#[test]
fn a_file_database_is_configured_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("sl.db")).unwrap();
    let mode: String = store.lock().pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(pragma_i64(&store, "synchronous"), 1, "NORMAL");
    assert_eq!(pragma_i64(&store, "foreign_keys"), 1);
    assert_eq!(pragma_i64(&store, "busy_timeout"), 5000);
    assert_eq!(pragma_i64(&store, "user_version"), SqliteStore::SCHEMA_VERSION);
    assert_eq!(pragma_i64(&store, "temp_store"), 2, "MEMORY");
    assert_eq!(pragma_i64(&store, "wal_autocheckpoint"), 0, "the commit hook checkpoints instead");
}

/// The writers' commit hook checkpoints in the commit that takes the log
/// past `WRITER_PAGES`, as `wal_autocheckpoint` would: the file holds the
/// rows when that commit returns, whatever the checkpointer's thread does.
#[test]
fn a_commit_past_the_writer_pages_checkpoints_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let bytes = (checkpoint::WRITER_PAGES as u64 + 1_000) * 4096;
    let n = bytes / 16_000;
    let submits: Vec<Submit> = (0..n)
        .map(|i| Submit {
            record: InvocationRecord::queued(
                format!("big-{i}"),
                "a".into(),
                serde_json::json!({ "text": "y".repeat(16_000) }),
                true,
                1,
            ),
            key: None,
        })
        .collect();
    store.enqueue_invocations(&submits).unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after >= before + bytes * 9 / 10, "{after} bytes in the file after the commit (from {before})");
}

/// Commits only append to the write-ahead log (the writers' connection
/// checkpoints past 10,000 pages); the checkpointer's thread copies the
/// log into the database file within a few of its intervals, and stops
/// when the store is dropped.
#[test]
fn the_checkpointer_copies_the_log_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let text = "x".repeat(1000);
    for round in 0..10 {
        let submits: Vec<Submit> = (0..100)
            .map(|i| Submit {
                record: InvocationRecord::queued(
                    format!("c{round}-{i}"),
                    "a".into(),
                    serde_json::json!({ "text": text }),
                    true,
                    1,
                ),
                key: None,
            })
            .collect();
        store.enqueue_invocations(&submits).unwrap();
    }
    // 1,000 records of 1 KB: some 300 pages, far below the writers' 10,000.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&path).unwrap().len() < before + 1_000_000 {
        assert!(std::time::Instant::now() < deadline, "the log was not copied into the file");
        std::thread::sleep(checkpoint::INTERVAL);
    }
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count_queued().unwrap(), 1000);
}

/// A few writes stay in the log: a checkpoint that copied all of it
/// would make the next commit start the log over, and sync its header
/// there. Past `CHECKPOINT_ROWS` rows the log is copied.
#[test]
fn the_checkpointer_leaves_a_few_writes_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    let file = || std::fs::metadata(&path).unwrap().len();
    let before = file();
    let submit = |id: String| Submit {
        record: InvocationRecord::queued(id, "a".into(), serde_json::json!({ "text": "y".repeat(4000) }), true, 1),
        key: None,
    };
    let few = checkpoint::CHECKPOINT_ROWS as usize / 4;
    for i in 0..few {
        store.enqueue_invocations(&[submit(format!("few-{i}"))]).unwrap();
    }
    std::thread::sleep(checkpoint::INTERVAL * 5);
    assert_eq!(file(), before, "{few} records were copied into the file");
    for i in 0..checkpoint::CHECKPOINT_ROWS {
        store.enqueue_invocations(&[submit(format!("more-{i}"))]).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while file() < before + 4000 * checkpoint::CHECKPOINT_ROWS {
        assert!(std::time::Instant::now() < deadline, "the log was not copied into the file");
        std::thread::sleep(checkpoint::INTERVAL);
    }
}

/// Under writers that never pause, the checkpointer's copies never catch
/// up with the log; once it holds `RESTART_PAGES` the thread (woken by the
/// writers' commit hook) copies it to the end with the writers held, and
/// the next commit starts it over, before the writers' own checkpoint at
/// `WRITER_PAGES` runs: the log never holds that many frames (4,096 bytes
/// and a header of 24 each).
///
/// The thread needs a core for its copies while the writer fills the log
/// as fast as it can (200 MB a second here); with the other tests of this
/// binary running beside it on a 2-core machine it once did not get one in
/// time (the writers' own checkpoint started the log over first), so a run
/// whose only problem is that is made once more, on a fresh store.
#[test]
fn the_checkpointer_starts_the_log_over_under_steady_writes() {
    let mut longest = 0;
    for _ in 0..2 {
        longest = longest_log_before_it_starts_over();
        if longest < checkpoint::WRITER_PAGES as u64 * (4096 + 24) {
            return;
        }
    }
    panic!("the log grew to {longest} bytes before it started over");
}

/// How long the log of a fresh store grew, under a writer that never
/// pauses, before it started over.
fn longest_log_before_it_starts_over() -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let wal = dir.path().join("sl.db-wal");
    // The log's header counts the times it started over (bytes 12..16).
    let restarts = || {
        let bytes = std::fs::read(&wal).unwrap_or_default();
        bytes.get(12..16).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let record = InvocationRecord::queued(
                    format!("r-{i}"),
                    "a".into(),
                    serde_json::json!({ "text": "y".repeat(8000) }),
                    true,
                    1,
                );
                store.enqueue_invocations(&[Submit { record, key: None }]).unwrap();
                i += 1;
            }
        })
    };
    let first = restarts();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut longest = 0;
    while restarts() == first {
        longest = longest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        assert!(std::time::Instant::now() < deadline, "the log never started over");
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    longest
}

#[test]
fn a_write_to_a_read_only_database_is_unavailable() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.lock().pragma_update(None, "query_only", true).unwrap();
    let msg = unavailable(store.create_action(&action("a", vec![1])));
    assert!(msg.starts_with("database is read-only (:memory:)"), "{msg}");
}

#[test]
fn a_full_database_is_unavailable_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let store = SqliteStore::open(&path).unwrap();
    let pages = pragma_i64(&store, "page_count");
    store.lock().pragma_update(None, "max_page_count", pages + 2).unwrap();
    let msg = unavailable(store.create_action(&action("big", vec![7; 1 << 20])));
    assert!(msg.starts_with(&format!("database or disk is full ({})", path.display())), "{msg}");
    // Nothing was half written, and small writes still fit.
    assert_eq!(store.get_action("big").unwrap(), None);
    store.create_action(&action("small", vec![1])).unwrap();
}

#[test]
fn a_lock_held_too_long_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let store = SqliteStore::open(&path).unwrap();
    store.lock().busy_timeout(Duration::from_millis(50)).unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let msg = unavailable(store.create_action(&action("a", vec![1])));
    assert!(msg.contains("locked"), "{msg}");
    let queued = InvocationRecord::queued("q".into(), "a".into(), serde_json::json!({}), true, 1);
    unavailable(store.put_invocations(std::slice::from_ref(&queued)));
    unavailable(store.claim_invocations("me", 1, 1, 1));
    other.execute_batch("COMMIT").unwrap();
    store.put_invocations(&[queued]).unwrap();
    assert_eq!(store.claim_invocations("me", 1, 1, 1).unwrap()[0].status, InvocationStatus::Running);
}

#[test]
fn an_undecodable_row_is_corrupt() {
    let store = SqliteStore::open_in_memory().unwrap();
    let queued = InvocationRecord::queued("q".into(), "a".into(), serde_json::json!({}), true, 1);
    store.put_invocations(&[queued]).unwrap();
    store.lock().execute("UPDATE invocations SET args = 'not json' WHERE id = 'q'", []).unwrap();
    match store.get_invocation("q") {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("'q'") && msg.contains("args"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Any bytes are a source (and the column's TEXT affinity stores a
    // number as text): an action row has no undecodable source.
    store.create_action(&action("a", vec![1])).unwrap();
    store.lock().execute("UPDATE actions SET source = x'ff00'", []).unwrap();
    assert_eq!(store.get_action("a").unwrap().unwrap().source, b"\xff\x00");
    store.lock().execute("UPDATE actions SET version = 'one'", []).unwrap();
    assert!(matches!(store.get_action("a"), Err(StoreError::Corrupt(_))));
}

#[test]
fn sources_are_written_as_blobs_and_text_rows_still_read() {
    let store = SqliteStore::open_in_memory().unwrap();
    let latin1 = ActionRecord { source: b"return 'caf\xe9'".to_vec(), ..action("new", vec![1]) };
    store.create_action(&latin1).unwrap();
    let kind = |name: &str| -> String {
        store.lock().query_row("SELECT typeof(source) FROM actions WHERE name = ?1", [name], |row| row.get(0)).unwrap()
    };
    assert_eq!(kind("new"), "blob");
    assert_eq!(store.get_action("new").unwrap().unwrap().source, b"return 'caf\xe9'");

    // A row as versions that stored the source as TEXT wrote it.
    store
        .lock()
        .execute(
            "INSERT INTO actions (name, version, source, bytecode, checksum, maxmem, timeout, instructions, \
             created, updated) VALUES ('old', 3, 'return \"é ✓\"', x'1b', '00', 0, 0, 0, 1, 2)",
            [],
        )
        .unwrap();
    assert_eq!(kind("old"), "text");
    let old = store.get_action("old").unwrap().unwrap();
    assert_eq!(old.source, "return \"é ✓\"".as_bytes());
    assert_eq!(old.version, 3);

    // Updating an old row writes its new source as a blob.
    let next = ActionRecord { version: 4, source: b"return '\xff\xfe'".to_vec(), ..old };
    store.update_action(&next, 3).unwrap();
    assert_eq!(kind("old"), "blob");
    assert_eq!(store.get_action("old").unwrap(), Some(next));
}

#[test]
fn a_failed_claim_decode_takes_nothing() {
    let store = SqliteStore::open_in_memory().unwrap();
    let queued = InvocationRecord::queued("q".into(), "a".into(), serde_json::json!({}), true, 1);
    store.put_invocations(&[queued]).unwrap();
    store.lock().execute("UPDATE invocations SET result = '{' WHERE id = 'q'", []).unwrap();
    assert!(matches!(store.claim_invocations("me", 1, 1, 1), Err(StoreError::Corrupt(_))));
    let status: String =
        store.lock().query_row("SELECT status FROM invocations WHERE id = 'q'", [], |row| row.get(0)).unwrap();
    assert_eq!(status, "queued");
}

/// The query plan of `sql`, one line per step.
pub(super) fn plan(store: &SqliteStore, sql: &str) -> String {
    let conn = store.lock();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt.query_map([], |row| row.get::<_, String>(3)).unwrap();
    rows.map(|step| step.unwrap()).collect::<Vec<_>>().join("\n")
}

#[test]
fn queries_use_their_indexes() {
    let store = SqliteStore::open_in_memory().unwrap();
    let claim = plan(
        &store,
        &format!(
            "UPDATE invocations SET attempts = attempts + 1 WHERE seq IN (SELECT seq FROM ({}))",
            bound(CLAIMABLE)
        ),
    );
    assert!(claim.contains("MERGE (UNION ALL)"), "{claim}");
    // Each half searches its partial index (which holds its rows alone)
    // and stops at the limit; only those rows are sorted.
    assert!(claim.contains("INDEX invocations_queued"), "{claim}");
    assert!(claim.contains("INDEX invocations_expiring (lease_until<?)"), "{claim}");
    assert!(claim.lines().all(|l| !l.starts_with("SCAN invocations") || l.contains("USING")), "{claim}");
    let by_action = plan(&store, "SELECT * FROM invocations WHERE action = 'a' ORDER BY seq DESC LIMIT 5");
    assert!(by_action.contains("invocations_by_action") && !by_action.contains("TEMP B-TREE"), "{by_action}");
    let all = plan(&store, "SELECT * FROM invocations ORDER BY seq DESC LIMIT 5");
    assert!(all == "SCAN invocations", "the table from its end: {all}");
    let purge = plan(&store, "DELETE FROM invocations WHERE status IN ('succeeded', 'failed') AND finished < 5");
    assert!(purge.contains("invocations_done"), "{purge}");
    // The store budget: the records' total is one row of `counters`, the
    // oldest finished records come by merging two walks of the index.
    let total = plan(&store, "SELECT value FROM counters WHERE name = 'bytes'");
    assert!(total.starts_with("SEARCH counters USING"), "{total}");
    let oldest = plan(&store, OLDEST_FINISHED);
    assert!(oldest.contains("MERGE (UNION ALL)") && oldest.contains("COVERING INDEX invocations_done"), "{oldest}");
    assert!(!oldest.contains("TEMP B-TREE"), "{oldest}");
    let count = plan(&store, "SELECT count(*) FROM invocations WHERE status = 'queued'");
    assert!(!count.contains("SCAN invocations\n") && count.contains("invocations_queued"), "{count}");
}

/// `sql` with its named parameters given values, for a query plan.
fn bound(sql: &str) -> String {
    sql.replace(":limit", "3").replace(":now", "5")
}

/// SQLite VM steps that `f` takes on `store`, counted by the progress
/// handler in steps of 10: the work of its statements, whatever else
/// the machine does.
pub(super) fn vm_steps(store: &SqliteStore, f: impl FnOnce()) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    store.lock().progress_handler(
        10,
        Some(move || {
            c.fetch_add(10, Ordering::Relaxed);
            false
        }),
    );
    f();
    store.lock().progress_handler(0, None::<fn() -> bool>);
    count.load(Ordering::Relaxed)
}

/// The steps of one round of the queue and retention paths on `store`:
/// enqueue 20, count, claim 20, finish them, purge 20 by retention and 20
/// for the budget, read one, list 20.
fn queue_round(store: &SqliteStore, round: u64) -> [u64; 8] {
    let t = 1_000_000_000 + round as i64 * 1000;
    let ids: Vec<String> = (0..20).map(|i| format!("r{round}-{i}")).collect();
    let submits: Vec<Submit> = ids
        .iter()
        .map(|id| Submit {
            record: InvocationRecord::queued(id.clone(), "a".into(), serde_json::json!({"n": 1}), true, t),
            key: None,
        })
        .collect();
    let mut claimed = Vec::new();
    let steps = [
        vm_steps(store, || assert_eq!(store.enqueue_invocations(&submits).unwrap().len(), 20)),
        vm_steps(store, || assert!(store.count_queued().unwrap() >= 20)),
        vm_steps(store, || claimed = store.claim_invocations("w", 20, t + 1, 60_000).unwrap()),
        vm_steps(store, || {
            for rec in &mut claimed {
                rec.status = InvocationStatus::Succeeded;
                rec.finished = Some(t + 2);
            }
            store.put_invocations(&claimed).unwrap();
        }),
        // The 20 oldest: the bulk of the store finished earlier, at 1..
        vm_steps(store, || {
            assert_eq!(store.purge_invocations(21 + round as i64 * 40).unwrap(), 20);
        }),
        vm_steps(store, || {
            assert_eq!(store.purge_oldest_invocations(u64::MAX, 20).unwrap().records, 20);
        }),
        vm_steps(store, || assert!(store.get_invocation(&ids[0]).unwrap().is_some())),
        vm_steps(store, || assert_eq!(store.list_invocations(Some("a"), 20).unwrap().len(), 20)),
    ];
    assert_eq!(claimed.len(), 20);
    steps
}

/// Queue depth, claims, finishing, both purges, reads and listings cost
/// what they take, not what is stored: the same round on a store holding
/// 30,000 finished records, a backlog of 5,000 queued ones and 2,000
/// running under a live lease (a claim looks for expired ones) takes about
/// the steps it takes on one holding 100 finished records, counted in
/// SQLite VM steps (not time, so that a busy machine does not change the
/// figure).
#[test]
fn queue_and_purge_paths_cost_the_same_on_a_large_store() {
    let fill = |store: &SqliteStore, n: usize, backlog: usize, running: usize| {
        let queued: Vec<InvocationRecord> = (0..backlog)
            .map(|i| InvocationRecord::queued(format!("q-{i}"), "b".into(), serde_json::json!({}), true, 1))
            .collect();
        store.put_invocations(&queued).unwrap();
        let leased: Vec<InvocationRecord> = (0..running)
            .map(|i| {
                let mut rec = InvocationRecord::queued(format!("r-{i}"), "b".into(), serde_json::json!({}), true, 1);
                rec.status = InvocationStatus::Running;
                rec.owner = Some("elsewhere".into());
                rec.lease_until = Some(i64::MAX);
                rec
            })
            .collect();
        store.put_invocations(&leased).unwrap();
        let records: Vec<InvocationRecord> = (0..n)
            .map(|i| {
                let mut rec = InvocationRecord::queued(format!("old-{i}"), "b".into(), serde_json::json!({}), true, 1);
                rec.status = InvocationStatus::Succeeded;
                rec.result = Some(serde_json::json!(i));
                rec.finished = Some(1 + i as i64);
                rec
            })
            .collect();
        for batch in records.chunks(1000) {
            store.put_invocations(batch).unwrap();
        }
    };
    let small = SqliteStore::open_in_memory().unwrap();
    fill(&small, 100, 0, 0);
    let large = SqliteStore::open_in_memory().unwrap();
    fill(&large, 30_000, 5_000, 2_000);
    const NAMES: [&str; 8] = ["enqueue", "count_queued", "claim", "finish", "purge", "purge_oldest", "get", "list"];
    for round in 0..2 {
        let (s, l) = (queue_round(&small, round), queue_round(&large, round));
        for (i, name) in NAMES.iter().enumerate() {
            assert!(
                l[i] <= s[i] * 5 / 4 + 50,
                "{name}: {} VM steps with 37,000 records stored, {} with 100",
                l[i],
                s[i]
            );
        }
    }
    assert_eq!(small.count_queued().unwrap(), 0);
    assert_eq!(large.count_queued().unwrap(), 5_000);
}

/// A database file with the version 1 schema (before routes and callers),
/// holding one finished invocation and one action, at user_version `version`.
fn version_1_database(path: &Path, version: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(schema::V1).unwrap();
    conn.execute(
        "INSERT INTO invocations (id, action, version, status, is_async, args, result, logs, created, started, \
         finished, attempts, owner) VALUES ('old', 'a', 1, 'succeeded', 0, '{\"n\":1}', '2', 'hi', 5, 6, 7, 1, 'w')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO actions (name, version, source, bytecode, checksum, maxmem, timeout, instructions, created, \
         updated) VALUES ('a', 1, 'return 1', x'1b', '00', 0, 0, 0, 1, 1)",
        [],
    )
    .unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
    assert!(!schema::has_column(&conn, "invocations", "caller").unwrap());
}

/// The record [`version_1_database`] holds, as this version reads it.
fn old_record() -> InvocationRecord {
    let mut rec = InvocationRecord::queued("old".into(), "a".into(), serde_json::json!({"n": 1}), false, 5);
    rec.version = 1;
    rec.status = InvocationStatus::Succeeded;
    rec.result = Some(serde_json::json!(2));
    rec.logs = "hi".into();
    rec.started = Some(6);
    rec.finished = Some(7);
    rec.attempts = 1;
    rec.owner = Some("w".into());
    rec
}

#[test]
fn a_database_without_routes_and_callers_is_migrated_on_open() {
    // Version 1, and the same tables from before versions were recorded.
    for version in [1, 0] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        version_1_database(&path, version);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(pragma_i64(&store, "user_version"), SqliteStore::SCHEMA_VERSION);
        assert!(schema::has_column(&store.lock(), "invocations", "caller").unwrap());
        assert_eq!(store.get_invocation("old").unwrap(), Some(old_record()), "an old row has no caller");
        assert_eq!(store.list_invocations(None, 10).unwrap(), vec![old_record()]);
        assert!(store.get_action("a").unwrap().is_some());
        // The old record's size was filled in: it counts towards the budget
        // and goes first when the budget is over.
        assert_eq!(store.invocation_bytes().unwrap(), old_record().stored_size());

        let child = InvocationRecord {
            caller: Some("old".into()),
            ..InvocationRecord::queued("child".into(), "a".into(), serde_json::json!({}), true, 9)
        };
        store.put_invocations(std::slice::from_ref(&child)).unwrap();
        assert_eq!(store.get_invocation("child").unwrap(), Some(child.clone()));
        let claimed = store.claim_invocations("me", 5, 10, 100).unwrap();
        assert_eq!(claimed.iter().map(|rec| rec.caller.as_deref()).collect::<Vec<_>>(), [Some("old")]);

        let route =
            RouteRecord { method: "GET".into(), host: String::new(), path: "/".into(), action: "a".into(), created: 1 };
        store.create_route(&route).unwrap();

        // `seq` is the rowid, without AUTOINCREMENT (version 12): nothing
        // moves `sqlite_sequence`, and the old row kept its place first.
        {
            let conn = store.lock();
            let sql: String = conn
                .query_row("SELECT sql FROM sqlite_master WHERE name = 'invocations'", [], |row| row.get(0))
                .unwrap();
            assert!(!sql.to_uppercase().contains("AUTOINCREMENT"), "{sql}");
            let counted: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'invocations%'", [], |row| row.get(0))
                .unwrap();
            assert_eq!(counted, 0);
            let order: Vec<String> = conn
                .prepare("SELECT id FROM invocations ORDER BY seq")
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(order, ["old", "child"]);
        }
        drop(store);

        // Opening it again changes nothing.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get_invocation("old").unwrap(), Some(old_record()));
        assert_eq!(store.get_invocation("child").unwrap().and_then(|rec| rec.caller).as_deref(), Some("old"));
        assert_eq!(store.list_routes().unwrap(), vec![route]);
        assert_eq!(store.invocation_bytes().unwrap(), old_record().stored_size() + child.stored_size());
        let purged = store.purge_oldest_invocations(1, 10).unwrap();
        assert_eq!(purged, Purged { records: 1, bytes: old_record().stored_size() });
        assert_eq!(store.get_invocation("old").unwrap(), None);
    }
}

#[test]
fn the_caller_column_is_added_only_once() {
    let store = SqliteStore::open_in_memory().unwrap();
    let conn = store.lock();
    let columns = |conn: &Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM pragma_table_info('invocations')", [], |row| row.get(0)).unwrap()
    };
    let before = columns(&conn);
    schema::add_column(&conn, "invocations", "caller", "TEXT").unwrap();
    assert_eq!(columns(&conn), before);
    assert!(!schema::has_column(&conn, "invocations", "nope").unwrap());
}

/// A database from before the queue counter (schema version 4) gets one
/// that counts the records queued in it already, and no triggers (version
/// 5 made them, version 6 drops them).
#[test]
fn the_queue_counter_starts_from_the_records_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    let records: Vec<InvocationRecord> =
        (0..3).map(|i| InvocationRecord::queued(format!("q{i}"), "a".into(), serde_json::json!({}), true, 1)).collect();
    store.put_invocations(&records).unwrap();
    store.lock().execute_batch("DROP TABLE counters; PRAGMA user_version = 4;").unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SqliteStore::SCHEMA_VERSION);
    assert_eq!(store.count_queued().unwrap(), 3);
    let triggers: i64 =
        store.lock().query_row("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", [], |r| r.get(0)).unwrap();
    assert_eq!(triggers, 0);
    store.claim_invocations("w", 2, 2, 1000).unwrap();
    assert_eq!(store.count_queued().unwrap(), 1);
}

/// A run of unkeyed submits goes in by statements of many rows that leave
/// out a row whose id is stored (a retry). A row left out for any other
/// reason (here a trigger drops it) fails the whole call, which writes
/// nothing, rather than answer for a record that is not there.
#[test]
fn an_unkeyed_row_left_out_but_not_stored_fails_the_enqueue() {
    let store = SqliteStore::open_in_memory().unwrap();
    let submit = |id: &str| Submit {
        record: InvocationRecord::queued(id.into(), "a".into(), serde_json::json!({}), true, 1),
        key: None,
    };
    let first: Vec<Submit> = (0..5).map(|i| submit(&format!("s{i}"))).collect();
    store.enqueue_invocations(&first).unwrap();
    // A retry with new ones: the stored are left out, the queue counted once.
    let mut again: Vec<Submit> = (3..40).map(|i| submit(&format!("s{i}"))).collect();
    assert_eq!(store.enqueue_invocations(&again).unwrap().len(), 37);
    assert_eq!(store.count_queued().unwrap(), 40);
    store
        .lock()
        .execute_batch(
            "CREATE TEMP TRIGGER drop_lost BEFORE INSERT ON invocations WHEN new.id = 'lost' \
             BEGIN SELECT RAISE(IGNORE); END;",
        )
        .unwrap();
    again = (40..50).map(|i| submit(&format!("s{i}"))).chain([submit("lost")]).collect();
    let err = store.enqueue_invocations(&again).unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("'lost' could not be stored")), "{err:?}");
    assert_eq!(store.get_invocation("s40").unwrap(), None, "rolled back");
    assert_eq!(store.count_queued().unwrap(), 40);
}

/// The records' total as the rows hold it, to check the kept one against.
fn bytes_in_rows(store: &SqliteStore) -> u64 {
    store.lock().query_row("SELECT coalesce(sum(size), 0) FROM invocations", [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

/// The records' total is kept by the writes, and stays what the rows add
/// up to through every way a record is written or deleted: submits (with
/// a retry whose stored rows are left out, and keyed ones), records put
/// and put again, claims, and both purges. A database from before the
/// kept total (schema version 10) starts it from its rows.
#[test]
fn the_records_total_is_kept_by_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sl.db");
    let store = SqliteStore::open(&path).unwrap();
    let rec = |id: String, text: usize| {
        InvocationRecord::queued(id, "a".into(), serde_json::json!({ "t": "x".repeat(text) }), true, 1)
    };
    let submit = |id: String, key: Option<&str>| Submit {
        record: rec(id, 10),
        key: key.map(|k| crate::IdempotencyKey { key: k.into(), fingerprint: "f".into() }),
    };
    let check = |store: &SqliteStore, what: &str| {
        assert_eq!(store.invocation_bytes().unwrap(), bytes_in_rows(store), "after {what}");
    };
    store.enqueue_invocations(&(0..5).map(|i| submit(format!("s{i}"), None)).collect::<Vec<_>>()).unwrap();
    check(&store, "submits");
    store.enqueue_invocations(&(3..9).map(|i| submit(format!("s{i}"), None)).collect::<Vec<_>>()).unwrap();
    check(&store, "a retry");
    store.enqueue_invocations(&[submit("k1".into(), Some("key")), submit("k2".into(), Some("key"))]).unwrap();
    check(&store, "keyed submits");
    let mut done: Vec<InvocationRecord> = (0..4).map(|i| rec(format!("d{i}"), 100)).collect();
    for (i, r) in done.iter_mut().enumerate() {
        r.status = InvocationStatus::Succeeded;
        r.finished = Some(10 + i as i64);
        r.result = Some(serde_json::json!("r"));
    }
    store.put_invocations(&done).unwrap();
    check(&store, "finished records");
    store.claim_invocations("w", 3, 5, 1000).unwrap();
    check(&store, "a claim");
    let mut ended = store.get_invocation("s0").unwrap().unwrap();
    ended.status = InvocationStatus::Succeeded;
    ended.finished = Some(20);
    ended.result = Some(serde_json::json!("a longer result than before"));
    ended.logs = "some logs".into();
    store.put_invocations(&[ended]).unwrap();
    check(&store, "a run's end");
    done[0].logs = "put again, longer".into();
    store.put_invocations(&done[..1]).unwrap();
    check(&store, "a record put again");
    assert_eq!(store.purge_invocations(12).unwrap(), 2);
    check(&store, "the retention purge");
    let purged = store.purge_oldest_invocations(1, 1).unwrap();
    assert_eq!(purged.records, 1);
    check(&store, "the budget's purge");
    let total = store.invocation_bytes().unwrap();
    assert!(total > 0);
    // Version 10 had no kept total: it is counted from the rows on open.
    store.lock().execute_batch("DELETE FROM counters WHERE name = 'bytes'; PRAGMA user_version = 10;").unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma_i64(&store, "user_version"), SqliteStore::SCHEMA_VERSION);
    assert_eq!(store.invocation_bytes().unwrap(), total);
}
