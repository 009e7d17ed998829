//! Human-readable rendering (results, tables, an action's details) and
//! writing to stdout. With `--json` the commands print the server's body
//! as is instead, through [`emit`].

use std::io::{self, Write};

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::Value;

/// Writes `text` to stdout, ending it with a newline.
pub fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// An invocation result (a response body) for people: a JSON string as its
/// bare text, any other JSON value pretty-printed, anything else as is.
pub fn result_text(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::String(s)) => s,
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| body.to_string()),
        Err(_) => body.to_string(),
    }
}

/// The table of `slcli list`; `[]` when there are no actions.
pub fn actions_table(actions: &[Value]) -> String {
    let rows = actions
        .iter()
        .map(|a| {
            vec![
                text(a.get("name")),
                text(a.get("version")),
                with_unit(a.get("size"), "B", false),
                with_unit(a.get("maxmem"), "KiB", true),
                with_unit(a.get("timeout"), "ms", true),
                with_unit(a.get("instructions"), "", true),
                time(a.get("updated")),
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "SIZE", "MAXMEM", "TIMEOUT", "INSTRUCTIONS", "UPDATED"], rows)
}

/// The table of `slcli plugins`; `[]` when none are loaded.
pub fn plugins_table(plugins: &[Value]) -> String {
    let rows = plugins
        .iter()
        .map(|p| vec![text(p.get("name")), text(p.get("plugin")), text(p.get("version")), text(p.get("file"))])
        .collect();
    table(&["NAME", "PLUGIN", "VERSION", "FILE"], rows)
}

/// The table of `slcli invocations`; `[]` when there are none.
pub fn invocations_table(records: &[Value]) -> String {
    let rows = records
        .iter()
        .map(|r| {
            vec![
                text(r.get("id")),
                text(r.get("action")),
                text(r.get("status")),
                duration(r.get("duration_ms")),
                time(r.get("created")),
                text(r.get("error").and_then(|e| e.get("kind"))),
            ]
        })
        .collect();
    table(&["ID", "ACTION", "STATUS", "DURATION", "CREATED", "ERROR KIND"], rows)
}

/// `slcli get`: the metadata, one `key: value` a line, then the decoded source.
pub fn action_details(action: &Value) -> Result<String> {
    const ORDER: [&str; 9] =
        ["name", "version", "size", "maxmem", "timeout", "instructions", "created", "updated", "checksum"];
    let Some(fields) = action.as_object() else {
        anyhow::bail!("expected a JSON object for the action, got: {action}");
    };
    let mut lines: Vec<(String, String)> = Vec::new();
    for key in ORDER {
        if let Some(v) = fields.get(key) {
            let shown = match key {
                "size" => with_unit(Some(v), "bytes of bytecode", false),
                "maxmem" => with_unit(Some(v), "KiB", true),
                "timeout" => with_unit(Some(v), "ms", true),
                "instructions" => with_unit(Some(v), "", true),
                "created" | "updated" => time(Some(v)),
                _ => text(Some(v)),
            };
            lines.push((key.to_string(), shown));
        }
    }
    for (key, v) in fields {
        if !ORDER.contains(&key.as_str()) && key != "code" {
            lines.push((key.clone(), text(Some(v))));
        }
    }
    let width = lines.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out: String = lines.iter().map(|(k, v)| format!("{:<width$}  {v}\n", format!("{k}:"))).collect();
    if let Some(code) = fields.get("code").and_then(Value::as_str) {
        let source = base64::engine::general_purpose::STANDARD
            .decode(code.trim())
            .context("the server sent the action's source in invalid base64")?;
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&source));
    }
    Ok(out)
}

/// Left-aligned columns two spaces apart, or `[]` without rows.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "[]\n".to_string();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headers = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(headers).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A JSON scalar as text; `-` when absent or null.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A number with its unit; 0 is `default` for a limit.
fn with_unit(v: Option<&Value>, unit: &str, limit: bool) -> String {
    match v.and_then(Value::as_u64) {
        Some(0) if limit => "default".to_string(),
        Some(n) if unit.is_empty() => n.to_string(),
        Some(n) => format!("{n} {unit}"),
        None => text(v),
    }
}

fn duration(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(ms) if ms < 1000.0 => format!("{ms} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
        None => text(v),
    }
}

fn time(v: Option<&Value>) -> String {
    match v.and_then(Value::as_i64) {
        Some(ms) if ms > 0 => timestamp(ms),
        _ => text(v),
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
mod plugin_table_tests {
    use super::*;

    #[test]
    fn plugins_table_lists_name_and_version() {
        let t = plugins_table(&[
            serde_json::json!({"name": "skeleton", "plugin": "skeleton", "version": "0.1.0", "file": "/x/libsl_skeleton.so"}),
        ]);
        assert!(t.contains("skeleton") && t.contains("0.1.0") && t.contains("VERSION"), "{t}");
        assert_eq!(plugins_table(&[]).trim(), "[]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(action_details(&action).unwrap(), expected);
        let bad = json!({"name": "x", "code": "%%%"});
        assert!(format!("{:#}", action_details(&bad).unwrap_err()).contains("invalid base64"));
    }
}
