//! The price of diversity in `recserve evaluate`: the full pipeline again under MMR (λ = 0.3,
//! 0.6) and under a per-category cap of 2 (rows of [`super::ablation::ablation_rows`]), scored
//! like every row (NDCG, coverage, the paired NDCG interval against the full row), plus
//! intra-list similarity, and their report table.

use super::report::{AblationRow, EvalReport, FULL_ROW, ci_cell};
use crate::bundle::Model;
use crate::ranking::Diversity;
use crate::ranking::diversity::intra_list_similarity;
use std::fmt::Write as _;

/// The diversity rows: (name, settings), in report order after the other rows.
pub const DIVERSITY_ROWS: [(&str, Diversity); 3] = [
    (
        "diversity_0.3",
        Diversity {
            lambda: 0.3,
            max_per_category: None,
        },
    ),
    (
        "diversity_0.6",
        Diversity {
            lambda: 0.6,
            max_per_category: None,
        },
    ),
    (
        "max_per_category_2",
        Diversity {
            lambda: 0.0,
            max_per_category: Some(2),
        },
    ),
];

/// Mean intra-list similarity of the users' top-`k` lists (`None` without lists).
pub fn mean_ils(model: &Model, lists: &[(u32, &[u32])], k: usize) -> Option<f64> {
    if lists.is_empty() {
        return None;
    }
    let sum: f64 = lists
        .iter()
        .map(|(_, items)| intra_list_similarity(model, &items[..items.len().min(k)]))
        .sum();
    Some(sum / lists.len() as f64)
}

/// The table of the full row and the diversity rows: what variety costs in accuracy.
pub fn diversity_table(md: &mut String, r: &EvalReport) {
    let names: Vec<&str> = std::iter::once(FULL_ROW)
        .chain(DIVERSITY_ROWS.iter().map(|(n, _)| *n))
        .collect();
    let rows: Vec<&AblationRow> = names
        .iter()
        .filter_map(|n| r.rows.iter().find(|row| row.name == *n))
        .collect();
    if rows.len() < 2 {
        return;
    }
    let k = r.k;
    let _ = writeln!(
        md,
        "## Diversity (all users, K = {k})\n\n\
         | variant | NDCG@{k} | Coverage | intra-list similarity | Δ NDCG vs full (95% CI) |\n\
         |---|---|---|---|---|"
    );
    for row in rows {
        let ils = row
            .intra_list_similarity
            .map_or("n/a".to_string(), |v| format!("{v:.4}"));
        let ci = ci_cell(row);
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.4} | {ils} | {ci} |",
            row.name, row.metrics.ndcg, row.metrics.coverage
        );
    }
    md.push_str(
        "\nIntra-list similarity: the mean content cosine over all pairs of a user's top-K \
         items, averaged over users (lower = more varied lists).\n\n",
    );
}
