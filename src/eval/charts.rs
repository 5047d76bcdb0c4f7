//! Charts for the evaluation and load-test reports (grouped bars, lines with markers), drawn
//! with `plotters` as SVG and PNG. Text is laid out (and, in PNGs, rasterised) with the bundled
//! DejaVu Sans (`assets/fonts/`, Bitstream Vera licence), so a chart renders the same on a clean
//! machine with no fonts installed. Nothing here does I/O: callers write the bytes.

use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, DrawingBackend, SVGBackend};
use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind, IntoDrawingArea};
use plotters::element::{Circle, EmptyElement, PathElement, Rectangle, Text};
use plotters::series::LineSeries as PlotLine;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{
    BLACK, Color, FontStyle, FontTransform, IntoFont, RGBColor, TextStyle, WHITE,
};

/// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x00, 0x00),
];
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the bundled chart font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the PNG failed: {0}")]
    Png(#[from] png::EncodingError),
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Registers the bundled font with plotters once per process.
fn ensure_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

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
    pub width: u32,
    pub height: u32,
}

impl BarChart {
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
            value_labels: true,
            width: 860,
            height: 460,
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
    pub width: u32,
    pub height: u32,
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
            width: 860,
            height: 460,
        }
    }
}

/// Either kind of chart, rendered to SVG or PNG.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Bar(BarChart),
    Line(LineChart),
}

impl Chart {
    fn size(&self) -> (u32, u32) {
        let (w, h) = match self {
            Chart::Bar(c) => (c.width, c.height),
            Chart::Line(c) => (c.width, c.height),
        };
        (w.clamp(200, 4000), h.clamp(150, 4000))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError> {
        root.fill(&WHITE).map_err(draw_err)?;
        match self {
            Chart::Bar(c) => draw_bars(root, c)?,
            Chart::Line(c) => draw_lines(root, c)?,
        }
        root.present().map_err(draw_err)
    }

    /// A self-contained SVG document.
    pub fn to_svg(&self) -> Result<String, ChartError> {
        ensure_font()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(out)
    }

    /// An 8-bit RGB PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, ChartError> {
        ensure_font()?;
        let (w, h) = self.size();
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            self.draw(&root)?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

/// A bar chart as SVG.
pub fn bar_chart(chart: &BarChart) -> Result<String, ChartError> {
    Chart::Bar(chart.clone()).to_svg()
}

/// A line chart as SVG.
pub fn line_chart(chart: &LineChart) -> Result<String, ChartError> {
    Chart::Line(chart.clone()).to_svg()
}

/// "Nice" axis ticks (steps of 1, 2 or 5 × 10ⁿ) covering `[lo, hi]`, about `target` of them;
/// the first and last give an axis range with round ends.
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

/// About three significant digits, for value annotations and tick labels.
fn value_label(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        "0".into()
    } else if a >= 100.0 || (a >= 1.0 && v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Tick label with as many decimals as a tick step of `step` needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    let v = if v.abs() < step.abs() * 1e-9 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn text(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

fn first_last(ticks: &[f64], default: (f64, f64)) -> (f64, f64) {
    match (ticks.first(), ticks.last()) {
        (Some(&a), Some(&b)) if b > a => (a, b),
        _ => default,
    }
}

/// Grouped bars; bars grow from zero, so the y range always includes 0, with headroom above
/// the tallest bar for its value label and the legend.
fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &BarChart,
) -> Result<(), ChartError> {
    let (lo, hi) =
        finite_range(c.series.iter().flat_map(|s| s.values.iter().copied())).unwrap_or((0.0, 1.0));
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let ticks = nice_ticks(lo, hi + (hi - lo) * 0.25, 5);
    let (y_lo, y_hi) = first_last(&ticks, (0.0, 1.0));
    let y_step = (y_hi - y_lo) / 10.0;
    let n_cat = c.categories.len().max(1);
    let n_ser = c.series.len().max(1);
    let longest = c
        .categories
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let plot_w = c.width.saturating_sub(100).max(1);
    let rotate = longest * 7 > plot_w / n_cat as u32;
    let x_area = if rotate {
        (12 + longest * 6).min(c.height / 2)
    } else {
        36
    };
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, text(18))
        .margin(12)
        .x_label_area_size(x_area)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..n_cat as f64, y_lo..y_hi)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(6)
        .y_desc(c.y_label.as_str())
        .y_label_formatter(&|v| tick_label(*v, y_step))
        .label_style(text(12))
        .axis_desc_style(text(13))
        .draw()
        .map_err(draw_err)?;
    let bar_w = 0.8 / n_ser as f64;
    // A value label (~5 characters of 10 px text) only where it fits over its bar.
    let bar_px = f64::from(plot_w) / n_cat as f64 * bar_w;
    let value_labels = c.value_labels && bar_px >= 30.0;
    for (s, series) in c.series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let bars = series
            .values
            .iter()
            .enumerate()
            .take(c.categories.len())
            .filter(|(_, v)| v.is_finite())
            .map(|(ci, &v)| (ci as f64 + 0.1 + bar_w * s as f64, v));
        chart
            .draw_series(
                bars.clone().map(|(x, v)| {
                    Rectangle::new([(x, 0.0), (x + bar_w * 0.95, v)], color.filled())
                }),
            )
            .map_err(draw_err)?
            .label(series.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        if value_labels {
            let style = text(10).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(bars.map(|(x, v)| {
                    EmptyElement::at((x + bar_w * 0.475, v.max(0.0)))
                        + Text::new(value_label(v), (0, -3), style.clone())
                }))
                .map_err(draw_err)?;
        }
    }
    // Category names under their groups (drawn on the root: they sit outside the plot area).
    let style = if rotate {
        text(12)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Right, VPos::Center))
    } else {
        text(12).pos(Pos::new(HPos::Center, VPos::Top))
    };
    for (ci, name) in c.categories.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(ci as f64 + 0.5, y_lo));
        root.draw(&Text::new(name.clone(), (px, py + 6), style.clone()))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(text(12))
        .draw()
        .map_err(draw_err)
}

/// Lines with a marker per point; a log x axis when asked for.
fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &LineChart,
) -> Result<(), ChartError> {
    let log = c.x_scale == Scale::Log;
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log || x > 0.0);
    let series: Vec<(&str, Vec<(f64, f64)>)> = c
        .series
        .iter()
        .map(|s| {
            let pts = s.points.iter().copied().filter(usable).collect();
            (s.name.as_str(), pts)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let (ylo, yhi) = finite_range(all().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let y = first_last(&nice_ticks(ylo.min(0.0), yhi, 5), (0.0, 1.0));
    let y_step = (y.1 - y.0) / 10.0;
    let builder = |root| {
        let mut b = ChartBuilder::on(root);
        b.caption(&c.title, text(18))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64);
        b
    };
    if log {
        let (xlo, xhi) = finite_range(all().map(|p| p.0)).unwrap_or((1.0, 10.0));
        // The data's own range (plotters picks the decade ticks); one point gets a decade.
        let (xlo, xhi) = if xhi > xlo {
            (xlo, xhi)
        } else {
            first_last(&log_ticks(xlo, xhi), (1.0, 10.0))
        };
        let mut chart = builder(root)
            .build_cartesian_2d((xlo..xhi).log_scale(), y.0..y.1)
            .map_err(draw_err)?;
        plot_lines(&mut chart, c, &series, y_step)
    } else {
        let (xlo, xhi) = finite_range(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
        let x = first_last(&nice_ticks(xlo, xhi, 6), (0.0, 1.0));
        let mut chart = builder(root)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(draw_err)?;
        plot_lines(&mut chart, c, &series, y_step)
    }
}

fn plot_lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    c: &LineChart,
    series: &[(&str, Vec<(f64, f64)>)],
    y_step: f64,
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&|v| value_label(*v))
        .y_label_formatter(&|v| tick_label(*v, y_step))
        .label_style(text(12))
        .axis_desc_style(text(13))
        .draw()
        .map_err(draw_err)?;
    for (s, (name, points)) in series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        chart
            .draw_series(PlotLine::new(points.clone(), color.stroke_width(2)))
            .map_err(draw_err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(text(12))
        .draw()
        .map_err(draw_err)
}

/// Test helpers shared with the report tests: the charts parsed back, SVG as XML and PNG as
/// pixels, so tests check what was drawn rather than that a file exists.
#[cfg(test)]
pub(crate) mod test_support {
    use super::PALETTE;

    /// What an SVG chart holds: every `<text>`, and the shapes drawn in each palette colour.
    #[derive(Debug)]
    pub(crate) struct SvgSummary {
        pub texts: Vec<String>,
        /// Per palette colour: filled `<rect>`s (bars and bar legend keys).
        pub rects: Vec<usize>,
        /// Per palette colour: `<circle>`s (line markers).
        pub circles: Vec<usize>,
        /// Per palette colour: stroked `<polyline>`s (lines and line legend keys).
        pub polylines: Vec<usize>,
        /// `(x, y, width, height)` of the rects in each palette colour.
        pub rect_boxes: Vec<Vec<(f64, f64, f64, f64)>>,
    }

    fn hex(i: usize) -> String {
        let c = PALETTE[i];
        format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
    }

    /// Parses `doc` as XML (an error unless it is well-formed with an `<svg>` root).
    pub(crate) fn parse_svg(doc: &str) -> Result<SvgSummary, String> {
        let xml = roxmltree::Document::parse(doc).map_err(|e| e.to_string())?;
        if xml.root_element().tag_name().name() != "svg" {
            return Err("root is not <svg>".into());
        }
        let mut s = SvgSummary {
            texts: Vec::new(),
            rects: vec![0; PALETTE.len()],
            circles: vec![0; PALETTE.len()],
            polylines: vec![0; PALETTE.len()],
            rect_boxes: vec![Vec::new(); PALETTE.len()],
        };
        let colour = |v: Option<&str>| {
            let v = v?.to_ascii_lowercase();
            (0..PALETTE.len()).find(|&i| hex(i) == v)
        };
        let num = |n: &roxmltree::Node, a: &str| {
            n.attribute(a)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        for n in xml.descendants().filter(|n| n.is_element()) {
            match n.tag_name().name() {
                "text" => s.texts.push(n.text().unwrap_or("").trim().to_string()),
                "rect" => {
                    if let Some(i) = colour(n.attribute("fill")) {
                        s.rects[i] += 1;
                        s.rect_boxes[i].push((
                            num(&n, "x"),
                            num(&n, "y"),
                            num(&n, "width"),
                            num(&n, "height"),
                        ));
                    }
                }
                "circle" => {
                    if let Some(i) = colour(n.attribute("fill")) {
                        s.circles[i] += 1;
                    }
                }
                "polyline" => {
                    if let Some(i) = colour(n.attribute("stroke")) {
                        s.polylines[i] += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Decodes a PNG: `(width, height, pixels of each palette colour, dark text-like pixels)`.
    pub(crate) fn parse_png(bytes: &[u8]) -> Result<(u32, u32, Vec<usize>, usize), String> {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        let size = reader.output_buffer_size().ok_or("PNG too large")?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
            return Err(format!(
                "unexpected format {:?}",
                (info.color_type, info.bit_depth)
            ));
        }
        let mut per_colour = vec![0; PALETTE.len()];
        let mut dark = 0;
        for px in buf[..info.buffer_size()].chunks_exact(3) {
            if let Some(i) = PALETTE
                .iter()
                .position(|c| (c.0, c.1, c.2) == (px[0], px[1], px[2]))
            {
                per_colour[i] += 1;
            } else if px.iter().all(|&v| v < 100) {
                dark += 1;
            }
        }
        Ok((info.width, info.height, per_colour, dark))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{parse_png, parse_svg};
    use super::*;

    // Cost of each test here: a few small renders; well under a second.

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

    fn ablation_like() -> BarChart {
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
        c
    }

    #[test]
    fn bar_chart_svg_has_title_axes_legend_and_one_bar_per_value() {
        let svg = bar_chart(&ablation_like()).unwrap();
        let s = parse_svg(&svg).unwrap();
        for label in [
            "NDCG & recall <K>",
            "full",
            "without_cf",
            "NDCG@10",
            "Recall@10",
            "score",
        ] {
            assert!(
                s.texts.iter().any(|t| t == label),
                "missing {label}: {:?}",
                s.texts
            );
        }
        // One rect per finite value plus one legend key per series.
        assert_eq!((s.rects[0], s.rects[1]), (2 + 1, 1 + 1), "{s:?}");
        assert!(s.texts.iter().any(|t| t == "0.310"), "value labels");
        // Y tick labels from 0 to above the tallest bar, with the step's decimals.
        assert!(s.texts.iter().any(|t| t == "0.00"), "{:?}", s.texts);
        assert!(s.texts.iter().any(|t| t == "0.40"), "{:?}", s.texts);
    }

    #[test]
    fn bar_heights_are_proportional_to_values() {
        let mut c = BarChart::new("t", "y");
        c.categories = vec!["a".into(), "b".into()];
        c.series = vec![BarSeries {
            name: "s".into(),
            values: vec![1.0, 2.0],
        }];
        let s = parse_svg(&bar_chart(&c).unwrap()).unwrap();
        // The bars share the baseline, so the taller one is the 2.0 bar; the legend key is small.
        let mut heights: Vec<f64> = s.rect_boxes[0].iter().map(|b| b.3).collect();
        heights.sort_by(f64::total_cmp);
        let (h1, h2) = (heights[heights.len() - 2], heights[heights.len() - 1]);
        assert!((h2 / h1 - 2.0).abs() < 0.05, "{heights:?}");
    }

    #[test]
    fn line_chart_svg_log_and_linear_have_a_marker_per_point() {
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
        let s = parse_svg(&line_chart(&c).unwrap()).unwrap();
        assert_eq!(s.circles[..2], [3, 2], "x = 0 is skipped on a log axis");
        assert!(s.polylines[0] >= 1 && s.polylines[1] >= 1);
        for label in ["cf", "merged", "K", "recall", "1000", "Recall@K"] {
            assert!(
                s.texts.iter().any(|t| t == label),
                "missing {label}: {:?}",
                s.texts
            );
        }
        c.x_scale = Scale::Linear;
        c.series.push(LineSeries {
            name: "empty".into(),
            points: vec![],
        });
        let s = parse_svg(&line_chart(&c).unwrap()).unwrap();
        assert_eq!(s.circles[..3], [3, 3, 0]);
        assert!(s.texts.iter().any(|t| t == "empty"));
        parse_svg(&line_chart(&LineChart::new("none", "x", "y")).unwrap()).unwrap();
        parse_svg(&bar_chart(&BarChart::new("none", "y")).unwrap()).unwrap();
    }

    #[test]
    fn png_is_decodable_with_each_series_colour_and_rendered_text() {
        let png = Chart::Bar(ablation_like()).to_png().unwrap();
        let (w, h, colours, dark) = parse_png(&png).unwrap();
        assert_eq!((w, h), (860, 460));
        assert!(colours[0] > 1000 && colours[1] > 1000, "{colours:?}");
        assert_eq!(colours[2], 0, "only two series");
        assert!(dark > 500, "text and axes rasterised: {dark} dark pixels");
        let mut line = LineChart::new("L", "x", "y");
        line.series = vec![LineSeries {
            name: "p50".into(),
            points: vec![(1.0, 2.0), (2.0, 3.0)],
        }];
        let (_, _, colours, _) = parse_png(&Chart::Line(line).to_png().unwrap()).unwrap();
        assert!(colours[0] > 50, "{colours:?}");
        assert!(parse_png(b"not a png").is_err());
    }
}
