"""Shared plumbing for the reference implementations in this folder.

Each reference (`numpy_mlp.py`, `torch_mlp.py`, `jax_mlp.py`) is a standalone
script run by `cargo xtask bench`. They share the command line, the thread
limits, the MNIST reader and the output protocol defined here:

* one JSON object per measured epoch, on one line of standard output;
* human-readable notes on standard error only.

Thread limits must be in place before NumPy, PyTorch or JAX is imported, so every
script calls `parse_args()` (which applies them) before importing its library.
"""

import argparse
import gzip
import json
import os
import resource
import sys
import time

# The notebook's first glorot run (`/work/shared/seed/notebook.txt`, cell In [4]):
# 784-500-500-10, tanh, lr 0.01, batch 32, np.random.seed(5), f64, epoch 1.
NOTEBOOK_EPOCH1_LOSS = 1.1164179979846724
NOTEBOOK_EPOCH1_VAL_ACCURACY = 90.75

TRAIN_SAMPLES = 50_000
VALIDATION_SAMPLES = 10_000


def parse_args(description, variants=None):
    """Parse the common command line and apply the thread limits.

    `variants` is a list of implementation variants (for example
    `["by-hand", "autograd"]`); when given, a `--variant` option selects one.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--mnist-dir", default=os.environ.get("GLOROT_MNIST_DIR"),
                   help="folder with the four gzip IDX files (default: $GLOROT_MNIST_DIR)")
    p.add_argument("--dtype", choices=["f32", "f64"], default="f64")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=500, help="units in each of the two hidden layers")
    p.add_argument("--activation", choices=["tanh", "sigmoid", "ReLU"], default="tanh")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=5, help="np.random.seed for the Glorot init (notebook: 5)")
    p.add_argument("--epochs", type=int, default=1, help="consecutive epochs per repeat")
    p.add_argument("--repeats", type=int, default=1,
                   help="independent runs, each from the same fresh initialisation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and the first N validation samples (smoke runs)")
    if variants:
        p.add_argument("--variant", choices=variants, default=variants[0])
    args = p.parse_args()
    if args.mnist_dir is None:
        p.error("no MNIST folder: pass --mnist-dir or set GLOROT_MNIST_DIR")
    for name in ("batch", "hidden", "epochs", "repeats", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    apply_thread_limits(args.threads)
    return args


def apply_thread_limits(threads):
    """Limit every thread pool the three libraries may use to `threads`.

    * OpenBLAS (NumPy's wheel), MKL and OpenMP (PyTorch's wheel) read the
      environment variables at load time.
    * XLA's CPU client ignores them, and its `XLA_FLAGS` thread options do not
      bound the thread pool in current jaxlib (measured: see bench/README.md).
      It sizes its pools from the CPU affinity mask, so the process is pinned
      to `threads` CPUs. The pinning is applied to every implementation alike.
    """
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, set(allowed[:threads]))


def cpu_affinity():
    return sorted(os.sched_getaffinity(0))


def _read_idx(path, expected_magic):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.exit(f"error: cannot read {path}: {e}")
    if len(data) < 8:
        sys.exit(f"error: {path}: truncated IDX header")
    magic = int.from_bytes(data[0:4], "big")
    if magic != expected_magic:
        sys.exit(f"error: {path}: IDX magic {magic:#010x}, expected {expected_magic:#010x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = 1
    for d in dims:
        count *= d
    if len(data) - offset != count:
        sys.exit(f"error: {path}: {len(data) - offset} payload bytes, header says {count}")
    return dims, data[offset:]


def load_mnist(np, mnist_dir, limit=None, dtype=None):
    """Training (first 50,000) and validation (50,000..60,000) split of MNIST's
    training files, as the notebook's `mnist.pkl.gz` holds them.

    Returns `(train_x, train_y_onehot, val_x, val_labels)` with pixels as
    `byte / 256` (exact in float32 too) and one-hot targets, both in `dtype`
    (default float64); labels are int64.
    """
    dtype = np.float64 if dtype is None else dtype
    img_dims, img = _read_idx(os.path.join(mnist_dir, "train-images-idx3-ubyte.gz"), 0x00000803)
    lab_dims, lab = _read_idx(os.path.join(mnist_dir, "train-labels-idx1-ubyte.gz"), 0x00000801)
    n = img_dims[0]
    if n < TRAIN_SAMPLES + VALIDATION_SAMPLES or lab_dims[0] != n or img_dims[1:] != [28, 28]:
        sys.exit(f"error: {mnist_dir}: expected 60,000 28x28 training images and labels, "
                 f"found images {img_dims}, labels {lab_dims}")
    pixels = np.frombuffer(img, dtype=np.uint8).reshape(n, 784)
    labels = np.frombuffer(lab, dtype=np.uint8).astype(np.int64)
    n_train = TRAIN_SAMPLES if limit is None else min(limit, TRAIN_SAMPLES)
    n_val = VALIDATION_SAMPLES if limit is None else min(limit, VALIDATION_SAMPLES)
    train_x = pixels[:n_train].astype(dtype)
    train_x /= 256.0
    train_y = np.zeros((n_train, 10), dtype=dtype)
    train_y[np.arange(n_train), labels[:n_train]] = 1.0
    val_x = pixels[TRAIN_SAMPLES:TRAIN_SAMPLES + n_val].astype(dtype)
    val_x /= 256.0
    val_labels = labels[TRAIN_SAMPLES:TRAIN_SAMPLES + n_val].copy()
    return train_x, train_y, val_x, val_labels


def glorot_init(np, units, seed):
    """The notebook's `initialize_weights` with `np.random.seed(seed)` just before:
    for each layer, zero bias, then `uniform(-s, s, (fan_in, fan_out))` with
    `s = sqrt(6 / (fan_in + fan_out))`, layers in order. Returns float64 arrays
    `[w0, b0, w1, b1, w2, b2]`.
    """
    np.random.seed(seed)
    params = []
    for i in range(len(units) - 1):
        b = np.zeros((units[i + 1]))
        s = np.sqrt(6. / (units[i] + units[i + 1]))
        w = np.random.uniform(-s, s, size=(units[i], units[i + 1]))
        params += [w, b]
    return params


def blas_info():
    """What threadpoolctl sees (BLAS library, version, kernel, threads), or None."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [{k: v for k, v in d.items() if k in
             ("user_api", "internal_api", "version", "architecture", "num_threads",
              "threading_layer", "prefix")}
            for d in threadpoolctl.threadpool_info()]


def peak_rss_kib():
    """Peak resident set size of this process so far, in KiB (Linux ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class EpochTimer:
    """Wall-clock and CPU time of one epoch (CPU time shows how many threads worked)."""

    def __enter__(self):
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = r.ru_utime + r.ru_stime
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_seconds = r.ru_utime + r.ru_stime - self.cpu0
        return False


def is_notebook_config(args, n_train):
    return (args.dtype == "f64" and args.batch == 32 and args.hidden == 500
            and args.activation == "tanh" and args.lr == 0.01 and args.seed == 5
            and n_train == TRAIN_SAMPLES and args.limit is None)


def emit(args, impl, variant, repeat, epoch, timer, loss, val_accuracy, n_train, n_val,
         extra=None):
    """Print one epoch's JSON line (stdout) and, for the notebook's own
    configuration, the comparison with the notebook's printed numbers (stderr)."""
    record = {
        "impl": impl,
        "variant": variant,
        "dtype": args.dtype,
        "batch": args.batch,
        "hidden": args.hidden,
        "activation": args.activation,
        "lr": args.lr,
        "threads": args.threads,
        "repeat": repeat,
        "epoch": epoch,
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "loss": float(loss),
        "val_accuracy": float(val_accuracy),
        "train_samples": n_train,
        "val_samples": n_val,
        "peak_rss_kib": peak_rss_kib(),
        "cpu_affinity": cpu_affinity(),
    }
    if extra:
        record.update(extra)
    if epoch == 1 and is_notebook_config(args, n_train):
        record["notebook_epoch1"] = {
            "loss": NOTEBOOK_EPOCH1_LOSS,
            "val_accuracy": NOTEBOOK_EPOCH1_VAL_ACCURACY,
            "loss_abs_diff": abs(float(loss) - NOTEBOOK_EPOCH1_LOSS),
        }
        print(f"[{impl}/{variant} {args.dtype}] epoch 1: loss {float(loss)!r} "
              f"(notebook {NOTEBOOK_EPOCH1_LOSS!r}, |diff| "
              f"{abs(float(loss) - NOTEBOOK_EPOCH1_LOSS):.3e}), validation accuracy "
              f"{float(val_accuracy)!r} (notebook {NOTEBOOK_EPOCH1_VAL_ACCURACY!r})",
              file=sys.stderr)
    print(json.dumps(record), flush=True)
