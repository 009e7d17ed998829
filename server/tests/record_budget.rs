//! The store budget (`Invocations.store_budget`) against a real `slserver`
//! on SQLite with a budget of 1 MiB: a flood of route requests whose
//! records keep about 60 KB each (a 30 KB body and a 30 KB result, both
//! under `record_limit`) leaves a database of a few MiB, not the 24 MB the
//! records would take; the newest records stay readable and the oldest
//! answer what a purged record answers (404 `not_found`); the server keeps
//! serving; and a restarted server knows the total again at once.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{serial, wait_until, TestServer};
use serde_json::Value;

/// `Invocations.store_budget` of these tests, in bytes.
const BUDGET: u64 = 1 << 20;

/// Bytes of each request body and of each result.
const PART: usize = 30_000;

/// Requests of the flood, and client threads sending them.
const REQUESTS: usize = 400;
const CLIENTS: usize = 4;

fn config() -> String {
    format!("Routes {{ port = 0 }}\nInvocations {{ store_budget = {} }}\nLimits {{ warm_instances = 4 }}", BUDGET >> 20)
}

/// Bytes of the database file and of its write-ahead log.
fn db_sizes(dir: &Path) -> (u64, u64) {
    let len = |name: &str| std::fs::metadata(dir.join("data").join(name)).map_or(0, |m| m.len());
    (len("sl.db"), len("sl.db-wal"))
}

/// The bytes of JSON the stored records' arguments and results hold (what
/// the store counts, less a few hundred bytes per record), how many there
/// are, and the newest one's id.
fn listed(s: &TestServer) -> (u64, usize, String) {
    let all = s.get("/invocations?limit=1000").json();
    let all = all.as_array().expect("a list");
    let bytes = all.iter().map(|r| (r["args"].to_string().len() + r["result"].to_string().len()) as u64).sum();
    let newest = all.first().map_or(String::new(), |r| r["id"].as_str().unwrap_or("").to_string());
    (bytes, all.len(), newest)
}

/// Sends one route request with a `PART`-byte body; returns the
/// invocation id.
fn hit(s: &TestServer, n: usize) -> String {
    let body = format!("{n:08}-{}", "b".repeat(PART - 9));
    let r = s.web("POST", "/big", &["Content-Type: text/plain"], body.as_bytes());
    assert_eq!(r.status, 200, "request {n}: {}", r.text());
    assert_eq!(r.body.len(), PART + 2, "the client gets the whole answer");
    r.header("X-SL-Invocation").expect("the invocation id").to_string()
}

fn status_of(s: &TestServer, id: &str) -> (u16, Value) {
    let r = s.get(&format!("/invocation/{id}"));
    let body = r.json();
    (r.status, body)
}

#[test]
fn a_flood_of_big_records_stays_within_the_store_budget() {
    let _serial = serial();
    let s = TestServer::start(&config());
    let code = format!("function main(a) return string.rep('r', {PART}) end");
    assert_eq!(s.create("big", &code, "").status, 201);
    assert_eq!(s.route("POST", "/big", "big", "").status, 201);

    // One record, to know its size.
    let first = hit(&s, 0);
    assert!(wait_until(Duration::from_secs(10), || listed(&s).2 == first));
    let (one, ..) = listed(&s);
    assert!(one > 2 * PART as u64 && one < 3 * PART as u64, "a record keeps body and result: {one} bytes");

    // The flood: CLIENTS threads, each with its share of the requests in
    // order; the ids in the order their answers came.
    let ids = Arc::new(Mutex::new(vec![first.clone()]));
    let start = Instant::now();
    let peak = Arc::new(Mutex::new((0u64, 0u64)));
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let (s, ids, peak) = (&s, Arc::clone(&ids), Arc::clone(&peak));
            scope.spawn(move || {
                for i in 0..REQUESTS / CLIENTS {
                    let id = hit(s, 1 + c * REQUESTS + i);
                    ids.lock().unwrap().push(id);
                    if i % 10 == 0 {
                        let (db, wal) = db_sizes(&s.dir);
                        let mut p = peak.lock().unwrap();
                        *p = (p.0.max(db), p.1.max(wal));
                    }
                }
            });
        }
    });
    let flood = start.elapsed();
    let ids = Arc::try_unwrap(ids).unwrap().into_inner().unwrap();
    let written = ids.len() as u64 * one;
    eprintln!("{} route runs ({} MB of records) in {flood:?}", ids.len(), written / 1_000_000);

    // The server keeps serving, on the API and on routes.
    assert_eq!(s.get("/actions").status, 200);
    let newest = hit(&s, 999_999);

    // Once the records are written (the newest is in the store) and the
    // last trim is done, what the store holds is under the budget: listed
    // arguments and results are less than what the store counts.
    assert!(
        wait_until(Duration::from_secs(15), || {
            let (bytes, _, last) = listed(&s);
            bytes <= BUDGET && last == newest
        }),
        "the records stay over the budget: {:?} listed; log:\n{}",
        listed(&s),
        s.log()
    );
    let (kept_bytes, kept, _) = listed(&s);
    eprintln!("{kept} records kept, {} KiB of arguments and results", kept_bytes / 1024);
    assert!(kept >= 8, "the records of the last 7/8 MiB are kept, not fewer: {kept}");
    assert!(s.log().contains("over the store budget: purged the oldest invocation records"));

    // The newest records are there, whole; the oldest are gone as a purged
    // record is.
    for id in ids.iter().rev().take(4).chain([&newest]) {
        // A succeeded record answers its result.
        let (status, result) = status_of(&s, id);
        assert_eq!(status, 200, "{id}: {result}");
        assert_eq!(result.as_str().map(str::len), Some(PART), "{id}: the result is kept whole");
    }
    for id in ids.iter().take(50) {
        let (status, body) = status_of(&s, id);
        assert_eq!((status, body["error"]["kind"].as_str()), (404, Some("not_found")), "{id}: {body}");
    }

    // The files. The database holds the records (at most the budget: a
    // batch of at most an eighth of it is written after a trim that makes
    // room for it), the pages they fill only in part (a 60 KB record takes
    // 15 overflow pages of 4 KiB), the tables' inner pages and the free
    // pages that deleted records leave (reused by the next records, never
    // returned): half a budget covers those. The WAL grows to the writers'
    // checkpoint threshold (10,000 pages of 4 KiB; a thread copies it into
    // the database every 100 ms) plus the last transactions (a batch and a
    // trim's deletions) and is then reused from its start. Without the
    // budget the database would take `written` bytes.
    let (db, wal) = db_sizes(&s.dir);
    let (peak_db, peak_wal) = *peak.lock().unwrap();
    let (peak_db, peak_wal) = (peak_db.max(db), peak_wal.max(wal));
    eprintln!(
        "database {} KiB (peak {} KiB), WAL {} KiB (peak {} KiB), against {} KiB written",
        db / 1024,
        peak_db / 1024,
        wal / 1024,
        peak_wal / 1024,
        written / 1024
    );
    assert!(peak_db <= BUDGET + BUDGET / 2, "the database reached {peak_db} bytes");
    assert!(peak_wal <= (10_000 << 12) + (5 << 20), "the WAL reached {peak_wal} bytes");
    assert!(written > 3 * peak_db, "the flood wrote only {written} bytes of records");
}

#[test]
fn a_restarted_server_knows_the_total_at_once() {
    let _serial = serial();
    let s = TestServer::start(&config());
    let code = format!("function main(a) return string.rep('r', {PART}) end");
    assert_eq!(s.create("big", &code, "").status, 201);
    assert_eq!(s.route("POST", "/big", "big", "").status, 201);
    // Fill the store to just under the budget.
    let mut ids = Vec::new();
    loop {
        ids.push(hit(&s, ids.len()));
        let last = ids.last().unwrap().clone();
        assert!(wait_until(Duration::from_secs(10), || listed(&s).2 == last));
        let (bytes, ..) = listed(&s);
        if bytes + 3 * PART as u64 > BUDGET - BUDGET / 8 {
            break;
        }
        assert!(ids.len() < 100, "the store never filled up: {bytes} bytes");
    }
    let before = listed(&s);
    let s = s.restart();
    assert_eq!(listed(&s), before, "the records survive the restart");
    let oldest = ids[0].clone();
    // A server that started counting from 0 would purge nothing before
    // another MiB was written; this one reads the total at start, so the
    // oldest record goes within the few records that pass the budget.
    let mut after = 0;
    while status_of(&s, &oldest).0 == 200 {
        assert!(
            after < 6,
            "{after} records written after the restart and the oldest is still there; log:\n{}",
            s.log()
        );
        hit(&s, 1000 + after);
        after += 1;
        wait_until(Duration::from_secs(2), || status_of(&s, &oldest).0 != 200);
    }
    eprintln!("the oldest record went after {after} more records ({} listed before)", before.1);
    assert!(after >= 1, "nothing was over the budget before the restart");
    assert_eq!(status_of(&s, &oldest).1["error"]["kind"], "not_found");
    assert_eq!(status_of(&s, ids.last().unwrap()).0, 200, "the newest record before the restart is kept");
}
