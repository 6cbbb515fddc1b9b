//! A random generator compatible with NumPy's legacy `np.random` (work in progress: see issue 9).
