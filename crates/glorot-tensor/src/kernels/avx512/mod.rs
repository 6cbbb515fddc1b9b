//! The AVX-512 kernels: the [`Avx512`] detection token and its [`Kernels`] impl, whose
//! methods are the safe wrappers around the `unsafe` kernels of the submodules
//! (register-tiled products in [`tiled`], sparse-input kernels in [`sparse`],
//! transposes in [`transpose`], vector element-wise functions in [`math`]).
//!
//! Every wrapper checks that the operands have a layout the kernels can address (rows
//! contiguous) and otherwise falls back to the portable code, as documented on the
//! public functions of [`crate::fused`].
#![allow(unsafe_code)]

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::simd::{
    ColumnForm, RowScan, ScanElem, SendMut, SendPtr, csr_to_csc, row_stride, rows_contiguous,
    run_blocks,
};
use super::{Kernels, Portable};
use crate::fused::{
    PASS_MAX_DENSITY, PASS_ROWS, Scratch, ScratchF64, SparseInput, SparseRowsF64, team, update_bias,
};
use crate::replay::SparseColumns;
use crate::{Activation, gemm};

mod math;
mod sparse;
mod tiled;
mod transpose;

/// Proof that this CPU has AVX-512F: only [`Avx512::detect`] makes one, after
/// `is_x86_feature_detected!` said so. Holding it makes the kernels safe to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx512 {
    _detected: (),
}

impl Avx512 {
    /// The token, if the CPU has AVX-512F.
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx512f").then_some(Avx512 { _detected: () })
    }

    /// The kernels, for [`crate::isa::Isa::kernels`]: a `'static` copy of the token,
    /// handed out only to the holder of one (so only after detection).
    pub(crate) fn kernels(self) -> &'static dyn Kernels {
        &Avx512 { _detected: () }
    }
}

fn act_of(act: Option<Activation>) -> tiled::Act {
    match act {
        None => tiled::Act::Identity,
        Some(Activation::Relu) => tiled::Act::Relu,
        Some(Activation::Sigmoid) => tiled::Act::Sigmoid,
        Some(Activation::Tanh) => tiled::Act::Tanh,
        Some(Activation::Softsign) => tiled::Act::Softsign,
    }
}

impl Kernels for Avx512 {
    fn name(&self) -> &'static str {
        "avx512"
    }

    fn accelerated(&self) -> bool {
        true
    }

    fn linear_forward(
        &self,
        x: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        act: Option<Activation>,
        mut out: ArrayViewMut2<'_, f32>,
    ) {
        let (rows, fan_in) = x.dim();
        let fan_out = w.ncols();
        if !(rows_contiguous(&x)
            && rows_contiguous(&w)
            && rows_contiguous(&out)
            && (fan_out <= 1 || bias.strides()[0] == 1)
            && rows > 0
            && fan_out > 0)
        {
            return Portable.linear_forward(x, w, bias, act, out);
        }
        let epi = tiled::Epilogue::BiasAct {
            c: out.as_mut_ptr(),
            ldc: row_stride(&out),
            bias: bias.as_ptr(),
            act: act_of(act),
        };
        let a = tiled::AStrided {
            ptr: x.as_ptr(),
            rs: row_stride(&x),
            cs: 1,
        };
        let b = tiled::BRows {
            ptr: w.as_ptr(),
            ldb: row_stride(&w),
        };
        // SAFETY: AVX-512F was detected (self); x is rows x fan_in, w fan_in x fan_out, out
        // and bias rows x fan_out / fan_out, all with contiguous rows and the strides
        // passed, so every element the kernel addresses belongs to its view; out is
        // borrowed mutably, so it overlaps neither x nor w.
        unsafe {
            gemm_auto(rows, fan_out, fan_in, a, b, epi);
        }
    }

    fn linear_backward_input(
        &self,
        delta: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        act: Activation,
        a: ArrayView2<'_, f32>,
        mut out: ArrayViewMut2<'_, f32>,
        scratch: &mut Scratch,
    ) {
        let (rows, fan_out) = delta.dim();
        let fan_in = w.nrows();
        if !(rows_contiguous(&w)
            && rows_contiguous(&delta)
            && rows_contiguous(&a)
            && rows_contiguous(&out)
            && rows > 0
            && fan_in > 0
            && !scratch.transposes.input.is_empty())
        {
            return Portable.linear_backward_input(delta, w, act, a, out, scratch);
        }
        let (ldd, lda, ldo) = (row_stride(&delta), row_stride(&a), row_stride(&out));
        let mut start = 0;
        while start < rows {
            let n = Scratch::ROWS.min(rows - start);
            let dt = SendMut(scratch.transposes.input.as_mut_ptr());
            let ct = SendMut(scratch.transposes.output.as_mut_ptr());
            let dp = SendPtr(delta.as_ptr().wrapping_add(start * ldd));
            let tasks = 2 * team::threads();
            // dt (fan_out x n) = delta[start..start + n]^T.
            team::run(tasks, &|t| {
                let (j0, j1) = (t * fan_out / tasks, (t + 1) * fan_out / tasks);
                // SAFETY: AVX-512F was detected (self); delta rows start..start + n exist
                // with contiguous rows; dt holds ROWS * width >= fan_out * n elements; each
                // task writes its own rows j0..j1 of dt; offsets < n * ldd fit i32.
                unsafe {
                    transpose::transpose_rows(dp.get(), n, ldd, dt.get(), n, (j0, j1));
                }
            });
            let a_w = tiled::AStrided {
                ptr: w.as_ptr(),
                rs: row_stride(&w),
                cs: 1,
            };
            let b_dt = tiled::BRows {
                ptr: dt.get(),
                ldb: n,
            };
            let epi = tiled::Epilogue::Store {
                c: ct.get(),
                ldc: n,
            };
            // SAFETY: AVX-512F was detected (self); w is fan_in x fan_out with contiguous
            // rows, dt holds fan_out x n and ct fan_in x n elements with row strides n; ct
            // is a separate buffer from w and dt.
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
                // SAFETY: AVX-512F was detected (self); ct holds fan_in x n elements; a and
                // out rows start..start + n exist with fan_in columns, contiguous rows and
                // the strides passed; each task writes its own rows of out; fan_in * n
                // fits i32.
                unsafe {
                    transpose::transpose_derivative(
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
    }

    fn weights_update(
        &self,
        input: ArrayView2<'_, f32>,
        delta: ArrayView2<'_, f32>,
        scale: f32,
        mut w: ArrayViewMut2<'_, f32>,
    ) {
        let (rows, fan_in) = input.dim();
        let fan_out = delta.ncols();
        if !(rows_contiguous(&input)
            && rows_contiguous(&delta)
            && rows_contiguous(&w)
            && fan_in > 0
            && fan_out > 0)
        {
            return Portable.weights_update(input, delta, scale, w);
        }
        let a = tiled::AStrided {
            ptr: input.as_ptr(),
            rs: 1,
            cs: row_stride(&input),
        };
        let b = tiled::BRows {
            ptr: delta.as_ptr(),
            ldb: row_stride(&delta),
        };
        let epi = tiled::Epilogue::Axpy {
            c: w.as_mut_ptr(),
            ldc: row_stride(&w),
            neg_scale: -scale,
        };
        // SAFETY: AVX-512F was detected (self); A[r, kk] = input[kk, r] for r < fan_in,
        // kk < rows; B = delta (rows x fan_out) and C = w (fan_in x fan_out), all with
        // contiguous rows and the strides passed; w is borrowed mutably, so it overlaps
        // neither operand.
        unsafe {
            gemm_auto(fan_in, fan_out, rows, a, b, epi);
        }
    }

    fn linear_forward_sparse(
        &self,
        x: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        act: Option<Activation>,
        mut out: ArrayViewMut2<'_, f32>,
        sparse: &mut SparseInput,
    ) {
        if !(sparse.rows.ready()
            && rows_contiguous(&x)
            && rows_contiguous(&w)
            && rows_contiguous(&out)
            && (bias.len() <= 1 || bias.strides()[0] == 1)
            && w.ncols() > 0)
        {
            return self.linear_forward(x, w, bias, act, out);
        }
        let n = out.ncols();
        let (ldw, ldo) = (row_stride(&w), row_stride(&out));
        self.for_each_pass(&x, &mut sparse.rows, |start, len, scan| {
            let part = ndarray::s![start..start + len, ..];
            let Some(scan) = scan else {
                self.linear_forward(x.slice(part), w, bias, act, out.slice_mut(part));
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
                // SAFETY: AVX-512F was detected (self); the CSR buffers hold the nonzeros
                // of rows start..start + len, whose column indices are < x.ncols() = rows
                // of w; w, bias and out have the shapes checked by the caller, contiguous
                // rows and the strides passed; out is borrowed mutably, and each task
                // writes its own rows and columns of it.
                unsafe {
                    sparse::csr_forward(
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
    }

    fn sgd_update_sparse(
        &self,
        input: ArrayView2<'_, f32>,
        delta: ArrayView2<'_, f32>,
        scale: f32,
        mut w: ArrayViewMut2<'_, f32>,
        bias: ArrayViewMut1<'_, f32>,
        sparse: &mut SparseInput,
    ) {
        update_bias(delta, scale, bias);
        if !(sparse.rows.ready()
            && rows_contiguous(&input)
            && rows_contiguous(&delta)
            && rows_contiguous(&w)
            && delta.ncols() > 0)
        {
            return self.weights_update(input, delta, scale, w);
        }
        let n = delta.ncols();
        let (ldd, ldw) = (row_stride(&delta), row_stride(&w));
        let pixels = input.ncols();
        let columns: &mut ColumnForm<f32> = &mut sparse.columns;
        self.for_each_pass(&input, &mut sparse.rows, |start, len, scan| {
            let part = delta.slice(ndarray::s![start..start + len, ..]);
            let Some(scan) = scan else {
                let x = input.slice(ndarray::s![start..start + len, ..]);
                self.weights_update(x, part, scale, w.view_mut());
                return;
            };
            scan.transpose_into(len, columns);
            let (ptr, rows_idx, vals) = (&columns.ptr, &columns.rows, &columns.vals);
            let (dp, wp) = (SendPtr(part.as_ptr()), SendMut(w.as_mut_ptr()));
            run_blocks(pixels, n, SPARSE_COLS, 8, &|pixel_range, cols| {
                // SAFETY: AVX-512F was detected (self); the CSC buffers hold the nonzeros
                // of rows start..start + len by column (< input.ncols() = rows of w), with
                // row indices < len = rows of `part`; w and part have the shapes checked
                // by the caller, contiguous rows and the strides passed; w is borrowed
                // mutably, and each task updates its own rows and columns of it.
                unsafe {
                    sparse::csc_update(
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
    }

    fn product_f64(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) {
        if !self.try_tiled_f64(a, b, out.view_mut(), |c, ldc| tiled::Epilogue64::Store {
            c,
            ldc,
        }) {
            Portable.product_f64(a, b, out);
        }
    }

    fn sgd_update_f64(
        &self,
        input: ArrayView2<'_, f64>,
        delta: ArrayView2<'_, f64>,
        lr: f64,
        mut w: ArrayViewMut2<'_, f64>,
        scratch: &mut ScratchF64,
    ) {
        let rows = input.nrows();
        let (n, inv_n, divide) = (rows as f64, 1.0 / rows as f64, !rows.is_power_of_two());
        let tiled = self.try_tiled_f64(input.t(), delta, w.view_mut(), |c, ldc| {
            tiled::Epilogue64::Sgd {
                c,
                ldc,
                lr,
                n,
                inv_n,
                divide,
            }
        });
        if !tiled {
            Portable.sgd_update_f64(input, delta, lr, w, scratch);
        }
    }

    fn product_nt_f64(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
        scratch: &mut ScratchF64,
    ) {
        super::product_nt_by_transposes(self, a, b, out, scratch);
    }

    fn product_sparse_f64(
        &self,
        x: ArrayView2<'_, f64>,
        w: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
        sparse: &mut SparseRowsF64,
    ) {
        let fan_out = w.ncols();
        if !(sparse.rows.ready()
            && rows_contiguous(&x)
            && rows_contiguous(&w)
            && rows_contiguous(&out)
            && fan_out > 0)
        {
            return Portable.product_sparse_f64(x, w, out, sparse);
        }
        let (ldw, ldo) = (row_stride(&w), row_stride(&out));
        const COLS: usize = 8 * sparse::SPARSE_F64_NV;
        self.for_each_pass(&x, &mut sparse.rows, |start, len, scan| {
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
                // SAFETY: AVX-512F was detected (self); the CSR buffers hold the nonzeros
                // of rows start..start + len, whose column indices are < fan_in = rows of
                // w; w and out have the shapes checked by the caller, contiguous rows and
                // the strides passed; out is borrowed mutably, and each task writes its
                // own rows and columns of it.
                unsafe {
                    sparse::csr_product_f64(
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
    }

    fn build_columns(&self, columns: &mut SparseColumns, x: ArrayView2<'_, f64>) {
        if !(columns.scan.ready() && rows_contiguous(&x)) {
            return Portable.build_columns(columns, x);
        }
        let n = x.nrows();
        self.scan(&mut columns.scan, &x, 0, n);
        csr_to_csc(
            (
                &columns.scan.ptr[..=n],
                &columns.scan.idx,
                &columns.scan.vals,
            ),
            (&mut columns.ptr, &mut columns.cursor),
            (&mut columns.rows, &mut columns.vals),
        );
    }

    fn sgd_update_columns(
        &self,
        columns: &SparseColumns,
        rows: usize,
        delta: ArrayView2<'_, f64>,
        lr: f64,
        mut w: ArrayViewMut2<'_, f64>,
    ) {
        let (fan_in, fan_out) = w.dim();
        if !(rows_contiguous(&delta) && rows_contiguous(&w) && fan_out > 0) {
            return Portable.sgd_update_columns(columns, rows, delta, lr, w);
        }
        let divide = !rows.is_power_of_two();
        let (n, inv_n) = (rows as f64, 1.0 / rows as f64);
        let (ldd, ldw) = (row_stride(&delta), row_stride(&w));
        let (dp, wp) = (delta.as_ptr(), w.as_mut_ptr());
        let cs = columns;
        let (dp, wp) = (SendPtr(dp), SendMut(wp));
        let tasks = (4 * team::threads()).min(fan_in.max(1));
        team::run(tasks, &|t| {
            let (p0, p1) = (t * fan_in / tasks, (t + 1) * fan_in / tasks);
            // SAFETY: AVX-512F was detected (self); the CSC buffers hold the nonzeros of
            // input by column (< fan_in = rows of w) with row indices < rows = rows of
            // delta; delta and w have the shapes checked by the caller, contiguous rows
            // and the strides passed; w is borrowed mutably, and each task updates its own
            // rows of it.
            unsafe {
                sparse::csc_sgd_f64(
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
    }

    fn tanh_f64_slice(&self, xs: &mut [f64]) {
        // SAFETY: AVX-512F was detected (self).
        unsafe {
            math::tanh_slice_f64(xs);
        }
    }

    fn activate_slice(&self, act: Activation, xs: &mut [f32]) {
        // SAFETY: AVX-512F was detected (self).
        unsafe {
            math::map(act_of(Some(act)), xs);
        }
    }
}

/// `c = a b` through the AVX-512 kernel with the tile shape that suits `n`, its tiles
/// shared among the team.
///
/// # Safety
/// As [`tiled::gemm`].
unsafe fn gemm_auto(
    m: usize,
    n: usize,
    k: usize,
    a: tiled::AStrided,
    b: tiled::BRows,
    epi: tiled::Epilogue,
) {
    use tiled::gemm as g;
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

/// [`gemm_auto`] for `f64` ([`tiled::gemm_f64`]).
///
/// # Safety
/// As [`tiled::gemm_f64`].
unsafe fn gemm_auto_f64(
    m: usize,
    n: usize,
    k: usize,
    a: tiled::AStrided<f64>,
    b: tiled::BRows<f64>,
    epi: tiled::Epilogue64,
) {
    use tiled::gemm_f64 as g;
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
type TiledKernel<T, E> = unsafe fn(usize, usize, usize, tiled::AStrided<T>, tiled::BRows<T>, E);

/// `kernel` (tiles of `mr` rows by `nr` columns) split into tasks of `mr`-aligned row
/// chunks by column tiles, about four per thread, consecutive tasks sharing a column tile
/// (and so `b`'s panel).
///
/// # Safety
/// As `kernel` ([`tiled::gemm`], [`tiled::gemm_f64`]).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_team<T, E: tiled::TileAt>(
    m: usize,
    n: usize,
    k: usize,
    a: tiled::AStrided<T>,
    b: tiled::BRows<T>,
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

/// Output columns per task of the sparse `f32` kernels.
const SPARSE_COLS: usize = 16 * sparse::SPARSE_NV;

/// An element type the vector row scan handles.
trait Scan: ScanElem {
    /// The nonzeros of `rows` rows of `x` (row stride `ldx`, `cols` columns) into CSR
    /// buffers; the number of nonzeros.
    ///
    /// # Safety
    /// AVX-512F is available; `x` addresses `rows x cols` elements with row stride `ldx`;
    /// `ptr.len() > rows`; `idx` and `vals` hold at least `rows * cols + PAD` elements.
    unsafe fn scan(
        x: *const Self,
        shape: (usize, usize, usize),
        ptr: &mut [u32],
        idx: &mut [u32],
        vals: &mut [Self],
    ) -> usize;
}

impl Scan for f32 {
    unsafe fn scan(
        x: *const f32,
        (rows, cols, ldx): (usize, usize, usize),
        ptr: &mut [u32],
        idx: &mut [u32],
        vals: &mut [f32],
    ) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { sparse::csr_rows(x, rows, cols, ldx, ptr, idx, vals) }
    }
}

impl Scan for f64 {
    unsafe fn scan(
        x: *const f64,
        (rows, cols, ldx): (usize, usize, usize),
        ptr: &mut [u32],
        idx: &mut [u32],
        vals: &mut [f64],
    ) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { sparse::csr_rows_f64(x, rows, cols, ldx, ptr, idx, vals) }
    }
}

impl Avx512 {
    /// Scans rows `start..start + rows` of `x` into `buffers`; the number of nonzeros.
    fn scan<T: Scan>(
        self,
        buffers: &mut RowScan<T>,
        x: &ArrayView2<'_, T>,
        start: usize,
        rows: usize,
    ) -> usize {
        assert!(
            buffers.ready() && rows <= buffers.capacity && start + rows <= x.nrows(),
            "RowScan::scan: {rows} rows from {start} of {} (capacity {})",
            x.nrows(),
            buffers.capacity
        );
        assert!(
            x.ncols() == buffers.cols && rows_contiguous(x),
            "RowScan::scan: layout"
        );
        let ldx = row_stride(x);
        // SAFETY: AVX-512F was detected (self); rows start..start + rows of x exist with
        // contiguous rows and stride ldx (checked above); the buffers exist (checked
        // above), so they hold capacity + 1 pointers and capacity * cols + PAD entries.
        unsafe {
            T::scan(
                x.as_ptr().add(start * ldx),
                (rows, buffers.cols, ldx),
                &mut buffers.ptr,
                &mut buffers.idx,
                &mut buffers.vals,
            )
        }
    }

    /// Scans `x` in passes of up to [`PASS_ROWS`] rows and calls `pass(start, len, scan)`
    /// for each, with `scan` holding the pass's nonzeros, or `None` when more than
    /// [`PASS_MAX_DENSITY`] of the pass is nonzero (to be done dense).
    fn for_each_pass<T: Scan>(
        self,
        x: &ArrayView2<'_, T>,
        scan: &mut RowScan<T>,
        mut pass: impl FnMut(usize, usize, Option<&RowScan<T>>),
    ) {
        let rows = x.nrows();
        let mut start = 0;
        while start < rows {
            let len = PASS_ROWS.min(rows - start);
            let nnz = self.scan(scan, x, start, len);
            let dense = nnz as f64 > PASS_MAX_DENSITY * (len * x.ncols()) as f64;
            pass(start, len, (!dense).then_some(&*scan));
            start += len;
        }
    }

    /// `c = a b` handed to the `f64` tiled kernel with the epilogue `epi(c, ldc)` makes,
    /// when the kernels can address the operands: `a` with any non-negative strides, `b`
    /// and `c` with contiguous rows, none of them empty. False (nothing done) otherwise.
    fn try_tiled_f64(
        self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        mut c: ArrayViewMut2<'_, f64>,
        epi: impl FnOnce(*mut f64, usize) -> tiled::Epilogue64,
    ) -> bool {
        let ((m, k), n, s) = (a.dim(), b.ncols(), a.strides());
        debug_assert!(b.nrows() == k && c.dim() == (m, n));
        if !(s[0] >= 0 && s[1] >= 0 && rows_contiguous(&b) && rows_contiguous(&c))
            || m == 0
            || n == 0
        {
            return false;
        }
        let epi = epi(c.as_mut_ptr(), row_stride(&c));
        let av = tiled::AStrided {
            ptr: a.as_ptr(),
            rs: s[0] as usize,
            cs: s[1] as usize,
        };
        let bv = tiled::BRows {
            ptr: b.as_ptr(),
            ldb: row_stride(&b),
        };
        // SAFETY: AVX-512F was detected (self); a is m x k with the non-negative strides
        // passed, b k x n and c m x n with contiguous rows and the row strides passed; c
        // is borrowed mutably, so it overlaps neither a nor b; the epilogue addresses c.
        unsafe {
            gemm_auto_f64(m, n, k, av, bv, epi);
        }
        true
    }
}
