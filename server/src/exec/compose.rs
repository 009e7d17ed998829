//! Composition: `invoke(name, args)` runs another action for a parked
//! caller, and `require(name)` hands a caller the bytecode of a library
//! action.
//!
//! Rules:
//! - A callee runs in an instance of its own with its own limits, but never
//!   past its caller's deadline; its invocation record names its caller.
//! - At most [`MAX_INVOKE_DEPTH`] invocations may be nested; the next
//!   `invoke` fails with an error the caller can catch.
//! - A library is fetched and verified like any action, once per reactor
//!   until it changes; each instance runs its chunk once. An action that
//!   `require`d a library is reloaded when the library changes.

use std::rc::Rc;

use sl_store::InvocationRecord;

use super::{park, Job, Reply, Slot};
use crate::api::valid_name;
use crate::reactor::{now_ms, Server};
use crate::sandbox::{Compiled, InvokeCall};

/// How deep `invoke()` calls may nest: a request's invocation is at depth
/// 0, and it may invoke down to depth 8.
pub const MAX_INVOKE_DEPTH: u8 = 8;

/// The error of `what` (invoke, require) given a name no action can have.
fn invalid_name(what: &str, name: &str) -> String {
    format!("{what}: '{}' is not a valid action name", name.chars().take(140).collect::<String>())
}

impl Server {
    /// Run `key` called `invoke(call.action, call.args)`: park it and start
    /// the callee, which answers it through [`Reply::Caller`].
    pub(super) fn invoke_from(&mut self, key: usize, call: InvokeCall) {
        let Some(running) = self.exec.runs.get_mut(key) else { return };
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
            self.exec.runq.push_back(key);
            return;
        }
        let id = park(&mut self.exec.parked, key, running);
        let mut record =
            InvocationRecord::queued(crate::reactor::new_invocation_id(), call.action, call.args, false, now_ms());
        record.caller = Some(running.job.id().to_owned());
        let job = Job {
            depth: running.job.depth + 1,
            deadline: Some(running.run.deadline()),
            ..Job::new(record, Reply::Caller { key, id })
        };
        self.invoke(job);
    }

    /// Run `key` called `require(name)` for a library its instance has not
    /// loaded: hand it the library's bytecode now if it is cached, else
    /// park it until the library is fetched.
    pub(super) fn require(&mut self, key: usize, name: String) {
        let Some(running) = self.exec.runs.get_mut(key) else { return };
        if !valid_name(&name) {
            running.run.deliver(Err(invalid_name("require", &name)));
            self.exec.runq.push_back(key);
            return;
        }
        let id = park(&mut self.exec.parked, key, running);
        match self.exec.actions.get_mut(&name) {
            Some(Slot::Ready(ready)) => {
                let (code, version) = (Rc::clone(&ready.code), ready.version);
                self.library_ready(key, id, &name, &code, version);
            }
            Some(Slot::Loading { requirers, .. }) => requirers.push((key, id)),
            None => {
                let slot = Slot::Loading { pending: Vec::new(), requirers: vec![(key, id)], stale: false };
                self.exec.actions.insert(name.clone(), slot);
                self.load(name);
            }
        }
    }

    /// Library `name` (at `version`) is cached: resume run `key` (if it is
    /// still run `id`) with its chunk, and remember that the run's action
    /// depends on it.
    pub(super) fn library_ready(&mut self, key: usize, id: u64, name: &str, code: &Compiled, version: i64) {
        let Some(running) = self.exec.runs.get_mut(key) else { return };
        if running.id != id || !running.parked {
            return;
        }
        running.parked = false;
        running.run.deliver_module(name, &code.bytecode);
        let caller = running.job.record.action.clone();
        self.exec.runq.push_back(key);
        if let Some(Slot::Ready(ready)) = self.exec.actions.get_mut(&caller) {
            ready.deps.insert(name.to_string(), version);
        }
    }
}
