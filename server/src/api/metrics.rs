//! `GET /metrics`: every worker's metrics in the Prometheus text format
//! (see [`crate::metrics`]), with the queue's depth and age read from the
//! store. Made on the pool: the store is asked, and the text is written
//! off the event loop.

use std::sync::Arc;

use crate::http::Response;
use crate::ids::now_ms;
use sl_store::{Store, StoreError};

use crate::metrics::{Extra, SubscriptionGauges, TopicGauges, CONTENT_TYPE};
use crate::reactor::ConnRef;
use crate::state::State;

/// Answers later with the exposition, or a 404 when metrics are off.
pub(super) fn get(st: &State, conn: ConnRef) -> Result<Option<Response>, Response> {
    if !st.cfg.server.metrics {
        return Err(Response::error(404, "not_found", "metrics are off on this server (Server { metrics = false })"));
    }
    let registry = Arc::clone(st.peers.metrics().0);
    st.answer_later(conn, move |store| {
        // A store that cannot answer leaves the queue's two gauges out;
        // the rest is the server's own.
        let queue = match (store.count_queued(), store.oldest_queued()) {
            (Ok(depth), Ok(oldest)) => {
                let age = oldest.map_or(0.0, |created| now_ms().saturating_sub(created).max(0) as f64 / 1000.0);
                Some((depth, age))
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("metrics: cannot read the queue from the store: {e}");
                None
            }
        };
        let (topics, subscriptions) = match event_gauges(store) {
            Ok((t, s)) => (Some(t), Some(s)),
            Err(e) => {
                tracing::warn!("metrics: cannot read the topics and subscriptions from the store: {e}");
                (None, None)
            }
        };
        let mut resp = Response::text(200, "");
        resp.content_type = CONTENT_TYPE.into();
        resp.body = registry.render(&Extra { queue, topics, subscriptions }).into_bytes();
        resp
    });
    Ok(None)
}

/// The topics' sizes, and each subscription's backlog (the log past its
/// cursors, and its pending messages), lag (the age of the oldest message
/// it has not finished: one read of the log per partition behind) and
/// dead letters.
fn event_gauges(store: &dyn Store) -> Result<(Vec<TopicGauges>, Vec<SubscriptionGauges>), StoreError> {
    let events = store.events();
    let now = now_ms();
    let topics = events.list_topics()?;
    let subs = events.list_subscriptions(now)?;
    let mut gauges = Vec::with_capacity(subs.len());
    for s in &subs {
        let topic = topics.iter().find(|t| t.topic.name == s.subscription.topic);
        let mut backlog = 0;
        let mut oldest: Option<i64> = None;
        for (i, p) in s.partitions.iter().enumerate() {
            backlog += p.pending;
            let Some(log) = topic.and_then(|t| t.partitions.get(i)) else { continue };
            let cursor = p.cursor.max(log.first);
            if log.next > cursor {
                backlog += (log.next - cursor) as u64;
                if let Some(m) = events.read_messages(&s.subscription.topic, i as u32, cursor, 1, 1)?.first() {
                    oldest = Some(oldest.map_or(m.published, |o| o.min(m.published)));
                }
            }
        }
        // Pending messages are not read: the lag is of the log past the cursors.
        let lag_seconds = oldest.map_or(0.0, |t| now.saturating_sub(t).max(0) as f64 / 1000.0);
        gauges.push(SubscriptionGauges { name: s.subscription.name.clone(), backlog, lag_seconds, dead: s.dead });
    }
    let topics = topics
        .iter()
        .map(|t| TopicGauges { name: t.topic.name.clone(), messages: t.messages, bytes: t.bytes })
        .collect();
    Ok((topics, gauges))
}
