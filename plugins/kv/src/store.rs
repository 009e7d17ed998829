//! The store: one SQLite file in WAL mode, a table `kv (key, value)`, and a
//! small pool of connections shared by the calls.
//!
//! Values are kept as JSON text; the store itself does not look inside them
//! except in [`KvStore::incr`]. Every error is a message for the action's
//! author that starts with `kv <action>:`.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use sl_plugin::Value;

/// Connections in the pool. SQLite serialises writers anyway; in WAL mode
/// readers run beside a writer, so a few connections let reads go on while
/// a write (or a wait for another process's write) is under way.
pub const POOL_SIZE: usize = 4;

/// How long a statement waits for another connection's (or process's)
/// write lock before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a free connection of the pool before it fails.
pub const POOL_WAIT: Duration = Duration::from_secs(10);

/// The table. `WITHOUT ROWID`: the key is the primary key, and range scans
/// over it (`list`) read the rows in key order.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID";

const UPSERT: &str =
    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// A key-value store in one SQLite file.
pub struct KvStore {
    path: PathBuf,
    idle: Mutex<Option<Vec<Connection>>>,
    freed: Condvar,
}

/// A connection taken from the pool; it goes back when dropped.
struct Pooled<'a> {
    store: &'a KvStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("a pooled connection until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a pooled connection until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        // An open transaction was rolled back when its `Transaction` was
        // dropped (even by a panic), so the connection is clean.
        if let (Some(conn), Some(idle)) = (self.conn.take(), self.store.lock().as_mut()) {
            idle.push(conn);
            self.store.freed.notify_one();
        }
    }
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl KvStore {
    /// Opens (creating it, its parent directories and the table if needed)
    /// the store at `path`, which should be absolute: it is used as given.
    ///
    /// Refuses a database that holds tables other than `kv` (another
    /// program's database, such as the server's own `data/sl.db`).
    pub fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("kv: cannot create the directory {} for {shown}: {e}", parent.display()))?;
        }
        if path.is_dir() {
            return Err(format!("kv: {shown} is a directory; 'path' must name a file"));
        }
        let mut conns = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            let conn = open_connection(path).map_err(|e| format!("kv: cannot open {shown}: {e}"))?;
            if conns.is_empty() {
                create_table(&conn).map_err(|e| format!("kv: {shown}: {e}"))?;
            }
            conns.push(conn);
        }
        Ok(KvStore { path: path.to_path_buf(), idle: Mutex::new(Some(conns)), freed: Condvar::new() })
    }

    /// The file of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections. Calls made after it fail, and calls running
    /// drop their connection when they end.
    pub fn close(&self) {
        drop(self.lock().take());
        self.freed.notify_all();
    }

    /// Stores `value` (JSON text) under `key`, replacing any value.
    pub fn put(&self, key: &str, value: &str) -> Result<(), String> {
        let conn = self.conn("put")?;
        self.sql("put", conn.prepare_cached(UPSERT).and_then(|mut s| s.execute((key, value))))?;
        Ok(())
    }

    /// The value under `key`, or `None`.
    pub fn get(&self, key: &str) -> Result<Option<Value>, String> {
        let conn = self.conn("get")?;
        let text: Option<String> = self.sql(
            "get",
            conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional()),
        )?;
        text.map(|text| parse_stored("get", key, &text)).transpose()
    }

    /// Deletes `key`; whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, String> {
        let conn = self.conn("delete")?;
        let n = self
            .sql("delete", conn.prepare_cached("DELETE FROM kv WHERE key = ?1").and_then(|mut s| s.execute([key])))?;
        Ok(n > 0)
    }

    /// At most `limit` entries whose keys start with `prefix` and come
    /// after `after` (if given), in key order (the order of the keys' UTF-8
    /// bytes, which is that of their code points), and no more once their
    /// values' JSON passes `max_bytes` (the entry that passes it is the
    /// last; the first always comes): rows are read one at a time, so a
    /// list never holds more than that in memory.
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(String, Value)>, String> {
        let conn = self.conn("list")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Keys after `after` and from `prefix` on: whichever is later.
        let from = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        let strict = after.is_some_and(|a| a >= prefix);
        let op = if strict { ">" } else { ">=" };
        let upper = prefix_upper_bound(prefix);
        let sql = match &upper {
            Some(_) => format!("SELECT key, value FROM kv WHERE key {op} ?1 AND key < ?2 ORDER BY key LIMIT ?3"),
            None => format!("SELECT key, value FROM kv WHERE key {op} ?1 ORDER BY key LIMIT ?2"),
        };
        let mut stmt = self.sql("list", conn.prepare_cached(&sql))?;
        let pair = |row: &rusqlite::Row<'_>| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?));
        let rows = match &upper {
            Some(upper) => stmt.query_map((from, upper.as_str(), limit), pair),
            None => stmt.query_map((from, limit), pair),
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for row in self.sql("list", rows)? {
            let (key, text) = self.sql("list", row)?;
            bytes += text.len();
            out.push((key.clone(), parse_stored("list", &key, &text)?));
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Adds `by` to the integer under `key` (a missing key counts as 0) and
    /// returns the new value. Atomic, across threads and processes: the read
    /// and the write run in one `IMMEDIATE` transaction.
    pub fn incr(&self, key: &str, by: i64) -> Result<i64, String> {
        let mut conn = self.conn("incr")?;
        let tx = self.sql("incr", conn.transaction_with_behavior(TransactionBehavior::Immediate))?;
        let current: Option<String> = self.sql(
            "incr",
            tx.prepare_cached("SELECT value FROM kv WHERE key = ?1")
                .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional()),
        )?;
        let old = match current {
            None => 0,
            Some(text) => match parse_stored("incr", key, &text)? {
                Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default(),
                _ => {
                    return Err(format!(
                        "kv incr: the value of {key:?} is {}, not an integer; incr works on integers \
                         (from -2^63 to 2^63-1) or missing keys",
                        excerpt(&text)
                    ))
                }
            },
        };
        let new = old.checked_add(by).ok_or_else(|| format!("kv incr: {key:?}: {old} + {by} overflows 64 bits"))?;
        self.sql("incr", tx.prepare_cached(UPSERT).and_then(|mut s| s.execute((key, new.to_string()))))?;
        self.sql("incr", tx.commit())?;
        Ok(new)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<Connection>>> {
        // Nothing panics while the lock is held; tolerate it anyway.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A free connection, waiting up to [`POOL_WAIT`] for one.
    fn conn(&self, action: &str) -> Result<Pooled<'_>, String> {
        let deadline = Instant::now() + POOL_WAIT;
        let mut idle = self.lock();
        loop {
            match idle.as_mut() {
                None => return Err(format!("kv {action}: the plugin has been shut down")),
                Some(conns) => {
                    if let Some(conn) = conns.pop() {
                        return Ok(Pooled { store: self, conn: Some(conn) });
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "kv {action}: all {POOL_SIZE} connections to {} stayed busy for {} s",
                    self.path.display(),
                    POOL_WAIT.as_secs()
                ));
            }
            idle = self.freed.wait_timeout(idle, left).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }

    /// An SQLite error as a message.
    fn sql<T>(&self, action: &str, result: rusqlite::Result<T>) -> Result<T, String> {
        result.map_err(|e| format!("kv {action}: {} ({})", describe(&e), self.path.display()))
    }
}

fn open_connection(path: &Path) -> Result<Connection, String> {
    let sql = |e: rusqlite::Error| describe(&e);
    // No SQLITE_OPEN_URI: the path is a file name, never a `file:` URI.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot use write-ahead logging: journal mode is {mode}"));
    }
    // As the server's store: a commit survives a crash of the process; a
    // power loss may lose the last commits but never corrupts the file.
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    Ok(conn)
}

/// Creates the table unless it exists; refuses a database with other tables.
fn create_table(conn: &Connection) -> Result<(), String> {
    let others: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> 'kv' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(|e| describe(&e))?;
    if !others.is_empty() {
        return Err(format!(
            "this database belongs to something else (it has the tables {}); give the kv plugin a file of its own",
            others.join(", ")
        ));
    }
    conn.execute(SCHEMA, []).map_err(|e| describe(&e))?;
    Ok(())
}

/// A stored value back as JSON.
fn parse_stored(action: &str, key: &str, text: &str) -> Result<Value, String> {
    sl_plugin::serde_json::from_str(text)
        .map_err(|e| format!("kv {action}: the stored value of {key:?} is not valid JSON ({e}): {}", excerpt(text)))
}

/// The start of a stored value, for messages.
fn excerpt(text: &str) -> String {
    const MAX: usize = 60;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn describe(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            format!("the database stayed locked by another writer for more than {} s ({e})", BUSY_TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    }
}

/// The smallest string greater than every string that starts with
/// `prefix`, or `None` when there is none (an empty prefix, or one made only
/// of U+10FFFF). With it, "starts with `prefix`" is the range
/// `prefix <= key < bound`, which SQLite answers from the primary key, and
/// in which `%` and `_` are ordinary characters.
///
/// SQLite compares text keys by their UTF-8 bytes, and UTF-8 preserves the
/// order of code points, so the bound is found on characters: drop trailing
/// U+10FFFF characters and replace the last remaining one by its successor
/// (skipping the surrogates, which are not characters).
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}
