//! The SQLite schema and its migrations, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// `MIGRATIONS[i]` upgrades a database from schema version `i` to `i + 1`.
///
/// Version 0 is an empty database (or one made before versions were
/// recorded: the first step only creates what is missing). Append new steps;
/// never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: actions, invocation records and the queue.
    r#"
    CREATE TABLE IF NOT EXISTS actions (
        name         TEXT PRIMARY KEY NOT NULL,
        version      INTEGER NOT NULL,
        source       TEXT NOT NULL,
        bytecode     BLOB NOT NULL,
        checksum     TEXT NOT NULL,
        maxmem       INTEGER NOT NULL,
        timeout      INTEGER NOT NULL,
        instructions INTEGER NOT NULL,
        created      INTEGER NOT NULL,
        updated      INTEGER NOT NULL
    );

    CREATE TABLE IF NOT EXISTS invocations (
        -- Enqueue order: the queue is claimed in `seq` order. AUTOINCREMENT
        -- never reuses a number, even after the newest rows are purged.
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        id            TEXT NOT NULL UNIQUE,
        action        TEXT NOT NULL,
        version       INTEGER NOT NULL,
        status        TEXT NOT NULL,
        is_async      INTEGER NOT NULL,
        args          TEXT NOT NULL,      -- JSON
        result        TEXT,               -- JSON, NULL when there is none
        error_kind    TEXT,
        error_message TEXT,
        logs          TEXT NOT NULL,
        created       INTEGER NOT NULL,
        started       INTEGER,
        finished      INTEGER,
        duration_ms   INTEGER,
        instructions  INTEGER,
        peak_memory   INTEGER,
        attempts      INTEGER NOT NULL,
        owner         TEXT,
        lease_until   INTEGER
    );

    -- Claiming: runnable rows of one status in enqueue order; also count_queued.
    CREATE INDEX IF NOT EXISTS invocations_claim ON invocations (status, seq);
    -- Listing one action's records, newest first (rowid = seq breaks ties).
    CREATE INDEX IF NOT EXISTS invocations_action ON invocations (action, created);
    -- Listing all records, newest first.
    CREATE INDEX IF NOT EXISTS invocations_created ON invocations (created);
    -- Retention: terminal records finished before a cutoff.
    CREATE INDEX IF NOT EXISTS invocations_purge ON invocations (status, finished);
    "#,
];

/// The schema version this code reads and writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub(crate) enum SchemaError {
    /// The database was written by a newer SL.
    TooNew(i64),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(err)
    }
}

/// The schema version recorded in the database.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies every migration the database lacks, each in its own transaction
/// together with the new version number, so that a crash leaves the database
/// at one version or the next.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    loop {
        let current = version(conn)?;
        if current > VERSION {
            return Err(SchemaError::TooNew(current));
        }
        if current == VERSION {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process opening the same file may have migrated it while
        // this one waited for the write lock: look again.
        if version(&tx)? != current {
            continue;
        }
        let step = MIGRATIONS[current.max(0) as usize];
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", current.max(0) + 1)?;
        tx.commit()?;
    }
}
