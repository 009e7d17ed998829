//! The backtracking matcher.
//!
//! This follows the structure that Lua 5.4's `lstrlib.c` specifies for
//! pattern matching, so that results, the order in which alternatives are
//! tried, the errors raised (and when they are raised) and the nesting
//! depth at which "pattern too complex" is reported are all the same as in
//! Lua. Patterns are interpreted directly from their bytes (nothing is
//! compiled up front), exactly like Lua does, so a malformed piece of a
//! pattern only raises an error if matching actually reaches it, and no
//! memory proportional to the pattern is allocated.
//!
//! Every unit of work is charged to a [`Budget`]; when it runs out the
//! whole operation stops with [`Error::BudgetExhausted`]. The hot paths
//! avoid small helper calls (charging is a macro, errors are a small
//! `Copy` enum) because this code also has to be fast in debug builds.

use crate::class::match_class;
use crate::{Budget, Capture, Error, Match, MAX_CAPTURES, MAX_MATCH_DEPTH};

/// How many bytes of a bracket class (`[...]`) are scanned per budget
/// step when the class is parsed or tested against a byte.
const SET_BYTES_PER_STEP: usize = 4;

/// How many bytes are compared or copied per budget step in bulk
/// operations (back-references, building results).
pub(crate) const BULK_BYTES_PER_STEP: usize = 16;

/// Why matching stopped (internal, cheap to pass around; converted into
/// [`Error`] at the API boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    Budget,
    TooComplex,
    EndsWithPercent,
    MissingBracket,
    MissingFrontierBracket,
    MissingBalanceArgs,
    /// The 1-based index Lua prints (0 for `%0`).
    InvalidCaptureIndex(i32),
    InvalidPatternCapture,
    TooManyCaptures,
    Unfinished,
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Error {
        let msg = match f {
            Fail::Budget => return Error::BudgetExhausted,
            Fail::InvalidCaptureIndex(i) => return Error::Pattern(format!("invalid capture index %{i}")),
            Fail::TooComplex => "pattern too complex",
            Fail::EndsWithPercent => "malformed pattern (ends with '%')",
            Fail::MissingBracket => "malformed pattern (missing ']')",
            Fail::MissingFrontierBracket => "missing '[' after '%f' in pattern",
            Fail::MissingBalanceArgs => "malformed pattern (missing arguments to '%b')",
            Fail::InvalidPatternCapture => "invalid pattern capture",
            Fail::TooManyCaptures => "too many captures",
            Fail::Unfinished => "unfinished capture",
        };
        Error::Pattern(msg.to_owned())
    }
}

type MResult<T> = Result<T, Fail>;

/// The cost of one `single_match` of the class `pat[p..ep]`: one step,
/// plus one per [`SET_BYTES_PER_STEP`] bytes of a bracket class.
fn single_cost(p: usize, ep: usize) -> u64 {
    1 + ((ep - p) / SET_BYTES_PER_STEP) as u64
}

/// Charge `$n` steps to matcher `$m`, returning `Fail::Budget` from the
/// enclosing function when the budget is exhausted.
macro_rules! charge {
    ($m:expr, $n:expr) => {{
        let n: u64 = $n;
        if $m.remaining < n && !$m.refill(n) {
            return Err(Fail::Budget);
        }
        $m.remaining -= n;
    }};
}

/// `?` without the `Try`-trait calls that make `?` slow in debug builds.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return Err(f),
        }
    };
}

/// State of one capture slot while matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CapLen {
    /// `(` seen, matching `)` not yet reached.
    Unfinished,
    /// A position capture `()`.
    Position,
    /// A closed capture of this many bytes.
    Len(usize),
}

#[derive(Clone, Copy, Debug)]
struct CapSlot {
    start: usize,
    len: CapLen,
}

/// The state of one matching operation (Lua's `MatchState`). The budget
/// is counted down in `remaining` and written back when the matcher is
/// dropped.
pub(crate) struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    depth_left: usize,
    remaining: u64,
    captures: [CapSlot; MAX_CAPTURES],
    budget: &'a mut Budget,
}

impl Drop for Matcher<'_> {
    fn drop(&mut self) {
        self.budget.remaining = self.remaining;
    }
}

impl<'a> Matcher<'a> {
    /// A matcher for `pat` (without a leading anchor) against `src`.
    pub(crate) fn new(src: &'a [u8], pat: &'a [u8], budget: &'a mut Budget) -> Self {
        Matcher {
            src,
            pat,
            level: 0,
            depth_left: MAX_MATCH_DEPTH,
            remaining: budget.remaining,
            captures: [CapSlot { start: 0, len: CapLen::Unfinished }; MAX_CAPTURES],
            budget,
        }
    }

    /// Charge the budget (for the drivers in `lib.rs`).
    pub(crate) fn charge(&mut self, steps: u64) -> Result<(), Error> {
        if self.remaining < steps && !self.refill(steps) {
            return Err(Error::BudgetExhausted);
        }
        self.remaining -= steps;
        Ok(())
    }

    /// Asks the budget's refill function for at least `steps` more (see
    /// [`Budget::with_refill`]); false (and nothing left) if it grants
    /// too few.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, steps: u64) -> bool {
        self.budget.remaining = self.remaining;
        let ok = self.budget.refill_for(steps);
        self.remaining = self.budget.remaining;
        ok
    }

    /// Try to match the whole pattern starting exactly at subject offset
    /// `s`. Returns the end offset of the match.
    ///
    /// Like Lua's `reprepstate`, this resets the captures; the depth
    /// counter is back at its initial value after every attempt that did
    /// not fail with an error (and errors end the operation).
    pub(crate) fn match_at(&mut self, s: usize) -> Result<Option<usize>, Error> {
        self.level = 0;
        self.do_match(s, 0).map_err(Error::from)
    }

    /// The captures of the last successful match, as a [`Match`]. With
    /// `strict`, an unfinished capture is an error ("unfinished capture"),
    /// as it is for everything that pushes all captures in Lua.
    pub(crate) fn result(&mut self, start: usize, end: usize, strict: bool) -> Result<Match, Error> {
        let mut captures = Vec::with_capacity(self.level);
        for slot in &self.captures[..self.level] {
            captures.push(match slot.len {
                CapLen::Unfinished if strict => return Err(Fail::Unfinished.into()),
                CapLen::Unfinished => Capture::Unfinished(slot.start),
                CapLen::Position => Capture::Position(slot.start + 1),
                CapLen::Len(l) => Capture::Bytes(slot.start..slot.start + l),
            });
        }
        self.charge(1 + self.level as u64)?;
        Ok(Match { start, end, captures })
    }

    /// Lua's `match`: a recursive call, limited to [`MAX_MATCH_DEPTH`]
    /// nested calls. Lua's tail calls (`goto init`) are iterations of the
    /// loop here, and do not count towards the depth limit, as in Lua.
    /// (On errors the depth is not restored: the whole operation stops.)
    fn do_match(&mut self, mut s: usize, mut p: usize) -> MResult<Option<usize>> {
        if self.depth_left == 0 {
            return Err(Fail::TooComplex);
        }
        self.depth_left -= 1;
        let pat = self.pat;
        let res = loop {
            charge!(self, 1);
            if p >= pat.len() {
                // End of pattern: success.
                break Some(s);
            }
            let pc = pat[p];
            // The byte after `pc`, or 256 at the end of the pattern.
            let next = if p + 1 < pat.len() { u16::from(pat[p + 1]) } else { 256 };
            const CLOSE: u16 = b')' as u16;
            const LOWER_B: u16 = b'b' as u16;
            const LOWER_F: u16 = b'f' as u16;
            const ZERO: u16 = b'0' as u16;
            const NINE: u16 = b'9' as u16;
            match (pc, next) {
                (b'(', CLOSE) => break tri!(self.start_capture(s, p + 2, CapLen::Position)),
                (b'(', _) => break tri!(self.start_capture(s, p + 1, CapLen::Unfinished)),
                (b')', _) => break tri!(self.end_capture(s, p + 1)),
                (b'$', 256) => break if s == self.src.len() { Some(s) } else { None },
                (b'%', LOWER_B) => match tri!(self.match_balance(s, p + 2)) {
                    Some(e) => {
                        s = e;
                        p += 4;
                    }
                    None => break None,
                },
                (b'%', LOWER_F) => {
                    p += 2;
                    if p >= pat.len() || pat[p] != b'[' {
                        return Err(Fail::MissingFrontierBracket);
                    }
                    let ep = tri!(self.class_end(p));
                    let prev = if s == 0 { 0 } else { self.src[s - 1] };
                    // At the end of the subject Lua sees its terminating NUL.
                    let cur = if s < self.src.len() { self.src[s] } else { 0 };
                    charge!(self, ((ep - p) / SET_BYTES_PER_STEP) as u64);
                    if !self.match_bracket_class(prev, p, ep - 1) && self.match_bracket_class(cur, p, ep - 1) {
                        p = ep;
                    } else {
                        break None;
                    }
                }
                (b'%', ZERO..=NINE) => match tri!(self.match_capture(s, next as u8)) {
                    Some(e) => {
                        s = e;
                        p += 2;
                    }
                    None => break None,
                },
                _ => {
                    // A single-byte class with an optional quantifier.
                    let ep = tri!(self.class_end(p));
                    let quant = if ep < pat.len() { pat[ep] } else { 0 };
                    charge!(self, single_cost(p, ep));
                    if !self.single_match(s, p, ep) {
                        if quant == b'*' || quant == b'?' || quant == b'-' {
                            // Accept zero repetitions.
                            p = ep + 1;
                            continue;
                        }
                        break None;
                    }
                    match quant {
                        b'?' => {
                            if let Some(e) = tri!(self.do_match(s + 1, ep + 1)) {
                                break Some(e);
                            }
                            p = ep + 1;
                        }
                        b'+' => break tri!(self.max_expand(s + 1, p, ep)),
                        b'*' => break tri!(self.max_expand(s, p, ep)),
                        b'-' => break tri!(self.min_expand(s, p, ep)),
                        _ => {
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        };
        self.depth_left += 1;
        Ok(res)
    }

    /// Lua's `classEnd`: the offset just after the single class starting
    /// at `p` (where an optional quantifier would be).
    fn class_end(&mut self, p: usize) -> MResult<usize> {
        let pat = self.pat;
        let mut q = p + 1;
        match pat[p] {
            b'%' => {
                if q >= pat.len() {
                    return Err(Fail::EndsWithPercent);
                }
                Ok(q + 1)
            }
            b'[' => {
                if q < pat.len() && pat[q] == b'^' {
                    q += 1;
                }
                // The first byte of the set is always taken literally (so
                // `[]]` and `[^]]` are sets containing `]`).
                loop {
                    if q >= pat.len() {
                        return Err(Fail::MissingBracket);
                    }
                    let cc = pat[q];
                    q += 1;
                    if cc == b'%' && q < pat.len() {
                        q += 1;
                    }
                    if q < pat.len() && pat[q] == b']' {
                        break;
                    }
                }
                charge!(self, ((q - p) / SET_BYTES_PER_STEP) as u64);
                Ok(q + 1)
            }
            _ => Ok(q),
        }
    }

    /// Lua's `matchbracketclass`: does `c` belong to the set whose `[` is
    /// at `p` and whose closing `]` is at `ec`?
    fn match_bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let pat = self.pat;
        let mut sig = true;
        if pat[p + 1] == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !sig;
            }
            if pat[p] == b'%' {
                p += 1;
                if match_class(c, pat[p]) {
                    return sig;
                }
            } else if pat[p + 1] == b'-' && p + 2 < ec {
                p += 2;
                if pat[p - 2] <= c && c <= pat[p] {
                    return sig;
                }
            } else if pat[p] == c {
                return sig;
            }
        }
    }

    /// Lua's `singlematch`: does the subject byte at `s` match the single
    /// class `pat[p..ep]`? The caller charges [`single_cost`] for it.
    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        if s >= self.src.len() {
            return false;
        }
        let c = self.src[s];
        match self.pat[p] {
            b'.' => true,
            b'%' => match_class(c, self.pat[p + 1]),
            b'[' => self.match_bracket_class(c, p, ep - 1),
            lit => lit == c,
        }
    }

    /// Lua's `matchbalance` for `%bxy` with `x` at `p`.
    fn match_balance(&mut self, s: usize, p: usize) -> MResult<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return Err(Fail::MissingBalanceArgs);
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        if s >= self.src.len() || self.src[s] != open {
            return Ok(None);
        }
        let mut depth = 1usize;
        for i in s + 1..self.src.len() {
            charge!(self, 1);
            let c = self.src[i];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    /// Lua's `max_expand`: greedy repetition (`*`, `+`).
    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> MResult<Option<usize>> {
        let cost = single_cost(p, ep);
        let mut i = 0;
        loop {
            charge!(self, cost);
            if !self.single_match(s + i, p, ep) {
                break;
            }
            i += 1;
        }
        loop {
            if let Some(e) = tri!(self.do_match(s + i, ep + 1)) {
                return Ok(Some(e));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    /// Lua's `min_expand`: lazy repetition (`-`).
    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> MResult<Option<usize>> {
        let cost = single_cost(p, ep);
        loop {
            if let Some(e) = tri!(self.do_match(s, ep + 1)) {
                return Ok(Some(e));
            }
            charge!(self, cost);
            if self.single_match(s, p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    /// Lua's `start_capture`.
    fn start_capture(&mut self, s: usize, p: usize, len: CapLen) -> MResult<Option<usize>> {
        if self.level >= MAX_CAPTURES {
            return Err(Fail::TooManyCaptures);
        }
        self.captures[self.level] = CapSlot { start: s, len };
        self.level += 1;
        let res = tri!(self.do_match(s, p));
        if res.is_none() {
            self.level -= 1;
        }
        Ok(res)
    }

    /// Lua's `end_capture`.
    fn end_capture(&mut self, s: usize, p: usize) -> MResult<Option<usize>> {
        let mut l = self.level;
        loop {
            if l == 0 {
                return Err(Fail::InvalidPatternCapture);
            }
            l -= 1;
            if self.captures[l].len == CapLen::Unfinished {
                break;
            }
        }
        self.captures[l].len = CapLen::Len(s - self.captures[l].start);
        let res = tri!(self.do_match(s, p));
        if res.is_none() {
            self.captures[l].len = CapLen::Unfinished;
        }
        Ok(res)
    }

    /// Lua's `match_capture`: a back-reference `%1`..`%9` (the digit is
    /// the raw byte; `%0` is always an invalid index).
    fn match_capture(&mut self, s: usize, digit: u8) -> MResult<Option<usize>> {
        let idx = i32::from(digit) - i32::from(b'1');
        if idx < 0 || idx as usize >= self.level || self.captures[idx as usize].len == CapLen::Unfinished {
            return Err(Fail::InvalidCaptureIndex(idx + 1));
        }
        let slot = self.captures[idx as usize];
        // A position capture never matches (Lua compares against a huge
        // length).
        let CapLen::Len(len) = slot.len else {
            return Ok(None);
        };
        charge!(self, 1 + (len / BULK_BYTES_PER_STEP) as u64);
        let src = self.src;
        if src.len() - s >= len && src[slot.start..slot.start + len] == src[s..s + len] {
            Ok(Some(s + len))
        } else {
            Ok(None)
        }
    }
}
