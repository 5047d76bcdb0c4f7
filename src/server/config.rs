//! The HTTP edge's own config section, `[server]`, and [`ServiceConfig`]: the sections of the
//! layers the service runs (pipeline, index, feedback, bandit), handed in by the aggregator.

use crate::bandit::BanditConfig;
use crate::feedback::FeedbackConfig;
use crate::pipeline::ServingConfig;
use crate::retrieval::index::IndexConfig;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: String,
    /// The bundle directory; empty = the search order of `config::locate` (resolved at start).
    pub bundle: PathBuf,
    /// Where the embedded demo bundle is unpacked when no bundle is found; empty = the user's
    /// cache directory.
    pub demo_cache_dir: PathBuf,
    /// Bearer token for `/admin/*`; empty disables the admin routes (they answer 401).
    pub admin_token: String,
    /// Business requests in flight at once (the CPU work's limit); 0 = four per pipeline thread.
    /// Past it, requests wait in the admission queue.
    pub max_concurrency: usize,
    /// Requests that may wait for an in-flight slot, first come first served; a request finding
    /// the queue full is shed at once with 503 + Retry-After (0 = no queue).
    pub admission_queue: usize,
    /// The longest a request waits in the admission queue before it is shed with 503 +
    /// Retry-After. The wait counts against its request budget.
    pub admission_queue_timeout_ms: u64,
    /// A shed request's 503 also closes its connection (`Connection: close`), as Envoy's
    /// disable-keepalive overload action does: a client that re-sends at once must reconnect
    /// first, and behind a load balancer it may reconnect to a less loaded replica. Off by
    /// default: accepting the reconnections costs goodput under open-loop overload.
    pub close_on_shed: bool,
    /// Longest accepted query string, bytes (longer → 414).
    pub max_query_bytes: usize,
    /// Largest accepted request body, bytes (larger → 413).
    pub max_body_bytes: usize,
    /// Open connections at most; more wait in the accept backlog until one closes.
    pub max_connections: usize,
    /// A connection whose request head (line and headers) is not complete within this is closed.
    pub header_read_timeout_ms: u64,
    /// A request body not fully received within this gets 408.
    pub body_read_timeout_ms: u64,
    /// Threads of the pipeline pool (the one hop from the async runtime to a request's CPU
    /// work); 0 = one per available core.
    pub pipeline_threads: usize,
    /// Threads of the async runtime (HTTP, timers, the event log's futures); 0 = half the cores,
    /// at least one. The CPU work runs on the pipeline threads, so few async threads suffice, and
    /// an idle async thread woken to steal work is a context switch per request.
    pub async_threads: usize,
    /// Grace period for in-flight requests on SIGTERM / ctrl-c.
    pub shutdown_timeout_ms: u64,
    /// Internal requests run after load, before `/readyz` says ready.
    pub warmup_requests: usize,
    /// `json` (production) or `pretty`.
    pub log_format: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    #[error("server.{0} must be > 0")]
    Zero(&'static str),
    #[error("server.addr {0:?} is not HOST:PORT")]
    Addr(String),
}

impl ServerConfig {
    /// [`Self::async_threads`] resolved: 0 becomes half the available cores, at least one.
    pub fn async_worker_threads(&self) -> usize {
        match self.async_threads {
            0 => (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1),
            n => n,
        }
    }

    /// [`Self::pipeline_threads`] resolved: 0 becomes one per available core.
    pub fn pipeline_workers(&self) -> usize {
        match self.pipeline_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// [`Self::max_concurrency`] resolved: 0 becomes four requests per pipeline thread (one
    /// running, the others in their async parts or next in the pool's queue), 8 on 2 cores.
    pub fn in_flight_limit(&self) -> usize {
        match self.max_concurrency {
            0 => 4 * self.pipeline_workers(),
            n => n,
        }
    }

    pub fn validate(&self) -> Result<(), ServerConfigError> {
        for (name, v) in [
            ("max_connections", self.max_connections as u64),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ] {
            if v == 0 {
                return Err(ServerConfigError::Zero(name));
            }
        }
        if self.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(ServerConfigError::Addr(self.addr.clone()));
        }
        Ok(())
    }
}

/// Everything the service reads at start and per request.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub server: ServerConfig,
    pub serving: ServingConfig,
    pub index: IndexConfig,
    pub feedback: FeedbackConfig,
    pub bandit: BanditConfig,
    /// Where the live state lives: embedded, or shared through Redis.
    pub state: crate::state::StateConfig,
    /// Path of the variants file (A/B treatments); empty = the embedded shipped file.
    pub variants_file: PathBuf,
}
