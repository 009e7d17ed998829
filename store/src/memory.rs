//! The in-memory backend (`Nulldb {}` in config.lua): development only,
//! everything is lost when the process exits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::{
    ActionMeta, ActionRecord, InvocationRecord, InvocationStatus, Purged, Result, RouteRecord, Store, StoreError,
};

/// A [`Store`] that keeps everything in memory behind one mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Actions by name; a `BTreeMap` keeps them sorted as `list_actions` wants.
    actions: BTreeMap<String, ActionRecord>,
    /// Routes by [`route_key`]; the key order is the one `list_routes` wants.
    routes: BTreeMap<RouteKey, RouteRecord>,
    /// Invocation records by enqueue sequence number (first put, first claimed).
    invocations: BTreeMap<u64, InvocationRecord>,
    /// Sequence number of each invocation id.
    seq_of: HashMap<String, u64>,
    /// The sequence number the next new invocation gets.
    next_seq: u64,
    /// [`InvocationRecord::stored_size`] of each invocation, by sequence
    /// number, and their sum.
    sizes: HashMap<u64, u64>,
    bytes: u64,
}

impl Inner {
    /// Removes the invocation with this sequence number; returns its size.
    fn remove_invocation(&mut self, seq: u64) -> u64 {
        if let Some(rec) = self.invocations.remove(&seq) {
            self.seq_of.remove(&rec.id);
        }
        let size = self.sizes.remove(&seq).unwrap_or(0);
        self.bytes -= size;
        size
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation below completes before it can panic, so the data
        // behind a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A route's (host, path, method): its identity, in listing order.
type RouteKey = (String, String, String);

fn route_key(method: &str, host: &str, path: &str) -> RouteKey {
    (host.to_owned(), path.to_owned(), method.to_owned())
}

/// Whether `claim_invocations` may take this record at `now_ms`.
fn runnable(rec: &InvocationRecord, now_ms: i64) -> bool {
    match rec.status {
        InvocationStatus::Queued => true,
        // A running record without a lease is not claimable: SQL's
        // `NULL < now` is not true either.
        InvocationStatus::Running => rec.lease_until.is_some_and(|lease| lease < now_ms),
        InvocationStatus::Succeeded | InvocationStatus::Failed => false,
    }
}

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn create_action(&self, action: &ActionRecord) -> Result<()> {
        let mut inner = self.lock();
        if inner.actions.contains_key(&action.name) {
            return Err(StoreError::AlreadyExists(action.name.clone()));
        }
        inner.actions.insert(action.name.clone(), action.clone());
        Ok(())
    }

    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()> {
        let mut inner = self.lock();
        let stored = inner.actions.get_mut(&action.name).ok_or_else(|| StoreError::NotFound(action.name.clone()))?;
        if stored.version != expected_version {
            return Err(StoreError::Conflict {
                name: action.name.clone(),
                expected: expected_version,
                found: stored.version,
            });
        }
        *stored = action.clone();
        Ok(())
    }

    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>> {
        Ok(self.lock().actions.get(name).cloned())
    }

    fn list_actions(&self) -> Result<Vec<ActionMeta>> {
        Ok(self.lock().actions.values().map(ActionRecord::meta).collect())
    }

    fn delete_action(&self, name: &str) -> Result<bool> {
        Ok(self.lock().actions.remove(name).is_some())
    }

    fn create_route(&self, route: &RouteRecord) -> Result<()> {
        let mut inner = self.lock();
        let key = route_key(&route.method, &route.host, &route.path);
        if inner.routes.contains_key(&key) {
            return Err(StoreError::AlreadyExists(route.label()));
        }
        inner.routes.insert(key, route.clone());
        Ok(())
    }

    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool> {
        Ok(self.lock().routes.remove(&route_key(method, host, path)).is_some())
    }

    fn list_routes(&self) -> Result<Vec<RouteRecord>> {
        Ok(self.lock().routes.values().cloned().collect())
    }

    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()> {
        let mut inner = self.lock();
        for rec in records {
            let seq = match inner.seq_of.get(&rec.id) {
                Some(&seq) => seq,
                None => {
                    let seq = inner.next_seq;
                    inner.next_seq += 1;
                    inner.seq_of.insert(rec.id.clone(), seq);
                    seq
                }
            };
            let size = rec.stored_size();
            let old = inner.sizes.insert(seq, size).unwrap_or(0);
            inner.bytes = inner.bytes - old + size;
            inner.invocations.insert(seq, rec.clone());
        }
        Ok(())
    }

    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        let inner = self.lock();
        Ok(inner.seq_of.get(id).and_then(|seq| inner.invocations.get(seq)).cloned())
    }

    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        let inner = self.lock();
        let mut found: Vec<(u64, &InvocationRecord)> = inner
            .invocations
            .iter()
            .filter(|(_, rec)| action.is_none_or(|name| rec.action == name))
            .map(|(&seq, rec)| (seq, rec))
            .collect();
        // Newest first: by `created`, then by insertion order.
        found.sort_unstable_by(|(seq_a, a), (seq_b, b)| (b.created, seq_b).cmp(&(a.created, seq_a)));
        Ok(found.into_iter().take(limit).map(|(_, rec)| rec.clone()).collect())
    }

    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        let mut inner = self.lock();
        let mut claimed = Vec::new();
        // `invocations` iterates in enqueue order.
        for rec in inner.invocations.values_mut().filter(|rec| runnable(rec, now_ms)).take(limit) {
            rec.status = InvocationStatus::Running;
            rec.owner = Some(owner.to_owned());
            rec.started = Some(now_ms);
            rec.lease_until = Some(now_ms.saturating_add(lease_ms));
            rec.attempts = rec.attempts.saturating_add(1);
            claimed.push(rec.clone());
        }
        Ok(claimed)
    }

    fn release_running(&self) -> Result<u64> {
        let mut inner = self.lock();
        let mut released = 0;
        for rec in inner.invocations.values_mut().filter(|rec| rec.status == InvocationStatus::Running) {
            rec.lease_until = Some(0);
            released += 1;
        }
        Ok(released)
    }

    fn count_queued(&self) -> Result<u64> {
        Ok(self.lock().invocations.values().filter(|rec| rec.status == InvocationStatus::Queued).count() as u64)
    }

    fn purge_invocations(&self, before_ms: i64) -> Result<u64> {
        let mut inner = self.lock();
        let doomed: Vec<u64> = inner
            .invocations
            .iter()
            .filter(|(_, rec)| rec.status.is_terminal() && rec.finished.is_some_and(|finished| finished < before_ms))
            .map(|(&seq, _)| seq)
            .collect();
        for &seq in &doomed {
            inner.remove_invocation(seq);
        }
        Ok(doomed.len() as u64)
    }

    fn invocation_bytes(&self) -> Result<u64> {
        Ok(self.lock().bytes)
    }

    /// Sorts every terminal record: fine for a development store.
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged> {
        let mut inner = self.lock();
        let mut oldest: Vec<(i64, u64)> = inner
            .invocations
            .iter()
            .filter(|(_, rec)| rec.status.is_terminal())
            .map(|(&seq, rec)| (rec.finished.unwrap_or(i64::MIN), seq))
            .collect();
        oldest.sort_unstable();
        let mut purged = Purged::default();
        for (_, seq) in oldest {
            if purged.bytes >= bytes || purged.records as usize >= max_records {
                break;
            }
            purged.bytes += inner.remove_invocation(seq);
            purged.records += 1;
        }
        Ok(purged)
    }
}
