//! `local` mode's terminal output: one line per resource change, then per group what converged (or
//! failed) and the `status` and `recommend` commands that query it, ready to copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use personalize_ops::notify::{Message, Notifier, NotifyError, ResourceChange};
use personalize_ops::spec::model::Spec;
use personalize_ops::spec::recipes::{self, RecipeType};
use personalize_ops::store::StateStore;

use super::apply::out;

/// How a group's latest run ended, as far as the printed messages tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Converged,
    Failed,
}

/// Prints notifications as lines for people (stdout) and remembers how each group ended.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    dir: PathBuf,
    /// How the user started this program (`target/release/personalize-ops`), so the printed commands
    /// run as they are.
    program: String,
    store: Arc<dyn StateStore>,
    endings: Mutex<BTreeMap<String, Ending>>,
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
            dir: dir.to_path_buf(),
            program,
            store,
            endings: Mutex::new(BTreeMap::new()),
            config_errors: Mutex::new(0),
        }
    }

    /// How each group that finished a run ended.
    pub fn endings(&self) -> BTreeMap<String, Ending> {
        self.endings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Parameter files reported unusable so far.
    pub fn config_errors(&self) -> usize {
        *self.config_errors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn elapsed(&self) -> String {
        format!("{:>7.1}s", self.started.elapsed().as_secs_f64())
    }

    async fn converged(&self, group: &str) {
        let spec = match self.store.group(group).await {
            Ok(Some(state)) => state.desired.and_then(|d| {
                let folder = d
                    .source
                    .url
                    .key
                    .rsplit_once('/')
                    .map_or(String::new(), |(f, _)| f.to_string());
                personalize_ops::spec::load(&d.text)
                    .spec
                    .map(|spec| (spec, self.dir.join(folder)))
            }),
            _ => None,
        };
        let lines = match spec {
            Some((spec, folder)) => {
                let samples = Samples::find(&folder);
                summary(&self.program, &self.dir, &spec, &samples)
            }
            None => vec![format!(
                "  {} status --local {} {group}",
                self.program,
                self.dir.display()
            )],
        };
        out(&format!("{} {group}: converged", self.elapsed()));
        for l in lines {
            out(&l);
        }
    }
}

#[async_trait::async_trait]
impl Notifier for Progress {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        let group = message.dataset_group.clone();
        let body: serde_json::Value = serde_json::from_str(&message.body).unwrap_or_default();
        match message.status {
            "UPDATE COMPLETE" => {
                self.endings
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(group.clone(), Ending::Converged);
                self.converged(&group).await;
            }
            "UPDATE FAILED" => {
                let machine: serde_json::Value = body
                    .get("sqs")
                    .and_then(|s| s.as_str())
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                let failures = machine.get("failures").and_then(|f| f.as_array());
                if let Some(failures) = failures {
                    self.endings
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(group.clone(), Ending::Failed);
                    out(&format!("{} {group}: FAILED", self.elapsed()));
                    for f in failures {
                        let text = |k: &str| f.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                        out(&format!(
                            "    {} {}: {}",
                            text("kind"),
                            text("name"),
                            text("reason")
                        ));
                    }
                    out("  Fix the parameter file or the data and save it again: the change is picked up.");
                } else {
                    // A parameter file that cannot be used: no group was created.
                    *self.config_errors.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                    let text = body.get("default").and_then(|d| d.as_str()).unwrap_or("");
                    let detail = machine
                        .get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or(text);
                    out(&format!("{} {}", self.elapsed(), detail.trim()));
                }
            }
            other => out(&format!("{} {group}: {other}", self.elapsed())),
        }
        Ok(())
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        out(&format!("{} {}", self.elapsed(), change_line(change)));
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
    if let Some(r) = &change.reason {
        line.push_str(&format!(": {r}"));
    }
    line
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
