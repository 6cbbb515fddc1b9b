//! The downloader against a loopback HTTP server the test starts. No test here touches
//! any other address.

use std::collections::HashMap;

use glorot_mnist::download::{
    FetchEvent, FetchOutcome, Mirror, MirrorFailure, RemoteFile, download, fetch,
};
use glorot_mnist::{DatasetKind, Error, FileRole, idx};
use sha2::{Digest, Sha256};

use crate::support::http::{Reply, Server, refused_base};
use crate::support::{images_file, list_dir, real_dir};

const NAME: &str = "train-images-idx3-ubyte.gz";

/// A small good file and its published facts.
fn good() -> (Vec<u8>, RemoteFile) {
    let bytes = idx::gzip(&images_file(3));
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let remote = RemoteFile {
        name: NAME.to_owned(),
        bytes: bytes.len() as u64,
        sha256,
    };
    (bytes, remote)
}

fn route(prefix: &str, reply: Reply) -> (String, Reply) {
    (format!("/{prefix}/{NAME}"), reply)
}

/// Collects events as strings.
fn recorder(log: &mut Vec<String>) -> impl FnMut(&FetchEvent<'_>) + '_ {
    move |e| {
        log.push(match e {
            FetchEvent::Trying { url, .. } => format!("trying {url}"),
            FetchEvent::Rejected { url, failure, .. } => format!("rejected {url}: {failure}"),
            FetchEvent::Saved { url, .. } => format!("saved {url}"),
            FetchEvent::AlreadyPresent { file, .. } => format!("present {file}"),
            FetchEvent::Progress { .. } => "progress".to_owned(),
            _ => "other".to_owned(),
        })
    }
}

#[test]
fn a_good_file_is_accepted() {
    let (bytes, remote) = good();
    let server = Server::start(HashMap::from([route("good", Reply::Body(bytes.clone()))]));
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let (path, url) = download(
        dir.path(),
        &remote,
        &[Mirror::new(server.base("good"))],
        &mut recorder(&mut log),
    )
    .unwrap();
    assert_eq!(path, dir.path().join(NAME));
    assert_eq!(url, format!("{}{NAME}", server.base("good")));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(list_dir(dir.path()), [NAME]);
    assert_eq!(log.first().unwrap(), &format!("trying {url}"));
    assert_eq!(log.last().unwrap(), &format!("saved {url}"));
    // The saved file reads as images.
    assert_eq!(idx::read_images(&bytes, &path).unwrap().count(), 3);
}

#[test]
fn a_corrupted_file_is_rejected_and_the_next_mirror_used() {
    let (bytes, remote) = good();
    let mut corrupted = bytes.clone();
    corrupted[20] ^= 0x55; // Same size, different digest.
    let mut longer = bytes.clone();
    longer.push(0); // One byte too many.
    let server = Server::start(HashMap::from([
        route("corrupt", Reply::Body(corrupted)),
        route("longer", Reply::Body(longer)),
        route("good", Reply::Body(bytes.clone())),
    ]));
    let mirrors = ["corrupt", "longer", "good"].map(|p| Mirror::new(server.base(p)));
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let (path, url) = download(dir.path(), &remote, &mirrors, &mut recorder(&mut log)).unwrap();
    assert_eq!(url, mirrors[2].url(NAME));
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    let rejected: Vec<&String> = log.iter().filter(|l| l.starts_with("rejected")).collect();
    assert_eq!(rejected.len(), 2, "{log:?}");
    assert!(rejected[0].contains("wrong SHA-256"), "{}", rejected[0]);
    assert!(rejected[1].contains("wrong size"), "{}", rejected[1]);
    assert_eq!(list_dir(dir.path()), [NAME], "nothing but the good file");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn all_mirrors_failing_gives_one_message_and_leaves_nothing() {
    let (bytes, remote) = good();
    let mut corrupted = bytes.clone();
    corrupted[30] ^= 1;
    let server = Server::start(HashMap::from([
        route("corrupt", Reply::Body(corrupted)),
        route(
            "short",
            Reply::CutShort {
                announced: bytes.len(),
                body: bytes[..bytes.len() / 2].to_vec(),
            },
        ),
        route("small", Reply::Body(bytes[..10].to_vec())),
        route("gone", Reply::Status(503)),
    ]));
    let mut mirrors: Vec<Mirror> = ["missing", "gone", "corrupt", "short", "small"]
        .iter()
        .map(|p| Mirror::new(server.base(p)))
        .collect();
    mirrors.push(Mirror::new(refused_base()));
    let dir = tempfile::tempdir().unwrap();
    let err = download(dir.path(), &remote, &mirrors, &mut |_| {}).unwrap_err();
    let Error::Download(e) = &err else {
        panic!("expected Download, got {err:?}")
    };
    assert_eq!(e.attempts.len(), mirrors.len());
    for (a, m) in e.attempts.iter().zip(&mirrors) {
        assert_eq!(a.url, m.url(NAME));
    }
    let f: Vec<&MirrorFailure> = e.attempts.iter().map(|a| &a.failure).collect();
    assert_eq!(f[0], &MirrorFailure::HttpStatus { status: 404 });
    assert_eq!(f[1], &MirrorFailure::HttpStatus { status: 503 });
    assert!(
        matches!(f[2], MirrorFailure::DigestMismatch { expected, .. } if *expected == remote.sha256)
    );
    assert!(
        matches!(f[3], MirrorFailure::Transport { .. }),
        "cut short: {:?}",
        f[3]
    );
    assert_eq!(
        f[4],
        &MirrorFailure::SizeMismatch {
            expected: remote.bytes,
            found: 10
        }
    );
    assert!(
        matches!(f[5], MirrorFailure::Transport { .. }),
        "refused: {:?}",
        f[5]
    );

    let msg = err.to_string();
    for m in &mirrors {
        assert!(
            msg.contains(&m.url(NAME)),
            "message lacks {}: {msg}",
            m.url(NAME)
        );
    }
    for reason in [
        "HTTP status 404",
        "HTTP status 503",
        "wrong SHA-256",
        "wrong size",
        "transfer failed",
    ] {
        assert!(msg.contains(reason), "message lacks {reason:?}: {msg}");
    }
    assert!(msg.contains("To place the files by hand"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        list_dir(dir.path()).is_empty(),
        "left behind: {:?}",
        list_dir(dir.path())
    );
}

#[test]
fn a_failed_download_does_not_clobber_an_existing_file() {
    let (bytes, remote) = good();
    let server = Server::start(HashMap::from([route(
        "bad",
        Reply::Body(bytes[..5].to_vec()),
    )]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(NAME), b"old").unwrap();
    assert!(
        download(
            dir.path(),
            &remote,
            &[Mirror::new(server.base("bad"))],
            &mut |_| {}
        )
        .is_err()
    );
    assert_eq!(std::fs::read(dir.path().join(NAME)).unwrap(), b"old");
    assert_eq!(list_dir(dir.path()), [NAME]);
}

#[test]
fn no_mirrors_is_an_error_not_a_panic() {
    let (_, remote) = good();
    let dir = tempfile::tempdir().unwrap();
    let err = download(dir.path(), &remote, &[], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no mirrors were given"), "{err}");
}

#[test]
fn fetch_keeps_verified_files_and_asks_nothing() {
    let Some(real) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for path in glorot_mnist::find_files(&real).unwrap() {
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let server = Server::start(HashMap::new());
    let mut log = Vec::new();
    let fetched = fetch(
        dir.path(),
        DatasetKind::Mnist,
        &[Mirror::new(server.base("m"))],
        &mut recorder(&mut log),
    )
    .unwrap();
    assert!(
        fetched
            .iter()
            .all(|f| f.outcome == FetchOutcome::AlreadyPresent)
    );
    assert_eq!(log.len(), 4);
    assert!(server.requests().is_empty());
}

#[test]
fn fetch_replaces_a_corrupt_gz_only_with_a_verified_download() {
    let Some(real) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for path in glorot_mnist::find_files(&real).unwrap() {
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    // Corrupt the test labels: a valid gzip of the wrong content.
    let labels = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let bogus = idx::gzip(&idx::encode(&[2], &[1, 2]));
    std::fs::write(&labels, &bogus).unwrap();
    // The mirror serves garbage: the file cannot be replaced, and is left as it was.
    let name = FileRole::TestLabels.gz_name();
    let server = Server::start(HashMap::from([(
        format!("/m/{name}"),
        Reply::Body(vec![0; 100]),
    )]));
    let err = fetch(
        dir.path(),
        DatasetKind::Mnist,
        &[Mirror::new(server.base("m"))],
        &mut |_| {},
    )
    .unwrap_err();
    match &err {
        Error::Download(e) => {
            assert_eq!(e.file, name);
            assert_eq!(
                e.attempts[0].failure,
                MirrorFailure::SizeMismatch {
                    expected: 4_542,
                    found: 100
                }
            );
        }
        other => panic!("expected Download, got {other:?}"),
    }
    assert_eq!(
        server.requests(),
        [format!("/m/{name}")],
        "only the bad file is requested"
    );
    assert_eq!(std::fs::read(&labels).unwrap(), bogus);
    assert_eq!(list_dir(dir.path()).len(), 4);
}

#[test]
fn fetch_refuses_to_touch_a_corrupt_raw_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), images_file(1)).unwrap();
    let server = Server::start(HashMap::new());
    let err = fetch(
        dir.path(),
        DatasetKind::Mnist,
        &[Mirror::new(server.base("m"))],
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch {
                name: "train-images-idx3-ubyte",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(server.requests().is_empty());
}
