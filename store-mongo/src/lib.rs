//! The MongoDB [`Store`]: the production and scale-out backend of SL.
//!
//! Several servers share one database; everything a server needs from
//! another (actions, routes, invocation records, the asynchronous queue) is
//! in it.
//!
//! - `actions`: one document per action, unique index on `name`; the
//!   bytecode is BSON binary next to the source and checksum.
//! - `routes`: one document per route, unique index on
//!   `{method, host, path}`.
//! - `invocations`: one document per invocation keyed by `_id` = the
//!   invocation id. Arguments and results are JSON text. `seq` is the global
//!   enqueue order, set when a record is first written; `expire_at` is a BSON
//!   Date set when a record is stored in a terminal state, and a TTL index
//!   expires records [`TTL_GRACE_SECS`] after the retention (below).
//!   `size` is the record's `stored_size`: the counter's `bytes` keeps
//!   their total (see `bytes.rs`), and both purges walk the
//!   `{status, finished, size}` index for the oldest terminal records, a
//!   batch at a time (records written before `size` was kept count 0).
//!   `idem_key` and `idem_fp` are the idempotency key of a submit and the
//!   fingerprint of what it asked for, under a partial unique index: two
//!   servers that enqueue one key at once write one record between them.
//! - `counters`: the `seq` counter, incremented atomically by every
//!   `put_invocations` for its whole batch, so the order is global across
//!   servers; its document also holds `bytes`, the records' total.
//!
//! - Events (see `events.rs` for the design and what a crash between two
//!   writes leaves): `topics` and `topic_partitions` (each partition's
//!   offset counter, watermark, and retained count and bytes, so that
//!   `get_topic` reads no message), `messages` (unique by topic, partition
//!   and offset; idempotency keys unique per topic under a partial unique
//!   index), `subscriptions` and `subscription_partitions` (cursors,
//!   leases, epochs), `pending` and `dead_letters`. A publish reserves its
//!   offsets with one `$inc` of the partition's document, then inserts the
//!   messages; readers wait for an offset reserved and not yet written, and
//!   skip it once it has been missing for [`MongoOptions::gap_timeout`] (its
//!   publisher died). Leases are `findAndModify` claims; a commit is fenced
//!   by an update conditional on the partition's owner and epoch, and
//!   writes the cursor last.
//! - Schedules (see `schedules.rs`): [`SCHEDULES`], one document per
//!   schedule, `_id` its name, with its settings and how far it has fired.
//!   A firing is recorded by one `update` whose filter holds the
//!   `last_fired` the server read (a compare-and-set); a schedule that
//!   never fired holds a string sentinel there, never null.
//!
//! The TTL index expires terminal records a day after the retention
//! ([`TTL_GRACE_SECS`]): the servers' own purge deletes them first, and
//! counts what it deletes; the index is a safety net for a database no
//! server purges.
//!
//! Claims are a loop of `findAndModify` calls, each atomic on its record:
//! two servers never claim the same record. No transactions and no change
//! streams are used.
//!
//! Calls block (the driver's `sync` API); the server makes them from its
//! blocking pool. When MongoDB is down a call fails with
//! [`StoreError::Unavailable`] after the server selection timeout, and the
//! same `MongoStore` works again once MongoDB is back.

mod bytes;
mod doc;
mod error;
mod events;
mod indexes;
mod schedules;

use std::fmt;
use std::time::Duration;

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::sync::{Client, Collection, Database};
use sl_store::{
    ActionMeta, ActionRecord, Enqueued, InvocationRecord, InvocationStatus, Purged, Result, RouteRecord, RunCounts,
    Store, StoreError, Submit,
};

use crate::doc::field;
use crate::error::{duplicate_indexes, is_duplicate_key, map};
pub use crate::events::{
    DEAD_LETTERS, GAP_TIMEOUT, MESSAGES, PENDING, SUBSCRIPTIONS, SUBSCRIPTION_PARTITIONS, TOPICS, TOPIC_PARTITIONS,
};
pub use crate::schedules::SCHEDULES;

/// Collection of actions.
pub const ACTIONS: &str = "actions";
/// Collection of routes.
pub const ROUTES: &str = "routes";
/// Collection of invocation records (and the queue).
pub const INVOCATIONS: &str = "invocations";
/// Collection of counters (the enqueue sequence).
pub const COUNTERS: &str = "counters";

/// Collection of run counters: one document per action (`_id` its name).
pub const RUN_COUNTS: &str = "run_counts";

/// The `_id` of the enqueue counter (and of the records' total) in
/// [`COUNTERS`].
const SEQ_COUNTER: &str = "invocations";

/// Seconds after the retention at which the TTL index expires a terminal
/// record that no server purged (a database no server runs on).
pub const TTL_GRACE_SECS: u64 = 24 * 3600;

/// Most record writes, and about the most bytes of records, in one
/// `update` command of `put_invocations` (a command holds at most 100,000
/// statements and 48 MB; a record bigger than this goes alone).
const UPDATE_BATCH: usize = 500;
const UPDATE_BYTES: u64 = 8 << 20;

/// Tries of an `update_action` whose record changes under it.
const UPDATE_TRIES: usize = 5;

/// How [`MongoStore::connect`] connects. Values given in the connection
/// string (`serverSelectionTimeoutMS`, `connectTimeoutMS`) take precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoOptions {
    /// Seconds a finished (succeeded or failed) invocation record is kept:
    /// [`Store::purge_invocations`] (which the server calls every minute)
    /// deletes them, and a TTL index deletes those it missed
    /// [`TTL_GRACE_SECS`] later (MongoDB deletes expired records within
    /// about a minute). At most about 68 years (`i32::MAX` s); 0 keeps
    /// records until [`Store::purge_invocations`] deletes them.
    pub retention_secs: u64,
    /// How long a call waits for a usable server before it fails with
    /// [`StoreError::Unavailable`] (also bounds `connect` against a MongoDB
    /// that is down).
    pub server_selection_timeout: Duration,
    /// Timeout of opening one connection.
    pub connect_timeout: Duration,
    /// How long a reader of a topic waits for an offset that a publisher
    /// reserved and has not written before it skips it (the publisher
    /// died: see [`GAP_TIMEOUT`], the default).
    pub gap_timeout: Duration,
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self {
            retention_secs: 7 * 24 * 3600,
            server_selection_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            gap_timeout: GAP_TIMEOUT,
        }
    }
}

/// The connection string for the config syntax existing users have,
/// `Mongodb { url = "mongodb://database", port = 27017, database = "sl" }`:
/// `port` is added to every host of `url` that has none. `mongodb+srv://`
/// URLs, which take no port, and URLs without a port to add are returned
/// unchanged.
///
/// ```
/// use sl_store_mongo::connection_string;
/// assert_eq!(connection_string("mongodb://database", Some(27017)), "mongodb://database:27017");
/// assert_eq!(connection_string("mongodb://db:27018/?w=1", Some(27017)), "mongodb://db:27018/?w=1");
/// ```
pub fn connection_string(url: &str, port: Option<u16>) -> String {
    let (Some(port), Some(rest)) = (port, url.strip_prefix("mongodb://")) else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|host| {
            // `[::1]` and `[::1]:27017`, `host` and `host:27017`.
            let has_port = match host.rfind(']') {
                Some(bracket) => host[bracket..].contains(':'),
                None => host.contains(':'),
            };
            if has_port || host.is_empty() {
                host.to_owned()
            } else {
                format!("{host}:{port}")
            }
        })
        .collect();
    format!("mongodb://{userinfo}{}{tail}", hosts.join(","))
}

/// `url` with its password (if any) hidden, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// A [`Store`] in one MongoDB database. See the [crate docs](crate).
pub struct MongoStore {
    db: Database,
    actions: Collection<Document>,
    routes: Collection<Document>,
    invocations: Collection<Document>,
    counters: Collection<Document>,
    run_counts: Collection<Document>,
    /// Topics, subscriptions and dead letters (see `events.rs`).
    events: events::EventCollections,
    /// Schedules (see `schedules.rs`).
    schedules: Collection<Document>,
    /// The URL without its password, for messages.
    label: String,
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore").field("url", &self.label).field("database", &self.db.name()).finish()
    }
}

impl MongoStore {
    /// Connects to the database `database` at `url` (a connection string,
    /// see [`connection_string`] for the config syntax), checks that it
    /// answers, and creates the indexes that are missing.
    ///
    /// Fails with [`StoreError::Unavailable`] ("cannot reach MongoDB at
    /// URL: ...") within about `server_selection_timeout` when MongoDB is
    /// down or unreachable; a URL that does not parse fails the same way.
    pub fn connect(url: &str, database: &str, options: MongoOptions) -> Result<MongoStore> {
        let label = redact(url);
        let unreachable =
            |reason: &dyn fmt::Display| StoreError::Unavailable(format!("cannot reach MongoDB at {label}: {reason}"));
        let mut client_options = ClientOptions::parse(url)
            .run()
            .map_err(|err| StoreError::Unavailable(format!("invalid MongoDB URL {label}: {}", err.kind)))?;
        client_options.server_selection_timeout.get_or_insert(options.server_selection_timeout);
        client_options.connect_timeout.get_or_insert(options.connect_timeout);
        client_options.app_name.get_or_insert_with(|| "sl".to_owned());
        let client = Client::with_options(client_options).map_err(|err| unreachable(&err.kind))?;
        let db = client.database(database);
        db.run_command(doc! { "ping": 1 }).run().map_err(|err| unreachable(&err.kind))?;
        let store = MongoStore {
            actions: db.collection(ACTIONS),
            routes: db.collection(ROUTES),
            invocations: db.collection(INVOCATIONS),
            counters: db.collection(COUNTERS),
            run_counts: db.collection(RUN_COUNTS),
            events: events::EventCollections::new(&db, options.gap_timeout),
            schedules: db.collection(SCHEDULES),
            db,
            label,
        };
        let ttl = match options.retention_secs {
            0 => 0,
            secs => secs.saturating_add(TTL_GRACE_SECS),
        };
        indexes::ensure(&store.db, ttl).map_err(|err| store.err("cannot create the indexes", err))?;
        store.recount_bytes()?;
        tracing::info!(url = %store.label, database, "connected to MongoDB");
        Ok(store)
    }

    /// The name of the database.
    pub fn database_name(&self) -> &str {
        self.db.name()
    }

    /// A driver error, with what the store was doing when it is not the
    /// usual "MongoDB unavailable".
    fn err(&self, doing: &str, err: mongodb::error::Error) -> StoreError {
        match map(err) {
            StoreError::Unavailable(msg) => StoreError::Unavailable(format!("{doing} ({}): {msg}", self.label)),
            other => other,
        }
    }

    /// Reserves `n` consecutive enqueue numbers, and adds `bytes` to the
    /// records' total in the same update; returns the first number.
    fn next_seq(&self, n: usize, bytes: i64) -> Result<i64> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let increment = || {
            self.counters
                .find_one_and_update(
                    doc! { field::ID: SEQ_COUNTER },
                    doc! { "$inc": { field::SEQ: n, field::BYTES: bytes } },
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .run()
        };
        // Two first increments at once may both insert; one fails and is
        // retried as an update.
        let counter = match increment() {
            Err(err) if is_duplicate_key(&err) => increment(),
            other => other,
        };
        let counter = counter
            .map_err(|err| self.err("cannot enqueue", err))?
            .ok_or_else(|| StoreError::Corrupt("the enqueue counter vanished while it was incremented".into()))?;
        let last = doc::integer(&counter, "the enqueue counter", field::SEQ)?;
        Ok(last - n + 1)
    }

    /// Runs `statements` (`{q, u, upsert}` documents, each with about its
    /// size in bytes) as `update` commands on `collection`: one command
    /// holds many (a round trip per command, not per statement), the bulk
    /// form every MongoDB version speaks, unordered, with the client's
    /// write concern. A statement refused with a code that `tolerated`
    /// accepts is left undone; any other refusal fails the call.
    pub(crate) fn run_updates(
        &self,
        collection: &str,
        statements: Vec<(u64, Document)>,
        tolerated: fn(i32) -> bool,
    ) -> Result<()> {
        let mut chunks: Vec<Vec<Document>> = Vec::new();
        let mut bytes = 0;
        for (size, statement) in statements {
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < UPDATE_BATCH && bytes + size <= UPDATE_BYTES => {
                    bytes += size;
                    chunk.push(statement);
                }
                _ => {
                    bytes = size;
                    chunks.push(vec![statement]);
                }
            }
        }
        let write_concern = match self.db.write_concern() {
            Some(wc) => mongodb::bson::to_document(wc)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode the write concern: {e}")))?,
            None => Document::new(),
        };
        for chunk in chunks {
            let n = chunk.len();
            let mut command = doc! { "update": collection, "updates": chunk, "ordered": false };
            if !write_concern.is_empty() {
                command.insert("writeConcern", write_concern.clone());
            }
            let reply = self.db.run_command(command).run().map_err(map)?;
            if let Ok(errors) = reply.get_array("writeErrors") {
                let code = |e: &Document| e.get("code").and_then(|c| c.as_i32().or(c.as_i64().map(|c| c as i32)));
                let refused: Vec<&Document> =
                    errors.iter().filter_map(Bson::as_document).filter(|e| !code(e).is_some_and(tolerated)).collect();
                if let Some(first) = refused.first() {
                    let message = first.get_str("errmsg").unwrap_or("no message");
                    let code = first.get("code").map(|c| c.to_string()).unwrap_or_default();
                    return Err(StoreError::Unavailable(format!(
                        "MongoDB refused {} of {} writes to {collection}: {message} (code {code})",
                        refused.len(),
                        n
                    )));
                }
            }
            if let Ok(wc_error) = reply.get_document("writeConcernError") {
                let message = wc_error.get_str("errmsg").unwrap_or("no message");
                return Err(StoreError::Unavailable(format!("MongoDB could not satisfy the write concern: {message}")));
            }
        }
        Ok(())
    }

    fn decode_all(&self, cursor: mongodb::sync::Cursor<Document>) -> Result<Vec<InvocationRecord>> {
        let mut records = Vec::new();
        for doc in cursor {
            records.push(doc::invocation_from_doc(&doc.map_err(map)?)?);
        }
        Ok(records)
    }
}

/// Runnable: queued, or running with a lease that expired (its owner died).
/// A running record without a lease (null) never matches `$lt`.
fn runnable(now_ms: i64) -> Document {
    doc! {
        "$or": [
            { field::STATUS: InvocationStatus::Queued.as_str() },
            { field::STATUS: InvocationStatus::Running.as_str(), field::LEASE_UNTIL: { "$lt": now_ms } },
        ]
    }
}

impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    fn create_action(&self, action: &ActionRecord) -> Result<()> {
        match self.actions.insert_one(doc::action_to_doc(action)).run() {
            Ok(_) => Ok(()),
            Err(err) if is_duplicate_key(&err) => Err(StoreError::AlreadyExists(action.name.clone())),
            Err(err) => Err(map(err)),
        }
    }

    fn update_action(&self, action: &ActionRecord, expected_version: i64) -> Result<()> {
        let name = &action.name;
        for _ in 0..UPDATE_TRIES {
            let filter = doc! { field::NAME: name, field::VERSION: expected_version };
            // `$set` of every field replaces the document (nx-27017 0.8.1
            // cannot `replaceOne` a document holding binary data).
            let update = doc! { "$set": doc::action_to_doc(action) };
            let replaced = self.actions.update_one(filter, update).run().map_err(map)?;
            if replaced.matched_count > 0 {
                return Ok(());
            }
            let found = self
                .actions
                .find_one(doc! { field::NAME: name })
                .projection(doc! { field::VERSION: 1 })
                .run()
                .map_err(map)?;
            let Some(found) = found else { return Err(StoreError::NotFound(name.clone())) };
            let found = doc::integer(&found, &format!("action {name}"), field::VERSION)?;
            if found != expected_version {
                return Err(StoreError::Conflict { name: name.clone(), expected: expected_version, found });
            }
            // Changed and changed back between the two calls: try again.
        }
        Err(StoreError::Unavailable(format!("action '{name}' kept changing during update_action")))
    }

    fn get_action(&self, name: &str) -> Result<Option<ActionRecord>> {
        let found = self.actions.find_one(doc! { field::NAME: name }).run().map_err(map)?;
        Ok(found.as_ref().map(doc::action_from_doc).transpose()?)
    }

    fn list_actions(&self) -> Result<Vec<ActionMeta>> {
        let cursor = self
            .actions
            .find(doc! {})
            .projection(doc::action_meta_projection())
            .sort(doc! { field::NAME: 1 })
            .run()
            .map_err(map)?;
        let mut actions = Vec::new();
        for doc in cursor {
            actions.push(doc::action_meta_from_doc(&doc.map_err(map)?)?);
        }
        Ok(actions)
    }

    fn delete_action(&self, name: &str) -> Result<bool> {
        let deleted = self.actions.delete_one(doc! { field::NAME: name }).run().map_err(map)?;
        Ok(deleted.deleted_count > 0)
    }

    fn create_route(&self, route: &RouteRecord) -> Result<()> {
        match self.routes.insert_one(doc::route_to_doc(route)).run() {
            Ok(_) => Ok(()),
            Err(err) if is_duplicate_key(&err) => Err(StoreError::AlreadyExists(route.label())),
            Err(err) => Err(map(err)),
        }
    }

    fn delete_route(&self, method: &str, host: &str, path: &str) -> Result<bool> {
        let deleted = self.routes.delete_one(doc::route_key(method, host, path)).run().map_err(map)?;
        Ok(deleted.deleted_count > 0)
    }

    fn list_routes(&self) -> Result<Vec<RouteRecord>> {
        let cursor = self
            .routes
            .find(doc! {})
            .sort(doc! { field::HOST: 1, field::PATH: 1, field::METHOD: 1 })
            .run()
            .map_err(map)?;
        let mut routes = Vec::new();
        for doc in cursor {
            routes.push(doc::route_from_doc(&doc.map_err(map)?)?);
        }
        Ok(routes)
    }

    fn put_invocations(&self, records: &[InvocationRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // What the records counted for before: the total moves by the
        // difference.
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let mut before = self.stored_sizes(&ids)?;
        let mut statements = Vec::with_capacity(records.len());
        let mut delta = 0i64;
        let mut fields = Vec::with_capacity(records.len());
        for rec in records {
            let (set, size) = doc::invocation_fields(rec);
            // A record put twice in one batch counts once, at its last size.
            delta += size as i64 - before.insert(rec.id.clone(), size as i64).unwrap_or(0);
            fields.push((set, size));
        }
        let first_seq = self.next_seq(records.len(), delta)?;
        let now = DateTime::now();
        for (i, (rec, (mut set, size))) in records.iter().zip(fields).enumerate() {
            let mut update = Document::new();
            if rec.status.is_terminal() {
                set.insert(field::EXPIRE_AT, now);
            } else {
                update.insert("$unset", doc! { field::EXPIRE_AT: "" });
            }
            update.insert("$set", set);
            // The enqueue order is that of the first write: a record put
            // again keeps its place.
            update.insert("$setOnInsert", doc! { field::SEQ: first_seq + i as i64 });
            statements.push((size, doc! { "q": { field::ID: &rec.id }, "u": update, "upsert": true }));
        }
        self.run_updates(INVOCATIONS, statements, |_| false)
    }

    /// One unordered `insertMany` of the whole batch; the documents it
    /// refuses for a duplicate key were stored already (a retry: their
    /// `_id`) or hold a key that another record holds, which is then read.
    fn enqueue_invocations(&self, submits: &[Submit]) -> Result<Vec<Enqueued>> {
        if submits.is_empty() {
            return Ok(Vec::new());
        }
        let mut sizes = Vec::with_capacity(submits.len());
        let docs: Vec<Document> = submits
            .iter()
            .map(|s| {
                let mut d = doc! { field::ID: &s.record.id };
                let (fields, size) = doc::invocation_fields(&s.record);
                d.extend(fields);
                sizes.push(size as i64);
                d
            })
            .collect();
        let first_seq = self.next_seq(submits.len(), sizes.iter().sum())?;
        let now = DateTime::now();
        let docs = docs.into_iter().zip(submits).enumerate().map(|(i, (mut d, s))| {
            d.insert(field::SEQ, first_seq + i as i64);
            // A submit that ran before its commit may be finished already:
            // it expires as a finished record put does.
            if s.record.status.is_terminal() {
                d.insert(field::EXPIRE_AT, now);
            }
            if let Some(key) = &s.key {
                d.insert(field::IDEM_KEY, &key.key);
                d.insert(field::IDEM_FP, &key.fingerprint);
            }
            d
        });
        let refused = match self.invocations.insert_many(docs).ordered(false).run() {
            Ok(_) => Vec::new(),
            Err(err) => duplicate_indexes(&err).ok_or_else(|| self.err("cannot enqueue", err))?,
        };
        // Those refused were counted and not stored (a retry below counts
        // itself again).
        self.add_bytes(-refused.iter().filter_map(|&i| sizes.get(i)).sum::<i64>())?;
        let mut answers = vec![Enqueued::New; submits.len()];
        for i in refused {
            let Some(submit) = submits.get(i) else { continue };
            let Some(key) = &submit.key else { continue };
            let holder = self
                .invocations
                .find_one(doc! { field::IDEM_KEY: &key.key })
                .projection(doc! { field::ID: 1, field::IDEM_FP: 1 })
                .run()
                .map_err(|err| self.err("cannot read an idempotency key", err))?;
            let Some(holder) = holder else {
                // Its holder was deleted since: try this one again.
                let again = self.enqueue_invocations(std::slice::from_ref(submit))?;
                answers[i] = again.into_iter().next().unwrap_or(Enqueued::New);
                continue;
            };
            let id = holder.get_str(field::ID).unwrap_or_default().to_owned();
            if id != submit.record.id {
                let fingerprint = holder.get_str(field::IDEM_FP).unwrap_or_default().to_owned();
                answers[i] = Enqueued::Existing { id, fingerprint };
            }
        }
        Ok(answers)
    }

    fn get_invocation(&self, id: &str) -> Result<Option<InvocationRecord>> {
        let found = self.invocations.find_one(doc! { field::ID: id }).run().map_err(map)?;
        Ok(found.as_ref().map(doc::invocation_from_doc).transpose()?)
    }

    fn list_invocations(&self, action: Option<&str>, limit: usize) -> Result<Vec<InvocationRecord>> {
        if limit == 0 {
            return Ok(Vec::new()); // MongoDB's limit 0 means none
        }
        let filter = match action {
            Some(action) => doc! { field::ACTION: action },
            None => doc! {},
        };
        let cursor = self
            .invocations
            .find(filter)
            .sort(doc! { field::SEQ: -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .run()
            .map_err(map)?;
        self.decode_all(cursor)
    }

    fn claim_invocations(
        &self,
        owner: &str,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<InvocationRecord>> {
        let mut claimed = Vec::new();
        while claimed.len() < limit {
            let update = doc! {
                "$set": {
                    field::STATUS: InvocationStatus::Running.as_str(),
                    field::OWNER: owner,
                    field::STARTED: now_ms,
                    field::LEASE_UNTIL: now_ms.saturating_add(lease_ms),
                },
                "$inc": { field::ATTEMPTS: 1_i64 },
            };
            let found = self
                .invocations
                .find_one_and_update(runnable(now_ms), update)
                .sort(doc! { field::SEQ: 1 })
                .return_document(ReturnDocument::After)
                .run();
            match found {
                Ok(Some(doc)) => claimed.push(doc::invocation_from_doc(&doc)?),
                Ok(None) => break,
                // The records claimed so far are ours: run them, and let the
                // next call report the trouble.
                Err(err) if !claimed.is_empty() => {
                    tracing::warn!(claimed = claimed.len(), "claiming invocations stopped early: {}", err.kind);
                    break;
                }
                Err(err) => return Err(map(err)),
            }
        }
        Ok(claimed)
    }

    fn release_running(&self) -> Result<u64> {
        let released = self
            .invocations
            .update_many(
                doc! { field::STATUS: InvocationStatus::Running.as_str() },
                doc! { "$set": { field::LEASE_UNTIL: 0_i64 } },
            )
            .run()
            .map_err(map)?;
        Ok(released.matched_count)
    }

    fn count_queued(&self) -> Result<u64> {
        self.invocations.count_documents(doc! { field::STATUS: InvocationStatus::Queued.as_str() }).run().map_err(map)
    }

    /// The first queued record in claim order (the index claims use).
    fn oldest_queued(&self) -> Result<Option<i64>> {
        let found = self
            .invocations
            .find_one(doc! { field::STATUS: InvocationStatus::Queued.as_str() })
            .sort(doc! { field::SEQ: 1 })
            .projection(doc! { field::CREATED: 1, "_id": 0 })
            .run()
            .map_err(map)?;
        Ok(found.and_then(|d| d.get_i64(field::CREATED).ok()))
    }

    /// The oldest terminal records finished before `before_ms`, a batch
    /// at a time (see [`MongoStore::find_terminal`]), each taken off the
    /// records' total.
    fn purge_invocations(&self, before_ms: i64) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let filter = doc! { field::FINISHED: { "$lt": before_ms } };
            let (ids, found_bytes) = self.find_terminal(filter, u64::MAX, bytes::DELETE_BATCH)?;
            let found = ids.len();
            let purged = self.delete_terminal(ids, found_bytes)?;
            deleted += purged.records;
            if found < bytes::DELETE_BATCH || purged.records == 0 {
                return Ok(deleted);
            }
        }
    }

    /// The total the writes keep (see `bytes.rs`); counted from every
    /// record only in a database no server has counted it in.
    fn invocation_bytes(&self) -> Result<u64> {
        match self.read_bytes()? {
            Some(total) => Ok(total),
            None => self.recount_bytes(),
        }
    }

    /// Finds the oldest terminal records by the `{status, finished, size}`
    /// index (reading their ids and sizes only, and no further than the
    /// bytes asked for), then deletes those still terminal with one
    /// `deleteMany` (see [`MongoStore::delete_terminal`]).
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> Result<Purged> {
        if bytes == 0 || max_records == 0 {
            return Ok(Purged::default());
        }
        let (ids, found) = self.find_terminal(Document::new(), bytes, max_records)?;
        self.delete_terminal(ids, found)
    }

    /// One `$inc` upsert per action (a few a second from each server).
    fn add_run_counts(&self, counts: &[RunCounts]) -> Result<()> {
        for c in counts {
            let mut inc = Document::new();
            for (name, n) in RunCounts::FIELDS.into_iter().zip(c.values()) {
                if n > 0 {
                    inc.insert(name, n.min(i64::MAX as u64) as i64);
                }
            }
            if inc.is_empty() {
                continue;
            }
            let add =
                || self.run_counts.update_one(doc! { field::ID: &c.action }, doc! { "$inc": &inc }).upsert(true).run();
            // Two first additions at once may both insert; one fails and is
            // retried as an update.
            match add() {
                Err(err) if is_duplicate_key(&err) => add(),
                other => other,
            }
            .map_err(|err| self.err("cannot count runs", err))?;
        }
        Ok(())
    }

    fn run_counts(&self, action: &str) -> Result<RunCounts> {
        let Some(found) = self.run_counts.find_one(doc! { field::ID: action }).run().map_err(map)? else {
            return Ok(RunCounts::new(action));
        };
        let values = RunCounts::FIELDS.map(|name| match found.get(name) {
            Some(Bson::Int64(n)) => (*n).max(0) as u64,
            Some(Bson::Int32(n)) => (*n).max(0) as u64,
            Some(Bson::Double(n)) => n.max(0.0) as u64,
            _ => 0,
        });
        Ok(RunCounts::from_values(action, values))
    }

    fn events(&self) -> &dyn sl_store::Events {
        self
    }

    fn schedules(&self) -> &dyn sl_store::Schedules {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_added_to_hosts_without_one() {
        let cases = [
            ("mongodb://database", Some(27017), "mongodb://database:27017"),
            ("mongodb://database/", Some(27017), "mongodb://database:27017/"),
            ("mongodb://database/sl?w=1", Some(1), "mongodb://database:1/sl?w=1"),
            ("mongodb://database?w=1", Some(1), "mongodb://database:1?w=1"),
            ("mongodb://user:p%40ss@database", Some(27017), "mongodb://user:p%40ss@database:27017"),
            ("mongodb://a,b:27018,c", Some(27017), "mongodb://a:27017,b:27018,c:27017"),
            ("mongodb://[::1]", Some(27017), "mongodb://[::1]:27017"),
            ("mongodb://[::1]:27018", Some(27017), "mongodb://[::1]:27018"),
            ("mongodb://database:27018", Some(27017), "mongodb://database:27018"),
            ("mongodb://database", None, "mongodb://database"),
            ("mongodb+srv://cluster.example", Some(27017), "mongodb+srv://cluster.example"),
        ];
        for (url, port, expected) in cases {
            assert_eq!(connection_string(url, port), expected, "{url} {port:?}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("mongodb://sl:secret@db:27017/x"), "mongodb://sl:***@db:27017/x");
        assert_eq!(redact("mongodb://db:27017/x?a=b@c"), "mongodb://db:27017/x?a=b@c");
        assert_eq!(redact("mongodb://db"), "mongodb://db");
    }

    #[test]
    fn defaults() {
        let o = MongoOptions::default();
        assert_eq!(o.server_selection_timeout, Duration::from_secs(2));
        assert_eq!(o.retention_secs, 7 * 24 * 3600);
    }

    #[test]
    fn a_bad_url_is_reported_without_its_password() {
        match MongoStore::connect("mongodb://u:secret@host:notaport", "db", MongoOptions::default()) {
            Err(StoreError::Unavailable(msg)) => {
                assert!(msg.starts_with("invalid MongoDB URL mongodb://u:***@host:notaport"), "{msg}");
                assert!(!msg.contains("secret"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
}
