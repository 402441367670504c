//! PNG plot of the Association Pipeline's per-visit phase latencies.
//!
//! One stacked bar per visit, in the order the visits ran in the night (1, 2, ...): `prepare` at
//! the bottom, `associate` in the middle, `post` on top, so a bar's height is the visit's total
//! AP time. An optional dashed red line marks a per-visit budget. Above the chart: the title, a
//! one-line summary (visits, sources, median and max total) and the legend.
//!
//! Text is rendered with plotters' `ab_glyph` font backend (no fontconfig / font-kit at build
//! time); the font is read at run time from [`FONT_PATH`] (Debian package [`FONT_PACKAGE`]).
//!
//! An empty `rows` is an error (`no visits to plot`), not an empty chart: a night without visits
//! almost always means the caller read the wrong schema or night, and a blank PNG would hide that.

use std::path::Path;
use std::sync::Mutex;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One visit's phase latencies (seconds) as read from the AP schema's visit_log.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitLatency {
    pub visit: i64,
    pub n_sources: i64,
    pub prepare_s: f64,
    pub associate_s: f64,
    pub post_s: f64,
}

/// The TrueType font registered for all text in the plot.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The Debian package that provides [`FONT_PATH`].
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";
/// The family name the font is registered under (and the only one this module uses).
const FAMILY: &str = "sans-serif";

// Colours: matplotlib's tab10 blue/orange/green for the phases, tab10 red for the budget.
const PREPARE: RGBColor = RGBColor(31, 119, 180);
const ASSOCIATE: RGBColor = RGBColor(255, 127, 14);
const POST: RGBColor = RGBColor(44, 160, 44);
const BUDGET: RGBColor = RGBColor(214, 39, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);
const MUTED: RGBColor = RGBColor(90, 90, 90);

/// Writes a PNG (width x height px) of the three phases per visit: one line (or bar group) per phase
/// against the visit's position in the night (1, 2, ...), a dashed horizontal line at `budget_s`
/// if given (the deadline, e.g. DC2's 37 s would be off-scale so callers may pass the 2 s cycle target),
/// legend, axis labels ("visit (order in the night)", "seconds"), a title.
///
/// The canvas is 1200 x 600 px (this signature has no size; [`plot_latencies_sized`] takes one).
/// Rendered as stacked bars (prepare / associate / post); `rows` are plotted in the order given,
/// which is taken to be the order in the night (callers sort by start time / visit). Creates the
/// parent directories of `path`. Errors (never panics) on: empty `rows`, a negative or non-finite
/// latency or budget, a canvas smaller than 200 x 150 px, a missing font file (naming the package
/// to install), or an I/O / drawing failure.
pub fn plot_latencies(path: &Path, title: &str, rows: &[VisitLatency], budget_s: Option<f64>) -> Result<(), String> {
    plot_latencies_sized(path, title, rows, budget_s, 1200, 600)
}

/// [`plot_latencies`] with an explicit canvas size in pixels.
pub fn plot_latencies_sized(
    path: &Path,
    title: &str,
    rows: &[VisitLatency],
    budget_s: Option<f64>,
    width: u32,
    height: u32,
) -> Result<(), String> {
    if rows.is_empty() {
        return Err("no visits to plot".into());
    }
    if width < 200 || height < 150 {
        return Err(format!("plot size {width}x{height} px is too small (minimum 200x150)"));
    }
    for r in rows {
        for (name, v) in [("prepare", r.prepare_s), ("associate", r.associate_s), ("post", r.post_s)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("visit {}: {name} latency {v} s is not a non-negative number", r.visit));
            }
        }
    }
    if let Some(b) = budget_s {
        if !b.is_finite() || b <= 0.0 {
            return Err(format!("budget {b} s is not a positive number"));
        }
    }
    ensure_font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    draw(&root, title, rows, budget_s, width, height).map_err(|e| format!("drawing {}: {e}", path.display()))?;
    root.present().map_err(|e| format!("writing {}: {e}", path.display()))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    rows: &[VisitLatency],
    budget_s: Option<f64>,
    width: u32,
    height: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // Everything scales with the canvas; 1200 x 600 is scale 1.
    let s = (width as f64 / 1200.0).min(height as f64 / 600.0).clamp(0.5, 3.0);
    let px = |v: f64| (v * s).round() as i32;
    let font = |size: f64| (FAMILY, size * s).into_font();

    root.fill(&WHITE)?;
    let n = rows.len();
    let totals: Vec<f64> = rows.iter().map(|r| r.prepare_s + r.associate_s + r.post_s).collect();
    let max_total = totals.iter().cloned().fold(0.0, f64::max);
    let mut sorted = totals.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) };
    let n_sources: i64 = rows.iter().map(|r| r.n_sources).sum();

    // Header: title, summary line, legend row.
    let (header, body) = root.split_vertically(px(100.0));
    let cx = width as i32 / 2;
    header.draw(&Text::new(
        title.to_string(),
        (cx, px(12.0)),
        font(24.0).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let mut summary = format!(
        "{n} visit{}, {} sources; total per visit: median {}, max {}",
        if n == 1 { "" } else { "s" },
        thousands(n_sources),
        secs(median),
        secs(max_total)
    );
    if let Some(b) = budget_s {
        let over = totals.iter().filter(|&&t| t > b).count();
        summary.push_str(&format!("; {over} over the {} budget", secs(b)));
    }
    header.draw(&Text::new(
        summary,
        (cx, px(46.0)),
        font(16.0).color(&MUTED).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    draw_legend(&header, cx, px(80.0), s, budget_s.is_some())?;

    // Chart.
    let top = budget_s.map_or(max_total, |b| max_total.max(b)) * 1.08;
    let top = if top > 0.0 { top } else { 1.0 };
    let mut chart = ChartBuilder::on(&body)
        .margin_left(px(10.0))
        .margin_right(px(30.0))
        .margin_top(px(6.0))
        .margin_bottom(px(10.0))
        .x_label_area_size(px(50.0))
        .y_label_area_size(px(62.0))
        .build_cartesian_2d(0.5..n as f64 + 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED.stroke_width(1))
        .x_desc("visit (order in the night)")
        .y_desc("seconds")
        .axis_desc_style(font(17.0).color(&BLACK))
        .label_style(font(14.0).color(&MUTED))
        // plotters' f64 key points are 1/2/5 x 10^k steps, so at most n labels means whole visits.
        .x_labels(n.clamp(1, 15))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .y_label_formatter(&|y| secs_axis(*y))
        .y_labels(8)
        .draw()?;

    // Bars, one visit at a time (prepare, associate, post bottom to top). Wide bars get a gap;
    // narrow ones (many visits) touch and overlap by about a pixel so that rounding to pixels
    // leaves no white slivers between them.
    let px_per_visit = chart.plotting_area().dim_in_pixel().0 as f64 / n as f64;
    let half = if px_per_visit >= 6.0 { 0.4 } else { 0.5 + 0.6 / px_per_visit };
    chart.draw_series(rows.iter().enumerate().flat_map(|(i, r)| {
        let x = (i + 1) as f64;
        let (a, b, c) = (r.prepare_s, r.prepare_s + r.associate_s, r.prepare_s + r.associate_s + r.post_s);
        [(0.0, a, PREPARE), (a, b, ASSOCIATE), (b, c, POST)]
            .map(|(lo, hi, color)| Rectangle::new([(x - half, lo), (x + half, hi)], color.filled()))
    }))?;
    if let Some(b) = budget_s {
        chart.draw_series(DashedLineSeries::new(
            [(0.5, b), (n as f64 + 0.5, b)],
            px(10.0).max(4),
            px(6.0).max(3),
            BUDGET.stroke_width(px(2.0).max(1) as u32),
        ))?;
    }
    Ok(())
}

/// The legend as one centred row in the header: swatch + label per phase, then the budget.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    cx: i32,
    cy: i32,
    s: f64,
    with_budget: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let px = |v: f64| (v * s).round() as i32;
    let style = (FAMILY, 15.0 * s).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let mut items: Vec<(&str, RGBColor, bool)> =
        vec![("prepare", PREPARE, false), ("associate", ASSOCIATE, false), ("post", POST, false)];
    if with_budget {
        items.push(("budget", BUDGET, true));
    }
    let (swatch, gap_after_swatch, gap_after_item) = (px(26.0), px(8.0), px(28.0));
    let widths: Vec<i32> = items
        .iter()
        .map(|(label, _, _)| area.estimate_text_size(label, &style).map(|(w, _)| w as i32))
        .collect::<Result<_, _>>()?;
    let total: i32 =
        widths.iter().map(|w| swatch + gap_after_swatch + w).sum::<i32>() + gap_after_item * (items.len() as i32 - 1);
    let mut x = cx - total / 2;
    for ((label, color, dashed), w) in items.iter().zip(widths) {
        if *dashed {
            area.draw(&DashedPathElement::new(
                [(x, cy), (x + swatch, cy)],
                px(8.0).max(3),
                px(5.0).max(2),
                color.stroke_width(px(2.0).max(1) as u32),
            ))?;
        } else {
            let h = px(7.0);
            area.draw(&Rectangle::new([(x, cy - h), (x + swatch, cy + h)], color.filled()))?;
        }
        x += swatch + gap_after_swatch;
        area.draw(&Text::new(label.to_string(), (x, cy), style.clone()))?;
        x += w + gap_after_item;
    }
    Ok(())
}

/// Seconds for the summary line: ms below a second, about 3 significant digits.
fn secs(v: f64) -> String {
    match v {
        v if v < 0.01 => format!("{:.2} ms", v * 1e3),
        v if v < 1.0 => format!("{:.0} ms", v * 1e3),
        v if v < 10.0 => format!("{v:.2} s"),
        v => format!("{v:.1} s"),
    }
}

/// Y tick labels: as few decimals as the value needs (plotters' keypoints are round numbers).
fn secs_axis(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Registers [`FONT_PATH`] as `sans-serif` once per process (a failure is not cached, so a
/// later call retries once the package is installed).
fn ensure_font() -> Result<(), String> {
    static REGISTERED: Mutex<bool> = Mutex::new(false);
    let mut done = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if !*done {
        register_font_file(Path::new(FONT_PATH))?;
        *done = true;
    }
    Ok(())
}

fn register_font_file(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "plot font {} unreadable ({e}); install the Debian package {FONT_PACKAGE} (apt-get install {FONT_PACKAGE})",
            path.display()
        )
    })?;
    // plotters keeps registered fonts for the life of the process and wants &'static bytes;
    // this leaks one ~750 kB copy, once.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| format!("plot font {} is not a valid TrueType/OpenType font", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<VisitLatency> {
        (0..n)
            .map(|i| VisitLatency {
                visit: 100 + i as i64,
                n_sources: 1000 + 10 * i as i64,
                prepare_s: 0.1 + 0.01 * i as f64,
                associate_s: 0.8,
                post_s: 0.2,
            })
            .collect()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("skycat-ap-plot-test-{}", std::process::id())).join(name)
    }

    /// PNG signature, then the IHDR chunk: width and height as big-endian u32 at bytes 16..24.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    #[test]
    fn writes_png_of_requested_size() {
        // nested/dir checks that parent directories are created
        let path = tmp("nested/dir/latency.png");
        plot_latencies(&path, "AP latencies (test)", &rows(5), Some(2.0)).unwrap();
        assert_eq!(png_size(&path), (1200, 600));

        let path = tmp("small.png");
        plot_latencies_sized(&path, "small", &rows(3), None, 640, 360).unwrap();
        assert_eq!(png_size(&path), (640, 360));

        // all-zero latencies (a y range of 0..0 would be degenerate) and a single visit
        let zero = VisitLatency { visit: 1, n_sources: 0, prepare_s: 0.0, associate_s: 0.0, post_s: 0.0 };
        let path = tmp("zero.png");
        plot_latencies(&path, "zero", &[zero], None).unwrap();
        assert_eq!(png_size(&path), (1200, 600));
        let _ = std::fs::remove_dir_all(tmp(""));
    }

    /// Draws into memory and counts the pixels of each exact colour.
    fn render(rows: &[VisitLatency], budget_s: Option<f64>) -> impl Fn(RGBColor) -> f64 {
        let (w, h) = (1200u32, 600u32);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        ensure_font().unwrap();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            draw(&root, "t", rows, budget_s, w, h).unwrap();
            root.present().unwrap();
        }
        move |c: RGBColor| buf.chunks(3).filter(|p| *p == [c.0, c.1, c.2]).count() as f64
    }

    #[test]
    fn bars_are_as_tall_as_their_latencies() {
        // Every visit spends 1, 2 and 3 s in the phases: the stacked bars' areas go 1 : 2 : 3,
        // plus one equal legend swatch per phase (a few hundred pixels). So associate - prepare
        // and post - associate are one unit of bar each, and prepare is about one unit. (Each
        // segment edge rounds to a pixel row: ~1.5% of a unit per edge here, hence 5%.)
        let rows: Vec<VisitLatency> = (1..=4)
            .map(|v| VisitLatency { visit: v, n_sources: 10, prepare_s: 1.0, associate_s: 2.0, post_s: 3.0 })
            .collect();
        let count = render(&rows, None);
        let (p, a, q) = (count(PREPARE), count(ASSOCIATE), count(POST));
        let unit = a - p;
        assert!(unit > 10_000.0, "bars drawn: {p} {a} {q}");
        assert!(((q - a) - unit).abs() < 0.05 * unit, "post - associate {} vs associate - prepare {unit}", q - a);
        assert!((p - unit).abs() < 0.05 * unit, "prepare {p} px vs one unit {unit} px");
        assert_eq!(count(BUDGET), 0.0, "no budget line without a budget");
        // With a budget the dashed line appears; bars above it do not change.
        let count = render(&rows, Some(5.0));
        assert!(count(BUDGET) > 500.0, "budget line {} px", count(BUDGET));
    }

    #[test]
    fn rejects_bad_input() {
        let path = tmp("never.png");
        assert_eq!(plot_latencies(&path, "t", &[], None).unwrap_err(), "no visits to plot");
        let mut bad = rows(2);
        bad[1].associate_s = f64::NAN;
        assert!(plot_latencies(&path, "t", &bad, None).unwrap_err().contains("visit 101"));
        assert!(plot_latencies(&path, "t", &rows(2), Some(-1.0)).is_err());
        assert!(plot_latencies_sized(&path, "t", &rows(2), None, 100, 100).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn missing_font_names_the_package() {
        let err = register_font_file(Path::new("/nonexistent/DejaVuSans.ttf")).unwrap_err();
        assert!(err.contains(FONT_PACKAGE), "{err}");
    }
}
