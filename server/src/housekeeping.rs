//! A worker's housekeeping: keeping its caches in step with the other
//! workers and the store, answering clients that wait on `?wait=`, writing
//! invocation records in batches, and purging old ones.
//!
//! | what | when |
//! | --- | --- |
//! | changes told by other workers of this process | every turn, before requests are read ([`peer_messages`]) |
//! | records written, one batch at a time | every turn ([`flush_records`]) |
//! | waiters whose `wait` ran out | every tick (100 ms) |
//! | waiters' invocations looked up in the store (run by another server) | every 300 ms |
//! | cached actions and routes compared with the store | every 500 ms |
//! | queued invocations claimed | every second, and whenever there is room |
//! | run counters added to the store ([`flush_counts`]) | every second, and at stop |
//! | records older than `Invocations.retention` purged | every minute |
//! | the oldest finished records purged while their total is over `Invocations.store_budget` ([`trim_records`]) | when this process's count of bytes written passes it, every minute, and at start |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sl_store::RouteRecord;
use tracing::{debug, error, info, warn};

use crate::answer::record_response;
use crate::events;
use crate::http::Response;
use crate::ids::now_ms;
use crate::queue;
use crate::routes::RouteTable;
use crate::state::{self, PeerMsg, State};

/// How often cached actions are compared with the store, so that changes
/// made through another server (or another worker) are seen.
const ACTION_SYNC: Duration = Duration::from_millis(500);
/// How often waiters' invocations are looked up in the store (for
/// invocations run by another server).
const WAITER_POLL: Duration = Duration::from_millis(300);
/// How often queued invocations are claimed, whatever else happens.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// How often run counters are added to the store.
const COUNTS_EVERY: Duration = Duration::from_secs(1);
/// How often old records are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Most bytes of records in one batch written to the store.
const MAX_BATCH_BYTES: u64 = 4 << 20;
/// How long a stopping worker waits for its records to be written.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Takes in the changes other workers of this process made.
pub(crate) fn peer_messages(st: &mut State) {
    while let Some(msg) = st.peers.try_recv() {
        match msg {
            PeerMsg::ActionChanged(name) => st.exec.cache.invalidate(&name),
            PeerMsg::RoutesChanged => sync_routes(st),
            PeerMsg::Published { topic, partition } => events::deliver::poke(st, &topic, partition),
            PeerMsg::SubscriptionsChanged => events::deliver::sync(st),
        }
    }
}

/// An action was created, updated or deleted through this worker: forget
/// it here and in the other workers of this process, so that the next
/// invocation anywhere uses the new version.
pub(crate) fn action_changed(st: &mut State, name: &str) {
    st.exec.cache.invalidate(name);
    st.peers.tell(PeerMsg::ActionChanged(name.to_string()));
}

/// A route was added or deleted through this worker: reload the routes
/// here and in the other workers of this process.
pub(crate) fn routes_changed(st: &mut State) {
    sync_routes(st);
    st.peers.tell(PeerMsg::RoutesChanged);
}

/// The slower housekeeping, every tick of the loop.
pub(crate) fn tick(st: &mut State, now: Instant) {
    expire_waiters(st, now);
    let t = &mut st.timers;
    if now.duration_since(t.last_waiter_poll) >= WAITER_POLL {
        t.last_waiter_poll = now;
        poll_waiters(st);
    }
    let t = &mut st.timers;
    if now.duration_since(t.last_sync) >= ACTION_SYNC && !t.syncing {
        t.last_sync = now;
        sync_actions(st);
        if st.cfg.routes.is_some() {
            sync_routes(st);
        }
    }
    let t = &mut st.timers;
    if now.duration_since(t.last_claim) >= CLAIM_EVERY {
        t.last_claim = now;
        // Another server may have queued some.
        st.consumer.may_have_queued();
        queue::kick(st);
    }
    let t = &mut st.timers;
    if now.duration_since(t.last_counts) >= COUNTS_EVERY {
        t.last_counts = now;
        flush_counts(st);
    }
    let t = &mut st.timers;
    if now.duration_since(t.last_purge) >= PURGE_EVERY {
        t.last_purge = now;
        purge(st);
        trim_records(st);
    }
}

/// Invalidates cached actions whose stored version changed or that were
/// deleted.
fn sync_actions(st: &mut State) {
    if !st.exec.cache.has_cached() {
        return;
    }
    st.timers.syncing = true;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let r = store.list_actions();
        move |st: &mut State| {
            st.timers.syncing = false;
            match r {
                Ok(list) => {
                    let versions: HashMap<String, i64> = list.into_iter().map(|m| (m.name, m.version)).collect();
                    for name in st.exec.cache.stale_actions(&versions) {
                        debug!(action = %name, "action changed in the store; reloading");
                        st.exec.cache.invalidate(&name);
                    }
                }
                Err(e) => debug!("cannot compare cached actions with the store: {e}"),
            }
        }
    });
}

/// A route table built from stored routes. Routes that conflict with an
/// earlier one (created concurrently through two servers) are skipped.
pub(crate) fn table_of(routes: &[RouteRecord]) -> RouteTable<String> {
    let mut table = RouteTable::new();
    for r in routes {
        if let Err(e) = table.insert(&r.method, &r.host, &r.path, r.action.clone()) {
            warn!(route = %r.label(), "stored route not served: {e}");
        }
    }
    table
}

/// Reloads the route table from the store (other servers may have changed
/// it); the table is rebuilt only when the routes differ.
pub(crate) fn sync_routes(st: &mut State) {
    if st.routes_sync.running {
        st.routes_sync.again = true;
        return;
    }
    st.routes_sync.running = true;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let r = store.list_routes();
        move |st: &mut State| {
            st.routes_sync.running = false;
            match r {
                Ok(list) if list != st.routes_sync.last => {
                    debug!(routes = list.len(), "route table reloaded");
                    st.routes = table_of(&list);
                    st.routes_sync.last = list;
                }
                Ok(_) => {}
                Err(e) => debug!("cannot reload routes: {e}"),
            }
            if std::mem::take(&mut st.routes_sync.again) {
                sync_routes(st);
            }
        }
    });
}

/// Answers waiters whose invocation finished, wherever it ran.
fn poll_waiters(st: &mut State) {
    for id in st.waiters.ids() {
        let store = Arc::clone(&st.store);
        st.pool.spawn(move || {
            let r = store.get_invocation(&id);
            move |st: &mut State| {
                if let Ok(Some(rec)) = r {
                    if rec.status.is_terminal() {
                        let waiting = st.waiters.take(&rec.id);
                        if !waiting.is_empty() {
                            let resp = record_response(&rec, st.cfg.server.max_response);
                            for conn in waiting {
                                st.outbox.respond(conn, resp.clone());
                            }
                        }
                    }
                }
            }
        });
    }
}

/// Answers waiters whose `wait` ran out with what the store says now.
fn expire_waiters(st: &mut State, now: Instant) {
    for (id, conns) in st.waiters.take_expired(now) {
        let store = Arc::clone(&st.store);
        st.pool.spawn(move || {
            let r = store.get_invocation(&id);
            move |st: &mut State| {
                let resp = match r {
                    Ok(Some(rec)) => record_response(&rec, st.cfg.server.max_response),
                    Ok(None) => Response::error(404, "not_found", &format!("no invocation '{id}'")),
                    Err(e) => Response::error(503, "unavailable", &e.to_string()),
                };
                for conn in conns {
                    st.outbox.respond(conn, resp.clone());
                }
            }
        });
    }
}

/// Deletes records older than `Invocations.retention`.
fn purge(st: &mut State) {
    let store = Arc::clone(&st.store);
    let before = now_ms() - (st.cfg.invocations.retention as i64).saturating_mul(1000);
    st.pool.spawn(move || {
        let r = store.purge_invocations(before);
        move |_: &mut State| match r {
            Ok(0) => {}
            Ok(n) => info!(deleted = n, "purged old invocation records"),
            Err(e) => warn!("cannot purge invocation records: {e}"),
        }
    });
}

/// Most bytes of records written in one batch (at least one record is):
/// 4 MiB, and no more than an eighth of the store budget, so that a trim
/// that makes room for a batch keeps the records under the budget.
fn batch_bytes(budget: u64) -> usize {
    let max = if budget == 0 { MAX_BATCH_BYTES } else { (budget / 8).min(MAX_BATCH_BYTES) };
    max as usize
}

/// `Invocations.store_budget` in bytes (0: none).
fn budget_bytes(st: &State) -> u64 {
    st.cfg.invocations.store_budget.saturating_mul(1 << 20)
}

/// Reads the stored records' total and, if it is over the store budget,
/// purges the oldest finished records (see [`crate::state::trim_records`]),
/// unless a worker of this process is at it already.
fn trim_records(st: &mut State) {
    let Some(written) = st.peers.record_bytes().start_trim() else { return };
    let store = Arc::clone(&st.store);
    let budget = budget_bytes(st);
    st.pool.spawn(move || {
        let r = state::trim_records(&*store, budget, 0);
        move |st: &mut State| trimmed_records(st, written, budget, r)
    });
}

/// The end of a trim that started when this process had written `written`
/// bytes of records.
fn trimmed_records(st: &mut State, written: u64, budget: u64, r: Result<state::Trimmed, sl_store::StoreError>) {
    let bytes = st.peers.record_bytes();
    match r {
        Ok(t) => {
            let again = bytes.finish_trim(written, Some(t.after), budget);
            if t.purged.records > 0 {
                info!(
                    deleted = t.purged.records,
                    freed = t.purged.bytes,
                    before = t.before,
                    after = t.after,
                    budget,
                    "over the store budget: purged the oldest invocation records"
                );
            }
            if again {
                trim_records(st);
            }
        }
        Err(e) => {
            bytes.finish_trim(written, None, budget);
            warn!("cannot bring invocation records under the store budget: {e}");
        }
    }
}

/// Writes the records waiting, in one batch, if no write is under way.
/// A batch that would take the records over the store budget is written
/// after a trim that makes room for it, in the same job.
pub(crate) fn flush_records(st: &mut State) {
    // Called every turn, mostly with nothing to write.
    if !st.records.due() {
        return;
    }
    let budget = budget_bytes(st);
    let Some(batch) = st.records.take_batch(batch_bytes(budget)) else { return };
    let store = Arc::clone(&st.store);
    let room = st.records.in_flight_stored() as u64;
    let bytes = st.peers.record_bytes();
    let trim_first = if bytes.would_pass(room, budget) { bytes.start_trim() } else { None };
    st.pool.spawn(move || {
        let trimmed = trim_first.map(|written| (written, state::trim_records(&*store, budget, room)));
        let r = store.put_invocations(&batch);
        move |st: &mut State| {
            if let Some((written, t)) = trimmed {
                trimmed_records(st, written, budget, t);
            }
            wrote_records(st, batch, r);
        }
    });
}

/// The end of [`flush_records`]' job: the batch was written, or not.
fn wrote_records(st: &mut State, batch: Vec<sl_store::InvocationRecord>, r: Result<(), sl_store::StoreError>) {
    match r {
        Ok(()) => {
            // Invocations put back in the queue (`queue::requeue`) are
            // claimable from now on, not before.
            if batch.iter().any(|r| r.status == sl_store::InvocationStatus::Queued) {
                st.consumer.may_have_queued();
            }
            let bytes = st.records.stored(&batch) as u64;
            if st.peers.record_bytes().wrote(bytes, budget_bytes(st)) {
                trim_records(st);
            }
        }
        Err(e) => {
            error!(records = batch.len(), "cannot store invocation records, will retry in 1 s: {e}");
            let dropped = st.records.failed(batch, Instant::now());
            if dropped > 0 {
                warn!(dropped, "dropped records of blocking invocations");
            }
        }
    }
}

/// A commit of submits stored `bytes` of finished records (of runs that
/// ended before it): they count towards the store budget as the records
/// [`flush_records`] writes do.
pub(crate) fn wrote_finished(st: &mut State, bytes: u64) {
    if st.peers.record_bytes().wrote(bytes, budget_bytes(st)) {
        trim_records(st);
    }
}

/// Adds the run counters of the last second to the store, if no earlier
/// addition is under way (one that fails is added with the next).
pub(crate) fn flush_counts(st: &mut State) {
    let Some(batch) = st.runs.take() else { return };
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let r = store.add_run_counts(&batch);
        move |st: &mut State| match r {
            Ok(()) => st.runs.written(None),
            Err(e) => {
                warn!("cannot add run counters to the store, will retry in 1 s: {e}");
                st.runs.written(Some(batch));
            }
        }
    });
}

/// The worker is stopping: writes the records and run counters waiting,
/// for at most a few seconds, then stops the pool.
pub(crate) fn stop(st: &mut State) {
    info!("shutting down");
    queue::release_ready(st);
    flush_records(st);
    flush_counts(st);
    let deadline = Instant::now() + STOP_GRACE;
    while (st.records.unsaved() || st.runs.unsaved()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        st.run_completions();
        flush_records(st);
        flush_counts(st);
    }
    st.pool.shutdown();
}
