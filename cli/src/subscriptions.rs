//! Subscriptions and their dead letters: the server's `/subscriptions`
//! API, for `slcli deploy` and the `slcli sub create|list|get|delete|reset`
//! and `slcli dlq list|show|redrive|purge` commands.
//!
//! A subscription delivers a topic's messages to an action in batches and
//! keeps a cursor per partition; a message that fails more than its
//! retries becomes a dead letter, named by its place `PARTITION:OFFSET`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::args::{DlqCommand, Place, SubCommand, SubCreateArgs};
use crate::client::{encode, Client, Method, Reply};
use crate::json::{self, Scalar};
use crate::manifest::{SubscriptionSettings, SubscriptionSpec};
use crate::output::{self, visible, Lines};
use crate::position::Position;

/// The most dead letters the server lists at once, and so the most
/// `slcli dlq show` looks through.
const MAX_DEAD_LISTED: u32 = 1000;

/// The longest error shown in the table of `slcli dlq list`, in characters.
const ERROR_CELL: usize = 100;

/// A subscription as the server lists it, for deploy.
#[derive(Deserialize)]
#[serde(expecting = "a subscription (a JSON object)")]
struct Listed {
    name: String,
    topic: String,
    action: String,
    batch_size: u32,
    max_wait_ms: i64,
    max_retries: u32,
    backoff_ms: i64,
    backoff_max_ms: i64,
}

/// The server's subscriptions that `keep` keeps (by name), with their
/// settings, or `None` if it has no `/subscriptions` API (an older server).
pub fn fetch(client: &Client, keep: impl Fn(&str) -> bool) -> Result<Option<BTreeMap<String, SubscriptionSettings>>> {
    client.fetch_named("/subscriptions", "subscriptions", keep, |s: Listed| {
        let settings = SubscriptionSettings {
            topic: s.topic,
            action: s.action,
            batch_size: s.batch_size,
            max_wait_ms: s.max_wait_ms,
            max_retries: s.max_retries,
            backoff_ms: s.backoff_ms,
            backoff_max_ms: s.backoff_max_ms,
        };
        (s.name, settings)
    })
}

/// The body of `POST /subscriptions` for the subscription `spec`.
fn spec_body(name: &str, spec: &SubscriptionSpec) -> Value {
    let s = &spec.settings;
    json!({
        "name": name,
        "topic": s.topic,
        "action": s.action,
        "batch_size": s.batch_size,
        "max_wait_ms": s.max_wait_ms,
        "max_retries": s.max_retries,
        "backoff_ms": s.backoff_ms,
        "backoff_max_ms": s.backoff_max_ms,
        "start": spec.from.json(),
    })
}

/// `POST /subscriptions` for the subscription `spec`; the reply whatever its status.
pub fn create(client: &Client, name: &str, spec: &SubscriptionSpec) -> Result<Reply> {
    client.send(Method::Post, "/subscriptions", Some(&serde_json::to_vec(&spec_body(name, spec))?))
}

/// `DELETE /subscriptions/:name`; the reply whatever its status.
pub fn delete(client: &Client, name: &str) -> Result<Reply> {
    client.send(Method::Delete, &format!("/subscriptions/{}", encode(name)), None)
}

/// The body of `POST /subscriptions` for `slcli sub create`: the settings
/// given (the server has defaults for the others).
fn create_body(args: &SubCreateArgs) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    body.insert("topic".into(), json!(args.topic));
    body.insert("action".into(), json!(args.action));
    let numbers = [
        ("batch_size", args.batch_size.map(i64::from)),
        ("max_wait_ms", args.max_wait_ms),
        ("max_retries", args.max_retries.map(i64::from)),
        ("backoff_ms", args.backoff_ms),
        ("backoff_max_ms", args.backoff_max_ms),
    ];
    for (key, value) in numbers {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    if let Some(from) = args.from {
        body.insert("start".into(), from.json());
    }
    Value::Object(body)
}

/// A subscription as the server shows it (the fields slcli prints).
#[derive(Deserialize)]
#[serde(expecting = "a subscription (a JSON object)")]
struct SubRow {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    topic: Scalar,
    #[serde(default)]
    action: Scalar,
    #[serde(default)]
    backlog: Scalar,
    #[serde(default)]
    dead: Scalar,
    #[serde(default)]
    created: Scalar,
}

/// The table of `slcli sub list`; `[]` when there are no subscriptions.
pub fn subscriptions_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["NAME", "TOPIC", "ACTION", "BACKLOG", "DEAD", "CREATED"];
    output::table(body, "subscriptions", &headers, out, |s: SubRow| {
        vec![s.name.text(), s.topic.text(), s.action.text(), s.backlog.text(), s.dead.text(), output::time(&s.created)]
    })
}

/// A subscription with its settings and partitions, as `GET
/// /subscriptions/:name` shows it.
#[derive(Deserialize)]
#[serde(expecting = "a subscription (a JSON object)")]
struct SubDetails {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    topic: Scalar,
    #[serde(default)]
    action: Scalar,
    #[serde(default)]
    batch_size: Scalar,
    #[serde(default)]
    max_wait_ms: Scalar,
    #[serde(default)]
    max_retries: Scalar,
    #[serde(default)]
    backoff_ms: Scalar,
    #[serde(default)]
    backoff_max_ms: Scalar,
    #[serde(default)]
    created: Scalar,
    #[serde(default)]
    backlog: Scalar,
    #[serde(default)]
    dead: Scalar,
    #[serde(default)]
    partitions: Option<Vec<PartitionRow>>,
}

/// A subscription's progress in one partition.
#[derive(Deserialize)]
#[serde(expecting = "a subscription's partition (a JSON object)")]
struct PartitionRow {
    #[serde(default)]
    partition: Scalar,
    #[serde(default)]
    cursor: Scalar,
    #[serde(default)]
    pending: Scalar,
    #[serde(default)]
    backlog: Scalar,
    #[serde(default)]
    owner: Scalar,
}

/// A number of milliseconds: `1000 ms`.
fn ms(v: &Scalar) -> String {
    match v {
        Scalar::Number(_) => format!("{} ms", v.text()),
        _ => v.text(),
    }
}

/// `slcli sub get`: the settings, backlog and dead letters, then a table of
/// the partitions.
pub fn subscription_details(body: &str, out: &mut dyn Write) -> Result<()> {
    let s: SubDetails = serde_json::from_str(body)
        .map_err(|e| anyhow!("the server's answer is not a JSON object of a subscription: {e}"))?;
    let lines = [
        ("name", s.name.text()),
        ("topic", s.topic.text()),
        ("action", s.action.text()),
        ("batch size", s.batch_size.text()),
        ("max wait", ms(&s.max_wait_ms)),
        ("max retries", s.max_retries.text()),
        ("backoff", format!("{}, doubling up to {}", ms(&s.backoff_ms), ms(&s.backoff_max_ms))),
        ("created", output::time(&s.created)),
        ("backlog", s.backlog.text()),
        ("dead letters", s.dead.text()),
    ];
    out.write_all(output::fields(&lines).as_bytes())?;
    if let Some(partitions) = s.partitions {
        out.write_all(b"\n")?;
        let rows = partitions
            .iter()
            .map(|p| vec![p.partition.text(), p.cursor.text(), p.pending.text(), p.backlog.text(), p.owner.text()])
            .collect();
        output::write_rows(out, &["PARTITION", "CURSOR", "PENDING", "BACKLOG", "OWNER"], rows)?;
    }
    Ok(())
}

/// What the server answers a reset.
#[derive(Deserialize)]
struct Reset {
    #[serde(default)]
    cursors: Option<Vec<Scalar>>,
}

/// `slcli sub reset`: a line, then the new cursor of each partition.
fn reset_text(name: &str, to: Position, reply: &Reply, out: &mut dyn Write) -> Result<()> {
    let reset: Reset = reply.json()?;
    writeln!(out, "subscription {} reset to {to}", visible(name, Lines::One))?;
    if let Some(cursors) = reset.cursors {
        out.write_all(b"\n")?;
        let rows = cursors.iter().enumerate().map(|(i, c)| vec![i.to_string(), c.text()]).collect();
        output::write_rows(out, &["PARTITION", "CURSOR"], rows)?;
    }
    Ok(())
}

/// The place of a dead letter, to find one.
#[derive(Deserialize)]
struct At {
    #[serde(default)]
    partition: Scalar,
    #[serde(default)]
    offset: Scalar,
}

impl At {
    fn is(&self, place: Place) -> bool {
        self.partition.as_u64() == Some(u64::from(place.partition)) && self.offset.as_i64() == Some(place.offset)
    }

    /// `3:1042`.
    fn text(&self) -> String {
        format!("{}:{}", self.partition.text(), self.offset.text())
    }
}

/// A dead letter as `GET /subscriptions/:name/dead` shows it.
#[derive(Deserialize)]
#[serde(expecting = "a dead letter (a JSON object)")]
struct DeadRow {
    #[serde(flatten)]
    at: At,
    #[serde(default)]
    key: Scalar,
    #[serde(default)]
    attempts: Scalar,
    #[serde(default)]
    died: Scalar,
    #[serde(default)]
    error: Scalar,
}

/// `text` cut to `max` characters, with `...` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The table of `slcli dlq list`; `[]` when there are no dead letters.
pub fn dead_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["AT", "KEY", "ATTEMPTS", "DIED", "ERROR"];
    output::table(body, "dead letters", &headers, out, |d: DeadRow| {
        let error = visible(&d.error.text(), Lines::One).into_owned();
        vec![d.at.text(), d.key.text(), d.attempts.text(), output::time(&d.died), cut(&error, ERROR_CELL)]
    })
}

/// A dead letter with its payload, error and logs, for `slcli dlq show`.
#[derive(Deserialize)]
#[serde(expecting = "a dead letter (a JSON object)")]
struct DeadDetails {
    #[serde(default)]
    partition: Scalar,
    #[serde(default)]
    offset: Scalar,
    #[serde(default)]
    key: Scalar,
    #[serde(default)]
    published: Scalar,
    #[serde(default)]
    attempts: Scalar,
    #[serde(default)]
    died: Scalar,
    #[serde(default)]
    invocation: Scalar,
    #[serde(default)]
    error: Scalar,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    logs: Option<Vec<Scalar>>,
}

/// The dead letter at `place` among those of the JSON array `body`, as
/// the server wrote it.
fn find_dead(body: &str, place: Place) -> Result<Option<Box<RawValue>>> {
    let mut found = None;
    json::each(body, |raw: Box<RawValue>| {
        if found.is_none() && serde_json::from_str::<At>(raw.get()).is_ok_and(|at| at.is(place)) {
            found = Some(raw);
        }
        Ok(())
    })
    .map_err(|e| anyhow!("the server's answer is not a JSON array of dead letters: {e}"))?;
    Ok(found)
}

/// `slcli dlq show`: the dead letter's fields, its error, payload and logs.
fn dead_details(sub: &str, raw: &str) -> Result<String> {
    let d: DeadDetails =
        serde_json::from_str(raw).map_err(|e| anyhow!("the server's dead letter is not what slcli expects: {e}"))?;
    let lines = [
        ("subscription", sub.to_string()),
        ("at", format!("{}:{}", d.partition.text(), d.offset.text())),
        ("key", d.key.text()),
        ("published", output::time(&d.published)),
        ("attempts", d.attempts.text()),
        ("died", output::time(&d.died)),
        ("invocation", d.invocation.text()),
    ];
    let mut out = output::fields(&lines);
    out.push_str("\nerror:\n");
    out.push_str(&visible(&d.error.text(), Lines::Keep));
    out.push_str("\n\npayload:\n");
    match &d.payload {
        Some(p) => out.push_str(&output::pretty(p.get())),
        None => out.push_str("null"),
    }
    out.push_str("\n\nlogs:\n");
    match d.logs.as_deref() {
        None | Some([]) => out.push_str("(none)\n"),
        Some(logs) => {
            for line in logs {
                out.push_str(&visible(&line.text(), Lines::One));
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// `N dead letters` / `1 dead letter`.
fn letters(n: &Scalar) -> String {
    match n.as_u64() {
        Some(1) => "1 dead letter".to_string(),
        _ => format!("{} dead letters", n.text()),
    }
}

/// The path of a dead-letter request on `sub`, for one dead letter or all.
fn dead_path(sub: &str, tail: &str, place: Option<Place>) -> String {
    let mut path = format!("/subscriptions/{}/dead{tail}", encode(sub));
    if let Some(p) = place {
        path.push_str(&format!("?partition={}&offset={}", p.partition, p.offset));
    }
    path
}

/// `redriven 3 dead letters of mailer` / `purged dead letter 3:1042 of mailer`.
fn dead_change_line(verb: &str, key: &str, sub: &str, place: Option<Place>, reply: &Reply) -> Result<String> {
    let counts: Map<String, Value> = reply.json()?;
    let n: Scalar = counts.get(key).map(|v| serde_json::from_value(v.clone())).transpose()?.unwrap_or_default();
    let what = match place {
        Some(p) => format!("dead letter {p}"),
        None => letters(&n),
    };
    Ok(format!("{verb} {what} of {}", visible(sub, Lines::One)))
}

/// `slcli sub ...`.
pub fn sub_command(client: &Client, json: bool, command: SubCommand) -> Result<()> {
    match command {
        SubCommand::Create(args) => {
            let body = create_body(&args);
            let reply = client.call(Method::Post, "/subscriptions", Some(&serde_json::to_vec(&body)?))?;
            output::print_reply(json, &reply.body, || {
                let from = args.from.unwrap_or(Position::End);
                Ok(format!(
                    "subscription created {} ({} -> {}, from {from})",
                    visible(&args.name, Lines::One),
                    visible(&args.topic, Lines::One),
                    visible(&args.action, Lines::One)
                ))
            })
        }
        SubCommand::List => {
            let reply = client.call(Method::Get, "/subscriptions", None)?;
            output::stream_reply(json, &reply.body, |w| subscriptions_table(&reply.body, w))
        }
        SubCommand::Get { name } => {
            let reply = client.call(Method::Get, &format!("/subscriptions/{}", encode(&name)), None)?;
            output::stream_reply(json, &reply.body, |w| subscription_details(&reply.body, w))
        }
        SubCommand::Delete { name } => {
            let reply = client.call(Method::Delete, &format!("/subscriptions/{}", encode(&name)), None)?;
            output::print_reply(json, &reply.body, || {
                Ok(format!("subscription deleted {}", visible(&name, Lines::One)))
            })
        }
        SubCommand::Reset { name, to } => {
            let body = json!({ "to": to.json() });
            let path = format!("/subscriptions/{}/reset", encode(&name));
            let reply = client.call(Method::Post, &path, Some(&serde_json::to_vec(&body)?))?;
            output::stream_reply(json, &reply.body, |w| reset_text(&name, to, &reply, w))
        }
    }
}

/// `slcli dlq ...`.
pub fn dlq_command(client: &Client, json: bool, command: DlqCommand) -> Result<()> {
    match command {
        DlqCommand::List { sub, limit } => {
            let mut path = dead_path(&sub, "", None);
            if let Some(n) = limit {
                path.push_str(&format!("?limit={n}"));
            }
            let reply = client.call(Method::Get, &path, None)?;
            output::stream_reply(json, &reply.body, |w| dead_table(&reply.body, w))
        }
        DlqCommand::Show { sub, place } => {
            let path = format!("{}?limit={MAX_DEAD_LISTED}", dead_path(&sub, "", None));
            let reply = client.call(Method::Get, &path, None)?;
            let Some(raw) = find_dead(&reply.body, place)? else {
                bail!(
                    "no dead letter at {place} among the {MAX_DEAD_LISTED} oldest of '{sub}' \
                     (`slcli dlq list {sub}` lists them)"
                );
            };
            if json {
                output::emit_json(raw.get())
            } else {
                Ok(output::emit(&dead_details(&sub, raw.get())?)?)
            }
        }
        DlqCommand::Redrive { sub, place } => {
            let reply = client.call(Method::Post, &dead_path(&sub, "/redrive", place), None)?;
            output::print_reply(json, &reply.body, || dead_change_line("redriven", "redriven", &sub, place, &reply))
        }
        DlqCommand::Purge { sub, place } => {
            let reply = client.call(Method::Delete, &dead_path(&sub, "", place), None)?;
            output::print_reply(json, &reply.body, || dead_change_line("purged", "purged", &sub, place, &reply))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const SUB: &str = r#"{"name":"mailer","topic":"orders","action":"mail.send","batch_size":10,"max_wait_ms":0,
        "max_retries":3,"backoff_ms":1000,"backoff_max_ms":300000,"created":1714566896789,"dead":1,
        "partitions":[{"partition":0,"cursor":5,"pending":1,"owner":"w-1","epoch":2,"backlog":1},
                      {"partition":1,"cursor":0,"pending":0,"owner":null,"epoch":0,"backlog":0}],
        "backlog":1}"#;

    #[test]
    fn subscription_details_show_partitions() {
        let expected = "\
name:          mailer
topic:         orders
action:        mail.send
batch size:    10
max wait:      0 ms
max retries:   3
backoff:       1000 ms, doubling up to 300000 ms
created:       2024-05-01T12:34:56Z
backlog:       1
dead letters:  1

PARTITION  CURSOR  PENDING  BACKLOG  OWNER
0          5       1        1        w-1
1          0       0        0        -
";
        assert_eq!(written(|w| subscription_details(SUB, w)), expected);
    }

    #[test]
    fn subscriptions_table_shows_backlog_and_dead() {
        let expected = "\
NAME    TOPIC   ACTION     BACKLOG  DEAD  CREATED
mailer  orders  mail.send  1        1     2024-05-01T12:34:56Z
";
        assert_eq!(written(|w| subscriptions_table(&format!("[{SUB}]"), w)), expected);
        assert_eq!(written(|w| subscriptions_table("[]", w)), "[]\n");
    }

    #[test]
    fn create_bodies_carry_what_was_given() {
        let mut args = SubCreateArgs {
            name: "s".into(),
            topic: "t".into(),
            action: "a".into(),
            batch_size: None,
            max_wait_ms: None,
            max_retries: None,
            backoff_ms: None,
            backoff_max_ms: None,
            from: None,
        };
        assert_eq!(create_body(&args), json!({"name": "s", "topic": "t", "action": "a"}));
        args.batch_size = Some(5);
        args.max_retries = Some(0);
        args.backoff_ms = Some(100);
        args.from = Some(Position::Time(1000));
        assert_eq!(
            create_body(&args),
            json!({"name": "s", "topic": "t", "action": "a", "batch_size": 5, "max_retries": 0, "backoff_ms": 100,
                   "start": {"time": 1000}})
        );
        let spec = SubscriptionSpec {
            settings: SubscriptionSettings {
                topic: "t".into(),
                action: "a".into(),
                batch_size: 10,
                max_wait_ms: 0,
                max_retries: 3,
                backoff_ms: 1000,
                backoff_max_ms: 300_000,
            },
            from: Position::Beginning,
        };
        assert_eq!(
            spec_body("s", &spec),
            json!({"name": "s", "topic": "t", "action": "a", "batch_size": 10, "max_wait_ms": 0, "max_retries": 3,
                   "backoff_ms": 1000, "backoff_max_ms": 300_000, "start": "beginning"})
        );
    }

    const DEAD: &str = r#"[
        {"partition":0,"offset":3,"key":"k1","published":1714566896789,"payload":{"n": 1},"attempts":2,
         "error":"sub:3: boom\nstack traceback: ...","logs":["one","two\u001b"],"invocation":"0190-1","died":1714566896789},
        {"partition":1,"offset":0,"key":null,"published":1714566896789,"payload":"x","attempts":2,
         "error":"sub:3: boom","logs":[],"invocation":null,"died":1714566896789}
    ]"#;

    #[test]
    fn dead_letters_are_listed_one_line_each() {
        let expected = "\
AT   KEY  ATTEMPTS  DIED                  ERROR
0:3  k1   2         2024-05-01T12:34:56Z  sub:3: boom\\nstack traceback: ...
1:0  -    2         2024-05-01T12:34:56Z  sub:3: boom
";
        assert_eq!(written(|w| dead_table(DEAD, w)), expected);
        let long = format!(r#"[{{"partition":0,"offset":1,"error":"{}"}}]"#, "e".repeat(150));
        let table = written(|w| dead_table(&long, w));
        assert!(table.ends_with(&format!("{}...\n", "e".repeat(100))), "{table}");
    }

    #[test]
    fn one_dead_letter_is_found_and_shown() {
        let raw = find_dead(DEAD, Place { partition: 0, offset: 3 }).unwrap().unwrap();
        assert!(raw.get().starts_with(r#"{"partition":0,"offset":3,"#), "{}", raw.get());
        assert!(find_dead(DEAD, Place { partition: 0, offset: 0 }).unwrap().is_none());
        let expected = "\
subscription:  mailer
at:            0:3
key:           k1
published:     2024-05-01T12:34:56Z
attempts:      2
died:          2024-05-01T12:34:56Z
invocation:    0190-1

error:
sub:3: boom
stack traceback: ...

payload:
{
  \"n\": 1
}

logs:
one
two\\e
";
        assert_eq!(dead_details("mailer", raw.get()).unwrap(), expected);
        let other = find_dead(DEAD, Place { partition: 1, offset: 0 }).unwrap().unwrap();
        let shown = dead_details("mailer", other.get()).unwrap();
        assert!(
            shown.contains("invocation:    -\n") && shown.ends_with("payload:\n\"x\"\n\nlogs:\n(none)\n"),
            "{shown}"
        );
    }

    #[test]
    fn dead_letter_changes() {
        assert_eq!(dead_path("s", "", None), "/subscriptions/s/dead");
        let one = Some(Place { partition: 2, offset: 7 });
        assert_eq!(dead_path("s", "/redrive", one), "/subscriptions/s/dead/redrive?partition=2&offset=7");
        let reply = Reply { status: 200, body: r#"{"redriven":3}"#.into() };
        assert_eq!(
            dead_change_line("redriven", "redriven", "s", None, &reply).unwrap(),
            "redriven 3 dead letters of s"
        );
        let reply = Reply { status: 200, body: r#"{"purged":1}"#.into() };
        assert_eq!(dead_change_line("purged", "purged", "s", None, &reply).unwrap(), "purged 1 dead letter of s");
        assert_eq!(dead_change_line("purged", "purged", "s", one, &reply).unwrap(), "purged dead letter 2:7 of s");
    }

    #[test]
    fn resets_show_the_new_cursors() {
        let reply = Reply { status: 200, body: r#"{"name":"s","cursors":[0,4]}"#.into() };
        let shown = written(|w| reset_text("s", Position::Beginning, &reply, w));
        assert_eq!(shown, "subscription s reset to beginning\n\nPARTITION  CURSOR\n0          0\n1          4\n");
    }
}
