//! A random generator compatible with NumPy's legacy `np.random` (`RandomState`).
//!
//! The notebook this project reproduces seeds NumPy's global generator with
//! `np.random.seed(5)` and draws every initial weight from it. [`RandomState`]
//! reproduces that generator bit for bit, so a Rust run can start from the very same
//! weights:
//!
//! - MT19937 seeded as `np.random.seed(int)` seeds it (Knuth's `init_genrand`);
//! - [`RandomState::random_sample`]: 53-bit doubles built from two 32-bit outputs;
//! - [`RandomState::uniform`]: `low + (high - low) * random_sample()`, NumPy's
//!   `random_uniform` with `range = high - low` computed first;
//! - [`RandomState::normal`]: `loc + scale * gauss`, where `gauss` comes from NumPy's
//!   legacy polar Box-Muller (`legacy_gauss`): each accepted pair yields two values, the
//!   second one cached in the generator for the next normal draw.
//!
//! Array fills ([`RandomState::fill_uniform`], [`RandomState::fill_normal`]) visit elements
//! in row-major (C) order, as NumPy fills a fresh array of a given `size`, whatever the
//! memory layout of the view. Draws are always computed in `f64`, as NumPy computes them,
//! then converted to the element type.
//!
//! # The stream view of legacy NumPy
//!
//! Uniform draws consume two 32-bit outputs each and never touch the gauss cache; normal
//! draws consume the cache first and persist it across calls. So consecutive calls of
//! one distribution form one stream: `uniform(size=(784, 500))` followed by
//! `uniform(size=(500, 500))` consumes exactly what `uniform(size=642000)` does, and two
//! normal calls of 392000 and 250000 values consume what one call of 642000 does. That
//! is what lets [`RandomState::skip_uniform`] and [`RandomState::skip_normal`] advance
//! past whole networks (the notebook's earlier cells) in one call without materializing
//! their weights.
//!
//! # Matching the notebook's `initialize_weights`
//!
//! For each layer in order (biases are zeros and draw nothing):
//!
//! - Glorot: `uniform(-r, r, size=(fan_in, fan_out))` with `r = sqrt(6 / (fan_in + fan_out))`:
//!   [`glorot_limit`] then [`RandomState::fill_uniform`] with `(-r, r)`;
//! - normal: `normal(scale=1, size=(fan_in, fan_out))`: [`RandomState::fill_normal`] with
//!   `(0.0, 1.0)`;
//! - zero: draws nothing.
//!
//! `RandomState` also implements [`rand::RngCore`] so it can go wherever `&mut impl Rng`
//! is taken. Beware: `rand`'s distributions (`Uniform`, `StandardNormal`, `random::<f64>()`)
//! use their own formulas on top of the raw 32/64-bit outputs and do **not** reproduce
//! NumPy's numbers. Code that must match the notebook calls the inherent methods above.
//!
//! ```
//! use glorot_tensor::numpy_rng::{glorot_limit, RandomState};
//! use ndarray::Array2;
//!
//! // np.random.seed(5); np.random.random_sample() == 0.22199317108973948
//! let mut rng = RandomState::new(5);
//! assert_eq!(rng.random_sample(), 0.22199317108973948);
//!
//! // The notebook's first Glorot layer: uniform(-r, r, size=(784, 500)).
//! let mut rng = RandomState::new(5);
//! let r = glorot_limit(784, 500);
//! let mut w0 = Array2::<f64>::zeros((784, 500));
//! rng.fill_uniform(w0.view_mut(), -r, r);
//! assert!(w0.iter().all(|w| w.abs() <= r));
//! ```

use ndarray::{ArrayViewMut, Dimension};
use serde::{Deserialize, Serialize};

/// Number of 32-bit words in the MT19937 state (NumPy's `RK_STATE_LEN`).
pub const MT_STATE_LEN: usize = 624;

const MT_M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// NumPy's legacy random generator: MT19937 plus the cached second Box-Muller value.
///
/// Equivalent to `np.random.RandomState(seed)` (and to the global `np.random` after
/// `np.random.seed(seed)`). Create it with [`RandomState::new`]; draw with
/// [`random_sample`](RandomState::random_sample), [`uniform`](RandomState::uniform),
/// [`normal`](RandomState::normal) and the array fills; checkpoint it with
/// [`state`](RandomState::state) / [`from_state`](RandomState::from_state).
#[derive(Clone, PartialEq)]
pub struct RandomState {
    /// The MT19937 state words (NumPy's `key`).
    key: [u32; MT_STATE_LEN],
    /// Index of the next word to temper; `MT_STATE_LEN` means "regenerate first".
    pos: usize,
    /// Whether `gauss` holds the second value of the last Box-Muller pair.
    has_gauss: bool,
    /// The cached value (0.0 when `has_gauss` is false, as NumPy keeps it).
    gauss: f64,
}

impl std::fmt::Debug for RandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The 624 key words are noise in a debug print; `state()` exposes them.
        f.debug_struct("RandomState")
            .field("pos", &self.pos)
            .field("key[0..4]", &&self.key[..4])
            .field("has_gauss", &self.has_gauss)
            .field("gauss", &self.gauss)
            .finish_non_exhaustive()
    }
}

/// A snapshot of a [`RandomState`], with the meaning of NumPy's
/// `np.random.get_state()` tuple `('MT19937', key, pos, has_gauss, cached_gaussian)`.
///
/// Serializable for checkpoints; [`RandomState::from_state`] checks it back in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MtState {
    /// The 624 state words (`get_state()[1]`).
    pub key: Vec<u32>,
    /// Position of the next word to use, `0..=624` (`get_state()[2]`).
    pub pos: usize,
    /// Whether a Box-Muller value is cached (`get_state()[3]`, 0 or 1 in NumPy).
    pub has_gauss: bool,
    /// The cached value, `0.0` when none (`get_state()[4]`).
    pub gauss: f64,
}

/// Why an [`MtState`] cannot become a [`RandomState`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// The key does not hold exactly 624 words.
    #[error("MT19937 state key has {found} words, expected {MT_STATE_LEN}")]
    KeyLength {
        /// The number of words found.
        found: usize,
    },
    /// The position is past the end of the key.
    #[error("MT19937 state position {pos} is out of range 0..={MT_STATE_LEN}")]
    Position {
        /// The position found.
        pos: usize,
    },
}

/// The notebook's Glorot limit `r = sqrt(6 / (fan_in + fan_out))`, computed as NumPy
/// computes `np.sqrt(6./(fan_in + fan_out))`: the integer sum, one `f64` division, one
/// correctly rounded square root.
///
/// ```
/// // np.sqrt(6./(784 + 500))
/// assert_eq!(glorot_tensor::numpy_rng::glorot_limit(784, 500), 0.06835859270246632);
/// ```
pub fn glorot_limit(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out) as f64).sqrt()
}

#[inline]
fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^= y >> 18;
    y
}

#[inline]
fn twist(a: u32, b: u32, m: u32) -> u32 {
    let y = (a & UPPER_MASK) | (b & LOWER_MASK);
    m ^ (y >> 1) ^ ((y & 1).wrapping_neg() & MATRIX_A)
}

/// The 53-bit double of NumPy's `mt19937_next_double` from two consecutive outputs.
#[inline]
fn double_from(a: u32, b: u32) -> f64 {
    let (a, b) = (a >> 5, b >> 6);
    (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
}

impl RandomState {
    /// A generator seeded as `np.random.seed(seed)` / `np.random.RandomState(seed)` seed it.
    ///
    /// NumPy accepts integer seeds in `0..2**32`, which is exactly `u32`.
    pub fn new(seed: u32) -> Self {
        let mut rng = Self {
            key: [0; MT_STATE_LEN],
            pos: MT_STATE_LEN,
            has_gauss: false,
            gauss: 0.0,
        };
        rng.seed(seed);
        rng
    }

    /// Re-seeds in place, as `np.random.seed(seed)`: Knuth's `init_genrand` fills the key,
    /// the position is set so the next draw regenerates, and the gauss cache is cleared.
    pub fn seed(&mut self, seed: u32) {
        let mut s = seed;
        for (i, word) in self.key.iter_mut().enumerate() {
            *word = s;
            // i + 1 < 625 fits u32.
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(i as u32 + 1);
        }
        self.pos = MT_STATE_LEN;
        self.has_gauss = false;
        self.gauss = 0.0;
    }

    /// Regenerates the 624 key words (NumPy's `mt19937_gen`) and rewinds the position.
    fn generate(&mut self) {
        let k = &mut self.key;
        for i in 0..MT_STATE_LEN - MT_M {
            k[i] = twist(k[i], k[i + 1], k[i + MT_M]);
        }
        for i in MT_STATE_LEN - MT_M..MT_STATE_LEN - 1 {
            k[i] = twist(k[i], k[i + 1], k[i + MT_M - MT_STATE_LEN]);
        }
        k[MT_STATE_LEN - 1] = twist(k[MT_STATE_LEN - 1], k[0], k[MT_M - 1]);
        self.pos = 0;
    }

    /// The next raw MT19937 output: `RandomState(s)._bit_generator.random_raw()`.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == MT_STATE_LEN {
            self.generate();
        }
        let y = self.key[self.pos];
        self.pos += 1;
        temper(y)
    }

    /// Two raw outputs, the first in the high half, as NumPy's `mt19937_next64`
    /// (what `randint(0, 2**64, dtype=np.uint64)` returns).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32();
        let lo = self.next_u32();
        (u64::from(hi) << 32) | u64::from(lo)
    }

    /// A double in `[0, 1)` as `np.random.random_sample()`:
    /// `((a >> 5) * 2**26 + (b >> 6)) / 2**53` from two consecutive outputs `a`, `b`.
    #[inline]
    pub fn random_sample(&mut self) -> f64 {
        let a = self.next_u32();
        let b = self.next_u32();
        double_from(a, b)
    }

    /// One draw of `np.random.uniform(low, high)`: `low + (high - low) * random_sample()`.
    ///
    /// NumPy refuses a non-finite `high - low` with `OverflowError`; this function does not
    /// check and returns the IEEE result. The gauss cache is left alone.
    #[inline]
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let range = high - low;
        low + range * self.random_sample()
    }

    /// One standard normal from NumPy's legacy polar Box-Muller (`legacy_gauss`).
    ///
    /// Returns the cached value if there is one (and clears the cache); otherwise draws
    /// pairs `x1, x2` uniform in `(-1, 1)` until `0 < r2 = x1² + x2² < 1`, returns
    /// `f * x2` and caches `f * x1`, with `f = sqrt(-2 ln(r2) / r2)`.
    pub fn standard_normal(&mut self) -> f64 {
        if self.has_gauss {
            let cached = self.gauss;
            self.has_gauss = false;
            self.gauss = 0.0;
            return cached;
        }
        let (x1, x2, r2) = self.polar_pair();
        let f = (-2.0 * r2.ln() / r2).sqrt();
        self.gauss = f * x1;
        self.has_gauss = true;
        f * x2
    }

    /// Draws pairs until one falls strictly inside the unit circle (and off the origin).
    #[inline]
    fn polar_pair(&mut self) -> (f64, f64, f64) {
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                return (x1, x2, r2);
            }
        }
    }

    /// One draw of `np.random.normal(loc, scale)`: `loc + scale * standard_normal()`.
    ///
    /// NumPy refuses a negative `scale` with `ValueError`; this function does not check
    /// and computes the same formula anyway.
    #[inline]
    pub fn normal(&mut self, loc: f64, scale: f64) -> f64 {
        loc + scale * self.standard_normal()
    }

    /// Fills `out` as `np.random.uniform(low, high, size=out.shape)` would, element by
    /// element in row-major order. Each draw is an `f64` converted to `F` at the end.
    ///
    /// # Panics
    ///
    /// If `F` cannot represent an `f64` draw (never for `f32` and `f64`).
    #[track_caller]
    pub fn fill_uniform<F, D>(&mut self, mut out: ArrayViewMut<'_, F, D>, low: f64, high: f64)
    where
        F: num_traits::Float,
        D: Dimension,
    {
        // `iter_mut` walks the logical (row-major) order whatever the strides.
        for x in out.iter_mut() {
            *x = from_draw(self.uniform(low, high));
        }
    }

    /// [`fill_uniform`](Self::fill_uniform) for a flat buffer, in slice order.
    ///
    /// # Panics
    ///
    /// If `F` cannot represent an `f64` draw (never for `f32` and `f64`).
    #[track_caller]
    pub fn fill_uniform_slice<F: num_traits::Float>(&mut self, out: &mut [F], low: f64, high: f64) {
        for x in out {
            *x = from_draw(self.uniform(low, high));
        }
    }

    /// Fills `out` as `np.random.normal(loc, scale, size=out.shape)` would, element by
    /// element in row-major order, continuing from (and possibly leaving) a cached value.
    ///
    /// # Panics
    ///
    /// If `F` cannot represent an `f64` draw (never for `f32` and `f64`).
    #[track_caller]
    pub fn fill_normal<F, D>(&mut self, mut out: ArrayViewMut<'_, F, D>, loc: f64, scale: f64)
    where
        F: num_traits::Float,
        D: Dimension,
    {
        for x in out.iter_mut() {
            *x = from_draw(self.normal(loc, scale));
        }
    }

    /// [`fill_normal`](Self::fill_normal) for a flat buffer, in slice order.
    ///
    /// # Panics
    ///
    /// If `F` cannot represent an `f64` draw (never for `f32` and `f64`).
    #[track_caller]
    pub fn fill_normal_slice<F: num_traits::Float>(&mut self, out: &mut [F], loc: f64, scale: f64) {
        for x in out {
            *x = from_draw(self.normal(loc, scale));
        }
    }

    /// Advances past `n` raw 32-bit outputs without tempering them.
    ///
    /// Whole 624-word blocks are regenerated and skipped at once, so this costs about a
    /// third of drawing them.
    pub fn skip_u32(&mut self, n: usize) {
        // Counted in u64 so no platform's usize can overflow the arithmetic below.
        let n = n as u64;
        let available = (MT_STATE_LEN - self.pos) as u64;
        if n <= available {
            // n <= 624 here, the cast is exact.
            self.pos += n as usize;
            return;
        }
        let mut remaining = n - available;
        self.pos = MT_STATE_LEN;
        let block = MT_STATE_LEN as u64;
        while remaining > block {
            self.generate();
            remaining -= block;
        }
        // 1 <= remaining <= 624: the next block is needed, partly or fully.
        self.generate();
        self.pos = remaining as usize;
    }

    /// Advances past `n` uniform draws (`random_sample`, `uniform`, their fills):
    /// `2n` raw outputs. The gauss cache is untouched, as by the draws themselves.
    pub fn skip_uniform(&mut self, n: usize) {
        // 2n overflows only past 2**63 draws; split to stay exact anyway.
        self.skip_u32(n);
        self.skip_u32(n);
    }

    /// Advances past `n` normal draws (`standard_normal`, `normal`, `fill_normal`),
    /// leaving the generator, cache included, exactly as drawing them would.
    ///
    /// The polar method rejects pairs, so the raw stream is still read, but the logarithm
    /// and square root are computed only for a pair whose second value stays cached.
    pub fn skip_normal(&mut self, n: usize) {
        let mut n = n;
        if n == 0 {
            return;
        }
        if self.has_gauss {
            self.has_gauss = false;
            self.gauss = 0.0;
            n -= 1;
        }
        // Each accepted pair serves two draws; a last odd draw leaves its partner cached.
        for _ in 0..n / 2 {
            self.polar_pair();
        }
        if n % 2 == 1 {
            self.standard_normal();
        }
    }

    /// A snapshot of the generator, as `np.random.get_state()`.
    pub fn state(&self) -> MtState {
        MtState {
            key: self.key.to_vec(),
            pos: self.pos,
            has_gauss: self.has_gauss,
            gauss: self.gauss,
        }
    }

    /// A generator continuing from a snapshot, as `np.random.set_state(state)`.
    ///
    /// The snapshot's `gauss` is kept as given, like NumPy does, even when `has_gauss`
    /// is false (it is then never read).
    ///
    /// # Errors
    ///
    /// [`StateError`] if the key does not hold 624 words or `pos > 624`.
    pub fn from_state(state: &MtState) -> Result<Self, StateError> {
        let key: [u32; MT_STATE_LEN] =
            state
                .key
                .as_slice()
                .try_into()
                .map_err(|_| StateError::KeyLength {
                    found: state.key.len(),
                })?;
        if state.pos > MT_STATE_LEN {
            return Err(StateError::Position { pos: state.pos });
        }
        Ok(Self {
            key,
            pos: state.pos,
            has_gauss: state.has_gauss,
            gauss: state.gauss,
        })
    }

    /// Replaces this generator's state by a snapshot, as `np.random.set_state(state)`.
    ///
    /// # Errors
    ///
    /// As [`from_state`](Self::from_state); on error `self` is unchanged.
    pub fn set_state(&mut self, state: &MtState) -> Result<(), StateError> {
        *self = Self::from_state(state)?;
        Ok(())
    }
}

/// Converts an `f64` draw to the element type.
#[track_caller]
#[inline]
fn from_draw<F: num_traits::Float>(x: f64) -> F {
    match F::from(x) {
        Some(v) => v,
        None => panic!("the element type cannot represent the f64 draw {x}"),
    }
}

/// The raw MT19937 stream for code that takes `&mut impl Rng`.
///
/// `next_u32` is one raw output, `next_u64` two (first one high, as NumPy's
/// `next_uint64`), and `fill_bytes` writes the little-endian bytes of successive
/// outputs, dropping the unused tail of the last one, exactly as
/// `RandomState.bytes(len)`. `rand`'s distributions built on top of these do not give
/// NumPy's `random_sample`/`uniform`/`normal` values: use the inherent methods for that.
impl rand::RngCore for RandomState {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        RandomState::next_u32(self)
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        RandomState::next_u64(self)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(4) {
            let bytes = RandomState::next_u32(self).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};
    use rand::RngCore;

    /// Seeded with 5489, MT19937 is C++'s `std::mt19937` default: its first outputs are
    /// 3499211612, 581869302, 3890346734 (NumPy's `RandomState(5489)` agrees), and the C++
    /// standard ([rand.predef]) fixes its 10000th output at 4123659995.
    #[test]
    fn matches_std_mt19937_default_seed() {
        let mut rng = RandomState::new(5489);
        assert_eq!(
            [rng.next_u32(), rng.next_u32(), rng.next_u32()],
            [3_499_211_612, 581_869_302, 3_890_346_734]
        );
        let mut rng = RandomState::new(5489);
        rng.skip_u32(9999);
        assert_eq!(rng.next_u32(), 4_123_659_995);
    }

    #[test]
    fn skip_u32_equals_drawing_at_every_boundary() {
        for start in [0usize, 1, 623, 624, 625, 1000] {
            for n in [0usize, 1, 2, 623, 624, 625, 1247, 1248, 1249, 5000] {
                let mut drawn = RandomState::new(7);
                let mut skipped = RandomState::new(7);
                for _ in 0..start {
                    drawn.next_u32();
                }
                skipped.skip_u32(start);
                for _ in 0..n {
                    drawn.next_u32();
                }
                skipped.skip_u32(n);
                assert_eq!(drawn, skipped, "start {start}, n {n}");
                assert_eq!(drawn.next_u32(), skipped.next_u32());
            }
        }
    }

    #[test]
    fn skip_normal_equals_drawing_with_and_without_cache() {
        for first in [0usize, 1, 2, 3] {
            for n in [0usize, 1, 2, 3, 10, 11, 1001] {
                let mut drawn = RandomState::new(11);
                let mut skipped = RandomState::new(11);
                for _ in 0..first {
                    drawn.standard_normal();
                    skipped.standard_normal();
                }
                for _ in 0..n {
                    drawn.standard_normal();
                }
                skipped.skip_normal(n);
                assert_eq!(drawn.state(), skipped.state(), "first {first}, n {n}");
            }
        }
    }

    #[test]
    fn fill_visits_row_major_order_even_for_transposed_views() {
        let mut a = Array2::<f64>::zeros((3, 4));
        let mut rng = RandomState::new(3);
        rng.fill_uniform(a.view_mut(), -1.0, 1.0);
        // A column-major array filled through its logical indices gets the same values.
        let mut f = Array2::<f64>::zeros((4, 3));
        let mut rng = RandomState::new(3);
        rng.fill_uniform(f.view_mut().reversed_axes(), -1.0, 1.0);
        assert_eq!(a, f.t());
        let mut rng = RandomState::new(3);
        let flat: Vec<f64> = (0..12).map(|_| rng.uniform(-1.0, 1.0)).collect();
        assert_eq!(a.as_slice(), Some(flat.as_slice()));
        // A strided sub-view is filled in its own row-major order.
        let mut big = Array2::<f32>::zeros((4, 6));
        let mut rng = RandomState::new(3);
        rng.fill_uniform(big.slice_mut(s![..3, ..;2]), -1.0, 1.0);
        let mut rng = RandomState::new(3);
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(big[[i, 2 * j]], rng.uniform(-1.0, 1.0) as f32);
            }
        }
    }

    #[test]
    fn fill_bytes_uses_little_endian_words_and_drops_the_tail() {
        let mut bytes = [0u8; 6];
        let mut rng = RandomState::new(5);
        rng.fill_bytes(&mut bytes);
        let mut words = RandomState::new(5);
        let (w0, w1) = (
            words.next_u32().to_le_bytes(),
            words.next_u32().to_le_bytes(),
        );
        assert_eq!(bytes, [w0[0], w0[1], w0[2], w0[3], w1[0], w1[1]]);
        assert_eq!(rng, words);
    }

    #[test]
    fn from_state_rejects_malformed_snapshots() {
        let good = RandomState::new(1).state();
        let short = MtState {
            key: vec![1; 623],
            ..good.clone()
        };
        assert_eq!(
            RandomState::from_state(&short),
            Err(StateError::KeyLength { found: 623 })
        );
        let far = MtState {
            pos: 625,
            ..good.clone()
        };
        assert_eq!(
            RandomState::from_state(&far),
            Err(StateError::Position { pos: 625 })
        );
        let mut rng = RandomState::new(2);
        let before = rng.clone();
        assert!(rng.set_state(&far).is_err());
        assert_eq!(rng, before);
        assert_eq!(RandomState::from_state(&good), Ok(RandomState::new(1)));
    }

    #[test]
    fn seed_resets_the_gauss_cache() {
        let mut rng = RandomState::new(5);
        rng.standard_normal();
        assert!(rng.state().has_gauss);
        rng.seed(5);
        assert_eq!(rng, RandomState::new(5));
    }
}
