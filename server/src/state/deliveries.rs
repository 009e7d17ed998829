//! The subscription partitions a worker delivers, and what it decides for
//! them: which messages make the next batch, and what a batch's outcome
//! writes (see `sl_store::Events` for the model).
//!
//! A worker tries to own the partitions assigned to it (by a hash of the
//! subscription and partition, over the process's workers); the store's
//! lease makes one server the owner of each. The owner keeps the
//! partition's cursor and pending list in memory, as the store has them,
//! and delivers one batch at a time:
//!
//! 1. **Batch.** The pending messages that are due, the first of each key
//!    (a key's later messages wait behind it), then messages read from the
//!    log at the cursor. A log message whose key has a pending message is
//!    *held*: it joins the pending list, behind it, and the batch goes on
//!    without it. So a key's messages are handled in publish order, and a
//!    message waiting to be retried holds up its key only.
//! 2. **Run.** The batch is one invocation of the subscription's action,
//!    `main({messages = {...}})`.
//! 3. **Commit.** Each message is acked or retried: by what the action
//!    said (`ack(m)`, `retry(m, {delay = s})`; the last word counts), else
//!    acked if the invocation succeeded and retried if it failed. A retry
//!    past `max_retries` makes a dead letter. One store call moves the
//!    cursor past the batch and writes the pending list's changes; only
//!    then does the next batch start. A crash before it redelivers the
//!    batch: at least once, at most one batch again per partition.
//!
//! Everything here is pure: the feature (`events/`) does the store calls
//! and runs the batches.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sl_store::{DeadLetter, Message, Pending, Subscription};

use crate::sandbox::Verdict;

/// Bytes of payloads a batch reads from the log at most (past the first
/// message).
pub(crate) const BATCH_BYTES: usize = 4 << 20;

/// A generation never given before in this process (see [`Part::gen`]).
pub(crate) fn fresh_gen() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where a partition's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not owned; the next claim at `next`.
    Unowned { next: Instant },
    /// A claim is under way on the pool.
    Claiming,
    /// A claim, read, or commit is under way on the pool.
    Busy,
    /// Owned, nothing running; look at the log again at `next` (sooner if
    /// a publish or a due retry says so).
    Idle { next: Instant },
    /// A batch runs.
    Running,
}

/// A message of a batch, with what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub message: Message,
    /// Deliveries before this one.
    pub attempts: u32,
    /// It came from the pending list (its entry is removed when done).
    pub pending: bool,
}

/// A batch being delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub messages: Vec<Delivery>,
    /// Log messages held behind a pending one of their key.
    pub held: Vec<Pending>,
    /// The cursor once the batch is committed.
    pub cursor: i64,
}

/// One subscription partition this worker delivers (or tries to).
pub(crate) struct Part {
    pub sub: Arc<Subscription>,
    pub partition: u32,
    pub phase: Phase,
    /// Changes whenever a batch starts or the state is dropped (to a value
    /// never used before, by any part: slots are reused): an answer for an
    /// older one is ignored.
    pub gen: u64,
    pub epoch: i64,
    pub cursor: i64,
    /// The pending list, by offset, as the store has it.
    pub pending: BTreeMap<i64, Pending>,
    /// A publish to the partition was seen while it was busy: look again
    /// as soon as it is idle.
    pub poke: bool,
    /// When the lease was last renewed (by a claim, a renewal or a commit).
    pub renewed: Instant,
    /// A renewal is under way (whatever the phase: a lease is renewed
    /// while a batch runs too).
    pub renewing: bool,
    /// The batch running or being committed.
    pub batch: Option<Batch>,
}

impl Part {
    /// A partition to claim from `now` on.
    pub fn new(sub: Arc<Subscription>, partition: u32, now: Instant) -> Self {
        Self {
            sub,
            partition,
            phase: Phase::Unowned { next: now },
            gen: fresh_gen(),
            epoch: 0,
            cursor: 0,
            pending: BTreeMap::new(),
            poke: false,
            renewed: now,
            renewing: false,
            batch: None,
        }
    }

    /// The lease was taken: where the store says to go on from.
    pub fn owned(&mut self, epoch: i64, cursor: i64, pending: Vec<Pending>, now: Instant) {
        self.epoch = epoch;
        self.cursor = cursor;
        self.pending = pending.into_iter().map(|p| (p.message.offset, p)).collect();
        self.phase = Phase::Idle { next: now };
        self.renewed = now;
    }

    /// The lease was lost (or the subscription changed under it): forget
    /// everything, claim again from `next`.
    pub fn disown(&mut self, next: Instant) {
        self.gen = fresh_gen();
        self.pending.clear();
        self.batch = None;
        self.phase = Phase::Unowned { next };
    }

    /// The first time a pending message is due, if any is (the first of
    /// its key only).
    pub fn next_due(&self) -> Option<i64> {
        heads(&self.pending).map(|p| p.not_before).min()
    }

    /// The next batch: due pending messages first, then `log` (read at the
    /// cursor, in offset order), up to the subscription's batch size.
    ///
    /// A key's pending messages go in offset order: one is taken if it is
    /// due and every earlier one of its key is taken too, so once a retry
    /// is done the messages held behind it go together, a batch at a time.
    /// A log message goes in if every pending message of its key is in the
    /// batch; else it is held.
    pub fn batch(&self, log: Vec<Message>, now_ms: i64) -> Batch {
        let size = self.sub.batch_size.max(1) as usize;
        let mut batch = Batch { cursor: self.cursor, ..Batch::default() };
        // Keys with a pending message left out of the batch.
        let mut blocked: HashSet<&str> = HashSet::new();
        for p in self.pending.values() {
            let key = p.message.key.as_deref();
            let free = key.is_none_or(|k| !blocked.contains(k));
            if free && p.not_before <= now_ms && batch.messages.len() < size {
                batch.messages.push(Delivery { message: p.message.clone(), attempts: p.attempts, pending: true });
            } else if let Some(k) = key {
                blocked.insert(k);
            }
        }
        let mut held: HashSet<String> = HashSet::new();
        for m in log {
            if m.offset < batch.cursor {
                continue;
            }
            let key_blocked = m.key.as_deref().is_some_and(|k| blocked.contains(k) || held.contains(k));
            if key_blocked {
                batch.cursor = m.offset + 1;
                held.extend(m.key.clone());
                batch.held.push(Pending { message: m, attempts: 0, not_before: 0, last_error: None });
                continue;
            }
            if batch.messages.len() >= size {
                break;
            }
            batch.cursor = m.offset + 1;
            batch.messages.push(Delivery { message: m, attempts: 0, pending: false });
        }
        batch
    }
}

/// The first pending message of each key, and every keyless one, in
/// offset order.
fn heads(pending: &BTreeMap<i64, Pending>) -> impl Iterator<Item = &Pending> {
    let mut seen: HashSet<&str> = HashSet::new();
    pending.values().filter(move |p| p.message.key.as_deref().is_none_or(|k| seen.insert(k)))
}

/// Every partition a worker delivers, and the batches that ended.
pub(crate) struct Deliveries {
    /// By slot (the `Reply::Delivery` of a batch names it).
    pub parts: slab::Slab<Part>,
    /// Batches that ended this turn: (slot, gen, outcome).
    pub ended: Vec<(usize, u64, Ran)>,
    /// The subscriptions are being listed from the store.
    pub syncing: bool,
    /// Another listing was asked for meanwhile (a change through the API).
    pub resync: bool,
    /// When they were last listed (`None`: never).
    pub synced: Option<Instant>,
    /// This worker's name on the leases it takes.
    pub owner: String,
    /// Retention is being applied; when it last was.
    pub sweeping: bool,
    pub swept: Option<Instant>,
}

impl Deliveries {
    /// No partitions yet; leases taken as `owner`.
    pub fn new(owner: String) -> Self {
        Self {
            parts: slab::Slab::new(),
            ended: Vec::new(),
            syncing: false,
            resync: false,
            synced: None,
            owner,
            sweeping: false,
            swept: None,
        }
    }
}

/// How a delivered batch went.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ran {
    /// The invocation's error, if it failed.
    pub error: Option<String>,
    pub verdicts: Vec<Verdict>,
    pub logs: String,
    pub invocation: String,
}

/// What a batch's outcome changes, for `Events::commit_delivery`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Offsets of pending entries that are done.
    pub done: Vec<i64>,
    /// Pending entries added or replaced.
    pub pending: Vec<Pending>,
    pub dead: Vec<DeadLetter>,
    /// Messages retried (for the metrics).
    pub retried: u64,
}

/// Bytes of a batch's logs each of its dead letters keeps at most (a
/// batch of 1,000 failing messages would otherwise copy its 64 KiB of logs
/// a thousand times); the invocation's record has them all.
pub(crate) const DEAD_LOGS: usize = 4096;

/// The logs a dead letter keeps: the lines of `logs` that fit in
/// [`DEAD_LOGS`] bytes, then a marker if some were left out.
fn dead_logs(logs: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut used = 0;
    for line in logs.lines() {
        if used + line.len() > DEAD_LOGS {
            out.push("...[logs cut: the invocation's record has them all]".to_string());
            break;
        }
        used += line.len();
        out.push(line.to_owned());
    }
    out
}

/// The delay before retry number `attempt` (1 for the first retry): the
/// subscription's backoff doubled per attempt, capped, then jittered by
/// `jitter` in [0, 1) to between 90% and 110% of it.
pub(crate) fn backoff(sub: &Subscription, attempt: u32, jitter: f64) -> i64 {
    let base = sub.backoff_ms.max(0) as f64;
    let raw = (base * 2f64.powi(attempt.saturating_sub(1).min(60) as i32)).min(sub.backoff_max_ms.max(0) as f64);
    (raw * (0.9 + 0.2 * jitter)).round() as i64
}

/// What `batch`'s outcome `ran` writes, at `now_ms`; `jitter` gives each
/// retry's jitter.
pub(crate) fn changes(
    sub: &Subscription,
    batch: &Batch,
    ran: &Ran,
    now_ms: i64,
    mut jitter: impl FnMut() -> f64,
) -> Changes {
    let mut out = Changes { pending: batch.held.clone(), ..Changes::default() };
    for d in &batch.messages {
        let m = &d.message;
        // The action's last word on the message, if it said one.
        let said = ran.verdicts.iter().rev().find(|v| v.partition == m.partition && v.offset == m.offset);
        let retry = match said {
            Some(v) => v.retry,
            None if ran.error.is_some() => Some(None),
            None => None,
        };
        let Some(delay) = retry else {
            if d.pending {
                out.done.push(m.offset);
            }
            continue;
        };
        out.retried += 1;
        let attempts = d.attempts + 1;
        let error = ran.error.clone().unwrap_or_else(|| "the action asked for a retry".to_string());
        if attempts > sub.max_retries {
            out.dead.push(DeadLetter {
                subscription: sub.name.clone(),
                message: m.clone(),
                attempts,
                error,
                logs: dead_logs(&ran.logs),
                invocation: Some(ran.invocation.clone()).filter(|i| !i.is_empty()),
                died: now_ms,
            });
            continue;
        }
        let wait = match delay {
            Some(ms) => ms.min(i64::MAX as u64) as i64,
            None => backoff(sub, attempts, jitter()),
        };
        out.pending.push(Pending {
            message: m.clone(),
            attempts,
            not_before: now_ms.saturating_add(wait),
            last_error: Some(error),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(batch_size: u32, max_retries: u32) -> Arc<Subscription> {
        Arc::new(Subscription {
            name: "s".into(),
            topic: "t".into(),
            action: "a".into(),
            batch_size,
            max_wait_ms: 0,
            max_retries,
            backoff_ms: 1000,
            backoff_max_ms: 60_000,
            created: 0,
        })
    }

    fn msg(offset: i64, key: Option<&str>) -> Message {
        Message { partition: 0, offset, key: key.map(Into::into), payload: offset.to_string(), published: 0 }
    }

    fn pending(offset: i64, key: &str, attempts: u32, not_before: i64) -> Pending {
        Pending { message: msg(offset, Some(key)), attempts, not_before, last_error: Some("e".into()) }
    }

    fn offsets(b: &Batch) -> Vec<i64> {
        b.messages.iter().map(|d| d.message.offset).collect()
    }

    #[test]
    fn a_batch_takes_due_pending_heads_then_the_log_holding_blocked_keys() {
        let mut part = Part::new(sub(10, 3), 0, Instant::now());
        part.owned(1, 10, vec![pending(3, "a", 1, 50), pending(5, "a", 0, 0), pending(7, "b", 2, 500)], Instant::now());
        let log = vec![msg(10, Some("a")), msg(11, Some("c")), msg(12, None), msg(13, Some("b")), msg(14, Some("c"))];
        let b = part.batch(log, 100);
        // 3 is due and 5 waits behind it: both go, and so does 10 of the
        // same key; 7 is not due yet, so 13 of its key is held.
        assert_eq!(offsets(&b), vec![3, 5, 10, 11, 12, 14]);
        let held: Vec<i64> = b.held.iter().map(|p| p.message.offset).collect();
        assert_eq!(held, vec![13]);
        assert_eq!(b.cursor, 15);
        // Before 3 is due, key a is held whole.
        let b = part.batch(vec![msg(10, Some("a")), msg(11, Some("c"))], 10);
        assert_eq!(offsets(&b), vec![11]);
        assert_eq!(b.held.iter().map(|p| p.message.offset).collect::<Vec<_>>(), vec![10]);
        // A full batch leaves the rest of a key's pending messages, and its
        // log messages, for later.
        let mut small = Part::new(sub(1, 3), 0, Instant::now());
        small.owned(1, 10, vec![pending(3, "a", 1, 0), pending(5, "a", 0, 0)], Instant::now());
        let b = small.batch(vec![msg(10, Some("a"))], 100);
        assert_eq!((offsets(&b), b.held.len(), b.cursor), (vec![3], 1, 11));
        assert_eq!(part.next_due(), Some(50));
    }

    #[test]
    fn a_full_batch_stops_the_cursor_at_the_first_message_left_out() {
        let part = Part::new(sub(2, 3), 0, Instant::now());
        let b = part.batch(vec![msg(0, Some("x")), msg(1, Some("y")), msg(2, Some("z"))], 0);
        assert_eq!((offsets(&b), b.cursor), (vec![0, 1], 2));
        let b = part.batch(vec![], 0);
        assert_eq!((offsets(&b), b.cursor), (vec![], 0));
    }

    fn ran(error: Option<&str>, verdicts: Vec<(i64, Option<Option<u64>>)>) -> Ran {
        Ran {
            error: error.map(Into::into),
            verdicts: verdicts.into_iter().map(|(offset, retry)| Verdict { partition: 0, offset, retry }).collect(),
            logs: "one\ntwo\n".into(),
            invocation: "inv".into(),
        }
    }

    #[test]
    fn success_acks_failure_retries_and_the_action_has_the_last_word() {
        let s = sub(10, 2);
        let part = Part::new(Arc::clone(&s), 0, Instant::now());
        let mut b = part.batch(vec![msg(0, Some("a")), msg(1, Some("b")), msg(2, Some("c"))], 0);
        b.messages[2].pending = true;
        b.messages[2].attempts = 2;
        let c = changes(&s, &b, &ran(None, vec![]), 1000, || 0.5);
        assert_eq!((c.done, c.pending.len(), c.dead.len()), (vec![2], 0, 0));
        // A failure retries all (the third is past max_retries: dead) but what was acked.
        let c = changes(&s, &b, &ran(Some("boom"), vec![(1, None)]), 1000, || 0.5);
        assert_eq!(
            c.pending.iter().map(|p| (p.message.offset, p.attempts, p.not_before)).collect::<Vec<_>>(),
            vec![(0, 1, 2000)]
        );
        assert_eq!(c.pending[0].last_error.as_deref(), Some("boom"));
        assert_eq!((c.dead.len(), c.dead[0].message.offset, c.dead[0].attempts), (1, 2, 3));
        assert_eq!((c.dead[0].logs.clone(), c.dead[0].error.as_str()), (vec!["one".into(), "two".into()], "boom"));
        assert_eq!(c.retried, 2);
        // A success with an explicit retry, with a delay; the last verdict counts.
        let c = changes(&s, &b, &ran(None, vec![(0, None), (0, Some(Some(5000))), (1, Some(None))]), 1000, || 0.0);
        let got: Vec<_> = c.pending.iter().map(|p| (p.message.offset, p.not_before)).collect();
        assert_eq!(got, vec![(0, 6000), (1, 1900)]);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_ten_percent_jitter() {
        let s = sub(1, 1);
        assert_eq!([1, 2, 3].map(|a| backoff(&s, a, 0.5)), [1000, 2000, 4000]);
        assert_eq!((backoff(&s, 1, 0.0), backoff(&s, 1, 0.999_999)), (900, 1100));
        assert_eq!(backoff(&s, 40, 0.5), 60_000);
    }
}
