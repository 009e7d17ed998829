//! Running actions through the API: blocking runs
//! (`POST /actions/:name/block`), asynchronous submits
//! (`POST /actions/:name`), and their records (`GET /invocation/:id`,
//! `GET /invocations`).

use std::time::{Duration, Instant};

use sl_store::{Enqueued, IdempotencyKey, InvocationRecord, InvocationStatus, JsonArgs, Submit};

use super::idempotency;
use super::input::{bad_request, check_name, parse_args, query_param};
use crate::answer::{json_response, overloaded, record_response, store_error};
use crate::exec::{Job, Reply};
use crate::housekeeping;
use crate::http::Response;
use crate::ids::{new_invocation_id, now_ms};
use crate::invoke;
use crate::queue;
use crate::reactor::ConnRef;
use crate::sandbox::Args;
use crate::state::{nominal_record_size, Pending, State};

/// Longest `?wait=` for an invocation result, in seconds.
const MAX_WAIT_SECS: u64 = 60;

/// How long `GET /invocation/:id` without `?wait=` holds a pending
/// invocation, in seconds: short enough for clients that give up after
/// 2 s (the original Node `slcli resolve` does) to get the 202 "pending"
/// answer rather than a timeout of their own.
const DEFAULT_WAIT_SECS: u64 = 1;

/// `POST /actions/:name/block`: runs the action now; its client waits.
pub(super) fn run_blocking(
    st: &mut State,
    conn: ConnRef,
    name: &str,
    body: Vec<u8>,
) -> Result<Option<Response>, Response> {
    invoke::check_room(st)?;
    let cfg = &st.cfg.invocations;
    let may_record = cfg.record_blocking;
    // Recorded whatever the outcome, or (a success sampled out) only if it fails.
    let recorded = may_record && st.runs.keep_success(name, cfg.sample_successes);
    // The body is parsed once, for the run to push straight into Lua; a
    // record stored whatever the outcome takes its text when the run
    // starts, and the id is made only if something names it (`Job::id`).
    // Recorded if it fails: the body is kept for the record.
    let if_failed = (may_record && !recorded).then(|| body.clone());
    let args = parse_args(body)?;
    // An id only for a record that is stored; a creation time also for one
    // that may be.
    let id = if recorded { new_invocation_id() } else { String::new() };
    let created = if may_record { now_ms() } else { 0 };
    let record = InvocationRecord::queued(id, name.to_string(), JsonArgs::empty(), false, created);
    let job =
        Job { args: Some(Args::Text(args)), args_if_failed: if_failed, ..Job::new(record, Reply::ApiClient(conn)) };
    invoke::start(st, job);
    Ok(None)
}

/// `POST /actions/:name`: queues an asynchronous invocation; answers its
/// id once the store has it. The record goes into the worker's next commit
/// of submits (group commit, see [`Submits`](crate::state::Submits)). With
/// an `Idempotency-Key`, a retry gets the id the key was first given (see
/// [`idempotency`](super::idempotency)).
///
/// A submit without a key, of an action this worker has cached, starts at
/// once if fewer than `Invocations.concurrency` run here and none waits
/// to start (and `Invocations.start_before_commit` is on): its commit then
/// writes it finished, or running under this worker's lease if it has not
/// ended by then (see [`Submits`](crate::state::Submits)).
pub(super) fn submit(
    st: &mut State,
    conn: ConnRef,
    name: &str,
    body: &[u8],
    key: Option<&[u8]>,
) -> Result<Option<Response>, Response> {
    let key = key.map(idempotency::key).transpose().map_err(|e| bad_request(&e))?;
    let args = parse_args(body.to_vec())?;
    let key = key.map(|key| IdempotencyKey {
        key,
        fingerprint: idempotency::fingerprint(name, &String::from_utf8_lossy(args.text())),
    });
    let mut record = InvocationRecord::queued(new_invocation_id(), name.to_string(), JsonArgs::empty(), true, now_ms());
    let early = key.is_none()
        && st.cfg.invocations.start_before_commit
        && st.exec.cache.is_cached(name)
        && st.consumer.start_early(st.cfg.invocations.concurrency);
    if early {
        claim_here(st, &mut record, now_ms());
        // The job has the record (which takes the arguments' text when the
        // run starts); the submit gets the final one when the run ends, or
        // a copy if it outlives its first slice (`invoke::start`).
        let number = st.submits.push(conn, Submit { record: InvocationRecord::empty(), key }, true);
        invoke::start(st, Job { args: Some(Args::Text(args)), early: Some(number), ..Job::new(record, Reply::Queue) });
    } else {
        record.args = invoke::text_args(&args);
        st.submits.push(conn, Submit { record, key }, false);
    }
    // The commit starts at the end of this turn of the loop, with every
    // submit read in it (`App::end_turn`).
    Ok(None)
}

/// Marks `record` claimed by this worker at `now`, as a claim would store
/// it: it runs here, and is taken over by another server if this one dies.
fn claim_here(st: &State, record: &mut InvocationRecord, now: i64) {
    record.status = InvocationStatus::Running;
    record.owner = Some(st.owner.clone());
    record.started = Some(now);
    record.lease_until = Some(now.saturating_add(st.cfg.lease_ms() as i64));
    record.attempts = 1;
}

/// Commits the submits waiting, if no commit of them is in flight, on the
/// pool: one check that each action exists (for actions this worker has
/// not cached), one count of the queue, one write of every record, then
/// each client's answer. When it ends, the submits that came meanwhile go
/// next.
///
/// Of those that did not start early, as many as this worker has room to
/// hold (up to `Invocations.concurrency` more than it runs) are queued
/// claimed by this worker (status `running`, with a lease, as a claim
/// would store them) and start as soon as the commit ends, with no claim
/// through the store; if the server dies, they are taken over like any
/// claimed invocation. The rest stay `queued` for the next claim, here or
/// on another server.
pub(crate) fn commit_submits(st: &mut State) {
    let Some(mut batch) = st.submits.take_batch() else { return };
    let mut unknown: Vec<String> = Vec::new();
    for p in batch.iter().filter(|p| p.early.is_none()) {
        let action = &p.submit.record.action;
        if !st.exec.cache.is_cached(action) && !unknown.contains(action) {
            unknown.push(action.clone());
        }
    }
    let waiting = batch.iter().filter(|p| p.early.is_none()).count();
    let mut local = st.consumer.reserve(st.cfg.invocations.concurrency, waiting);
    let now = now_ms();
    let mut reserved = vec![false; batch.len()];
    for (i, p) in batch.iter_mut().enumerate() {
        if local > 0 && p.early.is_none() {
            local -= 1;
            reserved[i] = true;
            claim_here(st, &mut p.submit.record, now);
        }
    }
    let max_queued = st.cfg.invocations.max_queued;
    let store = std::sync::Arc::clone(&st.store);
    let started = Instant::now();
    let known = st.submits.queued_estimate(started);
    st.pool.spawn(move || {
        let (answers, counted) = commit_batch(&*store, &mut batch, &unknown, max_queued, known);
        move |st: &mut State| {
            st.submits.done();
            let (mut queued, mut finished_bytes) = (0, 0);
            let now = Instant::now();
            for ((p, reserved), (resp, new)) in batch.into_iter().zip(reserved).zip(answers) {
                st.outbox.respond(p.conn, resp);
                let rec = p.submit.record;
                if let Some(number) = p.early {
                    let terminal = rec.status.is_terminal();
                    if let Some((rec, size)) = st.submits.committed(number, new, !terminal) {
                        st.records.add_known(rec, size);
                    }
                    if new && terminal {
                        finished_bytes += nominal_record_size(&rec) as u64;
                        // Its client may ask for it at once.
                        st.committed.keep(rec, now);
                    }
                } else if reserved {
                    if new {
                        st.consumer.ready(rec);
                    } else {
                        st.consumer.release();
                    }
                } else if new {
                    queued += 1;
                    st.consumer.may_have_queued();
                }
            }
            match counted {
                Some(n) => st.submits.counted(n + queued, started),
                None => st.submits.queued_more(queued),
            }
            if finished_bytes > 0 {
                housekeeping::wrote_finished(st, finished_bytes);
            }
            // Starts the ready ones, and claims those queued if there is room.
            queue::kick(st);
            commit_submits(st);
        }
    });
}

/// The store's part of a commit of submits: for each, in order, its
/// answer and whether its record was stored (a new invocation); and the
/// queue depth it read from the store before, unless `known` gave it.
fn commit_batch(
    store: &dyn sl_store::Store,
    batch: &mut [Pending],
    unknown: &[String],
    max_queued: u64,
    known: Option<u64>,
) -> (Vec<(Response, bool)>, Option<u64>) {
    let fail = |e: &sl_store::StoreError| (batch.iter().map(|_| (store_error(e), false)).collect(), None);
    let mut missing = Vec::new();
    for name in unknown {
        match store.get_action(name) {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(name.as_str()),
            Err(e) => return fail(&e),
        }
    }
    let (queued, counted) = match known {
        Some(n) => (n, None),
        None => match store.count_queued() {
            Ok(n) => (n, Some(n)),
            Err(e) => return fail(&e),
        },
    };
    let leaders = idempotency::leaders(&batch.iter().map(|p| &p.submit).collect::<Vec<_>>());
    let mut room = max_queued.saturating_sub(queued);
    // Each submit's answer decided before the store is asked, or the index
    // of its leader's submit among those stored (a leader is itself its own).
    let mut decided: Vec<Result<Response, usize>> = Vec::with_capacity(batch.len());
    let mut to_store: Vec<usize> = Vec::with_capacity(batch.len());
    let mut slot = vec![usize::MAX; batch.len()];
    let mut queued_here = 0;
    for (i, p) in batch.iter().enumerate() {
        let r = &p.submit.record;
        if leaders[i] != i {
            decided.push(Err(usize::MAX));
        } else if missing.contains(&r.action.as_str()) {
            decided.push(Ok(Response::error(404, "not_found", &format!("no action named '{}'", r.action))));
        } else if p.early.is_none() && room == 0 {
            let n = queued + queued_here;
            decided
                .push(Ok(overloaded(&format!("{n} asynchronous invocations are queued (the limit is {max_queued})"))));
        } else {
            // One started already is not queued: the limit does not apply.
            if p.early.is_none() {
                room -= 1;
                queued_here += 1;
            }
            slot[i] = to_store.len();
            decided.push(Err(slot[i]));
            to_store.push(i);
        }
    }
    // The records move out of the batch for the store's call and back
    // after it: no copy of them.
    let mut records: Vec<Submit> =
        to_store.iter().map(|&i| std::mem::replace(&mut batch[i].submit, empty_submit())).collect();
    let stored = if records.is_empty() { Ok(Vec::new()) } else { store.enqueue_invocations(&records) };
    for (&i, record) in to_store.iter().zip(records.drain(..)) {
        batch[i].submit = record;
    }
    let submits: Vec<&Submit> = batch.iter().map(|p| &p.submit).collect();
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            // Nothing is known to be queued: every submit bound for the
            // store (or sharing a key with one) gets the error.
            let answers = decided
                .into_iter()
                .enumerate()
                .map(|(i, d)| match d {
                    Ok(resp) if leaders[i] == i => (resp, false),
                    _ => (store_error(&e), false),
                })
                .collect();
            return (answers, counted);
        }
    };
    let answers = (0..batch.len())
        .map(|i| {
            let leader = leaders[i];
            let at = slot[leader];
            match (&decided[leader], stored.get(at)) {
                (Ok(resp), _) => (resp.clone(), false),
                (Err(_), Some(done)) => {
                    let new = leader == i && *done == Enqueued::New;
                    (accepted_response(idempotency::outcome(&submits, &leaders, i, done)), new)
                }
                (Err(_), None) => {
                    (Response::error(500, "internal", "the store answered fewer submits than it was given"), false)
                }
            }
        })
        .collect();
    (answers, counted)
}

/// A submit that holds nothing: what stands in for one moved out of its
/// batch.
fn empty_submit() -> Submit {
    Submit { record: InvocationRecord::empty(), key: None }
}

/// The answer to an accepted submit, or to one whose key was used for
/// something else.
fn accepted_response(outcome: idempotency::Outcome) -> Response {
    match outcome {
        idempotency::Outcome::Accepted { id, replayed } => {
            let resp = Response::json(202, accepted_body(&id));
            if replayed {
                resp.with_header("Idempotent-Replayed", "true")
            } else {
                resp
            }
        }
        idempotency::Outcome::Mismatch { id } => Response::error(
            422,
            "idempotency_mismatch",
            &format!(
                "this Idempotency-Key was first used for another action or other arguments (invocation {id}); \
                 send a new key for a different submit"
            ),
        ),
    }
}

/// `{"InvocationId":"<id>"}`, the body of every accepted submit, written
/// straight into its buffer: through a `serde_json::Value` map it cost
/// some 2,000 instructions a submit (a hashed map, its drop, a walk of it).
fn accepted_body(id: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(id.len() + 20);
    body.extend_from_slice(b"{\"InvocationId\":");
    serde_json::to_writer(&mut body, id).expect("a string written into a Vec cannot fail");
    body.push(b'}');
    body
}

/// `GET /invocation/:id[?wait=N]`: the record, waiting up to N seconds
/// (default [`DEFAULT_WAIT_SECS`]) for an unfinished invocation to finish.
pub(super) fn get(st: &mut State, conn: ConnRef, id: &str, query: &str) -> Result<Option<Response>, Response> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(bad_request("invalid invocation id"));
    }
    let wait = match query_param(query, "wait") {
        None => DEFAULT_WAIT_SECS,
        Some(v) => {
            v.parse::<u64>().map_err(|_| bad_request("wait must be a whole number of seconds"))?.min(MAX_WAIT_SECS)
        }
    };
    if let Some(rec) = st.records.recent(id).or_else(|| st.committed.get(id, Instant::now())) {
        return Ok(Some(record_response(rec, st.cfg.server.max_response)));
    }
    let id = id.to_string();
    let store = std::sync::Arc::clone(&st.store);
    st.pool.spawn(move || {
        let r = store.get_invocation(&id);
        move |st: &mut State| {
            let resp = match r {
                Ok(Some(rec)) if !rec.status.is_terminal() && wait > 0 => match st.records.recent(&id) {
                    Some(done) => record_response(done, st.cfg.server.max_response),
                    None => {
                        let deadline = Instant::now() + Duration::from_secs(wait);
                        st.waiters.add(id, conn, deadline);
                        return;
                    }
                },
                Ok(Some(rec)) => record_response(&rec, st.cfg.server.max_response),
                Ok(None) => Response::error(404, "not_found", &format!("no invocation '{id}'")),
                Err(e) => store_error(&e),
            };
            st.outbox.respond(conn, resp)
        }
    });
    Ok(None)
}

/// `GET /invocations[?action=NAME&limit=N]`: the latest records.
pub(super) fn list(st: &mut State, conn: ConnRef, query: &str) -> Result<Option<Response>, Response> {
    let action = query_param(query, "action").map(|a| a.into_owned());
    if let Some(a) = &action {
        check_name(a)?;
    }
    let limit = match query_param(query, "limit") {
        None => 50,
        Some(v) => v.parse::<usize>().map_err(|_| bad_request("limit must be a whole number"))?.clamp(1, 1000),
    };
    st.answer_later(conn, move |store| match store.list_invocations(action.as_deref(), limit) {
        Ok(list) => json_response(200, &list),
        Err(e) => store_error(&e),
    });
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::accepted_body;

    #[test]
    fn the_accepted_body_is_the_id_in_json() {
        for id in ["0193a1b2-0000-7000-8000-000000000001", "", "a\"b\\c\u{1}"] {
            let v: serde_json::Value = serde_json::from_slice(&accepted_body(id)).unwrap();
            assert_eq!(v, serde_json::json!({ "InvocationId": id }));
        }
    }
}
