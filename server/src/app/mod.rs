//! The application a worker's reactor serves: SL's API and routes over one
//! worker's [`State`]. It implements the reactor's [`Service`]: requests
//! go to the API or to the web listener's routes by the listener they came
//! through, and each turn of the loop gives the invocations and the
//! housekeeping their share.

use std::sync::Arc;
use std::time::Instant;

use sl_store::Store;

use crate::config::Config;
use crate::http::{Head, Request, Response};
use crate::plugin::PluginHost;
use crate::reactor::{ConnRef, Outbox, Service, Side, Wake};
use crate::state::{Peers, State};
use crate::{api, events, housekeeping, invoke, queue, schedules, web};

/// SL's application on one worker.
pub struct App {
    st: State,
}

impl App {
    /// The application of one worker. `peers` links it with the other
    /// workers of the process; `wake` wakes its reactor (see
    /// [`Reactor::waker`](crate::reactor::Reactor::waker)).
    pub fn new(
        cfg: Arc<Config>,
        store: Arc<dyn Store>,
        plugins: Arc<PluginHost>,
        peers: Peers,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let mut st = State::new(cfg, store, plugins, peers, wake)?;
        queue::kick(&mut st);
        housekeeping::sync_routes(&mut st);
        Ok(Self { st })
    }
}

impl Service for App {
    fn call(&mut self, conn: ConnRef, side: Side, req: Request) {
        match side {
            Side::Api => api::handle(&mut self.st, conn, req),
            Side::Web => web::handle(&mut self.st, conn, req),
        }
    }

    /// The API's token is checked as soon as a request's head is in, so an
    /// unauthenticated client's body is never read; the web listener is
    /// public.
    fn admit(&mut self, side: Side, head: &Head) -> Option<Response> {
        match side {
            Side::Api => api::admit(&self.st, head).err(),
            Side::Web => None,
        }
    }

    fn outbox(&mut self) -> &mut Outbox {
        &mut self.st.outbox
    }

    /// Changes made through other workers first, so that requests read in
    /// this turn see them.
    fn begin_turn(&mut self, _now: Instant) {
        housekeeping::peer_messages(&mut self.st);
    }

    fn end_turn(&mut self, _now: Instant) {
        let st = &mut self.st;
        st.run_completions();
        if !st.exec.held.is_empty() {
            invoke::release_held(st);
        }
        invoke::bury_one(st);
        if st.exec.runs.next_deadline().is_some() {
            invoke::expire(st, Instant::now());
        }
        invoke::slices(st);
        st.run_completions();
        if st.consumer.wanted() {
            queue::kick(st);
        }
        // The submits read in this turn, their early runs ended or paused:
        // one commit for all of them, unless one is in flight.
        api::commit_submits(st);
        // The batches of subscriptions that ended, and the messages
        // published in this turn.
        events::deliver::ended(st);
        events::publish::commit(st);
        housekeeping::flush_records(st);
        if st.cfg.server.metrics {
            let m = st.metrics.worker();
            m.warm_instances.set(st.exec.cache.warm() as u64);
            m.instance_creations.set(st.exec.cache.created());
        }
    }

    fn tick(&mut self, now: Instant) {
        housekeeping::tick(&mut self.st, now);
        events::deliver::tick(&mut self.st, now);
        events::retention::tick(&mut self.st, now);
        schedules::tick(&mut self.st, now);
    }

    fn wake(&self) -> Wake {
        let st = &self.st;
        let held = !st.exec.held.is_empty() && !st.records.full();
        if st.exec.runs.queued() > 0
            || st.exec.cache.has_graves()
            || st.consumer.wanted()
            || st.records.due()
            || held
            || st.submits.wants_commit()
            || st.publishes.wants_commit()
            || !st.deliveries.ended.is_empty()
        {
            return Wake::Now;
        }
        match (st.exec.runs.next_deadline(), st.records.next_due()) {
            (Some(a), Some(b)) => Wake::At(a.min(b)),
            (Some(at), None) | (None, Some(at)) => Wake::At(at),
            (None, None) => Wake::Idle,
        }
    }

    fn stop(&mut self) {
        housekeeping::stop(&mut self.st);
    }
}

#[cfg(test)]
mod tests;
