//! `personalize-ops validate FILE…`: lint parameter files offline, every problem with its JSON path.
//!
//! Text output: errors go to stdout as `FILE: path: message`; warnings go to stderr as
//! `FILE: warning: path: message`, so `validate … > errors.txt` keeps only what makes a file invalid.
//! A summary line ends stdout. JSON output (`--format json`): one object per file and line on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use personalize_ops::spec::{self, Issue, MAX_FILE_BYTES, Report};
use serde_json::json;

use super::{Context, EXIT_FAILURE};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `FILE: path: message` lines and a summary.
    Text,
    /// One JSON object per file: `{"file", "valid", "errors", "warnings"}`.
    Json,
}

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Parameter files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Reads and validates one file; a file that cannot be read is reported like an invalid one.
fn check_file(path: &Path) -> Report {
    let unreadable = |message: String| Report {
        spec: None,
        errors: vec![Issue {
            path: String::new(),
            message,
        }],
        warnings: Vec::new(),
        dataset_group_name: None,
    };
    match std::fs::metadata(path) {
        Err(e) => return unreadable(format!("cannot read the file: {e}")),
        Ok(meta) if meta.len() > MAX_FILE_BYTES as u64 => {
            // Not read at all: the limit exists so a huge file costs nothing.
            return unreadable(format!(
                "the file is {} bytes; a parameter file may have at most {MAX_FILE_BYTES} bytes (1 MiB)",
                meta.len()
            ));
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Err(e) => unreadable(format!("cannot read the file: {e}")),
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => spec::load(&text),
            Err(e) => unreadable(format!("Could not validate JSON: the file is not UTF-8 ({e})")),
        },
    }
}

/// Checks every file; exit 0 when all are valid, 1 otherwise.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<ExitCode> {
    let mut invalid = 0usize;
    let mut warnings = 0usize;
    for file in &args.files {
        let report = check_file(file);
        let name = file.display();
        if !report.is_valid() {
            invalid += 1;
        }
        warnings += report.warnings.len();
        match args.format {
            Format::Text => {
                for error in &report.errors {
                    println!("{name}: {error}");
                }
                for warning in &report.warnings {
                    eprintln!("{name}: warning: {warning}");
                }
            }
            Format::Json => {
                let line = json!({
                    "file": name.to_string(),
                    "valid": report.is_valid(),
                    "errors": report.errors,
                    "warnings": report.warnings,
                });
                println!("{line}");
            }
        }
    }
    if args.format == Format::Text {
        println!(
            "{} file(s) checked: {} valid, {invalid} invalid, {warnings} warning(s)",
            args.files.len(),
            args.files.len() - invalid
        );
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}
