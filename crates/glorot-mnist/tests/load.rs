//! Loading synthetic datasets: splits, scaling, verification.

use std::path::Path;

use glorot_mnist::{
    DatasetKind, DigestCheck, Error, FileRole, LoadOptions, PIXELS, PixelScale, Split, Verify,
    digest_dir, load, load_as, load_raw, verify_dir,
};

use crate::support::{Storage, cycling_labels, pixels, write_dataset};

fn custom(validation_size: usize) -> LoadOptions {
    LoadOptions {
        validation_size,
        verify: Verify::Skip,
        ..LoadOptions::default()
    }
}

#[test]
fn split_takes_validation_from_the_end_of_the_training_file() {
    let dir = tempfile::tempdir().unwrap();
    let train = cycling_labels(12);
    write_dataset(dir.path(), &train, &[7, 3], Storage::Gzip);
    let data = load(dir.path(), &custom(5)).unwrap();
    assert_eq!(data.train.labels, train[..7]);
    assert_eq!(data.validation.labels, train[7..]);
    assert_eq!(data.test.labels, [7, 3]);
    assert_eq!(data.train.images.dim(), (7, PIXELS));
    assert_eq!(data.validation.images.dim(), (5, PIXELS));
    assert_eq!(data.test.images.dim(), (2, PIXELS));
    // Validation row 0 is training image 7, scaled by 1/256.
    let src = pixels(12);
    for (j, &v) in data.validation.images.row(0).iter().enumerate() {
        assert_eq!(v, f32::from(src[7 * PIXELS + j]) / 256.0);
    }
    for split in Split::ALL {
        assert_eq!(data.split(split).len(), data.split(split).images.nrows());
    }
}

#[test]
fn validation_size_zero_and_all() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &cycling_labels(4), &[1], Storage::Raw);
    let none = load(dir.path(), &custom(0)).unwrap();
    assert_eq!((none.train.len(), none.validation.len()), (4, 0));
    assert!(none.validation.is_empty());
    let all = load(dir.path(), &custom(4)).unwrap();
    assert_eq!((all.train.len(), all.validation.len()), (0, 4));
}

#[test]
fn validation_larger_than_training_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &cycling_labels(4), &[1], Storage::Raw);
    match load(dir.path(), &custom(5)) {
        Err(Error::ValidationTooLarge {
            requested: 5,
            available: 4,
        }) => {}
        other => panic!("expected ValidationTooLarge, got {other:?}"),
    }
}

#[test]
fn pixel_scales_in_f32_and_f64() {
    // Image 0 pixel 0 is 0; pixel p is 7p mod 256, so pixel 73 holds 511 mod 256 = 255.
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[1, 2], &[3], Storage::Gzip);
    assert_eq!(pixels(1)[73], 255);
    let d256 = load(dir.path(), &custom(0)).unwrap();
    assert_eq!(d256.train.images[[0, 73]], 0.996_093_75);
    let d255 = load(
        dir.path(),
        &LoadOptions {
            scale: PixelScale::Div255,
            ..custom(0)
        },
    )
    .unwrap();
    assert_eq!(d255.train.images[[0, 73]], 1.0);
    let f64s = load_as::<f64>(
        dir.path(),
        &LoadOptions {
            scale: PixelScale::Div255,
            ..custom(0)
        },
    )
    .unwrap();
    // Computed in f64, not widened from f32.
    let p1 = pixels(1)[1];
    assert_eq!(f64s.train.images[[0, 1]], f64::from(p1) / 255.0);
    assert_eq!(f64s.train.labels, [1, 2]);
}

#[test]
fn one_hot_targets_for_training() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[5, 0, 4, 1], &[9], Storage::Gzip);
    let data = load(dir.path(), &custom(1)).unwrap();
    let t = data.train.one_hot_labels::<f32>();
    assert_eq!(t.dim(), (3, 10));
    for (row, label) in t.rows().into_iter().zip([5, 0, 4]) {
        assert_eq!(row.sum(), 1.0);
        assert_eq!(row[label], 1.0);
    }
    assert_eq!(
        data.validation.class_counts(),
        [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn custom_data_fails_digest_verification_with_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_dataset(dir.path(), &[1, 2], &[3], Storage::Gzip);
    match load(dir.path(), &LoadOptions::default()) {
        Err(e @ Error::DigestMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&paths[0].display().to_string()), "{msg}");
            assert!(
                msg.contains(DatasetKind::Mnist.known(FileRole::TrainImages).idx_sha256),
                "{msg}"
            );
            assert!(msg.contains("glorot data fetch --dataset mnist"), "{msg}");
            assert!(msg.contains("--no-verify"), "{msg}");
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
}

#[test]
fn a_path_of_the_wrong_kind_is_named_not_missing() {
    #[track_caller]
    fn check(dir: &Path, what: &str) {
        match load(dir, &LoadOptions::default()) {
            Err(e @ Error::NotAFile { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(what), "{msg}");
                assert!(msg.contains("train-labels-idx1-ubyte"), "{msg}");
            }
            other => panic!("expected NotAFile ({what}), got {other:?}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let paths = write_dataset(dir.path(), &[1, 2], &[3], Storage::Raw);
    std::fs::remove_file(&paths[1]).unwrap();
    std::fs::create_dir(&paths[1]).unwrap();
    check(dir.path(), "is a directory");
    #[cfg(unix)]
    {
        std::fs::remove_dir(&paths[1]).unwrap();
        std::os::unix::fs::symlink(&paths[1], &paths[1]).unwrap();
        check(dir.path(), "is a symbolic link loop");
        std::fs::remove_file(&paths[1]).unwrap();
        // A FIFO would block a reader forever; `mkfifo` is POSIX.
        let made = std::process::Command::new("mkfifo")
            .arg(&paths[1])
            .status()
            .is_ok_and(|s| s.success());
        if made {
            check(dir.path(), "is a FIFO");
        }
    }
}

#[test]
fn a_file_under_another_files_name_is_named() {
    // The labels of the test split are MNIST's t10k labels only on the real data; here
    // the digest table is checked directly: every known file is found by its digest.
    for kind in DatasetKind::ALL {
        for role in FileRole::ALL {
            let sha = kind.known(role).idx_sha256;
            assert_eq!(DatasetKind::identify_file(sha), Some((kind, role)));
        }
    }
    assert_eq!(DatasetKind::identify_file("00"), None);
}

#[test]
fn digest_dir_reports_every_file_and_verify_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[1, 2], &[3], Storage::Raw);
    let digests = digest_dir(dir.path(), DatasetKind::FashionMnist).unwrap();
    assert_eq!(digests.len(), 4);
    for (d, role) in digests.iter().zip(FileRole::ALL) {
        assert_eq!(d.role, role);
        assert!(!d.gzip);
        assert_eq!(d.file_bytes, d.idx_bytes);
        let expected = DatasetKind::FashionMnist.known(role).idx_sha256;
        assert_eq!(d.check, DigestCheck::Mismatch { expected });
        assert_eq!(d.sha256.len(), 64);
    }
    assert!(matches!(
        verify_dir(dir.path(), DatasetKind::FashionMnist),
        Err(Error::DigestMismatch {
            dataset: DatasetKind::FashionMnist,
            ..
        })
    ));
}

#[test]
fn digests_are_of_decompressed_bytes() {
    // Same content raw and gzip: same digest. The digest of the labels file [1, 2] is
    // that of the 10 bytes 00 00 08 01 00 00 00 02 01 02 (sha256sum of those bytes).
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_dataset(a.path(), &[1, 2], &[3], Storage::Raw);
    write_dataset(b.path(), &[1, 2], &[3], Storage::Gzip);
    let (da, db) = (
        load_raw(a.path(), DatasetKind::Mnist, Verify::Skip).unwrap(),
        load_raw(b.path(), DatasetKind::Mnist, Verify::Skip).unwrap(),
    );
    for (x, y) in da.files.iter().zip(&db.files) {
        assert_eq!(x.sha256, y.sha256);
        assert_eq!(x.check, DigestCheck::NotChecked);
        assert!(y.gzip && y.file_bytes != y.idx_bytes);
    }
    // `printf '\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02' | sha256sum`
    assert_eq!(
        da.files[1].sha256,
        "7d8d5bbc33d5b40c823ac6678cbbc756ecb1462a2b5bb7feefb0e7a953dbb0f9"
    );
}

#[test]
fn raw_dataset_views() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &cycling_labels(6), &[0, 9], Storage::Gzip);
    let raw = load_raw(dir.path(), DatasetKind::Mnist, Verify::Skip).unwrap();
    assert_eq!((raw.train_len(), raw.test_len()), (6, 2));
    assert_eq!(raw.labels(Split::Validation, 2).unwrap(), [4, 5]);
    assert_eq!(raw.range(Split::Train, 2).unwrap(), 0..4);
    let px = raw.pixels(Split::Validation, 2).unwrap();
    assert_eq!(px.dim(), (2, PIXELS));
    assert_eq!(px.row(1).to_vec(), pixels(6)[5 * PIXELS..].to_vec());
    assert_eq!(raw.pixels(Split::Test, 2).unwrap().nrows(), 2);
}
