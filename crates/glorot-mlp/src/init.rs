//! Where initial weights come from: a seeded `rand` generator, the caller's generator, or a
//! replay of the notebook's NumPy draws.

use std::fmt;

use glorot_tensor::numpy_rng::{RandomState, glorot_limit};
use glorot_tensor::{Float, Init};
use ndarray::ArrayViewMut2;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The ChaCha stream [`init_rng`] draws from.
pub const INIT_STREAM: u64 = 0;
/// The ChaCha stream [`shuffle_rng`] draws from.
pub const SHUFFLE_STREAM: u64 = 1;

/// The generator that initializes weights for a run seeded with `seed`:
/// `ChaCha8Rng::seed_from_u64(seed)` on stream [`INIT_STREAM`] (0).
///
/// Initialization and shuffling use the same seed on two different ChaCha streams, so they
/// are independent: changing the shuffle mode never changes the initial weights, and
/// changing the architecture never changes the epoch orders.
pub fn init_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INIT_STREAM);
    rng
}

/// The generator that draws the epoch permutations for a run seeded with `seed`:
/// `ChaCha8Rng::seed_from_u64(seed)` on stream [`SHUFFLE_STREAM`] (1). See [`init_rng`].
pub fn shuffle_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SHUFFLE_STREAM);
    rng
}

/// Parses an initializer as a user writes it: `glorot_uniform` (also `glorot`, `xavier`,
/// `xavier_uniform`), `normal` or `normal:MEAN:STD`, `zero`, `he_normal`, `he_uniform`
/// (also `kaiming_...`), `lecun_normal`, `orthogonal` or `orthogonal:GAIN`, `standard`
/// (Glorot and Bengio's `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`); names are
/// case-insensitive and dashes in them count as underscores (the parameters are read as
/// written, so `normal:0:-1` has a standard deviation of -1 and is refused).
///
/// # Errors
/// [`Error::InvalidConfig`] for field `init`, with the text as given.
pub fn parse_init(s: &str) -> Result<Init> {
    let bad = |reason| Error::config("init", s, reason);
    let text = s.trim();
    let (name, params) = match text.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (text, None),
    };
    let name = name.to_ascii_lowercase().replace('-', "_");
    let numbers = |p: &str| -> Result<Vec<f64>> {
        p.split(':')
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .map_err(|_| bad("a parameter is not a number"))
            })
            .collect()
    };
    let plain = |init: Init| match params {
        None => Ok(init),
        Some(_) => Err(bad("this initializer takes no parameters")),
    };
    match name.as_str() {
        "glorot_uniform" | "glorot" | "xavier" | "xavier_uniform" => plain(Init::GlorotUniform),
        "zero" | "zeros" => plain(Init::Zero),
        "he_normal" | "kaiming_normal" => plain(Init::HeNormal),
        "he_uniform" | "kaiming_uniform" => plain(Init::HeUniform),
        "lecun_normal" => plain(Init::LecunNormal),
        "standard" => plain(Init::Standard),
        "normal" => match params.map(numbers).transpose()?.as_deref() {
            None => Ok(Init::Normal {
                mean: 0.0,
                std: 1.0,
            }),
            Some(&[mean, std]) if mean.is_finite() && std.is_finite() && std >= 0.0 => {
                Ok(Init::Normal { mean, std })
            }
            Some(_) => Err(bad(
                "expected normal:MEAN:STD with finite numbers and STD >= 0",
            )),
        },
        "orthogonal" => match params.map(numbers).transpose()?.as_deref() {
            None => Ok(Init::Orthogonal { gain: 1.0 }),
            Some(&[gain]) if gain.is_finite() => Ok(Init::Orthogonal { gain }),
            Some(_) => Err(bad("expected orthogonal:GAIN with a finite gain")),
        },
        _ => Err(bad(
            "unknown initializer (expected glorot_uniform, normal[:MEAN:STD], zero, \
             he_normal, he_uniform, lecun_normal, orthogonal[:GAIN] or standard)",
        )),
    }
}

/// Where [`crate::Mlp::new`] takes its initial weights from. Biases always start at zero.
pub enum WeightSource<'a> {
    /// [`Init::fill`] layer by layer (`w0`, `w1`, ...) from [`init_rng`]`(seed)`.
    Seed(u64),
    /// [`Init::fill`] layer by layer from the caller's generator.
    Rng(&'a mut dyn RngCore),
    /// The notebook's `initialize_weights` draw for draw, from a NumPy-compatible
    /// `RandomState` the caller owns (the notebook shares one generator, seeded once with
    /// `np.random.seed(5)`, across all its networks):
    ///
    /// - layer by layer, biases zero and never drawn;
    /// - [`Init::GlorotUniform`]: `uniform(-r, r, size=(fan_in, fan_out))` with
    ///   `r = sqrt(6.0 / (fan_in + fan_out))`;
    /// - [`Init::Normal`]: `normal(mean, std, size=(fan_in, fan_out))` (the notebook's is
    ///   `normal(scale=1)`);
    /// - [`Init::Zero`]: draws nothing.
    ///
    /// Not in the notebook but replayed as a NumPy user would write them:
    /// [`Init::HeNormal`] `normal(0, sqrt(2 / fan_in))`, [`Init::HeUniform`]
    /// `uniform(-sqrt(6 / fan_in), sqrt(6 / fan_in))`, [`Init::LecunNormal`]
    /// `normal(0, sqrt(1 / fan_in))`, [`Init::Standard`]
    /// `uniform(-1 / sqrt(fan_in), 1 / sqrt(fan_in))`. [`Init::Orthogonal`] has no replay
    /// ([`Error::NoNumpyReplay`]).
    NumpyReplay(&'a mut RandomState),
}

impl fmt::Debug for WeightSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightSource::Seed(seed) => f.debug_tuple("Seed").field(seed).finish(),
            WeightSource::Rng(_) => f.write_str("Rng(..)"),
            WeightSource::NumpyReplay(_) => f.write_str("NumpyReplay(..)"),
        }
    }
}

/// Fills one weight matrix `w: (fan_in, fan_out)` as the notebook's `initialize_weights`
/// does, consuming draws from `rs` exactly as NumPy would.
pub(crate) fn fill_numpy<F: Float>(
    init: Init,
    mut w: ArrayViewMut2<'_, F>,
    rs: &mut RandomState,
) -> Result<()> {
    let (fan_in, fan_out) = w.dim();
    match init {
        Init::GlorotUniform => {
            // `np.sqrt(6./(fan_in + fan_out))`: the integer sum, then a float division.
            let r = glorot_limit(fan_in, fan_out);
            rs.fill_uniform(w.view_mut(), -r, r);
        }
        Init::Normal { mean, std } => rs.fill_normal(w.view_mut(), mean, std),
        Init::Zero => w.fill(F::zero()),
        Init::HeNormal => rs.fill_normal(w.view_mut(), 0.0, (2.0 / fan_in as f64).sqrt()),
        Init::HeUniform => {
            let r = (6.0 / fan_in as f64).sqrt();
            rs.fill_uniform(w.view_mut(), -r, r);
        }
        Init::LecunNormal => rs.fill_normal(w.view_mut(), 0.0, (1.0 / fan_in as f64).sqrt()),
        Init::Standard => {
            let r = 1.0 / (fan_in as f64).sqrt();
            rs.fill_uniform(w.view_mut(), -r, r);
        }
        other => {
            return Err(Error::NoNumpyReplay {
                init: format!("{other:?}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn initializers_parse_as_written() {
        assert_eq!(parse_init("Glorot").unwrap(), Init::GlorotUniform);
        assert_eq!(parse_init("he-normal").unwrap(), Init::HeNormal);
        assert_eq!(parse_init("Standard").unwrap(), Init::Standard);
        assert_eq!(
            parse_init("normal:0.5:0.01").unwrap(),
            Init::Normal {
                mean: 0.5,
                std: 0.01
            }
        );
        assert_eq!(
            parse_init("orthogonal:-2").unwrap(),
            Init::Orthogonal { gain: -2.0 }
        );
        // The issue's `normal:0:-1` was reported as `_1`: the text comes back as given.
        for bad in [
            "normal:0:-1",
            "normal:x:1",
            "zero:1",
            "uniform",
            "orthogonal:inf",
        ] {
            match parse_init(bad) {
                Err(Error::InvalidConfig { field, value, .. }) => {
                    assert_eq!((field.as_str(), value.as_str()), ("init", bad));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4).map(|_| init_rng(7).random()).collect();
        let mut r1 = init_rng(7);
        let mut r2 = shuffle_rng(7);
        let x: u64 = r1.random();
        let y: u64 = r2.random();
        assert_ne!(x, y, "init and shuffle streams must be independent");
        assert_eq!(a[0], a[1], "same seed, same stream, same draws");
    }

    #[test]
    fn numpy_replay_refuses_initializers_the_notebook_lacks() {
        let mut rs = RandomState::new(5);
        let mut w = ndarray::Array2::<f64>::zeros((3, 2));
        let err = fill_numpy(Init::Orthogonal { gain: 1.0 }, w.view_mut(), &mut rs).unwrap_err();
        assert!(matches!(err, Error::NoNumpyReplay { .. }), "{err}");
        fill_numpy(Init::Zero, w.view_mut(), &mut rs).unwrap();
        assert!(w.iter().all(|&v| v == 0.0));
    }
}
