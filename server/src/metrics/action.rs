//! What is counted of each action's invocations on one worker.

use std::sync::OnceLock;
use std::time::Duration;

use sl_store::RunKind;

use super::cell::{Counter, Histogram, BYTES, INSTRUCTIONS, POWERS_COUNTS, SECONDS};

/// The outcomes an invocation is counted under (the `outcome` label):
/// `success`, or the kind of error that ended it, as the API reports it
/// (README, "Errors"). A kind not in this list is counted as `other`, so
/// the label has a fixed set of values.
pub const OUTCOMES: [&str; 14] = [
    "success",
    "runtime",
    "action",
    "timeout",
    "memory",
    "instructions",
    "compile",
    "library",
    "internal",
    "too_large",
    "bad_request",
    "abandoned",
    "unavailable",
    "other",
];

/// The outcomes that are a limit ending the run (`sl_limit_kills_total`).
pub const LIMITS: [&str; 3] = ["timeout", "memory", "instructions"];

/// The index in [`OUTCOMES`] of an error kind.
fn outcome_index(error_kind: &str) -> usize {
    OUTCOMES[1..].iter().position(|&o| o == error_kind).map_or(OUTCOMES.len() - 1, |i| i + 1)
}

/// How an invocation ended, as it is counted.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    pub kind: RunKind,
    /// `None` for a success, else the error kind.
    pub error: Option<&'a str>,
    pub duration: Duration,
    pub instructions: u64,
    pub peak_memory: u64,
    /// Of an asynchronous invocation, the time it was queued before it
    /// started.
    pub queue_wait: Option<Duration>,
}

/// The counts of one kind of run, by [`OUTCOMES`] index.
pub(super) type Outcomes = [Counter; OUTCOMES.len()];

/// One action's counts on one worker: about 600 bytes (a server with a
/// thousand warm actions holds them for each of its workers). The counts
/// of a kind of run, and the queue wait, are made at their first use:
/// most actions run one way.
#[derive(Debug)]
pub struct ActionMetrics {
    /// By [`RunKind::ALL`] index.
    pub(super) runs: [OnceLock<Box<Outcomes>>; RunKind::ALL.len()],
    pub(super) duration: Histogram,
    pub(super) instructions: Histogram<POWERS_COUNTS>,
    pub(super) peak_memory: Histogram<POWERS_COUNTS>,
    /// Of asynchronous runs.
    pub(super) queue_wait: OnceLock<Box<Histogram>>,
}

impl Default for ActionMetrics {
    fn default() -> Self {
        Self {
            runs: Default::default(),
            duration: Histogram::new(&SECONDS),
            instructions: Histogram::new(&INSTRUCTIONS),
            peak_memory: Histogram::new(&BYTES),
            queue_wait: OnceLock::new(),
        }
    }
}

impl ActionMetrics {
    /// Counts a run that ran (it has a duration and a peak).
    pub fn ran(&self, e: &Ended<'_>) {
        self.outcomes(e.kind)[e.error.map_or(0, outcome_index)].inc();
        self.duration.record_time(e.duration);
        self.instructions.record(e.instructions);
        self.peak_memory.record(e.peak_memory);
        if let Some(w) = e.queue_wait {
            let h = self.queue_wait.get_or_init(|| Box::new(Histogram::new(&SECONDS)));
            h.record_time(w);
        }
    }

    /// Counts a run that could not start (the action failed to load, its
    /// arguments did not parse, it was abandoned in the queue).
    pub fn failed_to_start(&self, kind: RunKind, error_kind: &str) {
        self.outcomes(kind)[outcome_index(error_kind)].inc();
    }

    /// The counts of runs of `kind`, made at the first.
    #[inline]
    fn outcomes(&self, kind: RunKind) -> &Outcomes {
        self.runs[kind_index(kind)].get_or_init(Box::default)
    }

    /// The count of runs of `kind` (a [`RunKind::ALL`] index) with
    /// `outcome` (an [`OUTCOMES`] index).
    pub(super) fn runs(&self, kind: usize, outcome: usize) -> u64 {
        self.runs[kind].get().map_or(0, |o| o[outcome].get())
    }
}

/// The index of `kind` in [`RunKind::ALL`].
pub(super) fn kind_index(kind: RunKind) -> usize {
    match kind {
        RunKind::Blocking => 0,
        RunKind::Async => 1,
        RunKind::Route => 2,
        RunKind::Invoke => 3,
        RunKind::Event => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map_to_a_fixed_set_of_outcomes() {
        assert_eq!(OUTCOMES[outcome_index("timeout")], "timeout");
        assert_eq!(OUTCOMES[outcome_index("too_large")], "too_large");
        assert_eq!(OUTCOMES[outcome_index("something new")], "other");
        assert_eq!(OUTCOMES[outcome_index("success")], "other", "success is not an error kind");
        for (i, kind) in RunKind::ALL.into_iter().enumerate() {
            assert_eq!(kind_index(kind), i);
        }
    }

    #[test]
    fn a_run_is_counted_under_its_kind_and_outcome() {
        let m = ActionMetrics::default();
        let ok = Ended {
            kind: RunKind::Async,
            error: None,
            duration: Duration::from_millis(3),
            instructions: 500,
            peak_memory: 70_000,
            queue_wait: Some(Duration::from_micros(50)),
        };
        m.ran(&ok);
        m.ran(&Ended { kind: RunKind::Blocking, error: Some("timeout"), queue_wait: None, ..ok });
        m.failed_to_start(RunKind::Route, "compile");
        assert_eq!(m.runs(1, 0), 1);
        assert_eq!(m.runs(0, 3), 1);
        assert_eq!(m.runs(2, 6), 1);
        assert_eq!(m.runs(3, 0), 0);
        assert!(m.runs[3].get().is_none(), "no counts made for a kind that never ran");
        let mut s = super::super::cell::Snapshot::default();
        m.queue_wait.get().unwrap().add_to(&mut s);
        assert_eq!(s.count(), 1, "only the asynchronous run waited in the queue");
    }
}
