//! Why a request was served by less than the full pipeline: one closed set of typed reasons, the
//! single source of truth for the response's `degraded` list (`stage:reason`) and for the metric
//! labels (`stage`, `stage_reason`). Nothing formats a reason and parses it back.

use crate::retrieval::Source;

/// A stage or source the request skipped, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Degraded {
    /// A candidate source finished after its budget (or the request's deadline).
    SourceOverBudget(Source),
    /// A candidate source panicked or failed.
    SourceError(Source),
    /// A candidate source's search reached its deadline mid-way and stopped there: its list is
    /// the best of what it had scored (used, but possibly missing better items).
    SourceCut(Source),
    /// `category=` named a category the bundle does not know (it matches no item).
    CategoryUnknown,
    /// No source proposed an eligible item.
    NoCandidates,
    /// The bundle has no usable ranker.
    RankerUnavailable,
    /// The ranker finished after its budget.
    RankerOverBudget,
    /// The ranker failed.
    RankerError,
    /// Training found the ranker no better than the learned blend or a single source on
    /// held-out users, so the best validated alternative serves instead.
    RankerGated,
    /// The whole request overran its budget: answered from popularity.
    RequestOverBudget,
    /// The pipeline task died: answered from popularity.
    PipelineError,
    /// The shared online history (Redis) failed or did not answer within its budget: the
    /// request was served without online history.
    HistoryUnavailable,
}

impl Degraded {
    /// The stage that was skipped (a bounded metric label).
    pub fn stage(self) -> &'static str {
        match self {
            Degraded::SourceOverBudget(s) | Degraded::SourceError(s) | Degraded::SourceCut(s) => {
                s.as_str()
            }
            Degraded::CategoryUnknown => "category",
            Degraded::NoCandidates => "retrieval",
            Degraded::RankerUnavailable
            | Degraded::RankerOverBudget
            | Degraded::RankerError
            | Degraded::RankerGated => "ranker",
            Degraded::RequestOverBudget => "request",
            Degraded::PipelineError => "pipeline",
            Degraded::HistoryUnavailable => "history",
        }
    }

    /// Why it was skipped.
    pub fn reason(self) -> &'static str {
        match self {
            Degraded::SourceOverBudget(_)
            | Degraded::RankerOverBudget
            | Degraded::RequestOverBudget => "over_budget",
            Degraded::SourceError(_) | Degraded::RankerError | Degraded::PipelineError => "error",
            Degraded::SourceCut(_) => "cut",
            Degraded::CategoryUnknown => "unknown",
            Degraded::NoCandidates => "no_candidates",
            Degraded::RankerUnavailable | Degraded::HistoryUnavailable => "unavailable",
            Degraded::RankerGated => "gated",
        }
    }

    /// `stage:reason`, as the response's `degraded` list shows it.
    pub fn as_str(self) -> &'static str {
        use Source::*;
        match self {
            Degraded::SourceOverBudget(Cf) => "cf:over_budget",
            Degraded::SourceOverBudget(Content) => "content:over_budget",
            Degraded::SourceOverBudget(Session) => "session:over_budget",
            Degraded::SourceOverBudget(Popular) => "popular:over_budget",
            Degraded::SourceOverBudget(Item2Item) => "item2item:over_budget",
            Degraded::SourceOverBudget(Segment) => "segment:over_budget",
            Degraded::SourceError(Cf) => "cf:error",
            Degraded::SourceError(Content) => "content:error",
            Degraded::SourceError(Session) => "session:error",
            Degraded::SourceError(Popular) => "popular:error",
            Degraded::SourceError(Item2Item) => "item2item:error",
            Degraded::SourceError(Segment) => "segment:error",
            Degraded::SourceCut(Cf) => "cf:cut",
            Degraded::SourceCut(Content) => "content:cut",
            Degraded::SourceCut(Session) => "session:cut",
            Degraded::SourceCut(Popular) => "popular:cut",
            Degraded::SourceCut(Item2Item) => "item2item:cut",
            Degraded::SourceCut(Segment) => "segment:cut",
            Degraded::CategoryUnknown => "category:unknown",
            Degraded::NoCandidates => "retrieval:no_candidates",
            Degraded::RankerUnavailable => "ranker:unavailable",
            Degraded::RankerOverBudget => "ranker:over_budget",
            Degraded::RankerError => "ranker:error",
            Degraded::RankerGated => "ranker:gated",
            Degraded::RequestOverBudget => "request:over_budget",
            Degraded::PipelineError => "pipeline:error",
            Degraded::HistoryUnavailable => "history:unavailable",
        }
    }

    /// `stage_reason`: the `reason` label of `recserve_fallbacks_total`.
    pub fn metric_label(self) -> &'static str {
        use Source::*;
        match self {
            Degraded::SourceOverBudget(Cf) => "cf_over_budget",
            Degraded::SourceOverBudget(Content) => "content_over_budget",
            Degraded::SourceOverBudget(Session) => "session_over_budget",
            Degraded::SourceOverBudget(Popular) => "popular_over_budget",
            Degraded::SourceOverBudget(Item2Item) => "item2item_over_budget",
            Degraded::SourceOverBudget(Segment) => "segment_over_budget",
            Degraded::SourceError(Cf) => "cf_error",
            Degraded::SourceError(Content) => "content_error",
            Degraded::SourceError(Session) => "session_error",
            Degraded::SourceError(Popular) => "popular_error",
            Degraded::SourceError(Item2Item) => "item2item_error",
            Degraded::SourceError(Segment) => "segment_error",
            Degraded::SourceCut(Cf) => "cf_cut",
            Degraded::SourceCut(Content) => "content_cut",
            Degraded::SourceCut(Session) => "session_cut",
            Degraded::SourceCut(Popular) => "popular_cut",
            Degraded::SourceCut(Item2Item) => "item2item_cut",
            Degraded::SourceCut(Segment) => "segment_cut",
            Degraded::CategoryUnknown => "category_unknown",
            Degraded::NoCandidates => "retrieval_no_candidates",
            Degraded::RankerUnavailable => "ranker_unavailable",
            Degraded::RankerOverBudget => "ranker_over_budget",
            Degraded::RankerError => "ranker_error",
            Degraded::RankerGated => "ranker_gated",
            Degraded::RequestOverBudget => "request_over_budget",
            Degraded::PipelineError => "pipeline_error",
            Degraded::HistoryUnavailable => "history_unavailable",
        }
    }

    /// Whether a latency budget was the cause (counted in `recserve_budget_overruns_total`).
    pub fn is_over_budget(self) -> bool {
        self.reason() == "over_budget"
    }

    /// Whether the ranker (rather than a source or the request) was skipped.
    pub fn is_ranker(self) -> bool {
        self.stage() == "ranker"
    }
}

impl std::fmt::Display for Degraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Degraded {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Degraded> {
        let mut v: Vec<Degraded> = Source::ALL
            .into_iter()
            .flat_map(|s| {
                [
                    Degraded::SourceOverBudget(s),
                    Degraded::SourceError(s),
                    Degraded::SourceCut(s),
                ]
            })
            .collect();
        v.extend([
            Degraded::CategoryUnknown,
            Degraded::NoCandidates,
            Degraded::RankerUnavailable,
            Degraded::RankerOverBudget,
            Degraded::RankerError,
            Degraded::RankerGated,
            Degraded::RequestOverBudget,
            Degraded::PipelineError,
            Degraded::HistoryUnavailable,
        ]);
        v
    }

    #[test]
    fn strings_and_labels_are_stage_and_reason_joined() {
        let mut seen = std::collections::HashSet::new();
        for d in all() {
            assert_eq!(d.as_str(), format!("{}:{}", d.stage(), d.reason()));
            assert_eq!(d.metric_label(), format!("{}_{}", d.stage(), d.reason()));
            assert!(seen.insert(d.as_str()), "{d} twice");
        }
        assert_eq!(
            serde_json::to_string(&Degraded::SourceOverBudget(Source::Cf)).unwrap(),
            "\"cf:over_budget\""
        );
        assert!(
            Degraded::RankerOverBudget.is_over_budget() && Degraded::RankerOverBudget.is_ranker()
        );
        assert!(!Degraded::CategoryUnknown.is_over_budget());
    }
}
