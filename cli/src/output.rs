//! Human-readable rendering (results, tables, an action's details) and
//! writing to stdout. With `--json` the commands print the server's body
//! as is instead, through [`emit`].
//!
//! Answers are rendered without building them whole ([`crate::json`]):
//! tables read the server's array twice, one element at a time (first to
//! check it and measure the columns, then to write the rows), and results
//! are re-indented as text. What a command holds is the body, bounded by
//! the client, and one row; the time is that of reading it and printing.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::json::{self, Scalar};

/// Writes `text` to stdout, ending it with a newline.
pub fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Runs `write` on a buffered stdout, then flushes it.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// Writes `text` and a newline unless it ends with one.
fn write_text(out: &mut dyn Write, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// An invocation result (a response body) for people: a JSON string as its
/// bare text, any other JSON value indented, anything else as is.
pub fn write_result(body: &str, out: &mut dyn Write) -> Result<()> {
    if let Ok(text) = serde_json::from_str::<String>(body) {
        write_text(out, &text)?;
    } else if json::is_json(body) {
        write_pretty(body, out)?;
        out.write_all(b"\n")?;
    } else {
        write_text(out, body)?;
    }
    Ok(())
}

/// Writes `json`, which must be valid JSON, indented as serde_json's pretty
/// printer does (two spaces, `"key": value`, `[]` and `{}` when empty), but
/// as text: nothing is built, and numbers and strings stay as they came.
fn write_pretty(json: &str, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = String::with_capacity(64 * 1024);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = json.chars().peekable();
    let newline = |buf: &mut String, depth: usize| {
        buf.push('\n');
        buf.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            buf.push(c);
        } else {
            match c {
                '"' => {
                    in_string = true;
                    buf.push(c);
                }
                '{' | '[' => {
                    while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
                    buf.push(c);
                    match chars.next_if(|&next| next == '}' || next == ']') {
                        Some(close) => buf.push(close),
                        None => {
                            depth += 1;
                            newline(&mut buf, depth);
                        }
                    }
                }
                '}' | ']' => {
                    depth = depth.saturating_sub(1);
                    newline(&mut buf, depth);
                    buf.push(c);
                }
                ',' => {
                    buf.push(',');
                    newline(&mut buf, depth);
                }
                ':' => buf.push_str(": "),
                c if c.is_ascii_whitespace() => {}
                c => buf.push(c),
            }
        }
        if buf.len() >= 60 * 1024 {
            out.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    out.write_all(buf.as_bytes())
}

/// A row of `slcli list`.
#[derive(Deserialize)]
#[serde(expecting = "an action (a JSON object)")]
struct ActionRow {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    version: Scalar,
    #[serde(default)]
    size: Scalar,
    #[serde(default)]
    maxmem: Scalar,
    #[serde(default)]
    timeout: Scalar,
    #[serde(default)]
    instructions: Scalar,
    #[serde(default)]
    updated: Scalar,
}

/// The table of `slcli list` from the server's JSON array; `[]` when there are no actions.
pub fn actions_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["NAME", "VERSION", "SIZE", "MAXMEM", "TIMEOUT", "INSTRUCTIONS", "UPDATED"];
    table(body, "actions", &headers, out, |a: ActionRow| {
        vec![
            a.name.text(),
            a.version.text(),
            with_unit(&a.size, "B", false),
            with_unit(&a.maxmem, "KiB", true),
            with_unit(&a.timeout, "ms", true),
            with_unit(&a.instructions, "", true),
            time(&a.updated),
        ]
    })
}

/// A row of `slcli plugins`.
#[derive(Deserialize)]
#[serde(expecting = "a plugin (a JSON object)")]
struct PluginRow {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    plugin: Scalar,
    #[serde(default)]
    version: Scalar,
    #[serde(default)]
    file: Scalar,
}

/// The table of `slcli plugins`; `[]` when none are loaded.
pub fn plugins_table(body: &str, out: &mut dyn Write) -> Result<()> {
    table(body, "plugins", &["NAME", "PLUGIN", "VERSION", "FILE"], out, |p: PluginRow| {
        vec![p.name.text(), p.plugin.text(), p.version.text(), p.file.text()]
    })
}

/// A row of `slcli invocations` (the record's result, logs and args are skipped unread).
#[derive(Deserialize)]
#[serde(expecting = "an invocation record (a JSON object)")]
struct InvocationRow {
    #[serde(default)]
    id: Scalar,
    #[serde(default)]
    action: Scalar,
    #[serde(default)]
    status: Scalar,
    #[serde(default)]
    duration_ms: Scalar,
    #[serde(default)]
    created: Scalar,
    #[serde(default)]
    error: Option<ErrorKind>,
}

/// The `kind` of an invocation record's `error`.
#[derive(Deserialize)]
#[serde(expecting = "an error (a JSON object)")]
struct ErrorKind {
    #[serde(default)]
    kind: Scalar,
}

/// The table of `slcli invocations`; `[]` when there are none.
pub fn invocations_table(body: &str, out: &mut dyn Write) -> Result<()> {
    let headers = ["ID", "ACTION", "STATUS", "DURATION", "CREATED", "ERROR KIND"];
    table(body, "invocation records", &headers, out, |r: InvocationRow| {
        vec![
            r.id.text(),
            r.action.text(),
            r.status.text(),
            duration(&r.duration_ms),
            time(&r.created),
            r.error.map_or_else(|| "-".to_string(), |e| e.kind.text()),
        ]
    })
}

/// The most fields of an action `slcli get` shows besides the source; more
/// are counted (`--json` shows them). The server sends ten.
const MAX_FIELDS: usize = 64;

/// An action's fields as `slcli get` shows them: the first [`MAX_FIELDS`]
/// in the order sent (a repeated key keeps its last value), the number of
/// the others, and the source.
#[derive(Default)]
struct Details {
    fields: Vec<(String, Scalar)>,
    more: usize,
    code: Scalar,
}

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DetailsVisitor)
    }
}

struct DetailsVisitor;

impl<'de> Visitor<'de> for DetailsVisitor {
    type Value = Details;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Details, A::Error> {
        let mut d = Details::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "code" {
                d.code = map.next_value()?;
            } else if let Some(slot) = d.fields.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = map.next_value()?;
            } else if d.fields.len() < MAX_FIELDS {
                let value = map.next_value()?;
                d.fields.push((key, value));
            } else {
                map.next_value::<IgnoredAny>()?;
                d.more += 1;
            }
        }
        Ok(d)
    }
}

/// `slcli get`: the metadata, one `key: value` a line, then the decoded source.
pub fn action_details(body: &str) -> Result<String> {
    const ORDER: [&str; 9] =
        ["name", "version", "size", "maxmem", "timeout", "instructions", "created", "updated", "checksum"];
    let details: Details = serde_json::from_str(body)
        .map_err(|e| anyhow!("the server's answer is not a JSON object of an action: {e}"))?;
    let mut lines: Vec<(String, String)> = Vec::new();
    for key in ORDER {
        if let Some((_, v)) = details.fields.iter().find(|(k, _)| k == key) {
            let shown = match key {
                "size" => with_unit(v, "bytes of bytecode", false),
                "maxmem" => with_unit(v, "KiB", true),
                "timeout" => with_unit(v, "ms", true),
                "instructions" => with_unit(v, "", true),
                "created" | "updated" => time(v),
                _ => v.text(),
            };
            lines.push((key.to_string(), shown));
        }
    }
    for (key, v) in &details.fields {
        if !ORDER.contains(&key.as_str()) {
            lines.push((key.clone(), v.text()));
        }
    }
    let width = lines.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &lines {
        let _ = writeln!(out, "{:<width$}  {v}", format!("{k}:"));
    }
    if details.more > 0 {
        let _ = writeln!(out, "... and {} more fields (--json shows them)", details.more);
    }
    if let Some(code) = details.code.as_str() {
        let source = base64::engine::general_purpose::STANDARD
            .decode(code.trim())
            .context("the server sent the action's source in invalid base64")?;
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&source));
    }
    Ok(out)
}

/// Writes the JSON array `body` as a table with `headers`: one row per
/// element, read as a `T` and turned into cells by `cells`; `[]` without
/// rows. Left-aligned columns two spaces apart. The array is read twice,
/// an element at a time: first to check every element and measure the
/// columns (nothing is written if one is wrong), then to write the rows.
/// `what` names the elements in errors.
pub fn table<T: DeserializeOwned>(
    body: &str,
    what: &str,
    headers: &[&str],
    out: &mut dyn Write,
    cells: impl Fn(T) -> Vec<String>,
) -> Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    let rows = json::each(body, |item: T| {
        for (w, cell) in widths.iter_mut().zip(cells(item)) {
            *w = (*w).max(cell.chars().count());
        }
        Ok(())
    })
    .map_err(|e| anyhow!("the server's answer is not a JSON array of {what}: {e}"))?;
    if rows == 0 {
        out.write_all(b"[]\n")?;
        return Ok(());
    }
    write_row(out, headers.iter().map(|h| h.to_string()).collect(), &widths)?;
    json::each(body, |item: T| Ok(write_row(out, cells(item), &widths)?))?;
    Ok(())
}

/// One line of a table: the cells padded to `widths`, two spaces apart.
fn write_row(out: &mut dyn Write, cells: Vec<String>, widths: &[usize]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
    }
    out.write_all(line.trim_end().as_bytes())?;
    out.write_all(b"\n")
}

/// A number with its unit; 0 is `default` for a limit.
fn with_unit(v: &Scalar, unit: &str, limit: bool) -> String {
    match v.as_u64() {
        Some(0) if limit => "default".to_string(),
        Some(n) if unit.is_empty() => n.to_string(),
        Some(n) => format!("{n} {unit}"),
        None => v.text(),
    }
}

fn duration(v: &Scalar) -> String {
    match v.as_f64() {
        Some(ms) if ms < 1000.0 => format!("{ms} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
        None => v.text(),
    }
}

fn time(v: &Scalar) -> String {
    match v.as_i64() {
        Some(ms) if ms > 0 => timestamp(ms),
        _ => v.text(),
    }
}

/// Unix milliseconds as a UTC time, e.g. `2024-05-01T12:34:56Z`.
pub fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What `write` writes.
    fn written(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A result as printed, without its final newline.
    fn result_text(body: &str) -> String {
        written(|out| write_result(body, out)).strip_suffix('\n').unwrap().to_string()
    }

    fn body(values: &[Value]) -> String {
        Value::Array(values.to_vec()).to_string()
    }

    fn actions_table(actions: &[Value]) -> String {
        written(|out| super::actions_table(&body(actions), out))
    }

    fn invocations_table(records: &[Value]) -> String {
        written(|out| super::invocations_table(&body(records), out))
    }

    fn plugins_table(plugins: &[Value]) -> String {
        written(|out| super::plugins_table(&body(plugins), out))
    }

    #[test]
    fn plugins_table_lists_name_and_version() {
        let t = plugins_table(&[
            json!({"name": "skeleton", "plugin": "skeleton", "version": "0.1.0", "file": "/x/libsl_skeleton.so"}),
        ]);
        assert!(t.contains("skeleton") && t.contains("0.1.0") && t.contains("VERSION"), "{t}");
        assert_eq!(plugins_table(&[]).trim(), "[]");
    }

    #[test]
    fn results_are_indented_as_text() {
        let nested = r#" {"b": [], "a": {"x": [1, {"y": "a,b:[c]"}], "e": {}}, "s": "q\"uo,te", "n": 1.50e2} "#;
        let expected = "\
{
  \"b\": [],
  \"a\": {
    \"x\": [
      1,
      {
        \"y\": \"a,b:[c]\"
      }
    ],
    \"e\": {}
  },
  \"s\": \"q\\\"uo,te\",
  \"n\": 1.50e2
}";
        assert_eq!(result_text(nested), expected);
        assert_eq!(result_text("[ ]"), "[]");
        assert_eq!(result_text("\"ends with a newline\\n\""), "ends with a newline");
        assert_eq!(result_text("[1, 2"), "[1, 2", "not JSON: as it came");
    }

    #[test]
    fn string_results_print_raw_and_others_pretty() {
        assert_eq!(result_text("\"Hello from Lua\""), "Hello from Lua");
        assert_eq!(result_text("\"two\\nlines\""), "two\nlines");
        assert_eq!(result_text("{\"a\":[1,2]}"), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        assert_eq!(result_text("42"), "42");
        assert_eq!(result_text("null"), "null");
        assert_eq!(result_text("not json"), "not json");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(1_714_566_896_789), "2024-05-01T12:34:56Z");
        assert_eq!(timestamp(4_102_444_799_000), "2099-12-31T23:59:59Z");
        assert_eq!(timestamp(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn an_empty_list_is_brackets() {
        assert_eq!(actions_table(&[]), "[]\n");
        assert_eq!(invocations_table(&[]), "[]\n");
    }

    #[test]
    fn actions_table_lines_up() {
        let actions = [
            json!({"name": "hello", "size": 312, "maxmem": 0, "timeout": 0, "instructions": 0, "version": 1,
                   "created": 1_714_566_896_789_i64, "updated": 1_714_566_896_789_i64}),
            json!({"name": "evil-and-long", "size": 1024, "maxmem": 100000, "timeout": 200, "instructions": 5000,
                   "version": 12, "created": 0, "updated": 1_714_566_900_000_i64}),
        ];
        let expected = "\
NAME           VERSION  SIZE    MAXMEM      TIMEOUT  INSTRUCTIONS  UPDATED
hello          1        312 B   default     default  default       2024-05-01T12:34:56Z
evil-and-long  12       1024 B  100000 KiB  200 ms   5000          2024-05-01T12:35:00Z
";
        assert_eq!(actions_table(&actions), expected);
    }

    #[test]
    fn invocations_table_shows_error_kinds() {
        let records = [
            json!({"id": "0190a1b2-0000-7000-8000-000000000001", "action": "hello", "status": "succeeded",
                   "result": "Hello", "duration_ms": 3, "created": 1_714_566_896_789_i64}),
            json!({"id": "0190a1b2-0000-7000-8000-000000000002", "action": "evil", "status": "failed",
                   "error": {"kind": "memory", "message": "..."}, "duration_ms": 1500, "created": 1_714_566_896_789_i64}),
            json!({"id": "0190a1b2-0000-7000-8000-000000000003", "action": "spin", "status": "queued",
                   "duration_ms": null, "created": 1_714_566_896_789_i64}),
        ];
        let expected = "\
ID                                    ACTION  STATUS     DURATION  CREATED               ERROR KIND
0190a1b2-0000-7000-8000-000000000001  hello   succeeded  3 ms      2024-05-01T12:34:56Z  -
0190a1b2-0000-7000-8000-000000000002  evil    failed     1.50 s    2024-05-01T12:34:56Z  memory
0190a1b2-0000-7000-8000-000000000003  spin    queued     -         2024-05-01T12:34:56Z  -
";
        assert_eq!(invocations_table(&records), expected);
    }

    #[test]
    fn details_show_metadata_then_source() {
        let action = json!({"name": "hello", "version": 2, "size": 312, "maxmem": 100000, "timeout": 0,
            "instructions": 0, "created": 0, "updated": 1_714_566_896_789_i64, "checksum": "ab12",
            "code": "ZnVuY3Rpb24gbWFpbigpIHJldHVybiAxIGVuZAo="});
        let expected = "\
name:          hello
version:       2
size:          312 bytes of bytecode
maxmem:        100000 KiB
timeout:       default
instructions:  default
created:       0
updated:       2024-05-01T12:34:56Z
checksum:      ab12

function main() return 1 end
";
        assert_eq!(action_details(&action.to_string()).unwrap(), expected);
        let bad = json!({"name": "x", "code": "%%%"});
        assert!(format!("{:#}", action_details(&bad.to_string()).unwrap_err()).contains("invalid base64"));
    }

    #[test]
    fn details_show_other_fields_up_to_a_bound() {
        let shown = action_details(r#"{"name": "x", "owner": "ops", "tags": ["a"], "name": "y"}"#).unwrap();
        assert_eq!(shown, "name:   y\nowner:  ops\ntags:   [...]\n");
        let many: String = (0..100).map(|i| format!(r#","f{i}": {i}"#)).collect();
        let shown = action_details(&format!(r#"{{"name": "x"{many}}}"#)).unwrap();
        assert_eq!(shown.lines().count(), MAX_FIELDS + 1, "{shown}");
        assert!(shown.ends_with("f62:   62\n... and 37 more fields (--json shows them)\n"), "{shown}");
        let e = action_details("[0, 0]").unwrap_err().to_string();
        assert!(e.starts_with("the server's answer is not a JSON object of an action: invalid type: sequence"), "{e}");
    }

    #[test]
    fn a_table_checks_every_row_before_writing_one() {
        let mut out = Vec::new();
        let e = super::actions_table(r#"[{"name": "a"}, {"name": "b"}, 0]"#, &mut out).unwrap_err().to_string();
        assert!(e.starts_with("the server's answer is not a JSON array of actions: invalid type: integer `0`"), "{e}");
        assert!(out.is_empty());
        let e = super::invocations_table(r#"{"id": 1}"#, &mut out).unwrap_err().to_string();
        assert!(e.contains("not a JSON array of invocation records: invalid type: map"), "{e}");
        assert!(out.is_empty());
        // Containers where a scalar belongs are shown as such, not built.
        let t = actions_table(&[json!({"name": ["a", "b"], "version": {"v": 1}})]);
        assert!(t.ends_with("\n[...]  {...}    -     -       -        -             -\n"), "{t}");
    }
}
