//! A loopback HTTP/1.1 server serving the files of one directory (`GET /NAME`), one
//! request per connection, for the tests that download a dataset: they talk to nothing
//! but this. It binds 127.0.0.1 only, and stops when dropped, after its deadline, or after
//! 100 connections, whichever comes first.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves the regular files directly in `dir` (no subdirectories, no `..`) until
    /// dropped or `deadline` has passed.
    pub(crate) fn serve(dir: &Path, deadline: Duration) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handle = {
            let (stop, requests, dir) = (stop.clone(), requests.clone(), dir.to_owned());
            std::thread::spawn(move || {
                let end = Instant::now() + deadline;
                let mut served = 0;
                while !stop.load(Ordering::SeqCst) && Instant::now() < end && served < 100 {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            served += 1;
                            let _ = answer(stream, &dir, &requests);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        FileServer {
            port,
            stop,
            requests,
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The paths requested so far, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn answer(stream: TcpStream, dir: &Path, requests: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
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
    let file: Option<PathBuf> = path
        .strip_prefix('/')
        .filter(|name| !name.is_empty() && !name.contains('/') && !name.contains(".."))
        .map(|name| dir.join(name))
        .filter(|p| p.is_file());
    let mut out = stream;
    match file.and_then(|p| std::fs::read(p).ok()) {
        Some(body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)?;
        }
        None => write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}

/// The four files of the real MNIST, as `.gz` (as a mirror serves them), in `dir`.
pub(crate) fn mirror_dir(real: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for path in glorot_mnist::find_files(real).unwrap() {
        let bytes = std::fs::read(&path).unwrap();
        let bytes = if glorot_mnist::idx::is_gzip(&bytes) {
            bytes
        } else {
            glorot_mnist::idx::gzip(&bytes)
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let name = format!("{}.gz", name.strip_suffix(".gz").unwrap_or(&name));
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
