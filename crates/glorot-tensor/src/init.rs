//! Weight initializers, seeded through the caller's random generator.

use ndarray::{Array2, ArrayViewMut2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Float};

mod qr;

/// How to initialize a weight matrix `w: (fan_in, fan_out)`, the notebook's layout for
/// `x @ w`.
///
/// Every initializer draws in `f64` and converts to the element type, so a seed gives the
/// same weights (up to rounding) in `f32` and `f64`. Normal draws come from
/// `rand_distr::StandardNormal` (ziggurat), uniform draws follow NumPy's formula
/// `low + (high - low) * u` with `u` uniform in `[0, 1)`. Replaying NumPy's *stream* is
/// the job of [`numpy_rng`](crate::numpy_rng), not of these distributions.
///
/// Biases are not covered here: they start at zero (`np.zeros`) unless a caller decides
/// otherwise.
///
/// Serialized with a `kind` tag: `{"kind":"glorot_uniform"}`,
/// `{"kind":"normal","mean":0.0,"std":1.0}`, `{"kind":"orthogonal","gain":1.0}`.
///
/// ```
/// use glorot_tensor::Init;
/// use rand::SeedableRng;
/// use rand_chacha::ChaCha8Rng;
///
/// let mut rng = ChaCha8Rng::seed_from_u64(5);
/// let w = Init::GlorotUniform.weights::<f64, _>(784, 500, &mut rng).unwrap();
/// let r = (6.0f64 / (784.0 + 500.0)).sqrt();
/// assert!(w.iter().all(|&v| -r <= v && v < r));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Init {
    /// Glorot/Xavier uniform, as the notebook: `U(-r, r)` with
    /// `r = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
    /// Normal with the given mean and standard deviation. The notebook's `"normal"` is
    /// `Normal { mean: 0.0, std: 1.0 }` (`np.random.normal(scale=1)`).
    Normal {
        /// Mean of the distribution.
        mean: f64,
        /// Standard deviation (finite, `>= 0`).
        std: f64,
    },
    /// All zeros (the notebook's `"zero"`: every unit of a layer stays identical).
    Zero,
    /// He/Kaiming normal: `N(0, 2 / fan_in)`, not truncated (PyTorch's
    /// `kaiming_normal_` with its defaults; Keras truncates instead).
    HeNormal,
    /// He/Kaiming uniform: `U(-r, r)` with `r = sqrt(6 / fan_in)` (variance `2 / fan_in`).
    HeUniform,
    /// LeCun normal: `N(0, 1 / fan_in)`, not truncated.
    LecunNormal,
    /// Orthogonal (Saxe et al. 2014): a standard normal matrix made orthogonal by a QR
    /// decomposition (Householder reflections written in this crate, computed in `f64`;
    /// no LAPACK), with the columns of `Q` multiplied by the signs of `diag(R)` so the
    /// result is uniformly (Haar) distributed, then scaled by `gain`. For `fan_in >= fan_out` the columns are orthonormal
    /// (`w^T w = gain^2 I`); otherwise the rows are (`w w^T = gain^2 I`). PyTorch's
    /// `orthogonal_` does the same.
    Orthogonal {
        /// Scale applied to the orthogonal matrix (finite).
        gain: f64,
    },
    /// Glorot and Bengio's (2010) "standard" initialization, their eq. (1): `U(-r, r)` with
    /// `r = 1 / sqrt(fan_in)` (variance `1 / (3 fan_in)`), the common heuristic their
    /// normalized initialization ([`GlorotUniform`](Self::GlorotUniform)) is compared to.
    Standard,
}

impl Init {
    /// Fills `w: (fan_in, fan_out)` in place, drawing from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidInitParameter`] for a non-finite mean, a negative or non-finite
    /// `std`, or a non-finite `gain`. On error `w` is left unchanged.
    pub fn fill<F: Float, R: Rng + ?Sized>(
        &self,
        mut w: ArrayViewMut2<F>,
        rng: &mut R,
    ) -> Result<(), Error> {
        let (fan_in, fan_out) = w.dim();
        match *self {
            Init::GlorotUniform => {
                let r = (6.0 / (fan_in + fan_out) as f64).sqrt();
                fill_uniform(w, -r, r, rng);
            }
            Init::Standard => {
                let r = 1.0 / (fan_in as f64).sqrt();
                fill_uniform(w, -r, r, rng);
            }
            Init::HeUniform => {
                let r = (6.0 / fan_in as f64).sqrt();
                fill_uniform(w, -r, r, rng);
            }
            Init::Normal { mean, std } => {
                check_finite("mean", mean)?;
                check_std(std)?;
                fill_normal(w, mean, std, rng);
            }
            Init::HeNormal => fill_normal(w, 0.0, (2.0 / fan_in as f64).sqrt(), rng),
            Init::LecunNormal => fill_normal(w, 0.0, (1.0 / fan_in as f64).sqrt(), rng),
            Init::Zero => w.fill(F::zero()),
            Init::Orthogonal { gain } => {
                check_finite("gain", gain)?;
                let q = orthogonal(fan_in, fan_out, rng);
                ndarray::Zip::from(&mut w)
                    .and(&q)
                    .for_each(|w, &q| *w = F::from_f64(gain * q));
            }
        }
        Ok(())
    }

    /// Allocates a `(fan_in, fan_out)` matrix and fills it with [`Init::fill`].
    ///
    /// # Errors
    /// As [`Init::fill`].
    pub fn weights<F: Float, R: Rng + ?Sized>(
        &self,
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) -> Result<Array2<F>, Error> {
        let mut w = Array2::zeros((fan_in, fan_out));
        self.fill(w.view_mut(), rng)?;
        Ok(w)
    }
}

fn check_finite(name: &'static str, value: f64) -> Result<(), Error> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidInitParameter {
            name,
            value,
            reason: "must be finite",
        })
    }
}

fn check_std(std: f64) -> Result<(), Error> {
    check_finite("std", std)?;
    if std < 0.0 {
        return Err(Error::InvalidInitParameter {
            name: "std",
            value: std,
            reason: "must be >= 0",
        });
    }
    Ok(())
}

/// NumPy's `uniform(low, high)`: `low + (high - low) * u`, `u` in `[0, 1)`.
fn fill_uniform<F: Float, R: Rng + ?Sized>(
    mut w: ArrayViewMut2<F>,
    low: f64,
    high: f64,
    rng: &mut R,
) {
    let width = high - low;
    w.map_inplace(|v| *v = F::from_f64(low + width * rng.random::<f64>()));
}

/// NumPy's `normal(loc, scale)`: `loc + scale * n`, `n` standard normal.
fn fill_normal<F: Float, R: Rng + ?Sized>(
    mut w: ArrayViewMut2<F>,
    mean: f64,
    std: f64,
    rng: &mut R,
) {
    w.map_inplace(|v| {
        let n: f64 = StandardNormal.sample(rng);
        *v = F::from_f64(mean + std * n);
    });
}

/// A `(rows, cols)` matrix with orthonormal columns (rows >= cols) or rows (rows < cols).
fn orthogonal<R: Rng + ?Sized>(rows: usize, cols: usize, rng: &mut R) -> Array2<f64> {
    if rows == 0 || cols == 0 {
        return Array2::zeros((rows, cols));
    }
    // Decompose the tall orientation, so Q has min(rows, cols) orthonormal columns.
    let (m, n) = if rows >= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let a = Array2::<f64>::from_shape_simple_fn((m, n), || StandardNormal.sample(rng));
    // The reduced factors: q (m, n), r (n, n).
    let qr::ThinQr { mut q, r } = qr::thin_qr(a.view());
    for j in 0..n {
        // The sign of diag(R): a zero diagonal (probability zero) keeps the column.
        if r[[j, j]] < 0.0 {
            q.column_mut(j).mapv_inplace(|v| -v);
        }
    }
    if rows >= cols { q } else { q.reversed_axes() }
}
