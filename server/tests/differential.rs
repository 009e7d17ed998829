//! Differential tests: the sandbox's libraries against Lua 5.4 itself.
//!
//! Every `tests/differential/*.lua` file (other than `driver.lua`) holds
//! many small cases, each starting with a line `--- name`:
//!
//! ```lua
//! --- rep with separator
//! return string.rep('ab', 3, ',')
//! ```
//!
//! The cases of a file and the driver (`driver.lua`) make one script,
//! which runs in Debian's `lua5.4` (the report on stdout) and as an action
//! on a real slserver (the report as `main`'s result). The report has one
//! line per case: its results as text (strings escaped, numbers with their
//! subtype), or its error message (with the `case:N: ` position that Lua
//! puts before the errors of library functions, which the sandbox's
//! replacements of them must give too).
//! The two reports must be equal line by line, except for the cases in
//! [`KNOWN`], the sandbox's deliberate differences from Lua 5.4 (README,
//! "Differences from Lua 5.4"), which must still differ (a known case that
//! agrees is an error too, so that the list stays true).
//!
//! A file whose invocation fails (a limit ends it) is run again one case
//! per invocation, so that the report names the case that failed (a case
//! the stall limit ended is tried up to [`STALL_ATTEMPTS`] times).
//!
//! `lua5.4` must be installed (`scripts/test` installs it): without it
//! this test fails, saying so, rather than passing without comparing.
//! `DIFF_ONLY=substring` runs only the files whose name contains it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;
use serde_json::Value;

/// The deliberate differences: (file, case, why). The why is what the
/// README's list says.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "patterns",
        "tail call error position",
        "the functions the sandbox replaces with Lua code (string.find, match, gmatch, gsub, setmetatable, \
         require) raise their errors at the caller's line; a tail call (`return string.find(...)`) has no \
         caller's line left, so the message has no `chunk:line:` position",
    ),
    (
        "tables",
        "unpack past the most values",
        "one library call returns at most 65,536 values: table.unpack, string.byte, utf8.codepoint and \
         string.unpack raise Lua's own \"too many results\" errors past that, where Lua 5.4's stack holds \
         about a million",
    ),
    (
        "tables",
        "byte past the most values",
        "one library call returns at most 65,536 values: table.unpack, string.byte, utf8.codepoint and \
         string.unpack raise Lua's own \"too many results\" errors past that, where Lua 5.4's stack holds \
         about a million",
    ),
    ("strings", "string metatable protected", "getmetatable('') is false: the string metatable is hidden"),
    (
        "base",
        "tostring inside a coroutine yielding from __tostring",
        "__tostring run by tostring is called where the hook can pause it, so a coroutine.yield in it yields \
         where Lua 5.4 raises \"attempt to yield across a C-call boundary\"",
    ),
    (
        "base",
        "ipairs with a yielding __index in a coroutine",
        "__index run by the ipairs iterator is called where the hook can pause it, so a coroutine.yield in it \
         yields where Lua 5.4 raises \"attempt to yield across a C-call boundary\"",
    ),
];

/// Where Debian's lua5.4 (5.4.4 in Debian 12) and Lua 5.4.8, which the
/// sandbox embeds, differ: (file, case, the line Lua 5.4.8 reports). The
/// sandbox must report that line; lua5.4 may report it or another.
const VERSION: &[(&str, &str, &str)] = &[
    // 5.4.4 names argument #1 (a bug fixed in 5.4.5).
    ("tables", "remove out of bounds", r#"error "case:1: bad argument #2 to 'remove' (position out of bounds)""#),
    ("tables", "remove zero from nonempty", r#"error "case:1: bad argument #2 to 'remove' (position out of bounds)""#),
    ("tables", "remove bad position long", r#"error "case:1: bad argument #2 to 'remove' (position out of bounds)""#),
    // 5.4.4 accepts a continuation byte at the start.
    ("utf8", "codes continuation start", r#"error "case:1: bad argument #1 to 'codes' (invalid UTF-8 code)""#),
];

/// The limits of the actions that run the cases: the most the server
/// allows, so that no case is stopped by a limit it did not ask for.
const LIMITS: &str = r#""timeout": 120000, "maxmem": 65536, "instructions": 10000000000"#;

/// Runs of a case that the stall limit (20 ms where code cannot be
/// paused) ended: a long pattern call that takes a few milliseconds alone
/// can take more on a machine busy with other work; a slow matcher would
/// be stopped every time.
const STALL_ATTEMPTS: usize = 3;

/// One case of a corpus file.
struct Case {
    name: String,
    code: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

/// The cases of a corpus file, in order. Lines before the first `--- `
/// are the file's header.
fn parse(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("--- ") {
            let name = name.trim().to_string();
            assert!(
                !name.contains(':') && cases.iter().all(|c| c.name != name),
                "{}: case name '{name}' repeated or with a ':'",
                path.display()
            );
            cases.push(Case { name, code: String::new() });
        } else if let Some(case) = cases.last_mut() {
            case.code.push_str(line);
            case.code.push('\n');
        }
    }
    assert!(!cases.is_empty(), "{}: no cases", path.display());
    cases
}

/// A Lua long string literal holding `s` exactly.
fn long_string(s: &str) -> String {
    let mut level = 0;
    while s.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    // A newline right after the opening bracket is skipped by Lua.
    format!("[{eq}[\n{s}]{eq}]")
}

/// The script of a file: its cases as `CASES`, then the driver.
fn script(cases: &[Case]) -> String {
    let driver = std::fs::read_to_string(corpus_dir().join("driver.lua")).expect("driver.lua");
    let mut out = String::from("CASES = {\n");
    for c in cases {
        out.push_str(&format!("  {{ {}, {} }},\n", long_string(&c.name), long_string(&c.code)));
    }
    out.push_str("}\n");
    out.push_str(&driver);
    out
}

/// The report of `lua5.4` running `script` (all cases, or case `only`).
fn reference(script_path: &Path) -> String {
    let out = Command::new("lua5.4").arg(script_path).output().unwrap_or_else(|e| {
        panic!(
            "cannot run lua5.4 ({e}): the differential tests compare the sandbox with Debian's lua5.4 \
             and need it installed (scripts/test installs it: apt-get install lua5.4)"
        )
    });
    assert!(out.status.success(), "lua5.4 {} failed: {}", script_path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the report is ASCII")
}

/// The sandbox's report: the action's result, or per case when the whole
/// invocation failed.
fn sandbox(server: &TestServer, action: &str, cases: &[Case]) -> String {
    let r = server.post(&format!("/actions/{action}/block"), "{}");
    if r.status == 200 {
        if let Value::String(s) = r.json() {
            return s;
        }
    }
    // Something ended the invocation: find out which case, one at a time.
    let mut out = String::new();
    for (i, case) in cases.iter().enumerate() {
        for attempt in 1..=STALL_ATTEMPTS {
            let r = server.post(&format!("/actions/{action}/block"), &format!(r#"{{"only": {}}}"#, i + 1));
            let v = r.json();
            if let Value::String(s) = &v {
                if r.status == 200 {
                    out.push_str(s);
                    break;
                }
            }
            let stalled = v["error"]["message"].as_str().is_some_and(|m| m.contains("cannot be paused"));
            if !stalled || attempt == STALL_ATTEMPTS {
                out.push_str(&format!("{}: ended the invocation: {} {v}\n", case.name, r.status));
            }
        }
    }
    out
}

/// `report`'s lines by case name (the driver writes `name: result`).
fn lines(report: &str, cases: &[Case]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (i, line) in report.lines().enumerate() {
        let (name, result) = match line.split_once(": ") {
            Some((name, result)) if cases.iter().any(|c| c.name == name) => (name.to_string(), result.to_string()),
            _ => (format!("#{}", i + 1), line.to_string()),
        };
        m.insert(name, result);
    }
    m
}

fn lua_available() -> bool {
    Command::new("lua5.4").arg("-v").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn the_sandbox_libraries_agree_with_lua_5_4() {
    assert!(
        lua_available(),
        "lua5.4 is not installed: the differential tests compare the sandbox with Debian's lua5.4 and cannot \
         run without it (scripts/test installs it; by hand: apt-get install lua5.4)"
    );
    let only = std::env::var("DIFF_ONLY").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/differential")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua") && !p.ends_with("driver.lua"))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(&only)))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files");

    let server = TestServer::start("");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut problems = Vec::new();
    let mut known_seen = Vec::new();
    let mut total = 0;
    for path in &files {
        let file = path.file_stem().unwrap().to_string_lossy().to_string();
        let cases = parse(path);
        total += cases.len();
        let src = script(&cases);
        let script_path = tmp.path().join(format!("{file}.lua"));
        std::fs::write(&script_path, &src).unwrap();
        let want = lines(&reference(&script_path), &cases);
        let action = format!("diff-{file}");
        let r = server.create(&action, &src, LIMITS);
        assert_eq!(r.status, 201, "create {action}: {}", r.text());
        let got = lines(&sandbox(&server, &action, &cases), &cases);
        for c in &cases {
            let (w, g) = (want.get(&c.name), got.get(&c.name));
            if let Some((_, _, line)) = VERSION.iter().find(|(f, n, _)| *f == file && *n == c.name) {
                if g.map(String::as_str) != Some(*line) {
                    problems.push(format!(
                        "{file}: '{}' (Lua 5.4.8)\n    lua 5.4.8: {line}\n    sandbox:   {}",
                        c.name,
                        g.map_or("(no line)", |s| s)
                    ));
                }
                continue;
            }
            let known = KNOWN.iter().find(|(f, n, _)| *f == file && *n == c.name);
            match known {
                Some(_) if w == g => problems.push(format!(
                    "{file}: '{}' is listed as a known difference but agrees now ({w:?}): remove it from KNOWN \
                     (and from the README's list)",
                    c.name
                )),
                Some(_) => known_seen.push(format!("{file}: '{}'", c.name)),
                None if w != g => problems.push(format!(
                    "{file}: '{}'\n    lua5.4:  {}\n    sandbox: {}",
                    c.name,
                    w.map_or("(no line)", |s| s),
                    g.map_or("(no line)", |s| s)
                )),
                None => {}
            }
        }
        for extra in got.keys().filter(|k| k.starts_with('#')) {
            problems.push(format!("{file}: unexpected line {extra}: {}", got[extra]));
        }
    }
    eprintln!(
        "{} files, {total} cases; {} known differences; {} problems",
        files.len(),
        known_seen.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "the sandbox differs from lua5.4:\n{}", problems.join("\n"));
}
