//! `slcli dev DIR`: deploy, then watch the directory and deploy again on
//! every change.
//!
//! Watching is polling: every 200 ms the action files and `sl.toml` are
//! listed with their modification time and size, and a file whose time or
//! size moved is read and hashed; a deploy follows when a file appeared,
//! disappeared or has new content. No file-system notification API is
//! needed, so it works the same everywhere (network file systems and
//! containers included).

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fs;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::app::{self, Kind};
use crate::client::{Client, Method};
use crate::deploy;
use crate::manifest;
use crate::output::{visible, Lines};

/// The long help of `slcli dev`.
pub const LONG_ABOUT: &str = "\
Deploy an app directory, then watch it and deploy again whenever a file changes.

DIR is laid out as for `slcli deploy` (see `slcli help deploy`): every *.lua file is an \
action, sl.toml gives limits and routes. After the first deploy, slcli polls DIR every 200 ms \
(modification time, size and a hash of the content of each action file and of sl.toml) and \
deploys what changed within a second of a save, printing the same lines as `slcli deploy`, \
each after the local time:

    [14:02:11] updated users.get
    [14:02:11] 0 created, 1 updated, 0 deleted, 0 routes added, 0 routes deleted

A file with a Lua error is reported with its path and line \
(`[14:02:15] users/get.lua:3: '=' expected near 'x'`) and slcli keeps watching; the server \
keeps running the last version that compiled. If the server cannot be reached meanwhile, \
slcli says so and tries again every 2 seconds.

Runs until interrupted (Ctrl-C). Exits with status 1 only when watching is impossible: \
DIR is gone, or the server cannot be reached at start.";

/// How often the directory is looked at.
const POLL: Duration = Duration::from_millis(200);

/// How long to wait before trying a deploy that failed (server unreachable) again.
const RETRY: Duration = Duration::from_secs(2);

/// The most time given to a burst of writes (an editor's save) to settle.
const SETTLE: Duration = Duration::from_millis(500);

/// What is known of one watched file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    modified: Option<SystemTime>,
    size: u64,
    hash: u64,
}

/// The watched files of a directory, by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Snapshot {
    files: BTreeMap<PathBuf, Seen>,
}

impl Snapshot {
    /// Looks at the action files and the manifest of `dir`. The content of
    /// a file whose time and size are those in `before` is not read again.
    /// A symbolic link that leads out of `dir` is not read at all: it is
    /// seen by its target's path, so that adding, changing or removing it
    /// starts a deploy, which refuses it.
    fn take(dir: &Path, before: &Snapshot) -> Result<Self> {
        let listing = app::listing(dir, Kind::Actions)?;
        let mut paths: Vec<(PathBuf, PathBuf)> = listing.files.into_iter().map(|f| (f.rel, f.path)).collect();
        let mut outside: Vec<(PathBuf, PathBuf)> = listing.outside.into_iter().map(|o| (o.rel, o.target)).collect();
        match app::outside_target(dir, manifest::FILE) {
            Some(target) => outside.push((PathBuf::from(manifest::FILE), target)),
            None => paths.push((PathBuf::from(manifest::FILE), dir.join(manifest::FILE))),
        }
        let mut files = BTreeMap::new();
        for (rel, target) in outside {
            files.insert(rel, Seen { modified: None, size: 0, hash: hash(target.as_os_str().as_encoded_bytes()) });
        }
        for (rel, path) in paths {
            // A file that vanished or cannot be read now is looked at again next time.
            let Ok(meta) = fs::metadata(&path) else { continue };
            let (modified, size) = (meta.modified().ok(), meta.len());
            let hash = match before.files.get(&rel) {
                Some(seen) if seen.modified == modified && seen.size == size && modified.is_some() => seen.hash,
                _ => match fs::read(&path) {
                    Ok(bytes) => hash(&bytes),
                    Err(_) => continue,
                },
            };
            files.insert(rel, Seen { modified, size, hash });
        }
        Ok(Self { files })
    }

    /// Whether the same files have the same content.
    fn same_content(&self, other: &Snapshot) -> bool {
        self.files.len() == other.files.len()
            && self.files.iter().zip(&other.files).all(|((p, a), (q, b))| p == q && a.hash == b.hash)
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// The local time of day, `HH:MM:SS` (UTC where the local time zone is unknown).
fn clock() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    #[cfg(unix)]
    {
        let now = secs as libc::time_t;
        // SAFETY: `tm` is a plain C struct of integers (and a pointer that
        // may be null), for which all zero bytes is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r is the
        // thread-safe variant that writes only into `tm`.
        if !unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
            return format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
        }
    }
    let rest = secs % 86_400;
    format!("{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

fn stamp() -> String {
    format!("[{}] ", clock())
}

/// Deploys once; on a failure that may pass (the server), returns when to try again.
fn deploy_now(client: &Client, url: &str, dir: &Path) -> Option<Instant> {
    let local = match deploy::scan(dir) {
        Ok(local) => local,
        Err(e) => {
            // A problem in the files: wait for the next change.
            eprintln!("{}error: {}", stamp(), visible(&format!("{e:#}"), Lines::Keep));
            return None;
        }
    };
    match deploy::sync(client, url, dir, &local, &mut |event| deploy::print_event(&stamp(), event)) {
        Ok(outcome) => {
            println!("{}{outcome}", stamp());
            None
        }
        Err(e) => {
            let e = visible(&format!("{e:#}"), Lines::Keep).into_owned();
            eprintln!("{}error: {e} (trying again in {} s)", stamp(), RETRY.as_secs());
            Some(Instant::now() + RETRY)
        }
    }
}

/// `slcli dev DIR`: runs until killed, or returns the error that stopped it.
pub fn command(client: &Client, url: &str, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    client.call(Method::Get, "/ping", None).context("slcli dev needs the server at start")?;
    let mut snapshot = Snapshot::take(dir, &Snapshot::default())?;
    let mut retry_at = deploy_now(client, url, dir);
    println!("{}watching {} for changes (Ctrl-C stops)", stamp(), dir.display());
    loop {
        sleep(POLL);
        if !dir.is_dir() {
            bail!("{} is gone; stopped watching", dir.display());
        }
        let mut now = Snapshot::take(dir, &snapshot)?;
        if now.same_content(&snapshot) {
            snapshot = now;
            if retry_at.is_some_and(|at| Instant::now() >= at) {
                retry_at = deploy_now(client, url, dir);
            }
            continue;
        }
        // Let a save made of several writes finish.
        let start = Instant::now();
        loop {
            sleep(Duration::from_millis(50));
            let again = Snapshot::take(dir, &now)?;
            let settled = again.same_content(&now);
            now = again;
            if settled || start.elapsed() >= SETTLE {
                break;
            }
        }
        snapshot = now;
        retry_at = deploy_now(client, url, dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_content_changes_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("a.lua"), "function main() return 1 end").unwrap();
        fs::write(dir.join("a_test.lua"), "").unwrap();
        fs::write(dir.join("notes.txt"), "").unwrap();
        let first = Snapshot::take(dir, &Snapshot::default()).unwrap();
        let names: Vec<&Path> = first.files.keys().map(PathBuf::as_path).collect();
        assert_eq!(names, [Path::new("a.lua")]);

        // Rewriting the same bytes is no change; other files do not count.
        fs::write(dir.join("a.lua"), "function main() return 1 end").unwrap();
        fs::write(dir.join("notes.txt"), "x").unwrap();
        fs::write(dir.join("a_test.lua"), "x").unwrap();
        assert!(Snapshot::take(dir, &first).unwrap().same_content(&first));

        fs::write(dir.join("a.lua"), "function main() return 2 end").unwrap();
        let second = Snapshot::take(dir, &first).unwrap();
        assert!(!second.same_content(&first));

        fs::write(dir.join("sl.toml"), "").unwrap();
        let third = Snapshot::take(dir, &second).unwrap();
        assert!(!third.same_content(&second));
        fs::remove_file(dir.join("a.lua")).unwrap();
        assert!(!Snapshot::take(dir, &third).unwrap().same_content(&third));
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_directory_are_seen_but_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("a.lua"), "function main() return 1 end").unwrap();
        fs::write(tmp.path().join("secret"), "one").unwrap();
        fs::write(tmp.path().join("other"), "two").unwrap();
        let first = Snapshot::take(&dir, &Snapshot::default()).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), dir.join("key.lua")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), dir.join("sl.toml")).unwrap();
        let second = Snapshot::take(&dir, &first).unwrap();
        assert!(!second.same_content(&first), "a new link is a change");
        // Its target's content is never read: changing it is no change.
        fs::write(tmp.path().join("secret"), "changed").unwrap();
        assert!(Snapshot::take(&dir, &second).unwrap().same_content(&second));
        // Pointing it elsewhere is.
        fs::remove_file(dir.join("key.lua")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("other"), dir.join("key.lua")).unwrap();
        assert!(!Snapshot::take(&dir, &second).unwrap().same_content(&second));
    }

    #[test]
    fn the_clock_reads_like_a_clock() {
        let c = clock();
        assert_eq!(c.len(), 8, "{c}");
        assert_eq!((&c[2..3], &c[5..6]), (":", ":"));
        assert!(c.chars().filter(|ch| ch.is_ascii_digit()).count() == 6, "{c}");
    }
}
