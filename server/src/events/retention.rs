//! Retention: every [`SWEEP_EVERY`], the first worker of each process
//! deletes the messages past their topic's age and size bounds
//! (`Events::purge_messages`). Several servers sweeping one store at once
//! is safe: a purge deletes what is past the bounds, whoever runs it.
//! Subscriptions do not hold messages back: a message deleted before a
//! subscription read it is never delivered to it (its pending messages
//! keep copies, so a retry is never lost).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::ids::now_ms;
use crate::state::State;

/// How often the topics are swept.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Sweeps the topics when due (on the first worker only).
pub(crate) fn tick(st: &mut State, now: Instant) {
    if st.peers.metrics().1 != 0 || st.deliveries.sweeping {
        return;
    }
    if st.deliveries.swept.is_some_and(|t| now.duration_since(t) < SWEEP_EVERY) {
        return;
    }
    st.deliveries.sweeping = true;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let events = store.events();
        let result = events.list_topics().and_then(|topics| {
            let now = now_ms();
            let mut deleted = 0;
            for t in topics.iter().filter(|t| t.topic.retention_ms.is_some() || t.topic.retention_bytes.is_some()) {
                let before = t.topic.retention_ms.map(|ms| now.saturating_sub(ms));
                deleted += events.purge_messages(&t.topic.name, before, t.topic.retention_bytes)?;
            }
            Ok(deleted)
        });
        move |st: &mut State| {
            st.deliveries.sweeping = false;
            st.deliveries.swept = Some(Instant::now());
            match result {
                Ok(0) => {}
                Ok(n) => debug!(messages = n, "retention deleted messages"),
                Err(e) => warn!("cannot apply the topics' retention: {e}"),
            }
        }
    });
}
