//! The asynchronous queue's consumer on this worker: claims queued
//! invocations from the store while it has room
//! (`Invocations.concurrency`), and starts them. Submitting is the API's
//! (`POST /actions/:name`); finished invocations are recorded by the
//! driver ([`crate::invoke`]), which also makes room for the next claim.

use std::sync::Arc;

use sl_store::{InvocationRecord, InvocationStatus, StoreError};
use tracing::warn;

use crate::exec::{Job, Reply};
use crate::ids::now_ms;
use crate::invoke;
use crate::state::{nominal_record_size, State};

/// Starts the invocations this worker claimed for itself while it has
/// room, then claims queued ones from the store while it has more.
pub(crate) fn kick(st: &mut State) {
    start_ready(st);
    let Some(room) = st.consumer.start_claim(st.cfg.invocations.concurrency) else { return };
    let store = Arc::clone(&st.store);
    let owner = st.owner.clone();
    let lease = st.cfg.lease_ms() as i64;
    st.pool.spawn(move || {
        let r = store.claim_invocations(&owner, room, now_ms(), lease);
        move |st: &mut State| claimed(st, r, room)
    });
}

/// A claim for `asked` invocations ended: start what it got.
fn claimed(st: &mut State, result: Result<Vec<InvocationRecord>, StoreError>, asked: usize) {
    let records = match result {
        Ok(r) => r,
        Err(e) => {
            st.consumer.claim_failed(asked);
            warn!("cannot claim queued invocations: {e}");
            return;
        }
    };
    let again = st.consumer.claimed(asked, records.len());
    for rec in records {
        let job = Job::new(rec, Reply::Queue);
        if job.record.attempts > st.cfg.invocations.max_attempts {
            let msg = format!(
                "abandoned: the server stopped while running this invocation {} times",
                job.record.attempts - 1
            );
            invoke::fail(st, job, "abandoned", &msg);
        } else {
            invoke::start(st, job);
        }
    }
    if again {
        kick(st);
    }
}

/// Starts ready invocations (claimed by this worker's commits of submits)
/// while fewer than `Invocations.concurrency` run. One that waited so long
/// behind slow runs that its lease leaves less than half the time to
/// spare after its longest possible run that a claim leaves goes back to
/// the queue instead, so that no other server takes it over while it runs
/// here (with the default lease, `max_timeout` + 10 s: a wait of 5 s).
fn start_ready(st: &mut State) {
    let longest = st.cfg.limits.max_timeout as i64;
    let spare = (st.cfg.lease_ms() as i64).saturating_sub(longest) / 2;
    let margin = longest + spare;
    while let Some(rec) = st.consumer.next_ready(st.cfg.invocations.concurrency) {
        if rec.lease_until.is_some_and(|until| now_ms().saturating_add(margin) > until) {
            st.consumer.finished();
            requeue(st, rec);
            continue;
        }
        invoke::start(st, Job::new(rec, Reply::Queue));
    }
}

/// Puts an invocation this worker claimed but did not start back in the
/// queue, for any server to claim once the record is written (the consumer
/// is told then: `housekeeping::wrote_records`).
fn requeue(st: &mut State, mut rec: InvocationRecord) {
    rec.status = InvocationStatus::Queued;
    rec.owner = None;
    rec.lease_until = None;
    rec.started = None;
    rec.attempts = rec.attempts.saturating_sub(1);
    let size = nominal_record_size(&rec);
    st.records.add_known(rec, size);
}

/// The worker stops: what it claimed for itself and did not start goes
/// back to the queue (written with the last records).
pub(crate) fn release_ready(st: &mut State) {
    for rec in st.consumer.take_ready() {
        st.consumer.release();
        requeue(st, rec);
    }
}
