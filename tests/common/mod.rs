//! Shared by the integration tests that train for real: one small, repeatable training config.

use recserve::config::Config;

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
