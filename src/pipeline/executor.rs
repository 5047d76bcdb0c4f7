//! The pipeline's own threads: a fixed pool, sized to the cores, that is the one hop from the
//! async runtime to a request's CPU work.
//!
//! Why not `spawn_blocking`: its pool grows a thread per concurrent request, so at 16 connections
//! on 2 cores a dozen pipeline threads preempt each other and every hand-off wakes a sleeping
//! thread. A pool no larger than the machine keeps its threads busy under load (a finished thread
//! takes the next queued job without sleeping), and idle threads block on the queue instead of
//! spinning. A job whose caller stopped waiting (its budget ran out while it was queued) is
//! dropped unrun: under overload the queue drains at once instead of doing work nobody reads.
//! A job that panics is caught: its caller sees the sender dropped, and the thread lives.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of named threads draining one queue. Dropping the pool lets the threads finish
/// the queued jobs and exit.
pub struct PipelinePool {
    tx: crossbeam_channel::Sender<Job>,
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
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("recserve-pipeline-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // The job's own result channel reports the failure to its caller.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self {
            tx,
            threads,
            on_abandoned: Arc::new(on_abandoned),
        })
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
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                drop(f);
                on_abandoned();
                return;
            }
            let _ = tx.send(f());
        });
        // The threads hold the receiving side for as long as the pool lives, so this cannot fail
        // while `self` exists; if it did, the dropped job drops `tx` and the caller sees an error.
        let _ = self.tx.send(job);
        rx
    }

    /// Jobs queued and not yet started.
    pub fn queued(&self) -> usize {
        self.tx.len()
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
    fn zero_means_one_per_core() {
        let pool = PipelinePool::new(0, || {}).unwrap();
        assert_eq!(
            pool.threads(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
}
