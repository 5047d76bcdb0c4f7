//! Renders `scripts/loadtest.sh`'s results.csv as a latency-vs-throughput chart, SVG and PNG
//! (`OUT.svg` and `OUT.png` beside it).
//! usage: cargo run --release --example loadtest_chart -- out/loadtest/results.csv docs/loadtest.svg

use recserve::eval::charts::{Chart, LineChart, LineSeries};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match (args.get(1), args.get(2)) {
        (Some(i), Some(o)) => (i, std::path::Path::new(o)),
        _ => return Err("usage: loadtest_chart RESULTS.csv OUT.svg".into()),
    };
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for line in std::fs::read_to_string(input)?.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 5 {
            continue;
        }
        let rps: f64 = f[1].parse()?;
        p50.push((rps, f[2].parse()?));
        p99.push((rps, f[4].parse()?));
    }
    let mut chart = LineChart::new(
        "recserve: latency vs throughput (points: 1, 4, 16, 64 connections)",
        "requests/s",
        "latency (ms)",
    );
    chart.series.push(LineSeries {
        name: "p50".into(),
        points: p50,
    });
    chart.series.push(LineSeries {
        name: "p99".into(),
        points: p99,
    });
    let chart = Chart::Line(chart);
    std::fs::write(output, chart.to_svg()?)?;
    let png = output.with_extension("png");
    std::fs::write(&png, chart.to_png()?)?;
    println!("wrote {} and {}", output.display(), png.display());
    Ok(())
}
