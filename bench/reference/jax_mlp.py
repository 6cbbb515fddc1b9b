#!/usr/bin/env python3
"""The notebook's network in JAX on the CPU, timed one epoch at a time.

The same math as `/work/shared/seed/notebook.txt` (cell In [3]): the gradient
is `jax.value_and_grad` of the batch MEAN of the summed binary cross-entropy
with the notebook's `1e-8` guards, which is exactly the gradient the notebook's
hand-written `backward` computes (see torch_mlp.py for the derivation); the
update is plain SGD. Two variants:

* `jit-step`: one `jax.jit`-compiled training step per minibatch (the batch is
  cut from the device-resident training set inside the compiled step with
  `lax.dynamic_slice`), the last partial batch through a second compiled step
  of its own shape, then a compiled validation pass.
* `scan-epoch`: the whole epoch as ONE compiled XLA program: `lax.scan` over
  the full minibatches, the last partial batch as a separate step after the
  scan, then the validation forward pass and accuracy.

Parameters are donated to the compiled programs, so XLA updates them in place.
Everything is compiled ahead of time (`.lower(...).compile()`, reported as
`compile_seconds`), so the timed epoch contains no compilation; `jit-step`
also runs each compiled program once on throwaway parameters before timing
(`scan-epoch` has one program, whose single run is the epoch itself). `--dtype f64`
turns on `jax_enable_x64`.

Threads: XLA's CPU client does not read OMP/MKL/OPENBLAS_NUM_THREADS, and in
current jaxlib neither `--xla_cpu_multi_thread_eigen=false` nor
`intra_op_parallelism_threads` in XLA_FLAGS bounds its thread pool (measured;
the latter is rejected as an unknown flag). It sizes its pools from the CPU
affinity mask, which `common.apply_thread_limits` sets to `--threads` CPUs.
"""

import os

import common

VARIANTS = ["jit-step", "scan-epoch"]


def main():
    args = common.parse_args(__doc__.splitlines()[0], VARIANTS)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import time

    import numpy as np
    import jax

    jax.config.update("jax_enable_x64", args.dtype == "f64")
    import jax.numpy as jnp
    from jax import lax

    dtype = {"f32": jnp.float32, "f64": jnp.float64}[args.dtype]
    act = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "ReLU": jax.nn.relu}[args.activation]
    lr, batch = args.lr, args.batch

    def forward(params, x):
        w0, b0, w1, b1, w2, b2 = params
        h1 = act(x @ w0 + b0)
        h2 = act(h1 @ w1 + b1)
        return jax.nn.sigmoid(h2 @ w2 + b2)

    def loss_fn(params, x, y):
        out = forward(params, x)
        l = -y * jnp.log(out + 1e-8) - (1 - y) * jnp.log(1 - out + 1e-8)
        return jnp.mean(jnp.sum(l, axis=1))

    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return tuple(p - lr * g for p, g in zip(params, grads)), loss

    def correct(params, vx, vl):
        return jnp.sum(jnp.argmax(forward(params, vx), axis=1) == vl)

    np_dtype = {"f32": np.float32, "f64": np.float64}[args.dtype]
    train_x, train_y, val_x, val_labels = common.load_mnist(np, args.mnist_dir, args.limit, np_dtype)
    n = len(train_x)
    full, rem = divmod(n, batch)
    X = jnp.asarray(train_x, dtype=dtype)
    Y = jnp.asarray(train_y, dtype=dtype)
    VX = jnp.asarray(val_x, dtype=dtype)
    VL = jnp.asarray(val_labels.astype(np.int32))
    del train_x, train_y, val_x
    units = [784, args.hidden, args.hidden, 10]

    def fresh_params():
        return tuple(jnp.asarray(p, dtype=dtype) for p in common.glorot_init(np, units, args.seed))

    t0 = time.perf_counter()
    if args.variant == "jit-step":
        def step_at(params, X, Y, start):
            x = lax.dynamic_slice_in_dim(X, start, batch, axis=0)
            y = lax.dynamic_slice_in_dim(Y, start, batch, axis=0)
            return step(params, x, y)

        start0 = jnp.asarray(0, dtype=jnp.int32)
        step_c = jax.jit(step_at, donate_argnums=0).lower(fresh_params(), X, Y, start0).compile()
        last_c = None
        if rem:
            last_c = jax.jit(step, donate_argnums=0).lower(
                fresh_params(), X[full * batch:], Y[full * batch:]).compile()
        correct_c = jax.jit(correct).lower(fresh_params(), VX, VL).compile()
        starts = [jnp.asarray(k * batch, dtype=jnp.int32) for k in range(full)]
        XL, YL = (X[full * batch:], Y[full * batch:]) if rem else (None, None)
        # Warm-up: run each compiled program once on throwaway parameters.
        warm, _ = step_c(fresh_params(), X, Y, start0)
        if rem:
            warm, _ = last_c(warm, XL, YL)
        jax.block_until_ready(correct_c(warm, VX, VL))
        del warm

        def run_epoch(params):
            losses = []
            for s in starts:
                params, l = step_c(params, X, Y, s)
                losses.append(l)
            if rem:
                params, l = last_c(params, XL, YL)
                losses.append(l)
            hits = correct_c(params, VX, VL)
            loss = sum(float(l) for l in losses) / len(losses)
            return params, loss, int(hits)
    else:
        def epoch(params, X, Y, VX, VL):
            xs = X[:full * batch].reshape(full, batch, X.shape[1])
            ys = Y[:full * batch].reshape(full, batch, Y.shape[1])
            params, losses = lax.scan(lambda p, xy: step(p, xy[0], xy[1]), params, (xs, ys))
            total = jnp.sum(losses)
            if rem:
                params, l = step(params, X[full * batch:], Y[full * batch:])
                total = total + l
            return params, total / (full + (1 if rem else 0)), correct(params, VX, VL)

        epoch_c = jax.jit(epoch, donate_argnums=0).lower(fresh_params(), X, Y, VX, VL).compile()

        def run_epoch(params):
            params, loss, hits = epoch_c(params, X, Y, VX, VL)
            return params, float(loss), int(hits)
    compile_seconds = time.perf_counter() - t0

    extra = {"jax_version": jax.__version__, "compile_seconds": compile_seconds,
             "xla_flags": os.environ.get("XLA_FLAGS", ""), "blas": common.blas_info()}
    for repeat in range(1, args.repeats + 1):
        params = fresh_params()
        jax.block_until_ready(params)
        for epoch_no in range(1, args.epochs + 1):
            with common.EpochTimer() as timer:
                params, loss, hits = run_epoch(params)
                jax.block_until_ready(params)
            accuracy = 100 * hits / len(val_labels)
            common.emit(args, "jax", args.variant, repeat, epoch_no, timer, loss, accuracy,
                        n, len(val_labels), extra)


if __name__ == "__main__":
    main()
