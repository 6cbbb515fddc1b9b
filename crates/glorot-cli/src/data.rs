//! `glorot data`: fetch, verify and describe the datasets; and [`find_or_fetch`], which
//! every command that needs data goes through.
//!
//! Where the files are looked for, in order ([`glorot_mnist::candidates`]): `--data-dir`,
//! else `GLOROT_MNIST_DIR` (`GLOROT_FASHION_MNIST_DIR`), else the default directory:
//! `<workspace>/data/mnist` (`data/fashion-mnist`) inside the glorot workspace, the per-user
//! `$XDG_DATA_HOME/glorot/mnist` (`~/.local/share/glorot/mnist`) outside it; then system
//! package directories (`/usr/share/datasets/fashion-mnist`). `fetch` downloads what is
//! missing into the first of `--data-dir`, the environment variable's directory, the
//! default directory. The other commands download a missing dataset into the default
//! directory only (a directory the user named is taken at its word), unless `--offline`
//! or `GLOROT_OFFLINE=1`. All printing happens here; the library reports through values
//! and a progress callback.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use glorot_mnist::download::{FetchEvent, FetchOutcome, Fetched, Mirror, Verified};
use glorot_mnist::{
    Candidate, DataRoot, DatasetKind, DigestCheck, FileDigest, FileRole, RawDataset, Source, Split,
    Verify,
};
use serde::Serialize;

use crate::common::UsageError;

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
    /// or $GLOROT_FASHION_MNIST_DIR, then <workspace>/data/<dataset> inside the glorot
    /// workspace, else $XDG_DATA_HOME/glorot/<dataset> (~/.local/share/glorot/<dataset>)]
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
    /// Mirror base URL to try, in order (repeatable or comma-separated) [default:
    /// $GLOROT_MNIST_MIRROR (resp. $GLOROT_FASHION_MNIST_MIRROR), else the public mirrors
    /// torchvision and TensorFlow Datasets use].
    #[arg(long = "mirror", value_name = "URL", value_delimiter = ',', value_parser = parse_mirror)]
    mirrors: Vec<String>,
    /// Download nothing: check what is there and, if files are missing, say which to put
    /// where [also GLOROT_OFFLINE=1].
    #[arg(long)]
    offline: bool,
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
        glorot_mnist::default_data_root(&cwd),
        &mut std::io::stdout().lock(),
        &mut stderr.lock(),
        progress,
    )
}

/// [`run`] with the default data root and output streams passed in (for tests).
fn run_with(
    args: DataArgs,
    root: Option<DataRoot>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<()> {
    let kind = DatasetKind::from(args.dataset);
    let verify = if args.no_verify {
        Verify::Skip
    } else {
        Verify::Digests
    };
    let ctx = Ctx {
        kind,
        data_dir: args.data_dir.as_deref(),
        root: root.as_ref(),
        verify,
        json: args.json,
    };
    match args.command {
        DataCommand::Fetch(f) => {
            let net = Network::new(kind, f.offline, &f.mirrors)?;
            fetch(&ctx, &net, out, err, progress)
        }
        DataCommand::Verify => verify_cmd(&ctx, out),
        DataCommand::Info(i) => info(&ctx, i.validation_size, out),
    }
}

struct Ctx<'a> {
    kind: DatasetKind,
    data_dir: Option<&'a Path>,
    root: Option<&'a DataRoot>,
    verify: Verify,
    json: bool,
}

impl Ctx<'_> {
    /// The directory holding the dataset, and why it was searched.
    fn locate(&self) -> anyhow::Result<Candidate> {
        Ok(glorot_mnist::find(self.kind, self.data_dir, self.root)?)
    }
}

/// `DIR (why it was chosen)`.
fn describe(c: &Candidate, kind: DatasetKind) -> String {
    let why = match c.source {
        Source::Explicit => "from --data-dir".to_owned(),
        Source::EnvVar => format!("from {}", kind.env_var()),
        Source::DataRoot => "the glorot workspace's data directory".to_owned(),
        Source::UserData => "your data directory outside the glorot workspace".to_owned(),
        Source::System => "a system package directory".to_owned(),
        _ => "searched".to_owned(),
    };
    format!("{} ({why})", c.dir.display())
}

// ---------------------------------------------------------------------------------------
// Network: offline, mirrors

/// Whether a missing dataset may be downloaded, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Network {
    /// `--offline` or `GLOROT_OFFLINE`: never touch the network.
    Offline,
    /// Download from these mirrors, in order.
    Mirrors(Vec<Mirror>),
}

/// The environment variable that forbids downloads, as `--offline` does.
pub(crate) const OFFLINE_ENV: &str = "GLOROT_OFFLINE";

impl Network {
    /// From the flags, else the environment: `--offline` or `GLOROT_OFFLINE=1`;
    /// `--mirror URL...`, else `GLOROT_MNIST_MIRROR` (comma-separated), else the public
    /// mirrors. A malformed variable is a usage error naming it.
    pub(crate) fn new(
        kind: DatasetKind,
        offline: bool,
        mirrors: &[String],
    ) -> anyhow::Result<Network> {
        Network::from_env(kind, offline, mirrors, |var| std::env::var(var).ok())
    }

    /// [`Network::new`] reading variables through `var` (for tests).
    fn from_env(
        kind: DatasetKind,
        offline: bool,
        mirrors: &[String],
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Network> {
        if offline || parse_switch(OFFLINE_ENV, var(OFFLINE_ENV).as_deref())? {
            return Ok(Network::Offline);
        }
        if !mirrors.is_empty() {
            return Ok(Network::Mirrors(mirrors.iter().map(Mirror::new).collect()));
        }
        let name = kind.mirror_env_var();
        let from_env: Vec<Mirror> = var(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                parse_mirror(m)
                    .map(Mirror::new)
                    .map_err(|e| UsageError(format!("{name}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Network::Mirrors(if from_env.is_empty() {
            Mirror::defaults(kind)
        } else {
            from_env
        }))
    }
}

/// A yes/no environment variable: unset, empty, `0`, `false`, `no`, `off` are no; `1`,
/// `true`, `yes`, `on` are yes (any case); anything else is a usage error.
fn parse_switch(name: &str, value: Option<&str>) -> anyhow::Result<bool> {
    let value = value.unwrap_or("").trim();
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Ok(false),
        "1" | "true" | "yes" | "on" => Ok(true),
        _ => Err(UsageError(format!(
            "{name}={value:?}: expected 1, true, yes or on (or 0, false, no, off)"
        ))
        .into()),
    }
}

/// A mirror's base URL (clap value parser): `http://` or `https://` and a host.
pub(crate) fn parse_mirror(s: &str) -> Result<String, String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(s.to_owned()),
        _ => Err(format!(
            "`{s}` is not a mirror URL: expected http://HOST[:PORT]/PATH/ or https://..., \
             the directory holding the four .gz files"
        )),
    }
}

/// Finds `kind` as every command does ([`glorot_mnist::find`] with the default data root
/// for the working directory) and, when it is missing from the default directory,
/// downloads it there through [`ensure_dataset`], with progress on stderr (live on a
/// terminal, plain lines otherwise). A directory named by `--data-dir` or the environment
/// variable is never filled by itself: a missing file there is an error saying how to
/// fetch it. Offline, a missing dataset is an error listing what was searched and which
/// files to put where.
pub(crate) fn find_or_fetch(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    net: &Network,
) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root = glorot_mnist::default_data_root(&cwd);
    let progress = crate::common::Stderr::new(false).is_live();
    find_or_fetch_in(
        kind,
        glorot_mnist::candidates(kind, data_dir, root.as_ref()),
        net,
        &mut std::io::stderr().lock(),
        progress,
    )
}

/// [`find_or_fetch`] among `candidates` ([`glorot_mnist::candidates`]), progress to `err`.
fn find_or_fetch_in(
    kind: DatasetKind,
    candidates: Vec<Candidate>,
    net: &Network,
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<PathBuf> {
    match glorot_mnist::find_among(kind, candidates.clone()) {
        Ok(found) => Ok(found.dir),
        Err(glorot_mnist::Error::MissingFiles { dir, missing }) => {
            // One message from the error's parts: the directory is named once.
            let named = candidates
                .first()
                .map_or_else(|| dir.display().to_string(), |c| describe(c, kind));
            anyhow::bail!(
                "cannot find the {kind} files in {named}: missing {} (each as NAME or NAME.gz); \
                 put them there, or fetch them with `glorot data fetch --dataset {kind}` (with \
                 the same --data-dir or {})",
                missing.join(", "),
                kind.env_var()
            )
        }
        Err(glorot_mnist::Error::NotFound { searched, .. }) => {
            if *net == Network::Offline {
                let target = download_target(&candidates);
                anyhow::bail!("{}", offline_message(kind, &searched, target));
            }
            let searched: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
            writeln!(
                err,
                "{kind} is not in {}: downloading it (--offline or {OFFLINE_ENV}=1 forbids \
                 this)",
                if searched.is_empty() {
                    "any directory searched".to_owned()
                } else {
                    searched.join(", ")
                }
            )?;
            let (target, _) = ensure_dataset(kind, candidates, net, err, progress)?;
            Ok(target.dir)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot use the {kind} files"))),
    }
}

/// Where a download goes: the first candidate that is not a system directory (the
/// explicit or environment directory, else the default one).
fn download_target(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.iter().find(|c| c.source != Source::System)
}

/// The error when `kind` is missing and downloads are forbidden: what was searched, which
/// files to put where (with sizes and digests), and where to get them.
fn offline_message(kind: DatasetKind, searched: &[PathBuf], target: Option<&Candidate>) -> String {
    let mut msg =
        format!("{kind} is not here and downloads are off (--offline or {OFFLINE_ENV}); searched:");
    if searched.is_empty() {
        msg.push_str(" nothing (no --data-dir, no environment variable, no home directory)");
    }
    for dir in searched {
        msg.push_str(&format!("\n  - {}", dir.display()));
    }
    let place = target.map_or_else(|| "a directory".to_owned(), |t| t.dir.display().to_string());
    msg.push_str(&format!(
        "\nPut these four files in {place} (or in a directory passed with --data-dir or named \
         by {}), as .gz or decompressed:",
        kind.env_var()
    ));
    for role in FileRole::ALL {
        let k = kind.known(role);
        msg.push_str(&format!(
            "\n  {:<27} {:>9} bytes, SHA-256 {} (decompressed: {} bytes, SHA-256 {})",
            role.gz_name(),
            k.gz_bytes,
            k.gz_sha256,
            k.idx_bytes,
            k.idx_sha256
        ));
    }
    msg.push_str(&format!(
        "\nThey are on the public mirrors ({}), or serve your own copy over HTTP and point \
         {} (or --mirror) at it with downloads on. A recompressed copy is fine: its \
         decompressed SHA-256 is what counts.",
        kind.default_mirrors().join(", "),
        kind.mirror_env_var()
    ));
    msg
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
    net: &Network,
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<()> {
    let candidates = glorot_mnist::candidates(ctx.kind, ctx.data_dir, ctx.root);
    let (target, fetched) = ensure_dataset(ctx.kind, candidates, net, err, progress)?;
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
                FetchOutcome::Downloaded {
                    url,
                    verified: Verified::Recompressed,
                } => format!("downloaded from {url}, verified (a recompressed copy)"),
                FetchOutcome::Downloaded { url, .. } => format!("downloaded from {url}, verified"),
            };
            writeln!(out, "{:<28} {how}", f.file)?;
        }
        writeln!(out, "{} is ready in {}", ctx.kind, target.dir.display())?;
    }
    Ok(())
}

/// Finds `kind` as every `glorot` command does (`data_dir`, then the environment
/// variable, then `<root>/<dataset>`, then system directories) and makes sure its four
/// files are there and match the published digests, downloading what is missing from the
/// mirrors of `net` into the first of `data_dir`, the environment variable's directory,
/// `<root>/<dataset>`. Progress goes to `err` (`progress`: draw percentages, for a
/// terminal). Offline, files already there are verified and a missing one is an error
/// saying what to put where. This is `glorot data fetch`, and what [`find_or_fetch`]
/// calls for a missing dataset. `candidates` come from [`glorot_mnist::candidates`].
pub(crate) fn ensure_dataset(
    kind: DatasetKind,
    candidates: Vec<Candidate>,
    net: &Network,
    err: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<(Candidate, Vec<Fetched>)> {
    // Where the dataset would be found; else where a download goes.
    let target = match glorot_mnist::find_among(kind, candidates.clone()) {
        Ok(found) => found,
        Err(glorot_mnist::Error::NotFound { .. } | glorot_mnist::Error::MissingFiles { .. }) => {
            download_target(&candidates).cloned().context(
                "no directory to download into (outside the glorot workspace with no home \
                 directory): pass --data-dir or set the dataset's environment variable",
            )?
        }
        Err(e) => return Err(e.into()),
    };
    writeln!(err, "{kind}: {}", describe(&target, kind))?;
    let mirrors = match net {
        Network::Mirrors(mirrors) => mirrors.as_slice(),
        Network::Offline => {
            if glorot_mnist::find_files(&target.dir).is_err() {
                anyhow::bail!(
                    "{}",
                    offline_message(kind, std::slice::from_ref(&target.dir), Some(&target))
                );
            }
            let present = glorot_mnist::verify_dir(&target.dir, kind)?
                .into_iter()
                .map(|d| Fetched {
                    file: d.role.file_name().to_owned(),
                    path: d.path,
                    outcome: FetchOutcome::AlreadyPresent,
                })
                .collect();
            return Ok((target, present));
        }
    };
    let mut reporter = Reporter {
        err,
        progress,
        failed: None,
    };
    let fetched =
        glorot_mnist::download::fetch(&target.dir, kind, mirrors, &mut |e| reporter.event(e));
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
                let pct = (received * 100).checked_div(total).unwrap_or(100).min(100);
                write!(self.err, "\r  {file}: {pct:>3}% of {total} bytes")
            }
            FetchEvent::Rejected { url, failure, .. } => {
                self.finish_line();
                writeln!(self.err, "  rejected {url}: {failure}")
            }
            FetchEvent::Saved {
                path,
                bytes,
                verified,
                ..
            } => {
                self.finish_line();
                let how = match verified {
                    Verified::Recompressed => {
                        "a recompressed copy: its decompressed SHA-256 is the canonical one"
                    }
                    _ => "its SHA-256 is the published one",
                };
                writeln!(
                    self.err,
                    "  saved {} ({bytes} bytes; {how})",
                    path.display()
                )
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

    /// Runs `glorot data ARGS` with `<dir>/user-data` as the default data root, returning
    /// (result, stdout, stderr).
    fn glorot_data(dir: &Path, args: &[&str]) -> (anyhow::Result<()>, String, String) {
        let cli = Cli::try_parse_from(["glorot", "data"].iter().chain(args)).unwrap();
        let Top::Data(args) = cli.command;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let root = DataRoot::user(dir.join("user-data"));
        let r = run_with(args, Some(root), &mut out, &mut err, false);
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

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn offline_and_mirrors_from_flags_then_environment() {
        let kind = DatasetKind::Mnist;
        let env = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            }
        };
        assert_eq!(
            Network::from_env(kind, false, &[], no_env).unwrap(),
            Network::Mirrors(Mirror::defaults(kind))
        );
        assert_eq!(
            Network::from_env(kind, true, &["http://x/".to_owned()], no_env).unwrap(),
            Network::Offline
        );
        for yes in ["1", "true", "YES", " on "] {
            assert_eq!(
                Network::from_env(kind, false, &[], env(&[("GLOROT_OFFLINE", yes)])).unwrap(),
                Network::Offline,
                "{yes}"
            );
        }
        for no in ["", "0", "false", "No", "off"] {
            assert!(
                matches!(
                    Network::from_env(kind, false, &[], env(&[("GLOROT_OFFLINE", no)])).unwrap(),
                    Network::Mirrors(_)
                ),
                "{no}"
            );
        }
        let e =
            Network::from_env(kind, false, &[], env(&[("GLOROT_OFFLINE", "maybe")])).unwrap_err();
        assert!(
            e.is::<UsageError>() && e.to_string().contains("GLOROT_OFFLINE"),
            "{e}"
        );

        let mirrors = env(&[(
            "GLOROT_MNIST_MIRROR",
            "http://127.0.0.1:8000/, https://m.example/mnist",
        )]);
        assert_eq!(
            Network::from_env(kind, false, &[], &mirrors).unwrap(),
            Network::Mirrors(vec![
                Mirror::new("http://127.0.0.1:8000/"),
                Mirror::new("https://m.example/mnist/"),
            ])
        );
        // The flag beats the variable; Fashion-MNIST has a variable of its own.
        assert_eq!(
            Network::from_env(kind, false, &["http://flag/".to_owned()], &mirrors).unwrap(),
            Network::Mirrors(vec![Mirror::new("http://flag/")])
        );
        assert_eq!(
            Network::from_env(DatasetKind::FashionMnist, false, &[], &mirrors).unwrap(),
            Network::Mirrors(Mirror::defaults(DatasetKind::FashionMnist))
        );
        let e = Network::from_env(
            kind,
            false,
            &[],
            env(&[("GLOROT_MNIST_MIRROR", "ftp://x/")]),
        )
        .unwrap_err();
        assert!(e.is::<UsageError>(), "{e}");
        assert!(
            e.to_string().starts_with("GLOROT_MNIST_MIRROR: `ftp://x/`"),
            "{e}"
        );
        assert!(parse_mirror("http:///x").is_err());
        assert!(parse_mirror("127.0.0.1:8000").is_err());
        let cli = Cli::try_parse_from([
            "glorot",
            "data",
            "fetch",
            "--mirror",
            "http://a/,http://b/",
            "--mirror=http://c/",
        ])
        .unwrap();
        let Top::Data(DataArgs {
            command: DataCommand::Fetch(f),
            ..
        }) = cli.command
        else {
            panic!("expected fetch")
        };
        assert_eq!(f.mirrors, ["http://a/", "http://b/", "http://c/"]);
    }

    /// Offline with nothing anywhere: the error lists what was searched, each file with
    /// its sizes and digests (`../shared/README.md`), where to put them and where to get
    /// them; nothing is created.
    #[test]
    fn offline_and_missing_says_what_to_put_where() {
        let dir = tempfile::tempdir().unwrap();
        let root = DataRoot::user(dir.path().join("glorot"));
        let mut err = Vec::new();
        let e = find_or_fetch_in(
            DatasetKind::Mnist,
            glorot_mnist::candidates_given_env(DatasetKind::Mnist, None, None, Some(&root)),
            &Network::Offline,
            &mut err,
            false,
        )
        .unwrap_err();
        let msg = format!("{e:#}");
        let target = dir.path().join("glorot/mnist").display().to_string();
        assert!(msg.contains(&format!("searched:\n  - {target}\n")), "{msg}");
        assert!(
            msg.contains(&format!("Put these four files in {target}")),
            "{msg}"
        );
        for needle in [
            "train-images-idx3-ubyte.gz    9912422 bytes, SHA-256 \
             440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 (decompressed: \
             47040016 bytes, SHA-256 \
             ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db)",
            "t10k-labels-idx1-ubyte.gz",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "GLOROT_MNIST_MIRROR",
            "GLOROT_MNIST_DIR",
            "--offline",
        ] {
            assert!(msg.contains(needle), "lacks {needle}: {msg}");
        }
        assert!(err.is_empty());
        assert!(!dir.path().join("glorot").exists(), "nothing created");
        // `glorot data fetch --offline` says the same, for the directory it would fill.
        let named = dir.path().join("named");
        let (r, _, _) = glorot_data(
            dir.path(),
            &["fetch", "--offline", "--data-dir", named.to_str().unwrap()],
        );
        let msg = format!("{:#}", r.unwrap_err());
        assert!(msg.contains("downloads are off"), "{msg}");
        assert!(
            msg.contains(&format!("Put these four files in {}", named.display())),
            "{msg}"
        );
        assert!(!named.exists(), "nothing created");
    }

    /// A directory the user named is never filled by itself: the error says how to fetch
    /// into it, and no mirror is asked (a closed loopback port would say "transfer
    /// failed").
    #[test]
    fn a_named_directory_is_not_filled_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("mine");
        let net = Network::Mirrors(vec![Mirror::new(format!(
            "http://127.0.0.1:{}/",
            closed_port()
        ))]);
        let mut err = Vec::new();
        let root = DataRoot::user(dir.path().join("root"));
        let e = find_or_fetch_in(
            DatasetKind::Mnist,
            glorot_mnist::candidates(DatasetKind::Mnist, Some(&named), Some(&root)),
            &net,
            &mut err,
            false,
        )
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&format!("in {} (from --data-dir)", named.display())),
            "{msg}"
        );
        assert!(msg.contains("glorot data fetch --dataset mnist"), "{msg}");
        assert!(!msg.contains("transfer failed"), "{msg}");
        assert!(err.is_empty());
        assert!(!named.exists() && !dir.path().join("root").exists());
    }

    /// The default directory is filled from the mirrors: with every mirror down, the
    /// error is the downloader's (each mirror tried), after saying what it does.
    #[test]
    fn a_missing_default_directory_is_downloaded_into() {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port();
        let net = Network::Mirrors(vec![Mirror::new(format!("http://127.0.0.1:{port}/"))]);
        let mut err = Vec::new();
        let root = DataRoot::workspace(dir.path().join("data"));
        let candidates =
            glorot_mnist::candidates_given_env(DatasetKind::Mnist, None, None, Some(&root));
        let e =
            find_or_fetch_in(DatasetKind::Mnist, candidates, &net, &mut err, false).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&format!(
                "could not download train-images-idx3-ubyte.gz from any mirror:\n  - \
                 http://127.0.0.1:{port}/train-images-idx3-ubyte.gz: transfer failed"
            )),
            "{msg}"
        );
        let err = String::from_utf8(err).unwrap();
        let target = dir.path().join("data/mnist");
        assert!(
            err.starts_with(&format!(
                "mnist is not in {}: downloading it",
                target.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("(the glorot workspace's data directory)"),
            "{err}"
        );
        // The directory exists (created for the download) and holds nothing half-written.
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    }
}
