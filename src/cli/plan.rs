//! `personalize-ops plan --config FILE_OR_S3_URI`: what `apply` would do now, and why; changes nothing.
//!
//! Text lines: `+ create …`, `~ update …`, `= … (exists)`, `- skip …`, `! conflict: …`,
//! `x failed: …`, `? unmanaged …`, then a summary. `--format json` prints the plan as one object.

use std::process::ExitCode;

use chrono::{SubsecRound, Utc};
use personalize_ops::plan::{Action, Plan, Step};

use super::Context;
use super::apply::{Format, Source, load, out, reconciler_with};
use super::personalize::connect;

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
}

fn line(step: &Step) -> String {
    let t = &step.target;
    let mut s = match &step.action {
        Action::Create { after, why, .. } if after.is_empty() => format!("+ create {t} ({why})"),
        Action::Create { after, why, .. } => {
            let after: Vec<String> = after.iter().map(ToString::to_string).collect();
            format!("+ create {t} ({why}; after {})", after.join(", "))
        }
        Action::Update { changes, .. } => format!("~ update {t}: {}", changes.join(", ")),
        Action::Wait { status } => format!("… wait {t} ({status})"),
        Action::Adopt => format!("= {t} (exists)"),
        Action::Skip { reason, warning } => {
            format!("- skip {t}: {reason}{}", if *warning { " (warning)" } else { "" })
        }
        Action::Conflict { differences } => format!("! conflict: {t} differs: {}", differences.join("; ")),
        Action::Failed { reason } => format!("x failed: {t}: {reason}"),
        Action::DependencyFailed { on } => format!("x not attempted: {t}: needs {on}, which failed"),
    };
    if let Some(note) = &step.note {
        s.push_str(&format!("\n    # {note}"));
    }
    s
}

fn summary(plan: &Plan) -> String {
    let count = |f: fn(&Action) -> bool| plan.steps.iter().filter(|s| f(&s.action)).count();
    format!(
        "{} to create, {} to update, {} waiting, {} unchanged, {} conflicts, {} failed, {} unmanaged",
        count(|a| matches!(a, Action::Create { .. })),
        count(|a| matches!(a, Action::Update { .. })),
        count(|a| matches!(a, Action::Wait { .. })),
        count(Action::is_done),
        count(|a| matches!(a, Action::Conflict { .. })),
        count(|a| matches!(a, Action::Failed { .. } | Action::DependencyFailed { .. })),
        plan.unmanaged.len()
    )
}

pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let target = match connect("plan", args.source.local.as_deref(), ctx).await? {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let loaded = load(&args.source, &target).await?;
    let reconciler = reconciler_with(&target.settings, &target.sdk, loaded.objects.clone());
    // A new run would start now: jobs of earlier runs count as existing, not as this run's.
    let plan = reconciler
        .plan(&loaded.spec, &loaded.config, Utc::now().trunc_subsecs(0))
        .await?;
    match args.source.format {
        Format::Json => out(&serde_json::to_string(&plan)?),
        Format::Text => {
            for step in &plan.steps {
                out(&line(step));
            }
            for u in &plan.unmanaged {
                out(&format!("? unmanaged {} {} ({})", u.kind, u.name, u.arn));
            }
            out(&summary(&plan));
        }
    }
    Ok(ExitCode::SUCCESS)
}
