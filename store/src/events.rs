//! Events: topics (durable logs, partitioned by key), subscriptions that
//! deliver a topic to an action, and their dead letters.
//!
//! # The model
//!
//! A **topic** has a fixed number of partitions, set when it is created.
//! Each partition is an append-only log of [`Message`]s numbered by
//! *offset*, 0, 1, 2, … with no gap, in the order the store appended them.
//! The server picks a message's partition from its key (a stable hash), so
//! that the messages of one key are in one partition, in publish order.
//! Retention deletes the oldest messages of a partition (by age, and by
//! the topic's total size); offsets are never reused.
//!
//! A **subscription** delivers one topic to one action. For each partition
//! it keeps a *cursor*: every message below it was taken off the log,
//! either done or moved to the subscription's *pending* list (see below).
//! One server at a time owns a partition of a subscription, by a lease it
//! renews ([`claim_partition`](Events::claim_partition),
//! [`renew_partition`](Events::renew_partition)); the owner delivers the
//! partition's messages in batches, one batch at a time, and after each
//! batch moves the cursor and the pending list in one call
//! ([`commit_delivery`](Events::commit_delivery)). Every change of owner,
//! and every change made by someone else than the owner (a reset, a
//! redrive), increases the partition's *epoch*; a commit or renewal with an
//! old epoch fails with [`StoreError::LeaseLost`], so a server that lost
//! its lease never overwrites the new owner's progress.
//!
//! **Pending** messages are those a subscription took off the log but has
//! not finished: messages to retry later (after an error, with their
//! attempts and last error), and messages held behind an earlier pending
//! message of the same key (so that a key's messages are handled in
//! order). A pending entry keeps a copy of its message, so retention never
//! loses it. A message that failed too often becomes a [`DeadLetter`]:
//! listed, redriven (back to pending, attempts 0) or purged by the
//! operator.
//!
//! Calls are synchronous and run on the server's pool, like [`Store`]'s.
//! Times are Unix milliseconds given by the caller.
//!
//! [`Store`]: crate::Store
//! [`StoreError::LeaseLost`]: crate::StoreError::LeaseLost

use serde::{Deserialize, Serialize};

use crate::Result;

/// A topic's settings, fixed at creation except retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// 1 to 128 characters of `[A-Za-z0-9._-]` (checked by the server).
    pub name: String,
    /// 1 to 256 (checked by the server).
    pub partitions: u32,
    /// Messages older than this many milliseconds are deleted (`None`:
    /// kept for any age).
    pub retention_ms: Option<i64>,
    /// Past this many bytes of payloads and keys in all, the oldest
    /// messages are deleted (`None`: no bound).
    pub retention_bytes: Option<u64>,
    /// Unix milliseconds.
    pub created: i64,
}

/// A topic with what its log holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub topic: Topic,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionLog>,
    /// Messages retained, in all partitions.
    pub messages: u64,
    /// [`Message::size`]s of the retained messages added up.
    pub bytes: u64,
}

/// The offsets a partition's log spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLog {
    /// The offset of the oldest retained message (`next` when none is).
    pub first: i64,
    /// The offset the next message appended gets.
    pub next: i64,
}

/// A message to append, as the server hands it to
/// [`publish`](Events::publish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub topic: String,
    /// Below the topic's `partitions`.
    pub partition: u32,
    pub key: Option<String>,
    /// JSON text (checked by the server).
    pub payload: String,
    /// A client's `Idempotency-Key`: unique among the topic's retained
    /// messages.
    pub idempotency_key: Option<String>,
}

/// The answer to one [`NewMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Published {
    /// Appended at this offset of this partition.
    New { partition: u32, offset: i64 },
    /// Not appended: a retained message of the topic holds the same
    /// idempotency key; this is where it is.
    Existing { partition: u32, offset: i64 },
    /// Not appended: the topic does not exist, or has no such partition.
    NoTopic,
}

/// A message of a topic's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub partition: u32,
    pub offset: i64,
    pub key: Option<String>,
    /// JSON text.
    pub payload: String,
    /// Unix milliseconds when the store appended it.
    pub published: i64,
}

impl Message {
    /// What the message counts against its topic's `retention_bytes`: its
    /// payload and key.
    pub fn size(&self) -> u64 {
        (self.payload.len() + self.key.as_ref().map_or(0, String::len)) as u64
    }
}

/// A subscription's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// 1 to 128 characters of `[A-Za-z0-9._-]` (checked by the server).
    pub name: String,
    pub topic: String,
    /// The action each batch is delivered to.
    pub action: String,
    /// At most this many messages a batch (1 to 1000).
    pub batch_size: u32,
    /// How long a partial batch waits for more messages, in milliseconds
    /// (0: delivered at once).
    pub max_wait_ms: i64,
    /// Deliveries of a message after its first before it becomes a dead
    /// letter.
    pub max_retries: u32,
    /// The first retry's delay in milliseconds; each next one doubles, up
    /// to `backoff_max_ms`, with jitter.
    pub backoff_ms: i64,
    pub backoff_max_ms: i64,
    /// Unix milliseconds.
    pub created: i64,
}

/// Where a new subscription's cursors start, or where a reset moves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// The oldest retained message of each partition.
    Beginning,
    /// After the newest message of each partition: only messages published
    /// from now on.
    End,
    /// This offset in every partition (raised to the partition's first
    /// retained offset, lowered to its next offset).
    Offset(i64),
    /// In each partition, the first message published at or after this
    /// Unix millisecond time (the partition's next offset if none was).
    Time(i64),
}

/// A subscription with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub subscription: Subscription,
    /// One entry per partition of its topic, in partition order.
    pub partitions: Vec<SubscriptionPartition>,
    /// Dead letters held.
    pub dead: u64,
}

/// A subscription's progress in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionPartition {
    pub cursor: i64,
    /// Entries in the pending list.
    pub pending: u64,
    /// The server holding the lease, if its lease has not ended by the
    /// time given to [`get_subscription`](Events::get_subscription).
    pub owner: Option<String>,
    pub epoch: i64,
}

/// A message a subscription took off the log and has not finished (see
/// the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub message: Message,
    /// Deliveries so far (0 for a message held behind another that has
    /// never been delivered).
    pub attempts: u32,
    /// Not to be delivered before this Unix millisecond time.
    pub not_before: i64,
    /// The error of the last delivery, if it failed.
    pub last_error: Option<String>,
}

/// What the owner of a subscription's partition gets when it takes the
/// lease: where to go on from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub epoch: i64,
    pub cursor: i64,
    /// In offset order.
    pub pending: Vec<Pending>,
}

/// A message that failed `max_retries + 1` deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub subscription: String,
    pub message: Message,
    pub attempts: u32,
    /// The last delivery's error.
    pub error: String,
    /// The log lines of the last delivery.
    pub logs: Vec<String>,
    /// The invocation of the last delivery.
    pub invocation: Option<String>,
    /// Unix milliseconds.
    pub died: i64,
}

/// What the owner of a subscription's partition writes after a batch, in
/// one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCommit {
    pub subscription: String,
    pub partition: u32,
    pub owner: String,
    /// The epoch [`claim_partition`](Events::claim_partition) gave.
    pub epoch: i64,
    pub now_ms: i64,
    /// The lease is renewed to `now_ms + lease_ms`.
    pub lease_ms: i64,
    /// The new cursor (not lower than the stored one).
    pub cursor: i64,
    /// Offsets of pending entries that are finished: removed.
    pub done: Vec<i64>,
    /// Pending entries added or replaced (by offset): retries and
    /// messages held behind them.
    pub pending: Vec<Pending>,
    /// Dead letters added; their pending entries, if any, are removed.
    pub dead: Vec<DeadLetter>,
}

/// Topics, subscriptions and dead letters: the storage contract of events.
/// Every backend passes the `events_*` cases of the conformance suite.
pub trait Events: Send + Sync {
    /// Stores a new topic with empty partitions. Fails with
    /// [`StoreError::AlreadyExists`](crate::StoreError::AlreadyExists) if
    /// one of that name exists.
    fn create_topic(&self, topic: &Topic) -> Result<()>;

    /// Replaces a topic's retention settings. Returns `false` if there is
    /// no such topic.
    fn set_topic_retention(&self, name: &str, retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Result<bool>;

    /// The topic and its log's extent, or `None`.
    fn get_topic(&self, name: &str) -> Result<Option<TopicInfo>>;

    /// Every topic, sorted by name.
    fn list_topics(&self) -> Result<Vec<TopicInfo>>;

    /// Deletes a topic, its messages, and its subscriptions with their
    /// pending lists and dead letters. Returns `false` if there was none.
    fn delete_topic(&self, name: &str) -> Result<bool>;

    /// Appends messages, durable when this returns. Answers are in the
    /// order of `messages`; messages of one partition get increasing
    /// offsets in that order. A message whose idempotency key a retained
    /// message of its topic holds (or an earlier one of the same call) is
    /// not appended and is answered [`Published::Existing`].
    fn publish(&self, messages: &[NewMessage], now_ms: i64) -> Result<Vec<Published>>;

    /// Up to `limit` messages of a partition from offset `from` on, in
    /// offset order, stopping after the message that brings the sizes read
    /// to `max_bytes` (so at least one is read when one is there). Offsets
    /// below the partition's first retained one are skipped. A message is
    /// readable only once every message before it in its partition is
    /// readable or deleted: a reader never skips an offset that a
    /// publisher has taken and not yet written. Reads nothing if there is
    /// no such topic or partition.
    fn read_messages(
        &self,
        topic: &str,
        partition: u32,
        from: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Message>>;

    /// Deletes messages of the topic published before `before_ms` (if
    /// given), then the oldest messages (by publish time across partitions,
    /// the lower offset first within one) while the retained sizes add up
    /// to more than `max_bytes` (if given). Returns how many were deleted.
    fn purge_messages(&self, topic: &str, before_ms: Option<i64>, max_bytes: Option<u64>) -> Result<u64>;

    /// Stores a new subscription of an existing topic, each partition's
    /// cursor at `start`, with no owner and epoch 0. Fails with
    /// `AlreadyExists` if one of that name exists, and with
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) (holding the
    /// topic's name) if its topic does not exist.
    fn create_subscription(&self, subscription: &Subscription, start: Position) -> Result<()>;

    /// The subscription and its progress, or `None`. `now_ms` decides
    /// whose lease has ended (before `now_ms`, as for
    /// [`claim_partition`](Events::claim_partition)).
    fn get_subscription(&self, name: &str, now_ms: i64) -> Result<Option<SubscriptionInfo>>;

    /// Every subscription, sorted by name.
    fn list_subscriptions(&self, now_ms: i64) -> Result<Vec<SubscriptionInfo>>;

    /// Deletes a subscription with its pending lists and dead letters.
    /// Returns `false` if there was none.
    fn delete_subscription(&self, name: &str) -> Result<bool>;

    /// Takes (or keeps) the lease of a subscription's partition for
    /// `owner` until `now_ms + lease_ms`, if it has no owner, its owner's
    /// lease ended before `now_ms`, or `owner` holds it. A change of owner
    /// (from none too: the first claim, a claim after a release) increases
    /// the epoch. Returns the partition's state, or `None` if
    /// another owner holds a live lease, or there is no such subscription
    /// or partition. Two callers never both get a partition's lease.
    fn claim_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<PartitionState>>;

    /// Extends `owner`'s lease to `now_ms + lease_ms`. Fails with
    /// `LeaseLost` unless `owner` holds the partition at `epoch` (a lease
    /// that ended but that nobody else took is still held).
    fn renew_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        epoch: i64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<()>;

    /// Gives up `owner`'s lease at `epoch` (a server that stops): the
    /// partition has no owner, and its epoch is unchanged. Does nothing if
    /// `owner` does not hold it at `epoch`.
    fn release_partition(&self, subscription: &str, partition: u32, owner: &str, epoch: i64) -> Result<()>;

    /// Writes a batch's outcome (see [`DeliveryCommit`]) atomically, and
    /// renews the lease. Fails with `LeaseLost` unless `commit.owner`
    /// holds the partition at `commit.epoch`; then nothing is written.
    fn commit_delivery(&self, commit: &DeliveryCommit) -> Result<()>;

    /// Moves every partition's cursor of a subscription to `to`, empties its
    /// pending lists, releases its leases and increases each partition's
    /// epoch; its dead letters stay. Returns the new cursors in partition
    /// order, or `None` if there is no such subscription.
    fn reset_subscription(&self, name: &str, to: Position) -> Result<Option<Vec<i64>>>;

    /// A subscription's dead letters, oldest death first, at most `limit`.
    fn list_dead(&self, subscription: &str, limit: usize) -> Result<Vec<DeadLetter>>;

    /// Moves dead letters back to their partitions' pending lists, with
    /// `attempts` 0, no delay (`not_before` 0) and the dead letter's
    /// `error` as `last_error`: all of them, or the one at (`partition`,
    /// `offset`). The partitions changed have their leases released and
    /// their epochs increased. Returns how many moved.
    fn redrive_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64>;

    /// Deletes dead letters: all of them, or the one at (`partition`,
    /// `offset`). Returns how many were deleted.
    fn purge_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64>;
}
