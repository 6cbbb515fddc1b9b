//! `glorot data`: fetch, verify and describe the datasets.
//!
//! Where the files are looked for, in order: `--data-dir`, then `GLOROT_MNIST_DIR`
//! (`GLOROT_FASHION_MNIST_DIR`), then `<workspace>/data/mnist` (`data/fashion-mnist`;
//! `./data/...` outside a Cargo workspace), then system package directories
//! (`/usr/share/datasets/fashion-mnist`). `fetch` downloads what is missing into the
//! first of `--data-dir`, the environment variable's directory, the workspace data
//! directory. All printing happens here; the library reports through values and a
//! progress callback.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use glorot_mnist::download::{FetchEvent, FetchOutcome, Fetched, Mirror};
use glorot_mnist::{
    Candidate, DatasetKind, DigestCheck, FileDigest, RawDataset, Source, Split, Verify,
};
use serde::Serialize;

/// Datasets: fetch, verify, info.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  glorot data fetch
  glorot data verify --data-dir ~/datasets/mnist
  glorot data info --dataset fashion-mnist --json")]
pub(crate) struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,

    /// Directory holding the dataset's four files (raw or .gz) [default: $GLOROT_MNIST_DIR
    /// or $GLOROT_FASHION_MNIST_DIR, then <workspace>/data/<dataset>]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Which dataset.
    #[arg(long, global = true, value_enum, default_value_t = DatasetArg::Mnist)]
    dataset: DatasetArg,

    /// Do not compare SHA-256 digests with the published ones (for custom data in the
    /// MNIST format); the format is still validated. `fetch` always checks downloads.
    #[arg(long, global = true)]
    no_verify: bool,

    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Make sure the dataset is present and intact, downloading what is missing from
    /// public mirrors (each file's size and SHA-256 checked before it is kept).
    #[command(after_help = "\
Examples:
  glorot data fetch
  glorot data fetch --dataset fashion-mnist --data-dir ~/datasets/fashion-mnist
  # A local copy served over HTTP first, then the public mirrors
  glorot data fetch --mirror http://127.0.0.1:8000/")]
    Fetch(FetchArgs),
    /// Check each file's SHA-256 against the published digest, and validate the format.
    #[command(after_help = "\
Examples:
  glorot data verify
  glorot data verify --data-dir ~/datasets/mnist --json")]
    Verify,
    /// Show where the dataset is, its files and digests, and examples per class per split.
    #[command(after_help = "\
Examples:
  glorot data info
  glorot data info --validation-size 5000 --json")]
    Info(InfoArgs),
}

#[derive(Args, Debug)]
struct FetchArgs {
    /// Mirror base URL to try, in order (repeatable) [default: the public mirrors
    /// torchvision and TensorFlow Datasets use].
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
}

#[derive(Args, Debug)]
struct InfoArgs {
    /// Training examples held out for validation, from the end of the training file.
    #[arg(long, value_name = "N", default_value_t = glorot_mnist::DEFAULT_VALIDATION_SIZE)]
    validation_size: usize,
}

/// `--dataset` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DatasetArg {
    /// MNIST handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST.
    FashionMnist,
}

impl From<DatasetArg> for DatasetKind {
    fn from(d: DatasetArg) -> Self {
        match d {
            DatasetArg::Mnist => DatasetKind::Mnist,
            DatasetArg::FashionMnist => DatasetKind::FashionMnist,
        }
    }
}

/// Runs `glorot data ...`.
pub(crate) fn run(args: DataArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let stderr = std::io::stderr();
    // Live percentages only where the one display would draw live (a terminal, not
    // TERM=dumb).
    let progress = crate::common::Stderr::new(false).is_live();
    run_with(
        args,
        &cwd,
        &mut std::io::stdout().lock(),
        &mut stderr.lock(),
        progress,
    )
}

/// [`run`] with the working directory and output streams passed in (for tests).
fn run_with(
    args: DataArgs,
    cwd: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<()> {
    let kind = DatasetKind::from(args.dataset);
    let root = glorot_mnist::default_data_root(cwd);
    let verify = if args.no_verify {
        Verify::Skip
    } else {
        Verify::Digests
    };
    let ctx = Ctx {
        kind,
        data_dir: args.data_dir.as_deref(),
        root: &root,
        verify,
        json: args.json,
    };
    match args.command {
        DataCommand::Fetch(f) => fetch(&ctx, &f.mirrors, out, err, progress),
        DataCommand::Verify => verify_cmd(&ctx, out),
        DataCommand::Info(i) => info(&ctx, i.validation_size, out),
    }
}

struct Ctx<'a> {
    kind: DatasetKind,
    data_dir: Option<&'a Path>,
    root: &'a Path,
    verify: Verify,
    json: bool,
}

impl Ctx<'_> {
    /// The directory holding the dataset, and why it was searched.
    fn locate(&self) -> anyhow::Result<Candidate> {
        let dir = glorot_mnist::locate(self.kind, self.data_dir, Some(self.root))?;
        Ok(self.candidate(dir))
    }

    fn candidate(&self, dir: PathBuf) -> Candidate {
        let source = glorot_mnist::candidates(self.kind, self.data_dir, Some(self.root))
            .into_iter()
            .find(|c| c.dir == dir)
            .map_or(Source::Explicit, |c| c.source);
        Candidate { dir, source }
    }
}

fn describe(c: &Candidate, kind: DatasetKind) -> String {
    let why = match c.source {
        Source::Explicit => "from --data-dir".to_owned(),
        Source::EnvVar => format!("from {}", kind.env_var()),
        Source::DataRoot => "the workspace data directory".to_owned(),
        Source::System => "a system package directory".to_owned(),
        _ => "searched".to_owned(),
    };
    format!("{} ({why})", c.dir.display())
}

// ---------------------------------------------------------------------------------------
// fetch

#[derive(Serialize)]
struct FetchReport<'a> {
    dataset: DatasetKind,
    dir: &'a Path,
    files: &'a [Fetched],
}

fn fetch(
    ctx: &Ctx<'_>,
    mirrors: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<()> {
    let (target, fetched) =
        ensure_dataset(ctx.kind, ctx.data_dir, ctx.root, mirrors, err, progress)?;
    if ctx.json {
        let report = FetchReport {
            dataset: ctx.kind,
            dir: &target.dir,
            files: &fetched,
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        for f in &fetched {
            let how = match &f.outcome {
                FetchOutcome::AlreadyPresent => "present, verified".to_owned(),
                FetchOutcome::Downloaded { url } => format!("downloaded from {url}, verified"),
            };
            writeln!(out, "{:<28} {how}", f.file)?;
        }
        writeln!(out, "{} is ready in {}", ctx.kind, target.dir.display())?;
    }
    Ok(())
}

/// Finds `kind` as every `glorot` command does (`data_dir`, then the environment
/// variable, then `<data_root>/<dataset>`, then system directories) and makes sure its
/// four files are there and match the published digests, downloading what is missing from
/// `mirrors` (empty: the public mirrors) into the first of `data_dir`, the environment
/// variable's directory, `<data_root>/<dataset>`. Progress goes to `err` (`progress`:
/// draw percentages, for a terminal). This is `glorot data fetch`; commands that need
/// the data can call it with `data_root = glorot_mnist::default_data_root(&cwd)`.
pub(crate) fn ensure_dataset(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    data_root: &Path,
    mirrors: &[String],
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<(Candidate, Vec<Fetched>)> {
    let ctx = Ctx {
        kind,
        data_dir,
        root: data_root,
        verify: Verify::Digests,
        json: false,
    };
    let mirrors: Vec<Mirror> = if mirrors.is_empty() {
        Mirror::defaults(kind)
    } else {
        mirrors.iter().map(Mirror::new).collect()
    };
    // Where the dataset would be found; else where a download goes.
    let target = match glorot_mnist::locate(kind, data_dir, Some(data_root)) {
        Ok(dir) => ctx.candidate(dir),
        Err(glorot_mnist::Error::NotFound { .. } | glorot_mnist::Error::MissingFiles { .. }) => {
            let dir = glorot_mnist::fetch_dir(kind, data_dir, Some(data_root))
                .context("no directory to download into")?;
            ctx.candidate(dir)
        }
        Err(e) => return Err(e.into()),
    };
    writeln!(err, "{kind}: {}", describe(&target, kind))?;
    let mut reporter = Reporter {
        err,
        progress,
        failed: None,
    };
    let fetched =
        glorot_mnist::download::fetch(&target.dir, kind, &mirrors, &mut |e| reporter.event(e));
    reporter.finish_line();
    if let Some(e) = reporter.failed {
        return Err(e.into());
    }
    Ok((target, fetched?))
}

/// Prints fetch progress on stderr; remembers the first write error.
struct Reporter<'a> {
    err: &'a mut dyn Write,
    /// Whether to draw a `\r`-updated percentage (stderr is a terminal).
    progress: bool,
    failed: Option<std::io::Error>,
}

impl Reporter<'_> {
    fn event(&mut self, e: &FetchEvent<'_>) {
        let r = match *e {
            FetchEvent::Trying { url, .. } => writeln!(self.err, "  fetching {url}"),
            FetchEvent::Progress {
                file,
                received,
                total,
            } if self.progress => {
                let pct = (received * 100).checked_div(total).unwrap_or(100);
                write!(self.err, "\r  {file}: {pct:>3}% of {total} bytes")
            }
            FetchEvent::Rejected { url, failure, .. } => {
                self.finish_line();
                writeln!(self.err, "  rejected {url}: {failure}")
            }
            FetchEvent::Saved { path, .. } => {
                self.finish_line();
                writeln!(self.err, "  saved {}", path.display())
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            self.failed.get_or_insert(e);
        }
    }

    fn finish_line(&mut self) {
        if self.progress {
            let _ = writeln!(self.err);
        }
    }
}

// ---------------------------------------------------------------------------------------
// verify

#[derive(Serialize)]
struct VerifyReport<'a> {
    dataset: DatasetKind,
    location: &'a Candidate,
    digests_checked: bool,
    files: &'a [FileDigest],
    train_examples: usize,
    test_examples: usize,
    ok: bool,
}

fn verify_cmd(ctx: &Ctx<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let location = ctx.locate()?;
    let mut files = glorot_mnist::digest_dir(&location.dir, ctx.kind)?;
    if ctx.verify == Verify::Skip {
        for f in &mut files {
            f.check = DigestCheck::NotChecked;
        }
    }
    let bad: Vec<&FileDigest> = files
        .iter()
        .filter(|f| matches!(f.check, DigestCheck::Mismatch { .. }))
        .collect();
    // The format is validated whatever the digests say (a mismatch may be a custom file).
    let raw = glorot_mnist::load_raw(&location.dir, ctx.kind, Verify::Skip);
    let (train_examples, test_examples) = raw
        .as_ref()
        .map_or((0, 0), |r| (r.train_len(), r.test_len()));
    let ok = bad.is_empty() && raw.is_ok();
    if ctx.json {
        let report = VerifyReport {
            dataset: ctx.kind,
            location: &location,
            digests_checked: ctx.verify == Verify::Digests,
            files: &files,
            train_examples,
            test_examples,
            ok,
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} in {}", ctx.kind, describe(&location, ctx.kind))?;
        write_files(out, &files)?;
        if raw.is_ok() {
            writeln!(
                out,
                "format: valid, {train_examples} training and {test_examples} test examples"
            )?;
        }
    }
    // A file under another known file's name (swapped training and test files) is
    // named before anything it causes (the format check reports a count mismatch).
    for f in &bad {
        if let Some((other, role)) = DatasetKind::identify_file(&f.sha256)
            && role != f.role
        {
            bail!(
                "{} is {other}'s {role} file, not {}'s {}: put each file under its own name",
                f.path.display(),
                ctx.kind,
                f.role
            );
        }
    }
    if let Err(e) = raw {
        return Err(anyhow::Error::new(e).context("the files are not a valid dataset"));
    }
    if let [first, ..] = bad.as_slice() {
        let names: Vec<&str> = bad.iter().map(|f| f.role.file_name()).collect();
        let other = bad
            .iter()
            .map(|f| DatasetKind::identify(f.role, &f.sha256))
            .reduce(|a, b| if a == b { a } else { None })
            .flatten();
        if let Some(other) = other {
            bail!(
                "these are {other}'s files, not {}'s: did you mean --dataset {other}?",
                ctx.kind
            );
        }
        bail!(
            "{} of 4 files differ from the published SHA-256 ({}): delete them and run \
             `glorot data fetch --dataset {}`, or pass --no-verify for custom data (first: {})",
            bad.len(),
            names.join(", "),
            ctx.kind,
            first.path.display()
        );
    }
    Ok(())
}

fn write_files(out: &mut dyn Write, files: &[FileDigest]) -> std::io::Result<()> {
    writeln!(
        out,
        "  {:<25} {:<6} {:>10}  {:<64}  check",
        "file", "format", "bytes", "sha256"
    )?;
    for f in files {
        let check = match &f.check {
            DigestCheck::Match => "ok".to_owned(),
            DigestCheck::Mismatch { expected } => format!("MISMATCH (expected {expected})"),
            DigestCheck::NotChecked => "not checked".to_owned(),
        };
        writeln!(
            out,
            "  {:<25} {:<6} {:>10}  {}  {check}",
            f.role.file_name(),
            if f.gzip { "gzip" } else { "raw" },
            f.idx_bytes,
            f.sha256
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// info

#[derive(Serialize)]
struct SplitInfo {
    split: Split,
    examples: usize,
    class_counts: [usize; glorot_mnist::NUM_CLASSES],
}

#[derive(Serialize)]
struct InfoReport<'a> {
    dataset: DatasetKind,
    location: &'a Candidate,
    validation_size: usize,
    class_names: [&'static str; glorot_mnist::NUM_CLASSES],
    files: &'a [FileDigest],
    splits: Vec<SplitInfo>,
}

fn info(ctx: &Ctx<'_>, validation_size: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let location = ctx.locate()?;
    let raw: RawDataset = glorot_mnist::load_raw(&location.dir, ctx.kind, ctx.verify)?;
    let splits = Split::ALL
        .iter()
        .map(|&split| {
            let labels = raw.labels(split, validation_size)?;
            Ok(SplitInfo {
                split,
                examples: labels.len(),
                class_counts: glorot_mnist::class_counts(labels),
            })
        })
        .collect::<Result<Vec<_>, glorot_mnist::Error>>()?;
    let class_names = ctx.kind.class_names();
    if ctx.json {
        let report = InfoReport {
            dataset: ctx.kind,
            location: &location,
            validation_size,
            class_names,
            files: &raw.files,
            splits,
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{} in {}", ctx.kind, describe(&location, ctx.kind))?;
    write_files(out, &raw.files)?;
    writeln!(out)?;
    write!(out, "  {:<12}", "class")?;
    for s in &splits {
        write!(out, " {:>11}", s.split.name())?;
    }
    writeln!(out)?;
    for (class, name) in class_names.iter().enumerate() {
        let label = class.to_string();
        let label = if *name == label {
            label
        } else {
            format!("{class} {name}")
        };
        write!(out, "  {label:<12}")?;
        for s in &splits {
            write!(out, " {:>11}", s.class_counts[class])?;
        }
        writeln!(out)?;
    }
    write!(out, "  {:<12}", "total")?;
    for s in &splits {
        write!(out, " {:>11}", s.examples)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "  (validation = the last {validation_size} training examples; train = the rest)"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use glorot_mnist::{FileRole, idx};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Subcommand, Debug)]
    enum Top {
        Data(DataArgs),
    }

    /// Runs `glorot data ARGS` in `cwd`, returning (result, stdout, stderr).
    fn glorot_data(cwd: &Path, args: &[&str]) -> (anyhow::Result<()>, String, String) {
        let cli = Cli::try_parse_from(["glorot", "data"].iter().chain(args)).unwrap();
        let Top::Data(args) = cli.command;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = run_with(args, cwd, &mut out, &mut err, false);
        (
            r,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// A custom dataset: 6 training images labelled 0..=5, 2 test images.
    fn custom_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |role: FileRole, dims: &[u32], data: &[u8]| {
            std::fs::write(
                dir.path().join(role.gz_name()),
                idx::gzip(&idx::encode(dims, data)),
            )
            .unwrap();
        };
        write(FileRole::TrainImages, &[6, 28, 28], &[9; 6 * 784]);
        write(FileRole::TrainLabels, &[6], &[0, 1, 2, 3, 4, 5]);
        write(FileRole::TestImages, &[2, 28, 28], &[0; 2 * 784]);
        write(FileRole::TestLabels, &[2], &[7, 7]);
        dir
    }

    /// A loopback port with nothing listening (bound, noted, closed).
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn real_mnist() -> Option<PathBuf> {
        let dir = std::env::var_os("GLOROT_MNIST_DIR").filter(|v| !v.is_empty())?;
        let dir = PathBuf::from(dir);
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        [dir.clone(), workspace.join(&dir)]
            .into_iter()
            .find(|d| d.is_dir())
    }

    #[test]
    fn flags_parse_before_and_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "glorot",
            "data",
            "--dataset",
            "fashion-mnist",
            "info",
            "--json",
            "--data-dir",
            "/x",
            "--validation-size",
            "5",
        ])
        .unwrap();
        let Top::Data(args) = cli.command;
        assert_eq!(args.dataset, DatasetArg::FashionMnist);
        assert!(args.json && !args.no_verify);
        assert_eq!(args.data_dir.as_deref(), Some(Path::new("/x")));
        assert!(matches!(
            args.command,
            DataCommand::Info(InfoArgs { validation_size: 5 })
        ));
        assert!(Cli::try_parse_from(["glorot", "data", "--dataset", "emnist", "info"]).is_err());
    }

    #[test]
    fn info_counts_classes_per_split_as_json() {
        let dir = custom_dir();
        let d = dir.path().to_str().unwrap();
        let (r, out, _) = glorot_data(
            dir.path(),
            &[
                "info",
                "--data-dir",
                d,
                "--no-verify",
                "--json",
                "--validation-size",
                "2",
            ],
        );
        r.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["dataset"], "mnist");
        assert_eq!(v["location"]["source"], "explicit");
        assert_eq!(v["splits"][0]["split"], "train");
        assert_eq!(
            v["splits"][0]["class_counts"],
            serde_json::json!([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
        );
        assert_eq!(
            v["splits"][1]["class_counts"],
            serde_json::json!([0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
        );
        assert_eq!(v["splits"][2]["examples"], 2);
        assert_eq!(v["files"][0]["check"]["status"], "not-checked");
        assert_eq!(v["files"][0]["gzip"], true);
    }

    #[test]
    fn info_table() {
        let dir = custom_dir();
        let d = dir.path().to_str().unwrap();
        let (r, out, _) = glorot_data(
            dir.path(),
            &[
                "--dataset",
                "fashion-mnist",
                "info",
                "--data-dir",
                d,
                "--no-verify",
                "--validation-size",
                "3",
            ],
        );
        r.unwrap();
        assert!(out.contains("fashion-mnist in"), "{out}");
        assert!(out.contains("0 T-shirt/top"), "{out}");
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["total", "3", "3", "2"]),
            "{out}"
        );
    }

    #[test]
    fn custom_data_fails_verification_unless_told() {
        let dir = custom_dir();
        let d = dir.path().to_str().unwrap();
        let (r, out, _) = glorot_data(dir.path(), &["verify", "--data-dir", d]);
        let msg = format!("{:#}", r.unwrap_err());
        assert!(msg.contains("4 of 4 files differ"), "{msg}");
        assert!(msg.contains("glorot data fetch --dataset mnist"), "{msg}");
        assert!(out.contains("MISMATCH"), "{out}");
        let (r, out, _) = glorot_data(dir.path(), &["verify", "--data-dir", d, "--no-verify"]);
        r.unwrap();
        assert!(
            out.contains("format: valid, 6 training and 2 test examples"),
            "{out}"
        );
        // info refuses unverifiable data too, naming the file.
        let (r, _, _) = glorot_data(dir.path(), &["info", "--data-dir", d]);
        let msg = format!("{:#}", r.unwrap_err());
        assert!(
            msg.contains("train-images-idx3-ubyte.gz: SHA-256 mismatch"),
            "{msg}"
        );
    }

    #[test]
    fn verify_reports_a_malformed_file() {
        let dir = custom_dir();
        std::fs::write(
            dir.path().join(FileRole::TestLabels.gz_name()),
            idx::gzip(&idx::encode(&[2], &[7, 10])),
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        let (r, _, _) = glorot_data(dir.path(), &["verify", "--data-dir", d, "--no-verify"]);
        let msg = format!("{:#}", r.unwrap_err());
        assert!(msg.contains("label 10 at index 1"), "{msg}");
    }

    #[test]
    fn a_missing_directory_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing-here");
        let (r, _, _) = glorot_data(
            dir.path(),
            &["info", "--data-dir", missing.to_str().unwrap()],
        );
        let msg = format!("{:#}", r.unwrap_err());
        assert!(
            msg.contains("nothing-here") && msg.contains("missing"),
            "{msg}"
        );
    }

    #[test]
    fn fetch_with_every_mirror_down_explains_and_leaves_nothing() {
        // A loopback port with nothing listening: every connection is refused at once.
        let port = closed_port();
        let (a, b) = (
            format!("http://127.0.0.1:{port}/a"),
            format!("http://127.0.0.1:{port}/b/"),
        );
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mnist");
        let (r, _, err) = glorot_data(
            dir.path(),
            &[
                "fetch",
                "--data-dir",
                target.to_str().unwrap(),
                "--mirror",
                &a,
                "--mirror",
                &b,
            ],
        );
        let msg = format!("{:#}", r.unwrap_err());
        assert!(
            msg.contains("could not download train-images-idx3-ubyte.gz"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{a}/train-images-idx3-ubyte.gz")),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{b}train-images-idx3-ubyte.gz")),
            "{msg}"
        );
        assert!(msg.contains("To place the files by hand"), "{msg}");
        assert!(err.contains(&format!("rejected {a}/")), "{err}");
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "nothing half-written"
        );
    }

    #[test]
    fn fetch_finds_a_complete_dataset_and_downloads_nothing() {
        let Some(real) = real_mnist() else {
            #[allow(clippy::print_stderr, reason = "a skipped test says why")]
            {
                eprintln!("note: skipping: GLOROT_MNIST_DIR is not set");
            }
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (r, out, _) = glorot_data(
            dir.path(),
            &[
                "fetch",
                "--json",
                "--data-dir",
                real.to_str().unwrap(),
                "--mirror",
                &format!("http://127.0.0.1:{}/", closed_port()),
            ],
        );
        r.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        for f in v["files"].as_array().unwrap() {
            assert_eq!(f["outcome"]["outcome"], "already-present");
        }
        let (r, out, _) = glorot_data(
            dir.path(),
            &["verify", "--data-dir", real.to_str().unwrap()],
        );
        r.unwrap();
        assert_eq!(out.matches("  ok").count(), 4, "{out}");
        let (r, _, _) = glorot_data(
            dir.path(),
            &[
                "--dataset",
                "fashion-mnist",
                "verify",
                "--data-dir",
                real.to_str().unwrap(),
            ],
        );
        let msg = format!("{:#}", r.unwrap_err());
        assert!(msg.contains("did you mean --dataset mnist?"), "{msg}");
        let (r, out, _) = glorot_data(dir.path(), &["info", "--data-dir", real.to_str().unwrap()]);
        r.unwrap();
        // ../shared/README.md: the validation split holds 1,064 ones.
        let ones: Vec<&str> = out
            .lines()
            .find(|l| l.trim_start().starts_with("1 "))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(ones, ["1", "5678", "1064", "1135"], "{out}");
    }
}
