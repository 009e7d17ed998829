//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` on a
//! step budget, paused like Lua code when they outlive a time slice.
//!
//! Lua's own pattern matcher runs in C, where the instruction hook never
//! fires, so a crafted pattern could run for hours. These replacements use
//! `sl_lpattern`, which charges every matcher step to a budget handed out
//! [`STEP_GRANT`] steps at a time: steps count against the invocation's
//! instruction budget, and at each grant the limits and the clock are
//! checked.
//!
//! # Pausing a call
//!
//! The matcher recurses (as Lua's does), so a call cannot return to Lua
//! in the middle of a match and be picked up again, and stopping it at
//! the end of the time slice would stop valid programs whose one call
//! needs more than a slice. So a call starts on the thread's own stack
//! (at no extra cost) and, if a grant finds the time slice over, stops and
//! starts again from the beginning on a stack of its own (a
//! [`corosensei`] coroutine; at most [`MAX_PAUSABLE`] exist in the process
//! at once). There, a grant that finds the slice over suspends the
//! coroutine: the function returns `(PAUSED, resume)` to the prelude,
//! which yields the invocation for a slice like the hook does (or, where
//! Lua cannot yield, counts the time against the stall bound,
//! [`check_stall`](super::hook::Control::check_stall)) and then calls
//! `resume()`, which goes on where the matcher stopped and returns the
//! call's results in the end. So a call is paused at most a slice after it
//! ran, and repeats at most one slice of work. A limit (instructions,
//! deadline, memory) found at a grant aborts the invocation, as any limit
//! does. A call that cannot have a stack of its own (more than
//! [`MAX_PAUSABLE`] paused at once, or a `gsub` with a Lua replacement)
//! runs on as before: stopped when it has run [`STALL_LIMIT`](super::hook::STALL_LIMIT) of the
//! thread's CPU time past the end of the slice.
//!
//! The matcher's real speed decides how much a call may do in a slice, not
//! an estimate of it.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use sl_lpattern::{Budget, Capture, Error as PatError, GMatchState, GsubError, Match};

use super::alloc::DEFAULT_MAX_STRING;
use super::decide::PIECE;
use super::error::soft;
use super::hook::{with_active, Control, LimitKind};

/// Matcher steps granted at a time; the limits (and the clock) are checked
/// between grants. Some 0.1 to 0.5 ms of matching.
pub const STEP_GRANT: u64 = 1 << 16;

/// Pattern calls that may be paused at once in the process (each holds a
/// stack of [`PAUSE_STACK`] bytes of address space, two mappings, while it
/// runs).
pub const MAX_PAUSABLE: usize = 4096;

/// Bytes of stack of a pausable call: the matcher nests at most
/// `sl_lpattern::MAX_MATCH_DEPTH` (200) calls. Pages are committed only
/// when used.
const PAUSE_STACK: usize = 512 * 1024;

/// Pausable calls that exist now.
static PAUSABLE: AtomicUsize = AtomicUsize::new(0);

/// Its address is the `PAUSED` marker (see [`paused_marker`]).
static PAUSED: u8 = 0;

thread_local! {
    /// The yielder of the pausable call running on this thread, null when
    /// none is (or it is suspended).
    static PAUSER: Cell<*const Yielder<(), ()>> = const { Cell::new(ptr::null()) };
    /// Whether the call running on this thread's own stack may start again
    /// where it can pause.
    static RESTARTABLE: Cell<bool> = const { Cell::new(false) };
    /// Set when that call stopped because the slice was over.
    static WANTS_PAUSE: Cell<bool> = const { Cell::new(false) };
}

/// The value a pattern function returns first when it paused, followed by
/// the function that goes on with it: a light userdata no user code can
/// make.
pub fn paused_marker() -> Value {
    Value::LightUserData(LightUserData(ptr::from_ref(&PAUSED).cast_mut().cast()))
}

/// What bounds one pattern call.
struct Allowance {
    budget: Budget,
    /// Bytes the Lua heap may still grow by (0 = unlimited).
    memory_room: usize,
}

/// What a grant found.
enum Grant {
    Steps(u64),
    Stop,
    /// The time slice is over and the call can pause.
    Pause,
}

/// The next grant of steps for the running invocation, charged to its
/// instruction budget in advance (what is left unused is given back when
/// the call ends), or 0 when the call stops: a limit says stop (the
/// instruction budget is spent, the deadline passed, or, for a call that
/// cannot pause, code that cannot be paused has run
/// [`STALL_LIMIT`](super::hook::STALL_LIMIT) of the thread's CPU time past the end of the time
/// slice: see [`check_stall`](super::hook::Control::check_stall)), or the
/// slice is over and the call is to start again where it can pause. A
/// call on its own stack is suspended here at the end of a slice, and the
/// grant goes on when it is resumed.
fn grant() -> u64 {
    loop {
        let pausable = !PAUSER.with(Cell::get).is_null() || RESTARTABLE.with(Cell::get);
        let verdict = with_active(|c| {
            if pausable {
                if c.check().is_some() {
                    return Grant::Stop;
                }
                if Instant::now() >= c.slice_end.get() {
                    return Grant::Pause;
                }
            } else if c.check_stall().is_some() {
                return Grant::Stop;
            }
            let steps = c.budget.get().saturating_sub(c.used.get()).min(STEP_GRANT);
            if steps == 0 {
                c.abort.set(Some(LimitKind::Instructions));
                return Grant::Stop;
            }
            c.used.set(c.used.get().saturating_add(steps));
            Grant::Steps(steps)
        });
        match verdict {
            None => return STEP_GRANT,
            Some(Grant::Steps(n)) => return n,
            Some(Grant::Stop) => return 0,
            Some(Grant::Pause) => {
                let yielder = PAUSER.with(Cell::get);
                if yielder.is_null() {
                    WANTS_PAUSE.with(|w| w.set(true));
                    return 0;
                }
                PAUSER.with(|p| p.set(ptr::null()));
                // SAFETY: the yielder of the coroutine this code runs on,
                // set by its body (`pausable`), which outlives this call.
                unsafe { (*yielder).suspend(()) };
                PAUSER.with(|p| p.set(yielder));
            }
        }
    }
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

/// How a call on the thread's own stack ended.
enum Attempt<T> {
    Done(mlua::Result<T>),
    /// The slice was over: start it again with [`pausable`].
    Restart,
}

/// Runs a matcher call on a budget. A `restartable` call on the thread's
/// own stack stops at the end of the slice (see the module docs).
fn run<T>(restartable: bool, f: impl FnOnce(&mut Budget, usize) -> Result<T, PatError>) -> Attempt<T> {
    let on_own_stack = PAUSER.with(Cell::get).is_null();
    let restartable = restartable && on_own_stack && PAUSABLE.load(Ordering::Relaxed) < MAX_PAUSABLE;
    let outer = RESTARTABLE.with(|r| r.replace(restartable));
    WANTS_PAUSE.with(|w| w.set(false));
    let mut a = allowance();
    let room = a.memory_room;
    let r = f(&mut a.budget, room);
    RESTARTABLE.with(|r| r.set(outer));
    let exhausted = matches!(r, Err(PatError::BudgetExhausted));
    if exhausted && WANTS_PAUSE.with(|w| w.replace(false)) {
        settle(&a, false);
        return Attempt::Restart;
    }
    if let Some(e) = settle(&a, exhausted) {
        return Attempt::Done(Err(e));
    }
    Attempt::Done(r.map_err(|e| mlua::Error::runtime(e.to_string())))
}

/// The rest of a call once the matcher is done: its results for Lua.
type Finish<T> = Box<dyn FnOnce(&Lua, T) -> mlua::Result<MultiValue>>;

/// Counts a pausable call while it exists in the process, and in its
/// state's control block once it runs on a stack of its own.
struct PausableSlot {
    /// The control block that counts it, once it does.
    ctl: *const Control,
}

impl PausableSlot {
    fn take() -> Self {
        PAUSABLE.fetch_add(1, Ordering::Relaxed);
        PausableSlot { ctl: ptr::null() }
    }

    /// Counts the call in the state of the invocation running on this
    /// thread: its stack is in use from now on, and the state stays on
    /// this thread until the call is over (see `away.rs`).
    fn pin(&mut self) {
        if self.ctl.is_null() {
            self.ctl = with_active(|c| {
                c.own_stacks.set(c.own_stacks.get() + 1);
                ptr::from_ref(c)
            })
            .unwrap_or(ptr::null());
        }
    }
}

impl Drop for PausableSlot {
    fn drop(&mut self) {
        PAUSABLE.fetch_sub(1, Ordering::Relaxed);
        if self.ctl.is_null() {
            return;
        }
        // SAFETY: the slot lives in the `resume` function of its state,
        // and the control block is owned by the same instance and dropped
        // after the state (`Instance`'s field order), so it is alive here.
        let c = unsafe { &*self.ctl };
        c.own_stacks.set(c.own_stacks.get().saturating_sub(1));
    }
}

/// The matcher's work of a pausable call.
type Work<T> = Box<dyn FnOnce(&mut Budget, usize) -> Result<T, PatError>>;

/// A pausable call on its own stack.
type Call<T> = Coroutine<(), (), mlua::Result<T>, DefaultStack>;

/// `(PAUSED, resume)`: `work`, to start again on a stack of its own, where
/// it can pause; each `resume()` goes on with it until the slice is over
/// (and returns `PAUSED`) or it is done (and returns what `finish` makes
/// of its result, errors as `(ERR, message)`).
///
/// The stack is made by the first `resume()`, after the invocation has
/// yielded: until the call has run there, the invocation's state may
/// still move to another thread between two slices (see `away.rs`).
fn pausable<T: 'static>(
    lua: &Lua,
    work: impl FnOnce(&mut Budget, usize) -> Result<T, PatError> + 'static,
    finish: Finish<T>,
) -> mlua::Result<MultiValue> {
    let slot = PausableSlot::take();
    let work: Work<T> = Box::new(work);
    let state = RefCell::new(Some((Some(work), None::<Call<T>>, finish, slot)));
    let resume = lua.create_function(move |lua, ()| {
        let mut held = state.borrow_mut();
        let Some((work, call, _, slot)) = held.as_mut() else {
            return Err(mlua::Error::runtime("pattern matching: the call is over"));
        };
        let co = match call {
            Some(co) => co,
            None => {
                let work = work.take().ok_or_else(|| mlua::Error::runtime("pattern matching: the call is over"))?;
                let stack = DefaultStack::new(PAUSE_STACK)
                    .map_err(|e| mlua::Error::runtime(format!("pattern matching: no stack for a long call: {e}")))?;
                slot.pin();
                call.insert(Coroutine::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
                    PAUSER.with(|p| p.set(ptr::from_ref(yielder)));
                    let r = match run(false, work) {
                        Attempt::Done(r) => r,
                        Attempt::Restart => Err(mlua::Error::runtime("pattern matching: a pausable call restarted")),
                    };
                    PAUSER.with(|p| p.set(ptr::null()));
                    r
                }))
            }
        };
        match co.resume(()) {
            CoroutineResult::Yield(()) => Ok(MultiValue::from_iter([paused_marker()])),
            CoroutineResult::Return(r) => {
                let (_, _, finish, _) = held.take().expect("checked above");
                drop(held);
                soft(lua, r.and_then(|t| finish(lua, t)))
            }
        }
    })?;
    Ok(MultiValue::from_iter([paused_marker(), Value::Function(resume)]))
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
    let s_value = check_string(lua, &args, 1, fname)?;
    let p_value = check_string(lua, &args, 2, fname)?;
    let init = opt_integer(lua, &args, 3, fname)?;
    let plain = find && args.get(3).is_some_and(|v| !matches!(v, Value::Nil | Value::Boolean(false)));
    let (s, p) = (s_value.as_bytes(), p_value.as_bytes());
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
    let found = match run(true, |b, _| sl_lpattern::find(&s, &p, init, b)) {
        Attempt::Done(r) => r?,
        Attempt::Restart => {
            let (subject, pattern) = (s_value.clone(), p_value.clone());
            let work = move |b: &mut Budget, _| sl_lpattern::find(&subject.as_bytes(), &pattern.as_bytes(), init, b);
            let finish: Finish<Option<Match>> =
                Box::new(move |lua, found| match_values(lua, &s_value.as_bytes(), found, find));
            return pausable(lua, work, finish);
        }
    };
    match_values(lua, &s, found, find)
}

/// What `find` (positions, then captures) or `match` (captures) returns.
fn match_values(lua: &Lua, s: &[u8], found: Option<Match>, find: bool) -> mlua::Result<MultiValue> {
    let mut out = MultiValue::new();
    match found {
        None => out.push_back(Value::Nil),
        Some(m) => {
            if find {
                out.push_back(Value::Integer(m.start as i64 + 1));
                out.push_back(Value::Integer(m.end as i64));
                for c in &m.captures {
                    push_capture(lua, s, c, &mut out)?;
                }
            } else {
                push_values(lua, s, &m, &mut out)?;
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
    let state = std::rc::Rc::new(Cell::new(GMatchState::new(s.as_bytes().len(), init)));
    // Its errors come back as (marker, message) too (see `install`).
    lua.create_function(move |lua, ()| {
        let step = || {
            let (subject, pattern) = (s.as_bytes(), p.as_bytes());
            let mut g = state.get();
            match run(true, |b, _| g.next(&subject, &pattern, b)) {
                Attempt::Done(found) => {
                    state.set(g);
                    gmatch_values(lua, &subject, found?)
                }
                Attempt::Restart => {
                    let (s, p, start) = (s.clone(), p.clone(), state.get());
                    let subject = s.clone();
                    let work = move |b: &mut Budget, _| {
                        let mut g = start;
                        g.next(&subject.as_bytes(), &p.as_bytes(), b).map(|found| (g, found))
                    };
                    let state = state.clone();
                    let finish: Finish<(GMatchState, Option<Match>)> = Box::new(move |lua, (g, found)| {
                        state.set(g);
                        gmatch_values(lua, &s.as_bytes(), found)
                    });
                    pausable(lua, work, finish)
                }
            }
        };
        soft(lua, step())
    })
}

fn gmatch_values(lua: &Lua, subject: &[u8], found: Option<Match>) -> mlua::Result<MultiValue> {
    let mut out = MultiValue::new();
    match found {
        None => out.push_back(Value::Nil),
        Some(m) => push_values(lua, subject, &m, &mut out)?,
    }
    Ok(out)
}

enum Repl {
    Text(Vec<u8>),
    Table(Table),
    Func(mlua::Function),
}

fn gsub(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let subject = check_string(lua, &args, 1, "gsub")?;
    let pattern = check_string(lua, &args, 2, "gsub")?;
    let repl = args.get(2).cloned();
    let n = opt_integer(lua, &args, 4, "gsub")?;
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
    let max_string = with_active(|c| c.meter().max_string()).unwrap_or(DEFAULT_MAX_STRING);
    let Repl::Text(text) = repl else { return gsub_lua_repl(lua, subject, &pattern, repl, max_n, max_string) };
    let attempt = {
        let (s, p) = (subject.as_bytes(), pattern.as_bytes());
        run(true, |b, room| gsub_text(&s, &p, &text, max_n, max_string, b, room))
    };
    match attempt {
        Attempt::Done(r) => gsub_values(lua, &subject, r?),
        Attempt::Restart => {
            let s = subject.clone();
            let work = move |b: &mut Budget, room| {
                gsub_text(&s.as_bytes(), &pattern.as_bytes(), &text, max_n, max_string, b, room)
            };
            let finish: Finish<TextGsub> = Box::new(move |lua, r| gsub_values(lua, &subject, r));
            pausable(lua, work, finish)
        }
    }
}

/// What a `gsub` with a text replacement made.
enum TextGsub {
    Done {
        out: Vec<u8>,
        n: usize,
    },
    /// The result grew past `max_string` or what is left under `maxmem`
    /// (the abort is recorded).
    TooLong,
}

/// `gsub` with the text replacement `t` (its `%1` etc. expanded).
#[allow(clippy::too_many_arguments)]
fn gsub_text(
    s: &[u8],
    p: &[u8],
    t: &[u8],
    max_n: Option<usize>,
    max_string: usize,
    budget: &mut Budget,
    room: usize,
) -> Result<TextGsub, PatError> {
    let mut out = Vec::new();
    let mut too_long = false;
    let r = sl_lpattern::gsub_into(s, p, max_n, budget, &mut out, |m, out| -> Result<bool, PatError> {
        sl_lpattern::expand_replacement(t, s, m, out)?;
        if let Some(kind) = too_long_for(out.len(), max_string, room) {
            with_active(|c| c.abort.set(Some(c.abort.get().unwrap_or(kind))));
            too_long = true;
            return Err(PatError::Pattern(String::new()));
        }
        Ok(true)
    });
    if too_long {
        return Ok(TextGsub::TooLong);
    }
    let n = r.map_err(|e| match e {
        GsubError::Match(e) | GsubError::Replacement(e) => e,
    })?;
    Ok(TextGsub::Done { out, n })
}

/// The limit a result of `len` bytes passes, if any: it becomes one
/// string, so past `max_string` (or what is left under `maxmem`) it is
/// refused as it grows, not copied on toward `maxmem` first.
fn too_long_for(len: usize, max_string: usize, room: usize) -> Option<LimitKind> {
    if len > max_string {
        Some(LimitKind::StringLength(max_string))
    } else {
        (room > 0 && len > room).then_some(LimitKind::Memory)
    }
}

fn gsub_values(lua: &Lua, subject: &mlua::String, r: TextGsub) -> mlua::Result<MultiValue> {
    match r {
        TextGsub::TooLong => Err(mlua::Error::MemoryError("not enough memory".into())),
        // As Lua: no substitution gives back the subject itself.
        TextGsub::Done { n: 0, .. } => Ok(MultiValue::from_iter([Value::String(subject.clone()), Value::Integer(0)])),
        TextGsub::Done { out, n } => {
            Ok(MultiValue::from_iter([Value::String(lua.create_string(&out)?), Value::Integer(n as i64)]))
        }
    }
}

/// `gsub` with a table or function as the replacement, called from the
/// matcher (the prelude sends such calls to its Lua version, which can be
/// paused; this one cannot).
fn gsub_lua_repl(
    lua: &Lua,
    subject: mlua::String,
    pattern: &mlua::String,
    repl: Repl,
    max_n: Option<usize>,
    max_string: usize,
) -> mlua::Result<MultiValue> {
    let (s, p) = (subject.as_bytes(), pattern.as_bytes());
    let mut out = Vec::new();
    let mut callback_error: Option<mlua::Error> = None;
    let mut changed = false;
    let result = run(false, |budget, room| {
        let r = sl_lpattern::gsub_into(&s, &p, max_n, budget, &mut out, |m, out| -> Result<bool, PatError> {
            let replaced = match lua_replacement(lua, &repl, &s, m) {
                Ok(Some(bytes)) => {
                    out.extend_from_slice(&bytes);
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    callback_error = Some(e);
                    return Err(PatError::Pattern(String::new()));
                }
            };
            changed |= replaced;
            if let Some(kind) = too_long_for(out.len(), max_string, room) {
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
    let n = match result {
        Attempt::Done(r) => r?,
        Attempt::Restart => return Err(mlua::Error::runtime("pattern matching: a call that cannot pause restarted")),
    };
    if !changed {
        return Ok(MultiValue::from_iter([Value::String(subject.clone()), Value::Integer(0)]));
    }
    Ok(MultiValue::from_iter([Value::String(lua.create_string(&out)?), Value::Integer(n as i64)]))
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
        Repl::Text(t) => return Ok(Some(t.clone())),
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
    string.set("gsub", lua.create_function(|lua, args| soft(lua, gsub(lua, args)))?)?;
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
