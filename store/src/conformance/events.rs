//! The `events_*` conformance cases: what every [`Events`] backend must do.
//!
//! Each case is a public function that takes a fresh, empty store and
//! panics when the store breaks the contract documented on [`Events`] and
//! its types. A backend runs them all from its tests with one line, which
//! expands to one `#[test]` per case:
//!
//! ```
//! mod memory {
//!     sl_store::events_conformance_tests!(sl_store::MemoryStore::new());
//! }
//! ```
//!
//! The expression is evaluated once per case and must give a value whose
//! type implements [`Events`] (a [`Guarded`] store does when its store
//! does). [`run_all_events`] runs every case in one test instead.
//!
//! The cases check what the contract says, and only that: where it leaves
//! a choice to the backend (the order of two messages of different
//! partitions published at the same millisecond, of two dead letters that
//! died at the same millisecond, by how much an epoch grows), no case
//! depends on it: past the 0 of a new subscription, epochs are compared,
//! never expected to be given values.
//! Every time is a clock value of the case's own, so no case depends on the
//! real time.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;

use super::{Guarded, HOUR, T0};
use crate::{
    DeadLetter, DeliveryCommit, Events, Message, NewMessage, PartitionLog, PartitionState, Pending, Position,
    Published, Result, StoreError, Subscription, SubscriptionInfo, SubscriptionPartition, Topic, TopicInfo,
};

/// Runs every case in [`EVENTS_CASES`], each on a fresh store from `make`.
pub fn run_all_events(make: &dyn Fn() -> Box<dyn Events>) {
    for (name, case) in EVENTS_CASES {
        let store = make();
        eprintln!("events conformance: {name}");
        case(&*store);
    }
}

/// Lists every events case once; the two macros below expand the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __sl_store_events_conformance_cases {
    ($($mode:tt)*) => {
        $crate::__sl_store_events_conformance_expand! {
            ($($mode)*)
            events_topics_create_then_get
            events_topics_create_duplicate_already_exists
            events_topics_list_sorted_by_name
            events_topics_set_retention
            events_topics_delete_removes_subscriptions_pending_and_dead
            events_publish_offsets_per_partition_in_call_order
            events_publish_idempotency_keys
            events_publish_idempotency_key_freed_when_its_message_is_purged
            events_publish_no_topic
            events_read_messages_from_limit_and_max_bytes
            events_read_messages_skips_purged_offsets
            events_read_messages_of_a_missing_topic_or_partition_is_empty
            events_purge_messages_by_age
            events_purge_messages_by_bytes_oldest_first
            events_purge_messages_by_age_then_bytes
            events_subscriptions_create_at_each_position
            events_subscriptions_create_errors_list_and_delete
            events_subscriptions_delete_removes_pending_and_dead
            events_claim_is_exclusive_until_the_lease_ends
            events_claim_by_the_holder_keeps_the_epoch
            events_renew_extends_the_lease_of_the_holder_only
            events_release_frees_the_partition_at_the_same_epoch
            events_commit_moves_the_cursor_and_the_pending_list
            events_commit_dead_letters_remove_their_pending_entries
            events_commit_with_a_lost_lease_writes_nothing
            events_pending_entries_outlive_retention
            events_get_subscription_shows_live_owners_and_counts
            events_reset_to_each_position
            events_list_dead_oldest_first_with_limit
            events_redrive_dead_one_and_all
            events_purge_dead_one_and_all
            events_concurrent_claims_give_each_partition_once
            events_concurrent_publishers_get_distinct_gap_free_offsets
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sl_store_events_conformance_expand {
    ((cases) $($case:ident)*) => {
        /// Every events case with its name, in a sensible reading order.
        pub const EVENTS_CASES: &[(&str, fn(&dyn $crate::Events))] =
            &[$((stringify!($case), $case as fn(&dyn $crate::Events))),*];
    };
    ((tests $make:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let store = $make;
                $crate::conformance::events::$case(&store);
            }
        )*
    };
}

/// Expands to one `#[test]` per events conformance case, each running the
/// case on the store that `$make` (evaluated once per test) gives.
///
/// ```
/// mod sqlite_memory {
///     sl_store::events_conformance_tests!(sl_store::SqliteStore::open_in_memory().unwrap());
/// }
/// ```
#[macro_export]
macro_rules! events_conformance_tests {
    ($make:expr) => {
        $crate::__sl_store_events_conformance_cases!(tests $make);
    };
}

__sl_store_events_conformance_cases!(cases);

impl<S: Events, G: Send + Sync> Events for Guarded<S, G> {
    fn create_topic(&self, topic: &Topic) -> Result<()> {
        self.store.create_topic(topic)
    }
    fn set_topic_retention(&self, name: &str, retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Result<bool> {
        self.store.set_topic_retention(name, retention_ms, retention_bytes)
    }
    fn get_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        self.store.get_topic(name)
    }
    fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.store.list_topics()
    }
    fn delete_topic(&self, name: &str) -> Result<bool> {
        self.store.delete_topic(name)
    }
    fn publish(&self, messages: &[NewMessage], now_ms: i64) -> Result<Vec<Published>> {
        self.store.publish(messages, now_ms)
    }
    fn read_messages(
        &self,
        topic: &str,
        partition: u32,
        from: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Message>> {
        self.store.read_messages(topic, partition, from, limit, max_bytes)
    }
    fn purge_messages(&self, topic: &str, before_ms: Option<i64>, max_bytes: Option<u64>) -> Result<u64> {
        self.store.purge_messages(topic, before_ms, max_bytes)
    }
    fn create_subscription(&self, subscription: &Subscription, start: Position) -> Result<()> {
        self.store.create_subscription(subscription, start)
    }
    fn get_subscription(&self, name: &str, now_ms: i64) -> Result<Option<SubscriptionInfo>> {
        self.store.get_subscription(name, now_ms)
    }
    fn list_subscriptions(&self, now_ms: i64) -> Result<Vec<SubscriptionInfo>> {
        self.store.list_subscriptions(now_ms)
    }
    fn delete_subscription(&self, name: &str) -> Result<bool> {
        self.store.delete_subscription(name)
    }
    fn claim_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<PartitionState>> {
        self.store.claim_partition(subscription, partition, owner, now_ms, lease_ms)
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
        self.store.renew_partition(subscription, partition, owner, epoch, now_ms, lease_ms)
    }
    fn release_partition(&self, subscription: &str, partition: u32, owner: &str, epoch: i64) -> Result<()> {
        self.store.release_partition(subscription, partition, owner, epoch)
    }
    fn commit_delivery(&self, commit: &DeliveryCommit) -> Result<()> {
        self.store.commit_delivery(commit)
    }
    fn reset_subscription(&self, name: &str, to: Position) -> Result<Option<Vec<i64>>> {
        self.store.reset_subscription(name, to)
    }
    fn list_dead(&self, subscription: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        self.store.list_dead(subscription, limit)
    }
    fn redrive_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        self.store.redrive_dead(subscription, one)
    }
    fn purge_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        self.store.purge_dead(subscription, one)
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// The lease most cases take: ten seconds.
const LEASE: i64 = 10_000;

/// A topic of `partitions` partitions, created at `T0`, kept for any age
/// and size.
fn topic(name: &str, partitions: u32) -> Topic {
    Topic { name: name.to_owned(), partitions, retention_ms: None, retention_bytes: None, created: T0 }
}

/// A message without an idempotency key.
fn message(topic: &str, partition: u32, key: Option<&str>, payload: &str) -> NewMessage {
    NewMessage {
        topic: topic.to_owned(),
        partition,
        key: key.map(str::to_owned),
        payload: payload.to_owned(),
        idempotency_key: None,
    }
}

/// A message with the idempotency key `idem` (and no message key).
fn keyed(topic: &str, partition: u32, idem: &str, payload: &str) -> NewMessage {
    NewMessage { idempotency_key: Some(idem.to_owned()), ..message(topic, partition, None, payload) }
}

/// A JSON string of `len` bytes in all (quotes included, `len` >= 2).
fn payload_of(len: usize) -> String {
    format!("\"{}\"", "x".repeat(len.saturating_sub(2)))
}

/// Publishes one message at `now`, which must be appended; its offset.
fn append(store: &dyn Events, topic: &str, partition: u32, payload: &str, now: i64) -> i64 {
    match ok!(store.publish(&[message(topic, partition, None, payload)], now)).as_slice() {
        [Published::New { partition: p, offset }] if *p == partition => *offset,
        other => panic!("publish to {topic}/{partition}: expected one New answer, got {other:?}"),
    }
}

/// Every retained message of a partition, in offset order.
fn read_all(store: &dyn Events, topic: &str, partition: u32) -> Vec<Message> {
    ok!(store.read_messages(topic, partition, 0, 1_000_000, usize::MAX))
}

fn offsets(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.offset).collect()
}

fn payloads(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.payload.as_str()).collect()
}

fn topic_info(store: &dyn Events, name: &str) -> TopicInfo {
    ok!(store.get_topic(name)).unwrap_or_else(|| panic!("topic {name} exists"))
}

/// The (first, next) of each partition of a topic.
fn extents(store: &dyn Events, name: &str) -> Vec<(i64, i64)> {
    topic_info(store, name).partitions.iter().map(|p| (p.first, p.next)).collect()
}

/// A subscription of `topic` with every setting away from its default.
fn subscription(name: &str, topic: &str) -> Subscription {
    Subscription {
        name: name.to_owned(),
        topic: topic.to_owned(),
        action: format!("handle-{name}"),
        batch_size: 100,
        max_wait_ms: 250,
        max_retries: 3,
        backoff_ms: 1_000,
        backoff_max_ms: 60_000,
        created: T0,
    }
}

fn subscribe(store: &dyn Events, name: &str, topic: &str, start: Position) {
    ok!(store.create_subscription(&subscription(name, topic), start));
}

fn sub_info(store: &dyn Events, name: &str, now: i64) -> SubscriptionInfo {
    ok!(store.get_subscription(name, now)).unwrap_or_else(|| panic!("subscription {name} exists"))
}

fn cursors(info: &SubscriptionInfo) -> Vec<i64> {
    info.partitions.iter().map(|p| p.cursor).collect()
}

fn epochs(info: &SubscriptionInfo) -> Vec<i64> {
    info.partitions.iter().map(|p| p.epoch).collect()
}

fn owners(info: &SubscriptionInfo) -> Vec<Option<&str>> {
    info.partitions.iter().map(|p| p.owner.as_deref()).collect()
}

fn pending_counts(info: &SubscriptionInfo) -> Vec<u64> {
    info.partitions.iter().map(|p| p.pending).collect()
}

/// Claims a partition, which must be granted, with a lease of [`LEASE`].
fn claim(store: &dyn Events, sub: &str, partition: u32, owner: &str, now: i64) -> PartitionState {
    ok!(store.claim_partition(sub, partition, owner, now, LEASE))
        .unwrap_or_else(|| panic!("{owner} claims {sub}/{partition} at {now}"))
}

/// Asserts that a claim is refused.
fn refused(store: &dyn Events, sub: &str, partition: u32, owner: &str, now: i64) {
    let got = ok!(store.claim_partition(sub, partition, owner, now, LEASE));
    assert_eq!(got, None, "{owner} claims {sub}/{partition} at {now}");
}

/// A commit of nothing but a cursor, renewing the lease by [`LEASE`].
fn commit(sub: &str, partition: u32, owner: &str, epoch: i64, now: i64, cursor: i64) -> DeliveryCommit {
    DeliveryCommit {
        subscription: sub.to_owned(),
        partition,
        owner: owner.to_owned(),
        epoch,
        now_ms: now,
        lease_ms: LEASE,
        cursor,
        done: Vec::new(),
        pending: Vec::new(),
        dead: Vec::new(),
    }
}

fn pending(message: &Message, attempts: u32, not_before: i64, last_error: Option<&str>) -> Pending {
    Pending { message: message.clone(), attempts, not_before, last_error: last_error.map(str::to_owned) }
}

fn dead(sub: &str, message: &Message, died: i64) -> DeadLetter {
    DeadLetter {
        subscription: sub.to_owned(),
        message: message.clone(),
        attempts: 4,
        error: format!("error of offset {}", message.offset),
        logs: vec!["first line".to_owned(), format!("died at {died} ✗")],
        invocation: Some(format!("inv-{}-{}", message.partition, message.offset)),
        died,
    }
}

/// The (partition, offset) of each dead letter.
fn dead_keys(letters: &[DeadLetter]) -> Vec<(u32, i64)> {
    letters.iter().map(|d| (d.message.partition, d.message.offset)).collect()
}

/// Asserts that `result` is `LeaseLost` for this subscription's partition.
fn lease_lost<T: Debug>(result: Result<T>, sub: &str, partition: u32, what: &str) {
    match result {
        Err(StoreError::LeaseLost { subscription, partition: p }) => {
            assert_eq!((subscription.as_str(), p), (sub, partition), "{what}");
        }
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    }
}

/// A topic `name` of `partitions` partitions, and `count` messages of 10
/// bytes in each, the `i`th of every partition published at `T0 + 10 * i`.
fn filled_topic(store: &dyn Events, name: &str, partitions: u32, count: i64) -> Vec<Vec<Message>> {
    ok!(store.create_topic(&topic(name, partitions)));
    for i in 0..count {
        let batch: Vec<NewMessage> =
            (0..partitions).map(|p| message(name, p, None, &format!("\"{p}-{i:06}\""))).collect();
        ok!(store.publish(&batch, T0 + 10 * i));
    }
    (0..partitions).map(|p| read_all(store, name, p)).collect()
}

// ---------------------------------------------------------------------------
// Topics

/// `create_topic` stores the topic with empty partitions; `get_topic` and
/// `list_topics` return it with its settings as given.
pub fn events_topics_create_then_get(store: &dyn Events) {
    assert_eq!(ok!(store.get_topic("orders")), None);
    assert_eq!(ok!(store.list_topics()), vec![]);
    let t = Topic { retention_ms: Some(86_400_000), retention_bytes: Some(1 << 40), ..topic("orders", 3) };
    ok!(store.create_topic(&t));
    let info = topic_info(store, "orders");
    let empty = PartitionLog { first: 0, next: 0 };
    assert_eq!(info, TopicInfo { topic: t, partitions: vec![empty; 3], messages: 0, bytes: 0 });
    assert_eq!(ok!(store.get_topic("Orders")), None, "names are case-sensitive");
    assert_eq!(ok!(store.list_topics()), vec![info]);
}

/// Creating a topic whose name exists fails with `AlreadyExists` and
/// leaves the stored one and its log alone.
pub fn events_topics_create_duplicate_already_exists(store: &dyn Events) {
    ok!(store.create_topic(&topic("dup", 2)));
    append(store, "dup", 1, "1", T0);
    match store.create_topic(&Topic { created: T0 + 5, ..topic("dup", 7) }) {
        Err(StoreError::AlreadyExists(name)) => assert_eq!(name, "dup"),
        other => panic!("second create_topic: expected AlreadyExists, got {other:?}"),
    }
    let info = topic_info(store, "dup");
    assert_eq!(info.topic, topic("dup", 2));
    assert_eq!(extents(store, "dup"), [(0, 0), (0, 1)]);
    assert_eq!((info.messages, info.bytes), (1, 1));
    assert_eq!(ok!(store.list_topics()).len(), 1);
}

/// `list_topics` returns every topic sorted by name, byte by byte.
pub fn events_topics_list_sorted_by_name(store: &dyn Events) {
    let names = ["beta", "a_b", "Alpha", "alpha", "a.b", "1x", "a-b", "Zeta", "b"];
    for (i, name) in names.iter().enumerate() {
        ok!(store.create_topic(&topic(name, i as u32 + 1)));
    }
    let listed = ok!(store.list_topics());
    let listed_names: Vec<&str> = listed.iter().map(|t| t.topic.name.as_str()).collect();
    assert_eq!(listed_names, ["1x", "Alpha", "Zeta", "a-b", "a.b", "a_b", "alpha", "b", "beta"]);
    for info in &listed {
        let i = names.iter().position(|n| *n == info.topic.name).unwrap_or(usize::MAX);
        assert_eq!(info.partitions.len(), i + 1, "{}", info.topic.name);
        assert_eq!(info.topic.partitions as usize, i + 1, "{}", info.topic.name);
    }
}

/// `set_topic_retention` replaces both settings (every `u64` survives),
/// changes nothing else, and is `false` for a missing topic.
pub fn events_topics_set_retention(store: &dyn Events) {
    ok!(store.create_topic(&topic("r", 2)));
    append(store, "r", 0, "\"kept\"", T0);
    assert!(ok!(store.set_topic_retention("r", Some(60_000), Some(1_000))));
    let info = topic_info(store, "r");
    assert_eq!(info.topic, Topic { retention_ms: Some(60_000), retention_bytes: Some(1_000), ..topic("r", 2) });
    assert_eq!((info.messages, info.partitions[0]), (1, PartitionLog { first: 0, next: 1 }), "no message deleted");
    assert!(ok!(store.set_topic_retention("r", None, Some(u64::MAX))));
    assert_eq!(topic_info(store, "r").topic, Topic { retention_bytes: Some(u64::MAX), ..topic("r", 2) });
    assert!(ok!(store.set_topic_retention("r", Some(i64::MAX), None)));
    assert_eq!(topic_info(store, "r").topic, Topic { retention_ms: Some(i64::MAX), ..topic("r", 2) });
    assert!(ok!(store.set_topic_retention("r", None, None)));
    assert_eq!(topic_info(store, "r").topic, topic("r", 2));
    assert!(!ok!(store.set_topic_retention("missing", Some(1), Some(1))));
    assert_eq!(ok!(store.get_topic("missing")), None);
}

/// `delete_topic` deletes the topic, its messages, and its subscriptions
/// with their pending lists and dead letters; other topics keep theirs. A
/// topic made again under the name starts empty, from offset 0, with its
/// idempotency keys free.
pub fn events_topics_delete_removes_subscriptions_pending_and_dead(store: &dyn Events) {
    assert!(!ok!(store.delete_topic("gone")), "delete on an empty store");
    ok!(store.create_topic(&topic("gone", 2)));
    ok!(store.create_topic(&topic("kept", 1)));
    ok!(store
        .publish(&[keyed("gone", 0, "idem", "1"), message("gone", 0, None, "2"), message("gone", 1, None, "3")], T0));
    append(store, "kept", 0, "4", T0);
    subscribe(store, "on-gone", "gone", Position::Beginning);
    subscribe(store, "on-kept", "kept", Position::Beginning);
    let msgs = read_all(store, "gone", 0);
    let state = claim(store, "on-gone", 0, "A", T0);
    let mut c = commit("on-gone", 0, "A", state.epoch, T0 + 1, 2);
    c.pending = vec![pending(&msgs[1], 1, T0 + 100, Some("boom"))];
    c.dead = vec![dead("on-gone", &msgs[0], T0 + 1)];
    ok!(store.commit_delivery(&c));
    let kept_msg = read_all(store, "kept", 0);
    let state = claim(store, "on-kept", 0, "A", T0);
    let mut c = commit("on-kept", 0, "A", state.epoch, T0 + 1, 1);
    c.dead = vec![dead("on-kept", &kept_msg[0], T0 + 1)];
    ok!(store.commit_delivery(&c));

    assert!(ok!(store.delete_topic("gone")));
    assert_eq!(ok!(store.get_topic("gone")), None);
    assert_eq!(ok!(store.get_subscription("on-gone", T0 + 2)), None);
    assert_eq!(ok!(store.list_dead("on-gone", 10)), vec![]);
    assert_eq!(ok!(store.claim_partition("on-gone", 0, "A", T0 + 2, LEASE)), None);
    assert_eq!(ok!(store.read_messages("gone", 0, 0, 10, usize::MAX)), vec![]);
    let subs: Vec<String> = ok!(store.list_subscriptions(T0 + 2)).into_iter().map(|s| s.subscription.name).collect();
    assert_eq!(subs, ["on-kept"]);
    assert!(!ok!(store.delete_topic("gone")), "second delete");
    // The other topic and its subscription are untouched.
    assert_eq!(read_all(store, "kept", 0), kept_msg);
    assert_eq!(sub_info(store, "on-kept", T0 + 2).dead, 1);
    assert_eq!(ok!(store.list_dead("on-kept", 10)).len(), 1);

    ok!(store.create_topic(&topic("gone", 2)));
    assert_eq!(topic_info(store, "gone").partitions, vec![PartitionLog { first: 0, next: 0 }; 2]);
    let again = ok!(store.publish(&[keyed("gone", 0, "idem", "5")], T0 + 3));
    assert_eq!(again, [Published::New { partition: 0, offset: 0 }]);
    subscribe(store, "on-gone", "gone", Position::Beginning);
    let info = sub_info(store, "on-gone", T0 + 3);
    assert_eq!((pending_counts(&info), info.dead), (vec![0, 0], 0));
    assert_eq!(ok!(store.list_dead("on-gone", 10)), vec![]);
    assert_eq!(claim(store, "on-gone", 0, "A", T0 + 3).pending, vec![]);
}

// ---------------------------------------------------------------------------
// Publishing

/// Each partition numbers its messages 0, 1, 2, … in the order of the
/// calls and, within a call, of the messages; answers come in the order of
/// the messages; every message is stored as given, published at `now_ms`;
/// the topic counts its messages and their sizes.
pub fn events_publish_offsets_per_partition_in_call_order(store: &dyn Events) {
    ok!(store.create_topic(&topic("p", 3)));
    assert_eq!(ok!(store.publish(&[], T0)), []);
    let first = [
        message("p", 0, Some("k-a"), "{\"n\":0}"),
        message("p", 2, None, "[1,2,3]"),
        message("p", 0, Some("k-a"), "{\"n\":1}"),
        message("p", 1, Some("ünïcødé ✓"), "\"日本語\""),
        message("p", 0, None, "null"),
        message("p", 2, Some(""), "{}"),
    ];
    let answers = ok!(store.publish(&first, T0));
    let new = |partition, offset| Published::New { partition, offset };
    assert_eq!(answers, [new(0, 0), new(2, 0), new(0, 1), new(1, 0), new(0, 2), new(2, 1)]);
    let second = [message("p", 1, None, "true"), message("p", 0, Some("k-b"), "12.5")];
    assert_eq!(ok!(store.publish(&second, T0 + 7)), [new(1, 1), new(0, 3)]);
    assert_eq!(extents(store, "p"), [(0, 4), (0, 2), (0, 2)]);

    let expect = |m: &NewMessage, offset: i64, published: i64| Message {
        partition: m.partition,
        offset,
        key: m.key.clone(),
        payload: m.payload.clone(),
        published,
    };
    let p0 = vec![
        expect(&first[0], 0, T0),
        expect(&first[2], 1, T0),
        expect(&first[4], 2, T0),
        expect(&second[1], 3, T0 + 7),
    ];
    assert_eq!(read_all(store, "p", 0), p0);
    assert_eq!(read_all(store, "p", 1), [expect(&first[3], 0, T0), expect(&second[0], 1, T0 + 7)]);
    assert_eq!(read_all(store, "p", 2), [expect(&first[1], 0, T0), expect(&first[5], 1, T0)]);
    let info = topic_info(store, "p");
    let all: Vec<Message> = (0..3).flat_map(|p| read_all(store, "p", p)).collect();
    assert_eq!(info.messages, 8);
    assert_eq!(info.bytes, all.iter().map(Message::size).sum::<u64>());
    assert_eq!(
        info.bytes,
        first.iter().chain(&second).map(|m| m.payload.len() + m.key.as_ref().map_or(0, String::len)).sum::<usize>()
            as u64
    );
}

/// A message whose idempotency key a retained message of its topic holds,
/// in any partition, or an earlier message of the same call, is not
/// appended and is answered `Existing` with where the holder is; it takes
/// no offset. Keys are per topic, and do not count in a message's size.
pub fn events_publish_idempotency_keys(store: &dyn Events) {
    ok!(store.create_topic(&topic("i", 2)));
    ok!(store.create_topic(&topic("other", 1)));
    let new = |partition, offset| Published::New { partition, offset };
    let existing = |partition, offset| Published::Existing { partition, offset };
    let answers = ok!(store.publish(&[keyed("i", 0, "k1", "1"), message("i", 1, None, "2")], T0));
    assert_eq!(answers, [new(0, 0), new(1, 0)]);
    let answers = ok!(store.publish(
        &[
            keyed("i", 1, "k1", "\"not appended\""),
            keyed("i", 1, "k2", "3"),
            keyed("i", 0, "k2", "\"not appended either\""),
            keyed("i", 1, "k3", "4"),
            keyed("other", 0, "k1", "5"),
        ],
        T0 + 1,
    ));
    assert_eq!(answers, [existing(0, 0), new(1, 1), existing(1, 1), new(1, 2), new(0, 0)]);
    assert_eq!(
        ok!(store.publish(&[keyed("i", 0, "k3", "6"), keyed("i", 0, "k4", "7")], T0 + 2)),
        [existing(1, 2), new(0, 1)]
    );
    assert_eq!(
        (payloads(&read_all(store, "i", 0)), payloads(&read_all(store, "i", 1))),
        (vec!["1", "7"], vec!["2", "3", "4"])
    );
    assert_eq!(extents(store, "i"), [(0, 2), (0, 3)], "no offset taken by a message not appended");
    let info = topic_info(store, "i");
    assert_eq!((info.messages, info.bytes), (5, 5), "the keys are not counted");
}

/// An idempotency key is held while its message is retained: once
/// retention deletes it, a message with the key is appended again.
pub fn events_publish_idempotency_key_freed_when_its_message_is_purged(store: &dyn Events) {
    ok!(store.create_topic(&topic("f", 1)));
    let new = |offset| Published::New { partition: 0, offset };
    let existing = |offset| Published::Existing { partition: 0, offset };
    assert_eq!(ok!(store.publish(&[keyed("f", 0, "k", "1")], T0)), [new(0)]);
    assert_eq!(ok!(store.publish(&[keyed("f", 0, "k", "2")], T0 + 5)), [existing(0)]);
    assert_eq!(ok!(store.purge_messages("f", Some(T0 + 1), None)), 1);
    assert_eq!(ok!(store.publish(&[keyed("f", 0, "k", "3")], T0 + 10)), [new(1)]);
    assert_eq!(ok!(store.publish(&[keyed("f", 0, "k", "4")], T0 + 11)), [existing(1)]);
    ok!(store.create_topic(&topic("g", 1)));
    assert_eq!(ok!(store.publish(&[keyed("g", 0, "k", "5"), message("g", 0, None, "6")], T0)), [new(0), new(1)]);
    assert_eq!(ok!(store.purge_messages("g", None, Some(1))), 1, "the oldest, for the size");
    assert_eq!(ok!(store.publish(&[keyed("g", 0, "k", "7")], T0 + 1)), [new(2)]);
}

/// A message for a missing topic, or a partition the topic does not have,
/// is answered `NoTopic` and takes no offset; the others of its call are
/// appended.
pub fn events_publish_no_topic(store: &dyn Events) {
    ok!(store.create_topic(&topic("n", 2)));
    let answers = ok!(store.publish(
        &[
            message("missing", 0, None, "1"),
            message("n", 2, None, "2"),
            message("n", 1, None, "3"),
            keyed("missing", 0, "k", "4"),
            message("n", u32::MAX, None, "5"),
            keyed("n", 7, "k", "6"),
            keyed("n", 0, "k", "7"),
        ],
        T0,
    ));
    let no = Published::NoTopic;
    assert_eq!(
        answers,
        [no, no, Published::New { partition: 1, offset: 0 }, no, no, no, Published::New { partition: 0, offset: 0 }]
    );
    assert_eq!(extents(store, "n"), [(0, 1), (0, 1)]);
    assert_eq!(topic_info(store, "n").messages, 2);
    assert_eq!(ok!(store.get_topic("missing")), None, "publishing makes no topic");
}

// ---------------------------------------------------------------------------
// Reading and retention

/// `read_messages` reads up to `limit` messages from `from` on, in offset
/// order, and stops after the message that brings the sizes read to
/// `max_bytes`, so that it reads one at least.
pub fn events_read_messages_from_limit_and_max_bytes(store: &dyn Events) {
    let log = filled_topic(store, "rd", 2, 10);
    assert!(log[0].iter().all(|m| m.size() == 10));
    let read = |from, limit, max_bytes| offsets(&ok!(store.read_messages("rd", 0, from, limit, max_bytes)));
    assert_eq!(read(0, 100, usize::MAX), (0..10).collect::<Vec<_>>());
    assert_eq!(ok!(store.read_messages("rd", 0, 0, 100, usize::MAX)), log[0]);
    assert_eq!(read(3, 4, usize::MAX), [3, 4, 5, 6]);
    assert_eq!(read(3, 100, 25), [3, 4, 5], "the third brings the sizes past 25");
    assert_eq!(read(3, 100, 20), [3, 4], "the second brings them to 20");
    assert_eq!(read(3, 100, 21), [3, 4, 5]);
    assert_eq!(read(3, 2, 25), [3, 4], "the limit first");
    assert_eq!(read(3, 100, 1), [3], "one at least");
    assert_eq!(read(3, 100, 0), [3], "one at least");
    assert_eq!(read(3, 0, usize::MAX), Vec::<i64>::new());
    assert_eq!(read(9, 100, usize::MAX), [9]);
    assert_eq!(read(10, 100, usize::MAX), Vec::<i64>::new(), "from the next offset");
    assert_eq!(read(1_000, 100, usize::MAX), Vec::<i64>::new());
    assert_eq!(read(-5, 3, usize::MAX), [0, 1, 2]);
    assert_eq!(ok!(store.read_messages("rd", 1, 8, 100, usize::MAX)), log[1][8..]);
}

/// Offsets below a partition's first retained one are skipped; `first`
/// follows retention, and is `next` once the partition is empty.
pub fn events_read_messages_skips_purged_offsets(store: &dyn Events) {
    let log = filled_topic(store, "sk", 2, 6);
    // Offsets 0 to 3 of both partitions were published before T0 + 40.
    assert_eq!(ok!(store.purge_messages("sk", Some(T0 + 40), None)), 8);
    assert_eq!(read_all(store, "sk", 0), log[0][4..]);
    assert_eq!(offsets(&ok!(store.read_messages("sk", 0, 2, 1, usize::MAX))), [4]);
    assert_eq!(offsets(&ok!(store.read_messages("sk", 1, -1, 10, 1))), [4]);
    assert_eq!(extents(store, "sk"), [(4, 6), (4, 6)]);
    assert_eq!(ok!(store.purge_messages("sk", Some(T0 + 1_000), None)), 4);
    assert_eq!(read_all(store, "sk", 0), vec![]);
    assert_eq!(extents(store, "sk"), [(6, 6), (6, 6)]);
    assert_eq!(append(store, "sk", 1, "1", T0 + 2_000), 6, "offsets are never reused");
    assert_eq!(extents(store, "sk"), [(6, 6), (6, 7)]);
    assert_eq!(offsets(&ok!(store.read_messages("sk", 1, 0, 10, usize::MAX))), [6]);
}

/// Reading a topic or a partition that does not exist reads nothing.
pub fn events_read_messages_of_a_missing_topic_or_partition_is_empty(store: &dyn Events) {
    assert_eq!(ok!(store.read_messages("missing", 0, 0, 10, usize::MAX)), vec![]);
    filled_topic(store, "there", 2, 3);
    assert_eq!(ok!(store.read_messages("there", 2, 0, 10, usize::MAX)), vec![]);
    assert_eq!(ok!(store.read_messages("There", 0, 0, 10, usize::MAX)), vec![]);
}

/// `purge_messages` with `before_ms` deletes the messages published before
/// it (not at it), in every partition, keeping the topic's counts; a
/// missing topic has nothing to delete.
pub fn events_purge_messages_by_age(store: &dyn Events) {
    ok!(store.create_topic(&topic("age", 2)));
    for (partition, at) in [(0, 0), (1, 5), (0, 10), (1, 15), (0, 20)] {
        append(store, "age", partition, &payload_of(10 + at as usize), T0 + at);
    }
    assert_eq!(ok!(store.purge_messages("age", Some(T0 + 10), None)), 2);
    assert_eq!(extents(store, "age"), [(1, 3), (1, 2)]);
    let left: Vec<Message> = (0..2).flat_map(|p| read_all(store, "age", p)).collect();
    assert_eq!(left.iter().map(|m| m.published - T0).collect::<Vec<_>>(), [10, 20, 15]);
    let info = topic_info(store, "age");
    assert_eq!((info.messages, info.bytes), (3, left.iter().map(Message::size).sum::<u64>()));
    assert_eq!(ok!(store.purge_messages("age", Some(T0 + 10), None)), 0);
    assert_eq!(ok!(store.purge_messages("age", None, None)), 0, "nothing asked");
    assert_eq!(ok!(store.purge_messages("missing", Some(i64::MAX), Some(0))), 0);
    assert_eq!(ok!(store.purge_messages("age", Some(T0 + 21), None)), 3);
    assert_eq!(topic_info(store, "age").messages + topic_info(store, "age").bytes, 0);
}

/// `purge_messages` with `max_bytes` deletes the oldest messages, by
/// publish time across partitions and the lower offset first within one,
/// while the retained sizes add up to more than `max_bytes`.
pub fn events_purge_messages_by_bytes_oldest_first(store: &dyn Events) {
    ok!(store.create_topic(&topic("bytes", 2)));
    let ten = payload_of(10);
    // Partition 0 gets offsets 0 and 1 at the same millisecond.
    ok!(store.publish(&[message("bytes", 0, None, &ten), message("bytes", 0, None, &ten)], T0));
    ok!(store.publish(&[message("bytes", 1, Some("kk"), &payload_of(8))], T0 + 1));
    append(store, "bytes", 0, &ten, T0 + 2);
    append(store, "bytes", 1, &ten, T0 + 3);
    assert_eq!(topic_info(store, "bytes").bytes, 50);
    assert_eq!(ok!(store.purge_messages("bytes", None, Some(35))), 2);
    assert_eq!(extents(store, "bytes"), [(2, 3), (0, 2)]);
    assert_eq!((topic_info(store, "bytes").messages, topic_info(store, "bytes").bytes), (3, 30));
    assert_eq!(ok!(store.purge_messages("bytes", None, Some(30))), 0, "not more than 30");
    assert_eq!(ok!(store.purge_messages("bytes", None, Some(29))), 1);
    assert_eq!(extents(store, "bytes"), [(2, 3), (1, 2)], "the key counted: offset 0 of partition 1 went");
    assert_eq!(ok!(store.purge_messages("bytes", None, Some(0))), 2);
    assert_eq!(extents(store, "bytes"), [(3, 3), (2, 2)]);
    assert_eq!((topic_info(store, "bytes").messages, topic_info(store, "bytes").bytes), (0, 0));
    assert_eq!(append(store, "bytes", 0, &ten, T0 + 4), 3, "offsets are never reused");
}

/// With both bounds, `purge_messages` deletes by age first, then by size,
/// and counts both.
pub fn events_purge_messages_by_age_then_bytes(store: &dyn Events) {
    filled_topic(store, "both", 1, 5);
    assert_eq!(ok!(store.purge_messages("both", Some(T0 + 10), Some(25))), 3);
    assert_eq!(extents(store, "both"), [(3, 5)]);
    assert_eq!(ok!(store.purge_messages("both", Some(T0 + 10), Some(20))), 0);
    assert_eq!(ok!(store.purge_messages("both", Some(T0 + 35), Some(u64::MAX))), 1);
    assert_eq!(extents(store, "both"), [(4, 5)]);
    assert_eq!((topic_info(store, "both").messages, topic_info(store, "both").bytes), (1, 10));
}

// ---------------------------------------------------------------------------
// Subscriptions

/// A new subscription's cursors start at the position asked for, in each
/// partition, with no owner, epoch 0, nothing pending and no dead letter.
pub fn events_subscriptions_create_at_each_position(store: &dyn Events) {
    ok!(store.create_topic(&topic("pos", 2)));
    for (partition, at) in [(0, 0), (0, 10), (1, 15), (0, 20), (1, 25), (0, 30), (0, 40)] {
        append(store, "pos", partition, "1", T0 + at);
    }
    assert_eq!(ok!(store.purge_messages("pos", Some(T0 + 10), None)), 1);
    assert_eq!(extents(store, "pos"), [(1, 5), (0, 2)]);
    let starts = [
        ("begin", Position::Beginning, [1, 0]),
        ("end", Position::End, [5, 2]),
        ("zero", Position::Offset(0), [1, 0]),
        ("negative", Position::Offset(-7), [1, 0]),
        ("mid", Position::Offset(3), [3, 2]),
        ("one", Position::Offset(1), [1, 1]),
        ("high", Position::Offset(99), [5, 2]),
        ("time", Position::Time(T0 + 20), [2, 1]),
        ("time-between", Position::Time(T0 + 21), [3, 1]),
        ("time-early", Position::Time(0), [1, 0]),
        ("time-exact", Position::Time(T0 + 25), [3, 1]),
        ("time-late", Position::Time(T0 + 41), [5, 2]),
    ];
    for (name, start, expected) in starts {
        subscribe(store, name, "pos", start);
        let info = sub_info(store, name, T0 + 50);
        assert_eq!(info.subscription, subscription(name, "pos"), "{name}");
        let fresh = |cursor| SubscriptionPartition { cursor, pending: 0, owner: None, epoch: 0 };
        assert_eq!(info.partitions, expected.map(fresh), "{name}: {start:?}");
        assert_eq!(info.dead, 0);
    }
    ok!(store.create_topic(&topic("empty", 1)));
    for (i, start) in
        [Position::Beginning, Position::End, Position::Offset(5), Position::Time(T0)].into_iter().enumerate()
    {
        let name = format!("empty-{i}");
        subscribe(store, &name, "empty", start);
        assert_eq!(cursors(&sub_info(store, &name, T0)), [0], "{start:?}");
    }
}

/// `create_subscription` fails with `NotFound` (the topic's name) for a
/// missing topic and `AlreadyExists` for a name taken (whatever its
/// topic); `list_subscriptions` sorts by name; `delete_subscription` is
/// `true` once.
pub fn events_subscriptions_create_errors_list_and_delete(store: &dyn Events) {
    match store.create_subscription(&subscription("s", "missing"), Position::Beginning) {
        Err(StoreError::NotFound(name)) => assert_eq!(name, "missing"),
        other => panic!("subscription of a missing topic: expected NotFound, got {other:?}"),
    }
    assert_eq!(ok!(store.get_subscription("s", T0)), None);
    ok!(store.create_topic(&topic("t1", 1)));
    ok!(store.create_topic(&topic("t2", 2)));
    subscribe(store, "b", "t1", Position::End);
    subscribe(store, "a", "t2", Position::End);
    subscribe(store, "C", "t1", Position::End);
    match store.create_subscription(&Subscription { batch_size: 1, ..subscription("a", "t1") }, Position::Beginning) {
        Err(StoreError::AlreadyExists(name)) => assert_eq!(name, "a"),
        other => panic!("second create_subscription: expected AlreadyExists, got {other:?}"),
    }
    let listed = ok!(store.list_subscriptions(T0));
    let names: Vec<&str> = listed.iter().map(|s| s.subscription.name.as_str()).collect();
    assert_eq!(names, ["C", "a", "b"]);
    assert_eq!(listed[1], sub_info(store, "a", T0));
    assert_eq!(listed[1].subscription, subscription("a", "t2"), "the first one kept");
    assert_eq!(listed[1].partitions.len(), 2);
    assert!(ok!(store.delete_subscription("a")));
    assert_eq!(ok!(store.get_subscription("a", T0)), None);
    assert!(!ok!(store.delete_subscription("a")), "second delete");
    assert!(!ok!(store.delete_subscription("never")));
    assert_eq!(ok!(store.list_subscriptions(T0)).len(), 2);
    assert!(ok!(store.get_topic("t2")).is_some(), "its topic stays");
}

/// `delete_subscription` deletes its pending lists and dead letters: a
/// subscription made again under the name starts afresh.
pub fn events_subscriptions_delete_removes_pending_and_dead(store: &dyn Events) {
    let log = filled_topic(store, "t", 1, 3);
    subscribe(store, "s", "t", Position::Beginning);
    let state = claim(store, "s", 0, "A", T0);
    let mut c = commit("s", 0, "A", state.epoch, T0 + 1, 3);
    c.pending = vec![pending(&log[0][1], 1, T0 + 100, Some("boom"))];
    c.dead = vec![dead("s", &log[0][0], T0 + 1)];
    ok!(store.commit_delivery(&c));
    assert!(ok!(store.delete_subscription("s")));
    assert_eq!(ok!(store.list_dead("s", 10)), vec![]);
    assert_eq!(ok!(store.claim_partition("s", 0, "A", T0 + 2, LEASE)), None);
    lease_lost(store.commit_delivery(&commit("s", 0, "A", state.epoch, T0 + 2, 3)), "s", 0, "commit after delete");
    subscribe(store, "s", "t", Position::Beginning);
    let info = sub_info(store, "s", T0 + 2);
    let fresh = SubscriptionPartition { cursor: 0, pending: 0, owner: None, epoch: 0 };
    assert_eq!((info.partitions, info.dead), (vec![fresh], 0));
    assert_eq!(ok!(store.list_dead("s", 10)), vec![]);
    assert_eq!(claim(store, "s", 0, "A", T0 + 2).pending, vec![]);
    assert_eq!(read_all(store, "t", 0), log[0], "the messages stay");
}

// ---------------------------------------------------------------------------
// Leases

/// A partition's lease goes to one owner, who keeps it until `now_ms +
/// lease_ms` (a claim at that very time is still refused); then another
/// takes it over, at a higher epoch. Claims of a missing subscription or
/// partition get nothing.
pub fn events_claim_is_exclusive_until_the_lease_ends(store: &dyn Events) {
    ok!(store.create_topic(&topic("c", 2)));
    subscribe(store, "s", "c", Position::Beginning);
    let a = claim(store, "s", 0, "A", T0);
    assert!(a.epoch > 0, "a change of owner (from none) increases the epoch: {a:?}");
    assert_eq!((a.cursor, a.pending.as_slice()), (0, &[][..]));
    refused(store, "s", 0, "B", T0 + 1);
    refused(store, "s", 0, "B", T0 + LEASE);
    let shown = sub_info(store, "s", T0 + LEASE);
    assert_eq!((owners(&shown), shown.partitions[0].epoch), (vec![Some("A"), None], a.epoch));
    let shown = sub_info(store, "s", T0 + LEASE + 1);
    assert_eq!((owners(&shown), shown.partitions[0].epoch), (vec![None, None], a.epoch), "the lease ended");
    let other = claim(store, "s", 1, "B", T0);
    assert!(other.epoch > 0);
    let b = claim(store, "s", 0, "B", T0 + LEASE + 1);
    assert!(b.epoch > a.epoch, "{b:?} after {a:?}");
    refused(store, "s", 0, "A", T0 + LEASE + 2);
    assert_eq!(owners(&sub_info(store, "s", T0 + LEASE + 2)), [Some("B"), None], "partition 1's lease ended");
    assert_eq!(ok!(store.claim_partition("missing", 0, "A", T0, LEASE)), None);
    assert_eq!(ok!(store.claim_partition("s", 2, "A", T0, LEASE)), None);
    assert_eq!(ok!(store.claim_partition("s", u32::MAX, "A", T0, LEASE)), None);
}

/// The holder claiming again keeps its epoch and extends its lease, also
/// after the lease ended if nobody else took the partition.
pub fn events_claim_by_the_holder_keeps_the_epoch(store: &dyn Events) {
    ok!(store.create_topic(&topic("h", 1)));
    subscribe(store, "s", "h", Position::End);
    let a = claim(store, "s", 0, "A", T0);
    let again = claim(store, "s", 0, "A", T0 + 100);
    assert_eq!(again, a);
    refused(store, "s", 0, "B", T0 + LEASE + 1);
    let late = claim(store, "s", 0, "A", T0 + 3 * LEASE);
    assert_eq!(late.epoch, a.epoch, "nobody took it meanwhile");
    ok!(store.renew_partition("s", 0, "A", a.epoch, T0 + 3 * LEASE + 1, LEASE));
    assert_eq!(epochs(&sub_info(store, "s", T0 + 3 * LEASE + 2)), [a.epoch]);
}

/// `renew_partition` extends the holder's lease, also one that ended while
/// nobody took the partition; anyone else, or the holder at another epoch,
/// gets `LeaseLost`, as does a missing subscription or partition.
pub fn events_renew_extends_the_lease_of_the_holder_only(store: &dyn Events) {
    ok!(store.create_topic(&topic("rn", 1)));
    subscribe(store, "s", "rn", Position::End);
    let a = claim(store, "s", 0, "A", T0);
    ok!(store.renew_partition("s", 0, "A", a.epoch, T0 + LEASE - 1, LEASE));
    refused(store, "s", 0, "B", T0 + LEASE + 1);
    assert_eq!(owners(&sub_info(store, "s", T0 + 2 * LEASE - 1)), [Some("A")]);
    lease_lost(store.renew_partition("s", 0, "B", a.epoch, T0 + 1, LEASE), "s", 0, "renewal by another owner");
    lease_lost(store.renew_partition("s", 0, "A", a.epoch + 1, T0 + 1, LEASE), "s", 0, "renewal at another epoch");
    let b = claim(store, "s", 0, "B", T0 + 2 * LEASE);
    lease_lost(store.renew_partition("s", 0, "A", a.epoch, T0 + 2 * LEASE, LEASE), "s", 0, "renewal after a takeover");
    lease_lost(store.renew_partition("s", 0, "B", a.epoch, T0 + 2 * LEASE, LEASE), "s", 0, "renewal at the old epoch");
    ok!(store.renew_partition("s", 0, "B", b.epoch, T0 + 10 * LEASE, LEASE));
    refused(store, "s", 0, "A", T0 + 11 * LEASE);
    lease_lost(
        store.renew_partition("missing", 0, "A", 1, T0, LEASE),
        "missing",
        0,
        "renewal of a missing subscription",
    );
    lease_lost(store.renew_partition("s", 3, "B", b.epoch, T0, LEASE), "s", 3, "renewal of a missing partition");
}

/// `release_partition` by the holder at its epoch leaves the partition
/// without owner at the same epoch, for anyone to claim at once; by anyone
/// else it does nothing.
pub fn events_release_frees_the_partition_at_the_same_epoch(store: &dyn Events) {
    ok!(store.create_topic(&topic("rl", 1)));
    subscribe(store, "s", "rl", Position::End);
    let a = claim(store, "s", 0, "A", T0);
    ok!(store.release_partition("s", 0, "B", a.epoch));
    ok!(store.release_partition("s", 0, "A", a.epoch + 1));
    assert_eq!(owners(&sub_info(store, "s", T0 + 1)), [Some("A")], "not released by others");
    ok!(store.release_partition("s", 0, "A", a.epoch));
    let info = sub_info(store, "s", T0 + 1);
    assert_eq!((owners(&info), epochs(&info)), (vec![None], vec![a.epoch]));
    lease_lost(store.renew_partition("s", 0, "A", a.epoch, T0 + 1, LEASE), "s", 0, "renewal after release");
    lease_lost(store.commit_delivery(&commit("s", 0, "A", a.epoch, T0 + 1, 0)), "s", 0, "commit after release");
    let b = claim(store, "s", 0, "B", T0 + 2);
    assert!(b.epoch > a.epoch, "{b:?} after {a:?}");
    ok!(store.release_partition("missing", 0, "A", 1));
    ok!(store.release_partition("s", 9, "B", b.epoch));
    assert_eq!(owners(&sub_info(store, "s", T0 + 3)), [Some("B")]);
}

// ---------------------------------------------------------------------------
// Delivery

/// `commit_delivery` moves the cursor, removes the pending entries done,
/// adds or replaces (by offset) the pending entries given, and renews the
/// lease; a claim hands back the cursor and the pending list in offset
/// order.
pub fn events_commit_moves_the_cursor_and_the_pending_list(store: &dyn Events) {
    let log = filled_topic(store, "d", 1, 8);
    let m = &log[0];
    subscribe(store, "s", "d", Position::Beginning);
    let a = claim(store, "s", 0, "A", T0 + 10);
    let p1 = pending(&m[1], 1, T0 + 1_000, Some("boom"));
    let p3 = pending(&m[3], 0, 0, None);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 20, 4);
    c.pending = vec![p3.clone(), p1.clone()];
    ok!(store.commit_delivery(&c));
    let info = sub_info(store, "s", T0 + 20);
    assert_eq!(
        info.partitions,
        [SubscriptionPartition { cursor: 4, pending: 2, owner: Some("A".into()), epoch: a.epoch }]
    );
    refused(store, "s", 0, "B", T0 + 10 + LEASE + 1);
    refused(store, "s", 0, "B", T0 + 20 + LEASE);
    let state = claim(store, "s", 0, "A", T0 + 30);
    assert_eq!(state, PartitionState { epoch: a.epoch, cursor: 4, pending: vec![p1.clone(), p3.clone()] });

    let p3_retried = pending(&m[3], 1, T0 + 2_000, Some("again ✗"));
    let p5 = pending(&m[5], 0, 0, None);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 40, 6);
    c.done = vec![1, 2];
    c.pending = vec![p5.clone(), p3_retried.clone()];
    ok!(store.commit_delivery(&c));
    let state = claim(store, "s", 0, "A", T0 + 50);
    assert_eq!(state, PartitionState { epoch: a.epoch, cursor: 6, pending: vec![p3_retried, p5] });
    assert_eq!(pending_counts(&sub_info(store, "s", T0 + 50)), [2]);

    ok!(store.commit_delivery(&commit("s", 0, "A", a.epoch, T0 + 60, 6)));
    let mut c = commit("s", 0, "A", a.epoch, T0 + 70, 8);
    c.done = vec![3, 5];
    ok!(store.commit_delivery(&c));
    let state = claim(store, "s", 0, "A", T0 + 80);
    assert_eq!(state, PartitionState { epoch: a.epoch, cursor: 8, pending: vec![] });
    assert_eq!(sub_info(store, "s", T0 + 80).partitions[0].pending, 0);
}

/// Dead letters of a commit are stored (listed, counted) and their
/// pending entries removed; a message can die straight off the log too.
pub fn events_commit_dead_letters_remove_their_pending_entries(store: &dyn Events) {
    let log = filled_topic(store, "dl", 1, 5);
    let m = &log[0];
    subscribe(store, "s", "dl", Position::Beginning);
    let a = claim(store, "s", 0, "A", T0);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 3);
    c.pending = (0..3).map(|i| pending(&m[i], 1, T0 + 10, Some("boom"))).collect();
    ok!(store.commit_delivery(&c));
    let d0 = dead("s", &m[0], T0 + 50);
    let d2 = DeadLetter { logs: vec![], invocation: None, ..dead("s", &m[2], T0 + 60) };
    let d3 = dead("s", &m[3], T0 + 60);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 60, 4);
    c.dead = vec![d2.clone(), d0.clone(), d3.clone()];
    ok!(store.commit_delivery(&c));
    let state = claim(store, "s", 0, "A", T0 + 70);
    assert_eq!(state.pending, [pending(&m[1], 1, T0 + 10, Some("boom"))]);
    assert_eq!(state.cursor, 4);
    let info = sub_info(store, "s", T0 + 70);
    assert_eq!((info.partitions[0].pending, info.dead), (1, 3));
    let listed = ok!(store.list_dead("s", 10));
    assert_eq!(listed[0], d0);
    let mut rest = listed[1..].to_vec();
    rest.sort_by_key(|d| d.message.offset);
    assert_eq!(rest, [d2, d3]);
}

/// A commit by anyone but the holder at its epoch fails with `LeaseLost`
/// and writes nothing: not the cursor, the pending list, the dead letters,
/// nor the lease.
pub fn events_commit_with_a_lost_lease_writes_nothing(store: &dyn Events) {
    let log = filled_topic(store, "ll", 1, 4);
    let m = &log[0];
    subscribe(store, "s", "ll", Position::Beginning);
    let a = claim(store, "s", 0, "A", T0);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 1);
    c.pending = vec![pending(&m[0], 1, T0 + 5, Some("boom"))];
    ok!(store.commit_delivery(&c));
    let b = claim(store, "s", 0, "B", T0 + 1 + LEASE + 1);
    let before = sub_info(store, "s", T0 + LEASE + 3);
    let mut stale = commit("s", 0, "A", a.epoch, T0 + LEASE + 3, 3);
    stale.done = vec![0];
    stale.pending = vec![pending(&m[1], 1, T0 + 5, Some("x"))];
    stale.dead = vec![dead("s", &m[2], T0 + LEASE + 3)];
    lease_lost(store.commit_delivery(&stale), "s", 0, "commit by the old owner");
    let wrong_epoch = DeliveryCommit { owner: "B".into(), ..stale.clone() };
    lease_lost(store.commit_delivery(&wrong_epoch), "s", 0, "commit by the holder at the old epoch");
    let wrong_owner = DeliveryCommit { epoch: b.epoch, ..stale.clone() };
    lease_lost(store.commit_delivery(&wrong_owner), "s", 0, "commit by another owner at the holder's epoch");
    let wrong_partition = DeliveryCommit { partition: 1, owner: "B".into(), epoch: b.epoch, ..stale.clone() };
    lease_lost(store.commit_delivery(&wrong_partition), "s", 1, "commit to a missing partition");
    let wrong_sub = DeliveryCommit { subscription: "t".into(), owner: "B".into(), epoch: b.epoch, ..stale };
    lease_lost(store.commit_delivery(&wrong_sub), "t", 0, "commit to a missing subscription");
    assert_eq!(sub_info(store, "s", T0 + LEASE + 3), before);
    assert_eq!(before.partitions[0].cursor, 1);
    assert_eq!(ok!(store.list_dead("s", 10)), vec![]);
    refused(store, "s", 0, "A", T0 + 2 * LEASE + 2);
    let state = claim(store, "s", 0, "B", T0 + LEASE + 4);
    assert_eq!(
        state,
        PartitionState { epoch: b.epoch, cursor: 1, pending: vec![pending(&m[0], 1, T0 + 5, Some("boom"))] }
    );
}

/// A pending entry keeps a copy of its message: retention deleting the
/// message from the log does not lose it.
pub fn events_pending_entries_outlive_retention(store: &dyn Events) {
    ok!(store.create_topic(&topic("keep", 1)));
    ok!(store.publish(&[message("keep", 0, Some("order-7"), "{\"total\":12}"), message("keep", 0, None, "1")], T0));
    let m = read_all(store, "keep", 0);
    subscribe(store, "s", "keep", Position::Beginning);
    let a = claim(store, "s", 0, "A", T0);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 2);
    c.pending = vec![pending(&m[0], 2, T0 + 500, Some("timeout")), pending(&m[1], 0, 0, None)];
    ok!(store.commit_delivery(&c));
    assert_eq!(ok!(store.purge_messages("keep", None, Some(0))), 2);
    assert_eq!(read_all(store, "keep", 0), vec![]);
    let state = claim(store, "s", 0, "A", T0 + 2);
    assert_eq!(state.pending, c.pending);
    assert_eq!(sub_info(store, "s", T0 + 2).partitions[0].pending, 2);
}

/// `get_subscription` and `list_subscriptions` show each partition's
/// cursor, pending count and epoch, its owner only while the lease lives
/// at the time given, and the dead letters held.
pub fn events_get_subscription_shows_live_owners_and_counts(store: &dyn Events) {
    let log = filled_topic(store, "g", 3, 3);
    subscribe(store, "s", "g", Position::Beginning);
    subscribe(store, "t", "g", Position::End);
    let a = claim(store, "s", 0, "A", T0);
    let b = ok!(store.claim_partition("s", 2, "B", T0, 3 * LEASE)).unwrap_or_else(|| panic!("B claims s/2"));
    let mut c = commit("s", 0, "A", a.epoch, T0 + 5, 3);
    c.pending = vec![pending(&log[0][0], 1, T0 + 9, None), pending(&log[0][2], 0, 0, None)];
    c.dead = vec![dead("s", &log[0][1], T0 + 5)];
    ok!(store.commit_delivery(&c));
    let mut c = commit("s", 2, "B", b.epoch, T0 + 6, 1);
    c.dead = vec![dead("s", &log[2][0], T0 + 6)];
    c.lease_ms = 3 * LEASE;
    ok!(store.commit_delivery(&c));
    let part = |cursor, pending, owner: Option<&str>, epoch| SubscriptionPartition {
        cursor,
        pending,
        owner: owner.map(str::to_owned),
        epoch,
    };
    let s_at = |now| sub_info(store, "s", now);
    assert_eq!(
        s_at(T0 + 6).partitions,
        [part(3, 2, Some("A"), a.epoch), part(0, 0, None, 0), part(1, 0, Some("B"), b.epoch)]
    );
    assert_eq!(s_at(T0 + 6).dead, 2);
    assert_eq!(owners(&s_at(T0 + 5 + LEASE)), [Some("A"), None, Some("B")]);
    assert_eq!(owners(&s_at(T0 + 6 + LEASE)), [None, None, Some("B")]);
    assert_eq!(s_at(T0 + 6 + LEASE).partitions[0], part(3, 2, None, a.epoch), "the rest is shown still");
    assert_eq!(owners(&s_at(T0 + 7 + 3 * LEASE)), [None, None, None]);
    let t = sub_info(store, "t", T0 + 6);
    assert_eq!((t.partitions, t.dead), (vec![part(3, 0, None, 0); 3], 0));
    assert_eq!(ok!(store.list_subscriptions(T0 + 6)), [s_at(T0 + 6), sub_info(store, "t", T0 + 6)]);
    assert_eq!(ok!(store.list_subscriptions(T0 + 6 + LEASE)), [s_at(T0 + 6 + LEASE), sub_info(store, "t", T0)]);
    assert_eq!(ok!(store.get_subscription("missing", T0)), None);
}

/// `reset_subscription` moves every cursor to the position asked for,
/// empties the pending lists, releases the leases and increases each
/// epoch, so the old owners' commits and renewals fail; the dead letters
/// stay. It answers the new cursors, or `None` for a missing subscription.
pub fn events_reset_to_each_position(store: &dyn Events) {
    ok!(store.create_topic(&topic("x", 2)));
    for (partition, at) in [(0, 0), (1, 5), (0, 10), (1, 15), (0, 20), (0, 30)] {
        append(store, "x", partition, "1", T0 + at);
    }
    let m0 = read_all(store, "x", 0);
    subscribe(store, "s", "x", Position::Beginning);
    let a = claim(store, "s", 0, "A", T0);
    let b = claim(store, "s", 1, "B", T0);
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 3);
    c.pending = vec![pending(&m0[0], 1, T0 + 9, Some("boom"))];
    c.dead = vec![dead("s", &m0[1], T0 + 1)];
    ok!(store.commit_delivery(&c));

    let mut last = epochs(&sub_info(store, "s", T0 + 2));
    let resets = [
        (Position::End, [4, 2]),
        (Position::Beginning, [0, 0]),
        (Position::Offset(2), [2, 2]),
        (Position::Offset(1), [1, 1]),
        (Position::Offset(-1), [0, 0]),
        (Position::Offset(50), [4, 2]),
        (Position::Time(T0 + 12), [2, 1]),
        (Position::Time(T0 + 15), [2, 1]),
        (Position::Time(T0 + 100), [4, 2]),
        (Position::Time(0), [0, 0]),
    ];
    for (to, expected) in resets {
        assert_eq!(ok!(store.reset_subscription("s", to)), Some(expected.to_vec()), "{to:?}");
        let info = sub_info(store, "s", T0 + 2);
        assert_eq!(cursors(&info), expected, "{to:?}");
        assert_eq!((pending_counts(&info), owners(&info), info.dead), (vec![0, 0], vec![None, None], 1), "{to:?}");
        let now = epochs(&info);
        assert!(now[0] > last[0] && now[1] > last[1], "{to:?}: epochs {now:?} after {last:?}");
        last = now;
    }
    lease_lost(store.commit_delivery(&commit("s", 0, "A", a.epoch, T0 + 3, 4)), "s", 0, "commit after a reset");
    lease_lost(store.renew_partition("s", 1, "B", b.epoch, T0 + 3, LEASE), "s", 1, "renewal after a reset");
    assert_eq!(cursors(&sub_info(store, "s", T0 + 3)), [0, 0], "the failed commit wrote nothing");
    let again = claim(store, "s", 0, "A", T0 + 3);
    assert_eq!((again.cursor, again.pending), (0, vec![]));
    assert!(again.epoch > last[0]);
    assert_eq!(ok!(store.list_dead("s", 10)).len(), 1);
    // Retention moves where the beginning is.
    assert_eq!(ok!(store.purge_messages("x", Some(T0 + 10), None)), 2);
    assert_eq!(ok!(store.reset_subscription("s", Position::Beginning)), Some(vec![1, 1]));
    assert_eq!(ok!(store.reset_subscription("s", Position::Offset(0))), Some(vec![1, 1]));
    assert_eq!(ok!(store.reset_subscription("missing", Position::End)), None);
}

// ---------------------------------------------------------------------------
// Dead letters

/// Commits `letters` as dead letters of partition `partition` of `sub`,
/// claiming it for `owner` first; the epoch claimed.
fn kill(store: &dyn Events, sub: &str, partition: u32, owner: &str, letters: Vec<DeadLetter>) -> i64 {
    let state = claim(store, sub, partition, owner, T0);
    let cursor = letters.iter().map(|d| d.message.offset + 1).max().unwrap_or(state.cursor);
    let mut c = commit(sub, partition, owner, state.epoch, T0 + 1, cursor.max(state.cursor));
    c.dead = letters;
    ok!(store.commit_delivery(&c));
    state.epoch
}

/// `list_dead` lists a subscription's dead letters oldest death first, at
/// most `limit`, each as it was committed.
pub fn events_list_dead_oldest_first_with_limit(store: &dyn Events) {
    let log = filled_topic(store, "l", 2, 3);
    subscribe(store, "s", "l", Position::Beginning);
    subscribe(store, "other", "l", Position::Beginning);
    let d = [dead("s", &log[0][0], T0 + 30), dead("s", &log[0][1], T0 + 10), dead("s", &log[1][0], T0 + 20)];
    kill(store, "s", 0, "A", vec![d[0].clone(), d[1].clone()]);
    kill(store, "s", 1, "A", vec![d[2].clone()]);
    kill(store, "other", 0, "A", vec![dead("other", &log[0][2], T0)]);
    assert_eq!(ok!(store.list_dead("s", 10)), [d[1].clone(), d[2].clone(), d[0].clone()]);
    assert_eq!(ok!(store.list_dead("s", 2)), [d[1].clone(), d[2].clone()]);
    assert_eq!(ok!(store.list_dead("s", 0)), vec![]);
    assert_eq!(dead_keys(&ok!(store.list_dead("other", 10))), [(0, 2)]);
    assert_eq!(ok!(store.list_dead("missing", 10)), vec![]);
    assert_eq!((sub_info(store, "s", T0).dead, sub_info(store, "other", T0).dead), (3, 1));
}

/// `redrive_dead` moves one dead letter, or all, back to its partition's
/// pending list with `attempts` 0 and no delay (keeping its error as the
/// last one); each partition changed is released at a higher epoch, so its
/// old owner's commit fails. It answers how many moved.
pub fn events_redrive_dead_one_and_all(store: &dyn Events) {
    let log = filled_topic(store, "rd", 2, 3);
    subscribe(store, "s", "rd", Position::Beginning);
    let d = [dead("s", &log[0][0], T0 + 1), dead("s", &log[0][1], T0 + 2), dead("s", &log[1][0], T0 + 3)];
    let ea = kill(store, "s", 0, "A", vec![d[0].clone(), d[1].clone()]);
    let eb = kill(store, "s", 1, "B", vec![d[2].clone()]);
    let back = |letter: &DeadLetter| Pending {
        message: letter.message.clone(),
        attempts: 0,
        not_before: 0,
        last_error: Some(letter.error.clone()),
    };

    assert_eq!(ok!(store.redrive_dead("s", Some((0, 1)))), 1);
    assert_eq!(dead_keys(&ok!(store.list_dead("s", 10))), [(0, 0), (1, 0)]);
    let info = sub_info(store, "s", T0 + 2);
    assert_eq!((owners(&info), pending_counts(&info), info.dead), (vec![None, Some("B")], vec![1, 0], 2));
    assert!(info.partitions[0].epoch > ea, "{info:?}");
    assert_eq!(info.partitions[1].epoch, eb, "partition 1 was not changed");
    lease_lost(store.commit_delivery(&commit("s", 0, "A", ea, T0 + 3, 2)), "s", 0, "commit after a redrive");
    ok!(store.commit_delivery(&commit("s", 1, "B", eb, T0 + 3, 1)));
    assert_eq!(ok!(store.redrive_dead("s", Some((0, 1)))), 0, "gone from the dead letters");
    assert_eq!(ok!(store.redrive_dead("s", Some((0, 2)))), 0);
    assert_eq!(ok!(store.redrive_dead("s", Some((7, 0)))), 0);
    let c = claim(store, "s", 0, "C", T0 + 4);
    assert_eq!((c.cursor, c.pending), (2, vec![back(&d[1])]));

    assert_eq!(ok!(store.redrive_dead("s", None)), 2);
    assert_eq!(ok!(store.list_dead("s", 10)), vec![]);
    let info = sub_info(store, "s", T0 + 5);
    assert_eq!((owners(&info), pending_counts(&info), info.dead), (vec![None, None], vec![2, 1], 0));
    assert!(info.partitions[0].epoch > c.epoch && info.partitions[1].epoch > eb, "{info:?}");
    lease_lost(store.commit_delivery(&commit("s", 0, "C", c.epoch, T0 + 5, 2)), "s", 0, "commit after a redrive");
    assert_eq!(claim(store, "s", 0, "C", T0 + 6).pending, [back(&d[0]), back(&d[1])]);
    assert_eq!(claim(store, "s", 1, "C", T0 + 6).pending, [back(&d[2])]);
    assert_eq!(ok!(store.redrive_dead("s", None)), 0);
    assert_eq!(ok!(store.redrive_dead("missing", None)), 0);
}

/// `purge_dead` deletes one dead letter, or all of a subscription's, and
/// answers how many; pending lists and leases are untouched.
pub fn events_purge_dead_one_and_all(store: &dyn Events) {
    let log = filled_topic(store, "pd", 2, 3);
    subscribe(store, "s", "pd", Position::Beginning);
    subscribe(store, "other", "pd", Position::Beginning);
    let ea = kill(store, "s", 0, "A", vec![dead("s", &log[0][0], T0 + 1), dead("s", &log[0][1], T0 + 2)]);
    kill(store, "s", 1, "A", vec![dead("s", &log[1][2], T0 + 3)]);
    kill(store, "other", 0, "A", vec![dead("other", &log[0][0], T0 + 1)]);
    let before = sub_info(store, "s", T0 + 2);
    assert_eq!(ok!(store.purge_dead("s", Some((0, 1)))), 1);
    assert_eq!(ok!(store.purge_dead("s", Some((0, 1)))), 0);
    assert_eq!(ok!(store.purge_dead("s", Some((1, 0)))), 0);
    assert_eq!(dead_keys(&ok!(store.list_dead("s", 10))), [(0, 0), (1, 2)]);
    let after = sub_info(store, "s", T0 + 2);
    assert_eq!((after.partitions, after.dead), (before.partitions, 2));
    ok!(store.commit_delivery(&commit("s", 0, "A", ea, T0 + 3, 2)));
    assert_eq!(ok!(store.purge_dead("s", None)), 2);
    assert_eq!(ok!(store.list_dead("s", 10)), vec![]);
    assert_eq!(sub_info(store, "s", T0 + 3).dead, 0);
    assert_eq!(ok!(store.purge_dead("s", None)), 0);
    assert_eq!(ok!(store.purge_dead("missing", None)), 0);
    assert_eq!(ok!(store.list_dead("other", 10)).len(), 1, "another subscription's stay");
}

// ---------------------------------------------------------------------------
// Concurrency

/// Threads claiming the same partitions at once: each partition goes to
/// one of them, the one stored as its owner; again when the leases end.
pub fn events_concurrent_claims_give_each_partition_once(store: &dyn Events) {
    const PARTITIONS: u32 = 24;
    const THREADS: u32 = 4;
    ok!(store.create_topic(&topic("cc", PARTITIONS)));
    subscribe(store, "s", "cc", Position::Beginning);
    for round in 0..2 {
        let now = T0 + round * (HOUR + 1);
        let won: Vec<Vec<(u32, i64)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    scope.spawn(move || {
                        let owner = format!("w{t}");
                        (0..PARTITIONS)
                            .map(|i| (i + t * PARTITIONS / THREADS) % PARTITIONS)
                            .filter_map(|p| {
                                ok!(store.claim_partition("s", p, &owner, now, HOUR)).map(|state| (p, state.epoch))
                            })
                            .collect()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("claiming thread")).collect()
        });
        let mut winner = BTreeMap::new();
        for (t, mine) in won.iter().enumerate() {
            for &(p, epoch) in mine {
                assert!(
                    winner.insert(p, (format!("w{t}"), epoch)).is_none(),
                    "round {round}: partition {p} claimed twice"
                );
            }
        }
        assert_eq!(winner.len(), PARTITIONS as usize, "round {round}: every partition claimed");
        let info = sub_info(store, "s", now);
        for (p, (owner, epoch)) in &winner {
            let shown = &info.partitions[*p as usize];
            assert_eq!((shown.owner.as_deref(), shown.epoch), (Some(owner.as_str()), *epoch), "round {round}: {p}");
        }
    }
}

/// Threads publishing to the same partitions at once get distinct offsets
/// with no gap, each call's messages of a partition in call order, and
/// each offset holds the message its answer named.
pub fn events_concurrent_publishers_get_distinct_gap_free_offsets(store: &dyn Events) {
    const THREADS: usize = 4;
    const CALLS: usize = 25;
    ok!(store.create_topic(&topic("cp", 2)));
    let answers: Vec<Vec<(NewMessage, Published)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..CALLS {
                        let batch = [
                            message("cp", 0, None, &format!("\"{t}-{i}-a\"")),
                            message("cp", 1, None, &format!("\"{t}-{i}-b\"")),
                            message("cp", 0, None, &format!("\"{t}-{i}-c\"")),
                        ];
                        let got = ok!(store.publish(&batch, T0 + i as i64));
                        match (got[0], got[2]) {
                            (Published::New { offset: a, .. }, Published::New { offset: c, .. }) => {
                                assert!(a < c, "{got:?}");
                            }
                            _ => panic!("{got:?}"),
                        }
                        mine.extend(batch.into_iter().zip(got));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("publishing thread")).collect()
    });
    let logs = [read_all(store, "cp", 0), read_all(store, "cp", 1)];
    assert_eq!(offsets(&logs[0]), (0..(2 * THREADS * CALLS) as i64).collect::<Vec<_>>());
    assert_eq!(offsets(&logs[1]), (0..(THREADS * CALLS) as i64).collect::<Vec<_>>());
    let mut seen = HashSet::new();
    for (sent, answer) in answers.iter().flatten() {
        let Published::New { partition, offset } = *answer else { panic!("{answer:?}") };
        assert_eq!(partition, sent.partition);
        assert!(seen.insert((partition, offset)), "{partition}/{offset} given twice");
        assert_eq!(logs[partition as usize][offset as usize].payload, sent.payload);
    }
    assert_eq!(topic_info(store, "cp").messages, (3 * THREADS * CALLS) as u64);
}
