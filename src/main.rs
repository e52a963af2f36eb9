//! The `personalize-ops` binary: parses the command line, initialises tracing, dispatches to `cli`.

// Product code handles what comes from outside; tests may unwrap (clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::main(args)
}
