//! What was deployed from an app directory before: `DIR/.sl/deployed.json`.
//!
//! A JSON object mapping each server URL to the sorted names of the actions
//! that exist there because of this directory:
//!
//! ```json
//! { "http://127.0.0.1:8080": ["hello", "users.get"] }
//! ```
//!
//! `slcli deploy` and `slcli dev` read it to know which actions (and routes
//! to them) they may delete when their file is gone, and write it after
//! each deploy. It is local to a checkout: add `.sl/` to `.gitignore`.
//! Deleting the file only means that actions whose files were removed
//! before are no longer cleaned up.

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
                "{} is not a JSON object of server URLs to action names; fix or delete it \
                 (deleting it only stops the cleanup of actions whose files were removed before)",
                path.display()
            ),
        }
    }

    /// The actions deployed to `url` from the directory.
    pub fn actions(&self, url: &str) -> BTreeSet<String> {
        match self.servers.get(url) {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => BTreeSet::new(),
        }
    }

    /// Records the actions deployed to `url`; returns whether that changed anything.
    pub fn set_actions(&mut self, url: &str, names: &BTreeSet<String>) -> bool {
        if self.servers.contains_key(url) && self.actions(url) == *names {
            return false;
        }
        if names.is_empty() && !self.servers.contains_key(url) {
            return false;
        }
        self.servers.insert(url.to_string(), Value::Array(names.iter().cloned().map(Value::String).collect()));
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

    #[test]
    fn round_trip_per_server() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut state = State::load(dir).unwrap();
        assert!(state.actions("http://a:1").is_empty());
        assert!(!state.set_actions("http://a:1", &set(&[])), "nothing to record");
        assert!(state.set_actions("http://a:1", &set(&["x", "a.b"])));
        assert!(state.set_actions("http://b:2", &set(&["y"])));
        assert!(!state.set_actions("http://b:2", &set(&["y"])));
        state.save(dir).unwrap();

        let text = fs::read_to_string(path(dir)).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json, serde_json::json!({"http://a:1": ["a.b", "x"], "http://b:2": ["y"]}));
        let state = State::load(dir).unwrap();
        assert_eq!(state.actions("http://a:1"), set(&["a.b", "x"]));
        assert_eq!(state.actions("http://b:2"), set(&["y"]));
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
