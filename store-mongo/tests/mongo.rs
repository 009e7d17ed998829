//! What the conformance suite does not cover: the indexes, MongoDB being
//! down or going away and coming back, several stores (servers) on one
//! database, and documents as older versions wrote them.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use serde_json::json;
use sl_store::{ActionRecord, InvocationRecord, InvocationStatus, Limits, Store, StoreError};
use sl_store_mongo::{MongoOptions, MongoStore, ACTIONS, COUNTERS, INVOCATIONS, TTL_GRACE_SECS};
use sl_testkit::Mongo;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn mongo() -> &'static Mongo {
    static MONGO: OnceLock<Mongo> = OnceLock::new();
    MONGO.get_or_init(Mongo::start)
}

fn client(m: &Mongo) -> mongodb::sync::Client {
    mongodb::sync::Client::with_uri_str(m.uri()).expect("a client")
}

/// A test database, dropped at the end.
struct TestDb {
    db: mongodb::sync::Database,
}

impl TestDb {
    fn new(m: &Mongo) -> TestDb {
        TestDb { db: client(m).database(&m.fresh_db()) }
    }

    fn name(&self) -> &str {
        self.db.name()
    }

    fn connect(&self, m: &Mongo, options: MongoOptions) -> MongoStore {
        MongoStore::connect(m.uri(), self.name(), options)
            .unwrap_or_else(|err| panic!("connect: {err}\n{}", m.output()))
    }

    /// The raw invocation document.
    fn raw(&self, id: &str) -> Document {
        let coll = self.db.collection::<Document>(INVOCATIONS);
        coll.find_one(doc! { "_id": id }).run().unwrap().expect("stored")
    }

    /// Every index as (key pattern, its options besides key, name and v).
    fn indexes(&self, collection: &str) -> Vec<(Document, Document)> {
        let coll = self.db.collection::<Document>(collection);
        let mut out = Vec::new();
        for index in coll.list_indexes().run().expect("listIndexes") {
            let index = index.expect("an index");
            let options = index.options.map(|o| mongodb::bson::to_document(&o).unwrap()).unwrap_or_default();
            let options: Document =
                options.into_iter().filter(|(k, v)| !matches!(k.as_str(), "name" | "v") && *v != Bson::Null).collect();
            out.push((index.keys, options));
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self.db.drop().run();
    }
}

fn queued(id: &str) -> InvocationRecord {
    InvocationRecord::queued(id.into(), "a".into(), json!({ "id": id }), true, T0)
}

fn action(name: &str) -> ActionRecord {
    ActionRecord {
        name: name.into(),
        version: 1,
        source: "return 1".into(),
        bytecode: vec![0x1b, b'L', 0],
        checksum: "00".into(),
        limits: Limits::default(),
        created: T0,
        updated: T0,
    }
}

fn ids(records: &[InvocationRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn expect_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Unavailable(msg)) => msg,
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[test]
fn the_indexes_exist_and_the_retention_follows_the_options() {
    let m = mongo();
    let t = TestDb::new(m);
    // Indexes an earlier version made, which nothing reads now: dropped.
    let old = t.db.collection::<Document>(INVOCATIONS);
    for keys in [doc! { "action": 1, "created": 1, "seq": 1 }, doc! { "created": 1, "seq": 1 }] {
        old.create_index(mongodb::IndexModel::builder().keys(keys).build()).run().expect("an old index");
    }
    let options = MongoOptions { retention_secs: 3600, ..MongoOptions::default() };
    let _store = t.connect(m, options.clone());
    let actions = t.indexes("actions");
    assert!(actions.contains(&(doc! { "name": 1 }, doc! { "unique": true })), "{actions:?}");
    let routes = t.indexes("routes");
    let route_key = doc! { "method": 1, "host": 1, "path": 1 };
    assert!(routes.contains(&(route_key, doc! { "unique": true })), "{routes:?}");
    let invocations = t.indexes("invocations");
    let keys: Vec<&Document> = invocations.iter().map(|(keys, _)| keys).collect();
    // `_id` is the invocation id: unique by definition.
    for expected in
        [doc! { "_id": 1 }, doc! { "status": 1, "seq": 1 }, doc! { "action": 1, "seq": 1 }, doc! { "seq": 1 }]
    {
        assert!(keys.contains(&&expected), "no index {expected} in {invocations:?}");
    }
    assert!(!keys.iter().any(|k| k.contains_key("created")), "an old index left: {invocations:?}");
    let ttl = |indexes: &[(Document, Document)]| {
        let (_, options) = indexes.iter().find(|(keys, _)| *keys == doc! { "expire_at": 1 }).expect("a TTL index");
        options
            .get("expireAfterSeconds")
            .and_then(Bson::as_i64)
            .or_else(|| options.get("expireAfterSeconds").and_then(Bson::as_i32).map(i64::from))
    };
    // The servers' purge deletes at the retention; the index a day later.
    assert_eq!(ttl(&invocations), Some(3600 + TTL_GRACE_SECS as i64));

    // Connecting again finds them; a new retention replaces the old one.
    let _again = t.connect(m, options);
    let _longer = t.connect(m, MongoOptions { retention_secs: 7200, ..MongoOptions::default() });
    assert_eq!(ttl(&t.indexes("invocations")), Some(7200 + TTL_GRACE_SECS as i64));
    assert_eq!(t.indexes("invocations").len(), invocations.len(), "no index was added twice");
    assert_eq!(t.indexes("routes").len(), routes.len(), "no route index was added twice");

    // No retention, no TTL index.
    let t = TestDb::new(m);
    let _store = t.connect(m, MongoOptions { retention_secs: 0, ..MongoOptions::default() });
    assert!(t.indexes("invocations").iter().all(|(keys, _)| !keys.contains_key("expire_at")));
}

#[test]
fn terminal_records_get_an_expiry_date_and_keep_their_place() {
    let m = mongo();
    let t = TestDb::new(m);
    let store = t.connect(m, MongoOptions::default());
    store.put_invocations(&[queued("a"), queued("b")]).unwrap();
    let raw = t.raw("a");
    assert!(!raw.contains_key("expire_at"), "a queued record does not expire: {raw}");
    let seq = raw.get("seq").cloned().expect("an enqueue number");
    let mut done = queued("a");
    done.status = InvocationStatus::Succeeded;
    done.result = Some(json!(null));
    done.finished = Some(T0 + 5);
    store.put_invocations(std::slice::from_ref(&done)).unwrap();
    let raw = t.raw("a");
    assert!(matches!(raw.get("expire_at"), Some(v) if *v != Bson::Null), "a finished record expires: {raw}");
    assert_eq!(raw.get("seq"), Some(&seq), "putting a record again keeps its enqueue number");
    assert_eq!(store.get_invocation("a").unwrap(), Some(done));
    // Back in the queue (as a test might put it), it no longer expires.
    store.put_invocations(&[queued("a")]).unwrap();
    assert!(!t.raw("a").contains_key("expire_at"));
    assert_eq!(ids(&store.claim_invocations("w", 10, T0, HOUR).unwrap()), ["a", "b"]);
}

#[test]
fn a_record_that_does_not_decode_is_corrupt() {
    let m = mongo();
    let t = TestDb::new(m);
    let store = t.connect(m, MongoOptions::default());
    store.put_invocations(&[queued("good")]).unwrap();
    let coll = t.db.collection::<Document>(INVOCATIONS);
    coll.insert_one(doc! { "_id": "bad", "status": "exploded", "seq": 99_i64, "created": T0 }).run().unwrap();
    let msg = match store.get_invocation("bad") {
        Err(StoreError::Corrupt(msg)) => msg,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert!(msg.contains("invocation bad") && msg.contains("status"), "{msg}");
    assert!(matches!(store.list_invocations(None, 10), Err(StoreError::Corrupt(_))));
    assert_eq!(store.get_invocation("good").unwrap(), Some(queued("good")));
}

#[test]
fn sources_are_stored_as_binary_and_old_string_sources_still_read() {
    let m = mongo();
    let t = TestDb::new(m);
    let store = t.connect(m, MongoOptions::default());
    let latin1 = ActionRecord { source: b"return 'caf\xe9'".to_vec(), ..action("latin1") };
    store.create_action(&latin1).unwrap();
    let coll = t.db.collection::<Document>(ACTIONS);
    let raw = coll.find_one(doc! { "name": "latin1" }).run().unwrap().expect("stored");
    assert!(matches!(raw.get("source"), Some(Bson::Binary(b)) if b.bytes == latin1.source), "{raw}");
    assert_eq!(store.get_action("latin1").unwrap(), Some(latin1));

    // An action document as versions that stored the source as a string wrote it.
    let mut old = raw.clone();
    old.remove("_id");
    old.insert("name", "old");
    old.insert("source", "return \"é ✓\"");
    coll.insert_one(old).run().unwrap();
    let read = store.get_action("old").unwrap().expect("the old action");
    assert_eq!(read.source, "return \"é ✓\"".as_bytes());
    // Updating it writes binary.
    let next = ActionRecord { version: 2, source: b"return '\xff'".to_vec(), ..read };
    store.update_action(&next, 1).unwrap();
    let raw = coll.find_one(doc! { "name": "old" }).run().unwrap().expect("stored");
    assert!(matches!(raw.get("source"), Some(Bson::Binary(b)) if b.bytes == b"return '\xff'"), "{raw}");
    assert_eq!(store.get_action("old").unwrap(), Some(next));
}

#[test]
fn connecting_to_a_closed_port_fails_fast_as_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("mongodb://127.0.0.1:{port}");
    let start = Instant::now();
    let msg = expect_unavailable("connect", MongoStore::connect(&url, "sl", MongoOptions::default()));
    let took = start.elapsed();
    eprintln!("connect to a closed port failed after {took:?}: {msg}");
    assert!(msg.starts_with(&format!("cannot reach MongoDB at {url}: ")), "{msg}");
    assert!(took < Duration::from_millis(3_500), "took {took:?}");
}

#[test]
fn mongodb_going_away_makes_calls_unavailable_and_the_store_recovers() {
    // Always a nx-27017 of our own: a shared MongoDB is not ours to stop.
    let mut m = Mongo::start_local();
    let db = m.fresh_db();
    let options = MongoOptions { server_selection_timeout: Duration::from_secs(1), ..MongoOptions::default() };
    let store = MongoStore::connect(m.uri(), &db, options).unwrap();
    store.create_action(&action("kept")).unwrap();
    store.put_invocations(&[queued("q1")]).unwrap();

    m.stop();
    let start = Instant::now();
    let msg = expect_unavailable("get_action", store.get_action("kept"));
    assert!(msg.contains("MongoDB unavailable"), "{msg}");
    expect_unavailable("put_invocations", store.put_invocations(&[queued("q2")]));
    expect_unavailable("claim_invocations", store.claim_invocations("w", 5, T0, HOUR));
    expect_unavailable("create_action", store.create_action(&action("new")));
    let took = start.elapsed();
    eprintln!("4 calls failed in {took:?} while MongoDB was down: {msg}");
    assert!(took < Duration::from_secs(8), "calls fail within the server selection timeout ({took:?})");

    m.restart();
    let start = Instant::now();
    let kept = loop {
        match store.get_action("kept") {
            Ok(found) => break found,
            Err(StoreError::Unavailable(_)) if start.elapsed() < Duration::from_secs(15) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => panic!("the store did not recover after {:?}: {err}", start.elapsed()),
        }
    };
    eprintln!("the same store worked again {:?} after the restart", start.elapsed());
    assert_eq!(kept, Some(action("kept")), "the data survived");
    store.put_invocations(&[queued("q2")]).unwrap();
    assert_eq!(ids(&store.claim_invocations("w", 5, T0, HOUR).unwrap()), ["q1", "q2"]);
}

#[test]
fn two_stores_on_one_database_claim_each_record_once() {
    const RECORDS: usize = 200;
    let m = mongo();
    let t = TestDb::new(m);
    let stores = [t.connect(m, MongoOptions::default()), t.connect(m, MongoOptions::default())];
    // Enqueued alternately through both: the enqueue order is global.
    let records: Vec<InvocationRecord> = (0..RECORDS).map(|i| queued(&format!("c-{i:03}"))).collect();
    for (i, batch) in records.chunks(10).enumerate() {
        stores[i % 2].put_invocations(batch).unwrap();
    }
    assert_eq!(stores[1].count_queued().unwrap(), RECORDS as u64);
    let start = Instant::now();
    let taken: Vec<(String, Vec<InvocationRecord>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let store = &stores[w % 2];
                scope.spawn(move || {
                    let owner = format!("server-{}-worker-{w}", w % 2);
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_invocations(&owner, 3, T0 + 1, HOUR).unwrap();
                        if got.is_empty() {
                            return (owner, mine);
                        }
                        mine.extend(got);
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    eprintln!("4 workers on 2 stores claimed {RECORDS} records in {:?}", start.elapsed());
    let mut seen = HashSet::new();
    for (owner, mine) in &taken {
        for rec in mine {
            assert!(seen.insert(rec.id.clone()), "{} was claimed twice", rec.id);
            assert_eq!((rec.owner.as_deref(), rec.attempts), (Some(owner.as_str()), 1));
        }
        let order = ids(mine);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "{owner} claimed out of enqueue order");
    }
    assert_eq!(seen.len(), RECORDS);
    assert_eq!(stores[0].count_queued().unwrap(), 0);
}

#[test]
fn the_enqueue_order_is_global_across_stores() {
    let m = mongo();
    let t = TestDb::new(m);
    let a = t.connect(m, MongoOptions::default());
    let b = t.connect(m, MongoOptions::default());
    let names: Vec<String> = (0..12).map(|i| format!("{}", (b'z' - i as u8) as char)).collect();
    for (i, name) in names.iter().enumerate() {
        [&a, &b][i % 3 % 2].put_invocations(&[queued(name)]).unwrap();
    }
    let claimed = b.claim_invocations("w", 100, T0, HOUR).unwrap();
    assert_eq!(ids(&claimed), names.iter().map(String::as_str).collect::<Vec<_>>());
    // A store connected later continues the same sequence.
    let c = t.connect(m, MongoOptions::default());
    c.put_invocations(&[queued("late")]).unwrap();
    a.put_invocations(&[queued("later")]).unwrap();
    assert_eq!(ids(&c.claim_invocations("w", 100, T0, HOUR).unwrap()), ["late", "later"]);
}

#[test]
fn the_records_total_is_one_document_kept_by_every_store_and_counted_again_on_connect() {
    let m = mongo();
    let t = TestDb::new(m);
    let a = t.connect(m, MongoOptions::default());
    let b = t.connect(m, MongoOptions::default());
    let kept = || -> i64 {
        let counters = t.db.collection::<Document>(COUNTERS);
        let found = counters.find_one(doc! { "_id": INVOCATIONS }).run().unwrap().expect("the counter");
        match found.get("bytes") {
            Some(Bson::Int64(n)) => *n,
            Some(Bson::Int32(n)) => i64::from(*n),
            _ => panic!("no total in {found}"),
        }
    };
    let records: Vec<InvocationRecord> = (0..40).map(|i| queued(&format!("r{i:02}"))).collect();
    a.put_invocations(&records[..20]).unwrap();
    b.put_invocations(&records[20..]).unwrap();
    let sum: u64 = records.iter().map(InvocationRecord::stored_size).sum();
    assert_eq!(kept(), sum as i64);
    // Each store reads the one document.
    assert_eq!((a.invocation_bytes().unwrap(), b.invocation_bytes().unwrap()), (sum, sum));
    // Records deleted behind the stores' backs (as the TTL index would):
    // the total is off until a store connects and counts it again.
    let invocations = t.db.collection::<Document>(INVOCATIONS);
    let gone = invocations.delete_many(doc! { "_id": { "$in": ["r00", "r01"] } }).run().unwrap();
    assert_eq!(gone.deleted_count, 2);
    assert_eq!(a.invocation_bytes().unwrap(), sum);
    let c = t.connect(m, MongoOptions::default());
    let left = sum - records[0].stored_size() - records[1].stored_size();
    assert_eq!((c.invocation_bytes().unwrap(), a.invocation_bytes().unwrap()), (left, left));
    // A database written before the total was kept: counted on first use.
    t.db.collection::<Document>(COUNTERS)
        .update_one(doc! { "_id": INVOCATIONS }, doc! { "$unset": { "bytes": "" } })
        .run()
        .unwrap();
    assert_eq!(b.invocation_bytes().unwrap(), left);
    assert_eq!(kept(), left as i64);
}
