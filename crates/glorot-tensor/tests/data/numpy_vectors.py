"""Writes numpy_vectors.json: reference draws from NumPy's legacy `np.random.RandomState`.

The Rust port in `src/numpy_rng.rs` is tested against this file bit for bit
(`tests/numpy_rng.rs`). Re-run from this directory with any NumPy >= 1.17:

    python3 numpy_vectors.py > numpy_vectors.json

Every f64 is written twice: `bits` (the IEEE-754 pattern as 16 hex digits, what the
tests compare) and `values` (Python's shortest round-trip repr, for people).
"""

import json
import sys

import numpy as np

R = np.random.RandomState


def f64(a):
    a = np.ascontiguousarray(a, dtype=np.float64).ravel()  # row-major order
    return {
        "bits": ["%016x" % b for b in a.view(np.uint64).tolist()],
        "values": [float(x) for x in a.tolist()],
    }


def state(rs):
    name, key, pos, has_gauss, gauss = rs.get_state(legacy=True)
    assert name == "MT19937"
    return {"key": [int(k) for k in key], "pos": int(pos), "has_gauss": bool(has_gauss),
            "gauss_bits": "%016x" % np.float64(gauss).view(np.uint64)}


def state_summary(rs):
    s = state(rs)
    s["key_head"], s["key_tail"] = s["key"][:4], s["key"][-4:]
    del s["key"]
    return s


def glorot_limit(fan_in, fan_out):  # the notebook's initialize_weights
    return np.sqrt(6.0 / (fan_in + fan_out))


def draw_glorot(rs, units):
    out = []
    for a, b in zip(units[:-1], units[1:]):
        r = glorot_limit(a, b)
        w = rs.uniform(-r, r, size=(a, b))
        out.append({"shape": [a, b], "first": f64(w[0, :3]), "last": f64(w[-1, -3:])})
    return out


def draw_normal(rs, units):
    out = []
    for a, b in zip(units[:-1], units[1:]):
        w = rs.normal(scale=1, size=(a, b))
        out.append({"shape": [a, b], "first": f64(w[0, :3]), "last": f64(w[-1, -3:])})
    return out


v = {"numpy_version": np.__version__, "cases": {}}
c = v["cases"]

for seed in (0, 5, 4294967295):
    c["raw_u32_seed%d" % seed] = {"seed": seed, "u32": [int(x) for x in R(seed)._bit_generator.random_raw(16)]}
    c["state_after_seed%d" % seed] = {"seed": seed, **state_summary(R(seed))}

# 1250 raw outputs cross two regenerations of the 624-word state.
rs = R(5)
c["raw_u32_seed5_1250"] = {"seed": 5, "u32_tail": [int(x) for x in rs._bit_generator.random_raw(1250)[-8:]]}

c["random_sample_seed5"] = {"seed": 5, **f64(R(5).random_sample(8))}
c["random_sample_seed0"] = {"seed": 0, **f64(R(0).random_sample(8))}

r = glorot_limit(784, 500)
c["uniform_glorot_3x4_seed5"] = {"seed": 5, "low": -r, "high": r, "shape": [3, 4],
                                 **f64(R(5).uniform(-r, r, size=(3, 4)))}
c["uniform_2_7_seed0"] = {"seed": 0, "low": 2.0, "high": 7.0, "shape": [5],
                          **f64(R(0).uniform(2.0, 7.0, size=5))}
c["normal_3x5_seed5"] = {"seed": 5, "loc": 0.0, "scale": 1.0, "shape": [3, 5],
                         **f64(R(5).normal(scale=1, size=(3, 5)))}
c["normal_loc_scale_seed0"] = {"seed": 0, "loc": -1.5, "scale": 0.25, "shape": [7],
                               **f64(R(0).normal(-1.5, 0.25, size=7))}

# The gauss cache persists across calls and is untouched by uniform draws.
rs = R(5)
seq = [("normal", rs.normal(size=3)), ("uniform", rs.uniform(-1.0, 1.0, size=3)),
       ("normal", rs.normal(size=1)), ("random_sample", rs.random_sample(2)),
       ("normal", rs.normal(size=3))]  # odd total: ends with a cached value
c["interleaved_seed5"] = {"seed": 5, "steps": [{"kind": k, "n": len(a), **f64(a)} for k, a in seq],
                          "state_after": state(rs)}

# randint over the full uint64 range returns next_uint64 unchanged: two outputs, first one high.
c["u64_seed5"] = {"seed": 5, "u64": [int(x) for x in R(5).randint(0, 2**64, size=4, dtype=np.uint64)]}
c["bytes_seed5"] = {"seed": 5, "bytes_hex": R(5).bytes(10).hex()}

# The notebook: np.random.seed(5), Part 1 (glorot, normal, zero: no draws), then the grid.
units = [784, 500, 500, 10]
rs = R(5)
glorot = draw_glorot(rs, units)
after_glorot = state_summary(rs)
normal = draw_normal(rs, units)
after_part1 = state_summary(rs)
probe = R()
probe.set_state(rs.get_state())
c["notebook_part1_seed5"] = {
    "seed": 5, "units": units, "glorot": glorot, "state_after_glorot": after_glorot,
    "normal": normal, "state_after_part1": after_part1,
    "next_random_sample": f64(probe.random_sample(1)),
}

grid_first = None
for h in (450, 500, 550, 600, 650):
    for _ in range(27):  # 3 activations x 3 learning rates x 3 batch sizes
        net = draw_glorot(rs, [784, h, h, 10])
        if grid_first is None:
            grid_first = net
after_grid = state_summary(rs)
probe.set_state(rs.get_state())
c["notebook_grid_seed5"] = {
    "seed": 5, "hidden": [450, 500, 550, 600, 650], "trials_per_hidden": 27,
    "first_trial": grid_first, "state_after_grid": after_grid,
    "next_random_sample": f64(probe.random_sample(1)),
}

def render(data, indent=""):
    """Sorted keys one per line; a list of scalars stays on one line (short, readable diffs)."""
    inner = indent + " "
    if isinstance(data, dict):
        items = [inner + json.dumps(k) + ": " + render(data[k], inner) for k in sorted(data)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(data, list) and any(isinstance(x, (dict, list)) for x in data):
        return "[\n" + ",\n".join(inner + render(x, inner) for x in data) + "\n" + indent + "]"
    return json.dumps(data, allow_nan=False)


sys.stdout.write(render(v) + "\n")
