//! The pipeline's own threads: a fixed pool, sized to the cores, that is the one hop from the
//! async runtime to a request's CPU work.
//!
//! Why not `spawn_blocking`: its pool grows a thread per concurrent request, so at 16 connections
//! on 2 cores a dozen pipeline threads preempt each other and every hand-off wakes a sleeping
//! thread. A pool no larger than the machine keeps its threads busy under load (a finished thread
//! takes the next queued job without sleeping), and idle threads park instead of spinning. The
//! idle threads wait on a stack, so light load is served by the one thread that worked last.
//! A job whose caller stopped waiting (its budget ran out while it was queued) is dropped unrun:
//! under overload the queue drains at once instead of doing work nobody reads.
//! A job that panics is caught: its caller sees the sender dropped, and the thread lives.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;
use tokio::sync::oneshot;

/// A queued job; it gets its thread's [`Worker`] so it can go idle before it wakes its caller.
type Job = Box<dyn FnOnce(&Worker<'_>) + Send + 'static>;

/// The thread running a job.
struct Worker<'a> {
    shared: &'a Shared,
    me: &'a Thread,
}

impl Worker<'_> {
    /// Puts this thread on the idle stack when no job is waiting, before the job hands its
    /// result over. Waking the caller can preempt this thread until the caller blocks again;
    /// the caller's next request then finds this thread (warm) on the stack instead of waking
    /// another one.
    fn idle_soon(&self) {
        let mut q = self.shared.lock();
        if q.jobs.is_empty() && !q.closed {
            q.go_idle(self.me);
        }
    }
}

/// The queue and who is waiting on it. Idle threads wait on a stack: a new job wakes the thread
/// that went idle last, so under light load one thread serves every request with warm caches
/// while the others stay asleep (a FIFO wake-up would hand alternate requests to alternate
/// threads, each waking on cold caches, maybe on the other core).
struct Queue {
    jobs: VecDeque<Job>,
    /// The parked threads (and any about to park), the most recent last. Every parked thread is
    /// on it, so closing the pool can wake them all.
    idle: Vec<Thread>,
    closed: bool,
}

impl Queue {
    /// Puts `me` on the idle stack unless it is there already (after a spurious wake-up, or an
    /// early [`Worker::idle_soon`]).
    fn go_idle(&mut self, me: &Thread) {
        if !self.idle.iter().any(|t| t.id() == me.id()) {
            self.idle.push(me.clone());
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A job never runs under the lock, so a poisoned lock still holds a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The calling thread's loop: the next job, or park until one is pushed to it.
    fn work(&self) {
        let me = std::thread::current();
        loop {
            let job = {
                let mut q = self.lock();
                match q.jobs.pop_front() {
                    Some(job) => job,
                    None if q.closed => return,
                    None => {
                        q.go_idle(&me);
                        drop(q);
                        std::thread::park();
                        continue;
                    }
                }
            };
            // The job's own result channel reports the failure to its caller.
            let worker = Worker {
                shared: self,
                me: &me,
            };
            let _ = catch_unwind(AssertUnwindSafe(|| job(&worker)));
        }
    }
}

/// A fixed set of named threads draining one queue. Dropping the pool lets the threads finish
/// the queued jobs and exit.
pub struct PipelinePool {
    shared: Arc<Shared>,
    threads: usize,
    on_abandoned: Arc<dyn Fn() + Send + Sync>,
}

impl PipelinePool {
    /// `threads` = 0 means one per available core. `on_abandoned` runs (on a pool thread) for
    /// each job dropped unrun because its caller had gone (a metric, in the server).
    pub fn new(
        threads: usize,
        on_abandoned: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle: Vec::with_capacity(threads),
                closed: false,
            }),
        });
        let pool = Self {
            shared,
            threads,
            on_abandoned: Arc::new(on_abandoned),
        };
        for i in 0..threads {
            let shared = Arc::clone(&pool.shared);
            // On an error the pool is dropped, which stops the threads already started.
            std::thread::Builder::new()
                .name(format!("recserve-pipeline-{i}"))
                .spawn(move || shared.work())?;
        }
        Ok(pool)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `f`; the receiver yields its result, or an error if `f` panicked. If the receiver
    /// is dropped before a thread picks the job up, `f` is dropped without running (whatever it
    /// captured is released on the pool thread).
    pub fn run<T, F>(&self, f: F) -> oneshot::Receiver<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let on_abandoned = Arc::clone(&self.on_abandoned);
        let job: Job = Box::new(move |worker: &Worker<'_>| {
            if tx.is_closed() {
                drop(f);
                on_abandoned();
                return;
            }
            let out = f();
            worker.idle_soon();
            let _ = tx.send(out);
        });
        let wake = {
            let mut q = self.shared.lock();
            q.jobs.push_back(job);
            q.idle.pop()
        };
        if let Some(t) = wake {
            t.unpark();
        }
        rx
    }

    /// Jobs queued and not yet started.
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.shared.lock().idle.len()
    }
}

impl Drop for PipelinePool {
    fn drop(&mut self) {
        // A thread not on the idle stack is running and sees `closed` before it parks again.
        let idle = {
            let mut q = self.shared.lock();
            q.closed = true;
            std::mem::take(&mut q.idle)
        };
        for t in idle {
            t.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn runs_jobs_and_survives_a_panic() {
        let pool = PipelinePool::new(2, || {}).unwrap();
        assert_eq!(pool.threads(), 2);
        let rt = rt();
        let bad = pool.run(|| -> u32 { panic!("boom") });
        assert!(
            rt.block_on(bad).is_err(),
            "a panicking job reports an error"
        );
        // Both threads still serve jobs after the panic.
        let rxs: Vec<_> = (0..64u32).map(|i| pool.run(move || i * 2)).collect();
        let got: Vec<u32> = rxs.into_iter().map(|r| rt.block_on(r).unwrap()).collect();
        assert_eq!(got, (0..64u32).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_whose_caller_left_is_dropped_unrun() {
        let abandoned = Arc::new(AtomicUsize::new(0));
        let a2 = Arc::clone(&abandoned);
        let pool = PipelinePool::new(1, move || {
            a2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let rt = rt();
        // Occupy the only thread until the second job's caller has gone.
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let first = pool.run(move || started_tx.send(()).is_ok() && go_rx.recv().is_ok());
        started_rx.recv().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (ran2, ran3) = (Arc::clone(&ran), Arc::clone(&ran));
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        struct OnDrop(std::sync::mpsc::Sender<()>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let guard = OnDrop(dropped_tx);
        let second = pool.run(move || {
            let _g = guard;
            ran2.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(pool.queued(), 1);
        drop(second);
        go_tx.send(()).unwrap();
        assert!(rt.block_on(first).unwrap());
        dropped_rx.recv().unwrap(); // what the job captured is released...
        let third = pool.run(move || ran3.fetch_add(1, Ordering::SeqCst));
        rt.block_on(third).unwrap();
        // ...but its work never ran, and the drop was counted.
        assert_eq!(ran.load(Ordering::SeqCst), 1, "only the waited-for job ran");
        assert_eq!(abandoned.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn light_load_is_served_by_the_thread_that_worked_last() {
        let pool = PipelinePool::new(3, || {}).unwrap();
        let rt = rt();
        let wait_all_idle = |pool: &PipelinePool| {
            while pool.idle() < 3 {
                std::thread::yield_now();
            }
        };
        let mut names = Vec::new();
        wait_all_idle(&pool);
        for _ in 0..20 {
            // No waiting between jobs: a thread goes idle before it hands its result over, so
            // the next job finds it on top of the stack even if it has not parked yet.
            let name = pool.run(|| std::thread::current().name().map(str::to_owned));
            names.push(rt.block_on(name).unwrap());
        }
        // A FIFO wake-up would rotate through the three threads.
        assert!(names.windows(2).all(|w| w[0] == w[1]), "{names:?}");
        // Under load every thread works: three jobs that wait for each other need all three.
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let busy: Vec<_> = (0..3)
            .map(|_| {
                let b = Arc::clone(&barrier);
                pool.run(move || {
                    b.wait();
                    std::thread::current().name().map(str::to_owned)
                })
            })
            .collect();
        let mut seen: Vec<_> = busy.into_iter().map(|r| rt.block_on(r).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            3,
            "three blocked jobs need three threads: {seen:?}"
        );
    }

    #[test]
    fn zero_means_one_per_core() {
        let pool = PipelinePool::new(0, || {}).unwrap();
        assert_eq!(
            pool.threads(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
}
