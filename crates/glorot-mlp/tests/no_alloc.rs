//! "A step allocates nothing": checked with a counting global allocator.
//!
//! The allocator forwards to the system allocator and counts the allocations of the
//! threads that switched counting on, so tests running in parallel do not disturb it.
//! OpenBLAS manages its own buffers outside Rust's allocator.
#![allow(unsafe_code)] // implementing GlobalAlloc requires `unsafe impl`; it only forwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use glorot_mlp::{
    Activation, Arithmetic, EvalData, Evaluator, Head, Init, Mlp, MlpFloat, ModelConfig, Optimizer,
    OptimizerState, WeightSource, Workspace,
};
use ndarray::{Array2, s};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
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

fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_in(|| {
        std::hint::black_box(vec![1u8; 100]);
    });
    assert_eq!(n, 1);
}

/// Training steps (full and partial batches, both heads, every activation), the unfused
/// gradient + update pair, and evaluation allocate nothing once their buffers exist.
#[test]
fn steps_and_evaluation_allocate_nothing() {
    for arithmetic in [Arithmetic::Fast, Arithmetic::Blas] {
        steps_allocate_nothing::<f32>(arithmetic);
        steps_allocate_nothing::<f64>(arithmetic);
    }
}

/// Training steps, gradients, an update and a chunked evaluation, on inputs with zeros (so
/// that the sparse first-layer kernels run where they exist), for every head and
/// activation; then the fallbacks: steps and gradients on an input that is not in standard
/// layout (a column range, which the fused and sparse kernels do not take), and steps in a
/// workspace above the `f64` sparse update's batch limit (1,024 rows).
fn steps_allocate_nothing<F: MlpFloat>(arithmetic: Arithmetic) {
    for head in [Head::SigmoidBce, Head::SoftmaxCrossEntropy] {
        for activation in Activation::ALL {
            let cfg = ModelConfig {
                layers: vec![20, 16, 12, 5],
                activation,
                head,
                init: Init::GlorotUniform,
            }
            .validate()
            .unwrap();
            let mut model = Mlp::<F>::new(cfg.clone(), WeightSource::Seed(1)).unwrap();
            let x = Array2::from_shape_fn((40, 20), |(i, j)| {
                let v = ((i * 20 + j) as f64).sin();
                F::from_f64(if v > 0.3 { v } else { 0.0 })
            });
            let labels: Vec<u8> = (0..40).map(|i| (i % 5) as u8).collect();
            let y = glorot_tensor::one_hot::<F>(&labels, 5);
            let mut ws = Workspace::with_arithmetic(&cfg, 16, arithmetic);
            // `x` in columns 3.. of a wider array: its rows are not contiguous.
            let mut wide = Array2::zeros((40, 23));
            wide.slice_mut(s![.., 3..]).assign(&x);
            let strided = wide.slice(s![.., 3..]);
            assert!(!strided.is_standard_layout());
            let mut big = Workspace::with_arithmetic(&cfg, 1100, arithmetic);
            let eval_data = EvalData::new(x.view(), &labels).unwrap();
            let mut eval = Evaluator::with_arithmetic(&cfg, 15, arithmetic); // chunks 15, 15, 10
            let lr = F::from_f64(0.1);
            // Warm up OpenBLAS (its first call sets up its own buffers).
            model.train_step(x.slice(s![..16, ..]), y.slice(s![..16, ..]), lr, &mut ws);
            let n = allocations_in(|| {
                for (a, b) in [(0, 16), (16, 32), (32, 40)] {
                    let loss =
                        model.train_step(x.slice(s![a..b, ..]), y.slice(s![a..b, ..]), lr, &mut ws);
                    std::hint::black_box(loss);
                }
                model.gradients(x.slice(s![..7, ..]), y.slice(s![..7, ..]), &mut ws);
                model.sgd_step(&ws, lr);
                std::hint::black_box(eval.evaluate(&model, &eval_data).unwrap());
                for (a, b) in [(0, 16), (16, 32), (32, 40)] {
                    let (xs, ys) = (strided.slice(s![a..b, ..]), y.slice(s![a..b, ..]));
                    std::hint::black_box(model.train_step(xs, ys, lr, &mut ws));
                    let xs = x.slice(s![a..b, ..]);
                    std::hint::black_box(model.train_step(xs, ys, lr, &mut big));
                }
                model.gradients(strided.slice(s![..7, ..]), y.slice(s![..7, ..]), &mut ws);
                model.sgd_step(&ws, lr);
            });
            let what = std::any::type_name::<F>();
            assert_eq!(
                n, 0,
                "{what} {arithmetic} {activation} {head}: {n} allocations"
            );
        }
    }
}

/// Every optimizer's update allocates nothing: its state is allocated once, by
/// `OptimizerState::new`, and gradients plus update reuse the workspace and the state.
#[test]
fn optimizer_steps_allocate_nothing() {
    optimizer_steps::<f32>();
    optimizer_steps::<f64>();
}

fn optimizer_steps<F: MlpFloat>() {
    let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
    let optimizers = [
        Optimizer::Sgd { weight_decay: 0.1 },
        Optimizer::Momentum {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        Optimizer::Nesterov {
            momentum: 0.9,
            weight_decay: 0.1,
        },
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay: 0.1,
        },
        Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay: 0.1,
        },
    ];
    let cfg = ModelConfig {
        layers: vec![20, 16, 12, 5],
        activation: Activation::Relu,
        head: Head::SoftmaxCrossEntropy,
        init: Init::GlorotUniform,
    }
    .validate()
    .unwrap();
    let x = Array2::from_shape_fn((32, 20), |(i, j)| {
        let v = ((i * 20 + j) as f64).sin();
        F::from_f64(if v > 0.3 { v } else { 0.0 })
    });
    let labels: Vec<u8> = (0..32).map(|i| (i % 5) as u8).collect();
    let y = glorot_tensor::one_hot::<F>(&labels, 5);
    for optimizer in optimizers {
        let mut model = Mlp::<F>::new(cfg.clone(), WeightSource::Seed(2)).unwrap();
        let mut state = OptimizerState::new(optimizer, &model).unwrap();
        let mut ws = Workspace::new(&cfg, 16);
        // Warm up OpenBLAS (its first call sets up its own buffers).
        model.gradients(x.slice(s![..16, ..]), y.slice(s![..16, ..]), &mut ws);
        let n = allocations_in(|| {
            for (a, b) in [(0, 16), (16, 32), (0, 16)] {
                let (xs, ys) = (x.slice(s![a..b, ..]), y.slice(s![a..b, ..]));
                std::hint::black_box(model.gradients(xs, ys, &mut ws));
                state.step(&mut model, ws.gradients(), 0.01);
            }
        });
        assert_eq!(state.steps(), 3);
        let what = std::any::type_name::<F>();
        assert_eq!(n, 0, "{what} {optimizer}: {n} allocations");
    }
}
