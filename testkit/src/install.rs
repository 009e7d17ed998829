//! Installs pinned Python packages (nx-27017, prometheus-client) into
//! virtualenvs under the workspace's target directory, once each, whatever
//! the number of test binaries asking at once.

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
    let marker = format!(".installed-{NX_VERSION}");
    let venv = pinned_venv("nx-venv", "nx-27017", NX_VERSION, &marker, &|venv| venv.join("bin/nx-27017").exists());
    NxInstall { python: venv.join("bin").join("python"), script: venv.join("bin").join("nx-27017") }
}

/// The `prometheus-client` release whose parser the tests read `/metrics`
/// with (pinned here).
pub const PROMETHEUS_CLIENT_VERSION: &str = "0.26.0";

/// A Python interpreter that can `import prometheus_client` (the reference
/// parser of the Prometheus text format,
/// `prometheus_client.parser.text_string_to_metric_families`), installed
/// on first use into `target/prometheus-venv` the way [`nx_27017`] is, under
/// `target/prometheus-venv.lock`.
pub fn prometheus_client_python() -> PathBuf {
    let marker = format!(".installed-prometheus-client-{PROMETHEUS_CLIENT_VERSION}");
    // The package has no script: the interpreter must import it.
    let imports = |venv: &Path| {
        Command::new(venv.join("bin").join("python"))
            .args(["-c", "import prometheus_client.parser"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    let venv = pinned_venv("prometheus-venv", "prometheus-client", PROMETHEUS_CLIENT_VERSION, &marker, &imports);
    venv.join("bin").join("python")
}

/// The virtualenv `target/<name>` with `package==version` pip-installed,
/// made on first use under the lock `target/<name>.lock` and marked done by
/// the file `marker` in it; `check` says whether the package is there too.
fn pinned_venv(name: &str, package: &str, version: &str, marker: &str, check: &dyn Fn(&Path) -> bool) -> PathBuf {
    let target = target_dir();
    let venv = target.join(name);
    let python = venv.join("bin").join("python");
    let marker = venv.join(marker);
    let done = || marker.exists() && python.exists() && check(&venv);
    if done() {
        return venv;
    }
    if let Err(err) = fs::create_dir_all(&target) {
        panic!("cannot create {}: {err}", target.display());
    }
    let _lock = Lock::acquire(&target.join(format!("{name}.lock")));
    if done() {
        return venv; // another process installed it while we waited
    }
    eprintln!("sl-testkit: installing {package} {version} into {}", venv.display());
    // --clear: a half-done install (no marker) is started again from scratch.
    let python3 = std::env::var_os("PYTHON3").unwrap_or_else(|| "python3".into());
    run(
        Command::new(&python3).args(["-m", "venv", "--clear"]).arg(&venv),
        "create the virtualenv (python3 -m venv; on Debian `apt-get install python3-venv`)",
    );
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
            .arg(format!("{package}=={version}")),
        &format!("pip install {package}"),
    );
    if !check(&venv) {
        panic!("pip installed {package} {version} into {} but it is not there", venv.display());
    }
    if let Err(err) = fs::write(&marker, format!("{package}=={version}\n")) {
        panic!("cannot write {}: {err}", marker.display());
    }
    venv
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
                        panic!("waited {LOCK_WAIT:?} for {} (another install)", path.display());
                    }
                    if !waiting {
                        eprintln!("sl-testkit: waiting for another process's install ({})", path.display());
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
