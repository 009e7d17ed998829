//! Asynchronous submits waiting for the commit that holds their records:
//! group commit.
//!
//! A submit's record must be durable before its client gets the 202. One
//! commit per submit would cost a transaction (and a sync) each, so a
//! worker keeps at most one commit of submits in flight: submits that
//! arrive meanwhile wait here and go into the next commit together, up to
//! [`MAX_BATCH`] at a time. A burst of N submits so costs about N /
//! (submits per commit) commits, and a lone submit is committed at once.
//!
//! `Invocations.max_queued` is checked against the store's queue depth,
//! read at most once every [`COUNT_EVERY`] and moved by what this worker
//! queued since ([`Submits::queued_estimate`]): on MongoDB counting the
//! queue walks its index (nx-27017 walks the collection: 256 ms at 10,000
//! records), so it is not done for every commit. Between readings the
//! estimate misses the invocations claimed since (it errs towards
//! refusing) and those other servers queued.

use std::time::{Duration, Instant};

use sl_store::Submit;

use crate::reactor::ConnRef;

/// Submits committed together at most.
pub(crate) const MAX_BATCH: usize = 512;

/// How long a reading of the queue depth is used before it is read again.
pub(crate) const COUNT_EVERY: Duration = Duration::from_secs(1);

/// The submits of one worker not yet committed.
#[derive(Default)]
pub(crate) struct Submits {
    pending: Vec<(ConnRef, Submit)>,
    in_flight: bool,
    /// The queue depth last read, plus what this worker queued since, and
    /// when it was read.
    queued: Option<(u64, Instant)>,
}

impl Submits {
    /// Adds a submit to the next commit.
    pub fn push(&mut self, conn: ConnRef, submit: Submit) {
        self.pending.push((conn, submit));
    }

    /// The next batch to commit, if no commit is in flight and submits
    /// wait; from then on a commit is in flight until [`Submits::done`].
    pub fn take_batch(&mut self) -> Option<Vec<(ConnRef, Submit)>> {
        if self.in_flight || self.pending.is_empty() {
            return None;
        }
        self.in_flight = true;
        let n = self.pending.len().min(MAX_BATCH);
        Some(self.pending.drain(..n).collect())
    }

    /// The commit in flight ended.
    pub fn done(&mut self) {
        self.in_flight = false;
    }

    /// The queue depth as of the last reading and what this worker queued
    /// since, if the reading is under [`COUNT_EVERY`] old at `now`.
    pub fn queued_estimate(&self, now: Instant) -> Option<u64> {
        self.queued.filter(|(_, at)| now.duration_since(*at) < COUNT_EVERY).map(|(n, _)| n)
    }

    /// The store's queue depth was read at `at` (and `n` counts what the
    /// commit that read it queued).
    pub fn counted(&mut self, n: u64, at: Instant) {
        self.queued = Some((n, at));
    }

    /// This worker queued `n` more.
    pub fn queued_more(&mut self, n: u64) {
        if let Some((q, _)) = &mut self.queued {
            *q += n;
        }
    }

    /// Submits waiting for a commit.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sl_store::InvocationRecord;

    fn record(i: usize) -> Submit {
        let record = InvocationRecord::queued(format!("id{i}"), "a".into(), serde_json::Value::Null, true, 0);
        Submit { record, key: None }
    }

    #[test]
    fn the_queue_depth_is_read_again_after_a_second() {
        let mut s = Submits::default();
        let t0 = Instant::now();
        assert_eq!(s.queued_estimate(t0), None, "never read");
        s.counted(10, t0);
        s.queued_more(5);
        assert_eq!(s.queued_estimate(t0 + Duration::from_millis(999)), Some(15));
        assert_eq!(s.queued_estimate(t0 + COUNT_EVERY), None, "read again");
    }

    #[test]
    fn one_commit_in_flight_and_the_rest_wait_for_the_next() {
        let mut s = Submits::default();
        assert!(s.take_batch().is_none(), "nothing to commit");
        s.push(ConnRef { key: 1, gen: 1 }, record(1));
        assert_eq!(s.take_batch().map(|b| b.len()), Some(1), "a lone submit goes at once");
        for i in 0..MAX_BATCH + 3 {
            s.push(ConnRef { key: i, gen: 1 }, record(i));
        }
        assert!(s.take_batch().is_none(), "one commit at a time");
        s.done();
        assert_eq!(s.take_batch().map(|b| b.len()), Some(MAX_BATCH));
        assert_eq!(s.waiting(), 3);
        s.done();
        let last = s.take_batch().unwrap();
        assert_eq!(last.iter().map(|(_, s)| s.record.id.as_str()).collect::<Vec<_>>(), ["id512", "id513", "id514"]);
    }
}
