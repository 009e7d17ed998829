//! Preemption that does not wait for the instruction count: a timer makes
//! the count hook fire at the very next VM instruction when a step runs
//! past its time slice or its deadline.
//!
//! The count hook (`hook.rs`) fires every [`HOOK_INTERVAL`](super::HOOK_INTERVAL)
//! instructions. That is enough when instructions are cheap, but one
//! instruction can work for milliseconds (`a == b` on two long strings is
//! one `memcmp`, `t[s]` hashes all of a new long string, `s:upper()` is one
//! call), and a thousand of them in a row then hold the worker for seconds
//! before the hook looks at the clock. So a process-wide timer thread
//! watches the steps that run, and when one is overdue it arms the hook of
//! the Lua thread that runs it with a count of 1: the hook fires after the
//! instruction in progress, yields or aborts as usual, and puts the count
//! back to [`HOOK_INTERVAL`](super::HOOK_INTERVAL).
//!
//! # How the hook is armed, and why that is sound
//!
//! Lua documents `lua_sethook` as safe to call asynchronously *from a
//! signal handler* (`ldebug.c`; the stand-alone `lua` does it on Ctrl-C):
//! it stores the hook, its mask and counts in the `lua_State`, and sets the
//! `trap` flag of the Lua frames of the `CallInfo` list. That list belongs
//! to the thread that runs the state, which frees unused nodes of it while
//! collecting garbage, so another OS thread must not walk it. The timer
//! therefore never touches a Lua state. It sends a signal (`SIGURG`, which
//! nothing else in the process uses and whose default action is to ignore
//! it) to the OS thread that runs the overdue step, and the handler, running
//! on that thread between two of its machine instructions, arms the hook
//! of the Lua thread that this OS thread marked as running.
//!
//! Arming needs less than `lua_sethook` does. Our count hook is installed
//! on every thread that runs user code from its creation, so the `trap`
//! flag of every Lua frame is already set (Lua sets it for every new frame
//! while a count hook is installed) and the VM already counts down
//! `hookcount` at every instruction: setting `hookcount` to 1 makes the
//! hook fire at the next instruction, and the VM then resets it to
//! `basehookcount` itself. That is one store, where `lua_sethook` also
//! walks the whole `CallInfo` list (a hundred thousand frames deep in a
//! deep recursion, milliseconds). `lua_sethook` writes `hookcount` from
//! signal handlers too ("for debug only, and it is no problem if they get
//! arbitrary values (causes at most one wrong hook call)"); a write lost to
//! the VM's own decrement only delays the hook to the next tick. The field
//! is not part of Lua's API: its offset, [`HOOKCOUNT_OFFSET`], is that of
//! Lua 5.4.6 to 5.4.8 on 64-bit targets, and is checked once, on a state
//! made for the purpose, against what `lua_sethook` writes; if the check
//! fails, the handler calls `lua_sethook` with a count of 1 instead (and
//! the hook puts the count back). The handler also sets a thread-local
//! flag that tells the hook the firing was armed (`hook::note_armed`).
//!
//! The handshake that keeps the handler away from a state that is not
//! running is thread-local, so it needs no synchronization with the timer:
//! - [`enter`] marks a Lua thread as running on the calling OS thread just
//!   before it is resumed, and [`leave`] restores the previous mark (the
//!   resumer) just after `lua_resume` returns. The executor does so for an
//!   invocation's thread, and the sandbox's `coroutine.resume` and
//!   `coroutine.close` for the coroutines of user code, so the mark always
//!   names the innermost Lua thread that this OS thread is running (or
//!   null between resumes).
//! - A marked thread is alive: the invocation's thread is held by its run,
//!   and a coroutine by the stack of the code that resumes it, for as long
//!   as the resume lasts; nothing between [`enter`] and [`leave`] can raise
//!   a Lua error past them (see `env::co_resume`).
//! - The handler reads the mark of its own OS thread, so it sees the mark
//!   as it was at the instruction it interrupted; a compiler fence keeps
//!   the mark's stores where they are written.
//!
//! The timer only decides *when* to signal. Each OS thread that runs steps
//! has a [`Slot`] with a count of the steps it began and ended, odd while
//! one runs: [`Watch::begin`] and its drop count. Every [`TICK`] the timer
//! looks at the counts; a thread whose count is odd and the same as at the
//! last tick has been in one step for more than a tick, longer than a time
//! slice (1 ms by default; a step normally ends within microseconds of its
//! slice), and is signalled, again at every tick until the step ends: the
//! hook checks the slice, the deadline, and the stall limit of code that
//! cannot yield ([`STALL_LIMIT`](super::STALL_LIMIT) past its slice), so a
//! firing of a step that may go on (a slice of more than a tick, the
//! compile of an action, which runs to its deadline) just goes on. A
//! signal that arrives after its step ended finds no mark, or a mark of the
//! next step, and at worst makes the hook fire early once: the hook charges
//! nothing for an armed firing.
//!
//! Other consequences of the signal: it interrupts a system call of the
//! thread it lands on (`SA_RESTART` restarts most of them, the reactor
//! retries `epoll_wait` on `EINTR`); it is only sent while a step of that
//! thread has run for more than a tick, or in the microseconds after one
//! ended.
//!
//! # Cost on the common path
//!
//! A step costs [`Watch::begin`] (a thread-local lookup, an atomic
//! increment and a load) and an increment when it ends, plus two
//! thread-local stores per resume: no clock, no system call, no lock. The
//! timer sleeps [`TICK`] at a time while steps come, and parks when none
//! came for [`IDLE_TICKS`] ticks; the first step after that wakes it (one
//! system call after an idle spell).

use std::ffi::c_int;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mlua::ffi;

use super::hook;

/// How often the timer looks at the steps that run.
pub const TICK: Duration = Duration::from_millis(2);

/// Ticks without a step after which the timer parks until the next one.
const IDLE_TICKS: u32 = 50;

/// The signal that arms the hook.
const SIGNAL: c_int = libc::SIGURG;

/// Offset of `hookcount` in a Lua 5.4 `lua_State` (64-bit): after the
/// object header, eight pointers, the base `CallInfo` (64 bytes), the hook,
/// `errfunc`, `nCcalls`, `oldpc` and `basehookcount` (just before it).
pub const HOOKCOUNT_OFFSET: usize = 188;

/// How the handler arms the hook: the offset of `hookcount` when the check
/// passed, `None` to call `lua_sethook`.
static ARMING: OnceLock<Option<usize>> = OnceLock::new();

/// Checks [`HOOKCOUNT_OFFSET`] on a state of its own: `lua_sethook` must
/// write each count it is given to that field and to the one before it
/// (`basehookcount`).
fn check_hookcount_offset() -> Option<usize> {
    if std::mem::size_of::<usize>() != 8 {
        return None;
    }
    // SAFETY: a state of our own, closed before returning. It is a main
    // thread, allocated as part of Lua's `LG` block (a `lua_State` and
    // then the `global_State`, well over 200 bytes), so the two fields
    // read are inside it; with Lua 5.4's layout they are the `int` fields
    // `lua_sethook` has just written, and only then is the offset used.
    unsafe {
        let l = ffi::luaL_newstate();
        if l.is_null() {
            return None;
        }
        let mut ok = ffi::lua_version(l) == 504.0;
        for count in [0x5A17_3C01, 0x2B4E_6D03] {
            if !ok {
                break;
            }
            ffi::lua_sethook(l, Some(hook::hook), ffi::LUA_MASKCOUNT, count);
            let at = |off: usize| std::ptr::read_unaligned(l.cast::<u8>().add(off).cast::<c_int>());
            ok =
                ffi::lua_gethookcount(l) == count && at(HOOKCOUNT_OFFSET - 4) == count && at(HOOKCOUNT_OFFSET) == count;
        }
        ffi::lua_close(l);
        ok.then_some(HOOKCOUNT_OFFSET)
    }
}

thread_local! {
    /// The Lua thread this OS thread runs, if any (see the module docs).
    /// A `const` initializer and no destructor: the signal handler may read
    /// it.
    static RUNNING: AtomicPtr<ffi::lua_State> = const { AtomicPtr::new(std::ptr::null_mut()) };
    /// This OS thread's slot, registered with the timer at its first step.
    static SLOT: ThreadSlot = ThreadSlot::register();
}

/// Marks `state` as the Lua thread running on this OS thread; returns the
/// previous mark, to be given back to [`leave`].
///
/// # Safety
///
/// `state` must stay alive until the matching [`leave`], and the caller
/// must call [`leave`] before the signal handler may no longer touch it:
/// no Lua error may unwind past the pair.
pub(crate) unsafe fn enter(state: *mut ffi::lua_State) -> *mut ffi::lua_State {
    let prev = RUNNING.with(|r| r.swap(state, Ordering::Relaxed));
    compiler_fence(Ordering::SeqCst);
    prev
}

/// Restores the mark that [`enter`] returned.
pub(crate) fn leave(prev: *mut ffi::lua_State) {
    compiler_fence(Ordering::SeqCst);
    RUNNING.with(|r| r.store(prev, Ordering::Relaxed));
}

/// [`enter`] and [`leave`] for Rust code: the mark is restored on drop.
pub(crate) struct Running {
    prev: *mut ffi::lua_State,
}

impl Running {
    /// # Safety
    ///
    /// As for [`enter`]; the guard must be dropped on this OS thread.
    pub(crate) unsafe fn enter(state: *mut ffi::lua_State) -> Self {
        // SAFETY: guaranteed by the caller.
        Self { prev: unsafe { enter(state) } }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        leave(self.prev);
    }
}

/// Whether the timer signals a thread whose step count was `before` at
/// the last tick and is `now`: the same step has run since.
fn overrun(before: u64, now: u64) -> bool {
    now & 1 == 1 && now == before
}

/// What the timer knows of one OS thread that runs steps.
struct Slot {
    /// Its kernel thread id, for `tgkill`.
    tid: libc::pid_t,
    /// Steps begun and ended (odd while one runs).
    steps: AtomicU64,
    /// The count of `steps` the timer saw last (the timer's own).
    seen: AtomicU64,
    /// Its thread has exited.
    gone: AtomicBool,
}

/// The registration of an OS thread's slot; its drop (at thread exit)
/// tells the timer to forget the slot.
struct ThreadSlot(Arc<Slot>);

impl ThreadSlot {
    fn register() -> Self {
        // SAFETY: `gettid` has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        let slot =
            Arc::new(Slot { tid, steps: AtomicU64::new(0), seen: AtomicU64::new(0), gone: AtomicBool::new(false) });
        timer().slots.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&slot));
        Self(slot)
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Relaxed);
    }
}

/// The timer thread and what it watches.
struct Timer {
    thread: std::thread::Thread,
    /// The timer is parked (or about to park) until the next step.
    idle: AtomicBool,
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// The timer, started (with the signal handler) on first use.
fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        ARMING.get_or_init(check_hookcount_offset);
        install_handler();
        let handle = std::thread::Builder::new()
            .name("sl-preempt".into())
            .spawn(|| watch(timer()))
            .expect("cannot start the preemption timer thread");
        Timer { thread: handle.thread().clone(), idle: AtomicBool::new(false), slots: Mutex::new(Vec::new()) }
    })
}

/// The timer's loop (see the module docs).
fn watch(timer: &'static Timer) {
    // SAFETY: `getpid` has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut quiet = 0u32;
    loop {
        std::thread::sleep(TICK);
        let mut slots = timer.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| !s.gone.load(Ordering::Relaxed));
        let mut active = false;
        for s in slots.iter() {
            let now = s.steps.load(Ordering::Relaxed);
            let before = s.seen.swap(now, Ordering::Relaxed);
            active |= now != before || now & 1 == 1;
            if overrun(before, now) {
                // SAFETY: `tgkill` to a thread of this process; at worst
                // (the thread just exited and its id was reused by another
                // of ours) a thread that runs no step gets a signal whose
                // handler does nothing.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, s.tid, SIGNAL) };
            }
        }
        drop(slots);
        quiet = if active { 0 } else { quiet + 1 };
        if quiet >= IDLE_TICKS {
            timer.idle.store(true, Ordering::SeqCst);
            // Pairs with the increment and load of `Watch::begin`: a step
            // that began before `idle` was seen set is seen here.
            let none = timer
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .all(|s| s.steps.load(Ordering::SeqCst) == s.seen.load(Ordering::Relaxed));
            if none {
                std::thread::park();
            }
            timer.idle.store(false, Ordering::SeqCst);
            quiet = 0;
        }
    }
}

/// Publishes a running step to the timer until dropped.
pub(crate) struct Watch {
    /// This thread's slot; null for a step inside a step (not counted).
    slot: *const Slot,
}

impl Watch {
    /// Tells the timer that this OS thread runs a step: after a tick, the
    /// hook of the Lua thread marked running is armed at every tick until
    /// the step ends.
    pub(crate) fn begin() -> Self {
        let slot = SLOT.with(|s| Arc::as_ptr(&s.0));
        // SAFETY: the slot is kept by this thread's `SLOT` until the thread
        // exits, and a `Watch` lives within a step of this thread.
        let s = unsafe { &*slot };
        if s.steps.load(Ordering::Relaxed) & 1 == 1 {
            return Self { slot: std::ptr::null() };
        }
        s.steps.fetch_add(1, Ordering::SeqCst);
        let timer = timer();
        if timer.idle.load(Ordering::SeqCst) {
            timer.thread.unpark();
        }
        Self { slot }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.slot.is_null() {
            // SAFETY: as in `begin`.
            unsafe { &*self.slot }.steps.fetch_add(1, Ordering::Release);
        }
    }
}

/// The handler that was installed for [`SIGNAL`] before ours, to chain to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

fn install_handler() {
    // SAFETY: a zeroed `sigaction` is a valid "no handler" value, filled in
    // before use; `sigaction` with valid pointers has no other
    // precondition. The handler only does what a signal handler may (see
    // `on_signal`).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(SIGNAL, &action, &mut old) == 0 {
            let _ = PREVIOUS.set(old);
        }
    }
}

/// Arms the hook of the Lua thread this OS thread runs (see the module
/// docs), then hands the signal to any handler installed before.
extern "C" fn on_signal(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let state = RUNNING.with(|r| r.load(Ordering::Relaxed));
    compiler_fence(Ordering::SeqCst);
    if !state.is_null() {
        hook::note_armed();
        match ARMING.get().copied().flatten() {
            // SAFETY: the mark names a live Lua thread that this OS thread
            // is running (see `enter`); the offset was checked to be that
            // of its `hookcount` (see `check_hookcount_offset`), an `int`
            // that the interrupted code only counts down, and that
            // `lua_sethook` too writes from signal handlers.
            Some(off) => unsafe { std::ptr::write_volatile(state.cast::<u8>().add(off).cast::<c_int>(), 1) },
            // SAFETY: `lua_sethook` may be called from a signal handler
            // interrupting the thread that runs `state` (Lua's `ldebug.c`).
            None => unsafe { ffi::lua_sethook(state, Some(hook::hook), ffi::LUA_MASKCOUNT, 1) },
        }
    }
    if let Some(old) = PREVIOUS.get() {
        let h = old.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            // SAFETY: a handler some other code installed for this signal,
            // called as the kernel would have called it.
            unsafe {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(h);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(c_int) = std::mem::transmute(h);
                    f(sig);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_step_seen_running_at_two_ticks_is_signalled() {
        assert!(!overrun(0, 0), "no step");
        assert!(!overrun(0, 1), "a step that began since the last tick");
        assert!(overrun(1, 1), "the same step at two ticks");
        assert!(!overrun(1, 3), "another step");
        assert!(!overrun(2, 2), "no step since");
    }

    #[test]
    fn watches_count_steps_and_ignore_steps_inside_steps() {
        let slot = SLOT.with(|s| Arc::clone(&s.0));
        let n = slot.steps.load(Ordering::Relaxed);
        let outer = Watch::begin();
        assert_eq!(slot.steps.load(Ordering::Relaxed), n + 1);
        {
            let _inner = Watch::begin();
            assert_eq!(slot.steps.load(Ordering::Relaxed), n + 1);
        }
        assert_eq!(slot.steps.load(Ordering::Relaxed), n + 1);
        drop(outer);
        assert_eq!(slot.steps.load(Ordering::Relaxed), n + 2);
    }

    #[test]
    fn the_hookcount_offset_is_that_of_this_lua() {
        assert_eq!(check_hookcount_offset(), Some(HOOKCOUNT_OFFSET), "arming would fall back to lua_sethook");
    }

    #[test]
    fn the_running_mark_nests() {
        let a = 0x10 as *mut ffi::lua_State;
        let b = 0x20 as *mut ffi::lua_State;
        // SAFETY: nothing signals this thread while the fake marks are set
        // (no step runs), so the handler never sees them.
        unsafe {
            let p0 = enter(a);
            let p1 = enter(b);
            assert_eq!(p1, a);
            leave(p1);
            assert_eq!(RUNNING.with(|r| r.load(Ordering::Relaxed)), a);
            leave(p0);
        }
        assert!(RUNNING.with(|r| r.load(Ordering::Relaxed)).is_null());
    }
}
