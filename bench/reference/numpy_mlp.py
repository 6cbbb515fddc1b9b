#!/usr/bin/env python3
"""The notebook's network in NumPy: exactly its math, timed one epoch at a time.

This is `NN.forward`, `NN.loss`, `NN.backward`, `NN.update` and `NN.test` of
`/work/shared/seed/notebook.txt` (cell In [3]), line for line, without SciPy
and scikit-learn:

* `scipy.special.expit(z)` is `1 / (1 + exp(-z))`: SciPy computes exactly
  that with the C library's exp (`--check-expit` verifies it bit for bit, in
  f64 and f32, when SciPy is installed). NumPy's vectorised exp, used here,
  differs from the C library's by at most a few ulp on some inputs.
* `sklearn.utils.shuffle(training_inputs, training_results, random_state=0)`
  in the notebook's `train` returns shuffled copies that the notebook throws
  away: its data order is the file order in every epoch. So is ours.

`--dtype f64` runs as the notebook does (float64 parameters; the notebook's
float32 pixels are exact in float64, so holding them as float64 changes no
number). `--dtype f32` casts everything (data, targets, parameters after the
float64 Glorot draw) to float32; NumPy 2 keeps Python-float constants such as
`1e-8` and the learning rate from promoting float32 arrays.

One epoch = the notebook's `train` loop body for one epoch (training over the
50,000 training samples in minibatches, the last one partial) plus `test` (one
forward pass over the 10,000 validation samples and the argmax accuracy).
Data loading, initialisation and a warm-up on a throwaway network (one step
at the batch size, one at the partial batch's size, one validation pass) are
not timed.
"""

import sys

import common

ACTIVATIONS = ("tanh", "sigmoid", "ReLU")


def build(np, activation, dtype):
    """The notebook's activation functions and their derivatives (in terms of
    the activation's output, as the notebook writes them)."""

    def expit(z):
        return 1 / (1 + np.exp(-z))

    def sigmoid_prime(z):
        return z * (1 - z)

    def relu(z):
        return np.maximum(z, 0)

    def relu_prime(x):
        # The notebook's np.where(x > 0, 1.0, 0.0) is float64; cast so that the
        # f32 run stays f32 (the f64 run is unchanged).
        return np.where(x > 0, 1.0, 0.0).astype(dtype, copy=False)

    def tanh(x):
        return np.tanh(x)

    def tanh_prime(x):
        return 1.0 - x ** 2

    act, act_p = {
        "ReLU": (relu, relu_prime),
        "sigmoid": (expit, sigmoid_prime),
        "tanh": (tanh, tanh_prime),
    }[activation]
    return expit, act, act_p


class NN:
    """The notebook's `NN`, restricted to what training and `test` use."""

    def __init__(self, np, params, activation, lr, dtype):
        self.np = np
        w0, b0, w1, b1, w2, b2 = [p.astype(dtype) for p in params]
        self.parameters = {"w0": w0, "b0": b0, "w1": w1, "b1": b1, "w2": w2, "b2": b2}
        self.gradients = {}
        self.expit, self.activation_fn, self.activation_p = build(np, activation, dtype)
        self.lr = lr

    def forward(self, x):
        np = self.np
        self.x = x
        self.h1 = self.activation_fn(np.dot(x, self.parameters["w0"]) + self.parameters["b0"])
        self.h2 = self.activation_fn(np.dot(self.h1, self.parameters["w1"]) + self.parameters["b1"])
        self.out = self.expit(np.dot(self.h2, self.parameters["w2"]) + self.parameters["b2"])
        return self.out

    def loss(self, y):
        np = self.np
        self.y = y
        l = -y * np.log(self.out + 1e-8) - (1 - y) * np.log(1 - self.out + 1e-8)
        m_b_l = np.sum(l, axis=1)
        self.lossy = np.mean(m_b_l)
        return self.lossy

    def backward(self):
        np = self.np
        dout = (-self.y / (self.out + 1e-8)) + (1 - self.y) * (1 / (1 - self.out + 1e-8))
        del2 = self.out * (1 - self.out) * dout
        doutdw2 = np.dot(self.h2.T, del2) / len(self.x)
        doutdb2 = np.mean(del2, axis=0)

        douth2 = np.dot(del2, self.parameters["w2"].T)
        del1 = self.activation_p(self.h2) * douth2
        doutdw1 = np.dot(self.h1.T, del1) / len(self.x)
        doutdb1 = np.mean(del1, axis=0)

        douth1 = np.dot(del1, self.parameters["w1"].T)
        del0 = self.activation_p(self.h1) * douth1
        doutdw0 = np.dot(self.x.T, del0) / len(self.x)
        doutdb0 = np.mean(del0, axis=0)

        self.gradients["w2"] = doutdw2
        self.gradients["b2"] = doutdb2
        self.gradients["w1"] = doutdw1
        self.gradients["b1"] = doutdb1
        self.gradients["w0"] = doutdw0
        self.gradients["b0"] = doutdb0

    def update(self):
        for ind in ["w0", "w1", "w2", "b0", "b1", "b2"]:
            self.parameters[ind] -= self.lr * self.gradients[ind]

    def train_epoch(self, training_inputs, training_results, batch_size):
        """The body of the notebook's `train` for one epoch; returns the epoch loss."""
        mini_batches = [training_inputs[k:k + batch_size]
                        for k in range(0, training_inputs.shape[0], batch_size)]
        mini_batches_results = [training_results[k:k + batch_size]
                                for k in range(0, training_results.shape[0], batch_size)]
        current_loss = 0
        for mini_batch_index in range(len(mini_batches)):
            self.forward(mini_batches[mini_batch_index])
            current_loss += self.loss(mini_batches_results[mini_batch_index])
            self.backward()
            self.update()
        current_loss /= len(mini_batches)
        return current_loss

    def test(self, validation_inputs, validation_targets):
        """The notebook's `test`: accuracy in percent (its `/100` is `100 * correct / 10,000`)."""
        np = self.np
        results = self.forward(validation_inputs)
        labels = np.argmax(results, axis=1)
        return 100 * np.sum(labels == validation_targets) / len(validation_targets)


def check_expit(np):
    """Check that SciPy's expit is `1 / (1 + exp(-z))` computed with the C
    library's exp (bit for bit, f64 and f32), and how far the same formula
    with NumPy's own (SIMD) exp lands from it."""
    try:
        from scipy.special import expit
    except ImportError:
        print("check-expit: SciPy is not installed; nothing to compare with", file=sys.stderr)
        return True
    import ctypes
    import ctypes.util
    import math
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype = ctypes.c_float
    libm.expf.argtypes = [ctypes.c_float]
    rng = np.random.default_rng(0)
    z64 = np.concatenate([rng.standard_normal(200_000) * 8, np.linspace(-700, 700, 20_001), [0.0]])
    ok = True
    for dtype in (np.float64, np.float32):
        z = z64.astype(dtype)
        theirs = expit(z)
        if dtype == np.float64:
            libc = np.array([1 / (1 + math.exp(-v)) for v in z.tolist()], dtype=dtype)
        else:
            one = np.float32(1)
            libc = np.array([one / (one + np.float32(libm.expf(-v))) for v in z.tolist()], dtype=dtype)
        with np.errstate(over="ignore"):
            ours = 1 / (1 + np.exp(-z))
        formula = np.array_equal(libc, theirs)
        ulps = np.abs(ours.view(np.int64 if dtype == np.float64 else np.int32).astype(np.int64)
                      - theirs.view(np.int64 if dtype == np.float64 else np.int32).astype(np.int64))
        print(f"check-expit {np.dtype(dtype).name}: SciPy expit == 1/(1+libm exp(-z)) bit for bit: "
              f"{formula}; with NumPy's exp: {np.mean(ulps == 0):.4%} identical, max {ulps.max()} ulp",
              file=sys.stderr)
        ok &= bool(formula)
    return ok


def main():
    if "--check-expit" in sys.argv:
        import numpy as np
        sys.exit(0 if check_expit(np) else 1)
    args = common.parse_args(__doc__.splitlines()[0])
    import numpy as np

    dtype = {"f32": np.float32, "f64": np.float64}[args.dtype]
    train_x, train_y, val_x, val_labels = common.load_mnist(np, args.mnist_dir, args.limit, dtype)
    units = [784, args.hidden, args.hidden, 10]
    extra = {"numpy_version": np.__version__, "blas": common.blas_info()}
    # Warm-up on a throwaway network (as for PyTorch and JAX): one step at the
    # batch size, one at the partial batch's size, one validation pass.
    warm = NN(np, common.glorot_init(np, units, args.seed), args.activation, args.lr, dtype)
    n, batch = len(train_x), args.batch
    for rows in sorted({batch, n % batch} - {0}):
        warm.forward(train_x[:rows])
        warm.loss(train_y[:rows])
        warm.backward()
        warm.update()
    warm.test(val_x, val_labels)
    del warm
    for repeat in range(1, args.repeats + 1):
        net = NN(np, common.glorot_init(np, units, args.seed), args.activation, args.lr, dtype)
        for epoch in range(1, args.epochs + 1):
            with common.EpochTimer() as timer:
                loss = net.train_epoch(train_x, train_y, args.batch)
                accuracy = net.test(val_x, val_labels)
            common.emit(args, "numpy", "notebook", repeat, epoch, timer, loss, accuracy,
                        len(train_x), len(val_x), extra)


if __name__ == "__main__":
    main()
