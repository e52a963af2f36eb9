//! `personalize-ops recommend --campaign NAME --user-id ID`: asks a campaign for recommendations, on
//! AWS or on the built-in Personalize of a running `personalize-ops local DIR`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use super::{Context, EXIT_FAILURE, Format};

/// Arguments of `recommend`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The campaign: its name (looked up with ListCampaigns) or its ARN.
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub campaign: String,

    /// The user to recommend for.
    #[arg(long, value_name = "ID")]
    pub user_id: Option<String>,

    /// The item to relate to (related-items recipes).
    #[arg(long, value_name = "ID")]
    pub item_id: Option<String>,

    /// How many items to ask for.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub num_results: i32,

    /// Ask the built-in Personalize of `personalize-ops local DIR` (which must be running).
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,

    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Prints the recommended items; exit 1 when the campaign does not exist or the call fails.
pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    if args.user_id.is_none() && args.item_id.is_none() {
        eprintln!("personalize-ops recommend: give --user-id, --item-id or both");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let config = match &args.local {
        Some(dir) => {
            let path = super::local::url_path(dir);
            let url = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "{} not found: is `personalize-ops local {}` running?",
                    path.display(),
                    dir.display()
                )
            })?;
            super::local::sdk_config(url.trim()).await
        }
        None => personalize_ops::aws::sdk_config(&ctx.settings.aws).await,
    };
    let arn = if args.campaign.starts_with("arn:") {
        args.campaign.clone()
    } else {
        let control = aws_sdk_personalize::Client::new(&config);
        let mut pages = control.list_campaigns().into_paginator().send();
        let mut found = None;
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow::anyhow!(personalize_ops::aws::error_text(&e)))
                .context("ListCampaigns")?;
            found = page
                .campaigns()
                .iter()
                .find(|c| c.name() == Some(args.campaign.as_str()))
                .and_then(|c| c.campaign_arn().map(str::to_string));
            if found.is_some() {
                break;
            }
        }
        match found {
            Some(arn) => arn,
            None => {
                eprintln!("personalize-ops recommend: no campaign named {:?}", args.campaign);
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
        }
    };
    let runtime = aws_sdk_personalizeruntime::Client::new(&config);
    let answer = runtime
        .get_recommendations()
        .campaign_arn(&arn)
        .set_user_id(args.user_id.clone())
        .set_item_id(args.item_id.clone())
        .num_results(args.num_results)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(personalize_ops::aws::error_text(&e)))
        .with_context(|| format!("GetRecommendations from {arn}"))?;
    let items = answer.item_list();
    let text = match args.format {
        Format::Json => {
            let list: Vec<_> = items
                .iter()
                .map(|i| json!({"itemId": i.item_id(), "score": i.score()}))
                .collect();
            format!(
                "{:#}\n",
                json!({"campaignArn": arn, "recommendationId": answer.recommendation_id(), "items": list})
            )
        }
        Format::Text => items
            .iter()
            .filter_map(|i| i.item_id())
            .map(|id| format!("{id}\n"))
            .collect(),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (| head) ends the output quietly.
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    Ok(ExitCode::SUCCESS)
}
