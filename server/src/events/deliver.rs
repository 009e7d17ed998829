//! The partitions a worker delivers: their leases, the reads of their
//! logs, the batches they run and the commits of their outcomes.
//!
//! Each partition of each subscription is assigned to one worker of the
//! process (a hash of the subscription's name plus the partition, modulo
//! the workers), and that worker tries to hold its lease. Servers sharing
//! a store race for each lease; the store gives it to one. A lease lasts
//! [`LEASE`]: the owner renews it every [`RENEW_EVERY`] (while a batch runs
//! too) and with every commit, and starts a batch only with most of a lease
//! ahead of it; a dead server's partitions are taken over once its leases
//! end (another server tries every [`CLAIM_EVERY`]). On an embedded store
//! (SQLite, memory) this process is the only user, and its workers' names
//! on leases are the same from one start to the next, so a restart takes
//! its partitions back at once instead of waiting for the old leases.
//!
//! A partition's life, one step at a time, each store call on the pool
//! ([`Phase`] says where it is): claim, then read the log at the cursor,
//! make a batch (`Part::batch`), run it as an invocation of the
//! subscription's action (its `Reply` is `Delivery`, and `invoke` hands
//! the outcome back through `Deliveries::ended`), commit what the outcome
//! changes (`state::delivery_changes`), and read again. When the log has
//! nothing new the partition is idle until a publish through this process
//! pokes it, a pending retry falls due, or [`POLL_EVERY`] passes.
//!
//! Every half second the subscriptions are listed from the store: new ones
//! get their partitions here, deleted ones lose them, and a partition
//! whose epoch moved (a reset, a redrive, another owner) is disowned and
//! claimed again, so that it goes on from what the store holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sl_store::{DeliveryCommit, InvocationRecord, JsonArgs, Message, PartitionState, StoreError, SubscriptionInfo};
use tracing::warn;

use super::fnv1a;
use crate::exec::{Job, Reply};
use crate::ids::{new_invocation_id, now_ms};
use crate::invoke;
use crate::sandbox::{Args, ArgsText};
use crate::state::{delivery_changes, fresh_gen, Batch, DeliveryChanges, Part, Phase, State, BATCH_BYTES};

/// How long a lease lasts.
pub(crate) const LEASE: Duration = Duration::from_secs(10);
/// How often an idle owner renews its lease.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often a partition another server holds is tried again.
pub(crate) const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// How often an idle partition's log is read for messages published
/// through other processes.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(250);
/// How often the subscriptions are listed from the store.
pub(crate) const SYNC_EVERY: Duration = Duration::from_millis(500);

/// The slower work, every tick of the loop: list the subscriptions when
/// due, then move every partition that waits for a time.
pub(crate) fn tick(st: &mut State, now: Instant) {
    if !st.deliveries.syncing && st.deliveries.synced.is_none_or(|t| now.duration_since(t) >= SYNC_EVERY) {
        sync(st);
    }
    let slots: Vec<usize> = st.deliveries.parts.iter().map(|(k, _)| k).collect();
    let now_wall = now_ms();
    for slot in slots {
        let Some(part) = st.deliveries.parts.get(slot) else { continue };
        let owned = matches!(part.phase, Phase::Idle { .. } | Phase::Busy | Phase::Running);
        // Renewed while a batch runs too: a batch that outlives the lease
        // would let another server deliver the partition at once.
        if owned && !part.renewing && now.duration_since(part.renewed) >= RENEW_EVERY {
            renew(st, slot);
        }
        let Some(part) = st.deliveries.parts.get(slot) else { continue };
        match part.phase {
            Phase::Unowned { next } if next <= now => claim(st, slot),
            Phase::Idle { next } if part.poke || next <= now || part.next_due().is_some_and(|t| t <= now_wall) => {
                read(st, slot)
            }
            _ => {}
        }
    }
}

/// A message was published to `partition` of `topic` through this
/// process: read it now if this worker delivers that partition and it is
/// idle, else as soon as it is.
pub(crate) fn poke(st: &mut State, topic: &str, partition: u32) {
    let slots: Vec<usize> = st
        .deliveries
        .parts
        .iter()
        .filter(|(_, p)| p.partition == partition && p.sub.topic == topic)
        .map(|(k, _)| k)
        .collect();
    for slot in slots {
        let Some(part) = st.deliveries.parts.get_mut(slot) else { continue };
        part.poke = true;
        if matches!(part.phase, Phase::Idle { .. }) {
            read(st, slot);
        }
    }
}

/// Lists the subscriptions, to match the partitions delivered here (once
/// the listing under way ends, if one is).
pub(crate) fn sync(st: &mut State) {
    if st.deliveries.syncing {
        st.deliveries.resync = true;
        return;
    }
    st.deliveries.syncing = true;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let listed = store.events().list_subscriptions(now_ms());
        move |st: &mut State| synced(st, listed)
    });
}

/// Whether partition `partition` of subscription `name` is this worker's.
fn assigned(st: &State, name: &str, partition: u32) -> bool {
    let workers = st.cfg.server.workers.max(1) as u64;
    let me = st.peers.metrics().1 as u64;
    fnv1a(name.as_bytes()).wrapping_add(u64::from(partition)) % workers == me
}

fn synced(st: &mut State, listed: Result<Vec<SubscriptionInfo>, StoreError>) {
    let now = Instant::now();
    st.deliveries.syncing = false;
    st.deliveries.synced = Some(now);
    if std::mem::take(&mut st.deliveries.resync) {
        sync(st);
    }
    let infos = match listed {
        Ok(infos) => infos,
        Err(e) => {
            warn!("cannot list the subscriptions: {e}");
            return;
        }
    };
    // Partitions of subscriptions gone, or whose topic changed.
    let live: std::collections::HashMap<&str, (&str, usize)> = infos
        .iter()
        .map(|i| (i.subscription.name.as_str(), (i.subscription.topic.as_str(), i.partitions.len())))
        .collect();
    let gone: Vec<usize> = st
        .deliveries
        .parts
        .iter()
        .filter(|(_, p)| {
            live.get(p.sub.name.as_str()).is_none_or(|(topic, n)| *topic != p.sub.topic || p.partition as usize >= *n)
        })
        .map(|(k, _)| k)
        .collect();
    for slot in gone {
        st.deliveries.parts.remove(slot);
    }
    let owner = st.deliveries.owner.clone();
    // Slots by (subscription, partition): one lookup each below, however
    // many partitions there are.
    let index: std::collections::HashMap<(String, u32), usize> =
        st.deliveries.parts.iter().map(|(k, p)| ((p.sub.name.clone(), p.partition), k)).collect();
    for info in infos {
        let sub = Arc::new(info.subscription);
        for (i, state) in info.partitions.iter().enumerate() {
            let partition = i as u32;
            if !assigned(st, &sub.name, partition) {
                continue;
            }
            match index.get(&(sub.name.clone(), partition)).copied() {
                None => {
                    st.deliveries.parts.insert(Part::new(Arc::clone(&sub), partition, now));
                }
                // A subscription deleted and made again under the same name
                // (a deploy that changed it) starts over.
                Some(slot) if st.deliveries.parts[slot].sub.created != sub.created => {
                    st.deliveries.parts.remove(slot);
                    st.deliveries.parts.insert(Part::new(Arc::clone(&sub), partition, now));
                }
                Some(slot) => {
                    let part = &mut st.deliveries.parts[slot];
                    if *part.sub != *sub {
                        part.sub = Arc::clone(&sub);
                    }
                    // Someone else changed it (a reset, a redrive) or took it.
                    let moved = state.epoch != part.epoch || state.owner.as_deref() != Some(owner.as_str());
                    if moved && matches!(part.phase, Phase::Idle { .. }) {
                        part.disown(now);
                    }
                }
            }
        }
    }
}

/// Tries to take the lease of the partition in `slot`.
fn claim(st: &mut State, slot: usize) {
    let part = &mut st.deliveries.parts[slot];
    part.phase = Phase::Claiming;
    let (name, partition, gen) = (part.sub.name.clone(), part.partition, part.gen);
    let owner = st.deliveries.owner.clone();
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let claimed = store.events().claim_partition(&name, partition, &owner, now_ms(), LEASE.as_millis() as i64);
        move |st: &mut State| claimed_partition(st, slot, gen, claimed)
    });
}

fn claimed_partition(st: &mut State, slot: usize, gen: u64, claimed: Result<Option<PartitionState>, StoreError>) {
    let now = Instant::now();
    let Some(part) = st.deliveries.parts.get_mut(slot).filter(|p| p.gen == gen) else { return };
    match claimed {
        Ok(Some(state)) => {
            part.owned(state.epoch, state.cursor, state.pending, now);
            read(st, slot);
        }
        Ok(None) => part.phase = Phase::Unowned { next: now + CLAIM_EVERY },
        Err(e) => {
            warn!(subscription = %part.sub.name, partition = part.partition, "cannot claim: {e}");
            part.phase = Phase::Unowned { next: now + CLAIM_EVERY };
        }
    }
}

/// Extends the lease of an owned partition, whatever it is doing.
fn renew(st: &mut State, slot: usize) {
    let part = &mut st.deliveries.parts[slot];
    part.renewing = true;
    let (name, partition, epoch) = (part.sub.name.clone(), part.partition, part.epoch);
    let owner = st.deliveries.owner.clone();
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let renewed =
            store.events().renew_partition(&name, partition, &owner, epoch, now_ms(), LEASE.as_millis() as i64);
        move |st: &mut State| {
            let now = Instant::now();
            let same = |p: &&mut Part| p.sub.name == name && p.partition == partition;
            let Some(part) = st.deliveries.parts.get_mut(slot).filter(same) else { return };
            part.renewing = false;
            if part.epoch != epoch || matches!(part.phase, Phase::Unowned { .. } | Phase::Claiming) {
                return;
            }
            match renewed {
                Ok(()) => part.renewed = now,
                Err(e) => {
                    if !matches!(e, StoreError::LeaseLost { .. }) {
                        warn!(subscription = %part.sub.name, partition = part.partition, "cannot renew the lease: {e}");
                    }
                    // A batch running is disowned too: its outcome is
                    // ignored, and the new owner delivers it again.
                    part.disown(now + CLAIM_EVERY);
                }
            }
        }
    });
}

/// Reads the log of the partition in `slot` at its cursor, for a batch.
fn read(st: &mut State, slot: usize) {
    let part = &mut st.deliveries.parts[slot];
    part.phase = Phase::Busy;
    part.poke = false;
    let (topic, partition, gen, cursor) = (part.sub.topic.clone(), part.partition, part.gen, part.cursor);
    let limit = part.sub.batch_size.max(1) as usize;
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let log = store.events().read_messages(&topic, partition, cursor, limit, BATCH_BYTES);
        move |st: &mut State| have_read(st, slot, gen, log)
    });
}

fn have_read(st: &mut State, slot: usize, gen: u64, log: Result<Vec<Message>, StoreError>) {
    let now = Instant::now();
    let now_wall = now_ms();
    let Some(part) = st.deliveries.parts.get_mut(slot).filter(|p| p.gen == gen) else { return };
    let log = match log {
        Ok(log) => log,
        Err(e) => {
            warn!(subscription = %part.sub.name, partition = part.partition, "cannot read the log: {e}");
            part.phase = Phase::Idle { next: now + CLAIM_EVERY };
            return;
        }
    };
    // A batch starts only with most of a lease ahead of it.
    if now.duration_since(part.renewed) >= LEASE - RENEW_EVERY {
        part.phase = Phase::Idle { next: now };
        if !part.renewing {
            renew(st, slot);
        }
        return;
    }
    let batch = part.batch(log, now_wall);
    if batch.messages.is_empty() {
        if batch.held.is_empty() {
            part.phase = Phase::Idle { next: now + POLL_EVERY };
        } else {
            // Only messages to hold: write them, and read on.
            let cursor = batch.cursor;
            let changes = DeliveryChanges { pending: batch.held, ..DeliveryChanges::default() };
            commit(st, slot, cursor, changes);
        }
        return;
    }
    // A partial batch waits for more, up to `max_wait_ms` after its oldest
    // new message was published.
    let wait = part.sub.max_wait_ms;
    if wait > 0 && batch.messages.len() < part.sub.batch_size as usize {
        let oldest = batch.messages.iter().filter(|d| !d.pending).map(|d| d.message.published).min();
        if let Some(oldest) = oldest {
            let left = oldest.saturating_add(wait).saturating_sub(now_wall);
            if left > 0 {
                part.phase = Phase::Idle { next: now + Duration::from_millis(left as u64) };
                return;
            }
        }
    }
    run(st, slot, batch);
}

/// Runs `batch` as an invocation of the subscription's action.
fn run(st: &mut State, slot: usize, batch: Batch) {
    let part = &mut st.deliveries.parts[slot];
    part.gen = fresh_gen();
    part.phase = Phase::Running;
    let args = batch_args(&part.sub.name, &part.sub.topic, part.partition, &batch);
    let record =
        InvocationRecord::queued(new_invocation_id(), part.sub.action.clone(), JsonArgs::default(), false, now_ms());
    let mut job = Job::new(record, Reply::Delivery { slot, gen: part.gen });
    part.batch = Some(batch);
    match ArgsText::parse(args.into_bytes()) {
        Ok(text) => {
            job.args = Some(Args::Text(text));
            invoke::start(st, job);
        }
        Err(e) => invoke::fail(st, job, "internal", &format!("the batch's arguments: {e}")),
    }
}

/// The arguments of a batch's invocation, as JSON text: the payloads are
/// stored as JSON text and go in as they are.
fn batch_args(sub: &str, topic: &str, partition: u32, batch: &Batch) -> String {
    use std::fmt::Write;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out =
        format!("{{\"subscription\":{},\"topic\":{},\"partition\":{partition},\"messages\":[", q(sub), q(topic));
    for (i, d) in batch.messages.iter().enumerate() {
        let m = &d.message;
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"partition\":{},\"offset\":{},\"key\":{},\"attempts\":{},\"published\":{},\"payload\":{}}}",
            m.partition,
            m.offset,
            m.key.as_deref().map_or("null".to_string(), q),
            d.attempts + 1,
            m.published,
            m.payload
        );
    }
    out.push_str("]}");
    out
}

/// The batches that ended this turn: commit what each changes. Called
/// once a turn, mostly with none: inlined, so that costs a load and a
/// compare.
#[inline]
pub(crate) fn ended(st: &mut State) {
    if !st.deliveries.ended.is_empty() {
        commit_ended(st);
    }
}

#[inline(never)]
fn commit_ended(st: &mut State) {
    let now_wall = now_ms();
    for (slot, gen, ran) in std::mem::take(&mut st.deliveries.ended) {
        let Some(part) = st.deliveries.parts.get_mut(slot).filter(|p| p.gen == gen) else { continue };
        let Some(batch) = part.batch.take() else { continue };
        let changes = delivery_changes(&part.sub, &batch, &ran, now_wall, jitter);
        if st.cfg.server.metrics {
            let m = st.peers.metrics().0.subscription(&part.sub.name);
            m.batch(batch.messages.len() as u64, changes.retried, changes.dead.len() as u64);
        }
        commit(st, slot, batch.cursor, changes);
    }
}

/// A jitter in [0, 1) for a retry's delay.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Writes a batch's outcome (or held messages) and moves the cursor.
fn commit(st: &mut State, slot: usize, cursor: i64, changes: DeliveryChanges) {
    let part = &mut st.deliveries.parts[slot];
    part.phase = Phase::Busy;
    let gen = part.gen;
    let commit = DeliveryCommit {
        subscription: part.sub.name.clone(),
        partition: part.partition,
        owner: st.deliveries.owner.clone(),
        epoch: part.epoch,
        now_ms: now_ms(),
        lease_ms: LEASE.as_millis() as i64,
        cursor,
        done: changes.done,
        pending: changes.pending,
        dead: changes.dead,
    };
    let store = Arc::clone(&st.store);
    st.pool.spawn(move || {
        let result = store.events().commit_delivery(&commit);
        move |st: &mut State| committed(st, slot, gen, commit, result)
    });
}

fn committed(st: &mut State, slot: usize, gen: u64, commit: DeliveryCommit, result: Result<(), StoreError>) {
    let now = Instant::now();
    let Some(part) = st.deliveries.parts.get_mut(slot).filter(|p| p.gen == gen) else { return };
    if let Err(e) = result {
        if !matches!(e, StoreError::LeaseLost { .. }) {
            warn!(subscription = %part.sub.name, partition = part.partition, "cannot commit a batch: {e}");
        }
        // Claimed again, it goes on from what the store holds: the batch
        // is delivered again.
        part.disown(now + CLAIM_EVERY);
        return;
    }
    part.cursor = commit.cursor;
    for offset in &commit.done {
        part.pending.remove(offset);
    }
    for d in &commit.dead {
        part.pending.remove(&d.message.offset);
    }
    for p in commit.pending {
        part.pending.insert(p.message.offset, p);
    }
    part.renewed = now;
    read(st, slot);
}
