//! PNG plots for reports: line panels (optional log axes, confidence bands, dashed bounds,
//! labelled vertical markers), interval panels (one labelled row per method: a point and its
//! confidence interval, as rliable draws aggregates) and heat maps with arrows (gridworld
//! values and policies).
//!
//! Everything is drawn into an in-memory RGB buffer with plotters and written with
//! [`crate::fsutil::write_atomic`], so a reader never sees half a PNG. Text uses the bundled
//! DejaVu Sans, so plots look the same on every machine, fonts installed or not.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context};
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Series colours, picked by index (colour-blind-safe Tableau-like palette).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One line of a [`LinePanel`].
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// (x, lower, upper) of a shaded band, e.g. a confidence interval; empty for none.
    pub band: Vec<(f64, f64, f64)>,
    /// Dashed line (for bounds and references).
    pub dashed: bool,
    /// Palette index; `None` uses the series' position.
    pub color: Option<usize>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, ..Self::default() }
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    pub fn color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    pub fn band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = band;
        self
    }
}

/// One chart: several series over shared axes.
#[derive(Clone, Debug, Default)]
pub struct LinePanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Log-scaled axes; non-positive values are left out of a log axis.
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Vertical dashed lines with a label (e.g. "hard argmax" at τ = 0's position).
    pub x_markers: Vec<(f64, String)>,
}

/// One heat map: `values[row][col]`, row 0 at the top; NaN cells are left blank.
#[derive(Clone, Debug, Default)]
pub struct HeatPanel {
    pub title: String,
    pub values: Vec<Vec<f64>>,
    /// `arrows[row][col] = (d_col, d_row)`; drawn from the cell centre, scaled so that the
    /// longest arrow of the panel spans 0.45 cells. Empty for no arrows.
    pub arrows: Vec<Vec<(f64, f64)>>,
    /// Print each cell's value.
    pub annotate: bool,
}

/// One row of an [`IntervalPanel`]: a label, a point estimate and its interval.
#[derive(Clone, Debug, Default)]
pub struct IntervalRow {
    pub label: String,
    pub point: f64,
    /// `None`: drawn as the point alone.
    pub interval: Option<(f64, f64)>,
    /// Palette index.
    pub color: usize,
}

/// Rows of intervals over one horizontal axis, first row on top.
#[derive(Clone, Debug, Default)]
pub struct IntervalPanel {
    pub title: String,
    pub x_label: String,
    pub rows: Vec<IntervalRow>,
    /// Fixed horizontal range (e.g. [0, 1] for probabilities); `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    /// A dashed vertical reference line (e.g. 0.5, a tie).
    pub x_marker: Option<f64>,
    /// Width of the label column, pixels.
    pub label_width: u32,
}

/// Draws interval panels side by side, each `width` pixels wide, into `path`.
pub fn interval_panels(path: &Path, panels: &[IntervalPanel], width: u32) -> anyhow::Result<()> {
    let rows = panels.iter().map(|p| p.rows.len()).max().unwrap_or(1).max(1);
    let height = 110 + 34 * rows as u32;
    render(path, (width * panels.len().max(1) as u32, height), |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_interval_panel(area, panel)?;
        }
        Ok(())
    })
}

fn draw_interval_panel(area: &Area<'_>, panel: &IntervalPanel) -> anyhow::Result<()> {
    let n = panel.rows.len().max(1) as i32;
    let (x0, x1) = panel.x_range.unwrap_or_else(|| {
        let (lo, hi) = padded_range(panel.rows.iter().flat_map(|r| {
            let (lo, hi) = r.interval.unwrap_or((r.point, r.point));
            [r.point, lo, hi]
        }));
        // At least 0.1 wide (scores are normalized to about [0, 1]), so that near-equal
        // values do not fill the panel with identical tick labels.
        let mid = (lo + hi) / 2.0;
        if hi - lo < 0.1 { (mid - 0.05, mid + 0.05) } else { (lo, hi) }
    });
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(panel.label_width)
        // A segmented axis has one segment more than its range: 0..n−1 gives n rows.
        .build_cartesian_2d(x0..x1, (0..n - 1).into_segmented())
        .map_err(plot_err)?;
    // Row 0 on top: segment i holds row n − 1 − i.
    let label_of = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if *i >= 0 && *i < n => {
            panel.rows.get((n - 1 - i) as usize).map_or(String::new(), |r| r.label.clone())
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .x_label_formatter(&|v| tick_label(false, *v))
        .y_label_formatter(&label_of)
        .y_labels(n as usize)
        .label_style((FONT, 13))
        .disable_y_mesh()
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    if let Some(m) = panel.x_marker {
        let grey = RGBColor(90, 90, 90);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(m, SegmentValue::Exact(0)), (m, SegmentValue::Exact(n))],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(plot_err)?;
    }
    let tick = 0.004 * (x1 - x0);
    for (k, row) in panel.rows.iter().enumerate() {
        let i = n - 1 - k as i32;
        let color = PALETTE[row.color % PALETTE.len()];
        let (lo, hi) = row.interval.unwrap_or((row.point, row.point));
        let mut bar = Rectangle::new([(lo, SegmentValue::Exact(i)), (hi, SegmentValue::Exact(i + 1))], color.mix(0.55).filled());
        bar.set_margin(7, 7, 0, 0);
        let mut point = Rectangle::new(
            [(row.point - tick, SegmentValue::Exact(i)), (row.point + tick, SegmentValue::Exact(i + 1))],
            BLACK.filled(),
        );
        point.set_margin(4, 4, 0, 0);
        chart.draw_series([bar, point]).map_err(plot_err)?;
    }
    Ok(())
}

/// Draws `panels` in a grid of `columns` columns, each panel 640×420 pixels, into `path`.
pub fn line_panels(path: &Path, panels: &[LinePanel], columns: usize) -> anyhow::Result<()> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns);
    render(path, (640 * columns as u32, 420 * rows.max(1) as u32), |root| {
        let areas = root.split_evenly((rows.max(1), columns));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_line_panel(area, panel)?;
        }
        Ok(())
    })
}

/// Draws heat maps side by side into `path`, each with its own colour scale (given in its title).
pub fn heat_panels(path: &Path, panels: &[HeatPanel]) -> anyhow::Result<()> {
    let (rows, cols) = panels
        .first()
        .map(|p| (p.values.len(), p.values.first().map_or(0, Vec::len)))
        .ok_or_else(|| anyhow!("heat map: no panels to draw"))?;
    if rows == 0 || cols == 0 {
        return Err(anyhow!("heat map: empty grid"));
    }
    let cell = (560 / cols.max(rows)).clamp(24, 80) as u32;
    let (w, h) = (cell * cols as u32 + 40, cell * rows as u32 + 90);
    render(path, (w * panels.len() as u32, h), |root| {
        let areas = root.split_evenly((1, panels.len()));
        for (panel, area) in panels.iter().zip(&areas) {
            let finite = panel.values.iter().flatten().copied().filter(|v| v.is_finite());
            let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            draw_heat_panel(area, panel, (lo, hi), cell)?;
        }
        Ok(())
    })
}

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

pub(crate) fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    REGISTER.call_once(|| {
        // The bundled font is valid; if registration failed anyway, drawing text reports it.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        draw(&root).with_context(|| format!("drawing {}", path.display()))?;
        root.present().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    crate::fsutil::write_atomic(path, &encode_png(w, h, &buf)?)
}

/// PNG bytes of an 8-bit RGB buffer of `w`×`h` pixels.
pub(crate) fn encode_png(w: u32, h: u32, rgb: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut png_bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut png_bytes, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("encoding PNG")?;
    writer.write_image_data(rgb).context("encoding PNG")?;
    writer.finish().context("encoding PNG")?;
    Ok(png_bytes)
}

/// An arrow from `from` along the unit vector `(ux, uy)`, `len` long, with a two-stroke head
/// of size `head`: the shaft's and the head's points, for two `PathElement`s.
pub(crate) fn arrow(from: (f64, f64), (ux, uy): (f64, f64), len: f64, head: f64) -> [Vec<(f64, f64)>; 2] {
    let tip = (from.0 + ux * len, from.1 + uy * len);
    let back = |s: f64| (tip.0 - head * (ux * 0.8 - s * uy * 0.6), tip.1 - head * (uy * 0.8 + s * ux * 0.6));
    [vec![from, tip], vec![back(1.0), tip, back(-1.0)]]
}

pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("{e}")
}

/// Axis transform: log axes are drawn as log10 on a linear axis, labelled with real values.
fn axis(log: bool) -> impl Fn(f64) -> Option<f64> {
    move |v| match (log, v) {
        (true, v) if v > 0.0 && v.is_finite() => Some(v.log10()),
        (true, _) => None,
        (false, v) if v.is_finite() => Some(v),
        _ => None,
    }
}

fn tick_label(log: bool, v: f64) -> String {
    let real = if log { 10f64.powf(v) } else { v };
    // Rounding noise of a linear axis through zero (e.g. −1e-16) prints as 0.
    if real == 0.0 || (!log && real.abs() < 1e-9) {
        "0".into()
    } else if real.abs() >= 1e4 || real.abs() < if log { 1e-2 } else { 1e-3 } {
        format!("{real:.0e}")
    } else {
        format!("{}", (real * 1000.0).round() / 1000.0)
    }
}

fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

fn draw_line_panel(area: &Area<'_>, panel: &LinePanel) -> anyhow::Result<()> {
    let (tx, ty) = (axis(panel.log_x), axis(panel.log_y));
    let xs = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0).chain(s.band.iter().map(|b| b.0)))
        .chain(panel.x_markers.iter().map(|m| m.0))
        .filter_map(&tx);
    let ys = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])))
        .filter_map(&ty);
    let (x0, x1) = padded_range(xs);
    let (y0, y1) = padded_range(ys);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_err)?;
    let (lx, ly) = (panel.log_x, panel.log_y);
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&|v| tick_label(lx, *v))
        .y_label_formatter(&|v| tick_label(ly, *v))
        .label_style((FONT, 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    for (x, label) in &panel.x_markers {
        if let Some(x) = tx(*x) {
            let grey = RGBColor(90, 90, 90);
            chart
                .draw_series(DashedLineSeries::new(vec![(x, y0), (x, y1)], 6, 4, grey.stroke_width(1)))
                .map_err(plot_err)?;
            chart
                // Near the bottom: the legend sits in the upper left.
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (x, y0 + 0.08 * (y1 - y0)),
                    (FONT, 12).into_font().color(&grey),
                )))
                .map_err(plot_err)?;
        }
    }
    for (i, s) in panel.series.iter().enumerate() {
        let color = PALETTE[s.color.unwrap_or(i) % PALETTE.len()];
        let band: Vec<(f64, f64, f64)> =
            s.band.iter().filter_map(|&(x, lo, hi)| Some((tx(x)?, ty(lo)?, ty(hi)?))).collect();
        if band.len() >= 2 {
            let outline: Vec<(f64, f64)> =
                band.iter().map(|b| (b.0, b.2)).chain(band.iter().rev().map(|b| (b.0, b.1))).collect();
            chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.2).filled()))).map_err(plot_err)?;
        }
        let pts: Vec<(f64, f64)> = s.points.iter().filter_map(|&(x, y)| Some((tx(x)?, ty(y)?))).collect();
        let style = color.stroke_width(2);
        let anno = if s.dashed {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style)).map_err(plot_err)?
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(plot_err)?
        };
        if !s.label.is_empty() {
            anno.label(s.label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        // Markers only where they can be told apart (sweeps, not dense curves).
        if !s.dashed && pts.len() <= 60 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
    }
    if panel.series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Viridis-like colour for t ∈ [0, 1], interpolated between five anchors.
fn colormap(t: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw_heat_panel(area: &Area<'_>, panel: &HeatPanel, (lo, hi): (f64, f64), cell: u32) -> anyhow::Result<()> {
    let rows = panel.values.len();
    let cols = panel.values.first().map_or(0, Vec::len);
    let title = format!("{}  [{lo:.3} .. {hi:.3}]", panel.title);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 15))
        .margin(15)
        .build_cartesian_2d(0f64..cols as f64, rows as f64..0f64)
        .map_err(plot_err)?;
    let span = if hi > lo { hi - lo } else { 1.0 };
    for (r, row) in panel.values.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let color = colormap((v - lo) / span);
            let (x, y) = (c as f64, r as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new([(x, y), (x + 1.0, y + 1.0)], color.filled())))
                .map_err(plot_err)?;
            if panel.annotate {
                let ink = if (v - lo) / span > 0.6 { BLACK } else { WHITE };
                let size = (cell as f64 * 0.22).max(8.0);
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{v:.2}"),
                        (x + 0.05, y + 0.05),
                        (FONT, size).into_font().color(&ink),
                    )))
                    .map_err(plot_err)?;
            }
        }
    }
    let longest = panel.arrows.iter().flatten().map(|&(dc, dr)| (dc * dc + dr * dr).sqrt()).fold(0.0, f64::max);
    for (r, row) in panel.arrows.iter().enumerate() {
        for (c, &(dc, dr)) in row.iter().enumerate() {
            let len = (dc * dc + dr * dr).sqrt();
            if len.is_nan() || len <= 1e-3 * longest {
                continue;
            }
            // Arrow from the cell centre with a two-stroke head.
            let (cx, cy) = (c as f64 + 0.5, r as f64 + 0.55);
            let stroke = RGBColor(250, 250, 250).stroke_width(2);
            let [shaft, head] = arrow((cx, cy), (dc / len, dr / len), 0.45 * len / longest, 0.14);
            chart
                .draw_series([PathElement::new(shaft, stroke), PathElement::new(head, stroke)])
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Circle::new((cx, cy), 2, RGBColor(20, 20, 20).filled())))
                .map_err(plot_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_files_with_the_png_signature() {
        let dir = std::env::temp_dir().join(format!("tame-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = dir.join("line.png");
        let panel = LinePanel {
            title: "t".into(),
            x_label: "tau".into(),
            y_label: "return".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series::new("mean", vec![(0.01, 1.0), (0.1, 2.0), (1.0, 1.5)])
                    .band(vec![(0.01, 0.5, 1.5), (0.1, 1.5, 2.5), (1.0, 1.0, 2.0)]),
                Series::new("bound", vec![(0.01, 3.0), (1.0, 3.0)]).dashed(),
            ],
            x_markers: vec![(0.005, "hard argmax".into())],
        };
        line_panels(&line, &[panel.clone(), panel], 2).unwrap();
        let heat = dir.join("heat.png");
        let hp = HeatPanel {
            title: "V".into(),
            values: vec![vec![0.0, 0.5], vec![f64::NAN, 1.0]],
            arrows: vec![vec![(1.0, 0.0), (0.0, 1.0)], vec![(0.0, 0.0), (-0.3, -0.3)]],
            annotate: true,
        };
        heat_panels(&heat, &[hp.clone(), hp]).unwrap();
        let iv = dir.join("intervals.png");
        let ip = IntervalPanel {
            title: "IQM".into(),
            x_label: "score".into(),
            rows: vec![
                IntervalRow { label: "a".into(), point: 0.5, interval: Some((0.2, 0.7)), color: 0 },
                IntervalRow { label: "b".into(), point: 0.9, interval: None, color: 1 },
            ],
            x_range: None,
            x_marker: Some(0.5),
            label_width: 80,
        };
        interval_panels(&iv, &[ip.clone(), ip], 400).unwrap();
        for p in [line, heat, iv] {
            let bytes = std::fs::read(&p).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(bytes.len() > 2000, "{} is only {} bytes", p.display(), bytes.len());
        }
        std::fs::remove_dir_all(&dir).ok();
        assert!(heat_panels(&dir.join("x.png"), &[]).is_err());
    }
}
