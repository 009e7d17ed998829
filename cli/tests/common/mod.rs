//! The harness of the end-to-end app tests: the real `slserver` (with its
//! routes listener on a free port) and the real `slcli`, on 127.0.0.1 with
//! a temporary data directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SLCLI: &str = env!("CARGO_BIN_EXE_slcli");

pub fn slserver_bin() -> PathBuf {
    let p = Path::new(SLCLI).with_file_name(format!("slserver{}", std::env::consts::EXE_SUFFIX));
    assert!(p.exists(), "{} is missing: build the workspace first (./scripts/test does)", p.display());
    p
}

/// Collects the lines a child writes, for a test to wait on.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<String>>);

impl Lines {
    pub fn follow(&self, stream: impl Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.0.lock().unwrap().push_str(&(line + "\n"));
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the text contains `needle` (after `from` bytes); panics after `within`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, from: usize, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if text.get(from..).is_some_and(|t| t.contains(needle)) {
                return text;
            }
            assert!(start.elapsed() < within, "no {needle:?} within {within:?} in:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    /// The address of the routes listener, `http://127.0.0.1:PORT`.
    pub routes_url: String,
    _tmp: tempfile::TempDir,
}

impl Server {
    /// A server on SQLite in a fresh temporary directory, its API and its
    /// routes listener on free ports.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// [`start`](Self::start) with `extra` appended to the config.
    pub fn start_with(extra: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let config = format!("Sqlite {{ path = \"data/sl.db\" }}\nLogger {{ level = \"warn\" }}\n{extra}");
        std::fs::write(dir.join("config.lua"), config).unwrap();
        let mut child = Command::new(slserver_bin())
            .arg("--config")
            .arg(dir.join("config.lua"))
            .args(["--listen", "127.0.0.1:0", "--routes-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Lines::default().follow(child.stderr.take().unwrap());
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("slserver listening on ").expect("address line").to_string();
        line.clear();
        out.read_line(&mut line).unwrap();
        let routes_url = line.trim().strip_prefix("slserver serving routes on ").expect("routes line").to_string();
        std::thread::spawn(move || {
            let _ = out.read_to_string(&mut String::new());
        });
        Self { child, url, routes_url, _tmp: tmp }
    }

    /// `slcli ARGS` against this server, in `cwd`.
    pub fn slcli(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command(cwd, args).output().unwrap()
    }

    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(SLCLI);
        cmd.args(args)
            .current_dir(cwd)
            .env("SLCLI_URL", &self.url)
            .env("SLCLI_CONFIG", cwd.join("no-such-slcli-config.json"))
            .env_remove("SLCLI_TOKEN");
        for proxy in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
            cmd.env_remove(proxy);
        }
        cmd
    }

    /// `slcli ARGS`, which must succeed; its stdout.
    #[track_caller]
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let o = self.slcli(cwd, args);
        assert!(o.status.success(), "slcli {args:?} failed ({}):\n{}{}", o.status, stdout(&o), stderr(&o));
        stdout(&o)
    }

    /// The result of running `action` (blocking), as slcli prints it.
    pub fn run(&self, cwd: &Path, action: &str) -> String {
        self.ok(cwd, &["run", action, "-b"]).trim().to_string()
    }

    /// The names of the actions on the server.
    pub fn action_names(&self, cwd: &Path) -> Vec<String> {
        let list: serde_json::Value = serde_json::from_str(&self.ok(cwd, &["--json", "list"])).unwrap();
        list.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A response read off a `Connection: close` request: status, headers
/// (lower-case names), body.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request to `base` (`http://HOST:PORT`), as `curl` would send it.
pub fn request(base: &str, method: &str, target: &str, content_type: Option<&str>, body: &str) -> Resp {
    let addr = base.strip_prefix("http://").unwrap_or(base);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let ct = content_type.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp { status, headers, body: body.to_string() }
}

/// Asserts `o` exited with `code`, showing its output otherwise.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// Writes `text` to `dir/rel`, making the directories on the way.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `slcli ARGS`, which must fail with exit status 1 and say `needle` on stderr.
#[track_caller]
pub fn fails(server: &Server, cwd: &Path, args: &[&str], needle: &str) -> Output {
    let o = server.slcli(cwd, args);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains(needle), "{args:?}: no {needle:?} in:\n{}", stderr(&o));
    o
}

/// `slcli --json ARGS`, parsed.
#[track_caller]
pub fn json_of(server: &Server, cwd: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = server.ok(cwd, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Waits until `ok` holds; panics with `what` after 20 s.
#[track_caller]
pub fn wait_until(what: impl Fn() -> String, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "gave up waiting: {}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}
