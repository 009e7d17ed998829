//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` on a
//! step budget.
//!
//! Lua's own pattern matcher runs in C, where the instruction hook never
//! fires, so a crafted pattern could run for hours. These replacements use
//! `sl_lpattern`, which charges every matcher step to a budget handed out
//! [`STEP_GRANT`] steps at a time: steps count against the invocation's
//! instruction budget, and at each grant the clock is read, so that a call
//! is cut off when it actually runs past the deadline, or, counting the
//! thread's CPU time, runs longer than
//! [`STALL_LIMIT`](super::hook::STALL_LIMIT) past the time slice (a call
//! cannot be paused). A
//! cut-off call aborts the invocation with the matching limit, like any
//! other limit.
//! The matcher's real speed decides how much a call may do in that time,
//! not an estimate of it.

use std::cell::Cell;

use mlua::{Lua, MultiValue, Table, Value};
use sl_lpattern::{Budget, Capture, Error as PatError, GMatchState, GsubError, Match};

use super::alloc::DEFAULT_MAX_STRING;
use super::decide::PIECE;
use super::error::soft;
use super::hook::{with_active, LimitKind};

/// Matcher steps granted at a time; the limits (and the clock) are checked
/// between grants. Some 0.1 to 0.5 ms of matching.
pub const STEP_GRANT: u64 = 1 << 16;

/// What bounds one pattern call.
struct Allowance {
    budget: Budget,
    /// Bytes the Lua heap may still grow by (0 = unlimited).
    memory_room: usize,
}

/// The next grant of steps for the running invocation, charged to its
/// instruction budget in advance (what is left unused is given back when
/// the call ends), or 0 when a limit says stop: the instruction budget is
/// spent, the deadline passed, or code that cannot be paused (this call,
/// and what ran before it in the same step) has run [`STALL_LIMIT`](super::hook::STALL_LIMIT) of the
/// thread's CPU time past the end of the time slice (recorded as the
/// invocation's abort; see [`check_stall`](super::hook::Control::check_stall)).
fn grant() -> u64 {
    with_active(|c| {
        if c.check_stall().is_some() {
            return 0;
        }
        let steps = c.budget.get().saturating_sub(c.used.get()).min(STEP_GRANT);
        if steps == 0 {
            c.abort.set(Some(LimitKind::Instructions));
        }
        c.used.set(c.used.get().saturating_add(steps));
        steps
    })
    .unwrap_or(STEP_GRANT)
}

fn allowance() -> Allowance {
    let room = with_active(|c| {
        let meter = c.meter();
        let limit = meter.limit();
        if limit == 0 {
            0
        } else {
            limit.saturating_sub(meter.used()).max(1)
        }
    })
    .unwrap_or(0);
    Allowance { budget: Budget::with_refill(0, grant), memory_room: room }
}

/// Gives back the steps granted but not used; on exhaustion makes sure an
/// abort is recorded, and returns the error to raise.
fn settle(a: &Allowance, exhausted: bool) -> Option<mlua::Error> {
    let unused = a.budget.remaining();
    with_active(|c| {
        c.used.set(c.used.get().saturating_sub(unused));
        if exhausted {
            c.abort.set(Some(c.abort.get().unwrap_or(LimitKind::Instructions)));
        }
        c.check().map(|kind| mlua::Error::runtime(format!("invocation aborted: {} limit", kind.kind())))
    })
    .flatten()
    .or_else(|| exhausted.then(|| mlua::Error::runtime("pattern matching step budget exhausted")))
}

fn run<T>(f: impl FnOnce(&mut Budget, usize) -> Result<T, PatError>) -> mlua::Result<T> {
    let mut a = allowance();
    let room = a.memory_room;
    let r = f(&mut a.budget, room);
    let exhausted = matches!(r, Err(PatError::BudgetExhausted));
    if let Some(e) = settle(&a, exhausted) {
        return Err(e);
    }
    r.map_err(|e| mlua::Error::runtime(e.to_string()))
}

fn push_capture(lua: &Lua, subject: &[u8], c: &Capture, out: &mut MultiValue) -> mlua::Result<()> {
    out.push_back(match c {
        Capture::Bytes(r) => Value::String(lua.create_string(&subject[r.clone()])?),
        Capture::Position(p) => Value::Integer(*p as i64),
        Capture::Unfinished(_) => return Err(mlua::Error::runtime("unfinished capture")),
    });
    Ok(())
}

fn push_values(lua: &Lua, subject: &[u8], m: &Match, out: &mut MultiValue) -> mlua::Result<()> {
    for c in m.values().map_err(|e| mlua::Error::runtime(e.to_string()))? {
        push_capture(lua, subject, &c, out)?;
    }
    Ok(())
}

/// The name Lua's argument errors give the type of `v` (absent: "no
/// value").
fn arg_type(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::LightUserData(_)) => "light userdata",
        Some(v) => v.type_name(),
    }
}

fn arg_error(i: usize, fname: &str, what: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{i} to '{fname}' ({what})"))
}

/// Argument `i` (1-based) as `luaL_checklstring` takes it: a string, or a
/// number as its text.
fn check_string(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<mlua::String> {
    let v = args.get(i - 1);
    if let Some(Value::String(s)) = v {
        return Ok(s.clone());
    }
    if let Some(v @ (Value::Integer(_) | Value::Number(_))) = v {
        if let Some(s) = lua.coerce_string(v.clone())? {
            return Ok(s);
        }
    }
    Err(arg_error(i, fname, &format!("string expected, got {}", arg_type(v))))
}

/// Argument `i` as `luaL_optinteger` takes it: `None` when absent or nil.
fn opt_integer(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<Option<i64>> {
    let v = match args.get(i - 1) {
        None | Some(Value::Nil) => return Ok(None),
        Some(v) => v,
    };
    if let Some(n) = lua.coerce_integer(v.clone())? {
        return Ok(Some(n));
    }
    let what = if lua.coerce_number(v.clone())?.is_some() {
        "number has no integer representation".to_string()
    } else {
        format!("number expected, got {}", arg_type(Some(v)))
    };
    Err(arg_error(i, fname, &what))
}

fn find_or_match(lua: &Lua, args: MultiValue, find: bool) -> mlua::Result<MultiValue> {
    let fname = if find { "find" } else { "match" };
    let s = check_string(lua, &args, 1, fname)?;
    let p = check_string(lua, &args, 2, fname)?;
    let init = opt_integer(lua, &args, 3, fname)?;
    let plain = find && args.get(3).is_some_and(|v| !matches!(v, Value::Nil | Value::Boolean(false)));
    let (s, p) = (s.as_bytes(), p.as_bytes());
    let init = sl_lpattern::init_offset(init.unwrap_or(1), s.len());
    let mut out = MultiValue::new();
    if init > s.len() {
        out.push_back(Value::Nil);
        return Ok(out);
    }
    if find && (plain || !sl_lpattern::has_specials(&p)) {
        match sl_lpattern::find_plain(&s, &p, init) {
            Some(i) => {
                out.push_back(Value::Integer(i as i64 + 1));
                out.push_back(Value::Integer((i + p.len()) as i64));
            }
            None => out.push_back(Value::Nil),
        }
        return Ok(out);
    }
    match run(|b, _| sl_lpattern::find(&s, &p, init, b))? {
        None => out.push_back(Value::Nil),
        Some(m) => {
            if find {
                out.push_back(Value::Integer(m.start as i64 + 1));
                out.push_back(Value::Integer(m.end as i64));
                for c in &m.captures {
                    push_capture(lua, &s, c, &mut out)?;
                }
            } else {
                push_values(lua, &s, &m, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// The iterator keeps the subject and pattern as Lua strings (which Lua
/// never copies), so that iterators cost the action its own memory only.
fn gmatch(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::Function> {
    let s = check_string(lua, &args, 1, "gmatch")?;
    let p = check_string(lua, &args, 2, "gmatch")?;
    let init = opt_integer(lua, &args, 3, "gmatch")?;
    let init = sl_lpattern::init_offset(init.unwrap_or(1), s.as_bytes().len());
    let state = Cell::new(GMatchState::new(s.as_bytes().len(), init));
    // Its errors come back as (marker, message) too (see `install`).
    lua.create_function(move |lua, ()| {
        let step = || {
            let (subject, pattern) = (s.as_bytes(), p.as_bytes());
            let mut g = state.get();
            let mut out = MultiValue::new();
            let found = run(|b, _| g.next(&subject, &pattern, b));
            state.set(g);
            match found? {
                None => out.push_back(Value::Nil),
                Some(m) => push_values(lua, &subject, &m, &mut out)?,
            }
            Ok(out)
        };
        soft(lua, step())
    })
}

enum Repl {
    Text(Vec<u8>),
    Table(Table),
    Func(mlua::Function),
}

fn gsub(lua: &Lua, args: MultiValue) -> mlua::Result<(mlua::String, i64)> {
    let subject = check_string(lua, &args, 1, "gsub")?;
    let s = subject.clone();
    let p = check_string(lua, &args, 2, "gsub")?;
    let repl = args.get(2).cloned();
    let n = opt_integer(lua, &args, 4, "gsub")?;
    let (s, p) = (s.as_bytes(), p.as_bytes());
    let repl = match repl.unwrap_or(Value::Nil) {
        Value::String(r) => Repl::Text(r.as_bytes().to_vec()),
        Value::Integer(i) => Repl::Text(i.to_string().into_bytes()),
        v @ Value::Number(_) => Repl::Text(number_text(lua, v)?),
        Value::Table(t) => Repl::Table(t),
        Value::Function(f) => Repl::Func(f),
        _ => {
            let got = arg_type(args.get(2));
            return Err(arg_error(3, "gsub", &format!("string/function/table expected, got {got}")));
        }
    };
    let max_n = n.map(|n| n.max(0) as usize);
    let mut out = Vec::new();
    let mut callback_error: Option<mlua::Error> = None;
    let max_string = with_active(|c| c.meter().max_string()).unwrap_or(DEFAULT_MAX_STRING);
    let mut changed = false;
    let result = run(|budget, room| {
        let r = sl_lpattern::gsub_into(&s, &p, max_n, budget, &mut out, |m, out| -> Result<bool, PatError> {
            let replaced = match &repl {
                Repl::Text(t) => {
                    sl_lpattern::expand_replacement(t, &s, m, out)?;
                    true
                }
                Repl::Table(_) | Repl::Func(_) => match lua_replacement(lua, &repl, &s, m) {
                    Ok(Some(bytes)) => {
                        out.extend_from_slice(&bytes);
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        callback_error = Some(e);
                        return Err(PatError::Pattern(String::new()));
                    }
                },
            };
            changed |= replaced;
            // The result becomes one string: past max_string (or what is
            // left under maxmem) it is refused as it grows, not copied on
            // toward maxmem first.
            let over = if out.len() > max_string {
                Some(LimitKind::StringLength(max_string))
            } else {
                (room > 0 && out.len() > room).then_some(LimitKind::Memory)
            };
            if let Some(kind) = over {
                callback_error = Some(mlua::Error::MemoryError("not enough memory".into()));
                with_active(|c| c.abort.set(Some(c.abort.get().unwrap_or(kind))));
                return Err(PatError::Pattern(String::new()));
            }
            Ok(replaced)
        });
        r.map_err(|e| match e {
            GsubError::Match(e) | GsubError::Replacement(e) => e,
        })
    });
    if let Some(e) = callback_error {
        return Err(e);
    }
    let n = result?;
    if !changed {
        // As Lua: no substitution gives back the subject itself.
        return Ok((subject, 0));
    }
    Ok((lua.create_string(&out)?, n as i64))
}

/// A float's text as Lua writes it ("%.14g", "1e+20", "inf").
fn number_text(lua: &Lua, v: Value) -> mlua::Result<Vec<u8>> {
    Ok(lua.coerce_string(v)?.map(|s| s.as_bytes().to_vec()).unwrap_or_default())
}

fn lua_replacement(lua: &Lua, repl: &Repl, s: &[u8], m: &Match) -> mlua::Result<Option<Vec<u8>>> {
    let value: Value = match repl {
        Repl::Table(t) => {
            let key = m.capture(0).map_err(|e| mlua::Error::runtime(e.to_string()))?;
            let mut k = MultiValue::new();
            push_capture(lua, s, &key, &mut k)?;
            t.get(k.pop_front().unwrap_or(Value::Nil))?
        }
        Repl::Func(f) => {
            let mut args = MultiValue::new();
            push_values(lua, s, m, &mut args)?;
            f.call(args)?
        }
        Repl::Text(_) => unreachable!("text replacements are expanded directly"),
    };
    match value {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::String(v) => Ok(Some(v.as_bytes().to_vec())),
        Value::Integer(i) => Ok(Some(i.to_string().into_bytes())),
        v @ Value::Number(_) => Ok(Some(number_text(lua, v)?)),
        other => Err(mlua::Error::runtime(format!("invalid replacement value (a {})", other.type_name()))),
    }
}

/// Bytes of a needle longer than [`PIECE`] that one `find_span` call
/// compares, at most (and one comparison more).
const SPAN_BYTES: usize = 4 << 20;

/// Bytes compared at a time when a long needle is checked.
const COMPARE_BLOCK: usize = 64 * 1024;

/// `find_span(s, p, from, last)`: the 1-based position of the first
/// occurrence of `p` in `s` that starts between `from` and `last` (both in
/// `1..=#s - #p + 1`), or nil, or `false` and the position to go on from.
///
/// The prelude searches long strings by spans of [`PIECE`] start
/// positions, so that the search can be paused between calls and one call
/// does little: for a needle of at most [`PIECE`] bytes, a linear substring
/// search (`memmem`) of at most twice that; for a longer one, Lua's own way
/// (a comparison where its first byte occurs), with at most [`SPAN_BYTES`]
/// compared before the call gives the position to go on from.
pub fn find_span(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|_, (s, p, from, last): (mlua::String, mlua::String, i64, i64)| {
        let (s, p) = (s.as_bytes(), p.as_bytes());
        Ok(match span_search(&s, &p, from, last) {
            Span::Found(i) => MultiValue::from_iter([Value::Integer(i as i64)]),
            Span::None => MultiValue::from_iter([Value::Nil]),
            Span::Resume(i) => MultiValue::from_iter([Value::Boolean(false), Value::Integer(i as i64)]),
        })
    })
}

/// What one span of a search found.
#[derive(Debug, PartialEq, Eq)]
enum Span {
    /// An occurrence starting here (1-based).
    Found(usize),
    /// No occurrence starting in the span.
    None,
    /// The comparisons ran out: go on from this start position (1-based).
    Resume(usize),
}

fn span_search(s: &[u8], p: &[u8], from: i64, last: i64) -> Span {
    let (Ok(from), Ok(last)) = (usize::try_from(from.max(1)), usize::try_from(last)) else { return Span::None };
    let last = last.min((s.len() + 1).saturating_sub(p.len()));
    if from > last {
        return Span::None;
    }
    if p.len() <= PIECE {
        let hay = &s[from - 1..last - 1 + p.len()];
        return sl_lpattern::find_plain(hay, p, 0).map_or(Span::None, |i| Span::Found(from + i));
    }
    let mut pos = from;
    let mut compared = 0;
    while pos <= last {
        let Some(i) = memchr::memchr(p[0], &s[pos - 1..last]) else { return Span::None };
        let at = pos + i;
        match equal_prefix(&s[at - 1..at - 1 + p.len()], p) {
            None => return Span::Found(at),
            Some(n) => compared += n,
        }
        if compared > SPAN_BYTES {
            return Span::Resume(at + 1);
        }
        pos = at + 1;
    }
    Span::None
}

/// `None` if `a == b` (of one length), else about how many bytes were
/// compared to tell them apart (whole blocks of [`COMPARE_BLOCK`]).
fn equal_prefix(a: &[u8], b: &[u8]) -> Option<usize> {
    let mut n = 0;
    for (x, y) in a.chunks(COMPARE_BLOCK).zip(b.chunks(COMPARE_BLOCK)) {
        n += x.len();
        if x != y {
            return Some(n);
        }
    }
    None
}

/// `has_specials(p)`: whether `string.find` treats `p` as a pattern.
pub fn has_specials(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|_, p: mlua::String| Ok(sl_lpattern::has_specials(&p.as_bytes())))
}

/// Replaces the four pattern functions of the `string` table. Their
/// errors come back as `(error_marker(), message)` so that the prelude can
/// raise them as plain strings, as Lua's own functions do.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    string.set("find", lua.create_function(|lua, args| soft(lua, find_or_match(lua, args, true)))?)?;
    string.set("match", lua.create_function(|lua, args| soft(lua, find_or_match(lua, args, false)))?)?;
    string.set(
        "gmatch",
        lua.create_function(|lua, args| {
            soft(lua, gmatch(lua, args).map(|f| MultiValue::from_iter([Value::Function(f)])))
        })?,
    )?;
    string.set(
        "gsub",
        lua.create_function(|lua, args| {
            soft(lua, gsub(lua, args).map(|(s, n)| MultiValue::from_iter([Value::String(s), Value::Integer(n)])))
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_find_the_first_occurrence_starting_in_them() {
        let s = b"abcabcabd";
        assert_eq!(span_search(s, b"abd", 1, 7), Span::Found(7));
        assert_eq!(span_search(s, b"abd", 1, 6), Span::None);
        assert_eq!(span_search(s, b"abc", 2, 7), Span::Found(4));
        assert_eq!(span_search(s, b"zzz", 1, 7), Span::None);
        assert_eq!(span_search(s, b"abcabd", 1, 4), Span::Found(4));
        assert_eq!(span_search(s, b"abd", 9, 9), Span::None, "past the last start");
    }

    #[test]
    fn long_needles_are_compared_where_their_first_byte_occurs_a_budget_at_a_time() {
        let mut s = vec![b'x'; 3 * PIECE];
        let mut p = vec![b'x'; PIECE + 5];
        p.push(b'y');
        // Every start has the first byte; the rest matches only at the end.
        s.push(b'y');
        let last = (s.len() + 1 - p.len()) as i64;
        let mut from = 1;
        let mut calls = 0;
        let found = loop {
            calls += 1;
            match span_search(&s, &p, from, last) {
                Span::Resume(next) => from = next as i64,
                other => break other,
            }
        };
        assert_eq!(found, Span::Found(last as usize));
        assert!(calls > 1, "{calls} calls");
        assert_eq!(equal_prefix(b"abc", b"abc"), None);
        assert_eq!(equal_prefix(b"abc", b"abd"), Some(3));
    }
}
