//! `local` mode's terminal output: one line per resource change, then per group what converged (or
//! failed) and the `status` and `recommend` commands that query it, ready to copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use personalize_ops::notify::{Message, Notifier, NotifyError, ResourceChange};
use personalize_ops::spec::model::Spec;
use personalize_ops::spec::recipes::{self, RecipeType};
use personalize_ops::store::{GroupSummary, StateStore};
use tokio_util::sync::CancellationToken;

use super::apply::out;

/// How a group's latest generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Converged,
    Failed,
}

/// How a group stands in the store: `None` while work remains (or a pass must be retried, or no
/// pass since `since` has looked at it), else how its latest generation ended. A failed pass
/// records its error and no next visit; a pass that could not complete records one.
pub fn ending(g: &GroupSummary, since: DateTime<Utc>) -> Option<Ending> {
    let (o, desired) = (g.observed.as_ref()?, g.desired_generation?);
    if o.generation != desired || o.updated_at < since {
        None
    } else if o.converged {
        Some(Ending::Converged)
    } else if o.last_error.is_some() && g.due_at.is_none() {
        Some(Ending::Failed)
    } else {
        None
    }
}

/// Prints resource changes and unusable parameter files as lines for people (stdout), and, from the
/// state store, each group's ending with what to do next.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    /// What the store recorded before this is from an earlier process: not reported until a pass
    /// of this one confirms it.
    since: DateTime<Utc>,
    dir: PathBuf,
    /// How the user started this program (`target/release/personalize-ops`), so the printed commands
    /// run as they are.
    program: String,
    store: Arc<dyn StateStore>,
    /// The last status printed per ARN: a change seen again by a later pass is not printed twice.
    last: Mutex<BTreeMap<String, String>>,
    /// Each group's ending printed, with its generation.
    endings: Mutex<BTreeMap<String, (u64, Ending)>>,
    config_errors: Mutex<usize>,
}

impl Progress {
    pub fn new(dir: &Path, store: Arc<dyn StateStore>) -> Self {
        let program = std::env::args()
            .next()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "personalize-ops".into());
        Self {
            started: Instant::now(),
            since: Utc::now(),
            dir: dir.to_path_buf(),
            program,
            store,
            last: Mutex::new(BTreeMap::new()),
            endings: Mutex::new(BTreeMap::new()),
            config_errors: Mutex::new(0),
        }
    }

    /// How many groups ended converged and failed, as printed.
    pub fn counts(&self) -> (usize, usize) {
        let endings = self.endings.lock().unwrap_or_else(PoisonError::into_inner);
        let converged = endings.values().filter(|(_, e)| *e == Ending::Converged).count();
        (converged, endings.len() - converged)
    }

    /// Parameter files reported unusable so far.
    pub fn config_errors(&self) -> usize {
        *self.config_errors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn elapsed(&self) -> String {
        format!("{:>7.1}s", self.started.elapsed().as_secs_f64())
    }

    /// Watches the store until `shutdown`: prints each group's ending once per generation, after
    /// the first scan of the directory (`scanned`). With `exit_when_settled`, cancels `shutdown`
    /// once every group has ended (or every file was unusable).
    pub async fn watch(
        self: Arc<Self>,
        mut scanned: tokio::sync::watch::Receiver<bool>,
        shutdown: CancellationToken,
        exit_when_settled: bool,
    ) {
        if scanned.wait_for(|done| *done).await.is_err() {
            return;
        }
        // A group is reported once it was seen ended on two polls in a row, so that the resource
        // lines of its last pass (sent through a queue) come before its summary.
        let mut seen_ended: BTreeMap<String, (u64, Ending)> = BTreeMap::new();
        while !shutdown.is_cancelled() {
            if let Ok(groups) = self.store.list_groups().await {
                let mut all_ended = true;
                for g in &groups {
                    let Some(end) = ending(g, self.since) else {
                        all_ended = false;
                        continue;
                    };
                    let key = (g.desired_generation.unwrap_or_default(), end);
                    let printed = self
                        .endings
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&g.name)
                        == Some(&key);
                    if printed {
                        continue;
                    }
                    if seen_ended.insert(g.name.clone(), key) == Some(key) {
                        self.report(g, end).await;
                        self.endings
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(g.name.clone(), key);
                    } else {
                        all_ended = false;
                    }
                }
                if exit_when_settled && all_ended && (!groups.is_empty() || self.config_errors() > 0) {
                    shutdown.cancel();
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    async fn report(&self, g: &GroupSummary, end: Ending) {
        let group = &g.name;
        match end {
            Ending::Converged => {
                let lines = match self.spec_of(group).await {
                    Some((spec, folder)) => summary(&self.program, &self.dir, &spec, &Samples::find(&folder)),
                    None => vec![format!(
                        "    {} status --local {} {group}",
                        self.program,
                        self.dir.display()
                    )],
                };
                out(&format!("{} {group}: converged", self.elapsed()));
                for l in lines {
                    out(&l);
                }
            }
            Ending::Failed => {
                out(&format!("{} {group}: FAILED", self.elapsed()));
                let resources = g.observed.iter().flat_map(|o| o.resources.iter());
                for r in resources.filter(|r| r.reason.is_some() && !r.status.contains("ACTIVE")) {
                    out(&format!(
                        "    {} {} {}: {}",
                        r.kind.title().to_lowercase(),
                        r.name,
                        r.status,
                        r.reason.as_deref().unwrap_or_default()
                    ));
                }
                out(&format!(
                    "  Details: {} status --local {} {group}. Fix the parameter file or the data and save it again: the change is picked up.",
                    self.program,
                    self.dir.display()
                ));
            }
        }
    }

    /// The group's parameter file and the folder it was read from.
    async fn spec_of(&self, group: &str) -> Option<(Spec, PathBuf)> {
        let desired = self.store.group(group).await.ok()??.desired?;
        let folder = desired
            .source
            .url
            .key
            .rsplit_once('/')
            .map_or("", |(f, _)| f)
            .to_string();
        let spec = personalize_ops::spec::load(&desired.text).spec?;
        Some((spec, self.dir.join(folder)))
    }
}

#[async_trait::async_trait]
impl Notifier for Progress {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        // Run results are printed from the store by `watch`; unusable files and the outcomes of
        // scheduled runs are told here.
        let body: serde_json::Value = serde_json::from_str(&message.body).unwrap_or_default();
        let machine: serde_json::Value = body
            .get("sqs")
            .and_then(|s| s.as_str())
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        if let Some(line) = scheduled_line(&machine) {
            out(&format!("{} {line}", self.elapsed()));
            return Ok(());
        }
        if let (Some(file), Some(errors)) = (
            machine.get("file").and_then(|f| f.as_str()),
            machine.get("description").and_then(|d| d.as_array()),
        ) {
            *self.config_errors.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            out(&format!("{} {file} cannot be used:", self.elapsed()));
            for e in errors {
                out(&format!("    {}", e.as_str().unwrap_or_default()));
            }
            out("  Fix the file and save it again: the change is picked up.");
        }
        Ok(())
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        let again = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(change.arn.clone(), change.status.clone())
            .is_some_and(|before| before == change.status);
        if !again {
            out(&format!("{} {}", self.elapsed(), change_line(change)));
        }
        Ok(())
    }
}

/// `quickstart  solution version  quickstart-up/1a2b3c4d  ACTIVE (4 s)`.
pub fn change_line(change: &ResourceChange) -> String {
    // The resource part of the ARN after its type: `quickstart`, `quickstart/INTERACTIONS`, `sol/1a2b`.
    let name = change
        .arn
        .splitn(6, ':')
        .nth(5)
        .and_then(|r| r.split_once('/'))
        .map_or(change.arn.as_str(), |(_, n)| n);
    let mut line = format!(
        "{}  {}  {name}  {}",
        change.dataset_group.as_deref().unwrap_or("-"),
        change.kind.title().to_lowercase(),
        change.status
    );
    if let Some(d) = change.duration_secs.filter(|d| *d > 0) {
        line.push_str(&format!(" ({d} s)"));
    }
    // Personalize's reason explains a failure; on any other status the text is the reconciler's
    // note on what it did (e.g. a version in training was adopted), not something that went wrong.
    if let Some(r) = &change.reason {
        if change.status.contains("FAILED") {
            line.push_str(&format!(": {r}"));
        } else {
            line.push_str(&format!("  (note: {r})"));
        }
    }
    line
}

/// `quickstart  schedule  solution-maintenance-full-sol  SCHEDULED RUN COMPLETE (fire 2026-…Z): …`,
/// from the machine-readable part of a scheduled-run notification; `None` for other messages.
pub fn scheduled_line(machine: &serde_json::Value) -> Option<String> {
    let text = |key: &str| machine.get(key).and_then(|v| v.as_str());
    let schedule = text("schedule")?;
    Some(format!(
        "{}  schedule  {schedule}  {} (fire {}): {}",
        text("datasetGroup").unwrap_or("-"),
        text("status")?,
        text("fireTime").unwrap_or("?"),
        text("detail").unwrap_or_default()
    ))
}

/// Ids to put in the printed commands: users and items that exist in the group's interactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Samples {
    pub user: Option<String>,
    /// A few distinct items (the first is used for related items, all for ranking).
    pub items: Vec<String>,
}

impl Samples {
    /// From `<folder>/interactions.csv` or the first file of `<folder>/interactions/` (as the
    /// importer finds data); empty when there is none.
    pub fn find(folder: &Path) -> Self {
        let mut candidates = vec![folder.join("interactions.csv")];
        if let Ok(entries) = std::fs::read_dir(folder.join("interactions")) {
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect();
            files.sort();
            candidates.splice(0..0, files);
        }
        candidates
            .iter()
            .find_map(|p| std::fs::File::open(p).ok())
            .map(|f| Self::read(std::io::BufReader::new(f)))
            .unwrap_or_default()
    }

    /// The first row's user and the first three distinct items of the first 1,000 rows.
    pub fn read(reader: impl std::io::Read) -> Self {
        let mut csv = csv::Reader::from_reader(reader);
        let Ok(header) = csv.headers().cloned() else {
            return Self::default();
        };
        let column = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
        let (Some(u), Some(i)) = (column("USER_ID"), column("ITEM_ID")) else {
            return Self::default();
        };
        let mut samples = Self::default();
        for row in csv.records().take(1000).flatten() {
            if samples.user.is_none() {
                samples.user = row.get(u).map(str::to_string);
            }
            if let Some(item) = row.get(i)
                && !samples.items.iter().any(|x| x == item)
            {
                samples.items.push(item.to_string());
            }
            if samples.items.len() >= 3 {
                break;
            }
        }
        samples
    }
}

/// The lines after "converged": the campaigns and one command per campaign to query it.
pub fn summary(program: &str, dir: &Path, spec: &Spec, samples: &Samples) -> Vec<String> {
    let dir = dir.display();
    let group = &spec.dataset_group.name;
    let user = samples.user.as_deref().unwrap_or("USER_ID");
    let item = samples.items.first().map_or("ITEM_ID", String::as_str);
    let items = if samples.items.is_empty() {
        "ITEM_1,ITEM_2,ITEM_3".to_string()
    } else {
        samples.items.join(",")
    };
    // A filter without placeholders can be tried as it is.
    let filter = spec.filters.iter().find(|f| !f.filter_expression.contains('$'));
    let mut lines = vec![
        "  What the service knows (resources, states, errors):".to_string(),
        format!("    {program} status --local {dir} {group}"),
    ];
    let mut asks = Vec::new();
    for s in &spec.solutions {
        let kind = s
            .recipe_arn
            .as_deref()
            .and_then(recipes::find_arn)
            .map(|r| r.recipe_type);
        for c in &s.campaigns {
            let base = format!("{program} recommend --local {dir} --campaign {}", c.name);
            match kind {
                Some(RecipeType::RelatedItems) => asks.push(format!("{base} --item-id {item}")),
                Some(RecipeType::PersonalizedRanking) => {
                    asks.push(format!("{base} --user-id {user} --item-ids {items}"));
                }
                Some(RecipeType::UserPersonalization) => {
                    asks.push(format!("{base} --user-id {user}"));
                    if let Some(f) = filter {
                        asks.push(format!("{base} --user-id {user} --filter {}", f.name));
                    }
                }
                _ => asks.push(format!("{base} --user-id {user}")),
            }
        }
    }
    if !asks.is_empty() {
        lines.push("  Ask its campaigns:".to_string());
        lines.extend(asks.into_iter().map(|a| format!("    {a}")));
    }
    lines.push(
        "  Ctrl-C stops the service; the state stays in the directory and the next start resumes.".into(),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use personalize_ops::store::ResourceKind;

    #[test]
    fn samples_come_from_the_named_columns_whatever_their_order() {
        let csv = "EVENT_TYPE,ITEM_ID,TIMESTAMP,USER_ID\nclick,i1,1,u7\nclick,i1,2,u8\nbuy,i2,3,u7\nclick,i3,4,u9\nclick,i4,5,u9\n";
        assert_eq!(
            Samples::read(csv.as_bytes()),
            Samples {
                user: Some("u7".into()),
                items: vec!["i1".into(), "i2".into(), "i3".into()],
            }
        );
        // Without both id columns (or without rows) there is nothing to suggest: placeholders are printed.
        assert_eq!(
            Samples::read("USER_ID,TIMESTAMP\nu1,1\n".as_bytes()),
            Samples::default()
        );
        assert_eq!(Samples::read("".as_bytes()), Samples::default());
        let spec = personalize_ops::spec::load(
            r#"{"datasetGroup": {"serviceConfig": {"name": "g"}},
                "solutions": [{"serviceConfig": {"name": "s", "recipeArn": "arn:aws:personalize:::recipe/aws-sims"},
                               "campaigns": [{"serviceConfig": {"name": "c"}}]}]}"#,
        )
        .spec
        .expect("valid");
        let lines = summary("po", Path::new("d"), &spec, &Samples::default());
        assert!(
            lines.contains(&"    po recommend --local d --campaign c --item-id ITEM_ID".to_string()),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"    po status --local d g".to_string()),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_change_is_one_line_with_the_resource_part_of_its_arn() {
        let line = change_line(&ResourceChange {
            kind: ResourceKind::SolutionVersion,
            arn: "arn:aws:personalize:us-east-1:000000000000:solution/sol/1a2b".into(),
            status: "CREATE FAILED".into(),
            duration_secs: Some(4),
            reason: Some("too few users".into()),
            dataset_group: Some("g".into()),
        });
        assert_eq!(
            line,
            "g  solution version  sol/1a2b  CREATE FAILED (4 s): too few users"
        );
        // On a status that is not a failure the text is a note, and reads as one.
        let line = change_line(&ResourceChange {
            kind: ResourceKind::SolutionVersion,
            arn: "arn:aws:personalize:us-east-1:000000000000:solution/sol/1a2b".into(),
            status: "CREATE IN_PROGRESS".into(),
            duration_secs: None,
            reason: Some("a version in training is adopted, not duplicated".into()),
            dataset_group: Some("g".into()),
        });
        assert_eq!(
            line,
            "g  solution version  sol/1a2b  CREATE IN_PROGRESS  (note: a version in training is adopted, not duplicated)"
        );
    }

    #[test]
    fn a_scheduled_run_is_one_line_and_other_messages_are_not_one() {
        use personalize_ops::notify::message::{Location, scheduled_message};
        use personalize_ops::store::{FireOutcome, FireStatus};
        let fire = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("instant")
            .with_timezone(&Utc);
        let location = Location {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
        };
        let outcome = FireOutcome {
            fire,
            status: FireStatus::Skipped,
            detail: "no new data since the last imports (dataset_import_interactions_x)".into(),
            at: fire,
        };
        let message = scheduled_message("g", &location, "personalize-dataset-import-g", &outcome);
        let body: serde_json::Value = serde_json::from_str(&message.body).expect("json");
        let machine: serde_json::Value =
            serde_json::from_str(body["sqs"].as_str().expect("sqs")).expect("machine json");
        assert_eq!(
            scheduled_line(&machine).as_deref(),
            Some(
                "g  schedule  personalize-dataset-import-g  SCHEDULED RUN SKIPPED (fire 2026-03-01T10:00:00Z): no new data since the last imports (dataset_import_interactions_x)"
            )
        );
        assert_eq!(scheduled_line(&serde_json::json!({"file": "x"})), None);
    }
}
