//! A MongoDB for a test: `$MONGODB_URI`, or a private nx-27017.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::install::{nx_27017, target_dir, NxInstall};
use crate::process::{alive, tail};

/// How long nx-27017 may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Attempts at finding a free port that nobody takes before nx-27017 binds it.
const PORT_ATTEMPTS: usize = 5;

/// What nx-27017 prints once its socket listens.
const LISTENING: &str = "Listening on";

/// Bytes of server output shown in a panic message.
const OUTPUT_TAIL: usize = 4_000;

/// Runs the nx-27017 console script with a watchdog thread that ends the
/// server when its parent (the test process) is gone, so that a server held
/// in a `static` or left by a killed test does not outlive the tests. The
/// server keeps the PID of the spawned process, so it is stopped by PID.
const BOOT: &str = r#"
import os, runpy, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

/// Counter for [`Mongo::fresh_db`], unique within this process.
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// Counter for run directories, unique within this process.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// A MongoDB for tests.
///
/// [`Mongo::start`] gives the real MongoDB at `$MONGODB_URI` when that is set
/// and otherwise starts a private nx-27017 on a free `127.0.0.1` port with
/// its data in a fresh directory under `target/nx-run/`. Tests that stop
/// and restart the server use [`Mongo::start_local`], which always starts
/// nx-27017. A local server is killed when the `Mongo` is dropped, and by
/// itself when the test process exits (one kept in a `static` is never
/// dropped).
pub struct Mongo {
    uri: String,
    local: Option<Local>,
}

/// A nx-27017 process of ours.
struct Local {
    install: NxInstall,
    port: u16,
    /// `data/` (one SQLite file per database) and `output.log`.
    dir: PathBuf,
    child: Option<Child>,
}

impl fmt::Debug for Mongo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mongo");
        d.field("uri", &self.uri);
        if let Some(local) = &self.local {
            d.field("dir", &local.dir).field("pid", &local.child.as_ref().map(Child::id));
        }
        d.finish()
    }
}

impl Mongo {
    /// A MongoDB for this test: the real one at `$MONGODB_URI` if that is
    /// set (and not empty), otherwise a fresh nx-27017 (see
    /// [`start_local`](Self::start_local)).
    pub fn start() -> Mongo {
        match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.trim().is_empty() => Mongo { uri: uri.trim().to_owned(), local: None },
            _ => Self::start_local(),
        }
    }

    /// A fresh nx-27017 on a free `127.0.0.1` port, whatever
    /// `$MONGODB_URI` says, installed on first use (see
    /// [`nx_27017`](crate::nx_27017)). Returns once the port accepts
    /// connections; panics with the server's output if it does not within
    /// 20 s.
    pub fn start_local() -> Mongo {
        let install = nx_27017();
        let runs = target_dir().join("nx-run");
        static CLEAN: Once = Once::new();
        CLEAN.call_once(|| remove_stale_runs(&runs));
        let dir = runs.join(format!("{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed)));
        let _ = fs::remove_dir_all(&dir);
        if let Err(err) = fs::create_dir_all(dir.join("data")) {
            panic!("cannot create {}: {err}", dir.display());
        }
        let mut local = Local { install, port: 0, dir, child: None };
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            local.port = free_port();
            match local.spawn() {
                Ok(()) => {
                    return Mongo { uri: format!("mongodb://127.0.0.1:{}", local.port), local: Some(local) };
                }
                // Someone took the port between our probe and the server's bind.
                Err(err) if err.port_taken => last = err.message,
                Err(err) => panic!("{}", err.message),
            }
        }
        panic!("nx-27017 found no free port in {PORT_ATTEMPTS} attempts; last: {last}")
    }

    /// The connection string: `mongodb://127.0.0.1:PORT` for a local
    /// server, else `$MONGODB_URI`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether this is a nx-27017 of ours (which [`stop`](Self::stop) and
    /// [`restart`](Self::restart) can control).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// A database name no other call (in any process) returns:
    /// `sltest_<pid>_<counter>_<nanoseconds>`.
    pub fn fresh_db(&self) -> String {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        format!("sltest_{}_{n}_{nanos}", std::process::id())
    }

    /// Kills the server (by PID), as when MongoDB goes away. Its data stays
    /// for [`restart`](Self::restart). Does nothing if it is stopped.
    ///
    /// Panics for `$MONGODB_URI`, which is not ours to stop: a test that
    /// stops the server uses [`start_local`](Self::start_local).
    pub fn stop(&mut self) {
        self.local_mut("stop").kill();
    }

    /// Starts the server again on the same port with the same data (stopping
    /// it first if it runs). Panics if it does not come up within 20 s, and
    /// for `$MONGODB_URI` (see [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        let local = self.local_mut("restart");
        local.kill();
        let start = Instant::now();
        loop {
            match local.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(err) if err.port_taken && start.elapsed() < START_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(err) => panic!("restart: {}", err.message),
            }
        }
    }

    /// The PID of the local server while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.local.as_ref().and_then(|local| local.child.as_ref()).map(Child::id)
    }

    /// What the local server printed (empty for `$MONGODB_URI`), to put in
    /// a test's failure message.
    pub fn output(&self) -> String {
        self.local.as_ref().map(|local| tail(&local.output_path(), usize::MAX)).unwrap_or_default()
    }

    fn local_mut(&mut self, what: &str) -> &mut Local {
        match &mut self.local {
            Some(local) => local,
            None => panic!(
                "Mongo::{what}: the MongoDB at $MONGODB_URI ({}) is not ours to {what}; \
                 tests that stop or restart MongoDB use Mongo::start_local()",
                self.uri
            ),
        }
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        if let Some(local) = &mut self.local {
            local.kill();
            let _ = fs::remove_dir_all(&local.dir);
        }
    }
}

/// Why a server did not start.
struct SpawnError {
    message: String,
    /// The port was in use: another port (or another try) may work.
    port_taken: bool,
}

impl Local {
    fn output_path(&self) -> PathBuf {
        self.dir.join("output.log")
    }

    /// Starts nx-27017 on `self.port` and waits until it accepts connections.
    fn spawn(&mut self) -> Result<(), SpawnError> {
        let output_path = self.output_path();
        let fail = |message: String| SpawnError { message, port_taken: false };
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&output_path)
            .map_err(|err| fail(format!("cannot open {}: {err}", output_path.display())))?;
        let offset = output.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = output.try_clone().map_err(|err| fail(format!("cannot duplicate a file handle: {err}")))?;
        let data = self.dir.join("data");
        let mut command = Command::new(&self.install.python);
        command
            .arg("-c")
            .arg(BOOT)
            .arg(&self.install.script)
            .arg("--data-dir")
            .arg(&data)
            .args(["--host", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--log-file")
            .arg(self.dir.join("nx.log"))
            .arg("--pid-file")
            .arg(self.dir.join("nx.pid"))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|err| fail(format!("cannot start nx-27017 ({}): {err}", self.install.python.display())))?;
        let child = self.child.insert(child);
        match wait_ready(child, self.port, &output_path, offset) {
            Ok(()) => Ok(()),
            Err(reason) => {
                self.kill();
                let printed = tail(&output_path, OUTPUT_TAIL);
                let port_taken = printed.contains("Address already in use") || printed.contains("errno 98");
                Err(SpawnError {
                    message: format!(
                        "nx-27017 did not start on 127.0.0.1:{}: {reason}\n--- its output ({}) ---\n{printed}",
                        self.port,
                        output_path.display()
                    ),
                    port_taken,
                })
            }
        }
    }

    /// Kills the server by PID (SIGKILL) and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the server has said it listens and the port accepts a TCP
/// connection. The message makes sure that the listener is ours and not a
/// process that took the port meanwhile.
fn wait_ready(child: &mut Child, port: u16, output: &Path, offset: u64) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Err(format!("it exited with {status}")),
            Ok(None) => {}
            Err(err) => return Err(format!("cannot check on it: {err}")),
        }
        if printed_since(output, offset).contains(LISTENING)
            && TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
        {
            return Ok(());
        }
        if start.elapsed() > START_TIMEOUT {
            return Err(format!("it did not accept connections within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// What was appended to `path` after `offset`.
fn printed_since(path: &Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    match TcpListener::bind(("127.0.0.1", 0)).and_then(|listener| listener.local_addr()) {
        Ok(addr) => addr.port(),
        Err(err) => panic!("cannot find a free port on 127.0.0.1: {err}"),
    }
}

/// Removes the run directories of test processes that are gone (their
/// servers ended with them).
fn remove_stale_runs(runs: &Path) {
    let Ok(entries) = fs::read_dir(runs) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|name| name.split('-').next()).and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !alive(pid) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "not ours to stop")]
    fn an_external_mongodb_is_not_stopped() {
        let mut external = Mongo { uri: "mongodb://db.example:27017".into(), local: None };
        assert!(!external.is_local());
        assert_eq!(external.pid(), None);
        assert_eq!(external.output(), "");
        external.stop();
    }

    #[test]
    fn fresh_databases_are_unique_and_valid_names() {
        let external = Mongo { uri: "mongodb://db.example:27017".into(), local: None };
        let names: std::collections::HashSet<String> = (0..1000).map(|_| external.fresh_db()).collect();
        assert_eq!(names.len(), 1000);
        for name in &names {
            assert!(name.starts_with("sltest_") && name.len() < 64, "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{name}");
        }
    }

    #[test]
    fn printed_since_reads_from_the_offset() {
        let dir = std::env::temp_dir().join(format!("sl-testkit-printed-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out");
        fs::write(&file, "old line\nListening on x\n").unwrap();
        assert_eq!(printed_since(&file, 9), "Listening on x\n");
        assert_eq!(printed_since(&dir.join("missing"), 0), "");
        fs::remove_dir_all(&dir).unwrap();
    }
}
