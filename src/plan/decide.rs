//! The planner's decisions, resource by resource, in the order of work.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use serde_json::{Value, json};

use super::observed::{
    BatchJobObs, CampaignObs, DatasetObs, ImportJobObs, Meta, Observation, Phase, SolutionObs, VersionObs,
};
use super::{
    Action, BatchTarget, DataFound, Kind, Plan, Ref, Request, RunContext, ScheduledWork, Step, json_changes,
    json_differences,
};
use crate::spec::DEFAULT_IMPORT_MAX_AGE;
use crate::spec::kinds::DatasetType;
use crate::spec::model::{Campaign, Dataset, ImportMode, MaxAge, Solution, Spec, Tag, TrainingMode};
use crate::spec::names::{self, BatchEntry};
use crate::spec::schedule::Schedule;

/// Computes the actions that bring the observed dataset group to `spec`. Pure and deterministic.
pub fn plan(spec: &Spec, observed: &Observation, data: &DataFound, run: &RunContext) -> Plan {
    let mut p = Planner {
        spec,
        obs: observed,
        data,
        run,
        steps: Vec::new(),
        arns: BTreeMap::new(),
        usable: BTreeSet::new(),
        revisions: BTreeMap::new(),
        run_imports: Vec::new(),
        interactions_import: None,
    };
    p.dataset_group();
    p.datasets();
    p.imports();
    p.event_tracker();
    p.filters();
    for s in &spec.solutions {
        p.solution(s);
        p.version(s);
        p.campaigns(s);
        p.batch_jobs(s);
    }
    p.recommenders();
    let unmanaged = p.unmanaged();
    Plan {
        steps: p.steps,
        unmanaged,
    }
}

/// How this run's interactions import stands (for `retrainOnNewData`).
#[derive(Debug, Clone)]
enum InteractionsImport {
    /// Still to be created or running.
    Pending(Ref),
    /// ACTIVE since this instant.
    Done(DateTime<Utc>),
}

struct Planner<'a> {
    spec: &'a Spec,
    obs: &'a Observation,
    data: &'a DataFound,
    run: &'a RunContext,
    steps: Vec<Step>,
    /// ARNs of resources that are done (ACTIVE and matching), for their dependants' requests.
    arns: BTreeMap<Ref, String>,
    /// Resources being updated in place that keep serving their old configuration meanwhile
    /// (solutions, recommenders): their dependants need not wait for the update.
    usable: BTreeSet<Ref>,
    /// The schemas whose file document becomes a new schema (by the file's schema name).
    revisions: BTreeMap<String, super::schema_change::Revision>,
    /// This run's imports that are not done (to create, running, or failed): new versions, filters
    /// and recommenders wait for them, and fail as dependants when one of them failed.
    run_imports: Vec<Ref>,
    interactions_import: Option<InteractionsImport>,
}

/// An in-place update, when one is needed: the call, its changes (`field: old → new`), and what it
/// asks for in the API's member names (compared with the latest update Personalize reports).
type InPlace = Option<(Request, Vec<String>, Value)>;

/// Where a dependency stands.
enum Deps {
    Ready,
    Waiting(Vec<Ref>),
    Broken(Ref),
}

fn status_action(meta: &Meta) -> Action {
    match meta.phase() {
        Phase::Active => Action::Adopt,
        Phase::Pending => Action::Wait {
            status: meta.status.clone(),
        },
        Phase::Failed => Action::Failed {
            reason: meta
                .failure_reason
                .clone()
                .filter(|r| !r.trim().is_empty())
                .map_or_else(
                    || format!("{} (Personalize gave no reason)", meta.status),
                    |r| format!("{}: {r}", meta.status),
                ),
        },
        Phase::Unusable => Action::Failed {
            reason: format!("its status is {}, which cannot be used", meta.status),
        },
    }
}

fn compare(out: &mut Vec<String>, what: &str, file: Option<&str>, personalize: Option<&str>) {
    if file != personalize {
        out.push(format!(
            "{what}: the file has {}, Personalize has {}",
            file.unwrap_or("none"),
            personalize.unwrap_or("none")
        ));
    }
}

fn config_differences<T: serde::Serialize>(
    what: &str,
    file: Option<&T>,
    personalize: Option<&serde_json::Value>,
) -> Vec<String> {
    match file.map(serde_json::to_value) {
        Some(Ok(want)) => json_differences(what, &want, personalize),
        Some(Err(e)) => vec![format!("{what}: cannot be compared ({e})")],
        None => Vec::new(),
    }
}

fn newest<'o, T>(items: impl Iterator<Item = &'o T>, meta: impl Fn(&T) -> &Meta) -> Option<&'o T>
where
    T: 'o,
{
    items.max_by_key(|i| {
        let m = meta(i);
        (m.created, m.arn.clone())
    })
}

fn has_schedule(s: &Option<Schedule>) -> bool {
    matches!(s, Some(Schedule::Cron(_) | Schedule::Rate(_)))
}

/// `performAutoTraining` to send, and why.
pub(crate) fn auto_training_decision(s: &Solution) -> (bool, String) {
    if let Some(v) = s.perform_auto_training {
        return (v, format!("performAutoTraining {v}, as the file sets it"));
    }
    let scheduled = [("full", &s.schedules.full), ("update", &s.schedules.update)]
        .into_iter()
        .filter(|(_, sch)| has_schedule(sch))
        .map(|(k, _)| k)
        .collect::<Vec<_>>();
    if scheduled.is_empty() {
        (
            true,
            "performAutoTraining true: the file does not set it and no schedule retrains the solution (Personalize's default)".to_string(),
        )
    } else {
        (
            false,
            format!(
                "performAutoTraining false: the file does not set it and the {} schedule owns retraining",
                scheduled.join(" and ")
            ),
        )
    }
}

/// The UpdateSolution that brings `o` to the file, if anything it can change differs. Only what the
/// file sets is compared and sent (Personalize fills defaults into what it describes).
fn solution_update(s: &Solution, o: &SolutionObs) -> InPlace {
    let mut changes = Vec::new();
    if let Some(want) = s.perform_auto_training
        && o.perform_auto_training != Some(want)
    {
        let have = o
            .perform_auto_training
            .map_or_else(|| "none".to_string(), |h| h.to_string());
        changes.push(format!("performAutoTraining: {have} → {want}"));
    }
    let config = s.solution_config.as_ref();
    let auto = config.and_then(|c| c.auto_training_config.clone());
    let events = config.and_then(|c| c.events_config.clone());
    let (auto_json, events_json) = (to_json(auto.as_ref()), to_json(events.as_ref()));
    for (key, want) in [("autoTrainingConfig", &auto_json), ("eventsConfig", &events_json)] {
        let have = o.config.as_ref().and_then(|c| c.get(key));
        changes.extend(json_changes(&format!("solutionConfig.{key}"), want, have));
    }
    if changes.is_empty() {
        return None;
    }
    let requested = json!({
        "performAutoTraining": s.perform_auto_training,
        "solutionUpdateConfig": {"autoTrainingConfig": auto_json, "eventsConfig": events_json},
    });
    let request = Request::UpdateSolution {
        solution_arn: o.meta.arn.clone(),
        perform_auto_training: s.perform_auto_training,
        auto_training_config: auto,
        events_config: events,
    };
    Some((request, changes, requested))
}

/// The ACTIVE version of `s` its campaigns serve (the first campaign of the file that exists and
/// serves one of `s`'s ACTIVE versions).
pub fn serving_version(obs: &Observation, s: &Solution) -> Option<String> {
    let active: Vec<&str> = obs
        .versions
        .get(&s.name)
        .into_iter()
        .flatten()
        .filter(|v| v.meta.phase() == Phase::Active)
        .map(|v| v.meta.arn.as_str())
        .collect();
    s.campaigns
        .iter()
        .filter_map(|c| obs.campaigns.get(&c.name))
        .map(|c| c.solution_version_arn.as_str())
        .find(|arn| active.contains(arn))
        .map(str::to_string)
}

/// A file's value in the API's member names (`Null` when absent: compared as "not set").
/// The failure of a batch job whose role setting is not set.
fn batch_role_missing(kind: Kind) -> Action {
    let (key, env) = match kind {
        Kind::BatchSegmentJob => (
            "personalize.batch_segment_role_arn",
            "PERSONALIZE_OPS__PERSONALIZE__BATCH_SEGMENT_ROLE_ARN",
        ),
        _ => (
            "personalize.batch_inference_role_arn",
            "PERSONALIZE_OPS__PERSONALIZE__BATCH_INFERENCE_ROLE_ARN",
        ),
    };
    Action::Failed {
        reason: format!("{kind} needs the role setting {key} (environment {env}), which is not set"),
    }
}

fn to_json<T: serde::Serialize>(value: Option<&T>) -> Value {
    value
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null)
}

impl<'a> Planner<'a> {
    fn push(&mut self, target: Ref, arn: Option<String>, action: Action, note: Option<String>) {
        // A resource that is otherwise as the file says may still carry other tags.
        let action = match (&action, &arn) {
            (Action::Adopt, Some(a)) => match self.retag(&target, a) {
                Some(retag) => {
                    self.usable.insert(target.clone());
                    self.arns.insert(target.clone(), a.clone());
                    retag
                }
                None => action,
            },
            _ => action,
        };
        if action.is_done()
            && let Some(a) = &arn
        {
            self.arns.insert(target.clone(), a.clone());
        }
        self.steps.push(Step {
            target,
            arn,
            action,
            note,
        });
    }

    fn state(&self, r: &Ref) -> Option<&Action> {
        self.steps.iter().find(|s| &s.target == r).map(|s| &s.action)
    }

    fn deps(&self, deps: &[Ref]) -> Deps {
        let mut waiting = Vec::new();
        for d in deps {
            match self.state(d) {
                Some(a) if a.is_broken() => return Deps::Broken(d.clone()),
                Some(a) if a.is_done() || self.usable.contains(d) => {}
                _ => waiting.push(d.clone()),
            }
        }
        if waiting.is_empty() {
            Deps::Ready
        } else {
            Deps::Waiting(waiting)
        }
    }

    fn arn(&self, r: &Ref) -> String {
        self.arns.get(r).cloned().unwrap_or_default()
    }

    /// A create step once `deps` are done; `build` makes the request from their ARNs.
    fn create(
        &mut self,
        target: Ref,
        deps: &[Ref],
        why: impl Into<String>,
        note: Option<String>,
        build: impl FnOnce(&Self) -> Request,
    ) {
        let action = match self.deps(deps) {
            Deps::Broken(on) => Action::DependencyFailed { on },
            Deps::Waiting(after) => Action::Create {
                request: None,
                after,
                why: why.into(),
            },
            Deps::Ready => Action::Create {
                request: Some(build(self)),
                after: Vec::new(),
                why: why.into(),
            },
        };
        self.push(target, None, action, note);
    }

    /// A step for a resource that exists: a conflict when `differences` is not empty, else its status.
    fn existing(&mut self, target: Ref, meta: &Meta, differences: Vec<String>, note: Option<String>) {
        let action = if differences.is_empty() {
            status_action(meta)
        } else {
            Action::Conflict { differences }
        };
        self.push(target, Some(meta.arn.clone()), action, note);
    }

    /// A step for a resource that exists and can be changed in place: a conflict when `immutable`
    /// differences exist; otherwise its status while it is not ACTIVE, a wait while an earlier update
    /// runs, a failure when this same update failed before, the update when `update` has changes,
    /// else adopted. `usable`: the resource serves its old configuration during the update.
    fn existing_or_update(
        &mut self,
        target: Ref,
        meta: &Meta,
        immutable: Vec<String>,
        update: InPlace,
        usable: bool,
        note: Option<String>,
    ) {
        if !immutable.is_empty() || meta.phase() != Phase::Active {
            return self.existing(target, meta, immutable, note);
        }
        let latest = self.obs.updates.get(&meta.arn);
        let action = match (latest, update) {
            (Some(u), _) if Phase::of(&u.status) == Phase::Pending => Action::Wait {
                status: format!("update {}", u.status),
            },
            (_, None) => Action::Adopt,
            (Some(u), Some((_, _, requested)))
                if Phase::of(&u.status) == Phase::Failed
                    && json_differences("", &requested, Some(&u.requested)).is_empty() =>
            {
                let reason = u
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                Action::Failed {
                    reason: format!("the update failed: {reason}"),
                }
            }
            (_, Some((request, changes, _))) => Action::Update { request, changes },
        };
        if usable && matches!(action, Action::Update { .. } | Action::Wait { .. }) {
            self.usable.insert(target.clone());
            self.arns.insert(target.clone(), meta.arn.clone());
        }
        self.push(target, Some(meta.arn.clone()), action, note);
    }

    /// The TagResource that brings `target`'s tags (when they were read) to the file's.
    fn retag(&self, target: &Ref, arn: &str) -> Option<Action> {
        let have = self.obs.tags.get(arn)?;
        let want = self.file_tags(target)?;
        let changes = super::tag_changes(want, have)?;
        Some(Action::Update {
            request: Request::TagResource {
                resource_arn: arn.to_string(),
                tags: changes.set,
                untag_keys: changes.remove,
            },
            changes: changes.lines,
        })
    }

    /// The tags the file gives `target` (inherited root tags included), for the kinds that take
    /// tags after creation.
    fn file_tags(&self, target: &Ref) -> Option<&'a [Tag]> {
        let spec = self.spec;
        let name = target.name.as_str();
        let tags = match target.kind {
            Kind::DatasetGroup => &spec.dataset_group.tags,
            Kind::Dataset => &spec.datasets.as_ref()?.all().find(|d| d.name == name)?.tags,
            Kind::EventTracker => &spec.event_tracker.as_ref().filter(|t| t.name == name)?.tags,
            Kind::Filter => &spec.filters.iter().find(|f| f.name == name)?.tags,
            Kind::Solution => &spec.solutions.iter().find(|s| s.name == name)?.tags,
            Kind::Campaign => {
                &spec
                    .solutions
                    .iter()
                    .flat_map(|s| &s.campaigns)
                    .find(|c| c.name == name)?
                    .tags
            }
            Kind::Recommender => &spec.recommenders.iter().find(|r| r.name == name)?.tags,
            _ => return None,
        };
        Some(tags)
    }

    fn group_ref(&self) -> Ref {
        Ref::new(Kind::DatasetGroup, &self.spec.dataset_group.name)
    }

    fn dataset_refs(&self) -> Vec<Ref> {
        self.spec
            .datasets
            .iter()
            .flat_map(|d| d.all())
            .map(|d| Ref::new(Kind::Dataset, &d.name))
            .collect()
    }

    fn dataset_group(&mut self) {
        let g = &self.spec.dataset_group;
        let target = self.group_ref();
        let domain = g.domain.map(|d| d.as_str().to_string());
        match &self.obs.group {
            None => {
                let kms = self.run.roles.kms.clone();
                let (role_arn, kms_key_arn) = match (&g.role_arn, &g.kms_key_arn, kms) {
                    (Some(r), Some(k), _) => (Some(r.clone()), Some(k.clone())),
                    (_, _, Some((r, k))) => (Some(r), Some(k)),
                    _ => (None, None),
                };
                let tags = g.tags.clone();
                let name = g.name.clone();
                self.create(target, &[], "it does not exist", None, |_| {
                    Request::CreateDatasetGroup {
                        name,
                        domain,
                        role_arn,
                        kms_key_arn,
                        tags,
                    }
                });
            }
            Some(o) => {
                let mut diff = Vec::new();
                compare(&mut diff, "domain", domain.as_deref(), o.domain.as_deref());
                let want_key = g
                    .kms_key_arn
                    .clone()
                    .or_else(|| self.run.roles.kms.as_ref().map(|(_, k)| k.clone()));
                if want_key.is_some() {
                    compare(
                        &mut diff,
                        "kmsKeyArn",
                        want_key.as_deref(),
                        o.kms_key_arn.as_deref(),
                    );
                }
                self.existing(target, &o.meta, diff, None);
            }
        }
    }

    fn datasets(&mut self) {
        let Some(ds) = &self.spec.datasets else {
            return;
        };
        let group = self.group_ref();
        for d in ds.all() {
            if let Some(schema) = &d.schema {
                let target = Ref::new(Kind::Schema, &schema.name);
                if self.state(&target).is_some() {
                    // Two datasets may share one schema: it is planned once.
                } else {
                    let domain = schema.domain.map(|x| x.as_str().to_string());
                    match self.obs.schemas.get(&schema.name) {
                        None => {
                            let (name, text) = (schema.name.clone(), schema.document_text());
                            self.create(target, &[], "it does not exist", None, |_| {
                                Request::CreateSchema {
                                    name,
                                    schema: text,
                                    domain,
                                }
                            });
                        }
                        Some(o) => {
                            let mut diff = Vec::new();
                            compare(&mut diff, "domain", domain.as_deref(), o.domain.as_deref());
                            if diff.is_empty() && o.document != schema.document {
                                match self.revise(d, schema, o) {
                                    Ok(()) => {}
                                    Err(reasons) => diff.extend(reasons),
                                }
                            }
                            let action = if diff.is_empty() {
                                Action::Adopt
                            } else {
                                Action::Conflict { differences: diff }
                            };
                            self.push(target, Some(o.arn.clone()), action, None);
                            self.revision_step(d, schema, domain);
                        }
                    }
                }
            }
            self.dataset(d, &group);
        }
    }

    /// Records the revision of `schema` for `d` (see [`super::schema_change`]), or why there is none.
    fn revise(
        &mut self,
        d: &Dataset,
        schema: &crate::spec::model::Schema,
        existing: &super::observed::SchemaObs,
    ) -> Result<(), Vec<String>> {
        let current = self.obs.datasets.get(&d.dataset_type).and_then(|o| {
            self.obs
                .schemas
                .get(super::schema_change::schema_name(&o.schema_arn))
        });
        let revision = super::schema_change::revise(schema, d.dataset_type, existing, current, self.obs)?;
        self.revisions.insert(schema.name.clone(), revision);
        Ok(())
    }

    /// The step of a revision schema: adopted when it exists, created before a new dataset; an
    /// existing dataset's UpdateDataset creates it itself (one step for the user to read).
    fn revision_step(&mut self, d: &Dataset, schema: &crate::spec::model::Schema, domain: Option<String>) {
        let Some(rev) = self.revisions.get(&schema.name).cloned() else {
            return;
        };
        let target = Ref::new(Kind::Schema, &rev.name);
        if rev.exists {
            self.push(target, Some(rev.arn), Action::Adopt, None);
        } else if !self.obs.datasets.contains_key(&d.dataset_type) {
            let text = schema.document_text();
            let why = format!("the file's document of schema {} is new", schema.name);
            self.create(target, &[], why, None, |_| Request::CreateSchema {
                name: rev.name,
                schema: text,
                domain,
            });
        }
    }

    fn dataset(&mut self, d: &Dataset, group: &Ref) {
        let revision = d
            .schema
            .as_ref()
            .and_then(|s| self.revisions.get(&s.name))
            .cloned();
        let schema_ref = d.schema.as_ref().map(|s| match &revision {
            Some(rev) => Ref::new(Kind::Schema, &rev.name),
            None => Ref::new(Kind::Schema, &s.name),
        });
        match self.obs.datasets.get(&d.dataset_type) {
            None => self.new_dataset(d, group, schema_ref),
            Some(o) => match (&revision, &d.schema) {
                (Some(rev), Some(schema)) => self.revised_dataset(d, o, rev, schema),
                _ => self.existing_dataset(d, o, schema_ref.as_ref()),
            },
        }
    }

    /// A dataset the group lacks: created once its group and schema are.
    fn new_dataset(&mut self, d: &Dataset, group: &Ref, schema_ref: Option<Ref>) {
        let target = Ref::new(Kind::Dataset, &d.name);
        let Some(schema_ref) = schema_ref else {
            let reason = "the file has no schema block for it, so it cannot be created".into();
            return self.push(target, None, Action::Failed { reason }, None);
        };
        let (name, tags, ty) = (d.name.clone(), d.tags.clone(), d.dataset_type);
        let (g, s) = (group.clone(), schema_ref.clone());
        self.create(
            target,
            &[group.clone(), schema_ref],
            "it does not exist",
            None,
            |p| Request::CreateDataset {
                name,
                dataset_group_arn: p.arn(&g),
                schema_arn: p.arn(&s),
                dataset_type: ty,
                tags,
            },
        );
    }

    /// What differs between the file's dataset and the group's, other than its schema.
    fn dataset_name_difference(d: &Dataset, o: &DatasetObs) -> Vec<String> {
        if o.name == d.name {
            return Vec::new();
        }
        vec![format!(
            "name: the group's {} dataset is {}, the file names it {}",
            d.dataset_type, o.name, d.name
        )]
    }

    /// A dataset whose schema has a revision: moved to it in place (it keeps its data and serves on
    /// during the update) unless it already uses it.
    fn revised_dataset(
        &mut self,
        d: &Dataset,
        o: &DatasetObs,
        rev: &super::schema_change::Revision,
        schema: &crate::spec::model::Schema,
    ) {
        let target = Ref::new(Kind::Dataset, &d.name);
        let diff = Self::dataset_name_difference(d, o);
        let update = (rev.arn != o.schema_arn).then(|| {
            let from = super::schema_change::schema_name(&o.schema_arn);
            let added = if rev.added.is_empty() {
                String::new()
            } else {
                format!(" (adds the optional fields {})", rev.added.join(", "))
            };
            (
                Request::UpdateDataset {
                    dataset_arn: o.meta.arn.clone(),
                    schema_arn: rev.arn.clone(),
                    create_schema: (!rev.exists).then(|| super::NewSchema {
                        name: rev.name.clone(),
                        schema: schema.document_text(),
                        domain: schema.domain.map(|x| x.as_str().to_string()),
                    }),
                },
                vec![format!("schema: {from} → {}{added}", rev.name)],
                Value::String(rev.arn.clone()),
            )
        });
        self.existing_or_update(target, &o.meta, diff, update, true, None);
    }

    /// A dataset the group has, without a schema revision: a conflict when its name or schema differ.
    fn existing_dataset(&mut self, d: &Dataset, o: &DatasetObs, schema_ref: Option<&Ref>) {
        let target = Ref::new(Kind::Dataset, &d.name);
        let mut diff = Self::dataset_name_difference(d, o);
        if let Some(s) = schema_ref
            && let Some(schema_arn) = self.arns.get(s)
            && schema_arn != &o.schema_arn
        {
            diff.push(format!(
                "schemaArn: the file has {schema_arn}, Personalize has {}",
                o.schema_arn
            ));
        }
        self.existing(target, &o.meta, diff, None);
    }

    fn imports(&mut self) {
        let Some(ds) = &self.spec.datasets else {
            return;
        };
        for d in ds.all() {
            self.import(
                d,
                ds.import.import_mode,
                &ds.import.tags,
                ds.import.publish_attribution_metrics_to_s3,
            );
        }
    }

    fn import(&mut self, d: &Dataset, mode: ImportMode, tags: &[crate::spec::model::Tag], publish: bool) {
        let ty = d.dataset_type;
        let planned = names::import_job_name(ty, self.run.run_start);
        let Some(data) = self.data.datasets.get(&ty) else {
            let reason = format!(
                "no data for {ty}: neither a {ty}/ folder of .csv files nor {ty}.csv beside the parameter file"
            );
            let skip = Action::Skip {
                reason,
                warning: false,
            };
            return self.push(Ref::new(Kind::DatasetImportJob, planned), None, skip, None);
        };
        let dataset = Ref::new(Kind::Dataset, &d.name);
        if self.import_waits_for_dataset(ty, &planned, &dataset) {
            return;
        }
        let dataset_arn = self.arn(&dataset);
        let jobs: Vec<_> = self
            .obs
            .import_jobs
            .get(&ty)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        // This run's own job (by name, so a resumed run finds it); never a job of another dataset,
        // because only this dataset's jobs were listed.
        if let Some(mine) = jobs
            .iter()
            .find(|j| names::is_job_named(&j.job_name, &planned, &dataset_arn))
        {
            return self.own_import(ty, mine);
        }
        if let Some(running) = newest(
            jobs.iter().copied().filter(|j| j.meta.phase() == Phase::Pending),
            |j| &j.meta,
        ) {
            let target = Ref::new(Kind::DatasetImportJob, &running.job_name);
            self.note_pending_import(ty, &target);
            let note = "an import started earlier is still running: adopted, not repeated";
            let wait = Action::Wait {
                status: running.meta.status.clone(),
            };
            return self.push(target, Some(running.meta.arn.clone()), wait, Some(note.into()));
        }
        let last = jobs
            .iter()
            .copied()
            .filter(|j| j.meta.phase() == Phase::Active)
            .max_by_key(|j| (j.meta.updated.or(j.meta.created), j.meta.arn.clone()));
        let Some(why) = self.import_reason(last, data.newest) else {
            if let Some(j) = last {
                let target = Ref::new(Kind::DatasetImportJob, &j.job_name);
                self.push(target, Some(j.meta.arn.clone()), Action::Adopt, None);
            }
            return;
        };
        let target = Ref::new(Kind::DatasetImportJob, &planned);
        let Some(role) = self.import_role(&target) else {
            return;
        };
        // Personalize requires the first import of a dataset to be FULL.
        let mode = if last.is_none() { ImportMode::Full } else { mode };
        self.note_pending_import(ty, &target);
        let request = Request::CreateDatasetImportJob {
            job_name: planned,
            dataset_arn,
            data_location: data.url.clone(),
            role_arn: role,
            import_mode: mode.as_str().to_string(),
            publish_attribution_metrics_to_s3: publish,
            tags: tags.to_vec(),
        };
        let create = Action::Create {
            request: Some(request),
            after: Vec::new(),
            why,
        };
        self.push(target, None, create, None);
    }

    /// Pushes the import's step when its dataset is not ready (failed, or still being created) and
    /// says so; `false` when the dataset is ready.
    fn import_waits_for_dataset(&mut self, ty: DatasetType, planned: &str, dataset: &Ref) -> bool {
        let target = Ref::new(Kind::DatasetImportJob, planned);
        match self.deps(std::slice::from_ref(dataset)) {
            Deps::Broken(on) => {
                self.run_imports.push(target.clone());
                self.push(target, None, Action::DependencyFailed { on }, None);
                true
            }
            Deps::Waiting(after) => {
                self.note_pending_import(ty, &target);
                let create = Action::Create {
                    request: None,
                    after,
                    why: "the dataset is new".into(),
                };
                self.push(target, None, create, None);
                true
            }
            Deps::Ready => false,
        }
    }

    /// The import role, or a failed step for `target` saying which setting is missing.
    fn import_role(&mut self, target: &Ref) -> Option<String> {
        let role = self.run.roles.import.clone();
        if role.is_none() {
            self.run_imports.push(target.clone());
            self.push(
                target.clone(),
                None,
                Action::Failed {
                    reason: "importing needs the role setting personalize.import_role_arn (environment PERSONALIZE_OPS__PERSONALIZE__IMPORT_ROLE_ARN), which is not set".into(),
                },
                None,
            );
        }
        role
    }

    /// This run's own import job, found by name (a resumed run finds it again).
    fn own_import(&mut self, ty: DatasetType, mine: &ImportJobObs) {
        let target = Ref::new(Kind::DatasetImportJob, &mine.job_name);
        let action = status_action(&mine.meta);
        match &action {
            Action::Wait { .. } => self.note_pending_import(ty, &target),
            // Not new data for retrainOnNewData, but what waited for it must not go ahead.
            Action::Failed { .. } => self.run_imports.push(target.clone()),
            Action::Adopt if ty == DatasetType::Interactions => {
                let at = mine
                    .meta
                    .updated
                    .or(mine.meta.created)
                    .unwrap_or(self.run.run_start);
                self.interactions_import = Some(InteractionsImport::Done(at));
            }
            _ => {}
        }
        self.push(target, Some(mine.meta.arn.clone()), action, None);
    }

    /// Why the dataset needs a new import, or `None` when its last successful import (`last`) is
    /// current: the data is not newer, or an explicit `maxAge` has not passed yet.
    fn import_reason(&self, last: Option<&ImportJobObs>, data_newest: DateTime<Utc>) -> Option<String> {
        let Some(j) = last else {
            return Some("no import of this dataset has succeeded yet".to_string());
        };
        let finished = j
            .meta
            .updated
            .or(j.meta.created)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let explicit_age = self
            .spec
            .dataset_group
            .max_age
            .as_ref()
            .filter(|m| m.text != DEFAULT_IMPORT_MAX_AGE);
        if data_newest <= finished {
            None
        } else if let Some(m) = explicit_age
            && (self.run.now - finished).to_std().unwrap_or_default() < m.duration()
        {
            None
        } else {
            Some(format!(
                "the data (modified {data_newest}) is newer than the last import {} (finished {finished})",
                j.job_name
            ))
        }
    }

    fn note_pending_import(&mut self, ty: DatasetType, target: &Ref) {
        self.run_imports.push(target.clone());
        if ty == DatasetType::Interactions {
            self.interactions_import = Some(InteractionsImport::Pending(target.clone()));
        }
    }

    fn group_and_datasets(&self) -> Vec<Ref> {
        std::iter::once(self.group_ref())
            .chain(self.dataset_refs())
            .collect()
    }

    fn event_tracker(&mut self) {
        let Some(t) = &self.spec.event_tracker else {
            return;
        };
        let target = Ref::new(Kind::EventTracker, &t.name);
        if let Some(o) = self.obs.event_trackers.iter().find(|o| o.name == t.name) {
            self.existing(target, &o.meta, Vec::new(), None);
        } else if let Some(other) = self.obs.event_trackers.first() {
            self.push(
                target,
                Some(other.meta.arn.clone()),
                Action::Conflict {
                    differences: vec![format!(
                        "name: the group already has the event tracker {} and Personalize allows one per group",
                        other.name
                    )],
                },
                None,
            );
        } else {
            let (name, tags, g) = (t.name.clone(), t.tags.clone(), self.group_ref());
            let deps = self.group_and_datasets();
            self.create(target, &deps, "it does not exist", None, |p| {
                Request::CreateEventTracker {
                    name,
                    dataset_group_arn: p.arn(&g),
                    tags,
                }
            });
        }
    }

    /// The group's ARN when known, for "belongs to another group" checks.
    fn group_arn(&self) -> Option<&str> {
        self.obs.group.as_ref().map(|g| g.meta.arn.as_str())
    }

    fn other_group(&self, diff: &mut Vec<String>, theirs: &str) {
        if let Some(ours) = self.group_arn()
            && ours != theirs
        {
            diff.push(format!(
                "datasetGroupArn: it belongs to {theirs}, not to this group {ours} (names are unique per account)"
            ));
        }
    }

    fn filters(&mut self) {
        let mut deps = self.group_and_datasets();
        deps.extend(self.run_imports.iter().cloned());
        for f in &self.spec.filters {
            let target = Ref::new(Kind::Filter, &f.name);
            match self.obs.filters.get(&f.name) {
                Some(o) => self.existing_filter(target, f, o),
                None => {
                    let (name, expr, tags, g) = (
                        f.name.clone(),
                        f.filter_expression.clone(),
                        f.tags.clone(),
                        self.group_ref(),
                    );
                    self.create(target, &deps, "it does not exist", None, |p| {
                        Request::CreateFilter {
                            name,
                            dataset_group_arn: p.arn(&g),
                            filter_expression: expr,
                            tags,
                        }
                    });
                }
            }
        }
    }

    /// A filter cannot change in place: a new expression replaces it (delete, wait, create with the
    /// same name) only with `replaceFilters`, since the filter is unusable in between.
    fn existing_filter(
        &mut self,
        target: Ref,
        f: &crate::spec::model::Filter,
        o: &super::observed::FilterObs,
    ) {
        let replace = self.spec.dataset_group.replace_filters;
        let mut diff = Vec::new();
        self.other_group(&mut diff, &o.group_arn);
        let changed = f.filter_expression != o.expression;
        let arn = Some(o.meta.arn.clone());
        if !diff.is_empty() {
            return self.existing(target, &o.meta, diff, None);
        }
        let deleting = o.meta.status.to_ascii_uppercase().starts_with("DELETE");
        if replace && deleting {
            let status = format!("{} (replaced: created again once it is gone)", o.meta.status);
            return self.push(target, arn, Action::Wait { status }, None);
        }
        if !changed {
            return self.existing(target, &o.meta, diff, None);
        }
        let change = format!("filterExpression: {} → {}", o.expression, f.filter_expression);
        if !replace {
            let why = format!(
                "{change}; a filter cannot be changed in place: set datasetGroup.workflowConfig.replaceFilters to true to replace it (deleted, then created again with the same name; recommendations that use it fail in between)"
            );
            return self.existing(target, &o.meta, vec![why], None);
        }
        let action = match o.meta.phase() {
            Phase::Pending => Action::Wait {
                status: o.meta.status.clone(),
            },
            _ => Action::Update {
                request: Request::DeleteFilter {
                    filter_arn: o.meta.arn.clone(),
                },
                changes: vec![format!(
                    "{change} (replaced: deleted, then created again with the same name)"
                )],
            },
        };
        self.push(target, arn, action, None);
    }

    fn solution(&mut self, s: &Solution) {
        let target = Ref::new(Kind::Solution, &s.name);
        let (auto, note) = auto_training_decision(s);
        match self.obs.solutions.get(&s.name) {
            Some(o) => {
                let mut diff = Vec::new();
                self.other_group(&mut diff, &o.group_arn);
                if let Some(r) = &s.recipe_arn {
                    compare(&mut diff, "recipeArn", Some(r), o.recipe_arn.as_deref());
                }
                if s.perform_hpo != o.perform_hpo {
                    diff.push(format!(
                        "performHPO: the file has {}, Personalize has {}",
                        s.perform_hpo, o.perform_hpo
                    ));
                }
                if s.event_type.is_some() {
                    compare(
                        &mut diff,
                        "eventType",
                        s.event_type.as_deref(),
                        o.event_type.as_deref(),
                    );
                }
                // UpdateSolution changes the auto-training and events settings; the rest is fixed.
                let fixed = s.solution_config.clone().map(|mut c| {
                    c.auto_training_config = None;
                    c.events_config = None;
                    c
                });
                diff.extend(config_differences(
                    "solutionConfig",
                    fixed.as_ref(),
                    o.config.as_ref(),
                ));
                let note = match (s.perform_auto_training, o.perform_auto_training) {
                    (None, Some(have)) if have != auto => Some(format!(
                        "{note}; the existing solution has performAutoTraining {have}, which is kept (the file does not set it)"
                    )),
                    _ => None,
                };
                let update = solution_update(s, o);
                self.existing_or_update(target, &o.meta, diff, update, true, note);
            }
            None => {
                let deps = self.group_and_datasets();
                let (g, sol) = (self.group_ref(), s.clone());
                self.create(target, &deps, "it does not exist", Some(note), |p| {
                    Request::CreateSolution {
                        dataset_group_arn: p.arn(&g),
                        perform_auto_training: auto,
                        solution: Box::new(sol),
                    }
                });
            }
        }
    }

    fn version(&mut self, s: &Solution) {
        let sol = Ref::new(Kind::Solution, &s.name);
        let target = Ref::new(Kind::SolutionVersion, &s.name);
        if self.version_waits_for_solution(&target, &sol) {
            return;
        }
        let versions: Vec<_> = self
            .obs
            .versions
            .get(&s.name)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let in_phase = |p: Phase| {
            newest(versions.iter().copied().filter(|v| v.meta.phase() == p), |v| {
                &v.meta
            })
        };
        if let Some(running) = in_phase(Phase::Pending) {
            let wait = Action::Wait {
                status: running.meta.status.clone(),
            };
            // Only a version this run did not start is worth a word: one it created is simply training.
            let adopted = running.meta.created.is_none_or(|c| c < self.run.run_start);
            let note = adopted.then(|| "a version in training is adopted, not duplicated".to_string());
            return self.push(target, Some(running.meta.arn.clone()), wait, note);
        }
        let active = in_phase(Phase::Active);
        let retrain = self.retrain_on_new_data(s, active);
        let scheduled_mode = match &self.run.scheduled {
            Some(ScheduledWork::Train { solution, mode }) if solution == &s.name => Some(*mode),
            _ => None,
        };
        // This run's own versions: created since its start and, for a schedule's retraining, in the
        // fire's mode, so a full and an update schedule firing at one instant each train their own.
        let own_run = |v: &&VersionObs| {
            v.meta.created.is_some_and(|c| c >= self.run.run_start)
                && scheduled_mode.is_none_or(|m| v.training_mode.as_deref().is_none_or(|t| t == m.as_str()))
        };
        let retrain = match (scheduled_mode, active) {
            (Some(mode), Some(_)) => {
                // The fire's own version ends the scheduled training: adopted when ACTIVE, reported
                // when it failed; a version in training was adopted above.
                if let Some(own) = newest(versions.iter().copied().filter(own_run), |v| &v.meta) {
                    if own.meta.phase() == Phase::Active {
                        return self.adopt_version(s, target, own);
                    }
                    return self.push(target, Some(own.meta.arn.clone()), status_action(&own.meta), None);
                }
                Some((
                    format!(
                        "the schedule fired at {}: {} retraining",
                        self.run.run_start,
                        mode.as_str()
                    ),
                    Vec::new(),
                ))
            }
            _ => retrain,
        };
        let why = match (active, retrain) {
            (Some(v), None) => return self.adopt_version(s, target, v),
            (Some(_), Some((why, _))) => why,
            (None, _) => "the solution has no ACTIVE version".to_string(),
        };
        // A version this run already trained and that failed is reported, not retrained in a loop.
        if let Some(last) = newest(versions.iter().copied(), |v| &v.meta)
            && last.meta.phase() == Phase::Failed
            && own_run(&last)
        {
            return self.push(
                target,
                Some(last.meta.arn.clone()),
                status_action(&last.meta),
                None,
            );
        }
        let request = self.version_request(s, &sol, &versions, scheduled_mode);
        self.create_after_imports(target, request, why);
    }

    /// Pushes the version's step when its solution is not ready (failed, or new: then it also waits
    /// for this run's imports); `false` when the solution is ready.
    fn version_waits_for_solution(&mut self, target: &Ref, sol: &Ref) -> bool {
        match self.deps(std::slice::from_ref(sol)) {
            Deps::Broken(on) => self.push(target.clone(), None, Action::DependencyFailed { on }, None),
            Deps::Waiting(mut after) => {
                if let Deps::Broken(on) = self.deps(&self.run_imports) {
                    self.push(target.clone(), None, Action::DependencyFailed { on }, None);
                    return true;
                }
                after.extend(self.run_imports.iter().cloned());
                let create = Action::Create {
                    request: None,
                    after,
                    why: "the solution is new".into(),
                };
                self.push(target.clone(), None, create, None);
            }
            Deps::Ready => return false,
        }
        true
    }

    /// `retrainOnNewData`: why this run trains a new version because of its interactions import
    /// (pending, or finished after the newest ACTIVE version was trained), and what it waits for.
    fn retrain_on_new_data(&self, s: &Solution, active: Option<&VersionObs>) -> Option<(String, Vec<Ref>)> {
        match (&self.interactions_import, active, s.retrain_on_new_data) {
            (Some(InteractionsImport::Pending(r)), Some(_), true) => Some((
                format!("retrainOnNewData: this run imports interactions ({})", r.name),
                vec![r.clone()],
            )),
            (Some(InteractionsImport::Done(at)), Some(v), true) if v.meta.created.is_none_or(|c| c < *at) => {
                Some((
                    format!(
                        "retrainOnNewData: interactions were imported at {at}, after the newest version was trained"
                    ),
                    Vec::new(),
                ))
            }
            _ => None,
        }
    }

    /// The CreateSolutionVersion of this run: UPDATE only on top of an ACTIVE FULL version, and
    /// never unnamed.
    fn version_request(
        &self,
        s: &Solution,
        sol: &Ref,
        versions: &[&VersionObs],
        scheduled_mode: Option<TrainingMode>,
    ) -> Request {
        let has_full = versions.iter().any(|v| {
            v.meta.phase() == Phase::Active && v.training_mode.as_deref().is_none_or(|m| m == "FULL")
        });
        // Personalize trains UPDATE versions on top of an ACTIVE FULL one only.
        let mode = if has_full {
            scheduled_mode.unwrap_or(s.solution_version.training_mode)
        } else {
            TrainingMode::Full
        };
        // Never unnamed: the run's own name makes a retried or duplicated create recognisable; an
        // update fire's differs from a full fire's of the same instant.
        let name = s.solution_version.name.clone().unwrap_or_else(|| {
            if scheduled_mode == Some(TrainingMode::Update) && mode == TrainingMode::Update {
                names::update_version_name(&s.name, self.run.run_start)
            } else {
                names::solution_version_name(&s.name, self.run.run_start)
            }
        });
        Request::CreateSolutionVersion {
            solution_arn: self.arn(sol),
            name: Some(name),
            training_mode: mode.as_str().to_string(),
            tags: s.solution_version.tags.clone(),
        }
    }

    /// Training before this run's imports finish would train on old (or no) data; when one of them
    /// failed, the version is not attempted at all.
    fn create_after_imports(&mut self, target: Ref, request: Request, why: String) {
        let mut after = match self.deps(&self.run_imports) {
            Deps::Broken(on) => return self.push(target, None, Action::DependencyFailed { on }, None),
            Deps::Waiting(after) => after,
            Deps::Ready => Vec::new(),
        };
        after.sort();
        after.dedup();
        let action = if after.is_empty() {
            Action::Create {
                request: Some(request),
                after,
                why,
            }
        } else {
            Action::Create {
                request: None,
                after,
                why: format!("{why}; waits for this run's imports"),
            }
        };
        self.push(target, None, action, None);
    }

    /// Adopts the newest ACTIVE version `candidate`, or, behind a promotion gate it does not pass,
    /// the version the solution's campaigns serve (the candidate stays ACTIVE and unused; the note
    /// gives both figures).
    fn adopt_version(&mut self, s: &Solution, target: Ref, candidate: &VersionObs) {
        let (arn, note) = self.promotion(s, candidate);
        self.push(target, Some(arn), Action::Adopt, note);
    }

    /// The version campaigns and batch jobs should use, and why, when `s` has a promotion gate.
    fn promotion(&self, s: &Solution, candidate: &VersionObs) -> (String, Option<String>) {
        let promoted = candidate.meta.arn.clone();
        let Some(gate) = &s.promotion else {
            return (promoted, None);
        };
        let Some(serving) = serving_version(self.obs, s).filter(|v| *v != promoted) else {
            return (promoted, None);
        };
        let metric = |arn: &str| {
            self.obs
                .metrics
                .get(arn)
                .and_then(|m| m.get(&gate.metric))
                .copied()
        };
        let m = &gate.metric;
        match (metric(&promoted), metric(&serving)) {
            (Some(new), Some(old)) if new >= old + gate.min_delta => (
                promoted.clone(),
                Some(format!(
                    "promoted: candidate {promoted} has {m} {new}, serving {serving} has {old} (minDelta {})",
                    gate.min_delta
                )),
            ),
            (Some(new), Some(old)) => (
                serving.clone(),
                Some(format!(
                    "not promoted: candidate {promoted} has {m} {new} < serving {serving} {old} + minDelta {}; the candidate stays ACTIVE and unused",
                    gate.min_delta
                )),
            ),
            (new, old) => (
                serving.clone(),
                Some(format!(
                    "not promoted: {m} is unknown for the {} (candidate {promoted}, serving {serving}); the serving version stays",
                    match (new, old) {
                        (None, None) => "candidate and the serving version",
                        (None, _) => "candidate",
                        _ => "serving version",
                    }
                )),
            ),
        }
    }

    fn campaigns(&mut self, s: &Solution) {
        let version = Ref::new(Kind::SolutionVersion, &s.name);
        let solution_arn = self.arns.get(&Ref::new(Kind::Solution, &s.name)).cloned();
        for c in &s.campaigns {
            self.campaign(c, &version, solution_arn.as_deref());
        }
    }

    /// One campaign: created on the solution's version, or moved to its new version, or left.
    fn campaign(&mut self, c: &Campaign, version: &Ref, solution_arn: Option<&str>) {
        let target = Ref::new(Kind::Campaign, &c.name);
        let Some(o) = self.obs.campaigns.get(&c.name) else {
            return self.create_campaign(c, target, version);
        };
        let arn = Some(o.meta.arn.clone());
        if self.campaign_blocked(&target, o, solution_arn) {
            return;
        }
        let want_version = match self.deps(std::slice::from_ref(version)) {
            Deps::Broken(on) => return self.push(target, arn, Action::DependencyFailed { on }, None),
            Deps::Waiting(_) => None,
            Deps::Ready => Some(self.arn(version)),
        };
        let waiting = || Action::Wait {
            status: "waiting for the solution's new version".into(),
        };
        let changes = campaign_changes(c, o, want_version.as_deref());
        if changes.is_empty() {
            let action = if want_version.is_some() {
                Action::Adopt
            } else {
                waiting()
            };
            return self.push(target, arn, action, None);
        }
        // An update to this very target that failed is reported rather than repeated.
        if let Some(u) = &o.latest_update
            && Phase::of(&u.status) == Phase::Failed
            && u.solution_version_arn.as_deref() == want_version.as_deref()
        {
            let reason = u.failure_reason.as_deref().unwrap_or("no reason given");
            let failed = Action::Failed {
                reason: format!("the campaign update failed: {reason}"),
            };
            return self.push(target, arn, failed, None);
        }
        let Some(v) = want_version else {
            return self.push(target, arn, waiting(), None);
        };
        let request = Request::UpdateCampaign {
            campaign_arn: o.meta.arn.clone(),
            solution_version_arn: v,
            min_provisioned_tps: c.min_provisioned_tps,
            campaign_config: c.campaign_config.clone(),
        };
        self.push(target, arn, Action::Update { request, changes }, None);
    }

    fn create_campaign(&mut self, c: &Campaign, target: Ref, version: &Ref) {
        let (name, tps, cfg, tags, v) = (
            c.name.clone(),
            c.min_provisioned_tps,
            c.campaign_config.clone(),
            c.tags.clone(),
            version.clone(),
        );
        self.create(
            target,
            std::slice::from_ref(version),
            "it does not exist",
            None,
            |p| Request::CreateCampaign {
                name,
                solution_version_arn: p.arn(&v),
                min_provisioned_tps: tps,
                campaign_config: cfg,
                tags,
            },
        );
    }

    /// Pushes the campaign's step when it cannot be updated now (it serves another solution, is not
    /// ACTIVE, or an update is in progress); `false` when it can.
    fn campaign_blocked(&mut self, target: &Ref, o: &CampaignObs, solution_arn: Option<&str>) -> bool {
        let arn = Some(o.meta.arn.clone());
        if let Some(sa) = solution_arn
            && !o.solution_version_arn.starts_with(&format!("{sa}/"))
        {
            let conflict = Action::Conflict {
                differences: vec![format!(
                    "solutionVersionArn: it serves {}, which is not a version of the solution {sa}",
                    o.solution_version_arn
                )],
            };
            self.push(target.clone(), arn, conflict, None);
            return true;
        }
        if o.meta.phase() != Phase::Active {
            self.push(target.clone(), arn, status_action(&o.meta), None);
            return true;
        }
        if let Some(u) = &o.latest_update
            && Phase::of(&u.status) == Phase::Pending
        {
            let wait = Action::Wait {
                status: format!("update {}", u.status),
            };
            let note = "an update in progress is waited for, not repeated";
            self.push(target.clone(), arn, wait, Some(note.into()));
            return true;
        }
        false
    }

    fn batch_jobs(&mut self, s: &Solution) {
        let role = self.run.roles.batch_inference.clone();
        self.batch_list(
            s,
            Kind::BatchInferenceJob,
            role,
            &s.batch_inference_jobs,
            |job| job.max_age.as_ref(),
            |target, job| Request::CreateBatchInferenceJob {
                target,
                job: Box::new(job),
            },
        );
        let role = self.run.roles.batch_segment.clone();
        self.batch_list(
            s,
            Kind::BatchSegmentJob,
            role,
            &s.batch_segment_jobs,
            |job| job.max_age.as_ref(),
            |target, job| Request::CreateBatchSegmentJob {
                target,
                job: Box::new(job),
            },
        );
    }

    /// Plans each job of one of `s`'s batch job lists; `request` makes a job's create request
    /// from its name, solution version, input, output and role.
    fn batch_list<J: Clone>(
        &mut self,
        s: &Solution,
        kind: Kind,
        role: Option<String>,
        jobs: &[J],
        max_age: fn(&J) -> Option<&MaxAge>,
        request: fn(BatchTarget, J) -> Request,
    ) {
        let version = Ref::new(Kind::SolutionVersion, &s.name);
        for (index, job) in jobs.iter().enumerate() {
            let entry = BatchEntry {
                index,
                count: jobs.len(),
            };
            let limit = max_age(job).map(MaxAge::duration);
            let job = job.clone();
            self.batch_job(s, &version, kind, entry, role.clone(), limit, move |target| {
                request(target, job)
            });
        }
    }

    /// One entry of a solution's batch job list: skipped without an input file, held back by its
    /// solution version, the job found (this run's own, or a fresh one reused), or its create.
    #[allow(clippy::too_many_arguments)]
    fn batch_job(
        &mut self,
        s: &Solution,
        version: &Ref,
        kind: Kind,
        entry: BatchEntry,
        role: Option<String>,
        max_age: Option<std::time::Duration>,
        build: impl FnOnce(BatchTarget) -> Request,
    ) {
        let group = &self.spec.dataset_group.name;
        let planned = names::batch_job_name(&s.name, entry, self.run.run_start);
        let input = format!(
            "s3://{}/{}",
            self.run.bucket,
            names::batch_input_key(group, &s.name)
        );
        if let Some(action) = self.batch_job_blocked(s, version, &input) {
            return self.push(Ref::new(kind, planned), None, action, None);
        }
        let version_arn = self.arn(version);
        // A schedule's retraining names its jobs for its own new version, so a batch schedule
        // firing at the same instant (whose job has the plain name) never shares a name with it.
        let retraining =
            matches!(&self.run.scheduled, Some(ScheduledWork::Train { solution, .. }) if solution == &s.name);
        let planned = if retraining {
            names::retrain_batch_job_name(&s.name, entry, self.run.run_start, &version_arn)
        } else {
            planned
        };
        let step = match self.found_batch_job(s, kind, entry, &planned, &version_arn, max_age) {
            Some(found) => found,
            None => {
                let output = format!(
                    "s3://{}/{}",
                    self.run.bucket,
                    names::batch_output_prefix(group, &s.name, &planned)
                );
                let target = Ref::new(kind, &planned);
                let action = match role {
                    Some(role_arn) => Action::Create {
                        request: Some(build(BatchTarget {
                            job_name: planned,
                            solution_version_arn: version_arn,
                            input,
                            output,
                            role_arn,
                        })),
                        after: Vec::new(),
                        why: "no job for this solution version and entry".into(),
                    },
                    None => batch_role_missing(kind),
                };
                Step {
                    target,
                    arn: None,
                    action,
                    note: None,
                }
            }
        };
        self.push(step.target, step.arn, step.action, step.note);
    }

    /// Why a batch job cannot be planned yet: no input file, or its solution version failed or is
    /// not ready; `None` when it can.
    fn batch_job_blocked(&self, s: &Solution, version: &Ref, input: &str) -> Option<Action> {
        if !self.data.batch_inputs.contains(&s.name) {
            return Some(Action::Skip {
                reason: format!("no batch input file at {input}"),
                warning: true,
            });
        }
        match self.deps(std::slice::from_ref(version)) {
            Deps::Broken(on) => Some(Action::DependencyFailed { on }),
            Deps::Waiting(after) => Some(Action::Create {
                request: None,
                after,
                why: "the solution version is not ready".into(),
            }),
            Deps::Ready => None,
        }
    }

    /// The job of this version and entry that already exists: this run's own (`planned`), else,
    /// unless a batch schedule forces a new one, a job still running or finished within `max_age`.
    fn found_batch_job(
        &self,
        s: &Solution,
        kind: Kind,
        entry: BatchEntry,
        planned: &str,
        version_arn: &str,
        max_age: Option<std::time::Duration>,
    ) -> Option<Step> {
        let all = match kind {
            Kind::BatchSegmentJob => &self.obs.batch_segment_jobs,
            _ => &self.obs.batch_inference_jobs,
        };
        let jobs: Vec<&BatchJobObs> = all
            .get(version_arn)
            .map(|v| {
                v.iter()
                    .filter(|j| names::is_batch_job_of(&j.job_name, &s.name, entry))
                    .collect()
            })
            .unwrap_or_default();
        let found = |j: &BatchJobObs, note: Option<String>| Step {
            target: Ref::new(kind, &j.job_name),
            arn: Some(j.meta.arn.clone()),
            action: status_action(&j.meta),
            note,
        };
        if let Some(mine) = jobs
            .iter()
            .find(|j| names::is_job_named(&j.job_name, planned, version_arn))
        {
            return Some(found(mine, None));
        }
        let fresh = |j: &&&BatchJobObs| match (j.meta.phase(), max_age) {
            (Phase::Pending, _) => true,
            (Phase::Active, None) => true,
            (Phase::Active, Some(age)) => {
                let at = j
                    .meta
                    .updated
                    .or(j.meta.created)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                (self.run.now - at).to_std().unwrap_or_default() < age
            }
            _ => false,
        };
        let forced = matches!(&self.run.scheduled, Some(ScheduledWork::Batch { kind: k, solution, index })
            if *k == kind && solution == &s.name && *index == entry.index);
        if forced {
            return None;
        }
        let reused = newest(jobs.iter().filter(fresh).copied(), |j| &j.meta)?;
        let note = "a job for this solution version and entry exists: reused".to_string();
        Some(found(reused, Some(note)))
    }

    fn recommenders(&mut self) {
        let mut deps = self.group_and_datasets();
        deps.extend(self.run_imports.iter().cloned());
        for r in &self.spec.recommenders {
            let target = Ref::new(Kind::Recommender, &r.name);
            match self.obs.recommenders.get(&r.name) {
                Some(o) => {
                    let mut diff = Vec::new();
                    self.other_group(&mut diff, &o.group_arn);
                    compare(&mut diff, "recipeArn", Some(&r.recipe_arn), Some(&o.recipe_arn));
                    let want = to_json(r.recommender_config.as_ref());
                    let changes = json_changes("recommenderConfig", &want, o.config.as_ref());
                    let update = match &r.recommender_config {
                        Some(config) if !changes.is_empty() => Some((
                            Request::UpdateRecommender {
                                recommender_arn: o.meta.arn.clone(),
                                recommender_config: config.clone(),
                            },
                            changes,
                            want,
                        )),
                        _ => None,
                    };
                    self.existing_or_update(target, &o.meta, diff, update, true, None);
                }
                None => {
                    let (name, recipe, cfg, tags, g) = (
                        r.name.clone(),
                        r.recipe_arn.clone(),
                        r.recommender_config.clone(),
                        r.tags.clone(),
                        self.group_ref(),
                    );
                    self.create(target, &deps, "it does not exist", None, |p| {
                        Request::CreateRecommender {
                            name,
                            dataset_group_arn: p.arn(&g),
                            recipe_arn: recipe,
                            recommender_config: cfg,
                            tags,
                        }
                    });
                }
            }
        }
    }

    fn unmanaged(&self) -> Vec<super::observed::Listed> {
        let managed: BTreeSet<(Kind, &str)> = self
            .steps
            .iter()
            .map(|s| (s.target.kind, s.target.name.as_str()))
            .collect();
        let mut out: Vec<_> = self
            .obs
            .listed
            .iter()
            .filter(|l| !managed.contains(&(l.kind, l.name.as_str())))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What an update of campaign `o` to `c` (serving `want_version` when known) would change.
fn campaign_changes(c: &Campaign, o: &CampaignObs, want_version: Option<&str>) -> Vec<String> {
    let mut changes = Vec::new();
    if let Some(v) = want_version
        && v != o.solution_version_arn
    {
        changes.push(format!("solutionVersion {} → {v}", o.solution_version_arn));
    }
    if c.min_provisioned_tps != o.min_provisioned_tps {
        changes.push(format!(
            "minProvisionedTPS {} → {}",
            o.min_provisioned_tps, c.min_provisioned_tps
        ));
    }
    changes.extend(config_differences(
        "campaignConfig",
        c.campaign_config.as_ref(),
        o.config.as_ref(),
    ));
    changes
}
