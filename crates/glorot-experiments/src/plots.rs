//! The figures, as PNG and SVG: Part 1's training loss and validation accuracy per epoch
//! (the notebook's two figures, with its printed curves for comparison), Part 3's largest
//! gradient difference against N on log-log axes (its third figure), and the grid as
//! heatmaps (validation accuracy by learning rate and batch size, one panel per
//! activation and hidden width).
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`assets/`), through plotters'
//! `ab_glyph` backend: no system font library is involved.

use std::path::Path;
use std::sync::Once;

use crate::error::{Error, Result};
use glorot_mlp::Activation;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::part1::Part1File;
use crate::part2::{Part2File, TrialRow};
use crate::part3::Part3File;
use crate::part5::Part5File;
use crate::reference::Notebook;

/// DejaVu Sans (Bitstream Vera license, `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "sans-serif";

/// matplotlib's first colors, so the figures read like the notebook's.
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FAMILY, style, FONT).is_err() {
                result = Err(Error::Plot("the embedded font does not parse".to_owned()));
            }
        }
    });
    result
}

/// Renders every figure the available results allow; returns the written files
/// (relative to `out`).
pub(crate) fn render_all(
    out: &Path,
    p1: Option<&Part1File>,
    p2: Option<&Part2File>,
    p3: Option<&Part3File>,
    nb: &Notebook,
) -> Result<Vec<String>> {
    register_font()?;
    let dir = out.join("plots");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let mut written = Vec::new();
    if let Some(p1) = p1 {
        both(
            &dir,
            "part1_training_loss",
            (900, 560),
            &mut written,
            &Figure::Part1(p1, nb, Metric::Loss),
        )?;
        both(
            &dir,
            "part1_validation_accuracy",
            (900, 560),
            &mut written,
            &Figure::Part1(p1, nb, Metric::Accuracy),
        )?;
    }
    if let Some(p3) = p3 {
        both(
            &dir,
            "part3_gradient_check",
            (900, 560),
            &mut written,
            &Figure::Part3(p3),
        )?;
    }
    if let Some(p2) = p2.filter(|p| p.trials.iter().any(|t| t.final_val_accuracy.is_some())) {
        let layout = GridLayout::new(p2);
        let size = (
            (140 + 250 * layout.hidden.len() as u32).max(1000),
            110 + 210 * layout.activations.len() as u32,
        );
        both(
            &dir,
            "part2_grid_heatmap",
            size,
            &mut written,
            &Figure::Heatmap(p2, &layout),
        )?;
    }
    Ok(written)
}

/// Part 4's figures (see [`crate::plots4`]); returns the written files (relative to `out`).
pub(crate) fn render_part4(out: &Path, p4: &crate::part4::Part4File) -> Result<Vec<String>> {
    register_font()?;
    let dir = out.join("plots");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let mut written = Vec::new();
    both(
        &dir,
        "part4_activations",
        (1500, 900),
        &mut written,
        &Figure::Part4Activations(p4),
    )?;
    for q in crate::plots4::Quantity::ALL {
        both(
            &dir,
            &format!("part4_tanh_{}", q.slug()),
            (1200, 860),
            &mut written,
            &Figure::Part4Histograms(p4, q),
        )?;
    }
    Ok(written)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One figure, drawable on any backend.
#[derive(Debug)]
enum Figure<'a> {
    Part1(&'a Part1File, &'a Notebook, Metric),
    Part3(&'a Part3File),
    Heatmap(&'a Part2File, &'a GridLayout),
    Part4Activations(&'a crate::part4::Part4File),
    Part4Histograms(&'a crate::part4::Part4File, crate::plots4::Quantity),
    Part5(&'a Part5File),
}

impl Figure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> DrawResult<DB> {
        match *self {
            Figure::Part1(p1, nb, metric) => part1(root, p1, nb, metric),
            Figure::Part3(p3) => part3(root, p3),
            Figure::Heatmap(p2, layout) => heatmap(root, p2, layout),
            Figure::Part4Activations(p4) => crate::plots4::activations(root, p4),
            Figure::Part4Histograms(p4, q) => crate::plots4::histograms(root, p4, q),
            Figure::Part5(p5) => part5(root, p5),
        }
    }
}

/// Draws one figure into a PNG and an SVG.
fn both(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    written: &mut Vec<String>,
    figure: &Figure<'_>,
) -> Result<()> {
    let png = dir.join(format!("{name}.png"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        figure
            .draw(root.clone())
            .map_err(|e| Error::Plot(format!("drawing {}: {e}", png.display())))?;
        root.present()
            .map_err(|e| Error::Plot(format!("writing {}: {e}", png.display())))?;
    }
    let svg = dir.join(format!("{name}.svg"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        figure
            .draw(root.clone())
            .map_err(|e| Error::Plot(format!("drawing {}: {e}", svg.display())))?;
        root.present()
            .map_err(|e| Error::Plot(format!("writing {}: {e}", svg.display())))?;
    }
    written.push(format!("plots/{name}.png"));
    written.push(format!("plots/{name}.svg"));
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Metric {
    Loss,
    Accuracy,
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font())
}

/// A labelled line: points, color, dashed (the notebook's) or solid (this run's).
type Series = (String, Vec<(f64, f64)>, RGBColor, bool);

fn part1<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    p1: &Part1File,
    nb: &Notebook,
    metric: Metric,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let value = |e: &glorot_mlp::EpochMetrics| match metric {
        Metric::Loss => e.train_loss,
        Metric::Accuracy => e.val_accuracy,
    };
    let mut series: Vec<Series> = Vec::new();
    for (i, run) in p1.runs.iter().enumerate() {
        let pts = run
            .report
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, value(e)))
            .filter(|p| p.1.is_finite())
            .collect();
        series.push((
            format!("{} (this run)", run.name),
            pts,
            COLORS[i % 4],
            false,
        ));
    }
    for (i, nr) in nb.part1.runs.iter().enumerate() {
        let pts = nr
            .epochs
            .iter()
            .map(|e| {
                let v = match metric {
                    Metric::Loss => e.loss.value(),
                    Metric::Accuracy => e.val_accuracy.value(),
                };
                (e.epoch as f64, v)
            })
            .collect();
        series.push((format!("{} (notebook)", nr.run), pts, COLORS[i % 4], true));
    }
    let max_epoch = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = match metric {
        Metric::Loss => (0.0, hi * 1.05),
        Metric::Accuracy => ((lo - 5.0).max(0.0), 100.0),
    };
    let (title, y_desc) = match metric {
        Metric::Loss => (
            "Part 1: training loss per epoch (784-500-500-10, tanh, lr 0.01, batch 32)",
            "mean training loss (summed binary cross-entropy)",
        ),
        Metric::Accuracy => (
            "Part 1: validation accuracy per epoch (784-500-500-10, tanh, lr 0.01, batch 32)",
            "validation accuracy (%)",
        ),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, font(19.0))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..max_epoch + 0.5, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(max_epoch as usize + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(WHITE)
        .draw()?;
    for (label, pts, color, dashed) in &series {
        let color = *color;
        if *dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    pts.iter().copied(),
                    6,
                    4,
                    color.stroke_width(2),
                ))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.iter().map(|&p| Cross::new(p, 4, color.stroke_width(1))))?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(3)))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(match metric {
            Metric::Loss => SeriesLabelPosition::UpperRight,
            Metric::Accuracy => SeriesLabelPosition::MiddleRight,
        })
        .label_font(font(13.0))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

fn part3<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, p3: &Part3File) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let mut series = Vec::new();
    let mut zero_cells = Vec::new();
    for (i, cell) in p3.cells.iter().enumerate() {
        let pts: Vec<(f64, f64)> = cell
            .check
            .steps
            .iter()
            .map(|s| (s.n, s.max_abs_diff))
            .filter(|p| p.1 > 0.0 && p.1.is_finite())
            .collect();
        if pts.is_empty() {
            zero_cells.push(cell.name.clone());
        } else {
            series.push((cell.name.clone(), pts, COLORS[i % 4]));
        }
    }
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo / 3.0, hi * 3.0)
    } else {
        (1e-12, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Part 3: gradient check, largest |numerical - analytic| of 10 entries vs N",
            font(19.0),
        )
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(80)
        .build_cartesian_2d((0.7f64..60_000.0).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("N (epsilon = 1/N), log scale")
        .y_desc("max difference of the two gradients, log scale")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(WHITE)
        .draw()?;
    for (name, pts, color) in &series {
        let color = *color;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 5, color.filled())))?
            .label(format!("{name} (fresh Glorot network, example 0)"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    for name in &zero_cells {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(format!(
                "{name}: every difference is 0 (the corner pixel is 0), not drawn"
            ))
            .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(font(13.0))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// The axes of the grid heatmap.
#[derive(Debug)]
struct GridLayout {
    hidden: Vec<usize>,
    activations: Vec<Activation>,
    rates: Vec<f64>,
    batches: Vec<usize>,
    lo: f64,
    hi: f64,
}

impl GridLayout {
    fn new(p2: &Part2File) -> GridLayout {
        let g = &p2.grid;
        let accs = p2.trials.iter().filter_map(|t| t.final_val_accuracy);
        let (lo, hi) = accs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        GridLayout {
            hidden: g.hidden.clone(),
            activations: g.activation.clone(),
            rates: g.learning_rate.clone(),
            batches: g.batch_size.clone(),
            lo: lo.min(hi - 1.0),
            hi,
        }
    }

    /// The best final accuracy over the trials of one cell (over any extra axes: init,
    /// epochs, precision, repeats), and whether any of them diverged.
    fn cell(&self, p2: &Part2File, h: usize, a: Activation, lr: f64, b: usize) -> Cell {
        let rows: Vec<&TrialRow> = p2
            .trials
            .iter()
            .filter(|t| {
                t.hidden == h && t.activation == a && t.learning_rate == lr && t.batch_size == b
            })
            .collect();
        let best = rows
            .iter()
            .filter_map(|t| t.final_val_accuracy)
            .reduce(f64::max);
        match best {
            Some(v) => Cell::Value(v),
            None if rows.iter().any(|t| t.status == "diverged") => Cell::Diverged,
            None => Cell::Missing,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Cell {
    Value(f64),
    Diverged,
    Missing,
}

/// viridis, by linear interpolation between nine of its stops.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

fn heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    p2: &Part2File,
    layout: &GridLayout,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = format!(
        "Part 2: final validation accuracy (%) of {} trials by learning rate and batch size",
        p2.trials.len()
    );
    let root = root.titled(&title, font(20.0))?;
    let (w, _) = root.dim_in_pixel();
    let (panels, bar) = root.split_horizontally(w.saturating_sub(110));
    let rows = layout.activations.len();
    let cols = layout.hidden.len();
    let areas = panels.split_evenly((rows, cols));
    let span = (layout.hi - layout.lo).max(1e-9);
    for (r, &a) in layout.activations.iter().enumerate() {
        for (c, &h) in layout.hidden.iter().enumerate() {
            let area = &areas[r * cols + c];
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("{}, {h} units", crate::report::activation_name(a)),
                    font(15.0),
                )
                .margin(6)
                .x_label_area_size(34)
                .y_label_area_size(52)
                .build_cartesian_2d(
                    0.0..layout.batches.len() as f64,
                    0.0..layout.rates.len() as f64,
                )?;
            let batches = layout.batches.clone();
            let rates = layout.rates.clone();
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(batches.len() * 2 + 1)
                .y_labels(rates.len() * 2 + 1)
                .x_label_formatter(&|x| label_at(*x, &batches, |b| b.to_string()))
                .y_label_formatter(&|y| label_at(*y, &rates, |l| format!("{l}")))
                .x_desc("batch size")
                .y_desc("learning rate")
                .label_style(font(12.0))
                .axis_desc_style(font(12.0))
                .draw()?;
            for (i, &b) in layout.batches.iter().enumerate() {
                for (j, &lr) in layout.rates.iter().enumerate() {
                    let (x0, y0) = (i as f64, j as f64);
                    let cell = layout.cell(p2, h, a, lr, b);
                    let (fill, text, ink) = match cell {
                        Cell::Value(v) => {
                            let t = (v - layout.lo) / span;
                            let ink = if t > 0.6 { BLACK } else { WHITE };
                            (viridis(t), format!("{v:.2}"), ink)
                        }
                        Cell::Diverged => (RGBColor(190, 190, 190), "diverged".to_owned(), BLACK),
                        Cell::Missing => (RGBColor(245, 245, 245), "not run".to_owned(), BLACK),
                    };
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                        fill.filled(),
                    )))?;
                    chart.draw_series(std::iter::once(Text::new(
                        text,
                        (x0 + 0.5, y0 + 0.5),
                        font(12.0)
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    )))?;
                }
            }
        }
    }
    // The color scale.
    let bar = bar.margin(40, 60, 10, 10);
    let mut chart = ChartBuilder::on(&bar)
        .caption("accuracy %", font(13.0))
        .right_y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, layout.lo..layout.hi)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style(font(12.0))
        .draw()?;
    if p2
        .trials
        .iter()
        .any(|t| t.status == "diverged" || t.status == "missing")
    {
        chart.draw_series(std::iter::once(Text::new(
            "grey: diverged",
            (0.0, layout.lo),
            font(11.0).pos(Pos::new(HPos::Left, VPos::Top)),
        )))?;
    }
    let steps = 100;
    chart.draw_series((0..steps).map(|k| {
        let a = layout.lo + span * k as f64 / steps as f64;
        let b = layout.lo + span * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis(k as f64 / (steps - 1) as f64).filled(),
        )
    }))?;
    Ok(())
}

/// Tick label at a cell centre (`k + 0.5`), nothing elsewhere.
fn label_at<T: Copy>(x: f64, values: &[T], fmt: impl Fn(T) -> String) -> String {
    let k = x - 0.5;
    if (k - k.round()).abs() < 1e-6 && k >= 0.0 {
        values
            .get(k.round() as usize)
            .map(|&v| fmt(v))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

/// Draws `matrix` as a heatmap into `<stem>.png` and `<stem>.svg`, each written
/// atomically (the workspace's one writer, [`glorot_search::write_atomic`]); returns the
/// two paths. Rows are true classes (0 at the top), columns predicted ones; each cell
/// shows its count and is coloured by its share of the true class's rows (viridis, 0 to
/// 100 %), so the diagonal reads as per-class accuracy whatever the class sizes. `title`
/// heads the figure.
///
/// # Errors
/// [`Error::Plot`] when a figure cannot be drawn or encoded, [`Error::Search`] when a file
/// cannot be written.
pub fn confusion_heatmap(
    matrix: &glorot_mlp::ConfusionMatrix,
    title: &str,
    stem: &Path,
) -> Result<Vec<std::path::PathBuf>> {
    register_font()?;
    let k = matrix.classes().max(1) as u32;
    let (w, h) = (260 + 56 * k, 170 + 56 * k);
    let png_path = with_suffix(stem, ".png");
    let svg_path = with_suffix(stem, ".svg");
    let failed = |path: &Path, e: &dyn std::fmt::Display| {
        Error::Plot(format!("drawing {}: {e}", path.display()))
    };
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        confusion(root.clone(), matrix, title)
            .and_then(|()| root.present())
            .map_err(|e| failed(&png_path, &e))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .and_then(|mut writer| writer.write_image_data(&rgb))
            .map_err(|e| failed(&png_path, &e))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        confusion(root.clone(), matrix, title)
            .and_then(|()| root.present())
            .map_err(|e| failed(&svg_path, &e))?;
    }
    for (path, bytes) in [(&png_path, &png_bytes[..]), (&svg_path, svg.as_bytes())] {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        glorot_search::write_atomic(path, bytes)?;
    }
    Ok(vec![png_path, svg_path])
}

/// `stem` with `suffix` appended to its file name (`out/cm` + `.png` = `out/cm.png`, even
/// when the stem holds a dot).
fn with_suffix(stem: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

fn confusion<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    m: &glorot_mlp::ConfusionMatrix,
    title: &str,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(title, font(17.0))?;
    let (w, _) = root.dim_in_pixel();
    let (panel, bar) = root.split_horizontally(w.saturating_sub(120));
    let k = m.classes();
    let kf = k as f64;
    let classes: Vec<usize> = (0..k).collect();
    let mut chart = ChartBuilder::on(&panel)
        .margin(10)
        .x_label_area_size(46)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..kf, 0.0..kf)?;
    // Row t is drawn at y = k - 1 - t, so class 0 is at the top, as in a printed matrix.
    let top_down: Vec<usize> = classes.iter().rev().copied().collect();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(2 * k + 1)
        .y_labels(2 * k + 1)
        .x_label_formatter(&|x| label_at(*x, &classes, |c| c.to_string()))
        .y_label_formatter(&|y| label_at(*y, &top_down, |c| c.to_string()))
        .x_desc("predicted class")
        .y_desc("true class")
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .draw()?;
    for t in 0..k {
        let samples = m.class(t).samples;
        for p in 0..k {
            let count = m.count(t, p);
            let share = if samples == 0 {
                0.0
            } else {
                count as f64 / samples as f64
            };
            let (x0, y0) = (p as f64, (k - 1 - t) as f64);
            let ink = if share > 0.6 { BLACK } else { WHITE };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                viridis(share).filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                count.to_string(),
                (x0 + 0.5, y0 + 0.5),
                font(12.0)
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
        }
    }
    let bar = bar.margin(30, 50, 10, 10);
    let mut scale = ChartBuilder::on(&bar)
        .caption("% of the true class", font(12.0))
        .right_y_label_area_size(44)
        .build_cartesian_2d(0.0..1.0, 0.0..100.0)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(font(12.0))
        .draw()?;
    let steps = 100;
    scale.draw_series((0..steps).map(|s| {
        let a = 100.0 * f64::from(s) / f64::from(steps);
        let b = 100.0 * f64::from(s + 1) / f64::from(steps);
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis(f64::from(s) / f64::from(steps - 1)).filled(),
        )
    }))?;
    Ok(())
}

/// Part 5's figure, when `part5.json` is present: validation accuracy per epoch of every
/// run of both configurations (returns the files written, relative to `out`).
pub(crate) fn render_part5(out: &Path, p5: Option<&Part5File>) -> Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(p5) = p5 {
        register_font()?;
        let dir = out.join("plots");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        both(
            &dir,
            "part5_fashion_validation_accuracy",
            (900, 560),
            &mut written,
            &Figure::Part5(p5),
        )?;
    }
    Ok(written)
}

/// Validation accuracy per epoch on Fashion-MNIST: one line per run, one color per
/// configuration, the epoch whose weights were tested marked with a ring.
fn part5<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, p5: &Part5File) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let points = |r: &crate::part5::Part5Run| -> Vec<(f64, f64)> {
        r.report
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, e.val_accuracy))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let all: Vec<(f64, f64)> = p5
        .configs
        .iter()
        .flat_map(|c| c.runs.iter().flat_map(points))
        .collect();
    let max_epoch = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let (lo, hi) = if lo.is_finite() {
        ((lo - 1.0).max(0.0), (hi + 1.0).min(100.0))
    } else {
        (0.0, 100.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Part 5: Fashion-MNIST validation accuracy per epoch (784-550-550-10 ReLU)",
            font(19.0),
        )
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..max_epoch + 0.5, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("validation accuracy (%)")
        .x_labels((max_epoch as usize + 1).min(31))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(font(14.0))
        .axis_desc_style(font(15.0))
        .light_line_style(WHITE)
        .draw()?;
    for (i, config) in p5.configs.iter().enumerate() {
        let color = COLORS[i % 4];
        for (k, run) in config.runs.iter().enumerate() {
            let pts = points(run);
            let series =
                chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
            if k == 0 {
                series
                    .label(format!(
                        "{} ({}, ring: tested epoch)",
                        config.name,
                        crate::count(config.runs.len(), "seed", "seeds")
                    ))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
            }
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))?;
            if let Some(kept) = run
                .kept_epoch
                .and_then(|k| pts.iter().find(|p| p.0 == k as f64))
            {
                chart.draw_series(std::iter::once(Circle::new(
                    *kept,
                    7,
                    color.stroke_width(2),
                )))?;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(font(13.0))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_middle() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }

    #[test]
    fn labels_only_at_cell_centres() {
        let v = [32, 64, 128];
        assert_eq!(label_at(0.5, &v, |b| b.to_string()), "32");
        assert_eq!(label_at(2.5, &v, |b| b.to_string()), "128");
        assert_eq!(label_at(1.0, &v, |b| b.to_string()), "");
        assert_eq!(label_at(3.5, &v, |b| b.to_string()), "");
    }

    #[test]
    fn the_embedded_font_registers() {
        register_font().unwrap();
    }

    #[test]
    fn the_confusion_heatmap_is_written_as_png_and_svg() {
        let m =
            glorot_mlp::ConfusionMatrix::from_predictions(3, &[0, 0, 1, 2, 2], &[0, 1, 1, 2, 0])
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("cm.test");
        let written = confusion_heatmap(&m, "a title", &stem).unwrap();
        assert_eq!(
            written,
            [
                dir.path().join("cm.test.png"),
                dir.path().join("cm.test.svg")
            ]
        );
        let png = std::fs::read(&written[0]).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let svg = std::fs::read_to_string(&written[1]).unwrap();
        assert!(svg.contains("<svg") && svg.contains("a title"), "{svg}");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
