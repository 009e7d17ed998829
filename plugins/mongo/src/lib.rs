//! The `mongo` plugin: insert, query, update and delete MongoDB documents
//! from actions, on the official `mongodb` driver.
//!
//! ```lua
//! -- config.lua
//! Plugin "mongo" { file = "target/release/libsl_mongo.so", url = "mongodb://database", port = 27017, database = "sl" }
//! -- an action
//! local id = call('mongo', 'insert', { collection = 'people', data = { name = 'x', age = 3 } })
//! local old = call('mongo', 'query', { collection = 'people', query = { age = { ['$gt'] = 50 } } })
//! ```
//!
//! # Configuration
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `url` | `"mongodb://localhost"` | a MongoDB connection string (`mongodb://` or `mongodb+srv://`, with options); a bare `host` means `mongodb://host` |
//! | `port` | `27017` | the port of every host of `url` that names none (not allowed with `mongodb+srv://`) |
//! | `database` | the database of `url`, else `"sl"` | the database every action works in |
//! | `timeout` | `3000` | ms a call waits for a reachable MongoDB server (server selection and connecting); below the actions' default `timeout` (5000), so that they get this error rather than their own timeout |
//! | `call_timeout` | `30000` | ms a whole call may take; then it fails (a write may still complete) |
//!
//! Unknown keys are errors. `init` does not contact MongoDB: the driver
//! connects in the background. While MongoDB is down every call fails after
//! `timeout` with an error that says MongoDB is unreachable, and calls work
//! again as soon as it is back, without a restart.
//!
//! # Actions
//!
//! Documents, queries, updates, sorts and projections are
//! [relaxed Extended JSON](https://www.mongodb.com/docs/manual/reference/mongodb-extended-json/):
//! `{["$oid"] = "5ae8f10fbb57530001473b36"}` is an ObjectId,
//! `{["$date"] = "2024-01-01T00:00:00Z"}` a date. Results are relaxed
//! Extended JSON too.
//!
//! - `insert` `{collection, data}`: `data` a table inserts one document and
//!   returns its `_id` as a string (the ObjectId in hex); `data` a list of
//!   tables inserts them in order and returns the list of ids.
//! - `query` `{collection, query?, limit?, skip?, sort?, projection?}`: the
//!   matching documents as a list, at most `limit` ([`DEFAULT_LIMIT`] by
//!   default, at most [`MAX_LIMIT`]).
//! - `update` `{collection, query, update, many?, upsert?}`:
//!   `{matched, modified, upserted_id?}`.
//! - `delete` `{collection, query, many?, all?}`: `{deleted}`. An empty
//!   `query` with `many = true` (every document) needs `all = true`.

use std::sync::Mutex;
use std::time::Duration;

use mongodb::bson::{Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, ServerAddress, UpdateModifications};
use mongodb::{Client, Collection, Database};
use sl_plugin::config::{config_table, kind};
use sl_plugin::serde_json::Map;
use sl_plugin::{export_plugin, json, Plugin, Value};
use tokio::runtime::{Handle, Runtime};

/// The database used when neither the configuration nor the URL names one.
pub const DEFAULT_DATABASE: &str = "sl";
/// The URL used when the configuration has none.
pub const DEFAULT_URL: &str = "mongodb://localhost";
/// The port given to hosts of the URL that name none.
pub const DEFAULT_PORT: u16 = 27017;
/// Default ms a call waits for a reachable server.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
/// Default ms a whole call may take.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
/// Documents a `query` returns when it sets no `limit`.
pub const DEFAULT_LIMIT: i64 = 1_000;
/// The largest `limit` a `query` may ask for.
pub const MAX_LIMIT: i64 = 10_000;

const CONFIG_KEYS: &[&str] = &["call_timeout", "database", "port", "timeout", "url"];
const ACTIONS: &str = "insert, query, update, delete";

/// The plugin: one driver client (with its connection pool, shared by all
/// calls) on a runtime of its own.
///
/// The driver is asynchronous; every call runs its operation to completion
/// on the calling thread with [`Handle::block_on`], while the runtime's
/// threads run the driver's background work (monitoring, connecting). The
/// runtime belongs to the plugin rather than to the driver's global `sync`
/// runtime so that [`Plugin::shutdown`] can stop its threads before the
/// server unloads the library.
pub struct Mongo {
    client: Client,
    database: Database,
    /// What `url` resolved to, for error messages.
    hosts: String,
    timeout: Duration,
    call_timeout: Duration,
    handle: Handle,
    /// `None` once shut down.
    runtime: Mutex<Option<Runtime>>,
}

impl Plugin for Mongo {
    const NAME: &'static str = "mongo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: Value) -> Result<Self, String> {
        let config = config_table("mongo", config, CONFIG_KEYS)?;
        let mut url = match config.get("url") {
            None | Some(Value::Null) => DEFAULT_URL.to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(other) => {
                return Err(format!("mongo: 'url' must be a connection string like \"mongodb://host\", got {other}"))
            }
        };
        if !url.contains("://") {
            url = format!("mongodb://{url}");
        }
        let srv = url.starts_with("mongodb+srv://");
        let port = match config.get("port") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
                Some(p) => Some(p),
                None => return Err(format!("mongo: 'port' must be a port number from 1 to 65535, got {v}")),
            },
        };
        if srv && port.is_some() {
            return Err("mongo: 'port' cannot be used with a mongodb+srv:// url (SRV records give the ports)".into());
        }
        let timeout = millis(&config, "timeout", DEFAULT_TIMEOUT_MS)?;
        let call_timeout = millis(&config, "call_timeout", DEFAULT_CALL_TIMEOUT_MS)?;
        let database = match config.get("database") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(other) => return Err(format!("mongo: 'database' must be a string, got {}", kind(other))),
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sl-mongo")
            .enable_all()
            .build()
            .map_err(|e| format!("mongo: cannot start the driver's runtime: {e}"))?;
        let handle = runtime.handle().clone();

        // Parsing a mongodb+srv:// URL looks up DNS records: bound it.
        let parsed = handle.block_on(async {
            tokio::time::timeout(Duration::from_millis(timeout.max(10_000)), ClientOptions::parse(&url)).await
        });
        let mut options = match parsed {
            Ok(Ok(options)) => options,
            Ok(Err(e)) => return Err(format!("mongo: invalid 'url' {}: {e}", redact(&url))),
            Err(_) => return Err(format!("mongo: resolving 'url' {} timed out", redact(&url))),
        };
        for host in &mut options.hosts {
            if let ServerAddress::Tcp { port: p @ None, .. } = host {
                *p = Some(port.unwrap_or(DEFAULT_PORT));
            }
        }
        if config.contains_key("timeout") || options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(Duration::from_millis(timeout));
        }
        if config.contains_key("timeout") || options.connect_timeout.is_none() {
            options.connect_timeout = Some(Duration::from_millis(timeout));
        }
        options.app_name.get_or_insert_with(|| format!("sl-mongo/{}", env!("CARGO_PKG_VERSION")));
        let database = database.or_else(|| options.default_database.clone()).unwrap_or(DEFAULT_DATABASE.into());
        check_database_name(&database)?;
        let hosts = options.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");

        // The driver spawns its monitors on the current runtime: this one.
        let client = {
            let _guard = handle.enter();
            Client::with_options(options).map_err(|e| format!("mongo: invalid 'url' {}: {e}", redact(&url)))?
        };
        let database = client.database(&database);
        Ok(Mongo {
            client,
            database,
            hosts,
            timeout: Duration::from_millis(timeout),
            call_timeout: Duration::from_millis(call_timeout),
            handle,
            runtime: Mutex::new(Some(runtime)),
        })
    }

    fn call(&self, action: &str, payload: Value) -> Result<Value, String> {
        match action {
            "insert" => self.insert(payload),
            "query" => self.query(payload),
            "update" => self.update(payload),
            "delete" => self.delete(payload),
            other => Err(format!("mongo: unknown action '{other}' (known: {ACTIONS})")),
        }
    }

    fn shutdown(&self) {
        self.stop();
    }
}

export_plugin!(Mongo);

impl Drop for Mongo {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Mongo {
    /// The database actions work in.
    pub fn database_name(&self) -> &str {
        self.database.name()
    }

    /// Closes the connections and stops the runtime's threads. Idempotent;
    /// later calls fail.
    fn stop(&self) {
        let runtime = match self.runtime.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(runtime) = runtime {
            let client = self.client.clone();
            // After this the client's handles spawn nothing when dropped.
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown().immediate(true)).await;
            });
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Runs `op` on the runtime, bounded by `call_timeout`.
    fn run<T>(
        &self,
        action: &str,
        op: impl std::future::Future<Output = mongodb::error::Result<T>>,
    ) -> Result<T, String> {
        if self.runtime.lock().map(|r| r.is_none()).unwrap_or(true) {
            return Err(format!("mongo {action}: the plugin has been shut down"));
        }
        match self.handle.block_on(async { tokio::time::timeout(self.call_timeout, op).await }) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.db_error(action, e)),
            Err(_) => Err(format!(
                "mongo {action}: no answer from MongoDB at {} within {} ms (a write may still complete)",
                self.hosts,
                self.call_timeout.as_millis()
            )),
        }
    }

    /// A driver error as a message for the action's author.
    fn db_error(&self, action: &str, e: mongodb::error::Error) -> String {
        match e.kind.as_ref() {
            ErrorKind::ServerSelection { message, .. } => format!(
                "mongo {action}: MongoDB at {} is unreachable (no usable server within {} ms): {}",
                self.hosts,
                self.timeout.as_millis(),
                selection_reason(message)
            ),
            ErrorKind::Io(io) => format!(
                "mongo {action}: the connection to MongoDB at {} failed: {io}{}",
                self.hosts,
                if action == "query" { "" } else { " (the write may or may not have been applied)" }
            ),
            ErrorKind::Write(WriteFailure::WriteError(w)) => format!("mongo {action}: {} (code {})", w.message, w.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
                format!("mongo {action}: write concern failed: {} (code {})", w.message, w.code)
            }
            ErrorKind::InsertMany(m) => {
                if let Some(w) = m.write_errors.as_ref().and_then(|w| w.first()) {
                    format!(
                        "mongo {action}: data[{}]: {} (code {}); the documents before it were inserted",
                        w.index + 1,
                        w.message,
                        w.code
                    )
                } else if let Some(w) = &m.write_concern_error {
                    format!("mongo {action}: write concern failed: {} (code {})", w.message, w.code)
                } else {
                    format!("mongo {action}: {e}")
                }
            }
            ErrorKind::Command(c) => format!("mongo {action}: {} ({} {})", c.message, c.code_name, c.code),
            other => format!("mongo {action}: {}", shorten(&other.to_string())),
        }
    }

    fn collection(&self, action: &str, payload: &Map<String, Value>) -> Result<Collection<Document>, String> {
        let name = match payload.get("collection") {
            Some(Value::String(s)) => s,
            None | Some(Value::Null) => {
                return Err(format!("mongo {action}: missing 'collection' (the name of a collection, a string)"))
            }
            Some(other) => return Err(format!("mongo {action}: 'collection' must be a string, got {}", kind(other))),
        };
        check_collection_name(action, self.database.name(), name)?;
        Ok(self.database.collection(name))
    }

    /// The action `insert`.
    pub fn insert(&self, payload: Value) -> Result<Value, String> {
        let p = fields("insert", &payload, &["collection", "data"])?;
        let coll = self.collection("insert", p)?;
        match p.get("data") {
            None | Some(Value::Null) => {
                Err("mongo insert: missing 'data' (a table, or a list of tables to insert several)".into())
            }
            Some(Value::Object(map)) => {
                let doc = to_document("insert", "data", map)?;
                let r = self.run("insert", async { coll.insert_one(doc).await })?;
                Ok(id_value(r.inserted_id))
            }
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    return Err("mongo insert: 'data' is an empty list: nothing to insert".into());
                }
                let docs = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Object(map) => to_document("insert", &format!("data[{}]", i + 1), map),
                        other => Err(format!("mongo insert: data[{}] must be a table, got {}", i + 1, kind(other))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let r = self.run("insert", async { coll.insert_many(docs).await })?;
                let mut ids: Vec<(usize, Bson)> = r.inserted_ids.into_iter().collect();
                ids.sort_by_key(|(i, _)| *i);
                Ok(Value::Array(ids.into_iter().map(|(_, id)| id_value(id)).collect()))
            }
            Some(other) => {
                Err(format!("mongo insert: 'data' must be a table or a list of tables, got {}", kind(other)))
            }
        }
    }

    /// The action `query`.
    pub fn query(&self, payload: Value) -> Result<Value, String> {
        let p = fields("query", &payload, &["collection", "limit", "projection", "query", "skip", "sort"])?;
        let coll = self.collection("query", p)?;
        let filter = optional_document("query", p, "query")?.unwrap_or_default();
        let limit = match p.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => match v.as_i64().filter(|n| (1..=MAX_LIMIT).contains(n)) {
                Some(n) => n,
                None => return Err(format!("mongo query: 'limit' must be an integer from 1 to {MAX_LIMIT}, got {v}")),
            },
        };
        let skip = match p.get("skip") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => return Err(format!("mongo query: 'skip' must be an integer, 0 or more, got {v}")),
            },
        };
        let sort = sort_document(p)?;
        let projection = optional_document("query", p, "projection")?;

        let mut find = coll.find(filter).limit(limit);
        if let Some(skip) = skip {
            find = find.skip(skip);
        }
        if let Some(sort) = sort {
            find = find.sort(sort);
        }
        if let Some(projection) = projection {
            find = find.projection(projection);
        }
        let docs = self.run("query", async move {
            let mut cursor = find.await?;
            let mut docs = Vec::new();
            while cursor.advance().await? {
                docs.push(Bson::Document(cursor.deserialize_current()?).into_relaxed_extjson());
            }
            Ok(docs)
        })?;
        Ok(Value::Array(docs))
    }

    /// The action `update`.
    pub fn update(&self, payload: Value) -> Result<Value, String> {
        let p = fields("update", &payload, &["collection", "many", "query", "update", "upsert"])?;
        let coll = self.collection("update", p)?;
        let filter = required_document("update", p, "query")?;
        let update = update_modifications(p)?;
        let many = flag("update", p, "many")?;
        let upsert = flag("update", p, "upsert")?;
        let op = if many { coll.update_many(filter, update) } else { coll.update_one(filter, update) };
        let r = self.run("update", async { op.upsert(upsert).await })?;
        let mut out = json!({ "matched": r.matched_count, "modified": r.modified_count });
        if let Some(id) = r.upserted_id {
            out["upserted_id"] = id_value(id);
        }
        Ok(out)
    }

    /// The action `delete`.
    pub fn delete(&self, payload: Value) -> Result<Value, String> {
        let p = fields("delete", &payload, &["all", "collection", "many", "query"])?;
        let coll = self.collection("delete", p)?;
        let many = flag("delete", p, "many")?;
        let all = flag("delete", p, "all")?;
        let filter = match optional_document("delete", p, "query")? {
            Some(filter) => filter,
            None if all => Document::new(),
            None => {
                return Err("mongo delete: missing 'query' (which documents to delete; {} matches any)".into());
            }
        };
        if many && filter.is_empty() && !all {
            return Err("mongo delete: an empty 'query' with many = true deletes every document of the collection; \
                 add all = true if that is what you want"
                .into());
        }
        let op = if many { coll.delete_many(filter) } else { coll.delete_one(filter) };
        let r = self.run("delete", async { op.await })?;
        Ok(json!({ "deleted": r.deleted_count }))
    }
}

/// The payload as an object with only the `known` keys.
fn fields<'a>(action: &str, payload: &'a Value, known: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let map = match payload {
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "mongo {action}: the payload must be a table like {{collection = 'people', ...}}, got {}",
                kind(other)
            ))
        }
    };
    if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("mongo {action}: unknown field '{key}' (known: {})", known.join(", ")));
    }
    Ok(map)
}

fn flag(action: &str, p: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("mongo {action}: '{key}' must be true or false, got {}", kind(other))),
    }
}

/// Relaxed Extended JSON to a BSON document.
fn to_document(action: &str, what: &str, map: &Map<String, Value>) -> Result<Document, String> {
    Document::try_from(map.clone()).map_err(|e| format!("mongo {action}: '{what}' is not valid Extended JSON: {e}"))
}

/// `key` as a document: absent or nil is `None`; an empty list (an empty Lua
/// table may arrive as one) is an empty document.
fn optional_document(action: &str, p: &Map<String, Value>, key: &str) -> Result<Option<Document>, String> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => to_document(action, key, map).map(Some),
        Some(Value::Array(items)) if items.is_empty() => Ok(Some(Document::new())),
        Some(other) => Err(format!("mongo {action}: '{key}' must be a table, got {}", kind(other))),
    }
}

fn required_document(action: &str, p: &Map<String, Value>, key: &str) -> Result<Document, String> {
    optional_document(action, p, key)?.ok_or_else(|| {
        format!("mongo {action}: missing '{key}' (a table such as {{name = 'x'}}; {{}} matches any document)")
    })
}

/// `sort`: a table (`{age = -1}`), or a list of one-key tables for an order
/// over several keys (`{{age = -1}, {name = 1}}`), since a Lua table has no
/// order.
fn sort_document(p: &Map<String, Value>) -> Result<Option<Document>, String> {
    match p.get("sort") {
        Some(Value::Array(items)) => {
            let mut sort = Document::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(map) => sort.extend(to_document("query", &format!("sort[{}]", i + 1), map)?),
                    other => {
                        return Err(format!(
                            "mongo query: sort[{}] must be a table like {{age = -1}}, got {}",
                            i + 1,
                            kind(other)
                        ))
                    }
                }
            }
            Ok(Some(sort))
        }
        _ => optional_document("query", p, "sort"),
    }
}

/// `update`: operators (`{["$set"] = {...}}`) or an aggregation pipeline (a
/// list of stages).
fn update_modifications(p: &Map<String, Value>) -> Result<UpdateModifications, String> {
    match p.get("update") {
        None | Some(Value::Null) => {
            Err("mongo update: missing 'update' (update operators such as {['$set'] = {age = 4}})".into())
        }
        Some(Value::Object(map)) => {
            if map.is_empty() {
                return Err("mongo update: 'update' is empty (use operators such as {['$set'] = {age = 4}})".into());
            }
            if let Some(key) = map.keys().find(|k| !k.starts_with('$')) {
                return Err(format!(
                    "mongo update: 'update' must contain only update operators such as ['$set'] or ['$inc'], \
                     found '{key}' (to change a field write {{['$set'] = {{{key} = ...}}}})"
                ));
            }
            to_document("update", "update", map).map(UpdateModifications::Document)
        }
        Some(Value::Array(stages)) if !stages.is_empty() => stages
            .iter()
            .enumerate()
            .map(|(i, stage)| match stage {
                Value::Object(map) => to_document("update", &format!("update[{}]", i + 1), map),
                other => {
                    Err(format!("mongo update: update[{}] must be a pipeline stage table, got {}", i + 1, kind(other)))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(UpdateModifications::Pipeline),
        Some(other) => Err(format!(
            "mongo update: 'update' must be a table of update operators such as {{['$set'] = {{age = 4}}}}, got {}",
            kind(other)
        )),
    }
}

/// An `_id` for the action: an ObjectId as its hex string, anything else in
/// relaxed Extended JSON (a string id stays a string).
fn id_value(id: Bson) -> Value {
    match id {
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        other => other.into_relaxed_extjson(),
    }
}

/// A collection name MongoDB accepts: not empty, no `$` or NUL, not starting
/// with `system.` or `.`, and a namespace (`database.collection`) of at most
/// 255 bytes.
pub fn check_collection_name(action: &str, database: &str, name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('$') {
        Some("it contains '$'")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else if name.starts_with("system.") {
        Some("names starting with 'system.' are reserved")
    } else if name.starts_with('.') {
        Some("it starts with '.'")
    } else if database.len() + 1 + name.len() > 255 {
        Some("it is too long (database name + '.' + collection name must be at most 255 bytes)")
    } else {
        None
    };
    match problem {
        Some(why) => Err(format!("mongo {action}: invalid collection name {name:?}: {why}")),
        None => Ok(()),
    }
}

fn check_database_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 || name.chars().any(|c| "/\\. \"$*<>:|?\0".contains(c)) {
        return Err(format!(
            "mongo: invalid database name {name:?} (1 to 63 characters, none of / \\ . space \" $ * < > : | ?)"
        ));
    }
    Ok(())
}

fn millis(config: &Map<String, Value>, key: &str, default: u64) -> Result<u64, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|ms| (1..=3_600_000).contains(ms))
            .ok_or_else(|| format!("mongo: '{key}' must be milliseconds from 1 to 3600000, got {v}")),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The driver's server selection message describes the whole topology; the
/// servers' errors are what tells the author something ("Connection
/// refused", a DNS failure).
fn selection_reason(message: &str) -> String {
    let reasons: Vec<&str> = message
        .split("Error: Kind: ")
        .skip(1)
        .filter_map(|rest| rest.split(", labels:").next())
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if reasons.is_empty() {
        return shorten(message);
    }
    let mut unique: Vec<&str> = Vec::new();
    for r in reasons {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    shorten(&unique.join("; "))
}

/// Driver messages can describe the whole topology: keep them readable.
fn shorten(message: &str) -> String {
    const MAX: usize = 400;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests;
