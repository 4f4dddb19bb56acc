//! A connection on a thread of its own, and the bounded pool of them that readers share.
//!
//! The `postgres` client is blocking: each call runs its own small tokio runtime to
//! completion, which panics on a thread already inside a runtime. The store's callers
//! include async tasks (API handlers, tests on a current-thread runtime), so no caller's
//! thread ever touches a client: every connection lives on a store-owned OS thread and each
//! call is sent there as a closure, the caller waiting for the answer on a std channel,
//! exactly as it would wait on a SQLite call.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;

use crate::store::StoreError;

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A thread owning `S` (a connection, or the writer's state around one) and running the
/// closures sent to it, one at a time, in order.
pub(super) struct Worker<S> {
    jobs: Option<mpsc::Sender<Job<S>>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: 'static> Worker<S> {
    /// Starts the thread and builds its state there with `open` (connecting must itself
    /// happen off any runtime); waits until it is built.
    ///
    /// # Errors
    /// The thread cannot start, or `open` fails.
    pub(super) fn start(
        name: &str,
        open: impl FnOnce() -> Result<S, StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job<S>>();
        let (ready, opened) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut state = match open() {
                    Ok(state) => {
                        let _ = ready.send(Ok(()));
                        state
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = queue.recv() {
                    job(&mut state);
                }
            })
            .map_err(StoreError::Thread)?;
        let worker = Self {
            jobs: Some(jobs),
            thread: Some(thread),
        };
        opened.recv().map_err(|_| StoreError::Closed)??;
        Ok(worker)
    }

    /// Runs `f` on the worker's thread and returns its answer.
    ///
    /// # Errors
    /// What `f` returns, or [`StoreError::Closed`] when the thread is gone (a closure
    /// panicked there).
    pub(super) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job<S> = Box::new(move |state| {
            let _ = answer.send(f(state));
        });
        self.jobs
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        answered.recv().map_err(|_| StoreError::Closed)?
    }
}

impl<S> Drop for Worker<S> {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; joining waits for the connection to
        // close, so a dropped store holds no session on the server.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Connection threads, opened on demand and kept for reuse, at most `max` at once; callers
/// past that wait for one to come back (as the SQLite readers do).
pub(super) struct Pool<S> {
    idle: Mutex<Idle<S>>,
    returned: Condvar,
    max: usize,
}

struct Idle<S> {
    workers: Vec<Worker<S>>,
    open: usize,
}

impl<S: 'static> Pool<S> {
    pub(super) fn new(max: usize) -> Self {
        Self {
            idle: Mutex::new(Idle {
                workers: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            max,
        }
    }

    /// An idle worker, or the right to start one; waits while all are in use.
    fn checkout(&self) -> Result<Option<Worker<S>>, StoreError> {
        let mut idle = self.idle.lock().map_err(|_| StoreError::Closed)?;
        loop {
            if let Some(worker) = idle.workers.pop() {
                return Ok(Some(worker));
            }
            if idle.open < self.max {
                idle.open += 1;
                return Ok(None);
            }
            idle = self.returned.wait(idle).map_err(|_| StoreError::Closed)?;
        }
    }

    /// Gives back a worker, or only its place when it is broken.
    fn give_back(&self, worker: Option<Worker<S>>) {
        if let Ok(mut idle) = self.idle.lock() {
            match worker {
                Some(worker) => idle.workers.push(worker),
                None => idle.open -= 1,
            }
        }
        self.returned.notify_one();
    }

    /// Runs `f` on a pooled worker, starting one with `open` if none is idle. A worker whose
    /// call ended with a lost connection is dropped rather than reused.
    ///
    /// # Errors
    /// Starting a worker fails, or what `f` returns.
    pub(super) fn run<T: Send + 'static>(
        &self,
        open: impl FnOnce() -> Result<Worker<S>, StoreError>,
        f: impl FnOnce(&mut S) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let worker = match self.checkout()? {
            Some(worker) => worker,
            None => match open() {
                Ok(worker) => worker,
                Err(e) => {
                    self.give_back(None);
                    return Err(e);
                }
            },
        };
        let result = worker.run(f);
        let broken = matches!(&result, Err(StoreError::Closed))
            || matches!(&result, Err(StoreError::Postgres(e)) if e.is_closed());
        self.give_back((!broken).then_some(worker));
        result
    }

    /// Connections open now (idle or in use).
    pub(super) fn open_connections(&self) -> usize {
        self.idle.lock().map(|idle| idle.open).unwrap_or(0)
    }
}
