//! The application state of one worker: everything its features share.
//!
//! [`State`] is below the code that uses it: the API, the web listener's
//! handler, the driver of invocations and the housekeeping all take
//! `&mut State`, and every type it holds is defined in a module that does
//! not name it (the executor in [`crate::exec`], the rest in the modules
//! beside this one). Work done on a blocking pool comes back as a
//! continuation on `&mut State`; answers leave through [`State::outbox`],
//! which the reactor drains.

mod budget;
mod committed;
mod consumer;
mod deliveries;
mod peers;
mod publishes;
mod records;
mod runs;
mod submits;
mod sync;
mod waiters;

pub(crate) use budget::{trim as trim_records, Trimmed};
pub(crate) use committed::Committed;
pub(crate) use consumer::Consumer;
pub(crate) use deliveries::{
    changes as delivery_changes, fresh_gen, Batch, Changes as DeliveryChanges, Deliveries, Part, Phase, Ran,
    BATCH_BYTES,
};
pub use peers::{PeerMsg, Peers};
pub(crate) use publishes::{Outgoing, Publish, Publisher, Publishes};
#[cfg(test)]
pub(crate) use records::MAX_BACKLOG;
pub(crate) use records::{bound as bound_record, nominal_size as nominal_record_size, Records};
pub(crate) use runs::Runs;
#[cfg(test)]
pub(crate) use runs::FREE_RECORDS;
pub(crate) use submits::{Pending, Submits};
pub(crate) use sync::{RoutesSync, ScheduleScan, Timers};
pub(crate) use waiters::Waiters;

use std::sync::Arc;
use std::time::Instant;

use sl_store::Store;

use crate::auth::Tokens;
use crate::config::Config;
use crate::exec::Executor;
use crate::http::Response;
use crate::metrics::WorkerApp;
use crate::plugin::PluginHost;
use crate::pool::Pool;
use crate::reactor::{ConnRef, Outbox};
use crate::routes::RouteTable;

/// The state of one worker's application.
pub(crate) struct State {
    pub cfg: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub plugins: Arc<PluginHost>,
    pub tokens: Tokens,
    /// Store calls and compiles.
    pub pool: Pool<State>,
    /// Plugin calls: a pool of its own that grows with the calls waiting,
    /// so slow plugins never hold up store calls.
    pub plugin_pool: Pool<State>,
    /// One thread for the time slices of invocations with a large heap,
    /// and for freeing large states (`sandbox::Away`): work in proportion
    /// to a heap, off the event loop.
    pub heavy_pool: Pool<State>,
    pub exec: Executor,
    /// Answers for the reactor to write.
    pub outbox: Outbox,
    pub waiters: Waiters,
    pub records: Records,
    /// Run counters on their way to the store; which successes keep a record.
    pub runs: Runs,
    pub consumer: Consumer,
    /// Asynchronous submits waiting for their commit.
    pub submits: Submits,
    /// The last records that commits of submits wrote finished.
    pub committed: Committed,
    /// The routes the web listener serves, refreshed from the store.
    pub routes: RouteTable<String>,
    pub routes_sync: RoutesSync,
    pub peers: Peers,
    pub timers: Timers,
    /// This worker's name on the invocations it claims.
    pub owner: String,
    /// What this worker counts of its invocations and instances.
    pub metrics: WorkerApp,
    /// Messages published, waiting for their commit.
    pub publishes: Publishes,
    /// The subscription partitions this worker delivers.
    pub deliveries: Deliveries,
    /// The scan of the schedules.
    pub schedules: ScheduleScan,
}

impl State {
    /// The state of a worker; `wake` wakes its reactor when a pool job ends.
    pub fn new(
        cfg: Arc<Config>,
        store: Arc<dyn Store>,
        plugins: Arc<PluginHost>,
        peers: Peers,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let share = cfg.limits.total_memory.saturating_mul(1024) / cfg.server.workers.max(1) as u64;
        crate::sandbox::set_thread_budget(share as usize);
        let threads = cfg.pool_threads();
        let pool = Pool::new("sl-pool", threads, threads, Arc::clone(&wake))?;
        let plugin_pool = Pool::new("sl-plugin", 1, cfg.server.plugin_threads, Arc::clone(&wake))?;
        // One thread, always the same: a run that paused a pattern call
        // there must go on there (see `sandbox/away.rs`).
        let heavy_pool = Pool::new("sl-heavy", 1, 1, wake)?;
        let metrics = {
            let (registry, me) = peers.metrics();
            registry.app(me)
        };
        // On an embedded store this process is the only user: the same
        // names from one start to the next take the leases back at once.
        let me = peers.metrics().1;
        let lease_owner = match store.kind() {
            "sqlite" | "memory" => format!("local-{me}"),
            _ => format!("{}-{me}", uuid::Uuid::new_v4()),
        };
        Ok(Self {
            metrics,
            publishes: Publishes::default(),
            deliveries: Deliveries::new(lease_owner),
            schedules: ScheduleScan::default(),
            tokens: Tokens::new(&cfg.auth),
            cfg,
            store,
            plugins,
            pool,
            plugin_pool,
            heavy_pool,
            exec: Executor::default(),
            outbox: Outbox::default(),
            waiters: Waiters::default(),
            records: Records::default(),
            runs: Runs::default(),
            consumer: {
                // Work may be queued from before this server started.
                let mut c = Consumer::default();
                c.may_have_queued();
                c
            },
            submits: Submits::default(),
            committed: Committed::default(),
            routes: RouteTable::new(),
            routes_sync: RoutesSync::default(),
            peers,
            timers: Timers::new(Instant::now()),
            owner: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Runs `job` with the store on the pool, and answers `conn` with the
    /// response it makes.
    pub fn answer_later<F>(&self, conn: ConnRef, job: F)
    where
        F: FnOnce(&dyn Store) -> Response + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let resp = job(&*store);
            move |st: &mut State| st.outbox.respond(conn, resp)
        });
    }

    /// Runs the continuations of finished pool jobs. Called twice a turn
    /// of the loop, mostly with nothing to run: always inlined.
    #[inline(always)]
    pub fn run_completions(&mut self) {
        while let Some(c) = self.pool.try_completion() {
            c(self);
        }
        while let Some(c) = self.plugin_pool.try_completion() {
            c(self);
        }
        while let Some(c) = self.heavy_pool.try_completion() {
            c(self);
        }
    }
}
