//! Invocation records on their way to the store: batched into one write at
//! a time, kept while the store cannot take them, and the recently
//! finished ones whose ids their clients know served from memory until
//! the store has them.
//!
//! Memory stays bounded either way:
//! - while the store takes records more slowly than runs make them, the
//!   backlog is [`full`](Records::full) at [`MAX_BACKLOG`] records, and runs
//!   that would add one wait before they start (see [`crate::invoke`]);
//! - while the store fails, runs go on (warm actions keep working) and,
//!   beyond [`MAX_PENDING_RECORDS`], the records of blocking runs are
//!   dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sl_store::InvocationRecord;

/// Most records kept while the store cannot be written; beyond it the
/// records of blocking invocations (whose clients have their answer) are
/// dropped first.
pub(crate) const MAX_PENDING_RECORDS: usize = 100_000;

/// Records written or waiting to be, beyond which runs that make one wait
/// (while the store keeps up, if slowly).
pub(crate) const MAX_BACKLOG: usize = 2_048;

/// How long after a failed write the next is tried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Records waiting to be stored, and the recently finished.
#[derive(Default)]
pub(crate) struct Records {
    pending: Vec<InvocationRecord>,
    /// A batch is being written.
    in_flight: bool,
    /// How many records it holds.
    in_flight_len: usize,
    /// After a failed write, no new attempt before this.
    retry_at: Option<Instant>,
    /// Finished invocations whose ids their clients know (asynchronous
    /// ones, and runs of routes) and whose records are not yet stored.
    recent: HashMap<String, InvocationRecord>,
}

impl Records {
    /// Queues a record to be written with the next batch.
    pub fn add(&mut self, rec: InvocationRecord) {
        self.pending.push(rec);
    }

    /// Queues the record of an invocation whose id its client knows, and
    /// serves it from memory until the store has it.
    pub fn add_known(&mut self, rec: InvocationRecord) {
        self.recent.insert(rec.id.clone(), rec.clone());
        self.pending.push(rec);
    }

    /// A finished invocation's record not yet in the store.
    pub fn recent(&self, id: &str) -> Option<&InvocationRecord> {
        self.recent.get(id)
    }

    /// Whether a batch could be written now (the clock is read only after
    /// a failed write).
    pub fn due(&self) -> bool {
        !self.in_flight && !self.pending.is_empty() && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// Whether records wait to be written or are being written.
    pub fn unsaved(&self) -> bool {
        self.in_flight || !self.pending.is_empty()
    }

    /// Whether the backlog is full: [`MAX_BACKLOG`] records or more are
    /// waiting or being written, and the store is not failing.
    pub fn full(&self) -> bool {
        self.pending.len() + self.in_flight_len >= MAX_BACKLOG && self.retry_at.is_none()
    }

    /// The records to write now, if a write is due; the write is then in
    /// flight until [`stored`](Self::stored) or [`failed`](Self::failed).
    pub fn take_batch(&mut self) -> Option<Vec<InvocationRecord>> {
        if !self.due() {
            return None;
        }
        self.in_flight = true;
        self.in_flight_len = self.pending.len();
        Some(std::mem::take(&mut self.pending))
    }

    /// The batch was written.
    pub fn stored(&mut self, batch: &[InvocationRecord]) {
        self.in_flight = false;
        self.in_flight_len = 0;
        self.retry_at = None;
        for rec in batch {
            self.recent.remove(&rec.id);
        }
    }

    /// Writing the batch failed at `now`: keep it, before what came since,
    /// and try again later. Beyond [`MAX_PENDING_RECORDS`], records of
    /// blocking invocations are dropped, oldest first; returns how many.
    pub fn failed(&mut self, mut batch: Vec<InvocationRecord>, now: Instant) -> usize {
        self.in_flight = false;
        self.in_flight_len = 0;
        self.retry_at = Some(now + RETRY_AFTER);
        batch.append(&mut self.pending);
        let before = batch.len();
        if before > MAX_PENDING_RECORDS {
            let mut excess = before - MAX_PENDING_RECORDS;
            let recent = &mut self.recent;
            batch.retain(|r| {
                if excess > 0 && !r.is_async {
                    excess -= 1;
                    recent.remove(&r.id);
                    return false;
                }
                true
            });
        }
        self.pending = batch;
        before - self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, is_async: bool) -> InvocationRecord {
        InvocationRecord::queued(id.into(), "a".into(), serde_json::Value::Null, is_async, 0)
    }

    #[test]
    fn one_batch_at_a_time_and_known_records_served_until_stored() {
        let mut r = Records::default();
        assert!(r.take_batch().is_none() && !r.unsaved());
        r.add(rec("1", false));
        r.add_known(rec("2", true));
        assert!(r.recent("2").is_some() && r.recent("1").is_none());
        let batch = r.take_batch().unwrap();
        assert_eq!(batch.len(), 2);
        r.add(rec("3", false));
        assert!(r.take_batch().is_none(), "one write at a time");
        r.stored(&batch);
        assert!(r.recent("2").is_none());
        assert_eq!(r.take_batch().unwrap().len(), 1);
    }

    #[test]
    fn a_failed_batch_is_kept_first_and_retried_later() {
        let mut r = Records::default();
        r.add(rec("1", false));
        let batch = r.take_batch().unwrap();
        r.add(rec("2", false));
        let now = Instant::now();
        assert_eq!(r.failed(batch, now), 0);
        assert!(!r.due(), "not before a second");
        r.retry_at = Some(now);
        let again = r.take_batch().unwrap();
        assert_eq!(again.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn the_backlog_is_full_while_the_store_keeps_up_slowly_but_not_while_it_fails() {
        let mut r = Records::default();
        for i in 0..MAX_BACKLOG - 1 {
            r.add(rec(&i.to_string(), false));
        }
        assert!(!r.full());
        r.add(rec("last", false));
        assert!(r.full());
        let batch = r.take_batch().unwrap();
        assert!(r.full(), "records being written count");
        r.stored(&batch);
        assert!(!r.full());
        for i in 0..MAX_BACKLOG {
            r.add(rec(&i.to_string(), false));
        }
        let batch = r.take_batch().unwrap();
        r.failed(batch, Instant::now());
        assert!(!r.full(), "a failing store holds nothing up: its records are dropped beyond the cap");
    }

    #[test]
    fn beyond_the_cap_blocking_records_are_dropped_first() {
        let mut r = Records::default();
        for i in 0..MAX_PENDING_RECORDS {
            r.add_known(rec(&format!("a{i}"), true));
        }
        r.add_known(rec("b0", false));
        r.add_known(rec("b1", false));
        let batch = r.take_batch().unwrap();
        r.add(rec("b2", false));
        let dropped = r.failed(batch, Instant::now());
        assert_eq!(dropped, 3);
        assert_eq!(r.pending.len(), MAX_PENDING_RECORDS);
        assert!(r.pending.iter().all(|x| x.is_async));
        assert!(r.recent("b0").is_none() && r.recent("a0").is_some());
    }
}
