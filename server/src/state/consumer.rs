//! Where this worker's consumer of the asynchronous queue stands: the
//! invocations it holds (claimed from the store, or claimed by itself in
//! its own commit of submits), how many of them run, the ones waiting for
//! room to start, and whether a claim is under way.
//!
//! A commit of submits may claim for this worker up to
//! `Invocations.concurrency` more than it can run at once
//! ([`ready_max`]): those wait here, in the order they were submitted,
//! and start as runs end, with no claim through the store (a claim is a
//! write of its own). They stay recoverable: the store has them running
//! under this worker's lease, which another server may take over if this
//! one dies.

use std::collections::VecDeque;

use sl_store::InvocationRecord;

/// How many invocations a worker may hold claimed without running them,
/// with `concurrency` allowed to run: as many again.
pub(crate) fn ready_max(concurrency: usize) -> usize {
    concurrency
}

/// The asynchronous queue's consumer on this worker.
#[derive(Default)]
pub(crate) struct Consumer {
    /// Invocations held: claimed and not finished (the ready ones too),
    /// and the room a claim under way or a commit of submits asked for.
    held: usize,
    /// Of those, the ones started and not finished.
    running: usize,
    /// Claimed by this worker's own commits, not started yet.
    ready: VecDeque<InvocationRecord>,
    /// A claim is under way.
    claiming: bool,
    /// Another claim was asked for while one was under way.
    again: bool,
    /// An invocation finished or was submitted: claim at the end of the turn.
    wanted: bool,
    /// Whether the store may hold queued invocations: not after a claim
    /// found fewer than it asked for, until something is queued again
    /// ([`may_have_queued`](Self::may_have_queued)).
    queued: bool,
}

impl Consumer {
    /// How many invocations to claim now with `concurrency` allowed, or
    /// `None` if no claim starts (one is under way: it is repeated after;
    /// or there is no room). A claim that starts holds its room until
    /// [`claimed`](Self::claimed) or [`claim_failed`](Self::claim_failed).
    pub fn start_claim(&mut self, concurrency: usize) -> Option<usize> {
        self.wanted = false;
        if !self.queued {
            return None;
        }
        if self.claiming {
            self.again = true;
            return None;
        }
        let room = concurrency.saturating_sub(self.held);
        if room == 0 {
            return None;
        }
        self.claiming = true;
        self.again = false;
        self.held += room;
        Some(room)
    }

    /// The claim for `asked` ended with `got` invocations, now running.
    /// Returns whether to claim again at once (it got all it asked for, so
    /// more may wait, or another claim was asked for meanwhile).
    pub fn claimed(&mut self, asked: usize, got: usize) -> bool {
        self.claiming = false;
        self.held -= asked - got;
        self.running += got;
        let again = got == asked || self.again;
        self.queued = again;
        again
    }

    /// The store may hold queued invocations (this worker queued some,
    /// or another server may have): the next chance claims.
    pub fn may_have_queued(&mut self) {
        self.queued = true;
        self.wanted = true;
    }

    /// The claim for `asked` failed.
    pub fn claim_failed(&mut self, asked: usize) {
        self.claiming = false;
        self.held -= asked;
    }

    /// Takes room for up to `want` submits that this worker's commit
    /// claims for itself, with `concurrency` allowed to run: up to
    /// [`ready_max`] more than that are held. Each one taken is held until
    /// it is [`ready`](Self::ready) and then finished, or
    /// [`released`](Self::release).
    pub fn reserve(&mut self, concurrency: usize, want: usize) -> usize {
        let n = (concurrency + ready_max(concurrency)).saturating_sub(self.held).min(want);
        self.held += n;
        n
    }

    /// Takes room to run a submit at once, before its commit, with
    /// `concurrency` allowed to run: if fewer run and none is ready to
    /// start (those go first). It runs until [`finished`](Self::finished).
    pub fn start_early(&mut self, concurrency: usize) -> bool {
        if self.running >= concurrency || !self.ready.is_empty() {
            return false;
        }
        self.held += 1;
        self.running += 1;
        true
    }

    /// A reserved invocation is stored, claimed by this worker: it starts
    /// when there is room ([`next_ready`](Self::next_ready)).
    pub fn ready(&mut self, rec: InvocationRecord) {
        self.ready.push_back(rec);
    }

    /// The next invocation to start, if one is ready and fewer than
    /// `concurrency` run. It runs until [`finished`](Self::finished).
    pub fn next_ready(&mut self, concurrency: usize) -> Option<InvocationRecord> {
        if self.running >= concurrency {
            return None;
        }
        let rec = self.ready.pop_front()?;
        self.running += 1;
        Some(rec)
    }

    /// Every ready invocation, which will not start here (the worker
    /// stops); each is held until [`release`](Self::release)d.
    pub fn take_ready(&mut self) -> Vec<InvocationRecord> {
        self.ready.drain(..).collect()
    }

    /// An invocation held but not started will not run here (its submit
    /// was not stored, or it went back to the queue).
    pub fn release(&mut self) {
        self.held = self.held.saturating_sub(1);
        self.wanted = true;
    }

    /// A running invocation finished: room for another.
    pub fn finished(&mut self) {
        self.held = self.held.saturating_sub(1);
        self.running = self.running.saturating_sub(1);
        self.wanted = true;
    }

    /// Whether a claim was asked for.
    pub fn wanted(&self) -> bool {
        self.wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> InvocationRecord {
        InvocationRecord::queued(id.into(), "a".into(), serde_json::Value::Null, true, 0)
    }

    #[test]
    fn one_claim_at_a_time_for_the_room_there_is() {
        let mut c = Consumer::default();
        assert_eq!(c.start_claim(4), None, "nothing queued that it knows of");
        c.may_have_queued();
        assert_eq!(c.start_claim(4), Some(4));
        assert_eq!(c.start_claim(4), None, "one under way");
        assert!(c.claimed(4, 2), "asked for again meanwhile");
        assert_eq!(c.start_claim(4), Some(2));
        assert!(c.claimed(2, 2), "got all it asked for");
        assert_eq!(c.start_claim(4), None, "no room");
        c.finished();
        assert!(c.wanted());
        assert_eq!(c.start_claim(4), Some(1));
        assert!(!c.wanted());
        assert!(!c.claimed(1, 0));
        assert_eq!(c.start_claim(4), None, "the last claim found the queue empty");
        c.may_have_queued();
        assert_eq!(c.start_claim(4), Some(1));
        c.claim_failed(1);
        assert_eq!(c.start_claim(4), Some(1));
    }

    #[test]
    fn submits_hold_up_to_twice_the_concurrency_and_start_as_runs_end() {
        let mut c = Consumer::default();
        c.may_have_queued();
        assert_eq!(c.start_claim(2), Some(2));
        // A claim under way holds its room; submits take what is left.
        assert_eq!(c.reserve(2, 5), 2);
        assert_eq!(c.reserve(2, 1), 0, "held: 2 claiming, 2 reserved");
        assert!(!c.claimed(2, 0));
        c.may_have_queued();
        assert_eq!(c.reserve(2, 5), 2);
        for id in ["a", "b", "c", "d"] {
            c.ready(rec(id));
        }
        assert_eq!(c.next_ready(2).map(|r| r.id), Some("a".into()));
        assert_eq!(c.next_ready(2).map(|r| r.id), Some("b".into()));
        assert!(c.next_ready(2).is_none(), "two run");
        assert_eq!(c.start_claim(2), None, "no room for a claim");
        c.finished();
        assert_eq!(c.next_ready(2).map(|r| r.id), Some("c".into()));
        assert_eq!(c.reserve(2, 5), 1, "one held fewer");
        c.release();
        assert_eq!(c.take_ready().len(), 1, "d");
        c.release();
        c.finished();
        c.finished();
        assert_eq!(c.start_claim(2), Some(2), "nothing held");
    }

    #[test]
    fn a_submit_starts_early_only_with_room_and_nothing_ready() {
        let mut c = Consumer::default();
        assert!(c.start_early(2));
        assert_eq!(c.reserve(2, 1), 1);
        c.ready(rec("a"));
        assert!(!c.start_early(2), "a ready one goes first");
        assert_eq!(c.next_ready(2).map(|r| r.id), Some("a".into()));
        assert!(!c.start_early(2), "two run");
        c.finished();
        assert!(c.start_early(2));
        assert_eq!(c.reserve(2, 5), 2, "twice the concurrency held at most: two run");
    }
}
