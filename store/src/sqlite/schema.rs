//! The SQLite schema and its migrations, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// One step of [`MIGRATIONS`].
enum Step {
    /// SQL run as one batch.
    Sql(&'static str),
    /// Code, for a change that SQL cannot make conditional (adding a
    /// column only if it is missing).
    Code(fn(&Connection) -> rusqlite::Result<()>),
}

/// `MIGRATIONS[i]` upgrades a database from schema version `i` to `i + 1`.
///
/// Every step creates or adds only what is missing, so that it also works
/// on a database that already has some of it: version 0 is an empty
/// database or one made before versions were recorded, whatever its
/// contents. Append new steps; never edit a released one.
const MIGRATIONS: &[Step] = &[
    // 0 -> 1: actions, invocation records and the queue.
    Step::Sql(V1),
    // 1 -> 2: routes, and the caller of an invocation.
    Step::Code(v2),
    // 2 -> 3: the stored size of each invocation record (the store budget).
    Step::Code(v3),
    // 3 -> 4: idempotency keys of asynchronous submits.
    Step::Code(v4),
    // 4 -> 5: the queue depth, kept by triggers.
    Step::Sql(V5),
    // 5 -> 6: the queue depth kept by the store's own statements instead.
    Step::Sql(V6),
    // 6 -> 7: the queue's indexes hold only queued and running records.
    Step::Sql(V7),
    // 7 -> 8: run counters.
    Step::Sql(V8),
    // 8 -> 9: queued and running records leave the retention index; running
    // ones are found by lease.
    Step::Sql(V9),
    // 9 -> 10: records are listed in the order they were stored.
    Step::Sql(V10),
    // 10 -> 11: the records' total size kept in `counters`.
    Step::Sql(V11),
    // 11 -> 12: `seq` without AUTOINCREMENT.
    Step::Sql(V12),
    // 12 -> 13: events: topics, their logs, subscriptions, pending lists
    // and dead letters.
    Step::Sql(V13),
    // 13 -> 14: run counters of subscription batches.
    Step::Code(v14),
    // 14 -> 15: schedules and how far each has fired.
    Step::Sql(V15),
];

/// Schema version 14: `run_counts.event_succeeded` and `event_failed`,
/// the runs of subscriptions' batches.
fn v14(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "run_counts", "event_succeeded", "INTEGER NOT NULL DEFAULT 0")?;
    add_column(conn, "run_counts", "event_failed", "INTEGER NOT NULL DEFAULT 0")
}

/// Schema version 1: actions, invocation records and the queue.
pub(crate) const V1: &str = r#"
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
"#;

/// Routes, keyed by their exact (method, host, path).
const ROUTES: &str = r#"
    CREATE TABLE IF NOT EXISTS routes (
        method  TEXT NOT NULL,
        host    TEXT NOT NULL,
        path    TEXT NOT NULL,
        action  TEXT NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (method, host, path)
    );
"#;

/// Schema version 2: the `routes` table and `invocations.caller`.
fn v2(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(ROUTES)?;
    add_column(conn, "invocations", "caller", "TEXT")
}

/// Schema version 3: `invocations.size`, each record's
/// [`stored_size`](crate::InvocationRecord::stored_size), filled in for the
/// records already there; and the retention index `(status, finished)`
/// extended with it, so that the records' total is read from the index
/// alone and the oldest records to purge for the budget are found in it.
fn v3(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "invocations", "size", "INTEGER NOT NULL DEFAULT 0")?;
    // `length` of a BLOB is its bytes (of a TEXT, its characters).
    let bytes = |column: &str| format!("coalesce(length(CAST({column} AS BLOB)), 0)");
    let variable =
        ["args", "result", "error_kind", "error_message", "logs", "id", "action", "caller"].map(bytes).join(" + ");
    conn.execute_batch(&format!(
        "UPDATE invocations SET size = {} + {variable} WHERE size = 0;
         DROP INDEX IF EXISTS invocations_purge;
         CREATE INDEX IF NOT EXISTS invocations_finished ON invocations (status, finished, size);",
        crate::RECORD_OVERHEAD
    ))
}

/// Schema version 4: `invocations.idem_key` and `idem_fp`, the
/// idempotency key a submit gave and the fingerprint of what it asked for,
/// with a partial unique index so that a key is held by one record at most
/// and costs nothing for records without one.
fn v4(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "invocations", "idem_key", "TEXT")?;
    add_column(conn, "invocations", "idem_fp", "TEXT")?;
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS invocations_idem ON invocations (idem_key) WHERE idem_key IS NOT NULL;",
    )
}

/// Schema version 5: the number of queued invocations in `counters`,
/// kept by triggers in the transaction of every change, so that reading it
/// costs one row however long the queue is (a `count(*)` walks every
/// queued row). A record enters the queue when it is written `queued` and
/// leaves it when its status changes or it is deleted.
const V5: &str = r#"
    CREATE TABLE IF NOT EXISTS counters (
        name  TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    );
    INSERT OR REPLACE INTO counters (name, value)
        VALUES ('queued', (SELECT count(*) FROM invocations WHERE status = 'queued'));
    CREATE TRIGGER IF NOT EXISTS queued_in AFTER INSERT ON invocations WHEN new.status = 'queued'
    BEGIN
        UPDATE counters SET value = value + 1 WHERE name = 'queued';
    END;
    CREATE TRIGGER IF NOT EXISTS queued_out AFTER DELETE ON invocations WHEN old.status = 'queued'
    BEGIN
        UPDATE counters SET value = value - 1 WHERE name = 'queued';
    END;
    CREATE TRIGGER IF NOT EXISTS queued_change AFTER UPDATE OF status ON invocations
        WHEN (old.status = 'queued') <> (new.status = 'queued')
    BEGIN
        UPDATE counters SET value = value + (CASE WHEN new.status = 'queued' THEN 1 ELSE -1 END)
            WHERE name = 'queued';
    END;
"#;

/// Schema version 6: the triggers of version 5 dropped. A row trigger runs
/// a subprogram for every row written, about 7,600 instructions for each
/// record of a blocking run, which cannot be queued; the store now moves
/// the counter itself, in the transaction of each enqueue, claim and write
/// that changes the queue (see `SqliteStore::count_queued`). The counter
/// is counted again from the rows.
const V6: &str = r#"
    DROP TRIGGER IF EXISTS queued_in;
    DROP TRIGGER IF EXISTS queued_out;
    DROP TRIGGER IF EXISTS queued_change;
    INSERT OR REPLACE INTO counters (name, value)
        VALUES ('queued', (SELECT count(*) FROM invocations WHERE status = 'queued'));
"#;

/// Schema version 7: the claim index `(status, seq)` held an entry for
/// every record, though claims read only queued and running ones, and most
/// records are finished (every blocking run's). Two partial indexes on
/// `seq` hold the queued and the running records alone, so a finished
/// record costs one index insert less, and a claim still merges two walks
/// in `seq` order.
const V7: &str = r#"
    CREATE INDEX IF NOT EXISTS invocations_queued ON invocations (seq) WHERE status = 'queued';
    CREATE INDEX IF NOT EXISTS invocations_running ON invocations (seq) WHERE status = 'running';
    DROP INDEX IF EXISTS invocations_claim;
"#;

/// Schema version 8: the run counters of each action, succeeded and
/// failed runs of each kind (see `Store::add_run_counts`).
const V8: &str = r#"
    CREATE TABLE IF NOT EXISTS run_counts (
        action             TEXT PRIMARY KEY NOT NULL,
        blocking_succeeded INTEGER NOT NULL DEFAULT 0,
        blocking_failed    INTEGER NOT NULL DEFAULT 0,
        async_succeeded    INTEGER NOT NULL DEFAULT 0,
        async_failed       INTEGER NOT NULL DEFAULT 0,
        route_succeeded    INTEGER NOT NULL DEFAULT 0,
        route_failed       INTEGER NOT NULL DEFAULT 0,
        invoke_succeeded   INTEGER NOT NULL DEFAULT 0,
        invoke_failed      INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
"#;

/// Schema version 9: two indexes that held records they are never asked
/// for.
///
/// - The retention index `(status, finished, size)` held every record, so
///   a submit inserted into it and the claim and the end of each run moved
///   the entry. Only finished records are purged or counted there: the new
///   one is partial, and a record enters it once, when its run ends.
/// - The running records were indexed by `seq`, so that a claim, looking
///   for those whose lease ended, walked every running record with a live
///   lease (a worker's own submits, claimed at once, are running too): 600,000
///   instructions a claim at 256 of them. Indexed by `lease_until`, a
///   claim reads only the expired ones.
const V9: &str = r#"
    CREATE INDEX IF NOT EXISTS invocations_done ON invocations (status, finished, size)
        WHERE status IN ('succeeded', 'failed');
    CREATE INDEX IF NOT EXISTS invocations_expiring ON invocations (lease_until) WHERE status = 'running';
    DROP INDEX IF EXISTS invocations_finished;
    DROP INDEX IF EXISTS invocations_running;
"#;

/// Schema version 10: records are listed newest first in the order they
/// were stored (`seq`, the rowid) rather than by `created`, so the index on
/// `created` goes: one index fewer to write for every record, and listing
/// all records reads the table from its end. One action's records are
/// indexed by `action` alone (SQLite appends the rowid to every index
/// entry, so they come in `seq` order).
const V10: &str = r#"
    CREATE INDEX IF NOT EXISTS invocations_by_action ON invocations (action);
    DROP INDEX IF EXISTS invocations_action;
    DROP INDEX IF EXISTS invocations_created;
"#;

/// Schema version 11: the records' total size (what the store budget
/// bounds, `Store::invocation_bytes`) in `counters`, moved by the store's
/// own statements in the transaction of every write and delete of a record,
/// so that reading it costs one row: adding up every record's size walked
/// an index entry per record (250 ms at 2,000,000 records), holding the
/// connection every commit waits for. Counted from the rows here, once.
const V11: &str = r#"
    INSERT OR REPLACE INTO counters (name, value)
        VALUES ('bytes', (SELECT coalesce(sum(size), 0) FROM invocations));
"#;

/// Schema version 12: the table rebuilt with `seq` a plain `INTEGER
/// PRIMARY KEY` (the rowid), without `AUTOINCREMENT`. The keyword kept the
/// largest `seq` ever given in `sqlite_sequence`, which every insert read
/// and wrote: one more page in the log for every commit (one in six for a
/// commit of one record). Nothing needs a number never to come back: `seq`
/// orders the records stored, and a new row still gets one more than the
/// largest stored; only after the newest records are deleted may it be
/// given again. The rows keep their numbers; the indexes are made again.
const V12: &str = r#"
    DROP TABLE IF EXISTS invocations_v12;
    CREATE TABLE invocations_v12 (
        -- Enqueue order: the queue is claimed in `seq` order (the rowid).
        seq           INTEGER PRIMARY KEY,
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
        lease_until   INTEGER,
        caller        TEXT,
        size          INTEGER NOT NULL DEFAULT 0,
        idem_key      TEXT,
        idem_fp       TEXT
    );
    INSERT INTO invocations_v12 (seq, id, action, version, status, is_async, args, result, error_kind,
            error_message, logs, created, started, finished, duration_ms, instructions, peak_memory, attempts,
            owner, lease_until, caller, size, idem_key, idem_fp)
        SELECT seq, id, action, version, status, is_async, args, result, error_kind,
            error_message, logs, created, started, finished, duration_ms, instructions, peak_memory, attempts,
            owner, lease_until, caller, size, idem_key, idem_fp
        FROM invocations ORDER BY seq;
    DROP TABLE invocations;
    ALTER TABLE invocations_v12 RENAME TO invocations;
    CREATE UNIQUE INDEX invocations_idem ON invocations (idem_key) WHERE idem_key IS NOT NULL;
    CREATE INDEX invocations_queued ON invocations (seq) WHERE status = 'queued';
    CREATE INDEX invocations_expiring ON invocations (lease_until) WHERE status = 'running';
    CREATE INDEX invocations_done ON invocations (status, finished, size)
        WHERE status IN ('succeeded', 'failed');
    CREATE INDEX invocations_by_action ON invocations (action);
"#;

/// Schema version 13: the tables of [`Events`](crate::Events) (see
/// `sqlite/events.rs` for how the calls use them).
///
/// - `topics`: one row a topic, with an integer `id` that the other tables
///   refer to (shorter than the name in every message and index entry),
///   and the count and total size of its retained messages, kept by every
///   statement that appends or deletes one, so that `get_topic` reads a
///   row instead of adding up the log.
/// - `topic_partitions`: the offset the next message of each partition
///   gets (a partition's first retained offset is the first entry of the
///   primary key of `messages` there).
/// - `messages`: the logs, keyed by (topic, partition, offset). Idempotency
///   keys are unique per topic through a partial index, which costs
///   nothing for messages without one, and a message's key goes with it
///   when retention deletes it. Retention walks `messages_age`, by publish
///   time then rowid, which is the order messages were appended in (a new
///   rowid is above every stored one), so within a partition the lower
///   offset goes first.
/// - `subscriptions`, and `subscription_partitions` with each partition's
///   cursor, lease (`owner`, `lease_until`) and epoch.
/// - `subscription_pending`: pending entries, each with a copy of its
///   message, keyed by (subscription, partition, offset), so a claim reads
///   them in offset order.
/// - `dead_letters`, keyed like pending entries, with their logs as a JSON
///   array; listed by `dead_letters_died`, oldest death first.
const V13: &str = r#"
    CREATE TABLE IF NOT EXISTS topics (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        partitions      INTEGER NOT NULL,
        retention_ms    INTEGER,
        retention_bytes INTEGER,            -- the bits of a u64
        created         INTEGER NOT NULL,
        messages        INTEGER NOT NULL DEFAULT 0,
        bytes           INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE IF NOT EXISTS topic_partitions (
        topic_id INTEGER NOT NULL,
        part     INTEGER NOT NULL,
        next_off INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (topic_id, part)
    ) WITHOUT ROWID;

    CREATE TABLE IF NOT EXISTS messages (
        topic_id  INTEGER NOT NULL,
        part      INTEGER NOT NULL,
        off       INTEGER NOT NULL,
        published INTEGER NOT NULL,
        size      INTEGER NOT NULL,         -- payload and key, in bytes
        msg_key   TEXT,
        payload   TEXT NOT NULL,            -- JSON
        idem_key  TEXT,
        PRIMARY KEY (topic_id, part, off)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS messages_idem ON messages (topic_id, idem_key) WHERE idem_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS messages_age ON messages (topic_id, published);

    CREATE TABLE IF NOT EXISTS subscriptions (
        id             INTEGER PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        topic_id       INTEGER NOT NULL,
        action         TEXT NOT NULL,
        batch_size     INTEGER NOT NULL,
        max_wait_ms    INTEGER NOT NULL,
        max_retries    INTEGER NOT NULL,
        backoff_ms     INTEGER NOT NULL,
        backoff_max_ms INTEGER NOT NULL,
        created        INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic_id);

    CREATE TABLE IF NOT EXISTS subscription_partitions (
        sub_id      INTEGER NOT NULL,
        part        INTEGER NOT NULL,
        cursor      INTEGER NOT NULL,
        owner       TEXT,
        lease_until INTEGER NOT NULL DEFAULT 0,
        epoch       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sub_id, part)
    ) WITHOUT ROWID;

    CREATE TABLE IF NOT EXISTS subscription_pending (
        sub_id     INTEGER NOT NULL,
        part       INTEGER NOT NULL,
        off        INTEGER NOT NULL,
        published  INTEGER NOT NULL,
        msg_key    TEXT,
        payload    TEXT NOT NULL,
        attempts   INTEGER NOT NULL,
        not_before INTEGER NOT NULL,
        last_error TEXT,
        PRIMARY KEY (sub_id, part, off)
    );

    CREATE TABLE IF NOT EXISTS dead_letters (
        sub_id     INTEGER NOT NULL,
        part       INTEGER NOT NULL,
        off        INTEGER NOT NULL,
        published  INTEGER NOT NULL,
        msg_key    TEXT,
        payload    TEXT NOT NULL,
        attempts   INTEGER NOT NULL,
        error      TEXT NOT NULL,
        logs       TEXT NOT NULL,           -- JSON array of strings
        invocation TEXT,
        died       INTEGER NOT NULL,
        PRIMARY KEY (sub_id, part, off)
    );
    CREATE INDEX IF NOT EXISTS dead_letters_died ON dead_letters (sub_id, died);
"#;

/// Schema version 15: `schedules`, one row per schedule (keyed by its
/// name, so listed in byte order of names), with its settings and how far
/// it has fired: `last_fired` (NULL before the first firing, which is how
/// `advance_schedule` compares it, with `IS`), `last_invocation` and
/// `fired`. `jitter_ms` and `fired` hold the bits of a `u64`, as the other
/// tables do.
const V15: &str = r#"
    CREATE TABLE IF NOT EXISTS schedules (
        name            TEXT PRIMARY KEY NOT NULL,
        action          TEXT NOT NULL,
        spec            TEXT NOT NULL,
        time_zone       TEXT NOT NULL,
        args            TEXT NOT NULL,      -- a JSON object, as given
        overlap         TEXT NOT NULL,
        catch_up        TEXT NOT NULL,
        jitter_ms       INTEGER NOT NULL,   -- the bits of a u64
        created         INTEGER NOT NULL,
        last_fired      INTEGER,            -- NULL: never fired
        last_invocation TEXT,
        fired           INTEGER NOT NULL DEFAULT 0  -- the bits of a u64
    );
"#;

/// Adds `column` to `table` unless the table has it already.
pub(crate) fn add_column(conn: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    if has_column(conn, table, column)? {
        return Ok(());
    }
    conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))
}

/// Whether `table` has a column named `column`.
pub(crate) fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |row| row.get::<_, String>(0))?;
    for name in names {
        if name?.eq_ignore_ascii_case(column) {
            return Ok(true);
        }
    }
    Ok(false)
}

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
        match &MIGRATIONS[current.max(0) as usize] {
            Step::Sql(sql) => tx.execute_batch(sql)?,
            Step::Code(step) => step(&tx)?,
        }
        tx.pragma_update(None, "user_version", current.max(0) + 1)?;
        tx.commit()?;
    }
}
