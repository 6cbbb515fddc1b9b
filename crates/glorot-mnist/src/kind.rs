//! Which dataset, which file, and the published facts about each file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The datasets this crate reads. Both use the same four file names and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DatasetKind {
    /// LeCun, Cortes and Burges' handwritten digits.
    #[default]
    Mnist,
    /// Zalando's article images (Xiao, Rasul and Vollgraf 2017), a drop-in replacement.
    FashionMnist,
}

impl DatasetKind {
    /// Every supported dataset.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// Short name, also the directory name under a data root: `mnist`, `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The environment variable naming a directory that holds this dataset's four files:
    /// `GLOROT_MNIST_DIR` or `GLOROT_FASHION_MNIST_DIR`.
    pub fn env_var(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "GLOROT_MNIST_DIR",
            DatasetKind::FashionMnist => "GLOROT_FASHION_MNIST_DIR",
        }
    }

    /// The environment variable listing mirrors to download this dataset from instead of
    /// the public ones ([`DatasetKind::default_mirrors`]), comma-separated:
    /// `GLOROT_MNIST_MIRROR` or `GLOROT_FASHION_MNIST_MIRROR`.
    pub fn mirror_env_var(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "GLOROT_MNIST_MIRROR",
            DatasetKind::FashionMnist => "GLOROT_FASHION_MNIST_MIRROR",
        }
    }

    /// Directories where a system package installs this dataset, searched after the
    /// workspace's data root. Debian's `dataset-fashion-mnist` installs the `.gz` files in
    /// `/usr/share/datasets/fashion-mnist`.
    pub fn system_dirs(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &[],
            DatasetKind::FashionMnist => &["/usr/share/datasets/fashion-mnist"],
        }
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// Published sizes and digests of one of this dataset's files.
    pub fn known(self, role: FileRole) -> &'static KnownFile {
        let table = match self {
            DatasetKind::Mnist => &MNIST,
            DatasetKind::FashionMnist => &FASHION_MNIST,
        };
        &table[role as usize]
    }

    /// Public mirrors serving the four `.gz` files, in the order they are tried: those
    /// torchvision and TensorFlow Datasets use.
    pub fn default_mirrors(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ],
            DatasetKind::FashionMnist => &[
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ],
        }
    }

    /// Which known dataset, if any, has a file of this role with this decompressed SHA-256.
    pub fn identify(role: FileRole, sha256: &str) -> Option<DatasetKind> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.known(role).idx_sha256 == sha256)
    }
}

impl DatasetKind {
    /// Which known file, of any dataset and any role, has this decompressed SHA-256 (for
    /// files under another file's name, such as swapped training and test files).
    pub fn identify_file(sha256: &str) -> Option<(DatasetKind, FileRole)> {
        DatasetKind::ALL.into_iter().find_map(|k| {
            FileRole::ALL
                .into_iter()
                .find(|&r| k.known(r).idx_sha256 == sha256)
                .map(|r| (k, r))
        })
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error from parsing a [`DatasetKind`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataset {0:?}: expected `mnist` or `fashion-mnist`")]
pub struct UnknownDataset(pub String);

impl FromStr for DatasetKind {
    type Err = UnknownDataset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownDataset(s.to_owned()))
    }
}

/// The four files of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// `train-images-idx3-ubyte`: 60,000 images.
    TrainImages = 0,
    /// `train-labels-idx1-ubyte`: 60,000 labels.
    TrainLabels = 1,
    /// `t10k-images-idx3-ubyte`: 10,000 images.
    TestImages = 2,
    /// `t10k-labels-idx1-ubyte`: 10,000 labels.
    TestLabels = 3,
}

impl FileRole {
    /// All four, in a fixed order.
    pub const ALL: [FileRole; 4] = [
        FileRole::TrainImages,
        FileRole::TrainLabels,
        FileRole::TestImages,
        FileRole::TestLabels,
    ];

    /// The canonical decompressed file name (the compressed one adds `.gz`).
    pub fn file_name(self) -> &'static str {
        match self {
            FileRole::TrainImages => "train-images-idx3-ubyte",
            FileRole::TrainLabels => "train-labels-idx1-ubyte",
            FileRole::TestImages => "t10k-images-idx3-ubyte",
            FileRole::TestLabels => "t10k-labels-idx1-ubyte",
        }
    }

    /// The compressed file name the mirrors serve.
    pub fn gz_name(self) -> String {
        format!("{}.gz", self.file_name())
    }
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Published facts about one file of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    /// Which file.
    pub role: FileRole,
    /// Length of the decompressed IDX file in bytes.
    pub idx_bytes: u64,
    /// SHA-256 of the decompressed IDX file, lowercase hex. This is what a local directory
    /// is verified against, whatever its compression.
    pub idx_sha256: &'static str,
    /// Length of the `.gz` the public mirrors serve.
    pub gz_bytes: u64,
    /// SHA-256 of the `.gz` the public mirrors serve. A download is accepted when it
    /// matches this and `gz_bytes`, or when it is a recompressed copy: gzip data that
    /// decompresses to exactly `idx_bytes` bytes with SHA-256 `idx_sha256`.
    pub gz_sha256: &'static str,
}

// MNIST: decompressed digests from `../shared/README.md` (checked against the files in
// `../shared/mnist`); `.gz` sizes and SHA-256 as listed by TensorFlow Datasets
// (`url_checksums/mnist.txt`), also in `../shared/README.md`.
const MNIST: [KnownFile; 4] = [
    KnownFile {
        role: FileRole::TrainImages,
        idx_bytes: 47_040_016,
        idx_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        gz_bytes: 9_912_422,
        gz_sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    },
    KnownFile {
        role: FileRole::TrainLabels,
        idx_bytes: 60_008,
        idx_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        gz_bytes: 28_881,
        gz_sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    KnownFile {
        role: FileRole::TestImages,
        idx_bytes: 7_840_016,
        idx_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        gz_bytes: 1_648_877,
        gz_sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    },
    KnownFile {
        role: FileRole::TestLabels,
        idx_bytes: 10_008,
        idx_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        gz_bytes: 4_542,
        gz_sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
];

// Fashion-MNIST: `.gz` sizes and SHA-256 as listed by TensorFlow Datasets
// (`url_checksums/fashion_mnist.txt`, for the eu-central-1 S3 mirror). Decompressed
// SHA-256 as published in several independent public projects (each derived from archives
// matching Zalando's published MD5s), and reproduced from Debian's
// `dataset-fashion-mnist` package (whose recompressed `.gz` differ, their content not).
const FASHION_MNIST: [KnownFile; 4] = [
    KnownFile {
        role: FileRole::TrainImages,
        idx_bytes: 47_040_016,
        idx_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        gz_bytes: 26_421_880,
        gz_sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    },
    KnownFile {
        role: FileRole::TrainLabels,
        idx_bytes: 60_008,
        idx_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        gz_bytes: 29_515,
        gz_sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
    KnownFile {
        role: FileRole::TestImages,
        idx_bytes: 7_840_016,
        idx_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        gz_bytes: 4_422_102,
        gz_sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    },
    KnownFile {
        role: FileRole::TestLabels,
        idx_bytes: 10_008,
        idx_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        gz_bytes: 5_148,
        gz_sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_indexed_by_role() {
        for kind in DatasetKind::ALL {
            for role in FileRole::ALL {
                assert_eq!(kind.known(role).role, role);
                let k = kind.known(role);
                for digest in [k.idx_sha256, k.gz_sha256] {
                    assert_eq!(digest.len(), 64);
                    assert!(
                        digest
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    );
                }
            }
        }
    }

    #[test]
    fn idx_sizes_follow_from_counts() {
        // 16-byte header + n * 784 pixels; 8-byte header + n labels.
        for kind in DatasetKind::ALL {
            assert_eq!(
                kind.known(FileRole::TrainImages).idx_bytes,
                16 + 60_000 * 784
            );
            assert_eq!(kind.known(FileRole::TrainLabels).idx_bytes, 8 + 60_000);
            assert_eq!(
                kind.known(FileRole::TestImages).idx_bytes,
                16 + 10_000 * 784
            );
            assert_eq!(kind.known(FileRole::TestLabels).idx_bytes, 8 + 10_000);
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in DatasetKind::ALL {
            assert_eq!(kind.name().parse::<DatasetKind>(), Ok(kind));
        }
        assert!("emnist".parse::<DatasetKind>().is_err());
    }

    #[test]
    fn identify_tells_datasets_apart() {
        let fashion = DatasetKind::FashionMnist
            .known(FileRole::TestLabels)
            .idx_sha256;
        assert_eq!(
            DatasetKind::identify(FileRole::TestLabels, fashion),
            Some(DatasetKind::FashionMnist)
        );
        assert_eq!(DatasetKind::identify(FileRole::TrainLabels, fashion), None);
    }
}
