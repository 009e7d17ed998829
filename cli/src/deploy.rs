//! `slcli deploy DIR`: makes the server match an app directory.
//!
//! Reads the directory ([`crate::app`]) and its manifest
//! ([`crate::manifest`]), fetches what the server has, checks that the
//! subscriptions' topics and actions and the schedules' actions exist (in
//! the directory or on the server), computes the changes ([`crate::plan`])
//! and makes them in this order: actions created and updated, topics
//! created and updated, subscriptions deleted, recreated and created,
//! schedules deleted, recreated and created, routes added, routes deleted,
//! topics deleted, actions deleted. So the actions a schedule or
//! subscription runs exist before it does, and it is gone before they are
//! (the server refuses to delete an action that a schedule or subscription
//! runs). Then it records what was deployed from the directory in
//! `DIR/.sl/deployed.json` ([`crate::state`]).
//!
//! A file the server refuses (a Lua syntax error, say) is reported as
//! `users/get.lua:3: '=' expected near 'x'` and the deploy goes on with the
//! other files; the server keeps the action's previous version. A topic,
//! subscription, schedule or route the server refuses is reported the same
//! way.
//! Anything else going wrong (the server cannot be reached, answers 5xx)
//! stops the deploy with an error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map};

use crate::app;
use crate::client::{encode, Client, Method, Reply, ServerError};
use crate::json::{self, Scalar};
use crate::locate;
use crate::manifest::{Limits, Manifest, ScheduleSpec, SubscriptionSpec};
use crate::output::{visible, Lines};
use crate::plan::{Local, LocalAction, Plan, Remote, RemoteAction, Update};
use crate::position::Position;
use crate::routes::{self, Route};
use crate::state::{Owned, State};
use crate::{schedules, subscriptions, topics};

/// The long help of `slcli deploy`.
pub const LONG_ABOUT: &str = "\
Deploy an app directory: make the server's actions and routes match the files in DIR.

Every *.lua file under DIR (at any depth; hidden files and directories, *_test.lua files and \
DIR/config.lua, taken to be the configuration of the server the app runs on, are skipped) is \
an action named after its path relative to DIR, without .lua and with '/' \
replaced by '.': users/get.lua becomes users.get. A path that would make an invalid name \
(action names are 1 to 128 letters, digits, '-', '_' or '.') is an error, reported before \
anything is changed.

Limits and routes come from the optional manifest DIR/sl.toml:

    [actions.\"users.get\"]      # optional, per action; absent = server defaults
    maxmem = 1024              # KiB of Lua heap (0 = server default)
    timeout = 500              # ms (0 = server default)
    instructions = 0           # VM instruction budget (0 = server default)

    [[routes]]                 # any number
    method = \"GET\"             # or \"*\" for any method
    path = \"/users/:id\"
    action = \"users.get\"
    host = \"example.com\"       # optional; absent = any host

    [topics.orders]            # any number, by name
    partitions = 8             # default 4; fixed once the topic exists
    retention_secs = 604800    # optional; absent = messages kept for any age
    retention_bytes = 1000000  # optional; absent = no bound on the topic's size

    [subscriptions.mailer]     # any number, by name
    topic = \"orders\"           # a topic of [topics], or one the server has
    action = \"mail.send\"       # an action of DIR, or one the server has
    batch_size = 10            # optional; these are the defaults
    max_wait_ms = 0
    max_retries = 3
    backoff_ms = 1000
    backoff_max_ms = 300000
    from = \"end\"               # where a new subscription starts: \"beginning\", \"end\",
                               # an offset (a number) or an RFC 3339 time (2026-12-08T09:00:00Z)

    [schedules.nightly]        # any number, by name
    action = \"report\"          # an action of DIR, or one the server has
    spec = \"0 9 * * *\"         # a 5-field cron expression, a nickname (@daily, ...)
                               # or \"@every DURATION\" (\"@every 30s\", \"@every 1h30m\")
    time_zone = \"UTC\"          # optional; these are the defaults
    overlap = \"skip\"           # or \"queue\", \"allow\"
    catch_up = \"none\"          # or \"last\", \"all\", \"all:N\"
    jitter_ms = 0              # at most 86400000
    args = { kind = \"daily\" }  # optional: the action's args (a table, sent as a JSON object)

(`slcli help schedule` says what the schedule settings mean.)

Unknown keys are errors, and so are limits or routes naming an action that has no file, a \
subscription whose topic or action is neither in DIR nor on the server, a schedule whose action \
is neither, and a schedule whose spec, time zone or policy is invalid (checked as the server \
checks them).

The deploy creates the actions the server lacks, updates those whose source or limits differ, \
creates the manifest's topics the server lacks and updates the retention of those whose \
retention differs (a topic's partitions cannot change: a difference is reported as a failure), \
creates the manifest's subscriptions and schedules the server lacks, adds the manifest's routes \
the server lacks, deletes the server's routes to this directory's actions that the manifest \
does not list, and deletes the actions, topics, subscriptions and schedules deployed from DIR \
before whose file or manifest entry is gone. A subscription whose settings changed (topic, action, batch_size, \
max_wait_ms, max_retries, backoff_ms, backoff_max_ms) is deleted and created again, as the \
server cannot change one: it starts at its `from` again, and its old cursors, pending retries \
and dead letters are gone. `from` itself only applies when a subscription is created; a \
subscription whose settings did not change is left alone. Likewise, a schedule whose settings \
changed (any of its keys) is deleted and created again: its firing history restarts (its count \
of firings, last firing and last invocation are gone, and firings it missed before are not \
caught up), and an @every schedule counts its intervals from the deploy that recreated it. \
Schedules are created after the actions they run, and deleted before them. It prints one line \
per change:

    created users.get
    updated users.get
    topic created orders
    topic updated orders
    subscription deleted old-mailer
    subscription recreated mailer (orders -> mail.send, from end)
    subscription created audit (orders -> audit.log, from beginning)
    schedule deleted old-report
    schedule recreated nightly (0 9 * * * in Europe/London -> report)
    schedule created tick (@every 30s in UTC -> poll)
    route added GET /users/:id -> users.get
    route deleted GET example.com/x -> y
    topic deleted old-orders
    deleted old.thing

then a summary (`N created, N updated, N deleted, N routes added, N routes deleted`, followed \
by the topics, subscriptions and schedules created, updated, recreated or deleted, if any), or \
just \
`nothing changed` (and sends no writes) when the server already matches.

A symbolic link to a file counts if the file it leads to (all links resolved) is inside DIR; \
a link that leads out of DIR (key.lua -> ~/.ssh/id_rsa) is an error naming the link and its \
target, reported before anything is changed, so a deploy never uploads a file from elsewhere. \
The same goes for sl.toml. Links to directories are not followed.

A file the server refuses is reported with its path and line, e.g. \
`users/get.lua:3: '=' expected near 'x'` (on stderr); the other files are still deployed, the \
server keeps the refused action's previous version, and slcli exits with status 1.

The actions, topics, subscriptions and schedules deployed from DIR are recorded per server URL \
in DIR/.sl/deployed.json, so that a later deploy can delete the ones whose file or manifest \
entry was removed. It belongs to your checkout: add .sl/ to .gitignore. Actions, topics, \
subscriptions and schedules on the server that were never deployed from DIR are left alone, \
unless DIR has one of their name (then DIR takes it over).";

/// One change made (or refused) by a deploy, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Created(String),
    Updated(String),
    Deleted(String),
    RouteAdded(Route),
    RouteDeleted(Route),
    TopicCreated(String),
    /// A topic whose retention changed.
    TopicUpdated(String),
    TopicDeleted(String),
    SubscriptionCreated(SubscriptionLine),
    /// A subscription deleted and created again, its settings changed.
    SubscriptionRecreated(SubscriptionLine),
    SubscriptionDeleted(String),
    ScheduleCreated(ScheduleLine),
    /// A schedule deleted and created again, its settings changed.
    ScheduleRecreated(ScheduleLine),
    ScheduleDeleted(String),
    /// A file, route, topic, subscription, schedule or deletion the server refused, with why.
    Failed(String),
}

/// A subscription as a deploy reports it: `mailer (orders -> mail.send, from end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionLine {
    /// The subscription.
    pub name: String,
    /// The topic it delivers.
    pub topic: String,
    /// The action it runs.
    pub action: String,
    /// Where it starts.
    pub from: Position,
}

impl fmt::Display for SubscriptionLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} -> {}, from {})", self.name, self.topic, self.action, self.from)
    }
}

/// A schedule as a deploy reports it: `nightly (0 9 * * * in Europe/London -> report)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleLine {
    /// The schedule.
    pub name: String,
    /// Its spec.
    pub spec: String,
    /// The time zone of its spec.
    pub time_zone: String,
    /// The action it runs.
    pub action: String,
}

impl ScheduleLine {
    fn new(name: &str, spec: &ScheduleSpec) -> Self {
        Self {
            name: name.to_string(),
            spec: spec.spec.clone(),
            time_zone: spec.time_zone.clone(),
            action: spec.action.clone(),
        }
    }
}

impl fmt::Display for ScheduleLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} in {} -> {})", self.name, self.spec, self.time_zone, self.action)
    }
}

impl Event {
    pub fn is_failure(&self) -> bool {
        matches!(self, Event::Failed(_))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Created(name) => write!(f, "created {name}"),
            Event::Updated(name) => write!(f, "updated {name}"),
            Event::Deleted(name) => write!(f, "deleted {name}"),
            Event::RouteAdded(route) => write!(f, "route added {route}"),
            Event::RouteDeleted(route) => write!(f, "route deleted {route}"),
            Event::TopicCreated(name) => write!(f, "topic created {name}"),
            Event::TopicUpdated(name) => write!(f, "topic updated {name}"),
            Event::TopicDeleted(name) => write!(f, "topic deleted {name}"),
            Event::SubscriptionCreated(sub) => write!(f, "subscription created {sub}"),
            Event::SubscriptionRecreated(sub) => write!(f, "subscription recreated {sub}"),
            Event::SubscriptionDeleted(name) => write!(f, "subscription deleted {name}"),
            Event::ScheduleCreated(schedule) => write!(f, "schedule created {schedule}"),
            Event::ScheduleRecreated(schedule) => write!(f, "schedule recreated {schedule}"),
            Event::ScheduleDeleted(name) => write!(f, "schedule deleted {name}"),
            Event::Failed(message) => f.write_str(message),
        }
    }
}

/// The counts of a deploy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub routes_added: usize,
    pub routes_deleted: usize,
    pub topics_created: usize,
    pub topics_updated: usize,
    pub topics_deleted: usize,
    pub subscriptions_created: usize,
    pub subscriptions_recreated: usize,
    pub subscriptions_deleted: usize,
    pub schedules_created: usize,
    pub schedules_recreated: usize,
    pub schedules_deleted: usize,
    pub failed: usize,
}

impl Outcome {
    fn count(&mut self, event: &Event) {
        match event {
            Event::Created(_) => self.created += 1,
            Event::Updated(_) => self.updated += 1,
            Event::Deleted(_) => self.deleted += 1,
            Event::RouteAdded(_) => self.routes_added += 1,
            Event::RouteDeleted(_) => self.routes_deleted += 1,
            Event::TopicCreated(_) => self.topics_created += 1,
            Event::TopicUpdated(_) => self.topics_updated += 1,
            Event::TopicDeleted(_) => self.topics_deleted += 1,
            Event::SubscriptionCreated(_) => self.subscriptions_created += 1,
            Event::SubscriptionRecreated(_) => self.subscriptions_recreated += 1,
            Event::SubscriptionDeleted(_) => self.subscriptions_deleted += 1,
            Event::ScheduleCreated(_) => self.schedules_created += 1,
            Event::ScheduleRecreated(_) => self.schedules_recreated += 1,
            Event::ScheduleDeleted(_) => self.schedules_deleted += 1,
            Event::Failed(_) => self.failed += 1,
        }
    }

    /// The topic, subscription and schedule counts, named as the summary shows them.
    fn event_counts(&self) -> [(usize, &'static str); 9] {
        [
            (self.topics_created, "topics created"),
            (self.topics_updated, "topics updated"),
            (self.topics_deleted, "topics deleted"),
            (self.subscriptions_created, "subscriptions created"),
            (self.subscriptions_recreated, "subscriptions recreated"),
            (self.subscriptions_deleted, "subscriptions deleted"),
            (self.schedules_created, "schedules created"),
            (self.schedules_recreated, "schedules recreated"),
            (self.schedules_deleted, "schedules deleted"),
        ]
    }

    pub fn changed(&self) -> bool {
        let events: usize = self.event_counts().iter().map(|(n, _)| n).sum();
        self.created + self.updated + self.deleted + self.routes_added + self.routes_deleted + events > 0
    }
}

/// `nothing changed`, or `N created, N updated, N deleted, N routes added,
/// N routes deleted`, then the topic, subscription and schedule counts that
/// are not 0 (`, N topics created`), and `, N failed` when something failed.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() && self.failed == 0 {
            return f.write_str("nothing changed");
        }
        write!(
            f,
            "{} created, {} updated, {} deleted, {} routes added, {} routes deleted",
            self.created, self.updated, self.deleted, self.routes_added, self.routes_deleted
        )?;
        for (n, what) in self.event_counts() {
            if n > 0 {
                write!(f, ", {n} {what}")?;
            }
        }
        if self.failed > 0 {
            write!(f, ", {} failed", self.failed)?;
        }
        Ok(())
    }
}

/// Reads the app directory: its action files (with their sources) and its
/// manifest. Every problem here is reported before anything is sent.
pub fn scan(dir: &Path) -> Result<Local> {
    let files = app::actions(dir)?;
    let names: BTreeSet<String> = files.keys().cloned().collect();
    let manifest = Manifest::load(dir, &names)?;
    let mut actions = BTreeMap::new();
    for (name, file) in files {
        let source = fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
        let limits = manifest.limits_of(&name);
        actions.insert(name, LocalAction { file: file.shown(), source, limits });
    }
    Ok(Local {
        actions,
        routes: manifest.routes,
        topics: manifest.topics,
        subscriptions: manifest.subscriptions,
        schedules: manifest.schedules,
    })
}

/// An action as the server lists it (the fields a deploy needs).
#[derive(Deserialize)]
#[serde(expecting = "an action (a JSON object)")]
struct Listed {
    name: Option<String>,
    #[serde(default)]
    maxmem: Scalar,
    #[serde(default)]
    timeout: Scalar,
    #[serde(default)]
    instructions: Scalar,
}

impl Listed {
    fn limits(&self) -> Limits {
        let field = |v: &Scalar| v.as_u64().unwrap_or(0);
        Limits { maxmem: field(&self.maxmem), timeout: field(&self.timeout), instructions: field(&self.instructions) }
    }
}

/// The source of an action as `GET /actions/:name` sends it.
#[derive(Deserialize)]
struct Source {
    #[serde(default)]
    code: Scalar,
}

/// What the server has, as far as a deploy of `local` needs it: the
/// actions the directory has or had (`owned_before`) or its subscriptions
/// and schedules name, with their limits, the sources of those it has, and
/// the routes to those actions or in the manifest; if the directory has or
/// had topics or subscriptions, the topics and subscriptions it has or had
/// and the topics its subscriptions read; and if it has or had schedules,
/// those schedules. The rest of the server's lists is read past, not kept,
/// and each source is fetched once, however often the list names an
/// action.
fn fetch(client: &Client, local: &Local, before: &Owned) -> Result<Remote> {
    let owned_before = &before.actions;
    let subscribed = |name: &str| {
        local.subscriptions.values().any(|s| s.settings.action == name)
            || local.schedules.values().any(|s| s.action == name)
    };
    let list = client.call(Method::Get, "/actions", None)?;
    let mut listed = Vec::new();
    json::each(&list.body, |action: Listed| {
        let Some(name) = action.name.as_deref() else {
            bail!("an action has no name");
        };
        if local.actions.contains_key(name) || owned_before.contains(name) || subscribed(name) {
            listed.push(action);
        }
        Ok(())
    })
    .map_err(|e| anyhow!("the server's answer to GET /actions is not a JSON array of actions: {e}"))?;
    let mut remote = Remote::default();
    for action in listed {
        let name = action.name.clone().unwrap_or_default();
        if remote.actions.contains_key(&name) {
            continue;
        }
        let source = if local.actions.contains_key(&name) {
            let reply = client.send(Method::Get, &format!("/actions/{}", encode(&name)), None)?;
            if reply.status == 404 {
                continue; // deleted meanwhile
            }
            let reply = reply.success()?;
            let details: Source = reply.json()?;
            let code = base64::engine::general_purpose::STANDARD
                .decode(details.code.as_str().unwrap_or("").trim())
                .with_context(|| format!("the server sent the source of {name} in invalid base64"))?;
            Some(code)
        } else {
            None
        };
        remote.actions.insert(name, RemoteAction { source, limits: action.limits() });
    }
    let owned = |route: &Route| local.actions.contains_key(&route.action) || owned_before.contains(&route.action);
    match routes::fetch(client, |route| owned(route) || local.routes.contains(route))? {
        Some(routes) => remote.routes = routes,
        None if local.routes.is_empty() => {}
        None => bail!(
            "the server has no routes API (GET /routes answered 404), but sl.toml lists routes: \
             update slserver, or remove the [[routes]] entries"
        ),
    }
    if local.has_events() || !before.topics.is_empty() || !before.subscriptions.is_empty() {
        let read = |topic: &str| local.subscriptions.values().any(|s| s.settings.topic == topic);
        let topics = topics::fetch(client, |t| local.topics.contains_key(t) || before.topics.contains(t) || read(t))?;
        let subscriptions = match topics {
            Some(_) => subscriptions::fetch(client, |s| {
                local.subscriptions.contains_key(s) || before.subscriptions.contains(s)
            })?,
            None => None,
        };
        match (topics, subscriptions) {
            (Some(topics), Some(subscriptions)) => {
                remote.topics = topics;
                remote.subscriptions = subscriptions;
            }
            _ if !local.has_events() => {}
            _ => bail!(
                "the server has no events API (GET /topics or GET /subscriptions answered 404), but sl.toml \
                 lists topics or subscriptions: update slserver, or remove the [topics] and [subscriptions] tables"
            ),
        }
    }
    if !local.schedules.is_empty() || !before.schedules.is_empty() {
        match schedules::fetch(client, |s| local.schedules.contains_key(s) || before.schedules.contains(s))? {
            Some(schedules) => remote.schedules = schedules,
            None if local.schedules.is_empty() => {}
            None => bail!(
                "the server has no schedules API (GET /schedules answered 404), but sl.toml lists schedules: \
                 update slserver, or remove the [schedules] tables"
            ),
        }
    }
    Ok(remote)
}

/// What is wrong with the action `action` that the manifest entry `at`
/// runs, if anything: it must be an action of the directory, or one of the
/// server that this deploy does not delete.
fn action_problem(at: &str, action: &str, local: &Local, remote: &Remote, owned: &Owned) -> Option<String> {
    if local.actions.contains_key(action) {
        None
    } else if !remote.actions.contains_key(action) {
        Some(format!(
            "{at}: the action '{action}' is neither a file of the directory ({}) nor on the server",
            crate::manifest::expected_file(action)
        ))
    } else if owned.actions.contains(action) {
        Some(format!(
            "{at}: the action '{action}' was deployed from this directory and its file is gone: \
             this deploy would delete it"
        ))
    } else {
        None
    }
}

/// Checks, before anything changes, that each subscription of the manifest
/// reads a topic of the manifest or of the server, and that each
/// subscription and schedule runs an action of the directory or one of the
/// server that this deploy does not delete.
fn check_targets(local: &Local, remote: &Remote, owned: &Owned) -> Result<()> {
    let mut problems = Vec::new();
    for (name, sub) in &local.subscriptions {
        let at = format!("{}: [subscriptions.\"{name}\"]", crate::manifest::FILE);
        let topic = &sub.settings.topic;
        if !local.topics.contains_key(topic) && !remote.topics.contains_key(topic) {
            problems.push(format!(
                "{at}: the topic '{topic}' is neither in [topics] nor on the server; add [topics.\"{topic}\"]"
            ));
        }
        problems.extend(action_problem(&at, &sub.settings.action, local, remote, owned));
    }
    for (name, schedule) in &local.schedules {
        let at = format!("{}: [schedules.\"{name}\"]", crate::manifest::FILE);
        problems.extend(action_problem(&at, &schedule.action, local, remote, owned));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(())
}

/// The body of `POST /actions` or `PUT /actions/:name`.
fn action_body(name: Option<&str>, action: &LocalAction, code: bool, limits: bool) -> Result<Vec<u8>> {
    let mut body = Map::new();
    if let Some(name) = name {
        body.insert("name".into(), json!(name));
    }
    if code {
        body.insert("code".into(), json!(base64::engine::general_purpose::STANDARD.encode(&action.source)));
    }
    if limits {
        let l = action.limits;
        body.insert("maxmem".into(), json!(l.maxmem));
        body.insert("timeout".into(), json!(l.timeout));
        body.insert("instructions".into(), json!(l.instructions));
    }
    Ok(serde_json::to_vec(&body)?)
}

/// A 4xx answer as a refusal to report (and go on), anything else as an error.
fn refusal(reply: Reply) -> Result<std::result::Result<(), ServerError>> {
    match reply.success() {
        Ok(_) => Ok(Ok(())),
        Err(e) if (400..500).contains(&e.status) => Ok(Err(e)),
        Err(e) => Err(e.into()),
    }
}

fn message_of(e: &ServerError) -> String {
    e.message.clone().unwrap_or_else(|| e.to_string())
}

/// Makes the server match `local`, reporting each change to `report`.
/// `url` keys the state file. An `Err` means the deploy stopped part way
/// (what was done is still recorded in the state file).
pub fn sync(client: &Client, url: &str, dir: &Path, local: &Local, report: &mut dyn FnMut(&Event)) -> Result<Outcome> {
    let mut state = State::load(dir)?;
    let owned_before = state.owned(url);
    let remote = fetch(client, local, &owned_before)?;
    check_targets(local, &remote, &owned_before)?;
    let plan = Plan::new(local, &remote, &owned_before);
    let mut run =
        Run { client, local, outcome: Outcome::default(), created: Done::default(), deleted: Done::default(), report };
    let result = if plan.is_empty() { Ok(()) } else { run.apply(&plan) };

    // What the directory has now on the server, and the old things not deleted yet.
    let owned_after = Owned {
        actions: still_owned(
            local.actions.keys(),
            &owned_before.actions,
            &remote.actions,
            &run.created.actions,
            &run.deleted.actions,
        ),
        topics: still_owned(
            local.topics.keys(),
            &owned_before.topics,
            &remote.topics,
            &run.created.topics,
            &run.deleted.topics,
        ),
        subscriptions: still_owned(
            local.subscriptions.keys(),
            &owned_before.subscriptions,
            &remote.subscriptions,
            &run.created.subscriptions,
            &run.deleted.subscriptions,
        ),
        schedules: still_owned(
            local.schedules.keys(),
            &owned_before.schedules,
            &remote.schedules,
            &run.created.schedules,
            &run.deleted.schedules,
        ),
    };
    if state.set_owned(url, &owned_after) {
        state.save(dir)?;
    }
    result.map(|()| run.outcome)
}

/// The names of one kind owned after a deploy: those of the directory now
/// on the server (there before and not deleted, or created), and those
/// owned before, gone from the directory, and not deleted yet.
fn still_owned<'a, V>(
    local: impl Iterator<Item = &'a String>,
    before: &BTreeSet<String>,
    remote: &BTreeMap<String, V>,
    created: &BTreeSet<String>,
    deleted: &BTreeSet<String>,
) -> BTreeSet<String> {
    let local: BTreeSet<&String> = local.collect();
    let there = |name: &String| remote.contains_key(name) && !deleted.contains(name);
    let now = local.iter().filter(|name| there(name) || created.contains(**name)).map(|name| (*name).clone());
    let old = before.iter().filter(|name| !local.contains(name) && there(name)).cloned();
    now.chain(old).collect()
}

/// Names created or deleted by a deploy, by kind.
#[derive(Debug, Default)]
struct Done {
    actions: BTreeSet<String>,
    topics: BTreeSet<String>,
    subscriptions: BTreeSet<String>,
    schedules: BTreeSet<String>,
}

/// The progress of applying a plan.
struct Run<'a> {
    client: &'a Client,
    local: &'a Local,
    outcome: Outcome,
    /// What this run created.
    created: Done,
    /// What this run deleted (or found gone).
    deleted: Done,
    report: &'a mut dyn FnMut(&Event),
}

impl Run<'_> {
    fn emit(&mut self, event: Event) {
        self.outcome.count(&event);
        (self.report)(&event);
    }

    /// A refused create or update, as `FILE:LINE: message`.
    fn file_failure(&mut self, name: &str, e: &ServerError) {
        let chunks: Vec<(&str, &str)> = self.local.actions.iter().map(|(n, a)| (n.as_str(), a.file.as_str())).collect();
        let file = &self.local.actions[name].file;
        let message = locate::file_message(&message_of(e), name, file, &chunks);
        self.emit(Event::Failed(message));
    }

    /// Creates or updates one action; `Err` is the server's refusal.
    fn write_action(&mut self, name: &str, update: Option<&Update>) -> Result<std::result::Result<(), ServerError>> {
        let action = &self.local.actions[name];
        let reply = match update {
            None => {
                let body = action_body(Some(name), action, true, true)?;
                self.client.send(Method::Post, "/actions", Some(&body))?
            }
            Some(u) => {
                let body = action_body(None, action, u.code, u.limits)?;
                self.client.send(Method::Put, &format!("/actions/{}", encode(name)), Some(&body))?
            }
        };
        let result = refusal(reply)?;
        if result.is_ok() {
            if update.is_none() {
                self.created.actions.insert(name.to_string());
                self.emit(Event::Created(name.to_string()));
            } else {
                self.emit(Event::Updated(name.to_string()));
            }
        }
        Ok(result)
    }

    fn apply(&mut self, plan: &Plan) -> Result<()> {
        // Creates, then updates. A refused one is tried again after a round
        // in which others went through: a library its chunk `require`s at
        // load time may have been created or changed meanwhile.
        let mut pending: Vec<(&str, Option<&Update>)> = plan.create.iter().map(|n| (n.as_str(), None)).collect();
        pending.extend(plan.update.iter().map(|u| (u.name.as_str(), Some(u))));
        let mut failed: BTreeSet<&str> = BTreeSet::new();
        loop {
            let mut refused = Vec::new();
            let tried = pending.len();
            for (name, update) in pending {
                if let Err(e) = self.write_action(name, update)? {
                    refused.push((name, update, e));
                }
            }
            if refused.is_empty() || refused.len() == tried {
                for (name, update, e) in refused {
                    if update.is_none() {
                        failed.insert(name);
                    }
                    self.file_failure(name, &e);
                }
                break;
            }
            pending = refused.into_iter().map(|(name, update, _)| (name, update)).collect();
        }

        let failed_topics = self.topics(plan)?;
        self.subscriptions(plan, &failed, &failed_topics)?;
        self.schedules(plan, &failed)?;

        let mut to_delete: Vec<&Route> = plan.delete_routes.iter().collect();
        let mut retry = Vec::new();
        for route in &plan.add_routes {
            if failed.contains(route.action.as_str()) {
                continue; // its action could not be created; its error is reported
            }
            // A route that now leads to another action, or renames a param: the old one goes first.
            if let Some(i) = to_delete.iter().position(|old| old.shape() == route.shape()) {
                let old = to_delete.remove(i);
                self.delete_route(old)?;
            }
            match refusal(routes::add(self.client, route)?)? {
                Ok(()) => self.emit(Event::RouteAdded(route.clone())),
                // Maybe an equivalent route this deploy deletes, in a form slcli does not know.
                Err(e) if e.status == 409 && !to_delete.is_empty() => retry.push(route),
                Err(e) => self.emit(Event::Failed(format!("route {route}: {}", message_of(&e)))),
            }
        }
        for route in to_delete {
            self.delete_route(route)?;
        }
        for route in retry {
            match refusal(routes::add(self.client, route)?)? {
                Ok(()) => self.emit(Event::RouteAdded(route.clone())),
                Err(e) => self.emit(Event::Failed(format!("route {route}: {}", message_of(&e)))),
            }
        }

        for name in &plan.delete_topics {
            let reply = topics::delete(self.client, name)?;
            if reply.status == 404 {
                self.deleted.topics.insert(name.clone());
                continue;
            }
            match refusal(reply)? {
                Ok(()) => {
                    self.deleted.topics.insert(name.clone());
                    self.emit(Event::TopicDeleted(name.clone()));
                }
                Err(e) => self.emit(Event::Failed(format!("cannot delete topic {name}: {}", message_of(&e)))),
            }
        }

        for name in &plan.delete {
            let reply = self.client.send(Method::Delete, &format!("/actions/{}", encode(name)), None)?;
            if reply.status == 404 {
                self.deleted.actions.insert(name.clone());
                continue;
            }
            match refusal(reply)? {
                Ok(()) => {
                    self.deleted.actions.insert(name.clone());
                    self.emit(Event::Deleted(name.clone()));
                }
                Err(e) => self.emit(Event::Failed(format!("cannot delete {name}: {}", message_of(&e)))),
            }
        }
        Ok(())
    }

    /// Creates the topics the server lacks and updates the retention of
    /// those whose retention differs; reports the topics whose partitions
    /// differ. Returns the topics that could not be created.
    fn topics(&mut self, plan: &Plan) -> Result<BTreeSet<String>> {
        let mut failed = BTreeSet::new();
        for name in &plan.create_topics {
            match refusal(topics::create(self.client, name, &self.local.topics[name])?)? {
                Ok(()) => {
                    self.created.topics.insert(name.clone());
                    self.emit(Event::TopicCreated(name.clone()));
                }
                Err(e) => {
                    failed.insert(name.clone());
                    self.emit(Event::Failed(format!("topic {name}: {}", message_of(&e))));
                }
            }
        }
        for name in &plan.update_topics {
            match refusal(topics::set_retention(self.client, name, &self.local.topics[name])?)? {
                Ok(()) => self.emit(Event::TopicUpdated(name.clone())),
                Err(e) => self.emit(Event::Failed(format!("topic {name}: {}", message_of(&e)))),
            }
        }
        for p in &plan.partitions {
            self.emit(Event::Failed(format!(
                "topic {}: it has {} partitions on the server and {} in {}; the partitions of a topic cannot \
                 change (delete it with `slcli topic delete {}`, losing its messages, or set partitions = {})",
                p.topic,
                p.server,
                p.manifest,
                crate::manifest::FILE,
                p.topic,
                p.server
            )));
        }
        Ok(failed)
    }

    /// Deletes the subscriptions gone from the manifest, deletes and creates
    /// again those whose settings changed, and creates the new ones, but
    /// not those whose action or topic could not be created (`failed`,
    /// `failed_topics`: their error is reported).
    fn subscriptions(&mut self, plan: &Plan, failed: &BTreeSet<&str>, failed_topics: &BTreeSet<String>) -> Result<()> {
        for name in &plan.delete_subscriptions {
            if self.delete_subscription(name)? {
                self.emit(Event::SubscriptionDeleted(name.clone()));
            }
        }
        let blocked = |spec: &SubscriptionSpec| {
            failed.contains(spec.settings.action.as_str()) || failed_topics.contains(&spec.settings.topic)
        };
        for name in &plan.recreate_subscriptions {
            let spec = &self.local.subscriptions[name];
            if blocked(spec) || !self.delete_subscription(name)? {
                continue;
            }
            self.create_subscription(name, spec, true)?;
        }
        for name in &plan.create_subscriptions {
            let spec = &self.local.subscriptions[name];
            if !blocked(spec) {
                self.create_subscription(name, spec, false)?;
            }
        }
        Ok(())
    }

    /// Deletes a subscription; whether it is gone (a refusal is reported).
    fn delete_subscription(&mut self, name: &str) -> Result<bool> {
        let reply = subscriptions::delete(self.client, name)?;
        if reply.status == 404 {
            self.deleted.subscriptions.insert(name.to_string());
            return Ok(true);
        }
        match refusal(reply)? {
            Ok(()) => {
                self.deleted.subscriptions.insert(name.to_string());
                Ok(true)
            }
            Err(e) => {
                self.emit(Event::Failed(format!("cannot delete subscription {name}: {}", message_of(&e))));
                Ok(false)
            }
        }
    }

    /// Creates a subscription (again, if `recreated`), reporting it.
    fn create_subscription(&mut self, name: &str, spec: &SubscriptionSpec, recreated: bool) -> Result<()> {
        match refusal(subscriptions::create(self.client, name, spec)?)? {
            Ok(()) => {
                self.created.subscriptions.insert(name.to_string());
                let line = SubscriptionLine {
                    name: name.to_string(),
                    topic: spec.settings.topic.clone(),
                    action: spec.settings.action.clone(),
                    from: spec.from,
                };
                self.emit(if recreated {
                    Event::SubscriptionRecreated(line)
                } else {
                    Event::SubscriptionCreated(line)
                });
            }
            Err(e) => self.emit(Event::Failed(format!("subscription {name}: {}", message_of(&e)))),
        }
        Ok(())
    }

    /// Deletes the schedules gone from the manifest, deletes and creates
    /// again those whose settings changed, and creates the new ones, but not
    /// those whose action could not be created (`failed`: its error is
    /// reported).
    fn schedules(&mut self, plan: &Plan, failed: &BTreeSet<&str>) -> Result<()> {
        for name in &plan.delete_schedules {
            if self.delete_schedule(name)? {
                self.emit(Event::ScheduleDeleted(name.clone()));
            }
        }
        for name in &plan.recreate_schedules {
            let spec = &self.local.schedules[name];
            if failed.contains(spec.action.as_str()) || !self.delete_schedule(name)? {
                continue;
            }
            self.create_schedule(name, spec, true)?;
        }
        for name in &plan.create_schedules {
            let spec = &self.local.schedules[name];
            if !failed.contains(spec.action.as_str()) {
                self.create_schedule(name, spec, false)?;
            }
        }
        Ok(())
    }

    /// Deletes a schedule; whether it is gone (a refusal is reported).
    fn delete_schedule(&mut self, name: &str) -> Result<bool> {
        let reply = schedules::delete(self.client, name)?;
        if reply.status == 404 {
            self.deleted.schedules.insert(name.to_string());
            return Ok(true);
        }
        match refusal(reply)? {
            Ok(()) => {
                self.deleted.schedules.insert(name.to_string());
                Ok(true)
            }
            Err(e) => {
                self.emit(Event::Failed(format!("cannot delete schedule {name}: {}", message_of(&e))));
                Ok(false)
            }
        }
    }

    /// Creates a schedule (again, if `recreated`), reporting it.
    fn create_schedule(&mut self, name: &str, spec: &ScheduleSpec, recreated: bool) -> Result<()> {
        match refusal(schedules::create(self.client, name, spec)?)? {
            Ok(()) => {
                self.created.schedules.insert(name.to_string());
                let line = ScheduleLine::new(name, spec);
                self.emit(if recreated { Event::ScheduleRecreated(line) } else { Event::ScheduleCreated(line) });
            }
            Err(e) => self.emit(Event::Failed(format!("schedule {name}: {}", message_of(&e)))),
        }
        Ok(())
    }

    fn delete_route(&mut self, route: &Route) -> Result<()> {
        let reply = routes::delete(self.client, route)?;
        if reply.status == 404 {
            return Ok(()); // gone already
        }
        match refusal(reply)? {
            Ok(()) => self.emit(Event::RouteDeleted(route.clone())),
            Err(e) => self.emit(Event::Failed(format!("cannot delete route {route}: {}", message_of(&e)))),
        }
        Ok(())
    }
}

/// Prints an event: changes on stdout (one line each), failures on stderr
/// (a message, which may have more lines), after `prefix`. Control
/// characters, which a server may put in names and messages, are shown as
/// escapes.
pub fn print_event(prefix: &str, event: &Event) {
    if event.is_failure() {
        eprintln!("{prefix}{}", visible(&event.to_string(), Lines::Keep));
    } else {
        println!("{prefix}{}", visible(&event.to_string(), Lines::One));
    }
}

/// `slcli deploy DIR`. Returns whether every file and route went through.
pub fn command(client: &Client, url: &str, dir: &Path) -> Result<bool> {
    let local = scan(dir)?;
    let outcome = sync(client, url, dir, &local, &mut |event| print_event("", event))?;
    crate::output::emit(&outcome.to_string())?;
    Ok(outcome.failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(Outcome::default().to_string(), "nothing changed");
        let o = Outcome { created: 2, updated: 1, routes_added: 1, routes_deleted: 3, ..Outcome::default() };
        assert_eq!(o.to_string(), "2 created, 1 updated, 0 deleted, 1 routes added, 3 routes deleted");
        let o = Outcome { topics_created: 1, subscriptions_recreated: 2, failed: 1, ..Outcome::default() };
        assert_eq!(
            o.to_string(),
            "0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 topics created, \
             2 subscriptions recreated, 1 failed"
        );
        let o = Outcome { failed: 1, ..Outcome::default() };
        assert_eq!(o.to_string(), "0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 failed");
        let o = Outcome {
            created: 1,
            schedules_created: 2,
            schedules_recreated: 1,
            schedules_deleted: 3,
            ..Outcome::default()
        };
        assert!(o.changed());
        assert_eq!(
            o.to_string(),
            "1 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 2 schedules created, \
             1 schedules recreated, 3 schedules deleted"
        );
        assert!(Outcome { schedules_deleted: 1, ..Outcome::default() }.changed());
    }

    #[test]
    fn event_lines() {
        assert_eq!(Event::Created("users.get".into()).to_string(), "created users.get");
        assert_eq!(Event::Updated("users.get".into()).to_string(), "updated users.get");
        assert_eq!(Event::Deleted("old.thing".into()).to_string(), "deleted old.thing");
        let route = Route::new("GET", "", "/users/:id", "users.get");
        assert_eq!(Event::RouteAdded(route).to_string(), "route added GET /users/:id -> users.get");
        let route = Route::new("GET", "example.com", "/x", "y");
        assert_eq!(Event::RouteDeleted(route).to_string(), "route deleted GET example.com/x -> y");
        assert_eq!(Event::TopicCreated("orders".into()).to_string(), "topic created orders");
        assert_eq!(Event::TopicUpdated("orders".into()).to_string(), "topic updated orders");
        assert_eq!(Event::TopicDeleted("orders".into()).to_string(), "topic deleted orders");
        let line = SubscriptionLine {
            name: "mailer".into(),
            topic: "orders".into(),
            action: "mail.send".into(),
            from: Position::Beginning,
        };
        assert_eq!(
            Event::SubscriptionCreated(line.clone()).to_string(),
            "subscription created mailer (orders -> mail.send, from beginning)"
        );
        assert_eq!(
            Event::SubscriptionRecreated(line).to_string(),
            "subscription recreated mailer (orders -> mail.send, from beginning)"
        );
        assert_eq!(Event::SubscriptionDeleted("mailer".into()).to_string(), "subscription deleted mailer");
        let line = ScheduleLine {
            name: "nightly".into(),
            spec: "0 9 * * *".into(),
            time_zone: "Europe/London".into(),
            action: "report".into(),
        };
        assert_eq!(
            Event::ScheduleCreated(line.clone()).to_string(),
            "schedule created nightly (0 9 * * * in Europe/London -> report)"
        );
        assert_eq!(
            Event::ScheduleRecreated(line).to_string(),
            "schedule recreated nightly (0 9 * * * in Europe/London -> report)"
        );
        assert_eq!(Event::ScheduleDeleted("nightly".into()).to_string(), "schedule deleted nightly");
    }

    fn local_with(actions: &[&str], schedules: &[(&str, &str)]) -> Local {
        let action = |name: &str| {
            let a = LocalAction { file: format!("{name}.lua"), source: b"x".to_vec(), limits: Limits::default() };
            (name.to_string(), a)
        };
        let schedule = |(name, action): &(&str, &str)| {
            let spec = ScheduleSpec {
                action: action.to_string(),
                spec: "@daily".into(),
                time_zone: "UTC".into(),
                args: Map::new(),
                overlap: "skip".into(),
                catch_up: "none".into(),
                jitter_ms: 0,
            };
            (name.to_string(), spec)
        };
        Local {
            actions: actions.iter().map(|a| action(a)).collect(),
            schedules: schedules.iter().map(schedule).collect(),
            ..Local::default()
        }
    }

    #[test]
    fn schedules_need_an_action_that_stays() {
        let remote = Remote {
            actions: [
                ("theirs".to_string(), RemoteAction { source: None, limits: Limits::default() }),
                ("gone".to_string(), RemoteAction { source: None, limits: Limits::default() }),
            ]
            .into(),
            ..Remote::default()
        };
        let owned = Owned { actions: ["gone".to_string()].into(), ..Owned::default() };
        let local = local_with(&["mine"], &[("a", "mine"), ("b", "theirs")]);
        assert!(check_targets(&local, &remote, &owned).is_ok());
        let local = local_with(&["mine"], &[("a", "nowhere"), ("b", "gone"), ("c", "mine")]);
        let e = check_targets(&local, &remote, &owned).unwrap_err().to_string();
        assert_eq!(
            e,
            "sl.toml: [schedules.\"a\"]: the action 'nowhere' is neither a file of the directory (nowhere.lua) \
             nor on the server\n\
             sl.toml: [schedules.\"b\"]: the action 'gone' was deployed from this directory and its file is gone: \
             this deploy would delete it"
        );
    }

    #[test]
    fn the_scan_reads_sources_and_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir(dir.join("users")).unwrap();
        fs::write(dir.join("users/get.lua"), "function main() return 1 end\n").unwrap();
        fs::write(dir.join("hello.lua"), "function main() return 2 end\n").unwrap();
        fs::write(
            dir.join("sl.toml"),
            "[actions.\"users.get\"]\ntimeout = 500\n[[routes]]\nmethod = \"GET\"\npath = \"/u/:id\"\naction = \"users.get\"\n",
        )
        .unwrap();
        let local = scan(dir).unwrap();
        assert_eq!(local.actions["users.get"].file, "users/get.lua");
        assert_eq!(local.actions["users.get"].limits, Limits { timeout: 500, ..Limits::default() });
        assert_eq!(local.actions["hello"].source, b"function main() return 2 end\n");
        assert_eq!(local.routes, [Route::new("GET", "", "/u/:id", "users.get")]);

        fs::write(dir.join("sl.toml"), "[actions.gone]\ntimeout = 5\n").unwrap();
        let e = scan(dir).unwrap_err().to_string();
        assert!(e.contains("sl.toml: [actions.\"gone\"]"), "{e}");
    }

    #[test]
    fn bodies_carry_what_changed() {
        let action = LocalAction {
            file: "a.lua".into(),
            source: b"x".to_vec(),
            limits: Limits { maxmem: 1, timeout: 2, instructions: 0 },
        };
        let body: serde_json::Value =
            serde_json::from_slice(&action_body(Some("a"), &action, true, true).unwrap()).unwrap();
        assert_eq!(body, json!({"name": "a", "code": "eA==", "maxmem": 1, "timeout": 2, "instructions": 0}));
        let body: serde_json::Value =
            serde_json::from_slice(&action_body(None, &action, false, true).unwrap()).unwrap();
        assert_eq!(body, json!({"maxmem": 1, "timeout": 2, "instructions": 0}));
        let body: serde_json::Value =
            serde_json::from_slice(&action_body(None, &action, true, false).unwrap()).unwrap();
        assert_eq!(body, json!({"code": "eA=="}));
    }
}
