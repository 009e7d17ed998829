//! Records kept by a [`Store`](crate::Store).

use serde::{Deserialize, Serialize};

use crate::JsonArgs;

/// Per-action limits. 0 means "the server default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Kilobytes of Lua heap.
    pub maxmem: u64,
    /// Milliseconds of wall-clock time per invocation.
    pub timeout: u64,
    /// VM instruction budget per invocation.
    pub instructions: u64,
}

/// A stored action: its source, compiled bytecode and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    /// 1 to 128 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
    pub name: String,
    /// Starts at 1, increases by one on every update.
    pub version: i64,
    /// The Lua source as uploaded, byte for byte. Lua source may hold any
    /// bytes (in string literals and comments), so it need not be UTF-8.
    pub source: Vec<u8>,
    /// Lua 5.4 bytecode compiled by the server.
    pub bytecode: Vec<u8>,
    /// Hex SHA-256 of `bytecode`, verified before it is loaded.
    pub checksum: String,
    /// Limits as requested (0 = server default).
    pub limits: Limits,
    /// Unix milliseconds.
    pub created: i64,
    /// Unix milliseconds.
    pub updated: i64,
}

/// What `list_actions` returns: an action without its source and bytecode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionMeta {
    pub name: String,
    pub version: i64,
    /// Bytecode size in bytes.
    pub size: u64,
    pub limits: Limits,
    pub created: i64,
    pub updated: i64,
}

impl ActionRecord {
    /// The metadata of this record.
    pub fn meta(&self) -> ActionMeta {
        ActionMeta {
            name: self.name.clone(),
            version: self.version,
            size: self.bytecode.len() as u64,
            limits: self.limits,
            created: self.created,
            updated: self.updated,
        }
    }
}

/// Lifecycle of an invocation: `Queued -> Running -> Succeeded | Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl InvocationStatus {
    /// The lowercase name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses [`as_str`](Self::as_str) output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// `Succeeded` or `Failed`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// Why an invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationError {
    /// `action`, `runtime`, `memory`, `instructions`, `timeout`, `not_found`, ...
    pub kind: String,
    pub message: String,
}

/// One invocation of an action, blocking or asynchronous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// A UUID (v7, so ids sort by creation time).
    pub id: String,
    pub action: String,
    /// Action version that ran (0 while queued and not yet resolved).
    pub version: i64,
    pub status: InvocationStatus,
    /// `true` for `POST /actions/:name` (queued), `false` for `/block`.
    pub is_async: bool,
    /// The arguments (a JSON object), as JSON text.
    pub args: JsonArgs,
    /// The result when `Succeeded`.
    pub result: Option<serde_json::Value>,
    /// The error when `Failed`.
    pub error: Option<InvocationError>,
    /// Output of `print`, bounded.
    pub logs: String,
    /// Unix milliseconds.
    pub created: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub duration_ms: Option<u64>,
    /// VM instructions charged.
    pub instructions: Option<u64>,
    /// Peak Lua heap in bytes.
    pub peak_memory: Option<u64>,
    /// How many times the invocation was claimed to run.
    pub attempts: u32,
    /// Server that holds the claim while `Running`.
    pub owner: Option<String>,
    /// Unix milliseconds after which a `Running` claim may be taken over.
    pub lease_until: Option<i64>,
    /// The id of the invocation that ran this one with `invoke()`, if any.
    #[serde(default)]
    pub caller: Option<String>,
}

impl InvocationRecord {
    /// A record that holds nothing (no id, no action, no arguments): what
    /// stands in for one moved out of the place that held it. Allocates
    /// nothing.
    pub fn empty() -> Self {
        Self::queued(String::new(), String::new(), JsonArgs::empty(), false, 0)
    }

    /// A new queued record with nothing run yet.
    pub fn queued(id: String, action: String, args: impl Into<JsonArgs>, is_async: bool, now_ms: i64) -> Self {
        Self {
            id,
            action,
            version: 0,
            status: InvocationStatus::Queued,
            is_async,
            args: args.into(),
            result: None,
            error: None,
            logs: String::new(),
            created: now_ms,
            started: None,
            finished: None,
            duration_ms: None,
            instructions: None,
            peak_memory: None,
            attempts: 0,
            owner: None,
            lease_until: None,
            caller: None,
        }
    }
}

/// An asynchronous invocation to enqueue (see
/// [`Store::enqueue_invocations`](crate::Store::enqueue_invocations)).
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    /// The new record, status `Queued`.
    pub record: InvocationRecord,
    /// The client's idempotency key, if it gave one.
    pub key: Option<IdempotencyKey>,
}

/// An idempotency key given with a submit: the record that first holds
/// `key` is the only one written for it while that record is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The client's key (1 to 255 printable ASCII characters; the server
    /// checks this, the store compares it as an opaque string).
    pub key: String,
    /// What the submit asked for (the server hashes the action and the
    /// arguments), so that a reuse of the key for something else can be
    /// told apart from a retry.
    pub fingerprint: String,
}

/// What [`Store::enqueue_invocations`](crate::Store::enqueue_invocations)
/// did with one submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The record is stored (now, or by an earlier try of the same call).
    New,
    /// Its key is held by a stored record, so nothing was written: the id
    /// and fingerprint of that record.
    Existing { id: String, fingerprint: String },
}

/// Bytes a store counts for every invocation record besides its variable
/// fields (see [`InvocationRecord::stored_size`]).
pub const RECORD_OVERHEAD: u64 = 128;

impl InvocationRecord {
    /// The size a store counts for this record: the bytes of its arguments'
    /// text and its result's JSON, its logs, error, id, action and caller, plus
    /// [`RECORD_OVERHEAD`] for the rest (the owner too, which a claim
    /// changes in the store). It is what
    /// [`Store::invocation_bytes`](crate::Store::invocation_bytes) adds up
    /// and what the store budget bounds.
    pub fn stored_size(&self) -> u64 {
        self.stored_size_with(self.result.as_ref().map_or(0, json_len))
    }

    /// [`stored_size`](Self::stored_size) for a store that has encoded the
    /// result already: `result_len` is the bytes of its compact JSON (0
    /// for no result).
    pub fn stored_size_with(&self, result_len: usize) -> u64 {
        let text = self.logs.len()
            + self.error.as_ref().map_or(0, |e| e.kind.len() + e.message.len())
            + self.id.len()
            + self.action.len()
            + self.caller.as_ref().map_or(0, String::len);
        RECORD_OVERHEAD + (self.args.len() + result_len + text) as u64
    }
}

/// The bytes of `value`'s compact JSON, counted without building it.
fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// What [`Store::purge_oldest_invocations`](crate::Store::purge_oldest_invocations)
/// deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Records deleted.
    pub records: u64,
    /// Their [`stored_size`](InvocationRecord::stored_size)s added up.
    pub bytes: u64,
}

/// A route: requests whose method, host and path match run `action`
/// (served on the server's routes listener).
///
/// The store treats `method`, `host` and `path` as opaque strings; the
/// exact triple is the key. The server validates patterns and checks
/// overlapping routes; the store only keeps the key unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    /// Upper-case method ("GET", "POST", ...) or "*" for any method.
    pub method: String,
    /// Lower-case host name without port, or "" for any host.
    pub host: String,
    /// The path pattern as given, e.g. "/users/:id" or "/static/*rest".
    pub path: String,
    /// The action it runs.
    pub action: String,
    /// Unix milliseconds.
    pub created: i64,
}

impl RouteRecord {
    /// How messages name the route with this key: `GET example.com/users/:id`,
    /// or `* /static/*rest` for any method on any host. It is what
    /// [`StoreError::AlreadyExists`](crate::StoreError::AlreadyExists) holds
    /// for a duplicate route.
    pub fn label_of(method: &str, host: &str, path: &str) -> String {
        format!("{method} {host}{path}")
    }

    /// [`label_of`](Self::label_of) this route's key.
    pub fn label(&self) -> String {
        Self::label_of(&self.method, &self.host, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [InvocationStatus; 4] =
        [InvocationStatus::Queued, InvocationStatus::Running, InvocationStatus::Succeeded, InvocationStatus::Failed];

    #[test]
    fn status_names_round_trip() {
        for status in ALL {
            assert_eq!(InvocationStatus::parse(status.as_str()), Some(status));
            // The JSON name is the database name.
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::Value::from(status.as_str()));
        }
        for bad in ["", "Queued", "QUEUED", "done", "queued "] {
            assert_eq!(InvocationStatus::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_succeeded_and_failed_are_terminal() {
        let terminal: Vec<_> = ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [InvocationStatus::Succeeded, InvocationStatus::Failed]);
    }

    #[test]
    fn meta_reports_the_bytecode_size() {
        let rec = ActionRecord {
            name: "a".into(),
            version: 2,
            source: "return 1".into(),
            bytecode: vec![0; 42],
            checksum: String::new(),
            limits: Limits { maxmem: 1, timeout: 2, instructions: 3 },
            created: 10,
            updated: 20,
        };
        let meta = rec.meta();
        assert_eq!((meta.name.as_str(), meta.version, meta.size, meta.limits), ("a", 2, 42, rec.limits));
        assert_eq!((meta.created, meta.updated), (10, 20));
    }

    #[test]
    fn a_new_queued_record_has_run_nothing() {
        let rec = InvocationRecord::queued("id".into(), "act".into(), serde_json::json!({"a": 1}), true, 5);
        assert_eq!((rec.status, rec.attempts, rec.version, rec.created), (InvocationStatus::Queued, 0, 0, 5));
        assert!(rec.started.is_none() && rec.owner.is_none() && rec.lease_until.is_none() && rec.result.is_none());
        assert!(rec.caller.is_none());
    }

    #[test]
    fn a_record_without_a_caller_deserializes() {
        let rec = InvocationRecord::queued("id".into(), "act".into(), serde_json::json!({}), false, 5);
        let mut value = serde_json::to_value(&rec).unwrap();
        assert_eq!(value["caller"], serde_json::Value::Null);
        value.as_object_mut().unwrap().remove("caller");
        assert_eq!(serde_json::from_value::<InvocationRecord>(value).unwrap(), rec);
    }

    #[test]
    fn the_stored_size_counts_the_json_and_the_text() {
        let mut rec = InvocationRecord::queued("id".into(), "act".into(), serde_json::json!({"a": "xyz"}), false, 5);
        // {"a":"xyz"} is 11 bytes; "id" and "act" 5.
        assert_eq!(rec.stored_size(), RECORD_OVERHEAD + 11 + 5);
        rec.result = Some(serde_json::json!([1, 2]));
        rec.logs = "é\n".into();
        rec.error = Some(InvocationError { kind: "k".into(), message: "mm".into() });
        rec.owner = Some("o".into());
        rec.caller = Some("cc".into());
        assert_eq!(rec.stored_size(), RECORD_OVERHEAD + 11 + 5 + 5 + 3 + 3 + 2, "the owner is not counted");
        let result = rec.result.as_ref().unwrap().to_string();
        assert_eq!(rec.stored_size(), rec.stored_size_with(result.len()));
    }

    #[test]
    fn route_labels_name_method_host_and_path() {
        let route = RouteRecord {
            method: "GET".into(),
            host: "example.com".into(),
            path: "/users/:id".into(),
            action: "users".into(),
            created: 1,
        };
        assert_eq!(route.label(), "GET example.com/users/:id");
        assert_eq!(RouteRecord::label_of("*", "", "/static/*rest"), "* /static/*rest");
    }
}

/// How an invocation was started, for its action's [`RunCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// `POST /actions/:name/block`: its client waited for the result.
    Blocking,
    /// `POST /actions/:name`: queued, run later.
    Async,
    /// A request to one of the server's HTTP routes.
    Route,
    /// An `invoke()` from another action.
    Invoke,
    /// A batch of a subscription's messages.
    Event,
}

impl RunKind {
    /// Every kind, in the order of [`RunCounts::runs`].
    pub const ALL: [RunKind; 5] = [RunKind::Blocking, RunKind::Async, RunKind::Route, RunKind::Invoke, RunKind::Event];

    /// Its name in the API (and in the stores' columns and fields).
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Blocking => "blocking",
            RunKind::Async => "async",
            RunKind::Route => "route",
            RunKind::Invoke => "invoke",
            RunKind::Event => "event",
        }
    }
}

/// How many runs ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub succeeded: u64,
    pub failed: u64,
}

/// The run counters of one action: every invocation that ran (or failed
/// to start) is counted, whether or not its record is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub action: String,
    /// Indexed by [`RunKind`] (in the order of [`RunKind::ALL`]).
    pub runs: [Outcomes; 5],
}

impl RunCounts {
    /// No run counted for `action` yet.
    pub fn new(action: impl Into<String>) -> Self {
        Self { action: action.into(), runs: [Outcomes::default(); 5] }
    }

    /// The name of each counter as the stores keep it (column, field):
    /// succeeded and failed runs of each kind, in the order of
    /// [`RunKind::ALL`], as [`values`](Self::values) gives them.
    pub const FIELDS: [&'static str; 10] = [
        "blocking_succeeded",
        "blocking_failed",
        "async_succeeded",
        "async_failed",
        "route_succeeded",
        "route_failed",
        "invoke_succeeded",
        "invoke_failed",
        "event_succeeded",
        "event_failed",
    ];

    /// The counters in the order of [`FIELDS`](Self::FIELDS).
    pub fn values(&self) -> [u64; 10] {
        let mut v = [0; 10];
        for (i, o) in self.runs.iter().enumerate() {
            (v[2 * i], v[2 * i + 1]) = (o.succeeded, o.failed);
        }
        v
    }

    /// The counters of `action` from `values`, in the order of
    /// [`FIELDS`](Self::FIELDS).
    pub fn from_values(action: impl Into<String>, values: [u64; 10]) -> Self {
        let mut c = Self::new(action);
        for (i, o) in c.runs.iter_mut().enumerate() {
            (o.succeeded, o.failed) = (values[2 * i], values[2 * i + 1]);
        }
        c
    }

    /// The counters of one kind of run.
    pub fn of(&self, kind: RunKind) -> Outcomes {
        self.runs[kind as usize]
    }

    /// Counts one run of `kind`.
    pub fn count(&mut self, kind: RunKind, succeeded: bool) {
        let o = &mut self.runs[kind as usize];
        if succeeded {
            o.succeeded += 1;
        } else {
            o.failed += 1;
        }
    }

    /// Adds `other`'s counters (of any action) to these.
    pub fn add(&mut self, other: &RunCounts) {
        for (mine, theirs) in self.runs.iter_mut().zip(&other.runs) {
            mine.succeeded += theirs.succeeded;
            mine.failed += theirs.failed;
        }
    }

    /// Whether every counter is 0.
    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(|o| o.succeeded == 0 && o.failed == 0)
    }
}
