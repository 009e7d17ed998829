//! Blocking pools: threads for work that may block (store calls, compiles,
//! plugin calls), in the style of libuv's threadpool.
//!
//! A job runs on a pool thread and returns a continuation; the continuation
//! is sent back through a channel and the worker's reactor is woken with its
//! `mio::Waker`, then the continuation runs on the worker's thread. The
//! worker must drain [`Pool::try_completion`] until it is empty after every
//! wake-up.
//!
//! Jobs wait in a queue under a mutex, and idle threads on a condition
//! variable beside it: a job wakes one thread, if one waits (a busy one
//! takes it from the queue when it is done). (With a channel's single
//! receiver behind a mutex, one idle thread waited in the channel and the
//! others on the mutex, so each job also woke a second thread, only for it
//! to take the mutex and wait again: two more context switches a job,
//! which a group commit of submits paid on every commit.)

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A continuation run on the worker's thread with its state.
pub type Completion<S> = Box<dyn FnOnce(&mut S) + Send>;
type Job<S> = Box<dyn FnOnce() -> Completion<S> + Send>;

/// Worker threads: at least `min`, growing up to `max` while every thread
/// is busy, shrinking back after a minute without work.
pub struct Pool<S> {
    done: Receiver<Completion<S>>,
    shared: Arc<Shared<S>>,
    /// Jobs spawned whose continuation has not been taken yet; while it is
    /// zero, [`try_completion`](Self::try_completion) does not touch the
    /// channel (the reactor asks after every turn).
    outstanding: Cell<usize>,
}

struct Shared<S> {
    name: String,
    min: usize,
    max: usize,
    jobs: Mutex<Jobs<S>>,
    /// Signalled when a job is queued or the pool closes.
    job_ready: Condvar,
    done_tx: Mutex<Sender<Completion<S>>>,
    wake: Arc<dyn Fn() + Send + Sync>,
    threads: AtomicUsize,
    idle: AtomicUsize,
    /// Jobs sent and not yet taken by a thread.
    pending: AtomicUsize,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// What a pool thread does next.
enum Next<S> {
    Job(Job<S>),
    /// The pool is closed and no job is left: leave.
    Closed,
    /// Idle too long with threads to spare: leave, counted out already.
    Idle,
}

/// The jobs not yet taken by a thread.
struct Jobs<S> {
    queue: VecDeque<Job<S>>,
    /// No more jobs are accepted: threads leave once the queue is empty.
    closed: bool,
    /// Threads waiting for a job: a job queued with none waiting wakes
    /// nobody (no `futex` call; a busy thread takes it when it is done).
    waiting: usize,
}

const IDLE_EXIT: Duration = Duration::from_secs(60);

impl<S: 'static> Pool<S> {
    /// Starts `min` workers (at least one); `wake` is called after each
    /// completion is sent.
    pub fn new(name: &str, min: usize, max: usize, wake: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Self> {
        let (done_tx, done_rx) = mpsc::channel::<Completion<S>>();
        let min = min.max(1);
        let shared = Arc::new(Shared {
            name: name.to_string(),
            min,
            max: max.max(min),
            jobs: Mutex::new(Jobs { queue: VecDeque::new(), closed: false, waiting: 0 }),
            job_ready: Condvar::new(),
            done_tx: Mutex::new(done_tx),
            wake,
            threads: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            handles: Mutex::new(Vec::new()),
        });
        for _ in 0..min {
            Self::add_thread(&shared)?;
        }
        Ok(Self { done: done_rx, shared, outstanding: Cell::new(0) })
    }

    fn add_thread(shared: &Arc<Shared<S>>) -> std::io::Result<()> {
        let n = shared.threads.fetch_add(1, Ordering::SeqCst);
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let me = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", shared.name))
            .stack_size(crate::sandbox::LUA_THREAD_STACK)
            .spawn(move || me.work());
        match spawned {
            Ok(h) => {
                if let Ok(mut hs) = shared.handles.lock() {
                    hs.push(h);
                }
                Ok(())
            }
            Err(e) => {
                shared.threads.fetch_sub(1, Ordering::SeqCst);
                shared.idle.fetch_sub(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Runs `job` on a pool thread; its continuation comes back through
    /// [`try_completion`](Self::try_completion).
    pub fn spawn<F, C>(&self, job: F)
    where
        F: FnOnce() -> C + Send + 'static,
        C: FnOnce(&mut S) + Send + 'static,
    {
        let sh = &self.shared;
        let pending = sh.pending.fetch_add(1, Ordering::SeqCst) + 1;
        let (queued, waiting) = match sh.jobs.lock() {
            Ok(mut jobs) if !jobs.closed => {
                jobs.queue.push_back(Box::new(move || Box::new(job()) as Completion<S>));
                (true, jobs.waiting > 0)
            }
            _ => (false, false),
        };
        if !queued {
            sh.pending.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        if waiting {
            sh.job_ready.notify_one();
        }
        self.outstanding.set(self.outstanding.get() + 1);
        if pending > sh.idle.load(Ordering::SeqCst) && sh.threads.load(Ordering::SeqCst) < sh.max {
            if let Err(e) = Self::add_thread(sh) {
                tracing::warn!("cannot start another {} thread: {e}", sh.name);
            }
        }
    }

    /// The next finished job's continuation, if any. Asked several times a
    /// turn of the loop, mostly with nothing outstanding: inlined, so that
    /// costs a load and a compare.
    #[inline(always)]
    pub fn try_completion(&self) -> Option<Completion<S>> {
        if self.outstanding.get() == 0 {
            return None;
        }
        self.take_completion()
    }

    /// [`try_completion`](Self::try_completion) with jobs outstanding.
    #[inline(never)]
    fn take_completion(&self) -> Option<Completion<S>> {
        let c = self.done.try_recv().ok()?;
        self.outstanding.set(self.outstanding.get() - 1);
        Some(c)
    }

    /// Threads running now.
    #[cfg(test)]
    pub fn threads(&self) -> usize {
        self.shared.threads.load(Ordering::SeqCst)
    }

    /// Stops accepting jobs, lets queued ones finish and joins the threads.
    pub fn shutdown(&mut self) {
        self.shared.close();
        let handles = self.shared.handles.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
        for t in handles {
            let _ = t.join();
        }
    }
}

impl<S> Shared<S> {
    /// Accepts no more jobs; the threads leave once the queue is empty.
    fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.closed = true;
        }
        self.job_ready.notify_all();
    }

    /// The next job, waiting for one: [`Next::Closed`] once the pool is
    /// closed and drained, [`Next::Idle`] after [`IDLE_EXIT`] without work
    /// while more than `min` threads run (this one is counted out then).
    fn next_job(&self) -> Next<S> {
        let Ok(mut jobs) = self.jobs.lock() else { return Next::Closed };
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                return Next::Job(job);
            }
            if jobs.closed {
                return Next::Closed;
            }
            jobs.waiting += 1;
            let Ok((guard, waited)) = self.job_ready.wait_timeout(jobs, IDLE_EXIT) else { return Next::Closed };
            jobs = guard;
            jobs.waiting -= 1;
            if waited.timed_out() && jobs.queue.is_empty() {
                let n = self.threads.load(Ordering::SeqCst);
                if n > self.min && self.threads.compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                    return Next::Idle;
                }
            }
        }
    }

    fn work(&self) {
        loop {
            let job = match self.next_job() {
                Next::Job(job) => job,
                Next::Closed => break,
                Next::Idle => return,
            };
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.idle.fetch_sub(1, Ordering::SeqCst);
            let completion = job();
            let sent = self.done_tx.lock().map(|tx| tx.send(completion).is_ok()).unwrap_or(false);
            self.idle.fetch_add(1, Ordering::SeqCst);
            if !sent {
                break;
            }
            (self.wake)();
        }
        self.threads.fetch_sub(1, Ordering::SeqCst);
        self.idle.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S> Drop for Pool<S> {
    fn drop(&mut self) {
        self.shared.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn jobs_run_elsewhere_and_complete_here() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&wakes);
        let mut pool: Pool<Vec<usize>> = Pool::new(
            "test",
            2,
            2,
            Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let here = std::thread::current().id();
        for i in 0..10 {
            pool.spawn(move || {
                assert_ne!(std::thread::current().id(), here);
                move |s: &mut Vec<usize>| s.push(i)
            });
        }
        let mut state = Vec::new();
        let start = std::time::Instant::now();
        while state.len() < 10 && start.elapsed().as_secs() < 5 {
            while let Some(c) = pool.try_completion() {
                c(&mut state);
            }
        }
        state.sort();
        assert_eq!(state, (0..10).collect::<Vec<_>>());
        assert_eq!(wakes.load(Ordering::SeqCst), 10);
        // Every continuation taken: the pool no longer asks its channel.
        assert_eq!(pool.outstanding.get(), 0);
        assert!(pool.try_completion().is_none());
        pool.shutdown();
    }
}

#[cfg(test)]
mod growth_tests {
    use super::*;

    #[test]
    fn grows_while_busy_up_to_max() {
        let mut pool: Pool<usize> = Pool::new("grow", 1, 8, Arc::new(|| {})).unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(9));
        for _ in 0..8 {
            let b = Arc::clone(&barrier);
            pool.spawn(move || {
                b.wait();
                |n: &mut usize| *n += 1
            });
        }
        // All eight jobs block on the barrier at once: only possible with eight threads.
        barrier.wait();
        assert_eq!(pool.threads(), 8);
        let mut n = 0;
        let start = std::time::Instant::now();
        while n < 8 && start.elapsed().as_secs() < 5 {
            while let Some(c) = pool.try_completion() {
                c(&mut n);
            }
        }
        assert_eq!(n, 8);
        pool.shutdown();
    }
}
