//! Writes seeded synthetic Personalize data with planted structure (taste clusters, item categories,
//! recency, popularity skew) as `interactions.csv`, `items.csv` and `users.csv`.
//!
//! `cargo run --example gen_data -- --out DIR --users N --items N --interactions N --seed S [--categories K]`
//!
//! Columns, in the order written (timestamps in Unix epoch seconds):
//! ```text
//! interactions.csv  USER_ID, ITEM_ID, TIMESTAMP (long), EVENT_TYPE (click | purchase)
//! items.csv         ITEM_ID, CATEGORY (categorical), CREATION_TIMESTAMP (long)
//! users.csv         USER_ID, SEGMENT (categorical)
//! ```
//! The same arguments always write the same bytes. The structure planted and the Avro schemas are
//! documented in `personalize_ops::emulator::engine::synthetic`.

use std::path::PathBuf;

use clap::Parser;
use personalize_ops::emulator::engine::synthetic::{self, Params};

#[derive(Parser)]
#[command(about = "Write seeded synthetic Personalize CSVs with planted structure")]
struct Args {
    /// Directory to write the three CSVs into (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 500)]
    items: usize,
    #[arg(long, default_value_t = 20_000)]
    interactions: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Item categories, also the number of user taste clusters.
    #[arg(long, default_value_t = 8)]
    categories: usize,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_data: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), synthetic::SyntheticError> {
    let params = Params {
        categories: args.categories,
        ..Params::new(args.users, args.items, args.interactions, args.seed)
    };
    let data = synthetic::generate(&params)?;
    data.write_dir(&args.out)?;
    println!(
        "wrote {} interactions of {} users on {} items in {} categories to {}",
        data.interactions.len(),
        args.users,
        args.items,
        args.categories,
        args.out.display()
    );
    Ok(())
}
