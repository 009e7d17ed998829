//! `slcli test DIR`: runs the Lua test files of a directory on the server.
//!
//! Each `*_test.lua` file becomes a temporary action: its text, then the
//! harness (`harness.lua`) on the same chunk, after the file's last line so
//! that line numbers in messages are the file's. The harness defines
//! `main`, which lists the file's test functions or runs one of them, and
//! the assertion helpers. Every test case is a separate blocking
//! invocation, so a case that hits a limit fails alone. The temporary
//! actions are deleted at the end, whatever happened.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{self, Kind, LuaFile};
use crate::client::{encode, snippet, Client, Method, ServerError};
use crate::json::{self, Scalar};
use crate::locate;
use crate::output::{emit, visible, Lines};

/// The harness appended to every test file.
const HARNESS: &str = include_str!("harness.lua");

/// The long help of `slcli test`.
pub const LONG_ABOUT: &str = "\
Run the Lua tests of a directory on the server.

Test files are the *_test.lua files under DIR (at any depth, hidden directories skipped; a \
symbolic link only to a file inside DIR, as for `slcli deploy`). \
Each global function of a test file whose name starts with `test` is one test case:

    function test_create()
      local item = invoke('items.create', { name = 'pen' })
      assert_eq(item.name, 'pen')
    end

    function test_missing()
      assert_error(function() invoke('items.get', { id = 'nope' }) end, 'not found')
    end

Tests call the actions under test with invoke(NAME, ARGS), so deploy them first \
(slcli deploy DIR). Assertions, available to test functions:

    assert_eq(actual, expected [, msg])   tables are compared deeply; the message shows both
    assert_ne(actual, unexpected [, msg])
    assert_error(fn [, pattern [, msg]])  fn must raise an error matching the Lua pattern;
                                          returns the error
    error(...) and assert(...)            fail the case too

For each file, slcli creates a temporary action named _test.<file>.<pid>.<n> from the file's \
text with a harness appended (after the file's last line, so line numbers are the file's; a \
test file must therefore not end with a top-level `return`), and runs each case as its own \
invocation with the server's default limits, so one case hitting a limit does not stop the \
others. The temporary actions are deleted at the end, also when tests fail (an interrupted \
run may leave them behind: delete them with slcli delete). Globals set by one case may still \
be there in the next: the server keeps warm Lua states.

Output, TAP-like:

    ok 1 - items_test.lua: test_create
    not ok 2 - items_test.lua: test_missing
      # items_test.lua:7: expected an error, but the function returned
    1 passed, 1 failed

Exit status: 0 when every case passed, 1 when one failed or could not run (and for usage \
errors, such as a directory without test files).";

/// The name of the temporary action for test file `rel`, the `n`th of
/// process `pid`: `_test.<path with '/' as '.'>.<pid>.<n>`, at most 128
/// characters, other characters than the name's replaced by `_`.
pub fn temp_name(rel: &Path, pid: u32, n: usize) -> String {
    let shown = app::display_rel(rel);
    let stem = shown.strip_suffix(".lua").unwrap_or(&shown);
    let stem: String = stem
        .chars()
        .map(|c| {
            if c == '/' {
                '.'
            } else if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let suffix = format!(".{pid}.{n}");
    let room = app::MAX_NAME - "_test.".len() - suffix.len();
    let stem: String = stem.chars().take(room).collect();
    format!("_test.{stem}{suffix}")
}

/// The source of the temporary action: the file's bytes (UTF-8 or not),
/// then the harness.
pub fn test_source(file: &[u8]) -> Vec<u8> {
    let mut source = Vec::with_capacity(file.len() + HARNESS.len() + 1);
    source.extend_from_slice(file);
    if !file.ends_with(b"\n") {
        source.push(b'\n');
    }
    source.extend_from_slice(HARNESS.as_bytes());
    source
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
}

/// The harness's answer to a case, as far as it is read.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    ok: Scalar,
    #[serde(default)]
    message: Scalar,
}

/// The harness's answer to `{"case": ...}` (the JSON `body` of the result).
pub fn verdict(body: &str) -> Verdict {
    match serde_json::from_str::<Answer>(body) {
        Ok(Answer { ok: Scalar::Bool(true), .. }) => Verdict::Pass,
        Ok(Answer { message: Scalar::Str(m), .. }) => Verdict::Fail(m),
        Ok(Answer { message: Scalar::Null, .. }) | Err(_) => {
            Verdict::Fail(format!("the test harness answered {}", snippet(body)))
        }
        Ok(Answer { message, .. }) => Verdict::Fail(message.text()),
    }
}

/// The harness's answer to `{"list": true}`: names (an empty Lua table may come as `{}`).
fn case_names(body: &str) -> Result<Vec<String>> {
    let inside = body.trim().strip_prefix('{').and_then(|rest| rest.strip_suffix('}'));
    if inside.is_some_and(|inside| inside.trim().is_empty()) {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    json::each(body, |name: Scalar| match name {
        Scalar::Str(name) => {
            names.push(name);
            Ok(())
        }
        _ => bail!("a name is not a string"),
    })
    .with_context(|| format!("the test harness answered the list with {}", snippet(body)))?;
    Ok(names)
}

/// `ok 1 - items_test.lua: test_create`, or `not ok ...` with `  # ` lines.
/// The label (the case name comes from the server) is one line, and the
/// message's control characters but its line breaks are shown as escapes.
pub fn tap_line(n: usize, label: &str, verdict: &Verdict) -> String {
    let label = visible(label, Lines::One);
    match verdict {
        Verdict::Pass => format!("ok {n} - {label}"),
        Verdict::Fail(message) => {
            let mut out = format!("not ok {n} - {label}");
            for line in visible(message, Lines::Keep).lines() {
                out.push_str("\n  # ");
                out.push_str(line);
            }
            out
        }
    }
}

/// Deletes the temporary actions when dropped, whatever happened before.
struct Temporaries<'a> {
    client: &'a Client,
    names: Vec<String>,
}

impl Drop for Temporaries<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = self.client.send(Method::Delete, &format!("/actions/{}", encode(name)), None) {
                let e = visible(&format!("{e:#}"), Lines::Keep).into_owned();
                eprintln!("warning: could not delete the temporary action {name}: {e}");
            }
        }
    }
}

/// A failed invocation as a case's message (`message (500 timeout)`).
fn invocation_failure(e: &ServerError) -> String {
    e.to_string()
}

/// Runs the tests; returns the numbers passed and failed.
struct Runner<'a> {
    client: &'a Client,
    filter: Option<&'a str>,
    n: usize,
    passed: usize,
    failed: usize,
    /// Temporary action names and their files, to map messages back.
    chunks: Vec<(String, String)>,
}

impl Runner<'_> {
    fn report(&mut self, label: &str, verdict: Verdict) -> Result<()> {
        self.n += 1;
        let verdict = match verdict {
            Verdict::Fail(m) => {
                let chunks: Vec<(&str, &str)> = self.chunks.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                self.failed += 1;
                Verdict::Fail(locate::map_chunks(&m, &chunks))
            }
            Verdict::Pass => {
                self.passed += 1;
                Verdict::Pass
            }
        };
        emit(&tap_line(self.n, label, &verdict))?;
        Ok(())
    }

    /// `POST /actions/NAME/block` with `args`: the result (its JSON text), or the server's refusal.
    fn invoke(&self, name: &str, args: &Value) -> Result<std::result::Result<String, ServerError>> {
        let body = serde_json::to_vec(args)?;
        let reply = self.client.send(Method::Post, &format!("/actions/{}/block", encode(name)), Some(&body))?;
        match reply.success() {
            Ok(reply) => Ok(Ok(reply.body)),
            Err(e) if e.status >= 500 && e.kind.is_none() => Err(e.into()),
            Err(e) => Ok(Err(e)),
        }
    }

    fn run_file(&mut self, file: &LuaFile, temp: &str, temporaries: &mut Temporaries) -> Result<()> {
        let shown = file.shown();
        let text = fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
        self.chunks.push((temp.to_string(), shown.clone()));
        let body = json!({
            "name": temp,
            "code": base64::engine::general_purpose::STANDARD.encode(test_source(&text)),
        });
        let reply = self.client.send(Method::Post, "/actions", Some(&serde_json::to_vec(&body)?))?;
        match reply.success() {
            Ok(_) => temporaries.names.push(temp.to_string()),
            Err(e) if (400..500).contains(&e.status) => {
                let message = e.message.clone().unwrap_or_else(|| e.to_string());
                return self.report(&shown, Verdict::Fail(message));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create the temporary action for {shown}")),
        }
        let names = match self.invoke(temp, &json!({"list": true}))? {
            Ok(list) => case_names(&list)?,
            Err(e) => return self.report(&shown, Verdict::Fail(invocation_failure(&e))),
        };
        for case in names {
            let label = format!("{shown}: {case}");
            if self.filter.is_some_and(|f| !label.contains(f)) {
                continue;
            }
            let verdict = match self.invoke(temp, &json!({"case": case}))? {
                Ok(result) => verdict(&result),
                Err(e) => Verdict::Fail(invocation_failure(&e)),
            };
            self.report(&label, verdict)?;
        }
        Ok(())
    }
}

/// `slcli test DIR [--filter S]`: returns whether every case passed.
pub fn command(client: &Client, dir: &Path, filter: Option<&str>) -> Result<bool> {
    let files = app::lua_files(dir, Kind::Tests)?;
    if files.is_empty() {
        bail!("no test files (*_test.lua) under {}", dir.display());
    }
    let mut temporaries = Temporaries { client, names: Vec::new() };
    let mut runner = Runner { client, filter, n: 0, passed: 0, failed: 0, chunks: Vec::new() };
    let pid = std::process::id();
    for (i, file) in files.iter().enumerate() {
        runner.run_file(file, &temp_name(&file.rel, pid, i + 1), &mut temporaries)?;
    }
    drop(temporaries);
    emit(&format!("{} passed, {} failed", runner.passed, runner.failed))?;
    if runner.n == 0 {
        match filter {
            Some(f) => bail!("no test case matches --filter {f:?}"),
            None => bail!("the test files define no test functions (global functions whose name starts with 'test')"),
        }
    }
    Ok(runner.failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_valid() {
        assert_eq!(temp_name(Path::new("items_test.lua"), 4242, 1), "_test.items_test.4242.1");
        assert_eq!(temp_name(Path::new("api/users_test.lua"), 7, 12), "_test.api.users_test.7.12");
        assert_eq!(temp_name(Path::new("odd name+ü_test.lua"), 7, 1), "_test.odd_name___test.7.1");
        let long = format!("{}/{}_test.lua", "d".repeat(100), "f".repeat(100));
        let name = temp_name(Path::new(&long), u32::MAX, 999_999);
        assert_eq!(name.len(), 128);
        assert!(name.ends_with(".4294967295.999999"), "{name}");
        for name in [name, temp_name(Path::new("x_test.lua"), 1, 1)] {
            assert!(app::valid_name(&name), "{name}");
        }
    }

    #[test]
    fn the_harness_comes_after_the_file() {
        let source = String::from_utf8(test_source(b"function test_a()\n  assert_eq(1, 2)\nend")).unwrap();
        assert!(source.starts_with("function test_a()\n  assert_eq(1, 2)\nend\n\n-- slcli test harness"), "{source}");
        assert!(source.contains("function main(args)"));
        let source = String::from_utf8(test_source(b"x = 1\n")).unwrap();
        assert!(source.starts_with("x = 1\n\n-- slcli"), "{source}");
        // A file that is not UTF-8 is sent as it is.
        let source = test_source(b"s = 'caf\xe9'");
        assert!(source.starts_with(b"s = 'caf\xe9'\n\n-- slcli"));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(r#"{"ok": true}"#), Verdict::Pass);
        assert_eq!(verdict(r#"{"ok": false, "message": "x:3: boom"}"#), Verdict::Fail("x:3: boom".into()));
        assert_eq!(verdict(r#"{"ok": false, "message": 3}"#), Verdict::Fail("3".into()));
        assert!(matches!(verdict("null"), Verdict::Fail(m) if m == "the test harness answered null"));
        assert_eq!(case_names(r#"["test_a", "test_b"]"#).unwrap(), ["test_a", "test_b"]);
        assert!(case_names("{}").unwrap().is_empty());
        assert!(case_names(" { } ").unwrap().is_empty());
        let e = format!("{:#}", case_names("[1]").unwrap_err());
        assert_eq!(e, "the test harness answered the list with [1]: a name is not a string");
        assert!(case_names(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn tap_lines() {
        assert_eq!(tap_line(1, "items_test.lua: test_create", &Verdict::Pass), "ok 1 - items_test.lua: test_create");
        assert_eq!(
            tap_line(2, "items_test.lua: test_delete", &Verdict::Fail("items_test.lua:7: expected 1\ngot 2".into())),
            "not ok 2 - items_test.lua: test_delete\n  # items_test.lua:7: expected 1\n  # got 2"
        );
        // A case name and a message from the server cannot drive the terminal.
        assert_eq!(
            tap_line(3, "x_test.lua: test_\u{1b}[2J\n", &Verdict::Fail("a\u{1b}]0;t\u{7}\r\nb\rc".into())),
            "not ok 3 - x_test.lua: test_\\e[2J\\n\n  # a\\e]0;t\\x07\n  # b\\rc"
        );
    }
}
