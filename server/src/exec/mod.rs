//! The executor: a cache of compiled actions with their warm instances, and
//! the invocations running on this reactor, time-sliced round robin.
//!
//! An invocation that waits (for a plugin call, an `invoke`d action or a
//! `require`d library, see [`compose`]) is parked: it leaves the run queue
//! until its answer comes, and its deadline stays in a heap so that it
//! fails on time however late the answer is.

mod compose;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sl_store::{ActionRecord, InvocationError, InvocationRecord, InvocationStatus, StoreError};
use slab::Slab;
use tracing::{debug, warn};

use crate::config::LimitsConfig;
use crate::http::Response;
use crate::reactor::{now_ms, ConnRef, Server};
use crate::sandbox::{
    Args, ArgsText, Budget, Compiled, Instance, InvokeError, LimitKind, Outcome, PluginCall, Run, Step,
};

/// Who gets the result of an invocation.
#[derive(Clone, Copy)]
pub(crate) enum Reply {
    /// A client waiting on `/block`.
    Conn(ConnRef),
    /// A client of a route (see [`crate::web`]).
    Web(ConnRef),
    /// An asynchronous invocation: its record is completed and stored.
    Async,
    /// An invocation parked in `invoke()`: run `key` of this executor, if
    /// its id is still `id`.
    Caller { key: usize, id: u64 },
}

/// An invocation waiting to start.
pub(crate) struct Job {
    pub record: InvocationRecord,
    pub reply: Reply,
    /// How many `invoke()` calls led to it (0 for a request).
    pub depth: u8,
    /// When it must end at the latest, whatever its own timeout says (its
    /// caller's deadline).
    pub deadline: Option<Instant>,
    /// The arguments as parsed JSON text, for a job whose record does not
    /// keep them: the run pushes them straight into Lua. `record.args` is
    /// then unused.
    pub args_text: Option<ArgsText>,
}

impl Job {
    /// A job started by a request or the queue.
    pub fn new(record: InvocationRecord, reply: Reply) -> Self {
        Self { record, reply, depth: 0, deadline: None, args_text: None }
    }

    /// The invocation's id. An unrecorded blocking run has none until
    /// something names it (a log line, the record of an action it
    /// invokes): making one costs more than the rest of its bookkeeping.
    pub fn id(&mut self) -> &str {
        if self.record.id.is_empty() {
            self.record.id = crate::reactor::new_invocation_id();
        }
        &self.record.id
    }

    /// Its record, leaving an empty one (no allocation) in its place.
    fn take_record(&mut self) -> InvocationRecord {
        let empty = InvocationRecord::queued(String::new(), String::new(), serde_json::Value::Null, false, 0);
        std::mem::replace(&mut self.record, empty)
    }

    /// Whether its record is stored when it ends: always for asynchronous
    /// invocations, for the others with `Invocations.record_blocking`.
    pub fn is_recorded(&self, record_blocking: bool) -> bool {
        matches!(self.reply, Reply::Async) || record_blocking
    }
}

struct Ready {
    /// When it last started an invocation (the executor's clock).
    last_used: u64,
    version: i64,
    /// Unique for the life of the reactor: instances of an older
    /// generation of the same action are not kept.
    generation: u64,
    /// Library actions its instances have `require`d, with the versions
    /// they loaded: when one of them changes, so does this action.
    deps: HashMap<String, i64>,
    code: Rc<Compiled>,
    budget: Budget,
    idle: Vec<Instance>,
}

enum Slot {
    /// The action is being fetched; `stale` if it changed meanwhile.
    Loading {
        pending: Vec<Job>,
        /// Runs parked in `require` of this action: (slab key, run id).
        requirers: Vec<(usize, u64)>,
        stale: bool,
    },
    Ready(Ready),
}

struct Running {
    run: Run,
    job: Job,
    /// The generation of the action's cache entry it started from.
    generation: u64,
    /// Unique for the life of the reactor (slab keys are reused).
    id: u64,
    /// Waiting for a plugin call, an invoked action or a library.
    parked: bool,
}

/// Actions and running invocations of one reactor.
#[derive(Default)]
pub struct Executor {
    /// Looked up several times a request: hashed with foldhash (seeded
    /// per process) rather than SipHash.
    actions: HashMap<String, Slot, foldhash::fast::RandomState>,
    runs: Slab<Running>,
    runq: VecDeque<usize>,
    next_id: u64,
    /// Jobs waiting for their action to load.
    loading_jobs: usize,
    /// Deadlines of parked runs: (deadline, slab key, run id).
    parked: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Instances of failed invocations, dropped one a turn of the loop
    /// (see [`Executor::bury_one`]).
    graveyard: Vec<Instance>,
}

impl Executor {
    /// Drops one discarded instance. Called once a turn of the reactor's
    /// loop, after the sockets were served, so that the time a big state
    /// takes to free is not added to the slice that failed it.
    pub fn bury_one(&mut self) {
        drop(self.graveyard.pop());
    }

    /// Whether discarded instances wait to be dropped.
    pub fn has_graves(&self) -> bool {
        !self.graveyard.is_empty()
    }

    /// Whether some invocation waits for a time slice.
    pub fn has_runnable(&self) -> bool {
        !self.runq.is_empty()
    }

    /// The earliest deadline of a run parked on a plugin call.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.parked.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Invocations running or waiting to start.
    pub(crate) fn busy(&self) -> usize {
        self.runs.len() + self.loading_jobs
    }

    /// Whether any action is cached.
    pub(crate) fn has_cached(&self) -> bool {
        self.actions.values().any(|s| matches!(s, Slot::Ready(_)))
    }

    /// Cached actions whose version differs from `versions` (the store's
    /// now) or that are no longer there.
    pub(crate) fn stale_actions(&self, versions: &HashMap<String, i64>) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Ready(r)
                    if versions.get(name).is_none_or(|v| *v > r.version)
                        || r.deps.iter().any(|(dep, v)| versions.get(dep) != Some(v)) =>
                {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Whether the action is cached (so it is known to exist).
    pub(crate) fn is_cached(&self, name: &str) -> bool {
        matches!(self.actions.get(name), Some(Slot::Ready(_)))
    }
}

/// Parks `running` (slab key `key`) until its answer comes or its deadline
/// passes; returns its run id.
fn park(heap: &mut BinaryHeap<Reverse<(Instant, usize, u64)>>, key: usize, running: &mut Running) -> u64 {
    running.parked = true;
    heap.push(Reverse((running.run.deadline(), key, running.id)));
    running.id
}

/// The error an `invoke()` raises in its caller when the callee failed.
fn callee_failed(action: &str, kind: &str, message: &str) -> String {
    format!("action '{action}' failed ({kind}): {message}")
}

/// Limits in force for an action: its own where set, else the defaults.
pub(crate) fn budget_for(rec: &ActionRecord, limits: &LimitsConfig) -> Budget {
    let pick = |own: u64, default: u64| if own == 0 { default } else { own };
    Budget {
        memory: (pick(rec.limits.maxmem, limits.maxmem) as usize).saturating_mul(1024),
        timeout: Duration::from_millis(pick(rec.limits.timeout, limits.timeout)),
        instructions: pick(rec.limits.instructions, limits.instructions),
    }
}

/// The HTTP response for an invocation that failed (a successful one is
/// answered by [`Server::complete_json`]).
pub(crate) fn error_response(e: &InvokeError) -> Response {
    Response::error(error_status(e.kind()), e.kind(), &e.to_string())
}

/// Status code of an error kind (see design.md).
pub(crate) fn error_status(kind: &str) -> u16 {
    match kind {
        "action" | "bad_request" | "compile" | "library" => 400,
        "not_found" => 404,
        "conflict" => 409,
        "unavailable" => 503,
        _ => 500,
    }
}

/// The response for a stored invocation record.
pub(crate) fn record_response(rec: &InvocationRecord) -> Response {
    match rec.status {
        InvocationStatus::Succeeded => {
            let v = rec.result.clone().unwrap_or(serde_json::Value::Null);
            Response::json(200, serde_json::to_vec(&v).unwrap_or_default())
        }
        InvocationStatus::Failed => {
            let (kind, message) =
                rec.error.as_ref().map(|e| (e.kind.as_str(), e.message.as_str())).unwrap_or(("runtime", ""));
            Response::error(error_status(kind), kind, message)
        }
        InvocationStatus::Queued | InvocationStatus::Running => {
            let body = serde_json::json!({"id": rec.id, "status": rec.status.as_str(), "action": rec.action});
            Response::json(202, body.to_string().into_bytes())
        }
    }
}

impl Server {
    /// Queues `job` until its action is loaded (and starts loading it).
    fn wait_for_action(&mut self, job: Job) {
        match self.exec.actions.get_mut(&job.record.action) {
            Some(Slot::Ready(_)) => self.invoke(job),
            Some(Slot::Loading { pending, .. }) => {
                pending.push(job);
                self.exec.loading_jobs += 1;
            }
            None => {
                let name = job.record.action.clone();
                self.exec
                    .actions
                    .insert(name.clone(), Slot::Loading { pending: vec![job], requirers: Vec::new(), stale: false });
                self.exec.loading_jobs += 1;
                self.load(name);
            }
        }
    }

    fn load(&mut self, name: String) {
        let store = Arc::clone(&self.store);
        self.pool.spawn(move || {
            let result = store.get_action(&name).map(|found| {
                found.map(|rec| {
                    let code = Compiled::verified(rec.bytecode.clone(), &rec.checksum);
                    (rec, code)
                })
            });
            move |s: &mut Server| s.loaded(name, result)
        });
    }

    #[allow(clippy::type_complexity)]
    fn loaded(
        &mut self,
        name: String,
        result: Result<Option<(ActionRecord, Result<Compiled, InvokeError>)>, StoreError>,
    ) {
        let Some(Slot::Loading { pending, requirers, stale }) = self.exec.actions.remove(&name) else { return };
        self.exec.loading_jobs = self.exec.loading_jobs.saturating_sub(pending.len());
        if stale {
            // Changed while we fetched it: fetch again, keep the waiters.
            self.exec.loading_jobs += pending.len();
            self.exec.actions.insert(name.clone(), Slot::Loading { pending, requirers, stale: false });
            self.load(name);
            return;
        }
        let (kind, message) = match result {
            Ok(Some((rec, Ok(code)))) => {
                self.exec.next_id += 1;
                let ready = Ready {
                    last_used: 0,
                    version: rec.version,
                    generation: self.exec.next_id,
                    deps: HashMap::new(),
                    code: Rc::new(code),
                    budget: budget_for(&rec, &self.cfg.limits),
                    idle: Vec::new(),
                };
                let (code, version) = (Rc::clone(&ready.code), ready.version);
                self.exec.actions.insert(name.clone(), Slot::Ready(ready));
                for (key, id) in requirers {
                    self.library_ready(key, id, &name, &code, version);
                }
                for job in pending {
                    self.invoke(job);
                }
                return;
            }
            Ok(Some((_, Err(e)))) => ("internal", e.to_string()),
            Ok(None) => ("not_found", format!("no action named '{name}'")),
            Err(e) => ("unavailable", e.to_string()),
        };
        for (key, id) in requirers {
            let message = match kind {
                "not_found" => format!("require: no library action named '{name}'"),
                _ => format!("require '{name}': {message}"),
            };
            self.resume_parked(key, id, Err(message));
        }
        for job in pending {
            self.fail_job(job, kind, &message);
        }
    }

    /// Forgets a cached action, and the actions that `require`d it, so
    /// that the next invocation fetches them again.
    pub(crate) fn invalidate(&mut self, name: &str) {
        match self.exec.actions.get_mut(name) {
            Some(Slot::Loading { stale, .. }) => *stale = true,
            Some(Slot::Ready(_)) => {
                self.exec.actions.remove(name);
            }
            None => {}
        }
        let dependents: Vec<String> = self
            .exec
            .actions
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Ready(r) if r.deps.contains_key(name)))
            .map(|(n, _)| n.clone())
            .collect();
        for d in dependents {
            self.exec.actions.remove(&d);
        }
    }

    /// Starts an invocation: at once if the action is cached (in a warm
    /// instance if one is idle), else after fetching it from the store.
    pub(crate) fn invoke(&mut self, mut job: Job) {
        self.exec.next_id += 1;
        let now = self.exec.next_id;
        let Some(Slot::Ready(ready)) = self.exec.actions.get_mut(&job.record.action) else {
            return self.wait_for_action(job);
        };
        ready.last_used = now;
        let (version, generation, mut budget) = (ready.version, ready.generation, ready.budget);
        let instance = match ready.idle.pop() {
            Some(i) => i,
            None => {
                // Making room may drop other actions' idle instances (never
                // this action's entry), so the entry is looked up again.
                self.evict_idle();
                let Some(Slot::Ready(ready)) = self.exec.actions.get_mut(&job.record.action) else {
                    return self.wait_for_action(job);
                };
                match Instance::from_bytecode(&job.record.action, &ready.code.bytecode) {
                    Ok(i) => i,
                    Err(e) => return self.fail_job(job, e.kind(), &e.to_string()),
                }
            }
        };
        if let Some(deadline) = job.deadline {
            budget.timeout = budget.timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        job.record.version = version;
        job.record.status = InvocationStatus::Running;
        // The record keeps the arguments and times only if it will be stored.
        let stored = job.is_recorded(self.cfg.invocations.record_blocking);
        if stored {
            job.record.started = Some(now_ms());
        }
        let args = match job.args_text.take() {
            Some(text) => Args::Text(text),
            None if stored => Args::Value(job.record.args.clone()),
            None => Args::Value(std::mem::take(&mut job.record.args)),
        };
        let mut run = instance.start(args, budget);
        // The first slice at once: most invocations end within it and hand
        // their instance back before the next request takes one, so a burst
        // of requests for an action shares a few warm instances instead of
        // each making its own. One that ends there never enters the slab
        // (the run and the job are not moved: together they are 800 bytes).
        match run.step(self.cfg.server.time_slice) {
            Step::Done(outcome) => self.finished(&mut run, &mut job, generation, outcome),
            step => {
                self.exec.next_id += 1;
                let id = self.exec.next_id;
                let key = self.exec.runs.insert(Running { run, job, generation, id, parked: false });
                self.stepped(key, step);
            }
        }
    }

    /// Drops idle instances, least recently used actions first, while the
    /// Lua states of this reactor hold more than three quarters of its
    /// share of `Limits.total_memory`.
    fn evict_idle(&mut self) {
        let budget = crate::sandbox::thread_budget();
        if budget == 0 || crate::sandbox::thread_total() <= budget / 4 * 3 {
            return;
        }
        let mut order: Vec<(u64, String)> = self
            .exec
            .actions
            .iter()
            .filter_map(|(n, s)| match s {
                Slot::Ready(r) if !r.idle.is_empty() => Some((r.last_used, n.clone())),
                _ => None,
            })
            .collect();
        order.sort();
        let mut dropped = 0;
        for (_, name) in order {
            if let Some(Slot::Ready(r)) = self.exec.actions.get_mut(&name) {
                while crate::sandbox::thread_total() > budget / 2 {
                    match r.idle.pop() {
                        Some(i) => {
                            drop(i);
                            dropped += 1;
                        }
                        None => break,
                    }
                }
            }
            if crate::sandbox::thread_total() <= budget / 2 {
                break;
            }
        }
        if dropped > 0 {
            debug!(dropped, "evicted idle instances to stay within Limits.total_memory");
        }
    }

    /// Runs invocations of the run queue, round robin, for about one time
    /// slice in all, then returns to the sockets.
    ///
    /// An invocation is in the queue because it outlived its first slice
    /// (or got an answer it waited for); requests that just arrived run
    /// their first slice at once, in [`Server::invoke`]. So however many
    /// long invocations run, a request waits at most about one slice per
    /// turn of the loop for them, not one slice for each of them: long
    /// invocations share half the core when requests keep coming, all of
    /// it when none do (the loop turns without waiting while the queue is
    /// not empty).
    pub(crate) fn run_slices(&mut self) {
        // Most turns have nothing queued: no clock read for them.
        if self.exec.runq.is_empty() {
            return;
        }
        let budget = self.cfg.server.time_slice;
        let start = Instant::now();
        for _ in 0..self.exec.runq.len() {
            let Some(key) = self.exec.runq.pop_front() else { break };
            self.slice(key);
            if start.elapsed() >= budget {
                break;
            }
        }
    }

    /// Runs invocation `key` for one time slice; queues it again if it is
    /// not done.
    fn slice(&mut self, key: usize) {
        let slice = self.cfg.server.time_slice;
        let Some(running) = self.exec.runs.get_mut(key) else { return };
        let step = running.run.step(slice);
        self.stepped(key, step);
    }

    /// Acts on what a slice of run `key` (in the slab) ended with.
    fn stepped(&mut self, key: usize, step: Step) {
        match step {
            Step::Yielded => self.exec.runq.push_back(key),
            Step::Call(call) => self.plugin_call(key, call),
            Step::Invoke(call) => self.invoke_from(key, call),
            Step::Require(name) => self.require(key, name),
            Step::Done(outcome) => {
                let mut r = self.exec.runs.remove(key);
                self.finished(&mut r.run, &mut r.job, r.generation, outcome);
            }
        }
    }

    /// Parks run `key` while a plugin call runs on the plugin pool.
    fn plugin_call(&mut self, key: usize, call: PluginCall) {
        let Some(running) = self.exec.runs.get_mut(key) else { return };
        let Some(plugin) = self.plugins.get(&call.plugin).cloned() else {
            let names = self.plugins.names();
            let loaded = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            running.run.deliver(Err(format!("unknown plugin '{}' (loaded plugins: {loaded})", call.plugin)));
            self.exec.runq.push_back(key);
            return;
        };
        let id = park(&mut self.exec.parked, key, running);
        let payload = serde_json::to_vec(&call.payload).unwrap_or_else(|_| b"null".to_vec());
        self.plugin_pool.spawn(move || {
            let result = plugin.call(&call.action, &payload).and_then(|bytes| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| format!("plugin '{}' returned invalid JSON: {e}", call.plugin))
            });
            move |s: &mut Server| s.plugin_returned(key, id, result)
        });
    }

    fn plugin_returned(&mut self, key: usize, id: u64, result: Result<serde_json::Value, String>) {
        self.resume_parked(key, id, result);
    }

    /// Resumes parked run `key` with `result`, if it is still run `id`
    /// (else it ended meanwhile, on its deadline, and the late result is
    /// dropped).
    fn resume_parked(&mut self, key: usize, id: u64, result: Result<serde_json::Value, String>) {
        match self.exec.runs.get_mut(key) {
            Some(r) if r.id == id && r.parked => {
                r.parked = false;
                r.run.deliver(result);
                self.exec.runq.push_back(key);
            }
            _ => debug!(key, id, "dropping the answer to an invocation that ended"),
        }
    }

    /// Fails parked runs whose deadline passed, without waiting for their
    /// plugin calls.
    pub(crate) fn expire_parked(&mut self, now: Instant) {
        while let Some(Reverse((deadline, key, id))) = self.exec.parked.peek().copied() {
            if deadline > now {
                break;
            }
            self.exec.parked.pop();
            let due = matches!(self.exec.runs.get(key), Some(r) if r.id == id && r.parked);
            if due {
                let mut r = self.exec.runs.remove(key);
                let outcome = r.run.cancel(LimitKind::Timeout);
                self.finished(&mut r.run, &mut r.job, r.generation, outcome);
            }
        }
    }

    /// Ends an invocation: its instance back to the idle ones (or to the
    /// graveyard), the answer to whoever waits, the record to the store if
    /// it is kept. `generation` is that of the cache entry it started from.
    fn finished(&mut self, run: &mut Run, job: &mut Job, generation: u64, outcome: Outcome) {
        if let Some(instance) = run.take_instance(&outcome) {
            if let Some(Slot::Ready(ready)) = self.exec.actions.get_mut(&job.record.action) {
                if ready.generation == generation && ready.idle.len() < self.cfg.limits.warm_instances {
                    ready.idle.push(instance);
                }
            }
        } else if let Some(dead) = run.discard() {
            self.exec.graveyard.push(dead);
        }
        if let Err(InvokeError::Limit(kind)) = &outcome.result {
            let what = match kind {
                LimitKind::Memory => "memory",
                LimitKind::Instructions => "instruction",
                LimitKind::Timeout | LimitKind::Stall => "time",
            };
            let id = job.id().to_owned();
            let name = &job.record.action;
            warn!(id = %id, "Action '{name}' aborted after violating {what} constraints");
        }
        let name = &job.record.action;
        debug!(action = %name, duration = ?outcome.duration, ok = outcome.result.is_ok(), "invocation finished");
        let stored = job.is_recorded(self.cfg.invocations.record_blocking);
        // The answer first, from the outcome; the record after, and only if
        // it is kept (it takes the result instead of a copy).
        let reply = job.reply;
        let result = match reply {
            Reply::Conn(cref) => {
                match &outcome.result {
                    Ok(v) => self.complete_json(cref, v),
                    Err(e) => self.complete(cref, error_response(e)),
                }
                outcome.result
            }
            Reply::Web(cref) => {
                let resp = crate::web::route_response(&outcome.result, &job.record.id, self.cfg.server.debug);
                self.complete(cref, resp);
                outcome.result
            }
            Reply::Caller { key, id } => {
                let answer = match &outcome.result {
                    Ok(v) => Ok(v.clone()),
                    Err(e) => Err(callee_failed(&job.record.action, e.kind(), &e.to_string())),
                };
                self.resume_parked(key, id, answer);
                outcome.result
            }
            Reply::Async => outcome.result,
        };
        if !stored {
            return;
        }
        let rec = &mut job.record;
        rec.finished = Some(now_ms());
        rec.duration_ms = Some(outcome.duration.as_millis() as u64);
        rec.instructions = Some(outcome.instructions);
        rec.peak_memory = Some(outcome.peak_memory);
        rec.logs = outcome.logs;
        match result {
            Ok(v) => {
                rec.status = InvocationStatus::Succeeded;
                rec.result = Some(v);
            }
            Err(e) => {
                rec.status = InvocationStatus::Failed;
                rec.error = Some(InvocationError { kind: e.kind().into(), message: e.to_string() });
            }
        }
        rec.owner = None;
        rec.lease_until = None;
        let rec = job.take_record();
        match reply {
            Reply::Async => self.async_done(rec),
            // Its client has the id (`X-SL-Invocation`) and may ask for the
            // record at once.
            Reply::Web(_) => self.record_known(rec),
            _ => self.record(rec),
        }
    }

    /// Ends a job that could not start.
    pub(crate) fn fail_job(&mut self, mut job: Job, kind: &str, message: &str) {
        match job.reply {
            Reply::Conn(cref) => self.complete(cref, Response::error(error_status(kind), kind, message)),
            Reply::Web(cref) => {
                let resp = crate::web::route_failure(kind, message, &job.record.id, self.cfg.server.debug);
                self.complete(cref, resp)
            }
            Reply::Caller { key, id } => {
                let result = Err(callee_failed(&job.record.action, kind, message));
                self.resume_parked(key, id, result)
            }
            Reply::Async => {
                let now = now_ms();
                job.record.status = InvocationStatus::Failed;
                job.record.error = Some(InvocationError { kind: kind.into(), message: message.into() });
                job.record.finished = Some(now);
                job.record.owner = None;
                job.record.lease_until = None;
                self.async_done(job.record);
            }
        }
    }

    fn async_done(&mut self, rec: InvocationRecord) {
        self.dispatch.running = self.dispatch.running.saturating_sub(1);
        if let Some(waiters) = self.waiters.remove(&rec.id) {
            let resp = record_response(&rec);
            for w in waiters {
                self.complete(w.conn, resp.clone());
            }
        }
        self.record_known(rec);
        self.kick_dispatch();
    }

    /// Stores the record of an invocation whose id its client knows, and
    /// serves it from memory until the store has it.
    fn record_known(&mut self, rec: InvocationRecord) {
        self.recent_done.insert(rec.id.clone(), rec.clone());
        self.record(rec);
    }

    /// Claims queued invocations from the store while this server has room.
    pub(crate) fn kick_dispatch(&mut self) {
        if self.dispatch.claiming {
            self.dispatch.again = true;
            return;
        }
        let room = self.cfg.invocations.concurrency.saturating_sub(self.dispatch.running);
        if room == 0 {
            return;
        }
        self.dispatch.claiming = true;
        self.dispatch.again = false;
        let store = Arc::clone(&self.store);
        let owner = self.owner.clone();
        let lease = self.cfg.lease_ms() as i64;
        self.pool.spawn(move || {
            let r = store.claim_invocations(&owner, room, now_ms(), lease);
            move |s: &mut Server| s.claimed(r, room)
        });
    }

    fn claimed(&mut self, result: Result<Vec<InvocationRecord>, StoreError>, asked: usize) {
        self.dispatch.claiming = false;
        let records = match result {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot claim queued invocations: {e}");
                return;
            }
        };
        let got = records.len();
        for rec in records {
            self.dispatch.running += 1;
            let job = Job::new(rec, Reply::Async);
            if job.record.attempts > self.cfg.invocations.max_attempts {
                let msg = format!(
                    "abandoned: the server stopped while running this invocation {} times",
                    job.record.attempts - 1
                );
                self.fail_job(job, "abandoned", &msg);
            } else {
                self.invoke(job);
            }
        }
        if got == asked || self.dispatch.again {
            self.kick_dispatch();
        }
    }

    /// Answers waiters whose `wait` ran out with what the store says now.
    pub(crate) fn expire_waiters(&mut self, now: std::time::Instant) {
        let expired: Vec<String> = self
            .waiters
            .iter()
            .filter(|(_, ws)| ws.iter().any(|w| w.deadline <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let Some(ws) = self.waiters.get_mut(&id) else { continue };
            let (due, keep): (Vec<_>, Vec<_>) = ws.drain(..).partition(|w| w.deadline <= now);
            if keep.is_empty() {
                self.waiters.remove(&id);
            } else {
                *ws = keep;
            }
            let store = Arc::clone(&self.store);
            let conns: Vec<ConnRef> = due.into_iter().map(|w| w.conn).collect();
            self.pool.spawn(move || {
                let r = store.get_invocation(&id);
                move |s: &mut Server| {
                    let resp = match r {
                        Ok(Some(rec)) => record_response(&rec),
                        Ok(None) => Response::error(404, "not_found", &format!("no invocation '{id}'")),
                        Err(e) => Response::error(503, "unavailable", &e.to_string()),
                    };
                    for c in conns {
                        s.complete(c, resp.clone());
                    }
                }
            });
        }
    }
}
