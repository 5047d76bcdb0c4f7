//! `recserve export-events`: the event log as the generic `interactions.csv` (weights from the
//! reward config), so `recserve train` can retrain on live feedback. Impressions and events with
//! no positive reward are left out.

use super::events::Record;
use super::log::EventLog;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExportSummary {
    pub records: u64,
    pub written: u64,
    pub skipped: u64,
}

pub fn export_events(
    log_dir: &Path,
    out_dir: &Path,
    rewards: &BTreeMap<String, f64>,
) -> Result<ExportSummary, String> {
    let records = EventLog::replay_dir(log_dir, 0).map_err(|e| e.to_string())?;
    export_payloads(
        records.map(|r| r.map(|(_, payload)| payload).map_err(|e| e.to_string())),
        out_dir,
        rewards,
    )
}

/// [`export_events`] over any source of log payloads (e.g. the fleet's Redis stream).
pub fn export_payloads(
    records: impl Iterator<Item = Result<Vec<u8>, String>>,
    out_dir: &Path,
    rewards: &BTreeMap<String, f64>,
) -> Result<ExportSummary, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let path = out_dir.join("interactions.csv");
    let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
    w.write_record(["user_id", "item_id", "timestamp", "weight"])
        .map_err(|e| e.to_string())?;
    let mut s = ExportSummary::default();
    for payload in records {
        let payload = payload?;
        s.records += 1;
        let Ok(Record::Feedback { event, received_at }) =
            serde_json::from_slice::<Record>(&payload)
        else {
            s.skipped += 1;
            continue;
        };
        let weight = rewards.get(&event.event).copied().unwrap_or(0.0);
        if weight <= 0.0 {
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
    let mut inner = w.into_inner().map_err(|e| e.to_string())?;
    inner.flush().map_err(|e| e.to_string())?;
    Ok(s)
}
