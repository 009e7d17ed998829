//! SL server library: the reactor, HTTP, the Lua sandbox and storage glue.
//!
//! The binary `slserver` is a thin wrapper over [`Server`] and [`open_store`].

mod api;
mod auth;
pub mod config;
mod exec;
pub mod http;
pub mod plugin;
mod pool;
mod reactor;
pub mod routes;
pub mod sandbox;
mod web;
mod workers;

use std::sync::Arc;

pub use api::valid_name;
pub use config::{Config, ConfigError, StoreConfig};
pub use reactor::{Listeners, PeerMsg, Peers, Server, Side};
pub use workers::{bind_listeners, serve};

/// Opens the configured store.
///
/// Embedded stores (SQLite, in memory) have one user, this process, so
/// invocations a crashed process left running are released to run again at
/// once. A shared MongoDB is left alone: other servers may be running
/// those; leases expire instead.
pub fn open_store(cfg: &Config) -> Result<Arc<dyn sl_store::Store>, sl_store::StoreError> {
    let store: Arc<dyn sl_store::Store> = match &cfg.store {
        StoreConfig::Sqlite { path } => Arc::new(sl_store::SqliteStore::open(path)?),
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
