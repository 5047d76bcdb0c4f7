//! Packaging, end to end through the real binary: it runs from any directory, its generated
//! OpenAPI document survives schemathesis, and its demo page works in headless Chromium. One test
//! binary (one link) for the three.

mod anywhere;
mod browser;
mod contract;
mod helpers;
