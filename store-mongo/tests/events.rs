//! Events on MongoDB (`$MONGODB_URI` if set, else one nx-27017 for this
//! test binary, a fresh database per test): the contract's main cases, and
//! what only this backend has — several stores (servers) on one database
//! at once, offsets reserved and never written, the races of idempotency
//! keys, and writes that stopped midway.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use sl_store::{
    DeadLetter, DeliveryCommit, Events, Message, NewMessage, PartitionLog, Pending, Position, Published, StoreError,
    Subscription, SubscriptionPartition, Topic,
};
use sl_store_mongo::{
    MongoOptions, MongoStore, DEAD_LETTERS, GAP_TIMEOUT, MESSAGES, PENDING, SUBSCRIPTIONS, SUBSCRIPTION_PARTITIONS,
    TOPICS, TOPIC_PARTITIONS,
};
use sl_testkit::Mongo;

const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 10_000;

fn mongo() -> &'static Mongo {
    static MONGO: OnceLock<Mongo> = OnceLock::new();
    MONGO.get_or_init(Mongo::start)
}

/// A test database, dropped at the end, and the stores ("servers") on it.
struct TestDb {
    db: mongodb::sync::Database,
}

impl TestDb {
    fn new() -> TestDb {
        let m = mongo();
        let client = mongodb::sync::Client::with_uri_str(m.uri()).expect("a client");
        TestDb { db: client.database(&m.fresh_db()) }
    }

    fn store(&self) -> MongoStore {
        self.store_with(MongoOptions::default())
    }

    fn store_with(&self, options: MongoOptions) -> MongoStore {
        let m = mongo();
        MongoStore::connect(m.uri(), self.db.name(), options)
            .unwrap_or_else(|err| panic!("connect: {err}\n{}", m.output()))
    }

    fn coll(&self, name: &str) -> mongodb::sync::Collection<Document> {
        self.db.collection(name)
    }

    fn count(&self, name: &str, filter: Document) -> u64 {
        self.coll(name).count_documents(filter).run().expect("count")
    }

    /// The topic's uid, which its messages are keyed by.
    fn tuid(&self, topic: &str) -> String {
        let t = self.coll(TOPICS).find_one(doc! { "_id": topic }).run().unwrap().expect("the topic");
        t.get_str("uid").unwrap().to_owned()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self.db.drop().run();
    }
}

fn topic(name: &str, partitions: u32) -> Topic {
    Topic { name: name.into(), partitions, retention_ms: None, retention_bytes: None, created: T0 }
}

fn msg(topic: &str, partition: u32, payload: &str) -> NewMessage {
    NewMessage { topic: topic.into(), partition, key: None, payload: payload.into(), idempotency_key: None }
}

fn keyed(topic: &str, partition: u32, idem: &str, payload: &str) -> NewMessage {
    NewMessage { idempotency_key: Some(idem.into()), ..msg(topic, partition, payload) }
}

fn new(partition: u32, offset: i64) -> Published {
    Published::New { partition, offset }
}

fn existing(partition: u32, offset: i64) -> Published {
    Published::Existing { partition, offset }
}

fn read_all(store: &dyn Events, topic: &str, partition: u32) -> Vec<Message> {
    store.read_messages(topic, partition, 0, 1_000_000, usize::MAX).unwrap()
}

fn offsets(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.offset).collect()
}

fn extents(store: &dyn Events, topic: &str) -> Vec<(i64, i64)> {
    store.get_topic(topic).unwrap().expect("the topic").partitions.iter().map(|p| (p.first, p.next)).collect()
}

fn subscription(name: &str, topic: &str) -> Subscription {
    Subscription {
        name: name.into(),
        topic: topic.into(),
        action: "handle".into(),
        batch_size: 10,
        max_wait_ms: 0,
        max_retries: 2,
        backoff_ms: 100,
        backoff_max_ms: 1_000,
        created: T0,
    }
}

fn commit(sub: &str, partition: u32, owner: &str, epoch: i64, now: i64, cursor: i64) -> DeliveryCommit {
    DeliveryCommit {
        subscription: sub.into(),
        partition,
        owner: owner.into(),
        epoch,
        now_ms: now,
        lease_ms: LEASE,
        cursor,
        done: vec![],
        pending: vec![],
        dead: vec![],
    }
}

fn pending(m: &Message, attempts: u32, error: Option<&str>) -> Pending {
    Pending { message: m.clone(), attempts, not_before: T0 + 100, last_error: error.map(str::to_owned) }
}

fn dead(sub: &str, m: &Message, died: i64) -> DeadLetter {
    DeadLetter {
        subscription: sub.into(),
        message: m.clone(),
        attempts: 3,
        error: format!("failed at {}", m.offset),
        logs: vec!["a line".into(), "ünïcødé ✓".into()],
        invocation: Some(format!("inv-{}", m.offset)),
        died,
    }
}

fn lease_lost<T: std::fmt::Debug>(result: sl_store::Result<T>, what: &str) {
    assert!(matches!(result, Err(StoreError::LeaseLost { .. })), "{what}: {result:?}");
}

#[test]
fn the_indexes_are_created() {
    let t = TestDb::new();
    let _store = t.store();
    let keys = |collection: &str| -> Vec<(Document, bool)> {
        t.coll(collection)
            .list_indexes()
            .run()
            .unwrap()
            .map(|i| {
                let i = i.unwrap();
                (i.keys, i.options.and_then(|o| o.unique).unwrap_or(false))
            })
            .collect()
    };
    let messages = keys(MESSAGES);
    for (pattern, unique) in [
        (doc! { "tuid": 1, "partition": 1, "offset": 1 }, true),
        (doc! { "tuid": 1, "idem_key": 1 }, true),
        (doc! { "tuid": 1, "published": 1, "partition": 1, "offset": 1 }, false),
    ] {
        assert!(messages.contains(&(pattern.clone(), unique)), "{pattern} in {messages:?}");
    }
    assert!(keys(SUBSCRIPTIONS).iter().any(|(k, _)| *k == doc! { "topic": 1 }));
    assert!(keys(PENDING).iter().any(|(k, _)| *k == doc! { "uid": 1, "partition": 1, "gen": 1, "offset": 1 }));
    assert!(keys(DEAD_LETTERS).iter().any(|(k, _)| *k == doc! { "uid": 1, "died": 1, "partition": 1, "offset": 1 }));
    // A second server connecting finds them there.
    let _again = t.store();
}

#[test]
fn publish_numbers_each_partition_and_answers_idempotency_keys() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("t", 2)).unwrap();
    assert!(matches!(store.create_topic(&topic("t", 5)), Err(StoreError::AlreadyExists(n)) if n == "t"));
    let answers = store
        .publish(
            &[
                msg("t", 0, "1"),
                keyed("t", 1, "k", "2"),
                msg("t", 0, "3"),
                keyed("t", 0, "k", "\"copy\""),
                msg("t", 2, "\"no such partition\""),
                msg("nope", 0, "4"),
            ],
            T0,
        )
        .unwrap();
    assert_eq!(answers, [new(0, 0), new(1, 0), new(0, 1), existing(1, 0), Published::NoTopic, Published::NoTopic]);
    let answers = store.publish(&[keyed("t", 0, "k", "5"), keyed("t", 0, "k2", "6")], T0 + 1).unwrap();
    assert_eq!(answers, [existing(1, 0), new(0, 2)]);
    assert_eq!(extents(&store, "t"), [(0, 3), (0, 1)], "no offset taken by an answer Existing");
    let info = store.get_topic("t").unwrap().unwrap();
    assert_eq!((info.messages, info.bytes), (4, 4));
    let p0 = read_all(&store, "t", 0);
    assert_eq!(
        p0.iter().map(|m| (m.offset, m.payload.as_str(), m.published)).collect::<Vec<_>>(),
        [(0, "1", T0), (1, "3", T0), (2, "6", T0 + 1)]
    );
    assert!(!t.coll(MESSAGES).find_one(doc! { "idem_key": "k2" }).run().unwrap().unwrap().contains_key("tomb"));
}

/// Publish times never go back along a partition, whatever the servers'
/// clocks say: retention deletes a prefix of each partition.
#[test]
fn publish_times_never_decrease_along_a_partition() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("t", 2)).unwrap();
    store.publish(&[msg("t", 0, "1")], T0 + 50).unwrap();
    store.publish(&[msg("t", 0, "2"), msg("t", 1, "3")], T0 + 10).unwrap();
    let times: Vec<i64> = read_all(&store, "t", 0).iter().map(|m| m.published - T0).collect();
    assert_eq!(times, [50, 50]);
    assert_eq!(read_all(&store, "t", 1)[0].published, T0 + 10, "another partition has its own");
    assert_eq!(store.purge_messages("t", Some(T0 + 20), None).unwrap(), 1);
    assert_eq!(extents(&store, "t"), [(0, 2), (1, 1)]);
}

/// Servers publishing to the same partitions at once get distinct offsets
/// with no gap, in the order of each call, and the totals add up.
#[test]
fn concurrent_publishers_on_several_stores_get_gap_free_offsets() {
    const SERVERS: usize = 3;
    const THREADS: usize = 2;
    const CALLS: usize = 20;
    let t = TestDb::new();
    let stores: Vec<MongoStore> = (0..SERVERS).map(|_| t.store()).collect();
    stores[0].create_topic(&topic("c", 2)).unwrap();
    let answers: Vec<(NewMessage, Published)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SERVERS * THREADS)
            .map(|w| {
                let store = &stores[w % SERVERS];
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..CALLS {
                        let batch = [
                            msg("c", 0, &format!("\"{w}-{i}-a\"")),
                            msg("c", 1, &format!("\"{w}-{i}-b\"")),
                            msg("c", 0, &format!("\"{w}-{i}-c\"")),
                        ];
                        let got = store.publish(&batch, T0 + i as i64).unwrap();
                        match (got[0], got[2]) {
                            (Published::New { offset: a, .. }, Published::New { offset: c, .. }) => assert!(a < c),
                            other => panic!("{other:?}"),
                        }
                        mine.extend(batch.into_iter().zip(got));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let n = (SERVERS * THREADS * CALLS) as i64;
    let logs = [read_all(&stores[1], "c", 0), read_all(&stores[2], "c", 1)];
    assert_eq!(offsets(&logs[0]), (0..2 * n).collect::<Vec<_>>());
    assert_eq!(offsets(&logs[1]), (0..n).collect::<Vec<_>>());
    let mut seen = HashSet::new();
    for (sent, answer) in &answers {
        let Published::New { partition, offset } = *answer else { panic!("{answer:?}") };
        assert!(seen.insert((partition, offset)));
        assert_eq!(logs[partition as usize][offset as usize].payload, sent.payload);
    }
    let info = stores[0].get_topic("c").unwrap().unwrap();
    assert_eq!(info.messages, 3 * n as u64);
    assert_eq!(info.bytes, logs.iter().flatten().map(Message::size).sum::<u64>());
}

/// Servers publishing the same keys at once append one message a key;
/// every other answer names it. The loser of a race between the lookup and
/// the insert leaves a tombstone at its offset, which readers skip at once.
#[test]
fn concurrent_publishers_of_one_key_append_it_once() {
    const KEYS: usize = 40;
    const WORKERS: usize = 4;
    let t = TestDb::new();
    let stores: Vec<MongoStore> = (0..2).map(|_| t.store()).collect();
    stores[0].create_topic(&topic("k", 2)).unwrap();
    let answers: Vec<Vec<Published>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let store = &stores[w % 2];
                scope.spawn(move || {
                    (0..KEYS)
                        .map(|k| {
                            let m = keyed("k", (k % 2) as u32, &format!("key-{k}"), &format!("\"{w}\""));
                            store.publish(&[m], T0).unwrap()[0]
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let logs = [read_all(&stores[0], "k", 0), read_all(&stores[1], "k", 1)];
    assert_eq!(logs[0].len() + logs[1].len(), KEYS, "one message a key");
    for k in 0..KEYS {
        let mut places = HashSet::new();
        let mut news = 0;
        for mine in &answers {
            match mine[k] {
                Published::New { partition, offset } => {
                    news += 1;
                    places.insert((partition, offset));
                }
                Published::Existing { partition, offset } => {
                    places.insert((partition, offset));
                }
                Published::NoTopic => panic!("key {k}"),
            }
        }
        assert_eq!((news, places.len()), (1, 1), "key {k}: {places:?}");
        let (p, o) = places.into_iter().next().unwrap();
        assert!(logs[p as usize].iter().any(|m| m.offset == o), "key {k} at {p}/{o}");
    }
    let info = stores[0].get_topic("k").unwrap().unwrap();
    assert_eq!(info.messages, KEYS as u64, "what the losers counted was taken back");
    let tombs = t.count(MESSAGES, doc! { "tomb": true });
    let next: i64 = info.partitions.iter().map(|p| p.next).sum();
    assert_eq!(next as u64, KEYS as u64 + tombs, "every offset taken holds a message or a tombstone");
    eprintln!("{tombs} races lost between the lookup and the insert");
}

/// A publisher that died between reserving an offset and writing it stops
/// readers at that offset until the gap timeout, then they fill it with a
/// tombstone and read on; the offset is then taken for good.
#[test]
fn readers_wait_for_a_reserved_offset_then_skip_it() {
    let t = TestDb::new();
    let timeout = Duration::from_millis(400);
    let store = t.store_with(MongoOptions { gap_timeout: timeout, ..MongoOptions::default() });
    assert_eq!(MongoOptions::default().gap_timeout, GAP_TIMEOUT);
    store.create_topic(&topic("g", 1)).unwrap();
    store.publish(&[msg("g", 0, "0")], T0).unwrap();
    // A publisher reserves offsets 1 and 2 and dies.
    t.coll(TOPIC_PARTITIONS).update_one(doc! { "_id": "g:0" }, doc! { "$inc": { "next": 2_i64 } }).run().unwrap();
    assert_eq!(store.publish(&[msg("g", 0, "3"), msg("g", 0, "4")], T0 + 1).unwrap(), [new(0, 3), new(0, 4)]);
    assert_eq!(offsets(&read_all(&store, "g", 0)), [0], "not past the offsets taken and not written");
    assert_eq!(offsets(&store.read_messages("g", 0, 3, 10, usize::MAX).unwrap()), [3, 4], "from past them");
    std::thread::sleep(timeout / 2);
    assert_eq!(offsets(&read_all(&store, "g", 0)), [0]);
    std::thread::sleep(timeout);
    assert_eq!(offsets(&read_all(&store, "g", 0)), [0, 3, 4], "skipped once seen for the timeout");
    let tuid = t.tuid("g");
    assert_eq!(t.count(MESSAGES, doc! { "tuid": &tuid, "tomb": true }), 2);
    // The publisher, only slow, writes now: the tombstone holds the offset.
    let late = t.coll(MESSAGES).insert_one(doc! { "tuid": &tuid, "partition": 0_i64, "offset": 1_i64 }).run();
    assert!(late.is_err(), "{late:?}");
    // Another reader (another server) sees no gap.
    assert_eq!(offsets(&read_all(&t.store(), "g", 0)), [0, 3, 4]);
    assert_eq!(extents(&store, "g"), [(0, 5)]);
}

/// A publisher whose offset a reader filled (it was too slow) appends its
/// message at a new offset.
#[test]
fn a_publisher_whose_offset_was_filled_appends_at_the_next_one() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("f", 1)).unwrap();
    store.publish(&[msg("f", 0, "0")], T0).unwrap();
    let tuid = t.tuid("f");
    // The offset the next publish reserves is filled already.
    let tomb =
        doc! { "tuid": &tuid, "partition": 0_i64, "offset": 1_i64, "published": T0, "size": 0_i64, "tomb": true };
    t.coll(MESSAGES).insert_one(tomb).run().unwrap();
    assert_eq!(store.publish(&[keyed("f", 0, "k", "1")], T0 + 1).unwrap(), [new(0, 2)]);
    assert_eq!(offsets(&read_all(&store, "f", 0)), [0, 2]);
    let info = store.get_topic("f").unwrap().unwrap();
    assert_eq!((info.messages, info.bytes, info.partitions[0].next), (2, 2, 3));
    assert_eq!(store.publish(&[keyed("f", 0, "k", "again")], T0 + 2).unwrap(), [existing(0, 2)]);
}

/// Retention by age, then by size, deletes a prefix of each partition,
/// moves its first offset, and keeps the totals; readers never see the
/// offsets deleted.
#[test]
fn purge_by_age_and_bytes() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("p", 2)).unwrap();
    for i in 0..10_i64 {
        store
            .publish(&[msg("p", 0, &format!("\"{i:08}\"")), msg("p", 1, &format!("\"{i:08}\""))], T0 + 10 * i)
            .unwrap();
    }
    assert_eq!(store.get_topic("p").unwrap().unwrap().bytes, 200);
    assert_eq!(store.purge_messages("p", Some(T0 + 30), None).unwrap(), 6);
    assert_eq!(extents(&store, "p"), [(3, 10), (3, 10)]);
    assert_eq!(offsets(&read_all(&store, "p", 0)), (3..10).collect::<Vec<_>>());
    assert_eq!(offsets(&store.read_messages("p", 1, 0, 2, usize::MAX).unwrap()), [3, 4]);
    // 140 bytes left; down to 75: the oldest first, across partitions.
    assert_eq!(store.purge_messages("p", None, Some(75)).unwrap(), 7);
    assert_eq!(extents(&store, "p"), [(7, 10), (6, 10)]);
    let info = store.get_topic("p").unwrap().unwrap();
    assert_eq!((info.messages, info.bytes), (7, 70));
    assert_eq!(t.count(MESSAGES, doc! {}), 7, "the documents are gone too");
    assert_eq!(store.purge_messages("p", Some(T0 + 1_000), Some(0)).unwrap(), 7);
    assert_eq!(extents(&store, "p"), [(10, 10), (10, 10)]);
    assert_eq!(store.publish(&[msg("p", 1, "1")], T0 + 2_000).unwrap(), [new(1, 10)], "offsets are never reused");
}

/// Servers purging one topic at once delete each message once, and the
/// totals stay exact.
#[test]
fn concurrent_purges_count_each_message_once() {
    let t = TestDb::new();
    let stores: Vec<MongoStore> = (0..3).map(|_| t.store()).collect();
    stores[0].create_topic(&topic("cp", 3)).unwrap();
    for i in 0..100_i64 {
        let batch: Vec<NewMessage> = (0..3).map(|p| msg("cp", p, &format!("\"{p}-{i:05}\""))).collect();
        stores[0].publish(&batch, T0 + i).unwrap();
    }
    let deleted: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                scope.spawn(move || {
                    let by_age = store.purge_messages("cp", Some(T0 + 40 + i as i64 * 10), None).unwrap();
                    by_age + store.purge_messages("cp", None, Some(1_000)).unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let info = stores[0].get_topic("cp").unwrap().unwrap();
    let left: Vec<Message> = (0..3).flat_map(|p| read_all(&stores[0], "cp", p)).collect();
    assert_eq!(deleted + left.len() as u64, 300);
    assert_eq!((info.messages, info.bytes), (left.len() as u64, left.iter().map(Message::size).sum::<u64>()));
    assert!(info.bytes <= 1_000, "{info:?}");
    for (p, log) in info.partitions.iter().enumerate() {
        let mine: Vec<i64> = left.iter().filter(|m| m.partition == p as u32).map(|m| m.offset).collect();
        assert_eq!(mine, (log.first..log.next).collect::<Vec<_>>(), "partition {p}");
    }
    assert_eq!(t.count(MESSAGES, doc! {}), left.len() as u64);
}

#[test]
fn subscriptions_start_at_each_position() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("s", 2)).unwrap();
    for (p, at) in [(0, 0), (0, 10), (1, 15), (0, 20), (1, 25)] {
        store.publish(&[msg("s", p, "1")], T0 + at).unwrap();
    }
    store.purge_messages("s", Some(T0 + 5), None).unwrap();
    assert!(matches!(
        store.create_subscription(&subscription("x", "missing"), Position::End),
        Err(StoreError::NotFound(n)) if n == "missing"
    ));
    for (name, start, expected) in [
        ("begin", Position::Beginning, [1, 0]),
        ("end", Position::End, [3, 2]),
        ("offset", Position::Offset(2), [2, 2]),
        ("low", Position::Offset(-3), [1, 0]),
        ("time", Position::Time(T0 + 12), [2, 0]),
        ("time-exact", Position::Time(T0 + 25), [3, 1]),
        ("late", Position::Time(T0 + 99), [3, 2]),
    ] {
        store.create_subscription(&subscription(name, "s"), start).unwrap();
        let info = store.get_subscription(name, T0).unwrap().unwrap();
        assert_eq!(info.subscription, subscription(name, "s"));
        let fresh = |cursor| SubscriptionPartition { cursor, pending: 0, owner: None, epoch: 0 };
        assert_eq!(info.partitions, expected.map(fresh), "{name}");
    }
    assert!(matches!(
        store.create_subscription(&subscription("end", "s"), Position::Beginning),
        Err(StoreError::AlreadyExists(n)) if n == "end"
    ));
    let names: Vec<String> = store.list_subscriptions(T0).unwrap().into_iter().map(|s| s.subscription.name).collect();
    assert_eq!(names, ["begin", "end", "late", "low", "offset", "time", "time-exact"]);
}

/// Threads of several servers claiming the same partitions: each goes to
/// one; once the leases end, another server takes them at a higher epoch,
/// and the old holder's renewals and commits fail.
#[test]
fn leases_are_exclusive_across_servers_and_taken_over_after_they_end() {
    const PARTITIONS: u32 = 12;
    let t = TestDb::new();
    let stores: Vec<MongoStore> = (0..3).map(|_| t.store()).collect();
    stores[0].create_topic(&topic("l", PARTITIONS)).unwrap();
    stores[0].create_subscription(&subscription("s", "l"), Position::Beginning).unwrap();
    // Servers named `{round}-{w}`: in the second round, every partition
    // changes owner.
    let claim_all = |round: &str, now: i64| -> BTreeMap<u32, (String, i64)> {
        let won: Vec<Vec<(u32, String, i64)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let store = &stores[w % 3];
                    scope.spawn(move || {
                        let owner = format!("{round}-{w}");
                        (0..PARTITIONS)
                            .filter_map(|p| {
                                let p = (p + w as u32 * 2) % PARTITIONS;
                                let got = store.claim_partition("s", p, &owner, now, LEASE).unwrap();
                                got.map(|state| (p, owner.clone(), state.epoch))
                            })
                            .collect()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut winners = BTreeMap::new();
        for (p, owner, epoch) in won.into_iter().flatten() {
            assert!(winners.insert(p, (owner, epoch)).is_none(), "partition {p} given twice");
        }
        assert_eq!(winners.len(), PARTITIONS as usize);
        winners
    };
    let first = claim_all("first", T0);
    let info = stores[1].get_subscription("s", T0).unwrap().unwrap();
    for (p, (owner, epoch)) in &first {
        assert_eq!(
            (info.partitions[*p as usize].owner.as_deref(), info.partitions[*p as usize].epoch),
            (Some(owner.as_str()), *epoch)
        );
    }
    assert_eq!(
        stores[2].claim_partition("s", 0, "late", T0 + LEASE, LEASE).unwrap(),
        None,
        "the lease lives at its end"
    );
    let second = claim_all("second", T0 + LEASE + 1);
    for p in 0..PARTITIONS {
        let (old_owner, old_epoch) = &first[&p];
        let (_, new_epoch) = &second[&p];
        assert!(new_epoch > old_epoch, "partition {p}");
        let store = &stores[p as usize % 3];
        lease_lost(store.renew_partition("s", p, old_owner, *old_epoch, T0 + LEASE + 2, LEASE), "renewal");
        lease_lost(store.commit_delivery(&commit("s", p, old_owner, *old_epoch, T0 + LEASE + 2, 5)), "commit");
    }
    let info = stores[0].get_subscription("s", T0 + LEASE + 2).unwrap().unwrap();
    assert!(info.partitions.iter().all(|p| p.cursor == 0), "no stale commit moved a cursor");
}

/// A commit moves the cursor and the pending list, and stores dead
/// letters; one by a server that lost the lease fails and writes nothing.
#[test]
fn commits_are_fenced_by_owner_and_epoch() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("d", 1)).unwrap();
    for i in 0..6 {
        store.publish(&[NewMessage { key: Some(format!("k{i}")), ..msg("d", 0, &format!("{i}")) }], T0 + i).unwrap();
    }
    let m = read_all(&store, "d", 0);
    store.create_subscription(&subscription("s", "d"), Position::Beginning).unwrap();
    let a = store.claim_partition("s", 0, "A", T0, LEASE).unwrap().unwrap();
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 4);
    c.pending = vec![pending(&m[1], 1, Some("boom")), pending(&m[3], 0, None), pending(&m[2], 1, None)];
    c.dead = vec![dead("s", &m[0], T0 + 1), dead("s", &m[2], T0 + 1)];
    store.commit_delivery(&c).unwrap();
    let state = store.claim_partition("s", 0, "A", T0 + 2, LEASE).unwrap().unwrap();
    assert_eq!((state.epoch, state.cursor), (a.epoch, 4));
    assert_eq!(state.pending, [pending(&m[1], 1, Some("boom")), pending(&m[3], 0, None)], "the dead are not pending");
    assert_eq!(store.list_dead("s", 10).unwrap(), [dead("s", &m[0], T0 + 1), dead("s", &m[2], T0 + 1)]);

    let b = store.claim_partition("s", 0, "B", T0 + 3 + LEASE, LEASE).unwrap().unwrap();
    assert!(b.epoch > a.epoch);
    assert_eq!(b.pending, state.pending, "the pending list outlives its owner");
    let before = store.get_subscription("s", T0 + 4 + LEASE).unwrap().unwrap();
    let mut stale = commit("s", 0, "A", a.epoch, T0 + 4 + LEASE, 6);
    stale.done = vec![1, 3];
    stale.pending = vec![pending(&m[4], 1, None)];
    stale.dead = vec![dead("s", &m[5], T0 + 4)];
    lease_lost(store.commit_delivery(&stale), "a commit by the old owner");
    lease_lost(store.commit_delivery(&DeliveryCommit { owner: "B".into(), ..stale.clone() }), "at the old epoch");
    assert_eq!(store.get_subscription("s", T0 + 4 + LEASE).unwrap().unwrap(), before);
    assert_eq!(store.list_dead("s", 10).unwrap().len(), 2);
    assert_eq!(t.count(PENDING, doc! {}), 2);

    let mut c = commit("s", 0, "B", b.epoch, T0 + 5 + LEASE, 3);
    c.done = vec![1, 3];
    store.commit_delivery(&c).unwrap();
    let info = store.get_subscription("s", T0 + 5 + LEASE).unwrap().unwrap();
    assert_eq!(
        info.partitions[0],
        SubscriptionPartition { cursor: 4, pending: 0, owner: Some("B".into()), epoch: b.epoch }
    );
    assert_eq!(info.dead, 2);
    store.release_partition("s", 0, "B", b.epoch).unwrap();
    lease_lost(store.renew_partition("s", 0, "B", b.epoch, T0 + 6 + LEASE, LEASE), "renewal after release");
}

/// A reset moves the cursors, empties the pending lists at once (also of
/// what a commit that passed its fence before it writes after it), and
/// fences the old owners out.
#[test]
fn reset_empties_pending_lists_and_fences_owners() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("r", 2)).unwrap();
    for i in 0..4 {
        store.publish(&[msg("r", 0, &format!("{i}")), msg("r", 1, &format!("{i}"))], T0 + 10 * i).unwrap();
    }
    let m = read_all(&store, "r", 0);
    store.create_subscription(&subscription("s", "r"), Position::Beginning).unwrap();
    let a = store.claim_partition("s", 0, "A", T0, LEASE).unwrap().unwrap();
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 3);
    c.pending = vec![pending(&m[0], 1, Some("x")), pending(&m[1], 1, Some("y"))];
    c.dead = vec![dead("s", &m[2], T0 + 1)];
    store.commit_delivery(&c).unwrap();
    let stale = t.coll(PENDING).find_one(doc! { "offset": 0_i64 }).run().unwrap().unwrap();

    assert_eq!(store.reset_subscription("s", Position::Time(T0 + 15)).unwrap(), Some(vec![2, 2]));
    let info = store.get_subscription("s", T0 + 2).unwrap().unwrap();
    assert_eq!(
        info.partitions.iter().map(|p| (p.cursor, p.pending, p.owner.clone())).collect::<Vec<_>>(),
        [(2, 0, None), (2, 0, None)]
    );
    assert!(info.partitions[0].epoch > a.epoch);
    assert_eq!(info.dead, 1, "dead letters stay");
    lease_lost(store.commit_delivery(&commit("s", 0, "A", a.epoch, T0 + 3, 4)), "commit after a reset");
    // What a commit fenced before the reset writes after it is not pending.
    t.coll(PENDING).insert_one(stale).run().unwrap();
    let b = store.claim_partition("s", 0, "B", T0 + 4, LEASE).unwrap().unwrap();
    assert_eq!((b.cursor, b.pending), (2, vec![]));
    assert_eq!(store.get_subscription("s", T0 + 4).unwrap().unwrap().partitions[0].pending, 0);
    assert_eq!(store.reset_subscription("missing", Position::End).unwrap(), None);
    assert_eq!(store.reset_subscription("s", Position::End).unwrap(), Some(vec![4, 4]));
    assert_eq!(t.count(PENDING, doc! {}), 0, "older generations are deleted");
}

#[test]
fn dead_letters_are_listed_redriven_and_purged() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("dl", 2)).unwrap();
    for i in 0..3 {
        store.publish(&[msg("dl", 0, &format!("{i}")), msg("dl", 1, &format!("{i}"))], T0 + i).unwrap();
    }
    let m0 = read_all(&store, "dl", 0);
    let m1 = read_all(&store, "dl", 1);
    store.create_subscription(&subscription("s", "dl"), Position::Beginning).unwrap();
    let a = store.claim_partition("s", 0, "A", T0, LEASE).unwrap().unwrap();
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 3);
    c.dead = vec![dead("s", &m0[0], T0 + 30), dead("s", &m0[1], T0 + 10), dead("s", &m0[2], T0 + 50)];
    store.commit_delivery(&c).unwrap();
    let b = store.claim_partition("s", 1, "B", T0, LEASE).unwrap().unwrap();
    let mut c = commit("s", 1, "B", b.epoch, T0 + 1, 1);
    c.dead = vec![dead("s", &m1[0], T0 + 20)];
    store.commit_delivery(&c).unwrap();
    let order: Vec<(u32, i64)> =
        store.list_dead("s", 10).unwrap().iter().map(|d| (d.message.partition, d.message.offset)).collect();
    assert_eq!(order, [(0, 1), (1, 0), (0, 0), (0, 2)]);
    assert_eq!(store.list_dead("s", 2).unwrap().len(), 2);
    assert_eq!(store.list_dead("s", 0).unwrap(), vec![]);

    assert_eq!(store.redrive_dead("s", Some((0, 1))).unwrap(), 1);
    assert_eq!(store.redrive_dead("s", Some((0, 1))).unwrap(), 0);
    let info = store.get_subscription("s", T0 + 2).unwrap().unwrap();
    assert_eq!((info.partitions[0].owner.clone(), info.partitions[0].pending, info.dead), (None, 1, 3));
    assert!(info.partitions[0].epoch > a.epoch);
    assert_eq!(info.partitions[1].epoch, b.epoch, "partition 1 untouched");
    lease_lost(store.commit_delivery(&commit("s", 0, "A", a.epoch, T0 + 3, 3)), "commit after a redrive");
    let back = |m: &Message, letter: &DeadLetter| Pending {
        message: m.clone(),
        attempts: 0,
        not_before: 0,
        last_error: Some(letter.error.clone()),
    };
    let c0 = store.claim_partition("s", 0, "C", T0 + 3, LEASE).unwrap().unwrap();
    assert_eq!(c0.pending, [back(&m0[1], &dead("s", &m0[1], 0))]);

    assert_eq!(store.purge_dead("s", Some((0, 2))).unwrap(), 1);
    assert_eq!(store.purge_dead("s", Some((0, 2))).unwrap(), 0);
    assert_eq!(store.redrive_dead("s", None).unwrap(), 2);
    let info = store.get_subscription("s", T0 + 4).unwrap().unwrap();
    assert_eq!((info.partitions.iter().map(|p| p.pending).collect::<Vec<_>>(), info.dead), (vec![2, 1], 0));
    let c0 = store.claim_partition("s", 0, "C", T0 + 4, LEASE).unwrap().unwrap();
    assert!(c0.epoch > 0);
    assert_eq!(c0.pending.iter().map(|p| p.message.offset).collect::<Vec<_>>(), [0, 1]);
    let mut c = commit("s", 1, "B", b.epoch, T0 + 5, 2);
    c.dead = vec![dead("s", &m1[1], T0 + 5)];
    lease_lost(store.commit_delivery(&c), "partition 1 was redriven too");
    assert_eq!(store.purge_dead("s", None).unwrap(), 0);
    assert_eq!(store.purge_dead("missing", None).unwrap(), 0);
    assert_eq!(store.redrive_dead("missing", None).unwrap(), 0);
}

/// Deleting a topic takes its subscriptions, their pending lists and dead
/// letters along; a deletion that stopped midway is finished by the next
/// delete or create of the name.
#[test]
fn deleting_topics_and_finishing_a_deletion_that_stopped() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("gone", 1)).unwrap();
    store.publish(&[keyed("gone", 0, "k", "1"), msg("gone", 0, "2")], T0).unwrap();
    let m = read_all(&store, "gone", 0);
    store.create_subscription(&subscription("s", "gone"), Position::Beginning).unwrap();
    let a = store.claim_partition("s", 0, "A", T0, LEASE).unwrap().unwrap();
    let mut c = commit("s", 0, "A", a.epoch, T0 + 1, 2);
    c.pending = vec![pending(&m[1], 1, None)];
    c.dead = vec![dead("s", &m[0], T0 + 1)];
    store.commit_delivery(&c).unwrap();
    assert!(store.delete_topic("gone").unwrap());
    assert!(!store.delete_topic("gone").unwrap());
    assert_eq!(store.get_subscription("s", T0).unwrap(), None);
    for collection in
        [TOPICS, TOPIC_PARTITIONS, MESSAGES, SUBSCRIPTIONS, SUBSCRIPTION_PARTITIONS, PENDING, DEAD_LETTERS]
    {
        assert_eq!(t.count(collection, doc! {}), 0, "{collection}");
    }

    // A deletion that stopped after marking the topic.
    store.create_topic(&topic("half", 2)).unwrap();
    store.publish(&[keyed("half", 1, "k", "1")], T0).unwrap();
    store.create_subscription(&subscription("on-half", "half"), Position::Beginning).unwrap();
    t.coll(TOPICS).update_one(doc! { "_id": "half" }, doc! { "$set": { "deleting": true } }).run().unwrap();
    assert_eq!(store.get_topic("half").unwrap(), None);
    assert!(store.list_topics().unwrap().is_empty());
    assert_eq!(store.publish(&[msg("half", 0, "2")], T0).unwrap(), [Published::NoTopic]);
    assert!(matches!(
        store.create_subscription(&subscription("x", "half"), Position::End),
        Err(StoreError::NotFound(_))
    ));
    store.create_topic(&topic("half", 3)).unwrap();
    assert_eq!(store.get_subscription("on-half", T0).unwrap(), None, "the old topic's subscription went");
    assert_eq!(extents(&store, "half"), [(0, 0); 3]);
    assert_eq!(store.publish(&[keyed("half", 1, "k", "3")], T0).unwrap(), [new(1, 0)], "its keys are free");
    assert_eq!(t.count(MESSAGES, doc! {}), 1);
}

/// A creation that stopped after the topic's or subscription's own
/// document is finished by the calls that find its partitions missing.
#[test]
fn creations_that_stopped_midway_are_finished() {
    let t = TestDb::new();
    let store = t.store();
    store.create_topic(&topic("c", 2)).unwrap();
    store.publish(&[msg("c", 0, "1")], T0).unwrap();
    store.create_subscription(&subscription("s", "c"), Position::End).unwrap();
    t.coll(TOPIC_PARTITIONS).delete_one(doc! { "_id": "c:1" }).run().unwrap();
    t.coll(SUBSCRIPTION_PARTITIONS).delete_one(doc! { "_id": "s:1" }).run().unwrap();
    let info = store.get_topic("c").unwrap().unwrap();
    assert_eq!(info.partitions, [PartitionLog { first: 0, next: 1 }, PartitionLog { first: 0, next: 0 }]);
    assert_eq!(store.claim_partition("s", 1, "A", T0, LEASE).unwrap(), None);
    let sub = store.get_subscription("s", T0).unwrap().unwrap();
    assert_eq!(sub.partitions.iter().map(|p| (p.cursor, p.epoch)).collect::<Vec<_>>(), [(1, 0), (0, 0)]);
    assert!(store.claim_partition("s", 1, "A", T0, LEASE).unwrap().is_some(), "made by the read");
    assert_eq!(store.publish(&[msg("c", 1, "3")], T0).unwrap(), [new(1, 0)], "made by the publish");
    // A subscription deleted midway (its partitions fenced) delivers
    // nothing until the deletion is done again.
    t.coll(SUBSCRIPTION_PARTITIONS)
        .update_many(doc! {}, doc! { "$set": { "deleting": true, "owner": null } })
        .run()
        .unwrap();
    assert_eq!(store.claim_partition("s", 0, "A", T0, LEASE).unwrap(), None);
    assert!(store.delete_subscription("s").unwrap());
    store.create_subscription(&subscription("s", "c"), Position::Beginning).unwrap();
    assert_eq!(store.claim_partition("s", 1, "A", T0, LEASE).unwrap().unwrap().cursor, 0);
}
