//! The store budget: a bound on the bytes the stored invocation records
//! take together (`Invocations.store_budget`).
//!
//! Time retention alone does not bound them: a client that floods a route
//! with big bodies fills the store long before records are a week old. So
//! the workers of a process count, in one [`RecordBytes`] they share, about
//! how many bytes of records they have written since they last read the
//! total from the store. The count is a guess between readings (the size
//! [`bound`](super::records::bound) gives for each record, a little more
//! than what the store counts); it only decides when to look. When it
//! passes the budget, a worker runs [`trim`] on its pool: it reads the
//! store's own total ([`Store::invocation_bytes`], one row in SQLite)
//! and, if that is over the budget, deletes the oldest finished records
//! ([`Store::purge_oldest_invocations`], in batches of [`PURGE_BATCH`])
//! until the total is at most [`target`] (7/8 of the budget), so that the
//! next trim waits for an eighth of the budget to be written. Queued and
//! running records are never deleted for the budget.
//!
//! The total is also read about once a minute with the retention purge,
//! and at start-up (so a restarted server knows it again), which also
//! catches what other servers sharing the store wrote. Several servers
//! (one MongoDB) may trim at once: each record is deleted by one of them;
//! together they may go somewhat below the target.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sl_store::{Purged, Store, StoreError};

/// Most records one `purge_oldest_invocations` call deletes, so that one
/// write transaction stays short.
pub(crate) const PURGE_BATCH: usize = 1_000;

/// What the workers of one process know of the bytes the stored records
/// take.
#[derive(Debug, Default)]
pub struct RecordBytes {
    /// The total as last read from the store, plus what was written since
    /// (about).
    total: AtomicU64,
    /// Bytes written by this process since it started (about): what a
    /// trim adds to the total it read for what was written meanwhile.
    written: AtomicU64,
    /// A worker of this process is trimming.
    trimming: AtomicBool,
}

impl RecordBytes {
    /// Whether `bytes` more would take the total over `budget` (0: no
    /// budget), as far as this process knows.
    pub fn would_pass(&self, bytes: u64, budget: u64) -> bool {
        budget > 0 && self.total.load(Ordering::Relaxed).saturating_add(bytes) > budget
    }

    /// Counts `bytes` more written; returns whether the total may now be
    /// over `budget` (0: no budget).
    pub fn wrote(&self, bytes: u64, budget: u64) -> bool {
        self.written.fetch_add(bytes, Ordering::Relaxed);
        let total = self.total.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        budget > 0 && total > budget
    }

    /// The total as this process knows it.
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Starts a trim unless one is under way; returns the written count
    /// to give [`finish_trim`](Self::finish_trim), or `None`.
    pub fn start_trim(&self) -> Option<u64> {
        if self.trimming.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(self.written.load(Ordering::Relaxed))
    }

    /// A trim that started at `written_then` ends: the store's total was
    /// `total` after it (`None` if the store could not say). Returns
    /// whether another trim is due: records were written meanwhile (their
    /// writers did not start one, this one being under way) and the total
    /// may be over `budget` again.
    pub fn finish_trim(&self, written_then: u64, total: Option<u64>, budget: u64) -> bool {
        let mut again = false;
        if let Some(total) = total {
            // Records written while the trim ran may be in `total` already:
            // counting them again errs on the safe side.
            let since = self.written.load(Ordering::Relaxed).saturating_sub(written_then);
            let now = total.saturating_add(since);
            self.total.store(now, Ordering::Relaxed);
            again = since > 0 && budget > 0 && now > budget;
        }
        self.trimming.store(false, Ordering::Release);
        again
    }
}

/// The total a trim brings the records down to: 7/8 of the budget.
pub(crate) fn target(budget: u64) -> u64 {
    budget - budget / 8
}

/// What a [`trim`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trimmed {
    /// The store's total when the trim began.
    pub before: u64,
    /// The records deleted.
    pub purged: Purged,
    /// The total after (`before` less what was deleted).
    pub after: u64,
}

/// Reads the stored records' total and, if it and `room` more bytes (a
/// batch about to be written) would be over `budget` bytes, deletes the
/// oldest finished records until the total is at most
/// [`target`]`(budget) - room`, or no finished record is left.
pub(crate) fn trim(store: &dyn Store, budget: u64, room: u64) -> Result<Trimmed, StoreError> {
    let before = store.invocation_bytes()?;
    let mut trimmed = Trimmed { before, purged: Purged::default(), after: before };
    if budget == 0 || before.saturating_add(room) <= budget {
        return Ok(trimmed);
    }
    let target = target(budget).saturating_sub(room);
    while trimmed.after > target {
        let p = store.purge_oldest_invocations(trimmed.after - target, PURGE_BATCH)?;
        if p.records == 0 {
            break;
        }
        trimmed.purged.records += p.records;
        trimmed.purged.bytes += p.bytes;
        trimmed.after = trimmed.after.saturating_sub(p.bytes);
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sl_store::{InvocationRecord, InvocationStatus, MemoryStore};

    fn finished(id: &str, at: i64, pad: usize) -> InvocationRecord {
        let mut rec =
            InvocationRecord::queued(id.into(), "a".into(), serde_json::json!({ "pad": "x".repeat(pad) }), false, at);
        rec.status = InvocationStatus::Succeeded;
        rec.finished = Some(at);
        rec
    }

    #[test]
    fn a_trim_deletes_the_oldest_finished_records_down_to_seven_eighths() {
        let store = MemoryStore::new();
        let records: Vec<_> = (0..20).map(|i| finished(&format!("r{i:02}"), 1_000 + i, 1_000)).collect();
        let size = records[0].stored_size();
        store.put_invocations(&records).unwrap();
        let mut queued =
            InvocationRecord::queued("q".into(), "a".into(), serde_json::json!({ "pad": "y".repeat(20_000) }), true, 1);
        queued.status = InvocationStatus::Queued;
        store.put_invocations(std::slice::from_ref(&queued)).unwrap();
        let total = 20 * size + queued.stored_size();

        // Under the budget: nothing.
        let t = trim(&store, total, 0).unwrap();
        assert_eq!((t.before, t.after, t.purged.records), (total, total, 0));
        // No budget: nothing.
        assert_eq!(trim(&store, 0, 0).unwrap().purged.records, 0);

        let budget = total - 1;
        let t = trim(&store, budget, 0).unwrap();
        assert!(t.after <= target(budget), "{t:?}");
        assert_eq!(store.invocation_bytes().unwrap(), t.after);
        let gone = t.purged.records as usize;
        // The fewest oldest records that bring it under the target.
        assert_eq!(gone, (total - target(budget)).div_ceil(size) as usize, "{t:?}");
        for (i, rec) in records.iter().enumerate() {
            assert_eq!(store.get_invocation(&rec.id).unwrap().is_some(), i >= gone, "{}", rec.id);
        }

        // Room for a batch: under the budget with it, nothing; over, the
        // total goes down to 7/8 of the budget less the room.
        let now = t.after;
        assert_eq!(trim(&store, budget, budget - now).unwrap().purged.records, 0);
        let t = trim(&store, budget, budget - now + 1).unwrap();
        assert!(t.purged.records > 0 && t.after <= target(budget) - (budget - now + 1), "{t:?}");

        // A budget smaller than the queued record: every finished record
        // goes, the queued one stays.
        let t = trim(&store, 10, 0).unwrap();
        assert_eq!(t.after, queued.stored_size());
        assert!(store.get_invocation("q").unwrap().is_some());
    }

    #[test]
    fn the_count_passes_the_budget_and_a_trim_resets_it() {
        let bytes = RecordBytes::default();
        assert!(!bytes.wrote(100, 150));
        assert!(bytes.would_pass(51, 150) && !bytes.would_pass(50, 150) && !bytes.would_pass(1 << 40, 0));
        assert!(bytes.wrote(100, 150));
        assert!(!bytes.wrote(1_000, 0), "no budget");
        let then = bytes.start_trim().unwrap();
        assert!(bytes.start_trim().is_none(), "one trim at a time");
        bytes.wrote(30, 150);
        assert!(!bytes.finish_trim(then, Some(70), 150), "under the budget");
        assert_eq!(bytes.total(), 100, "the store's total and what was written meanwhile");
        let then = bytes.start_trim().unwrap();
        assert!(!bytes.finish_trim(then, Some(200), 150), "over, but nothing written meanwhile: nothing to gain");
        let then = bytes.start_trim().unwrap();
        bytes.wrote(10, 150);
        assert!(bytes.finish_trim(then, Some(145), 150), "written meanwhile and over: again");
        let then = bytes.start_trim().unwrap();
        assert!(!bytes.finish_trim(then, None, 150));
        assert_eq!(bytes.total(), 155, "kept when the store could not say");
        assert!(bytes.start_trim().is_some());
    }
}
