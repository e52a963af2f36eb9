//! The schedule set of a parameter file, named as the README's generated-names table, and the diff
//! between the recorded schedule items and the desired set.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::spec::model::Spec;
use crate::spec::names::{BatchEntry, ScheduleKind, schedule_name};
use crate::spec::schedule::Schedule as Expression;
use crate::store::Schedule;

/// What a fire of a schedule does; stored as the schedule item's `target` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Target {
    /// Import every dataset whose data is newer than its last successful import.
    Import,
    /// A new `FULL` solution version, then campaigns moved to it, then the solution's batch jobs.
    Full { solution: String },
    /// As `Full` with an `UPDATE` version (`FULL` while the solution has no ACTIVE FULL version).
    Update { solution: String },
    /// A new batch inference job (entry `index` of the solution's list) on the newest ACTIVE version.
    BatchInference { solution: String, index: usize },
    /// A new batch segment job (entry `index`) on the newest ACTIVE version.
    BatchSegment { solution: String, index: usize },
}

/// A stored `target` that does not decode (written by a newer release, or corrupted).
#[derive(Debug, thiserror::Error)]
#[error("schedule {schedule}: target {target:?} is not understood: {reason}")]
pub struct TargetError {
    pub schedule: String,
    pub target: String,
    pub reason: String,
}

impl Target {
    /// The stored form.
    pub fn encode(&self) -> String {
        // A unit-or-struct enum of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form of `schedule`'s target.
    pub fn decode(schedule: &str, target: &str) -> Result<Self, TargetError> {
        serde_json::from_str(target).map_err(|e| TargetError {
            schedule: schedule.to_string(),
            target: target.to_string(),
            reason: e.to_string(),
        })
    }

    /// The solution acted on, if any.
    pub fn solution(&self) -> Option<&str> {
        match self {
            Self::Import => None,
            Self::Full { solution }
            | Self::Update { solution }
            | Self::BatchInference { solution, .. }
            | Self::BatchSegment { solution, .. } => Some(solution),
        }
    }

    /// A few words for logs and notifications.
    pub fn describe(&self) -> String {
        match self {
            Self::Import => "import of new data".into(),
            Self::Full { solution } => format!("full retraining of {solution}"),
            Self::Update { solution } => format!("update retraining of {solution}"),
            Self::BatchInference { solution, index } => {
                format!("batch inference job {} of {solution}", index + 1)
            }
            Self::BatchSegment { solution, index } => {
                format!("batch segment job {} of {solution}", index + 1)
            }
        }
    }
}

/// One schedule the parameter file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSchedule {
    pub name: String,
    /// The canonical text of a `cron(...)` or `rate(...)` expression.
    pub expression: String,
    pub target: Target,
}

/// Every schedule `spec` declares, in file order. Keys set to `"delete"` (or absent) declare none:
/// their recorded schedule is removed by [`diff`].
pub fn desired_set(spec: &Spec) -> Vec<DesiredSchedule> {
    let mut out = Vec::new();
    let mut push = |kind: ScheduleKind, owner: &str, expr: &Option<Expression>, target: Target| {
        if let Some(e @ (Expression::Cron(_) | Expression::Rate(_))) = expr {
            out.push(DesiredSchedule {
                name: schedule_name(kind, owner),
                expression: e.to_string(),
                target,
            });
        }
    };
    let group = &spec.dataset_group.name;
    push(
        ScheduleKind::DatasetImport,
        group,
        &spec.dataset_group.import_schedule,
        Target::Import,
    );
    for s in &spec.solutions {
        let solution = || s.name.clone();
        push(
            ScheduleKind::SolutionFull,
            &s.name,
            &s.schedules.full,
            Target::Full { solution: solution() },
        );
        push(
            ScheduleKind::SolutionUpdate,
            &s.name,
            &s.schedules.update,
            Target::Update { solution: solution() },
        );
        let count = s.batch_inference_jobs.len();
        for (index, job) in s.batch_inference_jobs.iter().enumerate() {
            push(
                ScheduleKind::BatchInference(BatchEntry { index, count }),
                &s.name,
                &job.schedule,
                Target::BatchInference {
                    solution: solution(),
                    index,
                },
            );
        }
        let count = s.batch_segment_jobs.len();
        for (index, job) in s.batch_segment_jobs.iter().enumerate() {
            push(
                ScheduleKind::BatchSegment(BatchEntry { index, count }),
                &s.name,
                &job.schedule,
                Target::BatchSegment {
                    solution: solution(),
                    index,
                },
            );
        }
    }
    out
}

/// What recording a generation changes in a group's schedule items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleDiff {
    /// New schedules, and schedules whose expression or target changed: written with `created_at`
    /// now (a new `rate` anchor) and active again (a deactivation lasts until the expression changes).
    pub put: Vec<Schedule>,
    /// Names of recorded schedules the file no longer declares (key removed or `"delete"`).
    pub remove: Vec<String>,
}

impl ScheduleDiff {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty()
    }
}

/// The writes that turn `recorded` (one group's schedule items) into `desired`. An unchanged
/// schedule is not written, so it keeps its history, its `rate` anchor and its active flag.
/// `now` becomes the `created_at` of what is put, truncated to the second so that fire instants of a
/// `rate` (anchored there) compare cleanly with Personalize's second-precision creation times.
pub fn diff(
    group: &str,
    recorded: &[Schedule],
    desired: &[DesiredSchedule],
    now: DateTime<Utc>,
) -> ScheduleDiff {
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let mut out = ScheduleDiff::default();
    for d in desired {
        let target = d.target.encode();
        let same_name = recorded.iter().find(|r| r.name == d.name);
        if let Some(r) = same_name.filter(|r| r.expression == d.expression) {
            if r.target != target {
                // Only what the fire does changed (e.g. a batch job's index): the same timer, so
                // its anchor, history and a `deactivate` stay, which only an expression change ends.
                out.put.push(Schedule { target, ..r.clone() });
            }
            continue;
        }
        let next_fire = Expression::parse(&d.expression)
            .ok()
            .and_then(|e| e.next_fire(now, now));
        out.put.push(Schedule {
            group: group.to_string(),
            name: d.name.clone(),
            expression: d.expression.clone(),
            target,
            created_at: now,
            last_fire: None,
            next_fire,
            active: true,
            pending_fire: None,
            last_outcome: None,
        });
    }
    out.remove = recorded
        .iter()
        .filter(|r| !desired.iter().any(|d| d.name == r.name))
        .map(|r| r.name.clone())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(schedules: &str) -> Spec {
        let text = format!(
            r#"{{
  "datasetGroup": {{"serviceConfig": {{"name": "shop"}}, "workflowConfig": {{"schedules": {{"import": "cron(0 1 * * ? *)"}}}}}},
  "datasets": {{"serviceConfig": {{"importMode": "FULL"}}, "interactions": {{"dataset": {{"serviceConfig": {{"name": "shop-int"}}}}, "schema": {{"serviceConfig": {{"name": "shop-int-schema", "schema": {{"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema", "fields": [{{"name": "USER_ID", "type": "string"}}, {{"name": "ITEM_ID", "type": "string"}}, {{"name": "TIMESTAMP", "type": "long"}}], "version": "1.0"}}}}}}}}}},
  "solutions": [{{"serviceConfig": {{"name": "shop-sims", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"}},
                  "workflowConfig": {{"schedules": {schedules}}},
                  "batchInferenceJobs": [{{"workflowConfig": {{"schedule": "rate(1 day)"}}}}, {{"serviceConfig": {{}}}}, {{"workflowConfig": {{"schedule": "delete"}}}}]}}]
}}"#
        );
        let report = crate::spec::load(&text);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report.spec.expect("spec")
    }

    use crate::schedule::tests::at;

    #[test]
    fn the_set_uses_the_generated_names_and_leaves_out_delete() {
        let set = desired_set(&spec(r#"{"full": "cron(0 3 ? * 1 *)", "update": "delete"}"#));
        let names: Vec<(&str, &str)> = set
            .iter()
            .map(|d| (d.name.as_str(), d.expression.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("personalize-dataset-import-shop", "cron(0 1 * * ? *)"),
                ("solution-maintenance-full-shop-sims", "cron(0 3 ? * 1 *)"),
                ("batch-inference-shop-sims-1", "rate(1 day)"),
            ]
        );
        assert_eq!(
            set[2].target,
            Target::BatchInference {
                solution: "shop-sims".into(),
                index: 0
            }
        );
    }

    #[test]
    fn targets_round_trip_and_bad_ones_name_the_schedule() {
        let t = Target::Update { solution: "s".into() };
        assert_eq!(t.encode(), r#"{"action":"update","solution":"s"}"#);
        assert_eq!(Target::decode("x", &t.encode()).expect("decodes"), t);
        let err = Target::decode("nightly", r#"{"action":"explode"}"#).expect_err("unknown");
        assert!(err.to_string().contains("nightly"), "{err}");
    }

    #[test]
    fn diff_creates_changes_keeps_and_removes() {
        let t0 = at("2026-02-28T10:00:00.700Z");
        let first = desired_set(&spec(
            r#"{"full": "cron(0 3 ? * 1 *)", "update": "rate(2 hours)"}"#,
        ));
        let d = diff("shop", &[], &first, t0);
        assert_eq!(d.put.len(), 4);
        assert!(d.remove.is_empty());
        let update = d
            .put
            .iter()
            .find(|s| s.name == "solution-maintenance-update-shop-sims")
            .expect("update schedule");
        assert_eq!(update.created_at, at("2026-02-28T10:00:00Z"), "whole seconds");
        assert_eq!(
            update.next_fire,
            Some(at("2026-02-28T12:00:00Z")),
            "anchored at creation"
        );
        assert!(update.active);

        // Recorded with history; the next generation changes one expression and deletes another.
        let mut recorded = d.put.clone();
        for r in &mut recorded {
            r.last_fire = Some(t0);
            r.active = r.name != "personalize-dataset-import-shop";
        }
        let t1 = at("2026-03-01T00:00:00Z");
        let second = desired_set(&spec(r#"{"full": "cron(0 4 ? * 1 *)", "update": "delete"}"#));
        let d = diff("shop", &recorded, &second, t1);
        let put: Vec<&str> = d.put.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(put, vec!["solution-maintenance-full-shop-sims"]);
        assert_eq!(d.put[0].created_at, t1);
        assert_eq!(
            d.remove,
            vec!["solution-maintenance-update-shop-sims".to_string()]
        );

        // The same file again changes nothing (the deactivated import schedule stays deactivated).
        let d = diff("shop", &recorded, &first, t1);
        assert_eq!(d.put.len(), 0, "{:?}", d.put);
        assert!(d.is_empty());

        // A file without schedules removes them all.
        let d = diff("shop", &recorded, &[], t1);
        assert_eq!(d.remove.len(), 4);
    }

    #[test]
    fn a_target_change_keeps_the_timer_its_history_and_a_deactivate() {
        let t0 = at("2026-02-28T10:00:00Z");
        let desired = desired_set(&spec(r#"{"full": "cron(0 3 ? * 1 *)"}"#));
        let mut recorded = diff("shop", &[], &desired, t0).put;
        let batch = recorded
            .iter_mut()
            .find(|s| s.name == "batch-inference-shop-sims-1")
            .expect("batch schedule");
        // Recorded when the job was listed elsewhere in the file, then deactivated, with a fire.
        batch.target = Target::BatchInference {
            solution: "shop-sims".into(),
            index: 2,
        }
        .encode();
        batch.active = false;
        batch.last_fire = Some(at("2026-03-01T10:00:00Z"));
        let before = batch.clone();

        let d = diff("shop", &recorded, &desired, at("2026-03-02T00:00:00Z"));
        assert_eq!(d.put.len(), 1, "{:?}", d.put);
        let put = &d.put[0];
        assert_eq!(
            put.target,
            desired[2].target.encode(),
            "the new target is recorded"
        );
        assert!(!put.active, "still deactivated: only the expression re-activates");
        assert_eq!(
            (put.created_at, put.last_fire, put.next_fire),
            (before.created_at, before.last_fire, before.next_fire),
            "the rate anchor and the history stay"
        );

        // A changed expression does re-activate it, as a new timer.
        let changed: Vec<DesiredSchedule> = desired
            .iter()
            .cloned()
            .map(|mut s| {
                if s.name == "batch-inference-shop-sims-1" {
                    s.expression = "rate(2 days)".into();
                }
                s
            })
            .collect();
        let d = diff("shop", &recorded, &changed, at("2026-03-02T00:00:00Z"));
        assert_eq!(d.put.len(), 1);
        assert!(d.put[0].active);
        assert_eq!(d.put[0].last_fire, None);
    }
}
