//! Shared by the integration tests: the demo engine, and one small, repeatable real training run.
//! (Each test binary uses only some of these helpers.)
#![allow(dead_code)]

use recserve::bundle::Model;
use recserve::config::Config;
use recserve::data::dataset::Dataset;
use recserve::pipeline::Engine;
use recserve::train::ranker::RankerEval;
use recserve::train::{Holdout, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A port that was free a moment ago (for the real binary on a random port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The engine over the committed demo bundle with the shipped defaults, after `edit`.
pub fn demo_engine(edit: impl FnOnce(&mut Config)) -> Arc<Engine> {
    let mut cfg = Config::load_with_env(None, Vec::new()).expect("default config");
    edit(&mut cfg);
    let bundle = root().join("models/demo");
    let model = Model::read(&bundle).expect("demo bundle");
    Arc::new(Engine::new(model, cfg.serving.clone(), &cfg.index, Some(&bundle)).expect("engine"))
}

/// The shipped defaults, scaled down for test data, with single-threaded factorization (Hogwild
/// with several threads is not repeatable, and these tests must be).
pub fn small_train_config() -> Config {
    let mut cfg = Config::load_with_env(None, Vec::new()).expect("default config");
    cfg.train.factorization.components = 32;
    cfg.train.factorization.max_epochs = 15;
    cfg.train.factorization.threads = 1;
    cfg.train.content_dim = 32;
    cfg.train.ranker.max_users = 1200;
    cfg.train.ranker.num_iterations = 150;
    cfg
}

/// Trains on `train` with `train`'s real code (nothing written) and returns the serving engine
/// and the ranker's validation.
pub fn train_engine(
    train: &Dataset,
    dir: &Path,
    holdout: Holdout,
    seed: u64,
) -> (Arc<Engine>, RankerEval) {
    let cfg = small_train_config();
    let opts = TrainOptions {
        data: dir.to_path_buf(),
        out: dir.join("bundle"),
        holdout: Some(holdout),
        seed: Some(seed),
        skip_bad_lines: false,
        quiet: true,
    };
    let trained = recserve::train::run::train_model(
        train,
        &cfg.train,
        &cfg.serving,
        &cfg.index,
        &opts,
        &mut Vec::new(),
    )
    .expect("training");
    let engine = Engine::new(trained.model, cfg.serving.clone(), &cfg.index, None).expect("engine");
    (Arc::new(engine), trained.ranker_eval)
}
