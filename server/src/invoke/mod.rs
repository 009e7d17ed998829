//! The driver of invocations: starts jobs in warm instances (fetching the
//! action first when it is not cached), runs them in time slices, serves
//! what they ask for (plugin calls, `invoke`, `require`), and ends them:
//! the instance back to the cache, the answer to whoever waits
//! ([`Reply`]), the record to the store when it is kept.
//!
//! A job starts its first slice at once, in [`start`]: most invocations
//! end within it and hand their instance back before the next request
//! takes one, so a burst of requests for an action shares a few warm
//! instances instead of each making its own. A run that outlives its
//! first slice joins the run queue, and [`slices`] gives the queue about
//! one time slice in all per turn of the loop: however many long
//! invocations run, a request waits at most about one slice per turn for
//! them, not one slice for each of them.
//!
//! A run whose heap is larger than `Limits.offload_heap` takes its slices
//! on the worker's heavy thread instead ([`away`]; `sandbox/away.rs` says
//! why), and so do all its later slices: the loop serves its sockets while
//! the collector or a rehash works through that heap.
//!
//! Answers go in the state's outbox; nothing here writes to a connection.

mod compose;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sl_store::{InvocationError, InvocationRecord, InvocationStatus, JsonArgs, RunKind};
use tracing::{debug, error, warn};

use crate::answer::{
    error_response, error_status, overloaded, record_response, route_failure, route_response, worst_json_len,
};
use crate::exec::{FetchResult, Fetched, Job, Queued, Reply};
use crate::http::Response;
use crate::ids::now_ms;
use crate::metrics::Ended;
use crate::reactor::json_within;
use crate::sandbox::{
    Args, ArgsText, Away, Compiled, InvokeError, LimitKind, Outcome, PluginCall, PublishCall, Remains, Run, Step,
};
use crate::state::{bound_record, nominal_record_size, Outgoing, Publish, Publisher, Ran, State};

/// 503 when `Limits.max_waiting` invocations are running or waiting on
/// this worker already (blocking runs and routes).
pub(crate) fn check_room(st: &State) -> Result<(), Response> {
    if st.exec.busy() >= st.cfg.limits.max_waiting {
        return Err(overloaded("too many invocations are running or waiting on this server"));
    }
    Ok(())
}

/// Starts an invocation: at once if the action is cached (in a warm
/// instance if one is idle), else after fetching it from the store. A
/// client's run that will be recorded waits while the records backlog is
/// full, so that a client cannot make runs faster than the store takes
/// their records and fill memory with them.
pub(crate) fn start(st: &mut State, mut job: Job) {
    if matches!(job.reply, Reply::ApiClient(_) | Reply::WebClient(_))
        && job.is_recorded(st.cfg.invocations.record_blocking)
        && st.records.full()
    {
        st.exec.held.push_back(job);
        return;
    }
    // The record keeps the arguments and times only if it will be stored
    // whatever the outcome.
    let stored = job.is_recorded_always(st.cfg.invocations.record_blocking);
    let args = match job.args.take() {
        Some(args) => args,
        None => match ArgsText::parse(job.record.args.as_str().as_bytes().to_vec()) {
            Ok(text) => Args::Text(text),
            Err(e) => return fail(st, job, "bad_request", &e),
        },
    };
    if stored && job.record.args.is_empty_object() {
        job.record.args = record_args(&args);
    }
    let Some(lease) = st.exec.cache.check_out(&job.record.action) else {
        job.args = Some(args);
        goes_on(st, &job);
        return wait(st, job);
    };
    let instance = match lease.instance {
        Ok(i) => i,
        Err(e) => return fail(st, job, e.kind(), &e.to_string()),
    };
    if st.cfg.server.metrics {
        job.metrics = Some(lease.metrics.unwrap_or_else(|| {
            // The action's first start since it was cached.
            let slot = st.metrics.slot(&job.record.action);
            st.exec.cache.set_metrics_slot(&job.record.action, slot);
            slot
        }));
    }
    let mut budget = lease.budget;
    if let Some(deadline) = job.deadline {
        budget.timeout = budget.timeout.min(deadline.saturating_duration_since(Instant::now()));
    }
    job.record.version = lease.version;
    job.record.status = InvocationStatus::Running;
    if stored {
        job.record.started = Some(now_ms());
    }
    let mut run = instance.start(args, budget);
    if run.memory_used() > offload_bytes(st) {
        return start_away(st, run, job, lease.generation);
    }
    // One that ends in its first slice never enters the slab (the run and
    // the job are not moved: together they are 800 bytes).
    match run.step(st.cfg.server.time_slice) {
        Step::Done(outcome) => finished(st, &mut run, &mut job, lease.generation, outcome),
        step => {
            goes_on(st, &job);
            let key = st.exec.runs.insert(run, job, lease.generation);
            stepped(st, key, step);
        }
    }
}

/// Starts a run in a warm instance with a large heap on the heavy thread:
/// even its first slice may work through all of that heap.
#[inline(never)]
fn start_away(st: &mut State, run: Run, job: Job, generation: u64) {
    goes_on(st, &job);
    let key = st.exec.runs.insert(run, job, generation);
    if !away(st, key) {
        st.exec.runs.queue(key);
    }
}

/// The text a record keeps of a run's arguments.
fn record_args(args: &Args) -> JsonArgs {
    match args {
        Args::Value(v) => JsonArgs::from_value(v),
        Args::Text(text) => text_args(text),
    }
}

/// The text a record keeps of arguments parsed from text.
pub(crate) fn text_args(args: &ArgsText) -> JsonArgs {
    // Text that parsed as JSON is UTF-8: the lossy branch is never taken.
    JsonArgs::from_checked(String::from_utf8_lossy(args.text()).into_owned())
}

/// A job that did not end at once: if it started before its submit was
/// committed, the submit takes a copy of its record (`running`).
fn goes_on(st: &mut State, job: &Job) {
    if let Some(number) = job.early {
        st.submits.run_goes_on(number, &job.record);
    }
}

/// Starts the jobs held back while the records backlog has room.
pub(crate) fn release_held(st: &mut State) {
    while !st.records.full() {
        let Some(job) = st.exec.held.pop_front() else { return };
        start(st, job);
    }
}

/// Queues `job` until its action is fetched (and starts the fetch).
fn wait(st: &mut State, job: Job) {
    match st.exec.cache.enqueue(job) {
        Queued::Start(job) => start(st, *job),
        Queued::Waiting => {}
        Queued::Fetch(name) => fetch(st, name),
    }
}

/// Fetches action `name` on the pool, and verifies its code there.
fn fetch(st: &mut State, name: String) {
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let result: FetchResult = store.get_action(&name).map(|found| {
            found.map(|rec| {
                let code = Compiled::verified(rec.bytecode.clone(), &rec.checksum);
                (rec, code)
            })
        });
        move |st: &mut State| fetched(st, name, result)
    });
}

/// The fetch of `name` ended: start or fail what waited for it.
fn fetched(st: &mut State, name: String, result: FetchResult) {
    match st.exec.cache.fetched(&name, result, &st.cfg.limits) {
        None => {}
        Some(Fetched::Again) => fetch(st, name),
        Some(Fetched::Ready { code, version, pending, requirers }) => {
            for (key, id) in requirers {
                compose::library_ready(st, key, id, &name, &code, version);
            }
            for job in pending {
                start(st, job);
            }
        }
        Some(Fetched::Failed { kind, message, pending, requirers }) => {
            for (key, id) in requirers {
                st.exec.runs.resume(key, id, Err(compose::library_failed(&name, kind, &message)));
            }
            for job in pending {
                fail(st, job, kind, &message);
            }
        }
    }
}

/// Runs invocations of the run queue, round robin, for about one time
/// slice in all, then returns to the sockets.
///
/// An invocation is in the queue because it outlived its first slice (or
/// got an answer it waited for); requests that just arrived run their
/// first slice at once, in [`start`]. So long invocations share half the
/// core when requests keep coming, all of it when none do (the loop turns
/// without waiting while the queue is not empty).
pub(crate) fn slices(st: &mut State) {
    // Most turns have nothing queued: no clock read for them.
    let queued = st.exec.runs.queued();
    if queued == 0 {
        return;
    }
    let slice = st.cfg.server.time_slice;
    let offload = offload_bytes(st);
    let began = Instant::now();
    for _ in 0..queued {
        let Some(key) = st.exec.runs.next_queued() else { break };
        let Some(running) = st.exec.runs.get_mut(key) else { continue };
        if (running.heavy || running.run.memory_used() > offload) && away(st, key) {
            continue;
        }
        let Some(running) = st.exec.runs.get_mut(key) else { continue };
        let step = running.run.step(slice);
        stepped(st, key, step);
        if began.elapsed() >= slice {
            break;
        }
    }
}

/// How long a slice on the heavy thread may be: the loop does not wait for
/// it, and a longer slice takes fewer trips between the threads.
const HEAVY_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// `Limits.offload_heap` in bytes.
fn offload_bytes(st: &State) -> usize {
    (st.cfg.limits.offload_heap as usize).saturating_mul(1024)
}

/// Sends run `key` (in the slab, not parked) for a slice on the worker's
/// heavy thread; its answer comes back to [`came_back`]. False if it must
/// stay: its state holds a pattern call paused on this thread.
fn away(st: &mut State, key: usize) -> bool {
    let Some(running) = st.exec.runs.get_mut(key) else { return true };
    let again = running.heavy;
    let Some((run, id)) = st.exec.runs.go_away(key) else { return true };
    let mut away = if again {
        // SAFETY: its last step ran on the heavy thread, the one thread of
        // `heavy_pool`, which steps it again.
        unsafe { Away::again(run) }
    } else {
        match Away::leave(run) {
            Ok(away) => away,
            Err(run) => {
                // Its state holds a pattern call paused on this thread.
                st.exec.runs.come_back(key, id, *run);
                return false;
            }
        }
    };
    if let Some(running) = st.exec.runs.get_mut(key) {
        running.heavy = true;
    }
    st.heavy_pool.spawn(move || {
        let step = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| away.step(HEAVY_SLICE))) {
            Ok(step) => step,
            Err(_) => {
                error!("a slice of an invocation panicked on the heavy thread; the invocation fails");
                away.fail("the server failed while it ran this invocation (see its log)")
            }
        };
        move |st: &mut State| came_back(st, key, id, away, step)
    });
    true
}

/// A slice of run `(key, id)` on the heavy thread ended with `step`.
fn came_back(st: &mut State, key: usize, id: u64, away: Away, step: Step) {
    if st.exec.runs.come_back(key, id, away.back()) {
        stepped(st, key, step);
    }
}

/// Drops one discarded instance, on the heavy thread if its heap is large,
/// and sends the instances evicted for room there. Called once a turn of
/// the loop, mostly with none: inlined, so that costs a load and a
/// compare.
#[inline]
pub(crate) fn bury_one(st: &mut State) {
    if st.exec.cache.has_graves() {
        bury(st);
    }
}

#[inline(never)]
fn bury(st: &mut State) {
    let evicted = st.exec.cache.evicted();
    if !evicted.is_empty() {
        st.heavy_pool.spawn(move || {
            evicted.into_iter().for_each(Remains::free);
            |_: &mut State| {}
        });
    }
    let Some(dead) = st.exec.cache.dig_up() else { return };
    if dead.memory_used() <= offload_bytes(st) {
        return drop(dead);
    }
    match Remains::leave(dead) {
        Ok(remains) => st.heavy_pool.spawn(move || {
            remains.free();
            |_: &mut State| {}
        }),
        Err(dead) => drop(dead),
    }
}

/// Acts on what a slice of run `key` (in the slab) ended with.
fn stepped(st: &mut State, key: usize, step: Step) {
    match step {
        Step::Yielded => st.exec.runs.queue(key),
        Step::Call(call) => plugin_call(st, key, call),
        Step::Invoke(call) => {
            if let Some(job) = compose::call(st, key, call) {
                start(st, job);
            }
        }
        Step::Require(name) => {
            if let Some(name) = compose::require(st, key, name) {
                fetch(st, name);
            }
        }
        Step::Publish(call) => publish(st, key, call),
        Step::Done(outcome) => {
            if let Some(mut r) = st.exec.runs.remove(key) {
                finished(st, &mut r.run, &mut r.job, r.generation, outcome);
            }
        }
    }
}

/// Parks run `key` while a plugin call runs on the plugin pool.
fn plugin_call(st: &mut State, key: usize, call: PluginCall) {
    let Some(plugin) = st.plugins.get(&call.plugin).cloned() else {
        let names = st.plugins.names();
        let loaded = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let message = format!("unknown plugin '{}' (loaded plugins: {loaded})", call.plugin);
        if let Some(running) = st.exec.runs.get_mut(key) {
            running.run.deliver(Err(message));
            st.exec.runs.queue(key);
        }
        return;
    };
    // Encoded on the loop: no bigger than an answer may be.
    let max = st.cfg.server.max_response;
    let Some(payload) = json_within(&call.payload, max) else {
        if let Some(running) = st.exec.runs.get_mut(key) {
            let message = format!(
                "call('{}'): the payload is larger than Server.max_response ({max} bytes) as JSON",
                call.plugin
            );
            running.run.deliver(Err(message));
            st.exec.runs.queue(key);
        }
        return;
    };
    let Some(id) = st.exec.runs.park(key) else { return };
    let metrics = st.cfg.server.metrics.then(|| st.metrics.plugin(&call.plugin));
    st.plugin_pool.spawn(move || {
        let start = Instant::now();
        let called = plugin.call(&call.action, &payload);
        if let Some(m) = metrics {
            m.record(start, called.is_err());
        }
        let result = called.and_then(|bytes| {
            // Parsed outside the action's memory limit: no bigger than an
            // answer may be.
            if bytes.len() > max {
                return Err(format!(
                    "plugin '{}' answered {} bytes, more than Server.max_response ({max} bytes)",
                    call.plugin,
                    bytes.len()
                ));
            }
            serde_json::from_slice(&bytes).map_err(|e| format!("plugin '{}' returned invalid JSON: {e}", call.plugin))
        });
        move |st: &mut State| {
            st.exec.runs.resume(key, id, result);
        }
    });
}

/// Parks run `key` while its message is appended to its topic, with the
/// next commit of messages (`events::publish`).
fn publish(st: &mut State, key: usize, call: PublishCall) {
    // No bigger than a message published over HTTP may be.
    let max = st.cfg.server.max_body;
    let payload = json_within(&call.payload, max).and_then(|bytes| String::from_utf8(bytes).ok());
    let refused = match &payload {
        None => Some(format!("publish: the payload is larger than Server.max_body ({max} bytes) as JSON")),
        Some(p) if crate::sandbox::json::nesting(p.as_bytes()) > crate::sandbox::json::MAX_DEPTH - 3 => {
            Some(format!("publish: the payload nests deeper than {} levels", crate::sandbox::json::MAX_DEPTH - 3))
        }
        Some(_) if !crate::ids::valid_name(&call.topic) => Some(format!("publish: no topic named '{}'", call.topic)),
        Some(_) if call.key.as_ref().is_some_and(|k| k.len() > 1024) => {
            Some("publish: a key holds at most 1024 bytes".to_string())
        }
        Some(_) => None,
    };
    let (Some(payload), None) = (payload, refused.clone()) else {
        if let Some(running) = st.exec.runs.get_mut(key) {
            running.run.deliver(Err(refused.unwrap_or_default()));
            st.exec.runs.queue(key);
        }
        return;
    };
    let Some(id) = st.exec.runs.park(key) else { return };
    let message = Outgoing { topic: call.topic, key: call.key, payload, idempotency_key: None };
    st.publishes.push(Publish { from: Publisher::Run { key, id }, messages: vec![message] });
}

/// Fails parked runs whose deadline passed at `now`, without waiting for
/// what they wait for.
pub(crate) fn expire(st: &mut State, now: Instant) {
    while let Some(mut r) = st.exec.runs.pop_expired(now) {
        let outcome = r.run.cancel(LimitKind::Timeout);
        finished(st, &mut r.run, &mut r.job, r.generation, outcome);
    }
}

/// Ends an invocation: its instance back to the cache (or to the
/// graveyard), the answer to whoever waits, the record to the store if it
/// is kept. `generation` is that of the cache entry it started from.
fn finished(st: &mut State, run: &mut Run, job: &mut Job, generation: u64, mut outcome: Outcome) {
    st.exec.cache.check_in(&job.record.action, generation, run, &outcome, st.cfg.limits.warm_instances);
    if let Err(InvokeError::Limit(kind)) = &outcome.result {
        let what = match kind {
            LimitKind::Memory | LimitKind::StringLength(_) => "memory",
            LimitKind::Instructions => "instruction",
            LimitKind::Timeout | LimitKind::Stall => "time",
        };
        let id = job.id().to_owned();
        let name = &job.record.action;
        warn!(id = %id, "Action '{name}' aborted after violating {what} constraints");
    }
    let name = &job.record.action;
    debug!(action = %name, duration = ?outcome.duration, ok = outcome.result.is_ok(), "invocation finished");
    // The answer first, from the outcome; the record after, and only if
    // it is kept (it takes the result instead of a copy).
    let reply = job.reply;
    let max = st.cfg.server.max_response;
    match reply {
        Reply::ApiClient(to) => {
            // An answer too large to send becomes a failure, in the record too.
            if let Ok(v) = &outcome.result {
                // A small scalar (most results) needs no bounded writer.
                let limit = if worst_json_len(v).is_some_and(|n| n <= max) { usize::MAX } else { max };
                if !st.outbox.json(to, 200, v, limit) {
                    outcome.result = Err(InvokeError::TooLarge(max));
                }
            }
            if let Err(e) = &outcome.result {
                st.outbox.respond(to, error_response(e));
            }
        }
        Reply::WebClient(to) => {
            // An invalid or too large web response becomes a failure, in
            // the record too.
            st.outbox.respond(to, route_response(&mut outcome.result, &job.record.id, st.cfg.server.debug, max));
        }
        Reply::Caller { key, id } => {
            let answer = match &outcome.result {
                Ok(v) => Ok(v.clone()),
                Err(e) => Err(compose::callee_failed(&job.record.action, e.kind(), &e.to_string())),
            };
            st.exec.runs.resume(key, id, answer);
        }
        Reply::Delivery { slot, gen } => delivered(st, run, job, &outcome, slot, gen),
        Reply::Queue => {}
    }
    st.runs.count(&job.record.action, job.kind(), outcome.result.is_ok());
    if let Some(slot) = job.metrics {
        count_ended(st, job, slot, &outcome);
    }
    if !job.is_recorded(st.cfg.invocations.record_blocking) {
        return;
    }
    let finished = now_ms();
    if let Some(body) = job.args_if_failed.take() {
        // A success sampled out: no record.
        if outcome.result.is_ok() {
            return;
        }
        let rec = &mut job.record;
        // The body parsed when the request was read (a blank one is `{}`).
        rec.args = String::from_utf8(body).ok().and_then(|text| JsonArgs::parse(text).ok()).unwrap_or_default();
        rec.started = Some(finished - outcome.duration.as_millis() as i64);
        job.id();
    }
    let rec = &mut job.record;
    rec.finished = Some(finished);
    rec.duration_ms = Some(outcome.duration.as_millis() as u64);
    rec.instructions = Some(outcome.instructions);
    rec.peak_memory = Some(outcome.peak_memory);
    rec.logs = outcome.logs;
    match outcome.result {
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
    let size = match reply {
        Reply::Queue => nominal_record_size(rec),
        // Its client has the answer; the record is for looking back.
        _ => bound_record(rec, st.cfg.invocations.record_limit, matches!(reply, Reply::WebClient(_))),
    };
    let rec = job.take_record();
    match reply {
        Reply::Queue => queue_done(st, rec, size, job.early),
        // Its client has the id (`X-SL-Invocation`) and may ask for the
        // record at once.
        Reply::WebClient(_) => st.records.add_known(rec, size),
        _ => st.records.add(rec, size),
    }
}

/// A subscription's batch ended: its outcome goes to the deliveries
/// (`events::deliver` commits it at the end of the turn).
#[inline(never)]
fn delivered(st: &mut State, run: &mut Run, job: &mut Job, outcome: &Outcome, slot: usize, gen: u64) {
    let error = outcome.result.as_ref().err().map(ToString::to_string);
    let verdicts = run.take_verdicts();
    // The logs go to dead letters, which only a retry can make.
    let retried = error.is_some() || verdicts.iter().any(|v| v.retry.is_some());
    let ran = Ran {
        error,
        verdicts,
        logs: if retried { outcome.logs.clone() } else { String::new() },
        invocation: job.id().to_owned(),
    };
    st.deliveries.ended.push((slot, gen, ran));
}

/// Counts an invocation that ran in the worker's metrics.
fn count_ended(st: &State, job: &Job, slot: u32, outcome: &Outcome) {
    let kind = job.kind();
    // Records keep milliseconds.
    let queue_wait = match (kind, job.record.started) {
        (RunKind::Async, Some(started)) => {
            Some(Duration::from_millis(started.saturating_sub(job.record.created).max(0) as u64))
        }
        _ => None,
    };
    st.metrics.at(slot).ran(&Ended {
        kind,
        error: outcome.result.as_ref().err().map(InvokeError::kind),
        duration: outcome.duration,
        instructions: outcome.instructions,
        peak_memory: outcome.peak_memory,
        queue_wait,
    });
}

/// Ends a job that could not start.
pub(crate) fn fail(st: &mut State, mut job: Job, kind: &str, message: &str) {
    // A run of an action that does not exist is not counted: its name
    // would make a counter of its own.
    if kind != "not_found" {
        st.runs.count(&job.record.action, job.kind(), false);
        // Only an action known to exist gets metrics (a name of its own):
        // one cached here, one the store gave with bad bytecode
        // (`internal`), or one queued (`abandoned`, checked at submit). A
        // fetch the store could not answer (`unavailable`) may be of any
        // name, and is not counted.
        let exists = matches!(kind, "internal" | "abandoned") || st.exec.cache.is_cached(&job.record.action);
        if st.cfg.server.metrics && exists {
            let slot = st.metrics.slot(&job.record.action);
            st.metrics.at(slot).failed_to_start(job.kind(), kind);
        }
    }
    match job.reply {
        Reply::ApiClient(to) => st.outbox.respond(to, Response::error(error_status(kind), kind, message)),
        Reply::WebClient(to) => {
            st.outbox.respond(to, route_failure(kind, message, &job.record.id, st.cfg.server.debug));
        }
        Reply::Caller { key, id } => {
            st.exec.runs.resume(key, id, Err(compose::callee_failed(&job.record.action, kind, message)));
        }
        Reply::Delivery { slot, gen } => {
            let ran = Ran {
                error: Some(format!("{kind}: {message}")),
                verdicts: Vec::new(),
                logs: String::new(),
                invocation: job.id().to_owned(),
            };
            st.deliveries.ended.push((slot, gen, ran));
        }
        Reply::Queue => {
            job.record.status = InvocationStatus::Failed;
            job.record.error = Some(InvocationError { kind: kind.into(), message: message.into() });
            job.record.finished = Some(now_ms());
            job.record.owner = None;
            job.record.lease_until = None;
            let size = nominal_record_size(&job.record);
            queue_done(st, job.record, size, job.early);
        }
    }
}

/// An asynchronous invocation ended with `rec`: answer the clients
/// waiting for it, store the record, make room for the next. The record
/// of one started before its submit was committed (`early`) goes to the
/// submits, unless that commit is over.
fn queue_done(st: &mut State, rec: InvocationRecord, size: usize, early: Option<u64>) {
    st.consumer.finished();
    let waiting = st.waiters.take(&rec.id);
    if !waiting.is_empty() {
        let resp = record_response(&rec, st.cfg.server.max_response);
        for conn in waiting {
            st.outbox.respond(conn, resp.clone());
        }
    }
    let finished = match early {
        Some(number) => st.submits.run_ended(number, (rec, size)),
        None => Some((rec, size)),
    };
    if let Some((rec, size)) = finished {
        st.records.add_known(rec, size);
    }
}
