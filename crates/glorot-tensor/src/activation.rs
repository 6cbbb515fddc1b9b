//! Activation functions, forward in place and backward from the output.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Zip};

use crate::{Error, Float, sum::pairwise_sum_by};

/// Below this many elements an element-wise pass stays on one thread.
const PARALLEL_MIN: usize = 8192;

/// A hidden-layer nonlinearity.
///
/// Each activation's derivative is computed from its *output* `a = f(z)`, as the notebook
/// does, so backpropagation needs no copy of the pre-activations:
///
/// | activation | `f(z)` | `f'(z)` from `a = f(z)` |
/// | --- | --- | --- |
/// | [`Relu`](Self::Relu) | `max(z, 0)` | `1` if `a > 0`, else `0` |
/// | [`Sigmoid`](Self::Sigmoid) | `1 / (1 + exp(-z))` ([`sigmoid`]) | `a * (1 - a)` |
/// | [`Tanh`](Self::Tanh) | `tanh(z)` | `1 - a * a` |
/// | [`Softsign`](Self::Softsign) | `z / (1 + \|z\|)` ([`softsign`]) | `(1 - \|a\|) * (1 - \|a\|)` |
///
/// Parses case-insensitively from `"relu"` (the notebook writes `"ReLU"`), `"sigmoid"`,
/// `"tanh"` and `"softsign"`; displays and serializes in lowercase.
///
/// ```
/// use glorot_tensor::Activation;
///
/// let act: Activation = "ReLU".parse().unwrap();
/// assert_eq!(act, Activation::Relu);
/// assert_eq!(act.to_string(), "relu");
/// assert_eq!(Activation::Tanh.derivative_from_output(0.5f64), 0.75);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Rectified linear unit, `max(z, 0)` (NumPy's `np.maximum(z, 0)`: NaN propagates).
    /// Derivative from the output: `1` where `a > 0`, `0` elsewhere (also at `a == 0`,
    /// as the notebook's `np.where(x > 0, 1.0, 0.0)`).
    Relu,
    /// Logistic sigmoid, computed as SciPy's `expit` (see [`sigmoid`]).
    /// Derivative from the output: `a * (1 - a)`.
    Sigmoid,
    /// Hyperbolic tangent. Derivative from the output: `1 - a * a` (the notebook's
    /// `1.0 - x**2`; NumPy evaluates `x**2` as `x * x`).
    Tanh,
    /// Softsign, `z / (1 + |z|)` (Glorot and Bengio, 2010, section 2.3; see [`softsign`]):
    /// like `tanh` an odd function with values in `(-1, 1)`, but approaching its
    /// asymptotes polynomially rather than exponentially. Derivative from the output:
    /// `1 / (1 + |z|)^2 = (1 - |a|)^2`, computed as `(1 - |a|) * (1 - |a|)`.
    Softsign,
}

impl Activation {
    /// Every activation: the notebook's search order (`ReLU`, `sigmoid`, `tanh`), then
    /// `softsign` (Glorot and Bengio's third).
    pub const ALL: [Activation; 4] = [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softsign,
    ];

    /// The activation of one value: `f(z)`.
    #[inline]
    pub fn apply<F: Float>(self, z: F) -> F {
        match self {
            Activation::Relu => relu(z),
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => num_traits::Float::tanh(z),
            Activation::Softsign => softsign(z),
        }
    }

    /// `z <- f(z)` element-wise, in place. Shape: any `(rows, cols)`.
    ///
    /// ```
    /// use glorot_tensor::Activation;
    /// use ndarray::array;
    ///
    /// let mut z = array![[-1.0f32, 2.0]];
    /// Activation::Relu.forward_inplace(z.view_mut());
    /// assert_eq!(z, array![[0.0, 2.0]]);
    /// ```
    pub fn forward_inplace<F: Float>(self, mut z: ArrayViewMut2<F>) {
        match self {
            Activation::Relu => z.mapv_inplace(relu),
            Activation::Sigmoid => z.mapv_inplace(sigmoid),
            Activation::Tanh => z.mapv_inplace(num_traits::Float::tanh),
            Activation::Softsign => z.mapv_inplace(softsign),
        }
    }

    /// Fused bias and activation: `z[i, j] <- f(z[i, j] + bias[j])` in one pass over `z`.
    /// Bit for bit the same as [`add_row_bias`](crate::add_row_bias) followed by
    /// [`forward_inplace`](Self::forward_inplace) (the notebook's
    /// `f(np.dot(x, w) + b)`), with one memory pass instead of two. `tanh` in `f64` on
    /// contiguous rows is [`crate::fused::tanh_f64_slice`] with
    /// [`Isa::default_for_process`](crate::isa::Isa::default_for_process).
    ///
    /// Shapes: `z: (batch, units)`, `bias: (units,)`.
    ///
    /// # Panics
    /// If `bias.len() != z.ncols()`.
    ///
    /// ```
    /// use glorot_tensor::Activation;
    /// use ndarray::array;
    ///
    /// let mut z = array![[-1.0f64, 1.0]];
    /// Activation::Relu.forward_bias_inplace(z.view_mut(), array![0.5, -2.0].view());
    /// assert_eq!(z, array![[0.0, 0.0]]);
    /// ```
    #[track_caller]
    pub fn forward_bias_inplace<F: Float>(self, mut z: ArrayViewMut2<F>, bias: ArrayView1<F>) {
        assert!(
            bias.len() == z.ncols(),
            "forward_bias_inplace: bias has {} entries but z has {} columns",
            bias.len(),
            z.ncols()
        );
        let cols = z.ncols();
        if let (Some(data), Some(b)) = (z.as_slice_mut(), bias.as_slice()) {
            if cols == 0 {
                return;
            }
            let isa = crate::isa::Isa::default_for_process();
            // Large matrices: rows shared among the fused kernels' thread team
            // (`fused::set_threads`); every element is computed the same way on any thread.
            if crate::fused::threads() > 1 && data.len() >= PARALLEL_MIN {
                let rows_per_task = (PARALLEL_MIN / 2).div_ceil(cols);
                crate::fused::for_each_chunk(data, rows_per_task * cols, &|_, chunk| {
                    for row in chunk.chunks_mut(cols) {
                        self.bias_row(row, b, isa);
                    }
                });
            } else {
                for row in data.chunks_mut(cols) {
                    self.bias_row(row, b, isa);
                }
            }
            return;
        }
        for row in z.rows_mut() {
            match self {
                Activation::Relu => Zip::from(row)
                    .and(&bias)
                    .for_each(|z, &b| *z = relu(*z + b)),
                Activation::Sigmoid => Zip::from(row)
                    .and(&bias)
                    .for_each(|z, &b| *z = sigmoid(*z + b)),
                Activation::Tanh => Zip::from(row)
                    .and(&bias)
                    .for_each(|z, &b| *z = num_traits::Float::tanh(*z + b)),
                Activation::Softsign => Zip::from(row)
                    .and(&bias)
                    .for_each(|z, &b| *z = softsign(*z + b)),
            }
        }
    }

    /// `row[j] = f(row[j] + bias[j])`, the same operations as the strided path above. In
    /// `f64`, `tanh` goes through [`crate::fused::tanh_f64_slice`] with `isa` (the
    /// caller's [`Isa::default_for_process`](crate::isa::Isa::default_for_process)): a
    /// vector at a time with vector kernels, bit for bit GNU libc 2.36's `tanh` (see there).
    fn bias_row<F: Float>(self, row: &mut [F], bias: &[F], isa: crate::isa::Isa) {
        if let (Activation::Tanh, Some(r)) = (self, F::as_f64_slice_mut(row)) {
            for (z, &b) in r.iter_mut().zip(F::as_f64_slice(bias).unwrap_or(&[])) {
                *z += b;
            }
            crate::fused::tanh_f64_slice(isa, r);
            return;
        }
        let pairs = row.iter_mut().zip(bias);
        match self {
            Activation::Relu => pairs.for_each(|(z, &b)| *z = relu(*z + b)),
            Activation::Sigmoid => pairs.for_each(|(z, &b)| *z = sigmoid(*z + b)),
            Activation::Tanh => pairs.for_each(|(z, &b)| *z = num_traits::Float::tanh(*z + b)),
            Activation::Softsign => pairs.for_each(|(z, &b)| *z = softsign(*z + b)),
        }
    }

    /// `f'(z)` computed from the output `a = f(z)` (see the table on [`Activation`]).
    #[inline]
    pub fn derivative_from_output<F: Float>(self, a: F) -> F {
        match self {
            Activation::Relu => {
                if a > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::Sigmoid => a * (F::one() - a),
            Activation::Tanh => F::one() - a * a,
            Activation::Softsign => softsign_derivative_from_output(a),
        }
    }

    /// `grad[i, j] = f'(a[i, j]) * grad[i, j]`, with the derivative taken from the output
    /// `a` and multiplied in the notebook's order (`activation_p(h) * douth`).
    ///
    /// Shapes: `a` and `grad` both `(batch, units)`.
    ///
    /// # Panics
    /// If the shapes differ.
    ///
    /// ```
    /// use glorot_tensor::Activation;
    /// use ndarray::array;
    ///
    /// let a = array![[0.5f64, 0.0]];
    /// let mut g = array![[2.0, 3.0]];
    /// Activation::Sigmoid.backward_inplace(a.view(), g.view_mut());
    /// assert_eq!(g, array![[0.5, 0.0]]);
    /// ```
    #[track_caller]
    pub fn backward_inplace<F: Float>(self, a: ArrayView2<F>, mut grad: ArrayViewMut2<F>) {
        assert!(
            a.dim() == grad.dim(),
            "backward_inplace: a is {:?} but grad is {:?}",
            a.dim(),
            grad.dim()
        );
        // Large matrices in the same standard layout: chunks shared among the fused
        // kernels' thread team, each element computed as below.
        if crate::fused::threads() > 1
            && grad.len() >= PARALLEL_MIN
            && let (Some(a), Some(g)) = (a.as_slice(), grad.as_slice_mut())
        {
            let chunk = PARALLEL_MIN / 2;
            crate::fused::for_each_chunk(g, chunk, &|i, part| {
                let start = i * chunk;
                let a = &a[start..start + part.len()];
                part.iter_mut()
                    .zip(a)
                    .for_each(|(g, &a)| *g = self.backward_one(a, *g));
            });
            return;
        }
        Zip::from(&mut grad)
            .and(&a)
            .for_each(|g, &a| *g = self.backward_one(a, *g));
    }

    /// `f'(z) * g` from the output `a = f(z)`, as [`Activation::backward_inplace`]
    /// computes each element.
    #[inline(always)]
    fn backward_one<F: Float>(self, a: F, g: F) -> F {
        match self {
            Activation::Relu => Activation::Relu.derivative_from_output(a) * g,
            Activation::Sigmoid => a * (F::one() - a) * g,
            Activation::Tanh => (F::one() - a * a) * g,
            Activation::Softsign => softsign_derivative_from_output(a) * g,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softsign => "softsign",
        })
    }
}

impl FromStr for Activation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("relu") {
            Ok(Activation::Relu)
        } else if s.eq_ignore_ascii_case("sigmoid") {
            Ok(Activation::Sigmoid)
        } else if s.eq_ignore_ascii_case("tanh") {
            Ok(Activation::Tanh)
        } else if s.eq_ignore_ascii_case("softsign") {
            Ok(Activation::Softsign)
        } else {
            Err(Error::UnknownActivation { name: s.to_owned() })
        }
    }
}

/// `max(z, 0)` as NumPy's scalar `np.maximum(z, 0)`: NaN and `-0.0` pass through.
#[inline]
fn relu<F: Float>(z: F) -> F {
    if z < F::zero() { F::zero() } else { z }
}

/// The logistic function `1 / (1 + exp(-x))`, computed exactly as SciPy's
/// `scipy.special.expit` computes it (`1 / (1 + std::exp(-x))` in SciPy's `_logit.h`,
/// `xsf/log_exp.h` in recent versions), so `f64` results agree with SciPy bit for bit on
/// the same C library `exp`.
///
/// It is finite and correct for every finite `x`: for very negative `x`, `exp(-x)`
/// overflows to infinity and the result is `1 / inf = 0`; for large `x` it is `1`. No NaN
/// arises except from a NaN input.
///
/// ```
/// use glorot_tensor::sigmoid;
///
/// assert_eq!(sigmoid(0.0f64), 0.5);
/// assert_eq!(sigmoid(-1000.0f64), 0.0);
/// assert_eq!(sigmoid(1000.0f32), 1.0);
/// ```
#[inline]
pub fn sigmoid<F: Float>(x: F) -> F {
    F::one() / (F::one() + num_traits::Float::exp(-x))
}

/// Softsign, `x / (1 + |x|)` (Glorot and Bengio, 2010): one IEEE addition and one
/// division after an exact `abs`, so every correctly rounded implementation (the scalar
/// path and the vector kernels of every instruction set) gives the same bits. `-0.0`
/// stays `-0.0`, `+-inf` gives NaN (`inf / inf`), NaN propagates.
///
/// ```
/// use glorot_tensor::softsign;
///
/// assert_eq!(softsign(1.0f64), 0.5);
/// assert_eq!(softsign(-3.0f32), -0.75);
/// ```
#[inline]
pub fn softsign<F: Float>(x: F) -> F {
    x / (F::one() + num_traits::Float::abs(x))
}

/// Softsign's derivative from its output `a = softsign(z)`: `1 / (1 + |z|)^2`, and since
/// `1 - |a| = 1 / (1 + |z|)`, `(1 - |a|) * (1 - |a|)`.
#[inline]
fn softsign_derivative_from_output<F: Float>(a: F) -> F {
    let d = F::one() - num_traits::Float::abs(a);
    d * d
}

/// [`sigmoid`] element-wise, in place. Shape: any `(rows, cols)`.
pub fn sigmoid_inplace<F: Float>(mut z: ArrayViewMut2<F>) {
    z.mapv_inplace(sigmoid);
}

/// Row-wise softmax in place, numerically stable: each row becomes
/// `exp(z - max) / sum(exp(z - max))`, as SciPy's `softmax(z, axis=1)` computes it
/// (row sum in NumPy's pairwise order). Shape: `(batch, classes)`.
///
/// ```
/// use glorot_tensor::softmax_rows_inplace;
/// use ndarray::array;
///
/// let mut z = array![[1000.0f64, 1000.0], [0.0, f64::ln(3.0)]];
/// softmax_rows_inplace(z.view_mut());
/// assert_eq!(z[[0, 0]], 0.5);
/// assert!((z[[1, 1]] - 0.75).abs() < 1e-15);
/// ```
pub fn softmax_rows_inplace<F: Float>(mut z: ArrayViewMut2<F>) {
    for mut row in z.rows_mut() {
        let m = row_max(row.view());
        row.mapv_inplace(|v| num_traits::Float::exp(v - m));
        let s = pairwise_sum_by(row.len(), |j| row[j]);
        row.mapv_inplace(|v| v / s);
    }
}

/// Maximum of a row with NaN propagating (as `np.amax`); `-inf` for an empty row.
#[inline]
pub(crate) fn row_max<F: Float>(row: ndarray::ArrayView1<F>) -> F {
    let mut m = F::neg_infinity();
    for &v in row {
        if v.is_nan() {
            return v;
        }
        if v > m {
            m = v;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_the_notebook_spellings() {
        for (s, a) in [
            ("ReLU", Activation::Relu),
            ("relu", Activation::Relu),
            ("sigmoid", Activation::Sigmoid),
            ("Sigmoid", Activation::Sigmoid),
            ("tanh", Activation::Tanh),
            ("TANH", Activation::Tanh),
            ("softsign", Activation::Softsign),
            ("SoftSign", Activation::Softsign),
        ] {
            assert_eq!(s.parse::<Activation>().unwrap(), a);
        }
        assert!(matches!(
            "softplus".parse::<Activation>(),
            Err(Error::UnknownActivation { name }) if name == "softplus"
        ));
    }

    #[test]
    fn display_round_trips() {
        for a in Activation::ALL {
            assert_eq!(a.to_string().parse::<Activation>().unwrap(), a);
        }
    }

    #[test]
    fn softsign_derivative_from_output_matches_the_derivative_of_z() {
        // d/dz z / (1 + |z|) = 1 / (1 + |z|)^2, exact in binary for these z.
        for z in [-3.0f64, -1.0, -0.0, 0.0, 1.0, 7.0] {
            let a = softsign(z);
            let expected = 1.0 / ((1.0 + z.abs()) * (1.0 + z.abs()));
            assert_eq!(
                Activation::Softsign.derivative_from_output(a),
                expected,
                "z = {z}"
            );
        }
        assert!(softsign(f64::INFINITY).is_nan());
        assert!(softsign(-0.0f32).is_sign_negative());
    }

    #[test]
    fn relu_propagates_nan_like_np_maximum() {
        assert!(relu(f64::NAN).is_nan());
        assert_eq!(relu(-2.0f32), 0.0);
    }
}
