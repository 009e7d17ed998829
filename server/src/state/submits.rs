//! Asynchronous submits waiting for the commit that holds their records:
//! group commit.
//!
//! A submit's record must be durable before its client gets the 202. One
//! commit per submit would cost a transaction (and a sync) each, so a
//! worker keeps at most one commit of submits in flight: submits that
//! arrive meanwhile wait here and go into the next commit together, up to
//! [`MAX_BATCH`] at a time. A burst of N submits so costs about N /
//! (submits per commit) commits. A commit starts at the end of a turn of
//! the event loop (`App::end_turn`), with every submit read in that turn,
//! so a lone submit is committed in the turn that read it.
//!
//! A submit this worker can run at once starts before its commit
//! ([`Submits::push`] with `early`): a run of a small action ends well
//! within the time its commit waits, and then the commit writes its
//! finished record, so the invocation costs the store one write instead
//! of two (the record queued, then finished). Its client still gets the
//! 202 only after that commit; if the commit fails, the client gets the
//! error and the record of the run is dropped (it ran; see
//! `docs/crash-safety.md`). A run still under way when its commit is
//! taken is written `running` under this worker's lease, as a claim would
//! write it, so that it is recoverable; its end is written after the
//! commit ([`Submits::run_ended`]). Until its run ends or outlives its
//! first slice ([`Submits::run_goes_on`]), which happens before the
//! submit's commit can be taken, the submit holds no copy of the record.
//!
//! `Invocations.max_queued` is checked against the store's queue depth,
//! read at most once every [`COUNT_EVERY`] and moved by what this worker
//! queued since ([`Submits::queued_estimate`]): on MongoDB counting the
//! queue walks its index (nx-27017 walks the collection: 256 ms at 10,000
//! records), so it is not done for every commit. Between readings the
//! estimate misses the invocations claimed since (it errs towards
//! refusing) and those other servers queued.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sl_store::{InvocationRecord, Submit};

use crate::reactor::ConnRef;

/// Submits committed together at most.
pub(crate) const MAX_BATCH: usize = 512;

/// How long a reading of the queue depth is used before it is read again.
pub(crate) const COUNT_EVERY: Duration = Duration::from_secs(1);

/// A submit waiting for its commit.
pub(crate) struct Pending {
    pub conn: ConnRef,
    pub submit: Submit,
    /// It started at once on this worker (the number
    /// [`Submits::push`] gave it); its record is `running` under this
    /// worker's lease, or finished.
    pub early: Option<u64>,
}

/// A finished record, with the size it counts for.
pub(crate) type Finished = (InvocationRecord, usize);

/// The submits of one worker not yet committed.
#[derive(Default)]
pub(crate) struct Submits {
    pending: Vec<Pending>,
    /// The number of the first pending submit; those of the commit in
    /// flight are from `flight` up to it.
    next: u64,
    flight: u64,
    in_flight: bool,
    /// Runs started early whose commit is over or in flight, and did not
    /// go as planned: one that ended while its commit was in flight (its
    /// record, written once the commit ends), or one still running whose
    /// commit failed (`None`: its record is dropped when it ends).
    early: HashMap<u64, Option<Finished>, foldhash::fast::RandomState>,
    /// The queue depth last read, plus what this worker queued since, and
    /// when it was read.
    queued: Option<(u64, Instant)>,
}

impl Submits {
    /// Whether submits wait for a commit and none is in flight: the next
    /// turn of the loop must come at once (a submit read after this turn's
    /// commit point, on a connection served again after its answer).
    pub fn wants_commit(&self) -> bool {
        !self.pending.is_empty() && !self.in_flight
    }

    /// Adds a submit to the next commit. One that `early` starts at once
    /// gets a number, for its run to give [`run_ended`](Self::run_ended).
    pub fn push(&mut self, conn: ConnRef, submit: Submit, early: bool) -> u64 {
        let number = self.next + self.pending.len() as u64;
        self.pending.push(Pending { conn, submit, early: early.then_some(number) });
        number
    }

    /// The next batch to commit, if no commit is in flight and submits
    /// wait; from then on a commit is in flight until [`Submits::done`].
    pub fn take_batch(&mut self) -> Option<Vec<Pending>> {
        if self.in_flight || self.pending.is_empty() {
            return None;
        }
        self.in_flight = true;
        let n = self.pending.len().min(MAX_BATCH);
        debug_assert!(
            self.pending[..n].iter().all(|p| !p.submit.record.id.is_empty()),
            "an early submit without its record"
        );
        self.flight = self.next;
        self.next += n as u64;
        Some(self.pending.drain(..n).collect())
    }

    /// The commit in flight ended.
    pub fn done(&mut self) {
        self.in_flight = false;
        self.flight = self.next;
    }

    /// The run of early submit `number` goes on after its first slice, as
    /// `running`: its submit, if still waiting for its commit, takes a copy
    /// of the record (until then it holds none: most runs end in their
    /// first slice and give it the final one, [`run_ended`](Self::run_ended)).
    pub fn run_goes_on(&mut self, number: u64, running: &InvocationRecord) {
        if let Some(p) = self.waiting_early(number) {
            p.submit.record = running.clone();
        }
    }

    /// Early submit `number`, if it still waits for its commit.
    fn waiting_early(&mut self, number: u64) -> Option<&mut Pending> {
        let at = usize::try_from(number.checked_sub(self.next)?).ok()?;
        self.pending.get_mut(at).filter(|p| p.early == Some(number))
    }

    /// The run of early submit `number` ended with `finished`. Returns it
    /// if it is to be recorded as any asynchronous run is (its commit
    /// ended and stored it); else keeps it: in the submit, if that is
    /// still waiting for its commit (which writes it finished); until the
    /// commit in flight ends ([`committed`](Self::committed)); or drops it,
    /// if the submit's commit failed.
    pub fn run_ended(&mut self, number: u64, finished: Finished) -> Option<Finished> {
        if number >= self.next {
            return match self.waiting_early(number) {
                Some(p) => {
                    p.submit.record = finished.0;
                    None
                }
                None => Some(finished),
            };
        }
        if self.in_flight && number >= self.flight {
            self.early.insert(number, Some(finished));
            return None;
        }
        match self.early.remove(&number) {
            Some(None) => None,
            _ => Some(finished),
        }
    }

    /// The commit of early submit `number` ended, and `stored` its record
    /// (`running` says whether that was still running). Returns the
    /// record of a run that ended meanwhile, to record now if it was
    /// stored; remembers to drop the record of one still running that was
    /// not.
    pub fn committed(&mut self, number: u64, stored: bool, running: bool) -> Option<Finished> {
        match self.early.remove(&number) {
            Some(ended) => ended.filter(|_| stored),
            None => {
                if !stored && running {
                    self.early.insert(number, None);
                }
                None
            }
        }
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

    /// Whether nothing waits: no submit, no commit in flight, no early run
    /// whose record waits for one.
    #[cfg(test)]
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && !self.in_flight && self.early.is_empty()
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
    use sl_store::InvocationStatus;

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
        s.push(ConnRef { key: 1, gen: 1 }, record(1), false);
        assert_eq!(s.take_batch().map(|b| b.len()), Some(1), "a lone submit goes at once");
        for i in 0..MAX_BATCH + 3 {
            s.push(ConnRef { key: i, gen: 1 }, record(i), false);
        }
        assert!(s.take_batch().is_none(), "one commit at a time");
        s.done();
        assert_eq!(s.take_batch().map(|b| b.len()), Some(MAX_BATCH));
        assert_eq!(s.waiting(), 3);
        s.done();
        let last = s.take_batch().unwrap();
        assert_eq!(last.iter().map(|p| p.submit.record.id.as_str()).collect::<Vec<_>>(), ["id512", "id513", "id514"]);
    }

    fn ended(i: usize) -> Finished {
        let mut rec = record(i).record;
        rec.status = InvocationStatus::Succeeded;
        (rec, 100)
    }

    #[test]
    fn an_early_run_is_written_once_whenever_it_ends() {
        let mut s = Submits::default();
        let conn = ConnRef { key: 1, gen: 1 };
        // Ends before its commit is taken: the commit writes it finished.
        let a = s.push(conn, record(0), true);
        assert!(s.run_ended(a, ended(0)).is_none());
        let batch = s.take_batch().unwrap();
        assert_eq!(batch[0].early, Some(a));
        assert_eq!(batch[0].submit.record.status, InvocationStatus::Succeeded);
        // Ends while its commit is in flight: written once that ends.
        let b = s.push(conn, record(1), true);
        s.done();
        assert!(s.committed(a, true, false).is_none());
        let _ = s.take_batch().unwrap();
        assert!(s.run_ended(b, ended(1)).is_none(), "kept until the commit ends");
        s.done();
        assert_eq!(s.committed(b, true, true).map(|(r, _)| r.id), Some("id1".into()));
        // Ends after its commit: recorded as any run.
        let c = s.push(conn, record(2), true);
        let _ = s.take_batch().unwrap();
        s.done();
        assert!(s.committed(c, true, true).is_none());
        assert!(s.run_ended(c, ended(2)).is_some());
        // Its commit failed: dropped, whenever it ends.
        let d = s.push(conn, record(3), true);
        let e = s.push(conn, record(4), true);
        let _ = s.take_batch().unwrap();
        assert!(s.run_ended(d, ended(3)).is_none());
        s.done();
        assert!(s.committed(d, false, true).is_none(), "ended in flight, not stored");
        assert!(s.committed(e, false, true).is_none());
        assert!(s.run_ended(e, ended(4)).is_none(), "not stored: dropped");
        assert!(s.early.is_empty());
    }
}
