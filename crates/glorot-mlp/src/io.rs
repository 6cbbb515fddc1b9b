//! Weights files in the safetensors format, with the model config in the header.
//!
//! A file holds one tensor per parameter, named as the notebook names them: `w0` with shape
//! `[fan_in, fan_out]`, `b0` with shape `[fan_out]`, and so on, all of dtype `F32` or `F64`
//! (little-endian, row-major). The header's `__metadata__` holds:
//!
//! | key | value |
//! | --- | --- |
//! | `format` | `glorot-mlp` |
//! | `format_version` | `1` |
//! | `dtype` | `f32` or `f64` |
//! | `config` | the [`ModelConfig`] as JSON |
//!
//! and any further keys the writer added with [`Mlp::save_with_metadata`] (the CLI marks
//! an interrupted training with `interrupted`, the retrained best trial of a search with
//! `trial` and `seed`), returned in [`WeightsInfo::metadata`].
//!
//! So Python users read the weights without glorot:
//! `safetensors.numpy.load_file("model.safetensors")["w0"]` (or `safetensors.torch`), and
//! `json.loads(safe_open(path, "np").metadata()["config"])` for the architecture.
//! (PyTorch's `nn.Linear` stores `weight` as `(out, in)`: transpose `w<i>`.)

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use glorot_tensor::Float;
use ndarray::{Array1, Array2};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors, View};

use crate::config::{ModelConfig, Precision};
use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::param::ParamId;

/// The `format` metadata value of glorot weights files.
pub const FORMAT: &str = "glorot-mlp";
/// The `format_version` metadata value this crate writes and reads.
pub const FORMAT_VERSION: &str = "1";

/// A parameter serialized to little-endian bytes, ready for `safetensors::serialize`.
pub(crate) struct Bytes {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

pub(crate) fn dtype_of<F: Float>() -> Dtype {
    match Precision::of::<F>() {
        Precision::F32 => Dtype::F32,
        Precision::F64 => Dtype::F64,
    }
}

pub(crate) fn to_bytes<F: Float>(values: &[F]) -> Vec<u8> {
    match Precision::of::<F>() {
        Precision::F32 => values
            .iter()
            .flat_map(|&v| (Float::to_f64(v) as f32).to_le_bytes())
            .collect(),
        Precision::F64 => values
            .iter()
            .flat_map(|&v| Float::to_f64(v).to_le_bytes())
            .collect(),
    }
}

pub(crate) fn from_bytes<F: Float>(data: &[u8]) -> Vec<F> {
    match Precision::of::<F>() {
        Precision::F32 => data
            .chunks_exact(4)
            .map(|c| {
                F::from_f64(f64::from(f32::from_le_bytes(
                    c.try_into().expect("4 bytes"),
                )))
            })
            .collect(),
        Precision::F64 => data
            .chunks_exact(8)
            .map(|c| F::from_f64(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
            .collect(),
    }
}

/// What a weights file says about itself, read from its header alone.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightsInfo {
    /// The architecture stored with the weights.
    pub config: ModelConfig,
    /// The element type of the tensors.
    pub precision: Precision,
    /// The header's other `__metadata__` entries (those [`Mlp::save_with_metadata`] added).
    pub metadata: BTreeMap<String, String>,
}

/// The `__metadata__` keys this module writes itself.
const RESERVED_KEYS: [&str; 4] = ["format", "format_version", "dtype", "config"];

impl<F: Float> Mlp<F> {
    /// Writes the parameters and config to `path` as safetensors (see the [module
    /// docs](crate::io)). The file is written by [`write_atomic`] (a temporary sibling
    /// renamed over `path`, so readers never see a partial file), with the permissions
    /// of every other file glorot writes (`0666` less the umask: `0644` usually).
    ///
    /// # Errors
    /// [`Error::Safetensors`] when the tensors cannot be serialized, [`Error::Io`] when
    /// writing fails.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with_metadata(path, &BTreeMap::new())
    }

    /// As [`Mlp::save`], with `extra` entries in the header's `__metadata__` besides the
    /// format's own (read back in [`WeightsInfo::metadata`]).
    ///
    /// # Errors
    /// As [`Mlp::save`].
    ///
    /// # Panics
    /// When `extra` holds one of the format's own keys (`format`, `format_version`,
    /// `dtype`, `config`): a programming error.
    #[track_caller]
    pub fn save_with_metadata(
        &self,
        path: impl AsRef<Path>,
        extra: &BTreeMap<String, String>,
    ) -> Result<()> {
        assert!(
            RESERVED_KEYS.iter().all(|k| !extra.contains_key(*k)),
            "extra metadata may not replace the format's own keys"
        );
        let path = path.as_ref();
        let tensors: Vec<(String, Bytes)> = ParamId::all(self.depth())
            .map(|id| {
                let bytes = Bytes {
                    dtype: dtype_of::<F>(),
                    shape: self.param_shape(id).expect("own parameter"),
                    data: to_bytes(self.param(id).expect("own parameter")),
                };
                (id.to_string(), bytes)
            })
            .collect();
        let config = serde_json::to_string(self.config().config())
            .expect("a model config always serializes");
        let mut metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("dtype".to_string(), F::NAME.to_string()),
            ("config".to_string(), config),
        ]);
        metadata.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        write_safetensors(path, &tensors, metadata)
    }

    /// Reads a model saved by [`Mlp::save`], with the architecture stored in the file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Safetensors`] when it is not
    /// safetensors, [`Error::WeightsMismatch`] when it is not a glorot weights file of
    /// dtype `F` with exactly the tensors `w0, b0, ...` of the stored architecture's shapes,
    /// or the stored config is invalid.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_inner(path.as_ref(), None)
    }

    /// As [`Mlp::load`], and the stored config must equal `expected` (for example the
    /// config a run is about to train), else [`Error::WeightsMismatch`] names the
    /// difference.
    ///
    /// # Errors
    /// As [`Mlp::load`].
    pub fn load_expecting(path: impl AsRef<Path>, expected: &ModelConfig) -> Result<Self> {
        Self::load_inner(path.as_ref(), Some(expected))
    }

    fn load_inner(path: &Path, expected: Option<&ModelConfig>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mismatch = |detail: String| Error::WeightsMismatch {
            path: path.to_path_buf(),
            detail,
        };
        let tensors = SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
            path: path.to_path_buf(),
            source,
        })?;
        let info = read_info(path, &bytes)?;
        if let Some(expected) = expected
            && &info.config != expected
        {
            return Err(mismatch(format!(
                "stored config {} differs from the expected {}",
                json(&info.config),
                json(expected)
            )));
        }
        if info.precision != Precision::of::<F>() {
            return Err(mismatch(format!(
                "weights are {} but the model computes in {} (load as {0}, then Mlp::cast)",
                info.precision,
                F::NAME
            )));
        }
        let config = info
            .config
            .validate()
            .map_err(|e| mismatch(format!("the stored config is invalid: {e}")))?;
        let depth = config.depth();
        let expected_names: Vec<String> = ParamId::all(depth).map(|p| p.to_string()).collect();
        let mut found: Vec<&str> = tensors.names();
        found.sort_unstable();
        if let Some(extra) = found
            .iter()
            .find(|n| !expected_names.iter().any(|e| e == *n))
        {
            return Err(mismatch(format!(
                "unexpected tensor {extra:?}: a {depth}-layer model has exactly {}",
                expected_names.join(", ")
            )));
        }
        let get = |id: ParamId, shape: Vec<usize>| -> Result<Vec<F>> {
            let name = id.to_string();
            let t: TensorView<'_> = tensors
                .tensor(&name)
                .map_err(|_| mismatch(format!("tensor {name} is missing")))?;
            if t.dtype() != dtype_of::<F>() {
                return Err(mismatch(format!(
                    "tensor {name} has dtype {:?}, expected {:?}",
                    t.dtype(),
                    dtype_of::<F>()
                )));
            }
            if t.shape() != shape.as_slice() {
                return Err(mismatch(format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    t.shape()
                )));
            }
            Ok(from_bytes(t.data()))
        };
        let mut weights = Vec::with_capacity(depth);
        let mut biases = Vec::with_capacity(depth);
        for (l, pair) in config.layers().windows(2).enumerate() {
            let w = get(ParamId::weight(l), vec![pair[0], pair[1]])?;
            let b = get(ParamId::bias(l), vec![pair[1]])?;
            weights.push(Array2::from_shape_vec((pair[0], pair[1]), w).expect("shape checked"));
            biases.push(Array1::from_vec(b));
        }
        Mlp::from_parameters(config, weights, biases)
    }
}

/// A failed step of [`write_atomic`]: what it was doing, to which file.
#[derive(Debug)]
pub struct AtomicWriteError {
    /// `creating`, `writing`, `syncing` or `renaming into`.
    pub action: &'static str,
    /// The file the step failed on (the temporary file, or the destination for the rename).
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a unique temporary file in the same directory
/// (`.<name>.<pid>.<n>.tmp`), flushed and synced, then renamed over `path`; then the
/// directory is synced so the rename itself survives a crash. The file is created as
/// [`File::create`] creates files (mode `0666` less the process's umask on Unix), so
/// every file glorot writes through it, weights and results alike, has the same
/// permissions. The one atomic writer of the workspace (`glorot_search::write_atomic`
/// wraps it).
///
/// # Errors
/// The step that failed; the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::result::Result<(), AtomicWriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let fail = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| AtomicWriteError {
            action,
            path,
            source,
        }
    };
    let result = (|| {
        let mut f = File::create(&tmp).map_err(fail("creating", &tmp))?;
        f.write_all(bytes).map_err(fail("writing", &tmp))?;
        f.sync_all().map_err(fail("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(fail("renaming into", path))?;
        // Make the rename durable; not every platform can open a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn json(c: &ModelConfig) -> String {
    serde_json::to_string(c).expect("a model config always serializes")
}

/// Reads the architecture and dtype from a weights file's header.
///
/// # Errors
/// As [`Mlp::load`], except that the tensors themselves are not checked.
pub fn read_weights_info(path: impl AsRef<Path>) -> Result<WeightsInfo> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_info(path, &bytes)
}

fn read_info(path: &Path, bytes: &[u8]) -> Result<WeightsInfo> {
    let mismatch = |detail: String| Error::WeightsMismatch {
        path: path.to_path_buf(),
        detail,
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = metadata
        .metadata()
        .as_ref()
        .ok_or_else(|| mismatch("no __metadata__: not a glorot weights file".to_string()))?;
    let field = |key: &str| {
        meta.get(key).ok_or_else(|| {
            mismatch(format!(
                "__metadata__ has no {key:?}: not a glorot weights file"
            ))
        })
    };
    let format = field("format")?;
    if format != FORMAT {
        return Err(mismatch(format!(
            "format is {format:?}, expected {FORMAT:?}"
        )));
    }
    let version = field("format_version")?;
    if version != FORMAT_VERSION {
        return Err(mismatch(format!(
            "format_version is {version:?}; this build reads {FORMAT_VERSION:?}"
        )));
    }
    let precision: Precision = field("dtype")?
        .parse()
        .map_err(|e| mismatch(format!("dtype: {e}")))?;
    let config: ModelConfig = serde_json::from_str(field("config")?)
        .map_err(|e| mismatch(format!("config is not a model config: {e}")))?;
    let metadata = meta
        .iter()
        .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(WeightsInfo {
        config,
        precision,
        metadata,
    })
}

/// Serializes `tensors` with `metadata` as safetensors and writes the file atomically
/// ([`write_atomic`]): the one writer of weights files and checkpoints.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &[(String, Bytes)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes = safetensors::serialize(
        tensors.iter().map(|(name, b)| (name.as_str(), b)),
        Some(metadata),
    )
    .map_err(|source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|e| Error::Io {
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Head;
    use crate::init::WeightSource;
    use glorot_tensor::{Activation, Init};

    fn cfg(layers: &[usize]) -> ModelConfig {
        ModelConfig {
            layers: layers.to_vec(),
            activation: Activation::Relu,
            head: Head::SoftmaxCrossEntropy,
            init: Init::HeNormal,
        }
    }

    #[test]
    fn round_trip_both_precisions() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(&[5, 4, 3, 2]).validate().unwrap();
        let m32 = Mlp::<f32>::new(c.clone(), WeightSource::Seed(1)).unwrap();
        let p = dir.path().join("m32.safetensors");
        m32.save(&p).unwrap();
        assert_eq!(Mlp::<f32>::load(&p).unwrap(), m32);
        let info = read_weights_info(&p).unwrap();
        assert_eq!(info.precision, Precision::F32);
        assert_eq!(&info.config, c.config());

        let m64 = Mlp::<f64>::new(c.clone(), WeightSource::Seed(2)).unwrap();
        let p = dir.path().join("m64.safetensors");
        m64.save(&p).unwrap();
        let back = Mlp::<f64>::load_expecting(&p, c.config()).unwrap();
        // Bit-exact, including signs of zeros.
        for id in ParamId::all(3) {
            let a: Vec<u64> = m64.param(id).unwrap().iter().map(|v| v.to_bits()).collect();
            let b: Vec<u64> = back
                .param(id)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(a, b, "{id}");
        }
        // Overwriting works (atomic rename over an existing file).
        m64.save(&p).unwrap();
        assert!(read_weights_info(&p).unwrap().metadata.is_empty());
    }

    #[test]
    fn extra_metadata_is_written_and_read_back_apart_from_the_formats_own() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mlp::<f32>::new(cfg(&[3, 2]).validate().unwrap(), WeightSource::Seed(3)).unwrap();
        let p = dir.path().join("m.safetensors");
        let extra = BTreeMap::from([
            ("interrupted".to_string(), "{\"epoch\":2}".to_string()),
            ("trial".to_string(), "t0007".to_string()),
        ]);
        m.save_with_metadata(&p, &extra).unwrap();
        let info = read_weights_info(&p).unwrap();
        assert_eq!(info.metadata, extra);
        assert_eq!(info.precision, Precision::F32);
        // The weights load as any others.
        assert_eq!(Mlp::<f32>::load(&p).unwrap(), m);
    }

    #[test]
    fn mismatches_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(&[3, 2]).validate().unwrap();
        let m = Mlp::<f64>::new(c.clone(), WeightSource::Seed(1)).unwrap();
        let p = dir.path().join("m.safetensors");
        m.save(&p).unwrap();

        let err = Mlp::<f32>::load(&p).unwrap_err();
        assert!(matches!(err, Error::WeightsMismatch { .. }), "{err}");
        assert!(err.to_string().contains("f64"), "{err}");

        let err = Mlp::<f64>::load_expecting(&p, &cfg(&[3, 3])).unwrap_err();
        assert!(err.to_string().contains("differs"), "{err}");

        // A file whose tensors disagree with its stored config.
        let bad = dir.path().join("bad.safetensors");
        let w = Bytes {
            dtype: Dtype::F64,
            shape: vec![2, 2],
            data: vec![0; 32],
        };
        let b = Bytes {
            dtype: Dtype::F64,
            shape: vec![2],
            data: vec![0; 16],
        };
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("dtype".to_string(), "f64".to_string()),
            ("config".to_string(), json(c.config())),
        ]);
        safetensors::serialize_to_file([("w0", &w), ("b0", &b)], Some(meta.clone()), &bad).unwrap();
        let err = Mlp::<f64>::load(&bad).unwrap_err();
        assert!(
            err.to_string().contains("shape [2, 2], expected [3, 2]"),
            "{err}"
        );

        let w = Bytes {
            dtype: Dtype::F64,
            shape: vec![3, 2],
            data: vec![0; 48],
        };
        safetensors::serialize_to_file(
            [("w0", &w), ("b0", &b), ("w9", &b)],
            Some(meta.clone()),
            &bad,
        )
        .unwrap();
        let err = Mlp::<f64>::load(&bad).unwrap_err();
        assert!(
            err.to_string().contains("unexpected tensor \"w9\""),
            "{err}"
        );

        safetensors::serialize_to_file([("w0", &w)], Some(meta), &bad).unwrap();
        let err = Mlp::<f64>::load(&bad).unwrap_err();
        assert!(err.to_string().contains("b0 is missing"), "{err}");

        // Plain safetensors without our metadata, and not safetensors at all.
        safetensors::serialize_to_file([("w0", &w)], None, &bad).unwrap();
        let err = Mlp::<f64>::load(&bad).unwrap_err();
        assert!(
            err.to_string().contains("not a glorot weights file"),
            "{err}"
        );
        std::fs::write(&bad, b"hello").unwrap();
        assert!(matches!(
            Mlp::<f64>::load(&bad),
            Err(Error::Safetensors { .. })
        ));
        let missing = dir.path().join("missing.safetensors");
        assert!(matches!(Mlp::<f64>::load(&missing), Err(Error::Io { .. })));
    }
}
