//! Human-readable rendering (results, tables, an action's details) and
//! writing to stdout. With `--json` the commands print the server's body
//! instead, through [`emit_json`].
//!
//! Text from the server is never printed raw: [`visible`] shows control
//! characters as escapes (`\e` for ESC, `\r`, `\xNN`), so an answer cannot
//! clear the screen, set the window title, colour the terminal or overwrite
//! a line. Messages and multi-line text keep their line breaks; names and
//! table cells are kept on one line.
//!
//! Answers are rendered without building them whole ([`crate::json`]):
//! tables read the server's array twice, one element at a time (first to
//! check it and measure the columns, then to write the rows), and results
//! are re-indented as text. What a command holds is the body, bounded by
//! the client, and one row; the time is that of reading it and printing.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::json::{self, Scalar};

/// How [`visible`] treats line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Multi-line text (results, sources, messages): `\n` and `\t` stay,
    /// and so does a `\r` right before a `\n` (a CRLF line end), which cannot
    /// overwrite anything. Any other `\r` is escaped.
    Keep,
    /// One line (a name, a table cell, a status): `\n`, `\r` and `\t` are
    /// escaped too.
    One,
}

/// `text` with every control character shown as an escape, so that text
/// from the server cannot drive the terminal: ESC is `\e`, CR `\r` (LF
/// `\n` and TAB `\t` with [`Lines::One`]), any other C0 control, DEL and
/// the C1 controls (U+0080 to U+009F) `\xNN`. Everything else, a backslash
/// included, is left as it is. The one place where this is decided.
pub fn visible(text: &str, lines: Lines) -> Cow<'_, str> {
    let keep = |i: usize, c: char| match c {
        '\n' | '\t' => lines == Lines::Keep,
        '\r' => lines == Lines::Keep && text[i + 1..].starts_with('\n'),
        c => !c.is_control(),
    };
    if text.char_indices().all(|(i, c)| keep(i, c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        match c {
            _ if keep(i, c) => out.push(c),
            '\x1b' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// [`visible`] for an owned string, without copying a clean one.
fn visible_owned(text: String, lines: Lines) -> String {
    match visible(&text, lines) {
        Cow::Borrowed(_) => None,
        Cow::Owned(escaped) => Some(escaped),
    }
    .unwrap_or(text)
}

/// Writes `text` to stdout, ending it with a newline. Its control
/// characters are shown as escapes ([`visible`], keeping line breaks): the
/// commands build `text` from what the server said.
pub fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    write_text(&mut out, &visible(text, Lines::Keep))?;
    out.flush()
}

/// `--json`: writes the server's `body` to stdout as it came, if it is
/// JSON, except for the control characters JSON lets through raw: DEL and
/// the C1 controls in strings become `\u00XX` escapes (the value is the
/// same) and a CR between tokens is left out. A body that is not JSON
/// (`OK`, or anything a hostile server sends) is shown like text
/// ([`visible`]).
pub fn emit_json(body: &str) -> Result<()> {
    to_stdout(|out| Ok(write_json(body, out)?))
}

/// The writer of [`emit_json`].
fn write_json(body: &str, out: &mut dyn Write) -> io::Result<()> {
    if !json::is_json(body) {
        return write_text(out, &visible(body, Lines::Keep));
    }
    // In valid JSON, raw control characters other than whitespace can only
    // be DEL and C1 controls inside strings.
    let raw = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !body.chars().any(raw) {
        return write_text(out, body);
    }
    let mut clean = String::with_capacity(body.len() + 16);
    for c in body.chars() {
        match c {
            '\r' => {}
            c if raw(c) => {
                let _ = write!(clean, "\\u{:04x}", u32::from(c));
            }
            c => clean.push(c),
        }
    }
    write_text(out, &clean)
}

/// `--json`: the server's `body` ([`emit_json`]); otherwise the text
/// `human` makes of it ([`emit`]).
pub fn print_reply(json: bool, body: &str, human: impl FnOnce() -> Result<String>) -> Result<()> {
    if json {
        emit_json(body)
    } else {
        Ok(emit(&human()?)?)
    }
}

/// `--json`: the server's `body` ([`emit_json`]); otherwise what `human`
/// writes as it goes (tables), on a buffered stdout ([`to_stdout`]).
pub fn stream_reply(json: bool, body: &str, human: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    if json {
        emit_json(body)
    } else {
        to_stdout(human)
    }
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
/// Control characters are shown as escapes ([`visible`]; line breaks stay).
pub fn write_result(body: &str, out: &mut dyn Write) -> Result<()> {
    if let Ok(text) = serde_json::from_str::<String>(body) {
        write_text(out, &visible(&text, Lines::Keep))?;
    } else if json::is_json(body) {
        write_pretty(body, out)?;
        out.write_all(b"\n")?;
    } else {
        write_text(out, &visible(body, Lines::Keep))?;
    }
    Ok(())
}

/// Writes `json`, which must be valid JSON, indented as serde_json's pretty
/// printer does (two spaces, `"key": value`, `[]` and `{}` when empty), but
/// as text: nothing is built, and numbers and strings stay as they came,
/// but for the DEL and C1 controls JSON allows raw in strings, written as
/// `\u00XX` escapes (as `--json` does).
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
                _ if escaped => {
                    escaped = false;
                    buf.push(c);
                }
                '\\' => {
                    escaped = true;
                    buf.push(c);
                }
                '"' => {
                    in_string = false;
                    buf.push(c);
                }
                c if c.is_control() => {
                    let _ = write!(buf, "\\u{:04x}", u32::from(c));
                }
                c => buf.push(c),
            }
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
    runs: Option<Runs>,
}

/// The `runs` of an action: its succeeded and failed runs of each kind.
#[derive(Default, Deserialize)]
struct Runs {
    #[serde(default)]
    blocking: Outcomes,
    #[serde(default, rename = "async")]
    asynchronous: Outcomes,
    #[serde(default)]
    route: Outcomes,
    #[serde(default)]
    invoke: Outcomes,
    #[serde(default)]
    event: Outcomes,
}

#[derive(Default, Deserialize)]
struct Outcomes {
    #[serde(default)]
    succeeded: u64,
    #[serde(default)]
    failed: u64,
}

impl Runs {
    /// `blocking 12 succeeded, 1 failed; async 3 succeeded, 0 failed`:
    /// the kinds with runs, or `none yet`.
    fn text(&self) -> String {
        let kinds = [
            ("blocking", &self.blocking),
            ("async", &self.asynchronous),
            ("route", &self.route),
            ("invoke", &self.invoke),
            ("event", &self.event),
        ];
        let shown: Vec<String> = kinds
            .iter()
            .filter(|(_, o)| o.succeeded + o.failed > 0)
            .map(|(kind, o)| format!("{kind} {} succeeded, {} failed", o.succeeded, o.failed))
            .collect();
        if shown.is_empty() {
            "none yet".to_string()
        } else {
            shown.join("; ")
        }
    }
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
            } else if key == "runs" {
                d.runs = Some(map.next_value()?);
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
    let mut lines: Vec<(Cow<str>, String)> = Vec::new();
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
            lines.push((Cow::Borrowed(key), visible_owned(shown, Lines::One)));
        }
    }
    for (key, v) in &details.fields {
        if !ORDER.contains(&key.as_str()) {
            lines.push((visible(key, Lines::One), visible_owned(v.text(), Lines::One)));
        }
    }
    if let Some(runs) = &details.runs {
        lines.push((Cow::Borrowed("runs"), runs.text()));
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
        let source = decode_source(code)?;
        // Shown only: a byte that is not UTF-8 shows as U+FFFD (`-o FILE`
        // writes the exact bytes).
        out.push('\n');
        out.push_str(&visible(&String::from_utf8_lossy(&source), Lines::Keep));
    }
    Ok(out)
}

fn decode_source(code: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(code.trim())
        .context("the server sent the action's source in invalid base64")
}

/// `slcli get NAME -o FILE`: the action's source, its exact bytes (UTF-8
/// or not), from the server's answer to `GET /actions/NAME`.
pub fn action_source(body: &str) -> Result<Vec<u8>> {
    let details: Details = serde_json::from_str(body)
        .map_err(|e| anyhow!("the server's answer is not a JSON object of an action: {e}"))?;
    match details.code.as_str() {
        Some(code) => decode_source(code),
        None => Err(anyhow!("the server's answer has no source (`code`)")),
    }
}

/// Writes the JSON array `body` as a table with `headers`: one row per
/// element, read as a `T` and turned into cells by `cells`; `[]` without
/// rows. Left-aligned columns two spaces apart, each cell on one line
/// ([`visible`] with [`Lines::One`]). The array is read twice,
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
    let cells = |item: T| -> Vec<String> { cells(item).into_iter().map(|c| visible_owned(c, Lines::One)).collect() };
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

/// Writes `rows`, already in memory, as a table with `headers` (as
/// [`table`] does, each cell on one line); `[]` without rows.
pub fn write_rows(out: &mut dyn Write, headers: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
    if rows.is_empty() {
        return out.write_all(b"[]\n");
    }
    let rows: Vec<Vec<String>> =
        rows.into_iter().map(|row| row.into_iter().map(|c| visible_owned(c, Lines::One)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    write_row(out, headers.iter().map(|h| h.to_string()).collect(), &widths)?;
    for row in rows {
        write_row(out, row, &widths)?;
    }
    Ok(())
}

/// `key:  value` lines, the values lined up two spaces after the longest
/// key, each value on one line ([`visible`] with [`Lines::One`]), as
/// `slcli get` shows an action.
pub fn fields(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in lines {
        let _ = writeln!(out, "{:<width$}  {}", format!("{k}:"), visible(v, Lines::One));
    }
    out
}

/// The valid JSON text `json` on one line: the whitespace between tokens
/// left out, strings as they came (their escapes kept), but for the DEL
/// and C1 controls JSON allows raw in strings, written as `\u00XX` escapes.
pub fn json_one_line(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match c {
                _ if escaped => {
                    escaped = false;
                    out.push(c);
                }
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The valid JSON text `json` indented as [`write_result`] shows results.
pub fn pretty(json: &str) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_pretty(json, &mut out);
    String::from_utf8_lossy(&out).into_owned()
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

/// A time the server gives in Unix milliseconds as [`timestamp`] shows it;
/// anything else as it is (`-` for null).
pub fn time(v: &Scalar) -> String {
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
        assert!(format!("{:#}", action_source(&bad.to_string()).unwrap_err()).contains("invalid base64"));
    }

    #[test]
    fn a_source_that_is_not_utf8_is_shown_lossily_and_saved_exactly() {
        let source = b"function main() return #'caf\xe9' end\n";
        let action = json!({"name": "latin1", "code": base64::engine::general_purpose::STANDARD.encode(source)});
        let shown = action_details(&action.to_string()).unwrap();
        assert!(shown.ends_with("\nfunction main() return #'caf\u{fffd}' end\n"), "{shown}");
        assert_eq!(action_source(&action.to_string()).unwrap(), source);
        let none = action_source(r#"{"name": "x"}"#).unwrap_err().to_string();
        assert!(none.contains("no source"), "{none}");
    }

    #[test]
    fn details_show_the_runs_of_each_kind_that_ran() {
        let runs = json!({"blocking": {"succeeded": 1000, "failed": 5}, "async": {"succeeded": 0, "failed": 0},
            "route": {"succeeded": 0, "failed": 2}, "invoke": {"succeeded": 0, "failed": 0}});
        let shown = action_details(&json!({"name": "x", "runs": runs}).to_string()).unwrap();
        assert_eq!(shown, "name:  x\nruns:  blocking 1000 succeeded, 5 failed; route 0 succeeded, 2 failed\n");
        let none = json!({"blocking": {"succeeded": 0, "failed": 0}});
        let shown = action_details(&json!({"name": "x", "runs": none}).to_string()).unwrap();
        assert_eq!(shown, "name:  x\nruns:  none yet\n");
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

    #[test]
    fn json_on_one_line_keeps_strings_as_they_came() {
        assert_eq!(
            json_one_line("{\n  \"a b\": [1, 2],\r\n  \"s\": \"x \\\" y\\n\"\n}"),
            r#"{"a b":[1,2],"s":"x \" y\n"}"#
        );
        assert_eq!(json_one_line("\"a\u{7f}\u{9b}\""), r#""a\u007f\u009b""#);
        assert_eq!(json_one_line(" 12 "), "12");
    }

    #[test]
    fn fields_and_rows_line_up() {
        let shown = fields(&[("name", "orders".to_string()), ("retention", "a\nb\u{1b}".to_string())]);
        assert_eq!(shown, "name:       orders\nretention:  a\\nb\\e\n");
        let rows = written(|out| {
            Ok(write_rows(out, &["A", "LONGER"], vec![vec!["1".into(), "x".into()], vec!["22\n".into(), "".into()]])?)
        });
        assert_eq!(rows, "A     LONGER\n1     x\n22\\n\n");
        assert_eq!(written(|out| Ok(write_rows(out, &["A"], vec![])?)), "[]\n");
    }

    #[test]
    fn control_characters_are_shown_as_escapes() {
        let attack = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred";
        assert_eq!(visible(attack, Lines::Keep), r"\e]0;pwned\x07\e[2J\e[31mred");
        assert_eq!(visible("a\u{0}b\u{7f}c\u{9b}d\u{85}", Lines::One), r"a\x00b\x7fc\x9bd\x85");
        // Line breaks stay in text, not in one-line fields; a lone CR never stays.
        assert_eq!(visible("one\ntwo\tx\r\nthree", Lines::Keep), "one\ntwo\tx\r\nthree");
        assert_eq!(visible("one\ntwo\tx\r\nthree", Lines::One), r"one\ntwo\tx\r\nthree");
        assert_eq!(visible("safe\rEVIL", Lines::Keep), r"safe\rEVIL");
        assert_eq!(visible("end\r", Lines::Keep), r"end\r");
        // Printable text, backslashes and non-ASCII letters are left alone, without a copy.
        for clean in [r"C:\path \e", "héllo wörld ✓", ""] {
            assert!(matches!(visible(clean, Lines::One), Cow::Borrowed(t) if t == clean));
        }
    }

    #[test]
    fn json_output_stays_json_without_raw_controls() {
        let json_out = |body: &str| written(|out| Ok(write_json(body, out)?));
        // Valid JSON comes out as it came (serde escaped the C0 controls already).
        let body = r#"{"name": "\u001b[2J", "n": 1}"#;
        assert_eq!(json_out(body), format!("{body}\n"));
        // JSON lets DEL and C1 controls through raw: they become \u escapes, the value unchanged.
        let body = "[\"a\u{7f}b\u{9b}c\"]\r\n";
        let out = json_out(body);
        assert_eq!(out, "[\"a\\u007fb\\u009bc\"]\n");
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), serde_json::from_str::<Value>(body).unwrap());
        // What is not JSON is shown like text.
        assert_eq!(json_out("OK"), "OK\n");
        assert_eq!(json_out("\u{1b}[2Jgotcha"), "\\e[2Jgotcha\n");
    }

    #[test]
    fn results_tables_and_details_show_escapes() {
        assert_eq!(result_text(r#""\u001b]0;title\u0007line 1\nline 2\rX""#), "\\e]0;title\\x07line 1\nline 2\\rX");
        assert_eq!(result_text("raw \u{1b}[31m body"), r"raw \e[31m body");
        assert_eq!(result_text("{\"k\u{9b}\": \"v\u{7f}\"}"), "{\n  \"k\\u009b\": \"v\\u007f\"\n}");
        let t = actions_table(&[json!({"name": "a\u{1b}[2J\nb", "version": 1})]);
        assert!(t.contains(r"a\e[2J\nb  1"), "{t}");
        assert!(!t.contains('\u{1b}') && t.lines().count() == 2, "{t}");
        let code = base64::engine::general_purpose::STANDARD.encode("x = 1\r\nprint('\u{1b}[2J')\n");
        let shown = action_details(&json!({"name": "n\u{1b}", "own\ner": "\r", "code": code}).to_string()).unwrap();
        assert_eq!(shown, "name:     n\\e\nown\\ner:  \\r\n\nx = 1\r\nprint('\\e[2J')\n");
    }
}
