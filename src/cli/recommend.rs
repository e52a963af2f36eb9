//! `personalize-ops recommend --campaign NAME --user-id ID`: asks a campaign for recommendations, on
//! AWS or on the built-in Personalize of a running `personalize-ops local DIR`.
//!
//! `--item-id` asks a related-items campaign; `--item-ids a,b,c` asks a personalized-ranking campaign
//! to order those items (GetPersonalizedRanking); `--filter NAME` applies a filter of the group.

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

    /// Items to rank for the user (personalized-ranking campaigns), comma-separated.
    #[arg(
        long,
        value_name = "ID,ID,…",
        value_delimiter = ',',
        conflicts_with = "item_id"
    )]
    pub item_ids: Vec<String>,

    /// A filter: its name (looked up with ListFilters) or its ARN.
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub filter: Option<String>,

    /// How many items to ask for (not used when ranking).
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
    if !args.item_ids.is_empty() && args.user_id.is_none() {
        eprintln!("personalize-ops recommend: ranking (--item-ids) needs --user-id");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let config = match super::personalize::connect("recommend", args.local.as_deref(), ctx).await? {
        Ok(target) => target.sdk,
        Err(code) => return Ok(code),
    };
    let control = aws_sdk_personalize::Client::new(&config);
    let Some(arn) = find_arn(&control, Listing::Campaigns, &args.campaign).await? else {
        eprintln!("personalize-ops recommend: no campaign named {:?}", args.campaign);
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    let filter_arn = match &args.filter {
        None => None,
        Some(name) => match find_arn(&control, Listing::Filters, name).await? {
            Some(arn) => Some(arn),
            None => {
                eprintln!("personalize-ops recommend: no filter named {name:?}");
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
        },
    };
    let (items, recommendation_id) = recommendations(&args, &config, &arn, filter_arn).await?;
    let text = render(args.format, &arn, &items, recommendation_id.as_deref());
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (| head) ends the output quietly.
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    Ok(ExitCode::SUCCESS)
}

/// Asks the campaign: GetPersonalizedRanking when items to rank are given, else GetRecommendations.
async fn recommendations(
    args: &Args,
    config: &aws_config::SdkConfig,
    arn: &str,
    filter_arn: Option<String>,
) -> anyhow::Result<(Vec<Scored>, Option<String>)> {
    let runtime = aws_sdk_personalizeruntime::Client::new(config);
    let answer = if args.item_ids.is_empty() {
        let answer = runtime
            .get_recommendations()
            .campaign_arn(arn)
            .set_user_id(args.user_id.clone())
            .set_item_id(args.item_id.clone())
            .set_filter_arn(filter_arn)
            .num_results(args.num_results)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(personalize_ops::aws::error_text(&e)))
            .with_context(|| format!("GetRecommendations from {arn}"))?;
        let items = answer
            .item_list()
            .iter()
            .map(|i| (i.item_id().map(str::to_string), i.score()))
            .collect();
        (items, answer.recommendation_id().map(str::to_string))
    } else {
        let user = args.user_id.as_deref().unwrap_or_default();
        let answer = runtime
            .get_personalized_ranking()
            .campaign_arn(arn)
            .user_id(user)
            .set_input_list(Some(args.item_ids.clone()))
            .set_filter_arn(filter_arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(personalize_ops::aws::error_text(&e)))
            .with_context(|| format!("GetPersonalizedRanking from {arn}"))?;
        let items = answer
            .personalized_ranking()
            .iter()
            .map(|i| (i.item_id().map(str::to_string), i.score()))
            .collect();
        (items, answer.recommendation_id().map(str::to_string))
    };
    Ok(answer)
}

/// The answer as text (one item id a line) or JSON (ids with scores and the recommendation id).
fn render(format: Format, arn: &str, items: &[Scored], recommendation_id: Option<&str>) -> String {
    match format {
        Format::Json => {
            let list: Vec<_> = items
                .iter()
                .map(|(id, score)| json!({"itemId": id, "score": score}))
                .collect();
            format!(
                "{:#}\n",
                json!({"campaignArn": arn, "recommendationId": recommendation_id, "items": list})
            )
        }
        Format::Text => items
            .iter()
            .filter_map(|(id, _)| id.as_deref())
            .map(|id| format!("{id}\n"))
            .collect(),
    }
}

/// An answered item and its score.
type Scored = (Option<String>, Option<f64>);

/// What [`find_arn`] lists.
#[derive(Debug, Clone, Copy)]
enum Listing {
    Campaigns,
    Filters,
}

/// `name_or_arn` as an ARN: an ARN as given, a name looked up in the account's campaigns or
/// filters; `None` when no such name exists.
async fn find_arn(
    control: &aws_sdk_personalize::Client,
    listing: Listing,
    name_or_arn: &str,
) -> anyhow::Result<Option<String>> {
    if name_or_arn.starts_with("arn:") {
        return Ok(Some(name_or_arn.to_string()));
    }
    let error = |e: String, op: &str| anyhow::anyhow!(e).context(op.to_string());
    match listing {
        Listing::Campaigns => {
            let mut pages = control.list_campaigns().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| error(personalize_ops::aws::error_text(&e), "ListCampaigns"))?;
                if let Some(arn) = page
                    .campaigns()
                    .iter()
                    .find(|c| c.name() == Some(name_or_arn))
                    .and_then(|c| c.campaign_arn())
                {
                    return Ok(Some(arn.to_string()));
                }
            }
        }
        Listing::Filters => {
            let mut pages = control.list_filters().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| error(personalize_ops::aws::error_text(&e), "ListFilters"))?;
                if let Some(arn) = page
                    .filters()
                    .iter()
                    .find(|f| f.name() == Some(name_or_arn))
                    .and_then(|f| f.filter_arn())
                {
                    return Ok(Some(arn.to_string()));
                }
            }
        }
    }
    Ok(None)
}
