//! The invocations running on one worker: a slab of runs, the queue of
//! those waiting for a time slice, and the deadlines of those parked.
//!
//! A run is *parked* while it waits for something outside the reactor (a
//! plugin call, an `invoke`d action, a `require`d library). It leaves the
//! run queue until its answer comes, and its deadline stays in a heap so
//! that it fails on time however late the answer is. Every run has an id
//! unique for the life of the worker, because slab keys are reused: a late
//! answer names `(key, id)` and is dropped if the key holds another run.
//!
//! A run is *away* while a slice of it runs on the worker's heavy thread
//! (its heap is large: see `sandbox/away.rs`); its entry holds a vacant
//! run until it comes back. Once it has been away, all its slices run
//! there (it is `heavy`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use slab::Slab;
use tracing::debug;

use super::Job;
use crate::sandbox::Run;

/// A run in the slab.
pub(crate) struct Running {
    pub run: Run,
    pub job: Job,
    /// The generation of the action's cache entry it started from.
    pub generation: u64,
    /// Unique for the life of the worker (slab keys are reused).
    pub id: u64,
    /// Waiting for a plugin call, an invoked action or a library.
    pub parked: bool,
    /// Its slices run on the worker's heavy thread.
    pub heavy: bool,
    /// A slice of it runs there now (`run` is vacant).
    pub away: bool,
}

/// The runs of one worker.
#[derive(Default)]
pub(crate) struct Runs {
    slab: Slab<Running>,
    runq: VecDeque<usize>,
    last_id: u64,
    /// Deadlines of parked runs: (deadline, slab key, run id).
    parked: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Runs {
    /// Keeps a run that outlived its first slice; returns its key.
    pub fn insert(&mut self, run: Run, job: Job, generation: u64) -> usize {
        self.last_id += 1;
        self.slab.insert(Running { run, job, generation, id: self.last_id, parked: false, heavy: false, away: false })
    }

    /// Takes run `key` out (it ended).
    pub fn remove(&mut self, key: usize) -> Option<Running> {
        self.slab.try_remove(key)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut Running> {
        self.slab.get_mut(key)
    }

    /// How many runs there are.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Takes run `key` out of its entry for a slice away, with its id; the
    /// entry stays, vacant, until [`come_back`](Self::come_back).
    pub fn go_away(&mut self, key: usize) -> Option<(Run, u64)> {
        let r = self.slab.get_mut(key)?;
        r.away = true;
        Some((std::mem::replace(&mut r.run, Run::vacant()), r.id))
    }

    /// Puts back run `(key, id)` after a slice away; false (and the run is
    /// dropped) if the entry holds another run, which cannot happen: an
    /// away run leaves its entry only by coming back.
    pub fn come_back(&mut self, key: usize, id: u64, run: Run) -> bool {
        match self.slab.get_mut(key) {
            Some(r) if r.id == id && r.away => {
                r.away = false;
                r.run = run;
                true
            }
            _ => false,
        }
    }

    /// Queues run `key` for a time slice.
    pub fn queue(&mut self, key: usize) {
        self.runq.push_back(key);
    }

    /// The next run waiting for a time slice.
    pub fn next_queued(&mut self) -> Option<usize> {
        self.runq.pop_front()
    }

    /// How many runs wait for a time slice.
    pub fn queued(&self) -> usize {
        self.runq.len()
    }

    /// Parks run `key` until its answer comes or its deadline passes;
    /// returns its id.
    pub fn park(&mut self, key: usize) -> Option<u64> {
        let running = self.slab.get_mut(key)?;
        running.parked = true;
        self.parked.push(Reverse((running.run.deadline(), key, running.id)));
        Some(running.id)
    }

    /// Parked run `key`, if it is still run `id` (else it ended meanwhile,
    /// on its deadline, and a late answer is dropped): no longer parked,
    /// queued for a slice, for the caller to hand it its answer.
    pub fn unpark(&mut self, key: usize, id: u64) -> Option<&mut Running> {
        match self.slab.get_mut(key) {
            Some(r) if r.id == id && r.parked => {
                r.parked = false;
                self.runq.push_back(key);
                Some(r)
            }
            _ => {
                debug!(key, id, "dropping the answer to an invocation that ended");
                None
            }
        }
    }

    /// Resumes parked run `(key, id)` with `result`; false if it ended.
    pub fn resume(&mut self, key: usize, id: u64, result: Result<serde_json::Value, String>) -> bool {
        match self.unpark(key, id) {
            Some(r) => {
                r.run.deliver(result);
                true
            }
            None => false,
        }
    }

    /// The earliest deadline of a parked run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.parked.peek().map(|Reverse((d, _, _))| *d)
    }

    /// A parked run whose deadline passed at `now`, taken out.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Running> {
        while let Some(Reverse((deadline, key, id))) = self.parked.peek().copied() {
            if deadline > now {
                return None;
            }
            self.parked.pop();
            if matches!(self.slab.get(key), Some(r) if r.id == id && r.parked) {
                return Some(self.slab.remove(key));
            }
        }
        None
    }
}
