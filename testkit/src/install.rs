//! Installs nx-27017 into a virtualenv under the workspace's target
//! directory, once, whatever the number of test binaries asking at once.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use crate::process::alive;

/// The nx-27017 release the tests use (pinned here).
pub const NX_VERSION: &str = "0.8.1";

/// How long a process waits for another one's install.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// A lock file without a PID in it is being written; after this long its
/// writer is taken to have died between creating and writing it.
const EMPTY_LOCK_AGE: Duration = Duration::from_secs(30);

/// The installed nx-27017.
#[derive(Debug, Clone)]
pub struct NxInstall {
    /// The virtualenv's Python interpreter.
    pub python: PathBuf,
    /// The `nx-27017` console script (a Python file).
    pub script: PathBuf,
}

/// The workspace's target directory: `$CARGO_TARGET_DIR` (relative to the
/// workspace root when relative) or `target/` beside this crate.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => workspace.join(dir), // `join` keeps an absolute path as it is
        None => workspace.join("target"),
    }
}

/// nx-27017 [`NX_VERSION`] in `target/nx-venv`, installed on first use:
/// `python3 -m venv target/nx-venv` then `pip install nx-27017==0.8.1`.
///
/// The install runs under the lock file `target/nx-venv.lock` (test binaries
/// run in parallel) and ends by writing `target/nx-venv/.installed-0.8.1`.
/// Panics with pip's output when the install fails.
pub fn nx_27017() -> NxInstall {
    let target = target_dir();
    let venv = target.join("nx-venv");
    let install = NxInstall { python: venv.join("bin").join("python"), script: venv.join("bin").join("nx-27017") };
    let marker = venv.join(format!(".installed-{NX_VERSION}"));
    let done = || marker.exists() && install.script.exists() && install.python.exists();
    if done() {
        return install;
    }
    if let Err(err) = fs::create_dir_all(&target) {
        panic!("cannot create {}: {err}", target.display());
    }
    let _lock = Lock::acquire(&target.join("nx-venv.lock"));
    if done() {
        return install; // another process installed it while we waited
    }
    eprintln!("sl-testkit: installing nx-27017 {NX_VERSION} into {}", venv.display());
    // --clear: a half-done install (no marker) is started again from scratch.
    let python3 = std::env::var_os("PYTHON3").unwrap_or_else(|| "python3".into());
    run(
        Command::new(&python3).args(["-m", "venv", "--clear"]).arg(&venv),
        "create the virtualenv (python3 -m venv; on Debian `apt-get install python3-venv`)",
    );
    run(
        Command::new(&install.python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
            .arg(format!("nx-27017=={NX_VERSION}")),
        "pip install nx-27017",
    );
    if !install.script.exists() {
        panic!("pip installed nx-27017 {NX_VERSION} but {} is missing", install.script.display());
    }
    if let Err(err) = fs::write(&marker, format!("nx-27017=={NX_VERSION}\n")) {
        panic!("cannot write {}: {err}", marker.display());
    }
    install
}

/// Runs an install step; panics with its output when it fails.
fn run(command: &mut Command, what: &str) {
    let output = match command.output() {
        Ok(output) => output,
        Err(err) => panic!("cannot {what}: cannot run {:?}: {err}", command.get_program()),
    };
    if !output.status.success() {
        panic!(
            "cannot {what}: {:?} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            command,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// An exclusive lock file holding its owner's PID, removed on drop. A lock
/// whose owner died is taken over.
struct Lock(PathBuf);

impl Lock {
    fn acquire(path: &Path) -> Lock {
        let start = Instant::now();
        let mut waiting = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    if let Err(err) = writeln!(file, "{}", std::process::id()) {
                        let _ = fs::remove_file(path);
                        panic!("cannot write {}: {err}", path.display());
                    }
                    return Lock(path.to_owned());
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    if let Some(content) = stale(path) {
                        // Remove it only if it still is the stale one.
                        if fs::read_to_string(path).ok().as_deref() == Some(content.as_str()) {
                            let _ = fs::remove_file(path);
                        }
                        continue;
                    }
                    if start.elapsed() > LOCK_WAIT {
                        panic!("waited {LOCK_WAIT:?} for {} (another nx-27017 install)", path.display());
                    }
                    if !waiting {
                        eprintln!("sl-testkit: waiting for another process to install nx-27017 ({})", path.display());
                        waiting = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => panic!("cannot create {}: {err}", path.display()),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The content of a lock file whose owner is gone, or `None` if it is held
/// (or vanished meanwhile).
fn stale(path: &Path) -> Option<String> {
    let content = fs::read_to_string(path).ok()?;
    match content.trim().parse::<u32>() {
        Ok(pid) => (!alive(pid)).then_some(content),
        Err(_) => {
            let age = fs::metadata(path).and_then(|m| m.modified()).ok()?;
            let age = SystemTime::now().duration_since(age).unwrap_or_default();
            (age > EMPTY_LOCK_AGE).then_some(content)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sl-testkit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_target_dir_is_beside_the_crate_by_default() {
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(target_dir(), Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("target"));
        }
    }

    #[test]
    fn a_lock_is_exclusive_and_removed_on_drop() {
        let dir = scratch("lock");
        let path = dir.join("x.lock");
        let lock = Lock::acquire(&path);
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
        assert_eq!(stale(&path), None, "held by this live process");
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || {
                let start = Instant::now();
                let _second = Lock::acquire(&path);
                start.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        drop(lock);
        assert!(waiter.join().unwrap() >= Duration::from_millis(400), "the second lock waited for the first");
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_is_taken_over() {
        let dir = scratch("stale");
        let path = dir.join("x.lock");
        fs::write(&path, "4194321\n").unwrap();
        assert_eq!(stale(&path).as_deref(), Some("4194321\n"));
        let start = Instant::now();
        drop(Lock::acquire(&path));
        assert!(start.elapsed() < Duration::from_secs(1));
        // An empty lock file is being written, unless it is old.
        fs::write(&path, "").unwrap();
        assert_eq!(stale(&path), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
