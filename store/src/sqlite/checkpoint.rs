//! The checkpointer: a thread with a connection of its own that copies the
//! write-ahead log into the database file, off the writers' path.
//!
//! In WAL mode a commit appends pages to the log, and a checkpoint copies
//! them into the database file and syncs both. SQLite runs the checkpoint
//! in the commit that takes the log past `wal_autocheckpoint` pages (1,000
//! by default), so every so often a commit also copies up to a thousand
//! pages and waits for two syncs. Under a storm of submits that was ten
//! checkpoints a second; the commit that ran one held every client of its
//! batch, and the batches behind it, for milliseconds and at times 100 ms,
//! while the server's core sat idle: submits ran 10% slower than with no
//! checkpoints at all.
//!
//! Here a thread runs a `PASSIVE` checkpoint on its own connection, every
//! [`INTERVAL`] in which the writers changed [`CHECKPOINT_ROWS`] rows or
//! more since the last one: it copies and syncs what the log holds while
//! writers go on (WAL mode lets a checkpoint and a writer run at once).
//! Not after fewer: the first commit after a checkpoint that copied the
//! whole log starts the log over, and starting it over syncs the log's
//! header in that commit (SQLite's guard against an out-of-order write
//! after a restart). Checkpointing every interval whatever was written
//! made every commit of a quiet server pay that sync (0.4 ms a submit
//! here); now it is one commit in some hundreds of rows, as with SQLite's
//! own checkpoint at 1,000 pages.
//!
//! A writer starts the log over only once a checkpoint has copied all of
//! it, which one running beside steady writers never does: they append
//! while it copies. Left to SQLite, the commit that takes the log past
//! `wal_autocheckpoint` copies what the thread has not (up to a tenth of a
//! second of writes) and syncs, while every commit waits: 5 to 16 ms, about
//! three times a second under 20,000 submits a second, which was the
//! submits' p99. So once the log holds [`RESTART_PAGES`], the thread
//! copies it once more at once (what came during its last copy: a few
//! milliseconds of writes) and then a last time with the writers held
//! ([`HoldWriters`]: what came during that copy, a few hundred pages at
//! most): the log is then all copied, and the next commit starts it over
//! (writing and syncing the log's header, a fraction of a millisecond).
//! The thread looks every [`INTERVAL`], and the writers' commit hook
//! ([`install_commit_hook`]) wakes it at once when the log passes
//! [`RESTART_PAGES`]: writers that append faster than 160 MB a second
//! would otherwise reach [`WRITER_PAGES`] between two looks. The writers
//! keep a checkpoint of their own at [`WRITER_PAGES`] (40 MB of log), run
//! by the same hook, in case the thread falls behind. A checkpoint with nothing to copy
//! reads the log's header and returns. Errors are left alone: the log
//! keeps every commit until a checkpoint succeeds, and the writers' own
//! checkpoint still runs.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::error;
use crate::{Result, StoreError};

/// How often the thread looks at what the writers changed.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// Rows the writers change between two checkpoints, at least (a commit of
/// one small record writes some five pages: about 1,000 pages of log).
pub(crate) const CHECKPOINT_ROWS: u64 = 200;

/// What the writers tell the checkpointer: the rows their connection has
/// changed since it opened (the store adds them up as it unlocks the
/// connection: see `sqlite::Locked`), and, from their commit hook, that
/// the log has passed [`RESTART_PAGES`].
#[derive(Debug, Default)]
pub(crate) struct Changes {
    rows: AtomicU64,
    /// The checkpointer's wake-up (its stop flag and condition variable),
    /// once it runs.
    bell: OnceLock<Arc<(Mutex<bool>, Condvar)>>,
    /// Rung since the checkpointer's last pass.
    rung: AtomicBool,
}

impl Changes {
    /// `n` more rows changed.
    pub(crate) fn add(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    /// Rows changed so far.
    pub(crate) fn get(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Wakes the checkpointer now rather than at its next look (once until
    /// its next pass): writers fast enough fill the log to
    /// [`WRITER_PAGES`] within one [`INTERVAL`], and their own checkpoint
    /// would run first.
    fn ring(&self) {
        if !self.rung.swap(true, Ordering::Relaxed) {
            if let Some(bell) = self.bell.get() {
                bell.1.notify_one();
            }
        }
    }
}

/// Installs the writers' commit hook on `conn`, in place of
/// `wal_autocheckpoint` (a hook replaces that pragma's own). After each
/// commit SQLite gives it the pages in the log: past [`RESTART_PAGES`] it
/// wakes the checkpointer at once, and past [`WRITER_PAGES`] it runs the
/// checkpoint itself, as `wal_autocheckpoint` does.
///
/// # Safety
///
/// `changes` must outlive every commit of `conn`: the caller keeps a clone
/// of the `Arc` beside the connection, dropped after it (SQLite calls the
/// hook after commits only, never when the connection closes).
pub(crate) unsafe fn install_commit_hook(conn: &Connection, changes: &Arc<Changes>) {
    unsafe extern "C" fn hook(
        arg: *mut c_void,
        db: *mut rusqlite::ffi::sqlite3,
        name: *const c_char,
        pages: c_int,
    ) -> c_int {
        // SAFETY: `arg` is the `Changes` the caller keeps alive for as
        // long as the connection can commit (see the function's docs).
        let changes = unsafe { &*(arg as *const Changes) };
        if i64::from(pages) >= WRITER_PAGES {
            // Before the thread is woken, so that it does not take the
            // checkpoint from this commit (this one would then find it
            // busy and return with the log uncopied).
            // SAFETY: `db` and `name` are the connection and database
            // SQLite called the hook for; a checkpoint may run in a commit
            // hook (SQLite's own `wal_autocheckpoint` runs it there).
            unsafe { rusqlite::ffi::sqlite3_wal_checkpoint(db, name) };
        }
        if i64::from(pages) >= RESTART_PAGES {
            changes.ring();
        }
        rusqlite::ffi::SQLITE_OK
    }
    // SAFETY: the handle is the live connection's; the hook's argument
    // outlives its commits (the caller's promise, see # Safety), and the
    // hook only reads through it.
    unsafe {
        rusqlite::ffi::sqlite3_wal_hook(conn.handle(), Some(hook), Arc::as_ptr(changes) as *mut c_void);
    }
}

/// `wal_autocheckpoint` of the writers' connection while a checkpointer
/// runs: the log's size, in pages of 4 KiB, past which a commit runs a
/// checkpoint itself (and the next writer can start the log over).
pub(crate) const WRITER_PAGES: i64 = 10_000;

/// The log's size, in pages, past which the thread copies it to the end
/// with the writers held, so that the next commit starts it over: 16 MB,
/// well below [`WRITER_PAGES`], so that the writers' own checkpoint does
/// not run first (the log grew by up to 3,500 pages between two looks of
/// the thread under 20,000 submits a second).
pub(crate) const RESTART_PAGES: i64 = 4_000;

/// Runs the copy it is given while no writer commits (the store holds its
/// writers' connection), and returns what the copy returned.
pub(crate) type HoldWriters = Box<dyn Fn(&mut dyn FnMut() -> Copied) -> Copied + Send>;

/// What a checkpoint reported: the pages in the log and the pages of it
/// copied into the database (`None`: it failed).
pub(crate) type Copied = Option<(i64, i64)>;

/// The running checkpointer of one database file; dropping it stops the
/// thread and waits for it.
pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to `path` with `synchronous` (as the writers'
    /// connection has it: it sets the syncs of a checkpoint) and starts the
    /// thread. `label` names the database in errors.
    pub(crate) fn start(
        path: &Path,
        synchronous: &str,
        label: &str,
        changes: Arc<Changes>,
        hold: HoldWriters,
    ) -> Result<Self> {
        let conn = Connection::open(path).map_err(|err| error::map(label, err))?;
        conn.pragma_update(None, "synchronous", synchronous).map_err(|err| error::map(label, err))?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let _ = changes.bell.set(Arc::clone(&stop));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sl-checkpoint".into())
            .spawn(move || run(conn, &flag, &changes, &hold))
            .map_err(|err| StoreError::Unavailable(format!("cannot start the checkpoint thread ({label}): {err}")))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

/// One `PASSIVE` checkpoint.
fn copy(conn: &Connection) -> Copied {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(1)?, row.get(2)?))).ok()
}

/// One turn of the thread: a copy and, if the log holds [`RESTART_PAGES`],
/// a copy of what came during it and a last one with the writers held.
/// Returns whether the first copy succeeded.
fn pass(copy: &mut dyn FnMut() -> Copied, hold: &dyn Fn(&mut dyn FnMut() -> Copied) -> Copied) -> bool {
    let Some((log, _)) = copy() else { return false };
    if log >= RESTART_PAGES {
        copy();
        hold(copy);
    }
    true
}

/// Checkpoints, every [`INTERVAL`] after which the writers have changed
/// [`CHECKPOINT_ROWS`] rows since the last checkpoint, until told to stop;
/// copies the log to its end, the writers held, once it holds
/// [`RESTART_PAGES`].
fn run(conn: Connection, stop: &(Mutex<bool>, Condvar), changes: &Changes, hold: &HoldWriters) {
    let (lock, wake) = stop;
    let mut stopped = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut copied = changes.get();
    loop {
        let (guard, _) = wake.wait_timeout(stopped, INTERVAL).unwrap_or_else(|poisoned| poisoned.into_inner());
        stopped = guard;
        if *stopped {
            return;
        }
        let now = changes.get();
        let rung = changes.rung.swap(false, Ordering::Relaxed);
        if now.wrapping_sub(copied) < CHECKPOINT_ROWS && !rung {
            continue;
        }
        // After an error the next interval tries again.
        if pass(&mut || copy(&conn), &**hold) {
            copied = now;
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// Runs [`pass`] with copies that report `logs` in turn; returns what
    /// happened, in order: `copy` or `held copy`.
    fn run_pass(logs: &[Copied]) -> (bool, Vec<&'static str>) {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let held = Rc::new(RefCell::new(false));
        let mut next = logs.iter().copied();
        let (seen2, held2) = (Rc::clone(&seen), Rc::clone(&held));
        let mut copy = move || {
            seen2.borrow_mut().push(if *held2.borrow() { "held copy" } else { "copy" });
            next.next().flatten()
        };
        // Marks the copies it runs.
        let hold = |copy: &mut dyn FnMut() -> Copied| {
            *held.borrow_mut() = true;
            let copied = copy();
            *held.borrow_mut() = false;
            copied
        };
        let ok = pass(&mut copy, &hold);
        let seen = seen.borrow().clone();
        (ok, seen)
    }

    #[test]
    fn a_short_log_is_copied_once_and_the_writers_are_not_held() {
        assert_eq!(run_pass(&[Some((RESTART_PAGES - 1, RESTART_PAGES - 1))]), (true, vec!["copy"]));
    }

    #[test]
    fn a_long_log_is_copied_again_then_to_its_end_with_the_writers_held() {
        let logs =
            [Some((RESTART_PAGES, RESTART_PAGES)), Some((RESTART_PAGES + 300, RESTART_PAGES + 300)), Some((1, 1))];
        assert_eq!(run_pass(&logs), (true, vec!["copy", "copy", "held copy"]));
    }

    #[test]
    fn a_failed_copy_holds_nothing() {
        assert_eq!(run_pass(&[None]), (false, vec!["copy"]));
    }
}
