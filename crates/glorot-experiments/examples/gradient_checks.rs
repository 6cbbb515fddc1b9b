//! The notebook's Part 3 (gradient checks of a 784-500-500-10 tanh network against
//! central differences) through the library, then `REPORT.md` from its results file.
//!
//! ```text
//! GLOROT_MNIST_DIR=/path/to/mnist cargo run -p glorot-experiments --example gradient_checks -- /tmp/out
//! ```
//!
//! Needs the MNIST files (`glorot data fetch`); writes `part3.json` and `REPORT.md` into
//! the directory given (default: a new temporary directory).

// A binary picks the BLAS provider: here Debian's OpenBLAS, as the workspace's binaries.
extern crate blas_src;

use std::path::PathBuf;

use glorot_experiments::{Data, DataSpec, Observer, RunContext, part3, reference};

/// Prints every message on stdout.
struct Print;

impl Observer for Print {
    fn message(&self, message: &str) {
        #[allow(clippy::print_stdout)]
        {
            println!("{message}");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => tempfile::tempdir()?.keep(),
    };
    let spec = DataSpec::default();
    let dir = glorot_mnist::locate(spec.dataset, None, None)?;
    let data = Data::from_loaded(glorot_experiments::data::load(&dir, &spec)?);
    let notebook = reference::notebook()?;
    let machine = glorot_search::Manifest::detect("unknown", "OpenBLAS", 1, 1);
    let ctx = RunContext::new(std::env::args(), machine);

    let file = part3::run(&out, &data, 0, false, &ctx, &notebook, &Print)?;
    for cell in &file.cells {
        Print.message(&format!(
            "{}: loss {:.6}, largest |analytic - numerical| {:.3e} at N = 10^4",
            cell.name,
            cell.loss,
            cell.check.steps.get(4).map_or(f64::NAN, |s| s.max_abs_diff)
        ));
    }
    glorot_experiments::finish(&out, &notebook)?;
    Print.message(&format!("wrote {}", out.join("REPORT.md").display()));
    Ok(())
}
