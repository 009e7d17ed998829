//! The asynchronous queue's consumer on this worker: claims queued
//! invocations from the store while it has room
//! (`Invocations.concurrency`), and starts them. Submitting is the API's
//! (`POST /actions/:name`); finished invocations are recorded by the
//! driver ([`crate::invoke`]), which also makes room for the next claim.

use std::sync::Arc;

use sl_store::{InvocationRecord, StoreError};
use tracing::warn;

use crate::exec::{Job, Reply};
use crate::ids::now_ms;
use crate::invoke;
use crate::state::State;

/// Claims queued invocations from the store while this worker has room.
pub(crate) fn kick(st: &mut State) {
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
            st.consumer.claim_failed();
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
