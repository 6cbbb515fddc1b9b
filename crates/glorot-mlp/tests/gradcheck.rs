//! Backpropagation against finite differences on small random networks.

use glorot_mlp::{
    Activation, GradCheckOptions, Head, Init, Mlp, ModelConfig, ParamId, Stencil, WeightSource,
    check_gradients, notebook_grad_check,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACTIVATIONS: [Activation; 4] = Activation::ALL;
const HEADS: [Head; 2] = [Head::SigmoidBce, Head::SoftmaxCrossEntropy];

/// A random model with O(1) weights and biases (so no gradient is structurally tiny) and a
/// batch of standard-ish inputs with one-hot targets.
fn problem(
    layers: &[usize],
    activation: Activation,
    head: Head,
    seed: u64,
) -> (Mlp<f64>, Array2<f64>, Array2<f64>) {
    let config = ModelConfig {
        layers: layers.to_vec(),
        activation,
        head,
        init: Init::Normal {
            mean: 0.0,
            std: 0.8,
        },
    }
    .validate()
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Mlp::<f64>::new(config, WeightSource::Rng(&mut rng)).unwrap();
    for l in 0..model.depth() {
        for b in model.bias_mut(l).iter_mut() {
            *b = rng.random_range(-0.5..0.5);
        }
    }
    let rows = 5;
    let x = Array2::from_shape_fn((rows, layers[0]), |_| rng.random_range(-1.5..1.5));
    let outputs = layers[layers.len() - 1];
    let y = Array2::from_shape_fn((rows, outputs), |(i, j)| {
        f64::from(u8::from((i * 3 + 1) % outputs == j))
    });
    (model, x, y)
}

#[track_caller]
fn check_passes(layers: &[usize], activation: Activation, head: Head, seed: u64) -> usize {
    let (model, x, y) = problem(layers, activation, head, seed);
    let report = check_gradients(&model, x.view(), y.view(), &GradCheckOptions::default()).unwrap();
    let depth = layers.len() - 1;
    assert_eq!(report.params.len(), 2 * depth);
    assert_eq!(report.checked() + report.kinks(), model.num_parameters());
    assert!(
        report.passed(),
        "{layers:?} {activation} {head}: max relative error {:e}\n{:#?}",
        report.max_rel_error(),
        report.params
    );
    if activation != Activation::Relu {
        assert_eq!(report.kinks(), 0, "only ReLU has kinks");
    }
    report.kinks()
}

/// Every parameter tensor (weights and biases of every layer), every activation, both
/// heads, three depths: relative error below 1e-6 (the bound).
#[test]
fn backprop_matches_central_differences_everywhere() {
    let mut seed = 0;
    for layers in [&[4, 3][..], &[5, 7, 6, 3], &[6, 5, 4, 5, 2]] {
        for activation in ACTIVATIONS {
            for head in HEADS {
                seed += 1;
                check_passes(layers, activation, head, seed);
            }
        }
    }
}

/// A ReLU unit whose pre-activation is exactly 0 on one row: perturbing its incoming
/// weights moves it across the kink, and the check must skip and count those entries
/// instead of reporting a false failure.
#[test]
fn relu_kinks_are_detected_skipped_and_counted() {
    let (mut model, x, y) = problem(&[4, 5, 3], Activation::Relu, Head::SigmoidBce, 42);
    // z[0, 2] = x[0] . w0[:, 2] + b0[2] = 0 with inputs and weights chosen exactly.
    let mut w = model.weights_mut(0);
    for i in 0..4 {
        w[[i, 2]] = 0.25 * (i as f64 + 1.0);
    }
    let mut x = x;
    x.row_mut(0).assign(&ndarray::arr1(&[1.0, -0.5, 0.25, 0.5]));
    // 0.25 - 0.25 + 0.1875 + 0.5 = 0.6875
    model.bias_mut(0)[2] = -0.6875;
    let report = check_gradients(&model, x.view(), y.view(), &GradCheckOptions::default()).unwrap();
    assert!(report.passed(), "{:#?}", report.params);
    let w0 = &report.params[0];
    assert_eq!(w0.param, ParamId::weight(0));
    // Every w0[i, 2] with x[0, i] != 0 moves z[0, 2] off 0: all four are kinks, and b0[2].
    assert!(w0.kinks >= 4, "{w0:?}");
    assert!(report.params[2].kinks >= 1, "{:?}", report.params[2]);
    assert!(report.checked() > 0);
}

/// The check is not vacuous: a coarse second-order difference (step 0.5) is far from the
/// derivative and must be reported as failing.
#[test]
fn a_bad_numeric_gradient_fails() {
    let (model, x, y) = problem(&[4, 6, 3], Activation::Tanh, Head::SigmoidBce, 7);
    let options = GradCheckOptions {
        step: 0.5,
        stencil: Stencil::Central2,
        ..GradCheckOptions::default()
    };
    let report = check_gradients(&model, x.view(), y.view(), &options).unwrap();
    assert!(!report.passed());
    assert!(report.max_rel_error() > 1e-3, "{}", report.max_rel_error());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["params"][0]["param"], "w0");
}

/// The notebook's Part 3 procedure on a small network: the N grid and its order, and the
/// convergence it plots (the difference falls like epsilon^2 until round-off).
#[test]
fn notebook_procedure_reports_the_n_grid() {
    let (model, x, y) = problem(&[12, 9, 8, 10], Activation::Tanh, Head::SigmoidBce, 3);
    let x = x.slice(ndarray::s![..1, ..]).to_owned();
    let y = y.slice(ndarray::s![..1, ..]).to_owned();
    let check = notebook_grad_check(&model, x.view(), y.view(), ParamId::weight(1), 0, 8).unwrap();
    let ns: Vec<f64> = check.steps.iter().map(|s| s.n).collect();
    // `for k in range(1,5): for i in range(0,5): N = k * math.pow(10,i)` (notebook, In [3]).
    let expected: Vec<f64> = (1..=4)
        .flat_map(|k| (0..=4).map(move |i| f64::from(k) * 10f64.powi(i)))
        .collect();
    assert_eq!(ns, expected);
    assert_eq!(ns[..6], [1.0, 10.0, 100.0, 1000.0, 10000.0, 2.0]);
    for s in &check.steps {
        assert_eq!(s.epsilon, 1.0 / s.n);
        assert_eq!(s.numeric.len(), 8);
        assert_eq!(
            s.max_abs_diff,
            s.abs_diff.iter().copied().fold(0.0, f64::max)
        );
    }
    // Second-order convergence: N = 10 -> 100 -> 1000 shrinks the difference ~100x.
    let d = |n: f64| check.steps.iter().find(|s| s.n == n).unwrap().max_abs_diff;
    assert!(d(100.0) < d(10.0) / 30.0, "{} {}", d(10.0), d(100.0));
    assert!(d(1000.0) < d(100.0) / 30.0, "{} {}", d(100.0), d(1000.0));
    assert!(
        check
            .steps
            .iter()
            .find(|s| s.n == 10000.0)
            .unwrap()
            .max_rel_error
            < 1e-6
    );
    // The model itself is untouched by the perturbations.
    let again = notebook_grad_check(&model, x.view(), y.view(), ParamId::weight(1), 0, 8).unwrap();
    assert_eq!(again, check);
    // Serde data for plotting.
    let json = serde_json::to_value(&check).unwrap();
    assert_eq!(json["param"], "w1");
    assert_eq!(json["steps"].as_array().unwrap().len(), 20);
    // Bad requests are errors, not panics.
    for (param, row, entries) in [
        (ParamId::weight(5), 0, 1),
        (ParamId::weight(1), 9, 1),
        (ParamId::weight(1), 0, 9),
        (ParamId::bias(0), 1, 1),
        (ParamId::bias(0), 0, 0),
    ] {
        assert!(notebook_grad_check(&model, x.view(), y.view(), param, row, entries).is_err());
    }
    assert!(notebook_grad_check(&model, x.view(), y.view(), ParamId::bias(2), 0, 10).is_ok());
}
