//! The instruction hook: charges the instruction budget, enforces the
//! deadline and the memory limit, and preempts long-running code.
//!
//! The hook is a raw Lua count hook (not mlua's closure hooks) because it
//! must know which coroutine it runs on and whether that coroutine can
//! yield, and because coroutines created by user code inherit it from the
//! invocation's thread.
//!
//! Rules:
//! - The hook fires every [`HOOK_INTERVAL`] VM instructions; the budget is
//!   charged in steps of that size. It also fires at the next instruction
//!   when the preemption timer arms it because the step is overdue
//!   (`preempt.rs`): one instruction may take milliseconds (a comparison
//!   of long strings), and a thousand of them would hold the worker for
//!   seconds. Such a firing charges nothing.
//! - Once a limit is hit, [`Control::abort`] is set and every later firing
//!   raises an error, now on every instruction. The `pcall`, `xpcall` and
//!   `coroutine.resume` wrappers of the sandbox re-raise it too, so the
//!   abort cannot be caught.
//! - When the time slice is used up and the running coroutine can yield,
//!   the hook sets [`Control::preempted`] and yields it.
//! - Lua code called from inside a C or Rust function (a `table.sort`
//!   comparator in C, a metamethod called by a library function, an
//!   `xpcall` message handler, a `__close` handler run by
//!   `coroutine.close`) cannot yield. It may run [`STALL_LIMIT`] past the
//!   end of its slice; then the invocation is aborted with
//!   [`LimitKind::Stall`], so that no invocation holds its reactor longer.
//!   The time counted is the thread's CPU time from the first check that
//!   finds the slice over: on a loaded machine, where the thread gets a
//!   fraction of a core, valid code is not stopped because others ran.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlua::ffi;

use super::alloc::MemoryMeter;

/// VM instructions between two hook firings.
pub const HOOK_INTERVAL: c_int = 1000;

/// How long past the end of its time slice code that cannot be paused may
/// run before the invocation is aborted (see the module docs).
pub const STALL_LIMIT: Duration = Duration::from_millis(20);

/// Which limit ended an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `maxmem` was exceeded.
    Memory,
    /// The `instructions` budget was used up.
    Instructions,
    /// The `timeout` passed.
    Timeout,
    /// Code that cannot be paused ran [`STALL_LIMIT`] past its time slice.
    /// Reported to clients as a timeout.
    Stall,
    /// A string longer than the state's `Limits.max_string` (the bytes it
    /// holds, [`MemoryMeter::max_string`]) was refused. Reported to clients
    /// as a memory error.
    StringLength(usize),
}

impl LimitKind {
    /// The error kind reported to clients.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Memory | Self::StringLength(_) => "memory",
            Self::Instructions => "instructions",
            Self::Timeout | Self::Stall => "timeout",
        }
    }
}

/// What an action said of one message of a subscription's batch, with
/// `ack(message)` or `retry(message, {delay = s})`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub partition: u32,
    pub offset: i64,
    /// `None` for `ack`; for `retry`, the delay asked for in milliseconds,
    /// if one was (else the subscription's backoff decides).
    pub retry: Option<Option<u64>>,
}

/// At most this many `ack` and `retry` calls an invocation (a batch holds
/// at most 1,000 messages).
pub const MAX_VERDICTS: usize = 10_000;

/// Per-instance state shared by the hook, the sandbox's Rust functions and
/// the executor. Lives in a `Box` with a stable address.
pub struct Control {
    pub(crate) deadline: Cell<Instant>,
    pub(crate) slice_end: Cell<Instant>,
    /// The thread's CPU time when code that cannot be paused was first
    /// seen past `slice_end` in this step (reset when a step begins).
    pub(crate) stall_mark: Cell<Option<Duration>>,
    pub(crate) budget: Cell<u64>,
    pub(crate) used: Cell<u64>,
    pub(crate) abort: Cell<Option<LimitKind>>,
    /// Coroutines the hook paused and whose resumer has not seen it yet.
    pub(crate) preempted: RefCell<Vec<*const std::ffi::c_void>>,
    pub(crate) logs: RefCell<String>,
    pub(crate) log_limit: Cell<usize>,
    pub(crate) logs_truncated: Cell<bool>,
    /// What `ack` and `retry` said of the messages of a delivery, in call
    /// order (taken when the invocation ends).
    pub(crate) verdicts: RefCell<Vec<Verdict>>,
    pub(crate) meter: *const MemoryMeter,
    /// The arguments of `main`, set only while the resume that starts it
    /// runs (the entry function takes them; see `instance::entry`).
    pub(crate) pending_args: Cell<Option<ErasedTree>>,
    /// Pattern calls of this state that exist on stacks of their own
    /// (`strings.rs`): while any does, the state stays on the OS thread it
    /// runs on (see `away.rs`).
    pub(crate) own_stacks: Cell<u32>,
}

impl Control {
    pub(crate) fn new(meter: *const MemoryMeter) -> Self {
        let now = Instant::now();
        Self {
            deadline: Cell::new(now),
            slice_end: Cell::new(now),
            stall_mark: Cell::new(None),
            budget: Cell::new(u64::MAX),
            used: Cell::new(0),
            abort: Cell::new(None),
            preempted: RefCell::new(Vec::new()),
            logs: RefCell::new(String::new()),
            log_limit: Cell::new(64 * 1024),
            logs_truncated: Cell::new(false),
            verdicts: RefCell::new(Vec::new()),
            meter,
            pending_args: Cell::new(None),
            own_stacks: Cell::new(0),
        }
    }

    pub(crate) fn meter(&self) -> &MemoryMeter {
        // SAFETY: the meter box is owned by the same instance as this
        // control block and outlives it.
        unsafe { &*self.meter }
    }

    /// Checks the limits that can be checked without a clock, then the
    /// clock; records and returns the first limit hit.
    pub(crate) fn check(&self) -> Option<LimitKind> {
        self.check_at(Instant::now())
    }

    /// [`check`](Self::check) with the clock read by the caller.
    pub(crate) fn check_at(&self, now: Instant) -> Option<LimitKind> {
        if let Some(kind) = self.abort.get() {
            return Some(kind);
        }
        let kind = if let Some(kind) = self.memory_limit() {
            Some(kind)
        } else if self.used.get() > self.budget.get() {
            Some(LimitKind::Instructions)
        } else if now >= self.deadline.get() {
            Some(LimitKind::Timeout)
        } else {
            None
        };
        if kind.is_some() {
            self.abort.set(kind);
        }
        kind
    }

    /// The memory limit the meter recorded a refusal for, if any.
    pub(crate) fn memory_limit(&self) -> Option<LimitKind> {
        let meter = self.meter();
        match (meter.limit_hit(), meter.long_string()) {
            (false, _) => None,
            (true, false) => Some(LimitKind::Memory),
            (true, true) => Some(LimitKind::StringLength(meter.max_string())),
        }
    }

    /// Checks [`check`](Self::check), then whether code that cannot be
    /// paused has run [`STALL_LIMIT`] past the end of its slice; records and
    /// returns the first limit hit.
    pub(crate) fn check_stall(&self) -> Option<LimitKind> {
        if let Some(kind) = self.check() {
            return Some(kind);
        }
        if Instant::now() >= self.slice_end.get() {
            let cpu = thread_cpu_time();
            let mark = self.stall_mark.get().unwrap_or(cpu);
            self.stall_mark.set(Some(mark));
            if cpu.saturating_sub(mark) >= STALL_LIMIT {
                self.abort.set(Some(LimitKind::Stall));
            }
        }
        self.abort.get()
    }

    /// Whether the hook paused `thread` (a `lua_State` pointer); forgets it.
    pub(crate) fn take_preempted(&self, thread: *const std::ffi::c_void) -> bool {
        let mut p = self.preempted.borrow_mut();
        match p.iter().position(|t| *t == thread) {
            Some(i) => {
                p.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Appends a line of `print` output, bounded by the log limit.
    pub(crate) fn log_line(&self, line: &str) {
        if self.logs_truncated.get() {
            return;
        }
        let mut logs = self.logs.borrow_mut();
        let room = self.log_limit.get().saturating_sub(logs.len());
        if line.len() < room {
            logs.push_str(line);
            logs.push('\n');
        } else {
            let mut cut = room;
            while cut > 0 && !line.is_char_boundary(cut) {
                cut -= 1;
            }
            logs.push_str(&line[..cut]);
            logs.push_str("\n...[logs truncated]\n");
            self.logs_truncated.set(true);
        }
    }
}

/// A [`JsonTree`](super::json::JsonTree) behind a pointer without its
/// type, for a push from a C function that cannot be generic (see
/// `instance::entry`): the arguments [`Control::pending_args`] holds. Made
/// and pushed by its methods in `json.rs`, next to the trees it erases.
#[derive(Clone, Copy)]
pub(crate) struct ErasedTree {
    pub(super) tree: *const std::ffi::c_void,
    pub(super) push: unsafe fn(*mut ffi::lua_State, *const std::ffi::c_void),
}

thread_local! {
    /// The control block of the invocation running on this thread, if any.
    static ACTIVE: Cell<*const Control> = const { Cell::new(std::ptr::null()) };
    /// Firings of the hook on this thread that the preemption timer armed.
    static ARMED: Cell<u64> = const { Cell::new(0) };
    /// The preemption timer armed the hook and it has not fired since.
    /// Set from a signal handler: a `const` initializer and no destructor.
    static ARM_PENDING: AtomicBool = const { AtomicBool::new(false) };
}

/// Tells the hook that its next firing was armed by the preemption timer.
/// Called from a signal handler: one store to a thread-local atomic.
pub(crate) fn note_armed() {
    ARM_PENDING.with(|a| a.store(true, Ordering::Relaxed));
}

/// How many times the hook fired on this thread because the preemption
/// timer armed it (see `preempt.rs`).
pub fn armed_firings() -> u64 {
    ARMED.with(Cell::get)
}

/// Marks `ctl` as the running invocation on this thread until the guard drops.
pub(crate) struct ActiveGuard {
    prev: *const Control,
}

impl ActiveGuard {
    pub(crate) fn enter(ctl: &Control) -> Self {
        let prev = ACTIVE.with(|a| a.replace(ctl as *const Control));
        Self { prev }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.prev));
    }
}

/// CPU time of the calling thread (a system call; only read once a slice
/// is over in code that cannot be paused).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes the timespec it is given, which lives
    // on this stack; the clock id is a constant Linux supports.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Installs the hook on a Lua thread (coroutines it creates inherit it).
///
/// # Safety
/// `state` must be a live Lua thread.
pub(crate) unsafe fn install(state: *mut ffi::lua_State) {
    // SAFETY: guaranteed by the caller.
    unsafe { ffi::lua_sethook(state, Some(hook), ffi::LUA_MASKCOUNT, HOOK_INTERVAL) };
}

/// The count hook (see the module docs). `preempt.rs` arms it from a
/// signal handler: it makes the hook fire at the next instruction and
/// calls [`note_armed`].
pub(crate) unsafe extern "C-unwind" fn hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // A firing the preemption timer asked for charges nothing (it came
    // before the interval was used up). If the timer had to arm it with
    // `lua_sethook`, the count goes back to the interval below (unless a
    // limit is hit: then it stays 1).
    let armed = ARM_PENDING.with(|a| a.swap(false, Ordering::Relaxed));
    let ctl = ACTIVE.with(|a| a.get());
    if ctl.is_null() {
        // SAFETY: `state` is the running thread.
        if unsafe { ffi::lua_gethookcount(state) } != HOOK_INTERVAL {
            // SAFETY: as above.
            unsafe { install(state) };
        }
        return;
    }
    // SAFETY: ACTIVE points at the control block of the instance whose code
    // is running on this thread; `ActiveGuard` clears it before that
    // instance can be dropped.
    let ctl = unsafe { &*ctl };
    if armed {
        ARMED.with(|a| a.set(a.get() + 1));
    } else {
        ctl.used.set(ctl.used.get() + HOOK_INTERVAL as u64);
    }
    // SAFETY: `state` is the running thread.
    let yieldable = unsafe { ffi::lua_isyieldable(state) } != 0;
    let limit = if yieldable { ctl.check() } else { ctl.check_stall() };
    if let Some(kind) = limit {
        let msg: &'static [u8] = match kind {
            LimitKind::Memory => b"invocation aborted: memory limit exceeded",
            LimitKind::Instructions => b"invocation aborted: instruction budget exhausted",
            LimitKind::Timeout => b"invocation aborted: timeout",
            LimitKind::Stall => b"invocation aborted: ran too long where it cannot be paused",
            LimitKind::StringLength(_) => b"invocation aborted: a string longer than Limits.max_string",
        };
        // SAFETY: `state` is the running thread. From now on the hook fires
        // on every instruction so that code catching the error cannot run
        // on. `lua_error` does not return; no value with a destructor is
        // alive in this frame at this point.
        unsafe {
            // (Once: `lua_sethook` walks all the thread's call frames.)
            if ffi::lua_gethookcount(state) != 1 {
                ffi::lua_sethook(state, Some(hook), ffi::LUA_MASKCOUNT, 1);
            }
            ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
            ffi::lua_error(state);
        }
    }
    // SAFETY: `state` is the running thread.
    if armed && unsafe { ffi::lua_gethookcount(state) } != HOOK_INTERVAL {
        // SAFETY: as above.
        unsafe { install(state) };
    }
    if yieldable && Instant::now() >= ctl.slice_end.get() {
        ctl.preempted.borrow_mut().push(state as *const std::ffi::c_void);
        // SAFETY: `state` is the running thread and can yield; a count hook
        // may yield with no values.
        unsafe { ffi::lua_yield(state, 0) };
    }
}

/// Runs `f` with the control block of the running invocation, if any.
pub(crate) fn with_active<R>(f: impl FnOnce(&Control) -> R) -> Option<R> {
    let ctl = ACTIVE.with(|a| a.get());
    if ctl.is_null() {
        return None;
    }
    // SAFETY: see `hook`: ACTIVE is only set while its instance is alive.
    Some(f(unsafe { &*ctl }))
}
