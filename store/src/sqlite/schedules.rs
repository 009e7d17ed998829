//! [`Schedules`] in SQLite: the `schedules` table of schema version 15
//! (`schema.rs` describes it), one row per schedule keyed by its name.
//!
//! # Transactions
//!
//! Every call that writes is one statement in one `IMMEDIATE` transaction
//! (`SqliteStore::write`, as the events' calls are), which takes the
//! database's write lock before it reads anything, waiting for another
//! connection's (another server on the same file) up to the busy timeout
//! rather than failing on a stale snapshot.
//!
//! The compare-and-set of [`advance_schedule`](Schedules::advance_schedule)
//! is one `UPDATE ... WHERE name = ? AND last_fired IS ?`: `IS` compares
//! NULL (never fired) with NULL as equal, and a value with NULL as
//! different, so one condition covers both kinds of `from`. SQLite runs
//! the statement under the write lock, so of two calls from the same value
//! the second finds the value moved and changes no row; the number of rows
//! changed is the answer. `last_invocation` and `fired` change in the same
//! statement only when an invocation is given.
//!
//! Reads are one statement each (in a deferred transaction,
//! `SqliteStore::read`): a row by its primary key, or every row in the
//! order of the primary key, which is the byte order of names (SQLite's
//! `BINARY` collation).

use rusqlite::{params, OptionalExtension, Row};

use super::{error, SqliteStore};
use crate::{Result, ScheduleInfo, ScheduleRecord, Schedules, StoreError};

/// The columns [`schedule_info`] reads, in its order.
const COLUMNS: &str =
    "name, action, spec, time_zone, args, overlap, catch_up, jitter_ms, created, last_fired, last_invocation, fired";

/// The bits of a `u64` as SQLite's `INTEGER`, and back (as `row.rs` does).
fn u64_to_db(value: u64) -> i64 {
    value as i64
}

fn u64_from_db(value: i64) -> u64 {
    value as u64
}

/// Reads a schedule from the columns of [`COLUMNS`].
fn schedule_info(row: &Row<'_>) -> rusqlite::Result<ScheduleInfo> {
    Ok(ScheduleInfo {
        schedule: ScheduleRecord {
            name: row.get(0)?,
            action: row.get(1)?,
            spec: row.get(2)?,
            time_zone: row.get(3)?,
            args: row.get(4)?,
            overlap: row.get(5)?,
            catch_up: row.get(6)?,
            jitter_ms: u64_from_db(row.get(7)?),
            created: row.get(8)?,
        },
        last_fired: row.get(9)?,
        last_invocation: row.get(10)?,
        fired: u64_from_db(row.get(11)?),
    })
}

impl Schedules for SqliteStore {
    fn create_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        self.write(|conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO schedules (name, action, spec, time_zone, args, overlap, catch_up, jitter_ms, \
                     created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    schedule.name,
                    schedule.action,
                    schedule.spec,
                    schedule.time_zone,
                    schedule.args,
                    schedule.overlap,
                    schedule.catch_up,
                    u64_to_db(schedule.jitter_ms),
                    schedule.created
                ]);
            match inserted {
                Ok(_) => Ok(()),
                Err(err) if error::is_unique_violation(&err) => {
                    Err(StoreError::AlreadyExists(schedule.name.clone()).into())
                }
                Err(err) => Err(err.into()),
            }
        })
    }

    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"))?
                .query_row([name], schedule_info)
                .optional()?)
        })
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))?;
            let rows = stmt.query_map([], schedule_info)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn delete_schedule(&self, name: &str) -> Result<bool> {
        self.write(|conn| Ok(conn.prepare_cached("DELETE FROM schedules WHERE name = ?1")?.execute([name])? > 0))
    }

    fn advance_schedule(&self, name: &str, from: Option<i64>, to: i64, invocation: Option<&str>) -> Result<bool> {
        self.write(|conn| {
            let moved = conn
                .prepare_cached(
                    "UPDATE schedules SET last_fired = ?3, \
                     last_invocation = CASE WHEN ?4 IS NULL THEN last_invocation ELSE ?4 END, \
                     fired = CASE WHEN ?4 IS NULL THEN fired ELSE fired + 1 END \
                     WHERE name = ?1 AND last_fired IS ?2",
                )?
                .execute(params![name, from, to, invocation])?;
            Ok(moved > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn record(name: &str) -> ScheduleRecord {
        ScheduleRecord {
            name: name.into(),
            action: "a".into(),
            spec: "@hourly".into(),
            time_zone: "UTC".into(),
            args: "{}".into(),
            overlap: "skip".into(),
            catch_up: "none".into(),
            jitter_ms: 0,
            created: 1,
        }
    }

    /// Several stores on one file (several servers), each with threads
    /// advancing the same schedule from the same value at once: one call
    /// wins each round, across connections too.
    #[test]
    fn advances_through_several_connections_have_one_winner() {
        const STORES: usize = 3;
        const THREADS: usize = 3;
        const ROUNDS: i64 = 20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sl.db");
        let stores: Vec<SqliteStore> = (0..STORES).map(|_| SqliteStore::open(&path).unwrap()).collect();
        stores[0].create_schedule(&record("race")).unwrap();
        let mut last = None;
        for round in 0..ROUNDS {
            let start = std::sync::Barrier::new(STORES * THREADS);
            let wins: usize = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..STORES * THREADS)
                    .map(|i| {
                        let (store, start) = (&stores[i % STORES], &start);
                        scope.spawn(move || {
                            start.wait();
                            store.advance_schedule("race", last, round + 1, Some(&format!("{round}-{i}"))).unwrap()
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| usize::from(w.join().unwrap())).sum()
            });
            assert_eq!(wins, 1, "round {round}");
            last = Some(round + 1);
        }
        for store in &stores {
            let info = store.get_schedule("race").unwrap().unwrap();
            assert_eq!((info.last_fired, info.fired), (Some(ROUNDS), ROUNDS as u64));
        }
    }

    /// A database at schema version 14 (before schedules) gains the
    /// table when it is opened, and serves schedules at once.
    #[test]
    fn a_version_14_database_gains_the_schedules_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sl.db");
        let store = SqliteStore::open(&path).unwrap();
        store.lock().execute_batch("DROP TABLE schedules; PRAGMA user_version = 14;").unwrap();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store.lock().pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, SqliteStore::SCHEMA_VERSION);
        let schedules = store.schedules();
        schedules.create_schedule(&record("s")).unwrap();
        assert!(schedules.advance_schedule("s", None, 2, Some("i")).unwrap());
        let info = schedules.get_schedule("s").unwrap().unwrap();
        assert_eq!((info.last_fired, info.last_invocation.as_deref(), info.fired), (Some(2), Some("i"), 1));
    }
}
