//! Crashes lose nothing: a client streams creates, updates and asynchronous
//! invocations while the server is killed with `kill -9` at random points
//! and restarted; afterwards every acknowledged write is there and every
//! acknowledged invocation has finished.
//!
//! Beside it, [`STORM`] connections submit asynchronous invocations with
//! idempotency keys, retrying each submit whose answer a kill took until
//! one comes: every 202 has its record, which finishes, and no key ever
//! has two records (a retry of a submit the dead server had committed gets
//! that submit's id, and nothing runs twice for it).
//!
//! Each variant kills the server 20 times by default; `SL_CRASH_ROUNDS=N`
//! (N above 20) makes a longer run, `SL_CRASH_SEED=S` changes the seed of
//! the kill schedule (see `docs/crash-safety.md`):
//!
//! ```sh
//! SL_CRASH_ROUNDS=500 cargo test -p sl-server --test crash -- --nocapture
//! ```

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{try_read_response, Resp, TestServer};
use serde_json::json;
use sl_testkit::Mongo;

/// Kills per variant unless `SL_CRASH_ROUNDS` asks for more.
const DEFAULT_ROUNDS: usize = 20;

/// The seed of the kill schedule unless `SL_CRASH_SEED` gives another.
const DEFAULT_SEED: u64 = 0x5eed_c4a5_11fe_2024;

/// Time between a restart and the next kill.
const MIN_INTERVAL_MS: u64 = 50;
const MAX_INTERVAL_MS: u64 = 400;

/// Asynchronous invocations sent to one echo action before the client moves
/// on to the next, so that each action's records fit in one
/// `GET /invocations?action=...&limit=1000`.
const PER_ECHO_ACTION: usize = 400;

/// The echo actions' code: a little work, so that kills land while
/// invocations run, then the argument back.
const ECHO: &str = "function main(a) local x = 0 for i = 1, 20000 do x = x + i end return a.n end";

/// Connections of the submit storm, and the submits each sends at most
/// (its own action's records fit in one listing), one every `pause` of
/// [`crash_loop`] (longer on nx-27017, a Python server, so that the storm
/// leaves the other client room).
const STORM: usize = 64;
const STORM_PER_ACTION: u64 = 900;

/// The code of an action whose `main` returns `value`.
fn returning(value: u64) -> String {
    format!("function main() return {value} end")
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// splitmix64: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// The address of the live server, or `None` while it is being killed and
/// restarted. Connections are opened with the lock held and the killer
/// clears it before a kill, so a connection always reaches the server this
/// test started (never another test's server that took over the port).
type Current = Arc<Mutex<Option<SocketAddr>>>;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failed {
    Down,
    Lost,
}

/// One keep-alive connection that follows the server across restarts.
struct Client {
    current: Current,
    conn: Option<TcpStream>,
}

impl Client {
    fn new(current: Current) -> Self {
        Self { current, conn: None }
    }

    /// One request. A request that fails is not acknowledged: `Down` if
    /// it could not be sent (the server is being restarted), `Lost` if the
    /// connection failed after it was sent (the server died under it).
    fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<Resp, Failed> {
        self.request_with(method, path, body, "")
    }

    /// [`Client::request`] with more header lines (each ending in CRLF).
    fn request_with(&mut self, method: &str, path: &str, body: Option<&str>, headers: &str) -> Result<Resp, Failed> {
        if self.conn.is_none() {
            let guard = self.current.lock().unwrap();
            let addr = guard.ok_or(Failed::Down)?;
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|_| Failed::Down)?;
            drop(guard);
            s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|_| Failed::Down)?;
            s.set_nodelay(true).map_err(|_| Failed::Down)?;
            self.conn = Some(s);
        }
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}");
        if let Some(b) = body {
            req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
        } else {
            req.push_str("\r\n");
        }
        let s = self.conn.as_mut().unwrap();
        let resp = if s.write_all(req.as_bytes()).is_ok() { try_read_response(s) } else { None };
        if resp.is_none() || resp.as_ref().and_then(|r| r.header("connection")) == Some("close") {
            self.conn = None;
        }
        resp.ok_or(Failed::Lost)
    }

    /// A request that must get an answer (no kills are happening): retries
    /// a few times on a closed connection.
    fn must(&mut self, method: &str, path: &str, body: Option<&str>) -> Resp {
        for _ in 0..5 {
            if let Ok(r) = self.request(method, path, body) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{method} {path}: no response from the server");
    }
}

/// What the client knows about an action it created.
#[derive(Debug)]
struct Known {
    /// What `main` returns according to the last acknowledged create or update.
    value: u64,
    /// The version that acknowledgement reported.
    version: i64,
    /// Values of later updates that were sent but not acknowledged: the
    /// server may or may not have applied them before it died.
    maybe: Vec<u64>,
}

/// What the client sent and what was acknowledged.
#[derive(Default)]
struct Ledger {
    /// Names of every create sent (acknowledged or not), with their value.
    attempted: BTreeMap<String, u64>,
    /// Acknowledged actions.
    known: BTreeMap<String, Known>,
    /// Acknowledged asynchronous invocations: id, echo action, argument.
    invocations: Vec<(String, String, u64)>,
    /// Echo actions in use (each created, acknowledged or found to exist).
    echo_actions: Vec<String>,
    creates: usize,
    updates: usize,
    /// Requests sent that got no answer (the server died under them).
    lost: usize,
    /// Requests not sent because the server was being restarted.
    down: usize,
    /// 503 answers (acceptable while a server starts, but counted).
    refused: usize,
    /// Answers that are wrong whatever happened.
    unexpected: Vec<String>,
}

impl Ledger {
    fn failed(&mut self, why: Failed) {
        match why {
            Failed::Down => self.down += 1,
            Failed::Lost => self.lost += 1,
        }
    }

    fn odd(&mut self, what: &str, r: &Resp) {
        if r.status == 503 {
            self.refused += 1;
        } else if self.unexpected.len() < 20 {
            self.unexpected.push(format!("{what}: {} {}", r.status, r.text()));
        }
    }
}

/// The client's loop: creates, updates and submissions until `stop`.
fn client_loop(current: Current, stop: Arc<AtomicBool>, seed: u64) -> Ledger {
    let mut c = Client::new(current);
    let mut rng = Rng(seed ^ 0x00c1_1e47);
    let mut l = Ledger::default();
    let mut next_action = 0u64;
    let mut next_value = 1_000_000u64;
    let mut next_arg = 0u64;
    let mut on_echo = PER_ECHO_ACTION; // forces the first echo action
    let mut names: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // The echo action for the next submissions.
        if on_echo >= PER_ECHO_ACTION {
            let name = format!("e{}", l.echo_actions.len());
            let body = json!({"name": name, "code": b64(ECHO)}).to_string();
            match c.request("POST", "/actions", Some(&body)) {
                // 409: an earlier create of ours that got no answer did happen.
                Ok(r) if r.status == 201 || r.status == 409 => {
                    l.echo_actions.push(name);
                    on_echo = 0;
                }
                Ok(r) => l.odd("create echo", &r),
                Err(why) => {
                    l.failed(why);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            continue;
        }
        let mut failed = false;

        // Create a<N>, returning N.
        let name = format!("a{next_action}");
        let value = next_action;
        next_action += 1;
        l.attempted.insert(name.clone(), value);
        let body = json!({"name": name, "code": b64(&returning(value))}).to_string();
        match c.request("POST", "/actions", Some(&body)) {
            Ok(r) if r.status == 201 => {
                let version = r.json()["version"].as_i64().unwrap_or(-1);
                l.known.insert(name.clone(), Known { value, version, maybe: Vec::new() });
                names.push(name);
                l.creates += 1;
            }
            Ok(r) => l.odd(&format!("create {name}"), &r),
            Err(why) => {
                l.failed(why);
                failed = true;
            }
        }

        // Update a random acknowledged action to return a new value.
        if !names.is_empty() && !failed {
            let name = names[rng.next() as usize % names.len()].clone();
            let value = next_value;
            next_value += 1;
            let body = json!({"code": b64(&returning(value))}).to_string();
            match c.request("PUT", &format!("/actions/{name}"), Some(&body)) {
                Ok(r) if r.status == 200 => {
                    let version = r.json()["version"].as_i64().unwrap_or(-1);
                    let k = l.known.get_mut(&name).unwrap();
                    *k = Known { value, version, maybe: Vec::new() };
                    l.updates += 1;
                }
                Ok(r) => {
                    // Not applied, whatever the status: only a lost answer leaves doubt.
                    l.odd(&format!("update {name}"), &r);
                }
                Err(why) => {
                    if why == Failed::Lost {
                        l.known.get_mut(&name).unwrap().maybe.push(value);
                    }
                    l.failed(why);
                    failed = true;
                }
            }
        }

        // Two asynchronous invocations of the current echo action.
        for _ in 0..2 {
            if failed {
                break;
            }
            let echo = l.echo_actions.last().unwrap().clone();
            let n = next_arg;
            next_arg += 1;
            on_echo += 1;
            match c.request("POST", &format!("/actions/{echo}"), Some(&format!(r#"{{"n":{n}}}"#))) {
                Ok(r) if r.status == 202 => {
                    let id = r.json()["InvocationId"].as_str().unwrap_or_default().to_string();
                    l.invocations.push((id, echo, n));
                }
                Ok(r) => l.odd(&format!("submit to {echo}"), &r),
                Err(why) => {
                    l.failed(why);
                    failed = true;
                }
            }
        }
        if failed {
            // The server is down: give it a moment rather than spin.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    l
}

/// What one storm connection had acknowledged.
#[derive(Default)]
struct Storm {
    action: String,
    /// (invocation id, n) of each acknowledged submit, n in 0, 1, ...
    acked: Vec<(String, u64)>,
    /// Acknowledgements that were replays (a retry after a lost answer,
    /// whose first try the server had committed).
    replayed: usize,
    /// Submits retried because a kill took their answer.
    retried: usize,
    unexpected: Vec<String>,
}

/// A storm connection: creates its action, then submits `{"n": i}` with key
/// `ACTION-i` for i = 0, 1, ... until `stop`, each until it is answered.
fn storm_loop(current: Current, stop: Arc<AtomicBool>, t: usize, pause: Duration) -> Storm {
    let mut c = Client::new(current);
    let mut s = Storm { action: format!("storm{t}"), ..Storm::default() };
    let body = json!({"name": s.action, "code": b64(ECHO)}).to_string();
    loop {
        match c.request("POST", "/actions", Some(&body)) {
            Ok(r) if r.status == 201 || r.status == 409 => break,
            _ if stop.load(Ordering::Relaxed) => return s,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let path = format!("/actions/{}", s.action);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && n < STORM_PER_ACTION {
        let key = format!("Idempotency-Key: {}-{n}\r\n", s.action);
        match c.request_with("POST", &path, Some(&format!(r#"{{"n":{n}}}"#)), &key) {
            Ok(r) if r.status == 202 => {
                s.acked.push((r.json()["InvocationId"].as_str().unwrap_or_default().to_string(), n));
                s.replayed += usize::from(r.header("idempotent-replayed") == Some("true"));
                n += 1;
                std::thread::sleep(pause);
            }
            Ok(r) if r.status == 503 => std::thread::sleep(pause),
            Ok(r) => {
                s.unexpected.push(format!("submit {n} to {}: {} {}", s.action, r.status, r.text()));
                return s;
            }
            Err(why) => {
                s.retried += usize::from(why == Failed::Lost);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    s
}

/// The value an action's source returns, if it is one of ours.
fn value_of(source: &str) -> Option<u64> {
    source.strip_prefix("function main() return ")?.strip_suffix(" end")?.parse().ok()
}

const STATUSES: [&str; 4] = ["queued", "running", "succeeded", "failed"];

/// Starts a server with `config` (in `dir` if given), kills and restarts it
/// at random points while a client writes, then checks that nothing
/// acknowledged was lost.
fn crash_loop(label: &str, dir: Option<&Path>, config: &str, pause: Duration) {
    let rounds = env_u64("SL_CRASH_ROUNDS").map_or(DEFAULT_ROUNDS, |n| (n as usize).max(DEFAULT_ROUNDS));
    let seed = env_u64("SL_CRASH_SEED").unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let mut server = match dir {
        Some(dir) => TestServer::start_in(dir, config),
        None => TestServer::start(config),
    };
    let current: Current = Arc::new(Mutex::new(Some(server.addr)));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (current, stop) = (Arc::clone(&current), Arc::clone(&stop));
        std::thread::spawn(move || client_loop(current, stop, seed))
    };
    let storms: Vec<_> = (0..STORM)
        .map(|t| {
            let (current, stop) = (Arc::clone(&current), Arc::clone(&stop));
            std::thread::spawn(move || storm_loop(current, stop, t, pause))
        })
        .collect();

    let mut rng = Rng(seed);
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_millis(rng.range(MIN_INTERVAL_MS, MAX_INTERVAL_MS)));
        *current.lock().unwrap() = None;
        server = server.restart();
        *current.lock().unwrap() = Some(server.addr);
    }
    // Let the client write to the last server for a moment, then stop it.
    std::thread::sleep(Duration::from_millis(rng.range(MIN_INTERVAL_MS, MAX_INTERVAL_MS)));
    stop.store(true, Ordering::Relaxed);
    let mut l = client.join().expect("client thread");
    let storms: Vec<Storm> = storms.into_iter().map(|s| s.join().expect("storm thread")).collect();
    let loop_time = started.elapsed();
    for s in &storms {
        assert!(s.unexpected.is_empty(), "[{label}] unexpected answers to the storm: {:#?}", s.unexpected);
    }
    let storm_acked: usize = storms.iter().map(|s| s.acked.len()).sum();
    assert!(storm_acked > STORM, "[{label}] the storm had only {storm_acked} submits acknowledged");
    assert!(l.unexpected.is_empty(), "[{label}] unexpected answers while writing: {:#?}", l.unexpected);
    // The storm takes most of the server: half a create per kill still
    // puts creates between most kills.
    assert!(l.creates > rounds / 2, "[{label}] only {} creates were acknowledged: the test did little", l.creates);
    assert!(!l.invocations.is_empty(), "[{label}] no invocation was acknowledged");

    let verify = Instant::now();
    let mut c = Client::new(Arc::clone(&current));
    let log = || server.log();

    // Every action listed is one we tried to create, with sane fields.
    let list = c.must("GET", "/actions", None);
    assert_eq!(list.status, 200, "[{label}] GET /actions: {}", list.text());
    let list = list.json();
    let list = list.as_array().unwrap_or_else(|| panic!("[{label}] GET /actions is not an array: {list}"));
    let mut listed = HashMap::new();
    for a in list {
        let name = a["name"].as_str().unwrap_or_else(|| panic!("[{label}] action without a name: {a}"));
        assert!(
            l.attempted.contains_key(name) || l.echo_actions.iter().any(|e| e == name) || name.starts_with("storm"),
            "[{label}] unknown action {name} listed: {a}"
        );
        for field in ["size", "maxmem", "timeout", "instructions", "version", "created", "updated"] {
            assert!(a[field].as_u64().is_some(), "[{label}] action {name}: bad {field}: {a}");
        }
        assert!(a["size"].as_u64().unwrap() > 0, "[{label}] action {name} has no bytecode: {a}");
        assert!(a["version"].as_u64().unwrap() >= 1, "[{label}] {a}");
        assert!(a["created"].as_u64().unwrap() <= a["updated"].as_u64().unwrap(), "[{label}] {a}");
        assert!(listed.insert(name.to_string(), a.clone()).is_none(), "[{label}] {name} listed twice");
    }

    // Every acknowledged create and update is there, with its code, and runs.
    for (name, k) in &l.known {
        let r = c.must("GET", &format!("/actions/{name}"), None);
        assert_eq!(r.status, 200, "[{label}] acknowledged action {name} is gone: {}\n{}", r.text(), log());
        let a = r.json();
        let code = base64::engine::general_purpose::STANDARD
            .decode(a["code"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("[{label}] {name}: code is not base64 ({e}): {a}"));
        let code = String::from_utf8(code).unwrap_or_else(|_| panic!("[{label}] {name}: code is not UTF-8"));
        let found = value_of(&code).unwrap_or_else(|| panic!("[{label}] {name}: corrupt code {code:?}"));
        let version = a["version"].as_i64().unwrap_or(-1);
        if found == k.value {
            assert_eq!(version, k.version, "[{label}] {name}: acknowledged version {} but found {a}", k.version);
        } else {
            assert!(
                k.maybe.contains(&found) && version > k.version,
                "[{label}] {name}: acknowledged code returns {} (version {}), found code returning {found} \
                 (version {version}); unacknowledged updates: {:?}",
                k.value,
                k.version,
                k.maybe
            );
        }
        assert!(listed.contains_key(name), "[{label}] {name} is missing from GET /actions");
        assert_eq!(listed[name]["version"], a["version"], "[{label}] {name}: list and get disagree");
        let run = c.must("POST", &format!("/actions/{name}/block"), Some(""));
        assert_eq!(run.status, 200, "[{label}] running {name}: {}", run.text());
        assert_eq!(run.json(), json!(found), "[{label}] {name} returned the wrong value");
    }
    // Actions created without an answer, if they exist, hold what was sent.
    for (name, a) in &listed {
        if let Some(&value) = l.attempted.get(name).filter(|_| !l.known.contains_key(name)) {
            let r = c.must("GET", &format!("/actions/{name}"), None).json();
            let code = base64::engine::general_purpose::STANDARD.decode(r["code"].as_str().unwrap_or_default());
            let code = String::from_utf8(code.unwrap_or_default()).unwrap_or_default();
            assert_eq!(code, returning(value), "[{label}] unacknowledged create {name}: wrong code: {a}");
        }
    }
    for echo in &l.echo_actions {
        let r = c.must("GET", &format!("/actions/{echo}"), None);
        assert_eq!(r.status, 200, "[{label}] echo action {echo} is gone: {}", r.text());
    }

    // Every acknowledged invocation reaches a terminal state, the storm's
    // too (checked with the client's, then set apart again below).
    let client_invocations = l.invocations.len();
    for s in &storms {
        l.invocations.extend(s.acked.iter().map(|(id, n)| (id.clone(), s.action.clone(), *n)));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut pending: Vec<&(String, String, u64)> = l.invocations.iter().collect();
    let (mut succeeded, mut abandoned) = (0usize, 0usize);
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|(id, action, n)| {
            let r = c.must("GET", &format!("/invocation/{id}?wait=0"), None);
            match r.status {
                202 => true,
                200 => {
                    assert_eq!(r.json(), json!(n), "[{label}] invocation {id} of {action} returned the wrong result");
                    succeeded += 1;
                    false
                }
                _ => {
                    assert_eq!(
                        r.error_kind(),
                        "abandoned",
                        "[{label}] invocation {id} of {action} ended with {}: {}",
                        r.status,
                        r.text()
                    );
                    abandoned += 1;
                    false
                }
            }
        });
        if let Some((id, _, _)) = pending.first() {
            // Waits for the oldest pending one rather than spinning.
            c.must("GET", &format!("/invocation/{id}?wait=1"), None);
        }
    }
    assert!(
        pending.is_empty(),
        "[{label}] {} acknowledged invocations never finished, e.g. {:?}\n{}",
        pending.len(),
        pending.iter().take(5).collect::<Vec<_>>(),
        log()
    );

    // The storm: each key has one record at most (n is the key), and each
    // acknowledged submit's is the one it was told.
    let mut storm_reruns = 0;
    for s in &storms {
        let r = c.must("GET", &format!("/invocations?action={}&limit=1000", s.action), None);
        assert_eq!(r.status, 200, "[{label}] invocations of {}: {}", s.action, r.text());
        let mut by_n: HashMap<u64, String> = HashMap::new();
        for rec in r.json().as_array().expect("an array") {
            let n = rec["args"]["n"].as_u64().unwrap_or_else(|| panic!("[{label}] {rec}"));
            let id = rec["id"].as_str().unwrap_or_default().to_string();
            storm_reruns += usize::from(rec["attempts"].as_u64().unwrap_or(0) > 1);
            if let Some(other) = by_n.insert(n, id.clone()) {
                panic!("[{label}] key {}-{n} has two records, {other} and {id}\n{}", s.action, log());
            }
        }
        for (id, n) in &s.acked {
            assert_eq!(by_n.get(n), Some(id), "[{label}] {}-{n} was acknowledged as {id}", s.action);
        }
    }
    l.invocations.truncate(client_invocations);

    // No corrupt records: each echo action's records parse, have a valid
    // status, finished with the right result, and include every
    // acknowledged invocation.
    let acked: HashSet<&str> = l.invocations.iter().map(|(id, _, _)| id.as_str()).collect();
    // A result is served from memory as soon as the invocation ends; the
    // server writes the record a moment later, in a batch: give it time.
    let record_deadline = Instant::now() + Duration::from_secs(10);
    let echo_records = loop {
        let mut all = Vec::new();
        for echo in &l.echo_actions {
            let r = c.must("GET", &format!("/invocations?action={echo}&limit=1000"), None);
            assert_eq!(r.status, 200, "[{label}] invocations of {echo}: {}", r.text());
            let recs = r.json();
            let recs = recs.as_array().unwrap_or_else(|| panic!("[{label}] not an array: {recs}")).clone();
            assert!(recs.len() < 1000, "[{label}] {echo} has too many records to check them all");
            all.extend(recs.into_iter().map(|rec| (echo.clone(), rec)));
        }
        let settled = all.iter().all(|(_, rec)| {
            let terminal = matches!(rec["status"].as_str(), Some("succeeded" | "failed"));
            terminal || !acked.contains(rec["id"].as_str().unwrap_or_default())
        });
        if settled || Instant::now() > record_deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut seen = HashSet::new();
    let mut reruns = 0usize;
    let mut records = 0usize;
    for (echo, rec) in &echo_records {
        records += 1;
        let id = rec["id"].as_str().unwrap_or_else(|| panic!("[{label}] record without id: {rec}"));
        assert!(seen.insert(id.to_string()), "[{label}] record {id} listed twice");
        assert_eq!(rec["action"], json!(echo), "[{label}] {rec}");
        let status = rec["status"].as_str().unwrap_or_default();
        assert!(STATUSES.contains(&status), "[{label}] record {id}: invalid status: {rec}");
        let attempts = rec["attempts"].as_u64().unwrap_or(0);
        match status {
            "succeeded" => {
                assert_eq!(rec["result"], rec["args"]["n"], "[{label}] record {id}: wrong result: {rec}");
                assert!(attempts >= 1, "[{label}] record {id}: {rec}");
            }
            "failed" => {
                assert_eq!(rec["error"]["kind"], "abandoned", "[{label}] record {id} failed: {rec}");
            }
            // Only unacknowledged submissions may still be on their way.
            _ => assert!(
                !acked.contains(id),
                "[{label}] acknowledged invocation {id} is still {status}: {rec}; GET /invocation: {}\n{}",
                c.must("GET", &format!("/invocation/{id}?wait=0"), None).text(),
                log()
            ),
        }
        if attempts > 1 {
            reruns += 1;
        }
    }
    let missing: Vec<&&str> = acked.iter().filter(|id| !seen.contains(**id)).take(5).collect();
    assert!(missing.is_empty(), "[{label}] acknowledged invocations without a record: {missing:?}");
    let all = c.must("GET", "/invocations?limit=1000", None);
    assert_eq!(all.status, 200, "[{label}] GET /invocations: {}", all.text());
    for rec in all.json().as_array().expect("GET /invocations is an array") {
        let status = rec["status"].as_str().unwrap_or_default();
        assert!(STATUSES.contains(&status), "[{label}] invalid record: {rec}");
        assert!(rec["id"].is_string() && rec["action"].is_string(), "[{label}] invalid record: {rec}");
    }
    assert_eq!(c.must("GET", "/ping", None).status, 200);

    let replayed: usize = storms.iter().map(|s| s.replayed).sum();
    let retried: usize = storms.iter().map(|s| s.retried).sum();
    eprintln!(
        "crash[{label}]: the storm of {STORM} connections had {storm_acked} submits acknowledged; {retried} \
         answers lost to kills were retried with their key, {replayed} of them replayed an id the dead server \
         had committed; {storm_reruns} storm records ran more than once"
    );
    let unacked_present = listed.keys().filter(|n| l.attempted.contains_key(*n) && !l.known.contains_key(*n)).count();
    eprintln!(
        "crash[{label}]: {rounds} kills in {:.1} s (seed {seed:#x}); acknowledged {} creates, {} updates, \
         {} invocations ({succeeded} succeeded, {abandoned} abandoned); {} requests lost to kills, {} not sent while restarting, {} refused; \
         {unacked_present} unacknowledged creates had been applied; {reruns} of {records} records ran more than once; \
         verified in {:.1} s",
        loop_time.as_secs_f64(),
        l.creates,
        l.updates,
        l.invocations.len(),
        l.lost,
        l.down,
        l.refused,
        verify.elapsed().as_secs_f64(),
    );
}

#[test]
fn crash_loop_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    crash_loop("sqlite", Some(tmp.path()), "Sqlite { path = \"data/sl.db\" }\n", Duration::from_millis(20));
}

#[test]
fn crash_loop_mongodb() {
    let m = Mongo::start();
    let config = format!(
        "Mongodb {{ url = {:?}, database = {:?} }}\n\
         Limits {{ max_timeout = 2000, timeout = 2000 }}\n\
         Invocations {{ lease = 3000 }}\n",
        m.uri(),
        m.fresh_db()
    );
    crash_loop("mongodb", None, &config, Duration::from_millis(300));
}
