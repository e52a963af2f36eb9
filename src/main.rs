//! The `personalize-ops` binary: parses the command line, initialises tracing, dispatches to `cli`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::main(args)
}
