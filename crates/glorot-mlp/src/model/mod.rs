//! The model: parameters ([`Mlp`]), forward pass and loss ([`forward`]), backpropagation
//! and the SGD step ([`step`]), the buffers a step works in ([`Workspace`]), and the code
//! each precision runs ([`kernels`], chosen through the [`MlpFloat`] bound).

use glorot_tensor::Float;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::config::ValidModelConfig;
use crate::error::{Error, Result};
use crate::init::{WeightSource, fill_numpy, init_rng};
use crate::param::{ParamId, ParamKind};

mod forward;
mod kernels;
mod step;
mod workspace;

pub use kernels::MlpFloat;
pub use workspace::{Gradients, Workspace};

/// A multilayer perceptron: `depth` dense layers, the hidden ones followed by the config's
/// activation, the last one by the head.
///
/// Layer `l` computes `z = h @ w_l + b_l` with `w_l: (fan_in, fan_out)` (the notebook's
/// layout) and `b_l: (fan_out,)`; parameters are named `w0, b0, w1, b1, ...`
/// ([`ParamId`]). All buffers a step needs live in a [`Workspace`]; the model only holds
/// parameters, so one model can be evaluated through several workspaces.
///
/// Making, reading and converting parameters works for any [`Float`]; computing with the
/// model (forward pass, gradients, steps) needs `F:` [`MlpFloat`].
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<F: Float> {
    config: ValidModelConfig,
    weights: Vec<Array2<F>>,
    biases: Vec<Array1<F>>,
}

impl<F: Float> Mlp<F> {
    /// A model with zero biases and weights from `source` (see [`WeightSource`]).
    ///
    /// # Errors
    /// [`Error::Init`] when the initializer fails (the orthogonal QR), and
    /// [`Error::NoNumpyReplay`] for a NumPy replay of an initializer the notebook lacks.
    pub fn new(config: ValidModelConfig, source: WeightSource<'_>) -> Result<Self> {
        let mut model = Self::zeros(config);
        let init = model.config.init();
        match source {
            WeightSource::Seed(seed) => {
                let mut rng = init_rng(seed);
                for w in &mut model.weights {
                    init.fill(w.view_mut(), &mut rng)?;
                }
            }
            WeightSource::Rng(rng) => {
                for w in &mut model.weights {
                    init.fill(w.view_mut(), rng)?;
                }
            }
            WeightSource::NumpyReplay(rs) => {
                for w in &mut model.weights {
                    fill_numpy(init, w.view_mut(), rs)?;
                }
            }
        }
        Ok(model)
    }

    /// A model whose parameters are all zero (whatever the config's initializer says).
    pub fn zeros(config: ValidModelConfig) -> Self {
        let (weights, biases) = config
            .layers()
            .windows(2)
            .map(|p| (Array2::zeros((p[0], p[1])), Array1::zeros(p[1])))
            .unzip();
        Self {
            config,
            weights,
            biases,
        }
    }

    /// A model from given parameters, `weights[l]: (layers[l], layers[l + 1])` and
    /// `biases[l]: (layers[l + 1],)`.
    ///
    /// # Errors
    /// [`Error::DataShape`] when the count or a shape disagrees with the config.
    pub fn from_parameters(
        config: ValidModelConfig,
        weights: Vec<Array2<F>>,
        biases: Vec<Array1<F>>,
    ) -> Result<Self> {
        let depth = config.depth();
        for (what, found) in [
            ("weight matrices", weights.len()),
            ("bias vectors", biases.len()),
        ] {
            if found != depth {
                return Err(Error::DataShape {
                    what,
                    expected: depth,
                    found,
                });
            }
        }
        for (l, pair) in config.layers().windows(2).enumerate() {
            let (rows, cols) = weights[l].dim();
            let checks = [
                ("weight matrix rows (fan_in)", pair[0], rows),
                ("weight matrix columns (fan_out)", pair[1], cols),
                ("bias length (fan_out)", pair[1], biases[l].len()),
            ];
            for (what, expected, found) in checks {
                if expected != found {
                    return Err(Error::DataShape {
                        what,
                        expected,
                        found,
                    });
                }
            }
        }
        // Our buffers are in standard layout so that parameters are contiguous slices.
        let weights = weights
            .into_iter()
            .map(|w| w.as_standard_layout().into_owned())
            .collect();
        let biases = biases
            .into_iter()
            .map(|b| b.as_standard_layout().into_owned())
            .collect();
        Ok(Self {
            config,
            weights,
            biases,
        })
    }

    /// The validated architecture.
    pub fn config(&self) -> &ValidModelConfig {
        &self.config
    }

    /// Number of weight layers.
    pub fn depth(&self) -> usize {
        self.weights.len()
    }

    /// The number of trainable parameters: the sum over layers of
    /// `fan_in * fan_out + fan_out` (weights plus biases).
    ///
    /// For the notebook's 784-500-500-10 this is 648,010: weights
    /// 392,000 + 250,000 + 5,000 = 647,000 plus biases 500 + 500 + 10 = 1,010. The notebook
    /// printed "0.648784 million" because its `num_parameters` adds each layer's *input*
    /// width (`pars += self.network_units[i]`, 784 + 500 + 500 = 1,784) where the bias
    /// count, the layer's *output* width, belongs: 647,000 + 1,784 = 648,784.
    pub fn num_parameters(&self) -> usize {
        self.config.num_parameters()
    }

    /// `w<layer>: (fan_in, fan_out)`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn weights(&self, layer: usize) -> ArrayView2<'_, F> {
        self.weights[layer].view()
    }

    /// `b<layer>: (fan_out,)`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn bias(&self, layer: usize) -> ArrayView1<'_, F> {
        self.biases[layer].view()
    }

    /// Mutable `w<layer>`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn weights_mut(&mut self, layer: usize) -> ArrayViewMut2<'_, F> {
        self.weights[layer].view_mut()
    }

    /// Mutable `b<layer>`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn bias_mut(&mut self, layer: usize) -> ArrayViewMut1<'_, F> {
        self.biases[layer].view_mut()
    }

    /// The shape of a parameter (`[fan_in, fan_out]` or `[fan_out]`).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the layer does not exist.
    pub fn param_shape(&self, id: ParamId) -> Result<Vec<usize>> {
        self.check_param(id)?;
        Ok(match id.kind {
            ParamKind::Weight => self.weights[id.layer].shape().to_vec(),
            ParamKind::Bias => self.biases[id.layer].shape().to_vec(),
        })
    }

    /// A parameter's values in row-major order.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the layer does not exist.
    pub fn param(&self, id: ParamId) -> Result<&[F]> {
        self.check_param(id)?;
        let slice = match id.kind {
            ParamKind::Weight => self.weights[id.layer].as_slice(),
            ParamKind::Bias => self.biases[id.layer].as_slice(),
        };
        Ok(slice.expect("parameters are kept in standard layout"))
    }

    /// A parameter's values in row-major order, mutable.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the layer does not exist.
    pub fn param_mut(&mut self, id: ParamId) -> Result<&mut [F]> {
        self.check_param(id)?;
        let slice = match id.kind {
            ParamKind::Weight => self.weights[id.layer].as_slice_mut(),
            ParamKind::Bias => self.biases[id.layer].as_slice_mut(),
        };
        Ok(slice.expect("parameters are kept in standard layout"))
    }

    fn check_param(&self, id: ParamId) -> Result<()> {
        if id.layer < self.depth() {
            Ok(())
        } else {
            Err(Error::UnknownParameter {
                name: id.to_string(),
                reason: format!("the model has {} weight layers", self.depth()),
            })
        }
    }

    /// The same model in another precision (`as` conversions).
    pub fn cast<G: Float>(&self) -> Mlp<G> {
        Mlp {
            config: self.config.clone(),
            weights: self
                .weights
                .iter()
                .map(|w| w.mapv(|v| G::from_f64(v.to_f64())))
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| b.mapv(|v| G::from_f64(v.to_f64())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Head, ModelConfig};
    use glorot_tensor::{Activation, Init};

    /// A validated config with the Glorot uniform initializer (shared by the model's tests).
    pub(super) fn config(layers: &[usize], activation: Activation, head: Head) -> ValidModelConfig {
        ModelConfig {
            layers: layers.to_vec(),
            activation,
            head,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn cast_round_trips_f32_values() {
        let cfg = config(&[4, 3, 2], Activation::Relu, Head::SigmoidBce);
        let m = Mlp::<f32>::new(cfg, WeightSource::Seed(9)).unwrap();
        assert_eq!(m.cast::<f64>().cast::<f32>(), m);
    }

    #[test]
    fn from_parameters_refuses_wrong_shapes() {
        let cfg = config(&[3, 2], Activation::Tanh, Head::SigmoidBce);
        let err = Mlp::<f64>::from_parameters(
            cfg.clone(),
            vec![Array2::zeros((2, 3))],
            vec![Array1::zeros(2)],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DataShape {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = Mlp::<f64>::from_parameters(cfg, vec![], vec![]).unwrap_err();
        assert!(matches!(err, Error::DataShape { .. }), "{err}");
    }

    #[test]
    fn params_by_name() {
        let cfg = config(&[3, 2], Activation::Tanh, Head::SigmoidBce);
        let mut m = Mlp::<f64>::zeros(cfg);
        m.param_mut(ParamId::bias(0)).unwrap()[1] = 4.0;
        assert_eq!(m.bias(0)[1], 4.0);
        assert_eq!(m.param_shape(ParamId::weight(0)).unwrap(), vec![3, 2]);
        assert!(m.param(ParamId::weight(1)).is_err());
    }
}
