//! Tests through the `Plugin` trait against a MongoDB-protocol server from
//! `sl-testkit` (`$MONGODB_URI`, or a private nx-27017).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;

/// One server for the tests that do not stop it; each test has its own
/// database.
fn shared() -> &'static sl_testkit::Mongo {
    static MONGO: OnceLock<sl_testkit::Mongo> = OnceLock::new();
    MONGO.get_or_init(sl_testkit::Mongo::start)
}

fn plugin_on(mongo: &sl_testkit::Mongo, extra: Value) -> Mongo {
    let mut config = json!({ "url": mongo.uri(), "database": mongo.fresh_db(), "timeout": 2000 });
    if let (Value::Object(c), Value::Object(e)) = (&mut config, extra) {
        c.extend(e);
    }
    Mongo::init(config).unwrap_or_else(|e| panic!("init: {e}"))
}

fn plugin() -> Mongo {
    plugin_on(shared(), json!({}))
}

fn ok(p: &Mongo, action: &str, payload: Value) -> Value {
    p.call(action, payload.clone()).unwrap_or_else(|e| panic!("{action} {payload}: {e}"))
}

fn err(p: &Mongo, action: &str, payload: Value) -> String {
    match p.call(action, payload.clone()) {
        Ok(v) => panic!("{action} {payload}: expected an error, got {v}"),
        Err(e) => e,
    }
}

fn is_oid_hex(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn names(docs: &Value) -> Vec<&str> {
    docs.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect()
}

#[test]
fn insert_returns_the_id_and_query_finds_with_gt() {
    let p = plugin();
    let id = ok(&p, "insert", json!({"collection": "mongoplugin", "data": {"name": "old", "age": 70}}));
    assert!(is_oid_hex(&id), "{id}");
    ok(&p, "insert", json!({"collection": "mongoplugin", "data": {"name": "young", "age": 20}}));
    ok(&p, "insert", json!({"collection": "mongoplugin", "data": {"name": "older", "age": 90}}));

    let docs = ok(&p, "query", json!({"collection": "mongoplugin", "query": {"age": {"$gt": 50}}, "sort": {"age": 1}}));
    assert_eq!(names(&docs), ["old", "older"]);
    // ObjectIds come back in Extended JSON, and age stays an integer.
    assert_eq!(docs[0]["_id"], json!({"$oid": id}));
    assert_eq!(docs[0]["age"], json!(70));
    assert!(docs[0]["age"].is_i64());

    // No query: every document.
    assert_eq!(ok(&p, "query", json!({"collection": "mongoplugin"})).as_array().unwrap().len(), 3);
    // An empty Lua table may arrive as an empty list.
    assert_eq!(ok(&p, "query", json!({"collection": "mongoplugin", "query": []})).as_array().unwrap().len(), 3);
    // A collection that does not exist is empty.
    assert_eq!(ok(&p, "query", json!({"collection": "nothing"})), json!([]));
}

#[test]
fn insert_many_and_object_id_round_trip() {
    let p = plugin();
    let ids = ok(&p, "insert", json!({"collection": "c", "data": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}));
    let ids = ids.as_array().unwrap().clone();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(is_oid_hex), "{ids:?}");

    // Query by ObjectId in Extended JSON: the second id is "b".
    let docs = ok(&p, "query", json!({"collection": "c", "query": {"_id": {"$oid": ids[1]}}}));
    assert_eq!(names(&docs), ["b"]);
    // The returned _id can be passed back as it is.
    let again = ok(&p, "query", json!({"collection": "c", "query": {"_id": docs[0]["_id"].clone()}}));
    assert_eq!(again, docs);

    // An _id of the caller's own is kept; a string id comes back as it is.
    assert_eq!(ok(&p, "insert", json!({"collection": "c", "data": {"_id": "mine", "name": "d"}})), json!("mine"));
    let oid = "5ae8f10fbb57530001473b36";
    assert_eq!(ok(&p, "insert", json!({"collection": "c", "data": {"_id": {"$oid": oid}, "name": "e"}})), json!(oid));
    assert_eq!(ok(&p, "query", json!({"collection": "c", "query": {"_id": {"$oid": oid}}}))[0]["name"], "e");

    // A duplicate id is a write error with MongoDB's code.
    let e = err(&p, "insert", json!({"collection": "c", "data": {"_id": "mine"}}));
    assert!(e.starts_with("mongo insert: ") && e.contains("11000"), "{e}");
    let e = err(&p, "insert", json!({"collection": "c", "data": [{"_id": "new"}, {"_id": "mine"}]}));
    assert!(e.contains("data[2]") && e.contains("11000"), "{e}");
}

#[test]
fn dates_round_trip_in_extended_json() {
    let p = plugin();
    let when = "2024-01-01T00:00:00Z";
    ok(&p, "insert", json!({"collection": "events", "data": {"name": "new year", "when": {"$date": when}}}));
    ok(
        &p,
        "insert",
        json!({"collection": "events", "data": {"name": "old", "when": {"$date": "2001-05-06T07:08:09.123Z"}}}),
    );
    let docs = ok(&p, "query", json!({"collection": "events", "query": {"name": "new year"}}));
    assert_eq!(docs[0]["when"], json!({"$date": when}));
    let docs =
        ok(&p, "query", json!({"collection": "events", "query": {"when": {"$gt": {"$date": "2010-01-01T00:00:00Z"}}}}));
    assert_eq!(names(&docs), ["new year"]);
    let docs = ok(&p, "query", json!({"collection": "events", "query": {"name": "old"}}));
    assert_eq!(docs[0]["when"], json!({"$date": "2001-05-06T07:08:09.123Z"}));
}

#[test]
fn limit_skip_sort_and_projection() {
    let p = plugin();
    let data: Vec<Value> = (0..12).map(|i| json!({"name": format!("n{i:02}"), "i": i, "group": i % 2})).collect();
    ok(&p, "insert", json!({"collection": "many", "data": data}));

    let docs = ok(&p, "query", json!({"collection": "many", "sort": {"i": -1}, "limit": 3}));
    assert_eq!(names(&docs), ["n11", "n10", "n09"]);
    let docs = ok(&p, "query", json!({"collection": "many", "sort": {"i": 1}, "skip": 10}));
    assert_eq!(names(&docs), ["n10", "n11"]);
    // Several sort keys, in order, as a list.
    let docs = ok(&p, "query", json!({"collection": "many", "sort": [{"group": 1}, {"i": -1}], "limit": 2}));
    assert_eq!(names(&docs), ["n10", "n08"]);
    let docs = ok(&p, "query", json!({"collection": "many", "query": {"i": 4}, "projection": {"_id": 0, "name": 1}}));
    assert_eq!(docs, json!([{"name": "n04"}]));

    for bad in [json!(0), json!(MAX_LIMIT + 1), json!(-5), json!(2.5), json!("10")] {
        let e = err(&p, "query", json!({"collection": "many", "limit": bad}));
        assert!(e.contains("'limit' must be an integer from 1 to 10000"), "{e}");
    }
}

#[test]
fn default_limit_bounds_a_query() {
    let p = plugin();
    let data: Vec<Value> = (0..DEFAULT_LIMIT + 5).map(|i| json!({"i": i})).collect();
    let ids = ok(&p, "insert", json!({"collection": "big", "data": data}));
    assert_eq!(ids.as_array().unwrap().len() as i64, DEFAULT_LIMIT + 5);
    let docs = ok(&p, "query", json!({"collection": "big"}));
    assert_eq!(docs.as_array().unwrap().len() as i64, DEFAULT_LIMIT);
    let docs = ok(&p, "query", json!({"collection": "big", "limit": DEFAULT_LIMIT + 2}));
    assert_eq!(docs.as_array().unwrap().len() as i64, DEFAULT_LIMIT + 2);
}

#[test]
fn update_counts_and_upsert() {
    let p = plugin();
    ok(
        &p,
        "insert",
        json!({"collection": "u", "data": [{"name": "a", "n": 1}, {"name": "b", "n": 1}, {"name": "c", "n": 2}]}),
    );

    let r = ok(&p, "update", json!({"collection": "u", "query": {"n": 1}, "update": {"$set": {"seen": true}}}));
    assert_eq!(r, json!({"matched": 1, "modified": 1}));
    let r = ok(
        &p,
        "update",
        json!({"collection": "u", "query": {"n": 1}, "update": {"$set": {"seen": true}}, "many": true}),
    );
    assert_eq!(r, json!({"matched": 2, "modified": 1}));
    let r = ok(&p, "update", json!({"collection": "u", "query": {"name": "c"}, "update": {"$inc": {"n": 5}}}));
    assert_eq!(r, json!({"matched": 1, "modified": 1}));
    assert_eq!(ok(&p, "query", json!({"collection": "u", "query": {"name": "c"}}))[0]["n"], json!(7));
    let r = ok(&p, "update", json!({"collection": "u", "query": {"name": "zz"}, "update": {"$set": {"n": 0}}}));
    assert_eq!(r, json!({"matched": 0, "modified": 0}));

    let r = ok(
        &p,
        "update",
        json!({"collection": "u", "query": {"name": "new"}, "update": {"$set": {"n": 9}}, "upsert": true}),
    );
    assert_eq!((r["matched"].clone(), r["modified"].clone()), (json!(0), json!(0)));
    assert!(is_oid_hex(&r["upserted_id"]), "{r}");
    let docs = ok(&p, "query", json!({"collection": "u", "query": {"_id": {"$oid": r["upserted_id"]}}}));
    assert_eq!((docs[0]["name"].clone(), docs[0]["n"].clone()), (json!("new"), json!(9)));

    let e = err(&p, "update", json!({"collection": "u", "query": {}, "update": {"n": 3}}));
    assert!(e.contains("only update operators") && e.contains("found 'n'"), "{e}");
    let e = err(&p, "update", json!({"collection": "u", "query": {}}));
    assert!(e.contains("missing 'update'"), "{e}");
    let e = err(&p, "update", json!({"collection": "u", "update": {"$set": {"n": 1}}}));
    assert!(e.contains("missing 'query'"), "{e}");
    let e = err(&p, "update", json!({"collection": "u", "query": {}, "update": {"$set": {}}, "many": "yes"}));
    assert!(e.contains("'many' must be true or false, got a string"), "{e}");
}

#[test]
fn delete_counts_and_refuses_accidental_wipes() {
    let p = plugin();
    ok(&p, "insert", json!({"collection": "d", "data": [{"k": 1}, {"k": 1}, {"k": 2}, {"k": 3}]}));
    assert_eq!(ok(&p, "delete", json!({"collection": "d", "query": {"k": 1}})), json!({"deleted": 1}));
    assert_eq!(ok(&p, "delete", json!({"collection": "d", "query": {"k": 9}, "many": true})), json!({"deleted": 0}));
    assert_eq!(
        ok(&p, "delete", json!({"collection": "d", "query": {"k": {"$lt": 3}}, "many": true})),
        json!({"deleted": 2})
    );

    let e = err(&p, "delete", json!({"collection": "d", "query": {}, "many": true}));
    assert!(e.contains("add all = true"), "{e}");
    let e = err(&p, "delete", json!({"collection": "d", "many": true}));
    assert!(e.contains("missing 'query'"), "{e}");
    assert_eq!(ok(&p, "query", json!({"collection": "d"})).as_array().unwrap().len(), 1);

    ok(&p, "insert", json!({"collection": "d", "data": [{"k": 4}, {"k": 5}]}));
    assert_eq!(ok(&p, "delete", json!({"collection": "d", "many": true, "all": true})), json!({"deleted": 3}));
    assert_eq!(ok(&p, "query", json!({"collection": "d"})), json!([]));
}

#[test]
fn payloads_are_validated() {
    let p = plugin();
    let cases = [
        ("insert", json!({"data": {"a": 1}}), "mongo insert: missing 'collection'"),
        ("insert", json!({"collection": 5, "data": {}}), "'collection' must be a string, got a number"),
        ("insert", json!({"collection": "", "data": {}}), "invalid collection name \"\": it is empty"),
        ("insert", json!({"collection": "a$b", "data": {}}), "it contains '$'"),
        ("insert", json!({"collection": "system.users", "data": {}}), "reserved"),
        ("insert", json!({"collection": "x".repeat(300), "data": {}}), "too long"),
        ("insert", json!({"collection": "c"}), "missing 'data'"),
        ("insert", json!({"collection": "c", "data": "x"}), "'data' must be a table or a list of tables, got a string"),
        ("insert", json!({"collection": "c", "data": []}), "empty list"),
        ("insert", json!({"collection": "c", "data": [{}, 3]}), "data[2] must be a table, got a number"),
        ("insert", json!({"collection": "c", "data": {}, "dta": 1}), "unknown field 'dta' (known: collection, data)"),
        (
            "insert",
            json!({"collection": "c", "data": {"_id": {"$oid": "nothex"}}}),
            "'data' is not valid Extended JSON",
        ),
        ("insert", json!([1, 2]), "the payload must be a table"),
        ("insert", Value::Null, "the payload must be a table"),
        ("query", json!({"collection": "c", "query": 3}), "'query' must be a table, got a number"),
        ("query", json!({"collection": "c", "query": {"d": {"$date": "not a date"}}}), "not valid Extended JSON"),
        ("query", json!({"collection": "c", "skip": -1}), "'skip' must be an integer"),
        ("query", json!({"collection": "c", "sort": [1]}), "sort[1] must be a table"),
        ("query", json!({"collection": "c", "querry": {}}), "unknown field 'querry'"),
        ("delete", json!({"collection": "c", "query": {}, "all": 1}), "'all' must be true or false"),
        ("update", json!({"collection": "c", "query": {}, "update": 1}), "'update' must be a table"),
        ("update", json!({"collection": "c", "query": {}, "update": {}}), "'update' is empty"),
    ];
    for (action, payload, want) in cases {
        let e = err(&p, action, payload.clone());
        assert!(e.contains(want), "{action} {payload}: {e:?} should contain {want:?}");
        assert!(e.starts_with(&format!("mongo {action}: ")), "{e}");
    }
    assert_eq!(err(&p, "find", json!({})), "mongo: unknown action 'find' (known: insert, query, update, delete)");
}

#[test]
fn configuration_is_validated() {
    let cases = [
        (json!({"nope": 1}), "unknown setting 'nope' (known: call_timeout, database, port, timeout, url)"),
        (json!({"port": 0}), "'port' must be a port number from 1 to 65535"),
        (json!({"port": 70000}), "'port' must be a port number"),
        (json!({"port": "27017"}), "'port' must be a port number"),
        (json!({"url": 5}), "'url' must be a connection string"),
        (json!({"url": "http://x"}), "invalid 'url' http://x"),
        (json!({"url": "mongodb://u:secret@h/?authMechanism=NOPE"}), "u:***@h"),
        (json!({"url": "mongodb+srv://cluster.example.com", "port": 1}), "cannot be used with a mongodb+srv://"),
        (json!({"database": "a.b"}), "invalid database name \"a.b\""),
        (json!({"database": ""}), "invalid database name"),
        (json!({"database": 3}), "'database' must be a string"),
        (json!({"timeout": 0}), "'timeout' must be milliseconds"),
        (json!({"call_timeout": "1s"}), "'call_timeout' must be milliseconds"),
        (json!(7), "the configuration must be a table"),
    ];
    for (config, want) in cases {
        match Mongo::init(config.clone()) {
            Ok(_) => panic!("{config}: expected an error"),
            Err(e) => {
                assert!(e.contains(want), "{config}: {e:?} should contain {want:?}");
                assert!(!e.contains("secret"), "{e}");
            }
        }
    }
}

#[test]
fn database_defaults_and_url_forms() {
    // None of these contacts a server.
    assert_eq!(Mongo::init(json!({})).unwrap().database_name(), DEFAULT_DATABASE);
    assert_eq!(Mongo::init(Value::Null).unwrap().database_name(), "sl");
    assert_eq!(Mongo::init(json!({"url": "mongodb://h/fromurl"})).unwrap().database_name(), "fromurl");
    let p = Mongo::init(json!({"url": "mongodb://h/fromurl", "database": "mine"})).unwrap();
    assert_eq!(p.database_name(), "mine");
    assert_eq!(Mongo::init(json!({"url": "database"})).unwrap().hosts, "database:27017");
    assert_eq!(Mongo::init(json!({"url": "mongodb://database", "port": 1234})).unwrap().hosts, "database:1234");
    assert_eq!(Mongo::init(json!({"url": "mongodb://a:1,b", "port": 2})).unwrap().hosts, "a:1,b:2");
}

#[test]
fn the_port_setting_reaches_a_server_whose_url_has_none() {
    let mongo = shared();
    if !mongo.is_local() {
        return; // $MONGODB_URI may be any connection string
    }
    let port: u16 = mongo.uri().rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
    let p =
        Mongo::init(json!({"url": "127.0.0.1", "port": port, "database": mongo.fresh_db(), "timeout": 2000})).unwrap();
    assert!(is_oid_hex(&ok(&p, "insert", json!({"collection": "c", "data": {"x": 1}}))));
}

#[test]
fn init_does_not_wait_for_mongodb_and_calls_fail_fast_while_it_is_down() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = Instant::now();
    let p = Mongo::init(json!({"url": format!("mongodb://127.0.0.1:{port}"), "timeout": 500})).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "init took {:?}", start.elapsed());
    let start = Instant::now();
    let e = err(&p, "query", json!({"collection": "c"}));
    assert!(start.elapsed() < Duration::from_secs(4), "the call took {:?}", start.elapsed());
    assert!(e.starts_with(&format!("mongo query: MongoDB at 127.0.0.1:{port} is unreachable")), "{e}");
    // Shutting down is quick too, and later calls fail clearly.
    let start = Instant::now();
    p.shutdown();
    assert!(start.elapsed() < Duration::from_secs(4), "shutdown took {:?}", start.elapsed());
    assert!(err(&p, "query", json!({"collection": "c"})).contains("shut down"));
}

#[test]
fn calls_fail_quickly_while_the_server_is_stopped_and_work_when_it_is_back() {
    let mut mongo = sl_testkit::Mongo::start_local();
    let p = plugin_on(&mongo, json!({"timeout": 1000}));
    ok(&p, "insert", json!({"collection": "c", "data": {"n": 1}}));

    mongo.stop();
    let calls = [
        ("insert", json!({"collection": "c", "data": {"n": 2}})),
        ("query", json!({"collection": "c", "query": {}})),
        ("delete", json!({"collection": "c", "query": {"n": 1}})),
    ];
    for (action, payload) in calls {
        let start = Instant::now();
        let e = err(&p, action, payload);
        let took = start.elapsed();
        eprintln!("{action} took {took:?}: {e}");
        assert!(took < Duration::from_secs(5), "{action} took {took:?}: {e}");
        assert!(e.starts_with(&format!("mongo {action}: ")), "{e}");
    }

    mongo.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let docs = loop {
        match p.call("query", json!({"collection": "c"})) {
            Ok(docs) => break docs,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not back yet: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("MongoDB is back but calls still fail: {e}\n{}", mongo.output()),
        }
    };
    assert_eq!(docs[0]["n"], json!(1));
}

#[test]
fn concurrent_calls_share_the_client() {
    let p = plugin();
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = &p;
            s.spawn(move || {
                for i in 0..5 {
                    ok(p, "insert", json!({"collection": "conc", "data": {"t": t, "i": i}}));
                }
            });
        }
    });
    assert_eq!(ok(&p, "query", json!({"collection": "conc"})).as_array().unwrap().len(), 20);
}
