//! The store conformance suite on MongoDB: `$MONGODB_URI` if set, else one
//! nx-27017 for this test binary; every case gets a fresh database, dropped
//! afterwards.

use std::sync::OnceLock;

use sl_store::conformance::Guarded;
use sl_store_mongo::{MongoOptions, MongoStore};
use sl_testkit::Mongo;

fn mongo() -> &'static Mongo {
    static MONGO: OnceLock<Mongo> = OnceLock::new();
    MONGO.get_or_init(Mongo::start)
}

/// Drops its test database when dropped.
struct DropDatabase(mongodb::sync::Database);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Err(err) = self.0.drop().run() {
            eprintln!("cannot drop the test database {}: {}", self.0.name(), err.kind);
        }
    }
}

fn store() -> Guarded<MongoStore, DropDatabase> {
    static CLIENT: OnceLock<mongodb::sync::Client> = OnceLock::new();
    let m = mongo();
    let name = m.fresh_db();
    let store = MongoStore::connect(m.uri(), &name, MongoOptions::default())
        .unwrap_or_else(|err| panic!("connect to {}: {err}\n{}", m.uri(), m.output()));
    let client = CLIENT.get_or_init(|| mongodb::sync::Client::with_uri_str(m.uri()).expect("a client"));
    Guarded { store, guard: DropDatabase(client.database(&name)) }
}

sl_store::conformance_tests!(store());

/// The events cases, on the same nx-27017.
mod events {
    sl_store::events_conformance_tests!(super::store());
}

/// The schedules cases, on the same nx-27017.
mod schedules {
    sl_store::schedules_conformance_tests!(super::store());
}
