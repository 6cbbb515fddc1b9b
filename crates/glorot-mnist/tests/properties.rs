//! Property tests: round trips, and no input makes a reader panic.

use std::path::Path;

use glorot_mnist::{DatasetKind, Error, FileRole, PIXELS, Verify, digest_dir, idx, load_raw};
use proptest::prelude::*;

use crate::support::{Storage, images_file, labels_file, write_dataset};

fn p() -> &'static Path {
    Path::new("prop")
}

/// A mutation of a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len().max(1);
        match m {
            Mutation::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % n] = *b;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Append(tail) => bytes.extend_from_slice(tail),
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
        }
    }
    bytes
}

/// Runs every reader; each must return (not panic), and an `Ok` must be consistent.
fn read_all(bytes: &[u8]) {
    if let Ok(images) = idx::read_images(bytes, p()) {
        assert_eq!(images.pixels().len(), images.count() * PIXELS);
    }
    if let Ok(labels) = idx::read_labels(bytes, p()) {
        assert!(labels.iter().all(|&l| l <= 9));
    }
    if let Ok(array) = idx::read_idx(bytes, p()) {
        let n: u64 = array.dims.iter().map(|&d| u64::from(d)).product();
        assert_eq!(array.data.len() as u64, n);
    }
    // Errors must render.
    if let Err(e) = idx::read_images(bytes, p()) {
        assert!(!e.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn idx_round_trip(dims in proptest::collection::vec(0u32..5, 0..5), seed in any::<u8>(), gz in any::<bool>()) {
        let n: usize = dims.iter().map(|&d| d as usize).product();
        let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let file = idx::encode(&dims, &data);
        let bytes = if gz { idx::gzip(&file) } else { file };
        let read = idx::read_idx(&bytes, p()).unwrap();
        prop_assert_eq!(read.dims, dims);
        prop_assert_eq!(read.data, data);
    }

    #[test]
    fn labels_round_trip(labels in proptest::collection::vec(0u8..10, 0..300), gz in any::<bool>()) {
        let file = labels_file(&labels);
        let bytes = if gz { idx::gzip(&file) } else { file };
        prop_assert_eq!(idx::read_labels(&bytes, p()).unwrap(), labels);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        prefix in prop_oneof![Just(vec![0u8, 0, 8, 3]), Just(vec![0u8, 0, 8, 1]), Just(vec![0x1fu8, 0x8b, 8, 0])],
        rest in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = prefix;
        bytes.extend(rest);
        read_all(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(
        which in 0..4usize,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let labels = [5u8, 0, 4, 1, 9];
        let base = match which {
            0 => images_file(2),
            1 => labels_file(&labels),
            2 => idx::gzip(&images_file(2)),
            _ => idx::gzip(&labels_file(&labels)),
        };
        let bytes = apply(base, &mutations);
        read_all(&bytes);
        // A mutated raw file that still reads as labels has labels 0..=9 (checked in
        // read_all); one that does not gives a typed error, never an I/O one.
        if let Err(e) = idx::read_labels(&bytes, p()) {
            prop_assert!(!matches!(e, Error::Io { .. }), "unexpected {:?}", e);
        }
    }

    /// The files as a directory is read (header first, streamed through gzip, bounded):
    /// one of the four replaced by arbitrary bytes, raw or behind a gzip magic.
    #[test]
    fn arbitrary_dataset_files_never_panic(
        which in 0..4usize,
        gz_prefix in any::<bool>(),
        rest in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_dataset(dir.path(), &[1, 2, 3], &[4], Storage::Raw);
        let mut bytes = if gz_prefix { vec![0x1f, 0x8b, 8, 0] } else { Vec::new() };
        bytes.extend(rest);
        std::fs::write(&paths[which], &bytes).unwrap();
        match load_raw(dir.path(), DatasetKind::Mnist, Verify::Skip) {
            Ok(raw) => prop_assert_eq!(raw.files.len(), FileRole::ALL.len()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = digest_dir(dir.path(), DatasetKind::Mnist);
    }

    /// A valid gzip member of arbitrary content under a dataset file's name.
    #[test]
    fn arbitrary_gzip_content_never_panics(
        which in 0..4usize,
        content in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_dataset(dir.path(), &[1, 2, 3], &[4], Storage::Raw);
        std::fs::write(&paths[which], idx::gzip(&content)).unwrap();
        if let Err(e) = load_raw(dir.path(), DatasetKind::Mnist, Verify::Skip) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
