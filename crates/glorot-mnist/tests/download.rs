//! The downloader against a loopback HTTP server the test starts. No test here touches
//! any other address.

use std::collections::HashMap;

use glorot_mnist::download::{
    Content, FetchEvent, FetchOutcome, Mirror, MirrorFailure, RemoteFile, Verified, download, fetch,
};
use glorot_mnist::{DatasetKind, Error, FileRole, idx};
use sha2::{Digest, Sha256};

use crate::support::http::{Reply, Server, refused_base};
use crate::support::{images_file, list_dir, real_dir};

const NAME: &str = "train-images-idx3-ubyte.gz";

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small good file and its published facts (the `.gz` only, as for a file whose
/// content is not known).
fn good() -> (Vec<u8>, RemoteFile) {
    let bytes = idx::gzip(&images_file(3));
    let remote = RemoteFile {
        name: NAME.to_owned(),
        bytes: bytes.len() as u64,
        sha256: sha256(&bytes),
        idx: None,
    };
    (bytes, remote)
}

/// The same file published with its decompressed content too, as glorot's own datasets
/// are ([`RemoteFile::from`] a `KnownFile`): the content, the published `.gz`, and
/// the facts.
fn good_with_content() -> (Vec<u8>, Vec<u8>, RemoteFile) {
    let content = images_file(3);
    let (published, mut remote) = good();
    remote.idx = Some(Content {
        bytes: content.len() as u64,
        sha256: sha256(&content),
    });
    (content, published, remote)
}

/// `bytes` gzip-compressed at `level` (0: stored blocks, 9: best), as another mirror
/// might have recompressed them.
fn gzip_at(bytes: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
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
    let saved = download(
        dir.path(),
        &remote,
        &[Mirror::new(server.base("good"))],
        &mut recorder(&mut log),
    )
    .unwrap();
    let (path, url) = (saved.path, saved.url);
    assert_eq!(saved.verified, Verified::Published);
    assert_eq!(path, dir.path().join(NAME));
    assert_eq!(url, format!("{}{NAME}", server.base("good")));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(list_dir(dir.path()), [NAME]);
    assert_eq!(log.first().unwrap(), &format!("trying {url}"));
    assert_eq!(log.last().unwrap(), &format!("saved {url}"));
    // The saved file reads as images.
    assert_eq!(idx::read_images(&bytes, &path).unwrap().count(), 3);
    // It is created like every other file glorot writes (0666 less the umask), not 0600
    // (tempfile's default): compared with a file this process creates plainly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&plain));
    }
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
    let saved = download(dir.path(), &remote, &mirrors, &mut recorder(&mut log)).unwrap();
    assert_eq!(saved.url, mirrors[2].url(NAME));
    assert_eq!(std::fs::read(saved.path).unwrap(), bytes);
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
            // Neither the published .gz (shared/README.md: 4,542 bytes) nor gzip at all.
            assert!(
                matches!(
                    &e.attempts[0].failure,
                    MirrorFailure::NotDecompressible { message, .. }
                        if message.contains("not gzip data")
                ),
                "{:?}",
                e.attempts[0].failure
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

/// A mirror serving the content recompressed (other `.gz` bytes, another length) is
/// accepted because the decompressed bytes match; the file is saved as served.
#[test]
fn a_recompressed_copy_is_accepted_by_its_content() {
    let (content, published, remote) = good_with_content();
    let stored = gzip_at(&content, 0);
    let fast = gzip_at(&content, 1);
    assert_ne!(stored, published);
    assert_ne!(fast, published);
    assert!(
        stored.len() as u64 > remote.bytes,
        "stored blocks are larger"
    );
    let server = Server::start(HashMap::from([
        route("stored", Reply::Body(stored.clone())),
        route("fast", Reply::Body(fast.clone())),
    ]));
    for (prefix, served) in [("stored", &stored), ("fast", &fast)] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Vec::new();
        let saved = download(
            dir.path(),
            &remote,
            &[Mirror::new(server.base(prefix))],
            &mut recorder(&mut log),
        )
        .unwrap();
        assert_eq!(saved.verified, Verified::Recompressed, "{prefix}");
        assert_eq!(&std::fs::read(&saved.path).unwrap(), served);
        assert_eq!(list_dir(dir.path()), [NAME]);
    }
}

/// Content that is neither the published file nor the canonical content is rejected, the
/// message naming the file, the mirror and both pairs of digests; nothing is left.
#[test]
fn wrong_content_is_rejected_naming_both_digests() {
    let (content, _, remote) = good_with_content();
    let idx = remote.idx.clone().unwrap();
    // Same length, one pixel changed; and a shorter file (two images instead of three).
    let mut changed = content.clone();
    changed[100] ^= 0xff;
    let shorter = images_file(2);
    let server = Server::start(HashMap::from([
        route("changed", Reply::Body(idx::gzip(&changed))),
        route("shorter", Reply::Body(idx::gzip(&shorter))),
    ]));
    let mirrors = ["changed", "shorter"].map(|p| Mirror::new(server.base(p)));
    let dir = tempfile::tempdir().unwrap();
    let err = download(dir.path(), &remote, &mirrors, &mut |_| {}).unwrap_err();
    let Error::Download(e) = &err else {
        panic!("expected Download, got {err:?}")
    };
    let expect = |i: usize, served: &[u8], decompressed: &[u8]| match &e.attempts[i].failure {
        MirrorFailure::ContentMismatch {
            expected,
            found,
            idx_expected,
            idx_found,
            idx_bytes,
        } => {
            assert_eq!(expected, &remote.sha256);
            assert_eq!(found, &sha256(served));
            assert_eq!(idx_expected, &idx.sha256);
            assert_eq!(idx_found, &sha256(decompressed));
            assert_eq!(*idx_bytes, decompressed.len() as u64);
        }
        other => panic!("expected ContentMismatch, got {other:?}"),
    };
    expect(0, &idx::gzip(&changed), &changed);
    expect(1, &idx::gzip(&shorter), &shorter);
    let msg = err.to_string();
    for needle in [
        NAME.to_owned(),
        mirrors[0].url(NAME),
        mirrors[1].url(NAME),
        remote.sha256.clone(),
        idx.sha256.clone(),
        sha256(&changed),
        sha256(&idx::gzip(&changed)),
    ] {
        assert!(msg.contains(&needle), "message lacks {needle}: {msg}");
    }
    assert!(
        list_dir(dir.path()).is_empty(),
        "{:?}",
        list_dir(dir.path())
    );
}

/// A truncated or corrupt gzip, data that is not gzip at all, a gzip expanding past the
/// canonical length, and a response longer than any copy can be: each a clear reason,
/// never a panic, nothing half-written.
#[test]
fn broken_or_oversized_copies_are_rejected_cleanly() {
    let (content, _, remote) = good_with_content();
    let stored = gzip_at(&content, 0);
    let mut corrupt = stored.clone();
    // A byte inside the first stored block's data: the CRC-32 in the trailer fails.
    corrupt[200] ^= 0x01;
    let mut longer_content = content.clone();
    longer_content.extend_from_slice(&[0; 784]);
    let limit = remote.max_bytes();
    let server = Server::start(HashMap::from([
        route(
            "truncated",
            Reply::Body(stored[..stored.len() / 2].to_vec()),
        ),
        route("corrupt", Reply::Body(corrupt)),
        route("raw", Reply::Body(content.clone())),
        route("expands", Reply::Body(idx::gzip(&longer_content))),
        route("huge", Reply::Body(vec![0x1f; limit as usize + 1])),
    ]));
    let prefixes = ["truncated", "corrupt", "raw", "expands", "huge"];
    let mirrors = prefixes.map(|p| Mirror::new(server.base(p)));
    let dir = tempfile::tempdir().unwrap();
    let err = download(dir.path(), &remote, &mirrors, &mut |_| {}).unwrap_err();
    let Error::Download(e) = &err else {
        panic!("expected Download, got {err:?}")
    };
    let reasons: Vec<String> = e.attempts.iter().map(|a| a.failure.to_string()).collect();
    for (i, needle) in [
        "corrupt or truncated",
        "corrupt or truncated",
        "not gzip data",
        "decompresses to more than the 2368 bytes",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            matches!(
                e.attempts[i].failure,
                MirrorFailure::NotDecompressible { .. }
            ),
            "{}: {:?}",
            prefixes[i],
            e.attempts[i].failure
        );
        assert!(
            reasons[i].contains(needle),
            "{}: {}",
            prefixes[i],
            reasons[i]
        );
        assert!(reasons[i].contains(&remote.sha256), "{}", reasons[i]);
    }
    assert_eq!(
        e.attempts[4].failure,
        MirrorFailure::TooLarge {
            limit,
            found: limit + 1
        }
    );
    assert!(
        list_dir(dir.path()).is_empty(),
        "{:?}",
        list_dir(dir.path())
    );
}

/// The shared copy of MNIST is recompressed (`../shared/README.md`: its `.gz` bytes differ
/// from the published ones, its IDX bytes are canonical). Served from loopback, every
/// file is accepted: as published if its bytes happen to be the published ones, else as a
/// recompressed copy.
#[test]
fn fetch_accepts_the_real_files_as_published_or_recompressed() {
    let Some(real) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let mut routes = HashMap::new();
    let mut served = HashMap::new();
    for (role, path) in FileRole::ALL
        .iter()
        .zip(glorot_mnist::find_files(&real).unwrap())
    {
        let bytes = std::fs::read(&path).unwrap();
        // A raw file is served gzip-compressed, as a mirror would.
        let bytes = if idx::is_gzip(&bytes) {
            bytes
        } else {
            idx::gzip(&bytes)
        };
        let published = sha256(&bytes) == DatasetKind::Mnist.known(*role).gz_sha256;
        routes.insert(format!("/m/{}", role.gz_name()), Reply::Body(bytes));
        served.insert(role.gz_name(), published);
    }
    let server = Server::start(routes);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mnist");
    let fetched = fetch(
        &target,
        DatasetKind::Mnist,
        &[Mirror::new(server.base("m"))],
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(fetched.len(), 4);
    for f in &fetched {
        let expected = if served[&f.file] {
            Verified::Published
        } else {
            Verified::Recompressed
        };
        assert_eq!(
            f.outcome,
            FetchOutcome::Downloaded {
                url: format!("{}{}", server.base("m"), f.file),
                verified: expected
            }
        );
    }
    glorot_mnist::verify_dir(&target, DatasetKind::Mnist).unwrap();
    assert_eq!(list_dir(&target).len(), 4, "{:?}", list_dir(&target));
}

/// A truncated `.gz` in the target directory (an interrupted copy by hand) is replaced by
/// a verified download instead of stopping the fetch.
#[test]
fn fetch_replaces_a_truncated_gz() {
    let Some(real) = real_dir(DatasetKind::Mnist) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for path in glorot_mnist::find_files(&real).unwrap() {
        let bytes = std::fs::read(&path).unwrap();
        let bytes = if idx::is_gzip(&bytes) {
            bytes
        } else {
            idx::gzip(&bytes)
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let name = name.strip_suffix(".gz").unwrap_or(&name).to_owned() + ".gz";
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let labels = dir.path().join(FileRole::TestLabels.gz_name());
    let good = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &good[..good.len() / 2]).unwrap();
    let server = Server::start(HashMap::from([(
        format!("/m/{}", FileRole::TestLabels.gz_name()),
        Reply::Body(good.clone()),
    )]));
    let fetched = fetch(
        dir.path(),
        DatasetKind::Mnist,
        &[Mirror::new(server.base("m"))],
        &mut |_| {},
    )
    .unwrap();
    assert!(matches!(
        fetched[3].outcome,
        FetchOutcome::Downloaded { .. }
    ));
    assert_eq!(std::fs::read(&labels).unwrap(), good);
    assert_eq!(server.requests().len(), 1);
}
