//! The manifest of an app directory, `sl.toml`: per-action limits and the
//! HTTP routes to serve.
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
//! ```
//!
//! Unknown keys are errors, and so are limits or routes that name an action
//! with no file in the directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    actions: BTreeMap<String, Limits>,
    #[serde(default)]
    routes: Vec<RouteEntry>,
}

/// A checked manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Limits by action name; actions not listed get the server defaults.
    pub limits: BTreeMap<String, Limits>,
    /// The routes, normalized (method in capitals, host in lower case, "" for any host).
    pub routes: Vec<Route>,
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
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(Self { limits: raw.actions, routes })
    }
}

/// The file that would become action `name`, for messages: `a.b` is `a/b.lua` (or `a.b.lua`).
fn expected_file(name: &str) -> String {
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
