//! A worker's part of the scheduler: recording the schedule set of each generation (fenced by the
//! group's lease), picking up a pending scheduled action, and ending it with one outcome, one
//! notification and its metrics.

use chrono::{DateTime, Utc};

use super::Daemon;
use super::reconciler::{PassReport, ScheduledRun};
use super::turn::{failure_summary, location_of};
use crate::metrics::Counter;
use crate::notify::message::scheduled_message;
use crate::schedule::{Target, desired_set, diff};
use crate::spec::names;
use crate::store::{Desired, FireOutcome, FireStatus, Lease, ResourceKind, StoreError};

impl Daemon {
    /// Makes the group's schedule items match `desired`'s parameter file: new and changed schedules
    /// written, removed ones deleted, unchanged ones untouched (history kept). Every write is fenced by
    /// `lease`. A file that no longer validates leaves the schedules as they are.
    pub(crate) async fn sync_schedules(&self, lease: &Lease, desired: &Desired) -> Result<(), StoreError> {
        let report = crate::spec::load(&desired.text);
        let Some(spec) = report.spec.filter(|_| report.errors.is_empty()) else {
            return Ok(());
        };
        let recorded = self.store.schedules(Some(&lease.group)).await?;
        let changes = diff(&lease.group, &recorded, &desired_set(&spec), self.clock.now());
        if changes.is_empty() {
            return Ok(());
        }
        for schedule in &changes.put {
            self.store.put_schedule(lease, schedule).await?;
            if !recorded.iter().any(|r| r.name == schedule.name) {
                self.metrics.count(Counter::JobsCreated);
            }
            tracing::info!(schedule = %schedule.name, expression = %schedule.expression, generation = desired.generation, "schedule recorded");
        }
        for name in &changes.remove {
            self.store.delete_schedule(lease, name).await?;
            self.metrics.count(Counter::JobsDeleted);
            tracing::info!(schedule = %name, generation = desired.generation, "schedule removed: the parameter file no longer declares it");
        }
        self.schedules_changed.notify_waiters();
        Ok(())
    }

    /// The group's oldest pending scheduled action. A pending fire whose target cannot be read is
    /// ended as failed (it would never run) and the next one is looked at.
    pub(crate) async fn pending_action(&self, group: &str) -> Result<Option<ScheduledRun>, StoreError> {
        let mut pending: Vec<_> = self
            .store
            .schedules(Some(group))
            .await?
            .into_iter()
            .filter_map(|s| s.pending_fire.map(|fire| (fire, s)))
            .collect();
        pending.sort_by_key(|(fire, _)| *fire);
        for (fire, s) in pending {
            match Target::decode(&s.name, &s.target) {
                Ok(target) => {
                    return Ok(Some(ScheduledRun {
                        schedule: s.name,
                        fire,
                        target,
                    }));
                }
                Err(e) => {
                    let run = ScheduledRun {
                        schedule: s.name.clone(),
                        fire,
                        target: Target::Import,
                    };
                    self.end_scheduled(group, &run, FireStatus::Failed, e.to_string(), None)
                        .await?;
                }
            }
        }
        Ok(None)
    }

    /// Ends a scheduled action whose pass converged or failed: outcome recorded, one notification,
    /// metrics. Returns the outcome's status.
    pub(crate) async fn finish_scheduled(
        &self,
        group: &str,
        run: &ScheduledRun,
        report: &PassReport,
        failed: bool,
    ) -> Result<FireStatus, StoreError> {
        let (status, detail) = if failed {
            (FireStatus::Failed, failure_summary(report))
        } else {
            describe_success(run, report)
        };
        self.end_scheduled(group, run, status, detail, Some(report))
            .await?;
        Ok(status)
    }

    async fn end_scheduled(
        &self,
        group: &str,
        run: &ScheduledRun,
        status: FireStatus,
        detail: String,
        report: Option<&PassReport>,
    ) -> Result<(), StoreError> {
        let outcome = FireOutcome {
            fire: run.fire,
            status,
            detail,
            at: self.clock.now(),
        };
        // Only the worker that ends the pending fire reports it: a replica that lost the race (its
        // lease expired mid-action and another finished it) stays silent.
        if !self.store.finish_fire(group, &run.schedule, &outcome).await? {
            tracing::debug!(schedule = %run.schedule, fire = %run.fire, "scheduled action already ended elsewhere");
            return Ok(());
        }
        self.metrics.count(Counter::ScheduledRuns);
        match status {
            FireStatus::Failed => self.metrics.count(Counter::ScheduledRunsFailed),
            FireStatus::Skipped => self.metrics.count(Counter::ScheduledRunsSkipped),
            FireStatus::Succeeded => {}
        }
        tracing::info!(schedule = %run.schedule, fire = %run.fire, outcome = %outcome, "scheduled action ended");
        let location = report.map_or_else(
            || self.config.location.clone(),
            |r| location_of(r, &self.config.location),
        );
        self.notifications
            .publish(&scheduled_message(group, &location, &run.schedule, &outcome))
            .await;
        Ok(())
    }
}

/// Whether `name` is a one-shot job of the fire at `fire` (`<prefix>_<ts>`, possibly with a
/// collision-free suffix after the timestamp).
fn named_for(name: &str, fire: DateTime<Utc>) -> bool {
    name.contains(&names::timestamp(fire))
}

/// The outcome of a converged scheduled pass: what the fire produced, or why it produced nothing.
fn describe_success(run: &ScheduledRun, report: &PassReport) -> (FireStatus, String) {
    let of_kind = |kind: ResourceKind| report.resources.iter().filter(move |r| r.kind == kind);
    match &run.target {
        Target::Import => {
            let mine: Vec<&str> = of_kind(ResourceKind::DatasetImportJob)
                .filter(|r| named_for(&r.name, run.fire))
                .map(|r| r.name.as_str())
                .collect();
            if mine.is_empty() {
                let last: Vec<&str> = of_kind(ResourceKind::DatasetImportJob)
                    .map(|r| r.name.as_str())
                    .collect();
                let since = if last.is_empty() {
                    "no data found beside the parameter file".to_string()
                } else {
                    format!("no new data since the last imports ({})", last.join(", "))
                };
                (FireStatus::Skipped, since)
            } else {
                (FireStatus::Succeeded, format!("imported: {}", mine.join(", ")))
            }
        }
        Target::Full { solution } | Target::Update { solution } => {
            let version = of_kind(ResourceKind::SolutionVersion)
                .find(|r| &r.name == solution)
                .and_then(|r| r.arn.clone())
                .unwrap_or_else(|| "(unknown)".into());
            let campaigns: Vec<&str> = of_kind(ResourceKind::Campaign).map(|r| r.name.as_str()).collect();
            let batch: Vec<&str> = of_kind(ResourceKind::BatchInferenceJob)
                .chain(of_kind(ResourceKind::BatchSegmentJob))
                .filter(|r| named_for(&r.name, run.fire))
                .map(|r| r.name.as_str())
                .collect();
            let mut detail = format!("new solution version {version} ACTIVE");
            if !campaigns.is_empty() {
                detail.push_str(&format!("; campaigns on it: {}", campaigns.join(", ")));
            }
            if !batch.is_empty() {
                detail.push_str(&format!("; batch jobs: {}", batch.join(", ")));
            }
            (FireStatus::Succeeded, detail)
        }
        Target::BatchInference { .. } | Target::BatchSegment { .. } => {
            let kind = match run.target {
                Target::BatchSegment { .. } => ResourceKind::BatchSegmentJob,
                _ => ResourceKind::BatchInferenceJob,
            };
            match of_kind(kind).find(|r| named_for(&r.name, run.fire)) {
                Some(job) => (FireStatus::Succeeded, format!("batch job {} {}", job.name, job.status)),
                None => (
                    FireStatus::Skipped,
                    "no batch job was started: the batch input file is missing or the solution has no ACTIVE version"
                        .into(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::PassStatus;
    use crate::store::ResourceState;

    use crate::schedule::tests::at;

    fn res(kind: ResourceKind, name: &str, arn: Option<&str>) -> ResourceState {
        ResourceState {
            kind,
            name: name.into(),
            status: "ACTIVE".into(),
            arn: arn.map(str::to_string),
            reason: None,
        }
    }

    fn run(target: Target) -> ScheduledRun {
        ScheduledRun {
            schedule: "s".into(),
            fire: at("2026-12-05T10:00:00Z"),
            target,
        }
    }

    fn report(resources: Vec<ResourceState>) -> PassReport {
        PassReport {
            status: PassStatus::Converged,
            resources,
            failures: Vec::new(),
        }
    }

    #[test]
    fn an_import_fire_without_new_data_is_skipped_naming_the_last_import() {
        let old = res(
            ResourceKind::DatasetImportJob,
            "dataset_import_interactions_2026_12_01_08_00_00",
            None,
        );
        let (status, detail) = describe_success(&run(Target::Import), &report(vec![old]));
        assert_eq!(status, FireStatus::Skipped);
        assert!(
            detail.contains("no new data since") && detail.contains("2026_12_01_08_00_00"),
            "{detail}"
        );
        let mine = res(
            ResourceKind::DatasetImportJob,
            "dataset_import_interactions_2026_12_05_10_00_00",
            None,
        );
        let (status, detail) = describe_success(&run(Target::Import), &report(vec![mine]));
        assert_eq!(status, FireStatus::Succeeded);
        assert!(detail.contains("2026_12_05_10_00_00"), "{detail}");
    }

    #[test]
    fn a_training_fire_names_the_version_campaigns_and_batch_jobs() {
        let r = report(vec![
            res(ResourceKind::SolutionVersion, "sol", Some("arn:v2")),
            res(ResourceKind::Campaign, "camp", Some("arn:c")),
            res(
                ResourceKind::BatchInferenceJob,
                "batch_sol_2026_12_05_10_00_00",
                None,
            ),
            res(
                ResourceKind::BatchInferenceJob,
                "batch_sol_2026_11_05_10_00_00",
                None,
            ),
        ]);
        let (status, detail) = describe_success(
            &run(Target::Update {
                solution: "sol".into(),
            }),
            &r,
        );
        assert_eq!(status, FireStatus::Succeeded);
        assert_eq!(
            detail,
            "new solution version arn:v2 ACTIVE; campaigns on it: camp; batch jobs: batch_sol_2026_12_05_10_00_00"
        );
        let (status, _) = describe_success(
            &run(Target::BatchSegment {
                solution: "sol".into(),
                index: 0,
            }),
            &r,
        );
        assert_eq!(status, FireStatus::Skipped);
    }
}
