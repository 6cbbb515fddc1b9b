//! The [`Float`] trait: the one bound every generic function of this crate takes.

/// A floating-point element type the crate computes with: implemented for `f32` and `f64`.
///
/// It gathers what the crate needs (arithmetic from [`num_traits::Float`], BLAS dispatch
/// through [`ndarray::LinalgScalar`], broadcasting scalars through
/// [`ndarray::ScalarOperand`], uniform sampling, serde) so that callers write one bound.
///
/// Calling conventions: `F::from_f64(0.5)` and `x.to_f64()` on a value `x: F` resolve to
/// this trait. `num_traits::ToPrimitive` also has a `to_f64(&self) -> Option<f64>`: on a
/// reference (`v: &F`, as in `a.iter().map(|v| v.to_f64())`) method lookup finds that one
/// first, so destructure (`|&v| v.to_f64()`); the path form `F::to_f64(x)` is ambiguous,
/// write `Float::to_f64(x)`.
///
/// The orthogonal initializer's QR decomposition works in `f64` whatever the element
/// type, so no linear-algebra trait beyond [`ndarray::LinalgScalar`] is needed here.
///
/// ```
/// use glorot_tensor::Float;
///
/// fn half<F: Float>() -> F {
///     F::from_f64(0.5)
/// }
/// assert_eq!(half::<f32>(), 0.5f32);
/// assert_eq!(half::<f64>().to_f64(), 0.5);
/// assert_eq!(<f32 as Float>::NAME, "f32");
/// ```
pub trait Float:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + rand_distr::uniform::SampleUniform
    + std::fmt::Debug
    + std::fmt::Display
    + Default
    + Send
    + Sync
    + serde::Serialize
    + serde::de::DeserializeOwned
    + std::iter::Sum
    + 'static
{
    /// The type's name as written in Rust and in results files: `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Converts from `f64` as the `as` operator does (round to nearest for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact for both `f32` and `f64`).
    fn to_f64(self) -> f64;
    /// The same slice as `f32` when `Self` is `f32`, else `None`: lets generic code take
    /// an `f32`-only path (such as [`crate::fused`]) without copying.
    fn as_f32_slice(s: &[Self]) -> Option<&[f32]>;
    /// Mutable [`Float::as_f32_slice`].
    fn as_f32_slice_mut(s: &mut [Self]) -> Option<&mut [f32]>;
    /// The same slice as `f64` when `Self` is `f64`, else `None` (see
    /// [`Float::as_f32_slice`]).
    fn as_f64_slice(s: &[Self]) -> Option<&[f64]>;
    /// Mutable [`Float::as_f64_slice`].
    fn as_f64_slice_mut(s: &mut [Self]) -> Option<&mut [f64]>;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn as_f32_slice(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
    #[inline]
    fn as_f32_slice_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    #[inline]
    fn as_f64_slice(_: &[f32]) -> Option<&[f64]> {
        None
    }
    #[inline]
    fn as_f64_slice_mut(_: &mut [f32]) -> Option<&mut [f64]> {
        None
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn as_f32_slice(_: &[f64]) -> Option<&[f32]> {
        None
    }
    #[inline]
    fn as_f32_slice_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
    #[inline]
    fn as_f64_slice(s: &[f64]) -> Option<&[f64]> {
        Some(s)
    }
    #[inline]
    fn as_f64_slice_mut(s: &mut [f64]) -> Option<&mut [f64]> {
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn conversions_are_as_casts() {
        // 0.1 is not representable; `as` rounds to nearest, which is what from_f64 promises.
        assert_eq!(<f32 as Float>::from_f64(0.1), 0.1f64 as f32);
        assert_eq!(<f64 as Float>::from_f64(0.1), 0.1);
        assert_eq!(0.1f32.to_f64(), f64::from(0.1f32));
        assert_eq!(<f64 as Float>::NAME, "f64");
    }
}
