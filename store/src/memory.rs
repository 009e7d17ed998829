//! The in-memory backend (`Nulldb {}` in config.lua): development only,
//! everything is lost when the process exits.
//!
//! The [`Store`] state is behind one mutex, the [`Events`](crate::Events)
//! state (in `events`) behind another, and the
//! [`Schedules`](crate::Schedules) state (in `schedules`) behind a third,
//! so that none waits for another.

mod events;
mod schedules;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::{
    ActionMeta, ActionRecord, Enqueued, InvocationRecord, InvocationStatus, Purged, Result, RouteRecord, RunCounts,
    Store, StoreError, Submit,
};

/// A [`Store`], [`Events`](crate::Events) and
/// [`Schedules`](crate::Schedules) backend that keeps everything in
/// memory, behind a mutex for each.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Topics, subscriptions and dead letters.
    events: Mutex<events::EventsState>,
    /// Schedules and how far each has fired.
    schedules: Mutex<schedules::SchedulesState>,
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
    /// The queue, so that claims and counts cost what they take: sequence
    /// numbers of `Queued` records, and (lease end, sequence number) of
    /// `Running` records with a lease.
    queued: BTreeSet<u64>,
    leased: BTreeSet<(i64, u64)>,
    /// Idempotency keys held by stored records: the sequence number and
    /// fingerprint of each key's record, and the key of each record.
    keys: HashMap<String, (u64, String)>,
    key_of: HashMap<u64, String>,
    /// Run counters by action.
    runs: HashMap<String, RunCounts>,
}

impl Inner {
    /// Stores `rec` under `seq`, keeping the queue indexes and sizes.
    fn set_invocation(&mut self, seq: u64, rec: InvocationRecord) {
        self.unindex(seq);
        match rec.status {
            InvocationStatus::Queued => {
                self.queued.insert(seq);
            }
            InvocationStatus::Running => {
                if let Some(lease) = rec.lease_until {
                    self.leased.insert((lease, seq));
                }
            }
            InvocationStatus::Succeeded | InvocationStatus::Failed => {}
        }
        let size = rec.stored_size();
        let old = self.sizes.insert(seq, size).unwrap_or(0);
        self.bytes = self.bytes - old + size;
        self.invocations.insert(seq, rec);
    }

    /// Takes the record under `seq` out of the queue indexes.
    fn unindex(&mut self, seq: u64) {
        if let Some(old) = self.invocations.get(&seq) {
            match (old.status, old.lease_until) {
                (InvocationStatus::Queued, _) => {
                    self.queued.remove(&seq);
                }
                (InvocationStatus::Running, Some(lease)) => {
                    self.leased.remove(&(lease, seq));
                }
                _ => {}
            }
        }
    }

    /// The sequence number of the record with this id, a new one if none.
    fn seq_for(&mut self, id: &str) -> u64 {
        if let Some(&seq) = self.seq_of.get(id) {
            return seq;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seq_of.insert(id.to_owned(), seq);
        seq
    }

    /// Removes the invocation with this sequence number; returns its size.
    fn remove_invocation(&mut self, seq: u64) -> u64 {
        self.unindex(seq);
        if let Some(rec) = self.invocations.remove(&seq) {
            self.seq_of.remove(&rec.id);
        }
        if let Some(key) = self.key_of.remove(&seq) {
            self.keys.remove(&key);
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
            let seq = inner.seq_for(&rec.id);
            inner.set_invocation(seq, rec.clone());
        }
        Ok(())
    }

    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>> {
        let mut inner = self.lock();
        let mut answers = Vec::with_capacity(submits.len());
        for Submit { record, key } in submits {
            if inner.seq_of.contains_key(&record.id) {
                answers.push(Enqueued::New);
                continue;
            }
            if let Some(key) = key {
                if let Some((seq, fingerprint)) = inner.keys.get(&key.key) {
                    let id = inner.invocations.get(seq).map(|r| r.id.clone()).unwrap_or_default();
                    answers.push(Enqueued::Existing { id, fingerprint: fingerprint.clone() });
                    continue;
                }
            }
            let seq = inner.seq_for(&record.id);
            inner.set_invocation(seq, record.clone());
            if let Some(key) = key {
                inner.keys.insert(key.key.clone(), (seq, key.fingerprint.clone()));
                inner.key_of.insert(seq, key.key.clone());
            }
            answers.push(Enqueued::New);
        }
        Ok(answers)
    }

    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        let inner = self.lock();
        Ok(inner.seq_of.get(id).and_then(|seq| inner.invocations.get(seq)).cloned())
    }

    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        let inner = self.lock();
        // Newest first: the reverse of the order they were stored in.
        Ok(inner
            .invocations
            .values()
            .rev()
            .filter(|rec| action.is_none_or(|name| rec.action == name))
            .take(limit)
            .cloned()
            .collect())
    }

    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        let mut inner = self.lock();
        // The runnable records in enqueue order: the first `limit` queued
        // ones and those whose lease ended, merged by sequence number.
        let mut runnable: Vec<u64> = inner.queued.iter().take(limit).copied().collect();
        runnable.extend(inner.leased.range(..(now_ms, 0)).map(|&(_, seq)| seq));
        runnable.sort_unstable();
        runnable.truncate(limit);
        let mut claimed = Vec::with_capacity(runnable.len());
        for seq in runnable {
            let Some(mut rec) = inner.invocations.get(&seq).cloned() else { continue };
            rec.status = InvocationStatus::Running;
            rec.owner = Some(owner.to_owned());
            rec.started = Some(now_ms);
            rec.lease_until = Some(now_ms.saturating_add(lease_ms));
            rec.attempts = rec.attempts.saturating_add(1);
            claimed.push(rec.clone());
            inner.set_invocation(seq, rec);
        }
        Ok(claimed)
    }

    fn release_running(&self) -> Result<u64> {
        let mut inner = self.lock();
        let running: Vec<u64> = inner
            .invocations
            .iter()
            .filter(|(_, rec)| rec.status == InvocationStatus::Running)
            .map(|(&seq, _)| seq)
            .collect();
        for &seq in &running {
            if let Some(mut rec) = inner.invocations.get(&seq).cloned() {
                rec.lease_until = Some(0);
                inner.set_invocation(seq, rec);
            }
        }
        Ok(running.len() as u64)
    }

    fn count_queued(&self) -> Result<u64> {
        Ok(self.lock().queued.len() as u64)
    }

    fn oldest_queued(&self) -> Result<Option<i64>> {
        let inner = self.lock();
        Ok(inner.queued.first().and_then(|seq| inner.invocations.get(seq)).map(|rec| rec.created))
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

    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()> {
        let mut inner = self.lock();
        for c in counts {
            inner.runs.entry(c.action.clone()).or_insert_with(|| RunCounts::new(&c.action)).add(c);
        }
        Ok(())
    }

    fn run_counts(&self, action: &str) -> Result<RunCounts> {
        Ok(self.lock().runs.get(action).cloned().unwrap_or_else(|| RunCounts::new(action)))
    }

    fn events(&self) -> &dyn crate::Events {
        self
    }

    fn schedules(&self) -> &dyn crate::Schedules {
        self
    }
}
