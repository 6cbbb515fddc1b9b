//! 64-bit seeds in JSON as decimal strings: `#[serde(with = "glorot_mlp::seed_text")]`.
//!
//! JSON numbers above 2^53 - 1 do not survive most readers: `jq`, JavaScript, and any
//! tool that parses numbers as `f64` round them, so a seed copied from such a reader
//! silently trains another network. glorot therefore writes every `u64` seed (trial
//! seeds, master seeds, training seeds) as a string of decimal digits, `"6619704716213685299"`,
//! and reads both forms: that string, or a non-negative integer (files written before
//! the change, and grid files written by hand, TOML included). A number with a fraction
//! or an exponent, a negative number and any other string are errors, never rounded.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Run {
//!     #[serde(with = "glorot_mlp::seed_text")]
//!     seed: u64,
//! }
//!
//! let run = Run { seed: 6_619_704_716_213_685_299 };
//! assert_eq!(serde_json::to_string(&run)?, r#"{"seed":"6619704716213685299"}"#);
//! let old: Run = serde_json::from_str(r#"{"seed":6619704716213685299}"#)?;
//! assert_eq!(old.seed, 6_619_704_716_213_685_299);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;

use serde::{Deserializer, Serializer, de};

/// Writes `seed` as a decimal string.
///
/// # Errors
/// Only the serializer's own.
pub fn serialize<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(seed)
}

/// Reads a seed written as a decimal string or as a non-negative integer.
///
/// # Errors
/// Anything else: another type, a negative or fractional number, a string that is not
/// the decimal digits of a `u64`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(SeedVisitor)
}

struct SeedVisitor;

impl de::Visitor<'_> for SeedVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit seed: a string of decimal digits or a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        // `u64::from_str` also takes a leading `+`; a seed is digits only.
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        v.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// The same for `Option<u64>`: `null` or a seed in either form.
pub mod option {
    use serde::{Deserializer, Serializer};

    /// Writes `None` as `null`, a seed as a decimal string.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(seed: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match seed {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` or a seed ([`super::deserialize`]).
    ///
    /// # Errors
    /// As [`super::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> serde::de::Visitor<'de> for OptionVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("null or a 64-bit seed")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct One {
        #[serde(with = "super")]
        seed: u64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Maybe {
        #[serde(with = "super::option")]
        seed: Option<u64>,
    }

    fn one(json: &str) -> Result<u64, serde_json::Error> {
        serde_json::from_str::<One>(json).map(|o| o.seed)
    }

    #[test]
    fn writes_decimal_strings_and_round_trips_every_width() {
        for seed in [0, 1, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, u64::MAX] {
            let json = serde_json::to_string(&One { seed }).unwrap();
            assert_eq!(json, format!(r#"{{"seed":"{seed}"}}"#));
            assert_eq!(one(&json).unwrap(), seed);
        }
    }

    #[test]
    fn reads_numbers_exactly() {
        // The first trial seed of results/part2.json (schema version 1), and u64::MAX.
        assert_eq!(
            one(r#"{"seed":6619704716213685299}"#).unwrap(),
            6_619_704_716_213_685_299
        );
        assert_eq!(one(r#"{"seed":18446744073709551615}"#).unwrap(), u64::MAX);
        assert_eq!(one(r#"{"seed":0}"#).unwrap(), 0);
    }

    #[test]
    fn refuses_what_is_not_a_seed() {
        for bad in [
            r#"{"seed":-1}"#,
            r#"{"seed":1.5}"#,
            r#"{"seed":1e3}"#,
            r#"{"seed":18446744073709551616}"#,
            r#"{"seed":"18446744073709551616"}"#,
            r#"{"seed":""}"#,
            r#"{"seed":"+5"}"#,
            r#"{"seed":" 5"}"#,
            r#"{"seed":"0x10"}"#,
            r#"{"seed":null}"#,
            r#"{"seed":true}"#,
            r#"{"seed":[5]}"#,
        ] {
            assert!(one(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn option_reads_null_and_both_forms() {
        let read = |json: &str| serde_json::from_str::<Maybe>(json).map(|m| m.seed);
        assert_eq!(read(r#"{"seed":null}"#).unwrap(), None);
        assert_eq!(read(r#"{"seed":7}"#).unwrap(), Some(7));
        assert_eq!(read(r#"{"seed":"7"}"#).unwrap(), Some(7));
        assert!(read(r#"{"seed":"x"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Maybe { seed: None }).unwrap(),
            r#"{"seed":null}"#
        );
        assert_eq!(
            serde_json::to_string(&Maybe {
                seed: Some(u64::MAX)
            })
            .unwrap(),
            r#"{"seed":"18446744073709551615"}"#
        );
    }
}
