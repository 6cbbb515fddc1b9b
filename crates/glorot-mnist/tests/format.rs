//! IDX format: round trips and one typed error per kind of malformed input.

use std::path::Path;

use glorot_mnist::{DatasetKind, Error, PIXELS, Verify, idx, load_raw};

use crate::support::{Storage, images_file, labels_file, pixels, write_dataset, write_role};

const F: &str = "fixture-file";

fn f() -> &'static Path {
    Path::new(F)
}

/// Asserts the error names the fixture file.
#[track_caller]
fn names_file(e: &Error) {
    assert!(
        e.to_string().contains(F),
        "message does not name the file: {e}"
    );
}

#[test]
fn images_round_trip_raw_and_gzip() {
    let file = images_file(3);
    for bytes in [file.clone(), idx::gzip(&file)] {
        let images = idx::read_images(&bytes, f()).unwrap();
        assert_eq!(images.count(), 3);
        assert_eq!(images.pixels(), &pixels(3)[..]);
        assert_eq!(images.idx_bytes(), &file[..]);
    }
}

#[test]
fn labels_round_trip_raw_and_gzip() {
    let labels = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4];
    let file = labels_file(&labels);
    assert_eq!(&file[..8], &[0, 0, 8, 1, 0, 0, 0, 10]);
    assert_eq!(idx::read_labels(&file, f()).unwrap(), labels);
    assert_eq!(idx::read_labels(&idx::gzip(&file), f()).unwrap(), labels);
}

#[test]
fn zero_images_is_valid() {
    let images = idx::read_images(&images_file(0), f()).unwrap();
    assert_eq!(images.count(), 0);
    assert!(images.pixels().is_empty());
}

#[test]
fn compression_is_detected_by_content_not_name() {
    // A gzip file named like a raw one, and a raw file named like a gzip one.
    let dir = tempfile::tempdir().unwrap();
    let labels = crate::support::cycling_labels(4);
    write_dataset(dir.path(), &labels, &labels, Storage::Raw);
    let gz = idx::gzip(&labels_file(&labels));
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &gz).unwrap();
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte.gz"),
        labels_file(&labels),
    )
    .unwrap();
    let raw = load_raw(dir.path(), DatasetKind::Mnist, Verify::Skip).unwrap();
    assert!(raw.files[1].gzip, "gzip content under a raw name");
    assert!(!raw.files[3].gzip, "raw content under a .gz name");
    assert_eq!(
        raw.files[1].sha256, raw.files[3].sha256,
        "same decompressed bytes"
    );
}

#[test]
fn truncated_data() {
    let mut file = images_file(2);
    file.truncate(file.len() - 1);
    match idx::read_images(&file, f()) {
        Err(
            e @ Error::Truncated {
                expected, found, ..
            },
        ) => {
            assert_eq!((expected, found), (16 + 2 * 784, 16 + 2 * 784 - 1));
            names_file(&e);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn truncated_header() {
    // Magic cut after 3 bytes; then a labels header with no count.
    match idx::read_labels(&[0, 0, 8], f()) {
        Err(Error::Truncated {
            expected: 4,
            found: 3,
            ..
        }) => {}
        other => panic!("expected Truncated(4, 3), got {other:?}"),
    }
    match idx::read_labels(&[0, 0, 8, 1, 0, 0], f()) {
        Err(Error::Truncated {
            expected: 8,
            found: 6,
            ..
        }) => {}
        other => panic!("expected Truncated(8, 6), got {other:?}"),
    }
}

#[test]
fn wrong_magic() {
    let mut file = images_file(1);
    file[..2].copy_from_slice(&[0x12, 0x34]);
    match idx::read_images(&file, f()) {
        Err(e @ Error::BadMagic { found, .. }) => {
            assert_eq!(found, [0x12, 0x34, 0x08, 0x03]);
            assert!(e.to_string().contains("12 34 08 03"), "{e}");
            names_file(&e);
        }
        other => panic!("expected BadMagic, got {other:?}"),
    }
}

#[test]
fn wrong_element_type() {
    // 0x0D is IDX's float type: valid IDX, not MNIST.
    let mut file = labels_file(&[1, 2]);
    file[2] = 0x0D;
    match idx::read_labels(&file, f()) {
        Err(e @ Error::ElementType { found: 0x0D, .. }) => names_file(&e),
        other => panic!("expected ElementType, got {other:?}"),
    }
}

#[test]
fn wrong_rank() {
    // A labels file where images are expected, and the reverse.
    match idx::read_images(&labels_file(&[1, 2]), f()) {
        Err(
            e @ Error::WrongRank {
                expected: 3,
                found: 1,
                ..
            },
        ) => names_file(&e),
        other => panic!("expected WrongRank(3, 1), got {other:?}"),
    }
    match idx::read_labels(&images_file(1), f()) {
        Err(Error::WrongRank {
            expected: 1,
            found: 3,
            ..
        }) => {}
        other => panic!("expected WrongRank(1, 3), got {other:?}"),
    }
}

#[test]
fn wrong_image_size() {
    let file = idx::encode(&[1, 27, 29], &[0; 27 * 29]);
    match idx::read_images(&file, f()) {
        Err(
            e @ Error::WrongImageSize {
                found_rows: 27,
                found_cols: 29,
                ..
            },
        ) => {
            assert!(
                e.to_string().contains("expected 28x28 pixels, found 27x29"),
                "{e}"
            );
        }
        other => panic!("expected WrongImageSize, got {other:?}"),
    }
}

#[test]
fn label_ten() {
    match idx::read_labels(&labels_file(&[3, 9, 10, 11]), f()) {
        Err(
            e @ Error::LabelOutOfRange {
                index: 2,
                found: 10,
                ..
            },
        ) => names_file(&e),
        other => panic!("expected LabelOutOfRange at 2, got {other:?}"),
    }
}

#[test]
fn trailing_bytes() {
    let mut file = labels_file(&[1, 2, 3]);
    file.push(0);
    match idx::read_labels(&file, f()) {
        Err(
            e @ Error::TrailingBytes {
                expected: 11,
                found: 12,
                ..
            },
        ) => names_file(&e),
        other => panic!("expected TrailingBytes(11, 12), got {other:?}"),
    }
    // Inside a gzip stream too.
    let mut file = images_file(1);
    file.extend_from_slice(&[0; 5]);
    match idx::read_images(&idx::gzip(&file), f()) {
        Err(Error::TrailingBytes {
            expected, found, ..
        }) => assert_eq!(found - expected, 5),
        other => panic!("expected TrailingBytes, got {other:?}"),
    }
}

#[test]
fn corrupt_gzip() {
    let good = idx::gzip(&images_file(2));
    // The gzip trailer's CRC-32 no longer matches the content.
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    // The stream stops in the middle.
    let cut = good[..good.len() / 2].to_vec();
    // Garbage after the gzip magic.
    let garbage = vec![0x1f, 0x8b, 0xde, 0xad, 0xbe, 0xef];
    for (what, bytes) in [
        ("bad CRC", bad_crc),
        ("cut stream", cut),
        ("garbage", garbage),
    ] {
        match idx::read_images(&bytes, f()) {
            Err(e @ Error::Gzip { .. }) => names_file(&e),
            other => panic!("{what}: expected Gzip, got {other:?}"),
        }
    }
}

#[test]
fn empty_file() {
    for bytes in [Vec::new(), idx::gzip(&[])] {
        match idx::read_images(&bytes, f()) {
            Err(e @ Error::Empty { .. }) => names_file(&e),
            other => panic!("expected Empty, got {other:?}"),
        }
    }
    // On disk, the error names the path.
    let dir = tempfile::tempdir().unwrap();
    let labels = [1, 2];
    write_dataset(dir.path(), &labels, &labels, Storage::Gzip);
    let empty = write_role(
        dir.path(),
        glorot_mnist::FileRole::TestImages,
        &[],
        Storage::Raw,
    );
    match load_raw(dir.path(), DatasetKind::Mnist, Verify::Skip) {
        Err(Error::Empty { file }) => assert_eq!(file, empty),
        other => panic!("expected Empty, got {other:?}"),
    }
}

#[test]
fn count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_dataset(dir.path(), &[1, 2, 3], &[4, 5], Storage::Gzip);
    // Four training labels for three training images.
    write_role(
        dir.path(),
        glorot_mnist::FileRole::TrainLabels,
        &labels_file(&[1, 2, 3, 4]),
        Storage::Gzip,
    );
    match load_raw(dir.path(), DatasetKind::Mnist, Verify::Skip) {
        Err(
            e @ Error::CountMismatch {
                images: 3,
                labels: 4,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains(&paths[0].display().to_string()), "{msg}");
            assert!(msg.contains(&paths[1].display().to_string()), "{msg}");
        }
        other => panic!("expected CountMismatch(3, 4), got {other:?}"),
    }
}

#[test]
fn generic_idx_of_any_rank() {
    let file = idx::encode(&[2, 3, 1, 2], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let read = idx::read_idx(&idx::gzip(&file), f()).unwrap();
    assert_eq!(read.dims, [2, 3, 1, 2]);
    assert_eq!(read.data.len(), 12);
    assert_eq!(PIXELS, 784);
}

#[test]
#[should_panic(expected = "do not match")]
fn writer_rejects_inconsistent_dims() {
    let _ = idx::encode(&[2, 2], &[0; 3]);
}

#[test]
fn files_read_from_disk_as_from_memory_raw_or_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let images = images_file(3);
    let labels = labels_file(&[4, 0, 9]);
    for (name, bytes) in [
        ("images", images.clone()),
        ("images.gz", idx::gzip(&images)),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let read = idx::read_images_file(&path).unwrap();
        assert_eq!(read.count(), 3);
        assert_eq!(read.pixels(), &pixels(3)[..]);
    }
    let path = dir.path().join("labels.gz");
    std::fs::write(&path, idx::gzip(&labels)).unwrap();
    assert_eq!(idx::read_labels_file(&path).unwrap(), [4, 0, 9]);
    // A truncated images file, and a labels file given as images: errors naming the file.
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, idx::gzip(&images[..1000])).unwrap();
    let e = idx::read_images_file(&cut).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
    assert!(e.to_string().contains("cut.gz"), "{e}");
    let e = idx::read_images_file(&path).unwrap_err();
    assert!(matches!(e, Error::WrongRank { .. }), "{e:?}");
    let e = idx::read_images_file(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn pixel_scale_apply_is_loads_scaling() {
    let bytes = ndarray::Array2::from_shape_fn((2, PIXELS), |(i, p)| ((i * 131 + p) % 256) as u8);
    let scaled: ndarray::Array2<f32> = glorot_mnist::PixelScale::Div256.apply(bytes.view());
    // byte / 256, exact in f32 (the notebook's scaling; 255 -> 0.99609375).
    assert!(
        bytes
            .iter()
            .zip(&scaled)
            .all(|(&b, &x)| x == f32::from(b) / 256.0)
    );
    let by255: ndarray::Array2<f64> = glorot_mnist::PixelScale::Div255.apply(bytes.view());
    assert_eq!(by255[[0, 255]], 1.0);
}
