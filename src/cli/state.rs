//! Opening the state store the read-only commands (`status`, `schedules`) look at.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use personalize_ops::store::{DynamoStore, SqliteStore, StateStore};

use super::{Context, EXIT_FAILURE, EXIT_USAGE};

/// The state store `command` reads: the SQLite file of `local DIR`, else the DynamoDB table of the
/// settings. `Err(code)` after printing why neither is usable (1: no local state, 2: no table set).
pub async fn open_store(
    command: &str,
    local: Option<&Path>,
    ctx: &Context,
) -> anyhow::Result<Result<Arc<dyn StateStore>, ExitCode>> {
    let store: Arc<dyn StateStore> = match local {
        Some(dir) => {
            let path = super::local::state_path(dir);
            if !path.exists() {
                eprintln!(
                    "personalize-ops {command}: {} has no local state ({} missing)",
                    dir.display(),
                    path.display()
                );
                return Ok(Err(ExitCode::from(EXIT_FAILURE)));
            }
            Arc::new(SqliteStore::open(&path).context("the local state store")?)
        }
        None => {
            let table = ctx.settings.daemon.table_name.trim();
            if table.is_empty() {
                eprintln!(
                    "personalize-ops {command}: set daemon.table_name (PERSONALIZE_OPS__DAEMON__TABLE_NAME) or use --local DIR"
                );
                return Ok(Err(ExitCode::from(EXIT_USAGE)));
            }
            let config = personalize_ops::aws::sdk_config(&ctx.settings.aws).await;
            Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table))
        }
    };
    Ok(Ok(store))
}
