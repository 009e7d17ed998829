//! The blocking pool: a few threads for work that may block (store calls,
//! compiles), in the style of libuv's threadpool.
//!
//! A job runs on a pool thread and returns a continuation; the continuation
//! is sent back through a channel and the reactor is woken with its
//! `mio::Waker`, then runs the continuation on the reactor thread. The
//! reactor must drain [`Pool::completions`] until it is empty after every
//! wake-up.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A continuation run on the reactor thread with its state.
pub type Completion<S> = Box<dyn FnOnce(&mut S) + Send>;
type Job<S> = Box<dyn FnOnce() -> Completion<S> + Send>;

/// A fixed set of worker threads.
pub struct Pool<S> {
    jobs: Option<Sender<Job<S>>>,
    done: Receiver<Completion<S>>,
    threads: Vec<JoinHandle<()>>,
}

impl<S: 'static> Pool<S> {
    /// Starts `threads` workers; `wake` is called after each completion is sent.
    pub fn new(threads: usize, wake: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Self> {
        let (job_tx, job_rx) = mpsc::channel::<Job<S>>();
        let (done_tx, done_rx) = mpsc::channel::<Completion<S>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let wake = Arc::clone(&wake);
            handles.push(std::thread::Builder::new().name(format!("sl-pool-{i}")).spawn(move || loop {
                let job = {
                    let Ok(rx) = job_rx.lock() else { return };
                    match rx.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                };
                let completion = job();
                if done_tx.send(completion).is_err() {
                    return;
                }
                wake();
            })?);
        }
        Ok(Self { jobs: Some(job_tx), done: done_rx, threads: handles })
    }

    /// Runs `job` on a pool thread; its continuation comes back through
    /// [`completions`](Self::completions).
    pub fn spawn<F, C>(&self, job: F)
    where
        F: FnOnce() -> C + Send + 'static,
        C: FnOnce(&mut S) + Send + 'static,
    {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Box::new(move || Box::new(job()) as Completion<S>));
        }
    }

    /// The next finished job's continuation, if any.
    pub fn try_completion(&self) -> Option<Completion<S>> {
        self.done.try_recv().ok()
    }

    /// Stops accepting jobs, lets queued ones finish and joins the threads.
    pub fn shutdown(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl<S> Drop for Pool<S> {
    fn drop(&mut self) {
        self.jobs = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jobs_run_elsewhere_and_complete_here() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&wakes);
        let mut pool: Pool<Vec<usize>> = Pool::new(
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
        pool.shutdown();
    }
}
