//! An invocation waiting to start, and who waits for its answer.

use std::time::Instant;

use sl_store::{InvocationRecord, RunKind};

use crate::ids::new_invocation_id;
use crate::reactor::ConnRef;
use crate::sandbox::Args;

/// Who waits for the answer of an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A client of the API, on `POST /actions/:name/block`: the result as
    /// JSON, or the error.
    ApiClient(ConnRef),
    /// A client of the web listener, on a route: the response the result
    /// describes.
    WebClient(ConnRef),
    /// Nobody: an asynchronous invocation, whose record is completed and
    /// stored (clients waiting on `?wait=` are answered from it).
    Queue,
    /// An invocation parked in `invoke()`: run `key` of this executor, if
    /// its id is still `id`.
    Caller { key: usize, id: u64 },
    /// A batch of a subscription's messages: its outcome goes to the
    /// partition in `slot` of the worker's deliveries, if its generation
    /// is still `gen`.
    Delivery { slot: usize, gen: u64 },
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
    /// The arguments for the run, when the job came with them apart from
    /// its record: a request's body parsed, or a value the server made (a
    /// route's request, an `invoke()` call). A job without them runs on
    /// its record's. A record stored whatever the outcome whose arguments
    /// are `{}` takes their text when the run starts (see
    /// [`invoke::start`](crate::invoke::start)).
    pub args: Option<Args>,
    /// The request body of a blocking run whose record is kept only if it
    /// fails (its success was sampled out, see `state::Runs`): parsed into
    /// the record's arguments then.
    pub args_if_failed: Option<Vec<u8>>,
    /// An asynchronous invocation started before its submit was committed:
    /// the number its submit has in `state::Submits`, where its end goes.
    pub early: Option<u64>,
    /// Its action's slot in the worker's metrics, once it started (see
    /// `metrics::WorkerApp::slot`).
    pub metrics: Option<u32>,
}

impl Job {
    /// A job started by a request or the queue.
    pub fn new(record: InvocationRecord, reply: Reply) -> Self {
        Self { record, reply, depth: 0, deadline: None, args: None, args_if_failed: None, early: None, metrics: None }
    }

    /// The invocation's id. An unrecorded blocking run has none until
    /// something names it (a log line, the record of an action it
    /// invokes): making one costs more than the rest of its bookkeeping.
    pub fn id(&mut self) -> &str {
        if self.record.id.is_empty() {
            self.record.id = new_invocation_id();
        }
        &self.record.id
    }

    /// Its record, leaving an empty one (no allocation) in its place.
    pub fn take_record(&mut self) -> InvocationRecord {
        std::mem::replace(&mut self.record, InvocationRecord::empty())
    }

    /// Whether its record may be stored when it ends: always for
    /// asynchronous invocations, for the others with
    /// `Invocations.record_blocking` (a blocking run with
    /// [`args_if_failed`](Self::args_if_failed) only if it fails).
    pub fn is_recorded(&self, record_blocking: bool) -> bool {
        matches!(self.reply, Reply::Queue) || record_blocking
    }

    /// Whether its record is stored whatever the outcome.
    pub fn is_recorded_always(&self, record_blocking: bool) -> bool {
        self.is_recorded(record_blocking) && self.args_if_failed.is_none()
    }

    /// The kind of run it is, for the run counters.
    pub fn kind(&self) -> RunKind {
        match self.reply {
            Reply::ApiClient(_) => RunKind::Blocking,
            Reply::WebClient(_) => RunKind::Route,
            Reply::Queue => RunKind::Async,
            Reply::Caller { .. } => RunKind::Invoke,
            Reply::Delivery { .. } => RunKind::Event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_made_when_first_named_and_records_kept_as_configured() {
        let rec = InvocationRecord::queued(String::new(), "a".into(), serde_json::Value::Null, false, 0);
        let mut job = Job::new(rec, Reply::ApiClient(ConnRef { key: 0, gen: 1 }));
        assert!(job.record.id.is_empty());
        let id = job.id().to_owned();
        assert_eq!((id.len(), job.id()), (36, id.as_str()), "made once, then kept");
        assert!(!job.is_recorded(false) && job.is_recorded(true));
        job.reply = Reply::Queue;
        assert!(job.is_recorded(false));
        let taken = job.take_record();
        assert_eq!((taken.id, taken.action.as_str()), (id, "a"));
        assert!(job.record.id.is_empty() && job.record.action.is_empty());
    }
}
