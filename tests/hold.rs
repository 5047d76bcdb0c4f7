//! `recommend_within`'s `hold` (the server's admission permit) is moved into the pipeline task
//! and released there, when the CPU work ends, even when the answer already went out as a budget
//! fallback: the admission limit counts work, not handlers; and a job still queued when its
//! budget runs out is dropped unrun. Cost: < 1 s.

use recserve::pipeline::{Degraded, PipelinePool, Query, Treatment, recommend_within};
use std::sync::mpsc;
use std::thread::ThreadId;
use std::time::Duration;

mod common;

struct Hold(mpsc::Sender<ThreadId>);

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.0.send(std::thread::current().id());
    }
}

#[test]
fn the_hold_is_released_by_the_pipeline_task_not_by_the_answer() {
    let engine = common::demo_engine(|_| {});
    let q = Query {
        user_id: Some(engine.model.user_ids[0].clone()),
        n: 10,
        exclude_seen: true,
        ..Default::default()
    };
    // A current-thread runtime: the caller's thread is this one; blocking tasks run elsewhere.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = PipelinePool::new(2, || {}).unwrap();
    let (tx, rx) = mpsc::channel();
    // A zero budget: the answer is a fallback, either from the timer (the task runs on) or from
    // the pipeline itself, which starts no source once the deadline has passed.
    let rec = rt.block_on(recommend_within(
        &engine,
        &pool,
        q.clone(),
        Treatment::default(),
        Duration::ZERO,
        Hold(tx),
    ));
    let skipped_every_source = rec
        .degraded
        .iter()
        .filter(|d| matches!(d, Degraded::SourceOverBudget(_)))
        .count()
        == recserve::retrieval::N_SOURCES;
    assert!(
        rec.degraded.contains(&Degraded::RequestOverBudget) || skipped_every_source,
        "{:?}",
        rec.degraded
    );
    // Liveness bound only (the task finishes in milliseconds): the hold is released once...
    let released_on = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the hold is released when the work ends");
    // ...on the pipeline's thread, not the caller's.
    assert_ne!(released_on, std::thread::current().id());
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "and only once"
    );

    // With room in the budget the answer is the pipeline's, and the hold goes the same way.
    let (tx, rx) = mpsc::channel();
    let rec = rt.block_on(recommend_within(
        &engine,
        &pool,
        q,
        Treatment::default(),
        Duration::from_secs(60),
        Hold(tx),
    ));
    assert!(rec.degraded.is_empty(), "{:?}", rec.degraded);
    assert_ne!(rx.recv().unwrap(), std::thread::current().id());
}

/// Under overload the queue drains at once: a request whose budget runs out while its job waits
/// for a pipeline thread is answered from popularity, and its job is dropped unrun (counted),
/// releasing the hold on the pipeline thread. Issue 10's "abandoned work stops".
#[test]
fn a_job_queued_past_its_budget_never_runs() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let engine = common::demo_engine(|_| {});
    let abandoned = Arc::new(AtomicUsize::new(0));
    let a2 = Arc::clone(&abandoned);
    let pool = PipelinePool::new(1, move || {
        a2.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The only pipeline thread is busy until we say so.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let busy = pool.run(move || go_rx.recv().is_ok());
    let (tx, rx) = mpsc::channel();
    let q = Query {
        user_id: Some(engine.model.user_ids[0].clone()),
        n: 10,
        ..Default::default()
    };
    let rec = rt.block_on(recommend_within(
        &engine,
        &pool,
        q,
        Treatment::default(),
        Duration::from_millis(20),
        Hold(tx),
    ));
    assert_eq!(rec.degraded, vec![Degraded::RequestOverBudget]);
    assert!(!rec.items.is_empty(), "answered from popularity");
    go_tx.send(()).unwrap();
    assert!(rt.block_on(busy).unwrap());
    let released_on = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the hold is released");
    assert_ne!(released_on, std::thread::current().id());
    // A later job runs normally, so the queue has drained past the abandoned one.
    rt.block_on(pool.run(|| ())).unwrap();
    assert_eq!(
        abandoned.load(Ordering::SeqCst),
        1,
        "the pipeline job never ran"
    );
}
