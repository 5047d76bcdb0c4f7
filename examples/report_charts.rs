//! Re-renders an evaluation report's charts (SVG and PNG) from its `report.json`, without
//! re-running the evaluation; the same charts `recserve evaluate` writes.
//! usage: cargo run --example report_charts -- out/eval-demo/report.json docs/

use recserve::eval::report::{EvalReport, ablation_chart, latency_chart, source_recall_chart};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, out) = match (args.get(1), args.get(2)) {
        (Some(i), Some(o)) => (i, std::path::Path::new(o)),
        _ => return Err("usage: report_charts REPORT.json OUT_DIR".into()),
    };
    let report: EvalReport = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    std::fs::create_dir_all(out)?;
    for (name, chart) in [
        ("ablation_ndcg", ablation_chart(&report)),
        ("source_recall", source_recall_chart(&report)),
        ("latency", latency_chart(&report)),
    ] {
        std::fs::write(out.join(format!("{name}.svg")), chart.to_svg()?)?;
        std::fs::write(out.join(format!("{name}.png")), chart.to_png()?)?;
        println!("wrote {name}.svg and {name}.png");
    }
    Ok(())
}
