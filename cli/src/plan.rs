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

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::Limits;
use crate::routes::Route;

/// An action as the directory defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAction {
    /// The file, relative to the directory (`users/get.lua`).
    pub file: String,
    pub source: Vec<u8>,
    pub limits: Limits,
}

/// The directory: its actions by name and its manifest routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub actions: BTreeMap<String, LocalAction>,
    pub routes: Vec<Route>,
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
}

/// An action to update, and what about it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub code: bool,
    pub limits: bool,
}

/// The changes, in the order they are made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<String>,
    pub update: Vec<Update>,
    pub add_routes: Vec<Route>,
    pub delete_routes: Vec<Route>,
    pub delete: Vec<String>,
}

impl Plan {
    /// Computes the changes that make the server match `local`.
    /// `owned_before` are the actions deployed from the directory before.
    pub fn new(local: &Local, remote: &Remote, owned_before: &BTreeSet<String>) -> Self {
        let mut plan = Plan::default();
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

    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.update.is_empty()
            && self.add_routes.is_empty()
            && self.delete_routes.is_empty()
            && self.delete.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_action(source: &str, maxmem: u64) -> LocalAction {
        LocalAction { file: "f.lua".into(), source: source.into(), limits: Limits { maxmem, ..Limits::default() } }
    }

    fn remote_action(source: Option<&str>, maxmem: u64) -> RemoteAction {
        RemoteAction { source: source.map(Into::into), limits: Limits { maxmem, ..Limits::default() } }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equal_states_need_nothing() {
        let local = Local {
            actions: [("a".to_string(), local_action("A", 0))].into(),
            routes: vec![Route::new("GET", "", "/a", "a")],
        };
        let remote = Remote {
            actions: [("a".to_string(), remote_action(Some("A"), 0)), ("other".into(), remote_action(None, 0))].into(),
            routes: vec![Route::new("GET", "", "/a", "a"), Route::new("GET", "", "/o", "other")],
        };
        let plan = Plan::new(&local, &remote, &set(&["a"]));
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
            routes: vec![],
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
            routes: vec![],
        };
        let plan = Plan::new(&local, &remote, &set(&["gone", "same", "already-deleted"]));
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
        let local = Local { actions: [("a".to_string(), local_action("A", 0))].into(), routes: vec![] };
        let remote = Remote { actions: [("a".to_string(), remote_action(None, 0))].into(), routes: vec![] };
        assert_eq!(Plan::new(&local, &remote, &set(&[])).update.len(), 1);
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
        };
        let plan = Plan::new(&local, &remote, &set(&["a", "old"]));
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
