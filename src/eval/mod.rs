//! Offline evaluation: splits, metrics that match the common library definitions, the ablation
//! runner over the real in-process pipeline, and the Markdown/JSON/SVG report.

pub mod ablation;

pub mod charts;
pub mod cli;
pub mod coldstart;
pub mod diversity;
pub mod metrics;
pub mod report;
pub mod split;
/// The paired bootstrap lives with the list-quality measures (training's gate uses it too).
pub use crate::ranking::bootstrap;
