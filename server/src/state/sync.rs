//! What a worker keeps in step with the store, and when it last did.

use std::time::{Duration, Instant};

use sl_store::RouteRecord;

/// Where a worker's route table stands against the store.
#[derive(Default)]
pub(crate) struct RoutesSync {
    /// A listing is under way.
    pub running: bool,
    /// Another listing was asked for meanwhile.
    pub again: bool,
    /// The routes the table was built from.
    pub last: Vec<RouteRecord>,
}

/// When each piece of housekeeping last ran.
pub(crate) struct Timers {
    pub last_claim: Instant,
    pub last_purge: Instant,
    pub last_sync: Instant,
    /// Cached actions are being compared with the store.
    pub syncing: bool,
    pub last_waiter_poll: Instant,
    pub last_counts: Instant,
}

impl Timers {
    /// Timers as of `now`; the first purge is due at once.
    pub fn new(now: Instant) -> Self {
        Self {
            last_claim: now,
            last_purge: now.checked_sub(Duration::from_secs(3600)).unwrap_or(now),
            last_sync: now,
            syncing: false,
            last_waiter_poll: now,
            last_counts: now,
        }
    }
}

/// Where the worker's scan of the schedules stands (`crate::schedules`).
#[derive(Default)]
pub(crate) struct ScheduleScan {
    /// A scan is under way on the pool.
    pub scanning: bool,
    /// When the last one ended.
    pub scanned: Option<Instant>,
}
