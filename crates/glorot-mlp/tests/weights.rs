//! Weights files are plain safetensors: readable without glorot.

use glorot_mlp::{Activation, Head, Init, Mlp, ModelConfig, TrainConfig, WeightSource};

/// Parses a safetensors file as a NumPy or PyTorch user's loader does, from the published
/// format alone (8-byte little-endian header length, JSON header, raw little-endian data),
/// and checks every tensor against the model.
#[test]
fn saved_weights_follow_the_published_format() {
    let config = ModelConfig {
        layers: vec![6, 5, 4],
        activation: Activation::Sigmoid,
        head: Head::SigmoidBce,
        init: Init::GlorotUniform,
    };
    let model = Mlp::<f32>::new(config.validate().unwrap(), WeightSource::Seed(8)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let meta = &header["__metadata__"];
    assert_eq!(meta["format"], "glorot-mlp");
    assert_eq!(meta["dtype"], "f32");
    let stored: ModelConfig = serde_json::from_str(meta["config"].as_str().unwrap()).unwrap();
    assert_eq!(stored, config);
    for (name, shape, values) in [
        (
            "w0",
            vec![6, 5],
            model.weights(0).iter().copied().collect::<Vec<f32>>(),
        ),
        ("b0", vec![5], model.bias(0).to_vec()),
        ("w1", vec![5, 4], model.weights(1).iter().copied().collect()),
        ("b1", vec![4], model.bias(1).to_vec()),
    ] {
        let t = &header[name];
        assert_eq!(t["dtype"], "F32", "{name}");
        let found: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(found, shape, "{name}");
        let start = t["data_offsets"][0].as_u64().unwrap() as usize;
        let end = t["data_offsets"][1].as_u64().unwrap() as usize;
        let read: Vec<f32> = data[start..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(read, values, "{name}");
    }
}

/// Training can start from saved weights: a loaded model trains exactly as the original.
#[test]
fn training_resumes_from_saved_weights() {
    use glorot_mlp::{EvalData, FitData, NoopObserver, Precision, TrainData, Trainer};
    use ndarray::Array2;

    let config = ModelConfig {
        layers: vec![3, 4, 2],
        activation: Activation::Tanh,
        head: Head::SoftmaxCrossEntropy,
        init: Init::LecunNormal,
    };
    let valid = config.validate().unwrap();
    let model = Mlp::<f64>::new(valid, WeightSource::Seed(4)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("start.safetensors");
    model.save(&path).unwrap();
    let loaded = Mlp::<f64>::load_expecting(&path, &config).unwrap();

    let x = Array2::from_shape_fn((9, 3), |(i, j)| ((i + j) as f64).cos());
    let labels: Vec<u8> = (0..9).map(|i| (i % 2) as u8).collect();
    let y = glorot_tensor::one_hot::<f64>(&labels, 2);
    let data = FitData {
        train: TrainData::new(x.view(), y.view()).unwrap(),
        validation: EvalData::new(x.view(), &labels).unwrap(),
        test: None,
    };
    let cfg = TrainConfig {
        epochs: 3,
        precision: Precision::F64,
        ..TrainConfig::default()
    }
    .validate()
    .unwrap();
    let run = |m: Mlp<f64>| {
        let mut t = Trainer::new(m, cfg.clone()).unwrap();
        let r = t.fit(&data, &mut NoopObserver).unwrap();
        let losses: Vec<(u64, u64)> = r
            .epochs
            .iter()
            .map(|m| (m.train_loss.to_bits(), m.val_loss.to_bits()))
            .collect();
        (t.into_model(), losses)
    };
    let (a, la) = run(model);
    let (b, lb) = run(loaded);
    assert_eq!(a, b);
    assert_eq!(la, lb);
}

mod arbitrary_bytes {
    //! No weights file makes loading panic: arbitrary bytes, and a saved file with a few
    //! bytes changed (header length, JSON header, metadata, data), through every reader.

    use glorot_mlp::{Activation, Head, Init, Mlp, ModelConfig, WeightSource, read_weights_info};
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        std::fs::write(&path, bytes).unwrap();
        if let Err(e) = read_weights_info(&path) {
            assert!(!e.to_string().is_empty());
        }
        if let Ok(m) = Mlp::<f32>::load(&path) {
            assert_eq!(m.depth() + 1, m.config().layers().len());
        }
        let _ = Mlp::<f64>::load(&path);
    }

    fn saved() -> Vec<u8> {
        let config = ModelConfig {
            layers: vec![3, 2, 2],
            activation: Activation::Relu,
            head: Head::SigmoidBce,
            init: Init::GlorotUniform,
        };
        let model = Mlp::<f32>::new(config.validate().unwrap(), WeightSource::Seed(1)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        model.save(&path).unwrap();
        std::fs::read(&path).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            read_all(&bytes);
        }

        #[test]
        fn edited_files_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let mut bytes = saved();
            let n = bytes.len();
            for (at, b) in edits {
                bytes[at % n] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % n);
            }
            read_all(&bytes);
        }
    }
}

/// The weights file gets the permissions of every other file glorot writes: those of a
/// file created in the same directory under the same umask (`0644` under the usual
/// `022`), not the `0600` of a private temporary file.
#[cfg(unix)]
#[test]
fn weights_have_the_permissions_of_the_results_beside_them() {
    use std::os::unix::fs::PermissionsExt;

    let config = ModelConfig {
        layers: vec![3, 2],
        activation: Activation::Tanh,
        head: Head::SigmoidBce,
        init: Init::GlorotUniform,
    };
    let model = Mlp::<f64>::new(config.validate().unwrap(), WeightSource::Seed(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    model.save(&weights).unwrap();
    let json = dir.path().join("run.json");
    glorot_mlp::io::write_atomic(&json, b"{}\n").unwrap();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, b"x").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&weights), mode(&plain), "weights vs a plain file");
    assert_eq!(mode(&json), mode(&plain), "atomic JSON vs a plain file");
    // Saving again replaces the file atomically, with the same permissions.
    model.save(&weights).unwrap();
    assert_eq!(mode(&weights), mode(&plain));
    assert_eq!(
        Mlp::<f64>::load(&weights).unwrap().weights(0),
        model.weights(0)
    );
}

/// Softsign and the standard initialization are recorded in the weights file's metadata
/// like every other activation and initializer (`"softsign"`, `{"kind":"standard"}`) and
/// come back from it.
#[test]
fn softsign_and_standard_init_round_trip_through_the_metadata() {
    let config = ModelConfig {
        layers: vec![5, 4, 3],
        activation: Activation::Softsign,
        head: Head::SoftmaxCrossEntropy,
        init: Init::Standard,
    };
    let model = Mlp::<f32>::new(config.validate().unwrap(), WeightSource::Seed(3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("softsign.safetensors");
    model.save(&path).unwrap();
    let info = glorot_mlp::read_weights_info(&path).unwrap();
    let text = serde_json::to_string(&info.config).unwrap();
    assert!(
        text.contains(r#""activation":"softsign""#) && text.contains(r#"{"kind":"standard"}"#),
        "{text}"
    );
    assert_eq!(info.config, config);
    let loaded = Mlp::<f32>::load_expecting(&path, &config).unwrap();
    assert_eq!(loaded, model);
}
