//! `GET /recommendations`: validate, pick the variant (and the bandit's arm), run the pipeline
//! under the request budget (`pipeline::recommend_within`, which falls back to popularity when the
//! budget runs out), record the impression, answer. Never a 5xx because a stage failed.

use super::admission::Admission;
use super::error::ApiError;
use super::params;
use super::state::AppState;
use super::{RequestId, RouteLabels};
use crate::feedback::events::ServedItem;
use crate::feedback::service::ImpressionIn;
use crate::pipeline::{
    Degraded, Explanation, Query, Recommendation, Strategy, Treatment, recommend_within,
};
use crate::ranking::Diversity;
use crate::retrieval::Source;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// One served item, borrowed from the impression's record of it (no second copy of the id).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemOut<'a> {
    pub item_id: &'a str,
    pub score: f32,
    /// The candidate sources that proposed the item, and `exposure` for an item the new-item
    /// exposure policy placed.
    #[schema(schema_with = super::openapi::sources_schema)]
    pub sources: SourceNames,
    /// Only with `explain=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<&'a Explanation>,
    /// Only on items the new-item exposure policy placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure: Option<ExposureOut>,
}

/// The names of the sources in a bit set (`Source::ALL` order), then `exposure` when the item
/// holds an exposure slot: serialised as a JSON array without building a `Vec` per item.
#[derive(Debug, Clone, Copy)]
pub struct SourceNames {
    pub bits: u8,
    pub exposure: bool,
}

impl Serialize for SourceNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        for name in Source::ALL
            .into_iter()
            .filter(|&src| self.bits & (1 << src as u8) != 0)
            .map(Source::as_str)
        {
            seq.serialize_element(name)?;
        }
        if self.exposure {
            seq.serialize_element(crate::ranking::exposure::EXPOSURE_SOURCE)?;
        }
        seq.end()
    }
}

/// An item placed in a new-item exposure slot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExposureOut {
    /// The probability, under the treatment's exposure policy, that this position was an
    /// exposure slot (1 for fixed slots).
    pub propensity: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecResponse<'a> {
    /// The server-issued impression id: feedback on this list names it as its `request_id`.
    pub request_id: &'a str,
    /// The client's `X-Request-Id`, echoed for tracing (never used for attribution).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<&'a str>,
    /// With `feedback.auth = "signed"`: feedback on this list must carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impression_token: Option<String>,
    pub user_id: Option<&'a str>,
    pub variant: &'a str,
    pub model_version: &'a str,
    /// Which path served the list.
    #[schema(schema_with = super::openapi::strategy_schema)]
    pub strategy: &'static str,
    /// Why a better path was skipped: `stage:reason` values.
    #[schema(schema_with = super::openapi::degraded_schema)]
    pub degraded: Vec<Degraded>,
    /// The bandit arm, when the variant uses the bandit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<&'a str>,
    pub items: Vec<ItemOut<'a>>,
}

/// `GET /recommendations`.
#[utoipa::path(
    get,
    path = "/recommendations",
    summary = "Recommend items for a user and/or a session",
    params(
        super::openapi::RecQueryDoc,
        ("X-Variant" = Option<String>, Header, description = "A/B variant; unknown or missing selects the default."),
        ("X-Request-Id" = Option<String>, Header, description = "Echoed for tracing (header and `client_request_id`); generated when absent or invalid. Never the impression id."),
    ),
    responses(
        (status = 200, description = "Ranked items", body = RecResponse),
        (status = 400, description = "Invalid parameter", body = super::openapi::ErrorBody),
        (status = 414, description = "Query string too long", body = super::openapi::ErrorBody),
        (status = 503, description = "Overloaded or not ready (Retry-After)", body = super::openapi::ErrorBody),
    )
)]
pub async fn recommend(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    admission: Option<Extension<Admission>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scfg = &st.cfg.serving;
    let p = params::parse(raw.as_deref(), scfg.max_n, scfg.max_list_len)?;
    let engine = st.current()?;

    let header = headers
        .get("x-variant")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let (variant, choice) = st.variants.select(header);
    st.metrics
        .variant_resolution
        .with_label_values(&[choice.as_str()])
        .inc();
    let mut treatment = Treatment {
        counts: variant.counts,
        weights: variant.weights,
        use_ranker: variant.ranker,
        exposure: variant.exposure,
    };

    let overlay = st.overlay_for(&engine);
    let (online, history_unavailable) =
        super::fleet::online_history(&st, p.user_id.as_deref()).await;
    let mut seen_added = Vec::new();
    let mut online_idx: Vec<(u32, i64)> = Vec::with_capacity(online.len());
    for (i, t) in &online {
        match engine.model.item_index.get(i.as_str()) {
            Some(&ix) => online_idx.push((ix, *t)),
            None if overlay.as_ref().is_some_and(|o| o.knows(i)) => seen_added.push(i.clone()),
            None => {}
        }
    }
    let known_len = p
        .user_id
        .as_deref()
        .and_then(|u| engine.model.user_index.get(u))
        .map_or(0, |&u| engine.model.history(u).0.len());

    // The bandit picks the blend when the variant asks for it.
    let arm = match (st.feedback.get(), variant.bandit) {
        (Some(fb), true) => {
            let ts = p.ts.unwrap_or_else(crate::clock::now_unix);
            let pick = fb.choose_arm(known_len + online_idx.len(), p.device.as_deref(), ts);
            treatment.weights = Some(pick.weights);
            if treatment.use_ranker {
                // Where the ranker orders the list, the arm decides the candidate mix instead.
                treatment.counts = treatment.counts.weighted(&pick.weights);
            }
            Some(pick)
        }
        _ => None,
    };

    let q = Query {
        user_id: p.user_id.clone(),
        n: p.n.unwrap_or(scfg.default_n),
        recent: p.recent,
        exclude: p.exclude,
        exclude_seen: p.exclude_seen,
        category: p.category,
        ts: p.ts,
        online: online_idx,
        explain: p.explain,
        // The request's settings override the variant's, each on its own.
        diversity: Diversity {
            lambda: p.diversity.unwrap_or(variant.diversity.lambda),
            max_per_category: p.max_per_category.or(variant.diversity.max_per_category),
        },
        // The exposure draws are seeded by the request's user, n and session (0 = that).
        exposure_seed: 0,
        overlay: overlay.clone(),
        seen_added,
    };
    // The admission permit rides in the pipeline task: the slot frees when the work ends. The
    // time the request queued for it comes out of its budget.
    let (permit, queued) = match admission {
        Some(Extension(a)) => (a.take(), a.waited()),
        None => (None, std::time::Duration::ZERO),
    };
    let budget = scfg.total_budget().saturating_sub(queued);
    let mut rec = recommend_within(&engine, &st.pool, q, treatment, budget, permit).await;
    if history_unavailable {
        rec.degraded.push(Degraded::HistoryUnavailable);
    }
    observe(&st, &rec);
    observe_new_items(&st, &engine, &rec, &variant.name);

    // The served list is built once, with owned ids, for the impression record; the response
    // body borrows from it and is serialised before the record takes it.
    let mut explanations = rec.explanations.take().map(Vec::into_iter);
    let mut served: Vec<ServedItem> = rec
        .items
        .iter()
        .enumerate()
        .map(|(p, r)| ServedItem {
            item_id: engine.item_id(overlay.as_deref(), r.item).to_string(),
            position: p as u32,
            score: r.score,
            // Stored only when the request asked for explanations.
            explanation: explanations.as_mut().and_then(Iterator::next),
            exposure_propensity: None,
        })
        .collect();
    for slot in &rec.exposure {
        if let Some(it) = served.get_mut(slot.position) {
            it.exposure_propensity = Some(slot.propensity);
        }
    }
    // The arm only answers for lists its blend (or candidate mix) produced, not for the
    // popularity fallback.
    let arm = arm.filter(|_| rec.strategy != Strategy::Popular);
    if let Some(pick) = &arm {
        st.metrics
            .bandit_pulls
            .with_label_values(&[pick.context_label.as_str(), pick.arm_name.as_str()])
            .inc();
    }
    let client_request_id = rid.from_client().then(|| rid.0.clone());
    let fb = st.feedback.get();
    let impression_id = match fb {
        Some(fb) => fb.issue_id(),
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let impression_token =
        fb.and_then(|fb| fb.impression_token(&impression_id, p.user_id.as_deref()));
    let body = RecResponse {
        request_id: &impression_id,
        client_request_id: client_request_id.as_deref(),
        impression_token,
        user_id: p.user_id.as_deref(),
        variant: &variant.name,
        model_version: engine.version(),
        strategy: rec.strategy.as_str(),
        degraded: std::mem::take(&mut rec.degraded),
        arm: arm.as_ref().map(|a| a.arm_name.as_str()),
        items: served
            .iter()
            .zip(&rec.items)
            .map(|(s, r)| ItemOut {
                item_id: &s.item_id,
                score: s.score,
                sources: SourceNames {
                    bits: r.sources,
                    exposure: s.exposure_propensity.is_some(),
                },
                explanation: s.explanation.as_ref(),
                exposure: s
                    .exposure_propensity
                    .map(|propensity| ExposureOut { propensity }),
            })
            .collect(),
    };
    // One pass into a buffer sized for the usual item (id, score, a few sources).
    let mut json = Vec::with_capacity(320 + 112 * body.items.len());
    let encoded = serde_json::to_writer(&mut json, &body);
    drop(body);
    if let Some(fb) = fb {
        let imp = ImpressionIn {
            id: &impression_id,
            client_request_id: client_request_id.as_deref(),
            user_id: p.user_id.as_deref(),
            variant: &variant.name,
            arm: arm.as_ref(),
            strategy: rec.strategy,
            model_version: engine.version(),
            items: served,
        };
        // With shared state the list is in Redis before the response goes out, so feedback
        // on any replica attributes to it (or, past the budget, on this one only).
        let shared = st
            .fleet
            .as_ref()
            .map(|f| (Arc::clone(f), fb.served_for(&imp)));
        fb.record_impression(imp);
        if let Some((fleet, compact)) = shared
            && let Err(e) = fleet.impressions.put(&impression_id, &compact).await
        {
            tracing::debug!(error = %e, "served list not shared; attributable on this replica only");
        }
    }
    let mut resp = match encoded {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(e) => {
            return Err(ApiError::Internal(format!(
                "response not serialisable: {e}"
            )));
        }
    };
    if let Ok(v) = HeaderValue::from_str(&variant.name) {
        resp.headers_mut().insert("x-variant", v);
    }
    resp.extensions_mut().insert(RouteLabels {
        variant: variant.name.clone(),
        strategy: rec.strategy.as_str(),
    });
    Ok(resp)
}

/// The share of served slots new items got, and the slots exposure filled.
fn observe_new_items(
    st: &AppState,
    engine: &crate::pipeline::Engine,
    rec: &Recommendation,
    variant: &str,
) {
    // Items added at runtime (ids past the bundle's) are new items too.
    let base = engine.model.n_items() as u32;
    let new = rec
        .items
        .iter()
        .filter(|r| r.item >= base || engine.new_items.contains(r.item))
        .count() as u64;
    let m = &st.metrics;
    m.served_slots
        .with_label_values(&[variant, "new_item"])
        .inc_by(new);
    m.served_slots
        .with_label_values(&[variant, "established"])
        .inc_by(rec.items.len() as u64 - new);
    if !rec.exposure.is_empty() {
        m.exposure_slots
            .with_label_values(&[variant])
            .inc_by(rec.exposure.len() as u64);
    }
}

fn observe(st: &AppState, rec: &Recommendation) {
    let m = &st.metrics;
    let t = &rec.timings;
    // In `metrics::STAGES` order.
    for (h, d) in m
        .hot
        .stage
        .iter()
        .zip([t.profile, t.retrieval, t.merge, t.rank, t.total])
    {
        h.observe(d.as_secs_f64());
    }
    for s in Source::ALL {
        if let Some(d) = t.sources[s as usize] {
            m.hot.source_seconds[s as usize].observe(d.as_secs_f64());
            m.hot.source_candidates[s as usize].observe(rec.candidates[s as usize] as f64);
        }
    }
    for &d in &rec.degraded {
        // A closed set of typed reasons, so these are bounded label values.
        if d.is_over_budget() {
            m.budget_overruns.with_label_values(&[d.stage()]).inc();
        }
        if let Degraded::SourceCut(s) = d {
            m.source_cuts.with_label_values(&[s.as_str()]).inc();
        }
        if rec.strategy != Strategy::Ranked || d.is_ranker() {
            m.fallbacks.with_label_values(&[d.metric_label()]).inc();
        }
    }
}
