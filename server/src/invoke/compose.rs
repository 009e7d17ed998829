//! Composition: `invoke(name, args)` runs another action for a parked
//! caller, and `require(name)` hands a caller the bytecode of a library
//! action.
//!
//! Rules:
//! - A callee runs in an instance of its own with its own limits, but never
//!   past its caller's deadline; its invocation record names its caller.
//! - At most [`MAX_INVOKE_DEPTH`] invocations may be nested; the next
//!   `invoke` fails with an error the caller can catch.
//! - A library is fetched and verified like any action, once per worker
//!   until it changes; each instance runs its chunk once. An action that
//!   `require`d a library is reloaded when the library changes.
//!
//! These functions park the caller and say what to start or fetch; the
//! driver above ([`super`]) does it.

use sl_store::{InvocationRecord, JsonArgs};

use crate::exec::{Job, Library, Reply};
use crate::ids::{new_invocation_id, now_ms, valid_name};
use crate::sandbox::{Args, Compiled, InvokeCall};
use crate::state::State;

/// How deep `invoke()` calls may nest: a request's invocation is at depth
/// 0, and it may invoke down to depth 8.
pub const MAX_INVOKE_DEPTH: u8 = 8;

/// The error of `what` (invoke, require) given a name no action can have.
fn invalid_name(what: &str, name: &str) -> String {
    format!("{what}: '{}' is not a valid action name", name.chars().take(140).collect::<String>())
}

/// The error an `invoke()` raises in its caller when the callee failed.
pub(super) fn callee_failed(action: &str, kind: &str, message: &str) -> String {
    format!("action '{action}' failed ({kind}): {message}")
}

/// Run `key` called `invoke(call.action, call.args)`: parks it and returns
/// the callee's job, which answers it through [`Reply::Caller`]; or
/// refuses the call (the caller gets the error) and returns `None`.
pub(super) fn call(st: &mut State, key: usize, call: InvokeCall) -> Option<Job> {
    let running = st.exec.runs.get_mut(key)?;
    let refusal = if running.job.depth >= MAX_INVOKE_DEPTH {
        Some(format!(
            "invoke('{}'): more than {MAX_INVOKE_DEPTH} nested invocations (invoke calls within invoked actions)",
            call.action
        ))
    } else if !valid_name(&call.action) {
        Some(invalid_name("invoke", &call.action))
    } else {
        None
    };
    if let Some(message) = refusal {
        running.run.deliver(Err(message));
        st.exec.runs.queue(key);
        return None;
    }
    let caller = running.job.id().to_owned();
    let (depth, deadline) = (running.job.depth + 1, running.run.deadline());
    let id = st.exec.runs.park(key)?;
    // The record takes the arguments' text when the run starts, if it is kept.
    let mut record = InvocationRecord::queued(new_invocation_id(), call.action, JsonArgs::empty(), false, now_ms());
    record.caller = Some(caller);
    let args = Some(Args::Value(call.args));
    Some(Job { depth, deadline: Some(deadline), args, ..Job::new(record, Reply::Caller { key, id }) })
}

/// Run `key` called `require(name)` for a library its instance has not
/// loaded: hands it the library's bytecode now if it is cached, else parks
/// it until the library is fetched. Returns the name to fetch, if the
/// library is not being fetched yet.
pub(super) fn require(st: &mut State, key: usize, name: String) -> Option<String> {
    if !valid_name(&name) {
        let running = st.exec.runs.get_mut(key)?;
        running.run.deliver(Err(invalid_name("require", &name)));
        st.exec.runs.queue(key);
        return None;
    }
    let id = st.exec.runs.park(key)?;
    match st.exec.cache.require(&name, key, id) {
        Library::Ready(code, version) => {
            library_ready(st, key, id, &name, &code, version);
            None
        }
        Library::Waiting => None,
        Library::Fetch => Some(name),
    }
}

/// Library `name` (at `version`) is cached: resumes run `key` (if it is
/// still run `id`) with its chunk, and remembers that the run's action
/// depends on it.
pub(super) fn library_ready(st: &mut State, key: usize, id: u64, name: &str, code: &Compiled, version: i64) {
    let Some(running) = st.exec.runs.unpark(key, id) else { return };
    running.run.deliver_module(name, &code.bytecode);
    let caller = running.job.record.action.clone();
    st.exec.cache.depends(&caller, name, version);
}

/// The error `require(name)` raises when the library cannot be had.
pub(super) fn library_failed(name: &str, kind: &str, message: &str) -> String {
    match kind {
        "not_found" => format!("require: no library action named '{name}'"),
        _ => format!("require '{name}': {message}"),
    }
}
