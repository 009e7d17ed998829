//! [`Events`] on MongoDB: topics, subscriptions and dead letters shared by
//! every server on the database, with single-document atomic operations
//! only (no transactions, no change streams).
//!
//! # Collections
//!
//! - [`TOPICS`]: one document per topic, `_id` its name, with its settings
//!   and `uid`, a random id given at creation: everything below a topic is
//!   keyed by it, so that what an older topic of the same name left behind
//!   never shows in a new one. `deleting` is set while the topic is being
//!   deleted (see below).
//! - [`TOPIC_PARTITIONS`]: one document per partition, `_id`
//!   `"{topic}:{partition}"`, holding the topic's `uid`; `next`, the offset
//!   counter; `first`, the *watermark* (every offset below it is deleted);
//!   `last_pub`, the latest publish time given; and `messages` and `bytes`,
//!   what the partition retains, so that `get_topic` reads one document a
//!   partition and never the log.
//! - [`MESSAGES`]: one document per message: `tuid` (the topic's uid),
//!   `partition`, `offset`, `key`, `payload`, `published`, `size`, and
//!   `idem_key` when it has one. A *tombstone* is a document with
//!   `tomb: true` and no payload at an offset that holds no message (see
//!   below); readers skip it, and it counts for nothing.
//! - [`SUBSCRIPTIONS`]: one document per subscription, `_id` its name,
//!   with its settings, its `uid`, its topic's partition count and the
//!   cursors it started at.
//! - [`SUBSCRIPTION_PARTITIONS`]: one document per partition, `_id`
//!   `"{subscription}:{partition}"`, with the subscription's `uid`,
//!   `cursor`, `owner`, `lease_until`, `epoch` and `gen` (below).
//! - [`PENDING`]: one document per pending entry, with a copy of its
//!   message, `_id` `"{uid}:{partition}:{gen}:{offset}"`.
//! - [`DEAD_LETTERS`]: one document per dead letter, `_id`
//!   `"{uid}:{partition}:{offset}"`.
//!
//! Indexes (see `indexes.rs`): messages are unique by
//! `{tuid, partition, offset}` (no two writers fill one offset) and by
//! `{tuid, idem_key}` among those with a key (partial index: two servers
//! publishing one key at once append one message), and are found oldest
//! first by `{tuid, published, partition, offset}` (retention, and
//! [`Position::Time`]); subscriptions by `{topic}` (a topic's deletion);
//! pending entries by `{uid, partition, gen, offset}`; dead letters by
//! `{uid, died, partition, offset}`.
//!
//! # Offsets
//!
//! A publish reserves the offsets of a partition's messages with one
//! `findAndModify` of the partition's document (`$inc` of `next` by their
//! number, and of `messages` and `bytes` by what they count), then inserts
//! them with one unordered `insertMany`. Between the two, the offsets are
//! taken and not yet written; a reader must not go past them (the contract
//! of [`read_messages`](Events::read_messages)), so it stops at the first
//! missing offset below a present one. A publisher may die between the
//! two writes, though, and its offsets would stop every reader for ever:
//! a reader that has seen the same gap for [`GAP_TIMEOUT`] (measured by its
//! own clock, from the first time it saw it) fills it with tombstones and
//! reads on. Nothing was acknowledged for such an offset: the unique index
//! on the offset decides between the tombstone and a publisher that was
//! only slow, and a publisher whose insert loses to a tombstone reserves
//! new offsets and inserts its message again, so a publish that returns
//! is readable. (A publisher stalled that long may so see part of one
//! call's messages of a partition appended after the rest.)
//!
//! The same `findAndModify` raises `last_pub` to the publish time and
//! stamps the messages with it: publish times never decrease along a
//! partition, even when servers' clocks disagree (a message may be stamped
//! a little later than its server's clock said). Retention by age and by
//! size therefore deletes a prefix of each partition, and moves its
//! watermark.
//!
//! # Idempotency keys
//!
//! Before reserving, a publish looks the call's keys up (one `find`) and
//! answers those held [`Published::Existing`]; a key repeated in the call
//! is appended once. Two servers publishing one key at once both reserve
//! an offset, and the partial unique index refuses the second insert: that
//! publisher answers `Existing` with the holder's place, takes back what it
//! counted, and writes a tombstone at the offset it reserved, so that
//! readers need not wait [`GAP_TIMEOUT`] for it. Only in that race does a
//! message not appended take an offset.
//!
//! # Retention
//!
//! `purge_messages` finds the oldest messages of the topic (by the
//! `{tuid, published, partition, offset}` index, a batch at a time) and,
//! for each partition, moves the watermark past those it deletes with one
//! `findAndModify` conditional on the watermark it read, which takes their
//! count and sizes off the partition's totals in the same update: two
//! servers purging at once each account for a distinct range, exactly.
//! Then it deletes the documents below the new watermark (`deleteMany`),
//! whoever counted them; readers never read below the watermark, so they
//! never see that a delete is still to come. A publish that reserved an
//! offset before a purge moved the watermark past it, and wrote it after,
//! left a message older than what retention deleted: it is below the
//! watermark, never read (retention deleted it, in effect), and the next
//! purge of the partition deletes it; the totals count it until then and
//! after (that purge did not see it).
//!
//! # Subscriptions
//!
//! A claim is a `findAndModify` conditional on the caller being the owner,
//! which extends its lease at the same epoch; failing that, one
//! conditional on `lease_until < now_ms`, which sets the owner and
//! increases the epoch. A partition without owner has `lease_until`
//! `i64::MIN`, so that this one condition covers it too. Two claimers
//! never both match: the first one's update makes the condition false for
//! the second (for a positive `lease_ms`). Renewals, releases and commits are conditional on
//! `{owner, epoch}`.
//!
//! `gen` counts the resets of a partition: each pending entry is written
//! with the `gen` its writer read, and only entries of the partition's
//! current `gen` are pending. A reset increases `gen` in the same update
//! that moves the cursor and the epoch, so that the pending list is empty
//! at once, whatever a commit that passed its fence before the reset
//! writes after it.
//!
//! # Crashes between writes
//!
//! Each method makes its writes in an order in which a crash (or an error)
//! between two of them leaves something that at-least-once delivery
//! tolerates: a message delivered again, never one lost.
//!
//! - `publish`: reserve, insert, then (only for refused documents) take
//!   back their counts and write tombstones. A crash after the reserve
//!   leaves offsets that readers skip after [`GAP_TIMEOUT`]; nothing was
//!   acknowledged for them. The partition's `messages` and `bytes` then
//!   count messages that were never stored (until retention deletes what
//!   there is, these totals are that much high: retention by size keeps
//!   that much less).
//! - `purge_messages`: move the watermark (with the totals), then delete
//!   the documents below it. A crash between leaves documents below the
//!   watermark, which no reader reads, and which the next purge of that
//!   partition deletes.
//! - `create_topic`: insert the topic's document, then the partitions'
//!   (upserts that replace leftovers of an older topic of the name). A
//!   crash between leaves a topic without partition documents: a publish
//!   to it makes them (only the missing ones, and deletes them again if
//!   the topic went meanwhile).
//! - `delete_topic`: mark the topic `deleting` (it is gone for every call
//!   from then on, but `read_messages`, which reads what is left until it
//!   is deleted), delete its subscriptions, its partitions, its messages,
//!   and last its document. A crash leaves a marked topic, which a later
//!   `delete_topic` or `create_topic` of the name finishes deleting. A
//!   publisher that read the topic before the mark may still insert
//!   messages after them: they have the old `uid`, and no topic shows
//!   them.
//! - `create_subscription`: insert the subscription's document (with its
//!   starting cursors), then its partitions' (as for topics). A crash
//!   between leaves a subscription without partition documents: the calls
//!   that read them (`get_subscription`, `list_subscriptions`, a reset, a
//!   redrive) make them at the starting cursors, as for topics.
//! - `delete_subscription`: fence every partition (`deleting`, no owner:
//!   no claim, renewal or commit succeeds after this), delete the
//!   subscription's document, its pending entries and dead letters, and
//!   last its partitions. A crash after the fence leaves a subscription that
//!   delivers nothing until the delete is done again; after the document's
//!   deletion, fenced partitions and entries of a `uid` that nothing reads,
//!   which a subscription made again under the name deletes.
//! - `commit_delivery`: fence first, with one `findAndModify` on
//!   `{owner, epoch}` that also renews the lease (`LeaseLost` there: nothing
//!   is written); then upsert the dead letters, upsert the pending entries,
//!   delete the pending entries done (or dead), and last move the cursor
//!   with the same `{owner, epoch}` condition. A crash after the dead
//!   letters leaves their messages pending as well (delivered again, maybe
//!   dying again into the same dead letter); after the pending upserts, the
//!   entries done are still pending (delivered again); before the cursor
//!   moves, the batch's messages are read from the log again. The lease was
//!   just renewed, so no other server can take the partition during the
//!   commit unless it takes longer than the lease (then the cursor's
//!   condition fails and the call answers `LeaseLost`: what it wrote is at
//!   worst delivered again). A reset meanwhile makes its pending entries
//!   invisible (`gen`).
//! - `reset_subscription`: per partition, one `findAndModify` moves the
//!   cursor, releases the lease and increases the epoch and `gen`, then the
//!   older generations' entries are deleted (invisible already). A crash
//!   leaves some partitions reset and some not.
//! - `redrive_dead`: per partition, upsert the pending entries (at the
//!   partition's `gen`), then release the lease and increase the epoch (so
//!   that the next claim reads them), then delete the dead letters. A crash
//!   leaves messages both pending and dead (delivered again).
//! - `purge_dead`, `renew_partition`, `release_partition`,
//!   `claim_partition` and `set_topic_retention` write one document, or
//!   delete documents independent of each other.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::sync::{Collection, Database};
use sl_store::{
    DeadLetter, DeliveryCommit, Events, Message, NewMessage, PartitionLog, PartitionState, Pending, Position,
    Published, Result, StoreError, Subscription, SubscriptionInfo, SubscriptionPartition, Topic, TopicInfo,
};

use crate::doc::{opt_i64, opt_str, opt_u64, u64_from_db, u64_to_db, Fields};
use crate::error::{duplicate_indexes, is_duplicate_key, map, DUPLICATE_KEY};
use crate::MongoStore;

/// Collection of topics.
pub const TOPICS: &str = "topics";
/// Collection of topic partitions: offset counters, watermarks, totals.
pub const TOPIC_PARTITIONS: &str = "topic_partitions";
/// Collection of the messages of every topic.
pub const MESSAGES: &str = "messages";
/// Collection of subscriptions.
pub const SUBSCRIPTIONS: &str = "subscriptions";
/// Collection of subscription partitions: cursors, leases, epochs.
pub const SUBSCRIPTION_PARTITIONS: &str = "subscription_partitions";
/// Collection of pending entries.
pub const PENDING: &str = "pending";
/// Collection of dead letters.
pub const DEAD_LETTERS: &str = "dead_letters";

/// How long a reader waits for an offset that a publisher reserved and
/// did not write before it gives up on it (see the module docs): the
/// default of [`MongoOptions::gap_timeout`](crate::MongoOptions::gap_timeout).
pub const GAP_TIMEOUT: Duration = Duration::from_secs(10);

/// Most documents one query of a purge, a redrive or a read reads, and
/// most tombstones one insert writes.
const BATCH: usize = 1_000;

/// Tries of a publish whose offsets readers filled with tombstones.
const PUBLISH_TRIES: usize = 3;

/// The `lease_until` of a partition without owner: below every `now_ms`,
/// so that one condition, `lease_until < now_ms`, finds the partitions
/// that have no owner or whose owner's lease ended (nx-27017 gets a
/// top-level `$or` beside other conditions of a write wrong, and `$ne`
/// never matches null there).
const NO_LEASE: i64 = i64::MIN;

/// Field names of the events collections.
pub(crate) mod field {
    pub const ID: &str = "_id";
    /// The random id of a topic or subscription, given at its creation.
    pub const UID: &str = "uid";
    /// Set on a topic while it is deleted, and on the partitions of a
    /// subscription that is.
    pub const DELETING: &str = "deleting";
    pub const TOPIC: &str = "topic";
    pub const PARTITIONS: &str = "partitions";
    pub const PARTITION: &str = "partition";
    pub const RETENTION_MS: &str = "retention_ms";
    pub const RETENTION_BYTES: &str = "retention_bytes";
    pub const CREATED: &str = "created";
    pub const NEXT: &str = "next";
    /// A partition's watermark: every offset below it is deleted.
    pub const FIRST: &str = "first";
    pub const LAST_PUB: &str = "last_pub";
    pub const MESSAGES: &str = "messages";
    pub const BYTES: &str = "bytes";
    /// A message's topic uid.
    pub const TUID: &str = "tuid";
    pub const OFFSET: &str = "offset";
    pub const KEY: &str = "key";
    pub const PAYLOAD: &str = "payload";
    pub const PUBLISHED: &str = "published";
    pub const SIZE: &str = "size";
    pub const IDEM_KEY: &str = "idem_key";
    pub const TOMB: &str = "tomb";
    pub const ACTION: &str = "action";
    pub const BATCH_SIZE: &str = "batch_size";
    pub const MAX_WAIT_MS: &str = "max_wait_ms";
    pub const MAX_RETRIES: &str = "max_retries";
    pub const BACKOFF_MS: &str = "backoff_ms";
    pub const BACKOFF_MAX_MS: &str = "backoff_max_ms";
    pub const CURSORS: &str = "cursors";
    pub const SUBSCRIPTION: &str = "subscription";
    pub const CURSOR: &str = "cursor";
    pub const OWNER: &str = "owner";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const EPOCH: &str = "epoch";
    pub const GEN: &str = "gen";
    /// A pending entry's `"{uid}:{partition}:{gen}"`, which the counts
    /// group by.
    pub const SLOT: &str = "slot";
    pub const ATTEMPTS: &str = "attempts";
    pub const NOT_BEFORE: &str = "not_before";
    pub const LAST_ERROR: &str = "last_error";
    pub const ERROR: &str = "error";
    pub const LOGS: &str = "logs";
    pub const INVOCATION: &str = "invocation";
    pub const DIED: &str = "died";
}

/// The events collections, and what a reader remembers of gaps.
pub(crate) struct EventCollections {
    topics: Collection<Document>,
    topic_partitions: Collection<Document>,
    messages: Collection<Document>,
    subscriptions: Collection<Document>,
    subscription_partitions: Collection<Document>,
    pending: Collection<Document>,
    dead: Collection<Document>,
    gaps: Gaps,
}

impl EventCollections {
    pub(crate) fn new(db: &Database, gap_timeout: Duration) -> Self {
        EventCollections {
            topics: db.collection(TOPICS),
            topic_partitions: db.collection(TOPIC_PARTITIONS),
            messages: db.collection(MESSAGES),
            subscriptions: db.collection(SUBSCRIPTIONS),
            subscription_partitions: db.collection(SUBSCRIPTION_PARTITIONS),
            pending: db.collection(PENDING),
            dead: db.collection(DEAD_LETTERS),
            gaps: Gaps { timeout: gap_timeout, seen: Mutex::new(HashMap::new()) },
        }
    }
}

/// The gaps this process's readers have seen: by (topic uid, partition),
/// the offset of each gap's start and when it was first and last seen.
struct Gaps {
    timeout: Duration,
    seen: Mutex<HashMap<(String, u32), BTreeMap<i64, Seen>>>,
}

#[derive(Clone, Copy)]
struct Seen {
    first: Instant,
    last: Instant,
}

impl Gaps {
    /// Notes that a reader found the gap at `offset`; whether it has been
    /// seen for [`GAP_TIMEOUT`] (the configured one) since it was first.
    fn expired(&self, tuid: &str, partition: u32, offset: i64) -> bool {
        let now = Instant::now();
        // A gap that nobody saw for this long was filled (or is read by
        // nobody): it is forgotten, so that the map holds only live gaps.
        let stale = self.timeout.saturating_mul(10).max(Duration::from_secs(60));
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.retain(|_, gaps| {
            gaps.retain(|_, s| now.duration_since(s.last) < stale);
            !gaps.is_empty()
        });
        let gaps = seen.entry((tuid.to_owned(), partition)).or_default();
        let s = gaps.entry(offset).or_insert(Seen { first: now, last: now });
        s.last = now;
        now.duration_since(s.first) >= self.timeout
    }

    /// Forgets the gap at `offset`, filled.
    fn forget(&self, tuid: &str, partition: u32, offset: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (tuid.to_owned(), partition);
        if let Some(gaps) = seen.get_mut(&key) {
            gaps.remove(&offset);
            if gaps.is_empty() {
                seen.remove(&key);
            }
        }
    }
}

fn new_uid() -> String {
    ObjectId::new().to_hex()
}

/// The `_id` of a topic's or subscription's partition document.
fn part_id(name: &str, partition: u32) -> String {
    format!("{name}:{partition}")
}

fn part_ids(name: &str, partitions: u32) -> Vec<String> {
    (0..partitions).map(|p| part_id(name, p)).collect()
}

fn slot(uid: &str, partition: u32, gen: i64) -> String {
    format!("{uid}:{partition}:{gen}")
}

fn pending_id(uid: &str, partition: u32, gen: i64, offset: i64) -> String {
    format!("{uid}:{partition}:{gen}:{offset}")
}

fn dead_id(uid: &str, partition: u32, offset: i64) -> String {
    format!("{uid}:{partition}:{offset}")
}

fn lease_lost(subscription: &str, partition: u32) -> StoreError {
    StoreError::LeaseLost { subscription: subscription.to_owned(), partition }
}

fn u32_field(f: &Fields, name: &'static str) -> Result<u32> {
    let value = f.i64(name)?;
    u32::try_from(value).map_err(|_| f.invalid(name, format!("is {value}")).into())
}

/// A tolerated write error: a duplicate key.
fn duplicate(code: i32) -> bool {
    code == DUPLICATE_KEY
}

/// About the size of a statement for [`MongoStore::run_updates`].
fn statement_size(message: &Message) -> u64 {
    message.size() + 256
}

// ---------------------------------------------------------------------------
// Documents

/// Who makes partition documents, and so which ones it may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Making {
    /// The call that has just inserted the topic's or subscription's own
    /// document: any partition document of another uid is a leftover of
    /// an older one of the name (whose own document is gone, or this one
    /// could not have been inserted), and is replaced, what belonged to it
    /// deleted.
    Creation,
    /// A call that found partition documents missing (a creation that
    /// stopped midway): it makes the missing ones, and replaces only those
    /// of another uid that a deletion fenced. Documents of another live
    /// topic or subscription of the name (one deleted and made again since
    /// the caller read its own) are left alone, and what it made is deleted
    /// again if its topic or subscription is gone by then.
    Repair,
}

/// A topic's document.
struct TopicDoc {
    topic: Topic,
    uid: String,
    deleting: bool,
}

fn topic_to_doc(topic: &Topic, uid: &str) -> Document {
    doc! {
        field::ID: &topic.name,
        field::UID: uid,
        field::PARTITIONS: i64::from(topic.partitions),
        field::RETENTION_MS: opt_i64(topic.retention_ms),
        field::RETENTION_BYTES: opt_u64(topic.retention_bytes),
        field::CREATED: topic.created,
    }
}

fn topic_from_doc(doc: &Document) -> Result<TopicDoc> {
    let f = Fields::new(doc, "topic");
    let name = f.string(field::ID)?;
    let f = Fields::new(doc, format!("topic {name}"));
    let topic = Topic {
        partitions: u32_field(&f, field::PARTITIONS)?,
        retention_ms: f.opt_i64(field::RETENTION_MS)?,
        retention_bytes: f.opt_i64(field::RETENTION_BYTES)?.map(u64_from_db),
        created: f.i64(field::CREATED)?,
        name,
    };
    Ok(TopicDoc { uid: f.string(field::UID)?, deleting: doc.contains_key(field::DELETING), topic })
}

/// A topic partition's document.
#[derive(Debug, Clone, Copy)]
struct TopicPart {
    first: i64,
    next: i64,
    messages: i64,
    bytes: i64,
}

impl TopicPart {
    /// A partition whose document is missing: nothing was appended.
    const EMPTY: TopicPart = TopicPart { first: 0, next: 0, messages: 0, bytes: 0 };

    fn log(&self) -> PartitionLog {
        PartitionLog { first: self.first.min(self.next), next: self.next }
    }

    /// Where a cursor at `position` is in this partition (`Time` is found
    /// by the caller).
    fn clamp(&self, offset: i64) -> i64 {
        let log = self.log();
        offset.min(log.next).max(log.first)
    }
}

/// The (uid, partition, state) of a topic partition's document.
fn topic_part_from_doc(doc: &Document) -> Result<(String, u32, TopicPart)> {
    let f = Fields::new(doc, "topic partition");
    let part = TopicPart {
        first: f.i64(field::FIRST)?,
        next: f.i64(field::NEXT)?,
        messages: f.opt_i64(field::MESSAGES)?.unwrap_or(0),
        bytes: f.opt_i64(field::BYTES)?.unwrap_or(0),
    };
    Ok((f.string(field::UID)?, u32_field(&f, field::PARTITION)?, part))
}

/// What `m` counts once appended: its [`Message::size`].
fn size_of(m: &NewMessage) -> u64 {
    (m.payload.len() + m.key.as_ref().map_or(0, String::len)) as u64
}

/// A message's document (`published` given at the reservation).
fn message_to_doc(tuid: &str, offset: i64, m: &NewMessage, published: i64) -> Document {
    let mut d = doc! {
        field::TUID: tuid,
        field::PARTITION: i64::from(m.partition),
        field::OFFSET: offset,
        field::KEY: opt_str(m.key.as_deref()),
        field::PAYLOAD: &m.payload,
        field::PUBLISHED: published,
        field::SIZE: u64_to_db(size_of(m)),
    };
    if let Some(key) = &m.idempotency_key {
        d.insert(field::IDEM_KEY, key);
    }
    d
}

fn tombstone(tuid: &str, partition: u32, offset: i64, published: i64) -> Document {
    doc! {
        field::TUID: tuid,
        field::PARTITION: i64::from(partition),
        field::OFFSET: offset,
        field::PUBLISHED: published,
        field::SIZE: 0_i64,
        field::TOMB: true,
    }
}

/// The message fields of a message's, pending entry's or dead letter's
/// document.
fn message_from(f: &Fields) -> Result<Message> {
    Ok(Message {
        partition: u32_field(f, field::PARTITION)?,
        offset: f.i64(field::OFFSET)?,
        key: f.opt_string(field::KEY)?,
        payload: f.string(field::PAYLOAD)?,
        published: f.i64(field::PUBLISHED)?,
    })
}

fn message_fields(m: &Message) -> Document {
    doc! {
        field::PARTITION: i64::from(m.partition),
        field::OFFSET: m.offset,
        field::KEY: opt_str(m.key.as_deref()),
        field::PAYLOAD: &m.payload,
        field::PUBLISHED: m.published,
    }
}

/// A subscription's document.
struct SubDoc {
    subscription: Subscription,
    uid: String,
    partitions: u32,
    /// The cursors it was created at, for partition documents made late.
    cursors: Vec<i64>,
}

fn sub_to_doc(s: &Subscription, uid: &str, cursors: &[i64]) -> Document {
    doc! {
        field::ID: &s.name,
        field::UID: uid,
        field::TOPIC: &s.topic,
        field::ACTION: &s.action,
        field::BATCH_SIZE: i64::from(s.batch_size),
        field::MAX_WAIT_MS: s.max_wait_ms,
        field::MAX_RETRIES: i64::from(s.max_retries),
        field::BACKOFF_MS: s.backoff_ms,
        field::BACKOFF_MAX_MS: s.backoff_max_ms,
        field::CREATED: s.created,
        field::PARTITIONS: cursors.len() as i64,
        field::CURSORS: cursors.to_vec(),
    }
}

fn sub_from_doc(doc: &Document) -> Result<SubDoc> {
    let f = Fields::new(doc, "subscription");
    let name = f.string(field::ID)?;
    let f = Fields::new(doc, format!("subscription {name}"));
    let subscription = Subscription {
        topic: f.string(field::TOPIC)?,
        action: f.string(field::ACTION)?,
        batch_size: u32_field(&f, field::BATCH_SIZE)?,
        max_wait_ms: f.i64(field::MAX_WAIT_MS)?,
        max_retries: u32_field(&f, field::MAX_RETRIES)?,
        backoff_ms: f.i64(field::BACKOFF_MS)?,
        backoff_max_ms: f.i64(field::BACKOFF_MAX_MS)?,
        created: f.i64(field::CREATED)?,
        name,
    };
    let partitions = u32_field(&f, field::PARTITIONS)?;
    let cursors = f.i64s(field::CURSORS)?;
    if cursors.len() != partitions as usize {
        return Err(f
            .invalid(field::CURSORS, format!("has {} cursors for {partitions} partitions", cursors.len()))
            .into());
    }
    Ok(SubDoc { uid: f.string(field::UID)?, partitions, cursors, subscription })
}

/// A subscription partition's document.
struct SubPart {
    uid: String,
    cursor: i64,
    owner: Option<String>,
    lease_until: i64,
    epoch: i64,
    gen: i64,
}

fn sub_part_from_doc(doc: &Document) -> Result<SubPart> {
    let f = Fields::new(doc, "subscription partition");
    Ok(SubPart {
        uid: f.string(field::UID)?,
        cursor: f.i64(field::CURSOR)?,
        owner: f.opt_string(field::OWNER)?,
        lease_until: f.opt_i64(field::LEASE_UNTIL)?.unwrap_or(NO_LEASE),
        epoch: f.i64(field::EPOCH)?,
        gen: f.opt_i64(field::GEN)?.unwrap_or(0),
    })
}

impl SubPart {
    fn shown(&self, pending: u64, now_ms: i64) -> SubscriptionPartition {
        SubscriptionPartition {
            cursor: self.cursor,
            pending,
            owner: self.owner.clone().filter(|_| self.lease_until >= now_ms),
            epoch: self.epoch,
        }
    }
}

/// A pending entry's fields (its `_id` is [`pending_id`]).
fn pending_to_doc(uid: &str, partition: u32, gen: i64, p: &Pending) -> Document {
    let mut d = doc! {
        field::UID: uid,
        field::GEN: gen,
        field::SLOT: slot(uid, partition, gen),
        field::ATTEMPTS: i64::from(p.attempts),
        field::NOT_BEFORE: p.not_before,
        field::LAST_ERROR: opt_str(p.last_error.as_deref()),
    };
    d.extend(message_fields(&Message { partition, ..p.message.clone() }));
    d
}

fn pending_from_doc(doc: &Document) -> Result<Pending> {
    let f = Fields::new(doc, "pending entry");
    Ok(Pending {
        message: message_from(&f)?,
        attempts: u32_field(&f, field::ATTEMPTS)?,
        not_before: f.i64(field::NOT_BEFORE)?,
        last_error: f.opt_string(field::LAST_ERROR)?,
    })
}

/// A dead letter's fields (its `_id` is [`dead_id`]).
fn dead_to_doc(uid: &str, subscription: &str, partition: u32, d: &DeadLetter) -> Document {
    let mut doc = doc! {
        field::UID: uid,
        field::SUBSCRIPTION: subscription,
        field::ATTEMPTS: i64::from(d.attempts),
        field::ERROR: &d.error,
        field::LOGS: &d.logs,
        field::INVOCATION: opt_str(d.invocation.as_deref()),
        field::DIED: d.died,
    };
    doc.extend(message_fields(&Message { partition, ..d.message.clone() }));
    doc
}

fn dead_from_doc(doc: &Document) -> Result<DeadLetter> {
    let f = Fields::new(doc, "dead letter");
    Ok(DeadLetter {
        subscription: f.string(field::SUBSCRIPTION)?,
        message: message_from(&f)?,
        attempts: u32_field(&f, field::ATTEMPTS)?,
        error: f.string(field::ERROR)?,
        logs: f.strings(field::LOGS)?,
        invocation: f.opt_string(field::INVOCATION)?,
        died: f.i64(field::DIED)?,
    })
}

/// A message found by a purge: where it is, what it counts.
struct Old {
    partition: u32,
    offset: i64,
    size: i64,
    tomb: bool,
}

fn old_from_doc(doc: &Document) -> Result<Old> {
    let f = Fields::new(doc, "message");
    Ok(Old {
        partition: u32_field(&f, field::PARTITION)?,
        offset: f.i64(field::OFFSET)?,
        size: f.opt_i64(field::SIZE)?.unwrap_or(0),
        tomb: doc.contains_key(field::TOMB),
    })
}

/// What a purge deletes of one partition: the offsets below `to`, which
/// hold `messages` messages of `bytes` bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Cut {
    to: i64,
    messages: i64,
    bytes: i64,
}

impl Cut {
    fn add(&mut self, old: &Old) {
        self.to = self.to.max(old.offset + 1);
        if !old.tomb {
            self.messages += 1;
            self.bytes += old.size;
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

impl MongoStore {
    fn ev(&self) -> &EventCollections {
        &self.events
    }

    fn find_and_update(
        &self,
        collection: &Collection<Document>,
        filter: Document,
        update: Document,
        after: bool,
    ) -> Result<Option<Document>> {
        let returned = if after { ReturnDocument::After } else { ReturnDocument::Before };
        collection.find_one_and_update(filter, update).return_document(returned).run().map_err(map)
    }

    fn collect(&self, cursor: mongodb::sync::Cursor<Document>) -> Result<Vec<Document>> {
        cursor.map(|d| d.map_err(map)).collect()
    }

    /// The topic's document, also one being deleted.
    fn topic_doc(&self, name: &str) -> Result<Option<TopicDoc>> {
        let found = self.ev().topics.find_one(doc! { field::ID: name }).run().map_err(map)?;
        found.as_ref().map(topic_from_doc).transpose()
    }

    /// The topic's document, unless it is missing or being deleted.
    fn live_topic(&self, name: &str) -> Result<Option<TopicDoc>> {
        Ok(self.topic_doc(name)?.filter(|t| !t.deleting))
    }

    /// The state of each partition of `t` (`None` where its document is
    /// missing).
    fn topic_parts(&self, t: &TopicDoc) -> Result<Vec<Option<TopicPart>>> {
        let ids = part_ids(&t.topic.name, t.topic.partitions);
        let found = self.ev().topic_partitions.find(doc! { field::ID: { "$in": ids } }).run().map_err(map)?;
        let mut parts = vec![None; t.topic.partitions as usize];
        for d in self.collect(found)? {
            let (uid, partition, part) = topic_part_from_doc(&d)?;
            if uid == t.uid {
                if let Some(slot) = parts.get_mut(partition as usize) {
                    *slot = Some(part);
                }
            }
        }
        Ok(parts)
    }

    fn topic_info(t: TopicDoc, parts: &[Option<TopicPart>]) -> TopicInfo {
        let parts: Vec<TopicPart> = parts.iter().map(|p| p.unwrap_or(TopicPart::EMPTY)).collect();
        TopicInfo {
            partitions: parts.iter().map(TopicPart::log).collect(),
            messages: parts.iter().map(|p| p.messages.max(0) as u64).sum(),
            bytes: parts.iter().map(|p| p.bytes.max(0) as u64).sum(),
            topic: t.topic,
        }
    }

    /// Makes the partition documents of topic `t` (see [`Making`]); a
    /// repair done as the topic went is undone.
    fn make_topic_partitions(&self, t: &TopicDoc, making: Making) -> Result<()> {
        let ev = self.ev();
        let (name, uid) = (&t.topic.name, &t.uid);
        let ids = part_ids(name, t.topic.partitions);
        let fresh = |p: u32| {
            let set = doc! {
                field::TOPIC: name,
                field::PARTITION: i64::from(p),
                field::UID: uid,
                field::NEXT: 0_i64,
                field::FIRST: 0_i64,
                field::MESSAGES: 0_i64,
                field::BYTES: 0_i64,
            };
            doc! { "$set": set, "$unset": { field::LAST_PUB: "", field::DELETING: "" } }
        };
        let clear = |old: &[String]| -> Result<()> {
            ev.messages.delete_many(doc! { field::TUID: { "$in": old } }).run().map_err(map)?;
            Ok(())
        };
        self.make_partitions(&ev.topic_partitions, &ids, uid, making, &fresh, &clear)?;
        if making == Making::Repair && self.live_topic(name)?.is_none_or(|again| again.uid != *uid) {
            ev.topic_partitions.delete_many(doc! { field::ID: { "$in": &ids }, field::UID: uid }).run().map_err(map)?;
        }
        Ok(())
    }

    /// Makes the partition documents `ids` of the topic or subscription of
    /// this `uid` in `collection`, with the update `fresh` gives for each
    /// partition, where `making` allows; `clear` first deletes what
    /// belonged to the documents of other uids it replaces.
    fn make_partitions(
        &self,
        collection: &Collection<Document>,
        ids: &[String],
        uid: &str,
        making: Making,
        fresh: &dyn Fn(u32) -> Document,
        clear: &dyn Fn(&[String]) -> Result<()>,
    ) -> Result<()> {
        let mut replaced = doc! { field::ID: { "$in": ids }, field::UID: { "$ne": uid } };
        if making == Making::Repair {
            replaced.insert(field::DELETING, doc! { "$exists": true });
        }
        let found = collection.find(replaced).projection(doc! { field::UID: 1 }).run().map_err(map)?;
        let old: HashSet<String> =
            self.collect(found)?.iter().filter_map(|d| d.get_str(field::UID).ok().map(str::to_owned)).collect();
        if !old.is_empty() {
            clear(&old.into_iter().collect::<Vec<_>>())?;
        }
        let statements = ids
            .iter()
            .zip(0..)
            .map(|(id, p)| {
                let mut q = doc! { field::ID: id, field::UID: { "$ne": uid } };
                if making == Making::Repair {
                    q.insert(field::DELETING, doc! { "$exists": true });
                }
                (256, doc! { "q": q, "u": fresh(p), "upsert": true })
            })
            .collect();
        // A duplicate key: a document that is not to be replaced is there.
        self.run_updates(collection.name(), statements, duplicate)
    }

    /// Deletes what is left of a topic marked `deleting`: its
    /// subscriptions, partitions, messages, and last its document.
    fn finish_topic_delete(&self, t: &TopicDoc) -> Result<()> {
        let ev = self.ev();
        let name = &t.topic.name;
        let subs = ev.subscriptions.find(doc! { field::TOPIC: name }).run().map_err(map)?;
        for d in self.collect(subs)? {
            self.drop_subscription(&sub_from_doc(&d)?)?;
        }
        let ids = part_ids(name, t.topic.partitions);
        ev.topic_partitions.delete_many(doc! { field::ID: { "$in": ids }, field::UID: &t.uid }).run().map_err(map)?;
        ev.messages.delete_many(doc! { field::TUID: &t.uid }).run().map_err(map)?;
        ev.topics.delete_one(doc! { field::ID: name, field::UID: &t.uid }).run().map_err(map)?;
        Ok(())
    }

    /// Reserves `n` offsets of a partition, counting `bytes` for them, at
    /// `now_ms`; their first offset and publish time, or `None` if the
    /// partition's document is missing (after making it, once, when the
    /// topic is still there: a creation that stopped midway).
    fn reserve(&self, t: &TopicDoc, partition: u32, n: usize, bytes: u64, now_ms: i64) -> Result<Option<(i64, i64)>> {
        let n = n as i64;
        let filter = doc! { field::ID: part_id(&t.topic.name, partition), field::UID: &t.uid };
        let update = doc! {
            "$inc": { field::NEXT: n, field::MESSAGES: n, field::BYTES: u64_to_db(bytes) },
            "$max": { field::LAST_PUB: now_ms },
        };
        for attempt in 0..2 {
            if let Some(d) = self.find_and_update(&self.ev().topic_partitions, filter.clone(), update.clone(), true)? {
                let f = Fields::new(&d, format!("partition {partition} of topic {}", t.topic.name));
                return Ok(Some((f.i64(field::NEXT)? - n, f.i64(field::LAST_PUB)?)));
            }
            let still = self.live_topic(&t.topic.name)?.is_some_and(|again| again.uid == t.uid);
            if attempt > 0 || !still {
                break;
            }
            self.make_topic_partitions(t, Making::Repair)?;
        }
        Ok(None)
    }

    /// Where cursors at `position` are in each partition of `t`.
    fn positions(&self, t: &TopicDoc, parts: &[Option<TopicPart>], position: Position) -> Result<Vec<i64>> {
        let mut cursors = Vec::with_capacity(parts.len());
        for (p, part) in parts.iter().enumerate() {
            let part = part.unwrap_or(TopicPart::EMPTY);
            let log = part.log();
            let cursor = match position {
                Position::Beginning => log.first,
                Position::End => log.next,
                Position::Offset(offset) => part.clamp(offset),
                Position::Time(time) => {
                    let filter = doc! {
                        field::TUID: &t.uid,
                        field::PARTITION: p as i64,
                        field::PUBLISHED: { "$gte": time },
                        field::OFFSET: { "$gte": log.first },
                    };
                    let found = self
                        .ev()
                        .messages
                        .find_one(filter)
                        .sort(doc! { field::PUBLISHED: 1, field::OFFSET: 1 })
                        .projection(doc! { field::OFFSET: 1 })
                        .run()
                        .map_err(map)?;
                    match found {
                        Some(d) => Fields::new(&d, "message").i64(field::OFFSET)?,
                        None => log.next,
                    }
                }
            };
            cursors.push(cursor);
        }
        Ok(cursors)
    }

    fn sub_doc(&self, name: &str) -> Result<Option<SubDoc>> {
        let found = self.ev().subscriptions.find_one(doc! { field::ID: name }).run().map_err(map)?;
        found.as_ref().map(sub_from_doc).transpose()
    }

    /// Makes the partition documents of subscription `s` (see
    /// [`Making`]) at the cursors it was created at; a repair done as the
    /// subscription went is undone.
    fn make_sub_partitions(&self, s: &SubDoc, making: Making) -> Result<()> {
        let ev = self.ev();
        let (name, uid) = (&s.subscription.name, &s.uid);
        let ids = part_ids(name, s.partitions);
        let fresh = |p: u32| {
            let set = doc! {
                field::SUBSCRIPTION: name,
                field::PARTITION: i64::from(p),
                field::UID: uid,
                field::CURSOR: s.cursors.get(p as usize).copied().unwrap_or(0),
                field::OWNER: Bson::Null,
                field::LEASE_UNTIL: NO_LEASE,
                field::EPOCH: 0_i64,
                field::GEN: 0_i64,
            };
            doc! { "$set": set, "$unset": { field::DELETING: "" } }
        };
        let clear = |old: &[String]| -> Result<()> {
            ev.pending.delete_many(doc! { field::UID: { "$in": old } }).run().map_err(map)?;
            ev.dead.delete_many(doc! { field::UID: { "$in": old } }).run().map_err(map)?;
            Ok(())
        };
        self.make_partitions(&ev.subscription_partitions, &ids, uid, making, &fresh, &clear)?;
        if making == Making::Repair && self.sub_doc(name)?.is_none_or(|again| again.uid != *uid) {
            let made = doc! { field::ID: { "$in": &ids }, field::UID: uid };
            ev.subscription_partitions.delete_many(made).run().map_err(map)?;
        }
        Ok(())
    }

    /// The partition documents of `subs`, by `_id`, made first where
    /// missing.
    fn sub_parts(&self, subs: &[SubDoc]) -> Result<HashMap<String, SubPart>> {
        let read = |subs: &[SubDoc]| -> Result<HashMap<String, SubPart>> {
            let ids: Vec<String> = subs.iter().flat_map(|s| part_ids(&s.subscription.name, s.partitions)).collect();
            let mut parts = HashMap::new();
            for chunk in ids.chunks(BATCH) {
                let found =
                    self.ev().subscription_partitions.find(doc! { field::ID: { "$in": chunk } }).run().map_err(map)?;
                for d in self.collect(found)? {
                    let id = d.get_str(field::ID).unwrap_or_default().to_owned();
                    parts.insert(id, sub_part_from_doc(&d)?);
                }
            }
            Ok(parts)
        };
        let mut parts = read(subs)?;
        let incomplete: Vec<&SubDoc> = subs
            .iter()
            .filter(|s| {
                (0..s.partitions).any(|p| parts.get(&part_id(&s.subscription.name, p)).is_none_or(|sp| sp.uid != s.uid))
            })
            .collect();
        if !incomplete.is_empty() {
            for s in incomplete {
                self.make_sub_partitions(s, Making::Repair)?;
            }
            parts = read(subs)?;
        }
        Ok(parts)
    }

    /// The subscriptions' progress: their partitions, pending counts (of
    /// each partition's current generation) and dead letters.
    fn sub_infos(&self, subs: Vec<SubDoc>, now_ms: i64) -> Result<Vec<SubscriptionInfo>> {
        if subs.is_empty() {
            return Ok(Vec::new());
        }
        let ev = self.ev();
        let parts = self.sub_parts(&subs)?;
        let uids: Vec<&String> = subs.iter().map(|s| &s.uid).collect();
        let group = |collection: &Collection<Document>, by: &str| -> Result<HashMap<String, u64>> {
            let pipeline = [
                doc! { "$match": { field::UID: { "$in": &uids } } },
                doc! { "$group": { "_id": format!("${by}"), "n": { "$sum": 1 } } },
            ];
            let mut counts = HashMap::new();
            for d in self.collect(collection.aggregate(pipeline).run().map_err(map)?)? {
                let key = d.get_str("_id").unwrap_or_default().to_owned();
                let n = Fields::new(&d, "a count").i64("n")?;
                counts.insert(key, n.max(0) as u64);
            }
            Ok(counts)
        };
        let pending = group(&ev.pending, field::SLOT)?;
        let dead = group(&ev.dead, field::UID)?;
        let mut infos = Vec::with_capacity(subs.len());
        'subs: for s in subs {
            let mut partitions = Vec::with_capacity(s.partitions as usize);
            for p in 0..s.partitions {
                let Some(sp) = parts.get(&part_id(&s.subscription.name, p)).filter(|sp| sp.uid == s.uid) else {
                    // Deleted (or deleted and made again) since it was read.
                    continue 'subs;
                };
                partitions.push(sp.shown(pending.get(&slot(&s.uid, p, sp.gen)).copied().unwrap_or(0), now_ms));
            }
            let dead = dead.get(&s.uid).copied().unwrap_or(0);
            infos.push(SubscriptionInfo { subscription: s.subscription, partitions, dead });
        }
        Ok(infos)
    }

    /// The pending list of a partition at generation `gen`, in offset
    /// order.
    fn pending_of(&self, uid: &str, partition: u32, gen: i64) -> Result<Vec<Pending>> {
        let filter = doc! { field::UID: uid, field::PARTITION: i64::from(partition), field::GEN: gen };
        let found = self.ev().pending.find(filter).sort(doc! { field::OFFSET: 1 }).run().map_err(map)?;
        self.collect(found)?.iter().map(pending_from_doc).collect()
    }

    /// Deletes a subscription in the order the module docs give; whether
    /// this call deleted its document.
    fn drop_subscription(&self, s: &SubDoc) -> Result<bool> {
        let ev = self.ev();
        let ids = part_ids(&s.subscription.name, s.partitions);
        let fence = doc! { "$set": { field::DELETING: true, field::OWNER: Bson::Null, field::LEASE_UNTIL: NO_LEASE } };
        ev.subscription_partitions
            .update_many(doc! { field::ID: { "$in": &ids }, field::UID: &s.uid }, fence)
            .run()
            .map_err(map)?;
        let gone = ev
            .subscriptions
            .delete_one(doc! { field::ID: &s.subscription.name, field::UID: &s.uid })
            .run()
            .map_err(map)?
            .deleted_count
            > 0;
        ev.pending.delete_many(doc! { field::UID: &s.uid }).run().map_err(map)?;
        ev.dead.delete_many(doc! { field::UID: &s.uid }).run().map_err(map)?;
        ev.subscription_partitions
            .delete_many(doc! { field::ID: { "$in": &ids }, field::UID: &s.uid })
            .run()
            .map_err(map)?;
        Ok(gone)
    }

    /// Fills the offsets `from..to` of a partition, which no publisher
    /// wrote within the gap timeout, with tombstones stamped `published`
    /// (that of the message at `to`); offsets written meanwhile keep their
    /// message.
    fn fill_gap(&self, tuid: &str, partition: u32, from: i64, to: i64, published: i64) -> Result<()> {
        tracing::warn!(
            topic_uid = tuid,
            partition,
            from,
            to,
            "skipping offsets that were reserved and not written within the gap timeout"
        );
        let mut start = from;
        while start < to {
            let end = to.min(start.saturating_add(BATCH as i64));
            let docs = (start..end).map(|o| tombstone(tuid, partition, o, published));
            match self.ev().messages.insert_many(docs).ordered(false).run() {
                Ok(_) => {}
                Err(err) if duplicate_indexes(&err).is_some() => {}
                Err(err) => return Err(map(err)),
            }
            start = end;
        }
        self.ev().gaps.forget(tuid, partition, from);
        Ok(())
    }

    /// Up to [`BATCH`] of the topic's oldest documents (messages and
    /// tombstones), published before `before` if given.
    fn oldest(&self, tuid: &str, before: Option<i64>) -> Result<Vec<Old>> {
        let mut filter = doc! { field::TUID: tuid };
        if let Some(before) = before {
            filter.insert(field::PUBLISHED, doc! { "$lt": before });
        }
        let found = self
            .ev()
            .messages
            .find(filter)
            .sort(doc! { field::PUBLISHED: 1, field::PARTITION: 1, field::OFFSET: 1 })
            .projection(doc! { field::PARTITION: 1, field::OFFSET: 1, field::SIZE: 1, field::TOMB: 1 })
            .limit(BATCH as i64)
            .batch_size(BATCH as u32)
            .run()
            .map_err(map)?;
        self.collect(found)?.iter().map(old_from_doc).collect()
    }

    /// Moves the watermarks of `t`'s partitions to the `cuts` (each
    /// conditional on the watermark read in `parts`, taking the counts off
    /// in the same update), then deletes the documents below the new
    /// watermarks, and below the old ones in `orphaned` partitions. Returns
    /// the messages this call took off and whether anything changed.
    fn cut(
        &self,
        t: &TopicDoc,
        parts: &[Option<TopicPart>],
        cuts: BTreeMap<u32, Cut>,
        orphaned: HashSet<u32>,
    ) -> Result<(u64, bool)> {
        let ev = self.ev();
        let (mut deleted, mut changed) = (0, false);
        let mut below: BTreeMap<u32, i64> = BTreeMap::new();
        for p in orphaned {
            if let Some(Some(part)) = parts.get(p as usize) {
                below.insert(p, part.first);
            }
        }
        for (p, cut) in cuts {
            let Some(Some(part)) = parts.get(p as usize) else { continue };
            let filter = doc! { field::ID: part_id(&t.topic.name, p), field::UID: &t.uid, field::FIRST: part.first };
            let update = doc! {
                "$set": { field::FIRST: cut.to },
                "$inc": { field::MESSAGES: -cut.messages, field::BYTES: -cut.bytes },
            };
            // Another purge moved it first: the caller reads again.
            changed = true;
            if self.find_and_update(&ev.topic_partitions, filter, update, false)?.is_some() {
                deleted += cut.messages as u64;
                below.insert(p, cut.to);
            }
        }
        for (p, to) in below {
            let filter = doc! { field::TUID: &t.uid, field::PARTITION: i64::from(p), field::OFFSET: { "$lt": to } };
            if ev.messages.delete_many(filter).run().map_err(map)?.deleted_count > 0 {
                changed = true;
            }
        }
        Ok((deleted, changed))
    }
}

impl Events for MongoStore {
    fn create_topic(&self, topic: &Topic) -> Result<()> {
        let uid = new_uid();
        let doc = topic_to_doc(topic, &uid);
        let mut inserted = false;
        for _ in 0..2 {
            match self.ev().topics.insert_one(doc.clone()).run() {
                Ok(_) => {
                    inserted = true;
                    break;
                }
                Err(err) if is_duplicate_key(&err) => match self.topic_doc(&topic.name)? {
                    // A deletion that stopped midway: finish it first.
                    Some(old) if old.deleting => self.finish_topic_delete(&old)?,
                    Some(_) => return Err(StoreError::AlreadyExists(topic.name.clone())),
                    None => {}
                },
                Err(err) => return Err(map(err)),
            }
        }
        if !inserted {
            return Err(StoreError::AlreadyExists(topic.name.clone()));
        }
        let t = TopicDoc { topic: topic.clone(), uid, deleting: false };
        self.make_topic_partitions(&t, Making::Creation)
    }

    fn set_topic_retention(&self, name: &str, retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Result<bool> {
        let update = doc! { "$set": {
            field::RETENTION_MS: opt_i64(retention_ms),
            field::RETENTION_BYTES: opt_u64(retention_bytes),
        } };
        let filter = doc! { field::ID: name, field::DELETING: { "$exists": false } };
        Ok(self.ev().topics.update_one(filter, update).run().map_err(map)?.matched_count > 0)
    }

    fn get_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        let Some(t) = self.live_topic(name)? else { return Ok(None) };
        let parts = self.topic_parts(&t)?;
        Ok(Some(Self::topic_info(t, &parts)))
    }

    /// Two queries: every topic, and every topic partition.
    fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let ev = self.ev();
        let found = ev
            .topics
            .find(doc! { field::DELETING: { "$exists": false } })
            .sort(doc! { field::ID: 1 })
            .run()
            .map_err(map)?;
        let topics: Vec<TopicDoc> = self.collect(found)?.iter().map(topic_from_doc).collect::<Result<_>>()?;
        let mut all: HashMap<(String, u32), TopicPart> = HashMap::new();
        for d in self.collect(ev.topic_partitions.find(doc! {}).run().map_err(map)?)? {
            let (uid, partition, part) = topic_part_from_doc(&d)?;
            all.insert((uid, partition), part);
        }
        Ok(topics
            .into_iter()
            .map(|t| {
                let parts: Vec<Option<TopicPart>> =
                    (0..t.topic.partitions).map(|p| all.get(&(t.uid.clone(), p)).copied()).collect();
                Self::topic_info(t, &parts)
            })
            .collect())
    }

    fn delete_topic(&self, name: &str) -> Result<bool> {
        let marked = self.find_and_update(
            &self.ev().topics,
            doc! { field::ID: name },
            doc! { "$set": { field::DELETING: true } },
            false,
        )?;
        let Some(before) = marked else { return Ok(false) };
        let t = topic_from_doc(&before)?;
        self.finish_topic_delete(&t)?;
        // A topic marked already was being deleted by another call (or one
        // that stopped midway): it was gone for everyone.
        Ok(!t.deleting)
    }

    fn publish(&self, messages: &[NewMessage], now_ms: i64) -> Result<Vec<Published>> {
        let mut answers = vec![Published::NoTopic; messages.len()];
        let mut by_topic: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match by_topic.iter_mut().find(|(t, _)| *t == m.topic) {
                Some((_, list)) => list.push(i),
                None => by_topic.push((&m.topic, vec![i])),
            }
        }
        for (topic, list) in by_topic {
            self.publish_topic(topic, messages, &list, now_ms, &mut answers, PUBLISH_TRIES)?;
        }
        Ok(answers)
    }

    fn read_messages(
        &self,
        topic: &str,
        partition: u32,
        from: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Message>> {
        let ev = self.ev();
        let mut read = Vec::new();
        if limit == 0 {
            return Ok(read);
        }
        let part_filter = doc! { field::ID: part_id(topic, partition) };
        let Some(part) = ev.topic_partitions.find_one(part_filter.clone()).run().map_err(map)? else {
            return Ok(read);
        };
        let (tuid, _, part) = topic_part_from_doc(&part)?;
        let mut expected = from.max(part.first);
        let mut bytes = 0usize;
        loop {
            let want = (limit - read.len()).min(BATCH) + 16;
            let filter = doc! { field::TUID: &tuid, field::PARTITION: i64::from(partition), field::OFFSET: { "$gte": expected } };
            let found = ev
                .messages
                .find(filter)
                .sort(doc! { field::OFFSET: 1 })
                .limit(want as i64)
                .batch_size(want as u32)
                .run()
                .map_err(map)?;
            let docs = self.collect(found)?;
            let mut gap_filled = false;
            for d in &docs {
                let f = Fields::new(d, format!("message of topic {topic}"));
                let offset = f.i64(field::OFFSET)?;
                if offset > expected {
                    // Offsets taken and not written (yet).
                    if !ev.gaps.expired(&tuid, partition, expected) {
                        return Ok(read);
                    }
                    // Retention may have deleted them meanwhile.
                    let again = ev.topic_partitions.find_one(part_filter.clone()).run().map_err(map)?;
                    let first = match again.as_ref().map(topic_part_from_doc).transpose()? {
                        Some((uid, _, part)) if uid == tuid => part.first,
                        _ => return Ok(read),
                    };
                    if first > expected {
                        ev.gaps.forget(&tuid, partition, expected);
                        expected = first;
                    } else {
                        self.fill_gap(&tuid, partition, expected, offset, f.i64(field::PUBLISHED)?)?;
                    }
                    gap_filled = true;
                    break;
                }
                expected = offset + 1;
                if d.contains_key(field::TOMB) {
                    continue;
                }
                let message = message_from(&f)?;
                bytes = bytes.saturating_add(message.size() as usize);
                read.push(message);
                if read.len() >= limit || bytes >= max_bytes {
                    return Ok(read);
                }
            }
            if !gap_filled && docs.len() < want {
                return Ok(read);
            }
        }
    }

    fn purge_messages(&self, topic: &str, before_ms: Option<i64>, max_bytes: Option<u64>) -> Result<u64> {
        let Some(t) = self.live_topic(topic)? else { return Ok(0) };
        let mut deleted = 0;
        if let Some(before) = before_ms {
            loop {
                let parts = self.topic_parts(&t)?;
                let old = self.oldest(&t.uid, Some(before))?;
                let (mut cuts, mut orphaned) = (BTreeMap::<u32, Cut>::new(), HashSet::new());
                for o in &old {
                    match parts.get(o.partition as usize) {
                        Some(Some(part)) if o.offset >= part.first => cuts.entry(o.partition).or_default().add(o),
                        _ => {
                            orphaned.insert(o.partition);
                        }
                    }
                }
                let (n, changed) = self.cut(&t, &parts, cuts, orphaned)?;
                deleted += n;
                if old.len() < BATCH || !changed {
                    break;
                }
            }
        }
        if let Some(max) = max_bytes {
            loop {
                let parts = self.topic_parts(&t)?;
                let total: u64 = parts.iter().flatten().map(|p| p.bytes.max(0) as u64).sum();
                if total <= max {
                    break;
                }
                let excess = total - max;
                let old = self.oldest(&t.uid, None)?;
                let (mut cuts, mut orphaned) = (BTreeMap::<u32, Cut>::new(), HashSet::new());
                let mut taken = 0u64;
                for o in &old {
                    match parts.get(o.partition as usize) {
                        Some(Some(part)) if o.offset >= part.first => {
                            if taken >= excess {
                                break;
                            }
                            cuts.entry(o.partition).or_default().add(o);
                            if !o.tomb {
                                taken += o.size.max(0) as u64;
                            }
                        }
                        _ => {
                            orphaned.insert(o.partition);
                        }
                    }
                }
                let (n, changed) = self.cut(&t, &parts, cuts, orphaned)?;
                deleted += n;
                if !changed {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    fn create_subscription(&self, subscription: &Subscription, start: Position) -> Result<()> {
        let name = &subscription.name;
        if self.sub_doc(name)?.is_some() {
            return Err(StoreError::AlreadyExists(name.clone()));
        }
        let not_found = || StoreError::NotFound(subscription.topic.clone());
        let t = self.live_topic(&subscription.topic)?.ok_or_else(not_found)?;
        let parts = self.topic_parts(&t)?;
        let cursors = self.positions(&t, &parts, start)?;
        let uid = new_uid();
        match self.ev().subscriptions.insert_one(sub_to_doc(subscription, &uid, &cursors)).run() {
            Ok(_) => {}
            Err(err) if is_duplicate_key(&err) => return Err(StoreError::AlreadyExists(name.clone())),
            Err(err) => return Err(map(err)),
        }
        let s = SubDoc { subscription: subscription.clone(), uid, partitions: t.topic.partitions, cursors };
        // The topic's deletion may have listed its subscriptions before
        // this one was stored: then this one goes too.
        if self.live_topic(&subscription.topic)?.is_none_or(|again| again.uid != t.uid) {
            self.drop_subscription(&s)?;
            return Err(not_found());
        }
        self.make_sub_partitions(&s, Making::Creation)
    }

    fn get_subscription(&self, name: &str, now_ms: i64) -> Result<Option<SubscriptionInfo>> {
        let Some(s) = self.sub_doc(name)? else { return Ok(None) };
        Ok(self.sub_infos(vec![s], now_ms)?.pop())
    }

    /// Four queries whatever the number of subscriptions: theirs, their
    /// partitions', and the counts of pending entries and dead letters.
    fn list_subscriptions(&self, now_ms: i64) -> Result<Vec<SubscriptionInfo>> {
        let found = self.ev().subscriptions.find(doc! {}).sort(doc! { field::ID: 1 }).run().map_err(map)?;
        let subs = self.collect(found)?.iter().map(sub_from_doc).collect::<Result<Vec<_>>>()?;
        self.sub_infos(subs, now_ms)
    }

    fn delete_subscription(&self, name: &str) -> Result<bool> {
        let Some(s) = self.sub_doc(name)? else { return Ok(false) };
        self.drop_subscription(&s)
    }

    fn claim_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<PartitionState>> {
        let ev = self.ev();
        let id = part_id(subscription, partition);
        let until = now_ms.saturating_add(lease_ms);
        // The holder keeps its lease at its epoch, also one that ended.
        let keep = doc! { field::ID: &id, field::DELETING: { "$exists": false }, field::OWNER: owner };
        let kept = doc! { "$set": { field::LEASE_UNTIL: until } };
        let found = match self.find_and_update(&ev.subscription_partitions, keep, kept, true)? {
            Some(d) => d,
            None => {
                // No owner (whose `lease_until` is NO_LEASE), or a lease
                // that ended: a change of owner.
                let take = doc! {
                    field::ID: &id,
                    field::DELETING: { "$exists": false },
                    field::LEASE_UNTIL: { "$lt": now_ms },
                };
                let taken = doc! {
                    "$set": { field::OWNER: owner, field::LEASE_UNTIL: until },
                    "$inc": { field::EPOCH: 1_i64 },
                };
                match self.find_and_update(&ev.subscription_partitions, take, taken, true)? {
                    Some(d) => d,
                    None => return Ok(None),
                }
            }
        };
        let sp = sub_part_from_doc(&found)?;
        let pending = self.pending_of(&sp.uid, partition, sp.gen)?;
        Ok(Some(PartitionState { epoch: sp.epoch, cursor: sp.cursor, pending }))
    }

    fn renew_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        epoch: i64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<()> {
        let filter = doc! { field::ID: part_id(subscription, partition), field::OWNER: owner, field::EPOCH: epoch };
        let update = doc! { "$set": { field::LEASE_UNTIL: now_ms.saturating_add(lease_ms) } };
        let renewed = self.ev().subscription_partitions.update_one(filter, update).run().map_err(map)?;
        if renewed.matched_count == 0 {
            return Err(lease_lost(subscription, partition));
        }
        Ok(())
    }

    fn release_partition(&self, subscription: &str, partition: u32, owner: &str, epoch: i64) -> Result<()> {
        let filter = doc! { field::ID: part_id(subscription, partition), field::OWNER: owner, field::EPOCH: epoch };
        let update = doc! { "$set": { field::OWNER: Bson::Null, field::LEASE_UNTIL: NO_LEASE } };
        self.ev().subscription_partitions.update_one(filter, update).run().map_err(map)?;
        Ok(())
    }

    fn commit_delivery(&self, c: &DeliveryCommit) -> Result<()> {
        let ev = self.ev();
        let p = c.partition;
        let fence = doc! { field::ID: part_id(&c.subscription, p), field::OWNER: &c.owner, field::EPOCH: c.epoch };
        let renew = doc! { "$set": { field::LEASE_UNTIL: c.now_ms.saturating_add(c.lease_ms) } };
        let Some(found) = self.find_and_update(&ev.subscription_partitions, fence.clone(), renew, true)? else {
            return Err(lease_lost(&c.subscription, p));
        };
        let sp = sub_part_from_doc(&found)?;
        let (uid, gen) = (&sp.uid, sp.gen);

        let dead: HashSet<i64> = c.dead.iter().map(|d| d.message.offset).collect();
        if !c.dead.is_empty() {
            let statements = c
                .dead
                .iter()
                .map(|d| {
                    let set = dead_to_doc(uid, &c.subscription, p, d);
                    let size = statement_size(&d.message) + d.logs.iter().map(|l| l.len() as u64).sum::<u64>();
                    (size, doc! { "q": { field::ID: dead_id(uid, p, d.message.offset) }, "u": { "$set": set }, "upsert": true })
                })
                .collect();
            self.run_updates(DEAD_LETTERS, statements, |_| false)?;
        }
        let kept: Vec<&Pending> = c.pending.iter().filter(|e| !dead.contains(&e.message.offset)).collect();
        if !kept.is_empty() {
            let statements = kept
                .iter()
                .map(|e| {
                    let set = pending_to_doc(uid, p, gen, e);
                    let id = pending_id(uid, p, gen, e.message.offset);
                    (statement_size(&e.message), doc! { "q": { field::ID: id }, "u": { "$set": set }, "upsert": true })
                })
                .collect();
            self.run_updates(PENDING, statements, |_| false)?;
        }
        let written: HashSet<i64> = kept.iter().map(|e| e.message.offset).collect();
        let finished: Vec<String> = c
            .done
            .iter()
            .chain(&dead)
            .filter(|o| !written.contains(o))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|&o| pending_id(uid, p, gen, o))
            .collect();
        for chunk in finished.chunks(BATCH) {
            ev.pending.delete_many(doc! { field::ID: { "$in": chunk } }).run().map_err(map)?;
        }
        let moved = ev
            .subscription_partitions
            .update_one(fence, doc! { "$max": { field::CURSOR: c.cursor } })
            .run()
            .map_err(map)?;
        if moved.matched_count == 0 {
            return Err(lease_lost(&c.subscription, p));
        }
        Ok(())
    }

    fn reset_subscription(&self, name: &str, to: Position) -> Result<Option<Vec<i64>>> {
        let ev = self.ev();
        let Some(s) = self.sub_doc(name)? else { return Ok(None) };
        let cursors = match self.live_topic(&s.subscription.topic)? {
            Some(t) => {
                let parts = self.topic_parts(&t)?;
                self.positions(&t, &parts, to)?
            }
            None => vec![0; s.partitions as usize],
        };
        let mut made = false;
        for (p, cursor) in (0..s.partitions).zip(&cursors) {
            let filter =
                doc! { field::ID: part_id(name, p), field::UID: &s.uid, field::DELETING: { "$exists": false } };
            let update = doc! {
                "$set": { field::CURSOR: cursor, field::OWNER: Bson::Null, field::LEASE_UNTIL: NO_LEASE },
                "$inc": { field::EPOCH: 1_i64, field::GEN: 1_i64 },
            };
            let mut found = self.find_and_update(&ev.subscription_partitions, filter.clone(), update.clone(), true)?;
            if found.is_none() && !made {
                self.make_sub_partitions(&s, Making::Repair)?;
                made = true;
                found = self.find_and_update(&ev.subscription_partitions, filter, update, true)?;
            }
            // None: the subscription is being deleted.
            let Some(found) = found else { continue };
            let sp = sub_part_from_doc(&found)?;
            let older = doc! { field::UID: &s.uid, field::PARTITION: i64::from(p), field::GEN: { "$lt": sp.gen } };
            ev.pending.delete_many(older).run().map_err(map)?;
        }
        Ok(Some(cursors))
    }

    fn list_dead(&self, subscription: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let Some(s) = self.sub_doc(subscription)? else { return Ok(Vec::new()) };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let found = self
            .ev()
            .dead
            .find(doc! { field::UID: &s.uid })
            .sort(doc! { field::DIED: 1, field::PARTITION: 1, field::OFFSET: 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .run()
            .map_err(map)?;
        self.collect(found)?.iter().map(dead_from_doc).collect()
    }

    fn redrive_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        let ev = self.ev();
        let Some(s) = self.sub_doc(subscription)? else { return Ok(0) };
        let filter = match one {
            Some((p, o)) => doc! { field::ID: dead_id(&s.uid, p, o) },
            None => doc! { field::UID: &s.uid },
        };
        let mut moved = 0;
        let mut skipped: HashSet<String> = HashSet::new();
        loop {
            // The letters of partitions being deleted stay, and are read
            // again: read that many more.
            let limit = BATCH + skipped.len();
            let found = ev
                .dead
                .find(filter.clone())
                .sort(doc! { field::PARTITION: 1, field::OFFSET: 1 })
                .limit(limit as i64)
                .run()
                .map_err(map)?;
            let docs = self.collect(found)?;
            let mut letters: BTreeMap<u32, Vec<(String, DeadLetter)>> = BTreeMap::new();
            for d in &docs {
                let id = d.get_str(field::ID).unwrap_or_default().to_owned();
                if skipped.contains(&id) {
                    continue;
                }
                let letter = dead_from_doc(d)?;
                letters.entry(letter.message.partition).or_default().push((id, letter));
            }
            if letters.is_empty() {
                break;
            }
            for (p, letters) in letters {
                let ids: Vec<&String> = letters.iter().map(|(id, _)| id).collect();
                if !self.redrive_partition(&s, p, &letters)? {
                    skipped.extend(ids.into_iter().cloned());
                    continue;
                }
                moved += ev.dead.delete_many(doc! { field::ID: { "$in": ids } }).run().map_err(map)?.deleted_count;
            }
            if docs.len() < limit {
                break;
            }
        }
        Ok(moved)
    }

    fn purge_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        let Some(s) = self.sub_doc(subscription)? else { return Ok(0) };
        let filter = match one {
            Some((p, o)) => doc! { field::ID: dead_id(&s.uid, p, o) },
            None => doc! { field::UID: &s.uid },
        };
        Ok(self.ev().dead.delete_many(filter).run().map_err(map)?.deleted_count)
    }
}

impl MongoStore {
    /// Publishes `all[i]` for each `i` of `list` (all of topic `name`),
    /// setting their answers; see the module docs.
    fn publish_topic(
        &self,
        name: &str,
        all: &[NewMessage],
        list: &[usize],
        now_ms: i64,
        answers: &mut [Published],
        tries: usize,
    ) -> Result<()> {
        let ev = self.ev();
        let Some(t) = self.live_topic(name)? else { return Ok(()) };
        let list: Vec<usize> = list.iter().copied().filter(|&i| all[i].partition < t.topic.partitions).collect();

        // Keys held by retained messages.
        let keys: Vec<&str> = list.iter().filter_map(|&i| all[i].idempotency_key.as_deref()).collect();
        let mut held: HashMap<String, (u32, i64)> = HashMap::new();
        for chunk in keys.chunks(BATCH) {
            let found = ev
                .messages
                .find(doc! { field::TUID: &t.uid, field::IDEM_KEY: { "$in": chunk } })
                .projection(doc! { field::IDEM_KEY: 1, field::PARTITION: 1, field::OFFSET: 1 })
                .run()
                .map_err(map)?;
            for d in self.collect(found)? {
                let f = Fields::new(&d, format!("message of topic {name}"));
                held.insert(f.string(field::IDEM_KEY)?, (u32_field(&f, field::PARTITION)?, f.i64(field::OFFSET)?));
            }
        }
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        let mut copies: Vec<(usize, usize)> = Vec::new();
        let mut by_partition: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for &i in &list {
            if let Some(key) = all[i].idempotency_key.as_deref() {
                if let Some(&(partition, offset)) = held.get(key) {
                    answers[i] = Published::Existing { partition, offset };
                    continue;
                }
                if let Some(&first) = first_of.get(key) {
                    copies.push((i, first));
                    continue;
                }
                first_of.insert(key, i);
            }
            by_partition.entry(all[i].partition).or_default().push(i);
        }

        // Reserve, then insert.
        let mut docs = Vec::new();
        let mut placed: Vec<(usize, i64, i64)> = Vec::new(); // (message, offset, published)
        for (&p, msgs) in &by_partition {
            let bytes = msgs.iter().map(|&i| size_of(&all[i])).sum();
            let Some((first, published)) = self.reserve(&t, p, msgs.len(), bytes, now_ms)? else { continue };
            for (k, &i) in msgs.iter().enumerate() {
                let offset = first + k as i64;
                docs.push(message_to_doc(&t.uid, offset, &all[i], published));
                placed.push((i, offset, published));
            }
        }
        let refused: HashSet<usize> = if docs.is_empty() {
            HashSet::new()
        } else {
            match ev.messages.insert_many(docs).ordered(false).run() {
                Ok(_) => HashSet::new(),
                Err(err) => match duplicate_indexes(&err) {
                    Some(refused) => refused.into_iter().collect(),
                    None => return Err(self.err("cannot publish", err)),
                },
            }
        };
        let mut again = Vec::new();
        let mut take_back: BTreeMap<u32, (i64, i64)> = BTreeMap::new();
        for (k, &(i, offset, published)) in placed.iter().enumerate() {
            let p = all[i].partition;
            if !refused.contains(&k) {
                answers[i] = Published::New { partition: p, offset };
                continue;
            }
            let back = take_back.entry(p).or_default();
            back.0 += 1;
            back.1 += size_of(&all[i]) as i64;
            // A reader that waited too long for the offset filled it: the
            // message goes to a new one.
            let at = doc! { field::TUID: &t.uid, field::PARTITION: i64::from(p), field::OFFSET: offset };
            if ev.messages.find_one(at).projection(doc! { field::ID: 1 }).run().map_err(map)?.is_some() {
                again.push(i);
                continue;
            }
            // Else the key went to a message appended since it was looked up.
            let Some(key) = all[i].idempotency_key.as_deref() else {
                return Err(StoreError::Unavailable(format!(
                    "MongoDB refused message {offset} of partition {p} of topic {name} for a duplicate key"
                )));
            };
            let holder = ev
                .messages
                .find_one(doc! { field::TUID: &t.uid, field::IDEM_KEY: key })
                .projection(doc! { field::PARTITION: 1, field::OFFSET: 1 })
                .run()
                .map_err(map)?;
            match holder {
                Some(d) => {
                    let f = Fields::new(&d, format!("message of topic {name}"));
                    answers[i] = Published::Existing {
                        partition: u32_field(&f, field::PARTITION)?,
                        offset: f.i64(field::OFFSET)?,
                    };
                }
                // Deleted since: published again.
                None => again.push(i),
            }
            // Readers need not wait for the offset this message took.
            match ev.messages.insert_one(tombstone(&t.uid, p, offset, published)).run() {
                Err(err) if !is_duplicate_key(&err) => return Err(map(err)),
                _ => {}
            }
        }
        for (p, (n, bytes)) in take_back {
            let filter = doc! { field::ID: part_id(name, p), field::UID: &t.uid };
            let update = doc! { "$inc": { field::MESSAGES: -n, field::BYTES: -bytes } };
            ev.topic_partitions.update_one(filter, update).run().map_err(map)?;
        }
        if !again.is_empty() {
            if tries == 0 {
                return Err(StoreError::Unavailable(format!(
                    "cannot append {} messages to topic {name}: readers kept filling their offsets",
                    again.len()
                )));
            }
            self.publish_topic(name, all, &again, now_ms, answers, tries - 1)?;
        }
        for (i, first) in copies {
            answers[i] = match answers[first] {
                Published::New { partition, offset } | Published::Existing { partition, offset } => {
                    Published::Existing { partition, offset }
                }
                Published::NoTopic => Published::NoTopic,
            };
        }
        Ok(())
    }

    /// Moves `letters` (of partition `p`) to the pending list, then
    /// releases the partition at a higher epoch; `false` if the partition
    /// is being deleted.
    fn redrive_partition(&self, s: &SubDoc, p: u32, letters: &[(String, DeadLetter)]) -> Result<bool> {
        let ev = self.ev();
        let id = part_id(&s.subscription.name, p);
        let mut made = false;
        // A reset between the upserts and the release changes `gen`: the
        // entries are written again at the new one.
        for _ in 0..3 {
            let filter = doc! { field::ID: &id, field::UID: &s.uid, field::DELETING: { "$exists": false } };
            let Some(found) = ev.subscription_partitions.find_one(filter).run().map_err(map)? else {
                if made {
                    return Ok(false);
                }
                self.make_sub_partitions(s, Making::Repair)?;
                made = true;
                continue;
            };
            let gen = sub_part_from_doc(&found)?.gen;
            let statements = letters
                .iter()
                .map(|(_, d)| {
                    let entry = Pending {
                        message: d.message.clone(),
                        attempts: 0,
                        not_before: 0,
                        last_error: Some(d.error.clone()),
                    };
                    let set = pending_to_doc(&s.uid, p, gen, &entry);
                    let q = doc! { field::ID: pending_id(&s.uid, p, gen, d.message.offset) };
                    (statement_size(&d.message), doc! { "q": q, "u": { "$set": set }, "upsert": true })
                })
                .collect();
            self.run_updates(PENDING, statements, |_| false)?;
            let release =
                doc! { field::ID: &id, field::UID: &s.uid, field::GEN: gen, field::DELETING: { "$exists": false } };
            let update = doc! { "$set": { field::OWNER: Bson::Null, field::LEASE_UNTIL: NO_LEASE }, "$inc": { field::EPOCH: 1_i64 } };
            if ev.subscription_partitions.update_one(release, update).run().map_err(map)?.matched_count > 0 {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(format!(
            "partition {p} of subscription {} kept being reset during a redrive",
            s.subscription.name
        )))
    }
}
