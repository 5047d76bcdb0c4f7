//! Hand-written SVG charts (grouped bars, lines) for the evaluation and performance reports, so
//! reports need no plotting dependency. Output is a self-contained SVG string; nothing here does I/O.

use std::fmt::Write as _;

const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];
const MARGIN_LEFT: f64 = 72.0;
const MARGIN_RIGHT: f64 = 170.0;
const MARGIN_TOP: f64 = 48.0;
const MARGIN_BOTTOM: f64 = 96.0;

/// One named series of a bar chart: one value per category (non-finite values are not drawn).
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub values: Vec<f64>,
}

/// A grouped bar chart: one group per category, one bar per series within a group.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Print each bar's value above it.
    pub value_labels: bool,
    pub width: f64,
    pub height: f64,
}

impl BarChart {
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
            value_labels: true,
            width: 860.0,
            height: 460.0,
        }
    }
}

/// How the x axis of a line chart maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Base-10 logarithmic; points with x ≤ 0 are not drawn.
    Log,
}

/// One named polyline of `(x, y)` points, drawn in the given order.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart with markers, e.g. recall@K per source or latency vs throughput.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<LineSeries>,
    pub x_scale: Scale,
    pub width: f64,
    pub height: f64,
}

impl LineChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            x_scale: Scale::Linear,
            width: 860.0,
            height: 460.0,
        }
    }
}

/// Escapes text for SVG element content and attribute values.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// "Nice" axis ticks (steps of 1, 2 or 5 × 10ⁿ) covering `[lo, hi]`, about `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let (lo, hi) = if !lo.is_finite() || !hi.is_finite() {
        (0.0, 1.0)
    } else if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / target.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return vec![lo, hi];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() as i64;
    let end = (hi / step).ceil() as i64;
    (start..=end).map(|i| i as f64 * step).collect()
}

/// Tick label with as many decimals as the tick step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// About three significant digits, for value annotations and tooltips.
fn value_label(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || (a >= 1.0 && v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Common frame: header, title, plot area box, y axis with grid and label.
struct Frame {
    svg: String,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    y_lo: f64,
    y_hi: f64,
}

impl Frame {
    fn new(width: f64, height: f64, title: &str, y_label: &str, y_ticks: &[f64]) -> Self {
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
            width / 2.0,
            escape_xml(title)
        );
        let (x0, x1) = (MARGIN_LEFT, (width - MARGIN_RIGHT).max(MARGIN_LEFT + 10.0));
        let (y0, y1) = (MARGIN_TOP, (height - MARGIN_BOTTOM).max(MARGIN_TOP + 10.0));
        let y_lo = y_ticks.first().copied().unwrap_or(0.0);
        let y_hi = y_ticks.last().copied().unwrap_or(1.0);
        let mut f = Self {
            svg,
            x0,
            x1,
            y0,
            y1,
            y_lo,
            y_hi,
        };
        let step = if y_ticks.len() > 1 {
            y_ticks[1] - y_ticks[0]
        } else {
            1.0
        };
        f.svg.push_str("<g class=\"y-axis\">\n");
        for &t in y_ticks {
            let y = f.y(t);
            let _ = writeln!(
                f.svg,
                "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 6.0,
                y + 4.0,
                tick_label(t, step)
            );
        }
        let _ = writeln!(
            f.svg,
            r#"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>
<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>
</g>"#,
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            escape_xml(y_label)
        );
        f
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.y_hi - self.y_lo).max(f64::MIN_POSITIVE);
        self.y1 - (v - self.y_lo) / span * (self.y1 - self.y0)
    }

    fn legend<'a>(&mut self, names: impl Iterator<Item = &'a str>, line: bool) {
        self.svg.push_str("<g class=\"legend\">\n");
        for (i, name) in names.enumerate() {
            let (x, y) = (self.x1 + 16.0, self.y0 + 8.0 + 20.0 * i as f64);
            let color = PALETTE[i % PALETTE.len()];
            if line {
                let _ = writeln!(
                    self.svg,
                    r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"/>"#,
                    x + 18.0
                );
            } else {
                let _ = writeln!(
                    self.svg,
                    r#"<rect x="{x}" y="{}" width="14" height="12" fill="{color}"/>"#,
                    y - 6.0
                );
            }
            let _ = writeln!(
                self.svg,
                r#"<text x="{}" y="{}">{}</text>"#,
                x + 24.0,
                y + 4.0,
                escape_xml(name)
            );
        }
        self.svg.push_str("</g>\n");
    }

    fn finish(mut self) -> String {
        self.svg.push_str("</svg>\n");
        self.svg
    }
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Renders a grouped bar chart. Bars grow from zero, so the y range always includes 0.
pub fn bar_chart(chart: &BarChart) -> String {
    let (lo, hi) = finite_range(chart.series.iter().flat_map(|s| s.values.iter().copied()))
        .unwrap_or((0.0, 1.0));
    let ticks = nice_ticks(lo.min(0.0), hi.max(0.0), 5);
    let mut f = Frame::new(
        chart.width,
        chart.height,
        &chart.title,
        &chart.y_label,
        &ticks,
    );
    let n_cat = chart.categories.len().max(1);
    let n_ser = chart.series.len().max(1);
    let group_w = (f.x1 - f.x0) / n_cat as f64;
    let bar_w = group_w * 0.8 / n_ser as f64;
    let zero = f.y(0.0);
    let rotate = chart
        .categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0) as f64
        * 7.0
        > group_w;
    f.svg.push_str("<g class=\"x-axis\">\n");
    let _ = writeln!(
        f.svg,
        r#"<line x1="{}" y1="{zero:.1}" x2="{}" y2="{zero:.1}" stroke="black"/>"#,
        f.x0, f.x1
    );
    for (c, name) in chart.categories.iter().enumerate() {
        let cx = f.x0 + group_w * (c as f64 + 0.5);
        let ly = f.y1 + 16.0;
        let transform = if rotate {
            format!(r#" transform="rotate(-30 {cx:.1} {ly:.1})""#)
        } else {
            String::new()
        };
        let anchor = if rotate { "end" } else { "middle" };
        let _ = writeln!(
            f.svg,
            r#"<text x="{cx:.1}" y="{ly:.1}" text-anchor="{anchor}"{transform}>{}</text>"#,
            escape_xml(name)
        );
    }
    f.svg.push_str("</g>\n<g class=\"bars\">\n");
    for (s, series) in chart.series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        for (c, &v) in series
            .values
            .iter()
            .enumerate()
            .take(chart.categories.len())
        {
            if !v.is_finite() {
                continue;
            }
            let x = f.x0 + group_w * c as f64 + group_w * 0.1 + bar_w * s as f64;
            let y = f.y(v);
            let (top, h) = (y.min(zero), (y - zero).abs());
            let _ = writeln!(
                f.svg,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{}: {}</title></rect>"#,
                bar_w * 0.95,
                escape_xml(&series.name),
                value_label(v)
            );
            if chart.value_labels {
                let _ = writeln!(
                    f.svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                    x + bar_w * 0.475,
                    top - 3.0,
                    value_label(v)
                );
            }
        }
    }
    f.svg.push_str("</g>\n");
    f.legend(chart.series.iter().map(|s| s.name.as_str()), false);
    f.finish()
}

/// Log-scale ticks: powers of ten, plus 2× and 5× when the range spans few decades.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (e0, e1) = (
        lo.log10().floor() as i32,
        hi.log10().ceil().max(lo.log10().floor() + 1.0) as i32,
    );
    let mults: &[f64] = if e1 - e0 <= 2 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks: Vec<f64> = (e0..=e1)
        .flat_map(|e| mults.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|&t| t >= 10f64.powi(e0) && t <= 10f64.powi(e1))
        .collect();
    ticks.dedup();
    ticks
}

/// Renders a line chart with point markers and a legend.
pub fn line_chart(chart: &LineChart) -> String {
    let log = chart.x_scale == Scale::Log;
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log || x > 0.0);
    let pts = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(usable)
    };
    let (ylo, yhi) = finite_range(pts().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let y_ticks = nice_ticks(ylo.min(0.0), yhi, 5);
    let (xlo, xhi) =
        finite_range(pts().map(|p| p.0)).unwrap_or(if log { (1.0, 10.0) } else { (0.0, 1.0) });
    let x_ticks = if log {
        log_ticks(xlo, xhi)
    } else {
        nice_ticks(xlo, xhi, 6)
    };
    let mut f = Frame::new(
        chart.width,
        chart.height,
        &chart.title,
        &chart.y_label,
        &y_ticks,
    );
    let map_x = |v: f64| if log { v.log10() } else { v };
    let (dlo, dhi) = (
        map_x(x_ticks.first().copied().unwrap_or(xlo)),
        map_x(x_ticks.last().copied().unwrap_or(xhi)),
    );
    let (x0, x1) = (f.x0, f.x1);
    let px = |v: f64| x0 + (map_x(v) - dlo) / (dhi - dlo).max(f64::MIN_POSITIVE) * (x1 - x0);
    let x_step = if x_ticks.len() > 1 {
        x_ticks[1] - x_ticks[0]
    } else {
        1.0
    };
    f.svg.push_str("<g class=\"x-axis\">\n");
    let _ = writeln!(
        f.svg,
        r#"<line x1="{x0}" y1="{}" x2="{x1}" y2="{}" stroke="black"/>"#,
        f.y1, f.y1
    );
    for &t in &x_ticks {
        let x = px(t);
        let label = if log {
            value_label(t)
        } else {
            tick_label(t, x_step)
        };
        let _ = writeln!(
            f.svg,
            r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="black"/>
<text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            f.y1,
            f.y1 + 5.0,
            f.y1 + 18.0
        );
    }
    let _ = writeln!(
        f.svg,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>
</g>
<g class="lines">"#,
        (x0 + x1) / 2.0,
        f.y1 + 44.0,
        escape_xml(&chart.x_label)
    );
    for (s, series) in chart.series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let coords: Vec<(f64, f64, f64, f64)> = series
            .points
            .iter()
            .filter(|p| usable(p))
            .map(|&(x, y)| (px(x), f.y(y), x, y))
            .collect();
        let path: Vec<String> = coords
            .iter()
            .map(|(x, y, _, _)| format!("{x:.1},{y:.1}"))
            .collect();
        if coords.len() > 1 {
            let _ = writeln!(
                f.svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
        }
        for (x, y, vx, vy) in coords {
            let _ = writeln!(
                f.svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"><title>{}: ({}, {})</title></circle>"#,
                escape_xml(&series.name),
                value_label(vx),
                value_label(vy)
            );
        }
    }
    f.svg.push_str("</g>\n");
    f.legend(chart.series.iter().map(|s| s.name.as_str()), true);
    f.finish()
}

/// Test helper shared with the report tests: a tiny well-formedness checker.
#[cfg(test)]
pub(crate) mod test_support {
    /// Checks that tags are balanced and properly nested, there is one root element, and every `&`
    /// starts a known entity. Not a full XML parser, enough for the SVG this module writes.
    pub(crate) fn check_well_formed(doc: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt])?;
            rest = &rest[lt..];
            if let Some(body) = rest.strip_prefix("<!--") {
                let end = body.find("-->").ok_or("unterminated comment")?;
                rest = &body[end + 3..];
                continue;
            }
            let gt = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            if tag.starts_with('?') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("");
            if name.is_empty() {
                return Err(format!("bad tag <{tag}>"));
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        check_text(rest)?;
        match (stack.is_empty(), roots) {
            (true, 1) => Ok(()),
            (false, _) => Err(format!("unclosed tags: {stack:?}")),
            (true, n) => Err(format!("{n} root elements")),
        }
    }

    fn check_text(text: &str) -> Result<(), String> {
        for (i, _) in text.match_indices('&') {
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
                .iter()
                .any(|e| text[i..].starts_with(e));
            if !ok {
                return Err(format!("raw '&' in {text:?}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::check_well_formed;
    use super::*;

    #[test]
    fn checker_rejects_malformed_documents() {
        assert!(check_well_formed("<svg><g></g></svg>").is_ok());
        assert!(check_well_formed("<svg><rect/><text>a &amp; b</text></svg>").is_ok());
        assert!(check_well_formed("<svg><g></svg>").is_err());
        assert!(check_well_formed("<svg><g></g>").is_err());
        assert!(check_well_formed("<svg></svg><svg></svg>").is_err());
        assert!(check_well_formed("<svg><text>a & b</text></svg>").is_err());
    }

    #[test]
    fn nice_ticks_cover_range_with_round_steps() {
        assert_eq!(
            nice_ticks(0.0, 0.43, 5),
            vec![0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
        );
        assert_eq!(
            nice_ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        let t = nice_ticks(3.0, 3.0, 5);
        assert!(t.first().unwrap() <= &3.0 && t.last().unwrap() >= &3.0 && t.len() >= 2);
        assert_eq!(nice_ticks(f64::NAN, 1.0, 5).first(), Some(&0.0));
        assert_eq!(
            nice_ticks(-f64::MAX, f64::MAX, 5),
            vec![-f64::MAX, f64::MAX]
        );
        assert_eq!(
            log_ticks(10.0, 1000.0),
            vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert_eq!(log_ticks(1.0, 1e5), vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5]);
    }

    #[test]
    fn bar_chart_is_well_formed_and_labelled() {
        let mut c = BarChart::new("NDCG & recall <K>", "score");
        c.categories = vec!["full".into(), "without_cf".into()];
        c.series = vec![
            BarSeries {
                name: "NDCG@10".into(),
                values: vec![0.31, 0.25],
            },
            BarSeries {
                name: "Recall@10".into(),
                values: vec![0.42, f64::NAN],
            },
        ];
        let svg = bar_chart(&c);
        check_well_formed(&svg).unwrap();
        for label in [
            "NDCG &amp; recall &lt;K&gt;",
            ">full<",
            ">without_cf<",
            ">NDCG@10<",
            ">Recall@10<",
            ">score<",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 3 + 2,
            "background + 3 finite bars + 2 legend keys"
        );
        assert!(svg.contains(">0.310<"));
    }

    #[test]
    fn bar_heights_are_proportional() {
        let mut c = BarChart::new("t", "y");
        c.categories = vec!["a".into(), "b".into()];
        c.series = vec![BarSeries {
            name: "s".into(),
            values: vec![1.0, 2.0],
        }];
        let svg = bar_chart(&c);
        let heights: Vec<f64> = svg
            .lines()
            .filter(|l| l.contains("<title>s:"))
            .map(|l| {
                let h = l.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(heights.len(), 2);
        assert!((heights[1] / heights[0] - 2.0).abs() < 0.01, "{heights:?}");
    }

    #[test]
    fn line_chart_log_and_linear_are_well_formed() {
        let mut c = LineChart::new("Recall@K", "K", "recall");
        c.x_scale = Scale::Log;
        c.series = vec![
            LineSeries {
                name: "cf".into(),
                points: vec![(10.0, 0.1), (100.0, 0.3), (1000.0, 0.5)],
            },
            LineSeries {
                name: "merged".into(),
                points: vec![(0.0, 0.2), (10.0, 0.2), (1000.0, 0.6)],
            },
        ];
        let svg = line_chart(&c);
        check_well_formed(&svg).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches("<circle").count(),
            5,
            "x = 0 is skipped on a log axis"
        );
        for label in [">cf<", ">merged<", ">K<", ">recall<", ">1000<"] {
            assert!(svg.contains(label), "missing {label}");
        }
        c.x_scale = Scale::Linear;
        c.series.push(LineSeries {
            name: "empty".into(),
            points: vec![],
        });
        let svg = line_chart(&c);
        check_well_formed(&svg).unwrap();
        assert_eq!(svg.matches("<circle").count(), 6);
        check_well_formed(&line_chart(&LineChart::new("none", "x", "y"))).unwrap();
        check_well_formed(&bar_chart(&BarChart::new("none", "y"))).unwrap();
    }
}
