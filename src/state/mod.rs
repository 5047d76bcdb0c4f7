//! Where the live state that replicas must share lives: `[state] backend = "embedded"` keeps it
//! in the process (the default: one command runs everything), `"redis"` shares the online
//! history, the bandit's statistics, the feedback stream and model rollouts through Redis
//! ([`redis`]). The bundle stays read-only and per replica. This layer sits above `feedback`
//! (it plugs into its hooks) and below the HTTP edge; it never owns the 202 guarantee, which
//! stays the local group-committed log's.

pub mod config;
pub mod fleet;
pub mod redis;
pub mod replica_id;

pub use config::{Backend, RedisConfig, StateConfig};
pub use fleet::Fleet;
