//! Run counters, and which successful blocking runs keep a record.
//!
//! Every invocation is counted (by action, kind and outcome) in memory, and
//! the counts are added to the store about once a second
//! ([`Runs::take`]; `Store::add_run_counts`), so a run costs a map lookup,
//! not a store write.
//!
//! A successful blocking API run is a record nobody asked for: its client
//! has the answer and was never given an id. Writing one for every run
//! would cost more than the run (a row and its index entries in the
//! store), so beyond the first [`FREE_RECORDS`] of an action in a second
//! (on this worker), one success in `Invocations.sample_successes` keeps
//! its record ([`Runs::keep_success`]). Every failure is recorded, and so
//! is every run whose id a client holds (asynchronous runs, routes).

use std::collections::HashMap;

use sl_store::{RunCounts, RunKind};

/// Successful blocking runs of one action recorded in each second (on one
/// worker) before sampling starts: at a rate a person makes by hand, every
/// run is recorded.
pub(crate) const FREE_RECORDS: u32 = 10;

/// One action's counts since the last [`Runs::take`].
struct Entry {
    counts: RunCounts,
    /// Successes recorded since the last take (up to [`FREE_RECORDS`]).
    recorded: u32,
    /// Successes offered to sampling since the last take.
    offered: u64,
}

/// This worker's run counters not yet in the store.
#[derive(Default)]
pub(crate) struct Runs {
    /// Looked up on every run: foldhash, as the action cache does.
    actions: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// Counts whose write to the store is under way.
    in_flight: bool,
}

impl Runs {
    /// Counts one run of `action`.
    pub fn count(&mut self, action: &str, kind: RunKind, succeeded: bool) {
        self.add(action, |c| c.count(kind, succeeded));
    }

    /// Applies `f` to the counts of `action` (one lookup when it has an
    /// entry, which it has after its first run in a second).
    fn add(&mut self, action: &str, f: impl FnOnce(&mut RunCounts)) {
        if let Some(e) = self.actions.get_mut(action) {
            return f(&mut e.counts);
        }
        let mut entry = Entry { counts: RunCounts::new(action), recorded: 0, offered: 0 };
        f(&mut entry.counts);
        self.actions.insert(action.to_owned(), entry);
    }

    /// Whether the record of the next blocking run of `action` is kept if
    /// it succeeds: the first [`FREE_RECORDS`] since the last take (and
    /// any before the action's first count since then), then one in
    /// `every` (1: all of them).
    pub fn keep_success(&mut self, action: &str, every: u64) -> bool {
        if every <= 1 {
            return true;
        }
        // An action with no entry has not run since the last take (or does
        // not exist: no entry is made for it here).
        let Some(e) = self.actions.get_mut(action) else { return true };
        if e.recorded < FREE_RECORDS {
            e.recorded += 1;
            return true;
        }
        e.offered += 1;
        e.offered % every == 0
    }

    /// The counts to add to the store, if no write is under way; the write
    /// is then in flight until [`written`](Self::written). Starts a new
    /// second of [`FREE_RECORDS`], and forgets the actions that did not
    /// run since the last take.
    pub fn take(&mut self) -> Option<Vec<RunCounts>> {
        if self.in_flight {
            return None;
        }
        let mut batch = Vec::new();
        self.actions.retain(|_, e| {
            let ran = !e.counts.is_empty();
            if ran {
                let action = e.counts.action.clone();
                batch.push(std::mem::replace(&mut e.counts, RunCounts::new(action)));
            }
            e.recorded = 0;
            e.offered = 0;
            ran
        });
        if batch.is_empty() {
            return None;
        }
        self.in_flight = true;
        Some(batch)
    }

    /// The end of the write of a [`take`](Self::take)n batch: `failed`
    /// holds it back if the store refused it, to be added with the next.
    pub fn written(&mut self, failed: Option<Vec<RunCounts>>) {
        self.in_flight = false;
        for c in failed.into_iter().flatten() {
            self.add(&c.action, |mine| mine.add(&c));
        }
    }

    /// Whether counts wait to be written, or are being written.
    pub fn unsaved(&self) -> bool {
        self.in_flight || self.actions.values().any(|e| !e.counts.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_until_taken_and_a_failed_write_is_kept() {
        let mut runs = Runs::default();
        assert!(runs.take().is_none() && !runs.unsaved());
        for i in 0..5 {
            runs.count("a", RunKind::Blocking, i != 0);
        }
        runs.count("b", RunKind::Route, true);
        assert!(runs.unsaved());
        let mut batch = runs.take().expect("counts");
        batch.sort_by(|x, y| x.action.cmp(&y.action));
        assert_eq!(batch.len(), 2);
        assert_eq!((batch[0].of(RunKind::Blocking).succeeded, batch[0].of(RunKind::Blocking).failed), (4, 1));
        assert_eq!(batch[1].of(RunKind::Route).succeeded, 1);
        // One write at a time; counts go on meanwhile.
        runs.count("a", RunKind::Async, false);
        assert!(runs.take().is_none());
        runs.written(Some(batch));
        let again = runs.take().expect("the failed batch and the new count");
        let a = again.iter().find(|c| c.action == "a").expect("a");
        assert_eq!((a.of(RunKind::Blocking).succeeded, a.of(RunKind::Async).failed), (4, 1));
        runs.written(None);
        assert!(!runs.unsaved() && runs.take().is_none());
        // Actions that did not run are forgotten.
        assert!(runs.actions.is_empty());
    }

    #[test]
    fn the_first_successes_of_a_second_are_kept_then_one_in_every() {
        let mut runs = Runs::default();
        // Before its first count, an action is not tracked: kept.
        assert!((0..50).all(|_| runs.keep_success("a", 100)));
        runs.count("a", RunKind::Blocking, true);
        let kept = (0..1010).filter(|_| runs.keep_success("a", 100)).count();
        assert_eq!(kept, FREE_RECORDS as usize + 10);
        // Another action has its own allowance.
        runs.count("b", RunKind::Blocking, true);
        assert!(runs.keep_success("b", 100));
        // A new second starts at a take (after something ran).
        runs.count("a", RunKind::Blocking, true);
        runs.take();
        runs.written(None);
        assert!(runs.keep_success("a", 100));
        runs.count("a", RunKind::Blocking, true);
        assert!((1..FREE_RECORDS).all(|_| runs.keep_success("a", 100)));
        assert!(!runs.keep_success("a", 100));
        // 1 keeps every one.
        assert!((0..1000).all(|_| runs.keep_success("c", 1)));
    }
}
