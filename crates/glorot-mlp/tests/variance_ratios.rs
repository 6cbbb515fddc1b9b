//! Glorot and Bengio (2010), section 4.2.1: in the linear regime of `tanh` (derivative 1
//! at 0), each layer multiplies the variance of its activations by `fan_in * Var[W]`
//! going up (their eq. 6) and the variance of the back-propagated gradient by
//! `fan_out * Var[W]` going down (eq. 7). With equal widths `n`, the standard
//! initialization `U(-1/sqrt(n), 1/sqrt(n))` has `Var[W] = 1/(3n)`: both shrink by a
//! factor 3 per layer; the normalized one `U(-sqrt(6/2n), sqrt(6/2n))` has
//! `Var[W] = 1/n`: both stay constant. Measured here through the probe
//! ([`glorot_mlp::probe`]) on a deep network at initialization.

use glorot_mlp::probe::{Probe, ProbeSchedule, probe};
use glorot_mlp::{Activation, Head, Init, Mlp, ModelConfig, WeightSource};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Width of the input and of every hidden layer.
const WIDTH: usize = 256;
/// Hidden layers.
const HIDDEN: usize = 5;
/// Rows of the probe batch.
const ROWS: usize = 1000;
/// Standard deviation of the inputs (uniform, `U(-sqrt(3) s, sqrt(3) s)`): `tanh(z) = z - z^3/3 + ...`, so at this scale the
/// activations' variance is lowered by about `2 Var[z] = 0.5 %` in the first layer (and
/// by less above, under the standard initialization), and `tanh'` is within `1 - 0.0025`
/// of 1 on average: well inside the tolerance.
const INPUT_STD: f64 = 0.05;

/// Tolerance on each ratio, relative. Sources of error, for `n = 256` units and
/// `B = 1000` rows: (1) the drawn weights: `sum W^2` over an `n x n` matrix has a relative
/// standard deviation `sqrt(Var[W^2] / E[W^2]^2 / n^2) = sqrt(0.8) / n = 0.35 %` for a
/// uniform `W` (`E[W^4] / E[W^2]^2 = 9/5`); (2) the variance estimated from `B n = 256,000`
/// values, `sqrt(2 / (B n)) = 0.3 %` each (a ratio of two: 0.4 %), more with the
/// correlations between units that share inputs, which the per-layer factor `B / n = 4`
/// bounds to about `sqrt(1 + n / B) = 1.1` times that; (3) the nonlinearity, below 1 %
/// (see [`INPUT_STD`]). Together about 1 % standard deviation per ratio (the 16 ratios
/// of the two seeds here fall within 2.2 % of the prediction): 6 % is about six standard
/// deviations, and a wrong initialization misses by a factor 3 (or, for `Var[W]` off by
/// 10 %, by 10 % on every ratio).
const TOLERANCE: f64 = 0.06;

/// A network `WIDTH`-...-`WIDTH` (the output as wide as the rest, so that the
/// back-propagated gradients span every direction: with 10 outputs they would lie in a
/// 10-dimensional subspace, and each layer's ratio would be measured along 10 directions
/// only, about `sqrt(2 / n) / sqrt(10) = 3 %` apart from the prediction by chance) with
/// `init`, and the probe's statistics at
/// initialization: the variance of the activations and of the back-propagated gradients
/// per hidden layer.
fn variances(init: Init, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let layers = vec![WIDTH; HIDDEN + 2];
    let config = ModelConfig {
        layers,
        activation: Activation::Tanh,
        head: Head::SoftmaxCrossEntropy,
        init,
    }
    .validate()
    .unwrap();
    let model = Mlp::<f64>::new(config, WeightSource::Seed(seed)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
    let half = INPUT_STD * 3f64.sqrt();
    let x = Array2::from_shape_simple_fn((ROWS, WIDTH), || rng.random_range(-half..half));
    let y = Array2::from_shape_fn((ROWS, WIDTH), |(i, j)| f64::from(u8::from(i % WIDTH == j)));
    let schedule = ProbeSchedule {
        at_start: true,
        every: None,
        at_end: false,
    };
    let p = Probe::new(x, y, schedule).unwrap();
    let snap = probe(&model, &p, 0).unwrap();
    assert_eq!(snap.layers.len(), HIDDEN);
    let var = |s: &glorot_mlp::probe::Summary| s.std * s.std;
    (
        snap.layers
            .iter()
            .map(|l| var(&l.activations.summary))
            .collect(),
        snap.layers
            .iter()
            .map(|l| var(&l.backprop_gradients.summary))
            .collect(),
    )
}

/// `Var(a_l) / Var(a_{l+1})` (going up) and `Var(g_{l+1}) / Var(g_l)` (going down).
fn ratios(init: Init, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let (a, g) = variances(init, seed);
    (
        a.windows(2).map(|w| w[0] / w[1]).collect(),
        g.windows(2).map(|w| w[1] / w[0]).collect(),
    )
}

fn check(init: Init, predicted: f64) {
    for seed in [1, 2] {
        let (up, down) = ratios(init, seed);
        for (what, rs) in [("activations", &up), ("gradients", &down)] {
            for (l, &r) in rs.iter().enumerate() {
                assert!(
                    (r / predicted - 1.0).abs() <= TOLERANCE,
                    "{init:?} seed {seed}, {what} layer {} over {}: ratio {r:.4}, \
                     predicted {predicted} (all: {rs:?})",
                    l + 1,
                    l + 2,
                );
            }
        }
    }
}

#[test]
fn standard_initialization_shrinks_both_by_three_per_layer() {
    // n Var[W] = n * (1/sqrt(n))^2 / 3 = 1/3 each way: ratios of 3.
    check(Init::Standard, 3.0);
}

#[test]
fn normalized_initialization_keeps_both_constant() {
    // n Var[W] = n * (6 / 2n) / 3 = 1 each way: ratios of 1.
    check(Init::GlorotUniform, 1.0);
}
