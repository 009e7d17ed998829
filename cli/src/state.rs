//! What was deployed from an app directory before: `DIR/.sl/deployed.json`.
//!
//! A JSON object mapping each server URL to what exists there because of
//! this directory: the sorted names of its actions, or, once the directory
//! has deployed topics, subscriptions or schedules, an object of the lists
//! (`schedules` only when there are some, so that the files of earlier
//! slcli versions read the same):
//!
//! ```json
//! {
//!   "http://127.0.0.1:8080": ["hello", "users.get"],
//!   "http://127.0.0.1:9090": {"actions": ["mail.send"], "topics": ["orders"], "subscriptions": ["mailer"]},
//!   "http://127.0.0.1:9191": {"actions": ["report"], "topics": [], "subscriptions": [], "schedules": ["nightly"]}
//! }
//! ```
//!
//! `slcli deploy` and `slcli dev` read it to know which actions (and routes
//! to them), topics, subscriptions and schedules they may delete when their
//! file or manifest entry is gone, and write it after each deploy. It is local to a
//! checkout: add `.sl/` to `.gitignore`. Deleting the file only means that
//! what was removed from the directory before is no longer cleaned up.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

/// The state file of `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(".sl").join("deployed.json")
}

/// What exists on one server because of the directory, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// Actions (and so the routes to them).
    pub actions: BTreeSet<String>,
    /// Topics of the manifest's `[topics]`.
    pub topics: BTreeSet<String>,
    /// Subscriptions of the manifest's `[subscriptions]`.
    pub subscriptions: BTreeSet<String>,
    /// Schedules of the manifest's `[schedules]`.
    pub schedules: BTreeSet<String>,
}

impl Owned {
    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && !self.has_events()
    }

    /// Whether topics, subscriptions or schedules are owned (and so the
    /// state is written as an object of lists).
    fn has_events(&self) -> bool {
        !self.topics.is_empty() || !self.subscriptions.is_empty() || !self.schedules.is_empty()
    }
}

/// The state file's contents.
#[derive(Debug, Default)]
pub struct State {
    servers: Map<String, Value>,
}

impl State {
    /// Reads `DIR/.sl/deployed.json`; a missing file is an empty state.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str(&text) {
            Ok(Value::Object(servers)) => Ok(Self { servers }),
            Ok(_) | Err(_) => bail!(
                "{} is not a JSON object of server URLs to what was deployed there; fix or delete it \
                 (deleting it only stops the cleanup of what was removed from the directory before)",
                path.display()
            ),
        }
    }

    /// What was deployed to `url` from the directory.
    pub fn owned(&self, url: &str) -> Owned {
        let names = |v: Option<&Value>| match v {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => BTreeSet::new(),
        };
        match self.servers.get(url) {
            Some(Value::Object(lists)) => Owned {
                actions: names(lists.get("actions")),
                topics: names(lists.get("topics")),
                subscriptions: names(lists.get("subscriptions")),
                schedules: names(lists.get("schedules")),
            },
            other => Owned { actions: names(other), ..Owned::default() },
        }
    }

    /// Records what was deployed to `url`; returns whether that changed anything.
    pub fn set_owned(&mut self, url: &str, owned: &Owned) -> bool {
        if self.servers.contains_key(url) && self.owned(url) == *owned {
            return false;
        }
        if owned.is_empty() && !self.servers.contains_key(url) {
            return false;
        }
        let list = |names: &BTreeSet<String>| Value::Array(names.iter().cloned().map(Value::String).collect());
        let value = if !owned.has_events() {
            list(&owned.actions)
        } else {
            let mut lists = Map::new();
            lists.insert("actions".into(), list(&owned.actions));
            lists.insert("topics".into(), list(&owned.topics));
            lists.insert("subscriptions".into(), list(&owned.subscriptions));
            if !owned.schedules.is_empty() {
                lists.insert("schedules".into(), list(&owned.schedules));
            }
            Value::Object(lists)
        };
        self.servers.insert(url.to_string(), value);
        true
    }

    /// Writes `DIR/.sl/deployed.json` (through a temporary file and a rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = path(dir);
        let parent = path.parent().expect("the state file is in .sl/");
        let result = (|| {
            fs::create_dir_all(parent)?;
            let tmp = parent.join(format!(".deployed.json.{}.tmp", std::process::id()));
            let mut text = serde_json::to_string_pretty(&self.servers)?;
            text.push('\n');
            let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(text.as_bytes()));
            match written.and_then(|()| fs::rename(&tmp, &path)) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(e)
                }
            }
        })();
        result.with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn actions(names: &[&str]) -> Owned {
        Owned { actions: set(names), ..Owned::default() }
    }

    #[test]
    fn round_trip_per_server() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut state = State::load(dir).unwrap();
        assert!(state.owned("http://a:1").is_empty());
        assert!(!state.set_owned("http://a:1", &actions(&[])), "nothing to record");
        assert!(state.set_owned("http://a:1", &actions(&["x", "a.b"])));
        assert!(state.set_owned("http://b:2", &actions(&["y"])));
        assert!(!state.set_owned("http://b:2", &actions(&["y"])));
        let events =
            Owned { actions: set(&["s"]), topics: set(&["t"]), subscriptions: set(&["u", "v"]), ..Owned::default() };
        assert!(state.set_owned("http://c:3", &events));
        assert!(!state.set_owned("http://c:3", &events));
        let scheduled = Owned { actions: set(&["r"]), schedules: set(&["nightly"]), ..Owned::default() };
        assert!(state.set_owned("http://d:4", &scheduled));
        state.save(dir).unwrap();

        let text = fs::read_to_string(path(dir)).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "http://a:1": ["a.b", "x"],
                "http://b:2": ["y"],
                "http://c:3": {"actions": ["s"], "topics": ["t"], "subscriptions": ["u", "v"]},
                "http://d:4": {"actions": ["r"], "topics": [], "subscriptions": [], "schedules": ["nightly"]},
            })
        );
        let mut state = State::load(dir).unwrap();
        assert_eq!(state.owned("http://a:1"), actions(&["a.b", "x"]));
        assert_eq!(state.owned("http://b:2"), actions(&["y"]));
        assert_eq!(state.owned("http://c:3"), events);
        assert_eq!(state.owned("http://d:4"), scheduled);
        // Without topics and subscriptions, the list of actions again.
        assert!(state.set_owned("http://c:3", &actions(&["s"])));
        assert_eq!(state.servers["http://c:3"], serde_json::json!(["s"]));
        assert!(fs::read_dir(dir.join(".sl")).unwrap().count() == 1, "no temporary file left");
    }

    #[test]
    fn a_broken_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join(".sl")).unwrap();
        fs::write(path(tmp.path()), "[1, 2]").unwrap();
        let e = State::load(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("deployed.json is not a JSON object"), "{e}");
    }
}
