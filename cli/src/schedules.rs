//! Schedules: the server's `/schedules` API, for `slcli deploy` and the
//! `slcli schedule create|list|get|delete` commands.
//!
//! A schedule runs an action asynchronously at the times of its spec (a
//! cron expression in a time zone, or an `@every` interval). The server
//! cannot change one: a changed schedule is deleted and created again.
//! Times come from the server both as Unix milliseconds and as RFC 3339
//! text in UTC (`next`, `next_at`); slcli shows the text.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::args::{ScheduleCommand, ScheduleCreateArgs};
use crate::client::{encode, Client, Method, Reply};
use crate::json::Scalar;
use crate::manifest::ScheduleSpec;
use crate::output::{self, visible, Lines};

/// A schedule as the server lists it, for deploy.
#[derive(Deserialize)]
#[serde(expecting = "a schedule (a JSON object)")]
struct Listed {
    name: String,
    action: String,
    spec: String,
    time_zone: String,
    #[serde(default)]
    args: Value,
    overlap: String,
    catch_up: String,
    #[serde(default)]
    jitter_ms: u64,
}

/// The server's schedules that `keep` keeps (by name), with their
/// settings, or `None` if it has no `/schedules` API (an older server).
pub fn fetch(client: &Client, keep: impl Fn(&str) -> bool) -> Result<Option<BTreeMap<String, ScheduleSpec>>> {
    client.fetch_named("/schedules", "schedules", keep, |s: Listed| {
        let spec = ScheduleSpec {
            action: s.action,
            spec: s.spec.trim().to_string(),
            time_zone: s.time_zone,
            args: match s.args {
                Value::Object(args) => args,
                _ => Map::new(),
            },
            overlap: ScheduleSpec::overlap_text(&s.overlap),
            catch_up: ScheduleSpec::catch_up_text(&s.catch_up),
            jitter_ms: s.jitter_ms,
        };
        (s.name, spec)
    })
}

/// The body of `POST /schedules` for the schedule `spec`: every setting.
fn spec_body(name: &str, spec: &ScheduleSpec) -> Value {
    json!({
        "name": name,
        "action": spec.action,
        "spec": spec.spec,
        "time_zone": spec.time_zone,
        "args": spec.args,
        "overlap": spec.overlap,
        "catch_up": spec.catch_up,
        "jitter_ms": spec.jitter_ms,
    })
}

/// `POST /schedules` for the schedule `spec`; the reply whatever its status.
pub fn create(client: &Client, name: &str, spec: &ScheduleSpec) -> Result<Reply> {
    client.send(Method::Post, "/schedules", Some(&serde_json::to_vec(&spec_body(name, spec))?))
}

/// `DELETE /schedules/:name`; the reply whatever its status.
pub fn delete(client: &Client, name: &str) -> Result<Reply> {
    client.send(Method::Delete, &format!("/schedules/{}", encode(name)), None)
}

/// The args of `slcli schedule create`: `--args` or the file of
/// `--args-file` ("-": standard input), checked to be a JSON object;
/// `None` without either.
fn args_object(inline: Option<&str>, file: Option<&Path>) -> Result<Option<Value>> {
    let (text, origin) = match (inline, file) {
        (Some(text), _) => (text.to_string(), "--args".to_string()),
        (None, Some(file)) if file == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the args from standard input")?;
            (text, "standard input".to_string())
        }
        (None, Some(file)) => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("cannot read args file {}", file.display()))?;
            (text, file.display().to_string())
        }
        (None, None) => return Ok(None),
    };
    if text.trim().is_empty() {
        bail!("{origin} is empty: the args are a JSON object, e.g. {{\"kind\": \"daily\"}}");
    }
    let value: Value = serde_json::from_str(&text).with_context(|| format!("invalid JSON in {origin}"))?;
    let what = match value {
        Value::Object(_) => return Ok(Some(value)),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    bail!("{origin} must hold a JSON object (the action's args), not {what}")
}

/// The body of `POST /schedules` for `slcli schedule create`: the settings
/// given (the server has defaults for the others), with the args read.
fn create_body(args: &ScheduleCreateArgs, action_args: Option<Value>) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    body.insert("action".into(), json!(args.action));
    body.insert("spec".into(), json!(args.spec));
    if let Some(tz) = &args.tz {
        body.insert("time_zone".into(), json!(tz));
    }
    if let Some(action_args) = action_args {
        body.insert("args".into(), action_args);
    }
    if let Some(overlap) = args.overlap {
        body.insert("overlap".into(), json!(overlap.to_string()));
    }
    if let Some(catch_up) = args.catch_up {
        body.insert("catch_up".into(), json!(catch_up.to_string()));
    }
    if let Some(ms) = args.jitter.or(args.jitter_ms) {
        body.insert("jitter_ms".into(), json!(ms));
    }
    Value::Object(body)
}

/// A schedule as the server shows it (the fields slcli prints).
#[derive(Deserialize)]
#[serde(expecting = "a schedule (a JSON object)")]
struct ScheduleRow {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    action: Scalar,
    #[serde(default)]
    spec: Scalar,
    #[serde(default)]
    time_zone: Scalar,
    #[serde(default)]
    args: Option<Box<RawValue>>,
    #[serde(default)]
    overlap: Scalar,
    #[serde(default)]
    catch_up: Scalar,
    #[serde(default)]
    jitter_ms: Scalar,
    #[serde(default)]
    created: Scalar,
    #[serde(default)]
    fired: Scalar,
    #[serde(default)]
    last_fired: Scalar,
    #[serde(default)]
    last_fired_at: Scalar,
    #[serde(default)]
    last_invocation: Scalar,
    #[serde(default)]
    next: Scalar,
    #[serde(default)]
    next_at: Scalar,
}

/// A time the server gives as RFC 3339 text (`at`) and Unix ms (`ms`): the
/// text, else the milliseconds as [`output::time`] shows them, else `none`.
fn when(at: &Scalar, ms: &Scalar, none: &str) -> String {
    match (at, ms) {
        (Scalar::Str(text), _) => text.clone(),
        (_, Scalar::Null) => none.to_string(),
        (_, ms) => output::time(ms),
    }
}

impl ScheduleRow {
    /// When it fires next, or `none` (a spec that matches no time left).
    fn next(&self) -> String {
        when(&self.next_at, &self.next, "none")
    }

    /// `0 9 * * * in Europe/London -> report`.
    fn what(&self) -> String {
        format!("{} in {} -> {}", self.spec.text(), self.time_zone.text(), self.action.text())
    }
}

/// `schedule created nightly (0 9 * * * in Europe/London -> report, next 2026-12-09T09:00:00.000Z)`.
fn created_line(name: &str, reply: &Reply) -> Result<String> {
    let s: ScheduleRow = reply.json()?;
    let name = s.name.as_str().unwrap_or(name);
    let line = format!("schedule created {name} ({}, next {})", s.what(), s.next());
    Ok(visible(&line, Lines::One).into_owned())
}

/// The table of `slcli schedule list`; `[]` when there are no schedules.
pub fn schedules_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["NAME", "SPEC", "TIME ZONE", "ACTION", "FIRED", "NEXT"];
    output::table(body, "schedules", &headers, out, |s: ScheduleRow| {
        vec![s.name.text(), s.spec.text(), s.time_zone.text(), s.action.text(), s.fired.text(), s.next()]
    })
}

/// A jitter for people: `none`, or `250 ms`.
fn jitter(v: &Scalar) -> String {
    match v.as_u64() {
        Some(0) => "none".to_string(),
        Some(ms) => format!("{ms} ms"),
        None => v.text(),
    }
}

/// `slcli schedule get`: the settings, then the firings.
pub fn schedule_details(body: &str, out: &mut dyn Write) -> Result<()> {
    let s: ScheduleRow = serde_json::from_str(body)
        .map_err(|e| anyhow!("the server's answer is not a JSON object of a schedule: {e}"))?;
    let lines = [
        ("name", s.name.text()),
        ("action", s.action.text()),
        ("spec", s.spec.text()),
        ("time zone", s.time_zone.text()),
        ("args", s.args.as_ref().map_or_else(|| "{}".to_string(), |a| output::json_one_line(a.get()))),
        ("overlap", s.overlap.text()),
        ("catch up", s.catch_up.text()),
        ("jitter", jitter(&s.jitter_ms)),
        ("created", output::time(&s.created)),
        ("fired", s.fired.text()),
        ("last fired", when(&s.last_fired_at, &s.last_fired, "never")),
        ("last invocation", s.last_invocation.text()),
        ("next", s.next()),
    ];
    out.write_all(output::fields(&lines).as_bytes())?;
    Ok(())
}

/// `slcli schedule ...`.
pub fn command(client: &Client, json: bool, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::Create(args) => {
            let action_args = args_object(args.args.as_deref(), args.args_file.as_deref())?;
            let body = create_body(&args, action_args);
            let reply = client.call(Method::Post, "/schedules", Some(&serde_json::to_vec(&body)?))?;
            output::print_reply(json, &reply.body, || created_line(&args.name, &reply))
        }
        ScheduleCommand::List => {
            let reply = client.call(Method::Get, "/schedules", None)?;
            output::stream_reply(json, &reply.body, |w| schedules_table(&reply.body, w))
        }
        ScheduleCommand::Get { name } => {
            let reply = client.call(Method::Get, &format!("/schedules/{}", encode(&name)), None)?;
            output::stream_reply(json, &reply.body, |w| schedule_details(&reply.body, w))
        }
        ScheduleCommand::Delete { name } => {
            let reply = client.call(Method::Delete, &format!("/schedules/{}", encode(&name)), None)?;
            output::print_reply(json, &reply.body, || Ok(format!("schedule deleted {}", visible(&name, Lines::One))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn written(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const NIGHTLY: &str = r#"{"name":"nightly","action":"report","spec":"0 9 * * *","time_zone":"Europe/London",
        "args":{"kind": "daily", "n": [1, 2]},"overlap":"skip","catch_up":"all:3","jitter_ms":0,"created":1714566896789,
        "last_fired":1765184400000,"last_fired_at":"2025-12-08T09:00:00.000Z","last_invocation":"0190-1","fired":12,
        "next":1765270800000,"next_at":"2025-12-09T09:00:00.000Z"}"#;

    const TICK: &str = r#"{"name":"tick","action":"poll","spec":"@every 30s","time_zone":"UTC","args":{},
        "overlap":"queue","catch_up":"none","jitter_ms":250,"created":1714566896789,"last_fired":null,
        "last_fired_at":null,"last_invocation":null,"fired":0,"next":1714566926789,"next_at":"2024-05-01T12:35:26.789Z"}"#;

    #[test]
    fn schedules_table_shows_the_next_firing() {
        let expected = "\
NAME     SPEC        TIME ZONE      ACTION  FIRED  NEXT
nightly  0 9 * * *   Europe/London  report  12     2025-12-09T09:00:00.000Z
tick     @every 30s  UTC            poll    0      2024-05-01T12:35:26.789Z
";
        assert_eq!(written(|w| schedules_table(&format!("[{NIGHTLY},{TICK}]"), w)), expected);
        assert_eq!(written(|w| schedules_table("[]", w)), "[]\n");
        let e = schedules_table("{}", &mut Vec::new()).unwrap_err().to_string();
        assert!(e.starts_with("the server's answer is not a JSON array of schedules"), "{e}");
    }

    #[test]
    fn schedule_details_show_the_firings() {
        let expected = "\
name:             nightly
action:           report
spec:             0 9 * * *
time zone:        Europe/London
args:             {\"kind\":\"daily\",\"n\":[1,2]}
overlap:          skip
catch up:         all:3
jitter:           none
created:          2024-05-01T12:34:56Z
fired:            12
last fired:       2025-12-08T09:00:00.000Z
last invocation:  0190-1
next:             2025-12-09T09:00:00.000Z
";
        assert_eq!(written(|w| schedule_details(NIGHTLY, w)), expected);
        let shown = written(|w| schedule_details(TICK, w));
        assert!(
            shown.contains("\njitter:           250 ms\n")
                && shown.contains("\nlast fired:       never\nlast invocation:  -\n"),
            "{shown}"
        );
        // Milliseconds alone are shown as a time; no next firing as `none`.
        let bare = r#"{"name":"x","last_fired":1714566896789,"next":null}"#;
        let shown = written(|w| schedule_details(bare, w));
        assert!(shown.contains("\nlast fired:       2024-05-01T12:34:56Z\n"), "{shown}");
        assert!(shown.ends_with("\nnext:             none\n"), "{shown}");
        let e = schedule_details("\"x\"", &mut Vec::new()).unwrap_err().to_string();
        assert!(e.starts_with("the server's answer is not a JSON object of a schedule"), "{e}");
    }

    #[test]
    fn created_lines() {
        let reply = Reply { status: 201, body: NIGHTLY.into() };
        assert_eq!(
            created_line("nightly", &reply).unwrap(),
            "schedule created nightly (0 9 * * * in Europe/London -> report, next 2025-12-09T09:00:00.000Z)"
        );
        let reply = Reply { status: 201, body: r#"{"spec":"@daily\u001b","time_zone":"UTC","action":"a"}"#.into() };
        assert_eq!(created_line("d", &reply).unwrap(), "schedule created d (@daily\\e in UTC -> a, next none)");
    }

    fn create_args() -> ScheduleCreateArgs {
        ScheduleCreateArgs {
            name: "s".into(),
            action: "a".into(),
            spec: "@daily".into(),
            tz: None,
            args: None,
            args_file: None,
            overlap: None,
            catch_up: None,
            jitter: None,
            jitter_ms: None,
        }
    }

    #[test]
    fn create_bodies_carry_what_was_given() {
        let mut args = create_args();
        assert_eq!(create_body(&args, None), json!({"name": "s", "action": "a", "spec": "@daily"}));
        args.tz = Some("Europe/London".into());
        args.overlap = Some(sl_schedule::Overlap::Allow);
        args.catch_up = Some(sl_schedule::CatchUp::All { cap: 10 });
        args.jitter = Some(90_000);
        assert_eq!(
            create_body(&args, Some(json!({"n": 1}))),
            json!({"name": "s", "action": "a", "spec": "@daily", "time_zone": "Europe/London", "args": {"n": 1},
                   "overlap": "allow", "catch_up": "all:10", "jitter_ms": 90_000})
        );
        args.jitter = None;
        args.jitter_ms = Some(0);
        assert_eq!(create_body(&args, None)["jitter_ms"], 0);

        let spec = ScheduleSpec {
            action: "a".into(),
            spec: "@every 1s".into(),
            time_zone: "UTC".into(),
            args: Map::new(),
            overlap: "skip".into(),
            catch_up: "none".into(),
            jitter_ms: 0,
        };
        assert_eq!(
            spec_body("tick", &spec),
            json!({"name": "tick", "action": "a", "spec": "@every 1s", "time_zone": "UTC", "args": {},
                   "overlap": "skip", "catch_up": "none", "jitter_ms": 0})
        );
    }

    #[test]
    fn args_are_checked() {
        assert_eq!(args_object(None, None).unwrap(), None);
        assert_eq!(args_object(Some(r#"{"n": 1}"#), None).unwrap(), Some(json!({"n": 1})));
        for (text, what) in [("[1]", "an array"), ("\"x\"", "a string"), ("3", "a number"), ("null", "null")] {
            let e = args_object(Some(text), None).unwrap_err().to_string();
            assert_eq!(e, format!("--args must hold a JSON object (the action's args), not {what}"));
        }
        assert!(args_object(Some(" "), None).unwrap_err().to_string().contains("--args is empty"));
        let e = format!("{:#}", args_object(Some("{\"a\": }"), None).unwrap_err());
        assert!(e.starts_with("invalid JSON in --args: ") && e.contains("line 1 column 7"), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("args.json");
        std::fs::write(&file, "{\"kind\": \"daily\"}\n").unwrap();
        assert_eq!(args_object(None, Some(&file)).unwrap(), Some(json!({"kind": "daily"})));
        let e = format!("{:#}", args_object(None, Some(&PathBuf::from("no/such.json"))).unwrap_err());
        assert!(e.starts_with("cannot read args file no/such.json: "), "{e}");
    }
}
