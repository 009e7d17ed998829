//! The manifest of an app directory, `sl.toml`: per-action limits, the
//! HTTP routes to serve, and the topics, subscriptions and schedules of the
//! app.
//!
//! ```toml
//! [actions."users.get"]      # optional, per action; absent = server defaults
//! maxmem = 1024              # KiB of Lua heap; 0 = server default
//! timeout = 500              # ms; 0 = server default
//! instructions = 0           # VM instruction budget; 0 = server default
//!
//! [[routes]]
//! method = "GET"             # or "*" for any method
//! path = "/users/:id"
//! action = "users.get"
//! host = "example.com"       # optional; absent or "" = any host
//!
//! [topics.orders]            # a topic, by name
//! partitions = 8             # 1 or more (the server allows up to 256); default 4; fixed once created
//! retention_secs = 604800    # optional; absent = messages kept for any age
//! retention_bytes = 1000000  # optional; absent = no bound on the topic's size
//!
//! [subscriptions.mailer]     # a subscription, by name
//! topic = "orders"           # a topic of [topics], or one the server has
//! action = "mail.send"       # an action of the directory, or one the server has
//! batch_size = 10            # messages a batch, 1 to 1000; default 10
//! max_wait_ms = 0            # wait for a partial batch to fill, 0 to 60000; default 0
//! max_retries = 3            # retries of a failing message before it is a dead letter, 0 to 100; default 3
//! backoff_ms = 1000          # the first retry's delay, doubling; default 1000
//! backoff_max_ms = 300000    # the longest delay, at least backoff_ms; default 300000
//! from = "end"               # "beginning", "end" (default), an offset (a number),
//!                            # or an RFC 3339 time ("2026-12-08T09:00:00Z", quoted or not)
//!
//! [schedules.nightly]        # a schedule, by name
//! action = "report"          # an action of the directory, or one the server has
//! spec = "0 9 * * *"         # a 5-field cron expression, a nickname (@daily, @hourly, ...)
//!                            # or "@every DURATION" ("@every 30s", "@every 1h30m"; at least 1s)
//! time_zone = "Europe/London" # an IANA time zone for cron specs; default "UTC"
//! overlap = "skip"           # while the last firing's run is queued or running: "skip" (default),
//!                            # "queue" (wait for it) or "allow" (run alongside)
//! catch_up = "none"          # missed firings (server down): "none" (default), "last",
//!                            # "all" (= "all:10") or "all:N" (1 to 1000)
//! jitter_ms = 0              # fire up to this many ms late, a fixed offset per firing;
//!                            # 0 to 86400000 (a day); default 0
//!
//! [schedules.nightly.args]   # optional: the action's args, a TOML table (a JSON object);
//! report = "daily"           # `args = { report = "daily" }` says the same. The server adds
//!                            # `schedule = {name, scheduled, scheduled_at, caught_up}`
//! ```
//!
//! Unknown keys are errors, and so are limits or routes that name an action
//! with no file in the directory, and invalid names or values. A schedule's
//! spec, time zone, overlap, catch-up and jitter are checked here as the
//! server checks them (with the server's own `sl-schedule` crate), and so
//! is a cron spec that matches no date. Whether a subscription's topic and
//! action, or a schedule's action, exist (when not in the directory) is
//! checked by `slcli deploy` against the server, before it changes
//! anything. The defaults are the server's, written out so that a deploy
//! can tell a changed subscription or schedule from an unchanged one.
//!
//! `from` applies when a subscription is created: the server keeps no
//! record of it, and changing it alone changes nothing. A subscription
//! whose other settings change is deleted and created again (the API has
//! no way to change one), so it starts at its `from` again, its cursors,
//! pending retries and dead letters lost.
//!
//! A schedule whose settings change (any of its keys) is likewise deleted
//! and created again: its firing history restarts (its count of firings,
//! last fired time and last invocation are gone; firings missed before are
//! not caught up), and an `@every` schedule counts its intervals from its
//! new creation time (the deploy), not from the first one. A TOML
//! date-time in `args` becomes its RFC 3339 text, a JSON string.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use sl_schedule::{CatchUp, Overlap, Schedule};

use crate::app::valid_name;
use crate::position::Position;
use crate::routes::Route;

/// The manifest's file name, in the app directory.
pub const FILE: &str = "sl.toml";

/// An action's limits; 0 means the server default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// KiB of Lua heap.
    #[serde(default)]
    pub maxmem: u64,
    /// Milliseconds of wall-clock time per invocation.
    #[serde(default)]
    pub timeout: u64,
    /// VM instructions per invocation.
    #[serde(default)]
    pub instructions: u64,
}

/// A `[[routes]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    method: String,
    path: String,
    action: String,
    #[serde(default)]
    host: Option<String>,
}

/// The server's default number of partitions of a topic.
pub const DEFAULT_PARTITIONS: u32 = 4;
/// The server's default `batch_size` of a subscription.
pub const DEFAULT_BATCH_SIZE: u32 = 10;
/// The server's default `max_retries` of a subscription.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// The server's default `backoff_ms` of a subscription.
pub const DEFAULT_BACKOFF_MS: u64 = 1000;
/// The server's default `backoff_max_ms` of a subscription.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 300_000;

/// A `[topics.NAME]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicEntry {
    #[serde(default = "default_partitions")]
    partitions: u32,
    #[serde(default)]
    retention_secs: Option<u64>,
    #[serde(default)]
    retention_bytes: Option<u64>,
}

fn default_partitions() -> u32 {
    DEFAULT_PARTITIONS
}

/// A topic as the directory wants it (and as the server has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Fixed once the topic exists.
    pub partitions: u32,
    /// Messages older than this many milliseconds are deleted (`None`: kept for any age).
    pub retention_ms: Option<i64>,
    /// Past this many bytes of payloads and keys, the oldest messages are deleted (`None`: no bound).
    pub retention_bytes: Option<u64>,
}

/// A `[subscriptions.NAME]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionEntry {
    topic: String,
    action: String,
    #[serde(default = "default_batch_size")]
    batch_size: u32,
    #[serde(default)]
    max_wait_ms: u64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "default_backoff_ms")]
    backoff_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    backoff_max_ms: u64,
    /// A string, an integer (an offset) or a TOML date-time.
    #[serde(default)]
    from: Option<toml::Value>,
}

fn default_batch_size() -> u32 {
    DEFAULT_BATCH_SIZE
}
fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}
fn default_backoff_ms() -> u64 {
    DEFAULT_BACKOFF_MS
}
fn default_backoff_max_ms() -> u64 {
    DEFAULT_BACKOFF_MAX_MS
}

/// A subscription's settings as the server shows them: all but where it
/// started. Two subscriptions with equal settings deliver alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSettings {
    /// The topic it delivers.
    pub topic: String,
    /// The action each batch runs.
    pub action: String,
    /// At most this many messages a batch.
    pub batch_size: u32,
    /// How long a partial batch waits for more messages.
    pub max_wait_ms: i64,
    /// Deliveries of a failing message after its first before it is a dead letter.
    pub max_retries: u32,
    /// The first retry's delay; each next one doubles.
    pub backoff_ms: i64,
    /// The longest delay between retries.
    pub backoff_max_ms: i64,
}

/// A subscription as the directory wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    /// What the server shows of it.
    pub settings: SubscriptionSettings,
    /// Where it starts when it is created.
    pub from: Position,
}

/// The server's default time zone of a schedule.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// The longest jitter the server takes: a day, in milliseconds.
pub const MAX_JITTER_MS: u64 = 86_400_000;

/// A `[schedules.NAME]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleEntry {
    action: String,
    spec: String,
    #[serde(default = "default_time_zone")]
    time_zone: String,
    #[serde(default)]
    args: toml::Table,
    #[serde(default)]
    overlap: Option<String>,
    #[serde(default)]
    catch_up: Option<String>,
    #[serde(default)]
    jitter_ms: u64,
}

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_string()
}

/// A schedule as the directory wants it, and as the server has it: every
/// setting the server keeps, in the form it keeps them, so that two equal
/// specs fire alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// The action each firing runs, asynchronously.
    pub action: String,
    /// The cron expression, nickname or `@every` interval, without
    /// surrounding spaces.
    pub spec: String,
    /// The IANA time zone of a cron spec (`@every` ignores it).
    pub time_zone: String,
    /// The action's args (the server adds `schedule` to them).
    pub args: Map<String, Value>,
    /// The overlap policy, as `sl_schedule::Overlap` writes it (`skip`).
    pub overlap: String,
    /// The catch-up policy, as `sl_schedule::CatchUp` writes it (`all:10`).
    pub catch_up: String,
    /// The most milliseconds a firing is moved later by.
    pub jitter_ms: u64,
}

impl ScheduleSpec {
    /// An overlap policy as [`ScheduleSpec::overlap`] holds it: the
    /// policy's own text, or, for one `sl-schedule` does not know, the text
    /// trimmed and in lower case (as the server keeps it).
    pub fn overlap_text(raw: &str) -> String {
        raw.parse::<Overlap>().map_or_else(|_| raw.trim().to_ascii_lowercase(), |p| p.to_string())
    }

    /// A catch-up policy as [`ScheduleSpec::catch_up`] holds it (`all` is
    /// `all:10`), like [`overlap_text`](Self::overlap_text).
    pub fn catch_up_text(raw: &str) -> String {
        raw.parse::<CatchUp>().map_or_else(|_| raw.trim().to_ascii_lowercase(), |p| p.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    actions: BTreeMap<String, Limits>,
    #[serde(default)]
    routes: Vec<RouteEntry>,
    #[serde(default)]
    topics: BTreeMap<String, TopicEntry>,
    #[serde(default)]
    subscriptions: BTreeMap<String, SubscriptionEntry>,
    #[serde(default)]
    schedules: BTreeMap<String, ScheduleEntry>,
}

/// A checked manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Limits by action name; actions not listed get the server defaults.
    pub limits: BTreeMap<String, Limits>,
    /// The routes, normalized (method in capitals, host in lower case, "" for any host).
    pub routes: Vec<Route>,
    /// The topics, by name.
    pub topics: BTreeMap<String, TopicSpec>,
    /// The subscriptions, by name.
    pub subscriptions: BTreeMap<String, SubscriptionSpec>,
    /// The schedules, by name.
    pub schedules: BTreeMap<String, ScheduleSpec>,
}

/// What a topic, subscription or schedule name may be, for messages.
const NAME_RULE: &str = "use 1 to 128 letters, digits, '-', '_' or '.' (but not '.' or '..')";

/// A `[topics.NAME]` entry checked, or what is wrong with it (after `at`).
fn topic_spec(at: &str, name: &str, t: &TopicEntry) -> std::result::Result<TopicSpec, String> {
    if !valid_name(name) {
        return Err(format!("{at}: '{name}' is not a valid topic name: {NAME_RULE}"));
    }
    if t.partitions == 0 {
        return Err(format!("{at}: partitions must be at least 1"));
    }
    let retention_ms = match t.retention_secs {
        None => None,
        Some(0) => return Err(format!("{at}: retention_secs must be at least 1 (leave it out to keep messages)")),
        Some(secs) => Some(
            secs.checked_mul(1000)
                .and_then(|ms| i64::try_from(ms).ok())
                .ok_or_else(|| format!("{at}: retention_secs is too large"))?,
        ),
    };
    if t.retention_bytes == Some(0) {
        return Err(format!("{at}: retention_bytes must be at least 1 (leave it out for no bound)"));
    }
    Ok(TopicSpec { partitions: t.partitions, retention_ms, retention_bytes: t.retention_bytes })
}

/// A `[subscriptions.NAME]` entry checked, or what is wrong with it (after `at`).
fn subscription_spec(at: &str, name: &str, s: SubscriptionEntry) -> std::result::Result<SubscriptionSpec, String> {
    if !valid_name(name) {
        return Err(format!("{at}: '{name}' is not a valid subscription name: {NAME_RULE}"));
    }
    if !valid_name(&s.topic) {
        return Err(format!("{at}: topic '{}' is not a valid topic name: {NAME_RULE}", s.topic));
    }
    if !valid_name(&s.action) {
        return Err(format!("{at}: action '{}' is not a valid action name: {NAME_RULE}", s.action));
    }
    if s.batch_size == 0 {
        return Err(format!("{at}: batch_size must be at least 1"));
    }
    if s.backoff_max_ms < s.backoff_ms {
        return Err(format!(
            "{at}: backoff_max_ms ({}) must be at least backoff_ms ({})",
            s.backoff_max_ms, s.backoff_ms
        ));
    }
    let ms = |key: &str, v: u64| i64::try_from(v).map_err(|_| format!("{at}: {key} is too large"));
    let from = match &s.from {
        None => Position::End,
        Some(toml::Value::String(text)) => text.parse().map_err(|e| format!("{at}: from: {e}"))?,
        Some(toml::Value::Integer(n)) if *n >= 0 => Position::Offset(*n),
        Some(toml::Value::Datetime(t)) => Position::time(&t.to_string()).map_err(|e| format!("{at}: from: {e}"))?,
        Some(other) => {
            return Err(format!("{at}: from = {other} is not a position: use {}", crate::position::FORMS));
        }
    };
    Ok(SubscriptionSpec {
        settings: SubscriptionSettings {
            topic: s.topic,
            action: s.action,
            batch_size: s.batch_size,
            max_wait_ms: ms("max_wait_ms", s.max_wait_ms)?,
            max_retries: s.max_retries,
            backoff_ms: ms("backoff_ms", s.backoff_ms)?,
            backoff_max_ms: ms("backoff_max_ms", s.backoff_max_ms)?,
        },
        from,
    })
}

/// A TOML value of a schedule's `args` as JSON; `at` names it in errors.
fn json_of(at: &str, value: &toml::Value) -> std::result::Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(n) => Value::from(*n),
        toml::Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => Value::Number(n),
            None => return Err(format!("{at} = {x} is not a JSON number")),
        },
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(t) => Value::String(t.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| json_of(&format!("{at}[{i}]"), v))
                .collect::<std::result::Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Value::Object(json_table(at, table)?),
    })
}

/// A TOML table as a JSON object; `at` names it in errors.
fn json_table(at: &str, table: &toml::Table) -> std::result::Result<Map<String, Value>, String> {
    table.iter().map(|(k, v)| Ok((k.clone(), json_of(&format!("{at}.{k}"), v)?))).collect()
}

/// A `[schedules.NAME]` entry checked, or what is wrong with it (after
/// `at`). The spec, time zone and policies are read by `sl-schedule`, as
/// the server reads them.
fn schedule_spec(at: &str, name: &str, s: ScheduleEntry) -> std::result::Result<ScheduleSpec, String> {
    if !valid_name(name) {
        return Err(format!("{at}: '{name}' is not a valid schedule name: {NAME_RULE}"));
    }
    if !valid_name(&s.action) {
        return Err(format!("{at}: action '{}' is not a valid action name: {NAME_RULE}", s.action));
    }
    let parsed = Schedule::parse(&s.spec, Some(&s.time_zone), 0).map_err(|e| format!("{at}: {e}"))?;
    if parsed.never_fires() {
        return Err(format!("{at}: '{}' matches no date: the schedule would never fire", parsed.spec()));
    }
    let overlap = match &s.overlap {
        None => Overlap::default(),
        Some(text) => text.parse().map_err(|e| format!("{at}: {e}"))?,
    };
    let catch_up = match &s.catch_up {
        None => CatchUp::default(),
        Some(text) => text.parse().map_err(|e| format!("{at}: {e}"))?,
    };
    if s.jitter_ms > MAX_JITTER_MS {
        return Err(format!("{at}: jitter_ms must be at most {MAX_JITTER_MS} (a day)"));
    }
    Ok(ScheduleSpec {
        action: s.action,
        spec: parsed.spec().to_string(),
        time_zone: s.time_zone,
        args: json_table(&format!("{at}: args"), &s.args)?,
        overlap: overlap.to_string(),
        catch_up: catch_up.to_string(),
        jitter_ms: s.jitter_ms,
    })
}

impl Manifest {
    /// The limits of `action` (server defaults unless listed).
    pub fn limits_of(&self, action: &str) -> Limits {
        self.limits.get(action).copied().unwrap_or_default()
    }

    /// Reads `DIR/sl.toml` (a missing file is an empty manifest) and
    /// checks it against the actions found in the directory.
    /// A symbolic link that leads out of `dir` is refused, like a Lua file's.
    pub fn load(dir: &Path, actions: &BTreeSet<String>) -> Result<Self> {
        crate::app::check_inside(dir, FILE)?;
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read manifest {}", path.display())),
        };
        Self::parse(&text, &path.display().to_string(), actions)
    }

    /// Parses and checks manifest `text`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, actions: &BTreeSet<String>) -> Result<Self> {
        let raw: Raw = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim_end()))?;
        let mut problems = Vec::new();
        for name in raw.actions.keys() {
            if !actions.contains(name) {
                problems.push(format!(
                    "{origin}: [actions.\"{name}\"] sets limits for '{name}', but no file in the directory \
                     becomes that action ({} would)",
                    expected_file(name)
                ));
            }
        }
        let mut routes: Vec<Route> = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let at = format!("{origin}: routes[{}] ({} {} -> {})", i + 1, r.method, r.path, r.action);
            let route = Route::new(&r.method, r.host.as_deref().unwrap_or(""), &r.path, &r.action);
            if route.method.is_empty() || route.method.chars().any(char::is_whitespace) {
                problems.push(format!("{at}: method must be an HTTP method such as GET, or \"*\" for any"));
            } else if !route.path.starts_with('/') {
                problems.push(format!("{at}: path must start with '/'"));
            } else if !actions.contains(&route.action) {
                problems.push(format!(
                    "{at}: no file in the directory becomes the action '{}' ({} would)",
                    route.action,
                    expected_file(&route.action)
                ));
            } else if let Some(same) = routes.iter().find(|o| o.shape() == route.shape()) {
                problems.push(format!("{at}: the same route as {same} is listed before"));
            } else {
                routes.push(route);
            }
        }
        let mut topics = BTreeMap::new();
        for (name, entry) in &raw.topics {
            match topic_spec(&format!("{origin}: [topics.\"{name}\"]"), name, entry) {
                Ok(spec) => {
                    topics.insert(name.clone(), spec);
                }
                Err(problem) => problems.push(problem),
            }
        }
        let mut subscriptions = BTreeMap::new();
        for (name, entry) in raw.subscriptions {
            match subscription_spec(&format!("{origin}: [subscriptions.\"{name}\"]"), &name, entry) {
                Ok(spec) => {
                    subscriptions.insert(name, spec);
                }
                Err(problem) => problems.push(problem),
            }
        }
        let mut schedules = BTreeMap::new();
        for (name, entry) in raw.schedules {
            match schedule_spec(&format!("{origin}: [schedules.\"{name}\"]"), &name, entry) {
                Ok(spec) => {
                    schedules.insert(name, spec);
                }
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(Self { limits: raw.actions, routes, topics, subscriptions, schedules })
    }
}

/// The file that would become action `name`, for messages: `a.b` is `a/b.lua` (or `a.b.lua`).
pub fn expected_file(name: &str) -> String {
    if name.contains('.') {
        format!("{}.lua or {name}.lua", name.replace('.', "/"))
    } else {
        format!("{name}.lua")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const FULL: &str = r#"
[actions."users.get"]
maxmem = 1024
timeout = 500
instructions = 0

[actions.hello]
timeout = 200

[[routes]]
method = "get"
path = "/users/:id"
action = "users.get"
host = "Example.com"

[[routes]]
method = "*"
path = "/hello"
action = "hello"
"#;

    #[test]
    fn a_full_manifest() {
        let m = Manifest::parse(FULL, "app/sl.toml", &names(&["users.get", "hello", "other"])).unwrap();
        assert_eq!(m.limits_of("users.get"), Limits { maxmem: 1024, timeout: 500, instructions: 0 });
        assert_eq!(m.limits_of("hello"), Limits { maxmem: 0, timeout: 200, instructions: 0 });
        assert_eq!(m.limits_of("other"), Limits::default());
        assert_eq!(
            m.routes,
            [Route::new("GET", "example.com", "/users/:id", "users.get"), Route::new("*", "", "/hello", "hello")]
        );
    }

    #[test]
    fn an_empty_or_missing_manifest_is_empty() {
        assert_eq!(Manifest::parse("", "sl.toml", &names(&[])).unwrap(), Manifest::default());
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(tmp.path(), &names(&[])).unwrap(), Manifest::default());
        fs::write(tmp.path().join(FILE), "[actions.x]\nmaxmem = 5\n").unwrap();
        assert_eq!(Manifest::load(tmp.path(), &names(&["x"])).unwrap().limits_of("x").maxmem, 5);
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        for (text, key) in [
            ("[actions.x]\nmaxmemory = 5\n", "maxmemory"),
            ("[[routes]]\nmethod = \"GET\"\npath = \"/\"\naction = \"x\"\nhots = \"a\"\n", "hots"),
            ("[action.x]\nmaxmem = 5\n", "action"),
            ("version = 2\n", "version"),
        ] {
            let e = Manifest::parse(text, "app/sl.toml", &names(&["x"])).unwrap_err().to_string();
            assert!(e.starts_with("app/sl.toml: "), "{e}");
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
    }

    #[test]
    fn bad_values_are_errors() {
        let e = Manifest::parse("[actions.x]\nmaxmem = -1\n", "sl.toml", &names(&["x"])).unwrap_err().to_string();
        assert!(e.starts_with("sl.toml: ") && e.contains("line 2"), "{e}");
        let e = Manifest::parse("[actions.x]\ntimeout = \"5s\"\n", "sl.toml", &names(&["x"])).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Manifest::parse("[[routes]]\nmethod = \"GET\"\npath = \"/\"\n", "sl.toml", &names(&["x"])).unwrap_err();
        assert!(e.to_string().contains("missing field `action`"), "{e}");
        let e = Manifest::parse("[actions.x\n", "sl.toml", &names(&["x"])).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn actions_without_files_are_errors() {
        let text =
            "[actions.\"users.gone\"]\nmaxmem = 5\n\n[[routes]]\nmethod = \"GET\"\npath = \"/x\"\naction = \"nope\"\n";
        let e = Manifest::parse(text, "app/sl.toml", &names(&["users.get"])).unwrap_err().to_string();
        assert!(
            e.contains("app/sl.toml: [actions.\"users.gone\"] sets limits for 'users.gone', but no file")
                && e.contains("users/gone.lua or users.gone.lua would"),
            "{e}"
        );
        assert!(
            e.contains("app/sl.toml: routes[1] (GET /x -> nope): no file in the directory becomes the action 'nope' (nope.lua would)"),
            "{e}"
        );
    }

    const EVENTS: &str = r#"
[topics.orders]
partitions = 8
retention_secs = 3600
retention_bytes = 1000

[topics.seen]

[subscriptions.mailer]
topic = "orders"
action = "mail.send"
batch_size = 20
max_wait_ms = 50
max_retries = 1
backoff_ms = 100
backoff_max_ms = 200
from = "beginning"

[subscriptions.audit]
topic = "elsewhere"
action = "other.app"
from = 2026-12-08T09:00:00Z

[subscriptions.replay]
topic = "orders"
action = "mail.send"
from = 17
"#;

    #[test]
    fn topics_and_subscriptions() {
        let m = Manifest::parse(EVENTS, "sl.toml", &names(&["mail.send"])).unwrap();
        assert_eq!(
            m.topics["orders"],
            TopicSpec { partitions: 8, retention_ms: Some(3_600_000), retention_bytes: Some(1000) }
        );
        assert_eq!(m.topics["seen"], TopicSpec { partitions: 4, retention_ms: None, retention_bytes: None });
        let mailer = &m.subscriptions["mailer"];
        assert_eq!(
            mailer.settings,
            SubscriptionSettings {
                topic: "orders".into(),
                action: "mail.send".into(),
                batch_size: 20,
                max_wait_ms: 50,
                max_retries: 1,
                backoff_ms: 100,
                backoff_max_ms: 200,
            }
        );
        assert_eq!(mailer.from, Position::Beginning);
        // Defaults are the server's; a topic and action elsewhere are checked by deploy.
        let audit = &m.subscriptions["audit"];
        assert_eq!(
            audit.settings,
            SubscriptionSettings {
                topic: "elsewhere".into(),
                action: "other.app".into(),
                batch_size: 10,
                max_wait_ms: 0,
                max_retries: 3,
                backoff_ms: 1000,
                backoff_max_ms: 300_000,
            }
        );
        assert_eq!(audit.from, Position::Time(1_796_720_400_000));
        assert_eq!(m.subscriptions["replay"].from, Position::Offset(17));
        let quoted = "[subscriptions.s]\ntopic = \"t\"\naction = \"a\"\nfrom = \"2026-12-08T10:00:00+01:00\"\n";
        let m = Manifest::parse(quoted, "sl.toml", &names(&[])).unwrap();
        assert_eq!(m.subscriptions["s"].from, Position::Time(1_796_720_400_000));
        let default = "[subscriptions.s]\ntopic = \"t\"\naction = \"a\"\n";
        assert_eq!(Manifest::parse(default, "sl.toml", &names(&[])).unwrap().subscriptions["s"].from, Position::End);
    }

    #[test]
    fn bad_topics_and_subscriptions_are_all_reported() {
        let text = r#"
[topics."bad name"]
[topics.zero]
partitions = 0
[topics.forever]
retention_secs = 0
[topics.empty]
retention_bytes = 0

[subscriptions.s1]
topic = "t"
action = "bad action"
[subscriptions.s2]
topic = "t"
action = "a"
backoff_ms = 500
backoff_max_ms = 100
[subscriptions.s3]
topic = "t"
action = "a"
from = "yesterday"
[subscriptions.s4]
topic = "t"
action = "a"
from = -1
[subscriptions.s5]
topic = "t"
action = "a"
batch_size = 0
[subscriptions.s6]
topic = "t"
action = "a"
from = 2026-12-08T09:00:00
"#;
        let e = Manifest::parse(text, "app/sl.toml", &names(&["a"])).unwrap_err().to_string();
        for expected in [
            "app/sl.toml: [topics.\"bad name\"]: 'bad name' is not a valid topic name: use 1 to 128 letters",
            "app/sl.toml: [topics.\"zero\"]: partitions must be at least 1",
            "app/sl.toml: [topics.\"forever\"]: retention_secs must be at least 1",
            "app/sl.toml: [topics.\"empty\"]: retention_bytes must be at least 1",
            "app/sl.toml: [subscriptions.\"s1\"]: action 'bad action' is not a valid action name",
            "app/sl.toml: [subscriptions.\"s2\"]: backoff_max_ms (100) must be at least backoff_ms (500)",
            "app/sl.toml: [subscriptions.\"s3\"]: from: 'yesterday' is not a valid position",
            "app/sl.toml: [subscriptions.\"s4\"]: from = -1 is not a position: use beginning, end, an offset",
            "app/sl.toml: [subscriptions.\"s5\"]: batch_size must be at least 1",
            "app/sl.toml: [subscriptions.\"s6\"]: from: '2026-12-08T09:00:00' is not a valid position",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        assert_eq!(e.lines().count(), 10, "{e}");
        for (text, key) in [
            ("[topics.t]\npartition = 2\n", "partition"),
            ("[subscriptions.s]\ntopic = \"t\"\naction = \"a\"\nstart = \"end\"\n", "start"),
            ("[topic.t]\n", "topic"),
        ] {
            let e = Manifest::parse(text, "sl.toml", &names(&["a"])).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
        let e = Manifest::parse("[subscriptions.s]\ntopic = \"t\"\n", "sl.toml", &names(&[])).unwrap_err();
        assert!(e.to_string().contains("missing field `action`"), "{e}");
        let e = Manifest::parse("[topics.t]\nretention_secs = -5\n", "sl.toml", &names(&[])).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    const SCHEDULES: &str = r#"
[schedules.nightly]
action = "report"
spec = " 0 9 * * * "
time_zone = "Europe/London"
overlap = "QUEUE"
catch_up = "all"
jitter_ms = 60000

[schedules.nightly.args]
kind = "daily"
n = 3
ratio = 0.5
on = true
since = 2026-12-08T09:00:00Z
list = [1, "two", { three = 3 }]
deep = { a = { b = [] } }

[schedules.tick]
action = "elsewhere"
spec = "@every 1s"
args = { n = 1 }
"#;

    #[test]
    fn schedules() {
        let m = Manifest::parse(SCHEDULES, "sl.toml", &names(&["report"])).unwrap();
        let nightly = &m.schedules["nightly"];
        assert_eq!(
            (nightly.action.as_str(), nightly.spec.as_str(), nightly.time_zone.as_str()),
            ("report", "0 9 * * *", "Europe/London")
        );
        // The policies as the server's crate writes them: `all` is `all:10`.
        assert_eq!(
            (nightly.overlap.as_str(), nightly.catch_up.as_str(), nightly.jitter_ms),
            ("queue", "all:10", 60_000)
        );
        assert_eq!(
            Value::Object(nightly.args.clone()),
            serde_json::json!({"kind": "daily", "n": 3, "ratio": 0.5, "on": true, "since": "2026-12-08T09:00:00Z",
                               "list": [1, "two", {"three": 3}], "deep": {"a": {"b": []}}})
        );
        // The defaults are the server's; an action elsewhere is checked by deploy.
        assert_eq!(
            m.schedules["tick"],
            ScheduleSpec {
                action: "elsewhere".into(),
                spec: "@every 1s".into(),
                time_zone: "UTC".into(),
                args: serde_json::json!({"n": 1}).as_object().cloned().unwrap(),
                overlap: "skip".into(),
                catch_up: "none".into(),
                jitter_ms: 0,
            }
        );
        let bare =
            Manifest::parse("[schedules.s]\naction = \"a\"\nspec = \"@daily\"\n", "sl.toml", &names(&[])).unwrap();
        assert!(bare.schedules["s"].args.is_empty());
        assert_eq!(ScheduleSpec::catch_up_text(" ALL:3"), "all:3");
        assert_eq!(ScheduleSpec::catch_up_text("all"), "all:10");
        assert_eq!(ScheduleSpec::overlap_text(" Allow "), "allow");
        assert_eq!(ScheduleSpec::overlap_text(" Later "), "later", "unknown to slcli: as the server keeps it");
    }

    #[test]
    fn bad_schedules_are_all_reported() {
        let text = r#"
[schedules."bad name"]
action = "a"
spec = "@daily"
[schedules.s1]
action = "bad action"
spec = "@daily"
[schedules.s2]
action = "a"
spec = "61 * * * *"
[schedules.s3]
action = "a"
spec = "@every 500ms"
[schedules.s4]
action = "a"
spec = "@daily"
time_zone = "Mars/Olympus"
[schedules.s5]
action = "a"
spec = "0 0 30 2 *"
[schedules.s6]
action = "a"
spec = "@daily"
overlap = "sometimes"
[schedules.s7]
action = "a"
spec = "@daily"
catch_up = "all:0"
[schedules.s8]
action = "a"
spec = "@daily"
jitter_ms = 86400001
[schedules.s9]
action = "a"
spec = "  "
[schedules.s10]
action = "a"
spec = "@daily"
args = { x = nan }
"#;
        let e = Manifest::parse(text, "app/sl.toml", &names(&["a"])).unwrap_err().to_string();
        for expected in [
            "app/sl.toml: [schedules.\"bad name\"]: 'bad name' is not a valid schedule name: use 1 to 128 letters",
            "app/sl.toml: [schedules.\"s1\"]: action 'bad action' is not a valid action name",
            "app/sl.toml: [schedules.\"s2\"]: invalid cron expression '61 * * * *': ",
            "app/sl.toml: [schedules.\"s3\"]: interval must be at least 1s (got '@every 500ms')",
            "app/sl.toml: [schedules.\"s4\"]: unknown time zone 'Mars/Olympus'",
            "app/sl.toml: [schedules.\"s5\"]: '0 0 30 2 *' matches no date: the schedule would never fire",
            "app/sl.toml: [schedules.\"s6\"]: invalid overlap policy 'sometimes': expected skip, queue or allow",
            "app/sl.toml: [schedules.\"s7\"]: invalid catch-up policy 'all:0'",
            "app/sl.toml: [schedules.\"s8\"]: jitter_ms must be at most 86400000 (a day)",
            "app/sl.toml: [schedules.\"s9\"]: empty schedule: expected a 5-field cron expression",
            "app/sl.toml: [schedules.\"s10\"]: args.x = NaN is not a JSON number",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        assert_eq!(e.lines().count(), 11, "{e}");
        for (text, needle) in [
            ("[schedules.s]\naction = \"a\"\nspec = \"@daily\"\ntz = \"UTC\"\n", "unknown field `tz`"),
            ("[schedules.s]\naction = \"a\"\n", "missing field `spec`"),
            ("[schedules.s]\nspec = \"@daily\"\n", "missing field `action`"),
            ("[schedules.s]\naction = \"a\"\nspec = \"@daily\"\nargs = [1]\n", "line 4"),
            ("[schedules.s]\naction = \"a\"\nspec = \"@daily\"\njitter_ms = -1\n", "line 4"),
        ] {
            let e = Manifest::parse(text, "sl.toml", &names(&["a"])).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn routes_are_checked() {
        let route = |method: &str, path: &str| {
            format!("[[routes]]\nmethod = \"{method}\"\npath = \"{path}\"\naction = \"x\"\n")
        };
        let e = Manifest::parse(&route("", "/a"), "sl.toml", &names(&["x"])).unwrap_err().to_string();
        assert!(e.contains("method must be an HTTP method"), "{e}");
        let e = Manifest::parse(&route("GET", "a"), "sl.toml", &names(&["x"])).unwrap_err().to_string();
        assert!(e.contains("path must start with '/'"), "{e}");
        let twice = format!("{}{}", route("GET", "/a"), route("get", "/a"));
        let e = Manifest::parse(&twice, "sl.toml", &names(&["x"])).unwrap_err().to_string();
        assert!(e.contains("routes[2] (get /a -> x): the same route as GET /a -> x is listed before"), "{e}");
        let renamed = format!("{}{}", route("GET", "/a/:id"), route("GET", "/a/:name/"));
        let e = Manifest::parse(&renamed, "sl.toml", &names(&["x"])).unwrap_err().to_string();
        assert!(e.contains("routes[2] (GET /a/:name/ -> x): the same route as GET /a/:id -> x"), "{e}");
        let hosts = format!("{}{}host = \"a.example\"\n", route("GET", "/a"), route("GET", "/a"));
        assert_eq!(Manifest::parse(&hosts, "sl.toml", &names(&["x"])).unwrap().routes.len(), 2);
    }
}
