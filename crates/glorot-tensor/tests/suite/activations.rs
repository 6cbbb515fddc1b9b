//! Activations: derivatives against central differences, stability, softmax.

use glorot_tensor::{
    Activation, Float, add_row_bias, sigmoid, sigmoid_inplace, softmax_rows_inplace,
};
use ndarray::{Array2, array};

use super::common::{assert_close, eps, random_matrix, rng};

/// Points where every activation is smooth (none at 0, the ReLU kink).
fn points() -> Vec<f64> {
    (-40..=40)
        .filter(|&k| k != 0)
        .map(|k| k as f64 * 0.1 + 0.013)
        .collect()
}

/// `derivative_from_output(f(z))` against the central difference `(f(z+h) - f(z-h)) / 2h`
/// computed in f64. With h = 1e-5 the truncation error is h^2 |f'''| / 6 <= 1e-10 / 6
/// (|f'''| <= 2 for tanh, <= 1/8 for the sigmoid; for softsign `6 / (1 + |z|)^4 <= 6`, so
/// h^2 |f'''| / 6 <= 1e-10 still) and the rounding error is about
/// eps / h = 2e-11, so 1e-9 is a safe f64 tolerance. The F-typed derivative carries F's
/// rounding on top: a few eps of F.
fn derivatives_match_central_differences<F: Float>() {
    let h = 1e-5;
    for act in Activation::ALL {
        for z in points() {
            let fd = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
            let a = act.apply(F::from_f64(z));
            let d = act.derivative_from_output(a).to_f64();
            let tol = 1e-9 + 8.0 * eps::<F>();
            assert_close(
                &format!("{act} derivative ({}) at {z}", F::NAME),
                d,
                fd,
                tol,
            );
        }
    }
}

/// The derivative formulas of the notebook, evaluated on its own terms (hand-worked:
/// tanh' from a = 0.5 is 1 - 0.25 = 0.75; sigmoid' from 0.5 is 0.25; ReLU' is 1 for a > 0
/// and 0 at a = 0; softsign' from 0.5 (z = 1) is (1 - 0.5)^2 = 0.25 = 1 / (1 + 1)^2).
fn derivative_formulas<F: Float>() {
    let f = F::from_f64;
    assert_eq!(Activation::Tanh.derivative_from_output(f(0.5)), f(0.75));
    assert_eq!(Activation::Sigmoid.derivative_from_output(f(0.5)), f(0.25));
    assert_eq!(Activation::Relu.derivative_from_output(f(3.0)), f(1.0));
    assert_eq!(Activation::Relu.derivative_from_output(f(0.0)), f(0.0));
    assert_eq!(Activation::Softsign.derivative_from_output(f(0.5)), f(0.25));
    assert_eq!(
        Activation::Softsign.derivative_from_output(f(-0.5)),
        f(0.25)
    );
}

/// forward_inplace equals apply element-wise; backward_inplace multiplies the derivative
/// from the output into the gradient, in the notebook's order `activation_p(h) * douth`.
fn forward_and_backward_in_place<F: Float>() {
    let mut r = rng(1);
    for act in Activation::ALL {
        let z: Array2<F> = random_matrix::<F>(9, 13, &mut r).mapv(|v| v * F::from_f64(4.0));
        let mut a = z.clone();
        act.forward_inplace(a.view_mut());
        for (&zv, &av) in z.iter().zip(&a) {
            assert_eq!(av, act.apply(zv));
        }
        let g: Array2<F> = random_matrix(9, 13, &mut r);
        let mut out = g.clone();
        act.backward_inplace(a.view(), out.view_mut());
        for ((&av, &gv), &ov) in a.iter().zip(&g).zip(&out) {
            assert_eq!(ov, act.derivative_from_output(av) * gv);
        }
    }
}

/// The fused bias + activation pass equals the two separate passes bit for bit.
fn fused_bias_forward<F: Float>() {
    let mut r = rng(5);
    let bias = random_matrix::<F>(1, 13, &mut r).row(0).to_owned();
    for act in Activation::ALL {
        let z: Array2<F> = random_matrix::<F>(9, 13, &mut r).mapv(|v| v * F::from_f64(3.0));
        let mut two = z.clone();
        add_row_bias(two.view_mut(), bias.view());
        act.forward_inplace(two.view_mut());
        let mut fused = z.clone();
        act.forward_bias_inplace(fused.view_mut(), bias.view());
        assert_eq!(fused, two, "{act}");
    }
}

/// Every activation stays finite for huge inputs; the sigmoid saturates at exactly 0 and 1.
fn stable_for_large_inputs<F: Float>() {
    let big = F::max_value();
    for act in Activation::ALL {
        for z in [big, -big, F::from_f64(1e4), F::from_f64(-1e4)] {
            let a = act.apply(z);
            assert!(a.is_finite(), "{act}({z}) = {a}");
            assert!(act.derivative_from_output(a).is_finite());
        }
    }
    assert_eq!(sigmoid(-big), F::zero());
    assert_eq!(sigmoid(big), F::one());
    let mut z = Array2::from_elem((2, 2), F::from_f64(-1e5));
    sigmoid_inplace(z.view_mut());
    assert!(z.iter().all(|&v| v == F::zero()));
}

/// The sigmoid in F agrees with the f64 sigmoid to within a couple of F's ulps
/// (f32: 1 / (1 + expf(-x)) has three correctly rounded or near-correctly rounded steps).
fn sigmoid_agrees_across_precisions<F: Float>() {
    for z in points() {
        let lo = sigmoid(F::from_f64(F::from_f64(z).to_f64())).to_f64();
        let hi = sigmoid(F::from_f64(z).to_f64());
        assert_close(
            &format!("sigmoid({z}) in {}", F::NAME),
            lo,
            hi,
            4.0 * eps::<F>() * hi,
        );
    }
}

/// Softmax rows sum to 1, are shift invariant, survive logits of 1e4 and match a
/// hand-worked row: softmax([0, ln 3]) = [1/4, 3/4].
fn softmax_rows<F: Float>() {
    let f = F::from_f64;
    let mut z = array![[f(0.0), f(3f64.ln())], [f(1e4), f(1e4)], [f(-1e4), f(0.0)]];
    softmax_rows_inplace(z.view_mut());
    assert_close(
        "softmax [0, ln 3]",
        z[[0, 0]].to_f64(),
        0.25,
        4.0 * eps::<F>(),
    );
    assert_close(
        "softmax [0, ln 3]",
        z[[0, 1]].to_f64(),
        0.75,
        4.0 * eps::<F>(),
    );
    assert_eq!(z[[1, 0]], f(0.5));
    assert_eq!(z[[2, 1]], f(1.0));

    let mut r = rng(2);
    let x: Array2<F> = random_matrix::<F>(7, 11, &mut r).mapv(|v| v * f(10.0));
    let mut p = x.clone();
    softmax_rows_inplace(p.view_mut());
    let mut shifted = x.mapv(|v| v + f(100.0));
    softmax_rows_inplace(shifted.view_mut());
    for row in p.rows() {
        assert_close(
            "row sum",
            row.iter().map(|&v| v.to_f64()).sum(),
            1.0,
            16.0 * eps::<F>(),
        );
    }
    for (&a, &b) in p.iter().zip(&shifted) {
        // Adding 100 rounds x to F's grid near 100 (about 1e2 * eps), which moves exp by
        // the same relative amount.
        assert_close(
            "shift invariance",
            a.to_f64(),
            b.to_f64(),
            400.0 * eps::<F>() * b.to_f64() + 1e-30,
        );
    }
}

crate::both_floats!(
    derivatives_match_central_differences,
    derivative_formulas,
    forward_and_backward_in_place,
    fused_bias_forward,
    stable_for_large_inputs,
    sigmoid_agrees_across_precisions,
    softmax_rows,
);
