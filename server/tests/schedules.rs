//! Schedules end to end: firings with their scheduled time in the args,
//! the API's checks, the overlap policies, catch-up after downtime, and
//! exactly one firing per scheduled time across two servers on one
//! MongoDB (nx-27017). When a cron expression fires in a time zone, DST
//! included, is tested with an injected clock in `sl-schedule`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_until, TestServer};
use serde_json::{json, Value};
use sl_testkit::Mongo;

/// An action that returns its arguments.
const ECHO: &str = "function main(a) return a end";

fn create_schedule(s: &TestServer, body: Value) {
    let r = s.post("/schedules", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
}

/// The scheduled times of the records of `action` (finished or not).
fn fired(s: &TestServer, action: &str) -> Vec<i64> {
    let recs = s.get(&format!("/invocations?action={action}&limit=1000")).json();
    let mut times: Vec<i64> =
        recs.as_array().unwrap().iter().filter_map(|r| r["args"]["schedule"]["scheduled"].as_i64()).collect();
    times.sort_unstable();
    times
}

#[test]
fn an_interval_schedule_fires_with_its_scheduled_time() {
    let s = TestServer::start("");
    assert_eq!(s.create("echo", ECHO, "").status, 201);
    create_schedule(&s, json!({"name": "tick", "action": "echo", "spec": "@every 1s", "args": {"who": "tick"}}));
    let info = s.get("/schedules/tick").json();
    let created = info["created"].as_i64().unwrap();
    assert_eq!(info["next"], json!(created + 1000), "{info}");
    assert!(wait_until(Duration::from_secs(10), || fired(&s, "echo").len() >= 3));
    let times = fired(&s, "echo");
    for (i, t) in times.iter().enumerate() {
        assert_eq!(*t, created + 1000 * (i as i64 + 1), "{times:?}");
    }
    let recs = s.get("/invocations?action=echo&limit=1000").json();
    let first =
        recs.as_array().unwrap().iter().find(|r| r["args"]["schedule"]["scheduled"] == json!(times[0])).unwrap();
    assert_eq!(first["args"]["who"], "tick");
    assert_eq!(first["args"]["schedule"]["name"], "tick");
    assert!(first["args"]["schedule"]["scheduled_at"].as_str().unwrap().ends_with('Z'));
    let info = s.get("/schedules/tick").json();
    assert!(info["fired"].as_u64().unwrap() >= 3, "{info}");
    assert!(info["last_invocation"].is_string(), "{info}");
    // Firings are counted, with their lag.
    let metrics = s.get("/metrics").text();
    assert!(metrics.contains("sl_schedule_firings_total{schedule=\"tick\"}"), "{metrics}");
    assert!(metrics.contains("sl_schedule_lag_seconds{schedule=\"tick\"}"), "{metrics}");
    // A deleted schedule stops; its action could not be deleted before.
    let r = s.request("DELETE", "/actions/echo", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("schedules fire action 'echo' (tick)"), "{}", r.text());
    assert_eq!(s.request("DELETE", "/schedules/tick", None).status, 200);
    std::thread::sleep(Duration::from_millis(700));
    let n = fired(&s, "echo").len();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(fired(&s, "echo").len(), n, "no firing after the delete");
}

#[test]
fn bad_schedules_are_refused_clearly() {
    let s = TestServer::start("");
    assert_eq!(s.create("echo", ECHO, "").status, 201);
    for (body, status, says) in [
        (json!({"name": "a", "action": "echo", "spec": "61 * * * *"}), 400, "invalid cron expression '61 * * * *'"),
        (json!({"name": "a", "action": "echo", "spec": "* * *"}), 400, "invalid cron expression"),
        (json!({"name": "a", "action": "echo", "spec": "@every 500ms"}), 400, "interval must be at least 1s"),
        (
            json!({"name": "a", "action": "echo", "spec": "0 9 * * *", "time_zone": "Mars/Base"}),
            400,
            "unknown time zone 'Mars/Base'",
        ),
        (json!({"name": "a", "action": "echo", "spec": "0 0 30 2 *"}), 400, "would never fire"),
        (json!({"name": "a", "action": "echo", "spec": "@daily", "overlap": "sometimes"}), 400, "sometimes"),
        (json!({"name": "a", "action": "echo", "spec": "@daily", "catch_up": "all:0"}), 400, "all:0"),
        (json!({"name": "a", "action": "echo", "spec": "@daily", "args": [1]}), 400, "args must be a JSON object"),
        (json!({"name": "a b", "action": "echo", "spec": "@daily"}), 400, "invalid schedule name"),
        (json!({"name": "a", "action": "nope", "spec": "@daily"}), 404, "no action named 'nope'"),
        (json!({"name": "a", "action": "echo", "spec": "@daily", "colour": 1}), 400, "colour"),
    ] {
        let r = s.post("/schedules", &body.to_string());
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(says), "{body}: {}", r.text());
    }
    create_schedule(&s, json!({"name": "a", "action": "echo", "spec": "0 9 * * *", "time_zone": "Europe/London"}));
    assert_eq!(s.post("/schedules", r#"{"name":"a","action":"echo","spec":"@daily"}"#).status, 409);
    assert_eq!(s.get("/schedules/nope").status, 404);
    assert_eq!(s.request("DELETE", "/schedules/nope", None).status, 404);
    // 09:00 in London, whatever the season.
    let info = s.get("/schedules/a").json();
    let next = info["next_at"].as_str().unwrap();
    assert!(next.ends_with("T09:00:00.000Z") || next.ends_with("T08:00:00.000Z"), "{info}");
    let list = s.get("/schedules").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// With `skip`, a firing due while the last one still runs is skipped, so
/// runs never overlap; with `queue`, it waits, and goes once that one
/// ended (never skipped, never overlapping); with `allow`, runs overlap.
#[test]
fn overlap_skip_and_queue_never_run_two_at_once_and_allow_does() {
    let s = TestServer::start("Invocations { concurrency = 8 }\n");
    // Runs for 2.5 s.
    let slow =
        "function main(a) local t = os.clock() while os.clock() - t < 2.5 do end return a.schedule.scheduled end";
    assert_eq!(s.create("slow", slow, r#""timeout":10000"#).status, 201);
    assert_eq!(s.create("slow2", slow, r#""timeout":10000"#).status, 201);
    assert_eq!(s.create("slow3", slow, r#""timeout":10000"#).status, 201);
    create_schedule(&s, json!({"name": "skip", "action": "slow", "spec": "@every 1s", "overlap": "skip"}));
    create_schedule(&s, json!({"name": "queue", "action": "slow3", "spec": "@every 1s", "overlap": "queue"}));
    create_schedule(&s, json!({"name": "allow", "action": "slow2", "spec": "@every 1s", "overlap": "allow"}));
    std::thread::sleep(Duration::from_secs(8));
    let spans = |action: &str| -> Vec<(i64, i64)> {
        let recs = s.get(&format!("/invocations?action={action}&limit=1000")).json();
        let mut v: Vec<(i64, i64)> = recs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| Some((r["started"].as_i64()?, r["finished"].as_i64()?)))
            .collect();
        v.sort_unstable();
        v
    };
    let overlaps = |v: &[(i64, i64)]| v.windows(2).filter(|w| w[1].0 < w[0].1).count();
    let skipped = spans("slow");
    assert!(skipped.len() >= 2, "{skipped:?}");
    assert_eq!(overlaps(&skipped), 0, "skip: runs overlapped: {skipped:?}");
    let allowed = spans("slow2");
    assert!(overlaps(&allowed) >= 2, "allow: runs should overlap: {allowed:?}");
    let queued = spans("slow3");
    assert!(queued.len() >= 2, "{queued:?}");
    assert_eq!(overlaps(&queued), 0, "queue: runs overlapped: {queued:?}");
    let metrics = s.get("/metrics").text();
    let count = |name: &str| -> u64 {
        let line =
            metrics.lines().find(|l| l.starts_with(&format!("sl_schedule_skipped_total{{schedule=\"{name}\"}}")));
        line.map_or(0, |l| l.split(' ').nth(1).unwrap().parse().unwrap())
    };
    assert!(count("skip") >= 2, "skip skipped {}", count("skip"));
    assert_eq!(count("queue"), 0, "queue never skips");
    // A queued firing starts as soon as the last one ended (within a scan
    // or two), where `skip` waits for the next beat after it.
    for w in queued.windows(2) {
        assert!(w[1].0 - w[0].1 <= 1500, "queue: {} ms between a run and the next: {queued:?}", w[1].0 - w[0].1);
    }
}

/// After downtime, `none` runs no missed firing, `last` one, `all:3` three
/// (the most recent), then each goes on on time.
#[test]
fn catch_up_after_downtime_follows_the_policy() {
    let mut s = TestServer::start("");
    for a in ["none", "last", "all"] {
        assert_eq!(s.create(a, ECHO, "").status, 201);
    }
    for (name, policy) in [("none", "none"), ("last", "last"), ("all", "all:3")] {
        create_schedule(&s, json!({"name": name, "action": name, "spec": "@every 1s", "catch_up": policy}));
    }
    assert!(wait_until(Duration::from_secs(10), || ["none", "last", "all"].iter().all(|a| fired(&s, a).len() >= 2)));
    s.kill9();
    std::thread::sleep(Duration::from_secs(7));
    s = s.restart();
    assert!(wait_until(Duration::from_secs(10), || ["none", "last", "all"].iter().all(|a| {
        let t = fired(&s, a);
        t.windows(2).any(|w| w[1] - w[0] > 1000) && t.len() >= 6
    })));
    // The missed firings that ran are marked `caught_up`.
    let caught = |a: &str| -> usize {
        let recs = s.get(&format!("/invocations?action={a}&limit=1000")).json();
        recs.as_array().unwrap().iter().filter(|r| r["args"]["schedule"]["caught_up"] == json!(true)).count()
    };
    let (none, last, all) = (caught("none"), caught("last"), caught("all"));
    eprintln!("missed firings run after 7 s of downtime: none {none}, last {last}, all:3 {all}");
    assert_eq!((none, last, all), (0, 1, 3));
    // Then each goes on on time, after a gap.
    for a in ["none", "last", "all"] {
        let t = fired(&s, a);
        let gaps = t.windows(2).filter(|w| w[1] - w[0] > 1000).count();
        assert_eq!(gaps, 1, "{a}: {t:?}");
    }
}

/// Two servers on one MongoDB scan the same schedules: every scheduled
/// time fires exactly once.
#[test]
fn each_firing_happens_once_across_two_servers() {
    let m = Mongo::start();
    let config = format!("Mongodb {{ url = {:?}, database = {:?} }}\n", m.uri(), m.fresh_db());
    let a = TestServer::start(&config);
    let b = TestServer::start(&config);
    assert_eq!(a.create("echo", ECHO, "").status, 201);
    create_schedule(&a, json!({"name": "tick", "action": "echo", "spec": "@every 1s"}));
    let created = a.get("/schedules/tick").json()["created"].as_i64().unwrap();
    assert!(wait_until(Duration::from_secs(20), || fired(&b, "echo").len() >= 6));
    let times = fired(&b, "echo");
    let distinct: BTreeSet<i64> = times.iter().copied().collect();
    assert_eq!(distinct.len(), times.len(), "a firing made twice: {times:?}");
    for (i, t) in times.iter().enumerate() {
        assert_eq!(*t, created + 1000 * (i as i64 + 1), "a firing missed: {times:?}");
    }
}
