//! Test harness: starts the real `slserver` on 127.0.0.1 with a free port
//! and a temporary data directory, and talks HTTP to it over raw sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running server process.
pub struct TestServer {
    pub child: Child,
    pub addr: SocketAddr,
    /// The routes listener, when the config has a `Routes` block (it is
    /// moved to a free port).
    pub routes_addr: Option<SocketAddr>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub log: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_slserver");

impl TestServer {
    /// Starts a server with `extra` appended to a config that uses SQLite in
    /// a fresh temporary directory.
    pub fn start(extra: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server whose config and data live in `dir` (kept by the caller).
    pub fn start_in(dir: &Path, extra: &str) -> Self {
        let config = dir.join("config.lua");
        let mut src = String::from("Logger { level = \"info\" }\n");
        if !extra.contains("Sqlite") && !extra.contains("Nulldb") && !extra.contains("Mongodb") {
            src.push_str("Sqlite { path = \"data/sl.db\" }\n");
        }
        src.push_str(extra);
        std::fs::write(&config, src).unwrap();
        Self::spawn(dir, &config)
    }

    fn spawn(dir: &Path, config: &Path) -> Self {
        let with_routes = std::fs::read_to_string(config).unwrap_or_default().contains("Routes {");
        let mut cmd = Command::new(BIN);
        // Run in the server's own directory: settings that are relative to
        // the working directory (a plugin's files) stay out of the source tree.
        cmd.current_dir(dir).arg("--config").arg(config).arg("--listen").arg("127.0.0.1:0");
        if with_routes {
            cmd.arg("--routes-listen").arg("127.0.0.1:0");
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start slserver");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("slserver listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; log: {}", log.lock().unwrap()))
            .parse()
            .unwrap();
        let routes_addr = with_routes.then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix("slserver serving routes on http://")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                .parse()
                .unwrap()
        });
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stdout.read_to_string(&mut sink);
        });
        Self { child, addr, routes_addr, dir: dir.to_path_buf(), config: config.to_path_buf(), log, _tmp: None }
    }

    /// Restarts the process on the same directory and config.
    pub fn restart(mut self) -> Self {
        self.kill9();
        let mut next = Self::spawn(&self.dir.clone(), &self.config.clone());
        next._tmp = self._tmp.take();
        next
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the server's log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let mut s = self.connect();
        send(&mut s, method, path, body);
        read_response(&mut s)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.request("POST", path, Some(body))
    }

    /// Sends a raw request (head lines without the request line, body) to
    /// the routes listener and reads the response.
    pub fn web(&self, method: &str, target: &str, headers: &[&str], body: &[u8]) -> Resp {
        let addr = self.routes_addr.expect("the config has no Routes block");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("host:")) {
            req.push_str("Host: test\r\n");
        }
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        s.write_all(&bytes).unwrap();
        read_response(&mut s)
    }

    /// Adds a route through the API.
    pub fn route(&self, method: &str, path: &str, action: &str, host: &str) -> Resp {
        let body = serde_json::json!({"method": method, "path": path, "action": action, "host": host});
        self.post("/routes", &body.to_string())
    }

    /// Creates an action from Lua source with optional limit fields (JSON).
    pub fn create(&self, name: &str, code: &str, limits: &str) -> Resp {
        use base64::Engine;
        let code = base64::engine::general_purpose::STANDARD.encode(code);
        let extra = if limits.is_empty() { String::new() } else { format!(",{limits}") };
        self.post("/actions", &format!(r#"{{"name":"{name}","code":"{code}"{extra}}}"#))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn error_kind(&self) -> String {
        self.json()["error"]["kind"].as_str().unwrap_or("").to_string()
    }
}

pub fn send(s: &mut TcpStream, method: &str, path: &str, body: Option<&str>) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).unwrap();
}

/// Reads one response (Content-Length framed, as the server always sends).
pub fn read_response(s: &mut TcpStream) -> Resp {
    try_read_response(s).expect("connection closed before a response")
}

pub fn try_read_response(s: &mut TcpStream) -> Option<Resp> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) | Err(_) => return None,
            Ok(_) => head.push(byte[0]),
        }
    }
    let (status, headers, len) = parse_head(std::str::from_utf8(&head).expect("an ASCII response head"));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(Resp { status, headers, body })
}

pub const HELLO: &str =
    "function main(args)\n  if args.name == nil then args.name = 'World' end\n  return 'Hello ' .. args.name\nend\n";

/// The directory holding the binaries and plugin libraries of this build
/// (`target/<profile>`).
pub fn target_dir() -> PathBuf {
    Path::new(BIN).parent().unwrap().to_path_buf()
}

/// The path of a plugin library built by this workspace (built first if
/// needed; see `sl_testkit::plugin_lib`).
pub fn plugin_lib(lib: &str) -> PathBuf {
    sl_testkit::plugin_lib(lib)
}

/// Runs `slserver` with a config expected to be refused; returns its
/// exit status and stderr.
pub fn start_failing(extra: &str) -> (std::process::ExitStatus, String) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.lua");
    std::fs::write(&config, format!("Nulldb {{}}\n{extra}")).unwrap();
    let out = Command::new(BIN)
        .current_dir(tmp.path())
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

// ---------------------------------------------------------------------------
// Floods, timing and the server process (used by hostile_clients.rs and
// pipelining.rs)

/// Tests that flood the server, open thousands of connections or bound
/// timings take this lock for their whole run, so that a test binary runs
/// them one at a time: together they would pass this process's open-file
/// limit or compete for the cores, and the timing bounds should measure the
/// server, not the load of a test beside it (each test binary has its own
/// lock).
static SERIAL: Mutex<()> = Mutex::new(());

/// Waits for the other tests of this binary that hold it to finish; hold
/// the guard for the whole test.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits up to `limit` for `cond`; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection to `addr` with a 10 s read timeout and no Nagle delay.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// A new client's `GET /ping`: the status and how long the answer took.
pub fn ping(addr: SocketAddr, limit: Duration) -> Option<(u16, Duration)> {
    let start = Instant::now();
    let mut c = TcpStream::connect_timeout(&addr, limit).ok()?;
    c.set_read_timeout(Some(limit)).unwrap();
    c.write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n").ok()?;
    let r = try_read_response(&mut c)?;
    Some((r.status, start.elapsed()))
}

/// Whether a process is still running (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// A response head's status, header fields and `Content-Length` (0 if none).
fn parse_head(head: &str) -> (u16, Vec<(String, String)>, usize) {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let len =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
    (status, headers, len)
}

/// The first Content-Length framed response in `buf` and its length in
/// bytes, or `None` if `buf` does not hold all of it yet.
pub fn parse_response(buf: &[u8]) -> Option<(Resp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let (status, headers, len) = parse_head(std::str::from_utf8(&buf[..end]).expect("an ASCII response head"));
    if buf.len() < end + len {
        return None;
    }
    Some((Resp { status, headers, body: buf[end..end + len].to_vec() }, end + len))
}

/// Reads responses from a connection in large reads (`read_response` reads
/// a head a byte at a time: too slow for a flood's answers).
pub struct ResponseReader {
    c: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl ResponseReader {
    /// Reads from `c`.
    pub fn new(c: TcpStream) -> Self {
        Self { c, buf: Vec::new(), pos: 0 }
    }

    /// The next response, or `None` if the connection closed, failed or
    /// timed out first.
    pub fn read_one(&mut self) -> Option<Resp> {
        loop {
            if let Some((resp, used)) = parse_response(&self.buf[self.pos..]) {
                self.pos += used;
                return Some(resp);
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let mut chunk = [0u8; 64 * 1024];
            match self.c.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The connection, to send more requests on.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.c
    }
}

/// A thread that writes `n` pipelined requests on a connection, in batches
/// of about 64 KiB (the server may stop reading while its answers are not
/// read: back-pressure), counting the requests it has written.
pub struct FloodWriter {
    thread: JoinHandle<std::io::Result<()>>,
    sent: Arc<AtomicUsize>,
}

impl FloodWriter {
    /// Starts writing `request(0)`, ..., `request(n - 1)` on a clone of `c`.
    pub fn spawn(c: &TcpStream, n: usize, request: impl Fn(usize) -> String + Send + 'static) -> Self {
        let mut w = c.try_clone().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let sent2 = Arc::clone(&sent);
        let thread = std::thread::spawn(move || {
            let mut batch = String::new();
            let mut in_batch = 0;
            for i in 0..n {
                batch.push_str(&request(i));
                in_batch += 1;
                if batch.len() > 64 * 1024 {
                    w.write_all(batch.as_bytes())?;
                    sent2.fetch_add(in_batch, Ordering::Relaxed);
                    batch.clear();
                    in_batch = 0;
                }
            }
            w.write_all(batch.as_bytes())?;
            sent2.fetch_add(in_batch, Ordering::Relaxed);
            Ok(())
        });
        Self { thread, sent }
    }

    /// The requests written so far (in whole batches).
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether the thread has ended (everything written, or a write failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the thread; the error of the write that failed, if any.
    pub fn join(self) -> std::io::Result<()> {
        self.thread.join().expect("the flood writer panicked")
    }
}

/// The sockets of /proc/net/tcp whose local port is `port`, as
/// `(state, receive queue)`: state 01 is established, 03 a handshake not
/// yet acknowledged (SYN_RECV), 0A listening. The receive queue is the
/// bytes not read yet, and for the listener the clients not accepted yet.
pub fn sockets_on(port: u16) -> Vec<(String, usize)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        // sl local_address rem_address st tx_queue:rx_queue ...
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(queues)) = (f.get(1), f.get(3), f.get(4)) else { continue };
        if local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) != Some(port) {
            continue;
        }
        let rx = queues.split(':').nth(1).and_then(|q| usize::from_str_radix(q, 16).ok()).unwrap_or(0);
        out.push((state.to_string(), rx));
    }
    out
}
