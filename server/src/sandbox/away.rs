//! Lua states that leave their worker's thread for a while: the slices of
//! an invocation with a large heap, and the freeing of a large state.
//!
//! Some steps of Lua take time in proportion to the heap and cannot be
//! paused: the collector's atomic step traverses again every table written
//! to since it was marked, a table's rehash moves every entry, `next`
//! walks a run of empty slots, and freeing a state (or its first full
//! collection) touches all of it. On the event loop, such a step holds
//! every connection of the worker: at 64 MiB of written tables, tens of
//! milliseconds. So the executor gives an invocation whose heap is larger
//! than `Limits.offload_heap` its time slices on another thread of its
//! worker, and the worker goes on serving its sockets meanwhile. The heap
//! can only grow by what one slice allocates before the executor looks at
//! it again, so the steps left on the loop work through at most that
//! bound plus a slice's growth, whatever `maxmem` is.
//!
//! An [`Away`] is a [`Run`] on its way to that thread or back; a
//! [`Remains`] is an [`Instance`] to be freed there.
//!
//! # Why a state may move to another thread
//!
//! A Lua state is not tied to the OS thread that made it; what matters is
//! that one thread at a time uses it, and that nothing left behind points
//! into it:
//! - The run owns its instance, and the instance owns the state with every
//!   `mlua` handle to it (the `Lua`, its functions and threads, whose
//!   reference counts are plain `Rc`s). The cache holds only idle
//!   instances, never one that runs, and the sandbox's Rust functions
//!   capture nothing shared outside the state. So the whole graph moves
//!   together, and no count is touched from two threads.
//! - The thread-locals that point into a state while it runs (the active
//!   control block of `hook.rs`, the running Lua thread of `preempt.rs`,
//!   the pattern call's yielder of `strings.rs`) are set by
//!   [`Run::step`] on the thread that steps and put back before it
//!   returns. The preemption timer knows any thread that runs a step.
//! - The exception: a pattern call paused on a stack of its own
//!   (`strings.rs`, a `corosensei` coroutine) goes on where it stopped,
//!   and its code may have kept the addresses of the thread-locals of the
//!   thread it started on. A state that holds one stays where it is
//!   ([`Away::leave`] refuses it) until the call is over, and one paused
//!   away goes back to the same thread ([`Away::again`]: the executor
//!   gives each worker one heavy thread, and a run that went there once
//!   takes all its slices there).
//! - The memory a worker's states hold (`Limits.total_memory`'s share,
//!   counted per thread by the allocator) keeps counting the state at the
//!   size it left with. For its step, the other thread counts against the
//!   worker's total and budget as they were when it left, so an allocation
//!   that would take the worker past its share is refused there as it
//!   would be here; what the step allocated or freed is added to the
//!   worker's count when it returns ([`Away::back`]). The worker's own
//!   states and the one away may each grow by what one slice allocates
//!   past a total the other has not seen yet: the share can be passed by
//!   that much, not more.

use std::time::Duration;

use super::alloc::{charge_thread, set_thread_account, thread_account};
use super::instance::{Instance, Outcome, Run, Step};
use super::InvokeError;

/// A run stepping away from its worker's thread.
pub struct Away {
    run: Run,
    /// Bytes of heap the worker's count holds for it.
    counted: usize,
    /// The worker's total and budget when it left.
    worker: (usize, usize),
}

// SAFETY: see the module docs. The run owns every handle to its state,
// and a run whose state holds a paused pattern call (whose stack may keep
// thread-local addresses) is made an `Away` only by `again`, whose caller
// sends it back to the thread where the call paused. The state is used by
// one thread at a time: the `Away` is moved, never shared (it is not
// `Sync`).
unsafe impl Send for Away {}

impl Away {
    /// Takes `run` off the calling thread; gives it back if its state must
    /// stay (it holds a pattern call paused on its own stack).
    pub fn leave(run: Run) -> Result<Self, Box<Run>> {
        if run.pinned() {
            return Err(Box::new(run));
        }
        // SAFETY: it holds no paused pattern call.
        Ok(unsafe { Self::again(run) })
    }

    /// Takes `run` off the calling thread to be stepped on the thread that
    /// ran its last step before this one.
    ///
    /// # Safety
    ///
    /// Either its state holds no paused pattern call, or the thread that
    /// will step it is the one that ran its last step (where such a call
    /// was paused).
    pub unsafe fn again(run: Run) -> Self {
        let counted = run.memory_used();
        Self { run, counted, worker: thread_account() }
    }

    /// Runs a slice of at most about `slice` on the calling thread. When
    /// the invocation is done, the instance is freed here if it will not
    /// serve again, or collected as the cache would collect it, so that
    /// the worker gets it back with that work done.
    pub fn step(&mut self, slice: Duration) -> Step {
        let _account = Account::worker(self.worker);
        // Its clock starts now, whenever it was started.
        self.run.restart_clock();
        let step = self.run.step(slice);
        if let Step::Done(outcome) = &step {
            self.run.settle(outcome);
        }
        step
    }

    /// Ends the run with an internal error after [`step`](Self::step)
    /// panicked (a fault of the server): its state is dropped here.
    pub fn fail(&mut self, message: &str) -> Step {
        {
            let _account = Account::worker(self.worker);
            drop(self.run.discard());
        }
        Step::Done(Outcome {
            result: Err(InvokeError::Internal(message.to_string())),
            logs: String::new(),
            instructions: 0,
            peak_memory: 0,
            duration: Duration::ZERO,
        })
    }

    /// The run, back on its worker's thread, whose count of the worker's
    /// states now holds its heap as it is.
    pub fn back(self) -> Run {
        charge_thread(self.run.memory_used() as isize - self.counted as isize);
        self.run
    }
}

/// The calling thread counting against a worker's total and budget until
/// it is dropped, then against its own again (also when a step panics).
struct Account {
    own: (usize, usize),
}

impl Account {
    fn worker((total, budget): (usize, usize)) -> Self {
        let own = thread_account();
        set_thread_account(total, budget);
        Self { own }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        set_thread_account(self.own.0, self.own.1);
    }
}

/// An instance to be freed on another thread: the thread that drops it
/// frees it, and its count of its states is left as it was.
pub struct Remains {
    instance: Option<Instance>,
    counted: usize,
}

// SAFETY: as for `Away`: the instance owns every handle to its state, is
// idle or done (no step runs in it), and one that holds a paused pattern
// call is never made a `Remains`.
unsafe impl Send for Remains {}

impl Remains {
    /// Takes `instance` off the calling thread, whose count of its states
    /// no longer holds it; gives it back if it must stay.
    pub fn leave(instance: Instance) -> Result<Self, Box<Instance>> {
        if instance.pinned() {
            return Err(Box::new(instance));
        }
        let counted = instance.memory_used();
        charge_thread(-(counted as isize));
        Ok(Self { instance: Some(instance), counted })
    }

    /// Frees the state on the calling thread.
    pub fn free(self) {
        drop(self);
    }
}

impl Drop for Remains {
    fn drop(&mut self) {
        // Counted here for as long as it takes to free it, which takes it
        // off the count again.
        charge_thread(self.counted as isize);
        self.instance = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::sandbox::{thread_total, Budget, InvokeError, Outcome, DEFAULT_MAX_STRING, LUA_THREAD_STACK};

    fn budget() -> Budget {
        Budget {
            memory: 256 << 20,
            timeout: Duration::from_secs(60),
            instructions: 1 << 40,
            max_string: DEFAULT_MAX_STRING,
        }
    }

    fn start(main: &str) -> Run {
        let src = format!("function main() {main} end");
        Instance::from_source("t", src, DEFAULT_MAX_STRING).unwrap().start(json!({}), budget())
    }

    /// Steps `run` on this thread until `done` says stop or it is done.
    fn step_until(run: &mut Run, mut done: impl FnMut(&Run) -> bool) -> Option<Outcome> {
        loop {
            match run.step(Duration::from_millis(1)) {
                Step::Yielded if done(run) => return None,
                Step::Yielded => {}
                Step::Done(o) => return Some(o),
                other => panic!("unexpected step {other:?}"),
            }
        }
    }

    /// Steps an `Away` on a thread of its own until it is done or has run
    /// `slices` slices, and brings it back.
    fn on_another_thread(away: Away, slices: usize) -> (Away, Option<Outcome>) {
        std::thread::Builder::new()
            .stack_size(LUA_THREAD_STACK)
            .spawn(move || {
                let mut away = away;
                for _ in 0..slices {
                    if let Step::Done(o) = away.step(Duration::from_millis(5)) {
                        return (away, Some(o));
                    }
                }
                (away, None)
            })
            .unwrap()
            .join()
            .unwrap()
    }

    /// A run goes to another thread in the middle, goes on there, comes
    /// back and ends here with the right result; this thread's count of its
    /// states follows the heap it came back with.
    #[test]
    fn a_run_steps_on_another_thread_and_comes_back() {
        let base = thread_total();
        let mut run = start(
            "local t = {} for i = 1, 3000000 do t[i] = i end \
             local s = 0 for i = 1, #t do s = s + t[i] end return s",
        );
        assert!(step_until(&mut run, |r| r.memory_used() > 8 << 20).is_none());
        assert_eq!(thread_total(), base + run.memory_used());
        let away = Away::leave(run).ok().expect("a run without a paused pattern call may leave");
        let (away, outcome) = on_another_thread(away, 2);
        assert!(outcome.is_none(), "it ran two slices there and goes on");
        let mut run = away.back();
        assert_eq!(thread_total(), base + run.memory_used(), "the count follows the heap it came back with");
        let o = step_until(&mut run, |_| false).expect("done");
        assert_eq!(o.result, Ok(json!(3000000i64 * 3000001 / 2)));
    }

    /// A run that ends away frees a failed state there, and this thread's
    /// count lets go of it when it comes back.
    #[test]
    fn a_failed_state_is_freed_where_it_ended() {
        let base = thread_total();
        let mut run = start("local t = {} for i = 1, 3000000 do t[i] = {} end error('boom')");
        assert!(step_until(&mut run, |r| r.memory_used() > 8 << 20).is_none());
        let away = Away::leave(run).ok().expect("leaves");
        let (away, outcome) = on_another_thread(away, 10_000);
        let outcome = outcome.expect("done away");
        assert!(matches!(outcome.result, Err(InvokeError::Runtime(ref m)) if m.contains("boom")), "{outcome:?}");
        let mut run = away.back();
        assert_eq!(run.memory_used(), 0, "the state was freed away");
        assert!(run.take_instance(&outcome).is_none());
        assert_eq!(thread_total(), base);
    }

    /// Away, the state counts against its worker's budget as it was when
    /// it left: past it, an allocation is refused as it would be at home.
    #[test]
    fn the_workers_budget_holds_away() {
        let mut run = start("local t = {} for i = 1, 4000000 do t[i] = i end return #t");
        assert!(step_until(&mut run, |r| r.memory_used() > 8 << 20).is_none());
        crate::sandbox::set_thread_budget(thread_total() + (16 << 20));
        let away = Away::leave(run).ok().expect("leaves");
        crate::sandbox::set_thread_budget(0);
        let (away, outcome) = on_another_thread(away, 10_000);
        let outcome = outcome.expect("done away");
        assert_eq!(outcome.result, Err(InvokeError::Limit(crate::sandbox::LimitKind::Memory)));
        drop(away.back());
    }

    /// A long pattern call gets its own stack in the slice after the one
    /// it found over, on the thread that runs that slice: between the two,
    /// its state may still move, and the call goes on where it moved to.
    #[test]
    fn a_long_pattern_call_takes_its_stack_where_it_goes_on() {
        let mut run = start("return string.find(string.rep('a', 4000000), '^a*.?b$')");
        assert!(matches!(run.step(Duration::from_millis(1)), Step::Yielded));
        assert!(!run.pinned(), "no stack yet");
        let away = Away::leave(run).ok().expect("a call without its stack yet may leave");
        let (away, outcome) = on_another_thread(away, 100_000);
        assert_eq!(outcome.expect("done there").result, Ok(serde_json::Value::Null));
        drop(away.back());
    }

    /// A state that holds a pattern call paused on its own stack may not
    /// leave; once the call is over, it may.
    #[test]
    fn a_paused_pattern_call_keeps_its_state_here() {
        let mut run = start(
            "local r = string.find(string.rep('a', 4000000), '^a*.?b$') \
             local n = 0 while true do n = n + 1 end",
        );
        assert!(step_until(&mut run, Run::pinned).is_none(), "the call pauses");
        let mut run = match Away::leave(run) {
            Ok(_) => panic!("a state with a paused pattern call left its thread"),
            Err(run) => *run,
        };
        assert!(step_until(&mut run, |r| !r.pinned()).is_none(), "the call ends, the loop spins");
        assert!(Away::leave(run).is_ok());
    }

    /// An idle instance freed on another thread: this thread's count lets
    /// go of it at once.
    #[test]
    fn remains_are_freed_elsewhere() {
        let base = thread_total();
        let mut run = start("big = {} for i = 1, 1000000 do big[i] = i end return 1");
        let o = step_until(&mut run, |_| false).expect("done");
        let instance = run.take_instance(&o).expect("reusable");
        assert!(thread_total() > base + (8 << 20));
        let remains = Remains::leave(instance).ok().expect("leaves");
        assert_eq!(thread_total(), base);
        std::thread::spawn(move || remains.free()).join().unwrap();
        assert_eq!(thread_total(), base);
        // Dropped without `free`, here: freed here, the count as it was.
        let mut run = start("big = {} for i = 1, 1000000 do big[i] = i end return 1");
        let o = step_until(&mut run, |_| false).expect("done");
        let remains = Remains::leave(run.take_instance(&o).expect("reusable")).ok().expect("leaves");
        assert_eq!(thread_total(), base);
        drop(remains);
        assert_eq!(thread_total(), base);
    }
}
