//! `slcli topic`, `sub`, `dlq` and the `[topics]` and `[subscriptions]` of
//! `slcli deploy`, end to end: the real `slserver` and the real `slcli`, on
//! 127.0.0.1 with a temporary data directory.
//!
//! Subscribers here record what they get by publishing it to a topic of
//! their own (`seen`), read back with `slcli --json topic read seen`.

mod common;

use std::path::Path;

use common::{assert_exit, fails, json_of, stderr, stdout, wait_until, write, Server};
use serde_json::{json, Value};

/// Records every message of a batch it gets into the topic `seen`, then acks the batch.
const SINK: &str = r#"
function main(b)
  for _, m in ipairs(b.messages) do
    publish("seen", {sub = b.subscription, key = m.key, payload = m.payload, offset = m.offset, partition = m.partition})
  end
end
"#;

/// The payloads recorded in `seen`, in order.
fn seen(server: &Server, cwd: &Path) -> Vec<Value> {
    let messages = json_of(server, cwd, &["topic", "read", "seen", "--limit", "1000"]);
    messages.as_array().unwrap().iter().map(|m| m["payload"].clone()).collect()
}

#[test]
fn topic_commands() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();

    assert_eq!(server.ok(cwd, &["topic", "list"]), "[]\n");
    assert_eq!(
        server.ok(cwd, &["topic", "create", "orders", "--partitions", "2", "--retention-secs", "3600"]),
        "topic created orders (2 partitions, kept 3600 s, any size)\n"
    );
    let created = json_of(&server, cwd, &["topic", "create", "notes", "-p", "1", "--retention-bytes", "100000"]);
    assert_eq!((created["name"].as_str(), created["retention_bytes"].as_u64()), (Some("notes"), Some(100_000)));
    // A duplicate, a bad name, too many partitions.
    fails(&server, cwd, &["topic", "create", "orders"], "a topic named 'orders' already exists (409 conflict)");
    fails(&server, cwd, &["topic", "create", "bad name"], "invalid topic name 'bad name'");
    fails(&server, cwd, &["topic", "create", "x", "-p", "1000"], "partitions must be from 1 to 256 (400 bad_request)");
    let o = fails(&server, cwd, &["--json", "topic", "create", "orders"], "(409 conflict)");
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap()["error"]["kind"], "conflict");

    let table = server.ok(cwd, &["topic", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("NAME    PARTITIONS  MESSAGES  BYTES  RETENTION  RETENTION BYTES  CREATED"),
        "{table}"
    );
    assert!(lines[1].starts_with("notes   1           0         0      none       100000 bytes     "), "{table}");
    assert!(lines[2].starts_with("orders  2           0         0      3600 s     none             "), "{table}");
    assert_eq!(json_of(&server, cwd, &["topic", "list"]).as_array().unwrap().len(), 2);

    // Publishing: inline, from a file, from standard input; keys pick partitions.
    let published = server.ok(cwd, &["topic", "publish", "orders", r#"{"n": 1}"#, "--key", "k1"]);
    assert!(
        published.starts_with("published to orders partition ") && published.ends_with(" offset 0\n"),
        "{published}"
    );
    write(cwd, "m.json", "{\"n\": 2}\n");
    server.ok(cwd, &["topic", "publish", "orders", "-d", "m.json", "--key", "k1"]);
    let mut child = server
        .command(cwd, &["topic", "publish", "orders", "-d", "-", "--key", "k1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"\"three\"").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    assert!(stdout(&o).ends_with(" offset 2\n"), "{}", stdout(&o));
    // The same idempotency key again: stored once, answered with its place.
    let first = json_of(&server, cwd, &["topic", "publish", "orders", "4", "--key", "k2", "-k", "order-4"]);
    let again = server.ok(cwd, &["topic", "publish", "orders", "4", "--key", "k2", "-k", "order-4"]);
    assert_eq!(
        again,
        format!(
            "published to orders partition {} offset {} (already: a retained message has this idempotency key)\n",
            first["partition"], first["offset"]
        )
    );
    fails(&server, cwd, &["topic", "publish", "nope", "1"], "no topic named 'nope' (404 not_found)");

    // Reading a partition: the three messages of k1, in order.
    let k1 = published.split(' ').nth(4).unwrap();
    let table = server.ok(cwd, &["topic", "read", "orders", "--partition", k1]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(rows[0].starts_with("PARTITION  OFFSET  KEY  PUBLISHED  ") && rows[0].ends_with("PAYLOAD"), "{table}");
    assert!(rows[1].starts_with(&format!("{k1}          0       k1   ")) && rows[1].ends_with(r#"{"n":1}"#), "{table}");
    assert!(rows[3].ends_with(r#""three""#), "{table}");
    let page = json_of(&server, cwd, &["topic", "read", "orders", "-p", k1, "--from", "1", "-n", "1"]);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!((page[0]["offset"].as_i64(), &page[0]["payload"]), (Some(1), &json!({"n": 2})));
    fails(&server, cwd, &["topic", "read", "orders", "-p", "9"], "topic 'orders' has partitions 0 to 1");
    fails(&server, cwd, &["topic", "read", "nope"], "no topic named 'nope' (404 not_found)");

    // Details, and retention changes that keep what is not given.
    let details = server.ok(cwd, &["topic", "get", "orders"]);
    assert!(
        details
            .starts_with("name:        orders\npartitions:  2\nretention:   kept 3600 s, any size\nmessages:    4\n"),
        "{details}"
    );
    assert!(details.contains("\nPARTITION  FIRST  NEXT\n"), "{details}");
    assert_eq!(
        server.ok(cwd, &["topic", "set", "orders", "--retention-bytes", "5000000"]),
        "topic updated orders (kept 3600 s, at most 5000000 bytes)\n"
    );
    assert_eq!(
        server.ok(cwd, &["topic", "set", "orders", "--retention-secs", "none"]),
        "topic updated orders (kept for any age, at most 5000000 bytes)\n"
    );
    let t = json_of(&server, cwd, &["topic", "get", "orders"]);
    assert_eq!(
        (&t["retention_ms"], &t["retention_bytes"], &t["messages"]),
        (&json!(null), &json!(5_000_000), &json!(4))
    );
    fails(&server, cwd, &["topic", "get", "nope"], "no topic named 'nope' (404 not_found)");
    fails(&server, cwd, &["topic", "set", "nope", "--retention-secs", "5"], "no topic named 'nope' (404 not_found)");
    fails(&server, cwd, &["topic", "get", "bad name"], "invalid topic name");

    assert_eq!(server.ok(cwd, &["topic", "delete", "notes"]), "topic deleted notes\n");
    fails(&server, cwd, &["topic", "delete", "notes"], "no topic named 'notes' (404 not_found)");
    assert_eq!(json_of(&server, cwd, &["topic", "delete", "orders"]), json!({"deleted": true}));
    assert_eq!(server.ok(cwd, &["topic", "list"]), "[]\n");
}

#[test]
fn sub_commands_deliver_and_replay() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(cwd, "sink.lua", SINK);
    server.ok(cwd, &["create", "sink", "-f", "sink.lua"]);
    server.ok(cwd, &["topic", "create", "orders", "-p", "2"]);
    server.ok(cwd, &["topic", "create", "seen", "-p", "1"]);
    server.ok(cwd, &["topic", "publish", "orders", r#"{"n": 0}"#, "--key", "early"]);

    assert_eq!(server.ok(cwd, &["sub", "list"]), "[]\n");
    assert_eq!(
        server.ok(
            cwd,
            &[
                "sub",
                "create",
                "rec",
                "--topic",
                "orders",
                "--action",
                "sink",
                "--batch-size",
                "5",
                "--from",
                "beginning"
            ]
        ),
        "subscription created rec (orders -> sink, from beginning)\n"
    );
    fails(
        &server,
        cwd,
        &["sub", "create", "rec", "--topic", "orders", "--action", "sink"],
        "a subscription named 'rec' already exists (409 conflict)",
    );
    fails(
        &server,
        cwd,
        &["sub", "create", "x", "--topic", "nope", "--action", "sink"],
        "no topic named 'nope' (404 not_found)",
    );
    fails(
        &server,
        cwd,
        &["sub", "create", "x", "--topic", "orders", "--action", "nope"],
        "no action named 'nope' (404 not_found)",
    );
    fails(
        &server,
        cwd,
        &["sub", "create", "bad name", "--topic", "orders", "--action", "sink"],
        "invalid subscription name 'bad name'",
    );
    fails(
        &server,
        cwd,
        &["sub", "create", "x", "--topic", "orders", "--action", "sink", "--batch-size", "0"],
        "batch_size must be from 1 to 1000 (400 bad_request)",
    );

    for n in 1..=4 {
        server.ok(cwd, &["topic", "publish", "orders", &format!("{{\"n\": {n}}}"), "--key", &format!("k{n}")]);
    }
    wait_until(|| format!("{:?}", seen(&server, cwd)), || seen(&server, cwd).len() == 5);
    let mut got: Vec<i64> = seen(&server, cwd).iter().map(|p| p["payload"]["n"].as_i64().unwrap()).collect();
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4], "from the beginning, each once");

    // The cursors moved past everything; the runs are recorded under the action.
    let sub = json_of(&server, cwd, &["sub", "get", "rec"]);
    let cursors: i64 = sub["partitions"].as_array().unwrap().iter().map(|p| p["cursor"].as_i64().unwrap()).sum();
    assert_eq!((cursors, &sub["backlog"], &sub["dead"]), (5, &json!(0), &json!(0)), "{sub}");
    let shown = server.ok(cwd, &["sub", "get", "rec"]);
    assert!(
        shown.starts_with("name:          rec\ntopic:         orders\naction:        sink\nbatch size:    5\n"),
        "{shown}"
    );
    assert!(
        shown.contains("\nbacklog:       0\ndead letters:  0\n\nPARTITION  CURSOR  PENDING  BACKLOG  OWNER\n"),
        "{shown}"
    );
    let runs = server.ok(cwd, &["invocations", "sink"]);
    assert!(runs.lines().count() >= 2 && runs.contains("sink") && runs.contains("succeeded"), "{runs}");
    let table = server.ok(cwd, &["sub", "list"]);
    assert!(
        table.starts_with("NAME  TOPIC   ACTION  BACKLOG  DEAD  CREATED\nrec   orders  sink    0        0     "),
        "{table}"
    );
    assert_eq!(json_of(&server, cwd, &["sub", "list"])[0]["batch_size"], 5);

    // Replay from the beginning: delivered again.
    let reset = server.ok(cwd, &["sub", "reset", "rec", "--to", "beginning"]);
    assert!(
        reset.starts_with("subscription rec reset to beginning\n\nPARTITION  CURSOR\n0          0\n1          0\n"),
        "{reset}"
    );
    wait_until(|| format!("{:?}", seen(&server, cwd)), || seen(&server, cwd).len() == 10);
    // Skip to the end, or to a time to come: nothing more.
    let reset = json_of(&server, cwd, &["sub", "reset", "rec", "--to", "end"]);
    assert_eq!(reset["cursors"].as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).sum::<i64>(), 5, "{reset}");
    server.ok(cwd, &["sub", "reset", "rec", "--to", "2999-01-01T00:00:00Z"]);
    server.ok(cwd, &["sub", "reset", "rec", "--to", "0"]);
    fails(&server, cwd, &["sub", "reset", "nope", "--to", "end"], "no subscription named 'nope' (404 not_found)");

    // A topic with subscriptions cannot go.
    fails(
        &server,
        cwd,
        &["topic", "delete", "orders"],
        "topic 'orders' has subscriptions (rec): delete them first (409 conflict)",
    );
    fails(&server, cwd, &["sub", "get", "nope"], "no subscription named 'nope' (404 not_found)");
    assert_eq!(server.ok(cwd, &["sub", "delete", "rec"]), "subscription deleted rec\n");
    fails(&server, cwd, &["sub", "delete", "rec"], "no subscription named 'rec' (404 not_found)");
    assert_eq!(server.ok(cwd, &["topic", "delete", "orders"]), "topic deleted orders\n");
}

#[test]
fn failing_deliveries_become_dead_letters() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(cwd, "fail.lua", "function main(b)\n  print('got ' .. #b.messages)\n  error('boom')\nend\n");
    server.ok(cwd, &["create", "fail", "-f", "fail.lua"]);
    server.ok(cwd, &["topic", "create", "jobs", "-p", "1"]);
    server.ok(
        cwd,
        &[
            "sub",
            "create",
            "worker",
            "--topic",
            "jobs",
            "--action",
            "fail",
            "--max-retries",
            "1",
            "--backoff-ms",
            "100",
            "--backoff-max-ms",
            "100",
        ],
    );
    assert_eq!(server.ok(cwd, &["dlq", "list", "worker"]), "[]\n");
    server.ok(cwd, &["topic", "publish", "jobs", r#"{"job": 1}"#, "--key", "j1"]);
    server.ok(cwd, &["topic", "publish", "jobs", r#"{"job": 2}"#, "--key", "j2"]);
    let dead = || json_of(&server, cwd, &["dlq", "list", "worker"]).as_array().unwrap().len();
    wait_until(|| format!("{} dead letters", dead()), || dead() == 2);

    let table = server.ok(cwd, &["dlq", "list", "worker"]);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("AT   KEY  ATTEMPTS  DIED  ") && rows[0].ends_with("ERROR"), "{table}");
    // Oldest death first: the two may have died in one batch, in either order.
    let mut letters: Vec<&str> = rows[1..].to_vec();
    letters.sort();
    assert!(letters[0].starts_with("0:0  j1   2         ") && letters[0].ends_with("fail:3: boom"), "{table}");
    assert!(letters[1].starts_with("0:1  j2   2         ") && letters[1].ends_with("fail:3: boom"), "{table}");
    assert_eq!(server.ok(cwd, &["dlq", "list", "worker", "-n", "1"]).lines().count(), 2);
    assert!(server.ok(cwd, &["sub", "get", "worker"]).contains("\ndead letters:  2\n"));

    let shown = server.ok(cwd, &["dlq", "show", "worker", "0:0"]);
    assert!(shown.starts_with("subscription:  worker\nat:            0:0\nkey:           j1\n"), "{shown}");
    assert!(shown.contains("\nattempts:      2\n"), "{shown}");
    assert!(shown.contains("\nerror:\nfail:3: boom\n\npayload:\n{\n  \"job\": 1\n}\n\nlogs:\ngot "), "{shown}");
    let one = json_of(&server, cwd, &["dlq", "show", "worker", "0:1"]);
    assert_eq!(
        (&one["payload"], &one["attempts"], &one["error"]),
        (&json!({"job": 2}), &json!(2), &json!("fail:3: boom"))
    );
    fails(&server, cwd, &["dlq", "show", "worker", "0:9"], "no dead letter at 0:9 among the 1000 oldest of 'worker'");
    fails(&server, cwd, &["dlq", "list", "nope"], "no subscription named 'nope' (404 not_found)");

    // Redrive one: it fails again and comes back.
    assert_eq!(server.ok(cwd, &["dlq", "redrive", "worker", "0:1"]), "redriven dead letter 0:1 of worker\n");
    fails(
        &server,
        cwd,
        &["dlq", "redrive", "worker", "0:1"],
        "no dead letter at partition 0, offset 1 of 'worker' (404 not_found)",
    );
    wait_until(|| format!("{} dead letters", dead()), || dead() == 2);

    // Purge one, then the rest.
    assert_eq!(server.ok(cwd, &["dlq", "purge", "worker", "0:0"]), "purged dead letter 0:0 of worker\n");
    fails(&server, cwd, &["dlq", "purge", "worker", "0:0"], "(404 not_found)");
    assert_eq!(json_of(&server, cwd, &["dlq", "purge", "worker"]), json!({"purged": 1}));
    assert_eq!(server.ok(cwd, &["dlq", "purge", "worker"]), "purged 0 dead letters of worker\n");
    assert_eq!(server.ok(cwd, &["dlq", "list", "worker"]), "[]\n");
    fails(&server, cwd, &["dlq", "purge", "nope"], "no subscription named 'nope' (404 not_found)");
}

/// An app with a subscriber, its topics and subscription in sl.toml.
fn events_app(dir: &Path, batch_size: u32) {
    write(dir, "orders/record.lua", SINK);
    write(
        dir,
        "sl.toml",
        &format!(
            "[topics.orders]\npartitions = 2\nretention_secs = 86400\n\n[topics.seen]\npartitions = 1\n\n\
             [subscriptions.rec]\ntopic = \"orders\"\naction = \"orders.record\"\nbatch_size = {batch_size}\n\
             max_retries = 2\nfrom = \"beginning\"\n"
        ),
    );
}

#[test]
fn deploy_creates_topics_and_subscriptions_that_deliver() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    events_app(&app, 5);

    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created orders.record\ntopic created orders\ntopic created seen\n\
         subscription created rec (orders -> orders.record, from beginning)\n\
         1 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 2 topics created, 1 subscriptions created\n"
    );
    let state: Value = serde_json::from_str(&std::fs::read_to_string(app.join(".sl/deployed.json")).unwrap()).unwrap();
    assert_eq!(
        state,
        json!({ server.url.clone(): {"actions": ["orders.record"], "topics": ["orders", "seen"], "subscriptions": ["rec"]} })
    );
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");
    let sub = json_of(&server, cwd, &["sub", "get", "rec"]);
    assert_eq!((&sub["batch_size"], &sub["max_retries"], &sub["backoff_ms"]), (&json!(5), &json!(2), &json!(1000)));
    assert_eq!(json_of(&server, cwd, &["topic", "get", "orders"])["retention_ms"], 86_400_000);

    // Messages published with slcli reach the subscriber.
    for n in 1..=3 {
        let out =
            server.ok(cwd, &["topic", "publish", "orders", &format!("{{\"n\": {n}}}"), "--key", &format!("k{n}")]);
        assert!(out.starts_with("published to orders partition "), "{out}");
    }
    wait_until(|| format!("{:?}", seen(&server, cwd)), || seen(&server, cwd).len() == 3);
    let mut got: Vec<(String, i64)> = seen(&server, cwd)
        .iter()
        .map(|p| (p["key"].as_str().unwrap().to_string(), p["payload"]["n"].as_i64().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, [("k1".to_string(), 1), ("k2".to_string(), 2), ("k3".to_string(), 3)]);
    let sub = json_of(&server, cwd, &["sub", "get", "rec"]);
    let cursors: i64 = sub["partitions"].as_array().unwrap().iter().map(|p| p["cursor"].as_i64().unwrap()).sum();
    assert_eq!(cursors, 3, "{sub}");
    let runs = server.ok(cwd, &["invocations", "orders.record"]);
    assert!(runs.contains("orders.record") && runs.contains("succeeded"), "{runs}");

    // Changed settings: the subscription is made again (from its `from`: delivered again);
    // changed retention: the topic is updated. Changed partitions: reported.
    write(
        &app,
        "sl.toml",
        "[topics.orders]\npartitions = 3\nretention_secs = 3600\n\n[topics.seen]\npartitions = 1\n\n\
         [subscriptions.rec]\ntopic = \"orders\"\naction = \"orders.record\"\nbatch_size = 7\n\
         max_retries = 2\nfrom = \"beginning\"\n",
    );
    let o = server.slcli(cwd, &["deploy", "app"]);
    assert_exit(&o, 1);
    assert_eq!(
        stdout(&o),
        "topic updated orders\nsubscription recreated rec (orders -> orders.record, from beginning)\n\
         0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 topics updated, \
         1 subscriptions recreated, 1 failed\n"
    );
    assert!(
        stderr(&o).contains(
            "topic orders: it has 2 partitions on the server and 3 in sl.toml; the partitions of a topic cannot change"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(json_of(&server, cwd, &["sub", "get", "rec"])["batch_size"], 7);
    assert_eq!(json_of(&server, cwd, &["topic", "get", "orders"])["retention_ms"], 3_600_000);
    wait_until(|| format!("{:?}", seen(&server, cwd)), || seen(&server, cwd).len() == 6);

    // `from` alone changed: left alone.
    events_app(&app, 7);
    let text = std::fs::read_to_string(app.join("sl.toml"))
        .unwrap()
        .replace("retention_secs = 86400", "retention_secs = 3600");
    write(&app, "sl.toml", &text.replace("from = \"beginning\"", "from = 2026-12-08T09:00:00Z"));
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");

    // A subscription another app made to an action of this one is left alone;
    // a subscription and a topic gone from sl.toml are deleted.
    server.ok(cwd, &["topic", "create", "other"]);
    server.ok(cwd, &["sub", "create", "theirs", "--topic", "other", "--action", "orders.record"]);
    write(&app, "sl.toml", "[topics.orders]\npartitions = 2\nretention_secs = 3600\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "subscription deleted rec\ntopic deleted seen\n\
         0 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 topics deleted, 1 subscriptions deleted\n"
    );
    let subs: Vec<String> = json_of(&server, cwd, &["sub", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subs, ["theirs"]);
    let topics: Vec<String> = json_of(&server, cwd, &["topic", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(topics, ["orders", "other"]);

    // Without [topics] and [subscriptions], the state file is a list of actions again.
    std::fs::remove_file(app.join("sl.toml")).unwrap();
    assert!(server.ok(cwd, &["deploy", "app"]).starts_with("topic deleted orders\n"));
    let state: Value = serde_json::from_str(&std::fs::read_to_string(app.join(".sl/deployed.json")).unwrap()).unwrap();
    assert_eq!(state, json!({ server.url.clone(): ["orders.record"] }));
    assert_eq!(server.ok(cwd, &["deploy", "app"]), "nothing changed\n");
}

#[test]
fn deploy_checks_subscriptions_before_changing_anything() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let app = cwd.join("app");
    write(&app, "sink.lua", SINK);
    write(&app, "sl.toml", "[subscriptions.s]\ntopic = \"nowhere\"\naction = \"nothing\"\n");
    let o = fails(
        &server,
        cwd,
        &["deploy", "app"],
        "sl.toml: [subscriptions.\"s\"]: the topic 'nowhere' is neither in [topics] nor on the server",
    );
    assert!(
        stderr(&o).contains("sl.toml: [subscriptions.\"s\"]: the action 'nothing' is neither a file of the directory (nothing.lua) nor on the server"),
        "{}",
        stderr(&o)
    );
    assert!(server.action_names(cwd).is_empty(), "nothing was changed");
    write(&app, "sl.toml", "[subscriptions.s]\ntopic = \"t\"\naction = \"sink\"\nfrom = \"yesterday\"\n");
    fails(&server, cwd, &["deploy", "app"], "[subscriptions.\"s\"]: from: 'yesterday' is not a valid position");
    write(&app, "sl.toml", "[topics.t]\npartitions = 2\nretention = 5\n");
    fails(&server, cwd, &["deploy", "app"], "unknown field `retention`");
    assert!(server.action_names(cwd).is_empty());

    // A topic and an action the server has (made elsewhere) may be named.
    write(cwd, "elsewhere.lua", SINK);
    server.ok(cwd, &["create", "elsewhere", "-f", "elsewhere.lua"]);
    server.ok(cwd, &["topic", "create", "shared", "-p", "1"]);
    write(&app, "sl.toml", "[subscriptions.s]\ntopic = \"shared\"\naction = \"elsewhere\"\n");
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "created sink\nsubscription created s (shared -> elsewhere, from end)\n\
         1 created, 0 updated, 0 deleted, 0 routes added, 0 routes deleted, 1 subscriptions created\n"
    );
    // An action of this directory whose file is gone cannot be subscribed to.
    write(&app, "sl.toml", "[subscriptions.s]\ntopic = \"shared\"\naction = \"sink\"\n");
    server.ok(cwd, &["deploy", "app"]);
    std::fs::remove_file(app.join("sink.lua")).unwrap();
    fails(&server, cwd, &["deploy", "app"], "the action 'sink' was deployed from this directory and its file is gone");
    // Removed from sl.toml too: the subscription, then the action, go.
    std::fs::remove_file(app.join("sl.toml")).unwrap();
    assert_eq!(
        server.ok(cwd, &["deploy", "app"]),
        "subscription deleted s\ndeleted sink\n\
         0 created, 0 updated, 1 deleted, 0 routes added, 0 routes deleted, 1 subscriptions deleted\n"
    );
    assert_eq!(server.action_names(cwd), ["elsewhere"]);
}
