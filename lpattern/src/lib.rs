//! Budgeted Lua 5.4 pattern matching.
//!
//! Lua's `string.find`, `string.match`, `string.gmatch` and `string.gsub`
//! run their pattern matcher in C, where instruction-count hooks never
//! fire, and some patterns take exponential time (for example
//! `string.find(("a"):rep(5000), ".-.-.-.-.-.-.-.-.-b")`). This crate is a
//! pure-Rust implementation of the same matcher (Lua 5.4 manual §6.4.1,
//! with the exact behaviour of Lua 5.4's `lstrlib.c`) in which every unit
//! of work is charged to a [`Budget`]; when the budget runs out the
//! operation stops with [`Error::BudgetExhausted`].
//!
//! Everything works on bytes, as Lua does; offsets are 0-based byte
//! offsets into the subject unless stated otherwise.
//!
//! # Mapping to the Lua functions
//!
//! * `string.find(s, p, init, plain)`: normalize `init` as Lua does
//!   (`posrelat`, then subtract 1). If `plain` is true or
//!   [`has_specials`]`(p)` is false, use [`find_plain`]; otherwise use
//!   [`find`] and return `start + 1`, `end`, then every capture of
//!   [`Match::captures`].
//! * `string.match(s, p, init)`: [`find`], then return
//!   [`Match::values`].
//! * `string.gmatch(s, p, init)`: a [`GMatch`]; each call of the iterator
//!   returns [`Match::values`] of [`GMatch::next`].
//! * `string.gsub(s, p, repl, n)`: [`gsub`] (or [`gsub_into`]); for a
//!   string (or number) `repl` the callback uses [`expand_replacement`]
//!   ([`gsub_str`] does exactly that), for a table it indexes with
//!   [`Match::capture`]`(0)`, for a function it calls it with
//!   [`Match::values`].
//!
//! Errors carry Lua's own message text ([`Error::Pattern`]), without any
//! position prefix, exactly as Lua reports them from a C function.
//!
//! # Cost model
//!
//! One budget step is charged for every call of the inner match routine
//! and every item of the pattern it processes, every single-byte test
//! (including each iteration of the `*`, `+`, `-` and `?` loops), every
//! byte scanned by `%b`, every start position tried, and one step per 4
//! bytes of a bracket class or per 16 bytes compared or copied in bulk.
//! Ordinary patterns on ordinary subjects therefore cost a small multiple
//! of the subject length, and the total work of any call is bounded by a
//! constant times the budget. The recursion depth is limited to
//! [`MAX_MATCH_DEPTH`] nested calls, as in Lua ("pattern too complex"),
//! so the Rust stack use is bounded too.
//!
//! # Differences from Lua 5.4
//!
//! * Error messages are Lua's, but without the `chunk:line:` prefix that
//!   `luaL_error` adds when `string.find` etc. are called directly from
//!   Lua code (the position of the *calling* Lua function); a caller that
//!   wants identical messages must add it (e.g. by raising the message
//!   with Lua's `error(msg, 2)` semantics).
//! * Lua's `gmatch` iterator does not restore its depth counter when a
//!   pattern error is caught (`pcall`) and the same iterator is called
//!   again, so after many such errors Lua reports "pattern too complex"
//!   (and after that one, it stops checking the depth at all). Here every
//!   call starts with the full depth limit.
//! * [`Error::BudgetExhausted`] has no Lua counterpart.
//!
//! # Example
//!
//! ```
//! use sl_lpattern::{find, gsub_str, Budget, Capture, Error};
//!
//! let mut budget = Budget::new(1_000_000);
//! let m = find(b"key = value", b"(%w+)%s*=%s*(%w+)", 0, &mut budget)?.unwrap();
//! assert_eq!((m.start, m.end), (0, 11));
//! assert_eq!(m.captures, vec![Capture::Bytes(0..3), Capture::Bytes(6..11)]);
//!
//! let (out, n) = gsub_str(b"hello world", b"(%w+)", b"<%1>", None, &mut budget)?;
//! assert_eq!((out.as_slice(), n), (&b"<hello> <world>"[..], 2));
//!
//! let evil = "a".repeat(5000);
//! let r = find(evil.as_bytes(), b".-.-.-.-.-.-.-.-.-b", 0, &mut budget);
//! assert_eq!(r, Err(Error::BudgetExhausted));
//! # Ok::<(), Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod class;
mod matcher;

use std::ops::Range;

use matcher::{Matcher, BULK_BYTES_PER_STEP};

/// Maximum number of captures in a pattern (Lua's `LUA_MAXCAPTURES`).
pub const MAX_CAPTURES: usize = 32;

/// Maximum nesting of the recursive matcher (Lua's `MAXCCALLS`); deeper
/// patterns fail with "pattern too complex".
pub const MAX_MATCH_DEPTH: usize = 200;

/// The bytes that make a pattern "special" (Lua's `SPECIALS`); see
/// [`has_specials`].
pub const SPECIALS: &[u8] = b"^$*+?.([%-";

/// A step budget. Each elementary matcher step costs one unit; when a
/// charge exceeds what is left, the budget's refill function (if it has
/// one, see [`Budget::with_refill`]) is asked for more; when it grants none
/// (or there is none), the operation fails with [`Error::BudgetExhausted`]
/// (and the budget is left at zero).
///
/// The same budget can be passed to many calls to limit their total work.
#[derive(Debug, Clone)]
pub struct Budget {
    remaining: u64,
    /// Steps granted in all: the first amount and every refill.
    granted: u64,
    refill: Option<fn() -> u64>,
}

impl Budget {
    /// A budget of `steps` steps.
    pub fn new(steps: u64) -> Self {
        Budget { remaining: steps, granted: steps, refill: None }
    }

    /// A budget of `steps` steps that, when they run out, calls `refill`
    /// for more: it returns how many more steps to grant, or 0 to stop the
    /// operation. A caller can so check a clock (or anything else) every
    /// few steps without the matcher knowing about it; `refill` takes no
    /// argument (a plain function, so a budget stays cheap to make), and
    /// finds what it needs elsewhere (for example in a thread-local).
    pub fn with_refill(steps: u64, refill: fn() -> u64) -> Self {
        Budget { remaining: steps, granted: steps, refill: Some(refill) }
    }

    /// A budget that, in practice, never runs out.
    pub fn unlimited() -> Self {
        Budget::new(u64::MAX)
    }

    /// The steps still available.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The steps used so far (granted, including refills, minus what is
    /// left).
    pub fn used(&self) -> u64 {
        self.granted - self.remaining
    }

    /// Take `steps` steps from the budget. If fewer are left (after asking
    /// the refill function for more), the budget becomes empty and
    /// [`Error::BudgetExhausted`] is returned.
    #[inline]
    pub fn charge(&mut self, steps: u64) -> Result<(), Error> {
        match self.remaining.checked_sub(steps) {
            Some(left) => {
                self.remaining = left;
                Ok(())
            }
            None if self.refill_for(steps) => {
                self.remaining -= steps;
                Ok(())
            }
            None => Err(Error::BudgetExhausted),
        }
    }

    /// Asks the refill function until at least `steps` are left (true), or
    /// until it grants none (false: the budget is then left at zero).
    #[cold]
    pub(crate) fn refill_for(&mut self, steps: u64) -> bool {
        while self.remaining < steps {
            let more = self.refill.map_or(0, |f| f());
            if more == 0 {
                self.remaining = 0;
                return false;
            }
            self.remaining = self.remaining.saturating_add(more);
            self.granted = self.granted.saturating_add(more);
        }
        true
    }
}

/// Why a matching operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An error Lua would raise, with Lua's message (for example
    /// "malformed pattern (missing ']')").
    #[error("{0}")]
    Pattern(String),
    /// The [`Budget`] ran out before the operation finished.
    #[error("pattern matching step budget exhausted")]
    BudgetExhausted,
}

/// Why [`gsub`] / [`gsub_into`] failed: either matching failed or the
/// replacement callback returned an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GsubError<E> {
    /// A pattern error or budget exhaustion.
    #[error(transparent)]
    Match(#[from] Error),
    /// The error returned by the replacement callback, unchanged.
    #[error("{0}")]
    Replacement(E),
}

/// One capture of a successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// A substring capture `(...)`: a byte range of the subject.
    Bytes(Range<usize>),
    /// A position capture `()`: the 1-based position, as Lua returns it.
    Position(usize),
    /// A capture whose `)` was never reached, at this 0-based start
    /// offset. Lua accepts a match with such a capture and only raises
    /// "unfinished capture" when the capture's value is used, so this only
    /// appears in matches passed to a [`gsub`] callback; [`find`] and
    /// [`GMatch::next`] report the error instead.
    Unfinished(usize),
}

/// A successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// 0-based offset of the first byte of the match.
    pub start: usize,
    /// 0-based offset just past the match (so `subject[start..end]` is the
    /// matched text; Lua's `string.find` returns `start + 1` and `end`).
    pub end: usize,
    /// The pattern's captures in order (empty if the pattern has none; the
    /// whole match is then not included, see [`Match::values`]).
    pub captures: Vec<Capture>,
}

impl Match {
    /// The byte range of the whole match.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// What Lua's `push_captures` produces for this match, i.e. the values
    /// of `string.match`, of each `string.gmatch` step and the arguments
    /// of a `string.gsub` function: all captures, or the whole match as a
    /// single [`Capture::Bytes`] if the pattern has no captures.
    ///
    /// Fails with "unfinished capture" if a capture was never closed.
    pub fn values(&self) -> Result<Vec<Capture>, Error> {
        if self.captures.is_empty() {
            return Ok(vec![Capture::Bytes(self.range())]);
        }
        (0..self.captures.len()).map(|i| self.capture(i)).collect()
    }

    /// Capture `i` (0-based) as Lua's `get_onecapture` gives it: index 0
    /// of a pattern without captures is the whole match (that is what a
    /// `string.gsub` table is indexed with, and what `%1` means in a
    /// replacement string).
    ///
    /// Fails with "invalid capture index %N" (N = `i + 1`) if there is no
    /// such capture, or "unfinished capture".
    pub fn capture(&self, i: usize) -> Result<Capture, Error> {
        match self.captures.get(i) {
            None if i == 0 => Ok(Capture::Bytes(self.range())),
            None => Err(Error::Pattern(format!("invalid capture index %{}", i + 1))),
            Some(Capture::Unfinished(_)) => Err(Error::Pattern("unfinished capture".to_owned())),
            Some(c) => Ok(c.clone()),
        }
    }
}

/// Convert Lua's 1-based, possibly negative `init` argument of
/// `string.find`, `string.match` and `string.gmatch` into the 0-based
/// offset that [`find`] and [`GMatch::new`] take (Lua's `posrelatI`
/// followed by `- 1`): `0` and values below `-len` mean the start, other
/// negative values count from the end. The result may exceed
/// `subject_len`, meaning "after the end" (no match).
pub fn init_offset(init: i64, subject_len: usize) -> usize {
    let len = subject_len as u64;
    if init > 0 {
        // Saturate rather than wrap on (theoretical) 32-bit targets.
        usize::try_from(init - 1).unwrap_or(usize::MAX)
    } else if init == 0 || init.unsigned_abs() > len {
        0
    } else {
        (len - init.unsigned_abs()) as usize
    }
}

/// Split a leading `^` anchor off a pattern.
fn split_anchor(pattern: &[u8]) -> (bool, &[u8]) {
    match pattern.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, pattern),
    }
}

/// Does `pattern` contain any of Lua's special characters [`SPECIALS`]?
///
/// `string.find` without the `plain` flag uses a plain substring search
/// ([`find_plain`]) when this is false, exactly like Lua. (Note that `)`,
/// `]` and `}` are not special for this check, so `string.find(s, ")")`
/// is a plain search while `string.match(s, ")")` is an error.)
pub fn has_specials(pattern: &[u8]) -> bool {
    // A table look-up a byte: patterns may be megabytes long.
    const SPECIAL: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < SPECIALS.len() {
            t[SPECIALS[i] as usize] = true;
            i += 1;
        }
        t
    };
    pattern.iter().any(|&b| SPECIAL[usize::from(b)])
}

/// Plain substring search (`string.find` with `plain` or without special
/// characters): the 0-based offset of the first occurrence of `needle` in
/// `subject` at or after `init`, or `None`. An empty needle is found at
/// `init` (if `init <= subject.len()`).
///
/// This is not charged to a budget: it runs in worst-case linear time
/// O(`subject.len()` + `needle.len()`) (two-way string matching), unlike
/// the quadratic naive search.
pub fn find_plain(subject: &[u8], needle: &[u8], init: usize) -> Option<usize> {
    let hay = subject.get(init..)?;
    memchr::memmem::find(hay, needle).map(|i| i + init)
}

/// The core of `string.find` (with pattern semantics) and `string.match`:
/// search `subject` for `pattern` starting at the 0-based offset `init`
/// (already normalized the way Lua does it). A leading `^` anchors the
/// match at `init`.
///
/// Returns `Ok(None)` if there is no match, including when
/// `init > subject.len()` (as Lua does). A match whose pattern left a
/// capture open fails with "unfinished capture", as in Lua.
pub fn find(subject: &[u8], pattern: &[u8], init: usize, budget: &mut Budget) -> Result<Option<Match>, Error> {
    if init > subject.len() {
        return Ok(None);
    }
    let (anchor, pat) = split_anchor(pattern);
    let mut m = Matcher::new(subject, pat, budget);
    let mut s = init;
    loop {
        m.charge(1)?;
        if let Some(e) = m.match_at(s)? {
            return m.result(s, e, true).map(Some);
        }
        if anchor || s >= subject.len() {
            return Ok(None);
        }
        s += 1;
    }
}

/// The state of a `string.gmatch` iteration.
///
/// As in Lua 5.4, a `^` at the start of the pattern is not an anchor here
/// (it matches a literal `^`), and an empty match that ends where the
/// previous match ended is skipped. `S` and `P` are the subject and
/// pattern storage (`&[u8]`, `Vec<u8>`, `Rc<[u8]>`, ...), so the state can
/// own them (e.g. inside a Lua closure).
#[derive(Debug, Clone)]
pub struct GMatch<S, P = S> {
    subject: S,
    pattern: P,
    state: GMatchState,
}

/// Where a `gmatch` iteration stands, without its subject and pattern:
/// for callers that keep those elsewhere (say, as strings of a Lua state)
/// and pass them to every [`GMatchState::next`] call. The subject and
/// pattern must be the same on every call.
#[derive(Debug, Clone, Copy)]
pub struct GMatchState {
    src: usize,
    last_match: Option<usize>,
}

impl GMatchState {
    /// Starts at the 0-based offset `init` of a subject of `subject_len`
    /// bytes (see [`GMatch::new`]).
    pub fn new(subject_len: usize, init: usize) -> Self {
        GMatchState { src: init.min(subject_len + 1), last_match: None }
    }

    /// The next match of `pattern` in `subject` (see [`GMatch::next`]).
    pub fn next(&mut self, subject: &[u8], pattern: &[u8], budget: &mut Budget) -> Result<Option<Match>, Error> {
        // A fresh matcher (depth counter) for every call: unlike Lua, whose
        // gmatch iterator never restores its depth counter after a caught
        // pattern error (see the crate docs).
        let mut m = Matcher::new(subject, pattern, budget);
        let len = subject.len();
        let mut src = self.src;
        while src <= len {
            m.charge(1)?;
            if let Some(e) = m.match_at(src)? {
                if Some(e) != self.last_match {
                    // Like Lua, advance before reporting an unfinished
                    // capture, so a caught error does not repeat forever.
                    self.src = e;
                    self.last_match = Some(e);
                    return m.result(src, e, true).map(Some);
                }
            }
            src += 1;
        }
        self.src = src;
        Ok(None)
    }
}

impl<S: AsRef<[u8]>, P: AsRef<[u8]>> GMatch<S, P> {
    /// Start iterating over the matches of `pattern` in `subject` from the
    /// 0-based offset `init` (already normalized the way Lua does it; an
    /// `init` past the end simply yields no matches). Nothing is matched
    /// (and no error is detected) until [`GMatch::next`] is called.
    pub fn new(subject: S, pattern: P, init: usize) -> Self {
        let state = GMatchState::new(subject.as_ref().len(), init);
        GMatch { subject, pattern, state }
    }

    /// The subject being searched.
    pub fn subject(&self) -> &[u8] {
        self.subject.as_ref()
    }

    /// The next match, or `Ok(None)` when there are no more (and on every
    /// later call). A match with an unfinished capture is reported as
    /// "unfinished capture" after the iteration has moved past it (as in
    /// Lua); after any other error the state is unchanged.
    pub fn next(&mut self, budget: &mut Budget) -> Result<Option<Match>, Error> {
        self.state.next(self.subject.as_ref(), self.pattern.as_ref(), budget)
    }
}

/// The core of `string.gsub`, writing the result into `out` (which is
/// appended to, not cleared). Returns the number of matches replaced.
///
/// For each match (at most `max_n`; `None` means no limit, like Lua's
/// default of `#subject + 1`; a negative Lua count should be passed as
/// `Some(0)`), `repl` is called with the match and `out`; it either
/// appends the replacement and returns `Ok(true)`, or returns `Ok(false)`
/// to keep the original text (anything it appended is then discarded).
/// A leading `^` anchors the pattern at the start of the subject.
///
/// The match passed to `repl` may contain [`Capture::Unfinished`];
/// [`Match::values`], [`Match::capture`] and [`expand_replacement`] raise
/// "unfinished capture" when such a capture is used, as Lua does.
///
/// Copying into `out` is charged to the budget (one step per 16 bytes),
/// which also bounds the size of the result; callers with a memory limit
/// may want to check `out.len()` in `repl` as well.
pub fn gsub_into<E, F>(
    subject: &[u8],
    pattern: &[u8],
    max_n: Option<usize>,
    budget: &mut Budget,
    out: &mut Vec<u8>,
    mut repl: F,
) -> Result<usize, GsubError<E>>
where
    F: FnMut(&Match, &mut Vec<u8>) -> Result<bool, E>,
{
    let (anchor, pat) = split_anchor(pattern);
    let max_n = max_n.unwrap_or(usize::MAX);
    let mut m = Matcher::new(subject, pat, budget);
    let mut src = 0;
    let mut last_match = None;
    let mut n = 0;
    while n < max_n {
        m.charge(1)?;
        match m.match_at(src)? {
            Some(e) if Some(e) != last_match => {
                n += 1;
                let found = m.result(src, e, false)?;
                let before = out.len();
                let replaced = repl(&found, out).map_err(GsubError::Replacement)?;
                if !replaced {
                    out.truncate(before);
                    out.extend_from_slice(&subject[src..e]);
                }
                m.charge(1 + ((out.len() - before) / BULK_BYTES_PER_STEP) as u64)?;
                src = e;
                last_match = Some(e);
            }
            _ if src < subject.len() => {
                out.push(subject[src]);
                src += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    let rest = &subject[src..];
    m.charge(1 + (rest.len() / BULK_BYTES_PER_STEP) as u64)?;
    out.extend_from_slice(rest);
    Ok(n)
}

/// The core of `string.gsub`: returns the new string and the number of
/// matches replaced.
///
/// For each match (at most `max_n`, see [`gsub_into`]), `repl` returns
/// `Ok(Some(bytes))` to substitute `bytes` or `Ok(None)` to keep the
/// original text (Lua's `nil`/`false` result of a function or table).
pub fn gsub<E, F>(
    subject: &[u8],
    pattern: &[u8],
    max_n: Option<usize>,
    budget: &mut Budget,
    mut repl: F,
) -> Result<(Vec<u8>, usize), GsubError<E>>
where
    F: FnMut(&Match) -> Result<Option<Vec<u8>>, E>,
{
    let mut out = Vec::new();
    let n = gsub_into(subject, pattern, max_n, budget, &mut out, |m, out| {
        Ok(match repl(m)? {
            Some(bytes) => {
                out.extend_from_slice(&bytes);
                true
            }
            None => false,
        })
    })?;
    Ok((out, n))
}

/// `string.gsub` with a string (or number, converted by the caller)
/// replacement: [`gsub`] with [`expand_replacement`].
pub fn gsub_str(
    subject: &[u8],
    pattern: &[u8],
    repl: &[u8],
    max_n: Option<usize>,
    budget: &mut Budget,
) -> Result<(Vec<u8>, usize), Error> {
    let mut out = Vec::new();
    let n = gsub_into(subject, pattern, max_n, budget, &mut out, |m, out| {
        expand_replacement(repl, subject, m, out).map(|()| true)
    })
    .map_err(|e| match e {
        GsubError::Match(e) | GsubError::Replacement(e) => e,
    })?;
    Ok((out, n))
}

/// Append the expansion of a `string.gsub` replacement string for match
/// `m` of `subject` to `out`: `%0` is the whole match, `%1`..`%9` the
/// captures (with `%1` the whole match if the pattern has no captures; a
/// position capture is written in decimal), `%%` a single `%`.
///
/// Any other use of `%` (including a trailing one) fails with "invalid use
/// of '%' in replacement string"; a missing capture with "invalid capture
/// index %N", an unfinished one with "unfinished capture".
pub fn expand_replacement(repl: &[u8], subject: &[u8], m: &Match, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut rest = repl;
    while let Some(i) = memchr::memchr(b'%', rest) {
        out.extend_from_slice(&rest[..i]);
        match rest.get(i + 1) {
            Some(b'%') => out.push(b'%'),
            Some(b'0') => out.extend_from_slice(&subject[m.range()]),
            Some(&d @ b'1'..=b'9') => match m.capture(usize::from(d - b'1'))? {
                Capture::Bytes(r) => out.extend_from_slice(&subject[r]),
                Capture::Position(pos) => out.extend_from_slice(pos.to_string().as_bytes()),
                Capture::Unfinished(_) => unreachable!("Match::capture reports unfinished captures"),
            },
            _ => return Err(Error::Pattern("invalid use of '%' in replacement string".to_owned())),
        }
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    Ok(())
}

#[cfg(test)]
mod tests;
