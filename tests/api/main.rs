//! HTTP-level tests against the real application on a random port (one test binary keeps link
//! time down). Each test spawns its own server with its own event-log directory.

#[path = "../common/mod.rs"]
mod common;
mod diversity;
mod durability;
mod errors;
mod explain;
mod feedback;
mod helpers;
mod ops;
mod recommend;
mod trust;
