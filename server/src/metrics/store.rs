//! Store calls timed by operation: [`MeteredStore`] passes every call to
//! the store it wraps and records how long it took, and whether it failed.
//! Store calls run on the blocking pools of every worker at once, so these
//! cells take `fetch_add`s ([`SharedHistogram`], [`SharedCounter`]); a call
//! costs two clock readings more, next to a store call's microseconds at
//! least.

use std::sync::Arc;
use std::time::Instant;

use sl_store::{
    ActionMeta, ActionRecord, Enqueued, InvocationRecord, Purged, Result, RouteRecord, RunCounts, Store, Submit,
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
        self.duration.record(start.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64);
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

    fn timed<T>(&self, op: &str, call: impl FnOnce(&dyn Store) -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let r = call(&*self.inner);
        if let Some(i) = STORE_OPS.iter().position(|&o| o == op) {
            self.metrics.ops[i].record(start, r.is_err());
        }
        r
    }
}

impl Store for MeteredStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn create_action(&self, action: &ActionRecord) -> Result<()> {
        self.timed("create_action", |s| s.create_action(action))
    }
    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()> {
        self.timed("update_action", |s| s.update_action(action, expected_version))
    }
    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>> {
        self.timed("get_action", |s| s.get_action(name))
    }
    fn list_actions(&self) -> Result<Vec<ActionMeta>> {
        self.timed("list_actions", |s| s.list_actions())
    }
    fn delete_action(&self, name: &str) -> Result<bool> {
        self.timed("delete_action", |s| s.delete_action(name))
    }
    fn create_route(&self, route: &RouteRecord) -> Result<()> {
        self.timed("create_route", |s| s.create_route(route))
    }
    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool> {
        self.timed("delete_route", |s| s.delete_route(method, host, path))
    }
    fn list_routes(&self) -> Result<Vec<RouteRecord>> {
        self.timed("list_routes", |s| s.list_routes())
    }
    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()> {
        self.timed("put_invocations", |s| s.put_invocations(records))
    }
    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>> {
        self.timed("enqueue_invocations", |s| s.enqueue_invocations(submits))
    }
    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        self.timed("get_invocation", |s| s.get_invocation(id))
    }
    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        self.timed("list_invocations", |s| s.list_invocations(action, limit))
    }
    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        self.timed("claim_invocations", |s| s.claim_invocations(owner, limit, now_ms, lease_ms))
    }
    fn release_running(&self) -> Result<u64> {
        self.timed("release_running", |s| s.release_running())
    }
    fn count_queued(&self) -> Result<u64> {
        self.timed("count_queued", |s| s.count_queued())
    }
    fn oldest_queued(&self) -> Result<Option<i64>> {
        self.timed("oldest_queued", |s| s.oldest_queued())
    }
    fn purge_invocations(&self, before_ms: i64) -> Result<u64> {
        self.timed("purge_invocations", |s| s.purge_invocations(before_ms))
    }
    fn invocation_bytes(&self) -> Result<u64> {
        self.timed("invocation_bytes", |s| s.invocation_bytes())
    }
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged> {
        self.timed("purge_oldest_invocations", |s| s.purge_oldest_invocations(bytes, max_records))
    }
    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()> {
        self.timed("add_run_counts", |s| s.add_run_counts(counts))
    }
    fn run_counts(&self, action: &str) -> Result<RunCounts> {
        self.timed("run_counts", |s| s.run_counts(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::cell::Snapshot;

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
        assert!(store.update_action(&action, 7).is_err(), "no such action");
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
        assert_eq!(metrics.ops[at("update_action")].errors.get(), 1);
        assert_eq!(metrics.ops[at("get_action")].errors.get(), 0);
    }
}
