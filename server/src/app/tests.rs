//! The application without sockets: requests go in through
//! [`Service::call`], answers come out of the outbox, and the loop's turns
//! are called by hand.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sl_store::{
    ActionMeta, ActionRecord, InvocationRecord, InvocationStatus, Limits, MemoryStore, Outcomes, Result as StoreResult,
    RouteRecord, RunKind, Store,
};

use super::App;
use crate::config::Config;
use crate::http::{Method, Request};
use crate::plugin::PluginHost;
use crate::reactor::{ConnRef, Service, Side, Wake};
use crate::state::{Peers, FREE_RECORDS, MAX_BACKLOG};

/// A store in memory whose record writes wait while the gate is shut.
#[derive(Default)]
struct Gated {
    inner: MemoryStore,
    shut: Mutex<bool>,
    opened: Condvar,
    /// Writes that held queued records (submits), and how many each held.
    submit_writes: Mutex<Vec<usize>>,
    /// Whether record writes fail (once through the gate).
    failing: Mutex<bool>,
    /// Records claims returned.
    claimed: Mutex<usize>,
    /// How long each enqueue takes (after the gate).
    enqueue_takes: Mutex<Duration>,
    /// Records written by `put_invocations`.
    put: Mutex<Vec<InvocationRecord>>,
    /// Records written by `enqueue_invocations`.
    enqueued: Mutex<Vec<InvocationRecord>>,
}

impl Gated {
    fn set(&self, shut: bool) {
        *self.shut.lock().unwrap() = shut;
        self.opened.notify_all();
    }

    /// Waits at the gate; then fails if writes fail.
    fn pass(&self) -> StoreResult<()> {
        let mut shut = self.shut.lock().unwrap();
        while *shut {
            shut = self.opened.wait(shut).unwrap();
        }
        drop(shut);
        if *self.failing.lock().unwrap() {
            return Err(sl_store::StoreError::Unavailable("the disk is on fire".into()));
        }
        Ok(())
    }
}

impl Store for Gated {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn create_action(&self, a: &ActionRecord) -> StoreResult<()> {
        self.inner.create_action(a)
    }
    fn update_action(&self, a: &ActionRecord, v: i64) -> StoreResult<()> {
        self.inner.update_action(a, v)
    }
    fn get_action(&self, name: &str) -> StoreResult<Option<ActionRecord>> {
        self.inner.get_action(name)
    }
    fn list_actions(&self) -> StoreResult<Vec<ActionMeta>> {
        self.inner.list_actions()
    }
    fn delete_action(&self, name: &str) -> StoreResult<bool> {
        self.inner.delete_action(name)
    }
    fn create_route(&self, r: &RouteRecord) -> StoreResult<()> {
        self.inner.create_route(r)
    }
    fn delete_route(&self, m: &str, h: &str, p: &str) -> StoreResult<bool> {
        self.inner.delete_route(m, h, p)
    }
    fn list_routes(&self) -> StoreResult<Vec<RouteRecord>> {
        self.inner.list_routes()
    }
    fn put_invocations(&self, records: &[InvocationRecord]) -> StoreResult<()> {
        self.pass()?;
        let queued = records.iter().filter(|r| r.status == sl_store::InvocationStatus::Queued).count();
        if queued > 0 {
            self.submit_writes.lock().unwrap().push(queued);
        }
        self.put.lock().unwrap().extend_from_slice(records);
        self.inner.put_invocations(records)
    }
    fn enqueue_invocations(&self, submits: &[sl_store::Submit]) -> StoreResult<Vec<sl_store::Enqueued>> {
        self.pass()?;
        std::thread::sleep(*self.enqueue_takes.lock().unwrap());
        self.submit_writes.lock().unwrap().push(submits.len());
        self.enqueued.lock().unwrap().extend(submits.iter().map(|s| s.record.clone()));
        self.inner.enqueue_invocations(submits)
    }
    fn get_invocation(&self, id: &str) -> StoreResult<Option<InvocationRecord>> {
        self.inner.get_invocation(id)
    }
    fn list_invocations(&self, a: Option<&str>, n: usize) -> StoreResult<Vec<InvocationRecord>> {
        self.inner.list_invocations(a, n)
    }
    fn claim_invocations(&self, o: &str, n: usize, now: i64, lease: i64) -> StoreResult<Vec<InvocationRecord>> {
        let got = self.inner.claim_invocations(o, n, now, lease)?;
        *self.claimed.lock().unwrap() += got.len();
        Ok(got)
    }
    fn release_running(&self) -> StoreResult<u64> {
        self.inner.release_running()
    }
    fn count_queued(&self) -> StoreResult<u64> {
        self.inner.count_queued()
    }
    fn oldest_queued(&self) -> StoreResult<Option<i64>> {
        self.inner.oldest_queued()
    }
    fn purge_invocations(&self, before: i64) -> StoreResult<u64> {
        self.inner.purge_invocations(before)
    }
    fn invocation_bytes(&self) -> StoreResult<u64> {
        self.inner.invocation_bytes()
    }
    fn purge_oldest_invocations(&self, bytes: u64, max_records: usize) -> StoreResult<sl_store::Purged> {
        self.inner.purge_oldest_invocations(bytes, max_records)
    }
    fn add_run_counts(&self, counts: &[sl_store::RunCounts]) -> StoreResult<()> {
        self.inner.add_run_counts(counts)
    }
    fn run_counts(&self, action: &str) -> StoreResult<sl_store::RunCounts> {
        self.inner.run_counts(action)
    }

    fn events(&self) -> &dyn sl_store::Events {
        self.inner.events()
    }

    fn schedules(&self) -> &dyn sl_store::Schedules {
        self.inner.schedules()
    }
}

/// An app on `store` with `config` (Lua), and an action `echo`.
fn app(store: Arc<dyn Store>, config: &str) -> App {
    let cfg = Config::from_lua_source(config, "test", Path::new(".")).unwrap();
    let mut rec = ActionRecord {
        name: "echo".into(),
        version: 1,
        source: Vec::new(),
        bytecode: Vec::new(),
        checksum: String::new(),
        limits: Limits::default(),
        created: 0,
        updated: 0,
    };
    let budget = crate::exec::budget_for(&rec, &cfg.limits);
    let code =
        crate::sandbox::compile("echo", "function main(a) if a.fail then error(a.fail) end return a end", budget)
            .unwrap();
    (rec.bytecode, rec.checksum) = (code.bytecode, code.checksum);
    store.create_action(&rec).unwrap();
    let peers = Peers::mesh(1).pop().unwrap();
    App::new(Arc::new(cfg), store, Arc::new(PluginHost::default()), peers, Arc::new(|| {})).unwrap()
}

fn request(method: Method, path: &str, body: &str) -> Request {
    Request {
        method,
        path: path.into(),
        query: String::new(),
        authority: None,
        body: body.as_bytes().to_vec(),
        keep_alive: true,
        authorization: None,
        idempotency_key: None,
        headers: Vec::new(),
    }
}

fn conn(key: usize) -> ConnRef {
    ConnRef { key, gen: 1 }
}

/// The answers in the outbox: (connection, status, body).
fn answers(app: &mut App) -> Vec<(ConnRef, u16, String)> {
    let mut out = Vec::new();
    app.outbox().drain(|to, parts| {
        let mut bytes = Vec::new();
        parts.write_to(&mut bytes, true, false);
        let text = String::from_utf8(bytes).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
        out.push((to, status, body));
    });
    out
}

/// Turns the loop until `n` answers have come, within 10 s.
fn answers_after_turns(app: &mut App, n: usize) -> Vec<(ConnRef, u16, String)> {
    let start = Instant::now();
    let mut got = answers(app);
    while got.len() < n && start.elapsed() < Duration::from_secs(10) {
        app.end_turn(Instant::now());
        got.extend(answers(app));
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

/// Turns the loop `n` times, a millisecond apart.
fn turns(app: &mut App, n: usize) {
    for _ in 0..n {
        app.end_turn(Instant::now());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Turns the loop, a millisecond apart, while `busy(app)` holds, for at
/// most 10 s.
fn turn_while(app: &mut App, mut busy: impl FnMut(&App) -> bool) {
    let start = Instant::now();
    while busy(app) && start.elapsed() < Duration::from_secs(10) {
        app.end_turn(Instant::now());
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn answers_given_at_once_are_in_the_outbox_when_the_call_returns() {
    let mut app = app(Arc::new(MemoryStore::new()), "Nulldb {}");
    app.call(conn(1), Side::Api, request(Method::Get, "/ping", ""));
    app.call(conn(2), Side::Api, request(Method::Get, "/actions/bad%name", ""));
    app.call(conn(3), Side::Web, request(Method::Get, "/nowhere", ""));
    let got = answers(&mut app);
    assert_eq!(got[0], (conn(1), 200, "OK".to_string()));
    assert_eq!((got[1].0, got[1].1), (conn(2), 400));
    assert!(got[2].2.contains("no route for GET /nowhere"), "{got:?}");
    assert_eq!(got.len(), 3);
}

#[test]
fn a_blocking_run_waits_for_its_action_once_then_answers_during_the_call() {
    let mut app = app(Arc::new(MemoryStore::new()), "Nulldb {}");
    // Not cached: fetched on the pool, answered in a later turn.
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo/block", r#"{"x":1}"#));
    assert!(answers(&mut app).is_empty());
    assert_eq!(answers_after_turns(&mut app, 1), vec![(conn(1), 200, r#"{"x":1}"#.to_string())]);
    // Cached and warm: answered before the call returns.
    for i in 0..100 {
        app.call(conn(2), Side::Api, request(Method::Post, "/actions/echo/block", &format!(r#"{{"x":{i}}}"#)));
        assert_eq!(answers(&mut app), vec![(conn(2), 200, format!(r#"{{"x":{i}}}"#))]);
    }
}

/// A client cannot make recorded runs faster than the store takes their
/// records: past the backlog's cap, runs wait (their clients with them)
/// until the store catches up, and memory holds at most the cap.
#[test]
fn recorded_runs_wait_while_the_store_is_behind_on_their_records() {
    let store = Arc::new(Gated::default());
    // Every success recorded (no sampling), so that records pile up.
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}\nInvocations { sample_successes = 1 }");
    assert!(app.st.cfg.invocations.record_blocking, "the default records blocking runs");
    app.call(conn(0), Side::Api, request(Method::Post, "/actions/echo/block", "{}"));
    assert_eq!(answers_after_turns(&mut app, 1).len(), 1);
    store.set(true);
    let n = MAX_BACKLOG * 2;
    let mut answered = 0;
    for i in 1..=n {
        app.call(conn(i), Side::Api, request(Method::Post, "/actions/echo/block", "{}"));
        answered += answers(&mut app).len();
        // The loop writes records at the end of each turn.
        app.end_turn(Instant::now());
    }
    // The first batch is stuck in the store; what came after waits in
    // memory up to the cap, and the rest of the runs have not started.
    std::thread::sleep(Duration::from_millis(50));
    app.end_turn(Instant::now());
    answered += answers(&mut app).len();
    assert!((MAX_BACKLOG - 2..=MAX_BACKLOG + 1).contains(&answered), "{answered} answered");
    assert_eq!(app.st.exec.held.len(), n - answered);
    store.set(false);
    let rest = answers_after_turns(&mut app, n - answered);
    assert_eq!(rest.len(), n - answered, "every held run runs once the store caught up");
    assert!(app.st.exec.held.is_empty());
    assert!(rest.iter().all(|(_, status, body)| *status == 200 && body == "{}"));
}

/// Group commit: submits that arrive while a commit of submits is in
/// flight go into the next one, together, and no client gets its 202
/// before the commit that holds its record.
#[test]
fn submits_that_arrive_during_a_commit_share_the_next_one() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}");
    store.set(true);
    app.call(conn(0), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    // The turn ends: the first commit goes in flight (stuck at the gate);
    // these wait.
    app.end_turn(Instant::now());
    for i in 1..=100 {
        app.call(conn(i), Side::Api, request(Method::Post, "/actions/echo", &format!(r#"{{"i":{i}}}"#)));
        app.end_turn(Instant::now());
    }
    std::thread::sleep(Duration::from_millis(50));
    app.end_turn(Instant::now());
    assert!(answers(&mut app).is_empty(), "a 202 before its commit");
    assert!(store.submit_writes.lock().unwrap().is_empty());
    store.set(false);
    let got = answers_after_turns(&mut app, 101);
    let mut ids: Vec<String> = got
        .iter()
        .filter(|(_, status, _)| *status == 202)
        .map(|(_, _, body)| serde_json::from_str::<serde_json::Value>(body).unwrap()["InvocationId"].to_string())
        .collect();
    assert_eq!(ids.len(), 101, "{got:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 101, "every submit its own id");
    assert_eq!(*store.submit_writes.lock().unwrap(), vec![1, 100], "two commits for 101 submits");
    for id in &ids {
        let rec = store.get_invocation(id.trim_matches('"')).unwrap();
        assert!(rec.is_some(), "the record of {id} is stored");
    }
}

/// A submit whose commit fails gets the store's error, never a 202, and
/// nothing of it is stored; the next commit works again.
#[test]
fn a_submit_whose_commit_fails_gets_no_202() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}");
    *store.failing.lock().unwrap() = true;
    for i in 0..5 {
        app.call(conn(i), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    }
    let got = answers_after_turns(&mut app, 5);
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|(_, status, body)| *status == 503 && body.contains("the disk is on fire")), "{got:?}");
    assert!(store.list_invocations(None, 10).unwrap().is_empty(), "nothing stored");
    *store.failing.lock().unwrap() = false;
    app.call(conn(9), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    let got = answers_after_turns(&mut app, 1);
    assert_eq!(got[0].1, 202, "{got:?}");
}

fn keyed(path: &str, body: &str, key: &str) -> Request {
    Request { idempotency_key: Some(key.as_bytes().to_vec()), ..request(Method::Post, path, body) }
}

fn invocation_id(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["InvocationId"].as_str().unwrap().to_string()
}

/// `Idempotency-Key`: a retry (in the same commit or a later one) gets the
/// first id and queues nothing; the key with other arguments or another
/// action is a 422; a bad key or a key on a blocking run is a 400.
#[test]
fn an_idempotency_key_queues_one_invocation() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}");
    store.set(true);
    app.call(conn(0), Side::Api, keyed("/actions/echo", r#"{"n":1}"#, "k-0"));
    // These three share the next commit: two retries of k-1 and a misuse.
    app.call(conn(1), Side::Api, keyed("/actions/echo", r#"{"n":1}"#, "k-1"));
    app.call(conn(2), Side::Api, keyed("/actions/echo", r#"{"n":1}"#, "k-1"));
    app.call(conn(3), Side::Api, keyed("/actions/echo", r#"{"n":2}"#, "k-1"));
    store.set(false);
    let got = answers_after_turns(&mut app, 4);
    let by_conn = |k: usize| got.iter().find(|(c, _, _)| *c == conn(k)).unwrap().clone();
    assert_eq!(by_conn(0).1, 202);
    let (first, again) = (by_conn(1), by_conn(2));
    assert_eq!((first.1, again.1), (202, 202), "{got:?}");
    assert_eq!(invocation_id(&first.2), invocation_id(&again.2));
    assert_eq!(by_conn(3).1, 422, "{got:?}");
    assert!(by_conn(3).2.contains("idempotency_mismatch"), "{got:?}");
    // A later commit: the store has the key.
    app.call(conn(4), Side::Api, keyed("/actions/echo", r#"{"n":1}"#, "k-0"));
    let got = answers_after_turns(&mut app, 1);
    assert_eq!((got[0].1, invocation_id(&got[0].2)), (202, invocation_id(&by_conn(0).2)));
    assert_eq!(store.list_invocations(None, 10).unwrap().len(), 2, "k-0 and k-1, once each");
    for (req, what) in [
        (keyed("/actions/echo", "{}", ""), "an empty key"),
        (keyed("/actions/echo", "{}", "tab\there"), "a control character"),
        (keyed("/actions/echo/block", "{}", "k-2"), "a blocking run"),
    ] {
        app.call(conn(5), Side::Api, req);
        let got = answers_after_turns(&mut app, 1);
        assert_eq!(got[0].1, 400, "{what}: {got:?}");
    }
}

/// Every run is counted; past the first successes of a second, one
/// success in `sample_successes` keeps its record, and every failure keeps
/// one, with its arguments.
#[test]
fn successes_are_sampled_failures_recorded_and_every_run_counted() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut app = app(Arc::clone(&store), "Nulldb {}\nInvocations { sample_successes = 50 }");
    assert_eq!(crate::config::Config::default().invocations.sample_successes, 1000, "the default");
    let (runs, failures) = (1000, 5);
    for i in 0..runs + failures {
        let body = if i % 200 == 199 { format!(r#"{{"fail":"no {i}"}}"#) } else { format!(r#"{{"x":{i}}}"#) };
        app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo/block", &body));
        let got = answers_after_turns(&mut app, 1);
        assert_eq!(got.len(), 1);
        app.end_turn(Instant::now());
    }
    crate::housekeeping::flush_counts(&mut app.st);
    turn_while(&mut app, |app| app.st.records.unsaved() || app.st.runs.unsaved());
    let records = store.list_invocations(Some("echo"), 10_000).unwrap();
    let failed: Vec<_> = records.iter().filter(|r| r.status == InvocationStatus::Failed).collect();
    assert_eq!(failed.len(), failures, "every failure is recorded");
    for r in &failed {
        let args = r.args.to_value().unwrap();
        let fail = args["fail"].as_str().expect("the failure's arguments");
        assert!(r.error.as_ref().unwrap().message.contains(fail), "{r:?}");
        assert!(!r.id.is_empty() && r.started.is_some() && r.finished.is_some());
    }
    // The first run (before the action had a count), the free ones of the
    // second (more if the test crossed into another second), then one in 50.
    let kept = records.len() - failures;
    let sampled = (runs - 1 - FREE_RECORDS as usize) / 50;
    assert!((1 + FREE_RECORDS as usize + sampled..=runs / 10).contains(&kept), "{kept} successes recorded");
    let counts = store.run_counts("echo").unwrap();
    assert_eq!(counts.of(RunKind::Blocking), Outcomes { succeeded: runs as u64, failed: failures as u64 });
    // GET /actions/:name shows them.
    app.call(conn(2), Side::Api, request(Method::Get, "/actions/echo", ""));
    let (_, status, body) = answers_after_turns(&mut app, 1).remove(0);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["runs"]["blocking"], serde_json::json!({"succeeded": runs, "failed": failures}), "{body}");
    assert_eq!(v["runs"]["async"], serde_json::json!({"succeeded": 0, "failed": 0}), "{body}");
}

/// Submits `n` invocations of `echo` in one commit (after a first one that
/// makes the action cached), and turns the loop until all `n + 1` records
/// are finished; returns them.
fn submit_burst(app: &mut App, store: &Gated, n: usize) -> Vec<InvocationRecord> {
    app.call(conn(0), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    assert_eq!(answers_after_turns(app, 1).len(), 1);
    store.set(true);
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    app.end_turn(Instant::now());
    for i in 0..n {
        app.call(conn(2 + i), Side::Api, request(Method::Post, "/actions/echo", &format!(r#"{{"i":{i}}}"#)));
    }
    app.end_turn(Instant::now());
    store.set(false);
    assert_eq!(answers_after_turns(app, n + 1).len(), n + 1);
    let start = Instant::now();
    loop {
        app.end_turn(Instant::now());
        let records = store.list_invocations(Some("echo"), 100).unwrap();
        let done = records.iter().filter(|r| r.status.is_terminal()).count();
        if done == n + 2 || start.elapsed() > Duration::from_secs(10) {
            return records;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A commit of submits claims for its worker up to `concurrency` more
/// than it runs: they wait in the ready list and run as slots free, each
/// once, with no claim through the store.
#[test]
fn submits_a_worker_claims_for_itself_run_without_a_claim() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}\nInvocations { concurrency = 2 }");
    let records = submit_burst(&mut app, &store, 3);
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.status == InvocationStatus::Succeeded && r.attempts == 1), "{records:?}");
    assert_eq!(*store.claimed.lock().unwrap(), 0, "no claim took any");
    assert_eq!(*store.submit_writes.lock().unwrap(), vec![1, 1, 3], "three commits, and no queued record put back");
}

/// One whose lease would leave too little to spare after its longest run
/// goes back to the queue, and is claimed and run once from there.
#[test]
fn a_ready_submit_whose_lease_runs_short_goes_back_to_the_queue() {
    let store = Arc::new(Gated::default());
    // A lease 1 ms longer than the longest run leaves nothing to spare
    // once a commit took 5 ms.
    let config = "Nulldb {}\nLimits { timeout = 1000, max_timeout = 1000 }\n\
                  Invocations { concurrency = 2, lease = 1001 }";
    *store.enqueue_takes.lock().unwrap() = Duration::from_millis(5);
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, config);
    let records = submit_burst(&mut app, &store, 3);
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.status == InvocationStatus::Succeeded && r.attempts == 1), "{records:?}");
    assert_eq!(*store.claimed.lock().unwrap(), 5, "every one was claimed from the queue");
}

/// The submits read in one turn of the loop go into one commit, made
/// at the end of that turn: the first of them does not leave alone.
#[test]
fn the_submits_of_one_turn_share_one_commit() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}");
    warm_echo(&mut app);
    for i in 1..=10 {
        app.call(conn(i), Side::Api, request(Method::Post, "/actions/echo", &format!(r#"{{"i":{i}}}"#)));
    }
    assert!(store.submit_writes.lock().unwrap().is_empty(), "a commit before the turn ended");
    let got = answers_after_turns(&mut app, 10);
    assert!(got.len() == 10 && got.iter().all(|(_, status, _)| *status == 202), "{got:?}");
    assert_eq!(*store.submit_writes.lock().unwrap(), vec![10], "one commit for the turn's submits");
}

/// A submit read after the turn's commit point (on a connection the
/// reactor serves again after its answer) makes the next turn come at
/// once: it does not wait for a tick with nothing to wake the loop.
#[test]
fn a_submit_waiting_for_its_commit_wakes_the_loop() {
    let store = Arc::new(Gated::default());
    // Submits that do not start before their commit: only the commit
    // waits.
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}\nInvocations { start_before_commit = false }");
    warm_echo(&mut app);
    turns(&mut app, 5);
    assert!(!matches!(app.wake(), Wake::Now), "nothing to do");
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    assert!(matches!(app.wake(), Wake::Now), "a submit waits for a commit");
    app.end_turn(Instant::now());
    let got = answers_after_turns(&mut app, 1);
    assert_eq!(got[0].1, 202);
}

/// Makes `echo` cached and warm (a blocking run), so that submits of it
/// can start before their commit.
fn warm_echo(app: &mut App) {
    app.call(conn(0), Side::Api, request(Method::Post, "/actions/echo/block", "{}"));
    assert_eq!(answers_after_turns(app, 1)[0].1, 200);
    // Its record written (it lingers a few milliseconds first).
    turn_while(app, |app| app.st.records.unsaved());
}

/// A submit of a cached action with room to run starts before its commit,
/// and that commit writes its finished record: one write per invocation,
/// no claim, no second write; its client gets the 202 after the commit.
/// One that fails is written failed the same way.
#[test]
fn a_submit_that_can_run_at_once_is_written_once_finished() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}\nInvocations { concurrency = 4 }");
    warm_echo(&mut app);
    store.set(true);
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo", r#"{"i":1}"#));
    app.end_turn(Instant::now());
    for i in 2..=20 {
        let body = if i == 7 { r#"{"fail":"seven"}"#.to_string() } else { format!(r#"{{"i":{i}}}"#) };
        app.call(conn(i), Side::Api, request(Method::Post, "/actions/echo", &body));
        app.end_turn(Instant::now());
    }
    std::thread::sleep(Duration::from_millis(20));
    app.end_turn(Instant::now());
    assert!(answers(&mut app).is_empty(), "a 202 before its commit");
    store.set(false);
    let got = answers_after_turns(&mut app, 20);
    assert!(got.len() == 20 && got.iter().all(|(_, status, _)| *status == 202), "{got:?}");
    // Nothing more to write: the records went with their submits.
    turns(&mut app, 20);
    assert!(!app.st.records.unsaved());
    assert_eq!(*store.submit_writes.lock().unwrap(), vec![1, 19], "two commits");
    let put = store.put.lock().unwrap();
    let asynchronous = put.iter().filter(|r| r.is_async).count();
    assert!(put.len() == 1 && asynchronous == 0, "{} records put, {asynchronous} of submits", put.len());
    drop(put);
    assert_eq!(*store.claimed.lock().unwrap(), 0);
    let records = store.list_invocations(Some("echo"), 100).unwrap();
    let async_records: Vec<_> = records.iter().filter(|r| r.is_async).collect();
    assert_eq!(async_records.len(), 20);
    for r in &async_records {
        assert_eq!((r.attempts, r.owner.as_deref(), r.lease_until), (1, None, None), "{r:?}");
        assert!(r.started.is_some() && r.finished.is_some() && r.duration_ms.is_some(), "{r:?}");
        let args = r.args.to_value().unwrap();
        if args.get("fail").is_some() {
            assert_eq!(r.status, InvocationStatus::Failed);
            assert!(r.error.as_ref().unwrap().message.contains("seven"), "{r:?}");
        } else {
            assert_eq!((r.status, r.result.as_ref()), (InvocationStatus::Succeeded, Some(&args)), "{r:?}");
        }
    }
    crate::housekeeping::flush_counts(&mut app.st);
    turn_while(&mut app, |app| app.st.runs.unsaved());
    assert_eq!(store.run_counts("echo").unwrap().of(RunKind::Async), Outcomes { succeeded: 19, failed: 1 });
}

/// The record of a submit that ran before its commit is answered from
/// memory once that commit is over: a client asking for the result at
/// once waits for no store call (the answer is there when the call
/// returns, with no turn of the loop for a pool job).
#[test]
fn a_result_asked_for_right_after_its_commit_is_answered_from_memory() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}\nInvocations { concurrency = 4 }");
    warm_echo(&mut app);
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo", r#"{"i": 1}"#));
    let got = answers_after_turns(&mut app, 1);
    assert_eq!(got[0].1, 202, "{got:?}");
    let id = invocation_id(&got[0].2);
    app.call(conn(2), Side::Api, request(Method::Get, &format!("/invocation/{id}"), ""));
    assert_eq!(answers(&mut app), [(conn(2), 200, r#"{"i":1}"#.to_string())]);
    // The store has it too, with its arguments as they were given.
    let stored = store.get_invocation(&id).unwrap().unwrap();
    assert_eq!((stored.status, stored.args.as_str()), (InvocationStatus::Succeeded, r#"{"i": 1}"#));
}

/// A submit that started before its commit, whose commit fails: its
/// client gets the error, not a 202, and no record of it is stored,
/// whether its run ended before the commit or during it.
#[test]
fn an_early_submit_whose_commit_fails_leaves_no_record() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}");
    warm_echo(&mut app);
    *store.failing.lock().unwrap() = true;
    for i in 1..=5 {
        app.call(conn(i), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    }
    let got = answers_after_turns(&mut app, 5);
    assert!(got.len() == 5 && got.iter().all(|(_, status, _)| *status == 503), "{got:?}");
    turns(&mut app, 20);
    assert!(!app.st.records.unsaved());
    assert!(store.list_invocations(None, 10).unwrap().iter().all(|r| !r.is_async), "no async record");
    assert!(app.st.submits.is_settled(), "nothing left behind");
    *store.failing.lock().unwrap() = false;
    app.call(conn(9), Side::Api, request(Method::Post, "/actions/echo", "{}"));
    assert_eq!(answers_after_turns(&mut app, 1)[0].1, 202);
}

/// `Invocations { start_before_commit = false }`: a submit never starts
/// before its commit, which stores it claimed; its end is a second write.
#[test]
fn start_before_commit_off_runs_each_submit_after_its_commit() {
    let store = Arc::new(Gated::default());
    let config = "Nulldb {}\nInvocations { start_before_commit = false }";
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, config);
    assert!(crate::config::Config::default().invocations.start_before_commit, "on by default");
    warm_echo(&mut app);
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/echo", r#"{"i":1}"#));
    assert_eq!(answers_after_turns(&mut app, 1)[0].1, 202);
    turn_while(&mut app, |_| store.put.lock().unwrap().iter().all(|r| !r.is_async));
    let put = store.put.lock().unwrap();
    let ended: Vec<_> = put.iter().filter(|r| r.is_async).collect();
    assert!(ended.len() == 1 && ended[0].status == InvocationStatus::Succeeded, "{put:?}");
}

/// A submit that started before its commit and outlives its first slice:
/// its commit stores it running under the worker's lease; when it ends
/// while that commit is in flight, its final record is written once the
/// commit ends.
#[test]
fn an_early_run_that_outlives_its_commit_is_written_after_it() {
    let store = Arc::new(Gated::default());
    let mut app = app(Arc::clone(&store) as Arc<dyn Store>, "Nulldb {}");
    let mut rec = store.get_action("echo").unwrap().unwrap();
    rec.name = "slow".into();
    let budget = crate::exec::budget_for(&rec, &app.st.cfg.limits);
    let code = crate::sandbox::compile(
        "slow",
        "function main(a) local n = 0 for i = 1, 3e6 do n = n + i end return n end",
        budget,
    )
    .unwrap();
    (rec.bytecode, rec.checksum) = (code.bytecode, code.checksum);
    store.create_action(&rec).unwrap();
    app.call(conn(0), Side::Api, request(Method::Post, "/actions/slow/block", "{}"));
    assert_eq!(answers_after_turns(&mut app, 1)[0].1, 200);
    store.set(true);
    app.call(conn(1), Side::Api, request(Method::Post, "/actions/slow", "{}"));
    assert!(app.st.exec.runs.queued() > 0, "the run outlived its first slice");
    // The run ends while its commit waits at the gate.
    let start = Instant::now();
    while app.st.exec.runs.queued() > 0 && start.elapsed() < Duration::from_secs(10) {
        app.end_turn(Instant::now());
    }
    assert!(answers(&mut app).is_empty(), "a 202 before its commit");
    store.set(false);
    let got = answers_after_turns(&mut app, 1);
    assert_eq!(got[0].1, 202, "{got:?}");
    let id = invocation_id(&got[0].2);
    turn_while(&mut app, |_| store.put.lock().unwrap().iter().all(|r| r.id != id));
    let enqueued: Vec<_> = store.enqueued.lock().unwrap().iter().filter(|r| r.id == id).cloned().collect();
    assert_eq!(enqueued.len(), 1);
    assert_eq!(
        (enqueued[0].status, enqueued[0].owner.as_deref()),
        (InvocationStatus::Running, Some(app.st.owner.as_str()))
    );
    assert!(enqueued[0].lease_until.is_some() && enqueued[0].args.to_value().unwrap().is_object());
    let stored = store.get_invocation(&id).unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.result),
        (InvocationStatus::Succeeded, Some(serde_json::json!(4_500_001_500_000i64)))
    );
    assert_eq!(stored.attempts, 1);
}
