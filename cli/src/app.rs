//! An app directory on disk: which files become which actions.
//!
//! Every `*.lua` file under the directory, at any depth, is an action named
//! after its path relative to the directory, without `.lua` and with `/`
//! replaced by `.`: `users/get.lua` is `users.get`. Hidden files and
//! directories (a name starting with `.`, such as `.sl/` and `.git/`) are
//! skipped, and so are test files (`*_test.lua`), which `slcli test` runs,
//! and the file `config.lua` at the top of the directory, which is taken to
//! be a server configuration (`slserver --config DIR/config.lua`, as
//! `examples/items` has), never an action: an app keeps the configuration
//! of the server it runs on beside its actions. A `config.lua` deeper down
//! (`admin/config.lua`, the action `admin.config`) is an action like any
//! other.
//!
//! Symbolic links to files are followed if the file they lead to (all links
//! resolved) is inside the directory; a link to a file outside it is an
//! error naming the link and its target, before anything is sent, so that
//! deploying or testing a directory never uploads a file from elsewhere
//! (`~/.ssh/id_rsa` linked as `key.lua`, say). Links to directories are not
//! followed, and neither are dangling links.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The suffix of test files.
pub const TEST_SUFFIX: &str = "_test.lua";

/// The file at the top of an app directory that is a server configuration,
/// not an action (see the module docs).
pub const SERVER_CONFIG: &str = "config.lua";

/// The longest action name the server takes.
pub const MAX_NAME: usize = 128;

/// Whether `name` is a valid action name: 1 to 128 of `[A-Za-z0-9._-]`,
/// but not `.` or `..` (the server's rule).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A path relative to the app directory, with `/` separators whatever the
/// platform: how files are named in messages.
pub fn display_rel(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The action name of the Lua file at `rel` (relative to the app
/// directory): `users/get.lua` is `users.get`. An error names the file
/// when the name would not be valid.
pub fn action_name(rel: &Path) -> Result<String> {
    let shown = display_rel(rel);
    let Some(stem) = shown.strip_suffix(".lua") else {
        bail!("{shown}: not a .lua file");
    };
    let name = stem.replace('/', ".");
    if !valid_name(&name) {
        let why = if name.is_empty() {
            "it is empty".to_string()
        } else if name.len() > MAX_NAME {
            format!("it is {} characters long, the most is {MAX_NAME}", name.len())
        } else if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c))) {
            format!("'{c}' is not allowed")
        } else {
            "it is '.' or '..'".to_string()
        };
        bail!(
            "{shown}: would become the action name '{name}', which is not valid ({why}); action names are \
             1 to 128 letters, digits, '-', '_' or '.' (a '/' in the path becomes '.'), so rename the file"
        );
    }
    Ok(name)
}

/// One Lua file of an app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuaFile {
    /// The path relative to the app directory.
    pub rel: PathBuf,
    /// Where to read it: its full path, or for a symbolic link the file it
    /// leads to (inside the directory).
    pub path: PathBuf,
}

/// A symbolic link that leads out of the app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// The link's path relative to the app directory.
    pub rel: PathBuf,
    /// The file it leads to, all links resolved.
    pub target: PathBuf,
}

impl Outside {
    /// Why the link is refused, for the directory `dir`.
    pub fn message(&self, dir: &Path) -> String {
        outside_message(&display_rel(&self.rel), &self.target, dir)
    }
}

/// The refusal of the link `shown` of directory `dir`, which leads to `target`.
fn outside_message(shown: &str, target: &Path, dir: &Path) -> String {
    format!(
        "{shown} is a symbolic link to {}, outside the app directory {}; slcli reads only files inside \
         the directory: copy the file in, or link to a file inside it",
        target.display(),
        dir.display()
    )
}

/// Where the symbolic link `path` leads, all links resolved: `Ok(Some)`
/// for a file inside `root` (the app directory's canonical path), `Ok(None)`
/// for a dangling link or a link to something else than a file (neither is
/// read), `Err` with the file for a file outside `root`.
fn follow_link(root: &Path, path: &Path) -> std::result::Result<Option<PathBuf>, PathBuf> {
    let Ok(target) = fs::canonicalize(path) else { return Ok(None) };
    if !fs::metadata(&target).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    if target.starts_with(root) {
        Ok(Some(target))
    } else {
        Err(target)
    }
}

/// The file outside `dir` that `dir/name` (a file slcli reads, such as
/// `sl.toml`) leads to, if it is a symbolic link that leads out.
pub fn outside_target(dir: &Path, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    if !fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return None;
    }
    let root = fs::canonicalize(dir).ok()?;
    follow_link(&root, &path).err()
}

/// `dir/name` must not be a symbolic link out of `dir` (see [`outside_target`]).
pub fn check_inside(dir: &Path, name: &str) -> Result<()> {
    match outside_target(dir, name) {
        Some(target) => bail!("{}", outside_message(name, &target, dir)),
        None => Ok(()),
    }
}

impl LuaFile {
    /// The relative path as shown in messages (`users/get.lua`).
    pub fn shown(&self) -> String {
        display_rel(&self.rel)
    }
}

/// Which Lua files to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Action files: `*.lua` but not `*_test.lua`.
    Actions,
    /// Test files: `*_test.lua`.
    Tests,
}

/// The Lua files of `kind` under a directory, and the links among them
/// that lead out of it, both sorted by relative path.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<LuaFile>,
    pub outside: Vec<Outside>,
}

/// Lists the Lua files of `kind` under `dir` (see [`Listing`]). Links that
/// lead out are listed apart, their targets not read.
pub fn listing(dir: &Path, kind: Kind) -> Result<Listing> {
    let meta = fs::metadata(dir).with_context(|| format!("cannot read directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let root = fs::canonicalize(dir).with_context(|| format!("cannot read directory {}", dir.display()))?;
    let mut listing = Listing::default();
    walk(dir, &root, Path::new(""), kind, &mut listing)?;
    listing.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    listing.outside.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(listing)
}

/// The Lua files of `kind` under `dir`, sorted by relative path; a link
/// that leads out of `dir` is an error (all of them, named with their targets).
pub fn lua_files(dir: &Path, kind: Kind) -> Result<Vec<LuaFile>> {
    let listing = listing(dir, kind)?;
    if !listing.outside.is_empty() {
        let messages: Vec<String> = listing.outside.iter().map(|o| o.message(dir)).collect();
        bail!("{}", messages.join("\n"));
    }
    Ok(listing.files)
}

/// Lists the directory `rel` of the app directory `top` (whose canonical
/// path is `root`) into `listing`, and its subdirectories.
fn walk(top: &Path, root: &Path, rel: &Path, kind: Kind, listing: &mut Listing) -> Result<()> {
    let dir = top.join(rel);
    let entries = fs::read_dir(&dir).with_context(|| format!("cannot read directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read directory {}", dir.display()))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str.starts_with('.') {
            continue;
        }
        let rel_child = rel.join(&name);
        let file_type = entry.file_type().with_context(|| format!("cannot read {}", entry.path().display()))?;
        if file_type.is_dir() {
            walk(top, root, &rel_child, kind, listing)?;
            continue;
        }
        let is_test = name_str.ends_with(TEST_SUFFIX);
        if !name_str.ends_with(".lua") || is_test != (kind == Kind::Tests) {
            continue;
        }
        if rel.as_os_str().is_empty() && name_str == SERVER_CONFIG {
            continue;
        }
        if !file_type.is_symlink() {
            if file_type.is_file() {
                listing.files.push(LuaFile { path: entry.path(), rel: rel_child });
            }
            continue;
        }
        match follow_link(root, &entry.path()) {
            Ok(Some(target)) => listing.files.push(LuaFile { path: target, rel: rel_child }),
            Ok(None) => {}
            Err(target) => listing.outside.push(Outside { rel: rel_child, target }),
        }
    }
    Ok(())
}

/// The action files of `dir` by action name. Invalid names and two files
/// with one name (`a/b.lua` and `a.b.lua`) are errors naming the files,
/// all of them at once.
pub fn actions(dir: &Path) -> Result<BTreeMap<String, LuaFile>> {
    let mut by_name: BTreeMap<String, LuaFile> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in lua_files(dir, Kind::Actions)? {
        match action_name(&file.rel) {
            Err(e) => problems.push(e.to_string()),
            Ok(name) => {
                if let Some(other) = by_name.get(&name) {
                    problems.push(format!(
                        "{} and {} would both become the action '{name}'; rename one",
                        other.shown(),
                        file.shown()
                    ));
                } else {
                    by_name.insert(name, file);
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(by_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn paths_become_names() {
        assert_eq!(action_name(Path::new("hello.lua")).unwrap(), "hello");
        assert_eq!(action_name(Path::new("users/get.lua")).unwrap(), "users.get");
        assert_eq!(action_name(Path::new("a/b/c-d_e.v2.lua")).unwrap(), "a.b.c-d_e.v2");
        assert_eq!(action_name(&Path::new("x").join("y").join("z.lua")).unwrap(), "x.y.z");
    }

    #[test]
    fn invalid_names_name_the_file() {
        for (rel, why) in [
            ("hello world.lua", "' ' is not allowed"),
            ("users/über.lua", "'ü' is not allowed"),
            ("a+b.lua", "'+' is not allowed"),
            ("..lua", "'.' or '..'"),
        ] {
            let e = action_name(Path::new(rel)).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{rel}: would become the action name")), "{e}");
            assert!(e.contains(why), "{rel}: {e}");
        }
        let long = format!("{}/{}.lua", "d".repeat(64), "f".repeat(64));
        let e = action_name(Path::new(&long)).unwrap_err().to_string();
        assert!(e.contains("129 characters long"), "{e}");
        let ok = format!("{}/{}.lua", "d".repeat(64), "f".repeat(63));
        assert_eq!(action_name(Path::new(&ok)).unwrap().len(), 128);
    }

    #[test]
    fn the_scan_skips_hidden_and_test_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, "hello.lua", "");
        write(dir, "users/get.lua", "");
        write(dir, "users/deep/er.lua", "");
        write(dir, "users/get_test.lua", "");
        write(dir, "items_test.lua", "");
        write(dir, ".hidden.lua", "");
        write(dir, ".sl/deployed.lua", "");
        write(dir, ".git/x.lua", "");
        write(dir, "notes.txt", "");
        write(dir, "README.lua.md", "");
        // The server's configuration at the top is not an action; deeper down it is.
        write(dir, "config.lua", "Server { port = 8080 }");
        write(dir, "users/config.lua", "");
        let actions = actions(dir).unwrap();
        let names: Vec<&str> = actions.keys().map(String::as_str).collect();
        assert_eq!(names, ["hello", "users.config", "users.deep.er", "users.get"]);
        assert_eq!(actions["users.deep.er"].shown(), "users/deep/er.lua");
        assert_eq!(actions["users.get"].path, dir.join("users/get.lua"));

        let tests: Vec<String> = lua_files(dir, Kind::Tests).unwrap().iter().map(LuaFile::shown).collect();
        assert_eq!(tests, ["items_test.lua", "users/get_test.lua"]);
    }

    #[test]
    fn clashing_and_invalid_files_are_all_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, "a/b.lua", "");
        write(dir, "a.b.lua", "");
        write(dir, "bad name.lua", "");
        let e = actions(dir).unwrap_err().to_string();
        assert!(e.contains("a/b.lua and a.b.lua would both become the action 'a.b'"), "{e}");
        assert!(e.contains("bad name.lua: would become"), "{e}");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let e = format!("{:#}", lua_files(Path::new("/no/such/dir"), Kind::Actions).unwrap_err());
        assert!(e.starts_with("cannot read directory /no/such/dir"), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "f.lua", "");
        let e = lua_files(&tmp.path().join("f.lua"), Kind::Actions).unwrap_err().to_string();
        assert!(e.ends_with("is not a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn links_to_files_count_and_links_to_directories_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        write(&dir, "real.lua", "");
        write(tmp.path(), "outside/x.lua", "");
        std::os::unix::fs::symlink(dir.join("real.lua"), dir.join("alias.lua")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), dir.join("linked")).unwrap();
        std::os::unix::fs::symlink(dir.join("gone.lua"), dir.join("dangling.lua")).unwrap();
        let names: Vec<String> = actions(&dir).unwrap().into_keys().collect();
        assert_eq!(names, ["alias", "real"]);
        // A link inside is read from its target.
        let alias = &actions(&dir).unwrap()["alias"];
        assert_eq!(alias.path, fs::canonicalize(dir.join("real.lua")).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_directory_are_refused_with_their_targets() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        write(&dir, "ok.lua", "");
        write(&dir, "sub/inner.lua", "");
        write(tmp.path(), "secret.txt", "key");
        write(tmp.path(), "elsewhere/t_test.lua", "");
        let secret = fs::canonicalize(tmp.path().join("secret.txt")).unwrap();
        symlink(&secret, dir.join("key.lua")).unwrap();
        // Relative, through another directory, and back in: still outside once resolved.
        symlink("../../secret.txt", dir.join("sub/deep.lua")).unwrap();
        symlink("../../app/ok.lua", dir.join("sub/back.lua")).unwrap();
        symlink(tmp.path().join("elsewhere/t_test.lua"), dir.join("t_test.lua")).unwrap();
        // Names that are not read are not looked at.
        symlink(&secret, dir.join("notes.txt")).unwrap();
        symlink(&secret, dir.join(".hidden.lua")).unwrap();

        let listing = listing(&dir, Kind::Actions).unwrap();
        let files: Vec<String> = listing.files.iter().map(LuaFile::shown).collect();
        assert_eq!(files, ["ok.lua", "sub/back.lua", "sub/inner.lua"]);
        let outside: Vec<(String, PathBuf)> =
            listing.outside.iter().map(|o| (display_rel(&o.rel), o.target.clone())).collect();
        assert_eq!(outside, [("key.lua".to_string(), secret.clone()), ("sub/deep.lua".to_string(), secret.clone())]);

        let e = actions(&dir).unwrap_err().to_string();
        let expected = format!(
            "key.lua is a symbolic link to {}, outside the app directory {}; slcli reads only files inside the \
             directory: copy the file in, or link to a file inside it",
            secret.display(),
            dir.display()
        );
        assert_eq!(e.lines().next(), Some(expected.as_str()), "{e}");
        assert!(e.lines().nth(1).is_some_and(|l| l.starts_with("sub/deep.lua is a symbolic link to")), "{e}");
        let e = lua_files(&dir, Kind::Tests).unwrap_err().to_string();
        assert!(e.starts_with("t_test.lua is a symbolic link to"), "{e}");

        symlink(&secret, dir.join("sl.toml")).unwrap();
        assert_eq!(outside_target(&dir, "sl.toml"), Some(secret));
        assert!(check_inside(&dir, "sl.toml").unwrap_err().to_string().starts_with("sl.toml is a symbolic link to"));
        assert_eq!(outside_target(&dir, "ok.lua"), None);
        assert_eq!(outside_target(&dir, "missing"), None);
    }
}
