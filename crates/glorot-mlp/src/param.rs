//! Parameter names: `w0`, `b0`, `w1`, ... as in the notebook.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Weight matrix or bias vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamKind {
    /// The weight matrix `w<i>`, shape `(fan_in, fan_out)`.
    Weight,
    /// The bias vector `b<i>`, shape `(fan_out,)`.
    Bias,
}

/// One parameter tensor of a model, named as the notebook names them: `w0` and `b0` for
/// the first layer, `w1` and `b1` for the second, and so on. Displays, parses and
/// serializes as that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId {
    /// Weight layer index, from 0 at the input.
    pub layer: usize,
    /// Weight or bias.
    pub kind: ParamKind,
}

impl ParamId {
    /// `w<layer>`.
    pub fn weight(layer: usize) -> Self {
        Self {
            layer,
            kind: ParamKind::Weight,
        }
    }

    /// `b<layer>`.
    pub fn bias(layer: usize) -> Self {
        Self {
            layer,
            kind: ParamKind::Bias,
        }
    }

    /// Every parameter of a model with `depth` weight layers, in the order the notebook's
    /// `update` visits them (`w0, w1, ..., b0, b1, ...`).
    pub fn all(depth: usize) -> impl Iterator<Item = ParamId> {
        (0..depth)
            .map(ParamId::weight)
            .chain((0..depth).map(ParamId::bias))
    }
}

impl fmt::Display for ParamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.kind {
            ParamKind::Weight => 'w',
            ParamKind::Bias => 'b',
        };
        write!(f, "{c}{}", self.layer)
    }
}

impl FromStr for ParamId {
    type Err = Error;

    /// Parses `w<i>` or `b<i>` (for example `w0`, `b2`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::UnknownParameter {
            name: s.to_string(),
            reason: reason.to_string(),
        };
        let mut chars = s.chars();
        let kind = match chars.next() {
            Some('w') => ParamKind::Weight,
            Some('b') => ParamKind::Bias,
            _ => return Err(bad("a parameter name is w<layer> or b<layer>")),
        };
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a parameter name is w<layer> or b<layer>"));
        }
        let layer = digits
            .parse()
            .map_err(|_| bad("the layer index does not fit usize"))?;
        Ok(Self { layer, kind })
    }
}

impl Serialize for ParamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ParamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for id in ParamId::all(12) {
            let s = id.to_string();
            assert_eq!(s.parse::<ParamId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<ParamId>(&json).unwrap(), id);
        }
        assert_eq!("w161".parse::<ParamId>().unwrap(), ParamId::weight(161));
        for bad in ["", "w", "x0", "w-1", "b1a", "W0", "w 1"] {
            assert!(bad.parse::<ParamId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn all_is_the_notebook_update_order() {
        let names: Vec<String> = ParamId::all(3).map(|p| p.to_string()).collect();
        assert_eq!(names, ["w0", "w1", "w2", "b0", "b1", "b2"]);
    }
}
