//! Storage for SL: actions, routes, invocation records and the asynchronous
//! queue ([`Store`]); topics, subscriptions and dead letters ([`Events`]);
//! schedules and how far each has fired ([`Schedules`]).
//!
//! Every backend implements [`Store`] and must pass the suite in
//! [`conformance`]. Calls are synchronous and may block on disk or network:
//! the server only ever calls them from its blocking pool, never from the
//! reactor thread. Implementations must therefore be `Send + Sync`.

mod args;
mod error;
mod events;
mod memory;
mod schedules;
mod sqlite;
mod types;

pub mod conformance;

pub use args::JsonArgs;
pub use error::StoreError;
pub use events::{
    DeadLetter, DeliveryCommit, Events, Message, NewMessage, PartitionLog, PartitionState, Pending, Position,
    Published, Subscription, SubscriptionInfo, SubscriptionPartition, Topic, TopicInfo,
};
pub use memory::MemoryStore;
pub use schedules::{ScheduleInfo, ScheduleRecord, Schedules};
pub use sqlite::{Durability, SqliteStore};
pub use types::{
    ActionMeta, ActionRecord, Enqueued, IdempotencyKey, InvocationError, InvocationRecord, InvocationStatus, Limits,
    Outcomes, Purged, RouteRecord, RunCounts, RunKind, Submit, RECORD_OVERHEAD,
};

/// Result of a store call.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The storage contract shared by every backend.
///
/// Times are Unix milliseconds supplied by the caller (`now_ms`), so that
/// tests can control them and every backend agrees on one clock.
pub trait Store: Send + Sync {
    /// A short name for logs ("sqlite", "memory", "mongodb").
    fn kind(&self) -> &'static str;

    /// Stores a new action. `action.version` is 1.
    ///
    /// Fails with [`StoreError::AlreadyExists`] if an action of that name exists.
    fn create_action(&self, action: &ActionRecord) -> Result<()>;

    /// Replaces an action whose stored version is `expected_version` with
    /// `action`. The caller sets `action.version` (to `expected_version + 1`);
    /// the store writes what it is given.
    ///
    /// Fails with [`StoreError::NotFound`] if the action does not exist and
    /// with [`StoreError::Conflict`] if its stored version differs.
    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()>;

    /// The action with its source and bytecode, or `None`.
    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>>;

    /// Metadata of every action, sorted by name.
    fn list_actions(&self) -> Result<Vec<ActionMeta>>;

    /// Deletes an action. Returns `false` if there was none.
    fn delete_action(&self, name: &str) -> Result<bool>;

    /// Stores a new route. Its key is the exact (`method`, `host`, `path`)
    /// triple, compared as opaque strings: the server validates patterns and
    /// rejects overlapping routes before it calls this.
    ///
    /// Fails with [`StoreError::AlreadyExists`] (holding
    /// [`RouteRecord::label`]) if a route with the same (method, host, path)
    /// exists.
    fn create_route(&self, route: &RouteRecord) -> Result<()>;

    /// Deletes the route with this exact (`method`, `host`, `path`).
    /// Returns `false` if there was none.
    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool>;

    /// Every route, sorted by (`host`, `path`, `method`), each compared
    /// byte by byte.
    fn list_routes(&self) -> Result<Vec<RouteRecord>>;

    /// Inserts or replaces invocation records (keyed by `id`). Each record
    /// is written atomically; a failed call may have written some of them,
    /// and retrying it is safe.
    ///
    /// Used to enqueue an asynchronous invocation (status `Queued`, durable
    /// when this returns), to record blocking invocations (only ever in a
    /// terminal state, so the queue never runs them), and to store the
    /// terminal state of any invocation. A blocking run's record
    /// (`is_async` false) is never queued and never replaces a queued
    /// record: a store may count the queue without looking up what such a
    /// record replaces.
    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()>;

    /// Enqueues new asynchronous invocations, durable when this returns.
    ///
    /// Each submit's record (status `Queued`, with an id never stored
    /// before) is written as [`put_invocations`](Self::put_invocations)
    /// would, unless it holds an idempotency key that a stored record holds
    /// already: then nothing is written for it and its answer is
    /// [`Enqueued::Existing`], naming that record. Keys are unique among
    /// stored records, even when several servers enqueue the same key at
    /// once; a key is forgotten when the record holding it is deleted
    /// (retention or the store budget). Answers are in the order of
    /// `submits`. Two submits in one call must not hold the same key.
    ///
    /// Each record is written atomically with its key; a failed call may
    /// have written some of them, and retrying it is safe: a record whose
    /// id is stored already is answered [`Enqueued::New`] again.
    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>>;

    /// The invocation record with this id, or `None`.
    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>>;

    /// The most recently stored invocation records first (the reverse of
    /// the order they were first written in; a record written again keeps
    /// its place), optionally only those of one action, at most `limit`.
    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>>;

    /// Atomically claims up to `limit` runnable invocations for `owner`, in
    /// the order they were enqueued (first enqueued, first claimed).
    ///
    /// Runnable means status `Queued`, or status `Running` with
    /// `lease_until < now_ms` (its owner died); a `Running` record without
    /// a lease is not runnable. Each claimed record is
    /// returned and stored with status `Running`, `owner = owner`,
    /// `started = now_ms`, `lease_until = now_ms + lease_ms` and `attempts`
    /// increased by one. Two concurrent callers never claim the same record.
    fn claim_invocations(&self, owner: &str, limit: usize, now_ms: i64, lease_ms: i64)
        -> Result<Vec<InvocationRecord>>;

    /// Makes every `Running` invocation claimable at once (sets its
    /// `lease_until` to 0). Called at start-up by a server that is the only
    /// user of an embedded store, so that work left by a crashed process is
    /// picked up without waiting for leases. Returns how many were released.
    fn release_running(&self) -> Result<u64>;

    /// Number of invocations with status `Queued`.
    fn count_queued(&self) -> Result<u64>;

    /// The `created` time of the queued invocation that is claimed next
    /// (the first in enqueue order), or `None` with none queued: how long
    /// the queue has kept its oldest. One lookup, however long the queue.
    fn oldest_queued(&self) -> Result<Option<i64>>;

    /// Deletes terminal (`Succeeded` or `Failed`) invocation records whose
    /// `finished` time is before `before_ms`. Returns how many were deleted.
    fn purge_invocations(&self, before_ms: i64) -> Result<u64>;

    /// The [`stored_size`](InvocationRecord::stored_size)s of every stored
    /// invocation record (of any status) added up: what the server's store
    /// budget bounds. Cheap enough to call at start-up and about once a
    /// minute (SQLite and MongoDB each read one row or document, a total
    /// their writes keep).
    fn invocation_bytes(&self) -> Result<u64>;

    /// Deletes the oldest terminal (`Succeeded` or `Failed`) invocation
    /// records, in order of `finished`, until the stored sizes of those
    /// deleted add up to at least `bytes`, or `max_records` are deleted, or
    /// none is left. `Queued` and `Running` records are never deleted.
    /// Costs about what it deletes, however many records there are.
    ///
    /// Safe to call from several servers at once: each record is deleted
    /// and counted by one call only, and only while terminal. Two calls that
    /// race may each delete their own oldest records, so together they can
    /// delete more than either asked for.
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged>;

    /// Adds each of `counts` to the stored run counters of its action
    /// (which start at 0). Several servers may add at once; no addition is
    /// lost. The counters are kept per action name, after the action is
    /// deleted too (as its invocation records are).
    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()>;

    /// The stored run counters of `action` (all 0 if none was ever added).
    fn run_counts(&self, action: &str) -> Result<RunCounts>;

    /// The same backend's topics, subscriptions and dead letters.
    fn events(&self) -> &dyn Events;

    /// The same backend's schedules.
    fn schedules(&self) -> &dyn Schedules;
}
