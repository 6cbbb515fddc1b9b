//! "Once buffers exist, a training step allocates nothing", checked with a counting
//! global allocator.
//!
//! The allocator below forwards to the system allocator and, while a thread has switched
//! counting on, counts that thread's allocations (`alloc`, `alloc_zeroed`, `realloc`).
//! Counting is per thread so the other tests of this binary, running in parallel, do not
//! disturb it. OpenBLAS manages its own buffers with C `malloc`/`mmap` outside Rust's
//! allocator; it sets them up once at its first call and reuses them.
#![allow(unsafe_code)] // implementing GlobalAlloc requires `unsafe impl`; it only forwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use glorot_tensor::isa::Isa;
use glorot_tensor::{
    Activation, Float, Init, accuracy_percent, add_row_bias, argmax_rows, column_means,
    column_sums, gemm, loss, sigmoid_inplace, softmax_rows_inplace,
};
use ndarray::{Array1, Array2, s};

use super::common::{random_matrix, rng};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: thread-locals may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: a Vec allocation must be counted, or zero below proves nothing.
    let n = allocations_in(|| {
        let v = vec![1u8; 100];
        std::hint::black_box(&v);
    });
    assert_eq!(n, 1);
}

/// The other side of the claim in the crate docs: operands with a non-unit inner stride
/// are not BLAS-compatible, ndarray falls back to `matrixmultiply`, and that allocates
/// (packing buffers). Seeing it here also shows the counter would catch a product that
/// left the BLAS path.
#[test]
fn strided_operands_take_the_allocating_fallback() {
    let a = Array2::<f64>::from_elem((64, 100), 0.5);
    let b = Array2::<f64>::from_elem((50, 64), 0.25);
    let mut c = Array2::<f64>::zeros((64, 64));
    let blas = allocations_in(|| gemm(1.0, a.slice(s![.., ..50]), b.view(), 0.0, c.view_mut()));
    assert_eq!(blas, 0, "a column slice keeps unit inner stride: BLAS");
    let strided = allocations_in(|| gemm(1.0, a.slice(s![.., ..;2]), b.view(), 0.0, c.view_mut()));
    assert!(
        strided > 0,
        "a strided operand should take the matrixmultiply path"
    );
}

/// Buffers of the notebook's 784-H-H-10 network for one batch size.
struct Net<F> {
    w: [Array2<F>; 3],
    b: [Array1<F>; 3],
    gw: [Array2<F>; 3],
    gb: [Array1<F>; 3],
    h: [Array2<F>; 3],     // h1, h2, out: (batch, units)
    delta: [Array2<F>; 3], // del0, del1, del2
}

impl<F: Float> Net<F> {
    fn new(units: [usize; 4], batch: usize) -> Self {
        let mut r = rng(1);
        let w = std::array::from_fn(|l| {
            Init::GlorotUniform
                .weights(units[l], units[l + 1], &mut r)
                .unwrap()
        });
        Net {
            w,
            b: std::array::from_fn(|l| Array1::zeros(units[l + 1])),
            gw: std::array::from_fn(|l| Array2::zeros((units[l], units[l + 1]))),
            gb: std::array::from_fn(|l| Array1::zeros(units[l + 1])),
            h: std::array::from_fn(|l| Array2::zeros((batch, units[l + 1]))),
            delta: std::array::from_fn(|l| Array2::zeros((batch, units[l + 1]))),
        }
    }

    /// The notebook's forward, loss, backward and update on one batch; returns the loss.
    fn step(
        &mut self,
        x: ndarray::ArrayView2<F>,
        y: ndarray::ArrayView2<F>,
        act: Activation,
        lr: F,
    ) -> F {
        let zero = F::zero();
        let one = F::one();
        // Forward.
        for l in 0..3 {
            let (before, after) = self.h.split_at_mut(l);
            let input = if l == 0 { x } else { before[l - 1].view() };
            let z = &mut after[0];
            gemm(one, input, self.w[l].view(), zero, z.view_mut());
            if l < 2 {
                act.forward_bias_inplace(z.view_mut(), self.b[l].view());
            } else {
                add_row_bias(z.view_mut(), self.b[l].view());
                sigmoid_inplace(z.view_mut());
            }
        }
        let l = loss::bce_notebook(self.h[2].view(), y);
        // Backward.
        let n = F::from_f64(x.nrows() as f64);
        loss::bce_notebook_delta(self.h[2].view(), y, self.delta[2].view_mut());
        for l in (0..3).rev() {
            let input = if l == 0 { x } else { self.h[l - 1].view() };
            gemm(
                one / n,
                input.t(),
                self.delta[l].view(),
                zero,
                self.gw[l].view_mut(),
            );
            if l == 0 {
                column_sums(self.delta[l].view(), self.gb[l].view_mut());
                self.gb[l].mapv_inplace(|v| v / n);
            } else {
                column_means(self.delta[l].view(), self.gb[l].view_mut());
            }
            if l > 0 {
                let (lower, upper) = self.delta.split_at_mut(l);
                gemm(
                    one,
                    upper[0].view(),
                    self.w[l].t(),
                    zero,
                    lower[l - 1].view_mut(),
                );
                act.backward_inplace(self.h[l - 1].view(), lower[l - 1].view_mut());
            }
        }
        // Update.
        for l in 0..3 {
            self.w[l].scaled_add(-lr, &self.gw[l]);
            self.b[l].scaled_add(-lr, &self.gb[l]);
        }
        l
    }
}

/// A full training step at the notebook's shapes (784-500-500-10, batch 32, a row slice
/// of the data as the batch) plus evaluation helpers and the other losses: zero
/// allocations, for every activation, from the very first step.
fn training_step_allocates_nothing<F: Float>() {
    let batch = 32;
    let mut r = rng(2);
    let data: Array2<F> = random_matrix(3 * batch, 784, &mut r);
    let labels: Vec<u8> = (0..3 * batch).map(|i| (i % 10) as u8).collect();
    let targets = glorot_tensor::one_hot::<F>(&labels, 10);
    let mut pred = vec![0usize; batch];
    let mut logits = Array2::<F>::zeros((batch, 10));
    let mut net = Net::<F>::new([784, 500, 500, 10], batch);
    for act in Activation::ALL {
        let count = allocations_in(|| {
            for k in 0..3 {
                let rows = s![k * batch..(k + 1) * batch, ..];
                let l = net.step(
                    data.slice(rows),
                    targets.slice(rows),
                    act,
                    F::from_f64(0.01),
                );
                assert!(l.is_finite());
                argmax_rows(net.h[2].view(), &mut pred);
                let acc = accuracy_percent(&pred, &labels[k * batch..(k + 1) * batch]);
                assert!((0.0..=100.0).contains(&acc));
                logits.assign(&net.h[2]);
                let _ = loss::bce_with_logits(logits.view(), targets.slice(rows));
                loss::bce_with_logits_delta(
                    logits.view(),
                    targets.slice(rows),
                    net.delta[2].view_mut(),
                );
                let _ = loss::softmax_cross_entropy(logits.view(), targets.slice(rows));
                loss::softmax_cross_entropy_delta(
                    logits.view(),
                    targets.slice(rows),
                    net.delta[2].view_mut(),
                );
                softmax_rows_inplace(logits.view_mut());
            }
        });
        assert_eq!(
            count,
            0,
            "{act} ({}): a training step allocated {count} times",
            F::NAME
        );
    }
}

crate::both_floats!(training_step_allocates_nothing);

/// An input like an MNIST batch: `(rows, cols)` with about 19 % of the entries nonzero
/// (MNIST's density), the others exactly zero.
fn sparse_input<F: Float>(rows: usize, cols: usize, r: &mut rand_chacha::ChaCha8Rng) -> Array2<F> {
    let dense: Array2<F> = random_matrix(rows, cols, r);
    dense.mapv(|v| if v.to_f64() > 0.62 { v } else { F::zero() })
}

/// Weights of the notebook's 784-500-500-10 network, scaled to keep activations away
/// from saturation.
fn weights<F: Float>(r: &mut rand_chacha::ChaCha8Rng) -> [Array2<F>; 3] {
    let units = [784, 500, 500, 10];
    std::array::from_fn(|l| {
        random_matrix::<F>(units[l], units[l + 1], r).mapv(|v| v * F::from_f64(0.05))
    })
}

/// Three `f32` training steps through the fused kernels (sparse first layer, dense
/// layers, backward through the weights and the derivative, SGD updates, the vector
/// activation) on every instruction set this machine has, the portable one included, on
/// one and two threads: zero allocations from the very first step once the buffers
/// exist.
#[test]
fn fused_f32_steps_allocate_nothing_on_every_instruction_set() {
    use glorot_tensor::fused::{self, Scratch, SparseInput};
    let batch = 32;
    let mut r = rng(3);
    let data: Array2<f32> = sparse_input(3 * batch, 784, &mut r);
    let targets: Array2<f32> = random_matrix(3 * batch, 10, &mut r);
    for isa in Isa::supported() {
        for threads in [1, 2] {
            fused::set_threads(threads);
            let mut w = weights::<f32>(&mut r);
            let mut b: [Array1<f32>; 3] = std::array::from_fn(|l| Array1::zeros(w[l].ncols()));
            let mut h: [Array2<f32>; 3] =
                std::array::from_fn(|l| Array2::zeros((batch, w[l].ncols())));
            let mut delta: [Array2<f32>; 3] =
                std::array::from_fn(|l| Array2::zeros((batch, w[l].ncols())));
            let mut scratch = Scratch::new(isa, 784);
            let mut sparse = SparseInput::new(isa, 784);
            let act = Activation::Tanh;
            let count = allocations_in(|| {
                for k in 0..3 {
                    let rows = s![k * batch..(k + 1) * batch, ..];
                    let x = data.slice(rows);
                    let [h0, h1, h2] = &mut h;
                    fused::linear_forward_sparse(
                        isa,
                        x,
                        w[0].view(),
                        b[0].view(),
                        Some(act),
                        h0.view_mut(),
                        &mut sparse,
                    );
                    fused::linear_forward(
                        isa,
                        h0.view(),
                        w[1].view(),
                        b[1].view(),
                        Some(act),
                        h1.view_mut(),
                    );
                    fused::linear_forward(
                        isa,
                        h1.view(),
                        w[2].view(),
                        b[2].view(),
                        Some(Activation::Sigmoid),
                        h2.view_mut(),
                    );
                    ndarray::Zip::from(&mut delta[2])
                        .and(&*h2)
                        .and(targets.slice(rows))
                        .for_each(|d, &o, &y| *d = o - y);
                    let [d0, d1, d2] = &mut delta;
                    fused::linear_backward_input(
                        isa,
                        d2.view(),
                        w[2].view(),
                        act,
                        h1.view(),
                        d1.view_mut(),
                        &mut scratch,
                    );
                    fused::sgd_update(
                        isa,
                        h1.view(),
                        d2.view(),
                        0.01,
                        w[2].view_mut(),
                        b[2].view_mut(),
                    );
                    fused::linear_backward_input(
                        isa,
                        d1.view(),
                        w[1].view(),
                        act,
                        h0.view(),
                        d0.view_mut(),
                        &mut scratch,
                    );
                    fused::sgd_update(
                        isa,
                        h0.view(),
                        d1.view(),
                        0.01,
                        w[1].view_mut(),
                        b[1].view_mut(),
                    );
                    fused::sgd_update_sparse(
                        isa,
                        x,
                        d0.view(),
                        0.01,
                        w[0].view_mut(),
                        b[0].view_mut(),
                        &mut sparse,
                    );
                    fused::activate_slice(isa, act, h0.as_slice_mut().unwrap());
                }
            });
            fused::set_threads(1);
            assert!(w[0].iter().all(|v| v.is_finite()));
            assert_eq!(
                count,
                0,
                "{} ({threads} threads): a fused f32 step allocated {count} times",
                isa.name()
            );
        }
    }
}

/// Three `f64` training steps through the fused kernels (the sparse first-layer product,
/// `tanh`, the dense products, `a b^T`, the fused updates) and the replay's exact sparse
/// update, gradient and check, on every instruction set this machine has, the portable
/// one included: zero allocations from the very first step once the buffers exist.
#[test]
fn fused_f64_steps_allocate_nothing_on_every_instruction_set() {
    use glorot_tensor::fused::{self, ScratchF64, SparseRowsF64};
    use glorot_tensor::replay::{self, SparseColumns};
    let batch = 32;
    let mut r = rng(4);
    let data: Array2<f64> = sparse_input(3 * batch, 784, &mut r);
    let targets: Array2<f64> = random_matrix(3 * batch, 10, &mut r);
    for isa in Isa::supported() {
        let mut w = weights::<f64>(&mut r);
        let mut z: [Array2<f64>; 3] = std::array::from_fn(|l| Array2::zeros((batch, w[l].ncols())));
        let mut delta: [Array2<f64>; 3] =
            std::array::from_fn(|l| Array2::zeros((batch, w[l].ncols())));
        let mut g0 = Array2::<f64>::zeros((784, 500));
        let mut scratch = ScratchF64::new(isa, 784);
        let mut rows64 = SparseRowsF64::new(isa, 784);
        let mut columns = SparseColumns::new(isa, batch, 784);
        let mut agreed = 0;
        let count = allocations_in(|| {
            for k in 0..3 {
                let rows = s![k * batch..(k + 1) * batch, ..];
                let x = data.slice(rows);
                let [z0, z1, z2] = &mut z;
                fused::product_sparse_f64(isa, x, w[0].view(), z0.view_mut(), &mut rows64);
                fused::tanh_f64_slice(isa, z0.as_slice_mut().unwrap());
                fused::product_f64(isa, z0.view(), w[1].view(), z1.view_mut());
                fused::tanh_f64_slice(isa, z1.as_slice_mut().unwrap());
                fused::product_f64(isa, z1.view(), w[2].view(), z2.view_mut());
                ndarray::Zip::from(&mut delta[2])
                    .and(&*z2)
                    .and(targets.slice(rows))
                    .for_each(|d, &o, &y| *d = o - y);
                let [d0, d1, d2] = &mut delta;
                fused::product_nt_f64(isa, d2.view(), w[2].view(), d1.view_mut(), &mut scratch);
                fused::sgd_update_f64(
                    isa,
                    z1.view(),
                    d2.view(),
                    0.01,
                    w[2].view_mut(),
                    &mut scratch,
                );
                fused::product_nt_f64(isa, d1.view(), w[1].view(), d0.view_mut(), &mut scratch);
                fused::sgd_update_f64(
                    isa,
                    z0.view(),
                    d1.view(),
                    0.01,
                    w[1].view_mut(),
                    &mut scratch,
                );
                replay::weight_gradient_sparse_f64(isa, x, d0.view(), g0.view_mut(), &mut columns);
                if replay::matches_sparse_chain(isa, x, d0.view(), g0.view(), &mut columns) {
                    agreed += 1;
                }
                replay::sgd_update_sparse_exact(
                    isa,
                    x,
                    d0.view(),
                    0.01,
                    w[0].view_mut(),
                    &mut columns,
                );
            }
        });
        assert_eq!(agreed, 3, "the sparse gradient is its own chain");
        assert!(w[0].iter().all(|v| v.is_finite()));
        assert_eq!(
            count,
            0,
            "{}: a fused f64 step allocated {count} times",
            isa.name()
        );
    }
}
