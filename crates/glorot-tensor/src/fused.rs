//! Fused `f32` kernels for the three products of a training step, with the element-wise
//! work done while the results are still in registers.
//!
//! | function | computes | replaces |
//! | --- | --- | --- |
//! | [`linear_forward`] | `out = f(x w + b)` | [`gemm`], [`Activation::forward_bias_inplace`] |
//! | [`linear_backward_input`] | `out = (d w^T) * f'(a)` | [`gemm`], [`Activation::backward_inplace`] |
//! | [`sgd_update`] | `w -= s x^T d`, `b -= s colsum(d)` | [`gemm`], [`column_sums`](crate::column_sums), the update |
//!
//! On x86-64 CPUs with AVX-512F they run register-tiled AVX-512 kernels (16 lanes, fused
//! multiply-adds) with a vectorized `tanh`, `exp` and sigmoid; elsewhere, or when the
//! environment variable `GLOROT_FUSED=off` is set (to compare), they fall back to the
//! unfused functions of this crate, with the same results up to rounding.
//!
//! # Arithmetic
//!
//! These kernels are for `f32` training, where BLAS's own summation order already differs
//! from NumPy's, and they change the last bits in three documented ways:
//!
//! - dot products accumulate in `k` order in one fused multiply-add chain per element
//!   (BLAS also uses FMA chains, split into blocks of `k`);
//! - [`sgd_update`] applies `w + (-s) * dot` as one fused multiply-add per element, where
//!   the notebook computes `w - lr * (dot / n)` with three roundings;
//! - `tanh`, `exp` and the sigmoid are polynomial approximations with an error of a few
//!   ulp instead of the C library's (tests bound it against `f64`).
//!
//! Use the unfused functions to replay a NumPy program bit for bit (in `f64`).
//!
//! # Layouts
//!
//! Every matrix must have contiguous rows (column stride 1), which includes standard
//! arrays and row ranges of them. Other layouts take the fallback path.

use std::sync::OnceLock;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::{Activation, gemm};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Whether the AVX-512 kernels run on this machine: the CPU has AVX-512F and
/// `GLOROT_FUSED` is not `off` (read once per process).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let off = std::env::var("GLOROT_FUSED").is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        !off && cpu_has_avx512f()
    })
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512f() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx512f() -> bool {
    false
}

/// Buffers [`linear_backward_input`] transposes through, for up to [`Scratch::ROWS`]
/// rows at a time. Made once per model; the kernels allocate nothing.
#[derive(Clone, Debug)]
pub struct Scratch {
    width: usize,
    transposed_delta: Vec<f32>,
    transposed_out: Vec<f32>,
}

impl Scratch {
    /// Rows of a batch processed per pass (larger batches are done in several passes).
    pub const ROWS: usize = 128;

    /// Buffers for matrices up to `max_width` columns wide.
    pub fn new(max_width: usize) -> Self {
        let len = if available() {
            Self::ROWS * max_width
        } else {
            0
        };
        Self {
            width: max_width,
            transposed_delta: vec![0.0; len],
            transposed_out: vec![0.0; len],
        }
    }
}

/// Rows contiguous and a non-negative row stride: what the kernels can address.
fn rows_contiguous<S: ndarray::RawData>(a: &ndarray::ArrayBase<S, ndarray::Ix2>) -> bool {
    let (rows, cols) = a.dim();
    let s = a.strides();
    (cols <= 1 || s[1] == 1) && (rows <= 1 || s[0] >= cols as isize)
}

/// Row stride of a matrix accepted by [`rows_contiguous`].
fn row_stride<S: ndarray::RawData>(a: &ndarray::ArrayBase<S, ndarray::Ix2>) -> usize {
    if a.nrows() <= 1 {
        a.ncols()
    } else {
        a.strides()[0] as usize
    }
}

#[cfg(target_arch = "x86_64")]
fn act_of(act: Option<Activation>) -> avx512::Act {
    match act {
        None => avx512::Act::Identity,
        Some(Activation::Relu) => avx512::Act::Relu,
        Some(Activation::Sigmoid) => avx512::Act::Sigmoid,
        Some(Activation::Tanh) => avx512::Act::Tanh,
    }
}

/// `c = a b` through the AVX-512 kernel with the tile shape that suits `n`.
///
/// # Safety
/// As [`avx512::gemm`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
unsafe fn gemm_auto(
    m: usize,
    n: usize,
    k: usize,
    a: avx512::AStrided,
    b: avx512::BRows,
    epi: avx512::Epilogue,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match n {
            0..=16 => avx512::gemm::<24, 1>(m, n, k, a, b, epi),
            17..=32 => avx512::gemm::<12, 2>(m, n, k, a, b, epi),
            _ if n.is_multiple_of(64) => avx512::gemm::<6, 4>(m, n, k, a, b, epi),
            _ => avx512::gemm::<8, 3>(m, n, k, a, b, epi),
        }
    }
}

/// `out = f(x w + bias)` with `f = act` (identity for `None`): one layer's forward pass.
///
/// Shapes: `x: (rows, fan_in)`, `w: (fan_in, fan_out)`, `bias: (fan_out,)`,
/// `out: (rows, fan_out)`.
///
/// # Panics
/// If the shapes disagree.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::{Activation, fused};
/// use ndarray::{Array2, array};
///
/// let x = array![[1.0f32, 2.0]];
/// let w = array![[0.5f32, -1.0], [0.25, 0.5]];
/// let mut out = Array2::zeros((1, 2));
/// fused::linear_forward(x.view(), w.view(), array![0.0, 1.0].view(), Some(Activation::Relu), out.view_mut());
/// assert_eq!(out, array![[1.0, 1.0]]);
/// ```
#[track_caller]
pub fn linear_forward(
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
    act: Option<Activation>,
    mut out: ArrayViewMut2<'_, f32>,
) {
    let (rows, fan_in) = x.dim();
    let fan_out = w.ncols();
    assert!(
        w.nrows() == fan_in && bias.len() == fan_out && out.dim() == (rows, fan_out),
        "linear_forward: x is {:?}, w {:?}, bias {}, out {:?}",
        x.dim(),
        w.dim(),
        bias.len(),
        out.dim()
    );
    #[cfg(target_arch = "x86_64")]
    if available()
        && rows_contiguous(&x)
        && rows_contiguous(&w)
        && rows_contiguous(&out)
        && (fan_out <= 1 || bias.strides()[0] == 1)
        && rows > 0
        && fan_out > 0
    {
        let epi = avx512::Epilogue::BiasAct {
            c: out.as_mut_ptr(),
            ldc: row_stride(&out),
            bias: bias.as_ptr(),
            act: act_of(act),
        };
        let a = avx512::AStrided {
            ptr: x.as_ptr(),
            rs: row_stride(&x),
            cs: 1,
        };
        let b = avx512::BRows {
            ptr: w.as_ptr(),
            ldb: row_stride(&w),
        };
        // SAFETY: AVX-512F was detected; x is rows x fan_in, w fan_in x fan_out, out and
        // bias rows x fan_out / fan_out, all with contiguous rows and the strides passed,
        // so every element the kernel addresses belongs to its view; out is borrowed
        // mutably, so it overlaps neither x nor w.
        #[allow(unsafe_code)]
        unsafe {
            gemm_auto(rows, fan_out, fan_in, a, b, epi);
        }
        return;
    }
    gemm(1.0, x, w, 0.0, out.view_mut());
    match act {
        Some(f) => f.forward_bias_inplace(out, bias),
        None => crate::add_row_bias(out, bias),
    }
}

/// `out = (delta w^T) * f'(a)`: backpropagation through one layer's weights and the
/// activation below it, with `f'` taken from the output `a = f(z)` as in
/// [`Activation::backward_inplace`].
///
/// Shapes: `delta: (rows, fan_out)`, `w: (fan_in, fan_out)`, `a` and `out`:
/// `(rows, fan_in)`; `scratch` made for widths up to `max(fan_in, fan_out)`.
///
/// # Panics
/// If the shapes disagree or `scratch` is too narrow.
#[track_caller]
pub fn linear_backward_input(
    delta: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    act: Activation,
    a: ArrayView2<'_, f32>,
    mut out: ArrayViewMut2<'_, f32>,
    scratch: &mut Scratch,
) {
    let (rows, fan_out) = delta.dim();
    let fan_in = w.nrows();
    assert!(
        w.ncols() == fan_out && a.dim() == (rows, fan_in) && out.dim() == (rows, fan_in),
        "linear_backward_input: delta is {:?}, w {:?}, a {:?}, out {:?}",
        delta.dim(),
        w.dim(),
        a.dim(),
        out.dim()
    );
    assert!(
        scratch.width >= fan_in.max(fan_out),
        "linear_backward_input: scratch holds {} columns, the layer needs {}",
        scratch.width,
        fan_in.max(fan_out)
    );
    #[cfg(target_arch = "x86_64")]
    if available()
        && rows_contiguous(&w)
        && rows > 0
        && fan_in > 0
        && !scratch.transposed_delta.is_empty()
    {
        let derivative = |g: f32, a: f32| act.derivative_from_output(a) * g;
        let mut start = 0;
        while start < rows {
            let n = Scratch::ROWS.min(rows - start);
            let dt = &mut scratch.transposed_delta[..fan_out * n];
            // dt (fan_out x n) = delta[start..start + n]^T.
            for (i, drow) in delta.rows().into_iter().skip(start).take(n).enumerate() {
                for (j, &v) in drow.iter().enumerate() {
                    dt[j * n + i] = v;
                }
            }
            let ct = &mut scratch.transposed_out[..fan_in * n];
            let a_w = avx512::AStrided {
                ptr: w.as_ptr(),
                rs: row_stride(&w),
                cs: 1,
            };
            let b_dt = avx512::BRows {
                ptr: dt.as_ptr(),
                ldb: n,
            };
            let epi = avx512::Epilogue::Store {
                c: ct.as_mut_ptr(),
                ldc: n,
            };
            // SAFETY: AVX-512F was detected; w is fan_in x fan_out with contiguous rows,
            // dt holds fan_out x n and ct fan_in x n elements with row strides n; ct is
            // a separate buffer from w and dt.
            #[allow(unsafe_code)]
            unsafe {
                gemm_auto(fan_in, n, fan_out, a_w, b_dt, epi);
            }
            // out[start + i, j] = f'(a) * ct[j, i].
            for (i, (mut orow, arow)) in out
                .rows_mut()
                .into_iter()
                .zip(a.rows())
                .skip(start)
                .take(n)
                .enumerate()
            {
                for (j, (o, &av)) in orow.iter_mut().zip(arow.iter()).enumerate() {
                    *o = derivative(ct[j * n + i], av);
                }
            }
            start += n;
        }
        return;
    }
    gemm(1.0, delta, w.t(), 0.0, out.view_mut());
    act.backward_inplace(a, out);
}

/// One SGD update of a layer from its batch: `w -= scale * (input^T delta)` and
/// `bias -= scale * column_sums(delta)`, where `scale` is the learning rate divided by the
/// batch size.
///
/// Shapes: `input: (rows, fan_in)`, `delta: (rows, fan_out)`, `w: (fan_in, fan_out)`,
/// `bias: (fan_out,)`.
///
/// # Panics
/// If the shapes disagree.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::fused;
/// use ndarray::array;
///
/// let x = array![[1.0f32, 2.0]];
/// let d = array![[0.5f32]];
/// let mut w = array![[1.0f32], [1.0]];
/// let mut b = array![0.0f32];
/// fused::sgd_update(x.view(), d.view(), 0.5, w.view_mut(), b.view_mut());
/// assert_eq!(w, array![[0.75], [0.5]]);
/// assert_eq!(b, array![-0.25]);
/// ```
#[track_caller]
pub fn sgd_update(
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    scale: f32,
    mut w: ArrayViewMut2<'_, f32>,
    mut bias: ArrayViewMut1<'_, f32>,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows && w.dim() == (fan_in, fan_out) && bias.len() == fan_out,
        "sgd_update: input is {:?}, delta {:?}, w {:?}, bias {}",
        input.dim(),
        delta.dim(),
        w.dim(),
        bias.len()
    );
    // The bias: column sums (rows added in order), then one update per element; 64
    // columns at a time so the sums run along contiguous rows.
    let mut j0 = 0;
    while j0 < fan_out {
        let cols = 64.min(fan_out - j0);
        let mut sums = [0.0f32; 64];
        for row in delta.rows() {
            for (s, &d) in sums[..cols].iter_mut().zip(row.iter().skip(j0)) {
                *s += d;
            }
        }
        for (b, s) in bias.iter_mut().skip(j0).zip(&sums[..cols]) {
            *b -= scale * s;
        }
        j0 += cols;
    }
    #[cfg(target_arch = "x86_64")]
    if available()
        && rows_contiguous(&input)
        && rows_contiguous(&delta)
        && rows_contiguous(&w)
        && fan_in > 0
        && fan_out > 0
    {
        let a = avx512::AStrided {
            ptr: input.as_ptr(),
            rs: 1,
            cs: row_stride(&input),
        };
        let b = avx512::BRows {
            ptr: delta.as_ptr(),
            ldb: row_stride(&delta),
        };
        let epi = avx512::Epilogue::Axpy {
            c: w.as_mut_ptr(),
            ldc: row_stride(&w),
            neg_scale: -scale,
        };
        // SAFETY: AVX-512F was detected; A[r, kk] = input[kk, r] for r < fan_in, kk < rows;
        // B = delta (rows x fan_out) and C = w (fan_in x fan_out), all with contiguous rows
        // and the strides passed; w is borrowed mutably, so it overlaps neither operand.
        #[allow(unsafe_code)]
        unsafe {
            gemm_auto(fan_in, fan_out, rows, a, b, epi);
        }
        return;
    }
    gemm(-scale, input.t(), delta, 1.0, w);
}

/// `xs[i] = f(xs[i])` with the vectorized `tanh`/sigmoid/ReLU when available (the same
/// functions the fused epilogues use), else with [`Activation::apply`].
pub fn activate_slice(act: Activation, xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX-512F was detected.
        #[allow(unsafe_code)]
        unsafe {
            avx512::map(act_of(Some(act)), xs);
        }
        return;
    }
    for x in xs {
        *x = act.apply(*x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, s};

    /// A deterministic matrix with values in (-1, 1), some exact zeros.
    fn mat(rows: usize, cols: usize, salt: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i * 131 + j * 71 + salt * 977) % 1009;
            if h.is_multiple_of(7) {
                0.0
            } else {
                (h as f32 / 1009.0) * 2.0 - 1.0
            }
        })
    }

    /// `a b` by the obvious triple loop in f64.
    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|k| f64::from(a[[i, k]]) * f64::from(b[[k, j]]))
                .sum()
        })
    }

    #[track_caller]
    fn assert_close(found: f32, expected: f64, tol: f64, what: &str) {
        let err = (f64::from(found) - expected).abs();
        assert!(
            err <= tol * (1.0 + expected.abs()),
            "{what}: {found} vs {expected} (error {err:e})"
        );
    }

    /// Shapes covering full tiles, row and column remainders, every tile width.
    const SHAPES: [(usize, usize, usize); 7] = [
        (32, 784, 500),
        (16, 500, 10),
        (7, 33, 17),
        (1, 5, 1),
        (13, 20, 64),
        (128, 30, 128),
        (25, 3, 49),
    ];

    #[test]
    fn forward_matches_the_naive_product_for_every_activation() {
        for &(m, k, n) in &SHAPES {
            let x = mat(m, k, 1);
            let w = mat(k, n, 2).mapv(|v| v * 0.1);
            let b = Array1::from_shape_fn(n, |j| j as f32 * 0.01 - 0.2);
            let z = naive(&x, &w);
            for act in [
                None,
                Some(Activation::Relu),
                Some(Activation::Sigmoid),
                Some(Activation::Tanh),
            ] {
                let mut out = Array2::from_elem((m, n), f32::NAN);
                linear_forward(x.view(), w.view(), b.view(), act, out.view_mut());
                for ((i, j), &o) in out.indexed_iter() {
                    let zb = z[[i, j]] + f64::from(b[j]);
                    let expected = match act {
                        None => zb,
                        Some(Activation::Relu) => zb.max(0.0),
                        Some(Activation::Sigmoid) => 1.0 / (1.0 + (-zb).exp()),
                        Some(Activation::Tanh) => zb.tanh(),
                    };
                    assert_close(o, expected, 1e-5, &format!("{m}x{k}x{n} {act:?} [{i},{j}]"));
                }
            }
        }
    }

    #[test]
    fn backward_input_matches_gemm_then_derivative() {
        for &(m, k, n) in &SHAPES {
            // delta: (m, n), w: (k, n), a/out: (m, k).
            let delta = mat(m, n, 3);
            let w = mat(k, n, 4);
            let a = mat(m, k, 5).mapv(|v| v * 0.9);
            let mut scratch = Scratch::new(k.max(n));
            for act in Activation::ALL {
                let mut out = Array2::from_elem((m, k), f32::NAN);
                linear_backward_input(
                    delta.view(),
                    w.view(),
                    act,
                    a.view(),
                    out.view_mut(),
                    &mut scratch,
                );
                let dw = naive(&delta, &w.t().to_owned());
                for ((i, j), &o) in out.indexed_iter() {
                    let d = f64::from(act.derivative_from_output(a[[i, j]]));
                    assert_close(
                        o,
                        d * dw[[i, j]],
                        1e-5,
                        &format!("{m}x{k}x{n} {act} [{i},{j}]"),
                    );
                }
            }
        }
    }

    #[test]
    fn update_matches_the_unfused_update() {
        for &(m, k, n) in &SHAPES {
            let x = mat(m, k, 6);
            let d = mat(m, n, 7);
            let w0 = mat(k, n, 8);
            let b0 = Array1::from_shape_fn(n, |j| j as f32 * 0.5);
            let (mut w, mut b) = (w0.clone(), b0.clone());
            sgd_update(x.view(), d.view(), 0.25, w.view_mut(), b.view_mut());
            let g = naive(&x.t().to_owned(), &d);
            for ((i, j), &v) in w.indexed_iter() {
                assert_close(v, f64::from(w0[[i, j]]) - 0.25 * g[[i, j]], 1e-5, "w");
            }
            for j in 0..n {
                let s: f64 = (0..m).map(|i| f64::from(d[[i, j]])).sum();
                assert_close(b[j], f64::from(b0[j]) - 0.25 * s, 1e-5, "b");
            }
        }
    }

    #[test]
    fn strided_views_take_the_fallback_and_agree() {
        let x = mat(10, 24, 9);
        let w = mat(12, 6, 10);
        let b = Array1::zeros(6);
        let xs = x.slice(s![.., ..;2]); // column stride 2
        let mut fast = Array2::zeros((10, 6));
        linear_forward(xs, w.view(), b.view(), None, fast.view_mut());
        let mut slow = Array2::zeros((10, 6));
        gemm(1.0, xs, w.view(), 0.0, slow.view_mut());
        for (f, s) in fast.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-5 * (1.0 + s.abs()));
        }
    }

    /// The vectorized functions against `f64` over a dense sweep of `f32` inputs: every
    /// 97th bit pattern between -20 and 20 (about 22 million values), plus the extremes.
    #[test]
    fn vectorized_activations_are_within_a_few_ulp() {
        let mut xs: Vec<f32> = Vec::new();
        let mut bits = (-20.0f32).to_bits();
        // Negative floats: bit patterns decrease towards -0.
        while bits > (-0.0f32).to_bits() {
            xs.push(f32::from_bits(bits));
            bits -= 97;
        }
        bits = 0;
        while f32::from_bits(bits) < 20.0 {
            xs.push(f32::from_bits(bits));
            bits += 97;
        }
        xs.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            88.0,
            -88.0,
            200.0,
            -200.0,
            f32::MAX,
            f32::MIN,
        ]);
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Relu] {
            let mut ys = xs.clone();
            activate_slice(act, &mut ys);
            let mut worst = 0.0f64;
            for (&x, &y) in xs.iter().zip(&ys) {
                let exact = match act {
                    Activation::Tanh => f64::from(x).tanh(),
                    Activation::Sigmoid => 1.0 / (1.0 + (-f64::from(x)).exp()),
                    Activation::Relu => f64::from(x).max(0.0),
                };
                // Error in units of the f32 spacing at the exact value.
                let ulp = f64::from(f32::EPSILON) * exact.abs().max(f64::from(f32::MIN_POSITIVE));
                let err = (f64::from(y) - exact).abs() / ulp;
                assert!(
                    err <= 4.0,
                    "{act}({x:e}) = {y:e}, exact {exact:e}: {err} ulp"
                );
                worst = worst.max(err);
            }
            assert!(worst.is_finite());
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
        activate_slice(Activation::Tanh, &mut special);
        assert!(special[0].is_nan());
        assert_eq!(&special[1..3], &[1.0, -1.0]);
        assert!(special[3] == 0.0 && special[3].is_sign_negative());
    }
}
