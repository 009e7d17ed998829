//! Topics: the server's `/topics` API, for `slcli deploy` and the
//! `slcli topic create|list|get|set|delete|publish|read` commands.
//!
//! A topic is a durable log of JSON messages in partitions; slcli creates
//! and changes topics, publishes one message at a time, and reads a
//! partition's retained messages. Retention is given in seconds on the
//! command line and in sl.toml, and in milliseconds to the server.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::args::{PublishArgs, TopicCommand};
use crate::client::{encode, Client, Method, Reply};
use crate::json::Scalar;
use crate::manifest::TopicSpec;
use crate::output::{self, visible, Lines};

/// The longest idempotency key the server takes, in bytes.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A topic as the server lists it, for deploy.
#[derive(Deserialize)]
#[serde(expecting = "a topic (a JSON object)")]
struct Listed {
    name: String,
    partitions: u32,
    #[serde(default)]
    retention_ms: Option<i64>,
    #[serde(default)]
    retention_bytes: Option<u64>,
}

/// The server's topics that `keep` keeps (by name), or `None` if it has no
/// `/topics` API (an older server).
pub fn fetch(client: &Client, keep: impl Fn(&str) -> bool) -> Result<Option<BTreeMap<String, TopicSpec>>> {
    client.fetch_named("/topics", "topics", keep, |t: Listed| {
        let spec =
            TopicSpec { partitions: t.partitions, retention_ms: t.retention_ms, retention_bytes: t.retention_bytes };
        (t.name, spec)
    })
}

/// The body of `POST /topics`.
fn create_body(name: &str, partitions: Option<u32>, retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(name));
    if let Some(p) = partitions {
        body.insert("partitions".into(), json!(p));
    }
    if let Some(ms) = retention_ms {
        body.insert("retention_ms".into(), json!(ms));
    }
    if let Some(bytes) = retention_bytes {
        body.insert("retention_bytes".into(), json!(bytes));
    }
    Value::Object(body)
}

/// `POST /topics` for the topic `spec`; the reply whatever its status.
pub fn create(client: &Client, name: &str, spec: &TopicSpec) -> Result<Reply> {
    let body = create_body(name, Some(spec.partitions), spec.retention_ms, spec.retention_bytes);
    client.send(Method::Post, "/topics", Some(&serde_json::to_vec(&body)?))
}

/// The body of `PUT /topics/:name`: both bounds, `null` for none (the
/// server sets both).
fn retention_body(retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Value {
    json!({"retention_ms": retention_ms, "retention_bytes": retention_bytes})
}

/// `PUT /topics/:name` with the retention of `spec`; the reply whatever its status.
pub fn set_retention(client: &Client, name: &str, spec: &TopicSpec) -> Result<Reply> {
    let body = retention_body(spec.retention_ms, spec.retention_bytes);
    client.send(Method::Put, &format!("/topics/{}", encode(name)), Some(&serde_json::to_vec(&body)?))
}

/// `DELETE /topics/:name`; the reply whatever its status.
pub fn delete(client: &Client, name: &str) -> Result<Reply> {
    client.send(Method::Delete, &format!("/topics/{}", encode(name)), None)
}

/// Seconds as the server's milliseconds.
fn secs_to_ms(secs: u64) -> Result<i64> {
    secs.checked_mul(1000).and_then(|ms| i64::try_from(ms).ok()).ok_or_else(|| anyhow!("{secs} seconds is too long"))
}

/// A retention age for tables: `3600 s`, `1500 ms`, or `none`.
fn age(v: &Scalar) -> String {
    match (v, v.as_i64()) {
        (Scalar::Null, _) => "none".to_string(),
        (_, Some(ms)) if ms % 1000 == 0 => format!("{} s", ms / 1000),
        (_, Some(ms)) => format!("{ms} ms"),
        _ => v.text(),
    }
}

/// A retention size for tables: `1000 bytes`, or `none`.
fn size(v: &Scalar) -> String {
    match v {
        Scalar::Null => "none".to_string(),
        Scalar::Number(_) => format!("{} bytes", v.text()),
        _ => v.text(),
    }
}

/// A topic's retention in words: `kept 3600 s, at most 1000 bytes`, or
/// `kept for any age, any size`.
fn retention_words(ms: &Scalar, bytes: &Scalar) -> String {
    let kept = match ms {
        Scalar::Null => "kept for any age".to_string(),
        _ => format!("kept {}", age(ms)),
    };
    let bound = match bytes {
        Scalar::Null => "any size".to_string(),
        _ => format!("at most {}", size(bytes)),
    };
    format!("{kept}, {bound}")
}

/// A topic as the server shows it (the fields slcli prints).
#[derive(Deserialize)]
#[serde(expecting = "a topic (a JSON object)")]
struct TopicRow {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    partitions: Scalar,
    #[serde(default)]
    retention_ms: Scalar,
    #[serde(default)]
    retention_bytes: Scalar,
    #[serde(default)]
    messages: Scalar,
    #[serde(default)]
    bytes: Scalar,
    #[serde(default)]
    created: Scalar,
}

/// A topic with its partitions' offsets, as `GET /topics/:name` shows it.
#[derive(Deserialize)]
#[serde(expecting = "a topic (a JSON object)")]
struct TopicDetails {
    #[serde(flatten)]
    row: TopicRow,
    #[serde(default)]
    offsets: Option<Vec<Offsets>>,
}

/// The offsets a partition's log spans.
#[derive(Deserialize)]
#[serde(expecting = "a partition's offsets (a JSON object)")]
struct Offsets {
    #[serde(default)]
    first: Scalar,
    #[serde(default)]
    next: Scalar,
}

/// The table of `slcli topic list`; `[]` when there are no topics.
pub fn topics_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["NAME", "PARTITIONS", "MESSAGES", "BYTES", "RETENTION", "RETENTION BYTES", "CREATED"];
    output::table(body, "topics", &headers, out, |t: TopicRow| {
        vec![
            t.name.text(),
            t.partitions.text(),
            t.messages.text(),
            t.bytes.text(),
            age(&t.retention_ms),
            size(&t.retention_bytes),
            output::time(&t.created),
        ]
    })
}

/// `slcli topic get`: the settings and counts, then a table of the
/// partitions' offsets.
pub fn topic_details(body: &str, out: &mut dyn Write) -> Result<()> {
    let t: TopicDetails =
        serde_json::from_str(body).map_err(|e| anyhow!("the server's answer is not a JSON object of a topic: {e}"))?;
    let r = &t.row;
    let lines = [
        ("name", r.name.text()),
        ("partitions", r.partitions.text()),
        ("retention", retention_words(&r.retention_ms, &r.retention_bytes)),
        ("messages", r.messages.text()),
        ("bytes", r.bytes.text()),
        ("created", output::time(&r.created)),
    ];
    out.write_all(output::fields(&lines).as_bytes())?;
    if let Some(offsets) = t.offsets {
        out.write_all(b"\n")?;
        let rows =
            offsets.iter().enumerate().map(|(i, o)| vec![i.to_string(), o.first.text(), o.next.text()]).collect();
        output::write_rows(out, &["PARTITION", "FIRST", "NEXT"], rows)?;
    }
    Ok(())
}

/// A message as `GET /topics/:name/messages` shows it.
#[derive(Deserialize)]
#[serde(expecting = "a message (a JSON object)")]
struct MessageRow {
    #[serde(default)]
    partition: Scalar,
    #[serde(default)]
    offset: Scalar,
    #[serde(default)]
    key: Scalar,
    #[serde(default)]
    published: Scalar,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

/// The table of `slcli topic read`: one message a row, its payload as
/// compact JSON in the last column; `[]` when there are none.
pub fn messages_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["PARTITION", "OFFSET", "KEY", "PUBLISHED", "PAYLOAD"];
    output::table(body, "messages", &headers, out, |m: MessageRow| {
        vec![
            m.partition.text(),
            m.offset.text(),
            m.key.text(),
            output::time(&m.published),
            m.payload.map_or_else(|| "null".to_string(), |p| output::json_one_line(p.get())),
        ]
    })
}

/// Where the server stored a published message.
#[derive(Deserialize)]
struct Published {
    #[serde(default)]
    topic: Scalar,
    #[serde(default)]
    partition: Scalar,
    #[serde(default)]
    offset: Scalar,
    #[serde(default)]
    existing: Scalar,
}

/// `published to orders partition 2 offset 17`, and for a repeated
/// idempotency key that it was there already.
fn published_line(topic: &str, reply: &Reply) -> Result<String> {
    let p: Published = reply.json()?;
    let topic = p.topic.as_str().unwrap_or(topic);
    let mut line = format!("published to {topic} partition {} offset {}", p.partition.text(), p.offset.text());
    if p.existing == Scalar::Bool(true) {
        line.push_str(" (already: a retained message has this idempotency key)");
    }
    Ok(visible(&line, Lines::One).into_owned())
}

/// The message to publish: `PAYLOAD_JSON` or the file's text, checked to
/// be one JSON value.
fn payload(args: &PublishArgs) -> Result<String> {
    let (text, origin) = match (&args.payload, &args.data_file) {
        (Some(text), _) => (text.clone(), "PAYLOAD_JSON".to_string()),
        (None, Some(file)) if file == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the message from standard input")?;
            (text, "standard input".to_string())
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read message file {}", file.display()))?;
            (text, file.display().to_string())
        }
        (None, None) => bail!("give the message as PAYLOAD_JSON or with -d FILE"),
    };
    if text.trim().is_empty() {
        bail!("{origin} is empty: the message is a JSON value, e.g. {{\"id\": 17}} or \"text\"");
    }
    if let Err(e) = serde_json::from_str::<IgnoredAny>(&text) {
        bail!(
            "{origin} is not JSON ({e}); the message is a JSON value, e.g. {{\"id\": 17}}, or \"text\" with its quotes"
        );
    }
    Ok(text)
}

/// Checks an idempotency key as the server will (so that a bad one is not
/// taken for a lost connection).
fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        bail!("an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters");
    }
    Ok(())
}

fn publish(client: &Client, args: &PublishArgs, json: bool) -> Result<()> {
    let body = payload(args)?;
    if let Some(key) = &args.idempotency_key {
        check_idempotency_key(key)?;
    }
    let mut path = format!("/topics/{}", encode(&args.name));
    if let Some(key) = &args.key {
        path.push_str(&format!("?key={}", encode(key)));
    }
    let reply = match &args.idempotency_key {
        Some(key) => client.call_with_key(Method::Post, &path, body.as_bytes(), key)?,
        None => client.call(Method::Post, &path, Some(body.as_bytes()))?,
    };
    output::print_reply(json, &reply.body, || published_line(&args.name, &reply))
}

/// The current retention of a topic, as `PUT` needs both bounds.
#[derive(Deserialize)]
struct Retention {
    #[serde(default)]
    retention_ms: Option<i64>,
    #[serde(default)]
    retention_bytes: Option<u64>,
}

/// The query of `GET /topics/:name/messages`.
fn read_path(name: &str, partition: Option<u32>, from: Option<i64>, limit: Option<u64>) -> String {
    let mut query = Vec::new();
    if let Some(p) = partition {
        query.push(format!("partition={p}"));
    }
    if let Some(f) = from {
        query.push(format!("from={f}"));
    }
    if let Some(n) = limit {
        query.push(format!("limit={n}"));
    }
    let path = format!("/topics/{}/messages", encode(name));
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// `slcli topic ...`.
pub fn command(client: &Client, json: bool, command: TopicCommand) -> Result<()> {
    match command {
        TopicCommand::Create { name, partitions, retention_secs, retention_bytes } => {
            let retention_ms = retention_secs.map(secs_to_ms).transpose()?;
            let body = create_body(&name, partitions, retention_ms, retention_bytes);
            let reply = client.call(Method::Post, "/topics", Some(&serde_json::to_vec(&body)?))?;
            output::print_reply(json, &reply.body, || {
                let t: TopicRow = reply.json()?;
                let name = t.name.as_str().unwrap_or(&name);
                let partitions = match t.partitions.as_u64() {
                    Some(1) => "1 partition".to_string(),
                    _ => format!("{} partitions", t.partitions.text()),
                };
                Ok(format!(
                    "topic created {} ({partitions}, {})",
                    visible(name, Lines::One),
                    retention_words(&t.retention_ms, &t.retention_bytes)
                ))
            })
        }
        TopicCommand::List => {
            let reply = client.call(Method::Get, "/topics", None)?;
            output::stream_reply(json, &reply.body, |w| topics_table(&reply.body, w))
        }
        TopicCommand::Get { name } => {
            let reply = client.call(Method::Get, &format!("/topics/{}", encode(&name)), None)?;
            output::stream_reply(json, &reply.body, |w| topic_details(&reply.body, w))
        }
        TopicCommand::Set { name, retention_secs, retention_bytes } => {
            let path = format!("/topics/{}", encode(&name));
            // The server sets both bounds: the one not given is kept as it is.
            let current = if retention_secs.is_none() || retention_bytes.is_none() {
                client.call(Method::Get, &path, None)?.json::<Retention>()?
            } else {
                Retention { retention_ms: None, retention_bytes: None }
            };
            let retention_ms = match retention_secs {
                Some(bound) => bound.get().map(secs_to_ms).transpose()?,
                None => current.retention_ms,
            };
            let retention_bytes = retention_bytes.map_or(current.retention_bytes, |b| b.get());
            let body = retention_body(retention_ms, retention_bytes);
            let reply = client.call(Method::Put, &path, Some(&serde_json::to_vec(&body)?))?;
            output::print_reply(json, &reply.body, || {
                let t: TopicRow = reply.json()?;
                Ok(format!(
                    "topic updated {} ({})",
                    visible(&name, Lines::One),
                    retention_words(&t.retention_ms, &t.retention_bytes)
                ))
            })
        }
        TopicCommand::Delete { name } => {
            let reply = client.call(Method::Delete, &format!("/topics/{}", encode(&name)), None)?;
            output::print_reply(json, &reply.body, || Ok(format!("topic deleted {}", visible(&name, Lines::One))))
        }
        TopicCommand::Publish(args) => publish(client, &args, json),
        TopicCommand::Read { name, partition, from, limit } => {
            let reply = client.call(Method::Get, &read_path(&name, partition, from, limit), None)?;
            output::stream_reply(json, &reply.body, |w| messages_table(&reply.body, w))
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

    #[test]
    fn topics_table_shows_retention() {
        let body = r#"[
            {"name":"orders","partitions":4,"retention_ms":604800000,"retention_bytes":null,"created":1714566896789,
             "messages":12,"bytes":345,"offsets":[{"first":0,"next":3}]},
            {"name":"seen","partitions":1,"retention_ms":1500,"retention_bytes":1000,"created":1714566896789,
             "messages":0,"bytes":0,"offsets":[]}
        ]"#;
        let expected = "\
NAME    PARTITIONS  MESSAGES  BYTES  RETENTION  RETENTION BYTES  CREATED
orders  4           12        345    604800 s   none             2024-05-01T12:34:56Z
seen    1           0         0      1500 ms    1000 bytes       2024-05-01T12:34:56Z
";
        assert_eq!(written(|w| topics_table(body, w)), expected);
        assert_eq!(written(|w| topics_table("[]", w)), "[]\n");
    }

    #[test]
    fn topic_details_show_offsets() {
        let body = r#"{"name":"orders","partitions":2,"retention_ms":3600000,"retention_bytes":1000,
            "created":1714566896789,"messages":5,"bytes":50,"offsets":[{"first":0,"next":3},{"first":1,"next":2}]}"#;
        let expected = "\
name:        orders
partitions:  2
retention:   kept 3600 s, at most 1000 bytes
messages:    5
bytes:       50
created:     2024-05-01T12:34:56Z

PARTITION  FIRST  NEXT
0          0      3
1          1      2
";
        assert_eq!(written(|w| topic_details(body, w)), expected);
        let e = topic_details("[1]", &mut Vec::new()).unwrap_err().to_string();
        assert!(e.starts_with("the server's answer is not a JSON object of a topic"), "{e}");
    }

    #[test]
    fn messages_table_shows_payloads_on_one_line() {
        let body = r#"[{"partition":0,"offset":0,"key":"k1","published":1714566896789,"payload":{"n": 1, "s": "a b\nc"}},
                       {"partition":0,"offset":1,"key":null,"published":1714566896789,"payload":"x\u001b[2J"},
                       {"partition":0,"offset":2,"key":"k\u001b","published":1714566896789,"payload":null}]"#;
        let expected = "\
PARTITION  OFFSET  KEY  PUBLISHED             PAYLOAD
0          0       k1   2024-05-01T12:34:56Z  {\"n\":1,\"s\":\"a b\\nc\"}
0          1       -    2024-05-01T12:34:56Z  \"x\\u001b[2J\"
0          2       k\\e  2024-05-01T12:34:56Z  null
";
        assert_eq!(written(|w| messages_table(body, w)), expected);
    }

    #[test]
    fn published_lines() {
        let reply = Reply { status: 201, body: r#"{"partition":2,"offset":17,"topic":"orders"}"#.into() };
        assert_eq!(published_line("orders", &reply).unwrap(), "published to orders partition 2 offset 17");
        let reply =
            Reply { status: 200, body: r#"{"partition":2,"offset":17,"existing":true,"topic":"orders"}"#.into() };
        assert_eq!(
            published_line("orders", &reply).unwrap(),
            "published to orders partition 2 offset 17 (already: a retained message has this idempotency key)"
        );
    }

    #[test]
    fn bodies_and_paths() {
        assert_eq!(create_body("t", None, None, None), json!({"name": "t"}));
        assert_eq!(
            create_body("t", Some(8), Some(60_000), Some(5)),
            json!({"name": "t", "partitions": 8, "retention_ms": 60_000, "retention_bytes": 5})
        );
        assert_eq!(retention_body(None, Some(5)), json!({"retention_ms": null, "retention_bytes": 5}));
        assert_eq!(read_path("t", None, None, None), "/topics/t/messages");
        assert_eq!(read_path("a b", Some(1), Some(5), Some(10)), "/topics/a%20b/messages?partition=1&from=5&limit=10");
        assert_eq!(secs_to_ms(3600).unwrap(), 3_600_000);
        assert!(secs_to_ms(u64::MAX).is_err());
    }

    #[test]
    fn payloads_are_checked() {
        let args = |payload: Option<&str>, file: Option<&Path>| PublishArgs {
            name: "t".into(),
            payload: payload.map(str::to_string),
            data_file: file.map(Path::to_path_buf),
            key: None,
            idempotency_key: None,
        };
        assert_eq!(payload(&args(Some(r#"{"n": 1}"#), None)).unwrap(), r#"{"n": 1}"#);
        assert_eq!(payload(&args(Some("\"text\""), None)).unwrap(), "\"text\"");
        let e = payload(&args(Some("hello"), None)).unwrap_err().to_string();
        assert!(e.starts_with("PAYLOAD_JSON is not JSON (expected value at line 1 column 1)"), "{e}");
        assert!(payload(&args(Some(" "), None)).unwrap_err().to_string().contains("is empty"));
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("m.json");
        std::fs::write(&file, "[1, 2]\n").unwrap();
        assert_eq!(payload(&args(None, Some(&file))).unwrap(), "[1, 2]\n");
        let e = format!("{:#}", payload(&args(None, Some(&tmp.path().join("no.json")))).unwrap_err());
        assert!(e.starts_with("cannot read message file "), "{e}");
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert!(check_idempotency_key("order-17/attempt 2").is_ok());
        for bad in ["", "caf\u{e9}", "a\nb", &"k".repeat(256)] {
            assert!(check_idempotency_key(bad).is_err(), "{bad:?}");
        }
    }
}
