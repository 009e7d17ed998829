//! Messages waiting for the commit that appends them to their topics:
//! group commit, as for submits (`submits.rs`).
//!
//! A message is durable before its publisher hears its offset. A worker
//! keeps at most one commit of messages in flight; messages published
//! meanwhile, from HTTP clients and from actions' `publish()`, wait here
//! and go into the next commit together (one store call, one transaction
//! on SQLite), up to [`MAX_BATCH`] messages at a time. A commit starts at
//! the end of a turn of the loop.

use crate::reactor::ConnRef;

/// Messages committed together at most.
pub(crate) const MAX_BATCH: usize = 1024;

/// A message to append, before its partition is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub topic: String,
    pub key: Option<String>,
    /// JSON text.
    pub payload: String,
    pub idempotency_key: Option<String>,
}

/// Who waits for the offsets of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publisher {
    /// An invocation parked in `publish()`: run `key` of the executor, if
    /// its id is still `id`.
    Run { key: usize, id: u64 },
    /// A client of `POST /topics/:name` (`batch`: of
    /// `POST /topics/:name/batch`, answered with every offset).
    Client { conn: ConnRef, batch: bool },
}

/// One publish: a run's message, or a request's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub from: Publisher,
    pub messages: Vec<Outgoing>,
}

/// The publishes of one worker not yet committed.
#[derive(Default)]
pub(crate) struct Publishes {
    waiting: Vec<Publish>,
    /// Messages in `waiting`.
    count: usize,
    in_flight: bool,
    /// Keyless messages spread round robin over partitions.
    pub round_robin: u32,
}

impl Publishes {
    /// Adds a publish to the next commit.
    pub fn push(&mut self, publish: Publish) {
        self.count += publish.messages.len();
        self.waiting.push(publish);
    }

    /// Whether a commit should start: some wait and none is in flight.
    pub fn wants_commit(&self) -> bool {
        !self.in_flight && !self.waiting.is_empty()
    }

    /// Takes the next commit's publishes (whole publishes, at least one,
    /// up to about [`MAX_BATCH`] messages) and marks it in flight.
    pub fn take(&mut self) -> Vec<Publish> {
        let mut n = 0;
        let mut end = 0;
        for p in &self.waiting {
            if end > 0 && n + p.messages.len() > MAX_BATCH {
                break;
            }
            n += p.messages.len();
            end += 1;
        }
        self.count -= n;
        self.in_flight = end > 0;
        self.waiting.drain(..end).collect()
    }

    /// The commit in flight ended.
    pub fn committed(&mut self) {
        self.in_flight = false;
    }

    /// Messages waiting (not those in flight).
    pub fn waiting(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(n: usize) -> Publish {
        let m = Outgoing { topic: "t".into(), key: None, payload: "1".into(), idempotency_key: None };
        Publish { from: Publisher::Run { key: 0, id: 0 }, messages: vec![m; n] }
    }

    #[test]
    fn one_commit_at_a_time_of_whole_publishes_up_to_the_batch() {
        let mut p = Publishes::default();
        assert!(!p.wants_commit());
        p.push(publish(1000));
        p.push(publish(30));
        p.push(publish(2));
        assert!(p.wants_commit());
        assert_eq!(p.take().len(), 1, "1030 would be past the batch");
        assert!(!p.wants_commit(), "one in flight");
        assert_eq!(p.waiting(), 32);
        p.committed();
        assert_eq!(p.take().len(), 2);
        p.committed();
        p.push(publish(5000));
        assert_eq!(p.take().len(), 1, "a publish larger than a batch goes alone");
        assert_eq!((p.waiting(), p.take().len()), (0, 0));
    }
}
