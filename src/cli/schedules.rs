//! `personalize-ops schedules …`: list, describe, activate and deactivate the stored schedules, print
//! the fire instants of an expression, and write a parameter file for an existing dataset group.
//!
//! Exit codes: 0 ok, 1 failure (unknown schedule, bad expression, Personalize or store errors), 2 usage.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use clap::Subcommand;
use personalize_ops::spec::schedule::Schedule as Expression;
use personalize_ops::store::{Schedule, StateStore};
use serde_json::{Value, json};

use anyhow::Context as _;
use personalize_ops::objects::{ObjectStore, ObjectUrl, S3Store};
use personalize_ops::reconcile::export::{ExportError, ExportSchedules};

use super::{Context, EXIT_FAILURE, EXIT_USAGE, Format};

/// How many fires `describe` shows.
const DESCRIBE_FIRES: usize = 3;

/// Arguments of `schedules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// Options of the subcommands that read the state store.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Read the state of `personalize-ops local DIR` instead of the DynamoDB table of the settings.
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,

    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// A schedule named on the command line.
#[derive(Debug, clap::Args)]
pub struct Named {
    /// The schedule's name (`schedules list` shows them).
    #[arg(value_name = "NAME", required_unless_present = "task")]
    name: Option<String>,

    /// The same as NAME, spelt as the reference's `aws-solutions-scheduler` took it.
    #[arg(short = 't', long, value_name = "NAME", conflicts_with = "name")]
    task: Option<String>,

    /// The dataset group the schedule belongs to; needed only when two groups have a schedule of
    /// that name.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

impl Named {
    /// The schedule's name, however it was given (clap requires one of the two).
    pub fn name(&self) -> &str {
        self.name.as_deref().or(self.task.as_deref()).unwrap_or_default()
    }
}

/// The `schedules` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every schedule, or those of one dataset group: expression, next fire, last fire, active.
    List {
        /// Only this dataset group.
        #[arg(value_name = "GROUP")]
        group: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// One schedule: expression, the next three fires, the last fire, whether it is active.
    Describe(Named),
    /// Turn a deactivated schedule on again.
    Activate(Named),
    /// Stop a schedule from firing until it is activated again or its expression changes.
    Deactivate(Named),
    /// Print the fire instants of an expression, one per line (UTC, RFC 3339).
    Next {
        /// `cron(…)` or `rate(…)`, as in a parameter file.
        #[arg(value_name = "EXPR")]
        expression: String,
        /// How many fires.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
        count: u16,
        /// Fires strictly after this instant (RFC 3339, e.g. 2028-02-28T00:00:00Z); default now. A
        /// `rate` counts its intervals from here.
        #[arg(long, value_name = "RFC3339")]
        after: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Write the parameter file of a dataset group that exists in Personalize (every resource it
    /// has), with the schedules given here; `plan` on it shows no change.
    ImportDatasetGroup(ImportArgs),
}

/// Arguments of `schedules import-dataset-group`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The dataset group's name in Personalize.
    #[arg(short = 'd', long, value_name = "NAME")]
    pub dataset_group: String,

    /// When to import all datasets again: `cron(…)` or `rate(…)`.
    #[arg(short = 'i', long = "import-schedule", value_name = "EXPR", value_parser = parse_expression)]
    pub import_schedule: Option<Expression>,

    /// A solution's full retraining schedule, SOLUTION@EXPR; repeat for several solutions.
    #[arg(short = 'f', long = "full-schedule", value_name = "SOLUTION@EXPR", value_parser = parse_solution_schedule)]
    pub full: Vec<(String, Expression)>,

    /// A solution's UPDATE retraining schedule, SOLUTION@EXPR; a solution may have both -f and -u.
    #[arg(short = 'u', long = "update-schedule", value_name = "SOLUTION@EXPR", value_parser = parse_solution_schedule)]
    pub update: Vec<(String, Expression)>,

    /// Write the file here instead of to stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "upload")]
    pub output: Option<PathBuf>,

    /// Upload the file to s3://BUCKET/train/…/NAME.json, where the service picks it up.
    #[arg(long, value_name = "S3_URI", value_parser = parse_upload, conflicts_with = "path")]
    pub upload: Option<ObjectUrl>,

    /// Upload the file to this key (train/…/NAME.json) of the service's bucket (daemon.bucket), as
    /// the reference's `-p/--path` did.
    #[arg(short = 'p', long, value_name = "KEY", conflicts_with = "output")]
    pub path: Option<String>,
}

/// A schedule expression as a parameter file takes it.
fn parse_expression(text: &str) -> Result<Expression, String> {
    Expression::parse(text).map_err(|e| e.to_string())
}

/// `SOLUTION@EXPR`.
fn parse_solution_schedule(text: &str) -> Result<(String, Expression), String> {
    let format = "format must be SOLUTION@EXPRESSION, e.g. my-solution@cron(0 */12 * * ? *)";
    let Some((solution, expression)) = text.split_once('@') else {
        return Err(format!("{text:?}: no `@`; {format}"));
    };
    if solution.trim().is_empty() || expression.trim().is_empty() {
        return Err(format!("{text:?}: {format}"));
    }
    Ok((solution.trim().to_string(), parse_expression(expression)?))
}

/// `s3://BUCKET/train/…/NAME.json`: where the service reads parameter files.
fn parse_upload(text: &str) -> Result<ObjectUrl, String> {
    let url = ObjectUrl::parse(text).map_err(|e| e.to_string())?;
    if !url.key.starts_with("train/") {
        return Err(format!(
            "{text}: the key must start with train/ (the service reads parameter files there)"
        ));
    }
    if !url.key.ends_with(".json") {
        return Err(format!("{text}: the key must end with .json"));
    }
    Ok(url)
}

pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Next {
            expression,
            count,
            after,
            format,
        } => Ok(next(&expression, usize::from(count), after, format)),
        Command::List { group, store } => list(group.as_deref(), &store, ctx).await,
        Command::Describe(named) => describe(&named, ctx).await,
        Command::Activate(named) => set_active(&named, true, ctx).await,
        Command::Deactivate(named) => set_active(&named, false, ctx).await,
        Command::ImportDatasetGroup(args) => import_dataset_group(args, ctx).await,
    }
}

/// RFC 3339 in UTC to the second, `Z` suffix.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Writes `text` to stdout; a closed pipe (`| head`) ends the output quietly.
fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

fn print_json(value: &Value) {
    print(&format!("{value:#}\n"));
}

/// Up to `count` fires strictly after `after`; a rate counts from `anchor`.
fn fires(
    expression: &Expression,
    after: DateTime<Utc>,
    anchor: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(count);
    let mut cursor = after;
    while out.len() < count {
        match expression.next_fire(cursor, anchor) {
            Some(t) => {
                out.push(t);
                cursor = t;
            }
            None => break,
        }
    }
    out
}

fn next(text: &str, count: usize, after: Option<DateTime<Utc>>, format: Format) -> ExitCode {
    let expression = match Expression::parse(text) {
        Ok(Expression::Delete) => {
            eprintln!(
                "personalize-ops schedules next: \"delete\" removes a schedule from a parameter file; it never fires"
            );
            return ExitCode::from(EXIT_FAILURE);
        }
        Ok(e) => e,
        Err(e) => {
            eprintln!("personalize-ops schedules next: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let after = after.unwrap_or_else(Utc::now).trunc_subsecs(0);
    let found = fires(&expression, after, after, count);
    match format {
        Format::Json => print_json(&json!({
            "expression": expression.to_string(),
            "after": rfc3339(after),
            "fires": found.iter().copied().map(rfc3339).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let mut text = String::new();
            for t in &found {
                text.push_str(&rfc3339(*t));
                text.push('\n');
            }
            print(&text);
        }
    }
    if found.len() < count {
        eprintln!(
            "personalize-ops schedules next: {expression} fires only {} more time(s) after {}",
            found.len(),
            rfc3339(after)
        );
    }
    ExitCode::SUCCESS
}

/// A stored schedule as the CLI shows it, with its fires computed from the expression at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub schedule: Schedule,
    /// The parsed expression, or why the stored text does not parse.
    pub expression: Result<Expression, String>,
    /// The next fires after `now` (empty when the expression never fires again or does not parse).
    pub next_fires: Vec<DateTime<Utc>>,
}

impl View {
    /// `count` next fires of `schedule` after `now`. A `rate` counts from the schedule's creation (or
    /// last change of expression), as the scheduler does.
    pub fn new(schedule: Schedule, now: DateTime<Utc>, count: usize) -> Self {
        let expression = Expression::parse(&schedule.expression).map_err(|e| e.to_string());
        let next_fires = match &expression {
            Ok(e) => fires(e, now, schedule.created_at, count),
            Err(_) => Vec::new(),
        };
        Self {
            schedule,
            expression,
            next_fires,
        }
    }

    /// The next fire, if the schedule is active and fires again.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.schedule
            .active
            .then(|| self.next_fires.first().copied())
            .flatten()
    }

    pub fn to_json(&self) -> Value {
        let s = &self.schedule;
        json!({
            "datasetGroup": s.group,
            "name": s.name,
            "expression": s.expression,
            "expressionError": self.expression.as_ref().err(),
            "active": s.active,
            "nextFire": self.next_fire().map(rfc3339),
            "nextFires": self.next_fires.iter().copied().map(rfc3339).collect::<Vec<_>>(),
            "lastFire": s.last_fire.map(rfc3339),
            "lastOutcome": s.last_outcome.as_ref().map(|o| json!({
                "fire": rfc3339(o.fire),
                "status": o.status.as_str(),
                "detail": o.detail,
                "at": rfc3339(o.at),
            })),
            "runningFire": s.pending_fire.map(rfc3339),
            "createdAt": rfc3339(s.created_at),
            "target": s.target,
        })
    }

    /// One line: name, expression, next fire (or why none), last fire and how it ended.
    #[cfg(test)]
    pub fn line(&self) -> String {
        self.row(&Columns::of(std::slice::from_ref(self)))
    }

    /// [`View::line`] with its columns padded to `columns`, so that the lines of a table align.
    pub fn row(&self, columns: &Columns) -> String {
        let s = &self.schedule;
        format!(
            "{:<name$}  {:<expression$}  {:<next$}  {}",
            s.name,
            s.expression,
            self.next_text(),
            self.last_text(),
            name = columns.name,
            expression = columns.expression,
            next = columns.next,
        )
    }

    fn next_text(&self) -> String {
        match (&self.expression, self.schedule.active, self.next_fires.first()) {
            (Err(_), _, _) => "invalid expression".to_string(),
            (Ok(_), false, _) => "deactivated".to_string(),
            (Ok(_), true, Some(t)) => format!("next {}", rfc3339(*t)),
            (Ok(_), true, None) => "never fires again".to_string(),
        }
    }

    fn last_text(&self) -> String {
        let s = &self.schedule;
        let mut last = s
            .last_fire
            .map_or("never fired".to_string(), |t| format!("last {}", rfc3339(t)));
        if let Some(running) = s.pending_fire {
            last.push_str(&format!(", running since the fire of {}", rfc3339(running)));
        } else if let Some(o) = &s.last_outcome {
            last.push_str(&format!(" {}", o.status.as_str()));
        }
        last
    }
}

/// The widths of a table of schedules, sized from its rows: names run up to 63 characters
/// (`batch-inference-<solution>-<n>`), far wider than most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    name: usize,
    expression: usize,
    next: usize,
}

impl Columns {
    pub fn of(views: &[View]) -> Self {
        let widest = |f: &dyn Fn(&View) -> usize| views.iter().map(f).max().unwrap_or(0);
        Self {
            name: widest(&|v| v.schedule.name.chars().count()),
            expression: widest(&|v| v.schedule.expression.chars().count()),
            next: widest(&|v| v.next_text().chars().count()),
        }
    }
}

/// The lines of `views` as one aligned table.
pub fn table(views: &[View]) -> Vec<String> {
    let columns = Columns::of(views);
    views.iter().map(|v| v.row(&columns)).collect()
}

fn no_schedule(command: &str, named: &Named) -> ExitCode {
    match &named.group {
        Some(g) => eprintln!(
            "personalize-ops schedules {command}: dataset group {g:?} has no schedule named {:?}",
            named.name()
        ),
        None => eprintln!(
            "personalize-ops schedules {command}: no schedule named {:?} (see `personalize-ops schedules list`)",
            named.name()
        ),
    }
    ExitCode::from(EXIT_FAILURE)
}

/// The one stored schedule `named` designates; `Err(code)` after saying why there is none.
async fn find(
    command: &str,
    named: &Named,
    store: &dyn StateStore,
) -> anyhow::Result<Result<Schedule, ExitCode>> {
    let mut matching: Vec<Schedule> = store
        .schedules(named.group.as_deref())
        .await?
        .into_iter()
        .filter(|s| s.name == named.name())
        .collect();
    match matching.len() {
        0 => Ok(Err(no_schedule(command, named))),
        1 => Ok(Ok(matching.remove(0))),
        _ => {
            let groups: Vec<&str> = matching.iter().map(|s| s.group.as_str()).collect();
            eprintln!(
                "personalize-ops schedules {command}: dataset groups {} each have a schedule named {:?}; pass --group",
                groups.join(", "),
                named.name()
            );
            Ok(Err(ExitCode::from(EXIT_FAILURE)))
        }
    }
}

async fn list(group: Option<&str>, args: &StoreArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = match super::state::open_store("schedules list", args.local.as_deref(), ctx).await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let now = Utc::now().trunc_subsecs(0);
    let views: Vec<View> = store
        .schedules(group)
        .await?
        .into_iter()
        .map(|s| View::new(s, now, 1))
        .collect();
    // A group without schedules is an answer; a group the service never heard of is a mistyped name.
    if let Some(g) = group
        && views.is_empty()
        && store.group(g).await?.is_none()
    {
        eprintln!("personalize-ops schedules list: no dataset group named {g:?} is known");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    match args.format {
        Format::Json => print_json(&Value::Array(views.iter().map(View::to_json).collect())),
        Format::Text if views.is_empty() => print(&match group {
            Some(g) => format!("dataset group {g} has no schedules\n"),
            None => "no schedules\n".to_string(),
        }),
        Format::Text => {
            // One table over all groups, so the columns line up down the whole listing.
            let rows = table(&views);
            let mut text = String::new();
            let mut current: Option<&str> = None;
            for (v, row) in views.iter().zip(rows) {
                if current != Some(v.schedule.group.as_str()) {
                    current = Some(&v.schedule.group);
                    text.push_str(&format!("{}\n", v.schedule.group));
                }
                text.push_str(&format!("  {row}\n"));
            }
            print(&text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a deactivated schedule stays off, said wherever it shows.
const STICKY: &str = "it stays off until `personalize-ops schedules activate` or until the parameter file changes its expression";

fn describe_text(v: &View) -> String {
    let s = &v.schedule;
    let mut text = format!(
        "{}\n  dataset group: {}\n  expression: {}\n",
        s.name, s.group, s.expression
    );
    if let Err(e) = &v.expression {
        text.push_str(&format!("  expression error: {e}\n"));
    }
    if s.active {
        text.push_str("  active: yes\n");
    } else {
        text.push_str(&format!("  active: no ({STICKY})\n"));
    }
    let label = if s.active {
        "next fires"
    } else {
        "next fires once activated"
    };
    if v.next_fires.is_empty() {
        text.push_str(&format!("  {label}: none\n"));
    } else {
        text.push_str(&format!("  {label}:\n"));
        for t in &v.next_fires {
            text.push_str(&format!("    {}\n", rfc3339(*t)));
        }
    }
    match s.last_fire {
        Some(t) => text.push_str(&format!("  last fire: {}\n", rfc3339(t))),
        None => text.push_str("  last fire: never\n"),
    }
    if let Some(running) = s.pending_fire {
        text.push_str(&format!(
            "  running: the action of the fire of {}\n",
            rfc3339(running)
        ));
    }
    match &s.last_outcome {
        Some(o) => text.push_str(&format!("  last outcome: {o}\n")),
        None => text.push_str("  last outcome: none yet\n"),
    }
    text.push_str(&format!("  since: {}\n", rfc3339(s.created_at)));
    text.push_str(&format!("  target: {}\n", s.target));
    text
}

async fn describe(named: &Named, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store =
        match super::state::open_store("schedules describe", named.store.local.as_deref(), ctx).await? {
            Ok(store) => store,
            Err(code) => return Ok(code),
        };
    let schedule = match find("describe", named, store.as_ref()).await? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let view = View::new(schedule, Utc::now().trunc_subsecs(0), DESCRIBE_FIRES);
    match named.store.format {
        Format::Json => print_json(&view.to_json()),
        Format::Text => print(&describe_text(&view)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_active(named: &Named, active: bool, ctx: &Context) -> anyhow::Result<ExitCode> {
    let command = if active { "activate" } else { "deactivate" };
    let store =
        match super::state::open_store(&format!("schedules {command}"), named.store.local.as_deref(), ctx)
            .await?
        {
            Ok(store) => store,
            Err(code) => return Ok(code),
        };
    let schedule = match find(command, named, store.as_ref()).await? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let was_active = schedule.active;
    // Removed between the read and the write (a new parameter file dropped it): unknown after all.
    if !store
        .set_schedule_active(&schedule.group, &schedule.name, active)
        .await?
    {
        return Ok(no_schedule(command, named));
    }
    let view = View::new(Schedule { active, ..schedule }, Utc::now().trunc_subsecs(0), 1);
    let s = &view.schedule;
    let word = if active { "activated" } else { "deactivated" };
    let mut message = if was_active == active {
        format!(
            "{} (dataset group {}) was already {}",
            s.name,
            s.group,
            if active { "active" } else { "deactivated" }
        )
    } else {
        format!("{word} {} (dataset group {})", s.name, s.group)
    };
    if active {
        match view.next_fire() {
            Some(t) => message.push_str(&format!("; next fire {}", rfc3339(t))),
            None => message.push_str("; it never fires again"),
        }
    } else {
        message.push_str(&format!("; {STICKY}"));
    }
    match named.store.format {
        Format::Json => {
            let mut value = view.to_json();
            value["changed"] = json!(was_active != active);
            value["message"] = json!(message);
            print_json(&value);
        }
        Format::Text => print(&format!("{message}\n")),
    }
    Ok(ExitCode::SUCCESS)
}

/// One schedule per solution and kind: the same expression twice is fine, two different ones are
/// a usage error (the reference kept whichever came last).
fn by_solution(
    flag: char,
    given: Vec<(String, Expression)>,
) -> Result<std::collections::BTreeMap<String, Expression>, String> {
    let mut out = std::collections::BTreeMap::new();
    for (solution, expression) in given {
        if let Some(before) = out.get(&solution)
            && *before != expression
        {
            return Err(format!(
                "-{flag} gives solution {solution} two schedules: {before} and {expression}"
            ));
        }
        out.insert(solution, expression);
    }
    Ok(out)
}

async fn import_dataset_group(args: ImportArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let command = "personalize-ops schedules import-dataset-group";
    let schedules = match (by_solution('f', args.full), by_solution('u', args.update)) {
        (Ok(full), Ok(update)) => ExportSchedules {
            import: args.import_schedule,
            full,
            update,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{command}: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let upload = match (&args.upload, &args.path) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(key)) => {
            let bucket = ctx.settings.daemon.bucket.trim();
            if bucket.is_empty() {
                eprintln!(
                    "{command}: --path needs the service's bucket: set daemon.bucket (PERSONALIZE_OPS__DAEMON__BUCKET), or use --upload s3://BUCKET/KEY"
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            match parse_upload(&format!("s3://{bucket}/{}", key.trim_start_matches('/'))) {
                Ok(url) => Some(url),
                Err(e) => {
                    eprintln!("{command}: --path {e}");
                    return Ok(ExitCode::from(EXIT_USAGE));
                }
            }
        }
        (None, None) => None,
    };
    let sdk = personalize_ops::aws::sdk_config(&ctx.settings.aws).await;
    let s3 = S3Store::new(personalize_ops::aws::s3_client(&sdk, &ctx.settings.aws));
    let reconciler = super::apply::reconciler(ctx, &sdk, std::sync::Arc::new(s3.clone()));
    let exported = match reconciler.export(&args.dataset_group, &schedules).await {
        Ok(x) => x,
        Err(e @ (ExportError::GroupNotFound { .. } | ExportError::UnknownSolution { .. })) => {
            eprintln!("{command}: {e}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
        Err(e) => return Err(e.into()),
    };
    for w in &exported.warnings {
        eprintln!("{command}: warning: {w}");
    }
    let text = format!("{:#}\n", exported.document);
    // What is written must be a file the service accepts: check it as `validate` would.
    let report = personalize_ops::spec::load(&text);
    for w in &report.warnings {
        eprintln!("{command}: the file has a warning at {}: {}", w.path, w.message);
    }
    if report.spec.is_none() {
        eprintln!(
            "{command}: the parameter file read from dataset group {} does not validate; nothing written:",
            args.dataset_group
        );
        for e in &report.errors {
            eprintln!("  {}: {}", e.path, e.message);
        }
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    match (&args.output, &upload) {
        (Some(path), _) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("{command}: wrote {}", path.display());
        }
        (None, Some(url)) => {
            s3.put(url, bytes::Bytes::from(text))
                .await
                .with_context(|| format!("cannot upload the parameter file to {url}"))?;
            eprintln!("{command}: uploaded {url}");
        }
        (None, None) => print(&text),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("RFC 3339")
    }

    fn schedule(expression: &str, active: bool) -> Schedule {
        Schedule {
            group: "g".into(),
            name: "solution-maintenance-full-s".into(),
            expression: expression.into(),
            target: "full:s".into(),
            created_at: at("2030-01-01T00:20:00Z"),
            last_fire: None,
            next_fire: None,
            active,
            pending_fire: None,
            last_outcome: None,
        }
    }

    #[test]
    fn solution_schedules_are_parsed_and_checked() {
        let (sol, e) = parse_solution_schedule("recs@cron(0 */12 * * ? *)").expect("valid");
        assert_eq!(
            (sol.as_str(), e.to_string().as_str()),
            ("recs", "cron(0 */12 * * ? *)")
        );
        assert!(
            parse_solution_schedule("recs")
                .expect_err("no @")
                .contains("SOLUTION@EXPRESSION")
        );
        assert!(
            parse_solution_schedule("@rate(1 day)")
                .expect_err("no solution")
                .contains("SOLUTION@EXPRESSION")
        );
        assert!(parse_solution_schedule("recs@").is_err());
        let err = parse_solution_schedule("recs@cron(0 0 ? * 0 *)").expect_err("dow 0");
        assert!(err.contains("day-of-week"), "{err}");
        let twice = vec![
            ("a".to_string(), Expression::parse("rate(1 day)").expect("valid")),
            ("a".to_string(), Expression::parse("rate(1 day)").expect("valid")),
        ];
        assert_eq!(by_solution('f', twice).expect("same twice").len(), 1);
        let differ = vec![
            ("a".to_string(), Expression::parse("rate(1 day)").expect("valid")),
            ("a".to_string(), Expression::parse("rate(2 days)").expect("valid")),
        ];
        assert!(
            by_solution('u', differ)
                .expect_err("two")
                .contains("-u gives solution a two schedules")
        );
        assert!(parse_upload("s3://b/train/g/config.json").is_ok());
        assert!(
            parse_upload("s3://b/g/config.json")
                .expect_err("not train/")
                .contains("train/")
        );
        assert!(
            parse_upload("s3://b/train/g/config.txt")
                .expect_err("not json")
                .contains(".json")
        );
        assert!(parse_upload("/tmp/x.json").is_err());
    }

    #[test]
    fn a_rate_counts_from_the_schedules_creation() {
        let v = View::new(schedule("rate(1 hour)", true), at("2030-01-01T05:00:00Z"), 2);
        assert_eq!(
            v.next_fires,
            vec![at("2030-01-01T05:20:00Z"), at("2030-01-01T06:20:00Z")]
        );
    }

    #[test]
    fn the_last_outcome_or_the_running_action_is_shown() {
        use personalize_ops::store::{FireOutcome, FireStatus};
        let mut s = schedule("cron(0 1 * * ? *)", true);
        s.last_fire = Some(at("2030-01-01T01:00:00Z"));
        s.last_outcome = Some(FireOutcome {
            fire: at("2030-01-01T01:00:00Z"),
            status: FireStatus::Failed,
            detail: "solution version s failed: quota".into(),
            at: at("2030-01-01T01:30:00Z"),
        });
        let v = View::new(s.clone(), at("2030-01-01T02:00:00Z"), 3);
        assert!(
            v.line().ends_with("last 2030-01-01T01:00:00Z failed"),
            "{}",
            v.line()
        );
        assert!(
            describe_text(&v).contains(
                "last outcome: failed (fire 2030-01-01T01:00:00Z): solution version s failed: quota"
            ),
            "{}",
            describe_text(&v)
        );
        assert_eq!(v.to_json()["lastOutcome"]["status"], "failed");
        s.pending_fire = Some(at("2030-01-02T01:00:00Z"));
        let v = View::new(s, at("2030-01-02T01:10:00Z"), 3);
        assert!(
            v.line()
                .contains("running since the fire of 2030-01-02T01:00:00Z"),
            "{}",
            v.line()
        );
        assert_eq!(v.to_json()["runningFire"], "2030-01-02T01:00:00Z");
    }

    #[test]
    fn a_table_sizes_its_columns_from_the_longest_name_and_expression() {
        let now = at("2030-01-01T00:00:00Z");
        let mut long = schedule("cron(0 1 * * ? *)", true);
        long.name = format!("batch-inference-{}-2", "s".repeat(45));
        let short = schedule("rate(1 minute)", false);
        let rows = table(&[View::new(long.clone(), now, 1), View::new(short.clone(), now, 1)]);
        assert_eq!(rows.len(), 2);
        let expression_at = |row: &str, e: &str| row.find(e).unwrap_or_else(|| panic!("{e} in {row}"));
        assert_eq!(
            expression_at(&rows[0], "cron("),
            expression_at(&rows[1], "rate("),
            "{rows:#?}"
        );
        assert_eq!(
            expression_at(&rows[0], "cron("),
            long.name.len() + 2,
            "two spaces after the name"
        );
        let last_at = |row: &str| row.find("never fired").unwrap_or_else(|| panic!("{row}"));
        assert_eq!(last_at(&rows[0]), last_at(&rows[1]), "{rows:#?}");
        // A row alone is not padded beyond its own text.
        let alone = View::new(short, now, 1).line();
        assert_eq!(
            alone,
            "solution-maintenance-full-s  rate(1 minute)  deactivated  never fired"
        );
    }

    #[test]
    fn deactivated_and_broken_schedules_have_no_next_fire() {
        let now = at("2030-01-01T00:00:00Z");
        let off = View::new(schedule("cron(0 1 * * ? *)", false), now, 3);
        assert_eq!(off.next_fires.len(), 3, "what it would do once activated");
        assert_eq!(off.next_fire(), None);
        assert!(off.line().contains("deactivated"), "{}", off.line());
        assert!(describe_text(&off).contains("stays off until"));
        let broken = View::new(schedule("cron(0 1 * * * *)", true), now, 3);
        assert!(broken.expression.is_err());
        assert_eq!(broken.next_fire(), None);
        assert!(broken.line().contains("invalid expression"), "{}", broken.line());
        assert!(broken.to_json()["expressionError"].is_string());
        let past = View::new(schedule("cron(0 1 * * ? 2020)", true), now, 3);
        assert!(past.line().contains("never fires again"), "{}", past.line());
    }
}
