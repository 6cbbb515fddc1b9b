"""Reference values for glorot-tensor's NumPy-order tests (tests/numpy_order.rs).

Run:  python3 numpy_reference.py   (needs numpy and scipy)
Printed with NumPy 2.4.6 and SciPy 1.17.1 on x86_64 Linux (AMD EPYC, AVX-512).
Every input is built from integer arithmetic and correctly rounded divisions and
products of literals, so Rust rebuilds the same f64 inputs bit for bit.
"""
import struct
import numpy as np
from scipy.special import expit

SCALES = [0.01, 0.1, 1.0, 10.0, 100.0]


def value(k):
    """The k-th test value: varied signs and magnitudes, so summation order matters."""
    return float((k * 7919) % 1013 - 506) / float(1 + k % 13) * SCALES[k % 5]


def prob(k):
    """The k-th value in (0, 1), as a sigmoid output."""
    return float((k * 7919) % 1013) / 1013.0 * 0.998 + 0.001


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def seq(xs):
    s = 0.0
    for x in xs:
        s += x
    return s


print("# np.sum of value(0..n): n, bits(np.sum), bits(left-to-right sum)")
for n in [5, 8, 10, 17, 128, 129, 300, 1000, 1037]:
    a = np.array([value(k) for k in range(n)])
    print(n, bits(np.sum(a)), bits(seq(a)))

print("# np.sum(A, axis=0) and np.mean(A, axis=0), A[i, j] = value(7 i + j), (50, 7)")
A = np.array([[value(7 * i + j) for j in range(7)] for i in range(50)])
print([bits(v) for v in np.sum(A, axis=0)])
print([bits(v) for v in np.mean(A, axis=0)])

print("# notebook loss: out[i, j] = prob(10 i + j), y = one_hot((3 i) % 10); batch, bits(loss)")
for batch in [1, 7, 32, 200]:
    out = np.array([[prob(10 * i + j) for j in range(10)] for i in range(batch)])
    y = np.zeros((batch, 10))
    for i in range(batch):
        y[i, (3 * i) % 10] = 1.0
    l = -y * np.log(out + 1e-8) - (1 - y) * np.log(1 - out + 1e-8)
    m_b_l = np.sum(l, axis=1)
    print(batch, bits(np.mean(m_b_l)))

print("# scipy.special.expit(x) for x = value(k) / 7 (k in 0..40) and extremes")
xs = [value(k) / 7.0 for k in range(40)] + [-745.5, -709.0, -40.0, 37.0, 710.0, 1e300, -1e300]
print([bits(expit(np.float64(x))) for x in xs])
