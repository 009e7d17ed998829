//! `config.lua`: the server's configuration, written as Lua.
//!
//! ```lua
//! Server  { host = "127.0.0.1", port = 8080 }
//! Logger  { level = "info" }
//! Sqlite  { path = "data/sl.db" }      -- or: Nulldb {}
//! Limits  { maxmem = 65536, instructions = 100000000, timeout = 5000 }
//! Routes  { host = "127.0.0.1", port = 8081 }   -- serve routes (optional)
//! ```
//!
//! Every block and setting is optional; unknown blocks and settings are
//! errors, so a typo never silently falls back to a default. Relative paths
//! are resolved against the directory that holds the config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlua::{Lua, Table, Value};

use crate::plugin::PluginSpec;

/// Where actions and invocations are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `Sqlite { path = ..., synchronous = "normal" }`: the embedded
    /// default. `synchronous = "full"` syncs every commit to disk.
    Sqlite { path: PathBuf, durability: sl_store::Durability },
    /// `Nulldb {}`: in memory, lost at exit (development only).
    Null,
    /// `Mongodb { url = "mongodb://database", port = 27017, database = "sl" }`:
    /// the production store, shared by any number of servers. `url` may be
    /// a full connection string; `port` is added when it has none.
    Mongodb { url: String, port: Option<u16>, database: String },
}

/// `Server { ... }`: the listener and HTTP limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Largest request head in bytes (431 above).
    pub max_head: usize,
    /// Largest request body in bytes (413 above).
    pub max_body: usize,
    /// Most header fields per request (431 above).
    pub max_headers: usize,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// A request must arrive completely within this (408 after).
    pub request_timeout: Duration,
    /// Connections beyond this are refused (closed at once).
    pub max_connections: usize,
    /// An answer must be read in full within this of when it began to wait
    /// (a client that reads too slowly, however steadily, is disconnected).
    pub send_timeout: Duration,
    /// Bytes of big requests (past the first 16 KiB) being received that
    /// one worker holds at once; beyond it, connections' bodies wait to be
    /// read.
    pub request_memory: usize,
    /// The largest answer made from an action's result, in bytes: a bigger
    /// one is an error of kind `too_large` (and costs no more than this to
    /// find out).
    pub max_response: usize,
    /// Bytes of answers waiting to be sent that one worker holds at once;
    /// beyond it, the connections whose clients have left output waiting
    /// longest are closed.
    pub response_memory: usize,
    /// Worker threads, each with its own event loop, listener on the port
    /// (`SO_REUSEPORT`) and Lua states.
    pub workers: usize,
    /// Threads of the blocking pool (store calls, compiles), per worker;
    /// 0 chooses for the store (see [`Config::pool_threads`]).
    pub pool_threads: usize,
    /// Most threads running plugin calls at once (the pool grows on demand).
    pub plugin_threads: usize,
    /// Lua CPU time one invocation gets before others get a turn.
    pub time_slice: Duration,
    /// Show error details of failed actions to clients (500 messages).
    pub debug: bool,
    /// Allow listening on a non-loopback address without API tokens.
    pub insecure: bool,
    /// Count invocations and serve `GET /metrics` (README, "Metrics").
    pub metrics: bool,
}

/// `Limits { ... }`: per-action defaults and the maxima a create may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Default `maxmem`, KiB of Lua heap.
    pub maxmem: u64,
    /// Default VM instruction budget.
    pub instructions: u64,
    /// Default timeout, ms.
    pub timeout: u64,
    /// The most `maxmem` an action may ask for, KiB.
    pub max_maxmem: u64,
    /// KiB of Lua heap beyond which an invocation's time slices run on
    /// its worker's heavy thread instead of the event loop: some steps of
    /// the VM that cannot be paused (a table's rehash, the collector's
    /// atomic step, freeing a state) take time in proportion to the heap,
    /// and this bounds the heap they may work through on the loop
    /// (SECURITY.md, "The sandbox audit").
    pub offload_heap: u64,
    /// The most `instructions` an action may ask for.
    pub max_instructions: u64,
    /// The most `timeout` an action may ask for, ms.
    pub max_timeout: u64,
    /// Idle warm instances kept per action.
    pub warm_instances: usize,
    /// KiB all Lua states of the server may hold together (shared out
    /// between the workers); idle instances are evicted to stay under it.
    pub total_memory: u64,
    /// Invocations running or waiting to start per worker beyond which new
    /// blocking invocations get 503 with `Retry-After`.
    pub max_waiting: usize,
    /// KiB the longest string of a Lua state may hold (64 KiB to 1 GiB).
    /// Comparing, hashing or concatenating a string is one VM instruction
    /// that cannot be paused, so this bounds how long one instruction may
    /// hold a worker (a few milliseconds at the default 8 MiB).
    pub max_string: u64,
}

/// `Invocations { ... }`: the asynchronous queue and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationsConfig {
    /// Seconds a finished invocation record is kept.
    pub retention: u64,
    /// Asynchronous invocations run at once by this server.
    pub concurrency: usize,
    /// Whether a submit (without an `Idempotency-Key`) may start before
    /// the commit that stores it, when its worker has the action cached
    /// and room to run it: its commit then usually stores it finished, one
    /// write for the whole invocation. If that commit fails, the client
    /// gets the error and the invocation has run.
    pub start_before_commit: bool,
    /// Runs of one invocation before it is failed as abandoned.
    pub max_attempts: u32,
    /// Whether blocking invocations are recorded too.
    pub record_blocking: bool,
    /// Beyond the first few a second of an action (on each worker), one
    /// successful blocking API run in this many keeps its record (1: every
    /// one). Failures are always recorded, and every run is counted.
    pub sample_successes: u64,
    /// Bytes of each of the arguments, result, logs and error message the
    /// record of a blocking or route run keeps (bigger ones are replaced by
    /// a marker or cut).
    pub record_limit: usize,
    /// MiB the stored invocation records may take together; beyond it the
    /// oldest finished records are purged before their retention (0: no
    /// budget, retention only).
    pub store_budget: u64,
    /// Queued asynchronous invocations beyond which submissions get 503
    /// with `Retry-After`.
    pub max_queued: u64,
    /// Milliseconds a claimed asynchronous invocation stays with its server
    /// before another may take it over (its server died). 0 = `max_timeout`
    /// plus 10 seconds: never shorter than an invocation may run.
    pub lease: u64,
}

/// `Auth { admin = "...", invoke = { "...", ... } }`: API tokens, sent as
/// `Authorization: Bearer TOKEN`. The admin token may do everything; invoke
/// tokens may run actions and read invocation results. With no tokens the
/// API is open, and the server only listens on loopback unless
/// `Server { insecure = true }`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    pub admin: Option<String>,
    pub invoke: Vec<String>,
}

impl AuthConfig {
    /// Whether any token is configured.
    pub fn enabled(&self) -> bool {
        self.admin.is_some() || !self.invoke.is_empty()
    }
}

impl std::fmt::Debug for AuthConfig {
    // Tokens are secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("admin", &self.admin.as_ref().map(|_| "<redacted>"))
            .field("invoke", &format!("{} token(s)", self.invoke.len()))
            .finish()
    }
}

/// `Routes { host = ..., port = ... }`: the listener that serves routes
/// (requests mapped to actions by method, host and path). It is separate
/// from the API's listener so that an app's paths can never collide with
/// the management API, and so that the app can face the public while the
/// API stays on loopback or behind tokens: routes only run actions an
/// admin has routed, and each action decides what its callers may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesConfig {
    pub host: String,
    pub port: u16,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    /// `Logger { level = ... }`: error, warn, info, debug or trace.
    pub log_level: String,
    pub store: StoreConfig,
    pub limits: LimitsConfig,
    pub invocations: InvocationsConfig,
    /// `Plugin "name" { file = "...", ... }`, in the order written.
    pub plugins: Vec<PluginSpec>,
    pub auth: AuthConfig,
    /// Where routes are served; `None`: routes are kept but not served.
    pub routes: Option<RoutesConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                host: "127.0.0.1".into(),
                port: 8080,
                max_head: 16 * 1024,
                max_body: 1024 * 1024,
                max_headers: 64,
                idle_timeout: Duration::from_secs(60),
                request_timeout: Duration::from_secs(10),
                max_connections: 4096,
                send_timeout: Duration::from_secs(60),
                request_memory: 64 << 20,
                response_memory: 256 << 20,
                max_response: 16 << 20,
                workers: 1,
                pool_threads: 0,
                plugin_threads: 256,
                time_slice: Duration::from_millis(1),
                debug: false,
                insecure: false,
                metrics: true,
            },
            log_level: "info".into(),
            store: StoreConfig::Sqlite { path: PathBuf::from("data/sl.db"), durability: Default::default() },
            limits: LimitsConfig {
                maxmem: 65536,
                instructions: 100_000_000,
                timeout: 5000,
                max_maxmem: 64 * 1024,
                offload_heap: 8 * 1024,
                max_instructions: 10_000_000_000,
                max_timeout: 300_000,
                warm_instances: 4,
                total_memory: 2 * 1024 * 1024,
                max_waiting: 10_000,
                max_string: 8 * 1024,
            },
            invocations: InvocationsConfig {
                retention: 7 * 24 * 3600,
                concurrency: 16,
                start_before_commit: true,
                max_attempts: 3,
                record_blocking: true,
                sample_successes: 1000,
                record_limit: 64 * 1024,
                store_budget: 1024,
                max_queued: 100_000,
                lease: 0,
            },
            plugins: Vec::new(),
            auth: AuthConfig::default(),
            routes: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Lua(String),
    #[error("{block}: {message}")]
    Invalid { block: String, message: String },
}

fn invalid(block: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { block: block.to_string(), message: message.into() }
}

impl Config {
    /// Threads of each worker's blocking pool: `Server.pool_threads`, or
    /// when it is 0 (the default), 2 on SQLite and Nulldb, whose one
    /// connection takes one call at a time (more threads only queue for
    /// it, and their hand-offs cost more than the calls: 18,000
    /// asynchronous hellos a second on two threads, 12,000 on four; the
    /// second keeps a compile from holding up store calls), and 4 on
    /// MongoDB, whose calls wait on the network.
    pub fn pool_threads(&self) -> usize {
        match (self.server.pool_threads, &self.store) {
            (0, StoreConfig::Mongodb { .. }) => 4,
            (0, _) => 2,
            (n, _) => n,
        }
    }

    /// Milliseconds a claimed invocation is leased for (see
    /// [`InvocationsConfig::lease`]).
    pub fn lease_ms(&self) -> u64 {
        if self.invocations.lease > 0 {
            self.invocations.lease
        } else {
            self.limits.max_timeout.saturating_add(10_000)
        }
    }

    /// Reads and evaluates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let source =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_lua_source(&source, &path.display().to_string(), &base)
    }

    /// Evaluates config source; relative paths are resolved against `base`.
    pub fn from_lua_source(source: &str, name: &str, base: &Path) -> Result<Self, ConfigError> {
        let lua = Lua::new();
        let blocks = lua.create_table().map_err(lua_err)?;
        for block in ["Server", "Logger", "Limits", "Sqlite", "Nulldb", "Mongodb", "Invocations", "Auth", "Routes"] {
            let blocks = blocks.clone();
            let f = lua
                .create_function(move |_, t: Value| {
                    let t = match t {
                        Value::Table(t) => t,
                        _ => return Err(mlua::Error::runtime(format!("{block} expects a table: {block} {{ ... }}"))),
                    };
                    if blocks.contains_key(block)? {
                        return Err(mlua::Error::runtime(format!("{block} is configured twice")));
                    }
                    blocks.set(block, t)
                })
                .map_err(lua_err)?;
            lua.globals().set(block, f).map_err(lua_err)?;
        }
        let plugins = lua.create_table().map_err(lua_err)?;
        {
            let plugins = plugins.clone();
            let f = lua
                .create_function(move |lua, name: Value| {
                    let name = match name {
                        Value::String(s) => s.to_string_lossy(),
                        _ => return Err(mlua::Error::runtime("Plugin expects a name: Plugin \"name\" { file = ... }")),
                    };
                    let plugins = plugins.clone();
                    lua.create_function(move |lua, t: Value| {
                        let Value::Table(t) = t else {
                            return Err(mlua::Error::runtime(format!(
                                "Plugin \"{name}\" expects a table: {{ file = ... }}"
                            )));
                        };
                        let entry = plugins.raw_len() + 1;
                        let pair =
                            lua.create_sequence_from([Value::String(lua.create_string(&name)?), Value::Table(t)])?;
                        plugins.raw_set(entry, pair)
                    })
                })
                .map_err(lua_err)?;
            lua.globals().set("Plugin", f).map_err(lua_err)?;
        }
        lua.load(source).set_name(format!("@{name}")).exec().map_err(lua_err)?;

        let mut cfg = Config::default();
        let get =
            |name: &str| -> Result<Option<Table>, ConfigError> { blocks.get::<Option<Table>>(name).map_err(lua_err) };
        if let Some(t) = get("Server")? {
            let mut b = Block::new("Server", t);
            let s = &mut cfg.server;
            if let Some(v) = b.string("host")? {
                s.host = v;
            }
            if let Some(v) = b.int("port", 0, 65535)? {
                s.port = v as u16;
            }
            if let Some(v) = b.int("max_head", 1024, 1 << 20)? {
                s.max_head = v as usize;
            }
            if let Some(v) = b.int("max_body", 0, 1 << 30)? {
                s.max_body = v as usize;
            }
            if let Some(v) = b.int("max_headers", 8, 1024)? {
                s.max_headers = v as usize;
            }
            if let Some(v) = b.int("idle_timeout", 1, 86_400_000)? {
                s.idle_timeout = Duration::from_millis(v);
            }
            if let Some(v) = b.int("request_timeout", 1, 86_400_000)? {
                s.request_timeout = Duration::from_millis(v);
            }
            if let Some(v) = b.int("max_connections", 1, 1 << 20)? {
                s.max_connections = v as usize;
            }
            if let Some(v) = b.int("send_timeout", 1, 86_400_000)? {
                s.send_timeout = Duration::from_millis(v);
            }
            if let Some(v) = b.int("request_memory", 1 << 20, 1 << 40)? {
                s.request_memory = v as usize;
            }
            if let Some(v) = b.int("response_memory", 1 << 20, 1 << 40)? {
                s.response_memory = v as usize;
            }
            if let Some(v) = b.int("max_response", 1024, 1 << 32)? {
                s.max_response = v as usize;
            }
            if let Some(v) = b.int("pool_threads", 0, 256)? {
                s.pool_threads = v as usize;
            }
            if let Some(v) = b.int("workers", 1, 256)? {
                s.workers = v as usize;
            }
            if let Some(v) = b.int("plugin_threads", 1, 4096)? {
                s.plugin_threads = v as usize;
            }
            if let Some(v) = b.int("time_slice", 1, 1000)? {
                s.time_slice = Duration::from_millis(v);
            }
            if let Some(v) = b.bool("debug")? {
                s.debug = v;
            }
            if let Some(v) = b.bool("insecure")? {
                s.insecure = v;
            }
            if let Some(v) = b.bool("metrics")? {
                s.metrics = v;
            }
            b.finish()?;
            if s.request_memory < s.max_head + s.max_body {
                return Err(invalid(
                    "Server",
                    format!(
                        "request_memory ({}) must hold at least one whole request: max_head + max_body = {}",
                        s.request_memory,
                        s.max_head + s.max_body
                    ),
                ));
            }
        }
        if let Some(t) = get("Routes")? {
            let mut b = Block::new("Routes", t);
            let mut r = RoutesConfig { host: cfg.server.host.clone(), port: 8081 };
            if let Some(v) = b.string("host")? {
                r.host = v;
            }
            if let Some(v) = b.int("port", 0, 65535)? {
                r.port = v as u16;
            }
            b.finish()?;
            cfg.routes = Some(r);
        }
        if let Some(t) = get("Logger")? {
            let mut b = Block::new("Logger", t);
            if let Some(v) = b.string("level")? {
                if !["error", "warn", "info", "debug", "trace"].contains(&v.as_str()) {
                    return Err(invalid(
                        "Logger",
                        format!("level must be error, warn, info, debug or trace, not '{v}'"),
                    ));
                }
                cfg.log_level = v;
            }
            b.finish()?;
        }
        if let Some(t) = get("Limits")? {
            let mut b = Block::new("Limits", t);
            let l = &mut cfg.limits;
            for (key, slot) in [
                ("maxmem", &mut l.maxmem),
                ("instructions", &mut l.instructions),
                ("timeout", &mut l.timeout),
                ("max_maxmem", &mut l.max_maxmem),
                ("max_instructions", &mut l.max_instructions),
                ("max_timeout", &mut l.max_timeout),
            ] {
                if let Some(v) = b.int(key, 1, u64::MAX >> 12)? {
                    *slot = v;
                }
            }
            if let Some(v) = b.int("warm_instances", 0, 1024)? {
                l.warm_instances = v as usize;
            }
            if let Some(v) = b.int("total_memory", 1024, u64::MAX >> 12)? {
                l.total_memory = v;
            }
            if let Some(v) = b.int("max_waiting", 1, 10_000_000)? {
                l.max_waiting = v as usize;
            }
            if let Some(v) = b.int("max_string", 64, 1024 * 1024)? {
                l.max_string = v;
            }
            if let Some(v) = b.int("offload_heap", 1024, u64::MAX >> 12)? {
                l.offload_heap = v;
            }
            b.finish()?;
            for (name, default, max) in [
                ("maxmem", l.maxmem, l.max_maxmem),
                ("instructions", l.instructions, l.max_instructions),
                ("timeout", l.timeout, l.max_timeout),
            ] {
                if default > max {
                    return Err(invalid("Limits", format!("{name} = {default} is above max_{name} = {max}")));
                }
            }
        }
        let stores: Vec<(&str, Table)> = ["Sqlite", "Nulldb", "Mongodb"]
            .into_iter()
            .filter_map(|name| get(name).transpose().map(|t| t.map(|t| (name, t))))
            .collect::<Result<_, _>>()?;
        if stores.len() > 1 {
            let names: Vec<&str> = stores.iter().map(|(n, _)| *n).collect();
            return Err(invalid(names[0], format!("configure one store, not {}", names.join(" and "))));
        }
        cfg.store = match stores.into_iter().next() {
            Some(("Sqlite", t)) => {
                let mut b = Block::new("Sqlite", t);
                let path = PathBuf::from(b.string("path")?.unwrap_or_else(|| "data/sl.db".into()));
                let durability = match b.string("synchronous")?.as_deref() {
                    None | Some("normal") => sl_store::Durability::Process,
                    Some("full") => sl_store::Durability::Power,
                    Some(other) => {
                        return Err(invalid(
                            "Sqlite",
                            format!("synchronous must be \"normal\" or \"full\", not '{other}'"),
                        ))
                    }
                };
                b.finish()?;
                StoreConfig::Sqlite { path: if path.is_absolute() { path } else { base.join(path) }, durability }
            }
            Some(("Mongodb", t)) => {
                let mut b = Block::new("Mongodb", t);
                let url = b.string("url")?.unwrap_or_else(|| "mongodb://127.0.0.1".into());
                let port = b.int("port", 1, 65535)?.map(|p| p as u16);
                let database = b.string("database")?.unwrap_or_else(|| "sl".into());
                b.finish()?;
                if !url.starts_with("mongodb://") && !url.starts_with("mongodb+srv://") {
                    return Err(invalid(
                        "Mongodb",
                        format!("url must start with mongodb:// or mongodb+srv://, not '{url}'"),
                    ));
                }
                if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
                    return Err(invalid("Mongodb", format!("'{database}' is not a valid database name")));
                }
                StoreConfig::Mongodb { url, port, database }
            }
            Some((_, t)) => {
                Block::new("Nulldb", t).finish()?;
                StoreConfig::Null
            }
            None => StoreConfig::Sqlite { path: base.join("data/sl.db"), durability: Default::default() },
        };
        if let Some(t) = get("Invocations")? {
            let mut b = Block::new("Invocations", t);
            let i = &mut cfg.invocations;
            if let Some(v) = b.int("retention", 1, u64::MAX >> 12)? {
                i.retention = v;
            }
            if let Some(v) = b.int("concurrency", 1, 100_000)? {
                i.concurrency = v as usize;
            }
            if let Some(v) = b.bool("start_before_commit")? {
                i.start_before_commit = v;
            }
            if let Some(v) = b.int("max_attempts", 1, 100)? {
                i.max_attempts = v as u32;
            }
            if let Some(v) = b.bool("record_blocking")? {
                i.record_blocking = v;
            }
            if let Some(v) = b.int("sample_successes", 1, 1_000_000)? {
                i.sample_successes = v;
            }
            if let Some(v) = b.int("record_limit", 1024, 1 << 30)? {
                i.record_limit = v as usize;
            }
            if let Some(v) = b.int("store_budget", 0, 1 << 30)? {
                i.store_budget = v;
            }
            if let Some(v) = b.int("max_queued", 1, u64::MAX >> 12)? {
                i.max_queued = v;
            }
            // 0, the default, is max_timeout plus 10 seconds.
            if let Some(v) = b.int("lease", 0, u64::MAX >> 12)? {
                if v > 0 && v < 1000 {
                    return Err(invalid("Invocations", format!("lease = {v} is outside 1000..={}", u64::MAX >> 12)));
                }
                if v > 0 && v <= cfg.limits.max_timeout {
                    return Err(invalid(
                        "Invocations",
                        format!("lease = {v} must be longer than Limits.max_timeout = {}", cfg.limits.max_timeout),
                    ));
                }
                i.lease = v;
            }
            b.finish()?;
        }
        if let Some(t) = get("Auth")? {
            let check = |what: &str, token: String| -> Result<String, ConfigError> {
                if token.len() < 16 || token.bytes().any(|b| !b.is_ascii_graphic()) {
                    return Err(invalid(
                        "Auth",
                        format!("{what} token must be at least 16 printable characters without spaces"),
                    ));
                }
                Ok(token)
            };
            let mut b = Block::new("Auth", t.clone());
            if let Some(v) = b.string("admin")? {
                cfg.auth.admin = Some(check("the admin", v)?);
            }
            b.seen.push("invoke".into());
            match t.raw_get::<Value>("invoke").map_err(lua_err)? {
                Value::Nil => {}
                Value::String(s) => cfg.auth.invoke.push(check("an invoke", s.to_string_lossy())?),
                Value::Table(list) => {
                    for v in list.sequence_values::<Value>() {
                        match v.map_err(lua_err)? {
                            Value::String(s) => cfg.auth.invoke.push(check("an invoke", s.to_string_lossy())?),
                            other => {
                                return Err(invalid(
                                    "Auth",
                                    format!("invoke tokens must be strings, not {}", describe(&other)),
                                ))
                            }
                        }
                    }
                }
                other => {
                    return Err(invalid(
                        "Auth",
                        format!("invoke must be a string or a list of strings, not {}", describe(&other)),
                    ))
                }
            }
            b.finish()?;
        }
        for pair in plugins.sequence_values::<Table>() {
            let pair = pair.map_err(lua_err)?;
            let name: String = pair.raw_get(1).map_err(lua_err)?;
            let t: Table = pair.raw_get(2).map_err(lua_err)?;
            let block = format!("Plugin \"{name}\"");
            if !crate::valid_name(&name) {
                return Err(invalid(&block, "plugin names use 1 to 128 letters, digits, '-', '_' or '.'"));
            }
            if cfg.plugins.iter().any(|p| p.name == name) {
                return Err(invalid(&block, "configured twice"));
            }
            let file = match t.raw_get::<Value>("file").map_err(lua_err)? {
                Value::String(s) => PathBuf::from(s.to_string_lossy()),
                Value::Nil => return Err(invalid(&block, "file is missing: the path of the plugin's shared library")),
                other => return Err(invalid(&block, format!("file must be a string, not {}", describe(&other)))),
            };
            t.raw_set("file", Value::Nil).map_err(lua_err)?;
            let config = crate::sandbox::json::from_lua(&lua, &Value::Table(t))
                .map_err(|e| invalid(&block, format!("settings {e}")))?;
            let config = if config.as_object().is_some() { config } else { serde_json::json!({}) };
            let file = if file.is_absolute() { file } else { base.join(file) };
            cfg.plugins.push(PluginSpec { name, file, config });
        }
        Ok(cfg)
    }
}

fn lua_err(e: mlua::Error) -> ConfigError {
    ConfigError::Lua(match e {
        mlua::Error::CallbackError { cause, .. } => cause.to_string(),
        e => e.to_string(),
    })
}

/// Reads typed settings from one block and reports leftovers.
struct Block {
    name: &'static str,
    table: Table,
    seen: Vec<String>,
}

impl Block {
    fn new(name: &'static str, table: Table) -> Self {
        Self { name, table, seen: Vec::new() }
    }

    fn raw(&mut self, key: &str) -> Result<Value, ConfigError> {
        self.seen.push(key.to_string());
        self.table.raw_get(key).map_err(lua_err)
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.raw(key)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_string_lossy())),
            other => Err(invalid(self.name, format!("{key} must be a string, not a {}", other.type_name()))),
        }
    }

    fn int(&mut self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let v = match self.raw(key)? {
            Value::Nil => return Ok(None),
            Value::Integer(i) if i >= 0 => i as u64,
            Value::Number(n) if n >= 0.0 && n.fract() == 0.0 && n < u64::MAX as f64 => n as u64,
            other => {
                return Err(invalid(self.name, format!("{key} must be a whole number, not {}", describe(&other))));
            }
        };
        if v < min || v > max {
            return Err(invalid(self.name, format!("{key} = {v} is outside {min}..={max}")));
        }
        Ok(Some(v))
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.raw(key)? {
            Value::Nil => Ok(None),
            Value::Boolean(b) => Ok(Some(b)),
            other => Err(invalid(self.name, format!("{key} must be true or false, not {}", describe(&other)))),
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
        for pair in self.table.pairs::<Value, Value>() {
            let (k, _) = pair.map_err(lua_err)?;
            let key = match &k {
                Value::String(s) => s.to_string_lossy(),
                other => describe(other),
            };
            if !self.seen.contains(&key) {
                return Err(invalid(self.name, format!("unknown setting '{key}'")));
            }
        }
        Ok(())
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{}\"", s.to_string_lossy()),
        other => format!("a {}", other.type_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::from_lua_source(src, "test.lua", Path::new("/etc/sl"))
    }

    #[test]
    fn empty_config_is_all_defaults_with_sqlite_beside_it() {
        let c = parse("").unwrap();
        assert_eq!(c.server.port, 8080);
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("/etc/sl/data/sl.db"),
                durability: sl_store::Durability::Process
            }
        );
    }

    #[test]
    fn the_pool_has_one_thread_per_connection_the_store_can_use() {
        let threads = |src: &str| Config::from_lua_source(src, "t", Path::new(".")).unwrap().pool_threads();
        assert_eq!(threads("Sqlite { path = 'x.db' }"), 2);
        assert_eq!(threads("Nulldb {}"), 2);
        assert_eq!(threads("Mongodb { url = 'mongodb://db' }"), 4);
        assert_eq!(threads("Sqlite { path = 'x.db' }\nServer { pool_threads = 3 }"), 3);
        let e = Config::from_lua_source("Server { pool_threads = 257 }", "t", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("pool_threads = 257 is outside 0..=256"), "{e}");
    }

    /// The README's configuration reference is a config that parses, but
    /// for its `Plugin` and `Auth` lines, which show placeholders.
    #[test]
    fn the_readme_configuration_block_parses() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Configuration").expect("a Configuration section")..];
        let start = section.find("```lua\n").expect("a lua block") + 7;
        let block: String = section[start..start + section[start..].find("```").expect("its end")]
            .lines()
            .filter(|line| !line.starts_with("Plugin \"name\"") && !line.starts_with("Auth { admin = \"...\""))
            .map(|line| format!("{line}\n"))
            .collect();
        if let Err(e) = parse(&block) {
            panic!("{e}\n{block}");
        }
    }

    #[test]
    fn sqlite_commits_may_be_synced() {
        let c = parse(r#"Sqlite { synchronous = "full" }"#).unwrap();
        assert!(matches!(c.store, StoreConfig::Sqlite { durability: sl_store::Durability::Power, .. }));
        let c = parse(r#"Sqlite { synchronous = "normal" }"#).unwrap();
        assert!(matches!(c.store, StoreConfig::Sqlite { durability: sl_store::Durability::Process, .. }));
        let e = parse(r#"Sqlite { synchronous = "off" }"#).unwrap_err().to_string();
        assert!(e.contains(r#"synchronous must be "normal" or "full", not 'off'"#), "{e}");
    }

    #[test]
    fn reads_every_block() {
        let c = parse(
            r#"
            Server { host = "0.0.0.0", port = 9000, max_body = 2048, idle_timeout = 1000 }
            Logger { level = "debug" }
            Limits { maxmem = 1024, timeout = 100, instructions = 5000 }
            Nulldb {}
            Invocations { retention = 60, concurrency = 2 }
            "#,
        )
        .unwrap();
        assert_eq!((c.server.host.as_str(), c.server.port, c.server.max_body), ("0.0.0.0", 9000, 2048));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(1));
        assert_eq!(c.log_level, "debug");
        assert_eq!((c.limits.maxmem, c.limits.timeout, c.limits.instructions), (1024, 100, 5000));
        assert_eq!(c.store, StoreConfig::Null);
        assert_eq!((c.invocations.retention, c.invocations.concurrency), (60, 2));
    }

    #[test]
    fn plugins_take_the_rest_of_their_block_as_config() {
        let c = parse(
            r#"
            Plugin "skeleton" { file = "lib/libsl_skeleton.so" }
            Plugin "http" { file = "/opt/libsl_http.so", timeout = 5000, allow = {"example.com"} }
            "#,
        )
        .unwrap();
        assert_eq!(c.plugins.len(), 2);
        assert_eq!(c.plugins[0].file, PathBuf::from("/etc/sl/lib/libsl_skeleton.so"));
        assert_eq!(c.plugins[0].config, serde_json::json!({}));
        assert_eq!(c.plugins[1].config, serde_json::json!({"timeout": 5000, "allow": ["example.com"]}));
        assert!(parse(r#"Plugin "x" {}"#).unwrap_err().to_string().contains("file is missing"));
        assert!(parse(r#"Plugin "x" { file = "a" } Plugin "x" { file = "b" }"#)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn mongodb_block_as_existing_users_write_it() {
        let c = parse(r#"Mongodb { url = "mongodb://database", port = 27017, database = "sl" }"#).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Mongodb { url: "mongodb://database".into(), port: Some(27017), database: "sl".into() }
        );
    }

    #[test]
    fn auth_tokens() {
        let c = parse(r#"Auth { admin = "0123456789abcdef", invoke = { "fedcba9876543210", "1111111111111111" } }"#)
            .unwrap();
        assert_eq!(c.auth.admin.as_deref(), Some("0123456789abcdef"));
        assert_eq!(c.auth.invoke.len(), 2);
        assert!(!format!("{:?}", c.auth).contains("0123456789abcdef"));
        assert!(parse(r#"Auth { admin = "short" }"#).unwrap_err().to_string().contains("at least 16"));
        assert!(!parse("").unwrap().auth.enabled());
    }

    #[test]
    fn mistakes_are_named() {
        let msg = |src: &str| parse(src).unwrap_err().to_string();
        assert!(msg("Server { prot = 1 }").contains("unknown setting 'prot'"));
        assert!(msg("Server { port = 'x' }").contains("port must be a whole number"));
        assert!(msg("Server { port = 70000 }").contains("outside"));
        assert!(msg("Logger { level = 'loud' }").contains("level must be"));
        assert!(msg("Limits { maxmem = 10, max_maxmem = 5 }").contains("above max_maxmem"));
        assert!(msg("Sqlite {} Nulldb {}").contains("configure one store, not Sqlite and Nulldb"));
        assert!(msg("Mongodb { url = 'http://x' }").contains("mongodb://"));
        assert!(msg("Server { port = 1 } Server { port = 2 }").contains("twice"));
        assert!(msg("Server(5)").contains("expects a table"));
        assert!(msg("Server {").contains("test.lua"));
        assert!(msg("Server { request_memory = 1048576, max_body = 2097152 }")
            .contains("request_memory (1048576) must hold at least one whole request"));
    }

    #[test]
    fn max_string_is_kib_within_its_range() {
        assert_eq!(parse("").unwrap().limits.max_string, 8192);
        assert_eq!(parse("Limits { max_string = 65536 }").unwrap().limits.max_string, 65536);
        let msg = |src: &str| parse(src).unwrap_err().to_string();
        assert!(msg("Limits { max_string = 63 }").contains("max_string = 63 is outside 64..=1048576"));
        assert!(msg("Limits { max_string = 1048577 }").contains("outside 64..=1048576"));
        assert!(msg("Limits { max_string = 1.5 }").contains("max_string must be a whole number"));
    }

    #[test]
    fn offload_heap_is_kib_from_one_mib() {
        assert_eq!(parse("").unwrap().limits.offload_heap, 8192);
        assert_eq!(parse("Limits { offload_heap = 1024 }").unwrap().limits.offload_heap, 1024);
        let msg = parse("Limits { offload_heap = 1023 }").unwrap_err().to_string();
        assert!(msg.contains("offload_heap = 1023 is outside 1024..="), "{msg}");
    }

    #[test]
    fn memory_and_record_bounds() {
        let c = parse("").unwrap();
        assert_eq!((c.server.request_memory, c.server.response_memory), (64 << 20, 256 << 20));
        assert_eq!((c.server.send_timeout, c.invocations.record_limit), (Duration::from_secs(60), 65536));
        assert_eq!(c.server.max_response, 16 << 20);
        assert_eq!(c.invocations.store_budget, 1024, "1 GiB of records by default");
        let c = parse(
            "Server { request_memory = 16777216, response_memory = 1048576, send_timeout = 500 }\n\
             Invocations { record_limit = 2048, store_budget = 3 }",
        )
        .unwrap();
        assert_eq!((c.server.request_memory, c.server.response_memory), (16 << 20, 1 << 20));
        assert_eq!((c.server.send_timeout, c.invocations.record_limit), (Duration::from_millis(500), 2048));
        assert_eq!(c.invocations.store_budget, 3);
        assert_eq!(parse("Invocations { store_budget = 0 }").unwrap().invocations.store_budget, 0);
    }
}
