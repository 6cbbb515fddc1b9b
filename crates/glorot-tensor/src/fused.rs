//! Fast kernels for the products of a training step: in `f32` with the element-wise work
//! done while the results are still in registers, in `f64` with a stated summation order
//! and the notebook's update fused into the weight-gradient product.
//!
//! | function | computes | replaces |
//! | --- | --- | --- |
//! | [`linear_forward`] (`f32`) | `out = f(x w + b)` | [`gemm`], [`Activation::forward_bias_inplace`] |
//! | [`linear_backward_input`] (`f32`) | `out = (d w^T) * f'(a)` | [`gemm`], [`Activation::backward_inplace`] |
//! | [`sgd_update`] (`f32`) | `w -= s x^T d`, `b -= s colsum(d)` | [`gemm`], [`column_sums`](crate::column_sums), the update |
//! | [`linear_forward_sparse`], [`sgd_update_sparse`] (`f32`) | the same from the nonzeros of `x` | the dense kernels |
//! | [`product_f64`], [`product_nt_f64`] | `a b`, `a b^T` | [`gemm`] |
//! | [`product_sparse_f64`] | `x w` from the nonzeros of `x` | [`gemm`] |
//! | [`sgd_update_f64`] | `w = w - lr * ((x^T d) / n)` | [`gemm`], the update |
//! | [`sgd_update_sparse_exact`] (`f64`) | the same from the nonzeros of `x` | [`gemm`], the update |
//!
//! On x86-64 CPUs with AVX-512F they run register-tiled AVX-512 kernels (16 `f32` or 8
//! `f64` lanes, fused multiply-adds), in `f32` with a vectorized `tanh`, `exp` and sigmoid;
//! elsewhere, or when the environment variable `GLOROT_FUSED=off` is set (to compare), they
//! fall back to the unfused functions of this crate or BLAS, with the same results up to
//! rounding. Results never depend on the thread count ([`set_threads`]).
//!
//! # Arithmetic
//!
//! Every product here computes each element as **one fused multiply-add chain over `k` in
//! order, from `+0`** (BLAS also uses FMA chains, possibly split into blocks of `k`); the
//! sparse variants skip zero terms, which contribute exactly nothing to such a chain.
//! Beyond that order:
//!
//! - the `f32` [`sgd_update`] applies `w + (-s) * dot` as one fused multiply-add per
//!   element, where the notebook computes `w - lr * (dot / n)` with three roundings (the
//!   `f64` updates keep the notebook's three operations);
//! - the `f32` `tanh`, `exp` and sigmoid are polynomial approximations with an error of a
//!   few ulp instead of the C library's (tests bound it against `f64`); in `f64` the
//!   element-wise work stays outside these kernels, exact.
//!
//! To replay a NumPy program bit for bit (in `f64`), use [`gemm`] and the unfused
//! functions (`glorot-mlp`'s `Arithmetic::Blas`).

//! # Layouts
//!
//! Every matrix must have contiguous rows (column stride 1), which includes standard
//! arrays and row ranges of them. Other layouts take the fallback path.

use std::sync::OnceLock;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::{Activation, gemm};

#[cfg(target_arch = "x86_64")]
mod avx512;
mod team;

/// Sets the number of threads the fused kernels use, process-wide (at least 1; default
/// 1), as `openblas_set_num_threads` does for BLAS. With more than one, each kernel splits
/// its tiles among a team of threads that spin briefly between calls; results do not
/// depend on the thread count (every element is computed the same way by whichever
/// thread takes its tile). A kernel called while another thread is using the team runs
/// on its calling thread alone, so parallel trainers never oversubscribe through it.
pub fn set_threads(n: usize) {
    team::set_threads(n);
}

/// The thread count set by [`set_threads`].
pub fn threads() -> usize {
    team::threads()
}

/// Calls `f(i, chunk)` for the consecutive chunks of `chunk` elements of `data` (the last
/// may be shorter) on the team of [`set_threads`], each chunk exactly once, and returns
/// when all are done. For element-wise work in any precision: the result is the same for
/// any thread count when `f` treats each element on its own.
///
/// ```
/// let mut v = vec![1.0f64; 1000];
/// glorot_tensor::fused::for_each_chunk(&mut v, 256, &|_, c| c.iter_mut().for_each(|x| *x *= 2.0));
/// assert!(v.iter().all(|&x| x == 2.0));
/// ```
pub fn for_each_chunk<T: Send>(data: &mut [T], chunk: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
    team::chunks_mut(data, chunk, f);
}

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

/// `c = a b` through the AVX-512 kernel with the tile shape that suits `n`, its tiles
/// shared among the team.
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
    use avx512::gemm as g;
    // SAFETY: forwarded from the caller.
    unsafe {
        match n {
            0..=16 => gemm_team(m, n, k, a, b, epi, 24, 16, g::<24, 1>),
            17..=32 => gemm_team(m, n, k, a, b, epi, 12, 32, g::<12, 2>),
            _ if n.is_multiple_of(64) => gemm_team(m, n, k, a, b, epi, 6, 64, g::<6, 4>),
            _ => gemm_team(m, n, k, a, b, epi, 8, 48, g::<8, 3>),
        }
    }
}

/// [`gemm_auto`] for `f64` ([`avx512::gemm_f64`]).
///
/// # Safety
/// As [`avx512::gemm_f64`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
unsafe fn gemm_auto_f64(
    m: usize,
    n: usize,
    k: usize,
    a: avx512::AStrided<f64>,
    b: avx512::BRows<f64>,
    epi: avx512::Epilogue64,
) {
    use avx512::gemm_f64 as g;
    // SAFETY: forwarded from the caller.
    unsafe {
        match n {
            0..=8 => gemm_team(m, n, k, a, b, epi, 24, 8, g::<24, 1>),
            9..=16 => gemm_team(m, n, k, a, b, epi, 12, 16, g::<12, 2>),
            _ => gemm_team(m, n, k, a, b, epi, 6, 32, g::<6, 4>),
        }
    }
}

/// A tiled AVX-512 product: `kernel(m, n, k, a, b, epi)`.
#[cfg(target_arch = "x86_64")]
type TiledKernel<T, E> = unsafe fn(usize, usize, usize, avx512::AStrided<T>, avx512::BRows<T>, E);

/// `kernel` (tiles of `mr` rows by `nr` columns) split into tasks of `mr`-aligned row
/// chunks by column tiles, about four per thread, consecutive tasks sharing a column tile
/// (and so `b`'s panel).
///
/// # Safety
/// As `kernel` ([`avx512::gemm`], [`avx512::gemm_f64`]).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, clippy::too_many_arguments)]
unsafe fn gemm_team<T, E: avx512::TileAt>(
    m: usize,
    n: usize,
    k: usize,
    a: avx512::AStrided<T>,
    b: avx512::BRows<T>,
    epi: E,
    mr: usize,
    nr: usize,
    kernel: TiledKernel<T, E>,
) {
    let threads = team::threads();
    if threads == 1 {
        // SAFETY: forwarded from the caller.
        unsafe { kernel(m, n, k, a, b, epi) };
        return;
    }
    let col_tiles = n.div_ceil(nr);
    let row_blocks = m.div_ceil(mr);
    let row_chunks = (4 * threads).div_ceil(col_tiles).clamp(1, row_blocks);
    let chunk = row_blocks.div_ceil(row_chunks) * mr;
    let row_chunks = m.div_ceil(chunk);
    team::run(row_chunks * col_tiles, &|t| {
        let (i0, j0) = ((t % row_chunks) * chunk, (t / row_chunks) * nr);
        let (rows, cols) = (chunk.min(m - i0), nr.min(n - j0));
        // SAFETY: the sub-matrix rows i0..i0 + rows, columns j0..j0 + cols lies inside
        // the caller's problem; tasks write disjoint tiles of C.
        unsafe {
            kernel(
                rows,
                cols,
                k,
                a.rows_from(i0),
                b.cols_from(j0),
                epi.at(i0, j0),
            );
        }
    });
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
        let (ldd, lda, ldo) = (row_stride(&delta), row_stride(&a), row_stride(&out));
        let mut start = 0;
        while start < rows {
            let n = Scratch::ROWS.min(rows - start);
            let dt = SendMut(scratch.transposed_delta.as_mut_ptr());
            let ct = SendMut(scratch.transposed_out.as_mut_ptr());
            let dp = SendPtr(delta.as_ptr().wrapping_add(start * ldd));
            let tasks = 2 * threads();
            // dt (fan_out x n) = delta[start..start + n]^T.
            team::run(tasks, &|t| {
                let (j0, j1) = (t * fan_out / tasks, (t + 1) * fan_out / tasks);
                // SAFETY: AVX-512F was detected; delta rows start..start + n exist with
                // contiguous rows; dt holds ROWS * width >= fan_out * n elements; each
                // task writes its own rows j0..j1 of dt; offsets < n * ldd fit i32.
                #[allow(unsafe_code)]
                unsafe {
                    avx512::transpose_rows(dp.get(), n, ldd, dt.get(), n, (j0, j1));
                }
            });
            let a_w = avx512::AStrided {
                ptr: w.as_ptr(),
                rs: row_stride(&w),
                cs: 1,
            };
            let b_dt = avx512::BRows {
                ptr: dt.get(),
                ldb: n,
            };
            let epi = avx512::Epilogue::Store {
                c: ct.get(),
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
            let (ap, op) = (
                SendPtr(a.as_ptr().wrapping_add(start * lda)),
                SendMut(out.as_mut_ptr().wrapping_add(start * ldo)),
            );
            let act = act_of(Some(act));
            team::run(tasks, &|t| {
                let (i0, i1) = (t * n / tasks, (t + 1) * n / tasks);
                // SAFETY: AVX-512F was detected; ct holds fan_in x n elements; a and out
                // rows start..start + n exist with fan_in columns, contiguous rows and the
                // strides passed; each task writes its own rows of out; fan_in * n fits
                // i32.
                #[allow(unsafe_code)]
                unsafe {
                    avx512::transpose_derivative(
                        ct.get(),
                        n,
                        act,
                        ap.get(),
                        lda,
                        op.get(),
                        ldo,
                        (i0, i1, fan_in),
                    );
                }
            });
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
    w: ArrayViewMut2<'_, f32>,
    bias: ArrayViewMut1<'_, f32>,
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
    update_bias(delta, scale, bias);
    weights_update(input, delta, scale, w);
}

/// `bias -= scale * column_sums(delta)`: column sums (rows added in order), then one
/// update per element, 64 columns at a time so that the sums run along contiguous rows.
fn update_bias(delta: ArrayView2<'_, f32>, scale: f32, mut bias: ArrayViewMut1<'_, f32>) {
    let fan_out = delta.ncols();
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
}

/// `w -= scale * (input^T delta)`.
fn weights_update(
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    scale: f32,
    mut w: ArrayViewMut2<'_, f32>,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
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

/// Output columns per task of the sparse kernels.
#[cfg(target_arch = "x86_64")]
const SPARSE_COLS: usize = 16 * avx512::SPARSE_NV;

/// Runs `task(rows, cols)` on the team over a `rows x cols` grid cut into blocks of
/// `block` columns and about `per_thread` tasks per thread (row ranges by column ranges);
/// every element lies in exactly one task. The sparse kernels' split.
#[cfg(target_arch = "x86_64")]
fn run_blocks(
    rows: usize,
    cols: usize,
    block: usize,
    per_thread: usize,
    task: &(dyn Fn((usize, usize), (usize, usize)) + Sync),
) {
    let blocks = cols.div_ceil(block);
    let row_chunks = (per_thread * threads())
        .div_ceil(blocks)
        .clamp(1, rows.max(1));
    let chunk = rows.div_ceil(row_chunks);
    team::run(blocks * row_chunks, &|t| {
        let r0 = ((t % row_chunks) * chunk).min(rows);
        let c0 = (t / row_chunks) * block;
        task((r0, (r0 + chunk).min(rows)), (c0, (c0 + block).min(cols)));
    });
}

/// A read-only pointer handed to the team's tasks.
struct SendPtr<T>(*const T);
/// A pointer the team's tasks write through, each to its own elements.
struct SendMut<T>(*mut T);
// Manual impls: a derive would require `T: Copy`, which raw pointers do not need.
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
impl<T> Clone for SendMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendMut<T> {}
// SAFETY: used only inside one `team::run` region, while the arrays they point into are
// borrowed by the calling function; tasks only read through `SendPtr` and write disjoint
// elements through `SendMut`.
#[allow(unsafe_code)]
unsafe impl<T> Sync for SendPtr<T> {}
#[allow(unsafe_code)]
unsafe impl<T> Sync for SendMut<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn get(self) -> *const T {
        self.0
    }
}

impl<T> SendMut<T> {
    /// The pointer (see [`SendPtr::get`]).
    fn get(self) -> *mut T {
        self.0
    }
}

/// Rows of an input processed per pass by the sparse kernels.
const PASS_ROWS: usize = 128;
/// Above this fraction of nonzeros a pass of the sparse kernels is done dense.
const PASS_MAX_DENSITY: f64 = 0.4;

/// An element type the vectorized row scan ([`RowScan`]) handles.
trait ScanElem: Copy + Default {
    /// Entries the scan may write past the last nonzero (one vector).
    const PAD: usize;

    /// The nonzeros of `rows` rows of `x` (row stride `ldx`, `cols` columns) into CSR
    /// buffers; the number of nonzeros.
    ///
    /// # Safety
    /// AVX-512F is available; `x` addresses `rows x cols` elements with row stride `ldx`;
    /// `ptr.len() > rows`; `idx` and `vals` hold at least `rows * cols + PAD` elements.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn scan(
        x: *const Self,
        shape: (usize, usize, usize),
        ptr: &mut [u32],
        idx: &mut [u32],
        vals: &mut [Self],
    ) -> usize;
}

impl ScanElem for f32 {
    const PAD: usize = 16;

    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn scan(
        x: *const f32,
        (rows, cols, ldx): (usize, usize, usize),
        ptr: &mut [u32],
        idx: &mut [u32],
        vals: &mut [f32],
    ) -> usize {
        // SAFETY: forwarded from the caller.
        #[allow(unsafe_code)]
        unsafe {
            avx512::csr_rows(x, rows, cols, ldx, ptr, idx, vals)
        }
    }
}

impl ScanElem for f64 {
    const PAD: usize = 8;

    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn scan(
        x: *const f64,
        (rows, cols, ldx): (usize, usize, usize),
        ptr: &mut [u32],
        idx: &mut [u32],
        vals: &mut [f64],
    ) -> usize {
        // SAFETY: forwarded from the caller.
        #[allow(unsafe_code)]
        unsafe {
            avx512::csr_rows_f64(x, rows, cols, ldx, ptr, idx, vals)
        }
    }
}

/// The nonzeros of up to `capacity` rows of an input by rows (CSR), rebuilt by a
/// vectorized scan on every use, in buffers made once: the row form of every sparse
/// kernel, in both precisions. Empty where the AVX-512 kernels do not run.
#[derive(Clone, Debug)]
struct RowScan<T> {
    cols: usize,
    capacity: usize,
    ptr: Vec<u32>,
    idx: Vec<u32>,
    vals: Vec<T>,
}

impl<T: ScanElem> RowScan<T> {
    fn new(capacity: usize, cols: usize) -> Self {
        let (rows, len) = if available() {
            (capacity + 1, capacity * cols + T::PAD)
        } else {
            (0, 0)
        };
        Self {
            cols,
            capacity,
            ptr: vec![0; rows],
            idx: vec![0; len],
            vals: vec![T::default(); len],
        }
    }

    /// Whether the buffers exist (AVX-512F is available).
    fn ready(&self) -> bool {
        !self.ptr.is_empty()
    }

    /// Scans rows `start..start + rows` of `x`; the number of nonzeros.
    #[cfg(target_arch = "x86_64")]
    fn scan(&mut self, x: &ArrayView2<'_, T>, start: usize, rows: usize) -> usize {
        assert!(
            self.ready() && rows <= self.capacity && start + rows <= x.nrows(),
            "RowScan::scan: {rows} rows from {start} of {} (capacity {})",
            x.nrows(),
            self.capacity
        );
        assert!(
            x.ncols() == self.cols && rows_contiguous(x),
            "RowScan::scan: layout"
        );
        let ldx = row_stride(x);
        // SAFETY: the buffers exist only where AVX-512F is available; rows
        // start..start + rows of x exist with contiguous rows and stride ldx (checked
        // above); the buffers hold capacity + 1 pointers and capacity * cols + PAD entries.
        #[allow(unsafe_code)]
        unsafe {
            T::scan(
                x.as_ptr().add(start * ldx),
                (rows, self.cols, ldx),
                &mut self.ptr,
                &mut self.idx,
                &mut self.vals,
            )
        }
    }

    /// The nonzeros of the last scan of `rows` rows in column form, into `columns`.
    fn transpose_into(&self, rows: usize, columns: &mut ColumnForm<T>) {
        csr_to_csc(
            (&self.ptr[..=rows], &self.idx, &self.vals),
            (&mut columns.ptr, &mut columns.cursor),
            (&mut columns.rows, &mut columns.vals),
        );
    }
}

/// The column form (CSC) of a [`RowScan`]: for each column, its rows (increasing) and
/// values.
#[derive(Clone, Debug)]
struct ColumnForm<T> {
    ptr: Vec<u32>,
    cursor: Vec<u32>,
    rows: Vec<u32>,
    vals: Vec<T>,
}

impl<T: ScanElem> ColumnForm<T> {
    fn new(capacity: usize, cols: usize) -> Self {
        Self {
            ptr: vec![0; cols + 1],
            cursor: vec![0; cols],
            rows: vec![0; capacity * cols],
            vals: vec![T::default(); capacity * cols],
        }
    }
}

/// Scans `x` in passes of up to [`PASS_ROWS`] rows and calls `pass(start, len, scan)`
/// for each, with `scan` holding the pass's nonzeros, or `None` when more than
/// [`PASS_MAX_DENSITY`] of the pass is nonzero (to be done dense).
#[cfg(target_arch = "x86_64")]
fn for_each_pass<T: ScanElem>(
    x: &ArrayView2<'_, T>,
    scan: &mut RowScan<T>,
    mut pass: impl FnMut(usize, usize, Option<&RowScan<T>>),
) {
    let rows = x.nrows();
    let mut start = 0;
    while start < rows {
        let len = PASS_ROWS.min(rows - start);
        let nnz = scan.scan(x, start, len);
        let dense = nnz as f64 > PASS_MAX_DENSITY * (len * x.ncols()) as f64;
        pass(start, len, (!dense).then_some(&*scan));
        start += len;
    }
}

/// The nonzeros of a batch of inputs (such as MNIST images, about 80 % zeros), by rows
/// and by columns, for [`linear_forward_sparse`] and [`sgd_update_sparse`]. Rebuilt from
/// the dense inputs on every call (a vectorized scan), in buffers made once for up to
/// [`SparseInput::ROWS`] rows at a time.
#[derive(Clone, Debug)]
pub struct SparseInput {
    rows: RowScan<f32>,
    columns: ColumnForm<f32>,
}

impl SparseInput {
    /// Rows processed per pass (larger inputs are done in several passes).
    pub const ROWS: usize = PASS_ROWS;

    /// Above this fraction of nonzeros a pass uses the dense kernel instead.
    pub const MAX_DENSITY: f64 = PASS_MAX_DENSITY;

    /// Buffers for inputs with `cols` columns.
    pub fn new(cols: usize) -> Self {
        let rows = RowScan::new(Self::ROWS, cols);
        let capacity = if rows.ready() { Self::ROWS } else { 0 };
        Self {
            columns: ColumnForm::new(capacity, if rows.ready() { cols } else { 0 }),
            rows,
        }
    }
}

/// The column form (CSC) of a CSR matrix: `row_ptr` (one more entry than rows), its column
/// indices and values, into `ptr` (one more entry than columns), `cursor` (scratch, one
/// per column), and each column's row indices (increasing) and values.
fn csr_to_csc<T: Copy>(
    (row_ptr, row_cols, row_vals): (&[u32], &[u32], &[T]),
    (ptr, cursor): (&mut [u32], &mut [u32]),
    (col_rows, col_vals): (&mut [u32], &mut [T]),
) {
    let rows = row_ptr.len() - 1;
    let cols = cursor.len();
    let nnz = row_ptr[rows] as usize;
    ptr.fill(0);
    for &c in &row_cols[..nnz] {
        ptr[c as usize + 1] += 1;
    }
    for p in 0..cols {
        ptr[p + 1] += ptr[p];
    }
    cursor.copy_from_slice(&ptr[..cols]);
    for i in 0..rows {
        let (lo, hi) = (row_ptr[i] as usize, row_ptr[i + 1] as usize);
        for k in lo..hi {
            let c = row_cols[k] as usize;
            let at = cursor[c] as usize;
            col_rows[at] = i as u32;
            col_vals[at] = row_vals[k];
            cursor[c] += 1;
        }
    }
}

/// [`linear_forward`] for a sparse `x`: each pass of up to [`SparseInput::ROWS`] rows
/// finds the nonzeros of `x` and sums only their rows of `w`, or uses the dense kernel
/// when more than [`SparseInput::MAX_DENSITY`] of the pass is nonzero. Same results up to
/// the order of the sums (zeros contribute exactly nothing).
///
/// # Panics
/// As [`linear_forward`], and if `sparse` was made for another width than `x`'s.
#[track_caller]
pub fn linear_forward_sparse(
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
    act: Option<Activation>,
    mut out: ArrayViewMut2<'_, f32>,
    sparse: &mut SparseInput,
) {
    assert_eq!(
        sparse.rows.cols,
        x.ncols(),
        "linear_forward_sparse: SparseInput made for another width"
    );
    #[cfg(target_arch = "x86_64")]
    if available()
        && sparse.rows.ready()
        && rows_contiguous(&x)
        && rows_contiguous(&w)
        && rows_contiguous(&out)
        && (bias.len() <= 1 || bias.strides()[0] == 1)
        && w.nrows() == x.ncols()
        && out.dim() == (x.nrows(), w.ncols())
        && bias.len() == w.ncols()
        && w.ncols() > 0
    {
        let n = out.ncols();
        let (ldw, ldo) = (row_stride(&w), row_stride(&out));
        for_each_pass(&x, &mut sparse.rows, |start, len, scan| {
            let part = ndarray::s![start..start + len, ..];
            let Some(scan) = scan else {
                linear_forward(x.slice(part), w, bias, act, out.slice_mut(part));
                return;
            };
            let (ptr, idx, vals) = (&scan.ptr, &scan.idx, &scan.vals);
            let (wp, bp, op) = (
                SendPtr(w.as_ptr()),
                SendPtr(bias.as_ptr()),
                SendMut(out.as_mut_ptr().wrapping_add(start * ldo)),
            );
            let act = act_of(act);
            run_blocks(len, n, SPARSE_COLS, 4, &|rows, cols| {
                // SAFETY: AVX-512F was detected; the CSR buffers hold the nonzeros of
                // rows start..start + len, whose column indices are < x.ncols() = rows
                // of w; w, bias and out have the shapes checked above, contiguous rows
                // and the strides passed; out is borrowed mutably, and each task
                // writes its own rows and columns of it.
                #[allow(unsafe_code)]
                unsafe {
                    avx512::csr_forward(
                        rows,
                        cols,
                        ptr,
                        idx,
                        vals,
                        wp.get(),
                        ldw,
                        bp.get(),
                        act,
                        op.get(),
                        ldo,
                    );
                }
            });
        });
        return;
    }
    linear_forward(x, w, bias, act, out);
}

/// [`sgd_update`] for a sparse `input`: each pass of up to [`SparseInput::ROWS`] rows
/// updates only the rows of `w` whose input column has a nonzero in the pass, summing
/// only the nonzeros (or uses the dense kernel when the pass is dense). Batches of more
/// than [`SparseInput::ROWS`] rows update `w` once per pass.
///
/// # Panics
/// As [`sgd_update`], and if `sparse` was made for another width than `input`'s.
#[track_caller]
pub fn sgd_update_sparse(
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    scale: f32,
    mut w: ArrayViewMut2<'_, f32>,
    bias: ArrayViewMut1<'_, f32>,
    sparse: &mut SparseInput,
) {
    assert_eq!(
        sparse.rows.cols,
        input.ncols(),
        "sgd_update_sparse: SparseInput made for another width"
    );
    #[cfg(target_arch = "x86_64")]
    if available()
        && sparse.rows.ready()
        && rows_contiguous(&input)
        && rows_contiguous(&delta)
        && rows_contiguous(&w)
        && delta.nrows() == input.nrows()
        && w.dim() == (input.ncols(), delta.ncols())
        && bias.len() == delta.ncols()
        && delta.ncols() > 0
    {
        let n = delta.ncols();
        update_bias(delta, scale, bias);
        let (ldd, ldw) = (row_stride(&delta), row_stride(&w));
        let pixels = input.ncols();
        let columns = &mut sparse.columns;
        for_each_pass(&input, &mut sparse.rows, |start, len, scan| {
            let part = delta.slice(ndarray::s![start..start + len, ..]);
            let Some(scan) = scan else {
                let x = input.slice(ndarray::s![start..start + len, ..]);
                weights_update(x, part, scale, w.view_mut());
                return;
            };
            scan.transpose_into(len, columns);
            let (ptr, rows_idx, vals) = (&columns.ptr, &columns.rows, &columns.vals);
            let (dp, wp) = (SendPtr(part.as_ptr()), SendMut(w.as_mut_ptr()));
            run_blocks(pixels, n, SPARSE_COLS, 8, &|pixel_range, cols| {
                // SAFETY: AVX-512F was detected; the CSC buffers hold the nonzeros of
                // rows start..start + len by column (< input.ncols() = rows of w), with
                // row indices < len = rows of `part`; w and part have the shapes
                // checked above, contiguous rows and the strides passed; w is borrowed
                // mutably, and each task updates its own rows and columns of it.
                #[allow(unsafe_code)]
                unsafe {
                    avx512::csc_update(
                        pixel_range,
                        cols,
                        ptr,
                        rows_idx,
                        vals,
                        dp.get(),
                        ldd,
                        wp.get(),
                        ldw,
                        -scale,
                    );
                }
            });
        });
        return;
    }
    sgd_update(input, delta, scale, w, bias);
}

/// `c = a b` handed to the `f64` tiled kernel with the epilogue `epi(c, ldc)` makes, when
/// the kernels run here and can address the operands: `a` with any non-negative strides,
/// `b` and `c` with contiguous rows, none of them empty. False (nothing done) otherwise.
#[cfg(target_arch = "x86_64")]
fn try_tiled_f64(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    mut c: ArrayViewMut2<'_, f64>,
    epi: impl FnOnce(*mut f64, usize) -> avx512::Epilogue64,
) -> bool {
    let ((m, k), n, s) = (a.dim(), b.ncols(), a.strides());
    debug_assert!(b.nrows() == k && c.dim() == (m, n));
    if !(available() && s[0] >= 0 && s[1] >= 0 && rows_contiguous(&b) && rows_contiguous(&c))
        || m == 0
        || n == 0
    {
        return false;
    }
    let epi = epi(c.as_mut_ptr(), row_stride(&c));
    let av = avx512::AStrided {
        ptr: a.as_ptr(),
        rs: s[0] as usize,
        cs: s[1] as usize,
    };
    let bv = avx512::BRows {
        ptr: b.as_ptr(),
        ldb: row_stride(&b),
    };
    // SAFETY: AVX-512F was detected; a is m x k with the non-negative strides passed, b
    // k x n and c m x n with contiguous rows and the row strides passed; c is borrowed
    // mutably, so it overlaps neither a nor b; the epilogue addresses c.
    #[allow(unsafe_code)]
    unsafe {
        gemm_auto_f64(m, n, k, av, bv, epi);
    }
    true
}

/// `out = a b` in `f64`, each element **one fused multiply-add chain over `k` in order,
/// from `+0`**, on CPUs with AVX-512F (register-tiled, shared among the threads of
/// [`set_threads`]; the result does not depend on the thread count). `a` may have any
/// layout (a transposed view included); `b` and `out` need contiguous rows. Elsewhere, or
/// for other layouts, BLAS ([`gemm`]), with its own summation order.
///
/// Shapes: `a: (m, k)`, `b: (k, n)`, `out: (m, n)`.
///
/// # Panics
/// If the shapes disagree.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::fused;
/// use ndarray::{Array2, array};
///
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// let mut out = Array2::zeros((2, 2));
/// fused::product_f64(a.t(), a.view(), out.view_mut()); // a^T a
/// assert_eq!(out, array![[10.0, 14.0], [14.0, 20.0]]);
/// ```
#[track_caller]
pub fn product_f64(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert!(
        b.nrows() == k && out.dim() == (m, n),
        "product_f64: a is {:?}, b {:?}, out {:?}",
        a.dim(),
        b.dim(),
        out.dim()
    );
    #[cfg(target_arch = "x86_64")]
    if try_tiled_f64(a, b, out.view_mut(), |c, ldc| avx512::Epilogue64::Store {
        c,
        ldc,
    }) {
        return;
    }
    gemm(1.0, a, b, 0.0, out);
}

/// The notebook's SGD update of a layer's weights in `f64`,
/// `w = w - lr * (g / n)` with `g = input^T delta` and `n` the batch's rows, with `g`
/// computed as [`product_f64`] computes it and never stored: each element of `w` is
/// updated as its tile of products finishes. `g / n` is `g * (1 / n)` when `n` is a power
/// of two (the same bits). So the result equals [`product_f64`]`(input^T, delta)` followed
/// by the notebook's update, bit for bit.
///
/// Shapes: `input: (n, fan_in)`, `delta: (n, fan_out)`, `w: (fan_in, fan_out)`.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn sgd_update_f64(
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    lr: f64,
    mut w: ArrayViewMut2<'_, f64>,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows && w.dim() == (fan_in, fan_out),
        "sgd_update_f64: input is {:?}, delta {:?}, w {:?}",
        input.dim(),
        delta.dim(),
        w.dim()
    );
    let (n, inv_n, divide) = (rows as f64, 1.0 / rows as f64, !rows.is_power_of_two());
    let input_t = input.t();
    #[cfg(target_arch = "x86_64")]
    if try_tiled_f64(input_t, delta, w.view_mut(), |c, ldc| {
        avx512::Epilogue64::Sgd {
            c,
            ldc,
            lr,
            n,
            inv_n,
            divide,
        }
    }) {
        return;
    }
    let mut g = ndarray::Array2::zeros((fan_in, fan_out));
    gemm(1.0, input_t, delta, 0.0, g.view_mut());
    ndarray::Zip::from(&mut w).and(&g).for_each(|w, &g| {
        let g = if divide { g / n } else { g * inv_n };
        *w -= lr * g;
    });
}

/// Buffers [`product_nt_f64`] transposes through, for up to [`ScratchF64::ROWS`] rows at
/// a time. Made once per model; the kernels allocate nothing.
#[derive(Clone, Debug)]
pub struct ScratchF64 {
    width: usize,
    transposed_a: ndarray::Array2<f64>,
    transposed_out: ndarray::Array2<f64>,
}

impl ScratchF64 {
    /// Rows of `a` processed per pass.
    pub const ROWS: usize = 128;

    /// Buffers for matrices up to `max_width` columns wide.
    pub fn new(max_width: usize) -> Self {
        let len = if available() { max_width } else { 0 };
        Self {
            width: max_width,
            transposed_a: ndarray::Array2::zeros((len, Self::ROWS)),
            transposed_out: ndarray::Array2::zeros((len, Self::ROWS)),
        }
    }
}

/// `out = a b^T` in `f64` (backpropagation through a layer's weights: `delta w^T`), each
/// element one fused multiply-add chain over `k` in order from `+0`, as [`product_f64`]:
/// computed as `(b a^T)^T` through `scratch`, up to [`ScratchF64::ROWS`] rows of `a` per
/// pass. Elsewhere BLAS.
///
/// Shapes: `a: (m, k)`, `b: (n, k)`, `out: (m, n)`; `scratch` made for widths up to
/// `max(k, n)`.
///
/// # Panics
/// If the shapes disagree or `scratch` is too narrow.
#[track_caller]
pub fn product_nt_f64(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
    scratch: &mut ScratchF64,
) {
    let ((m, k), n) = (a.dim(), b.nrows());
    assert!(
        b.ncols() == k && out.dim() == (m, n),
        "product_nt_f64: a is {:?}, b {:?}, out {:?}",
        a.dim(),
        b.dim(),
        out.dim()
    );
    assert!(
        scratch.width >= k.max(n),
        "product_nt_f64: scratch holds {} columns, the product needs {}",
        scratch.width,
        k.max(n)
    );
    if available() && scratch.transposed_a.nrows() > 0 {
        let mut start = 0;
        while start < m {
            let len = ScratchF64::ROWS.min(m - start);
            let part = ndarray::s![start..start + len, ..];
            let mut at = scratch.transposed_a.slice_mut(ndarray::s![..k, ..len]);
            at.assign(&a.slice(part).t());
            let mut ct = scratch.transposed_out.slice_mut(ndarray::s![..n, ..len]);
            product_f64(b, at.view(), ct.view_mut());
            out.slice_mut(part).assign(&ct.t());
            start += len;
        }
        return;
    }
    gemm(1.0, a, b.t(), 0.0, out);
}

/// The nonzeros of an `f64` batch by rows, for [`product_sparse_f64`]: rebuilt from the
/// dense inputs on every call (a vectorized scan), in buffers made once for up to
/// [`SparseRowsF64::ROWS`] rows at a time.
#[derive(Clone, Debug)]
pub struct SparseRowsF64 {
    rows: RowScan<f64>,
}

impl SparseRowsF64 {
    /// Rows processed per pass (larger inputs are done in several passes).
    pub const ROWS: usize = PASS_ROWS;

    /// Above this fraction of nonzeros a pass uses BLAS instead.
    pub const MAX_DENSITY: f64 = PASS_MAX_DENSITY;

    /// Buffers for inputs with `cols` columns (empty where the AVX-512 kernels do not
    /// run: [`product_sparse_f64`] then computes its chains one element at a time).
    pub fn new(cols: usize) -> Self {
        Self {
            rows: RowScan::new(Self::ROWS, cols),
        }
    }
}

/// `out = x w` for an `f64` input `x` with many zeros (such as MNIST images), each element
/// computed as **one fused multiply-add chain over the nonzeros of its row of `x`, in
/// column order, from `+0`**: `fma(x[i, pk], w[pk, j], ... fma(x[i, p1], w[p1, j], +0))`.
/// A zero term would contribute exactly nothing to such a chain, so this is also the dense
/// chain over all columns in order: the result depends on the data alone, not on the
/// thread count, the CPU or the BLAS. On CPUs with AVX-512F each pass of up to
/// [`SparseRowsF64::ROWS`] rows is scanned into its nonzeros and summed with 8-lane fused
/// multiply-adds (5x fewer operations than the dense product on MNIST), except passes
/// with more than [`SparseRowsF64::MAX_DENSITY`] nonzeros, which go to BLAS ([`gemm`]:
/// its own summation order). Elsewhere the chains are computed one element at a time.
///
/// Shapes: `x: (rows, fan_in)`, `w: (fan_in, fan_out)`, `out: (rows, fan_out)`.
///
/// # Panics
/// If the shapes disagree or `sparse` was made for another width than `x`'s.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::fused::{self, SparseRowsF64};
/// use ndarray::{Array2, array};
///
/// let x = array![[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]];
/// let w = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let mut out = Array2::zeros((2, 2));
/// fused::product_sparse_f64(x.view(), w.view(), out.view_mut(), &mut SparseRowsF64::new(3));
/// assert_eq!(out, array![[6.0, 8.0], [1.0, 2.0]]);
/// ```
#[track_caller]
pub fn product_sparse_f64(
    x: ArrayView2<'_, f64>,
    w: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
    sparse: &mut SparseRowsF64,
) {
    let (rows, fan_in) = x.dim();
    let fan_out = w.ncols();
    assert!(
        w.nrows() == fan_in && out.dim() == (rows, fan_out) && sparse.rows.cols == fan_in,
        "product_sparse_f64: x is {:?}, w {:?}, out {:?}, sparse rows of {} columns",
        x.dim(),
        w.dim(),
        out.dim(),
        sparse.rows.cols
    );
    #[cfg(target_arch = "x86_64")]
    if available()
        && sparse.rows.ready()
        && rows_contiguous(&x)
        && rows_contiguous(&w)
        && rows_contiguous(&out)
        && fan_out > 0
    {
        let (ldw, ldo) = (row_stride(&w), row_stride(&out));
        const COLS: usize = 8 * avx512::SPARSE_F64_NV;
        for_each_pass(&x, &mut sparse.rows, |start, len, scan| {
            let part = ndarray::s![start..start + len, ..];
            let Some(scan) = scan else {
                gemm(1.0, x.slice(part), w, 0.0, out.slice_mut(part));
                return;
            };
            let (ptr, idx, vals) = (&scan.ptr, &scan.idx, &scan.vals);
            let (wp, op) = (
                SendPtr(w.as_ptr()),
                SendMut(out.as_mut_ptr().wrapping_add(start * ldo)),
            );
            run_blocks(len, fan_out, COLS, 4, &|rows, cols| {
                // SAFETY: AVX-512F was detected; the CSR buffers hold the nonzeros of
                // rows start..start + len, whose column indices are < fan_in = rows
                // of w; w and out have the shapes checked above, contiguous rows and
                // the strides passed; out is borrowed mutably, and each task writes
                // its own rows and columns of it.
                #[allow(unsafe_code)]
                unsafe {
                    avx512::csr_product_f64(
                        rows,
                        cols,
                        ptr,
                        idx,
                        vals,
                        wp.get(),
                        ldw,
                        op.get(),
                        ldo,
                    );
                }
            });
        });
        return;
    }
    for (xr, mut or) in x.rows().into_iter().zip(out.rows_mut()) {
        for (j, o) in or.iter_mut().enumerate() {
            let mut acc = 0.0f64;
            for (p, &v) in xr.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    acc = v.mul_add(w[[p, j]], acc);
                }
            }
            *o = acc;
        }
    }
}

/// The nonzeros of an `f64` batch by columns, for [`sgd_update_sparse_exact`]: rebuilt
/// from the dense inputs on every call (a vectorized scan by rows, then a transpose), in
/// buffers made once for up to `max_rows` rows.
#[derive(Clone, Debug)]
pub struct SparseColumns {
    cols: usize,
    max_rows: usize,
    ptr: Vec<u32>,
    cursor: Vec<u32>,
    rows: Vec<u32>,
    vals: Vec<f64>,
    /// The same nonzeros by rows, from the vectorized scan (empty without AVX-512F).
    scan: RowScan<f64>,
}

impl SparseColumns {
    /// Buffers for inputs of up to `max_rows` rows and `cols` columns.
    pub fn new(max_rows: usize, cols: usize) -> Self {
        Self {
            cols,
            max_rows,
            ptr: vec![0; cols + 1],
            cursor: vec![0; cols],
            rows: vec![0; max_rows * cols],
            vals: vec![0.0; max_rows * cols],
            scan: RowScan::new(max_rows, cols),
        }
    }

    /// The columns of `x`: column `p` holds the rows `i` (increasing) with `x[i, p] != 0`
    /// (NaN included) and their values.
    fn build(&mut self, x: &ArrayView2<'_, f64>) {
        #[cfg(target_arch = "x86_64")]
        if self.scan.ready() && rows_contiguous(x) {
            let n = x.nrows();
            self.scan.scan(x, 0, n);
            csr_to_csc(
                (&self.scan.ptr[..=n], &self.scan.idx, &self.scan.vals),
                (&mut self.ptr, &mut self.cursor),
                (&mut self.rows, &mut self.vals),
            );
            return;
        }
        self.ptr.fill(0);
        for row in x.rows() {
            for (p, &v) in row.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    self.ptr[p + 1] += 1;
                }
            }
        }
        for p in 0..self.cols {
            self.ptr[p + 1] += self.ptr[p];
        }
        self.cursor.copy_from_slice(&self.ptr[..self.cols]);
        for (i, row) in x.rows().into_iter().enumerate() {
            for (p, &v) in row.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    let at = self.cursor[p] as usize;
                    self.rows[at] = i as u32;
                    self.vals[at] = v;
                    self.cursor[p] += 1;
                }
            }
        }
    }
}

/// The notebook's SGD update of a layer's weights for an `f64` input with many zeros,
/// reproducing, bit for bit, `w - lr * (g / n)` with `g = input^T delta` computed by a BLAS
/// that sums each element as one fused multiply-add chain over the rows in order (which
/// [`matches_sparse_chain`] checks): zero inputs are skipped (`fma(0, d, acc) = acc`),
/// and rows of `w` whose input column is zero in the whole batch are left as they are
/// (`w - lr * (0 / n) = w`). `g / n` is `g * (1 / n)` when `n` is a power of two (the same
/// bits, see `glorot-mlp`'s `train_step`).
///
/// Shapes: `input: (n, fan_in)`, `delta: (n, fan_out)`, `w: (fan_in, fan_out)`;
/// `columns` made for at least `n` rows and `fan_in` columns.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn sgd_update_sparse_exact(
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    lr: f64,
    mut w: ArrayViewMut2<'_, f64>,
    columns: &mut SparseColumns,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows
            && w.dim() == (fan_in, fan_out)
            && columns.cols == fan_in
            && columns.max_rows >= rows,
        "sgd_update_sparse_exact: input is {:?}, delta {:?}, w {:?}, columns for {}x{}",
        input.dim(),
        delta.dim(),
        w.dim(),
        columns.max_rows,
        columns.cols
    );
    columns.build(&input);
    let divide = !rows.is_power_of_two();
    let (n, inv_n) = (rows as f64, 1.0 / rows as f64);
    #[cfg(target_arch = "x86_64")]
    if available() && rows_contiguous(&delta) && rows_contiguous(&w) && fan_out > 0 {
        let (ldd, ldw) = (row_stride(&delta), row_stride(&w));
        let (dp, wp) = (delta.as_ptr(), w.as_mut_ptr());
        let cs = &*columns;
        let (dp, wp) = (SendPtr(dp), SendMut(wp));
        let tasks = (4 * threads()).min(fan_in.max(1));
        team::run(tasks, &|t| {
            let (p0, p1) = (t * fan_in / tasks, (t + 1) * fan_in / tasks);
            // SAFETY: AVX-512F was detected; the CSC buffers hold the nonzeros of input
            // by column (< fan_in = rows of w) with row indices < rows = rows of delta;
            // delta and w have the shapes checked above, contiguous rows and the strides
            // passed; w is borrowed mutably, and each task updates its own rows of it.
            #[allow(unsafe_code)]
            unsafe {
                avx512::csc_sgd_f64(
                    (p0, p1),
                    fan_out,
                    (&cs.ptr, &cs.rows, &cs.vals),
                    dp.get(),
                    ldd,
                    wp.get(),
                    ldw,
                    (lr, n, inv_n, divide),
                );
            }
        });
        return;
    }
    for p in 0..fan_in {
        let (lo, hi) = (columns.ptr[p] as usize, columns.ptr[p + 1] as usize);
        if lo == hi {
            continue;
        }
        for j in 0..fan_out {
            let mut g = 0.0f64;
            for k in lo..hi {
                g = columns.vals[k].mul_add(delta[[columns.rows[k] as usize, j]], g);
            }
            let g = if divide { g / n } else { g * inv_n };
            w[[p, j]] -= lr * g;
        }
    }
}

/// `g = input^T delta` for an `f64` input with many zeros, each element the fused
/// multiply-add chain [`sgd_update_sparse_exact`] uses: over the rows with a nonzero
/// input, in order, from `+0` (`+0` for input columns that are zero in the whole batch).
/// For gradients that must equal that update's (`glorot-mlp`'s `Mlp::gradients`).
///
/// Shapes: `input: (n, fan_in)`, `delta: (n, fan_out)`, `g: (fan_in, fan_out)`;
/// `columns` made for at least `n` rows and `fan_in` columns.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn weight_gradient_sparse_f64(
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    mut g: ArrayViewMut2<'_, f64>,
    columns: &mut SparseColumns,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows
            && g.dim() == (fan_in, fan_out)
            && columns.cols == fan_in
            && columns.max_rows >= rows,
        "weight_gradient_sparse_f64: input is {:?}, delta {:?}, g {:?}, columns for {}x{}",
        input.dim(),
        delta.dim(),
        g.dim(),
        columns.max_rows,
        columns.cols
    );
    columns.build(&input);
    for p in 0..fan_in {
        let (lo, hi) = (columns.ptr[p] as usize, columns.ptr[p + 1] as usize);
        for j in 0..fan_out {
            let mut acc = 0.0f64;
            for k in lo..hi {
                acc = columns.vals[k].mul_add(delta[[columns.rows[k] as usize, j]], acc);
            }
            g[[p, j]] = acc;
        }
    }
}

/// Whether `g` equals, bit for bit, the sums [`sgd_update_sparse_exact`] computes in
/// place of `input^T delta`: each element one fused multiply-add chain over the rows with
/// nonzero input, in order, from `+0`, and exactly zero (`+0` or `-0`) for input columns
/// that are zero in the whole batch. Checked once against a BLAS product, it tells
/// whether the sparse update may replace that BLAS's product bit for bit.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn matches_sparse_chain(
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    g: ArrayView2<'_, f64>,
    columns: &mut SparseColumns,
) -> bool {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows
            && g.dim() == (fan_in, fan_out)
            && columns.cols == fan_in
            && columns.max_rows >= rows,
        "matches_sparse_chain: shapes disagree"
    );
    columns.build(&input);
    (0..fan_in).all(|p| {
        let (lo, hi) = (columns.ptr[p] as usize, columns.ptr[p + 1] as usize);
        (0..fan_out).all(|j| {
            if lo == hi {
                return g[[p, j]] == 0.0;
            }
            let mut acc = 0.0f64;
            for k in lo..hi {
                acc = columns.vals[k].mul_add(delta[[columns.rows[k] as usize, j]], acc);
            }
            acc.to_bits() == g[[p, j]].to_bits()
        })
    })
}

/// `tanh(x)` for every element of `xs`, bit for bit the C library's `tanh` of GNU libc
/// 2.36 on x86-64 with FMA (Debian 12's, the one the notebook replay is checked with):
/// on CPUs with AVX-512F an 8-lane port of its exact sequence of operations (see
/// [`tanh_glibc`]), several times faster than one call per element; elsewhere, or with
/// `GLOROT_FUSED=off`, the platform's `tanh` itself. With another C library the two may
/// differ in the last bit of some results (never by more).
pub fn tanh_f64_slice(xs: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX-512F was detected.
        #[allow(unsafe_code)]
        unsafe {
            avx512::tanh_slice_f64(xs);
        }
        return;
    }
    for x in xs {
        *x = x.tanh();
    }
}

/// GNU libc 2.36's `tanh` for x86-64 CPUs with FMA, operation for operation, as scalar
/// Rust: `__tanh` (`sysdeps/ieee754/dbl-64/s_tanh.c`) and the FMA build of `__expm1`
/// (`s_expm1.c` compiled with `-mfma`, whose contractions into fused multiply-adds were
/// read from the library's machine code). The statement of what [`tanh_f64_slice`]
/// computes, and its test oracle; `mul_add` is the fused multiply-add.
pub fn tanh_glibc(x: f64) -> f64 {
    let hi_word = |v: f64| (v.to_bits() >> 32) as u32;
    let ix = hi_word(x) & 0x7fff_ffff;
    if ix >= 0x7ff0_0000 {
        return if x.is_sign_negative() {
            1.0 / x - 1.0
        } else {
            1.0 / x + 1.0
        };
    }
    let z = if ix >= 0x4036_0000 {
        1.0 - 1e-300
    } else {
        if x == 0.0 {
            return x;
        }
        if ix <= 0x3c7f_ffff {
            return (1.0 + x) * x;
        }
        let a = x.abs();
        if ix >= 0x3ff0_0000 {
            let t = expm1_glibc_fma(a + a);
            1.0 - 2.0 / (t + 2.0)
        } else {
            let t = expm1_glibc_fma(a * -2.0);
            -t / (t + 2.0)
        }
    };
    if x.is_sign_negative() { -z } else { z }
}

/// The FMA build of GNU libc 2.36's `__expm1`, for the arguments `tanh` passes
/// (`|arg| < 44`, not below `2^-54` in magnitude).
fn expm1_glibc_fma(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
    const Q: [f64; 6] = [
        1.0,
        f64::from_bits(0xbfa1_1111_1111_10f4),
        f64::from_bits(0x3f5a_01a0_19fe_5585),
        f64::from_bits(0xbf14_ce19_9eaa_dbb7),
        f64::from_bits(0x3ed0_cfca_86e6_5239),
        f64::from_bits(0xbe8a_fdb7_6e09_c32d),
    ];
    let negative = x.is_sign_negative();
    let hx = ((x.to_bits() >> 32) as u32) & 0x7fff_ffff;
    let (mut xr, mut c, k): (f64, f64, i32) = (x, 0.0, 0);
    let k = if hx > 0x3fd6_2e42 {
        let (hi, lo, k) = if hx < 0x3ff0_a2b2 {
            if negative {
                (x + LN2_HI, -LN2_LO, -1)
            } else {
                (x - LN2_HI, LN2_LO, 1)
            }
        } else {
            let k = ((if negative { -0.5 } else { 0.5 }) + INVLN2 * x) as i32;
            let t = f64::from(k);
            ((-t).mul_add(LN2_HI, x), t * LN2_LO, k)
        };
        xr = hi - lo;
        c = (hi - xr) - lo;
        k
    } else {
        k
    };
    let hfx = xr * 0.5;
    let hxs = xr * hfx;
    let r2 = hxs.mul_add(Q[3], Q[2]);
    let r3 = hxs.mul_add(Q[5], Q[4]);
    let h2 = hxs * hxs;
    let r1 = hxs.mul_add(Q[1], 1.0);
    let h4 = h2 * h2;
    let r1 = h4.mul_add(r3, h2.mul_add(r2, r1));
    let t = (-r1).mul_add(hfx, 3.0);
    let e = ((r1 - t) / (-xr).mul_add(t, 6.0)) * hxs;
    if k == 0 {
        return xr - e.mul_add(xr, -hxs);
    }
    let e = (e - c).mul_add(xr, -c) - hxs;
    let add_exponent =
        |y: f64| f64::from_bits(y.to_bits().wrapping_add((i64::from(k) << 52) as u64));
    match k {
        -1 => 0.5f64.mul_add(xr - e, -0.5),
        1 => {
            if xr < -0.25 {
                (e - (xr + 0.5)) * -2.0
            } else {
                (xr - e).mul_add(2.0, 1.0)
            }
        }
        _ if k <= -2 || k > 56 => add_exponent(1.0 - (e - xr)) - 1.0,
        _ if k < 20 => {
            let t = f64::from_bits(u64::from(0x3ff0_0000 - (0x20_0000u32 >> k)) << 32);
            add_exponent(t - (e - xr))
        }
        _ => {
            let t = f64::from_bits(((0x3ff - k as u64) << 20) << 32);
            add_exponent((xr - (e + t)) + 1.0)
        }
    }
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

#[cfg(test)]
mod team_tests {
    use super::*;
    use ndarray::{Array1, Array2};

    /// Splitting tiles among threads never changes a result: every element is computed
    /// the same way by whichever thread takes its tile.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = Array2::from_shape_fn((40, 300), |(i, j)| {
            if (i + j) % 3 == 0 {
                ((i * 7 + j) % 13) as f32 / 13.0
            } else {
                0.0
            }
        });
        let w = Array2::from_shape_fn((300, 70), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 / 23.0 - 0.5
        });
        let b = Array1::from_shape_fn(70, |j| j as f32 / 70.0);
        let d = Array2::from_shape_fn((40, 70), |(i, j)| ((i * 3 + j) % 11) as f32 / 11.0 - 0.5);
        let run = |threads: usize| {
            set_threads(threads);
            let mut out = Array2::zeros((40, 70));
            let mut sparse = SparseInput::new(300);
            linear_forward_sparse(
                x.view(),
                w.view(),
                b.view(),
                Some(Activation::Tanh),
                out.view_mut(),
                &mut sparse,
            );
            let mut back = Array2::zeros((40, 300));
            let mut scratch = Scratch::new(300);
            linear_backward_input(
                d.view(),
                w.view(),
                Activation::Tanh,
                x.view(),
                back.view_mut(),
                &mut scratch,
            );
            let (mut w2, mut b2) = (w.clone(), b.clone());
            sgd_update_sparse(
                x.view(),
                d.view(),
                0.1,
                w2.view_mut(),
                b2.view_mut(),
                &mut sparse,
            );
            let (mut w3, mut b3) = (w.clone(), b.clone());
            sgd_update(
                out.view(),
                d.view().slice(ndarray::s![.., ..]).to_owned().view(),
                0.1,
                w3.slice_mut(ndarray::s![..70, ..]),
                b3.view_mut(),
            );
            (out, back, w2, b2, w3, b3)
        };
        let one = run(1);
        let two = run(2);
        let three = run(3);
        set_threads(1);
        assert_eq!(one, two);
        assert_eq!(one, three);
    }
}

#[cfg(test)]
mod sparse_tests {
    use super::*;
    use ndarray::{Array1, Array2};

    /// Skipping zeros leaves each element's chain of fused multiply-adds unchanged
    /// (`fma(0, w, acc) = acc`), so the sparse kernels equal the dense ones bit for bit,
    /// also across passes of `SparseInput::ROWS` rows and for dense passes.
    #[test]
    fn sparse_kernels_equal_the_dense_ones_bit_for_bit() {
        for (rows, density) in [(32, 5), (300, 3), (7, 1)] {
            let x = Array2::from_shape_fn((rows, 90), |(i, j)| {
                if (i * 5 + j * 3) % density == 0 {
                    ((i + 2 * j) % 17) as f32 / 17.0
                } else {
                    0.0
                }
            });
            let w = Array2::from_shape_fn((90, 150), |(i, j)| {
                ((i * 13 + j * 7) % 29) as f32 / 29.0 - 0.5
            });
            let b = Array1::from_shape_fn(150, |j| j as f32 / 150.0 - 0.3);
            let mut sparse = SparseInput::new(90);
            let (mut a, mut c) = (Array2::zeros((rows, 150)), Array2::zeros((rows, 150)));
            linear_forward_sparse(
                x.view(),
                w.view(),
                b.view(),
                Some(Activation::Sigmoid),
                a.view_mut(),
                &mut sparse,
            );
            linear_forward(
                x.view(),
                w.view(),
                b.view(),
                Some(Activation::Sigmoid),
                c.view_mut(),
            );
            assert_eq!(a, c, "forward, {rows} rows");
            if rows <= SparseInput::ROWS {
                let d = a.mapv(|v| v - 0.5);
                let (mut w1, mut b1, mut w2, mut b2) = (w.clone(), b.clone(), w.clone(), b.clone());
                sgd_update_sparse(
                    x.view(),
                    d.view(),
                    0.05,
                    w1.view_mut(),
                    b1.view_mut(),
                    &mut sparse,
                );
                sgd_update(x.view(), d.view(), 0.05, w2.view_mut(), b2.view_mut());
                assert_eq!((w1, b1), (w2, b2), "update, {rows} rows");
            }
        }
    }
}

#[cfg(test)]
mod sparse_f64_tests {
    use super::*;
    use ndarray::Array2;

    /// The chain the documentation of `product_sparse_f64` states, one element at a time.
    fn chains(x: &Array2<f64>, w: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((x.nrows(), w.ncols()), |(i, j)| {
            let mut acc = 0.0f64;
            for p in 0..x.ncols() {
                if x[[i, p]] != 0.0 {
                    acc = x[[i, p]].mul_add(w[[p, j]], acc);
                }
            }
            acc
        })
    }

    /// The column form holds, for each column in order, exactly the rows with a nonzero
    /// (NaN included), increasing, and their values, for any number of rows up to the
    /// capacity and a width that is not a multiple of the scan's 8 lanes.
    #[test]
    fn sparse_columns_are_the_nonzeros_by_column() {
        for rows in [1, 5, 32, 40] {
            let x = Array2::from_shape_fn((rows, 37), |(i, j)| match (i * 7 + j * 3) % 5 {
                0 => (i + j) as f64 + 0.5,
                1 if i == j => f64::NAN,
                _ => 0.0,
            });
            let mut c = SparseColumns::new(40, 37);
            c.build(&x.view());
            for p in 0..37 {
                let (lo, hi) = (c.ptr[p] as usize, c.ptr[p + 1] as usize);
                let expected: Vec<(u32, u64)> = (0..rows)
                    .filter(|&i| x[[i, p]] != 0.0 || x[[i, p]].is_nan())
                    .map(|i| (i as u32, x[[i, p]].to_bits()))
                    .collect();
                let found: Vec<(u32, u64)> =
                    (lo..hi).map(|k| (c.rows[k], c.vals[k].to_bits())).collect();
                assert_eq!(found, expected, "{rows} rows, column {p}");
            }
        }
    }

    /// `sum_k a[i, k] b[k, j]` as one fused multiply-add chain in `k` order from `+0`.
    fn dense_chains(
        a: ndarray::ArrayView2<'_, f64>,
        b: ndarray::ArrayView2<'_, f64>,
    ) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).fold(0.0f64, |acc, k| a[[i, k]].mul_add(b[[k, j]], acc))
        })
    }

    /// The dense `f64` kernels compute the stated chains bit for bit (where they run), for
    /// any thread count, tile shape (widths 5, 13, 40, 500) and operand layout, and the
    /// fused update equals product-then-update.
    #[test]
    fn dense_f64_kernels_are_the_stated_chains() {
        let same = |x: &Array2<f64>, y: &Array2<f64>| {
            x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        for (m, k, n) in [(32, 500, 500), (7, 33, 13), (130, 40, 5), (3, 9, 40)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 17) as f64 * 0.1).sin());
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 7 + j * 11) as f64 * 0.3).cos());
            let bt = b.t().to_owned(); // (n, k), standard layout
            let at = a.t().to_owned(); // (k, m)
            let expected = dense_chains(a.view(), b.view());
            for threads in [1, 2] {
                set_threads(threads);
                let mut out = Array2::from_elem((m, n), f64::NAN);
                product_f64(a.view(), b.view(), out.view_mut());
                assert!(
                    !available() || same(&out, &expected),
                    "{m}x{k}x{n}, {threads} threads"
                );
                assert!(out.abs_diff_eq(&expected, 1e-10));
                // A transposed view as `a`.
                let mut out_t = Array2::from_elem((m, n), f64::NAN);
                product_f64(at.t(), b.view(), out_t.view_mut());
                assert!(!available() || same(&out_t, &expected));
                // a b^T through the scratch.
                let mut scratch = ScratchF64::new(k.max(n));
                let mut out_nt = Array2::from_elem((m, n), f64::NAN);
                product_nt_f64(a.view(), bt.view(), out_nt.view_mut(), &mut scratch);
                assert!(!available() || same(&out_nt, &expected), "nt {m}x{k}x{n}");
                assert!(out_nt.abs_diff_eq(&expected, 1e-10));
                // The fused update: w - lr * (g / rows), with a = input^T.
                let w0 = Array2::from_shape_fn((m, n), |(i, j)| (i as f64 - j as f64) * 0.01);
                let mut w = w0.clone();
                sgd_update_f64(at.view(), b.view(), 0.05, w.view_mut());
                let rows = k as f64;
                let manual = ndarray::Zip::from(&w0)
                    .and(&expected)
                    .map_collect(|&w, &g| {
                        let g = if k.is_power_of_two() {
                            g * (1.0 / rows)
                        } else {
                            g / rows
                        };
                        w - 0.05 * g
                    });
                assert!(!available() || same(&w, &manual), "update {m}x{k}x{n}");
                assert!(w.abs_diff_eq(&manual, 1e-12));
            }
            set_threads(1);
        }
    }

    /// Every element is the stated chain, bit for bit, for any thread count, across passes
    /// of `SparseRowsF64::ROWS` rows and at widths that are not multiples of the 64-column
    /// blocks; a dense pass gives BLAS's product (equal up to rounding).
    #[test]
    fn sparse_f64_product_is_the_stated_chain_for_any_thread_count() {
        for (rows, density, cols) in [(32, 5, 150), (300, 4, 70), (7, 5, 9), (40, 1, 33)] {
            let x = Array2::from_shape_fn((rows, 90), |(i, j)| {
                if (i * 5 + j * 3) % density == 0 {
                    ((i + 2 * j) % 17) as f64 / 17.0 + 1e-3
                } else {
                    0.0
                }
            });
            let w = Array2::from_shape_fn((90, cols), |(i, j)| {
                ((i * 13 + j * 7) % 29) as f64 / 29.0 - 0.5 + (i as f64) * 1e-9
            });
            let expected = chains(&x, &w);
            for threads in [1, 2, 3] {
                set_threads(threads);
                let mut out = Array2::from_elem((rows, cols), f64::NAN);
                product_sparse_f64(
                    x.view(),
                    w.view(),
                    out.view_mut(),
                    &mut SparseRowsF64::new(90),
                );
                if density == 1 && available() {
                    // All nonzero: the pass goes to BLAS.
                    for (a, b) in out.iter().zip(&expected) {
                        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
                    }
                } else {
                    let same = out
                        .iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{rows} rows, {cols} columns, {threads} threads");
                }
            }
            set_threads(1);
        }
    }
}

#[cfg(test)]
mod tanh_tests {
    use super::*;

    /// Inputs covering every branch of glibc's `tanh` and `expm1`: a dense sweep of bit
    /// patterns from 2^-60 to 30 (both signs), the branch thresholds and their
    /// neighbours, and the special values.
    fn inputs() -> Vec<f64> {
        let mut xs = Vec::new();
        let (lo, hi) = (2f64.powi(-60).to_bits(), 30f64.to_bits());
        let step = (hi - lo) / 400_000;
        let mut b = lo;
        while b < hi {
            xs.push(f64::from_bits(b));
            xs.push(-f64::from_bits(b));
            b += step + (b % 7);
        }
        for t in [
            2f64.powi(-55),
            2f64.powi(-54),
            0.5 * std::f64::consts::LN_2 / 2.0,
            0.5 * std::f64::consts::LN_2,
            1.5 * std::f64::consts::LN_2 / 2.0,
            0.52,
            1.0,
            19.0,
            19.8,
            22.0,
        ] {
            for d in -64i64..=64 {
                let v = f64::from_bits((t.to_bits() as i64 + d) as u64);
                xs.extend([v, -v]);
            }
        }
        xs.extend([
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
        ]);
        xs
    }

    #[test]
    fn vector_tanh_equals_the_scalar_port_bit_for_bit() {
        let xs = inputs();
        let mut ys = xs.clone();
        tanh_f64_slice(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = if available() { tanh_glibc(x) } else { x.tanh() };
            assert_eq!(
                y.to_bits(),
                want.to_bits(),
                "tanh({x:e}): {y:e} vs {want:e}"
            );
        }
        let mut nan = [f64::NAN];
        tanh_f64_slice(&mut nan);
        assert!(nan[0].is_nan());
    }

    /// On the machine the notebook replay is checked on (GNU libc 2.36, x86-64 with FMA),
    /// the port is the C library's `tanh` bit for bit. Another C library may differ in
    /// last bits: then the test reports the count instead of failing.
    #[test]
    #[allow(clippy::print_stderr)]
    fn the_port_is_the_c_library_tanh_here() {
        let xs = inputs();
        let differ = xs
            .iter()
            .filter(|&&x| tanh_glibc(x).to_bits() != x.tanh().to_bits())
            .count();
        // Every value is within 1 ulp of the C library's, whatever the library.
        for &x in &xs {
            let (a, b) = (tanh_glibc(x), x.tanh());
            assert!(
                (a - b).abs() <= f64::EPSILON * b.abs().max(f64::MIN_POSITIVE),
                "tanh({x:e}): {a:e} vs {b:e}"
            );
        }
        if differ > 0 {
            eprintln!(
                "note: this C library's tanh differs from GNU libc 2.36's (FMA) in the last bit \
                 for {differ} of {} inputs",
                xs.len()
            );
        }
    }
}
