//! What the vector kernels share, whatever their instruction set: the layouts they can
//! address, pointers handed to the thread team's tasks, the sparse kernels' split of the
//! work, and the nonzeros of an input by rows and by columns (filled by a vector scan).
//! Compiled on the targets that have vector kernels.
#![allow(unsafe_code)]

use crate::fused::team;
use crate::isa::Isa;

/// Rows contiguous and a non-negative row stride: what the kernels can address.
pub(crate) fn rows_contiguous<S: ndarray::RawData>(
    a: &ndarray::ArrayBase<S, ndarray::Ix2>,
) -> bool {
    let (rows, cols) = a.dim();
    let s = a.strides();
    (cols <= 1 || s[1] == 1) && (rows <= 1 || s[0] >= cols as isize)
}

/// Row stride of a matrix accepted by [`rows_contiguous`].
pub(crate) fn row_stride<S: ndarray::RawData>(a: &ndarray::ArrayBase<S, ndarray::Ix2>) -> usize {
    if a.nrows() <= 1 {
        a.ncols()
    } else {
        a.strides()[0] as usize
    }
}

/// Runs `task(rows, cols)` on the team over a `rows x cols` grid cut into blocks of
/// `block` columns and about `per_thread` tasks per thread (row ranges by column ranges);
/// every element lies in exactly one task. The sparse kernels' split.
pub(crate) fn run_blocks(
    rows: usize,
    cols: usize,
    block: usize,
    per_thread: usize,
    task: &(dyn Fn((usize, usize), (usize, usize)) + Sync),
) {
    let blocks = cols.div_ceil(block);
    let row_chunks = (per_thread * team::threads())
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
pub(crate) struct SendPtr<T>(pub(crate) *const T);
/// A pointer the team's tasks write through, each to its own elements.
pub(crate) struct SendMut<T>(pub(crate) *mut T);
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
    pub(crate) fn get(self) -> *const T {
        self.0
    }
}

impl<T> SendMut<T> {
    /// The pointer (see [`SendPtr::get`]).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// An element type the vector row scan ([`RowScan`]) handles.
pub(crate) trait ScanElem: Copy + Default {
    /// Entries the scan may write past the last nonzero (one vector).
    const PAD: usize;
}

impl ScanElem for f32 {
    const PAD: usize = 16;
}

impl ScanElem for f64 {
    const PAD: usize = 8;
}

/// The nonzeros of up to `capacity` rows of an input by rows (CSR), rebuilt by a vector
/// scan on every use, in buffers made once: the row form of every sparse kernel, in both
/// precisions. Empty when made for an instruction set without vector kernels.
#[derive(Clone, Debug)]
pub(crate) struct RowScan<T> {
    pub(crate) cols: usize,
    pub(crate) capacity: usize,
    pub(crate) ptr: Vec<u32>,
    pub(crate) idx: Vec<u32>,
    pub(crate) vals: Vec<T>,
}

impl<T: ScanElem> RowScan<T> {
    pub(crate) fn new(isa: Isa, capacity: usize, cols: usize) -> Self {
        let (rows, len) = if isa.accelerated() {
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

    /// Whether the buffers exist (made for an instruction set with vector kernels).
    pub(crate) fn ready(&self) -> bool {
        !self.ptr.is_empty()
    }

    /// The nonzeros of the last scan of `rows` rows in column form, into `columns`.
    pub(crate) fn transpose_into(&self, rows: usize, columns: &mut ColumnForm<T>) {
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
pub(crate) struct ColumnForm<T> {
    pub(crate) ptr: Vec<u32>,
    pub(crate) cursor: Vec<u32>,
    pub(crate) rows: Vec<u32>,
    pub(crate) vals: Vec<T>,
}

impl<T: ScanElem> ColumnForm<T> {
    /// Buffers for the nonzeros of `rows` by columns (empty if `rows` is).
    pub(crate) fn for_rows(rows: &RowScan<T>) -> Self {
        let (capacity, cols) = if rows.ready() {
            (rows.capacity, rows.cols)
        } else {
            (0, 0)
        };
        Self {
            ptr: vec![0; cols + 1],
            cursor: vec![0; cols],
            rows: vec![0; capacity * cols],
            vals: vec![T::default(); capacity * cols],
        }
    }
}

/// The column form (CSC) of a CSR matrix: `row_ptr` (one more entry than rows), its column
/// indices and values, into `ptr` (one more entry than columns), `cursor` (scratch, one
/// per column), and each column's row indices (increasing) and values.
pub(crate) fn csr_to_csc<T: Copy>(
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

/// Two `(width, rows)` buffers a kernel transposes operands through (`input` and
/// `output`), empty when made for an instruction set without vector kernels.
#[derive(Clone, Debug)]
pub(crate) struct Transposes<T> {
    pub(crate) input: ndarray::Array2<T>,
    pub(crate) output: ndarray::Array2<T>,
}

impl<T: Clone + num_traits::Zero> Transposes<T> {
    pub(crate) fn new(isa: Isa, width: usize, rows: usize) -> Self {
        let width = if isa.accelerated() { width } else { 0 };
        Self {
            input: ndarray::Array2::zeros((width, rows)),
            output: ndarray::Array2::zeros((width, rows)),
        }
    }
}
