//! The real datasets, when configured (skipped with a note otherwise).

use std::sync::OnceLock;

use glorot_mnist::{
    DatasetKind, DigestCheck, Error, FileRole, LoadOptions, PixelScale, RawDataset, Split, Verify,
    class_counts, digest_dir, load_raw, verify_dir,
};

use crate::support::real_dir;

/// The real MNIST, read once per test binary.
fn mnist() -> Option<&'static RawDataset> {
    static DATA: OnceLock<Option<RawDataset>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = real_dir(DatasetKind::Mnist)?;
        Some(load_raw(&dir, DatasetKind::Mnist, Verify::Digests).unwrap())
    })
    .as_ref()
}

#[test]
fn mnist_digests_match_the_shared_readme() {
    let Some(data) = mnist() else { return };
    // SHA-256 of the decompressed files, from `../shared/README.md`.
    let expected = [
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ];
    let sizes = [47_040_016, 60_008, 7_840_016, 10_008];
    for ((file, sha), bytes) in data.files.iter().zip(expected).zip(sizes) {
        assert_eq!(file.sha256, sha, "{}", file.path.display());
        assert_eq!(file.idx_bytes, bytes);
        assert_eq!(file.check, DigestCheck::Match);
    }
    assert_eq!((data.train_len(), data.test_len()), (60_000, 10_000));
}

#[test]
fn mnist_first_ten_training_labels() {
    let Some(data) = mnist() else { return };
    // `../shared/README.md`: "the first ten training labels are 5 0 4 1 9 2 1 3 1 4".
    assert_eq!(
        data.labels(Split::Train, 10_000).unwrap()[..10],
        [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    );
}

#[test]
fn mnist_validation_holds_1064_ones() {
    let Some(data) = mnist() else { return };
    // `../shared/README.md`, and the notebook's 10.64% for a network that always says "1".
    let validation = data.labels(Split::Validation, 10_000).unwrap();
    assert_eq!(validation.len(), 10_000);
    assert_eq!(class_counts(validation)[1], 1_064);
    let total: usize = Split::ALL
        .iter()
        .map(|&s| {
            class_counts(data.labels(s, 10_000).unwrap())
                .iter()
                .sum::<usize>()
        })
        .sum();
    assert_eq!(total, 70_000);
}

#[test]
fn mnist_pixel_255_maps_to_0_99609375() {
    let Some(data) = mnist() else { return };
    let split = data.split::<f32>(10_000, PixelScale::Div256).unwrap();
    let raw = data.pixels(Split::Train, 10_000).unwrap();
    let at = raw
        .indexed_iter()
        .find(|(_, b)| **b == 255)
        .map(|(i, _)| i)
        .unwrap();
    // byte / 256, as the notebook's mnist.pkl.gz: 255/256 = 0.99609375.
    assert_eq!(split.train.images[at], 0.996_093_75);
    assert_eq!(split.train.images.dim(), (50_000, 784));
    assert_eq!(split.train.one_hot_labels::<f32>().row(0)[5], 1.0);
    let div255 = data.split::<f32>(10_000, PixelScale::Div255).unwrap();
    assert_eq!(div255.train.images[at], 1.0);
}

#[test]
fn mnist_mean_training_pixel() {
    let Some(data) = mnist() else { return };
    // `../shared/README.md`: "the mean training pixel is 0.1307 of full scale" (the
    // well-known normalization constant, over all 60,000 training images, byte / 255).
    let train = data.pixels(Split::Train, 0).unwrap();
    let mean = train.iter().map(|&b| f64::from(b)).sum::<f64>() / train.len() as f64 / 255.0;
    assert!((mean - 0.1307).abs() < 5e-5, "{mean}");
}

#[test]
fn mnist_is_not_fashion_mnist() {
    let Some(dir) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let digests = digest_dir(&dir, DatasetKind::FashionMnist).unwrap();
    assert!(
        digests
            .iter()
            .all(|d| matches!(d.check, DigestCheck::Mismatch { .. }))
    );
    match verify_dir(&dir, DatasetKind::FashionMnist) {
        Err(
            e @ Error::DigestMismatch {
                looks_like: Some(DatasetKind::Mnist),
                ..
            },
        ) => {
            assert!(e.to_string().contains("these bytes are mnist's"), "{e}");
        }
        other => panic!("expected DigestMismatch recognising MNIST, got {other:?}"),
    }
}

#[test]
fn swapped_files_are_named_not_called_corrupt() {
    let Some(dir) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let swapped = tempfile::tempdir().unwrap();
    for role in FileRole::ALL {
        // The training labels' name holds the test labels.
        let source = match role {
            FileRole::TrainLabels => FileRole::TestLabels,
            other => other,
        };
        let from = [source.gz_name(), source.file_name().to_owned()]
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .unwrap();
        let name = if from.extension().is_some_and(|e| e == "gz") {
            role.gz_name()
        } else {
            role.file_name().to_owned()
        };
        std::fs::copy(&from, swapped.path().join(name)).unwrap();
    }
    match verify_dir(swapped.path(), DatasetKind::Mnist) {
        Err(
            e @ Error::DigestMismatch {
                known_as: Some((DatasetKind::Mnist, FileRole::TestLabels)),
                ..
            },
        ) => {
            assert!(
                e.to_string()
                    .contains("this is mnist's t10k-labels-idx1-ubyte file"),
                "{e}"
            );
        }
        other => panic!("expected DigestMismatch naming the t10k labels, got {other:?}"),
    }
}

#[test]
fn mnist_load_with_default_options() {
    let Some(dir) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let data = glorot_mnist::load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(
        (data.train.len(), data.validation.len(), data.test.len()),
        (50_000, 10_000, 10_000)
    );
    assert_eq!(data.files.len(), 4);
    assert!(data.test.labels.iter().all(|&l| l <= 9));
}

#[test]
fn fashion_mnist_digests_and_balanced_classes() {
    let Some(dir) = real_dir(DatasetKind::FashionMnist) else {
        return;
    };
    let data = load_raw(&dir, DatasetKind::FashionMnist, Verify::Digests).unwrap();
    for file in &data.files {
        assert_eq!(
            file.sha256,
            DatasetKind::FashionMnist.known(file.role).idx_sha256
        );
    }
    assert_eq!(data.files[0].role, FileRole::TrainImages);
    // Zalando's README: 6,000 training and 1,000 test examples per class.
    assert_eq!(
        class_counts(data.labels(Split::Train, 0).unwrap()),
        [6_000; 10]
    );
    assert_eq!(
        class_counts(data.labels(Split::Test, 0).unwrap()),
        [1_000; 10]
    );
}
