//! The executor's state: the action cache of a worker with its warm
//! instances ([`Cache`]), the invocations running on it ([`Runs`]), and
//! what an invocation is before it starts ([`Job`]).
//!
//! The executor holds state and keeps its own rules; starting, stepping
//! and ending invocations, which need the store and the blocking pools,
//! is the work of [`crate::invoke`] above it.

mod cache;
mod job;
mod runs;

pub(crate) use cache::{budget_for, Cache, FetchResult, Fetched, Library, Queued};
pub(crate) use job::{Job, Reply};
pub(crate) use runs::Runs;

/// Actions and running invocations of one worker.
#[derive(Default)]
pub(crate) struct Executor {
    pub cache: Cache,
    pub runs: Runs,
    /// Jobs held back until the store has taken enough of the records
    /// waiting (see [`crate::state::Records::full`]); at most one per
    /// connection, whose next requests wait behind it.
    pub held: std::collections::VecDeque<Job>,
}

impl Executor {
    /// Invocations running or waiting to start.
    pub fn busy(&self) -> usize {
        self.runs.len() + self.cache.loading_jobs() + self.held.len()
    }
}
