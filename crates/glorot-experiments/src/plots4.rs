//! Part 4's figures (Glorot and Bengio 2010, figures 2-4 and 6-8): activation statistics
//! per hidden layer over training, and normalized histograms of activations,
//! back-propagated gradients and weight gradients of the tanh networks at initialization
//! and after training, standard against normalized initialization.

use glorot_mlp::probe::{Distribution, LayerProbe, ProbeSnapshot};
use glorot_mlp::{Activation, Init};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::part4::{Part4File, Part4Network};

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One color per hidden layer (matplotlib's first ones, then its later ones).
const LAYER_COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Which probe quantity a histogram figure shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quantity {
    /// Activations.
    Activations,
    /// Back-propagated gradients `dL/dz`.
    BackpropGradients,
    /// Weight gradients.
    WeightGradients,
}

impl Quantity {
    pub(crate) const ALL: [Quantity; 3] = [
        Quantity::Activations,
        Quantity::BackpropGradients,
        Quantity::WeightGradients,
    ];

    /// The file name's part.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Quantity::Activations => "activations",
            Quantity::BackpropGradients => "backprop_gradients",
            Quantity::WeightGradients => "weight_gradients",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Quantity::Activations => "activation values",
            Quantity::BackpropGradients => "back-propagated gradients dL/dz",
            Quantity::WeightGradients => "weight gradients dL/dW",
        }
    }

    fn of(self, l: &LayerProbe) -> &Distribution {
        match self {
            Quantity::Activations => &l.activations,
            Quantity::BackpropGradients => &l.backprop_gradients,
            Quantity::WeightGradients => &l.weight_gradients,
        }
    }
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((super::plots::FAMILY, size).into_font())
}

fn init_name(init: Init) -> &'static str {
    match init {
        Init::Standard => "standard",
        _ => "normalized",
    }
}

fn network(p4: &Part4File, a: Activation, init: Init) -> Option<&Part4Network> {
    p4.networks
        .iter()
        .find(|n| n.activation == a && n.init == init)
}

/// Figures 2-4: per hidden layer over training, the mean (solid), the standard deviation
/// (dashed) and the band between the 1st and 99th percentiles; rows standard and
/// normalized initialization, columns sigmoid, tanh, softsign.
pub(crate) fn activations<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    p4: &Part4File,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.draw_text(
        &format!(
            "Part 4: activations per hidden layer over training (probe of {} validation \
             images): mean (solid), std (dashed), 1st-99th percentile band",
            p4.probe_rows
        ),
        &font(17.0),
        (14, 12),
    )?;
    let cols = [Activation::Sigmoid, Activation::Tanh, Activation::Softsign];
    let rows = [Init::Standard, Init::GlorotUniform];
    let panels = body.split_evenly((rows.len(), cols.len()));
    for (i, panel) in panels.iter().enumerate() {
        let (init, act) = (rows[i / cols.len()], cols[i % cols.len()]);
        let Some(n) = network(p4, act, init) else {
            continue;
        };
        let max_x = n.curve.last().map_or(1.0, |c| c.update as f64).max(1.0);
        let (lo, hi) = match act {
            Activation::Sigmoid => (0.0, 1.0),
            _ => (-1.0, 1.0),
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{} {}",
                    crate::report::activation_name(act),
                    init_name(init)
                ),
                font(15.0),
            )
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..max_x, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("updates")
            .label_style(font(11.0))
            .axis_desc_style(font(12.0))
            .light_line_style(WHITE)
            .draw()?;
        let layers = n.curve.first().map_or(0, |c| c.activations.len());
        for l in 0..layers {
            let color = LAYER_COLORS[l % LAYER_COLORS.len()];
            let pct = |q: f64| -> Vec<(f64, f64)> {
                n.curve
                    .iter()
                    .filter_map(|c| {
                        let s = &c.activations[l];
                        s.percentiles
                            .iter()
                            .find(|p| p.0 == q)
                            .map(|p| (c.update as f64, p.1))
                    })
                    .filter(|p| p.1.is_finite())
                    .collect()
            };
            let (p_lo, p_hi) = (pct(1.0), pct(99.0));
            if !p_lo.is_empty() && p_lo.len() == p_hi.len() {
                let mut band = p_hi.clone();
                band.extend(p_lo.iter().rev());
                chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.12))))?;
            }
            let mean: Vec<(f64, f64)> = n
                .curve
                .iter()
                .map(|c| (c.update as f64, c.activations[l].mean))
                .filter(|p| p.1.is_finite())
                .collect();
            let std: Vec<(f64, f64)> = n
                .curve
                .iter()
                .map(|c| (c.update as f64, c.activations[l].std))
                .filter(|p| p.1.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(mean, color.stroke_width(2)))?
                .label(format!("layer {}", l + 1))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(DashedLineSeries::new(std, 5, 3, color.stroke_width(2)))?;
        }
        if i == 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(10.0))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
    }
    Ok(())
}

/// Figures 6-8 for the tanh networks: the normalized histogram of `q` per hidden layer;
/// rows standard and normalized initialization, columns at initialization and after
/// training.
pub(crate) fn histograms<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    p4: &Part4File,
    q: Quantity,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.draw_text(
        &format!(
            "Part 4: tanh networks, normalized histograms of {} per hidden layer",
            q.title()
        ),
        &font(17.0),
        (14, 12),
    )?;
    let rows = [Init::Standard, Init::GlorotUniform];
    let panels = body.split_evenly((2, 2));
    for (i, panel) in panels.iter().enumerate() {
        let init = rows[i / 2];
        let Some(n) = network(p4, Activation::Tanh, init) else {
            continue;
        };
        let (snap, when): (&ProbeSnapshot, &str) = if i % 2 == 0 {
            (&n.initial, "at initialization")
        } else {
            (&n.last, "after training")
        };
        let curves: Vec<Vec<(f64, f64)>> = snap
            .layers
            .iter()
            .map(|l| {
                q.of(l)
                    .histogram
                    .density()
                    .into_iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .collect()
            })
            .collect();
        // A common x range: the widest 1st-99th percentile span of the layers, so that
        // one outlier does not squeeze every curve into the middle.
        let span = snap
            .layers
            .iter()
            .flat_map(|l| {
                let s = &q.of(l).summary;
                s.percentiles
                    .iter()
                    .filter(|p| p.0 == 1.0 || p.0 == 99.0)
                    .map(|p| p.1.abs())
                    .collect::<Vec<_>>()
            })
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let span = if span > 0.0 { span * 1.2 } else { 1.0 };
        let x_range = match q {
            Quantity::Activations => (-1.05, 1.05),
            _ => (-span, span),
        };
        let y_max = curves
            .iter()
            .flat_map(|c| {
                c.iter()
                    .filter(|p| p.0 >= x_range.0 && p.0 <= x_range.1)
                    .map(|p| p.1)
            })
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.05;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("tanh {}, {when}", init_name(init)), font(15.0))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.0..x_range.1, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_labels(5)
            // Zero as 0, not as the rounding residue of the label positions (1e-17).
            .x_label_formatter(&|v| {
                if v.abs() < 1e-9 * (x_range.1 - x_range.0) {
                    "0".to_owned()
                } else {
                    format!("{v:.2e}")
                }
            })
            .y_label_formatter(&|v| format!("{v:.2e}"))
            .label_style(font(10.0))
            .light_line_style(WHITE)
            .draw()?;
        for (l, pts) in curves.into_iter().enumerate() {
            let color = LAYER_COLORS[l % LAYER_COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                .label(format!("layer {}", l + 1))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(10.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    Ok(())
}
