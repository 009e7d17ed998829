//! Test helpers shared across the SL workspace (a dev-dependency only).
//!
//! [`Mongo`] gives a test a MongoDB: the real one at `$MONGODB_URI` when that
//! is set, otherwise a private `nx-27017` (a MongoDB wire-protocol server from
//! PyPI, backed by SQLite) that is installed on first use into a virtualenv
//! under the workspace's `target/` directory:
//!
//! ```no_run
//! let mongo = sl_testkit::Mongo::start();
//! let database = mongo.fresh_db();
//! // connect to mongo.uri() and use `database`, which no other test uses
//! ```
//!
//! nx-27017 handles CRUD, indexes, find-and-modify and TTL indexes. It has
//! no change streams, its transactions are not isolated, and its
//! duplicate-key messages differ from MongoDB's (the code, 11000, is the
//! same). It also ignores an index on a field named `id` (its SQLite table
//! has a column of that name): key documents by `_id` instead.

mod install;
mod mongo;
mod plugins;
mod process;

pub use install::{nx_27017, prometheus_client_python, target_dir, NxInstall, NX_VERSION, PROMETHEUS_CLIENT_VERSION};
pub use mongo::Mongo;
pub use plugins::{lib_dir, plugin_lib};
