//! `personalize-ops validate FILE…`: lint parameter files offline.
//!
//! Interim: checks that each file is readable JSON. The full validator lands with `spec`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, EXIT_FAILURE};

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Parameter files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Checks every file and prints `FILE: message` per problem.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<ExitCode> {
    let mut failed = 0usize;
    for file in &args.files {
        let problem = match std::fs::read(file) {
            Err(e) => Some(format!("cannot read: {e}")),
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .err()
                .map(|e| format!("Could not validate JSON: {e}")),
        };
        if let Some(p) = problem {
            failed += 1;
            println!("{}: {p}", file.display());
        }
    }
    println!("{} file(s) checked, {failed} invalid", args.files.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}
