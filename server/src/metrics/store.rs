//! Store calls timed by operation: [`MeteredStore`] passes every call to
//! the store it wraps and records how long it took, and whether it failed.
//! Store calls run on the blocking pools of every worker at once, so these
//! cells take `fetch_add`s ([`SharedHistogram`], [`SharedCounter`]); a call
//! costs two clock readings more, next to a store call's microseconds at
//! least.

use std::sync::Arc;
use std::time::Instant;

use sl_store::{
    ActionMeta, ActionRecord, Enqueued, InvocationRecord, Purged, Result, RouteRecord, RunCounts, Store, StoreError,
    Submit,
};

use super::cell::{SharedCounter, SharedHistogram, SECONDS};

/// The store's operations, as the `op` label names them: the methods of
/// [`Store`].
pub const STORE_OPS: [&str; 21] = [
    "create_action",
    "update_action",
    "get_action",
    "list_actions",
    "delete_action",
    "create_route",
    "delete_route",
    "list_routes",
    "put_invocations",
    "enqueue_invocations",
    "get_invocation",
    "list_invocations",
    "claim_invocations",
    "release_running",
    "count_queued",
    "oldest_queued",
    "purge_invocations",
    "invocation_bytes",
    "purge_oldest_invocations",
    "add_run_counts",
    "run_counts",
];

/// The latency and failures of calls of one kind: a store operation, or
/// the calls of one plugin.
#[derive(Debug)]
pub struct CallMetrics {
    pub(super) duration: SharedHistogram,
    pub(super) errors: SharedCounter,
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self { duration: SharedHistogram::new(&SECONDS), errors: SharedCounter::default() }
    }
}

impl CallMetrics {
    /// Records a call that began at `start` and `failed` or not.
    pub fn record(&self, start: Instant, failed: bool) {
        self.duration.record_time(start.elapsed());
        if failed {
            self.errors.inc();
        }
    }
}

/// Every store operation's [`CallMetrics`], by [`STORE_OPS`] index.
#[derive(Debug)]
pub struct StoreMetrics {
    pub(super) ops: [CallMetrics; STORE_OPS.len()],
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self { ops: std::array::from_fn(|_| CallMetrics::default()) }
    }
}

/// A [`Store`] whose calls are timed into [`StoreMetrics`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<StoreMetrics>,
}

impl MeteredStore {
    /// `inner`, timed into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<StoreMetrics>) -> Self {
        Self { inner, metrics }
    }

    /// Runs `call`, timed as operation `op` (its index in [`STORE_OPS`]).
    /// Failures are the store's own (unavailable, corrupt), not answers a
    /// client caused (a conflict, a name taken or missing).
    fn timed<T>(&self, op: usize, call: impl FnOnce(&dyn Store) -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let r = call(&*self.inner);
        let failed = matches!(r, Err(StoreError::Unavailable(_) | StoreError::Corrupt(_)));
        self.metrics.ops[op].record(start, failed);
        r
    }
}

impl Store for MeteredStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn create_action(&self, action: &ActionRecord) -> Result<()> {
        self.timed(0, |s| s.create_action(action))
    }
    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()> {
        self.timed(1, |s| s.update_action(action, expected_version))
    }
    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>> {
        self.timed(2, |s| s.get_action(name))
    }
    fn list_actions(&self) -> Result<Vec<ActionMeta>> {
        self.timed(3, |s| s.list_actions())
    }
    fn delete_action(&self, name: &str) -> Result<bool> {
        self.timed(4, |s| s.delete_action(name))
    }
    fn create_route(&self, route: &RouteRecord) -> Result<()> {
        self.timed(5, |s| s.create_route(route))
    }
    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool> {
        self.timed(6, |s| s.delete_route(method, host, path))
    }
    fn list_routes(&self) -> Result<Vec<RouteRecord>> {
        self.timed(7, |s| s.list_routes())
    }
    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()> {
        self.timed(8, |s| s.put_invocations(records))
    }
    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>> {
        self.timed(9, |s| s.enqueue_invocations(submits))
    }
    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        self.timed(10, |s| s.get_invocation(id))
    }
    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        self.timed(11, |s| s.list_invocations(action, limit))
    }
    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        self.timed(12, |s| s.claim_invocations(owner, limit, now_ms, lease_ms))
    }
    fn release_running(&self) -> Result<u64> {
        self.timed(13, |s| s.release_running())
    }
    fn count_queued(&self) -> Result<u64> {
        self.timed(14, |s| s.count_queued())
    }
    fn oldest_queued(&self) -> Result<Option<i64>> {
        self.timed(15, |s| s.oldest_queued())
    }
    fn purge_invocations(&self, before_ms: i64) -> Result<u64> {
        self.timed(16, |s| s.purge_invocations(before_ms))
    }
    fn invocation_bytes(&self) -> Result<u64> {
        self.timed(17, |s| s.invocation_bytes())
    }
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged> {
        self.timed(18, |s| s.purge_oldest_invocations(bytes, max_records))
    }
    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()> {
        self.timed(19, |s| s.add_run_counts(counts))
    }
    fn run_counts(&self, action: &str) -> Result<RunCounts> {
        self.timed(20, |s| s.run_counts(action))
    }

    fn events(&self) -> &dyn sl_store::Events {
        self.inner.events()
    }

    fn schedules(&self) -> &dyn sl_store::Schedules {
        self.inner.schedules()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::cell::Snapshot;

    /// Each method passes the index of its own name in `STORE_OPS`.
    #[test]
    fn each_method_is_timed_under_its_own_name() {
        let src = include_str!("store.rs");
        for (i, op) in STORE_OPS.iter().enumerate() {
            let call = format!("self.timed({i}, |s| s.{op}(");
            assert!(src.contains(&call), "{op} is not timed as operation {i}");
        }
    }

    #[test]
    fn every_call_is_timed_under_its_operation_and_failures_counted() {
        let metrics = Arc::new(StoreMetrics::default());
        let store = MeteredStore::new(Arc::new(sl_store::MemoryStore::new()), Arc::clone(&metrics));
        assert_eq!(store.count_queued().unwrap(), 0);
        assert_eq!(store.count_queued().unwrap(), 0);
        assert!(store.get_action("nope").unwrap().is_none());
        let action = ActionRecord {
            name: "nope".into(),
            version: 8,
            source: Vec::new(),
            bytecode: Vec::new(),
            checksum: String::new(),
            limits: Default::default(),
            created: 0,
            updated: 0,
        };
        assert!(store.update_action(&action, 7).is_err(), "no such action: the client's error, not the store's");
        let at = |op: &str| STORE_OPS.iter().position(|&o| o == op).unwrap();
        let count = |op: &str| {
            let mut s = Snapshot::default();
            metrics.ops[at(op)].duration.add_to(&mut s);
            s.count()
        };
        assert_eq!(count("count_queued"), 2);
        assert_eq!(count("get_action"), 1);
        assert_eq!(count("update_action"), 1);
        assert_eq!(count("list_routes"), 0);
        assert_eq!(metrics.ops[at("update_action")].errors.get(), 0);
        assert_eq!(metrics.ops[at("get_action")].errors.get(), 0);

        // A store that cannot be reached: its failures are counted.
        let down = MeteredStore::new(Arc::new(Down(sl_store::MemoryStore::new())), Arc::clone(&metrics));
        assert!(down.get_action("a").is_err() && down.count_queued().is_err());
        assert_eq!(metrics.ops[at("get_action")].errors.get(), 1);
        assert_eq!(metrics.ops[at("count_queued")].errors.get(), 1);
        assert_eq!(count("count_queued"), 3);
    }

    /// A store whose every call fails as an unreachable one does (events
    /// and schedules are not timed: they go to a memory store).
    struct Down(sl_store::MemoryStore);

    fn down<T>() -> Result<T> {
        Err(StoreError::Unavailable("down".into()))
    }

    impl Store for Down {
        fn kind(&self) -> &'static str {
            "down"
        }
        fn create_action(&self, _: &ActionRecord) -> Result<()> {
            down()
        }
        fn update_action(&self, _: &ActionRecord, _: i64) -> Result<()> {
            down()
        }
        fn get_action(&self, _: &str) -> Result<Option<ActionRecord>> {
            down()
        }
        fn list_actions(&self) -> Result<Vec<ActionMeta>> {
            down()
        }
        fn delete_action(&self, _: &str) -> Result<bool> {
            down()
        }
        fn create_route(&self, _: &RouteRecord) -> Result<()> {
            down()
        }
        fn delete_route(&self, _: &str, _: &str, _: &str) -> Result<bool> {
            down()
        }
        fn list_routes(&self) -> Result<Vec<RouteRecord>> {
            down()
        }
        fn put_invocations(&self, _: &[InvocationRecord]) -> Result<()> {
            down()
        }
        fn enqueue_invocations(&self, _: &[Submit]) -> Result<Vec<Enqueued>> {
            down()
        }
        fn get_invocation(&self, _: &str) -> Result<Option<InvocationRecord>> {
            down()
        }
        fn list_invocations(&self, _: Option<&str>, _: usize) -> Result<Vec<InvocationRecord>> {
            down()
        }
        fn claim_invocations(&self, _: &str, _: usize, _: i64, _: i64) -> Result<Vec<InvocationRecord>> {
            down()
        }
        fn release_running(&self) -> Result<u64> {
            down()
        }
        fn count_queued(&self) -> Result<u64> {
            down()
        }
        fn oldest_queued(&self) -> Result<Option<i64>> {
            down()
        }
        fn purge_invocations(&self, _: i64) -> Result<u64> {
            down()
        }
        fn invocation_bytes(&self) -> Result<u64> {
            down()
        }
        fn purge_oldest_invocations(&self, _: u64, _: usize) -> Result<Purged> {
            down()
        }
        fn add_run_counts(&self, _: &[RunCounts]) -> Result<()> {
            down()
        }
        fn run_counts(&self, _: &str) -> Result<RunCounts> {
            down()
        }
        fn events(&self) -> &dyn sl_store::Events {
            &self.0
        }
        fn schedules(&self) -> &dyn sl_store::Schedules {
            &self.0
        }
    }
}
