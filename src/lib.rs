//! recserve: a two-stage recommendation service. Candidate sources (collaborative filtering,
//! content, session, popularity) feed a LightGBM lambdarank ranker, behind a fallback chain that
//! never answers empty; `train` builds the model bundle offline, `serve` answers over HTTP,
//! `evaluate` measures it, and a feedback loop teaches a contextual bandit the best blend.

pub mod bandit;
pub mod bundle;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod data;
pub mod deadline;
pub mod eval;
pub mod feedback;
pub mod pipeline;
pub mod ranking;
pub mod retrieval;
pub mod server;
pub mod splitmix;
pub mod state;
pub mod train;
