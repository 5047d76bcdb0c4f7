//! The request's tracing span follows the pipeline's work onto the pipeline thread and into the
//! rayon source tasks, so a warning logged there carries the request id. Checked with a
//! subscriber layer that records every thread a span named `request` is entered on.
//! Cost: one demo engine and one request (well under a second).

use recserve::pipeline::{Parallelism, PipelinePool, Query, Treatment, recommend_within};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

mod common;

/// Threads the `request` span was entered on, with their names.
static ENTERED: OnceLock<Mutex<HashSet<(ThreadId, String)>>> = OnceLock::new();

struct RecordEnters;

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S>
    for RecordEnters
{
    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        if ctx.span(id).is_some_and(|s| s.name() == "request") {
            let t = std::thread::current();
            let name = t.name().unwrap_or("").to_string();
            if let Some(m) = ENTERED.get() {
                m.lock().unwrap().insert((t.id(), name));
            }
        }
    }
}

#[test]
fn the_request_span_is_entered_on_the_blocking_thread_and_the_source_tasks() {
    ENTERED.get_or_init(Default::default);
    let subscriber = tracing_subscriber::registry().with(RecordEnters);
    tracing::subscriber::set_global_default(subscriber).expect("global subscriber");

    let engine = common::demo_engine(|c| c.serving.parallel_sources = Parallelism::Parallel);
    let user = engine.model.user_ids[0].clone();
    let q = Query {
        user_id: Some(user),
        recent: vec![engine.model.item_ids[0].clone()],
        n: 10,
        exclude_seen: true,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("async-worker")
        .enable_all()
        .build()
        .unwrap();
    let caller = std::thread::current().id();
    let pool = PipelinePool::new(1, || {}).unwrap();
    let rec = rt.block_on(async {
        use tracing::Instrument as _;
        let span = tracing::info_span!("request", request_id = "r-1");
        recommend_within(
            &engine,
            &pool,
            q,
            Treatment::default(),
            std::time::Duration::from_secs(30),
            (),
        )
        .instrument(span)
        .await
    });
    assert!(!rec.items.is_empty());
    let entered = ENTERED.get().unwrap().lock().unwrap().clone();
    // `block_on` polls on this thread; the pipeline runs on the pipeline pool (its threads are
    // named `recserve-pipeline-N`) and the sources on rayon's global pool (unnamed threads).
    assert!(
        entered
            .iter()
            .any(|(t, n)| n.starts_with("recserve-pipeline-") && *t != caller),
        "span not entered on the pipeline thread: {entered:?}"
    );
    assert!(
        entered.iter().any(|(t, n)| n.is_empty() && *t != caller),
        "span not entered in a rayon source task: {entered:?}"
    );
}
