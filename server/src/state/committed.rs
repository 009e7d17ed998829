//! The records of asynchronous invocations that finished before their
//! submit was committed, kept in memory for a moment after the commit
//! wrote them.
//!
//! A client that submits and then asks for the result at once
//! (`GET /invocation/:id`, as `slcli` and the bench's round trip do) would
//! otherwise wait for a store call on the pool, which waits for the
//! connection behind the commit in flight. Most such invocations end in
//! their first time slice, before their commit: their final record is
//! written by that commit (see [`Submits`](super::Submits)) and was
//! dropped after it. Here the last [`KEEP`] of them stay, for at most
//! [`MAX_AGE`], and a lookup reads them from the newest back.
//!
//! The cost is on the submit path, so it is small: a record moves into a
//! ring in place of being dropped (the one it replaces is dropped
//! instead), with no hashing and no copy; its size is counted (a walk of
//! its result) so that the ring holds at most [`MAX_BYTES`], and a record
//! over [`MAX_RECORD`] is not kept. A lookup compares ids, newest
//! first: at most [`KEEP`] short comparisons, far less than the store
//! call it saves. A record here is terminal and stored, so it cannot
//! change; the store deletes the oldest records first, and these are the
//! newest.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sl_store::InvocationRecord;

/// How many records are kept.
pub(crate) const KEEP: usize = 256;

/// How long a record is served from here after its commit.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);

/// Most bytes of records kept (their [`stored_size`](InvocationRecord::stored_size)s).
pub(crate) const MAX_BYTES: u64 = 4 << 20;

/// Records bigger than this are not kept.
pub(crate) const MAX_RECORD: u64 = 64 << 10;

/// The last [`KEEP`] records committed finished, newest at the back.
#[derive(Default)]
pub(crate) struct Committed {
    ring: VecDeque<(Instant, u64, InvocationRecord)>,
    /// The sizes of the records in `ring`, added up.
    bytes: u64,
}

impl Committed {
    /// Keeps `rec`, committed finished at `now`, in place of the oldest
    /// (of as many of the oldest as make room for it).
    pub fn keep(&mut self, rec: InvocationRecord, now: Instant) {
        let size = rec.stored_size();
        if size > MAX_RECORD {
            return;
        }
        while self.ring.len() >= KEEP || self.bytes + size > MAX_BYTES {
            let Some((_, old, _)) = self.ring.pop_front() else { break };
            self.bytes -= old;
        }
        self.bytes += size;
        self.ring.push_back((now, size, rec));
    }

    /// The record of invocation `id`, if it was committed finished less
    /// than [`MAX_AGE`] before `now` and is among the last [`KEEP`].
    pub fn get(&self, id: &str, now: Instant) -> Option<&InvocationRecord> {
        self.ring
            .iter()
            .rev()
            .take_while(|(at, _, _)| now.saturating_duration_since(*at) < MAX_AGE)
            .find(|(_, _, rec)| rec.id == id)
            .map(|(_, _, rec)| rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sl_store::{InvocationStatus, JsonArgs};

    fn rec(id: &str) -> InvocationRecord {
        let mut r = InvocationRecord::queued(id.into(), "a".into(), JsonArgs::empty(), true, 1);
        r.status = InvocationStatus::Succeeded;
        r
    }

    #[test]
    fn the_last_records_are_served_until_they_are_old() {
        let mut c = Committed::default();
        let t0 = Instant::now();
        for i in 0..KEEP + 10 {
            c.keep(rec(&format!("r{i}")), t0);
        }
        assert!(c.get("r9", t0).is_none(), "the oldest made room");
        assert_eq!(c.get("r10", t0).map(|r| r.id.as_str()), Some("r10"));
        assert_eq!(c.get(&format!("r{}", KEEP + 9), t0).map(|r| r.id.as_str()), Some("r265"));
        assert!(c.get("nope", t0).is_none());
        assert!(c.get("r10", t0 + MAX_AGE).is_none(), "too old");
        // A newer record is still served when older ones are too old.
        c.keep(rec("new"), t0 + MAX_AGE);
        assert!(c.get("new", t0 + MAX_AGE).is_some());
        assert!(c.get("r20", t0 + MAX_AGE).is_none());
    }

    #[test]
    fn the_ring_holds_a_bounded_number_of_bytes() {
        let mut c = Committed::default();
        let t0 = Instant::now();
        let big = |id: &str, n: usize| {
            let mut r = rec(id);
            r.result = Some(serde_json::Value::String("x".repeat(n)));
            r
        };
        c.keep(big("huge", MAX_RECORD as usize), t0);
        assert!(c.get("huge", t0).is_none(), "a record over MAX_RECORD is not kept");
        let each = (MAX_RECORD / 2) as usize;
        for i in 0..200 {
            c.keep(big(&format!("b{i}"), each), t0);
            assert!(c.bytes <= MAX_BYTES, "{} bytes", c.bytes);
        }
        assert!(c.get("b199", t0).is_some() && c.get("b0", t0).is_none());
        assert_eq!(c.bytes, c.ring.iter().map(|(_, n, _)| n).sum::<u64>());
    }
}
