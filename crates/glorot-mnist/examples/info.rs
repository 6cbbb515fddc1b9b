//! Loads a dataset the way training does and prints what is in it, and how long it took.
//!
//! ```text
//! cargo run --release -p glorot-mnist --example info -- [DIR] [--fashion] [--div255]
//! ```
//!
//! Without `DIR`, the dataset is looked for as `glorot` does: `GLOROT_MNIST_DIR`
//! (`GLOROT_FASHION_MNIST_DIR`), then `<workspace>/data/mnist` (`fashion-mnist`) inside
//! the glorot workspace or the per-user data directory outside it
//! (`~/.local/share/glorot/mnist` on Linux), then system package directories.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use glorot_mnist::{DatasetKind, LoadOptions, PixelScale, Split};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut kind = DatasetKind::Mnist;
    let mut scale = PixelScale::Div256;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--fashion" => kind = DatasetKind::FashionMnist,
            "--div255" => scale = PixelScale::Div255,
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let root = glorot_mnist::default_data_root(&std::env::current_dir()?);
    let dir = glorot_mnist::locate(kind, dir.as_deref(), root.as_ref())?;

    let options = LoadOptions {
        dataset: kind,
        scale,
        ..LoadOptions::default()
    };
    let start = Instant::now();
    let data = glorot_mnist::load(&dir, &options)?;
    let elapsed = start.elapsed();

    let mut out = std::io::stdout().lock();
    writeln!(out, "{kind} in {}", dir.display())?;
    writeln!(
        out,
        "loaded, verified, split and scaled in {:.3} s",
        elapsed.as_secs_f64()
    )?;
    for file in &data.files {
        writeln!(
            out,
            "  {:<26} {:>9} bytes{} sha256 {} ({:?})",
            file.role.file_name(),
            file.idx_bytes,
            if file.gzip { " (gzip)" } else { "       " },
            file.sha256,
            file.check
        )?;
    }
    let names = kind.class_names();
    write!(out, "{:<12}", "class")?;
    for split in Split::ALL {
        write!(out, "{:>12}", split.name())?;
    }
    writeln!(out)?;
    let counts = Split::ALL.map(|s| data.split(s).class_counts());
    for (class, name) in names.iter().enumerate() {
        write!(out, "{name:<12}")?;
        for c in &counts {
            write!(out, "{:>12}", c[class])?;
        }
        writeln!(out)?;
    }
    write!(out, "{:<12}", "total")?;
    for split in Split::ALL {
        write!(out, "{:>12}", data.split(split).len())?;
    }
    writeln!(out)?;
    let mean = data.train.images.mean().unwrap_or(0.0);
    writeln!(out, "mean training pixel: {mean:.4} ({scale:?})")?;
    Ok(())
}
