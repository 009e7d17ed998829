//! SL server library: the reactor, HTTP, the Lua sandbox and storage glue.
//!
//! The binary `slserver` is a thin wrapper over [`serve`] and
//! [`open_store`].
//!
//! # Layers
//!
//! From the bottom up; each names only what is below it:
//! - leaves: [`http`] (framing), [`routes`] (the route table), [`sandbox`]
//!   (Lua states and limits), [`plugin`], [`config`], `ids` (ids, names,
//!   the clock), `pool` (blocking pools), `auth` (tokens);
//! - [`reactor`]: the event loop and connections, generic over a
//!   [`Service`]; it knows nothing of actions;
//! - `answer` (results and records as responses) and `exec` (the action
//!   cache and the running invocations);
//! - `state`: a worker's application state, which holds the executor, the
//!   outbox and the rest;
//! - the features, each over `&mut State`: `invoke` (starting, stepping
//!   and ending invocations), `queue` (the asynchronous queue's consumer),
//!   `events` (publishing to topics, delivering subscriptions), `schedules`
//!   (firing cron and interval schedules),
//!   `housekeeping`, `api` and `web` (the two listeners' handlers);
//! - [`App`]: the [`Service`] a worker's reactor serves;
//! - `workers`: the threads, each a reactor serving an app.

mod answer;
mod api;
mod app;
mod auth;
pub mod config;
mod events;
mod exec;
mod housekeeping;
pub mod http;
mod ids;
mod invoke;
pub mod metrics;
pub mod plugin;
mod pool;
mod queue;
pub mod reactor;
pub mod routes;
pub mod sandbox;
mod schedules;
mod state;
mod web;
mod workers;

use std::sync::Arc;

pub use app::App;
pub use config::{Config, ConfigError, StoreConfig};
pub use ids::valid_name;
pub use reactor::{ConnRef, Outbox, Parts, Reactor, Service, Settings, Side, Wake};
pub use state::{PeerMsg, Peers};
pub use workers::{bind_listeners, serve};

/// Opens the configured store.
///
/// Embedded stores (SQLite, in memory) have one user, this process, so
/// invocations a crashed process left running are released to run again at
/// once. A shared MongoDB is left alone: other servers may be running
/// those; leases expire instead.
pub fn open_store(cfg: &Config) -> Result<Arc<dyn sl_store::Store>, sl_store::StoreError> {
    let store: Arc<dyn sl_store::Store> = match &cfg.store {
        StoreConfig::Sqlite { path, durability } => Arc::new(sl_store::SqliteStore::open_with(path, *durability)?),
        StoreConfig::Null => Arc::new(sl_store::MemoryStore::new()),
        StoreConfig::Mongodb { url, port, database } => {
            let options =
                sl_store_mongo::MongoOptions { retention_secs: cfg.invocations.retention, ..Default::default() };
            let url = sl_store_mongo::connection_string(url, *port);
            return Ok(Arc::new(sl_store_mongo::MongoStore::connect(&url, database, options)?));
        }
    };
    let released = store.release_running()?;
    if released > 0 {
        tracing::info!(count = released, "invocations left running by a previous process will run again");
    }
    Ok(store)
}
