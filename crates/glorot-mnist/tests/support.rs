//! Fixtures: small datasets written with the crate's own IDX writer, a loopback HTTP
//! server, and the real-data directories.

#![allow(dead_code)] // Not every module uses every helper in every feature set.

use std::path::{Path, PathBuf};

use glorot_mnist::{DatasetKind, FileRole, PIXELS, idx};

/// Deterministic pixel bytes: image `i` pixel `p` is `(i * 31 + p * 7) % 256`.
pub(crate) fn pixels(count: usize) -> Vec<u8> {
    (0..count * PIXELS)
        .map(|k| ((k / PIXELS) * 31 + (k % PIXELS) * 7) as u8)
        .collect()
}

pub(crate) fn images_file(count: usize) -> Vec<u8> {
    idx::encode(&[count as u32, 28, 28], &pixels(count))
}

pub(crate) fn labels_file(labels: &[u8]) -> Vec<u8> {
    idx::encode(&[labels.len() as u32], labels)
}

/// How to store each file of a synthetic dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    Raw,
    Gzip,
}

/// Writes a synthetic dataset: `train_labels.len()` training images, `test_labels.len()`
/// test images. Returns the paths in `FileRole::ALL` order.
pub(crate) fn write_dataset(
    dir: &Path,
    train_labels: &[u8],
    test_labels: &[u8],
    storage: Storage,
) -> Vec<PathBuf> {
    let contents = [
        images_file(train_labels.len()),
        labels_file(train_labels),
        images_file(test_labels.len()),
        labels_file(test_labels),
    ];
    FileRole::ALL
        .iter()
        .zip(contents)
        .map(|(role, bytes)| write_role(dir, *role, &bytes, storage))
        .collect()
}

/// Writes one file of a dataset (raw bytes given; compressed per `storage`).
pub(crate) fn write_role(
    dir: &Path,
    role: FileRole,
    idx_bytes: &[u8],
    storage: Storage,
) -> PathBuf {
    let (name, bytes) = match storage {
        Storage::Raw => (role.file_name().to_owned(), idx_bytes.to_vec()),
        Storage::Gzip => (role.gz_name(), idx::gzip(idx_bytes)),
    };
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Labels cycling through the classes: 0, 1, ..., 9, 0, ...
pub(crate) fn cycling_labels(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 10) as u8).collect()
}

/// The directory holding the real `kind`, or `None` with a note on stderr.
///
/// The environment variable may be relative: it is resolved against the current
/// directory, then against the workspace root (cargo runs tests in the crate directory,
/// CI sets `GLOROT_MNIST_DIR=../shared/mnist` relative to the workspace root).
#[allow(clippy::print_stderr, reason = "a skipped test says why")]
pub(crate) fn real_dir(kind: DatasetKind) -> Option<PathBuf> {
    let from_env = std::env::var_os(kind.env_var())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let found = match &from_env {
        Some(p) if p.is_absolute() => Some(p.clone()),
        Some(p) => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            [p.clone(), workspace.join(p)]
                .into_iter()
                .find(|c| c.is_dir())
        }
        None => kind
            .system_dirs()
            .iter()
            .map(PathBuf::from)
            .find(|d| glorot_mnist::find_files(d).is_ok()),
    };
    if found.is_none() {
        eprintln!(
            "note: skipping: real {kind} not available (set {} to a directory holding its four files)",
            kind.env_var()
        );
    }
    found
}

/// Names of the entries in `dir`, sorted.
pub(crate) fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(feature = "download")]
pub(crate) mod http {
    //! A loopback HTTP/1.1 server serving fixed responses, one request per connection.
    //! It stops when dropped, and in any case after 60 s or 200 connections.

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    /// What the server answers for a path.
    #[derive(Clone, Debug)]
    pub(crate) enum Reply {
        /// 200 with this body.
        Body(Vec<u8>),
        /// This status, empty body.
        Status(u16),
        /// 200 announcing `announced` bytes but sending only `body` before closing.
        CutShort { announced: usize, body: Vec<u8> },
    }

    #[derive(Debug)]
    pub(crate) struct Server {
        port: u16,
        stop: Arc<AtomicBool>,
        requests: Arc<Mutex<Vec<String>>>,
        handle: Option<JoinHandle<()>>,
    }

    impl Server {
        pub(crate) fn start(routes: HashMap<String, Reply>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            listener.set_nonblocking(true).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let handle = {
                let (stop, requests) = (stop.clone(), requests.clone());
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut served = 0;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && served < 200
                    {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                served += 1;
                                let _ = serve(stream, &routes, &requests);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            Err(_) => break,
                        }
                    }
                })
            };
            Server {
                port,
                stop,
                requests,
                handle: Some(handle),
            }
        }

        /// `http://127.0.0.1:PORT/prefix/`.
        pub(crate) fn base(&self, prefix: &str) -> String {
            format!("http://127.0.0.1:{}/{prefix}/", self.port)
        }

        /// Paths requested so far.
        pub(crate) fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }

    fn serve(
        stream: TcpStream,
        routes: &HashMap<String, Reply>,
        requests: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        requests.lock().unwrap().push(path.clone());
        let mut out = stream;
        match routes.get(&path).cloned().unwrap_or(Reply::Status(404)) {
            Reply::Body(body) => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                out.write_all(&body)?;
            }
            Reply::Status(code) => {
                write!(
                    out,
                    "HTTP/1.1 {code} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )?;
            }
            Reply::CutShort { announced, body } => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
                )?;
                out.write_all(&body)?;
            }
        }
        out.flush()?;
        out.shutdown(std::net::Shutdown::Both)
    }

    /// A port with nothing listening: bind, note the port, close.
    pub(crate) fn refused_base() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/closed/")
    }
}
