//! What every command shares: data options, BLAS threads, the run manifest, output
//! (results and JSON to stdout, progress to stderr), interruption, usage errors.

use std::{
    fmt,
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result};
use glorot_experiments::DataSpec;
use glorot_mlp::{Activation, Head, Init, Precision, Shuffle};
use glorot_mnist::DatasetKind;
use glorot_search::Manifest;
use serde::Serialize;

/// The source revision baked in by `build.rs` (`git describe --always --dirty`).
pub(crate) const GIT_REVISION: &str = env!("GLOROT_GIT_REVISION");

// ---------------------------------------------------------------------------------------
// Usage errors (exit code 2)
// ---------------------------------------------------------------------------------------

/// A mistake in the command line that clap cannot see on its own (two options that
/// contradict each other, a thread plan that oversubscribes the machine). `main` exits
/// with code 2 for it, as for clap's own errors.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `Err(UsageError)` as an `anyhow` error.
pub(crate) fn usage<T>(message: impl Into<String>) -> Result<T> {
    Err(UsageError(message.into()).into())
}

/// An error and its causes on one line, `outer: cause: root` (as `{:#}` prints them), with
/// a guard against repetition: a cause whose text the line already holds is left out. The
/// library errors follow the Rust API guidelines (a `Display` names only its own level,
/// `source()` gives the cause), so the guard only catches an error from elsewhere that
/// embeds its source in its message (as `io::Error::other(e)` and some crates do).
pub(crate) fn chain(err: &anyhow::Error) -> String {
    chain_of(err.chain().map(ToString::to_string))
}

fn chain_of(levels: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    for level in levels {
        let level = level.trim();
        if level.is_empty() || line.contains(level) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(level);
    }
    line
}

// ---------------------------------------------------------------------------------------
// Value parsers for hyperparameters
// ---------------------------------------------------------------------------------------

/// `relu`, `sigmoid`, `tanh`, `softsign` (case-insensitive).
pub(crate) fn parse_activation(s: &str) -> Result<Activation, String> {
    s.parse::<Activation>()
        .map_err(|_| format!("unknown activation `{s}` (expected relu, sigmoid, tanh or softsign)"))
}

/// `sigmoid_bce` (the notebook's, also `notebook`, `sigmoid`, `bce`) or
/// `softmax_cross_entropy` (also `softmax`).
pub(crate) fn parse_head(s: &str) -> Result<Head, String> {
    s.parse::<Head>().map_err(|e| e.to_string())
}

/// `f32` or `f64`.
pub(crate) fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse::<Precision>().map_err(|e| e.to_string())
}

/// `every-epoch` or `never`.
pub(crate) fn parse_shuffle(s: &str) -> Result<Shuffle, String> {
    s.parse::<Shuffle>().map_err(|e| e.to_string())
}

/// `fast` or `blas`.
pub(crate) fn parse_arithmetic(s: &str) -> Result<glorot_mlp::Arithmetic, String> {
    s.parse::<glorot_mlp::Arithmetic>()
        .map_err(|e| e.to_string())
}

/// `mnist` or `fashion-mnist`.
pub(crate) fn parse_dataset(s: &str) -> Result<DatasetKind, String> {
    s.parse::<DatasetKind>().map_err(|e| e.to_string())
}

/// Help text listing the initializer names [`parse_init`] accepts.
pub(crate) const INIT_HELP: &str = "glorot_uniform (the notebook's), normal[:MEAN:STD] (default 0:1, the notebook's \
     `normal`), zero, he_normal, he_uniform, lecun_normal, orthogonal[:GAIN] (default 1), standard \
     (Glorot and Bengio's U(-1/sqrt(fan_in), 1/sqrt(fan_in)))";

/// An initializer: `glorot_uniform` (also `glorot`, `xavier`), `normal` or
/// `normal:MEAN:STD`, `zero`, `he_normal`, `he_uniform`, `lecun_normal`, `orthogonal` or
/// `orthogonal:GAIN`, `standard`. Dashes and underscores are interchangeable.
pub(crate) fn parse_init(s: &str) -> Result<Init, String> {
    glorot_mlp::parse_init(s).map_err(|e| match e {
        glorot_mlp::Error::InvalidConfig { value, reason, .. } => format!("`{value}`: {reason}"),
        other => other.to_string(),
    })
}

/// A short name of an initializer for tables: the serde `kind` plus its parameters.
pub(crate) fn init_name(init: Init) -> String {
    match init {
        Init::GlorotUniform => "glorot_uniform".into(),
        Init::Zero => "zero".into(),
        Init::HeNormal => "he_normal".into(),
        Init::HeUniform => "he_uniform".into(),
        Init::LecunNormal => "lecun_normal".into(),
        Init::Standard => "standard".into(),
        Init::Normal { mean, std } => format!("normal:{mean}:{std}"),
        Init::Orthogonal { gain } => format!("orthogonal:{gain}"),
    }
}

/// A positive integer (clap value parser).
pub(crate) fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a positive integer")),
    }
}

/// A finite positive number (clap value parser), e.g. a learning rate.
pub(crate) fn parse_positive_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!("{x} is not a finite positive number")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

// ---------------------------------------------------------------------------------------
// Data options
// ---------------------------------------------------------------------------------------

/// Where the dataset is and which part of it to use.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Data")]
pub(crate) struct DataOpts {
    /// Directory holding the four IDX files (gzip or not). Default: $GLOROT_MNIST_DIR
    /// (resp. $GLOROT_FASHION_MNIST_DIR), else <workspace>/data/<dataset> inside the glorot
    /// workspace or $XDG_DATA_HOME/glorot/<dataset> (~/.local/share/glorot/<dataset>)
    /// outside it, downloaded there when missing.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Never download a missing dataset; say which files to put where instead (also
    /// GLOROT_OFFLINE=1).
    #[arg(long)]
    pub(crate) offline: bool,
    /// Mirror to download a missing dataset from (repeatable or comma-separated). Default:
    /// $GLOROT_MNIST_MIRROR (resp. $GLOROT_FASHION_MNIST_MIRROR), else the public mirrors.
    #[arg(
        long = "mirror",
        value_name = "URL",
        value_delimiter = ',',
        value_parser = crate::data::parse_mirror
    )]
    pub(crate) mirrors: Vec<String>,
    /// Which dataset the directory holds: mnist or fashion-mnist.
    #[arg(long, value_name = "NAME", default_value = "mnist", value_parser = parse_dataset)]
    pub(crate) dataset: DatasetKind,
    /// Do not compare the files' SHA-256 with the published ones (for custom data in the
    /// MNIST format; the structure is still checked).
    #[arg(long)]
    pub(crate) no_verify: bool,
    /// Training images held out for validation, from the end of the training file (the
    /// notebook: 10000).
    #[arg(long, value_name = "N", default_value_t = glorot_mnist::DEFAULT_VALIDATION_SIZE)]
    pub(crate) validation_size: usize,
    /// Train on the first N training images only (quick runs, tests).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub(crate) train_limit: Option<usize>,
    /// Validate on the first N validation images only.
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub(crate) val_limit: Option<usize>,
    /// Test on the first N test images only.
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub(crate) test_limit: Option<usize>,
}

/// The loaded dataset and its record in results files (glorot-experiments' data
/// preparation).
pub(crate) use glorot_experiments::data::{DataInfo, Loaded};

impl DataOpts {
    /// The dataset and subsets these options name.
    pub(crate) fn spec(&self) -> DataSpec {
        DataSpec {
            dataset: self.dataset,
            verify: !self.no_verify,
            validation_size: self.validation_size,
            train_limit: self.train_limit,
            val_limit: self.val_limit,
            test_limit: self.test_limit,
        }
    }

    /// Locates the dataset: `--data-dir`, else the environment variable, else the default
    /// directory (the glorot workspace's `data/`, else the per-user data directory),
    /// downloading it there when missing unless offline ([`crate::data::find_or_fetch`]).
    pub(crate) fn locate(&self) -> Result<PathBuf> {
        let net = crate::data::Network::new(self.dataset, self.offline, &self.mirrors)?;
        crate::data::find_or_fetch(self.dataset, self.data_dir.as_deref(), &net)
    }

    /// Locates, reads, verifies, splits and limits the dataset.
    pub(crate) fn load(&self) -> Result<Loaded> {
        let dir = self.locate()?;
        glorot_experiments::data::load(&dir, &self.spec()).map_err(lib)
    }
}

/// A library error as an `anyhow` error: a mistake in the options becomes a
/// [`UsageError`] (exit code 2), as it was when the command line checked it itself.
pub(crate) fn lib(e: glorot_experiments::Error) -> anyhow::Error {
    if e.is_invalid_options() {
        UsageError(chain(&anyhow::Error::from(e))).into()
    } else {
        e.into()
    }
}

// ---------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------

/// Bytes the machine can give a new process without swapping: `MemAvailable` of
/// `/proc/meminfo` on Linux; `None` elsewhere or when it cannot be read (then no run is
/// refused for its memory).
pub(crate) fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line["MemAvailable:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// `12.3 GB`, `512.0 MB`, `48.0 TB` (powers of 1000, as `free -H` prints them).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Refuses a run before it allocates anything when the memory it needs (`need`, the
/// library's estimate) cannot even be counted (a usage error, exit code 2) or is more
/// than the machine has available (exit code 1). `what` names the run
/// (`"this training"`).
pub(crate) fn check_memory<E>(what: &str, need: Result<u64, E>) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let need = match need {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(UsageError(chain(&anyhow::Error::from(e))).into());
        }
    };
    check_memory_against(what, need, available_memory())
}

fn check_memory_against(what: &str, need: u64, available: Option<u64>) -> Result<()> {
    match available {
        Some(available) if need > available => anyhow::bail!(
            "{what} would need about {} of memory, but this machine has {} available; \
             reduce the widths, the batch size, the epochs or the workers",
            human_bytes(need),
            human_bytes(available)
        ),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// BLAS threads
// ---------------------------------------------------------------------------------------

/// OpenBLAS's own controls. OpenBLAS reads `OPENBLAS_NUM_THREADS` once, when the library
/// loads, so the thread count must be set through its API.
#[allow(unsafe_code)]
mod openblas {
    use std::ffi::{CStr, c_char, c_int};

    // SAFETY: these are OpenBLAS's exported C functions with these exact signatures
    // (`cblas.h`: `void openblas_set_num_threads(int)`, `int openblas_get_num_threads(void)`,
    // `int openblas_get_parallel(void)`, `char* openblas_get_config(void)`). The binary
    // links libopenblas through `blas-src`/`openblas-src`. They take plain integers or
    // nothing, have no preconditions, and may be called from any thread.
    unsafe extern "C" {
        pub(super) safe fn openblas_set_num_threads(n: c_int);
        pub(super) safe fn openblas_get_num_threads() -> c_int;
        pub(super) safe fn openblas_get_parallel() -> c_int;
        fn openblas_get_config() -> *const c_char;
    }

    /// The build description, e.g. `OpenBLAS 0.3.29 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64`.
    pub(super) fn config() -> String {
        // SAFETY: `openblas_get_config` returns a pointer to a static NUL-terminated
        // string owned by the library (never freed); it is read, not kept.
        unsafe {
            let p = openblas_get_config();
            if p.is_null() {
                return "OpenBLAS".to_owned();
            }
            CStr::from_ptr(p).to_string_lossy().trim().to_owned()
        }
    }
}

pub(crate) use glorot_experiments::threads::{ThreadPlan, cpus};

/// Sets the number of threads every BLAS call may use (process-wide), and the fused
/// `f32` kernels' thread team to the same number, and returns the number OpenBLAS
/// actually uses (it caps requests at its build's `MAX_THREADS`).
pub(crate) fn set_blas_threads(n: usize) -> usize {
    openblas::openblas_set_num_threads(i32::try_from(n.max(1)).unwrap_or(i32::MAX));
    let n = usize::try_from(openblas::openblas_get_num_threads())
        .unwrap_or(1)
        .max(1);
    // The fused f32 kernels (glorot_tensor::fused) use their own threads: the same count.
    glorot_tensor::fused::set_threads(n);
    n
}

/// The BLAS library, for manifests: OpenBLAS's build configuration and threading model.
pub(crate) fn blas_description() -> String {
    let parallel = match openblas::openblas_get_parallel() {
        0 => "sequential",
        1 => "pthreads",
        2 => "OpenMP",
        _ => "unknown threading",
    };
    format!("{} ({parallel})", openblas::config())
}

/// [`glorot_experiments::threads::plan_threads`], an oversubscribing plan being a usage
/// error.
pub(crate) fn plan_threads(
    workers: Option<usize>,
    blas: Option<usize>,
    oversubscribe: bool,
    cpus: usize,
) -> Result<ThreadPlan> {
    glorot_experiments::threads::plan_threads(workers, blas, oversubscribe, cpus).map_err(lib)
}

/// The manifest of this process's results: the one place a run manifest is made (train,
/// search records, best_test.json, the studies' files).
pub(crate) fn manifest(plan: ThreadPlan) -> Manifest {
    Manifest::detect(
        GIT_REVISION,
        &blas_description(),
        plan.blas_threads,
        plan.workers,
    )
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// Writes one line to stdout. A closed pipe (`glorot ... | head`) is not an error.
pub(crate) fn out(line: impl fmt::Display) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    ignore_broken_pipe(writeln!(stdout, "{line}"))
}

/// Writes `value` as pretty JSON (and a newline) to stdout.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut json = serde_json::to_string_pretty(value).context("serializing the result")?;
    json.push('\n');
    let mut stdout = std::io::stdout().lock();
    ignore_broken_pipe(
        stdout
            .write_all(json.as_bytes())
            .and_then(|()| stdout.flush()),
    )
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// Writes `value` as pretty JSON to `path` atomically (temporary file, then rename),
/// creating the parent directory ([`glorot_search::write_json`], the one writer).
pub(crate) fn write_json_file<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    Ok(glorot_search::write_json(path, value)?)
}

/// Progress and notes on stderr: a live display when stderr is a terminal, plain lines
/// otherwise (logs, CI, Slurm output files), nothing with `--quiet`.
#[derive(Debug)]
pub(crate) struct Stderr {
    live: bool,
    quiet: bool,
    /// Lines of the live display currently on screen (erased before the next write).
    drawn: AtomicUsize,
}

impl Stderr {
    /// Detects whether stderr is a terminal that understands cursor movement.
    pub(crate) fn new(quiet: bool) -> Self {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Stderr {
            live: std::io::stderr().is_terminal() && !dumb,
            quiet,
            drawn: AtomicUsize::new(0),
        }
    }

    /// Whether progress is drawn in place (else printed as lines).
    pub(crate) fn is_live(&self) -> bool {
        self.live && !self.quiet
    }

    /// A line of progress or a note, above the live display.
    pub(crate) fn line(&self, line: impl fmt::Display) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let clear = self.clear_codes();
        let _ = writeln!(err, "{clear}{line}");
        let _ = err.flush();
    }

    /// A warning: always printed, even with `--quiet`.
    pub(crate) fn warn(&self, message: impl fmt::Display) {
        let mut err = std::io::stderr().lock();
        let clear = self.clear_codes();
        let _ = writeln!(err, "{clear}glorot: warning: {message}");
        let _ = err.flush();
    }

    /// Replaces the live display with `lines` (terminal only).
    pub(crate) fn draw(&self, lines: &[String]) {
        if !self.is_live() {
            return;
        }
        let width = terminal_width();
        let mut buf = self.clear_codes();
        for l in lines {
            buf.push_str(&truncate(l, width));
            buf.push('\n');
        }
        self.drawn.store(lines.len(), Ordering::Relaxed);
        LIVE.store(!lines.is_empty(), Ordering::Relaxed);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(buf.as_bytes());
        let _ = err.flush();
    }

    /// Erases the live display.
    pub(crate) fn clear(&self) {
        if self.is_live() {
            let codes = self.clear_codes();
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(codes.as_bytes());
            let _ = err.flush();
        }
    }

    /// Escape codes moving the cursor to the first line of the live display and clearing
    /// to the end of the screen.
    fn clear_codes(&self) -> String {
        LIVE.store(false, Ordering::Relaxed);
        match self.drawn.swap(0, Ordering::Relaxed) {
            0 => String::new(),
            n => format!("\x1b[{n}F\x1b[J"),
        }
    }
}

/// The studies' progress (glorot-experiments' observer) on the one display: a status
/// line drawn in place on a terminal, plain lines otherwise, nothing but warnings with
/// `--quiet`.
impl glorot_experiments::Observer for Stderr {
    fn message(&self, message: &str) {
        self.line(message);
    }

    fn progress(&self, e: &glorot_experiments::ProgressEvent<'_>) {
        let line = format!(
            "[{}] {} | {:5.1}% done, {} elapsed, ETA {}",
            e.part,
            e.what,
            e.percent,
            glorot_experiments::duration(e.elapsed_seconds),
            e.eta_seconds
                .map_or_else(|| "?".to_owned(), glorot_experiments::duration)
        );
        if self.is_live() {
            let mut lines = vec![line];
            if stop_requested() {
                lines.push(STOPPING.to_owned());
            }
            self.draw(&lines);
        } else {
            self.line(line);
        }
    }

    fn note(&self, part: &str, message: &str) {
        self.line(format!("[{part}] {message}"));
    }

    fn finish(&self, _part: &str) {
        self.clear();
    }

    fn should_stop(&self) -> bool {
        stop_requested()
    }
}

/// The width the live display is cut to: the terminal's own, else `$COLUMNS`, else 80.
fn terminal_width() -> usize {
    choose_width(stderr_columns(), std::env::var("COLUMNS").ok().as_deref())
}

/// The narrowest width believed (a smaller one is a broken report, not a terminal).
const MIN_WIDTH: usize = 20;

/// The width from the terminal's report (`tty`), else from `$COLUMNS`, else 80; a value
/// below [`MIN_WIDTH`] is ignored.
fn choose_width(tty: Option<usize>, columns: Option<&str>) -> usize {
    tty.filter(|&w| w >= MIN_WIDTH)
        .or_else(|| {
            columns
                .and_then(|c| c.trim().parse().ok())
                .filter(|&w: &usize| w >= MIN_WIDTH)
        })
        .unwrap_or(80)
}

/// The column count of the terminal on stderr (`ioctl(TIOCGWINSZ)`), read at each draw so
/// a resized window is followed; `None` when stderr is not a terminal.
#[cfg(unix)]
#[allow(unsafe_code)]
fn stderr_columns() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through its pointer argument, which
    // points to one owned here; on failure (not a terminal) it writes nothing.
    let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &raw mut size) };
    (rc == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn stderr_columns() -> Option<usize> {
    None
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A text progress bar of `width` cells.
pub(crate) fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// `12.3s`, `3m 05s`, `1h 02m`: the one duration format ([`glorot_experiments::duration`],
/// also in REPORT.md).
pub(crate) fn human_duration(d: Duration) -> String {
    glorot_experiments::duration(d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// Interruption
// ---------------------------------------------------------------------------------------

static STOP: AtomicBool = AtomicBool::new(false);
/// Whether a live display is on screen: then it shows the stop request itself (a line
/// written from the signal handler would break its cursor arithmetic).
static LIVE: AtomicBool = AtomicBool::new(false);

/// What the live displays show once a stop is requested.
pub(crate) const STOPPING: &str =
    "stopping at the next batch (finished work is kept; Ctrl-C again to quit now)";
static HANDLER: OnceLock<bool> = OnceLock::new();

/// Installs a handler for Ctrl-C (SIGINT), SIGTERM (Slurm's time limit, `docker stop`)
/// and SIGHUP: the first signal asks the running work to stop at the next batch
/// boundary ([`stop_requested`]), a second one ends the process at once. Returns whether
/// the handler is installed (it is not when another handler exists).
pub(crate) fn handle_interrupts() -> bool {
    *HANDLER.get_or_init(|| {
        ctrlc::set_handler(|| {
            if STOP.swap(true, Ordering::SeqCst) {
                // Second signal: the user means it. Finished trials are already on disk.
                std::process::exit(130);
            }
            if !LIVE.load(Ordering::Relaxed) {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "glorot: {STOPPING}");
            }
        })
        .is_ok()
    })
}

/// Whether a stop was requested by a signal.
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI's side of `glorot_mlp::parse_init` (tested there): its message for a
    /// mistake, and `init_name` reading back as the same initializer.
    #[test]
    fn initializer_names_round_trip_and_mistakes_read_well() {
        assert!(
            parse_init("normal:0:-1")
                .unwrap_err()
                .starts_with("`normal:0:-1`: ")
        );
        assert!(
            parse_init("uniformish")
                .unwrap_err()
                .contains("glorot_uniform")
        );
        for init in [
            Init::GlorotUniform,
            Init::Zero,
            Init::HeNormal,
            Init::HeUniform,
            Init::LecunNormal,
            Init::Normal {
                mean: 0.0,
                std: 0.1,
            },
            Init::Orthogonal { gain: 1.5 },
            Init::Standard,
        ] {
            assert_eq!(parse_init(&init_name(init)).unwrap(), init);
        }
    }

    #[test]
    fn the_terminal_width_comes_first_then_columns_then_80() {
        // The terminal's report wins over $COLUMNS (which a shell sets only for itself and
        // does not update for a child on resize).
        assert_eq!(choose_width(Some(213), Some("100")), 213);
        assert_eq!(choose_width(Some(213), None), 213);
        // Not a terminal (or no ioctl): $COLUMNS, then 80.
        assert_eq!(choose_width(None, Some("132")), 132);
        assert_eq!(choose_width(None, Some(" 132 ")), 132);
        assert_eq!(choose_width(None, None), 80);
        // Nonsense is ignored at each step: a zero or tiny report, a non-number.
        assert_eq!(choose_width(Some(0), Some("120")), 120);
        assert_eq!(choose_width(Some(5), None), 80);
        assert_eq!(choose_width(None, Some("wide")), 80);
        assert_eq!(choose_width(None, Some("10")), 80);
        assert_eq!(choose_width(Some(MIN_WIDTH), None), MIN_WIDTH);
    }

    #[test]
    fn a_cause_already_in_the_line_is_not_repeated() {
        let line = |levels: &[&str]| chain_of(levels.iter().map(|s| (*s).to_owned()));
        assert_eq!(line(&["a", "b", "c"]), "a: b: c");
        assert_eq!(
            line(&["incomplete deflate stream", "incomplete deflate stream"]),
            "incomplete deflate stream"
        );
        assert_eq!(
            line(&[
                "cannot read m.gz: No such file or directory (os error 2)",
                "No such file or directory (os error 2)"
            ]),
            "cannot read m.gz: No such file or directory (os error 2)"
        );
        assert_eq!(line(&["outer", "", "root"]), "outer: root");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human_duration(Duration::from_secs(42)), "42.0s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h 02m");
        assert_eq!(bar(1, 4, 8), "[##------]");
        assert_eq!(bar(0, 0, 4), "[----]");
    }
}
