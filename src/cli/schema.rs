//! `personalize-ops schema`: print the JSON Schema (draft 2020-12) of the parameter file.

use std::process::ExitCode;

use personalize_ops::spec::json_schema::parameter_file_schema;

use super::Context;

/// Arguments of `schema` (none yet).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Prints the schema, pretty-printed, on stdout.
pub fn run(_args: Args, _ctx: &Context) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(&parameter_file_schema())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
