//! Schedules: actions invoked at the times a cron expression or an
//! interval gives (the times themselves are computed by the server, with
//! the `sl-schedule` crate; the store keeps the settings and how far each
//! schedule has fired).
//!
//! A firing is made exactly once across the servers sharing a store by
//! two writes, neither needing a lease: the server enqueues the firing's
//! invocation under an idempotency key made of the schedule's name and the
//! scheduled time (so a second enqueue of the same firing, by this or
//! another server, finds the first: see `Store::enqueue_invocations`),
//! then moves the schedule's `last_fired` from the value it read to the
//! firing's time with [`advance_schedule`](Schedules::advance_schedule), a
//! compare-and-set. A server that loses the race (the value moved) reads
//! the schedule again; a crash between the two writes leaves the firing
//! enqueued once and `last_fired` behind, and the next try finds the
//! invocation by its key and moves on.

use serde::{Deserialize, Serialize};

use crate::Result;

/// A schedule's settings, as the server checked them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// 1 to 128 characters of `[A-Za-z0-9._-]`.
    pub name: String,
    /// The action each firing invokes (asynchronously).
    pub action: String,
    /// A 5-field cron expression, a nickname (`@daily`) or `@every 30s`.
    pub spec: String,
    /// An IANA time zone name (`UTC`, `Europe/London`).
    pub time_zone: String,
    /// The arguments of every firing, a JSON object as text (the server
    /// adds the firing's `schedule` field to it).
    pub args: String,
    /// `skip`, `queue` or `allow`.
    pub overlap: String,
    /// `none`, `last` or `all:N`.
    pub catch_up: String,
    /// Each firing is delayed by a fixed amount below this many
    /// milliseconds (0: none).
    pub jitter_ms: u64,
    /// Unix milliseconds: the anchor of `@every` intervals, and where a
    /// schedule that never fired starts from.
    pub created: i64,
}

/// A schedule with how far it has fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub schedule: ScheduleRecord,
    /// The scheduled time (Unix milliseconds) of the last firing made or
    /// skipped, `None` before the first.
    pub last_fired: Option<i64>,
    /// The invocation of the last firing made (a skipped one leaves it).
    pub last_invocation: Option<String>,
    /// Firings made (not counting skipped ones).
    pub fired: u64,
}

/// The storage of schedules. Every backend passes the `schedules_*` cases
/// of the conformance suite.
pub trait Schedules: Send + Sync {
    /// Stores a new schedule that has never fired. Fails with
    /// [`StoreError::AlreadyExists`](crate::StoreError::AlreadyExists) if
    /// one of that name exists.
    fn create_schedule(&self, schedule: &ScheduleRecord) -> Result<()>;

    /// The schedule and how far it has fired, or `None`.
    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleInfo>>;

    /// Every schedule, sorted by name.
    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>>;

    /// Deletes a schedule. Returns `false` if there was none.
    fn delete_schedule(&self, name: &str) -> Result<bool>;

    /// Moves schedule `name`'s `last_fired` to `to`, if it is `from` (and
    /// the schedule exists): a compare-and-set, atomic against every other
    /// call. With `invocation`, the firing was made: `last_invocation`
    /// becomes it and `fired` grows by one; without, the firing was
    /// skipped and both stay. Returns whether it moved.
    fn advance_schedule(&self, name: &str, from: Option<i64>, to: i64, invocation: Option<&str>) -> Result<bool>;
}
