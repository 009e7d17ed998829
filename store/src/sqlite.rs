//! The embedded SQLite backend (the default): one database file in WAL mode.

mod checkpoint;
mod error;
mod events;
mod row;
mod schedules;
mod schema;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{named_params, params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use crate::{
    ActionMeta, ActionRecord, Enqueued, InvocationRecord, InvocationStatus, Purged, Result, RouteRecord, RunCounts,
    Store, StoreError, Submit,
};
use row::{Invocation, ACTION_COLUMNS, ACTION_META_COLUMNS, INVOCATION_COLUMNS, ROUTE_COLUMNS};

/// How long a call waits for another connection's write lock before it
/// fails with [`StoreError::Unavailable`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (the store uses about 30, its
/// events about 60 more, and its schedules 5).
const STATEMENT_CACHE: usize = 112;

/// A [`Store`], [`Events`](crate::Events) and
/// [`Schedules`](crate::Schedules) backend in one SQLite database.
///
/// One connection behind a mutex: the server calls the store from a small
/// pool of threads, and SQLite serialises writers anyway. Several processes
/// (or several `SqliteStore`s) may open the same file; claims stay exclusive
/// because each one runs in an `IMMEDIATE` transaction.
pub struct SqliteStore {
    /// Shared with the checkpointer, which holds it for the last copy of
    /// the log before the log starts over.
    conn: Arc<Mutex<Writer>>,
    /// Rows changed through `conn`, for the checkpointer.
    changes: Arc<checkpoint::Changes>,
    /// The path as given, or `:memory:`, for error messages.
    label: String,
    /// Copies the write-ahead log into the file, off the writers' path (a
    /// file database only); stopped when the store is dropped.
    _checkpointer: Option<checkpoint::Checkpointer>,
}

/// The store's connection, and how many rows it had changed when they
/// were last added to the store's [`Changes`](checkpoint::Changes).
struct Writer {
    conn: Connection,
    counted: u64,
    /// The argument of `conn`'s commit hook (a file database's): dropped
    /// after `conn`.
    _hooked: Option<Arc<checkpoint::Changes>>,
}

/// The connection, locked; unlocking it adds the rows it changed meanwhile
/// to the store's count, for the checkpointer.
struct Locked<'a> {
    writer: MutexGuard<'a, Writer>,
    changes: &'a checkpoint::Changes,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.writer.conn
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.writer.conn
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let total = self.writer.conn.total_changes();
        let new = total.wrapping_sub(self.writer.counted);
        if new != 0 {
            self.changes.add(new);
            self.writer.counted = total;
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.label).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The schema version this build reads and writes (`PRAGMA user_version`).
    ///
    /// Opening a database with a lower version upgrades it; opening one with
    /// a higher version (written by a newer SL) fails.
    pub const SCHEMA_VERSION: i64 = schema::VERSION;

    /// Opens the database at `path`, creating it and its parent directories
    /// if needed, and brings its schema up to date.
    ///
    /// The database runs in WAL mode with `synchronous = NORMAL`: a commit
    /// survives a crash of the process, and a power loss can lose only the
    /// last commits, never corrupt the file. See [`SqliteStore::open_with`]
    /// for commits that survive a power loss.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Durability::Process)
    }

    /// [`SqliteStore::open`] with the durability of a commit chosen:
    /// [`Durability::Power`] syncs the write-ahead log to disk at every
    /// commit (`synchronous = FULL`), so that a commit survives a power
    /// loss or an operating-system crash too; commits that arrive together
    /// still share one sync (the server commits writes in groups).
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self> {
        let path = path.as_ref();
        let label = path.display().to_string();
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| {
                StoreError::Unavailable(format!("cannot create directory {} for {label}: {err}", parent.display()))
            })?;
        }
        if path.is_dir() {
            // SQLite would say only "unable to open database file".
            return Err(StoreError::Unavailable(format!("unable to open database file ({label}): it is a directory")));
        }
        let conn = Connection::open(path).map_err(|err| error::map(&label, err))?;
        Self::setup(conn, label, Some(path), durability)
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let label = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|err| error::map(&label, err))?;
        Self::setup(conn, label, None, Durability::Process)
    }

    /// Configures `conn` (of the file at `file`, or in memory), brings its
    /// schema up to date, and starts the checkpointer of a file.
    fn setup(mut conn: Connection, label: String, file: Option<&Path>, durability: Durability) -> Result<Self> {
        let sql = |err| error::map(&label, err);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Plans that do not depend on the values bound to them. Without
        // this, a statement whose plan looked at a bound value (a partial
        // index's condition, a range against the statistics) is compiled
        // again every time that value changes: each claim recompiled both
        // its statements, 260,000 instructions apiece.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(sql)?;
        if file.is_some() {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(sql)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Unavailable(format!(
                    "cannot use write-ahead logging ({label}): journal mode is {mode}"
                )));
            }
        }
        let synchronous = match durability {
            Durability::Process => "NORMAL",
            Durability::Power => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous).map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(sql)?;
        schema::migrate(&mut conn).map_err(|err| match err {
            schema::SchemaError::TooNew(found) => StoreError::Unavailable(format!(
                "database schema version {found} is newer than this build supports ({}); \
                 it was written by a newer SL ({label})",
                schema::VERSION
            )),
            schema::SchemaError::Sqlite(err) => error::map(&label, err),
        })?;
        // Temporary tables and statement journals in memory: the journal
        // of a statement that writes many rows (at most a batch) went to a
        // temporary file past 64 KiB, created, unlinked and closed each
        // time. Set after the migrations, whose index builds may sort
        // every record and so spill to files as they did.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(sql)?;
        let changes = Arc::new(checkpoint::Changes::default());
        let hooked = file.is_some().then(|| {
            // SAFETY: the clone returned is kept in `Writer` beside `conn`,
            // declared after it, so it is dropped after the connection.
            unsafe { checkpoint::install_commit_hook(&conn, &changes) };
            Arc::clone(&changes)
        });
        let counted = conn.total_changes();
        let conn = Arc::new(Mutex::new(Writer { conn, counted, _hooked: hooked }));
        let checkpointer = match file {
            Some(path) => {
                // The writers are held by taking their connection: a commit
                // under way ends first, the next one waits.
                let writers = Arc::clone(&conn);
                let hold: checkpoint::HoldWriters = Box::new(move |copy| {
                    let _held = writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    copy()
                });
                Some(checkpoint::Checkpointer::start(path, synchronous, &label, Arc::clone(&changes), hold)?)
            }
            None => None,
        };
        Ok(Self { conn, changes, label, _checkpointer: checkpointer })
    }

    /// Fails unless every record of `submits` is stored (in `conn`'s
    /// transaction): after an `INSERT OR IGNORE` that left rows out, which
    /// must have been stored already.
    fn all_stored(&self, conn: &Connection, submits: &[Submit]) -> Result<()> {
        let mut exists = conn.prepare_cached("SELECT 1 FROM invocations WHERE id = ?1").map_err(|e| self.err(e))?;
        for s in submits {
            if !exists.exists([&s.record.id]).map_err(|e| self.err(e))? {
                return Err(StoreError::Unavailable(format!(
                    "invocation '{}' could not be stored ({})",
                    s.record.id, self.label
                )));
            }
        }
        Ok(())
    }

    /// What survives a commit, as the connection is set (read back from
    /// SQLite's `synchronous` pragma).
    pub fn durability(&self) -> Result<Durability> {
        let level: i64 =
            self.lock().pragma_query_value(None, "synchronous", |row| row.get(0)).map_err(|e| self.err(e))?;
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
        Ok(if level >= 2 { Durability::Power } else { Durability::Process })
    }

    fn lock(&self) -> Locked<'_> {
        // A panic while the lock was held dropped its transaction, which
        // rolled back: the connection is fine to use again.
        let writer = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Locked { writer, changes: &self.changes }
    }

    fn err(&self, err: rusqlite::Error) -> StoreError {
        error::map(&self.label, err)
    }
}

/// What a commit survives once it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash or `kill -9` of the process (WAL, `synchronous = NORMAL`);
    /// a power loss may lose the last commits, never corrupt the file.
    #[default]
    Process,
    /// A power loss or an operating-system crash too (`synchronous = FULL`:
    /// a sync of the log per commit).
    Power,
}

/// What a claim of up to `:limit` records at `:now` takes, as
/// `seq, status`, in `seq` order: the first queued records, and the
/// running ones whose lease ended first. Each walk reads its own partial
/// index (`invocations_queued` in `seq` order, `invocations_expiring` in
/// lease order) and stops after `:limit` rows, so a claim reads about what
/// it takes, however many records are stored or run under a live lease.
pub(crate) const CLAIMABLE: &str = "\
    SELECT seq, status FROM (SELECT seq, status FROM invocations INDEXED BY invocations_queued \
        WHERE status = 'queued' ORDER BY seq LIMIT :limit) \
    UNION ALL \
    SELECT seq, status FROM (SELECT seq, status FROM invocations INDEXED BY invocations_expiring \
        WHERE status = 'running' AND lease_until < :now ORDER BY lease_until LIMIT :limit) \
    ORDER BY seq LIMIT :limit";

/// The finished records, oldest first, as `seq, size, finished`: two walks
/// of the retention index (`invocations_done`, which holds each record's
/// `size`), one per terminal status, merged by `finished`. The index is
/// partial, so each half names its condition too, for SQLite to use it.
pub(crate) const OLDEST_FINISHED: &str = "\
    SELECT seq, size, finished FROM invocations INDEXED BY invocations_done \
        WHERE status IN ('succeeded', 'failed') AND status = 'succeeded' \
    UNION ALL \
    SELECT seq, size, finished FROM invocations INDEXED BY invocations_done \
        WHERE status IN ('succeeded', 'failed') AND status = 'failed' \
    ORDER BY finished";

/// Rows one `INSERT` of unkeyed submits holds at most. A statement per
/// row opened a cursor on the table and each of its indexes, closed them,
/// and (before schema version 12) moved the `AUTOINCREMENT` counter, for
/// every record (some 6,000 instructions of 34,000); one statement of many
/// rows does that once. A
/// run of unkeyed submits goes in statements of 32, 16, ... 1 rows, so six
/// statement texts serve every run (see [`unkeyed_insert`]).
const INSERT_ROWS: usize = 32;

/// How many of `left` rows the next statement of a run inserts: the
/// largest power of two up to `left` and [`INSERT_ROWS`].
fn insert_rows(left: usize) -> usize {
    let n = left.min(INSERT_ROWS);
    1 << n.ilog2()
}

/// The `INSERT` of `rows` unkeyed records (a power of two up to
/// [`INSERT_ROWS`]): each row's columns and `size`, in that order. A row
/// whose id is stored already is left out. `OR IGNORE` rather than `ON
/// CONFLICT DO NOTHING`: a `NOT NULL` column could then still abort the
/// statement halfway, so SQLite kept a statement journal of every page it
/// wrote (2,300 instructions a record); `OR IGNORE` leaves out such a row
/// too, which the caller checks (`all_stored`), though a record has no
/// null where a column needs a value.
fn unkeyed_insert(rows: usize) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        let row = format!("({}?)", "?, ".repeat(row::INVOCATION_COLUMN_COUNT));
        (0..=INSERT_ROWS.ilog2())
            .map(|k| {
                let values = vec![row.as_str(); 1 << k].join(", ");
                format!("INSERT OR IGNORE INTO invocations ({INVOCATION_COLUMNS}, size) VALUES {values}")
            })
            .collect()
    });
    &texts[rows.ilog2() as usize]
}

/// The counter of queued records in `counters` (see
/// [`SqliteStore::count_queued`]).
const QUEUED: &str = "queued";

/// The counter of the records' total size in `counters` (see
/// [`SqliteStore::invocation_bytes`]).
const BYTES: &str = "bytes";

/// Counts the queue depth and the records' total again from the rows, in
/// the caller's transaction: after an insert that left out a row it was
/// counting on.
fn recount_counters(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE counters SET value = CASE name \
             WHEN 'queued' THEN (SELECT count(*) FROM invocations WHERE status = 'queued') \
             ELSE (SELECT coalesce(sum(size), 0) FROM invocations) END \
         WHERE name IN ('queued', 'bytes')",
    )?
    .execute([])?;
    Ok(())
}

/// Moves `counter` ([`QUEUED`] or [`BYTES`]) by `delta`, in the caller's
/// transaction.
fn add_to(conn: &Connection, counter: &str, delta: i64) -> rusqlite::Result<()> {
    if delta != 0 {
        conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?.execute((counter, delta))?;
    }
    Ok(())
}

/// `usize` limits as SQLite's `LIMIT` (where -1 would mean none).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn create_action(&self, action: &ActionRecord) -> Result<()> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "INSERT INTO actions ({ACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))
            .map_err(|e| self.err(e))?;
        match stmt.execute(params_from_iter(row::action_values(action))) {
            Ok(_) => Ok(()),
            Err(err) if error::is_unique_violation(&err) => Err(StoreError::AlreadyExists(action.name.clone())),
            Err(err) => Err(self.err(err)),
        }
    }

    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let found: Option<i64> = tx
            .prepare_cached("SELECT version FROM actions WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([&action.name], |row| row.get(0)).optional())
            .map_err(|e| self.err(e))?;
        match found {
            None => return Err(StoreError::NotFound(action.name.clone())),
            Some(found) if found != expected_version => {
                return Err(StoreError::Conflict { name: action.name.clone(), expected: expected_version, found })
            }
            Some(_) => {}
        }
        tx.prepare_cached(
            "UPDATE actions SET version = ?2, source = ?3, bytecode = ?4, checksum = ?5, maxmem = ?6, \
             timeout = ?7, instructions = ?8, created = ?9, updated = ?10 WHERE name = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params_from_iter(row::action_values(action))))
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>> {
        let conn = self.lock();
        conn.prepare_cached(&format!("SELECT {ACTION_COLUMNS} FROM actions WHERE name = ?1"))
            .and_then(|mut stmt| stmt.query_row([name], row::action).optional())
            .map_err(|e| self.err(e))
    }

    fn list_actions(&self) -> Result<Vec<ActionMeta>> {
        let conn = self.lock();
        conn.prepare_cached(&format!("SELECT {ACTION_META_COLUMNS} FROM actions ORDER BY name"))
            .and_then(|mut stmt| stmt.query_map([], row::action_meta)?.collect())
            .map_err(|e| self.err(e))
    }

    fn delete_action(&self, name: &str) -> Result<bool> {
        let conn = self.lock();
        conn.prepare_cached("DELETE FROM actions WHERE name = ?1")
            .and_then(|mut stmt| stmt.execute([name]))
            .map(|deleted| deleted > 0)
            .map_err(|e| self.err(e))
    }

    fn create_route(&self, route: &RouteRecord) -> Result<()> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!("INSERT INTO routes ({ROUTE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"))
            .map_err(|e| self.err(e))?;
        match stmt.execute(params_from_iter(row::route_values(route))) {
            Ok(_) => Ok(()),
            Err(err) if error::is_unique_violation(&err) => Err(StoreError::AlreadyExists(route.label())),
            Err(err) => Err(self.err(err)),
        }
    }

    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool> {
        let conn = self.lock();
        conn.prepare_cached("DELETE FROM routes WHERE method = ?1 AND host = ?2 AND path = ?3")
            .and_then(|mut stmt| stmt.execute([method, host, path]))
            .map(|deleted| deleted > 0)
            .map_err(|e| self.err(e))
    }

    fn list_routes(&self) -> Result<Vec<RouteRecord>> {
        let conn = self.lock();
        conn.prepare_cached(&format!("SELECT {ROUTE_COLUMNS} FROM routes ORDER BY host, path, method"))
            .and_then(|mut stmt| stmt.query_map([], row::route)?.collect())
            .map_err(|e| self.err(e))
    }

    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // Encode everything before taking the lock.
        let rows = records.iter().map(Invocation::values_and_size).collect::<Result<Vec<_>>>()?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        {
            // An existing row keeps its `seq`, hence its place in the queue.
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO invocations ({INVOCATION_COLUMNS}, size) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
                     ?21) \
                     ON CONFLICT (id) DO UPDATE SET action = excluded.action, version = excluded.version, \
                     status = excluded.status, is_async = excluded.is_async, args = excluded.args, \
                     result = excluded.result, error_kind = excluded.error_kind, \
                     error_message = excluded.error_message, logs = excluded.logs, created = excluded.created, \
                     started = excluded.started, finished = excluded.finished, \
                     duration_ms = excluded.duration_ms, instructions = excluded.instructions, \
                     peak_memory = excluded.peak_memory, attempts = excluded.attempts, owner = excluded.owner, \
                     lease_until = excluded.lease_until, caller = excluded.caller, size = excluded.size"
                ))
                .map_err(|e| self.err(e))?;
            // The queue depth moves by the records that enter or leave
            // `queued`, and the records' total by the sizes written less
            // those replaced: what each record replaces is looked up.
            let mut replaced = tx
                .prepare_cached("SELECT status = 'queued', size FROM invocations WHERE id = ?1")
                .map_err(|e| self.err(e))?;
            // The usual write of an asynchronous record: the end of a run
            // (or a claim) of a stored record that is not queued, whose
            // id, action, arguments, creation and caller stay as they
            // were. Only what a run changes is set, so the indexes on
            // what it does not change (id, action and creation) are left
            // alone; any other case takes the upsert.
            let mut run_ended = tx
                .prepare_cached(
                    "UPDATE invocations SET version = ?3, status = ?4, result = ?7, error_kind = ?8, \
                     error_message = ?9, logs = ?10, started = ?12, finished = ?13, duration_ms = ?14, \
                     instructions = ?15, peak_memory = ?16, attempts = ?17, owner = ?18, lease_until = ?19, \
                     size = ?21 \
                     WHERE id = ?1 AND status <> 'queued' AND action = ?2 AND is_async = ?5 AND args = ?6 \
                     AND created = ?11 AND caller IS ?20",
                )
                .map_err(|e| self.err(e))?;
            let (mut queued, mut bytes) = (0i64, 0i64);
            for (rec, (values, size)) in records.iter().zip(rows) {
                let old: Option<(bool, i64)> = replaced
                    .query_row([&rec.id], |row| Ok((row.get(0)?, row.get::<_, Option<i64>>(1)?.unwrap_or(0))))
                    .optional()
                    .map_err(|e| self.err(e))?;
                queued += i64::from(rec.status == InvocationStatus::Queued) - i64::from(old.is_some_and(|o| o.0));
                bytes += size as i64 - old.map_or(0, |o| o.1);
                let params = values.into_iter().chain([ToSqlOutput::Owned(Value::Integer(size as i64))]);
                if rec.is_async && old.is_some_and(|o| !o.0) {
                    let params: Vec<ToSqlOutput<'_>> = params.collect();
                    if run_ended.execute(params_from_iter(&params)).map_err(|e| self.err(e))? == 0 {
                        stmt.execute(params_from_iter(params)).map_err(|e| self.err(e))?;
                    }
                } else {
                    stmt.execute(params_from_iter(params)).map_err(|e| self.err(e))?;
                }
            }
            add_to(&tx, QUEUED, queued).map_err(|e| self.err(e))?;
            add_to(&tx, BYTES, bytes).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// One `IMMEDIATE` transaction: each record is inserted unless its id
    /// or its key is stored (`ON CONFLICT DO NOTHING`, so a second server
    /// on the same file that enqueued the key first wins), and a key found
    /// taken is read back from the partial unique index on `idem_key`.
    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>> {
        if submits.is_empty() {
            return Ok(Vec::new());
        }
        let rows = submits.iter().map(|s| Invocation::values_and_size(&s.record)).collect::<Result<Vec<_>>>()?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let mut answers = Vec::with_capacity(submits.len());
        let (mut queued, mut bytes) = (0i64, 0i64);
        // Whether an unkeyed row's id was stored already (a row of a run
        // was not inserted): then the queue depth and the records' total
        // are counted again.
        let mut recount = false;
        let mut at = 0;
        while at < submits.len() {
            let Some(key) = &submits[at].key else {
                // A run of unkeyed submits: statements of up to INSERT_ROWS rows.
                let end = submits[at..].iter().position(|s| s.key.is_some()).map_or(submits.len(), |n| at + n);
                while at < end {
                    let n = insert_rows(end - at);
                    let mut insert = tx.prepare_cached(unkeyed_insert(n)).map_err(|e| self.err(e))?;
                    let mut param = 1;
                    for (values, size) in &rows[at..at + n] {
                        for value in values {
                            insert.raw_bind_parameter(param, value).map_err(|e| self.err(e))?;
                            param += 1;
                        }
                        insert.raw_bind_parameter(param, *size as i64).map_err(|e| self.err(e))?;
                        param += 1;
                    }
                    let inserted = insert.raw_execute().map_err(|e| self.err(e))?;
                    let chunk = &submits[at..at + n];
                    if inserted != n {
                        // Left out: rows whose id is stored (a retry), and
                        // nothing else, or the call fails (and rolls back).
                        self.all_stored(&tx, chunk)?;
                        recount = true;
                    }
                    queued += chunk.iter().filter(|s| s.record.status == InvocationStatus::Queued).count() as i64;
                    bytes += rows[at..at + n].iter().map(|(_, size)| *size as i64).sum::<i64>();
                    answers.extend(chunk.iter().map(|_| Enqueued::New));
                    at += n;
                }
                continue;
            };
            let submit = &submits[at];
            let (values, size) = &rows[at];
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO invocations ({INVOCATION_COLUMNS}, size, idem_key, idem_fp) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
                     ?21, ?22, ?23) ON CONFLICT DO NOTHING"
                ))
                .map_err(|e| self.err(e))?;
            let extra = [
                ToSqlOutput::Owned(Value::Integer(*size as i64)),
                ToSqlOutput::Borrowed(ValueRef::Text(key.key.as_bytes())),
                ToSqlOutput::Borrowed(ValueRef::Text(key.fingerprint.as_bytes())),
            ];
            let inserted = insert.execute(params_from_iter(values.iter().chain(&extra))).map_err(|e| self.err(e))?;
            if inserted == 1 {
                queued += i64::from(submit.record.status == InvocationStatus::Queued);
                bytes += *size as i64;
            }
            let existing = match inserted {
                0 => tx
                    .prepare_cached("SELECT id, idem_fp FROM invocations WHERE idem_key = ?1")
                    .and_then(|mut holder| {
                        holder
                            .query_row([&key.key], |row| {
                                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
                            })
                            .optional()
                    })
                    .map_err(|e| self.err(e))?,
                _ => None,
            };
            answers.push(match existing {
                // The id itself was stored already (a retry).
                Some((id, _)) if id == submit.record.id => Enqueued::New,
                Some((id, fingerprint)) => Enqueued::Existing { id, fingerprint: fingerprint.unwrap_or_default() },
                None => Enqueued::New,
            });
            at += 1;
        }
        if recount {
            recount_counters(&tx).map_err(|e| self.err(e))?;
        } else {
            add_to(&tx, QUEUED, queued).map_err(|e| self.err(e))?;
            add_to(&tx, BYTES, bytes).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(answers)
    }

    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        let conn = self.lock();
        let raw = conn
            .prepare_cached(&format!("SELECT {INVOCATION_COLUMNS} FROM invocations WHERE id = ?1"))
            .and_then(|mut stmt| stmt.query_row([id], |row| Invocation::read(row, 0)).optional())
            .map_err(|e| self.err(e))?;
        raw.map(Invocation::decode).transpose()
    }

    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        let conn = self.lock();
        let read = |row: &rusqlite::Row<'_>| Invocation::read(row, 0);
        let raws: Vec<Invocation> = match action {
            Some(action) => conn
                .prepare_cached(&format!(
                    "SELECT {INVOCATION_COLUMNS} FROM invocations WHERE action = ?1 \
                     ORDER BY seq DESC LIMIT ?2"
                ))
                .and_then(|mut stmt| stmt.query_map(params![action, sql_limit(limit)], read)?.collect()),
            None => conn
                .prepare_cached(&format!("SELECT {INVOCATION_COLUMNS} FROM invocations ORDER BY seq DESC LIMIT ?1"))
                .and_then(|mut stmt| stmt.query_map([sql_limit(limit)], read)?.collect()),
        }
        .map_err(|e| self.err(e))?;
        drop(conn);
        raws.into_iter().map(Invocation::decode).collect()
    }

    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.lock();
        // IMMEDIATE takes the write lock first, so that two connections to
        // the same file cannot both select the same rows.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        // How many of the rows to claim are queued (the others are running
        // with an expired lease): the queue depth goes down by as many.
        let from_queue: i64 = tx
            .prepare_cached(&format!("SELECT count(*) FROM ({CLAIMABLE}) WHERE status = 'queued'"))
            .and_then(|mut stmt| {
                stmt.query_row(named_params! {":now": now_ms, ":limit": sql_limit(limit)}, |row| row.get(0))
            })
            .map_err(|e| self.err(e))?;
        add_to(&tx, QUEUED, -from_queue).map_err(|e| self.err(e))?;
        let mut claimed: Vec<(i64, Invocation)> = tx
            .prepare_cached(&format!(
                "UPDATE invocations SET status = 'running', owner = :owner, started = :now, \
                 lease_until = :lease_until, attempts = attempts + 1 \
                 WHERE seq IN (SELECT seq FROM ({CLAIMABLE})) \
                 RETURNING seq, {INVOCATION_COLUMNS}"
            ))
            .and_then(|mut stmt| {
                let lease_until = now_ms.saturating_add(lease_ms);
                let params = named_params! {
                    ":owner": owner, ":now": now_ms, ":lease_until": lease_until, ":limit": sql_limit(limit),
                };
                stmt.query_map(params, |row| Ok((row.get(0)?, Invocation::read(row, 1)?)))?.collect()
            })
            .map_err(|e| self.err(e))?;
        // RETURNING gives rows in no particular order.
        claimed.sort_unstable_by_key(|(seq, _)| *seq);
        let records = claimed.into_iter().map(|(_, raw)| raw.decode()).collect::<Result<Vec<_>>>()?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(records)
    }

    fn release_running(&self) -> Result<u64> {
        let conn = self.lock();
        conn.prepare_cached("UPDATE invocations SET lease_until = 0 WHERE status = 'running'")
            .and_then(|mut stmt| stmt.execute([]))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    fn count_queued(&self) -> Result<u64> {
        let conn = self.lock();
        // One row, however long the queue: every statement that moves a
        // record into or out of `queued` moves it in the same transaction
        // (enqueue, put, claim; purges delete finished records only).
        conn.prepare_cached("SELECT value FROM counters WHERE name = 'queued'")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn oldest_queued(&self) -> Result<Option<i64>> {
        let conn = self.lock();
        // The first entry of the partial index of queued records.
        conn.prepare_cached("SELECT created FROM invocations WHERE status = 'queued' ORDER BY seq LIMIT 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn purge_invocations(&self, before_ms: i64) -> Result<u64> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let (mut deleted, mut bytes) = (0u64, 0i64);
        {
            let mut stmt = tx
                .prepare_cached(
                    "DELETE FROM invocations WHERE status IN ('succeeded', 'failed') AND finished < ?1 RETURNING size",
                )
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([before_ms]).map_err(|e| self.err(e))?;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                deleted += 1;
                bytes += row.get::<_, Option<i64>>(0).map_err(|e| self.err(e))?.unwrap_or(0);
            }
        }
        add_to(&tx, BYTES, -bytes).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(deleted)
    }

    fn invocation_bytes(&self) -> Result<u64> {
        let conn = self.lock();
        // One row, however many records: every statement that writes or
        // deletes a record moves it in the same transaction (enqueue, put,
        // the purges; a claim does not change a record's size).
        conn.prepare_cached("SELECT value FROM counters WHERE name = 'bytes'")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged> {
        let mut purged = Purged::default();
        if bytes == 0 || max_records == 0 {
            return Ok(purged);
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        // The rows read are the ones deleted.
        let mut doomed = Vec::new();
        {
            let mut stmt = tx.prepare_cached(OLDEST_FINISHED).map_err(|e| self.err(e))?;
            let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
            while purged.bytes < bytes && doomed.len() < max_records {
                let Some(row) = rows.next().map_err(|e| self.err(e))? else { break };
                let (seq, size): (i64, i64) =
                    (row.get(0).map_err(|e| self.err(e))?, row.get(1).map_err(|e| self.err(e))?);
                doomed.push(seq);
                purged.bytes += size.max(0) as u64;
            }
        }
        {
            let mut stmt = tx.prepare_cached("DELETE FROM invocations WHERE seq = ?1").map_err(|e| self.err(e))?;
            for seq in &doomed {
                stmt.execute([seq]).map_err(|e| self.err(e))?;
            }
        }
        add_to(&tx, BYTES, -(purged.bytes as i64)).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        purged.records = doomed.len() as u64;
        Ok(purged)
    }

    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO run_counts (action, {}) VALUES (?1, {}) \
                 ON CONFLICT (action) DO UPDATE SET {}",
                    RunCounts::FIELDS.join(", "),
                    (2..=RunCounts::FIELDS.len() + 1).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", "),
                    RunCounts::FIELDS.map(|c| format!("{c} = {c} + excluded.{c}")).join(", ")
                ))
                .map_err(|e| self.err(e))?;
            for c in counts {
                let values = c.values().map(|n| n.min(i64::MAX as u64) as i64);
                let params = std::iter::once(Value::Text(c.action.clone())).chain(values.map(Value::Integer));
                stmt.execute(params_from_iter(params)).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn run_counts(&self, action: &str) -> Result<RunCounts> {
        let conn = self.lock();
        let mut values = [0u64; RunCounts::FIELDS.len()];
        conn.prepare_cached(&format!("SELECT {} FROM run_counts WHERE action = ?1", RunCounts::FIELDS.join(", ")))
            .and_then(|mut stmt| {
                stmt.query_row([action], |row| {
                    for (i, v) in values.iter_mut().enumerate() {
                        *v = row.get::<_, i64>(i)?.max(0) as u64;
                    }
                    Ok(())
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        Ok(RunCounts::from_values(action, values))
    }

    fn events(&self) -> &dyn crate::Events {
        self
    }

    fn schedules(&self) -> &dyn crate::Schedules {
        self
    }
}

#[cfg(test)]
mod tests;
