//! `recserve export-events`: the event log as training data, judged by the same attribution
//! rules as the live service (`impressions.rs`, with the configured bounds and caps).
//! - `interactions.csv` (the generic input format; weights from the reward config): positive
//!   events, without repeats of an attributed (list, item, event) and without events whose
//!   user does not match the list they name; with `attributed_only`, only attributed ones.
//! - `impressions.csv` (optional): one row per shown item with its outcome (clicked, credited
//!   reward, attributed events), the policy's propensity and, for items the new-item exposure
//!   policy placed, the slot's propensity, for retraining with shown but
//!   unclicked items as negatives and for off-policy evaluation.
//! - `items.csv` (when items were added or updated at runtime): one row per such item with its
//!   latest features, so the next `train` learns them. Takedowns are availability, not data:
//!   they stay in the overlay across reloads and are not exported.

use super::FeedbackConfig;
use super::events::Record;
use super::impressions::{Attribution, CreditCaps, ImpressionBounds, Impressions, Served, id_hash};
use super::log::EventLog;
use crate::catalogue::ChangeSet;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExportSummary {
    pub records: u64,
    /// Rows written to interactions.csv.
    pub written: u64,
    pub skipped: u64,
    /// Events left out because they repeated an attributed (list, item, event).
    pub duplicates: u64,
    /// Events left out because their user is not the one the list was served to.
    pub user_mismatch: u64,
    /// Rows written to impressions.csv (one per shown item).
    pub impression_rows: u64,
    /// Rows written to items.csv (items added or updated at runtime).
    pub item_rows: u64,
}

/// What to write.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// interactions.csv keeps only events attributed to a served list.
    pub attributed_only: bool,
    /// Also write impressions.csv.
    pub impressions: bool,
}

struct ImpressionRow {
    id: String,
    ts: i64,
    user: String,
    variant: String,
    arm: String,
    propensity: Option<f64>,
    arm_probabilities: Vec<f64>,
    strategy: String,
    model_version: String,
    items: Vec<(String, f32)>,
    /// Per position: the exposure slot's propensity, for items the exposure policy placed.
    exposure: Vec<Option<f64>>,
    /// Per position: credited reward, attributed positive events.
    outcomes: Vec<(f64, Vec<String>)>,
}

pub fn export_events(
    fcfg: &FeedbackConfig,
    rewards: &BTreeMap<String, f64>,
    out_dir: &Path,
    opts: ExportOptions,
) -> Result<ExportSummary, String> {
    let records = EventLog::replay_dir(&fcfg.log.dir, 0).map_err(|e| e.to_string())?;
    // Retention may have deleted old catalogue records: the snapshot holds their result.
    let catalogue = std::fs::read(fcfg.log.dir.join("bandit.snapshot.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<super::snapshot::SnapshotFile>(&b).ok())
        .and_then(|s| s.catalogue)
        .unwrap_or_default();
    export_with(
        records.map(|r| r.map(|(_, payload)| payload).map_err(|e| e.to_string())),
        catalogue,
        fcfg,
        rewards,
        out_dir,
        opts,
    )
}

/// [`export_events`] over any source of log payloads (e.g. the fleet's Redis stream).
pub fn export_payloads(
    records: impl Iterator<Item = Result<Vec<u8>, String>>,
    fcfg: &FeedbackConfig,
    rewards: &BTreeMap<String, f64>,
    out_dir: &Path,
    opts: ExportOptions,
) -> Result<ExportSummary, String> {
    export_with(records, ChangeSet::default(), fcfg, rewards, out_dir, opts)
}

fn export_with(
    records: impl Iterator<Item = Result<Vec<u8>, String>>,
    mut catalogue: ChangeSet,
    fcfg: &FeedbackConfig,
    rewards: &BTreeMap<String, f64>,
    out_dir: &Path,
    opts: ExportOptions,
) -> Result<ExportSummary, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let path = out_dir.join("interactions.csv");
    let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
    w.write_record(["user_id", "item_id", "timestamp", "weight"])
        .map_err(|e| e.to_string())?;
    let max_reward = rewards.values().copied().fold(0.0, f64::max);
    let caps = CreditCaps {
        per_impression: fcfg.max_credit_per_impression.unwrap_or(max_reward),
        per_item: fcfg.max_credit_per_item.unwrap_or(max_reward),
    };
    let mut imps = Impressions::new(ImpressionBounds::of(fcfg));
    let mut rows: Vec<ImpressionRow> = Vec::new();
    let mut row_of: FxHashMap<u64, usize> = FxHashMap::default();
    let mut s = ExportSummary::default();
    for payload in records {
        let payload = payload?;
        s.records += 1;
        let Ok(record) = serde_json::from_slice::<Record>(&payload) else {
            s.skipped += 1;
            continue;
        };
        match record {
            Record::Impression {
                request_id,
                user_id,
                variant,
                arm,
                propensity,
                arm_probabilities,
                strategy,
                model_version,
                items,
                ts,
                ..
            } => {
                let served = Served::shown(
                    user_id.as_deref(),
                    &variant,
                    arm.as_ref().map(|a| (a.context, a.arm)),
                    &items,
                    ts,
                );
                imps.insert(&request_id, served);
                if opts.impressions {
                    row_of.insert(id_hash(&request_id), rows.len());
                    rows.push(ImpressionRow {
                        outcomes: vec![(0.0, Vec::new()); items.len()],
                        id: request_id,
                        ts,
                        user: user_id.unwrap_or_default(),
                        variant,
                        arm: arm.map(|a| a.arm_name).unwrap_or_default(),
                        propensity,
                        arm_probabilities: arm_probabilities.unwrap_or_default(),
                        strategy,
                        model_version,
                        exposure: items.iter().map(|i| i.exposure_propensity).collect(),
                        items: items.into_iter().map(|i| (i.item_id, i.score)).collect(),
                    });
                }
            }
            Record::ImpressionImport { request_id, served } => {
                // Judged like the original; its rows belong to the replica that served it.
                imps.insert(&request_id, served);
            }
            Record::Catalogue { changes } => {
                for c in &changes {
                    catalogue.apply(&c.change, &c.stamp);
                }
            }
            Record::Feedback { event, received_at } => {
                let weight = rewards.get(&event.event).copied().unwrap_or(0.0);
                let (attribution, _) = imps.attribute(
                    &event.request_id,
                    &event.user_id,
                    &event.item_id,
                    &event.event,
                    weight,
                    caps,
                );
                match attribution {
                    Attribution::Duplicate => s.duplicates += 1,
                    Attribution::UserMismatch => s.user_mismatch += 1,
                    _ => {}
                }
                if let Attribution::Attributed { credit } = attribution
                    && weight > 0.0
                    && let Some(&r) = row_of.get(&id_hash(&event.request_id))
                    && let Some(row) = rows.get_mut(r)
                    && let Some(pos) = row.items.iter().position(|(i, _)| *i == event.item_id)
                {
                    row.outcomes[pos].0 += credit;
                    row.outcomes[pos].1.push(event.event.clone());
                }
                let keep = match attribution {
                    Attribution::Attributed { .. } => true,
                    Attribution::Duplicate | Attribution::UserMismatch => false,
                    Attribution::NotShown | Attribution::UnknownImpression => !opts.attributed_only,
                };
                if weight <= 0.0 || !keep {
                    s.skipped += 1;
                    continue;
                }
                let ts = event.ts.unwrap_or(received_at).to_string();
                w.write_record([
                    event.user_id.as_str(),
                    event.item_id.as_str(),
                    ts.as_str(),
                    weight.to_string().as_str(),
                ])
                .map_err(|e| e.to_string())?;
                s.written += 1;
            }
        }
    }
    let mut inner = w.into_inner().map_err(|e| e.to_string())?;
    inner.flush().map_err(|e| e.to_string())?;
    if opts.impressions {
        s.impression_rows = write_impressions(&out_dir.join("impressions.csv"), &rows)?;
    }
    s.item_rows = write_items(&out_dir.join("items.csv"), &catalogue)?;
    Ok(s)
}

/// `items.csv` in the input format: `item_id` and the union of the runtime items' feature
/// columns; nothing is written when no item has runtime features.
fn write_items(path: &Path, set: &ChangeSet) -> Result<u64, String> {
    let items: Vec<(&String, &crate::catalogue::Features)> = set
        .entries
        .iter()
        .filter_map(|(id, e)| e.features.as_ref().map(|f| (id, f)))
        .collect();
    if items.is_empty() {
        return Ok(0);
    }
    let columns: std::collections::BTreeSet<&String> =
        items.iter().flat_map(|(_, f)| f.keys()).collect();
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
    w.write_record(std::iter::once("item_id").chain(columns.iter().map(|c| c.as_str())))
        .map_err(|e| e.to_string())?;
    for (id, features) in &items {
        let cells = columns
            .iter()
            .map(|c| features.get(*c).map_or("", String::as_str));
        w.write_record(std::iter::once(id.as_str()).chain(cells))
            .map_err(|e| e.to_string())?;
    }
    let mut inner = w.into_inner().map_err(|e| e.to_string())?;
    inner.flush().map_err(|e| e.to_string())?;
    Ok(items.len() as u64)
}

fn write_impressions(path: &Path, rows: &[ImpressionRow]) -> Result<u64, String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
    w.write_record([
        "impression_id",
        "timestamp",
        "user_id",
        "variant",
        "arm",
        "propensity",
        "arm_probabilities",
        "strategy",
        "model_version",
        "position",
        "item_id",
        "score",
        "exposure_propensity",
        "clicked",
        "reward",
        "events",
    ])
    .map_err(|e| e.to_string())?;
    let mut n = 0;
    for r in rows {
        let probabilities = r
            .arm_probabilities
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join("|");
        for (pos, ((item, score), (reward, events))) in r.items.iter().zip(&r.outcomes).enumerate()
        {
            w.write_record([
                r.id.as_str(),
                &r.ts.to_string(),
                r.user.as_str(),
                r.variant.as_str(),
                r.arm.as_str(),
                &r.propensity.map(|p| p.to_string()).unwrap_or_default(),
                &probabilities,
                r.strategy.as_str(),
                r.model_version.as_str(),
                &pos.to_string(),
                item.as_str(),
                &score.to_string(),
                &r.exposure
                    .get(pos)
                    .copied()
                    .flatten()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                if events.is_empty() { "0" } else { "1" },
                &reward.to_string(),
                &events.join("|"),
            ])
            .map_err(|e| e.to_string())?;
            n += 1;
        }
    }
    let mut inner = w.into_inner().map_err(|e| e.to_string())?;
    inner.flush().map_err(|e| e.to_string())?;
    Ok(n)
}
