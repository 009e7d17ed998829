//! `GET /metrics`: every worker's metrics in the Prometheus text format
//! (see [`crate::metrics`]), with the queue's depth and age read from the
//! store. Made on the pool: the store is asked, and the text is written
//! off the event loop.

use std::sync::Arc;

use crate::http::Response;
use crate::ids::now_ms;
use crate::metrics::{Extra, CONTENT_TYPE};
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
        let mut resp = Response::text(200, "");
        resp.content_type = CONTENT_TYPE.into();
        resp.body = registry.render(&Extra { queue }).into_bytes();
        resp
    });
    Ok(None)
}
