//! Shared by the benches: the demo bundle's engine with every budget out of the way (benches
//! measure the work, not the budget).

use recserve::bundle::Model;
use recserve::config::Config;
use recserve::pipeline::{Engine, Parallelism};
use std::path::PathBuf;
use std::sync::Arc;

/// 64 users spread over the demo bundle (every 7,919th), the request mix of the benches.
pub fn bench_users(m: &Model) -> Vec<String> {
    (0..64)
        .map(|k| m.user_ids[(k * 7919) % m.n_users()].clone())
        .collect()
}

/// The demo bundle's engine; `RECSERVE_…` overrides of `serving` and `server.bundle` apply, so
/// another setting can be benched side by side (`RECSERVE_SERVER__BUNDLE=<dir>` benches that
/// bundle, `RECSERVE_SERVING__RERANK_DEPTH=100` another cut). Budgets and `parallel_sources`
/// are then set here.
pub fn demo_engine(parallel: Parallelism) -> Arc<Engine> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cfg = Config::load_with_env(
        None,
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    )
    .expect("config");
    cfg.serving.total_budget_ms = 10_000;
    cfg.serving.ranker_budget_ms = 10_000;
    cfg.serving.parallel_sources = parallel;
    let bundle = if cfg.server.bundle.as_os_str().is_empty() {
        root.join("models/demo")
    } else {
        cfg.server.bundle.clone()
    };
    let model = Model::read(&bundle).expect("demo bundle");
    Arc::new(Engine::new(model, cfg.serving.clone(), &cfg.index, Some(&bundle)).expect("engine"))
}
