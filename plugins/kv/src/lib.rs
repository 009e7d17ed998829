//! The `kv` plugin: a small durable key-value store for actions, in an
//! SQLite file.
//!
//! ```lua
//! -- config.lua
//! Plugin "kv" { file = "target/release/libsl_kv.so", path = "data/kv.db" }
//! -- an action
//! call('kv', 'put', { key = 'items/1', value = { name = 'apple' } })   -- true
//! local item = call('kv', 'get', { key = 'items/1' })                  -- { name = 'apple' }
//! local n = call('kv', 'incr', { key = 'visits' })                     -- 1, 2, 3, ...
//! ```
//!
//! # Configuration
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `path` | required | the SQLite file; created, with its directories, if missing. A relative path is relative to the **server process's working directory** (the server passes plugin settings as they are written; only `file` is resolved against the directory of config.lua) |
//!
//! Unknown keys are errors.
//!
//! # Actions
//!
//! - `put` `{key, value}`: stores `value` (any JSON value but null) under
//!   `key`; `true`.
//! - `get` `{key}`: the value, or null (`nil`) if absent.
//! - `delete` `{key}`: `true` if the key existed, else `false`.
//! - `list` `{prefix?, after?, limit?}`: `[{key, value}, ...]` sorted by
//!   key, the keys that start with `prefix` (default: all) and come after
//!   `after` (default: from the first), at most `limit` ([`DEFAULT_LIMIT`]
//!   by default, at most [`MAX_LIMIT`]) and no more once the values pass
//!   [`MAX_LIST_BYTES`] of JSON (the last key is the `after` of the next
//!   page).
//! - `incr` `{key, by?}`: adds `by` (default 1) to the integer under `key`
//!   (missing: 0) and returns the new value; atomic.
//!
//! Keys are non-empty strings of at most [`MAX_KEY_BYTES`] bytes; a value is
//! at most [`MAX_VALUE_BYTES`] bytes as JSON. A bad payload is an error that
//! names the action and the field; so is an unknown field or action.
//!
//! # Concurrency
//!
//! Calls share a pool of [`store::POOL_SIZE`] connections. The file is in
//! WAL mode with a busy timeout of [`store::BUSY_TIMEOUT`], so several
//! servers (processes) may use the same file; `incr` runs in an `IMMEDIATE`
//! transaction, so it is atomic across threads and processes.

pub mod store;

use std::path::{Path, PathBuf};

use sl_plugin::config::{config_table, kind};
use sl_plugin::serde_json::Map;
use sl_plugin::{export_plugin, json, Plugin, Value};

pub use store::KvStore;

/// The longest key, in bytes (UTF-8).
pub const MAX_KEY_BYTES: usize = 1024;
/// The largest value, in bytes of JSON.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Entries `list` returns when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` of `list`.
pub const MAX_LIMIT: usize = 1000;
/// Bytes of values (JSON) after which `list` stops: the plugin's answer,
/// made outside any action's memory limit, stays small whatever is stored.
pub const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;

const CONFIG_KEYS: &[&str] = &["path"];
const ACTIONS: &str = "put, get, delete, list, incr";

/// The plugin: a [`KvStore`] on the configured file.
#[derive(Debug)]
pub struct Kv {
    store: KvStore,
}

impl Plugin for Kv {
    const NAME: &'static str = "kv";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: Value) -> Result<Self, String> {
        let config = config_table("kv", config, CONFIG_KEYS)?;
        let path = match config.get("path") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::String(_)) => return Err("kv: 'path' is empty; it names the SQLite file".into()),
            None | Some(Value::Null) => {
                return Err("kv: missing 'path', the SQLite file (path = \"data/kv.db\")".into());
            }
            Some(other) => return Err(format!("kv: 'path' must be a string, got {}", kind(other))),
        };
        Ok(Kv { store: KvStore::open(&resolve(Path::new(path))?)? })
    }

    fn call(&self, action: &str, payload: Value) -> Result<Value, String> {
        match action {
            "put" => self.put(payload),
            "get" => self.get(payload),
            "delete" => self.delete(payload),
            "list" => self.list(payload),
            "incr" => self.incr(payload),
            other => Err(format!("kv: unknown action '{other}' (known: {ACTIONS})")),
        }
    }

    fn shutdown(&self) {
        self.store.close();
    }
}

export_plugin!(Kv);

/// `path` made absolute against the working directory, once, at `init`: the
/// plugin keeps using the same file should the directory change later.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("kv: cannot resolve 'path' {}: {e}", path.display()))
}

impl Kv {
    /// The store's file (absolute).
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The action `put`.
    pub fn put(&self, payload: Value) -> Result<Value, String> {
        let p = fields("put", &payload, &["key", "value"])?;
        let key = key("put", p)?;
        let value = match p.get("value") {
            None | Some(Value::Null) => {
                return Err("kv put: missing 'value' (any value but nil; to remove a key, use delete)".into());
            }
            Some(v) => v,
        };
        let text = sl_plugin::serde_json::to_string(value).map_err(|e| format!("kv put: 'value': {e}"))?;
        if text.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "kv put: 'value' is {} bytes as JSON; at most {MAX_VALUE_BYTES} (1 MiB) are allowed",
                text.len()
            ));
        }
        self.store.put(key, &text)?;
        Ok(Value::Bool(true))
    }

    /// The action `get`.
    pub fn get(&self, payload: Value) -> Result<Value, String> {
        let p = fields("get", &payload, &["key"])?;
        Ok(self.store.get(key("get", p)?)?.unwrap_or(Value::Null))
    }

    /// The action `delete`.
    pub fn delete(&self, payload: Value) -> Result<Value, String> {
        let p = fields("delete", &payload, &["key"])?;
        Ok(Value::Bool(self.store.delete(key("delete", p)?)?))
    }

    /// The action `list`.
    pub fn list(&self, payload: Value) -> Result<Value, String> {
        let p = fields("list", &payload, &["after", "limit", "prefix"])?;
        let prefix = match p.get("prefix") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s,
            Some(other) => return Err(format!("kv list: 'prefix' must be a string, got {}", kind(other))),
        };
        let after = match p.get("after") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => return Err(format!("kv list: 'after' must be a string (a key), got {}", kind(other))),
        };
        let limit = match p.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => match v.as_u64().filter(|n| (1..=MAX_LIMIT as u64).contains(n)) {
                Some(n) => n as usize,
                None => return Err(format!("kv list: 'limit' must be an integer from 1 to {MAX_LIMIT}, got {v}")),
            },
        };
        let entries = self.store.list(prefix, after, limit, MAX_LIST_BYTES)?;
        Ok(Value::Array(entries.into_iter().map(|(key, value)| json!({ "key": key, "value": value })).collect()))
    }

    /// The action `incr`.
    pub fn incr(&self, payload: Value) -> Result<Value, String> {
        let p = fields("incr", &payload, &["by", "key"])?;
        let key = key("incr", p)?;
        let by = match p.get("by") {
            None | Some(Value::Null) => 1,
            Some(v) => v.as_i64().ok_or_else(|| format!("kv incr: 'by' must be an integer, got {v}"))?,
        };
        Ok(Value::from(self.store.incr(key, by)?))
    }
}

/// The payload as a table with only the `known` fields. No payload (`nil`)
/// and an empty list count as an empty table.
fn fields<'a>(action: &str, payload: &'a Value, known: &[&str]) -> Result<&'a Map<String, Value>, String> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let map = match payload {
        Value::Object(map) => map,
        Value::Null => EMPTY.get_or_init(Map::new),
        Value::Array(items) if items.is_empty() => EMPTY.get_or_init(Map::new),
        other => {
            let example = if action == "list" { "{prefix = 'items/'}" } else { "{key = 'items/1'}" };
            return Err(format!("kv {action}: the payload must be a table like {example}, got {}", kind(other)));
        }
    };
    if let Some(field) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("kv {action}: unknown field '{field}' (known: {})", known.join(", ")));
    }
    Ok(map)
}

/// The field `key`: a non-empty string of at most [`MAX_KEY_BYTES`] bytes.
fn key<'a>(action: &str, p: &'a Map<String, Value>) -> Result<&'a str, String> {
    match p.get("key") {
        Some(Value::String(s)) if s.is_empty() => Err(format!("kv {action}: 'key' is empty")),
        Some(Value::String(s)) if s.len() > MAX_KEY_BYTES => {
            Err(format!("kv {action}: 'key' is {} bytes long; at most {MAX_KEY_BYTES} are allowed", s.len()))
        }
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => {
            Err(format!("kv {action}: missing 'key' (a string of 1 to {MAX_KEY_BYTES} bytes, such as 'items/1')"))
        }
        Some(other) => Err(format!("kv {action}: 'key' must be a string, got {}", kind(other))),
    }
}

#[cfg(test)]
mod tests;
