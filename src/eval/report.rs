//! The evaluation report: one serialisable structure rendered to `report.json`, `report.md` and SVG
//! charts. It only formats numbers computed elsewhere; it never evaluates a model itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bootstrap::DiffCi;
use super::charts::{BarChart, BarSeries, Chart, LineChart, LineSeries, Scale};
use super::metrics::{MetricSummary, RecallCurve};

/// Name of the ablation row every other row is compared with.
pub const FULL_ROW: &str = "full";

/// Name prefix of the single-source baseline rows (`only_cf`, `only_content`, …).
pub const ONLY_PREFIX: &str = "only_";

/// Everything `recserve evaluate` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Data set facts (users, items, interactions, split, …), rendered as a key/value table.
    pub data_summary: BTreeMap<String, serde_json::Value>,
    /// The effective configuration, rendered as JSON.
    pub config: serde_json::Value,
    /// One row per pipeline variant; the row named [`FULL_ROW`] is the reference.
    pub rows: Vec<AblationRow>,
    /// Recall@K curve per candidate source, including "merged".
    pub source_recall: Vec<SourceRecall>,
    pub latency: Vec<StageLatency>,
    /// The cutoff of every `MetricSummary` in `rows`.
    pub k: usize,
}

/// Metrics of one pipeline variant (e.g. "full", "without_cf").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationRow {
    pub name: String,
    /// All users.
    pub metrics: MetricSummary,
    /// Per user slice ("cold_users", "cold_items", …).
    pub slices: BTreeMap<String, MetricSummary>,
    /// Paired per-user bootstrap 95% CI of `NDCG@K(full) − NDCG@K(this row)` on all users
    /// (positive: the full pipeline is better). `None` for the full row itself, and absent from
    /// reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndcg_vs_full: Option<DiffCi>,
    /// Mean intra-list similarity of the top-K lists (content cosine over item pairs); absent
    /// from reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_list_similarity: Option<f64>,
    /// Share of the top-K slots held by new items (few or no training interactions); absent
    /// from reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_item_share: Option<f64>,
}

/// Mean recall of one candidate source's top-K candidates, per K.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecall {
    pub source: String,
    pub recall_at: Vec<(usize, f64)>,
}

impl SourceRecall {
    /// One entry per source of an accumulated [`RecallCurve`].
    pub fn from_curve(curve: &RecallCurve) -> Vec<SourceRecall> {
        curve
            .curves()
            .into_iter()
            .map(|(source, recall_at)| SourceRecall { source, recall_at })
            .collect()
    }
}

/// Latency percentiles of one pipeline stage, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    pub stage: String,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

impl StageLatency {
    /// Nearest-rank percentiles (`p`-th percentile = the `ceil(p/100 · n)`-th smallest sample) of
    /// the finite samples; `None` when there are none.
    pub fn from_samples(stage: impl Into<String>, samples_ms: &[f64]) -> Option<Self> {
        let mut s: Vec<f64> = samples_ms
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if s.is_empty() {
            return None;
        }
        s.sort_unstable_by(f64::total_cmp);
        let pct = |p: f64| s[((p / 100.0 * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Some(Self {
            stage: stage.into(),
            p50_ms: pct(50.0),
            p90_ms: pct(90.0),
            p99_ms: pct(99.0),
            mean_ms: s.iter().sum::<f64>() / s.len() as f64,
        })
    }
}

/// Writes `report.json`, `report.md` and the charts `ablation_ndcg`, `source_recall` and
/// `latency`, each as `.svg` and `.png`, into `out_dir` (created if missing).
pub fn write_report(report: &EvalReport, out_dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(out_dir.join("report.json"), json + "\n")?;
    std::fs::write(out_dir.join("report.md"), render_markdown(report))?;
    for (name, chart) in [
        ("ablation_ndcg", ablation_chart(report)),
        ("source_recall", source_recall_chart(report)),
        ("latency", latency_chart(report)),
    ] {
        let svg = chart.to_svg().map_err(io::Error::other)?;
        std::fs::write(out_dir.join(format!("{name}.svg")), svg)?;
        let png = chart.to_png().map_err(io::Error::other)?;
        std::fs::write(out_dir.join(format!("{name}.png")), png)?;
    }
    Ok(())
}

/// The component an ablation row removes, from names like `without_cf`, `without-cf`, `no_cf`, `-cf`.
pub fn ablated_component(row_name: &str) -> Option<&str> {
    let lower = row_name.to_ascii_lowercase();
    [
        "without_", "without-", "without ", "minus_", "minus-", "no_", "no-", "-",
    ]
    .iter()
    .find(|p| lower.starts_with(*p) && lower.len() > p.len())
    .map(|p| &row_name[p.len()..])
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn num(v: f64) -> String {
    format!("{v:.4}")
}

/// A signed difference, `+0.0123` (a zero difference prints as `+0.0000`, never `-0.0000`).
fn signed(v: f64) -> String {
    format!("{:+.4}", if v == 0.0 { 0.0 } else { v })
}

/// `+0.0123 [+0.0081, +0.0170]`.
fn ci_text(ci: &DiffCi) -> String {
    format!("{} [{}, {}]", signed(ci.mean), signed(ci.lo), signed(ci.hi))
}

/// The "Δ NDCG vs full" cell of one row.
pub(super) fn ci_cell(row: &AblationRow) -> String {
    match &row.ndcg_vs_full {
        Some(ci) => ci_text(ci),
        None if row.name == FULL_ROW => "(reference)".into(),
        None => "n/a".into(),
    }
}

/// Accuracy columns of one summary; "n/a" when no user had a relevant item.
fn accuracy_cells(m: &MetricSummary) -> [String; 5] {
    if m.users_evaluated == 0 {
        return std::array::from_fn(|_| "n/a".to_string());
    }
    [
        num(m.ndcg),
        num(m.recall),
        num(m.precision),
        num(m.map),
        num(m.hit_rate),
    ]
}

/// Renders the Markdown report.
pub fn render_markdown(r: &EvalReport) -> String {
    let k = r.k;
    let mut md =
        String::from("# recserve evaluation report\n\n## Data\n\n| key | value |\n|---|---|\n");
    for (key, value) in &r.data_summary {
        let v = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(md, "| {} | {} |", cell(key), cell(&v));
    }
    let config = serde_json::to_string_pretty(&r.config).unwrap_or_else(|_| r.config.to_string());
    let _ = write!(
        md,
        "\n## Configuration\n\n```json\n{config}\n```\n\n## Ablation (all users, K = {k})\n\n"
    );
    let _ = writeln!(
        md,
        "| variant | NDCG@{k} | Recall@{k} | Precision@{k} | MAP@{k} | HitRate@{k} | Coverage | Novelty (bits) | Serendipity@{k} | users evaluated | users without relevant | Δ NDCG vs full (95% CI) |"
    );
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        let m = &row.metrics;
        let [ndcg, recall, precision, map, hit] = accuracy_cells(m);
        let serendipity = if m.serendipity_users == 0 {
            "n/a".to_string()
        } else {
            num(m.serendipity)
        };
        let _ = writeln!(
            md,
            "| {} | {ndcg} | {recall} | {precision} | {map} | {hit} | {} | {:.2} | {serendipity} | {} | {} | {} |",
            cell(&row.name),
            num(m.coverage),
            m.novelty,
            m.users_evaluated,
            m.users_without_relevant,
            ci_cell(row)
        );
    }
    md.push_str(
        "\nΔ NDCG vs full = NDCG(full) − NDCG(variant), positive when the full pipeline is better; \
the interval is a paired per-user bootstrap 95% CI (users resampled with replacement).\n\n",
    );
    ablation_sentences(&mut md, r);
    super::diversity::diversity_table(&mut md, r);
    super::coldstart::cold_start_table(&mut md, r);
    slices_table(&mut md, r);
    source_recall_table(&mut md, r);
    latency_table(&mut md, r);
    definitions(&mut md, k);
    md
}

fn ablation_sentences(md: &mut String, r: &EvalReport) {
    let k = r.k;
    let Some(full) = r.rows.iter().find(|row| row.name == FULL_ROW) else {
        if r.rows.len() > 1 {
            let _ = writeln!(
                md,
                "No row named `{FULL_ROW}`: contributions are not computed.\n"
            );
        }
        return;
    };
    for row in r.rows.iter().filter(|row| row.name != FULL_ROW) {
        let v = row.metrics.ndcg;
        let sentence = match ablated_component(&row.name) {
            Some(c) => match &row.ndcg_vs_full {
                Some(ci) => format!(
                    "Without {c}: NDCG@{k} = {v:.3} ({c} contributes {:+.3}, 95% CI [{}, {}])",
                    full.metrics.ndcg - v,
                    signed(ci.lo),
                    signed(ci.hi)
                ),
                None => format!(
                    "Without {c}: NDCG@{k} = {v:.3} ({c} contributes {:+.3})",
                    full.metrics.ndcg - v
                ),
            },
            None => format!(
                "Variant {}: NDCG@{k} = {v:.3} ({:+.3} vs full)",
                row.name,
                v - full.metrics.ndcg
            ),
        };
        let _ = writeln!(md, "- {}.", cell(&sentence));
    }
    md.push('\n');
    best_baseline_sentence(md, r, full);
}

/// Whether the full pipeline beats the best single-source baseline (highest NDCG among the
/// `only_*` rows), judged by its CI: above zero, below zero, or straddling it.
fn best_baseline_sentence(md: &mut String, r: &EvalReport, full: &AblationRow) {
    let k = r.k;
    let Some(best) = r
        .rows
        .iter()
        .filter(|row| row.name.starts_with(ONLY_PREFIX))
        .reduce(|a, b| {
            if b.metrics.ndcg > a.metrics.ndcg {
                b
            } else {
                a
            }
        })
    else {
        return;
    };
    let name = cell(&best.name);
    let source = cell(&best.name[ONLY_PREFIX.len()..]);
    let head = format!(
        "Best single-source baseline: `{name}` ({source} alone, no ranker), NDCG@{k} = {:.4} vs {:.4} for the full pipeline.",
        best.metrics.ndcg, full.metrics.ndcg
    );
    let verdict = match &best.ndcg_vs_full {
        None => format!(
            "No confidence interval was computed, so the difference ({}) is untested.",
            signed(full.metrics.ndcg - best.metrics.ndcg)
        ),
        Some(ci) => {
            let how = if ci.above_zero() {
                "The full pipeline beats it: the 95% CI of the difference lies above zero"
            } else if ci.below_zero() {
                "The full pipeline does not beat it; the baseline is better: the 95% CI of the \
difference lies below zero"
            } else {
                "The full pipeline does not clearly beat it: the 95% CI of the difference includes zero"
            };
            format!(
                "{how} (Δ NDCG@{k} = {}; paired bootstrap over {} users, {} resamples).",
                ci_text(ci),
                full.metrics.users_evaluated,
                ci.resamples
            )
        }
    };
    let _ = writeln!(md, "{head} {verdict}\n");
}

fn slices_table(md: &mut String, r: &EvalReport) {
    if r.rows.iter().all(|row| row.slices.is_empty()) {
        return;
    }
    let k = r.k;
    let _ = writeln!(md, "## Slices (K = {k})\n");
    let _ = writeln!(
        md,
        "| variant | slice | users evaluated | NDCG@{k} | Recall@{k} | Precision@{k} | MAP@{k} | HitRate@{k} | Coverage |"
    );
    md.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        for (slice, m) in &row.slices {
            let [ndcg, recall, precision, map, hit] = accuracy_cells(m);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {ndcg} | {recall} | {precision} | {map} | {hit} | {} |",
                cell(&row.name),
                cell(slice),
                m.users_evaluated,
                num(m.coverage)
            );
        }
    }
    md.push('\n');
}

fn source_recall_table(md: &mut String, r: &EvalReport) {
    md.push_str("## Candidate sources: recall@K\n\n");
    let mut ks: Vec<usize> = r
        .source_recall
        .iter()
        .flat_map(|s| s.recall_at.iter().map(|p| p.0))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() {
        md.push_str("No candidate-source recall was measured.\n\n");
        return;
    }
    md.push_str("| source |");
    for k in &ks {
        let _ = write!(md, " recall@{k} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(ks.len()));
    md.push('\n');
    for s in &r.source_recall {
        let _ = write!(md, "| {} |", cell(&s.source));
        for k in &ks {
            match s.recall_at.iter().find(|p| p.0 == *k) {
                Some(&(_, v)) => {
                    let _ = write!(md, " {} |", num(v));
                }
                None => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
    md.push('\n');
}

fn latency_table(md: &mut String, r: &EvalReport) {
    md.push_str("## Latency per stage (ms)\n\n");
    if r.latency.is_empty() {
        md.push_str("No latency was measured.\n\n");
        return;
    }
    md.push_str("| stage | p50 | p90 | p99 | mean |\n|---|---|---|---|---|\n");
    for l in &r.latency {
        let _ = writeln!(
            md,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            cell(&l.stage),
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.mean_ms
        );
    }
    md.push('\n');
}

fn definitions(md: &mut String, k: usize) {
    let _ = write!(
        md,
        "## Definitions\n\n\
Relevant items are a user's held-out test interactions; relevance is binary. Ranks start at 1; a \
repeated item keeps its rank but is never a second hit. Accuracy metrics are means over users with at \
least one relevant item (\"users evaluated\"); users without relevant items are counted but excluded. \
Definitions match Microsoft recommenders' `python_evaluation`.\n\n\
- **Precision@{k}**: relevant items in the top {k} divided by {k} (even when fewer than {k} items were recommended).\n\
- **Recall@{k}**: relevant items in the top {k} divided by the number of relevant items.\n\
- **NDCG@{k}**: DCG = Σ over hits at rank r ≤ {k} of 1 / log2(r + 1), divided by the DCG of an ideal \
list with min(|relevant|, {k}) hits at the top.\n\
- **MAP@{k}**: mean over users of AP@{k} = Σ over hits at rank r ≤ {k} of precision@r, divided by \
min(|relevant|, {k}) (recommenders' `map_at_k`).\n\
- **HitRate@{k}**: share of users with at least one relevant item in the top {k}.\n\
- **Coverage**: distinct items in all users' top {k} lists divided by the catalogue size.\n\
- **Novelty**: mean over all recommended top-{k} positions of −log2 p(i), p(i) = share of training \
users who interacted with item i (items unseen in training count as one user).\n\
- **Serendipity@{k}**: per user, relevant items in the top {k} that are *not* in the obvious \
recommender's list (popularity plus the user's own category profile), divided by {k}; averaged over \
evaluated users. It never exceeds precision@{k}.\n\
- **Candidate recall@K**: per source, relevant items among the source's first K candidates divided by \
the number of relevant items, averaged over users with relevant items; \"merged\" is the deduplicated \
union fed to the ranker.\n\
- **Latency**: nearest-rank percentiles of per-request stage durations, in milliseconds.\n"
    );
}

/// Bar chart of NDCG@K and recall@K per ablation row.
pub fn ablation_chart(r: &EvalReport) -> Chart {
    let k = r.k;
    let mut c = BarChart::new(
        format!("Ablation: NDCG@{k} and Recall@{k} (all users)"),
        "score",
    );
    c.categories = r.rows.iter().map(|row| row.name.clone()).collect();
    c.series = vec![
        BarSeries {
            name: format!("NDCG@{k}"),
            values: r.rows.iter().map(|row| row.metrics.ndcg).collect(),
        },
        BarSeries {
            name: format!("Recall@{k}"),
            values: r.rows.iter().map(|row| row.metrics.recall).collect(),
        },
    ];
    Chart::Bar(c)
}

/// Recall@K curves per candidate source; log-scaled K when the cutoffs span 20× or more.
pub fn source_recall_chart(r: &EvalReport) -> Chart {
    let mut c = LineChart::new(
        "Candidate recall@K per source",
        "K (candidates kept)",
        "recall@K",
    );
    c.series = r
        .source_recall
        .iter()
        .map(|s| LineSeries {
            name: s.source.clone(),
            points: s.recall_at.iter().map(|&(k, v)| (k as f64, v)).collect(),
        })
        .collect();
    let ks = r
        .source_recall
        .iter()
        .flat_map(|s| s.recall_at.iter().map(|p| p.0));
    let (lo, hi) = ks.fold((usize::MAX, 0), |(lo, hi), k| (lo.min(k), hi.max(k)));
    if lo > 0 && hi >= lo.saturating_mul(20) {
        c.x_scale = Scale::Log;
    }
    Chart::Line(c)
}

/// p50 and p99 latency bars per stage.
pub fn latency_chart(r: &EvalReport) -> Chart {
    let mut c = BarChart::new("Latency per stage", "milliseconds");
    c.categories = r.latency.iter().map(|l| l.stage.clone()).collect();
    c.series = vec![
        BarSeries {
            name: "p50".into(),
            values: r.latency.iter().map(|l| l.p50_ms).collect(),
        },
        BarSeries {
            name: "p99".into(),
            values: r.latency.iter().map(|l| l.p99_ms).collect(),
        },
    ];
    Chart::Bar(c)
}

#[cfg(test)]
mod tests {
    use super::super::charts::test_support::{parse_png, parse_svg};
    use super::*;

    fn summary(ndcg: f64, recall: f64, users_evaluated: u64) -> MetricSummary {
        MetricSummary {
            k: 10,
            users: users_evaluated + 1,
            users_evaluated,
            users_without_relevant: 1,
            users_short_list: 0,
            users_with_duplicates: 0,
            precision: 0.05,
            recall,
            ndcg,
            map: 0.07,
            hit_rate: 0.5,
            coverage: 0.25,
            novelty: 7.5,
            serendipity: 0.01,
            serendipity_users: users_evaluated,
        }
    }

    fn report() -> EvalReport {
        let mut slices = BTreeMap::new();
        slices.insert("cold_users".to_string(), summary(0.08, 0.1, 40));
        slices.insert("cold_items".to_string(), summary(0.0, 0.0, 0));
        EvalReport {
            data_summary: BTreeMap::from([
                ("users".to_string(), serde_json::json!(1000)),
                ("split".to_string(), serde_json::json!("temporal")),
            ]),
            config: serde_json::json!({"k": 10, "sources": ["cf", "content"]}),
            rows: vec![
                AblationRow {
                    name: "full".into(),
                    metrics: summary(0.168, 0.3, 900),
                    slices,
                    ndcg_vs_full: None,
                    intra_list_similarity: None,
                    new_item_share: None,
                },
                AblationRow {
                    name: "without_cf".into(),
                    metrics: summary(0.123, 0.2, 900),
                    slices: BTreeMap::new(),
                    ndcg_vs_full: None,
                    intra_list_similarity: None,
                    new_item_share: None,
                },
                AblationRow {
                    name: "popularity_only".into(),
                    metrics: summary(0.05, 0.1, 900),
                    slices: BTreeMap::new(),
                    ndcg_vs_full: None,
                    intra_list_similarity: None,
                    new_item_share: None,
                },
            ],
            source_recall: vec![
                SourceRecall {
                    source: "cf".into(),
                    recall_at: vec![(10, 0.1), (100, 0.3), (1000, 0.5)],
                },
                SourceRecall {
                    source: "merged".into(),
                    recall_at: vec![(10, 0.2), (100, 0.45)],
                },
            ],
            latency: vec![
                StageLatency {
                    stage: "retrieval".into(),
                    p50_ms: 2.0,
                    p90_ms: 3.5,
                    p99_ms: 6.25,
                    mean_ms: 2.4,
                },
                StageLatency {
                    stage: "ranking".into(),
                    p50_ms: 4.0,
                    p90_ms: 5.0,
                    p99_ms: 9.0,
                    mean_ms: 4.2,
                },
            ],
            k: 10,
        }
    }

    #[test]
    fn markdown_contains_tables_sentences_and_definitions() {
        let md = render_markdown(&report());
        for want in [
            "| users | 1000 |",
            "| split | temporal |",
            "\"sources\": [",
            "| variant | NDCG@10 | Recall@10 |",
            "| full | 0.1680 | 0.3000 | 0.0500 | 0.0700 | 0.5000 | 0.2500 | 7.50 | 0.0100 | 900 | 1 |",
            "| without_cf | 0.1230 | 0.2000 |",
            "- Without cf: NDCG@10 = 0.123 (cf contributes +0.045).",
            "- Variant popularity_only: NDCG@10 = 0.050 (-0.118 vs full).",
            "| full | cold_users | 40 | 0.0800 |",
            "| full | cold_items | 0 | n/a | n/a |",
            "| source | recall@10 | recall@100 | recall@1000 |",
            "| cf | 0.1000 | 0.3000 | 0.5000 |",
            "| merged | 0.2000 | 0.4500 | – |",
            "| retrieval | 2.000 | 3.500 | 6.250 | 2.400 |",
            "## Definitions",
            "**MAP@10**",
            "**Serendipity@10**",
        ] {
            assert!(md.contains(want), "missing {want:?} in\n{md}");
        }
        // Without a "full" row no contribution is claimed.
        let mut r = report();
        r.rows.remove(0);
        let md = render_markdown(&r);
        assert!(!md.contains("contributes") && md.contains("No row named `full`"));
    }

    fn ci(mean: f64, lo: f64, hi: f64) -> Option<DiffCi> {
        Some(DiffCi {
            mean,
            lo,
            hi,
            resamples: 1000,
        })
    }

    // Cost: renders three small reports; microseconds.
    #[test]
    fn markdown_shows_ndcg_ci_column_and_best_baseline_verdict() {
        let mut r = report();
        r.rows[1].ndcg_vs_full = ci(0.045, 0.0301, 0.0602);
        r.rows.insert(
            1,
            AblationRow {
                name: "only_cf".into(),
                metrics: summary(0.155, 0.25, 900),
                slices: BTreeMap::new(),
                ndcg_vs_full: ci(0.0123, 0.0081, 0.017),
                intra_list_similarity: None,
                new_item_share: None,
            },
        );
        r.rows.insert(
            2,
            AblationRow {
                name: "only_popular".into(),
                metrics: summary(0.05, 0.1, 900),
                slices: BTreeMap::new(),
                ndcg_vs_full: ci(0.118, 0.1, 0.13),
                intra_list_similarity: None,
                new_item_share: None,
            },
        );
        let md = render_markdown(&r);
        for want in [
            "| users evaluated | users without relevant | Δ NDCG vs full (95% CI) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            "| 900 | 1 | (reference) |",
            "| only_cf | 0.1550 |",
            "| 900 | 1 | +0.0123 [+0.0081, +0.0170] |",
            // A row without an interval (the fixture's popularity_only).
            "| 900 | 1 | n/a |",
            "- Without cf: NDCG@10 = 0.123 (cf contributes +0.045, 95% CI [+0.0301, +0.0602]).",
            "Best single-source baseline: `only_cf` (cf alone, no ranker), NDCG@10 = 0.1550 vs 0.1680",
            "The full pipeline beats it: the 95% CI of the difference lies above zero \
(Δ NDCG@10 = +0.0123 [+0.0081, +0.0170]; paired bootstrap over 900 users, 1000 resamples).",
        ] {
            assert!(md.contains(want), "missing {want:?} in\n{md}");
        }
        // Straddling zero, and below zero.
        r.rows[1].ndcg_vs_full = ci(0.002, -0.001, 0.005);
        let md = render_markdown(&r);
        assert!(
            md.contains("does not clearly beat it: the 95% CI of the difference includes zero")
                && md.contains("+0.0020 [-0.0010, +0.0050]"),
            "{md}"
        );
        r.rows[1].ndcg_vs_full = ci(-0.01, -0.02, -0.003);
        let md = render_markdown(&r);
        assert!(
            md.contains("does not beat it; the baseline is better")
                && md.contains("-0.0100 [-0.0200, -0.0030]"),
            "{md}"
        );
        // A zero difference is "+0.0000", never "-0.0000".
        assert_eq!(
            (signed(-0.0), signed(0.0)),
            ("+0.0000".into(), "+0.0000".into())
        );
        // No single-source rows, no verdict (the fixture report).
        assert!(!render_markdown(&report()).contains("single-source"));
    }

    // Cost: a few small JSON round trips; microseconds.
    #[test]
    fn json_stays_backward_compatible() {
        let r = report();
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("ndcg_vs_full"), "None must not be written");
        // A report written before the field existed (no key at all) still parses.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        for row in old["rows"].as_array_mut().unwrap() {
            assert!(
                row.as_object_mut()
                    .unwrap()
                    .remove("ndcg_vs_full")
                    .is_none()
            );
        }
        assert_eq!(serde_json::from_value::<EvalReport>(old).unwrap(), r);
        let mut with = r.clone();
        with.rows[1].ndcg_vs_full = ci(0.01, 0.005, 0.02);
        let json = serde_json::to_string(&with).unwrap();
        assert!(
            json.contains(r#""ndcg_vs_full":{"mean":0.01,"lo":0.005,"hi":0.02,"resamples":1000}"#)
        );
        assert_eq!(serde_json::from_str::<EvalReport>(&json).unwrap(), with);
    }

    #[test]
    fn ablation_names_are_parsed() {
        assert_eq!(ablated_component("without_cf"), Some("cf"));
        assert_eq!(ablated_component("no-session"), Some("session"));
        assert_eq!(ablated_component("-ranker"), Some("ranker"));
        assert_eq!(ablated_component("Without content"), Some("content"));
        assert_eq!(ablated_component("full"), None);
        assert_eq!(ablated_component("without_"), None);
    }

    // Cost: three small SVG renders; well under a second.
    #[test]
    fn charts_parse_with_expected_labels_and_one_element_per_data_point() {
        let r = report();
        let a = parse_svg(&ablation_chart(&r).to_svg().unwrap()).unwrap();
        for l in [
            "full",
            "without_cf",
            "popularity_only",
            "NDCG@10",
            "Recall@10",
        ] {
            assert!(a.texts.iter().any(|t| t == l), "ablation chart lacks {l}");
        }
        // Three rows: a bar per row and series, plus one legend key per series.
        assert_eq!((a.rects[0], a.rects[1]), (3 + 1, 3 + 1));
        let s = parse_svg(&source_recall_chart(&r).to_svg().unwrap()).unwrap();
        for l in ["cf", "merged", "1000", "recall@K"] {
            assert!(s.texts.iter().any(|t| t == l), "source chart lacks {l}");
        }
        assert_eq!(s.circles[..2], [3, 2]);
        let l = parse_svg(&latency_chart(&r).to_svg().unwrap()).unwrap();
        for t in ["retrieval", "ranking", "p50", "p99", "milliseconds"] {
            assert!(l.texts.iter().any(|x| x == t), "latency chart lacks {t}");
        }
        assert_eq!((l.rects[0], l.rects[1]), (2 + 1, 2 + 1));
    }

    #[test]
    fn write_report_writes_all_files_and_json_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/out");
        let r = report();
        write_report(&r, &out).unwrap();
        for f in [
            "report.json",
            "report.md",
            "ablation_ndcg.svg",
            "source_recall.svg",
            "latency.svg",
        ] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        for f in ["ablation_ndcg", "source_recall", "latency"] {
            parse_svg(&std::fs::read_to_string(out.join(format!("{f}.svg"))).unwrap()).unwrap();
            let (w, h, colours, _) =
                parse_png(&std::fs::read(out.join(format!("{f}.png"))).unwrap()).unwrap();
            assert_eq!((w, h), (860, 460));
            assert!(
                colours[0] > 0 && colours[1] > 0,
                "{f}.png lacks its series: {colours:?}"
            );
        }
        let back: EvalReport =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(back, r);
        let empty = EvalReport {
            data_summary: BTreeMap::new(),
            config: serde_json::Value::Null,
            rows: vec![],
            source_recall: vec![],
            latency: vec![],
            k: 5,
        };
        write_report(&empty, &out).unwrap();
        parse_svg(&std::fs::read_to_string(out.join("source_recall.svg")).unwrap()).unwrap();
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).chain([f64::NAN]).collect();
        let l = StageLatency::from_samples("rank", &samples).unwrap();
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.mean_ms),
            (50.0, 90.0, 99.0, 50.5)
        );
        let one = StageLatency::from_samples("x", &[3.0]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (3.0, 3.0));
        assert!(StageLatency::from_samples("x", &[f64::NAN]).is_none());
    }

    #[test]
    fn source_recall_from_curve() {
        let mut c = RecallCurve::new(vec![1, 2]).unwrap();
        c.add("merged", &[4, 5], &[5].into_iter().collect());
        assert_eq!(
            SourceRecall::from_curve(&c),
            vec![SourceRecall {
                source: "merged".into(),
                recall_at: vec![(1, 0.0), (2, 1.0)]
            }]
        );
    }
}
