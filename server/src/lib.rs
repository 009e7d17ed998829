//! SL server library: the reactor, HTTP, the Lua sandbox and storage glue.
//!
//! The binary `slserver` is a thin wrapper over [`Server`] and [`open_store`].

mod api;
pub mod config;
mod exec;
pub mod http;
pub mod plugin;
mod pool;
mod reactor;
pub mod sandbox;

use std::sync::Arc;

pub use api::valid_name;
pub use config::{Config, ConfigError, StoreConfig};
pub use reactor::Server;

/// Opens the configured store. Embedded stores have one user, this
/// process, so invocations a crashed process left running are released to
/// run again at once.
pub fn open_store(cfg: &StoreConfig) -> Result<Arc<dyn sl_store::Store>, sl_store::StoreError> {
    let store: Arc<dyn sl_store::Store> = match cfg {
        StoreConfig::Sqlite { path } => Arc::new(sl_store::SqliteStore::open(path)?),
        StoreConfig::Null => Arc::new(sl_store::MemoryStore::new()),
    };
    let released = store.release_running()?;
    if released > 0 {
        tracing::info!(count = released, "invocations left running by a previous process will run again");
    }
    Ok(store)
}
