//! What a deploy changes: the difference between an app directory and the
//! server, computed without touching either.
//!
//! - An action with a file but not on the server is created.
//! - An action whose source or limits differ from the server's is updated.
//! - A manifest route the server does not have is added.
//! - A server route whose action belongs to the directory (has a file now,
//!   or was deployed from it before) but that the manifest does not list is
//!   deleted.
//! - An action deployed from the directory before whose file is gone is
//!   deleted, if the server still has it.
//! - A manifest topic the server does not have is created; one whose
//!   retention differs is updated; one whose partitions differ is reported
//!   (they are fixed once a topic exists).
//! - A manifest subscription the server does not have is created; one whose
//!   settings differ (topic, action, batch size, wait, retries, backoff) is
//!   deleted and created again, as the API cannot change one. `from` is not
//!   compared: it only says where a new subscription starts.
//! - A manifest schedule the server does not have is created; one whose
//!   settings differ (action, spec, time zone, args, overlap, catch-up,
//!   jitter) is deleted and created again, as the API cannot change one.
//! - Topics, subscriptions and schedules deployed from the directory before
//!   that the manifest no longer lists are deleted, if the server still has
//!   them.

use std::collections::BTreeMap;

use crate::manifest::{Limits, ScheduleSpec, SubscriptionSettings, SubscriptionSpec, TopicSpec};
use crate::routes::Route;
use crate::state::Owned;

/// An action as the directory defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAction {
    /// The file, relative to the directory (`users/get.lua`).
    pub file: String,
    pub source: Vec<u8>,
    pub limits: Limits,
}

/// The directory: its actions by name, and its manifest's routes, topics,
/// subscriptions and schedules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub actions: BTreeMap<String, LocalAction>,
    pub routes: Vec<Route>,
    /// The manifest's topics, by name.
    pub topics: BTreeMap<String, TopicSpec>,
    /// The manifest's subscriptions, by name.
    pub subscriptions: BTreeMap<String, SubscriptionSpec>,
    /// The manifest's schedules, by name.
    pub schedules: BTreeMap<String, ScheduleSpec>,
}

impl Local {
    /// Whether the manifest has topics or subscriptions.
    pub fn has_events(&self) -> bool {
        !self.topics.is_empty() || !self.subscriptions.is_empty()
    }
}

/// An action on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAction {
    /// The source, when it was fetched (only actions with a file need it).
    pub source: Option<Vec<u8>>,
    pub limits: Limits,
}

/// The server's state, as far as a deploy needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    pub actions: BTreeMap<String, RemoteAction>,
    pub routes: Vec<Route>,
    /// The server's topics that the directory has, had, or reads.
    pub topics: BTreeMap<String, TopicSpec>,
    /// The server's subscriptions that the directory has or had.
    pub subscriptions: BTreeMap<String, SubscriptionSettings>,
    /// The server's schedules that the directory has or had.
    pub schedules: BTreeMap<String, ScheduleSpec>,
}

/// A topic whose partitions differ from the manifest's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    /// The topic.
    pub topic: String,
    /// The server's.
    pub server: u32,
    /// The manifest's.
    pub manifest: u32,
}

/// An action to update, and what about it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub code: bool,
    pub limits: bool,
}

/// The changes, in the order they are made: actions created and updated,
/// topics created and updated, subscriptions deleted, recreated and
/// created, schedules deleted, recreated and created, routes added and
/// deleted, topics deleted, actions deleted (so a schedule or subscription
/// goes before the action it runs, as the server requires).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<String>,
    pub update: Vec<Update>,
    /// Topics the server lacks.
    pub create_topics: Vec<String>,
    /// Topics whose retention differs.
    pub update_topics: Vec<String>,
    /// Topics whose partitions differ: reported, not changed.
    pub partitions: Vec<Partitions>,
    /// Subscriptions deployed before that the manifest no longer lists.
    pub delete_subscriptions: Vec<String>,
    /// Subscriptions whose settings differ: deleted, then created.
    pub recreate_subscriptions: Vec<String>,
    /// Subscriptions the server lacks.
    pub create_subscriptions: Vec<String>,
    /// Schedules deployed before that the manifest no longer lists.
    pub delete_schedules: Vec<String>,
    /// Schedules whose settings differ: deleted, then created.
    pub recreate_schedules: Vec<String>,
    /// Schedules the server lacks.
    pub create_schedules: Vec<String>,
    pub add_routes: Vec<Route>,
    pub delete_routes: Vec<Route>,
    /// Topics deployed before that the manifest no longer lists.
    pub delete_topics: Vec<String>,
    pub delete: Vec<String>,
}

impl Plan {
    /// Computes the changes that make the server match `local`.
    /// `owned_before` is what was deployed from the directory before.
    pub fn new(local: &Local, remote: &Remote, owned_before: &Owned) -> Self {
        let mut plan = Plan::default();
        plan.events(local, remote, owned_before);
        plan.schedules(local, remote, owned_before);
        let owned_before = &owned_before.actions;
        for (name, action) in &local.actions {
            match remote.actions.get(name) {
                None => plan.create.push(name.clone()),
                Some(theirs) => {
                    let code = theirs.source.as_deref() != Some(&action.source[..]);
                    let limits = theirs.limits != action.limits;
                    if code || limits {
                        plan.update.push(Update { name: name.clone(), code, limits });
                    }
                }
            }
        }
        let owned = |name: &str| local.actions.contains_key(name) || owned_before.contains(name);
        plan.add_routes = local.routes.iter().filter(|r| !remote.routes.contains(r)).cloned().collect();
        plan.delete_routes =
            remote.routes.iter().filter(|r| owned(&r.action) && !local.routes.contains(r)).cloned().collect();
        plan.delete = owned_before
            .iter()
            .filter(|name| !local.actions.contains_key(*name) && remote.actions.contains_key(*name))
            .cloned()
            .collect();
        plan
    }

    /// The topic and subscription changes.
    fn events(&mut self, local: &Local, remote: &Remote, owned_before: &Owned) {
        for (name, topic) in &local.topics {
            match remote.topics.get(name) {
                None => self.create_topics.push(name.clone()),
                Some(theirs) => {
                    if (theirs.retention_ms, theirs.retention_bytes) != (topic.retention_ms, topic.retention_bytes) {
                        self.update_topics.push(name.clone());
                    }
                    if theirs.partitions != topic.partitions {
                        self.partitions.push(Partitions {
                            topic: name.clone(),
                            server: theirs.partitions,
                            manifest: topic.partitions,
                        });
                    }
                }
            }
        }
        for (name, sub) in &local.subscriptions {
            match remote.subscriptions.get(name) {
                None => self.create_subscriptions.push(name.clone()),
                Some(theirs) if *theirs != sub.settings => self.recreate_subscriptions.push(name.clone()),
                Some(_) => {}
            }
        }
        self.delete_subscriptions = owned_before
            .subscriptions
            .iter()
            .filter(|name| !local.subscriptions.contains_key(*name) && remote.subscriptions.contains_key(*name))
            .cloned()
            .collect();
        self.delete_topics = owned_before
            .topics
            .iter()
            .filter(|name| !local.topics.contains_key(*name) && remote.topics.contains_key(*name))
            .cloned()
            .collect();
    }

    /// The schedule changes.
    fn schedules(&mut self, local: &Local, remote: &Remote, owned_before: &Owned) {
        for (name, schedule) in &local.schedules {
            match remote.schedules.get(name) {
                None => self.create_schedules.push(name.clone()),
                Some(theirs) if theirs != schedule => self.recreate_schedules.push(name.clone()),
                Some(_) => {}
            }
        }
        self.delete_schedules = owned_before
            .schedules
            .iter()
            .filter(|name| !local.schedules.contains_key(*name) && remote.schedules.contains_key(*name))
            .cloned()
            .collect();
    }

    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.update.is_empty()
            && self.create_topics.is_empty()
            && self.update_topics.is_empty()
            && self.partitions.is_empty()
            && self.delete_subscriptions.is_empty()
            && self.recreate_subscriptions.is_empty()
            && self.create_subscriptions.is_empty()
            && self.delete_schedules.is_empty()
            && self.recreate_schedules.is_empty()
            && self.create_schedules.is_empty()
            && self.add_routes.is_empty()
            && self.delete_routes.is_empty()
            && self.delete_topics.is_empty()
            && self.delete.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::Position;
    use std::collections::BTreeSet;

    fn local_action(source: &str, maxmem: u64) -> LocalAction {
        LocalAction { file: "f.lua".into(), source: source.into(), limits: Limits { maxmem, ..Limits::default() } }
    }

    fn remote_action(source: Option<&str>, maxmem: u64) -> RemoteAction {
        RemoteAction { source: source.map(Into::into), limits: Limits { maxmem, ..Limits::default() } }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// What a directory deployed before: these actions.
    fn owned(actions: &[&str]) -> Owned {
        Owned { actions: set(actions), ..Owned::default() }
    }

    #[test]
    fn equal_states_need_nothing() {
        let local = Local {
            actions: [("a".to_string(), local_action("A", 0))].into(),
            routes: vec![Route::new("GET", "", "/a", "a")],
            ..Local::default()
        };
        let remote = Remote {
            actions: [("a".to_string(), remote_action(Some("A"), 0)), ("other".into(), remote_action(None, 0))].into(),
            routes: vec![Route::new("GET", "", "/a", "a"), Route::new("GET", "", "/o", "other")],
            ..Remote::default()
        };
        let plan = Plan::new(&local, &remote, &owned(&["a"]));
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn creates_updates_and_deletes() {
        let local = Local {
            actions: [
                ("new".to_string(), local_action("N", 0)),
                ("code".to_string(), local_action("C2", 0)),
                ("limits".to_string(), local_action("L", 64)),
                ("both".to_string(), local_action("B2", 0)),
                ("same".to_string(), local_action("S", 0)),
            ]
            .into(),
            ..Default::default()
        };
        let remote = Remote {
            actions: [
                ("code".to_string(), remote_action(Some("C1"), 0)),
                ("limits".to_string(), remote_action(Some("L"), 0)),
                ("both".to_string(), remote_action(Some("B1"), 7)),
                ("same".to_string(), remote_action(Some("S"), 0)),
                ("gone".to_string(), remote_action(None, 0)),
                ("foreign".to_string(), remote_action(None, 0)),
            ]
            .into(),
            ..Default::default()
        };
        let plan = Plan::new(&local, &remote, &owned(&["gone", "same", "already-deleted"]));
        assert_eq!(plan.create, ["new"]);
        assert_eq!(
            plan.update,
            [
                Update { name: "both".into(), code: true, limits: true },
                Update { name: "code".into(), code: true, limits: false },
                Update { name: "limits".into(), code: false, limits: true },
            ]
        );
        // Not "foreign": it was never deployed from here. Not "already-deleted": the server lacks it.
        assert_eq!(plan.delete, ["gone"]);
    }

    #[test]
    fn an_unfetched_source_counts_as_changed() {
        let local = Local { actions: [("a".to_string(), local_action("A", 0))].into(), ..Local::default() };
        let remote = Remote { actions: [("a".to_string(), remote_action(None, 0))].into(), ..Remote::default() };
        assert_eq!(Plan::new(&local, &remote, &owned(&[])).update.len(), 1);
    }

    fn topic(partitions: u32, retention_ms: Option<i64>) -> TopicSpec {
        TopicSpec { partitions, retention_ms, retention_bytes: None }
    }

    fn settings(topic: &str, action: &str, max_retries: u32) -> SubscriptionSettings {
        SubscriptionSettings {
            topic: topic.into(),
            action: action.into(),
            batch_size: 10,
            max_wait_ms: 0,
            max_retries,
            backoff_ms: 1000,
            backoff_max_ms: 300_000,
        }
    }

    fn sub(topic: &str, action: &str, max_retries: u32, from: Position) -> SubscriptionSpec {
        SubscriptionSpec { settings: settings(topic, action, max_retries), from }
    }

    #[test]
    fn topics_and_subscriptions_follow_the_manifest() {
        let local = Local {
            topics: [
                ("new".to_string(), topic(4, None)),
                ("same".to_string(), topic(4, Some(1000))),
                ("retention".to_string(), topic(4, Some(5000))),
                ("wider".to_string(), topic(8, None)),
            ]
            .into(),
            subscriptions: [
                ("new".to_string(), sub("new", "a", 3, Position::End)),
                ("same".to_string(), sub("same", "a", 3, Position::Beginning)),
                ("changed".to_string(), sub("same", "a", 1, Position::End)),
                ("moved".to_string(), sub("new", "a", 3, Position::End)),
            ]
            .into(),
            ..Local::default()
        };
        let remote = Remote {
            topics: [
                ("same".to_string(), topic(4, Some(1000))),
                ("retention".to_string(), topic(4, None)),
                ("wider".to_string(), topic(4, None)),
                ("old".to_string(), topic(1, None)),
                ("foreign".to_string(), topic(1, None)),
            ]
            .into(),
            subscriptions: [
                // `from` is not compared: it only says where a new one starts.
                ("same".to_string(), settings("same", "a", 3)),
                ("changed".to_string(), settings("same", "a", 3)),
                ("moved".to_string(), settings("same", "a", 3)),
                ("old".to_string(), settings("old", "a", 3)),
                ("foreign".to_string(), settings("foreign", "a", 3)),
            ]
            .into(),
            ..Remote::default()
        };
        let before = Owned {
            actions: set(&[]),
            topics: set(&["same", "old", "gone"]),
            subscriptions: set(&["same", "old", "gone"]),
            ..Owned::default()
        };
        let plan = Plan::new(&local, &remote, &before);
        assert_eq!(plan.create_topics, ["new"]);
        assert_eq!(plan.update_topics, ["retention"]);
        assert_eq!(plan.partitions, [Partitions { topic: "wider".into(), server: 4, manifest: 8 }]);
        assert_eq!(plan.create_subscriptions, ["new"]);
        assert_eq!(plan.recreate_subscriptions, ["changed", "moved"]);
        // Not "foreign": never deployed from here. Not "gone": the server lacks it.
        assert_eq!(plan.delete_subscriptions, ["old"]);
        assert_eq!(plan.delete_topics, ["old"]);
        assert!(plan.create.is_empty() && plan.delete.is_empty() && !plan.is_empty());

        // Once done, nothing more.
        let remote = Remote {
            topics: local.topics.clone(),
            subscriptions: local.subscriptions.iter().map(|(k, s)| (k.clone(), s.settings.clone())).collect(),
            ..Remote::default()
        };
        assert!(Plan::new(&local, &remote, &before).is_empty());
    }

    fn schedule(action: &str, spec: &str, args: serde_json::Value) -> ScheduleSpec {
        ScheduleSpec {
            action: action.into(),
            spec: spec.into(),
            time_zone: "UTC".into(),
            args: args.as_object().cloned().unwrap_or_default(),
            overlap: "skip".into(),
            catch_up: "none".into(),
            jitter_ms: 0,
        }
    }

    #[test]
    fn schedules_follow_the_manifest() {
        use serde_json::json;
        let mut zoned = schedule("a", "0 9 * * *", json!({}));
        zoned.time_zone = "Europe/London".into();
        let mut queued = schedule("a", "@daily", json!({}));
        queued.overlap = "queue".into();
        let local = Local {
            schedules: [
                ("new".to_string(), schedule("a", "@hourly", json!({}))),
                ("same".to_string(), schedule("a", "@every 1s", json!({"n": 1, "deep": {"x": [1, 2]}}))),
                ("spec".to_string(), schedule("a", "*/5 * * * *", json!({}))),
                ("action".to_string(), schedule("b", "@daily", json!({}))),
                ("args".to_string(), schedule("a", "@daily", json!({"n": 2}))),
                ("zone".to_string(), zoned),
                ("policy".to_string(), queued),
            ]
            .into(),
            ..Local::default()
        };
        let remote = Remote {
            schedules: [
                ("same".to_string(), schedule("a", "@every 1s", json!({"deep": {"x": [1, 2]}, "n": 1}))),
                ("spec".to_string(), schedule("a", "*/10 * * * *", json!({}))),
                ("action".to_string(), schedule("a", "@daily", json!({}))),
                ("args".to_string(), schedule("a", "@daily", json!({"n": 1}))),
                ("zone".to_string(), schedule("a", "0 9 * * *", json!({}))),
                ("policy".to_string(), schedule("a", "@daily", json!({}))),
                ("old".to_string(), schedule("a", "@daily", json!({}))),
                ("foreign".to_string(), schedule("a", "@daily", json!({}))),
            ]
            .into(),
            ..Remote::default()
        };
        let before = Owned { schedules: set(&["same", "old", "gone"]), ..Owned::default() };
        let plan = Plan::new(&local, &remote, &before);
        assert_eq!(plan.create_schedules, ["new"]);
        assert_eq!(plan.recreate_schedules, ["action", "args", "policy", "spec", "zone"]);
        // Not "foreign": never deployed from here. Not "gone": the server lacks it.
        assert_eq!(plan.delete_schedules, ["old"]);
        assert!(!plan.is_empty() && plan.create_subscriptions.is_empty() && plan.delete.is_empty());

        // Once done, nothing more.
        let remote = Remote { schedules: local.schedules.clone(), ..Remote::default() };
        assert!(Plan::new(&local, &remote, &before).is_empty());
    }

    #[test]
    fn routes_of_owned_actions_follow_the_manifest() {
        let local = Local {
            actions: [("a".to_string(), local_action("A", 0)), ("b".to_string(), local_action("B", 0))].into(),
            routes: vec![
                Route::new("GET", "", "/a", "a"),
                Route::new("POST", "h.example", "/a", "a"),
                Route::new("GET", "", "/moved", "b"),
            ],
            ..Local::default()
        };
        let remote = Remote {
            actions: [
                ("a".to_string(), remote_action(Some("A"), 0)),
                ("b".to_string(), remote_action(Some("B"), 0)),
                ("old".to_string(), remote_action(None, 0)),
                ("foreign".to_string(), remote_action(None, 0)),
            ]
            .into(),
            routes: vec![
                Route::new("GET", "", "/a", "a"),
                Route::new("GET", "", "/stale", "a"),
                Route::new("GET", "", "/moved", "a"),
                Route::new("GET", "", "/old", "old"),
                Route::new("GET", "", "/f", "foreign"),
            ],
            ..Remote::default()
        };
        let plan = Plan::new(&local, &remote, &owned(&["a", "old"]));
        assert_eq!(plan.add_routes, [Route::new("POST", "h.example", "/a", "a"), Route::new("GET", "", "/moved", "b")]);
        assert_eq!(
            plan.delete_routes,
            [
                Route::new("GET", "", "/stale", "a"),
                Route::new("GET", "", "/moved", "a"),
                Route::new("GET", "", "/old", "old")
            ]
        );
        assert_eq!(plan.delete, ["old"]);
        assert!(plan.create.is_empty() && plan.update.is_empty());
    }
}
