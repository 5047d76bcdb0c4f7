//! Stage 1 fan-out: runs the candidate sources a treatment asks for, in parallel on the rayon
//! pool when configured (or resolved by `"auto"`), else one after another on the request's own
//! thread, each under its own budget inside the request's deadline, and reports every source it
//! had to drop; sequentially, sources after the deadline are not started. A source's search
//! looks at its own deadline (its budget within the request's) every few thousand items and
//! stops there with what it has: that partial list is used and reported as `<source>:cut`.
//! Offline ([`Deadline::NONE`]) runs every source to completion.

use super::{Deadline, Degraded, Engine, SourceCounts};
use crate::retrieval::{
    Catalog, Eligibility, Found, N_SOURCES, Source, SourceList, UserProfile, cf, content,
    item2item, popular, segment, session,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the fan-out produced: one list per source (empty when skipped or dropped), why any were
/// dropped, and how long each source and the whole stage took.
#[derive(Debug, Default)]
pub struct Retrieved {
    pub lists: [SourceList; N_SOURCES],
    pub degraded: Vec<Degraded>,
    pub source_times: [Option<Duration>; N_SOURCES],
    pub elapsed: Duration,
}

/// Runs one source over the catalogue; the searching ones stop at `deadline` with what they
/// found (popularity and segments are walks down precomputed lists, never cut).
pub fn run_source(
    catalog: &Catalog<'_>,
    s: Source,
    profile: &UserProfile,
    elig: &Eligibility,
    k: usize,
    deadline: Deadline,
) -> Found {
    let m = catalog.model;
    match s {
        Source::Cf => cf::candidates(catalog, profile, elig, k, deadline),
        Source::Content => content::candidates(catalog, profile, elig, k, deadline),
        Source::Session => session::candidates(catalog, profile, elig, k, deadline),
        Source::Popular => Found::complete(popular::candidates(m, profile, elig, k)),
        Source::Item2Item => item2item::candidates(m, profile, elig, k, deadline),
        Source::Segment => Found::complete(segment::candidates(m, profile, elig, k)),
    }
}

impl Engine {
    /// Stage 1: the sources with a positive count, under `deadline` (see the module docs).
    pub fn retrieve(
        self: &Arc<Self>,
        profile: &Arc<UserProfile>,
        elig: &Arc<Eligibility>,
        counts: &SourceCounts,
        deadline: Deadline,
    ) -> Retrieved {
        let mut out = Retrieved::default();
        let active: Vec<Source> = Source::ALL
            .into_iter()
            .filter(|&s| counts.get(s) > 0)
            .collect();
        let start = Instant::now();
        let budget_of = |s: Source| deadline.stage(start, self.cfg.source_budget(s));
        if self.parallel_sources && deadline.is_bounded() && active.len() > 1 {
            let (tx, rx) = std::sync::mpsc::channel::<(Source, Option<Found>, Duration)>();
            for &s in &active {
                let (engine, profile, elig, tx) = (
                    Arc::clone(self),
                    Arc::clone(profile),
                    Arc::clone(elig),
                    tx.clone(),
                );
                let k = counts.get(s);
                let stage = budget_of(s);
                let span = tracing::Span::current();
                rayon::spawn(move || {
                    let _entered = span.enter();
                    let t = Instant::now();
                    // A panic must not abort the process (rayon's default for `spawn`): it
                    // becomes a failed source, reported as `<source>:error`.
                    let list = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_source(&engine.catalog(), s, &profile, &elig, k, stage)
                    }))
                    .ok();
                    // The receiver may have given up on us (over budget): that is fine.
                    let _ = tx.send((s, list, t.elapsed()));
                });
            }
            drop(tx);
            let wait_until = active
                .iter()
                .filter_map(|&s| budget_of(s).instant())
                .max()
                .unwrap_or(start);
            let mut pending: Vec<Source> = active.clone();
            while !pending.is_empty() {
                let Some(wait) = wait_until.checked_duration_since(Instant::now()) else {
                    break;
                };
                match rx.recv_timeout(wait) {
                    Ok((s, list, took)) => {
                        pending.retain(|&p| p != s);
                        out.source_times[s as usize] = Some(took);
                        match list {
                            None => out.degraded.push(Degraded::SourceError(s)),
                            // Stopped at its deadline: what it found is on time by construction.
                            Some(found) if found.cut => {
                                out.degraded.push(Degraded::SourceCut(s));
                                out.lists[s as usize] = found.list;
                            }
                            Some(_) if !budget_of(s).met_by(Instant::now()) => {
                                out.degraded.push(Degraded::SourceOverBudget(s))
                            }
                            Some(found) => out.lists[s as usize] = found.list,
                        }
                    }
                    Err(_) => break,
                }
            }
            for s in pending {
                out.degraded.push(Degraded::SourceOverBudget(s));
            }
        } else {
            let catalog = self.catalog();
            for &s in &active {
                // The request's deadline bounds the work, not just the answer: once it has
                // passed, the remaining sources are not started.
                if deadline.expired() {
                    out.degraded.push(Degraded::SourceOverBudget(s));
                    continue;
                }
                let t = Instant::now();
                let stage = deadline.stage(t, self.cfg.source_budget(s));
                let found = run_source(&catalog, s, profile, elig, counts.get(s), stage);
                let took = t.elapsed();
                out.source_times[s as usize] = Some(took);
                if found.cut {
                    // It stopped at its deadline: use what it found, and say so.
                    out.degraded.push(Degraded::SourceCut(s));
                    out.lists[s as usize] = found.list;
                } else if deadline.is_bounded() && took > self.cfg.source_budget(s) {
                    out.degraded.push(Degraded::SourceOverBudget(s));
                } else {
                    out.lists[s as usize] = found.list;
                }
            }
        }
        out.elapsed = start.elapsed();
        out
    }
}
