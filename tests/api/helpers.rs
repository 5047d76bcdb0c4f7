//! Test harness: the application on port 0 with the demo bundle, a temp event-log directory and
//! an admin token; plus an in-process router for `oneshot` tests.

use recserve::config::Config;
use recserve::server::Application;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN: &str = "test-admin-token";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn demo_bundle() -> PathBuf {
    root().join("models/demo")
}

/// The shipped config with test overrides.
pub fn test_config(events_dir: &std::path::Path) -> Config {
    let mut cfg = Config::load_with_env(None, Vec::new()).expect("default config");
    cfg.server.addr = "127.0.0.1:0".into();
    cfg.server.bundle = demo_bundle();
    cfg.server.admin_token = TOKEN.into();
    cfg.server.warmup_requests = 2;
    cfg.variants_file = root().join("config/variants.toml");
    cfg.feedback.log.dir = events_dir.to_path_buf();
    // Generous budgets: tests run in parallel on 2 cores, and budget behaviour is tested explicitly.
    cfg.serving.total_budget_ms = 5_000;
    cfg.serving.ranker_budget_ms = 5_000;
    cfg.serving.source_budget_ms = recserve::pipeline::SourceBudgets {
        cf: 2_000,
        content: 2_000,
        session: 2_000,
        popular: 2_000,
        item2item: 2_000,
        segment: 2_000,
    };
    cfg
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: Arc<recserve::server::state::AppState>,
    pub events_dir: tempfile::TempDir,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let events_dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = test_config(events_dir.path());
        tweak(&mut cfg);
        let app = Application::build(cfg.service()).await.expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let t = TestApp {
            base,
            client,
            state,
            events_dir,
            stop: Some(tx),
            handle,
        };
        t.wait_ready().await;
        t
    }

    pub async fn wait_ready(&self) {
        for _ in 0..600 {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server never became ready");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let body = r.json().await.expect("json body");
        (status, body)
    }

    /// A user id from the demo bundle with at least `min_history` training interactions.
    pub fn user_with_history(&self, min_history: usize) -> String {
        let e = self.state.current().expect("engine");
        let m = &e.model;
        (0..m.n_users() as u32)
            .find(|&u| m.history(u).0.len() >= min_history)
            .map(|u| m.user_ids[u as usize].clone())
            .expect("a user with history")
    }

    pub fn history_ids(&self, user: &str) -> Vec<String> {
        let e = self.state.current().expect("engine");
        let m = &e.model;
        let u = m.user_index[user];
        m.history(u)
            .0
            .iter()
            .map(|&i| m.item_ids[i as usize].clone())
            .collect()
    }

    /// Stops the server (graceful) and hands back its event-log directory for inspection.
    pub async fn shutdown(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.handle).await;
        self.events_dir
    }
}

/// Error code of a JSON error body.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
